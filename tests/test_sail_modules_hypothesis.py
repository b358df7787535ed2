"""The hypothesis task (sail_modules/hypothesis.py): Lotka–Volterra's equations from noisy trajectories."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import library

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.runtime._execution_namespace import ExecutionNamespace

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
NOISE = [0.001, 0.01, 0.05, 0.1, 0.2, 0.4]


def _repo(*names: str) -> Repository:
    return library("stacks", "metrics", *names)


@pytest.fixture(scope="module")
def repo() -> Repository:
    return _repo("hypothesis")


def _metrics(repo: Repository, model: str, noise: float) -> dict:
    lat = discover(repo, problem="HypothesisLotkaVolterra", model=model, software="SciPy", machine=MACHINE,
                   params={"HypothesisLotkaVolterra.noise": [noise]})
    (scenario,) = lat.scenarios
    result = run_scenario(scenario)
    assert result.ok, result.error
    (point,) = result.points
    return dict(point.metrics)


def test_scenarios_sweep_noise_and_decline_other_tasks() -> None:
    repo = _repo("hypothesis", "ode")
    lat = discover(repo, machine=MACHINE)
    mine = [s for s in lat.scenarios if s.problem == "HypothesisLotkaVolterra"]
    assert sorted({s.model for s in mine}) == ["SINDyLeastSquares", "SINDySTLSQ"]
    assert sorted({s.params["HypothesisLotkaVolterra.noise"] for s in mine}) == NOISE
    assert {m.name: m.axis for m in mine[0].metrics} == {
        "HypothesisExactRecovery": "precision", "HypothesisTermF1": "precision",
        "HypothesisCoefficientError": "precision", "WallTime": "work"}
    # The ODE solvers and the SINDy models each decline the other's task.
    assert not [s for s in lat.scenarios if s.model.startswith("ODE") and s.problem == "HypothesisLotkaVolterra"]
    assert not [s for s in lat.scenarios if s.model.startswith("SINDy") and s.problem != "HypothesisLotkaVolterra"]
    reasons = {r.reason for r in lat.rejections if r.module == "SINDySTLSQ"}
    assert "discovers two-state equations only" in reasons


def test_sindy_recovers_exactly_the_true_terms_at_low_noise(repo: Repository) -> None:
    for noise in (0.001, 0.01):
        m = _metrics(repo, "SINDySTLSQ", noise)
        assert m["HypothesisExactRecovery"] == 1.0 and m["HypothesisTermF1"] == 1.0, (noise, m)
        assert m["HypothesisCoefficientError"] < 0.005, (noise, m)


def test_scores_fall_with_noise_and_the_baseline_breaks_first(repo: Repository) -> None:
    loud = _metrics(repo, "SINDySTLSQ", 0.4)
    assert loud["HypothesisExactRecovery"] < 0.5 and loud["HypothesisCoefficientError"] > 0.1
    sindy, baseline = _metrics(repo, "SINDySTLSQ", 0.05), _metrics(repo, "SINDyLeastSquares", 0.05)
    assert sindy["HypothesisExactRecovery"] == 1.0
    assert baseline["HypothesisExactRecovery"] < sindy["HypothesisExactRecovery"]
    assert baseline["HypothesisCoefficientError"] > 2 * sindy["HypothesisCoefficientError"]
    quiet = _metrics(repo, "SINDyLeastSquares", 0.001)
    assert quiet["HypothesisExactRecovery"] == 1.0 and quiet["HypothesisCoefficientError"] < 0.005


def test_coefficients_follow_the_documented_term_order(repo: Repository) -> None:
    ns = ExecutionNamespace.of(repo).globals
    assert ns["HYPOTHESIS_TERMS"] == ("1", "u", "v", "u^2", "u v", "v^2")
    data = ns["_hypothesis_records"](0.001, 0)
    x, truth = data["x"][0], data["y"][0]
    assert x.shape == (801, 3) and truth.shape == (2, 6)
    # u' = αu − βuv and v' = δuv − γv: u and uv in the first row, v and uv in the second.
    assert np.flatnonzero(truth[0]).tolist() == [1, 4] and np.flatnonzero(truth[1]).tolist() == [2, 4]
    assert truth[0, 1] > 0 > truth[0, 4] and truth[1, 4] > 0 > truth[1, 2]
    found = ns["hypothesis_sindy"](x, 0.1)
    assert np.array_equal(found != 0, truth != 0)
    np.testing.assert_allclose(found, truth, rtol=0.01, atol=1e-12)
    assert ns["hypothesis_f1"](truth, found) == 1.0
    assert ns["hypothesis_f1"](truth, np.zeros((2, 6))) == 0.0
