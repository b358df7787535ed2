"""The checking pass: walk a model graph, infer every step's type and shape, count parameters.

:func:`check` follows the type that flows into each node (the *current* type), records one
:class:`CheckedStep` per node and fails with a :class:`GraphError` that names the bad layer,
the type it got and what to write instead. Conversions are not resolved here: the planner
passes a ``convert`` callback, so this module needs neither the planner nor any ML library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._errors import GraphError
from ._graph import (
    Array,
    ConvertNode,
    Node,
    Pipeline,
    Sum,
)
from ._layers import SHAPE_PRESERVING, Want, collection, layer_rule, like, unknown
from ._types import (
    AnyType,
    SailType,
    as_type,
    substitute,
    unify,
)

#: ``convert(actual_source, target) -> (produced type, label)``; raises GraphError when impossible.
ConvertFn = Callable[[SailType, SailType], tuple[SailType, str]]


@dataclass(frozen=True)
class CheckedStep:
    """One node of a checked graph.

    Parameters
    ----------
    path : str
        Position in the tree: ``"0"``, ``"1"``, ``"2.0"`` (child 0 of step 2); ``""`` for a
        root that is not a pipeline.
    depth : int
        Nesting depth (the root pipeline's steps are at depth 0).
    node : Node
        The node itself.
    input, output : SailType
        The type flowing in and the type it produces.
    parameters : int or None
        The node's own trainable parameters: ``0`` for parameter-free layers and for
        containers (their children carry the counts), ``None`` when unknown.
    note : str
        Extra information, e.g. the conversion label or how a width was inferred.
    """

    path: str
    depth: int
    node: Node
    input: SailType
    output: SailType
    parameters: int | None
    note: str = ""


@dataclass(frozen=True)
class CheckedGraph:
    """A graph whose every step has been typed.

    Parameters
    ----------
    root : Node
        The graph as the model built it.
    input : SailType
        The type the graph was checked from.
    output : SailType
        The type the graph produces (after unification with the expected output).
    steps : tuple of CheckedStep
        Every node visited, parents before children, in order.
    parameters : int or None
        Sum of the steps' parameters; ``None`` if any step's count is unknown.
    """

    root: Node
    input: SailType
    output: SailType
    steps: tuple[CheckedStep, ...]
    parameters: int | None




def check(graph: Node, input: SailType, output: SailType, *, convert: ConvertFn) -> CheckedGraph:
    """Type-check ``graph`` from ``input`` to ``output`` and infer every step's shape.

    Parameters
    ----------
    graph : Node
        The model graph (usually a :class:`Pipeline`).
    input, output : SailType
        The type the task feeds in and the type it needs out (bare classes are accepted).
    convert : ConvertFn
        Resolves a ``Convert`` node: ``convert(actual_source, target)`` returns the produced
        type and a short label, or raises :class:`GraphError`.

    Returns
    -------
    CheckedGraph

    Raises
    ------
    GraphError
        When a layer gets a type it cannot take, a width is not a number or cannot be
        inferred, or the graph does not produce ``output``.
    """
    source, target = as_type(input), as_type(output)
    checker = _Checker(convert)
    if isinstance(graph, Pipeline):
        # The root pipeline is the model itself, not a step: its steps sit at depth 0.
        result = checker.pipeline(graph.steps, source, target, "", 0)
    else:
        result = checker.visit(graph, source, target, "", 0)
    steps = tuple(s for s in checker.steps if s is not None)
    if isinstance(result, AnyType):
        # A native model's type is unknown statically: trust the task's type.
        produced: SailType = target
    else:
        bindings = unify(target, result)
        if bindings is None:
            raise GraphError(
                f"the model produces {result!r}, but the task needs {target!r}",
                fix="end the pipeline with Convert(Tensor, outputType) "
                "or a layer of the right width",
            )
        produced = substitute(result, bindings)
    counts = [s.parameters for s in steps]
    total = None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    return CheckedGraph(graph, source, produced, steps, total)


# -- helpers ----------------------------------------------------------------------------


_KEEPS_SHAPE = (*SHAPE_PRESERVING, ConvertNode)


def _join(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _element(of: SailType, needs: str, fix: str) -> SailType:
    """The element type of the collection ``of``; a :class:`GraphError` saying what the layer ``needs`` otherwise."""
    element = of.ElementType if collection(of) else None
    if element is None:
        raise GraphError(f"{needs}, got {of!r}", fix=fix)
    return element


# -- the walk over containers -------------------------------------------------------------


class _Checker:
    """Walks the graph, recording steps; containers and conversions are handled here."""

    def __init__(self, convert: ConvertFn) -> None:
        self.convert = convert
        # A parent is recorded before its children, but its output is only known after
        # them: its slot is reserved (None) and filled in afterwards.
        self.steps: list[CheckedStep | None] = []

    def visit(
        self, node: Node, current: SailType, expected: Want, path: str, depth: int
    ) -> SailType:
        """Check ``node`` on ``current``, record it, and return its output type.

        ``expected`` is the type this node's output must end up as when only shape-preserving
        steps follow it (``None`` when unknown); ``Linear()`` takes its width from it.
        """
        slot = len(self.steps)
        self.steps.append(None)
        parameters: int | None = 0
        note = ""
        if isinstance(node, Pipeline):
            out = self.pipeline(node.steps, current, expected, path, depth + 1)
        elif isinstance(node, Array):
            out = self._array(node, current, expected, path, depth)
        elif isinstance(node, Sum):
            out = self._sum(node, current, expected, path, depth)
        elif isinstance(node, ConvertNode):
            out, note = self._convert(node, current)
        else:
            layer = layer_rule(type(node))  # type: ignore[arg-type]
            if layer is None:
                raise GraphError(
                    f"{type(node).__name__} is not a layer SAIL can check",
                    fix="use SAIL's layers (Linear, Relu, Conv2d, ...) or wrap a native model "
                    "in TorchModule/JaxModel",
                )
            out, parameters, note = layer(node, current, expected)
        self.steps[slot] = CheckedStep(path, depth, node, current, out, parameters, note)
        return out

    def pipeline(
        self, steps: tuple[Node, ...], current: SailType, expected: Want, path: str, depth: int
    ) -> SailType:
        """Chain ``steps``; ``expected`` reaches a step only if the rest keep its shape."""
        # Step i sees ``expected`` only when every later step keeps the shape: one pass
        # from the end finds the first step after which that holds.
        first_kept = len(steps)
        while first_kept > 0 and isinstance(steps[first_kept - 1], _KEEPS_SHAPE):
            first_kept -= 1
        for i, step in enumerate(steps):
            keeps = i >= first_kept - 1
            current = self.visit(step, current, expected if keeps else None, _join(path, i), depth)
        return current

    def _array(
        self, node: Array, current: SailType, expected: Want, path: str, depth: int
    ) -> SailType:
        child = _join(path, 0)
        if unknown(current):
            self.visit(node.m, AnyType(), None, child, depth + 1)
            return AnyType()
        element = _element(current, "Array needs a Set or List input",
                           fix="give Array a collection, e.g. Convert(inputType, Set[Atom]) before it")
        size = current.Size
        if isinstance(node.size, int) and not isinstance(node.size, bool):
            if size is not None and size != node.size:
                raise GraphError(
                    f"Array(size={node.size}) gets {current!r} with {size} elements",
                    fix="drop size= or make it match the input",
                )
            size = node.size
        inner = expected.ElementType if expected is not None and collection(expected) else None
        return like(current, self.visit(node.m, element, inner, child, depth + 1), size)

    def _sum(
        self, node: Sum, current: SailType, expected: Want, path: str, depth: int
    ) -> SailType:
        result = current
        if node.x is not None:
            # Sum(x) yields x's element type, so x must produce a collection of `expected`.
            inner = None
            if expected is not None and collection(current):
                inner = like(current, expected, current.Size)
            result = self.visit(node.x, current, inner, _join(path, 0), depth + 1)
        if unknown(result):
            return AnyType()
        return _element(result, "Sum needs a collection (Set or List)", fix="wrap the element model in Array(m) first")

    def _convert(self, node: ConvertNode, current: SailType) -> tuple[SailType, str]:
        bindings = unify(node.source, current)
        if bindings is None:
            raise GraphError(
                f"Convert({node.source!r}, {node.target!r}) gets {current!r}, "
                f"which is not a {node.source!r}",
                location=node.site,
                fix=f"convert from the type that flows in: Convert({current!r}, {node.target!r})",
            )
        try:
            return self.convert(current, substitute(node.target, bindings))
        except GraphError as err:
            # The planner does not know where the Convert was written; we do.
            if err.location is not None or node.site is None:
                raise
            raise GraphError(err.what, module=err.module, location=node.site, fix=err.fix) from err
