"""The subprocess executor: each pod in its own process group, killed whole on timeout and at its end.

The pod is ``python -m saibench_jupyter.pods run -`` in the environment's interpreter,
reading its spec from stdin and writing events to stdout; stderr goes to a temporary
file whose tail is kept when the pod fails. The executor, not the pod, enforces the
wall-clock limit (``os.killpg`` reaches the pod's children too), and it classifies an
early death from what it observed: the exit status, the signal, the limits.

Every wait is bounded: one loop waits for the pod's exit (a pidfd), its events and its
timeout together, so a child the module forked, which holds the event pipe open, cannot
hold the run; once the pod is gone its process group is killed, and what it wrote is
read for at most :data:`~._lifeline.GRACE` seconds more. The pod is told who its parent is
and its deadline, and dies with the controller (:mod:`._lifeline`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any

from ._environments import Interpreter
from ._executors import Executor, PodEvents
from ._lifeline import DEADLINE_VARIABLE, GRACE, PARENT_VARIABLE, kill_group, pidfd
from ._shim import RECORD_VARIABLE
from ._spec import PodSpec

#: Characters of stderr kept with a failure.
STDERR_TAIL = 4000
#: Seconds between looks at a pod where no pidfd tells when it exits (not Linux).
POLL = 0.05


def pod_environment(timeout: float | None = None) -> dict[str, str]:
    """The environment variables of a pod (or warm worker) process this process starts.

    Bytecode writing is switched back on: with ``PYTHONDONTWRITEBYTECODE`` set every
    cold pod would compile SAIBench and its modules again (hundreds of ms). The pod learns
    its parent (to die with it) and, given ``timeout``, when to end itself.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env[PARENT_VARIABLE] = str(os.getpid())
    env.pop(DEADLINE_VARIABLE, None)
    if timeout is not None:
        env[DEADLINE_VARIABLE] = str(timeout + GRACE)
    return env


#: Seconds a notebook pod's kernel may take to start (its time limit counts from there).
KERNEL_START = 60


def notebook_limit(timeout: float | None) -> float | None:
    """The wall-clock limit of a notebook pod's runner: the pod's own, plus its kernel's start, plus time
    for the runner to stop its kernel, save the notebook and report (the runner enforces the pod's limit)."""
    return None if timeout is None else timeout + KERNEL_START + 2 * GRACE


def stderr_tail(file: IO[bytes]) -> str:
    """The last :data:`STDERR_TAIL` characters written to ``file``."""
    file.flush()
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - STDERR_TAIL))
    return file.read().decode("utf-8", "replace")


def classify_exit(returncode: int, timed_out: float | None, limits_memory: int | None,
                  tail: str) -> tuple[str, str, str]:
    """The failure kind, message and fix for a pod that ended without a final event."""
    if timed_out is not None:
        return ("timeout", f"the pod ran past its {timed_out:g} s time limit and was killed with its children",
                "raise timeout=..., or make the scenario cheaper (fewer epochs, smaller data)")
    if returncode < 0:
        sig = signal.Signals(-returncode)
        if sig == signal.SIGXCPU:
            return ("timeout", "the pod used up its CPU-time limit (SIGXCPU)", "raise timeout=...")
        if limits_memory and (sig in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS)
                              and any(w in tail.lower() for w in ("memory", "alloc"))):
            return ("memory", f"the pod died of {sig.name} after failing to allocate memory (limit "
                    f"{limits_memory / 2**20:.0f} MiB)", "raise the memory limit, or use smaller batches or models")
        hint = " (the system's out-of-memory killer sends SIGKILL)" if sig == signal.SIGKILL else ""
        return ("signal", f"the pod was killed by {sig.name}{hint}",
                "see the stderr tail; a native library (or the module's own code) crashed the process")
    if returncode > 0:
        return ("exit", f"the pod exited with status {returncode} before reporting a result",
                "see the stderr tail; module code must not call sys.exit or os._exit")
    return ("lost", "the pod exited without reporting a result", "see the stderr tail")


