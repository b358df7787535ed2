"""``run_scenario``: run one scenario (discovered, or its plan) in this process and return its points.

A run works from the scenario's :class:`~saibench_jupyter.planner.ScenarioPlan`: the
modules, bound parameters, model tree and conversion chains discovery chose. A pod runs
the plan its spec carries, so execution never needs discovery. The lifecycle is fixed:
support code, settings, hardware, the live model, the problem in stages, metrics per
checkpoint. Whatever fails is caught here and becomes the
result's ``error`` (with the module, file or cell, line, stage and checkpoint); the
points of the stages that finished are kept.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..backends import TrainingDiverged, TrainSettings, trainer_class
from ..planner import ScenarioPlan
from ..sail import SailError
from ._blame import run_error
from ._convert import ChainBook, RecordConverter
from ._execution import ProblemExecution, diverged, run_problem
from ._execution_namespace import ExecutionNamespace
from ._hardware import hardware
from ._model import build_model, seed_everything
from ._result import RunError, ScenarioResult
from ._trained import TrainedModel

if TYPE_CHECKING:
    from ..planner import Scenario
    from ..repository import Repository


def resolve_settings(scenario: Scenario | ScenarioPlan, overrides: Mapping[str, Any] | None = None,
                     defaults: Mapping[str, Any] | None = None) -> TrainSettings:
    """Training settings: defaults, then the problem's and the model's parameters, then ``overrides``.

    A problem or model parameter named like a setting (``epochs``, ``batch_size``,
    ``learning_rate`` or ``lr``, ``optimizer``, ``seed``) sets it; ``defaults`` are the
    default values of such parameters (``def MNIST(epochs=4)``).
    """
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    values: dict[str, Any] = {}
    plan = scenario if isinstance(scenario, ScenarioPlan) else scenario.plan()
    for source in (defaults or {}, plan.problem_params, plan.model.params, overrides or {}):
        for key, value in source.items():
            name = TrainSettings.ALIASES.get(key, key)
            if name in names:
                values[name] = value
            elif source is overrides:
                raise KeyError(f"unknown training setting {key!r} (settings: {', '.join(sorted(names))})")
    values["device"] = plan.resources.device
    return TrainSettings(**values)


def run_scenario(scenario: Scenario | ScenarioPlan, *, settings: Mapping[str, Any] | None = None,
                 repository: Repository | None = None,
                 listener: Callable[[str, Any], None] | None = None,
                 namespace: ExecutionNamespace | None = None, keep_model: bool = False) -> ScenarioResult:
    """Run ``scenario`` here, in this process, and return its work–precision points.

    Parameters
    ----------
    scenario : Scenario or ScenarioPlan
        A scenario from :func:`saibench_jupyter.discover`, or a plan (``scenario.plan()``,
        or ``ScenarioPlan.from_dict``, as a pod reads it from its spec).
    settings : mapping, optional
        Training settings that override the scenario's (``{"epochs": 5, "seed": 1}``).
    repository : Repository, optional
        Where support code comes from; the scenario's (or plan's) own repository by default.
    listener : callable, optional
        Called as the run goes: ``listener("stage", index)``, ``listener("point", Point)``
        and ``listener("warning", RunError)`` (a failing metric).
    namespace : ExecutionNamespace, optional
        The repository's support code, already run (:meth:`ExecutionNamespace.of`), for a
        process that runs nothing else in it: a pod forked from a warm worker. The run
        defines its modules in it. By default the support code runs anew for this run.
    keep_model : bool
        Keep the trained model as ``.model`` (a :class:`TrainedModel`) when the run finishes
        ``ok``: its weights are those of the last stage's final checkpoint, the ones the metrics
        saw last. Off by default: a run then keeps no weights, native modules or data.

    Returns
    -------
    ScenarioResult
        ``.status`` (``ok``, ``failed``, ``diverged``), ``.error``, ``.points`` (one per stage ×
        checkpoint), ``.to_dataframe()`` and, with ``keep_model``, ``.model``. Failures are
        reported there, never raised.
    """
    started = time.perf_counter()
    try:
        plan = scenario if isinstance(scenario, ScenarioPlan) else scenario.plan()
    except KeyError as exc:  # a metric or converter removed since discovery
        result = ScenarioResult(scenario.id, scenario.label, scenario.environment.backend,
                                scenario.resources.device, {})
        return _fail(result, RunError(f"{exc.args[0]}: it was removed since discovery",
                                      kind="error", fix="discover again, and run what it finds"), started)
    repo = repository if repository is not None else plan.repository
    backend = plan.backend
    try:
        if namespace is not None:
            ns = namespace
            ns.activate()
        else:
            ns = ExecutionNamespace.of(repo)
    except SailError as exc:
        result = ScenarioResult(plan.id, plan.label, backend, plan.resources.device, {})
        return _fail(result, run_error(exc, repo, None, None), started)
    problem = plan.problem
    problem_fn = ns.function(problem)
    model_fn = ns.function(plan.model.module)
    try:
        train_settings = resolve_settings(plan, settings, {**_defaults(model_fn), **_defaults(problem_fn)})
    except (KeyError, ValueError, TypeError) as exc:
        result = ScenarioResult(plan.id, plan.label, backend, plan.resources.device, {})
        return _fail(result, RunError(f"bad training settings: {exc}", kind="error",
                                      fix="use epochs, batch_size, learning_rate, optimizer, seed, checkpoints, "
                                      "checkpoint_spacing"), started)
    result = ScenarioResult(plan.id, plan.label, backend, train_settings.device,
                            dataclasses.asdict(train_settings))
    run: ProblemExecution | None = None
    try:
        chains = ChainBook(plan.chains)
        convert = RecordConverter({m.name: ns.function(m) for m in plan.converters})
        with hardware(plan.resources, backend):
            seed_everything(train_settings.seed)
            model = build_model(plan.model, ns, chains)
            trainer = trainer_class(backend)(model, train_settings, convert)
            metrics = {m.name: (m, ns.function(m)) for m in plan.metrics}
            run = ProblemExecution(problem, trainer, chains, convert, metrics, plan.environment, ns.globals,
                                   repo.search_path(problem.origin), result, listener)
            kwargs = _problem_arguments(problem, plan.problem_params, train_settings)
            run_problem(run, problem_fn, kwargs)
        if keep_model:
            result.model = TrainedModel(trainer, plan.model.tasks, plan.label)
    except TrainingDiverged as exc:
        result.status = "diverged"
        result.error = diverged(exc, run.stages if run else None, train_settings.learning_rate)
    except Exception as exc:
        stage = run.stages if run is not None and run.stages else None
        checkpoint = run.epoch if run is not None and run.epoch else None
        return _fail(result, run_error(exc, repo, stage, checkpoint, plan.model), started)
    result.wall_ms = (time.perf_counter() - started) * 1e3
    return result


def _fail(result: ScenarioResult, error: RunError, started: float) -> ScenarioResult:
    result.status = "failed"
    result.error = error
    result.wall_ms = (time.perf_counter() - started) * 1e3
    return result


def _defaults(fn: Any) -> dict[str, Any]:
    """A function's parameters that have default values, with those values."""
    import inspect

    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def _problem_arguments(problem: Any, params: Mapping[str, Any], settings: TrainSettings) -> dict[str, Any]:
    kwargs = {}
    for p in problem.params:
        setting = TrainSettings.ALIASES.get(p, p)
        if p in params:
            kwargs[p] = params[p]
        elif p in problem.defaults:
            continue
        elif hasattr(settings, setting):
            kwargs[p] = getattr(settings, setting)  # MNIST(epochs): the trainer's epochs
        else:
            raise SailError(f"parameter {p} of problem {problem.name} has no value", module=problem.name,
                            location=problem.location,
                            fix=f"give it a default, Suggest values, or bind it: discover(params={{'{p}': ...}})")
    return kwargs


