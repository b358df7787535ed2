"""Shared by the fault-injection tests: faulty scenarios, bounded calls, and a census of the processes a test started.

Every process a test starts carries a marker in its environment (pods inherit the
controller's, and whatever a pod forks inherits the pod's): a live process with the
marker after the run is an orphan. Slow cases (``@pytest.mark.slow``) run with
``-m slow``; the quick ones run with the suite.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pods_helpers import SAIL, write_data

from saibench_jupyter import Repository, discover

FAULTS = SAIL / "reliability_faults.py"
MARK = "SAIBENCH_RELIABILITY_MARK"
#: Seconds a run with healthy and faulty pods may take here (a pod takes well under one on
#: an idle machine); timeouts in these tests are longer, so a run that waits for one fails.
BOUND = 20.0

_REPOSITORIES: list[Repository] = []


def faulty(*faults: str) -> list[Any]:
    """The scenarios of ``Faulty`` with these faults (``"ok"`` is a healthy pod), by fault."""
    repo = Repository()
    _REPOSITORIES.append(repo)  # scenarios hold their repository weakly
    repo.load(FAULTS)
    scenarios = discover(repo, params={"Faulty.fault": list(faults)}).scenarios
    return sorted(scenarios, key=lambda s: list(faults).index(s.params["Faulty.fault"]))


def fault_of(label: str) -> str:
    return label.split("fault='")[1].split("'")[0]


def bounded(call: Callable[[], Any], seconds: float, what: str) -> Any:
    """``call()``, failing the test if it has not returned after ``seconds`` (it is left to the clean-up)."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(call())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} did not return within {seconds:g} s", pytrace=False)
    if errors:
        raise errors[0]
    return out[0]


def intact(store: Path) -> None:
    """The store passes SQLite's own integrity check."""
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _our_probe(pid: str) -> bool:
    """True for this process's own probe process: discovery's helper lives as long as we do, by design."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return parent == os.getpid() and b"saibench_jupyter.sail._probe_worker" in command


class Census:
    """The live processes carrying this test's marker."""

    def __init__(self, mark: str) -> None:
        self.needle = f"{MARK}={mark}".encode()

    def alive(self) -> list[int]:
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid() or _our_probe(name):
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:  # empty for a zombie
                    if self.needle in f.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                continue
        return found

    def left_after(self, seconds: float) -> list[int]:
        """The marked processes still alive ``seconds`` from now (returns as soon as there are none)."""
        deadline = time.monotonic() + seconds
        while (alive := self.alive()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return alive

    def describe(self, pids: list[int]) -> str:
        lines = []
        for pid in pids:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            lines.append(f"{pid}: {command}")
        return "; ".join(lines)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def census(monkeypatch: pytest.MonkeyPatch) -> Iterator[Census]:
    """Marks every process this test starts; kills (by pid) any still alive at the end."""
    mark = uuid.uuid4().hex
    monkeypatch.setenv(MARK, mark)
    found = Census(mark)
    yield found
    for pid in found.alive():  # a failed case's leftovers: not the next test's problem
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
