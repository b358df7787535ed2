"""JAX backend: interprets a lowered :class:`._lowering.Op` tree with ``jax.numpy`` and ``jax.lax``.

Training compiles a whole epoch into one XLA program: the full batches run as a
``jax.lax.fori_loop`` over slices of the epoch's ``order`` (the data stay on the device and
each step gathers its batch), then a step of its own shape trains on the final partial
batch. The loop's length is an argument, so that ``compile`` can run the program once for
a single step (its first run costs more than the others) without training anything.
Adam and SGD are written out with PyTorch's semantics, so a JAX run and a PyTorch run of
one scenario differ only by the backend. User converters run batched under ``jax.vmap``;
one that needs concrete values (``a.name``) runs on the host per record instead.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..sail import ALIASES, JaxModel
from ._jax_data import example_batch, host_array, host_rows, leaves, map_fields, signature
from ._lowering import LoweredModel, Op, all_builtin, builtin_step, init_params, loss_kind, record_shape
from ._padding import batch_mask, masked
from ._trainer import ConvertRecord, Trainer, TrainSettings, refuse_gradients, split_target

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
_LOG_BETA1, _LOG_BETA2 = math.log(_BETA1), math.log(_BETA2)
#: records per prediction call: bounds device memory on large test sets
_CHUNK = 4096
#: data sets kept on the device (train and test of a stage, with room to spare)
_DATA_SLOTS = 4

Params = dict[str, Any]
#: element-wise layers (softmax over the last axis: classes, or channels of an image)
_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
    "softmax": lambda x: jax.nn.softmax(x, axis=-1)}


def _reads_values(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) is JAX refusing a concrete value of a traced array."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, jax.errors.JAXTypeError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class JaxTrainer(Trainer):
    """Trains and runs a lowered model with JAX (see :class:`._trainer.Trainer`).

    ``traces`` counts how often a training step was traced: ``train_epoch`` after
    ``compile`` for the same shapes leaves it unchanged.
    """

    backend = "jax"

    def __init__(self, model: LoweredModel, settings: TrainSettings, convert: ConvertRecord) -> None:
        super().__init__(model, settings, convert)
        self.device = jax.devices("gpu")[0] if settings.device == "cuda" else jax.devices("cpu")[0]
        self.traces = 0
        self.params: Params = {}
        self.opt: dict[str, Params] = {}
        self._natives = {op.path: op for op in model.natives}
        # Parameters each task reaches: a step differentiates and updates only these, as
        # PyTorch's optimiser skips parameters without a gradient.
        self._names = {task: self._reached(lt.root) for task, lt in model.tasks.items()}
        self._epochs: dict[tuple[Any, ...], Any] = {}
        self._data: dict[tuple[Any, ...], tuple[Any, Any, Any, Any]] = {}
        self._predict: dict[str, Any] = {}
        #: the mask of the batch being traced (a ragged set's), read by ``sum`` ops
        self._mask: Any = None
        self._grad: dict[tuple[str, str | None], Any] = {}
        self._epoch_no = 0
        #: the epoch executable's ``warm`` argument, on the device once
        self._warm = {flag: jax.device_put(np.bool_(flag), self.device) for flag in (False, True)}
        self.reset()

    # -- lifecycle -----------------------------------------------------------------
    def reset(self) -> None:
        """Initial weights from :func:`._lowering.init_params` (natives: their ``init``), fresh Adam."""
        params: Params = dict(init_params(self.model, self.settings.seed))
        for path, op in self._natives.items():
            params[path] = self._native(op).init(jax.random.PRNGKey(self.settings.seed), example_batch(op.input))
        self.params = jax.device_put(params, self.device)
        if self.settings.optimizer == "adam":
            m, v = (jax.tree_util.tree_map(lambda a: np.zeros(np.shape(a), np.float32), params) for _ in "mv")
            counts = {k: np.zeros((), np.int32) for k in params}
            self.opt = jax.device_put({"m": m, "v": v, "t": counts}, self.device)
        else:
            self.opt = {}
        self._epoch_no = 0

    def state(self) -> Any:
        """A host copy of the weights (optimiser state is not part of a checkpoint)."""
        return jax.tree_util.tree_map(lambda a: np.array(a, copy=True), self.params)

    def load_state(self, state: Any) -> None:
        """Restore weights saved by :meth:`state` (copied: later edits of the checkpoint cannot reach them)."""
        self.params = jax.device_put(jax.tree_util.tree_map(lambda a: host_array(a).copy(), dict(state)), self.device)

    def native(self) -> Any:
        """The parameters: a dict of arrays by path (a ``JaxModel``'s own under its op's path)."""
        return dict(self.params)

    def sync(self) -> None:
        """Wait until the weights are computed."""
        jax.block_until_ready(self.params)

    def peak_memory(self) -> int | None:
        """Peak bytes in use on a GPU; ``None`` on the CPU."""
        if self.device.platform != "gpu":
            return None
        peak = (self.device.memory_stats() or {}).get("peak_bytes_in_use")
        return None if peak is None else int(peak)

    # -- the interpreter -----------------------------------------------------------
    def apply(self, params: Params, task: str, x: Any, *, train: bool = False, rng: Any = None,
              skip_final: bool = False) -> Any:
        """The task's outputs for batch ``x`` (pure: usable under ``jit``, ``grad`` and ``vmap``).

        ``skip_final`` leaves out the final softmax/sigmoid, so losses work on logits.
        """
        lowered = self.model.tasks[task]
        skip = lowered.final_path if skip_final and lowered.final else None
        self._mask = batch_mask(x)  # a ragged set's, read by ``sum`` ops while this batch runs
        try:
            return self._run(lowered.root, params, x, train, rng, skip)
        finally:
            self._mask = None

    def _run(self, op: Op, p: Params, x: Any, train: bool, rng: Any, skip: str | None) -> Any:
        kind = op.kind
        if op.path == skip or kind == "identity":
            return x
        if kind == "pipeline":
            for child in op.children:
                x = self._run(child, p, x, train, rng, skip)
            return x
        if kind == "linear":
            w, b = p[f"{op.path}.weight"], p[f"{op.path}.bias"]
            y = jnp.reshape(x, (x.shape[0], -1)) @ w.T + b
            return jnp.reshape(y, (x.shape[0], *record_shape(op.output)))
        if kind == "conv2d":
            a = op.attrs
            if a["image_input"]:  # images are (B, h, w, c); convolutions work on NCHW
                x = jnp.transpose(x, (0, 3, 1, 2))
            pad = int(a["padding"])
            y = lax.conv_general_dilated(x, p[f"{op.path}.weight"], (a["stride"],) * 2, [(pad, pad), (pad, pad)],
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
            return y + p[f"{op.path}.bias"][None, :, None, None]
        if kind == "maxpool2d":
            if op.attrs["image_input"]:
                x = jnp.transpose(x, (0, 3, 1, 2))
            k = int(op.attrs["k"])
            return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, k, k), "VALID")
        if kind in _ACTIVATIONS:
            return _ACTIVATIONS[kind](x)
        if kind == "flatten":  # images flatten in HWC order, feature maps in CHW: both are a reshape
            return jnp.reshape(x, (x.shape[0], -1))
        if kind == "dropout":
            rate = float(op.attrs["p"])
            if not train or rate <= 0.0 or rng is None:
                return x
            key = jax.random.fold_in(rng, zlib.crc32(op.path.encode()) & 0x7FFFFFFF)
            keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
            return jnp.where(keep, x / (1.0 - rate), 0.0)
        if kind == "array":
            b, n = leaves(x)[0].shape[:2]
            flat = map_fields(lambda a: jnp.reshape(a, (b * n, *a.shape[2:])), x)
            for child in op.children:
                flat = self._run(child, p, flat, train, rng, skip)
            return jnp.reshape(flat, (b, n, *flat.shape[1:]))
        if kind == "sum":
            for child in op.children:
                x = self._run(child, p, x, train, rng, skip)
            return jnp.sum(masked(x, self._mask), axis=1)  # padded atoms add nothing
        if kind == "convert":
            if all_builtin(op.chain):
                for step in op.chain.steps:
                    x = builtin_step(step, x, jnp)
                return x
            # user converters are written for one record: vectorise them over the batch
            try:
                return jax.vmap(lambda r: jnp.asarray(self.convert(op.chain, r)))(x)
            except Exception as exc:
                if not _reads_values(exc):
                    raise
            return self._host_convert(op, x)
        if kind == "native":
            return self._native(op).apply(p[op.path], x)
        raise ValueError(f"the JAX backend cannot run a {kind!r} op ({op.path})")

    def _host_convert(self, op: Op, x: Any) -> Any:
        """A converter that needs concrete values (``a.name``, ``int(...)``), run on the host per record.

        Its output is a constant of the data for differentiation: no gradient flows back
        through it (right for lookups such as an embedding by element).
        """
        warnings.warn(f"{op.chain.label} reads concrete values, so it cannot be traced: it runs on the host, "
                      "and no gradient flows through it", RuntimeWarning, stacklevel=2)
        shape = record_shape(op.output)

        def host(batch: Any) -> Any:
            rows = range(len(leaves(batch)[0]))
            recs = [{k: np.asarray(v)[i] for k, v in batch.items()} if isinstance(batch, Mapping)
                    else np.asarray(batch)[i] for i in rows]
            out = [np.asarray(self.convert(op.chain, r), np.float32).reshape(shape) for r in recs]
            return np.stack(out) if out else np.zeros((0, *shape), np.float32)

        result = jax.ShapeDtypeStruct((leaves(x)[0].shape[0], *shape), jnp.float32)
        return jax.pure_callback(host, result, lax.stop_gradient(x), vmap_method="sequential")

    @staticmethod
    def _native(op: Op) -> JaxModel:
        if not isinstance(op.native, JaxModel):
            raise TypeError(f"{type(op.native).__name__} at {op.path} does not run on JAX (use JaxModel)")
        return op.native

    @staticmethod
    def _reached(root: Op) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for op in root.walk():
            names.update(dict.fromkeys(op.params))
            if op.kind == "native":
                names[op.path] = None
        return tuple(names)

    # -- training ------------------------------------------------------------------
    def _loss(self, task: str, p: Params, xb: Any, yb: Any, rng: Any) -> Any:
        lowered = self.model.tasks[task]
        kind = loss_kind(task, lowered)
        # a loss on logits skips the final activation it applies itself (as the PyTorch backend)
        own = {"xent": "softmax", "bce": "sigmoid"}.get(kind)
        if kind != "mse":
            refuse_gradients(yb, f"a {kind} loss")
        yb, field, target = split_target(yb)
        if target is not None:
            return self._gradient_loss(task, p, xb, yb, field, target, rng)
        out = self.apply(p, task, xb, train=True, rng=rng, skip_final=own is not None and lowered.final == own)
        if kind == "xent" and jnp.issubdtype(yb.dtype, jnp.integer) and yb.ndim == out.ndim - 1:
            yb = jax.nn.one_hot(yb, out.shape[-1], dtype=out.dtype)  # class indices
        yb = jnp.reshape(yb.astype(out.dtype), out.shape)  # (B, 1) targets for (B,) outputs must not broadcast
        if kind == "xent":
            return jnp.mean(-jnp.sum(yb * jax.nn.log_softmax(out, axis=-1), axis=-1))
        if kind == "bce":  # stable form of -(y log s(z) + (1 - y) log(1 - s(z)))
            return jnp.mean(jnp.maximum(out, 0.0) - out * yb + jnp.log1p(jnp.exp(-jnp.abs(out))))
        return jnp.mean((out - yb) ** 2)

    def _gradient_loss(self, task: str, p: Params, xb: Any, yb: Any, field: str | None, target: Any,
                       rng: Any) -> Any:
        """Mean squared error of the outputs plus ``gradient_weight`` times that of their gradients
        with respect to ``field`` of the input (force matching): ``jax.grad`` of this is a grad of a grad."""
        atoms = isinstance(xb, Mapping)
        key = (field if field in xb else ALIASES.get(str(field), field)) if atoms else None

        def total(v: Any) -> tuple[Any, Any]:
            out = self.apply(p, task, {**xb, str(key): v} if atoms else v, train=True, rng=rng)
            return jnp.sum(out), out

        grad, out = jax.grad(total, has_aux=True)(xb[key] if atoms else xb)
        yb, target = jnp.reshape(yb.astype(out.dtype), out.shape), jnp.reshape(target.astype(grad.dtype), grad.shape)
        return jnp.mean((out - yb) ** 2) + float(self.settings.gradient_weight) * jnp.mean((grad - target) ** 2)

    def _step(self, task: str) -> Callable[..., Any]:
        """One optimiser step: ``(params, moments, xb, yb, key, sched) -> (loss, params, moments)``.

        ``sched`` holds Adam's per-parameter step size and bias correction for this step
        (see :meth:`_schedule`); SGD has no moments and no schedule.
        """
        lr = float(self.settings.learning_rate)

        def step(p: Params, mom: dict[str, Params], xb: Any, yb: Any, key: Any, sched: Any) -> tuple[Any, ...]:
            self.traces += 1  # runs only while tracing: counts compilations, not steps
            loss, g = jax.value_and_grad(lambda q: self._loss(task, q, xb, yb, key))(p)
            if sched is None:
                return loss, jax.tree_util.tree_map(lambda a, d: a - lr * d, p, g), mom
            # torch.optim.Adam: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
            new_p, m, v = {}, {}, {}
            for j, k in enumerate(sorted(p)):
                size, corr = sched[0, j], sched[1, j]
                m[k] = jax.tree_util.tree_map(lambda a, d: _BETA1 * a + (1.0 - _BETA1) * d, mom["m"][k], g[k])
                v[k] = jax.tree_util.tree_map(lambda a, d: _BETA2 * a + (1.0 - _BETA2) * d * d, mom["v"][k], g[k])
                new_p[k] = jax.tree_util.tree_map(
                    lambda a, mk, vk, s=size, c=corr: a - s * mk / (jnp.sqrt(vk) / c + _EPS), p[k], m[k], v[k])
            return loss, new_p, {"m": m, "v": v}

        return step

    def _schedule(self, counts: Params, steps: int) -> Any:
        """Adam's ``lr / bc1`` and ``sqrt(bc2)`` for the next ``steps`` steps: ``(steps, 2, parameters)``.

        Each parameter counts its own steps (a shared sub-model trained by two tasks has
        more than a task's own layers), as in PyTorch; parameters are in sorted order.
        Computed once per epoch, before the loop, in one array: scalar work per parameter
        inside every step costs as much as a small layer on the CPU. ``1 - beta**t`` is
        ``-expm1(t log beta)``, accurate in float32.
        """
        ahead = jnp.arange(1, steps + 1, dtype=jnp.float32)[:, None]
        t = jnp.stack([counts[k] for k in sorted(counts)]).astype(jnp.float32)[None, :] + ahead
        size = float(self.settings.learning_rate) / -jnp.expm1(t * _LOG_BETA1)
        return jnp.stack([size, jnp.sqrt(-jnp.expm1(t * _LOG_BETA2))], axis=1)

    def _subset(self, task: str) -> tuple[Params, dict[str, Params]]:
        names = self._names[task]
        p = {k: self.params[k] for k in names}
        opt = {part: {k: self.opt[part][k] for k in names} for part in self.opt}
        return p, opt

    def _store(self, p: Params, opt: dict[str, Params]) -> None:
        self.params = {**self.params, **p}
        self.opt = {part: {**self.opt[part], **opt[part]} for part in self.opt}

    def _device_data(self, x: Any, y: Any) -> tuple[Any, Any]:
        """``x`` and ``y`` on the device, transferred once per pair of arrays."""
        key = (tuple(id(a) for a in leaves(x)), tuple(id(a) for a in leaves(y)))
        hit = self._data.get(key)
        if hit is None:
            if len(self._data) >= _DATA_SLOTS:
                self._data.pop(next(iter(self._data)))
            dx = jax.device_put(map_fields(host_array, x), self.device)
            dy = jax.device_put(map_fields(host_array, y), self.device)
            # holding the NumPy arrays keeps their ids from being reused by other arrays
            hit = self._data[key] = (x, y, dx, dy)
        return hit[2], hit[3]

    def _epoch_fn(self, task: str, x: Any, y: Any) -> Any:
        """The compiled epoch for ``task`` on data shaped like ``x``, ``y`` (built on first use).

        ``(params, opt, x, y, plan, warm) -> (params, opt, mean loss)``, where ``plan`` is the
        epoch's order with the epoch number appended: one transfer and one call per epoch.
        ``warm`` (a boolean on the device) runs one full batch and the partial one instead
        of the whole epoch: the warm-up pays the executable's first-run costs in one step.
        """
        size = int(self.settings.batch_size)
        key = (task, signature(x), signature(y), size)
        hit = self._epochs.get(key)
        if hit is not None:
            return hit
        n = int(leaves(x)[0].shape[0])
        batches, rest = divmod(n, size)
        cut, steps = batches * size, batches + (1 if rest else 0)
        step = self._step(task)
        seed = int(self.settings.seed)

        def gather(data: Any, idx: Any) -> Any:
            return map_fields(lambda a: a[idx], data)

        def epoch(p: Params, opt: Any, dx: Any, dy: Any, plan: Any, warm: Any) -> tuple[Params, Any, Any]:
            base = jax.random.fold_in(jax.random.PRNGKey(seed), plan[n])
            total = jnp.zeros((), jnp.float32)
            adam = "t" in opt
            mom = {"m": opt["m"], "v": opt["v"]} if adam else {}
            sched = self._schedule(opt["t"], steps) if adam else None
            if batches:  # the full batches: one loop, so the whole epoch is a single XLA program
                def body(i: Any, carry: Any) -> Any:
                    q, mo, acc = carry
                    idx = lax.dynamic_slice_in_dim(plan, i * size, size)
                    loss, q, mo = step(q, mo, gather(dx, idx), gather(dy, idx), jax.random.fold_in(base, i),
                                       None if sched is None else sched[i])
                    return q, mo, acc + loss

                count = jnp.where(warm, jnp.int32(1), jnp.int32(batches))
                p, mom, total = lax.fori_loop(jnp.int32(0), count, body, (p, mom, total))
                total = total * size
            if rest:  # the final partial batch: its own step, traced for its own shape
                idx = plan[cut:n]
                loss, p, mom = step(p, mom, gather(dx, idx), gather(dy, idx), jax.random.fold_in(base, batches),
                                    None if sched is None else sched[batches])
                total = total + loss * rest
            if adam:
                mom["t"] = {k: t + steps for k, t in opt["t"].items()}
            return p, mom, total / n

        p, opt = self._subset(task)
        dx, dy = self._device_data(x, y)
        plan = jax.device_put(np.zeros((n + 1,), np.int32), self.device)
        # params and moments are donated: the epoch updates them in place (no second copy)
        compiled = jax.jit(epoch, donate_argnums=(0, 1)).lower(p, opt, dx, dy, plan, self._warm[False]).compile()
        self._epochs[key] = compiled
        return compiled

    def compile(self, task: str, x: Any, y: Any) -> None:
        """Compile ahead of time the epoch ``train_epoch`` runs on data shaped like ``x``, ``y``, put the
        data on the device, and run the executable once (one step) on copies of the weights.

        A first run costs more than the others (buffers allocated, kernels loaded): that
        belongs to no epoch. The weights, optimiser state and epoch count are left as they
        were, so training gives the same numbers with or without this call.
        """
        fn = self._epoch_fn(task, x, y)
        dx, dy = self._device_data(x, y)
        n = int(leaves(x)[0].shape[0])
        # copies through the host: the executable consumes (donates) its weights and moments
        p, opt = jax.tree_util.tree_map(lambda a: jax.device_put(np.array(a), self.device), self._subset(task))
        plan = np.zeros((n + 1,), np.int32)
        plan[:n] = np.arange(n)
        jax.block_until_ready(fn(p, opt, dx, dy, jax.device_put(plan, self.device), self._warm[True]))

    def train_epoch(self, task: str, x: Any, y: Any, order: Any) -> float:
        """One epoch over ``order``: a loop over the full batches, then the partial batch."""
        fn = self._epoch_fn(task, x, y)
        dx, dy = self._device_data(x, y)
        n = int(leaves(x)[0].shape[0])
        order = np.asarray(order)
        if order.shape != (n,):
            raise ValueError(f"order has shape {order.shape}; an epoch visits each of the {n} records once")
        plan = np.empty((n + 1,), np.int32)
        plan[:n], plan[n] = order, self._epoch_no
        p, opt = self._subset(task)
        p, opt, loss = fn(p, opt, dx, dy, jax.device_put(plan, self.device), self._warm[False])
        self._store(p, opt)
        self._epoch_no += 1
        out = float(loss)  # waits for the device
        jax.block_until_ready(p)
        return out

    # -- inference -----------------------------------------------------------------
    def predict(self, task: str, x: Any) -> Any:
        """Outputs in inference mode, in chunks of 4096 records, as NumPy."""
        fn = self._predict.get(task)
        if fn is None:
            fn = self._predict[task] = jax.jit(lambda p, xb: self.apply(p, task, xb))
        p, _ = self._subset(task)
        n = int(leaves(x)[0].shape[0])
        parts = [np.asarray(fn(p, host_rows(x, slice(s, s + _CHUNK)))) for s in range(0, n, _CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def gradients(self, task: str, x: Any, field: str | None) -> Any:
        """d(sum of outputs)/d(input) for one record (a batch of one), without the batch axis."""
        atoms = isinstance(x, Mapping)
        if atoms and field not in x:
            field = ALIASES.get(str(field), field)  # ``pos`` is ``positions``
            if field not in x:
                raise ValueError(f"gradients of atoms need one of their fields ({', '.join(x)}), not {field!r}")
        key = (task, field if atoms else None)
        fn = self._grad.get(key)
        if fn is None:
            def total(v: Any, p: Params, rest: dict[str, Any]) -> Any:
                return jnp.sum(self.apply(p, task, {**rest, str(field): v} if atoms else v))

            fn = self._grad[key] = jax.jit(jax.grad(total))
        v = x[field] if atoms else x
        rest = {k: host_array(a) for k, a in x.items() if k != field} if atoms else {}
        p, _ = self._subset(task)
        return np.asarray(fn(host_array(v), p, rest))[0]

    def flops(self, task: str, x: Any, y: Any | None, train: bool) -> float | None:
        """Floating-point operations XLA counts for one step on the batch (or one prediction)."""
        p, opt = self._subset(task)
        dx = jax.device_put(map_fields(host_array, x), self.device)
        if train:
            step = self._step(task)

            def one(q: Params, o: Any, xb: Any, yb: Any, key: Any) -> Any:
                sched = self._schedule(o["t"], 1) if "t" in o else None
                mom = {"m": o["m"], "v": o["v"]} if "t" in o else {}
                return step(q, mom, xb, yb, key, None if sched is None else sched[0])

            key = jax.device_put(np.zeros((2,), np.uint32), self.device)  # a raw key: no eager op to compile
            dy = jax.device_put(map_fields(host_array, y), self.device)
            compiled = jax.jit(one).lower(p, opt, dx, dy, key).compile()
        else:
            compiled = jax.jit(lambda q, xb: self.apply(q, task, xb)).lower(p, dx).compile()
        try:
            cost = compiled.cost_analysis()
        except Exception:  # a platform without cost analysis: the count is unavailable, not an error
            return None
        if isinstance(cost, list | tuple):
            cost = cost[0] if cost else None
        flops = cost.get("flops") if isinstance(cost, Mapping) else None
        return float(flops) if flops is not None and flops > 0 else None
