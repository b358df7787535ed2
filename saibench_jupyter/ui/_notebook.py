"""The notebook's state behind the magics (and the dashboard): cells, discovery, runs, results.

Plain Python with no IPython in it, so everything the magics do can be tested and
reused: each magic parses its arguments, calls one :class:`Notebook` method and shows
what it returns (its displays are in ``_formatting``). A cell's SAIL source is registered
under the cell's identity (its origin, ``<cell 5f3a1b2c>``): running a cell again replaces
what it defined, like saving a file. Mistakes a user can make come out as
:class:`NotebookError` with the cell line and the fix; the magics turn them into ``UsageError``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..pods import DEFAULT_EXECUTOR
from ..repository import ModuleRecord, Repository
from ..sail import ModuleKind, SailError
from ._cells import CellScan, Registered, cell_error, check_kinds, scan_cell, unsupported_names
from ._cells import NotebookError as NotebookError
from ._options import hide_secrets
from ._select import ROLES
from ._views import Explanation, WithWarnings
from ._views import ModuleList as ModuleList

if TYPE_CHECKING:
    from ..planner import Lattice, Scenario
    from ..results import Ranking, Results
    from ._handle import RunHandle
    from ._links import NotebookLink

#: The cell magics that register modules: one per module kind, and ``sail`` for support code (any kind).
CELL_KINDS = ("problem", "model", "metric", "converter", "software", "hardware", "ranking", "sail")


@dataclass(frozen=True)
class _Cell:
    """What one cell registered last: for finding the cell again when the kernel gives no cell id."""

    kind: str
    defined: frozenset[str]  # support names other than imports (imports are shared by many cells)
    body: str


class Notebook:
    """One per kernel: the repository the cells fill, discovery, background runs and their results.

    Parameters
    ----------
    repository : Repository, optional
        Where modules go (a new, empty one by default).
    store : path
        The SQLite results store (``saibench.db`` in the working directory by default).
    user_ns : mapping, optional
        The notebook's namespace (IPython's ``user_ns``): names a module reads from it,
        which pods cannot see, are flagged when the module is registered.

    Attributes
    ----------
    runs : list of RunHandle
        The kernel's latest runs, oldest first: every run still going, and the last
        :attr:`KEPT_RUNS` that ended (earlier ones are in the results store, not here).
    run_count : int
        Runs started so far (a handle's ``number`` counts from 1).
    """

    #: Ended runs whose handles are kept (each holds its pods' statuses; none holds its store open).
    KEPT_RUNS = 20

    def __init__(self, repository: Repository | None = None, store: str | os.PathLike[str] = "saibench.db",
                 user_ns: Mapping[str, Any] | None = None) -> None:
        self.repository = repository if repository is not None else Repository()
        # Absolute now: the store must not move when the notebook's code changes directory.
        self.store = Path(store).expanduser().absolute()
        self.user_ns = user_ns
        self.runs: list[RunHandle] = []
        self.run_count = 0
        self._run_listeners: list[Callable[[RunHandle], object]] = []
        self._cells: dict[str, _Cell] = {}       # origin -> what that cell registered
        self._cell_ids: dict[str, str] = {}      # Jupyter cell id -> origin
        self._lattice: tuple[int, Lattice] | None = None

    # -- cells ------------------------------------------------------------------------------
    def register(self, kind: str, text: str, cell: str | None = None, *, line_offset: int = 1) -> Registered:
        """Register the SAIL source of a ``%%kind`` cell under the cell's identity.

        Parameters
        ----------
        kind : str
            The magic: a module kind (``problem``, ``model`` ...), or ``sail`` for support
            code (which may hold modules of any kind too).
        text : str
            The cell's body (without the ``%%kind`` line).
        cell : str, optional
            The Jupyter cell id. Without one, the cell that registered any of the same
            names before is taken to be this one; else it is a new cell.
        line_offset : int
            Cell lines above the body (the ``%%kind`` line and any blank lines before it),
            so that errors and tracebacks count lines as the cell shows them.

        Returns
        -------
        Registered
            The cell's module records, with the changes and the warnings.

        Raises
        ------
        NotebookError
            For invalid SAIL, a module of another kind, no module of this kind, or a
            misspelt name (``Tanhh``: did you mean ``Tanh``); nothing is registered then,
            and the previous version of the cell stays in use.
        """
        if kind not in CELL_KINDS:
            raise NotebookError(f"%%{kind} is not a SAIL cell: use one of " + ", ".join(f"%%{k}" for k in CELL_KINDS))
        found = scan_cell(text, line_offset)
        origin = self._origin_for(cell, found, text)
        # A comment in place of the magic line keeps every line number equal to the cell's.
        source = "\n" * max(line_offset - 1, 0) + (f"# %%{kind}\n" if line_offset > 0 else "") + text
        if found.valid:
            check_kinds(kind, found, source)
        before = {r.name: r.digest for r in self.repository}
        held = [r.name for r in self.repository if r.origin == origin]
        try:
            # A misspelt name is refused (the notebook's own variables are no misspellings);
            # other unknown names are warned about below.
            records = self.repository.add_source(source, origin=origin,
                                                 known=self.user_ns.keys() if self.user_ns is not None else ())
        except SailError as exc:
            raise cell_error(exc, origin, kind, source) from None
        names = {r.name for r in records}
        self._cells[origin] = _Cell(kind, found.defined, text)
        if cell is not None:
            self._cell_ids[cell] = origin
        changes = {r.name: "new" if r.name not in before else "unchanged" if before[r.name] == r.digest
                   else "changed" for r in records}
        warnings = unsupported_names(records, self.repository.support_names,
                                     self.user_ns if self.user_ns is not None else {})
        if kind == "sail" and origin not in self.repository.sources() and text.strip() and not records:
            warnings.append("this %%sail cell defines no name (function, class, import or assignment), so it is "
                            "not kept and pods won't run it; define what modules use (a helper, a constant)")
        return Registered(records, origin, changes, [n for n in held if n not in names], warnings)

    def _origin_for(self, cell: str | None, found: CellScan, text: str) -> str:
        """The cell's origin: by its id, else by the names it defines (or its very text), else new."""
        if cell is not None and cell in self._cell_ids:
            return self._cell_ids[cell]
        if cell is None:
            best, score = None, 0
            for origin, known in reversed(self._cells.items()):  # the latest cell wins a tie
                owned = sum(1 for n in found.functions if n in self.repository
                            and self.repository.get(n).origin == origin)
                points = 2 * owned + len(found.defined & known.defined) + (100 if known.body == text else 0)
                if points > score:
                    best, score = origin, points
            if best is not None:
                return best
        short = (cell or uuid.uuid4().hex).replace("-", "")[:8]
        taken = set(self._cells) | set(self.repository.sources())
        origin, n = f"<cell {short}>", 1
        while origin in taken:
            n += 1
            origin = f"<cell {short}-{n}>"
        return origin

    @property
    def cells(self) -> dict[str, str]:
        """The cells registered so far: origin (``<cell 5f3a1b2c>``) -> magic (``model``, ``sail`` ...)."""
        return {origin: cell.kind for origin, cell in self._cells.items()}

    # -- the repository -----------------------------------------------------------------------
    def modules(self, kind: str | None = None) -> ModuleList:
        """The registered modules (optionally of one ``kind``) and the support-code sources."""
        if kind is not None and kind not in {k.value for k in ModuleKind}:
            raise NotebookError(f"{kind!r} is not a module kind: use one of {', '.join(k.value for k in ModuleKind)}")
        support = {o: s.support_names for o, s in self.repository.sources().items() if s.support_names}
        return ModuleList(tuple(self.repository.modules(kind)), support if kind is None else {})

    def load(self, *paths: str | os.PathLike[str]) -> ModuleList:
        """Register the modules of files, folders of ``.py`` files or importable packages, in turn.

        Raises
        ------
        NotebookError
            For the first path whose modules are invalid (those of the paths before it stay registered).
        """
        records: list[ModuleRecord] = []
        for path in paths:
            try:
                records += self.repository.load(Path(path))
            except SailError as exc:
                raise NotebookError(str(exc)) from None
        return ModuleList(tuple(records))

    def clear(self) -> int:
        """Forget every module and support source (the results store is kept); return how many modules."""
        count = len(self.repository)
        self.repository.clear()
        self._cells.clear()
        self._cell_ids.clear()
        self._lattice = None
        return count

    # -- discovery ----------------------------------------------------------------------------
    def lattice(self) -> Lattice:
        """Every scenario the modules form, and why others don't (cached until a module changes)."""
        from ..planner import discover

        version = self.repository.version
        # A data file whose header gave a type (an undeclared .npy input) may have changed.
        if self._lattice is None or self._lattice[0] != version or self._lattice[1].stale():
            self._lattice = (version, discover(self.repository))
        return self._lattice[1]

    def explain(self, *names: str, **roles: str) -> Explanation:
        """Why the named modules do, or do not, form scenarios.

        Parameters
        ----------
        *names : str
            Module names; each one's role is its kind (``explain("Digits", "MLP")``).
        **roles : str
            Names by role, as ``Lattice.explain`` takes them (``problem="Digits"``).
        """
        wanted: dict[str, str] = {}
        for name in names:
            if name not in self.repository:
                raise NotebookError(f"there is no module {name!r}\n  fix: use one of {self._known()}")
            kind = self.repository.get(name).kind.value
            if kind not in ROLES:
                raise NotebookError(f"{name} is a {kind}: converters are chosen by the planner, not explained; "
                                    "explain the problem and the model that use it")
            wanted[kind] = name
        for role, name in roles.items():
            if role not in ROLES:
                raise NotebookError(f"{role!r} is not a role: use {', '.join(ROLES)}")
            wanted[role] = name
        return Explanation(self.lattice().explain(**wanted))

    def select(self, selector: str | Sequence[str] | None = None) -> list[Scenario]:
        """The scenarios a selector names (every one when it is empty).

        Parameters
        ----------
        selector : str or list of str, optional
            Words separated by spaces, all of which must match: a scenario id, a module
            name (of any role), ``role=Name`` (``model=MLP problem=Digits``) or
            ``param=value`` (``rtol=1e-6``; a parameter that a module binds by default is set,
            discovering again with it); a comma gives alternatives (``model=MLP,CNN``).
        """
        from ._select import select

        return select(self.lattice(), self.repository, selector)

    def _known(self) -> str:
        return ", ".join(r.name for r in self.repository) or "none are registered yet"

    # -- runs and results -----------------------------------------------------------------------
    def run(self, selector: str | Sequence[str] | None = None, *, executor: str = DEFAULT_EXECUTOR,
            jobs: int | None = None, repeats: int = 1, rerun: bool | Literal["failed"] = False,
            timeout: float | None = 600.0, settings: Mapping[str, Any] | None = None,
            scheduler: Any = None, executor_options: Mapping[str, Any] | None = None,
            keep_models: bool = False) -> RunHandle:
        """Start running the selected scenarios as BenchPods in the background; return at once.

        Parameters
        ----------
        selector : str or list of str, optional
            What to run (see :meth:`select`); every scenario by default.
        executor : str
            ``warm`` (default: pods forked from a warm worker), ``subprocess`` (a fresh
            interpreter per pod), ``dask`` (on a Dask cluster: ``scheduler``), ``papermill``
            (each pod runs as a notebook, which is kept: :meth:`open`) or ``inline``.
        jobs : int, optional
            Pods at once (the usable CPUs by default).
        repeats : int
            Independent pods per scenario.
        rerun : bool or "failed"
            Run again pods the store already holds (all, or the failed ones).
        timeout : float, optional
            Seconds one pod may run.
        settings : mapping, optional
            Training-setting overrides (``{"epochs": 3}``).
        scheduler : str, distributed.Client or cluster, optional
            With ``executor="dask"``: the cluster (``tcp://HOST:8786``, ``tls://...``, a client
            or a cluster object); an embedded cluster on 127.0.0.1 by default. The selection
            is checked again against what a worker of that cluster offers.
        executor_options : mapping, optional
            The executor's own options (``papermill``: ``gateway``, ``token``, ``kernel``,
            ``output``). The token is never shown: not in the run's display, nor in an error.
        keep_models : bool
            Keep each trained model (``handle.models[label or id]``), with ``executor="inline"``
            only; the scenarios run again even when the store holds their results.

        Returns
        -------
        RunHandle
            Progress, ``.wait()``, ``.cancel()``; the results are stored as they arrive.
        """
        from ..pods import make_executor
        from ._handle import RunHandle

        if repeats < 1:
            raise NotebookError(f"--repeats {repeats}: run each scenario at least once")
        if jobs is not None and jobs < 1:
            raise NotebookError(f"--jobs {jobs}: run at least one pod at a time")
        scenarios = self.select(selector)
        try:
            ex = make_executor(executor, jobs, scheduler=scheduler, options=executor_options)
        except KeyError as exc:
            raise NotebookError(f"{exc.args[0] if exc.args else exc}\n  fix: --executor warm, subprocess or "
                                "inline, dask (a Dask cluster) or papermill (pods as notebooks)") from None
        except ValueError as exc:  # a scheduler or an option for another executor
            message = hide_secrets(str(exc), executor_options)
            fix = "" if "fix:" in message else "\n  fix: --executor dask or papermill, or leave out --scheduler"
            raise NotebookError(message + fix) from None
        if keep_models:
            try:
                ex.keep_models()
            except ValueError as exc:
                raise NotebookError(str(exc)) from None
        if ex.remote:  # pods run on a cluster's workers: discovery checks what one of them offers
            from ._select import on_cluster

            scenarios = on_cluster(scenarios, self.repository, scheduler, ex.jobs)
        handle = RunHandle(scenarios, ex, store=self.store, repeats=repeats, rerun=rerun, timeout=timeout,
                           settings=settings, keep_models=keep_models)
        self.run_count += 1
        handle.number = self.run_count
        self.runs.append(handle)
        self._forget_old_runs()
        for listener in list(self._run_listeners):  # before the start: they see every event of the run
            listener(handle)
        handle.start()
        return handle

    def _forget_old_runs(self) -> None:
        """Keep every run still going and the last :attr:`KEPT_RUNS` that ended (a kernel may run thousands)."""
        ended = [h for h in self.runs if h.done]
        drop = {id(h) for h in ended[:max(len(ended) - self.KEPT_RUNS, 0)]}
        if drop:
            self.runs = [h for h in self.runs if id(h) not in drop]

    def subscribe_runs(self, listener: Callable[[RunHandle], object]) -> Callable[[], None]:
        """Call ``listener(handle)`` for each run started from now on, whoever starts it; return an unsubscriber.

        The magics, :meth:`run` from code and the dashboard's button all start runs here,
        so a view of the kernel's runs (the dashboard's Runs tab) follows every one.
        """
        self._run_listeners.append(listener)
        return lambda: self._run_listeners.remove(listener) if listener in self._run_listeners else None

    @property
    def last_run(self) -> RunHandle | None:
        """The most recent run, if any."""
        return self.runs[-1] if self.runs else None

    def results(self, versions: Literal["current", "all"] = "current") -> Results:
        """What the results store holds (read afresh at each use).

        Parameters
        ----------
        versions : {"current", "all"}
            Only the latest code version of each scenario (default), or every version.
        """
        from ..results import Results, StoreError

        try:
            return Results(self.store, versions=versions)
        except StoreError as exc:
            raise NotebookError(f"no results yet ({exc})\n  fix: %sail run first") from None

    def open(self, pod: str) -> NotebookLink:
        """A link that opens a pod's executed notebook (in a JupyterLab tab for a local file), and its location.

        Parameters
        ----------
        pod : str
            A pod key (``{identity}-r{repeat}``), or the start of a scenario identity (its
            repeat 0, or its only pod with a notebook); any code version of the scenario.

        Raises
        ------
        NotebookError
            With no results yet, for a pod the store does not have or that kept no
            notebook (only ``--executor papermill`` keeps one), or an ambiguous prefix.
        """
        from ._links import notebook_link

        try:
            return notebook_link(self.results(versions="all"), pod)
        except (KeyError, ValueError) as exc:
            raise NotebookError(f"%sail open {pod}: {exc.args[0] if exc.args else exc}\n  fix: %sail results "
                                "lists the pods (and .artifacts() of it their notebooks); %sail run --executor "
                                "papermill keeps each pod's notebook") from None

    # -- charts and rankings ----------------------------------------------------------------------
    def plot(self, work: str | None = None, precision: str | None = None, color: str = "family",
             swap: bool = False, connect: str | None = None) -> WithWarnings[Any]:
        """The work–precision chart of the current results (a Plotly figure), with the metric warnings.

        The arguments are :func:`~saibench_jupyter.ui.plot_work_precision`'s.

        Raises
        ------
        NotebookError
            With no results yet, without Plotly, or for axes the results do not have (then
            the metric warnings end the message: they may say why a metric has no values).
        """
        results = self.results()
        try:
            from ._charts import plot_work_precision
        except ImportError as exc:
            raise NotebookError(f"charts are not available: {exc}") from None
        warned = results.warning_lines()
        try:
            figure = plot_work_precision(results, work=work, precision=precision, color=color, swap=swap,
                                         connect=connect)
        except (ValueError, KeyError) as exc:
            raise NotebookError(f"%sail plot: {exc.args[0] if exc.args else exc}{_indented(warned)}") from None
        return WithWarnings(figure, tuple(warned))

    def ranking_names(self) -> list[str]:
        """The names of the registered ranking modules."""
        return [r.name for r in self.repository.modules("ranking")]

    def rank(self, ranking: str | None = None, target: Sequence[str] = (), work: str | None = None,
             params: Mapping[str, Any] | None = None) -> WithWarnings[list[Ranking]]:
        """Rank the current results: by one ranking, else by every ranking module, else by the Pareto front.

        Parameters
        ----------
        ranking : str, optional
            A ranking module's name, ``pareto`` or ``target``.
        target : list of str
            With ``target``: the precision metric and the value to reach (``["Accuracy", "0.95"]``).
        work : str, optional
            With ``target``: the work axis (the first work metric by default).
        params : mapping, optional
            With a ranking module: overrides of its own parameters (``{"target": 0.9}``).

        Raises
        ------
        NotebookError
            For an unknown ranking, a target without metric and value, ``target`` or ``work``
            without ``ranking="target"``, ``params`` without a ranking module, a parameter the
            module lacks or a value unlike its default, no results yet, or a ranking that
            fails (then the metric warnings end the message).
        """
        known = self.ranking_names()
        if ranking is not None and ranking not in ("pareto", "target", *known):
            raise NotebookError(f"%sail rank {ranking}: there is no ranking module {ranking!r}\n  fix: use "
                                f"{', '.join([*known, 'pareto', 'target METRIC VALUE'])}")
        names: list[str | tuple[str, ...]] = [ranking] if ranking else [*known] or ["pareto"]
        if ranking == "target":
            names = [("target", *target, *([work] if work else []))]
            try:
                float(target[1])
            except (IndexError, ValueError):
                raise NotebookError(f"%sail rank target {' '.join(target)}: name a precision metric and the value "
                                    "to reach\n  fix: %sail rank target Accuracy 0.95 [--work WallTime]") from None
        elif target or work:
            raise NotebookError(f"%sail rank {ranking or ''}: {' '.join(target) or '--work'} is for target "
                                "only\n  fix: %sail rank target METRIC VALUE [--work W]")
        if params and ranking not in known:
            given = " ".join(f"{k}={v!r}" for k, v in params.items())
            raise NotebookError(f"%sail rank {ranking or ''} {given}: parameters are for a ranking module's own "
                                f"parameters\n  fix: %sail rank NAME {given}, NAME one of {', '.join(known) or 'none'}")
        results = self.results()
        try:
            from ..results import rank
        except ImportError as exc:
            raise NotebookError(f"rankings are not available: {exc}") from None
        warned = results.warning_lines()
        try:
            rankings = [rank(results, name, repository=self.repository, params=params) for name in names]
        except (ValueError, KeyError) as exc:
            raise NotebookError(f"%sail rank: {exc.args[0] if exc.args else exc}{_indented(warned)}") from None
        return WithWarnings(rankings, tuple(warned))

    def __repr__(self) -> str:
        return f"Notebook({self.repository!r}, store={str(self.store)!r}, {self.run_count} runs)"


def _indented(lines: Sequence[str]) -> str:
    """``lines`` as the end of an error message, one indented line each."""
    return "".join(f"\n  {line}" for line in lines)
