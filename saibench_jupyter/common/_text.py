"""Short texts users type or read: ``KEY=VALUE`` words, literal values, docstring summaries.

Shared by the layers that read what a user typed (``ui``'s magics and selectors, the
``saibench`` command) and that show modules' docstrings, below all of them: one
reading of ``epochs=3`` and of a docstring's summary wherever they appear.
"""

from __future__ import annotations

import ast
from typing import Any


def literal(text: str) -> Any:
    """``text`` read as a Python literal (``128``, ``0.5``, ``'a'``, ``[1, 2]``), or ``text`` itself.

    A bare word that is no literal (``mode=fast``) is the string it spells.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def assignment(word: str) -> tuple[str, Any] | None:
    """``("epochs", 3)`` for the word ``epochs=3`` (the value read by :func:`literal`).

    Returns
    -------
    tuple of (str, object) or None
        None when the word has no ``=`` or nothing before it: the caller says what to write.
    """
    key, sep, value = word.partition("=")
    if not sep or not key:
        return None
    return key, literal(value)


def doc_summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line (empty for a module without one)."""
    first = (doc or "").strip().split("\n\n", 1)[0]
    return " ".join(first.split())
