"""SAIL, the Scientific AI Language: decorators, types, concepts, primitives, model blocks.

``from saibench_jupyter.sail import *`` gives a module author every name that SAIL
functions see. Nothing here runs a module: the parser, the dry-run tracer and the
planner do (see :func:`parse` and :func:`dry_run`).
"""

from ._atoms import AtomRecord as AtomRecord
from ._atoms import AtomSet as AtomSet
from ._check import CheckedGraph as CheckedGraph
from ._check import check as check
from ._concepts import Classify as Classify
from ._concepts import Embedding as Embedding
from ._concepts import Enhance as Enhance
from ._concepts import Model as Model
from ._concepts import Predict as Predict
from ._concepts import Pretrain as Pretrain
from ._concepts import Segment as Segment
from ._concepts import Solve as Solve
from ._concepts import Test as Test
from ._concepts import Train as Train
from ._context import Context as Context
from ._datasets import register_dataset as register_dataset
from ._decorators import DECORATOR_OF as DECORATOR_OF
from ._decorators import DECORATORS as DECORATORS
from ._decorators import ConverterDefinition as ConverterDefinition
from ._decorators import HardwareDefinition as HardwareDefinition
from ._decorators import MetricDefinition as MetricDefinition
from ._decorators import ModelDefinition as ModelDefinition
from ._decorators import ModuleKind as ModuleKind
from ._decorators import ProblemDefinition as ProblemDefinition
from ._decorators import RankingDefinition as RankingDefinition
from ._decorators import SoftwareDefinition as SoftwareDefinition
from ._errors import DryRunError as DryRunError
from ._errors import DryRunTimeout as DryRunTimeout
from ._errors import GraphError as GraphError
from ._errors import Location as Location
from ._errors import ModuleFailed as ModuleFailed
from ._errors import RequireCycleError as RequireCycleError
from ._errors import SailError as SailError
from ._errors import SailNameError as SailNameError
from ._errors import SailSyntaxError as SailSyntaxError
from ._errors import deepest_line as deepest_line
from ._errors import source_filename as source_filename
from ._errors import source_origin as source_origin
from ._errors import traceback_frames as traceback_frames
from ._errors import traceback_line as traceback_line
from ._graph import Array as Array
from ._graph import Conv2d as Conv2d
from ._graph import Dropout as Dropout
from ._graph import Estimator as Estimator
from ._graph import Flatten as Flatten
from ._graph import Identity as Identity
from ._graph import JaxModel as JaxModel
from ._graph import Linear as Linear
from ._graph import MaxPool2d as MaxPool2d
from ._graph import Pipeline as Pipeline
from ._graph import Relu as Relu
from ._graph import Sigmoid as Sigmoid
from ._graph import Softmax as Softmax
from ._graph import Solver as Solver
from ._graph import Sum as Sum
from ._graph import Tanh as Tanh
from ._graph import TorchModule as TorchModule
from ._lists import SailList as SailList
from ._lists import TopK as TopK
from ._parser import ParsedModule as ParsedModule
from ._parser import decorator_name as decorator_name
from ._pretty import pretty as pretty
from ._primitives import COUNTERS as COUNTERS
from ._primitives import Capability as Capability
from ._primitives import Chunks as Chunks
from ._primitives import Concat as Concat
from ._primitives import Convert as Convert
from ._primitives import ElapsedMilliseconds as ElapsedMilliseconds
from ._primitives import Environment as Environment
from ._primitives import Epochs as Epochs
from ._primitives import Fail as Fail
from ._primitives import Flops as Flops
from ._primitives import Gradients as Gradients
from ._primitives import InferenceMilliseconds as InferenceMilliseconds
from ._primitives import Input as Input
from ._primitives import L2Error as L2Error
from ._primitives import MolecularDynamicsSoftware as MolecularDynamicsSoftware
from ._primitives import PeakMemoryBytes as PeakMemoryBytes
from ._primitives import Provides as Provides
from ._primitives import RandomSplit as RandomSplit
from ._primitives import Require as Require
from ._primitives import Resources as Resources
from ._primitives import SamplesSeen as SamplesSeen
from ._primitives import Stack as Stack
from ._primitives import Suggest as Suggest
from ._primitives import TrainingMilliseconds as TrainingMilliseconds
from ._types import Any as Any
from ._types import Atom as Atom
from ._types import Atoms as Atoms
from ._types import Image as Image
from ._types import List as List
from ._types import SailType as SailType
from ._types import Scalar as Scalar
from ._types import Set as Set
from ._types import T as T
from ._types import Tensor as Tensor
from ._types import TypeVariable as TypeVariable
from ._types import as_type as as_type
from ._types import unify as unify
from ._vetting import dry_runs_in_process as dry_runs_in_process
from ._vetting import start_probe as start_probe

__all__ = [
    # decorators
    "ProblemDefinition", "ModelDefinition", "MetricDefinition", "ConverterDefinition",
    "SoftwareDefinition", "HardwareDefinition", "RankingDefinition",
    # types
    "SailType", "Tensor", "Scalar", "Image", "Atom", "Atoms", "Set", "List", "T",
    "TypeVariable", "Any",
    # values of atoms at execution
    "AtomSet",
    # concepts and task constants
    "Train", "Test", "Model", "Classify", "Predict", "Segment", "Enhance", "Pretrain",
    "Embedding", "Solve",
    # primitives
    "Input", "Require", "Fail", "Suggest", "Convert", "Gradients", "Provides",
    "RandomSplit", "Chunks", "Concat", "Stack", "L2Error", "TopK", "SailList",
    "ElapsedMilliseconds", "TrainingMilliseconds", "InferenceMilliseconds", "SamplesSeen",
    "Epochs", "Flops", "PeakMemoryBytes",
    # model building blocks
    "Pipeline", "Linear", "Relu", "Tanh", "Sigmoid", "Softmax", "Conv2d", "MaxPool2d",
    "Flatten", "Dropout", "Identity", "Sum", "Array", "TorchModule", "JaxModel",
    "Estimator", "Solver",
    # software and hardware
    "Environment", "Resources", "Capability", "MolecularDynamicsSoftware",
]

# Tools around the language (not predefined in SAIL functions).
_TOOLS = ["ModuleKind", "Context", "Location", "SailError", "SailSyntaxError", "SailNameError",
          "DryRunError", "DryRunTimeout", "GraphError", "RequireCycleError", "ModuleFailed",
          "check", "CheckedGraph", "pretty", "as_type", "unify", "register_dataset", "AtomRecord",
          "dry_runs_in_process", "start_probe", "COUNTERS", "ParsedModule", "DECORATORS", "DECORATOR_OF",
          "decorator_name", "source_filename", "traceback_frames", "deepest_line", "traceback_line", "source_origin"]
