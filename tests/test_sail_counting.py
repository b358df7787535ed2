"""``Count(name, n)`` adds to the innermost tally the runtime opens; outside one it does nothing."""

from __future__ import annotations

import pytest

from saibench_jupyter.sail import Count, SailError, sum_counts, tally_now, tallying


def test_count_outside_a_run_does_nothing() -> None:
    Count("fevals", 3)
    assert tally_now() == {}


def test_counts_go_to_the_innermost_tally_and_to_the_enclosing_ones() -> None:
    with tallying() as outer:
        Count("fevals", 2)
        with tallying() as inner:
            Count("fevals")
            Count("solves", 0.5)
            assert tally_now() == {"fevals": 1.0, "solves": 0.5}
        assert inner == {"fevals": 1.0, "solves": 0.5}
    assert outer == {"fevals": 3.0, "solves": 0.5}


@pytest.mark.parametrize(("name", "message"), [
    ("ElapsedMilliseconds", r"ElapsedMilliseconds is a built-in counter"),
    ("two words", r"a counter's name is an identifier"),
    (3, r"a counter's name is an identifier"),
])
def test_a_counter_needs_a_name_of_its_own(name: object, message: str) -> None:
    with pytest.raises(SailError, match=message):
        Count(name, 1)  # type: ignore[arg-type]


def test_sum_counts_adds_key_by_key() -> None:
    assert sum_counts([{"a": 1.0}, {"a": 2.0, "b": 1.0}, {}]) == {"a": 3.0, "b": 1.0}
