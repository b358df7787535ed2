"""The log of one pod: module output as batched, bounded ``log`` events.

Inside a pod ``sys.stdout`` is a :class:`PodLog`. Module code may print without limit
(a million lines, a line without end); the results store must not grow with it, nor may
the pod's event stream fill the pipe faster than the store takes it (the pod would then
block until its timeout). So complete lines are sent many per event, the first ones as
they come, and once the pod's budget (lines and bytes) is spent only the last lines are
kept in memory, sent at the end after a note of what was dropped.
"""

from __future__ import annotations

import io
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

Emit = Callable[[dict[str, Any]], None]

#: A pod's log budget by default: lines and bytes (UTF-8) that reach the store.
LOG_LINES = 10_000
LOG_BYTES = 2**20
#: At most this many of the budget's lines are the tail: the last lines, kept when the rest is dropped.
TAIL_LINES = 1_000
#: A batch is sent once it holds this many lines or bytes, or is this many seconds old.
BATCH_LINES = 1_000
BATCH_BYTES = 64 * 2**10
BATCH_SECONDS = 0.5
#: A longer line (or text without a newline) is cut into pieces of this many characters.
LINE_CHARS = 64 * 2**10


def _bytes(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.1f} MiB"
    return f"{size / 2**10:.1f} KiB" if size >= 2**10 else f"{size} bytes"


def _lines(count: int) -> str:
    return f"{count:,} line{'s' * (count != 1)}"


