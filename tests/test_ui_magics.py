"""The magics through a real IPython shell: cells, %sail commands, background runs in real pods."""

from __future__ import annotations

import time

import pytest
from IPython.core.error import UsageError
from pods_helpers import DOUBLING
from test_ui_session import MODEL, PROBLEM, REST, SUPPORT

from saibench_jupyter.planner import Lattice
from saibench_jupyter.results import Results
from saibench_jupyter.ui._formatting import results_html
from saibench_jupyter.ui._handle import RunHandle
from saibench_jupyter.ui._magics import load_ipython_extension, notebook, unload_ipython_extension
from saibench_jupyter.ui._notebook import ModuleList

TWO_HARDWARE = "@HardwareDefinition\ndef OneCore():\n    return Resources(cpus=1)\n\n" \
               "@HardwareDefinition\ndef TwoCores():\n    return Resources(cpus=2)\n"


def doubling(ip, *modes: str) -> None:
    """The doubling benchmark, one cell per kind; ``Doubler`` calls ``double`` from the %%sail cell."""
    ip.run_cell_magic("sail", "", SUPPORT)
    ip.run_cell_magic("problem", "", PROBLEM)
    ip.run_cell_magic("model", "", MODEL.format(modes=", ".join(repr(m) for m in modes)))
    for kind, text in REST.items():
        ip.run_cell_magic(kind, "", text)


def test_a_cell_registers_its_modules_and_a_rerun_replaces_them(ip, capsys):
    ip.run_cell_magic("hardware", "", TWO_HARDWARE)
    assert capsys.readouterr().out.startswith("saibench: OneCore (new), TwoCores (new) — <cell ")
    repo = notebook(ip).repository
    assert [m.name for m in repo.modules("hardware")] == ["OneCore", "TwoCores"]
    ip.run_cell_magic("hardware", "", TWO_HARDWARE.replace("cpus=2", "cpus=4"))
    assert "TwoCores (changed)" in capsys.readouterr().out
    ip.run_cell_magic("hardware", "", REST["hardware"])  # TwoCores dropped from the cell
    assert "; removed TwoCores" in capsys.readouterr().out
    assert [m.name for m in repo] == ["OneCore"]


def test_the_kernel_cell_id_is_the_identity(ip):
    ip.run_cell("%%hardware\n" + TWO_HARDWARE, cell_id="a1b2c3d4-e5f6")
    ip.run_cell('%%hardware\n@HardwareDefinition\ndef Big():\n    return Resources(cpus=8)\n', cell_id="a1b2c3d4-e5f6")
    # Other names, same cell: what it held before is gone.
    assert [(m.name, m.origin) for m in notebook(ip).repository] == [("Big", "<cell a1b2c3d4>")]
    # Blank lines above %%hardware count in the cell's line numbers.
    result = ip.run_cell("\n\n%%hardware\n@HardwareDefinition\ndef Big(:\n    return 1\n", cell_id="a1b2c3d4-e5f6")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith("line 5 of this %%hardware cell: invalid Python")
    assert "the previous version of Big stays in use" in str(result.error_in_exec)


def test_a_module_of_another_kind_is_a_usage_error_naming_the_line(ip):
    with pytest.raises(UsageError, match=r"(?s)^line 7 of this %%problem cell: OneCore is a @HardwareDefinition, not a "
                       r"@ProblemDefinition\n    7 \| @HardwareDefinition\n  fix: move OneCore into a %%hardware cell"):
        ip.run_cell_magic("problem", "", PROBLEM.lstrip() + "\n" + REST["hardware"])
    with pytest.raises(UsageError, match="this %%metric cell defines no @MetricDefinition module"):
        ip.run_cell_magic("metric", "", "x = 1\n")
    with pytest.raises(UsageError, match=r"%%model takes no arguments \(got '--fast'\)"):
        ip.run_cell_magic("model", "--fast", MODEL)
    assert len(notebook(ip).repository) == 0


