"""Rankings: scenarios ordered by their final results, as a score or a comparison; :func:`rank` picks one.

A ranking module (paper section 4.1) is either a *score* (``def Fastest(r)``: a number,
a total order) or a *comparison* (``def Dominates(a, b)``: "a ranks before b", a partial
order). Both read one row per scenario: its metrics and work counters at its final point,
the median over repeats (:func:`final_points`), and every point before it
(``r.checkpoints``); a module's own parameters, with defaults, come after the scenarios
and may be overridden (``params=``; ``_ranking_rows``). Every ranking is told as *levels*: level 1
is best, ties and incomparable scenarios share a level, and scenarios that did not finish
stay in the table, last and without a level, so a ranking never silently hides them
(``_levels``). :func:`rank` runs a ranking spec: a module or function (here), Pareto
fronts (``_pareto``) or time to target (``_target``).
"""

from __future__ import annotations

import inspect
import linecache
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..sail import deepest_line
from ._final_points import final_points
from ._levels import BETTER, Ranking, check_points, dense_levels, levels_of, ranking_table
from ._pareto import pareto, pareto_axes
from ._ranking_rows import Checkpoints, Row, checkpoint_reader, ranking_params
from ._ranking_specs import (
    ParetoSpec,
    RankingModuleSpec,
    RankingSpec,
    TargetSpec,
    as_ranking_spec,
)
from ._target import time_to_target

if TYPE_CHECKING:
    import pandas

    from ..repository import Repository
    from ..sail import ParsedModule
    from ._results import Results


class RankingError(ValueError):
    """A ranking's own code failed, or returned something that cannot rank, on a given scenario."""


# -- calling user code ---------------------------------------------------------------------
@dataclass(frozen=True)
class _UserCode:
    """A ranking function with what is needed to blame the right line when it fails."""

    name: str
    fn: Callable[..., Any]
    module: ParsedModule | None = None
    #: Overrides of the ranking's own parameters (checked by ranking_params).
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def call(self, rows: Sequence[Row], labels: Sequence[str]) -> Any:
        try:
            return self.fn(*rows, **self.params)
        except Exception as exc:
            # from None: the user needs their line and scenario, not a traceback through pandas and us.
            raise self.error(f"raised {type(exc).__name__}: {exc}", labels, exc) from None

    def error(self, what: str, labels: Sequence[str], exc: BaseException | None = None) -> RankingError:
        code = getattr(self.fn, "__code__", None)
        filename = code.co_filename if code is not None else None
        line = deepest_line(exc, filename) if exc is not None and filename else 0
        line = line or (self.module.line if self.module else getattr(code, "co_firstlineno", 0))
        where = self.module.origin if self.module else (filename or "?")
        text = linecache.getline(filename, line).strip() if filename and line else ""
        scenarios = " and ".join(repr(label) for label in labels)
        kind = "ranking module" if self.module else "ranking"
        message = (f"{kind} {self.name} {what}\n  on scenario{'s' * (len(labels) > 1)} {scenarios}\n"
                   f"  at {where}, line {line}" + (f"\n    {line} | {text}" if text else "")
                   + "\n  fix: a ranking gets each finished scenario's final metric values (r.<Metric>, "
                   "r.<WorkCounter>, r.label ...) and its points (r.checkpoints); return a number (score) or a "
                   "bool (a ranks before b)")
        return RankingError(message)


def _rows(points: pandas.DataFrame, read: list[str],
          checkpoints: Checkpoints | None = None) -> dict[int, tuple[Row, str]]:
    """The rows a ranking sees, with their labels: finished scenarios only (a DNF has no final values)."""
    return {i: (Row(record, read, checkpoints), str(record["label"]))
            for i, record in enumerate(points.to_dict("records")) if record["status"] == "ok"}


def _score(code: _UserCode, points: pandas.DataFrame, better: str, checkpoints: Checkpoints | None = None) -> Ranking:
    if better not in BETTER:
        raise ValueError(f"better={better!r}: a score is better when 'lower' or 'higher'")
    points, read = check_points(points), list[str]()
    scores: dict[int, float] = {}
    for i, (row, label) in _rows(points, read, checkpoints).items():
        value = code.call([row], [label])
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise code.error(f"returned {type(value).__name__} {value!r}, not a number", [label]) from None
        if not math.isnan(number):
            scores[i] = number
    table, notes = ranking_table(points, dense_levels(scores, better), read, score=scores)
    return Ranking(code.name, "score", table, tuple(notes))


