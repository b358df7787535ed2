#!/usr/bin/env python
"""SAIBench beside benchopt: the same least-squares benchmark run end to end by both, interleaved.

The workload (``benchmarks/benchopt_lsq/`` for benchopt, ``benchmarks/lsq_sail.py`` for SAIBench;
both call the numerics of ``benchmarks/benchopt_lsq/benchmark_utils``): least squares on two
generated designs (gaussian, correlated) × two sizes (500 × 50, 2000 × 200), five NumPy solvers
(normal equations, lstsq, QR: one point each; gradient descent and conjugate gradients: a curve
over max_iter = 0, 1, 2, 4, ..., 128). Twenty (dataset, solver) combinations, 84 points.

Each run is a fresh process in a fresh folder, as a user would type it:
``python -m benchopt run benchmarks/benchopt_lsq --no-plot -n 8 ...`` (its default: in-process,
one at a time, with its joblib cache in the fresh folder) and ``saibench run benchmarks/lsq_sail.py``
(every point an isolated pod; its default executor and jobs, then each executor named). Both
get ``OPENBLAS_NUM_THREADS=1`` (a SAIBench pod's ``Resources(cpus=1)`` means one BLAS thread)
and bytecode caching on. Measured per run: wall (``time.perf_counter``) and CPU time
(``resource.getrusage``: children + self, so pods and warm workers count).

Three workloads separate the costs: ``one`` (1 combination, 1 point: the fixed start-up),
``grid`` (all 20 combinations at 1 point each), ``full`` (20 combinations, 84 points).
Per combination = (grid − one) / 19; per point = (full − grid) / 64: marginal costs, the
solvers' own arithmetic included (the same on both sides; the table gives it too).
Values: every SAIBench point's objective against benchopt's and against the numerics run
directly here (max relative difference). Pods are isolated when each ran in its own process
(the store's pod pids: all distinct and none the controller's).

Run ``python benchmarks/vs_benchopt.py`` (≥ 5 runs each; writes its section of
benchmarks/README.md), ``--quick`` for CI (1 run each of a 5-combination subset, < 30 s; runs
the SAIBench side alone, saying so, where benchopt is not installed), ``--no-write`` to only print.
"""

from __future__ import annotations

import os

# Before NumPy loads (here, for the reference values, and in both sides' processes): one BLAS
# thread. The thread count changes the rounding of BLAS reductions, which conjugate gradients
# amplify: at 2 threads its mid-curve objectives differ from 1 thread's by up to 2e-3.
os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

import argparse
import importlib.util
import json
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _report import add_write_flags, latest, machine_line, publish

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "benchopt_lsq"
SAIL = ROOT / "benchmarks" / "lsq_sail.py"
sys.path.insert(0, str(BENCH))
import benchmark_utils as lsq  # noqa: E402  (the shared numerics, for the reference values)

START, END = "<!-- vs-benchopt:start -->", "<!-- vs-benchopt:end -->"
#: benchopt solver name -> SAIBench model name
#: (the per-budget models: one run per max_iter, as benchopt's runs; lsq_sail.py's GradientDescent and
#: ConjugateGradient sample one run by callback instead, and give the same values at the same counts)
MODELS = {"normal-equations": "NormalEquations", "lstsq": "Lstsq", "qr": "QR", "gd": "GradientDescentPerBudget",
          "cg": "ConjugateGradientPerBudget"}
CLI = "import sys; from saibench_jupyter.cli import main; sys.exit(main())"
#: (label, executor for --executor or None for the default)
SAIB_SIDES = (("default", None), ("subprocess", "subprocess"), ("warm", "warm"), ("inline", "inline"))
INTRO = """\
## Beside benchopt: the same benchmark, end to end

`benchmarks/vs_benchopt.py` runs one least-squares benchmark with
[benchopt](https://benchopt.github.io) (`benchmarks/benchopt_lsq/`, an ordinary benchopt
benchmark: `objective.py`, `datasets/`, `solvers/`) and with SAIBench (`benchmarks/lsq_sail.py`:
a problem with a `Suggest` grid over the datasets, one `Solver` model per solver,
`Suggest(max_iter, ...)` for the curves, the objective as a metric), each from its own command
line, interleaved (each run starting with another side), in fresh folders. Both sides call the
same numerics (`benchmarks/benchopt_lsq/benchmark_utils`), so their objective values must agree
point for point; the script checks that they do and exits 1 where they don't. benchopt runs
everything in its own process; SAIBench runs every point as an isolated pod. Details in the
script's docstring.

Install benchopt with the `bench` extra: `pip install -e '.[bench]'`. benchopt 1.10 needs no
torch or CUDA (PyYAML, click, PyGithub, psutil, line-profiler, joblib, Mako, pyarrow, matplotlib,
plotly, NumPy, SciPy, pandas); on top of `.[dev]` it adds 7 small packages in about 6 s.

```bash
python benchmarks/vs_benchopt.py            # 5 runs each; prints the table and rewrites the section below
python benchmarks/vs_benchopt.py --no-write # prints only
python benchmarks/vs_benchopt.py --quick    # 1 run each of a subset: a CI smoke test (SAIBench alone without benchopt)
```

Targets: with the default executor, end to end ≤ 0.8× benchopt, and a per-combination cost
≤ benchopt's, every pod isolated.

"""