def test_a_sail_syntax_error_names_the_cell_line_and_the_fix(ip):
    with pytest.raises(UsageError, match=r"(?s)^line 4 of this %%model cell: invalid Python.*\n    4 \| return "
                       r"Solver\(0\.\.3\)\n.*\^\n  fix: Python has no a\.\.b ranges"):
        ip.run_cell_magic("model", "", "@ModelDefinition\ndef M(task, inputType, outputType):\n    return Solver(0..3)\n")


def test_a_misspelt_name_is_refused_at_the_cell_and_the_previous_version_stays(ip, capsys):
    doubling(ip, "ok")
    good = "@ModelDefinition\ndef Net(task, inputType, outputType):\n    return Pipeline([Linear(4), Tanh(), Linear()])\n"
    ip.run_cell_magic("model", "", good)
    with pytest.raises(UsageError, match=r"(?s)^line 4 of this %%model cell: unknown name 'Tanhh' \(did you mean "
                       r"'Tanh'\?\); the previous version of Net stays in use \(module Net\)\n"
                       r"    4 \| return Pipeline\(\[Linear\(4\), Tanhh\(\), Linear\(\)\]\)\n.*\^\n  fix: write Tanh"):
        ip.run_cell_magic("model", "", good.replace("Tanh()", "Tanhh()"))
    with pytest.raises(UsageError, match=r"unknown name 'Linaer' \(did you mean 'Linear'\?\)"):
        ip.run_cell_magic("model", "", good.replace("Linear(4)", "Linaer(4)"))
    assert "Tanh()" in notebook(ip).repository.get("Net").source
    # Discovery dry-runs the version that stays in use: it builds (only the backend does not fit).
    lattice = ip.run_line_magic("sail", "discover")
    assert [r.reason for r in lattice.rejections if r.module == "Net"] == [
        "runs on jax or torch, but NumPy provides the numpy backend"]
    # A name like no known one may be defined by a %%sail cell run later: registered, and flagged.
    capsys.readouterr()
    ip.run_cell_magic("model", "", good.replace("Linear(4)", "Linear(helper_width)"))
    assert capsys.readouterr().err == ("saibench warning: line 4 (Net): unknown name `helper_width`: no %%sail cell "
                                       "defines it; discovery rejects Net until one does\n")


def test_legitimate_names_are_not_flagged(ip, capsys):
    # SAIL's and Python's names, the module's own, imports and helpers of %%sail cells, in any case.
    ip.run_cell_magic("sail", "", "import math\nfrom numpy import tanh as np_tanh\n\ndef widen(n):\n    return 2 * n\n")
    ip.run_cell_magic("model", "", "@ModelDefinition\ndef Fine(task, inputType, outputType, width=4):\n"
                                   "    import numpy\n    layers = [Linear(widen(width)), Tanh()]\n"
                                   "    n = int(math.sqrt(len(layers))) + abs(-1) + numpy.ndim(np_tanh(0.0))\n"
                                   "    return Pipeline(layers + [Linear(n)])\n")
    assert "Fine (new)" in capsys.readouterr().out


def test_the_lattice_display_counts_expected_non_pairings_apart_and_names_each_rows_problem(ip):
    doubling(ip, "ok")
    ip.run_cell_magic("model", "", "@ModelDefinition\ndef Net(task, inputType, outputType):\n"
                                   "    return Pipeline([Linear(4), Tanh(), Linear()])\n\n"
                                   "@ModelDefinition\ndef Broken(task, inputType, outputType):\n"
                                   "    return Solver(1 // 0)\n")
    ip.run_cell_magic("hardware", "", "@HardwareDefinition\ndef Huge():\n    return Resources(cpus=4096)\n")
    lattice = ip.run_line_magic("sail", "discover")
    shown, _ = ip.display_formatter.format(lattice)
    text = shown["text/plain"]
    assert text.startswith("1 scenario, 2 rejected, 1 expected non-pairing (hidden; %sail explain NAME lists them)")
    assert "  ✗ hardware Huge for every problem: asks for 4096 CPUs" in text
    assert "  ✗ model Broken for problem Doubling: ZeroDivisionError during the dry run" in text
    assert "Net" not in text  # runs on jax or torch, the software gives numpy: expected
    html = shown["text/html"]
    assert "<summary>2 rejected</summary>" in html
    assert ("<summary>1 expected non-pairing (made for other problems, backends or kinds of Test)</summary>"
            in html)
    assert ("<tr><td>model Net</td><td>Doubling</td><td>runs on jax or torch, but NumPy provides the numpy "
            "backend</td><td>1</td>") in html
    assert "<tr><td>hardware Huge</td><td>every problem</td>" in html


