"""The built-in Pareto ranking: successive non-dominated fronts over a work and a precision column."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..sail import COUNTERS
from ._levels import BETTER, INFO, Ranking, check_points, levels_of, ranking_table

if TYPE_CHECKING:
    import pandas


def pareto(points: pandas.DataFrame, work: str, precision: str, *, better: Mapping[str, str] | None = None) -> Ranking:
    """Pareto fronts over two columns: level 1 is the non-dominated front, then the next front ...

    Parameters
    ----------
    points : pandas.DataFrame
        One row per scenario, as :func:`final_points` gives.
    work, precision : str
        The two columns (metrics or work counters).
    better : mapping, optional
        ``{column: "lower" | "higher"}``; by default from ``points.attrs["metric_info"]``,
        else lower is better.

    Raises
    ------
    ValueError
        For a column ``points`` does not have, or a direction that is not lower/higher.
    """
    import pandas as pd

    points = check_points(points)
    info = points.attrs.get("metric_info") or {}
    signs = []
    for column in (work, precision):
        if column not in points.columns:
            raise ValueError(f"pareto: no column {column!r}; the points have "
                             f"{', '.join(c for c in points.columns if c not in (*INFO, 'status', 'why'))}")
        direction = (better or {}).get(column) or (info.get(column) or {}).get("better") or "lower"
        if direction not in BETTER:
            raise ValueError(f"pareto: better[{column!r}] = {direction!r}; use 'lower' or 'higher'")
        signs.append(-1.0 if direction == "higher" else 1.0)  # minimise both after flipping "higher"
    pairs = zip(pd.to_numeric(points[work], errors="coerce"), pd.to_numeric(points[precision], errors="coerce"))
    # A scenario without both values cannot be placed on a front: it stays unranked ("no value").
    values = {i: (signs[0] * float(w), signs[1] * float(p)) for i, (w, p) in enumerate(pairs)
              if points["status"][i] == "ok" and not (math.isnan(w) or math.isnan(p))}
    index = list(values)
    edges = [(a, b) for a, va in enumerate(values.values()) for b, vb in enumerate(values.values())
             if va[0] <= vb[0] and va[1] <= vb[1] and va != vb]
    levels, _ = levels_of(len(index), edges)
    table, notes = ranking_table(points, {index[k]: level for k, level in enumerate(levels)}, [work, precision])
    return Ranking(f"Pareto({work}, {precision})", "pareto", table, tuple(notes))


def pareto_axes(points: pandas.DataFrame, work: str | None, precision: str | None) -> tuple[str, str]:
    """The (work, precision) axes: those given, else the first work metric (or ``ElapsedMilliseconds``)
    and the first precision metric of ``points``."""
    info: Mapping[str, Mapping[str, Any]] = points.attrs.get("metric_info") or {}
    metrics = [m for m in info if m not in COUNTERS and points[m].notna().any()]
    work = work or next((m for m in metrics if info[m]["axis"] == "work"), "ElapsedMilliseconds")
    precision = precision or next((m for m in metrics if info[m]["axis"] == "precision"), None)
    if precision is None:
        raise ValueError(f"pareto: these results have no precision metric (metrics: {', '.join(metrics) or 'none'});"
                         " pass ('pareto', work, precision) with the columns to use")
    return work, precision
