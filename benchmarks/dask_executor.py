#!/usr/bin/env python
"""The Dask executor on this machine: speed-up, harness cost per pod, cluster start, idle memory.

Four measurements, all with the embedded ``LocalCluster`` (``run(..., executor="dask")`` with no
``scheduler``: ``jobs`` single-thread worker processes on 127.0.0.1, the scheduler in this process):

1. **Speed-up.** parallel.py's ``Spin`` scenarios (a ``Solver`` multiplying 128 × 128 matrices on
   one BLAS thread), 8 pods calibrated to ~2 s each, on a cluster of 1 worker (``jobs=1``) and of 2
   (``jobs=2``), interleaved, ``--trials`` times; speed-up = wall(1) / wall(2), medians. The cluster
   is resized and its workers ready before each timed ``run()`` (its start is item 3). Beside it,
   the ceiling now: the same 8 spins as bare processes (``python -c``), 1 then 2 at a time, and the
   machine's CPU used by other tenants (``/proc/stat`` minus this process tree). Each pod's timeline
   is taken apart as parallel.py does (start latency, body, exit, gap, fixed). CPU of the pods is
   read from the worker processes (``psutil``: their own CPU and their reaped children's, the
   pods), since a pod is a grandchild of this process; the controller's CPU includes the
   scheduler, which runs in this process.
2. **Harness cost per pod.** The tests' trivial doubling scenario as 200 pods (``repeats``),
   ``jobs=1``, with ``executor="subprocess"`` and ``"dask"`` (1 worker), same store, interleaved,
   ``--trials`` times, medians: wall / N, and the steady per-pod wall (median gap between
   consecutive ``finished`` events). Target: Dask − subprocess ≤ 30 ms per pod.
3. **Cluster start, cold.** In a fresh ``python -c`` per trial: ``import distributed`` (and
   saibench_jupyter's Dask module), the embedded cluster of 2 workers up and its client connected,
   the version check of every worker (what the executor's start does), and the wall of the whole
   child process until then (interpreter start included). Target: under 5 s.
4. **Idle memory** of that cluster, 1 s after it is ready: RSS (and USS, the memory no other
   process shares) of this process's growth from starting the cluster (the scheduler, the nannies
   and the client live here), of each worker process and of multiprocessing's resource tracker.

Run ``python benchmarks/dask_executor.py`` (writes its section of benchmarks/README.md), ``--quick``
(2 pods of ~0.2 s, 20 trivial pods, 1 trial; no README.md unless ``--write``), ``--no-write`` to only
print. The cluster's workers import this file again as ``__mp_main__``: everything runs under
``if __name__ == "__main__"``.
"""

from __future__ import annotations

import os
import sys

# Before NumPy loads, here, in the workers (they inherit it) and in every pod: one BLAS thread per spin.
os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

import argparse
import itertools
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _report import add_write_flags, latest, machine_line, publish

if TYPE_CHECKING:
    from parallel import Timeline