def test_a_name_defined_only_in_the_notebook_is_flagged(ip, capsys):
    ip.run_cell("scale = 3")
    ip.run_cell_magic("model", "", "@ModelDefinition\ndef Scaled(task, inputType, outputType):\n"
                                   "    return Solver(lambda x: x * scale)\n")
    assert capsys.readouterr().err == ("saibench warning: line 4 (Scaled): `scale` is defined in the notebook, not in "
                                       "a %%sail cell: pods won't see it; move it into a %%sail cell\n")
    ip.run_cell_magic("sail", "", "scale = 3\n")
    ip.run_cell_magic("model", "", "@ModelDefinition\ndef Scaled(task, inputType, outputType):\n"
                                   "    return Solver(lambda x: x * scale)\n")
    assert capsys.readouterr().err == ""


def test_support_code_reaches_the_pods_and_a_failing_pod_breaks_nothing(ip):
    doubling(ip, "ok", "raise")
    handle = ip.run_line_magic("sail", "run --jobs 2")
    assert isinstance(handle, RunHandle) and handle.executor.name == "warm"  # the default executor
    results = ip.run_line_magic("sail", "wait")
    assert isinstance(results, Results) and handle.status == "finished"
    frame = results.to_dataframe()
    ok = frame[frame.status == "ok"]
    # Doubler(mode='ok') ran `double` from the %%sail cell in its own process.
    assert list(ok.label) == ["Doubling × Doubler(mode='ok') × NumPy × OneCore"] and list(ok.value) == [0.0]
    failure = results.failures().iloc[0]
    assert failure.kind == "error" and failure.message == "RuntimeError: the solver blew up"
    # The traceback names the %%sail cell and its line (the %%sail line is line 1).
    assert failure.location.startswith("<cell ") and failure.location.endswith(", line 8")
    # ... on behalf of the model that called it; the record keeps the traceback, and no field shows as None.
    assert failure.module == "Doubler" and "RuntimeError: the solver blew up" in failure.traceback
    assert failure.fix == "correct Doubler where it raised; the traceback shows how the run got there"
    html = results_html(results)
    assert html is not None and "<td>Doubler</td>" in html and "None" not in html
    # The shell, the notebook and the store carry on.
    assert ip.run_cell("1 + 1").result == 2
    assert len(ip.run_line_magic("sail", "results")) == 2
    again = ip.run_line_magic("sail", "run --rerun-failed model=Doubler --jobs 1 Doubling")
    assert again.wait(60) is not None and again.total == 1 and again.skipped == 1


def test_run_returns_at_once_and_the_kernel_keeps_running_cells(ip):
    doubling(ip, "nap")
    started = time.monotonic()
    handle = ip.run_line_magic("sail", "run")
    returned = time.monotonic() - started
    assert ip.run_cell("sum(range(10))").result == 45
    other_cell = time.monotonic() - started
    # The run takes >= 1 s (the model naps); the magic and another cell were done well before.
    assert not handle.done and returned < 1.0 and other_cell < 1.0
    handle.wait(60)
    assert time.monotonic() - started >= 1.0 and [p.status for p in handle.pods] == ["ok"]
    assert handle.pods[0].seconds >= 1.0


