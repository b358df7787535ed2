"""The dashboard in a real JupyterLab and a real Chromium: open, run all, click a lattice node, run it, see results.

Needs Debian's ``chromium`` (``apt-get install chromium``), ``playwright`` and ``jupyterlab``
(both in the ``test`` extra); Playwright's own browser download is never used. Without
Chromium the test is skipped, unless ``SAIBENCH_BROWSER_TESTS=required`` (as in CI), where
that is a failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lab_helpers import CHROMIUM, TOKEN, bench_cells, chromium_page, explained, jupyterlab, write_notebook
from pods_helpers import write_data

if TYPE_CHECKING:
    from playwright.sync_api import Page

if CHROMIUM is None and os.environ.get("SAIBENCH_BROWSER_TESTS") != "required":
    pytest.skip("no chromium on PATH (apt-get install chromium)", allow_module_level=True)
if CHROMIUM is None:
    pytest.fail("SAIBENCH_BROWSER_TESTS=required but there is no chromium on PATH", pytrace=False)

#: Generous: a cold kernel, Plotly's JavaScript and two cores shared with other work.
SLOW = 180_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab server on loopback serving a folder with the dashboard notebook; yields its URL."""
    folder = tmp_path_factory.mktemp("lab")
    write_data(folder)
    cells = [*bench_cells("'ok', 'slow'"),
             "board = %sail dashboard --executor inline --jobs 1\nboard.tabs.selected_index = 1  # Lattice\nboard"]
    write_notebook(folder / "dashboard.ipynb", cells)
    with jupyterlab(folder) as url:
        yield url


@pytest.fixture
def page(lab: str) -> Iterator[Page]:
    with chromium_page() as page:
        yield page


def _explained(page: Page, tmp_path: Path) -> contextlib.AbstractContextManager[None]:
    """On failure, show what the notebook said (and keep a screenshot)."""
    return explained(page, tmp_path, [("the notebook", ".jp-Notebook", 4000)])


def _click_slice(page: Page, text: str) -> None:
    # A sunburst ring's centre point belongs to the inner rings: click where its label is drawn.
    label = page.locator(".js-plotly-plot g.slice", has_text=text).first.locator("text")
    label.scroll_into_view_if_needed()
    box = label.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_select_a_lattice_node_run_it_and_see_the_pods_and_the_chart(lab: str, page: Page, tmp_path: Path) -> None:
    with _explained(page, tmp_path):
        page.goto(f"{lab}/lab/tree/dashboard.ipynb?token={TOKEN}")
        page.wait_for_function("window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status"
                            " === 'idle'", timeout=SLOW)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # The Lattice tab: the sunburst from the Python side, drawn by plotly.js in the browser.
        page.wait_for_selector(".js-plotly-plot .sunburstlayer g.slice", timeout=SLOW)
        labels = page.locator(".js-plotly-plot .sunburstlayer g.slice text").all_text_contents()
        assert {"Doubling", "NumPy", "OneCore", "Doubler(mode='ok')", "Doubler(mode='slow')"} <= set(labels)

        # A click in the browser reaches the kernel: the node's two scenarios are selected.
        _click_slice(page, "NumPy")
        page.wait_for_selector("button:has-text('Run 2 selected'):not([disabled])", timeout=SLOW)
        # A leaf selects its one scenario.
        _click_slice(page, "mode='ok'")
        run = page.wait_for_selector("button:has-text('Run 1 selected'):not([disabled])", timeout=SLOW)
        run.click()

        # The Runs tab follows the pod live, then shows it finished.
        runs = page.locator(".widget-tab-contents > :not(.lm-mod-hidden)").filter(has_text="status")
        runs.locator("td", has_text="ok").first.wait_for(timeout=SLOW)
        assert "Doubling × Doubler(mode='ok') × NumPy × OneCore" in runs.inner_text()
        assert "slow" not in runs.inner_text()  # exactly the selected scenario ran

        # The Results tab: the work–precision chart has the run's point, the ranking table its row.
        page.locator(".lm-TabBar-tab", has_text="Results").click()
        results = page.locator(".widget-tab-contents > :not(.lm-mod-hidden)").filter(has_text="Reload results")
        results.locator(".js-plotly-plot .scatterlayer .points path").first.wait_for(timeout=SLOW)
        # The chart redraws when the results arrive: wait for its axis titles rather than read them once.
        titles = ".js-plotly-plot .g-xtitle, .js-plotly-plot .g-ytitle"
        results.locator(titles, has_text="ElapsedMilliseconds").first.wait_for(timeout=SLOW)
        results.locator(titles, has_text="Error").first.wait_for(timeout=SLOW)
        assert "Doubling × Doubler(mode='ok') × NumPy × OneCore" in results.locator("table").inner_text()
