"""The PyTorch backend on models built through the real path: SAIL source, discovery, lowering."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from saibench_jupyter import Machine, Repository, discover  # noqa: E402
from saibench_jupyter.backends._lowering import LoweredModel, graphs_of, init_params, lower  # noqa: E402
from saibench_jupyter.backends._torch import TorchTrainer  # noqa: E402
from saibench_jupyter.backends._trainer import TrainSettings, epoch_order  # noqa: E402

SOURCE = textwrap.dedent(
    """
    from saibench_jupyter.sail import *

    @ProblemDefinition
    def Digits():
        images = Input("dataset:digits/images")
        labels = Input("dataset:digits/labels").OneHot(Tensor(10))
        for x, y in zip(images, labels):
            Train.Classify(x, y)
            Test.Classify(x, y)

    @ProblemDefinition
    def DigitImages():
        Train.Classify(Image(8, 8, 1), Tensor(10))
        Test.Classify(Image(8, 8, 1), Tensor(10))

    @ProblemDefinition
    def Molecules():
        Train.Predict(Set(Atom(), 4), Scalar())
        Test.Predict(Set(Atom(), 4), Scalar())

    @ProblemDefinition
    def Segmentation():
        Train.Pretrain(Image(8, 8, 1))
        Train.Segment(Image(8, 8, 1), Image(8, 8, 1))
        Test.Segment(Image(8, 8, 1), Image(8, 8, 1))

    @ModelDefinition
    def MLP(task, inputType, outputType):
        if task != Classify: Fail("classifies only")
        return Pipeline([Convert(inputType, Tensor), Linear(64), Relu(), Linear(outputType.dims),
                         Softmax(outputType.dims), Convert(Tensor, outputType)])

    @ModelDefinition
    def ConvNet(task, inputType, outputType):
        if task != Classify or inputType.IsSet: Fail("classifies images only")
        return Pipeline([Conv2d(8, 3, padding=1), Relu(), MaxPool2d(2), Flatten(), Linear(outputType.dims),
                         Softmax(outputType.dims), Convert(Tensor, outputType)])

    @ModelDefinition
    def PermutationInvariantModel(task, inputType, outputType):
        if not inputType.IsSet: Fail("sets only")
        m = Require(Model, task, inputType.ElementType, outputType)
        return Sum(Array(m, inputType.Size))

    @ModelDefinition
    def AtomMLP(task, inputType, outputType):
        if inputType != Atom(): Fail("atoms only")
        return Pipeline([Convert(inputType, Tensor(3)), Linear(16), Tanh(), Linear(1),
                         Convert(Tensor(1), outputType)])

    @ConverterDefinition
    def Position(a: Atom) -> Tensor(3):
        return a.pos

    @ModelDefinition
    def PretrainSegmentModel(task, inputType, outputType, embsize):
        Suggest(embsize, 16)
        embType = Tensor(embsize)
        m_base = Require(Model, Embedding, inputType, embType)
        if task == Pretrain:
            m_pretrain = Require(Model, Segment, embType, inputType)
            return Pipeline([m_base, m_pretrain])
        elif task == Segment:
            m_task = Require(Model, task, embType, outputType)
            return Pipeline(m_base, m_task)
        else:
            Fail("don't know how to solve.")

    @ModelDefinition
    def ConvEncoder(task, inputType, outputType):
        if task != Embedding: Fail("only embeds images")
        return Pipeline([Conv2d(4, 3), Relu(), MaxPool2d(2), Flatten(), Linear(outputType.dims)])

    @ModelDefinition
    def DenseDecoder(task, inputType, outputType):
        if task != Segment: Fail("only decodes embeddings")
        return Pipeline([Convert(inputType, Tensor), Linear(32), Relu(), Linear(outputType.Size),
                         Sigmoid(), Convert(Tensor, outputType)])

    @HardwareDefinition
    def CPU():
        return Resources(cpus=1)

    @SoftwareDefinition
    def PyTorch(hardware):
        return Environment(backend="torch")
    """
)


def positions(chain, record):
    """The user converter Atom -> Tensor(3), as the runtime would run it on one record."""
    return record["positions"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # These models are tiny: a second thread only adds synchronisation (and suffers most when
    # other processes share the cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lattice():
    repo = Repository()
    repo.add_source(SOURCE, origin="x.py")
    return discover(repo, machine=Machine(cpus=2, gpus=0, memory=2**34))


def scenario(lattice, problem: str, model: str):
    (sc,) = [s for s in lattice.scenarios if (s.problem, s.model) == (problem, model)]
    return sc


def lowered(lattice, problem: str, model: str) -> LoweredModel:
    return lower(graphs_of(scenario(lattice, problem, model).model_choice), lattice.converters.resolve)


def trainer(lattice, problem: str, model: str, convert=positions, **settings) -> TorchTrainer:
    return TorchTrainer(lowered(lattice, problem, model), TrainSettings(**settings), convert)


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))  # the file is sorted by writer
    x = (d.images[order] / 16.0).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[d.target[order]]
    return x[:1500], y[:1500], x[1500:], y[1500:]


def epochs(tr: TorchTrainer, task: str, x, y, n: int) -> list[float]:
    count = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    return [tr.train_epoch(task, x, y, epoch_order(0, 0, e, count)) for e in range(n)]


def molecules(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"numbers": rng.integers(1, 9, size=(n, 4)).astype(np.int64),
            "positions": rng.normal(size=(n, 4, 3)).astype(np.float32)}


def test_initial_weights_are_init_params_and_counts_match_the_checked_graph(lattice):
    tr = trainer(lattice, "Digits", "MLP", seed=3)
    expected = init_params(tr.model, 3)
    assert set(tr.state()["params"]) == set(expected)
    for name, value in tr.state()["params"].items():
        np.testing.assert_array_equal(value.numpy(), expected[name])
    graph = scenario(lattice, "Digits", "MLP").model_choice.graphs["Classify"]
    assert sum(p.numel() for p in tr.net.parameters()) == graph.parameters == 64 * 64 + 64 + 64 * 10 + 10


def test_mlp_learns_digits_and_reset_starts_over(lattice, digits):
    xtr, ytr, xte, yte = digits
    tr = trainer(lattice, "Digits", "MLP", learning_rate=3e-3)
    tr.compile("Classify", xtr, ytr)
    losses = epochs(tr, "Classify", xtr, ytr, 10)
    assert losses[-1] < losses[0] / 4
    probs = tr.predict("Classify", xte)
    assert probs.shape == (len(xte), 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)  # predict keeps the final softmax
    assert (probs.argmax(1) == yte.argmax(1)).mean() >= 0.9

    tr.reset()
    for name, value in tr.state()["params"].items():
        np.testing.assert_array_equal(value.numpy(), init_params(tr.model, 0)[name])
    assert epochs(tr, "Classify", xtr, ytr, 1)[0] == pytest.approx(losses[0], rel=1e-5)


def test_epoch_loss_is_the_record_mean_of_cross_entropy(lattice, digits):
    xtr, ytr, _, _ = digits
    x, y = xtr[:100], ytr[:100]  # 100 = 3 batches of 32 and one of 4: the mean weighs records
    tr = trainer(lattice, "Digits", "MLP", optimizer="sgd", learning_rate=0.0)
    expected = -(y * np.log(tr.predict("Classify", x))).sum(-1).mean()
    assert epochs(tr, "Classify", x, y, 1)[0] == pytest.approx(expected, rel=1e-5)


def test_conv_model_uses_the_image_layout_and_trains(lattice, digits):
    xtr, ytr, _, _ = digits
    images = xtr[..., None]  # Image(8, 8, 1) is (B, h, w, c)
    tr = trainer(lattice, "DigitImages", "ConvNet", learning_rate=3e-3)
    w = {k.rsplit("/", 1)[1]: torch.from_numpy(v) for k, v in init_params(tr.model, 0).items()}
    x = torch.from_numpy(images[:5]).permute(0, 3, 1, 2)
    h = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(x, w["0.weight"], w["0.bias"], 1, 1)), 2)
    expected = torch.softmax(torch.nn.functional.linear(h.reshape(5, -1), w["4.weight"], w["4.bias"]), -1)
    np.testing.assert_allclose(tr.predict("Classify", images[:5]), expected.numpy(), rtol=1e-5, atol=1e-6)

    losses = epochs(tr, "Classify", images[:600], ytr[:600], 3)
    assert losses[2] < losses[0]


def test_sum_over_array_is_permutation_invariant_with_exact_gradients(lattice):
    tr = trainer(lattice, "Molecules", "PermutationInvariantModel")
    mol = molecules(1)
    out = tr.predict("Predict", mol)
    assert out.shape == (1,)
    perm = np.array([2, 0, 3, 1])
    shuffled = {k: v[:, perm] for k, v in mol.items()}
    np.testing.assert_allclose(tr.predict("Predict", shuffled), out, rtol=1e-6)

    grad = tr.gradients("Predict", mol, "positions")
    assert grad.shape == (4, 3)
    eps, numeric = 1e-2, np.zeros((4, 3))
    for i in range(4):
        for j in range(3):
            up, down = (dict(mol, positions=mol["positions"].copy()) for _ in range(2))
            up["positions"][0, i, j] += eps
            down["positions"][0, i, j] -= eps
            numeric[i, j] = (tr.predict("Predict", up)[0] - tr.predict("Predict", down)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-3)
    np.testing.assert_array_equal(tr.gradients("Predict", mol, "pos"), grad)  # the SAIL alias


def test_atoms_train_and_an_unvectorisable_converter_falls_back_to_a_loop(lattice):
    mols = molecules(64)
    energy = (mols["positions"] ** 2).sum((1, 2)).astype(np.float32)
    tr = trainer(lattice, "Molecules", "PermutationInvariantModel", learning_rate=1e-2)
    losses = epochs(tr, "Predict", mols, energy, 5)
    assert losses[-1] < losses[0]

    # A converter that leaves torch (a Python list of floats) cannot run under vmap.
    as_list = trainer(lattice, "Molecules", "PermutationInvariantModel",
                      convert=lambda chain, rec: [float(v) for v in rec["positions"]])
    np.testing.assert_allclose(as_list.predict("Predict", mols), trainer(lattice, "Molecules",
                               "PermutationInvariantModel").predict("Predict", mols), rtol=1e-6)


def test_a_required_sub_model_is_shared_between_tasks(lattice):
    tr = trainer(lattice, "Segmentation", "PretrainSegmentModel", learning_rate=1e-2)
    paths = {t: {op.path for op in lowered_task.root.walk()} for t, lowered_task in tr.model.tasks.items()}
    owner = {n: n.rsplit(".", 1)[0] for n in tr.model.params}
    encoder = {n for n, path in owner.items() if path in paths["Pretrain"] & paths["Segment"]}
    segment_decoder = {n for n, path in owner.items() if path in paths["Segment"] - paths["Pretrain"]}
    assert len(encoder) == len(segment_decoder) == 4
    assert all("[Embedding]" in n for n in encoder)
    # one Parameter per name: the two tasks' closures hold the same objects
    assert sum(p.numel() for p in tr.net.parameters()) == sum(int(np.prod(s)) for s in tr.model.params.values())

    rng = np.random.default_rng(0)
    images = rng.random((64, 8, 8, 1), dtype=np.float32)
    masks = (images > 0.5).astype(np.float32)
    before, state = tr.predict("Segment", images), tr.state()
    losses = epochs(tr, "Pretrain", images, images, 2)  # the runtime passes y = x for Pretrain
    assert losses[1] < losses[0]
    after = tr.state()["params"]
    changed = {n for n in after if not torch.equal(after[n], state["params"][n])}
    assert encoder <= changed
    assert not changed & segment_decoder
    assert not np.allclose(tr.predict("Segment", images), before)  # through the shared encoder

    # Segment (one channel, final sigmoid) trains with binary cross-entropy on logits.
    sgd = trainer(lattice, "Segmentation", "PretrainSegmentModel", optimizer="sgd", learning_rate=0.0)
    p = sgd.predict("Segment", images).astype(np.float64)
    bce = -(masks * np.log(p) + (1 - masks) * np.log(1 - p)).mean()
    assert epochs(sgd, "Segment", images, masks, 1)[0] == pytest.approx(bce, rel=1e-4)


def test_state_round_trips(lattice, digits):
    xtr, ytr, xte, _ = digits
    tr = trainer(lattice, "Digits", "MLP")
    saved, before = tr.state(), tr.predict("Classify", xte)
    epochs(tr, "Classify", xtr[:200], ytr[:200], 1)
    assert not np.allclose(tr.predict("Classify", xte), before)
    tr.load_state(saved)
    np.testing.assert_array_equal(tr.predict("Classify", xte), before)
    assert not any(p.data_ptr() == q.data_ptr() for p, q in zip(saved["params"].values(), tr.net.parameters()))


def test_flops_of_a_linear_model_are_twice_its_multiply_adds(lattice, digits):
    xtr, ytr, _, _ = digits
    tr = trainer(lattice, "Digits", "MLP")
    batch = 32
    macs = batch * (64 * 64 + 64 * 10)
    assert tr.flops("Classify", xtr[:batch], None, train=False) == 2 * macs
    train = tr.flops("Classify", xtr[:batch], ytr[:batch], train=True)
    # backward: gradients of both weights, and of the hidden activations (not of the input)
    assert train == 2 * macs + 2 * macs + 2 * batch * 64 * 10
    assert all(p.grad is None for p in tr.net.parameters())
    assert tr.peak_memory() is None


def test_native_modules_train_and_reset_to_their_own_weights():
    # Discovery's native wrappers hold placeholders (the runtime rebuilds them), so this
    # op tree is assembled by hand: a TorchModule between a dropout and a declarative layer.
    from saibench_jupyter.backends._lowering import LoweredTask, Op
    from saibench_jupyter.sail._graph import TorchModule
    from saibench_jupyter.sail._types import Tensor

    module = torch.nn.Linear(3, 5)
    native = Op("native", "model[Predict]/1", Tensor(3), Tensor(5), native=TorchModule(module))
    linear = Op("linear", "model[Predict]/2", Tensor(5), Tensor(2), {"in": 5, "out": 2},
                params={"model[Predict]/2.weight": (2, 5), "model[Predict]/2.bias": (2,)})
    root = Op("pipeline", "model[Predict]", Tensor(3), Tensor(2), children=(
        Op("dropout", "model[Predict]/0", Tensor(3), Tensor(3), {"p": 0.5}), native, linear))
    model = LoweredModel("Hand", {"Predict": LoweredTask("Predict", root)}, dict(linear.params),
                         dict.fromkeys(linear.params, 5), (native,))
    tr = TorchTrainer(model, TrainSettings(learning_rate=1e-2), positions)
    initial = {k: v.clone() for k, v in module.state_dict().items()}
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = x[:, :2] * 2
    np.testing.assert_array_equal(tr.predict("Predict", x[:4]), tr.predict("Predict", x[:4]))  # no dropout
    epochs(tr, "Predict", x, y, 2)
    assert not torch.equal(module.weight, initial["weight"])
    assert module in list(tr.net.modules())
    tr.reset()
    assert all(torch.equal(module.state_dict()[k], v) for k, v in initial.items())


def test_compile_warms_up_without_changing_what_training_computes():
    # Dropout draws from torch's generator, the native BatchNorm keeps running statistics and
    # Adam its moments: the warm-up step in compile() must leave all of them as they were.
    from saibench_jupyter.backends._lowering import LoweredTask, Op
    from saibench_jupyter.sail._graph import TorchModule
    from saibench_jupyter.sail._types import Tensor

    def build() -> TorchTrainer:
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU())
        native = Op("native", "model[Predict]/1", Tensor(3), Tensor(8), native=TorchModule(module))
        linear = Op("linear", "model[Predict]/2", Tensor(8), Tensor(2), {"in": 8, "out": 2},
                    params={"model[Predict]/2.weight": (2, 8), "model[Predict]/2.bias": (2,)})
        root = Op("pipeline", "model[Predict]", Tensor(3), Tensor(2), children=(
            Op("dropout", "model[Predict]/0", Tensor(3), Tensor(3), {"p": 0.3}), native, linear))
        model = LoweredModel("Hand", {"Predict": LoweredTask("Predict", root)}, dict(linear.params),
                             dict.fromkeys(linear.params, 8), (native,))
        return TorchTrainer(model, TrainSettings(learning_rate=1e-2, batch_size=16), positions)

    x = np.random.default_rng(0).normal(size=(70, 3)).astype(np.float32)  # 4 batches of 16 and one of 6
    y = x[:, :2] * 2
    orders = [epoch_order(0, 0, e, len(x)) for e in range(4)]
    warmed = build()  # one after the other: both draw dropout masks from torch's global generator
    losses = []
    for e, order in enumerate(orders):
        if e in (0, 2):  # the second time with Adam's moments under way, as a stage's next task has them
            warmed.compile("Predict", x, y)
        losses.append(warmed.train_epoch("Predict", x, y, order))
    after = torch.get_rng_state()
    cold = build()
    assert losses == [cold.train_epoch("Predict", x, y, order) for order in orders]
    assert torch.equal(torch.get_rng_state(), after)
    for (name, a), b in zip(warmed.net.state_dict().items(), cold.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_force_matching_loss_has_the_gradient_of_its_finite_differences(lattice):
    """Energies and their position gradients as targets: one SGD step of rate 1 over one batch
    moves each weight by minus the loss's gradient, which double backward computed; central
    differences of the same loss, rebuilt from ``predict`` and ``gradients``, agree."""
    from saibench_jupyter.backends import with_gradients

    mols = molecules(6, seed=3)
    energy = (mols["positions"] ** 2).sum((1, 2)).astype(np.float32)
    target = with_gradients(energy, "positions", (2.0 * mols["positions"]).astype(np.float32))
    tr = trainer(lattice, "Molecules", "PermutationInvariantModel", optimizer="sgd", learning_rate=1.0,
                 batch_size=6, gradient_weight=0.5)

    def loss() -> float:
        out = tr.predict("Predict", mols).astype(np.float64)
        grads = np.stack([tr.gradients("Predict", {k: v[i:i + 1] for k, v in mols.items()}, "positions")
                          for i in range(6)]).astype(np.float64)
        return float(np.mean((out - energy) ** 2) + 0.5 * np.mean((grads - target["d/positions"]) ** 2))

    before = tr.state()
    reported = tr.train_epoch("Predict", mols, target, np.arange(6))
    after = tr.state()
    tr.load_state(before)
    assert reported == pytest.approx(loss(), rel=1e-5)
    eps = 1e-2
    for name in list(before["params"])[:2]:
        step = (before["params"][name] - after["params"][name]).numpy()
        for index in [(0, 0), (3, 1)] if step.ndim == 2 else [(0,), (5,)]:
            p = tr._params[name]
            with torch.no_grad():
                p[index] += eps
                up = loss()
                p[index] -= 2 * eps
                down = loss()
                p[index] += eps
            assert step[index] == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=2e-3)


def test_a_zero_gradient_weight_trains_on_the_values_alone(lattice):
    mols = molecules(8, seed=4)
    energy = (mols["positions"] ** 2).sum((1, 2)).astype(np.float32)
    wrong = np.full_like(mols["positions"], 7.0)  # would dominate the loss at any weight above 0
    from saibench_jupyter.backends import with_gradients

    plain = epochs(trainer(lattice, "Molecules", "PermutationInvariantModel"), "Predict", mols, energy, 3)
    zero = epochs(trainer(lattice, "Molecules", "PermutationInvariantModel", gradient_weight=0.0), "Predict",
                  mols, with_gradients(energy, "positions", wrong), 3)
    np.testing.assert_allclose(zero, plain, rtol=1e-5)
    with pytest.raises(ValueError, match=r"gradient_weight=-1\.0: use a weight of 0 or more"):
        TrainSettings(gradient_weight=-1.0)


def test_derivative_targets_need_a_mean_squared_error_task(lattice, digits):
    from saibench_jupyter.backends import with_gradients

    x, y, _, _ = digits
    tr = trainer(lattice, "Digits", "MLP")
    with pytest.raises(ValueError, match=r"a xent loss cannot train on derivative targets \(Train\.Gradients\)"):
        tr.train_epoch("Classify", x[:8], with_gradients(y[:8], None, x[:8]), np.arange(8))
