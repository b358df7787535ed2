#!/usr/bin/env python
"""Parallel efficiency of the pod scheduler: 8 CPU-bound pods with ``jobs=1`` and ``jobs=2``.

The scenarios: ``Spin(index)`` for index 0..7, a ``Solver`` multiplying 128 × 128 matrices
(one BLAS thread: ``OPENBLAS_NUM_THREADS=1`` and ``Resources(cpus=1)``) for a fixed number of
rounds, calibrated here to ~0.5 s. Each executor (``subprocess``, ``warm``) runs them with
``jobs=1`` and ``jobs=2``, interleaved, ``--trials`` times; speedup = wall(jobs=1) / wall(jobs=2)
(medians). The ceiling on this machine, now: the same 8 spins as bare processes
(``python -c``: interpreter, ``import numpy``, the spin), one then two at a time.

Where the time goes, per pod, from each pod's timeline: the executor's ``pod_start`` hook (a
subclass of the executor records it in its worker thread), the pod's ``started`` and ``finished``
events (their ``t``, the pod's clock; the store's ``pods.started``/``pods.finished``), and the
``pod_finish`` hook (the process has exited and its events are read):

* start latency = ``started`` − ``pod_start`` (interpreter, imports or fork, the worker's rebuild);
* pod body = ``finished`` − ``started`` (rebuild and run: the spin; growing with ``jobs=2`` means
  CPU contention, with the other pod, the controller or other tenants);
* exit = ``pod_finish`` − ``finished`` (interpreter shutdown, reaping, the last events);
* gap = a worker thread's next ``pod_start`` − its previous ``pod_finish`` (the scheduler's
  wake-up, the lease transaction, the submit);
* fixed = ``run()`` call → first ``pod_start`` + last ``pod_finish`` → ``run()`` return;
* CPU: this process's own (the controller: its threads parse events and write the store) and its
  children's (the pods, and warm workers, which are waited for), ``resource.getrusage``.

Run ``python benchmarks/parallel.py`` (writes its section of benchmarks/README.md), ``--quick``
(2 pods of ~0.2 s, 1 trial; no README.md unless ``--write``), ``--no-write`` to only print.
"""

from __future__ import annotations

import os

# Before NumPy loads, here and in every pod and bare process: one BLAS thread per spin.
os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

import argparse
import itertools
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import add_write_flags, latest, machine_line, publish

from saibench_jupyter import Repository, discover
from saibench_jupyter.pods import executor_class, run

START, END = "<!-- parallel:start -->", "<!-- parallel:end -->"
SPIN = '''
import numpy as np

def spin(rounds):
    a = np.full((128, 128), 1.0 / 128)
    m = a.copy()
    for _ in range(rounds):
        m = a @ m
    return float(m[0, 0])
'''
SOURCE = SPIN + '''
from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

register_dataset("spin_inputs", {"x": Tensor(1)}, lambda: {"x": [np.ones(1, np.float32)]})


@ProblemDefinition
def Busy():
    for x in Input("dataset:spin_inputs/x", Tensor(1)):
        Test.Solve(x, x)


@ModelDefinition
def Spin(task, inputType, outputType, index, rounds=1):
    Suggest(index, 0, 1, 2, 3, 4, 5, 6, 7)
    if task != Solve: Fail("solves only")
    return Solver(lambda x: x * (spin(rounds) > 0))


@MetricDefinition
def Done():
    return len(Test.Solve)


@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy", pip=["numpy"])


@HardwareDefinition
def OneCPU():
    return Resources(cpus=1)
'''
INTRO = """\
## Parallel efficiency: 8 CPU-bound pods, jobs=1 against jobs=2

`benchmarks/parallel.py` runs 8 scenarios whose model spins NumPy on one BLAS thread for
~0.5 s, with the `subprocess` and `warm` executors at `jobs=1` and `jobs=2`, and takes each
pod's timeline apart (start latency, body, exit, the scheduler's gap between pods, the run's
fixed costs, CPU of the controller and of the pods). The ceiling is measured beside it: the same
8 spins as bare processes, one and then two at a time, on the same (shared) machine. Details in
the script's docstring. Target: jobs=2 ≥ 1.8× jobs=1, or the table shows where the rest goes.

```bash
python benchmarks/parallel.py            # prints the table and rewrites the section below
python benchmarks/parallel.py --no-write # prints only
python benchmarks/parallel.py --quick    # 2 short pods: a smoke test for CI
```

"""

