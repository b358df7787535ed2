"""Code a results store kept: the sources its scenarios ran, read as syntax only unless the caller trusts the file.

A store keeps the text of every module and support source its scenarios used, so that a
ranking module can be found without the notebook that wrote it. That text is a program:
a store file may come from anyone, so reading it here never runs it (``ast`` only), and
:func:`stored_repository`, which does (parsing evaluates type declarations, ranking
runs the functions), is only called when the user passed ``trust=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..repository import Repository
    from ._results import Results


def stored_texts(results: Results) -> list[tuple[str, str]]:
    """``(origin, text)`` of the sources the store kept for the scenarios in view, oldest first."""
    from ._results import _decode

    where, params = results._where("s")
    _, rows = results.store._query(f"SELECT s.sources FROM scenarios s {where}", params)
    wanted = {str(digest) for (text,) in rows for digest in (_decode(results.store, "scenarios.sources", text) or [])}
    _, sources = results.store._query("SELECT digest, origin, text FROM sources ORDER BY rowid")
    return [(str(origin), str(text)) for digest, origin, text in sources if digest in wanted]


def stored_rankings(results: Results) -> list[str]:
    """The ranking modules' names in the stored sources, read as syntax only (nothing is run)."""
    import ast

    from ..sail import decorator_name

    names: list[str] = []
    for _, text in stored_texts(results):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and "RankingDefinition" in map(decorator_name, node.decorator_list):
                names.append(node.name)
    return list(dict.fromkeys(names))


def stored_repository(results: Results) -> Repository:
    """The sources the store kept for the scenarios in view, as a repository (the newest text of each origin).

    Parsing runs the sources' type declarations, and ranking runs the functions: only
    called when the user passed ``trust=True``.
    """
    from ..repository import Repository

    repo = Repository()
    for origin, text in stored_texts(results):
        repo.add_source(text, origin)
    return repo
