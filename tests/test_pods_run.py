"""``run``: real pods in subprocesses, faults, the store, resume, repeats and scheduling."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from pods_helpers import DOUBLING, doubling, first_finished, write_data

from saibench_jupyter.pods import run
from saibench_jupyter.results import Results


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Events(list):
    """A progress callback that keeps every event."""

    def __call__(self, event):
        self.append(event)

    def ran(self) -> list[str]:
        return sorted(e["label"] for e in self if e["event"] in ("finished", "failed"))


@pytest.mark.parametrize("executor", ["subprocess", "warm"])
def test_faults_are_recorded_and_the_other_pods_finish(workdir, executor):
    modes = ("ok", "raise", "exit", "signal", "sleep", "memory", "print")
    scenarios = doubling(*modes)
    results = run(scenarios, executor=executor, store=workdir / "s.db", jobs=2, timeout=4, memory="512MB",
                  progress=False)
    assert isinstance(results, Results) and len(results) == len(modes)

    fails = results.failures().set_index("label")
    kind = {label.split("mode='")[1].split("'")[0]: row.kind for label, row in fails.iterrows()}
    assert kind == {"raise": "error", "exit": "exit", "signal": "signal", "sleep": "timeout", "memory": "memory"}
    message = {label.split("mode='")[1].split("'")[0]: row.message for label, row in fails.iterrows()}
    assert message["exit"] == "the pod exited with status 3 before reporting a result"
    assert message["signal"] == "the pod was killed by SIGSEGV"
    assert message["sleep"].startswith("the pod ran past its 4 s time limit")
    assert message["memory"].startswith("out of memory: Unable to allocate 8.00 GiB")
    assert message["raise"] == "RuntimeError: the solver blew up"

    frame = results.to_dataframe()
    done = frame[frame.status == "ok"]
    assert sorted(done.label.str.extract(r"mode='(\w+)'")[0]) == ["ok", "print"]
    assert set(done.metric) == {"Error"} and (done.value == 0.0).all()
    assert (frame[frame.status == "failed"].metric.isna()).all()  # failed pods are rows too (DNF)
    # The store is a plain SQLite file any reader can open.
    with sqlite3.connect(workdir / "s.db") as db:
        assert db.execute("select count(*) from pods where status = 'failed'").fetchone() == (5,)


def test_a_second_run_does_only_what_is_missing(workdir):
    extra = textwrap.dedent("""
        from saibench_jupyter.sail import *

        @ModelDefinition
        def Copier(task, inputType, outputType):
            if task != Solve: Fail("solves only")
            return Solver(lambda x: x * 2.0)
    """)
    scenarios = doubling("ok", extra=extra)
    first = Events()
    run(scenarios, store=workdir / "s.db", progress=first)
    assert len(first.ran()) == 2

    again = Events()
    results = run(scenarios, store=workdir / "s.db", progress=again)
    assert again.ran() == [] and len(results) == 2
    assert again[0] == {"event": "run", "status": "started", "pods": 0, "skipped": 2, "executor": "warm",
                        "jobs": again[0]["jobs"]}

    # Editing Copier reruns Copier's scenario only.
    edited = doubling("ok", extra=extra.replace("x * 2.0", "x + x"))
    third = Events()
    run(edited, store=workdir / "s.db", progress=third)
    assert third.ran() == ["Doubling × Copier × NumPy × OneCore"]

    forced = Events()
    run(edited, store=workdir / "s.db", progress=forced, rerun=True)
    assert len(forced.ran()) == 2


def test_repeats_run_independent_pods_and_aggregate(workdir):
    scenarios = doubling("ok")
    results = run(scenarios, store=workdir / "s.db", repeats=3, seed=5, progress=False)
    frame = results.to_dataframe()
    assert sorted(frame.repeat) == [0, 1, 2]
    with sqlite3.connect(workdir / "s.db") as db:
        seeds = sorted(row[0] for row in db.execute("select json_extract(settings, '$.seed') from pods"))
    assert seeds == [5, 6, 7]
    agg = results.aggregate()
    assert list(agg.n) == [3] and list(agg.value_median) == [0.0]


def test_failed_pods_are_retried_on_request(workdir):
    scenarios = doubling("ok", "raise")
    run(scenarios, store=workdir / "s.db", progress=False)
    retried = Events()
    run(scenarios, store=workdir / "s.db", progress=retried, rerun="failed")
    assert retried.ran() == ["Doubling × Doubler(mode='raise') × NumPy × OneCore"]


KILLED_PARENT = """
import sys
sys.path.insert(0, {tests!r})
from pods_helpers import doubling
from saibench_jupyter.pods import run
scenarios = doubling("ok", "slow")
run(scenarios, store="s.db", repeats=3, jobs=1, progress=False)
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_stopping_the_parent_mid_run_loses_nothing_finished(workdir, how):
    script = workdir / "parent.py"
    script.write_text(KILLED_PARENT.format(tests=str(DOUBLING.parents[1])))
    parent = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    db = workdir / "s.db"
    finished = first_finished(db, 60)
    import os
    import signal

    if how == "SIGKILL":
        os.killpg(parent.pid, signal.SIGKILL)  # the parent and its running pod, no clean-up
    else:
        os.kill(parent.pid, signal.SIGINT)  # Ctrl-C: the run stops its pods and closes the store
    assert parent.wait(timeout=30) != 0
    assert 1 <= finished < 6
    with sqlite3.connect(db) as con:
        stored = con.execute("select count(*) from pods where status = 'ok'").fetchone()[0]
        assert con.execute("select count(*) from pods where status = 'failed'").fetchone()[0] == 0
        if how == "SIGINT":
            assert con.execute("select status from runs").fetchall() == [("interrupted",)]

    scenarios = doubling("ok", "slow")
    events = Events()
    results = run(scenarios, store=db, repeats=3, jobs=1, progress=events)
    assert len(events.ran()) == 6 - stored
    assert sorted(results.to_dataframe().status) == ["ok"] * 6


