# Paper Fig. 6 (molecular dynamics) and Fig. 7 (permutation-invariant model) as SAIL.
# Edits forced by invalid or garbled text only: `Gradients(pos. e_p)` -> `Gradients(pos, e_p)`,
# and the brackets of the two problem lists restored.
from saibench_jupyter.sail import *


@ProblemDefinition
def MDSimulation():
    md = Require(MolecularDynamicsSoftware)
    # Training phase
    train_problems = [
        Input("ch2o.atoms").XYZ(),
    ]
    for atoms in train_problems:
        for _ in range(200):
            e = md.PredictEnergy(atoms)
            Train.Predict(atoms, e)
            f = md.ComputeForces(atoms, e)
            atoms = md.ComputeNewStates(atoms, 1.0, f)
    # Testing phase
    test_problems = [
        Input("h2o.atoms").XYZ(),
    ]
    for atoms in test_problems:
        atoms_golden = atoms
        atoms_pred = atoms
        for _ in range(200):
            e_g = md.PredictEnergy(atoms_golden)
            e_p = Model.Predict(atoms_pred)
            Test.Compare(e_g, e_p)
            f_g = md.ComputeForces(atoms_golden, e_g)
            pos = atoms_pred.map(lambda x: x.pos)
            f_p = Gradients(pos, e_p)
            atoms_golden = md.ComputeNewStates(atoms_golden, 1.0, f_g)
            atoms_pred = md.ComputeNewStates(atoms_pred, 1.0, f_p)
            Test.Compare(atoms_golden, atoms_pred)


@ModelDefinition
def PermutationInvariantModel(task, inputType, outputType):
    if not inputType.IsSet: Fail("Don't know how to solve")
    ety = inputType.ElementType
    m = Require(Model, task, ety, outputType)
    return Sum(Array(m, inputType.Size))


@SoftwareDefinition
def ASE(hardware):
    """ASE as the golden molecular-dynamics software, beside PyTorch for the model."""
    Provides(MolecularDynamicsSoftware, "ase.md.verlet:VelocityVerlet")
    return Environment(backend="torch", pip=["ase", "torch==2.13.0"])
