"""Opening a store: files that are not ours are left untouched, damaged stores say so with the fix, no descriptor left."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from test_results_store import ID, pod_events, run_pod

from saibench_jupyter.results import Results, Store, StoreError, rank

RESTORE = r"fix: restore it from a copy or an export"


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.mark.parametrize("tables", [("CREATE TABLE customers (name TEXT)",),
                                    ("CREATE TABLE meta (key TEXT, value TEXT)",
                                     "INSERT INTO meta VALUES ('colour', 'blue')")],
                         ids=["other-tables", "meta-without-version"])
def test_a_foreign_database_is_refused_and_left_exactly_as_it_was(tmp_path: Path, tables: tuple[str, ...]) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    for statement in tables:
        db.execute(statement)
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"other\.db (is an SQLite database of another program|has no usable "
                                         r"schema_version)"):
        Store(path)
    assert path.read_bytes() == before  # the header's journal mode included
    assert journal_mode(path) == "delete"
    assert not Path(f"{path}-wal").exists()


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A store of 30 finished pods, closed (everything in the file)."""
    path = tmp_path / "good.db"
    with Store(path) as s:
        s.add_scenario(ID, {"label": "L", "metrics": ["Accuracy"], "params": {"M.x": [1]}})
        run_id = s.begin_run("local", 1)
        for repeat in range(30):
            run_pod(s, ID, repeat, pod_events(f"{ID}-r{repeat}"), run_id)
        s.end_run(run_id, "finished")
    return path


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def scribble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096:12288] = bytes(range(256)) * 32  # two pages of b-tree overwritten
    path.write_bytes(bytes(data))


def sql(*statements: str) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        with sqlite3.connect(path) as db:
            for statement in statements:
                db.execute(statement)
    return change


@pytest.mark.parametrize(("damage", "message"), [
    (truncate, r"good\.db is a damaged SQLite file \(database disk image is malformed\); if it is a results "
               rf"store, {RESTORE}"),
    (scribble, r"good\.db is a damaged SQLite file \(database disk image is malformed\); if it is a results "
               rf"store, {RESTORE}"),
    (sql("DROP TABLE pods"), rf"good\.db is a SAIBench results store that lacks the table pods: it was changed by "
                             rf"hand or by another program\n  {RESTORE}"),
    (sql("UPDATE scenarios SET params = '{\"M.x\": [1'"), r"good\.db holds a damaged value in scenarios\.params: "
                                                          r"'\{\"M\.x\": \[1' is not JSON"),
    (sql("UPDATE points SET loss = 'low' WHERE repeat = 3"), r"good\.db holds a damaged value in points\.loss: "
                                                             rf"'low' is not a number; .*\n  {RESTORE}"),
    (sql("UPDATE metrics SET value = 'high' WHERE repeat = 3"), r"damaged value in metrics\.value: 'high'"),
    (sql("UPDATE scenarios SET metrics = '[Accuracy'"), r"good\.db holds a damaged value \(malformed JSON\)"),
], ids=["truncated", "garbage", "table-dropped", "json-column", "text-loss", "text-metric", "json-in-sql"])
def test_a_damaged_store_is_a_store_error_with_the_fix(stored: Path, damage: Callable[[Path], None],
                                                       message: str) -> None:
    damage(stored)

    def read() -> None:
        results = Results(stored)
        # A metric warning: warning_lines then reads scenarios' metrics through SQLite's json_each.
        results.store.record(1, ID, 0, {"event": "warning", "name": "Accuracy", "message": "m"})
        results.warning_lines()
        results.scenarios()
        results.to_dataframe()
        rank(results, "pareto")

    with pytest.raises(StoreError, match=message):
        read()


def test_running_out_of_file_descriptors_is_said_as_such(stored: Path) -> None:
    # A child with a 64-descriptor limit that holds all of them but a few, then opens the store.
    script = textwrap.dedent(f"""
        import os, resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        from saibench_jupyter.results import Results, StoreError
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        os.close(held.pop())  # one left: SQLite opens the file, then finds no descriptor for its -wal
        try:
            Results({str(stored)!r}).to_dataframe()
        except StoreError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    assert "too many open files (EMFILE): this process has all 64 file descriptors it may have open" in out.stdout
    assert "the store itself is fine; fix: raise the limit (`ulimit -n 4096`" in out.stdout
    assert "not a SAIBench results store" not in out.stdout and "move the file away" not in out.stdout
