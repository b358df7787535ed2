"""Named work counters: ``Count(name, n)`` in model or support code, ``Counted(name)`` in metrics.

A model counts what its work costs in its own units (right-hand-side evaluations, linear
solves, ...). The runtime tallies the calls made during the model's timed work (training
epochs, predictions) into the checkpoint's counters, beside the built-in ones; a metric
reads them back with ``Counted(name)``, so a metric such as
``@MetricDefinition(axis="work") def Evaluations(): return Counted("fevals")`` makes them a
work axis. Outside a run (discovery, a solver called by hand) ``Count`` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._context import current
from ._errors import SailError
from ._primitives import COUNTERS

#: where Count(...) adds now: None outside the runtime's timed model work
_tally: dict[str, float] | None = None


def Count(name: str, n: float = 1) -> None:
    """Add ``n`` to the work counter ``name`` of the model's work now under way (a no-op elsewhere)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise SailError(f"Count({name!r}, ...): a counter's name is an identifier such as 'fevals'")
    if name in COUNTERS:
        raise SailError(f"Count({name!r}, ...): {name} is a built-in counter, the runtime counts it",
                        fix="give your counter a name of its own")
    if _tally is not None:
        _tally[name] = _tally.get(name, 0.0) + float(n)


def Counted(name: str) -> Any:
    """In a metric: the work counter ``name`` at this checkpoint (None where the model never counted it)."""
    return current().counter(name)


@contextmanager
def tallying() -> Iterator[dict[str, float]]:
    """``Count`` calls inside go to the yielded dict (and, nested, to the enclosing one too)."""
    global _tally
    outer = _tally
    inner: dict[str, float] = {}
    _tally = inner
    try:
        yield inner
    finally:
        _tally = outer
        if outer is not None:
            outer.update(sum_counts((outer, inner)))


def tally_now() -> dict[str, float]:
    """What ``Count`` has added so far in the innermost ``tallying`` (empty outside one)."""
    return dict(_tally) if _tally is not None else {}


def sum_counts(parts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Named counters added up, key by key (a key counted in any part is in the sum)."""
    total: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0.0) + value
    return total
