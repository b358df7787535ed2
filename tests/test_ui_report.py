"""Reports without a kernel: charts as placeholders for one copy of plotly.js, widgets as their snapshots."""

from __future__ import annotations

import json

import nbformat
import plotly.graph_objects as go

from saibench_jupyter.ui._report import _with_plotly, static_notebook
from saibench_jupyter.ui._static import PLACEHOLDER, figure_html

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY = "application/vnd.plotly.v1+json"


def executed() -> nbformat.NotebookNode:
    """A notebook as Papermill leaves it: a Plotly chart, two widgets (one with a snapshot), their state."""
    figure = json.loads(go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout={"title": {"text": "a </script> b"}})
                        .to_json())
    view = {"model_id": "ab12", "version_major": 2, "version_minor": 0}
    outputs = [
        nbformat.v4.new_output("display_data", {PLOTLY: figure}),
        nbformat.v4.new_output("execute_result", {WIDGET_VIEW: view, "text/plain": "Dashboard(children=...)",
                                                  "text/html": "<p>the dashboard, as it was</p>"}, execution_count=2),
        nbformat.v4.new_output("execute_result", {WIDGET_VIEW: view, "text/plain": "IntSlider(value=3)"},
                               execution_count=3),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=outputs)])
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {"ab12": {"model_name": "AnyModel", "state": {"_esm": "x" * 100}}},
                                             "version_major": 2, "version_minor": 0}}
    return nb


def test_charts_become_placeholders_and_widgets_their_snapshot_or_a_note() -> None:
    nb = static_notebook(executed())
    chart, dashboard, slider = nb.cells[0].outputs
    assert "widgets" not in nb.metadata  # the saved state (megabytes of widget code) is gone
    assert chart.data[PLOTLY] and f'class="{PLACEHOLDER}"' in chart.data["text/html"]  # JupyterLab keeps its chart
    assert WIDGET_VIEW not in dashboard.data and dashboard.data["text/html"] == "<p>the dashboard, as it was</p>"
    assert WIDGET_VIEW not in slider.data
    assert "IntSlider: an interactive widget, live only in a running notebook" in slider.data["text/html"]
    nbformat.validate(nb)


def test_a_placeholder_holds_the_figure_safely_and_the_page_gets_plotly_once() -> None:
    html = figure_html(go.Figure(layout={"title": {"text": "a </script> b"}, "height": 300}))
    assert "</script> b" not in html and "<\\/script> b" in html  # the JSON cannot end its <script> early
    assert "height: 300px" in html and "a Plotly chart: a &lt;/script&gt; b" in html
    spec = json.loads(html.split('<script type="application/json">')[1].split("</script>")[0].replace("<\\/", "</"))
    assert spec["layout"]["title"]["text"] == "a </script> b"
    page = _with_plotly(f"<html><body>{html}{html}</body></html>")
    assert page.count(f'id="{PLACEHOLDER}-js"') == 1 and page.endswith("</script>\n</body></html>")
    assert 1_000_000 < len(page) < 2_500_000  # plotly.js (4.8 MB) packed once
    assert _with_plotly("<html><body><p>no chart</p></body></html>") == "<html><body><p>no chart</p></body></html>"
