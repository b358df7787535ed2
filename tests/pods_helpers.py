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


def first_finished(db: Path, within: float) -> int:
    """Pods stored ``ok`` in ``db`` once there is one (waiting at most ``within`` seconds; 0 if none came)."""
    import sqlite3
    import time

    deadline = time.monotonic() + within
    finished = 0
    while time.monotonic() < deadline and not finished:
        time.sleep(0.1)
        if db.exists():
            with sqlite3.connect(db) as con:
                try:
                    finished = con.execute("select count(*) from pods where status = 'ok'").fetchone()[0]
                except sqlite3.OperationalError:
                    continue  # the schema is being created
    return int(finished)


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


# Support code that leaves a line in support.log each time it runs, a dataset whose loader leaves one
# in loads.log each time it loads, and a model that counts its calls in a global the support code
# made (each pod must get its own list: a shared one makes its answers wrong).
COUNTED = '''
import numpy as np
from saibench_jupyter.sail import *
from saibench_jupyter.sail import register_dataset

with open("support.log", "a") as f:
    f.write("ran\\n")
CALLS = []
VALUE = {value}
BALLAST = []

def _load():
    with open("loads.log", "a") as f:
        f.write("loaded{tag}\\n")
    BALLAST.append(np.ones({ballast} * 2**17))  # {ballast} MiB held while the data are
    x = np.full((4, 3), VALUE)
    return {{"x": list(x), "y": list(x)}}

register_dataset("counted", {{"x": Tensor(3), "y": Tensor(3)}}, _load)

def called(x):  # once per record, 4 records per pod: more calls mean another pod's list
    CALLS.append(1)
    return np.full_like(np.asarray(x, dtype=np.float64), VALUE if len(CALLS) <= 4 else -1.0)

@ProblemDefinition
def Counted{tag}():
    for x, y in zip(Input("dataset:counted/x", Tensor(3)), Input("dataset:counted/y", Tensor(3))):
        Test.Solve(x, y)

@ModelDefinition
def Counter{tag}(task, inputType, outputType, k=1):
    if task != Solve: Fail("solves only")
    return Solver(called)

@MetricDefinition
def Gap{tag}():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Solve)

@SoftwareDefinition
def NumPy{tag}(hardware):
    return Environment(backend="numpy")

@HardwareDefinition
def OneCore{tag}():
    return Resources(cpus=1)
'''


def counted(value: float = 1.0, tag: str = "", ks: tuple[int, ...] = (1, 2, 3), ballast: int = 0) -> list:
    """:data:`COUNTED`'s scenarios, one per ``Counter.k`` in ``ks`` (``tag`` names its modules apart; its data hold
    ``ballast`` MiB more)."""
    repo = Repository()
    _REPOSITORIES.append(repo)  # scenarios hold their repository weakly
    repo.add_source(COUNTED.format(value=value, tag=tag, ballast=ballast), origin=f"<cell counted{tag}>")
    return discover(repo, params={f"Counter{tag}.k": list(ks)}).scenarios
