"""``executor="dask"`` on real clusters: a "remote" one started as processes on loopback, a worker killed
mid-pod, a killed controller, what the embedded cluster listens on, TLS, and a dask-jobqueue cluster object.

Every test bounds its waits and ends the processes it started (the clusters' process groups, the
embedded cluster of this process).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import library
from pods_helpers import DOUBLING, doubling, first_finished, write_data

from saibench_jupyter.pods import run

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

#: The ODE problem's deterministic metrics (the times differ from run to run).
ODE_METRICS = ["ODEFunctionEvaluations", "ODEGridError"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def embedded():
    """The embedded cluster of this process, closed after the test (its worker processes with it)."""
    from saibench_jupyter.pods._dask import close_embedded

    close_embedded()
    yield
    close_embedded()


class Events(list):
    """A progress callback that keeps every event."""

    def __call__(self, event):
        self.append(event)

    def ran(self) -> list[str]:
        return sorted(e["label"] for e in self if e["event"] in ("finished", "failed"))


def _stop(proc: subprocess.Popen) -> None:
    """End ``proc`` and its process group: politely, then for good."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the nannies' workers, in the group too
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def remote_cluster(folder: Path, cpus: set[int] | None = None) -> Iterator[str]:
    """A scheduler and 2 single-thread workers started as separate processes on 127.0.0.1; its address.

    ``cpus``: the CPUs the workers may use (all of this process's by default).
    """
    from distributed import Client

    file = folder / "scheduler.json"
    procs: list[subprocess.Popen] = []
    with open(folder / "cluster.log", "ab") as log:
        try:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(file)],
                stdout=log, stderr=log, start_new_session=True))
            deadline = time.monotonic() + 60
            while not file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert file.exists(), (folder / "cluster.log").read_text()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--nworkers", "2", "--nthreads", "1",
                 "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(file)],
                stdout=log, stderr=log, start_new_session=True,
                preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus)))
            address = json.loads(file.read_text())["address"]
            with Client(address, timeout=10, set_as_default=False) as client:
                client.wait_for_workers(2, timeout=60)
            yield address
        finally:
            for proc in reversed(procs):
                _stop(proc)


def _pods_in(folder: Path) -> list:
    """The pod processes (``python -m saibench_jupyter.pods run -``, and their keepers) working in ``folder``."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "saibench_jupyter.pods" in (proc.info["cmdline"] or []) and Path(proc.cwd()) == folder:
                out.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _values(results) -> list[tuple]:
    frame = results.to_dataframe()
    frame = frame[frame.metric.isin(ODE_METRICS)]
    return sorted(zip(frame.label, frame.metric, frame.status, frame.value))


def test_sail_modules_scenarios_on_a_remote_cluster_equal_the_subprocess_executor(workdir):
    from saibench_jupyter import discover
    from saibench_jupyter.pods._dask import cluster_machine

    repo = library("stacks", "metrics", "ode")
    with remote_cluster(workdir) as address:
        machine = cluster_machine(address)
        assert address in machine.place and machine.cpus >= 1
        scenarios = discover(repo, problem="VanDerPolIVP", model="ODELSODA", software="SciPy", machine=machine,
                             params={"ODELSODA.tightest": [1e-3, 1e-5]}).scenarios
        assert len(scenarios) == 2
        events = Events()
        remote = run(scenarios, executor="dask", scheduler=address, jobs=2, store=workdir / "dask.db",
                     timeout=120, progress=events)
    local = run(scenarios, executor="subprocess", jobs=2, store=workdir / "local.db", timeout=120, progress=False)
    assert set(remote.to_dataframe().status) == {"ok"}
    # Sweeps of one and three tolerances: four points of two metrics.
    assert len(_values(remote)) == 8 and _values(remote) == _values(local)
    assert len(events.ran()) == 2


def test_a_worker_killed_mid_pod_fails_that_pod_alone_and_leaves_no_pod_process(workdir):
    scenarios = doubling("sleep", "ok", "slow")
    events = Events()
    outcome: dict = {}
    with remote_cluster(workdir) as address:
        def main():
            try:
                outcome["results"] = run(scenarios, executor="dask", scheduler=address, jobs=2,
                                         store=workdir / "s.db", timeout=60, progress=events)
            except BaseException as exc:  # shown by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=main, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while len(events.ran()) < 2 and time.monotonic() < deadline:  # the other two finished
            time.sleep(0.1)
        assert len(events.ran()) == 2, events
        found = _pods_in(workdir)  # the sleeping pod and its keeper (a child with the same command line)
        (pod,) = [p for p in found if p.ppid() not in {q.pid for q in found}]
        worker = pod.parent()
        assert "distributed" in " ".join(worker.cmdline()) or worker.name().startswith("python")
        worker.send_signal(signal.SIGKILL)
        thread.join(timeout=60)
        assert not thread.is_alive() and "error" not in outcome, outcome
        fails = outcome["results"].failures()
        assert list(fails.kind) == ["worker-lost"] and "mode='sleep'" in fails.label.iloc[0]
        assert fails.message.iloc[0].startswith("the Dask worker running the pod was lost")
        frame = outcome["results"].to_dataframe()
        assert sorted(frame[frame.status == "ok"].label.str.extract(r"mode='(\w+)'")[0]) == ["ok", "slow"]
        deadline = time.monotonic() + 15
        while _pods_in(workdir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _pods_in(workdir) == []  # neither the killed worker's pod nor one Dask started again


KILLED_CONTROLLER = """
import sys
sys.path.insert(0, {tests!r})
from pods_helpers import doubling
from saibench_jupyter.pods import run

