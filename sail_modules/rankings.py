"""Rankings (paper section 4.1): Pareto fronts over work and precision, and fastest to a target.

A ranking reads each scenario's final point (its metrics at the last checkpoint, medians
over repeats) by name (``r.WallTime``), and every point the scenario reached through
``r.checkpoints``. The Pareto rankings here are written for fixed metrics, those of the
digits case study (``WallTime`` for work; ``Accuracy`` and ``CriticalLoss`` for precision,
from ``sail_modules.metrics``); the planner attaches a ranking only to the problems whose
scenarios carry every metric it reads. ``TimeToTarget`` takes its metrics as parameters
with defaults instead, which ``%sail rank TimeToTarget metric=Error target=0.1 higher=False``
overrides.

Comparisons are shown as levels: level 1 is the Pareto front (nothing beats it on both
axes), level 2 the front of what remains, and so on; ties and incomparable scenarios share
a level. Scores rank lower first; a scenario whose score is NaN gets no level.
"""

from saibench_jupyter.sail import *

#: The test accuracy FastestToAccuracy asks for: the digits quality bar. A support cell
#: (``%%sail``) run after loading this file may set another value before ``%sail rank``.
FASTEST_TARGET_ACCURACY = 0.95


@RankingDefinition
def ParetoAccuracy(a, b):
    """Pareto fronts over work (``WallTime``, lower is better) and ``Accuracy`` (higher is better).

    ``a`` ranks before ``b`` when it is no slower and no less accurate; equal scenarios tie, and
    a faster but less accurate scenario is incomparable with a slower, more accurate one (they
    share a level).

    Accepts
    -------
    Scenarios with the ``WallTime`` and ``Accuracy`` metrics (classification problems).
    """
    return a.WallTime <= b.WallTime and a.Accuracy >= b.Accuracy


@RankingDefinition
def ParetoCriticalLoss(a, b):
    """Pareto fronts over the paper's two metrics (Fig. 3): ``WallTime`` and ``CriticalLoss``, both lower is better.

    ``a`` ranks before ``b`` when it is no slower and its worst 1 % of errors is no larger;
    equal scenarios tie, and scenarios that each win on one axis share a level.

    Accepts
    -------
    Scenarios with the ``WallTime`` and ``CriticalLoss`` metrics (classification problems).
    """
    return a.WallTime <= b.WallTime and a.CriticalLoss <= b.CriticalLoss


@RankingDefinition(better="lower")
def FastestToAccuracy(r):
    """The fastest scenarios among those that reach the target accuracy (0.95 by default).

    The score is the scenario's ``WallTime`` when its final ``Accuracy`` is at least
    ``FASTEST_TARGET_ACCURACY``, else NaN: scenarios that miss the target get no level. It
    reads the final point, so this is the work of the whole run; ``TimeToTarget`` ranks by
    the work at the cheapest checkpoint that reaches the target instead.

    Accepts
    -------
    Scenarios with the ``WallTime`` and ``Accuracy`` metrics (classification problems).
    """
    if r.Accuracy >= FASTEST_TARGET_ACCURACY:
        return r.WallTime
    return float("nan")


@RankingDefinition(better="lower")
def TimeToTarget(r, metric="Accuracy", target=0.95, work="ElapsedMilliseconds", higher=True):
    """The least work at any checkpoint where ``metric`` reaches ``target`` (time to target).

    Reads every checkpoint of each scenario (``r.checkpoints``, medians over repeats), so a
    run is not charged for the epochs it trained after reaching the target. ``higher`` says
    which way ``metric`` improves: reaching means at least ``target`` when True, at most
    when False. A scenario that never reaches the target scores NaN: it gets no level and
    is listed after those that do (the built-in ``%sail rank target`` ranks the same way).

    Parameters
    ----------
    metric : str
        The precision metric (default ``Accuracy``).
    target : float
        The value to reach (default 0.95, the digits quality bar).
    work : str
        A work counter or work metric (default ``ElapsedMilliseconds``).
    higher : bool
        Whether ``metric`` is better higher (default True).
    """
    reached = [p[work] for p in r.checkpoints
               if (p[metric] >= target if higher else p[metric] <= target) and p[work] == p[work]]
    if reached:
        return min(reached)
    return float("nan")
