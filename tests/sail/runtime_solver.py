# A classical solver at three tolerances: the harmonic oscillator y'' = -w^2 y has an exact solution.
import numpy as np
from scipy.integrate import solve_ivp

from saibench_jupyter.sail import *


def integrate(x, tol):
    y0, v0, w = (float(v) for v in x)
    sol = solve_ivp(lambda t, s: [s[1], -w * w * s[0]], (0.0, 20.0), [y0, v0], method="RK45",
                    rtol=tol, atol=tol * 1e-2)
    return np.asarray(sol.y[:, -1], dtype=np.float64)


@ProblemDefinition
def Oscillators():
    for x, y in Input("dataset:oscillators"):
        Test.Solve(x, y)


@ModelDefinition
def RK45(task, inputType, outputType, tol):
    Suggest(tol, 1e-3, 1e-6, 1e-9)
    if task != Solve: Fail("integrates initial value problems only")
    return Solver(lambda x: integrate(x, tol))


@SoftwareDefinition
def SciPy(hardware):
    return Environment(backend="numpy", pip=["scipy"])


@MetricDefinition
def EndError():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Solve) / len(Test.Solve)


@MetricDefinition(axis="work")
def SolveTime():
    return InferenceMilliseconds()
