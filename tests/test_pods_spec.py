"""The BenchPod spec: JSON round trip, validation, and the identity that resume relies on."""

from __future__ import annotations

import json
import textwrap

import pytest
from pods_helpers import DOUBLING, doubling

from saibench_jupyter import Repository, discover
from saibench_jupyter.pods import SPEC_VERSION, Limits, PodSpec, SpecError, specs_of
from saibench_jupyter.pods._spec import unwritable


def test_round_trip_through_json_keeps_every_field():
    (scenario,) = doubling("ok")
    (spec,) = specs_of(scenario, limits=Limits(timeout=5, memory=2**29), settings={"epochs": 2})
    again = PodSpec.load(spec.to_json())
    assert again == spec
    data = json.loads(spec.to_json())
    assert data["saibench_pod"] == SPEC_VERSION
    assert data["pod"] == f"{spec.identity}-r0"
    plan = data["plan"]  # the resolved scenario: what the pod runs, with no discovery
    assert (plan["id"], plan["label"]) == (scenario.id, scenario.label)
    assert plan["models"]["model"]["name"] == "Doubler" and plan["metrics"] == ["Error"]
    repo = scenario.repository
    assert plan["modules"] == {n: repo.get(n).digest for n in ("Doubling", "OneCore", "NumPy", "Doubler", "Error")}
    assert plan["models"]["model"]["tasks"] == [{"kind": "Solve", "input": TENSOR3, "output": TENSOR3}]
    assert plan["params"] == {"Doubler.mode": "ok"} == scenario.params
    assert spec.modules == {"problem": "Doubling", "model": "Doubler", "software": "NumPy", "hardware": "OneCore",
                            "metrics": ["Error"], "submodels": {}, "converters": []}
    assert data["limits"] == {"timeout": 5, "memory": 2**29, "affinity": None, "gpus": None, "log_lines": 10_000,
                              "log_bytes": 2**20}
    # Content-addressed: the one source is stored once, under the sha256 of its text.
    (source,) = data["sources"]
    assert data["texts"][source["digest"]] == DOUBLING.read_text()


TENSOR3 = {"type": "Tensor", "fields": {"dtype": "float32", "shape": [3]}}


def test_repeats_are_pods_of_one_identity_with_their_own_seeds():
    (scenario,) = doubling("ok")
    specs = specs_of(scenario, repeats=3, seed=10)
    assert [s.repeat for s in specs] == [0, 1, 2]
    assert [s.seed for s in specs] == [10, 11, 12]
    assert len({s.identity for s in specs}) == 1 and len({s.pod for s in specs}) == 3


def test_identity_is_stable_and_follows_what_the_scenario_uses():
    extra = "from saibench_jupyter.sail import *\n\n@ModelDefinition\ndef Copier(task, inputType, outputType):\n" \
            "    if task != Solve: Fail('solves only')\n    return Solver(lambda x: x)\n"
    first = doubling("ok", extra=extra)
    again = doubling("ok", extra=extra)
    ids = {s.label: specs_of(s)[0].identity for s in first}
    assert ids == {s.label: specs_of(s)[0].identity for s in again}  # fresh repositories, same identities

    # Editing Copier changes Copier's scenario only; a comment-only edit changes nothing.
    edited = doubling("ok", extra=extra.replace("lambda x: x", "lambda x: x + 0"))
    changed = {s.label for s in edited if specs_of(s)[0].identity != ids[s.label]}
    assert changed == {"Doubling × Copier × NumPy × OneCore"}
    cosmetic = doubling("ok", extra=extra.replace("def Copier", "# copies its input\ndef Copier"))
    assert {s.label: specs_of(s)[0].identity for s in cosmetic} == ids

    # Settings and the seed are part of the identity; the repeat is not.
    scenario = first[0]
    assert specs_of(scenario, settings={"epochs": 3})[0].identity != ids[scenario.label]
    assert specs_of(scenario, seed=1)[0].identity != ids[scenario.label]


