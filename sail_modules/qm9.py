"""QM9 energies: molecules of 3 to 29 atoms, so every batch is a ragged set (padded, with a mask).

The molecules come from ``qm9pack`` (all of QM9 in its wheel; its CSVs are read by path, since its
``__init__`` needs ``pkg_resources``). A seeded sample of the 130,831 molecules is split into a
training pool and held-out molecules; the problem trains on the first ``molecules`` of the pool (the
sample-efficiency sweep). The target is the internal energy at 0 K (U0) in kcal/mol, measured from a
per-element reference fitted by least squares on the training pool ("dressed atoms"): what is left is
what geometry and bonding add, a spread of about 10 kcal/mol instead of tens of thousands.

Models: a per-element linear baseline (energy from atom counts), the paper's permutation-invariant
model (Fig. 7) over an element network that sees each atom's element and distance from the molecule's
centre, and a Behler–Parrinello-style potential (element-resolved radial symmetry functions, one
shared atomic network, energies summed). Positions are in Å, centred on each molecule's centroid.
"""

import numpy as np

from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

#: QM9's elements: H, C, N, O, F.
QM9_ELEMENTS = (1, 6, 7, 8, 9)
#: Centres (Å) of the Gaussian radial symmetry functions: bonds (1.0-1.5 Å) out to third neighbours.
QM9_RADIAL_CENTRES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
#: Symmetry-function cutoff (Å).
QM9_CUTOFF = 5.0
#: kcal/mol per hartree.
QM9_KCAL_PER_HARTREE = 627.509474
#: Molecules in the training pool and held out (drawn once, seeded).
QM9_POOL, QM9_HELD_OUT = 1000, 200


def qm9_read(count, seed=0):
    """``count`` molecules drawn at random (seeded) from qm9pack's CSVs: (atoms, U0 in kcal/mol) pairs."""
    import csv
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the QM9 case study needs qm9pack: pip install qm9pack")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    lines = []
    for part in ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv"):
        with open(folder / part, encoding="utf-8") as f:
            header = next(csv.reader([f.readline()]))
            lines += f.read().splitlines()
    rows = np.random.default_rng(seed).choice(len(lines), size=count, replace=False)
    col = {name: i for i, name in enumerate(header)}
    out = []
    for row in csv.reader(lines[i] for i in rows):
        symbols = json.loads(row[col["Elements"]].replace("'", '"'))
        pos = np.asarray(json.loads(row[col["XYZ_Ang"]]), dtype=np.float64)
        atoms = AtomSet.from_symbols(symbols, pos - pos.mean(0))
        out.append((atoms, float(row[col["InternalEnergy_0K_au"]]) * QM9_KCAL_PER_HARTREE))
    return out


def qm9_counts(atoms):
    """Atoms of each of QM9's elements in one molecule (NumPy)."""
    numbers = np.asarray(atoms.numbers)
    return np.array([(numbers == z).sum() for z in QM9_ELEMENTS], dtype=np.float64)


def qm9_load():
    """The training pool and the held-out molecules, energies from the pool's per-element fit."""
    sample = qm9_read(QM9_POOL + QM9_HELD_OUT)
    pool, held_out = sample[:QM9_POOL], sample[QM9_POOL:]
    counts = np.stack([qm9_counts(a) for a, _ in pool])
    reference, *_ = np.linalg.lstsq(counts, np.array([e for _, e in pool]), rcond=None)

    def columns(part):
        return {"atoms": [a for a, _ in part],
                "energy": [np.float32(e - qm9_counts(a) @ reference) for a, e in part]}

    train, test = columns(pool), columns(held_out)
    return {"atoms": train["atoms"], "energy": train["energy"],
            "test_atoms": test["atoms"], "test_energy": test["energy"]}


register_dataset("qm9", {"atoms": Set(Atom()), "energy": Scalar, "test_atoms": Set(Atom()), "test_energy": Scalar},
                 qm9_load, "QM9 molecules (3-29 atoms) from qm9pack: U0 in kcal/mol from a per-element reference; "
                 f"{QM9_POOL} for training, {QM9_HELD_OUT} held out")


