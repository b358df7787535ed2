"""The SAIL parser at its limits: large sources, deep nesting, errors Python finds only when compiling."""

from __future__ import annotations

import symtable
import sys
import textwrap
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from saibench_jupyter import Repository
from saibench_jupyter.sail._errors import SailSyntaxError
from saibench_jupyter.sail._namespace import namespace


def modules(n: int) -> str:
    """A source of ``n`` small models, each with a nested scope (a lambda)."""
    return "".join(textwrap.dedent(f"""
        @ModelDefinition
        def M{i}(task, inputType, outputType):
            key = lambda v: v
            return Pipeline([Linear(key(4)), Relu()])
        """) for i in range(n))


# -- size -----------------------------------------------------------------------------
def test_symbol_table_scopes_are_listed_once_per_source_not_once_per_module(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Listing a symbol table's children builds a wrapper per child: asking the top-level
    # table once per module made add_source quadratic (5,000 modules did not finish).
    listed = []
    original = symtable.SymbolTable.get_children

    def counting(self: symtable.SymbolTable) -> list[Any]:
        children = original(self)
        listed.append(len(children))
        return children

    monkeypatch.setattr(symtable.SymbolTable, "get_children", counting)
    n = 200
    records = Repository().add_source(modules(n), "many.py")
    assert len(records) == n
    # n top-level scopes once, then each module's lambda and the lambda's (empty) children.
    assert sum(listed) <= 2 * n + 1, f"{sum(listed)} scopes listed for {n} modules"


def test_rewritten_lists_keep_the_lines_of_their_elements() -> None:
    # Lists become __sail_list__([...]) calls: the new nodes take the list's position,
    # the elements keep theirs, so a failure inside a multi-line list names its own line.
    (record,) = Repository().add_source(textwrap.dedent("""
        @ModelDefinition
        def M(task, inputType, outputType):
            return Pipeline([
                Linear(4),
                1 / 0,
            ])
        """), "lines.py")
    ns = namespace()
    exec(record.code, ns)
    with pytest.raises(ZeroDivisionError) as info:
        ns["M"](None, None, None)
    assert traceback.extract_tb(info.tb)[-1].lineno == 6


# -- errors Python finds after parsing -------------------------------------------------
@pytest.mark.parametrize("body, what, line", [
    ("    global width\n", "name 'width' is parameter and global", 4),
    ("    break\n", "'break' outside loop", 4),
    ("    await width\n", "'await' outside async function", 4),
    ("    return [(yield x) for x in width]\n", "'yield' inside list comprehension", 4),
], ids=["global-parameter", "break", "await", "yield-in-comprehension"])
def test_errors_of_the_symbol_table_and_compiler_are_sail_syntax_errors(body: str, what: str, line: int) -> None:
    text = "x = 1\n@ModelDefinition\ndef M(task, inputType, outputType, width):\n" + body
    with pytest.raises(SailSyntaxError, match=f"^invalid Python: {what}; nothing from this source") as info:
        Repository().add_source(text, "late.py")
    assert info.value.location is not None and info.value.location.line == line
    assert info.value.fix == "correct the Python syntax at the marked position"


def test_nonlocal_at_the_top_level_is_a_sail_syntax_error() -> None:
    with pytest.raises(SailSyntaxError, match="nonlocal declaration not allowed at module level") as info:
        Repository().add_source("y = 2\nnonlocal z\n", "top.py")
    assert info.value.location is not None and info.value.location.line == 2


# -- depth ----------------------------------------------------------------------------
@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    # Libraries that other tests import (JAX, PyTorch) raise the interpreter's recursion
    # limit; what is "too deep" is pinned here to Python's default.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("expression, why", [
    ("1" + "+1" * 1500, "parses, but ast.dump (the digest) recurses too deep"),
    ("1" + "+1" * 5000, "the parser recurses too deep (RecursionError)"),
    ("-" * 100_000 + "1", "the parser's stack overflows (a bare MemoryError)"),
], ids=["dump", "parser-recursion", "parser-stack"])
def test_too_deeply_nested_expression_is_rejected_at_its_line(expression: str, why: str,
                                                              default_recursion_limit: None) -> None:
    text = textwrap.dedent("""
        LIMIT = 3

        @MetricDefinition
        def Deep():
            total = 0
            return {expression}
        """).format(expression=expression)
    with pytest.raises(SailSyntaxError, match=r"^this expression is nested too deeply for Python") as info:
        Repository().add_source(text, "deep.py")
    assert info.value.location is not None and info.value.location.line == 7, why
    assert info.value.fix is not None and info.value.fix.startswith("split it")


def test_too_deep_expression_in_a_block_header_is_found(default_recursion_limit: None) -> None:
    text = "@MetricDefinition\ndef Deep():\n    if 1" + "+1" * 5000 + ":\n        return 1\n    return 0\n"
    with pytest.raises(SailSyntaxError, match="nested too deeply") as info:
        Repository().add_source(text, "header.py")
    assert info.value.location is not None and info.value.location.line == 3


def test_unhashable_decorator_option_is_a_literal_error() -> None:
    with pytest.raises(SailSyntaxError, match=r"@MetricDefinition\(axis=\.\.\.\) must be a literal value"):
        Repository().add_source("@MetricDefinition(axis={[]: 1})\ndef M():\n    return 1\n", "opt.py")
