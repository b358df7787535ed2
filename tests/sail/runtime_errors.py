# Problems and metrics that go wrong at execution, each in a way a user must be told about.
import numpy as np
from saibench_jupyter.sail import *


@ProblemDefinition
def Ramp(epochs=2):
    data = Input("dataset:ramp")
    for x, y in data:
        Train.Predict(x, y)
    for x, y in data:
        Test.Predict(x, y)


@ProblemDefinition
def BrokenAfterTraining(epochs=1):
    data = Input("dataset:ramp")
    for x, y in data:
        Train.Predict(x, y)
    for x, y in data:
        Test.Predict(x, y)
    Model.Predict(x)
    x.reshape(5)


@ProblemDefinition
def MissingFile():
    for x, y in zip(Input("nowhere.npy", Tensor(2)), Input("labels.npy", Tensor(1))):
        Test.Predict(x, y)


@ModelDefinition
def Line(task, inputType, outputType):
    if task != Predict: Fail("regression only")
    return Pipeline([Linear(outputType.dims)])


@MetricDefinition
def Error():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Predict) / len(Test.Predict)


@MetricDefinition
def Fragile():
    return [y for (_, _, y) in Test.Predict][0].item(5)


@HardwareDefinition
def OneCore():
    return Resources(cpus=1)


@SoftwareDefinition
def Torch(hardware):
    return Environment(backend="torch")
