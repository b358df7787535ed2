"""BenchPods: isolated runs of scenarios, their specs, the shim, executors and environments.

``run(scenarios)`` is the entry point; ``python -m saibench_jupyter.pods run SPEC`` is
the shim every pod process runs. See ``docs/benchpods.md``.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._dask import ClusterError as ClusterError
    from ._dask import close_embedded as close_embedded
    from ._dask import cluster_machine as cluster_machine
    from ._environments import EnvironmentBuildError as EnvironmentBuildError
    from ._environments import Interpreter as Interpreter
    from ._environments import provision as provision
    from ._executors import DEFAULT_EXECUTOR as DEFAULT_EXECUTOR
    from ._executors import Executor as Executor
    from ._executors import InlineExecutor as InlineExecutor
    from ._executors import PodEvents as PodEvents
    from ._executors import PodOutcome as PodOutcome
    from ._executors import available as available
    from ._executors import executor_class as executor_class
    from ._executors import make_executor as make_executor
    from ._executors import usable_cpus as usable_cpus
    from ._gateway import GatewayError as GatewayError
    from ._gateway import KernelGateway as KernelGateway
    from ._gateway import check_gateway as check_gateway
    from ._kernel_pod import KernelPod as KernelPod
    from ._kernel_pod import PodFailedError as PodFailedError
    from ._pod_notebook import pod_notebook as pod_notebook
    from ._requirements import unmet as unmet
    from ._run import run as run
    from ._spec import SPEC_VERSION as SPEC_VERSION
    from ._spec import Limits as Limits
    from ._spec import PodSpec as PodSpec
    from ._spec import SpecError as SpecError
    from ._spec import specs_of as specs_of

# Loaded on first use: a pod process (``python -m saibench_jupyter.pods``) needs only the
# spec and the shim, not the parent's scheduling and environment machinery.
_MODULES = {
    "._dask": ("ClusterError", "close_embedded", "cluster_machine"),
    "._environments": ("EnvironmentBuildError", "Interpreter", "provision"),
    "._requirements": ("unmet",),
    "._gateway": ("GatewayError", "KernelGateway", "check_gateway"),
    "._executors": ("DEFAULT_EXECUTOR", "Executor", "InlineExecutor", "PodEvents", "PodOutcome", "available",
                    "executor_class", "make_executor", "usable_cpus"),
    "._kernel_pod": ("KernelPod", "PodFailedError"),
    "._pod_notebook": ("pod_notebook",),
    "._run": ("run",),
    "._spec": ("SPEC_VERSION", "Limits", "PodSpec", "SpecError", "specs_of"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}
__all__ = ["ClusterError", "DEFAULT_EXECUTOR", "EnvironmentBuildError", "Executor", "GatewayError", "InlineExecutor",
           "Interpreter", "KernelGateway", "KernelPod", "Limits", "PodEvents", "PodFailedError", "PodOutcome",
           "PodSpec", "SPEC_VERSION", "SpecError", "available", "check_gateway", "close_embedded", "cluster_machine",
           "executor_class", "make_executor", "pod_notebook", "provision", "run", "specs_of", "unmet", "usable_cpus"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
