"""One trainer contract for every backend, so that backends differ only in how they compute.

The runtime drives a :class:`Trainer` through a fixed lifecycle: ``reset`` (initial
weights from :func:`._lowering.init_params`, a fresh optimiser), ``compile`` (one-time costs,
timed apart), ``train_epoch`` per epoch with a batch order drawn by :func:`epoch_order` (the
same for every backend), ``state``/``load_state`` for checkpoints, ``predict`` for
tests, ``gradients`` for ``Gradients(...)``. Batching, seeding, the optimiser (Adam by
default, PyTorch's defaults) and the losses by task kind (:func:`._lowering.loss_kind`) are
fixed here; a backend implements the arithmetic.

Data come as NumPy: ``x`` and ``y`` are arrays with a leading record axis, or, for
atoms, mappings of such arrays per field (see :mod:`._lowering` for the layout). A task
trained on derivatives too (``Train.Gradients``, force matching) gets ``y`` from
:func:`with_gradients`: the values and the gradients' targets, sliced per record alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ._lowering import LoweredModel
from ._native_checkpoints import NativeTrace, spacing_ratio

#: ``convert(chain, record) -> value``: apply a conversion chain to one record (no batch
#: axis), with user converters run for real; works on NumPy, PyTorch and JAX arrays.
ConvertRecord = Callable[[Any, Any], Any]


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: reported as a diverged run, not as a crash."""

    def __init__(self, loss: float, epoch: int) -> None:
        self.loss = loss
        self.epoch = epoch
        super().__init__(f"the training loss is {loss} after epoch {epoch}")


@dataclass(frozen=True)
class TrainSettings:
    """How a model is trained; every backend honours all of it.

    Parameters
    ----------
    epochs : int
        Passes over the training records per task and stage; one checkpoint each.
    batch_size : int
        Records per optimiser step (the last batch of an epoch may be smaller).
    learning_rate : float
        The optimiser's step size.
    optimizer : str
        ``"adam"`` (PyTorch's defaults: betas 0.9/0.999, eps 1e-8) or ``"sgd"``.
    seed : int
        Seeds initial weights, batch order and dropout.
    device : str
        ``"cpu"`` or ``"cuda"``.
    checkpoints : int
        At most this many checkpoints per stage from a native model that reports its own
        (``checkpoint(...)`` calls), its final answer included.
    checkpoint_spacing : int or str
        Which of those calls become checkpoints: every k-th (an integer, 1 by default),
        ``"geometric"`` (calls 1, 2, 4, 8, ..., as benchopt samples) or ``"geometric:r"``.
    gradient_weight : float
        Weight of the derivative term in the loss of a task trained on derivatives too
        (``Train.Gradients``): mean squared error of the outputs plus ``gradient_weight``
        times that of their gradients (``force_weight`` is accepted for it).
    """

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    device: str = "cpu"
    checkpoints: int = 50
    checkpoint_spacing: int | str = 1
    gradient_weight: float = 1.0

    #: parameter names that reach the settings (``lr`` is accepted for ``learning_rate``)
    ALIASES: ClassVar[dict[str, str]] = {"lr": "learning_rate", "optimiser": "optimizer", "batch": "batch_size",
                                         "force_weight": "gradient_weight"}

    @classmethod
    def names(cls) -> set[str]:
        """Every parameter name a problem or model may use to set a training setting."""
        return {f.name for f in fields(cls)} | set(cls.ALIASES)

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={self.optimizer!r}: use 'adam' or 'sgd'")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if int(self.checkpoints) < 1:
            raise ValueError(f"checkpoints={self.checkpoints!r}: keep at least 1 (the final answer)")
        spacing_ratio(self.checkpoint_spacing)
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device={self.device!r}: use 'cpu' or 'cuda'")
        if not float(self.gradient_weight) >= 0.0:
            raise ValueError(f"gradient_weight={self.gradient_weight!r}: use a weight of 0 or more")


#: The key of a training target's values when the task also trains on derivatives.
VALUE_KEY = "value"
#: The prefix of the key of the derivative targets: ``"d/positions"`` holds d(output)/d(positions).
GRADIENT_PREFIX = "d/"


def with_gradients(value: Any, field: str | None, gradients: Any) -> dict[str, Any]:
    """A training target with derivatives: ``{"value": y, "d/<field>": dy/dx}``, sliced per record like atoms.

    ``field`` is the input field differentiated (atoms), or None for the input itself (key ``"d/"``).
    """
    return {VALUE_KEY: value, GRADIENT_PREFIX + (field or ""): gradients}