def test_an_environment_that_cannot_be_built_fails_its_pods_only(workdir):
    extra = textwrap.dedent("""
        from saibench_jupyter.sail import *

        @SoftwareDefinition
        def Missing(hardware):
            return Environment(backend="numpy", pip=["saibench-no-such-package-xyz"])
    """)
    scenarios = doubling("ok", extra=extra)
    events = Events()
    results = run(scenarios, store=workdir / "s.db", progress=events)
    fails = results.failures()
    assert list(fails.kind) == ["environment"]
    assert "saibench-no-such-package-xyz" in fails.message[0]
    assert "Doubling × Doubler(mode='ok') × NumPy × OneCore" in events.ran()
    assert any(e["event"] == "environment" for e in events)  # the build was shown, not silent


def test_a_scenario_whose_parameters_json_cannot_hold_fails_alone(workdir):
    extra = textwrap.dedent("""
        from saibench_jupyter.sail import *

        @ModelDefinition
        def Scaler(task, inputType, outputType, factor):
            if task != Solve: Fail("solves only")
            Suggest(factor, 2.0, {2.0})
            return Solver(lambda x: x * factor)
    """)
    scenarios = [s for s in doubling("ok", extra=extra) if "Scaler" in s.label]
    events = Events()
    results = run(scenarios, store=workdir / "s.db", repeats=2, progress=events)
    status = {(label, r): s for label, r, s in results.to_dataframe()[["label", "repeat", "status"]].values}
    assert status == {("Doubling × Scaler(factor=2.0) × NumPy × OneCore", 0): "ok",
                      ("Doubling × Scaler(factor=2.0) × NumPy × OneCore", 1): "ok",
                      ("Doubling × Scaler(factor={2.0}) × NumPy × OneCore", 0): "failed",
                      ("Doubling × Scaler(factor={2.0}) × NumPy × OneCore", 1): "failed"}
    fails = results.failures()
    assert list(fails.kind) == ["spec", "spec"]
    assert fails.message[0] == ("parameter Scaler.factor = {2.0} cannot be written to a pod spec (Object of type "
                                "set is not JSON serializable): a pod gets its parameters as JSON")
    assert fails.fix[0].startswith("give Scaler.factor only JSON values (numbers, strings, booleans, None, lists, "
                                   "dicts) in Suggest(...) or discover(params=...): a list instead of a set")
    assert len(events.ran()) == 4  # the refused pods are reported like the others


