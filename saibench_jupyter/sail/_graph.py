"""The model graph IR: small, frozen, typed nodes built by SAIL's declarative methods.

A model function returns a tree of these nodes (``Pipeline([Linear(128), Relu()])``).
Nothing here computes: :mod:`._check` infers shapes and types, :mod:`._pretty`
prints, and the backends (PyTorch, JAX) lower the checked graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any as _Any
from typing import ClassVar

from ._errors import Location
from ._types import SailType, as_type


class Node:
    """Base of every graph node."""

    __slots__ = ()

    @property
    def children(self) -> tuple[Node, ...]:
        """Sub-graphs of this node (empty for a leaf layer)."""
        return ()


def as_node(value: _Any) -> Node:
    """Accept what a model may put in a ``Pipeline``: a node, or a node class (``id``, ``Relu``)."""
    if isinstance(value, Node):
        return value
    if isinstance(value, type) and issubclass(value, Node):
        return value()
    raise TypeError(
        f"{value!r} is not a model building block; use Linear(...), Relu(), ..., "
        "a sub-model from Require(Model, ...), or a native wrapper such as TorchModule(m)"
    )


def _dims(value: _Any) -> _Any:
    # Linear(outputType.dims) passes a tuple: keep it, the checker multiplies it out.
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, eq=False)
class Linear(Node):
    """Fully connected layer to ``width`` outputs (a size, a dims tuple, or ``None`` to infer)."""

    width: _Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", _dims(self.width))


@dataclass(frozen=True)
class Relu(Node):
    """Rectified linear unit."""


@dataclass(frozen=True)
class Tanh(Node):
    """Hyperbolic tangent."""


@dataclass(frozen=True)
class Sigmoid(Node):
    """Logistic sigmoid."""


@dataclass(frozen=True, eq=False)
class Softmax(Node):
    """Softmax over ``n`` classes (``None``: whatever the input has)."""

    n: _Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _dims(self.n))


@dataclass(frozen=True, eq=False)
class Conv2d(Node):
    """2-D convolution to ``channels`` feature maps with a square ``kernel``."""

    channels: _Any
    kernel: _Any = 3
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True, eq=False)
class MaxPool2d(Node):
    """2-D max pooling with a square window ``k`` (stride ``k``)."""

    k: _Any = 2


@dataclass(frozen=True)
class Flatten(Node):
    """Reshape to a flat tensor."""


@dataclass(frozen=True, eq=False)
class Dropout(Node):
    """Dropout with probability ``p`` (active during training only)."""

    p: _Any = 0.5


@dataclass(frozen=True)
class Identity(Node):
    """Pass the input through unchanged (SAIL also spells it ``id``)."""


@dataclass(frozen=True, eq=False)
class Array(Node):
    """Apply one shared sub-model ``m`` to every element of a ``Set``/``List`` input."""

    m: Node
    size: _Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "m", as_node(self.m))

    @property
    def children(self) -> tuple[Node, ...]:
        return (self.m,)


@dataclass(frozen=True, eq=False)
class Sum(Node):
    """Sum the elements of a collection (``Sum(Array(m))`` is permutation invariant).

    ``Sum()`` sums the collection flowing in; ``Sum(x)`` first applies node ``x``.
    """

    x: Node | None = None

    def __post_init__(self) -> None:
        if self.x is not None:
            object.__setattr__(self, "x", as_node(self.x))

    @property
    def children(self) -> tuple[Node, ...]:
        return () if self.x is None else (self.x,)


@dataclass(frozen=True, eq=False, init=False)
class Pipeline(Node):
    """Sequential composition: ``Pipeline([a, b, c])`` or ``Pipeline(a, b, c)``."""

    steps: tuple[Node, ...]

    def __init__(self, *steps: _Any) -> None:
        if len(steps) == 1 and isinstance(steps[0], list | tuple):
            steps = tuple(steps[0])
        object.__setattr__(self, "steps", tuple(as_node(s) for s in steps))

    @property
    def children(self) -> tuple[Node, ...]:
        return self.steps


@dataclass(frozen=True, eq=False)
class ConvertNode(Node):
    """A type conversion the planner resolves through the converter graph.

    Built by ``Convert(fromType, toType)``; calling it converts a value (inside a
    converter body, ``a.map(Convert(T, Tensor))``).
    """

    source: SailType
    target: SailType
    site: Location | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", as_type(self.source))
        object.__setattr__(self, "target", as_type(self.target))

    def __call__(self, value: _Any) -> _Any:
        from ._context import current

        return current().convert_value(self, value)


@dataclass(frozen=True, eq=False)
class SubModel(Node):
    """A sub-model slot from ``Require(Model, task, inputType, outputType)``.

    ``slot`` identifies the ``Require`` call site, so two tasks of one model that reach
    the same call share the chosen sub-model and its weights (paper Fig. 8).
    """

    slot: str
    task: str
    input: SailType
    output: SailType
    site: Location | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", as_type(self.input))
        object.__setattr__(self, "output", as_type(self.output))


@dataclass(frozen=True, eq=False)
class Native(Node):
    """Base of native-model wrappers; ``backend`` names the software a wrapper needs."""

    backend: ClassVar[str] = ""


@dataclass(frozen=True, eq=False)
class TorchModule(Native):
    """A ready ``torch.nn.Module`` (PyTorch software only)."""

    module: _Any = None
    backend: ClassVar[str] = "torch"


@dataclass(frozen=True, eq=False)
class JaxModel(Native):
    """A JAX model given as ``init(rng, x) -> params`` and ``apply(params, x) -> y``."""

    init: _Any = None
    apply: _Any = None
    backend: ClassVar[str] = "jax"


@dataclass(frozen=True, eq=False)
class Estimator(Native):
    """A fit/predict object such as a scikit-learn estimator (NumPy software)."""

    obj: _Any = None
    backend: ClassVar[str] = "numpy"


@dataclass(frozen=True, eq=False)
class Solver(Native):
    """A classical method that needs no training: ``fn(x) -> y`` (NumPy software).

    ``sweep=True`` says that each ``checkpoint`` call of ``fn(x, checkpoint)`` reports a
    separate solve (a tolerance sweep): a point's work is what ``fn`` did since its previous
    call, not since its start.
    """

    fn: _Any = None
    sweep: _Any = False
    backend: ClassVar[str] = "numpy"


def takes_checkpoint(fn: _Any) -> bool:
    """Whether ``fn`` accepts a keyword argument named ``checkpoint`` (a native model reporting checkpoints)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    p = params.get("checkpoint")
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