def test_discover_explain_list_load_results_and_clear(ip, capsys):
    with pytest.raises(UsageError, match=r"no results yet .*\n  fix: %sail run first"):
        ip.run_line_magic("sail", "results")
    loaded = ip.run_line_magic("sail", f"load {DOUBLING}")
    assert isinstance(loaded, ModuleList) and [m.name for m in loaded] == ["Doubling", "Doubler", "Error", "NumPy",
                                                                           "OneCore"]
    lattice = ip.run_line_magic("sail", "discover")
    assert isinstance(lattice, Lattice) and len(lattice.scenarios) == 1
    shown, _ = ip.display_formatter.format(lattice)
    assert shown["text/plain"].startswith("1 scenario, 0 rejected (")
    assert "✓ Doubling × Doubler × NumPy × OneCore  [Error]" in shown["text/plain"]
    assert "<b>Discovery</b>" in shown["text/html"]
    explained = ip.run_line_magic("sail", "explain Doubling Doubler")
    assert str(explained).startswith("problem=Doubling, model=Doubler: 1 scenario")
    assert [m.name for m in ip.run_line_magic("sail", "list model")] == ["Doubler"]
    assert "support   behave, np, os, signal, time" in repr(ip.run_line_magic("sail", "list"))
    with pytest.raises(UsageError, match="there is no module 'MLP'"):
        ip.run_line_magic("sail", "explain MLP")
    with pytest.raises(UsageError, match="is not a file, a folder or an importable package"):
        ip.run_line_magic("sail", "load no/such/file.py")
    capsys.readouterr()
    ip.run_line_magic("sail", "clear")
    assert capsys.readouterr().out.startswith("saibench: forgot 5 modules")
    assert len(notebook(ip).repository) == 0


def test_a_run_shows_itself_once_and_its_results_display(ip, capsys):
    doubling(ip, "ok")
    capsys.readouterr()
    ip.run_cell("h = %sail run --executor inline", store_history=True)
    ip.run_cell("_ = h.wait(60)", store_history=True)
    assert capsys.readouterr().out.count("SAIBench run — ") == 1
    ip.run_cell("h", store_history=True)  # asked for again in another cell: shown again
    assert "SAIBench run — finished: 1 pods (1 ok)" in capsys.readouterr().out
    shown, _ = ip.display_formatter.format(ip.run_line_magic("sail", "results"))
    assert "Results(1 scenario, 1 pod: 1 ok;" in shown["text/html"] and "<table" in shown["text/html"]


def test_an_inline_run_keeps_the_trained_models_when_asked(ip):
    import numpy as np

    doubling(ip, "ok")
    handle = ip.run_line_magic("sail", "run --executor inline --keep-models")
    results = handle.wait(60)
    (label,) = handle.models
    assert results.models is handle.models and label in results.scenarios().label.tolist()
    np.testing.assert_array_equal(handle.models[label].predict(np.ones((2, 3))), np.full((2, 3), 2.0))
    assert ip.run_line_magic("sail", "run --executor inline").models == {}  # not asked: nothing kept
    with pytest.raises(UsageError, match=r"^keep_models=True needs the pods in this process, and the warm executor "
                                         r"runs each pod in a process of its own; fix: executor='inline'"):
        ip.run_line_magic("sail", "run --keep-models")


def test_plot_and_rank(ip):
    doubling(ip, "ok")
    ip.run_line_magic("sail", "run --executor inline").wait(60)
    figure = ip.run_line_magic("sail", "plot --precision Error")
    assert type(figure).__name__ in ("Figure", "FigureWidget")
    assert ip.run_line_magic("sail", "rank pareto") is not None
    with pytest.raises(UsageError, match=r"there is no ranking module 'Best'\n  fix: use pareto"):
        ip.run_line_magic("sail", "rank Best")
    reached = ip.run_line_magic("sail", "rank target Error 0.5")
    assert reached.name == "TimeToTarget(Error ≤ 0.5, ElapsedMilliseconds)" and list(reached.table["level"]) == [1]
    with pytest.raises(UsageError, match=r"rank target Error: name a precision metric and the value to reach\n"
                                         r"  fix: %sail rank target Accuracy 0.95 \[--work WallTime\]"):
        ip.run_line_magic("sail", "rank target Error")
    with pytest.raises(UsageError, match=r"'Accuracy' is not a metric of these results \(metrics: Error\)"):
        ip.run_line_magic("sail", "rank target Accuracy 0.9")
    with pytest.raises(UsageError, match=r"rank pareto: Error is for target only"):
        ip.run_line_magic("sail", "rank pareto Error")