def _comparison(code: _UserCode, points: pandas.DataFrame, checkpoints: Checkpoints | None = None) -> Ranking:
    points, read = check_points(points), list[str]()
    rows = _rows(points, read, checkpoints)
    before: dict[tuple[int, int], bool] = {}
    for i, (a, label_a) in rows.items():
        for j, (b, label_b) in rows.items():
            if i != j:
                outcome = code.call([a, b], [label_a, label_b])
                try:
                    before[i, j] = bool(outcome)
                except Exception:  # an array compared with an array: truth value ambiguous
                    raise code.error(f"returned {type(outcome).__name__}, not a bool", [label_a, label_b]) from None
    # Strictly before: a before b but not b before a, so equal scenarios (<= both ways) tie.
    strict = [(i, j) for (i, j), yes in before.items() if yes and not before[j, i]]
    index = list(rows)
    position = {i: k for k, i in enumerate(index)}
    levels, cycles = levels_of(len(index), [(position[i], position[j]) for i, j in strict])
    notes = [f"{', '.join(str(points['label'][index[k]]) for k in cycle)} rank before one another in a cycle "
             f"(the relation is not transitive); they share level {levels[cycle[0]]}" for cycle in cycles]
    table, more = ranking_table(points, {index[k]: level for k, level in enumerate(levels)}, read)
    return Ranking(code.name, "comparison", table, (*notes, *more))


def rank_scores(points: pandas.DataFrame, score: Callable[[Any], Any], *, better: str = "lower",
                name: str | None = None) -> Ranking:
    """Rank scenarios by a score (a total order); equal scores share a level.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per scenario, as :func:`final_points` gives.
    score : callable
        Called with one row per finished scenario (``r.WallTime``, ``r.label`` ...); returns a number.
    better : {"lower", "higher"}
        Which scores rank first.
    name : str, optional
        The ranking's name (default: the function's).

    Returns
    -------
    Ranking
        Dense levels (1, 1, 2 ...); NaN scores get no level (status ``no value``).

    Raises
    ------
    RankingError
        When ``score`` raises or returns something that is not a number.
    """
    return _score(_UserCode(name or str(getattr(score, "__name__", "score")), score), points, better)


def rank_comparison(points: pandas.DataFrame, before: Callable[[Any, Any], Any], *,
                    name: str | None = None) -> Ranking:
    """Rank scenarios by a comparison (a partial order) into levels.

    Level 1 holds the scenarios nothing ranks strictly before; then those are removed and
    the rule repeats. Incomparable scenarios share a level; scenarios on a cycle of the
    relation share one level too, and the ranking's ``notes`` say so.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per scenario, as :func:`final_points` gives.
    before : callable
        ``before(a, b)`` is true when ``a`` ranks before ``b``.
    name : str, optional
        The ranking's name (default: the function's).

    Raises
    ------
    RankingError
        When ``before`` raises or returns something without a truth value.
    """
    return _comparison(_UserCode(name or str(getattr(before, "__name__", "comparison")), before), points)


