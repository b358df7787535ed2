#!/usr/bin/env python
"""Benchmark of the BenchPod harness: what running a scenario as an isolated pod costs.

The scenario is the tests' trivial one (``tests/sail/pods_doubling.py``, ``Doubler(mode="ok")``)
in a temporary working directory that also holds the stores. Measured (``time.perf_counter``, medians):

* per pod, ``jobs=1``: ``run(scenario, repeats=N, rerun=True)`` with the ``inline``,
  ``subprocess`` (cold) and ``warm`` executors. A progress callback stamps each ``finished``
  event; the steady per-pod figure is the median gap between consecutive ones (run()'s fixed
  costs and the warm worker's start-up left out); the first pod's runs from the ``run()`` call;
* the warm worker's start-up: ``python -m saibench_jupyter.pods serve`` until ``{"event": "ready"}``;
* throughput with ``jobs=2`` (subprocess, warm): wall / N, and (last − first finish) / (N − 2);
* a cold pod taken apart: the bare pod process (``python -m saibench_jupyter.pods run -`` fed the
  spec and, as the executor does after an interpreter's first pod, its environment record; no
  parent harness) and its time after the ``finished`` line (shutdown); ``python -c pass`` in the
  pod's environment, the pod's imports and ``import numpy`` alone (minus that),
  ``environment_record()`` with and without that record, ``run_pod`` in this process after a
  warm-up, and one pod's events written to a ``Store``;
* the floor of any cold pod of this scenario, harness or not: interpreter start + ``import numpy``;
* per stored point: ``Store.record`` of a checkpoint and 2 metrics, shaped as ``run_pod`` emits them;
* harness overhead per pod = steady pod wall − the in-process ``run_pod``, against the targets
  (2-core machine): cold ≤ 150 ms, warm ≤ 20 ms, ≤ 1 ms per stored point.

Run ``python benchmarks/pods.py`` (writes its section of benchmarks/README.md), ``--quick`` for a CI
smoke test (small N, under ~20 s; no README.md unless ``--write``), ``--no-write`` to only print.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _report import add_write_flags, latest, machine_line, publish

from saibench_jupyter.pods import run
from saibench_jupyter.pods._shim import RECORD_VARIABLE, environment_record, run_pod
from saibench_jupyter.pods._spec import specs_of
from saibench_jupyter.pods._subprocess import pod_environment
from saibench_jupyter.results import Store

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- pods:start -->", "<!-- pods:end -->"
IMPORTS = "import saibench_jupyter.pods._shim, saibench_jupyter.runtime, saibench_jupyter.planner, numpy"
NUMPY = "import numpy"
INTRO = """\
## BenchPods: harness overhead per pod

`benchmarks/pods.py` runs the tests' trivial doubling scenario as N pods with the `inline`,
`subprocess` (a cold `python -m saibench_jupyter.pods run -` per pod) and `warm` (a worker per
environment forks each pod) executors, takes a cold pod apart, and times the store per checkpoint.
Harness overhead = the steady per-pod wall (median gap between consecutive `finished` events)
minus `run_pod` of the same scenario in this process. Targets (2-core machine): ≤ 150 ms per
cold pod, ≤ 20 ms per warm pod, ≤ 1 ms per stored point. Details in the script's docstring.

```bash
python benchmarks/pods.py            # prints the table and rewrites the section below
python benchmarks/pods.py --no-write # prints only
python benchmarks/pods.py --quick    # small N: a smoke test for CI
```

