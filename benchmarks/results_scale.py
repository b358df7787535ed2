#!/usr/bin/env python
"""Benchmark of reading results at scale: a store of N points, read as a frame and drawn as a chart.

The store is generated: families of scenarios (model × software on one problem) sweeping
a parameter, each scenario run for several repeats of many checkpoints (a training curve:
an error that falls and a wall time that grows), with two metrics per checkpoint (a
precision and a work metric) and a couple of scenarios that failed (the chart's DNF).
Scenarios, runs and pods go through the :class:`~saibench_jupyter.results.Store` API;
the points and metrics, the bulk of the file, are inserted in one transaction on a
second connection (the store's one-event-per-transaction writes would take minutes), in
the tables' own layout. What is measured is only the real read paths:

* raw SQL read: the tidy frame's rows as one SQL join (pods, scenarios, points, metrics),
  fetched with ``sqlite3`` alone, what reading those rows costs before any frame is made
  (``to_dataframe`` reads less than that: each scenario's text once, not on every row);
* ``Results(path).to_dataframe()``;
* ``plot_work_precision(Results(path))``: the figure object, from the store;
* chart to JSON: the same and ``fig.to_json()``, what a notebook sends to the browser;

medians of several repetitions (wall ``time.perf_counter`` and CPU ``time.process_time``:
on a shared machine the CPU time is the steadier), then each step once more in a fresh
process for what it adds to the peak resident memory (Linux's ``VmHWM``, from its size
after the imports and a warm-up; Arrow's and SQLite's allocations included), against the
size of the data (the store file, and the frame's own ``memory_usage(deep=True)``).

Targets (2-core machine), at 100,000 points: ``to_dataframe`` ≤ 2× the raw SQL read, the
chart ≤ 1 s.

Run ``python benchmarks/results_scale.py`` (100,000 points; writes its section of
benchmarks/README.md), ``--large`` for 1,000,000 points too, ``--quick`` for a CI smoke
test (3,000 points, one repetition, no memory measures; no README.md unless ``--write``),
``--no-write`` to only print, ``--points N`` to choose N, ``--steps raw frame`` to measure
only some steps.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _report import README, add_write_flags, latest, write_section, writes_readme

from saibench_jupyter.results import Results, Store
from saibench_jupyter.ui import plot_work_precision

POINTS = (100_000,)
LARGE = 1_000_000
QUICK_POINTS = (3_000,)
#: The generated shape: scenarios with points (in FAMILIES families) × REPEATS repeats × checkpoints (N / the
#: rest), and FAILING scenarios (their indices) whose pods failed without a point: the chart's DNF.
SCENARIOS, FAMILIES, REPEATS = 100, 4, 2
FAILING = (0, 51)
TARGET_N = 100_000
TARGET_FRAME_RATIO = 2.0
TARGET_CHART_S = 1.0
COUNTERS = ("ElapsedMilliseconds", "TrainingMilliseconds", "InferenceMilliseconds", "SamplesSeen", "Epochs",
            "Flops", "PeakMemoryBytes")
METRIC_INFO = {"Error": {"axis": "precision", "better": "lower", "unit": None},
               "WallTime": {"axis": "work", "better": "lower", "unit": "s"}}
#: The tidy frame's rows, as Results.to_dataframe() reads them (the same joins and order).
RAW_SQL = (f"SELECT p.identity, s.scenario, s.label, s.family, s.problem, s.model, s.software, s.hardware, s.params, "
           f"p.repeat, p.status, pt.stage, pt.checkpoint, pt.epoch, pt.loss, "
           f"{', '.join(f'pt.{c}' for c in COUNTERS)}, p.compile_ms, m.name, m.value "
           "FROM pods p LEFT JOIN scenarios s ON s.identity = p.identity "
           "LEFT JOIN points pt ON pt.identity = p.identity AND pt.repeat = p.repeat "
           "LEFT JOIN metrics m ON m.identity = pt.identity AND m.repeat = pt.repeat AND m.stage = pt.stage "
           "AND m.checkpoint = pt.checkpoint ORDER BY p.identity, p.repeat, pt.stage, pt.checkpoint, m.name")

START, END = "<!-- results-scale:start -->", "<!-- results-scale:end -->"
INTRO = """\
## Results at scale: reading a large store and charting it

