"""Native models report their own checkpoints: a ``Solver`` or an ``Estimator.fit`` given ``checkpoint``.

Gradient descent on small least-squares systems, written as SAIL modules: a solver that
calls ``checkpoint(beta)`` every iteration gives one run with a point per kept call, its
errors decreasing and its work counters holding the time up to each call; the cap and the
spacing settings choose the calls; a solver without the keyword runs as before.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from saibench_jupyter import Machine, Repository, discover, run_scenario

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
ITERATIONS = 40

SOURCE = '''
import time
import numpy as np
from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset


def _systems():
    rng = np.random.default_rng(0)
    out = {"system": [], "w": []}
    for _ in range(3):
        X, w = rng.normal(size=(40, 5)), rng.normal(size=5)
        out["system"].append(np.hstack([X, (X @ w)[:, None]]))
        out["w"].append(w)
    return out


register_dataset("ckpt_systems", {"system": Tensor(40, 6, dtype="float64"), "w": Tensor(5, dtype="float64")},
                 _systems)


def descend(system, iterations, checkpoint=None):
    X, y = system[:, :-1], system[:, -1]
    step = 1.0 / np.linalg.norm(X, 2) ** 2
    beta = np.zeros(X.shape[1])
    for _ in range(iterations):
        beta = beta - step * X.T @ (X @ beta - y)
        Count("steps")
        if checkpoint is not None:
            checkpoint(beta)
    return beta


class Descender:
    """A fit/predict regressor by gradient descent; ``fit`` reports every iteration."""

    def __init__(self, iterations, as_function=False):
        self.iterations, self.as_function = iterations, as_function

    def fit(self, x, y, checkpoint=None):
        step = 1.0 / np.linalg.norm(x, 2) ** 2
        self.beta = np.zeros(x.shape[1])
        for _ in range(self.iterations):
            self.beta = self.beta - step * x.T @ (x @ self.beta - y)
            Count("steps", 2)
            if checkpoint is not None:
                beta = self.beta.copy()
                checkpoint((lambda x, beta=beta: np.asarray(x) @ beta) if self.as_function else None)
        return self

    def predict(self, x):
        return np.asarray(x) @ self.beta


@ProblemDefinition
def Systems():
    for system, w in zip(Input("dataset:ckpt_systems/system", Tensor(40, 6, dtype="float64")),
                         Input("dataset:ckpt_systems/w", Tensor(5, dtype="float64"))):
        Test.Solve(system, w)


def _regression(part):
    def rows():
        rng = np.random.default_rng(1)
        x = rng.normal(size=(60, 4))[part]
        y = x @ np.array([1.0, -2.0, 0.5, 3.0])
        return {"x": list(x), "y": [np.array([v]) for v in y]}
    return rows


for _name, _part in (("train", slice(0, 40)), ("test", slice(40, 60))):
    register_dataset(f"ckpt_{_name}", {"x": Tensor(4, dtype="float64"), "y": Tensor(1, dtype="float64")},
                     _regression(_part))


@ProblemDefinition
def Regression():
    for x, y in zip(Input("dataset:ckpt_train/x", Tensor(4, dtype="float64")),
                    Input("dataset:ckpt_train/y", Tensor(1, dtype="float64"))):
        Train.Predict(x, y)
    for x, y in zip(Input("dataset:ckpt_test/x", Tensor(4, dtype="float64")),
                    Input("dataset:ckpt_test/y", Tensor(1, dtype="float64"))):
        Test.Predict(x, y)


@ModelDefinition
def Descent(task, inputType, outputType, iterations=40):
    if task != Solve: Fail("solves systems only")
    return Solver(lambda system, checkpoint: descend(system, iterations, checkpoint))


@ModelDefinition
def Blind(task, inputType, outputType, iterations=40):
    if task != Solve: Fail("solves systems only")
    return Solver(lambda system: descend(system, iterations))


@ModelDefinition
def Fitted(task, inputType, outputType, as_function=False):
    if task != Predict: Fail("regression only")
    return Estimator(Descender(40, as_function))


@MetricDefinition(better="lower")
def CoefError():
    return sum(L2Error(w, b) for (_, w, b) in Test.Solve) / len(Test.Solve)


SOLVED = []


def uneven(system, checkpoint):
    """40 iterations on the first record, 5 on the others."""
    SOLVED.append(1)
    return descend(system, 40 if len(SOLVED) == 1 else 5, checkpoint)


@ModelDefinition
def Uneven(task, inputType, outputType):
    if task != Solve: Fail("solves systems only")
    return Solver(uneven)


@MetricDefinition(better="lower")
def PerSystem():
    return [L2Error(w, b) for (_, w, b) in Test.Solve]


@MetricDefinition(better="lower")
def PredictError():
    return sum(L2Error(y, p) for (_, y, p) in Test.Predict) / len(Test.Predict)


@MetricDefinition(better="lower")
def Slow():
    """A metric that takes 50 ms: metric code is outside every timer."""
    time.sleep(0.05)
    return 0.0


@MetricDefinition
def Steps():
    """Gradient steps (Count("steps")): a work metric, as it reads only a counter."""
    return Counted("steps")


@MetricDefinition(axis="work")
def Elapsed():
    return ElapsedMilliseconds()


@HardwareDefinition
def OneCore():
    return Resources(cpus=1)


@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy", pip=["numpy"])
'''


@pytest.fixture(scope="module")
def repo() -> Repository:
    repo = Repository()
    repo.add_source(SOURCE, origin="checkpoints.py")
    return repo


def _run(repo: Repository, model: str, metrics: tuple[str, ...] = ("CoefError", "Elapsed"),
         problem: str = "Systems", **settings: Any):
    (scenario,) = discover(repo, problem=problem, model=model, metric=list(metrics), machine=MACHINE).scenarios
    return run_scenario(scenario, settings=settings or None)


def test_a_solver_that_reports_every_iteration_gives_one_point_per_call(repo: Repository) -> None:
    result = _run(repo, "Descent")
    assert result.ok, result.error
    points = result.points
    # One point per call, then the final answer (the last one: its procedural tests belong to it).
    assert len(points) == ITERATIONS + 1
    assert [p.checkpoint for p in points] == list(range(1, ITERATIONS + 2))
    assert [p.epoch for p in points] == [*range(1, ITERATIONS + 1), ITERATIONS]
    errors = [p.metrics["CoefError"] for p in points]
    assert all(b < a for a, b in pairwise(errors[:ITERATIONS]))
    assert errors[-1] == errors[-2]  # the final answer is the last iterate
    elapsed = [p.counters["ElapsedMilliseconds"] for p in points]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    assert all(p.counters["InferenceMilliseconds"] == p.counters["ElapsedMilliseconds"] for p in points)


def test_a_solver_without_the_keyword_runs_as_before(repo: Repository) -> None:
    blind = _run(repo, "Blind")
    assert blind.ok, blind.error
    assert [(p.checkpoint, p.epoch) for p in blind.points] == [(1, 0)]
    reporting = _run(repo, "Descent")
    assert blind.points[0].metrics["CoefError"] == reporting.points[-1].metrics["CoefError"]


def test_metric_time_is_outside_the_solvers_clock(repo: Repository) -> None:
    result = _run(repo, "Descent", ("CoefError", "Slow", "Elapsed"), checkpoints=11)
    assert result.ok, result.error
    assert len(result.points) == 11
    # Ten metric evaluations slept 0.5 s before the final point: none of it is model work.
    assert result.points[-1].counters["ElapsedMilliseconds"] < 250


@pytest.mark.parametrize(("settings", "calls"), [
    ({"checkpoints": 5}, [1, 2, 3, 4]),
    ({"checkpoint_spacing": 10}, [10, 20, 30, 40]),
    ({"checkpoint_spacing": "geometric"}, [1, 2, 4, 8, 16, 32]),
    ({"checkpoint_spacing": "geometric:4"}, [1, 4, 16]),
    ({"checkpoint_spacing": "geometric", "checkpoints": 4}, [1, 2, 4]),
    ({"checkpoints": 1}, []),
])
def test_the_cap_and_the_spacing_choose_the_calls(repo: Repository, settings: dict[str, Any],
                                                  calls: list[int]) -> None:
    result = _run(repo, "Descent", **settings)
    assert result.ok, result.error
    assert [p.epoch for p in result.points[:-1]] == calls
    assert result.points[-1].epoch == (ITERATIONS if calls else 0)


@pytest.mark.parametrize(("setting", "message"), [
    ({"checkpoint_spacing": 0}, r"checkpoint_spacing=0: use an integer k >= 1"),
    ({"checkpoint_spacing": "geometric:1"}, r"checkpoint_spacing='geometric:1'"),
    ({"checkpoints": 0}, r"checkpoints=0: keep at least 1"),
])
def test_bad_checkpoint_settings_are_reported(repo: Repository, setting: dict[str, Any], message: str) -> None:
    result = _run(repo, "Descent", **setting)
    assert result.status == "failed"
    assert result.error is not None
    with pytest.raises(ValueError, match=message):
        raise ValueError(result.error.what)


def test_checkpoint_without_an_answer_is_an_error_for_a_solver(repo: Repository) -> None:
    source = SOURCE.replace("checkpoint(beta)", "checkpoint()")
    other = Repository()
    other.add_source(source, origin="checkpoints_bad.py")
    result = _run(other, "Descent")
    assert result.status == "failed"
    assert result.error is not None
    assert "a Solver's checkpoint takes its current answer" in result.error.what


@pytest.mark.parametrize("as_function", [False, True])
def test_an_estimator_reports_checkpoints_during_fit(repo: Repository, as_function: bool) -> None:
    (scenario,) = discover(repo, problem="Regression", model="Fitted", metric=["PredictError", "Elapsed"],
                           params={"Fitted.as_function": [as_function]}, machine=MACHINE).scenarios
    result = run_scenario(scenario, settings={"checkpoint_spacing": 5})
    assert result.ok, result.error
    points = result.points
    assert [p.epoch for p in points] == [5, 10, 15, 20, 25, 30, 35, 40, 40]
    errors = [p.metrics["PredictError"] for p in points]
    assert all(b < a for a, b in pairwise(errors[:-1]))
    assert errors[-1] == pytest.approx(errors[-2])
    training = [p.counters["TrainingMilliseconds"] for p in points]
    assert training == sorted(training)
    # The fit saw every record once, at its end; the points before it sit inside that epoch.
    assert [p.counters["Epochs"] for p in points] == [0] * 8 + [1]


def test_checkpoints_reach_the_store_through_a_pod(repo: Repository, tmp_path: Any, monkeypatch: Any) -> None:
    from saibench_jupyter.pods import run

    monkeypatch.chdir(tmp_path)
    scenarios = discover(repo, problem="Systems", model="Descent", metric=["CoefError"], machine=MACHINE).scenarios
    results = run(scenarios, executor="subprocess", store=tmp_path / "s.db", settings={"checkpoints": 8},
                  progress=False)
    frame = results.to_dataframe().query("metric == 'CoefError'")
    assert set(frame.status) == {"ok"}
    assert sorted(frame.checkpoint) == list(range(1, 9))
    values = frame.sort_values("checkpoint").value.tolist()
    assert values == sorted(values, reverse=True)


def test_the_least_squares_example_gives_per_budget_values_from_one_run(monkeypatch: Any) -> None:
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench / "benchopt_lsq"))
    repo = Repository()
    repo.load(bench / "lsq_sail.py")
    params = {"LeastSquares.kind": ["gaussian"], "LeastSquares.n_samples": [500]}
    (curve,) = discover(repo, model="GradientDescent", metric=["LSQObjective"], params=params,
                        machine=MACHINE).scenarios
    result = run_scenario(curve)
    assert result.ok, result.error
    by_iteration = {p.epoch: p.metrics["LSQObjective"] for p in result.points}
    assert list(by_iteration) == [1, 2, 4, 8, 16, 32, 64, 128]
    budgets = discover(repo, model="GradientDescentPerBudget", metric=["LSQObjective"],
                       params={**params, "GradientDescentPerBudget.max_iter": [1, 8, 128]}, machine=MACHINE)
    for scenario in budgets.scenarios:
        (point,) = run_scenario(scenario).points
        assert point.metrics["LSQObjective"] == by_iteration[scenario.params["GradientDescentPerBudget.max_iter"]]


def test_a_record_that_finished_earlier_keeps_its_final_answer(repo: Repository) -> None:
    result = _run(repo, "Uneven", ("PerSystem", "Elapsed"))
    assert result.ok, result.error
    points = result.points
    assert [p.epoch for p in points] == [*range(1, 41), 40]  # the record with the most calls decides
    per_system = [list(p.values["PerSystem"]) for p in points]
    final = per_system[-1]
    assert all(row[1:] == final[1:] for row in per_system[4:])  # after their 5th call: their final answers
    assert per_system[3][1] > final[1]  # at their 4th call they were still on their way
    first = [row[0] for row in per_system]
    assert all(b < a for a, b in pairwise(first[:40]))


def test_named_counters_count_up_to_each_checkpoint(repo: Repository) -> None:
    result = _run(repo, "Descent", ("Steps",), checkpoint_spacing=10)
    assert result.ok, result.error
    # Three systems, one step per iteration each: 3n steps at call n, 120 at the end.
    assert [p.metrics["Steps"] for p in result.points] == [30.0, 60.0, 90.0, 120.0, 120.0]
    assert [p.counters["steps"] for p in result.points] == [30.0, 60.0, 90.0, 120.0, 120.0]
    blind = _run(repo, "Blind", ("Steps",))
    assert blind.points[0].metrics["Steps"] == 120.0


def test_named_counters_count_training_too(repo: Repository) -> None:
    (scenario,) = discover(repo, problem="Regression", model="Fitted", metric=["Steps"],
                           params={"Fitted.as_function": [False]}, machine=MACHINE).scenarios
    result = run_scenario(scenario, settings={"checkpoint_spacing": 20})
    assert result.ok, result.error
    assert [p.metrics["Steps"] for p in result.points] == [40.0, 80.0, 80.0]


def test_a_counter_the_model_never_counted_is_none(repo: Repository) -> None:
    source = SOURCE.replace('Count("steps")', "pass")
    other = Repository()
    other.add_source(source, origin="checkpoints_uncounted.py")
    result = _run(other, "Blind", ("Steps", "CoefError"))
    assert result.ok, result.error
    assert result.points[0].metrics["Steps"] is None
    assert result.points[0].metrics["CoefError"] is not None


def test_counted_steps_reach_the_store_as_a_work_metric(repo: Repository, tmp_path: Any, monkeypatch: Any) -> None:
    from saibench_jupyter.pods import run

    monkeypatch.chdir(tmp_path)
    scenarios = discover(repo, problem="Systems", model="Descent", metric=["Steps"], machine=MACHINE).scenarios
    results = run(scenarios, executor="subprocess", store=tmp_path / "s.db",
                  settings={"checkpoint_spacing": "geometric"}, progress=False)
    frame = results.to_dataframe().sort_values("checkpoint")
    assert frame[frame.metric == "Steps"].value.tolist() == [3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 120.0]
    assert results.metric_info()["Steps"]["axis"] == "work"


def test_a_counter_is_a_work_axis_by_its_own_name(repo: Repository, tmp_path: Any, monkeypatch: Any) -> None:
    from saibench_jupyter.pods import run
    from saibench_jupyter.ui import plot_work_precision

    monkeypatch.chdir(tmp_path)
    scenarios = discover(repo, problem="Systems", model="Descent", metric=["CoefError"], machine=MACHINE).scenarios
    results = run(scenarios, executor="subprocess", store=tmp_path / "s.db",
                  settings={"checkpoint_spacing": "geometric"}, progress=False)
    frame = results.to_dataframe().sort_values("checkpoint")
    # No metric reads it: the counter itself is stored at each checkpoint, as work.
    assert frame[frame.metric == "steps"].value.tolist() == [3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 120.0]
    assert results.metric_info()["steps"] == {"axis": "work", "better": "lower", "unit": None}
    figure = plot_work_precision(results, work="steps", precision="CoefError")  # %sail plot --work steps
    assert figure.layout.xaxis.title.text.startswith("CoefError") and figure.layout.yaxis.title.text == "steps"
    assert len(figure.data[0].x) == 7