def test_plot_connect_chooses_what_a_line_joins(ip):
    doubling(ip, "ok", "nap")  # two scenarios of one family, one point each
    ip.run_line_magic("sail", "run --executor inline").wait(60)
    swept = ip.run_line_magic("sail", "plot --precision Error")
    assert [len(t.x) for t in swept.data] == [2]  # one curve through the family's scenarios
    apart = ip.run_line_magic("sail", "plot --precision Error --connect checkpoint")
    assert [len(t.x) for t in apart.data] == [1, 1] and {t.legendgroup for t in apart.data} == {swept.data[0].name}
    with pytest.raises(UsageError, match=r"argument --connect: invalid choice: 'epoch'"):
        ip.run_line_magic("sail", "plot --connect epoch")


def test_discovery_opens_with_a_summary_and_folds_the_scenarios(ip):
    doubling(ip, "a", "b", "c")
    shown, _ = ip.display_formatter.format(ip.run_line_magic("sail", "discover"))
    page = shown["text/html"]
    assert page.startswith("<p><b>Discovery</b>: 3 scenarios, 0 rejected")
    assert "<tr><th>model</th><td>Doubler (3)</td></tr>" in page and "<tr><th>software</th><td>NumPy (3)</td>" in page
    # The list of scenarios comes after the summary, folded.
    assert page.index("<details><summary>the 3 scenarios</summary><table>") < page.index("mode=&#x27;a&#x27;")


def test_bad_commands_and_options_are_usage_errors(ip, capsys):
    with pytest.raises(UsageError, match="%sail bogus: no such command; the commands are cancel, clear"):
        ip.run_line_magic("sail", "bogus")
    with pytest.raises(UsageError, match="%sail run: argument --jobs: invalid int value: 'x'"):
        ip.run_line_magic("sail", "run --jobs x")
    with pytest.raises(UsageError, match="there is no run yet: start one with %sail run"):
        ip.run_line_magic("sail", "wait")
    with pytest.raises(UsageError, match="nothing to run: discovery found no scenario"):
        ip.run_line_magic("sail", "run")
    doubling(ip, "ok")
    with pytest.raises(UsageError, match="there is no module or scenario 'MLP'"):
        ip.run_line_magic("sail", "run model=MLP")
    with pytest.raises(UsageError, match="fix: --executor warm, subprocess or inline"):
        ip.run_line_magic("sail", "run --executor fast")
    with pytest.raises(UsageError, match="--set epochs: write KEY=VALUE"):
        ip.run_line_magic("sail", "run --set epochs")
    with pytest.raises(UsageError, match="close the quotes"):
        ip.run_line_magic("sail", "run 'model=")
    board = ip.run_line_magic("sail", "dashboard")
    try:
        assert [board.tabs.get_title(i) for i in range(len(board.tabs.children))] == [
            "Modules", "Lattice", "Converters", "Runs", "Results"]
        assert board.lattice_nodes  # the cells registered above are in its lattice
    finally:
        board.close()
    capsys.readouterr()
    assert ip.run_line_magic("sail", "") is None and ip.run_line_magic("sail", "run --help") is None
    out = capsys.readouterr().out
    assert out.startswith("SAIBench in a notebook\n") and "%sail run [SELECTOR]" in out and "--executor" in out


def test_unloading_removes_the_magics(ip):
    unload_ipython_extension(ip)
    assert "sail" not in ip.magics_manager.magics["line"] and "model" not in ip.magics_manager.magics["cell"]
    with pytest.raises(RuntimeError, match="%load_ext saibench_jupyter"):
        notebook(ip)
    load_ipython_extension(ip)
    load_ipython_extension(ip)  # twice: still one set of hooks
    assert ip.events.callbacks["pre_run_cell"].count(notebook_magics_hook(ip)) == 1


def notebook_magics_hook(ip):
    from saibench_jupyter.ui._magics import _LOADED

    return _LOADED[id(ip)].pre_run_cell


LOG_ERROR = ("import math\n\n@MetricDefinition\ndef LogError():\n"
             "    return math.log(sum(L2Error(y0, y) for (_, y0, y) in Test.Solve))\n\n"
             "@MetricDefinition\ndef Fifth():\n    return [y for (_, _, y) in Test.Solve][0].item(5)\n")
OFFSET = ('@ModelDefinition\ndef Offset(task, inputType, outputType):\n    if task != Solve: Fail("solves only")\n'
          "    return Solver(lambda x: x * 2.0 + 1.0)\n")