`benchmarks/results_scale.py` generates a store of N points (families of scenarios
sweeping a parameter, several repeats of a long training curve each, two metrics per
point, two scenarios that failed) and times the real read paths against the raw SQL read
of the same rows: `Results.to_dataframe()`, the work–precision chart
(`plot_work_precision`, from the store to the figure) and its JSON, with each step's
peak memory. Targets (2-core machine), at 100,000 points: `to_dataframe` ≤ 2× the raw
read, the chart ≤ 1 s.

```bash
python benchmarks/results_scale.py            # 100,000 points; prints the table and rewrites the section below
python benchmarks/results_scale.py --large    # 1,000,000 points too
python benchmarks/results_scale.py --no-write # prints only
python benchmarks/results_scale.py --quick    # small N: a smoke test for CI
```

"""


def _identity(k: int) -> str:
    return hashlib.sha256(f"scenario-{k}".encode()).hexdigest()[:16]


def generate(path: Path, n_points: int) -> dict[str, Any]:
    """A store of ``n_points`` points (rounded to whole curves) at ``path``; returns its shape."""
    checkpoints = max(1, round(n_points / (SCENARIOS * REPEATS)))
    softwares = ("PyTorch", "JAX", "NumPy", "Julia")
    store = Store(path)
    run = store.begin_run("local", 1)
    finished: list[tuple[str, int, int, int]] = []  # identity, repeat, family, k of each pod with points
    for k in range(SCENARIOS + len(FAILING)):
        identity, family, width = _identity(k), k % FAMILIES, 16 * (1 + k // FAMILIES)
        software = softwares[family % len(softwares)]
        store.add_scenario(identity, {
            "scenario": identity[:4], "label": f"Heat × MLP(hiddenSize={width}) × {software} × CPU",
            "family": f"Heat × MLP × {software} × CPU", "problem": "Heat", "model": "MLP", "software": software,
            "hardware": "CPU", "params": {"problem": {}, "model": {"hiddenSize": width}, "software": {},
                                          "hardware": {}},
            "metrics": ["Error", "WallTime"], "metric_info": METRIC_INFO, "version": "v1"})
        for repeat in range(REPEATS):
            store.start_pod(run, identity, repeat)
            store.record(run, identity, repeat, {"event": "started", "t": 1.0, "pid": 1, "environment": None})
            if k in FAILING:
                store.record(run, identity, repeat, {
                    "event": "failed", "t": 2.0, "kind": "memory", "message": "MemoryError: out of memory",
                    "module": "MLP", "stage": 1, "checkpoint": None})
                continue
            store.record(run, identity, repeat, {"event": "finished", "t": 3.0, "status": "ok", "wall_ms": 1.0,
                                                 "compile_ms": 5.0})
            finished.append((identity, repeat, family, k))
    store.end_run(run, "finished")
    store.close()

    def curve(identity: str, repeat: int, family: int, k: int) -> Iterator[tuple[float, float]]:
        """(Error, milliseconds) at each checkpoint: an error that falls and a time that grows."""
        scale, speed = 1.0 + 0.1 * (k % 7) + 0.05 * repeat, 1.0 + 0.3 * family + 0.01 * repeat
        return ((scale / math.sqrt(c), speed * 10.0 * c) for c in range(1, checkpoints + 1))

    def points() -> Iterator[tuple[Any, ...]]:
        for identity, repeat, family, k in finished:
            for c, (error, ms) in enumerate(curve(identity, repeat, family, k), 1):
                yield identity, repeat, 1, c, c, error, ms, 0.8 * ms, 0.1 * ms, 32 * c, c, 1e6 * c, 1e6

    def metrics() -> Iterator[tuple[Any, ...]]:
        for identity, repeat, family, k in finished:
            for c, (error, ms) in enumerate(curve(identity, repeat, family, k), 1):
                yield identity, repeat, 1, c, "Error", error, None
                yield identity, repeat, 1, c, "WallTime", ms / 1000.0, None

    # The bulk of the file on a second connection, in one transaction (the store's writes are one per event).
    bulk = sqlite3.connect(path, isolation_level=None)
    bulk.execute("BEGIN IMMEDIATE")
    columns = ", ".join(f'"{c}"' for c in COUNTERS)
    bulk.executemany(f"INSERT INTO points (identity, repeat, stage, checkpoint, epoch, loss, {columns}) "
                     f"VALUES ({', '.join('?' * (6 + len(COUNTERS)))})", points())
    bulk.executemany("INSERT INTO metrics (identity, repeat, stage, checkpoint, name, value, raw) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", metrics())
    bulk.execute("COMMIT")
    bulk.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    bulk.close()
    return {"points": len(finished) * checkpoints, "scenarios": SCENARIOS + len(FAILING), "repeats": REPEATS,
            "checkpoints": checkpoints, "bytes": path.stat().st_size}


def raw_read(path: Path) -> int:
    """The tidy frame's rows with sqlite3 alone."""
    db = sqlite3.connect(path)
    try:
        return len(db.execute(RAW_SQL).fetchall())
    finally:
        db.close()


