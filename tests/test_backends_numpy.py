"""The NumPy backend runs fit/predict estimators as the problem declares its targets.

A regression onto ``Tensor(1)`` or onto 0/1 indicators is a regression, whatever the
width or the values of its targets; only ``Classify`` with one-hot targets becomes class
labels for ``fit`` and probabilities (or one-hot answers) back. Each scenario's error is
checked against the same estimator fitted and run by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.sail import Scalar, Tensor, register_dataset

sklearn = pytest.importorskip("sklearn")
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
RNG = np.random.default_rng(0)
X = RNG.uniform(-1, 1, (160, 2)).astype(np.float32)
TRAIN, TEST = slice(0, 120), slice(120, 160)
#: a smooth surface spanning [-3, 3]: predictions of 1 or more once broke the one-class guess
VALUES = (3 * np.sin(2 * X[:, 0]) * np.cos(X[:, 1])).astype(np.float32)
INDICATORS = np.stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(1) > 0.5], axis=1).astype(np.float32)
LABELS = np.digitize(X[:, 0] + 0.3 * X[:, 1], [-0.4, 0.4]).astype(np.float32)  # classes 0, 1, 2

#: name -> (element type of the targets, targets)
TARGETS = {"scalar": (Scalar("float32"), VALUES), "one": (Tensor(1), VALUES[:, None]),
           "indicators": (Tensor(3), INDICATORS), "labels": (Scalar("float32"), LABELS),
           "label1": (Tensor(1), LABELS[:, None]), "classes": (Scalar("float32"), LABELS)}


def _register(name: str, part: slice) -> None:
    element, y = TARGETS[name]
    register_dataset(f"numpy_{name}_{part.start}", {"x": Tensor(2), "y": element},
                     lambda: {"x": list(X[part]), "y": list(y[part])})


for _name in TARGETS:
    _register(_name, TRAIN)
    _register(_name, TEST)

PROBLEM = '''
@ProblemDefinition
def {name}():
    for x, y in Input("dataset:numpy_{data}_0"){onehot}:
        Train.{task}(x, y)
    for x, y in Input("dataset:numpy_{data}_120"){onehot}:
        Test.{task}(x, y)
'''
#: problem -> (task, dataset, ``.OneHot(...)`` or nothing)
PROBLEMS = {"RegressScalar": ("Predict", "scalar", ""), "RegressOne": ("Predict", "one", ""),
            "RegressIndicators": ("Predict", "indicators", ""), "ClassifyLabels": ("Classify", "labels", ""),
            "ClassifyLabel1": ("Classify", "label1", ""),
            "ClassifyOneHot": ("Classify", "classes", ".OneHot(Tensor(3))")}
SOURCE = '''
import numpy as np
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from saibench_jupyter.sail import *


class Nearest:
    """A user's own estimator: the target of the closest training record (no predict_proba)."""

    def fit(self, x, y):
        self.x, self.y = np.asarray(x), np.asarray(y)
        return self

    def predict(self, x):
        d = ((np.asarray(x)[:, None, :] - self.x[None, :, :]) ** 2).sum(-1)
        return self.y[d.argmin(1)]


@ModelDefinition
def KNNRegressor(task, inputType, outputType, k=5):
    if task != Predict: Fail("regression only")
    return Pipeline([Convert(inputType, Tensor), Estimator(KNeighborsRegressor(n_neighbors=k))])


@ModelDefinition
def KNNClassifier(task, inputType, outputType, k=5):
    if task != Classify: Fail("classifies only")
    return Pipeline([Convert(inputType, Tensor), Estimator(KNeighborsClassifier(n_neighbors=k))])


@ModelDefinition
def Handmade(task, inputType, outputType):
    return Pipeline([Convert(inputType, Tensor), Estimator(Nearest())])


@MetricDefinition(better="lower")
def PredictError():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Predict) / len(Test.Predict)


@MetricDefinition(better="lower")
def ClassifyError():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Classify) / len(Test.Classify)


@HardwareDefinition
def OneCore():
    return Resources(cpus=1)


@SoftwareDefinition
def ScikitLearn(hardware):
    return Environment(backend="numpy", pip=["scikit-learn"])
