"""Work–precision charts: the cost of reaching an error, curves per family, DNF kept in sight.

Charts are data until the last step: :func:`work_precision_traces` turns results into
renderer-neutral :class:`Trace` objects (medians over repeats, q20–q80 spread, labels,
hover texts, colours), and only :func:`plot_work_precision` imports Plotly to draw them.
The default layout follows the SciML work–precision diagram: precision (the error) on x,
work on y, both logarithmic.

What a line joins (``connect``): a family whose scenarios give one point each (a solver at
a sweep of tolerances) is one curve through its scenarios, ordered by the swept parameter,
as in a DiffEqDevTools work–precision diagram; a family whose scenarios have several
checkpoints (training epochs) is one curve per scenario, ordered by checkpoint, in shades
of the family's colour and grouped under the family in the legend.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..results._rankings import describe_metrics
from ..runtime._result import COUNTERS
from ._curves import curves, differing_params, flat_params, natural, param_text
from ._palette import shades

if TYPE_CHECKING:
    import pandas
    import plotly.graph_objects as go

#: What a trace may stand for (``family`` is model × software × hardware on one problem).
COLORS = ("family", "model", "software", "hardware", "problem")
#: What a curve joins: a family's scenarios by their swept parameter, or one scenario's checkpoints.
CONNECT = ("param", "checkpoint")
_TIDY = ("identity", "repeat", "status", "stage", "checkpoint", "metric", "value")
_KEYS = ["identity", "stage", "checkpoint"]


@dataclass(frozen=True)
class Trace:
    """One curve of a work–precision chart (one legend entry), or the scenarios that did not finish.

    ``x``/``y`` are medians over repeats and ``*_low``/``*_high`` their 20 % and 80 %
    quantiles (equal to the median with one repeat), in the order the line joins them:
    with ``connect == "param"`` one point per scenario (its last checkpoint) ordered by
    the family's swept parameter; with ``connect == "checkpoint"`` one scenario's points
    ordered by stage and checkpoint. ``group`` is the family (the value of the chart's
    ``color`` column) the curve belongs to, the legend group; ``color`` its ``#rrggbb``
    colour, a shade of the family's hue when the family has several curves.
    """

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    x_low: tuple[float, ...]
    x_high: tuple[float, ...]
    y_low: tuple[float, ...]
    y_high: tuple[float, ...]
    labels: tuple[str, ...]
    hover: tuple[str, ...]
    n: tuple[int, ...]
    identities: tuple[str, ...]
    dnf: bool = False
    group: str = ""
    color: str = "#808080"
    connect: str = "param"


@dataclass(frozen=True)
class Axis:
    """One axis of the chart: which column, its unit and direction, and whether it is logarithmic."""

    name: str
    unit: str | None
    better: str
    log: bool

    @property
    def title(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


@dataclass(frozen=True)
class _Chart:
    """A chart as data: its traces (curves, then DNF) and the axes as drawn (after any swap)."""

    traces: list[Trace]
    x: Axis
    y: Axis


def _read(source: Any) -> tuple[pandas.DataFrame, Any]:
    """The tidy frame of ``source`` (Results or its ``to_dataframe()``), and the Results if given."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        missing = [c for c in _TIDY if c not in source.columns]
        if missing:
            raise ValueError(f"the frame lacks column(s) {', '.join(missing)}: pass Results or the tidy frame "
                             "Results.to_dataframe() returns (filtered as you like)")
        return source, None
    if not hasattr(source, "to_dataframe"):
        raise TypeError(f"expected Results or its to_dataframe() frame, not {type(source).__name__}")
    return source.to_dataframe(), source


def _choices(tidy: pandas.DataFrame, results: Any) -> tuple[list[str], list[str], dict[str, dict[str, Any]]]:
    metrics = sorted(str(m) for m in tidy.loc[tidy["value"].notna(), "metric"].dropna().unique())
    info = describe_metrics(results, [*metrics, *COUNTERS])
    counters = [c for c in COUNTERS if c in tidy.columns and tidy[c].notna().any()]
    work = [m for m in metrics if info[m]["axis"] == "work"] + counters
    precision = [m for m in metrics if info[m]["axis"] == "precision"]
    return work, precision, info


