"""Molecular dynamics by setting (paper Fig. 6): ASE's EMT is the golden software, ML potentials learn it.

The problem runs EMT molecular dynamics of a Cu13 cluster through ``Require(MolecularDynamicsSoftware)``:
a training trajectory (its frame count is the sample-efficiency parameter), held-out frames from an
independent trajectory, and a closed loop in which the golden and the predicted trajectories start
together and are compared step by step. Models: the paper's permutation-invariant model (Fig. 7) over a
per-atom network, and a Behler–Parrinello potential (symmetry functions, one shared atomic network,
energies summed). The potentials train on energies and forces (force matching: ``Train.Gradients`` of the
energy with respect to the positions, weighted by ``force_weight``); forces come from the model through
``Gradients``.

Units are ASE's: Å, eV, amu; ``dt`` is in femtoseconds.
"""

import numpy as np

from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

#: Elements EMT has real parameters for (its H, C, N, O values are toys): Al, Ni, Cu, Pd, Ag, Pt, Au.
MD_EMT_ELEMENTS = (13, 28, 29, 46, 47, 78, 79)
#: Decay rates (1/Å) of the radial symmetry functions, around EMT's own density decay (~3/Å for Cu).
MD_RADIAL_RATES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
#: Symmetry-function cutoff (Å): past the third neighbour shell of the close-packed metals.
MD_CUTOFF = 6.0
#: Copper's standard atomic weight (amu), as ASE and SAIL's AtomSet use.
MD_CU_MASS = 63.546


class MDEffectiveMedium:
    """ASE's EMT for one cluster (no periodic images), over all atom pairs at once.

    The parameters, cutoff and gammas come from ``ase.calculators.emt.EMT`` itself; only the
    per-atom loop is replaced by pair matrices, since ASE's loop costs 3-13 ms per call for 13
    atoms on shared cores and a trajectory needs thousands of calls. Energies and forces agree
    with ASE's calculator to rounding (the tests check it).
    """

    def __init__(self, numbers):
        from ase import Atoms
        from ase.calculators.emt import EMT

        calc = EMT()
        calc.initialize(Atoms(numbers=numbers, positions=np.zeros((len(numbers), 3))))
        self.par = {k: np.asarray(v)[calc.ia2iz] for k, v in calc.par.items()}
        self.chi = calc.chi[calc.ia2iz][:, calc.ia2iz]
        self.rc, self.rc_list, self.acut = calc.rc, calc.rc_list, calc.acut

    def __call__(self, positions):
        """Energy (eV) and forces (eV/Å, shape (n, 3)) at ``positions``."""
        from ase.calculators.emt import beta

        p, chi = self.par, self.chi
        pos = np.asarray(positions, dtype=np.float64)
        d = pos[None, :, :] - pos[:, None, :]  # d[i, j] = r_j - r_i, as ASE's neighbour vectors
        r = np.sqrt((d * d).sum(-1))
        near = (r < self.rc_list) & ~np.eye(len(pos), dtype=bool)
        r = np.where(near, r, 1.0)
        w = np.where(near, 1.0 / (1.0 + np.exp(self.acut * (r - self.rc))), 0.0)
        dw = self.acut * (w - 1.0)
        eta2, s0, kappa = p["eta2"], p["s0"], p["kappa"]
        s1s = np.exp(-eta2[None, :] * (r - beta * s0[None, :])) * chi * w
        s1o = np.exp(-eta2[:, None] * (r - beta * s0[:, None])) / chi * w
        s2s = np.exp(-kappa[None, :] * (r / beta - s0[None, :])) * chi * w
        s2o = np.exp(-kappa[:, None] * (r / beta - s0[:, None])) / chi * w
        sigma1 = s1s.sum(1)
        alone = sigma1 <= 0.0  # ASE skips atoms without neighbours: they keep -E0
        sigma1 = np.where(alone, 1.0, sigma1)
        ds = -np.log(sigma1 * p["inv12gamma1"]) / (beta * eta2)
        lds = p["lambda"] * ds
        decay = np.exp(-lds)
        six = 6.0 * p["V0"] * np.exp(-kappa * ds)
        e = np.where(alone, 0.0, p["E0"] * (1.0 + lds) * decay + six)
        deds = np.where(alone, 0.0, (-p["E0"] * p["lambda"] * lds * decay - kappa * six) / (-beta * eta2 * sigma1))
        es = p["neghalfv0overgamma2"][:, None] * s2s
        eo = p["neghalfv0overgamma2"][None, :] * s2o
        e = e + 0.5 * (es + eo).sum(1) - p["E0"]
        g1 = deds[:, None] * s1s * (dw - eta2[None, :]) + deds[None, :] * s1o * (dw - eta2[:, None])
        g2 = es * (dw - kappa[None, :] / beta) + eo * (dw - kappa[:, None] / beta)
        forces = (np.where(near, (g1 + g2) / r, 0.0)[..., None] * d).sum(1)
        return float(e.sum()), forces


