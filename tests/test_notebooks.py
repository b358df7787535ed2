"""The shipped notebooks run as a user runs them: under nbval, and headless through ``saibench quickstart``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
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


def test_saibench_quickstart_writes_a_report_with_the_chart_and_rankings(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.cli", "quickstart", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    html = (out / "quickstart.html").read_text(encoding="utf-8")
    assert proc.stdout.startswith(str(out / "quickstart.html"))
    assert "Plotly.newPlot" in html and "CriticalLoss" in html and "WallTime" in html
    assert "Dominates" in html and "Fastest" in html
    executed = json.loads((out / "quickstart.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert (out / "saibench.db").is_file()


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
