"""The package's shape: one front door per package, unique module and class names (the layers: `lint-imports`)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import saibench_jupyter

ROOT = Path(saibench_jupyter.__file__).parent
SOURCES = sorted(p for p in ROOT.rglob("*.py") if "examples" not in p.relative_to(ROOT).parts)


def _package(path: Path) -> str:
    """The top-level package a file belongs to (``sail``), or the module itself (``cli``, ``repository``)."""
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imported(path: Path, node: ast.ImportFrom) -> list[list[str]]:
    """The dotted paths inside saibench_jupyter that ``node`` imports from, one per imported module."""
    if node.level == 0:
        if not (node.module or "").startswith("saibench_jupyter."):
            return []
        return [node.module.split(".")[1:]]
    here = list(path.relative_to(ROOT).parts[:-1])
    base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
    if node.module:
        return [base + node.module.split(".")]
    return [[*base, alias.name] for alias in node.names]


def test_no_package_imports_another_packages_private_module() -> None:
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                for parts in _imported(path, node):
                    if parts and parts[0] != _package(path) and any(p.startswith("_") for p in parts):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {'.'.join(parts)}")
    assert offenders == [], "use the package's __init__ (export the name there):\n" + "\n".join(offenders)


def test_no_two_modules_share_a_name() -> None:
    names = Counter(p.name for p in SOURCES if p.name != "__init__.py")
    assert [n for n, k in names.items() if k > 1] == []


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = {}
    for path in SOURCES:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert {name: files for name, files in where.items() if len(files) > 1} == {}
