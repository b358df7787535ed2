"""Work–precision charts from a real results store: traces as data, then the Plotly figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import plotly.graph_objects as go
import pytest
from test_results_rankings import CNN, DNF, JAX, SCENARIOS, TORCH, build_store, elapsed, error, label

from saibench_jupyter.results import Results
from saibench_jupyter.ui._charts import ChartTrace, axes_available, plot_work_precision, work_precision_traces
from saibench_jupyter.ui._palette import HUES, hue_of

A1, A2, A3, B1 = SCENARIOS
#: The PyTorch family's curves, one per scenario (each has three checkpoints), named after what differs.
H32, H64, H128 = "hiddenSize=32", "hiddenSize=64", "hiddenSize=128"


@pytest.fixture
def results(tmp_path: Path):
    store = build_store(tmp_path / "saibench.db")
    yield Results(store)
    store.close()


def medians(identity: str) -> tuple[list[float], list[float]]:
    """(CriticalLoss, ElapsedMilliseconds) medians over the three repeats, per checkpoint."""
    return ([error(identity, c, 2) for c in (1, 2, 3)],  # repeat 2 holds the median of both
            [elapsed(identity, c, 2) for c in (1, 2, 3)])


def by_name(traces: list[ChartTrace]) -> dict[str, ChartTrace]:
    return {t.name: t for t in traces}


def one_point_each(frame):
    """The tidy frame with only the last checkpoint of each scenario: one (work, precision) point per scenario."""
    return frame[(frame["checkpoint"] == 3) | frame["checkpoint"].isna()]


def with_params(frame, params: dict[str, dict]):
    """The tidy frame with these model parameters for some scenarios (a tolerance sweep, say)."""
    frame = frame.copy()
    for identity, values in params.items():
        frame.loc[frame["identity"] == identity, "params"] = json.dumps({"model": values})
    return frame


def test_scenarios_with_checkpoints_are_one_curve_each_in_shades_of_their_family(results: Results) -> None:
    traces = work_precision_traces(results)
    assert [t.name for t in traces] == [JAX, H32, H64, H128, "DNF"]
    assert [t.group for t in traces] == [JAX, TORCH, TORCH, TORCH, "DNF"]
    assert [t.dnf for t in traces] == [False] * 4 + [True]
    assert {t.connect for t in traces[:4]} == {"checkpoint"}
    curves = by_name(traces)
    for name, identity in ((H32, A1), (H64, A2), (H128, A3)):  # by hiddenSize, each ordered by checkpoint
        assert tuple(curves[name].identities) == (identity,) * 3 and tuple(curves[name].n) == (3,) * 3
        assert curves[name].x == pytest.approx([error(identity, c, 2) for c in (1, 2, 3)])
    torch = [curves[n].color for n in (H32, H64, H128)]
    assert len(set(torch)) == 3  # told apart ...
    assert all(hue_of(c) == pytest.approx(hue_of(HUES[1]), abs=0.01) for c in torch)  # ... in one hue
    assert curves[JAX].color == HUES[0] and hue_of(HUES[0]) != pytest.approx(hue_of(HUES[1]), abs=0.05)


def test_scenarios_of_one_point_each_make_one_curve_per_family_ordered_by_the_parameter(results: Results) -> None:
    traces = work_precision_traces(one_point_each(results.to_dataframe()))
    assert [t.name for t in traces] == [JAX, TORCH, "DNF"]
    torch = by_name(traces)[TORCH]
    assert torch.connect == "param" and torch.group == TORCH and torch.color == HUES[1]
    assert tuple(torch.identities) == (A1, A2, A3)  # hiddenSize 32 < 64 < 128
    assert torch.x == pytest.approx([error(i, 3, 2) for i in (A1, A2, A3)])
    assert tuple(torch.labels) == (H32, H64, H128)


def test_connect_param_joins_each_scenarios_last_checkpoint_along_the_swept_parameter(results: Results) -> None:
    tolerances = with_params(results.to_dataframe(), {A1: {"rtol": 0.001}, A2: {"rtol": 1e-4}, A3: {"rtol": 1e-6}})
    traces = work_precision_traces(tolerances, connect="param")
    assert [t.name for t in traces] == [JAX, TORCH, "DNF"]
    torch = by_name(traces)[TORCH]
    assert tuple(torch.identities) == (A3, A2, A1)  # 1e-06 < 0.0001 < 0.001, as numbers
    assert torch.x == pytest.approx([error(i, 3, 2) for i in (A3, A2, A1)])  # the final checkpoint of each
    assert tuple(torch.labels) == ("rtol=1e-06, epoch 3", "rtol=0.0001, epoch 3", "rtol=0.001, epoch 3")
    forced = by_name(work_precision_traces(one_point_each(results.to_dataframe()), connect="checkpoint"))
    assert [tuple(forced[n].identities) for n in (H32, H64, H128)] == [(A1,), (A2,), (A3,)]


def test_a_second_differing_parameter_splits_the_family_into_curves_along_the_swept_one(results: Results) -> None:
    frame = with_params(one_point_each(results.to_dataframe()), {A1: {"hiddenSize": 32, "rtol": 1e-3},
                                                                 A2: {"hiddenSize": 32, "rtol": 1e-4},
                                                                 A3: {"hiddenSize": 64, "rtol": 1e-3}})
    curves = by_name(work_precision_traces(frame))
    assert tuple(curves["hiddenSize=32"].identities) == (A2, A1)
    assert tuple(curves["hiddenSize=64"].identities) == (A3,)
    assert curves["hiddenSize=32"].group == curves["hiddenSize=64"].group == TORCH


def test_grouped_by_model_the_curves_say_their_software(results: Results) -> None:
    traces = work_precision_traces(results, color="model")
    assert [t.name for t in traces] == ["JAX, hiddenSize=32", "PyTorch, hiddenSize=32", "PyTorch, hiddenSize=64",
                                        "PyTorch, hiddenSize=128", "DNF"]
    joined = work_precision_traces(one_point_each(results.to_dataframe()), color="model")
    assert [(t.name, tuple(t.identities)) for t in joined[:2]] == [("JAX", (B1,)), ("PyTorch", (A1, A2, A3))]


def test_markers_are_medians_with_q20_q80_error_bars(results: Results) -> None:
    jax = by_name(work_precision_traces(results, work="ElapsedMilliseconds"))[JAX]
    errors, work = medians(B1)
    # Precision on x, work on y (SciML's convention).
    assert jax.x == pytest.approx(errors) and jax.y == pytest.approx(work)
    assert jax.x_low == pytest.approx([0.94 * e for e in errors])
    assert jax.x_high == pytest.approx([1.12 * e for e in errors])
    assert jax.y_low == pytest.approx([3.0 * (100 * c + 4) for c in (1, 2, 3)])
    assert jax.y_high == pytest.approx([3.0 * (100 * c + 16) for c in (1, 2, 3)])


def test_default_work_is_the_work_metric_and_swap_puts_it_on_x(results: Results) -> None:
    default = by_name(work_precision_traces(results))[JAX]
    assert default.y == pytest.approx([w / 1000 for w in medians(B1)[1]])  # WallTime: the work-axis metric
    swapped = by_name(work_precision_traces(results, swap=True))[JAX]
    assert list(swapped.x) == list(default.y) and list(swapped.y) == list(default.x)
    assert list(swapped.x_low) == list(default.y_low) and list(swapped.y_high) == list(default.x_high)


def test_marker_labels_say_the_differing_parameter_and_the_epoch(results: Results) -> None:
    traces = by_name(work_precision_traces(results))
    assert tuple(traces[H32].labels) == ("hiddenSize=32, epoch 1", "hiddenSize=32, epoch 2", "hiddenSize=32, epoch 3")
    assert tuple(traces[JAX].labels) == ("epoch 1", "epoch 2", "epoch 3")  # nothing differs within that family


def test_tolerances_sort_as_numbers_in_the_legend(results: Results) -> None:
    # 0.0001 and 0.001 split into the same integer pieces, and 1e-06 holds none at its front.
    tols = {A1: "0.001", A2: "0.0001", A3: "1e-06"}
    frame = results.to_dataframe()
    frame["label"] = frame["identity"].map(lambda i: f"Heat × RK45(rtol={tols[i]}) × PyTorch × CPU" if i in tols
                                           else None).fillna(frame["label"])
    torch = [t for t in work_precision_traces(frame) if t.group == TORCH]
    assert [t.identities[0] for t in torch] == [A3, A2, A1]


def test_hover_shows_the_whole_scenario_and_the_repeats(results: Results) -> None:
    hover = by_name(work_precision_traces(results))[JAX].hover[2]
    lines = hover.split("\n")
    assert lines[0] == label(B1)
    assert lines[1] == "problem: Heat · model: MLP · software: JAX · hardware: CPU"
    assert "params: hiddenSize=32" in lines
    assert f"CriticalLoss: {error(B1, 3, 2):.4g} (q20–q80 {0.94 * error(B1, 3, 2):.4g}–{1.12 * error(B1, 3, 2):.4g})" \
        in lines
    assert "WallTime: 0.93 s (q20–q80 0.912–0.948)" in lines
    assert lines[-1] == "n = 3 repeats"


def test_scenarios_that_did_not_finish_are_a_dnf_trace_on_the_edge(results: Results) -> None:
    traces = work_precision_traces(results)
    dnf = traces[-1]
    worst = max(x for t in traces[:-1] for x in t.x_high)
    top = max(y for t in traces[:-1] for y in t.y_high)
    assert tuple(dnf.identities) == (DNF,) and tuple(dnf.labels) == (label(DNF),)
    assert tuple(dnf.x) == (2 * worst,) and tuple(dnf.y) == (2 * top,)  # log axes: one factor of 2 past the data
    assert "did not finish:" in dnf.hover[0] and "repeat 0: memory: MemoryError: out of memory" in dnf.hover[0]
    assert "repeat 1: memory" in dnf.hover[0]


def test_color_by_software_and_bad_names_say_the_choices(results: Results) -> None:
    assert [t.group for t in work_precision_traces(results, color="software")] == ["JAX"] + ["PyTorch"] * 3 + ["DNF"]
    with pytest.raises(ValueError, match="color='colour': color the traces by one of family, model, software"):
        work_precision_traces(results, color="colour")
    with pytest.raises(ValueError, match=r"connect='epochs': join a family's scenarios along their swept parameter "
                       r"\(param\) or each scenario's checkpoints \(checkpoint\)"):
        work_precision_traces(results, connect="epochs")
    with pytest.raises(ValueError, match=r"work='Wall' is neither a metric nor a work counter of these results "
                       r"\(work: WallTime, ElapsedMilliseconds, TrainingMilliseconds, SamplesSeen; "
                       r"precision: CriticalLoss\); pass one of them"):
        work_precision_traces(results, work="Wall")
    with pytest.raises(ValueError, match="precision='Accuracy' is neither a metric nor a work counter"):
        work_precision_traces(results, precision="Accuracy")


def test_axes_available_for_the_dropdowns(results: Results) -> None:
    assert axes_available(results) == (("WallTime", "ElapsedMilliseconds", "TrainingMilliseconds", "SamplesSeen"),
                                       ("CriticalLoss",))


def test_a_frame_without_metric_info_uses_the_defaults(results: Results) -> None:
    traces = by_name(work_precision_traces(results.to_dataframe()))  # a frame: no metric_info
    # Both metrics count as precision now: CriticalLoss comes first, work falls back to ElapsedMilliseconds.
    assert traces[JAX].x == pytest.approx(medians(B1)[0]) and traces[JAX].y == pytest.approx(medians(B1)[1])
    assert "did not finish:" in traces["DNF"].hover[0] and "no repeat finished" in traces["DNF"].hover[0]


def test_the_figure_has_log_axes_titles_error_bars_and_renders_as_html(results: Results) -> None:
    fig = plot_work_precision(results)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == [JAX, H32, H64, H128, "DNF (1)"]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.title.text == "CriticalLoss" and fig.layout.yaxis.title.text == "WallTime (s)"
    jax = fig.data[0]
    assert list(jax.x) == pytest.approx(medians(B1)[0])
    assert list(jax.error_x.array) == pytest.approx([0.12 * e for e in medians(B1)[0]])
    assert list(jax.error_x.arrayminus) == pytest.approx([0.06 * e for e in medians(B1)[0]])
    assert jax.error_y.visible and list(jax.customdata) == [B1] * 3
    assert jax.hovertext[0].startswith("Heat × MLP(hiddenSize=32) × JAX × CPU<br>problem: Heat")
    assert fig.data[-1].marker.symbol == "x"
    page = fig.to_html(include_plotlyjs=False, full_html=False)
    assert "DNF (1)" in page and "CriticalLoss" in page


def test_the_legend_groups_each_familys_curves_under_its_name_in_their_colours(results: Results) -> None:
    traces = work_precision_traces(results)
    fig = plot_work_precision(results)
    assert [t.legendgroup for t in fig.data] == [JAX, TORCH, TORCH, TORCH, "DNF"]
    # The group's title once, above its first curve; a family of one curve is its own entry.
    assert [t.legendgrouptitle.text for t in fig.data[:4]] == ["", TORCH, "", ""]
    assert [t.line.color for t in fig.data[:4]] == [t.color for t in traces[:4]]
    assert [t.marker.color for t in fig.data[:4]] == [t.color for t in traces[:4]]
    assert [list(t.customdata) for t in fig.data[1:4]] == [[A1] * 3, [A2] * 3, [A3] * 3]  # no gaps, no zigzag
    assert fig.layout.legend.groupclick == "toggleitem"  # one curve can be hidden, not only its family
    joined = plot_work_precision(results, connect="param")
    assert [t.name for t in joined.data] == [JAX, TORCH, "DNF (1)"] and list(joined.data[1].customdata) == [A1, A2, A3]


def test_log_axes_label_minor_ticks_with_whole_values(results: Results) -> None:
    fig = plot_work_precision(results)
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        # A bare "2" or "5" after "100" would read as 2 and 5: Plotly writes 200 and 500, and 2e-6 not 2µ.
        assert axis.type == "log" and axis.minorloglabels == "complete" and axis.exponentformat == "e"
    frame = results.to_dataframe()
    frame.loc[frame["metric"] == "CriticalLoss", "value"] -= 0.1  # a linear axis keeps Plotly's usual labels
    assert plot_work_precision(frame, figure=fig).layout.xaxis.exponentformat == "B"


def test_swap_and_linear_axes_for_values_that_are_not_positive(results: Results) -> None:
    frame = results.to_dataframe()
    frame.loc[frame["metric"] == "CriticalLoss", "value"] -= 0.1  # some errors become negative
    fig = plot_work_precision(frame, swap=True)
    assert fig.layout.xaxis.title.text == "ElapsedMilliseconds (ms)" and fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.title.text == "CriticalLoss" and fig.layout.yaxis.type == "linear"
    dnf = fig.data[-1]
    lowest = min(y for t in fig.data[:-1] for y in t.y if y is not None)
    assert dnf.y[0] > max(y for t in fig.data[:-1] for y in t.y if y is not None) > lowest  # worst edge, above


def test_figure_is_updated_in_place(results: Results) -> None:
    fig = go.Figure(go.Scatter(x=[1], y=[1], name="old"))
    out = plot_work_precision(results, color="model", figure=fig)
    assert out is fig
    assert [t.legendgroup for t in fig.data] == ["MLP"] * 4 + ["DNF"]
    assert fig.layout.legend.title.text == "model"
    again = plot_work_precision(results, work="SamplesSeen", figure=fig)
    assert again is fig and [t.name for t in fig.data] == [JAX, H32, H64, H128, "DNF (1)"]
    assert fig.layout.yaxis.title.text == "SamplesSeen (samples)"


def test_a_family_name_is_its_trace_even_without_a_dnf(tmp_path: Path) -> None:
    with build_store(tmp_path / "s.db") as store:
        view = Results(store, identities=[A1, B1])
        traces = work_precision_traces(view)
    assert [t.group for t in traces] == [JAX, TORCH] and not any(t.dnf for t in traces)
    assert CNN not in {t.name for t in traces}
    assert all(math.isfinite(v) for t in traces for v in (*t.x, *t.y))


def test_a_figure_widget_is_redrawn_in_place(results: Results) -> None:
    try:
        widget = go.FigureWidget()
    except ImportError:  # plotly's FigureWidget needs anywidget, which a headless install may lack
        pytest.skip("go.FigureWidget needs anywidget")
    assert plot_work_precision(results, figure=widget) is widget
    assert [t.name for t in widget.data] == [JAX, H32, H64, H128, "DNF (1)"]
    plot_work_precision(results, swap=True, figure=widget)
    assert widget.layout.xaxis.title.text == "WallTime (s)" and len(widget.data) == 5


def long_curves(frame, checkpoints: int):
    """The tidy frame of two scenarios with ``checkpoints`` checkpoints each (one repeat): a long training curve."""
    import numpy as np

    template = frame[(frame["identity"].isin([A1, B1])) & (frame["repeat"] == 0) & (frame["checkpoint"] == 1)]
    out = template.loc[np.tile(template.index, checkpoints)].reset_index(drop=True)  # the template, once per checkpoint
    c = np.repeat(np.arange(1, checkpoints + 1), len(template))
    out["checkpoint"] = out["epoch"] = c
    out["value"] = out["value"] * (1.0 + 1.0 / c)
    return out.astype({"checkpoint": "Int64", "epoch": "Int64"})


def test_traces_hold_numpy_arrays_and_many_points_draw_with_webgl(results: Results) -> None:
    import json

    import numpy as np

    from saibench_jupyter.ui._charts import WEBGL_POINTS

    small, large = results.to_dataframe(), long_curves(results.to_dataframe(), WEBGL_POINTS // 2 + 1)
    for trace in work_precision_traces(large) + work_precision_traces(small):
        for field, dtype in (("x", np.float64), ("y", np.float64), ("x_low", np.float64), ("x_high", np.float64),
                             ("y_low", np.float64), ("y_high", np.float64), ("n", np.int64), ("labels", object),
                             ("hover", object), ("identities", object)):
            values = getattr(trace, field)
            # One array per field, not a Python sequence of per-point values; frozen like the trace.
            assert isinstance(values, np.ndarray) and values.dtype == dtype and values.shape == (len(trace.x),)
            assert not values.flags.writeable
    assert {t.type for t in plot_work_precision(small).data} == {"scatter"}  # a few points: SVG
    fig = plot_work_precision(large)
    assert sum(len(t.x) for t in fig.data) > WEBGL_POINTS and {t.type for t in fig.data} == {"scattergl"}
    curve = fig.data[0]
    assert [type(v) for v in (curve.x, curve.y, curve.error_x.array, curve.hovertext, curve.customdata)] == \
        [np.ndarray] * 5
    sent = json.loads(fig.to_json())["data"][0]  # numbers reach the browser as typed arrays, not JSON lists
    assert set(sent["x"]) == set(sent["error_y"]["array"]) == {"dtype", "bdata"}
    assert sent["hovertext"][0].startswith(f"{label(B1)}<br>problem: Heat")  # JAX sorts first