START, END = "<!-- dask:start -->", "<!-- dask:end -->"
INTRO = """\
## The Dask executor: speed-up, harness cost, cluster start, idle memory

`benchmarks/dask_executor.py` runs pods with `executor="dask"` on the embedded LocalCluster (single-thread
worker processes on 127.0.0.1; the scheduler in the controller's process) and measures:

* **speed-up**: 8 CPU-bound pods of ~2 s (parallel.py's `Spin` scenarios, one BLAS thread) on 2
  workers against 1; target ≥ 1.8×. Beside it, the ceiling now (the same spins as bare processes, 1
  then 2 at a time), the machine's CPU used by other tenants, and each pod's timeline taken apart;
* **harness cost per pod**: 200 trivial pods, `jobs=1`, Dask against the `subprocess` executor
  (same store and scenario, interleaved, 3 trials, medians); target ≤ 30 ms extra per pod;
* **cluster start**, cold (a fresh process per trial): import, LocalCluster of 2 workers and its
  client, the workers' version check; target < 5 s;
* **idle memory** of that cluster: RSS of the scheduler's process (the controller: its growth from
  starting the cluster), of each worker and of the resource tracker.

Details in the script's docstring.

```bash
python benchmarks/dask_executor.py            # prints the table and rewrites the section below (~10 min)
python benchmarks/dask_executor.py --no-write # prints only
python benchmarks/dask_executor.py --quick    # 2 short pods, 20 trivial pods, 1 trial: a smoke test for CI
```

"""
COLD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import psutil
me = psutil.Process()
rss0 = me.memory_info().rss
import distributed
from saibench_jupyter.pods import _dask
t1, rss1 = time.perf_counter(), me.memory_info().rss
client, _ = _dask.connect(None, WORKERS)
t2 = time.perf_counter()
_dask.check_versions(client)
t3 = time.perf_counter()
print("ready", flush=True)
time.sleep(IDLE)
workers = set(client.run(os.getpid).values())
def mem(p):
    full = p.memory_full_info()
    return [full.rss, full.uss]
others = [mem(p) for p in me.children(recursive=True) if p.pid not in workers]
out = {"import": t1 - t0, "cluster": t2 - t1, "check": t3 - t2, "rss0": rss0, "rss1": rss1, "self": mem(me),
       "workers": [mem(psutil.Process(pid)) for pid in sorted(workers)], "others": others}
t4 = time.perf_counter()
_dask.close_embedded()
out["close"] = time.perf_counter() - t4
print(json.dumps(out), flush=True)
"""

med = statistics.median


def ms(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if abs(s) < 10 else f"{s:.1f} s"


def mib(b: float) -> str:
    return f"{b / 2**20:.0f} MiB"


def resize(jobs: int) -> None:
    """The embedded cluster with exactly ``jobs`` workers, each ready and its process alone (no worker retiring)."""
    from saibench_jupyter.pods import _dask

    client, _ = _dask.connect(None, jobs)
    deadline = time.monotonic() + 60
    while len(client.scheduler_info(n_workers=-1)["workers"]) != jobs or len(worker_processes()) != jobs:
        if time.monotonic() > deadline:
            raise SystemExit(f"the embedded cluster did not reach {jobs} worker(s) in 60 s")
        time.sleep(0.05)


def worker_processes() -> list[Any]:
    """This process's children that are Dask workers (spawned by a nanny; not the resource tracker)."""
    import psutil

    out = []
    for p in psutil.Process().children():
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:  # exited meanwhile
            pass
    return out


def workers_cpu() -> dict[int, float]:
    """CPU seconds of each worker process: its own and its reaped children's (the pods it ran)."""
    import psutil

    out = {}
    for p in worker_processes():
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return out


def spin_run(scenarios: list[Any], jobs: int, store: Path) -> Timeline:
    """parallel.py's traced run() on the embedded cluster resized to ``jobs`` workers, its CPU put right.

    parallel.run_pods counts the pods' CPU from this process's reaped children; on Dask the pods are
    the workers' children, so their CPU is read from the workers and moved from "other tenants".
    """
    import parallel

    resize(jobs)
    before = workers_cpu()
    tl = parallel.run_pods(scenarios, "dask", jobs, store)
    after = workers_cpu()
    pods_cpu = sum(after[pid] - before[pid] for pid in after.keys() & before.keys())
    tl.cpu_children += pods_cpu
    tl.others = max(0.0, tl.others - pods_cpu)
    return tl


def cold_start(workers: int, idle: float) -> tuple[dict[str, Any], float]:
    """One fresh process's embedded cluster: its own figures (see ``COLD``) and its wall until ready."""
    code = COLD.replace("WORKERS", str(workers)).replace("IDLE", str(idle))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = None
    lines = []
    for line in proc.stdout:
        if line.strip() == "ready" and ready is None:
            ready = time.perf_counter() - t0
        lines.append(line)
    proc.stdout.close()
    if proc.wait() != 0 or ready is None:
        raise SystemExit(f"the cold cluster's process failed (exit {proc.returncode}): {''.join(lines)[-2000:]}")
    return json.loads(lines[-1]), ready