TWICE = textwrap.dedent("""
    from saibench_jupyter.sail import *

    @ModelDefinition
    def Twice(task, inputType, outputType):
        if task != Solve: Fail("solves only")
        return Pipeline(Require(Model, Solve, inputType, outputType), Require(Model, Solve, inputType, outputType))
""")


def test_parameters_have_one_shape_from_discovery_to_the_store_and_the_chart(workdir):
    from saibench_jupyter.pods import specs_of
    from saibench_jupyter.ui._curves import flat_params

    scenarios = [s for s in doubling("ok", "slow", extra=TWICE)
                 if s.model == "Doubler" or "Twice[Doubler(mode='ok'), Doubler(mode='slow')]" in s.label]
    results = run(scenarios, store=workdir / "s.db", progress=False)
    stored = results.scenarios().set_index("scenario")["params"]
    tidy = results.to_dataframe().drop_duplicates("scenario").set_index("scenario")["params"]
    shapes = set()
    for scenario in scenarios:
        shape = scenario.params  # {"Module.param": value}, with places where a module fills two
        assert specs_of(scenario)[0].params == shape
        assert stored[scenario.id] == shape and json.loads(tidy[scenario.id]) == shape
        assert flat_params(tidy[scenario.id]) == shape  # what the charts label and sort lines by
        shapes.add(tuple(shape))
    (first, second) = next(s for s in scenarios if s.model == "Twice").submodels
    assert shapes == {("Doubler.mode",), (f"{first}/Doubler.mode", f"{second}/Doubler.mode")}


def test_inline_runs_in_this_process_and_keeps_the_caller_alive(workdir):
    scenarios = doubling("ok", "raise")
    results = run(scenarios, executor="inline", store=workdir / "s.db", progress=False)
    status = dict(zip(results.to_dataframe().label, results.to_dataframe().status))
    assert sorted(status.values()) == ["failed", "ok"]


def test_inline_keeps_the_trained_models_when_asked(workdir):
    import numpy as np

    scenarios = doubling("ok", "raise")
    assert run(scenarios, executor="inline", store=workdir / "s.db", progress=False).models == {}  # not asked
    events = Events()
    results = run(scenarios, executor="inline", store=workdir / "s.db", progress=events, keep_models=True)
    assert len(events.ran()) == 2  # run again although the store held them: a model is not stored
    ok = next(s for s in scenarios if s.params["Doubler.mode"] == "ok")
    assert list(results.models) == [ok.label]  # the failed pod kept nothing
    model = results.models[ok.id]  # by id as by label
    assert model is results.models[ok.label] and model.task == "Solve" and model.native is None  # a Solver
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(model.predict(x), 2 * x)
    np.testing.assert_array_equal(model(x[1]), 2 * x[1])
    failed = next(s for s in scenarios if s is not ok)
    with pytest.raises(KeyError, match=r"no kept model for .*raise.*; the kept ones \(by scenario label\): Doubling × Doubler"):
        results.models[failed.label]


@pytest.mark.parametrize("executor", ["subprocess", "warm"])
def test_keeping_models_needs_the_inline_executor(workdir, executor):
    with pytest.raises(ValueError, match=rf"keep_models=True needs the pods in this process, and the {executor} "
                                         r"executor runs each pod in a process of its own; fix: executor='inline' "
                                         r"\(%sail run --executor inline --keep-models\), or run_scenario\(scenario, "
                                         r"keep_model=True\) for one scenario"):
        run(doubling("ok"), executor=executor, store=workdir / "s.db", progress=False, keep_models=True)
    assert not (workdir / "s.db").exists()  # refused before anything ran or was stored


