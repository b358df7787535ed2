"""Rankings: scenarios ordered by their final results, as a score, a comparison or Pareto fronts.

A ranking module (paper section 4.1) is either a *score* (``def Fastest(r)``: a number,
a total order) or a *comparison* (``def Dominates(a, b)``: "a ranks before b", a partial
order). Both read one row per scenario: its metrics and work counters at its final point,
the median over repeats (:func:`final_points`). Every ranking is told as *levels*: level 1
is best, ties and incomparable scenarios share a level, and scenarios that did not finish
stay in the table, last and without a level, so a ranking never silently hides them.
"""

from __future__ import annotations

import html
import inspect
import linecache
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..runtime._result import COUNTERS
from ..sail import deepest_line

if TYPE_CHECKING:
    import pandas

    from ..repository import Repository
    from ..sail._parser import ParsedModule
    from ._results import Results

#: Scenario columns every points frame and ranking table starts with.
INFO = ("identity", "label", "family", "problem", "model", "software", "hardware", "params")
#: Units of the work counters (metrics declare theirs with ``@MetricDefinition(unit=...)``).
COUNTER_UNITS = {"ElapsedMilliseconds": "ms", "TrainingMilliseconds": "ms", "InferenceMilliseconds": "ms",
                 "SamplesSeen": "samples", "Epochs": None, "Flops": "FLOP", "PeakMemoryBytes": "bytes"}
_BETTER = ("lower", "higher")
RankingKind = Literal["score", "comparison", "pareto"]
_UNRANKED_ORDER = {"no value": 0, "running": 1, "DNF": 2}


class RankingError(ValueError):
    """A ranking's own code failed, or returned something that cannot rank, on a given scenario."""


