"""The QM9 case study (sail_modules/qm9.py): molecules of 3-29 atoms, batched as ragged sets.

Scenarios are discovered from the library's files and run for real with ``run_scenario`` on
fewer molecules and epochs than the defaults, so that the file stays well under a minute.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import library

if importlib.util.find_spec("qm9pack") is None:  # its __init__ needs pkg_resources: only its data are read
    pytest.skip("qm9pack is not installed", allow_module_level=True)

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.backends import pad_fields
from saibench_jupyter.runtime._execution_namespace import ExecutionNamespace

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
MODELS = ("QM9AtomCounts", "QM9BehlerParrinello", "QM9PermutationInvariant[QM9AtomNet]")


@pytest.fixture(scope="module")
def repo() -> Repository:
    return library("stacks", "metrics", "qm9")


@pytest.fixture(scope="module")
def support(repo: Repository) -> dict:
    return ExecutionNamespace.of(repo).globals


@pytest.fixture(scope="module")
def sweep(repo: Repository) -> dict:
    """Each model on 100 and 300 molecules (PyTorch, 30 epochs), tested on 100 held-out molecules."""
    lat = discover(repo, machine=MACHINE, problem="QM9Energies", software="PyTorch",
                   params={"QM9Energies.molecules": [100, 300], "QM9Energies.test_molecules": 100})
    return {(s.model, s.problem_instance.params["molecules"]): run_scenario(s, settings={"epochs": 30})
            for s in lat.scenarios}


def test_discovery_finds_the_three_models_on_both_backends(repo: Repository) -> None:
    lat = discover(repo, machine=MACHINE, problem="QM9Energies")
    assert sorted(s.label for s in lat.scenarios) == sorted(
        f"QM9Energies(molecules={n}) × {m} × {sw} × CPU(threads=1)"
        for n in (100, 300, 1000) for m in MODELS for sw in ("PyTorch", "JAX"))
    assert all([m.name for m in s.metrics] == ["WallTime", "QM9EnergyMAE"] for s in lat.scenarios)
    reasons = {(r.kind, r.module): r.reason for r in lat.rejections}
    assert reasons[("model", "QM9AtomNet")] == "predicts one atom's energy only"


def test_the_data_are_qm9_molecules_of_many_sizes_with_a_per_element_reference(support: dict) -> None:
    data = support["qm9_load"]()
    assert len(data["atoms"]) == 1000 and len(data["test_atoms"]) == 200
    sizes = [len(a) for a in data["atoms"]]
    assert min(sizes) < 10 and max(sizes) > 24  # QM9: 3 to 29 atoms
    assert set(np.concatenate([a.numbers for a in data["atoms"]])) <= {1, 6, 7, 8, 9}
    # the pool's least-squares reference leaves a residual of mean 0, about 25 kcal/mol spread
    energies = np.array(data["energy"])
    assert abs(energies.mean()) < 0.1 and 10.0 < energies.std() < 50.0
    # positions are centred on each molecule's centroid
    np.testing.assert_allclose(data["atoms"][0].positions.mean(0), 0.0, atol=1e-5)
    # the first molecule of the sample is one row of qm9pack's CSVs: U0 in kcal/mol, from hartrees
    ((atoms, u0),) = support["qm9_read"](1, seed=0)
    assert -300000.0 < u0 < -10000.0 and len(atoms) >= 3


def test_symmetry_functions_of_a_padded_molecule_equal_those_of_the_molecule_alone(support: dict) -> None:
    data = support["qm9_load"]()
    small, large = data["atoms"][0], max(data["atoms"][:50], key=len)
    assert len(small) < len(large)
    batch = pad_fields([len(small), len(large)], {k: [small.fields[k], large.fields[k]] for k in ("numbers", "positions")})
    padded = support["qm9_symmetry_functions"](batch["numbers"][0], batch["positions"][0].astype(np.float64))
    alone = support["qm9_symmetry_functions"](small.numbers, small.positions.astype(np.float64))
    np.testing.assert_allclose(padded[:len(small)], alone, atol=1e-12)
    counts = support["qm9_element_counts"](batch["numbers"][0], batch["positions"][0])
    np.testing.assert_array_equal(counts, [(small.numbers == z).sum() for z in (1, 6, 7, 8, 9)])


def test_geometry_beats_atom_counts_and_more_molecules_help(sweep: dict) -> None:
    assert all(r.ok for r in sweep.values()), {k: r.error for k, r in sweep.items() if not r.ok}
    mae = {k: r.points[-1].metrics["QM9EnergyMAE"] for k, r in sweep.items()}
    counts = mae[("QM9AtomCounts", 300)]
    # the residual has the linear part removed: atom counts cannot do much better than its spread
    assert 15.0 < counts < 25.0
    assert mae[("QM9BehlerParrinello", 300)] < 0.95 * counts
    assert mae[("QM9BehlerParrinello", 300)] < mae[("QM9BehlerParrinello", 100)]
    # held-out energies at every epoch; samples seen count the training molecules
    last = sweep[("QM9BehlerParrinello", 300)].points
    assert len(last) == 30 and last[-1].counters["SamplesSeen"] == 300 * 30


def test_pytorch_and_jax_agree_on_ragged_training(repo: Repository) -> None:
    lat = discover(repo, machine=MACHINE, problem="QM9Energies", model="QM9BehlerParrinello",
                   params={"QM9Energies.molecules": [100], "QM9Energies.test_molecules": 50})
    runs = {s.software: run_scenario(s, settings={"epochs": 3}) for s in lat.scenarios}
    assert set(runs) == {"PyTorch", "JAX"} and all(r.ok for r in runs.values())
    losses = {k: [p.loss for p in r.points] for k, r in runs.items()}
    np.testing.assert_allclose(losses["PyTorch"], losses["JAX"], rtol=2e-3)
    maes = {k: r.points[-1].metrics["QM9EnergyMAE"] for k, r in runs.items()}
    assert maes["PyTorch"] == pytest.approx(maes["JAX"], rel=2e-3)
