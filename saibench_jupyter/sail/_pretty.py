"""Text renderings of model graphs: a constructor-form tree, or a typed table of checked steps."""

from __future__ import annotations

import dataclasses
import types as _pytypes
from typing import Any as _Any

from ._check import CheckedGraph, CheckedStep
from ._graph import (
    Array,
    Conv2d,
    ConvertNode,
    Dropout,
    Linear,
    MaxPool2d,
    Native,
    Node,
    Pipeline,
    Softmax,
    SubModel,
    Sum,
)

#: Longest rendering of a wrapped native object (a torch module's repr runs to many lines).
NATIVE_REPR_LIMIT = 40

_INDENT = "  "


def _short(value: _Any, limit: int = NATIVE_REPR_LIMIT) -> str:
    """A one-line, at most ``limit``-character rendering of a wrapped object."""
    if isinstance(
        value, _pytypes.FunctionType | _pytypes.BuiltinFunctionType | _pytypes.MethodType
    ):
        # "<function apply at 0x7f...>" says less than the name, and the address changes per run.
        # A function defined inside another reads best without its "outer.<locals>." prefix.
        text = value.__qualname__.rsplit("<locals>.", 1)[-1]
    else:
        text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _optional(value: _Any) -> str:
    """Constructor arguments for a size that may be left out (``None`` means "infer")."""
    return "" if value is None else repr(value)


def node_label(node: Node) -> str:
    """The one-line constructor form of ``node`` (children not included).

    Examples: ``Linear(128)``, ``Relu()``, ``Convert(Tensor(28, 28) -> Tensor)``,
    ``SubModel(encoder: Embed Tensor(4) -> Tensor(8))``. Containers (``Pipeline``,
    ``Array``, ``Sum`` with an argument) show only their name; their children go below them.
    """
    name = type(node).__name__
    if isinstance(node, Pipeline):
        return name
    if isinstance(node, ConvertNode):
        return f"Convert({node.source!r} -> {node.target!r})"
    if isinstance(node, Linear | Softmax):
        value = node.width if isinstance(node, Linear) else node.n
        return f"{name}({_optional(value)})"
    if isinstance(node, Conv2d):
        args = [repr(node.channels), f"kernel={node.kernel!r}"]
        if node.stride != 1:
            args.append(f"stride={node.stride!r}")
        if node.padding != 0:
            args.append(f"padding={node.padding!r}")
        return f"{name}({', '.join(args)})"
    if isinstance(node, MaxPool2d):
        return f"{name}({node.k!r})"
    if isinstance(node, Dropout):
        return f"{name}({node.p!r})"
    if isinstance(node, Array):
        return name if node.size is None else f"{name}(size={node.size!r})"
    if isinstance(node, Sum):
        return name if node.x is not None else f"{name}()"
    if isinstance(node, SubModel):
        return f"{name}({node.slot}: {node.task} {node.input!r} -> {node.output!r})"
    if isinstance(node, Native):
        fields = dataclasses.fields(node)
        # The wrapped objects, then the options a model set (Solver(fn, sweep=True)).
        wrapped = [_short(getattr(node, f.name)) for f in fields if f.default is None]
        wrapped += [f"{f.name}={getattr(node, f.name)!r}" for f in fields
                    if f.default is not None and getattr(node, f.name) != f.default]
        return f"{name}({', '.join(wrapped)})"
    if dataclasses.is_dataclass(node):
        # Relu(), Flatten(), ... and node types added later: show their fields, if any.
        fields = [repr(getattr(node, f.name)) for f in dataclasses.fields(node) if f.repr]
        return f"{name}({', '.join(fields)})"
    return name


def _tree(node: Node, depth: int, lines: list[str]) -> None:
    lines.append(_INDENT * depth + node_label(node))
    for child in node.children:
        _tree(child, depth + 1, lines)


def _parameters(count: int | None) -> str:
    if count is None:
        return "?"
    return "" if count == 0 else f"{count:,}"


def _table(steps: tuple[CheckedStep, ...]) -> list[str]:
    rows = [
        (
            _INDENT * s.depth + node_label(s.node),
            f"{s.input!r} -> {s.output!r}",
            _parameters(s.parameters),
            f"[{s.note}]" if s.note else "",
        )
        for s in steps
    ]
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [
        f"{layer:<{widths[0]}}  {types:<{widths[1]}}  {count:>{widths[2]}}  {note}".rstrip()
        for layer, types, count, note in rows
    ]


def pretty(graph: Node | CheckedGraph, *, title: str | None = None) -> str:
    """Render a graph as text.

    Parameters
    ----------
    graph : Node or CheckedGraph
        A bare graph prints as an indented tree of constructor forms; a checked graph prints
        as a table: layer, ``input -> output``, parameter count (blank for none, ``?`` when
        unknown) and the step's note, then the total.
    title : str, optional
        A first line to print above the rest.

    Returns
    -------
    str
        The lines joined with newlines (no trailing newline).
    """
    lines = [] if title is None else [title]
    if isinstance(graph, CheckedGraph):
        lines.extend(_table(graph.steps))
        total = "unknown" if graph.parameters is None else f"{graph.parameters:,}"
        lines.append(f"total parameters: {total}")
    else:
        _tree(graph, 0, lines)
    return "\n".join(lines)
