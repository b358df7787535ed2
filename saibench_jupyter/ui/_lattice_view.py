"""The discovery lattice and the converter graph as Plotly charts: plain data first, a figure last.

:func:`lattice_figure_data` turns a :class:`~saibench_jupyter.planner.Lattice` into the
columns of a sunburst (ids, parents, labels, colours, hover text and, for every node,
the scenario ids under it), so the dashboard can test and reuse it without a browser;
:func:`lattice_figure` and :func:`converter_figure` draw them, updating a given figure
(the dashboard's ``FigureWidget``) in place rather than making a new one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..planner import Lattice, Scenario

#: Colours of accepted nodes by module kind; rejected nodes are grey.
KIND_COLORS = {"root": "#ffffff", "problem": "#1f77b4", "hardware": "#ff7f0e", "software": "#2ca02c",
               "model": "#9467bd", "metric": "#8c564b", "ranking": "#e377c2"}
REJECTED_COLOR = "#c8c8c8"
_OTHER_COLOR = "#7f7f7f"


def lattice_figure_data(lattice: Lattice) -> dict[str, list[Any]]:
    """The search tree of ``lattice`` as the columns of a Plotly sunburst.

    Parameters
    ----------
    lattice : Lattice
        What discovery found (``Notebook.lattice()``).

    Returns
    -------
    dict of str to list
        Equal-length columns, one entry per node in the tree's order (problem →
        hardware → software → model, rejected branches included): ``ids`` (paths,
        ``"0/1/2"``), ``parents``, ``labels`` (rejected ones marked ``✗``), ``kinds``,
        ``accepted``, ``reasons`` (why a rejected node was rejected, else ``""``),
        ``colors`` (by kind; grey when rejected), ``hover`` (text shown on hover, with the
        reason for rejected nodes) and ``scenarios`` (the ids of every scenario under the
        node, for selection).
    """
    records = lattice.tree().records()
    under: dict[str, list[str]] = {r["id"]: list(r["scenarios"]) for r in records}
    for record in reversed(records):  # descendants come after their parent: fold upwards
        if record["parent"]:  # each scenario sits in one leaf, so no id is counted twice
            under[record["parent"]].extend(under[record["id"]])
    data: dict[str, list[Any]] = {k: [] for k in ("ids", "parents", "labels", "kinds", "accepted", "reasons",
                                                  "colors", "hover", "scenarios")}
    for r in records:
        scenarios = under[r["id"]]
        accepted = bool(r["accepted"])
        data["ids"].append(r["id"])
        data["parents"].append(r["parent"])
        data["labels"].append(r["label"] if accepted else f"✗ {r['label']}")
        data["kinds"].append(r["kind"])
        data["accepted"].append(accepted)
        data["reasons"].append("" if accepted else str(r["reason"]))
        data["colors"].append(KIND_COLORS.get(r["kind"], _OTHER_COLOR) if accepted else REJECTED_COLOR)
        head = f"<b>{escape(r['kind'])}</b> {escape(r['label'])}"
        if accepted:
            count = len(scenarios)
            data["hover"].append(f"{head}<br>{count} scenario{'s' if count != 1 else ''} (click to select)")
        else:
            data["hover"].append(f"{head}<br>rejected: {escape(str(r['reason']))}")
        data["scenarios"].append(scenarios)
    return data


def rejected_reasons(lattice: Lattice) -> list[str]:
    """Every rejection row of ``lattice`` (real ones first), one each: ``model Picky for problem Doubling: reason``."""
    rows = lattice.rejection_rows(expected=False) + lattice.rejection_rows(expected=True)
    return [str(r) for r in rows]


def lattice_figure(lattice: Lattice, figure: Any = None) -> Any:
    """Draw the search tree of ``lattice`` as a sunburst, in ``figure`` when given.

    Parameters
    ----------
    lattice : Lattice
        What discovery found.
    figure : plotly.graph_objects.Figure or FigureWidget, optional
        A figure to update in place: its sunburst trace (the first trace) keeps its
        identity, so click callbacks registered on it stay; made when it has none.

    Returns
    -------
    plotly.graph_objects.Figure
        ``figure`` when given, else a new one. Each point's ``customdata`` is the node id.
    """
    import plotly.graph_objects as go

    data = lattice_figure_data(lattice)
    fig = figure if figure is not None else go.Figure()
    columns = {"ids": data["ids"], "parents": data["parents"], "labels": data["labels"],
               "marker": {"colors": data["colors"], "line": {"color": "#888888", "width": 0.5}},
               "hovertext": data["hover"], "hoverinfo": "text", "customdata": data["ids"]}
    with fig.batch_update():
        if fig.data and fig.data[0].type == "sunburst":
            fig.data[0].update(**columns)
            if len(fig.data) > 1:
                fig.data = fig.data[:1]
        else:
            fig.data = ()
            fig.add_trace(go.Sunburst(branchvalues="remainder", maxdepth=-1, **columns))
        fig.update_layout(title={"text": f"Discovery: {lattice.headline()}"},
                          margin={"t": 40, "l": 0, "r": 0, "b": 0})
    return fig


def _chain_edges(chains: Sequence[Any]) -> Iterator[tuple[str, str]]:
    """The (source, target) type names of every step of ``chains``, inner chains included."""
    for chain in chains:
        for step in chain.steps:
            yield repr(step.source), repr(step.target)
            yield from _chain_edges(step.inner)


def converter_figure_data(lattice: Lattice, scenario: Scenario | str | None = None) -> dict[str, Any]:
    """The converter graph of ``lattice`` laid out, with the chains of ``scenario`` marked.

    Parameters
    ----------
    lattice : Lattice
        What discovery found (its ``converter_graph``).
    scenario : Scenario or str, optional
        A scenario (or its id) whose conversion chains are highlighted.

    Returns
    -------
    dict
        ``nodes`` (type names), ``x``/``y`` (positions), ``edges`` (``(source, target,
        converter, highlighted)``), ``highlighted`` (the set of highlighted edges).
    """
    import networkx as nx

    graph = lattice.converter_graph
    if isinstance(scenario, str):
        scenario = lattice[scenario]
    used = set(_chain_edges(scenario.converters)) if scenario is not None else set()
    nodes = sorted(graph.nodes)
    positions = nx.spring_layout(graph, seed=1) if len(nodes) > 1 else {n: (0.0, 0.0) for n in nodes}
    edges = [(a, b, str(attrs.get("converter", "")), (a, b) in used)
             for a, b, attrs in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1]))]
    return {"nodes": nodes, "x": [float(positions[n][0]) for n in nodes],
            "y": [float(positions[n][1]) for n in nodes], "edges": edges, "highlighted": used}


def converter_figure(lattice: Lattice, scenario: Scenario | str | None = None, figure: Any = None) -> Any:
    """Draw the converter graph (types as nodes, converters as edges), ``scenario``'s chains in red.

    Parameters
    ----------
    lattice : Lattice
        What discovery found.
    scenario : Scenario or str, optional
        The scenario (or id) whose chains are highlighted.
    figure : plotly.graph_objects.Figure or FigureWidget, optional
        A figure to redraw in place (its traces are replaced).

    Returns
    -------
    plotly.graph_objects.Figure
        ``figure`` when given, else a new one: trace 0 the plain edges, trace 1 the
        highlighted edges, trace 2 the types.
    """
    import plotly.graph_objects as go

    data = converter_figure_data(lattice, scenario)
    where = dict(zip(data["nodes"], zip(data["x"], data["y"], strict=True), strict=True))

    def lines(highlighted: bool) -> tuple[list[float | None], list[float | None], list[str]]:
        xs: list[float | None] = []
        ys: list[float | None] = []
        text: list[str] = []
        for a, b, converter, marked in data["edges"]:
            if marked == highlighted:
                xs += [where[a][0], where[b][0], None]
                ys += [where[a][1], where[b][1], None]
                text += [converter, converter, ""]
        return xs, ys, text

    plain, marked = lines(False), lines(True)
    fig = figure if figure is not None else go.Figure()
    with fig.batch_update():
        fig.data = ()
        fig.add_traces([
            go.Scatter(x=plain[0], y=plain[1], text=plain[2], mode="lines", name="converters",
                       line={"color": "#999999", "width": 1}, hoverinfo="text"),
            go.Scatter(x=marked[0], y=marked[1], text=marked[2], mode="lines", name="used by the scenario",
                       line={"color": "#d62728", "width": 3}, hoverinfo="text"),
            go.Scatter(x=data["x"], y=data["y"], text=data["nodes"], mode="markers+text", name="types",
                       textposition="top center", marker={"size": 10, "color": "#1f77b4"}, hoverinfo="text"),
        ])
        title = "Converters" if data["nodes"] else "Converters: none declared or used"
        if scenario is not None:
            title += f" — highlighted: {len(data['highlighted'])} step(s) of the selected scenario"
        fig.update_layout(title={"text": title}, showlegend=True, xaxis={"visible": False},
                          yaxis={"visible": False}, margin={"t": 40, "l": 0, "r": 0, "b": 0})
    return fig
