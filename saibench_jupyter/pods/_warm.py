"""Warm pods: a worker process per environment and kind of pod that forks a fresh child per pod.

The worker (:mod:`._worker`, ``python -m saibench_jupyter.pods serve``) imports SAIBench
and NumPy once (and PyTorch, for torch pods: :mod:`._forksafe`) and forks each pod from
there; this is the executor's side, and the default executor. Every wait is bounded: for
the worker to start (:data:`STARTUP`), for the pod to be forked and to end (its timeout),
for a killed pod to be reported (:data:`~._lifeline.GRACE`); a worker that misses one is
killed with its pods, which are reported like the pods of a worker that died. The pod's
time starts once the worker is ready: its warm-up is not the pod's.

A worker is recycled (let go once its pods end; the next pod starts a fresh one) after
:data:`RECYCLE_PODS` pods or :data:`RECYCLE_MB` MiB of growth of its resident memory past
what it held at its first fork (with the support code run and the data loaded that its
first scenario needs: a large dataset is what it is there to share, not a leak). A
worker that dies (killed, out of memory) fails the pods it was running with kind
``worker``, keeping what they reported; requests it had not forked yet go to a new one.
Pods that cannot be forked safely run cold, as the ``subprocess`` executor runs them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from ._environments import Interpreter
from ._executors import PodEvents
from ._forksafe import preload_of
from ._lifeline import GRACE, kill_group
from ._spec import PodSpec
from ._subprocess import SubprocessExecutor, conclude, pod_environment, relay_line, stderr_tail

#: Seconds a worker may take to start (Python, the imports, the warm-up scenario).
STARTUP = 120.0
#: Pods a worker forks before it is recycled (``$SAIBENCH_WARM_PODS``).
RECYCLE_PODS = 200
#: MiB its resident memory may grow past what it was at its first fork before it is recycled (``$SAIBENCH_WARM_MB``).
RECYCLE_MB = 512.0
PODS_VARIABLE, MB_VARIABLE = "SAIBENCH_WARM_PODS", "SAIBENCH_WARM_MB"

#: (interpreter, modules it preloads): one worker each.
_Key = tuple[str, tuple[str, ...]]


class _Pod:
    """One pod in flight on a warm worker."""

    def __init__(self, events: PodEvents) -> None:
        self.events = events
        self.held: list[dict[str, Any]] = []
        self.pid: int | None = None  # None once spawned is set: never forked (the worker left, died or refused)
        self.returncode: int | None = None
        self.declined: str | None = None  # why the worker would not fork it
        self.cause = False  # loading its scenario is what made forking unsafe there
        self.spawned = threading.Event()  # also set when it never will be (the worker is gone)
        self.exited = threading.Event()

    def forget(self) -> None:
        """It will not be forked, or not heard of again: nobody waits for it."""
        self.spawned.set()
        self.exited.set()


class _Worker:
    """A warm worker process for one interpreter and preload, and the thread reading its output."""

    def __init__(self, python: str, modules: tuple[str, ...] = ()) -> None:
        self.log = tempfile.TemporaryFile()
        command = [python, "-m", "saibench_jupyter.pods", "serve"]
        if modules:
            command += ["--preload", ",".join(modules)]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=pod_environment(), start_new_session=True)
        self.pods: dict[str, _Pod] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()  # also set when it never will be (the worker is gone)
        self.served = False  # it said it was ready
        #: it leaves for want of work, or was recycled: a request it did not take goes to a new one
        self.retired = False
        self.draining = False  # recycled: it takes no more requests and exits once its pods end
        self.forks = 0
        self.rss = self.rss_ready = 0
        self.gone = threading.Event()  # its output ended: it exited
        threading.Thread(target=self._read, daemon=True, name="saibench-warm-reader").start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and not (self.retired or self.draining or self.gone.is_set())

    def submit(self, spec: PodSpec, stderr: str, events: PodEvents) -> _Pod:
        """Ask for ``spec`` to be forked; a pod whose ``pid`` stays None once ``spawned`` was not taken."""
        pod = _Pod(events)
        with self.lock:
            if self.draining or self.gone.is_set():
                pod.forget()
                return pod
            self.pods[spec.pod] = pod
            try:
                if self.proc.stdin is None:
                    raise BrokenPipeError
                self.proc.stdin.write((json.dumps({"spec": spec.to_dict(), "stderr": stderr}) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.pods.pop(spec.pod, None)
                pod.forget()
        return pod

    def drain(self) -> None:
        """Take no more requests: the worker exits once its pods have ended (its stdin closes)."""
        with self.lock:
            self.draining = True
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            except OSError:
                pass

    def _read(self) -> None:
        if self.proc.stdout is None:
            return
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue
            kind = event.get("event")
            if kind == "ready":
                self.served = True
                self.rss = self.rss_ready = int(event.get("rss") or 0)
                self.ready.set()
                continue
            if kind == "retired":
                self.retired = True
                continue
            with self.lock:
                pod = self.pods.get(str(event.get("pod")))
            if pod is None:
                continue
            if kind == "spawned":
                self.forks = int(event.get("forks") or self.forks + 1)
                self.rss = int(event.get("rss") or self.rss)
                if self.forks == 1:  # growth counts from here: its first scenario's support code and data are its own
                    self.rss_ready = self.rss
                pod.pid = int(event["pid"])
                pod.spawned.set()
            elif kind in ("exited", "declined"):
                if kind == "exited":
                    pod.returncode = int(event["returncode"])
                else:
                    pod.declined, pod.cause = str(event.get("reason")), bool(event.get("cause"))
                with self.lock:
                    self.pods.pop(str(event.get("pod")), None)
                pod.forget()
            else:
                relay_line(raw, pod.events, pod.held)
        self.proc.stdout.close()  # end of file: the worker is gone, and this thread was its only reader
        # The worker is gone: whatever it was running will not report.
        with self.lock:
            orphans, self.pods = list(self.pods.values()), {}
            self.gone.set()
        self.ready.set()
        for pod in orphans:
            pod.forget()

    def death(self) -> str:
        """How the worker ended: ``killed by SIGKILL``, ``exited with status 1`` (waits at most the grace period)."""
        try:
            code = self.proc.wait(GRACE)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"

    def log_tail(self) -> str:
        """The end of what the worker wrote to stderr."""
        return stderr_tail(self.log)

    def close(self, kill: bool = False) -> None:
        """Let the worker go (it exits once its pods have); ``kill``: kill them and it at once.

        Bounded: a worker still there :data:`~._lifeline.GRACE` seconds after being let go is killed.
        """
        if kill:
            self._kill_pods()
        self.drain()
        try:
            self.proc.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            self._kill_pods()
            kill_group(self.proc.pid)  # its own group (its pods have theirs)
            try:
                self.proc.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                pass  # stuck in the kernel: nothing more to do from here
        self.log.close()

    def _kill_pods(self) -> None:
        with self.lock:
            pids = [p.pid for p in self.pods.values() if p.pid]
        for pid in pids:
            kill_group(pid)


@dataclass
class _Attempt:
    """How a pod went on a warm worker."""

    pod: _Pod
    timed_out: float | None = None
    cold: str | None = None  # why it must run cold instead (it was not run)
    died: str | None = None  # how the worker running it ended, when it died under it


class WarmExecutor(SubprocessExecutor):
    """Pods forked from a warm worker per environment: the isolation of ``subprocess``, a fraction of the start-up.

    The default executor. Each pod is still a process of its own (its own process group,
    limits and stderr); only the interpreter start and the imports are paid once per
    worker. Torch pods get a worker that has imported PyTorch too.

    Parameters
    ----------
    jobs : int
        Pods running at once.
    recycle_pods : int, optional
        Pods a worker forks before it is replaced (:data:`RECYCLE_PODS`, or ``$SAIBENCH_WARM_PODS``).
    recycle_mb : float, optional
        MiB its resident memory may grow before it is replaced (:data:`RECYCLE_MB`, or ``$SAIBENCH_WARM_MB``).
    """

    name = "warm"

    def __init__(self, jobs: int = 1, *, recycle_pods: int | None = None, recycle_mb: float | None = None) -> None:
        super().__init__(jobs)
        self.recycle_pods = recycle_pods if recycle_pods is not None else int(_setting(PODS_VARIABLE, RECYCLE_PODS))
        self.recycle_mb = recycle_mb if recycle_mb is not None else _setting(MB_VARIABLE, RECYCLE_MB)
        if self.recycle_pods < 1 or self.recycle_mb <= 0:
            raise ValueError(f"recycle_pods={self.recycle_pods}, recycle_mb={self.recycle_mb:g}: a worker must "
                             "run at least one pod and may grow by more than 0 MiB")
        self._workers: dict[_Key, _Worker] = {}
        self._retired: list[_Worker] = []  # recycled ones, still finishing their pods
        #: scenario id or worker key -> why its pods run cold (a worker could not fork them safely, or start)
        self._cold: dict[str | _Key, str] = {}

    def _worker(self, key: _Key) -> _Worker:
        with self._lock:
            worker = self._workers.get(key)
            if worker is None or not worker.alive:
                if worker is not None:
                    self._retired.append(worker)  # reaped at finish()
                worker = self._workers[key] = _Worker(*key)
        return worker

    def prepare(self) -> None:
        """Start the worker for NumPy pods of this interpreter now: its start-up overlaps the caller's discovery.

        Torch pods get theirs when they come; a worker nobody uses ends with :meth:`finish`.
        """
        if hasattr(os, "fork"):
            self._worker((sys.executable, ()))

    def _retire(self, worker: _Worker, kill: bool = False) -> None:
        """Take ``worker`` out of service: it ends once its pods have (``kill``: now, with them)."""
        with self._lock:
            for key, known in list(self._workers.items()):
                if known is worker:
                    del self._workers[key]
            if worker not in self._retired:
                self._retired.append(worker)
        if kill:
            worker.close(kill=True)
        else:
            worker.drain()

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        key = (interpreter.python, preload_of(spec.environment))
        with self._lock:
            cold = self._cold.get(spec.scenario) or self._cold.get(key)
        if cold is None and not hasattr(os, "fork"):
            cold = "this system cannot fork"
        if cold is None:
            with tempfile.NamedTemporaryFile(prefix="saibench-pod-", suffix=".stderr", delete=False) as err:
                path = err.name
            try:
                attempt = self._run(spec, key, path, events)
                with open(path, "rb") as f:
                    tail = stderr_tail(f)
            finally:
                os.unlink(path)
            if attempt.cold is None:
                pod = attempt.pod
                if attempt.died is not None and not pod.held and events.final is None and not self._cancelled:
                    events.fail("worker", f"the warm worker running the pod died ({attempt.died}), and the pod "
                                "with it; what it reported before is kept", stderr=tail or None,
                                fix="run again with rerun='failed' to do it again; the run's other pods went on "
                                    "in a new worker")
                    return
                conclude(spec, events, pod.held, pod.returncode, attempt.timed_out, tail, self._cancelled)
                return
            cold = attempt.cold
        events({"event": "log", "level": "warning", "message": f"saibench: this pod ran cold: {cold}"})
        super().execute(spec, interpreter, events)

    def _run(self, spec: PodSpec, key: _Key, path: str, events: PodEvents) -> _Attempt:
        """Run the pod on a worker, waiting at most its timeout and grace."""
        timeout = spec.limits.timeout
        pod = _Pod(events)
        # Again only for a request no worker forked: one that retired, was recycled or died first.
        for _ in range(3):
            worker = self._worker(key)
            if not worker.ready.wait(STARTUP) or not worker.served:  # its pods run cold from now on
                reason = (f"the warm worker could not start ({worker.death()}): {worker.log_tail()[-500:].strip()}"
                          if worker.gone.is_set() else f"the warm worker did not start within {STARTUP:g} s")
                with self._lock:
                    self._cold[key] = reason
                self._retire(worker, kill=True)
                return _Attempt(pod, cold=reason)
            pod = worker.submit(spec, path, events)
            started = time.monotonic()
            if not pod.spawned.wait(timeout):  # the worker is stuck (preparing the scenario) past the pod's time
                self._retire(worker, kill=True)
                pod.exited.wait(GRACE)
                return _Attempt(pod, timeout)
            if pod.declined is not None:  # module code made forking unsafe in that worker
                if pod.cause:  # this scenario's: its pods run cold from now on
                    with self._lock:
                        self._cold[spec.scenario] = pod.declined
                self._retire(worker)
                return _Attempt(pod, cold=pod.declined)
            if pod.pid is None:
                continue
            if worker.forks >= self.recycle_pods or worker.rss - worker.rss_ready >= self.recycle_mb * 2**20:
                self._retire(worker)  # this pod runs on; the next one gets a fresh worker
            left = None if timeout is None else max(0.0, started + timeout - time.monotonic())
            if pod.exited.wait(left):
                died = worker.death() if pod.returncode is None and worker.gone.is_set() else None
                return _Attempt(pod, died=died)
            if pod.pid:
                kill_group(pod.pid)  # the worker reaps it and reports its exit
            if not pod.exited.wait(GRACE):
                self._retire(worker, kill=True)
                pod.exited.wait(GRACE)
            return _Attempt(pod, timeout)
        return _Attempt(pod, cold="three warm workers in turn left before taking it")

    def cancel(self) -> None:
        super().cancel()
        with self._lock:
            workers = [*self._workers.values(), *self._retired]
        for worker in workers:
            worker.close(kill=True)

    def finish(self) -> None:
        super().finish()
        with self._lock:
            workers, self._workers = [*self._workers.values(), *self._retired], {}
            self._retired = []
        for worker in workers:
            worker.close()


def _setting(variable: str, default: float) -> float:
    """A positive number from the environment variable ``variable``, else ``default``."""
    try:
        value = float(os.environ.get(variable, default))
    except ValueError:
        return default
    return value if value > 0 else default