"""


med = statistics.median


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def load_scenario() -> tuple[Any, Any]:
    """The doubling scenario with mode "ok", and whatever keeps its repository alive."""
    sys.path.insert(0, str(ROOT / "tests"))
    helpers = importlib.import_module("pods_helpers")
    helpers.write_data(Path.cwd())
    out = helpers.doubling("ok")
    scenarios = out[1] if isinstance(out, tuple) else out  # (repo, scenarios) in older helpers
    return scenarios[0], out


def pods(scenario: Any, executor: str, jobs: int, n: int) -> tuple[float, list[float], list[float]]:
    """One ``run()`` of n pods: its wall, each pod's finish time from the call, and each pod's own wall_ms."""
    finished: list[float] = []
    inner: list[float] = []
    bad: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "failed" or (event.get("event") == "finished" and event.get("status") != "ok"):
            bad.append(event)
        elif event.get("event") == "finished":
            finished.append(time.perf_counter() - t0)
            inner.append(float(event["wall_ms"]) / 1e3)

    run(scenario, executor=executor, jobs=jobs, store="pods.db", repeats=n, rerun=True, progress=progress)
    if bad or len(finished) != n:
        raise SystemExit(f"{executor}: {len(finished)} of {n} pods finished ok; {bad[:1]}")
    return time.perf_counter() - t0, finished, inner


def pod_process(command: str, stdin: str, until: bytes, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``python -m saibench_jupyter.pods COMMAND`` fed ``stdin``: seconds to its first line holding
    ``until``, and to its exit (a warm worker exits once its stdin is closed)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "saibench_jupyter.pods", *command.split()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env or pod_environment())
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    seen = next((time.perf_counter() - t0 for line in proc.stdout if until in line), None)
    proc.wait()
    if seen is None:
        raise SystemExit(f"`python -m saibench_jupyter.pods {command}` never wrote {until!r}")
    return seen, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N (CI smoke test); no README.md unless --write")
    add_write_flags(ap)
    ap.add_argument("--pods", type=int, help="N, pods per run() (default 10; 3 with --quick)")
    ap.add_argument("--trials", type=int, help="run()s per executor (default 3; 1 with --quick)")
    args = ap.parse_args(argv)
    n = max(args.pods or (3 if args.quick else 10), 3)
    trials = args.trials or (1 if args.quick else 3)
    k, points = (3, 200) if args.quick else (7, 2000)

    with tempfile.TemporaryDirectory(prefix="saibench-pods-bench-") as tmp:
        os.chdir(tmp)
        scenario, keep = load_scenario()
        print(f"pods benchmark: {n} pods × {trials} trials per executor{' [quick]' if args.quick else ''}",
              flush=True)
        # 1-2. pods through run(): per executor and jobs, trials of (wall, finish times, in-pod wall_ms).
        # Trials are interleaved (round-robin over executors) so that load from elsewhere hits all alike.
        configs = (("inline", 1), ("subprocess", 1), ("warm", 1), ("subprocess", 2), ("warm", 2))
        runs: dict[tuple[str, int], list[tuple[float, list[float], list[float]]]] = {c: [] for c in configs}
        for trial in range(trials):
            for executor, jobs in configs:
                runs[executor, jobs].append(pods(scenario, executor, jobs, n))
            print(f"  trial {trial + 1}: " + ", ".join(f"{e} jobs={j} {ms(runs[e, j][-1][0] / n)}/pod"
                                                      for e, j in configs), flush=True)
        steady = {key: med([med([b - a for a, b in itertools.pairwise(f)]) for _, f, _ in rs])
                  for key, rs in runs.items()}
        first = {key: med([f[0] for _, f, _ in rs]) for key, rs in runs.items()}
        inner = {key: med([x for _, _, i in rs for x in i]) for key, rs in runs.items()}
        per_pod = {key: med([w / n for w, _, _ in rs]) for key, rs in runs.items()}
        # jobs=2: between the first and the last finish, n - jobs pods ran.
        spread2 = {key: med([(f[-1] - f[0]) / (n - key[1]) for _, f, _ in rs]) for key, rs in runs.items()}
        ready = med([pod_process("serve", "", b'"ready"')[0] for _ in range(trials)])

        # 3. a cold pod's parts.
        spec, env = specs_of(scenario)[0], pod_environment()
        requirements = tuple(spec.environment.get("pip", ()))
        record = environment_record(requirements)
        # As the subprocess executor hands it to every pod after the first one.
        bare_env = {**env, RECORD_VARIABLE: json.dumps(record)}
        starts, loads, numpys, bares = [], [], [], []
        for _ in range(k):  # interleaved, like the trials
            starts.append(timed(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)))
            loads.append(timed(lambda: subprocess.run([sys.executable, "-c", IMPORTS], env=env, check=True)))
            numpys.append(timed(lambda: subprocess.run([sys.executable, "-c", NUMPY], env=env, check=True)))
            bares.append(pod_process("run -", spec.to_json(), b'"finished"', bare_env))
        interp, imports, numpy_s = med(starts), med(loads) - med(starts), med(numpys) - med(starts)
        bare, shutdown = med([w for _, w in bares]), med([w - f for f, w in bares])
        env_cold = med([timed(lambda: environment_record(requirements)) for _ in range(k)])
        env_base = med([timed(lambda: environment_record(requirements, record)) for _ in range(k)])
        events: list[dict[str, Any]] = []
        for _ in range(2):
            run_pod(spec, lambda e: None, record)  # warm-up: first-time imports and caches
        in_process = med([timed(lambda: run_pod(spec, events.append, record)) for _ in range(max(k, 10))])
        sample = [{**e, "pod": spec.pod, "t": time.time()} for e in events[:5]]
        assert [e["event"] for e in sample][-1] == "finished", [e["event"] for e in sample]
        store = Store(Path(tmp) / "breakdown.db")
        run_id, store_times = store.begin_run("bench", 1), []
        for repeat in range(max(k, 10)):
            t0 = time.perf_counter()
            store.start_pod(run_id, spec.identity, repeat)
            for e in sample:
                store.record(run_id, spec.identity, repeat, e)
            store_times.append(time.perf_counter() - t0)
        store.close()
        store_s = med(store_times)

        # 4. per stored point: a checkpoint and 2 metrics, as run_pod emits them.
        checkpoint = next(e for e in sample if e["event"] == "checkpoint")
        metric = {**next(e for e in sample if e["event"] == "metric"), "raw": 0.0}
        pstore = Store(Path(tmp) / "points.db")
        prun = pstore.begin_run("bench", 1)
        pstore.start_pod(prun, spec.identity, 0)
        t0 = time.perf_counter()
        for i in range(1, points + 1):
            pstore.record(prun, spec.identity, 0, {**checkpoint, "checkpoint": i, "epoch": i, "loss": 1.0 / i})
            for name in ("Error", "Error2"):
                pstore.record(prun, spec.identity, 0, {**metric, "checkpoint": i, "name": name, "value": 1.0 / i})
        point_s = (time.perf_counter() - t0) / points
        pstore.close()
        del keep
        os.chdir(ROOT)

    # 5. the table.
    base, first_in = steady["inline", 1], first["inline", 1]

    def row(label: str, value: float, ref: float | None = None, target: float | None = None) -> list[str]:
        ratio = f"{value / ref:.1f}×" if ref and ref > 0 else ""
        goal = f"≤ {target:g} ms" if target is not None else ""
        ok = ("✓" if value * 1e3 <= target else "✗") if target is not None else ""
        return [label, ms(value) if abs(value) >= 1e-3 else f"{value * 1e3:.3f} ms", ratio, goal, ok]

    cold, warm, over_in = steady["subprocess", 1], steady["warm", 1], base - in_process
    parts = interp + imports + env_base + in_process + shutdown
    floor = interp + numpy_s
    rows = [
        row(f"**inline**, per pod (steady, jobs=1, N={n})", base, base),
        row("**subprocess (cold)**, per pod (steady, jobs=1)", cold, base),
        row("**warm**, per pod, excluding the worker's start-up (steady, jobs=1)", warm, base),
        row("warm worker start-up (`serve` until `ready`)", ready),
        row("warm, first pod (run() call to its `finished`, start-up included)", first["warm", 1], first_in),
        row(f"warm, all in: wall / N (N={n}, start-up included)", per_pod["warm", 1], per_pod["inline", 1]),
        row("subprocess, first pod (run() call to its `finished`)", first["subprocess", 1], first_in),
        row("the pod's own `wall_ms` (rebuild + run): inline", inner["inline", 1], inner["inline", 1]),
        row("  … in a cold subprocess pod", inner["subprocess", 1], inner["inline", 1]),
        row("  … in a warm (forked) pod", inner["warm", 1], inner["inline", 1]),
        row("subprocess, jobs=2: wall / N", per_pod["subprocess", 2], base),
        row("  steady: (last − first `finished`) / (N − 2)", spread2["subprocess", 2], base),
        row("warm, jobs=2: wall / N", per_pod["warm", 2], base),
        row("  steady: (last − first `finished`) / (N − 2)", spread2["warm", 2], base),
        row("bare cold pod: `python -m saibench_jupyter.pods run -` fed the spec, no run()", bare, base),
        row("  parent's share of a cold pod (subprocess steady − bare pod)", cold - bare),
        row(f"    of which store writes of one pod's {len(sample)} events (`start_pod` + `record`)", store_s),
        row("  bare pod part: interpreter start (`python -c pass`, pod environment)", interp),
        row("  bare pod part: imports (shim, runtime, planner, numpy)", imports),
        row("    of which `import numpy` (the scenario's own import)", numpy_s),
        row("  bare pod part: `environment_record()` from the executor's record of an earlier pod", env_base),
        row("    (the first pod of an interpreter: `environment_record()` from nothing)", env_cold),
        row("  bare pod part: `run_pod` in this process (after a warm-up)", in_process),
        row("  bare pod part: after its `finished` line (interpreter shutdown)", shutdown),
        row("  bare pod, the rest: first-time costs in the pod's run (bare − parts; the parts are "
            "separate processes, so it can come out below zero)", bare - parts),
        row(f"**per stored point**: checkpoint + 2 metrics (`Store.record`, {points:,})", point_s, None, 1.0),
        row("**harness overhead, cold** (subprocess − in-process run)", cold - in_process, over_in, 150.0),
        row("  the floor under it, no harness at all: interpreter start + `import numpy`", floor),
        row("  the harness's own share, cold (subprocess − floor − in-process run)", cold - floor - in_process),
        row("**harness overhead, warm** (warm − in-process run)", warm - in_process, over_in, 20.0),
        row("harness overhead, inline (inline − in-process run)", over_in, over_in),
    ]
    table = "\n".join(["| figure | value | vs inline | target |  |", "|---|--:|--:|---|:-:|",
                       *("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows)])
    command = "python benchmarks/pods.py" + (" --quick" if args.quick else "") + (
        f" --pods {args.pods}" if args.pods else "") + (f" --trials {args.trials}" if args.trials else "")
    load = (f"; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) when written"
            if hasattr(os, "getloadavg") else "")
    section = "\n".join([
        START, *latest(command, machine_line() + load),
        f"* N = {n} pods per `run()`, {trials} trial(s) each, medians; interpreter and import figures are medians "
        f"of {k} runs; \"vs inline\" divides by the inline figure (overheads: by inline's overhead)",
        "", table, END,
    ])
    publish(args, START, END, section, INTRO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
