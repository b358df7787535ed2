"""Pods on a Dask cluster: Dask decides where a pod's launcher runs; the pod is still a subprocess.

``executor="dask"`` sends each pod to a worker of a ``dask.distributed`` cluster: an embedded
``LocalCluster`` on loopback (started on first use, reused by later runs in this process,
closed when it exits), or the cluster ``scheduler=`` names: an address (``tcp://``,
``tls://``), a ``distributed.Client``, or any cluster object (``LocalCluster``,
dask-jobqueue's ``SLURMCluster``, a dask-gateway cluster). On the worker, :func:`launch`
builds the pod's environment (cached there under the same key as here) and starts the same
``python -m saibench_jupyter.pods run -`` shim the ``subprocess`` executor starts, in its
own session, with its limits, timeout and process-group kill; the pod never runs in the
worker's process. Its event lines stream back through a Dask ``Queue`` while it runs; only
this process (the controller) writes the results store.

A pod's ``Resources(cpus=N, device="cuda")`` become Dask resource requests for the
resources the cluster's workers advertise (``CPU``, ``GPU``), so a GPU pod lands only on a
worker that has one. Before the first pod every worker must run this saibench_jupyter and
Python version (:func:`check_versions`).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._environments import EnvironmentBuildError, Interpreter, provision
from ._executors import Executor, PodEvents
from ._lifeline import kill_group
from ._spec import PodSpec
from ._subprocess import conclude, notebook_limit, relay_line, run_shim

if TYPE_CHECKING:
    from distributed import Client

#: Seconds to reach a scheduler named by its address before saying it is unreachable.
CONNECT = 5.0
#: Seconds between looks at a pod's event queue while it sends nothing, and between a pod's
#: event lines and their sending (a few lines go as one message).
POLL = 0.02
#: The embedded cluster of this process and its client, once started.
_EMBEDDED: dict[str, Any] = {}
_EMBEDDED_LOCK = threading.Lock()
#: On a worker: the environment record of each interpreter's last pod (JSON), handed to the next one.
_RECORDS: dict[str, str] = {}


class ClusterError(RuntimeError):
    """The cluster cannot run pods: unreachable, or its workers run another saibench_jupyter or Python."""


def connect(scheduler: Any, workers: int) -> tuple[Client, bool]:
    """A client of ``scheduler`` (None: the embedded cluster of ``workers`` workers), and whether to close it after.

    Raises
    ------
    ClusterError
        When an address does not answer within :data:`CONNECT` seconds.
    """
    from distributed import Client

    if scheduler is None:
        return _embedded(workers), False
    if isinstance(scheduler, Client):
        return scheduler, False
    if isinstance(scheduler, str):
        try:
            return Client(scheduler, timeout=CONNECT, set_as_default=False), True
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"the Dask scheduler at {scheduler} did not answer within {CONNECT:g} s ({exc}); "
                               "fix: start it (`dask scheduler`), check the address, or reach a remote one "
                               "through TLS or an SSH tunnel") from None
    if hasattr(scheduler, "scheduler_address"):  # a cluster object: LocalCluster, SLURMCluster, a gateway cluster
        return Client(scheduler, timeout=CONNECT, set_as_default=False), True
    raise ClusterError(f"scheduler={scheduler!r}: expected an address (tcp://, tls://), a distributed.Client or a "
                       "cluster object")


def _embedded(workers: int) -> Client:
    """The embedded LocalCluster's client, started on first use with ``workers`` single-thread workers on loopback."""
    from distributed import Client, LocalCluster

    with _EMBEDDED_LOCK:
        client = _EMBEDDED.get("client")
        if client is None or client.status != "running":
            with _environ_kept():
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0", worker_dashboard_address=None)
            client = Client(cluster, set_as_default=False)
            _EMBEDDED.update(cluster=cluster, client=client)
            if not _EMBEDDED.get("hooked"):
                atexit.register(close_embedded)
                _EMBEDDED["hooked"] = True
        elif len(client.scheduler_info(n_workers=-1)["workers"]) != workers:
            with _environ_kept():
                _EMBEDDED["cluster"].scale(workers)
                client.wait_for_workers(workers, timeout=60)
        return client


