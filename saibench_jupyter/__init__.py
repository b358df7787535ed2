"""SAIBench for Jupyter: benchmark scientific AI from notebook cells written in SAIL.

The public surface is small and explicit; nothing heavy is imported here.
"""

from typing import TYPE_CHECKING, Any

__all__ = ["Lattice", "Machine", "Rejection", "Repository", "RepositoryEvent", "Results", "Scenario",
           "ScenarioResult", "Store", "discover", "run", "run_scenario"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .planner import Lattice as Lattice
    from .planner import Machine as Machine
    from .planner import Rejection as Rejection
    from .planner import Scenario as Scenario
    from .planner import discover as discover
    from .pods import run as run
    from .repository import Repository as Repository
    from .repository import RepositoryEvent as RepositoryEvent
    from .results import Results as Results
    from .results import Store as Store
    from .runtime import ScenarioResult as ScenarioResult
    from .runtime import run_scenario as run_scenario

#: Loaded on first use: a pod (``python -m saibench_jupyter.pods``) imports this package and
#: must not pay for discovery, nor discovery (the CLI, the planner) for execution.
_LAZY = {"Lattice": "planner", "Machine": "planner", "Rejection": "planner", "Scenario": "planner",
         "discover": "planner", "Repository": "repository", "RepositoryEvent": "repository",
         "run_scenario": "runtime", "ScenarioResult": "runtime", "run": "pods", "Results": "results",
         "Store": "results"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext saibench_jupyter``: the ``%%problem`` ... ``%%ranking`` and ``%%sail`` cells, and ``%sail``."""
    from .ui import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext saibench_jupyter``."""
    from .ui import unload_ipython_extension as unload

    unload(ipython)
