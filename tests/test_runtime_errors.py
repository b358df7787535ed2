"""A failing module, a diverging loss or bad settings end one run with a clear error; nothing raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.sail import Tensor, register_dataset

pytest.importorskip("torch")

SOURCE = Path(__file__).parent / "sail" / "runtime_errors.py"
MACHINE = Machine(cpus=2, gpus=0, memory=2**34)


def _ramp() -> dict[str, list[object]]:
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(32, 2)
    return {"x": list(x), "y": list(x.sum(axis=1, keepdims=True))}


register_dataset("ramp", {"x": Tensor(2), "y": Tensor(1)}, _ramp)


@pytest.fixture(scope="module")
def repo() -> Repository:
    repo = Repository()
    repo.load(SOURCE)
    return repo


def _scenario(repo: Repository, problem: str):
    lat = discover(repo, problem=problem, machine=MACHINE)
    (scenario,) = lat.scenarios
    return scenario


def test_an_exception_in_the_problem_names_module_line_and_stage(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "BrokenAfterTraining"))
    assert result.status == "failed"
    err = result.error
    assert err is not None and err.module == "BrokenAfterTraining" and err.stage == 1
    assert err.location is not None and err.location.line == 23
    assert "ValueError" in err.what and "runtime_errors.py" in str(err)


def test_a_failing_metric_is_a_warning_and_the_run_goes_on(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "Ramp"))
    assert result.ok, result.error
    assert [p.metrics.keys() for p in result.points] == [{"Error"}, {"Error"}]
    assert {w.module for w in result.warnings} == {"Fragile"}
    assert "IndexError" in result.warnings[0].what and result.warnings[0].checkpoint == 1


def test_a_diverging_loss_is_reported_as_such(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "Ramp"), settings={"learning_rate": 1e30, "optimizer": "sgd"})
    assert result.status == "diverged"
    assert result.error is not None and "diverged" in result.error.what
    assert "lower the learning rate" in (result.error.fix or "")


def test_a_missing_input_file_says_where_it_looked(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "MissingFile"))
    assert result.status == "failed"
    assert "nowhere.npy" in result.error.what and result.error.module == "MissingFile"


def test_unknown_settings_are_refused_before_running(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "Ramp"), settings={"epoch": 3})
    assert result.status == "failed" and "unknown training setting 'epoch'" in result.error.what
