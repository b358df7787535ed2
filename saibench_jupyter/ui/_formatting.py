"""How the notebook's values show: text and HTML for module lists, discovery and results.

The ui's own values (``ModuleList``) call these from their ``__repr__`` and
``_repr_html_``; for the types the ui does not own, the extension registers
:data:`FORMATTERS` with IPython, so that a ``Lattice`` or a ``Results`` left at the end of
a cell shows as text or as folded HTML tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from ..common import doc_summary
from ._links import notebook_href

if TYPE_CHECKING:
    from ..planner import Lattice, RejectionRow
    from ..results import Results
    from ._pods import PodStatus
    from ._views import ModuleList

#: How a notebook shows the expected non-pairings that its displays only count.
EXPECTED_HINT = "%sail explain NAME lists them"


def doc_html(doc: str | None) -> str:
    """A docstring as an HTML table cell's content: its summary, unfolding to the whole text."""
    summary = escape(doc_summary(doc))
    whole = (doc or "").strip()
    if "\n\n" not in whole:
        return summary
    return (f"<details><summary>{summary}</summary>"
            f"<pre style='white-space: pre-wrap'>{escape(whole)}</pre></details>")


def module_list_text(modules: ModuleList) -> str:
    """Registered modules, one aligned row each, their summary on a line below."""
    rows = modules.rows()
    if not rows:
        return "no SAIL modules yet: define some in %%problem, %%model, ... cells, or %sail load a file"
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    # The summary goes on a line of its own: it is often longer than the rest of the row.
    return "\n".join(f"{k:<{widths[0]}}  {n:<{widths[1]}}  {p:<{widths[2]}}  {w}".rstrip()
                     + (f"\n{'':<{widths[0]}}  {s}" if s else "") for k, n, p, w, s in rows)


def module_list_html(modules: ModuleList) -> str:
    """Registered modules as a table, each docstring folded under its summary."""
    if not modules.records and not modules.support:
        return f"<p>{escape(module_list_text(modules))}</p>"
    head = "".join(f"<th>{h}</th>" for h in ("kind", "name", "parameters", "where", "what it is"))
    docs = [doc_html(r.doc) for r in modules.records] + [""] * len(modules.support)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row[:4]) + f"<td>{doc}</td></tr>"
                   for row, doc in zip(modules.rows(), docs))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def lattice_text(lattice: Lattice, limit: int = 25) -> str:
    """Scenarios and real rejections, one line each (at most ``limit`` of each), and problems without scenarios."""
    n = len(lattice.scenarios)
    rows = lattice.rejection_rows(expected=False)
    lines = [f"{lattice.headline(EXPECTED_HINT)} "
             f"({lattice.stats.tuples_considered} candidates, {lattice.stats.seconds * 1000:.0f} ms)"]
    lines += [f"  ✓ {s.label}  [{', '.join(m.name for m in s.metrics) or 'no metrics'}]  {s.id}"
              for s in lattice.scenarios[:limit]]
    lines += [f"  … and {n - limit} more scenarios"] if n > limit else []
    lines += ["  ✗ " + str(x).replace("\n", "\n  ") for x in rows[:limit]]
    lines += [f"  … and {len(rows) - limit} more rejections"] if len(rows) > limit else []
    notes = lattice.unserved()
    lines += [f"no scenario for {len(notes)} problem{'s' * (len(notes) != 1)}:"] if notes else []
    lines += [f"  {note}" for note in notes[:limit]]
    lines.append("%sail explain PROBLEM MODEL says why; %sail run [SELECTOR] runs them")
    return "\n".join(lines)


def _rows_html(rows: Sequence[RejectionRow]) -> str:
    return "".join(f"<tr><td>{escape(x.kind)} {escape(x.module)}</td><td>{escape(x.problem)}</td>"
                   f"<td>{escape(x.reason)}</td><td>{x.count}</td><td>{escape(str(x.location or ''))}</td></tr>"
                   for x in rows)


def lattice_html(lattice: Lattice, limit: int = 100) -> str:
    """A summary of discovery, then the scenarios and the rejections as folded tables.

    The summary says how many scenarios each module takes part in; the lists are folded so
    that a sweep of a hundred scenarios does not push the rest of a notebook (or a report)
    out of sight.
    """
    head = escape(f"{lattice.headline()} ({lattice.stats.tuples_considered} candidates, "
                  f"{lattice.stats.seconds * 1000:.0f} ms)")
    n = len(lattice.scenarios)
    rows = "".join(f"<tr><td>{escape(s.label)}</td><td>{escape(', '.join(m.name for m in s.metrics))}</td>"
                   f"<td><code>{s.id}</code></td></tr>" for s in lattice.scenarios[:limit])
    out = f"<p><b>Discovery</b>: {head}</p>"
    summary = ""
    for role in ("problem", "model", "software", "hardware"):
        counts = Counter(getattr(s, role) for s in lattice.scenarios)
        summary += (f"<tr><th>{role}</th><td>"
                    + ", ".join(f"{escape(name)} ({k})" for name, k in sorted(counts.items())) + "</td></tr>")
    if rows:
        more = f"<p>… and {n - limit} more</p>" if n > limit else ""
        out += (f"<table>{summary}</table><details><summary>the {n} scenario{'s' * (n != 1)}</summary>"
                f"<table><tr><th>scenario</th><th>metrics</th><th>id</th></tr>{rows}</table>{more}</details>")
    columns = "<tr><th>module</th><th>problem</th><th>why</th><th>times</th><th>where</th></tr>"
    for expected in (False, True):
        found = lattice.rejection_rows(expected=expected)
        k = len(found)
        title = (f"{k} expected non-pairing{'s' * (k != 1)} (made for other problems, backends or kinds of Test)"
                 if expected else f"{k} rejected")
        if found:
            out += (f"<details><summary>{title}</summary><table>{columns}"
                    f"{_rows_html(found[:limit])}</table></details>")
    notes = lattice.unserved()
    if notes:
        out += "<p>no scenario for:</p><ul>" + "".join(f"<li>{escape(x)}</li>" for x in notes) + "</ul>"
    return out


