"""Selectors through the notebook core: ids, names, roles and parameter values."""

from __future__ import annotations

import pytest
from pods_helpers import write_data
from test_ui_session import doubling

from saibench_jupyter.ui._notebook import Notebook, NotebookError


@pytest.fixture
def nb(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return Notebook(user_ns={})


def test_select_by_id_name_and_role_filters(nb):
    doubling(nb, "ok", "raise")
    scenarios = nb.lattice().scenarios
    assert nb.select() == scenarios and nb.select("Doubler NumPy") == scenarios
    assert nb.select(scenarios[1].id) == [scenarios[1]]
    assert nb.select("model=Doubler problem=Doubling") == scenarios
    with pytest.raises(NotebookError, match="there is no module or scenario 'MLP'"):
        nb.select("model=MLP")
    nb.register("model", "@ModelDefinition\ndef Lazy(task, inputType, outputType):\n    Fail('never')\n")
    with pytest.raises(NotebookError, match="Lazy selects no scenario\n  fix: %sail explain Lazy says why"):
        nb.select("Lazy")


def test_select_by_parameter_values_compared_as_literals(nb):
    doubling(nb, "ok", "raise", "slow")
    nb.register("hardware", "@HardwareDefinition\ndef OneCore(cpus):\n    Suggest(cpus, 1, 2)\n"
                            "    return Resources(cpus=cpus)\n")
    picked = nb.select("mode=ok,slow cpus=2")
    assert sorted((s.params["Doubler.mode"], s.params["OneCore.cpus"]) for s in picked) == [
        ("ok", 2), ("slow", 2)]
    assert [s.params["Doubler.mode"] for s in nb.select("mode='raise' cpus=1.0")] == ["raise"]
    with pytest.raises(NotebookError, match=r"cpus=True selects no scenario\n  fix: %sail discover lists the "
                                            r"scenarios; the parameters take cpus in 1, 2"):
        nb.select("cpus=True")


def test_an_unknown_filter_lists_the_roles_and_the_parameters(nb):
    doubling(nb, "ok")
    with pytest.raises(NotebookError, match=r"modle=Doubler: 'modle' is neither a role nor a parameter of any "
                                            r"module\n  fix: filter with problem=NAME, .*, or a parameter: "
                                            r"mode=VALUE$"):
        nb.select("modle=Doubler")


def test_a_parameter_bound_by_default_is_set_by_discovering_again(nb):
    doubling(nb, "ok")
    nb.register("model", "@ModelDefinition\ndef Scaler(task, inputType, outputType, factor=2.0):\n"
                         "    if task != Solve:\n        Fail('solves only')\n"
                         "    return Solver(lambda x: x * factor)\n")
    assert {s.model: s.params.get("Scaler.factor") for s in nb.lattice().scenarios}["Scaler"] is None
    picked = nb.select("factor=3.0,4.0")
    assert sorted(s.params["Scaler.factor"] for s in picked) == [3.0, 4.0]
    assert {s.model for s in picked} == {"Scaler"}  # models without the parameter are left out
    with pytest.raises(NotebookError, match=r"(?s)'fctor' is neither .*; or set a parameter bound by default: "
                                            r"factor=VALUE$"):
        nb.select("fctor=3")
    (qualified,) = nb.select("Scaler.factor=5")
    assert qualified.params["Scaler.factor"] == 5
    assert qualified.id not in {s.id for s in nb.lattice().scenarios}  # a scenario of its own
