"""The probe: module code is tried first in a helper process that can be killed.

A dry run's deadline (:mod:`._deadline`) is an exception raised between bytecodes, so
it cannot stop one long operation in C code: ``sum(range(10**12))`` or ``10**10**8`` in
a model body would hold the interpreter, and a notebook kernel with it, for hours (no
Ctrl-C either: Python's signal handlers run between bytecodes too). Nor can anything in
a process survive a module that calls ``os._exit``. Only a process boundary gives that
guarantee, so code of the repository's modules runs first in one persistent *probe
process* (:mod:`._probe_worker`), started on first use and again after it was killed:

* a request that finishes there within its limit is run again here, at full speed and
  with the objects discovery keys its caches on (dry runs are memoised, so each module
  and context is tried once; the round trip and the second run cost ~0.1 ms a dry run:
  a cold discovery of the 100,000-tuple benchmark went from 0.30 s to 0.8 s);
* a request the deadline stopped there, or that raised what only ends processes
  (``KeyboardInterrupt`` raised by the module itself), is reported with its line
  without running here;
* a request that does not answer within its limit + :data:`GRACE` is stuck in C code:
  its stack is taken with :mod:`faulthandler` (SIGUSR1, handled in C) for the line,
  then the process is killed; one that ends its process is reported as such.

The parent's bound does not count imports (the deadline doesn't either): the probe
process says when one starts and ends. Where the process cannot start, code runs here
under the deadline alone, as before (retried after :data:`_RETRY_AFTER` seconds).
"""

from __future__ import annotations

import atexit
import functools
import io
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from ._parser import ParsedModule, ParsedSource
from ._types import SailType

# The process and its protocol are loaded when the process starts: a pod, which runs module
# code in itself (``keep_in_process``), never pays for them (subprocess, pickle, logging ...).
if TYPE_CHECKING:
    import pickle
    import queue
    import subprocess
    from concurrent.futures import Future

    from ._probe_worker import FrameReader

#: Seconds past a request's limit before a run no deadline stopped is taken as stuck in C code
#: (the deadline itself lands within ~20 ms: this is for a loaded machine).
GRACE = 1.0
_START_LIMIT = 60.0  # the process starts and imports SAIBench (seconds on a loaded machine)
_SYNC_LIMIT = 120.0  # parsing every source of a large repository
_IMPORT_LIMIT = 300.0  # imports a request may spend, uncounted by its limit (torch on a slow disk)
_DUMP_WAIT = 0.3  # for faulthandler's stack after SIGUSR1
_RETRY_AFTER = 30.0  # after the process failed to start


class Outcome(NamedTuple):
    """What the probe process saw: ``ok`` (run it here), ``timeout``, ``stuck``, ``raised``, ``died``
    or ``unvetted`` (it could not be tried there: run it here, under the deadline alone)."""

    kind: str
    line: int = 0
    detail: str = ""


@functools.cache
def _request_pickler() -> Callable[[IO[bytes], Mapping[str, type]], pickle.Pickler]:
    """The pickler of requests (made on first use, with the modules it needs)."""
    import pickle

    from ._probe_worker import rebuild_type, resolve_declared, resolve_module

    class RequestPickler(pickle.Pickler):
        """Pickles a request naming parsed modules and declared types, which the probe process holds itself."""

        def __init__(self, file: IO[bytes], declared: Mapping[str, type]) -> None:
            super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
            self._declared = {id(c): n for n, c in declared.items()}

        def reducer_override(self, obj: Any) -> Any:
            if type(obj) is ParsedModule:
                return resolve_module, (obj.origin, obj.name, obj.digest)
            if isinstance(obj, type):
                return (resolve_declared, (self._declared[id(obj)],)) if id(obj) in self._declared else NotImplemented
            if isinstance(obj, SailType):
                cls = type(obj)
                extra = getattr(obj, "__dict__", None)
                return rebuild_type, (cls, {s: getattr(obj, s) for s in cls._fields if hasattr(obj, s)},
                                      dict(extra) if extra else None)
            return NotImplemented

    return RequestPickler


