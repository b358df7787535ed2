"""The JAX backend on models built the real way: SAIL source, discovery, lowering, training."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from saibench_jupyter import Machine, Repository, discover  # noqa: E402
from saibench_jupyter.backends._jax import JaxTrainer  # noqa: E402
from saibench_jupyter.backends._lowering import (  # noqa: E402
    LoweredModel,
    LoweredTask,
    Op,
    graphs_of,
    init_params,
    lower,
)
from saibench_jupyter.backends._trainer import TrainSettings, epoch_order  # noqa: E402
from saibench_jupyter.sail._graph import JaxModel  # noqa: E402
from saibench_jupyter.sail._types import Scalar, Tensor  # noqa: E402

SOURCE = textwrap.dedent('''
    from saibench_jupyter.sail import *

    @ProblemDefinition
    def Digits():
        for x, y in zip(Input("dataset:digits/images"), Input("dataset:digits/labels").OneHot(Tensor(10))):
            Train.Classify(x, y)
            Test.Classify(x, y)

    @ProblemDefinition
    def DigitImages():
        images = Input("dataset:digits/images", Image(8, 8, 1))
        for x, y in zip(images, Input("dataset:digits/labels").OneHot(Tensor(10))):
            Train.Classify(x, y)
            Test.Classify(x, y)

    @ProblemDefinition
    def Molecules():
        for x, e in zip(Input("mols.xyz", Set(Atom(), 5)), Input("energies.npy", Scalar)):
            Train.Predict(x, e)
            Test.Predict(x, e)

    @ProblemDefinition
    def Masks():
        for x in Input("dataset:digits/images", Image(8, 8, 1)):
            Train.Pretrain(x)
        for x, y in zip(Input("dataset:digits/images", Image(8, 8, 1)), Input("masks.npy", Image(8, 8, 1))):
            Train.Segment(x, y)
            Test.Segment(x, y)

    @ConverterDefinition
    def Position(a: Atom) -> Tensor(3):
        return a.pos

    @ModelDefinition
    def MLP(task, inputType, outputType):
        if task != Classify: Fail("classifies only")
        return Pipeline([Convert(inputType, Tensor), Linear(64), Relu(), Linear(outputType.dims),
                         Softmax(outputType.dims), Convert(Tensor, outputType)])

    @ModelDefinition
    def CNN(task, inputType, outputType):
        if task != Classify or inputType.dims != (8, 8, 1): Fail("classifies 8x8 images only")
        return Pipeline([Conv2d(4, 3, padding=1), Relu(), MaxPool2d(2), Flatten(), Linear(outputType.dims),
                         Softmax(outputType.dims), Convert(Tensor, outputType)])

    @ModelDefinition
    def PermutationInvariantModel(task, inputType, outputType):
        if task != Predict or not inputType.IsSet: Fail("predicts on sets only")
        m = Require(Model, task, inputType.ElementType, outputType)
        return Sum(Array(m, inputType.Size))

    @ModelDefinition
    def AtomEnergy(task, inputType, outputType):
        if task != Predict or inputType.IsSet: Fail("one atom at a time")
        return Pipeline([Convert(inputType, Tensor), Linear(8), Tanh(), Linear(), Convert(Tensor, outputType)])

    @ModelDefinition
    def PretrainSegmentModel(task, inputType, outputType):
        embType = Tensor(16)
        m_base = Require(Model, Embedding, inputType, embType)
        if task == Pretrain:
            return Pipeline([m_base, Require(Model, Segment, embType, inputType)])
        elif task == Segment:
            return Pipeline(m_base, Require(Model, task, embType, outputType))
        else:
            Fail("pretrains and segments only")

    @ModelDefinition
    def DenseEncoder(task, inputType, outputType):
        if task != Embedding: Fail("only embeds images")
        return Pipeline([Convert(inputType, Tensor), Linear(outputType.dims), Tanh()])

    @ModelDefinition
    def DenseDecoder(task, inputType, outputType):
        if task != Segment or inputType.dims != (16,): Fail("only decodes embeddings into masks")
        return Pipeline([Convert(inputType, Tensor), Linear(32), Relu(), Linear(outputType.Size),
                         Sigmoid(), Convert(Tensor, outputType)])

    @HardwareDefinition
    def CPU():
        return Resources(cpus=1)

    @SoftwareDefinition
    def JAX(hardware):
        return Environment(backend="jax")
''')


def identity_convert(chain, record):
    """The only user converter in these tests is Position (Atom -> Tensor(3))."""
    return record["positions"]


@pytest.fixture(scope="module")
def lattice():
    repo = Repository()
    repo.add_source(SOURCE, origin="x.py")
    return discover(repo, machine=Machine(cpus=2, gpus=0, memory=2**34))


def lowered(lattice, problem: str, model: str):
    (sc,) = [s for s in lattice.scenarios if s.problem == problem and s.model_choice.label == model]
    return lower(graphs_of(sc.model_choice), lattice.converters.resolve)


def trainer(model, **settings) -> JaxTrainer:
    return JaxTrainer(model, TrainSettings(**settings), identity_convert)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[d.target]
    perm = np.random.default_rng(0).permutation(len(x))
    train, test = perm[:1400], perm[1400:]  # 1400 = 43 * 32 + 24: the last batch is partial
    return x[train], y[train], x[test], d.target[test]


@pytest.fixture(scope="module")
def mlp(lattice):
    return lowered(lattice, "Digits", "MLP")


def numpy_mlp(params, x):
    (w1, b1), (w2, b2) = [(params[f"model[Classify]/{i}.weight"], params[f"model[Classify]/{i}.bias"])
                          for i in (1, 3)]
    z = np.maximum(x.reshape(len(x), -1) @ w1.T + b1, 0) @ w2.T + b2
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def trained(mlp, digits):
    """The MLP trained 10 epochs on digits after compile(), with what happened on the way."""
    from jax._src.dispatch import BACKEND_COMPILE_EVENT

    x, y, _, _ = digits
    tr = trainer(mlp, batch_size=32, seed=0)
    initial = tr.state()
    tr.compile("Classify", x, y)
    traces, compiles = tr.traces, []

    def listen(event, duration, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        losses = [tr.train_epoch("Classify", x, y, epoch_order(0, 0, e, len(x))) for e in range(10)]
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return {"trainer": tr, "initial": initial, "losses": losses, "compiles": compiles,
            "new_traces": tr.traces - traces}


def test_initial_weights_are_init_params(mlp, trained):
    want = init_params(mlp, 0)
    assert trained["initial"].keys() == want.keys() == mlp.params.keys()
    assert all(np.array_equal(trained["initial"][k], want[k]) for k in want)
    assert all(v.dtype == np.float32 for v in trained["initial"].values())


def test_forward_pass_agrees_with_numpy_and_reset_restores_init_params(mlp, digits):
    x = digits[0][:50]
    tr = trainer(mlp, seed=1)
    np.testing.assert_allclose(tr.predict("Classify", x), numpy_mlp(init_params(mlp, 1), x), atol=1e-5)
    tr.load_state({k: v + 1.0 for k, v in tr.state().items()})
    tr.reset()
    assert all(np.array_equal(v, init_params(mlp, 1)[k]) for k, v in tr.state().items())
    assert all(int(c) == 0 for c in tr.opt["t"].values())


def test_mlp_learns_digits_and_trains_the_partial_batch(trained, digits):
    tr, losses = trained["trainer"], trained["losses"]
    # 43 full batches and one of 24 records per epoch: 44 Adam steps for every parameter
    assert all(int(c) == 440 for c in tr.opt["t"].values())
    assert losses[-1] < losses[0] / 3
    accuracy = (tr.predict("Classify", digits[2]).argmax(-1) == digits[3]).mean()
    assert accuracy >= 0.9


def test_train_epoch_after_compile_does_not_compile(trained):
    assert trained["compiles"] == [] and trained["new_traces"] == 0
    assert len(trained["trainer"]._epochs) == 1


def test_compile_runs_the_epoch_once_without_changing_what_training_computes(mlp, trained, digits):
    x, y, _, _ = digits
    cold = trainer(mlp, batch_size=32, seed=0)  # no compile(): train_epoch compiles on first use
    losses = [cold.train_epoch("Classify", x, y, epoch_order(0, 0, e, len(x))) for e in range(10)]
    assert losses == trained["losses"]
    assert all(int(c) == 440 for c in cold.opt["t"].values())


def test_checkpoints_round_trip_and_are_copies(mlp, trained, digits):
    tr, x = trained["trainer"], digits[2]
    saved, out = tr.state(), tr.predict("Classify", x)
    tr.load_state(trained["initial"])
    np.testing.assert_allclose(tr.predict("Classify", x), numpy_mlp(init_params(mlp, 0), x), atol=1e-5)
    tr.load_state(saved)
    np.testing.assert_array_equal(tr.predict("Classify", x), out)
    saved["model[Classify]/1.bias"][:] = 100.0  # a checkpoint is a copy, not a view of the weights
    np.testing.assert_array_equal(tr.predict("Classify", x), out)
    assert not np.array_equal(tr.state()["model[Classify]/1.bias"], saved["model[Classify]/1.bias"])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_matches_torch(mlp, digits, optimizer):
    """One epoch (Adam: with a partial batch) against torch.optim.Adam with its defaults, or SGD."""
    torch = pytest.importorskip("torch")
    n = 100 if optimizer == "adam" else 64
    x, y = digits[0][:n], digits[1][:n]
    order = epoch_order(0, 0, 0, n)
    lr = 1e-3 if optimizer == "adam" else 0.1
    tr = trainer(mlp, batch_size=32, seed=2, optimizer=optimizer, learning_rate=lr)
    # SGD also checks class-index targets: the same loss as their one-hot vectors
    loss = tr.train_epoch("Classify", x, y if optimizer == "adam" else y.argmax(1), order)

    names = [f"model[Classify]/{i}.{w}" for i in (1, 3) for w in ("weight", "bias")]
    ps = [torch.tensor(init_params(mlp, 2)[k], requires_grad=True) for k in names]
    opt = torch.optim.Adam(ps, lr=lr) if optimizer == "adam" else torch.optim.SGD(ps, lr=lr)
    total = 0.0
    for s in range(0, n, 32):
        idx = torch.as_tensor(order[s:s + 32])
        xb, yb = torch.as_tensor(x)[idx].reshape(len(idx), -1), torch.as_tensor(y)[idx]
        z = torch.relu(xb @ ps[0].T + ps[1]) @ ps[2].T + ps[3]
        batch_loss = -(yb * torch.log_softmax(z, -1)).sum(-1).mean()
        opt.zero_grad()
        batch_loss.backward()
        opt.step()
        total += batch_loss.item() * len(idx)
    assert loss == pytest.approx(total / n, rel=1e-5)
    state = tr.state()
    for k, p in zip(names, ps):
        np.testing.assert_allclose(state[k], p.detach().numpy(), atol=2e-5)


def test_convolutional_model_on_images_trains_with_torch_layouts(lattice, digits):
    cnn = lowered(lattice, "DigitImages", "CNN")
    x, y = digits[0][:256, :, :, None], digits[1][:256]
    tr = trainer(cnn, batch_size=32, learning_rate=3e-3)
    out = tr.predict("Classify", x[:5])
    losses = [tr.train_epoch("Classify", x, y, epoch_order(0, 0, e, 256)) for e in range(3)]
    assert losses[2] < losses[0]
    try:
        import torch
    except ImportError:
        return
    # the same weights through PyTorch: images (B, h, w, c) enter NCHW, feature maps flatten in CHW order
    p = {k: torch.as_tensor(v) for k, v in init_params(cnn, 0).items()}
    h = torch.conv2d(torch.as_tensor(x[:5]).permute(0, 3, 1, 2), p["model[Classify]/0.weight"],
                     p["model[Classify]/0.bias"], padding=1)
    h = torch.max_pool2d(torch.relu(h), 2).flatten(1)
    want = torch.softmax(h @ p["model[Classify]/4.weight"].T + p["model[Classify]/4.bias"], -1)
    np.testing.assert_allclose(out, want.numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def molecules():
    rng = np.random.default_rng(0)
    return {"numbers": rng.integers(1, 9, (24, 5)), "positions": rng.normal(size=(24, 5, 3)).astype(np.float32)}


def test_sum_of_array_is_permutation_invariant_and_gradients_match_finite_differences(lattice, molecules):
    model = lowered(lattice, "Molecules", "PermutationInvariantModel[AtomEnergy]")
    tr = trainer(model, batch_size=8)
    energies = molecules["positions"].sum(axis=(1, 2))
    tr.train_epoch("Predict", molecules, energies, epoch_order(0, 0, 0, 24))
    out = tr.predict("Predict", molecules)
    assert out.shape == (24,)
    perm = np.random.default_rng(1).permutation(5)
    shuffled = {k: v[:, perm] for k, v in molecules.items()}
    np.testing.assert_allclose(tr.predict("Predict", shuffled), out, rtol=1e-5, atol=1e-5)

    one = {k: v[:1] for k, v in molecules.items()}
    grad = tr.gradients("Predict", one, "positions")
    assert grad.shape == (5, 3)
    np.testing.assert_array_equal(tr.gradients("Predict", one, "pos"), grad)  # SAIL's alias of the field
    eps, fd = 1e-2, np.zeros((5, 3))
    for i in range(5):
        for j in range(3):
            hi, lo = ({**one, "positions": one["positions"].copy()} for _ in range(2))
            hi["positions"][0, i, j] += eps
            lo["positions"][0, i, j] -= eps
            fd[i, j] = (tr.predict("Predict", hi)[0] - tr.predict("Predict", lo)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, fd, atol=2e-3, rtol=1e-2)


def test_a_shared_require_slot_shares_weights_between_tasks(lattice, digits):
    model = lowered(lattice, "Masks", "PretrainSegmentModel[DenseEncoder, DenseDecoder, DenseDecoder]")
    tr = trainer(model, batch_size=32)
    shared = set(tr._names["Pretrain"]) & set(tr._names["Segment"])
    assert shared and all("[Embedding]" in k for k in shared)
    assert len(tr.state()) == len(model.params)  # each shared weight once
    x = digits[0][:96, :, :, None]
    masks = (x > 0.5).astype(np.float32)
    before, weights = tr.predict("Segment", x), tr.state()
    tr.train_epoch("Pretrain", x, x, epoch_order(0, 0, 0, 96))
    after = tr.state()
    changed = {k for k in after if not np.array_equal(after[k], weights[k])}
    assert changed == set(tr._names["Pretrain"])  # the Segment decoder is left alone
    assert not np.allclose(tr.predict("Segment", x), before)
    loss = tr.train_epoch("Segment", x, masks, epoch_order(0, 1, 0, 96))
    assert np.isfinite(loss) and 0 < loss < 1.0  # binary cross-entropy of a one-channel mask
    # the shared encoder has taken steps for both tasks, the Segment decoder for one
    counts = {k: int(c) for k, c in tr.opt["t"].items()}
    assert {counts[k] for k in shared} == {6} and {counts[k] for k in tr._names["Segment"]} == {3, 6}


def test_flops_of_a_step_exceed_those_of_a_prediction(mlp, digits):
    x, y = digits[0][:32], digits[1][:32]
    tr = trainer(mlp)
    train, predict = tr.flops("Classify", x, y, True), tr.flops("Classify", x, None, False)
    assert predict is not None and train is not None
    assert predict >= 2 * 32 * (64 * 64 + 64 * 10)
    assert train > 2 * predict
    assert tr.peak_memory() is None  # the CPU reports none


def test_native_jax_model_trains_in_the_params_pytree():
    def init(key, x):
        return {"w": jax.random.normal(key, (x.shape[-1],))}

    def apply(p, x):
        return x @ p["w"]

    native = Op("native", "model[Predict]/0", Tensor(3), Scalar(), native=JaxModel(init, apply))
    root = Op("pipeline", "model[Predict]", Tensor(3), Scalar(), children=(native,))
    model = LoweredModel("Native", {"Predict": LoweredTask("Predict", root)}, {}, {}, (native,))
    tr = trainer(model, batch_size=16, learning_rate=0.05)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    losses = [tr.train_epoch("Predict", x, y, epoch_order(0, 0, e, 64)) for e in range(20)]
    assert losses[-1] < losses[0] / 10
    assert set(tr.state()) == {"model[Predict]/0"} and tr.state()["model[Predict]/0"]["w"].shape == (3,)


@pytest.mark.filterwarnings("ignore:Position reads concrete values")
def test_a_converter_that_reads_concrete_values_runs_on_the_host(lattice, molecules):
    """Like the paper's AtomEmbedding (a table looked up by element): untraceable, so run per record."""
    model = lowered(lattice, "Molecules", "PermutationInvariantModel[AtomEnergy]")
    table = np.random.default_rng(2).normal(size=(10, 3)).astype(np.float32)
    tr = JaxTrainer(model, TrainSettings(batch_size=8), lambda chain, rec: table[int(rec["numbers"])])
    with pytest.warns(RuntimeWarning, match="reads concrete values"):
        loss = tr.train_epoch("Predict", molecules, molecules["numbers"].sum(1) / 10.0, epoch_order(0, 0, 0, 24))
    assert np.isfinite(loss)
    p = {k.rsplit("/", 1)[1]: v for k, v in tr.state().items()}  # the sub-model's 1.weight, 1.bias, ...
    w1, b1, w2, b2 = p["1.weight"], p["1.bias"], p["3.weight"], p["3.bias"]
    emb = table[molecules["numbers"]]
    want = (np.tanh(emb @ w1.T + b1) @ w2.T + b2)[..., 0].sum(1)
    np.testing.assert_allclose(tr.predict("Predict", molecules), want, rtol=1e-5, atol=1e-5)
    one = {k: v[:1] for k, v in molecules.items()}
    np.testing.assert_array_equal(tr.gradients("Predict", one, "positions"), np.zeros((5, 3), np.float32))