def main(argv: list[str] | None = None) -> int:
    import parallel
    import pods

    from saibench_jupyter.pods import _dask

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 pods of ~0.2 s, 20 trivial pods, 1 trial; "
                    "no README.md unless --write")
    ap.add_argument("--trials", type=int, help="trials of each measurement (default 3; 1 with --quick)")
    add_write_flags(ap)
    args = ap.parse_args(argv)
    trials = args.trials or (1 if args.quick else 3)
    n_spin, n_trivial = (2, 20) if args.quick else (8, 200)
    rounds, spin_s = parallel.calibrate(0.2 if args.quick else 2.0)
    spins: dict[int, list[Timeline]] = {1: [], 2: []}
    bares: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    trivial: dict[str, list[tuple[float, list[float], list[float]]]] = {"subprocess": [], "dask": []}
    spans: dict[str, list[Timeline]] = {"subprocess": [], "dask": []}  # the executor's pod_start/pod_finish
    colds: list[tuple[dict[str, Any], float]] = []
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="saibench-dask-bench-") as tmp:
        os.chdir(tmp)  # the pods' working directory, the stores and the trivial scenario's data
        try:
            _repo, scenarios = parallel.spin_scenarios(rounds, n_spin)  # _repo keeps them alive
            scenario, _keep = pods.load_scenario()
            print(f"dask: {len(scenarios)} pods of {rounds} spin rounds ({ms(spin_s)} in this process), "
                  f"{n_trivial} trivial pods, {trials} trial(s) each, interleaved", flush=True)
            for trial in range(trials):
                # Cold first: no cluster of this process runs meanwhile.
                _dask.close_embedded()
                colds.append(cold_start(2, 1.0))
                for jobs in (1, 2):
                    bares[jobs].append(parallel.bare(rounds, len(scenarios), jobs))
                for jobs in (1, 2):
                    spins[jobs].append(spin_run(scenarios, jobs, Path(tmp) / "spin.db"))
                resize(1)
                for executor in ("subprocess", "dask"):
                    spans[executor].append(parallel.Timeline())
                    traced = parallel.traced(executor, spans[executor][-1])(1)
                    trivial[executor].append(pods.pods(scenario, traced, 1, n_trivial))
                print(f"  trial {trial + 1}: cold start {ms(colds[-1][1])}, bare {ms(bares[1][-1][0])} / "
                      f"{ms(bares[2][-1][0])}, dask jobs=1 {ms(spins[1][-1].wall)} / jobs=2 {ms(spins[2][-1].wall)}, "
                      f"{n_trivial} trivial pods: subprocess {ms(trivial['subprocess'][-1][0] / n_trivial)}/pod, "
                      f"dask {ms(trivial['dask'][-1][0] / n_trivial)}/pod", flush=True)
        finally:
            _dask.close_embedded()
            os.chdir(cwd)
    section = report(args, trials, rounds, spin_s, spins, bares, trivial, spans, colds, n_trivial)
    publish(args, START, END, section, INTRO)
    return 0