#: Backends a declarative graph lowers to.
DECLARATIVE_BACKENDS = frozenset({"torch", "jax"})
#: Every backend a software module may provide.
ALL_BACKENDS = frozenset({"torch", "jax", "numpy"})
#: Nodes that only route data (they run wherever the rest of the graph runs).
_STRUCTURAL = (Pipeline, ConvertNode, SubModel, Identity, Array, Sum)


def walk(node: Node) -> list[Node]:
    """Every node of the graph, depth first, parents before children."""
    out: list[Node] = []
    stack = [node]
    while stack:  # iterative: dry runs walk every graph, thousands of times per discovery
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(n.children))
    return out


def backends(node: Node) -> frozenset[str]:
    """The software backends able to run ``node`` (sub-model slots not included).

    Layers need a backend that lowers them (PyTorch or JAX); a native wrapper needs its
    own; nodes that only route data run anywhere.
    """
    result = set(ALL_BACKENDS)
    for n in walk(node):
        if isinstance(n, Native):
            result &= {n.backend}
        elif not isinstance(n, _STRUCTURAL):
            result &= DECLARATIVE_BACKENDS
    return frozenset(result)


def submodels(node: Node) -> tuple[SubModel, ...]:
    """The sub-model slots of the graph, in order of appearance (each slot once)."""
    seen: dict[str, SubModel] = {}
    for n in walk(node):
        if isinstance(n, SubModel) and n.slot not in seen:
            seen[n.slot] = n
    return tuple(seen.values())


def conversions(node: Node) -> tuple[ConvertNode, ...]:
    """The ``Convert`` nodes of the graph, in order of appearance."""
    return tuple(n for n in walk(node) if isinstance(n, ConvertNode))
