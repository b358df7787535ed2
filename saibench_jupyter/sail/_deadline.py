"""Time limits for dry runs, with no cost while the code runs.

A watchdog thread (started on first use) raises :class:`DeadlineExceeded` inside a
thread whose deadline has passed, through CPython's ``PyThreadState_SetAsyncExc``.
Unlike ``sys.settrace`` this adds nothing to the traced code (a trace function made
dry runs ~2.7x slower) and leaves debuggers and coverage tools alone. It interrupts
Python code; a single blocking C call (a long ``time.sleep``) ends before it lands.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

_POLL = 0.02


class DeadlineExceeded(BaseException):
    """Raised inside code that ran past its deadline (a BaseException: ``except Exception`` can't swallow it)."""


class _Watchdog:
    def __init__(self) -> None:
        self._forks_handled = False
        self._reset()

    def _reset(self) -> None:
        # Also run in a forked child (a warm pod): the watchdog thread is not copied, and
        # its lock may have been copied held, which would hang the child's first dry run.
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[int, float]] = {}  # token -> (thread id, deadline)
        self._fired: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        with self._lock:
            self._next += 1
            token = self._next
            self._armed[token] = (threading.get_ident(), time.monotonic() + seconds)
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

    def _watch(self) -> None:
        while True:
            time.sleep(_POLL)
            now = time.monotonic()
            with self._lock:
                for token, (tid, deadline) in self._armed.items():
                    if now > deadline:
                        # Sent again every poll while armed, in case user code swallowed it.
                        _send(tid, DeadlineExceeded)
                        self._fired.add(token)


def _send(tid: int, exc: type[BaseException] | None) -> None:
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
