"""Errors of the SAIL language: each one shows the bad code, why it is wrong and the fix."""

from __future__ import annotations

import linecache
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a piece of SAIL code lives.

    Parameters
    ----------
    origin : str
        The file path, cell id or other name of the source the code came from.
    line : int
        1-based line number in that source (0 when unknown).
    col : int
        0-based column (only used to place the caret).
    """

    origin: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.origin}, line {self.line}" if self.line else self.origin


def source_filename(origin: str) -> str:
    """The pseudo file name SAIL code of ``origin`` is compiled under (shown in tracebacks)."""
    return f"<sail {origin}>"


def source_origin(filename: str) -> str | None:
    """The origin whose SAIL code a frame of ``filename`` runs (None: not SAIL code); see :func:`source_filename`."""
    return filename[len("<sail ") : -1] if filename.startswith("<sail ") else None


def traceback_frames(exc: BaseException) -> list[tuple[str, int]]:
    """``(file name, line)`` of every frame in the traceback of ``exc``, outermost first."""
    out = []
    tb = exc.__traceback__
    while tb is not None:
        out.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    return out


def deepest_line(exc: BaseException, filename: str) -> int:
    """The deepest line of the code of ``filename`` in the traceback of ``exc`` (0 when none is there)."""
    return next((line for name, line in reversed(traceback_frames(exc)) if name == filename), 0)


def traceback_line(exc: BaseException, origin: str) -> int:
    """The deepest line of ``origin``'s SAIL code in the traceback of ``exc`` (0 when none is there)."""
    return deepest_line(exc, source_filename(origin))


def register_source(origin: str, text: str) -> None:
    """Make ``linecache`` (and so tracebacks and our errors) able to show lines of ``text``."""
    lines = text.splitlines(keepends=True)
    linecache.cache[source_filename(origin)] = (len(text), None, lines, source_filename(origin))


def code_line(origin: str, line: int) -> str:
    """The source line ``line`` of ``origin`` as registered, or ``""``."""
    return linecache.getline(source_filename(origin), line).rstrip("\n") if line else ""


class SailError(Exception):
    """A problem with SAIL code, told as *where*, *what*, *why* and *how to fix it*.

    Parameters
    ----------
    what : str
        One line saying what is wrong.
    module : str, optional
        Name of the module the problem is in.
    location : Location, optional
        Source position of the bad code.
    fix : str, optional
        What to change.
    """

    def __init__(
        self,
        what: str,
        *,
        module: str | None = None,
        location: Location | None = None,
        fix: str | None = None,
    ) -> None:
        self.what = what
        self.module = module
        self.location = location
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        head = self.what
        where = []
        if self.module:
            where.append(f"module {self.module}")
        if self.location is not None:
            where.append(str(self.location))
        if where:
            head = f"{head}\n  in {' ('.join(where)}{')' if len(where) > 1 else ''}"
        text = head
        if self.location is not None and self.location.line:
            line = code_line(self.location.origin, self.location.line)
            if line:
                stripped = line.lstrip()
                indent = len(line) - len(stripped)
                text += f"\n    {self.location.line} | {stripped}"
                if self.location.col >= indent:
                    pad = len(str(self.location.line)) + 3 + self.location.col - indent
                    text += "\n    " + " " * pad + "^"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keyword-only constructor: pickling (pods, Dask) needs an explicit recipe.
        return (_rebuild, (type(self), self.what, self.module, self.location, self.fix))


def _rebuild(
    cls: type[SailError], what: str, module: str | None, location: Location | None, fix: str | None
) -> SailError:
    return cls(what, module=module, location=location, fix=fix)


#: The fix for a name that no source defines (said by the dry run and by discovery).
UNKNOWN_NAME_FIX = "define it in this source or in a %%sail support cell, or import it there"


class SailSyntaxError(SailError):
    """The source is not valid Python, or not valid SAIL (a bad decorator, signature, option)."""


class SailNameError(SailError):
    """A module uses a name that is defined nowhere it can see."""


class DryRunError(SailError):
    """A module raised while being dry-run during discovery."""


class DryRunTimeout(DryRunError):
    """A module's dry run did not finish within the time limit (usually an endless loop)."""


class RequireCycleError(SailError):
    """Model composition went round in a circle (or deeper than the depth limit)."""


class GraphError(SailError):
    """A model's graph does not type-check (shapes, widths, conversions)."""


class NoContextError(SailError):
    """A SAIL primitive was used outside a dry run or an execution."""


class ModuleFailed(Exception):
    """Raised by ``Fail(reason)``: the module declines the current context.

    This is not an error: the planner keeps ``reason`` and shows it as a rejection.
    """

    def __init__(self, reason: str) -> None:
        self.reason = str(reason)
        super().__init__(self.reason)
