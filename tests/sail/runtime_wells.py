# A generated molecular energy set: each atom sits in a harmonic well, E = sum_i |r_i|^2.
# The permutation-invariant model of Fig. 7 learns it; Gradients gives dE/dr (minus the forces).
import numpy as np

from saibench_jupyter.sail import *


def displaced(atoms, i, k, eps):
    pos = np.array(atoms.positions, dtype=np.float64)
    pos[i, k] += eps
    return atoms.replace(positions=pos)


def permuted(atoms):
    order = np.arange(len(atoms))[::-1]
    return atoms.replace(numbers=atoms.numbers[order], positions=atoms.positions[order])


@ProblemDefinition
def HarmonicWells(epochs=30):
    data = Input("dataset:wells")
    train, test = RandomSplit(data, 0.75, seed=0)
    for atoms, e in train:
        Train.Predict(atoms, e)
    for atoms, e in test:
        Test.Predict(atoms, e)
    probe = test[0][0]
    e_p = Model.Predict(probe)
    grads = Gradients(probe.map(lambda a: a.pos), e_p)
    eps = 1e-2
    for i in range(len(probe)):
        for k in range(3):
            up = Model.Predict(displaced(probe, i, k, eps))
            down = Model.Predict(displaced(probe, i, k, -eps))
            Test.Compare((up - down) / (2 * eps), grads[i][k])
    Test.Compare(e_p, Model.Predict(permuted(probe)))


@ModelDefinition
def SmoothMLP(task, inputType, outputType, hidden=32):
    if task != Predict or inputType.IsSet: Fail("predicts element-wise")
    return Pipeline([Convert(inputType, Tensor), Linear(hidden), Tanh(), Linear(outputType.dims),
                     Convert(Tensor, outputType)])


@ConverterDefinition
def AtomPosition(a: Atom) -> Tensor(3):
    return a.pos


@MetricDefinition
def Disagreement():
    return max(abs(float(a) - float(b)) for (a, b) in Test.Compare)


@MetricDefinition
def EnergyError():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Predict) / len(Test.Predict)
