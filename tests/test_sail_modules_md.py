"""The molecular-dynamics case study (sail_modules/md.py): ASE's EMT as the golden software, ML potentials.

Scenarios are discovered from the library's files and run for real with ``run_scenario``, on a
smaller closed loop than the defaults so that the file stays well under a minute.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from conftest import library

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.runtime._execution_namespace import ExecutionNamespace

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
#: Fewer held-out frames and a shorter closed loop than the defaults (25 and 100).
SMALL = {"MDCu13.test_frames": 10, "MDCu13.loop_steps": 30}

# A probe problem: a potential trained briefly, then its Gradients against central finite differences
# of its own energies, for the two models (symmetry functions, and atom embeddings).
PROBE = textwrap.dedent('''
    import numpy as np

    from saibench_jupyter.sail import *


    def md_probe_displaced(atoms, i, k, eps):
        pos = np.array(atoms.positions, dtype=np.float64)
        pos[i, k] += eps
        return atoms.replace(positions=pos)


    @ProblemDefinition
    def MDForceProbe(epochs=5):
        md = Require(MolecularDynamicsSoftware)
        for atoms in Input("dataset:cu13/train", Set(Atom(), 13)):
            for _ in range(8):
                e = md.PredictEnergy(atoms)
                Train.Predict(atoms, e)
                atoms = md.ComputeNewStates(atoms, 5.0, md.ComputeForces(atoms, e))
        for atoms in Input("dataset:cu13/test", Set(Atom(), 13)):
            e_p = Model.Predict(atoms)
            grads = Gradients(atoms.positions, e_p)
            eps = 1e-2
            for i in [0, 7]:
                for k in range(3):
                    up = Model.Predict(md_probe_displaced(atoms, i, k, eps))
                    down = Model.Predict(md_probe_displaced(atoms, i, k, -eps))
                    Test.Compare((up - down) / (2 * eps), grads[i][k])


    @MetricDefinition
    def MDProbeDisagreement():
        return max(abs(float(a) - float(b)) for (a, b) in Test.Compare)


    @MetricDefinition
    def MDProbeGradientSize():
        return max(abs(float(b)) for (a, b) in Test.Compare)
''')

# A problem without atoms: the MD metrics must decline it at discovery.
PLAIN = textwrap.dedent('''
    from saibench_jupyter.sail import *


    @ProblemDefinition
    def MDPlainVectors():
        for x, y in zip(Input("x.npy", Tensor(3)), Input("y.npy", Scalar)):
            Train.Predict(x, y)
            Test.Predict(x, y)
''')


@pytest.fixture(scope="module")
def repo() -> Repository:
    return library("stacks", "metrics", "md")


@pytest.fixture(scope="module")
def support(repo: Repository) -> dict:
    return ExecutionNamespace.of(repo).globals


@pytest.fixture(scope="module")
def sweep(repo: Repository) -> dict:
    """The Behler–Parrinello potential trained on 5 and on 60 frames (40 epochs, a larger step than its default)."""
    lat = discover(repo, machine=MACHINE, problem="MDCu13", model="BehlerParrinello",
                   params={"MDCu13.frames": [5, 60], **SMALL})
    settings = {"epochs": 40, "learning_rate": 3e-3}
    return {s.problem_instance.params["frames"]: run_scenario(s, settings=settings) for s in lat.scenarios}


def test_discovery_composes_the_potentials_and_rejects_what_cannot_run(repo: Repository) -> None:
    lat = discover(repo, machine=MACHINE, problem="MDCu13")
    assert sorted(s.label for s in lat.scenarios) == sorted(
        f"MDCu13(frames={n}) × {m} × ASEPyTorch × CPU(threads=1)"
        for n in (10, 50, 200) for m in ("BehlerParrinello", "PermutationInvariantModel[MDAtomNet]"))
    for s in lat.scenarios:
        assert [m.name for m in s.metrics] == ["WallTime", "EnergyMAE", "ForceMAE", "TrajectoryRMSD", "EnergyDrift"]
        labels = {c.label for c in s.converters}
        if s.model_choice.name == "BehlerParrinello":
            assert "SymmetryFunctions" in labels and s.submodels == {}
        else:
            assert "AtomEmbedding" in labels and list(s.submodels.values()) == ["MDAtomNet"]
    reasons = {(r.kind, r.module): r.reason for r in lat.rejections}
    assert reasons[("software", "PyTorch")] == "does not provide MolecularDynamicsSoftware, which the problem requires"
    assert reasons[("model", "MDAtomNet")] == "predicts one atom's energy only"
    assert reasons[("metric", "Accuracy")].startswith("reads Test.Classify")


def test_md_metrics_decline_problems_without_atoms(repo: Repository) -> None:
    repo = library("stacks", "metrics", "md")
    repo.add_source(PLAIN, origin="plain.py")
    lat = discover(repo, machine=MACHINE, problem="MDPlainVectors")
    reasons = {r.module: r.reason for r in lat.rejections if r.kind == "metric"}
    assert reasons["EnergyMAE"] == "reads energies of atomic configurations: Test.Predict(atoms, energy)"
    assert reasons["ForceMAE"] == "reads forces on atoms: a problem with Test.Predict(atoms, energy)"
    assert "TrajectoryRMSD" in reasons and "EnergyDrift" in reasons
    # the MD models decline vectors too
    assert all(s.model_choice.name not in ("BehlerParrinello", "PermutationInvariantModel") for s in lat.scenarios)


def test_emt_agrees_with_ase_and_the_steps_with_ase_velocity_verlet(support: dict) -> None:
    from ase import Atoms, units
    from ase.calculators.emt import EMT
    from ase.md.verlet import VelocityVerlet

    md = support["ASEMolecularDynamics"]()
    rng = np.random.default_rng(5)
    mixed = support["AtomSet"]([29, 29, 47, 79, 78, 28], rng.normal(scale=1.6, size=(6, 3)))
    for atoms in (support["md_cluster_start"](3), mixed):
        ref = Atoms(numbers=atoms.numbers, positions=np.asarray(atoms.positions, dtype=np.float64))
        ref.calc = EMT()
        assert float(md.PredictEnergy(atoms)) == pytest.approx(ref.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(md.ComputeForces(atoms), ref.get_forces(), atol=1e-10)

    # 60 steps of 5 fs against ASE's own integrator from the same state.
    state = support["md_cluster_start"](4)
    ref = Atoms(numbers=state.numbers, positions=np.asarray(state.positions, dtype=np.float64),
                velocities=state.fields["velocities"])
    ref.calc = EMT()
    VelocityVerlet(ref, timestep=5 * units.fs).run(60)
    totals = []
    for _ in range(60):
        e = md.PredictEnergy(state)
        after = md.ComputeNewStates(state, 5.0, md.ComputeForces(state, e))
        totals.append(float(e) + support["md_kinetic_energy"](state, after))
        state = after
    np.testing.assert_allclose(state.positions, ref.positions, atol=2e-4)
    # the integrator conserves EMT's total energy to well under a meV per atom
    assert max(abs(h - totals[0]) for h in totals) / 13 < 1e-3


def test_force_error_falls_as_training_frames_grow(sweep: dict) -> None:
    few, many = sweep[5], sweep[60]
    assert few.ok and many.ok, (few.error, many.error)
    f_few, f_many = few.points[-1].metrics["ForceMAE"], many.points[-1].metrics["ForceMAE"]
    e_few, e_many = few.points[-1].metrics["EnergyMAE"], many.points[-1].metrics["EnergyMAE"]
    assert f_many < 0.7 * f_few and f_many < 300.0  # meV/Å; EMT forces here average ~400
    assert e_many < e_few
    # energies are tested at every epoch, forces and the closed loop once the stage is trained
    assert len(many.points) == 40 and all(p.metrics["EnergyMAE"] is not None for p in many.points)
    assert all("ForceMAE" not in p.metrics for p in many.points[:-1])
    assert many.points[-1].counters["SamplesSeen"] == 60 * 40


def test_closed_loop_compares_trajectories_from_one_start(sweep: dict) -> None:
    for result in sweep.values():
        last = result.points[-1]
        assert all(math.isfinite(last.metrics[m]) for m in ("TrajectoryRMSD", "EnergyDrift", "ForceMAE"))
        curve = last.values["TrajectoryRMSD"]
        assert len(curve) == 31 and curve[0] == 0.0  # the start, then one record per step
        # trajectories separate over time; the better potential stays closer
        assert np.mean(curve[-10:]) > np.mean(curve[1:11])
    assert sweep[60].points[-1].metrics["TrajectoryRMSD"] < sweep[5].points[-1].metrics["TrajectoryRMSD"]
    # forces are the gradients of the model's energy: its own total energy is nearly conserved
    assert sweep[60].points[-1].metrics["EnergyDrift"] < 5.0  # meV/atom


@pytest.fixture(scope="module")
def quick(repo: Repository) -> dict:
    """The Behler–Parrinello potential on 50 frames with the case studies' quick settings, trained with
    forces (the default force weight) and on energies alone (a force weight of 0)."""
    out = {}
    for weight in (10.0, 0.0):
        (s,) = discover(repo, machine=MACHINE, problem="MDCu13", model="BehlerParrinello",
                        params={"MDCu13.frames": [50], "MDCu13.force_weight": weight, **SMALL}).scenarios
        out[weight] = run_scenario(s, settings={"epochs": 20, "learning_rate": 1e-2})
    return out


def test_the_potential_trains_on_forces_and_their_error_falls_well_below_energy_only_training(quick: dict) -> None:
    forces, energies = quick[10.0], quick[0.0]
    assert forces.ok and energies.ok, (forces.error, energies.error)
    f_forces, f_energies = (r.points[-1].metrics["ForceMAE"] for r in (forces, energies))
    # Measured 30 meV/Å against 300 (EMT forces here average ~400): a regression guard, the quick bar.
    assert f_forces < 45.0
    assert f_forces < 0.3 * f_energies
    # the reported loss includes the force term: it is the larger for a weight of 10
    assert forces.points[0].loss > energies.points[0].loss


@pytest.mark.parametrize("model", ["BehlerParrinello", "PermutationInvariantModel"])
def test_gradients_of_the_trained_potential_match_finite_differences(model: str) -> None:
    repo = library("stacks", "md")
    repo.add_source(PROBE, origin="probe.py")
    lat = discover(repo, machine=MACHINE, problem="MDForceProbe", model=model)
    (scenario,) = lat.scenarios
    result = run_scenario(scenario)
    assert result.ok, result.error
    last = result.points[-1]
    assert last.metrics["MDProbeGradientSize"] > 1e-3  # a trained, non-flat potential
    assert last.metrics["MDProbeDisagreement"] < 2e-3 + 1e-2 * last.metrics["MDProbeGradientSize"]
