"""Model resolution: hyper-parameter grids, sub-models from ``Require(Model, ...)``, type checks.

A model is dry-run once per task of the problem. ``Suggest`` grids are expanded (each
value dry-run again, since the graph may depend on it); every ``Require(Model, ...)``
slot is filled by each model that solves the slot's task, recursively, with a depth
limit and a cycle guard; each composition is type-checked through the converter graph.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sail import (
    CheckedGraph,
    GraphError,
    Location,
    ModelMeta,
    ParsedModule,
    SailError,
    SailType,
    SubModel,
    TaskSignature,
    Trace,
    backends,
    check,
)
from ._converters import Chain, ConverterGraph, NoConversion
from ._instances import ModelChoice, label_of

MAX_GRID = 4096

Runner = Callable[[Mapping[str, Any]], list[Trace]]


@dataclass
class Refusal:
    """Why a model (or one of its grid points) does not fit: before it becomes a Rejection."""

    module: str
    reason: str
    location: Location | None = None
    details: tuple[str, ...] = ()
    fix: str | None = None
    #: the model declined with Fail (an expected non-pairing), rather than failed
    expected: bool = False


@dataclass
class Resolution:
    """The choices a model offers for some tasks, and the refusals met on the way."""

    choices: list[ModelChoice] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    #: True when any dry run required sub-models (so any model change may change this)
    composite: bool = False


def _split(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    fixed = {k: v for k, v in overrides.items() if not isinstance(v, list)}
    grids = {k: tuple(v) for k, v in overrides.items() if isinstance(v, list)}
    return fixed, grids


def expand_grid(run: Runner, overrides: Mapping[str, Any]) -> list[tuple[dict[str, Any], list[Trace]]]:
    """Bind every suggested parameter: dry-run, read ``Suggest`` grids, expand, repeat.

    ``overrides`` binds parameters up front (a list value is a grid that replaces the
    module's own ``Suggest``). Returns each complete binding with its traces.
    """
    fixed, grids = _split(overrides)
    pending = [dict(fixed, **dict(zip(grids, combo))) for combo in itertools.product(*grids.values())]
    done: list[tuple[dict[str, Any], list[Trace]]] = []
    while pending:
        bindings = pending.pop(0)
        traces = run(bindings)
        suggested: dict[str, tuple[Any, ...]] = {}
        for t in traces:
            for k, v in t.suggestions.items():
                suggested.setdefault(k, v)
        # A Fail reached without looking at any unbound parameter happens at every value.
        settled = any(t.failure is not None and not t.params_observed for t in traces)
        if not suggested or settled:
            done.append((bindings, traces))
            continue
        combos = [dict(bindings, **dict(zip(suggested, c))) for c in itertools.product(*suggested.values())]
        if len(done) + len(pending) + len(combos) > MAX_GRID:
            raise SailError(f"the parameter grid has more than {MAX_GRID} points",
                            fix="suggest fewer values, or bind some parameters with discover(params=...)")
        pending = combos + pending
    return done


@dataclass
class ResolverCache:
    """What model resolution remembers between discoveries (owned by the planner).

    ``resolutions`` maps (model digest, tasks, stack, overrides, depth) to a
    :class:`Resolution`; ``products`` keeps composite models' compositions so that an
    unchanged one is the *same* object (join blocks are reused by identity); ``checks``
    keeps type-checked graphs. All of it depends on the converters and on support
    names: the planner clears it when they change.
    """

    resolutions: dict[tuple[Any, ...], Resolution] = field(default_factory=dict)
    checks: dict[tuple[Any, ...], tuple[dict[str, CheckedGraph], tuple[Chain, ...]]] = field(default_factory=dict)
    signatures: dict[TaskSignature, TaskSignature] = field(default_factory=dict)
    #: (slot signature, stack) -> (candidate outcomes, choices found, refusal details)
    candidates: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[ModelChoice], list[str]]] = field(
        default_factory=dict)
    #: (composite, grid point, tasks, slots) -> (the candidate lists, the compositions made of
    #: them, and those compositions by their picks)
    products: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[ModelChoice],
                                          dict[tuple[ModelChoice, ...], ModelChoice]]] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget everything."""
        for store in (self.resolutions, self.checks, self.candidates, self.products, self.signatures):
            store.clear()

    def forget(self, digest: str) -> None:
        """Forget what a module version that no longer exists produced."""
        for store in (self.resolutions, self.checks, self.products):
            for key in [k for k in store if k[0] == digest]:
                del store[key]


class ModelResolver:
    """Resolves models against tasks, for one discovery, over a cache that outlives it.

    Parameters
    ----------
    models : sequence of ParsedModule
        Every model a ``Require(Model, ...)`` may pick.
    run : callable
        ``run(model, task, bindings) -> Trace``: the planner's memoised dry run.
    converters : ConverterGraph
        Resolves ``Convert`` nodes.
    overrides : callable
        ``overrides(module) -> dict`` of parameter values the user bound.
    cache : ResolverCache
        Results of earlier discoveries.
    max_depth : int
        Deepest sub-model nesting.
    """

    def __init__(self, models: Sequence[ParsedModule],
                 run: Callable[[ParsedModule, TaskSignature, Mapping[str, Any]], Trace],
                 converters: ConverterGraph, overrides: Callable[[ParsedModule], dict[str, Any]],
                 cache: ResolverCache, max_depth: int = 3) -> None:
        self.models = list(models)
        self._run = run
        self.converters = converters
        self._overrides = overrides
        self.cache = cache
        self.max_depth = max_depth
        self._checked: set[tuple[Any, ...]] = set()
        self.resolved = 0

    def resolve(self, model: ParsedModule, tasks: tuple[TaskSignature, ...],
                stack: tuple[tuple[str, tuple[TaskSignature, ...]], ...] = ()) -> Resolution:
        """Every choice of ``model`` (grid point × sub-models) that solves all ``tasks``."""
        overrides = self._overrides(model)
        key = (model.digest, tasks, stack, repr(sorted(overrides.items())) if overrides else "", self.max_depth)
        hit = self.cache.resolutions.get(key)
        # A plain model depends on its own source only; a composite on every model that may
        # fill its slots, so it is re-checked once per discovery (cheaply, over the memo).
        if hit is not None and (not hit.composite or key in self._checked):
            return hit
        self._checked.add(key)
        res = self._resolve(model, tasks, stack)
        self.resolved += 1
        if hit is not None and _same(hit, res):
            res = hit  # unchanged: keep the identity, so the planner's blocks stay valid
        self.cache.resolutions[key] = res
        return res

    def _resolve(self, model: ParsedModule, tasks: tuple[TaskSignature, ...],
                 stack: tuple[tuple[str, tuple[TaskSignature, ...]], ...]) -> Resolution:
        out = Resolution()

        def run(bindings: Mapping[str, Any]) -> list[Trace]:
            return [self._run(model, t, bindings) for t in tasks]

        try:
            points = expand_grid(run, self._overrides(model))
        except SailError as exc:
            out.refusals.append(Refusal(model.name, exc.what, model.location))
            return out
        failures: list[Refusal] = []
        for bindings, traces in points:
            label = label_of(model.name, bindings)
            bad = next((t for t in traces if not t.ok), None)
            if bad is not None:
                task = tasks[traces.index(bad)]
                site = bad.failure_site or (bad.error.location if bad.error else None)
                failures.append(Refusal(label, _for_task(bad.reason, task, len(tasks)), site,
                                        fix=bad.error.fix if bad.error else None,
                                        expected=bad.failure is not None))
                continue
            metas = [t.meta for t in traces]
            out.composite |= any(m.requires for m in metas)  # type: ignore[union-attr]
            try:
                self._compose(model, tasks, bindings, metas, stack, out, failures)  # type: ignore[arg-type]
            except Exception as exc:  # a bug must cost one module, not the whole discovery
                failures.append(Refusal(label, f"internal error of SAIBench: {type(exc).__name__}: {exc}",
                                        model.location, fix="this is a bug in SAIBench: please report it"))
        # One reason for every grid point (MLP can't Segment at any width) is said once.
        reasons = {f.reason for f in failures}
        if failures and len(reasons) == 1 and not out.choices and len(failures) == len(points):
            f = failures[0]
            out.refusals.append(Refusal(model.name, f.reason, f.location, f.details, f.fix, f.expected))
        else:
            out.refusals.extend(failures)
        return out

    def _compose(self, model: ParsedModule, tasks: tuple[TaskSignature, ...], bindings: dict[str, Any],
                 metas: list[ModelMeta], stack: tuple[tuple[str, tuple[TaskSignature, ...]], ...],
                 out: Resolution, failures: list[Refusal]) -> None:
        label = label_of(model.name, bindings)
        slots: dict[str, SubModel] = {}
        for meta in metas:
            for sub in meta.requires:
                old = slots.setdefault(sub.slot, sub)
                if (old.task, old.input, old.output) != (sub.task, sub.input, sub.output):
                    failures.append(Refusal(label, f"the Require at {sub.slot} asks for different "
                                            "models in different tasks", sub.site))
                    return
        check_key = (model.digest, repr(sorted(bindings.items())), tasks)
        checked = self.cache.checks.get(check_key)
        if checked is None:
            try:
                checked = self.cache.checks[check_key] = self._check(tasks, metas)
            except SailError as exc:
                failures.append(Refusal(label, exc.what, exc.location or model.location, fix=exc.fix))
                return
        graphs, chains = checked
        options: list[list[ModelChoice]] = []
        for sub in slots.values():
            # Interned: equal slot signatures of different problems become one object, so
            # the memo lookups below compare by identity.
            sig = TaskSignature(sub.task, sub.input, sub.output)
            sig = self.cache.signatures.setdefault(sig, sig)
            found, details = self._candidates(model.name, tasks, sig, stack)
            if not found:
                failures.append(Refusal(
                    label, f"no model solves Require(Model, {sub.task}, {sub.input!r}, {sub.output!r})",
                    sub.site, tuple(details)))
                return
            options.append(found)
        product_key = (*check_key, tuple(slots))
        hit = self.cache.products.get(product_key)
        if hit is not None and len(hit[0]) == len(options) and all(a is b for a, b in zip(hit[0], options)):
            out.choices.extend(hit[1])  # same candidates as last time: same compositions
            return
        # Compositions whose picks are unchanged objects are reused (identity keeps the
        # planner's blocks valid); the pool is rebuilt, so stale compositions drop out.
        before = hit[2] if hit is not None else {}
        pool: dict[tuple[ModelChoice, ...], ModelChoice] = {}
        own = frozenset.intersection(*(backends(m.graph) for m in metas))
        for picks in itertools.product(*options):
            choice = before.get(picks)
            if choice is None:
                usable = own.intersection(*(p.backends for p in picks))
                choice = ModelChoice(model, dict(bindings), tasks, graphs, tuple(zip(slots, picks)), chains, usable)
            pool[picks] = choice
        made = list(pool.values())
        self.cache.products[product_key] = (tuple(options), made, pool)
        out.choices.extend(made)

    def _candidates(self, parent: str, parent_tasks: tuple[TaskSignature, ...], sig: TaskSignature,
                    stack: tuple[tuple[str, tuple[TaskSignature, ...]], ...]) -> tuple[list[ModelChoice], list[str]]:
        # The stack holds (model, the tasks it is solving): meeting one again is a cycle.
        inner = (*stack, (parent, parent_tasks))
        outcomes: list[Resolution | str] = []
        for candidate in self.models:
            if (candidate.name, (sig,)) in inner:
                path = " → ".join(n for n, _ in inner[[n for n, _ in inner].index(candidate.name):])
                outcomes.append(f"{candidate.name}: Require cycle {path} → {candidate.name}")
            elif len(inner) > self.max_depth:
                outcomes.append(f"{candidate.name}: sub-models nest deeper than max_depth={self.max_depth}")
            else:
                outcomes.append(self.resolve(candidate, (sig,), inner))
        key = (sig, inner)
        hit = self.cache.candidates.get(key)
        if hit is not None and len(hit[0]) == len(outcomes) and all(
                a is b or a == b for a, b in zip(hit[0], outcomes)):
            return hit[1], hit[2]  # the same lists: callers can tell nothing changed
        found: list[ModelChoice] = []
        details: list[str] = []
        for outcome in outcomes:
            if isinstance(outcome, str):
                details.append(outcome)
                continue
            found.extend(outcome.choices)
            for r in outcome.refusals:
                details.append(f"{r.module}: {r.reason}")
                details.extend(f"  {d}" for d in r.details)
        self.cache.candidates[key] = (tuple(outcomes), found, details)
        return found, details

    def _check(self, tasks: tuple[TaskSignature, ...],
               metas: list[ModelMeta]) -> tuple[dict[str, CheckedGraph], tuple[Chain, ...]]:
        chains: list[Chain] = []

        def convert(source: SailType, target: SailType) -> tuple[SailType, str]:
            try:
                chain = self.converters.resolve(source, target)
            except NoConversion as exc:
                raise GraphError(exc.reason, fix="add a @ConverterDefinition for this conversion, "
                                 "or change the types") from None
            chains.append(chain)
            return chain.output, chain.label

        graphs = {t.kind: check(m.graph, t.input, t.output, convert=convert) for t, m in zip(tasks, metas)}
        return graphs, tuple(chains)


def _same(a: Resolution, b: Resolution) -> bool:
    return (a.composite == b.composite and len(a.choices) == len(b.choices)
            and all(x is y for x, y in zip(a.choices, b.choices)) and a.refusals == b.refusals)


def _for_task(reason: str, task: TaskSignature, n: int) -> str:
    return reason if n == 1 else f"{reason} (task {task})"
