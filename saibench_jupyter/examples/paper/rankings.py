# Rankings (paper section 4.1): a score (total order) and a comparison (partial order).
from saibench_jupyter.sail import *


@RankingDefinition
def Fastest(r):
    """Less wall time ranks first."""
    return r.WallTime


@RankingDefinition
def Dominates(a, b):
    """a ranks before b when it is no slower and no less precise (Pareto)."""
    return a.WallTime <= b.WallTime and a.CriticalLoss <= b.CriticalLoss
