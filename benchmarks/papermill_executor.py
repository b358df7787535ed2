#!/usr/bin/env python
"""The papermill executor on this machine: extra cost per pod, kernel start, locally and through a gateway.

Three measurements, all on the tests' trivial doubling scenario (``tests/sail/pods_doubling.py``,
``Doubler(mode="ok")``) in a temporary working directory:

1. **Extra cost per pod.** N pods (``repeats``), ``jobs=1``, with ``executor="subprocess"``,
   ``"papermill"`` (a local kernel for this interpreter) and, when a Kernel Gateway can be started,
   ``"papermill"`` with ``gateway=`` and ``token=`` (a ``jupyter kernelgateway`` this script starts on
   127.0.0.1 with a token), interleaved, ``--trials`` times, a fresh store each time; medians of
   wall / N and of the steady per-pod wall (the gap between consecutive ``finished`` events).
   Target: papermill − subprocess ≤ 3 s per pod. Each notebook pod is taken apart from its events
   and the executor's hooks (as parallel.py does): ``pod_start`` → ``artifact`` (the runner's
   interpreter, its imports, the notebook written), → ``started`` (the kernel started and the
   notebook's first cells), → ``finished`` (the run), → ``pod_finish`` (the chart and metrics
   cells, the kernel's shutdown, the notebook written, the runner's exit); and from the executed
   notebooks' own Papermill timings: the kernel's start (Papermill's start → first cell), each
   kind of cell, and the kernel's shutdown (last cell's end → Papermill's end).
2. **Kernel start, local.** ``jupyter_client``'s ``KernelManager`` for a kernelspec of this
   interpreter (as the runner makes one): ``start_kernel`` + ``wait_for_ready``, and its
   ``shutdown_kernel``; and, in a fresh process, the runner's imports (``nbformat``, ``papermill``).
3. **Kernel start, through the gateway.** ``POST /api/kernels`` with the token until it answers,
   then ``kernel_info`` over the kernel's websocket until its reply, and ``DELETE``; and the
   gateway's own start until it answers.

The gateway figures need ``jupyter_kernel_gateway`` (and the pod figures through it, SAIBench's
gateway support, ``saibench_jupyter.pods._gateway``); without them they are skipped, with a line saying so.

Run ``python benchmarks/papermill_executor.py`` (writes its section of benchmarks/README.md),
``--quick`` (1 pod per executor, 1 trial; no README.md unless ``--write``), ``--no-write`` to only print.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import itertools
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import add_write_flags, latest, machine_line, publish

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- papermill:start -->", "<!-- papermill:end -->"
INTRO = """\
## The papermill executor: extra cost per pod, kernel start

`benchmarks/papermill_executor.py` runs the tests' trivial doubling scenario as N pods with the
`subprocess` executor and with `executor="papermill"` (each pod a notebook executed by Papermill on a
kernel of this interpreter), and through a Jupyter Kernel Gateway it starts on 127.0.0.1 with a token
(`gateway=`, `token=`); interleaved, a fresh store each time, medians. Target: **≤ 3 s extra per pod**.
It takes a notebook pod apart (its events, the executor's hooks, the executed notebook's own timings),
and times a kernel's start alone: locally (`KernelManager.start_kernel` + `wait_for_ready`) and
through the gateway (`POST /api/kernels`, then `kernel_info` over its websocket). Details in the
script's docstring.

```bash
python benchmarks/papermill_executor.py            # prints the tables and rewrites the section below
python benchmarks/papermill_executor.py --no-write # prints only
python benchmarks/papermill_executor.py --quick    # 1 pod per executor, 1 trial: a smoke test for CI
```

