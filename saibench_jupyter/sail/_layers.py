"""How each leaf layer types what flows into it: the rules the checking pass applies.

A rule takes ``(node, current type, expected output or None)`` and returns the layer's
output type, its own parameter count and a note; it raises :class:`GraphError` naming
the layer, the type it got and what to write instead.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any as _Any
from typing import TypeAlias

from ._errors import GraphError
from ._graph import (
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    Native,
    Node,
    Relu,
    Sigmoid,
    Softmax,
    Solver,
    SubModel,
    Tanh,
    takes_checkpoint,
)
from ._types import (
    AnyType,
    Image,
    List,
    SailType,
    Set,
    Symbolic,
    Tensor,
    TypeVariable,
    is_flat_tensor,
    substitute,
    unify,
)

#: Layers whose output has the input's shape: a ``Linear()`` followed only by these (or by
#: conversions) can take its width from the type the pipeline must produce.
SHAPE_PRESERVING: tuple[type[Node], ...] = (Relu, Tanh, Sigmoid, Dropout, Identity, Softmax)

WIDTH_INFERRED = "width inferred from output type"

#: The type a node's output must end up as, when only shape-preserving steps follow it.
Want: TypeAlias = SailType | None
#: What a layer yields: its output type, its own parameter count, and a note.
Result = tuple[SailType, int | None, str]
_BIND_FIX = "give the parameter a default or Suggest(...) values"


def unknown(t: SailType) -> bool:
    # Any (a native model's output) or an unbound variable: nothing to check statically.
    return isinstance(t, AnyType | TypeVariable)


def collection(t: SailType) -> bool:
    return t.IsSet or t.IsList


def like(collection: SailType, element: SailType, size: int | None) -> SailType:
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
    if unknown(current):
        return Tensor()
    if isinstance(current, Tensor) and is_flat_tensor(current):
        return current
    raise GraphError(
        f"{layer} needs a flat tensor, got {current!r}",
        fix=f"add Convert({current!r}, Tensor) or Flatten() before it",
    )


def _planes(current: SailType, layer: str) -> tuple[int | None, int | None, int | None]:
    """(channels, height, width) of an Image or rank-3 Tensor input."""
    if unknown(current):
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


# -- leaf layers: (node, type flowing in, expected output or None) -> Result -------------


def _pass(node: Node, current: SailType, expected: Want) -> Result:
    return current, 0, ""


def _dropout(node: Dropout, current: SailType, expected: Want) -> Result:
    p = node.p
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
        raise GraphError(
            f"the dropout probability is {p!r}, not a number in [0, 1)",
            fix="give a probability such as Dropout(0.5)",
        )
    return current, 0, ""


def _linear(node: Linear, current: SailType, expected: Want) -> Result:
    flat = _flat(current, "Linear")
    note = ""
    if node.width is None:
        width = expected.Size if expected is not None and not unknown(expected) else None
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


def _softmax(node: Softmax, current: SailType, expected: Want) -> Result:
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


def _flatten(node: Flatten, current: SailType, expected: Want) -> Result:
    if unknown(current):
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


def _conv2d(node: Conv2d, current: SailType, expected: Want) -> Result:
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


def _maxpool2d(node: MaxPool2d, current: SailType, expected: Want) -> Result:
    k = _count(node.k, "the window of MaxPool2d")
    c, h, w = _planes(current, "MaxPool2d")
    if (h is not None and h < k) or (w is not None and w < k):
        raise GraphError(
            f"MaxPool2d({k}) does not fit in {current!r}",
            fix="use a smaller window or pool less before it",
        )
    return Tensor(c, *(None if x is None else x // k for x in (h, w))), 0, ""


def _submodel(node: SubModel, current: SailType, expected: Want) -> Result:
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


def _native(node: Native, current: SailType, expected: Want) -> Result:
    # A native model's types and weights are only known once it runs.
    return AnyType(), None, ""


def _solver(node: Solver, current: SailType, expected: Want) -> Result:
    if not isinstance(node.sweep, bool):
        raise GraphError(f"Solver(fn, sweep={node.sweep!r}): sweep is True or False",
                         fix="write Solver(fn, sweep=True) for a function whose checkpoint calls are separate solves")
    # Support code is opaque to a dry run: its signature is checked when the model runs.
    if node.sweep and not isinstance(node.fn, Symbolic) and not takes_checkpoint(node.fn):
        raise GraphError("Solver(fn, sweep=True) needs a function that reports its solves, but fn takes no "
                         "keyword argument named checkpoint",
                         fix="define fn(x, checkpoint) and call checkpoint(y) after each solve, "
                         "or leave sweep out")
    return _native(node, current, expected)


_LAYERS: dict[type[Node], Callable[[_Any, SailType, Want], Result]] = {
    **dict.fromkeys((Relu, Tanh, Sigmoid, Identity), _pass),
    Linear: _linear,
    Dropout: _dropout,
    Softmax: _softmax,
    Flatten: _flatten,
    Conv2d: _conv2d,
    MaxPool2d: _maxpool2d,
    SubModel: _submodel,
    Native: _native,
    Solver: _solver,
}


@functools.cache
def layer_rule(cls: type) -> _Any:
    """The checking rule for a node class (looked up along its MRO once per class)."""
    return next((_LAYERS[c] for c in cls.__mro__ if c in _LAYERS), None)