def test_a_metric_that_raises_on_real_data_is_said_by_the_run_wait_plot_and_rank(ip, capsys):
    doubling(ip, "ok")
    ip.run_cell_magic("metric", "", LOG_ERROR)  # math domain error where the model is exact
    ip.run_cell_magic("model", "", OFFSET)
    handle = ip.run_line_magic("sail", "run --executor subprocess --repeats 2")
    results = ip.run_line_magic("sail", "wait")
    line = "⚠ metric LogError failed in 2 of 4 pods: ValueError: math domain error"
    fifth = "⚠ metric Fifth failed in 4 of 4 pods: IndexError: index 5 is out of bounds for axis 0 with size 3"
    # The run's table: which metric, how many pods, why; and the pods stay ok, with the mark.
    text = handle.text().splitlines()
    assert text[0].startswith("SAIBench run — finished: 4 pods (4 ok)") and text[1:3] == [f"  {fifth}", f"  {line}"]
    assert sorted(p.line().split(" in ")[0] for p in handle.pods) == [
        "✓ Doubling × Doubler(mode='ok') × NumPy × OneCore r0 ok ⚠ 2 metrics failed (LogError, Fifth)",
        "✓ Doubling × Doubler(mode='ok') × NumPy × OneCore r1 ok ⚠ 2 metrics failed (LogError, Fifth)",
        "✓ Doubling × Offset × NumPy × OneCore r0 ok ⚠ 1 metric failed (Fifth)",
        "✓ Doubling × Offset × NumPy × OneCore r1 ok ⚠ 1 metric failed (Fifth)"]
    assert "ok ⚠ 1 metric failed (Fifth)" in handle._repr_html_() and line in handle._repr_html_()
    # wait() and %sail results, as text and as HTML.
    assert repr(results).splitlines()[1:] == [fifth, line]
    shown, _ = ip.display_formatter.format(ip.run_line_magic("sail", "results"))
    assert line in shown["text/html"] and line in shown["text/plain"]
    warnings = results.warnings()
    assert sorted(warnings[warnings.metric == "LogError"].repeat) == [0, 1] and set(warnings["count"]) == {1}
    capsys.readouterr()
    # plot and rank still work on what there is, and say what is missing.
    ip.run_line_magic("sail", "plot --precision Error")
    assert capsys.readouterr().err == f"saibench: {fifth}\nsaibench: {line}\n"
    ip.run_line_magic("sail", "rank pareto")
    assert capsys.readouterr().err == f"saibench: {fifth}\nsaibench: {line}\n"
    # A metric that failed everywhere is not silently unknown: the error says why it has no values.
    with pytest.raises(UsageError, match=r"'Fifth' is not a metric of these results \(metrics: Error, LogError\)"
                                         rf"\n  {fifth}\n  {line}"):
        ip.run_line_magic("sail", "rank target Fifth 0.5")


def test_results_show_the_current_version_of_each_scenario_and_all_on_request(ip):
    doubling(ip, "ok")
    ip.run_line_magic("sail", "run --executor inline").wait(60)
    # Edit the model (same name, same label) and run again: a second version in the store.
    ip.run_cell_magic("model", "", MODEL.format(modes="'ok'").replace("double(x, mode)", "double(x, mode) * 1.0"))
    ip.run_line_magic("sail", "run --executor inline").wait(60)
    label = "Doubling × Doubler(mode='ok') × NumPy × OneCore"
    current = ip.run_line_magic("sail", "results")
    rows = current.scenarios()
    assert rows["label"].tolist() == [label] and rows["version"].str.fullmatch("[0-9a-f]{7}").all()
    assert repr(current).startswith("Results(1 scenario, 1 pod: 1 ok;")
    every = ip.run_line_magic("sail", "results --all").scenarios().sort_values("registered")
    assert every["label"].tolist() == [label, label] and every["version"].nunique() == 2
    assert every["version"].iloc[-1] == rows["version"].iloc[0]  # the current one is the last run
    shown, _ = ip.display_formatter.format(current)
    assert "<th>version</th>" in shown["text/html"] and rows["version"].iloc[0] in shown["text/html"]
    # Charts and rankings read the current version only: one curve, one rank.
    assert len(ip.run_line_magic("sail", "rank pareto").table) == 1


