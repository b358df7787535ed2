"""Benchmark discovery (paper Algorithm 1): :func:`discover`, and the :class:`Planner` that remembers.

The algorithm itself is :class:`Discovery` (``_algorithm``), one call at a time; what
outlives a call is the planner's :class:`DiscoveryMemo` (``_memo``), which says what each
cache is keyed on and what drops it. Editing one module re-plans only what used it.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from ..repository import Repository, RepositoryEvent
from ..sail import DEFAULT_TIME_LIMIT, ModuleKind
from ._algorithm import Discovery, Names
from ._lattice import Lattice
from ._machine import Machine
from ._memo import DiscoveryMemo


class Planner:
    """Discovery over one repository, with memoised dry runs that survive edits.

    Use :func:`discover`; it keeps one planner per repository (:meth:`of`).

    Attributes
    ----------
    memo : DiscoveryMemo
        Everything remembered between discoveries, with its invalidation rule.
    """

    def __init__(self, repo: Repository) -> None:
        # Weak: the repository keeps its planner (Repository.attached), which must not keep
        # it alive in turn. Scenarios hold this same reference.
        self._repo = weakref.ref(repo)
        self.memo = DiscoveryMemo()
        self._lock = threading.RLock()
        repo.subscribe(self._forget)  # for as long as the repository lives

    @classmethod
    def of(cls, repo: Repository) -> Planner:
        """The planner of ``repo``: made on first use, kept by the repository for as long as it lives."""
        return repo.attached("planner", lambda: cls(repo))

    @property
    def repo(self) -> Repository:
        """The repository this planner discovers from."""
        repo = self._repo()
        if repo is None:
            raise RuntimeError("the repository of this planner no longer exists")
        return repo

    def _forget(self, event: RepositoryEvent) -> None:
        # Keep memory bounded: drop what the old version of a module produced (under the
        # lock: the repository may change in another thread than a running discovery).
        if event.previous is not None:
            with self._lock:
                self.memo.forget(event.previous.digest, event.name if event.action == "removed" else None)

    def discover(self, *, problem: Names = None, model: Names = None, software: Names = None,
                 hardware: Names = None, metric: Names = None, ranking: Names = None,
                 machine: Machine | None = None, params: Mapping[str, Any] | None = None,
                 max_depth: int = 3, time_limit: float = DEFAULT_TIME_LIMIT) -> Lattice:
        """See :func:`discover`."""
        # One discovery at a time per planner: its memo is shared (a UI may discover from a
        # background thread while a cell runs another).
        with self._lock:
            start = time.perf_counter()
            repo = self.repo
            machine = machine or Machine.local()
            filters = {ModuleKind.PROBLEM: problem, ModuleKind.MODEL: model, ModuleKind.SOFTWARE: software,
                       ModuleKind.HARDWARE: hardware, ModuleKind.METRIC: metric, ModuleKind.RANKING: ranking}
            call = (repo.version, repr(filters), machine, repr(sorted((params or {}).items())), max_depth,
                    time_limit)
            last = self.memo.last_lattice(call)
            if last is not None:
                return last.again(time.perf_counter() - start)
            # Discovery allocates ~10^5 long-lived objects: the cyclic collector would scan
            # them again and again (seen: +20% time, 250 ms pauses). Pause it for the call.
            paused = gc.isenabled()
            gc.disable()
            try:
                lattice = Discovery(self._repo, self.memo, filters, machine, params or {}, max_depth,
                                    time_limit).run(start)
            finally:
                if paused:
                    gc.enable()
            self.memo.remember(call, lattice)
            return lattice


def discover(repo: Repository, *, problem: Names = None, model: Names = None, software: Names = None,
             hardware: Names = None, metric: Names = None, ranking: Names = None,
             machine: Machine | None = None, params: Mapping[str, Any] | None = None,
             max_depth: int = 3, time_limit: float = DEFAULT_TIME_LIMIT) -> Lattice:
    """Find every benchmark scenario the repository's modules form, and why others don't fit.

    Parameters
    ----------
    repo : Repository
        The modules.
    problem, model, software, hardware, metric, ranking : str or list of str, optional
        Restrict a kind to these module names (sub-models may still come from any model).
    machine : Machine, optional
        What hardware modules are checked against; the local machine by default.
    params : mapping, optional
        Parameter values: ``{"MLP.hiddenSize": 128}`` or ``{"epochs": 5}`` (any module with
        that parameter); a list value is a grid that replaces the module's ``Suggest``.
    max_depth : int
        Deepest sub-model nesting (``Require(Model, ...)``) and generic-converter nesting.
    time_limit : float
        Seconds one dry run may take before it is stopped and reported.

    Returns
    -------
    Lattice
        ``.scenarios``, ``.rejections``, ``.explain(...)``, ``.tree()``, ``.converter_graph``.
    """
    return Planner.of(repo).discover(problem=problem, model=model, software=software, hardware=hardware,
                                     metric=metric, ranking=ranking, machine=machine, params=params,
                                     max_depth=max_depth, time_limit=time_limit)

