"""The shim as a real subprocess: ``python -m saibench_jupyter.pods run SPEC`` streams JSON-line events."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from pods_helpers import doubling, write_data

from saibench_jupyter.pods import Limits, PodSpec, SpecError, specs_of
from saibench_jupyter.pods._shim import RECORD_VARIABLE, rebuild


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def shim(spec_arg: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.pods", "run", spec_arg], input=stdin,
                          capture_output=True, text=True, timeout=120, env=env)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def logged(events: list[dict]) -> list[str]:
    """The lines of the pod's ``log`` events (a batch of lines, or one message), in order."""
    return [line for e in events if e["event"] == "log" for line in e.get("lines", [e.get("message")])]


def test_a_pod_streams_its_events_and_records_its_environment(workdir):
    (scenario,) = doubling("print")
    (spec,) = specs_of(scenario, limits=Limits(timeout=60, memory=2**30, affinity=(0,)))
    path = workdir / "pod.json"
    path.write_text(spec.to_json())
    code, events, _ = shim(str(path))
    assert code == 0
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert {"stage", "checkpoint", "metric", "log"} <= set(kinds)
    assert all(e["pod"] == spec.pod and isinstance(e["t"], float) for e in events)
    env = events[0]["environment"]
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "numpy" in env["packages"] and env["cpu"] and env["host"]
    (metric,) = [e for e in events if e["event"] == "metric"]
    assert metric["name"] == "Error" and metric["value"] == 0.0 and (metric["stage"], metric["checkpoint"]) == (1, 1)
    checkpoint = next(e for e in events if e["event"] == "checkpoint")
    assert checkpoint["counters"]["InferenceMilliseconds"] > 0
    # Module code's print became log events instead of corrupting the stream.
    assert set(logged(events)) == {"a line from module code"}
    assert events[-1]["status"] == "ok" and events[-1]["settings"]["seed"] == 0


def test_the_spec_can_come_on_stdin(workdir):
    (scenario,) = doubling("ok")
    code, events, _ = shim("-", stdin=specs_of(scenario, seed=7)[0].to_json())
    assert code == 0 and events[-1]["event"] == "finished" and events[-1]["settings"]["seed"] == 7


def test_a_module_error_is_a_failed_event_with_its_location(workdir):
    (scenario,) = doubling("raise")
    code, events, _ = shim("-", stdin=specs_of(scenario)[0].to_json())
    assert code == 1
    failed = events[-1]
    assert failed["event"] == "failed" and failed["kind"] == "error"
    assert failed["message"] == "RuntimeError: the solver blew up"
    assert failed["location"].endswith("pods_doubling.py, line 13") and failed["stage"] == 1


LOOKUP = textwrap.dedent("""
    from saibench_jupyter.sail import *


    class Lookup:
        def __call__(self, x):
            table = [1.0, 2.0]
            return x * table[len(x)]


    @ModelDefinition
    def Looker(task, inputType, outputType):
        if task != Solve: Fail("solves only")
        return Solver(Lookup())
""")


def test_a_model_error_names_the_model_and_its_line_and_brings_the_traceback(workdir):
    (scenario,) = [s for s in doubling("ok", extra=LOOKUP) if s.model == "Looker"]
    code, events, _ = shim("-", stdin=specs_of(scenario)[0].to_json())
    failed = events[-1]
    assert code == 1 and failed["event"] == "failed" and failed["kind"] == "error"
    # The model's own line (in its cell), not the problem's Test line that called it.
    assert failed["module"] == "Looker" and failed["location"] == "<cell extra>, line 8"
    assert failed["message"] == "IndexError: list index out of range"
    assert 'File "<sail <cell extra>>", line 8, in __call__' in failed["traceback"]
    assert "return x * table[len(x)]" in failed["traceback"]
    assert failed["fix"] == "correct Looker where it raised; the traceback shows how the run got there"


