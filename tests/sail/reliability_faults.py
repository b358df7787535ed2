# Pods that misbehave on purpose, one fault per value of Faulty.fault (tests/reliability).
import os
import signal
import time

import numpy as np

from saibench_jupyter.sail import *


def _announce(what):
    # Tells the test that module code is running, and in which process.
    with open(f"{what}.{os.getpid()}", "w") as f:
        f.write(str(os.getpid()))


def misbehave(x, fault):
    if fault == "raise":
        raise RuntimeError("the solver blew up")
    if fault == "exit":
        os._exit(3)
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if fault == "hang":
        _announce("hang")
        time.sleep(300)
    if fault == "forkhang":  # a child, then a hang: both must go with the controller
        if os.fork() == 0:
            time.sleep(300)
            os._exit(0)
        _announce("forkhang")
        time.sleep(300)
    if fault == "spin":
        _announce("spin")
        while True:
            pass
    if fault == "memory":
        return np.ones(2**30) * x.sum()  # 8 GiB of float64
    if fault == "flood":
        for i in range(200_000):
            print("a line of output from module code, number", i)
    if fault == "fork":
        if os.fork() == 0:  # a child that outlives the pod, holding the pod's stdout
            time.sleep(40)
            os._exit(0)
    return np.asarray(x, dtype=np.float64) * 2.0


@ProblemDefinition
def Doubled():
    for x, y in zip(Input("inputs.npy", Tensor(3)), Input("doubled.npy", Tensor(3))):
        Test.Solve(x, y)


@ModelDefinition
def Faulty(task, inputType, outputType, fault="ok"):
    if task != Solve: Fail("solves only")
    return Solver(lambda x: misbehave(x, fault))


@MetricDefinition
def Gap():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Solve) / len(Test.Solve)


@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy", pip=["numpy"])


@HardwareDefinition
def OneCore():
    return Resources(cpus=1)
