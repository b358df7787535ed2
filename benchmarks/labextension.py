"""The JupyterLab extension's costs in a real JupyterLab and Chromium: its share of JupyterLab's load, and a
sidebar refresh with 1,000 scenarios.

Run ``python benchmarks/labextension.py`` (writes its section of benchmarks/README.md), ``--quick`` (fewer
loads and refreshes; no README.md unless ``--write``) or ``--no-write``. Targets: the extension adds ≤ 200 ms
to JupyterLab's load; a sidebar refresh round trip takes ≤ 100 ms with 1,000 scenarios.

* Load: two servers on 127.0.0.1 (one with the extension disabled in its page config), page loads
  interleaved; each is the time from navigation to JupyterLab's ``restored`` in the page.
* Refresh: a notebook of 1,000 scenarios (the browser test's, its model with a 1,000-value ``Suggest``); the
  ``saibench:refresh`` command (a ``state`` request through the comm, the reply applied) plus the next
  animation frame, in which the sidebar draws it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _report import add_write_flags, machine_line, publish
from lab_helpers import (
    EXTENSION,
    bench_cells,
    chromium_page,
    jupyterlab,
    load_time,
    open_notebook,
    write_notebook,
)
from pods_helpers import write_data

PLUGIN = f"{EXTENSION}:plugin"
START, END = "<!-- labextension:start -->", "<!-- labextension:end -->"
INTRO = "## The JupyterLab extension (`benchmarks/labextension.py`)\n\n"
SCENARIOS = 1000
REFRESH = """async () => {
  const t = performance.now();
  await window.jupyterapp.commands.execute('saibench:refresh');
  await new Promise(resolve => requestAnimationFrame(() => resolve(null)));
  return performance.now() - t;
}"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 loads each, 5 refreshes; no README.md unless --write")
    ap.add_argument("--loads", type=int, help="page loads per server (default 9; 3 with --quick)")
    ap.add_argument("--refreshes", type=int, help="sidebar refreshes (default 30; 5 with --quick)")
    add_write_flags(ap)
    args = ap.parse_args(argv)
    loads = args.loads or (3 if args.quick else 9)
    refreshes = args.refreshes or (5 if args.quick else 30)
    with tempfile.TemporaryDirectory(prefix="saibench-labext-") as tmp:
        folder = Path(tmp)
        write_data(folder)
        modes = ", ".join(f"'m{i}'" for i in range(SCENARIOS))  # a mode the model does not know doubles
        write_notebook(folder / "many.ipynb", bench_cells(modes))
        with jupyterlab(folder) as with_it, jupyterlab(folder, disabled=[EXTENSION]) as without, \
                chromium_page() as page:
            times: dict[str, list[float]] = {"with": [], "without": []}
            for url, enabled in ((with_it, True), (without, False)):  # both warm: first loads compile and cache
                load_time(page, url)
                if page.evaluate(f"window.jupyterapp.hasPlugin('{PLUGIN}')") is not enabled:
                    raise RuntimeError(f"the extension is {'not ' if enabled else ''}loaded at {url}: the comparison "
                                       "would measure nothing")
            for _ in range(loads):
                times["with"].append(load_time(page, with_it))
                times["without"].append(load_time(page, without))
            open_notebook(page, with_it, "many.ipynb")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.evaluate("window.jupyterapp.commands.execute('saibench:open-sidebar')")
            page.locator("#saibench-sidebar [data-count='scenarios']", has_text=f"{SCENARIOS} scenarios").wait_for(
                timeout=180_000)
            page.evaluate(REFRESH)  # the first state after discovery builds the kernel's cache
            rounds = [float(page.evaluate(REFRESH)) for _ in range(refreshes)]
            size = int(page.evaluate("document.querySelectorAll('#saibench-sidebar *').length"))
    added = statistics.median(times["with"]) - statistics.median(times["without"])
    refresh = statistics.median(rounds)
    section = "\n".join([
        START, "", machine_line(), "",
        f"**Load**: {loads} page loads of `/lab` per server, interleaved, after one warm-up each: "
        f"JupyterLab restored in {statistics.median(times['with']):.0f} ms with the extension, "
        f"{statistics.median(times['without']):.0f} ms with it disabled (medians; ranges "
        f"{min(times['with']):.0f}–{max(times['with']):.0f} and {min(times['without']):.0f}–"
        f"{max(times['without']):.0f} ms): the extension adds **{added:+.0f} ms** (target ≤ 200 ms: "
        f"{'met' if added <= 200 else 'missed'}).", "",
        f"**Sidebar refresh** with {SCENARIOS:,} scenarios: `saibench:refresh` (a `state` request through the "
        f"comm, the reply applied) plus the frame that draws it, {refreshes} times: median **{refresh:.1f} ms**, "
        f"max {max(rounds):.1f} ms (target ≤ 100 ms: {'met' if refresh <= 100 else 'missed'}); the sidebar then "
        f"holds {size:,} elements (the tree shows problem → model nodes; scenario labels only when a node is opened).",
        "", "Command: `python benchmarks/labextension.py`.", "", END])
    publish(args, START, END, section, INTRO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
