#!/usr/bin/env python
"""The figures of sail_modules' case studies: what each model reaches, against what it costs.

Each case study's scenarios run in this process through ``discover`` and ``run_scenario``
(on ``CPU(threads=1)``, which sets one thread as it does in pods), on the library's defaults:

* digits: the paper's MLP (width 128, PyTorch, 10 epochs) and logistic regression, test accuracy;
* Burgers: the finite-volume solver at 32 ... 512 cells, and the MLP surrogate at each
  sample-count stage (32 ... 256 samples), nRMSE against the spectral reference;
* ODE: RK45 and DOP853 on Lotka–Volterra over the tolerance sweep (grid error, evaluations);
  every method on Van der Pol (μ = 1000) and Robertson at rtol 1e-3 and 1e-7 (DNF when it runs
  past its evaluation cap);
* MD: the Behler–Parrinello potential trained on energies and forces (force matching) at 10, 50 and
  200 training frames, energy and force MAE on held-out frames and the closed loop's RMSD;
* QM9: the per-element linear baseline (atom counts), the paper's Fig. 7 permutation-invariant
  model and the Behler–Parrinello-style potential at 100, 300 and 1000 training molecules (ragged
  sets of 3-29 atoms), energy MAE in kcal/mol on 200 held-out molecules;
* segmentation: the paper's pretrain-then-segment model's IoU at the end of each of 10 stages,
  and Otsu's;
* hypothesis: SINDy (STLSQ) and the least-squares baseline at each noise level, exact recovery
  and coefficient error.

Run ``python benchmarks/case_studies.py`` (writes its section of benchmarks/README.md; several
minutes), ``--quick`` for a smoke test (fewer points and epochs; no README.md unless ``--write``),
``--no-write`` to only print.
"""

from __future__ import annotations

import argparse
import datetime
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from _report import machine_line, write_section

from saibench_jupyter import Machine, Repository, ScenarioResult, discover, run_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "sail_modules"
MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
START, END = "<!-- case-studies:start -->", "<!-- case-studies:end -->"
INTRO = """\
## Case studies: what the library's models reach

`benchmarks/case_studies.py` runs each case study of `sail_modules` in-process on its default
parameters and prints the quality figures its tests hold as bars (the tests use fewer epochs).

"""


def _repo(*files: str) -> Repository:
    repo = Repository()
    for name in ("stacks", "metrics", *files):
        repo.load(LIBRARY / f"{name}.py")
    return repo


def _runs(repo: Repository, settings: dict[str, Any] | None = None, by: str | None = None,
          **where: Any) -> list[ScenarioResult]:
    """Every scenario ``discover(repo, **where)`` finds, run, in the order of its parameter ``by``."""
    lattice = discover(repo, machine=MACHINE, **where)
    if not lattice.scenarios:
        raise SystemExit(f"no scenario for {where}:\n{lattice.explain()}")
    scenarios = lattice.scenarios
    if by is not None:
        role, name = by.split(".")
        scenarios = sorted(scenarios, key=lambda s: s.params[f"{getattr(s, role)}.{name}"])
    return [run_scenario(s, settings=settings) for s in scenarios]


def _final(result: ScenarioResult, metric: str) -> float | None:
    return result.points[-1].metrics.get(metric) if result.ok and result.points else None


def _series(result: ScenarioResult, metric: str) -> list[float]:
    """A metric at every point of a run (a sweep's tolerances, loosest first); empty for a DNF."""
    return [p.metrics[metric] for p in result.points] if result.ok else []


def _stage_ends(result: ScenarioResult, metric: str) -> list[float]:
    last = {p.stage: p for p in result.points}
    return [last[s].metrics[metric] for s in sorted(last)]


def _fmt(value: float | None) -> str:
    return "DNF" if value is None else f"{value:.3g}"


def digits(quick: bool) -> Iterable[str]:
    repo = _repo("digits")
    (mlp,) = _runs(repo, {"epochs": 3 if quick else 10}, problem="Digits", model="MLP", software="PyTorch",
                   params={"MLP.hiddenSize": 128})
    (logistic,) = _runs(repo, problem="Digits", model="LogisticRegression", software="SciPy")
    yield f"| digits | MLP(hiddenSize=128), PyTorch | test accuracy | {_fmt(_final(mlp, 'Accuracy'))} |"
    yield f"| digits | LogisticRegression | test accuracy | {_fmt(_final(logistic, 'Accuracy'))} |"


def burgers(quick: bool) -> Iterable[str]:
    repo = _repo("burgers")
    cells = [32, 128] if quick else [32, 64, 128, 256, 512]
    solver = _runs(repo, by="model.cells", model="BurgersFiniteVolume",
                   params={"BurgersPDE.stages": 1, "BurgersFiniteVolume.cells": cells})
    errors = " → ".join(_fmt(_final(r, "BurgersNRMSE")) for r in solver)
    yield f"| Burgers | finite volumes, {' / '.join(map(str, cells))} cells | nRMSE | {errors} |"
    (mlp,) = _runs(repo, {"epochs": 3} if quick else None, model="BurgersMLP", software="PyTorch")
    stages = " → ".join(_fmt(e) for e in _stage_ends(mlp, "BurgersNRMSE"))
    yield f"| Burgers | MLP surrogate, 32 / 64 / 128 / 256 samples | nRMSE | {stages} |"


