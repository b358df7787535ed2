#!/usr/bin/env python
"""Torch pods, cold and warm: what importing PyTorch once per worker instead of once per pod saves.

The scenario is the tests' doubling problem solved by a ``TorchModule`` (the torch backend, so
the pod's runtime imports torch and sets its threads). For each way of running it, one ``run()``
of N pods with ``jobs=1`` in a fresh store, trials interleaved:

* ``subprocess``: a cold ``python -m saibench_jupyter.pods run -`` per pod (imports torch each time);
* ``warm, no preload``: the warm executor with its torch preload switched off (the pods fork from
  NumPy's worker and import torch themselves), i.e. warm pods before torch workers existed;
* ``warm``: the default: a worker that imported torch before forking.

Printed per way (medians over trials): the first pod's latency (the ``run()`` call to its
``finished`` event, the worker's start included), the steady per-pod time (median gap between
consecutive ``finished`` events), and the run's wall / N; plus ``import torch`` alone in a fresh
interpreter. Run ``python benchmarks/warm_torch.py`` (``--pods N``, ``--trials T``).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import machine_line

from saibench_jupyter import Repository, discover
from saibench_jupyter.pods import _forksafe, run

ROOT = Path(__file__).resolve().parents[1]
TORCH_MODEL = '''
import torch
from saibench_jupyter.sail import *

class Twice(torch.nn.Module):
    def forward(self, x):
        return x * 2.0

@ModelDefinition
def TorchTwice(task, inputType, outputType):
    if task != Solve: Fail("solves only")
    return TorchModule(Twice())

@SoftwareDefinition
def Torch(hardware):
    return Environment(backend="torch", pip=["torch"])
'''
WAYS = ("subprocess", "warm, no preload", "warm")


def scenario() -> tuple[Any, Repository]:
    sys.path.insert(0, str(ROOT / "tests"))
    helpers = importlib.import_module("pods_helpers")
    helpers.write_data(Path.cwd())
    repo = Repository()
    repo.load(helpers.DOUBLING)
    repo.add_source(TORCH_MODEL, origin="<torch model>")
    (found,) = discover(repo, model="TorchTwice").scenarios
    return found, repo


def one_run(found: Any, way: str, n: int, store: str) -> tuple[float, list[float]]:
    """The run's wall and each pod's finish time from the ``run()`` call."""
    finished: list[float] = []
    bad: list[dict[str, Any]] = []
    saved = dict(_forksafe.PRELOADS)
    if way == "warm, no preload":
        _forksafe.PRELOADS = {}  # type: ignore[misc]
    t0 = time.perf_counter()

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "finished" and event.get("status") == "ok":
            finished.append(time.perf_counter() - t0)
        elif event.get("event") in ("failed", "finished"):
            bad.append(event)

    try:
        run(found, executor="subprocess" if way == "subprocess" else "warm", jobs=1, store=store, repeats=n,
            rerun=True, progress=progress)
    finally:
        _forksafe.PRELOADS = saved  # type: ignore[misc]
    if bad or len(finished) != n:
        raise SystemExit(f"{way}: {len(finished)} of {n} pods ok: {bad[:1]}")
    return time.perf_counter() - t0, finished


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=5, help="N, pods per run() (default 5)")
    ap.add_argument("--trials", type=int, default=3, help="run()s per way (default 3)")
    args = ap.parse_args(argv)
    n = max(args.pods, 2)
    med = statistics.median
    with tempfile.TemporaryDirectory(prefix="saibench-torch-bench-") as tmp:
        os.chdir(tmp)
        found, keep = scenario()
        runs: dict[str, list[tuple[float, list[float]]]] = {w: [] for w in WAYS}
        imports = []
        for trial in range(args.trials):
            for way in WAYS:
                runs[way].append(one_run(found, way, n, f"{trial}.db"))
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            imports.append(time.perf_counter() - t0)
            print(f"  trial {trial + 1}: " + ", ".join(f"{w} {runs[w][-1][0]:.2f} s" for w in WAYS), flush=True)
        del keep
        os.chdir(ROOT)
    print(f"\ntorch pods: N={n} pods per run(), jobs=1, {args.trials} trials, medians")
    print(machine_line())
    print(f"* `python -c 'import torch'` in a fresh interpreter: {med(imports):.2f} s\n")
    print("| way | first pod (run() call to its `finished`) | steady per pod | wall / N |")
    print("|---|--:|--:|--:|")
    for way in WAYS:
        first = med([f[0] for _, f in runs[way]])
        steady = med([med([b - a for a, b in itertools.pairwise(f)]) for _, f in runs[way]])
        per = med([w / n for w, _ in runs[way]])
        print(f"| {way} | {first * 1e3:.0f} ms | {steady * 1e3:.0f} ms | {per * 1e3:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
