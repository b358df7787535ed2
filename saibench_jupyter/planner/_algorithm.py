"""Algorithm 1 of the paper, one call of it: problem → hardware → software → model → metric → ranking.

Each level dry-runs its candidate modules in the context the earlier levels built and
keeps them, or rejects them with the reason the module gave (``Fail``), the error it
raised, or what it lacks. :class:`Discovery` holds one call's state; what outlives the
call sits in the planner's :class:`DiscoveryMemo`.
"""

from __future__ import annotations

import ast
import functools
import textwrap
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from ..repository import Repository
from ..sail import (
    COUNTERS,
    RANKING_FIELDS,
    ConverterRun,
    DryRun,
    FileStamp,
    HardwareRun,
    MetricMeta,
    MetricRun,
    ModelRun,
    ModuleKind,
    ParsedModule,
    ProblemMeta,
    ProblemRun,
    SailError,
    SailType,
    SoftwareRun,
    Trace,
    TypeVariable,
    Value,
    probe_sources,
    probed_dry_run,
    unknown_name,
    unknown_names,
)
from ._blocks import Block
from ._converters import ConverterGraph, ConverterSpec
from ._instances import (
    HardwareInstance,
    HardwareView,
    MetricInfo,
    ProblemInstance,
    RankingInfo,
    Rejection,
    SoftwareInstance,
    label_of,
    software_for,
)
from ._lattice import DiscoveryStats, Lattice, Scenario
from ._machine import Machine
from ._memo import DiscoveryMemo
from ._models import ModelResolver, expand_grid

Names = str | Sequence[str] | None
Context = tuple[tuple[str, str], ...]