def qm9_symmetry_functions(numbers, positions):
    """Element-resolved radial symmetry functions of every atom, after its own element's one-hot.

    Feature (Z, k) of atom i is sum over neighbours j of element Z of exp(-4 (r_ij - c_k)^2) fc(r_ij),
    with the cosine cutoff fc at 5 Å. Padded atoms (element 0) are no element: they add nothing.
    Written with the array API, so it runs under PyTorch's and JAX's ``vmap``.
    """
    from saibench_jupyter.sail._primitives import array_namespace

    xp = array_namespace(positions)
    n = positions.shape[0]
    d = positions[None, :, :] - positions[:, None, :]
    # The self-distance is moved past the cutoff: no sqrt(0), whose gradient is infinite.
    r = xp.sqrt(xp.sum(d * d, axis=-1) + 4.0 * QM9_CUTOFF * QM9_CUTOFF * xp.eye(n, dtype=positions.dtype))
    fc = xp.where(r < QM9_CUTOFF, 0.5 * (xp.cos(np.pi * r / QM9_CUTOFF) + 1.0), xp.zeros_like(r))
    centres = xp.asarray(QM9_RADIAL_CENTRES, dtype=positions.dtype)
    g = xp.exp(-4.0 * (r[..., None] - centres) ** 2) * fc[..., None]  # (n, n, centres)
    onehot = xp.stack([xp.astype(numbers == z, positions.dtype) for z in QM9_ELEMENTS], axis=-1)  # (n, 5)
    per_element = xp.sum(onehot[None, :, :, None] * g[:, :, None, :], axis=1)  # (n, 5, centres)
    return xp.concat([onehot, xp.reshape(per_element, (n, -1)) / 2.0], axis=-1)


def qm9_element_counts(numbers, positions):
    """Atoms of each element (H, C, N, O, F), as a float array of ``positions``' namespace (vmap-able)."""
    from saibench_jupyter.sail._primitives import array_namespace

    xp = array_namespace(positions)
    return xp.stack([xp.sum(xp.astype(numbers == z, positions.dtype)) for z in QM9_ELEMENTS])


def qm9_atom_features(number, position):
    """One atom: a one-hot of its element, then its distance from the origin (the molecule's centroid)."""
    from saibench_jupyter.sail._primitives import array_namespace

    xp = array_namespace(position)
    onehot = xp.stack([xp.astype(number == z, position.dtype) for z in QM9_ELEMENTS])
    return xp.concat([onehot, xp.reshape(xp.sqrt(xp.sum(position * position) + 1e-6), (1,))])


@ProblemDefinition
def QM9Energies(molecules, test_molecules=200):
    """Energies of QM9 molecules (3-29 atoms: ragged sets), with a per-element reference removed.

    Trains on the first ``molecules`` of a fixed pool of 1000 and tests on ``test_molecules`` held-out
    molecules. The metric is the energy MAE in kcal/mol (chemical accuracy is 1 kcal/mol).

    Parameters
    ----------
    molecules : int
        Training molecules (suggested: 100, 300, 1000): the sample-efficiency sweep.
    test_molecules : int
        Held-out molecules (at most 200).
    """
    Suggest(molecules, 100, 300, 1000)
    mols = Set(Atom())
    train = zip(Input("dataset:qm9/atoms", mols), Input("dataset:qm9/energy", Scalar))
    for i, (atoms, e) in enumerate(train):
        if i < molecules:
            Train.Predict(atoms, e)
    test = zip(Input("dataset:qm9/test_atoms", mols), Input("dataset:qm9/test_energy", Scalar))
    for i, (atoms, e) in enumerate(test):
        if i < test_molecules:
            Test.Predict(atoms, e)


@ConverterDefinition
def QM9ElementCounts(a: Atoms) -> Tensor(5):
    """A molecule as its atom counts per element (H, C, N, O, F); padded atoms count for none."""
    return qm9_element_counts(a.numbers, a.pos)


@ConverterDefinition
def QM9AtomEmbedding(a: Atom) -> Tensor(6):
    """One atom as a tensor: a one-hot of its element (H, C, N, O, F), then its distance (Å) from the centroid."""
    return qm9_atom_features(a.number, a.pos)


