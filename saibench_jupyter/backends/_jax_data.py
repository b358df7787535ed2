"""Records on the JAX backend's host side: NumPy arrays in its dtypes, atoms mappings, example batches.

A batch is an array, or (atoms) a mapping of field name to array; these helpers treat both
alike, so that the trainer never checks which one it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..sail import Atom
from ._lowering import is_atoms, record_shape


def host_array(a: Any) -> Any:
    """A NumPy array in the backend's dtypes: float32 for reals, int32 for integers (no x64)."""
    arr = np.asarray(a)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int32, copy=False)
    return arr.astype(np.float32, copy=False)


def leaves(x: Any) -> list[Any]:
    return [x[k] for k in sorted(x)] if isinstance(x, Mapping) else [x]


def signature(x: Any) -> tuple[Any, ...]:
    if isinstance(x, Mapping):
        return tuple((k, np.shape(x[k]), np.asarray(x[k]).dtype.str) for k in sorted(x))
    return (np.shape(x), np.asarray(x).dtype.str)


def map_fields(f: Callable[[Any], Any], x: Any) -> Any:
    """``f`` on an array, or on every field of an atoms mapping."""
    return {k: f(v) for k, v in x.items()} if isinstance(x, Mapping) else f(x)


def host_rows(x: Any, rows: slice) -> Any:
    """Some records of ``x`` (an array or an atoms mapping), in the backend's dtypes."""
    return map_fields(lambda a: host_array(a[rows]), x)


def example_batch(t: Any) -> Any:
    """A zero batch of one record of type ``t``: what a native model's ``init`` is shown."""
    if is_atoms(t):
        n = int(t.Size)
        return {"numbers": np.zeros((1, n), np.int32), "positions": np.zeros((1, n, 3), np.float32)}
    if isinstance(t, Atom):
        return {"numbers": np.zeros((1,), np.int32), "positions": np.zeros((1, 3), np.float32)}
    return np.zeros((1, *record_shape(t)), np.float32)
