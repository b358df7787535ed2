"""The row a ranking reads per scenario: its metrics and work counters at its final point.

Score and comparison rankings, Pareto fronts and time to target all start from
:func:`final_points`; :func:`describe_metrics` says, for each of its columns, which axis it
is on, which direction is better and its unit (charts read it too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..sail import COUNTERS
from ._levels import INFO

if TYPE_CHECKING:
    import pandas

    from ._results import Results

#: Units of the work counters (metrics declare theirs with ``@MetricDefinition(unit=...)``).
COUNTER_UNITS = {"ElapsedMilliseconds": "ms", "TrainingMilliseconds": "ms", "InferenceMilliseconds": "ms",
                 "SamplesSeen": "samples", "Epochs": None, "Flops": "FLOP", "PeakMemoryBytes": "bytes"}


def describe_metrics(results: Any, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"axis", "better", "unit"}}`` for ``names``, with defaults where the store says nothing.

    Stores written before metrics' options were recorded (and plain frames) know nothing:
    a metric is then a precision metric where lower is better, a work counter is work.
    """
    reader = getattr(results, "metric_info", None)
    given: Mapping[str, Any] = (reader() or {}) if callable(reader) else {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        meta = given.get(name) or {}
        counter = name in COUNTERS
        out[name] = {"axis": meta.get("axis") or ("work" if counter else "precision"),
                     "better": meta.get("better") or "lower",
                     "unit": meta.get("unit") or COUNTER_UNITS.get(name)}
    return out


def final_points(results: Results) -> pandas.DataFrame:
    """One row per scenario: its metrics and work counters at its final point, medians over repeats.

    Parameters
    ----------
    results : Results
        The scenarios to rank.

    Returns
    -------
    pandas.DataFrame
        Columns ``identity``, ``label``, ``family``, ``problem``, ``model``, ``software``,
        ``hardware``, ``params`` (a dict ``{"Module.param": value}``), ``status`` (``ok`` when a repeat finished,
        ``running``, or ``DNF``), ``why`` (the first failure of a scenario that is not
        ``ok``), ``n`` (repeats at the final point), ``stage``, ``checkpoint``, ``epoch``,
        then one column per metric (sorted) and per work counter. The final point is the
        last stage's last checkpoint; a metric evaluated only at some checkpoints is taken
        from the last point that has it. ``attrs["metric_info"]`` says each column's axis,
        direction and unit (:func:`pareto` reads it).
    """
    import pandas as pd

    agg = results.aggregate()
    measured = agg[(agg["n"] > 0) & agg["stage"].notna()].sort_values(["identity", "stage", "checkpoint"])
    last = measured.groupby("identity").tail(1).set_index("identity")
    last = last[["n", "stage", "checkpoint", "epoch", *COUNTERS]]
    valued = measured[measured["value_median"].notna() & measured["metric"].notna()]
    metrics = (valued.groupby(["identity", "metric"])["value_median"].last().unstack("metric") if len(valued)
               else pd.DataFrame(index=pd.Index([], name="identity")))
    names = sorted(str(m) for m in metrics.columns)
    scenarios = results.scenarios()
    failures = results.failures().drop_duplicates("identity").set_index("identity")
    scenarios["status"] = ["ok" if ok else "running" if running else "DNF"
                           for ok, running in zip(scenarios["ok"], scenarios["running"])]
    scenarios["why"] = [_why(i, status, failures) for i, status in zip(scenarios["identity"], scenarios["status"])]
    scenarios["label"] = scenarios["label"].fillna(scenarios["identity"])
    out = scenarios[[*INFO, "status", "why"]].set_index("identity").join(last).join(metrics[names])
    out = out.reset_index()[[*INFO, "status", "why", "n", "stage", "checkpoint", "epoch", *names, *COUNTERS]]
    out["n"] = out["n"].fillna(0).astype("int64")
    out = pd.DataFrame(out).reset_index(drop=True)
    out.attrs["metric_info"] = describe_metrics(results, [*names, *COUNTERS])
    return out


def _why(identity: str, status: str, failures: pandas.DataFrame) -> str | None:
    """Why a scenario has no final values: its first failure, in one line."""
    if status != "DNF":
        return None if status == "ok" else "still running"
    if identity not in failures.index:
        return "no repeat finished"
    return f"{failures.loc[identity, 'kind']}: {failures.loc[identity, 'message']}"
