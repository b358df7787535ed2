"""Python values as the store's column values, and back: JSON text, REAL numbers, durations.

Shared by the writer (:class:`~saibench_jupyter.results.Store`'s event handlers) and
the readers that must not trust what a file holds (a store changed by hand).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def _json(value: Any) -> str | None:
    """JSON text of ``value`` (keys sorted, so equal values give equal, groupable text), NULL for None."""
    if value is None:
        return None
    # default=str: a stray non-JSON object (a Path, a Location) must not lose the whole event.
    return json.dumps(value, sort_keys=True, default=str)


def _text(value: Any) -> str | None:
    """Text as is; anything else (a location given as a mapping, a GPU list) as JSON."""
    return value if value is None or isinstance(value, str) else _json(value)


def _real(value: Any) -> float | None:
    """A number for a REAL column. SQLite stores inf as is but turns NaN into NULL, so NaN is NULL here."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _duration(value: Any) -> float | None:
    """A stored time as a finite, non-negative float, or None (missing, or text a hand put there)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _need(event: Mapping[str, Any], key: str) -> Any:
    try:
        return event[key]
    except KeyError:
        raise ValueError(f"{event.get('event')!r} event without {key!r}: {dict(event)!r}") from None