def test_run_on_a_dask_scheduler_links_the_dask_dashboard(ip):
    distributed = pytest.importorskip("distributed")
    doubling(ip, "ok")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        handle = ip.run_line_magic("sail", f"run --executor dask --scheduler {cluster.scheduler_address}")
        handle.wait(60)
        link = cluster.dashboard_link
    assert handle.executor.name == "dask" and [p.status for p in handle.pods] == ["ok"]
    assert handle.dashboard == link and link.startswith("http://127.0.0.1:")
    assert f"  Dask dashboard: {link}" in handle.text().splitlines()
    assert f'<a href="{link}" target="_blank">Dask dashboard</a>' in handle._repr_html_()


def test_run_on_a_dask_cluster_leaves_out_hardware_no_worker_offers(ip, tmp_path):
    import os

    from test_pods_dask_cluster import remote_cluster

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs here: the cluster's workers get 1")
    doubling(ip, "ok")
    ip.run_cell_magic("hardware", "", TWO_HARDWARE)
    with remote_cluster(tmp_path, cpus={0}) as address:  # workers that may use one CPU
        with pytest.raises(UsageError, match=r"no selected scenario can run on the Dask cluster:\n  .*TwoCores.*: "
                                             r"hardware TwoCores: asks for 2 CPUs, but any worker of the Dask "
                                             rf"cluster at {address} has 1\n  fix: add workers"):
            ip.run_line_magic("sail", f"run --executor dask --scheduler {address} hardware=TwoCores")
        handle = ip.run_line_magic("sail", f"run --executor dask --scheduler {address}")  # OneCore's runs
        handle.wait(60)
    assert [p.status for p in handle.pods] == ["ok"] and "OneCore" in handle.pods[0].label


def test_run_refuses_a_scheduler_without_the_dask_executor(ip):
    doubling(ip, "ok")
    with pytest.raises(UsageError, match=r"scheduler='tcp://127.0.0.1:8786' is for executor='dask' or 'papermill', not 'inline'\n"
                                         r"  fix: --executor dask or papermill, or leave out --scheduler"):
        ip.run_line_magic("sail", "run --executor inline --scheduler tcp://127.0.0.1:8786")


# -- pods as notebooks: %sail open, the papermill executor's options ---------------------------------------------
POD_ID = "0123456789abcdef"


def stored_notebook(ip, location: str, identity: str = POD_ID, repeat: int = 0) -> None:
    """A pod in the notebook's store whose executor said where its executed notebook is."""
    from saibench_jupyter.results import Store

    with Store(notebook(ip).store) as store:
        store.add_scenario(identity, {"label": "Doubling × Doubler"})
        run_id = store.begin_run("papermill", 1)
        store.start_pod(run_id, identity, repeat)
        store.record(run_id, identity, repeat, {"event": "artifact", "pod": f"{identity}-r{repeat}", "t": 1.0,
                                                "kind": "notebook", "location": location})
        store.record(run_id, identity, repeat, {"event": "finished", "pod": f"{identity}-r{repeat}", "t": 2.0,
                                                "status": "ok", "wall_ms": 1.0})


def test_open_links_a_pods_notebook_relative_to_the_kernels_folder(ip, tmp_path):
    stored_notebook(ip, str(tmp_path / "runs" / f"{POD_ID}-r0.ipynb"))
    link = ip.run_line_magic("sail", "open 0123")
    assert link.pod == f"{POD_ID}-r0" and str(link) == str(tmp_path / "runs" / f"{POD_ID}-r0.ipynb")
    shown, _ = ip.display_formatter.format(link)
    assert shown["text/plain"] == str(tmp_path / "runs" / f"{POD_ID}-r0.ipynb")
    # Relative: JupyterLab resolves it against the notebook's folder (the kernel's) and opens it in a tab.
    assert f'<a href="runs/{POD_ID}-r0.ipynb">Open the executed notebook of Doubling × Doubler r0</a>' in \
        shown["text/html"]
    assert ip.run_line_magic("sail", f"open {POD_ID}-r0") == link
    # The results' display lists the notebooks too.
    html = results_html(ip.run_line_magic("sail", "results"))
    assert "1 executed notebook (%sail open POD opens one)" in html and f'href="runs/{POD_ID}-r0.ipynb"' in html


