"""Conversions at execution: run a resolved chain on one record, user converters for real.

A chain (from the planner's converter graph) is a list of steps: built-in reshapes and
user ``@ConverterDefinition`` functions. A user converter runs with a context in which
``Convert(T, Tensor)`` inside its body (paper Fig. 5's ``Concat``) follows the inner
chains the planner resolved for it. The same code converts NumPy records (data) and,
under a backend's ``vmap``, PyTorch or JAX records, so gradients flow through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..backends import builtin_step
from ..planner import Chain, ConversionStep, ConverterGraph
from ..sail import (
    AtomRecord,
    Context,
    ConvertNode,
    SailError,
    SailType,
    array_namespace,
    substitute,
    typeof,
    unify,
    using,
)


def _namespace_of(value: Any) -> Any:
    import numpy as np

    try:
        return array_namespace(value)
    except TypeError:
        return np


def _as_array(value: Any, like: Any) -> Any:
    """A converter's result as an array of the input's namespace (lists become float32 arrays)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    xp = _namespace_of(like)
    return xp.asarray(value, dtype=xp.float32)


class RecordConverter:
    """Applies conversion chains to single records.

    Parameters
    ----------
    converters : mapping
        User converter functions by module name (defined in the execution namespace).
    """

    def __init__(self, converters: Mapping[str, Callable[[Any], Any]]) -> None:
        self.converters = dict(converters)

    def __call__(self, chain: Chain, record: Any) -> Any:
        value = AtomRecord(record) if isinstance(record, dict) else record
        for step in chain.steps:
            value = self.step(step, value)
        return value

    def step(self, step: ConversionStep, value: Any) -> Any:
        """One step on one record."""
        if step.builtin:
            return builtin_step(step, value, _namespace_of(value), batched=False)
        fn = self.converters.get(step.converter)
        if fn is None:
            raise SailError(f"converter {step.converter} is not in the repository any more",
                            fix="discover again after editing converters")
        with using(_InsideConverter(self, step)):
            out = fn(value)
        return _as_array(out, _leaf(value))


def _leaf(value: Any) -> Any:
    """An array inside ``value`` (an atom's first field, a list's first element) to take a namespace from."""
    if isinstance(value, AtomRecord):
        return next(iter(value._fields.values()))
    if isinstance(value, list | tuple) and value:
        return _leaf(value[0])
    return value


class _InsideConverter(Context):
    """The context of a running converter body: its ``Convert`` calls use the planner's inner chains.

    Anything else a converter might ask for (counters, inputs) is refused: a converter is
    a pure function of its value.
    """

    name = "converter"

    def __init__(self, owner: RecordConverter, step: ConversionStep) -> None:
        self.owner = owner
        self.step = step
        self.bindings = {v: t for v, t in _variables(step)}

    def convert_value(self, node: ConvertNode, value: Any) -> Any:
        target = substitute(node.target, self.bindings)
        source = substitute(node.source, self.bindings)
        for chain in self.step.inner:
            if unify(chain.target, target) is not None and unify(source, chain.source) is not None:
                return self.owner(chain, value)
        raise SailError(f"converter {self.step.converter} asks for Convert({source!r}, {target!r}), "
                        "which discovery did not resolve for it",
                        fix="discover again: the converter may have changed since")


def _variables(step: ConversionStep) -> list[tuple[Any, SailType]]:
    from ..sail import TypeVariable

    return [(TypeVariable(name), t) for name, t in step.bindings]


class ChainBook:
    """The conversions a run may need: the scenario's resolved chains, then built-in reshapes.

    Parameters
    ----------
    chains : iterable of Chain
        The chains discovery resolved for the scenario's model and sub-models.
    """

    def __init__(self, chains: Any) -> None:
        self._chains: dict[tuple[SailType, SailType], Chain] = {}
        for c in chains:
            self._chains.setdefault((c.source, c.target), c)
        self._builtins = ConverterGraph([], _no_dry_run)

    def resolve(self, source: SailType, target: SailType) -> Chain:
        """The chain from ``source`` to ``target``.

        Raises
        ------
        SailError
            When neither discovery resolved it nor built-in reshapes make it.
        """
        hit = self._chains.get((source, target))
        if hit is not None:
            return hit
        from ..planner import NoConversion

        try:
            return self._builtins.resolve(source, target)
        except NoConversion:
            raise SailError(
                f"no conversion from {source!r} to {target!r} was resolved for this scenario",
                fix="conversions with user converters are resolved at discovery for the model's "
                "Convert(...) steps; convert in the model, or discover again") from None

    def for_value(self, node: ConvertNode, value: Any) -> Chain:
        """The chain for ``Convert(value, type)`` written in a problem."""
        return self.resolve(typeof(value), node.target)


def _no_dry_run(*_: Any) -> Any:
    raise RuntimeError("built-in conversions only")