def test_a_bad_spec_is_reported_as_an_event_not_a_traceback(workdir):
    code, events, stderr = shim('{"saibench_pod": 99}')
    assert code == 2 and "Traceback" not in stderr
    (failed,) = events
    assert failed["event"] == "failed" and failed["kind"] == "spec"
    assert "spec format 99" in failed["message"]


@pytest.mark.parametrize("text, message", [
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "its JSON is nested too deeply to read"),
    ("[" * 100_000 + "]" * 100_000, "its JSON is nested too deeply to read"),
    ('{"saibench_pod": 1, "label": "caf\xe9"}', "is not UTF-8 text"),
], ids=["deep-object", "deep-list", "latin-1"])
def test_a_spec_file_json_cannot_read_still_ends_in_a_failed_event(tmp_path, text, message):
    path = tmp_path / "pod.json"
    path.write_bytes(text.encode("latin-1"))
    code, events, stderr = shim(str(path))
    assert code == 2 and "Traceback" not in stderr
    (failed,) = events
    assert failed["event"] == "failed" and failed["kind"] == "spec"
    assert message in failed["message"] and "Fix: give a spec written by specs_of(...)" in failed["message"]


def tampered(spec_json: str, old: str = "Solver(lambda x: behave", new: str = "Solver(lambda x: 3 * behave") -> dict:
    """The spec with its source edited (by default Doubler's result times 3) and its sha256 made to match:
    only the plan's digests still say what was planned."""
    data = json.loads(spec_json)
    ((_, text),) = data["texts"].items()
    edited = text.replace(old, new)
    assert edited != text
    new = hashlib.sha256(edited.encode()).hexdigest()
    data["texts"] = {new: edited}
    data["sources"][0]["digest"] = new
    return data


def test_a_spec_whose_sources_are_not_what_was_planned_is_refused(workdir):
    (scenario,) = doubling("ok")
    (spec,) = specs_of(scenario)
    planned = scenario.repository.get("Doubler").digest
    data = tampered(spec.to_json())
    with pytest.raises(SpecError, match=rf"^Doubling × Doubler\(mode='ok'\) × NumPy × OneCore: module Doubler differs "
                                        rf"from the plan's: the plan was made with digest {planned}, the sources give "
                                        rf"digest [0-9a-f]+\. Fix: re-plan the run \(discover again"):
        rebuild(PodSpec.from_dict(data))
    code, events, _ = shim("-", stdin=json.dumps(data))
    assert code == 1
    failed = events[-1]
    assert failed["event"] == "failed" and failed["kind"] == "spec"
    assert f"module Doubler differs from the plan's: the plan was made with digest {planned}" in failed["message"]
    assert failed["fix"].startswith("re-plan the run")
    # Support code (which every module sees) is checked too.
    support = tampered(spec.to_json(), "* 2.0", "* 3.0")
    with pytest.raises(SpecError, match=r"the support code of .*pods_doubling\.py differs from the plan's: the plan "
                                        r"was made with support digest [0-9a-f]+, the sources give [0-9a-f]+\. "
                                        r"Fix: re-plan the run"):
        rebuild(PodSpec.from_dict(support))


#: Run as ``python -m saibench_jupyter.pods run -`` is, with the discovery machinery made unimportable:
#: a pod that discovered (or imported discovery) would fail.
NO_DISCOVERY = textwrap.dedent("""
    import importlib.abc, runpy, sys

    BLOCKED = {"saibench_jupyter.planner._discover", "saibench_jupyter.planner._lattice",
               "saibench_jupyter.planner._models", "saibench_jupyter.planner._blocks",
               "saibench_jupyter.planner._rejections", "saibench_jupyter.planner._machine",
               "saibench_jupyter.planner._algorithm", "saibench_jupyter.planner._memo"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name in BLOCKED:
                raise ImportError(f"a pod imported {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    sys.argv = ["saibench_jupyter.pods", "run", "-"]
    runpy.run_module("saibench_jupyter.pods", run_name="__main__", alter_sys=True)
""")


