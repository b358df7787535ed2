"""The fault matrix: each fault beside a healthy pod, under every executor the project has.

For each case: the run returns (bounded), the faulty pod failed with the right kind, the
healthy pod is stored with its metric, no process the run started is left, and the store
passes SQLite's integrity check.
"""

from __future__ import annotations

import sys

import pytest

from saibench_jupyter.pods import available, executor_class, run

from .conftest import BOUND, bounded, fault_of, faulty, intact

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts processes through /proc")

EXECUTORS = sorted(available())
ISOLATED = [name for name in EXECUTORS if executor_class(name).isolated]
#: fault -> (failure kind, the start of its message)
FAILURES = {
    "raise": ("error", "RuntimeError: the solver blew up"),
    "exit": ("exit", "the pod exited with status 3 before reporting a result"),
    "kill": ("signal", "the pod was killed by SIGKILL"),
    "segfault": ("signal", "the pod was killed by SIGSEGV"),
    "hang": ("timeout", "the pod ran past its 2 s time limit and was killed with its children"),
    "memory": ("memory", "out of memory: Unable to allocate 8.00 GiB"),
}
#: A notebook pod's kernel dies where a pod process would exit or be killed; its time limit strikes in a cell.
NOTEBOOK = {
    "exit": ("kernel-died", "the kernel died (exit status 3) while running cell "),
    "kill": ("kernel-died", "the kernel died (killed by SIGKILL) while running cell "),
    "segfault": ("kernel-died", "the kernel died (killed by SIGSEGV) while running cell "),
    "hang": ("timeout", "the pod ran past its 2 s time limit in cell "),
}
#: Faults the inline executor can survive: it runs pods in the caller's process, unisolated by design.
INLINE = {"raise"}
CASES = [(executor, fault) for executor in EXECUTORS for fault in sorted(FAILURES)
         if executor in ISOLATED or fault in INLINE]


@pytest.fixture
def cluster_first(executor: str) -> None:
    """The dask executor keeps its embedded cluster for the runs that follow: started before the census,
    its processes are not counted as what the run left behind."""
    if executor == "dask":
        from saibench_jupyter.pods._dask import _embedded

        _embedded(2)


def run_with(executor: str, fault: str, workdir, timeout: float, bound: float = BOUND):
    """Run the faulty pod and a healthy one, two at a time; the run must return within ``bound`` seconds."""
    return bounded(lambda: run(faulty(fault, "ok"), executor=executor, store=workdir / "s.db", jobs=2,
                               timeout=timeout, memory="512MB", progress=False),
                   bound, f"run() with a pod that does {fault!r} ({executor} executor)")


def by_fault(results) -> dict:
    frame = results.to_dataframe()
    return {fault_of(row.label): row for row in frame.itertuples()}


def healthy(rows: dict) -> None:
    assert rows["ok"].status == "ok" and rows["ok"].metric == "Gap" and rows["ok"].value == 0.0


@pytest.mark.parametrize(("executor", "fault"), CASES)
def test_a_fault_fails_its_own_pod_and_nothing_else(cluster_first, workdir, census, executor, fault):
    # Long enough that a run waiting for it (not for its pods) would miss the bound.
    timeout = 2 if fault == "hang" else 60
    results = run_with(executor, fault, workdir, timeout)
    rows = by_fault(results)
    healthy(rows)
    kind, message = NOTEBOOK.get(fault, FAILURES[fault]) if executor == "papermill" else FAILURES[fault]
    failure = results.failures().set_index("label").loc[rows[fault].label]
    assert (rows[fault].status, failure.kind) == ("failed", kind)
    assert failure.message.startswith(message)
    assert not census.left_after(2), census.describe(census.alive())
    intact(workdir / "s.db")


@pytest.mark.parametrize("executor", ISOLATED)
def test_a_forked_child_neither_holds_the_run_nor_outlives_it(cluster_first, workdir, census, executor):
    # The child sleeps 40 s holding the pod's stdout; the run must end with its pods, not
    # with the child (40 s) nor at the timeout (60 s), and take the child with it.
    results = run_with(executor, "fork", workdir, timeout=60)
    rows = by_fault(results)
    healthy(rows)
    assert rows["fork"].status == "ok"
    assert not census.left_after(2), census.describe(census.alive())
    intact(workdir / "s.db")


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_flood_of_output_neither_hangs_the_run_nor_loses_the_other_pods(cluster_first, workdir, census, executor):
    results = run_with(executor, "flood", workdir, timeout=300, bound=300)  # 200,000 lines of print
    healthy(by_fault(results))
    assert not census.left_after(2), census.describe(census.alive())
    intact(workdir / "s.db")
