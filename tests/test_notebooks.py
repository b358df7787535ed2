"""The shipped notebooks run as a user runs them: under nbval, and headless through ``saibench quickstart``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
QUICKSTART = NOTEBOOKS / "quickstart.ipynb"
#: The case studies of sail_modules, each in its quick mode (the default of its parameters cell).
CASE_STUDIES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if p != QUICKSTART)


def _nbval(notebook: Path, folder: Path) -> None:
    # A copy in an empty folder: the notebook's results store starts empty, as on a new machine.
    shutil.copy(notebook, folder)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
                           "--rootdir", str(folder), notebook.name],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert (folder / "saibench.db").is_file()


def test_the_quickstart_passes_nbval(tmp_path):
    _nbval(QUICKSTART, tmp_path)


@pytest.mark.parametrize("name", CASE_STUDIES)
def test_a_case_study_passes_nbval_in_quick_mode(name, tmp_path):
    source = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    parameters = [c for c in source["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert parameters and "quick = True" in "".join(parameters[0]["source"])  # Papermill's -p quick False is full
    _nbval(NOTEBOOKS / name, tmp_path)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``saibench quickstart`` with its default output folder, run in a fresh git copy of this checkout.

    Returns the copy and the finished process; the report is in ``<copy>/saibench-quickstart``.
    """
    if shutil.which("git") is None:
        pytest.skip("git is needed to copy the checkout")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    copy = tmp_path_factory.mktemp("checkout")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=copy, check=True, capture_output=True)
    # python -m puts the working folder first on sys.path: the copy's package and notebook run.
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.cli", "quickstart"], cwd=copy,
                          env={**os.environ, "PYTHONPATH": str(copy)}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return copy, proc


def test_saibench_quickstart_writes_a_report_with_the_chart_and_rankings(quickstart):
    copy, proc = quickstart
    out = copy / "saibench-quickstart"
    html = (out / "quickstart.html").read_text(encoding="utf-8")
    assert proc.stdout.startswith(str(out / "quickstart.html"))
    assert "Plotly.newPlot" in html and "CriticalLoss" in html and "WallTime" in html
    assert "Dominates" in html and "Fastest" in html
    executed = json.loads((out / "quickstart.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert (out / "saibench.db").is_file()


def test_the_quickstart_report_is_small_and_shows_the_dashboard_offline(quickstart):
    out = quickstart[0] / "saibench-quickstart"
    page = out / "quickstart.html"
    html = page.read_text(encoding="utf-8")
    assert page.stat().st_size <= 3 * 2**20  # it was 20 MB: plotly.js in every widget's saved state
    assert "application/vnd.jupyter.widget-state+json" not in html and "jupyter-widgets" not in html
    # plotly.js once (packed), every chart a placeholder it draws: no copy per figure.
    assert html.count('id="saibench-plotly-js"') == 1 and "window.PlotlyConfig" not in html
    executed = json.loads((out / "quickstart.ipynb").read_text(encoding="utf-8"))
    assert "widgets" not in executed["metadata"]
    (dashboard,) = [c for c in executed["cells"] if "".join(c["source"]).strip() == "%sail dashboard"]
    (shown,) = dashboard["outputs"]
    assert "application/vnd.jupyter.widget-view+json" not in shown["data"]  # no blank widget view
    snapshot = "".join(shown["data"]["text/html"])
    assert "SAIBench dashboard" in snapshot and "6 scenarios" in snapshot and "run 1 of 1: finished" in snapshot
    assert snapshot.count('class="saibench-plotly"') == 3  # the lattice, the converters and the results
    assert "SAIBench dashboard" in html and html.count('class="saibench-plotly"') == 4  # and %sail plot


def test_the_quickstart_leaves_nothing_untracked_in_a_checkout_and_prints_no_kernel_warning(quickstart):
    copy, proc = quickstart
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=copy,
                            capture_output=True, text=True, check=True).stdout
    assert [line for line in status.splitlines() if not line.startswith("A  ")] == []
    assert "eavesdropping" not in proc.stderr, proc.stderr  # ipykernel's plain-TCP warning


def test_a_notebook_that_fails_names_the_cell_and_keeps_the_executed_copy(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text(json.dumps({
        "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": "1 / 0"}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.cli", "report", str(broken)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "cell 1 of broken.ipynb failed: ZeroDivisionError: division by zero" in proc.stderr
    assert (tmp_path / "broken-report" / "broken.ipynb").is_file()
