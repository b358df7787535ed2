"""SAIBench for Jupyter: benchmark scientific AI from notebook cells written in SAIL.

The public surface is small and explicit; nothing heavy is imported here.
"""

from typing import TYPE_CHECKING, Any

from .planner import Lattice as Lattice
from .planner import Machine as Machine
from .planner import Rejection as Rejection
from .planner import Scenario as Scenario
from .planner import discover as discover
from .repository import Repository as Repository
from .repository import RepositoryEvent as RepositoryEvent

__all__ = ["Lattice", "Machine", "Rejection", "Repository", "RepositoryEvent", "Results", "Scenario",
           "ScenarioResult", "Store", "discover", "run", "run_scenario"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .pods import run as run
    from .results import Results as Results
    from .results import Store as Store
    from .runtime import ScenarioResult as ScenarioResult
    from .runtime import run_scenario as run_scenario

#: Loaded on first use: discovery alone (the CLI, the planner) never pays for execution.
_LAZY = {"run_scenario": "runtime", "ScenarioResult": "runtime", "run": "pods", "Results": "results",
         "Store": "results"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext saibench_jupyter``: the ``%%problem`` ... ``%%ranking`` and ``%%sail`` cells, and ``%sail``."""
    from .ui._magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext saibench_jupyter``."""
    from .ui._magics import unload_ipython_extension as unload

    unload(ipython)