med = statistics.median
#: the largest relative difference of an objective value that counts as agreeing
TOLERANCE = 1e-12


@dataclass(frozen=True)
class Workload:
    """Which datasets and solvers a run covers, and how many points each iterative curve has."""

    name: str
    kinds: tuple[str, ...]
    sizes: tuple[int, ...]
    solvers: tuple[str, ...]
    points: int

    @property
    def combinations(self) -> int:
        return len(self.kinds) * len(self.sizes) * len(self.solvers)

    @property
    def n_points(self) -> int:
        per = sum(self.points if s in lsq.ITERATIVE else 1 for s in self.solvers)
        return per * len(self.kinds) * len(self.sizes)


ALL = lsq.DIRECT + lsq.ITERATIVE
SIZES = tuple(n for n, _ in lsq.SIZES)
WORKLOADS = {
    "one": Workload("one", ("gaussian",), (500,), ("normal-equations",), 1),
    "grid": Workload("grid", lsq.KINDS, SIZES, ALL, 1),
    "full": Workload("full", lsq.KINDS, SIZES, ALL, 9),
    "quick": Workload("quick", ("gaussian",), (500,), ALL, 3),
}


@dataclass
class Measured:
    wall: float
    cpu: float
    values: dict[tuple[Any, ...], float]
    isolated: tuple[int, int] | None = None  # (pods in a process of their own, pods)
    compute: float = 0.0  # seconds inside the solvers, as the side reports them


