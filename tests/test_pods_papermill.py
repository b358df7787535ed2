"""The papermill executor: pods as notebooks, kept and stored, their faults classified (local kernels)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import nbformat
import pytest
from pods_helpers import DOUBLING, doubling, write_data

from saibench_jupyter import Repository, discover
from saibench_jupyter.pods import make_executor, pod_notebook, run, specs_of


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Events(list):
    """A progress callback that keeps every event, and whether the pod's kernel was alive at each metric."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: dict[str, int] = {}
        self.alive_at_metric: list[bool] = []

    def __call__(self, event):
        self.append(event)
        if event.get("event") == "started":
            self.kernels[event["pod"]] = event["pid"]
        elif event.get("event") == "metric" and event["pod"] in self.kernels:
            self.alive_at_metric.append(_alive(self.kernels[event["pod"]]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stored(db: Path, sql: str) -> list:
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


def _outputs(path: str) -> dict[str, list[str]]:
    """Each code cell's first line -> the output types (or error names) it holds."""
    nb = nbformat.read(path, as_version=4)
    return {c.source.splitlines()[0]: [o.get("ename") or o.output_type for o in c.get("outputs", [])]
            for c in nb.cells if c.cell_type == "code" and c.source}


def test_the_pod_notebook_reads_like_a_notebook_of_the_users_own(workdir):
    cell = ("# %%model\n@ModelDefinition\ndef Tripler(task, inputType, outputType):\n"
            "    if task != Solve: Fail('solves only')\n    return Solver(lambda x: x * 3.0)\n")
    spec = specs_of(next(s for s in doubling("ok", extra=cell) if s.model == "Tripler"))[0]
    nb = pod_notebook(spec)
    sources = [c.source for c in nb.cells]
    assert sources[0].startswith("# Doubling × Tripler × NumPy × OneCore")
    assert nb.cells[1].metadata["tags"] == ["parameters"] and "plan = {" in sources[1]
    assert "events = False" in sources[1]
    # The user's cell comes back under its own magic, as written; the file's modules under %%sail.
    assert any(s.startswith("%%model\n@ModelDefinition\ndef Tripler(task, inputType, outputType):") for s in sources)
    assert any(s.startswith("%%sail\n# from ") and "def Doubling():" in s for s in sources)
    assert any("result = bench.run(notebook().repository)" in s for s in sources)
    assert any("plot_work_precision(result)" in s for s in sources)
    assert nb.metadata["saibench"]["pod"] == spec.pod


def test_papermill_runs_a_pod_notebook_again_anywhere(tmp_path, monkeypatch):
    # The module file's inputs lie beside it, not in the directory the notebook runs in.
    (tmp_path / "src").mkdir()
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(DOUBLING, tmp_path / "src" / "doubling.py")
    write_data(tmp_path / "src")
    monkeypatch.chdir(tmp_path / "elsewhere")
    repo = Repository()
    repo.load(tmp_path / "src" / "doubling.py")
    spec = specs_of(discover(repo).scenarios[0])[0]
    nbformat.write(pod_notebook(spec), "pod.ipynb")
    done = subprocess.run([sys.executable, "-m", "papermill", "pod.ipynb", "out.ipynb", "--no-progress-bar"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    outputs = _outputs("out.ipynb")
    assert outputs["plot_work_precision(result)"] == ["display_data"]  # the chart
    assert outputs["bench.metrics_table()"] == ["execute_result"]


def test_each_pod_runs_as_a_notebook_that_is_kept_and_stored(workdir):
    events = Events()
    results = run(doubling("ok", "raise", "exit"), executor="papermill", store=workdir / "s.db", timeout=120,
                  progress=events, executor_options={"output": str(workdir / "notebooks")})
    db = workdir / "s.db"
    statuses = dict(_stored(db, "select s.label, p.status from pods p join scenarios s using (identity)"))
    assert sorted(statuses.values()) == ["failed", "failed", "ok"]
    failures = {k: (m, loc) for k, m, loc in _stored(db, "select kind, message, location from failures")}
    assert failures["error"][0] == "RuntimeError: the solver blew up"  # the model's own failure, as it said it
    assert "pods_doubling.py" not in failures["error"][1]  # where it is in the notebook: the module's cell
    message, location = failures["kernel-died"]
    assert message.startswith("the kernel died (exit status 3) while running cell ") and "bench.run" in message
    assert location.startswith("cell ")
    notebooks = dict(_stored(db, "select identity || '-r' || repeat, location from artifacts where kind = 'notebook'"))
    assert len(notebooks) == 3 and all(Path(p).parent == workdir / "notebooks" and Path(p).exists()
                                       for p in notebooks.values())
    ok = next(p for pod, p in notebooks.items() if dict(_stored(db, "select identity || '-r' || repeat, status "
                                                                    "from pods"))[pod] == "ok")
    assert _outputs(ok)["plot_work_precision(result)"] == ["display_data"]
    # Checkpoints and metrics came while the kernel ran, not when the notebook ended.
    assert events.alive_at_metric and all(events.alive_at_metric)
    assert len(results.to_dataframe().query("status == 'ok' and metric.notna()")) > 0


def test_a_timeout_shuts_the_kernel_down_with_its_process_group_and_keeps_the_notebook(workdir):
    events = Events()
    run(doubling("sleep"), executor="papermill", store=workdir / "s.db", timeout=6, progress=events)
    [(kind, message, location)] = _stored(workdir / "s.db", "select kind, message, location from failures")
    assert kind == "timeout" and message.startswith("the pod ran past its 6 s time limit in cell ")
    assert location.startswith("cell ")
    [kernel] = events.kernels.values()
    assert not _alive(kernel)
    [(path,)] = _stored(workdir / "s.db", "select location from artifacts")
    outputs = _outputs(path)
    assert any(o == ["stream"] for line, o in outputs.items() if line.startswith("%%sail"))  # what ran is kept


def test_a_cell_that_raises_is_failed_with_the_cell_the_exception_and_the_traceback(workdir):
    spec = specs_of(doubling("ok")[0])[0]
    plan = {k: v for k, v in spec.plan.items() if k != "record"}  # the setup cell cannot make its store
    request = {"spec": {**spec.to_dict(), "plan": plan}, "python": sys.executable,
               "output": str(workdir / "out.ipynb"), "gateway": None, "kernel": None}
    done = subprocess.run([sys.executable, "-m", "saibench_jupyter.pods", "notebook", "-"], input=json.dumps(request),
                          capture_output=True, text=True, timeout=120, cwd=workdir)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0] == {**events[0], "event": "artifact", "kind": "notebook", "location": str(workdir / "out.ipynb")}
    failed = events[-1]
    assert failed["event"] == "failed" and failed["kind"] == "cell"
    assert failed["message"] == "cell 3 raised KeyError: 'record'" and failed["location"] == "cell 3"
    assert "KeyError" in failed["traceback"] and "\x1b[" not in failed["traceback"]
    assert "KeyError" in _outputs(str(workdir / "out.ipynb"))["%load_ext saibench_jupyter"]


class _Uploads(BaseHTTPRequestHandler):
    received: ClassVar[dict[str, bytes]] = {}

    def do_PUT(self) -> None:
        self.received[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_executed_notebooks_go_to_any_location_papermill_writes(workdir):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Uploads)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/runs"
    try:
        run(doubling("ok"), executor="papermill", store=workdir / "s.db", timeout=120, progress=False,
            executor_options={"output": base})
    finally:
        server.shutdown()
        server.server_close()
    [(location,)] = _stored(workdir / "s.db", "select location from artifacts")
    pod = location.rsplit("/", 1)[1]
    assert location == f"{base}/{pod}" and pod.endswith("-r0.ipynb")
    executed = nbformat.reads(_Uploads.received[f"/runs/{pod}"].decode(), as_version=4)
    assert any(o.output_type == "display_data" for c in executed.cells for o in c.get("outputs", []))


def test_notebooks_run_on_the_workers_of_a_dask_cluster(workdir):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        run(doubling("ok"), executor="papermill", scheduler=cluster, store=workdir / "s.db", timeout=120,
            progress=False)
    assert _stored(workdir / "s.db", "select status from pods") == [("ok",)]
    [(location,)] = _stored(workdir / "s.db", "select location from artifacts")
    assert Path(location).exists()


def test_options_belong_to_the_executor_that_takes_them():
    with pytest.raises(ValueError, match=r"executor 'subprocess' takes no option gateway \(it takes none\)"):
        make_executor("subprocess", 1, options={"gateway": "http://127.0.0.1:1"})
    with pytest.raises(ValueError, match=r"token= goes with gateway="):
        make_executor("papermill", 1, options={"token": "secret"})


# -- remote kernels: a token-protected Kernel Gateway on loopback -------------------------------------------------
def test_pods_run_on_a_token_protected_kernel_gateway(workdir):
    pytest.importorskip("kernel_gateway")
    from gateway_helpers import kernel_gateway

    with kernel_gateway("s3cr3t") as gateway:
        run(doubling("ok"), executor="papermill", store=workdir / "s.db", timeout=120, progress=False,
            executor_options={"gateway": gateway.url, "token": "s3cr3t"})
    assert _stored(workdir / "s.db", "select status from pods") == [("ok",)]
    assert _stored(workdir / "s.db", "select count(*) from metrics")[0][0] > 0
    [(path,)] = _stored(workdir / "s.db", "select location from artifacts")
    notebook = Path(path).read_text()
    assert "s3cr3t" not in notebook and "s3cr3t" not in (workdir / "s.db").read_bytes().decode("latin-1")


def test_a_wrong_token_stops_the_run_before_any_pod_starts(workdir):
    pytest.importorskip("kernel_gateway")
    from gateway_helpers import kernel_gateway

    from saibench_jupyter.pods import GatewayError

    with kernel_gateway("s3cr3t") as gateway:
        with pytest.raises(GatewayError, match=r"refused the token .*fix: pass the gateway's token with --token or "
                                               r"SAIBENCH_GATEWAY_TOKEN") as info:
            run(doubling("ok"), executor="papermill", store=workdir / "s.db", timeout=120, progress=False,
                executor_options={"gateway": gateway.url, "token": "wrong"})
    assert "wrong" not in str(info.value)
    assert _stored(workdir / "s.db", "select count(*) from pods") == [(0,)]  # no pod was marked started


def test_a_gateway_that_goes_away_fails_the_running_pod_and_loses_nothing_finished(workdir):
    pytest.importorskip("kernel_gateway")
    from gateway_helpers import kernel_gateway
    from pods_helpers import first_finished

    db = workdir / "s.db"
    with kernel_gateway("s3cr3t") as gateway:
        def pull_the_plug() -> None:
            first_finished(db, 120)
            gateway.stop(kill=True)

        plug = threading.Thread(target=pull_the_plug)
        plug.start()
        run(doubling("ok", "sleep"), executor="papermill", store=db, timeout=120, progress=False, jobs=2,
            executor_options={"gateway": gateway.url, "token": "s3cr3t"})
        plug.join()
    assert sorted(_stored(db, "select status from pods")) == [("failed",), ("ok",)]
    [(kind, message)] = _stored(db, "select kind, message from failures")
    assert kind == "gateway" and message.startswith(f"the kernel gateway at {gateway.url} stopped answering while cell")
    assert [Path(p).exists() for (p,) in _stored(db, "select location from artifacts")] == [True, True]


def test_cancel_stops_a_running_notebook_and_its_kernel(workdir):
    from saibench_jupyter.pods import executor_class

    executor = executor_class("papermill")(1)
    events = Events()

    def cancel_once_started(event):
        events(event)
        if event.get("event") == "started":
            threading.Timer(1.5, executor.cancel).start()  # the model is asleep in the run cell by then

    run(doubling("sleep"), executor=executor, store=workdir / "s.db", timeout=120, progress=cancel_once_started)
    assert _stored(workdir / "s.db", "select status from pods") == [("cancelled",)]
    [kernel] = events.kernels.values()
    deadline = time.monotonic() + 5
    while _alive(kernel) and time.monotonic() < deadline:  # it dies with its runner (its lifeline)
        time.sleep(0.1)
    assert not _alive(kernel)
