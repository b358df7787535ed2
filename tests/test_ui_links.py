"""Links to pods' executed notebooks: relative for a local file (JupyterLab opens it in a tab), URLs as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from saibench_jupyter.ui._formatting import pods_table_html
from saibench_jupyter.ui._links import NotebookLink, notebook_href
from saibench_jupyter.ui._pods import PodStatus


@pytest.mark.parametrize(("location", "href"), [
    ("/work/nb/runs/0123-r0.ipynb", "runs/0123-r0.ipynb"),  # below the kernel's folder
    ("/work/other/my runs/p.ipynb", "../other/my%20runs/p.ipynb"),  # elsewhere: percent-encoded, as hrefs are
    ("file:///work/nb/runs/a%20b.ipynb", "runs/a%20b.ipynb"),
    ("https://host/runs/x.ipynb", "https://host/runs/x.ipynb"),
    ("s3://bucket/runs/x.ipynb", None),  # no page a browser opens
])
def test_a_local_notebook_links_relative_to_the_kernels_folder(location: str, href: str | None) -> None:
    assert notebook_href(location, cwd="/work/nb") == href


def test_the_kernels_working_directory_is_where_links_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert notebook_href(str(tmp_path / "runs" / "p.ipynb")) == "runs/p.ipynb"


def test_a_link_shows_a_path_as_text_and_a_link_as_html() -> None:
    local = NotebookLink("0123-r1", "Doubling × Doubler", "/work/nb/runs/p.ipynb", "runs/p.ipynb")
    assert repr(local) == str(local) == "/work/nb/runs/p.ipynb"
    assert local._repr_html_() == ('<p><a href="runs/p.ipynb">Open the executed notebook of Doubling × Doubler r1</a> '
                                   "(<code>/work/nb/runs/p.ipynb</code>)</p>")
    remote = NotebookLink("0123-r0", "L", "https://host/x.ipynb", "https://host/x.ipynb")
    assert '<a href="https://host/x.ipynb" target="_blank" rel="noopener">' in remote._repr_html_()
    stored = NotebookLink("0123-r0", "L", "s3://bucket/x.ipynb", None)
    assert "<a " not in stored._repr_html_() and "<code>s3://bucket/x.ipynb</code>" in stored._repr_html_()


def test_the_runs_table_links_each_pods_notebook_once_its_artifact_came(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pod = PodStatus("0123-r0", "L").after({"event": "artifact", "kind": "notebook",
                                           "location": str(tmp_path / "runs" / "0123-r0.ipynb")})
    assert pod.status == "running" and pod.notebook == str(tmp_path / "runs" / "0123-r0.ipynb")
    assert pod.after({"event": "finished", "status": "ok", "wall_ms": 5.0}).notebook == pod.notebook
    other = PodStatus("4567-r0", "M").after({"event": "artifact", "kind": "report", "location": "/r.html"})
    table = pods_table_html([pod, other])
    assert "<th>notebook</th>" in table
    assert f'<td><a href="runs/0123-r0.ipynb" title="{tmp_path}/runs/0123-r0.ipynb">notebook</a></td></tr>' in table
    assert table.count("<a ") == 1  # a report is no notebook
    assert pods_table_html([]) == ""
