"""The digits case study (``sail_modules.digits``, ``sail_modules.rankings``) through real scenarios.

Quality bars: the paper's MLP reaches a test accuracy of 0.95 on PyTorch, the CNN and the
scikit-learn estimators 0.9; the MNIST IDX files round-trip through the paper's reader; the
rankings order a known set of results (ties, incomparable pairs, misses, a DNF). JAX is left
out: XLA compiles cost 5-30 s on these shared cores, and tests/test_runtime.py already checks
that JAX trains the digits MLP as PyTorch does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import library

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.results import Results, Store, rank
from saibench_jupyter.runtime._data import open_input
from saibench_jupyter.runtime._execution_namespace import ExecutionNamespace
from saibench_jupyter.sail import Image, RandomSplit, Scalar, Tensor, register_dataset

MACHINE = Machine(cpus=2, gpus=0, memory=2**34)
IDX_FILES = ("train-images.idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte")

#: Problems the CNN must decline (flat vectors, images too small to pool twice, a regression
#: task) and one it takes (images with a channel axis). Discovery only: the loaders never run.
NOT_FOR_THE_CNN = '''
@ProblemDefinition
def FlatDigitVectors():
    for x, y in Input("dataset:flatdigits"):
        Train.Classify(x, y)
        Test.Classify(x, y)


@ProblemDefinition
def TinyImages():
    for x, y in Input("dataset:tinyimages"):
        Train.Classify(x, y)
        Test.Classify(x, y)


@ProblemDefinition
def DigitImages():
    for x, y in Input("dataset:digitimages"):
        Train.Classify(x, y)
        Test.Classify(x, y)


@ProblemDefinition
def DigitInk():
    for x, y in Input("dataset:digitink"):
        Train.Predict(x, y)
        Test.Predict(x, y)
'''

register_dataset("flatdigits", {"x": Tensor(64), "y": Tensor(10)}, lambda: {"x": [], "y": []})
register_dataset("tinyimages", {"x": Image(2, 2, 1), "y": Tensor(10)}, lambda: {"x": [], "y": []})
register_dataset("digitimages", {"x": Image(8, 8, 1), "y": Tensor(10)}, lambda: {"x": [], "y": []})
register_dataset("digitink", {"x": Tensor(8, 8), "y": Scalar("float32")}, lambda: {"x": [], "y": []})


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Generated files go to a fresh cache folder, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("saibench-cache")
        mp.setenv("SAIBENCH_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def repo() -> Repository:
    return library("stacks", "metrics", "digits", "rankings")


_RUNS: dict[tuple[Any, ...], Any] = {}


def run(repo: Repository, problem: str, model: str, software: str, params: dict[str, Any],
        settings: dict[str, Any]) -> Any:
    """One scenario run in-process (memoised: several tests read the same run)."""
    key = (problem, model, software, tuple(sorted(params.items())), tuple(sorted(settings.items())))
    if key not in _RUNS:
        lat = discover(repo, problem=problem, model=model, software=software, machine=MACHINE, params=params)
        (scenario,) = lat.scenarios
        result = run_scenario(scenario, settings=settings)
        assert result.ok, result.error
        _RUNS[key] = result
    return _RUNS[key]


def accuracy(result: Any) -> list[float]:
    return [p.metrics["Accuracy"] for p in result.points]


def mlp(repo: Repository, problem: str = "Digits", software: str = "PyTorch") -> Any:
    return run(repo, problem, "MLP", software, {"MLP.hiddenSize": 128}, {"epochs": 10})


# -- discovery ---------------------------------------------------------------------------------
def test_both_problems_get_every_model_with_the_digits_metrics_and_rankings(repo: Repository) -> None:
    lat = discover(repo, problem=["Digits", "DigitsIdx"], machine=MACHINE)
    for problem in ("Digits", "DigitsIdx"):
        mine = [s for s in lat.scenarios if s.problem == problem]
        pairs = {(s.model, s.software) for s in mine}
        assert {("MLP", "PyTorch"), ("MLP", "JAX"), ("CNN", "PyTorch"), ("CNN", "JAX"),
                ("LogisticRegression", "SciPy"), ("KNeighbors", "SciPy")} <= pairs
        assert sorted(s.model_choice.params["hiddenSize"] for s in mine
                      if s.model == "MLP" and s.software == "PyTorch") == [128, 256, 512, 1024]
        for s in mine:
            assert s.problem_instance.params == {"epochs": 10}
            assert {m.name for m in s.metrics} == {"Accuracy", "CriticalLoss", "WallTime"}
            assert {r.name for r in s.rankings} == {"ParetoAccuracy", "ParetoCriticalLoss", "FastestToAccuracy",
                                                      "TimeToTarget"}
    assert not any(s.model in ("LogisticRegression", "KNeighbors") and s.software in ("PyTorch", "JAX")
                   for s in lat.scenarios)


def test_the_cnn_declines_what_is_not_an_image_classification() -> None:
    repo = library("stacks", "metrics", "digits")
    repo.add_source(NOT_FOR_THE_CNN, origin="not_for_the_cnn.py")
    lat = discover(repo, problem=["FlatDigitVectors", "TinyImages", "DigitInk", "DigitImages"], model="CNN",
                   machine=MACHINE)
    assert {(s.problem, s.software) for s in lat.scenarios} == {("DigitImages", "PyTorch"), ("DigitImages", "JAX")}
    reasons = {r.context[0][1]: r.reason for r in lat.rejected(model="CNN") if r.kind == "model"}
    assert reasons["FlatDigitVectors"].startswith("the CNN needs image-shaped input")
    assert "Tensor(64)" in reasons["FlatDigitVectors"]
    assert reasons["TinyImages"].startswith("the CNN pools twice")
    assert reasons["DigitInk"] == "the CNN classifies only"
    # The MLP takes the flat vectors: declining them is the CNN's own choice.
    assert discover(repo, problem="FlatDigitVectors", model="MLP", software="PyTorch", machine=MACHINE,
                    params={"MLP.hiddenSize": 128}).scenarios


# -- quality bars ------------------------------------------------------------------------------
def test_mlp_on_pytorch_reaches_095_with_one_point_per_epoch(repo: Repository) -> None:
    result = mlp(repo)
    acc = accuracy(result)
    assert [p.epoch for p in result.points] == list(range(1, 11))
    assert acc[-1] >= 0.95 and acc[0] < acc[-1]
    walls = [p.metrics["WallTime"] for p in result.points]
    assert walls == sorted(walls) and walls[0] > 0
    # The worst 1 % of L2 errors between one-hot vectors: at most sqrt(2) (a confident miss).
    assert all(0 < p.metrics["CriticalLoss"] <= 2**0.5 + 1e-6 for p in result.points)


def test_cnn_learns_to_09(repo: Repository) -> None:
    result = run(repo, "Digits", "CNN", "PyTorch", {"CNN.channels": 16}, {"epochs": 4, "learning_rate": 3e-3})
    assert len(result.points) == 4
    assert accuracy(result)[-1] >= 0.9


@pytest.mark.parametrize("model", ["LogisticRegression", "KNeighbors"])
def test_scikit_learn_estimators_reach_09_in_one_fit(repo: Repository, model: str) -> None:
    result = run(repo, "Digits", model, "SciPy", {}, {})
    assert len(result.points) == 1  # fitted once: one checkpoint
    assert result.points[0].metrics["Accuracy"] >= 0.9


# -- the MNIST IDX round trip ------------------------------------------------------------------
def test_idx_files_are_mnist_format_and_read_back_as_the_digits(repo: Repository, cache: Path) -> None:
    from sklearn.datasets import load_digits

    folder = Path(ExecutionNamespace.of(repo).globals["digits_idx_folder"]())
    assert folder.parent == cache / "data" and folder.name.startswith("digits-idx-")
    train_images = (folder / IDX_FILES[0]).read_bytes()
    # LeCun's header: 0, 0, type 0x08 (unsigned byte), rank 3, then sizes as big-endian uint32.
    assert train_images[:16] == bytes([0, 0, 8, 3]) + (1438).to_bytes(4, "big") + (8).to_bytes(4, "big") * 2
    assert len(train_images) == 16 + 1438 * 64
    assert (folder / IDX_FILES[3]).read_bytes()[:8] == bytes([0, 0, 8, 1]) + (359).to_bytes(4, "big")

    digits = load_digits()
    # Digits' own split, drawn by the SAIL primitive: the files must hold exactly that split.
    train, test = RandomSplit(list(range(len(digits.target))), 0.8, seed=0)
    for (images, labels), index in (((IDX_FILES[0], IDX_FILES[1]), list(train)),
                                    ((IDX_FILES[2], IDX_FILES[3]), list(test))):
        x = np.stack(list(open_input(str(folder / images), Tensor(8, 8))))
        y = np.array(list(open_input(str(folder / labels), Scalar)))
        np.testing.assert_array_equal(x, digits.images[index])
        np.testing.assert_array_equal(y, digits.target[index])
    # Scaled as DigitsIdx scales them, they are the records of dataset:digits.
    provided = np.stack(list(open_input("dataset:digits/images")))
    np.testing.assert_array_equal(x / 16.0, provided[list(test)])

    # Written once: a second call finds the files and leaves them alone.
    stamps = {n: (folder / n).stat().st_mtime_ns for n in IDX_FILES}
    assert Path(ExecutionNamespace.of(repo).globals["digits_idx_folder"]()) == folder
    assert {n: (folder / n).stat().st_mtime_ns for n in IDX_FILES} == stamps
    assert [p.name for p in (cache / "data").iterdir()] == [folder.name]  # no staging folder left


def test_a_model_trained_on_the_idx_files_scores_as_on_digits(repo: Repository) -> None:
    from_files, from_provider = accuracy(mlp(repo, "DigitsIdx")), accuracy(mlp(repo))
    assert from_files[-1] >= 0.95
    np.testing.assert_allclose(from_files, from_provider, atol=0.01)


# -- rankings ----------------------------------------------------------------------------------
#: label -> (WallTime ms, Accuracy, CriticalLoss) at the final point; None: did not finish.
RESULTS: dict[str, tuple[float, float, float] | None] = {
    "fast-rough": (50.0, 0.80, 1.20),
    "quick": (100.0, 0.90, 0.90),
    "good": (200.0, 0.97, 0.50),
    "good-twin": (200.0, 0.97, 0.50),
    "slower": (300.0, 0.96, 0.45),
    "slowest-095": (350.0, 0.95, 0.70),
    "best": (400.0, 0.99, 0.30),
    "crashed": None,
}
METRIC_INFO = {"Accuracy": {"axis": "precision", "better": "higher", "unit": None},
               "CriticalLoss": {"axis": "precision", "better": "lower", "unit": None},
               "WallTime": {"axis": "work", "better": "lower", "unit": "ms"}}


@pytest.fixture
def results(tmp_path: Path) -> Any:
    store = Store(tmp_path / "saibench.db")
    run_id = store.begin_run("local", 1)
    for i, (label, values) in enumerate(RESULTS.items()):
        identity = f"{i:016x}"
        store.add_scenario(identity, {"label": label, "family": label, "problem": "Digits", "model": "MLP",
                                      "software": "PyTorch", "hardware": "CPU", "params": {},
                                      "metrics": sorted(METRIC_INFO), "metric_info": METRIC_INFO})
        store.start_pod(run_id, identity, 0)
        if values is None:
            events: list[dict[str, Any]] = [{"event": "failed", "t": 1.0, "kind": "error", "message": "boom",
                                             "module": "MLP", "location": None, "stage": 1, "checkpoint": None,
                                             "fix": None, "traceback": None, "stderr": ""}]
        else:
            events = [{"event": "started", "t": 0.0, "pid": 1, "environment": None}, {"event": "stage", "stage": 1},
                      {"event": "checkpoint", "stage": 1, "checkpoint": 1, "epoch": 1, "loss": 0.1,
                       "counters": {"ElapsedMilliseconds": values[0]}},
                      *({"event": "metric", "stage": 1, "checkpoint": 1, "name": name, "value": value, "raw": None}
                        for name, value in zip(("WallTime", "Accuracy", "CriticalLoss"), values)),
                      {"event": "finished", "t": 1.0, "status": "ok", "wall_ms": 1.0, "compile_ms": 0.0}]
        for event in events:
            store.record(run_id, identity, 0, event)
    yield Results(store)
    store.close()


def levels(repo: Repository, results: Results, name: str) -> dict[str, int | None]:
    table = rank(results, name, repository=repo).table
    return {row.label: None if pd.isna(row.level) else int(row.level) for row in table.itertuples()}


def test_pareto_accuracy_levels_ties_and_incomparable_pairs(repo: Repository, results: Results) -> None:
    # The front mixes fast-and-rough with slow-and-accurate (incomparable: one level); the twins
    # tie; "slower" loses to "good" on both axes, and "slowest-095" to "slower".
    assert levels(repo, results, "ParetoAccuracy") == {
        "best": 1, "fast-rough": 1, "good": 1, "good-twin": 1, "quick": 1,
        "slower": 2, "slowest-095": 3, "crashed": None}


def test_pareto_critical_loss_reads_the_other_precision(repo: Repository, results: Results) -> None:
    # "slower" has the smaller critical loss than "good": now they are incomparable.
    assert levels(repo, results, "ParetoCriticalLoss") == {
        "best": 1, "fast-rough": 1, "good": 1, "good-twin": 1, "quick": 1, "slower": 1,
        "slowest-095": 2, "crashed": None}


def test_fastest_to_accuracy_ranks_only_what_reaches_the_target(repo: Repository, results: Results) -> None:
    ranking = rank(results, "FastestToAccuracy", repository=repo)
    assert levels(repo, results, "FastestToAccuracy") == {
        "good": 1, "good-twin": 1, "slower": 2, "slowest-095": 3, "best": 4,
        "fast-rough": None, "quick": None, "crashed": None}
    status = dict(zip(ranking.table["label"], ranking.table["status"]))
    assert (status["quick"], status["fast-rough"], status["crashed"]) == ("no value", "no value", "DNF")


def test_fastest_to_accuracy_takes_its_target_from_support_code(results: Results) -> None:
    repo = library("metrics", "rankings")
    repo.add_source("FASTEST_TARGET_ACCURACY = 0.85\n", origin="target.py")
    assert levels(repo, results, "FastestToAccuracy")["quick"] == 1
