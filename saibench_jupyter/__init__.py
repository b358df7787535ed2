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

__all__ = ["Lattice", "Machine", "Rejection", "Repository", "RepositoryEvent", "Scenario", "ScenarioResult",
           "discover", "run_scenario"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .runtime import ScenarioResult as ScenarioResult
    from .runtime import run_scenario as run_scenario


def __getattr__(name: str) -> Any:
    # Execution is loaded on first use: discovery alone (the CLI, the planner) never pays for it.
    if name in ("run_scenario", "ScenarioResult"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
