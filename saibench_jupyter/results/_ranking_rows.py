"""What a ranking's code reads: a row per scenario, every checkpoint of it, and the ranking's own parameters.

A row is the scenario's final point (``r.WallTime``, ``r.label``); ``r.checkpoints`` is
every point it reached, in order, each with the same names as a final point has
(``p.Accuracy``, ``p.ElapsedMilliseconds``, ``p.stage``, ``p.checkpoint``): the medians
over repeats that the work–precision chart plots. A ranking module's parameters with
defaults (``def TimeToTarget(r, metric="Accuracy", target=0.95)``) may be overridden where
the ranking is asked for; :func:`ranking_params` checks each override against the
parameter's default, so a typo or a wrong kind of value is refused before any code runs.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..sail import COUNTERS

if TYPE_CHECKING:
    import pandas

    from ._results import Results

#: The name under which a row gives its scenario's checkpoints.
CHECKPOINTS = "checkpoints"
#: What a checkpoint has besides its metrics and counters (the same names a final point has).
_POINT = ("n", "stage", "checkpoint", "epoch")

Checkpoints = Callable[[str], tuple["Row", ...]]


class Row:
    """One scenario (or one of its checkpoints) as a ranking sees it: ``r.WallTime``, ``r["Flops"]``.

    A scenario notes the names read (the ranking table shows them) and gives its points as
    ``r.checkpoints``; a checkpoint reads the same names, at that point.
    """

    __slots__ = ("_checkpoints", "_read", "_values", "_what")

    def __init__(self, values: Mapping[str, Any], read: list[str], checkpoints: Checkpoints | None = None,
                 what: str = "scenario") -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_read", read)
        object.__setattr__(self, "_checkpoints", checkpoints)
        object.__setattr__(self, "_what", what)

    def __getattr__(self, name: str) -> Any:
        values = self._values
        if name == CHECKPOINTS and self._what == "scenario":
            if self._checkpoints is None:
                raise AttributeError("checkpoints: this ranking was given final points only; "
                                     "rank(results, ...) gives each scenario's checkpoints")
            return self._checkpoints(str(values["identity"]))
        if name not in values:
            known = ", ".join(k for k in values if k not in ("status", "why"))
            raise AttributeError(f"{name!r} is not a metric, work counter or field of this {self._what} "
                                 f"(it has: {known})")
        if name not in self._read:
            self._read.append(name)
        value = values[name]
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    __getitem__ = __getattr__

    def __repr__(self) -> str:
        if self._what == "scenario":
            return f"<scenario {self._values.get('label')}>"
        return f"<checkpoint {self._values.get('stage')}.{self._values.get('checkpoint')}>"


def checkpoint_reader(results: Results, points: pandas.DataFrame) -> Checkpoints:
    """``identity -> its checkpoints``, read from ``results`` once, on the first call (most rankings never ask).

    Each checkpoint holds ``n``, ``stage``, ``checkpoint``, ``epoch``, every metric of the
    final points (NaN where it was not evaluated at that point) and every work counter.
    """
    names = [c for c in points.attrs.get("metric_info", {}) if c not in COUNTERS]
    cache: dict[str, tuple[Row, ...]] = {}
    loaded: list[bool] = []

    def checkpoints(identity: str) -> tuple[Row, ...]:
        if not loaded:
            cache.update(_every_checkpoint(results, names))
            loaded.append(True)
        return cache.get(identity, ())

    return checkpoints


def _every_checkpoint(results: Results, names: Sequence[str]) -> dict[str, tuple[Row, ...]]:
    import math

    agg = results.aggregate()
    keys = ["identity", "stage", "checkpoint"]
    measured = agg[(agg["n"] > 0) & agg["stage"].notna()].sort_values(keys)
    if measured.empty:
        return {}
    place = measured.groupby(keys)[["epoch", *COUNTERS]].last()
    place["n"] = measured.groupby(keys)["n"].max()
    valued = measured[measured["value_median"].notna() & measured["metric"].notna()]
    metrics = valued.groupby([*keys, "metric"])["value_median"].last().unstack("metric")
    out: dict[str, list[Row]] = {}
    for (identity, stage, checkpoint), row in place.iterrows():
        values: dict[str, Any] = {"n": int(row["n"]), "stage": int(stage), "checkpoint": int(checkpoint),
                                  "epoch": row["epoch"]}
        key = (identity, stage, checkpoint)
        for name in names:
            have = name in metrics.columns and key in metrics.index
            values[name] = metrics.at[key, name] if have else math.nan
        values.update({c: row[c] for c in COUNTERS})
        out.setdefault(str(identity), []).append(Row(values, [], what="checkpoint"))
    return {identity: tuple(points) for identity, points in out.items()}


def ranking_params(name: str, fn: Callable[..., Any], scenarios: int, given: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides ``given`` for the ranking ``name``'s own parameters, checked against their defaults.

    Parameters
    ----------
    name : str
        The ranking module's name (for messages).
    fn : callable
        Its function: ``scenarios`` parameters, then its own, each with a default.
    scenarios : int
        1 (a score) or 2 (a comparison).
    given : mapping
        ``{parameter: value}`` to override.

    Returns
    -------
    dict
        ``given``, to pass as keywords.

    Raises
    ------
    ValueError
        For a name that is not one of its own parameters (the message lists them and a close
        name), or a value of another kind than the default's (a string for a number).
    """
    listed = list(inspect.signature(fn).parameters.values())
    own = {p.name: p.default for p in listed[scenarios:]}
    shown = ", ".join(f"{k}={v!r}" for k, v in own.items())
    for key, value in given.items():
        if key in (p.name for p in listed[:scenarios]):
            raise ValueError(f"ranking {name}: {key} is the scenario it ranks, not a parameter "
                             f"(its parameters: {shown or 'none'})\n  fix: leave {key} out")
        if key not in own:
            close = difflib.get_close_matches(key, own, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            example = close[0] if close else next(iter(own), "name")
            fix = (f"%sail rank {name} {example}=VALUE, or rank(results, {name!r}, params={{{example!r}: VALUE}})"
                   if own else f"give it parameters with defaults: def {name}(r, {key}=...)")
            raise ValueError(f"ranking {name} has no parameter {key!r} (its parameters: {shown or 'none'}){hint}\n"
                             f"  fix: {fix}")
        default = own[key]
        if not _fits(value, default):
            kind = type(default).__name__
            raise ValueError(f"ranking {name}: {key}={value!r} is a {type(value).__name__}, but its default "
                             f"{default!r} is a {kind}\n  fix: pass a {_kind(default)}, e.g. {key}={default!r}")
    return dict(given)


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` is the kind of value the parameter's ``default`` is (any number for a number)."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    if isinstance(default, list | tuple):
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "bool (True or False)"
    if isinstance(default, int | float):
        return "number"
    if isinstance(default, str):
        return "name (a string)"
    return type(default).__name__