class ASEMolecularDynamics:
    """The ``MolecularDynamicsSoftware`` implementation: EMT energies and forces, velocity-Verlet steps.

    Velocity Verlet is split so that a step needs only the forces at the current positions,
    whoever computed them (EMT or a model's ``Gradients``): a state carries, per atom, the
    half kick (``kick``, in ASE time) still owed to its velocities, paid with the next forces.
    """

    def __init__(self):
        self._emt = {}
        self._cache = {}

    def _evaluate(self, atoms):
        numbers = np.asarray(atoms.numbers)
        key = (numbers.tobytes(), np.asarray(atoms.positions, dtype=np.float64).tobytes())
        hit = self._cache.get(key)
        if hit is None:
            emt = self._emt.get(key[0])
            if emt is None:
                emt = self._emt[key[0]] = MDEffectiveMedium(numbers)
            hit = self._cache[key] = emt(atoms.positions)
            if len(self._cache) > 4096:  # a trajectory asks for each state twice, then never again
                self._cache.pop(next(iter(self._cache)))
        return hit

    def PredictEnergy(self, atoms):
        """Potential energy (eV)."""
        return np.float32(self._evaluate(atoms)[0])

    def ComputeForces(self, atoms, energy=None):
        """Forces (eV/Å), shape (n, 3)."""
        return self._evaluate(atoms)[1].copy()

    def ComputeNewStates(self, atoms, dt, forces):
        """One velocity-Verlet step of ``dt`` femtoseconds under ``forces`` (at the current positions)."""
        from ase import units

        f = np.asarray(forces, dtype=np.float64).reshape(len(atoms), 3)
        m = np.asarray(atoms.masses, dtype=np.float64)[:, None]
        h = float(dt) * units.fs
        v = np.asarray(atoms.fields["velocities"], dtype=np.float64)
        owed = np.asarray(atoms.fields.get("kick", np.zeros(len(atoms))), dtype=np.float64)[:, None]
        v_half = v + f * (owed + 0.5 * h) / m
        pos = np.asarray(atoms.positions, dtype=np.float64) + h * v_half
        return atoms.replace(positions=pos, velocities=v_half, kick=np.full(len(atoms), 0.5 * h))


def md_kinetic_energy(atoms, after=None):
    """Kinetic energy (eV) at a state's time: its velocities, averaged with the next state's half-step ones."""
    v = np.asarray(atoms.fields["velocities"], dtype=np.float64)
    if after is not None and float(np.max(atoms.fields.get("kick", [0.0]))) > 0.0:
        v = 0.5 * (v + np.asarray(after.fields["velocities"], dtype=np.float64))
    m = np.asarray(atoms.masses, dtype=np.float64)
    return 0.5 * float((m[:, None] * v * v).sum())


def md_cluster_start(seed, temperature=600.0, displacement=0.05):
    """A Cu13 icosahedron (ASE's: shell at 2.553 Å), displaced, with Maxwell–Boltzmann velocities at ``temperature`` K.

    Built here rather than with ``ase.cluster``, whose import costs seconds in every pod.
    """
    from ase import units

    phi = (1.0 + 5.0 ** 0.5) / 2.0
    shell = np.array([(0, a, b * phi) for a in (-1, 1) for b in (-1, 1)], dtype=np.float64)
    shell = np.concatenate([np.roll(shell, k, axis=1) for k in range(3)])
    shell *= 2.553 / np.linalg.norm(shell[0])
    rng = np.random.default_rng(seed)
    numbers = np.full(13, 29)
    m = np.full((13, 1), MD_CU_MASS)
    pos = np.concatenate([np.zeros((1, 3)), shell]) + rng.normal(scale=displacement, size=(13, 3))
    pos -= pos.mean(0)
    v = rng.normal(size=(13, 3)) * np.sqrt(units.kB * temperature / m)
    v -= v.mean(0)  # no drift of the centre of mass (one element: equal masses)
    return AtomSet(numbers, pos, velocities=v, kick=np.zeros(13))


