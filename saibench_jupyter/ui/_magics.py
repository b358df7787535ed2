"""The IPython magics: a thin adapter over :class:`~saibench_jupyter.ui._notebook.Notebook`.

``%load_ext saibench_jupyter`` registers ``%%problem``, ``%%model``, ``%%metric``,
``%%converter``, ``%%software``, ``%%hardware``, ``%%ranking`` and ``%%sail`` (cells of
SAIL source) and the line magic ``%sail`` (``list``, ``discover``, ``explain``, ``run``,
``wait``, ``plot``, ``rank``, ``results``, ``open``, ``dashboard``, ``load``, ``clear``, ``help``). Parsing
arguments, the cell's identity and turning mistakes into ``UsageError`` is all that
happens here; the work is the notebook's.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics
from IPython.core.magic import cell_magic as _ipython_cell_magic
from IPython.core.magic import line_cell_magic as _ipython_line_cell_magic
from IPython.core.magic import magics_class as _ipython_magics_class

from ..common import assignment
from ..pods import DEFAULT_EXECUTOR
from ._formatting import FORMATTERS
from ._notebook import CELL_KINDS, Notebook, NotebookError
from ._options import add_executor_options, executor_options

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionInfo, InteractiveShell

    from ..planner import Lattice
    from ..results import Results
    from ._handle import RunHandle

USAGE = """\
SAIBench in a notebook
  %%problem  %%model  %%metric  %%converter  %%software  %%hardware  %%ranking
                           register the cell's modules (running the cell again replaces them)
  %%sail                   support code modules share (helpers, imports, constants); shipped to pods
  %sail list [KIND]        the registered modules
  %sail discover           every scenario, and why other combinations don't fit
  %sail explain NAME...    why these modules do or do not form scenarios (%sail explain MNIST MLP)
  %sail run [SELECTOR]     run in the background; SELECTOR: scenario ids, module names, role=Name;
                           options --executor E, --jobs N, --repeats N, --rerun, --rerun-failed,
                           --timeout S, --set KEY=VALUE (a training setting); %sail run --help
                           --executor papermill: each pod runs as a notebook, which is kept
                           (--gateway URL, --token T, --kernel NAME, --output-notebooks LOCATION)
  %sail wait [--timeout S] wait for the last run; its results
  %sail cancel             stop the last run
  %sail results [--all]    the results store: current module versions (--all: earlier ones too)
  %sail open ID            open a pod's executed notebook (--executor papermill) in JupyterLab;
                           ID: a pod key (IDENTITY-rN) or the start of a scenario identity
  %sail plot [--work W] [--precision P] [--swap] [--connect param|checkpoint]
                           the work–precision chart; a line joins a family's scenarios along
                           the swept parameter, or each scenario's checkpoints
  %sail rank [RANKING]     rankings (the ranking modules, else the Pareto front);
                           RANKING KEY=VALUE ... sets a ranking module's parameters
  %sail dashboard          modules, scenarios, runs and charts in one widget
  %sail load PATH|PACKAGE  register the modules of files, folders or packages
  %sail clear              forget every module (the results store stays)
  %sail help sail          the SAIL language reference (docs/sail.md): every name, with examples
  %sail help COMMAND       one command's options (%sail help run)"""

#: The shell each loaded extension serves: id(shell) -> its magics.
_LOADED: dict[int, SailMagics] = {}

# IPython's decorators have no annotations: typed as what they are (they return what they are given,
# marked), so that the magics stay typed.
_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=type)
cell_magic = cast("Callable[[_F], _F]", _ipython_cell_magic)
line_cell_magic = cast("Callable[[_F], _F]", _ipython_line_cell_magic)
magics_class = cast("Callable[[_C], _C]", _ipython_magics_class)


class _Help(Exception):
    """``--help`` was asked for and printed: nothing more to do."""


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are UsageErrors (a magic must never exit the kernel)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}\n  usage: {self.format_usage().strip().removeprefix('usage: ')}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, file=sys.stderr)
        raise _Help