med = statistics.median
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Timeline:
    """One run()'s stamps (time.time(), so they compare with the pods' event ``t``)."""

    called: float = 0.0
    returned: float = 0.0
    start: dict[str, tuple[float, str]] = field(default_factory=dict)  # pod -> (pod_start, worker thread)
    finish: dict[str, float] = field(default_factory=dict)  # pod -> pod_finish
    started: dict[str, float] = field(default_factory=dict)  # pod -> its started event's t
    finished: dict[str, float] = field(default_factory=dict)  # pod -> its finished event's t
    cpu_self: float = 0.0
    cpu_children: float = 0.0
    others: float = 0.0  # CPU seconds the rest of the machine used meanwhile (other tenants)

    @property
    def wall(self) -> float:
        return self.returned - self.called

    def per_pod(self, a: dict[str, Any], b: dict[str, Any]) -> list[float]:
        def t(d: dict[str, Any], k: str) -> float:
            v = d[k]
            return float(v[0] if isinstance(v, tuple) else v)

        return [t(b, k) - t(a, k) for k in self.start]

    def gaps(self) -> list[float]:
        """Per worker thread: its next pod_start − its previous pod_finish."""
        out: list[float] = []
        by_thread: dict[str, list[tuple[float, float]]] = {}
        for pod, (t0, thread) in self.start.items():
            by_thread.setdefault(thread, []).append((t0, self.finish[pod]))
        for spans in by_thread.values():
            spans.sort()
            out += [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(spans)]
        return out


def traced(name: str, timeline: Timeline) -> Any:
    """An instance of executor ``name`` whose pod hooks stamp ``timeline``."""
    base = executor_class(name)

    class Traced(base):  # type: ignore[misc, valid-type]
        def pod_start(self, spec: Any) -> None:
            timeline.start[spec.pod] = (time.time(), threading.current_thread().name)
            super().pod_start(spec)

        def pod_finish(self, spec: Any, outcome: Any) -> None:
            super().pod_finish(spec, outcome)
            timeline.finish[spec.pod] = time.time()

    return Traced


