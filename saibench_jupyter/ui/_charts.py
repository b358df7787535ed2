"""Work–precision charts: the cost of reaching an error, one curve per family, DNF kept in sight.

Charts are data until the last step: :func:`work_precision_traces` turns results into
renderer-neutral :class:`Trace` objects (medians over repeats, q20–q80 spread, labels,
hover texts), and only :func:`plot_work_precision` imports Plotly to draw them. The
default layout follows the SciML work–precision diagram: precision (the error) on x,
work on y, both logarithmic.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..results._rankings import describe_metrics
from ..runtime._result import COUNTERS

if TYPE_CHECKING:
    import pandas
    import plotly.graph_objects as go

#: What a trace may stand for (``family`` is model × software × hardware on one problem).
COLORS = ("family", "model", "software", "hardware", "problem")
_TIDY = ("identity", "repeat", "status", "stage", "checkpoint", "metric", "value")
_KEYS = ["identity", "stage", "checkpoint"]


@dataclass(frozen=True)
class Trace:
    """One legend entry of a work–precision chart: a family's points, or the scenarios that did not finish.

    ``x``/``y`` are medians over repeats and ``*_low``/``*_high`` their 20 % and 80 %
    quantiles (equal to the median with one repeat). Points are ordered by scenario, then
    stage and checkpoint, so the points of one scenario form its training curve.
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


def _flat_params(params: Any) -> dict[str, Any]:
    """``{"model": {"hiddenSize": 128}}`` or ``{"MLP.hiddenSize": [128]}`` as ``{"model.hiddenSize": 128}``."""
    if isinstance(params, str):
        params = json.loads(params)
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in _flat_params(value).items()})
        else:
            out[str(key)] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return out


