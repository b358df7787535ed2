"""Work–precision charts: the cost of reaching an error, curves per family, DNF kept in sight.

Charts are data until the last step: :func:`work_precision_traces` turns results into
renderer-neutral :class:`ChartTrace` objects (medians over repeats, q20–q80 spread, labels,
hover texts, colours), and only :func:`plot_work_precision` imports Plotly to draw them.
The default layout follows the SciML work–precision diagram: precision (the error) on x,
work on y, both logarithmic.

What a line joins (``connect``): a family whose scenarios give one point each (a solver at
a sweep of tolerances) is one curve through its scenarios, ordered by the swept parameter,
as in a DiffEqDevTools work–precision diagram; a family whose scenarios have several
checkpoints (training epochs) is one curve per scenario, ordered by checkpoint, in shades
of the family's colour and grouped under the family in the legend.

Charts stay fast with many points: a trace holds NumPy arrays (Plotly copies them as they
are and serialises them as typed arrays), its texts are built once per scenario and only
joined per point, and past :data:`WEBGL_POINTS` points a figure draws with WebGL
(``Scattergl``), which the browser renders at a hundred thousand points where SVG stalls.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..results import describe_metrics
from ..sail import COUNTERS
from ._curves import curves, differing_params, flat_params, natural, param_text
from ._palette import shades

if TYPE_CHECKING:
    import numpy
    import pandas

#: What a trace may stand for (``family`` is model × software × hardware on one problem).
COLORS = ("family", "model", "software", "hardware", "problem")
#: What a curve joins: a family's scenarios by their swept parameter, or one scenario's checkpoints.
CONNECT = ("param", "checkpoint")
_TIDY = ("identity", "repeat", "status", "stage", "checkpoint", "metric", "value")
_KEYS = ["identity", "stage", "checkpoint"]
#: Points in a figure past which its traces are WebGL (``Scattergl``): SVG slows down in the thousands.
WEBGL_POINTS = 5000
#: What HTML escapes in a hover text (most hover texts have none, and are only given line breaks).
_SPECIAL = re.compile("[&<>\"']")


@dataclass(frozen=True, eq=False)
class ChartTrace:
    """One curve of a work–precision chart (one legend entry), or the scenarios that did not finish.

    ``x``/``y`` are medians over repeats and ``*_low``/``*_high`` their 20 % and 80 %
    quantiles (equal to the median with one repeat), in the order the line joins them:
    with ``connect == "param"`` one point per scenario (its last checkpoint) ordered by
    the family's swept parameter; with ``connect == "checkpoint"`` one scenario's points
    ordered by stage and checkpoint. ``group`` is the family (the value of the chart's
    ``color`` column) the curve belongs to, the legend group; ``color`` its ``#rrggbb``
    colour, a shade of the family's hue when the family has several curves.

    The per-point fields are read-only NumPy arrays, one element per point: ``float64``
    for the coordinates, ``int64`` for ``n`` (repeats behind the point), ``object`` (str)
    for ``labels``, ``hover`` (lines joined by ``\\n``) and ``identities``.
    """

    name: str
    x: numpy.ndarray
    y: numpy.ndarray
    x_low: numpy.ndarray
    x_high: numpy.ndarray
    y_low: numpy.ndarray
    y_high: numpy.ndarray
    labels: numpy.ndarray
    hover: numpy.ndarray
    n: numpy.ndarray
    identities: numpy.ndarray
    dnf: bool = False
    group: str = ""
    color: str = "#808080"
    connect: str = "param"


def _frozen(values: Any, dtype: Any) -> numpy.ndarray:
    """``values`` as a read-only 1-d array of ``dtype`` (a trace is frozen, its arrays too)."""
    import numpy as np

    out = np.empty(len(values), dtype=dtype)
    out[:] = values  # element by element for object arrays: a list of strs never becomes a 2-d array
    out.flags.writeable = False
    return out


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

    traces: list[ChartTrace]
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
    metrics = sorted(str(m) for m in tidy["metric"].dropna().unique())
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
    # Only the columns used, before any row is selected: the scenario's text columns are not copied around.
    counters = [c for c in COUNTERS if c in tidy.columns and c in (x, y)]
    measured = tidy[[*keys, "epoch", *counters, "metric", "value"]]
    measured = measured[measured["stage"].notna()]
    wide = measured.drop_duplicates(keys)[[*keys, "epoch", *counters]]
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
                   connect: str | None) -> list[ChartTrace]:
    """The curves of one family (legend group), in shades of its hue when there are several."""
    params = {i: flat_params(scenarios[i]["params"]) for i in rows["identity"].unique()}
    differing = differing_params(params)
    several = bool((rows.groupby("identity").size() > 1).any())
    mode = connect or ("checkpoint" if several else "param")
    lines = curves(family, rows, scenarios, params, differing, mode)
    colors = shades(index, len(lines))
    return [_trace(name, curve, family, color, mode, scenarios, params, list(differing), several, axes, statuses, swap)
            for (name, curve), color in zip(lines, colors, strict=True)]


def _finished_line(pods: list[str]) -> str:
    """``\\nk of n repeats finished`` when some repeat of a scenario did not, else nothing."""
    ok = pods.count("ok")
    return f"\n{ok} of {len(pods)} repeats finished" if ok < len(pods) else ""


def _trace(name: str, rows: pandas.DataFrame, group: str, color: str, connect: str,
           scenarios: Mapping[str, Mapping[str, Any]], params: Mapping[str, Mapping[str, Any]],
           differing: list[str], several: bool, axes: tuple[Axis, Axis], statuses: Mapping[str, list[str]],
           swap: bool) -> ChartTrace:
    import numpy as np

    # The texts of a scenario are made once; a point only joins them with its own numbers.
    ids = [str(i) for i in rows["identity"].tolist()]  # tolist: one conversion, not an Arrow lookup per item
    heads = {i: "\n".join(_scenario_lines(scenarios[i], params[i])) for i in set(ids)}
    tails = {i: _finished_line(statuses.get(i, [])) for i in set(ids)}
    texts = {i: param_text(params[i], differing) for i in set(ids)}
    staged = rows["stage"].nunique() > 1
    cols = ["x", "x_low", "x_high", "y", "y_low", "y_high"]
    data = {c: rows[c].to_numpy(dtype=np.float64) for c in cols}
    numbers = [data[c].tolist() for c in cols]
    stages, checkpoints, epochs, ns = (rows[c].tolist() for c in ("stage", "checkpoint", "epoch", "n"))
    labels, hover = [], []
    # Each value as "name: median unit (q20–q80 low–high)", the spread only where there is one.
    (xn, xu), (yn, yu) = ((a.name, f" {a.unit}" if a.unit else "") for a in axes)
    for i, s, c, e, n, x, xl, xh, y, yl, yh in zip(ids, stages, checkpoints, epochs, ns, *numbers, strict=True):
        epoch = "" if e != e else f", epoch {int(e)}"  # e != e: NaN, no epoch recorded
        if several:
            where = (f"stage {s}, " if staged else "") + (f"epoch {int(e)}" if epoch else f"checkpoint {c}")
            labels.append(f"{texts[i]}, {where}" if texts[i] else where)
        else:
            labels.append(texts[i])
        hover.append(f"{heads[i]}\nstage {s}, checkpoint {c}{epoch}\n{xn}: {x:.4g}{xu}"
                     f"{f' (q20–q80 {xl:.4g}–{xh:.4g})' if xl != xh else ''}\n{yn}: {y:.4g}{yu}"
                     f"{f' (q20–q80 {yl:.4g}–{yh:.4g})' if yl != yh else ''}\nn = {n} repeat{'s' * (n != 1)}"
                     f"{tails[i]}")
    if swap:  # the frame's x is precision and y is work; swapping exchanges them
        data = {("y" if c[0] == "x" else "x") + c[1:]: v for c, v in data.items()}
    x, y, x_low, x_high, y_low, y_high = (_frozen(data[c], np.float64)
                                          for c in ("x", "y", "x_low", "x_high", "y_low", "y_high"))
    return ChartTrace(name, x, y, x_low, x_high, y_low, y_high, _frozen(labels, object), _frozen(hover, object),
                 _frozen(ns, np.int64), _frozen(ids, object), group=group, color=color, connect=connect)


def _edge(values: numpy.ndarray, log: bool, high: bool) -> float:
    """A position just past the data on one side of an axis (where DNF markers sit)."""
    import numpy as np

    finite = values[np.isfinite(values)]
    if not len(finite):
        return 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if log:
        return hi * 2.0 if high else lo / 2.0
    pad = (hi - lo) * 0.05 or 1.0
    return hi + pad if high else lo - pad


def _dnf_trace(dnf: list[str], points: pandas.DataFrame, scenarios: Mapping[str, Mapping[str, Any]],
               why: Mapping[str, list[str]], precision: Axis, work: Axis, swap: bool) -> ChartTrace:
    """The scenarios that did not finish, on the worst edge of the precision axis.

    Their work coordinate is their last measured work where they have one (how far they
    got), else the top of the work axis.
    """
    import numpy as np

    spans = points[["x", "x_low", "x_high"]].to_numpy(dtype=np.float64).ravel()
    edge = _edge(spans, precision.log, precision.better != "higher")
    top = _edge(points[["y", "y_high"]].to_numpy(dtype=np.float64).ravel(), work.log, True)
    last = points.groupby("identity", sort=False)["y"].last()  # points are in checkpoint order
    xs = [edge] * len(dnf)
    ys = [float(last[i]) if i in last.index else top for i in dnf]
    hover = []
    for identity in dnf:
        info = scenarios[identity]
        reasons = why.get(identity) or ["no repeat finished"]
        hover.append("\n".join([*_scenario_lines(info, flat_params(info["params"])), "did not finish:",
                                *(f"  {r}" for r in reasons)]))
    empty = _frozen([np.nan] * len(dnf), np.float64)
    x, y = (ys, xs) if swap else (xs, ys)
    labels = [str(scenarios[i]["label"]) for i in dnf]
    return ChartTrace("DNF", _frozen(x, np.float64), _frozen(y, np.float64), empty, empty, empty, empty,
                 _frozen(labels, object), _frozen(hover, object), _frozen([0] * len(dnf), np.int64),
                 _frozen(dnf, object), True, group="DNF")


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
    import numpy as np

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
    spans = {c: shown[[c, f"{c}_low"]].to_numpy(dtype=np.float64) for c in ("x", "y")}
    # A log axis when every finite value is positive.
    axes = [Axis(name, info[name]["unit"], info[name]["better"],
                 bool((spans[c][np.isfinite(spans[c])] > 0).all())) for name, c in ((precision, "x"), (work, "y"))]
    traces: list[ChartTrace] = []
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
                          color: str = "family", swap: bool = False, connect: str | None = None) -> list[ChartTrace]:
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
    list of ChartTrace
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


def _html(texts: numpy.ndarray) -> numpy.ndarray:
    """Hover texts as Plotly shows them: HTML-escaped, lines joined by ``<br>``."""
    if _SPECIAL.search("".join(texts)):  # one scan of the trace's texts: most have nothing to escape
        return _frozen([html.escape(t).replace("\n", "<br>") for t in texts], object)
    return _frozen([t.replace("\n", "<br>") for t in texts], object)


def _scatter(trace: ChartTrace, titled: bool, webgl: bool) -> dict[str, Any]:
    """One trace as a Plotly scatter's properties (``titled``: it opens a legend group of several curves).

    Arrays, which Plotly copies whole (a list it checks item by item), in a dict, which
    ``add_traces`` builds into a trace once; ``webgl``: a ``Scattergl``.
    """
    import numpy as np

    kind = "scattergl" if webgl else "scatter"
    if trace.dnf:
        return {"type": kind, "x": trace.x, "y": trace.y, "name": f"DNF ({len(trace.x)})", "mode": "markers",
                "marker": {"symbol": "x", "size": 10, "color": "gray"}, "text": trace.labels,
                "hovertext": _html(trace.hover), "hoverinfo": "text", "customdata": trace.identities,
                "legendgroup": "DNF"}
    bars = {"ex": trace.x_high - trace.x, "exm": trace.x - trace.x_low, "ey": trace.y_high - trace.y,
            "eym": trace.y - trace.y_low}
    spread = any(bool(np.any(column != 0)) for column in bars.values())  # NaN counts, as a spread not known
    return {
        "type": kind, "x": trace.x, "y": trace.y, "name": trace.name, "mode": "lines+markers", "text": trace.labels,
        "hovertext": _html(trace.hover), "hoverinfo": "text", "customdata": trace.identities,
        "line": {"color": trace.color}, "marker": {"color": trace.color}, "legendgroup": trace.group,
        "legendgrouptitle": {"text": trace.group if titled else ""},
        "error_x": {"type": "data", "symmetric": False, "array": bars["ex"], "arrayminus": bars["exm"],
                    "visible": spread, "thickness": 1},
        "error_y": {"type": "data", "symmetric": False, "array": bars["ey"], "arrayminus": bars["eym"],
                    "visible": spread, "thickness": 1}}


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
        Its traces are ``Scatter``, or ``Scattergl`` (WebGL) when the chart has more than
        :data:`WEBGL_POINTS` points. Nothing in it needs a widget, so ``fig.to_html()`` works.

    Raises
    ------
    ValueError
        As :func:`work_precision_traces`.
    """
    import plotly.graph_objects as go

    chart = _chart(results, work, precision, color, swap, connect)
    sizes = Counter(t.group for t in chart.traces)
    firsts = {t.group: k for k, t in reversed(list(enumerate(chart.traces)))}
    webgl = sum(len(t.x) for t in chart.traces) > WEBGL_POINTS
    fig = figure if figure is not None else go.Figure()
    with fig.batch_update():  # a FigureWidget then sends one message to the browser, not one per change
        fig.data = ()
        fig.add_traces([_scatter(t, sizes[t.group] > 1 and firsts[t.group] == k, webgl)
                        for k, t in enumerate(chart.traces)])
        fig.update_layout(
            title={"text": f"Work–precision: {chart.y.name} against {chart.x.name}"},
            xaxis=axis_layout(chart.x), yaxis=axis_layout(chart.y),
            legend={"title": {"text": color}, "itemclick": "toggle", "groupclick": "toggleitem"},
            hovermode="closest")
    return fig
