"""Symbolic stand-ins used during a dry run: typed values, lazy streams, unbound parameters.

A dry run executes a module's Python for real but feeds it placeholders, so that
control flow, loops over streams and type arithmetic all run while no data is read
and nothing heavy is computed. A loop over a stream runs once, on one placeholder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any as _Any

from ._types import AnyType, Atom, Image, List, SailType, Scalar, Set, Symbolic, Tensor, as_type, is_type

_ANY = AnyType()
_ATOM_FIELDS: dict[str, SailType] = {
    "pos": Tensor(3),
    "position": Tensor(3),
    "vel": Tensor(3),
    "velocity": Tensor(3),
    "force": Tensor(3),
    "mass": Scalar("float32"),
    "number": Scalar("int64"),
    "name": Scalar("str"),
    "symbol": Scalar("str"),
}


def _binary(self: Value, other: _Any) -> Value:
    mine, theirs = self.type, typeof(other)
    if isinstance(theirs, Tensor) and not isinstance(mine, Tensor):
        return Value(theirs)
    return Value(mine if not isinstance(mine, AnyType) else theirs)


class Value(Symbolic):
    """A placeholder of a known SAIL type (an element of a stream, a model output ...)."""

    __slots__ = ("label", "type")

    def __init__(self, type: _Any, label: str = "") -> None:
        self.type: SailType = as_type(type)
        self.label = label

    # Attribute access: atoms have fields, collections have SAIL helpers.
    def __getattr__(self, name: str) -> _Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if isinstance(self.type, Atom) and name in _ATOM_FIELDS:
            return Value(_ATOM_FIELDS[name], f"{self.label}.{name}")
        if name in ("map",):
            return self.map
        return Value(_ANY, f"{self.label}.{name}")

    def map(self, f: Callable[[_Any], _Any]) -> Value:
        """Apply ``f`` to one placeholder element; the result keeps the collection kind."""
        t = self.type
        if isinstance(t, Set | List):
            return Value(type(t)(typeof(f(Value(t.element))), t.size), self.label)
        return Value(List(typeof(f(Value(_ANY)))), self.label)

    def TopK(self, k: _Any) -> Value:
        return self

    def __iter__(self) -> Iterator[_Any]:
        t = self.type
        if isinstance(t, TupleType):
            yield from (Value(x) for x in t.items)
        elif isinstance(t, Set | List):
            yield Value(t.element)
        elif isinstance(t, Tensor) and len(t.shape) > 1:
            yield Value(Tensor(*t.shape[1:], dtype=t.dtype))
        elif isinstance(t, Tensor):
            yield Value(Scalar(t.dtype))
        else:
            yield Value(_ANY)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: _Any) -> Value:
        t = self.type
        if isinstance(t, Set | List):
            return Value(t.element)
        return Value(_ANY)

    def __call__(self, *args: _Any, **kwargs: _Any) -> Value:
        return Value(_ANY, f"{self.label}(...)")

    def __bool__(self) -> bool:
        # A dry run follows the "true" branch of a data-dependent condition.
        return True

    def __int__(self) -> int:
        return 1

    def __float__(self) -> float:
        return 1.0

    def __index__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"<{self.label or 'value'}: {self.type!r}>"

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _binary
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _binary
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _binary

    def __neg__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return self

    def _compare(self, other: _Any) -> Value:
        return Value(Scalar("bool"))

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __hash__(self) -> int:
        return id(self)


class Stream(Value):
    """A lazy stream from ``Input``: iterating yields one placeholder element."""

    __slots__ = ("source",)

    def __init__(self, element: _Any, source: str = "") -> None:
        super().__init__(List(element), source)
        self.source = source

    @property
    def element(self) -> SailType:
        """The type of one element of the stream."""
        return self.type.ElementType or _ANY

    def __iter__(self) -> Iterator[_Any]:
        yield _element_value(self.element)

    def OneHot(self, t: _Any) -> Stream:
        """One-hot vectors of type ``t`` from integer labels (the last column of records)."""
        el = self.element
        if isinstance(el, TupleType):
            return Stream(TupleType(*el.items[:-1], as_type(t)), self.source)
        return Stream(as_type(t), self.source)

    def __add__(self, other: _Any) -> Stream:
        # Concatenating streams (``sum(chunks[0:i+1])``) gives a stream of the same records.
        return Stream(self.element, self.source)

    __radd__ = __add__  # type: ignore[assignment]

    def XYZ(self) -> Value:
        """Read the source as one atomic configuration (``Set[Atom]``)."""
        return Value(Set(Atom()), self.source)

    def Image(self) -> Stream:
        """Read the source as a stream of images."""
        el = self.element
        return Stream(el if isinstance(el, Image) else Image(), self.source)

    def __repr__(self) -> str:
        return f"<stream {self.source!r} of {self.element!r}>"


def _element_value(t: SailType) -> _Any:
    # Multi-column records come out as tuples, so ``for x, y in stream`` unpacks.
    if isinstance(t, TupleType):
        return tuple(Value(x) for x in t.items)
    return Value(t)


class TupleType(SailType):
    """A fixed tuple of types: what a multi-column dataset yields per record."""

    __slots__ = ("items",)
    items: tuple[SailType, ...]

    def __init__(self, *items: _Any) -> None:
        object.__setattr__(self, "items", tuple(as_type(i) for i in items))

    def __repr__(self) -> str:
        return "(" + ", ".join(map(repr, self.items)) + ")"


class Param(Symbolic):
    """A module parameter that has no value yet (the planner may bind it from ``Suggest``).

    ``observed`` turns true when the module looks at the value (truth, arithmetic,
    comparison, formatting). A run that fails without observing any parameter would fail
    the same way at every value, so the planner need not try them all.
    """

    __slots__ = ("module", "name", "observed")

    def __init__(self, name: str, module: str = "") -> None:
        self.name = name
        self.module = module
        self.observed = False

    def __repr__(self) -> str:
        self.observed = True
        return f"{self.name} (unbound parameter)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def _derived(self, *_: _Any) -> Opaque:
        self.observed = True
        return Opaque(f"{self.name}(...)")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _derived
    __truediv__ = __rtruediv__ = __floordiv__ = __pow__ = _derived
    __lt__ = __le__ = __gt__ = __ge__ = _derived

    def __eq__(self, other: object) -> bool:
        self.observed = True
        return self is other

    __hash__ = Symbolic.__hash__

    def __bool__(self) -> bool:
        self.observed = True
        return True

    def __index__(self) -> int:
        self.observed = True
        raise TypeError(f"{self.name} has no value during discovery (unbound parameter)")


class Opaque(Symbolic):
    """Support code seen from a dry run: a name whose value is only known at execution."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def __getattr__(self, attr: str) -> Opaque:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Opaque(f"{self.name}.{attr}")

    def __call__(self, *args: _Any, **kwargs: _Any) -> Opaque:
        return Opaque(f"{self.name}(...)")

    def __getitem__(self, key: _Any) -> Opaque:
        return Opaque(f"{self.name}[...]")

    def __iter__(self) -> Iterator[Opaque]:
        yield Opaque(f"{self.name}[0]")

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def _derived(self, *_: _Any) -> Opaque:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _derived
    __truediv__ = __rtruediv__ = __neg__ = _derived


def typeof(value: _Any) -> SailType:
    """The SAIL type of a value met during a dry run (``Any`` when it cannot tell)."""
    if isinstance(value, Value):
        return value.type
    if isinstance(value, bool):
        return Scalar("bool")
    if isinstance(value, int):
        return Scalar("int64")
    if isinstance(value, float):
        return Scalar("float32")
    if isinstance(value, list) and value:
        return List(typeof(value[0]), len(value))
    if isinstance(value, tuple) and value:
        return TupleType(*(typeof(v) for v in value))
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(d, int) for d in shape):
        return Tensor(shape) if shape else Scalar()
    if is_type(value):
        return as_type(value)
    return _ANY
