"""Benchmark discovery (paper Algorithm 1): join problem → hardware → software → model → metrics.

Each candidate module is dry-run in the context the earlier ones built and kept or
rejected with its reason. Dry runs are memoised by (module hash, context), and the
join is cached in blocks per (problem instance, model), so editing one module
re-plans only what used it.
"""

from __future__ import annotations

import ast
import functools
import gc
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from ..repository import Repository, RepositoryEvent
from ..sail import DryRunTimeout, SailError
from ..sail._decorators import ModuleKind
from ..sail._dryrun import (
    DEFAULT_TIME_LIMIT,
    ConverterRun,
    DryRun,
    HardwareRun,
    MetricRun,
    ModelRun,
    ProblemRun,
    SoftwareRun,
)
from ..sail._inputs import FileStamp, files_changed
from ..sail._meta import MetricMeta, ProblemMeta, Trace
from ..sail._names import unknown_name, unknown_names
from ..sail._parser import ParsedModule
from ..sail._symbolic import Value
from ..sail._types import SailType, TypeVariable
from ..sail._vetting import probe_sources, probed_dry_run
from ._blocks import BlockCache
from ._converters import ConverterGraph, ConverterSpec
from ._instances import (
    HardwareInstance,
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
from ._models import ModelResolver, ResolverCache, expand_grid

Names = str | Sequence[str] | None


class HardwareView:
    """What a software module sees of the hardware: ``hardware.device``, ``.cpus``, its params."""

    def __init__(self, instance: HardwareInstance) -> None:
        self._instance = instance

    def __getattr__(self, name: str) -> Any:
        inst = self._instance
        if name == "name":
            return inst.name
        if name == "params":
            return dict(inst.params)
        if name in inst.params:
            return inst.params[name]
        return getattr(inst.meta.resources, name)

    def __repr__(self) -> str:
        return f"<hardware {self._instance.label}: {self._instance.meta.resources}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for the probe process (the default would ask __getattr__ for __setstate__).
        return HardwareView, (self._instance,)


class Planner:
    """Discovery over one repository, with memoised dry runs that survive edits.

    Use :func:`discover`; it keeps one planner per repository.
    """

    def __init__(self, repo: Repository) -> None:
        # Weak: planners are kept per repository in a WeakKeyDictionary, whose values must
        # not keep their keys alive.
        self._repo = weakref.ref(repo)
        self._traces: dict[tuple[Any, ...], Trace] = {}
        self._timeouts: dict[tuple[Any, ...], float] = {}  # memo key -> limit it timed out under
        self._cache = ResolverCache()
        self._cache_key: tuple[Any, ...] | None = None
        self._blocks = BlockCache()
        self._contexts: dict[str, tuple[Any, ...]] = {}
        self._cache_generation = 0
        self._prefixes: dict[str, tuple[tuple[Any, ...], list[Any], list[Rejection]]] = {}
        self._interned: dict[Any, Any] = {}
        self._metric_sets: dict[tuple[str, ...], tuple[ProblemInstance, tuple[MetricInfo, ...], list[Rejection]]] = {}
        self._converters: tuple[tuple[Any, ...], ConverterGraph, list[Rejection]] | None = None
        self._conv_generation = 0
        self._instances: dict[tuple[Any, ...], Any] = {}
        self._last: tuple[tuple[Any, ...], Lattice] | None = None
        self._files: dict[str, FileStamp] = {}  # files read by this discovery's dry runs, with stamps
        self._stats = DiscoveryStats()
        self._lock = threading.RLock()
        repo.subscribe(self._forget)  # for as long as the repository lives

    @property
    def repo(self) -> Repository:
        """The repository this planner discovers from."""
        repo = self._repo()
        if repo is None:
            raise RuntimeError("the repository of this planner no longer exists")
        return repo

    def _forget(self, event: RepositoryEvent) -> None:
        # Keep memory bounded: drop what the old version of a module produced (under the
        # lock: the repository may change in another thread than a running discovery).
        if event.previous is not None:
            with self._lock:
                self._drop(event.previous.digest, event.name if event.action == "removed" else None)

    def _drop(self, gone: str, removed_model: str | None) -> None:
        for key in [k for k in self._traces if k[0] == gone]:
            del self._traces[key]
            self._timeouts.pop(key, None)
        for key in [k for k in self._instances if k[1] == gone]:
            del self._instances[key]
        self._cache.forget(gone)
        # Problem instances of the old version, and blocks of a model that is gone.
        dead = {d for d, ctx in self._contexts.items() if ctx[0].module.digest == gone}
        for d in dead:
            del self._contexts[d]
            self._prefixes.pop(d, None)
        for key in [k for k in self._metric_sets if k[0] in dead]:
            del self._metric_sets[key]
        self._blocks.forget(dead, removed_model)

    def _instance(self, cls: type[Any], m: ParsedModule, bindings: Mapping[str, Any], trace: Trace,
                  context: str = "") -> Any:
        # The same instance object for the same dry run, so join blocks can be reused.
        key = (cls.__name__, m.digest, repr(sorted(bindings.items())), context)
        inst = self._instances.get(key)
        if inst is None or inst.meta is not trace.meta:
            inst = self._instances[key] = cls(m, dict(bindings), trace.meta)
        return inst

    def _intern(self, value: Any) -> Any:
        # Equal values become the same object, so caches can compare by identity.
        return self._interned.setdefault(value, value)

    # -- dry runs ----------------------------------------------------------------------
    def _run(self, module: ParsedModule, ctx: Callable[[ParsedModule], DryRun] | DryRun, key: tuple[Any, ...],
             args: tuple[Any, ...] = (), bindings: Mapping[str, Any] | None = None,
             type_bindings: Mapping[TypeVariable, SailType] | None = None) -> Trace:
        full: tuple[Any, ...] = (module.digest, key, repr(sorted(bindings.items())) if bindings else "")
        if module.free_names and self._declared:
            # A declaration in another source may have changed: key on the classes themselves.
            full += tuple(self._declared[n] for n in sorted(module.free_names & self._declared.keys()))
        hit = self._traces.get(full)
        if hit is not None and hit.files and files_changed(hit.files):
            hit = None  # a .npy file that gave a type was created, changed or removed
        # A run stopped by the time limit is worth retrying only under a longer one.
        if hit is not None and not (isinstance(hit.error, DryRunTimeout)
                                    and self._time_limit > self._timeouts.get(full, 0.0)):
            self._stats.dry_run_hits += 1
            self._files.update(hit.files)
            return hit
        self._stats.dry_runs += 1
        recorder = ctx if isinstance(ctx, DryRun) else ctx(module)
        # Tried in the probe process first: a run stuck in C code can't hang discovery.
        trace = probed_dry_run(module, recorder, args, bindings, support=self._support, declared=self._declared,
                               type_bindings=type_bindings, time_limit=self._time_limit)
        self._traces[full] = trace
        self._files.update(trace.files)
        if isinstance(trace.error, DryRunTimeout):
            self._timeouts[full] = self._time_limit
        return trace

    # -- discovery -------------------------------------------------------------------
    def discover(self, **options: Any) -> Lattice:
        """See :func:`discover`."""
        # Discovery allocates ~10^5 long-lived objects: the cyclic collector would scan
        # them again and again (seen: +20% time, 250 ms pauses). Pause it for the call.
        # One discovery at a time per planner: its caches are shared (a UI may discover from
        # a background thread while a cell runs another).
        with self._lock:
            paused = gc.isenabled()
            gc.disable()
            try:
                return self._discover(**options)
            finally:
                if paused:
                    gc.enable()

    def _discover(self, *, problem: Names = None, model: Names = None, software: Names = None,
                  hardware: Names = None, metric: Names = None, ranking: Names = None,
                  machine: Machine | None = None, params: Mapping[str, Any] | None = None,
                  max_depth: int = 3, time_limit: float = DEFAULT_TIME_LIMIT) -> Lattice:
        start = time.perf_counter()
        repo = self.repo
        machine = machine or Machine.local()
        filters = {ModuleKind.PROBLEM: problem, ModuleKind.MODEL: model, ModuleKind.SOFTWARE: software,
                   ModuleKind.HARDWARE: hardware, ModuleKind.METRIC: metric, ModuleKind.RANKING: ranking}
        call = (repo.version, repr(filters), machine, repr(sorted((params or {}).items())), max_depth, time_limit)
        if self._last is not None and self._last[0] == call and not self._last[1].stale():
            return self._last[1].again(time.perf_counter() - start)
        self._stats = stats = DiscoveryStats()
        self._files = {}
        self._time_limit = time_limit
        self._params = dict(params or {})
        self._support = repo.support_names
        self._declared = repo.declarations
        probe_sources(repo.sources().values())  # sent to the probe process at the first dry run
        rejections: list[Rejection] = []
        mods = {kind: self._modules(kind, filters.get(kind), rejections) for kind in ModuleKind}

        conv_graph = self._converter_graph(mods[ModuleKind.CONVERTER], rejections, max_depth)
        declared = tuple(sorted(self._declared.items(), key=lambda kv: kv[0]))
        if self._cache_key != (self._conv_generation, self._support, declared):
            self._cache_key = (self._conv_generation, self._support, declared)
            self._cache.clear()
            self._cache_generation += 1
        # Sub-models come from every model: the model filter picks the model under test only.
        resolver = ModelResolver(
            repo.modules(ModuleKind.MODEL),
            lambda m, t, b: self._run(m, ModelRun, (t,), (t.kind, t.input, t.output), b),
            conv_graph, self._overrides, self._cache, max_depth)

        counted = len(rejections)
        problems = self._problems(mods[ModuleKind.PROBLEM], rejections)
        stats.candidates["problem"] = len(problems) + len(rejections) - counted
        counted = len(rejections)
        hardware_ = self._hardware(mods[ModuleKind.HARDWARE], machine, rejections)
        stats.candidates["hardware"] = len(problems) * (len(hardware_) + len(rejections) - counted)
        software_by_hw = {h.digest: self._software(mods[ModuleKind.SOFTWARE], h, rejections) for h in hardware_}
        n_software = len(mods[ModuleKind.SOFTWARE])
        stats.candidates["software"] = len(problems) * len(hardware_) * n_software
        pairs = tuple((h, sw) for h in hardware_ for sw in software_by_hw[h.digest])

        scenarios: list[Scenario] = []
        n_models, built_before = 0, self._blocks.built
        models = mods[ModuleKind.MODEL]
        stamps = [(m.digest, self._cache_generation, call[3], max_depth) for m in models]
        for p in problems:
            prefixes = self._prefixes_of(p, pairs, rejections)
            metrics = self._metrics(mods[ModuleKind.METRIC], p, rejections)
            rankings = self._rankings(mods[ModuleKind.RANKING], p, metrics, rejections)
            context = self._context_of(p, prefixes, metrics, rankings, self._repo)
            for m, own in zip(models, stamps):
                block = self._blocks.reusable(p, m, context, own)
                if block is None:
                    block = self._blocks.get(p, m, resolver.resolve(m, p.meta.model_tasks), context, own)
                scenarios.extend(block.scenarios)
                rejections.extend(block.rejections)
                n_models += block.candidates
        stats.candidates["model"] = n_models
        stats.candidates["metric"] = len(problems) * len(mods[ModuleKind.METRIC])
        stats.candidates["ranking"] = len(problems) * len(mods[ModuleKind.RANKING])
        stats.resolutions = resolver.resolved
        stats.blocks_built = self._blocks.built - built_before
        stats.seconds = time.perf_counter() - start
        lattice = Lattice(scenarios, rejections, stats, conv_graph, problems, hardware_, software_by_hw,
                          tuple(self._files.items()))
        self._last = (call, lattice)
        return lattice

    def _context_of(self, p: ProblemInstance, *parts: Any) -> tuple[Any, ...]:
        """What a problem's blocks depend on, as one tuple that stays the same object while unchanged."""
        context = (p, *parts)
        old = self._contexts.get(p.digest)
        if old is not None and all(a is b for a, b in zip(old, context)):
            return old
        self._contexts[p.digest] = context
        return context

    def _prefixes_of(self, p: ProblemInstance, pairs: tuple[tuple[HardwareInstance, SoftwareInstance], ...],
                     rejections: list[Rejection]) -> list[tuple[HardwareInstance, SoftwareInstance]]:
        """The (hardware, software) pairs that serve the problem (:func:`software_for`), cached per problem."""
        inputs = (p, *(x for pair in pairs for x in pair))
        hit = self._prefixes.get(p.digest)
        if hit is not None and len(hit[0]) == len(inputs) and all(a is b for a, b in zip(hit[0], inputs)):
            rejections.extend(hit[2])
            return hit[1]
        prefixes, local = software_for(p, pairs)
        self._prefixes[p.digest] = (inputs, prefixes, local)
        rejections.extend(local)
        return prefixes

    # -- module lists ------------------------------------------------------------------
    def _modules(self, kind: ModuleKind, names: Names, rejections: list[Rejection]) -> list[ParsedModule]:
        found = self.repo.modules(kind)
        if names is not None:
            wanted = [names] if isinstance(names, str) else list(names)
            known = {m.name for m in found}
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise ValueError(f"no {kind.value} module named {', '.join(map(repr, unknown))} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
            found = [m for m in found if m.name in wanted]
        support = self._support
        usable = []
        for m in found:
            missing = unknown_names(m, support)
            if missing:
                err = unknown_name(m, missing[0], support)
                rejections.append(Rejection(kind.value, m.name, err.what, (), err.location, fix=err.fix))
            else:
                usable.append(m)
        return usable

    def _overrides(self, module: ParsedModule) -> dict[str, Any]:
        if not self._params:
            return {}
        out = {}
        for p in module.params:
            for key in (f"{module.name}.{p}", p):
                if key in self._params:
                    out[p] = self._params[key]
                    break
        return out

    def _expand(self, module: ParsedModule, ctx_type: Callable[[ParsedModule], DryRun], kind: str,
                rejections: list[Rejection], context: tuple[tuple[str, str], ...] = (),
                key: tuple[Any, ...] = ()) -> list[tuple[dict[str, Any], Trace]]:
        def run(bindings: Mapping[str, Any]) -> list[Trace]:
            return [self._run(module, ctx_type, key, (), bindings)]

        try:
            points = expand_grid(run, self._overrides(module))
        except SailError as exc:
            rejections.append(Rejection(kind, module.name, exc.what, context, module.location, fix=exc.fix))
            return []
        good = []
        for bindings, (trace,) in points:
            if trace.ok:
                good.append((bindings, trace))
            else:
                rejections.append(_rejection(kind, label_of(module.name, bindings), trace, context))
        return good

    def _problems(self, modules: Iterable[ParsedModule], rejections: list[Rejection]) -> list[ProblemInstance]:
        out = []
        for m in modules:
            search = self.repo.search_path(m.origin)
            # Relative input files are found in these folders: they are part of the context.
            run = functools.partial(ProblemRun, search=search)
            for bindings, trace in self._expand(m, run, "problem", rejections,
                                                key=tuple(map(str, search))):
                meta = cast(ProblemMeta, trace.meta)
                if not meta.model_tasks:
                    rejections.append(Rejection(
                        "problem", label_of(m.name, bindings), "declares no task for a model",
                        (), m.location))
                    continue
                out.append(self._instance(ProblemInstance, m, bindings, trace))
        return out

    def _hardware(self, modules: Iterable[ParsedModule], machine: Machine,
                  rejections: list[Rejection]) -> list[HardwareInstance]:
        out = []
        for m in modules:
            for bindings, trace in self._expand(m, HardwareRun, "hardware", rejections):
                inst = self._instance(HardwareInstance, m, bindings, trace)
                lack = machine.lacks(inst.meta.resources)
                if lack:
                    rejections.append(Rejection("hardware", inst.label, lack, (), m.location))
                else:
                    out.append(inst)
        return out

    def _software(self, modules: Iterable[ParsedModule], hw: HardwareInstance,
                  rejections: list[Rejection]) -> list[SoftwareInstance]:
        out = []
        for m in modules:
            trace = self._run(m, SoftwareRun, ("hw", hw.digest), (HardwareView(hw),))
            if trace.ok:
                out.append(self._instance(SoftwareInstance, m, {}, trace, hw.digest))
            else:
                rejections.append(_rejection("software", m.name, trace, (("hardware", hw.label),)))
        return out

    def _metrics(self, modules: Iterable[ParsedModule], p: ProblemInstance,
                 rejections: list[Rejection]) -> tuple[MetricInfo, ...]:
        modules = list(modules)
        memo_key = (p.digest, *(m.digest for m in modules))
        hit = self._metric_sets.get(memo_key)
        if hit is not None and hit[0] is p:
            rejections.extend(hit[2])
            return hit[1]
        out, local = [], []
        tests = p.meta.test_records
        key = ("tests", tuple(sorted(tests.items())))
        for m in modules:
            trace = self._run(m, MetricRun(m, tests), key)
            if trace.ok:
                out.append(MetricInfo.of(m, cast(MetricMeta, trace.meta)))
            else:
                local.append(_rejection("metric", m.name, trace, (("problem", p.label),)))
        metrics = self._intern(tuple(out))
        self._metric_sets[memo_key] = (p, metrics, local)
        rejections.extend(local)
        return metrics  # type: ignore[no-any-return]

    def _rankings(self, modules: Iterable[ParsedModule], p: ProblemInstance, metrics: tuple[MetricInfo, ...],
                  rejections: list[Rejection]) -> tuple[RankingInfo, ...]:
        have = {m.name for m in metrics}
        out = []
        for m in modules:
            info = _ranking_info(m)
            missing = sorted(info.metrics - have)
            if missing:
                rejections.append(Rejection(
                    "ranking", m.name, f"needs metric {', '.join(missing)}, which the problem's "
                    f"scenarios do not have (they have {', '.join(sorted(have)) or 'none'})",
                    (("problem", p.label),), m.location, expected=True))
            else:
                out.append(info)
        return self._intern(tuple(out))  # type: ignore[no-any-return]

    # -- converters and models --------------------------------------------------------
    def _converter_graph(self, modules: list[ParsedModule], rejections: list[Rejection],
                         max_depth: int) -> ConverterGraph:
        key = (tuple(m.digest for m in modules), self._support, tuple(self._declared.values()), max_depth,
               self._time_limit)
        if self._converters is None or self._converters[0] != key:
            specs, refused = [], []
            for m in modules:
                read = ConverterSpec.read(m, self._support, self._declared, self._time_limit)
                if isinstance(read, ConverterSpec):
                    specs.append(read)
                else:
                    refused.append(Rejection("converter", m.name, read.what, (), read.location, fix=read.fix))

            def run(spec: ConverterSpec, source: SailType, env: dict[TypeVariable, SailType]) -> Trace:
                return self._run(spec.module, ConverterRun(spec.module), ("convert", source, tuple(env.items())),
                                 (Value(source),), type_bindings=env)

            self._converters = (key, ConverterGraph(specs, run, max_depth=max_depth), refused)
            self._conv_generation += 1
        rejections.extend(self._converters[2])
        return self._converters[1]


def _rejection(kind: str, label: str, trace: Trace, context: tuple[tuple[str, str], ...]) -> Rejection:
    site = trace.failure_site or (trace.error.location if trace.error else None)
    # A module's own Fail (a metric reading another kind of Test included) is no defect.
    return Rejection(kind, label, trace.reason, context, site, fix=trace.error.fix if trace.error else None,
                     expected=trace.failure is not None)


def _ranking_info(m: ParsedModule) -> RankingInfo:
    """Metrics a ranking reads, found statically (``a.WallTime``) so no branch is missed."""
    fn = cast(ast.FunctionDef, ast.parse(textwrap.dedent(m.source)).body[0])
    params = {a.arg for a in fn.args.args}
    used = {n.attr for n in ast.walk(fn)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in params}
    return RankingInfo(m.name, len(params) == 2, frozenset(used), m.options.get("better", "lower"))


_PLANNERS: weakref.WeakKeyDictionary[Repository, Planner] = weakref.WeakKeyDictionary()


def discover(repo: Repository, *, problem: Names = None, model: Names = None, software: Names = None,
             hardware: Names = None, metric: Names = None, ranking: Names = None,
             machine: Machine | None = None, params: Mapping[str, Any] | None = None,
             max_depth: int = 3, time_limit: float = DEFAULT_TIME_LIMIT) -> Lattice:
    """Find every benchmark scenario the repository's modules form, and why others don't fit.

    Parameters
    ----------
    repo : Repository
        The modules.
    problem, model, software, hardware, metric, ranking : str or list of str, optional
        Restrict a kind to these module names (sub-models may still come from any model).
    machine : Machine, optional
        What hardware modules are checked against; the local machine by default.
    params : mapping, optional
        Parameter values: ``{"MLP.hiddenSize": 128}`` or ``{"epochs": 5}`` (any module with
        that parameter); a list value is a grid that replaces the module's ``Suggest``.
    max_depth : int
        Deepest sub-model nesting (``Require(Model, ...)``) and generic-converter nesting.
    time_limit : float
        Seconds one dry run may take before it is stopped and reported.

    Returns
    -------
    Lattice
        ``.scenarios``, ``.rejections``, ``.explain(...)``, ``.tree()``, ``.converter_graph``.
    """
    planner = _PLANNERS.get(repo)
    if planner is None:
        planner = _PLANNERS[repo] = Planner(repo)
    return planner.discover(problem=problem, model=model, software=software, hardware=hardware,
                            metric=metric, ranking=ranking, machine=machine, params=params,
                            max_depth=max_depth, time_limit=time_limit)

