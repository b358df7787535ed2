"""Executors: where pods run, behind one lifecycle.

Like papermill's engines, every executor shares one template: :meth:`Executor.start`
once, then for each pod :meth:`~Executor.submit` → (in a worker) ``pod_start`` →
:meth:`~Executor.execute` → ``pod_finish``, then :meth:`~Executor.finish`. The template
guarantees every pod ends with exactly one final event (``finished`` or ``failed``),
whatever the executor saw, so the store never holds a pod in limbo after a run.

Executors are found by name in an explicit registry; installed packages add more under
the ``saibench_jupyter.executors`` entry-point group (``module:Class`` of an
:class:`Executor` subclass).
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from ..common import available_plugins, load_plugin
from ._environments import Interpreter
from ._kept_models import KeptModels
from ._spec import PodSpec

Emit = Callable[[dict[str, Any]], None]

GROUP = "saibench_jupyter.executors"
#: The executor ``run()``, ``%sail run``, the dashboard and ``saibench run`` use unless told
#: another: a process per pod, forked from a warm worker (``docs/benchpods.md``).
DEFAULT_EXECUTOR = "warm"
#: Built-in executors: name -> "module:Class" (imported on first use).
BUILTIN = {
    "dask": "saibench_jupyter.pods._dask:DaskExecutor",
    "inline": "saibench_jupyter.pods._executors:InlineExecutor",
    "papermill": "saibench_jupyter.pods._papermill:PapermillExecutor",
    "subprocess": "saibench_jupyter.pods._subprocess:SubprocessExecutor",
    "warm": "saibench_jupyter.pods._warm:WarmExecutor",
}


@dataclass(frozen=True)
class PodOutcome:
    """How one pod ended.

    Attributes
    ----------
    pod : str
        The pod key.
    status : str
        ``ok``, ``diverged`` or ``failed``.
    kind : str or None
        The failure kind (``docs/benchpods.md``) when it failed.
    message : str or None
        The failure's message.
    wall_ms : float
        Wall time seen by the executor, start to end of the pod.
    """

    pod: str
    status: str
    kind: str | None = None
    message: str | None = None
    wall_ms: float = 0.0


class PodEvents:
    """The event stream of one pod as the executor relays it: remembers the final event."""

    def __init__(self, spec: PodSpec, emit: Emit) -> None:
        self.spec = spec
        self.emit = emit
        self.final: dict[str, Any] | None = None
        #: the environment record the pod's ``started`` event carried
        self.environment: dict[str, Any] | None = None
        self.started = time.perf_counter()

    def __call__(self, event: dict[str, Any]) -> None:
        if self.final is not None:
            return  # one final event per pod: a pod that reported and then crashed stays reported
        event.setdefault("pod", self.spec.pod)
        event.setdefault("t", time.time())
        kind = event.get("event")
        if kind in ("finished", "failed"):
            self.final = event
        elif kind == "started" and isinstance(event.get("environment"), dict):
            self.environment = event["environment"]
        self.emit(event)

    def fail(self, kind: str, message: str, *, fix: str | None = None, stderr: str | None = None,
             tb: str | None = None) -> None:
        """Emit a ``failed`` event the executor observed (timeout, signal, exit, lost ...)."""
        self({"event": "failed", "kind": kind, "message": message, "module": None, "location": None,
              "stage": None, "checkpoint": None, "fix": fix, "traceback": tb, "stderr": stderr})

    def outcome(self) -> PodOutcome:
        """The pod's outcome from its final event."""
        final = self.final or {}
        wall = (time.perf_counter() - self.started) * 1e3
        if final.get("event") == "finished":
            return PodOutcome(self.spec.pod, str(final.get("status", "ok")), wall_ms=wall)
        return PodOutcome(self.spec.pod, "failed", final.get("kind"), final.get("message"), wall)


