"""Discovery: joins modules into benchmark scenarios (paper Algorithm 1) and says why others don't fit.

Names are loaded on first use: a pod, which runs a :class:`ScenarioPlan` and never
discovers, loads the plan and the conversion chains without the search machinery.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._converters import Chain as Chain
    from ._converters import ConversionStep as ConversionStep
    from ._converters import ConverterGraph as ConverterGraph
    from ._converters import NoConversion as NoConversion
    from ._discover import Planner as Planner
    from ._discover import discover as discover
    from ._instances import HardwareInstance as HardwareInstance
    from ._instances import MetricInfo as MetricInfo
    from ._instances import ModelChoice as ModelChoice
    from ._instances import ProblemInstance as ProblemInstance
    from ._instances import RankingInfo as RankingInfo
    from ._instances import Rejection as Rejection
    from ._instances import SoftwareInstance as SoftwareInstance
    from ._instances import digest_of as digest_of
    from ._lattice import DiscoveryStats as DiscoveryStats
    from ._lattice import Lattice as Lattice
    from ._lattice import Scenario as Scenario
    from ._lattice import TreeNode as TreeNode
    from ._machine import Machine as Machine
    from ._params import flat_params as flat_params
    from ._params import params_by_place as params_by_place
    from ._params import roles_to_flat as roles_to_flat
    from ._plan import PlanError as PlanError
    from ._plan import ScenarioPlan as ScenarioPlan
    from ._rejections import RejectionRow as RejectionRow

_MODULES = {
    "._converters": ("Chain", "ConversionStep", "ConverterGraph", "NoConversion"),
    "._discover": ("Planner", "discover"),
    "._instances": ("HardwareInstance", "MetricInfo", "ModelChoice", "ProblemInstance", "RankingInfo", "Rejection",
                    "SoftwareInstance", "digest_of"),
    "._lattice": ("DiscoveryStats", "Lattice", "Scenario", "TreeNode"),
    "._machine": ("Machine",),
    "._params": ("flat_params", "params_by_place", "roles_to_flat"),
    "._plan": ("PlanError", "ScenarioPlan"),
    "._rejections": ("RejectionRow",),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}
__all__ = ["Chain", "ConversionStep", "ConverterGraph", "DiscoveryStats", "HardwareInstance",
           "Lattice", "Machine", "MetricInfo", "ModelChoice", "NoConversion", "PlanError", "Planner",
           "ProblemInstance", "RankingInfo", "Rejection", "RejectionRow", "Scenario", "ScenarioPlan",
           "SoftwareInstance", "TreeNode", "digest_of", "discover", "flat_params", "params_by_place",
           "roles_to_flat"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