def _parser(name: str, description: str) -> _Parser:
    return _Parser(prog=f"%sail {name}", description=description, add_help=True)


@magics_class
class SailMagics(Magics):
    """The SAIL cell magics and ``%sail``, over one :class:`Notebook`.

    Parameters
    ----------
    shell : InteractiveShell
        The IPython shell.
    notebook : Notebook, optional
        The state behind the magics (a new one, with the shell's namespace, by default).
    """

    def __init__(self, shell: InteractiveShell, notebook: Notebook | None = None) -> None:
        # untyped_calls_exclude does not reach calls through super(); IPython's Magics.__init__ has no annotations
        super().__init__(shell)  # type: ignore[no-untyped-call]
        self.notebook = notebook if notebook is not None else Notebook(user_ns=shell.user_ns)
        #: (cell id, raw text) of the cell being run, from IPython's pre_run_cell event
        self._cell: tuple[str | None, str] | None = None

    # -- cell identity --------------------------------------------------------------------------
    def pre_run_cell(self, info: ExecutionInfo) -> None:
        """Remember the cell being run: its Jupyter id is the cell's identity."""
        self._cell = (getattr(info, "cell_id", None), info.raw_cell or "")

    def post_run_cell(self, result: Any) -> None:
        """Forget it (a magic called from code later must not take this cell's id)."""
        self._cell = None

    def _identity(self, kind: str) -> tuple[str | None, int]:
        """The cell id, and the cell lines above the body, when this magic is the running cell's."""
        if self._cell is None:
            return None, 1
        cell_id, raw = self._cell
        lines = raw.splitlines()
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is None or not re.match(rf"%%{kind}(\s|$)", lines[first].strip()):
            return None, 1  # run_cell_magic from code inside some other cell
        return cell_id, first + 1

    # -- the cell magics ------------------------------------------------------------------------
    def _register(self, kind: str, line: str, cell: str) -> None:
        if line.strip():
            raise UsageError(f"%%{kind} takes no arguments (got {line.strip()!r}): write the modules in the "
                             f"cell, below the %%{kind} line")
        cell_id, offset = self._identity(kind)
        try:
            registered = self.notebook.register(kind, cell, cell_id, line_offset=offset)
        except NotebookError as exc:
            raise UsageError(str(exc)) from None
        for warning in registered.warnings:
            print(f"saibench warning: {warning}", file=sys.stderr)
        print(f"saibench: {registered.summary()}")

    @cell_magic
    def problem(self, line: str, cell: str) -> None:
        """Register the cell's @ProblemDefinition modules."""
        self._register("problem", line, cell)

    @cell_magic
    def model(self, line: str, cell: str) -> None:
        """Register the cell's @ModelDefinition modules."""
        self._register("model", line, cell)

    @cell_magic
    def metric(self, line: str, cell: str) -> None:
        """Register the cell's @MetricDefinition modules."""
        self._register("metric", line, cell)

    @cell_magic
    def converter(self, line: str, cell: str) -> None:
        """Register the cell's @ConverterDefinition modules."""
        self._register("converter", line, cell)

    @cell_magic
    def software(self, line: str, cell: str) -> None:
        """Register the cell's @SoftwareDefinition modules."""
        self._register("software", line, cell)

    @cell_magic
    def hardware(self, line: str, cell: str) -> None:
        """Register the cell's @HardwareDefinition modules."""
        self._register("hardware", line, cell)

    @cell_magic
    def ranking(self, line: str, cell: str) -> None:
        """Register the cell's @RankingDefinition modules."""
        self._register("ranking", line, cell)

    # -- %sail and %%sail -----------------------------------------------------------------------
    @line_cell_magic
    def sail(self, line: str, cell: str | None = None) -> Any:
        """``%%sail``: support code for modules; ``%sail COMMAND``: see ``%sail help``."""
        if cell is not None:
            self._register("sail", line, cell)
            return None
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%sail {line}: {exc} (close the quotes)") from None
        if not words or words[0] in ("-h", "--help"):
            print(USAGE)
            return None
        command, args = words[0], words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise UsageError(f"%sail {command}: no such command; the commands are {', '.join(_commands())}\n"
                             f"{USAGE}")
        try:
            return handler(args)
        except _Help:
            return None
        except NotebookError as exc:
            raise UsageError(str(exc)) from None

    def _cmd_list(self, args: list[str]) -> Any:
        p = _parser("list", "the registered modules")
        p.add_argument("kind", nargs="?", help="only modules of this kind")
        return self.notebook.modules(p.parse_args(args).kind)

    def _cmd_discover(self, args: list[str]) -> Lattice:
        _parser("discover", "every scenario the modules form, and why others don't").parse_args(args)
        return self.notebook.lattice()

    def _cmd_explain(self, args: list[str]) -> Any:
        p = _parser("explain", "why these modules do, or do not, form scenarios")
        p.add_argument("names", nargs="+", help="module names (problem, model, ...), or role=Name")
        ns = p.parse_args(args)
        names = [n for n in ns.names if "=" not in n]
        roles = dict(n.split("=", 1) for n in ns.names if "=" in n)
        return self.notebook.explain(*names, **roles)

    def _cmd_run(self, args: list[str]) -> Any:
        p = _parser("run", "run scenarios as BenchPods in the background")
        p.add_argument("selector", nargs="*",
                       help="scenario ids, module names, role=Name, param=value (all: every scenario)")
        p.add_argument("--executor", default=DEFAULT_EXECUTOR,
                       help="warm (default), subprocess, dask, papermill (each pod a notebook, kept) or inline")
        p.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --executor dask or papermill: the Dask scheduler (tcp://HOST:8786, tls://...)")
        p.add_argument("--jobs", type=int, help="pods at once (default: the usable CPUs)")
        p.add_argument("--repeats", type=int, default=1, help="independent pods per scenario")
        p.add_argument("--rerun", action="store_true", help="run again what the store already holds")
        p.add_argument("--rerun-failed", action="store_true", help="run again the pods that failed")
        p.add_argument("--timeout", type=float, default=600.0, help="seconds per pod (default: 600)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                       help="a training setting for every scenario: --set epochs=3")
        p.add_argument("--keep-models", action="store_true",
                       help="with --executor inline: keep the trained models (the handle's .models[label])")
        add_executor_options(p)
        ns = p.parse_intermixed_args(args)  # selector words may come after options
        rerun: bool | Literal["failed"] = True if ns.rerun else "failed" if ns.rerun_failed else False
        handle = self.notebook.run(ns.selector or None, executor=ns.executor, jobs=ns.jobs, repeats=ns.repeats,
                                   rerun=rerun, timeout=ns.timeout, settings=_settings(ns.settings),
                                   scheduler=ns.scheduler, executor_options=executor_options(ns),
                                   keep_models=ns.keep_models)
        handle.show()
        return handle

    def _cmd_wait(self, args: list[str]) -> Results:
        from ._handle import RunFailedError

        p = _parser("wait", "wait for the last run to end; its results")
        p.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
        ns = p.parse_args(args)
        handle = self._last_run()
        try:
            return handle.wait(ns.timeout)
        except (TimeoutError, RunFailedError) as exc:
            raise UsageError(f"{exc}\n  details: the run's handle (%sail run returns it) has .error and "
                             ".traceback") from None
        except KeyboardInterrupt:
            raise UsageError("stopped waiting: the run goes on in the background (%sail wait again, "
                             "or %sail cancel)") from None

    def _cmd_cancel(self, args: list[str]) -> Any:
        _parser("cancel", "stop the last run").parse_args(args)
        handle = self._last_run()
        handle.cancel()
        return handle

    def _last_run(self) -> RunHandle:
        handle = self.notebook.last_run
        if handle is None:
            raise UsageError("there is no run yet: start one with %sail run")
        return handle

    def _cmd_results(self, args: list[str]) -> Results:
        p = _parser("results", "what the results store holds, for the current version of each scenario")
        p.add_argument("--all", action="store_true", help="also the results of modules' earlier versions")
        return self.notebook.results(versions="all" if p.parse_args(args).all else "current")

    def _cmd_open(self, args: list[str]) -> Any:
        p = _parser("open", "open a pod's executed notebook (a pod run with --executor papermill) in JupyterLab")
        p.add_argument("pod", help="a pod key (IDENTITY-rN), or the start of a scenario identity (its repeat 0, "
                                   "or its only pod with a notebook); %%sail results lists the pods")
        return self.notebook.open(p.parse_args(args).pod)

    def _cmd_plot(self, args: list[str]) -> Any:
        p = _parser("plot", "the work–precision chart of the results")
        p.add_argument("--work", help="the work metric or counter (x axis)")
        p.add_argument("--precision", help="the precision metric (y axis)")
        p.add_argument("--color", default="family", help="what colours the curves (default: family)")
        p.add_argument("--swap", action="store_true", help="precision on x, work on y")
        p.add_argument("--connect", choices=("param", "checkpoint"),
                       help="what a line joins: a family's scenarios along the swept parameter (param), or each "
                            "scenario's checkpoints (checkpoint); default: checkpoint for families whose scenarios "
                            "have several points, else param")
        ns = p.parse_args(args)
        plotted = self.notebook.plot(work=ns.work, precision=ns.precision, color=ns.color, swap=ns.swap,
                                     connect=ns.connect)
        _print_warnings(plotted.warnings)  # a chart without a metric's values must say why
        return plotted.value

    def _cmd_rank(self, args: list[str]) -> Any:
        p = _parser("rank", "rank the results (the ranking modules, else the Pareto front)")
        p.add_argument("ranking", nargs="?", help="a ranking module's name, pareto, or target")
        p.add_argument("target", nargs="*", metavar="METRIC VALUE | KEY=VALUE",
                       help="with target: the precision metric and the value to reach (target Accuracy 0.95); "
                            "with a ranking module: its parameters (TimeToTarget target=0.9)")
        p.add_argument("--work", help="with target: the work axis (default: the first work metric)")
        ns = p.parse_args(args)
        # KEY=VALUE words set a ranking module's parameters; target's METRIC VALUE words have no '='.
        params = {k: v for k, v in (_assigned(w, f"%sail rank {ns.ranking} {w}") for w in ns.target if "=" in w)}
        words = [w for w in ns.target if "=" not in w]
        ranked = self.notebook.rank(ns.ranking, words, ns.work, params or None)
        _print_warnings(ranked.warnings)  # a ranking without a metric's values must say why
        rankings = ranked.value
        return rankings[0] if len(rankings) == 1 else Outputs(rankings)

    def _cmd_dashboard(self, args: list[str]) -> Any:
        from ._dashboard import Dashboard

        p = _parser("dashboard", "modules, scenarios, runs and charts in one widget")
        p.add_argument("--executor", default=DEFAULT_EXECUTOR, help="how 'Run selected' runs pods: warm "
                                                                    "(default), subprocess, dask, papermill or inline")
        p.add_argument("--scheduler", metavar="ADDRESS", help="with --executor dask or papermill: the Dask scheduler")
        p.add_argument("--jobs", type=int, help="pods at once (default: the usable CPUs)")
        add_executor_options(p)
        ns = p.parse_args(args)
        return Dashboard(self.notebook, executor=ns.executor, jobs=ns.jobs, scheduler=ns.scheduler,
                         executor_options=executor_options(ns))

    def _cmd_load(self, args: list[str]) -> Any:
        p = _parser("load", "register the modules of files, folders or packages")
        p.add_argument("paths", nargs="+", help="a .py file, a folder of them, or a package name")
        return self.notebook.load(*p.parse_args(args).paths)

    def _cmd_clear(self, args: list[str]) -> None:
        _parser("clear", "forget every module and support cell (the results store stays)").parse_args(args)
        print(f"saibench: forgot {self.notebook.clear()} modules (the results in {self.notebook.store} stay)")

    def _cmd_help(self, args: list[str]) -> Any:
        if not args:
            print(USAGE)
            return None
        topic = args[0]
        if topic.lower() in ("sail", "language"):
            from ._reference import language_reference

            try:
                shown = language_reference()
            except FileNotFoundError as exc:
                raise UsageError(str(exc)) from None
            print(f"The SAIL language reference: {shown.path}")
            return shown
        if topic in _commands() and topic != "help":
            return getattr(self, f"_cmd_{topic}")(["--help"])
        raise UsageError(f"%sail help {topic}: no such topic; ask for sail (the language reference) or a command: "
                         f"{', '.join(c for c in _commands() if c != 'help')}")


class Outputs(tuple[Any, ...]):
    """Several results of one magic (rankings), each displayed in turn."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        for item in self:
            display(item)


def _print_warnings(lines: Iterable[str]) -> None:
    """Which metrics failed in which share of pods (``Results.warning_lines``), on stderr."""
    for line in lines:
        print(f"saibench: {line}", file=sys.stderr)


def _commands() -> list[str]:
    return [name.removeprefix("_cmd_") for name in dir(SailMagics) if name.startswith("_cmd_")]


def _settings(pairs: Iterable[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, value = _assigned(pair, f"--set {pair}", "--set epochs=3")
        out[key] = value
    return out or None


def _assigned(word: str, where: str, example: str = "target=0.9") -> tuple[str, Any]:
    """``KEY=VALUE`` read as ``(key, value)``; anything else is a usage error naming ``where``."""
    setting = assignment(word)
    if setting is None:
        raise UsageError(f"{where}: write KEY=VALUE, e.g. {example}")
    return setting


# -- the extension ---------------------------------------------------------------------------------
def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register the SAIL magics, the cell-id hooks and the displays (``%load_ext saibench_jupyter``)."""
    if id(ipython) in _LOADED:
        return
    magics = SailMagics(ipython)
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", magics.pre_run_cell)
    ipython.events.register("post_run_cell", magics.post_run_cell)
    if ipython.display_formatter is not None:
        formatters = ipython.display_formatter.formatters
        for (mime, module, name), func in FORMATTERS.items():
            formatters[mime].for_type_by_name(module, name, func)
    _LOADED[id(ipython)] = magics
    from ._lab_comm import start_lab  # the JupyterLab sidebar's comm target, saibench.lab

    start_lab(ipython, magics.notebook)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove what :func:`load_ipython_extension` added (runs in progress go on)."""
    magics = _LOADED.pop(id(ipython), None)
    if magics is None:
        return
    from ._lab_comm import stop_lab

    stop_lab(ipython)
    for event, callback in (("pre_run_cell", magics.pre_run_cell), ("post_run_cell", magics.post_run_cell)):
        try:
            ipython.events.unregister(event, callback)
        except ValueError:
            pass  # already gone
    table: dict[str, dict[str, Any]] = getattr(ipython.magics_manager, "magics", {"cell": {}, "line": {}})
    for kind, names in (("cell", [*CELL_KINDS]), ("line", ["sail"])):
        for name in names:
            if getattr(table[kind].get(name), "__self__", None) is magics:
                del table[kind][name]
    if ipython.display_formatter is not None:
        formatters = ipython.display_formatter.formatters
        for mime, module, name in FORMATTERS:
            formatters[mime].pop(f"{module}.{name}", None)


def notebook(ipython: InteractiveShell | None = None) -> Notebook:
    """The :class:`Notebook` behind the magics of ``ipython`` (the running shell by default).

    Raises
    ------
    RuntimeError
        When the extension is not loaded there.
    """
    from IPython.core.getipython import get_ipython

    shell = ipython if ipython is not None else get_ipython()
    magics = _LOADED.get(id(shell)) if shell is not None else None
    if magics is None:
        raise RuntimeError("the SAIBench extension is not loaded: run %load_ext saibench_jupyter first")
    return magics.notebook
