"""Execution semantics: the problem runs top to bottom with a live model, in stages.

``Train.K(...)`` gathers training records. The first ``Test.*`` or ``Model.*`` call after
new training data starts a *stage*: the model is trained from its initial weights on
every record gathered so far (a record declared again, as Fig. 8's cumulative
``sum(train_stages[0:i+1])`` does, counts once), task by task in the order the problem
first declared them, with a checkpoint after every epoch of the last task. Data-style
tests (``Test.Classify(x, y)``) gathered in the stage are evaluated at every checkpoint;
procedural ones (``Model.Predict``, ``Test.Compare``, ``Gradients``) run once, on the
final model, and count at the stage's last checkpoint. Metrics are evaluated per
checkpoint. A problem with no training data is one stage with one checkpoint.

Work counters at a checkpoint measure the work that produced it: this stage's training
up to the checkpoint (samples, epochs, milliseconds, flops) plus the inference that
produced its test predictions. Timers cover only model work (no data loading, no
metric code) and stop after the device has finished. One-time costs (compilation, data
moved to the device, first runs) are paid before the first timed epoch and prediction and
reported apart, as ``compile_ms``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backends import NativeTrace, Trainer, TrainingDiverged, epoch_order, is_finite, with_gradients
from ..sail import (
    COMPARISON_KINDS,
    AtomSet,
    Context,
    ConvertNode,
    ParsedModule,
    SailError,
    SailList,
    capability_of,
    sum_counts,
    tallying,
)
from ._convert import ChainBook, RecordConverter
from ._data import open_input, stack_records
from ._metrics import evaluate
from ._result import COUNTERS, Point, RunError, ScenarioResult


def collate(values: list[Any], trainer: Trainer) -> Any:
    """Records as one batch for ``trainer``'s backend: float32 for PyTorch and JAX (their
    weights are float32); the records' own dtype for NumPy models (``Estimator``, ``Solver``),
    so that an ``Input`` declared float64 reaches a classical solver in float64."""
    return stack_records(values, float32=trainer.backend != "numpy")


def _peak_rss() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass
class _Checkpoint:
    epoch: int
    state: Any
    counters: dict[str, float]
    loss: float | None


@dataclass
class _Stage:
    index: int
    checkpoints: list[_Checkpoint] = field(default_factory=list)
    tests: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    compared: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    procedural_ms: float = 0.0
    procedural_counts: dict[str, float] = field(default_factory=dict)


class ProblemExecution(Context):
    """The context a problem runs in at execution, driving the trainer stage by stage.

    Parameters
    ----------
    problem : ParsedModule
        The problem module.
    trainer : Trainer
        The live model.
    chains : ChainBook
        Conversions for ``Convert(value, type)`` in the problem.
    convert : RecordConverter
        Runs conversion chains.
    metrics : mapping
        Metric name to (module, function to call).
    environment : Environment
        The software environment (its capability implementations).
    namespace : mapping
        The execution globals (support names an implementation may be).
    search : sequence of Path
        Folders where relative input files are looked up.
    result : ScenarioResult
        Filled as the run goes (points are kept when a later stage fails).
    listener : callable, optional
        Told about progress as it happens, as ``listener(what, data)``: ``("stage", index)``
        when a stage starts training, ``("point", Point)`` for each checkpoint evaluated,
        ``("warning", RunError)`` for each metric that failed (pods stream these).
    """

    name = "execution"

    def __init__(self, problem: ParsedModule, trainer: Trainer, chains: ChainBook, convert: RecordConverter,
                 metrics: Mapping[str, tuple[ParsedModule, Callable[[], Any]]], environment: Any,
                 namespace: Mapping[str, Any], search: list[Any], result: ScenarioResult,
                 listener: Callable[[str, Any], None] | None = None) -> None:
        self.problem = problem
        self.trainer = trainer
        self.chains = chains
        self.convert = convert
        self.metrics = metrics
        self.environment = environment
        self.namespace = namespace
        self.search = search
        self.result = result
        self.listener = listener
        self.train: dict[str, list[tuple[Any, ...]]] = {}
        self._seen: dict[tuple[Any, ...], tuple[str, int]] = {}
        self._last_train: tuple[str, int] | None = None
        #: (kind, record index) -> (field or None, d(output)/d(field) target) from Train.Gradients
        self.train_gradients: dict[tuple[str, int], tuple[str | None, Any]] = {}
        self._dirty = False
        self.stage: _Stage | None = None
        self.stages = 0
        self.epoch = 0
        self._predicted: dict[int, tuple[str, Any, Any]] = {}
        self._capabilities: dict[str, Any] = {}
        self._warm: set[tuple[str, int]] = set()

    # -- the problem's primitives ------------------------------------------------------
    def input(self, source: Any, type: Any) -> Any:
        return open_input(str(source), type, self.search)

    def suggest(self, param: Any, values: tuple[Any, ...]) -> None:
        pass  # every parameter is bound at execution

    def task(self, concept: str, kind: str, args: tuple[Any, ...]) -> Any:
        if not args:
            raise SailError(f"{concept}.{kind}() records nothing", module=self.problem.name,
                            fix=f"pass the data: {concept}.{kind}(x, y)")
        if concept == "Train" and kind == "Gradients":
            self._gather_gradients(args)
            return None
        if concept == "Train":
            self._gather(kind, args)
            return None
        stage = self._ensure_trained()
        if concept == "Model":
            return self._call_model(stage, kind, args[0])
        if kind in COMPARISON_KINDS:
            stage.compared.setdefault(kind, []).append(tuple(args))
        else:
            y = args[1] if len(args) > 1 else args[0]
            stage.tests.setdefault(kind, []).append((args[0], y))
        return None

    def require(self, what: Any, args: tuple[Any, ...]) -> Any:
        cap = capability_of(what)
        if cap is None:
            raise SailError(f"Require({what!r}) does not name a capability", module=self.problem.name)
        name = cap.capability_name()
        if name not in self._capabilities:
            self._capabilities[name] = self._implementation(name)
        return self._capabilities[name]

    def convert_value(self, node: ConvertNode, value: Any) -> Any:
        return self.convert(self.chains.for_value(node, value), value)

    def gradients(self, wrt: Any, output: Any) -> Any:
        import numpy as np

        hit = self._predicted.get(id(output))
        if hit is None or hit[2] is not output:
            raise SailError("Gradients(wrt, output): output is not a value Model.Kind(...) returned",
                            module=self.problem.name,
                            fix="pass the model's prediction itself, e.g. e = Model.Predict(x); Gradients(pos, e)")
        kind, x, _ = hit
        as_list = isinstance(wrt, list | tuple)
        target = np.stack([np.asarray(w) for w in wrt]) if as_list else np.asarray(wrt)
        field_name = None
        if isinstance(x, AtomSet):
            field_name = next((k for k, v in x.fields.items() if v.shape == target.shape
                               and np.allclose(v, target)), None)
            ok = field_name is not None
        else:
            ok = np.shape(x) == target.shape and np.allclose(np.asarray(x), target)
        if not ok:
            raise SailError("Gradients(wrt, output): wrt is not the model's input (or one field of it) "
                            "for that output", module=self.problem.name,
                            fix="differentiate with respect to what went into Model.Kind(x): x itself, "
                            "or x.map(lambda a: a.pos) for atoms")
        batch = collate([x], self.trainer)
        if ("Gradients " + kind, 1) not in self._warm:  # the first call compiles (JAX): not timed
            self._warm.add(("Gradients " + kind, 1))
            start = time.perf_counter()
            self.trainer.gradients(kind, batch, field_name)
            self.result.compile_ms += (time.perf_counter() - start) * 1e3
        with tallying() as counts:
            start = time.perf_counter()
            grad = self.trainer.gradients(kind, batch, field_name)
            self.trainer.sync()
        if self.stage is not None:
            self.stage.procedural_ms += (time.perf_counter() - start) * 1e3
            self.stage.procedural_counts = sum_counts((self.stage.procedural_counts, counts))
        return SailList(np.asarray(g) for g in grad) if as_list else grad

    # -- training data and stages ---------------------------------------------------------
    def _gather(self, kind: str, args: tuple[Any, ...]) -> None:
        key = (kind, *(id(a) for a in args))
        if key in self._seen:
            self._last_train = self._seen[key]
            return
        self._seen[key] = self._last_train = (kind, len(self.train.get(kind, ())))
        # self.train keeps the objects alive, so the ids in self._seen stay unique.
        self.train.setdefault(kind, []).append(args)
        self._dirty = True
        if self.stage is not None:
            self.finish_stage()

    def _gather_gradients(self, args: tuple[Any, ...]) -> None:
        """``Train.Gradients(wrt, target)``: the derivative of the last training record's output with
        respect to ``wrt`` (its input, or one field of atoms) should be ``target``."""
        import numpy as np

        if len(args) != 2 or self._last_train is None:
            raise SailError("Train.Gradients(wrt, target) follows a training record: Train.K(x, y), then "
                            "the derivative target of y with respect to x (or a field of x)",
                            module=self.problem.name,
                            fix="e.g. Train.Predict(atoms, energy); Train.Gradients(atoms.positions, -forces)")
        kind, index = self._last_train
        x = self.train[kind][index][0]
        wrt, target = np.asarray(args[0]), np.asarray(args[1])
        field_name: str | None = None
        if isinstance(x, AtomSet):
            field_name = next((k for k, v in x.fields.items() if v.shape == wrt.shape and np.array_equal(v, wrt)),
                              None)
            ok = field_name is not None
        else:
            ok = np.shape(x) == wrt.shape and np.array_equal(np.asarray(x), wrt)
        if not ok or target.shape != wrt.shape:
            raise SailError("Train.Gradients(wrt, target): wrt is not the last training record's input (or one "
                            "field of it), or target has another shape than wrt", module=self.problem.name,
                            fix="differentiate with respect to what went into Train.K(x, y): x itself, or "
                            "x.positions for atoms, with one target value per coordinate")
        self.train_gradients[(kind, index)] = (field_name, target)
        self._dirty = True
        if self.stage is not None:
            self.finish_stage()

    def _targets(self, kind: str, records: list[tuple[Any, ...]], y: Any) -> Any:
        """``y``, with the derivative targets of ``Train.Gradients`` when the task's records have them."""
        marked = [self.train_gradients.get((kind, i)) for i in range(len(records))]
        if all(m is None for m in marked):
            return y
        fields = {m[0] for m in marked if m is not None}
        if any(m is None for m in marked) or len(fields) > 1:
            raise SailError(f"Train.Gradients: some Train.{kind} records have derivative targets and others "
                            "do not (or differentiate other fields)", module=self.problem.name,
                            fix=f"follow every Train.{kind}(x, y) by Train.Gradients on the same field")
        grads = collate([m[1] for m in marked if m is not None], self.trainer)
        return with_gradients(y, fields.pop(), grads)

    def _ensure_trained(self) -> _Stage:
        if self.stage is not None and not self._dirty:
            return self.stage
        if self.stage is not None:
            self.finish_stage()
        self.stages += 1
        self.stage = _Stage(self.stages)
        self._dirty = False
        if self.listener is not None:
            self.listener("stage", self.stages)
        self._train_stage(self.stage)
        return self.stage

    def _train_stage(self, stage: _Stage) -> None:
        trainer, settings = self.trainer, self.trainer.settings
        trainer.reset()
        counters = dict.fromkeys(COUNTERS, 0.0)
        kinds = list(self.train) if trainer.trains else []
        if not kinds:
            stage.checkpoints.append(_Checkpoint(0, None, counters, None))
            return
        for i, kind in enumerate(kinds):
            records = self.train[kind]
            x = collate([r[0] for r in records], trainer)
            y = x if len(records[0]) == 1 else collate([r[1] for r in records], trainer)
            y = self._targets(kind, records, y)
            n = len(records)
            bs = min(settings.batch_size, n)
            per_record = trainer.flops(kind, _head(x, bs), _head(y, bs), True)
            # One-time costs (compilation, data to the device, a first run) right before the timed
            # epochs, so that nothing cools the caches in between; reported apart as compile_ms.
            start = time.perf_counter()
            trainer.compile(kind, x, y)
            self.result.compile_ms += (time.perf_counter() - start) * 1e3
            last = i == len(kinds) - 1
            epochs = settings.epochs if trainer.epochs else 1
            for epoch in range(1, epochs + 1):
                self.epoch = epoch
                order = epoch_order(settings.seed, stage.index, epoch + 1000 * i, n)
                with tallying() as counts:
                    start = time.perf_counter()
                    loss = trainer.train_epoch(kind, x, y, order)
                    trainer.sync()
                ms = (time.perf_counter() - start) * 1e3
                trace = trainer.native_trace()
                if trace is not None:  # an estimator's own checkpoints during fit: their snapshots untimed
                    ms -= trace.paused_ms
                    if last:
                        for cp in trace.checkpoints:
                            at = dict(sum_counts((counters, cp.counts)),
                                      TrainingMilliseconds=counters["TrainingMilliseconds"] + cp.ms)
                            stage.checkpoints.append(_Checkpoint(cp.call, cp.value, at, None))
                counters["TrainingMilliseconds"] += ms
                counters.update(sum_counts((counters, counts)))  # Count(name, n) in the model's work
                counters["SamplesSeen"] += n
                counters["Epochs"] += 1
                if per_record is not None:
                    counters["Flops"] += per_record / bs * n
                if not is_finite(loss):
                    raise TrainingDiverged(loss, epoch)
                if last:  # after an estimator's own checkpoints, the final one's "epoch" is its number of calls
                    at_epoch = epoch if trace is None or not trace.checkpoints else max(epoch, trace.calls)
                    stage.checkpoints.append(_Checkpoint(at_epoch, trainer.state(), dict(counters), loss))

    def _predict(self, kind: str, x: Any) -> tuple[Any, float, dict[str, float]]:
        """Predictions, their milliseconds and named counts; a first call per shape (JIT compilation) is run
        untimed first."""
        key = (kind, len(next(iter(x.values()))) if isinstance(x, dict) else len(x))
        if self.trainer.warms_up and key not in self._warm:
            self._warm.add(key)
            start = time.perf_counter()
            self.trainer.predict(kind, x)
            self.trainer.sync()
            self.result.compile_ms += (time.perf_counter() - start) * 1e3
        with tallying() as counts:
            start = time.perf_counter()
            out = self.trainer.predict(kind, x)
            self.trainer.sync()
        ms = (time.perf_counter() - start) * 1e3
        trace = self.trainer.native_trace()
        if trace is None:
            return out, ms, counts
        # what is not the final answer's work: checkpoint snapshots, a sweep's earlier solves
        return out, ms - trace.paused_ms, {k: v - trace.paused_counts.get(k, 0.0) for k, v in counts.items()}

    def _call_model(self, stage: _Stage, kind: str, x: Any) -> Any:
        predicted, ms, counts = self._predict(kind, collate([x], self.trainer))
        stage.procedural_ms += ms
        stage.procedural_counts = sum_counts((stage.procedural_counts, counts))
        out = predicted[0]
        self._predicted[id(out)] = (kind, x, out)
        return out

    def finish_stage(self) -> None:
        """Evaluate the open stage's tests and metrics at each of its checkpoints."""
        stage, self.stage = self.stage, None
        if stage is None:
            return
        trainer = self.trainer
        last = len(stage.checkpoints)
        # One batch per test kind for the whole stage: backends keep it on the device.
        inputs = {kind: collate([r[0] for r in records], trainer) for kind, records in stage.tests.items()}
        number = 0
        for c, cp in enumerate(stage.checkpoints, 1):
            if cp.state is not None and last > 1:
                trainer.load_state(cp.state)  # the last one leaves the live model as trained
            predictions: dict[str, tuple[Any, float, dict[str, float]]] = {}
            traces: dict[str, NativeTrace] = {}
            for kind in stage.tests:
                predictions[kind] = self._predict(kind, inputs[kind])
                trace = trainer.native_trace()
                if trace is not None and trace.checkpoints:
                    traces[kind] = trace
            epoch = cp.epoch
            # A solver's own checkpoints come first, each with its answers and its time up to the call.
            for call, answers, ms, counts in solver_checkpoints(predictions, traces):
                number += 1
                self._point(stage, number, call, sum_counts((cp.counters, counts)), answers, ms, None, False)
                epoch = max(epoch, max(t.calls for t in traces.values()))
            number += 1
            answers = {kind: p for kind, (p, _, _) in predictions.items()}
            inference = sum(ms for _, ms, _ in predictions.values())
            counts = sum_counts([cp.counters, *(n for _, _, n in predictions.values())])
            self._point(stage, number, epoch, counts, answers, inference, cp.loss, c == last)

    def _point(self, stage: _Stage, number: int, epoch: int, counters: dict[str, float],
               answers: Mapping[str, Any], inference: float, loss: float | None, final: bool) -> None:
        """Evaluate the metrics on one checkpoint's answers (untimed) and emit its point."""
        collections: dict[str, list[tuple[Any, ...]]] = {
            kind: [(x, y, p) for (x, y), p in zip(records, answers[kind])] for kind, records in stage.tests.items()}
        if final:
            inference += stage.procedural_ms
            counters = sum_counts((counters, stage.procedural_counts))
            collections.update({k: list(v) for k, v in stage.compared.items()})
        counters["InferenceMilliseconds"] = inference
        counters["ElapsedMilliseconds"] = counters["TrainingMilliseconds"] + inference
        counters["PeakMemoryBytes"] = float(self.trainer.peak_memory() or _peak_rss())
        values, raw, errors = evaluate(self.metrics, collections, counters, stage.index, number)
        self.result.warnings.extend(errors)
        point = Point(stage.index, number, epoch, counters, values, raw, loss)
        self.result.points.append(point)
        if self.listener is not None:
            for error in errors:
                self.listener("warning", error)
            self.listener("point", point)

    # -- capabilities ----------------------------------------------------------------------
    def _implementation(self, name: str) -> Any:
        impl = dict(self.environment.provides).get(name)
        if impl is None:
            raise SailError(f"the software does not provide {name}", module=self.problem.name,
                            fix=f"choose software that calls Provides({name}, ...)")
        if impl in self.namespace:
            obj = self.namespace[impl]
        else:
            import importlib

            mod, _, attr = impl.partition(":")
            try:
                obj = importlib.import_module(mod)
                for part in filter(None, attr.split(".")):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise SailError(f"the implementation {impl!r} of {name} cannot be loaded: {exc}",
                                module=self.problem.name,
                                fix="install what the software module's Environment(pip=[...]) lists") from exc
        return obj() if isinstance(obj, type) else obj


