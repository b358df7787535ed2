"""executor="dask": pods as subprocesses on Dask workers, with the store and results of every other executor."""

from __future__ import annotations

import os
import threading
import time

import pytest
from distributed import Client, LocalCluster
from pods_helpers import doubling, write_data

from saibench_jupyter import discover
from saibench_jupyter.pods import ClusterError, Interpreter, Limits, cluster_machine, executor_class, run, specs_of
from saibench_jupyter.pods._dask import CONNECT, requests

#: A model that says which process started its pod, and one that prints, then works a while.
EXTRA = """
import os, time
import numpy as np
from saibench_jupyter.sail import *

def tell(x, what):
    if what == "parent":
        print(f"parent={os.getppid()}")
    if what == "halfway":
        print("halfway")
        time.sleep(2.5)
    return np.asarray(x, dtype=np.float64) * 2.0

@ModelDefinition
def Teller(task, inputType, outputType, what="parent"):
    if task != Solve: Fail("solves only")
    return Solver(lambda x: tell(x, what))

@HardwareDefinition
def OneGpu():
    return Resources(cpus=1, device="cuda")
"""


@pytest.fixture(scope="module")
def cluster():
    """Two single-thread workers on loopback, for the whole module."""
    from saibench_jupyter.pods._dask import _environ_kept

    with _environ_kept():  # Dask's nannies would leave OMP_NUM_THREADS=1 in this process for later tests
        made = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0")
    with made:
        yield made


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tellers(*what: str) -> list:
    lattice = discover(doubling(extra=EXTRA)[0].repository, model="Teller", hardware="OneCore",
                       params={"Teller.what": list(what)})
    return sorted(lattice.scenarios, key=lambda s: list(what).index(s.params["Teller.what"]))


def outcome(results) -> list[tuple]:
    frame = results.to_dataframe().sort_values("label")
    return [(row.label, row.status, None if row.value != row.value else row.value) for row in frame.itertuples()]


def test_pods_on_the_embedded_cluster_give_what_subprocess_pods_give(workdir):
    from saibench_jupyter.pods import close_embedded

    scenarios = doubling("ok", "print", "raise")
    before = dict(os.environ)
    try:
        on_dask = run(scenarios, executor="dask", jobs=2, store=workdir / "d.db", progress=False)
    finally:
        close_embedded()
    # Dask's nannies set OMP_NUM_THREADS=1 and more in the process that starts workers: not in ours.
    assert dict(os.environ) == before
    cold = run(scenarios, executor="subprocess", jobs=2, store=workdir / "s.db", progress=False)
    assert outcome(on_dask) == outcome(cold)
    assert on_dask.logs().message.tolist() == cold.logs().message.tolist()
    assert set(on_dask.logs().message) == {"a line from module code"}
    assert on_dask.failures().message.tolist() == ["RuntimeError: the solver blew up"]


def test_scheduler_may_be_a_cluster_a_client_or_an_address(workdir, cluster):
    (scenario,) = tellers("parent")
    with Client(cluster, set_as_default=False) as client:
        for i, scheduler in enumerate([cluster, client, cluster.scheduler_address]):
            results = run([scenario], executor="dask", scheduler=scheduler, store=workdir / f"{i}.db", progress=False)
            assert results.failures().empty
            (line,) = set(results.logs().message)  # once per record
            # The pod's parent is a worker of the cluster: never this process.
            assert line.startswith("parent=") and int(line.split("=")[1]) != os.getpid()


def test_an_unreachable_scheduler_is_a_clear_error_before_any_pod_starts(workdir):
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"the Dask scheduler at tcp://127.0.0.1:9 did not answer within 5 s"):
        run(doubling("ok"), executor="dask", scheduler="tcp://127.0.0.1:9", store=workdir / "u.db", progress=False)
    assert time.monotonic() - started < CONNECT + 5
    import sqlite3

    with sqlite3.connect(workdir / "u.db") as con:
        assert con.execute("select count(*) from pods").fetchone()[0] == 0


