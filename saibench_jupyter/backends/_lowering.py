"""Lowering, backend-neutral part: a checked graph becomes a tree of concrete :class:`Op` s.

Every op knows the shapes it works on, the parameters it owns (name and shape) and
where they live (its ``path``). Both backends interpret the same tree, and take their
initial weights from :func:`init_params`, which draws them with NumPy: a PyTorch and a
JAX run of one scenario start from the same numbers.

Layout of batched values (the leading axis is the batch): ``Tensor(d...)`` is
``(B, d...)``, ``Scalar`` is ``(B,)``, ``Image(h, w, c)`` is ``(B, h, w, c)``, a
``Set``/``List`` of n elements is ``(B, n, element...)``, and atoms are a mapping of
such arrays per field (``positions`` ``(B, n, 3)``, ``numbers`` ``(B, n)``); a batch of
configurations of different sizes is padded and has a ``mask`` ``(B, n)`` too (``_padding``).

Parameter paths: a model's own layers are ``role[Task]/step`` (one set per task, since
each task has its own graph); a sub-model's are ``role/slot[Task]/step``, so two tasks
of a model that reach one ``Require`` share the sub-model's weights (paper Fig. 8).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..sail import (
    Array,
    Atom,
    CheckedGraph,
    CheckedStep,
    Conv2d,
    ConvertNode,
    Dropout,
    Flatten,
    Identity,
    Image,
    Linear,
    MaxPool2d,
    Native,
    Node,
    Pipeline,
    Relu,
    SailType,
    Scalar,
    Sigmoid,
    Softmax,
    SubModel,
    Sum,
    Tanh,
    Tensor,
    substitute,
    unify,
)

#: ``resolve(source, target) -> Chain``: the planner's converter graph (``ConverterGraph.resolve``).
Resolve = Callable[[SailType, SailType], Any]

_SIMPLE = {Relu: "relu", Tanh: "tanh", Sigmoid: "sigmoid", Identity: "identity", Flatten: "flatten"}


@dataclass(frozen=True)
class ModelGraphs:
    """A model (or sub-model) ready to lower: its checked graph per task, and its sub-models.

    Parameters
    ----------
    role : str
        ``model`` for the model under test, ``model/5:8`` for the sub-model in slot 5:8.
    name : str
        The model module's name.
    graphs : mapping
        Task kind to the graph checked for it.
    submodels : mapping
        Slot (a ``Require`` call site) to the sub-model that fills it.
    """

    role: str
    name: str
    graphs: Mapping[str, CheckedGraph]
    submodels: Mapping[str, ModelGraphs] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Op:
    """One lowered node.

    ``kind`` is one of ``linear``, ``conv2d``, ``maxpool2d``, ``relu``, ``tanh``,
    ``sigmoid``, ``softmax``, ``identity``, ``flatten``, ``dropout``, ``pipeline``,
    ``array``, ``sum``, ``convert``, ``native``. ``params`` maps a parameter name (its
    full path) to its shape, PyTorch's layout (``weight`` is ``(out, in)``; a
    convolution's is ``(out, in, k, k)``).
    """

    kind: str
    path: str
    input: SailType
    output: SailType
    attrs: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[Op, ...] = ()
    params: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: a ``convert`` op's resolved chain (``planner.Chain``)
    chain: Any = None
    #: a ``native`` op's wrapper (``TorchModule``, ``JaxModel``, ...)
    native: Native | None = None

    def walk(self) -> list[Op]:
        """This op and every op below it, parents first."""
        out, stack = [], [self]
        while stack:
            op = stack.pop()
            out.append(op)
            stack.extend(reversed(op.children))
        return out


@dataclass(frozen=True, eq=False)
class LoweredTask:
    """The lowered graph of one task.

    ``final`` is ``"softmax"`` or ``"sigmoid"`` when the graph ends with that activation
    (only reshaping conversions after it); a loss on logits then skips the op at
    ``final_path``.
    """

    task: str
    root: Op
    final: str | None = None
    final_path: str | None = None


@dataclass(frozen=True, eq=False)
class LoweredModel:
    """Every task of a model, lowered, with all parameters (shared ones once)."""

    name: str
    tasks: Mapping[str, LoweredTask]
    params: Mapping[str, tuple[int, ...]]
    #: parameter name -> fan-in, for the default initialisation
    fan_in: Mapping[str, int]
    natives: tuple[Op, ...] = ()


def record_shape(t: SailType) -> tuple[int, ...]:
    """The array shape of one record of type ``t`` (no batch axis).

    Raises
    ------
    ValueError
        When a size is unknown, or ``t`` is not an array type.
    """
    if isinstance(t, Scalar):
        return ()
    if isinstance(t, Tensor | Image):
        dims = t.dims
    elif (t.IsSet or t.IsList) and t.ElementType is not None:
        dims = (t.Size, *record_shape(t.ElementType)) if not isinstance(t.ElementType, Atom) else (t.Size,)
    else:
        raise ValueError(f"{t!r} is not an array type")
    if any(d is None for d in dims):
        raise ValueError(f"{t!r} has an unknown size")
    return tuple(int(d) for d in dims)  # type: ignore[arg-type]


def is_atoms(t: SailType) -> bool:
    """True for ``Set[Atom]``/``List[Atom]`` (batched as a mapping of fields)."""
    return (t.IsSet or t.IsList) and isinstance(t.ElementType, Atom)


def lower(model: ModelGraphs, resolve: Resolve) -> LoweredModel:
    """Lower every task of ``model`` (and its sub-models) to :class:`Op` trees.

    Parameters
    ----------
    model : ModelGraphs
        The checked graphs of the model and its sub-models.
    resolve : callable
        Resolves a ``Convert`` node's conversion into a chain.
    """
    builder = _Builder(resolve)
    tasks = {}
    for task, graph in model.graphs.items():
        root = builder.graph(model, task, graph)
        final, final_path = _final(root)
        tasks[task] = LoweredTask(task, root, final, final_path)
    return LoweredModel(model.name, tasks, builder.params, builder.fan_in, tuple(builder.natives))


class _Builder:
    def __init__(self, resolve: Resolve) -> None:
        self.resolve = resolve
        self.params: dict[str, tuple[int, ...]] = {}
        self.fan_in: dict[str, int] = {}
        self.natives: list[Op] = []
        self._natives_seen: set[str] = set()

    def graph(self, model: ModelGraphs, task: str, graph: CheckedGraph) -> Op:
        steps = {s.path: s for s in graph.steps}
        scope = f"{model.role}[{task}]"
        if isinstance(graph.root, Pipeline):
            children = tuple(self.node(model, s, steps, scope) for s in _children(steps, ""))
            return Op("pipeline", scope, graph.input, graph.output, children=children)
        return self.node(model, steps[""], steps, scope)

    def node(self, model: ModelGraphs, step: CheckedStep, steps: Mapping[str, CheckedStep], scope: str) -> Op:
        n: Node = step.node
        path = f"{scope}/{step.path}" if step.path else scope
        inp, out = step.input, step.output

        def kids() -> tuple[Op, ...]:
            return tuple(self.node(model, s, steps, scope) for s in _children(steps, step.path))

        if isinstance(n, Pipeline):
            return Op("pipeline", path, inp, out, children=kids())
        if isinstance(n, Array):
            return Op("array", path, inp, out, children=kids())
        if isinstance(n, Sum):
            return Op("sum", path, inp, out, children=kids())
        if isinstance(n, ConvertNode):
            bindings = unify(n.source, inp) or {}
            chain = self.resolve(inp, substitute(n.target, bindings))
            return Op("convert", path, inp, out, {"label": step.note}, chain=chain)
        if isinstance(n, SubModel):
            sub = model.submodels[n.slot]
            graph = sub.graphs[n.task]
            root = self.graph(sub, n.task, graph)
            return Op("pipeline", path, inp, out, children=(root,))
        if isinstance(n, Native):
            op = Op("native", path, inp, out, native=n)
            self.natives.append(op)
            return op
        if isinstance(n, Linear):
            fan_in, width = _size(inp), _size(out)
            return self._with_params(Op("linear", path, inp, out, {"in": fan_in, "out": width}),
                                     {"weight": (width, fan_in), "bias": (width,)}, fan_in)
        if isinstance(n, Conv2d):
            c_in = _channels(inp)
            k = int(n.kernel)
            attrs = {"in": c_in, "out": int(n.channels), "kernel": k, "stride": int(n.stride),
                     "padding": int(n.padding), "image_input": isinstance(inp, Image)}
            return self._with_params(Op("conv2d", path, inp, out, attrs),
                                     {"weight": (int(n.channels), c_in, k, k), "bias": (int(n.channels),)},
                                     c_in * k * k)
        if isinstance(n, MaxPool2d):
            return Op("maxpool2d", path, inp, out, {"k": int(n.k), "image_input": isinstance(inp, Image)})
        if isinstance(n, Softmax):
            return Op("softmax", path, inp, out)
        if isinstance(n, Dropout):
            return Op("dropout", path, inp, out, {"p": float(n.p)})
        if type(n) in _SIMPLE:
            kind = _SIMPLE[type(n)]
            attrs = {"image_input": isinstance(inp, Image)} if kind == "flatten" else {}
            return Op(kind, path, inp, out, attrs)
        raise TypeError(f"{type(n).__name__} has no lowering")  # the checker admits no other node

    def _with_params(self, op: Op, shapes: Mapping[str, tuple[int, ...]], fan_in: int) -> Op:
        named = {f"{op.path}.{k}": v for k, v in shapes.items()}
        for name, shape in named.items():
            self.params[name] = shape
            self.fan_in[name] = fan_in
        return Op(op.kind, op.path, op.input, op.output, op.attrs, op.children, named)


def _children(steps: Mapping[str, CheckedStep], path: str) -> list[CheckedStep]:
    out: list[CheckedStep] = []
    i = 0
    while True:
        key = f"{path}.{i}" if path else str(i)
        if key not in steps:
            return out
        out.append(steps[key])
        i += 1


def _size(t: SailType) -> int:
    size = t.Size if not isinstance(t, Scalar) else 1
    if size is None:
        raise ValueError(f"cannot lower a layer on {t!r}: its size is unknown")
    return int(size)


def _channels(t: SailType) -> int:
    if isinstance(t, Image):
        c = t.channels
    elif isinstance(t, Tensor) and len(t.shape) == 3:
        c = t.shape[0]
    else:
        c = None
    if c is None:
        raise ValueError(f"cannot lower Conv2d on {t!r}: its channel count is unknown")
    return int(c)


def _final(root: Op) -> tuple[str | None, str | None]:
    """The activation a graph ends with, when only reshaping conversions follow it."""
    op = root
    while op.children and op.kind == "pipeline":
        tail = list(op.children)
        while tail and tail[-1].kind == "convert" and all(s.builtin for s in tail[-1].chain.steps):
            tail.pop()
        if not tail:
            return None, None
        op = tail[-1]
    if op.kind in ("softmax", "sigmoid"):
        return op.kind, op.path
    return None, None


def init_params(model: LoweredModel, seed: int) -> dict[str, Any]:
    """Initial weights as float32 NumPy arrays, PyTorch's default scheme, drawn per parameter.

    Each parameter has its own generator seeded by ``seed`` and the parameter's path, so
    adding a layer does not change the others' starting values.
    """
    import numpy as np

    out = {}
    for name, shape in model.params.items():
        bound = 1.0 / math.sqrt(max(model.fan_in[name], 1))
        salt = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")
        rng = np.random.default_rng([seed, salt])
        out[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return out


def loss_kind(task: str, lowered: LoweredTask) -> str:
    """The loss a task trains with: ``xent`` (on logits), ``bce`` (on logits) or ``mse``.

    Classify is cross-entropy; Segment is per-pixel cross-entropy (binary for one
    channel); Pretrain (reconstruction), Predict, Enhance and the rest are mean squared
    error.
    """
    if task == "Classify":
        return "xent"
    if task == "Segment":
        out = lowered.root.output
        one_channel = (isinstance(out, Image) and out.channels == 1) or lowered.final == "sigmoid"
        return "bce" if one_channel else "xent"
    return "mse"


def builtin_step(step: Any, x: Any, xp: Any, batched: bool = True) -> Any:
    """Apply a built-in conversion step (``flatten``, ``reshape``, ``squeeze``, ``unsqueeze``).

    ``x`` has a leading batch axis when ``batched``; ``xp`` is its array namespace.
    """
    lead = (x.shape[0],) if batched else ()
    name = step.converter
    if name == "flatten":
        return xp.reshape(x, (*lead, -1))
    if name == "reshape":
        return xp.reshape(x, (*lead, *record_shape(step.target)))
    if name == "squeeze":
        return xp.reshape(x, lead)
    if name == "unsqueeze":
        return xp.reshape(x, (*lead, 1))
    raise ValueError(f"unknown built-in conversion {name!r}")


def all_builtin(chain: Any) -> bool:
    """True when a chain only reshapes (it then runs batched, without per-record calls)."""
    return all(s.builtin for s in chain.steps)


def graphs_of(choice: Any, role: str = "model") -> ModelGraphs:
    """The :class:`ModelGraphs` of a planner ``ModelChoice`` (the graphs discovery checked).

    Discovery's graphs are complete for declarative models; native wrappers in them hold
    placeholders, so the runtime rebuilds those by running the model for real.
    """
    subs = {slot: graphs_of(sub, f"{role}/{slot}") for slot, sub in choice.submodels}
    return ModelGraphs(role, choice.name, dict(choice.graphs), subs)
