"""Ranking specs: rank() runs typed specs, and the strings, tuples and functions it took before become them."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from test_results_rankings import PAPER_RANKINGS, build_store, levels

from saibench_jupyter.repository import Repository
from saibench_jupyter.results import (
    ParetoSpec,
    RankingFunctionSpec,
    RankingModuleSpec,
    Results,
    TargetSpec,
    as_ranking_spec,
    rank,
)


@pytest.fixture
def results(tmp_path: Path):
    store = build_store(tmp_path / "saibench.db")
    yield Results(store)
    store.close()


def wall_time(r):
    return r.WallTime


def test_what_rank_accepted_before_becomes_a_spec() -> None:
    assert as_ranking_spec("pareto") == ParetoSpec()
    assert as_ranking_spec(("pareto",)) == ParetoSpec()
    assert as_ranking_spec(("pareto", "Flops")) == ParetoSpec("Flops", None)
    assert as_ranking_spec(("pareto", "Flops", "Loss", "ignored")) == ParetoSpec("Flops", "Loss")
    assert as_ranking_spec(("target", "Accuracy", "0.95")) == TargetSpec("Accuracy", 0.95)
    assert as_ranking_spec(("target", "Accuracy", 0.95, "Epochs")) == TargetSpec("Accuracy", 0.95, "Epochs")
    assert as_ranking_spec("Fastest") == RankingModuleSpec("Fastest")
    assert as_ranking_spec(wall_time) == RankingFunctionSpec(wall_time)
    spec = TargetSpec("Accuracy", 0.9)
    assert as_ranking_spec(spec) is spec
    with pytest.raises(FrozenInstanceError):
        spec.target = 0.5  # type: ignore[misc]


def test_anything_else_is_refused_with_what_to_pass() -> None:
    for bad in (("target", "Accuracy"), ("best",), 3):
        with pytest.raises(TypeError, match=r"ranking=.*: pass a ranking module's name, a function, "
                                            r"\('pareto', work, precision\) or \('target', precision, value\)"):
            as_ranking_spec(bad)
    with pytest.raises(ValueError, match="could not convert string to float: 'high'"):
        as_ranking_spec(("target", "Accuracy", "high"))


def test_specs_rank_as_their_tuples_names_and_functions_do(results: Results) -> None:
    repo = Repository()
    repo.add_source(PAPER_RANKINGS, "rankings.py")
    pairs = [(ParetoSpec(), "pareto"),
             (ParetoSpec("ElapsedMilliseconds", "CriticalLoss"), ("pareto", "ElapsedMilliseconds", "CriticalLoss")),
             (TargetSpec("CriticalLoss", 0.28, "SamplesSeen"), ("target", "CriticalLoss", 0.28, "SamplesSeen")),
             (RankingModuleSpec("Dominates"), "Dominates"),
             (RankingFunctionSpec(wall_time), wall_time)]
    for spec, given in pairs:
        by_spec, by_given = rank(results, spec, repo), rank(results, given, repo)
        assert (by_spec.name, by_spec.kind, by_spec.notes) == (by_given.name, by_given.kind, by_given.notes)
        assert levels(by_spec) == levels(by_given)
        assert by_spec.table.equals(by_given.table)