def describe_metrics(results: Any, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"axis", "better", "unit"}}`` for ``names``, with defaults where the store says nothing.

    Stores written before metrics' options were recorded (and plain frames) know nothing:
    a metric is then a precision metric where lower is better, a work counter is work.
    """
    reader = getattr(results, "metric_info", None)
    given: Mapping[str, Any] = (reader() or {}) if callable(reader) else {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        meta = given.get(name) or {}
        counter = name in COUNTERS
        out[name] = {"axis": meta.get("axis") or ("work" if counter else "precision"),
                     "better": meta.get("better") or "lower",
                     "unit": meta.get("unit") or COUNTER_UNITS.get(name)}
    return out


def final_points(results: Results) -> pandas.DataFrame:
    """One row per scenario: its metrics and work counters at its final point, medians over repeats.

    Parameters
    ----------
    results : Results
        The scenarios to rank.

    Returns
    -------
    pandas.DataFrame
        Columns ``identity``, ``label``, ``family``, ``problem``, ``model``, ``software``,
        ``hardware``, ``params`` (a dict), ``status`` (``ok`` when a repeat finished,
        ``running``, or ``DNF``), ``why`` (the first failure of a scenario that is not
        ``ok``), ``n`` (repeats at the final point), ``stage``, ``checkpoint``, ``epoch``,
        then one column per metric (sorted) and per work counter. The final point is the
        last stage's last checkpoint; a metric evaluated only at some checkpoints is taken
        from the last point that has it. ``attrs["metric_info"]`` says each column's axis,
        direction and unit (:func:`pareto` reads it).
    """
    import pandas as pd

    agg = results.aggregate()
    measured = agg[(agg["n"] > 0) & agg["stage"].notna()].sort_values(["identity", "stage", "checkpoint"])
    last = measured.groupby("identity").tail(1).set_index("identity")
    last = last[["n", "stage", "checkpoint", "epoch", *COUNTERS]]
    valued = measured[measured["value_median"].notna() & measured["metric"].notna()]
    metrics = (valued.groupby(["identity", "metric"])["value_median"].last().unstack("metric") if len(valued)
               else pd.DataFrame(index=pd.Index([], name="identity")))
    names = sorted(str(m) for m in metrics.columns)
    scenarios = results.scenarios()
    failures = results.failures().drop_duplicates("identity").set_index("identity")
    scenarios["status"] = ["ok" if ok else "running" if running else "DNF"
                           for ok, running in zip(scenarios["ok"], scenarios["running"])]
    scenarios["why"] = [_why(i, status, failures) for i, status in zip(scenarios["identity"], scenarios["status"])]
    scenarios["label"] = scenarios["label"].fillna(scenarios["identity"])
    out = scenarios[[*INFO, "status", "why"]].set_index("identity").join(last).join(metrics[names])
    out = out.reset_index()[[*INFO, "status", "why", "n", "stage", "checkpoint", "epoch", *names, *COUNTERS]]
    out["n"] = out["n"].fillna(0).astype("int64")
    out = pd.DataFrame(out).reset_index(drop=True)
    out.attrs["metric_info"] = describe_metrics(results, [*names, *COUNTERS])
    return out


def _why(identity: str, status: str, failures: pandas.DataFrame) -> str | None:
    """Why a scenario has no final values: its first failure, in one line."""
    if status != "DNF":
        return None if status == "ok" else "still running"
    if identity not in failures.index:
        return "no repeat finished"
    return f"{failures.loc[identity, 'kind']}: {failures.loc[identity, 'message']}"


# -- calling user code ---------------------------------------------------------------------
class _Row:
    """One scenario as a ranking sees it: ``r.WallTime``, ``r.label``, ``r["Flops"]``; notes what is read."""

    __slots__ = ("_read", "_values")

    def __init__(self, values: Mapping[str, Any], read: list[str]) -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_read", read)

    def __getattr__(self, name: str) -> Any:
        values = self._values
        if name not in values:
            known = ", ".join(k for k in values if k not in ("status", "why"))
            raise AttributeError(f"{name!r} is not a metric, work counter or field of this scenario "
                                 f"(it has: {known})")
        if name not in self._read:
            self._read.append(name)
        value = values[name]
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    __getitem__ = __getattr__

    def __repr__(self) -> str:
        return f"<scenario {self._values.get('label')}>"


@dataclass(frozen=True)
class _UserCode:
    """A ranking function with what is needed to blame the right line when it fails."""

    name: str
    fn: Callable[..., Any]
    module: ParsedModule | None = None

    def call(self, rows: Sequence[_Row], labels: Sequence[str]) -> Any:
        try:
            return self.fn(*rows)
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
                   "r.<WorkCounter>, r.label ...); return a number (score) or a bool (a ranks before b)")
        return RankingError(message)


# -- levels ------------------------------------------------------------------------------
def _levels(n: int, edges: Iterable[tuple[int, int]]) -> tuple[list[int], list[list[int]]]:
    """Level of each of ``n`` entries under "i ranks strictly before j" edges, and the cycles found.

    Entries on a cycle rank before one another, so no order exists between them: each
    cycle is collapsed into one entry (strongly connected components), which makes the
    graph acyclic and the peeling below always terminate.
    """
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    dag = nx.condensation(graph)
    level = [0] * n
    for depth, generation in enumerate(nx.topological_generations(dag), 1):
        for component in generation:
            for member in dag.nodes[component]["members"]:
                level[member] = depth
    cycles = [sorted(dag.nodes[c]["members"]) for c in dag.nodes if len(dag.nodes[c]["members"]) > 1]
    return level, cycles


@dataclass(frozen=True, eq=False)
class Ranking:
    """Scenarios ordered by one ranking.

    Attributes
    ----------
    name : str
        The ranking's name (module, function or ``Pareto(work, precision)``).
    kind : str
        ``score`` (total order), ``comparison`` (partial order) or ``pareto``.
    table : pandas.DataFrame
        ``level`` (1 is best; shared by ties and incomparable scenarios; missing for
        scenarios that were not ranked), ``identity``, ``label``, ``family``, the values the
        ranking used, ``score`` (scores only), ``status`` (``ok``, ``no value``,
        ``running``, ``DNF``) and ``why``; ranked rows first, best first.
    notes : tuple of str
        What the reader should know (cycles in a comparison, scenarios left unranked).
    """

    name: str
    kind: RankingKind
    table: pandas.DataFrame
    notes: tuple[str, ...] = ()

    def _shown(self) -> pandas.DataFrame:
        """The table for reading: no identity (long hex), blank levels and reasons where there are none."""
        shown = self.table.drop(columns=["identity"])
        shown["level"] = shown["level"].astype("object").fillna("")
        return shown.drop(columns=["why"]) if shown["why"].isna().all() else shown.fillna({"why": ""})

    def __repr__(self) -> str:
        shown = self._shown().to_string(index=False, na_rep="", float_format="{:.4g}".format)
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        return f"Ranking {self.name} ({self.kind})\n{shown}{notes}"

    def _repr_html_(self) -> str:
        shown = self._shown().to_html(index=False, na_rep="", float_format="{:.4g}".format)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<div><p><b>{html.escape(self.name)}</b> ({self.kind})</p>"
                f"{f'<ul>{notes}</ul>' if notes else ''}{shown}</div>")


def _check_points(points: pandas.DataFrame) -> pandas.DataFrame:
    if "identity" not in points.columns:
        raise ValueError("a ranking needs one row per scenario with an 'identity' column: pass "
                         "final_points(results), or call rank(results, ...)")
    points = points.reset_index(drop=True).copy()
    for column, default in (("label", points["identity"]), ("family", ""), ("status", "ok"), ("why", None)):
        if column not in points.columns:
            points[column] = default
    return points


def _table(points: pandas.DataFrame, levels: Mapping[int, int], used: Sequence[str], *,
           score: Mapping[int, float] | None = None) -> tuple[pandas.DataFrame, list[str]]:
    """The ranking table, ranked rows first (by level, score, label), and notes on the unranked."""
    import pandas as pd

    shown = [c for c in dict.fromkeys(used) if c in points.columns and c not in (*INFO, "status", "why")]
    table = points[["identity", "label", "family", *shown]].copy()
    table.insert(0, "level", pd.array([levels.get(i) for i in range(len(points))], dtype="Int64"))
    if score is not None:
        table["score"] = [score.get(i, math.nan) for i in range(len(points))]
    status = [s if s != "ok" or i in levels else "no value" for i, s in enumerate(points["status"])]
    table["status"], table["why"] = status, points["why"]
    table["_order"] = [_UNRANKED_ORDER.get(s, -1) for s in status]
    keys = ["_order", "level", *(["score"] if score is not None else []), "label"]
    table = table.sort_values(keys, na_position="last", kind="stable").drop(columns="_order")
    notes = [f"{count} scenario{'s' * (count > 1)} {what}: no level" for what, count in
             (("did not finish", status.count("DNF")), ("still running", status.count("running")),
              ("gave no value", status.count("no value"))) if count]
    return table.reset_index(drop=True), notes


def _rows(points: pandas.DataFrame, read: list[str]) -> dict[int, tuple[_Row, str]]:
    """The rows a ranking sees, with their labels: finished scenarios only (a DNF has no final values)."""
    return {i: (_Row(record, read), str(record["label"])) for i, record in enumerate(points.to_dict("records"))
            if record["status"] == "ok"}


def _score(code: _UserCode, points: pandas.DataFrame, better: str) -> Ranking:
    if better not in _BETTER:
        raise ValueError(f"better={better!r}: a score is better when 'lower' or 'higher'")
    points, read = _check_points(points), list[str]()
    scores: dict[int, float] = {}
    for i, (row, label) in _rows(points, read).items():
        value = code.call([row], [label])
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise code.error(f"returned {type(value).__name__} {value!r}, not a number", [label]) from None
        if not math.isnan(number):
            scores[i] = number
    table, notes = _table(points, _dense_levels(scores, better), read, score=scores)
    return Ranking(code.name, "score", table, tuple(notes))


def _dense_levels(scores: Mapping[int, float], better: str) -> dict[int, int]:
    """Levels of scores: the best is 1, ties share a level and the next level is one more."""
    order = {value: level for level, value in enumerate(sorted(set(scores.values()), reverse=better == "higher"), 1)}
    return {i: order[s] for i, s in scores.items()}


def _comparison(code: _UserCode, points: pandas.DataFrame) -> Ranking:
    points, read = _check_points(points), list[str]()
    rows = _rows(points, read)
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
    levels, cycles = _levels(len(index), [(position[i], position[j]) for i, j in strict])
    notes = [f"{', '.join(str(points['label'][index[k]]) for k in cycle)} rank before one another in a cycle "
             f"(the relation is not transitive); they share level {levels[cycle[0]]}" for cycle in cycles]
    table, more = _table(points, {index[k]: level for k, level in enumerate(levels)}, read)
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


def rank(results: Results, ranking: str | tuple[str, ...] | Callable[..., Any],
         repository: Repository | None = None, *, trust: bool = False) -> Ranking:
    """Rank the scenarios of ``results`` by a ranking module, a function, or Pareto fronts.

    Parameters
    ----------
    results : Results
        The scenarios; each is ranked by its final point (:func:`final_points`).
    ranking : str, tuple or callable
        A ``@RankingDefinition`` module's name; a function of one row (a score, lower is
        better) or of two (a comparison); ``"pareto"`` or ``("pareto", work, precision)``
        (defaults: the first work metric or ``ElapsedMilliseconds``, the first precision metric);
        ``("target", precision, value)`` or ``("target", precision, value, work)``: the least work
        at which ``precision`` reaches ``value``, over every checkpoint (:func:`time_to_target`).
    repository : Repository, optional
        Where ranking modules are found (the modules you loaded or wrote in cells).
    trust : bool
        Without a ``repository``, run the ranking module's code the store kept for these
        scenarios. A store is a file that may come from anyone, and running its code is
        running a program: never done unless asked for (default False).

    Raises
    ------
    ValueError
        For an unknown ranking name (the message lists the known ones), Pareto axes the
        results lack, or a ranking module asked for by name with neither a ``repository``
        nor ``trust=True`` (the store's code is not run; the message says so).
    RankingError
        When the ranking's code fails: the message names the module, its line and the scenario.
    """
    if isinstance(ranking, tuple) and ranking[:1] == ("target",) and len(ranking) in (3, 4):
        from ._target import time_to_target

        _, precision, value, *work = ranking
        return time_to_target(results, str(precision), float(value), *work)
    from ._pareto import pareto, pareto_axes

    points = final_points(results)
    if ranking == "pareto" or (isinstance(ranking, tuple) and ranking[:1] == ("pareto",)):
        axes = [*ranking[1:3], None, None][:2] if isinstance(ranking, tuple) else [None, None]
        return pareto(points, *pareto_axes(points, axes[0], axes[1]))
    if isinstance(ranking, str):
        module, fn = _module(results, ranking, repository, trust)
        code = _UserCode(module.name, fn, module)
        if len(module.params) == 2:
            return _comparison(code, points)
        return _score(code, points, str(module.options.get("better", "lower")))
    if callable(ranking):
        arity = len([p for p in inspect.signature(ranking).parameters.values() if p.default is p.empty])
        if arity not in (1, 2):
            raise ValueError(f"a ranking function takes one scenario (a score) or two (a comparison), not {arity}")
        return (rank_scores if arity == 1 else rank_comparison)(points, ranking)
    raise TypeError(f"ranking={ranking!r}: pass a ranking module's name, a function, ('pareto', work, precision) "
                    "or ('target', precision, value)")


def _module(results: Results, name: str, repository: Repository | None,
            trust: bool) -> tuple[ParsedModule, Callable[..., Any]]:
    """The ranking module called ``name``, compiled the way the runtime compiles modules."""
    from ..runtime._execution_namespace import ExecutionNamespace
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
