"""``run``: scenarios → pod specs → resume → environments → schedule → executor → store → Results.

Every event is written to the results store the moment it arrives, so an interrupted
run (a killed kernel, Ctrl-C) loses nothing that finished; running the same call again
does only what the store does not hold yet.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any, Literal

from ._environments import EnvironmentBuildError, Interpreter, provision
from ._executors import DEFAULT_EXECUTOR, Executor, PodOutcome, make_executor
from ._logs import LOG_BYTES, LOG_LINES
from ._requirements import unmet
from ._schedule import Allocator, estimate, order
from ._spec import Limits, PodSpec, specs_of, unwritable

if TYPE_CHECKING:
    from ..planner import Lattice, Scenario
    from ..results import Claim, Results, Store

Progress = Callable[[dict[str, Any]], None]
#: Statuses that are results: a run skips those pods (``cancelled`` and ``interrupted`` ones it does again).
FINAL = ("ok", "diverged", "failed")
#: Seconds a pod's lease outlasts its time limit (its controller may be slow to hear the end).
LEASE_GRACE = 60.0
#: Seconds the lease of a pod without a time limit lasts: renewed while its run goes on.
LEASE_SPAN = 600.0
#: Seconds between two looks at pods another run holds (their results may have come).
POLL = 0.2


def run(scenarios: Lattice | Scenario | Iterable[Scenario], *, executor: str | Executor = DEFAULT_EXECUTOR,
        jobs: int | None = None, store: str | os.PathLike[str] | Store = "saibench.db",
        timeout: float | None = 600.0, memory: int | str | None = None, repeats: int = 1, seed: int = 0,
        settings: Mapping[str, Any] | None = None, rerun: bool | Literal["failed"] = False,
        progress: Progress | bool = True, log_lines: int = LOG_LINES, log_bytes: int = LOG_BYTES,
        scheduler: Any = None, executor_options: Mapping[str, Any] | None = None,
        keep_models: bool = False) -> Results:
    """Run every scenario as isolated BenchPods and store the results as they arrive.

    Parameters
    ----------
    scenarios : Lattice, Scenario or iterable of Scenario
        What to run (``discover(...)``'s result, or some of its scenarios).
    executor : str or Executor
        ``"warm"`` (default: a process per pod, forked from a worker that imported
        SAIBench, NumPy and, for torch pods, PyTorch once; a pod that cannot be forked
        safely runs cold), ``"subprocess"`` (a fresh interpreter per pod), ``"dask"`` (each
        pod a subprocess on a worker of a Dask cluster: ``scheduler``), ``"inline"``
        (this process, for debugging), another registered name, or an executor instance
        (``executor_class("warm")(jobs, recycle_pods=..., recycle_mb=...)`` to recycle workers sooner).
    jobs : int, optional
        Pods at once; the number of usable CPUs by default. Each pod also takes the CPUs
        its hardware module asks for, so a 2-CPU pod on a 2-core machine runs alone.
    store : path or Store
        The SQLite results store (created if missing).
    timeout : float, optional
        Seconds one pod may run before it is killed with its children (``None``: no limit).
    memory : int or str, optional
        Data memory one pod may allocate (``"4GB"``); the hardware module's ``memory`` by default.
    repeats : int
        Independent pods per scenario (repeat ``r`` uses seed ``seed + r``).
    seed : int
        The base seed.
    settings : mapping, optional
        Training-setting overrides for every scenario (part of each scenario's identity).
    rerun : bool or "failed"
        Run again pods the store already holds: all of them (True) or the failed ones.
    progress : callable or bool
        Where progress goes: True prints a line per pod to stderr; a callable receives
        every event (pod events, plus ``environment``, ``run`` and ``planned``: the pods to run,
        before any starts); False is silent.
    log_lines, log_bytes : int
        Most lines and bytes of module output one pod's log keeps: its first lines and its
        last ones, with a note of how much was dropped between them.
    scheduler : str, distributed.Client or cluster, optional
        With ``executor="dask"``: the cluster (an address such as ``tcp://10.0.0.5:8786`` or
        ``tls://...``, a client, or a cluster object such as dask-jobqueue's ``SLURMCluster``).
        None starts (or reuses) an embedded ``LocalCluster`` of ``jobs`` workers on 127.0.0.1.
        With ``executor="papermill"``: each pod's notebook runs on a worker of that cluster.
    executor_options : mapping, optional
        The executor's own options. ``papermill``: ``output`` (where executed notebooks go: a
        folder, or any location Papermill writes such as ``s3://bucket/runs/``), ``gateway``
        (a Jupyter Kernel or Enterprise Gateway URL whose kernels run the pods), ``token`` (its
        token; ``SAIBENCH_GATEWAY_TOKEN`` by default) and ``kernel`` (a kernelspec name).
    keep_models : bool
        Keep each trained model as ``Results.models`` (by scenario label or id), with
        ``executor="inline"`` only: weights never leave the process that trained them. The
        scenarios run even when the store holds their results (a model is not stored).

    Returns
    -------
    Results
        Every pod of these scenarios in the store (the ones skipped as done included). A
        scenario whose pods cannot be written as specs (a parameter value JSON cannot
        hold) has failed pods of kind ``spec``; the other scenarios run.

    Raises
    ------
    ValueError
        For ``keep_models=True`` with an executor that runs pods in other processes.
    """
    from ..results import Store
    from ..sail import Resources

    items = _scenarios(scenarios)
    ex = make_executor(executor, jobs, scheduler=scheduler, options=executor_options)
    kept = ex.keep_models() if keep_models else None  # before the store opens: the error leaves nothing open
    if kept is not None:
        rerun = True  # a model is not stored: a stored result would leave its scenario without one
    cap = Resources(memory=memory).memory_bytes if memory is not None else None
    db = store if isinstance(store, Store) else Store(store)
    try:
        results = _run(items, ex, db, timeout=timeout, cap=cap, repeats=repeats, seed=seed, settings=settings,
                       rerun=rerun, progress=progress, log_lines=log_lines, log_bytes=log_bytes)
    except BaseException:
        if db is not store:  # a store this call opened is closed with it: a failed run must not hold it
            db.close()
        raise
    if kept is not None:
        results.models = kept
    return results


def _run(items: list[Scenario], ex: Executor, db: Store, *, timeout: float | None, cap: int | None, repeats: int,
         seed: int, settings: Mapping[str, Any] | None, rerun: bool | Literal["failed"], progress: Progress | bool,
         log_lines: int, log_bytes: int) -> Results:
    """:func:`run` once its store is open."""
    from ..results import Results

    report = _Reporter() if progress is True else (progress if callable(progress) else None)
    specs: list[PodSpec] = []
    refused: dict[str, tuple[str, str]] = {}  # pod -> why its spec cannot be written, and the fix
    for scenario in items:
        limits = Limits(timeout=timeout, memory=cap or scenario.resources.memory_bytes, log_lines=log_lines,
                        log_bytes=log_bytes)
        problem = unwritable(scenario)
        pods = specs_of(scenario, repeats=repeats, seed=seed, settings=settings, limits=limits, check=False)
        if problem is not None:  # one bad scenario fails alone, as its pods' failures
            refused.update((s.pod, problem) for s in pods)
        specs += pods
        _register(db, scenario, pods[0])
    identities = list(dict.fromkeys(s.identity for s in specs))
    planned = db.owners(identities)  # (status, run) of each pod now: a result stored later is another run's
    todo = [s for s in specs if not _skip(planned.get((s.identity, s.repeat), (None, None))[0], rerun)]
    run_id = db.begin_run(ex.name, ex.jobs, {"pods": len(todo), "skipped": len(specs) - len(todo),
                                            "repeats": repeats, "timeout": timeout, "argv": sys.argv[:3]})
    emit = _Recorder(db, run_id, {s.pod: s for s in todo}, report, planned, _lease(timeout))
    emit.notify({"event": "run", "status": "started", "pods": len(todo), "skipped": len(specs) - len(todo),
                 "executor": ex.name, "jobs": ex.jobs})
    # Every pod this run will run, before any starts: a live view lists those still waiting as queued.
    emit.notify({"event": "planned", "pods": [{"pod": s.pod, "label": s.label, "repeat": s.repeat} for s in todo]})
    status = "interrupted"
    try:
        for spec in todo:
            if spec.pod in refused:
                emit.fail(spec, "spec", *refused[spec.pod])
        interpreters = _interpreters([s for s in todo if s.pod not in refused], ex, emit)
        runnable = [s for s in todo if s.pod not in emit.failed_early]
        ordered = order(runnable, estimate(runnable, db.durations()))
        _schedule(ordered, ex, interpreters, emit)
        status = "finished"
    finally:
        db.end_run(run_id, status)
        # Into the database file: a copy of saibench.db alone (without its -wal) then holds this run.
        db.checkpoint()
        emit.notify({"event": "run", "status": status, "pods": len(todo), "note": emit.shared_note()})
    return Results(db, identities)


def _scenarios(scenarios: Any) -> list[Scenario]:
    from ..planner import Lattice, Scenario

    if isinstance(scenarios, Lattice):
        return list(scenarios.scenarios)
    if isinstance(scenarios, Scenario):
        return [scenarios]
    items = list(scenarios)
    bad = [type(s).__name__ for s in items if not isinstance(s, Scenario)]
    if bad:
        raise TypeError(f"run() takes scenarios from discover(...), not {', '.join(sorted(set(bad)))}")
    return items


def _skip(status: str | None, rerun: bool | str) -> bool:
    if status not in FINAL or rerun is True:
        return False
    return not (rerun == "failed" and status == "failed")


def _register(db: Store, scenario: Scenario, spec: PodSpec) -> None:
    """The scenario's sources and description, stored once per identity."""
    db.add_sources({digest: (origin, spec.texts[digest]) for origin, digest in spec.sources})
    db.add_scenario(spec.identity, spec.plan["record"])


def _lease(timeout: float | None) -> float:
    """Seconds a pod's lease lasts: its time limit and a grace, or :data:`LEASE_SPAN` without a limit."""
    return LEASE_SPAN if timeout is None else timeout + LEASE_GRACE


class _Recorder:
    """Receives every event (from executor threads), writes it to the store, then reports it.

    It also holds the run's pod leases: :meth:`claim` before a pod starts, :meth:`renew` while
    the run goes on, and the results of pods another run ran meanwhile (:meth:`shared`).
    """

    def __init__(self, db: Store, run_id: int, specs: dict[str, PodSpec], report: Progress | None,
                 planned: Mapping[tuple[str, int], tuple[str, int | None]] | None = None,
                 lease: float = LEASE_SPAN) -> None:
        self.db = db
        self.run_id = run_id
        self.specs = specs
        self.report = report
        self.planned = dict(planned or {})
        self.lease = lease
        self.renewed = time.monotonic()
        self.failed_early: set[str] = set()
        self.by_run: dict[int, int] = {}  # run id -> pods of this run it ran at the same time

    def start(self, spec: PodSpec) -> None:
        self.db.start_pod(self.run_id, spec.identity, spec.repeat)

    def claim(self, spec: PodSpec) -> Claim:
        """Take ``spec``'s lease and mark it running, unless another run runs it or stored its result since."""
        return self.db.claim_pod(self.run_id, spec.identity, spec.repeat, self.lease,
                                 self.planned.get((spec.identity, spec.repeat)))

    def renew(self) -> None:
        """Extend this run's leases, at most every quarter of a lease (the run is alive: its pods are its own)."""
        if time.monotonic() - self.renewed >= min(self.lease / 4, 30.0):
            self.renewed = time.monotonic()
            self.db.renew_leases(self.run_id, self.lease)

    def shared(self, spec: PodSpec, status: str | None, holder: int | None) -> None:
        """``spec`` was run by run ``holder`` at the same time: its result (or ``cancelled``) is this run's too."""
        if holder is not None and status in FINAL:
            self.by_run[holder] = self.by_run.get(holder, 0) + 1
        self.notify({"event": "shared", "pod": spec.pod, "label": spec.label, "repeat": spec.repeat,
                     "status": status, "run": holder, "t": time.time()})

    def shared_note(self) -> str | None:
        """``3 pods were run by run 12 at the same time: their results are used``, or None."""
        if not self.by_run:
            return None
        return "; ".join(f"{n} pod{'s were' if n > 1 else ' was'} run by run {run} at the same time: "
                         f"{'their results are' if n > 1 else 'its result is'} used"
                         for run, n in sorted(self.by_run.items()))

    def __call__(self, event: dict[str, Any]) -> None:
        spec = self.specs.get(str(event.get("pod")))
        if spec is None:
            self.notify(event)
            return
        # A failed event of kind "interrupted" (the run was cancelled) makes the pod "cancelled": not a
        # result, so the next run() does it again, but no longer "running" either.
        self.db.record(self.run_id, spec.identity, spec.repeat, event)
        self.notify({**event, "label": spec.label, "repeat": spec.repeat})

    def notify(self, event: dict[str, Any]) -> None:
        if self.report is not None:
            try:
                self.report(event)
            except Exception as exc:  # a broken progress display must not lose results
                print(f"saibench: progress callback failed: {exc!r}", file=sys.stderr)

    def fail(self, spec: PodSpec, kind: str, message: str, fix: str | None, log: str | None = None) -> None:
        self.start(spec)
        self.failed_early.add(spec.pod)
        self({"event": "failed", "pod": spec.pod, "t": time.time(), "kind": kind, "message": message,
              "module": None, "location": None, "stage": None, "checkpoint": None, "fix": fix,
              "traceback": None, "stderr": log})


def _interpreters(todo: list[PodSpec], ex: Executor, emit: _Recorder) -> dict[str, Interpreter]:
    """One interpreter per distinct environment (built once if needed), by pod key."""
    out: dict[str, Interpreter] = {}
    groups: dict[str, list[PodSpec]] = {}
    for spec in todo:
        groups.setdefault(json.dumps(spec.environment, sort_keys=True), []).append(spec)
    for key, pods in groups.items():
        env = json.loads(key)
        try:
            if ex.remote:  # built where the pods run, under the same key
                interp = Interpreter(sys.executable, "remote", None, False)
            elif ex.isolated:
                interp = provision(env, progress=lambda m: emit.notify({"event": "environment", "message": m}))
            else:
                missing = unmet(env.get("pip", ()), env.get("conda", ()), env.get("python"))
                interp = Interpreter(sys.executable, "current" if not missing else "unmet", None, False)
        except (EnvironmentBuildError, ValueError) as exc:
            for spec in pods:
                emit.fail(spec, "environment", str(exc), "fix the software module's requirements",
                          getattr(exc, "log", None))
            continue
        out.update((spec.pod, interp) for spec in pods)
    return out


def _schedule(ordered: list[PodSpec], ex: Executor, interpreters: dict[str, Interpreter], emit: _Recorder) -> None:
    """Submit pods as CPUs free up, in ``ordered`` order (the first that fits goes next).

    Each pod is claimed first (:meth:`_Recorder.claim`). One that another live run holds
    waits aside, looked at again every :data:`POLL` seconds: its result, once that run has
    stored it, is this run's too; its lease, once that run is gone or stopped renewing it,
    is taken over and the pod run here.
    """
    from ..planner import Machine

    slots = Allocator(ex.jobs, gpus=Machine.local().gpus)
    queue = list(ordered)
    held: list[PodSpec] = []  # pods another run runs now
    running: dict[Future[PodOutcome], PodSpec] = {}
    with ex:
        dashboard = getattr(ex, "dashboard", None)  # a cluster's own (Dask's): where to watch its workers
        if dashboard:
            emit.notify({"event": "cluster", "executor": ex.name, "dashboard": dashboard})
        while queue or running or held:
            if held and getattr(ex, "_cancelled", False):  # cancelled: stop waiting for others' pods
                for spec in held:
                    emit.shared(spec, "cancelled", None)
                held.clear()
            queue[:0], held = held, []  # look at held pods again, first
            for queued in list(queue):
                if not slots.fits(queued):
                    continue
                queue.remove(queued)
                claim = emit.claim(queued)
                if not claim.taken:
                    if claim.status == "running":
                        held.append(queued)
                    else:
                        emit.shared(queued, claim.status, claim.holder)
                    continue
                cpus, gpus = slots.take(queued)
                spec = queued.replace(limits=dataclasses.replace(queued.limits, gpus=gpus,
                                                                 affinity=cpus if ex.isolated else None))
                running[ex.submit(spec, interpreters[spec.pod], emit)] = spec
            if running:
                finished, _ = wait(list(running), timeout=POLL if held else min(emit.lease / 4, 30.0),
                                   return_when=FIRST_COMPLETED)
                for future in finished:
                    slots.give_back(running.pop(future).pod)
            elif held:
                time.sleep(POLL)
            emit.renew()


class _Reporter:
    """The default progress: one line per pod and per environment build, on stderr."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.warned: set[Any] = set()
        self.started = time.perf_counter()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "run" and event.get("status") == "started":
            self.total = int(event.get("pods", 0))
            skipped = f", {event['skipped']} already in the store" if event.get("skipped") else ""
            self._print(f"saibench: {self.total} pods to run{skipped} ({event['executor']}, {event['jobs']} at a time)")
        elif kind == "environment":
            self._print(f"saibench: {event['message']}")
        elif kind == "cluster":
            self._print(f"saibench: the {str(event['executor']).capitalize()} dashboard: {event['dashboard']}")
        elif kind == "warning" and event.get("name") not in self.warned:  # once per metric: Results counts the pods
            self.warned.add(event.get("name"))
            self._print(f"  ⚠ {event.get('label', event.get('pod'))} r{event.get('repeat', 0)}: "
                        f"{str(event.get('message')).splitlines()[0]}")
        elif kind in ("finished", "failed"):
            self.done += 1
            head = f"  [{self.done}/{self.total}] {event.get('label', event.get('pod'))} r{event.get('repeat', 0)}"
            if kind == "finished":
                self._print(f"{head} {event.get('status')} in {float(event.get('wall_ms') or 0) / 1e3:.2f} s")
            elif event.get("kind") == "interrupted":
                self._print(f"{head} cancelled")
            else:
                self._print(f"{head} failed ({event.get('kind')}): {str(event.get('message')).splitlines()[0]}")
        elif kind == "shared":
            self.done += 1
            by = f"run {event['run']}'s result" if event.get("run") is not None else "another run's pod"
            self._print(f"  [{self.done}/{self.total}] {event.get('label', event.get('pod'))} "
                        f"r{event.get('repeat', 0)} {event.get('status')} ({by}: run at the same time)")
        elif kind == "run" and self.total:
            self._print(f"saibench: run {event.get('status')} after {time.perf_counter() - self.started:.1f} s")
            if event.get("note"):
                self._print(f"saibench: {event['note']}")

    @staticmethod
    def _print(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