def test_dropout_is_active_in_training_only():
    drop = Op("dropout", "model[Predict]/0", Tensor(1000), Tensor(1000), {"p": 0.25})
    model = LoweredModel("Drop", {"Predict": LoweredTask("Predict", drop)}, {}, {})
    tr = trainer(model)
    x = np.ones((2, 1000), np.float32)
    np.testing.assert_array_equal(tr.predict("Predict", x), x)
    run = jax.jit(lambda key: tr.apply({}, "Predict", x, train=True, rng=key))
    out = np.asarray(run(jax.random.PRNGKey(0)))
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert 0.2 < (out == 0).mean() < 0.3
    assert not np.array_equal(out, np.asarray(run(jax.random.PRNGKey(1))))


def test_force_matching_loss_curve_matches_torch(lattice, molecules):
    """Energies and their position gradients (forces) as targets: JAX's grad of a grad and PyTorch's
    double backward give one loss curve from one initialisation (Adam, with a partial batch)."""
    pytest.importorskip("torch")
    from saibench_jupyter.backends import with_gradients
    from saibench_jupyter.backends._torch import TorchTrainer

    model = lowered(lattice, "Molecules", "PermutationInvariantModel[AtomEnergy]")
    pos = molecules["positions"].astype(np.float32)
    target = with_gradients((pos ** 2).sum((1, 2)).astype(np.float32), "pos", (2.0 * pos).astype(np.float32))
    settings = {"batch_size": 10, "learning_rate": 1e-2, "gradient_weight": 3.0}
    jx = trainer(model, **settings)
    tc = TorchTrainer(model, TrainSettings(**settings), identity_convert)
    curves = [[t.train_epoch("Predict", molecules, target, epoch_order(0, 0, e, 24)) for e in range(4)]
              for t in (jx, tc)]
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-4)
    assert curves[0][-1] < curves[0][0]
    np.testing.assert_allclose(jx.predict("Predict", molecules), tc.predict("Predict", molecules), rtol=1e-4,
                               atol=1e-5)
