"""Everything discovery remembers between calls, in one object with one invalidation rule."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..sail import DryRunTimeout, ParsedModule, Trace, files_changed
from ._blocks import BlockCache
from ._converters import ConverterGraph
from ._instances import HardwareInstance, Instance, MetricInfo, ProblemInstance, Rejection, SoftwareInstance
from ._lattice import Lattice
from ._models import ResolverCache

Pair = tuple[HardwareInstance, SoftwareInstance]
V = TypeVar("V")
InstanceT = TypeVar("InstanceT", bound=Instance)


@dataclass
class DiscoveryMemo:
    """The memo of one repository's discoveries: what each cache is keyed on, and what drops it.

    Everything here is a cache: dropping all of it changes no result, only the time it
    takes. The rule that keeps it right is that *every key names the exact versions of
    what the value was computed from* (module digests, instance objects, parameter
    values, options), so an edit is never served a stale value, and that
    :meth:`forget`, called on every repository event, drops what an old module version
    produced, so memory stays bounded. Per cache:

    ``traces``, ``timeouts``
        Dry runs by :meth:`trace_key`: (module digest, what the module ran in (task,
        hardware digest, tests...), parameter bindings, and the declared SAIL classes the
        module names). Editing a module changes its digest; editing a declaration in
        another source changes the class objects. *File stamps are checked*: a trace
        whose run read a data file (a ``.npy`` header giving a type) is a miss once that
        file's size or modification time changed, or it appeared or vanished. A run
        stopped by the time limit is retried only under a longer limit (``timeouts``).
        Dropped by :meth:`forget` when their module version is gone.
    ``instances``
        Problem, hardware and software instances by (class, module digest, bindings,
        context), kept while their trace's meta is the same object: the same dry run
        gives the *same* instance, which is what lets the identity checks below hold.
    ``interned``
        Equal metric and ranking tuples, made the same object (identity compares).
    ``contexts``, ``prefixes``, ``metric_sets``
        Per problem instance (by its digest): the tuple a problem's join blocks depend on,
        the (hardware, software) pairs that serve it, and its metrics. Each is valid while
        its inputs are the same objects; dropped with the problem's module version.
    ``converters``
        The converter graph, for (converter digests, support names, declared classes,
        max depth, time limit); each rebuild bumps ``converter_generation``.
    ``resolver``
        Model resolutions (:class:`ResolverCache`), valid for (``converter_generation``,
        support names, declared classes): cleared, bumping ``resolver_generation``, when
        any of them changes; entries of a module version that is gone are dropped.
    ``blocks``
        Join blocks by (problem digest, model name) (:class:`BlockCache`), reused while
        their context is the same object and their stamp (model digest,
        ``resolver_generation``, parameters, max depth) is equal; dropped with their
        problem, or when their model is removed.
    ``last``
        The previous call's key (repository version, filters, machine, parameters, max
        depth, time limit) and its lattice: returned again for the same key unless a data
        file it read changed (its file stamps).
    """

    traces: dict[tuple[Any, ...], Trace] = field(default_factory=dict)
    #: trace key -> the time limit the run was stopped under
    timeouts: dict[tuple[Any, ...], float] = field(default_factory=dict)
    instances: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    interned: dict[Any, Any] = field(default_factory=dict)
    contexts: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: problem digest -> (the inputs, the pairs that serve it, the rejections of the others)
    prefixes: dict[str, tuple[tuple[Any, ...], list[Pair], list[Rejection]]] = field(default_factory=dict)
    #: (problem digest, metric digests...) -> (problem instance, its metrics, metric rejections)
    metric_sets: dict[tuple[str, ...], tuple[ProblemInstance, tuple[MetricInfo, ...], list[Rejection]]] = field(
        default_factory=dict)
    #: (key, graph, converters refused)
    converters: tuple[tuple[Any, ...], ConverterGraph, list[Rejection]] | None = None
    converter_generation: int = 0
    resolver: ResolverCache = field(default_factory=ResolverCache)
    resolver_key: tuple[Any, ...] | None = None
    resolver_generation: int = 0
    blocks: BlockCache = field(default_factory=BlockCache)
    last: tuple[tuple[Any, ...], Lattice] | None = None

    # -- invalidation ----------------------------------------------------------------
    def forget(self, gone: str, removed_model: str | None = None) -> None:
        """Drop what the module version with digest ``gone`` produced, and the blocks of ``removed_model``."""
        for key in [k for k in self.traces if k[0] == gone]:
            del self.traces[key]
            self.timeouts.pop(key, None)
        for key in [k for k in self.instances if k[1] == gone]:
            del self.instances[key]
        self.resolver.forget(gone)
        # Problem instances of the old version, and blocks of a model that is gone.
        dead = {d for d, ctx in self.contexts.items() if ctx[0].module.digest == gone}
        for d in dead:
            del self.contexts[d]
            self.prefixes.pop(d, None)
        for key in [k for k in self.metric_sets if k[0] in dead]:
            del self.metric_sets[key]
        self.blocks.forget(dead, removed_model)

    # -- dry runs --------------------------------------------------------------------
    @staticmethod
    def trace_key(module: ParsedModule, key: tuple[Any, ...], bindings: Mapping[str, Any] | None,
                  declared: Mapping[str, type]) -> tuple[Any, ...]:
        """The memo key of a dry run of ``module`` in context ``key`` with ``bindings``."""
        full: tuple[Any, ...] = (module.digest, key, repr(sorted(bindings.items())) if bindings else "")
        if module.free_names and declared:
            # A declaration in another source may have changed: key on the classes themselves.
            full += tuple(declared[n] for n in sorted(module.free_names & declared.keys()))
        return full

    def trace(self, key: tuple[Any, ...], time_limit: float) -> Trace | None:
        """The remembered trace for ``key``, unless a file it read changed or it timed out under a shorter limit."""
        hit = self.traces.get(key)
        if hit is None or (hit.files and files_changed(hit.files)):
            return None
        if isinstance(hit.error, DryRunTimeout) and time_limit > self.timeouts.get(key, 0.0):
            return None
        return hit

    def keep_trace(self, key: tuple[Any, ...], trace: Trace, time_limit: float) -> None:
        """Remember ``trace``, run under ``time_limit``, for ``key``."""
        self.traces[key] = trace
        if isinstance(trace.error, DryRunTimeout):
            self.timeouts[key] = time_limit

    # -- identities ------------------------------------------------------------------
    def instance(self, cls: type[InstanceT], m: ParsedModule, bindings: Mapping[str, Any], trace: Trace,
                 context: str = "") -> InstanceT:
        """``cls(m, bindings, trace.meta)``, the same object for the same dry run (so join blocks are reused)."""
        key = (cls.__name__, m.digest, repr(sorted(bindings.items())), context)
        inst = self.instances.get(key)
        if inst is None or inst.meta is not trace.meta:
            inst = self.instances[key] = cls(m, dict(bindings), trace.meta)
        return inst

    def intern(self, value: V) -> V:
        """``value``, or an equal one seen before: caches can then compare by identity."""
        return self.interned.setdefault(value, value)  # type: ignore[no-any-return]

    # -- per problem -----------------------------------------------------------------
    def context_of(self, p: ProblemInstance, *parts: Any) -> tuple[Any, ...]:
        """What a problem's blocks depend on, as one tuple that stays the same object while unchanged."""
        context = (p, *parts)
        old = self.contexts.get(p.digest)
        if old is not None and all(a is b for a, b in zip(old, context)):
            return old
        self.contexts[p.digest] = context
        return context

    def prefixes_of(self, p: ProblemInstance, pairs: Sequence[Pair],
                    find: Callable[[], tuple[list[Pair], list[Rejection]]]) -> tuple[list[Pair], list[Rejection]]:
        """``find()``: the pairs that serve ``p`` and the rejections of the others, while ``p`` and ``pairs`` hold."""
        inputs = (p, *(x for pair in pairs for x in pair))
        hit = self.prefixes.get(p.digest)
        if hit is not None and len(hit[0]) == len(inputs) and all(a is b for a, b in zip(hit[0], inputs)):
            return hit[1], hit[2]
        prefixes, refused = find()
        self.prefixes[p.digest] = (inputs, prefixes, refused)
        return prefixes, refused

    def metrics_of(self, p: ProblemInstance, modules: Sequence[ParsedModule],
                   find: Callable[[], tuple[tuple[MetricInfo, ...], list[Rejection]]]
                   ) -> tuple[tuple[MetricInfo, ...], list[Rejection]]:
        """``find()``: the metrics that measure ``p`` (interned) and the rejections of the others, while they hold."""
        key = (p.digest, *(m.digest for m in modules))
        hit = self.metric_sets.get(key)
        if hit is not None and hit[0] is p:
            return hit[1], hit[2]
        metrics, refused = find()
        metrics = self.intern(metrics)
        self.metric_sets[key] = (p, metrics, refused)
        return metrics, refused

    # -- converters and models -------------------------------------------------------
    def converter_graph(self, key: tuple[Any, ...], build: Callable[[], tuple[ConverterGraph, list[Rejection]]]
                        ) -> tuple[ConverterGraph, list[Rejection]]:
        """The graph ``build()`` makes, and the converters it refused, rebuilt only when ``key`` changes."""
        if self.converters is None or self.converters[0] != key:
            graph, refused = build()
            self.converters = (key, graph, refused)
            self.converter_generation += 1
        return self.converters[1], self.converters[2]

    def resolver_cache(self, support: frozenset[str], declared: tuple[tuple[str, type], ...]) -> ResolverCache:
        """The model resolutions, cleared first when the converters, support names or declarations changed."""
        key = (self.converter_generation, support, declared)
        if self.resolver_key != key:
            self.resolver_key = key
            self.resolver.clear()
            self.resolver_generation += 1
        return self.resolver

    # -- whole calls -----------------------------------------------------------------
    def last_lattice(self, call: tuple[Any, ...]) -> Lattice | None:
        """The previous call's lattice, if ``call`` is the same and no data file it read changed."""
        if self.last is not None and self.last[0] == call and not self.last[1].stale():
            return self.last[1]
        return None

    def remember(self, call: tuple[Any, ...], lattice: Lattice) -> None:
        """Keep ``lattice`` as the answer to ``call``, until the next call."""
        self.last = (call, lattice)
