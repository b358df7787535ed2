"""Who failed: an exception of a run becomes a :class:`RunError` naming the module and line that raised it.

The traceback is read from the outside in. Once it enters a backend (the trainer training
or running the model), what fails further in is the model's work: the deepest line of
SAIL code there (a converter's, or the model's own code such as a ``torch.nn.Module``'s
``forward`` or an estimator's ``fit`` written in the model's source) is the site; with no
SAIL code there (a library the model wraps raised), the model itself is named. Outside a
backend, the deepest line of SAIL code is the site, as before: the problem's own lines,
or a support function it called (then named after the module that called it). The full
traceback is kept with the error.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..sail import Location, ModuleFailed, SailError, source_origin, traceback_frames
from ._result import RunError

if TYPE_CHECKING:
    from ..planner import ModelChoice
    from ..repository import Repository

#: Source files of the backends: a frame there means the model is being trained or run.
_BACKENDS = str(Path(__file__).resolve().parents[1] / "backends") + os.sep
#: Where a failed run's details are (the error's ``traceback``; a stored failure's ``traceback`` column).
_SEE_TRACEBACK = "the traceback shows how the run got there"


def run_error(exc: BaseException, repo: Repository, stage: int | None, checkpoint: int | None,
              model: ModelChoice | None = None) -> RunError:
    """A :class:`RunError` for ``exc``: the module, file or cell and line that raised it, and its traceback.

    Parameters
    ----------
    exc : BaseException
        What the run raised.
    repo : Repository
        The repository whose modules the run executed (to name a module from a line).
    stage, checkpoint : int, optional
        Where in the run it happened.
    model : ModelChoice, optional
        The scenario's model (with its sub-models), blamed for what fails inside a backend.
    """
    tb = "".join(traceback.format_exception(exc))
    location, module = blame(exc, repo, model)
    if isinstance(exc, ModuleFailed):
        return RunError(f"{module or 'a module'} failed at execution: {exc.reason}", module, location, stage,
                        checkpoint, fix="a module must accept at execution what it accepted during discovery",
                        traceback=tb)
    if isinstance(exc, MemoryError):
        return RunError(f"out of memory: {exc}", module, location, stage, checkpoint, kind="memory",
                        fix="raise the memory limit (Resources(memory=...) or run(memory=...)), "
                        "or use smaller batches or models", traceback=tb)
    if isinstance(exc, SailError):
        return RunError(exc.what, exc.module or module, exc.location or location, stage, checkpoint, fix=exc.fix,
                        traceback=tb)
    what = f"{type(exc).__name__}: {exc}"
    if module is None:
        return RunError(what, None, location, stage, checkpoint, kind="internal" if location is None else "error",
                        fix="this looks like a bug in SAIBench: please report it with the traceback"
                        if location is None else f"correct the code where it raised; {_SEE_TRACEBACK}", traceback=tb)
    return RunError(what, module, location, stage, checkpoint,
                    fix=f"correct {module} where it raised; {_SEE_TRACEBACK}", traceback=tb)


def blame(exc: BaseException, repo: Repository, model: ModelChoice | None = None
          ) -> tuple[Location | None, str | None]:
    """The line that raised ``exc`` and the module it belongs to (see the module's docstring)."""
    frames = _frames(exc)
    entry = next((i for i, (name, _) in enumerate(frames) if name.startswith(_BACKENDS)), None)
    if entry is not None and model is not None:
        sites = _sites(frames[entry:])
        if not sites:  # a library the model wraps raised (or the backend, running it)
            return model.module.location, model.name
        site = sites[-1]
        owner = _module_at(repo, site)
        if owner is None:  # support code of a source: the model (or sub-model) written there
            owners = [c.name for _, c in model.walk() if c.module.origin == site.origin]
            owner = owners[0] if owners else model.name
        return site, owner
    sites = _sites(frames)
    if not sites:
        return None, None
    # Support code a module called: named after the deepest module on the way there.
    owner = next((m for m in (_module_at(repo, s) for s in reversed(sites)) if m is not None), None)
    return sites[-1], owner


def _frames(exc: BaseException) -> list[tuple[str, int]]:
    """``(file, line)`` of every frame, outermost first; real files as resolved paths (to compare with ours)."""
    return [(name if name.startswith("<") else os.path.realpath(name), line) for name, line in traceback_frames(exc)]


def _sites(frames: list[tuple[str, int]]) -> list[Location]:
    """The frames that run SAIL code (compiled under ``<sail origin>``), as locations."""
    return [Location(origin, line) for origin, line in ((source_origin(name), line) for name, line in frames)
            if origin is not None]


def _module_at(repo: Repository, site: Location) -> str | None:
    modules: Any = repo.modules()
    return next((m.name for m in modules if m.origin == site.origin and m.line <= site.line <= m.end_line), None)
