"""One way to update a display at most every so often: now, or once at the end of the interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    """Calls ``send`` at once, or, within ``interval`` of the last call, once that interval is over."""

    def __init__(self, interval: float, send: Callable[[], None]) -> None:
        self.interval = interval
        self._send = send
        self._lock = threading.Lock()
        self._last = -interval
        self._timer: threading.Timer | None = None

    def poke(self) -> None:
        """Something changed: send it now, or at the end of the interval (one timer for any number of pokes)."""
        with self._lock:
            if self._timer is not None:
                return
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                self._timer = threading.Timer(wait, self._fire)
                self._timer.daemon = True
                self._timer.start()
                return
            self._last = time.monotonic()
        self._send()

    def flush(self) -> None:
        """Send what is pending now (the end of a run must not wait for a timer)."""
        self.cancel()
        with self._lock:
            self._last = time.monotonic()
        self._send()

    def cancel(self) -> None:
        """Drop the timer, if any."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self._send()
