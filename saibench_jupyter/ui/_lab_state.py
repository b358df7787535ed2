"""What the JupyterLab sidebar shows, built from a :class:`Notebook`: modules, the problem × model tree, runs.

Plain functions over the notebook's objects (no comm, no IPython), so that the bridge
(``_lab``) and its pushes (``_lab_comm``) build the same shapes. What depends only on
the repository or the lattice is cached by :class:`StateCache`: a ``state`` with 1,000
scenarios then costs the runs' few pods, not a walk over every scenario.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ._lab_types import (
    Counts,
    ModelNode,
    ModuleInfo,
    PodInfo,
    PodStatusName,
    ProblemNode,
    RunInfo,
    RunStatus,
    State,
    SupportInfo,
)

if TYPE_CHECKING:
    from ..planner import Lattice, Rejection
    from ..repository import Repository
    from ._handle import RunHandle
    from ._notebook import Notebook
    from ._pods import PodStatus

#: A RunHandle's status as the protocol says it (``starting`` is a run preparing its pods).
RUN_STATUS: dict[str, RunStatus] = {"starting": "running", "running": "running", "finished": "finished",
                                    "cancelled": "cancelled", "error": "failed"}
_POD_STATUS: dict[str, PodStatusName] = {"queued": "queued", "running": "running", "ok": "ok", "diverged": "diverged",
                                         "failed": "failed", "cancelled": "cancelled", "interrupted": "cancelled"}
_DONE = ("ok", "diverged", "shared")
#: Runs a state lists (the latest); its counts are over every run the notebook keeps.
MAX_RUNS = 20


def pod_status(pod: PodStatus) -> PodStatusName:
    """The protocol's status of a pod: ``shared`` for a result another run stored, ``cancelled`` for interrupted.

    A pod of ``RunHandle.planned`` that has not started yet is ``queued``.
    """
    # Only a "shared" event gives a pod that ended ok or diverged a kind (``run 12``): PodStatus.after.
    if pod.status in ("ok", "diverged") and pod.kind is not None:
        return "shared"
    return _POD_STATUS.get(pod.status, "running")


def pod_info(pod: PodStatus) -> PodInfo:
    """One pod of a run; ``kind`` and ``message`` for failed pods (and shared ones: whose result it is)."""
    status = pod_status(pod)
    told = status in ("failed", "shared")
    return {"pod": pod.pod, "label": pod.label, "repeat": pod.repeat, "status": status,
            "kind": pod.kind if told else None, "message": pod.message if told else None}


def run_status(handle: RunHandle) -> RunStatus:
    """The protocol's status of a run."""
    return RUN_STATUS.get(handle.status, "running")


def counts(handles: Iterable[RunHandle]) -> Counts:
    """Pods over the runs: queued, running, done (ok, diverged, shared) and failed; what the status bar shows."""
    out: Counts = {"queued": 0, "running": 0, "done": 0, "failed": 0}
    for handle in handles:
        for pod in handle.planned:
            status = pod_status(pod)
            if status in ("queued", "running"):
                out[status] += 1
            elif status in _DONE:
                out["done"] += 1
            elif status == "failed":
                out["failed"] += 1
    return out


def module_list(repository: Repository) -> tuple[list[ModuleInfo], list[SupportInfo]]:
    """The registered modules in registration order, and the support names of each source that has some."""
    modules: list[ModuleInfo] = [{"kind": m.kind.value, "name": m.name, "doc": m.doc or "",
                                  "origin": str(m.origin), "line": int(m.line)} for m in repository.modules()]
    support: list[SupportInfo] = [{"origin": origin, "names": sorted(source.support_names)}
                                  for origin, source in repository.sources().items() if source.support_names]
    return modules, support


def _reason(rejection: Rejection) -> str:
    return rejection.reason + (f"\nfix: {rejection.fix}" if rejection.fix else "")