def report(args: argparse.Namespace, trials: int, rounds: int, spin_s: float, spins: dict[int, list[Timeline]],
           bares: dict[int, list[tuple[float, float]]],
           trivial: dict[str, list[tuple[float, list[float], list[float]]]], spans: dict[str, list[Timeline]],
           colds: list[tuple[dict[str, Any], float]], n_trivial: int) -> str:
    """The README section: the four tables and where jobs=2's time went."""
    import parallel

    cpus = parallel.CPUS
    n_spin = len(next(iter(spins[1])).start)

    def bare_wall(jobs: int) -> float:
        return med([w for w, _ in bares[jobs]])

    def bare_others(jobs: int) -> str:
        return f"{med([o / (w * cpus) for w, o in bares[jobs]]):.0%}"

    speedup = med([t.wall for t in spins[1]]) / med([t.wall for t in spins[2]])
    rows = [["bare processes, 1 at a time", ms(bare_wall(1)), "", *[""] * 7, bare_others(1)],
            ["bare processes, 2 at a time", ms(bare_wall(2)), f"**{bare_wall(1) / bare_wall(2):.2f}×** "
             "(the ceiling now)", *[""] * 7, bare_others(2)],
            parallel.timeline_row("dask, 1 worker (jobs=1)", spins[1], None),
            parallel.timeline_row("dask, 2 workers (jobs=2)", spins[2], spins[1])]
    spin_table = [
        f"**Speed-up**: {n_spin} pods, each {rounds} rounds of a 128 × 128 matmul ({ms(spin_s)} in the "
        f"controller's process), one BLAS thread. Target ≥ 1.8×: "
        f"{'met' if speedup >= 1.8 else 'missed'} ({speedup:.2f}×).", "",
        "| run | wall | speed-up over 1 worker | start latency | pod body | exit | gap between pods | fixed | "
        "CPU: controller + scheduler | CPU: pods + workers | machine's CPU used by other tenants |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *("| " + " | ".join(r) + " |" for r in rows)]
    one, two = spins[1], spins[2]
    w1, w2 = med([t.wall for t in one]), med([t.wall for t in two])
    cap = med([t.wall * cpus for t in two])
    pods_cpu, ctl, others = (med([t.cpu_children for t in two]), med([t.cpu_self for t in two]),
                             med([t.others for t in two]))
    idle = med([max(0.0, t.wall * cpus - t.cpu_children - t.cpu_self - t.others) for t in two])
    body = [med([x for t in s for x in t.per_pod(t.started, t.finished)]) for s in (one, two)]
    lat = [med([x for t in s for x in t.per_pod(t.start, t.started)]) for s in (one, two)]
    where = (f"* 2 workers: {ms(w2)} against {ms(w1 / 2)} for a perfect halving of 1 worker's. The CPU capacity "
             f"({cpus} × wall = {ms(cap)}) went to the pods and workers {ms(pods_cpu)} ({pods_cpu / cap:.0%}), the "
             f"controller and scheduler {ms(ctl)} ({ctl / cap:.0%}), other tenants {ms(others)} "
             f"({others / cap:.0%}), idle {ms(idle)} ({idle / cap:.0%}). Per pod: body {ms(body[0])} → "
             f"{ms(body[1])} (1 → 2 workers: contention), start latency {ms(lat[0])} → {ms(lat[1])}.")

    per_pod = {e: med([w / n_trivial for w, _, _ in rs]) for e, rs in trivial.items()}
    steady = {e: med([med([b - a for a, b in itertools.pairwise(f)]) for _, f, _ in rs]) for e, rs in trivial.items()}
    inner = {e: med([x for _, _, i in rs for x in i]) for e, rs in trivial.items()}
    span = {e: med([t.finish[k] - t.start[k][0] for t in tls for k in t.start]) for e, tls in spans.items()}
    gap = {e: med([x for t in tls for x in t.gaps()] or [0.0]) for e, tls in spans.items()}
    extra, extra_steady = per_pod["dask"] - per_pod["subprocess"], steady["dask"] - steady["subprocess"]
    harness = [
        f"**Harness cost per pod**: {n_trivial} trivial pods (the tests' `Doubler`), `jobs=1`, {trials} "
        f"trial(s), interleaved. Target ≤ 30 ms extra per pod: wall / N {extra * 1e3:+.1f} ms "
        f"({'met' if extra <= 0.030 else 'missed'}), steady {extra_steady * 1e3:+.1f} ms "
        f"({'met' if extra_steady <= 0.030 else 'missed'}).", "",
        "| executor | wall / N | steady (median gap between `finished`) | the executor's span of a pod "
        "(`pod_start` → `pod_finish`) | gap between pods | the pod's own `wall_ms` |",
        "|---|--:|--:|--:|--:|--:|",
        *(f"| {e} | {per_pod[e] * 1e3:.1f} ms | {steady[e] * 1e3:.1f} ms | {span[e] * 1e3:.1f} ms | "
          f"{gap[e] * 1e3:.1f} ms | {inner[e] * 1e3:.1f} ms |" for e in ("subprocess", "dask")),
        f"| **dask − subprocess** | **{extra * 1e3:+.1f} ms** | **{extra_steady * 1e3:+.1f} ms** | "
        f"{(span['dask'] - span['subprocess']) * 1e3:+.1f} ms | {(gap['dask'] - gap['subprocess']) * 1e3:+.1f} ms | "
        f"{(inner['dask'] - inner['subprocess']) * 1e3:+.1f} ms |"]

    def cm(key: str) -> float:
        return med([c[key] for c, _ in colds])

    ready = med([w for _, w in colds])
    in_process = cm("import") + cm("cluster") + cm("check")
    start = [
        f"**Cluster start, cold** (a fresh process per trial, {len(colds)} trial(s), 2 workers). Target < 5 s: "
        f"{'met' if ready < 5.0 else 'missed'} ({ready:.2f} s).", "",
        "| step | time |", "|---|--:|",
        f"| `import distributed` and saibench_jupyter's Dask module | {ms(cm('import'))} |",
        f"| LocalCluster of 2 workers, ready, and its client | {ms(cm('cluster'))} |",
        f"| version check of every worker | {ms(cm('check'))} |",
        f"| **in the process: import to ready** | **{ms(in_process)}** |",
        f"| the whole fresh process until ready (interpreter start included) | {ms(ready)} |",
        f"| `close_embedded()` | {ms(cm('close'))} |"]

    def mem(values: list[list[int]]) -> tuple[float, float]:
        return med([v[0] for v in values]), med([v[1] for v in values])

    grown = (med([c["self"][0] - c["rss1"] for c, _ in colds]), None)
    workers = [mem([c["workers"][i] for c, _ in colds]) for i in range(len(colds[0][0]["workers"]))]
    tracker = mem([o for c, _ in colds for o in c["others"]]) if any(c["others"] for c, _ in colds) else (0, 0)
    total = grown[0] + sum(w[0] for w in workers) + tracker[0]
    memory = [
        "**Idle memory** of that cluster, 1 s after ready (RSS counts shared pages in each process; USS is a "
        "process's own).", "",
        "| process | RSS | USS |", "|---|--:|--:|",
        f"| controller, whole (Python + `import distributed`: {mib(cm('rss1'))}) | "
        f"{mib(med([c['self'][0] for c, _ in colds]))} | {mib(med([c['self'][1] for c, _ in colds]))} |",
        f"| controller, growth from starting the cluster (scheduler, nannies, client) | {mib(grown[0])} | |",
        *(f"| worker {i + 1} | {mib(r)} | {mib(u)} |" for i, (r, u) in enumerate(workers)),
        f"| multiprocessing's resource tracker | {mib(tracker[0])} | {mib(tracker[1])} |",
        f"| **total the cluster adds** (growth + workers + tracker) | **{mib(total)}** | |"]

    command = "python benchmarks/dask_executor.py" + (" --quick" if args.quick else "") + (
        f" --trials {args.trials}" if args.trials else "")
    load = (f"; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) when written"
            if hasattr(os, "getloadavg") else "")
    import distributed

    return "\n".join([START, *latest(command, machine_line() + load + f"; dask.distributed {distributed.__version__}"),
                      "", *spin_table, "", where, "", *harness, "", *start, "", *memory, END])


if __name__ == "__main__":
    sys.exit(main())