def md_symmetry_functions(positions):
    """Radial symmetry functions of every atom: sum_j exp(-k (r_ij - 2.5 Å)) fc(r_ij), one per rate k.

    Written with the array API so that it runs on NumPy, and on PyTorch and JAX under ``vmap``
    with gradients flowing to the positions.
    """
    from saibench_jupyter.sail._primitives import array_namespace

    xp = array_namespace(positions)
    n = positions.shape[0]
    d = positions[None, :, :] - positions[:, None, :]
    # The self-distance is moved past the cutoff: no sqrt(0), whose gradient is infinite.
    r = xp.sqrt(xp.sum(d * d, axis=-1) + 4.0 * MD_CUTOFF * MD_CUTOFF * xp.eye(n, dtype=positions.dtype))
    fc = xp.where(r < MD_CUTOFF, 0.5 * (xp.cos(np.pi * r / MD_CUTOFF) + 1.0), xp.zeros_like(r))
    rates = xp.asarray(MD_RADIAL_RATES, dtype=positions.dtype)
    g = xp.sum(xp.exp(-rates * (r[..., None] - 2.5)) * fc[..., None], axis=1)
    return (g - 4.0) / 2.0  # about zero mean and unit spread for close-packed metals


def md_atom_features(number, position):
    """One atom as a tensor: a one-hot of its element among EMT's metals, then its position."""
    from saibench_jupyter.sail._primitives import array_namespace

    xp = array_namespace(position)
    onehot = xp.stack([xp.astype(number == z, position.dtype) for z in MD_EMT_ELEMENTS])
    return xp.concat([onehot, position])


register_dataset("cu13", {"train": Set(Atom(), 13), "test": Set(Atom(), 13)},
                 lambda: {"train": [md_cluster_start(0)], "test": [md_cluster_start(1)]},
                 "Cu13 icosahedra with 600 K velocities: the start of the training and of the test trajectory")


@ProblemDefinition
def MDCu13(frames, stride=5, dt=5.0, test_frames=25, loop_steps=100, force_weight=10.0):
    """Molecular dynamics of a Cu13 cluster with EMT as the golden software (paper Fig. 6).

    Training data are every ``stride``-th frame of an EMT trajectory, its energy and its forces (force
    matching: ``Train.Gradients`` of the energy with respect to the positions); held-out frames come from an
    independent trajectory (energies each epoch, forces from ``Gradients`` once trained); then the
    golden and the model-driven trajectories run ``loop_steps`` steps from one start and are compared.
    Energies are measured from the first training frame's.

    Parameters
    ----------
    frames : int
        Training frames (suggested: 10, 50, 200): the sample-efficiency sweep.
    stride : int
        Velocity-Verlet steps between recorded frames.
    dt : float
        Time step in femtoseconds.
    test_frames : int
        Held-out frames.
    loop_steps : int
        Steps of the closed loop.
    force_weight : float
        Weight of the forces' squared error (eV²/Å²) against the energies' (eV²) in the training
        loss (the ``gradient_weight`` training setting); 0 trains on energies only.
    """
    Suggest(frames, 10, 50, 200)
    md = Require(MolecularDynamicsSoftware)
    cluster = Set(Atom(), 13)
    for atoms in Input("dataset:cu13/train", cluster):
        e_ref = md.PredictEnergy(atoms)
        for step in range(frames * stride):
            e = md.PredictEnergy(atoms)
            f = md.ComputeForces(atoms, e)
            if step % stride == 0:
                Train.Predict(atoms, e - e_ref)
                Train.Gradients(atoms.positions, -f)  # dE/dx is minus the forces
            atoms = md.ComputeNewStates(atoms, dt, f)
    for atoms in Input("dataset:cu13/test", cluster):
        start = atoms
        for step in range(test_frames * stride):
            e = md.PredictEnergy(atoms)
            f = md.ComputeForces(atoms, e)
            if step % stride == 0:
                Test.Predict(atoms, e - e_ref)
                e_p = Model.Predict(atoms)
                # Gradients gives dE/dx; the forces are its negative.
                Test.Compare(f, -Gradients(atoms.positions, e_p))
            atoms = md.ComputeNewStates(atoms, dt, f)
        golden = start
        pred = start
        Test.Compare(golden, pred)
        for _ in range(loop_steps):
            e_g = md.PredictEnergy(golden)
            e_p = Model.Predict(pred)
            Test.Compare(e_g - e_ref, e_p)
            f_g = md.ComputeForces(golden, e_g)
            f_p = -Gradients(pred.positions, e_p)
            golden = md.ComputeNewStates(golden, dt, f_g)
            pred = md.ComputeNewStates(pred, dt, f_p)
            Test.Compare(golden, pred)


