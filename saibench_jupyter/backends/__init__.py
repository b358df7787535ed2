"""Backends: the graph IR lowered to PyTorch, JAX or NumPy, behind one trainer contract.

Backends are found by name in an explicit registry; more can be added by installed
packages under the ``saibench_jupyter.backends`` entry-point group (the value is a
``module:Class`` path to a :class:`Trainer` subclass). Nothing heavy is imported until
a backend is asked for.
"""

from __future__ import annotations

from ..common import available_plugins, load_plugin
from ._lowering import LoweredModel as LoweredModel
from ._lowering import ModelGraphs as ModelGraphs
from ._lowering import builtin_step as builtin_step
from ._lowering import graphs_of as graphs_of
from ._lowering import init_params as init_params
from ._lowering import lower as lower
from ._native_checkpoints import NativeCheckpoint as NativeCheckpoint
from ._native_checkpoints import NativeTrace as NativeTrace
from ._padding import MASK as MASK
from ._padding import pad_fields as pad_fields
from ._trainer import Trainer as Trainer
from ._trainer import TrainingDiverged as TrainingDiverged
from ._trainer import TrainSettings as TrainSettings
from ._trainer import epoch_order as epoch_order
from ._trainer import is_finite as is_finite
from ._trainer import split_target as split_target
from ._trainer import with_gradients as with_gradients

GROUP = "saibench_jupyter.backends"
#: Built-in backends: name -> "module:Class" (imported on first use).
BUILTIN = {
    "torch": "saibench_jupyter.backends._torch:TorchTrainer",
    "jax": "saibench_jupyter.backends._jax:JaxTrainer",
    "numpy": "saibench_jupyter.backends._numpy:NumpyTrainer",
}


def available() -> dict[str, str]:
    """Every backend name with where its trainer lives (built-ins, then entry points)."""
    return available_plugins(GROUP, BUILTIN)


def trainer_class(backend: str) -> type[Trainer]:
    """The trainer of ``backend``.

    Raises
    ------
    KeyError
        For an unknown backend (the message lists the known ones).
    ImportError
        When the backend's library is not installed (the message says what to install).
    """
    try:
        return load_plugin(GROUP, BUILTIN, backend, "backend")  # type: ignore[no-any-return]
    except ImportError as exc:
        raise ImportError(f"the {backend} backend needs {exc.name or backend}: "
                          f"pip install 'saibench-jupyter[{backend}]'") from exc


__all__ = ["BUILTIN", "MASK", "LoweredModel", "ModelGraphs", "NativeCheckpoint", "NativeTrace", "Trainer",
           "TrainSettings", "TrainingDiverged", "available", "graphs_of", "init_params", "lower", "pad_fields",
           "split_target", "trainer_class", "with_gradients"]
