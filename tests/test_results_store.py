"""The results store: schema, WAL, events as rows, reruns, statuses, concurrency; real SQLite files."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from saibench_jupyter.results import Results, Store, StoreError
from saibench_jupyter.runtime._result import COUNTERS

ID = "0123456789abcdef"
ENV = {"python": "3.11.7", "executable": "/venv/bin/python", "packages": {"numpy": "1.26.4", "torch": "2.3.0"},
       "cpu": "2 × x86_64", "gpu": None, "host": "bench1", "platform": "Linux-6.1-x86_64"}


def counters(ms: float) -> dict[str, float]:
    return {"ElapsedMilliseconds": ms, "TrainingMilliseconds": ms * 0.8, "InferenceMilliseconds": ms * 0.1,
            "SamplesSeen": 1000.0, "Epochs": 1.0, "Flops": 2e9, "PeakMemoryBytes": 2.0**27}


def pod_events(pod: str = f"{ID}-r0", t: float = 1000.0) -> list[dict[str, Any]]:
    """started, stage, 2 checkpoints with 2 metrics each, log, finished."""
    events: list[dict[str, Any]] = [
        {"event": "started", "pod": pod, "t": t, "pid": 4242, "environment": ENV},
        {"event": "stage", "pod": pod, "t": t + 1, "stage": 1},
    ]
    for c in (1, 2):
        events.append({"event": "checkpoint", "pod": pod, "t": t + 1 + c, "stage": 1, "checkpoint": c, "epoch": c,
                       "loss": 1.0 / c, "counters": counters(100.0 * c)})
        events.append({"event": "metric", "pod": pod, "t": t + 1 + c, "stage": 1, "checkpoint": c,
                       "name": "Accuracy", "value": 0.5 + 0.2 * c, "raw": None})
        events.append({"event": "metric", "pod": pod, "t": t + 1 + c, "stage": 1, "checkpoint": c,
                       "name": "CriticalLoss", "value": 2.0 / c, "raw": [1.0 / c, 3.0 / c]})
    events.append({"event": "log", "pod": pod, "t": t + 4, "level": "info", "message": "epoch 2 done"})
    events.append({"event": "finished", "pod": pod, "t": t + 5, "status": "ok", "wall_ms": 5000.0,
                   "compile_ms": 0.0, "settings": {"epochs": 2}, "error": None})
    return events


def failed_event(pod: str = f"{ID}-r0") -> dict[str, Any]:
    return {"event": "failed", "pod": pod, "t": 2000.0, "kind": "error", "message": "ZeroDivisionError: division by zero",
            "module": "Broken", "location": "models.py, line 12", "stage": 1, "checkpoint": None,
            "fix": "check the model's forward", "traceback": "Traceback ...", "stderr": "warning: something\n"}


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "results" / "saibench.db") as s:
        yield s


def run_pod(store: Store, identity: str, repeat: int, events: list[dict[str, Any]], run_id: int | None = None) -> int:
    run_id = store.begin_run("local", 1) if run_id is None else run_id
    store.start_pod(run_id, identity, repeat)
    for event in events:
        store.record(run_id, identity, repeat, event)
    return run_id


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


# -- opening ---------------------------------------------------------------------------
def test_a_new_store_has_the_schema_in_wal_mode(store: Store) -> None:
    assert store.path.parent.is_dir()  # the folder was created
    tables = {r[0] for r in rows(store.path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "runs", "sources", "scenarios", "pods", "points", "metrics", "environments", "failures",
            "logs"} <= tables
    assert rows(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(store.path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]
    columns = [r[1] for r in rows(store.path, "PRAGMA table_info(points)")]
    assert columns == ["identity", "repeat", "stage", "checkpoint", "epoch", "loss", *COUNTERS]


def test_reopening_a_store_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "saibench.db"
    with Store(path) as s:
        run_pod(s, ID, 0, pod_events())
    with Store(path) as s:
        assert s.statuses() == {(ID, 0): "ok"}
        assert len(Results(s).to_dataframe()) == 4


def test_a_store_of_a_newer_version_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "saibench.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"saibench\.db was written by a newer saibench-jupyter \(schema_version 7; "
                                         r"this one reads 6\): upgrade saibench-jupyter"):
        Store(path)


def as_version_2(db: sqlite3.Connection) -> None:
    """Make a new store look as version 2 wrote it: no warnings, no controllers, no code versions, no leases."""
    db.execute("DROP TABLE warnings")
    db.execute("DROP TABLE leases")
    for table, column in (("runs", "pid"), ("runs", "pid_start"), ("scenarios", "version"),
                          ("scenarios", "registered")):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def test_a_version_1_store_is_upgraded_in_place_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "saibench.db"
    with Store(path) as s:
        run_pod(s, ID, 0, pod_events())
    with sqlite3.connect(path) as db:  # as version 1 wrote it: no metric_info column
        as_version_2(db)
        db.execute("ALTER TABLE scenarios DROP COLUMN metric_info")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store(path) as s:
        assert s.statuses() == {(ID, 0): "ok"}
        assert Results(s).metric_info() == {}
        s.add_scenario(ID, {"label": "L", "metric_info": {"Error": {"axis": "precision", "better": "lower",
                                                                     "unit": None}}})
        assert Results(s).metric_info() == {"Error": {"axis": "precision", "better": "lower", "unit": None}}
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]


def test_a_version_2_store_gets_warnings_controllers_and_versions(tmp_path: Path) -> None:
    path = tmp_path / "saibench.db"
    with Store(path) as s:
        s.add_scenario(ID, {"label": "L"})
        run_pod(s, ID, 0, pod_events())
    with sqlite3.connect(path) as db:
        as_version_2(db)
    with Store(path) as s:
        assert Results(s).scenarios()[["label", "version", "ok"]].values.tolist() == [["L", None, 1]]
        run_id = s.begin_run("local", 1)
        s.start_pod(run_id, ID, 1)
        s.record(run_id, ID, 1, {"event": "warning", "kind": "metric", "name": "Accuracy", "message": "m",
                                 "stage": 1, "checkpoint": 1})
        assert Results(s).warnings()[["metric", "count"]].values.tolist() == [["Accuracy", 1]]
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]
    assert rows(path, "SELECT pid FROM runs WHERE pid IS NOT NULL") != []


def test_a_version_4_store_gets_its_parameters_in_the_one_shape(tmp_path: Path) -> None:
    path = tmp_path / "saibench.db"
    by_role = {"problem": {"epochs": 4}, "hardware": {}, "software": {}, "model": {},
               "model/7:12": {"mode": "ok"}, "model/8:13": {"mode": "slow"}}
    with Store(path) as s:
        s.add_scenario(ID, {"label": "L", "problem": "Doubling", "model": "Twice", "software": "NumPy",
                            "hardware": "OneCore", "submodels": {"model/7:12": "Doubler", "model/8:13": "Doubler"},
                            "params": by_role})  # as runs before version 5 stored them
        s.add_scenario("b" * 16, {"label": "M", "params": {"MLP.hiddenSize": 128}})
        run_pod(s, ID, 0, pod_events())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with Store(path) as s:
        params = Results(s).scenarios().set_index("identity")["params"]
        assert params[ID] == {"Doubling.epochs": 4, "model/7:12/Doubler.mode": "ok", "model/8:13/Doubler.mode": "slow"}
        assert params["b" * 16] == {"MLP.hiddenSize": 128}  # already in the one shape: left alone
        assert json.loads(Results(s).to_dataframe()["params"].iloc[0]) == params[ID]
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]


def test_a_file_that_is_not_sqlite_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the results you are looking for\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.db is not a SAIBench results store .*pass another path"):
        Store(path)
    assert path.read_text().startswith("these are not")  # left untouched


def test_another_programs_database_and_a_folder_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    with pytest.raises(StoreError, match=r"other\.db is an SQLite database of another program \(tables: customers\)"):
        Store(other)
    with pytest.raises(StoreError, match=r"is a folder: pass the path of a results file"):
        Store(tmp_path)


def test_reading_a_missing_store_does_not_create_one(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "saibench.db"
    with pytest.raises(StoreError, match=r"there is no results store at .*saibench\.db: pass the path a run\(\) wrote"):
        Results(path)
    assert not path.parent.exists()


# -- events ----------------------------------------------------------------------------
def test_a_full_pod_becomes_points_metrics_an_environment_and_a_log(store: Store) -> None:
    run_pod(store, ID, 0, pod_events())
    assert rows(store.path, "SELECT status, started, finished, wall_ms, settings, pid FROM pods") == [
        ("ok", 1000.0, 1005.0, 5000.0, '{"epochs": 2}', 4242)]
    (env_id,) = rows(store.path, "SELECT environment_id FROM pods")[0]
    assert rows(store.path, "SELECT id, python, host FROM environments") == [(env_id, "3.11.7", "bench1")]
    assert rows(store.path, "SELECT raw FROM metrics WHERE name = 'CriticalLoss' ORDER BY checkpoint") == [
        ("[1.0, 3.0]",), ("[0.5, 1.5]",)]
    assert rows(store.path, "SELECT count(*) FROM failures") == [(0,)]
    # The same environment again (another pod) is one row, not two.
    run_pod(store, ID, 1, pod_events(f"{ID}-r1"))
    assert rows(store.path, "SELECT count(*) FROM environments") == [(1,)]


def test_a_checkpoint_ignores_unknown_counters_and_stores_missing_ones_as_null(store: Store) -> None:
    run_pod(store, ID, 0, [{"event": "checkpoint", "t": 1.0, "stage": 2, "checkpoint": 3, "epoch": 7, "loss": None,
                            "counters": {"Epochs": 7, "Flops": 1e12, "Bogus": 1}}])
    assert rows(store.path, 'SELECT stage, checkpoint, epoch, loss, "Epochs", "Flops", "SamplesSeen" FROM points') == [
        (2, 3, 7, None, 7.0, 1e12, None)]


def test_a_failed_pod_records_a_failure(store: Store) -> None:
    run_pod(store, ID, 0, [{"event": "started", "t": 1990.0, "pid": 1, "environment": ENV}, failed_event()])
    assert store.statuses() == {(ID, 0): "failed"}
    assert rows(store.path, "SELECT kind, module, location, stage, checkpoint, stderr FROM failures") == [
        ("error", "Broken", "models.py, line 12", 1, None, "warning: something\n")]
    assert store.durations() == [(ID, "", 10000.0)]  # finished - started: no wall_ms in a failed event


def test_a_diverged_finish_records_a_diverged_failure(store: Store) -> None:
    events = pod_events()
    events[-1] = {**events[-1], "status": "diverged",
                  "error": {"kind": "diverged", "message": "the loss became NaN", "module": "MLP", "stage": 1,
                            "checkpoint": 2, "fix": "lower the learning rate"}}
    run_pod(store, ID, 0, events)
    assert store.statuses() == {(ID, 0): "diverged"}
    assert rows(store.path, "SELECT kind, message, module, stage, checkpoint, fix FROM failures") == [
        ("diverged", "the loss became NaN", "MLP", 1, 2, "lower the learning rate")]


def test_an_unknown_event_is_a_value_error_naming_the_known_ones(store: Store) -> None:
    with pytest.raises(ValueError, match=r"unknown event 'bogus'; known events: started, stage, checkpoint, metric, "
                                         r"warning, log, finished, failed"):
        store.record(1, ID, 0, {"event": "bogus", "t": 1.0})
    with pytest.raises(ValueError, match=r"'checkpoint' event without 'stage'"):
        store.record(1, ID, 0, {"event": "checkpoint", "checkpoint": 1})


def test_a_stage_event_stores_nothing_and_does_not_fail(store: Store) -> None:
    store.record(1, ID, 0, {"event": "stage", "pod": f"{ID}-r0", "t": 1.0, "stage": 1})
    assert rows(store.path, "SELECT count(*) FROM points") == [(0,)]


def test_a_batch_of_log_lines_is_one_event_and_a_row_per_line(store: Store) -> None:
    run_pod(store, ID, 0, [{"event": "log", "t": 5.0, "level": "info", "lines": ["a", "b", ""]},
                           {"event": "log", "t": 6.0, "level": "warning", "message": "… 3 lines dropped"}])
    assert rows(store.path, "SELECT t, level, message FROM logs ORDER BY id") == [
        (5.0, "info", "a"), (5.0, "info", "b"), (5.0, "info", ""), (6.0, "warning", "… 3 lines dropped")]


def test_infinite_and_nan_metrics_keep_their_value(store: Store) -> None:
    run_pod(store, ID, 0, [
        {"event": "checkpoint", "stage": 1, "checkpoint": 1, "epoch": 1, "loss": math.inf, "counters": {}},
        {"event": "metric", "stage": 1, "checkpoint": 1, "name": "Inf", "value": math.inf, "raw": None},
        {"event": "metric", "stage": 1, "checkpoint": 1, "name": "NaN", "value": math.nan, "raw": None},
        {"event": "metric", "stage": 1, "checkpoint": 1, "name": "None", "value": None, "raw": None},
    ])
    # SQLite keeps inf as a REAL but NaN as NULL: raw 'NaN' tells NaN from missing.
    assert rows(store.path, "SELECT name, value, raw FROM metrics ORDER BY name") == [
        ("Inf", math.inf, None), ("NaN", None, "NaN"), ("None", None, None)]
    df = Results(store).to_dataframe().set_index("metric")
    assert df.loc["Inf", "value"] == math.inf and df.loc["Inf", "loss"] == math.inf
    assert math.isnan(df.loc["NaN", "value"])


# -- pods over time --------------------------------------------------------------------
def test_rerunning_a_pod_replaces_its_rows(store: Store) -> None:
    run_pod(store, ID, 0, [*pod_events()[:-1], failed_event()])
    assert rows(store.path, "SELECT count(*) FROM points") == [(2,)]
    run_id = run_pod(store, ID, 0, pod_events(t=5000.0))
    assert rows(store.path, "SELECT count(*) FROM points") == [(2,)]
    assert rows(store.path, "SELECT count(*) FROM metrics") == [(4,)]
    assert rows(store.path, "SELECT count(*) FROM logs") == [(1,)]
    assert rows(store.path, "SELECT count(*) FROM failures") == [(0,)]
    assert rows(store.path, "SELECT run_id, status, started FROM pods") == [(run_id, "ok", 5000.0)]


def test_a_started_but_unfinished_pod_is_running(store: Store) -> None:
    store.add_scenario("fedcba9876543210", {"family": "mnist"})
    run_pod(store, ID, 0, pod_events()[:4])
    run_pod(store, "fedcba9876543210", 0, pod_events())
    assert store.statuses() == {(ID, 0): "running", ("fedcba9876543210", 0): "ok"}
    assert store.statuses([ID]) == {(ID, 0): "running"}
    assert store.durations() == [("fedcba9876543210", "mnist", 5000.0)]  # running pods have no duration yet


def test_runs_sources_and_scenarios(store: Store) -> None:
    run_id = store.begin_run("local", 2, {"rerun": False})
    store.end_run(run_id, "finished")
    assert rows(store.path, "SELECT executor, jobs, status, info FROM runs") == [
        ("local", 2, "finished", '{"rerun": false}')]
    store.add_sources({"d1": ("mnist.py", "text 1"), "d2": ("cell-3", "text 2")})
    store.add_sources({"d1": ("elsewhere.py", "text 1")})  # content-addressed: a known digest is kept as it was
    assert rows(store.path, "SELECT digest, origin FROM sources ORDER BY digest") == [
        ("d1", "mnist.py"), ("d2", "cell-3")]
    store.add_scenario(ID, {"label": "old", "family": "mnist"})
    store.add_scenario(ID, {"label": "MNIST × MLP", "family": "mnist", "params": {"MLP.hiddenSize": [128]}})
    assert rows(store.path, "SELECT label, params FROM scenarios") == [
        ("MNIST × MLP", '{"MLP.hiddenSize": [128]}')]
    with pytest.raises(ValueError, match=r"unknown scenario field\(s\) lable; known: scenario, label"):
        store.add_scenario(ID, {"lable": "typo"})


# -- concurrency -----------------------------------------------------------------------
def test_a_second_connection_reads_while_the_first_writes(store: Store) -> None:
    run_id = store.begin_run("local", 1)
    store.start_pod(run_id, ID, 0)
    events = pod_events()
    for event in events[:5]:  # started, stage, checkpoint 1 and its two metrics
        store.record(run_id, ID, 0, event)
    reader = Store(store.path)
    try:
        with store._transaction() as db:  # the writer holds an open write transaction...
            db.execute("INSERT INTO logs (identity, repeat, t, level, message) VALUES (?, 0, 1, 'info', 'x')", (ID,))
            # ... and readers still see what was committed, without waiting.
            with sqlite3.connect(store.path, timeout=0.1) as raw:
                assert raw.execute("SELECT checkpoint FROM points").fetchall() == [(1,)]
            assert Results(reader).to_dataframe()["checkpoint"].tolist() == [1, 1]
        for event in events[5:]:
            store.record(run_id, ID, 0, event)
        assert len(Results(reader).to_dataframe()) == 4
    finally:
        reader.close()


def test_events_from_many_threads(store: Store) -> None:
    run_id = store.begin_run("local", 4)

    def pod(repeat: int) -> None:
        store.start_pod(run_id, ID, repeat)
        for c in range(1, 51):
            store.record(run_id, ID, repeat, {"event": "checkpoint", "stage": 1, "checkpoint": c, "epoch": c,
                                              "loss": 1.0, "counters": counters(c)})
            store.record(run_id, ID, repeat, {"event": "metric", "stage": 1, "checkpoint": c, "name": "A",
                                              "value": 1.0, "raw": None})
        store.record(run_id, ID, repeat, {"event": "finished", "status": "ok", "wall_ms": 1.0})

    threads = [threading.Thread(target=pod, args=(r,)) for r in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rows(store.path, "SELECT repeat, count(*) FROM points GROUP BY repeat") == [(r, 50) for r in range(4)]
    assert set(store.statuses().values()) == {"ok"}
