"""The parser's one walk over each statement, and the rewrites SAIL makes in a module's tree.

Every check of the parser reads the node lists :func:`walk` makes, once per top-level
statement: one ``ast.walk`` per check and module made parsing a large source several
times slower. :func:`rewrite` uses the parents it records to rewrite in place.
"""

from __future__ import annotations

import ast
from typing import Any

CAPABILITY_CALLS = frozenset({"Require", "Provides"})


#: A subtree as :func:`walk` lists it: its nodes, and the parent of each (None for the root).
Walk = tuple[list[ast.AST], list[ast.AST | None]]


def walk(root: ast.AST) -> Walk:
    """``root`` and every node below it in ``ast.walk``'s order, with their parents."""
    out: list[ast.AST] = [root]
    parents: list[ast.AST | None] = [None]
    i = 0
    while i < len(out):
        node = out[i]
        i += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                out.append(value)
                parents.append(node)
            elif isinstance(value, list):
                # Not every list holds nodes: Global.names holds str, Dict.keys may hold None.
                n = len(out)
                out.extend(v for v in value if isinstance(v, ast.AST))
                parents.extend([node] * (len(out) - n))
    return out, parents


def _rewritten(node: ast.expr, known: frozenset[str]) -> ast.expr | None:
    """What SAIL puts in place of ``node``, or None to keep it.

    List displays become ``__sail_list__([...])`` (a :class:`SailList`); a bare capability
    name in ``Require``/``Provides`` becomes ``Capability.named("Name")``. The new nodes
    take ``node``'s position (so no fix_missing_locations pass over the whole tree).
    """
    at: dict[str, Any] = {"lineno": node.lineno, "col_offset": node.col_offset,
          "end_lineno": node.end_lineno, "end_col_offset": node.end_col_offset}
    if isinstance(node, ast.ListComp) or (isinstance(node, ast.List) and isinstance(node.ctx, ast.Load)):
        return ast.Call(ast.Name("__sail_list__", ast.Load(), **at), [node], [], **at)
    if isinstance(node, ast.Name) and node.id not in known:
        named = ast.Attribute(ast.Name("Capability", ast.Load(), **at), "named", ast.Load(), **at)
        return ast.Call(named, [ast.Constant(node.id, **at)], [], **at)
    return None


def rewrite(walked: Walk, fn: ast.FunctionDef, bare: ast.FunctionDef, known: frozenset[str]) -> None:
    """Rewrite, in place, what SAIL changes in the module ``fn`` (compiled as ``bare``).

    ``walked`` is ``walk(fn)``: its parents say where each list display sits, so only the
    displays and capability calls are visited, not every node.
    """
    nodes, parents = walked
    for node, parent in zip(nodes, parents):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CAPABILITY_CALLS \
                and node.args and isinstance(node.args[0], ast.Name):
            node.args[0] = _rewritten(node.args[0], known) or node.args[0]
        if parent is None or not isinstance(node, ast.List | ast.ListComp):
            continue
        new = _rewritten(node, known)
        if new is None:
            continue
        # bare shares fn's fields, except that a field set on it is its own.
        holder = bare if parent is fn else parent
        for name in holder._fields:
            value = getattr(holder, name, None)
            if value is node:
                setattr(holder, name, new)
            elif isinstance(value, list):
                for i, child in enumerate(value):
                    if child is node:
                        value[i] = new