def conclude(spec: PodSpec, events: PodEvents, held: list[dict[str, Any]], returncode: int | None,
             timed_out: float | None, tail: str, cancelled: bool) -> None:
    """Emit the pod's final event once its process is gone.

    The pod's own ``failed`` report (``held``) goes out completed with its stderr tail;
    without any final event, the failure is classified from what the executor saw.
    """
    if held:
        events({**held[0], "stderr": tail or None})
    elif events.final is None:
        if cancelled:
            events.fail("interrupted", "the run was interrupted and the pod was stopped", stderr=tail or None)
        elif returncode is None and timed_out is None:
            events.fail("lost", "the warm worker running the pod died", stderr=tail or None,
                        fix="see the stderr tail; the next pod starts a new worker")
        else:
            # A pod killed at its timeout but not reaped within the grace period (stuck in the
            # kernel) is still a timeout.
            kind, message, fix = classify_exit(returncode or 0, timed_out, spec.limits.memory, tail)
            events.fail(kind, message, fix=fix, stderr=tail or None)


class SubprocessExecutor(Executor):
    """Each pod is a fresh process (the default executor).

    Parameters
    ----------
    jobs : int
        Pods running at once.
    """

    name = "subprocess"

    def __init__(self, jobs: int = 1) -> None:
        super().__init__(jobs)
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        #: interpreter -> the environment record its last pod reported, handed to the next
        #: one (JSON), which then skips the package-metadata lookups (~30 ms per cold pod)
        self._records: dict[str, str] = {}

    def shim(self, spec: PodSpec, interpreter: Interpreter) -> tuple[str, str, float | None, str]:
        """How ``spec`` runs: the interpreter, what it reads on stdin, its wall-clock limit, the shim's command."""
        return interpreter.python, spec.to_json(), spec.limits.timeout, "run"

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        with self._lock:
            record = self._records.get(interpreter.python)
        held: list[dict[str, Any]] = []

        def started(proc: subprocess.Popen[bytes]) -> None:
            with self._lock:
                self._running[spec.pod] = proc

        python, request, timeout, command = self.shim(spec, interpreter)
        try:
            returncode, timed_out, tail = run_shim(python, request, timeout, spec.workdir,
                                                   lambda raw: relay_line(raw, events, held), record, started, command)
        finally:
            with self._lock:
                self._running.pop(spec.pod, None)
        if events.environment is not None:
            with self._lock:
                self._records[interpreter.python] = json.dumps(events.environment)
        conclude(spec, events, held, returncode, timed_out, tail, self._cancelled)

    def cancel(self) -> None:
        super().cancel()
        with self._lock:
            running = list(self._running.values())
        for proc in running:
            if proc.returncode is None:  # not reaped yet, so its group id is still its own
                kill_group(proc.pid)