def rank(results: Results, ranking: RankingSpec | str | tuple[Any, ...] | Callable[..., Any],
         repository: Repository | None = None, *, trust: bool = False,
         params: Mapping[str, Any] | None = None) -> Ranking:
    """Rank the scenarios of ``results`` by a ranking module, a function, Pareto fronts or time to target.

    Parameters
    ----------
    results : Results
        The scenarios; each is ranked by its final point (:func:`final_points`).
    ranking : RankingSpec, str, tuple or callable
        A spec (:class:`RankingModuleSpec`, :class:`RankingFunctionSpec`, :class:`ParetoSpec`,
        :class:`TargetSpec`) or what stands for one: a ``@RankingDefinition`` module's name;
        a function of one row (a score, lower is better) or of two (a comparison);
        ``"pareto"`` or ``("pareto", work, precision)`` (defaults: the first work metric or
        ``ElapsedMilliseconds``, the first precision metric); ``("target", precision, value)``
        or ``("target", precision, value, work)``: the least work at which ``precision``
        reaches ``value``, over every checkpoint (:func:`time_to_target`).
    repository : Repository, optional
        Where ranking modules are found (the modules you loaded or wrote in cells).
    trust : bool
        Without a ``repository``, run the ranking module's code the store kept for these
        scenarios. A store is a file that may come from anyone, and running its code is
        running a program: never done unless asked for (default False).
    params : mapping, optional
        Overrides of a ranking module's own parameters (those with defaults, after the
        scenarios): ``{"target": 0.9}``; they update the spec's ``params``.

    Raises
    ------
    TypeError
        For a ``ranking`` that is none of the above.
    ValueError
        For an unknown ranking name (the message lists the known ones), Pareto axes the
        results lack, a ranking module asked for by name with neither a ``repository``
        nor ``trust=True`` (the store's code is not run; the message says so), ``params``
        for a ranking that is not a module, or a parameter the module lacks or a value of
        another kind than its default (:func:`ranking_params`).
    RankingError
        When the ranking's code fails: the message names the module, its line and the scenario.
    """
    spec = as_ranking_spec(ranking)
    if params and not isinstance(spec, RankingModuleSpec):
        raise ValueError(f"rank: params= {dict(params)!r} are for a ranking module's own parameters, and "
                         f"{ranking!r} is not one\n  fix: name a @RankingDefinition module, or leave params out")
    if isinstance(spec, TargetSpec):  # reads every checkpoint, not only the final points
        return time_to_target(results, spec.precision, spec.target, spec.work)
    points = final_points(results)
    if isinstance(spec, ParetoSpec):
        return pareto(points, *pareto_axes(points, spec.work, spec.precision))
    if isinstance(spec, RankingModuleSpec):
        module, fn = _module(results, spec.name, repository, trust)
        scenarios = len(module.params) - len(module.defaults)
        given = ranking_params(module.name, fn, scenarios, {**spec.params, **(params or {})})
        name = module.name + (f"({', '.join(f'{k}={v!r}' for k, v in given.items())})" if given else "")
        code, every = _UserCode(name, fn, module, given), checkpoint_reader(results, points)
        if scenarios == 2:
            return _comparison(code, points, every)
        return _score(code, points, str(module.options.get("better", "lower")), every)
    arity = len([p for p in inspect.signature(spec.fn).parameters.values() if p.default is p.empty])
    if arity not in (1, 2):
        raise ValueError(f"a ranking function takes one scenario (a score) or two (a comparison), not {arity}")
    fallback = "score" if arity == 1 else "comparison"
    code = _UserCode(str(getattr(spec.fn, "__name__", fallback)), spec.fn)
    every = checkpoint_reader(results, points)
    return _score(code, points, "lower", every) if arity == 1 else _comparison(code, points, every)


def _module(results: Results, name: str, repository: Repository | None,
            trust: bool) -> tuple[ParsedModule, Callable[..., Any]]:
    """The ranking module called ``name``, compiled the way the runtime compiles modules."""
    from ..runtime import ExecutionNamespace  # here: reading results never loads the runtime
    from ._stored import stored_rankings, stored_repository

    if repository is None and not trust:
        # Even parsing runs code (type declarations are evaluated): the stored text is only read with ast here.
        stored = stored_rankings(results)
        where = results.store.path.name
        if name not in stored:
            raise ValueError(f"no ranking module {name!r} (rankings stored in {where}: {', '.join(stored) or 'none'};"
                             " built in: 'pareto'): define it with @RankingDefinition in a cell or file of the "
                             "repository and pass repository=..., or pass a function")
        raise ValueError(f"rank: the ranking {name!r} is code stored in {where}; running it would execute that "
                         f"code. fix: pass repository=... (the modules you loaded or wrote) or trust=True if you "
                         f"trust the file")
    repo = repository if repository is not None else stored_repository(results)
    known = [m.name for m in repo.modules("ranking")]
    if name not in known:
        raise ValueError(f"no ranking module {name!r} (known rankings: {', '.join(known) or 'none'}; built in: "
                         "'pareto'): define it with @RankingDefinition in a cell or file of the repository and pass "
                         "repository=..., or pass a function")
    module = repo.get(name)
    return module, ExecutionNamespace.of(repo).function(module)
