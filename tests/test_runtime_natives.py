"""Native models run through their wrappers: Estimator with NumPy, TorchModule, JaxModel."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import paper_source

from saibench_jupyter import Machine, Repository, discover, run_scenario

pytest.importorskip("torch")
pytest.importorskip("jax")

SAIL = Path(__file__).parent / "sail"
MACHINE = Machine(cpus=2, gpus=0, memory=2**34)


@pytest.fixture(scope="module")
def repo() -> Repository:
    repo = Repository()
    repo.add_source(paper_source("stacks"), origin="stacks.py")
    repo.load(SAIL.parent.parent / "saibench_jupyter" / "examples" / "digits.py")
    repo.load(SAIL / "runtime_natives.py")
    return repo


@pytest.mark.parametrize(("model", "software", "epochs"), [("Logistic", "ScikitLearn", 1), ("TorchNet", "PyTorch", 5),
                                                           ("JaxLinear", "JAX", 5)])
def test_native_models_train_and_are_tested_per_checkpoint(repo: Repository, model: str, software: str,
                                                           epochs: int) -> None:
    lat = discover(repo, problem="Digits", model=model, software=software, machine=MACHINE)
    (scenario,) = lat.scenarios
    result = run_scenario(scenario, settings={"epochs": 5, "learning_rate": 1e-2})
    assert result.ok, result.error
    # An estimator is fitted once per stage (one checkpoint); networks checkpoint every epoch.
    assert len(result.points) == epochs
    assert result.points[-1].metrics["Accuracy"] >= 0.9
    assert result.points[-1].counters["TrainingMilliseconds"] > 0


def test_a_native_model_needs_its_own_backend(repo: Repository) -> None:
    lat = discover(repo, problem="Digits", model="TorchNet", machine=MACHINE)
    assert {s.software for s in lat.scenarios} == {"PyTorch"}
    assert any("runs on torch" in r.reason for r in lat.rejected(model="TorchNet"))
