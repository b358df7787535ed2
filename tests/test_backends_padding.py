"""Ragged sets of atoms (backends/_padding.py): configurations of different sizes in one batch.

Models are built through the real path (SAIL source, discovery, lowering) and run on a padded
batch in both backends: the energies equal each molecule's alone, ``Gradients`` equal central
finite differences, padded atoms get no gradient, and training on ragged data works.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

from saibench_jupyter import Machine, Repository, discover
from saibench_jupyter.backends import MASK, TrainSettings, graphs_of, lower, pad_fields, trainer_class
from saibench_jupyter.backends._padding import PAD_DISTANCE, masked
from saibench_jupyter.backends._trainer import epoch_order
from saibench_jupyter.runtime._convert import RecordConverter
from saibench_jupyter.runtime._data import stack_records
from saibench_jupyter.runtime._execution_namespace import ExecutionNamespace
from saibench_jupyter.sail import AtomSet

SOURCE = textwrap.dedent('''
    from saibench_jupyter.sail import *
    from saibench_jupyter.sail._primitives import array_namespace

    @ProblemDefinition
    def Ragged():
        Train.Predict(Set(Atom()), Scalar())
        Test.Predict(Set(Atom()), Scalar())

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

    @ModelDefinition
    def Descriptors(task, inputType, outputType):
        if not inputType.IsSet or not isinstance(inputType.ElementType, Atom): Fail("atoms only")
        atomic = Pipeline([Linear(16), Tanh(), Linear(1), Convert(Tensor, outputType)])
        return Pipeline([Convert(inputType, Set(Tensor(2))), Sum(Array(atomic, inputType.Size))])

    @ConverterDefinition
    def Position(a: Atom) -> Tensor(3):
        return a.pos

    @ConverterDefinition
    def Radial(a: Atoms) -> Set(Tensor(2)):
        # Gaussians of the distances: padded atoms, far away, add exp(-1e6) = 0 to them.
        xp = array_namespace(a.pos)
        d = a.pos[None, :, :] - a.pos[:, None, :]
        r2 = xp.sum(d * d, axis=-1)
        return xp.stack([xp.sum(xp.exp(-r2), axis=1), xp.sum(xp.exp(-0.3 * r2), axis=1)], axis=-1) - 1.0

    @HardwareDefinition
    def CPU():
        return Resources(cpus=1)

    @SoftwareDefinition
    def PyTorch(hardware):
        return Environment(backend="torch")

    @SoftwareDefinition
    def JAX(hardware):
        return Environment(backend="jax")
''')

CASES = [(model, backend) for model in ("PermutationInvariantModel", "Descriptors") for backend in ("torch", "jax")]


@pytest.fixture(scope="module")
def built() -> tuple[Repository, object, RecordConverter]:
    repo = Repository()
    repo.add_source(SOURCE, origin="ragged.py")
    lattice = discover(repo, machine=Machine(cpus=2, gpus=0, memory=2**34))
    ns = ExecutionNamespace.of(repo)
    convert = RecordConverter({m.name: ns.function(m) for m in repo.modules("converter")})
    return repo, lattice, convert


def trainer(built, model: str, backend: str, **settings):
    _, lattice, convert = built
    (s,) = [s for s in lattice.scenarios if s.model == model and s.software == {"torch": "PyTorch", "jax": "JAX"}[backend]]
    return trainer_class(backend)(lower(graphs_of(s.model_choice), lattice.converters.resolve),
                                  TrainSettings(**settings), convert)


def molecules(sizes, seed: int = 0) -> list[AtomSet]:
    rng = np.random.default_rng(seed)
    return [AtomSet(rng.integers(1, 9, n), rng.normal(size=(n, 3))) for n in sizes]


def batch(mols: list[AtomSet]):
    return stack_records(mols, float32=True)


def test_configurations_of_different_sizes_are_padded_with_a_mask() -> None:
    mols = molecules((2, 4, 3))
    mols[0] = mols[0].replace(velocities=np.ones((2, 3)))  # a field only some records have is left out
    b = batch(mols)
    assert sorted(b) == ["mask", "numbers", "positions"]
    assert b["positions"].shape == (3, 4, 3) and b["numbers"].shape == (3, 4)
    np.testing.assert_array_equal(b[MASK], [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]])
    np.testing.assert_array_equal(b["numbers"][0, 2:], [0, 0])  # padded atoms are no element
    # padded atoms lie far away along x, and far from each other
    np.testing.assert_array_equal(b["positions"][0, 2:], [[PAD_DISTANCE, 0, 0], [2 * PAD_DISTANCE, 0, 0]])
    np.testing.assert_allclose(b["positions"][2, :3], mols[2].positions)
    # one size: no padding, no mask (the layout of before)
    assert MASK not in batch(molecules((3, 3)))


def test_pad_fields_keeps_dtypes_and_masked_only_touches_sets_of_the_mask_length() -> None:
    out = pad_fields([1, 2], {"numbers": [np.array([6]), np.array([1, 8])]})
    assert out["numbers"].dtype == np.array([6]).dtype and out[MASK].dtype == np.float32
    y = np.ones((2, 2, 5), np.float32)
    np.testing.assert_array_equal(masked(y, out[MASK]).sum((1, 2)), [5.0, 10.0])
    np.testing.assert_array_equal(masked(np.ones((2, 3)), out[MASK]), np.ones((2, 3)))  # another set
    assert masked(y, None) is y


@pytest.mark.parametrize(("model", "backend"), CASES)
def test_a_padded_batch_gives_each_molecule_its_energy_alone(built, model: str, backend: str) -> None:
    mols = molecules((2, 5, 3, 4))
    tr = trainer(built, model, backend)
    together = tr.predict("Predict", batch(mols))
    alone = [float(tr.predict("Predict", batch([m]))[0]) for m in mols]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("model", "backend"), CASES)
def test_gradients_on_a_ragged_batch_match_finite_differences(built, model: str, backend: str) -> None:
    mols = molecules((2, 5, 3))
    tr = trainer(built, model, backend)
    eps = 1e-2
    for i, mol in enumerate(mols):
        # gradients() gives the first record's: each molecule in turn goes first in the ragged batch
        others = [m for j, m in enumerate(mols) if j != i]
        grad = tr.gradients("Predict", batch([mol, *others]), "positions")
        n = len(mol)
        assert grad.shape == (5, 3)
        np.testing.assert_array_equal(grad[n:], 0.0)  # padded atoms: no gradient
        fd = np.zeros((n, 3))
        for a in range(n):
            for k in range(3):
                step = np.zeros((n, 3))
                step[a, k] = eps
                up = tr.predict("Predict", batch([mol.replace(positions=mol.positions + step), *others]))[0]
                down = tr.predict("Predict", batch([mol.replace(positions=mol.positions - step), *others]))[0]
                fd[a, k] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad[:n], fd, atol=2e-4)


@pytest.mark.parametrize("model", ["PermutationInvariantModel", "Descriptors"])
def test_training_on_ragged_data_agrees_between_backends(built, model: str) -> None:
    mols = molecules([2 + i % 6 for i in range(48)], seed=1)
    x = batch(mols)
    y = np.array([float((m.positions ** 2).sum()) / 10.0 for m in mols], np.float32)
    curves = {}
    for backend in ("torch", "jax"):
        tr = trainer(built, model, backend, batch_size=8, learning_rate=1e-2)
        curves[backend] = [tr.train_epoch("Predict", x, y, epoch_order(0, 0, e, len(mols))) for e in range(4)]
    assert curves["torch"][-1] < curves["torch"][0]
    np.testing.assert_allclose(curves["torch"], curves["jax"], rtol=1e-3)


def test_numpy_models_get_each_configuration_without_its_padding() -> None:
    from saibench_jupyter.backends._numpy import _records

    mols = molecules((2, 4))
    records = _records(batch(mols))
    assert [len(r) for r in records] == [2, 4] and all(MASK not in r.fields for r in records)
    np.testing.assert_allclose(records[0].positions, mols[0].positions)
    np.testing.assert_array_equal(records[0].numbers, mols[0].numbers)


def test_a_converter_keeps_the_real_atoms_by_their_numbers() -> None:
    b = batch(molecules((2, 5, 3)))
    np.testing.assert_array_equal((b["numbers"] > 0).sum(1), [2, 5, 3])
    np.testing.assert_array_equal(b["numbers"] > 0, b[MASK] > 0)
