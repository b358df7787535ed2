"""The probe process: where dry runs and declarations run first, so that a stuck one can be killed.

:mod:`._probe` starts it (``python -c "...; main()"``) and talks to it over two pipes,
one pickled message per frame. It keeps a mirror of the repository's sources (parsed
here, so declared types are its own classes) and answers each request with a short
*verdict* ``(kind, line, detail)``: ``ok`` when the code finished within its limit (the
caller then runs it again in its own process, where objects keep their identity),
``timeout`` when the deadline stopped Python code at ``line``, ``raised`` when it raised
what only ends processes (``detail``: ``"SystemExit: 4"``; ``KeyboardInterrupt`` too: in
this process no user can press Ctrl-C), ``unvetted`` (``detail``: why) when the request
could not be tried here, ``unknown`` when it names a module this process lacks.

What a verdict cannot say, its parent sees: no answer within the limit (stuck in C code,
where no deadline lands: the parent asks :mod:`faulthandler` for the stack with SIGUSR1,
then kills) or no process at all (``os._exit``, a crash).
"""

from __future__ import annotations

import ast
import faulthandler
import math
import os
import pickle
import select
import signal
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from ..common import die_with_parent

_HEADER = struct.Struct("<I")
Verdict = tuple[Any, ...]


# -- frames: a 4-byte length, then a pickle ----------------------------------------------
def write_frame(fd: int, data: bytes) -> None:
    """Write one frame (``data`` is a pickle) to ``fd``, all of it."""
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Frames from a pipe made non-blocking, read as they come (one read for a header and its pickle).

    Not spinning for the next frame is deliberate: on a busy machine a spinning reader
    takes the CPU from the very process it waits for (seen: discovery 3x slower).
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd, self._buffer = fd, bytearray()
        # poll, not select: select can't watch a descriptor past 1023 (a busy kernel has many)
        self._poll = select.poll() if hasattr(select, "poll") else None
        if self._poll is not None:
            self._poll.register(fd, select.POLLIN)

    def next(self, timeout: float | None) -> Any:
        """The next message; None when none came within ``timeout`` s; :class:`EOFError` when the writer is gone."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            data = self._frame()
            if data is not None:
                return pickle.loads(data)
            if self._fill():
                continue
            now = time.monotonic()
            if end is not None and now >= end:
                return None
            wait = None if end is None else end - now
            if self._poll is not None:
                self._poll.poll(None if wait is None else math.ceil(wait * 1000))
            else:  # pragma: no cover - Windows
                select.select([self._fd], [], [], wait)

    def _fill(self) -> bool:
        try:
            chunk = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return False
        if not chunk:
            raise EOFError("the other end of the pipe closed")
        self._buffer += chunk
        return True

    def _frame(self) -> bytes | None:
        buffer = self._buffer
        if len(buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(buffer)
        if len(buffer) < _HEADER.size + size:
            return None
        data = bytes(buffer[_HEADER.size:_HEADER.size + size])
        del buffer[:_HEADER.size + size]
        return data


# -- the mirror of the repository's sources ----------------------------------------------
class Unsynced(Exception):
    """A request names a module or a declared type this process does not hold (yet)."""


class _Mirror:
    """The sources as the parent last sent them, parsed here, with their support names and declarations."""

    def __init__(self) -> None:
        from ._parser import ParsedSource

        self.sources: dict[str, ParsedSource] = {}
        self.support: frozenset[str] = frozenset()
        self.declared: dict[str, type] = {}

    def sync(self, order: list[str], texts: dict[str, str]) -> list[str]:
        """Parse the new ``texts``, keep ``order``; return the origins that failed to parse."""
        from ._parser import parse

        failed = []
        for origin, text in texts.items():
            try:
                self.sources[origin] = parse(text, origin)
            except BaseException:  # SystemExit too: this process must not end on a source
                self.sources.pop(origin, None)  # its modules stay unknown: the parent runs them itself
                failed.append(origin)
        self.sources = {o: self.sources[o] for o in order if o in self.sources}
        # The same as Repository.support_names and Repository.declarations.
        self.support = frozenset().union(*(s.support_names for s in self.sources.values()))
        self.declared = {}
        for source in self.sources.values():
            self.declared.update(source.declarations)
        return failed


_MIRROR = _Mirror()


def resolve_module(origin: str, name: str, digest: str) -> Any:
    """The parsed module a request names (unpickling calls this in the probe process)."""
    source = _MIRROR.sources.get(origin)
    module = next((m for m in source.modules if m.name == name), None) if source else None
    if module is None or module.digest != digest:
        raise Unsynced(f"{origin}: {name}")
    return module


def resolve_declared(name: str) -> type:
    """The declared SAIL type or capability a request names."""
    try:
        return _MIRROR.declared[name]
    except KeyError:
        raise Unsynced(name) from None


def rebuild_type(cls: type, slots: dict[str, Any], extra: dict[str, Any] | None) -> Any:
    """A SAIL type instance from its fields (types refuse ``setattr``, which plain unpickling uses)."""
    obj: Any = object.__new__(cls)
    for name, value in slots.items():
        object.__setattr__(obj, name, value)
    if extra:
        obj.__dict__.update(extra)
    return obj


# -- requests -------------------------------------------------------------------------
def _dry_run(limit: float, payload: bytes) -> Verdict:
    from ._dryrun import dry_run
    from ._errors import DryRunTimeout, traceback_line

    module, ctx, args, bindings, type_bindings = pickle.loads(payload)
    try:
        trace = dry_run(module, ctx, args, bindings, support=_MIRROR.support, declared=_MIRROR.declared,
                        type_bindings=type_bindings, time_limit=limit)
    except KeyboardInterrupt as exc:  # raised by the module itself: nobody presses Ctrl-C here
        return ("raised", traceback_line(exc, module.origin), "KeyboardInterrupt")
    if isinstance(trace.error, DryRunTimeout):
        return ("timeout", trace.error.location.line if trace.error.location else 0)
    return ("ok",)


def _guarded(run: Callable[[], object], limit: float, origin: str) -> Verdict:
    """Run ``run`` under a deadline; what stops it is the verdict, any Exception is the parent's to see."""
    from ._deadline import DeadlineExceeded, deadline
    from ._dryrun_errors import describe
    from ._errors import traceback_line

    try:
        with deadline(limit):
            run()
    except DeadlineExceeded as exc:
        return ("timeout", traceback_line(exc, origin))
    except Exception:
        return ("ok",)  # an ordinary error: the parent's own run reports it
    except BaseException as exc:
        return ("raised", traceback_line(exc, origin), describe(exc))
    return ("ok",)


