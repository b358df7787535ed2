"""Discovery: joins modules into benchmark scenarios (paper Algorithm 1) and says why others don't fit."""

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
from ._lattice import DiscoveryStats as DiscoveryStats
from ._lattice import Lattice as Lattice
from ._lattice import Scenario as Scenario
from ._lattice import TreeNode as TreeNode
from ._machine import Machine as Machine
from ._rejections import RejectionRow as RejectionRow

__all__ = ["Chain", "ConversionStep", "ConverterGraph", "DiscoveryStats", "HardwareInstance",
           "Lattice", "Machine", "MetricInfo", "ModelChoice", "NoConversion", "Planner",
           "ProblemInstance", "RankingInfo", "Rejection", "RejectionRow", "Scenario", "SoftwareInstance",
           "TreeNode", "discover"]
