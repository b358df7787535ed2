"""A pod's log through real pods: batched, bounded, its tail and its last partial line kept."""

from __future__ import annotations

import sqlite3
import textwrap

import pytest
from pods_helpers import doubling, write_data

from saibench_jupyter.pods import run


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def printing(body: str) -> list:
    """The scenario of a model ``Printer`` whose solver runs ``body`` (indented Python) on its first call."""
    extra = textwrap.dedent("""
        import time
        from saibench_jupyter.sail import *
        _calls = []

        def speak(x):
            _calls.append(1)
            if len(_calls) == 1:
        {body}
            return x * 2.0

        @ModelDefinition
        def Printer(task, inputType, outputType):
            if task != Solve: Fail("solves only")
            return Solver(speak)
    """).format(body=textwrap.indent(textwrap.dedent(body), " " * 8))
    return [s for s in doubling("ok", extra=extra) if "Printer" in s.label]


def logs(store) -> list[tuple[str, str]]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT level, message FROM logs ORDER BY id").fetchall()


def test_a_million_printed_lines_keep_the_first_and_last_lines_and_the_pod_ok(workdir):
    scenarios = printing("""
        for i in range(1_000_000):
            print(f"line {i}")
        print("the last line", end="")
    """)
    # Unbatched, the store took a row per line and the pod blocked on its pipe until the timeout struck.
    results = run(scenarios, store=workdir / "s.db", timeout=30, progress=False)
    assert list(results.to_dataframe().status) == ["ok"]
    rows = logs(workdir / "s.db")
    assert len(rows) == 10_000 + 1  # the budget (9,000 first lines, 1,000 last ones) and the note
    assert rows[:2] == [("info", "line 0"), ("info", "line 1")] and rows[8999] == ("info", "line 8999")
    note = rows[9000]
    assert note[0] == "warning"
    assert note[1].startswith("… 990,001 lines (10.3 MiB) dropped; the last 1,000 lines follow (a pod's log keeps "
                              "10,000 lines and 1.0 MiB: run(log_lines=..., log_bytes=...) keeps more)")
    assert rows[9001] == ("info", "line 999001") and rows[-1] == ("info", "the last line")
    assert results.logs().message.iloc[-1] == "the last line"


@pytest.mark.parametrize("executor", ["subprocess", "warm"])
def test_text_printed_without_a_newline_is_kept(workdir, executor):
    scenarios = printing("""
        print("tail", end="")
    """)
    run(scenarios, executor=executor, store=workdir / "s.db", progress=False)
    assert logs(workdir / "s.db") == [("info", "tail")]


def test_a_failing_module_keeps_its_last_partial_line_before_the_failure(workdir):
    scenarios = printing("""
        print("step 1 ... ", end="")
        raise RuntimeError("step 1 broke")
    """)
    results = run(scenarios, store=workdir / "s.db", progress=False)
    assert list(results.failures().message) == ["RuntimeError: step 1 broke"]
    assert logs(workdir / "s.db") == [("info", "step 1 ... ")]


def test_a_pod_killed_for_its_timeout_still_leaves_its_last_lines(workdir):
    scenarios = printing("""
        for i in range(5_000):
            print(f"line {i}")
        print("hanging now", end="")
        time.sleep(60)
    """)
    results = run(scenarios, store=workdir / "s.db", timeout=3, log_lines=100, progress=False)
    assert list(results.failures().kind) == ["timeout"]
    rows = logs(workdir / "s.db")
    # Shortly before the kill the pod sends what it holds: the tail, the partial line, the note.
    assert len(rows) == 100 + 1 and rows[89] == ("info", "line 89")
    assert rows[90][1].startswith("… 4,901 lines (") and rows[90][1].endswith("follow (a pod's log keeps 100 lines "
                                                                              "and 1.0 MiB: run(log_lines=..., "
                                                                              "log_bytes=...) keeps more)")
    assert rows[91] == ("info", "line 4991") and rows[-1] == ("info", "hanging now")


def test_the_byte_budget_cuts_long_lines_and_keeps_the_last_ones(workdir):
    scenarios = printing("""
        print("x" * 5_000, end="")  # one line of 5,000 characters, never ended
        for i in range(100):
            print(f"line {i}")
    """)
    run(scenarios, store=workdir / "s.db", log_bytes=2_000, progress=False)
    rows = logs(workdir / "s.db")
    # A tenth of the budget (200 bytes) is the tail, and no piece of a line is longer.
    assert rows[0] == ("info", "x" * 200) and rows[8] == ("info", "x" * 200)
    assert rows[9][0] == "warning" and rows[9][1].startswith("… ")
    assert rows[-1] == ("info", "line 99")
    assert sum(len(m) for level, m in rows if level == "info") <= 2_000


def test_a_child_forked_by_module_code_logs_its_own_lines_only(workdir):
    scenarios = printing("""
        import os, sys
        print("parent 1")  # held in the parent's batch when it forks
        pid = os.fork()
        if pid == 0:
            print("child")
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent 2")
    """)
    run(scenarios, store=workdir / "s.db", progress=False)
    assert sorted(m for _, m in logs(workdir / "s.db")) == ["child", "parent 1", "parent 2"]