def test_workers_of_another_version_are_refused_before_any_pod(workdir, cluster, monkeypatch):
    monkeypatch.setattr("importlib.metadata.version", lambda name: "9.9.9")  # here only: workers are processes
    with pytest.raises(ClusterError, match=r"tcp://127.0.0.1:\d+ runs saibench_jupyter 0.1.0 on Python [\d.]+; "
                       r".*and this process saibench_jupyter 9.9.9 .*fix: install the same saibench_jupyter"):
        run(doubling("ok"), executor="dask", scheduler=cluster, store=workdir / "v.db", progress=False)


def test_scheduler_is_only_for_the_dask_executor():
    with pytest.raises(ValueError, match=r"scheduler='tcp://x:1' is for executor='dask' or 'papermill', not 'subprocess'"):
        run(doubling("ok"), executor="subprocess", scheduler="tcp://x:1", progress=False)


def test_hardware_no_worker_offers_is_rejected_with_the_cluster_as_the_reason(cluster):
    machine = cluster_machine(cluster)
    assert machine.gpus == 0 and machine.cpus >= 1 and machine.place.startswith("any worker of the Dask cluster")
    lattice = discover(doubling(extra=EXTRA)[0].repository, model="Teller", machine=machine)
    (reason,) = {r.reason for r in lattice.rejections if r.module == "OneGpu"}
    assert reason == (f"asks for 1 CUDA device(s), but none is visible on any worker of the Dask cluster at "
                      f"{cluster.scheduler_address}")


def test_pod_resources_become_requests_for_what_workers_advertise():
    assert requests({"cpus": 2}, {}) == {}  # workers that advertise nothing take any pod
    assert requests({"cpus": 2}, {"CPU": 4.0}) == {"CPU": 2.0}
    assert requests({"cpus": 1, "device": "cuda"}, {}) == {"GPU": 1.0}  # never on a worker without one
    assert requests({"cpus": 1, "device": "cuda", "gpus": 2}, {"GPU": 4.0}) == {"GPU": 2.0}


def test_event_lines_reach_the_controller_while_the_pod_runs(workdir, cluster):
    seen: list[tuple[float, dict]] = []
    results = run(tellers("halfway"), executor="dask", scheduler=cluster, store=workdir / "l.db",
                  progress=lambda event: seen.append((time.monotonic(), event)))
    assert results.failures().empty
    logged = next(t for t, e in seen if e.get("event") == "log" and "halfway" in str(e.get("message", e.get("lines"))))
    finished = next(t for t, e in seen if e.get("event") == "finished")
    assert finished - logged > 1.5  # the line came while the pod slept, not with its end


def test_cancel_kills_the_remote_pod_and_its_group(workdir, cluster):
    (spec,) = specs_of(doubling("sleep")[0], limits=Limits(timeout=120))
    executor = executor_class("dask")(1, scheduler=cluster)
    executor.start()
    try:
        future = executor.submit(spec, Interpreter("python", "current", None, False), lambda event: None)
        deadline = time.monotonic() + 60
        while not executor._remote and time.monotonic() < deadline:
            time.sleep(0.05)
        ((pid, _),) = executor._remote.values()
        threading.Timer(0.5, executor.cancel).start()
        ended = future.result(timeout=60)
        assert (ended.status, ended.kind) == ("failed", "interrupted")
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{pid}"), "the pod outlived its cancelled run"
    finally:
        executor.finish()


def test_an_environment_is_built_on_the_worker_and_one_that_cannot_be_fails_its_pods_only(workdir, cluster):
    missing = """
from saibench_jupyter.sail import *

@SoftwareDefinition
def Missing(hardware):
    return Environment(backend="numpy", pip=["saibench-no-such-package-xyz"])
"""
    scenarios = doubling("ok", extra=missing)
    results = run(scenarios, executor="dask", scheduler=cluster, store=workdir / "e.db", progress=False)
    failures = results.failures()
    assert list(failures.kind) == ["environment"]
    assert "saibench-no-such-package-xyz" in failures.message[0]
    assert set(results.to_dataframe().status) == {"ok", "failed"}
