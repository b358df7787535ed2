"""What a ranking's code reads beyond final points: every checkpoint, and its own parameters with defaults."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest
from test_results_rankings import DNF, ERROR_FACTORS, SCENARIOS, build_store, elapsed, label, levels

from saibench_jupyter.repository import Repository
from saibench_jupyter.results import (
    RankingError,
    RankingModuleSpec,
    Results,
    final_points,
    rank,
    rank_scores,
    time_to_target,
)

A1, A2, A3, B1 = SCENARIOS
LIBRARY = (Path(__file__).resolve().parents[1] / "sail_modules" / "rankings.py").read_text()


@pytest.fixture
def results(tmp_path: Path):
    store = build_store(tmp_path / "saibench.db")
    yield Results(store)
    store.close()


@pytest.fixture
def library() -> Repository:
    repo = Repository()
    repo.add_source(LIBRARY, "sail_modules/rankings.py")
    return repo


# -- every checkpoint ---------------------------------------------------------------------------
def test_checkpoints_are_the_medians_at_every_point_with_the_names_of_final_points(results: Results) -> None:
    seen: dict[str, Any] = {}

    def last_error(r: Any) -> float:
        seen[r.label] = [(p.stage, p.checkpoint, p.n, p.epoch, p.CriticalLoss, p.ElapsedMilliseconds, p.SamplesSeen)
                         for p in r.checkpoints]
        return float(r.checkpoints[-1].CriticalLoss)

    ranking = rank(results, last_error)
    assert set(seen) == {label(i) for i in SCENARIOS}  # finished scenarios only: a DNF has no points to rank
    for c, point in enumerate(seen[label(A2)], 1):
        median_error = statistics.median(SCENARIOS[A2][3] / c * f for f in ERROR_FACTORS)
        assert point == pytest.approx((1, c, 3, c, median_error, elapsed(A2, c, 2), 100 * c))
    # The last checkpoint is the final point: a ranking over either agrees.
    final = final_points(results).set_index("label")["CriticalLoss"]
    assert dict(zip(ranking.table["label"], ranking.table["score"])) | {label(DNF): final[label(DNF)]} == \
        pytest.approx(final.to_dict(), nan_ok=True)


def test_a_checkpoint_names_what_it_has_and_final_points_alone_have_no_checkpoints(results: Results) -> None:
    with pytest.raises(RankingError, match=r"raised AttributeError: 'Accuracy' is not a metric, work counter or "
                                           r"field of this checkpoint \(it has: n, stage, checkpoint, epoch, "
                                           r"CriticalLoss, WallTime, ElapsedMilliseconds"):
        rank(results, lambda r: r.checkpoints[0].Accuracy)
    with pytest.raises(RankingError, match=r"checkpoints: this ranking was given final points only; "
                                           r"rank\(results, \.\.\.\) gives each scenario's checkpoints"):
        rank_scores(final_points(results), lambda r: len(r.checkpoints))


@pytest.mark.parametrize(("work", "target"), [("WallTime", 0.28), ("SamplesSeen", 0.28), ("ElapsedMilliseconds", 0.5)])
def test_the_sail_time_to_target_module_agrees_with_the_built_in_target(results: Results, library: Repository,
                                                                        work: str, target: float) -> None:
    module = rank(results, "TimeToTarget", library,
                  params={"metric": "CriticalLoss", "target": target, "work": work, "higher": False})
    built_in = time_to_target(results, "CriticalLoss", target, work)
    assert module.table["label"].tolist() == built_in.table["label"].tolist()
    assert levels(module) == levels(built_in)
    assert module.table["score"].tolist() == pytest.approx(built_in.table["score"].tolist(), nan_ok=True)
    # Never reaching the target is no level, listed after the scenarios that reach it and before a DNF.
    assert module.table["status"].tolist()[-1] == "DNF"


def test_time_to_target_with_its_defaults_reads_a_metric_these_results_lack(results: Results,
                                                                           library: Repository) -> None:
    with pytest.raises(RankingError, match=r"ranking module TimeToTarget raised AttributeError: 'Accuracy' is not a "
                                           r"metric, work counter or field of this checkpoint"):
        rank(results, "TimeToTarget", library)


# -- parameters ---------------------------------------------------------------------------------
WITHIN = """
@RankingDefinition
def Within(a, b, slack=0.0):
    \"\"\"a ranks before b when it is no slower, give or take slack seconds.\"\"\"
    return a.WallTime <= b.WallTime + slack

@RankingDefinition(better="higher")
def Reached(r, metric="CriticalLoss", target=0.5):
    \"\"\"How many checkpoints reach the target.\"\"\"
    return len([p for p in r.checkpoints if p[metric] <= target])