''' + "".join(PROBLEM.format(name=n, task=t, data=d, onehot=o) for n, (t, d, o) in PROBLEMS.items())


class Nearest:
    """The test's copy of the source's hand-written estimator."""

    def fit(self, x: Any, y: Any) -> Nearest:
        self.x, self.y = np.asarray(x), np.asarray(y)
        return self

    def predict(self, x: Any) -> Any:
        d = ((np.asarray(x)[:, None, :] - self.x[None, :, :]) ** 2).sum(-1)
        return self.y[d.argmin(1)]


@pytest.fixture(scope="module")
def repo() -> Repository:
    repo = Repository()
    repo.add_source(SOURCE, origin="numpy_estimators.py")
    return repo


def _error(repo: Repository, problem: str, model: str, **params: Any) -> float:
    """The scenario's mean test error, run for real."""
    lat = discover(repo, problem=problem, model=model, machine=MACHINE, params=params)
    (scenario,) = lat.scenarios
    result = run_scenario(scenario)
    assert result.ok, result.error
    (point,) = result.points
    metric = "ClassifyError" if PROBLEMS[problem][0] == "Classify" else "PredictError"
    return float(point.metrics[metric])


def _by_hand(problem: str, estimator: Any) -> float:
    """The mean L2 error of ``estimator`` fitted and run directly, in the problem's target layout."""
    _, data, onehot = PROBLEMS[problem]
    _, y = TARGETS[data]
    if onehot:  # one-hot targets: fitted on labels, answered as class probabilities (or one-hot labels)
        estimator.fit(X[TRAIN], y[TRAIN])
        expected = np.eye(3, dtype=np.float32)[y[TEST].astype(int)]
        if hasattr(estimator, "predict_proba"):
            predicted = estimator.predict_proba(X[TEST])
        else:
            predicted = np.eye(3)[estimator.predict(X[TEST]).astype(int)]
    else:
        flat = y.reshape(len(y)) if y.ndim == 2 and y.shape[1] == 1 else y
        estimator.fit(X[TRAIN], flat[TRAIN])
        expected, predicted = y[TEST], np.asarray(estimator.predict(X[TEST])).reshape(y[TEST].shape)
    diff = (np.asarray(predicted, np.float64) - expected).reshape(len(expected), -1)
    return float(np.sqrt((diff**2).sum(1)).mean())


@pytest.mark.parametrize("k", [5, 20])
@pytest.mark.parametrize("problem", ["RegressScalar", "RegressOne", "RegressIndicators"])
def test_a_regressor_keeps_its_targets_whatever_their_width(repo: Repository, problem: str, k: int) -> None:
    error = _error(repo, problem, "KNNRegressor", k=k)
    assert error == pytest.approx(_by_hand(problem, KNeighborsRegressor(n_neighbors=k)), rel=1e-5)
    assert error < 0.5  # the surface is smooth; one-hot answers were off by more than 1


@pytest.mark.parametrize("problem", ["ClassifyLabels", "ClassifyLabel1", "ClassifyOneHot"])
def test_a_classifier_gets_labels_and_answers_in_the_declared_layout(repo: Repository, problem: str) -> None:
    error = _error(repo, problem, "KNNClassifier", k=5)
    assert error == pytest.approx(_by_hand(problem, KNeighborsClassifier(n_neighbors=5)), rel=1e-5)


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_a_handwritten_estimator_follows_the_declaration_too(repo: Repository, problem: str) -> None:
    error = _error(repo, problem, "Handmade")
    assert error == pytest.approx(_by_hand(problem, Nearest()), rel=1e-5, abs=1e-7)


#: float64 records that float32 cannot hold: 1 + k·1e-10 all round to 1.0 in float32
PRECISE_X = np.stack([1.0 + 1e-10 * np.arange(40), np.linspace(-1.0, 1.0, 40)], axis=1)
PRECISE_W = np.array([3.0, -2.0])
register_dataset("numpy_precise", {"x": Tensor(2, dtype="float64"), "y": Tensor(1, dtype="float64")},
                 lambda: {"x": list(PRECISE_X), "y": list((PRECISE_X @ PRECISE_W)[:, None])})
PRECISE = '''
import numpy as np
from sklearn.linear_model import LinearRegression
from saibench_jupyter.sail import *


@ProblemDefinition
def Precise():
    for x, y in Input("dataset:numpy_precise"):
        Train.Predict(x, y)
    for x, y in Input("dataset:numpy_precise"):
        Test.Predict(x, y)


@ModelDefinition
def Linear64(task, inputType, outputType):
    return Estimator(LinearRegression())


@ModelDefinition
def Exact(task, inputType, outputType):
    return Solver(lambda x: np.array([3.0 * x[0] - 2.0 * x[1]]))


@MetricDefinition(better="lower")
def PreciseError():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Predict) / len(Test.Predict)


@HardwareDefinition
def OneCore():
    return Resources(cpus=1)


@SoftwareDefinition
def ScikitLearn(hardware):
    return Environment(backend="numpy", pip=["scikit-learn"])
'''


def test_float64_inputs_reach_numpy_models_in_float64() -> None:
    repo = Repository()
    repo.add_source(PRECISE, origin="numpy_precise.py")
    # An exact linear relation: in float64 both models meet it to rounding (~1e-15); records cast
    # to float32 on the way left errors of ~1e-8 (the solver) and ~1e-7 (the fitted estimator).
    for model in ("Exact", "Linear64"):
        (scenario,) = discover(repo, model=model, machine=MACHINE).scenarios
        result = run_scenario(scenario)
        assert result.ok, result.error
        assert result.points[0].metrics["PreciseError"] < 1e-12, model


def test_derivative_targets_are_refused_by_estimators() -> None:
    """``Train.Gradients`` needs a differentiable model: an Estimator fails the run, with the reason."""
    repo = Repository()
    repo.add_source(SOURCE + '''
@ProblemDefinition
def RegressWithSlopes():
    for x, y in Input("dataset:numpy_scalar_0"):
        Train.Predict(x, y)
        Train.Gradients(x, 2.0 * x)
    for x, y in Input("dataset:numpy_scalar_120"):
        Test.Predict(x, y)
''', origin="numpy_slopes.py")
    (scenario,) = discover(repo, problem="RegressWithSlopes", model="KNNRegressor", machine=MACHINE).scenarios
    error = run_scenario(scenario).error
    assert error is not None and "the NumPy backend cannot train on derivative targets" in error.what
