"""Warm pods: one worker process per environment that forks a fresh child per pod.

A cold pod pays for starting Python and importing SAIBench and NumPy every time. The
warm worker (``python -m saibench_jupyter.pods serve``) pays once: it imports them,
then forks one child per request. Each child is still its own process and process
group with its own limits, so isolation is the same as a cold pod's; only the start-up
is shared. The worker stays single-threaded (a selector loop) because forking a
threaded process can deadlock the child.

Protocol on the worker's stdin/stdout, one JSON object per line:

* request ``{"spec": {...}, "stderr": path}``: fork a pod; its stderr goes to ``path``;
* ``{"event": "spawned", "pod", "pid"}`` then the pod's own events, relayed whole;
* ``{"event": "exited", "pod", "returncode"}`` (negative: killed by that signal).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import traceback
from typing import Any

from ._environments import Interpreter
from ._executors import PodEvents
from ._shim import EventWriter, environment_record, rebuild, run_guarded
from ._spec import PodSpec
from ._subprocess import SubprocessExecutor, _kill_group, conclude, pod_environment, relay_line, stderr_tail

#: A scenario the worker runs once before serving, so that every forked pod inherits
#: the imports and first-use caches a run needs (measured: a first run costs ~3× the next).
_WARM_UP = """
from saibench_jupyter.sail import *

@ProblemDefinition
def WarmUp():
    for x, y in zip(Input("x.npy", Tensor(3)), Input("y.npy", Tensor(3))):
        Test.Solve(x, y)

@ModelDefinition
def Same(task, inputType, outputType):
    return Solver(lambda x: x)

@MetricDefinition
def Gap():
    return sum(L2Error(a, b) for (_, a, b) in Test.Solve)

@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy")

@HardwareDefinition
def OneCpu():
    return Resources(cpus=1)
