"""Work–precision charts from a real results store: traces as data, then the Plotly figure."""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
import pytest
from test_results_rankings import CNN, DNF, JAX, SCENARIOS, TORCH, build_store, elapsed, error, label

from saibench_jupyter.results import Results
from saibench_jupyter.ui._charts import Trace, axes_available, plot_work_precision, work_precision_traces

A1, A2, A3, B1 = SCENARIOS


@pytest.fixture
def results(tmp_path: Path):
    store = build_store(tmp_path / "saibench.db")
    yield Results(store)
    store.close()


def medians(identity: str) -> tuple[list[float], list[float]]:
    """(CriticalLoss, ElapsedMilliseconds) medians over the three repeats, per checkpoint."""
    return ([error(identity, c, 2) for c in (1, 2, 3)],  # repeat 2 holds the median of both
            [elapsed(identity, c, 2) for c in (1, 2, 3)])


def by_name(traces: list[Trace]) -> dict[str, Trace]:
    return {t.name: t for t in traces}


def test_one_trace_per_family_then_dnf(results: Results) -> None:
    traces = work_precision_traces(results)
    assert [t.name for t in traces] == [JAX, TORCH, "DNF"]
    assert [t.dnf for t in traces] == [False, False, True]
    torch = by_name(traces)[TORCH]
    assert torch.identities == (A1,) * 3 + (A2,) * 3 + (A3,) * 3  # by label (32 < 64 < 128), then checkpoint
    assert torch.n == (3,) * 9


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
    assert swapped.x == default.y and swapped.y == default.x
    assert swapped.x_low == default.y_low and swapped.y_high == default.x_high


def test_marker_labels_say_the_differing_parameter_and_the_epoch(results: Results) -> None:
    traces = by_name(work_precision_traces(results))
    assert traces[TORCH].labels[:4] == ("hiddenSize=32, epoch 1", "hiddenSize=32, epoch 2", "hiddenSize=32, epoch 3",
                                        "hiddenSize=64, epoch 1")
    assert traces[JAX].labels == ("epoch 1", "epoch 2", "epoch 3")  # nothing differs within that family


def test_tolerances_sort_as_numbers_along_a_curve(results: Results) -> None:
    # 0.0001 and 0.001 split into the same integer pieces, and 1e-06 holds none at its front.
    tols = {A1: "0.001", A2: "0.0001", A3: "1e-06"}
    frame = results.to_dataframe()
    frame["label"] = frame["identity"].map(lambda i: f"Heat × RK45(rtol={tols[i]}) × PyTorch × CPU" if i in tols
                                           else None).fillna(frame["label"])
    torch = by_name(work_precision_traces(frame))[TORCH]
    assert torch.identities[::3] == (A3, A2, A1)


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
    assert dnf.identities == (DNF,) and dnf.labels == (label(DNF),)
    assert dnf.x == (2 * worst,) and dnf.y == (2 * top,)  # log axes: one factor of 2 past the data
    assert "did not finish:" in dnf.hover[0] and "repeat 0: memory: MemoryError: out of memory" in dnf.hover[0]
    assert "repeat 1: memory" in dnf.hover[0]


def test_color_by_software_and_bad_names_say_the_choices(results: Results) -> None:
    assert [t.name for t in work_precision_traces(results, color="software")] == ["JAX", "PyTorch", "DNF"]
    with pytest.raises(ValueError, match="color='colour': color the traces by one of family, model, software"):
        work_precision_traces(results, color="colour")
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
    assert [t.name for t in fig.data] == [JAX, TORCH, "DNF (1)"]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.title.text == "CriticalLoss" and fig.layout.yaxis.title.text == "WallTime (s)"
    jax = fig.data[0]
    assert list(jax.x) == pytest.approx(medians(B1)[0])
    assert list(jax.error_x.array) == pytest.approx([0.12 * e for e in medians(B1)[0]])
    assert list(jax.error_x.arrayminus) == pytest.approx([0.06 * e for e in medians(B1)[0]])
    assert jax.error_y.visible and list(jax.customdata) == [B1] * 3
    assert jax.hovertext[0].startswith("Heat × MLP(hiddenSize=32) × JAX × CPU<br>problem: Heat")
    torch = fig.data[1]
    assert [x is None for x in torch.x] == [False] * 3 + [True] + [False] * 3 + [True] + [False] * 3  # one line each
    assert fig.data[2].marker.symbol == "x"
    page = fig.to_html(include_plotlyjs=False, full_html=False)
    assert "DNF (1)" in page and "CriticalLoss" in page


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
    assert [t.name for t in fig.data] == ["MLP", "DNF (1)"]
    assert fig.layout.legend.title.text == "model"
    again = plot_work_precision(results, work="SamplesSeen", figure=fig)
    assert again is fig and [t.name for t in fig.data] == [JAX, TORCH, "DNF (1)"]
    assert fig.layout.yaxis.title.text == "SamplesSeen (samples)"


def test_a_family_name_is_its_trace_even_without_a_dnf(tmp_path: Path) -> None:
    with build_store(tmp_path / "s.db") as store:
        view = Results(store, identities=[A1, B1])
        traces = work_precision_traces(view)
    assert [t.name for t in traces] == [JAX, TORCH] and not any(t.dnf for t in traces)
    assert CNN not in {t.name for t in traces}
    assert all(math.isfinite(v) for t in traces for v in (*t.x, *t.y))


def test_a_figure_widget_is_redrawn_in_place(results: Results) -> None:
    try:
        widget = go.FigureWidget()
    except ImportError:  # plotly's FigureWidget needs anywidget, which a headless install may lack
        pytest.skip("go.FigureWidget needs anywidget")
    assert plot_work_precision(results, figure=widget) is widget
    assert [t.name for t in widget.data] == [JAX, TORCH, "DNF (1)"]
    plot_work_precision(results, swap=True, figure=widget)
    assert widget.layout.xaxis.title.text == "WallTime (s)" and len(widget.data) == 3
