"""Reading a results store: the tidy frame, aggregates over repeats, views, summaries and files."""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_results_store import ENV, ID, counters, failed_event, pod_events, run_pod

from saibench_jupyter.results import Results, Store
from saibench_jupyter.runtime._result import COUNTERS

OTHER = "fedcba9876543210"
SCENARIO = {"scenario": "s1", "label": "MNIST × MLP(hiddenSize=128) × PyTorch × CPU", "family": "mnist",
            "problem": "MNIST", "model": "MLP", "software": "PyTorch", "hardware": "CPU",
            "params": {"MLP.hiddenSize": [128]}, "metrics": ["Accuracy", "CriticalLoss"],
            "modules": {"MNIST": "aa11", "MLP": "bb22"}, "sources": ["d1"], "settings": {}}


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "saibench.db") as s:
        yield s


def with_accuracy(values: list[float], pod: str) -> list[dict[str, Any]]:
    """A finished pod with one checkpoint whose Accuracy is each of ``values`` in turn (one per checkpoint)."""
    events: list[dict[str, Any]] = [{"event": "started", "t": 1.0, "pid": 1, "environment": ENV}]
    for c, v in enumerate(values, 1):
        events.append({"event": "checkpoint", "stage": 1, "checkpoint": c, "epoch": c, "loss": v,
                       "counters": counters(10.0 * v)})
        events.append({"event": "metric", "stage": 1, "checkpoint": c, "name": "Accuracy", "value": v, "raw": None})
    events.append({"event": "finished", "t": 2.0, "status": "ok", "wall_ms": 1000.0, "compile_ms": 0.0})
    return events