@contextlib.contextmanager
def _environ_kept() -> Iterator[None]:
    """Give this process its environment back after Dask started workers from it.

    A nanny sets ``OMP_NUM_THREADS=1`` and friends (``distributed.nanny.pre-spawn-environ``),
    ``PYTHONHASHSEED`` and ``__DASK_PARENT_PID`` in its own process's environment before it
    spawns a worker, and leaves them there: every pod the kernel started afterwards, with any
    executor, would run single-threaded BLAS. The workers are only launchers: their pods
    get this process's environment, as pods of the other executors do.
    """
    import dask

    saved = dict(os.environ)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def close_embedded() -> None:
    """Close the embedded cluster, if one was started (at exit, or to free its memory)."""
    with _EMBEDDED_LOCK:
        client, cluster = _EMBEDDED.pop("client", None), _EMBEDDED.pop("cluster", None)
    for closing in (client, cluster):
        if closing is not None:
            try:
                closing.close()
            except Exception:  # at exit: nothing to report to
                pass


def _versions() -> tuple[str, str]:
    """The installed saibench_jupyter's version and this Python's (read from metadata: no package import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        mine = version("saibench-jupyter")
    except PackageNotFoundError:  # run from a source tree: compared as such
        mine = "not installed"
    return mine, ".".join(map(str, sys.version_info[:3]))


def check_versions(client: Client) -> None:
    """Refuse a cluster whose workers run another saibench_jupyter or Python (major.minor) than this process.

    Raises
    ------
    ClusterError
        Naming each worker that differs, its versions and these.
    """
    here = _versions()
    found: dict[str, tuple[str, str]] = client.run(_versions)
    if not found:
        raise ClusterError("the Dask cluster has no worker; fix: start workers (`dask worker ADDRESS`) or scale it")
    wrong = [f"{worker} runs saibench_jupyter {v[0]} on Python {v[1]}" for worker, v in sorted(found.items())
             if v[0] != here[0] or v[1].split(".")[:2] != here[1].split(".")[:2]]
    if wrong:
        raise ClusterError(f"{'; '.join(wrong)}, and this process saibench_jupyter {here[0]} on Python {here[1]}; "
                           "fix: install the same saibench_jupyter and Python on every worker")


def advertised(client: Client) -> dict[str, float]:
    """The most of each resource (``CPU``, ``GPU`` ...) one worker of the cluster advertises."""
    out: dict[str, float] = {}
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        for name, amount in (info.get("resources") or {}).items():
            out[name] = max(out.get(name, 0.0), float(amount))
    return out


def requests(resources: Mapping[str, Any], offered: Mapping[str, float]) -> dict[str, float]:
    """The Dask resource requests of a pod's resources, for the resources the workers advertise.

    A GPU pod asks for ``GPU`` (its GPUs, at least one), whether offered or not: it must wait
    for a worker that has one, never run on one that does not.
    """
    out: dict[str, float] = {}
    if "CPU" in offered:
        out["CPU"] = float(max(1, int(resources.get("cpus", 1))))
    if resources.get("device") == "cuda":
        out["GPU"] = float(max(1, int(resources.get("gpus") or 1)))
    return out


class _LineSender:
    """Sends a pod's event lines to its queue, a few at a time: at most :data:`POLL` seconds after each.

    Also keeps, per interpreter of this worker, the environment record the pod's ``started``
    line holds, for the next pod (as the ``subprocess`` executor does on one machine).
    """

    def __init__(self, queue: Any, python: str) -> None:
        self.queue, self.python = queue, python
        self.pending: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="saibench-dask-lines", daemon=True)
        self.thread.start()

    def line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        if self.python not in _RECORDS and text.startswith('{"event": "started"'):
            try:
                _RECORDS[self.python] = json.dumps(json.loads(text)["environment"])
            except (ValueError, KeyError, TypeError):
                pass
        with self.lock:
            self.pending.append(text)

    def _send(self) -> None:
        with self.lock:
            lines, self.pending = self.pending, []
        if lines:
            self.queue.put({"lines": lines})

    def _loop(self) -> None:
        while not self.stop.wait(POLL):
            self._send()

    def close(self) -> None:
        """Send what is left, after the loop stopped (one sender at a time)."""
        self.stop.set()
        self.thread.join()
        self._send()


def launch(spec_json: str, queue: str, notebook: Mapping[str, Any] | None = None) -> int | None:
    """On a Dask worker: build the pod's environment, run the pod shim, stream its lines to ``queue``.

    With ``notebook`` (the ``papermill`` executor's request, without the spec), the pod runs as a
    notebook whose kernel runs in that environment instead.

    Returns the pod's exit status; every line it wrote, and how it ended, went to the queue.
    """
    from distributed import Queue, get_worker

    out = Queue(queue)
    try:
        spec = PodSpec.load(spec_json)
        interpreter = provision(spec.environment)  # on the worker, cached here under the same key
        workdir = spec.workdir if os.path.isdir(spec.workdir) else tempfile.gettempdir()
        sender = _LineSender(out, interpreter.python)
        if notebook is None:
            python, request, command, timeout = interpreter.python, spec_json, "run", spec.limits.timeout
        else:
            from ._notebook_run import notebook_request

            request = notebook_request(notebook, spec, interpreter.python)
            python, command, timeout = sys.executable, "notebook", notebook_limit(spec.limits.timeout)
        try:
            # The pid first, from here, before any line: the controller learns where to kill it.
            returncode, timed_out, tail = run_shim(
                python, request, timeout, workdir, sender.line, _RECORDS.get(interpreter.python),
                lambda proc: out.put({"pid": proc.pid, "worker": get_worker().address}), command)
        finally:
            sender.close()
        out.put({"end": returncode, "timed_out": timed_out, "stderr": tail})
    finally:
        out.close()  # the scheduler drops the queue once the controller lets go of it too
    return returncode


class DaskExecutor(Executor):
    """Pods on a Dask cluster, each one a subprocess on a worker (see the module docstring).

    Parameters
    ----------
    jobs : int
        Pods at once (the embedded cluster's workers).
    scheduler : str, Client or cluster, optional
        The cluster; None starts (or reuses) the embedded LocalCluster on 127.0.0.1.
    """

    name = "dask"
    remote = True

    def __init__(self, jobs: int = 1, *, scheduler: Any = None) -> None:
        super().__init__(jobs)
        self.scheduler = scheduler
        self.client: Client | None = None
        self._owned = False
        self._offered: dict[str, float] = {}
        self._remote: dict[str, tuple[int, str]] = {}  # pod -> (pid, worker address) while it runs
        self._futures: dict[str, Any] = {}

    @property
    def dashboard(self) -> str | None:
        """The Dask dashboard's address, once connected."""
        return None if self.client is None else self.client.dashboard_link

    def start(self) -> None:
        self.client, self._owned = connect(self.scheduler, self.jobs)
        check_versions(self.client)
        self._offered = advertised(self.client)
        super().start()

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        self.send(spec, events)

    def send(self, spec: PodSpec, events: PodEvents, notebook: Mapping[str, Any] | None = None) -> None:
        """Run ``spec`` on a worker and relay its events (blocking); with ``notebook``, as a notebook
        (the ``papermill`` executor's request without the spec: ``output``, ``gateway``, ``kernel``)."""
        from distributed import Queue

        if self.client is None:
            raise RuntimeError("DaskExecutor.start() was not called")
        # The embedded cluster's workers share this host: the CPUs the scheduler gave the pod are its own
        # there. On another cluster this host's CPU ids mean nothing: Dask's resources place the pod.
        remote = spec if self.scheduler is None else spec.replace(limits=dataclasses.replace(spec.limits,
                                                                                             affinity=None))
        name = f"saibench-{spec.pod}-{uuid.uuid4().hex[:8]}"
        queue = Queue(name, client=self.client)
        future = self.client.submit(launch, remote.to_json(), name, notebook, key=name, pure=False,
                                    resources=requests(spec.resources, self._offered) or None)
        with self._lock:
            self._futures[spec.pod] = future
        held: list[dict[str, Any]] = []
        end: dict[str, Any] | None = None
        attempts = 0
        try:
            while end is None:
                done = future.done()  # looked at first: what the pod sent before its task ended is in the queue
                items = _next(queue)
                for item in items:
                    if "pid" in item:
                        attempts += 1
                        if attempts > 1:  # Dask started it again after its worker died: not a second try here
                            self._kill([(int(item["pid"]), str(item["worker"]))])
                            break
                        with self._lock:
                            self._remote[spec.pod] = (int(item["pid"]), str(item["worker"]))
                    elif "lines" in item:
                        for raw in item["lines"]:
                            relay_line(raw.encode(), events, held)
                    elif "end" in item:
                        end = item
                if attempts > 1 or (end is None and done and not items):
                    break
                if not items:
                    time.sleep(POLL)
        finally:
            with self._lock:
                self._remote.pop(spec.pod, None)
                self._futures.pop(spec.pod, None)
            if end is None and future.status == "pending":  # still held by Dask (a second start): let it go
                future.cancel()
            try:
                queue.close()
            except Exception:  # the scheduler is gone: nothing left to free
                pass
        if end is None:
            if self._cancelled:
                conclude(spec, events, held, None, None, "", True)
                return
            _lost(events, future, attempts)
            return
        conclude(spec, events, held, end["end"], end["timed_out"], end["stderr"], self._cancelled)

    def cancel(self) -> None:
        super().cancel()
        with self._lock:
            remote, futures = list(self._remote.values()), list(self._futures.values())
        if self.client is None:
            return
        for future in futures:
            future.cancel()
        self._kill(remote)

    def _kill(self, pods: list[tuple[int, str]]) -> None:
        """Kill these pods' process groups on their workers (``(pid, worker address)`` each)."""
        by_worker: dict[str, list[int]] = {}
        for pid, worker in pods:
            by_worker.setdefault(worker, []).append(pid)
        for worker, pids in by_worker.items():
            try:
                if self.client is not None:
                    self.client.run(_kill_groups, pids, workers=[worker])
            except Exception:  # the worker is gone, and its pods with it (their parent-death signal)
                pass

    def finish(self) -> None:
        super().finish()
        if self._owned and self.client is not None:
            self.client.close()
        self.client = None


def _lost(events: PodEvents, future: Any, attempts: int) -> None:
    """Report a pod whose launcher never said how the pod ended: its environment, a defect, or its worker."""
    from distributed import KilledWorker

    error = None
    if attempts <= 1 and future.status == "error":
        try:
            error = future.exception(timeout=CONNECT)
        except Exception:  # the scheduler forgot the task: its worker is gone
            error = None
    if isinstance(error, EnvironmentBuildError):
        events.fail("environment", error.what, fix=error.fix, stderr=error.log or None)
    elif error is not None and not isinstance(error, KilledWorker):
        events.fail("internal", f"the pod's launcher failed on its Dask worker: {type(error).__name__}: {error}",
                    fix="this looks like a bug in SAIBench: please report it")
    else:
        events.fail("worker-lost", "the Dask worker running the pod was lost, and the pod with it; what it "
                    "reported before is kept", fix="run again with rerun='failed' to do it again on the workers left")


def _next(queue: Any) -> list[dict[str, Any]]:
    """What the pod sent since the last look, without waiting (a timed-out wait is an error the scheduler logs)."""
    try:
        return list(queue.get(batch=True))
    except Exception:  # the scheduler dropped the queue (its task was cancelled): the future says why
        return []


def _kill_groups(pids: list[int]) -> None:
    """On a worker: kill the process groups of these pods (cancelled from the controller)."""
    for pid in pids:
        kill_group(pid)


def cluster_machine(scheduler: Any = None, workers: int | None = None) -> Any:
    """The ``Machine`` discovery checks hardware against when pods run on ``scheduler``'s cluster.

    A pod runs on one worker: the most CPUs and memory one worker's host has, and the most
    GPUs one worker advertises as its ``GPU`` resource (a GPU pod asks for that resource, so
    a GPU the worker does not advertise would never be given to it).
    """
    from ..planner import Machine

    client, owned = connect(scheduler, workers or 1)
    try:
        hosts: dict[str, Machine] = client.run(Machine.local)
        offered = advertised(client)
        return Machine(cpus=max((m.cpus for m in hosts.values()), default=1),
                       gpus=int(offered.get("GPU", 0)),
                       memory=max((m.memory for m in hosts.values() if m.memory is not None), default=None),
                       place=f"any worker of the Dask cluster at {client.scheduler_info().get('address', '?')}")
    finally:
        if owned:
            client.close()
