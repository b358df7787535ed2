"""``%sail dashboard``: modules, the discovery lattice, converters, runs and results in one widget.

One :class:`Dashboard` per call, an ``ipywidgets.VBox`` holding a ``Tab``. It follows
the notebook: it subscribes to the repository (a re-run ``%%model`` cell refreshes the
Modules and Lattice tabs) and to the kernel's runs, whoever starts them (``%sail run``,
``Notebook.run`` from code, its own button): the Runs tab shows the latest one live
(pod table, throttled) and lists the earlier ones. Its
three Plotly ``FigureWidget`` objects are made once and updated in place ever after,
since each one carries megabytes of JavaScript to the browser. Every state the widgets
show is also an attribute (``lattice_nodes``, ``selected``, ``rejected_reasons`` ...),
so it can be driven and checked without a browser.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..pods import DEFAULT_EXECUTOR, available
from ._formatting import doc_html, pods_table_html
from ._throttle import Throttle

if TYPE_CHECKING:
    from ..planner import Lattice
    from ..results import Results
    from ._handle import RunHandle
    from ._notebook import Notebook

#: Seconds between two redraws of the Runs tab (pod events can come by the hundred per second).
THROTTLE = 0.3
_TABS = ("Modules", "Lattice", "Converters", "Runs", "Results")


def _figure_widget() -> Any:
    import plotly.graph_objects as go

    return go.FigureWidget()


def _sync_figure(figure: Any) -> None:
    """Set the state a new browser view of ``figure`` starts from to the figure as it is now."""
    from copy import deepcopy

    figure._widget_layout = deepcopy(figure._layout_obj._props)
    figure._widget_data = deepcopy(figure._data)


# ipywidgets has no type information, so its VBox is Any to mypy.
class Dashboard(widgets.VBox):  # type: ignore[misc]
    """Modules, the lattice, converters, runs and results of a :class:`Notebook`, live.

    Parameters
    ----------
    notebook : Notebook
        The notebook whose repository, runs and results store it shows.
    executor : str
        How "Run selected" runs pods first (``warm``, the default, ``subprocess``, ``dask``,
        ``papermill`` or ``inline``); the executor picker changes it.
    jobs : int, optional
        Pods at once for those runs (the usable CPUs by default).
    scheduler : str, optional
        The Dask scheduler of runs with the ``dask`` executor (an embedded cluster by default).
    executor_options : mapping, optional
        The options of ``executor`` (``papermill``: ``gateway``, ``token``, ``kernel``,
        ``output``), given to the runs of that executor.

    Attributes
    ----------
    lattice_nodes : list of dict
        The search tree's nodes: ``id``, ``parent``, ``label``, ``kind``, ``accepted``,
        ``reason``, ``scenarios`` (ids of the scenarios under the node).
    selected : list of str
        The ids of the selected scenarios (those under the node last selected).
    rejected_reasons : list of str
        One line per rejection, as listed under the sunburst.
    lattice_figure, converter_figure, results_figure : plotly.graph_objects.FigureWidget
        The three charts; the same objects for the dashboard's whole life.
    handle : RunHandle or None
        The run the Runs tab follows: the kernel's latest.
    """

    def __init__(self, notebook: Notebook, *, executor: str = DEFAULT_EXECUTOR, jobs: int | None = None,
                 scheduler: Any = None, executor_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.notebook = notebook
        self.executor = executor
        self.jobs = jobs
        self.scheduler = scheduler
        # The options belong to the executor they were given with: another one picked later takes none.
        self._executor_options = (executor, dict(executor_options)) if executor_options else None
        self.lattice_nodes: list[dict[str, Any]] = []
        self.selected: list[str] = []
        self.selected_node: str | None = None
        self.rejected_reasons: list[str] = []
        self.handle: RunHandle | None = None
        self._version: int | None = None
        self._quiet = False
        self._run_drawing = Throttle(THROTTLE, self._draw_run)  # the followed run's pods, redrawn as they change
        self._unsubscribe_run: Callable[[], None] | None = None
        self._shown = threading.Event()  # set once the followed run's end is drawn
        self._clicked: Any = None
        self._results: Any = None
        self._build()
        self._unsubscribe_repo: Callable[[], None] | None = notebook.repository.subscribe(self._on_repository)
        self._unsubscribe_runs: Callable[[], None] | None = notebook.subscribe_runs(self.follow)
        if notebook.last_run is not None:  # a run started before the dashboard was opened
            self.follow(notebook.last_run)
        self.refresh()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        w = widgets
        self.status = w.HTML()
        # Modules
        self.modules_html = w.HTML()
        # Lattice
        self.lattice_figure = _figure_widget()
        self.node_picker = w.Dropdown(description="node", options=[], layout={"width": "60%"})
        self.node_picker.observe(self._on_pick, names="value")
        self.selection_label = w.HTML("click a node of the chart (or pick one) to select its scenarios")
        self.run_button = w.Button(description="Run 0 selected", disabled=True, icon="play")
        self.run_button.on_click(lambda _: self._run_clicked())
        self.rejected_html = w.HTML()
        self.executor_picker = w.Dropdown(description="executor", options=sorted({*available(), self.executor}),
                                          value=self.executor, layout={"width": "20%"})
        self.executor_picker.observe(lambda change: setattr(self, "executor", change["new"]), names="value")
        lattice_tab = w.VBox([self.lattice_figure, w.HBox([self.node_picker, self.executor_picker, self.run_button]),
                              self.selection_label, self.rejected_html])
        # Converters
        self.converter_figure = _figure_widget()
        self.scenario_picker = w.Dropdown(description="scenario", options=[], layout={"width": "80%"})
        self.scenario_picker.observe(lambda _: self._draw_converters(), names="value")
        # Runs
        self.progress = w.IntProgress(value=0, min=0, max=1, description="pods")
        self.run_summary = w.HTML("no run yet in this kernel: %sail run, or select scenarios in the Lattice tab "
                                  "and run them")
        self.pods_html = w.HTML()
        self.earlier_runs_html = w.HTML()
        # Results
        self.results_figure = _figure_widget()
        self.work_picker = w.Dropdown(description="work", options=[])
        self.precision_picker = w.Dropdown(description="precision", options=[])
        self.swap_toggle = w.ToggleButton(description="swap axes", value=False)
        for control in (self.work_picker, self.precision_picker, self.swap_toggle):
            control.observe(lambda _: self._draw_results(), names="value")
        self.reload_button = w.Button(description="Reload results", icon="refresh")
        self.reload_button.on_click(lambda _: self.refresh_results())
        self.results_note = w.HTML()
        self.rankings_html = w.HTML()
        self.tabs = w.Tab(children=[
            self.modules_html, lattice_tab, w.VBox([self.scenario_picker, self.converter_figure]),
            w.VBox([self.progress, self.run_summary, self.pods_html, self.earlier_runs_html]),
            w.VBox([w.HBox([self.work_picker, self.precision_picker, self.swap_toggle, self.reload_button]),
                    self.results_note, self.results_figure, self.rankings_html]),
        ], titles=list(_TABS))
        self.children = [self.status, self.tabs]

    # -- following the repository ------------------------------------------------------------------
    def _on_repository(self, event: Any) -> None:
        self._ensure_fresh()

    def _ensure_fresh(self) -> None:
        # One refresh per change, not per event (re-running a cell sends one event per module).
        if self.notebook.repository.version != self._version:
            self.refresh_lattice()

    def refresh(self) -> None:
        """Redraw everything: modules, lattice, converters, the run and the results."""
        self.refresh_lattice()
        self._run_drawing.flush()
        self.refresh_results()

    def refresh_lattice(self) -> None:
        """Discover again (cached until a module changes) and redraw Modules, Lattice and Converters."""
        from ._lattice_view import lattice_figure, lattice_figure_data, rejected_reasons

        self._version = self.notebook.repository.version
        try:
            lattice = self.notebook.lattice()
        except Exception as exc:  # a broken module must not break the dashboard
            self.status.value = f"<b>discovery failed</b>: {escape(str(exc))}"
            return
        data = lattice_figure_data(lattice)
        keys = ("ids", "parents", "labels", "kinds", "accepted", "reasons", "scenarios")
        self.lattice_nodes = [dict(zip(("id", "parent", "label", "kind", "accepted", "reason", "scenarios"), row,
                                       strict=True)) for row in zip(*(data[k] for k in keys), strict=True)]
        self.rejected_reasons = rejected_reasons(lattice)
        figure = lattice_figure(lattice, figure=self.lattice_figure)
        trace = figure.data[0]
        if trace is not self._clicked:  # the trace is updated in place: register the click once
            trace.on_click(self._on_click)
            self._clicked = trace
        self.modules_html.value = self._modules_table(lattice)
        items = "".join(f"<li>{escape(r)}</li>" for r in self.rejected_reasons)
        self.rejected_html.value = (f"<b>{escape(lattice.headline())}</b> (rejected first)<ul>{items}</ul>"
                                    if items else "<i>nothing was rejected</i>")
        known = {s.id for s in lattice.scenarios}
        self.selected = [s for s in self.selected if s in known]
        self._quiet = True
        try:
            self.node_picker.options = [(self._node_text(n), n["id"]) for n in self.lattice_nodes]
            self.node_picker.value = None
        finally:
            self._quiet = False
        self.status.value = f"{escape(lattice.headline())}, {len(self.notebook.repository)} modules"
        self._show_selection(lattice)

    def _node_text(self, node: dict[str, Any]) -> str:
        depth: int = node["id"].count("/")
        count = f" ({len(node['scenarios'])})" if node["accepted"] else ""
        return "\u2003" * depth + f"{node['kind']}: {node['label']}{count}"

    def _modules_table(self, lattice: Lattice) -> str:
        used: dict[str, int] = {}
        for s in lattice.scenarios:
            for name in {n for names in s.names().values() for n in names}:
                used[name] = used.get(name, 0) + 1
        problems: dict[str, list[str]] = {}
        for r in lattice.rejections:
            problems.setdefault(r.name, []).append(r.reason)
        rows = []
        for m in self.notebook.repository.modules():
            issues = "; ".join(dict.fromkeys(problems.get(m.name, [])))
            rows.append(f"<tr><td>{escape(m.name)}</td><td>{escape(m.kind.value)}</td>"
                        f"<td>{escape(str(m.origin))}, line {m.line}</td><td>{used.get(m.name, 0)}</td>"
                        f"<td>{escape(issues)}</td><td>{doc_html(m.doc)}</td></tr>")
        if not rows:
            return "<p>no SAIL modules yet: define some in %%problem, %%model ... cells</p>"
        return ("<table><thead><tr><th>name</th><th>kind</th><th>origin</th><th>scenarios</th>"
                f"<th>problems</th><th>what it is</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")

    # -- selection ----------------------------------------------------------------------------------
    def _on_click(self, trace: Any, points: Any, state: Any) -> None:
        if points.point_inds:
            index = points.point_inds[0]
            if 0 <= index < len(self.lattice_nodes):
                self.select_node(self.lattice_nodes[index]["id"])

    def _on_pick(self, change: dict[str, Any]) -> None:
        if not self._quiet and change["new"] is not None:
            self.select_node(change["new"])

    def select_node(self, node_id: str) -> list[str]:
        """Select the scenarios under the node ``node_id`` (an id of :attr:`lattice_nodes`); return their ids.

        Raises
        ------
        KeyError
            For a node the lattice does not have.
        """
        self._ensure_fresh()
        node = next((n for n in self.lattice_nodes if n["id"] == node_id), None)
        if node is None:
            raise KeyError(f"no node {node_id!r} in the lattice: use an id of .lattice_nodes")
        self.selected_node = node_id
        self.selected = list(node["scenarios"])
        self._show_selection(self.notebook.lattice(), node)
        return self.selected

    def _show_selection(self, lattice: Lattice, node: dict[str, Any] | None = None) -> None:
        count = len(self.selected)
        self.run_button.description = f"Run {count} selected"
        self.run_button.disabled = count == 0
        if node is not None and not node["accepted"]:
            self.selection_label.value = (f"{escape(node['kind'])} {escape(node['label'])} was rejected: "
                                          f"{escape(node['reason'])}")
        elif node is not None:
            self.selection_label.value = f"{count} scenario{'s' if count != 1 else ''} under {escape(node['label'])}"
        chosen = [lattice[s] for s in self.selected] or list(lattice.scenarios)
        self._quiet = True
        try:
            self.scenario_picker.options = [(s.label, s.id) for s in chosen]
            self.scenario_picker.value = chosen[0].id if chosen else None
        finally:
            self._quiet = False
        self._draw_converters()

    @property
    def converter_scenario(self) -> str | None:
        """The id of the scenario whose converter chains the Converters tab highlights."""
        scenario: str | None = self.scenario_picker.value  # a scenario id, or None: nothing to pick
        return scenario

    def _draw_converters(self) -> None:
        from ._lattice_view import converter_figure

        if self._quiet:
            return
        converter_figure(self.notebook.lattice(), self.scenario_picker.value, figure=self.converter_figure)

    # -- runs -------------------------------------------------------------------------------------------
    def _run_clicked(self) -> None:
        try:
            self.run_selected()
        except Exception as exc:
            self.run_summary.value = f"<b>could not start the run</b>: {escape(str(exc))}"
        self.tabs.selected_index = _TABS.index("Runs")

    def run_selected(self, **options: Any) -> RunHandle:
        """Run exactly the selected scenarios (``Notebook.run`` ``options`` beside); follow the run.

        Raises
        ------
        ValueError
            When nothing is selected.
        """
        if not self.selected:
            raise ValueError("no scenario is selected: select a node of the lattice first")
        options.setdefault("executor", self.executor)
        options.setdefault("jobs", self.jobs)
        if options["executor"] in ("dask", "papermill"):
            options.setdefault("scheduler", self.scheduler)
        if self._executor_options is not None and options["executor"] == self._executor_options[0]:
            options.setdefault("executor_options", self._executor_options[1])
        handle = self.notebook.run(list(self.selected), **options)
        return handle if handle is self.handle else self.follow(handle)  # the notebook told us already

    def follow(self, handle: RunHandle) -> RunHandle:
        """Show ``handle``'s progress in the Runs tab (and its results when it ends).

        The dashboard calls it for every run the notebook starts; call it to go back to an
        earlier run.
        """
        if self._unsubscribe_run is not None:
            self._unsubscribe_run()
        self.handle = handle
        self._shown.clear()
        self._run_drawing.flush()
        self._unsubscribe_run = handle.subscribe(self._on_run_event)
        return handle

    def wait(self, timeout: float | None = None) -> Results:
        """Wait for the followed run to end and for the dashboard to show its end; return its results.

        Raises
        ------
        ValueError
            When no run is followed.
        TimeoutError, RunFailedError
            As :meth:`RunHandle.wait`.
        """
        if self.handle is None:
            raise ValueError("no run to wait for: run_selected() first")
        results = self.handle.wait(timeout)
        if not self._shown.wait(timeout):
            raise TimeoutError("the run ended but the dashboard has not drawn it yet")
        return results

    def _on_run_event(self, event: dict[str, Any]) -> None:  # from the run's thread
        if event.get("event") == "done":
            try:
                self._run_drawing.flush()
                self.refresh_results()
            finally:
                self._shown.set()
            return
        self._run_drawing.poke()

    def _draw_run(self) -> None:
        handle = self.handle
        if handle is None:
            return
        # The notebook keeps its latest runs only: numbers are the handles' own, not positions in that list.
        runs = self.notebook.runs
        number = handle.number
        earlier = [r for r in runs if r is not handle]
        self.earlier_runs_html.value = ("<b>Other runs of this kernel</b><ul>" + "".join(
            f"<li>run {r.number}: {escape(r.summary())}</li>" for r in reversed(earlier)) + "</ul>") if earlier else ""
        pods = handle.pods
        ended = sum(1 for p in pods if p.status in ("ok", "diverged", "failed", "cancelled", "interrupted"))
        self.progress.max = max(handle.total, len(pods), 1)
        self.progress.value = ended if not handle.done else self.progress.max
        self.progress.bar_style = ("danger" if handle.status == "error" or any(p.status == "failed" for p in pods)
                                   else "success" if handle.done else "info")
        total = self.notebook.run_count
        self.run_summary.value = (f"run {number} of {total}: " if number else "") + escape(handle.summary())
        self.pods_html.value = pods_table_html(pods)

    # -- results ---------------------------------------------------------------------------------------
    def refresh_results(self) -> None:
        """Read the results store again: axis choices, the work–precision chart and the rankings."""
        from ._charts import axes_available
        from ._notebook import NotebookError

        try:
            results = self.notebook.results()
            work, precision = axes_available(results)
        except (NotebookError, ValueError) as exc:
            self.results_note.value = f"<i>{escape(str(exc).splitlines()[0])}</i>"
            return
        self._quiet = True
        try:
            for picker, choices in ((self.work_picker, work), (self.precision_picker, precision)):
                keep = picker.value if picker.value in choices else (choices[0] if choices else None)
                picker.options = list(choices)
                picker.value = keep
        finally:
            self._quiet = False
        self._results = results
        self._draw_results()
        self._draw_rankings(results)

    def _draw_results(self) -> None:
        from ._charts import plot_work_precision

        results = self._results
        if self._quiet or results is None:
            return
        try:
            plot_work_precision(results, work=self.work_picker.value, precision=self.precision_picker.value,
                                swap=self.swap_toggle.value, figure=self.results_figure)
            self.results_note.value = ""
        except ValueError as exc:
            self.results_note.value = f"<i>{escape(str(exc))}</i>"

    def _draw_rankings(self, results: Any) -> None:
        from ..results import rank

        repo = self.notebook.repository
        names = self.notebook.ranking_names() or ["pareto"]
        parts = []
        for name in names:
            try:
                parts.append(f"<h4>{escape(name)}</h4>" + rank(results, name, repository=repo)._repr_html_())
            except Exception as exc:  # a broken ranking module must not hide the others
                parts.append(f"<h4>{escape(name)}</h4><p>{escape(str(exc))}</p>")
        self.rankings_html.value = "".join(parts)

    # -- the end -----------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # A FigureWidget brings its figure up to date for the browser only when it is itself
        # displayed; inside a container, a view made now would start from the figure as it was
        # when the widget was created (the updates sent before the view existed are lost).
        # Do what plotly's own _repr_mimebundle_ does, for the three figures inside.
        for figure in (self.lattice_figure, self.converter_figure, self.results_figure):
            _sync_figure(figure)
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):  # beside the view: what a page or viewer without widgets shows
            bundle["text/html"] = self.snapshot_html()
        return bundle

    def snapshot_html(self) -> str:
        """The dashboard as it is now, as static HTML: every tab, its charts as :mod:`._static` placeholders.

        Front ends that run widgets show the live dashboard; an HTML report, nbviewer or a
        notebook opened without its kernel shows this instead of a blank cell.
        """
        from ._static import figure_html

        def fold(title: str, body: str, open_: bool = False) -> str:
            return f"<details{' open' if open_ else ''}><summary><b>{escape(title)}</b></summary>{body}</details>"

        run = self.run_summary.value + self.pods_html.value + self.earlier_runs_html.value
        scenario = self.scenario_picker.label or ""
        return (f"<div><p><b>SAIBench dashboard</b> — {self.status.value} <i>(a snapshot: the dashboard is live "
                "in a running notebook)</i></p>"
                + fold("Modules", self.modules_html.value)
                + fold("Lattice", figure_html(self.lattice_figure) + self.rejected_html.value)
                + fold("Converters", f"<p>{escape(scenario)}</p>" + figure_html(self.converter_figure))
                + fold("Runs", run, open_=True)
                + fold("Results", self.results_note.value + figure_html(self.results_figure) + self.rankings_html.value,
                       open_=True)
                + "</div>")

    def close(self) -> None:
        """Stop following the repository and the run, and close the widgets."""
        for unsubscribe in (self._unsubscribe_repo, self._unsubscribe_runs, self._unsubscribe_run):
            if unsubscribe is not None:
                unsubscribe()
        self._unsubscribe_repo = self._unsubscribe_runs = self._unsubscribe_run = None
        self._run_drawing.cancel()
        for child in (self.lattice_figure, self.converter_figure, self.results_figure, self.tabs, self.status):
            child.close()
        super().close()
