"""Headless reports: run a notebook with Papermill and write it as a self-contained HTML page.

This is how the quickstart runs without a browser (``saibench quickstart``): the executed
notebook is kept as the run's record beside an HTML page that holds the interactive
Plotly charts and the rankings, and works offline. Charts come out of the kernel as
Plotly's JSON (the ``plotly_mimetype`` renderer) and the page carries plotly.js once
(:mod:`._static`); widgets, which need a kernel, are kept as the static HTML they offer
beside their view (the dashboard's snapshot), and their saved state, megabytes that no
page without a kernel can use, is dropped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parents[1]
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_PLOTLY = "application/vnd.plotly.v1+json"


@dataclass(frozen=True)
class Report:
    """What :func:`report` wrote.

    Attributes
    ----------
    notebook : Path
        The executed notebook (every output kept; widgets as their static HTML).
    html : Path
        The HTML page.
    seconds : float
        Wall time of the whole run, kernel start included.
    """

    notebook: Path
    html: Path
    seconds: float


class ReportError(RuntimeError):
    """A notebook that could not be run: which cell failed, why, and where the executed copy is."""


def quickstart() -> Path:
    """The quickstart notebook: inside the installed package (a wheel), else in the source checkout."""
    for candidate in (_PACKAGE / "notebooks" / "quickstart.ipynb", _PACKAGE.parent / "notebooks" / "quickstart.ipynb"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("the quickstart notebook is not installed: reinstall saibench-jupyter "
                            "(pip install saibench-jupyter), or pass a notebook path to `saibench report`")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel Papermill starts (it inherits ours), then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _engine_options() -> dict[str, Any]:
    """Options for the kernel Papermill starts: transport encryption where both ends can do it.

    ipykernel 7 warns on stderr, at every start, that a kernel on plain TCP "is susceptible
    to eavesdropping", so every headless report printed it. The fix the warning names is
    CurveZMQ keys from the kernel manager: jupyter_client 8.10 provisions them with
    ``transport_encryption="auto"`` when the kernelspec declares support. An older
    jupyter_client has no such option (and is paired with a kernel that does not warn),
    and a libzmq without CURVE cannot encrypt: then the kernel starts as before.
    """
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if "transport_encryption" not in KernelManager.class_trait_names() or not zmq.has("curve"):
        return {}
    return {"config": Config({"KernelManager": {"transport_encryption": "auto"}})}


def static_notebook(nb: Any) -> Any:
    """Make an executed notebook show everything without a kernel; return it (changed in place).

    Plotly outputs get an HTML placeholder beside their JSON (:func:`._static.figure_html`),
    a widget view is replaced by the HTML its widget offers beside it (or by a note saying
    what it was), and the saved widget state goes.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook.

    Returns
    -------
    nbformat.NotebookNode
    """
    from ._static import figure_html

    widgets = nb.metadata.get("widgets", {})
    widgets.pop(_WIDGET_STATE, None)  # every widget's model, code included (a FigureWidget's is 5 MB)
    if not widgets:
        nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            if _PLOTLY in data and "text/html" not in data:
                figure = data[_PLOTLY]
                data["text/html"] = figure_html(json.loads(figure) if isinstance(figure, str) else figure)
            if _WIDGET_VIEW in data:
                del data[_WIDGET_VIEW]
                if "text/html" not in data:
                    what = str(data.get("text/plain", "a widget")).split("(", 1)[0]
                    data["text/html"] = (f"<p><i>{escape(what)}: an interactive widget, live only in a running "
                                         "notebook (open the notebook in JupyterLab and run it)</i></p>")
    return nb


def report(notebook: str | os.PathLike[str], out: str | os.PathLike[str], *,
           parameters: Mapping[str, Any] | None = None, timeout: float = 1800.0,
           log: Callable[[str], None] | None = None) -> Report:
    """Execute ``notebook`` in ``out`` (its working folder: the results store lands there) and write HTML.

    Parameters
    ----------
    notebook : path
        The notebook to run.
    out : path
        The folder for the executed notebook, the HTML page and whatever the notebook writes.
    parameters : mapping, optional
        Papermill parameters (for a notebook with a cell tagged ``parameters``).
    timeout : float
        Seconds any one cell may run.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    Report

    Raises
    ------
    ReportError
        When a cell fails; the executed notebook (with the error in place) is still written.
    """
    import nbconvert
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = Path(notebook).resolve()
    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    executed, html = folder / source.name, folder / f"{source.stem}.html"
    say = log or (lambda line: None)
    say(f"running {source} in {folder} ...")
    started = time.perf_counter()
    # Figures as Plotly's JSON only: the page below carries plotly.js once, not once per figure.
    with _environment({"PLOTLY_RENDERER": "plotly_mimetype"}):
        try:
            papermill.execute_notebook(str(source), str(executed), parameters=dict(parameters or {}),
                                       cwd=str(folder), kernel_name="python3", progress_bar=False,
                                       execution_timeout=int(timeout), **_engine_options())
        except PapermillExecutionError as e:
            raise ReportError(f"cell {e.exec_count} of {source.name} failed: {e.ename}: {e.evalue}. The executed "
                              f"notebook, with the error in place, is {executed}") from None
    nb = static_notebook(nbformat.read(executed, as_version=4))
    nbformat.write(nb, executed)
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    html.write_text(_with_plotly(body), encoding="utf-8")
    seconds = time.perf_counter() - started
    say(f"wrote {html} and {executed} in {seconds:.1f} s")
    return Report(executed, html, seconds)


def _with_plotly(page: str) -> str:
    """The page with plotly.js and the script that draws its charts, when it has any."""
    from ._static import PLACEHOLDER, plotly_script

    if f'class="{PLACEHOLDER}"' not in page:
        return page
    end = page.rfind("</body>")
    return page[:end] + plotly_script() + page[end:] if end >= 0 else page + plotly_script()