@SoftwareDefinition
def ASEPyTorch(hardware):
    """ASE as the golden molecular-dynamics software (EMT, velocity Verlet), with PyTorch for the model.

    Provides ``MolecularDynamicsSoftware``; on CUDA hardware the model runs on the GPU and EMT on the CPU.
    """
    Provides(MolecularDynamicsSoftware, ASEMolecularDynamics)
    if hardware.device == "cuda":
        return Environment(backend="torch", pip=["ase", "torch==2.13.0"], conda=["pytorch-cuda=12.4"])
    return Environment(backend="torch", pip=["ase", "torch==2.13.0"])


@ConverterDefinition
def AtomEmbedding(a: Atom) -> Tensor(10):
    """An atom as a tensor (paper Fig. 5): a one-hot of its element among EMT's metals, then its position.

    The position is kept so that an energy built from atoms alone still depends on where they are.
    """
    return md_atom_features(a.number, a.pos)


@ConverterDefinition
def Concat(a: list[T]) -> Tensor:
    """A list as one flat tensor (paper Fig. 5): every element converted, then concatenated.

    Lists only: a ``Set`` never matches, since concatenation depends on the order (paper Fig. 7).
    """
    return Concat(a.map(Convert(T, Tensor)))


@ConverterDefinition
def SymmetryFunctions(a: Atoms) -> Set(Tensor(6)):
    """Behler–Parrinello radial symmetry functions: one descriptor per atom, from its neighbours' distances.

    Descriptor k of atom i is sum_j exp(-k (r_ij - 2.5 Å)) fc(r_ij), with the cosine cutoff fc at
    6 Å and k in 1, 1.5, 2, 2.5, 3, 4 per Å: the electron-density form that EMT and EAM are built
    on. They are invariant to rotations, translations and the order of the atoms.
    """
    return md_symmetry_functions(a.pos)


@ModelDefinition
def PermutationInvariantModel(task, inputType, outputType, epochs=100, batch_size=8, learning_rate=1e-3):
    """The paper's permutation-invariant model (Fig. 7): one sub-model per element, outputs summed.

    Accepts a ``Set`` input; the planner finds the element model (``Require(Model, ...)``).

    Parameters
    ----------
    epochs, batch_size, learning_rate : int, int, float
        Training settings (Adam), as the Behler–Parrinello potential's, so that the two compare fairly.
    """
    if not inputType.IsSet:
        Fail("Don't know how to solve")
    ety = inputType.ElementType
    m = Require(Model, task, ety, outputType)
    return Sum(Array(m, inputType.Size))


@ModelDefinition
def MDAtomNet(task, inputType, outputType, hidden=32):
    """A per-atom energy network: ``AtomEmbedding`` (element and position), two tanh layers, a scalar.

    Accepts ``Predict`` of one ``Atom`` to a ``Scalar``: the element model of the permutation-invariant
    model. Smooth (tanh), so its forces are too.

    Parameters
    ----------
    hidden : int
        Width of the hidden layers.
    """
    if task != Predict or not isinstance(inputType, Atom):
        Fail("predicts one atom's energy only")
    return Pipeline([Convert(inputType, Tensor), Linear(hidden), Tanh(), Linear(hidden), Tanh(),
                     Linear(outputType.dims), Convert(Tensor, outputType)])


