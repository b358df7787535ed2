"""BenchPods: isolated runs of scenarios, their specs, the shim, executors and environments.

``run(scenarios)`` is the entry point; ``python -m saibench_jupyter.pods run SPEC`` is
the shim every pod process runs. See ``docs/benchpods.md``.
"""

from ._environments import EnvironmentBuildError as EnvironmentBuildError
from ._environments import Interpreter as Interpreter
from ._environments import provision as provision
from ._environments import unmet as unmet
from ._executors import Executor as Executor
from ._executors import InlineExecutor as InlineExecutor
from ._executors import PodEvents as PodEvents
from ._executors import PodOutcome as PodOutcome
from ._executors import available as available
from ._executors import executor_class as executor_class
from ._run import run as run
from ._spec import SPEC_VERSION as SPEC_VERSION
from ._spec import Limits as Limits
from ._spec import PodSpec as PodSpec
from ._spec import SpecError as SpecError
from ._spec import specs_of as specs_of

__all__ = ["SPEC_VERSION", "EnvironmentBuildError", "Executor", "InlineExecutor", "Interpreter", "Limits",
           "PodEvents", "PodOutcome", "PodSpec", "SpecError", "available", "executor_class", "provision", "run",
           "specs_of", "unmet"]
