"""A controller killed mid-run: its pods (and warm workers) die with it, and the store stays sound."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from .conftest import FAULTS, intact
from .test_faults import ISOLATED

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts processes through /proc")

CONTROLLER = """
import sys
from saibench_jupyter import Repository, discover
from saibench_jupyter.pods import run

repo = Repository()
repo.load({faults!r})
scenarios = discover(repo, params={{"Faulty.fault": [{fault!r}, "ok"]}}).scenarios
run(scenarios, executor={executor!r}, store="s.db", jobs=2, timeout=120, progress=False)
"""


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds:g} s", pytrace=False)
        time.sleep(0.05)


def stored_ok(store) -> bool:
    if not store.exists():
        return False
    try:
        with sqlite3.connect(store) as db:
            return db.execute("select count(*) from pods where status = 'ok'").fetchone()[0] == 1
    except sqlite3.OperationalError:
        return False  # the schema is being created


@pytest.mark.parametrize("fault", ["hang", "spin", "forkhang"])
@pytest.mark.parametrize("executor", ISOLATED)
def test_pods_die_with_a_killed_controller(workdir, census, executor, fault):
    script = CONTROLLER.format(faults=str(FAULTS), fault=fault, executor=executor)
    controller = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        # The faulty pod is in module code (sleeping, or spinning), the healthy one is stored.
        wait_for(lambda: any(p.name.startswith(f"{fault}.") for p in workdir.iterdir()), 60, "the faulty pod's start")
        wait_for(lambda: stored_ok(workdir / "s.db"), 60, "the healthy pod's result")
    finally:
        os.kill(controller.pid, signal.SIGKILL)  # the controller only: no clean-up of its own
        controller.wait()
    # The pod's timeout is 120 s: what remains now waits for nothing but the controller's death.
    left = census.left_after(10)
    assert not left, f"alive 10 s after the controller was killed: {census.describe(left)}"
    intact(workdir / "s.db")
    with sqlite3.connect(workdir / "s.db") as db:
        assert db.execute("select count(*) from pods where status = 'ok'").fetchone() == (1,)
