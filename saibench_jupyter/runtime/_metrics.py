"""Metrics at execution: a metric function reads one checkpoint's test records and counters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..sail import Context, Location, ModuleFailed, ParsedModule, using
from ._execution_namespace import module_site
from ._result import COUNTERS, RunError


class _Unavailable(Exception):
    """The metric reads a collection this checkpoint does not have (procedural tests come once per stage)."""


class MetricContext(Context):
    """What a metric sees: ``Test.K`` records of one checkpoint, and the work counters there."""

    name = "metric"

    def __init__(self, collections: Mapping[str, list[tuple[Any, ...]]], counters: Mapping[str, float]) -> None:
        self.collections = collections
        self.counters = counters

    def collection(self, concept: str, kind: str) -> Any:
        if concept != "Test" or kind not in self.collections:
            raise _Unavailable(kind)
        return self.collections[kind]

    def counter(self, name: str) -> Any:
        # A built-in counter is always there; a named one (Count) only where the model counted it.
        return self.counters[name] if name in COUNTERS else self.counters.get(name)


def reduce_value(value: Any) -> tuple[float | None, Any]:
    """A metric's result as one number (several numbers: their mean) and the raw values."""
    import numpy as np

    if value is None:
        return None, None
    if isinstance(value, bool | int | float):
        return float(value), value
    arr = np.asarray([np.asarray(v, dtype=np.float64).mean() for v in value]
                     if isinstance(value, list | tuple) else np.asarray(value, dtype=np.float64))
    if arr.size == 0:
        return None, []
    number = float(arr.mean())
    return number, (arr.tolist() if arr.size > 1 else number)


def evaluate(metrics: Mapping[str, tuple[ParsedModule, Callable[[], Any]]],
             collections: Mapping[str, list[tuple[Any, ...]]], counters: Mapping[str, float],
             stage: int, checkpoint: int) -> tuple[dict[str, float | None], dict[str, Any], list[RunError]]:
    """Every metric at one checkpoint: values, raw values, and the metrics that failed.

    A metric that reads a collection the checkpoint lacks (a procedural test before the
    stage's last checkpoint) is left out, not failed.
    """
    values: dict[str, float | None] = {}
    raw: dict[str, Any] = {}
    errors: list[RunError] = []
    ctx = MetricContext(collections, counters)
    for name, (module, fn) in metrics.items():
        try:
            with using(ctx):
                result = fn()
        except _Unavailable:
            continue
        except ModuleFailed as exc:
            errors.append(RunError(f"metric {name} failed: {exc.reason}", name, module_site(exc, module),
                                   stage, checkpoint))
            continue
        except Exception as exc:
            errors.append(RunError(f"metric {name} raised {type(exc).__name__}: {exc}", name,
                                   module_site(exc, module), stage, checkpoint,
                                   fix="metrics get real records at execution: (x, expected, predicted) "
                                   "per model test, (golden, predicted) per Test.Compare"))
            continue
        try:
            values[name], raw[name] = reduce_value(result)
        except (TypeError, ValueError) as exc:
            errors.append(RunError(f"metric {name} returned {type(result).__name__}, not a number: {exc}", name,
                                   Location(module.origin, module.line), stage, checkpoint,
                                   fix="return a number (or a list of numbers)"))
    return values, raw, errors
