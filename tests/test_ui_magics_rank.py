"""``%sail rank NAME key=value`` through a real IPython shell: a ranking module's own parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from test_ui_magics import doubling

RANKINGS = Path(__file__).resolve().parents[1] / "sail_modules" / "rankings.py"


def test_rank_overrides_a_ranking_modules_parameters_and_agrees_with_the_built_in_target(ip):
    doubling(ip, "ok", "nap")  # two scenarios: the napping one costs more work for the same error
    ip.run_line_magic("sail", f"load {RANKINGS}")
    ip.run_line_magic("sail", "run --executor inline").wait(60)
    module = ip.run_line_magic("sail", "rank TimeToTarget metric=Error target=0.5 higher=False")
    assert module.name == "TimeToTarget(metric='Error', target=0.5, higher=False)"
    built_in = ip.run_line_magic("sail", "rank target Error 0.5")
    assert module.table["label"].tolist() == built_in.table["label"].tolist()
    assert module.table["level"].tolist() == built_in.table["level"].tolist()
    assert module.table["level"].notna().all()  # both reach an error of 0.5
    assert module.table["score"].tolist() == pytest.approx(built_in.table["score"].tolist())
    # A target nobody reaches: no level for anyone, and each scenario still listed.
    never = ip.run_line_magic("sail", "rank TimeToTarget metric=Error target=-1.0 higher=False")
    assert never.table["status"].tolist() == ["no value", "no value"]


def test_rank_parameters_that_do_not_fit_say_the_fix(ip):
    doubling(ip, "ok")
    ip.run_line_magic("sail", f"load {RANKINGS}")
    ip.run_line_magic("sail", "run --executor inline").wait(60)
    with pytest.raises(UsageError, match=r"%sail rank: ranking TimeToTarget has no parameter 'targt' .*did you "
                                         r"mean target\?\n  fix: %sail rank TimeToTarget target=VALUE"):
        ip.run_line_magic("sail", "rank TimeToTarget targt=0.9")
    with pytest.raises(UsageError, match=r"ranking TimeToTarget: target='high' is a str, but its default 0\.95 is a "
                                         r"float\n  fix: pass a number, e.g\. target=0\.95"):
        ip.run_line_magic("sail", "rank TimeToTarget target=high")
    with pytest.raises(UsageError, match=r"%sail rank pareto target=0\.9: parameters are for a ranking module's own "
                                         r"parameters\n  fix: %sail rank NAME target=0\.9, NAME one of "
                                         r"ParetoAccuracy, ParetoCriticalLoss, FastestToAccuracy, TimeToTarget"):
        ip.run_line_magic("sail", "rank pareto target=0.9")
    with pytest.raises(UsageError, match=r"%sail rank TimeToTarget =0\.9: write KEY=VALUE, e\.g\. target=0\.9"):
        ip.run_line_magic("sail", "rank TimeToTarget =0.9")
