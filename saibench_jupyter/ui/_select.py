"""Selectors: which scenarios ``%sail run Digits model=MLP,CNN rtol=1e-6`` names.

A selector is words separated by spaces, all of which must match a scenario:

* a scenario id (ids select exactly those scenarios);
* a module name of any role (``MLP``);
* ``role=Name[,Name]`` (``model=MLP,CNN``);
* ``param=value[,value]``: a parameter of any module in the scenario (a ``Suggest`` grid
  value), compared as a Python literal, so ``rtol=1e-6`` matches ``1e-06`` and
  ``width=64`` matches ``64`` but not ``"64"``. A parameter that no scenario varies but a
  module binds by default (``tightest=1e-5``) is set instead: discovery runs again with
  those values (``discover(params=...)``), and the scenarios that have them are selected.

On a Dask cluster (:func:`on_cluster`) a selection keeps the scenarios whose hardware a worker offers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..common import literal
from ._cells import NotebookError

if TYPE_CHECKING:
    from ..planner import Lattice, Scenario
    from ..repository import Repository

ROLES = ("problem", "model", "software", "hardware", "metric", "ranking")


def _param_names(key: str) -> tuple[str, str]:
    """A parameter key (``MLP.hiddenSize``) and its bare name (``hiddenSize``): a selector may use either."""
    return key, key.rsplit(".", 1)[-1]


def _param_values(scenario: Scenario, name: str) -> list[Any]:
    return [value for key, value in scenario.params.items() if name in _param_names(key)]


def _defaults(repository: Repository) -> set[str]:
    """The parameters modules bind by default, by bare and qualified name (``tightest``, ``ODERK45.tightest``)."""
    return {key for module in repository for name in module.defaults for key in (name, f"{module.name}.{name}")}


def _settable(defaults: set[str], most: int = 6) -> str:
    names = sorted(d for d in defaults if "." not in d)
    if not names:
        return ""
    more = ", ..." if len(names) > most else ""
    return f"; or set a parameter bound by default: {', '.join(f'{n}=VALUE' for n in names[:most])}{more}"


def _matches(value: Any, wanted: Iterable[Any]) -> bool:
    # ``True == 1`` in Python; a selector that says 1 means the number.
    return any(value == w and isinstance(value, bool) == isinstance(w, bool) for w in wanted)


def select(lattice: Lattice, repository: Repository, selector: str | Sequence[str] | None = None) -> list[Scenario]:
    """The scenarios of ``lattice`` that ``selector`` names (every one when it is empty).

    Raises
    ------
    NotebookError
        When the lattice is empty, a word names nothing, or nothing matches; each with the fix.
    """
    if not lattice.scenarios:
        raise NotebookError("nothing to run: discovery found no scenario\n  fix: %sail discover shows why "
                            "(every rejection with its reason); define the missing modules")
    words = selector.split() if isinstance(selector, str) else list(selector or ())
    ids = {s.id for s in lattice.scenarios}
    names = [w for w in words if w not in ids and "=" not in w]
    roles: dict[str, set[str]] = {}
    params: dict[str, list[Any]] = {}
    bare = sorted({_param_names(k)[1] for s in lattice.scenarios for k in s.params})
    known_params = {p for s in lattice.scenarios for k in s.params for p in _param_names(k)}
    defaults = _defaults(repository)
    overrides: dict[str, list[Any]] = {}
    for key, _, value in (w.partition("=") for w in words if w not in ids and "=" in w):
        values = [v for v in value.split(",") if v]
        if key in ROLES:
            roles.setdefault(key, set()).update(values)
        elif key in known_params or key in defaults:
            params.setdefault(key, []).extend(literal(v) for v in values)
            if key not in known_params:
                overrides[key] = params[key]
        else:
            raise NotebookError(
                f"{key}={value}: {key!r} is neither a role nor a parameter of any module\n  fix: filter with "
                + ", ".join(f"{r}=NAME" for r in ROLES)
                + (f", or a parameter: {', '.join(f'{p}=VALUE' for p in bare)}" if bare else "")
                + _settable(defaults))
    if overrides:
        from ..planner import discover

        lattice = discover(repository, params=overrides)
    wanted = [*names, *(v for vs in roles.values() for v in sorted(vs))]
    unknown = [n for n in wanted if n not in repository]
    if unknown:
        known = ", ".join(r.name for r in repository) or "none are registered yet"
        raise NotebookError(f"there is no module or scenario {unknown[0]!r}\n  fix: use a module name "
                            f"({known}) or a scenario id from %sail discover")
    chosen = [s for s in lattice.scenarios if (s.id in words or not ids & set(words))
              and all(any(n in have for have in s.names().values()) for n in names)
              and all(s.names()[role] & want for role, want in roles.items())
              and all(any(_matches(v, want) for v in _param_values(s, p)) for p, want in params.items())]
    if not chosen:
        hint = f"%sail explain {' '.join(wanted)} says why" if wanted else "%sail discover lists the scenarios"
        if params:
            seen = {p: sorted({repr(v) for s in lattice.scenarios for v in _param_values(s, p)}) for p in params}
            hint += "; the parameters take " + "; ".join(f"{p} in {', '.join(vs)}" for p, vs in seen.items())
        raise NotebookError(f"{' '.join(words)} selects no scenario\n  fix: {hint}")
    return chosen


def on_cluster(scenarios: list[Scenario], repository: Repository, scheduler: Any, workers: int) -> list[Scenario]:
    """The ``scenarios`` whose hardware a worker of the Dask cluster offers (the others are said on stderr, not run).

    Raises
    ------
    NotebookError
        When the cluster cannot be reached, or offers the hardware of none of them.
    """
    from ..planner import discover
    from ..pods import ClusterError, cluster_machine

    try:
        machine = cluster_machine(scheduler, workers)
    except ClusterError as exc:
        raise NotebookError(str(exc)) from None
    lattice = discover(repository, machine=machine)  # discovery checks hardware against the cluster's workers
    fits = {s.id for s in lattice.scenarios}
    rows = lattice.rejection_rows(expected=False)
    why = {r.module: f"hardware {r.module}: {r.reason}" for r in rows if r.kind == "hardware"}
    left = [f"{s.label}: {why.get(s.hardware, 'its hardware')}" for s in scenarios if s.id not in fits]
    kept = [s for s in scenarios if s.id in fits]
    if not kept:
        raise NotebookError("no selected scenario can run on the Dask cluster:\n  " + "\n  ".join(left)
                            + "\n  fix: add workers that offer this hardware, or select other scenarios")
    for line in left:
        print(f"saibench: not run on the Dask cluster: {line}", file=sys.stderr)
    return kept
