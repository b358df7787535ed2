"""The SAIBench JupyterLab extension in a real JupyterLab and a real Chromium.

Through the sidebar and the command palette: Discover, Run selected, the status bar counting
up, a failed pod's reason, a node's scenarios by label, a run's pods queued from the start,
Cancel; and a kernel that has not loaded SAIBench. Needs Debian's
``chromium`` and ``playwright``; without Chromium the tests are skipped, unless
``SAIBENCH_BROWSER_TESTS=required`` (as in CI), where that is a failure. The load-time and
refresh figures are ``benchmarks/labextension.py``'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lab_helpers import CHROMIUM, bench_cells, chromium_page, explained, jupyterlab, open_notebook, write_notebook
from pods_helpers import write_data

if TYPE_CHECKING:
    from playwright.sync_api import Page

if CHROMIUM is None and os.environ.get("SAIBENCH_BROWSER_TESTS") != "required":
    pytest.skip("no chromium on PATH (apt-get install chromium)", allow_module_level=True)
if CHROMIUM is None:
    pytest.fail("SAIBENCH_BROWSER_TESTS=required but there is no chromium on PATH", pytrace=False)

#: Generous: a cold kernel and two cores shared with other work.
SLOW = 180_000
SIDEBAR = "#saibench-sidebar"
STATUS = "#saibench-status"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("lab")
    write_data(folder)
    write_notebook(folder / "bench.ipynb", bench_cells("'ok', 'raise', 'sleep'"))
    write_notebook(folder / "plain.ipynb", ["x = 1"])
    with jupyterlab(folder) as url:
        yield url


@pytest.fixture
def page(lab: str) -> Iterator[Page]:
    with chromium_page() as page:
        yield page


def _explained(page: Page, tmp_path: Path) -> contextlib.AbstractContextManager[None]:
    """On failure, show what the sidebar and the status bar said (and keep a screenshot)."""
    return explained(page, tmp_path, [("the sidebar", SIDEBAR, 3000), ("the status bar", STATUS, 3000)])


def _palette(page: Page, label: str) -> None:
    """Run a command from the command palette, as a user types it."""
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    search.wait_for(timeout=SLOW)
    search.fill(label)
    item = page.locator(".lm-CommandPalette-item", has=page.locator(".lm-CommandPalette-itemLabel",
                                                                   has_text=label)).first
    item.wait_for(timeout=SLOW)
    item.click()


def test_discover_run_selected_watch_the_status_bar_read_a_failure_and_cancel(lab: str, page: Page,
                                                                              tmp_path: Path) -> None:
    with _explained(page, tmp_path):
        open_notebook(page, lab, "bench.ipynb", SLOW)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.evaluate("window.jupyterapp.commands.execute('saibench:open-sidebar')")
        sidebar = page.locator(SIDEBAR)
        # The modules by kind, each with its docstring (or origin) on hover, and the problem → model tree.
        sidebar.locator(".saibench-problem[data-problem='Doubling']").wait_for(timeout=SLOW)
        assert sidebar.locator(".saibench-kind[data-kind='model'] .saibench-module", has_text="Doubler").count() == 1
        _palette(page, "Discover")
        sidebar.locator("[data-count='scenarios']", has_text="3 scenarios").wait_for(timeout=SLOW)
        # Select the Doubler node (its three scenarios) and run them from the sidebar.
        sidebar.locator(".saibench-model[data-model='Doubler'] > label input").click()
        sidebar.locator("[data-action='run-selected']:not([disabled])", has_text="Run selected (3)").click()
        status = page.locator(STATUS)
        # The status bar counts up as pods end: the sleeping one runs on, the others are done or failed.
        page.wait_for_function(f"/1 running · 1 done · 1 failed/.test(document.querySelector('{STATUS}')"
                               "?.textContent ?? '')", timeout=SLOW)
        assert status.inner_text().startswith("SAIBench: ")
        # A failed pod's reason, from the kernel, on a click.
        sidebar.locator(".saibench-pod[data-status='failed']").first.click()
        detail = sidebar.locator("[data-pod-detail]")
        detail.wait_for(timeout=SLOW)
        assert "RuntimeError: the solver blew up" in detail.inner_text()
        # The opened node lists its scenarios by label (less the problem), each with its id on hover.
        sidebar.locator(".saibench-model[data-model='Doubler'] [data-action='toggle-model']").click()
        scenarios = sidebar.locator(".saibench-model[data-model='Doubler'] .saibench-scenario")
        scenarios.first.wait_for(timeout=SLOW)
        assert sorted(scenarios.all_inner_texts()) == [f"Doubler(mode='{mode}') × NumPy × OneCore"
                                                       for mode in ("ok", "raise", "sleep")]
        sleeper = scenarios.filter(has_text="mode='sleep'")
        assert sleeper.get_attribute("title") == (f"Doubling × Doubler(mode='sleep') × NumPy × OneCore\n"
                                                  f"id: {sleeper.get_attribute('data-scenario')}")
        # Run the sleeping scenario alone again: its pod waits for run 1's, queued from the start.
        sidebar.locator(".saibench-model[data-model='Doubler'] > label input").click()  # unselect the node
        sleeper.locator("input").click()
        sidebar.locator("[data-action='run-selected']:not([disabled])", has_text="Run selected (1)").click()
        queued = sidebar.locator(".saibench-run[data-run='2'] .saibench-pod[data-status='queued']")
        queued.wait_for(timeout=SLOW)
        assert "Doubler(mode='sleep')" in queued.inner_text()
        page.wait_for_function(f"/1 queued · 1 running · 1 done · 1 failed/.test(document.querySelector('{STATUS}')"
                               "?.textContent ?? '')", timeout=SLOW)
        # Cancel stops the newest run going (its waiting pod is cancelled), then the sleeping pod's.
        sidebar.locator("[data-action='cancel']:not([disabled])").click()
        sidebar.locator(".saibench-run[data-run='2'][data-status='cancelled']").wait_for(timeout=SLOW)
        sidebar.locator(".saibench-run[data-run='2'] .saibench-pod[data-status='cancelled']").wait_for(timeout=SLOW)
        page.wait_for_function(f"/SAIBench: 1 running · 1 done · 1 failed/.test(document.querySelector('{STATUS}')"
                               "?.textContent ?? '')", timeout=SLOW)
        sidebar.locator("[data-action='cancel']:not([disabled])").click()
        page.wait_for_function(f"/0 running · 1 done · 1 failed/.test(document.querySelector('{STATUS}')"
                               "?.textContent ?? '')", timeout=SLOW)
        sidebar.locator(".saibench-run[data-run='1'][data-status='cancelled']").wait_for(timeout=SLOW)
        # Clicking the status bar opens the sidebar.
        page.evaluate("window.jupyterapp.shell.collapseLeft()")
        status.click()
        sidebar.wait_for(state="visible", timeout=SLOW)


def test_a_kernel_without_saibench_is_said_so_and_can_load_it(lab: str, page: Page, tmp_path: Path) -> None:
    with _explained(page, tmp_path):
        open_notebook(page, lab, "plain.ipynb", SLOW)
        page.evaluate("window.jupyterapp.commands.execute('saibench:open-sidebar')")
        sidebar = page.locator(SIDEBAR)
        sidebar.locator("[data-message='notloaded']").wait_for(timeout=SLOW)
        assert "SAIBench is not loaded in this kernel" in sidebar.inner_text()
        page.wait_for_function(f"document.querySelector('{STATUS}')?.textContent === 'SAIBench: not loaded'",
                               timeout=SLOW)
        sidebar.locator("[data-action='load']").click()
        sidebar.locator("[data-message='notloaded']").wait_for(state="detached", timeout=SLOW)
        page.wait_for_function(f"/0 running · 0 done · 0 failed/.test(document.querySelector('{STATUS}')"
                               "?.textContent ?? '')", timeout=SLOW)
