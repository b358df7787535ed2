"""A pod's lifeline: it dies with the process that started it, and by its own deadline.

The executor kills a pod (with its process group) at its timeout. These are the pod's own
guards for when the executor cannot, because it is gone or stuck:

* the parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG)``): the kernel kills the pod
  the moment its parent dies. It is set at the start of the pod process itself, not in a
  ``preexec_fn`` (unsafe in a threaded parent such as a Jupyter kernel); a parent that died
  before it was set is caught by comparing ``os.getppid()`` with the parent the executor
  named in :data:`PARENT_VARIABLE`;
* a deadline: past its timeout plus :data:`GRACE` (handed over in :data:`DEADLINE_VARIABLE`)
  the pod kills itself and its process group, whoever is still listening;
* a closed event pipe: when nobody reads the pod's events any more (the controller, or the
  warm worker, died), the pod kills itself and its process group;
* a keeper: a small child, forked before anything else, that kills the pod's process group
  once the pod is gone, however it went. The parent-death signal kills the pod outright
  (no chance to kill its group), and so do a segfault or the out-of-memory killer: without
  the keeper a child the module forked would outlive a pod whose controller died. (A warm
  pod's worker does this for its pods.)

Only the standard library is imported here: a cold pod loads this before anything else.
"""

from __future__ import annotations

import os
import select
import signal
import stat
import threading
import time
from typing import NoReturn

from ..common import die_with_parent

#: The pid of the process that started the pod (set by the executor; read once, then removed).
PARENT_VARIABLE = "SAIBENCH_POD_PARENT"
#: Seconds after its start at which the pod ends itself (its timeout plus :data:`GRACE`).
DEADLINE_VARIABLE = "SAIBENCH_POD_DEADLINE"
#: Seconds allowed past a limit: for a killed pod to be reaped, its last events to be read,
#: a pod to end itself after its executor's timeout, a worker to exit once asked.
GRACE = 3.0
#: The exit status of a pod that ended itself (when it could not kill its own group).
ABANDONED = 125

def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (a pod and every process it started), if any is left."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when process ``pid`` exits (Linux ≥ 5.3), else None.

    Waiting on it wakes the moment the pod exits; ``Popen.wait(timeout)`` polls with
    sleeps that grow to 50 ms (a 300 ms pod was seen ~25 ms late on average).
    """
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or already reaped
        return None


def end(reason: str) -> NoReturn:
    """End this pod now, with its process group when it leads one (its forked children die too)."""
    try:
        os.write(2, f"saibench pod {os.getpid()}: {reason}: ending the pod and its process group\n".encode())
    except OSError:
        pass
    if os.getpgrp() == os.getpid():  # its own group (the executors make it so), not a shell's
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(ABANDONED)


def watch(events: int | None, seconds: float | None) -> None:
    """End this pod when nobody reads ``events`` any more, or ``seconds`` from now.

    A daemon thread waits for both (a pipe's write end reports ``POLLERR`` once its last
    reader closed it). ``events`` is the pod's own descriptor for the event stream;
    descriptors that are not pipes are not watched (a file or a terminal has no reader).
    """
    try:
        pipe = events is not None and stat.S_ISFIFO(os.fstat(events).st_mode)
    except OSError:
        pipe = False
    if not pipe and seconds is None:
        return
    deadline = None if seconds is None else time.monotonic() + seconds
    threading.Thread(target=_watch, args=(events if pipe else None, deadline, seconds), daemon=True,
                     name="saibench-lifeline").start()


def _watch(events: int | None, deadline: float | None, seconds: float | None) -> None:
    poller = select.poll()
    if events is not None:
        poller.register(events, select.POLLERR | select.POLLHUP)
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            end(f"still running {seconds:g} s after it started (its time limit and grace), though its executor "
                "should have stopped it")
        if poller.poll(None if left is None else max(1, int(left * 1000))):
            end("nobody reads its events any more (its controller or warm worker is gone)")


def handed(environ: dict[str, str] | os._Environ[str]) -> tuple[int | None, float | None]:
    """The parent pid and the deadline (seconds) an executor handed over in ``environ``; both are removed.

    Removed so that nothing the module starts mistakes them for its own.
    """
    parent, deadline = environ.pop(PARENT_VARIABLE, None), environ.pop(DEADLINE_VARIABLE, None)
    try:
        seconds = float(deadline) if deadline is not None else None
    except ValueError:
        seconds = None
    return (int(parent) if parent is not None and parent.isdigit() else None), seconds


def keep_group(events: int | None = None) -> int | None:
    """Fork a keeper that kills this process's group once this process is gone; returns its pid.

    Only for a process that leads its own group (as executors start pods), and before any
    thread starts. The keeper holds no end of the pod's pipes (``events``: the pod's own copy
    of its event stream, closed in the keeper), so the executor still sees them close.
    """
    pod = os.getpid()
    if os.getpgrp() != pod:
        return None
    exits = pidfd(pod)
    keeper = os.fork()
    if keeper:
        if exits is not None:
            os.close(exits)
        return keeper
    try:  # the keeper
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        if events is not None:
            os.close(events)
        if exits is not None:
            poller = select.poll()
            poller.register(exits, select.POLLIN)
            poller.poll()
        else:
            while os.getppid() == pod:
                time.sleep(0.2)
        kill_group(pod)  # the pod is gone: so are the processes it left, and the keeper itself
    finally:
        os._exit(0)


def release(keeper: int | None) -> None:
    """Stop the keeper of a pod that ends normally (its executor kills what is left of its group).

    Reaped here, so that it is no zombie for ``init`` to collect.
    """
    if keeper is None:
        return
    try:
        os.kill(keeper, signal.SIGKILL)
        os.waitpid(keeper, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def hold(events: int | None) -> int | None:
    """Arm every guard the executor asked for (first thing in a pod process, before any import).

    Exits at once when the parent is already gone. Returns the keeper's pid, for :func:`release`.
    """
    parent, seconds = handed(os.environ)
    if parent is not None and not die_with_parent(parent):
        os._exit(ABANDONED)
    keeper = keep_group(events) if parent is not None else None
    watch(events, seconds)
    return keeper
