"""The whole library at once, as `%sail load sail_modules` gives it: every file parses, every module is documented."""

from __future__ import annotations

from collections import Counter

import pytest

from saibench_jupyter import Lattice, Machine, Repository, discover

NO_GPU = Machine(cpus=2, gpus=0, memory=2**34)


@pytest.fixture(scope="module")
def library() -> Repository:
    repo = Repository()
    repo.load("sail_modules")
    return repo


@pytest.fixture(scope="module")
def lattice(library: Repository) -> Lattice:
    return discover(library, machine=NO_GPU)


def test_every_module_has_a_docstring(library: Repository) -> None:
    undocumented = [m.name for m in library.modules() if not (m.doc or "").strip()]
    assert undocumented == []


def test_every_problem_forms_scenarios_and_cuda_is_rejected_without_a_gpu(library: Repository,
                                                                           lattice: Lattice) -> None:
    problems = {m.name for m in library.modules("problem")}
    assert {"Digits", "DigitsIdx", "BurgersPDE", "MDCu13", "SegmentBlobs", "LotkaVolterraIVP", "VanDerPolIVP",
            "RobertsonIVP", "HypothesisLotkaVolterra"} <= problems
    assert {s.problem for s in lattice.scenarios} == problems
    (cuda,) = [r for r in lattice.rejections if r.kind == "hardware"]
    assert cuda.module == "CUDA" and "none is visible" in cuda.reason


def test_no_scenario_is_offered_twice_by_two_stacks_of_one_backend(lattice: Lattice) -> None:
    # One NumPy stack, and ASE's PyTorch stack only where the problem needs molecular dynamics.
    runs = Counter((s.problem_instance.label, s.model_choice.label, s.hardware_instance.label,
                    s.software_instance.backend) for s in lattice.scenarios)
    assert [k for k, n in runs.items() if n > 1] == []
    assert {s.problem for s in lattice.scenarios if s.software == "ASEPyTorch"} == {"MDCu13"}


def test_time_to_target_attaches_everywhere_as_it_reads_checkpoints_by_parameter(lattice: Lattice) -> None:
    # TimeToTarget reads r.checkpoints and p[metric]: no metric by name, so every scenario may be ranked by it;
    # ParetoAccuracy reads r.Accuracy and stays with the problems that measure accuracy.
    rankings = {s.problem: {r.name for r in s.rankings} for s in lattice.scenarios}
    assert all("TimeToTarget" in names for names in rankings.values())
    assert "ParetoAccuracy" in rankings["Digits"] and "ParetoAccuracy" not in rankings["LotkaVolterraIVP"]
    (info,) = {r for s in lattice.scenarios for r in s.rankings if r.name == "TimeToTarget"}
    assert (info.comparison, info.metrics, info.better) == (False, frozenset(), "lower")
