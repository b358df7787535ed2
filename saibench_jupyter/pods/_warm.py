"""Warm pods: one worker process per environment that forks a fresh child per pod.

The worker (:mod:`._worker`, ``python -m saibench_jupyter.pods serve``) imports SAIBench
and NumPy once and forks each pod from there; this is the executor's side. Every wait is
bounded: for the worker to start (:data:`STARTUP`), for the pod to be forked and to end
(its timeout), for a killed pod to be reported (:data:`~._lifeline.GRACE`); a worker that
misses one is killed with its pods, which are reported like the pods of a worker that died.
The pod's time starts once the worker is ready: its warm-up is not the pod's.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from typing import Any

from ._environments import Interpreter
from ._executors import PodEvents
from ._lifeline import GRACE, kill_group
from ._spec import PodSpec
from ._subprocess import SubprocessExecutor, conclude, pod_environment, relay_line, stderr_tail

#: Seconds a worker may take to start (Python, the imports, the warm-up scenario).
STARTUP = 120.0


class _Pod:
    """One pod in flight on a warm worker."""

    def __init__(self, events: PodEvents) -> None:
        self.events = events
        self.held: list[dict[str, Any]] = []
        self.pid: int | None = None
        self.returncode: int | None = None
        self.spawned = threading.Event()  # also set when it never will be (the worker is gone)
        self.exited = threading.Event()


class _Worker:
    """A warm worker process for one interpreter, and the thread reading its output."""

    def __init__(self, python: str) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([python, "-m", "saibench_jupyter.pods", "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, env=pod_environment(),
                                     start_new_session=True)
        self.pods: dict[str, _Pod] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()  # also set when it never will be (the worker is gone)
        #: the worker said it leaves for want of work: a request it did not take goes to a new one
        self.retired = False
        self.gone = threading.Event()  # its output ended: it exited
        threading.Thread(target=self._read, daemon=True, name="saibench-warm-reader").start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and not self.retired

    def submit(self, spec: PodSpec, stderr: str, events: PodEvents) -> _Pod:
        pod = _Pod(events)
        with self.lock:
            self.pods[spec.pod] = pod
            try:
                if self.proc.stdin is None:
                    raise BrokenPipeError
                self.proc.stdin.write((json.dumps({"spec": spec.to_dict(), "stderr": stderr}) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self.pods.pop(spec.pod, None)
                pod.spawned.set()  # pid None: the worker is gone
                pod.exited.set()
        return pod

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
                pod.pid = int(event["pid"])
                pod.spawned.set()
            elif kind == "exited":
                pod.returncode = int(event["returncode"])
                with self.lock:
                    self.pods.pop(str(event.get("pod")), None)
                pod.exited.set()
            else:
                relay_line(raw, pod.events, pod.held)
        # The worker is gone: whatever it was running will not report.
        with self.lock:
            orphans, self.pods = list(self.pods.values()), {}
        self.ready.set()
        self.gone.set()
        for pod in orphans:
            pod.spawned.set()
            pod.exited.set()

    def close(self, kill: bool = False) -> None:
        """Let the worker go (it exits once its pods have); ``kill``: kill them and it at once.

        Bounded: a worker still there :data:`~._lifeline.GRACE` seconds after being let go is killed.
        """
        if kill:
            self._kill_pods()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
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


class WarmExecutor(SubprocessExecutor):
    """Pods forked from a warm worker per environment: the isolation of ``subprocess``, a fraction of the start-up.

    Each pod is still a process of its own (its own process group, limits and stderr);
    only the interpreter start and the imports are paid once per worker.
    """

    name = "warm"

    def __init__(self, jobs: int = 1) -> None:
        super().__init__(jobs)
        self._workers: dict[str, _Worker] = {}

    def _worker(self, interpreter: Interpreter) -> _Worker:
        with self._lock:
            worker = self._workers.get(interpreter.python)
            if worker is None or not worker.alive:
                worker = self._workers[interpreter.python] = _Worker(interpreter.python)
        return worker

    def _drop(self, worker: _Worker) -> None:
        """Kill a worker that missed a deadline, with its pods; the next pod starts a new one."""
        with self._lock:
            for key, known in list(self._workers.items()):
                if known is worker:
                    del self._workers[key]
        worker.close(kill=True)

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        with tempfile.NamedTemporaryFile(prefix="saibench-pod-", suffix=".stderr", delete=False) as err:
            path = err.name
        try:
            pod, timed_out = self._run(spec, interpreter, path, events)
            with open(path, "rb") as f:
                tail = stderr_tail(f)
        finally:
            os.unlink(path)
        conclude(spec, events, pod.held, pod.returncode, timed_out, tail, self._cancelled)

    def _run(self, spec: PodSpec, interpreter: Interpreter, path: str, events: PodEvents) -> tuple[_Pod, float | None]:
        """Run the pod on a worker, waiting at most its timeout and grace; returns it, and the timeout if it struck."""
        timeout = spec.limits.timeout
        for _ in range(2):  # a second time only when the worker retired as the request came
            worker = self._worker(interpreter)
            if not worker.ready.wait(STARTUP):
                self._drop(worker)
            pod = worker.submit(spec, path, events)
            started = time.monotonic()
            if not pod.spawned.wait(timeout):  # the worker is stuck (rebuilding the scenario) past the pod's time
                self._drop(worker)
                pod.exited.wait(GRACE)
                return pod, timeout
            if pod.pid is None and worker.gone.wait(GRACE) and worker.retired:
                continue
            left = None if timeout is None else max(0.0, started + timeout - time.monotonic())
            if pod.exited.wait(left):
                return pod, None
            if pod.pid:
                kill_group(pod.pid)  # the worker reaps it and reports its exit
            if not pod.exited.wait(GRACE):
                self._drop(worker)
                pod.exited.wait(GRACE)
            return pod, timeout
        return pod, None

    def cancel(self) -> None:
        super().cancel()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.close(kill=True)

    def finish(self) -> None:
        super().finish()
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()
