"""The results package's shape: its modules import one another without a cycle (front doors: test_architecture.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import saibench_jupyter.results

PACKAGE = Path(saibench_jupyter.results.__file__).parent


def _executed_imports(path: Path) -> list[ast.ImportFrom]:
    """Relative imports Python runs (at module level or in a function), not those under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                   and node.test.id == "TYPE_CHECKING" for n in ast.walk(node)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level and id(n) not in typing_only]


def test_the_results_modules_import_one_another_without_a_cycle() -> None:
    graph = nx.DiGraph()
    for path in PACKAGE.glob("*.py"):
        for node in _executed_imports(path):
            if node.level == 1:
                for target in [node.module] if node.module else [a.name for a in node.names]:
                    graph.add_edge(path.stem, target.split(".")[0])
    assert {"_pareto", "_rankings", "_target"} <= set(graph)
    assert list(nx.simple_cycles(graph)) == []
