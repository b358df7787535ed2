"""The dashboard's state through the real objects (no browser): lattice, selection, runs, results, live refresh."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest
from IPython.core.interactiveshell import InteractiveShell
from pods_helpers import write_data
from test_ui_magics import doubling
from test_ui_session import MODEL, PROBLEM, REST, SUPPORT

from saibench_jupyter.ui._dashboard import Dashboard
from saibench_jupyter.ui._lattice_view import (
    REJECTED_COLOR,
    converter_figure,
    converter_figure_data,
    lattice_figure,
    lattice_figure_data,
)
from saibench_jupyter.ui._magics import load_ipython_extension, unload_ipython_extension
from saibench_jupyter.ui._notebook import Notebook

PICKY = textwrap.dedent('''
    @ModelDefinition
    def Picky(task, inputType, outputType):
        """A model that declines every task.

        It shows how a rejected model looks.
        """
        Fail("classifies only")
        return Solver(lambda x: x)
''')
MODEL_CELL = "aaaaaaaa-0000-4000-8000-000000000000"


@pytest.fixture
def nb(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    nb = Notebook(user_ns={})
    nb.register("sail", SUPPORT)
    nb.register("problem", PROBLEM)
    nb.register("model", MODEL.format(modes="'a', 'b'"), cell=MODEL_CELL)
    nb.register("model", PICKY)
    for kind, text in REST.items():
        nb.register(kind, text)
    return nb


@pytest.fixture
def dash(nb):
    board = Dashboard(nb, executor="inline", jobs=1)
    yield board
    board.close()


def by_label(board: Dashboard, label: str) -> dict:
    return next(n for n in board.lattice_nodes if n["label"].lstrip("✗ ") == label)


# -- the lattice as data --------------------------------------------------------------------------------
def test_lattice_data_has_accepted_and_rejected_nodes_with_reasons_and_the_scenarios_under_each(nb):
    lattice = nb.lattice()
    data = lattice_figure_data(lattice)
    n = len(data["ids"])
    assert all(len(column) == n for column in data.values())
    assert data["parents"][0] == "" and set(data["parents"][1:]) <= set(data["ids"])
    assert sorted(data["scenarios"][0]) == sorted(s.id for s in lattice.scenarios)  # the root holds all
    picky = data["labels"].index("✗ Picky")
    assert not data["accepted"][picky] and data["reasons"][picky] == "classifies only"
    assert data["colors"][picky] == REJECTED_COLOR and "classifies only" in data["hover"][picky]
    assert data["scenarios"][picky] == []
    leaves = [i for i, label in enumerate(data["labels"]) if label.startswith("Doubler(")]
    assert len(leaves) == 2 and all(len(data["scenarios"][i]) == 1 for i in leaves)
    assert {data["colors"][i] for i in leaves} != {REJECTED_COLOR}

    fig = lattice_figure(lattice)
    assert fig.data[0].type == "sunburst" and list(fig.data[0].ids) == data["ids"]
    assert list(fig.data[0].marker.colors) == data["colors"]


def test_converter_graph_highlights_the_chains_of_the_chosen_scenario(nb):
    step = SimpleNamespace(source="Atom", target="Tensor(16)", inner=())
    chain = SimpleNamespace(steps=(step,))
    scenario = SimpleNamespace(converters=(chain,))
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_edge("'Atom'", "'Tensor(16)'", converter="AtomEmbedding")
    graph.add_edge("'Tensor(16)'", "Scalar", converter="Squeeze")
    lattice = SimpleNamespace(converter_graph=graph, __getitem__=None)
    data = converter_figure_data(lattice, scenario)  # type: ignore[arg-type]
    assert data["nodes"] == sorted(graph.nodes) and len(data["x"]) == 3
    marked = {(a, b) for a, b, _, hit in data["edges"] if hit}
    assert marked == {("'Atom'", "'Tensor(16)'")}
    fig = converter_figure(lattice, scenario)  # type: ignore[arg-type]
    assert [len([x for x in t.x if x is not None]) for t in fig.data] == [2, 2, 3]
    empty = converter_figure(nb.lattice())  # the doubling benchmark converts nothing
    assert "none" in empty.layout.title.text and len(empty.data) == 3


# -- the dashboard ---------------------------------------------------------------------------------
def test_the_dashboard_shows_modules_nodes_and_rejections(dash, nb):
    assert list(dash.tabs.titles) == ["Modules", "Lattice", "Converters", "Runs", "Results"]
    assert {"Doubler", "Picky", "Doubling", "OneCore", "NumPy", "Error"} <= {
        name for name in (r.name for r in nb.repository)}
    assert "Picky" in dash.modules_html.value and "classifies only" in dash.modules_html.value
    assert "<summary>A model that declines every task.</summary>" in dash.modules_html.value
    assert "It shows how a rejected model looks." in dash.modules_html.value
    picky = by_label(dash, "Picky")
    assert not picky["accepted"] and picky["reason"] == "classifies only" and picky["scenarios"] == []
    assert any("Picky" in r and "classifies only" in r for r in dash.rejected_reasons)
    assert "classifies only" in dash.rejected_html.value
    assert any(n["accepted"] and n["kind"] == "model" for n in dash.lattice_nodes)
    assert dash.lattice_figure.data[0].type == "sunburst"
    assert len(dash.node_picker.options) == len(dash.lattice_nodes)


def test_selecting_a_node_selects_exactly_the_scenarios_under_it(dash, nb):
    everything = sorted(s.id for s in nb.lattice().scenarios)
    assert sorted(dash.select_node(by_label(dash, "NumPy")["id"])) == everything
    assert dash.run_button.description == "Run 2 selected" and not dash.run_button.disabled
    leaf = by_label(dash, "Doubler(mode='b')")
    assert dash.select_node(leaf["id"]) == leaf["scenarios"] and len(leaf["scenarios"]) == 1
    assert dash.converter_scenario == leaf["scenarios"][0]
    assert dash.select_node(by_label(dash, "Picky")["id"]) == []
    assert dash.run_button.disabled and "classifies only" in dash.selection_label.value
    dash.node_picker.value = leaf["id"]  # the picker beside the chart does the same
    assert dash.selected == leaf["scenarios"]
    index = [n["id"] for n in dash.lattice_nodes].index(by_label(dash, "NumPy")["id"])
    dash._on_click(None, SimpleNamespace(point_inds=[index]), None)  # as a click on the sunburst
    assert sorted(dash.selected) == everything
    with pytest.raises(KeyError, match="no node"):
        dash.select_node("9/9")
    with pytest.raises(ValueError, match="no scenario is selected"):
        dash.selected = []
        dash.run_selected()


def test_run_selected_runs_exactly_those_and_fills_runs_and_results(dash, nb):
    figures = (dash.lattice_figure, dash.converter_figure, dash.results_figure)
    leaf = by_label(dash, "Doubler(mode='a')")
    dash.select_node(leaf["id"])
    handle = dash.run_selected()
    dash.wait(60)
    ran = {p.label for p in handle.pods}
    assert len(handle.pods) == 1 and "mode='a'" in next(iter(ran))
    stored = nb.results().to_dataframe()
    assert set(stored["scenario"]) == set(leaf["scenarios"])
    assert dash.progress.value == dash.progress.max == 1 and "ok" in dash.pods_html.value
    # Results: the chart has traces and the dropdowns list the metrics
    assert "Error" in dash.precision_picker.options and "ElapsedMilliseconds" in dash.work_picker.options
    assert len(dash.results_figure.data) > 0
    assert dash.rankings_html.value
    assert "ElapsedMilliseconds" in dash.results_figure.layout.yaxis.title.text  # work up, precision across
    dash.swap_toggle.value = True
    assert "ElapsedMilliseconds" in dash.results_figure.layout.xaxis.title.text
    dash.work_picker.value = "SamplesSeen"
    assert "SamplesSeen" in dash.results_figure.layout.xaxis.title.text
    dash.refresh()
    assert (dash.lattice_figure, dash.converter_figure, dash.results_figure) == figures
    assert all(a is b for a, b in zip((dash.lattice_figure, dash.converter_figure, dash.results_figure),
                                      figures, strict=True))


def test_the_dashboard_runs_warm_pods_unless_told_otherwise(nb):
    board = Dashboard(nb, jobs=1)
    try:
        board.select_node(by_label(board, "Doubler(mode='a')")["id"])
        handle = board.run_selected()
        board.wait(60)
        assert handle.executor.name == "warm" and handle.status == "finished"
        assert [p.status for p in handle.pods] == ["ok"]
    finally:
        board.close()


def test_beside_its_view_the_dashboard_offers_a_static_snapshot(dash, nb):
    dash.select_node(by_label(dash, "Doubler(mode='a')")["id"])
    dash.run_selected()
    dash.wait(60)
    bundle = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # a front end with widgets shows the live one
    page = bundle["text/html"]  # a report or a viewer without a kernel shows this
    assert page.startswith("<div><p><b>SAIBench dashboard</b> — 2 scenarios, 0 rejected, 1 expected non-pairing")
    assert "Picky" in page and "classifies only" in page  # Modules and the rejections
    assert "run 1 of 1: finished: 1 pods (1 ok)" in page and "mode=&#x27;a&#x27;" in page  # Runs
    assert page.count('class="saibench-plotly"') == 3 and dash.rankings_html.value in page  # charts, rankings


def test_rerunning_a_model_cell_refreshes_the_lattice_live_until_closed(dash, nb):
    figure, trace = dash.lattice_figure, dash.lattice_figure.data[0]
    assert len([n for n in dash.lattice_nodes if n["label"].startswith("Doubler(")]) == 2
    nb.register("model", MODEL.format(modes="'a', 'b', 'c'"), cell=MODEL_CELL)
    leaves = [n for n in dash.lattice_nodes if n["label"].startswith("Doubler(")]
    assert len(leaves) == 3 and len(by_label(dash, "NumPy")["scenarios"]) == 3
    assert dash.lattice_figure is figure and dash.lattice_figure.data[0] is trace
    assert len(dash.lattice_figure.data[0].ids) == len(dash.lattice_nodes)
    assert "3 scenarios" in dash.status.value
    dash.close()
    nb.register("model", MODEL.format(modes="'a'"), cell=MODEL_CELL)
    assert len([n for n in dash.lattice_nodes if n["label"].startswith("Doubler(")]) == 3  # no longer followed


def test_defining_a_missing_name_in_support_code_accepts_the_module_live(dash, nb):
    nb.register("model", MODEL.format(modes="'a'").replace("double(x, mode)", "halve(x)"), cell=MODEL_CELL)
    doubler = [n for n in dash.lattice_nodes if n["label"].lstrip("✗ ").startswith("Doubler")]
    assert doubler and not any(n["accepted"] for n in doubler)
    assert any("unknown name 'halve'" in r for r in dash.rejected_reasons)
    nb.register("sail", "def halve(x):\n    return x / 2\n")
    assert [n["accepted"] for n in dash.lattice_nodes if n["label"].startswith("Doubler(")] == [True]
    assert not any("halve" in r for r in dash.rejected_reasons)


def test_a_failed_pod_shows_with_its_message(dash, nb):
    nb.register("sail", "def blow_up(x):\n    raise RuntimeError('the solver blew up')\n")
    nb.register("model", textwrap.dedent('''
        @ModelDefinition
        def Boom(task, inputType, outputType):
            return Solver(lambda x: blow_up(x))
    '''))
    dash.select_node(by_label(dash, "Boom")["id"])
    assert len(dash.selected) == 1
    handle = dash.run_selected()
    dash.wait(60)
    assert [p.status for p in handle.pods] == ["failed"]
    assert "blew up" in dash.pods_html.value and dash.progress.bar_style == "danger"


# -- the kernel's runs, whoever starts them ---------------------------------------------------------
@pytest.fixture
def shell(tmp_path, monkeypatch):
    """A real IPython shell with the extension loaded and the doubling benchmark in its cells."""
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    unload_ipython_extension(ip)
    load_ipython_extension(ip)
    doubling(ip, "ok", "nap")
    yield ip
    unload_ipython_extension(ip)


def test_the_runs_tab_shows_a_run_started_by_the_magic(shell):
    board = shell.run_line_magic("sail", "dashboard --executor inline")
    assert "no run yet" in board.run_summary.value
    handle = shell.run_line_magic("sail", "run --executor inline")
    board.wait(60)
    assert board.handle is handle
    assert "no run yet" not in board.run_summary.value and "run 1 of 1: finished: 2 pods (2 ok)" in \
        board.run_summary.value
    assert "mode=&#x27;ok&#x27;" in board.pods_html.value and "mode=&#x27;nap&#x27;" in board.pods_html.value
    assert board.progress.value == board.progress.max == 2 and len(board.results_figure.data) > 0
    again = shell.run_line_magic("sail", "run --executor inline --rerun Doubler mode=ok")
    board.wait(60)
    assert board.handle is again and "run 2 of 2: finished: 1 pods (1 ok)" in board.run_summary.value
    assert "run 1: finished: 2 pods (2 ok)" in board.earlier_runs_html.value  # the earlier run stays listed
    board.close()
    shell.run_line_magic("sail", "run --executor inline --rerun Doubler mode=ok").wait(60)
    assert board.handle is again  # a closed dashboard follows nothing


def test_a_dashboard_opened_after_a_run_shows_that_run(shell):
    shell.run_line_magic("sail", "run --executor inline").wait(60)
    board = shell.run_line_magic("sail", "dashboard")
    board.wait(60)
    assert "run 1 of 1: finished: 2 pods (2 ok)" in board.run_summary.value and "ok" in board.pods_html.value
    board.close()


def test_the_executor_picker_offers_dask_and_runs_on_the_dashboards_scheduler(nb):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        board = Dashboard(nb, jobs=1, scheduler=cluster.scheduler_address)
        try:
            assert set(board.executor_picker.options) >= {"dask", "inline", "subprocess", "warm"}
            assert board.executor_picker.value == "warm"
            board.executor_picker.value = "dask"
            board.select_node(by_label(board, "Doubler(mode='a')")["id"])
            handle = board.run_selected()
            board.wait(60)
            assert handle.executor.name == "dask" and handle.status == "finished"
            assert [p.status for p in handle.pods] == ["ok"] and handle.dashboard == cluster.dashboard_link
        finally:
            board.close()
