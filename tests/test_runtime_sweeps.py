"""A solver that sweeps: ``Solver(fn, sweep=True)`` reports separate solves as one run's points.

Each ``checkpoint(y)`` call of a sweep is one solve (one tolerance of a work–precision
diagram): its point's work, time and named counters alike, is what the solver did since
its previous call, not since its start; the answer it returns is the final point, and
returning the answer it last reported makes that call the final point. Spacing and cap
choose the calls as for any native checkpoint. A ``sweep`` that is not a bool, or a
sweeping function that takes no ``checkpoint``, is refused when the model is checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from saibench_jupyter import Machine, Repository, discover, run_scenario

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
RECORDS = 2

SOURCE = '''
import time
import numpy as np
from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

register_dataset("sweep_values", {"x": Tensor(1, dtype="float64")},
                 lambda: {"x": [np.array([1.0]), np.array([2.0])]})


def approximate(x, k):
    """Solve k: 10**k evaluations, 10·k ms, an error of 10**-k."""
    Count("evals", 10 ** k)
    time.sleep(0.01 * k)
    return np.asarray(x, np.float64) + 10.0 ** -k


def report_each(x, checkpoint):
    for k in range(1, 5):
        y = approximate(x, k)
        checkpoint(y)
    return y


def return_last(x, checkpoint):
    for k in range(1, 4):
        checkpoint(approximate(x, k))
    return approximate(x, 4)


@ProblemDefinition
def Values():
    for x in Input("dataset:sweep_values/x", Tensor(1, dtype="float64")):
        Test.Solve(x, x)


@ModelDefinition
def ReportEach(task, inputType, outputType):
    return Solver(report_each, sweep=True)


@ModelDefinition
def ReturnLast(task, inputType, outputType):
    return Solver(return_last, sweep=True)


@ModelDefinition
def Cumulative(task, inputType, outputType):
    return Solver(report_each)


@ModelDefinition
def NoKeyword(task, inputType, outputType):
    return Solver(lambda x: approximate(x, 1), sweep=True)


def plain(x):
    return approximate(x, 1)


@ModelDefinition
def SupportNoKeyword(task, inputType, outputType):
    return Solver(plain, sweep=True)


@ModelDefinition
def NotABool(task, inputType, outputType):
    return Solver(report_each, sweep="yes")


@MetricDefinition(better="lower")
def Error():
    return sum(float(abs(p - y)[0]) for (_, y, p) in Test.Solve) / len(Test.Solve)


@MetricDefinition(axis="work")
def Elapsed():
    return ElapsedMilliseconds()


@MetricDefinition
def Evaluations():
    return Counted("evals")


@HardwareDefinition
def OneCore():
    return Resources(cpus=1)


@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy", pip=["numpy"])
'''


@pytest.fixture(scope="module")
def repo() -> Repository:
    repo = Repository()
    repo.add_source(SOURCE, origin="sweeps.py")
    return repo


def _run(repo: Repository, model: str, **settings: Any):
    (scenario,) = discover(repo, model=model, machine=MACHINE).scenarios
    result = run_scenario(scenario, settings=settings or None)
    assert result.ok, result.error
    return result


def test_each_call_of_a_sweep_is_a_point_with_its_own_solves_work(repo: Repository) -> None:
    points = _run(repo, "ReportEach").points
    # Returning the answer of the last call: that call is the final point, not a fifth one.
    assert [p.epoch for p in points] == [1, 2, 3, 4]
    assert [p.metrics["Evaluations"] for p in points] == [RECORDS * 10.0 ** k for k in range(1, 5)]
    assert [p.counters["evals"] for p in points] == [RECORDS * 10.0 ** k for k in range(1, 5)]
    assert [p.metrics["Error"] for p in points] == pytest.approx([10.0 ** -k for k in range(1, 5)])
    elapsed = [p.metrics["Elapsed"] for p in points]
    # Solve k sleeps 10·k ms per record; cumulative work would give the last point at least 200 ms.
    assert all(ms >= RECORDS * 10 * k for k, ms in enumerate(elapsed, 1)), elapsed
    assert elapsed[-1] < 190, elapsed


def test_without_sweep_the_same_solver_counts_from_its_start(repo: Repository) -> None:
    points = _run(repo, "Cumulative").points
    assert [p.counters["evals"] for p in points] == [20.0, 220.0, 2220.0, 22220.0, 22220.0]
    assert points[-1].metrics["Elapsed"] >= RECORDS * 100


def test_a_returned_final_solve_is_the_last_point(repo: Repository) -> None:
    points = _run(repo, "ReturnLast").points
    assert [p.epoch for p in points] == [1, 2, 3, 3]  # the final point's epoch: the calls made
    assert [p.counters["evals"] for p in points] == [RECORDS * 10.0 ** k for k in range(1, 5)]
    assert points[-1].metrics["Elapsed"] >= RECORDS * 40


def test_spacing_keeps_some_solves_each_with_its_own_work(repo: Repository) -> None:
    points = _run(repo, "ReportEach", checkpoint_spacing=2).points
    assert [p.epoch for p in points] == [2, 4]
    assert [p.counters["evals"] for p in points] == [200.0, 20000.0]


@pytest.mark.parametrize(("model", "message"), [
    ("NoKeyword", r"Solver\(fn, sweep=True\) needs a function that reports its solves, but fn takes no "
                  r"keyword argument named checkpoint"),
    ("NotABool", r"Solver\(fn, sweep='yes'\): sweep is True or False"),
])
def test_a_bad_sweep_is_refused_when_the_model_is_checked(repo: Repository, model: str, message: str) -> None:
    lattice = discover(repo, model=model, machine=MACHINE)
    assert not lattice.scenarios
    reasons = [r.reason for r in lattice.rejections if r.module == model]
    assert reasons
    with pytest.raises(ValueError, match=message):
        raise ValueError(" ".join(reasons))


def test_support_code_without_checkpoint_fails_the_run_with_the_fix(repo: Repository) -> None:
    # A dry run sees support code as opaque: the function's signature is checked when the model runs.
    (scenario,) = discover(repo, model="SupportNoKeyword", machine=MACHINE).scenarios
    result = run_scenario(scenario)
    assert result.status == "failed" and result.points == []
    assert result.error is not None
    with pytest.raises(ValueError, match=r"fn takes no keyword argument named checkpoint"):
        raise ValueError(result.error.what)
    assert "call checkpoint(y) after each solve" in (result.error.fix or "")
