"""Ranking specs: which ranking :func:`rank` runs, as typed values instead of tuples.

A user may still write ``"pareto"``, ``("pareto", work, precision)``,
``("target", precision, value[, work])``, a ranking module's name or a function:
:func:`as_ranking_spec` turns each into its spec where it enters (in :func:`rank`), and
nothing past that point sees a tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RankingModuleSpec:
    """A ``@RankingDefinition`` module, by name: a score of one scenario or a comparison of two.

    Parameters
    ----------
    name : str
        The module's name.
    params : mapping, optional
        Overrides of the module's own parameters (those with defaults): ``{"target": 0.9}``.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class RankingFunctionSpec:
    """A Python function: of one scenario (a score, lower is better) or of two (a comparison).

    Parameters
    ----------
    fn : callable
        ``fn(r)`` returns a number, or ``fn(a, b)`` is true when ``a`` ranks before ``b``.
    """

    fn: Callable[..., Any]


@dataclass(frozen=True)
class ParetoSpec:
    """The built-in Pareto fronts over a work and a precision column.

    Parameters
    ----------
    work : str, optional
        The work axis (default: the first work metric, else ``ElapsedMilliseconds``).
    precision : str, optional
        The precision axis (default: the first precision metric).
    """

    work: str | None = None
    precision: str | None = None


@dataclass(frozen=True)
class TargetSpec:
    """Time to target: the least work at which ``precision`` reaches ``target``, over every checkpoint.

    Parameters
    ----------
    precision : str
        The precision metric.
    target : float
        The value to reach.
    work : str, optional
        The work axis (default: the first work metric, else ``ElapsedMilliseconds``).
    """

    precision: str
    target: float
    work: str | None = None


#: What :func:`rank` runs.
RankingSpec = RankingModuleSpec | RankingFunctionSpec | ParetoSpec | TargetSpec
_SPECS = (RankingModuleSpec, RankingFunctionSpec, ParetoSpec, TargetSpec)


def as_ranking_spec(ranking: Any) -> RankingSpec:
    """The spec ``ranking`` stands for: a spec itself, ``"pareto"``, a tuple, a module's name or a function.

    Parameters
    ----------
    ranking : RankingSpec, str, tuple or callable
        ``"pareto"`` or ``("pareto"[, work[, precision]])``; ``("target", precision, value)``
        or ``("target", precision, value, work)``; any other string names a ranking module;
        a callable is a score or a comparison.

    Returns
    -------
    RankingSpec
        The typed spec.

    Raises
    ------
    TypeError
        For anything else (a tuple of another shape included).
    ValueError
        For a target ``value`` that is not a number.
    """
    if isinstance(ranking, _SPECS):
        return ranking
    if isinstance(ranking, tuple) and ranking[:1] == ("target",) and len(ranking) in (3, 4):
        _, precision, value, *work = ranking
        return TargetSpec(str(precision), float(value), *work)
    if ranking == "pareto":
        return ParetoSpec()
    if isinstance(ranking, tuple) and ranking[:1] == ("pareto",):
        # Extra items after the two axes were ignored before specs existed; they still are.
        work, precision = [*ranking[1:3], None, None][:2]
        return ParetoSpec(work, precision)
    if isinstance(ranking, str):
        return RankingModuleSpec(ranking)
    if callable(ranking):
        return RankingFunctionSpec(ranking)
    raise TypeError(f"ranking={ranking!r}: pass a ranking module's name, a function, ('pareto', work, precision) "
                    "or ('target', precision, value)")