_NUMBER = re.compile(r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def _natural(text: str) -> list[Any]:
    """A sort key that puts hiddenSize=32 before 128 and rtol=1e-06 before 0.0001 (numbers compare as numbers)."""
    return [(0, float(part), "") if k % 2 else (1, 0.0, part) for k, part in enumerate(_NUMBER.split(text))]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _param_text(params: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``hiddenSize=128, tolerance=0.001``: short names, unless two keys would read the same."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    return ", ".join(f"{s if short.count(s) == 1 else k}={_fmt(params.get(k))}" for k, s in zip(keys, short))


def _value_text(name: str, median: float, low: float, high: float, unit: str | None) -> str:
    spread = f" (q20–q80 {low:.4g}–{high:.4g})" if low != high else ""
    return f"{name}: {median:.4g}{' ' + unit if unit else ''}{spread}"


def _scenario_lines(info: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    modules = " · ".join(f"{k}: {info[k]}" for k in ("problem", "model", "software", "hardware")
                         if isinstance(info.get(k), str))
    lines = [str(info["label"]), *([modules] if modules else [])]
    if params:
        lines.append("params: " + _param_text(params, list(params)))
    return lines


def _statuses(tidy: pandas.DataFrame) -> dict[str, list[str]]:
    pods = tidy.drop_duplicates(["identity", "repeat"])
    return {str(i): list(g["status"]) for i, g in pods.groupby("identity")}


def _trace(name: str, rows: pandas.DataFrame, scenarios: Mapping[str, Mapping[str, Any]], axes: tuple[Axis, Axis],
           statuses: Mapping[str, list[str]], swap: bool) -> Trace:
    params = {i: _flat_params(scenarios[i]["params"]) for i in rows["identity"].unique()}
    keys = sorted({k for p in params.values() for k in p})
    differing = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True, default=str)
                                         for p in params.values()}) > 1]
    several = bool((rows.groupby("identity").size() > 1).any())
    stages = rows["stage"].nunique() > 1
    labels, hover = [], []
    for r in rows.itertuples():
        where = (f"stage {r.stage}, " if stages else "") + (f"epoch {int(r.epoch)}" if not math.isnan(r.epoch)
                                                            else f"checkpoint {r.checkpoint}")
        labels.append(", ".join(t for t in (_param_text(params[r.identity], differing), where if several else "")
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
                 tuple(labels), tuple(hover), tuple(int(n) for n in rows["n"]), tuple(str(i) for i in rows["identity"]))


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
        hover.append("\n".join([*_scenario_lines(info, _flat_params(info["params"])), "did not finish:",
                                *(f"  {r}" for r in reasons)]))
    empty = (math.nan,) * len(dnf)
    x, y = (tuple(ys), tuple(xs)) if swap else (tuple(xs), tuple(ys))
    labels = tuple(str(scenarios[i]["label"]) for i in dnf)
    return Trace("DNF", x, y, empty, empty, empty, empty, labels, tuple(hover), (0,) * len(dnf), tuple(dnf), True)


def _reasons(results: Any) -> dict[str, list[str]]:
    if results is None:
        return {}
    out: dict[str, list[str]] = {}
    for f in results.failures().itertuples():
        text = f"repeat {f.repeat}: {f.kind}: {f.message}"
        out.setdefault(str(f.identity), []).append(text)
    return out


def _chart(source: Any, work: str | None, precision: str | None, color: str, swap: bool) -> _Chart:
    if color not in COLORS:
        raise ValueError(f"color={color!r}: color the traces by one of {', '.join(COLORS)}")
    tidy, results = _read(source)
    work, precision, info = _axis_names(tidy, results, work, precision)
    points = _points(tidy, precision, work)  # x = precision, y = work until the end
    statuses = _statuses(tidy)
    first = tidy.drop_duplicates("identity").set_index("identity")
    scenarios = {str(i): {**row, "label": row["label"] if isinstance(row["label"], str) else str(i)}
                 for i, row in first.to_dict("index").items()}
    # Did not finish: no repeat ended ok and none is still running (a running scenario plots what it has).
    dnf = sorted((i for i, s in statuses.items() if "ok" not in s and "running" not in s),
                 key=lambda i: _natural(scenarios[i]["label"]))
    shown = points[~points["identity"].isin(dnf)]
    axes = [Axis(name, info[name]["unit"], info[name]["better"],
                 all(v > 0 for v in (*shown[c], *shown[f"{c}_low"]) if math.isfinite(v)))
            for name, c in ((precision, "x"), (work, "y"))]
    traces = []
    groups = {i: str(s.get(color) or "?") for i, s in scenarios.items()}
    order = {i: k for k, i in enumerate(sorted(scenarios, key=lambda i: _natural(scenarios[i]["label"])))}
    shown = shown.assign(_group=shown["identity"].map(groups), _order=shown["identity"].map(order))
    for name, rows in shown.sort_values(["_group", "_order", "stage", "checkpoint"]).groupby("_group", sort=True):
        traces.append(_trace(str(name), rows, scenarios, (axes[0], axes[1]), statuses, swap))
    if dnf:
        traces.append(_dnf_trace(dnf, points, scenarios, _reasons(results), axes[0], axes[1], swap))
    x, y = (axes[1], axes[0]) if swap else (axes[0], axes[1])
    return _Chart(traces, x, y)


def work_precision_traces(results_or_frame: Any, work: str | None = None, precision: str | None = None,
                          color: str = "family", swap: bool = False) -> list[Trace]:
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
        What one trace stands for.
    swap : bool
        Work on x and precision on y (default: precision on x, as SciML's diagrams do).

    Returns
    -------
    list of Trace
        One per group (sorted by name), then a trace named ``DNF`` (``dnf=True``) holding
        the scenarios none of whose repeats finished, when there are any.

    Raises
    ------
    ValueError
        For an axis name that is neither a metric nor a work counter (the message lists
        the choices), or an unknown ``color``.
    """
    return _chart(results_or_frame, work, precision, color, swap).traces


def _hover(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def _gapped(trace: Trace) -> dict[str, list[Any]]:
    """Columns with a gap (None) between scenarios, so a line joins only one scenario's checkpoints."""
    out: dict[str, list[Any]] = {k: [] for k in ("x", "y", "ex", "exm", "ey", "eym", "text", "hover", "id")}
    for k in range(len(trace.x)):
        if k and trace.identities[k] != trace.identities[k - 1]:
            for column in out.values():
                column.append(None)
        out["x"].append(trace.x[k])
        out["y"].append(trace.y[k])
        out["ex"].append(trace.x_high[k] - trace.x[k])
        out["exm"].append(trace.x[k] - trace.x_low[k])
        out["ey"].append(trace.y_high[k] - trace.y[k])
        out["eym"].append(trace.y[k] - trace.y_low[k])
        out["text"].append(trace.labels[k])
        out["hover"].append(_hover(trace.hover[k]))
        out["id"].append(trace.identities[k])
    return out


def _scatter(trace: Trace) -> go.Scatter:
    import plotly.graph_objects as go

    if trace.dnf:
        return go.Scatter(x=list(trace.x), y=list(trace.y), name=f"DNF ({len(trace.x)})", mode="markers",
                          marker={"symbol": "x", "size": 10, "color": "gray"}, text=list(trace.labels),
                          hovertext=[_hover(h) for h in trace.hover], hoverinfo="text",
                          customdata=list(trace.identities))
    cols = _gapped(trace)
    spread = any(v for v in (*cols["ex"], *cols["exm"], *cols["ey"], *cols["eym"]) if v is not None)
    return go.Scatter(
        x=cols["x"], y=cols["y"], name=trace.name, mode="lines+markers", text=cols["text"],
        hovertext=cols["hover"], hoverinfo="text", customdata=cols["id"], connectgaps=False,
        error_x={"type": "data", "symmetric": False, "array": cols["ex"], "arrayminus": cols["exm"],
                 "visible": spread, "thickness": 1},
        error_y={"type": "data", "symmetric": False, "array": cols["ey"], "arrayminus": cols["eym"],
                 "visible": spread, "thickness": 1})


def plot_work_precision(results: Any, work: str | None = None, precision: str | None = None,
                        color: str = "family", swap: bool = False, figure: Any = None) -> Any:
    """A Plotly work–precision chart: medians over repeats with q20–q80 error bars, DNF on the edge.

    Parameters
    ----------
    results : Results or pandas.DataFrame
        As for :func:`work_precision_traces`.
    work, precision, color, swap
        As for :func:`work_precision_traces`.
    figure : plotly.graph_objects.Figure or FigureWidget, optional
        A figure to redraw in place (the dashboard's widget); its traces are replaced.

    Returns
    -------
    plotly.graph_objects.Figure
        ``figure`` when given, else a new one. Axes are logarithmic unless a column has
        values that are not positive; hover shows the whole scenario; clicking a legend
        entry hides its trace. Nothing in it needs a widget, so ``fig.to_html()`` works.

    Raises
    ------
    ValueError
        As :func:`work_precision_traces`.
    """
    import plotly.graph_objects as go

    chart = _chart(results, work, precision, color, swap)
    fig = figure if figure is not None else go.Figure()
    with fig.batch_update():  # a FigureWidget then sends one message to the browser, not one per change
        fig.data = ()
        fig.add_traces([_scatter(t) for t in chart.traces])
        fig.update_layout(
            title={"text": f"Work–precision: {chart.y.name} against {chart.x.name}"},
            xaxis={"type": "log" if chart.x.log else "linear", "title": {"text": chart.x.title}},
            yaxis={"type": "log" if chart.y.log else "linear", "title": {"text": chart.y.title}},
            legend={"title": {"text": color}, "itemclick": "toggle"}, hovermode="closest")
    return fig