def test_a_scenario_of_a_lost_repository_is_refused():
    repo = Repository()
    repo.load(DOUBLING)
    scenario = discover(repo).scenarios[0]
    del repo
    with pytest.raises(RuntimeError, match="no longer exists; discover again"):
        specs_of(scenario)


def _spec_dict() -> dict:
    (scenario,) = doubling("ok")
    return json.loads(specs_of(scenario)[0].to_json())


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(saibench_pod=3), r"spec format 3; this version reads 2.*upgrade"),
    (lambda d: d.update(saibench_pod=1), r"spec format 1; this version reads 2.*write it with this version's"),
    (lambda d: d.pop("saibench_pod"), r"spec format None.*specs_of"),
    (lambda d: d.pop("seed"), r"seed: missing"),
    (lambda d: d.update(repeat="0"), r"repeat: expected an integer, got str"),
    (lambda d: d["plan"]["models"].pop("model"), r"plan.models: expected the model under test"),
    (lambda d: d["plan"].pop("problem"), r"plan.problem: missing or not a string"),
    (lambda d: d["plan"].update(metrics="Error"), r"plan.metrics: missing or not a list of module names"),
    (lambda d: d.pop("plan"), r"plan: missing"),
    (lambda d: d["limits"].update(timeout=-1), r"limits.timeout: expected seconds > 0"),
    (lambda d: d["limits"].update(affinity=["a"]), r"limits.affinity: expected a list of integer ids"),
    (lambda d: d["limits"].update(log_lines=0), r"limits.log_lines: expected an integer >= 1, got 0"),
    (lambda d: d.update(pod="other-r0"), r"pod: 'other-r0' does not match"),
    (lambda d: d["texts"].update({k: v + "#" for k, v in d["texts"].items()}),
     r"does not match its digest .* write the spec again"),
    (lambda d: d["texts"].clear(), r"which texts does not hold"),
])
def test_invalid_specs_name_the_field_and_the_fix(change, message):
    data = _spec_dict()
    change(data)
    with pytest.raises(SpecError, match=message):
        PodSpec.from_dict(data)


def test_load_reports_missing_files_and_bad_json(tmp_path):
    with pytest.raises(SpecError, match=r"cannot read the pod spec .*nope\.json"):
        PodSpec.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SpecError, match="is not JSON"):
        PodSpec.load(tmp_path / "bad.json")


def test_load_reports_json_that_python_cannot_decode():
    with pytest.raises(SpecError, match="nested too deeply to read"):
        PodSpec.load("{" + '"a": {' * 100_000 + "}" * 100_001)
    with pytest.raises(SpecError, match=r"is not JSON: Exceeds the limit \(4300 digits\)"):
        PodSpec.load('{"saibench_pod": ' + "9" * 5000 + "}")


def test_parameters_that_json_cannot_hold_are_refused():
    (scenario,) = doubling("ok")
    with pytest.raises(SpecError, match=r"settings .* cannot be written to a pod spec"):
        specs_of(scenario, settings={"epochs": object()})
    extra = textwrap.dedent("""
        from saibench_jupyter.sail import *

        @ModelDefinition
        def Scaler(task, inputType, outputType, factor):
            if task != Solve: Fail("solves only")
            Suggest(factor, 2 + 1j)
            return Solver(lambda x: x * factor)
    """)
    (scaler,) = [s for s in doubling("ok", extra=extra) if "Scaler" in s.label]
    with pytest.raises(SpecError, match=r"^Doubling × Scaler\(factor=\(2\+1j\)\) × NumPy × OneCore: parameter "
                                        r"Scaler.factor = \(2\+1j\) cannot be written to a pod spec \(Object of type "
                                        r"complex is not JSON serializable\).*Fix: give Scaler.factor only JSON values"):
        specs_of(scaler)
    assert unwritable(scenario) is None
    (refused,) = specs_of(scaler, check=False)  # for run(), which records such pods as failed
    assert refused.params == {"Scaler.factor": 2 + 1j}
    with pytest.raises(SpecError, match="at least once"):
        specs_of(scenario, repeats=0)
