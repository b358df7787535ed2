"""The SAIL fuzzer (``tests/sail_fuzz.py``): mutated sources never crash, hang or fail without a line and a fix.

100 cases run by default; the full 1,200 are marked ``slow`` (``python -m pytest -m slow``).
Run ``python tests/sail_fuzz.py [N [SEED]]`` for the counts by result and examples of each finding.
"""

from __future__ import annotations

import pytest
from sail_fuzz import CATEGORIES, MUTATIONS, Case, Report, _escaped, cases, fuzz, run

QUICK, FULL = 100, 1200


@pytest.fixture(scope="module")
def quick() -> Report:
    return fuzz(QUICK)


@pytest.fixture(scope="module")
def full() -> Report:
    return fuzz(FULL)


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_quick_fuzz_finds_no(quick: Report, category: str) -> None:
    assert len(quick.outcomes) == QUICK
    assert not quick.findings(category), quick.describe(category)


@pytest.mark.slow
@pytest.mark.parametrize("category", list(CATEGORIES))
def test_full_fuzz_finds_no(full: Report, category: str) -> None:
    assert len(full.outcomes) == FULL
    assert not full.findings(category), full.describe(category)


def test_cases_are_seeded_cover_every_mutation_and_the_quick_run_is_a_prefix_of_the_full_one() -> None:
    first = cases(QUICK)
    assert first == cases(QUICK)
    assert {c.mutation for c in first} == set(MUTATIONS)
    assert first == cases(2 * QUICK)[:QUICK]
    assert cases(QUICK, seed=16) != first
    assert all(c.text for c in first)


def test_most_cases_still_get_through_to_discovery_or_a_rejection(quick: Report) -> None:
    # A fuzzer whose every case fails to parse would test only the parser's first line.
    counts = quick.counts()
    assert counts.get("registered", 0) >= QUICK // 5 and counts.get("rejected", 0) >= QUICK // 5, counts


def test_a_case_past_its_time_bound_is_a_hang_and_the_next_case_runs_in_a_fresh_worker() -> None:
    slow, fine = Case(0, "a.py", "none", "x = 1\n"), Case(1, "b.py", "none", "y = 2\n")
    first, second = run([slow, fine], timeout=0.0)  # no worker answers within no time at all
    assert first.result == "hang" and "no answer within 0 s" in first.detail
    assert second.result in ("hang", "registered")
    (alone,) = run([fine], timeout=60)
    assert alone.result == "registered"


def test_escaping_exceptions_are_told_apart() -> None:
    assert _escaped(SystemExit(3), "discover")[0] == "system-exit"
    assert _escaped(KeyboardInterrupt(), "add_source")[0] == "base-exception"
    surrogate = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
    assert _escaped(surrogate, "add_source")[0] == "surrogate"
    assert _escaped(RecursionError("deep"), "add_source") == ("crash", "add_source: RecursionError: 'deep'")