def solver_checkpoints(predictions: Mapping[str, tuple[Any, float, Mapping[str, float]]],
                       traces: Mapping[str, NativeTrace]) -> list[tuple[int, dict[str, Any], float, dict[str, float]]]:
    """A solver's kept ``checkpoint`` calls as ``(call, answers per test kind, inference ms, named counts)``.

    At call n each test kind has its answers at that call, or its final answers where the
    solver made fewer calls on it; its time (and its ``Count``s) are the solver's to the
    call plus what the rest of its prediction (conversions) took.
    """
    calls = sorted({cp.call for trace in traces.values() for cp in trace.checkpoints})
    out = []
    for call in calls:
        answers: dict[str, Any] = {}
        inference = 0.0
        parts: list[Mapping[str, float]] = []
        for kind, (final, ms, counts) in predictions.items():
            trace = traces.get(kind)
            hit = None if trace is None else next((cp for cp in trace.checkpoints if cp.call == call), None)
            if trace is None or hit is None:
                answers[kind], inference = final, inference + ms
                parts.append(counts)
            else:
                answers[kind], inference = hit.value, inference + hit.ms + max(ms - trace.model_ms, 0.0)
                rest = {k: v - trace.model_counts.get(k, 0.0) for k, v in counts.items()}
                parts += [hit.counts, rest]
        out.append((call, answers, inference, sum_counts(parts)))
    return out


def _head(x: Any, n: int) -> Any:
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}
    return x[:n]


def diverged(exc: TrainingDiverged, stage: int | None, lr: float) -> RunError:
    """The error of a run whose loss stopped being a number."""
    return RunError(f"training diverged: the loss is {exc.loss} after epoch {exc.epoch}", stage=stage,
                    kind="diverged", fix=f"lower the learning rate (it is {lr:g}) or normalise the data")


def run_problem(run: ProblemExecution, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Run the problem function to the end and evaluate its last stage."""
    from ..sail import using

    with using(run):
        fn(**kwargs)
    run.finish_stage()
