"""How long the kernel takes to answer the JupyterLab sidebar's ``state`` request with 1,000 scenarios.

The notebook holds one problem and a model whose ``Suggest`` sweeps 1,000 values (1,000
scenarios), a model every problem rejects, and a finished run of 20 pods; with
``--generated`` the discovery benchmark's repository instead (20 problems × 50 models,
thousands of scenarios and rejections). It times, through :class:`LabBridge.handle`:

* the first ``state`` (discovery done already: building the tree from the lattice);
* a ``state`` once that is cached (what the sidebar's refreshes cost, target ≪ 100 ms);
* ``json.dumps`` of the reply (what the comm then sends).

Run: ``PYTHONPATH=. python benchmarks/lab_state.py [--scenarios 1000] [--generated]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from saibench_jupyter.ui._lab import LabBridge
from saibench_jupyter.ui._notebook import Notebook

PROBLEM = '''
@ProblemDefinition
def Doubling():
    for x, y in zip(Input("inputs.npy", Tensor(3)), Input("doubled.npy", Tensor(3))):
        Test.Solve(x, y)
'''
MODEL = '''
@ModelDefinition
def Scaler(task, inputType, outputType, factor):
    """Multiplies by a factor: one scenario per value of the sweep."""
    Suggest(factor, {values})
    if task != Solve: Fail("solves only")
    return Solver(lambda x: x * factor)

@ModelDefinition
def Picky(task, inputType, outputType):
    """Declines every task."""
    Fail("classifies only")
    return Solver(lambda x: x)
'''
REST = '''
@MetricDefinition
def Error():
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Solve) / len(Test.Solve)

@SoftwareDefinition
def NumPy(hardware):
    return Environment(backend="numpy", pip=["numpy"])

@HardwareDefinition
def OneCore():
    return Resources(cpus=1)
'''


def sweep(folder: Path, scenarios: int) -> Notebook:
    """A notebook whose lattice has ``scenarios`` scenarios, and a finished run of 20 of them."""
    import numpy as np

    x = np.arange(12.0).reshape(4, 3)
    np.save(folder / "inputs.npy", x)
    np.save(folder / "doubled.npy", 2 * x)
    nb = Notebook(store=folder / "saibench.db", user_ns={})
    nb.register("problem", PROBLEM)
    nb.register("model", MODEL.format(values=", ".join(str(v) for v in range(1, scenarios + 1))))
    nb.register("sail", REST)
    started = time.perf_counter()
    ids = [s.id for s in nb.lattice().scenarios[:20]]
    print(f"discovery: {(time.perf_counter() - started) * 1e3:.0f} ms (once per change of the modules)")
    nb.run(ids, executor="inline", jobs=1).wait(600)
    return nb


def generated() -> Notebook:
    """The discovery benchmark's generated repository, in a notebook."""
    sys.path.insert(0, str(Path(__file__).parent))
    from discovery_repo import build, generate

    sources, _ = generate(quick=False)
    return Notebook(repository=build(sources), user_ns={})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=1000, help="scenarios of the sweep (default 1000)")
    parser.add_argument("--generated", action="store_true", help="the discovery benchmark's repository instead")
    parser.add_argument("--repeats", type=int, default=50, help="cached state requests timed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        nb = generated() if args.generated else sweep(Path(tmp), args.scenarios)
        started = time.perf_counter()
        lattice = nb.lattice()
        if args.generated:
            print(f"discovery: {(time.perf_counter() - started) * 1e3:.0f} ms (when a cell changed the modules)")
        bridge = LabBridge(nb)
        started = time.perf_counter()
        reply = bridge.handle({"id": 0, "op": "state", "args": {}})
        first = time.perf_counter() - started
        assert reply["ok"], reply
        cached = []
        for i in range(args.repeats):
            started = time.perf_counter()
            reply = bridge.handle({"id": i + 1, "op": "state", "args": {}})
            cached.append(time.perf_counter() - started)
        started = time.perf_counter()
        text = json.dumps(reply)
        encode = time.perf_counter() - started
        state = reply["result"] if reply["ok"] else {}
        print(f"{len(lattice.scenarios)} scenarios, {state['rejections']} rejection rows, {len(state['modules'])} "
              f"modules, {sum(len(r['pods']) for r in state['runs'])} pods in {len(state['runs'])} runs")
        print(f"first state (tree built): {first * 1e3:.1f} ms")
        print(f"cached state: median {statistics.median(cached) * 1e3:.2f} ms, max {max(cached) * 1e3:.2f} ms "
              f"over {args.repeats}")
        print(f"json.dumps of the reply: {encode * 1e3:.1f} ms, {len(text) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
