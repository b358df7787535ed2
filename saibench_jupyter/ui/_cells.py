"""Reading a cell's text before the parser does, and telling SAIL errors by the cell's line.

The notebook finds which cell a text replaces, and checks that a ``%%model`` cell holds
models, from the names and decorators of its top level; SAIL errors located in a cell
become :class:`NotebookError` quoting the cell line, with a caret and the fix.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..sail import decorator_name
from ..sail._decorators import DECORATORS, ModuleKind
from ..sail._errors import SailError, source_filename


class NotebookError(Exception):
    """A mistake in a cell or a request, told with the cell line (when there is one) and the fix.

    Parameters
    ----------
    message : str
        What is wrong, where and how to fix it.
    line : int, optional
        The line of the cell (the ``%%model`` line is line 1).
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class CellScan:
    """What a cell's top level defines, read before the parser runs (to find the cell, to check kinds)."""

    kinds: Mapping[str, tuple[ModuleKind, int]] = field(default_factory=dict)  # name -> (kind, decorator line)
    #: top-level function names (modules among them)
    functions: frozenset[str] = frozenset()
    #: support names other than imports (imports are shared by many cells)
    defined: frozenset[str] = frozenset()
    #: False when the text is not valid Python (names were found line by line, kinds not at all)
    valid: bool = True


_TOP_DEF = re.compile(r"^(?:async\s+)?(def|class)\s+(\w+)|^(\w+)\s*(?::[^=\n]*)?=[^=]", re.MULTILINE)


def scan_cell(text: str, line_offset: int) -> CellScan:
    """Module kinds and names of a cell's top level (names only, line by line, when it does not parse)."""
    try:
        tree = ast.parse(text, filename=source_filename("scan"))
    except (SyntaxError, ValueError):
        # The parser reports the error; the names still tell which cell this is.
        found = [(m[1], m[2] or m[3]) for m in _TOP_DEF.finditer(text)]
        return CellScan(functions=frozenset(n for what, n in found if what == "def"),
                      defined=frozenset(n for what, n in found if what != "def"), valid=False)
    kinds: dict[str, tuple[ModuleKind, int]] = {}
    functions: set[str] = set()
    defined: set[str] = set()
    for stmt in tree.body:
        decorators = [(d, decorator_name(d)) for d in getattr(stmt, "decorator_list", [])]
        sail = [(d, DECORATORS[n]) for d, n in decorators if n in DECORATORS]
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.add(stmt.name)
        if isinstance(stmt, ast.FunctionDef) and sail:
            kinds[stmt.name] = (sail[0][1], sail[0][0].lineno + line_offset)  # the cell's line
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(stmt.name)
        elif not isinstance(stmt, ast.Import | ast.ImportFrom):
            defined.update(n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return CellScan(kinds, frozenset(functions), frozenset(defined))


def cell_error(exc: SailError, origin: str, kind: str, source: str) -> NotebookError:
    """A SAIL error in a cell, told by the cell's line number (quoting the rejected ``source``)."""
    loc = exc.location
    if loc is None or loc.origin != origin or not loc.line:
        return NotebookError(str(exc))
    text = f"line {loc.line} of this %%{kind} cell: {exc.what}"
    if exc.module:
        text += f" (module {exc.module})"
    lines = source.splitlines()
    # Not linecache: the repository put the version that stays in use back there.
    code = lines[loc.line - 1] if loc.line <= len(lines) else ""
    if code.strip():
        stripped = code.lstrip()
        text += f"\n    {loc.line} | {stripped}"
        indent = len(code) - len(stripped)
        if loc.col >= indent:
            text += "\n    " + " " * (len(str(loc.line)) + 3 + loc.col - indent) + "^"
    if exc.fix:
        text += f"\n  fix: {exc.fix}"
    return NotebookError(text, loc.line)
