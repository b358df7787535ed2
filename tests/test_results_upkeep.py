"""A store's upkeep: a WAL checkpoint makes the file whole, and an export is one self-contained file."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from test_results_store import ID, pod_events, run_pod

from saibench_jupyter.cli import main
from saibench_jupyter.results import Results, Store, StoreError


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
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'pods'").fetchall() == []
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
