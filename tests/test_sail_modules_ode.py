"""The ODE problem class (sail_modules/ode.py): tolerance sweeps, DNF under the cap, references, a surrogate."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import library

from saibench_jupyter import Machine, Repository, discover, run, run_scenario
from saibench_jupyter.runtime._execution_namespace import ExecutionNamespace
from saibench_jupyter.ui._charts import work_precision_traces

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
SWEEP = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
CAP = re.compile(r"RK45 at rtol=0\.001 needed more than 50000 function evaluations on one vanderpol "
                 r"initial-value problem \(the cap\): did not finish")


@pytest.fixture(scope="module")
def repo() -> Repository:
    return library("stacks", "metrics", "ode")


@pytest.fixture(scope="module")
def support(repo: Repository) -> dict:
    """The file's support code as pods run it (datasets registered, helpers defined)."""
    return ExecutionNamespace.of(repo).globals


def _scenario(repo: Repository, problem: str, model: str, loosest: float = 1e-3, tightest: float = 1e-8):
    (scenario,) = discover(repo, problem=problem, model=model, software="SciPy", machine=MACHINE,
                           params={f"{model}.loosest": [loosest], f"{model}.tightest": [tightest]}).scenarios
    return scenario


def _sweep(repo: Repository, problem: str, model: str, loosest: float = 1e-3, tightest: float = 1e-8) -> list:
    """The metrics of one sweep's points, loosest tolerance first."""
    result = run_scenario(_scenario(repo, problem, model, loosest, tightest))
    assert result.ok, result.error
    return [point.metrics for point in result.points]


def test_one_sweep_per_system_and_method_and_a_surrogate(repo: Repository) -> None:
    lat = discover(repo, machine=MACHINE)
    solvers = ("ODERK45", "ODEDOP853", "ODERadau", "ODEBDF", "ODELSODA")
    for problem in ("LotkaVolterraIVP", "VanDerPolIVP", "RobertsonIVP"):
        scipy = [s for s in lat.scenarios if s.problem == problem and s.software == "SciPy"]
        assert sorted(s.model for s in scipy) == sorted(solvers)  # one scenario each: the sweep is inside
        assert all(f"{s.model}.tightest" not in s.params for s in scipy)  # the defaults: 1e-3 down to 1e-8
        surrogate = [s.software for s in lat.scenarios if s.problem == problem and s.model == "ODESurrogate"]
        assert sorted(surrogate) == ["JAX", "PyTorch"]
        metrics = {m.name: m.axis for m in scipy[0].metrics}
        assert metrics == {"ODEGridError": "precision", "ODEMaxError": "precision", "ODEEndError": "precision",
                           "ODEFunctionEvaluations": "work", "WallTime": "work"}


def test_the_sweep_gives_one_point_per_decade(support: dict) -> None:
    tolerances = support["ode_tolerances"]
    assert tolerances(1e-3, 1e-8) == SWEEP
    assert tolerances(1e-3, 1e-3) == [1e-3]
    assert tolerances(1e-2, 5e-5) == [1e-2, 1e-3, 1e-4, 5e-5]  # the tightest is always a point
    with pytest.raises(ValueError, match=r"loosest=1e-08 down to tightest=0\.001: give 0 < tightest <= loosest"):
        tolerances(1e-8, 1e-3)


def test_each_point_of_a_sweep_is_the_solve_at_its_tolerance_alone(repo: Repository) -> None:
    sweep = _sweep(repo, "LotkaVolterraIVP", "ODEDOP853")
    assert len(sweep) == len(SWEEP)
    # The same tolerance solved on its own (a sweep of one): same answers, same work.
    for rtol in (1e-3, 1e-6, 1e-8):
        (alone,) = _sweep(repo, "LotkaVolterraIVP", "ODEDOP853", rtol, rtol)
        at = sweep[SWEEP.index(rtol)]
        assert at["ODEFunctionEvaluations"] == alone["ODEFunctionEvaluations"], rtol
        assert at["ODEGridError"] == alone["ODEGridError"], rtol


def test_explicit_methods_converge_on_lotka_volterra_and_dop853_wins_when_tight(repo: Repository) -> None:
    sweeps = {m: _sweep(repo, "LotkaVolterraIVP", m) for m in ("ODERK45", "ODEDOP853")}
    for model, sweep in sweeps.items():
        for metric in ("ODEGridError", "ODEMaxError", "ODEEndError"):
            errors = [point[metric] for point in sweep]  # loosest first
            assert all(a > b for a, b in itertools.pairwise(errors)), (model, metric, errors)
            assert errors[0] > 1e4 * errors[-1], (model, metric, errors)
        evaluations = [point["ODEFunctionEvaluations"] for point in sweep]
        assert evaluations == sorted(evaluations) and evaluations[0] < evaluations[-1]
    rk45, dop853 = sweeps["ODERK45"][-1], sweeps["ODEDOP853"][-1]
    # At the tightest tolerance the 8th-order method is both more precise and cheaper.
    assert dop853["ODEGridError"] < 0.6 * rk45["ODEGridError"]
    assert dop853["ODEEndError"] < 0.6 * rk45["ODEEndError"]
    assert dop853["ODEFunctionEvaluations"] < rk45["ODEFunctionEvaluations"]
    assert dop853["ODEGridError"] < 1e-7


