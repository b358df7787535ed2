"""Ranking signatures: one or two scenarios, then the ranking's own parameters, each with a default."""

from __future__ import annotations

import pytest
from test_sail_parser import parse_one, parse_src

from saibench_jupyter.sail._errors import SailSyntaxError


def test_a_ranking_takes_parameters_with_defaults_after_its_scenarios() -> None:
    score = parse_one(
        """
        @RankingDefinition
        def TimeToTarget(r, metric="Accuracy", target=0.95):
            return r[metric]
        """
    )
    assert score.params == ("r", "metric", "target") and score.defaults == frozenset({"metric", "target"})
    comparison = parse_one(
        """
        @RankingDefinition
        def Within(a, b, slack=0.0):
            return a.WallTime <= b.WallTime + slack
        """
    )
    assert comparison.params == ("a", "b", "slack") and comparison.defaults == frozenset({"slack"})


def test_a_parameter_without_default_after_the_two_scenarios_is_refused() -> None:
    with pytest.raises(SailSyntaxError, match=r"^ranking R\(a, b, target\) has the wrong parameters: target has no "
                                              r"default \(after the one or two scenarios come the ranking's own "
                                              r"parameters, each with a default: name=value\)") as info:
        parse_src(
            """
            @RankingDefinition
            def R(a, b, target):
                return a
            """
        )
    assert info.value.fix == "a ranking module is written R(result) for a score or (a, b) for a comparison"


def test_a_ranking_whose_every_parameter_has_a_default_has_no_scenario() -> None:
    with pytest.raises(SailSyntaxError, match=r"^ranking R\(r, target\) has the wrong parameters: its first "
                                              r"parameter, r, is the scenario it reads and takes no default"):
        parse_src(
            """
            @RankingDefinition
            def R(r=None, target=0.9):
                return r
            """
        )

