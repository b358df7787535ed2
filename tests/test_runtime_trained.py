"""A run keeps its trained model only when asked: a predictor in the problem's types, and the native object."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from conftest import paper_source

from saibench_jupyter import Machine, Repository, discover, run_scenario
from saibench_jupyter.runtime import TrainedModel

SAIL = Path(__file__).parent / "sail"
DIGITS = Path(__file__).parents[1] / "saibench_jupyter" / "examples" / "digits.py"
MACHINE = Machine(cpus=2, gpus=0, memory=2**34)

# Two metrics that hand back what they saw at each checkpoint: the test inputs, and the predictions.
SEEN = '''
import numpy as np
import torch
from saibench_jupyter.sail import *


@MetricDefinition(better="higher")
def SeenInputs():
    return np.concatenate([np.ravel(x) for (x, _, _) in Test.Classify])


@MetricDefinition(better="higher")
def SeenPredictions():
    return np.concatenate([np.ravel(p) for (_, _, p) in Test.Classify])


class ProbeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))

    def forward(self, x):
        return self.layers(x)


@ModelDefinition
def Probe(task, inputType, outputType):
    if task != Classify: Fail("classifies only")
    return TorchModule(ProbeNet())
'''


@pytest.fixture(scope="module")
def repo() -> Repository:
    pytest.importorskip("torch")
    repo = Repository()
    repo.add_source(paper_source("stacks"), origin="stacks.py")
    repo.add_source(paper_source("mnist"), origin="mnist.py")
    repo.load(DIGITS)
    repo.add_source(SEEN, origin="seen.py")
    try:  # Logistic (scikit-learn) and JaxLinear (JAX)
        import jax  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        return repo
    repo.load(SAIL / "runtime_natives.py")
    return repo


def _scenario(repo: Repository, model: str, software: str, **params: object):  # type: ignore[no-untyped-def]
    (scenario,) = discover(repo, problem="Digits", model=model, software=software, machine=MACHINE,
                           params=params).scenarios
    return scenario


def _seen(result):  # type: ignore[no-untyped-def]
    """The test inputs and the predictions the metrics saw at the run's final checkpoint."""
    last = result.points[-1].values
    predictions = np.asarray(last["SeenPredictions"]).reshape(-1, 10)
    return np.asarray(last["SeenInputs"]).reshape(len(predictions), 8, 8), predictions


@pytest.mark.parametrize(("model", "software", "params"), [
    ("MLP", "PyTorch", {"MLP.hiddenSize": 32}),  # a SAIL graph lowered to PyTorch
    ("Probe", "PyTorch", {}),                     # a TorchModule over the user's own module
    ("Logistic", "ScikitLearn", {}),               # an Estimator on the NumPy backend
    ("JaxLinear", "JAX", {}),                      # a JaxModel
])
def test_the_kept_model_predicts_what_the_metrics_saw_at_the_final_checkpoint(repo: Repository, model: str,
                                                                              software: str, params: dict) -> None:
    if model in ("Logistic", "JaxLinear") and model not in {m.name for m in repo.modules("model")}:
        pytest.skip("scikit-learn and JAX are needed")
    result = run_scenario(_scenario(repo, model, software, **params), settings={"epochs": 3, "learning_rate": 1e-2},
                          keep_model=True)
    assert result.ok, result.error
    kept = result.model
    assert isinstance(kept, TrainedModel) and kept.task == "Classify" and kept.backend in software.lower() + "numpy"
    inputs, predictions = _seen(result)
    # The same weights (the last checkpoint's), batched as the run batched its tests: float32 exactly.
    np.testing.assert_allclose(kept.predict(inputs), predictions, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(kept(inputs[0]), predictions[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(kept["Classify"].predict(list(inputs[:3])), predictions[:3], rtol=1e-6, atol=1e-7)
    assert "Classify" in kept.tasks


def test_the_native_object_is_the_trained_module_or_estimator(repo: Repository) -> None:
    import torch

    result = run_scenario(_scenario(repo, "Probe", "PyTorch"), settings={"epochs": 2}, keep_model=True)
    inputs, predictions = _seen(result)
    net = result.model.native
    assert type(net).__name__ == "ProbeNet"
    with torch.no_grad():
        out = net(torch.from_numpy(inputs.astype(np.float32))).numpy()
    np.testing.assert_allclose(out, predictions, rtol=1e-5, atol=1e-6)
    graph = run_scenario(_scenario(repo, "MLP", "PyTorch", **{"MLP.hiddenSize": 32}), settings={"epochs": 1},
                         keep_model=True)
    assert isinstance(graph.model.native, torch.nn.Module)  # the module holding every parameter
    assert sum(p.numel() for p in graph.model.native.parameters()) == 64 * 32 + 32 + 32 * 10 + 10


def _probes() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "ProbeNet")


def test_nothing_is_kept_unless_asked(repo: Repository) -> None:
    scenario = _scenario(repo, "Probe", "PyTorch")
    before = _probes()
    result = run_scenario(scenario, settings={"epochs": 1})
    assert result.ok and result.model is None
    assert _probes() == before  # the trained module died with the run
    kept = run_scenario(scenario, settings={"epochs": 1}, keep_model=True)
    assert _probes() == before + 1
    del kept
    assert _probes() == before


def test_an_unknown_task_names_the_tasks(repo: Repository) -> None:
    result = run_scenario(_scenario(repo, "Probe", "PyTorch"), settings={"epochs": 1}, keep_model=True)
    with pytest.raises(KeyError, match="solves no task 'Segment'; its tasks: Classify"):
        result.model.predict(np.zeros((1, 8, 8)), task="Segment")
    with pytest.raises(ValueError, match="at least one record"):
        result.model.predict([])
