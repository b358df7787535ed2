"""The NumPy backend: native classical models, ``Estimator`` (fit/predict) and ``Solver`` (no training).

Such a model's graph is its native wrapper, possibly between conversions: conversions
run per record (they may call user converters), the wrapper on the whole batch.
An ``Estimator`` is fitted once per stage on every training record (one checkpoint);
a ``Solver`` is never trained: it maps each input to its output on demand.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from ..sail import Estimator, Solver
from ._lowering import LoweredModel, Op, all_builtin, builtin_step, record_shape
from ._padding import MASK
from ._trainer import ConvertRecord, Trainer, TrainSettings


class NumpyTrainer(Trainer):
    """Runs ``Estimator`` and ``Solver`` models (and pure conversions) with NumPy."""

    backend: ClassVar[str] = "numpy"
    epochs: ClassVar[bool] = False
    warms_up: ClassVar[bool] = False

    def __init__(self, model: LoweredModel, settings: TrainSettings, convert: ConvertRecord) -> None:
        super().__init__(model, settings, convert)
        self._pristine = {op.path: copy.deepcopy(op.native.obj) for op in model.natives
                          if isinstance(op.native, Estimator)}
        self._objects: dict[str, Any] = {}
        #: estimators trained on one-hot targets (as labels): how many classes to give back;
        #: 0 for every other estimator (regressors, classifiers of labels)
        self._classes: dict[str, int] = {}
        self.reset()

    @property
    def trains(self) -> bool:  # type: ignore[override]
        return bool(self._pristine)

    def reset(self) -> None:
        self._objects = {path: copy.deepcopy(obj) for path, obj in self._pristine.items()}

    def _run(self, task: str, op: Op, x: Any, fit_y: Any = None) -> Any:
        import numpy as np

        if op.kind == "pipeline":
            children = list(op.children)
            for i, child in enumerate(children):
                # Only the estimator learns; what follows it maps its outputs to the task's type.
                x = self._run(task, child, x, fit_y if i == _native_index(children) else None)
            return x
        if op.kind == "convert":
            if all_builtin(op.chain):
                for step in op.chain.steps:
                    x = builtin_step(step, x, np)
                return x
            return np.stack([np.asarray(self.convert(op.chain, r)) for r in _records(x)])
        if op.kind == "native":
            native = op.native
            if isinstance(native, Solver):
                return np.stack([np.asarray(native.fn(r)) for r in _records(x)])
            if isinstance(native, Estimator):
                obj = self._objects[op.path]
                flat = np.asarray(x).reshape(len(x), -1)
                if fit_y is not None:
                    classes = self._one_hot(task, fit_y)
                    self._classes[op.path] = classes
                    obj.fit(flat, _targets(fit_y, classes))
                classes = self._classes.get(op.path, 0)
                out = _probabilities(obj, flat, classes) if classes else np.asarray(obj.predict(flat))
                return out.reshape(len(x), *record_shape(op.output)) if _known(op.output) else out
        raise ValueError(f"the NumPy backend runs Estimator and Solver models, not {op.kind!r}")

    def _one_hot(self, task: str, y: Any) -> int:
        """How many classes ``task``'s targets one-hot encode; 0 when they are values or labels.

        The problem's declaration decides, never the data's width: only a ``Classify`` task
        whose declared output is a vector of several entries has one-hot targets (a
        regression onto ``Tensor(1)`` or ``Tensor(k)`` keeps its numbers as they are).
        """
        import numpy as np

        if task != "Classify" or np.ndim(y) != 2:
            return 0
        declared = self.model.tasks[task].root.output
        width = int(np.prod(record_shape(declared))) if _known(declared) else int(np.shape(y)[1])
        return width if width > 1 else 0

    def train_epoch(self, task: str, x: Any, y: Any, order: Any) -> float:
        import numpy as np

        lowered = self.model.tasks[task]
        pred = self._run(task, lowered.root, x[order], y[order])
        err = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1) - np.asarray(y[order]).reshape(len(pred), -1)
        return float(np.mean(err * err))

    def predict(self, task: str, x: Any) -> Any:
        return self._run(task, self.model.tasks[task].root, x)

    def gradients(self, task: str, x: Any, field: str | None) -> Any:
        raise TypeError("a NumPy model (Estimator, Solver) has no gradients: use a PyTorch or JAX model")

    def state(self) -> Any:
        return {path: copy.deepcopy(obj) for path, obj in self._objects.items()}

    def native(self) -> Any:
        """The fitted estimator (a dict of them by path when there are several); None for a ``Solver``."""
        if len(self._objects) == 1:
            return next(iter(self._objects.values()))
        return dict(self._objects) or None

    def load_state(self, state: Any) -> None:
        self._objects = {path: copy.deepcopy(obj) for path, obj in state.items()}


def _native_index(children: list[Op]) -> int:
    return next((i for i, c in enumerate(children) if c.kind == "native"), -1)


def _records(x: Any) -> list[Any]:
    if isinstance(x, dict):
        from ..sail import AtomSet

        mask = x.get(MASK)
        rows = [slice(None) if mask is None else mask[i] > 0 for i in range(len(next(iter(x.values()))))]
        # a ragged batch: each configuration without its padding
        return [AtomSet(**{k: v[i][rows[i]] for k, v in x.items() if k != MASK}) for i in range(len(rows))]
    return list(x)


def _targets(y: Any, classes: int) -> Any:
    """The targets as scikit-learn takes them: class labels for one-hot rows, else 1-D for one column."""
    import numpy as np

    arr = np.asarray(y)
    if classes:
        return arr.argmax(axis=1)
    return arr.reshape(len(arr)) if arr.ndim > 1 and arr.shape[1] == 1 else arr


def _probabilities(obj: Any, x: Any, classes: int) -> Any:
    """A classifier's answer in the task's one-hot layout: probabilities where it has them."""
    import numpy as np

    out = np.zeros((len(x), classes), dtype=np.float32)
    labels = np.asarray(getattr(obj, "classes_", np.arange(classes)), dtype=np.int64)
    if hasattr(obj, "predict_proba"):
        out[:, labels] = obj.predict_proba(x)
    else:
        out[np.arange(len(x)), np.asarray(obj.predict(x), dtype=np.int64)] = 1.0
    return out


def _known(t: Any) -> bool:
    try:
        record_shape(t)
    except ValueError:
        return False
    return True