class PodLog(io.TextIOBase):
    """``sys.stdout`` inside a pod: complete lines become batched ``log`` events, within a budget.

    The first lines, up to the budget less its tail, are sent as they come (a batch at a
    time: at most :data:`BATCH_SECONDS` late). Past that, the last lines are kept in a
    ring (the tail: a tenth of the budget, :data:`TAIL_LINES` lines at most) and sent when
    the log closes, after a note of how many lines and bytes were dropped. A pod's log
    thus holds at most ``lines`` rows, plus the note (a pod that goes on past its
    ``deadline``, where the tail was sent early, may add a second note and tail).

    Every event of the pod goes through :meth:`event`, so lines printed before an event
    are sent before it, and a final event (``finished``, ``failed``) first closes the log:
    the last line, even without its newline, is never lost.

    Parameters
    ----------
    emit : callable
        Where the events go (the pod's event writer).
    lines : int
        Most lines the log keeps (the note aside).
    size : int
        Most bytes (UTF-8) the log keeps.
    deadline : float, optional
        Seconds from now after which everything held (tail, partial line) is sent at once:
        set shortly before the executor kills the pod for its timeout, so the last lines
        before a hang reach the store.
    """

    def __init__(self, emit: Emit, lines: int = LOG_LINES, size: int = LOG_BYTES,
                 deadline: float | None = None) -> None:
        if lines < 1 or size < 1:
            raise ValueError(f"a pod log keeps at least one line and one byte, not {lines} lines and {size} bytes")
        self._emit = emit
        self.lines, self.size = lines, size
        self._tail_lines = max(1, min(TAIL_LINES, lines // 10))
        self._tail_bytes = max(1, size // 10)
        self._head_lines, self._head_bytes = lines - self._tail_lines, size - self._tail_bytes
        self._chunk = max(1, min(LINE_CHARS, self._tail_bytes))
        self._lock = threading.RLock()  # re-entrant: a repr in an event may print
        self._reset()
        self._closed_at: float | None = None
        self._deadline = None if deadline is None else time.monotonic() + deadline
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="saibench-pod-log", daemon=True)
        self._flusher.start()
        # A child forked by module code (a data loader) inherits this object, but not our thread, and maybe
        # a held lock: it starts afresh, without the parent's unsent lines (the parent sends those).
        os.register_at_fork(after_in_child=_forked_child(weakref.ref(self)))

    def _reset(self) -> None:
        self._partial: list[str] = []
        self._partial_chars = 0
        self._batch: list[str] = []
        self._batch_bytes = 0
        self._batch_since = time.monotonic()
        self._sent_lines = self._sent_bytes = 0
        self._head_open = True
        self._ring: deque[tuple[str, int]] = deque()
        self._ring_bytes = 0
        self._dropped_lines = self._dropped_bytes = 0

    def _forked(self) -> None:
        self._lock = threading.RLock()
        sent = self._sent_lines, self._sent_bytes, self._head_open
        self._reset()
        self._sent_lines, self._sent_bytes, self._head_open = sent
        self._deadline = None

    # -- the text stream ----------------------------------------------------------------------------
    @property
    def encoding(self) -> str:  # type: ignore[override]
        """What libraries that look (click, tqdm) see: text here is UTF-8 in the store."""
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            if self._closed_at is not None:  # after the final event: nobody would see it
                return len(text)
            if "\n" in text:  # print() writes its text, then "\n": this is the hot path
                *pieces, last = text.split("\n")
                for piece in pieces:
                    self._partial.append(piece)
                    self._line("".join(self._partial))
                    self._partial.clear()
                self._partial_chars = 0
            else:
                last = text
            if last:
                self._partial.append(last)
                self._partial_chars += len(last)
                if self._partial_chars > self._chunk:  # no newline in sight: cut, or memory grows without end
                    rest = "".join(self._partial)
                    while len(rest) > self._chunk:
                        self._line(rest[:self._chunk])
                        rest = rest[self._chunk:]
                    self._partial, self._partial_chars = [rest], len(rest)
        return len(text)

    def flush(self) -> None:
        """Send the complete lines held back (the partial line waits for its newline or the end)."""
        with self._lock:
            self._send()

    def _line(self, line: str) -> None:
        n = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
        if self._head_open:
            if self._sent_lines + len(self._batch) < self._head_lines \
                    and self._sent_bytes + self._batch_bytes + n <= self._head_bytes:
                if not self._batch:
                    self._batch_since = time.monotonic()
                self._batch.append(line)
                self._batch_bytes += n
                if len(self._batch) >= BATCH_LINES or self._batch_bytes >= BATCH_BYTES:
                    self._send()
                return
            self._head_open = False  # from now on only the tail: a short line must not jump ahead of the ring
        ring = self._ring
        ring.append((line, n))
        self._ring_bytes += n
        while len(ring) > self._tail_lines or self._ring_bytes > self._tail_bytes:
            _, old = ring.popleft()
            self._ring_bytes -= old
            self._dropped_lines += 1
            self._dropped_bytes += old

    def _send(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._sent_lines += len(batch)
            self._sent_bytes += self._batch_bytes
            self._batch_bytes = 0
            self._emit({"event": "log", "level": "info", "lines": batch})

    def _drain(self) -> None:
        """Send everything held: the batch, the partial line, the note of what was dropped, the tail."""
        if self._partial_chars:
            line = "".join(self._partial)
            self._partial, self._partial_chars = [], 0
            self._line(line)
        self._send()
        if self._dropped_lines:
            self._emit({"event": "log", "level": "warning", "message": (
                f"… {_lines(self._dropped_lines)} ({_bytes(self._dropped_bytes)}) dropped; the last "
                f"{_lines(len(self._ring))} follow (a pod's log keeps {_lines(self.lines)} and "
                f"{_bytes(self.size)}: run(log_lines=..., log_bytes=...) keeps more)")})
            self._dropped_lines = self._dropped_bytes = 0
        if self._ring:
            self._emit({"event": "log", "level": "info", "lines": [line for line, _ in self._ring]})
            self._ring.clear()
            self._ring_bytes = 0

    # -- the pod's events ------------------------------------------------------------------------------
    def event(self, event: dict[str, Any]) -> None:
        """Emit one of the pod's events, after the lines printed before it; a final event closes the log."""
        with self._lock:
            if event.get("event") in ("finished", "failed"):
                self.close_log()
            else:
                self._send()
            self._emit(event)

    def close_log(self) -> None:
        """Send everything held and stop: later writes are ignored (the pod has ended)."""
        with self._lock:
            if self._closed_at is None:
                self._drain()
                self._closed_at = time.monotonic()
        self._stop.set()

    def _flush_loop(self) -> None:
        while not self._stop.wait(BATCH_SECONDS / 2):
            with self._lock:
                if self._closed_at is not None:
                    return
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    self._deadline = None
                    self._drain()
                elif self._batch and time.monotonic() - self._batch_since >= BATCH_SECONDS:
                    self._send()


def _forked_child(ref: weakref.ref[PodLog]) -> Callable[[], None]:
    def reset() -> None:
        log = ref()
        if log is not None:
            log._forked()
    return reset


def deadline_of(timeout: float | None) -> float | None:
    """When a pod with this timeout sends what its log holds: a little before the executor kills it."""
    if timeout is None:
        return None
    return max(0.0, timeout - min(5.0, max(1.0, timeout / 5)))
