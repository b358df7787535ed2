"""Scenarios run for real through ``run_scenario``: the issue's four acceptance problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import paper_source

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.sail import Atom, Image, Scalar, Set, Tensor, register_dataset
from saibench_jupyter.sail._atoms import AtomSet

SAIL = Path(__file__).parent / "sail"
DIGITS = Path(__file__).parents[1] / "saibench_jupyter" / "examples" / "digits.py"
MACHINE = Machine(cpus=2, gpus=0, memory=2**34)


def _wells() -> dict[str, list[object]]:
    rng = np.random.default_rng(0)
    atoms, energy = [], []
    for _ in range(512):
        pos = rng.normal(scale=0.5, size=(4, 3)).astype(np.float32)
        atoms.append(AtomSet([1, 1, 8, 6], pos))
        energy.append(np.float32((pos.astype(np.float64) ** 2).sum()))
    return {"atoms": atoms, "energy": energy}


def _oscillators() -> dict[str, list[object]]:
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for _ in range(8):
        y0, v0, w = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.5, 2.0)
        t = 20.0
        xs.append(np.array([y0, v0, w]))
        ys.append(np.array([y0 * np.cos(w * t) + v0 / w * np.sin(w * t), -y0 * w * np.sin(w * t) + v0 * np.cos(w * t)]))
    return {"x": xs, "y": ys}


def _blobs() -> dict[str, list[object]]:
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:8, 0:8]
    images, masks = [], []
    for _ in range(200):
        cy, cx, r = rng.uniform(2, 6), rng.uniform(2, 6), rng.uniform(1.2, 2.5)
        mask = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.float32)
        image = np.clip(mask * 0.8 + rng.normal(scale=0.1, size=(8, 8)), 0, 1).astype(np.float32)
        images.append(image[..., None])
        masks.append(mask[..., None])
    return {"images": images, "masks": masks}


register_dataset("wells", {"atoms": Set(Atom(), 4), "energy": Scalar("float32")}, _wells)
register_dataset("oscillators", {"x": Tensor(3), "y": Tensor(2)}, _oscillators)
register_dataset("blobs", {"images": Image(8, 8, 1), "masks": Image(8, 8, 1)}, _blobs)


def _repo(*files: str, paper: tuple[str, ...] = ("stacks",)) -> Repository:
    repo = Repository()
    for name in paper:
        repo.add_source(paper_source(name), origin=f"{name}.py")
    for f in files:
        repo.load(SAIL / f)
    return repo


@pytest.fixture(scope="module")
def digits_repo() -> Repository:
    repo = _repo(paper=("stacks", "mnist"))
    repo.load(DIGITS)
    return repo


@pytest.mark.parametrize("backend", ["PyTorch", "JAX"])
def test_digits_mlp_learns_with_one_point_per_epoch(digits_repo: Repository, backend: str) -> None:
    pytest.importorskip("torch" if backend == "PyTorch" else "jax")
    lat = discover(digits_repo, problem="Digits", model="MLP", software=backend, machine=MACHINE,
                   params={"MLP.hiddenSize": 128})
    (scenario,) = lat.scenarios
    assert {m.name for m in scenario.metrics} >= {"Accuracy", "CriticalLoss", "WallTime"}
    result = run_scenario(scenario, settings={"epochs": 4})
    assert result.ok, result.error
    assert [(p.stage, p.checkpoint, p.epoch) for p in result.points] == [(1, i, i) for i in range(1, 5)]
    assert result.points[-1].metrics["Accuracy"] >= 0.9
    for p in result.points:
        assert p.metrics["CriticalLoss"] is not None and p.metrics["WallTime"] > 0
        assert p.counters["SamplesSeen"] == 1438 * p.epoch
        # Flops of the 64-128-10 MLP per record: 2 per multiply-add forward, as many for the weight
        # gradients, and for the input gradients of every layer but the first.
        macs = 64 * 128 + 128 * 10
        assert p.counters["Flops"] == pytest.approx(p.epoch * 1438 * (4 * macs + 2 * 128 * 10), rel=0.25)
    walls = result.series("TrainingMilliseconds")
    assert walls == sorted(walls)
    frame = result.to_dataframe()
    assert list(frame["epoch"]) == [1, 2, 3, 4] and "Accuracy" in frame


@pytest.mark.parametrize("backend", ["PyTorch", "JAX"])
def test_one_time_costs_are_reported_apart_not_in_the_first_epoch(digits_repo: Repository, backend: str) -> None:
    pytest.importorskip("torch" if backend == "PyTorch" else "jax")
    lat = discover(digits_repo, problem="Digits", model="MLP", software=backend, machine=MACHINE,
                   params={"MLP.hiddenSize": 128})
    (scenario,) = lat.scenarios
    ratios = []
    for _ in range(3):  # the cores may be shared: a burst of someone else's load can slow any one epoch
        result = run_scenario(scenario, settings={"epochs": 8})
        assert result.ok, result.error
        epochs = np.diff([0.0, *result.series("TrainingMilliseconds")])  # one checkpoint per epoch
        ratios.append(float(epochs[0] / np.median(epochs[1:])))
        if ratios[-1] <= 3:
            break
    # Compilation, the data's move to the device and first runs cost milliseconds (JAX: the first
    # epoch took 4-30 times the others); they are compile_ms, beside the counters, in every frame.
    assert min(ratios) <= 3, ratios
    assert result.compile_ms > 0
    assert (result.to_dataframe()["compile_ms"] == result.compile_ms).all()


def test_pytorch_and_jax_start_alike_and_differ_only_by_backend(digits_repo: Repository) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    losses = {}
    for backend in ("PyTorch", "JAX"):
        lat = discover(digits_repo, problem="Digits", model="MLP", software=backend, machine=MACHINE,
                       params={"MLP.hiddenSize": 128})
        result = run_scenario(lat.scenarios[0], settings={"epochs": 2})
        losses[backend] = [p.loss for p in result.points]
    # Same initial weights, same batches, same Adam: float32 rounding is all that differs.
    np.testing.assert_allclose(losses["PyTorch"], losses["JAX"], rtol=2e-3)


@pytest.mark.parametrize("software", ["PyTorch", "JAX"])
def test_permutation_invariant_energy_model_with_gradients(software: str) -> None:
    pytest.importorskip("torch" if software == "PyTorch" else "jax")
    repo = _repo("runtime_wells.py", paper=("stacks", "md"))
    lat = discover(repo, problem="HarmonicWells", model="PermutationInvariantModel", software=software,
                   machine=MACHINE)
    (scenario,) = lat.scenarios
    assert scenario.submodels == {"model/44:8": "SmoothMLP"} or list(scenario.submodels.values()) == ["SmoothMLP"]
    result = run_scenario(scenario, settings={"learning_rate": 1e-2, "batch_size": 16})
    assert result.ok, result.error
    last = result.points[-1]
    assert last.metrics["EnergyError"] < 0.5
    # Gradients agree with central finite differences of the model; permuting atoms changes nothing.
    assert last.metrics["Disagreement"] < 2e-2
    assert all("Disagreement" not in p.metrics for p in result.points[:-1])


def test_solver_at_three_tolerances_gives_monotone_work_precision() -> None:
    pytest.importorskip("scipy")
    repo = _repo("runtime_solver.py")
    lat = discover(repo, problem="Oscillators", machine=MACHINE)
    assert sorted(s.model_choice.params["tol"] for s in lat.scenarios) == [1e-9, 1e-6, 1e-3]
    results = {s.model_choice.params["tol"]: run_scenario(s) for s in lat.scenarios}
    for r in results.values():
        assert r.ok, r.error
        assert [(p.stage, p.checkpoint) for p in r.points] == [(1, 1)]
        assert r.compile_ms == 0  # a solve is not run once more, untimed, as a JIT warm-up
    tols = sorted(results, reverse=True)
    errors = [results[t].points[0].metrics["EndError"] for t in tols]
    work = [results[t].points[0].metrics["SolveTime"] for t in tols]
    assert errors == sorted(errors, reverse=True) and errors[0] > 100 * errors[-1]
    assert work == sorted(work)


def test_pretrain_then_segment_in_ten_sample_efficiency_stages() -> None:
    pytest.importorskip("torch")
    repo = _repo("runtime_blobs.py")
    lat = discover(repo, problem="BlobSegmentation", model="PretrainSegmentModel", software="PyTorch",
                   machine=MACHINE)
    assert lat.scenarios, lat.explain()
    scenario = lat.scenarios[0]
    result = run_scenario(scenario, settings={"epochs": 2, "learning_rate": 3e-3})
    assert result.ok, result.error
    assert sorted({p.stage for p in result.points}) == list(range(1, 11))
    assert len(result.points) == 20
    # Stage i trains on the pretraining images plus i tenths of the labeled ones, from scratch.
    seen = [p.counters["SamplesSeen"] for p in result.points if p.checkpoint == 2]
    assert seen == sorted(seen) and seen[0] < seen[-1]
    errors = [p.metrics["MaskError"] for p in result.points if p.checkpoint == 2]
    assert errors[-1] < errors[0]


# Force matching (docs/sail.md, section 4): energies E = sum |r|^2 and their gradients 2 r as training records.
FORCE_WELLS = '''
from saibench_jupyter.sail import *


@ProblemDefinition
def ForceWells(epochs=4, force_weight=1.0):
    train, test = RandomSplit(Input("dataset:wells"), 0.75, seed=0)
    for atoms, e in train:
        Train.Predict(atoms, e)
        Train.Gradients(atoms.positions, 2.0 * atoms.positions)
    for atoms, e in test:
        Test.Predict(atoms, e)


@ProblemDefinition
def GradientsFirst(epochs=1):
    for atoms, e in Input("dataset:wells"):
        Train.Gradients(atoms.positions, 2.0 * atoms.positions)
        Train.Predict(atoms, e)
        Test.Predict(atoms, e)


@ProblemDefinition
def GradientsOfAnotherValue(epochs=1):
    for atoms, e in Input("dataset:wells"):
        Train.Predict(atoms, e)
        Train.Gradients(atoms.positions + 1.0, 2.0 * atoms.positions)
        Test.Predict(atoms, e)


@ProblemDefinition
def GradientsOfSomeRecords(epochs=1):
    first = True
    for atoms, e in Input("dataset:wells"):
        Train.Predict(atoms, e)
        if first:
            Train.Gradients(atoms.positions, 2.0 * atoms.positions)
            first = False
        Test.Predict(atoms, e)
'''


@pytest.fixture(scope="module")
def force_repo() -> Repository:
    repo = _repo("runtime_wells.py", paper=("stacks", "md"))
    repo.add_source(FORCE_WELLS, origin="force_wells.py")
    return repo


def _force_wells(repo: Repository, problem: str, software: str = "PyTorch") -> Any:
    return discover(repo, problem=problem, model="PermutationInvariantModel", software=software, machine=MACHINE)


def test_force_matching_trains_alike_on_pytorch_and_jax_and_its_weight_counts(force_repo: Repository) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    losses = {}
    for software in ("PyTorch", "JAX"):
        (scenario,) = _force_wells(force_repo, "ForceWells", software).scenarios
        result = run_scenario(scenario, settings={"learning_rate": 1e-2, "batch_size": 16})
        assert result.ok, result.error
        losses[software] = [p.loss for p in result.points]
    # Same weights, batches and Adam; the loss adds the gradients' squared error: rounding is all that differs.
    np.testing.assert_allclose(losses["PyTorch"], losses["JAX"], rtol=2e-3)
    (scenario,) = _force_wells(force_repo, "ForceWells").scenarios
    heavier = run_scenario(scenario, settings={"learning_rate": 1e-2, "batch_size": 16, "force_weight": 5.0})
    assert heavier.points[0].loss > losses["PyTorch"][0]


def test_train_gradients_must_follow_a_training_record_of_its_input(force_repo: Repository) -> None:
    lattice = _force_wells(force_repo, "GradientsFirst")
    assert not lattice.scenarios
    assert "Train.Gradients(wrt, target) follows a training record" in lattice.explain()
    (scenario,) = _force_wells(force_repo, "GradientsOfAnotherValue").scenarios
    error = run_scenario(scenario).error
    assert error is not None and "wrt is not the last training record's input" in error.what
    (scenario,) = _force_wells(force_repo, "GradientsOfSomeRecords").scenarios
    error = run_scenario(scenario).error
    assert error is not None and "some Train.Predict records have derivative targets and others" in error.what