def test_van_der_pol_rk45_is_a_dnf_while_stiff_methods_finish(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "VanDerPolIVP", "ODERK45"))
    assert result.status == "failed" and result.points == []
    assert CAP.search(result.error.what), result.error.what
    for model in ("ODERadau", "ODEBDF", "ODELSODA"):
        (metrics,) = _sweep(repo, "VanDerPolIVP", model, 1e-3, 1e-3)
        # The cap RK45 exhausted on one IVP is 50000 evaluations; these need a few thousand each.
        assert metrics["ODEFunctionEvaluations"] < 5000, model
        assert metrics["ODEGridError"] < 0.2, model


def test_the_cap_raises_a_clear_error(support: dict) -> None:
    x = np.array([1.0, 2.0, 0.0])
    with pytest.raises(support["ODEBudgetExceeded"], match=r"RK45 at rtol=0\.001 needed more than 2000 function "
                       r"evaluations on one vanderpol initial-value problem \(the cap\): did not finish"):
        support["ode_integrate"](x, "RK45", 1e-3, 1e-6, cap=2000)
    with pytest.raises(ValueError, match=r"x\[0\] = 7\.0 names no ODE system"):
        support["ode_integrate"](np.array([7.0, 1.0, 1.0]), "RK45", 1e-3, 1e-6)


def test_dnf_reaches_the_work_precision_chart_through_pods(repo: Repository, tmp_path: Path) -> None:
    scenarios = [_scenario(repo, "VanDerPolIVP", "ODERK45"), _scenario(repo, "VanDerPolIVP", "ODELSODA", tightest=1e-5)]
    results = run(scenarios, executor="inline", store=tmp_path / "ode.db", progress=False)
    traces = {t.name: t for t in work_precision_traces(results, work="ODEFunctionEvaluations",
                                                       precision="ODEGridError")}
    assert traces["DNF"].dnf and len(traces["DNF"].x) == 1 and "ODERK45" in traces["DNF"].labels[0]
    (lsoda,) = [t for name, t in traces.items() if "ODELSODA" in name]
    # One curve, one point per tolerance: 1e-3, 1e-4, 1e-5.
    assert len(lsoda.x) == 3 and min(lsoda.x) < 1e-4


def test_robertson_solves_with_bdf_and_lsoda(repo: Repository) -> None:
    for model in ("ODEBDF", "ODELSODA"):
        sweep = _sweep(repo, "RobertsonIVP", model, 1e-4, 1e-7)
        assert len(sweep) == 4
        assert sweep[-1]["ODEGridError"] < sweep[0]["ODEGridError"] < 1e-3, model
        assert sweep[-1]["ODEGridError"] < 1e-6, model
        assert sweep[-1]["ODEFunctionEvaluations"] < 5000, model


def test_references_are_far_tighter_than_the_sweep_and_agree_with_other_methods(repo: Repository,
                                                                                support: dict) -> None:
    reference = support["_ODE_REFERENCE"]
    lat = discover(repo, problem="LotkaVolterraIVP", software="SciPy", machine=MACHINE)
    assert all(f"{s.model}.tightest" not in s.params for s in lat.scenarios)  # every sweep ends at the default
    tightest = min(support["ode_tolerances"](1e-3, 1e-8))
    assert tightest >= 100 * reference["rtol"] and tightest / reference["atol"] >= 100 * 1e3
    generate, integrate = support["_ode_generate"], support["ode_integrate"]
    lv = generate(0, "test")
    assert len(lv["x"]) == 8 and lv["y"][0].shape == (40, 2) and lv["y"][0].dtype == np.float64
    # Independent checks: DOP853 (explicit, order 8) on Lotka–Volterra, Radau (implicit) on Robertson.
    y, _ = integrate(lv["x"][0], "DOP853", 1e-13, 1e-16)
    assert np.linalg.norm(y - lv["y"][0]) / np.linalg.norm(lv["y"][0]) < 1e-11
    rob = generate(2, "test")
    y, _ = integrate(rob["x"][0], "Radau", 1e-10, 1e-13, jacobian=True)
    assert np.linalg.norm(y - rob["y"][0]) / np.linalg.norm(rob["y"][0]) < 1e-9
    # The data are deterministic: generating again (from the cache or not) gives the same arrays.
    again = generate(0, "test")
    assert all(np.array_equal(a, b) for a, b in zip(lv["y"], again["y"]))


def test_surrogate_trains_and_has_no_function_evaluations(repo: Repository) -> None:
    lat = discover(repo, problem="LotkaVolterraIVP", model="ODESurrogate", software="PyTorch", machine=MACHINE)
    (scenario,) = lat.scenarios
    result = run_scenario(scenario, settings={"epochs": 40})
    assert result.ok, result.error
    assert len(result.points) == 40
    errors = result.series("ODEGridError")
    assert errors[-1] < 0.6 * errors[0] and errors[-1] < 0.35
    assert result.series("ODEFunctionEvaluations") == [None] * 40
    walls = result.series("WallTime")
    assert walls == sorted(walls)
