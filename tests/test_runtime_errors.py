"""A failing module, a diverging loss or bad settings end one run with a clear error; nothing raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.sail import Tensor, register_dataset
from saibench_jupyter.sail._errors import Location

pytest.importorskip("torch")

SOURCE = Path(__file__).parent / "sail" / "runtime_errors.py"
MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
#: Models for Ramp that fail in their own code (lines 13 and 19) or in a library they wrap.
MODELS = """import torch
from sklearn.neighbors import KNeighborsRegressor
from saibench_jupyter.sail import *


class Picky(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, x):
        scales = [1.0, 2.0]
        return self.linear(x) * scales[len(x)]


class Stubborn:
    def fit(self, x, y):
        weights = {}
        return weights["slope"]

    def predict(self, x):
        return x


@ModelDefinition
def PickyNet(task, inputType, outputType):
    return TorchModule(Picky())


@ModelDefinition
def StubbornFit(task, inputType, outputType):
    return Pipeline([Convert(inputType, Tensor), Estimator(Stubborn())])


@ModelDefinition
def TooManyNeighbours(task, inputType, outputType):
    return Pipeline([Convert(inputType, Tensor), Estimator(KNeighborsRegressor(n_neighbors=100))])


@SoftwareDefinition
def ScikitLearn(hardware):
    return Environment(backend="numpy", pip=["scikit-learn"])
"""


def _ramp() -> dict[str, list[object]]:
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(32, 2)
    return {"x": list(x), "y": list(x.sum(axis=1, keepdims=True))}


register_dataset("ramp", {"x": Tensor(2), "y": Tensor(1)}, _ramp)


@pytest.fixture(scope="module")
def repo() -> Repository:
    repo = Repository()
    repo.load(SOURCE)
    return repo


@pytest.fixture(scope="module")
def models() -> Repository:
    repo = Repository()
    repo.load(SOURCE)
    repo.add_source(MODELS, origin="models.py")
    return repo


def _scenario(repo: Repository, problem: str, model: str | None = None):
    lat = discover(repo, problem=problem, model=model, machine=MACHINE)
    (scenario,) = lat.scenarios
    return scenario


def test_an_exception_in_the_problem_names_module_line_and_stage(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "BrokenAfterTraining"))
    assert result.status == "failed"
    err = result.error
    assert err is not None and err.module == "BrokenAfterTraining" and err.stage == 1
    assert err.location is not None and err.location.line == 23
    assert "ValueError" in err.what and "runtime_errors.py" in str(err)


@pytest.mark.parametrize(("model", "line", "code"), [("PickyNet", 13, "return self.linear(x) * scales[len(x)]"),
                                                     ("StubbornFit", 19, 'return weights["slope"]')])
def test_an_exception_in_the_models_own_code_names_the_model_its_line_and_traceback(models: Repository, model: str,
                                                                                     line: int, code: str) -> None:
    pytest.importorskip("sklearn")
    result = run_scenario(_scenario(models, "Ramp", model))
    err = result.error
    assert result.status == "failed" and err is not None
    # The model and the line that raised, not the problem's Test line that asked for a prediction.
    assert err.module == model and err.location == Location("models.py", line) and err.kind == "error"
    assert err.what.startswith("IndexError" if model == "PickyNet" else "KeyError")
    assert f'File "<sail models.py>", line {line}' in (err.traceback or "") and code in (err.traceback or "")
    assert str(err).endswith(f"fix: correct {model} where it raised; the traceback shows how the run got there")
    assert "None" not in str(err)


def test_a_library_the_model_wraps_fails_as_the_model_not_as_the_problem(models: Repository) -> None:
    pytest.importorskip("sklearn")
    err = run_scenario(_scenario(models, "Ramp", "TooManyNeighbours")).error
    assert err is not None and err.module == "TooManyNeighbours"
    assert err.location == models.get("TooManyNeighbours").location
    assert "n_neighbors" in err.what and "sklearn" in (err.traceback or "") and "None" not in str(err)


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