def frame(path: Path) -> Any:
    return Results(path).to_dataframe()


def chart(path: Path) -> Any:
    return plot_work_precision(Results(path))


def chart_json(path: Path) -> str:
    return str(chart(path).to_json())


#: The measured steps: name -> what runs (on the store's path).
STEPS: dict[str, Callable[[Path], Any]] = {"raw": raw_read, "frame": frame, "chart": chart, "json": chart_json}


def timed(step: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU seconds of ``step()`` over ``repeat`` runs, and its last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        out = None
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        out = step()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls, cpus, out


def _status(field: str) -> int:
    """A memory figure of this process from /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def child(step: str, path: Path) -> None:
    """In a fresh process: resident memory after the imports and a warm-up, then at the peak of ``step``.

    The peak is Linux's high-water mark, reset after the warm-up (``clear_refs``): ``ru_maxrss``
    would not do, as a process started by another inherits its peak across ``exec``.
    """
    import json

    tiny = path.with_name("warm-" + path.name)
    generate(tiny, 200)
    STEPS["json"](tiny)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from the current size
    base = _status("VmRSS")
    STEPS[step](path)
    print(json.dumps({"base": base, "peak": _status("VmHWM")}))


def memory(step: str, path: Path) -> dict[str, int]:
    """What ``step`` adds to a fresh process's peak resident memory (Arrow's and SQLite's memory included, which
    tracemalloc does not see)."""
    import json
    import os
    import subprocess

    done = subprocess.run([sys.executable, __file__, "--child", step, str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=True)
    out = json.loads(done.stdout.splitlines()[-1])
    return {"rss": out["peak"] - out["base"]}


def fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} kB"


def measure(n: int, repeat: int, folder: Path, steps: list[str], memory_too: bool) -> dict[str, Any]:
    """Generate a store of ``n`` points in ``folder`` and measure each read path on it (``memory_too``: its peak
    memory as well, in a fresh process per step)."""
    path = folder / f"results-{n}.db"
    t = time.perf_counter()
    shape = generate(path, n)
    print(f"  {shape['points']:,} points ({shape['scenarios']} scenarios × {shape['repeats']} repeats × "
          f"{shape['checkpoints']} checkpoints, 2 metrics each): generated in {time.perf_counter() - t:.1f} s, "
          f"{fmt_mb(shape['bytes'])}", flush=True)
    out: dict[str, Any] = {**shape, "times": {}, "memory": {}}
    for step in steps:
        walls, cpus, result = timed(lambda s=step: STEPS[s](path), repeat)  # type: ignore[misc]
        out["times"][step] = (statistics.median(walls), statistics.median(cpus))
        if step == "raw":
            out["rows"] = result
        elif step == "frame":
            out["frame_bytes"] = int(result.memory_usage(deep=True).sum())
        elif step == "chart":
            out["chart_points"] = sum(len(t.x) for t in result.data)
            out["traces"], out["kinds"] = len(result.data), sorted({t.type for t in result.data})
        elif step == "json":
            out["json_bytes"] = len(result)
        del result
        wall, cpu = out["times"][step]
        if memory_too:
            out["memory"][step] = memory(step, path)
        added = f"; peak memory +{fmt_mb(out['memory'][step]['rss'])}" if memory_too else ""
        print(f"    {step}: {fmt_s(wall)} (CPU {fmt_s(cpu)}){added}", flush=True)
    return out


def _cell(r: dict[str, Any], step: str, target: str = "") -> str:
    if step not in r["times"]:
        return "–"
    wall, cpu = r["times"][step]
    return f"{fmt_s(wall)} (CPU {fmt_s(cpu)}){target}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3,000 points, one repetition, no memory measures (CI "
                    "smoke test); does not write README.md unless --write is given")
    ap.add_argument("--large", action="store_true", help="1,000,000 points as well")
    add_write_flags(ap)
    ap.add_argument("--points", type=int, nargs="+", help="store sizes in points (default 100000)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per step (1 with --quick)")
    ap.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS),
                    help="what to measure (default: all)")
    ap.add_argument("--child", nargs=2, metavar=("STEP", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    sizes = list(args.points or (QUICK_POINTS if args.quick else POINTS)) + ([LARGE] if args.large else [])
    repeat = 1 if args.quick else args.repeat

    results = []
    with tempfile.TemporaryDirectory(prefix="saibench-results-scale-") as tmp:
        # Imports (pandas, Plotly) and first-call costs out of the timings: every step once on a small store.
        generate(Path(tmp) / "warm.db", 200)
        for step in STEPS.values():
            step(Path(tmp) / "warm.db")
        for n in sizes:
            results.append(measure(n, repeat, Path(tmp), args.steps, not args.quick))

    speed, memory_rows = [], []
    for r in results:
        targeted = r["points"] == TARGET_N
        raw = r["times"].get("raw", (math.nan, math.nan))[0]
        frame_target = chart_target = ""
        if "frame" in r["times"]:
            ratio = r["times"]["frame"][0] / raw
            ok = "✓" if ratio <= TARGET_FRAME_RATIO else "✗"
            frame_target = f", {ratio:.2f}× raw" + (f" (≤ {TARGET_FRAME_RATIO:g}× {ok})" if targeted else "")
        if "chart" in r["times"] and targeted:
            chart_target = f" (≤ {TARGET_CHART_S:g} s {'✓' if r['times']['chart'][0] <= TARGET_CHART_S else '✗'})"
        drawn = (f"{r['chart_points']:,} in {r['traces']} {'/'.join(r['kinds'])}" if "chart_points" in r else "–")
        sent = f" ({fmt_mb(r['json_bytes'])})" if "json_bytes" in r else ""
        speed.append(f"| {r['points']:,} | {r.get('rows', 0):,} | {_cell(r, 'raw')} "
                     f"| {_cell(r, 'frame', frame_target)} | {_cell(r, 'chart', chart_target)} | {drawn} "
                     f"| {_cell(r, 'json', sent)} |")
        size = r.get("frame_bytes")
        cells = []
        for step in STEPS:
            m = r["memory"].get(step)
            cells.append("–" if m is None else f"+{fmt_mb(m['rss'])}"
                         + (f" ({m['rss'] / size:.1f}×)" if size else ""))
        memory_rows.append(f"| {r['points']:,} | {fmt_mb(r['bytes'])} | {fmt_mb(size) if size else '–'} | "
                           + " | ".join(cells) + " |")
    table = "\n".join([
        "| points | tidy rows | raw SQL read | `to_dataframe` | chart (figure) | chart points, traces "
        "| chart to JSON (size) |",
        "|--:|--:|--:|--:|--:|--:|--:|",
        *speed,
        "",
        "| points | store file | the frame (`memory_usage(deep=True)`) | peak memory: raw SQL read | `to_dataframe` "
        "| chart | chart to JSON |",
        "|--:|--:|--:|--:|--:|--:|--:|",
        *memory_rows,
    ])
    print()
    print(table)

    if not writes_readme(args):
        return 0
    command = "python benchmarks/results_scale.py" + (" --quick" if args.quick else "") + (
        f" --points {' '.join(map(str, args.points))}" if args.points else "") + (
        " --large" if args.large else "") + (f" --repeat {args.repeat}" if args.repeat != 3 and not args.quick else "")
    section = "\n".join([
        START,
        *latest(command),
        f"* shape: {SCENARIOS} scenarios with points ({FAMILIES} families) and {len(FAILING)} whose pods failed, "
        f"× {REPEATS} repeats × N / {SCENARIOS * REPEATS} checkpoints, 2 metrics per point; times are medians of "
        f"{repeat} repetition(s), wall (and CPU); peak memory is what the step adds to the peak resident memory "
        "of a fresh process (after its imports), and its multiple of the frame's size",
        "",
        table,
        END,
    ])
    write_section(START, END, section, INTRO)
    print(f"\nwrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
