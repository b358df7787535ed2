"""The checking pass: walk a model graph, infer every step's type and shape, count parameters.

:func:`check` follows the type that flows into each node (the *current* type), records one
:class:`CheckedStep` per node and fails with a :class:`GraphError` that names the bad layer,
the type it got and what to write instead. Conversions are not resolved here: the planner
passes a ``convert`` callback, so this module needs neither the planner nor any ML library.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any as _Any
from typing import TypeAlias

from ._errors import GraphError
from ._graph import (
    Array,
    Conv2d,
    ConvertNode,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    Native,
    Node,
    Pipeline,
    Relu,
    Sigmoid,
    Softmax,
    SubModel,
    Sum,
    Tanh,
)
from ._symbolic import Symbolic
from ._types import (
    AnyType,
    Image,
    List,
    SailType,
    Set,
    Tensor,
    TypeVariable,
    as_type,
    is_flat_tensor,
    substitute,
    unify,
)

#: ``convert(actual_source, target) -> (produced type, label)``; raises GraphError when impossible.
ConvertFn = Callable[[SailType, SailType], tuple[SailType, str]]

#: Layers whose output has the input's shape: a ``Linear()`` followed only by these (or by
#: conversions) can take its width from the type the pipeline must produce.
SHAPE_PRESERVING: tuple[type[Node], ...] = (Relu, Tanh, Sigmoid, Dropout, Identity, Softmax)

WIDTH_INFERRED = "width inferred from output type"


@dataclass(frozen=True)
class CheckedStep:
    """One node of a checked graph.

    Parameters
    ----------
    path : str
        Position in the tree: ``"0"``, ``"1"``, ``"2.0"`` (child 0 of step 2); ``""`` for a
        root that is not a pipeline.
    depth : int
        Nesting depth (the root pipeline's steps are at depth 0).
    node : Node
        The node itself.
    input, output : SailType
        The type flowing in and the type it produces.
    parameters : int or None
        The node's own trainable parameters: ``0`` for parameter-free layers and for
        containers (their children carry the counts), ``None`` when unknown.
    note : str
        Extra information, e.g. the conversion label or how a width was inferred.
    """

    path: str
    depth: int
    node: Node
    input: SailType
    output: SailType
    parameters: int | None
    note: str = ""


@dataclass(frozen=True)
class CheckedGraph:
    """A graph whose every step has been typed.

    Parameters
    ----------
    root : Node
        The graph as the model built it.
    input : SailType
        The type the graph was checked from.
    output : SailType
        The type the graph produces (after unification with the expected output).
    steps : tuple of CheckedStep
        Every node visited, parents before children, in order.
    parameters : int or None
        Sum of the steps' parameters; ``None`` if any step's count is unknown.
    """

    root: Node
    input: SailType
    output: SailType
    steps: tuple[CheckedStep, ...]
    parameters: int | None


#: The type a node's output must end up as, when only shape-preserving steps follow it.
_Want: TypeAlias = SailType | None
#: What a layer yields: its output type, its own parameter count, and a note.
_Result = tuple[SailType, int | None, str]
_BIND_FIX = "give the parameter a default or Suggest(...) values"


def check(graph: Node, input: SailType, output: SailType, *, convert: ConvertFn) -> CheckedGraph:
    """Type-check ``graph`` from ``input`` to ``output`` and infer every step's shape.

    Parameters
    ----------
    graph : Node
        The model graph (usually a :class:`Pipeline`).
    input, output : SailType
        The type the task feeds in and the type it needs out (bare classes are accepted).
    convert : ConvertFn
        Resolves a ``Convert`` node: ``convert(actual_source, target)`` returns the produced
        type and a short label, or raises :class:`GraphError`.

    Returns
    -------
    CheckedGraph

    Raises
    ------
    GraphError
        When a layer gets a type it cannot take, a width is not a number or cannot be
        inferred, or the graph does not produce ``output``.
    """
    source, target = as_type(input), as_type(output)
    checker = _Checker(convert)
    if isinstance(graph, Pipeline):
        # The root pipeline is the model itself, not a step: its steps sit at depth 0.
        result = checker.pipeline(graph.steps, source, target, "", 0)
    else:
        result = checker.visit(graph, source, target, "", 0)
    steps = tuple(s for s in checker.steps if s is not None)
    if isinstance(result, AnyType):
        # A native model's type is unknown statically: trust the task's type.
        produced: SailType = target
    else:
        bindings = unify(target, result)
        if bindings is None:
            raise GraphError(
                f"the model produces {result!r}, but the task needs {target!r}",
                fix="end the pipeline with Convert(Tensor, outputType) "
                "or a layer of the right width",
            )
        produced = substitute(result, bindings)
    counts = [s.parameters for s in steps]
    total = None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    return CheckedGraph(graph, source, produced, steps, total)


# -- helpers ----------------------------------------------------------------------------


_KEEPS_SHAPE = (*SHAPE_PRESERVING, ConvertNode)


@functools.cache
def _layer_rule(cls: type) -> _Any:
    """The checking rule for a node class (looked up along its MRO once per class)."""
    return next((_LAYERS[c] for c in cls.__mro__ if c in _LAYERS), None)


def _join(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _unknown(t: SailType) -> bool:
    # Any (a native model's output) or an unbound variable: nothing to check statically.
    return isinstance(t, AnyType | TypeVariable)


def _collection(t: SailType) -> bool:
    return t.IsSet or t.IsList


def _like(collection: SailType, element: SailType, size: int | None) -> SailType:
    """A collection of the same kind (Set or List) as ``collection``."""
    return Set(element, size) if collection.IsSet else List(element, size)


def _count(value: _Any, what: str, *, minimum: int = 1) -> int:
    """``value`` as an int, or a GraphError in the words of ``what`` ("the width of Linear")."""
    if isinstance(value, Symbolic):
        # A dry-run placeholder may answer __index__ with a dummy 1: never trust it as a size.
        raise GraphError(f"{what} is {value!r}, not a number", fix=_BIND_FIX)
    if isinstance(value, bool | float):
        # bool is an int subclass, and a float width (128.0, 0.5) is almost always a typo:
        # accepting either would silently build a layer of the wrong size.
        raise GraphError(f"{what} is {value!r}, not a whole number", fix="give a whole number")
    try:
        number = operator.index(value)
    except Exception:
        raise GraphError(f"{what} is {value!r}, not a number", fix=_BIND_FIX) from None
    if number < minimum:
        raise GraphError(f"{what} is {number}; it must be at least {minimum}")
    return number


def _dims_count(value: _Any, what: str) -> int:
    """An int, or the product of a dims tuple (``()`` is one element)."""
    if isinstance(value, tuple):
        # Validate each entry so an unbound dimension is reported, not multiplied.
        return math.prod(_count(d, what) for d in value)
    return _count(value, what)


def _flat(current: SailType, layer: str) -> Tensor:
    """The flat tensor flowing into ``layer`` (unknown types count as one of unknown size)."""
    if _unknown(current):
        return Tensor()
    if isinstance(current, Tensor) and is_flat_tensor(current):
        return current
    raise GraphError(
        f"{layer} needs a flat tensor, got {current!r}",
        fix=f"add Convert({current!r}, Tensor) or Flatten() before it",
    )


def _planes(current: SailType, layer: str) -> tuple[int | None, int | None, int | None]:
    """(channels, height, width) of an Image or rank-3 Tensor input."""
    if _unknown(current):
        return None, None, None
    if isinstance(current, Image):
        return current.channels, current.height, current.width
    if isinstance(current, Tensor) and len(current.shape) == 3:
        c, h, w = current.shape
        return c, h, w
    raise GraphError(
        f"{layer} needs an Image or a Tensor(channels, height, width), got {current!r}",
        fix=f"add Convert({current!r}, Image) before it",
    )


# -- leaf layers: (node, type flowing in, expected output or None) -> _Result -------------


def _pass(node: Node, current: SailType, expected: _Want) -> _Result:
    return current, 0, ""


def _dropout(node: Dropout, current: SailType, expected: _Want) -> _Result:
    p = node.p
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
        raise GraphError(
            f"the dropout probability is {p!r}, not a number in [0, 1)",
            fix="give a probability such as Dropout(0.5)",
        )
    return current, 0, ""


def _linear(node: Linear, current: SailType, expected: _Want) -> _Result:
    flat = _flat(current, "Linear")
    note = ""
    if node.width is None:
        width = expected.Size if expected is not None and not _unknown(expected) else None
        if width is None:
            raise GraphError(
                f"cannot infer the width of Linear() from {current!r}: the type it must "
                "produce is not known here",
                fix="give the width: Linear(n)",
            )
        n, note = _count(width, "the width of Linear"), WIDTH_INFERRED
    else:
        n = _dims_count(node.width, "the width of Linear")
    size = flat.Size
    parameters = None if size is None else size * n + n
    return Tensor(n, dtype=flat.dtype or "float32"), parameters, note


def _softmax(node: Softmax, current: SailType, expected: _Want) -> _Result:
    flat = _flat(current, "Softmax")
    if node.n is not None:
        n = _dims_count(node.n, "the size of Softmax")
        if flat.Size is not None and flat.Size != n:
            raise GraphError(
                f"Softmax({n}) gets {current!r}, which has {flat.Size} elements",
                fix=f"make the layer before it Linear({n}), or write Softmax() to take "
                "the input's size",
            )
    return current, 0, ""


def _flatten(node: Flatten, current: SailType, expected: _Want) -> _Result:
    if _unknown(current):
        return Tensor(), 0, ""
    if isinstance(current, Tensor) and is_flat_tensor(current):
        return current, 0, ""
    if isinstance(current, Tensor):
        return Tensor(current.Size, dtype=current.dtype or "float32"), 0, ""
    if isinstance(current, Image):
        return Tensor(current.Size), 0, ""
    raise GraphError(
        f"Flatten needs a Tensor or an Image, got {current!r}",
        fix=f"add Convert({current!r}, Tensor) instead of Flatten()",
    )


def _conv2d(node: Conv2d, current: SailType, expected: _Want) -> _Result:
    channels = _count(node.channels, "the channel count of Conv2d")
    kernel = _count(node.kernel, "the kernel size of Conv2d")
    stride = _count(node.stride, "the stride of Conv2d")
    padding = _count(node.padding, "the padding of Conv2d", minimum=0)
    c, h, w = _planes(current, "Conv2d")

    def side(x: int | None) -> int | None:
        if x is None:
            return None
        out = (x + 2 * padding - kernel) // stride + 1
        if out <= 0:
            raise GraphError(
                f"Conv2d(kernel={kernel}) does not fit in {current!r}: it would produce "
                f"{out} rows or columns",
                fix="use a smaller kernel, add padding, or pool less before it",
            )
        return out

    parameters = None if c is None else channels * c * kernel * kernel + channels
    return Tensor(channels, side(h), side(w)), parameters, ""


def _maxpool2d(node: MaxPool2d, current: SailType, expected: _Want) -> _Result:
    k = _count(node.k, "the window of MaxPool2d")
    c, h, w = _planes(current, "MaxPool2d")
    if (h is not None and h < k) or (w is not None and w < k):
        raise GraphError(
            f"MaxPool2d({k}) does not fit in {current!r}",
            fix="use a smaller window or pool less before it",
        )
    return Tensor(c, *(None if x is None else x // k for x in (h, w))), 0, ""


def _submodel(node: SubModel, current: SailType, expected: _Want) -> _Result:
    bindings = unify(node.input, current)
    if bindings is None:
        raise GraphError(
            f"sub-model slot {node.slot!r} ({node.task}) takes {node.input!r}, "
            f"but gets {current!r}",
            location=node.site,
            fix=f"add Convert({current!r}, {node.input!r}) before it, "
            "or require a sub-model of the type that flows in",
        )
    # Its parameters belong to whichever sub-model the planner picks: unknown here.
    return substitute(node.output, bindings), None, ""


def _native(node: Native, current: SailType, expected: _Want) -> _Result:
    # A native model's types and weights are only known once it runs.
    return AnyType(), None, ""


_LAYERS: dict[type[Node], Callable[[_Any, SailType, _Want], _Result]] = {
    **dict.fromkeys((Relu, Tanh, Sigmoid, Identity), _pass),
    Linear: _linear,
    Dropout: _dropout,
    Softmax: _softmax,
    Flatten: _flatten,
    Conv2d: _conv2d,
    MaxPool2d: _maxpool2d,
    SubModel: _submodel,
    Native: _native,
}


# -- the walk over containers -------------------------------------------------------------


class _Checker:
    """Walks the graph, recording steps; containers and conversions are handled here."""

    def __init__(self, convert: ConvertFn) -> None:
        self.convert = convert
        # A parent is recorded before its children, but its output is only known after
        # them: its slot is reserved (None) and filled in afterwards.
        self.steps: list[CheckedStep | None] = []

    def visit(
        self, node: Node, current: SailType, expected: _Want, path: str, depth: int
    ) -> SailType:
        """Check ``node`` on ``current``, record it, and return its output type.

        ``expected`` is the type this node's output must end up as when only shape-preserving
        steps follow it (``None`` when unknown); ``Linear()`` takes its width from it.
        """
        slot = len(self.steps)
        self.steps.append(None)
        parameters: int | None = 0
        note = ""
        if isinstance(node, Pipeline):
            out = self.pipeline(node.steps, current, expected, path, depth + 1)
        elif isinstance(node, Array):
            out = self._array(node, current, expected, path, depth)
        elif isinstance(node, Sum):
            out = self._sum(node, current, expected, path, depth)
        elif isinstance(node, ConvertNode):
            out, note = self._convert(node, current)
        else:
            layer = _layer_rule(type(node))  # type: ignore[arg-type]
            if layer is None:
                raise GraphError(
                    f"{type(node).__name__} is not a layer SAIL can check",
                    fix="use SAIL's layers (Linear, Relu, Conv2d, ...) or wrap a native model "
                    "in TorchModule/JaxModel",
                )
            out, parameters, note = layer(node, current, expected)
        self.steps[slot] = CheckedStep(path, depth, node, current, out, parameters, note)
        return out

    def pipeline(
        self, steps: tuple[Node, ...], current: SailType, expected: _Want, path: str, depth: int
    ) -> SailType:
        """Chain ``steps``; ``expected`` reaches a step only if the rest keep its shape."""
        # Step i sees ``expected`` only when every later step keeps the shape: one pass
        # from the end finds the first step after which that holds.
        first_kept = len(steps)
        while first_kept > 0 and isinstance(steps[first_kept - 1], _KEEPS_SHAPE):
            first_kept -= 1
        for i, step in enumerate(steps):
            keeps = i >= first_kept - 1
            current = self.visit(step, current, expected if keeps else None, _join(path, i), depth)
        return current

    def _array(
        self, node: Array, current: SailType, expected: _Want, path: str, depth: int
    ) -> SailType:
        child = _join(path, 0)
        if _unknown(current):
            self.visit(node.m, AnyType(), None, child, depth + 1)
            return AnyType()
        element = current.ElementType if _collection(current) else None
        if element is None:
            raise GraphError(
                f"Array needs a Set or List input, got {current!r}",
                fix="give Array a collection, e.g. Convert(inputType, Set[Atom]) before it",
            )
        size = current.Size
        if isinstance(node.size, int) and not isinstance(node.size, bool):
            if size is not None and size != node.size:
                raise GraphError(
                    f"Array(size={node.size}) gets {current!r} with {size} elements",
                    fix="drop size= or make it match the input",
                )
            size = node.size
        inner = expected.ElementType if expected is not None and _collection(expected) else None
        return _like(current, self.visit(node.m, element, inner, child, depth + 1), size)

    def _sum(
        self, node: Sum, current: SailType, expected: _Want, path: str, depth: int
    ) -> SailType:
        result = current
        if node.x is not None:
            # Sum(x) yields x's element type, so x must produce a collection of `expected`.
            inner = None
            if expected is not None and _collection(current):
                inner = _like(current, expected, current.Size)
            result = self.visit(node.x, current, inner, _join(path, 0), depth + 1)
        if _unknown(result):
            return AnyType()
        element = result.ElementType if _collection(result) else None
        if element is None:
            raise GraphError(
                f"Sum needs a collection (Set or List), got {result!r}",
                fix="wrap the element model in Array(m) first",
            )
        return element

    def _convert(self, node: ConvertNode, current: SailType) -> tuple[SailType, str]:
        bindings = unify(node.source, current)
        if bindings is None:
            raise GraphError(
                f"Convert({node.source!r}, {node.target!r}) gets {current!r}, "
                f"which is not a {node.source!r}",
                location=node.site,
                fix=f"convert from the type that flows in: Convert({current!r}, {node.target!r})",
            )
        try:
            return self.convert(current, substitute(node.target, bindings))
        except GraphError as err:
            # The planner does not know where the Convert was written; we do.
            if err.location is not None or node.site is None:
                raise
            raise GraphError(err.what, module=err.module, location=node.site, fix=err.fix) from err