"""


@pytest.fixture
def own() -> Repository:
    repo = Repository()
    repo.add_source(WITHIN, "own.py")
    return repo


def test_parameters_keep_their_defaults_unless_overridden(results: Results, own: Repository) -> None:
    plain = rank(results, "Reached", own)
    assert plain.name == "Reached"
    assert dict(zip(plain.table["label"], plain.table["score"]))[label(A1)] == 2  # 0.8 / c ≤ 0.5 from c = 2
    lower = rank(results, "Reached", own, params={"target": 0.3})
    assert lower.name == "Reached(target=0.3)"
    assert dict(zip(lower.table["label"], lower.table["score"]))[label(A1)] == 1
    # In the spec and in params=: params= wins.
    both = rank(results, RankingModuleSpec("Reached", {"target": 0.3, "metric": "CriticalLoss"}), own,
                params={"target": 0.1})
    assert both.name == "Reached(target=0.1, metric='CriticalLoss')"


def test_a_comparison_takes_parameters_after_its_two_scenarios(results: Results, own: Repository) -> None:
    strict = rank(results, "Within", own)
    assert strict.kind == "comparison" and levels(strict)[label(A1)] == 1 and levels(strict)[label(A3)] == 4
    # With a slack of a second every finished scenario ranks before every other: they share a level.
    loose = rank(results, "Within", own, params={"slack": 1})
    assert {levels(loose)[label(i)] for i in SCENARIOS} == {1}


def test_a_parameter_the_ranking_lacks_is_refused_with_its_parameters_and_a_close_name(
        results: Results, own: Repository, library: Repository) -> None:
    with pytest.raises(ValueError, match=r"ranking TimeToTarget has no parameter 'targt' \(its parameters: "
                                         r"metric='Accuracy', target=0\.95, work='ElapsedMilliseconds', "
                                         r"higher=True\); did you mean target\?\n  fix: %sail rank TimeToTarget "
                                         r"target=VALUE, or rank\(results, 'TimeToTarget', params=\{'target': VALUE\}\)"):
        rank(results, "TimeToTarget", library, params={"targt": 0.9})
    with pytest.raises(ValueError, match=r"ranking Within: a is the scenario it ranks, not a parameter "
                                         r"\(its parameters: slack=0\.0\)\n  fix: leave a out"):
        rank(results, "Within", own, params={"a": 1})
    with pytest.raises(ValueError, match=r"ranking FastestToAccuracy has no parameter 'target' \(its parameters: "
                                         r"none\)\n  fix: give it parameters with defaults: "
                                         r"def FastestToAccuracy\(r, target=\.\.\.\)"):
        rank(results, "FastestToAccuracy", library, params={"target": 0.9})


def test_a_value_of_another_kind_than_the_default_is_refused(results: Results, library: Repository) -> None:
    with pytest.raises(ValueError, match=r"ranking TimeToTarget: target='high' is a str, but its default 0\.95 is "
                                         r"a float\n  fix: pass a number, e.g\. target=0\.95"):
        rank(results, "TimeToTarget", library, params={"target": "high"})
    with pytest.raises(ValueError, match=r"higher=1 is a int, but its default True is a bool\n  fix: pass a bool "
                                         r"\(True or False\), e\.g\. higher=True"):
        rank(results, "TimeToTarget", library, params={"higher": 1})
    with pytest.raises(ValueError, match=r"metric=3 is a int, but its default 'Accuracy' is a str\n  fix: pass a "
                                         r"name \(a string\)"):
        rank(results, "TimeToTarget", library, params={"metric": 3})
    # An int where the default is a float is a number all the same.
    assert rank(results, "TimeToTarget", library, params={"metric": "CriticalLoss", "target": 1, "higher": False})


def test_params_are_for_ranking_modules_only(results: Results) -> None:
    with pytest.raises(ValueError, match=r"rank: params= \{'target': 0\.9\} are for a ranking module's own "
                                         r"parameters, and 'pareto' is not one"):
        rank(results, "pareto", params={"target": 0.9})


def test_a_none_default_takes_anything_and_a_sequence_takes_a_list_or_a_tuple(results: Results) -> None:
    repo = Repository()
    repo.add_source("@RankingDefinition\ndef Sum(r, names=('CriticalLoss',), scale=None):\n"
                    "    return sum(r[n] for n in names) * (1 if scale is None else scale)\n", "sum.py")
    plain = rank(results, "Sum", repo, params={"names": ["CriticalLoss", "WallTime"]})
    scaled = rank(results, "Sum", repo, params={"names": ["CriticalLoss", "WallTime"], "scale": 2})
    assert scaled.table["score"].tolist()[:4] == pytest.approx([2 * s for s in plain.table["score"].tolist()[:4]])
    with pytest.raises(ValueError, match=r"names='WallTime' is a str, but its default \('CriticalLoss',\) is a tuple"):
        rank(results, "Sum", repo, params={"names": "WallTime"})
