"""Short texts users type or read: ``KEY=VALUE`` words, literal values, docstring summaries."""

from __future__ import annotations

import pytest

from saibench_jupyter.common import assignment, doc_summary, literal


@pytest.mark.parametrize(("text", "value"), [
    ("128", 128), ("0.5", 0.5), ("'a'", "a"), ("[1, 2]", [1, 2]), ("fast", "fast"), ("", ""), ("1 +", "1 +"),
])
def test_literal_reads_python_literals_and_keeps_bare_words(text: str, value: object) -> None:
    assert literal(text) == value


def test_assignment_splits_at_the_first_equals_sign_and_reads_the_value() -> None:
    assert assignment("MLP.hiddenSize=128") == ("MLP.hiddenSize", 128)
    assert assignment("mode=a=b") == ("mode", "a=b")
    assert assignment("epochs=") == ("epochs", "")


@pytest.mark.parametrize("word", ["epochs", "=3", ""])
def test_assignment_without_a_key_or_an_equals_sign_is_none(word: str) -> None:
    assert assignment(word) is None


def test_doc_summary_is_the_first_paragraph_on_one_line() -> None:
    assert doc_summary("  Handwritten\n    digits.\n\n    More text.\n") == "Handwritten digits."
    assert doc_summary(None) == ""
