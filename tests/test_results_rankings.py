"""Rankings over a real results store: final points, scores, comparisons, Pareto fronts, DNF, errors."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from saibench_jupyter.repository import Repository
from saibench_jupyter.results import (
    Ranking,
    RankingError,
    Results,
    Store,
    final_points,
    pareto,
    rank,
    rank_comparison,
    rank_scores,
)

PAPER_RANKINGS = (Path(__file__).resolve().parents[1] / "saibench_jupyter" / "examples" / "paper"
                  / "rankings.py").read_text()

#: identity -> (software, hiddenSize, work factor, final-ish error scale); error at checkpoint c is scale / c.
SCENARIOS = {
    "a1a1a1a1a1a1a1a1": ("PyTorch", 32, 1.0, 0.8),
    "a2a2a2a2a2a2a2a2": ("PyTorch", 64, 2.0, 0.4),
    "a3a3a3a3a3a3a3a3": ("PyTorch", 128, 4.0, 0.9),
    "b1b1b1b1b1b1b1b1": ("JAX", 32, 3.0, 0.2),
}
DNF = "d1d1d1d1d1d1d1d1"
TORCH, JAX, CNN = "Heat × MLP × PyTorch × CPU", "Heat × MLP × JAX × CPU", "Heat × CNN × PyTorch × CPU"
#: Per repeat 0, 1, 2: error factors (median 1.0, q20 0.94, q80 1.12) and work offsets (median +10, q20 +4, q80 +16).
ERROR_FACTORS = (1.2, 0.9, 1.0)
WORK_OFFSETS = (20.0, 0.0, 10.0)
METRIC_INFO = {"CriticalLoss": {"axis": "precision", "better": "lower", "unit": None},
               "WallTime": {"axis": "work", "better": "lower", "unit": "s"}}


def label(identity: str) -> str:
    if identity == DNF:
        return "Heat × CNN(channels=8) × PyTorch × CPU"
    software, hidden, _, _ = SCENARIOS[identity]
    return f"Heat × MLP(hiddenSize={hidden}) × {software} × CPU"


def error(identity: str, checkpoint: int, repeat: int) -> float:
    return SCENARIOS[identity][3] / checkpoint * ERROR_FACTORS[repeat]


def elapsed(identity: str, checkpoint: int, repeat: int) -> float:
    return SCENARIOS[identity][2] * (100.0 * checkpoint + WORK_OFFSETS[repeat])


def pod(identity: str, repeat: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"event": "started", "t": 1.0, "pid": 1, "environment": None},
                                    {"event": "stage", "stage": 1}]
    for c in (1, 2, 3):
        ms = elapsed(identity, c, repeat)
        events.append({"event": "checkpoint", "stage": 1, "checkpoint": c, "epoch": c, "loss": 1.0 / c,
                       "counters": {"ElapsedMilliseconds": ms, "TrainingMilliseconds": 0.8 * ms, "SamplesSeen": 100 * c}})
        events.append({"event": "metric", "stage": 1, "checkpoint": c, "name": "CriticalLoss",
                       "value": error(identity, c, repeat), "raw": None})
        events.append({"event": "metric", "stage": 1, "checkpoint": c, "name": "WallTime", "value": ms / 1000.0,
                       "raw": None})
    events.append({"event": "finished", "t": 9.0, "status": "ok", "wall_ms": 1.0, "compile_ms": 0.0})
    return events


def build_store(path: Path, metric_info: bool = True, sources: dict[str, tuple[str, str]] | None = None) -> Store:
    """Four finished scenarios (3 repeats × 3 checkpoints each) in two families, and one that did not finish."""
    store = Store(path)
    run = store.begin_run("local", 1)
    if sources:
        store.add_sources(sources)
    for identity in [*SCENARIOS, DNF]:
        software, hidden = (SCENARIOS[identity][:2] if identity != DNF else ("PyTorch", None))
        model = "CNN" if identity == DNF else "MLP"
        params = {"problem": {}, "hardware": {}, "software": {},
                  "model": {"channels": 8} if identity == DNF else {"hiddenSize": hidden}}
        record: dict[str, Any] = {
            "scenario": identity[:4], "label": label(identity), "family": f"Heat × {model} × {software} × CPU",
            "problem": "Heat", "model": model, "software": software, "hardware": "CPU", "params": params,
            "metrics": ["CriticalLoss", "WallTime"], "sources": list(sources or {})}
        if metric_info:
            record["metric_info"] = METRIC_INFO
        store.add_scenario(identity, record)
        for repeat in range(3 if identity != DNF else 2):
            store.start_pod(run, identity, repeat)
            events = pod(identity, repeat) if identity != DNF else [
                {"event": "failed", "t": 3.0, "kind": "memory", "message": "MemoryError: out of memory",
                 "module": "CNN", "location": None, "stage": 1, "checkpoint": None, "fix": None,
                 "traceback": None, "stderr": ""}]
            for event in events:
                store.record(run, identity, repeat, event)
    return store


@pytest.fixture
def results(tmp_path: Path):
    store = build_store(tmp_path / "saibench.db")
    yield Results(store)
    store.close()


def points(rows: dict[str, dict[str, float]], status: dict[str, str] | None = None) -> pd.DataFrame:
    """A hand-made points frame: one row per label (used as identity too)."""
    return pd.DataFrame([{"identity": name, "label": name, "family": "f", "status": (status or {}).get(name, "ok"),
                          "why": None, **values} for name, values in rows.items()])


def levels(ranking: Ranking) -> dict[str, Any]:
    return {row.label: (None if pd.isna(row.level) else int(row.level)) for row in ranking.table.itertuples()}


# -- final points ------------------------------------------------------------------------------
def test_final_points_are_medians_over_repeats_at_the_last_checkpoint(results: Results) -> None:
    fp = final_points(results).set_index("identity")
    assert list(fp.columns[:9]) == ["label", "family", "problem", "model", "software", "hardware", "params", "status",
                                    "why"]
    for identity in SCENARIOS:
        row = fp.loc[identity]
        assert (row["status"], row["n"], row["stage"], row["checkpoint"], row["epoch"]) == ("ok", 3, 1, 3, 3)
        assert row["CriticalLoss"] == pytest.approx(SCENARIOS[identity][3] / 3)
        assert row["WallTime"] == pytest.approx(SCENARIOS[identity][2] * 0.31)
        assert row["ElapsedMilliseconds"] == pytest.approx(SCENARIOS[identity][2] * 310)
        assert math.isnan(row["Flops"])  # a counter the pods never reported
    dnf = fp.loc[DNF]
    assert (dnf["status"], dnf["why"], dnf["n"]) == ("DNF", "memory: MemoryError: out of memory", 0)
    assert math.isnan(dnf["CriticalLoss"])
    assert fp.attrs["metric_info"]["WallTime"] == {"axis": "work", "better": "lower", "unit": "s"}
    assert fp.attrs["metric_info"]["ElapsedMilliseconds"] == {"axis": "work", "better": "lower", "unit": "ms"}


# -- scores ------------------------------------------------------------------------------------
def test_scores_rank_lower_first_and_dnf_last_without_a_level(results: Results) -> None:
    ranking = rank(results, lambda r: r.WallTime)
    table = ranking.table
    assert ranking.kind == "score"
    assert list(table.columns) == ["level", "identity", "label", "family", "WallTime", "score", "status", "why"]
    assert table["label"].tolist() == [label(i) for i in ("a1a1a1a1a1a1a1a1", "a2a2a2a2a2a2a2a2",
                                                          "b1b1b1b1b1b1b1b1", "a3a3a3a3a3a3a3a3", DNF)]
    assert table["level"].tolist()[:4] == [1, 2, 3, 4] and pd.isna(table["level"].iloc[4])
    assert table["status"].tolist() == ["ok"] * 4 + ["DNF"]
    assert table["score"].tolist()[:4] == pytest.approx([0.31, 0.62, 0.93, 1.24])
    assert "1 scenario did not finish: no level" in ranking.notes
    assert "DNF" in repr(ranking) and "<table" in ranking._repr_html_()


def test_equal_scores_share_a_level_and_levels_stay_dense() -> None:
    ranking = rank_scores(points({"a": {"T": 2.0}, "b": {"T": 1.0}, "c": {"T": 2.0}, "d": {"T": 3.0},
                                  "e": {"T": math.nan}}), lambda r: r.T)
    assert levels(ranking) == {"b": 1, "a": 2, "c": 2, "d": 3, "e": None}
    assert ranking.table.set_index("label").loc["e", "status"] == "no value"


def test_better_higher_ranks_the_largest_score_first() -> None:
    ranking = rank_scores(points({"a": {"Acc": 0.9}, "b": {"Acc": 0.7}, "c": {"Acc": 0.95}}), lambda r: r.Acc,
                          better="higher", name="Accuracy")
    assert ranking.name == "Accuracy" and ranking.table["label"].tolist() == ["c", "a", "b"]
    with pytest.raises(ValueError, match="better='best'"):
        rank_scores(points({"a": {"Acc": 0.9}}), lambda r: r.Acc, better="best")


# -- comparisons -------------------------------------------------------------------------------
def test_incomparable_scenarios_share_a_level() -> None:
    frame = points({"a": {"W": 1.0, "E": 2.0}, "b": {"W": 2.0, "E": 1.0}, "c": {"W": 3.0, "E": 3.0},
                    "d": {"W": 3.0, "E": 3.0}, "x": {"W": 0.0, "E": 0.0}}, status={"x": "DNF"})
    ranking = rank_comparison(frame, lambda a, b: a.W <= b.W and a.E <= b.E, name="Dominates")
    assert ranking.kind == "comparison"
    assert levels(ranking) == {"a": 1, "b": 1, "c": 2, "d": 2, "x": None}  # c and d are equal: a tie
    assert ranking.table["label"].tolist()[-1] == "x"
    assert list(ranking.table.columns) == ["level", "identity", "label", "family", "W", "E", "status", "why"]


def test_a_cycle_in_the_relation_terminates_in_one_level_and_is_noted() -> None:
    beats = {("rock", "scissors"), ("scissors", "paper"), ("paper", "rock"), ("rock", "loser"),
             ("paper", "loser"), ("scissors", "loser")}
    ranking = rank_comparison(points({n: {} for n in ("rock", "paper", "scissors", "loser")}),
                              lambda a, b: (a.label, b.label) in beats)
    assert levels(ranking) == {"paper": 1, "rock": 1, "scissors": 1, "loser": 2}
    assert any("in a cycle" in note and "share level 1" in note for note in ranking.notes)


# -- Pareto ------------------------------------------------------------------------------------
def test_pareto_fronts_with_directions_from_metric_info(results: Results) -> None:
    ranking = rank(results, "pareto")  # WallTime (the work metric) × CriticalLoss (the precision one)
    assert ranking.name == "Pareto(WallTime, CriticalLoss)"
    assert levels(ranking) == {label("a1a1a1a1a1a1a1a1"): 1, label("a2a2a2a2a2a2a2a2"): 1,
                               label("b1b1b1b1b1b1b1b1"): 1, label("a3a3a3a3a3a3a3a3"): 2, label(DNF): None}
    explicit = rank(results, ("pareto", "ElapsedMilliseconds", "CriticalLoss"))
    assert levels(explicit) == levels(ranking)


def test_pareto_successive_fronts_and_better_higher() -> None:
    frame = points({"a": {"W": 1.0, "A": 0.5}, "b": {"W": 2.0, "A": 0.9}, "c": {"W": 2.0, "A": 0.4},
                    "d": {"W": 3.0, "A": 0.3}, "e": {"W": math.nan, "A": 0.3}})
    ranking = pareto(frame, "W", "A", better={"A": "higher"})
    assert levels(ranking) == {"a": 1, "b": 1, "c": 2, "d": 3, "e": None}
    assert levels(pareto(frame, "W", "A")) == {"a": 1, "c": 1, "d": 1, "b": 2, "e": None}  # lower A is better now
    with pytest.raises(ValueError, match="pareto: no column 'Nope'; the points have W, A"):
        pareto(frame, "Nope", "A")


# -- ranking modules ---------------------------------------------------------------------------
def test_the_papers_ranking_modules_run_on_a_real_store(results: Results) -> None:
    repo = Repository()
    repo.add_source(PAPER_RANKINGS, "rankings.py")
    fastest = rank(results, "Fastest", repo)
    assert fastest.name == "Fastest" and fastest.kind == "score"
    assert fastest.table["label"].tolist()[0] == label("a1a1a1a1a1a1a1a1")
    assert fastest.table["level"].tolist()[:4] == [1, 2, 3, 4]
    dominates = rank(results, "Dominates", repo)
    assert dominates.kind == "comparison"
    assert levels(dominates) == levels(rank(results, "pareto"))
    assert list(dominates.table.columns[4:6]) == ["WallTime", "CriticalLoss"]


def test_a_ranking_module_option_better_higher_is_obeyed(results: Results) -> None:
    repo = Repository()
    repo.add_source("@RankingDefinition(better='higher')\ndef Slowest(r):\n    return r.WallTime\n", "slow.py")
    assert rank(results, "Slowest", repo).table["label"].tolist()[0] == label("a3a3a3a3a3a3a3a3")


def test_a_ranking_that_raises_names_module_line_and_scenario(results: Results) -> None:
    repo = Repository()
    repo.add_source("# a broken ranking\n\n@RankingDefinition\ndef Broken(r):\n    slack = r.WallTime\n"
                    "    return slack / (r.CriticalLoss - r.CriticalLoss)\n", "broken.py")
    with pytest.raises(RankingError, match=r"(?s)ranking module Broken raised ZeroDivisionError.*"
                       r"on scenario 'Heat × MLP\(hiddenSize=32\) × PyTorch × CPU'.*at broken.py, line 6\n"
                       r"    6 \| return slack / \(r.CriticalLoss - r.CriticalLoss\)"):
        rank(results, "Broken", repo)


def test_a_ranking_reading_an_unknown_metric_says_which_it_has(results: Results) -> None:
    with pytest.raises(RankingError, match=r"(?s)ranking nope raised AttributeError: 'Accuracy' is not a metric.*"
                       r"it has: .*CriticalLoss.*on scenario"):
        rank_scores(final_points(results), lambda r: r.Accuracy, name="nope")
    with pytest.raises(RankingError, match="returned str 'fast', not a number"):
        rank_scores(final_points(results), lambda r: "fast")


def test_an_unknown_ranking_name_lists_the_known_ones(results: Results) -> None:
    repo = Repository()
    repo.add_source(PAPER_RANKINGS, "rankings.py")
    with pytest.raises(ValueError, match=r"no ranking module 'Quickest' \(known rankings: Fastest, Dominates; "
                       r"built in: 'pareto'\): define it with @RankingDefinition"):
        rank(results, "Quickest", repo)
    with pytest.raises(ValueError, match=r"takes one scenario .* or two .*, not 3"):
        rank(results, lambda a, b, c: True)


def test_with_trust_ranking_modules_come_from_the_stored_sources(tmp_path: Path) -> None:
    digest = hashlib.sha256(PAPER_RANKINGS.encode()).hexdigest()
    with build_store(tmp_path / "s.db", sources={digest: ("rankings.py", PAPER_RANKINGS)}) as store:
        ranking = rank(Results(store), "Fastest", trust=True)
    assert ranking.table["label"].tolist()[0] == label("a1a1a1a1a1a1a1a1")


#: A ranking a stranger stored: its support code, and a type declaration (evaluated when parsed), write a file.
HOSTILE = """
import pathlib
pathlib.Path({marker!r}).with_suffix(".support").write_text("ran")

