"""SAIL lists: what list displays inside SAIL functions become (``[a, b]``, ``[x for ...]``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any


class SailList(list):  # type: ignore[type-arg]
    """A Python list with SAIL's helpers: ``.map(f)``, ``.TopK(k)``, and ``sum()`` of lists.

    The parser rewrites list displays in SAIL functions into ``SailList``; ordinary lists
    passed in from Python can be wrapped with ``SailList(items)``.
    """

    def map(self, f: Callable[[Any], Any]) -> SailList:
        """Apply ``f`` to each element."""
        return SailList(f(x) for x in self)

    def TopK(self, k: Any) -> SailList:
        """The ``k`` largest elements, largest first (``k`` rounds up; at least one)."""
        return TopK(self, k)

    def __add__(self, other: Iterable[Any]) -> SailList:
        return SailList([*self, *other])

    def __radd__(self, other: Any) -> SailList:
        # ``sum(list_of_lists)`` starts from 0: treat it as the empty list (Fig. 8).
        if isinstance(other, int) and other == 0:
            return SailList(self)
        return SailList([*other, *self])

    def __getitem__(self, index: Any) -> Any:
        result = super().__getitem__(index)
        return SailList(result) if isinstance(index, slice) else result


def _count(k: Any, n: int) -> int:
    try:
        kk = math.ceil(float(k))
    except (TypeError, ValueError):
        kk = 1  # a symbolic k during a dry run
    return max(1, min(kk, n)) if n else 0


def TopK(values: Iterable[Any], k: Any) -> SailList:
    """The ``k`` largest of ``values``, largest first.

    ``k`` may be fractional (``len(x) * 0.01``): it rounds up, to at least one element.
    Symbolic values (during discovery) are kept in order rather than compared.
    """
    from ._types import Symbolic

    items = list(values)
    n = _count(k, len(items))
    if any(isinstance(v, Symbolic) for v in items):
        return SailList(items[:n])
    return SailList(sorted(items, key=_sort_key, reverse=True)[:n])


def _sort_key(v: Any) -> float:
    try:
        return float(v)
    except TypeError:
        import numpy as np

        return float(np.max(np.asarray(v)))
