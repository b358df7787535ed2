"""Pod leases: a run claims a pod before starting it; a live holder keeps it, a dead or silent one loses it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_results_store import ID, pod_events, run_pod

from saibench_jupyter.results import Claim, Store


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "saibench.db") as s:
        yield s


def leases(store: Store) -> list[tuple[str, int, int]]:
    return [tuple(r) for r in store._query("SELECT identity, repeat, run_id FROM leases ORDER BY repeat")[1]]


def test_a_pod_held_by_a_live_run_is_not_taken_and_its_result_is_used(store: Store) -> None:
    first, second = store.begin_run("local", 1), store.begin_run("local", 1)  # both controllers alive (this one)
    assert store.claim_pod(first, ID, 0, 60.0) == Claim(True)
    assert store.statuses() == {(ID, 0): "running"} and leases(store) == [(ID, 0, first)]
    held = store.claim_pod(second, ID, 0, 60.0)
    assert (held.taken, held.holder, held.status) == (False, first, "running")
    assert held.expires is not None and held.expires > time.time() + 50
    for event in pod_events():
        store.record(first, ID, 0, event)
    assert store.claim_pod(second, ID, 0, 60.0) == Claim(False, first, "ok")  # stored since: used, not rerun
    assert store.claim_pod(first, ID, 0, 60.0) == Claim(True)  # the holder itself may always start it again
    store.end_run(first, "finished")
    assert leases(store) == []  # a run's end drops its leases


def test_a_result_that_was_there_when_the_run_planned_is_run_again(store: Store) -> None:
    old = run_pod(store, ID, 0, pod_events())
    store.end_run(old, "finished")
    rerun = store.begin_run("local", 1)
    planned = store.owners()[(ID, 0)]
    assert planned == ("ok", old)
    assert store.claim_pod(rerun, ID, 0, 60.0, planned) == Claim(True)  # rerun=True asked for it again
    assert store.claim_pod(store.begin_run("local", 1), ID, 1, 60.0, None) == Claim(True)


def test_an_expired_lease_or_a_dead_controller_is_taken_over(store: Store) -> None:
    silent, gone, late = (store.begin_run("local", 1) for _ in range(3))
    assert store.claim_pod(silent, ID, 0, -1.0).taken  # already expired: its run stopped renewing it
    assert store.claim_pod(gone, ID, 1, 600.0).taken
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with store._transaction() as db:  # the controller of run `gone` is a process that has exited
        db.execute("UPDATE runs SET pid = ?, pid_start = NULL WHERE id = ?", (int(dead.stdout), gone))
    assert store.claim_pod(late, ID, 0, 60.0) == Claim(True)
    assert store.claim_pod(late, ID, 1, 60.0) == Claim(True)
    assert leases(store) == [(ID, 0, late), (ID, 1, late)]


def test_a_run_of_another_host_holds_its_lease_until_it_expires(store: Store) -> None:
    other, mine = store.begin_run("local", 1), store.begin_run("local", 1)
    with store._transaction() as db:  # its liveness cannot be checked from here: the lease's expiry decides
        db.execute("UPDATE runs SET host = 'elsewhere', pid = 1 WHERE id = ?", (other,))
    store.claim_pod(other, ID, 0, 600.0)
    assert store.claim_pod(mine, ID, 0, 60.0).status == "running"
    store.renew_leases(other, -1.0)  # as if it had stopped renewing: expired
    assert store.claim_pod(mine, ID, 0, 60.0) == Claim(True)