def test_open_a_remote_notebook_links_its_url(ip):
    stored_notebook(ip, "http://host:8000/runs/x.ipynb")
    shown, _ = ip.display_formatter.format(ip.run_line_magic("sail", f"open {POD_ID}-r0"))
    assert '<a href="http://host:8000/runs/x.ipynb" target="_blank"' in shown["text/html"]


def test_open_says_which_pod_it_cannot_open_and_how_to_find_one(ip):
    with pytest.raises(UsageError, match=r"^no results yet .*\n  fix: %sail run first"):
        ip.run_line_magic("sail", "open 0123")
    stored_notebook(ip, "/runs/x.ipynb")
    stored_notebook(ip, "/runs/y.ipynb", identity="0123ffffffffffff")
    with pytest.raises(UsageError, match=r"^%sail open beef: there is no pod 'beef' in saibench\.db: .*\n  fix: "
                                         r"%sail results lists the pods"):
        ip.run_line_magic("sail", "open beef")
    with pytest.raises(UsageError, match=r"^%sail open 0123: '0123' starts 2 scenario identities"):
        ip.run_line_magic("sail", "open 0123")
    with pytest.raises(UsageError, match=r"^%sail open: the following arguments are required: pod\n  usage: %sail open \[-h\] pod"):
        ip.run_line_magic("sail", "open")


def test_help_lists_open_and_the_papermill_options(ip, capsys):
    ip.run_line_magic("sail", "help")
    assert "%sail open ID            open a pod's executed notebook" in capsys.readouterr().out
    ip.run_line_magic("sail", "help run")
    out = capsys.readouterr().out
    assert "papermill" in out and "--gateway URL" in out and "--output-notebooks LOCATION" in out
    ip.run_line_magic("sail", "help open")
    assert "%sail results lists the pods" in " ".join(capsys.readouterr().out.split())


def test_run_gives_the_executor_only_the_options_given_and_never_shows_the_token(ip, monkeypatch):
    from saibench_jupyter import pods

    doubling(ip, "ok")
    made = []

    def make_executor(executor, jobs=None, *, scheduler=None, options=None):
        made.append((executor, options))
        raise ValueError(f"executor {executor!r}: {options and options.get('gateway')} refused the token "
                         f"{options and options.get('token')}; fix: check the gateway's token")

    monkeypatch.setattr(pods, "make_executor", make_executor)
    with pytest.raises(UsageError, match=r"^executor 'papermill': http://gpu:8888 refused the token \*\*\*; "
                                         r"fix: check the gateway's token$"):
        ip.run_line_magic("sail", "run --executor papermill --gateway http://gpu:8888 --token s3cr3t --kernel py311 "
                                  "--output-notebooks s3://bucket/runs/")
    assert made == [("papermill", {"gateway": "http://gpu:8888", "token": "s3cr3t", "kernel": "py311",
                                   "output": "s3://bucket/runs/"})]
    with pytest.raises(UsageError, match=r"^executor 'inline': None refused"):
        ip.run_line_magic("sail", "run --executor inline")
    assert made[-1] == ("inline", None)  # no option given: none passed


def test_the_dashboard_gives_its_options_to_runs_of_its_executor_only(ip):
    board = ip.run_line_magic("sail", "dashboard --executor papermill --kernel py311 --token s3cr3t")
    asked = []

    def run(selector, **options):
        asked.append(options)
        raise RuntimeError("not run")

    board.notebook.run = run
    board.selected = [POD_ID]
    try:
        for picked in ("papermill", "warm"):
            board.executor_picker.value = picked
            with pytest.raises(RuntimeError, match="not run"):
                board.run_selected()
    finally:
        board.close()
    assert asked == [{"executor": "papermill", "jobs": None, "scheduler": None,
                      "executor_options": {"kernel": "py311", "token": "s3cr3t"}},
                     {"executor": "warm", "jobs": None}]
