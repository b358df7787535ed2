# A trivial scenario for pods: doubling vectors, with models that misbehave on purpose.
import os
import signal
import time

import numpy as np

from saibench_jupyter.sail import *


def behave(x, mode):
    if mode == "raise":
        raise RuntimeError("the solver blew up")
    if mode == "exit":
        os._exit(3)
    if mode == "signal":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "sleep":
        time.sleep(120)
    if mode == "memory":
        return np.ones(2**30) * x.sum()  # 8 GiB of float64
    if mode == "slow":
        time.sleep(0.1)
    if mode == "print":
        print("a line from module code")
    return np.asarray(x, dtype=np.float64) * 2.0


@ProblemDefinition
def Doubling():
    for x, y in zip(Input("inputs.npy", Tensor(3)), Input("doubled.npy", Tensor(3))):
        Test.Solve(x, y)


@ModelDefinition
def Doubler(task, inputType, outputType, mode="ok"):
    if task != Solve: Fail("solves only")
    return Solver(lambda x: behave(x, mode))


@MetricDefinition
def Error():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Solve) / len(Test.Solve)


@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy", pip=["numpy"])


@HardwareDefinition
def OneCore():
    return Resources(cpus=1)
