"""SAIL, the Scientific AI Language: decorators, types, concepts, primitives, model blocks.

``from saibench_jupyter.sail import *`` gives a module author every name that SAIL
functions see. Nothing here runs a module: the parser, the dry-run tracer and the
planner do (see :func:`parse` and :func:`dry_run`).
"""

from ._atoms import ALIASES as ALIASES
from ._atoms import AtomRecord as AtomRecord
from ._atoms import AtomSet as AtomSet
from ._atoms import atomic_number as atomic_number
from ._check import CheckedGraph as CheckedGraph
from ._check import CheckedStep as CheckedStep
from ._check import check as check
from ._concepts import COMPARISON_KINDS as COMPARISON_KINDS
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
from ._context import using as using
from ._counting import Count as Count
from ._counting import Counted as Counted
from ._counting import sum_counts as sum_counts
from ._counting import tally_now as tally_now
from ._counting import tallying as tallying
from ._datasets import DatasetProvider as DatasetProvider
from ._datasets import dataset_provider as dataset_provider
from ._datasets import register_dataset as register_dataset
from ._datasets import registered_datasets as registered_datasets
from ._datasets import restore_datasets as restore_datasets
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
from ._dryrun import DEFAULT_TIME_LIMIT as DEFAULT_TIME_LIMIT
from ._dryrun import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
from ._dryrun import ConverterRun as ConverterRun
from ._dryrun import DryRun as DryRun
from ._dryrun import HardwareRun as HardwareRun
from ._dryrun import MetricRun as MetricRun
from ._dryrun import ModelRun as ModelRun
from ._dryrun import ProblemRun as ProblemRun
from ._dryrun import SoftwareRun as SoftwareRun
from ._dryrun import load_function as load_function
from ._dryrun_errors import describe as describe
from ._dryrun_errors import load_error as load_error
from ._dryrun_errors import module_site as module_site
from ._dryrun_errors import printable as printable
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
from ._errors import register_source as register_source
from ._errors import source_filename as source_filename
from ._errors import source_origin as source_origin
from ._errors import traceback_frames as traceback_frames
from ._errors import traceback_line as traceback_line
from ._graph import DECLARATIVE_BACKENDS as DECLARATIVE_BACKENDS
from ._graph import Array as Array
from ._graph import Conv2d as Conv2d
from ._graph import ConvertNode as ConvertNode
from ._graph import Dropout as Dropout
from ._graph import Estimator as Estimator
from ._graph import Flatten as Flatten
from ._graph import Identity as Identity
from ._graph import JaxModel as JaxModel
from ._graph import Linear as Linear
from ._graph import MaxPool2d as MaxPool2d
from ._graph import Native as Native
from ._graph import Node as Node
from ._graph import Pipeline as Pipeline
from ._graph import Relu as Relu
from ._graph import Sigmoid as Sigmoid
from ._graph import Softmax as Softmax
from ._graph import Solver as Solver
from ._graph import SubModel as SubModel
from ._graph import Sum as Sum
from ._graph import Tanh as Tanh
from ._graph import TorchModule as TorchModule
from ._graph import backends as backends
from ._graph import takes_checkpoint as takes_checkpoint
from ._inputs import FileStamp as FileStamp
from ._inputs import files_changed as files_changed
from ._inputs import input_type as input_type
from ._inputs import npy_header as npy_header
from ._lists import SailList as SailList
from ._lists import TopK as TopK
from ._meta import ConverterMeta as ConverterMeta
from ._meta import HardwareMeta as HardwareMeta
from ._meta import MetricMeta as MetricMeta
from ._meta import ModelMeta as ModelMeta
from ._meta import ProblemMeta as ProblemMeta
from ._meta import SoftwareMeta as SoftwareMeta
from ._meta import TaskSignature as TaskSignature
from ._meta import Trace as Trace
from ._names import misspelt_name as misspelt_name
from ._names import unknown_name as unknown_name
from ._names import unknown_names as unknown_names
from ._namespace import namespace as namespace
from ._parser import ParsedModule as ParsedModule
from ._parser import ParsedSource as ParsedSource
from ._parser import decorator_name as decorator_name
from ._parser import parse as parse
from ._pretty import pretty as pretty
from ._primitives import COUNTERS as COUNTERS
from ._primitives import RANKING_FIELDS as RANKING_FIELDS
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
from ._primitives import array_namespace as array_namespace
from ._primitives import capability_of as capability_of
from ._symbolic import TupleType as TupleType
from ._symbolic import Value as Value
from ._symbolic import typeof as typeof
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
from ._types import is_flat_tensor as is_flat_tensor
from ._types import most_specific as most_specific
from ._types import substitute as substitute
from ._types import unify as unify
from ._vetting import dry_runs_in_process as dry_runs_in_process
from ._vetting import probe_declarations as probe_declarations
from ._vetting import probe_load as probe_load
from ._vetting import probe_sources as probe_sources
from ._vetting import probed_dry_run as probed_dry_run
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
    "Epochs", "Flops", "PeakMemoryBytes", "Count", "Counted",
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
          "dry_runs_in_process", "start_probe", "COUNTERS", "RANKING_FIELDS",
          "ParsedModule", "DECORATORS", "DECORATOR_OF",
          "decorator_name", "source_filename", "traceback_frames", "deepest_line", "traceback_line", "source_origin"]

# What the layers above (repository, backends, planner, runtime) use of SAIL's machinery:
# not the language, and not predefined in SAIL functions (docs/architecture.md).
_LAYERS = ["ALIASES", "Array", "Atom", "AtomRecord", "AtomSet", "COMPARISON_KINDS", "CheckedGraph",
           "CheckedStep", "Context", "Conv2d", "ConvertNode", "ConverterMeta", "ConverterRun",
           "DECLARATIVE_BACKENDS", "DEFAULT_TIME_LIMIT", "DatasetProvider", "Dropout", "DryRun",
           "Environment", "Estimator", "FileStamp", "Flatten", "GraphError", "HardwareMeta", "HardwareRun",
           "IMAGE_EXTENSIONS", "Identity", "Image", "JaxModel", "Linear", "List", "Location", "MaxPool2d",
           "MetricMeta", "MetricRun", "ModelMeta", "ModelRun", "ModuleFailed", "ModuleKind", "Native", "Node",
           "ParsedModule", "ParsedSource", "Pipeline", "ProblemMeta", "ProblemRun", "Relu", "Resources",
           "SailError", "SailList", "SailSyntaxError", "SailType", "Scalar", "Set", "Sigmoid", "Softmax",
           "SoftwareMeta", "SoftwareRun", "Solver", "SubModel", "Sum", "Tanh", "TaskSignature", "Tensor",
           "Trace", "TupleType", "TypeVariable", "Value", "array_namespace", "as_type", "atomic_number",
           "backends", "capability_of", "check", "dataset_provider", "describe", "files_changed",
           "input_type", "is_flat_tensor", "load_error", "load_function", "misspelt_name", "module_site",
           "most_specific", "namespace", "npy_header", "parse", "printable", "probe_declarations",
           "probe_load", "probe_sources", "probed_dry_run", "register_source", "registered_datasets",
           "restore_datasets", "source_filename", "substitute", "sum_counts", "takes_checkpoint", "tally_now",
           "tallying", "typeof", "unify", "unknown_name", "unknown_names", "using"]