def test_a_pod_asking_for_every_cpu_runs_alone(workdir):
    import os

    cpus = len(os.sched_getaffinity(0))
    if cpus < 2:
        pytest.skip("needs two CPUs to tell a 2-CPU pod from two 1-CPU pods")
    extra = textwrap.dedent(f"""
        from saibench_jupyter.sail import *

        @HardwareDefinition
        def AllCores():
            return Resources(cpus={cpus})
    """)
    scenarios = doubling("slow", extra=extra)
    results = run(scenarios, store=workdir / "s.db", jobs=cpus, repeats=2, progress=False)
    with sqlite3.connect(results.store.path) as db:
        rows = db.execute("select s.hardware, p.started, p.finished from pods p join scenarios s "
                          "using (identity)").fetchall()
    whole = [(a, b) for hw, a, b in rows if hw == "AllCores"]
    others = [(a, b) for hw, a, b in rows if hw != "AllCores"]
    assert len(whole) == 2 and len(others) == 2
    for a, b in whole:
        for c, d in whole + others:
            if (a, b) != (c, d):
                assert b <= c or d <= a, "a pod ran beside the one that asked for every CPU"


def test_an_unknown_executor_is_named_with_the_known_ones(workdir):
    with pytest.raises(KeyError, match=r"no executor 'nope' \(known: dask, inline, papermill, subprocess, warm\)"):
        run(doubling("ok"), executor="nope", store=workdir / "s.db")
    assert not (workdir / "s.db").exists()  # refused before anything was written


def test_the_default_progress_shows_each_pod(workdir, capsys):
    run(doubling("ok", "raise"), store=workdir / "s.db")
    err = capsys.readouterr().err
    assert "saibench: 2 pods to run (warm, " in err
    assert "Doubling × Doubler(mode='ok') × NumPy × OneCore r0 ok in " in err
    assert "Doubling × Doubler(mode='raise') × NumPy × OneCore r0 failed (error): RuntimeError: the solver blew up" in err


