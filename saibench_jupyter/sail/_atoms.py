"""Atoms at execution time: what a ``Set[Atom]`` value is when a problem runs for real.

An :class:`AtomSet` keeps its atoms as a structure of arrays (atomic numbers,
positions, optional velocities and masses), so batching many configurations for a
backend is a stack per field. Iterating it yields :class:`AtomRecord` views with the
fields a SAIL module reads (``a.pos``, ``a.name``, ``a.number`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ._lists import SailList

# Symbols and standard atomic weights of the first 36 elements (H to Kr).
SYMBOLS = ("X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
           "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
           "As", "Se", "Br", "Kr")
MASSES = (0.0, 1.008, 4.0026, 6.94, 9.0122, 10.81, 12.011, 14.007, 15.999, 18.998, 20.180, 22.990,
          24.305, 26.982, 28.085, 30.974, 32.06, 35.45, 39.948, 39.098, 40.078, 44.956, 47.867, 50.942,
          51.996, 54.938, 55.845, 58.933, 58.693, 63.546, 65.38, 69.723, 72.630, 74.922, 78.971, 79.904,
          83.798)
_NUMBERS = {s: z for z, s in enumerate(SYMBOLS)}
#: Field aliases a module may read (``a.pos`` and ``a.position`` are the same array).
ALIASES = {"pos": "positions", "position": "positions", "vel": "velocities", "velocity": "velocities",
           "force": "forces", "mass": "masses", "number": "numbers"}


def atomic_number(symbol: str) -> int:
    """The atomic number of an element symbol (``"Cu"`` -> 29).

    Raises
    ------
    ValueError
        For a symbol outside H..Kr.
    """
    try:
        return _NUMBERS[symbol]
    except KeyError:
        raise ValueError(f"unknown element symbol {symbol!r} (SAIL knows H to Kr)") from None


class AtomRecord:
    """One atom: attribute access to its fields (arrays, or traced arrays inside a backend)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = dict(fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fields = self._fields
        key = ALIASES.get(name, name)
        if key in fields:
            return fields[key]
        if name in ("name", "symbol") and "numbers" in fields:
            return SYMBOLS[int(fields["numbers"])]
        raise AttributeError(f"an atom has no field {name!r} (it has {', '.join(self.field_names())})")

    def field_names(self) -> list[str]:
        """The fields this atom carries, by their SAIL names."""
        return [*self._fields, *(["name"] if "numbers" in self._fields else [])]

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"Atom({parts})"


class AtomSet:
    """A molecular configuration: a ``Set[Atom]`` value.

    Parameters
    ----------
    numbers : sequence of int
        Atomic numbers.
    positions : array-like, shape (n, 3)
        Cartesian positions.
    **fields : array-like
        More per-atom arrays with the first axis of length n (``velocities``, ``masses``,
        ``forces``, ...).
    """

    __slots__ = ("fields",)

    def __init__(self, numbers: Sequence[int] | Any, positions: Any, **fields: Any) -> None:
        import numpy as np

        nums = np.asarray(numbers, dtype=np.int64).reshape(-1)
        pos = np.asarray(positions, dtype=np.float32).reshape(len(nums), 3)
        self.fields: dict[str, Any] = {"numbers": nums, "positions": pos}
        for k, v in fields.items():
            if v is None:
                continue
            arr = np.asarray(v)
            if arr.shape[:1] != (len(nums),):
                raise ValueError(f"field {k!r} has shape {arr.shape}; it needs one row per atom ({len(nums)})")
            self.fields[ALIASES.get(k, k)] = arr

    @classmethod
    def from_symbols(cls, symbols: Sequence[str], positions: Any, **fields: Any) -> AtomSet:
        """Atoms from element symbols (``["C", "H", "H"]``)."""
        return cls([atomic_number(s) for s in symbols], positions, **fields)

    @property
    def numbers(self) -> Any:
        """Atomic numbers, shape (n,)."""
        return self.fields["numbers"]

    @property
    def positions(self) -> Any:
        """Positions, shape (n, 3)."""
        return self.fields["positions"]

    @property
    def symbols(self) -> list[str]:
        """Element symbols."""
        return [SYMBOLS[int(z)] for z in self.numbers]

    @property
    def masses(self) -> Any:
        """Masses (given, or the standard atomic weights)."""
        import numpy as np

        if "masses" in self.fields:
            return self.fields["masses"]
        return np.asarray([MASSES[int(z)] for z in self.numbers], dtype=np.float32)

    def replace(self, **fields: Any) -> AtomSet:
        """A copy with some fields replaced (``atoms.replace(positions=new)``)."""
        merged = {**self.fields, **{ALIASES.get(k, k): v for k, v in fields.items()}}
        numbers, positions = merged.pop("numbers"), merged.pop("positions")
        return AtomSet(numbers, positions, **merged)

    def __len__(self) -> int:
        return len(self.fields["numbers"])

    def __iter__(self) -> Iterator[AtomRecord]:
        for i in range(len(self)):
            yield AtomRecord({k: v[i] for k, v in self.fields.items()})

    def __getitem__(self, i: int) -> AtomRecord:
        return AtomRecord({k: v[i] for k, v in self.fields.items()})

    def map(self, f: Callable[[AtomRecord], Any]) -> SailList:
        """``f`` applied to every atom, in order."""
        return SailList(f(a) for a in self)

    def __repr__(self) -> str:
        return f"AtomSet({''.join(self.symbols)}, {len(self)} atoms)"
