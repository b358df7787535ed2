"""Where a source is nested too deeply for Python to parse or compile it.

Python's parser and compiler recurse on the syntax tree: an expression nested a few
thousand levels deep (``1+1+1+...``, ``-(-(-...))``) makes them raise ``RecursionError``
or, for the parser, a bare ``MemoryError``, which say nothing about where. This finds
the line, so the error can point at it.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize

from ._errors import Location, SailSyntaxError


def too_deep(text: str, origin: str) -> SailSyntaxError:
    """The error for a ``text`` that Python cannot parse or compile for its nesting depth."""
    line = _deepest_line(text)
    return SailSyntaxError(
        "this expression is nested too deeply for Python to parse or compile it",
        location=Location(origin, line),
        fix="split it: assign parts of it to names, or build long sums and lists with a loop",
    )


def _deepest_line(text: str) -> int:
    """The first line of the logical line whose syntax tree is deepest (1 when unknown).

    Each logical line is parsed alone (dedented; a block header gets a ``pass``), which
    keeps one line's parse bounded by that line; lines that do not parse alone (``else:``,
    decorators) are skipped.
    """
    lines = text.splitlines(keepends=True)
    best, best_depth = 0, -1
    try:
        for start, end in _logical_lines(text):
            chunk = textwrap.dedent("".join(lines[start - 1:end])).strip()
            if chunk.endswith(":"):
                chunk += " pass"
            try:
                depth = _depth(ast.parse(chunk))
            except (RecursionError, MemoryError):
                return start
            except (SyntaxError, ValueError):
                continue
            if depth > best_depth:
                best, best_depth = start, depth
    except (tokenize.TokenError, SyntaxError):
        pass
    if best:
        return best
    longest = max(range(len(lines)), key=lambda i: len(lines[i]), default=0)
    return longest + 1


def _logical_lines(text: str) -> list[tuple[int, int]]:
    """(first, last) line of every logical line of ``text``."""
    out = []
    start = None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if start is None:
            start = tok.start[0]
        if tok.type == tokenize.NEWLINE:
            out.append((start, tok.end[0]))
            start = None
    if start is not None:
        out.append((start, len(text.splitlines())))
    return out


def _depth(tree: ast.AST) -> int:
    """The depth of ``tree`` (iterative: the tree may be deeper than Python's recursion limit)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest
