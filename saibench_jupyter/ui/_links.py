"""Links to pods' executed notebooks that JupyterLab opens in a tab of its own.

A pod run with ``executor="papermill"`` keeps its executed notebook, at a path or a URL
(``Results.notebook``). JupyterLab handles a link in a cell's output whose ``href`` is
*relative* (no scheme, no leading ``/``): it resolves it against the folder of the
notebook that shows it, and opens the file in a JupyterLab tab (its rendermime link
handler, ``rendermime:handle-local-link``) instead of leaving the page. A kernel started
for a notebook runs in that folder, so a local notebook's link is its path relative to
the kernel's working directory. An absolute path would be a link to the server's root,
so it is never used. A notebook written elsewhere (``http(s)://``) is a plain link; one in
object storage (``s3://``, ``gs://``, ``abs://``) has no page a browser can open: it shows
as text.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlparse

if TYPE_CHECKING:
    from ..results import Results

#: A location with a scheme (``s3://``, ``https://``; not a Windows drive such as ``C:\\``).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def notebook_href(location: str, cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The ``href`` that opens the notebook at ``location`` from a cell's output, or None where none can.

    Parameters
    ----------
    location : str
        An absolute path, a ``file://`` URL, or another URL.
    cwd : path, optional
        The folder a relative link starts from: the kernel's working directory by default.

    Returns
    -------
    str or None
        A relative, percent-encoded path for a local file (JupyterLab opens it in a tab);
        the URL itself for ``http(s)://``; None for object storage (``s3://`` ...).
    """
    if _URL.match(location):
        parsed = urlparse(location)
        if parsed.scheme in ("http", "https"):
            return location
        if parsed.scheme != "file":
            return None
        location = unquote(parsed.path)
    path = Path(location)
    try:
        relative = os.path.relpath(path, os.fspath(cwd) if cwd is not None else os.getcwd())
    except ValueError:  # another drive (Windows): no relative path leads there
        return path.absolute().as_uri()
    return quote(Path(relative).as_posix())


@dataclass(frozen=True)
class NotebookLink:
    """A pod's executed notebook: a link that opens it (in JupyterLab for a local file), and its location.

    Attributes
    ----------
    pod : str
        The pod's key (``{identity}-r{repeat}``).
    label : str
        Its scenario's label (the pod key when the store has no label).
    location : str
        Where the notebook is: a path or a URL, as the executor wrote it.
    href : str or None
        The link (:func:`notebook_href`); None where a browser cannot open the location.
    """

    pod: str
    label: str
    location: str
    href: str | None

    def __str__(self) -> str:
        return self.location

    def __repr__(self) -> str:
        return self.location

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.location)

    def _repr_html_(self) -> str:
        name = escape(f"{self.label} r{self.pod.rsplit('-r', 1)[-1]}")
        where = f"<code>{escape(self.location)}</code>"
        if self.href is None:
            return f"<p>The executed notebook of {name}: {where} (a browser cannot open it: copy it here first)</p>"
        remote = _URL.match(self.href) is not None
        target = ' target="_blank" rel="noopener"' if remote else ""
        return (f'<p><a href="{escape(self.href)}"{target}>Open the executed notebook of {name}</a> '
                f"({where})</p>")


def notebook_link(results: Results, pod: str, cwd: str | os.PathLike[str] | None = None) -> NotebookLink:
    """The link to the executed notebook of the pod ``pod`` names (``Results.notebook``'s key or prefix).

    Raises
    ------
    KeyError, ValueError
        As :meth:`Results.notebook <saibench_jupyter.results.Results.notebook>`.
    """
    location = results.notebook(pod)
    rows = results.artifacts("notebook")
    row = rows[rows["location"] == location].iloc[0]
    label = row["label"] if isinstance(row["label"], str) else str(row["pod"])
    return NotebookLink(str(row["pod"]), label, location, notebook_href(location, cwd))