@ModelDefinition
def BehlerParrinello(task, inputType, outputType, hidden=32, epochs=100, batch_size=8, learning_rate=1e-3):
    """A Behler–Parrinello potential: symmetry functions per atom, one shared atomic network, energies summed.

    Accepts ``Predict`` of a ``Set[Atom]`` to a ``Scalar`` (an energy). Permutation invariant by
    construction; forces are ``Gradients`` through the symmetry functions.

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
    # Six descriptors per atom: SymmetryFunctions' declared output.
    return Pipeline([Convert(inputType, Set(Tensor(6))), Sum(Array(atomic, inputType.Size))])


@MetricDefinition(unit="meV")
def EnergyMAE():
    """Mean absolute error of predicted energies on held-out frames of atoms (``Test.Predict``), in meV."""
    errors = []
    for (x, y0, y) in Test.Predict:
        placeholder = getattr(x, "type", None)  # discovery passes typed placeholders
        if not isinstance(x, AtomSet) and not (placeholder is not None and placeholder.IsSet
                                               and isinstance(placeholder.ElementType, Atom)):
            Fail("reads energies of atomic configurations: Test.Predict(atoms, energy)")
        errors.append(1000.0 * abs(float(y0) - float(y)))
    return sum(errors) / len(errors)


@MetricDefinition(unit="meV/Å")
def ForceMAE():
    """Mean absolute error of force components on held-out frames (``Test.Compare`` of (n, 3) forces), in meV/Å."""
    for (x, _, _) in Test.Predict:
        placeholder = getattr(x, "type", None)
        if not isinstance(x, AtomSet) and not (placeholder is not None and placeholder.IsSet
                                               and isinstance(placeholder.ElementType, Atom)):
            Fail("reads forces on atoms: a problem with Test.Predict(atoms, energy)")
    errors = []
    for (golden, predicted) in Test.Compare:
        if len(getattr(golden, "shape", ())) == 2:
            errors.append(1000.0 * float(abs(golden - predicted).mean()))
    return sum(errors) / len(errors) if errors else None


@MetricDefinition(unit="Å")
def TrajectoryRMSD():
    """Root-mean-square distance between golden and predicted atoms at each closed-loop step, in Å.

    The value is the mean over the loop; the raw values are the curve over time.
    """
    for (x, _, _) in Test.Predict:
        placeholder = getattr(x, "type", None)
        if not isinstance(x, AtomSet) and not (placeholder is not None and placeholder.IsSet
                                               and isinstance(placeholder.ElementType, Atom)):
            Fail("reads trajectories of atoms: a problem with Test.Predict(atoms, energy)")
    rmsd = []
    for (golden, predicted) in Test.Compare:
        if isinstance(golden, AtomSet):
            d = golden.positions - predicted.positions
            rmsd.append(float((d * d).sum(1).mean()) ** 0.5)
    return rmsd if rmsd else None


@MetricDefinition(unit="meV/atom")
def EnergyDrift():
    """Largest change of total energy (model energy plus kinetic) along the model-driven trajectory, per atom, meV.

    A potential whose forces are the gradients of its energy conserves it up to the integrator's
    error; a rough or unstable one drifts.
    """
    for (x, _, _) in Test.Predict:
        placeholder = getattr(x, "type", None)
        if not isinstance(x, AtomSet) and not (placeholder is not None and placeholder.IsSet
                                               and isinstance(placeholder.ElementType, Atom)):
            Fail("reads trajectories of atoms: a problem with Test.Predict(atoms, energy)")
    states, energies = [], []
    for (golden, predicted) in Test.Compare:
        if isinstance(golden, AtomSet):
            states.append(predicted)
        elif len(getattr(golden, "shape", ())) < 2:
            energies.append(float(predicted))
    steps = min(len(energies), len(states) - 1)
    if steps < 1:
        return None
    total = [energies[k] + md_kinetic_energy(states[k], states[k + 1]) for k in range(steps)]
    return 1000.0 * max(abs(h - total[0]) for h in total) / len(states[0])


@RankingDefinition
def MDForceDominates(a, b):
    """a ranks before b when it took no more wall time and its held-out forces are no worse (a partial order)."""
    return a.WallTime <= b.WallTime and a.ForceMAE <= b.ForceMAE