"""


def warm_up() -> None:
    """Run :data:`_WARM_UP` here (SAIBench's own code only: no user module runs in the worker)."""
    import numpy as np

    from ..planner import discover
    from ..repository import Repository
    from ..runtime import run_scenario

    with tempfile.TemporaryDirectory() as folder:
        np.save(os.path.join(folder, "x.npy"), np.ones((2, 3)))
        np.save(os.path.join(folder, "y.npy"), np.ones((2, 3)))
        repo = Repository()
        repo.add_source(_WARM_UP, os.path.join(folder, "warm_up.py"))
        for scenario in discover(repo).scenarios:
            run_scenario(scenario, repository=repo)


def serve() -> int:
    """Run the worker until its stdin closes; return its exit status."""
    try:
        warm_up()
    except Exception:  # a worker that could not warm up still serves, only slower
        traceback.print_exc()
    import gc

    gc.freeze()  # the forked pods share these pages instead of copying them when the GC touches them
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    prepared = _Prepared(environment_record())
    selector = selectors.DefaultSelector()
    stdin = sys.stdin.fileno()
    selector.register(stdin, selectors.EVENT_READ, None)
    children: dict[int, tuple[str, int, bytearray]] = {}  # read fd -> (pod, pid, partial line)
    pending = bytearray()
    open_stdin = True
    _send(out, {"event": "ready", "pid": os.getpid()})
    while open_stdin or children:
        for key, _ in selector.select():
            if key.data is None:  # a request
                chunk = os.read(stdin, 1 << 16)
                if not chunk:
                    selector.unregister(stdin)
                    open_stdin = False
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, _, rest = bytes(pending).partition(b"\n")
                    pending[:] = rest
                    _spawn(line, out, selector, children, prepared)
            else:
                fd = key.fd
                pod, pid, partial = children[fd]
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    partial += chunk
                    if b"\n" in partial:
                        complete, _, rest = bytes(partial).rpartition(b"\n")
                        out.write(complete.decode("utf-8", "replace") + "\n")
                        partial[:] = rest
                    continue
                selector.unregister(fd)
                os.close(fd)
                del children[fd]
                _, status = os.waitpid(pid, 0)
                _send(out, {"event": "exited", "pod": pod, "returncode": _returncode(status)})
    return 0


class _Prepared:
    """What the worker works out once, before forking, so that its pods need not each redo it.

    * the environment record per set of requirements (package metadata: no user code);
    * the rebuilt scenario per scenario and sources. Discovery dry-runs module code, which
      the kernel that planned the run has already done with the same sources: the worker
      is no more exposed than the kernel. A rebuild that fails is left to the pod, which
      reports why.
    """

    LIMIT = 64  # scenarios kept: each holds a parsed repository

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.records: dict[tuple[str, ...], dict[str, Any]] = {}
        self.rebuilt: dict[tuple[Any, ...], tuple[Any, Any] | None] = {}

    def environment(self, spec: PodSpec) -> dict[str, Any]:
        requirements = tuple(spec.environment.get("pip", ()))
        if requirements not in self.records:
            self.records[requirements] = environment_record(requirements, self.record)
        return self.records[requirements]

    def scenario(self, spec: PodSpec) -> tuple[Any, Any] | None:
        key = (spec.scenario, spec.sources, json.dumps(spec.params, sort_keys=True, default=repr))
        if key not in self.rebuilt:
            here = os.getcwd()
            try:
                os.chdir(spec.workdir)  # where the pod itself would rebuild it (data paths are relative)
                self.rebuilt[key] = rebuild(spec)
            except KeyboardInterrupt:
                raise
            except BaseException:  # a dry run past its deadline, sys.exit in a module: the pod reports it
                self.rebuilt[key] = None
            finally:
                os.chdir(here)
            while len(self.rebuilt) > self.LIMIT:
                del self.rebuilt[next(iter(self.rebuilt))]
            import gc

            gc.freeze()  # as after the warm-up: the pods share these objects' pages
        return self.rebuilt[key]


def _spawn(line: bytes, out: Any, selector: selectors.BaseSelector, children: dict[int, Any],
           prepared: _Prepared) -> None:
    try:
        request = json.loads(line)
        spec = PodSpec.from_dict(request["spec"])
    except (ValueError, KeyError, TypeError) as exc:
        _send(out, {"event": "failed", "pod": "?", "kind": "spec", "message": f"bad request to the warm worker: {exc}"})
        return
    record, rebuilt = prepared.environment(spec), prepared.scenario(spec)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the pod
        code = 1
        try:
            os.setsid()  # its own process group: a timeout kills its children too
            os.close(read)
            for fd in list(children):
                os.close(fd)
            err = os.open(request.get("stderr") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(err, 2)
            os.dup2(err, 1)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            code = run_guarded(spec, EventWriter(os.fdopen(write, "w", buffering=1, encoding="utf-8"), spec.pod),
                               record, rebuilt)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)  # never return into the worker's loop
    os.close(write)
    selector.register(read, selectors.EVENT_READ, spec.pod)
    children[read] = (spec.pod, pid, bytearray())
    _send(out, {"event": "spawned", "pod": spec.pod, "pid": pid})


def _returncode(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _send(out: Any, event: dict[str, Any]) -> None:
    out.write(json.dumps(event) + "\n")


# -- the executor's side --------------------------------------------------------------------------
class _Pod:
    """One pod in flight on a warm worker."""

    def __init__(self, events: PodEvents) -> None:
        self.events = events
        self.held: list[dict[str, Any]] = []
        self.pid: int | None = None
        self.returncode: int | None = None
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
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True, name="saibench-warm-reader").start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

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
                pod.exited.set()  # returncode None: the worker is gone
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
            with self.lock:
                pod = self.pods.get(str(event.get("pod")))
            if pod is None:
                continue
            if kind == "spawned":
                pod.pid = int(event["pid"])
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
        for pod in orphans:
            pod.exited.set()

    def close(self, kill: bool = False) -> None:
        if kill:
            with self.lock:
                pids = [p.pid for p in self.pods.values() if p.pid]
            for pid in pids:
                _kill_group(pid)
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the worker exits once its pods have
        except OSError:
            pass
        try:
            self.proc.wait(timeout=None if not kill else 10)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc)
        self.log.close()


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

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        with tempfile.NamedTemporaryFile(prefix="saibench-pod-", suffix=".stderr", delete=False) as err:
            path = err.name
        try:
            pod = self._worker(interpreter).submit(spec, path, events)
            timed_out = None
            if not pod.exited.wait(spec.limits.timeout):
                if pod.pid:
                    _kill_group(pod.pid)
                pod.exited.wait()
                timed_out = spec.limits.timeout
            with open(path, "rb") as f:
                tail = stderr_tail(f)
        finally:
            os.unlink(path)
        conclude(spec, events, pod.held, pod.returncode, timed_out, tail, self._cancelled)

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