def environment() -> dict[str, str]:
    """What both sides run with: one BLAS thread (set above), bytecode caching on, the shared numerics importable."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(BENCH), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (children + self) of one command; its output goes to ``cwd/log.txt``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with open(cwd / "log.txt", "wb") as log:
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    if code != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({code}); its output:\n{(cwd / 'log.txt').read_text()[-3000:]}")
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
    return wall, cpu


def run_benchopt(w: Workload, tmp: Path, env: dict[str, str]) -> Measured:
    import pandas as pd

    out = tmp / "out.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(BENCH), "--no-plot", "-n", str(w.points - 1),
           "--output", str(out)]
    for kind in w.kinds:
        cmd += ["-d", f"{kind}[n_samples=[{','.join(map(str, w.sizes))}]]"]
    for solver in w.solvers:
        cmd += ["-s", solver]
    wall, cpu = timed(cmd, tmp, {**env, "BENCHOPT_CACHE": str(tmp / "cache")})
    df = pd.read_parquet(out)
    values = {}
    for row in df.itertuples():
        kind = str(row.dataset_name).split("[")[0]
        it = int(row.stop_val) if row.solver_name in lsq.ITERATIVE else None
        values[kind, int(row.p_dataset_n_samples), row.solver_name, it] = float(row.objective_value)
    return Measured(wall, cpu, values, compute=float(df["time"].sum()))


def run_saibench(w: Workload, executor: str | None, tmp: Path, env: dict[str, str]) -> Measured:
    db = tmp / "saibench.db"
    cmd = [sys.executable, "-c", CLI, "run", str(SAIL), "--store", str(db),
           "--param", f"kind={list(w.kinds)!r}", "--param", f"n_samples={list(w.sizes)!r}",
           "--param", f"max_iter={lsq.iterations(w.points)!r}"]
    cmd += ["--executor", executor] if executor else []
    for solver in w.solvers:
        cmd += ["--model", MODELS[solver]]
    wall, cpu = timed(cmd, tmp, env)
    solver_of = {m: s for s, m in MODELS.items()}
    values, compute = {}, 0.0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:  # the store's documented schema (docs/benchpods.md)
        rows = con.execute("SELECT s.model, s.params, m.name, m.value FROM metrics m "
                           "JOIN scenarios s ON s.identity = m.identity").fetchall()
        pods = con.execute("SELECT pid, status FROM pods").fetchall()
        controllers = {pid for (pid,) in con.execute("SELECT pid FROM runs")}
    for model, params, name, value in rows:
        p = json.loads(params)
        if name == "LSQSolveMilliseconds":
            compute += value / 1e3
        if name != "LSQObjective":
            continue
        solver = solver_of[model]
        # Parameters are {"Module.param": value}, as everywhere (docs/benchpods.md).
        it = p.get(f"{model}.max_iter") if solver in lsq.ITERATIVE else None
        values[p["LeastSquares.kind"], p["LeastSquares.n_samples"], solver, it] = float(value)
    bad = [s for _, s in pods if s != "ok"]
    if bad or len(pods) != w.n_points:
        raise SystemExit(f"saibench ({executor or 'default'}): {len(pods) - len(bad)} of {w.n_points} pods ok; "
                         f"see {tmp / 'log.txt'}")
    pids = [pid for pid, _ in pods]
    own = sum(1 for pid in pids if pids.count(pid) == 1 and pid not in controllers)
    return Measured(wall, cpu, values, (own, len(pods)), compute)


def reference(w: Workload) -> dict[tuple[Any, ...], float]:
    """Every point's objective, computed here by calling the numerics directly."""
    out = {}
    for kind in w.kinds:
        for n in w.sizes:
            X, y, _ = lsq.make_data(kind, n, n // 10)
            for solver in w.solvers:
                its = lsq.iterations(w.points) if solver in lsq.ITERATIVE else [None]
                for it in its:
                    out[kind, n, solver, it] = lsq.objective(X, y, lsq.solve(solver, X, y, it or 0))
    return out


def max_rel_diff(a: dict[tuple[Any, ...], float], b: dict[tuple[Any, ...], float]) -> float:
    """The largest |a − b| / |b| over the points; infinite where the two cover different points."""
    if a.keys() != b.keys():
        return float("inf")
    return max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-300) for k in a)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 run each of a subset (CI); no README.md unless --write")
    ap.add_argument("--runs", type=int, help="runs of each side per workload (default 5; 1 with --quick)")
    add_write_flags(ap)
    args = ap.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    workloads = [WORKLOADS["quick"]] if args.quick else [WORKLOADS[k] for k in ("one", "grid", "full")]
    have_benchopt = importlib.util.find_spec("benchopt") is not None
    if not have_benchopt:
        print("benchopt is not installed (pip install -e '.[bench]'): running the SAIBench side alone", flush=True)
    sides: list[tuple[str, str | None]] = ([("benchopt", None)] if have_benchopt else []) + [
        (f"saibench {label}", executor) for label, executor in SAIB_SIDES]
    env = environment()
    refs = {w.name: reference(w) for w in workloads}
    got: dict[tuple[str, str], list[Measured]] = {(w.name, s): [] for w in workloads for s, _ in sides}
    print(f"vs benchopt: {runs} run(s) of each side per workload ({', '.join(w.name for w in workloads)}), "
          "interleaved", flush=True)
    for r in range(runs):
        for w in workloads:
            # Each run starts with another side, so that no side always follows the same one.
            for side, executor in sides[r % len(sides):] + sides[:r % len(sides)]:
                tmp = Path(tempfile.mkdtemp(prefix="saibench-vs-benchopt-"))
                try:
                    m = (run_benchopt(w, tmp, env) if side == "benchopt" else run_saibench(w, executor, tmp, env))
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                got[w.name, side].append(m)
            print(f"  run {r + 1}, {w.name}: " + ", ".join(f"{s} {fmt_s(got[w.name, s][-1].wall)}" for s, _ in sides),
                  flush=True)

    head = workloads[-1]  # the end-to-end figure: full (or quick)
    bench = got.get((head.name, "benchopt"))
    walls = {s: med([m.wall for m in got[head.name, s]]) for s, _ in sides}

    def marginal(side: str, hi: str, lo: str, count: int, cpu: bool = False) -> float | None:
        """Extra seconds per unit from workload ``lo`` to ``hi``: of the fastest walls (the runs the
        shared machine disturbed least), or of the median CPU times."""
        if (hi, side) not in got or (lo, side) not in got:
            return None
        if cpu:
            return (med([m.cpu for m in got[hi, side]]) - med([m.cpu for m in got[lo, side]])) / count
        return (min(m.wall for m in got[hi, side]) - min(m.wall for m in got[lo, side])) / count

    def wall_cpu(wall: float | None, cpu: float | None) -> str:
        return "—" if wall is None or cpu is None else f"{fmt_s(wall)} ({fmt_s(cpu)})"

    full, grid, one = WORKLOADS["full"], WORKLOADS["grid"], WORKLOADS["one"]
    combs, points = grid.combinations - one.combinations, full.n_points - grid.n_points
    rows = []
    for side, executor in sides:
        ms = got[head.name, side]
        per_comb = wall_cpu(marginal(side, "grid", "one", combs), marginal(side, "grid", "one", combs, True))
        per_point = wall_cpu(marginal(side, "full", "grid", points), marginal(side, "full", "grid", points, True))
        fixed = med([m.wall for m in got["one", side]]) if ("one", side) in got else None
        ref_diff = max(max_rel_diff(m.values, refs[head.name]) for m in ms)
        bo_diff = (max(max_rel_diff(m.values, bench[0].values) for m in ms)
                   if bench and side != "benchopt" else None)
        iso = ms[0].isolated
        jobs = "1" if side == "benchopt" or executor == "inline" else f"{len(os.sched_getaffinity(0))} (default)"
        rows.append([
            f"**{side}**" if side in ("benchopt", "saibench default") else side, jobs,
            f"{fmt_s(walls[side])} (min {fmt_s(min(m.wall for m in ms))})",
            f"{fmt_s(med([m.cpu for m in ms]))} (min {fmt_s(min(m.cpu for m in ms))})",
            f"{walls[side] / walls['benchopt']:.2f}×" if bench else "—",
            fmt_s(fixed) if fixed is not None else "—",
            per_comb, per_point,
            fmt_s(med([m.compute for m in ms])),
            f"{bo_diff:.1e}" if bo_diff is not None else "—", f"{ref_diff:.1e}",
            "—" if iso is None else f"{iso[0]}/{iso[1]}",
        ])
    table = "\n".join([
        "| side | jobs | end to end, wall: median (min) | CPU, children + self: median (min) | vs benchopt | "
        "fixed (`one`) | per combination: wall (CPU) | per point: wall (CPU) | in the solvers | "
        "values vs benchopt | values vs direct | pods in their own process |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *("| " + " | ".join(row) + " |" for row in rows)])
    # Same numerics, same data, one BLAS thread: the harnesses must not change a single value.
    worst = max(max_rel_diff(m.values, refs[name]) for (name, _), measured in got.items() for m in measured)
    verdict = [f"* values: every point of every run, both sides, within {worst:.1e} (relative) of the numerics "
               f"run directly (tolerance {TOLERANCE:g}) {'✓' if worst <= TOLERANCE else '✗'}"]
    if bench and not args.quick:
        default = "saibench default"
        ratio = walls[default] / walls["benchopt"]
        pc_s = marginal(default, "grid", "one", combs) or 0.0
        pc_b = marginal("benchopt", "grid", "one", combs) or 0.0
        iso = got[head.name, default][0].isolated
        verdict += [
            f"* end to end, default executor: {ratio:.2f}× benchopt (medians; target ≤ 0.8×) "
            f"{'✓' if ratio <= 0.8 else '✗'}",
            f"* per combination, default executor: {fmt_s(pc_s)} vs benchopt's {fmt_s(pc_b)} (wall; target ≤) "
            f"{'✓' if pc_s <= pc_b else '✗'}",
            f"* every pod isolated (default executor): {iso[0]}/{iso[1]} {'✓' if iso and iso[0] == iso[1] else '✗'}",
        ]
    w = head
    command = "python benchmarks/vs_benchopt.py" + (" --quick" if args.quick else "") + (
        f" --runs {args.runs}" if args.runs else "")
    load = (f"; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) when written"
            if hasattr(os, "getloadavg") else "")
    versions = f"benchopt {_version('benchopt')}" if have_benchopt else "benchopt not installed"
    section = "\n".join([
        START, *latest(command, machine_line() + load),
        f"* {versions}, NumPy {_version('numpy')}; `OPENBLAS_NUM_THREADS=1` on both sides",
        f"* end to end = workload `{w.name}`: {len(w.kinds)} dataset kind(s) × {len(w.sizes)} size(s) × "
        f"{len(w.solvers)} solvers = {w.combinations} combinations, {w.n_points} points; {runs} run(s) of each "
        "side, interleaved" + ("" if args.quick else f"; fixed = median wall of `one`; per combination = "
                               f"(`grid` − `one`) / {combs}, per point = (`full` − `grid`) / {points}, of the "
                               "fastest walls and of the median CPU times")
        + "; values: the largest relative difference of any point's objective, over every run",
        "", table, "", *verdict, END,
    ])
    publish(args, START, END, section, INTRO)
    return 0 if worst <= TOLERANCE else 1


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
