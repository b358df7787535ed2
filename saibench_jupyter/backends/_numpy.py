"""The NumPy backend: native classical models, ``Estimator`` (fit/predict) and ``Solver`` (no training).

Such a model's graph is its native wrapper, possibly between conversions: conversions
run per record (they may call user converters), the wrapper on the whole batch.
An ``Estimator`` is fitted once per stage on every training record (one checkpoint);
a ``Solver`` is never trained: it maps each input to its output on demand. Either may
report checkpoints while it runs, through a keyword argument ``checkpoint``
(:mod:`._native_checkpoints`): a solver's calls become checkpoints of its test predictions,
an estimator's calls during ``fit`` checkpoints of its training.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from ..sail import Estimator, Solver, sum_counts, takes_checkpoint
from ._lowering import LoweredModel, Op, all_builtin, builtin_step, record_shape
from ._native_checkpoints import CheckpointCalls, NativeCheckpoint, NativeTrace
from ._padding import MASK
from ._trainer import ConvertRecord, Trainer, TrainSettings, refuse_gradients


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
        #: what a native model reported during the last predict or train_epoch
        self._trace: NativeTrace | None = None
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
            traced = -1
            for i, child in enumerate(children):
                before = self._trace
                # Only the estimator learns; what follows it maps its outputs to the task's type.
                x = self._run(task, child, x, fit_y if i == _native_index(children) else None)
                traced = i if self._trace is not before else traced
            if 0 <= traced < len(children) - 1 and fit_y is None:
                self._follow(task, children[traced + 1:])
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
                if takes_checkpoint(native.fn):
                    return self._solve(native, _records(x))
                return np.stack([np.asarray(native.fn(r)) for r in _records(x)])
            if isinstance(native, Estimator):
                obj = self._objects[op.path]
                flat = np.asarray(x).reshape(len(x), -1)
                if fit_y is not None:
                    classes = self._one_hot(task, fit_y)
                    self._classes[op.path] = classes
                    if takes_checkpoint(obj.fit):
                        self._fit(op.path, obj, flat, _targets(fit_y, classes))
                    else:
                        obj.fit(flat, _targets(fit_y, classes))
                classes = self._classes.get(op.path, 0)
                out = _probabilities(obj, flat, classes) if classes else np.asarray(obj.predict(flat))
                return out.reshape(len(x), *record_shape(op.output)) if _known(op.output) else out
        raise ValueError(f"the NumPy backend runs Estimator and Solver models, not {op.kind!r}")

    def _solve(self, solver: Solver, records: list[Any]) -> Any:
        """Run a solver that reports checkpoints on each record; its kept calls become batches.

        Call n's batch holds each record's answer at its n-th call, or its final answer where
        it finished before (its time then counts in full, or in a sweep its final solve's).
        """
        import numpy as np

        settings = self.settings
        runs, outs = [], []
        for r in records:
            calls = CheckpointCalls(settings.checkpoint_spacing, int(settings.checkpoints) - 1,
                                    partial(_answer, record=r), sweep=solver.sweep)
            answer = solver.fn(r, checkpoint=calls)
            runs.append((calls, calls.stop(answer)))
            outs.append(np.asarray(answer))
        start = time.perf_counter()
        kept = [{cp.call: cp for cp in calls.kept} for calls, _ in runs]
        checkpoints = []
        for call in sorted({n for by_call in kept for n in by_call}):
            hits = [by_call.get(call) for by_call in kept]
            values = [out if hit is None else hit.value for hit, out in zip(hits, outs)]
            ms = sum(total if hit is None else hit.ms for hit, (_, total) in zip(hits, runs))
            counts = sum_counts(calls.counts if hit is None else hit.counts for hit, (calls, _) in zip(hits, runs))
            checkpoints.append(NativeCheckpoint(call, ms, np.stack(values), counts))
        paused = sum(calls.paused for calls, _ in runs) + time.perf_counter() - start
        earlier = sum(calls.earlier_ms for calls, _ in runs)
        self._trace = NativeTrace(tuple(checkpoints), sum(total for _, total in runs), paused * 1e3 + earlier,
                                  max((calls.calls for calls, _ in runs), default=0),
                                  sum_counts(calls.counts for calls, _ in runs),
                                  sum_counts(calls.earlier_counts for calls, _ in runs))
        return np.stack(outs)

    def _fit(self, path: str, obj: Any, x: Any, y: Any) -> None:
        """``fit`` with a ``checkpoint``: a kept call snapshots the estimator (or the function it passes)."""
        settings = self.settings

        def snapshot(value: Any) -> Any:
            state = self.state()
            state[path] = copy.deepcopy(obj) if value is None else _Predictor(value)
            return state

        calls = CheckpointCalls(settings.checkpoint_spacing, int(settings.checkpoints) - 1, snapshot)
        obj.fit(x, y, checkpoint=calls)
        total = calls.stop()
        self._trace = NativeTrace(tuple(calls.kept), total, calls.paused * 1e3, calls.calls, calls.counts)

    def _follow(self, task: str, steps: list[Op]) -> None:
        """Carry a solver's checkpoint batches through the steps after it (untimed: counted as paused)."""
        trace = self._trace
        if trace is None:
            return
        start = time.perf_counter()
        followed = []
        for cp in trace.checkpoints:
            value = cp.value
            for step in steps:
                value = self._run(task, step, value)
            followed.append(replace(cp, value=value))
        paused = trace.paused_ms + (time.perf_counter() - start) * 1e3
        self._trace = replace(trace, checkpoints=tuple(followed), paused_ms=paused)

    def native_trace(self) -> NativeTrace | None:
        return self._trace

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

        refuse_gradients(y, "the NumPy backend")
        lowered = self.model.tasks[task]
        self._trace = None
        pred = self._run(task, lowered.root, x[order], y[order])
        err = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1) - np.asarray(y[order]).reshape(len(pred), -1)
        return float(np.mean(err * err))

    def predict(self, task: str, x: Any) -> Any:
        self._trace = None
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


class _Predictor:
    """An estimator's checkpoint given as a prediction function: ``predict`` is that function."""

    def __init__(self, fn: Any) -> None:
        self.predict = fn


def _answer(value: Any, *, record: Any) -> Any:
    """A solver checkpoint's answer for ``record``: a copy of the value, or what a function gives for it."""
    import numpy as np

    if value is None:
        raise TypeError("a Solver's checkpoint takes its current answer: checkpoint(y), or checkpoint(fn) "
                        "with fn(x) -> y")
    return np.array(value(record) if callable(value) else value, copy=True)


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