def ode(quick: bool) -> Iterable[str]:
    repo = _repo("ode")
    # One run per method sweeps the tolerances (Solver(fn, sweep=True)): a point per tolerance.
    tightest = 1e-6 if quick else 1e-8
    for model in ("ODERK45", "ODEDOP853"):
        (run,) = _runs(repo, problem="LotkaVolterraIVP", model=model, params={f"{model}.tightest": tightest})
        errors = " → ".join(_fmt(e) for e in _series(run, "ODEGridError"))
        evaluations = " → ".join(_fmt(e) for e in _series(run, "ODEFunctionEvaluations"))
        yield f"| ODE | {model}, Lotka–Volterra, rtol 0.001 … {tightest:g} | grid error | {errors} |"
        yield f"| ODE | {model}, Lotka–Volterra, rtol 0.001 … {tightest:g} | evaluations | {evaluations} |"
    methods = ["ODERK45", "ODELSODA"] if quick else ["ODERK45", "ODEDOP853", "ODERadau", "ODEBDF", "ODELSODA"]
    for problem in ("VanDerPolIVP", "RobertsonIVP"):
        for model in methods:
            (run,) = _runs(repo, problem=problem, model=model, params={f"{model}.tightest": 1e-7})
            points = list(zip(_series(run, "ODEGridError"), _series(run, "ODEFunctionEvaluations"))) or [(None, None)]
            cells = ", ".join(f"{_fmt(e)} ({_fmt(n)} evals)" for e, n in (points[0], points[-1]))
            yield f"| ODE | {model}, {problem}, rtol 1e-3, 1e-7 | grid error (evaluations) | {cells} |"


def md(quick: bool) -> Iterable[str]:
    repo = _repo("md")
    frames = [10, 50] if quick else [10, 50, 200]
    # Quick: 20 epochs at a larger step; the bar is a force MAE at most 3x the full run's 15 meV/Å.
    runs = _runs(repo, {"epochs": 20, "learning_rate": 1e-2} if quick else None, by="problem.frames",
                 problem="MDCu13", model="BehlerParrinello", params={"MDCu13.frames": frames})
    for metric, unit in (("EnergyMAE", "meV"), ("ForceMAE", "meV/Å"), ("TrajectoryRMSD", "Å")):
        values = " → ".join(_fmt(_final(r, metric)) for r in runs)
        yield (f"| MD | Behler–Parrinello, energies and forces (force_weight 10), {' / '.join(map(str, frames))} "
               f"frames | {metric} ({unit}) | {values} |")


def qm9(quick: bool) -> Iterable[str]:
    repo = _repo("qm9")
    sizes = [100, 300] if quick else [100, 300, 1000]
    for model in ("QM9AtomCounts", "QM9PermutationInvariant", "QM9BehlerParrinello"):
        runs = _runs(repo, {"epochs": 30} if quick else None, by="problem.molecules", problem="QM9Energies",
                     model=model, software="PyTorch", params={"QM9Energies.molecules": sizes})
        values = " → ".join(_fmt(_final(r, "QM9EnergyMAE")) for r in runs)
        yield f"| QM9 | {model}, {' / '.join(map(str, sizes))} molecules | QM9EnergyMAE (kcal/mol) | {values} |"


def segmentation(quick: bool) -> Iterable[str]:
    repo = _repo("segmentation")
    stages = 3 if quick else 10
    (model,) = _runs(repo, {"epochs": 5} if quick else None, problem="SegmentBlobs", model="PretrainSegmentModel",
                     software="PyTorch", params={"SegmentBlobs.stages": stages})
    (otsu,) = _runs(repo, problem="SegmentBlobs", model="OtsuSegment", params={"SegmentBlobs.stages": 1})
    ious = " → ".join(_fmt(v) for v in _stage_ends(model, "SegmentIoU"))
    yield f"| segmentation | PretrainSegmentModel, stages 1 … {stages} | IoU | {ious} |"
    yield f"| segmentation | OtsuSegment | IoU | {_fmt(_final(otsu, 'SegmentIoU'))} |"


def hypothesis(quick: bool) -> Iterable[str]:
    repo = _repo("hypothesis")
    noise = [0.001, 0.05] if quick else [0.001, 0.01, 0.05, 0.1, 0.2, 0.4]
    for model in ("SINDySTLSQ", "SINDyLeastSquares"):
        runs = _runs(repo, by="problem.noise", problem="HypothesisLotkaVolterra", model=model,
                     params={"HypothesisLotkaVolterra.noise": noise})
        for metric in ("HypothesisExactRecovery", "HypothesisCoefficientError"):
            values = " → ".join(_fmt(_final(r, metric)) for r in runs)
            yield f"| hypothesis | {model}, noise {' / '.join(map(str, noise))} | {metric} | {values} |"


STUDIES: dict[str, Callable[[bool], Iterable[str]]] = {
    "digits": digits, "burgers": burgers, "ode": ode, "md": md, "qm9": qm9, "segmentation": segmentation,
    "hypothesis": hypothesis}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and epochs (a smoke test)")
    parser.add_argument("--only", choices=sorted(STUDIES), action="append", help="run only these case studies")
    parser.add_argument("--write", action="store_true", help="write benchmarks/README.md even with --quick")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = ["| case study | scenarios | figure | values, in the order of the scenarios |", "|---|---|---|---|"]
    for name in args.only or STUDIES:
        start = time.perf_counter()
        for row in STUDIES[name](args.quick):
            print(row, flush=True)
            rows.append(row)
        print(f"  ({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    if args.no_write or (args.quick and not args.write) or args.only:
        return
    section = "\n".join([START, f"Measured {datetime.date.today()} with `python benchmarks/case_studies.py`:",
                         machine_line(), "", *rows, END])
    write_section(START, END, section, INTRO)


if __name__ == "__main__":
    main()
