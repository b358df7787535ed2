"""A scenario's plan: its JSON form, bound again to the same sources with no discovery, and its parameters' one shape."""

from __future__ import annotations

import json
import re

import pytest
from conftest import MLP_PREDICTS, load
from pods_helpers import counted, doubling

from saibench_jupyter import Repository, discover
from saibench_jupyter.planner import PlanError, ScenarioPlan, flat_params, params_by_place

#: A composite model whose two slots the same model fills: its parameters need their places in their keys.
TWICE = """
from saibench_jupyter.sail import *

@ModelDefinition
def Twice(task, inputType, outputType):
    if task != Solve: Fail("solves only")
    first = Require(Model, Solve, inputType, outputType)
    second = Require(Model, Solve, inputType, outputType)
    return Pipeline(first, second)
"""


def copy_of(repo: Repository) -> Repository:
    """A fresh repository holding the same sources under the same origins (as a pod loads its spec's)."""
    fresh = Repository()
    for origin, source in repo.sources().items():
        fresh.add_source(source.text, origin)
    return fresh


def tree(model) -> list[tuple]:
    return [(role, m.name, dict(m.params), m.tasks, m.chains, m.backends) for role, m in model.walk()]


def test_a_plan_read_back_from_json_is_the_scenario_it_was_written_from(repo, cpu_machine):
    # A composite model, a generic converter chain over declared atom types, and a capability the software provides.
    load(repo, "stacks", "md")
    repo.add_source(MLP_PREDICTS, origin="mnist.py")
    lat = discover(repo, machine=cpu_machine, problem="MDSimulation")
    fresh = copy_of(repo)
    assert lat.scenarios
    for scenario in lat.scenarios:
        data = json.loads(json.dumps(scenario.plan().to_dict()))  # through JSON text, as a spec carries it
        plan = ScenarioPlan.from_dict(data, fresh)
        assert (plan.id, plan.label, plan.params) == (scenario.id, scenario.label, scenario.params)
        assert tree(plan.model) == tree(scenario.model_choice)
        assert plan.chains == scenario.converters and [c.label for c in plan.chains] == ["AtomEmbedding", "squeeze"]
        assert [m.name for m in plan.converters] == ["AtomEmbedding"]
        assert [m.name for m in plan.metrics] == [m.name for m in scenario.metrics]
        assert (plan.environment, plan.resources) == (scenario.environment, scenario.resources)
        assert plan.environment.provides and plan.problem is fresh.get("MDSimulation")
        assert plan.model.graphs == {}  # execution builds and checks its own graphs
        assert plan.inputs == scenario.problem_instance.meta.inputs and plan.inputs  # what a warm worker loads


def test_the_plan_holds_the_data_sources_its_parameters_pick():
    (scenario,) = counted(ks=(1,))
    assert scenario.plan().inputs == ("dataset:counted/x", "dataset:counted/y")
    data = scenario.plan().to_dict()
    del data["inputs"]  # a plan written before plans held their inputs
    assert ScenarioPlan.from_dict(data, scenario.repository).inputs == ()


def test_parameters_have_one_shape_with_places_only_where_a_module_fills_two():
    scenarios = doubling("ok", "slow", extra=TWICE)
    plain = next(s for s in scenarios if s.model == "Doubler" and "ok" in s.label)
    assert plain.params == {"Doubler.mode": "ok"}
    twice = next(s for s in scenarios if "Twice[Doubler(mode='ok'), Doubler(mode='slow')]" in s.label)
    (first, second) = twice.submodels
    assert twice.params == {f"{first}/Doubler.mode": "ok", f"{second}/Doubler.mode": "slow"}
    plan = ScenarioPlan.from_dict(twice.plan().to_dict(), copy_of(twice.repository))
    assert [(role, dict(m.params)) for role, m in plan.model.walk()] == [
        ("model", {}), (first, {"mode": "ok"}), (second, {"mode": "slow"})]
    places = twice.places
    assert params_by_place(places, twice.params)[3:] == [{}, {"mode": "ok"}, {"mode": "slow"}]
    assert flat_params(places, params_by_place(places, twice.params)) == twice.params
    with pytest.raises(ValueError, match=r"parameter 'Doubler.mode' belongs to none of the scenario's modules"):
        params_by_place(places, {"Doubler.mode": "ok"})


def test_a_plan_that_does_not_fit_its_sources_is_refused_with_the_module_and_the_fix():
    (scenario,) = doubling("ok")
    data = scenario.plan().to_dict()
    fresh = copy_of(scenario.repository)
    digest = scenario.repository.get("Error").digest
    with pytest.raises(PlanError, match=rf"module Error differs from the plan's: the plan was made with digest "
                                        rf"{digest}0, the sources give digest {digest}; fix: re-plan the run") as info:
        ScenarioPlan.from_dict({**data, "modules": {**data["modules"], "Error": digest + "0"}}, fresh)
    assert (info.value.module, info.value.expected, info.value.actual) == ("Error", digest + "0", digest)
    with pytest.raises(PlanError, match=r"module Gone differs .* the sources give no such module"):
        ScenarioPlan.from_dict({**data, "metrics": ["Gone"], "modules": {**data["modules"], "Gone": "00"}}, fresh)
    with pytest.raises(PlanError, match=rf"make scenario [0-9a-f]+, not {scenario.id} .*fix: re-plan the run"):
        ScenarioPlan.from_dict({**data, "params": {"Doubler.mode": "slow"}}, fresh)
    with pytest.raises(PlanError, match=r"the plan is malformed \(KeyError: 'models'\)"):
        ScenarioPlan.from_dict({k: v for k, v in data.items() if k != "models"}, fresh)


def test_a_plan_binds_by_content_to_sources_of_other_names_with_any_origin():
    scenario = counted()[0]
    data = scenario.plan().to_dict()
    ((origin, source),) = scenario.repository.sources().items()
    elsewhere = Repository()
    elsewhere.add_source(source.text, origin="<cell of a pod notebook>")
    with pytest.raises(PlanError, match=rf"the support code of {re.escape(origin)} differs from the plan's"):
        ScenarioPlan.from_dict(data, elsewhere)
    assert ScenarioPlan.from_dict(data, elsewhere, any_origin=True).id == scenario.id
    edited = Repository()
    edited.add_source(source.text.replace("VALUE = 1.0", "VALUE = 2.0"), origin="<cell of a pod notebook>")
    with pytest.raises(PlanError, match=rf"the support code of {re.escape(origin)} is not in the sources; "
                                        r"fix: re-plan the run"):
        ScenarioPlan.from_dict(data, edited, any_origin=True)
