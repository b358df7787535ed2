"""SAIL's type descriptors: structural, hashable, unifiable with type variables.

Types are values: ``Tensor(28, 28)`` is an instance, and a bare class (``Tensor``,
``Scalar``, ``Atom``) stands for its default instance wherever a type is expected
(see :func:`as_type`). ``Set`` never matches ``List``: order-dependent converters
must not apply to sets.
"""

from __future__ import annotations

import functools
import math
import types as _pytypes
from collections.abc import Iterable, Mapping
from typing import Any as _Any
from typing import cast

Dim = int | None
Bindings = Mapping["TypeVariable", "SailType"]


class Symbolic:
    """Base of every dry-run placeholder (see :mod:`._symbolic`); never a size or a type."""

    __slots__ = ()


class SailType:
    """Base of every SAIL type. Subclass it to add a type of your own.

    A subclass compares by class and by its instance attributes, so a plain
    ``class Molecule(SailType): pass`` is already a usable type (``Molecule()``).
    """

    __slots__ = ("_hash",)

    # -- the structural protocol --------------------------------------------------
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: _Any) -> None:
        super().__init_subclass__(**kwargs)
        # Types are hashed and compared constantly during discovery: find the fields once.
        cls._fields = tuple(s for c in cls.__mro__ for s in c.__dict__.get("__slots__", ()) if s != "_hash")

    def _key(self) -> tuple[_Any, ...]:
        values = tuple(getattr(self, s) for s in self._fields)
        extra = getattr(self, "__dict__", None)
        return values + tuple(sorted(extra.items())) if extra else values

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self) -> int:
        try:
            return self._hash  # type: ignore[attr-defined,no-any-return]
        except AttributeError:
            h = hash((type(self).__name__, self._key()))
            object.__setattr__(self, "_hash", h)  # immutable, so the hash never changes
            return h

    def __setattr__(self, name: str, value: object) -> None:
        if type(self).__module__ == __name__:
            raise AttributeError(f"SAIL types are immutable: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return type(self).__name__

    # -- what SAIL code asks of a type -------------------------------------------
    @property
    def dims(self) -> tuple[Dim, ...] | None:
        """The shape, as a tuple of sizes (``None`` for an unknown size)."""
        return None

    @property
    def Size(self) -> int | None:
        """Number of elements (``None`` when unknown)."""
        d = self.dims
        if d is None or any(x is None for x in d):
            return None
        return math.prod(d)  # type: ignore[arg-type]

    @property
    def IsSet(self) -> bool:
        """True for ``Set[...]`` types."""
        return False

    @property
    def IsList(self) -> bool:
        """True for ``List[...]`` types."""
        return False

    @property
    def ElementType(self) -> SailType | None:
        """The element type of a ``Set`` or ``List``; ``None`` otherwise."""
        return None

    @classmethod
    def default(cls) -> SailType:
        """The instance a bare class stands for (``Tensor`` means a flat tensor of any size)."""
        return cls()

    # -- unification hooks (override in subclasses with parameters) -------------
    def _unify_same(self, other: SailType, env: dict[TypeVariable, SailType]) -> bool:
        return self == other

    def _substitute(self, env: Bindings) -> SailType:
        return self

    def _variables(self) -> Iterable[TypeVariable]:
        return ()


def _flatten_dims(dims: Iterable[_Any]) -> tuple[Dim, ...]:
    if type(dims) is tuple and all(type(d) is int for d in dims):
        return dims  # the common case, fast
    out: list[Dim] = []
    for d in dims:
        if isinstance(d, tuple | list):
            out.extend(_flatten_dims(d))
        elif d is None or isinstance(d, bool | Symbolic):
            out.append(None)
        elif isinstance(d, int):
            out.append(d)
        else:
            try:
                out.append(int(d.__index__()))
            except (AttributeError, TypeError):
                # An unbound parameter or other symbolic value: the size is unknown.
                out.append(None)
    return tuple(out)


def _dims_compatible(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _dtype_compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def _fmt_dims(dims: tuple[Dim, ...]) -> str:
    return ", ".join("?" if d is None else str(d) for d in dims)


class Tensor(SailType):
    """A dense array: ``Tensor(28, 28)``, ``Tensor(10, dtype="int64")``.

    ``Tensor`` (the bare class) and ``Tensor()`` mean a flat tensor of any size;
    ``Tensor(())`` is a rank-0 tensor. Sizes may be ``None`` (unknown).
    """

    __slots__ = ("dtype", "shape")
    shape: tuple[Dim, ...]
    dtype: str | None

    def __init__(self, *dims: _Any, dtype: str | None = None) -> None:
        shape = (None,) if not dims else _flatten_dims(dims)
        if dims and dtype is None:
            dtype = "float32"
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)

    @property
    def dims(self) -> tuple[Dim, ...]:
        return self.shape

    def _unify_same(self, other: SailType, env: dict[TypeVariable, SailType]) -> bool:
        o = cast(Tensor, other)  # the caller checked the class
        return _dims_compatible(self.shape, o.shape) and _dtype_compatible(self.dtype, o.dtype)

    def __repr__(self) -> str:
        if self.shape == (None,) and self.dtype is None:
            return "Tensor"
        dt = "" if self.dtype in (None, "float32") else f", dtype={self.dtype!r}"
        return f"Tensor({_fmt_dims(self.shape) or '()'}{dt})"


class Scalar(SailType):
    """A single number: ``Scalar`` (any dtype) or ``Scalar("int64")``."""

    __slots__ = ("dtype",)
    dtype: str | None

    def __init__(self, dtype: str | None = None) -> None:
        object.__setattr__(self, "dtype", dtype)

    @property
    def dims(self) -> tuple[Dim, ...]:
        return ()

    def _unify_same(self, other: SailType, env: dict[TypeVariable, SailType]) -> bool:
        return _dtype_compatible(self.dtype, cast(Scalar, other).dtype)

    def __repr__(self) -> str:
        return "Scalar" if self.dtype is None else f"Scalar({self.dtype!r})"


class Image(SailType):
    """A raster image ``Image(h, w, channels=1)``; unknown sizes are ``None``."""

    __slots__ = ("channels", "height", "width")
    height: Dim
    width: Dim
    channels: Dim

    def __init__(self, h: _Any = None, w: _Any = None, channels: _Any = 1) -> None:
        hh, ww, cc = _flatten_dims((h, w, channels))
        object.__setattr__(self, "height", hh)
        object.__setattr__(self, "width", ww)
        object.__setattr__(self, "channels", cc)

    @property
    def dims(self) -> tuple[Dim, ...]:
        return (self.height, self.width, self.channels)

    def _unify_same(self, other: SailType, env: dict[TypeVariable, SailType]) -> bool:
        return _dims_compatible(self.dims, cast(Image, other).dims)

    def __repr__(self) -> str:
        return f"Image({_fmt_dims((self.height, self.width))}, channels={self.channels or '?'})"


class Atom(SailType):
    """One atom of a molecular configuration (element, position, velocity)."""

    __slots__ = ()


class _Collection(SailType):
    __slots__ = ("element", "size")
    element: SailType
    size: Dim
    _label = ""

    def __init__(self, element: _Any = None, size: _Any = None) -> None:
        object.__setattr__(self, "element", AnyType() if element is None else as_type(element))
        object.__setattr__(self, "size", _flatten_dims((size,))[0])

    def __class_getitem__(cls, item: _Any) -> _Collection:
        return cls(item)

    @property
    def dims(self) -> tuple[Dim, ...] | None:
        inner = self.element.dims
        return None if inner is None else (self.size, *inner)

    @property
    def Size(self) -> int | None:
        return self.size

    @property
    def ElementType(self) -> SailType:
        return self.element

    def _unify_same(self, other: SailType, env: dict[TypeVariable, SailType]) -> bool:
        o = cast(_Collection, other)  # the caller checked the class
        if self.size is not None and o.size is not None and self.size != o.size:
            return False
        return _unify(self.element, o.element, env)

    def _substitute(self, env: Bindings) -> SailType:
        return type(self)(substitute(self.element, env), self.size)

    def _variables(self) -> Iterable[TypeVariable]:
        return free_variables(self.element)

    def __repr__(self) -> str:
        size = "" if self.size is None else f", size={self.size}"
        return f"{self._label}[{self.element!r}{size}]"


class Set(_Collection):
    """An unordered collection: ``Set[Atom]``. Never matches a ``List``."""

    __slots__ = ()
    _label = "Set"

    @property
    def IsSet(self) -> bool:
        return True


class List(_Collection):
    """An ordered collection: ``List[Atom]`` (Python's ``list[Atom]`` is accepted too)."""

    __slots__ = ()
    _label = "List"

    @property
    def IsList(self) -> bool:
        return True


class TypeVariable(SailType):
    """A type variable such as ``T``; unification binds it."""

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)

    @classmethod
    def default(cls) -> SailType:
        return cls("T")

    def __repr__(self) -> str:
        return self.name


