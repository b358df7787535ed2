"""The README's example runs as written, and the main job prints what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_example_runs_and_finds_what_it_says():
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "discover(repo)" in b]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    lattice = namespace["lattice"]
    assert sorted(s.params["MLP.hiddenSize"] for s in lattice.scenarios) == [128, 256]
    assert "model=MLP: 2 scenarios" in lattice.explain(model="MLP")


def test_the_readme_run_example_runs_a_scenario(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (found,) = [b for b in blocks if "discover(repo)" in b]
    (run,) = [b for b in blocks if "run_scenario(" in b]
    namespace: dict = {}
    exec(compile(found, "README.md", "exec"), namespace)
    capsys.readouterr()
    exec(compile(run, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.ok and [p.epoch for p in result.points] == [1, 2, 3]
    assert capsys.readouterr().out.startswith("ok 3\n")


def test_saibench_discover_prints_scenarios_and_rejections():
    out = subprocess.run([sys.executable, "-m", "saibench_jupyter.cli", "discover"],
                         capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    assert re.fullmatch(r"\d+ scenarios, \d+ rejected, \d+ expected non-pairings \(hidden; --all shows them\) "
                        r"\(\d+ candidate tuples, \d+ ms\)", first)
    assert "✓ MNIST × MLP(hiddenSize=128) × PyTorch × CPU(threads=1)" in out
    assert "no scenario for 2 problems:\n  MDSimulation: " in out


def test_saibench_discover_explains_and_reports_bad_paths():
    explained = subprocess.run([sys.executable, "-m", "saibench_jupyter.cli", "discover", "--explain", "MNIST", "MLP"],
                               capture_output=True, text=True, check=True).stdout
    assert explained.startswith("problem=MNIST, model=MLP:")
    bad = subprocess.run([sys.executable, "-m", "saibench_jupyter.cli", "discover", "no/such/dir"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert "no/such/dir is not a file, a folder or an importable package" in bad.stderr


def test_the_readme_pods_example_runs_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (found,) = [b for b in blocks if "discover(repo)" in b]
    (pods,) = [b for b in blocks if "results = run(" in b]
    namespace: dict = {}
    exec(compile(found, "README.md", "exec"), namespace)
    capsys.readouterr()
    exec(compile(pods, "README.md", "exec"), namespace)
    assert capsys.readouterr().out == "Results(2 scenarios, 2 pods: 2 ok; saibench.db)\n"
    frame = namespace["frame"]
    assert sorted(set(frame.epoch)) == [1, 2] and frame.value.notna().all()
    exec(compile(pods, "README.md", "exec"), namespace)  # again: everything is in the store
    assert "0 pods to run, 2 already in the store" in capsys.readouterr().err
