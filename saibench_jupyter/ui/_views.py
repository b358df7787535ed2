"""The values notebook commands return: module lists, explanations, and values with the store's warnings.

Each shows itself in a notebook (text, and HTML where a table helps); their displays are
in ``_formatting``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..common import doc_summary
from ..repository import ModuleRecord
from ._formatting import module_list_html, module_list_text

_T = TypeVar("_T")


@dataclass(frozen=True)
class ModuleList:
    """Registered modules (and support-code sources), displayed as a table."""

    records: tuple[ModuleRecord, ...]
    #: support code by origin: the names it defines
    support: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ModuleRecord]:
        return iter(self.records)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """``(kind, name, parameters, where, summary)`` per module, then per support source.

        The summary is the first paragraph of the module's docstring.
        """
        out = [(r.kind.value, r.name, ", ".join(r.params), f"{r.origin}, line {r.line}", doc_summary(r.doc))
               for r in self.records]
        out += [("support", ", ".join(sorted(names)), "", origin, "") for origin, names in self.support.items()]
        return out

    def __repr__(self) -> str:
        return module_list_text(self)

    def _repr_html_(self) -> str:
        return module_list_html(self)


class Explanation(str):
    """Why modules do, or do not, form scenarios (``Lattice.explain``): text that displays as itself."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True)
class WithWarnings(Generic[_T]):
    """What a command made from the results store, and the store's metric warnings to show beside it.

    ``warnings`` are ``Results.warning_lines()``: which metrics failed in which share of
    pods, so that a chart or a ranking missing a metric's values says why.
    """

    value: _T
    warnings: tuple[str, ...] = ()
