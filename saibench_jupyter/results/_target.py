"""Time to target: scenarios ranked by the least work at which a precision metric reaches a value.

"Fastest to 95 % accuracy" read from each scenario's final point charges a run for every
epoch it trained, also those after it reached the target. This built-in ranking reads every
stage and checkpoint instead (medians over repeats, as the work–precision chart plots them)
and scores a scenario by the cheapest of its points that reach the target: the work a user
would have needed to stop there. The ranking module ``TimeToTarget``
(``sail_modules/rankings.py``) computes the same through ``r.checkpoints``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..sail import COUNTERS
from ._final_points import final_points
from ._levels import Ranking, dense_levels, ranking_table
from ._pareto import pareto_axes

if TYPE_CHECKING:
    from ._results import Results


def time_to_target(results: Results, precision: str, target: float, work: str | None = None) -> Ranking:
    """Rank scenarios by the least work at a point where ``precision`` reaches ``target``.

    Parameters
    ----------
    results : Results
        The scenarios; every stage and checkpoint of each is read.
    precision : str
        The precision metric; its direction (``better``) says what reaching means:
        at most ``target`` when lower is better, at least when higher is.
    target : float
        The value to reach.
    work : str, optional
        A work metric or counter; default: the first work metric, else ``ElapsedMilliseconds``.

    Returns
    -------
    Ranking
        Kind ``score``: the score is the work at the cheapest point that reaches the target
        (lower first; equal scores share a level). The table's ``precision``, ``stage`` and
        ``checkpoint`` columns are that point's; scenarios that never reach the target
        have no level, and ``why`` gives their best value.

    Raises
    ------
    ValueError
        For a ``precision`` that is not one of the results' metrics (the message lists
        them), a work axis they lack, or a ``target`` that is not a finite number.
    """
    import pandas as pd

    if not isinstance(target, int | float) or not math.isfinite(target):
        raise ValueError(f"target: {target!r} is not a finite number")
    points = final_points(results)
    info = points.attrs["metric_info"]
    metrics = [m for m in info if m not in COUNTERS and points[m].notna().any()]
    if precision not in metrics:
        raise ValueError(f"target: {precision!r} is not a metric of these results "
                         f"(metrics: {', '.join(metrics) or 'none'})")
    work, _ = pareto_axes(points, work, precision)
    if work not in info or not points[work].notna().any():
        raise ValueError(f"target: {work!r} is not a work metric or counter of these results "
                         f"(choose from {', '.join(m for m in info if points[m].notna().any())})")
    higher = info[precision]["better"] == "higher"

    agg = results.aggregate()
    keys = ["identity", "stage", "checkpoint"]
    reached = agg[agg["metric"] == precision][[*keys, "value_median"]].rename(columns={"value_median": "_p"})
    if work in COUNTERS:
        costs = agg[[*keys, work]].drop_duplicates(keys).rename(columns={work: "_w"})
    else:
        costs = agg[agg["metric"] == work][[*keys, "value_median"]].rename(columns={"value_median": "_w"})
    along = reached.merge(costs, on=keys).dropna(subset=["_p", "_w"])
    meets = along["_p"] >= target if higher else along["_p"] <= target
    cheapest = along[meets].sort_values(["_w", "stage", "checkpoint"]).groupby("identity").head(1)
    best = along.groupby("identity")["_p"].agg("max" if higher else "min")

    rows = pd.DataFrame(points).set_index("identity")
    at = cheapest.set_index("identity")
    scores: dict[int, float] = {}
    for i, identity in enumerate(rows.index):
        if identity in at.index and rows.at[identity, "status"] == "ok":
            point = at.loc[identity]
            scores[i] = float(point["_w"])
            for column, value in ((work, point["_w"]), (precision, point["_p"]),
                                  ("stage", point["stage"]), ("checkpoint", point["checkpoint"])):
                rows.at[identity, column] = value
        elif rows.at[identity, "status"] == "ok":
            sign = "≥" if higher else "≤"
            rows.at[identity, "why"] = (f"never reached {precision} {sign} {target:g}"
                                        + (f" (best {best[identity]:.4g})" if identity in best.index else ""))
            rows.at[identity, work] = math.nan
    table, notes = ranking_table(rows.reset_index(), dense_levels(scores, "lower"),
                                 [work, precision, "stage", "checkpoint"], score=scores)
    what = (f"the least {work} at a stage and checkpoint where {precision} {'≥' if higher else '≤'} {target:g} "
            "(medians over repeats)")
    return Ranking(f"TimeToTarget({precision} {'≥' if higher else '≤'} {target:g}, {work})", "score", table,
                   (f"score: {what}", *notes))
