"""Ragged sets of atoms: configurations of different sizes in one batch, padded, with a mask.

A batch of atoms is a mapping of arrays per field (``positions`` ``(B, n, 3)``, ...). When
its configurations differ in size, every one is padded to the largest, ``n``, and the
mapping gains a ``mask`` field, ``(B, n)``: 1 for a real atom, 0 for padding. Padded atoms
have atomic number 0, every other field 0, and positions far from the configuration and
from each other (:data:`PAD_DISTANCE` apart), so that any descriptor with a cutoff (symmetry
functions, neighbour lists) does not see them. ``Sum`` over the set multiplies by the mask
before it sums, so padded atoms add nothing to an energy, and nothing to its gradient: the
gradient with respect to a padded atom's position is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The field that marks real atoms (1) and padding (0) in a ragged batch.
MASK = "mask"
#: Distance (Å) of the first padded atom from the origin, and between padded atoms.
PAD_DISTANCE = 1000.0


def pad_fields(sizes: Sequence[int], fields: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Per-atom arrays of configurations of different sizes, padded to the largest, plus a mask.

    Parameters
    ----------
    sizes : sequence of int
        The atom count of each configuration.
    fields : mapping
        Field name to one array per configuration (first axis: its atoms).

    Returns
    -------
    dict
        Field name to one array ``(B, n, ...)``, and :data:`MASK` ``(B, n)`` as float32.
    """
    import numpy as np

    n = max(sizes)
    out: dict[str, Any] = {}
    for name, arrays in fields.items():
        first = np.asarray(arrays[0])
        padded = np.zeros((len(sizes), n, *first.shape[1:]), dtype=first.dtype)
        for i, a in enumerate(arrays):
            padded[i, :sizes[i]] = a
        if name == "positions":
            for i, size in enumerate(sizes):
                # Along x, PAD_DISTANCE apart, past any cutoff from the atoms and from each other.
                padded[i, size:, 0] = PAD_DISTANCE * np.arange(1, n - size + 1)
        out[name] = padded
    mask = np.zeros((len(sizes), n), dtype=np.float32)
    for i, size in enumerate(sizes):
        mask[i, :size] = 1.0
    out[MASK] = mask
    return out


def batch_mask(x: Any) -> Any:
    """The mask of a batch (``None`` for arrays, and for atoms of one size)."""
    return x.get(MASK) if isinstance(x, Mapping) else None


def masked(y: Any, mask: Any) -> Any:
    """``y`` ``(B, n, ...)`` with padded elements set to 0, when ``mask`` ``(B, n)`` is of this set.

    ``Sum`` applies it to what it sums: a set of another length (a set inside each atom's
    model, say) is left as it is.
    """
    if mask is None or tuple(y.shape[:2]) != tuple(mask.shape):
        return y
    return y * mask.reshape(*mask.shape, *([1] * (len(y.shape) - 2)))  # both float32 in the backends