def encode(request: Any, declared: Mapping[str, type]) -> bytes | None:
    """``request`` pickled for the probe process, or None when it cannot travel there."""
    import pickle

    buffer = io.BytesIO()
    try:
        _request_pickler()(buffer, declared).dump(request)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError):
        return None
    return buffer.getvalue()


class Probe:
    """The probe process of this process: started on first use, killed when stuck, restarted."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()
        self._to = self._from = -1
        self._dump: IO[bytes] | None = None
        self._reader: FrameReader | None = None
        self._wanted: tuple[ParsedSource, ...] = ()
        self._dirty = False  # wanted, cwd or sys.path may differ from what the process holds
        self._sent: dict[str, ParsedSource] = {}
        self._synced: tuple[Any, ...] = ()
        self._unparsable: frozenset[str] = frozenset()
        self._retry_at = 0.0
        #: why the process is not there (code then runs in this process under the deadline alone)
        self.unavailable: str | None = None
        self._exit_hook = False
        self._spawner: tuple[threading.Thread, queue.SimpleQueue[Any]] | None = None
        self._greeted = False  # the process said it is ready

    def start_soon(self) -> None:
        """Start the process now without waiting for it: its start-up overlaps what the caller does next.

        The first request waits for it as usual; a process that does not come up is then
        reported as if that request had started it.
        """
        with self._lock:
            if self._owner != os.getpid():
                self._forget()
            if self._proc is None and self.unavailable is None and time.monotonic() >= self._retry_at:
                try:
                    self._launch()
                except (OSError, ValueError):
                    self.stop()

    def keep_in_process(self, reason: str) -> None:
        """Never start the probe process again: code runs here, under the deadline alone.

        For a process that is itself isolated and bounded (a pod, which dies at its own
        timeout): a probe there would only add its start-up to every pod.
        """
        with self._lock:
            self.stop()
            self.unavailable = reason
            self._retry_at = math.inf

    # -- the sources ------------------------------------------------------------------
    def want(self, sources: Iterable[ParsedSource]) -> None:
        """Make the probe process hold ``sources`` (in this order) before its next request."""
        with self._lock:
            self._wanted = tuple(sources)
            self._dirty = True

    def resend(self) -> None:
        """Send every source again before the next request (the process lacked a module)."""
        with self._lock:
            self._sent, self._synced, self._dirty = {}, (), True

    # -- requests ---------------------------------------------------------------------
    def ask(self, message: tuple[Any, ...], limit: float, origin: str | None = None, *,
            mirrored: bool = True) -> Outcome:
        """Send ``message`` and wait for its verdict, for ``limit`` + :data:`GRACE` s (imports not counted).

        ``origin`` is the source whose line a stuck or crashed run is reported at;
        ``mirrored`` when the request needs that source's copy in the probe process.
        """
        with self._lock:
            if mirrored and origin in self._unparsable:
                return Outcome("unvetted", detail=f"the probe process could not parse {origin}")
            try:
                if not self._ready():
                    return Outcome("unvetted", detail=self.unavailable or "")
                import pickle

                from ._probe_worker import write_frame

                write_frame(self._to, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
                return self._verdict(limit, origin)
            except (OSError, EOFError) as exc:
                return self._died(origin, exc)
            except BaseException:
                # Ctrl-C while the request runs: the process may be anywhere in it.
                self.stop()
                raise

    def _verdict(self, limit: float, origin: str | None) -> Outcome:
        end = time.monotonic() + limit + GRACE
        paused_at: float | None = None
        imports = 0.0
        while True:
            now = time.monotonic()
            wait = end - now if paused_at is None else _IMPORT_LIMIT - imports - (now - paused_at)
            reply = self._receive(max(wait, 0.0))
            if reply is None:
                return self._stuck(origin)
            if reply[0] == "pause":
                paused_at = paused_at or time.monotonic()
            elif reply[0] == "resume":
                if paused_at is not None:
                    spent = time.monotonic() - paused_at
                    imports, end, paused_at = imports + spent, end + spent, None
            else:
                return Outcome(*reply)

    def _receive(self, timeout: float | None) -> Any:
        """The next message, or None when none came within ``timeout`` seconds."""
        return None if self._reader is None else self._reader.next(timeout)

    # -- the process ------------------------------------------------------------------
    def _ready(self) -> bool:
        if self._owner != os.getpid():
            self._forget()  # a forked child: the process and its pipes are the parent's
        for _ in range(2):  # a process that died since the last request is replaced once
            if self._proc is not None and self._proc.poll() is not None:
                self.stop()
            if self._proc is None or not self._greeted:
                if self._proc is None and time.monotonic() < self._retry_at:
                    return False
                try:
                    if self._proc is None:
                        self._launch()
                    self._greet()
                except (OSError, EOFError, ValueError, TimeoutError) as exc:
                    self.stop()
                    self.unavailable = f"the probe process did not start: {exc}"
                    self._retry_at = time.monotonic() + _RETRY_AFTER
                    return False
                self.unavailable = None
            try:
                return self._sync()
            except (OSError, EOFError):
                self.stop()
        return False

    def _launch(self) -> None:
        """Start the process; :meth:`_greet` waits until it is ready."""
        import subprocess
        import tempfile

        from ._probe_worker import FrameReader

        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        self._to, self._from = requests_w, replies_r
        self._dump = tempfile.TemporaryFile()
        # The probe process imports this very SAIBench, wherever it comes from.
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        code = "from saibench_jupyter.sail._probe_worker import main; main()"
        fds = (requests_r, replies_w, self._dump.fileno())
        try:
            self._proc = self._popen(
                [sys.executable, "-c", code, *map(str, fds), str(os.getpid())], pass_fds=fds,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=env, start_new_session=True)  # Ctrl-C in a terminal is the parent's to handle
        finally:
            os.close(requests_r)
            os.close(replies_w)
        self._owner = os.getpid()
        self._reader = FrameReader(self._from)
        if not self._exit_hook:
            atexit.register(self.stop)
            self._exit_hook = True

    def _greet(self) -> None:
        hello = self._receive(_START_LIMIT)
        if hello is None or hello[0] != "ready":
            raise TimeoutError(f"no answer within {_START_LIMIT:g} s")
        self._greeted = True

    def _popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        """Popen from a thread that lasts as long as this process.

        The probe process asks Linux to kill it when its parent dies, and Linux means the
        parent *thread*: started from a discovery in a passing thread (a timer's, a pool's)
        it would die with that thread.
        """
        import queue
        import subprocess
        from concurrent.futures import Future

        if threading.current_thread() is threading.main_thread():
            return subprocess.Popen(*args, **kwargs)
        if self._spawner is None or not self._spawner[0].is_alive():
            jobs: queue.SimpleQueue[tuple[Future[Any], tuple[Any, ...], dict[str, Any]]] = queue.SimpleQueue()

            def serve() -> None:
                while True:
                    future, a, k = jobs.get()
                    try:
                        future.set_result(subprocess.Popen(*a, **k))
                    except BaseException as exc:  # the asking thread raises it
                        future.set_exception(exc)

            thread = threading.Thread(target=serve, name="saibench-probe-spawner", daemon=True)
            thread.start()
            self._spawner = (thread, jobs)
        future: Future[subprocess.Popen[bytes]] = Future()
        self._spawner[1].put((future, args, kwargs))
        return future.result()

    def _sync(self) -> bool:
        """Send the wanted sources the process lacks; False when it could not take them."""
        if not self._dirty:
            return True
        wanted = self._wanted
        texts = {}
        for source in wanted:
            sent = self._sent.get(source.origin)
            if sent is not source and (sent is None or sent.text != source.text):
                texts[source.origin] = source.text
        state = (tuple(s.origin for s in wanted), os.getcwd(), tuple(sys.path))
        if not texts and state == self._synced:
            self._dirty = False
            return True
        import pickle

        from ._probe_worker import write_frame

        write_frame(self._to, pickle.dumps(("sync", state[1], list(state[2]), list(state[0]), texts)))
        reply = self._receive(_SYNC_LIMIT)
        if reply is None or reply[0] != "ok":
            self.stop()
            self.unavailable = f"the probe process did not take the sources within {_SYNC_LIMIT:g} s"
            self._retry_at = time.monotonic() + _RETRY_AFTER
            return False
        self._sent = {s.origin: s for s in wanted}
        self._synced, self._dirty = state, False
        self._unparsable = frozenset(reply[1])
        return True

    def _stuck(self, origin: str | None) -> Outcome:
        """No answer in time: take the stack (faulthandler, in C), kill the process, find the line."""
        import signal

        proc, dump = self._proc, self._dump
        text = ""
        if proc is not None and dump is not None and hasattr(signal, "SIGUSR1"):
            fd = dump.fileno()
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)  # shared with the process's descriptor
            try:
                os.kill(proc.pid, signal.SIGUSR1)
                text = _read_dump(fd, _DUMP_WAIT)
            except OSError:
                pass
        self.stop()
        return Outcome("stuck", _dump_line(text, origin))

    def _died(self, origin: str | None, exc: BaseException) -> Outcome:
        import signal
        import subprocess

        proc, dump = self._proc, self._dump
        try:
            status = proc.wait(5) if proc is not None else None
        except subprocess.TimeoutExpired:  # it closed its end of the pipe yet lives on: stop() kills it
            status = None
        text = ""
        if dump is not None:
            os.lseek(dump.fileno(), 0, os.SEEK_SET)
            text = dump.read().decode("utf-8", "replace")
        self.stop()
        if status is None:
            how = str(exc)
        elif status < 0:
            how = f"killed by signal {signal.Signals(-status).name}" if -status in signal.valid_signals() \
                else f"killed by signal {-status}"
        else:
            how = f"exit status {status}"
        return Outcome("died", _dump_line(text, origin), how)

    def stop(self) -> None:
        """Kill the probe process (and anything it started); the next request starts a new one."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None and self._owner == os.getpid():
                import signal
                import subprocess

                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: children go too
                except OSError:
                    proc.kill()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self._close()

    def _forget(self) -> None:
        """In a forked child: drop the parent's process without touching it."""
        if self._proc is not None:
            self._proc.returncode = 0  # not ours to wait for
        self._proc, self._spawner = None, None  # threads don't survive a fork
        self._close()
        self._owner = os.getpid()

    def _close(self) -> None:
        for fd in (self._to, self._from):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to = self._from = -1
        self._reader = None
        if self._dump is not None:
            self._dump.close()
            self._dump = None
        self._sent, self._synced, self._unparsable, self._dirty = {}, (), frozenset(), True
        self._greeted = False