def run_shim(python: str, spec_json: str, timeout: float | None, workdir: str, line: Callable[[bytes], None],
             record: str | None = None, started: Callable[[subprocess.Popen[bytes]], None] | None = None,
             command: str = "run") -> tuple[int | None, float | None, str]:
    """Run one cold pod to its end: ``python -m saibench_jupyter.pods run -`` in its own session, fed ``spec_json``.

    ``command`` ``notebook`` runs the pod's notebook instead (``spec_json`` is then the runner's request).

    Each line it writes goes to ``line``; ``record`` is an earlier pod's environment record
    for this interpreter (:data:`RECORD_VARIABLE`); ``started(proc)`` is called once it runs
    (for whoever may have to kill it). Whatever happens, nothing the pod started outlives it.

    Returns
    -------
    tuple
        Its exit status (None: not reaped within the grace period), the time limit it ran past
        (None: it did not), and the tail of its stderr.
    """
    env = pod_environment(timeout)
    if record is not None:
        env[RECORD_VARIABLE] = record
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [python, "-m", "saibench_jupyter.pods", command, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=err, env=env, cwd=workdir,
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
        try:
            if started is not None:
                started(proc)
            timed_out = converse(proc, spec_json.encode(), timeout, line)
        finally:
            if proc.returncode is None:  # converse() did not get to it: nothing the pod started outlives it
                kill_group(proc.pid)
        return proc.returncode, timed_out, stderr_tail(err)


def converse(proc: subprocess.Popen[bytes], request: bytes, timeout: float | None,
             line: Callable[[bytes], None]) -> float | None:
    """Hand a pod its ``request`` on stdin, pass each line it writes to ``line``, until it ends.

    Waits for the pod's exit, its output and its timeout in one loop: neither a full pipe
    nor a child holding stdout open can hold it. Past ``timeout`` seconds the pod's process
    group is killed; once the pod is gone, its group is killed too and its remaining output
    read for at most :data:`GRACE` seconds. The pod is reaped (unless the kernel cannot
    reap it within :data:`GRACE` seconds, then ``proc.returncode`` stays None).

    Returns
    -------
    float or None
        ``timeout`` when it struck, else None.
    """
    if proc.stdin is None or proc.stdout is None:
        raise ValueError("converse() needs a pod started with stdin=PIPE and stdout=PIPE")
    deadline = None if timeout is None else time.monotonic() + timeout
    stdout, into = proc.stdout.fileno(), proc.stdin.fileno()
    out: int | None = stdout
    os.set_blocking(into, False)
    pending = memoryview(request)
    lines = _Lines(line)
    exits = pidfd(proc.pid)
    poller = select.poll()  # not select(): a kernel with 1024 open files is no reason to hang
    poller.register(stdout, select.POLLIN)
    poller.register(into, select.POLLOUT)
    if exits is not None:
        poller.register(exits, select.POLLIN)
    timed_out = None
    try:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait = left if exits is not None else min(POLL, POLL if left is None else left)
            ready = dict(poller.poll(None if wait is None else int(wait * 1000) + 1))
            if into in ready and pending:
                pending = _feed(into, pending)
                if not pending:
                    poller.unregister(into)
                    proc.stdin.close()  # the spec is complete: the pod reads it to EOF
            if out is not None and out in ready and not lines.read(out):
                poller.unregister(out)
                out = None  # EOF: the pod closed its stdout; its exit comes next
            if (exits in ready) if exits is not None else proc.poll() is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = timeout
                break
        kill_group(proc.pid)
        try:
            proc.wait(GRACE)
        except subprocess.TimeoutExpired:
            pass  # in uninterruptible sleep: reported as it stands, never waited for
        if out is not None:
            lines.drain(out, GRACE)
    finally:
        if exits is not None:
            os.close(exits)
        for pipe in (proc.stdin, proc.stdout):
            if not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass
        lines.close()
    return timed_out


def _feed(fd: int, pending: memoryview) -> memoryview:
    """Write what the pipe takes of ``pending`` now; the rest (empty once the reader is gone)."""
    try:
        return pending[os.write(fd, pending):]
    except BlockingIOError:
        return pending
    except (BrokenPipeError, OSError):
        return pending[:0]  # died at once: classified from its exit status


class _Lines:
    """Splits a pod's output into lines for ``line`` (a last line without newline included)."""

    def __init__(self, line: Callable[[bytes], None]) -> None:
        self.line = line
        self.partial = b""

    def read(self, fd: int) -> bool:
        """Read what ``fd`` holds now; False at end of file."""
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        *complete, self.partial = (self.partial + chunk).split(b"\n")
        for raw in complete:
            if raw.strip():
                self.line(raw)
        return True

    def drain(self, fd: int, seconds: float) -> None:
        """Read until end of file, for at most ``seconds`` (a writer that escaped the group may hold it)."""
        os.set_blocking(fd, False)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if poller.poll(int(left * 1000) + 1) and not self.read(fd):
                return

    def close(self) -> None:
        if self.partial.strip():
            self.line(self.partial)
        self.partial = b""


def relay_line(raw: bytes, events: PodEvents, held: list[dict[str, Any]]) -> None:
    """Forward one line of a pod's event stream (a ``failed`` event is held back)."""
    try:
        event = json.loads(raw)
    except json.JSONDecodeError:
        # Not ours (a library writing to the event fd): keep it, as a log line.
        event = {"event": "log", "level": "warning", "message": raw.decode("utf-8", "replace").rstrip()}
    if not isinstance(event, dict):
        return
    event.setdefault("t", time.time())
    if event.get("event") == "failed":
        held.append(event)
    else:
        events(event)