class AnyType(SailType):
    """Matches every type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Any"




def as_type(value: _Any) -> SailType:
    """Turn what SAIL code writes for a type into a :class:`SailType` instance.

    Accepts instances, bare classes (``Tensor``), Python's ``list[T]``/``set[T]``,
    ``list``/``set`` and ``int``/``float``/``bool``.

    Raises
    ------
    TypeError
        When ``value`` is not a type.
    """
    if isinstance(value, SailType):
        return value
    if isinstance(value, type):
        if issubclass(value, SailType):
            return _default_of(value)  # type: ignore[arg-type]  # classes are hashable
        builtin = {list: List(), set: Set(), frozenset: Set(), int: Scalar("int64"),
                   float: Scalar("float32"), bool: Scalar("bool")}
        if value in builtin:
            return builtin[value]
    if isinstance(value, _pytypes.GenericAlias):
        origin, args = value.__origin__, value.__args__
        if origin is list and len(args) == 1:
            return List(as_type(args[0]))
        if origin in (set, frozenset) and len(args) == 1:
            return Set(as_type(args[0]))
    raise TypeError(f"{value!r} is not a SAIL type (use Tensor(...), Scalar, Image(...), "
                    "Atom, Set[...], List[...] or a SailType subclass)")


@functools.cache
def _default_of(cls: type[SailType]) -> SailType:
    # Types are immutable: one shared default instance per bare class.
    return cls.default()


def is_type(value: _Any) -> bool:
    """True when :func:`as_type` accepts ``value``."""
    try:
        as_type(value)
    except TypeError:
        return False
    return True


def _resolve(t: SailType, env: Mapping[TypeVariable, SailType]) -> SailType:
    while isinstance(t, TypeVariable) and t in env:
        t = env[t]
    return t


def _unify(a: SailType, b: SailType, env: dict[TypeVariable, SailType]) -> bool:
    a, b = _resolve(a, env), _resolve(b, env)
    if a == b:
        return True
    if isinstance(a, TypeVariable):
        env[a] = b
        return True
    if isinstance(b, TypeVariable):
        env[b] = a
        return True
    if isinstance(a, AnyType) or isinstance(b, AnyType):
        return True
    if type(a) is not type(b):
        return False
    return a._unify_same(b, env)


def unify(a: _Any, b: _Any, bindings: Bindings | None = None) -> dict[TypeVariable, SailType] | None:
    """Unify two types; return the type-variable bindings that make them match, or ``None``.

    >>> unify(List[T], List[Atom])
    {T: Atom}
    """
    env = dict(bindings or {})
    return env if _unify(as_type(a), as_type(b), env) else None


def matches(pattern: _Any, value: _Any) -> bool:
    """True when ``value`` fits ``pattern`` (unification succeeds)."""
    return unify(pattern, value) is not None


def substitute(t: SailType, env: Bindings) -> SailType:
    """``t`` with its type variables replaced by their bindings in ``env``."""
    t = _resolve(t, env)
    return t._substitute(env)


def free_variables(t: SailType) -> tuple[TypeVariable, ...]:
    """The type variables ``t`` mentions, in order of appearance."""
    if isinstance(t, TypeVariable):
        return (t,)
    return tuple(t._variables())


def is_flat_tensor(t: SailType) -> bool:
    """True for a rank-1 tensor (what ``Convert(x, Tensor)`` asks for)."""
    return isinstance(t, Tensor) and len(t.shape) == 1


T = TypeVariable("T")
Any = AnyType()
Atoms = Set(Atom())


def most_specific(actual: SailType, target: SailType) -> SailType:
    """The more specific of two unifiable types: known sizes win over unknown ones, anything over Any."""
    if isinstance(actual, AnyType):
        return target
    if isinstance(target, AnyType) or free_variables(target):
        return actual
    if isinstance(actual, Tensor) and isinstance(target, Tensor) and len(actual.shape) == len(target.shape):
        dims = tuple(a if a is not None else b for a, b in zip(actual.shape, target.shape))
        return Tensor(dims, dtype=actual.dtype or target.dtype)
    return target