class Discovery:
    """One discovery over a repository: Algorithm 1, level by level (:meth:`run`).

    Parameters
    ----------
    repo_ref : weakref to Repository
        The planner's weak reference to the repository of modules, which scenarios hold (the
        same object every call, so that unchanged join blocks stay valid).
    memo : DiscoveryMemo
        What earlier discoveries of this repository computed; read and filled.
    filters : mapping
        Module names each kind is restricted to (``None``: every module).
    machine : Machine
        What hardware modules are checked against.
    params : mapping
        Parameter values the user bound (see :func:`discover`).
    max_depth : int
        Deepest sub-model and generic-converter nesting.
    time_limit : float
        Seconds one dry run may take.
    """

    @property
    def repo(self) -> Repository:
        """The repository discovered (its caller holds it while discovery runs)."""
        repo = self.repo_ref()
        if repo is None:
            raise RuntimeError("the repository of this discovery no longer exists; discover again")
        return repo

    def __init__(self, repo_ref: weakref.ref[Repository], memo: DiscoveryMemo,
                 filters: Mapping[ModuleKind, Names], machine: Machine, params: Mapping[str, Any], max_depth: int,
                 time_limit: float) -> None:
        # Weakly: the memo keeps closures over this object (a converter graph's dry runs), and the
        # repository keeps the memo; a strong reference would keep the repository alive for ever.
        self.repo_ref = repo_ref
        self.memo = memo
        self.filters = filters
        self.machine = machine
        self.params = dict(params)
        self.max_depth = max_depth
        self.time_limit = time_limit
        # Read once: every dry run of this call sees the same support code and declarations.
        self.support = self.repo.support_names
        self.declared = self.repo.declarations
        self.stats = DiscoveryStats()
        self.rejections: list[Rejection] = []
        self.files: dict[str, FileStamp] = {}  # files read by this discovery's dry runs, with stamps

    def run(self, start: float) -> Lattice:
        """Join the repository's modules into scenarios (``start``: when the call began, for the stats)."""
        stats, memo = self.stats, self.memo
        probe_sources(self.repo.sources().values())  # sent to the probe process at the first dry run
        mods = {kind: self.candidates(kind) for kind in ModuleKind}
        graph = self.converter_graph(mods[ModuleKind.CONVERTER])
        resolver = self.model_resolver(graph)

        # 1. Problems: each grid point of each problem module that sets a model a task.
        seen = len(self.rejections)
        problems = self.problems(mods[ModuleKind.PROBLEM])
        stats.candidates["problem"] = len(problems) + len(self.rejections) - seen
        # 2. Hardware: each grid point this machine provides (the same for every problem).
        seen = len(self.rejections)
        hardware = self.hardware(mods[ModuleKind.HARDWARE])
        stats.candidates["hardware"] = len(problems) * (len(hardware) + len(self.rejections) - seen)
        # 3. Software: each module that accepts the hardware it runs on.
        software = {h.digest: self.software(mods[ModuleKind.SOFTWARE], h) for h in hardware}
        stats.candidates["software"] = len(problems) * len(hardware) * len(mods[ModuleKind.SOFTWARE])
        pairs = tuple((h, sw) for h in hardware for sw in software[h.digest])

        # 4-6, per problem. A scenario carries its problem's metrics and rankings, so these
        # are found first; then each model is joined to the pairs that serve the problem.
        models = mods[ModuleKind.MODEL]
        stamps = [(m.digest, memo.resolver_generation, repr(sorted(self.params.items())), self.max_depth)
                  for m in models]
        scenarios: list[Scenario] = []
        n_models, built_before = 0, memo.blocks.built
        for p in problems:
            prefixes = self.serving(p, pairs)  # the (hardware, software) pairs p can use
            metrics = self.metrics(mods[ModuleKind.METRIC], p)  # 5. metrics that measure p's tests
            rankings = self.rankings(mods[ModuleKind.RANKING], p, metrics)  # 6. rankings over those
            context = memo.context_of(p, prefixes, metrics, rankings, self.repo_ref)
            for m, stamp in zip(models, stamps):
                block = self.join(p, m, resolver, context, stamp)  # 4. models, with their sub-models
                scenarios.extend(block.scenarios)
                n_models += block.candidates
        stats.candidates["model"] = n_models
        stats.candidates["metric"] = len(problems) * len(mods[ModuleKind.METRIC])
        stats.candidates["ranking"] = len(problems) * len(mods[ModuleKind.RANKING])
        stats.resolutions = resolver.resolved
        stats.blocks_built = memo.blocks.built - built_before
        stats.seconds = time.perf_counter() - start
        return Lattice(scenarios, self.rejections, stats, graph, problems, hardware, software,
                       tuple(self.files.items()))

    # -- the levels ------------------------------------------------------------------
    def candidates(self, kind: ModuleKind) -> list[ParsedModule]:
        """The modules of ``kind`` the filters keep; one that names something no source defines is rejected."""
        found = self.repo.modules(kind)
        names = self.filters.get(kind)
        if names is not None:
            wanted = [names] if isinstance(names, str) else list(names)
            known = {m.name for m in found}
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise ValueError(f"no {kind.value} module named {', '.join(map(repr, unknown))} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
            found = [m for m in found if m.name in wanted]
        usable = []
        for m in found:
            missing = unknown_names(m, self.support)
            if missing:
                err = unknown_name(m, missing[0], self.support)
                self.rejections.append(Rejection(kind.value, m.name, err.what, (), err.location, fix=err.fix))
            else:
                usable.append(m)
        return usable

    def problems(self, modules: Sequence[ParsedModule]) -> list[ProblemInstance]:
        """Level 1: problem instances (grid points) that ran and declare a task for a model."""
        out = []
        for m in modules:
            search = self.repo.search_path(m.origin)
            # Relative input files are found in these folders: they are part of the context.
            run = functools.partial(ProblemRun, search=search)
            for bindings, trace in self.grid(m, run, "problem", key=tuple(map(str, search))):
                if not cast(ProblemMeta, trace.meta).model_tasks:
                    self.rejections.append(Rejection(
                        "problem", label_of(m.name, bindings), "declares no task for a model", (), m.location))
                    continue
                out.append(self.memo.instance(ProblemInstance, m, bindings, trace))
        return out

    def hardware(self, modules: Sequence[ParsedModule]) -> list[HardwareInstance]:
        """Level 2: hardware instances that ran and whose resources the machine has."""
        out = []
        for m in modules:
            for bindings, trace in self.grid(m, HardwareRun, "hardware"):
                inst = self.memo.instance(HardwareInstance, m, bindings, trace)
                lack = self.machine.lacks(inst.meta.resources)
                if lack:
                    self.rejections.append(Rejection("hardware", inst.label, lack, (), m.location))
                else:
                    out.append(inst)
        return out

    def software(self, modules: Sequence[ParsedModule], hw: HardwareInstance) -> list[SoftwareInstance]:
        """Level 3: software that runs on ``hw`` (it sees it as a :class:`HardwareView`)."""
        out = []
        for m in modules:
            trace = self.dry_run(m, SoftwareRun, ("hw", hw.digest), (HardwareView(hw),))
            if trace.ok:
                out.append(self.memo.instance(SoftwareInstance, m, {}, trace, hw.digest))
            else:
                self.rejections.append(_rejection("software", m.name, trace, (("hardware", hw.label),)))
        return out

    def serving(self, p: ProblemInstance, pairs: tuple[tuple[HardwareInstance, SoftwareInstance], ...]
                ) -> list[tuple[HardwareInstance, SoftwareInstance]]:
        """Level 3 for one problem: the (hardware, software) pairs that provide what ``p`` requires."""
        prefixes, refused = self.memo.prefixes_of(p, pairs, lambda: software_for(p, pairs))
        self.rejections.extend(refused)
        return prefixes

    def metrics(self, modules: Sequence[ParsedModule], p: ProblemInstance) -> tuple[MetricInfo, ...]:
        """Level 5: metrics that measure ``p``'s test records."""
        def measure() -> tuple[tuple[MetricInfo, ...], list[Rejection]]:
            out, refused = [], []
            tests = p.meta.test_records
            key = ("tests", tuple(sorted(tests.items())))
            for m in modules:
                trace = self.dry_run(m, MetricRun(m, tests), key)
                if trace.ok:
                    out.append(MetricInfo.of(m, cast(MetricMeta, trace.meta)))
                else:
                    refused.append(_rejection("metric", m.name, trace, (("problem", p.label),)))
            return tuple(out), refused

        metrics, refused = self.memo.metrics_of(p, modules, measure)
        self.rejections.extend(refused)
        return metrics

    def rankings(self, modules: Sequence[ParsedModule], p: ProblemInstance,
                 metrics: tuple[MetricInfo, ...]) -> tuple[RankingInfo, ...]:
        """Level 6: rankings whose metrics ``p``'s scenarios all have."""
        have = {m.name for m in metrics}
        out = []
        for m in modules:
            info = _ranking_info(m)
            missing = sorted(info.metrics - have)
            if missing:
                self.rejections.append(Rejection(
                    "ranking", m.name, f"needs metric {', '.join(missing)}, which the problem's "
                    f"scenarios do not have (they have {', '.join(sorted(have)) or 'none'})",
                    (("problem", p.label),), m.location, expected=True))
            else:
                out.append(info)
        return self.memo.intern(tuple(out))

    def join(self, p: ProblemInstance, m: ParsedModule, resolver: ModelResolver, context: tuple[Any, ...],
             stamp: tuple[Any, ...]) -> Block:
        """Level 4 for one (problem, model): each choice of ``m`` (grid point × sub-models) on each pair.

        The block is reused while ``context`` (problem, pairs, metrics, rankings) is the same
        object and ``stamp`` (model digest, resolver generation, parameters, depth) is equal.
        """
        block = self.memo.blocks.reusable(p, m, context, stamp)
        if block is None:
            block = self.memo.blocks.get(p, m, resolver.resolve(m, p.meta.model_tasks), context, stamp)
        self.rejections.extend(block.rejections)
        return block

    # -- what the model level needs ----------------------------------------------------
    def converter_graph(self, modules: list[ParsedModule]) -> ConverterGraph:
        """The converters that read as converters, as a graph that finds conversion chains."""
        def build() -> tuple[ConverterGraph, list[Rejection]]:
            specs, refused = [], []
            for m in modules:
                read = ConverterSpec.read(m, self.support, self.declared, self.time_limit)
                if isinstance(read, ConverterSpec):
                    specs.append(read)
                else:
                    refused.append(Rejection("converter", m.name, read.what, (), read.location, fix=read.fix))

            def run(spec: ConverterSpec, source: SailType, env: dict[TypeVariable, SailType]) -> Trace:
                return self.dry_run(spec.module, ConverterRun(spec.module), ("convert", source, tuple(env.items())),
                                    (Value(source),), type_bindings=env)

            return ConverterGraph(specs, run, max_depth=self.max_depth), refused

        key = (tuple(m.digest for m in modules), self.support, tuple(self.declared.values()), self.max_depth,
               self.time_limit)
        graph, refused = self.memo.converter_graph(key, build)
        self.rejections.extend(refused)
        return graph

    def model_resolver(self, graph: ConverterGraph) -> ModelResolver:
        """Resolves models against a problem's tasks, filling sub-model slots from every model."""
        declared = tuple(sorted(self.declared.items(), key=lambda kv: kv[0]))
        cache = self.memo.resolver_cache(self.support, declared)
        # Sub-models come from every model: the model filter picks the model under test only.
        return ModelResolver(
            self.repo.modules(ModuleKind.MODEL),
            lambda m, t, b: self.dry_run(m, ModelRun, (t,), (t.kind, t.input, t.output), b),
            graph, self.overrides, cache, self.max_depth)

    # -- dry runs --------------------------------------------------------------------
    def overrides(self, module: ParsedModule) -> dict[str, Any]:
        """The parameter values the user bound for ``module`` (``"MLP.hiddenSize"`` before ``"hiddenSize"``)."""
        if not self.params:
            return {}
        out = {}
        for p in module.params:
            for key in (f"{module.name}.{p}", p):
                if key in self.params:
                    out[p] = self.params[key]
                    break
        return out

    def grid(self, module: ParsedModule, ctx_type: Callable[[ParsedModule], DryRun], kind: str,
             key: tuple[Any, ...] = ()) -> list[tuple[dict[str, Any], Trace]]:
        """The grid points of ``module`` that ran; the others become rejections."""
        def run(bindings: Mapping[str, Any]) -> list[Trace]:
            return [self.dry_run(module, ctx_type, key, (), bindings)]

        try:
            points = expand_grid(run, self.overrides(module))
        except SailError as exc:
            self.rejections.append(Rejection(kind, module.name, exc.what, (), module.location, fix=exc.fix))
            return []
        good = []
        for bindings, (trace,) in points:
            if trace.ok:
                good.append((bindings, trace))
            else:
                self.rejections.append(_rejection(kind, label_of(module.name, bindings), trace, ()))
        return good

    def dry_run(self, module: ParsedModule, ctx: Callable[[ParsedModule], DryRun] | DryRun, key: tuple[Any, ...],
                args: tuple[Any, ...] = (), bindings: Mapping[str, Any] | None = None,
                type_bindings: Mapping[TypeVariable, SailType] | None = None) -> Trace:
        """``module`` dry-run in context ``ctx``, or its remembered trace (``key``: what the context depends on)."""
        full = self.memo.trace_key(module, key, bindings, self.declared)
        trace = self.memo.trace(full, self.time_limit)
        if trace is not None:
            self.stats.dry_run_hits += 1
        else:
            self.stats.dry_runs += 1
            recorder = ctx if isinstance(ctx, DryRun) else ctx(module)
            # Tried in the probe process first: a run stuck in C code can't hang discovery.
            trace = probed_dry_run(module, recorder, args, bindings, support=self.support, declared=self.declared,
                                   type_bindings=type_bindings, time_limit=self.time_limit)
            self.memo.keep_trace(full, trace, self.time_limit)
        self.files.update(trace.files)
        return trace


def _rejection(kind: str, label: str, trace: Trace, context: Context) -> Rejection:
    site = trace.failure_site or (trace.error.location if trace.error else None)
    # A module's own Fail (a metric reading another kind of Test included) is no defect.
    return Rejection(kind, label, trace.reason, context, site, fix=trace.error.fix if trace.error else None,
                     expected=trace.failure is not None)


def _ranking_info(m: ParsedModule) -> RankingInfo:
    """Metrics a ranking reads, found statically (``a.WallTime``) so no branch is missed."""
    fn = cast(ast.FunctionDef, ast.parse(textwrap.dedent(m.source)).body[0])
    # The scenarios are the parameters without defaults; those with defaults are the ranking's own.
    scenarios = {a.arg for a in fn.args.args[:len(fn.args.args) - len(fn.args.defaults)]}
    used = {n.attr for n in ast.walk(fn)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in scenarios}
    used -= {*COUNTERS, *RANKING_FIELDS}  # not metrics: every scenario has them
    return RankingInfo(m.name, len(scenarios) == 2, frozenset(used), m.options.get("better", "lower"))
