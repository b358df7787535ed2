"""Time limits for dry runs, with no cost while the code runs.

A watchdog thread (started on first use) raises :class:`DeadlineExceeded` inside a
thread whose deadline has passed, through CPython's ``PyThreadState_SetAsyncExc``.
Unlike ``sys.settrace`` this adds nothing to the traced code (a trace function made
dry runs ~2.7x slower) and leaves debuggers and coverage tools alone. It interrupts
Python code; a single long C call (``time.sleep(60)``, ``sum(range(10**12))``) ends before
it lands: discovery tries module code in the probe process first (:mod:`._probe`), which
is killed where its deadline cannot land.

Imports are exempt: an import interrupted half-way leaves a half-initialised module in
``sys.modules`` that breaks every later import of it (``partially initialized module
'torch' has no attribute 'fx'``). :func:`guarded_builtins` gives dry runs an ``__import__``
that pauses their deadline, so time spent importing is not counted and no exception lands
inside an import; :func:`purge_partial_modules` removes what an import interrupted anyway
(one not made by an ``import`` statement, say ``importlib.import_module``) left behind.
"""

from __future__ import annotations

import builtins
import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_POLL = 0.02


class DeadlineExceeded(BaseException):
    """Raised inside code that ran past its deadline (a BaseException: ``except Exception`` can't swallow it)."""


class _Armed:
    """One armed deadline: its thread, when it expires, and whether an import pauses it."""

    __slots__ = ("expires", "paused_at", "pauses", "tid")

    def __init__(self, tid: int, expires: float) -> None:
        self.tid = tid
        self.expires = expires
        self.pauses = 0  # nesting depth of imports in progress (imports in imported code don't count)
        self.paused_at = 0.0


class _Watchdog:
    def __init__(self) -> None:
        self._forks_handled = False
        #: told ``True`` when an import pauses a deadline of this process, ``False`` when it resumes
        #: (the probe process tells its parent, whose own bound must not count imports either)
        self.on_pause: Callable[[bool], None] | None = None
        self._reset()

    def _reset(self) -> None:
        # Also run in a forked child (a warm pod): the watchdog thread is not copied, and
        # its lock may have been copied held, which would hang the child's first dry run.
        self._lock = threading.Lock()
        self._armed: dict[int, _Armed] = {}
        self._fired: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        import ctypes  # noqa: F401  (here, in the arming thread: _send finds it loaded when the watchdog fires)

        with self._lock:
            self._next += 1
            token = self._next
            self._armed[token] = _Armed(threading.get_ident(), time.monotonic() + seconds)
            if self._thread is None or not self._thread.is_alive():
                if not self._forks_handled and hasattr(os, "register_at_fork"):
                    os.register_at_fork(after_in_child=self._reset)
                    self._forks_handled = True
                self._thread = threading.Thread(target=self._watch, name="saibench-deadline", daemon=True)
                self._thread.start()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching ``token``; True when its exception was sent (it may still be pending)."""
        with self._lock:
            self._armed.pop(token, None)
            fired = token in self._fired
            self._fired.discard(token)
        return fired

    def pause(self) -> None:
        """Stop the clock of the calling thread's deadlines (an import starts)."""
        tid, now = threading.get_ident(), time.monotonic()
        started = False
        with self._lock:
            for armed in self._armed.values():
                if armed.tid == tid:
                    if armed.pauses == 0:
                        armed.paused_at = now
                        started = True
                    armed.pauses += 1
        if started and self.on_pause is not None:
            self.on_pause(True)

    def resume(self) -> None:
        """Restart the clock paused by :meth:`pause`, moving the deadlines by the pause."""
        tid, now = threading.get_ident(), time.monotonic()
        ended = False
        with self._lock:
            for armed in self._armed.values():
                if armed.tid == tid and armed.pauses > 0:
                    armed.pauses -= 1
                    if armed.pauses == 0:
                        armed.expires += now - armed.paused_at
                        ended = True
        if ended and self.on_pause is not None:
            self.on_pause(False)

    def _watch(self) -> None:
        while True:
            time.sleep(_POLL)
            now = time.monotonic()
            with self._lock:
                for token, armed in self._armed.items():
                    if now > armed.expires and armed.pauses == 0:
                        # Sent again every poll while armed, in case user code swallowed it.
                        _send(armed.tid, DeadlineExceeded)
                        self._fired.add(token)


def _send(tid: int, exc: type[BaseException] | None) -> None:
    import ctypes  # loaded by arm(): a process that never arms a deadline (a pod) never pays ~1 ms for it

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(exc) if exc else None)


_WATCHDOG = _Watchdog()


class deadline:  # noqa: N801 - used like a function: ``with deadline(2.0):``
    """Raise :class:`DeadlineExceeded` in the ``with`` body if it runs longer than ``seconds``.

    A class rather than a generator-based context manager: dry runs enter it thousands
    of times per discovery.
    """

    __slots__ = ("seconds", "token")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.token = 0

    def __enter__(self) -> None:
        self.token = _WATCHDOG.arm(self.seconds)

    def __exit__(self, *exc: object) -> None:
        while True:
            # A late DeadlineExceeded may land anywhere in here, even before disarm has
            # run: catch it and disarm again, or the watchdog would keep firing at us.
            try:
                if _WATCHDOG.disarm(self.token):
                    # Sent but perhaps not raised yet: clear it, so it can't land later.
                    _send(threading.get_ident(), None)
                break
            except DeadlineExceeded:
                continue


def _import_without_deadline(name: str, globals: Any = None, locals: Any = None,
                             fromlist: Any = (), level: int = 0) -> Any:
    """``__import__`` for dry runs: the import neither counts against nor is cut by a deadline."""
    try:
        _WATCHDOG.pause()
        # An exception sent just before the pause would land inside the import: drop it.
        # The deadline has passed, so the watchdog sends it again once the import is done.
        _send(threading.get_ident(), None)
        return builtins.__import__(name, globals, locals, fromlist, level)
    finally:
        _WATCHDOG.resume()


@functools.cache
def guarded_builtins() -> dict[str, Any]:
    """The builtins of code run under a deadline: Python's own, but imports pause the deadline."""
    return {**vars(builtins), "__import__": _import_without_deadline}


def purge_partial_modules() -> list[str]:
    """Remove half-initialised modules that no running code is still initialising.

    A module stays in ``sys.modules`` with ``__spec__._initializing`` set when an exception
    cut its import and its cleanup; every later import then finds it broken. Modules whose
    body is still running in some thread (an import up the stack) are kept.

    Returns
    -------
    list of str
        The names removed.
    """
    running = set()
    for frame in sys._current_frames().values():
        f: Any = frame
        while f is not None:
            if f.f_code.co_name == "<module>":
                running.add(id(f.f_globals))
            f = f.f_back
    removed = []
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if getattr(spec, "_initializing", False) is True and id(getattr(module, "__dict__", None)) not in running:
            del sys.modules[name]
            removed.append(name)
    return removed
