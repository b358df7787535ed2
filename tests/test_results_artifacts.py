"""What pods left behind (their executed notebooks): the artifact event, its table, its migration, Results' views."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_results_store import ID, pod_events, rows, run_pod

from saibench_jupyter.results import Results, Store

OTHER = "0123ffffffffffff"  # shares its first four digits with ID


def artifact(location: str, pod: str = f"{ID}-r0", kind: str = "notebook", t: float = 900.0) -> dict:
    return {"event": "artifact", "pod": pod, "t": t, "kind": kind, "location": location}


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "saibench.db") as s:
        s.add_scenario(ID, {"label": "Doubling × Doubler"})
        yield s


def test_an_artifact_before_the_pods_start_is_kept_with_the_pod(store: Store, tmp_path: Path) -> None:
    # A notebook is written before its kernel starts: its event comes before "started".
    run_pod(store, ID, 0, [artifact(f"{tmp_path}/runs/{ID}-r0.ipynb"), *pod_events()])
    assert rows(store.path, "SELECT identity, repeat, run_id, kind, location, t FROM artifacts") == [
        (ID, 0, 1, "notebook", f"{tmp_path}/runs/{ID}-r0.ipynb", 900.0)]
    assert store.statuses() == {(ID, 0): "ok"}


def test_a_rerun_replaces_the_location_and_an_artifact_after_the_end_is_kept(store: Store) -> None:
    run_pod(store, ID, 0, [*pod_events(), artifact("s3://bucket/runs/first.ipynb")])  # after "finished"
    run_pod(store, ID, 0, [artifact("s3://bucket/runs/second.ipynb"), *pod_events()])
    assert rows(store.path, "SELECT location, run_id FROM artifacts") == [("s3://bucket/runs/second.ipynb", 2)]
    # A rerun that has not written its notebook yet has none: the earlier one belongs to the earlier result.
    store.start_pod(store.begin_run("local", 1), ID, 0)
    assert rows(store.path, "SELECT count(*) FROM artifacts") == [(0,)]


def test_an_artifact_of_another_kind_is_stored_beside_the_notebook(store: Store) -> None:
    run_pod(store, ID, 0, [artifact("/runs/a.ipynb"), artifact("/runs/a.html", kind="report"), *pod_events()])
    assert Results(store).artifacts()[["kind", "location"]].values.tolist() == [
        ["notebook", "/runs/a.ipynb"], ["report", "/runs/a.html"]]
    assert Results(store).artifacts("report")["location"].tolist() == ["/runs/a.html"]


@pytest.mark.parametrize(("event", "message"), [
    ({"event": "artifact", "pod": f"{ID}-r0", "kind": "notebook"}, r"'artifact' event without 'location'"),
    (artifact(""), r"'artifact' event with location '': give the path or URL of the pod's notebook"),
])
def test_an_artifact_without_a_location_is_refused(store: Store, event: dict, message: str) -> None:
    run_id = store.begin_run("local", 1)
    with pytest.raises(ValueError, match=message):
        store.record(run_id, ID, 0, event)
    assert rows(store.path, "SELECT count(*) FROM artifacts") == [(0,)]


def test_a_version_5_store_gets_the_artifacts_table(tmp_path: Path) -> None:
    path = tmp_path / "saibench.db"
    with Store(path) as s:
        run_pod(s, ID, 0, pod_events())
    with sqlite3.connect(path) as db:  # as version 5 wrote it
        db.execute("DROP TABLE artifacts")
        db.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    with Store(path) as s:
        assert Results(s).artifacts().empty and s.statuses() == {(ID, 0): "ok"}
        run_pod(s, ID, 1, [artifact("/runs/r1.ipynb", pod=f"{ID}-r1"), *pod_events(f"{ID}-r1")])
        assert Results(s).notebook(f"{ID}-r1") == "/runs/r1.ipynb"
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]


def test_artifacts_list_each_pod_with_its_key_and_label(store: Store) -> None:
    run_pod(store, ID, 0, [artifact("/runs/r0.ipynb"), *pod_events()])
    run_pod(store, ID, 1, [artifact("/runs/r1.ipynb", pod=f"{ID}-r1"), *pod_events(f"{ID}-r1")])
    frame = Results(store).artifacts()
    assert list(frame.columns) == ["identity", "repeat", "pod", "label", "kind", "location", "run_id", "t"]
    assert frame[["pod", "label", "location"]].values.tolist() == [
        [f"{ID}-r0", "Doubling × Doubler", "/runs/r0.ipynb"], [f"{ID}-r1", "Doubling × Doubler", "/runs/r1.ipynb"]]
    assert Results(store, identities=[OTHER]).artifacts().empty  # only the pods in view


def test_a_pods_notebook_by_key_or_by_the_start_of_its_identity(store: Store) -> None:
    run_pod(store, ID, 0, [artifact("/runs/r0.ipynb"), *pod_events()])
    run_pod(store, ID, 1, [artifact("/runs/r1.ipynb", pod=f"{ID}-r1"), *pod_events(f"{ID}-r1")])
    results = Results(store)
    assert results.notebook(f"{ID}-r1") == "/runs/r1.ipynb"
    assert results.notebook("0123") == "/runs/r0.ipynb"  # a prefix: its repeat 0
    assert results.notebook("0123-r1") == "/runs/r1.ipynb"  # a prefix and a repeat


def test_a_prefix_names_the_only_pod_with_a_notebook(store: Store) -> None:
    run_pod(store, ID, 0, pod_events())  # another executor: no notebook
    run_pod(store, ID, 2, [artifact("/runs/r2.ipynb", pod=f"{ID}-r2"), *pod_events(f"{ID}-r2")])
    assert Results(store).notebook("0123456") == "/runs/r2.ipynb"


def test_unknown_ambiguous_and_notebookless_pods_say_so_with_the_fix(store: Store) -> None:
    run_pod(store, ID, 0, pod_events())
    run_pod(store, OTHER, 1, [artifact("/runs/o1.ipynb", pod=f"{OTHER}-r1")])
    run_pod(store, OTHER, 2, [artifact("/runs/o2.ipynb", pod=f"{OTHER}-r2")])
    results = Results(store)
    with pytest.raises(KeyError, match=r"there is no pod 'beef' in saibench\.db: give a pod key \(identity-rREPEAT\) "
                                       r"or the start of a scenario identity; Results\.artifacts\(\) lists"):
        results.notebook("beef")
    with pytest.raises(ValueError, match=rf"'0123' starts 2 scenario identities \({ID}, {OTHER}\): give more of "
                                         r"the identity, or the pod key"):
        results.notebook("0123")
    with pytest.raises(KeyError, match=rf"no pod of scenario {ID} has a notebook: only pods run with "
                                       "executor='papermill' keep their executed notebook; run it again so"):
        results.notebook("01234")
    with pytest.raises(KeyError, match=rf"pod {ID}-r0 has no notebook: only pods run with executor='papermill'"):
        results.notebook(f"{ID}-r0")
    with pytest.raises(KeyError, match=rf"there is no pod '{ID}-r7'"):
        results.notebook(f"{ID}-r7")
    with pytest.raises(ValueError, match=rf"'0123f' has notebooks for repeats 1, 2: give the pod key, such as "
                                         rf"{OTHER}-r1"):
        results.notebook("0123f")


def test_the_summary_says_where_the_notebooks_are(store: Store) -> None:
    assert "executed notebook" not in repr(Results(store))
    run_pod(store, ID, 0, [artifact("/work/runs/a/r0.ipynb"), *pod_events()])
    run_pod(store, ID, 1, [artifact("/work/runs/a/r1.ipynb", pod=f"{ID}-r1"), *pod_events(f"{ID}-r1")])
    assert repr(Results(store)).splitlines()[1] == (
        "2 executed notebooks in /work/runs/a/ (.notebook(POD) gives one's location, .artifacts() lists them)")
