"""The kernel side of a pod notebook: limits, the run, its events and its own little store.

A pod notebook (:mod:`._pod_notebook`) makes a :class:`KernelPod` from its ``parameters``
cell, registers its module cells, then calls :meth:`KernelPod.run` with the notebook's
repository. The events the run makes go to a store of the notebook's own (its chart and
table read it) and, when the ``papermill`` executor runs the notebook (``events=True``),
to the controller too, as messages of a comm with target :data:`COMM_TARGET` that the
executor's notebook client reads as they come. Nothing here writes the benchmark's store.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ._lifeline import hold
from ._shim import _failure, _inherited_record, _jsonable, apply_limits, environment_record, run_bound
from ._spec import Limits, _limits

#: The comm target of a pod notebook's events (the executor's client reads them; no front end opens it).
COMM_TARGET = "saibench.pod.events"


def skip_slow_imports() -> None:
    """Keep jsonschema from building its IRI grammar (~0.8 s at import) in a pod notebook's processes.

    nbformat (which Papermill, and Plotly's display, import) validates with jsonschema, which
    builds a Lark grammar for ``iri`` format checks at import when ``rfc3987_syntax`` is
    installed. Notebooks never use that format: without the module, jsonschema skips the check.
    """
    import sys

    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


class PodFailedError(RuntimeError):
    """The pod's run failed: raised by the run cell after the failure was reported, so the notebook stops there."""


class KernelPod:
    """One BenchPod run inside a notebook's kernel (see the module docstring).

    Creating it sets the pod's limits and working directory and reports ``started``.

    Parameters
    ----------
    identity : str
        The scenario's identity.
    repeat : int
        The repeat number.
    plan : mapping
        The resolved scenario (the spec's ``plan``).
    settings : mapping
        Training-setting overrides.
    seed : int
        The pod's seed.
    limits : mapping
        The spec's ``limits`` (``timeout``, ``memory``, ``affinity`` ...).
    workdir : str
        Where relative inputs resolve (kept as the kernel's directory when it does not exist here).
    folders : list of str
        Where else they are found: the folders of the source files the cells hold.
    environment : mapping
        The software environment the pod asked for (its requirements are recorded).
    events : bool
        Also send every event to the executor running this notebook.
    """

    def __init__(self, identity: str, repeat: int, plan: Mapping[str, Any], *, settings: Mapping[str, Any],
                 seed: int, limits: Mapping[str, Any], workdir: str, folders: Sequence[str] = (),
                 environment: Mapping[str, Any], events: bool = False) -> None:
        from ..results import Store

        skip_slow_imports()
        self.identity, self.repeat, self.plan = identity, repeat, dict(plan)
        self.settings = {**settings, "seed": seed}
        self.limits: Limits = _limits(limits)
        self.folders = [f for f in folders if os.path.isdir(f)]
        self._comm = _open_comm(f"{identity}-r{repeat}") if events else None
        self._folder = tempfile.TemporaryDirectory(prefix="saibench-pod-notebook-")
        self.store = Store(os.path.join(self._folder.name, "pod.db"))
        self.store.add_scenario(identity, self.plan["record"])
        self._run_id = self.store.begin_run("notebook", 1)
        self.status: str | None = None
        self._failure: dict[str, Any] | None = None
        hold(None)  # die with the runner that started this kernel, and by the pod's deadline, when it said so
        apply_limits(self.limits, int(self.plan.get("resources", {}).get("cpus", 1)))
        if os.path.isdir(workdir):
            os.chdir(workdir)
        self._started = time.perf_counter()
        self.emit({"event": "started", "pid": os.getpid(),
                   # The record an earlier pod of this interpreter made, when the executor handed it down.
                   "environment": environment_record(tuple(environment.get("pip", ())), _inherited_record())})

    def emit(self, event: dict[str, Any]) -> None:
        """Record ``event`` in this notebook's store, and send it to the executor when there is one."""
        event.setdefault("pod", f"{self.identity}-r{self.repeat}")
        event.setdefault("t", time.time())
        clean = json.loads(json.dumps(event, default=_jsonable))
        if clean["event"] in ("finished", "failed"):
            self.status = clean.get("status", "failed")
            self._failure = clean if clean["event"] == "failed" else None
        self.store.record(self._run_id, self.identity, self.repeat, clean)
        if self._comm is not None:
            self._comm.send({"events": [clean]})

    def run(self, repository: Any) -> Any:
        """Bind the plan to ``repository`` (the notebook's modules) and run it.

        Returns
        -------
        Results
            This pod's results (its own store).

        Raises
        ------
        PodFailedError
            When the modules are not the plan's, or the run failed (after reporting it).
        """
        from ..planner import PlanError, ScenarioPlan
        from ..results import Results

        if self.status is not None:
            raise PodFailedError("this pod already ran: run the notebook again from the top for another run")
        repository.search_also(*self.folders)
        try:
            bound = ScenarioPlan.from_dict(self.plan, repository, any_origin=True)
        except PlanError as exc:
            message, _, fix = str(exc).partition("; fix: ")
            self.emit(_failure("spec", f"the notebook's modules are not the plan's: {message}",
                               fix="run the cells above unchanged, or plan the run again from the edited modules "
                                   f"({fix})"))
            raise PodFailedError(f"{message}; fix: {fix}") from None
        try:
            finished = run_bound(bound, repository, self.settings, self.emit, started=self._started)
        except MemoryError as exc:  # as a pod process reports it (its limit is RLIMIT_DATA here too)
            self.emit(_failure("memory", f"out of memory: {exc}", fix="raise the memory limit"))
            finished = False
        if not finished:
            f = self._failure or {}
            where = f" at {f['location']}" if f.get("location") else ""
            raise PodFailedError(f"the pod failed ({f.get('kind')}){where}: {f.get('message')}"
                                 + (f"; fix: {f['fix']}" if f.get("fix") else ""))
        return Results(self.store, [self.identity])

    def metrics_table(self) -> Any:
        """Each checkpoint's metrics, one row per checkpoint (a pandas DataFrame)."""
        from ..results import Results

        tidy = Results(self.store, [self.identity]).to_dataframe()
        tidy = tidy[tidy["metric"].notna()]
        index = [c for c in ("stage", "checkpoint", "epoch", "time_s") if c in tidy.columns]
        return tidy.pivot_table(index=index, columns="metric", values="value", aggfunc="first")


def _open_comm(pod: str) -> Any:
    from comm import create_comm

    return create_comm(target_name=COMM_TARGET, data={"pod": pod})
