"""The converter graph: types are nodes, converters are edges, conversions are shortest paths.

Resolution is breadth-first from the source type, so the shortest chain wins (ties go
to built-in reshapes first, then converters by name). A generic converter such as
``Concat(a: list[T]) -> Tensor`` applies once its input unifies with the current type;
its body is dry-run with ``T`` bound, and the conversions it asks for (``Convert(T,
Tensor)``) are resolved recursively: that is how ``List[Atom] -> Tensor`` becomes
``Concat ∘ AtomEmbedding``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..sail import (
    ConverterMeta,
    Image,
    List,
    ParsedModule,
    SailError,
    SailType,
    Scalar,
    Set,
    Tensor,
    Trace,
    TypeVariable,
    as_type,
    is_flat_tensor,
    load_error,
    load_function,
    most_specific,
    probe_load,
    substitute,
    unify,
)

if TYPE_CHECKING:
    import networkx


@dataclass(frozen=True)
class ConversionStep:
    """One edge of a chain: a converter (or a built-in reshape) from ``source`` to ``target``."""

    converter: str
    source: SailType
    target: SailType
    builtin: bool = False
    #: type-variable bindings of a generic converter, as (name, type) pairs
    bindings: tuple[tuple[str, SailType], ...] = ()
    #: the element conversions a generic converter composes with
    inner: tuple[Chain, ...] = ()

    @property
    def label(self) -> str:
        """``Concat∘AtomEmbedding`` for a generic step with an inner chain."""
        inner = [c.label for c in self.inner if c.steps]
        return "∘".join([self.converter, *inner])


@dataclass(frozen=True)
class Chain:
    """A resolved conversion: the steps turning ``source`` into ``output`` (which fits ``target``)."""

    source: SailType
    target: SailType
    output: SailType
    steps: tuple[ConversionStep, ...]

    @property
    def label(self) -> str:
        """The composition, last step first (``Concat∘AtomEmbedding``); ``identity`` for none."""
        return "∘".join(s.label for s in reversed(self.steps)) or "identity"

    @property
    def converters(self) -> tuple[str, ...]:
        """Names of the user converters used, recursively, without built-ins."""
        out: list[str] = []
        for s in self.steps:
            if not s.builtin:
                out.append(s.converter)
            for c in s.inner:
                out.extend(c.converters)
        return tuple(dict.fromkeys(out))

    def __str__(self) -> str:
        return f"{self.source!r} -> {self.output!r} via {self.label}"


class NoConversion(Exception):
    """No chain of converters turns one type into another; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ConverterSpec:
    """A converter module with its evaluated signature."""

    module: ParsedModule
    input: SailType
    output: SailType

    @classmethod
    def read(cls, module: ParsedModule, support: frozenset[str], declared: Mapping[str, type],
             time_limit: float) -> ConverterSpec | SailError:
        """The converter's signature, or why it can't be read (with its line).

        Loading the function runs its annotations and defaults: that is tried in the probe
        process first, so one that loops or ends its process is refused, not run here.
        """
        error = probe_load(module, declared, time_limit)
        if error is not None:
            return error
        try:
            ann = load_function(module, support, declared=declared).__annotations__
            return cls(module, as_type(ann[module.params[0]]), as_type(ann["return"]))
        except (TypeError, KeyError, SailError) as exc:
            return SailError(f"its annotations are not SAIL types: {exc}", module=module.name,
                             location=module.location)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit & co. must not end discovery
            return load_error(module, exc)


ConverterDryRun = Callable[[ConverterSpec, SailType, dict[TypeVariable, SailType]], Trace]


def _builtin_edges(t: SailType, target: SailType) -> Iterator[tuple[ConversionStep, SailType]]:
    if (isinstance(t, Tensor) and not is_flat_tensor(t)) or isinstance(t, Image):
        out = Tensor(t.Size, dtype=getattr(t, "dtype", None) or "float32")
        yield ConversionStep("flatten", t, out, builtin=True), out
    if isinstance(t, Tensor) and is_flat_tensor(t):
        if t.shape == (1,):
            out_s = Scalar(t.dtype)
            yield ConversionStep("squeeze", t, out_s, builtin=True), out_s
        size = target.Size
        if ((isinstance(target, Tensor) and not is_flat_tensor(target)) or isinstance(target, Image)) \
                and size is not None and t.shape[0] in (None, size):
            yield ConversionStep("reshape", t, target, builtin=True), target
    if isinstance(t, Scalar):
        out_t = Tensor(1, dtype=t.dtype or "float32")
        yield ConversionStep("unsqueeze", t, out_t, builtin=True), out_t