class Sneaky(SailType):
    written = __import__("pathlib").Path({marker!r}).with_suffix(".declaration").write_text("ran")

@RankingDefinition
def Fastest(r):
    pathlib.Path({marker!r}).with_suffix(".ranking").write_text("ran")
    return r.WallTime
"""


def test_a_stored_ranking_is_never_run_without_trust(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    text = HOSTILE.format(marker=str(marker))
    digest = hashlib.sha256(text.encode()).hexdigest()
    with build_store(tmp_path / "shared.db", sources={digest: ("rankings.py", text)}) as store:
        results = Results(store)
        with pytest.raises(ValueError, match=r"rank: the ranking 'Fastest' is code stored in shared\.db; running it "
                                             r"would execute that code\. fix: pass repository=\.\.\. \(the modules "
                                             r"you loaded or wrote\) or trust=True if you trust the file"):
            rank(results, "Fastest")
        with pytest.raises(ValueError, match=r"no ranking module 'Slowest' \(rankings stored in shared\.db: "
                                             r"Fastest; built in: 'pareto'\)"):
            rank(results, "Slowest")
        assert list(tmp_path.glob("marker*")) == []  # nothing of the stored code ran
        assert rank(results, "Fastest", trust=True).table["label"].tolist()[0] == label("a1a1a1a1a1a1a1a1")
    assert sorted(p.suffix for p in tmp_path.glob("marker*")) == [".declaration", ".ranking", ".support"]


def test_an_old_store_without_metric_info_uses_defaults(tmp_path: Path) -> None:
    with build_store(tmp_path / "old.db", metric_info=False) as store:
        fp = final_points(Results(store))
        # Without metric_info both metrics count as precision: the work axis falls back to ElapsedMilliseconds.
        assert rank(Results(store), "pareto").name == "Pareto(ElapsedMilliseconds, CriticalLoss)"
    assert fp.attrs["metric_info"]["WallTime"] == {"axis": "precision", "better": "lower", "unit": None}
