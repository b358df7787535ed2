"""The subprocess executor: each pod in its own process group, killed whole on timeout.

The pod is ``python -m saibench_jupyter.pods run -`` in the environment's interpreter,
reading its spec from stdin and writing events to stdout; stderr goes to a temporary
file whose tail is kept when the pod fails. The executor, not the pod, enforces the
wall-clock limit (``os.killpg`` reaches the pod's children too), and it classifies an
early death from what it observed: the exit status, the signal, the limits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from typing import IO, Any

from ._environments import Interpreter
from ._executors import Executor, PodEvents
from ._shim import RECORD_VARIABLE
from ._spec import PodSpec

#: Characters of stderr kept with a failure.
STDERR_TAIL = 4000


def pod_environment() -> dict[str, str]:
    """The environment variables of a pod process.

    Bytecode writing is switched back on: with ``PYTHONDONTWRITEBYTECODE`` set every
    cold pod would compile SAIBench and its modules again (hundreds of ms).
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
        elif returncode is None:
            events.fail("lost", "the warm worker running the pod died", stderr=tail or None,
                        fix="see the stderr tail; the next pod starts a new worker")
        else:
            kind, message, fix = classify_exit(returncode, timed_out, spec.limits.memory, tail)
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

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        env = pod_environment()
        with self._lock:
            if interpreter.python in self._records:
                env[RECORD_VARIABLE] = self._records[interpreter.python]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [interpreter.python, "-m", "saibench_jupyter.pods", "run", "-"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                start_new_session=True,  # its own process group: a timeout kills its children too
                cwd=spec.workdir,
            )
            with self._lock:
                self._running[spec.pod] = proc
            held: list[dict[str, Any]] = []
            reader = threading.Thread(target=_relay, args=(proc, events, held), daemon=True)
            reader.start()
            try:
                if proc.stdin is not None:
                    try:
                        proc.stdin.write(spec.to_json().encode())
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass  # died at once: classified below from its exit status
                timed_out = self._wait(proc, spec.limits.timeout)
                reader.join()
            finally:
                with self._lock:
                    self._running.pop(spec.pod, None)
            tail = stderr_tail(err)
        if events.environment is not None:
            with self._lock:
                self._records[interpreter.python] = json.dumps(events.environment)
        conclude(spec, events, held, proc.returncode, timed_out, tail, self._cancelled)

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], timeout: float | None) -> float | None:
        """Wait for the pod; kill its process group past ``timeout``. Returns the timeout if it struck."""
        if _exits_within(proc, timeout):
            return None
        _kill_group(proc)
        proc.wait()
        return timeout

    def cancel(self) -> None:
        super().cancel()
        with self._lock:
            running = list(self._running.values())
        for proc in running:
            _kill_group(proc)


def _exits_within(proc: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """True once ``proc`` has exited (and is reaped), False if it is still running after ``timeout``.

    ``Popen.wait(timeout)`` polls with sleeps that grow to 50 ms: a 300 ms pod was seen
    ~25 ms late on average. A pidfd (Linux ≥ 5.3) wakes us the moment the pod exits.
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or already reaped
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        exited = bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)
    if exited:
        proc.wait()
    return exited


def _kill_group(proc: subprocess.Popen[bytes] | int) -> None:
    try:
        os.killpg(proc if isinstance(proc, int) else proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _relay(proc: subprocess.Popen[bytes], events: PodEvents, held: list[dict[str, Any]]) -> None:
    """Forward the pod's events as they come; hold back its ``failed`` event until stderr is known."""
    if proc.stdout is None:
        return
    for raw in proc.stdout:
        relay_line(raw, events, held)


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
