#!/usr/bin/env python
"""A tolerance sweep in one pod against one pod per tolerance: the ODE case study's SciPy methods.

``sail_modules/ode.py`` runs each SciPy method on each system as a sweep
(``Solver(fn, sweep=True)``): one pod solves the test IVPs at rtol 1e-3, 1e-4, …, 1e-8,
each solve one point. The other way to draw the same diagram is one scenario per tolerance
(``loosest = tightest = rtol``), one pod each. Both run here through the same executor
(``warm`` by default, ``jobs=2``), interleaved, ``--trials`` times, each with a fresh store:

* wall time of the whole run, and the number of pods and of points;
* whether the two give the same points: right-hand-side evaluations per IVP and grid error at
  every (system, method, tolerance) must be equal (the script exits 1 otherwise), since each
  point of a sweep is that tolerance's solve alone.

Run ``python benchmarks/ode_sweep.py`` (every system and method; writes its section of
benchmarks/README.md), ``--quick`` (Lotka–Volterra, RK45 and LSODA, 1e-3 … 1e-5, one trial;
no README.md unless ``--write``), ``--no-write`` to only print.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import add_write_flags, latest, publish

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- ode-sweep:start -->", "<!-- ode-sweep:end -->"
INTRO = """## ODE tolerance sweeps: one pod per sweep, or one per tolerance

`benchmarks/ode_sweep.py` runs the ODE case study's SciPy methods both ways and checks that
they give the same points (evaluations and grid error, bit for bit).

"""
SYSTEMS = ("LotkaVolterraIVP", "VanDerPolIVP", "RobertsonIVP")
METHODS = ("ODERK45", "ODEDOP853", "ODERadau", "ODEBDF", "ODELSODA")


def _repository() -> Any:
    from saibench_jupyter import Repository

    repo = Repository()
    for name in ("stacks", "metrics", "ode"):
        repo.load(ROOT / "sail_modules" / f"{name}.py")
    return repo


def _scenarios(repo: Any, systems: tuple[str, ...], methods: tuple[str, ...], tightest: float,
               per_tolerance: bool) -> list[Any]:
    from saibench_jupyter import discover

    def found(params: dict[str, Any]) -> list[Any]:
        return list(discover(repo, problem=list(systems), model=list(methods), software="SciPy",
                             params=params).scenarios)

    if not per_tolerance:
        return found({"tightest": [tightest]})
    rtols = [r for r in (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8) if r >= tightest]
    return [s for r in rtols for s in found({"loosest": [r], "tightest": [r]})]


def _run(scenarios: list[Any], executor: str) -> tuple[float, dict[tuple[str, str, float], tuple[float, float]]]:
    """Wall seconds, and each point's (evaluations, grid error) by (system, method, rtol)."""
    from saibench_jupyter import run

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        results = run(scenarios, executor=executor, jobs=2, store=Path(folder) / "s.db", progress=False)
        wall = time.perf_counter() - start
        frame = results.to_dataframe()
    frame = frame[frame.status == "ok"]
    points: dict[tuple[str, str, float], tuple[float, float]] = {}
    for (problem, model, params, checkpoint), rows in frame.groupby(["problem", "model", "params", "checkpoint"]):
        values = dict(zip(rows.metric, rows.value))
        loosest = json.loads(params).get(f"{model}.loosest", 1e-3)
        rtol = float(f"{loosest * 10.0 ** -(int(checkpoint) - 1):.12g}")  # the n-th point: the n-th decade
        points[(problem, model, rtol)] = (values["ODEFunctionEvaluations"], values["ODEGridError"])
    return wall, points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="Lotka–Volterra, RK45 and LSODA to 1e-5, one trial")
    ap.add_argument("--trials", type=int, default=None, help="runs of each way (default 3, 1 with --quick)")
    ap.add_argument("--executor", default="warm", help="the pods' executor (default warm)")
    add_write_flags(ap)
    args = ap.parse_args(argv)
    trials = args.trials or (1 if args.quick else 3)
    systems, methods, tightest = ((SYSTEMS[:1], ("ODERK45", "ODELSODA"), 1e-5) if args.quick
                                  else (SYSTEMS, METHODS, 1e-8))
    repo = _repository()
    ways = {"one pod per sweep": _scenarios(repo, systems, methods, tightest, per_tolerance=False),
            "one pod per tolerance": _scenarios(repo, systems, methods, tightest, per_tolerance=True)}
    walls: dict[str, list[float]] = {way: [] for way in ways}
    points: dict[str, dict[tuple[str, str, float], tuple[float, float]]] = {}
    for trial in range(trials):
        for way, scenarios in ways.items():
            wall, points[way] = _run(scenarios, args.executor)
            walls[way].append(wall)
            print(f"trial {trial + 1}: {way}: {wall:.2f} s", flush=True)
    sweep, separate = points["one pod per sweep"], points["one pod per tolerance"]
    same = sweep == separate
    rows = [f"| {way} | {len(ways[way])} | {len(points[way])} | {statistics.median(walls[way]):.2f} s |"
            for way in ways]
    ratio = statistics.median(walls["one pod per tolerance"]) / statistics.median(walls["one pod per sweep"])
    command = "python benchmarks/ode_sweep.py" + (" --quick" if args.quick else "")
    section = "\n".join([
        START, *latest(command),
        f"* {len(systems)} systems × {len(methods)} SciPy methods, rtol 1e-3 … {tightest:g}, "
        f"`{args.executor}` executor, jobs=2, median of {trials} trial(s)", "",
        "| way | pods | points | wall |", "|---|---|---|---|", *rows, "",
        f"One pod per sweep is **{ratio:.1f}×** faster; the points are "
        + ("identical (evaluations and grid error at every system, method and tolerance)." if same
           else "**not** identical."), END])
    publish(args, START, END, section, INTRO)
    if not same:
        differ = sorted(set(sweep.items()) ^ set(separate.items()))[:5]
        print(f"the two ways differ, e.g. {differ}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
