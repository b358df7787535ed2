"""The Burgers PDE case study (sail_modules/burgers.py), run for real through discovery and ``run_scenario``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import library

from saibench_jupyter import Machine, Repository, discover, run_scenario
from sail_modules import burgers

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)


def _nrmse(u: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(u - ref, axis=-1) / np.linalg.norm(ref, axis=-1)))


@pytest.fixture(scope="module")
def repo() -> Repository:
    return library("stacks", "metrics", "burgers")


def test_discovery_pairs_the_solver_with_scipy_and_the_surrogate_with_both_backends(repo: Repository) -> None:
    lat = discover(repo, machine=MACHINE)
    found = {(s.model_choice.module.name, s.software_instance.module.name) for s in lat.scenarios}
    assert found == {("BurgersFiniteVolume", "SciPy"), ("BurgersMLP", "PyTorch"), ("BurgersMLP", "JAX")}
    cells = sorted(s.model_choice.params["cells"] for s in lat.scenarios
                   if s.model_choice.module.name == "BurgersFiniteVolume")
    assert cells == [32, 64, 128, 256, 512]
    for s in lat.scenarios:
        assert {m.name for m in s.metrics} == {"BurgersNRMSE", "WallTime"}
    reasons = {(r.kind, r.module): r.reason for r in lat.rejections}
    assert "reads Test.Classify" in reasons[("metric", "Accuracy")]


def test_models_decline_other_tasks_types_and_bad_parameters(repo: Repository) -> None:
    other = library("stacks", "burgers")
    other.add_source(
        "from saibench_jupyter.sail import *\n\n"
        "@ProblemDefinition\n"
        "def Digitsish():\n"
        "    for x, y in Input('dataset:digits'):\n"
        "        Test.Classify(x, y)\n\n"
        "@ProblemDefinition\n"
        "def Wider():\n"
        "    for x, y in zip(Input('dataset:w/x', Tensor(64)), Input('dataset:w/y', Tensor(32))):\n"
        "        Test.Solve(x, y)\n", origin="others.py")
    lat = discover(other, problem=["Digitsish", "Wider"], machine=MACHINE)
    assert not lat.scenarios
    reasons = {(r.context[0][1] if r.context else "", r.module): r.reason for r in lat.rejections if r.kind == "model"}
    assert reasons[("Digitsish", "BurgersFiniteVolume")] == "solves Burgers initial-value problems (Solve) only"
    assert reasons[("Digitsish", "BurgersMLP")] == "learns Solve and Predict tasks only"
    assert reasons[("Wider", "BurgersFiniteVolume")].startswith("needs a Burgers initial condition on the 128-point grid")
    assert reasons[("Wider", "BurgersMLP")] == "maps a field to a field of the same type and known size"

    bad = discover(repo, machine=MACHINE, params={"BurgersPDE.stages": 0, "BurgersFiniteVolume.order": 3})
    assert not bad.scenarios
    assert any("stages must be 1 to 8" in r.reason for r in bad.rejections if r.kind == "problem")
    bad_order = discover(repo, machine=MACHINE, model="BurgersFiniteVolume",
                         params={"BurgersFiniteVolume.order": 3})
    assert not bad_order.scenarios
    assert any(r.reason == "order is 1 (upwind) or 2 (MUSCL with minmod)" for r in bad_order.rejections)


def test_the_reference_is_deterministic_converged_and_has_steep_fronts() -> None:
    data = burgers.burgers_data()
    again = burgers.burgers_data()
    assert data["u0"].shape == data["uT"].shape == (288, 128)
    np.testing.assert_array_equal(data["uT"], again["uT"])
    # The spectral reference against a solve on twice the points with half the step.
    fine = burgers.burgers_initial(4, seed=7, points=1536)
    reference = burgers.burgers_spectral(fine[:, ::2])[:, ::6]
    finer = burgers.burgers_spectral(fine, steps=320)[:, ::12]
    assert _nrmse(reference, finer) < 2e-5  # measured: 3.8e-6
    # Not trivial: the fronts steepen several times over, so u(1) is far from u0.
    slope = lambda u: np.abs(np.diff(u, axis=-1)).max(axis=-1) * 128 / (2 * np.pi)  # noqa: E731
    assert np.median(slope(data["uT"]) / slope(data["u0"])) > 3
    assert _nrmse(data["u0"], data["uT"]) > 0.5


def test_finite_volume_error_falls_as_the_grid_refines(repo: Repository) -> None:
    lat = discover(repo, machine=MACHINE, software="SciPy",
                   params={"BurgersPDE.stages": 1, "BurgersFiniteVolume.cells": [32, 64, 128]})
    errors, work = [], []
    for s in sorted(lat.scenarios, key=lambda s: s.model_choice.params["cells"]):
        result = run_scenario(s)
        assert result.ok, result.error
        (point,) = result.points
        errors.append(point.metrics["BurgersNRMSE"])
        work.append(point.metrics["WallTime"])
    # Measured: 0.142, 0.067, 0.034.
    assert errors[0] > 1.6 * errors[1] > 2.6 * errors[2]
    assert errors[0] < 0.2 and errors[2] < 0.05
    assert work[0] < work[2]
    # The reference is far tighter than the best solver here: its own error is < 2e-5.
    assert errors[2] > 1000 * 2e-5


def test_surrogate_error_falls_as_training_samples_grow(repo: Repository) -> None:
    lat = discover(repo, machine=MACHINE, model="BurgersMLP", software="PyTorch")
    (scenario,) = lat.scenarios
    result = run_scenario(scenario)
    assert result.ok, result.error
    assert sorted({p.stage for p in result.points}) == [1, 2, 3, 4]
    last = {p.stage: p for p in result.points if p.epoch == 20}
    samples = [last[i].counters["SamplesSeen"] / 20 for i in (1, 2, 3, 4)]
    assert samples == [32, 64, 128, 256]
    errors = [last[i].metrics["BurgersNRMSE"] for i in (1, 2, 3, 4)]
    # Measured: 0.44, 0.36, 0.31, 0.29 (predicting u0 unchanged scores 0.67).
    assert errors == sorted(errors, reverse=True)
    assert errors[0] - errors[-1] > 0.08 and errors[-1] < 0.35
    work = [last[i].metrics["WallTime"] for i in (1, 2, 3, 4)]
    assert work[-1] > work[0]
