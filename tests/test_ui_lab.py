"""The JupyterLab extension's kernel side: the ``saibench.lab`` comm's requests, replies and pushes.

Bogus messages through :class:`LabBridge` (nothing runs, nothing changes, the error says
what is wrong); real operations through a real IPython shell with the extension loaded;
and one real kernel, whose comm the test opens as JupyterLab does.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from pods_helpers import write_data
from test_ui_dashboard import PICKY
from test_ui_session import MODEL, PROBLEM, REST, SUPPORT

from saibench_jupyter.ui._lab import LabBridge
from saibench_jupyter.ui._lab_comm import lab_of
from saibench_jupyter.ui._lab_types import TARGET
from saibench_jupyter.ui._magics import notebook, unload_ipython_extension

CODE = "__import__('pathlib').Path('pwned').touch()"


@pytest.fixture
def ip(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.extension_manager.unload_extension("saibench_jupyter")  # a fresh notebook for every test
    unload_ipython_extension(shell)  # loaded without %load_ext by another test module
    shell.run_line_magic("load_ext", "saibench_jupyter")
    names = set(shell.user_ns)
    yield shell
    shell.extension_manager.unload_extension("saibench_jupyter")
    for name in set(shell.user_ns) - names:
        del shell.user_ns[name]


def cells(ip: InteractiveShell, modes: str = "'ok', 'raise'") -> None:
    """The doubling benchmark with ``Doubler`` modes, and ``Picky``, which declines every task."""
    ip.run_cell_magic("sail", "", SUPPORT)
    ip.run_cell_magic("problem", "", PROBLEM)
    ip.run_cell_magic("model", "", MODEL.format(modes=modes))
    ip.run_cell_magic("model", "", PICKY)
    for kind, text in REST.items():
        ip.run_cell_magic(kind, "", text)


@pytest.fixture
def bridge(ip):
    cells(ip)
    return LabBridge(notebook(ip), executor="inline", jobs=1)


def ok(bridge: LabBridge, op: str, rid: int = 1, **args: Any) -> Any:
    reply = bridge.handle({"id": rid, "op": op, "args": args})
    assert reply["ok"], reply
    assert reply["id"] == rid
    return reply["result"]


SCENARIO = "0123456789abcdef"
BOGUS = [
    (None, None, r"^a request is an object with id, op and args, not null: send e\.g\. \{\"id\": 1"),
    ([1, "state", {}], None, r"^a request is an object with id, op and args, not a list"),
    (CODE, None, r"^a request is an object with id, op and args, not a string"),
    ({"id": 3, "op": "state"}, 3, r"^a request takes exactly id, op, args \(missing args\)"),
    ({"id": 3, "op": "state", "args": {}, "code": CODE}, 3, r"^a request takes exactly id, op, args \(unexpected 'code'\)"),
    ({"id": "3", "op": "state", "args": {}}, None, r"^id '3' is not a whole number from 0 to 2\*\*53 - 1"),
    ({"id": -1, "op": "state", "args": {}}, None, r"^id -1 is not a whole number"),
    ({"id": 2**53, "op": "state", "args": {}}, None, r"^id 9007199254740992 is not a whole number"),
    ({"id": True, "op": "state", "args": {}}, None, r"^id True is not a whole number"),
    ({"id": 1.0, "op": "state", "args": {}}, None, r"^id 1\.0 is not a whole number"),
    ({"id": 4, "op": "exec", "args": {"code": CODE}}, 4,
     r"^op 'exec' is not an operation: use one of hello, state, discover, run, cancel, pod$"),
    ({"id": 4, "op": CODE, "args": {}}, 4, r"^op \"__import__\('pathlib'\)\.Path\('pwned'\)\.touch\(\)\" is not an operation"),
    ({"id": 4, "op": ["run"], "args": {}}, 4, r"^op \['run'\] is not an operation"),
    ({"id": 5, "op": "state", "args": []}, 5, r"^state: args is a list, not an object: send args \{\}$"),
    ({"id": 5, "op": "hello", "args": {"x": 1}}, 5, r"^hello: args takes no keys \(unexpected 'x'\): send args \{\}$"),
    ({"id": 6, "op": "run", "args": {}}, 6, r"^run: args takes exactly scenarios \(missing scenarios\): send args "
                                            r"\{\"scenarios\": \[\"<scenario id>\", \.\.\.\] or null\}$"),
    ({"id": 6, "op": "run", "args": {"scenarios": None, "executor": "subprocess"}}, 6,
     r"^run: args takes exactly scenarios \(unexpected 'executor'\)"),
    ({"id": 6, "op": "run", "args": {"scenarios": SCENARIO}}, 6,
     r"^run: scenarios is a string: give a list of scenario ids, or null for every scenario$"),
    ({"id": 6, "op": "run", "args": {"scenarios": []}}, 6, r"^run: scenarios is an empty list: select scenarios"),
    ({"id": 6, "op": "run", "args": {"scenarios": [SCENARIO]}}, 6,
     r"^run: scenarios\[0\] '0123456789abcdef' is not a scenario of the current lattice: ask for state \(or "
     r"discover\) and use its ids$"),
    ({"id": 6, "op": "run", "args": {"scenarios": [CODE]}}, 6, r"^run: scenarios\[0\] \"__import__.* is not a scenario"),
    ({"id": 6, "op": "run", "args": {"scenarios": ["Doubler"]}}, 6, r"^run: scenarios\[0\] 'Doubler' is not a scenario"),
    ({"id": 6, "op": "run", "args": {"scenarios": [7]}}, 6, r"^run: scenarios\[0\] is a number, not a scenario id"),
    ({"id": 6, "op": "run", "args": {"scenarios": ["x" * 10_000]}}, 6, r"^run: scenarios\[0\] 'x{58}… is not a"),
    ({"id": 7, "op": "cancel", "args": {"run": None}}, 7, r"^cancel: there is no run yet in this kernel: start one"),
    ({"id": 7, "op": "cancel", "args": {"run": -1}}, 7, r"^cancel: there is no run -1 in this notebook: its runs are "
                                                        r"none yet$"),
    ({"id": 7, "op": "cancel", "args": {"run": 2**80}}, 7, r"^cancel: there is no run 1208925819614629174706176 in"),
    ({"id": 7, "op": "cancel", "args": {"run": "1"}}, 7, r"^cancel: run is a string: give a run number of this "
                                                         r"notebook \(none yet\), or null for the last run$"),
    ({"id": 8, "op": "pod", "args": {"pod": CODE}}, 8, r"^pod: \"__import__.* is not a pod key: give "
                                                      r"<identity>-r<repeat> from a run's pods$"),
    ({"id": 8, "op": "pod", "args": {"pod": None}}, 8, r"^pod: pod is null, not a pod key"),
    ({"id": 8, "op": "pod", "args": {"pod": f"{SCENARIO}-r0"}}, 8,
     r"^pod: no run of this notebook and nothing in its results store has pod 0123456789abcdef-r0: give a pod key"),
]


@pytest.mark.parametrize(("data", "rid", "error"), BOGUS)
def test_a_bogus_request_gets_an_error_reply_and_changes_nothing(bridge, ip, tmp_path, data, rid, error):
    nb = bridge.notebook
    modules = [(m.name, m.digest) for m in nb.repository]
    version = nb.repository.version
    reply = bridge.handle(data)
    assert reply["ok"] is False and reply["id"] == rid
    assert re.search(error, reply["error"]), reply["error"]
    assert nb.runs == [] and nb.run_count == 0 and nb.repository.version == version
    assert [(m.name, m.digest) for m in nb.repository] == modules
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "saibench.db").exists()


def test_state_has_the_modules_with_their_docs_the_counts_and_the_tree_with_a_rejected_pair(bridge):
    assert ok(bridge, "hello") == {"protocol": 1, "version": __import__("saibench_jupyter").__version__}
    state = ok(bridge, "state", rid=2)
    assert [(m["kind"], m["name"]) for m in state["modules"]] == [
        ("problem", "Doubling"), ("model", "Doubler"), ("model", "Picky"), ("metric", "Error"), ("software", "NumPy"),
        ("hardware", "OneCore")]
    picky = state["modules"][2]
    assert picky["doc"].startswith("A model that declines every task.") and picky["origin"].startswith("<cell ")
    assert picky["line"] == 4  # the %%model line is 1, then a blank line and the decorator
    assert [s["names"] for s in state["support"]] == [["double", "np", "time"]]
    assert state["scenarios"] == 2 and state["rejections"] == 1
    assert state["runs"] == [] and state["counts"] == {"queued": 0, "running": 0, "done": 0, "failed": 0}
    [doubling] = state["tree"]
    assert doubling["problem"] == "Doubling"
    doubler, rejected = doubling["models"]
    assert doubler["model"] == "Doubler" and len(doubler["scenarios"]) == 2 and doubler["rejected"] is None
    assert rejected == {"model": "Picky", "scenarios": [], "labels": [], "rejected": "classifies only"}
    # Each scenario's label, as %sail discover prints it, in the order of the ids.
    labels = {s.id: s.label for s in bridge.notebook.lattice().scenarios}
    assert doubler["labels"] == [labels[sid] for sid in doubler["scenarios"]]
    assert sorted(doubler["labels"]) == ["Doubling × Doubler(mode='ok') × NumPy × OneCore",
                                         "Doubling × Doubler(mode='raise') × NumPy × OneCore"]
    assert ok(bridge, "discover", rid=3) == state  # nothing changed: the same state
    ids = sorted(s.id for s in bridge.notebook.lattice().scenarios)
    assert sorted(doubler["scenarios"]) == ids


def test_a_cell_that_changes_the_modules_changes_the_state(bridge, ip):
    before = ok(bridge, "state")
    ip.run_cell_magic("model", "", MODEL.format(modes="'ok', 'raise', 'nap'"))
    after = ok(bridge, "state")
    assert after["scenarios"] == 3 and before["scenarios"] == 2
    assert len(after["tree"][0]["models"][0]["scenarios"]) == 3


def test_run_selected_then_the_runs_pods_and_a_failed_pods_reason(bridge):
    tree = ok(bridge, "state")["tree"]
    chosen = tree[0]["models"][0]["scenarios"]
    assert ok(bridge, "run", scenarios=chosen) == {"run": 1}
    handle = bridge.notebook.last_run
    assert handle is not None and handle.executor.name == "inline"  # the bridge's executor
    handle.wait(60)
    state = ok(bridge, "state")
    [run] = state["runs"]
    assert run["run"] == 1 and run["status"] == "finished" and run["executor"] == "inline"
    assert sorted(p["status"] for p in run["pods"]) == ["failed", "ok"]
    assert state["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 1}
    failed = next(p for p in run["pods"] if p["status"] == "failed")
    assert failed["kind"] == "error" and failed["message"] == "RuntimeError: the solver blew up"
    assert re.fullmatch(r"[0-9a-f]{16}-r0", failed["pod"]) and "mode='raise'" in failed["label"]
    detail = ok(bridge, "pod", pod=failed["pod"])
    assert detail["status"] == "failed" and detail["kind"] == "error"
    assert detail["message"] == "RuntimeError: the solver blew up"
    assert detail["fix"] == "correct Doubler where it raised; the traceback shows how the run got there"
    assert detail["location"].startswith("<cell ") and detail["location"].endswith(", line 8")
    assert detail["traceback"].rstrip().endswith("RuntimeError: the solver blew up")
    good = next(p for p in run["pods"] if p["status"] == "ok")
    assert ok(bridge, "pod", pod=good["pod"])["kind"] is None
    # A run that ended is not cancelled: the reply says how it ended.
    assert ok(bridge, "cancel", run=None) == {"run": 1, "status": "finished"}
    # A new kernel (a new notebook, the same store) still finds the pod in the store.
    again = LabBridge(type(bridge.notebook)(user_ns={}))
    assert ok(again, "pod", pod=failed["pod"])["message"] == "RuntimeError: the solver blew up"
    # Null: every scenario; the store holds both, so nothing runs again.
    assert ok(bridge, "run", scenarios=None) == {"run": 2}
    bridge.notebook.last_run.wait(60)
    assert bridge.notebook.last_run.skipped == 2


def test_a_failure_inside_an_operation_is_an_error_reply(ip):
    bridge = LabBridge(notebook(ip), executor="inline")
    reply = bridge.handle({"id": 9, "op": "run", "args": {"scenarios": None}})
    assert reply == {"id": 9, "ok": False, "error": "nothing to run: discovery found no scenario\n  fix: %sail "
                                                    "discover shows why (every rejection with its reason); define "
                                                    "the missing modules"}
    bridge.executor = "bogus"
    cells(ip)
    reply = bridge.handle({"id": 10, "op": "run", "args": {"scenarios": None}})
    assert reply["ok"] is False and reply["error"].endswith("fix: --executor warm, subprocess or inline, dask (a "
                                                            "Dask cluster) or papermill (pods as notebooks)")
    assert notebook(ip).runs == []


def test_cancel_stops_a_run_that_is_going(ip):
    cells(ip, modes="'nap', 'a', 'b', 'c'")
    bridge = LabBridge(notebook(ip), executor="inline", jobs=1)
    started = ok(bridge, "run", scenarios=None)
    assert ok(bridge, "cancel", run=started["run"]) == {"run": 1, "status": "cancelled"}
    handle = notebook(ip).last_run
    handle.wait(60)
    assert handle.status == "cancelled"
    assert ok(bridge, "state")["runs"][0]["status"] == "cancelled"


def test_cancelled_runs_pods_that_never_started_end_cancelled_as_the_store_says(ip):
    cells(ip, modes="'nap', 'a', 'b', 'c'")
    nb = notebook(ip)
    bridge = LabBridge(nb, executor="inline", jobs=1)
    ok(bridge, "run", scenarios=None)
    ok(bridge, "cancel", run=1)
    nb.last_run.wait(60)
    [run] = ok(bridge, "state")["runs"]
    # Every planned pod is listed: the one that ran (the inline executor lets it end) and those it never started.
    assert len(run["pods"]) == 4 and run["status"] == "cancelled"
    statuses = sorted(p["status"] for p in run["pods"])
    assert statuses in (["cancelled"] * 4, ["cancelled"] * 3 + ["ok"]), statuses
    stored = nb.results().to_dataframe()
    assert {f"{row.identity}-r{row.repeat}": row.status for row in stored.itertuples()} == {
        p["pod"]: p["status"] for p in run["pods"]}


def _wait_for(test: Any, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not test() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert test()


def test_a_runs_pods_are_listed_from_the_start_queued_until_they_start(ip):
    cells(ip, modes="'ok', 'sleep'")
    nb = notebook(ip)
    bridge = LabBridge(nb, executor="subprocess", jobs=1)
    [doubler, _] = ok(bridge, "state")["tree"][0]["models"]
    ids = {label.split("'")[1]: sid for sid, label in zip(doubler["scenarios"], doubler["labels"], strict=True)}

    def pods(run: int) -> dict[str, dict[str, Any]]:
        info = next(r for r in ok(bridge, "state")["runs"] if r["run"] == run)
        return {p["label"].split("'")[1]: p for p in info["pods"]}

    # Run 1 runs the sleeping scenario; run 2 both: its sleeping pod waits for run 1's (never started here).
    ok(bridge, "run", scenarios=[ids["sleep"]])
    _wait_for(lambda: pods(1)["sleep"]["status"] == "running")
    ok(bridge, "run", scenarios=None)
    waiting = pods(2)["sleep"]
    assert waiting == {"pod": pods(1)["sleep"]["pod"], "label": "Doubling × Doubler(mode='sleep') × NumPy × OneCore",
                       "repeat": 0, "status": "queued", "kind": None, "message": None}
    assert re.fullmatch(r"[0-9a-f]{16}-r0", waiting["pod"])
    _wait_for(lambda: pods(2)["ok"]["status"] == "ok")
    state = ok(bridge, "state")
    assert [(p["label"].split("'")[1], p["status"]) for p in state["runs"][1]["pods"]] == [("ok", "ok"),
                                                                                         ("sleep", "queued")]
    assert state["counts"] == {"queued": 1, "running": 1, "done": 1, "failed": 0}
    assert ok(bridge, "pod", pod=waiting["pod"])["status"] == "queued"  # run 2's, the latest run that has it
    # Cancelled, run 2 stops waiting (its pod is cancelled), then run 1 stops its pod.
    assert ok(bridge, "cancel", run=2) == {"run": 2, "status": "cancelled"}
    nb.runs[1].wait(60)
    assert pods(2)["sleep"]["status"] == "cancelled" and pods(1)["sleep"]["status"] == "running"
    assert ok(bridge, "cancel", run=1) == {"run": 1, "status": "cancelled"}
    nb.runs[0].wait(60)
    assert pods(1)["sleep"]["status"] == "cancelled"
    assert ok(bridge, "state")["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 0}
    stored = nb.results().to_dataframe().set_index("label")["status"]
    assert stored.to_dict() == {"Doubling × Doubler(mode='ok') × NumPy × OneCore": "ok",
                                "Doubling × Doubler(mode='sleep') × NumPy × OneCore": "cancelled"}


class FakeComm:
    """What ipykernel gives a comm target: on_msg, on_close, send, close; sends are kept."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self._on_msg: Any = None
        self._lock = threading.Lock()

    def on_msg(self, callback: Any) -> None:
        self._on_msg = callback

    def on_close(self, callback: Any) -> None:
        pass

    def send(self, data: dict[str, Any]) -> None:
        with self._lock:
            self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def request(self, data: Any) -> dict[str, Any]:
        self._on_msg({"content": {"comm_id": "x", "data": data}})
        return self.sent[-1]

    def pushes(self, event: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.sent if m.get("event") == event]

    def wait_for(self, test: Any, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while not test() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert test(), self.sent


def test_load_ext_registers_the_target_and_pushes_state_runs_and_pods(ip):
    import comm

    target = comm.get_comm_manager().targets[TARGET]  # registered by %load_ext
    channel = FakeComm()
    target(channel, {"content": {"data": {}}})
    assert channel.request({"id": 1, "op": "hello", "args": {}})["result"]["protocol"] == 1
    assert channel.request({"id": 2, "op": "bogus", "args": {}})["ok"] is False
    lab = lab_of(ip)
    assert lab is not None
    lab.bridge.executor = "inline"
    cells(ip)  # run_cell_magic runs no cell: no push yet
    ip.run_cell("%%hardware\n@HardwareDefinition\ndef OneCore():\n    return Resources(cpus=2)\n")
    channel.wait_for(lambda: channel.pushes("state"))
    assert channel.pushes("state")[-1]["state"]["scenarios"] == 2
    ip.run_cell("x = 1")  # no module changed: no push
    reply = channel.request({"id": 3, "op": "run", "args": {"scenarios": None}})
    assert reply == {"id": 3, "ok": True, "result": {"run": 1}}
    notebook(ip).last_run.wait(60)
    channel.wait_for(lambda: len(channel.pushes("run")) == 2)
    assert channel.pushes("run") == [{"event": "run", "run": 1, "status": "running"},
                                     {"event": "run", "run": 1, "status": "finished"}]
    pods = channel.pushes("pods")
    assert pods and all("id" not in p and p["run"] == 1 for p in pods)
    assert pods[-1]["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 1}
    # The first push lists every pod of the run, queued, before one starts.
    assert [p["status"] for p in pods[0]["pods"]] == ["queued", "queued"]
    assert pods[0]["counts"] == {"queued": 2, "running": 0, "done": 0, "failed": 0}
    last = {p["pod"]: p["status"] for push in pods for p in push["pods"]}
    assert sorted(last.values()) == ["failed", "ok"]
    ip.run_line_magic("unload_ext", "saibench_jupyter")
    assert TARGET not in comm.get_comm_manager().targets and channel.closed


def test_a_real_kernel_answers_on_the_comm_and_pushes_from_the_run_thread(tmp_path):
    from jupyter_client.manager import start_new_kernel

    write_data(tmp_path)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    seen: list[dict[str, Any]] = []

    def until(test: Any, within: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=0.2)
            except Exception:  # queue.Empty: nothing yet
                continue
            seen.append(msg)
            if test(msg):
                return msg
        raise AssertionError(f"no such message in {[m['msg_type'] for m in seen]}")

    def execute(code: str) -> None:
        mid = kc.execute(code)
        until(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
              and m["parent_header"].get("msg_id") == mid)

    def comm_data(test: Any) -> dict[str, Any]:
        data: dict[str, Any] = until(lambda m: m["msg_type"] == "comm_msg" and test(m["content"]["data"]))["content"][
            "data"]
        return data

    def request(comm_id: str, data: dict[str, Any]) -> None:
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))

    try:
        execute("%load_ext saibench_jupyter\nfrom saibench_jupyter.ui._lab_comm import lab_of\n"
                "lab_of(get_ipython()).bridge.executor = 'inline'")
        kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": "c1", "target_name": TARGET, "data": {}}))
        request("c1", {"id": 1, "op": "hello", "args": {}})
        assert comm_data(lambda d: d.get("id") == 1)["result"]["protocol"] == 1
        request("c1", {"id": 2, "op": "run", "args": {"scenarios": [CODE]}})
        assert "is not a scenario of the current lattice" in comm_data(lambda d: d.get("id") == 2)["error"]
        for kind, text in [("sail", SUPPORT), ("problem", PROBLEM), ("model", MODEL.format(modes="'ok', 'raise'")),
                           *REST.items()]:
            execute(f"%%{kind}\n{text}")
        assert comm_data(lambda d: d.get("event") == "state" and d["state"]["scenarios"] == 2)
        request("c1", {"id": 3, "op": "run", "args": {"scenarios": None}})
        assert comm_data(lambda d: d.get("id") == 3)["result"] == {"run": 1}
        ended = comm_data(lambda d: d.get("event") == "run" and d["status"] != "running")
        assert ended == {"event": "run", "run": 1, "status": "finished"}
        pods = [m["content"]["data"] for m in seen if m["msg_type"] == "comm_msg"
                and m["content"]["data"].get("event") == "pods"]
        assert pods and pods[-1]["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 1}
        execute("%unload_ext saibench_jupyter")
        kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": "c2", "target_name": TARGET, "data": {}}))
        # Not loaded: the kernel closes the comm at once (the sidebar then offers to load SAIBench).
        until(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == "c2")
        assert Path(tmp_path, "saibench.db").exists() and not Path(tmp_path, "pwned").exists()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
