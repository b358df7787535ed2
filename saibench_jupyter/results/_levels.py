"""What every ranking shares: the :class:`Ranking` it gives, levels from an order, and its table.

Score, comparison, Pareto and time-to-target rankings differ only in how they order the
scenarios; each then tells the order as *levels* (1 is best, ties and incomparable
scenarios share one) in the same table, where scenarios that did not finish stay, last
and without a level. This module is that shared part, so the rankings need not import
one another.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas

#: Scenario columns every points frame and ranking table starts with.
INFO = ("identity", "label", "family", "problem", "model", "software", "hardware", "params")
#: The directions a metric or a score may be better in.
BETTER = ("lower", "higher")
RankingKind = Literal["score", "comparison", "pareto"]
_UNRANKED_ORDER = {"no value": 0, "running": 1, "DNF": 2}


def levels_of(n: int, edges: Iterable[tuple[int, int]]) -> tuple[list[int], list[list[int]]]:
    """Level of each of ``n`` entries under "i ranks strictly before j" edges, and the cycles found.

    Entries on a cycle rank before one another, so no order exists between them: each
    cycle is collapsed into one entry (strongly connected components), which makes the
    graph acyclic and the peeling below always terminate.
    """
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    dag = nx.condensation(graph)
    level = [0] * n
    for depth, generation in enumerate(nx.topological_generations(dag), 1):
        for component in generation:
            for member in dag.nodes[component]["members"]:
                level[member] = depth
    cycles = [sorted(dag.nodes[c]["members"]) for c in dag.nodes if len(dag.nodes[c]["members"]) > 1]
    return level, cycles


def dense_levels(scores: Mapping[int, float], better: str) -> dict[int, int]:
    """Levels of scores: the best is 1, ties share a level and the next level is one more."""
    order = {value: level for level, value in enumerate(sorted(set(scores.values()), reverse=better == "higher"), 1)}
    return {i: order[s] for i, s in scores.items()}


@dataclass(frozen=True, eq=False)
class Ranking:
    """Scenarios ordered by one ranking.

    Attributes
    ----------
    name : str
        The ranking's name (module, function or ``Pareto(work, precision)``).
    kind : str
        ``score`` (total order), ``comparison`` (partial order) or ``pareto``.
    table : pandas.DataFrame
        ``level`` (1 is best; shared by ties and incomparable scenarios; missing for
        scenarios that were not ranked), ``identity``, ``label``, ``family``, the values the
        ranking used, ``score`` (scores only), ``status`` (``ok``, ``no value``,
        ``running``, ``DNF``) and ``why``; ranked rows first, best first.
    notes : tuple of str
        What the reader should know (cycles in a comparison, scenarios left unranked).
    """

    name: str
    kind: RankingKind
    table: pandas.DataFrame
    notes: tuple[str, ...] = ()

    def _shown(self) -> pandas.DataFrame:
        """The table for reading: no identity (long hex), blank levels and reasons where there are none."""
        shown = self.table.drop(columns=["identity"])
        shown["level"] = shown["level"].astype("object").fillna("")
        return shown.drop(columns=["why"]) if shown["why"].isna().all() else shown.fillna({"why": ""})

    def __repr__(self) -> str:
        shown = self._shown().to_string(index=False, na_rep="", float_format="{:.4g}".format)
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        return f"Ranking {self.name} ({self.kind})\n{shown}{notes}"

    def _repr_html_(self) -> str:
        shown = self._shown().to_html(index=False, na_rep="", float_format="{:.4g}".format)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<div><p><b>{html.escape(self.name)}</b> ({self.kind})</p>"
                f"{f'<ul>{notes}</ul>' if notes else ''}{shown}</div>")


def check_points(points: pandas.DataFrame) -> pandas.DataFrame:
    """A copy of ``points`` with a fresh index and the columns a table needs (defaults where missing)."""
    if "identity" not in points.columns:
        raise ValueError("a ranking needs one row per scenario with an 'identity' column: pass "
                         "final_points(results), or call rank(results, ...)")
    points = points.reset_index(drop=True).copy()
    for column, default in (("label", points["identity"]), ("family", ""), ("status", "ok"), ("why", None)):
        if column not in points.columns:
            points[column] = default
    return points


def ranking_table(points: pandas.DataFrame, levels: Mapping[int, int], used: Sequence[str], *,
                  score: Mapping[int, float] | None = None) -> tuple[pandas.DataFrame, list[str]]:
    """The ranking table, ranked rows first (by level, score, label), and notes on the unranked."""
    import pandas as pd

    shown = [c for c in dict.fromkeys(used) if c in points.columns and c not in (*INFO, "status", "why")]
    table = points[["identity", "label", "family", *shown]].copy()
    table.insert(0, "level", pd.array([levels.get(i) for i in range(len(points))], dtype="Int64"))
    if score is not None:
        table["score"] = [score.get(i, math.nan) for i in range(len(points))]
    status = [s if s != "ok" or i in levels else "no value" for i, s in enumerate(points["status"])]
    table["status"], table["why"] = status, points["why"]
    table["_order"] = [_UNRANKED_ORDER.get(s, -1) for s in status]
    keys = ["_order", "level", *(["score"] if score is not None else []), "label"]
    table = table.sort_values(keys, na_position="last", kind="stable").drop(columns="_order")
    notes = [f"{count} scenario{'s' * (count > 1)} {what}: no level" for what, count in
             (("did not finish", status.count("DNF")), ("still running", status.count("running")),
              ("gave no value", status.count("no value"))) if count]
    return table.reset_index(drop=True), notes

