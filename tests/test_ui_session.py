"""The notebook core behind the magics: cells, identities, selection, background runs and their display."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pods_helpers import write_data

from saibench_jupyter.ui import _handle
from saibench_jupyter.ui._handle import RunFailedError, RunHandle
from saibench_jupyter.ui._notebook import Notebook, NotebookError

SUPPORT = textwrap.dedent('''
    import time
    import numpy as np

    def double(x, mode):
        if mode == "raise":
            raise RuntimeError("the solver blew up")
        if mode == "nap":
            time.sleep(0.3)
        if mode == "sleep":
            time.sleep(60)
        return np.asarray(x, dtype=np.float64) * 2.0
''')
PROBLEM = textwrap.dedent('''
    @ProblemDefinition
    def Doubling():
        for x, y in zip(Input("inputs.npy", Tensor(3)), Input("doubled.npy", Tensor(3))):
            Test.Solve(x, y)
''')
MODEL = textwrap.dedent('''
    @ModelDefinition
    def Doubler(task, inputType, outputType, mode):
        Suggest(mode, {modes})
        if task != Solve: Fail("solves only")
        return Solver(lambda x: double(x, mode))
''')
REST = {
    "metric": "@MetricDefinition\ndef Error():\n    return sum(L2Error(y0, y) for (_, y0, y) in Test.Solve) / len(Test.Solve)\n",
    "software": '@SoftwareDefinition\ndef NumPy(hardware):\n    return Environment(backend="numpy", pip=["numpy"])\n',
    "hardware": "@HardwareDefinition\ndef OneCore():\n    return Resources(cpus=1)\n",
}


def doubling(nb: Notebook, *modes: str) -> Notebook:
    """Register the doubling benchmark in ``nb``, one cell per kind, with these ``Doubler`` modes."""
    nb.register("sail", SUPPORT)
    nb.register("problem", PROBLEM)
    nb.register("model", MODEL.format(modes=", ".join(repr(m) for m in modes)))
    for kind, text in REST.items():
        nb.register(kind, text)
    return nb


@pytest.fixture
def nb(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return Notebook(user_ns={})


# -- cells ----------------------------------------------------------------------------------------
def test_a_cell_id_is_the_identity_and_a_rerun_replaces_what_the_cell_held(nb):
    first = nb.register("hardware", REST["hardware"] + "\n@HardwareDefinition\ndef Two():\n    return Resources(cpus=2)\n",
                        cell="5f3a1b2c-0000-4000-8000-000000000000")
    assert first.origin == "<cell 5f3a1b2c>" and [r.name for r in first] == ["OneCore", "Two"]
    assert first.changes == {"OneCore": "new", "Two": "new"} and first[0].line == 3  # the %%hardware line is 1
    again = nb.register("hardware", REST["hardware"], cell="5f3a1b2c-0000-4000-8000-000000000000")
    assert again.origin == first.origin and again.removed == ("Two",) and again.changes == {"OneCore": "unchanged"}
    assert [r.name for r in nb.repository] == ["OneCore"] and nb.cells == {"<cell 5f3a1b2c>": "hardware"}


def test_without_a_cell_id_the_cell_that_registered_the_same_names_is_found(nb):
    a = nb.register("hardware", REST["hardware"])
    b = nb.register("software", REST["software"])
    assert a.origin != b.origin
    changed = nb.register("hardware", REST["hardware"].replace("cpus=1", "cpus=2"))
    assert changed.origin == a.origin and changed.changes == {"OneCore": "changed"}
    support = nb.register("sail", SUPPORT)
    assert nb.register("sail", SUPPORT.replace("0.3", "0.2")).origin == support.origin  # by `double`
    assert nb.register("sail", "import numpy as np\n").origin != support.origin  # imports are shared


def test_a_module_of_another_kind_is_refused_with_its_cell_line(nb):
    with pytest.raises(NotebookError, match=r"(?s)line 8 of this %%problem cell: OneCore is a @HardwareDefinition, "
                       r"not a @ProblemDefinition.*8 \| @HardwareDefinition.*fix: move OneCore into a %%hardware cell"):
        nb.register("problem", PROBLEM + "\n" + REST["hardware"])
    assert len(nb.repository) == 0
    with pytest.raises(NotebookError, match="this %%model cell defines no @ModelDefinition module"):
        nb.register("model", "def helper(x):\n    return x\n")
    assert nb.register("sail", PROBLEM + REST["hardware"]).changes == {"Doubling": "new", "OneCore": "new"}


def test_a_syntax_error_names_the_cell_line_and_keeps_the_previous_version(nb):
    nb.register("hardware", REST["hardware"], cell="c1")
    with pytest.raises(NotebookError, match=r"(?s)line 3 of this %%hardware cell: invalid Python.*previous version "
                       r"of OneCore stays in use.*3 \| def OneCore\(:") as info:
        nb.register("hardware", REST["hardware"].replace("OneCore()", "OneCore("), cell="c1")
    assert info.value.line == 3
    # Blank lines above the magic line count too (IPython drops them, the cell shows them).
    with pytest.raises(NotebookError, match=r"line 5 of this %%hardware cell: .* previous version of OneCore stays"):
        nb.register("hardware", REST["hardware"].replace("OneCore()", "OneCore("), line_offset=3)
    assert nb.repository.get("OneCore").source.endswith("Resources(cpus=1)")


def test_names_from_the_notebook_are_flagged_with_their_line(nb):
    nb.user_ns = {"scale": 2, "_private": 1, "np": object()}
    nb.register("sail", "import numpy as np\n")
    model = "@ModelDefinition\ndef Scaled(task, inputType, outputType):\n    k = 1\n    return Solver(lambda x: x * scale * k)\n"
    registered = nb.register("model", model)
    assert registered.warnings == ("line 5 (Scaled): `scale` is defined in the notebook, not in a %%sail cell: "
                                   "pods won't see it; move it into a %%sail cell",)
    nb.register("sail", "scale = 2\n")
    assert nb.register("model", model).warnings == ()
    assert "defines no name" in nb.register("sail", "print('hello')\n").warnings[0]


def test_modules_list_shows_each_docstring_summary_and_unfolds_the_whole_text(nb):
    nb.register("hardware", textwrap.dedent('''
        @HardwareDefinition
        def Cores(threads):
            """CPU cores for one pod,
            one thread by default.

            Parameters
            ----------
            threads : int
                Threads for BLAS <and> PyTorch.
            """
            Suggest(threads, 1)
            return Resources(cpus=threads)
    '''))
    listed = nb.modules()
    (row,) = listed.rows()
    assert row[:3] + row[4:] == ("hardware", "Cores", "threads", "CPU cores for one pod, one thread by default.")
    assert repr(listed).splitlines()[1].strip() == "CPU cores for one pod, one thread by default."
    html = listed._repr_html_()
    assert "<details><summary>CPU cores for one pod, one thread by default.</summary>" in html
    assert "Threads for BLAS &lt;and&gt; PyTorch." in html


def test_modules_list_and_clear(nb):
    doubling(nb, "ok")
    listed = nb.modules()
    assert [r[:2] for r in listed.rows()] == [("problem", "Doubling"), ("model", "Doubler"), ("metric", "Error"),
                                              ("software", "NumPy"), ("hardware", "OneCore"), ("support", "double, np, time")]
    assert "Doubler" in repr(listed) and "<td>Doubler</td>" in listed._repr_html_()
    assert [r.name for r in nb.modules("model")] == ["Doubler"]
    with pytest.raises(NotebookError, match="'models' is not a module kind"):
        nb.modules("models")
    assert nb.clear() == 5 and len(nb.repository) == 0 and "no SAIL modules yet" in repr(nb.modules())


# -- discovery and selection ------------------------------------------------------------------------
def test_lattice_is_cached_until_a_module_changes(nb):
    doubling(nb, "ok", "raise")
    lattice = nb.lattice()
    assert len(lattice.scenarios) == 2 and nb.lattice() is lattice
    nb.register("hardware", REST["hardware"].replace("cpus=1", "cpus=1, memory='1GB'"))
    assert nb.lattice() is not lattice


def test_the_cached_lattice_follows_a_data_file_that_gives_a_type(nb, tmp_path):
    # An undeclared .npy input takes its type from the file: saving the file is a change.
    import numpy as np

    doubling(nb, "ok")
    nb.register("problem", PROBLEM.replace('Input("doubled.npy", Tensor(3))', 'Input("tripled.npy")'))
    (r,) = [r for r in nb.lattice().rejections if r.module == "Doubling"]
    assert r.reason.startswith("the type of Input('tripled.npy') is unknown: no file 'tripled.npy'")
    np.save(tmp_path / "tripled.npy", np.zeros((4, 3)))
    assert [s.problem for s in nb.lattice().scenarios] == ["Doubling"]


def test_explain_takes_names_and_roles(nb):
    doubling(nb, "ok")
    text = str(nb.explain("Doubling", "Doubler"))
    assert text.startswith("problem=Doubling, model=Doubler: 1 scenario")
    assert repr(nb.explain(model="Doubler")).startswith("model=Doubler: 1 scenario")
    with pytest.raises(NotebookError, match="there is no module 'MLP'"):
        nb.explain("MLP")


def test_nothing_to_run_says_why(nb):
    with pytest.raises(NotebookError, match="nothing to run: discovery found no scenario"):
        nb.run()
    doubling(nb, "ok")
    with pytest.raises(NotebookError, match=r"no executor 'fast' \(known: dask, inline, papermill, subprocess, warm\)\n  fix: --executor warm"):
        nb.run(executor="fast")
    with pytest.raises(NotebookError, match="--repeats 0"):
        nb.run(repeats=0)


def test_load_registers_several_paths_in_turn(nb, tmp_path):
    (tmp_path / "rest.py").write_text(SUPPORT + PROBLEM + "".join(REST.values()))
    (tmp_path / "model.py").write_text(MODEL.format(modes="'ok'"))
    loaded = nb.load(tmp_path / "rest.py", tmp_path / "model.py")
    assert [m.name for m in loaded] == ["Doubling", "Error", "NumPy", "OneCore", "Doubler"]
    (tmp_path / "bad.py").write_text("@ModelDefinition\ndef Broken(:\n")
    with pytest.raises(NotebookError, match=r"bad\.py"):
        nb.load(tmp_path / "bad.py")


# -- background runs --------------------------------------------------------------------------------
def test_a_run_in_the_background_reports_every_pod(nb):
    doubling(nb, "ok", "raise")
    events: list[dict] = []
    handle = nb.run(executor="inline")
    handle.subscribe(events.append)
    results = handle.wait(timeout=60)
    assert handle.done and handle.status == "finished" and handle.results is results and nb.last_run is handle
    assert sorted(p.status for p in handle.pods) == ["failed", "ok"] and handle.total == 2
    failed = next(p for p in handle.pods if p.status == "failed")
    assert failed.kind == "error" and failed.message == "RuntimeError: the solver blew up" and "mode='raise'" in failed.label
    assert events[-1] == {"event": "done", "status": "finished", "error": None}
    assert handle.eta == 0.0 and handle.summary().startswith("finished: 2 pods (1 ok, 1 failed)")
    assert "✗ Doubling × Doubler(mode='raise') × NumPy × OneCore r0 failed (error)" in handle.text()
    assert "<progress" not in handle._repr_html_() and "the solver blew up" in handle._repr_html_()
    late: list[dict] = []
    handle.subscribe(late.append)  # after the end: told at once
    assert late == [events[-1]]
    assert len(results.to_dataframe()) == 2 and len(nb.results().failures()) == 1
    # The same run again: everything is in the store already.
    again = nb.run(executor="inline").wait(60)
    assert nb.last_run.total == 0 and nb.last_run.skipped == 2 and len(again) == 2


MANY_RUNS = textwrap.dedent("""
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    from test_ui_session import doubling
    from saibench_jupyter.ui._notebook import Notebook

    nb = doubling(Notebook(user_ns={}), "ok")
    counts = []
    for i in range(80):
        handle = nb.run(executor="inline", rerun=True)
        handle.wait(60)
        counts.append(len(os.listdir("/proc/self/fd")))
    kept = [h.number for h in nb.runs]
    print(counts[0], max(counts), nb.run_count, kept[0], kept[-1], len(kept), len(nb.runs[0].results))