def run_pods(scenarios: list[Any], executor: str, jobs: int, store: Path) -> Timeline:
    tl = Timeline()

    def progress(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "started":
            tl.started[event["pod"]] = float(event["t"])
        elif kind == "finished":
            tl.finished[event["pod"]] = float(event["t"])
        elif kind == "failed":
            raise SystemExit(f"{executor} jobs={jobs}: a pod failed: {event.get('kind')}: {event.get('message')}")

    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = machine_busy()
    tl.called = time.time()
    run(scenarios, executor=traced(executor, tl)(jobs), jobs=jobs, store=store, rerun=True, progress=progress)
    tl.returned = time.time()
    busy = machine_busy() - busy
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    tl.cpu_self, tl.cpu_children = (a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
    tl.others = max(0.0, busy - tl.cpu_self - tl.cpu_children)
    if len(tl.finished) != len(scenarios):
        raise SystemExit(f"{executor} jobs={jobs}: {len(tl.finished)} of {len(scenarios)} pods finished")
    return tl


def machine_busy() -> float:
    """CPU seconds every process of this machine has used since boot (``/proc/stat``; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def bare(rounds: int, n: int, jobs: int) -> tuple[float, float]:
    """Wall of n bare ``python -c`` spins, ``jobs`` at a time, and the CPU others used meanwhile."""
    code = SPIN + f"\nspin({rounds})"
    before, busy = resource.getrusage(resource.RUSAGE_CHILDREN), machine_busy()
    t0 = time.perf_counter()
    running: list[subprocess.Popen[bytes]] = []
    for _ in range(n):
        while len(running) >= jobs:
            running.pop(0).wait()
        running.append(subprocess.Popen([sys.executable, "-c", code]))
    for p in running:
        p.wait()
    wall, busy = time.perf_counter() - t0, machine_busy() - busy
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, max(0.0, busy - (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))


def calibrate(seconds: float) -> tuple[int, float]:
    """Rounds of the spin that take about ``seconds`` here, and the seconds they took."""
    namespace: dict[str, Any] = {}
    exec(SPIN, namespace)
    spin = namespace["spin"]
    spin(20)
    t0 = time.perf_counter()
    spin(200)
    per = (time.perf_counter() - t0) / 200
    rounds = max(1, round(seconds / per))
    t0 = time.perf_counter()
    spin(rounds)
    return rounds, time.perf_counter() - t0


def spin_scenarios(rounds: int, pods: int) -> tuple[Any, list[Any]]:
    """The repository of :data:`SOURCE` (it keeps the scenarios' discovery alive) and its first ``pods``
    ``Spin`` scenarios, each ``rounds`` rounds (benchmarks/dask.py runs the same)."""
    repo = Repository()
    repo.add_source(SOURCE, origin="parallel_spin.py")
    return repo, list(discover(repo, params={"Spin.rounds": rounds}).scenarios)[:pods]


def ms(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if abs(s) < 10 else f"{s:.1f} s"



def timeline_row(label: str, tls: list[Timeline], base: list[Timeline] | None) -> list[str]:
    """A table row of runs' timelines: wall, speed-up over ``base``, per-pod medians, CPU, other tenants."""
    wall = med([t.wall for t in tls])
    speed = f"**{med([b.wall for b in base]) / wall:.2f}×**" if base else ""
    return [label, ms(wall), speed,
            ms(med([x for t in tls for x in t.per_pod(t.start, t.started)])),
            ms(med([x for t in tls for x in t.per_pod(t.started, t.finished)])),
            ms(med([x for t in tls for x in t.per_pod(t.finished, t.finish)])),
            ms(med([x for t in tls for x in t.gaps()] or [0.0])),
            ms(med([min(v[0] for v in t.start.values()) - t.called + t.returned - max(t.finish.values())
                    for t in tls])),
            ms(med([t.cpu_self for t in tls])), ms(med([t.cpu_children for t in tls])),
            f"{med([t.others / (t.wall * CPUS) for t in tls]):.0%}"]

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 pods of ~0.2 s, 1 trial; no README.md unless --write")
    ap.add_argument("--trials", type=int, help="run()s per executor and jobs (default 3; 1 with --quick)")
    add_write_flags(ap)
    args = ap.parse_args(argv)
    trials = args.trials or (1 if args.quick else 3)
    pods = 2 if args.quick else 8
    rounds, spin_s = calibrate(0.2 if args.quick else 0.5)
    configs = [(e, j) for e in ("subprocess", "warm") for j in (1, 2)]
    got: dict[tuple[str, int], list[Timeline]] = {c: [] for c in configs}
    bares: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="saibench-parallel-") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            _repo, scenarios = spin_scenarios(rounds, pods)  # _repo keeps them alive
            print(f"parallel: {len(scenarios)} pods of {rounds} spin rounds ({ms(spin_s)} in this process), "
                  f"{trials} trial(s) each, interleaved", flush=True)
            for trial in range(trials):
                for jobs in (1, 2):
                    bares[jobs].append(bare(rounds, len(scenarios), jobs))
                for executor, jobs in configs:
                    got[executor, jobs].append(run_pods(scenarios, executor, jobs, Path(tmp) / "parallel.db"))
                print(f"  trial {trial + 1}: bare {ms(bares[1][-1][0])} / {ms(bares[2][-1][0])}, " + ", ".join(
                    f"{e} jobs={j} {ms(got[e, j][-1].wall)}" for e, j in configs), flush=True)
        finally:
            os.chdir(cwd)

    def bare_wall(jobs: int) -> float:
        return med([w for w, _ in bares[jobs]])

    def bare_others(jobs: int) -> str:
        return f"{med([o / (w * CPUS) for w, o in bares[jobs]]):.0%}"

    rows = [["bare processes, 1 at a time", ms(bare_wall(1)), "", *[""] * 7, bare_others(1)],
            ["bare processes, 2 at a time", ms(bare_wall(2)), f"**{bare_wall(1) / bare_wall(2):.2f}×** "
             "(the ceiling now)", *[""] * 7, bare_others(2)]]
    for executor in ("subprocess", "warm"):
        rows.append(timeline_row(f"{executor}, jobs=1", got[executor, 1], None))
        rows.append(timeline_row(f"{executor}, jobs=2", got[executor, 2], got[executor, 1]))
    table = "\n".join([
        "| run | wall | speedup over jobs=1 | start latency | pod body | exit | gap between pods | fixed | "
        "CPU: controller | CPU: pods + workers | machine's CPU used by other tenants |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *("| " + " | ".join(r) + " |" for r in rows)])
    # Where jobs=2 loses against a perfect halving of jobs=1, per executor (medians of the parts).
    # Where jobs=2's wall goes: the machine's CPU capacity in that time (wall × CPUs) is the pods'
    # and workers' CPU, the controller's, the other tenants', and what stayed idle (empty slots:
    # the harness's own loss). A perfect jobs=2 fills both CPUs with pods alone.
    notes = []
    for executor in ("subprocess", "warm"):
        one, two = got[executor, 1], got[executor, 2]
        w1, w2 = med([t.wall for t in one]), med([t.wall for t in two])
        body1 = med([x for t in one for x in t.per_pod(t.started, t.finished)])
        body2 = med([x for t in two for x in t.per_pod(t.started, t.finished)])
        lat1 = med([x for t in one for x in t.per_pod(t.start, t.started)])
        lat2 = med([x for t in two for x in t.per_pod(t.start, t.started)])
        cap = med([t.wall * CPUS for t in two])
        pods_cpu, ctl = med([t.cpu_children for t in two]), med([t.cpu_self for t in two])
        others = med([t.others for t in two])
        idle = med([max(0.0, t.wall * CPUS - t.cpu_children - t.cpu_self - t.others) for t in two])
        notes.append(
            f"* {executor}, jobs=2: {ms(w2)} against {ms(w1 / 2)} for a perfect halving of jobs=1. Its CPU "
            f"capacity ({CPUS} × wall = {ms(cap)}) went to the pods and workers {ms(pods_cpu)} "
            f"({pods_cpu / cap:.0%}), the controller {ms(ctl)} ({ctl / cap:.0%}), other tenants {ms(others)} "
            f"({others / cap:.0%}), idle {ms(idle)} ({idle / cap:.0%}). Per pod: body {ms(body1)} → {ms(body2)} "
            f"(jobs=1 → 2: contention), start latency {ms(lat1)} → {ms(lat2)}.")
    command = "python benchmarks/parallel.py" + (" --quick" if args.quick else "") + (
        f" --trials {args.trials}" if args.trials else "")
    load = (f"; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) when written"
            if hasattr(os, "getloadavg") else "")
    section = "\n".join([
        START, *latest(command, machine_line() + load),
        f"* {len(scenarios)} pods, each {rounds} rounds of a 128 × 128 matmul ({ms(spin_s)} in the controller's "
        f"process), one BLAS thread; {trials} trial(s) of each row, interleaved; per-pod figures are medians over "
        "all pods of all trials", "", table, "", *notes, END])
    publish(args, START, END, section, INTRO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
