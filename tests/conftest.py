"""Shared fixtures: the paper's figures as SAIL sources, and a machine description."""

from __future__ import annotations

from pathlib import Path

import pytest

from saibench_jupyter import Machine, Repository

PAPER = Path(__file__).resolve().parents[1] / "saibench_jupyter" / "examples" / "paper"
LIBRARY = Path(__file__).resolve().parents[1] / "sail_modules"


def paper_source(name: str) -> str:
    """The text of one of the paper's example files (``mnist``, ``md``, ``stacks`` ...)."""
    return (PAPER / f"{name}.py").read_text()


def library(*names: str) -> Repository:
    """A repository holding the named files of ``sail_modules`` (``library("stacks", "metrics", "md")``)."""
    repo = Repository()
    for name in names:
        repo.load(LIBRARY / f"{name}.py")
    return repo


#: Fig. 5's MLP as the paper's text describes it (element-wise prediction for Fig. 7):
#: its code only accepts Classify and Enhance, so this variant adds Predict.
MLP_PREDICTS = paper_source("mnist").replace(
    "elif task == Enhance:", "elif task == Enhance or task == Predict:"
)


@pytest.fixture
def cpu_machine() -> Machine:
    """Two cores and no GPU, like the project's machines (independent of where tests run)."""
    return Machine(cpus=2, gpus=0, memory=24 * 2**30)


@pytest.fixture
def repo() -> Repository:
    """An empty repository."""
    return Repository()


def load(repo: Repository, *names: str) -> Repository:
    """Add the named paper example files to ``repo`` (origin = file name)."""
    for name in names:
        repo.add_source(paper_source(name), origin=f"{name}.py")
    return repo


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """An IPython shell with the extension freshly loaded (a new notebook), in a folder with the doubling data."""
    from IPython.core.interactiveshell import InteractiveShell
    from pods_helpers import write_data

    from saibench_jupyter.ui import load_ipython_extension, unload_ipython_extension

    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)  # the run's results store (saibench.db) goes here
    shell = InteractiveShell.instance()
    unload_ipython_extension(shell)  # a fresh notebook for every test
    load_ipython_extension(shell)
    names = set(shell.user_ns)
    yield shell
    unload_ipython_extension(shell)
    for name in set(shell.user_ns) - names:
        del shell.user_ns[name]

