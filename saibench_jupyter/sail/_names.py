"""Unknown names in modules, told with "did you mean": what catches ``Tanhh()`` and ``Linaer(8)``.

A module's free names (:attr:`ParsedModule.free_names`: global names it reads that are
neither SAIL names nor builtins) must be defined by support code. The repository checks
them when a source is added, so that a misspelt name is refused at the cell, and the
planner when it discovers; both say it the same way, through :func:`unknown_name`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable

from ._errors import UNKNOWN_NAME_FIX, Location, SailNameError
from ._namespace import sail_names
from ._parser import ParsedModule

#: How alike (difflib's ratio, case ignored) an unknown name must be to a known one to
#: count as its misspelling: one wrong, missing, extra or swapped letter in a name of
#: five letters or more (``Tanhh`` 0.89, ``Linaer`` 0.83), not ``x2`` beside ``x`` (0.67)
#: nor ``halve`` beside ``Solve`` (0.6).
TYPO_CUTOFF = 0.8


def did_you_mean(name: str, known: Iterable[str], cutoff: float = TYPO_CUTOFF) -> str | None:
    """The known name ``name`` most likely misspells (SAIL's and Python's names included), or None.

    Case is ignored when comparing, so ``ReLU`` finds ``Relu``.
    """
    by_lower: dict[str, str] = {}
    for n in (*known, *sail_names(), *dir(builtins)):
        if not n.startswith("_") and n != name:
            by_lower.setdefault(n.lower(), n)
    import difflib  # only for a name that is unknown

    found = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def unknown_names(module: ParsedModule, defined: frozenset[str] | set[str]) -> list[str]:
    """The free names of ``module`` that ``defined`` (support names) lacks, in the order they are used."""
    missing = module.free_names - defined
    return sorted(missing, key=lambda n: module.name_sites.get(n, (module.line, 0)))


def unknown_name(module: ParsedModule, name: str, known: Iterable[str]) -> SailNameError:
    """The error for ``name``, unknown in ``module``: where it is first used, and what it may misspell.

    ``known`` are the support names that are defined (SAIL's and Python's are added).
    """
    line, col = module.name_sites.get(name, (module.line, 0))
    guess = did_you_mean(name, known)
    what = f"unknown name {name!r}" + (f" (did you mean {guess!r}?)" if guess else "")
    fix = f"write {guess}, or {UNKNOWN_NAME_FIX}" if guess else UNKNOWN_NAME_FIX
    return SailNameError(what, module=module.name, location=Location(module.origin, line, col), fix=fix)


def misspelt_name(module: ParsedModule, defined: frozenset[str] | set[str]) -> SailNameError | None:
    """The error for the first unknown name of ``module`` that looks like a misspelling, or None.

    A name close to no known one may be defined by a source not added yet: only discovery,
    which sees every source, calls it unknown.
    """
    for name in unknown_names(module, defined):
        if did_you_mean(name, defined) is not None:
            return unknown_name(module, name, defined)
    return None