def lattice_tree(lattice: Lattice) -> list[ProblemNode]:
    """One node per problem × model: its scenario ids and labels, or the first rejection's reason when it has none.

    Problems and models come in the lattice's order (problems as discovery tried them,
    then those rejected outright); a model rejected for every problem is a node under each.
    """
    pairs: dict[str, dict[str, ModelNode]] = {p.name: {} for p in lattice.problems}
    for scenario in lattice.scenarios:
        models = pairs.setdefault(scenario.problem, {})
        node = models.get(scenario.model)
        if node is None:
            node = models[scenario.model] = {"model": scenario.model, "scenarios": [], "labels": [],
                                             "rejected": None}
        node["scenarios"].append(scenario.id)
        node["labels"].append(scenario.label)  # as %sail discover prints it
    for rejection in lattice.rejections:
        if rejection.kind == "problem":
            pairs.setdefault(rejection.name, {})
    problems = list(pairs)
    for rejection in lattice.rejections:
        if rejection.kind != "model":
            continue
        label = rejection.problem
        for problem in problems if label is None else [label.split("(", 1)[0]]:
            models = pairs.setdefault(problem, {})
            node = models.get(rejection.name)
            if node is None:
                models[rejection.name] = {"model": rejection.name, "scenarios": [], "labels": [],
                                          "rejected": _reason(rejection)}
    return [{"problem": problem, "models": list(models.values())} for problem, models in pairs.items()]


class StateCache:
    """Builds :class:`State` from a notebook, keeping what depends only on the repository or the lattice.

    The modules are kept per repository version, the tree and the counts of scenarios and
    rejections per lattice object (the notebook keeps one until a module changes), and
    the description of each run that ended (it changes no more).
    """

    def __init__(self) -> None:
        self._modules: tuple[int, list[ModuleInfo], list[SupportInfo]] | None = None
        self._lattice: tuple[weakref.ref[Lattice], list[ProblemNode], int, int, frozenset[str]] | None = None
        self._ended: weakref.WeakKeyDictionary[RunHandle, RunInfo] = weakref.WeakKeyDictionary()

    def scenario_ids(self, lattice: Lattice) -> frozenset[str]:
        """The ids of ``lattice``'s scenarios (a set, for checking what a request names)."""
        return self._of(lattice)[4]

    def _of(self, lattice: Lattice) -> tuple[weakref.ref[Lattice], list[ProblemNode], int, int, frozenset[str]]:
        if self._lattice is None or self._lattice[0]() is not lattice:
            self._lattice = (weakref.ref(lattice), lattice_tree(lattice), len(lattice.scenarios),
                             len(lattice.rejection_rows()), frozenset(s.id for s in lattice.scenarios))
        return self._lattice

    def run_info(self, handle: RunHandle) -> RunInfo:
        """One run: its number, status, executor and every pod it plans (``queued`` until it starts)."""
        known = self._ended.get(handle)
        if known is not None:
            return known
        done = handle.done  # before reading the pods: a run that ended has them all
        info: RunInfo = {"run": handle.number or 0, "status": run_status(handle), "executor": handle.executor.name,
                         "pods": [pod_info(p) for p in handle.planned]}
        if done:
            self._ended[handle] = info
        return info

    def state(self, notebook: Notebook, lattice: Lattice) -> State:
        """The sidebar's state: ``lattice`` is ``notebook.lattice()``, discovered by the caller."""
        repository = notebook.repository
        if self._modules is None or self._modules[0] != repository.version:
            self._modules = (repository.version, *module_list(repository))
        _, tree, scenarios, rejections, _ = self._of(lattice)
        runs = list(notebook.runs)  # a copy: a run thread may add one meanwhile
        return {"modules": self._modules[1], "support": self._modules[2], "scenarios": scenarios,
                "rejections": rejections, "tree": tree, "runs": [self.run_info(h) for h in runs[-MAX_RUNS:]],
                "counts": counts(runs)}
