"""The globals SAIL modules run with at execution: SAIL's names plus support code, run for real.

Discovery never runs support code (modules see opaque placeholders); execution does,
once per run, with every source's support statements compiled under the source's own
name and line numbers, so a traceback points at the user's line. Type and capability
declarations are not run again: the repository's classes are reused, so ``Require``
and ``Provides`` keep matching the classes discovery matched.

Compiling is done once per source text (a pure function of it, kept in a small cache);
running is done per namespace. A warm worker builds one namespace for all the pods it
forks, each of which gets its own copy-on-write image of it.
"""

from __future__ import annotations

import ast
import functools
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..sail import (
    DECORATORS,
    DatasetProvider,
    Location,
    ParsedModule,
    ParsedSource,
    SailError,
    decorator_name,
    namespace,
    registered_datasets,
    restore_datasets,
    source_filename,
    traceback_line,
)
from ..sail import module_site as module_site

if TYPE_CHECKING:
    from ..repository import Repository


class SupportCodeError(SailError):
    """Support code (imports, helpers, constants) failed when run for execution."""


@functools.lru_cache(maxsize=64)
def _support_code(origin: str, text: str, declared: frozenset[str]) -> types.CodeType | None:
    """The support statements of a source, compiled under its name (None: it has none)."""
    tree = ast.parse(text, filename=source_filename(origin))
    keep = []
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and any(decorator_name(d) in DECORATORS
                                                     for d in stmt.decorator_list):
            continue  # a module: compiled from its parsed record instead
        if isinstance(stmt, ast.ClassDef) and stmt.name in declared:
            continue  # a declaration: the repository's class is reused
        keep.append(stmt)
    if not keep:
        return None
    return compile(ast.Module(body=keep, type_ignores=[]), source_filename(origin), "exec", dont_inherit=True)


class ExecutionNamespace:
    """SAIL's names, every source's support code and declarations: what modules run with.

    Parameters
    ----------
    sources : mapping
        The repository's sources by origin.
    """

    def __init__(self, sources: Mapping[str, ParsedSource]) -> None:
        self.globals: dict[str, Any] = namespace()
        for source in sources.values():
            self.globals.update(source.declarations)
        for source in sources.values():
            self._run_support(source)
        #: the dataset providers as this support code left them registered
        self.datasets: dict[str, DatasetProvider] = registered_datasets()

    def activate(self) -> None:
        """Register the dataset providers again as this namespace's support code left them.

        A process that built namespaces for other sources since (a warm worker serving
        several runs) may hold another source's provider under the same name.
        """
        restore_datasets(self.datasets)

    @classmethod
    def of(cls, repo: Repository) -> ExecutionNamespace:
        """The namespace of everything ``repo`` holds."""
        return cls(repo.sources())

    def _run_support(self, source: ParsedSource) -> None:
        code = _support_code(source.origin, source.text, frozenset(source.declarations))
        if code is None:
            return
        try:
            exec(code, self.globals)
        except Exception as exc:
            line = traceback_line(exc, source.origin)
            raise SupportCodeError(
                f"the support code of {source.origin} raised {type(exc).__name__}: {exc}",
                location=Location(source.origin, line) if line else None,
                fix="support code runs once before the problem; make it importable here "
                "(installed packages, files next to the source)",
            ) from exc

    def function(self, module: ParsedModule) -> types.FunctionType:
        """The module's function, defined in this namespace (its body is not run)."""
        shadowed = self.globals.get(module.name)
        exec(module.code, self.globals)
        fn = self.globals.pop(module.name)
        # Module names are not names in SAIL: inside the converter Concat, Concat is the primitive.
        if shadowed is not None:
            self.globals[module.name] = shadowed
        return fn  # type: ignore[no-any-return]

