"""The ``saibench`` command: discover and run scenarios from SAIL modules, and run notebooks headless."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .common import assignment
from .planner import Lattice, discover
from .pods import DEFAULT_EXECUTOR
from .repository import Repository
from .sail import SailError, start_probe
from .ui import add_executor_options, executor_options, hide_secrets

EXAMPLES = "saibench_jupyter.examples.paper"


def _param(text: str) -> tuple[str, Any]:
    param = assignment(text)
    if param is None:
        raise argparse.ArgumentTypeError(f"--param {text!r}: write NAME=VALUE, e.g. MLP.hiddenSize=128")
    return param


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saibench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("discover", help="find every scenario the modules form, and why others don't fit")
    d.add_argument("paths", nargs="*", default=[EXAMPLES],
                   help=f"SAIL files, folders or packages (default: the paper's examples, {EXAMPLES})")
    _filters(d)
    d.add_argument("--explain", nargs="+", metavar="NAME",
                   help="explain these modules (problem first, then model, ...): --explain MNIST MLP")
    d.add_argument("--tree", action="store_true", help="print the search tree with rejected branches")
    d.add_argument("--json", action="store_true", help="print scenarios and rejections as JSON")
    d.add_argument("--all", action="store_true",
                   help="also list the expected non-pairings (modules made for other problems, backends, "
                        "kinds of Test ...), which are only counted otherwise")
    r = sub.add_parser("run", help="run the discovered scenarios as BenchPods and store the results")
    r.add_argument("paths", nargs="*", default=[EXAMPLES], help="SAIL files, folders or packages")
    _filters(r)
    r.add_argument("--executor", default=DEFAULT_EXECUTOR,
                   help="warm (default), subprocess, dask, papermill (each pod runs as a notebook, which is kept) "
                        "or inline")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask or papermill: the Dask scheduler (tcp://HOST:8786, tls://...); "
                        "an embedded cluster on 127.0.0.1 by default")
    r.add_argument("--jobs", type=int, help="pods at once (default: the usable CPUs)")
    r.add_argument("--store", default="saibench.db", help="the SQLite results store (default: saibench.db)")
    r.add_argument("--timeout", type=float, default=600.0, help="seconds per pod (default: 600)")
    r.add_argument("--repeats", type=int, default=1, help="independent pods per scenario")
    r.add_argument("--rerun", nargs="?", const=True, default=False, choices=[True, "failed"], type=_rerun,
                   help="run again what the store holds (all, or 'failed')")
    add_executor_options(r)
    q = sub.add_parser("quickstart", help="run the quickstart notebook headless and write an HTML report")
    q.add_argument("--out", default="saibench-quickstart",
                   help="folder for the report, the executed notebook and the results store "
                        "(default: saibench-quickstart)")
    n = sub.add_parser("report", help="run a notebook headless (Papermill) and write it as HTML")
    n.add_argument("notebook", help="the .ipynb to run")
    n.add_argument("--out", help="folder for the outputs (default: <notebook name>-report)")
    e = sub.add_parser("export", help="copy a results store into one self-contained file (no -wal beside it)")
    e.add_argument("db", help="the results store (saibench.db)")
    e.add_argument("path", help="the copy's file")
    e.add_argument("--force", action="store_true", help="replace a file already at PATH")
    return parser


def _export(db: str, path: str, force: bool) -> int:
    from .results import Results, StoreError

    try:
        target = Results(db, versions="all").export(path, overwrite=force)
    except StoreError as exc:
        print(f"saibench: {exc}", file=sys.stderr)
        return 1
    print(f"{target}\n  a copy of {db} that needs no other file: Results({str(target)!r}) reads it")
    return 0


def _report(notebook: str | None, out: str) -> int:
    from .ui import ReportError, quickstart, report

    try:
        done = report(notebook or quickstart(), out, log=lambda line: print(f"saibench: {line}", file=sys.stderr))
    except (ReportError, FileNotFoundError) as exc:
        print(f"saibench: {exc}", file=sys.stderr)
        return 1
    print(f"{done.html}\n  open it in a browser; the executed notebook is {done.notebook}")
    return 0


def _rerun(text: str) -> bool | str:
    return "failed" if text == "failed" else True


def _filters(p: argparse.ArgumentParser) -> None:
    for kind in ("problem", "model", "software", "hardware", "metric", "ranking"):
        p.add_argument(f"--{kind}", action="append", metavar="NAME", help=f"only these {kind} modules")
    p.add_argument("--param", action="append", type=_param, default=[], metavar="NAME=VALUE",
                   help="bind a parameter: MLP.hiddenSize=128, epochs=5, or a list for a grid")


def _explain_names(lattice: Lattice, names: Sequence[str]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for name in names:
        for s in lattice.scenarios:
            role = next((r for r, have in s.names().items() if name in have), None)
            if role:
                break
        else:
            role = next((r.kind for r in lattice.rejections if r.name == name), "problem")
        roles[role] = name
    return roles


def _as_json(lattice: Lattice) -> str:
    return json.dumps({
        "scenarios": [{"id": s.id, "problem": s.problem, "model": s.model, "software": s.software,
                       "hardware": s.hardware, "submodels": s.submodels, "params": s.params,
                       "metrics": [m.name for m in s.metrics], "rankings": [r.name for r in s.rankings],
                       "converters": [c.label for c in s.converters]} for s in lattice.scenarios],
        "rejections": [{"kind": r.kind, "module": r.module, "reason": r.reason, "context": dict(r.context),
                        "location": str(r.location) if r.location else None, "details": list(r.details),
                        "expected": r.expected} for r in lattice.rejections],
        "stats": {"candidates": lattice.stats.candidates, "seconds": lattice.stats.seconds},
    }, indent=2, default=repr)


def _summary(lattice: Lattice, show_all: bool = False) -> str:
    """Scenarios, real rejections, expected non-pairings (with ``--all``), and problems left without scenarios."""
    lines = [f"{lattice.headline('' if show_all else '--all shows them')} "
             f"({lattice.stats.tuples_considered} candidate tuples, {lattice.stats.seconds * 1000:.0f} ms)"]
    lines += [f"  ✓ {s.label}  [{', '.join(m.name for m in s.metrics)}]  {s.id}" for s in lattice.scenarios]
    lines += ["  ✗ " + str(r).replace("\n", "\n  ") for r in lattice.rejection_rows(expected=False)]
    if show_all and lattice.rejection_rows(expected=True):
        lines.append("expected non-pairings (modules made for other problems, backends or kinds of Test):")
        lines += ["  · " + str(r).replace("\n", "\n  ") for r in lattice.rejection_rows(expected=True)]
    notes = lattice.unserved()
    if notes:
        lines.append(f"no scenario for {len(notes)} problem{'s' * (len(notes) != 1)}:")
        lines += [f"  {note}" for note in notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``saibench`` command; return its exit status."""
    args = _parser().parse_args(argv)
    if args.command == "quickstart":
        return _report(None, args.out)
    if args.command == "report":
        return _report(args.notebook, args.out or f"{args.notebook.removesuffix('.ipynb')}-report")
    if args.command == "export":
        return _export(args.db, args.path, args.force)
    start_probe()  # discovery's dry runs need it: it starts while the sources load
    executor = None
    if args.command == "run":
        from .pods import make_executor

        options = executor_options(args)
        try:
            executor = make_executor(args.executor, args.jobs, scheduler=args.scheduler, options=options)
        except (KeyError, ValueError) as exc:
            print(f"saibench: {hide_secrets(str(exc.args[0] if exc.args else exc), options)}", file=sys.stderr)
            return 2
        executor.prepare()  # a warm worker starts while discovery runs
    machine = None
    if executor is not None and executor.remote:
        from .pods import ClusterError, cluster_machine

        try:  # discovery checks hardware against what a worker of the cluster offers, not this machine
            machine = cluster_machine(args.scheduler, executor.jobs)
        except ClusterError as exc:
            print(f"saibench: {exc}", file=sys.stderr)
            return 2
    repo = Repository()
    try:
        for path in args.paths:
            repo.load(path)
        filters = {k: getattr(args, k) for k in ("problem", "model", "software", "hardware", "metric", "ranking")}
        lattice = discover(repo, params=dict(args.param), machine=machine, **filters)
    except (SailError, ValueError) as exc:
        print(f"saibench: {exc}", file=sys.stderr)
        if executor is not None:
            executor.finish()
        return 2
    if executor is not None:
        from .pods import ClusterError, run

        if machine is not None:  # hardware no worker of the cluster offers: said, not silently left out
            for rejection in lattice.rejection_rows(expected=False):
                if rejection.kind == "hardware":
                    print(f"saibench: ✗ {rejection}", file=sys.stderr)
        try:
            results = run(lattice, executor=executor, store=args.store, timeout=args.timeout,
                          repeats=args.repeats, rerun=args.rerun)
        except ClusterError as exc:
            print(f"saibench: {exc}", file=sys.stderr)
            return 2
        print(results)
        failures = results.failure_lines()  # no pandas: it would add a third of a second to every run
        for line in failures:
            print(f"  {line}")
        return 1 if failures else 0
    if args.json:
        print(_as_json(lattice))
    elif args.explain:
        print(lattice.explain(**_explain_names(lattice, args.explain)))
    elif args.tree:
        print(lattice.tree().render())
    else:
        print(_summary(lattice, args.all))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