@ConverterDefinition
def QM9SymmetryFunctions(a: Atoms) -> Set(Tensor(35)):
    """Per atom: its element's one-hot, then radial symmetry functions per neighbour element (5 × 6)."""
    return qm9_symmetry_functions(a.numbers, a.pos)


@ModelDefinition
def QM9AtomCounts(task, inputType, outputType, epochs=100, batch_size=16, learning_rate=1e-2):
    """The per-element linear baseline: energy from atom counts (one weight per element, and a bias).

    Parameters
    ----------
    epochs, batch_size, learning_rate : int, int, float
        Training settings (Adam).
    """
    if task != Predict or not inputType.IsSet or not isinstance(inputType.ElementType, Atom):
        Fail("predicts a property of a set of atoms only")
    return Pipeline([Convert(inputType, Tensor(5)), Linear(1), Convert(Tensor(1), outputType)])


@ModelDefinition
def QM9PermutationInvariant(task, inputType, outputType, epochs=100, batch_size=16, learning_rate=3e-3):
    """The paper's permutation-invariant model (Fig. 7): one element model per atom, outputs summed.

    Accepts a ``Set`` input, of any size (ragged sets are padded and masked); the planner finds the
    element model (``Require(Model, ...)``).

    Parameters
    ----------
    epochs, batch_size, learning_rate : int, int, float
        Training settings (Adam), as the Behler–Parrinello-style model's.
    """
    if not inputType.IsSet:
        Fail("Don't know how to solve")
    m = Require(Model, task, inputType.ElementType, outputType)
    return Sum(Array(m, inputType.Size))


@ModelDefinition
def QM9AtomNet(task, inputType, outputType, hidden=32):
    """An atom's energy from its element and its distance from the molecule's centre: two tanh layers.

    Accepts ``Predict`` of one ``Atom`` to a ``Scalar``: the element model of ``QM9PermutationInvariant``.

    Parameters
    ----------
    hidden : int
        Width of the hidden layers.
    """
    if task != Predict or not isinstance(inputType, Atom):
        Fail("predicts one atom's energy only")
    return Pipeline([Convert(inputType, Tensor(6)), Linear(hidden), Tanh(), Linear(hidden), Tanh(),
                     Linear(outputType.dims), Convert(Tensor, outputType)])


@ModelDefinition
def QM9BehlerParrinello(task, inputType, outputType, hidden=32, epochs=100, batch_size=16, learning_rate=3e-3):
    """A Behler–Parrinello-style potential: element-resolved symmetry functions, one shared atomic network.

    Accepts ``Predict`` of a ``Set[Atom]`` to a ``Scalar``; invariant to rotations, translations and
    the order of the atoms. The atom's element is part of its descriptor, so one network serves all.

    Parameters
    ----------
    hidden : int
        Width of the atomic network's two tanh layers.
    epochs, batch_size, learning_rate : int, int, float
        Training settings (Adam).
    """
    if task != Predict or not inputType.IsSet or not isinstance(inputType.ElementType, Atom):
        Fail("predicts the energy of a set of atoms only")
    atomic = Pipeline([Linear(hidden), Tanh(), Linear(hidden), Tanh(), Linear(outputType.dims),
                       Convert(Tensor, outputType)])
    return Pipeline([Convert(inputType, Set(Tensor(35))), Sum(Array(atomic, inputType.Size))])


@MetricDefinition(unit="kcal/mol")
def QM9EnergyMAE():
    """Mean absolute error of predicted energies of held-out molecules (``Test.Predict``), in kcal/mol."""
    errors = []
    for (x, y0, y) in Test.Predict:
        placeholder = getattr(x, "type", None)  # discovery passes typed placeholders
        if not isinstance(x, AtomSet) and not (placeholder is not None and placeholder.IsSet
                                               and isinstance(placeholder.ElementType, Atom)):
            Fail("reads energies of molecules: Test.Predict(atoms, energy)")
        errors.append(abs(float(y0) - float(y)))
    return sum(errors) / len(errors)