def split_target(y: Any) -> tuple[Any, str | None, Any]:
    """``(values, field, gradients)`` of a target from :func:`with_gradients`; ``(y, None, None)`` for others."""
    if not isinstance(y, dict) or VALUE_KEY not in y:
        return y, None, None
    key = next(k for k in y if k.startswith(GRADIENT_PREFIX))
    return y[VALUE_KEY], key[len(GRADIENT_PREFIX):] or None, y[key]


def refuse_gradients(y: Any, who: str) -> None:
    """Raise when ``y`` carries derivative targets that ``who`` (a loss, a backend) cannot train on.

    Raises
    ------
    ValueError
        For a target from :func:`with_gradients`.
    """
    if split_target(y)[2] is not None:
        raise ValueError(f"{who} cannot train on derivative targets (Train.Gradients): they need a "
                         "differentiable model (PyTorch or JAX) and a task trained by mean squared error (Predict)")


def epoch_order(seed: int, stage: int, epoch: int, n: int) -> Any:
    """The order records are visited in one epoch: the same for every backend."""
    import numpy as np

    return np.random.default_rng([seed, stage, epoch]).permutation(n)


class Trainer(ABC):
    """Trains and runs one lowered model on one backend.

    Parameters
    ----------
    model : LoweredModel
        The model, lowered.
    settings : TrainSettings
        Training settings.
    convert : ConvertRecord
        Applies a conversion chain with user converters to one record.
    """

    backend: ClassVar[str] = ""
    #: False for models that need no training (classical solvers)
    trains: ClassVar[bool] = True
    #: True when training is epochs of optimiser steps (False: one ``fit`` per stage)
    epochs: ClassVar[bool] = True
    #: True when a first call at a new shape pays one-off costs (JIT compilation, kernel
    #: selection) that the runtime pays once, untimed; NumPy's first call costs what any other does
    warms_up: ClassVar[bool] = True

    def __init__(self, model: LoweredModel, settings: TrainSettings, convert: ConvertRecord) -> None:
        self.model = model
        self.settings = settings
        self.convert = convert

    @abstractmethod
    def reset(self) -> None:
        """Initial weights (from ``init_params(model, settings.seed)``) and a fresh optimiser."""

    def compile(self, task: str, x: Any, y: Any) -> None:  # noqa: B027 - optional hook
        """Pay ``task``'s one-time costs for training on ``x``, ``y``: compile the training step, put the
        data on the device, run the step once (first runs load kernels and grow memory pools).

        The runtime calls it right before the first timed epoch and reports its time apart
        (``compile_ms``), so the first epoch costs what the others do. It must leave the
        weights, the optimiser state and every random generator as they were: a run gives
        the same numbers with or without it. The default does nothing.
        """

    @abstractmethod
    def train_epoch(self, task: str, x: Any, y: Any, order: Any) -> float:
        """One epoch over the records in ``order`` in batches; returns the mean loss.

        The call returns only when the device has finished (timers stop after it).
        """

    @abstractmethod
    def predict(self, task: str, x: Any) -> Any:
        """The model's outputs for ``x`` as NumPy (inference mode, no gradients)."""

    @abstractmethod
    def gradients(self, task: str, x: Any, field: str | None) -> Any:
        """d(sum of outputs)/d(input) for one record ``x`` (a batch of one), as NumPy.

        ``field`` names the input field to differentiate for atoms (``positions``).
        """

    @abstractmethod
    def state(self) -> Any:
        """A copy of the weights (for a checkpoint)."""

    @abstractmethod
    def load_state(self, state: Any) -> None:
        """Restore weights from :meth:`state`."""

    def native(self) -> Any:
        """The model as its library holds it (a module, parameters, an estimator); None by default."""
        return None

    def flops(self, task: str, x: Any, y: Any | None, train: bool) -> float | None:
        """Floating-point operations of one training step on the batch (``train``) or one
        prediction of it; ``None`` where the backend cannot count them."""
        return None

    def sync(self) -> None:  # noqa: B027 - optional hook
        """Wait for the device (before a timer stops)."""

    def peak_memory(self) -> int | None:
        """Peak device memory in bytes, where the device reports it (GPUs)."""
        return None

    def native_trace(self) -> NativeTrace | None:
        """The checkpoints a native model reported during the last ``predict`` or ``train_epoch``.

        None when no model of this backend reports its own (the default); the NumPy
        backend's ``Solver`` and ``Estimator`` may (see :mod:`._native_checkpoints`).
        """
        return None


def is_finite(loss: float) -> bool:
    """False for NaN and infinities."""
    import math

    return math.isfinite(loss)