"""
IMPORTS = r"""
import json, time
t0 = time.perf_counter()
import saibench_jupyter.pods._notebook_run
t1 = time.perf_counter()
import nbformat
t2 = time.perf_counter()
import papermill, papermill.engines, nbclient
t3 = time.perf_counter()
print(json.dumps({"runner": t1 - t0, "nbformat": t2 - t1, "papermill": t3 - t2}))
"""
#: Seconds the gateway may take to answer after its start.
GATEWAY_START = 30.0
#: The executors measured, in the order each trial runs them.
LABELS = ("subprocess", "papermill", "papermill, gateway")

med = statistics.median


def ms(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if abs(s) < 10 else f"{s:.1f} s"


@dataclass
class PodRun:
    """One ``run()`` of N pods: its wall, and each pod's stamps (``time.time()``) by pod."""

    wall: float = 0.0
    stamps: dict[str, dict[str, float]] = field(default_factory=dict)  # pod -> stamp name -> time
    cells: list[dict[str, float]] = field(default_factory=list)  # each executed notebook's timings

    def span(self, a: str, b: str) -> list[float]:
        return [s[b] - s[a] for s in self.stamps.values() if a in s and b in s]

    def steady(self) -> float | None:
        """Median gap between consecutive ``finished`` events; None with a single pod."""
        done = sorted(s["finished"] for s in self.stamps.values())
        return med([b - a for a, b in itertools.pairwise(done)]) if len(done) > 1 else None


def traced(name: str, into: PodRun) -> Any:
    """Executor ``name``'s class, its pod hooks stamping ``into`` (``pod_start``, ``pod_finish``)."""
    from saibench_jupyter.pods import executor_class

    class Traced(executor_class(name)):  # type: ignore[misc]
        def pod_start(self, spec: Any) -> None:
            into.stamps.setdefault(spec.pod, {})["pod_start"] = time.time()
            super().pod_start(spec)

        def pod_finish(self, spec: Any, outcome: Any) -> None:
            super().pod_finish(spec, outcome)
            into.stamps.setdefault(spec.pod, {})["pod_finish"] = time.time()

    return Traced


