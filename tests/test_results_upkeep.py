"""A store's upkeep: a WAL checkpoint makes the file whole, and an export is one self-contained file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest
from test_results_store import ID, pod_events, run_pod

from saibench_jupyter.cli import main
from saibench_jupyter.results import Results, Store, StoreError, StoreWarning


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "live" / "saibench.db") as s:
        s.add_scenario(ID, {"label": "L", "version": "abcdef0"})
        run_pod(s, ID, 0, pod_events())
        yield s


def alone(path: Path, folder: Path) -> Path:
    """``path`` copied by itself (no -wal, no -shm) into ``folder``."""
    folder.mkdir()
    return Path(shutil.copy(path, folder / path.name))


def test_without_a_checkpoint_the_file_alone_lacks_the_latest_writes(store: Store, tmp_path: Path) -> None:
    # What the user met: the results were in saibench.db-wal, and a copy of saibench.db had none of them.
    assert Path(f"{store.path}-wal").stat().st_size > 0
    copy = alone(store.path, tmp_path / "before")
    with sqlite3.connect(copy) as db:  # the schema and the run's start are in the file, the pod is not
        assert db.execute("SELECT count(*) FROM pods").fetchall() == [(0,)]
        assert db.execute("SELECT status FROM runs").fetchall() == [("running",)]
    assert store.checkpoint() is True
    assert Path(f"{store.path}-wal").stat().st_size == 0  # truncated: everything is in the file
    copy = alone(store.path, tmp_path / "after")
    assert len(Results(copy).to_dataframe()) == 4


def test_export_writes_one_file_that_reads_alone(store: Store, tmp_path: Path) -> None:
    results = Results(store)
    target = results.export(tmp_path / "out" / "results.db")
    assert target == tmp_path / "out" / "results.db"
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.db"]  # no -wal, no leftovers
    copy = alone(target, tmp_path / "elsewhere")
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    pd.testing.assert_frame_equal(Results(copy).to_dataframe(), results.to_dataframe())
    with pytest.raises(StoreError, match=r"results\.db already exists: pass another path, or overwrite=True"):
        results.export(target)
    run_pod(store, ID, 1, pod_events())
    assert len(Results(results.export(target, overwrite=True)).to_dataframe()) == 8
    with pytest.raises(StoreError, match=r"saibench\.db is the store itself: pass another path"):
        results.export(store.path)
    with pytest.raises(StoreError, match=r"is a folder: pass the path of the copy's file"):
        results.export(tmp_path)


def test_the_command_line_exports(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "shared.db"
    assert main(["export", str(store.path), str(target)]) == 0
    assert capsys.readouterr().out.startswith(f"{target}\n  a copy of {store.path} that needs no other file")
    assert len(Results(alone(target, tmp_path / "mail")).to_dataframe()) == 4
    assert main(["export", str(store.path), str(target)]) == 1
    assert "shared.db already exists" in capsys.readouterr().err
    assert main(["export", str(store.path), str(target), "--force"]) == 0
    assert main(["export", str(tmp_path / "missing.db"), str(tmp_path / "x.db")]) == 1
    assert "there is no results store at" in capsys.readouterr().err


def controller(path: Path, then: str) -> subprocess.Popen[str]:
    """Another process that runs one pod into the store at ``path``, says ``ready``, then does ``then``."""
    script = textwrap.dedent(f"""
        import os, sys
        from test_results_store import ID, pod_events, run_pod
        from saibench_jupyter.results import Store
        s = Store({str(path)!r})
        run_id = s.begin_run("local", 1)
        run_pod(s, ID, 0, pod_events(), run_id)
        print("ready", flush=True)
        sys.stdin.readline()
        {then}
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def test_a_copy_made_during_a_run_without_its_wal_says_it_may_lack_results(tmp_path: Path) -> None:
    live = tmp_path / "live" / "saibench.db"
    child = controller(live, 's.end_run(run_id, "finished"); s.close()')
    try:
        copy = alone(live, tmp_path / "during")
        with pytest.warns(StoreWarning, match=r"this copy of saibench\.db may lack results of run 1: it had not "
                                              r"ended when the file was last checkpointed, and there is no "
                                              r"saibench\.db-wal beside it .*fix: copy saibench\.db-wal with "
                                              r"saibench\.db while a run is going, or copy with .*\.export\(path\)"):
            results = Results(copy)
        assert len(results) == 0  # the pod is in the live store's -wal, not in the copy
        assert "⚠ this copy of saibench.db may lack results of run 1" in repr(results)
        results.store.close()
        with pytest.warns(StoreWarning, match="may lack results of run 1"):  # said to every later reader
            Results(copy).store.close()
    finally:
        child.communicate("\n", timeout=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run ended: its copy is whole, and nothing is said
        assert len(Results(alone(live, tmp_path / "after"))) == 1


def test_a_store_whose_controller_died_is_not_taken_for_an_incomplete_copy(tmp_path: Path) -> None:
    live = tmp_path / "saibench.db"
    controller(live, "os._exit(0)").communicate("\n", timeout=60)  # killed mid-run: its -wal stays
    assert Path(f"{live}-wal").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Store(live).close()  # reads the -wal, marks the dead run's pod interrupted, merges and removes the -wal
        assert not Path(f"{live}-wal").exists()
        assert Store(live).statuses() == {(ID, 0): "ok"}  # finished before the controller died
