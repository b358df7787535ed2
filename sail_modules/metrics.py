"""Metrics shared by the case studies: the paper's two (Fig. 3) and classification accuracy.

A metric applies to the problems whose test collections it reads (the planner rejects it,
with the reason, for the others), and is evaluated at every checkpoint.
"""

import numpy as np

from saibench_jupyter.sail import *


@MetricDefinition(better="higher")
def Accuracy():
    """The fraction of ``Test.Classify`` records whose predicted class (the arg-max) is the true one."""
    hits = [float(np.argmax(y0) == np.argmax(y)) for (_, y0, y) in Test.Classify]
    return sum(hits) / len(hits)


@MetricDefinition
def CriticalLoss():
    """The paper's critical loss: the mean of the worst 1 % of L2 errors over ``Test.Classify`` (Fig. 3)."""
    loss = []
    sz = len(Test.Classify)
    for (_, y0, y) in Test.Classify:
        loss.append(L2Error(y0, y))
    return loss.TopK(sz * 0.01)


@MetricDefinition(axis="work", unit="ms")
def WallTime():
    """Milliseconds the model has worked so far: training up to this checkpoint plus inference."""
    return ElapsedMilliseconds()