def test_a_pod_runs_its_plan_and_never_discovers(workdir):
    (scenario,) = doubling("ok")
    proc = subprocess.run([sys.executable, "-c", NO_DISCOVERY], input=specs_of(scenario)[0].to_json(),
                          capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, (events[-1:], proc.stderr[-2000:])
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "ok"
    metric = next(e for e in events if e["event"] == "metric")
    assert metric["name"] == "Error" and metric["value"] == 0.0


def test_usage_is_explained():
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.pods"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage: python -m saibench_jupyter.pods run SPEC" in proc.stderr


def test_a_pod_uses_the_environment_record_an_executor_hands_it_only_for_its_own_interpreter(workdir):
    (scenario,) = doubling("ok")
    spec = specs_of(scenario)[0].to_json()
    handed = {"python": "3.x", "executable": sys.executable, "packages": {"numpy": "0.0+handed"}, "cpu": "c",
              "gpu": "stale", "host": "h", "platform": "p"}
    env = {**os.environ, RECORD_VARIABLE: json.dumps(handed)}
    code, events, _ = shim("-", stdin=spec, env=env)
    assert code == 0
    record = events[0]["environment"]
    assert record["packages"] == {"numpy": "0.0+handed"} and record["host"] == "h"
    assert record["gpu"] != "stale"  # the GPUs are looked up by each pod: they depend on CUDA_VISIBLE_DEVICES

    # A record made for another interpreter is ignored: the pod looks everything up itself.
    env[RECORD_VARIABLE] = json.dumps({**handed, "executable": "/elsewhere/bin/python"})
    code, events, _ = shim("-", stdin=spec, env=env)
    assert code == 0 and events[0]["environment"]["packages"]["numpy"] == np.__version__


def test_the_warm_worker_serves_pods_and_lets_a_pod_report_what_it_could_not_rebuild(workdir):
    (scenario,) = doubling("ok")
    good = specs_of(scenario, repeats=2)
    bad = tampered(good[0].to_json())  # the worker can't bind its plan either: the pod says why
    bad["repeat"], bad["pod"] = 7, f"{bad['identity']}-r7"
    requests = [{"spec": json.loads(s.to_json()), "stderr": str(workdir / f"{i}.err")} for i, s in enumerate(good)]
    requests.append({"spec": bad, "stderr": str(workdir / "bad.err")})
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.pods", "serve"],
                          input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["event"] == "ready"
    final = {e["pod"]: e for e in events if e["event"] in ("finished", "failed")}
    assert [final[s.pod]["status"] for s in good] == ["ok", "ok"]
    assert final[bad["pod"]]["kind"] == "spec"
    assert "module Doubler differs from the plan's" in final[bad["pod"]]["message"]
    assert sorted(e["returncode"] for e in events if e["event"] == "exited") == [0, 0, 1]


WITNESS = '''
@MetricDefinition
def Witness():
    import os
    with open("dry-runs.txt", "a") as f:  # which process ran this module's code, and its parent
        f.write(f"{os.getpid()} {os.getppid()}\\n")
    return sum(L2Error(y0, y) for (_, y0, y) in Test.Solve) / len(Test.Solve)
'''


def test_a_pod_runs_module_code_itself_and_starts_no_probe_process(workdir):
    # A pod is bounded by its own timeout: a probe process would only add its start-up.
    (scenario,) = doubling("ok", extra=WITNESS)
    (spec,) = specs_of(scenario, limits=Limits(timeout=60))
    pod = subprocess.Popen([sys.executable, "-m", "saibench_jupyter.pods", "run", "-"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, _ = pod.communicate(spec.to_json(), timeout=120)
    assert pod.returncode == 0 and json.loads(out.splitlines()[-1])["status"] == "ok"
    ran = [tuple(map(int, line.split())) for line in (workdir / "dry-runs.txt").read_text().splitlines()]
    assert any(pid == pod.pid for pid, _ in ran)  # the pod rebuilt and ran its scenario
    assert not [pid for pid, parent in ran if parent == pod.pid], "a process the pod started ran module code"
