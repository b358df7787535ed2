"""PyTorch backend: the lowered :class:`._lowering.Op` trees interpreted with ``torch.nn.functional``.

Each task's tree is turned once into a chain of closures that call ``torch`` directly,
with the parameters bound in: a training step then costs what a hand-written PyTorch
loop costs (no per-batch walk of the tree, no ``nn.Module`` call machinery per layer).
All parameters live in one module, one ``Parameter`` per entry of ``model.params``, so
tasks that reach the same sub-model share its weights by name.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
from torch import nn

from ..sail import ALIASES
from ._lowering import LoweredModel, Op, all_builtin, builtin_step, init_params, loss_kind, record_shape
from ._padding import batch_mask, masked
from ._trainer import ConvertRecord, Trainer, TrainSettings, refuse_gradients, split_target

Fn = Callable[[Any], Any]
Loss = Callable[[Any, Any], torch.Tensor]

#: records per forward pass in ``predict`` (bounds memory on large test sets)
CHUNK = 4096
#: converted inputs kept on the device (each stage of a problem may bring new arrays)
CACHE_SIZE = 8

_ELEMENTWISE: dict[str, Fn] = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def _identity(x: Any) -> Any:
    return x


def _key(prefix: str, i: int, name: str) -> str:
    # ParameterDict/ModuleDict keys may not contain "."; the index keeps sanitised names unique.
    return f"{prefix}{i}_" + re.sub(r"\W", "_", name)


def _length(x: Any) -> int:
    return len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)


def _take(x: Any, index: Any) -> Any:
    return {k: v[index] for k, v in x.items()} if isinstance(x, Mapping) else x[index]


class TorchTrainer(Trainer):
    """Trains a lowered model with PyTorch (see :class:`._trainer.Trainer` for the contract).

    Parameters
    ----------
    model : LoweredModel
        The model, lowered.
    settings : TrainSettings
        Training settings (``device`` is ``"cpu"`` or ``"cuda"``).
    convert : ConvertRecord
        Applies a conversion chain with user converters to one record.
    """

    backend = "torch"

    def __init__(self, model: LoweredModel, settings: TrainSettings, convert: ConvertRecord) -> None:
        super().__init__(model, settings, convert)
        self.device = torch.device(settings.device)
        self.net = nn.Module()
        self._params = {name: nn.Parameter(torch.empty(shape, device=self.device))
                        for name, shape in model.params.items()}
        self.net.add_module("params", nn.ParameterDict(
            {_key("p", i, name): p for i, (name, p) in enumerate(self._params.items())}))
        self._natives: dict[int, nn.Module] = {}
        natives = nn.ModuleDict()
        for op in model.natives:
            module = getattr(op.native, "module", None)
            if not isinstance(module, nn.Module):
                raise TypeError(f"{op.path}: PyTorch cannot run {type(op.native).__name__}; "
                                "wrap a torch.nn.Module with TorchModule(...)")
            if id(module) not in self._natives:  # one module reached by two tasks is one set of weights
                self._natives[id(module)] = module.to(self.device)
                natives[_key("n", len(natives), op.path)] = module
        self.net.add_module("natives", natives)
        # Natives start from the weights they came with, on every reset.
        self._native_init = [(m, {k: v.detach().clone() for k, v in m.state_dict().items()})
                             for m in self._natives.values()]
        self._forwards: dict[tuple[str, str | None], Fn] = {}
        #: the mask of the batch being run (a ragged set's), read by ``sum`` ops
        self._mask: list[Any] = [None]
        self._losses: dict[str, Loss] = {}
        self._cache: OrderedDict[Any, tuple[Any, Any]] = OrderedDict()
        self._opt: torch.optim.Optimizer | None = None
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------
    def reset(self) -> None:
        """Initial weights from ``init_params`` (natives: their own), a fresh optimiser."""
        init = init_params(self.model, self.settings.seed)
        with torch.no_grad():
            for name, p in self._params.items():
                p.copy_(torch.from_numpy(init[name]))
        torch.manual_seed(self.settings.seed)  # dropout masks are drawn from torch's global generator
        for module, state in self._native_init:
            module.load_state_dict(state)
        params = list(self.net.parameters())
        lr = self.settings.learning_rate
        if not params:
            self._opt = None  # nothing to train: epochs only report the loss
        elif self.settings.optimizer == "adam":
            # The fused kernel: the same update (to float32 rounding) at a third of the
            # per-tensor loop's cost, about a quarter of a small model's epoch on a CPU.
            self._opt = torch.optim.Adam(params, lr=lr, fused=True)
        else:
            self._opt = torch.optim.SGD(params, lr=lr)

    def compile(self, task: str, x: Any, y: Any) -> None:
        """Move the data to the device and train one full and one partial batch, outside the timed
        epochs, then put back the weights, optimiser state and random generators as they were.

        First calls cost more than the others (CUDA kernels loaded, cuBLAS handles and
        allocator pools made): that belongs to no epoch. Training afterwards gives the same
        numbers as without this call.
        """
        n, size = _length(x), self.settings.batch_size
        self._cached(x)
        self._target(task, y)
        weights = self.state()
        moments = copy.deepcopy(self._opt.state_dict()) if self._opt is not None else None
        cuda = self.device.type == "cuda"
        generators = (torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if cuda else None)
        # one full batch and, when the epoch ends with one, a partial batch: both shapes run once
        self.train_epoch(task, x, y, np.arange(min(n, size + n % size)))
        self.sync()
        self.load_state(weights)
        if self._opt is not None and moments is not None:
            self._opt.load_state_dict(moments)
        self.net.zero_grad(set_to_none=True)
        torch.set_rng_state(generators[0])
        if generators[1] is not None:
            torch.cuda.set_rng_state(generators[1], self.device)

    def train_epoch(self, task: str, x: Any, y: Any, order: Any) -> float:
        """One epoch of optimiser steps over ``order`` in batches; the mean loss over records."""
        loss_fn = self._loss(task)
        xt, yt = self._cached(x), self._target(task, y)
        index = torch.as_tensor(np.asarray(order, dtype=np.int64), device=self.device)
        n, size = len(index), self.settings.batch_size
        if n == 0:
            return 0.0
        opt = self._opt
        atoms, mapped = isinstance(xt, Mapping), isinstance(yt, Mapping)
        self.net.train()
        losses = []
        for start in range(0, n, size):
            i = index[start:start + size]
            xb = {k: v[i] for k, v in xt.items()} if atoms else xt[i]
            yb = {k: v[i] for k, v in yt.items()} if mapped else yt[i]
            if opt is None:
                with torch.no_grad():
                    loss = loss_fn(xb, yb)
            else:
                loss = loss_fn(xb, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            losses.append(loss.detach())
        # Batch means weighted by batch sizes; one synchronisation per epoch, not per batch.
        sizes = torch.full((len(losses),), float(size), device=self.device)
        sizes[-1] = n - size * (len(losses) - 1)
        return float(torch.stack(losses) @ sizes) / n

    def predict(self, task: str, x: Any) -> Any:
        """Outputs for ``x`` as NumPy, in chunks of :data:`CHUNK` records."""
        forward = self._forward(task, None)
        xt = self._cached(x)
        self.net.eval()
        with torch.inference_mode():
            outs = [forward(_take(xt, slice(s, s + CHUNK))) for s in range(0, max(_length(xt), 1), CHUNK)]
            return torch.cat(outs).cpu().numpy()

    def gradients(self, task: str, x: Any, field: str | None) -> Any:
        """d(sum of outputs)/d(input) for one record (``field`` of atoms), without the batch axis."""
        xt = self._tensors(x)
        if field is None:
            leaf = xt = xt.float().requires_grad_()
        else:
            key = field if field in xt else ALIASES.get(field, field)
            leaf = xt[key].float().requires_grad_()
            xt = {**xt, key: leaf}
        self.net.eval()
        with torch.enable_grad():
            out = self._forward(task, None)(xt)
            (grad,) = torch.autograd.grad(out.sum(), leaf, allow_unused=True)
        if grad is None:  # the outputs do not depend on this input
            grad = torch.zeros_like(leaf)
        return grad[0].detach().cpu().numpy()

    def state(self) -> Any:
        """Copies of every parameter, and of every native module's parameters and buffers."""
        return {"params": {k: p.detach().clone() for k, p in self._params.items()},
                "natives": [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self._natives.values()]}

    def load_state(self, state: Any) -> None:
        """Restore the weights of :meth:`state` (in place: the compiled closures hold the parameters)."""
        with torch.no_grad():
            for k, p in self._params.items():
                p.copy_(state["params"][k])
        for module, saved in zip(self._natives.values(), state["natives"], strict=True):
            module.load_state_dict(saved)

    def native(self) -> Any:
        """A ``TorchModule``'s own module when it is the whole model, else the module holding every weight."""
        if len(self._natives) == 1 and not self._params:
            return next(iter(self._natives.values()))
        return self.net

    def flops(self, task: str, x: Any, y: Any | None, train: bool) -> float | None:
        """FLOPs of one forward and backward on the batch (``train``), or of one forward."""
        from torch.utils.flop_counter import FlopCounterMode

        xt = self._tensors(x)
        counter = FlopCounterMode(display=False)
        if train:
            self.net.train()
            with counter:
                self._loss(task)(xt, self._as_target(task, self._tensors(y))).backward()
            self.net.zero_grad(set_to_none=True)  # counted, not taken: no optimiser step
        else:
            self.net.eval()
            with torch.no_grad(), counter:
                self._forward(task, None)(xt)
        return float(counter.get_total_flops())

    def sync(self) -> None:
        """Wait for queued CUDA work."""
        if self.settings.device == "cuda":
            torch.cuda.synchronize()

    def peak_memory(self) -> int | None:
        """Peak CUDA memory allocated, in bytes; ``None`` on the CPU."""
        return int(torch.cuda.max_memory_allocated()) if self.settings.device == "cuda" else None

    # -- data --------------------------------------------------------------------------
    def _tensors(self, x: Any) -> Any:
        """NumPy (or a mapping of it) as device tensors: floats as float32, integers as int64."""
        if isinstance(x, Mapping):
            return {k: self._tensors(v) for k, v in x.items()}
        if isinstance(x, torch.Tensor):
            return x.to(self.device)
        a = np.asarray(x)
        a = a.astype(np.int64 if a.dtype.kind in "iu" else np.float32, copy=False)
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def _cached(self, x: Any) -> Any:
        # Keyed by identity, holding a reference to the arrays so their ids cannot be reused.
        arrays = tuple(x.values()) if isinstance(x, Mapping) else (x,)
        key = tuple(id(a) for a in arrays)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit[1]
        return self._remember(key, arrays, self._tensors(x))

    def _remember(self, key: Any, arrays: tuple[Any, ...], value: Any) -> Any:
        self._cache[key] = (arrays, value)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return value

    def _target(self, task: str, y: Any) -> Any:
        # The int -> float cast of a target is cached apart from the same array used as an input.
        yt = self._cached(y)
        cast = self._as_target(task, yt)
        if cast is yt:
            return yt
        key = ("target", id(y))
        hit = self._cache.get(key)
        return hit[1] if hit is not None else self._remember(key, (y,), cast)

    def _as_target(self, task: str, yt: Any) -> Any:
        # Integer one-hot targets become floats; class indices (one axis fewer) stay int64 for xent.
        if isinstance(yt, torch.Tensor) and not yt.is_floating_point():
            lowered = self.model.tasks[task]
            try:
                rank = len(record_shape(lowered.root.output))
            except ValueError:  # a native model's output type is unknown: assume class vectors
                rank = 1
            if loss_kind(task, lowered) != "xent" or yt.dim() > rank:
                return yt.float()
        return yt

    # -- interpretation ----------------------------------------------------------------
    def _forward(self, task: str, skip: str | None) -> Fn:
        key = (task, skip)
        if key not in self._forwards:
            self._forwards[key] = self._masking(self._build(self.model.tasks[task].root, skip))
        return self._forwards[key]

    def _masking(self, root: Fn) -> Fn:
        """``root`` with the batch's mask (a ragged set's) where its ``sum`` ops read it."""
        cell = self._mask

        def forward(x: Any) -> Any:
            cell[0] = batch_mask(x)
            try:
                return root(x)
            finally:
                cell[0] = None

        return forward

    def _loss(self, task: str) -> Loss:
        if task in self._losses:
            return self._losses[task]
        lowered = self.model.tasks[task]
        kind = loss_kind(task, lowered)
        if kind == "mse":
            forward = self._forward(task, None)
            weight = float(self.settings.gradient_weight)

            def mse(x: Any, y: Any) -> torch.Tensor:
                value, field, target = split_target(y)
                if target is None:
                    return F.mse_loss(forward(x), value)
                # Force matching: the gradients are part of the graph (create_graph), so the
                # optimiser's backward differentiates them again (double backward).
                key = None if field is None else (field if field in x else ALIASES.get(field, field))
                with torch.enable_grad():
                    leaf = (x if key is None else x[key]).detach().float().requires_grad_()
                    out = forward(leaf if key is None else {**x, key: leaf})
                    (grad,) = torch.autograd.grad(out.sum(), leaf, create_graph=True, materialize_grads=True)
                return F.mse_loss(out, value) + weight * F.mse_loss(grad, target)

            loss: Loss = mse
        else:
            # Losses on logits: the final activation is skipped, the loss applies it stably.
            act = "softmax" if kind == "xent" else "sigmoid"
            logits = self._forward(task, lowered.final_path if lowered.final == act else None)
            def on_logits(x: Any, y: Any) -> torch.Tensor:
                refuse_gradients(y, f"a {kind} loss")
                return _xent(logits(x), y) if kind == "xent" else F.binary_cross_entropy_with_logits(logits(x), y)

            loss = on_logits
        self._losses[task] = loss
        return loss

    def _build(self, op: Op, skip: str | None) -> Fn:
        """``op`` as one closure over batched values (the op at ``skip`` becomes the identity)."""
        if op.path == skip:
            return _identity
        kind, a = op.kind, op.attrs
        if kind == "pipeline":
            return _compose([self._build(c, skip) for c in op.children])
        if kind in ("linear", "conv2d"):
            w, b = (self._params[f"{op.path}.{k}"] for k in ("weight", "bias"))
            if kind == "linear":
                return lambda x: F.linear(x, w, b)
            s, p = a["stride"], a["padding"]
            if a["image_input"]:  # (B, h, w, c) -> (B, c, h, w); the output is Tensor(c, h, w)
                return lambda x: F.conv2d(x.permute(0, 3, 1, 2), w, b, s, p)
            return lambda x: F.conv2d(x, w, b, s, p)
        if kind == "maxpool2d":
            k = a["k"]
            if a["image_input"]:
                return lambda x: F.max_pool2d(x.permute(0, 3, 1, 2), k)
            return lambda x: F.max_pool2d(x, k)
        if kind in _ELEMENTWISE:
            return _ELEMENTWISE[kind]
        if kind == "softmax":
            return lambda x: torch.softmax(x, -1)
        if kind == "identity":
            return _identity
        if kind == "flatten":  # an image flattens in (h, w, c) order, a Tensor(c, h, w) in its own
            return lambda x: x.reshape(x.shape[0], -1)
        if kind == "dropout":
            prob, net = a["p"], self.net
            return lambda x: F.dropout(x, prob, net.training)
        if kind == "array":
            return _array(_compose([self._build(c, skip) for c in op.children]))
        if kind == "sum":
            child, cell = _compose([self._build(c, skip) for c in op.children]), self._mask
            return lambda x: masked(child(x), cell[0]).sum(1)  # padded atoms add nothing
        if kind == "convert":
            return self._convert(op)
        if kind == "native":
            return self._natives[id(getattr(op.native, "module", None))]
        raise ValueError(f"{op.path}: the PyTorch backend has no {kind!r} op")

    def _convert(self, op: Op) -> Fn:
        chain = op.chain
        if not chain.steps:
            return _identity
        if all_builtin(chain):
            return _compose([_builtin(s) for s in chain.steps])
        convert, device = self.convert, self.device
        batched = torch.func.vmap(lambda record: convert(chain, record))
        vmap_works = [True]

        def per_record(x: Any) -> Any:
            if vmap_works[0]:
                try:
                    out = batched(x)
                    return out if out.is_floating_point() else out.float()
                except Exception:
                    # Converters that index Python data with a value (a.name) cannot be
                    # vectorised: run them record by record from now on.
                    vmap_works[0] = False
            outs = [torch.as_tensor(convert(chain, _take(x, i)), dtype=torch.float32, device=device)
                    for i in range(_length(x))]
            return torch.stack(outs)

        return per_record


