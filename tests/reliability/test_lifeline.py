"""A pod's own guards, with no executor to help: its parent, its deadline, its readers, its keeper.

Each pod here forks a child and then sleeps (``forkhang``): the pod must end and take
the child with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from saibench_jupyter.pods import Interpreter, Limits, executor_class, specs_of
from saibench_jupyter.pods._lifeline import ABANDONED, DEADLINE_VARIABLE, PARENT_VARIABLE
from saibench_jupyter.pods._worker import IDLE_VARIABLE

from .conftest import BOUND, bounded, faulty

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts processes through /proc")


def spec_json(fault: str) -> str:
    (spec,) = specs_of(faulty(fault)[0], limits=Limits(timeout=120))
    return spec.to_json()


def pod(env: dict[str, str], stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """A pod started as the executors start one: in its own session, the spec on stdin."""
    proc = subprocess.Popen([sys.executable, "-m", "saibench_jupyter.pods", "run", "-"], stdin=subprocess.PIPE,
                            stdout=stdout, stderr=subprocess.PIPE, env={**os.environ, **env}, start_new_session=True)
    proc.stdin.write(spec_json("forkhang").encode())
    proc.stdin.close()
    return proc


def announced(workdir, fault: str = "forkhang") -> int:
    """The pid of the pod once its module code runs."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        found = [p for p in workdir.iterdir() if p.name.startswith(f"{fault}.")]
        if found:
            return int(found[0].name.split(".")[1])
        time.sleep(0.05)
    pytest.fail(f"the pod did not start its module code within {BOUND:g} s", pytrace=False)


def test_a_pod_whose_parent_is_already_gone_does_not_run(workdir, census):
    # Its parent is not the one the executor named: the executor died before the pod armed the parent-death signal.
    done = subprocess.run([sys.executable, "-m", "saibench_jupyter.pods", "run", "-"], input=spec_json("ok"),
                          capture_output=True, text=True, timeout=120, env={**os.environ, PARENT_VARIABLE: "1"})
    assert (done.returncode, done.stdout) == (ABANDONED, "")


def test_a_pod_past_its_deadline_ends_itself_and_its_children(workdir, census):
    with pod({DEADLINE_VARIABLE: "2"}) as proc:
        announced(workdir)
        assert bounded(lambda: proc.wait(), BOUND, "a pod past its deadline") == -signal.SIGKILL
        assert "still running 2 s after it started (its time limit and grace)" in proc.stderr.read().decode()
    assert not census.left_after(2), census.describe(census.alive())


def test_a_pod_nobody_reads_ends_itself_and_its_children(workdir, census):
    with pod({}, stdout=subprocess.PIPE) as proc:
        announced(workdir)
        proc.stdout.close()  # the controller is gone
        assert bounded(lambda: proc.wait(), BOUND, "a pod with no reader") == -signal.SIGKILL
        assert "nobody reads its events any more" in proc.stderr.read().decode()
    assert not census.left_after(2), census.describe(census.alive())


def test_a_pod_killed_outright_leaves_no_child_behind(workdir, census):
    # SIGKILL (the out-of-memory killer, the parent-death signal) gives the pod no chance to
    # kill its children: its keeper does.
    with pod({PARENT_VARIABLE: str(os.getpid())}) as proc:
        os.kill(announced(workdir), signal.SIGKILL)
        assert proc.wait(timeout=BOUND) == -signal.SIGKILL
    assert not census.left_after(5), census.describe(census.alive())


def test_an_idle_warm_worker_exits_and_the_next_pod_starts_another(workdir, census, monkeypatch):
    monkeypatch.setenv(IDLE_VARIABLE, "0.5")
    specs = specs_of(faulty("ok")[0], repeats=2, limits=Limits(timeout=60))
    here = Interpreter(sys.executable, "current", None, False)
    executor = executor_class("warm")(1)
    executor.start()
    try:
        first = executor.submit(specs[0], here, lambda event: None).result(timeout=BOUND)
        assert first.status == "ok"
        assert not census.left_after(10), f"the idle worker is still there: {census.describe(census.alive())}"
        second = executor.submit(specs[1], here, lambda event: None).result(timeout=BOUND)
        assert second.status == "ok"
    finally:
        executor.finish()
    assert not census.left_after(5), census.describe(census.alive())


def test_a_warm_worker_nobody_reads_kills_its_pods_and_exits(workdir, census):
    with subprocess.Popen([sys.executable, "-m", "saibench_jupyter.pods", "serve"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True) as worker:
        worker.stdin.write(f'{{"spec": {spec_json("forkhang")}, "stderr": null}}\n'.encode())
        worker.stdin.flush()
        announced(workdir)
        worker.stdout.close()  # the controller is gone (its stdin stays open)
        assert bounded(lambda: worker.wait(), BOUND, "a worker with no reader") == ABANDONED
        assert "nobody reads its output any more" in worker.stderr.read().decode()
    assert not census.left_after(5), census.describe(census.alive())