def test_the_tidy_frame_of_a_full_pod(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    run_pod(store, ID, 0, pod_events())
    df = Results(store).to_dataframe()
    assert list(df.columns) == ["identity", "scenario", "label", "family", "problem", "model", "software", "hardware",
                                "params", "repeat", "status", "stage", "checkpoint", "epoch", "loss", *COUNTERS,
                                "compile_ms", "metric", "value"]
    assert df[["checkpoint", "metric", "value"]].values.tolist() == [
        [1, "Accuracy", 0.7], [1, "CriticalLoss", 2.0], [2, "Accuracy", 0.9], [2, "CriticalLoss", 1.0]]
    assert df["ElapsedMilliseconds"].tolist() == [100.0, 100.0, 200.0, 200.0]
    assert df["PeakMemoryBytes"].tolist() == [2.0**27] * 4
    assert set(df["status"]) == {"ok"} and set(df["label"]) == {SCENARIO["label"]}
    assert df["params"].iloc[0] == '{"MLP.hiddenSize": [128]}'  # JSON text: hashable, groupable
    env = Results(store).environments()
    assert env[["python", "executable", "host", "platform", "pods"]].values.tolist() == [
        ["3.11.7", "/venv/bin/python", "bench1", "Linux-6.1-x86_64", 1]]
    assert env["packages"].iloc[0] == {"numpy": "1.26.4", "torch": "2.3.0"}
    logs = Results(store).logs()
    assert logs[["identity", "repeat", "level", "message"]].values.tolist() == [[ID, 0, "info", "epoch 2 done"]]


def test_a_failed_pod_without_points_is_one_row_and_a_failure(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    run_pod(store, ID, 0, [failed_event()])
    results = Results(store)
    df = results.to_dataframe()
    assert len(df) == 1
    row = df.iloc[0]
    assert row["status"] == "failed" and row["label"] == SCENARIO["label"]
    assert pd.isna(row["stage"]) and pd.isna(row["metric"]) and math.isnan(row["value"])
    failures = results.failures()
    assert list(failures.columns[:12]) == ["identity", "label", "repeat", "kind", "message", "module", "location",
                                           "stage", "checkpoint", "fix", "stderr", "traceback"]
    assert failures[["kind", "message", "stderr", "label"]].values.tolist() == [
        ["error", "ZeroDivisionError: division by zero", "warning: something\n", SCENARIO["label"]]]


def test_a_checkpoint_without_metrics_is_one_row(store: Store) -> None:
    run_pod(store, ID, 0, [{"event": "checkpoint", "stage": 1, "checkpoint": 1, "epoch": 1, "loss": 0.3,
                            "counters": counters(5.0)}])
    df = Results(store).to_dataframe()
    assert len(df) == 1 and df["metric"].iloc[0] is None and df["loss"].iloc[0] == 0.3


def test_the_aggregate_over_three_repeats(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    run_id = store.begin_run("local", 1)
    for repeat, v in enumerate([3.0, 1.0, 2.0]):
        run_pod(store, ID, repeat, with_accuracy([v, v + 10], f"{ID}-r{repeat}"), run_id)
    run_pod(store, ID, 3, [failed_event()], run_id)  # a repeat without points does not count
    agg = Results(store).aggregate()
    assert agg[["stage", "checkpoint", "metric", "n"]].values.tolist() == [[1, 1, "Accuracy", 3],
                                                                           [1, 2, "Accuracy", 3]]
    first = agg.iloc[0]
    assert (first["value_median"], first["value_min"], first["value_max"]) == (2.0, 1.0, 3.0)
    assert first["value_q20"] == pytest.approx(1.4) and first["value_q80"] == pytest.approx(2.6)
    assert first["ElapsedMilliseconds"] == 20.0 and first["loss"] == 2.0 and first["epoch"] == 1.0
    assert agg.iloc[1]["value_median"] == 12.0
    assert first["label"] == SCENARIO["label"] and first["family"] == "mnist"


def test_the_aggregate_keeps_a_scenario_that_never_finished_as_n_0(store: Store) -> None:
    run_pod(store, ID, 0, with_accuracy([0.5], f"{ID}-r0"))
    run_pod(store, OTHER, 0, [failed_event()])
    agg = Results(store).aggregate()
    assert agg[["identity", "n"]].values.tolist() == [[ID, 1], [OTHER, 0]]
    assert pd.isna(agg.iloc[1]["stage"]) and math.isnan(agg.iloc[1]["value_median"])


def test_identities_limit_the_view(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    store.add_scenario(OTHER, {**SCENARIO, "label": "other"})
    run_pod(store, ID, 0, pod_events())
    run_pod(store, OTHER, 0, pod_events())
    run_pod(store, OTHER, 1, [failed_event()])
    everything, mine = Results(store), Results(store, identities=[OTHER])
    assert len(everything) == 3 and len(mine) == 2
    assert set(mine.to_dataframe()["identity"]) == {OTHER}
    assert mine.scenarios()["identity"].tolist() == [OTHER]
    assert mine.failures()["identity"].tolist() == [OTHER]
    assert len(Results(store, identities=[ID]).failures()) == 0
    assert len(Results(store, identities=[]).to_dataframe()) == 0


def test_scenarios_decode_json_and_count_pods(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    events = pod_events()
    run_pod(store, ID, 0, events)
    run_pod(store, ID, 1, [failed_event()])
    run_pod(store, ID, 2, [*events[:-1], {**events[-1], "status": "diverged", "error": {"message": "NaN loss"}}])
    run_pod(store, ID, 3, events[:2])
    run_pod(store, OTHER, 0, events)  # a pod whose scenario row is missing is still listed
    sc = Results(store).scenarios()
    assert sc["identity"].tolist() == [ID, OTHER]
    first = sc.iloc[0]
    assert first["modules"] == {"MNIST": "aa11", "MLP": "bb22"} and first["params"] == {"MLP.hiddenSize": [128]}
    assert [first[c] for c in ("repeats", "ok", "failed", "diverged", "running")] == [4, 1, 1, 1, 1]
    assert sc.iloc[1]["ok"] == 1 and pd.isna(sc.iloc[1]["label"])


def test_repr_summarises_scenarios_and_pods(store: Store) -> None:
    events = pod_events()
    run_pod(store, ID, 0, events)
    run_pod(store, ID, 1, events)
    run_pod(store, OTHER, 0, [failed_event()])
    run_pod(store, OTHER, 1, [*events[:-1], {**events[-1], "status": "diverged", "error": {"message": "NaN"}}])
    assert repr(Results(store)) == f"Results(2 scenarios, 4 pods: 2 ok, 1 failed, 1 diverged; {store.path})"
    assert repr(Results(store, identities=["nothing"])) == f"Results(0 scenarios, 0 pods; {store.path})"


def test_csv_and_parquet_round_trips(store: Store, tmp_path: Path) -> None:
    store.add_scenario(ID, SCENARIO)
    run_pod(store, ID, 0, pod_events())
    run_pod(store, ID, 1, [failed_event()])
    results = Results(store)
    df = results.to_dataframe()
    parquet = results.to_parquet(tmp_path / "r.parquet")
    assert parquet == tmp_path / "r.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), df)
    csv = pd.read_csv(results.to_csv(tmp_path / "r.csv"))
    assert list(csv.columns) == list(df.columns) and len(csv) == len(df) == 5
    pd.testing.assert_series_equal(csv["value"], df["value"])
    assert csv["status"].tolist() == df["status"].tolist()
    assert json.loads(csv["params"].iloc[0]) == SCENARIO["params"]


def test_parquet_without_pyarrow_says_how_to_install_it(store: Store, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'saibench-jupyter\[parquet\]'"):
        Results(store).to_parquet(tmp_path / "r.parquet")


def test_results_opens_a_store_by_path(store: Store) -> None:
    run_pod(store, ID, 0, pod_events())
    results = Results(str(store.path))
    try:
        assert len(results) == 1 and results.store.path == store.path
    finally:
        results.store.close()


def test_an_empty_store_gives_empty_frames(store: Store) -> None:
    results = Results(store)
    assert len(results.to_dataframe()) == 0 and len(results.aggregate()) == 0
    assert len(results.scenarios()) == len(results.failures()) == len(results.environments()) == 0
    assert "value_q80" in results.aggregate().columns


# -- metric warnings -------------------------------------------------------------------
def metric_warning(name: str, message: str, checkpoint: int) -> dict[str, Any]:
    return {"event": "warning", "kind": "metric", "name": name, "message": message, "location": "metrics.py, line 3",
            "stage": 1, "checkpoint": checkpoint, "fix": "return a number"}


def test_a_metric_that_failed_is_a_warning_record_said_in_the_summary(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    events = pod_events()
    boom = "metric CriticalLoss raised ValueError: x and y differ in length"
    run_pod(store, ID, 0, [*events[:3], metric_warning("CriticalLoss", boom, 1), *events[3:-1],
                           metric_warning("CriticalLoss", boom, 2), events[-1]])
    run_pod(store, ID, 1, [*events[:3], metric_warning("CriticalLoss", boom, 1), *events[3:]])
    run_pod(store, ID, 2, events)
    run_pod(store, ID, 3, [*events[:3], metric_warning("CriticalLoss", "metric CriticalLoss failed: empty", 1),
                           *events[3:]])
    results = Results(store)
    warnings = results.warnings()
    assert list(warnings.columns) == ["identity", "label", "repeat", "kind", "metric", "count", "message", "stage",
                                      "checkpoint", "location", "fix", "run_id"]
    assert warnings[["repeat", "metric", "count", "checkpoint"]].values.tolist() == [
        [0, "CriticalLoss", 2, 1], [1, "CriticalLoss", 1, 1], [3, "CriticalLoss", 1, 1]]
    assert set(warnings.label) == {SCENARIO["label"]} and set(warnings.stage) == {1}
    # The pods stay ok: the other metric is there, and the status says so.
    assert set(results.to_dataframe().status) == {"ok"}
    line = "⚠ metric CriticalLoss failed in 3 of 4 pods: ValueError: x and y differ in length (and 1 other error)"
    assert results.warning_lines() == [line]
    assert repr(results).splitlines() == [f"Results(1 scenario, 4 pods: 4 ok; {store.path})", line]
    assert results.scenarios()["warnings"].tolist() == [3]
    # A rerun of a pod replaces its warnings too.
    run_pod(store, ID, 0, events)
    assert Results(store).warnings()["repeat"].tolist() == [1, 3]


# -- versions --------------------------------------------------------------------------
def test_by_default_only_the_current_version_of_a_label_is_in_view(store: Store, monkeypatch) -> None:
    import itertools
    import time

    clock = itertools.count(100.0)  # the store's clock, one tick a call: each registration is later than the last
    monkeypatch.setattr(time, "time", lambda: next(clock))
    store.add_scenario(ID, {**SCENARIO, "version": "aaaaaaa"})
    run_pod(store, ID, 0, pod_events())
    store.add_scenario(OTHER, {**SCENARIO, "version": "bbbbbbb"})  # the model edited: same label, new code
    run_pod(store, OTHER, 0, pod_events())
    monkeypatch.undo()
    current, every = Results(store), Results(store, versions="all")
    assert current.scenarios()[["identity", "version"]].values.tolist() == [[OTHER, "bbbbbbb"]]
    assert set(current.to_dataframe().identity) == {OTHER} and len(current) == 1
    assert every.scenarios()[["identity", "version"]].values.tolist() == [[ID, "aaaaaaa"], [OTHER, "bbbbbbb"]]
    assert str(every.scenarios()["registered"].dtype).startswith("datetime64")
    # Asked for again (the edit undone and run: its pods are in the store already), the first is current again.
    store.add_scenario(ID, {**SCENARIO, "version": "aaaaaaa"})
    assert Results(store).scenarios()["identity"].tolist() == [ID]
    # Other settings are another scenario, not another version.
    store.add_scenario("1111222233334444", {**SCENARIO, "version": "ccccccc", "settings": {"epochs": 3}})
    assert Results(store).scenarios()["identity"].tolist() == [ID, "1111222233334444"]
    with pytest.raises(ValueError, match=r"versions='latest': use 'current' \(the latest code version of each "
                                         r"scenario label\) or 'all'"):
        Results(store, versions="latest")  # type: ignore[arg-type]


# -- pods no live run owns -------------------------------------------------------------
def test_a_pod_whose_run_ended_or_whose_controller_is_gone_is_interrupted(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    live = run_pod(store, ID, 0, pod_events()[:3])  # this process: alive
    assert Results(store).scenarios()["running"].tolist() == [1]
    ended = run_pod(store, ID, 1, pod_events()[:3])
    store.end_run(ended, "finished")  # its end written, the pod's never
    gone = run_pod(store, ID, 2, pod_events()[:3])
    with store._transaction() as db:  # another process got this one's id: its start time differs
        db.execute("UPDATE runs SET pid_start = '1' WHERE id = ?", (gone,))
    elsewhere = run_pod(store, ID, 3, pod_events()[:3])
    with store._transaction() as db:  # another host's controller cannot be checked: taken as live
        db.execute("UPDATE runs SET host = 'elsewhere', pid = 1 WHERE id = ?", (elsewhere,))
    results = Results(store)
    assert results.scenarios()[["running", "interrupted"]].values.tolist() == [[2, 2]]
    assert store.statuses() == {(ID, 0): "running", (ID, 1): "interrupted", (ID, 2): "interrupted",
                                (ID, 3): "running"}
    assert repr(results).startswith("Results(1 scenario, 4 pods: 2 interrupted, 2 running;")
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT id, status FROM runs ORDER BY id").fetchall() == [
            (live, "running"), (ended, "finished"), (gone, "interrupted"), (elsewhere, "running")]


def test_a_cancelled_pod_is_final_and_not_a_failure(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    run_pod(store, ID, 0, [*pod_events()[:3], {"event": "failed", "kind": "interrupted", "t": 5.0,
                                               "message": "the run was interrupted and the pod was stopped"}])
    results = Results(store)
    assert store.statuses() == {(ID, 0): "cancelled"} and len(results.failures()) == 0
    assert results.scenarios()[["cancelled", "running"]].values.tolist() == [[1, 0]]
    assert repr(results).startswith("Results(1 scenario, 1 pod: 1 cancelled;")


def test_a_metric_whose_point_is_missing_is_not_in_the_frame(store: Store) -> None:
    # A metric row without its checkpoint (written by hand, or by another program) joins no point: left out.
    run_id = run_pod(store, ID, 0, with_accuracy([0.5, 0.6], f"{ID}-r0"))
    store.record(run_id, ID, 0, {"event": "metric", "stage": 1, "checkpoint": 9, "name": "Accuracy", "value": 1.0})
    df = Results(store).to_dataframe()
    assert df[["checkpoint", "metric", "value"]].values.tolist() == [[1, "Accuracy", 0.5], [2, "Accuracy", 0.6]]


def test_the_frame_is_one_moment_of_a_store_that_a_run_is_writing(store: Store, monkeypatch) -> None:
    from saibench_jupyter.results import _tidy

    run_id = run_pod(store, ID, 0, pod_events())
    read_metrics = _tidy._metrics

    def write_then_read(*args: Any) -> Any:
        # Between the frame's queries, another connection (a run in another process) stores one more point.
        with Store(store.path) as writer:
            writer.record(run_id, ID, 0, {"event": "checkpoint", "stage": 1, "checkpoint": 3, "epoch": 3,
                                          "loss": 0.1, "counters": counters(300.0)})
            writer.record(run_id, ID, 0, {"event": "metric", "stage": 1, "checkpoint": 3, "name": "Accuracy",
                                          "value": 0.95})
        return read_metrics(*args)

    monkeypatch.setattr(_tidy, "_metrics", write_then_read)
    assert Results(store).to_dataframe()["checkpoint"].tolist() == [1, 1, 2, 2]  # as the store was at the start
    monkeypatch.undo()
    assert Results(store).to_dataframe()["checkpoint"].tolist() == [1, 1, 2, 2, 3]


def test_failure_lines_say_each_failure_in_a_line(store: Store) -> None:
    store.add_scenario(ID, SCENARIO)
    run_id = run_pod(store, ID, 0, [failed_event()])
    run_pod(store, OTHER, 1, [{**failed_event(), "kind": "timeout", "message": "no event for 60 s\nthe pod was killed"}],
            run_id)
    run_pod(store, OTHER, 2, [{**failed_event(), "message": ""}], run_id)
    results = Results(store)
    assert results.failure_lines() == [
        f"✗ {SCENARIO['label']} r0 (error): ZeroDivisionError: division by zero",
        f"✗ {OTHER} r1 (timeout): no event for 60 s",  # no scenario row: its identity; the message's first line
        f"✗ {OTHER} r2 (error)"]
    assert len(results.failures()) == 3
    assert Results(store, identities=[ID]).failure_lines() == [
        f"✗ {SCENARIO['label']} r0 (error): ZeroDivisionError: division by zero"]