class ConverterGraph:
    """Converters of a repository, resolving conversions by breadth-first search.

    Parameters
    ----------
    converters : sequence of ConverterSpec
        The converters, each with its signature.
    dry_run : callable
        ``dry_run(spec, source, bindings) -> Trace`` runs a converter body symbolically
        (memoised by the planner) to learn the conversions it composes.
    max_steps : int
        Longest chain considered.
    max_depth : int
        Deepest nesting of generic converters.
    """

    def __init__(self, converters: Sequence[ConverterSpec], dry_run: ConverterDryRun,
                 max_steps: int = 4, max_depth: int = 3) -> None:
        self.converters = sorted(converters, key=lambda c: c.module.name)
        self._dry_run = dry_run
        self.max_steps = max_steps
        self.max_depth = max_depth
        self._memo: dict[tuple[SailType, SailType], Chain | NoConversion] = {}

    def resolve(self, source: Any, target: Any) -> Chain:
        """The shortest chain from ``source`` to a type that fits ``target`` (bare classes accepted).

        Raises
        ------
        NoConversion
            When no chain exists; its ``reason`` names what was missing.
        """
        return self._resolve(as_type(source), as_type(target), ())

    def _resolve(self, source: SailType, target: SailType,
                 stack: tuple[tuple[SailType, SailType], ...]) -> Chain:
        key = (source, target)
        hit = self._memo.get(key)
        if hit is None:
            try:
                hit = self._search(source, target, stack)
            except NoConversion as exc:
                hit = exc
            if not stack or isinstance(hit, Chain):
                self._memo[key] = hit
        if isinstance(hit, NoConversion):
            raise hit
        return hit

    def _search(self, source: SailType, target: SailType,
                stack: tuple[tuple[SailType, SailType], ...]) -> Chain:
        if unify(target, source) is not None:
            return Chain(source, target, most_specific(source, target), ())
        if (source, target) in stack or len(stack) >= self.max_depth:
            raise NoConversion(f"converting {source!r} to {target!r} needs itself (or nests deeper "
                               f"than {self.max_depth} generic converters)")
        inner_stack = (*stack, (source, target))
        failures: list[str] = []
        frontier: deque[tuple[SailType, tuple[ConversionStep, ...]]] = deque([(source, ())])
        seen = {source}
        while frontier:
            t, steps = frontier.popleft()
            if len(steps) >= self.max_steps:
                continue
            for step, out in self._edges(t, target, inner_stack, failures):
                chain = (*steps, step)
                if unify(target, out) is not None:
                    return Chain(source, target, most_specific(out, target), chain)
                if out not in seen:
                    seen.add(out)
                    frontier.append((out, chain))
        raise NoConversion(self._explain(source, target, failures))

    def _edges(self, t: SailType, target: SailType, stack: tuple[tuple[SailType, SailType], ...],
               failures: list[str]) -> Iterator[tuple[ConversionStep, SailType]]:
        yield from _builtin_edges(t, target)
        for spec in self.converters:
            env = unify(spec.input, t)
            if env is None:
                continue
            out = substitute(spec.output, env)
            trace = self._dry_run(spec, t, env)
            if not trace.ok:
                failures.append(f"{spec.module.name} rejects {t!r}: {trace.reason}")
                continue
            inner = []
            try:
                for need_source, need_target in cast(ConverterMeta, trace.meta).needs:
                    inner.append(self._resolve(substitute(need_source, env),
                                               substitute(need_target, env), stack))
            except NoConversion as exc:
                failures.append(f"{spec.module.name} applies to {t!r} but needs {exc.reason}")
                continue
            bindings = tuple(sorted((v.name, b) for v, b in env.items() if isinstance(v, TypeVariable)))
            yield ConversionStep(spec.module.name, t, out, False, bindings, tuple(inner)), out

    def _explain(self, source: SailType, target: SailType, failures: list[str]) -> str:
        text = f"no chain of converters turns {source!r} into {target!r}"
        hints = list(failures)
        if isinstance(source, Set | List):
            other = "List" if isinstance(source, Set) else "Set"
            for spec in self.converters:
                if isinstance(spec.input, List | Set) and type(spec.input) is not type(source):
                    hints.append(f"{spec.module.name} takes {spec.input!r}, and a "
                                 f"{type(source).__name__} never matches a {other}")
        return text + (" (" + "; ".join(hints) + ")" if hints else "")

    def to_networkx(self, chains: Sequence[Chain] = ()) -> networkx.DiGraph:
        """The graph for display: declared converter signatures plus the steps of ``chains``."""
        import networkx as nx

        g = nx.DiGraph()

        def add(a: SailType, b: SailType, **attrs: Any) -> None:
            for t in (a, b):
                g.add_node(repr(t), type=t)
            g.add_edge(repr(a), repr(b), **attrs)

        for spec in self.converters:
            add(spec.input, spec.output, converter=spec.module.name, kind="declared")

        def visit(chain: Chain) -> None:
            for s in chain.steps:
                add(s.source, s.target, converter=s.converter,
                    kind="builtin" if s.builtin else "resolved")
                for c in s.inner:
                    visit(c)

        for chain in chains:
            visit(chain)
        return g
