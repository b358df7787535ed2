"""Reading a cell's text before the parser does, and telling SAIL errors by the cell's line.

The notebook finds which cell a text replaces, and checks that a ``%%model`` cell holds
models (:func:`check_kinds`), from the names and decorators of its top level; SAIL errors
located in a cell become :class:`NotebookError` quoting the cell line, with a caret and the
fix. What a cell registered comes back as :class:`Registered`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Container, Mapping, Sequence, Set
from dataclasses import dataclass, field

from ..repository import ModuleRecord
from ..sail import DECORATOR_OF, DECORATORS, ModuleKind, SailError, decorator_name, source_filename


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


class Registered(list[ModuleRecord]):
    """The module records one cell registered, with what changed and the warnings.

    A plain list of records, plus ``origin`` (the cell's identity), ``changes``
    (``{name: "new" | "changed" | "unchanged"}``), ``removed`` (names the cell no longer
    defines) and ``warnings`` (one line each, with the cell line and the fix).
    """

    def __init__(self, records: Sequence[ModuleRecord], origin: str, changes: Mapping[str, str],
                 removed: Sequence[str], warnings: Sequence[str]) -> None:
        super().__init__(records)
        self.origin = origin
        self.changes = dict(changes)
        self.removed = tuple(removed)
        self.warnings = tuple(warnings)

    def summary(self) -> str:
        """One line: ``MLP (new), CNN (changed); removed Old — <cell 5f3a1b2c>``."""
        text = ", ".join(f"{name} ({change})" for name, change in self.changes.items()) or "support code"
        return text + (f"; removed {', '.join(self.removed)}" if self.removed else "") + f" — {self.origin}"


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


#: Names IPython puts in every user namespace: never "defined in the notebook" by the user.
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit"})
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


def check_kinds(kind: str, found: CellScan, source: str) -> None:
    """Refuse a ``%%kind`` cell holding a module of another kind, or no module of its kind.

    ``%%sail`` cells take modules of every kind. ``source`` is the cell as registered, its
    lines numbered as the cell shows them (quoted in the error).

    Raises
    ------
    NotebookError
        With the cell line and the fix; nothing is registered then.
    """
    if kind == "sail":
        return
    lines = source.splitlines()
    for name, (other, line) in found.kinds.items():
        if other.value != kind:
            raise NotebookError(
                f"line {line} of this %%{kind} cell: {name} is a @{DECORATOR_OF[other]}, "
                f"not a @{DECORATOR_OF[ModuleKind(kind)]}\n    {line} | {lines[line - 1].strip()}\n"
                f"  fix: move {name} into a %%{other.value} cell (or a %%sail cell, which takes modules "
                f"of every kind), or decorate it with @{DECORATOR_OF[ModuleKind(kind)]}; nothing was registered",
                line)
    if not found.kinds:
        deco = DECORATOR_OF[ModuleKind(kind)]
        raise NotebookError(
            f"this %%{kind} cell defines no @{deco} module\n  fix: decorate a function with @{deco}; "
            "support code alone (helpers, imports, constants) goes in a %%sail cell; nothing was registered")


def unsupported_names(records: Sequence[ModuleRecord], support: Set[str], user_ns: Container[str]) -> list[str]:
    """Warnings for names modules read that no %%sail cell defines (``support``): the notebook's
    (``user_ns``: pods never see them), or nobody's yet (a %%sail cell run later may define them;
    discovery rejects the module till then). One line each, with the cell line and the fix.
    """
    out = []
    for record in records:
        missing = [n for n in record.free_names - support if n not in user_ns
                   or (not n.startswith("_") and n not in _IPYTHON_NAMES)]
        for name in sorted(missing, key=lambda n: record.name_sites.get(n, (0, 0))):
            line = record.name_sites.get(name, (record.line, 0))[0]
            out.append(f"line {line} ({record.name}): `{name}` is defined in the notebook, not in a %%sail "
                       f"cell: pods won't see it; move it into a %%sail cell" if name in user_ns else
                       f"line {line} ({record.name}): unknown name `{name}`: no %%sail cell defines it; "
                       f"discovery rejects {record.name} until one does")
    return out
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