def _load(limit: float, payload: bytes) -> Verdict:
    from ._dryrun import load_function

    (module,) = pickle.loads(payload)
    return _guarded(lambda: load_function(module, _MIRROR.support, declared=_MIRROR.declared),
                    limit, module.origin)


def _declare(limit: float, text: str, origin: str) -> Verdict:
    from ._errors import register_source, source_filename
    from ._parser import _declarations

    register_source(origin, text)
    try:
        tree = ast.parse(text, filename=source_filename(origin))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ("ok",)  # the parent's parse says what is wrong
    classes: list[ast.stmt] = [s for s in tree.body if isinstance(s, ast.ClassDef)]
    return _guarded(lambda: _declarations(classes, origin), limit, origin)


def _sync(cwd: str, path: list[str], order: list[str], texts: dict[str, str]) -> Verdict:
    try:
        if os.getcwd() != cwd:
            os.chdir(cwd)  # relative input files are found where the parent finds them
    except OSError:
        pass  # the parent's folder is gone: its own dry runs will say so
    sys.path[:] = path
    failed = _MIRROR.sync(order, texts)
    return ("ok", failed)


def _answer(message: tuple[Any, ...]) -> Verdict:
    kind, *rest = message
    try:
        if kind == "dry":
            return _dry_run(*rest)
        if kind == "load":
            return _load(*rest)
        if kind == "declare":
            return _declare(*rest)
        if kind == "sync":
            return _sync(*rest)
        return ("unvetted", 0, f"unknown request {kind!r}")
    except Unsynced as exc:
        return ("unknown", 0, str(exc))
    except BaseException as exc:  # a defect here must not end the process: the parent runs it itself
        return ("unvetted", 0, f"{type(exc).__name__}: {exc}")


def main() -> None:
    """Serve requests from the parent until it closes the pipe (or dies: then this process dies too)."""
    requests, replies, dump, parent = (int(a) for a in sys.argv[1:5])
    # Ctrl-C in a terminal reaches the whole process group: the parent decides, not us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not die_with_parent(parent):  # the parent died first: nobody will read our answers
        os._exit(0)
    # A crash of native code, or the parent's SIGUSR1 while stuck in C: the stack goes to `dump`.
    faulthandler.enable(file=dump, all_threads=True)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
    from ._deadline import _WATCHDOG

    def paused(on: bool) -> None:  # imports don't count against the parent's bound either
        write_frame(replies, pickle.dumps(("pause" if on else "resume",)))

    _WATCHDOG.on_pause = paused
    write_frame(replies, pickle.dumps(("ready", os.getpid())))
    reader = FrameReader(requests)
    while True:
        try:
            message = reader.next(None)
        except EOFError:
            return
        write_frame(replies, pickle.dumps(_answer(message)))