def axes_available(results: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The work and precision choices of these results, for a chart's dropdowns.

    Parameters
    ----------
    results : Results or pandas.DataFrame
        Results, or the tidy frame of :meth:`Results.to_dataframe`.

    Returns
    -------
    tuple
        ``(work, precision)``: work-axis metrics then the work counters that have values;
        precision-axis metrics (metrics whose axis is not recorded count as precision).
    """
    tidy, results = _read(results)
    work, precision, _ = _choices(tidy, results)
    return tuple(work), tuple(precision)


def _axis_names(tidy: pandas.DataFrame, results: Any, work: str | None,
                precision: str | None) -> tuple[str, str, dict[str, dict[str, Any]]]:
    works, precisions, info = _choices(tidy, results)
    metrics = sorted(set(tidy["metric"].dropna()))
    known = f"work: {', '.join(works) or 'none'}; precision: {', '.join(precisions) or 'none'}"
    for role, name in (("work", work), ("precision", precision)):
        if name is not None and name not in metrics and name not in COUNTERS:
            raise ValueError(f"{role}={name!r} is neither a metric nor a work counter of these results ({known}); "
                             f"pass one of them")
    work = work or (works[0] if works else "ElapsedMilliseconds")
    if precision is None:
        if not precisions and metrics:
            raise ValueError(f"these results have no precision metric ({known}); pass precision=<metric>")
        precision = precisions[0] if precisions else "precision"  # nothing measured yet: an empty chart
    for name in (work, precision):
        info.setdefault(name, {"axis": "precision", "better": "lower", "unit": None})
    return work, precision, info


def _points(tidy: pandas.DataFrame, x: str, y: str) -> pandas.DataFrame:
    """Median, q20 and q80 over repeats of columns ``x`` and ``y`` per identity × stage × checkpoint."""
    import numpy as np
    import pandas as pd

    keys = ["identity", "repeat", "stage", "checkpoint"]
    measured = tidy[tidy["stage"].notna()]
    wide = measured.drop_duplicates(keys)[[*keys, "epoch", *[c for c in COUNTERS if c in tidy.columns]]]
    values = measured[measured["metric"].isin([x, y])].set_index([*keys, "metric"])["value"].unstack("metric")
    wide = wide.set_index(keys).join(values).reset_index()
    for column in (x, y):
        if column not in wide.columns:
            wide[column] = np.nan
    wide = wide.replace([np.inf, -np.inf], np.nan).dropna(subset=list(dict.fromkeys([x, y])))
    wide["epoch"] = wide["epoch"].astype("float64")
    groups = wide.groupby(_KEYS, sort=True)
    out = groups.agg(n=("repeat", "nunique"), epoch=("epoch", "median"))
    for column, role in ((x, "x"), (y, "y")):
        series = groups[column]
        out[role], out[f"{role}_low"], out[f"{role}_high"] = series.median(), series.quantile(0.2), \
            series.quantile(0.8)
    return pd.DataFrame(out.reset_index())


def _value_text(name: str, median: float, low: float, high: float, unit: str | None) -> str:
    spread = f" (q20–q80 {low:.4g}–{high:.4g})" if low != high else ""
    return f"{name}: {median:.4g}{' ' + unit if unit else ''}{spread}"


def _scenario_lines(info: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    modules = " · ".join(f"{k}: {info[k]}" for k in ("problem", "model", "software", "hardware")
                         if isinstance(info.get(k), str))
    lines = [str(info["label"]), *([modules] if modules else [])]
    if params:
        lines.append("params: " + param_text(params, list(params)))
    return lines


def _statuses(tidy: pandas.DataFrame) -> dict[str, list[str]]:
    pods = tidy.drop_duplicates(["identity", "repeat"])
    return {str(i): list(g["status"]) for i, g in pods.groupby("identity")}


def _family_traces(family: str, index: int, rows: pandas.DataFrame, scenarios: Mapping[str, Mapping[str, Any]],
                   axes: tuple[Axis, Axis], statuses: Mapping[str, list[str]], swap: bool,
                   connect: str | None) -> list[Trace]:
    """The curves of one family (legend group), in shades of its hue when there are several."""
    params = {i: flat_params(scenarios[i]["params"]) for i in rows["identity"].unique()}
    differing = differing_params(params)
    several = bool((rows.groupby("identity").size() > 1).any())
    mode = connect or ("checkpoint" if several else "param")
    lines = curves(family, rows, scenarios, params, differing, mode)
    colors = shades(index, len(lines))
    return [_trace(name, curve, family, color, mode, scenarios, params, list(differing), several, axes, statuses, swap)
            for (name, curve), color in zip(lines, colors, strict=True)]


def _trace(name: str, rows: pandas.DataFrame, group: str, color: str, connect: str,
           scenarios: Mapping[str, Mapping[str, Any]], params: Mapping[str, Mapping[str, Any]],
           differing: list[str], several: bool, axes: tuple[Axis, Axis], statuses: Mapping[str, list[str]],
           swap: bool) -> Trace:
    stages = rows["stage"].nunique() > 1
    labels, hover = [], []
    for r in rows.itertuples():
        where = (f"stage {r.stage}, " if stages else "") + (f"epoch {int(r.epoch)}" if not math.isnan(r.epoch)
                                                            else f"checkpoint {r.checkpoint}")
        labels.append(", ".join(t for t in (param_text(params[r.identity], differing), where if several else "")
                                if t))
        pods = statuses.get(r.identity, [])
        lines = [*_scenario_lines(scenarios[r.identity], params[r.identity]),
                 f"stage {r.stage}, checkpoint {r.checkpoint}"
                 + ("" if math.isnan(r.epoch) else f", epoch {int(r.epoch)}"),
                 *(_value_text(a.name, m, lo, hi, a.unit) for a, m, lo, hi in
                   ((axes[0], r.x, r.x_low, r.x_high), (axes[1], r.y, r.y_low, r.y_high))),
                 f"n = {r.n} repeat{'s' * (r.n != 1)}"]
        if pods.count("ok") < len(pods):
            lines.append(f"{pods.count('ok')} of {len(pods)} repeats finished")
        hover.append("\n".join(lines))
    cols = ["x", "x_low", "x_high", "y", "y_low", "y_high"]
    data = {c: tuple(float(v) for v in rows[c]) for c in cols}
    if swap:  # the frame's x is precision and y is work; swapping exchanges them
        data = {("y" if c[0] == "x" else "x") + c[1:]: v for c, v in data.items()}
    return Trace(name, data["x"], data["y"], data["x_low"], data["x_high"], data["y_low"], data["y_high"],
                 tuple(labels), tuple(hover), tuple(int(n) for n in rows["n"]),
                 tuple(str(i) for i in rows["identity"]), group=group, color=color, connect=connect)


def _edge(values: list[float], log: bool, high: bool) -> float:
    """A position just past the data on one side of an axis (where DNF markers sit)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 1.0
    lo, hi = min(finite), max(finite)
    if log:
        return hi * 2.0 if high else lo / 2.0
    pad = (hi - lo) * 0.05 or 1.0
    return hi + pad if high else lo - pad


def _dnf_trace(dnf: list[str], points: pandas.DataFrame, scenarios: Mapping[str, Mapping[str, Any]],
               why: Mapping[str, list[str]], precision: Axis, work: Axis, swap: bool) -> Trace:
    """The scenarios that did not finish, on the worst edge of the precision axis.

    Their work coordinate is their last measured work where they have one (how far they
    got), else the top of the work axis.
    """
    spans = [*points["x"], *points["x_low"], *points["x_high"]]
    edge = _edge(spans, precision.log, precision.better != "higher")
    top = _edge([*points["y"], *points["y_high"]], work.log, True)
    xs, ys, hover = [], [], []
    for identity in dnf:
        mine = points[points["identity"] == identity]
        xs.append(edge)
        ys.append(float(mine["y"].iloc[-1]) if len(mine) else top)
        info = scenarios[identity]
        reasons = why.get(identity) or ["no repeat finished"]
        hover.append("\n".join([*_scenario_lines(info, flat_params(info["params"])), "did not finish:",
                                *(f"  {r}" for r in reasons)]))
    empty = (math.nan,) * len(dnf)
    x, y = (tuple(ys), tuple(xs)) if swap else (tuple(xs), tuple(ys))
    labels = tuple(str(scenarios[i]["label"]) for i in dnf)
    return Trace("DNF", x, y, empty, empty, empty, empty, labels, tuple(hover), (0,) * len(dnf), tuple(dnf), True,
                 group="DNF")


def _reasons(results: Any) -> dict[str, list[str]]:
    if results is None:
        return {}
    out: dict[str, list[str]] = {}
    for f in results.failures().itertuples():
        text = f"repeat {f.repeat}: {f.kind}: {f.message}"
        out.setdefault(str(f.identity), []).append(text)
    return out


def _chart(source: Any, work: str | None, precision: str | None, color: str, swap: bool,
           connect: str | None) -> _Chart:
    if color not in COLORS:
        raise ValueError(f"color={color!r}: color the traces by one of {', '.join(COLORS)}")
    if connect is not None and connect not in CONNECT:
        raise ValueError(f"connect={connect!r}: join a family's scenarios along their swept parameter (param) or "
                         "each scenario's checkpoints (checkpoint); leave it out to choose per family")
    tidy, results = _read(source)
    work, precision, info = _axis_names(tidy, results, work, precision)
    points = _points(tidy, precision, work)  # x = precision, y = work until the end
    statuses = _statuses(tidy)
    first = tidy.drop_duplicates("identity").set_index("identity")
    scenarios = {str(i): {**row, "label": row["label"] if isinstance(row["label"], str) else str(i)}
                 for i, row in first.to_dict("index").items()}
    # Did not finish: no repeat ended ok and none is still running (a running scenario plots what it has).
    dnf = sorted((i for i, s in statuses.items() if "ok" not in s and "running" not in s),
                 key=lambda i: natural(scenarios[i]["label"]))
    shown = points[~points["identity"].isin(dnf)]
    axes = [Axis(name, info[name]["unit"], info[name]["better"],
                 all(v > 0 for v in (*shown[c], *shown[f"{c}_low"]) if math.isfinite(v)))
            for name, c in ((precision, "x"), (work, "y"))]
    traces: list[Trace] = []
    groups = {i: str(s.get(color) or "?") for i, s in scenarios.items()}
    order = {i: k for k, i in enumerate(sorted(scenarios, key=lambda i: natural(scenarios[i]["label"])))}
    shown = shown.assign(_group=shown["identity"].map(groups), _order=shown["identity"].map(order))
    for index, (name, rows) in enumerate(shown.groupby("_group", sort=True)):
        traces += _family_traces(str(name), index, rows, scenarios, (axes[0], axes[1]), statuses, swap, connect)
    if dnf:
        traces.append(_dnf_trace(dnf, points, scenarios, _reasons(results), axes[0], axes[1], swap))
    x, y = (axes[1], axes[0]) if swap else (axes[0], axes[1])
    return _Chart(traces, x, y)


def work_precision_traces(results_or_frame: Any, work: str | None = None, precision: str | None = None,
                          color: str = "family", swap: bool = False, connect: str | None = None) -> list[Trace]:
    """The traces of a work–precision chart, as plain data (no plotting library involved).

    Parameters
    ----------
    results_or_frame : Results or pandas.DataFrame
        Results, or the tidy frame of :meth:`Results.to_dataframe` (then failures are not
        known, only statuses).
    work : str, optional
        A work metric or work counter; default: the first metric whose axis is work, else
        ``ElapsedMilliseconds``.
    precision : str, optional
        A metric; default: the first metric whose axis is precision.
    color : {"family", "model", "software", "hardware", "problem"}
        What a legend group (one hue) stands for.
    swap : bool
        Work on x and precision on y (default: precision on x, as SciML's diagrams do).
    connect : {"param", "checkpoint"}, optional
        What a line joins. ``param``: a group's scenarios, one point each (its last
        checkpoint), ordered by the swept parameter (a tolerance sweep). ``checkpoint``:
        one scenario's checkpoints (a training curve), one curve per scenario. By default
        each group gets ``checkpoint`` when any of its scenarios has several points, else
        ``param``.

    Returns
    -------
    list of Trace
        The curves of each group (groups sorted by name, curves by parameter), then a trace
        named ``DNF`` (``dnf=True``) holding the scenarios none of whose repeats finished,
        when there are any.

    Raises
    ------
    ValueError
        For an axis name that is neither a metric nor a work counter (the message lists
        the choices), an unknown ``color`` or ``connect``.
    """
    return _chart(results_or_frame, work, precision, color, swap, connect).traces


def axis_layout(axis: Axis) -> dict[str, Any]:
    """The Plotly layout of one axis: its title and scale, and tick labels that read as what they are.

    On a log axis Plotly labels the ticks between two powers of ten with a bare digit, so a
    "2" and a "5" after "100" read as 2 and 5: minor labels are written whole (200, 500),
    and small or large values as ``2e-6`` (Plotly's default writes ``2µ``, which reads as a
    unit, and ``power`` writes 20 as ``2x10``).
    """
    return {"type": "log" if axis.log else "linear", "title": {"text": axis.title},
            "minorloglabels": "complete", "exponentformat": "e" if axis.log else "B"}


def _hover(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def _scatter(trace: Trace, titled: bool) -> go.Scatter:
    """One trace as a Plotly scatter; ``titled``: it opens a legend group of several curves."""
    import plotly.graph_objects as go

    if trace.dnf:
        return go.Scatter(x=list(trace.x), y=list(trace.y), name=f"DNF ({len(trace.x)})", mode="markers",
                          marker={"symbol": "x", "size": 10, "color": "gray"}, text=list(trace.labels),
                          hovertext=[_hover(h) for h in trace.hover], hoverinfo="text",
                          customdata=list(trace.identities), legendgroup="DNF")
    bars = {"ex": [h - m for m, h in zip(trace.x, trace.x_high, strict=True)],
            "exm": [m - lo for m, lo in zip(trace.x, trace.x_low, strict=True)],
            "ey": [h - m for m, h in zip(trace.y, trace.y_high, strict=True)],
            "eym": [m - lo for m, lo in zip(trace.y, trace.y_low, strict=True)]}
    spread = any(v for column in bars.values() for v in column)
    return go.Scatter(
        x=list(trace.x), y=list(trace.y), name=trace.name, mode="lines+markers", text=list(trace.labels),
        hovertext=[_hover(h) for h in trace.hover], hoverinfo="text", customdata=list(trace.identities),
        line={"color": trace.color}, marker={"color": trace.color}, legendgroup=trace.group,
        legendgrouptitle={"text": trace.group if titled else ""},
        error_x={"type": "data", "symmetric": False, "array": bars["ex"], "arrayminus": bars["exm"],
                 "visible": spread, "thickness": 1},
        error_y={"type": "data", "symmetric": False, "array": bars["ey"], "arrayminus": bars["eym"],
                 "visible": spread, "thickness": 1})


def plot_work_precision(results: Any, work: str | None = None, precision: str | None = None,
                        color: str = "family", swap: bool = False, figure: Any = None,
                        connect: str | None = None) -> Any:
    """A Plotly work–precision chart: medians over repeats with q20–q80 error bars, DNF on the edge.

    Parameters
    ----------
    results : Results or pandas.DataFrame
        As for :func:`work_precision_traces`.
    work, precision, color, swap, connect
        As for :func:`work_precision_traces`.
    figure : plotly.graph_objects.Figure or FigureWidget, optional
        A figure to redraw in place (the dashboard's widget); its traces are replaced.

    Returns
    -------
    plotly.graph_objects.Figure
        ``figure`` when given, else a new one. Axes are logarithmic unless a column has
        values that are not positive; hover shows the whole scenario; the legend groups
        each family's curves under its name, and clicking an entry hides that curve.
        Nothing in it needs a widget, so ``fig.to_html()`` works.

    Raises
    ------
    ValueError
        As :func:`work_precision_traces`.
    """
    import plotly.graph_objects as go

    chart = _chart(results, work, precision, color, swap, connect)
    sizes = {t.group: sum(1 for u in chart.traces if u.group == t.group) for t in chart.traces}
    firsts = {t.group: k for k, t in reversed(list(enumerate(chart.traces)))}
    fig = figure if figure is not None else go.Figure()
    with fig.batch_update():  # a FigureWidget then sends one message to the browser, not one per change
        fig.data = ()
        fig.add_traces([_scatter(t, sizes[t.group] > 1 and firsts[t.group] == k) for k, t in enumerate(chart.traces)])
        fig.update_layout(
            title={"text": f"Work–precision: {chart.y.name} against {chart.x.name}"},
            xaxis=axis_layout(chart.x), yaxis=axis_layout(chart.y),
            legend={"title": {"text": color}, "itemclick": "toggle", "groupclick": "toggleitem"},
            hovermode="closest")
    return fig
