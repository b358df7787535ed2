#!/usr/bin/env python
"""Benchmark of registration: ``Repository.add_source`` of one source that holds N modules.

The source is generated SAIL text, a repeating group of four modules: a problem (two
``Input`` files, a one-hot label, train and test loops), two models (a ``Suggest`` grid,
a refused task, a pipeline of a couple of layers that reads a support constant) and a
metric (a loop over the test results), with a support block (an import and constants)
at the top, as a notebook's or a package's module file would have. Measured for each N
(``time.perf_counter`` and ``time.process_time``, medians over repetitions, each on a
fresh ``Repository``): the wall and CPU time of ``add_source``, and per module.

Target (2-core machine): N = 5,000 modules in ≤ 2 s (before this benchmark existed,
``add_source`` was quadratic in N: 800 modules took 2.6 s and 5,000 did not finish).

Run ``python benchmarks/add_source.py`` (writes its section of benchmarks/README.md),
``--quick`` for a CI smoke test (N = 100, 400, one repetition; no README.md unless
``--write``), ``--no-write`` to only print, ``--sizes 800 5000`` to choose N.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

from _report import README, add_write_flags, latest, write_section, writes_readme

from saibench_jupyter import Repository

SIZES = (800, 5000)
QUICK_SIZES = (100, 400)
TARGET_N = 5000
TARGET_S = 2.0

START, END = "<!-- add-source:start -->", "<!-- add-source:end -->"
INTRO = """\
## Registration: add_source of a large source

`benchmarks/add_source.py` registers one generated source of N modules (problems, models
with a couple of layers, metrics; a support block at the top) with `Repository.add_source`
on a fresh repository and reports the wall and CPU time, medians of several repetitions.
Target (2-core machine): 5,000 modules in ≤ 2 s.

```bash
python benchmarks/add_source.py            # prints the table and rewrites the section below
python benchmarks/add_source.py --no-write # prints only
python benchmarks/add_source.py --quick    # small N: a smoke test for CI
```

"""

HEAD = '''"""Generated for the add_source benchmark."""
from saibench_jupyter.sail import *
import math

LABELS = ("cat", "dog", "bird")
'''


def module_group(i: int) -> str:
    """Four modules (a problem, two models, a metric) numbered from ``i``."""
    width = 16 << (i % 4)
    return f'''

@ProblemDefinition
def Problem{i}(epochs):
    """Problem {i}: classify vectors of 8 features."""
    Suggest(epochs, 1, 5)
    x = Input("p{i}/x.npy", Tensor(8))
    y = Input("p{i}/y.npy", Scalar).OneHot(Tensor(3))
    train, test = RandomSplit([x, y], 0.8)
    for a, b in train:
        Train.Classify(a, b)
    for a, b in test:
        Test.Classify(a, b)


@ModelDefinition
def Model{i}(task, inputType, outputType, width):
    """A two-layer MLP, {width} wide by default."""
    Suggest(width, {width}, {width * 2})
    if task != Classify:
        Fail(f"Model{i} only classifies {{len(LABELS)}} labels")
    return Pipeline([Convert(inputType, Tensor), Linear(width * 2), Relu(),
                     Linear(outputType.dims), Softmax(outputType.dims), Convert(Tensor, outputType)])


@ModelDefinition(tags=("wide",))
def Wide{i}(task, inputType, outputType, width=64, dropout=0.1):
    """A wider MLP with dropout."""
    if task == Classify:
        head = Softmax(outputType.dims)
    elif task == Predict:
        head = Identity()
    else:
        Fail(f"Wide{i} cannot solve {{task}}")
    layers = [Convert(inputType, Tensor), Linear(width), Tanh(), Dropout(dropout)]
    layers.append(Linear(outputType.dims))
    return Pipeline(layers + [head, Convert(Tensor, outputType)])


@MetricDefinition(axis="precision", better="lower")
def Error{i}():
    total = 0.0
    for (_, y0, y) in Test.Classify:
        total = total + L2Error(y0, y)
    return math.sqrt(total / len(Test.Classify))
'''


def source(n: int) -> str:
    """A source of ``n`` modules (``n`` a multiple of 4; rounded up otherwise)."""
    return HEAD + "".join(module_group(i) for i in range(0, n, 4))


def measure(text: str, repeat: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of ``add_source(text)`` on fresh repositories, and the module count."""
    walls, cpus = [], []
    count = 0
    for r in range(repeat):
        gc.collect()  # each repetition starts from the same heap, not the last one's garbage
        repo = Repository()
        w, c = time.perf_counter(), time.process_time()
        count = len(repo.add_source(text, origin=f"generated-{r}.py"))
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls, cpus, count


def fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 100, 400, one repetition (CI smoke test); "
                    "does not write README.md unless --write is given")
    add_write_flags(ap)
    ap.add_argument("--sizes", type=int, nargs="+", help=f"module counts (default {' '.join(map(str, SIZES))})")
    ap.add_argument("--repeat", type=int, default=5, help="repetitions per size (1 with --quick)")
    args = ap.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    repeat = 1 if args.quick else args.repeat

    rows = []
    for n in sizes:
        text = source(n)
        walls, cpus, count = measure(text, repeat)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        target = f"≤ {TARGET_S:g} s" if count == TARGET_N else ""
        verdict = ("✓" if wall <= TARGET_S else "✗") if target else ""
        rows.append(f"| {count:,} | {len(text):,} | {fmt_s(wall)} (min {fmt_s(min(walls))}, max {fmt_s(max(walls))}) "
                    f"| {fmt_s(cpu)} | {wall / count * 1e6:,.0f} µs | {target} | {verdict} |")
        print(f"  {count:,} modules: {fmt_s(wall)} wall, {fmt_s(cpu)} CPU (median of {repeat})", flush=True)
    table = "\n".join([
        "| modules | characters | add_source, wall (median; min, max) | CPU (median) | wall per module | target |  |",
        "|--:|--:|---|--:|--:|---|:-:|",
        *rows,
    ])
    print()
    print(table)

    if not writes_readme(args):
        return 0
    command = "python benchmarks/add_source.py" + (" --quick" if args.quick else "") + (
        f" --sizes {' '.join(map(str, sizes))}" if args.sizes else "") + (
        f" --repeat {args.repeat}" if args.repeat != 5 and not args.quick else "")
    section = "\n".join([
        START,
        *latest(command),
        f"* {repeat} repetition(s) per size, each on a fresh `Repository`",
        "",
        table,
        END,
    ])
    write_section(START, END, section, INTRO)
    print(f"\nwrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
