"""Warm pods, the default executor: what a worker imports before forking, recycling, a worker's death, unsafe forks."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from pods_helpers import COUNTED, DOUBLING, counted, write_data

from saibench_jupyter import Repository, discover
from saibench_jupyter.pods import executor_class, run
from saibench_jupyter.pods._warm import MB_VARIABLE, PODS_VARIABLE

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="warm workers fork")

# Module code that says where it runs: the worker that forked it (its parent), whether PyTorch was
# imported before this source was loaded, or it blocks until the test kills its worker.
PROBE = '''
import os, sys, time
import numpy as np
from saibench_jupyter.sail import *

PRELOADED = "torch" in sys.modules

def probe(x, what):
    if what == "block":
        with open(f"blocked.{os.getppid()}.{os.getpid()}", "w"):
            pass
        for _ in range(1200):  # 60 s at most: the test kills the worker long before
            time.sleep(0.05)
    print(f"parent={os.getppid()} preloaded={PRELOADED}")
    return np.asarray(x, dtype=np.float64) * 2.0

@ModelDefinition
def Probe(task, inputType, outputType, what="parent"):
    if task != Solve: Fail("solves only")
    return Solver(lambda x: probe(x, what))

'''
# A torch model that says the same (PyTorch imported before this module's own import, or not).
TORCH_PROBE = '''
import os, sys
from saibench_jupyter.sail import *

PRELOADED = "torch" in sys.modules
import torch

class Twice(torch.nn.Module):
    def forward(self, x):
        print(f"parent={os.getppid()} preloaded={PRELOADED}")
        return x * 2.0

@ModelDefinition
def TorchProbe(task, inputType, outputType):
    if task != Solve: Fail("solves only")
    return TorchModule(Twice())

@SoftwareDefinition
def Torch(hardware):
    return Environment(backend="torch", pip=["torch"])
'''
# A capability declaration (evaluated wherever the source is loaded, the warm worker included) that
# starts a native thread (not a threading.Thread), as a library's thread pool would: forking after
# that is no longer safe.
THREADED = PROBE + '''
class Sleepy(Capability):
    thread = __import__("_thread").start_new_thread(__import__("time").sleep, (30,))
'''
# SciPy's own OpenBLAS starts a pool of its own when the worker loads this: safe to fork.
WITH_SCIPY = PROBE + "import scipy.integrate, scipy.linalg\n"
# A model that uses both OpenBLAS pools, then says how many OS threads its pod has beside Python's.
THREADS = WITH_SCIPY + '''
import threading

def count(x):
    scipy.linalg.solve(np.eye(200) * 2.0, np.ones(200)) @ (np.ones((200, 200)) @ np.ones(200))
    print(f"native={len(os.listdir('/proc/self/task')) - len(threading.enumerate())}")
    return np.asarray(x, dtype=np.float64) * 2.0

@ModelDefinition
def Counter(task, inputType, outputType):
    if task != Solve: Fail("solves only")
    return Solver(count)
'''
_REPOSITORIES: list[Repository] = []


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def probes(*what: str, source: str = PROBE) -> list:
    """The doubling problem solved by ``Probe(what=...)`` (or by ``TorchProbe``, given ``TORCH_PROBE``)."""
    repo = Repository()
    _REPOSITORIES.append(repo)  # scenarios hold their repository weakly
    repo.load(DOUBLING)
    repo.add_source(source, origin="<cell probe>")
    if source is TORCH_PROBE:
        return discover(repo, model="TorchProbe").scenarios
    lattice = discover(repo, model="Probe", params={"Probe.what": list(what)})
    return sorted(lattice.scenarios, key=lambda s: list(what).index(s.params["Probe.what"]))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def what(label: str) -> str:
    return re.search(r"what='(\w+)'", label).group(1)


def printed(results) -> dict[tuple[str, int], set[str]]:
    """(label, repeat) -> the distinct lines its pod printed."""
    out: dict[tuple[str, int], set[str]] = {}
    for row in results.logs().itertuples():
        out.setdefault((row.label, row.repeat), set()).add(row.message)
    return out


def test_torch_pods_fork_from_a_worker_that_imported_torch_and_numpy_pods_from_one_that_did_not(workdir):
    pytest.importorskip("torch")
    scenarios = [*probes(source=TORCH_PROBE), *probes("parent")]
    cold = printed(run(scenarios, executor="subprocess", store=workdir / "s.db", progress=False))
    assert sorted(next(iter(v)).split()[1] for v in cold.values()) == ["preloaded=False"] * 2
    warm = run(scenarios, store=workdir / "s.db", rerun=True, progress=False)  # the default executor
    assert warm.failures().empty
    lines = {label.split(" × ")[2]: lines for (label, _), lines in printed(warm).items()}
    (torch_line,), (numpy_line,) = lines["Torch"], lines["NumPy"]
    assert torch_line.endswith("preloaded=True") and numpy_line.endswith("preloaded=False")
    assert torch_line.split()[0] != numpy_line.split()[0]  # two workers: a fork of torch's costs ~20× more


def test_a_worker_is_recycled_after_its_pods(workdir, monkeypatch):
    monkeypatch.setenv(PODS_VARIABLE, "2")
    results = run(probes("parent"), store=workdir / "s.db", repeats=5, progress=False)
    assert results.failures().empty
    parents = [next(iter(lines)).split()[0] for _, lines in sorted(printed(results).items())]
    assert len(parents) == 5
    assert sorted(parents.count(p) for p in set(parents)) == [1, 2, 2]  # forked by three workers in turn


def test_recycling_needs_a_sensible_limit():
    with pytest.raises(ValueError, match=r"recycle_pods=0, recycle_mb=512: a worker must run at least one pod"):
        executor_class("warm")(1, recycle_pods=0)


def test_a_killed_worker_fails_its_running_pod_keeps_what_finished_and_a_new_worker_runs_the_rest(workdir):
    scenarios = probes("parent", "block", "after")
    out: list = []
    runner = threading.Thread(target=lambda: out.append(run(scenarios, jobs=1, store=workdir / "s.db",
                                                            progress=False)), daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while not (blocked := list(workdir.glob("blocked.*"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert blocked, "the blocking pod never started"
    worker, pod = map(int, blocked[0].name.split(".")[1:])
    os.kill(worker, signal.SIGKILL)
    runner.join(60)
    assert not runner.is_alive(), "the run did not end after its worker was killed"
    results = out[0]
    frame = results.to_dataframe()
    status = {what(row.label): row.status for row in frame.drop_duplicates("label").itertuples()}
    assert status == {"parent": "ok", "block": "failed", "after": "ok"}
    failure = results.failures().iloc[0]
    assert failure.kind == "worker"
    assert failure.message == ("the warm worker running the pod died (killed by SIGKILL), and the pod with it; "
                               "what it reported before is kept")
    assert frame[frame.label.map(what) == "parent"].value.tolist() == [0.0]  # the finished pod's metric
    lines = {what(label): v for (label, _), v in printed(results).items()}
    first, after = lines["parent"], lines["after"]
    assert first == {f"parent={worker} preloaded=False"}
    assert len(after) == 1 and f"parent={worker} " not in next(iter(after))  # a new worker
    assert not alive(pod)  # the pod died with its worker


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts a process's threads through /proc")
def test_a_pod_whose_module_code_made_forking_unsafe_runs_cold_and_says_why(workdir):
    results = run(probes("parent", source=THREADED), store=workdir / "s.db", progress=False)
    assert results.failures().empty
    logs = results.logs().message.tolist()
    assert logs[0] == ("saibench: this pod ran cold: a library started 1 thread(s) in the warm worker while module "
                       "code was loaded (a thread pool, e.g. PyTorch's after an operation), and forking then can "
                       "hang the pod")
    assert set(logs[1:]) == {f"parent={os.getpid()} preloaded=False"}  # a cold pod: this process started it


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts a process's threads through /proc")
def test_module_code_that_loads_scipy_keeps_its_pods_warm(workdir):
    pytest.importorskip("scipy")
    results = run(probes("parent", "after", source=WITH_SCIPY), jobs=1, store=workdir / "s.db", progress=False)
    assert results.failures().empty
    lines = printed(results)
    assert not [line for found in lines.values() for line in found if "ran cold" in line]
    parents = {line for found in lines.values() for line in found}
    # Both pods forked from one worker, not started by this process.
    assert len(parents) == 1 and parents != {f"parent={os.getpid()} preloaded=False"}


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts a process's threads through /proc")
def test_a_warm_pod_on_one_cpu_starts_no_blas_thread_as_a_cold_pod(workdir):
    # BLAS threads the worker's pools would start in the pod spin beside its model on its one CPU.
    pytest.importorskip("scipy")
    repo = Repository()
    _REPOSITORIES.append(repo)
    repo.load(DOUBLING)
    repo.add_source(THREADS, origin="<cell threads>")
    scenarios = discover(repo, model="Counter").scenarios
    natives = {}
    for executor in ("warm", "subprocess"):
        results = run(scenarios, executor=executor, store=workdir / f"{executor}.db", progress=False)
        natives[executor] = {line for found in printed(results).values() for line in found if "native=" in line}
    assert natives["warm"] == natives["subprocess"] == {"native=0"}


def test_pods_run_cold_when_their_worker_cannot_start(workdir, monkeypatch):
    site = workdir / "site"
    site.mkdir()
    # Every Python process here loads it: the worker (`pods serve`) dies at once, cold pods (`pods run`) don't.
    (site / "sitecustomize.py").write_text('import os, sys\nif sys.argv[1:2] == ["serve"]:\n'
                                           '    print("no worker today", file=sys.stderr)\n    os._exit(3)\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    results = run(probes("parent"), store=workdir / "s.db", repeats=2, jobs=1, progress=False)
    assert results.failures().empty
    logs = results.logs()
    cold = "saibench: this pod ran cold: the warm worker could not start (exited with status 3): no worker today"
    for repeat in (0, 1):  # the second pod did not try another worker: it knew
        lines = logs[logs.repeat == repeat].message.tolist()
        assert lines[0] == cold and set(lines[1:]) == {f"parent={os.getpid()} preloaded=False"}



def test_a_worker_parses_the_sources_of_a_run_once_for_all_its_scenarios(workdir, monkeypatch):
    # Parsing the sources is most of a rebuild, and a worker rebuilds each scenario before forking it.
    from pods_helpers import doubling

    from saibench_jupyter.pods import Limits, specs_of
    from saibench_jupyter.pods._worker import _Prepared

    specs = [spec for s in doubling("ok", "slow", "print") for spec in specs_of(s, limits=Limits(timeout=60))]
    parsed = []
    add_source = Repository.add_source
    monkeypatch.setattr(Repository, "add_source", lambda self, text, origin=None, **kw: (
        parsed.append(origin), add_source(self, text, origin, **kw))[1])
    prepared = _Prepared({})
    rebuilt = [prepared.scenario(spec) for spec in specs]
    assert all(r is not None for r in rebuilt)
    assert [r.plan.id for r in rebuilt] == [spec.scenario for spec in specs]
    assert parsed == [origin for origin, _ in specs[0].sources]  # once, not once per scenario


def test_a_worker_runs_the_support_code_and_loads_the_data_once_for_all_its_pods(workdir):
    scenarios = counted()
    warm = run(scenarios, jobs=1, store=workdir / "s.db", progress=False)
    assert warm.failures().empty
    assert set(warm.to_dataframe().value) == {0.0}  # each pod counted in its own copy of CALLS
    assert (workdir / "support.log").read_text().count("ran") == 1
    assert (workdir / "loads.log").read_text().count("loaded") == 1
    cold = run(scenarios, executor="subprocess", jobs=1, store=workdir / "s.db", rerun=True, progress=False)
    assert set(cold.to_dataframe().value) == {0.0}  # the same results, paying for each pod
    assert (workdir / "support.log").read_text().count("ran") == 1 + 3
    assert (workdir / "loads.log").read_text().count("loaded") == 1 + 3


def test_pods_of_sources_that_register_one_dataset_name_each_read_their_own(workdir):
    # One worker runs both sources' support code: each pod must see the provider its own sources registered.
    scenarios = [*counted(1.0, "A", ks=(1,)), *counted(2.0, "B", ks=(1,)), *counted(1.0, "A", ks=(2,))]
    results = run(scenarios, jobs=1, store=workdir / "s.db", progress=False)
    assert results.failures().empty
    assert set(results.to_dataframe().value) == {0.0}


def test_support_code_that_fails_in_the_worker_is_reported_by_each_pod(workdir):
    broken = COUNTED.format(value=1.0, tag="", ballast=0).replace("CALLS = []", "CALLS = []\nraise RuntimeError('no data today')")
    repo = Repository()
    _REPOSITORIES.append(repo)
    repo.add_source(broken, origin="<cell broken>")
    results = run(discover(repo, params={"Counter.k": [1, 2]}).scenarios, store=workdir / "s.db", progress=False)
    failures = results.failures()
    assert len(failures) == 2
    assert set(failures.message) == {"the support code of <cell broken> raised RuntimeError: no data today"}


def test_a_prepared_worker_ends_with_its_executor():
    ex = executor_class("warm")(1)
    ex.prepare()  # what `saibench run` does before discovery
    (worker,) = ex._workers.values()
    ex.finish()
    assert worker.proc.wait(10) is not None


def test_a_worker_keeps_the_data_it_loaded_and_is_recycled_for_growth_past_them(workdir, monkeypatch):
    monkeypatch.setenv(MB_VARIABLE, "48")
    one = run(counted(tag="A", ballast=64), jobs=1, store=workdir / "s.db", progress=False)
    assert one.failures().empty
    assert (workdir / "loads.log").read_text().split() == ["loadedA"]  # 64 MiB of data, no recycling
    (workdir / "loads.log").unlink()
    # B's data grow the worker that holds A's by 64 MiB: it is let go after B's first pod.
    two = run([*counted(tag="A", ballast=64, ks=(1, 2)), *counted(tag="B", ballast=64, ks=(1, 2))], jobs=1,
              store=workdir / "t.db", progress=False)  # a fresh store: no durations, so pods go in this order
    assert two.failures().empty
    assert (workdir / "loads.log").read_text().split() == ["loadedA", "loadedB", "loadedB"]
