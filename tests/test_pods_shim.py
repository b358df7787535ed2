"""The shim as a real subprocess: ``python -m saibench_jupyter.pods run SPEC`` streams JSON-line events."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pods_helpers import doubling, write_data

from saibench_jupyter.pods import Limits, specs_of


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def shim(spec_arg: str, stdin: str | None = None) -> tuple[int, list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.pods", "run", spec_arg], input=stdin,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


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
    assert {e["message"] for e in events if e["event"] == "log"} == {"a line from module code"}
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


def test_a_bad_spec_is_reported_as_an_event_not_a_traceback(workdir):
    code, events, stderr = shim('{"saibench_pod": 99}')
    assert code == 2 and "Traceback" not in stderr
    (failed,) = events
    assert failed["event"] == "failed" and failed["kind"] == "spec"
    assert "spec format 99" in failed["message"]


def test_a_pod_that_cannot_rebuild_its_scenario_says_why(workdir):
    (scenario,) = doubling("ok")
    data = json.loads(specs_of(scenario)[0].to_json())
    data["params"]["Doubler.mode"] = ["other"]  # discovery in the pod finds a different scenario
    code, events, _ = shim("-", stdin=json.dumps(data))
    assert code == 1
    assert events[-1]["kind"] == "rejected"
    assert f"did not find scenario {scenario.id}" in events[-1]["message"]


def test_usage_is_explained():
    proc = subprocess.run([sys.executable, "-m", "saibench_jupyter.pods"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage: python -m saibench_jupyter.pods run SPEC" in proc.stderr