if __name__ == "__main__":  # the cluster's worker processes import this file again
    scenarios = doubling("ok", "slow")
    run(scenarios, executor="dask", store="s.db", repeats=3, jobs=1, progress=False)
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_killing_the_controller_mid_run_loses_nothing_finished_and_the_next_run_resumes(workdir, embedded, how):
    script = workdir / "controller.py"
    script.write_text(KILLED_CONTROLLER.format(tests=str(DOUBLING.parents[1])))
    parent = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        db = workdir / "s.db"
        finished = first_finished(db, 90)
        if how == "SIGKILL":
            os.killpg(parent.pid, signal.SIGKILL)  # the controller, its cluster's workers, no clean-up
        else:
            os.kill(parent.pid, signal.SIGINT)  # Ctrl-C: the run stops its pods and closes the store
        assert parent.wait(timeout=60) != 0
    finally:
        _stop(parent)
    assert 1 <= finished < 6
    with sqlite3.connect(db) as con:
        stored = con.execute("select count(*) from pods where status = 'ok'").fetchone()[0]
        assert con.execute("select count(*) from pods where status = 'failed'").fetchone()[0] == 0
        if how == "SIGINT":
            assert con.execute("select status from runs").fetchall() == [("interrupted",)]
    deadline = time.monotonic() + 15
    while _pods_in(workdir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _pods_in(workdir) == []

    events = Events()
    results = run(doubling("ok", "slow"), executor="dask", store=db, repeats=3, jobs=1, progress=events)
    assert len(events.ran()) == 6 - stored
    assert sorted(results.to_dataframe().status) == ["ok"] * 6


def _listening(pids: set[int]) -> list[tuple[int, str, int]]:
    out = []
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                out.append((pid, conn.laddr.ip, conn.laddr.port))
    return out


def test_the_embedded_cluster_and_its_workers_listen_only_on_loopback(embedded):
    from saibench_jupyter.pods._dask import _embedded

    client = _embedded(2)
    workers = set(client.run(os.getpid).values())
    nannies = set(client.run(os.getppid).values())
    assert len(workers) == 2 and os.getpid() not in workers
    scheduler = client.scheduler_info()["address"]
    dashboard = int(client.dashboard_link.split(":")[2].split("/")[0])
    sockets = _listening({os.getpid(), *workers, *nannies})  # the scheduler and dashboard live in this process
    ports = {port for _, _, port in sockets}
    assert int(scheduler.rsplit(":", 1)[1]) in ports and dashboard in ports
    assert {pid for pid, _, _ in sockets} >= workers  # each worker serves (on loopback)
    assert [s for s in sockets if s[1] != "127.0.0.1"] == []


def test_a_tls_cluster_runs_pods_through_a_client_with_its_security(workdir):
    from distributed import Client, LocalCluster, Security

    from saibench_jupyter.pods._dask import _environ_kept

    security = Security.temporary()
    with _environ_kept():  # Dask's nannies would leave OMP_NUM_THREADS=1 in this process for later tests
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tls", host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", security=security)
    with cluster, Client(cluster, security=security, set_as_default=False) as client:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        results = run(doubling("ok"), executor="dask", scheduler=client, store=workdir / "s.db", progress=False)
        assert list(results.to_dataframe().status) == ["ok"]
        assert client.status == "running"  # a client passed in is the caller's: run() leaves it open


def test_a_dask_jobqueue_cluster_object_is_accepted_unchanged():
    import signal

    # Importing dask_jobqueue makes Ctrl-C exit the process (its runner module sets a SIGINT handler):
    # the handler goes back as it was.
    handler = signal.getsignal(signal.SIGINT)
    jobqueue = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (extra [dask])")
    signal.signal(signal.SIGINT, handler)
    from saibench_jupyter.pods._dask import ClusterError, check_versions, connect

    # No job is submitted: the cluster has a scheduler here and no worker yet.
    with jobqueue.SLURMCluster(cores=1, memory="1GB", processes=1,
                               scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}) as cluster:
        client, owned = connect(cluster, 1)
        try:
            assert owned and client.scheduler.address == cluster.scheduler_address
            with pytest.raises(ClusterError, match=r"the Dask cluster has no worker; fix: start workers"):
                check_versions(client)
        finally:
            client.close()