def results_html(results: Results, limit: int = 50) -> str | None:
    """The results' summary line and metric warnings, their scenarios and their failures as tables."""
    try:
        scenarios = results.scenarios().head(limit)
        failures = results.failures().head(limit)
        notebooks = results.artifacts("notebook").head(limit)
    except Exception:  # a display must never raise: the plain repr still shows
        return None
    out = "<p>" + "<br>".join(escape(line) for line in repr(results).splitlines()) + "</p>"
    if len(scenarios):
        # A version is a digest of the code a scenario ran, and when a run last asked for it.
        scenarios = scenarios.assign(version=[f"{v or '?'} ({t:%Y-%m-%d %H:%M})" if t == t else (v or "?")
                                              for v, t in zip(scenarios["version"], scenarios["registered"])])
        counts = [c for c in ("ok", "failed", "diverged", "cancelled", "interrupted", "running", "warnings")
                  if c in ("ok", "failed", "diverged", "running") or scenarios[c].any()]
        out += scenarios[["label", "version", *counts]].to_html(index=False)
    if len(notebooks):
        rows = "".join(f"<tr><td>{escape(str(n.label if isinstance(n.label, str) else n.identity))}</td>"
                       f"<td>{n.repeat}</td><td>{notebook_cell_html(n.location, 'open')}</td>"
                       f"<td><code>{escape(n.location)}</code></td></tr>" for n in notebooks.itertuples())
        out += (f"<details><summary>{len(notebooks)} executed notebook{'s' * (len(notebooks) != 1)} "
                "(%sail open POD opens one)</summary><table><tr><th>scenario</th><th>repeat</th><th></th>"
                f"<th>location</th></tr>{rows}</table></details>")
    if len(failures):
        failures = failures.assign(message=failures["message"].astype(str).str.split("\n").str[0])
        # Who failed and where; a field nobody filled in shows empty, never as "None".
        table = failures[["label", "repeat", "kind", "module", "location", "message", "fix"]].astype(object)
        out += "<p>failures</p>" + table.where(table.notna(), "").to_html(index=False)
    return out


def _pretty_lattice(lattice: Lattice, p: Any, cycle: bool) -> None:
    p.text(lattice_text(lattice))


FORMATTERS: dict[tuple[str, str, str], Callable[..., Any]] = {
    ("text/plain", "saibench_jupyter.planner._lattice", "Lattice"): _pretty_lattice,
    ("text/html", "saibench_jupyter.planner._lattice", "Lattice"): lattice_html,
    ("text/html", "saibench_jupyter.results._results", "Results"): results_html,
}


def notebook_cell_html(location: str | None, text: str = "notebook") -> str:
    """A link that opens an executed notebook (in JupyterLab for a local file), the location on hover; or ""."""
    if not location:
        return ""
    href = notebook_href(location)
    if href is None:  # object storage: no page to open, the location is what there is
        return f"<code>{escape(location)}</code>"
    target = ' target="_blank" rel="noopener"' if "://" in href else ""
    return f'<a href="{escape(href)}" title="{escape(location)}"{target}>{escape(text)}</a>'


def pod_row_html(pod: PodStatus) -> str:
    """One row of the Runs tab's table: scenario, repeat, status, stage, checkpoint, time, failure, notebook."""
    seconds = "" if pod.seconds is None else f"{pod.seconds:.2f} s"
    failure = f"{pod.kind}: {pod.message or ''}" if pod.status in ("failed", "interrupted") else ""
    status = f"{pod.status} {pod.warning_mark()}".rstrip()  # "ok ⚠ 1 metric failed (RMSE)"
    cells = (pod.label, pod.repeat, status, pod.stage or "", pod.checkpoint or "", seconds, failure)
    return ("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells)
            + f"<td>{notebook_cell_html(pod.notebook)}</td></tr>")


def pods_table_html(pods: Sequence[PodStatus]) -> str:
    """The Runs tab's table of a run's pods (a notebook column links each pod's executed notebook), or ""."""
    if not pods:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("scenario", "repeat", "status", "stage", "checkpoint", "time",
                                             "failure", "notebook"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(pod_row_html(p) for p in pods)}</tbody></table>"
