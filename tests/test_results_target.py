"""Time to target: the least work at any checkpoint where a precision metric reaches a value."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_results_rankings import DNF, SCENARIOS, build_store, elapsed, label, levels

from saibench_jupyter.results import Results, rank, time_to_target

A1, A2, A3, B1 = SCENARIOS


@pytest.fixture
def results(tmp_path: Path):
    store = build_store(tmp_path / "saibench.db")
    yield Results(store)
    store.close()


def test_the_cheapest_checkpoint_that_reaches_the_target_scores_each_scenario(results: Results) -> None:
    # CriticalLoss medians fall as base/checkpoint: A1 0.8, A2 0.4, A3 0.9, B1 0.2 at checkpoint 1.
    ranking = time_to_target(results, "CriticalLoss", 0.28)
    assert ranking.kind == "score" and ranking.name == "TimeToTarget(CriticalLoss ≤ 0.28, WallTime)"
    assert levels(ranking) == {label(A1): 1, label(B1): 2, label(A2): 3, label(A3): None, label(DNF): None}
    rows = {r.label: r for r in ranking.table.itertuples()}
    # WallTime (s) at the point reached, not at the final one: A1 at checkpoint 3, A2 at 2, B1 at 1.
    for identity, checkpoint in ((A1, 3), (A2, 2), (B1, 1)):
        row = rows[label(identity)]
        assert row.score == pytest.approx(elapsed(identity, checkpoint, 2) / 1000)
        assert (row.stage, row.checkpoint) == (1, checkpoint)
    assert rows[label(A3)].status == "no value"
    assert rows[label(A3)].why == "never reached CriticalLoss ≤ 0.28 (best 0.3)"
    assert rows[label(DNF)].status == "DNF"
    assert ranking.notes[0].startswith("score: the least WallTime at a stage and checkpoint where CriticalLoss ≤ 0.28")


def test_a_work_counter_and_rank_tuples_give_the_same_ranking(results: Results) -> None:
    by_counter = rank(results, ("target", "CriticalLoss", 0.28, "SamplesSeen"))
    rows = {r.label: r for r in by_counter.table.itertuples()}
    assert rows[label(B1)].score == 100 and rows[label(A2)].score == 200 and rows[label(A1)].score == 300
    assert levels(by_counter)[label(B1)] == 1 and levels(by_counter)[label(A1)] == 3


def test_bad_axes_and_targets_say_what_there_is(results: Results) -> None:
    with pytest.raises(ValueError, match=r"'Accuracy' is not a metric of these results \(metrics: CriticalLoss, "
                                         r"WallTime\)"):
        time_to_target(results, "Accuracy", 0.9)
    with pytest.raises(ValueError, match=r"'Flops' is not a work metric or counter of these results"):
        time_to_target(results, "CriticalLoss", 0.3, work="Flops")
    with pytest.raises(ValueError, match=r"target: nan is not a finite number"):
        time_to_target(results, "CriticalLoss", float("nan"))