def _compose(fns: list[Fn]) -> Fn:
    fns = [f for f in fns if f is not _identity]
    if not fns:
        return _identity
    if len(fns) == 1:
        return fns[0]

    def pipeline(x: Any) -> Any:
        for f in fns:
            x = f(x)
        return x

    return pipeline


def _builtin(step: Any) -> Fn:
    return lambda x: builtin_step(step, x, torch)


def _array(child: Fn) -> Fn:
    """Apply ``child`` to every element: (B, n, ...) is run as (B*n, ...) and folded back."""

    def array(x: Any) -> Any:
        if isinstance(x, Mapping):
            b, n = next(iter(x.values())).shape[:2]
            flat: Any = {k: v.reshape(b * n, *v.shape[2:]) for k, v in x.items()}
        else:
            b, n = x.shape[:2]
            flat = x.reshape(b * n, *x.shape[2:])
        y = child(flat)
        return y.reshape(b, n, *y.shape[1:])

    return array


def _xent(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over records (and pixels) of -(y * log_softmax(z)).sum(-1); class indices accepted."""
    if z.dim() != 2:
        c = z.shape[-1]
        z, y = z.reshape(-1, c), (y.reshape(-1, c) if y.is_floating_point() else y.reshape(-1))
    return F.cross_entropy(z, y)