def _read_dump(fd: int, wait: float) -> str:
    """What faulthandler wrote to ``fd``, once it stopped growing (or ``wait`` s passed)."""
    end, size, text = time.monotonic() + wait, -1, b""
    while time.monotonic() < end:
        time.sleep(0.02)
        now = os.fstat(fd).st_size
        if now and now == size:
            break
        size = now
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 16):
        text += chunk
    return text.decode("utf-8", "replace")


def _dump_line(text: str, origin: str | None) -> int:
    """The innermost line of ``origin``'s code in a faulthandler dump (0 when it is not there)."""
    if origin is None:
        return 0
    from ._errors import source_filename

    wanted = f'File "{_ascii_like_faulthandler(source_filename(origin))}", line '
    for line in text.splitlines():  # most recent call first
        at = line.find(wanted)
        if at >= 0:
            digits = line[at + len(wanted):].split(" ", 1)[0]
            if digits.isdigit():
                return int(digits)
    return 0


def _ascii_like_faulthandler(text: str) -> str:
    """``text`` as faulthandler writes it: printable ASCII kept, the rest as \\x, \\u or \\U escapes."""
    out = []
    for ch in text[:500]:
        c = ord(ch)
        out.append(ch if 32 <= c <= 126 else f"\\x{c:02x}" if c <= 0xFF
                   else f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}")
    return "".join(out) + ("..." if len(text) > 500 else "")


#: The probe process of this (parent) process.
PROBE = Probe()