""")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in Linux's /proc")
def test_eighty_runs_under_a_128_descriptor_limit_hold_no_store_open(nb, tmp_path):
    # Each run used to keep its store's connection (2 descriptors) on its handle, kept for ever: run 61 failed.
    out = subprocess.run([sys.executable, "-c", MANY_RUNS], capture_output=True, text=True, timeout=240,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr[-3000:]
    first, most, count, oldest, newest, kept, pods = map(int, out.stdout.split())
    assert most <= first + 2 and count == 80  # descriptors stay flat (a reader may briefly hold one more)
    # The 20 runs that had ended when the last one started, and that one; their results are still readable.
    assert (oldest, newest, kept) == (60, 80, 21) and pods == 1


def test_an_error_of_the_run_itself_stays_on_the_handle(nb, tmp_path):
    doubling(nb, "ok")
    nb.store = tmp_path  # a folder: the store cannot open
    handle = nb.run(executor="inline")  # returns: nothing is raised into the cell
    assert handle.status == "error" and "is a folder" in str(handle.error) and "Traceback" in handle.traceback
    with pytest.raises(RunFailedError, match=r"the run failed: StoreError: .* is a folder"):
        handle.wait()
    assert handle.summary().startswith("the run failed: StoreError")


def test_cancel_stops_running_pods(nb):
    doubling(nb, "sleep")
    handle = nb.run(executor="subprocess")
    started = time.monotonic()
    while not any(p.status == "running" for p in handle.pods) and time.monotonic() - started < 20:
        time.sleep(0.05)
    handle.cancel()
    handle.wait(timeout=20)
    assert time.monotonic() - started < 20 and handle.status == "cancelled"
    assert [p.status for p in handle.pods] == ["cancelled"]
    assert handle.text().splitlines()[1].startswith("  ■ Doubling × Doubler(mode='sleep') × NumPy × OneCore r0 cancelled")
    # Final in the store, and not a result: the next run does the pod again.
    assert repr(handle.wait()).startswith("Results(1 scenario, 1 pod: 1 cancelled;")
    assert nb.results().scenarios()[["ok", "cancelled", "running"]].values.tolist() == [[0, 1, 0]]


def test_wait_times_out_and_the_run_goes_on(nb):
    doubling(nb, "nap")
    handle = nb.run(executor="inline")
    with pytest.raises(TimeoutError, match=r"still going after 0\.01 s"):
        handle.wait(timeout=0.01)
    assert handle.wait(timeout=30) is not None


class FakeView:
    """An IPython DisplayHandle as a kernel gives one: records the updates."""

    def __init__(self, bundle):
        self.bundles = [bundle]

    def update(self, bundle, raw=False):
        self.bundles.append(bundle)


def test_in_a_kernel_the_display_follows_the_run_throttled(nb, monkeypatch):
    import IPython.display

    views: list[FakeView] = []
    monkeypatch.setattr(_handle, "_front_end", lambda: "kernel")
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw=False, display_id=None:
                        views.append(FakeView(bundle)) or views[-1])
    doubling(nb, "ok", "raise", "nap")
    events: list[dict] = []
    handle = nb.run(executor="inline")
    handle.subscribe(events.append)
    handle.show()
    handle.wait(60)
    time.sleep(_handle.THROTTLE + 0.1)
    (view,) = views
    assert 2 <= len(view.bundles) < len(events)  # updated, but not once per event
    assert view.bundles[-1]["text/plain"].startswith("SAIBench run — finished: 3 pods")
    assert "finished: 3 pods" in view.bundles[-1]["text/html"]


def test_without_a_front_end_show_prints_once(nb, capsys):
    doubling(nb, "ok")
    handle = nb.run(executor="inline")
    handle.show()
    handle.wait(60)
    assert capsys.readouterr().out.startswith("SAIBench run — ")
    assert isinstance(handle, RunHandle) and repr(handle).startswith("RunHandle(finished: 1 pods (1 ok)")


def test_the_eta_comes_from_the_pods_that_finished():
    class TwoAtATime:
        jobs = 2

        def cancel(self):
            pass

    handle = RunHandle([], TwoAtATime(), store="unused.db")  # fed by hand, never started
    handle._on_event({"event": "run", "status": "started", "pods": 4, "skipped": 1})
    for pod in ("a", "b"):
        handle._on_event({"event": "started", "pod": pod, "label": f"scenario {pod}"})
    assert handle.eta is None and handle.summary() == "running: 0 of 4 pods done, 1 already in the store"
    handle._on_event({"event": "checkpoint", "pod": "b", "stage": 1, "checkpoint": 2, "epoch": 1})
    handle._on_event({"event": "finished", "pod": "a", "status": "ok", "wall_ms": 2000.0})
    # Two waiting and b running, 2 s each, two at a time: 3 s.
    assert 2.9 < handle.eta <= 3.0
    assert handle.summary() == "running: 1 of 4 pods done (1 ok), 1 already in the store, ETA ~3 s"
    assert handle.text().splitlines()[1:] == ["  ✓ scenario a r0 ok in 2.00 s", "  ▶ scenario b r0 running stage 1 · checkpoint 2",
                                              "  … 2 waiting"]


def test_a_pod_another_run_ran_at_the_same_time_shows_whose_result_it_is():
    pod = _handle.PodStatus("p-r0", "Doubling × Doubler × NumPy × OneCore")
    shared = pod.after({"event": "shared", "pod": "p-r0", "status": "ok", "run": 12})
    assert shared.status == "ok" and shared.kind == "run 12" and shared.line().startswith(
        "✓ Doubling × Doubler × NumPy × OneCore r0 ok in ")
    failed = pod.after({"event": "shared", "pod": "p-r0", "status": "failed", "run": 12})
    assert failed.line() == ("✗ Doubling × Doubler × NumPy × OneCore r0 failed (run 12): the result of run 12, "
                             "run at the same time")


# -- charts and rankings ------------------------------------------------------------------------------
def test_plot_and_rank_return_their_value_and_the_metric_warnings(nb):
    doubling(nb, "ok")
    with pytest.raises(NotebookError, match=r"no results yet .*\n  fix: %sail run first"):
        nb.plot()
    nb.run(executor="inline").wait(60)
    plotted = nb.plot(precision="Error")
    assert type(plotted.value).__name__ in ("Figure", "FigureWidget") and plotted.warnings == ()
    with pytest.raises(NotebookError, match=r"%sail plot: .*Accuracy"):
        nb.plot(precision="Accuracy")
    assert nb.ranking_names() == []
    (default,) = nb.rank().value  # no ranking module: the Pareto front
    assert default.name == nb.rank("pareto").value[0].name
    (reached,) = nb.rank("target", ["Error", "0.5"]).value
    assert reached.name == "TimeToTarget(Error ≤ 0.5, ElapsedMilliseconds)"
    with pytest.raises(NotebookError, match=r"there is no ranking module 'Best'\n  fix: use pareto, target METRIC"):
        nb.rank("Best")
    with pytest.raises(NotebookError, match=r"rank target Error: name a precision metric and the value to reach"):
        nb.rank("target", ["Error"])
    with pytest.raises(NotebookError, match=r"rank pareto: --work is for target only"):
        nb.rank("pareto", work="WallTime")
