"""The warm worker: ``python -m saibench_jupyter.pods serve``, which forks a fresh child per pod.

A cold pod pays for starting Python and importing SAIBench and NumPy every time. The
worker pays once: it imports them, then forks one child per request. Each child is still
its own process and process group with its own limits, so isolation is the same as a cold
pod's; only the start-up is shared. The worker runs one ``poll`` loop (forking a process
busy in several threads can deadlock the child). ``serve --preload torch`` also imports
PyTorch first, for torch pods (:mod:`._forksafe` says what is safe to import before forking).

Protocol on the worker's stdin/stdout, one JSON object per line:

* request ``{"spec": {...}, "stderr": path}``: fork a pod; its stderr goes to ``path``;
* ``{"event": "ready", "pid", "preload", "rss"}`` once, when the worker takes requests
  (``preload``: the modules it imported for its pods; ``rss``: its resident bytes);
* ``{"event": "spawned", "pod", "pid", "forks", "rss"}`` (its pods so far, its resident bytes
  now: the executor recycles a worker by these) then the pod's own events, relayed whole;
* ``{"event": "declined", "pod", "reason", "cause"}`` instead, when forking is no longer safe
  (:class:`~._forksafe.ForkGuard`): the pod is not run here, nor any later one (``cause``:
  loading this pod's scenario made it unsafe);
* ``{"event": "exited", "pod", "returncode"}`` (negative: killed by that signal);
* ``{"event": "retired"}`` before it exits for having had nothing to do for
  :data:`IDLE` seconds (``$SAIBENCH_WARM_IDLE``).

Nothing it starts outlives it, and it does not outlive its controller: each pod's process
group is killed when the pod exits (children it forked die with it) or runs past its
timeout plus :data:`~._lifeline.GRACE`; when stdin closes the worker finishes its pods and
exits; when nobody reads its stdout any more, or its parent dies (``SIGTERM``, the
parent-death signal), it kills every pod's group and exits at once.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

from ..common import die_with_parent
from ._forksafe import ForkGuard, preload, resident_bytes, serial, threads_as_cold
from ._lifeline import ABANDONED, GRACE, handed, kill_group, pidfd, watch
from ._shim import EventWriter, Rebuilt, environment_record, load_sources, rebuild, run_guarded
from ._spec import PodSpec

#: Seconds the worker waits with no pod and no request before it exits.
IDLE = 120.0
IDLE_VARIABLE = "SAIBENCH_WARM_IDLE"
#: Seconds between looks at the pods where no pidfd tells when one exits (not Linux).
POLL = 0.05

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


def serve(modules: tuple[str, ...] = ()) -> int:
    """Run the worker until its stdin closes and its pods have ended; return its exit status.

    Parameters
    ----------
    modules : tuple of str
        What to import before serving, besides SAIBench and NumPy (``("torch",)`` for torch pods).
    """
    parent, _ = handed(os.environ)
    if parent is not None and not die_with_parent(parent, signal.SIGTERM):
        return ABANDONED  # the controller died while this worker started
    try:
        warm_up()
    except Exception:  # a worker that could not warm up still serves, only slower
        traceback.print_exc()
    preload(modules)  # after the warm-up: it runs NumPy only, never an operation of these
    serial()
    import gc

    gc.freeze()  # the forked pods share these pages instead of copying them when the GC touches them
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    try:
        idle = float(os.environ.get(IDLE_VARIABLE, IDLE))
    except ValueError:
        idle = IDLE
    loop = _Loop(out, _Prepared(environment_record()), idle, modules)
    signal.signal(signal.SIGTERM, lambda *_: loop.abandon("the thread or process that started it ended"))
    return loop.run()


@dataclass
class _Child:
    """A pod the worker forked."""

    pod: str
    pid: int
    pipe: int | None  # the read end of its event pipe, until end of file
    exits: int | None  # its pidfd (readable once it exited), where the system has them
    deadline: float | None
    partial: bytearray = field(default_factory=bytearray)


class _Loop:
    """The worker's event loop: requests in, pods forked and watched, events out."""

    def __init__(self, out: IO[str], prepared: _Prepared, idle: float, modules: tuple[str, ...] = ()) -> None:
        self.out = out
        self.prepared = prepared
        self.idle = idle
        self.modules = modules
        self.guard = ForkGuard()  # the threads it has now, with everything imported and nothing of it run
        self.unsafe: str | None = None  # why it forks no more, once it must not
        self.forks = 0
        self.stdin = sys.stdin.fileno()
        self.open = True
        self.pending = bytearray()
        self.children: dict[int, _Child] = {}  # pid -> child
        self.fds: dict[int, int] = {}  # a child's pipe or pidfd -> its pid
        self.poller = select.poll()
        self.poller.register(self.stdin, select.POLLIN)
        # A pipe's write end reports POLLERR once nobody reads it: the controller is gone.
        self.poller.register(out.fileno(), select.POLLERR)

    def run(self) -> int:
        preloaded = [m for m in self.modules if m in sys.modules]  # one that failed to import is the pods' to report
        self.send({"event": "ready", "pid": os.getpid(), "preload": preloaded, "rss": resident_bytes()})
        quiet_since = time.monotonic()
        while self.open or self.children:
            for fd, _ in self.poller.poll(self._wait(quiet_since)):
                if fd == self.out.fileno():
                    self.abandon("nobody reads its output any more (its controller is gone)")
                elif fd == self.stdin:
                    self.request()
                elif fd in self.fds:
                    child = self.children[self.fds[fd]]
                    if fd == child.pipe:
                        self.read(child)
                    else:
                        self.reap(child)
            now = time.monotonic()
            for child in list(self.children.values()):
                if child.exits is None and _exited(child.pid):
                    self.reap(child)
                elif child.deadline is not None and now > child.deadline:
                    kill_group(child.pid)  # past its time and grace: its exit is reaped next
                    child.deadline = None
            if self.children:
                quiet_since = now
            elif self.open and now - quiet_since >= self.idle and not select.select([self.stdin], [], [], 0)[0]:
                self.send({"event": "retired"})
                return 0
        return 0

    def _wait(self, quiet_since: float) -> int | None:
        """Milliseconds until the next thing the loop must do by itself (None: only on input)."""
        now = time.monotonic()
        moments = [c.deadline for c in self.children.values() if c.deadline is not None]
        if not self.children and self.open:
            moments.append(quiet_since + self.idle)
        if any(c.exits is None for c in self.children.values()):
            moments.append(now + POLL)
        return None if not moments else max(0, int((min(moments) - now) * 1000) + 1)

    def request(self) -> None:
        chunk = os.read(self.stdin, 1 << 16)
        if not chunk:
            self.poller.unregister(self.stdin)
            self.open = False  # no more requests: end once the pods have
            return
        self.pending += chunk
        while b"\n" in self.pending:
            line, _, rest = bytes(self.pending).partition(b"\n")
            self.pending[:] = rest
            if line.strip():
                self.spawn(line)

    def spawn(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            spec = PodSpec.from_dict(request["spec"])
        except (ValueError, KeyError, TypeError) as exc:
            self.send({"event": "failed", "pod": "?", "kind": "spec",
                       "message": f"bad request to the warm worker: {exc}"})
            return
        cause = self.unsafe is None
        if cause:
            serial()  # module code the worker loads next may build torch layers: not on a thread pool
            record, rebuilt = self.prepared.environment(spec), self.prepared.scenario(spec)
            # Module code just loaded here may have started a thread pool or CUDA: no fork is safe after that.
            self.unsafe = self.guard.unsafe()
            serial()  # a BLAS pool it loaded (SciPy's) forks at one thread too
        if self.unsafe is not None:
            self.send({"event": "declined", "pod": spec.pod, "reason": self.unsafe, "cause": cause})
            return
        worker = os.getpid()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the pod
            code = 1
            try:
                os.setsid()  # its own process group: a timeout kills its children too
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                if not die_with_parent(worker):
                    os._exit(ABANDONED)
                for fd in (read, self.out.fileno(), *self.fds):
                    os.close(fd)
                err = os.open(request.get("stderr") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(err, 2)
                os.dup2(err, 1)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                watch(write, None if spec.limits.timeout is None else spec.limits.timeout + GRACE)
                threads_as_cold(spec.limits.affinity)
                code = run_guarded(spec, EventWriter(os.fdopen(write, "w", buffering=1, encoding="utf-8"), spec.pod),
                                   record, rebuilt)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)  # never return into the worker's loop
        os.close(write)
        exits = pidfd(pid)
        timeout = spec.limits.timeout
        child = _Child(spec.pod, pid, read, exits, None if timeout is None else time.monotonic() + timeout + GRACE)
        self.children[pid] = child
        for watched in (read, exits):
            if watched is not None:
                self.fds[watched] = pid
                self.poller.register(watched, select.POLLIN)
        self.forks += 1
        self.send({"event": "spawned", "pod": spec.pod, "pid": pid, "forks": self.forks, "rss": resident_bytes()})

    def read(self, child: _Child) -> bool:
        """Relay what the pod wrote; False when there is nothing now, or at end of file (then its pipe is closed)."""
        if child.pipe is None:
            return False
        try:
            chunk = os.read(child.pipe, 1 << 16)
        except BlockingIOError:
            return False
        if not chunk:
            self._close_pipe(child)
            return False
        child.partial += chunk
        if b"\n" in child.partial:
            complete, _, rest = bytes(child.partial).rpartition(b"\n")
            self.send_raw(complete)
            child.partial[:] = rest
        return True

    def reap(self, child: _Child) -> None:
        """The pod exited: kill its group, relay what it wrote before, reap it, report its status."""
        # Before reaping: the dead leader still holds its group id, so no other group is hit.
        kill_group(child.pid)
        if child.pipe is not None:
            os.set_blocking(child.pipe, False)
            while self.read(child):  # what the pipe holds now, not what a dying child may still add
                pass
            self._close_pipe(child)
        if child.exits is not None:
            self._forget(child.exits)
        del self.children[child.pid]
        _, status = os.waitpid(child.pid, 0)
        self.send({"event": "exited", "pod": child.pod, "returncode": _returncode(status)})

    def _close_pipe(self, child: _Child) -> None:
        if child.pipe is None:
            return
        if child.partial.strip():
            self.send_raw(bytes(child.partial))
        child.partial.clear()
        self._forget(child.pipe)
        child.pipe = None

    def _forget(self, fd: int) -> None:
        self.poller.unregister(fd)
        self.fds.pop(fd, None)
        os.close(fd)

    def abandon(self, reason: str) -> NoReturn:
        """Kill every pod's process group, reap them, and exit (the controller is gone)."""
        print(f"saibench warm worker {os.getpid()}: {reason}: killing its {len(self.children)} pods",
              file=sys.stderr, flush=True)
        for pid in self.children:
            kill_group(pid)
        for pid in self.children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        os._exit(ABANDONED)

    def send(self, event: dict[str, Any]) -> None:
        self.send_raw(json.dumps(event).encode())

    def send_raw(self, lines: bytes) -> None:
        try:
            self.out.write(lines.decode("utf-8", "replace") + "\n")
        except (BrokenPipeError, ValueError):
            self.abandon("nobody reads its output any more (its controller is gone)")


class _Prepared:
    """What the worker works out once, before forking, so that its pods need not each redo it.

    * the environment record per set of requirements (package metadata: no user code);
    * the rebuilt scenario per scenario and sources. Discovery dry-runs module code, which
      the kernel that planned the run has already done with the same sources: the worker
      is no more exposed than the kernel. A rebuild that fails is left to the pod, which
      reports why;
    * per set of sources, their support code, run once (:class:`~saibench_jupyter.runtime.ExecutionNamespace`),
      and the datasets each plan reads, loaded once: each pod gets a copy-on-write image of
      both instead of running the support code and loading the data again. A dataset
      provider's loader runs once per process in every run (``docs/sail.md``), and here the
      worker is that process. Support code that fails here is left to the pods, which run it
      themselves and report it. Not for JAX pods: JAX code at import starts the runtime
      that a fork cannot carry (:mod:`._forksafe`), so their pods run theirs themselves.
    """

    LIMIT = 64  # scenarios kept, and as many sets of parsed sources

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.records: dict[tuple[str, ...], dict[str, Any]] = {}
        self.rebuilt: dict[tuple[Any, ...], Rebuilt | None] = {}
        #: parsed sources, and their support code run (None: it failed), shared by the scenarios of one run
        self.repos: dict[tuple[Any, ...], Any] = {}
        self.namespaces: dict[tuple[Any, ...], Any] = {}

    def environment(self, spec: PodSpec) -> dict[str, Any]:
        requirements = tuple(spec.environment.get("pip", ()))
        if requirements not in self.records:
            self.records[requirements] = environment_record(requirements, self.record)
        return self.records[requirements]

    def scenario(self, spec: PodSpec) -> Rebuilt | None:
        key = (spec.scenario, spec.sources, json.dumps(spec.params, sort_keys=True, default=repr))
        if key not in self.rebuilt:
            here = os.getcwd()
            try:
                os.chdir(spec.workdir)  # where the pod itself would rebuild it (data paths are relative)
                sources = (spec.workdir, spec.sources)
                if sources not in self.repos:
                    self.repos[sources] = load_sources(spec)
                    _bound(self.repos, self.LIMIT)
                rebuilt = rebuild(spec, self.repos[sources])
                if rebuilt.plan.backend != "jax":
                    rebuilt = rebuilt._replace(namespace=self._namespace(sources, rebuilt))
                self.rebuilt[key] = rebuilt
            except KeyboardInterrupt:
                raise
            except BaseException:  # a dry run past its deadline, sys.exit in a module: the pod reports it
                self.rebuilt[key] = None
            finally:
                os.chdir(here)
            _bound(self.rebuilt, self.LIMIT)
            import gc

            from ..runtime import prime_thread_pools

            prime_thread_pools()  # the support code may have loaded a library: looked up once, not per pod
            gc.freeze()  # as after the warm-up: the pods share these objects' pages
        return self.rebuilt[key]

    def _namespace(self, sources: tuple[Any, ...], rebuilt: Rebuilt) -> Any:
        """The sources' support code run here, with the datasets the plan reads loaded (None: it failed)."""
        from ..runtime import ExecutionNamespace, preload_datasets

        if sources not in self.namespaces:
            try:
                self.namespaces[sources] = ExecutionNamespace.of(rebuilt.repository)
            except Exception:  # the pods run it themselves and report it
                self.namespaces[sources] = None
            _bound(self.namespaces, self.LIMIT)
        namespace = self.namespaces[sources]
        if namespace is not None:
            namespace.activate()
            try:
                preload_datasets(rebuilt.plan.inputs)
            except Exception:  # a loader that fails: each pod tries again and reports it
                pass
        return namespace


def _bound(cache: dict[Any, Any], limit: int) -> None:
    """Drop the oldest entries of ``cache`` beyond ``limit``."""
    while len(cache) > limit:
        del cache[next(iter(cache))]


def _exited(pid: int) -> bool:
    """Whether ``pid`` exited, without reaping it (its group id stays taken until it is reaped)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _returncode(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