def run_pods(scenario: Any, label: str, n: int, folder: Path, gateway: tuple[str, str] | None) -> PodRun:
    """``run()`` of ``n`` pods with executor ``label``, a fresh store in ``folder``; its stamps and notebooks."""
    from saibench_jupyter.pods import run

    out = PodRun()
    bad: list[dict[str, Any]] = []
    options: dict[str, Any] = {}
    notebooks = folder / "notebooks"
    if label != "subprocess":
        options["output"] = str(notebooks)
    if label == "papermill, gateway" and gateway is not None:
        options.update(gateway=gateway[0], token=gateway[1])
    executor = traced(label.split(",")[0], out)(1, **options)

    def progress(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind in ("artifact", "started", "finished"):
            out.stamps.setdefault(event["pod"], {}).setdefault(kind, time.time())
        if kind == "failed" or (kind == "finished" and event.get("status") != "ok"):
            bad.append(event)

    t0 = time.perf_counter()
    run(scenario, executor=executor, jobs=1, store=str(folder / "pods.db"), repeats=n, rerun=True,
        progress=progress)
    out.wall = time.perf_counter() - t0
    done = sum("finished" in s for s in out.stamps.values())
    if bad or done != n:
        first = bad[0] if bad else {}
        raise SystemExit(f"{label}: {done} of {n} pods finished ok; {first.get('kind')}: {first.get('message')}")
    if notebooks.is_dir():
        out.cells = [notebook_times(p) for p in sorted(notebooks.glob("*.ipynb"))]
    return out


def notebook_times(path: Path) -> dict[str, float]:
    """An executed pod notebook's own timings (Papermill's metadata): kernel start and shutdown, each cell kind."""
    nb = json.loads(path.read_text(encoding="utf-8"))

    def when(stamp: str) -> float:
        return datetime.datetime.fromisoformat(stamp).timestamp()

    meta = nb["metadata"]["papermill"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and c["metadata"].get("papermill", {}).get("start_time")]
    out = {"kernel": when(code[0]["metadata"]["papermill"]["start_time"]) - when(meta["start_time"])}
    for c in code:
        pm, src = c["metadata"]["papermill"], "".join(c["source"])
        kind = ("parameters" if {"parameters", "injected-parameters"} & set(c["metadata"].get("tags", ())) else
                "setup" if "KernelPod(" in src else "run" if "bench.run(" in src else
                "chart" if "plot_work_precision(" in src else "metrics" if "metrics_table()" in src else "modules")
        out[kind] = out.get(kind, 0.0) + float(pm["duration"] or 0.0)
    last = code[-1]["metadata"]["papermill"]
    out["shutdown"] = when(meta["end_time"]) - when(last["start_time"]) - float(last["duration"] or 0.0)
    return out


def kernel_start(folder: Path) -> tuple[float, float]:
    """A local kernel of this interpreter, as the runner makes one: start + ready, and its shutdown."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = folder / "kernels" / "saibench-bench"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "SAIBench benchmark", "language": "python"}), encoding="utf-8")
    km = KernelManager(kernel_name="saibench-bench", kernel_spec_manager=KernelSpecManager(
        kernel_dirs=[str(folder / "kernels")]))
    t0 = time.perf_counter()
    km.start_kernel(stderr=subprocess.DEVNULL)
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        ready = time.perf_counter() - t0
        kc.stop_channels()
    finally:
        t1 = time.perf_counter()
        km.shutdown_kernel()
    return ready, time.perf_counter() - t1


def imports() -> dict[str, float]:
    """The runner's imports in a fresh process (seconds each), and ``python -c pass``: one trial."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    done = subprocess.run([sys.executable, "-c", IMPORTS], check=True, capture_output=True, text=True)
    return {"interpreter": bare, **json.loads(done.stdout.strip().splitlines()[-1])}


# -- the gateway ------------------------------------------------------------------------------------
@dataclass
class Gateway:
    """A ``jupyter kernelgateway`` of this script: its URL, token, process and how long it took to answer."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    started: float

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
        try:
            with opener.open(req, timeout=60) as response:
                raw = response.read()
                return int(response.status), json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code), error.read().decode("utf-8", "replace")


def gateway_missing() -> str | None:
    """Why the gateway figures are skipped (None: they are not)."""
    if importlib.util.find_spec("kernel_gateway") is None:
        return "jupyter_kernel_gateway is not installed (`pip install jupyter_kernel_gateway`)"
    return None


@contextlib.contextmanager
def kernel_gateway(folder: Path) -> Iterator[Gateway]:
    """A Kernel Gateway on 127.0.0.1 with a fresh token, in a session of its own, ended on exit."""
    token = secrets.token_hex(16)
    # The token in the environment, not on the command line where ``ps`` shows it. The gateway's
    # kernels import this checkout's SAIBench, as the local kernels do.
    env = {**os.environ, "KG_AUTH_TOKEN": token, "JUPYTER_RUNTIME_DIR": str(folder),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = folder / "gateway.log"
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1",
             f"--KernelGatewayApp.port={port}", "--KernelGatewayApp.port_retries=0"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        gw = Gateway(f"http://127.0.0.1:{port}", token, process, 0.0)
        deadline = time.monotonic() + GATEWAY_START
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the kernel gateway did not answer within {GATEWAY_START:g} s:\n"
                                 + log.read_text(errors="replace")[-2000:])
            with contextlib.suppress(OSError):
                if gw.request("GET", "/api")[0] == 200:
                    break
            time.sleep(0.05)
        gw.started = time.perf_counter() - t0
        yield gw
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # SIGTERM: it shuts its kernels down
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


def gateway_kernel(gw: Gateway) -> tuple[float, float, float]:
    """A kernel on the gateway: ``POST /api/kernels`` until it answers, then until its ``kernel_info_reply``
    over the websocket, and its ``DELETE``."""
    t0 = time.perf_counter()
    status, model = gw.request("POST", "/api/kernels", {"name": "python3"})
    if status != 201:
        raise SystemExit(f"the gateway answered POST /api/kernels with HTTP {status}: {model!r:.300}")
    posted = time.perf_counter() - t0
    try:
        info = kernel_info(gw, str(model["id"])) + posted
    finally:
        t1 = time.perf_counter()
        gw.request("DELETE", f"/api/kernels/{model['id']}")
    return posted, info, time.perf_counter() - t1


def kernel_info(gw: Gateway, kernel: str) -> float:
    """Seconds from opening the kernel's websocket to its ``kernel_info_reply`` (Jupyter's JSON protocol)."""
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    async def ask() -> float:
        t0 = time.perf_counter()
        ws = await websocket_connect(HTTPRequest("ws" + gw.url.removeprefix("http") + f"/api/kernels/{kernel}/channels",
                                                 headers={"Authorization": f"token {gw.token}"}, request_timeout=60))
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "bench",
                  "session": uuid.uuid4().hex, "date": datetime.datetime.now(datetime.UTC).isoformat(),
                  "version": "5.3"}
        # The kernel may miss a request sent before its channels are up: ask again until it answers.
        while True:
            await ws.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": {},
                                               "channel": "shell", "buffers": []}))
            with contextlib.suppress(asyncio.TimeoutError):
                while True:
                    raw = await asyncio.wait_for(ws.read_message(), 1.0)
                    if raw is None:
                        raise SystemExit("the gateway closed the kernel's websocket")
                    msg = json.loads(raw)
                    reply = msg.get("parent_header", {}).get("msg_id") == msg_id
                    if msg.get("msg_type") == "kernel_info_reply" and reply:
                        ws.close()
                        return time.perf_counter() - t0
            if time.perf_counter() - t0 > 60:
                raise SystemExit("the gateway's kernel did not answer kernel_info within 60 s")

    return asyncio.run(ask())


def main(argv: list[str] | None = None) -> int:
    import pods

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 pod per executor, 1 trial; no README.md unless --write")
    ap.add_argument("--pods", type=int, help="N, pods per run() (default 4; 1 with --quick)")
    ap.add_argument("--trials", type=int, help="trials of each measurement (default 3; 1 with --quick)")
    add_write_flags(ap)
    args = ap.parse_args(argv)
    n = args.pods or (1 if args.quick else 4)
    trials = args.trials or (1 if args.quick else 3)
    skipped = gateway_missing()
    if skipped is None and importlib.util.find_spec("saibench_jupyter.pods._gateway") is None:
        skipped = "SAIBench's gateway support (saibench_jupyter.pods._gateway) is not there"
    runs: dict[str, list[PodRun]] = {label: [] for label in LABELS}
    starts: list[tuple[float, float]] = []
    gw_starts: list[tuple[float, float, float]] = []
    gw_up: list[float] = []
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="saibench-papermill-bench-") as tmp, contextlib.ExitStack() as stack:
        os.chdir(tmp)  # the pods' working directory, the stores, the notebooks, the scenario's data
        try:
            scenario, _keep = pods.load_scenario()
            gw = None
            if gateway_missing() is None:
                gw = stack.enter_context(kernel_gateway(Path(tmp)))
                gw_up.append(gw.started)
            print(f"papermill: {n} pod(s) per executor, {trials} trial(s), interleaved"
                  + (f"; pods through the gateway skipped: {skipped}" if skipped else f"; gateway at {gw and gw.url}"),
                  flush=True)
            for trial in range(trials):
                for label in LABELS:
                    if label.endswith("gateway") and (skipped or gw is None):
                        continue
                    folder = Path(tmp) / f"{label.replace(', ', '-')}-{trial}"
                    folder.mkdir()
                    runs[label].append(run_pods(scenario, label, n, folder, None if gw is None else (gw.url, gw.token)))
                starts.append(kernel_start(Path(tmp)))
                if gw is not None:
                    gw_starts.append(gateway_kernel(gw))
                print(f"  trial {trial + 1}: " + ", ".join(f"{label} {ms(rs[-1].wall / n)}/pod"
                                                         for label, rs in runs.items() if rs)
                      + f"; kernel start {ms(starts[-1][0])}"
                      + (f", through the gateway {ms(gw_starts[-1][1])}" if gw_starts else ""), flush=True)
        finally:
            os.chdir(cwd)
    fresh = [imports() for _ in range(trials)]
    section = report(args, n, trials, runs, starts, gw_starts, gw_up,
                     {k: med([f[k] for f in fresh]) for k in fresh[0]}, skipped)
    publish(args, START, END, section, INTRO)
    return 0


def report(args: argparse.Namespace, n: int, trials: int, runs: dict[str, list[PodRun]],
           starts: list[tuple[float, float]], gw_starts: list[tuple[float, float, float]], gw_up: list[float],
           imported: dict[str, float], skipped: str | None) -> str:
    """The README section: the cost per pod, a notebook pod taken apart, the kernel's start."""
    measured = [label for label in LABELS if runs[label]]
    per_pod = {label: med([r.wall / n for r in runs[label]]) for label in measured}
    steady = {label: med(s) if (s := [x for r in runs[label] if (x := r.steady()) is not None]) else None
              for label in measured}

    def cell(label: str, a: str, b: str) -> str:
        values = [x for r in runs[label] for x in r.span(a, b)]
        return ms(med(values)) if values else ""

    def extra(label: str, values: dict[str, Any]) -> str:
        base, value = values["subprocess"], values[label]
        return "" if label == "subprocess" or base is None or value is None else f"**{value - base:+.2f} s**"

    worst = max((per_pod[label] - per_pod["subprocess"] for label in measured if label != "subprocess"), default=0.0)
    cost = [
        f"**Extra cost per pod**: {n} pod(s) of the tests' `Doubler`, `jobs=1`, {trials} trial(s), interleaved, a "
        f"fresh store each time. Target ≤ 3 s extra per pod: {'met' if worst <= 3.0 else 'missed'} "
        f"(worst {worst:+.2f} s, wall / N)." + (f" Pods through the gateway skipped: {skipped}." if skipped else ""),
        "",
        "| executor | wall / N | extra | steady (gap between `finished`) | extra | span (`pod_start` → `pod_finish`) | "
        "→ `artifact` (runner up, notebook written) | → `started` (kernel up, first cells) | → `finished` (the run) | "
        "→ `pod_finish` (last cells, kernel shutdown, exit) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *(f"| {label} | {ms(per_pod[label])} | {extra(label, per_pod)} | "
          f"{'—' if (st := steady[label]) is None else ms(st)} | {extra(label, steady)} | "
          f"{cell(label, 'pod_start', 'pod_finish')} | {cell(label, 'pod_start', 'artifact')} | "
          f"{cell(label, 'artifact' if label != 'subprocess' else 'pod_start', 'started')} | "
          f"{cell(label, 'started', 'finished')} | {cell(label, 'finished', 'pod_finish')} |" for label in measured)]

    kinds = ("kernel", "parameters", "setup", "modules", "run", "chart", "metrics", "shutdown")
    notebooks = [label for label in measured if any(r.cells for r in runs[label])]
    names = {"kernel": "kernel start (Papermill's start → first cell)", "parameters": "parameters cells",
             "setup": "setup cell (`%load_ext`, `KernelPod`)", "modules": "module cells", "run": "run cell",
             "chart": "work–precision chart cell", "metrics": "metrics table cell",
             "shutdown": "kernel shutdown (last cell's end → Papermill's end)"}
    inside = [
        "**Inside a notebook pod** (each executed notebook's own Papermill timings, medians over pods):", "",
        "| step | " + " | ".join(notebooks) + " |", "|---|" + "--:|" * len(notebooks),
        *(f"| {names[k]} | " + " | ".join(ms(med([c.get(k, 0.0) for r in runs[label] for c in r.cells]))
                                          for label in notebooks) + " |" for k in kinds)]

    kernel = [
        f"**Kernel start** (medians of {trials}):", "",
        "| step | time |", "|---|--:|",
        f"| local kernel of this interpreter: `start_kernel` + `wait_for_ready` | {ms(med([s for s, _ in starts]))} |",
        f"| local kernel: `shutdown_kernel` (idle kernel) | {ms(med([s for _, s in starts]))} |",
        f"| fresh process: `python -c pass` | {ms(imported['interpreter'])} |",
        f"| fresh process: `import saibench_jupyter.pods._notebook_run` | {ms(imported['runner'])} |",
        f"| then `import nbformat` | {ms(imported['nbformat'])} |",
        f"| then `import papermill` (and its engines, nbclient) | {ms(imported['papermill'])} |"]
    if gw_starts:
        kernel += [
            f"| Kernel Gateway on 127.0.0.1: its start until it answers | {ms(med(gw_up))} |",
            f"| gateway: `POST /api/kernels` until it answers | {ms(med([p for p, _, _ in gw_starts]))} |",
            f"| gateway: `POST` until `kernel_info_reply` over the websocket | "
            f"{ms(med([i for _, i, _ in gw_starts]))} |",
            f"| gateway: `DELETE /api/kernels/ID` | {ms(med([d for _, _, d in gw_starts]))} |"]
    elif gateway_missing():
        kernel.append(f"| gateway | skipped: {gateway_missing()} |")

    command = "python benchmarks/papermill_executor.py" + (" --quick" if args.quick else "") + (
        f" --pods {args.pods}" if args.pods else "") + (f" --trials {args.trials}" if args.trials else "")
    load = (f"; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) when written"
            if hasattr(os, "getloadavg") else "")
    from importlib.metadata import version

    versions = ", ".join(f"{p} {version(p)}" for p in ("papermill", "nbclient", "ipykernel", "jupyter_client"))
    return "\n".join([START, *latest(command, machine_line() + load + f"; {versions}"), "", *cost, "", *inside, "",
                      *kernel, END])


if __name__ == "__main__":
    sys.exit(main())
