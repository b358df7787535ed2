"""Headless reports: run a notebook with Papermill and write it as a self-contained HTML page.

This is how the quickstart runs without a browser (``saibench quickstart``): the executed
notebook is kept as the run's record beside an HTML page that holds the interactive
Plotly charts (their JavaScript inlined, so the page works offline) and the rankings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Report:
    """What :func:`report` wrote.

    Attributes
    ----------
    notebook : Path
        The executed notebook (every output kept).
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
    # "notebook": figures carry plotly.js inline, so the HTML export shows them offline.
    with _environment({"PLOTLY_RENDERER": "notebook"}):
        try:
            papermill.execute_notebook(str(source), str(executed), parameters=dict(parameters or {}),
                                       cwd=str(folder), kernel_name="python3", progress_bar=False,
                                       execution_timeout=int(timeout))
        except PapermillExecutionError as e:
            raise ReportError(f"cell {e.exec_count} of {source.name} failed: {e.ename}: {e.evalue}. The executed "
                              f"notebook, with the error in place, is {executed}") from None
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    html.write_text(body, encoding="utf-8")
    seconds = time.perf_counter() - started
    say(f"wrote {html} and {executed} in {seconds:.1f} s")
    return Report(executed, html, seconds)