def test_the_command_line_runs_and_resumes(workdir):
    command = [sys.executable, "-m", "saibench_jupyter.cli", "run", str(DOUBLING),
               "--param", "Doubler.mode=['ok','raise']", "--store", "cli.db"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1  # one pod failed
    assert "Results(2 scenarios, 2 pods: 1 ok, 1 failed; cli.db)" in first.stdout
    assert "(error): RuntimeError: the solver blew up" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert "0 pods to run, 2 already in the store" in again.stderr


LOG_ERROR = textwrap.dedent("""
    import math
    from saibench_jupyter.sail import *

    @MetricDefinition
    def LogError():
        # Fine in the dry run; on real data, a pod whose error is 0 raises ValueError: math domain error.
        return math.log(sum(L2Error(y0, y) for (_, y0, y) in Test.Solve))

    @ModelDefinition
    def Offset(task, inputType, outputType):
        if task != Solve: Fail("solves only")
        return Solver(lambda x: x * 2.0 + 1.0)
""")


def test_a_metric_that_raises_on_real_data_is_said_where_results_are_read(workdir, capsys):
    results = run(doubling("ok", extra=LOG_ERROR), store=workdir / "s.db", repeats=2)
    line = "⚠ metric LogError failed in 2 of 4 pods: ValueError: math domain error"
    assert repr(results).splitlines() == [f"Results(2 scenarios, 4 pods: 4 ok; {workdir / 's.db'})", line]
    warnings = results.warnings()
    assert warnings[["repeat", "metric", "count", "stage", "checkpoint"]].values.tolist() == [
        [0, "LogError", 1, 1, 1], [1, "LogError", 1, 1, 1]]
    assert set(warnings.label) == {"Doubling × Doubler(mode='ok') × NumPy × OneCore"}
    assert set(warnings.message) == {"metric LogError raised ValueError: math domain error"}
    assert set(warnings.location) == {"<cell extra>, line 8"}
    # The metric is there for the pods where it worked, and the other metric everywhere.
    frame = results.to_dataframe()
    assert sorted(frame.groupby("metric").size().items()) == [("Error", 4), ("LogError", 2)]
    assert results.logs().empty  # a record of its own, not a log line
    err = capsys.readouterr().err  # the default progress says it once (pods run two at a time: r0 or r1 first)
    assert len(re.findall(r"⚠ Doubling × Doubler\(mode='ok'\) × NumPy × OneCore r[01]: metric LogError raised "
                          r"ValueError: math domain error\n", err)) == 1


def test_after_a_run_the_database_file_alone_holds_every_result(workdir):
    results = run(doubling("ok", "raise"), store=workdir / "s.db", progress=False)
    (workdir / "copy").mkdir()
    copy = Path(shutil.copy(workdir / "s.db", workdir / "copy" / "s.db"))  # without s.db-wal
    alone = Results(copy)
    assert repr(alone) == f"Results(2 scenarios, 2 pods: 1 ok, 1 failed; {copy})"
    pd.testing.assert_frame_equal(alone.to_dataframe(), results.to_dataframe())


def test_a_cancelled_run_leaves_its_pods_cancelled_and_the_next_run_does_them(workdir):
    from saibench_jupyter.pods import executor_class

    ex = executor_class("subprocess")(1)
    events = Events()

    def cancel_at_the_first_start(event):
        events(event)
        if event["event"] == "started":
            ex.cancel()

    results = run(doubling("slow", "ok"), executor=ex, store=workdir / "s.db", progress=cancel_at_the_first_start)
    assert repr(results) == f"Results(2 scenarios, 2 pods: 2 cancelled; {workdir / 's.db'})"
    assert len(results.failures()) == 0
    with sqlite3.connect(workdir / "s.db") as db:
        assert db.execute("select status, count(*) from pods group by status").fetchall() == [("cancelled", 2)]
    again = Events()
    assert repr(run(doubling("slow", "ok"), store=workdir / "s.db", progress=again)).startswith(
        "Results(2 scenarios, 2 pods: 2 ok;")
    assert len(again.ran()) == 2


CONTROLLER = """
import sys
sys.path.insert(0, {tests!r})
from pods_helpers import doubling
from saibench_jupyter.pods import run
run(doubling("sleep"), executor="inline", store="s.db", progress=False)
"""


def _killed_controller(workdir):
    """A store whose run's controller was killed (SIGKILL) while its pod was running."""
    import os
    import signal

    script = workdir / "controller.py"
    script.write_text(CONTROLLER.format(tests=str(DOUBLING.parents[1])))
    controller = subprocess.Popen([sys.executable, str(script)])
    db = workdir / "s.db"
    deadline = time.monotonic() + 60
    started = False
    while time.monotonic() < deadline and not started:
        time.sleep(0.1)
        if db.exists():
            with sqlite3.connect(db) as con:
                try:
                    started = con.execute("select count(*) from pods where pid is not null").fetchone()[0] == 1
                except sqlite3.OperationalError:
                    continue  # the schema is being created
    assert started
    assert repr(Results(db)) == f"Results(1 scenario, 1 pod: 1 running; {db})"  # its controller is alive
    os.kill(controller.pid, signal.SIGKILL)  # no clean-up: the store never hears the end
    assert controller.wait(timeout=30) == -signal.SIGKILL
    return db


def test_a_pod_whose_controller_died_is_interrupted_not_running(workdir):
    db = _killed_controller(workdir)
    results = Results(db)
    assert repr(results) == f"Results(1 scenario, 1 pod: 1 interrupted; {db})"
    assert results.scenarios()[["interrupted", "running"]].values.tolist() == [[1, 0]]
    with sqlite3.connect(db) as con:
        assert con.execute("select status from runs").fetchall() == [("interrupted",)]


def test_the_next_run_marks_the_run_of_a_dead_controller_interrupted(workdir):
    db = _killed_controller(workdir)
    run(doubling("ok"), executor="inline", store=db, progress=False)
    with sqlite3.connect(db) as con:  # read raw: no Results, which would mark it too
        assert con.execute("select id, status from runs order by id").fetchall() == [
            (1, "interrupted"), (2, "finished")]
        assert con.execute("select status from pods where run_id = 1").fetchall() == [("interrupted",)]


COUNTED = """
import os, time
from saibench_jupyter.sail import *

def counted(x, mode):
    with open("executions.txt", "a") as f:  # one line per input: 4 per execution of a pod
        f.write(f"{mode} {os.getpid()}\\n")
    time.sleep(0.05)
    return x * 2.0

@ModelDefinition
def Counted(task, inputType, outputType, mode="a"):
    if task != Solve: Fail("solves only")
    return Solver(lambda x: counted(x, mode))
"""
CONCURRENT = """
import json, sys
sys.path.insert(0, {tests!r})
from saibench_jupyter import Repository, discover
from saibench_jupyter.pods import run
from pods_helpers import DOUBLING

repo = Repository()
repo.load(DOUBLING)
repo.add_source({counted!r}, origin="<cell counted>")
scenarios = [s for s in discover(repo, params={{"Counted.mode": list("abcdef")}}).scenarios if s.model == "Counted"]
events = []
print("ready", flush=True)
sys.stdin.readline()  # both controllers start their runs at once
results = run(scenarios, executor="inline", store="s.db", progress=events.append)
print(json.dumps({{"shared": sorted(e["label"] for e in events if e["event"] == "shared"),
                  "note": events[-1].get("note"), "statuses": sorted(results.scenarios()["ok"].tolist())}}))
"""


def test_two_runs_of_the_same_scenarios_at_once_run_each_pod_once(workdir):
    script = workdir / "controller.py"
    script.write_text(CONCURRENT.format(tests=str(DOUBLING.parents[1]), counted=COUNTED))
    controllers = [subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for controller in controllers:
        assert controller.stdout.readline() == "ready\n", controller.stderr.read()
    for controller in controllers:  # two separate processes, each with its own store connection
        controller.stdin.write("\n")
        controller.stdin.flush()
    reports = []
    for controller in controllers:
        out, err = controller.communicate(timeout=120)
        assert controller.returncode == 0, err
        reports.append(json.loads(out))
    lines = (workdir / "executions.txt").read_text().split()[::2]
    assert sorted(lines) == sorted(list("abcdef") * 4)  # each of the 6 pods executed once (4 inputs each)
    for report in reports:  # both runs see every result
        assert report["statuses"] == [1] * 6
    shared = [report["shared"] for report in reports]
    assert len(shared[0]) + len(shared[1]) == 6  # each pod: run by one, its result used by the other
    notes = [r["note"] for r in reports if r["shared"]]
    assert all(re.fullmatch(r"\d pods? (were|was) run by run [12] at the same time: (their results are|its result "
                            r"is) used", note) for note in notes)


def test_a_pod_whose_holder_stops_renewing_its_lease_is_taken_over(workdir):
    from saibench_jupyter.results import Store

    scenarios = doubling("ok")
    run(scenarios, executor="inline", store=workdir / "s.db", progress=False)
    with Store(workdir / "s.db") as db:  # a run of another host holds the pod for one more second
        identity = db.owners().popitem()[0][0]
        other = db.begin_run("subprocess", 1)
        with db._transaction() as tx:
            tx.execute("UPDATE runs SET host = 'elsewhere' WHERE id = ?", (other,))
            expiry = time.time() + 1.0
            tx.execute("INSERT INTO leases VALUES (?, 0, ?, ?)", (identity, other, expiry))
    events = Events()
    results = run(scenarios, executor="inline", store=workdir / "s.db", progress=events, rerun=True)
    # It waited for the lease (the other run never stored a result), then ran the pod itself.
    assert events.ran() == ["Doubling × Doubler(mode='ok') × NumPy × OneCore"]
    assert [e for e in events if e["event"] == "shared"] == [] and events[-1]["note"] is None
    assert results.scenarios()["ok"].tolist() == [1]
    with sqlite3.connect(workdir / "s.db") as con:  # started once the lease had lapsed, not before
        assert con.execute("SELECT started FROM pods").fetchone()[0] >= expiry


def test_a_duration_changed_by_hand_is_ignored_by_later_runs(workdir):
    # The scheduler orders pods by past durations: one bad value used to fail every later run().
    scenarios = doubling("ok", "print")
    run(scenarios, executor="inline", store=workdir / "s.db", progress=False)
    with sqlite3.connect(workdir / "s.db") as con:
        con.execute("UPDATE pods SET wall_ms = 'fast' WHERE rowid = 1")
        con.execute("UPDATE pods SET wall_ms = NULL, started = 'then' WHERE rowid = 2")
    events = Events()
    results = run(scenarios, executor="inline", store=workdir / "s.db", progress=events, rerun=True)
    assert len(events.ran()) == 2 and results.scenarios()["ok"].tolist() == [1, 1]
