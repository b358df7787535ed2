"""Shared by the pod tests: the doubling problem's sources and data in a working folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from saibench_jupyter import Repository, discover

SAIL = Path(__file__).resolve().parent / "sail"
DOUBLING = SAIL / "pods_doubling.py"


def write_data(folder: Path) -> None:
    """The inputs and expected outputs ``Doubling`` reads (4 vectors of 3)."""
    x = np.arange(12.0).reshape(4, 3)
    np.save(folder / "inputs.npy", x)
    np.save(folder / "doubled.npy", 2 * x)


#: Scenarios hold their repository weakly: keep the tests' repositories alive.
_REPOSITORIES: list[Repository] = []


def doubling(*modes: str, extra: str | None = None) -> list:
    """The doubling problem's scenarios for these ``Doubler`` modes (``extra``: one more source)."""
    repo = Repository()
    _REPOSITORIES.append(repo)
    repo.load(DOUBLING)
    if extra is not None:
        repo.add_source(extra, origin="<cell extra>")
    lattice = discover(repo, params={"Doubler.mode": list(modes or ("ok",))})
    return lattice.scenarios