class Executor(ABC):
    """Runs pods, ``jobs`` at a time; subclasses implement :meth:`execute`.

    Parameters
    ----------
    jobs : int
        Pods running at once.
    """

    #: the name ``run(executor=...)`` knows it by
    name: ClassVar[str] = ""
    #: False when pods share the caller's process (limits and environments can't apply)
    isolated: ClassVar[bool] = True
    #: True when pods run on other machines, which build their environments themselves
    remote: bool = False

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs={jobs}: run at least one pod at a time")
        self.jobs = jobs
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._cancelled = False  # set by cancel(): pods not started yet are skipped

    # -- the lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Called once before the first pod."""
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix=f"saibench-{self.name}")

    def submit(self, spec: PodSpec, interpreter: Interpreter, emit: Emit) -> Future[PodOutcome]:
        """Run ``spec`` in ``interpreter`` in the background; its events go to ``emit``."""
        if self._pool is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not called")
        return self._pool.submit(self._lifecycle, spec, interpreter, emit)

    def _lifecycle(self, spec: PodSpec, interpreter: Interpreter, emit: Emit) -> PodOutcome:
        events = PodEvents(spec, emit)
        if self._cancelled:
            events.fail("interrupted", "the run was interrupted before this pod started")
            outcome = events.outcome()
            self.pod_finish(spec, outcome)
            return outcome
        try:
            self.pod_start(spec)
            self.execute(spec, interpreter, events)
        except Exception as exc:
            import traceback

            events.fail("internal", f"the {self.name} executor failed: {type(exc).__name__}: {exc}",
                        tb=traceback.format_exc(), fix="this looks like a bug in SAIBench: please report it")
        if events.final is None:
            events.fail("lost", "the pod ended without reporting how", fix="see the pod's stderr")
        outcome = events.outcome()
        self.pod_finish(spec, outcome)
        return outcome

    def prepare(self) -> None:  # noqa: B027 (an optional hook)
        """Called, optionally, as soon as a caller knows that pods will follow (before discovery, say).

        An executor may start its slow parts here, in the background, so that they overlap
        what the caller does meanwhile; :meth:`start` still comes before the first pod.
        """

    def pod_start(self, spec: PodSpec) -> None:  # noqa: B027 (an optional hook)
        """Called in the worker before a pod runs."""

    @abstractmethod
    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        """Run one pod to its end, relaying its events to ``events`` (blocking)."""

    def pod_finish(self, spec: PodSpec, outcome: PodOutcome) -> None:  # noqa: B027 (an optional hook)
        """Called in the worker after a pod ended, however it ended."""

    def keep_models(self) -> KeptModels:
        """Keep the model each pod trains from now on; return where they go.

        Raises
        ------
        ValueError
            For an executor whose pods run in other processes (all but ``inline``): a
            trained model cannot leave the process that trained it.
        """
        raise ValueError(f"keep_models=True needs the pods in this process, and the {self.name} executor runs "
                         "each pod in a process of its own; fix: executor='inline' (%sail run --executor inline "
                         "--keep-models), or run_scenario(scenario, keep_model=True) for one scenario")

    def cancel(self) -> None:
        """The run was interrupted: pods not started yet are skipped; subclasses also stop running ones."""
        self._cancelled = True

    def finish(self) -> None:
        """Called once after the last pod (or after :meth:`cancel`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.cancel()
        self.finish()


class InlineExecutor(Executor):
    """Pods in this process, one at a time: for debugging (breakpoints, tracebacks).

    Nothing is isolated: a crash takes the caller down, and time and memory limits do
    not apply. The software module's requirements must be met by this interpreter.
    """

    name = "inline"
    isolated = False

    def __init__(self, jobs: int = 1) -> None:
        super().__init__(1)  # one at a time: pods would share torch's global thread settings
        self._record: dict[str, Any] | None = None
        self._kept: KeptModels | None = None

    def keep_models(self) -> KeptModels:
        """Keep the model each pod trains (those that finish ``ok``) from now on; return where they go."""
        if self._kept is None:
            self._kept = KeptModels()
        return self._kept

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        from ._shim import environment_record, run_pod

        if interpreter.key != "current":
            events.fail("environment", "the inline executor runs in this interpreter, which does not meet "
                        f"the software module's requirements ({', '.join(spec.environment.get('pip', []))})",
                        fix="use executor='subprocess', which runs the pod in an environment built for it")
            return
        if self._record is None:
            self._record = environment_record()  # this process's: looked up once, not per pod
        kept = self._kept
        run_pod(spec, events, self._record, keep=None if kept is None else lambda model: kept.add(spec, model))


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_executor(executor: str | Executor, jobs: int | None = None, *, scheduler: Any = None,
                  options: Mapping[str, Any] | None = None) -> Executor:
    """``executor`` itself, or the executor of that name for ``jobs`` pods at once (the usable CPUs by default).

    ``scheduler`` (an address, a ``distributed.Client`` or a cluster object) is the cluster
    of an executor that runs pods on Dask (``dask``, ``papermill``); ``options`` are the
    executor's own keyword arguments (``papermill``: ``gateway``, ``token``, ``kernel``, ``output``).

    Raises
    ------
    KeyError
        For an unknown executor (the message lists the known ones).
    ValueError
        For ``scheduler`` or an option the executor does not take (the message lists the ones it
        takes), or either given with an executor instance.
    """
    given = {**(options or {}), **({"scheduler": scheduler} if scheduler is not None else {})}
    if isinstance(executor, Executor):
        if given:
            raise ValueError(f"{', '.join(given)}= go with an executor given by name; an executor instance has "
                             "its own")
        return executor
    cls = executor_class(executor)
    taken = [n for n, p in inspect.signature(cls).parameters.items() if p.kind is p.KEYWORD_ONLY]
    if scheduler is not None and "scheduler" not in taken:
        raise ValueError(f"scheduler={scheduler!r:.60} is for executor='dask' or 'papermill', not {executor!r}")
    unknown = [n for n in given if n not in taken]
    if unknown:
        takes = f"it takes {', '.join(taken)}" if taken else "it takes none"
        raise ValueError(f"executor {executor!r} takes no option {', '.join(unknown)} ({takes}); fix: drop it, or "
                         "choose the executor the option is for")
    return cls(jobs or usable_cpus(), **given)


def available() -> dict[str, str]:
    """Every executor name with where its class lives (built-ins, then entry points)."""
    return available_plugins(GROUP, BUILTIN)


def executor_class(name: str) -> type[Executor]:
    """The executor called ``name``.

    Raises
    ------
    KeyError
        For an unknown name (the message lists the known ones).
    """
    return load_plugin(GROUP, BUILTIN, name, "executor")  # type: ignore[no-any-return]
