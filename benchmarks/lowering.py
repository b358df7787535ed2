#!/usr/bin/env python
"""Benchmark of lowering: the lowered MLP on digits against hand-written training loops.

The lowered side is the real thing: a repository with the paper's MLP (Fig. 5,
``examples/paper/mnist.py``), its software and hardware (``stacks.py``) and a digits
problem; ``discover(..., params={"MLP.hiddenSize": 256})``; the scenario's model lowered
with ``lower(graphs_of(...), lattice.converters.resolve)``; and ``TorchTrainer`` /
``JaxTrainer`` driven directly with ``TrainSettings(batch_size=32, learning_rate=1e-3,
seed=0)``.

The hand-written side does the same arithmetic the way one would write it by hand:

* PyTorch: ``nn.Sequential(Flatten, Linear(64, 256), ReLU, Linear(256, 10))``,
  ``torch.optim.Adam(fused=True)``, ``-(y * log_softmax(z)).sum(-1).mean()``, batches gathered by
  index, the batch losses summed once at the end of the epoch (one synchronisation);
* JAX: a parameter pytree, Adam written out (PyTorch's defaults, bias corrections in the
  step), the loss on logits, and the fast idiom for an epoch: one jitted function, the
  full batches as a ``lax.scan`` over ``(num_batches, 32)`` index batches and one more
  step for the final partial batch, the data on the device, compiled ahead of time
  (compile time reported apart).

Both sides start from the same weights (``init_params`` of the lowered model), visit the
records in the same order (``epoch_order``) and report the mean loss of each epoch, so
their losses can be compared. Only ``train_epoch`` (and the hand-written epoch) is timed,
synchronised; lowered and hand-written epochs alternate (ABBA) so that machine noise hits
both, and the figures are medians. PyTorch runs on one thread and XLA is told to use one
(``XLA_FLAGS``, set before JAX is imported), so the two backends compare fairly.

Run ``python benchmarks/lowering.py`` (writes the figures to benchmarks/README.md),
``--quick`` for a few epochs as a smoke test (does not write unless ``--write``),
``--no-write`` to only print.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import README, add_write_flags, latest, machine_line, write_section, writes_readme

#: XLA on one thread (like ``torch.set_num_threads(1)``); must be set before JAX is imported.
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "saibench_jupyter" / "examples" / "paper"
START, END = "<!-- lowering:start -->", "<!-- lowering:end -->"

HIDDEN = 256
BATCH = 32
LR = 1e-3
SEED = 0
#: the stage number passed to ``epoch_order`` (the runtime's first stage)
STAGE = 1
TASK = "Classify"
TARGET = 1.10
AIM = 1.03

#: The paper's MNIST structure on scikit-learn's 8x8 digits (shipped with the package).
DIGITS = ROOT / "saibench_jupyter" / "examples" / "digits.py"

INTRO = """\
## Lowering

`benchmarks/lowering.py` measures what lowering costs: the paper's MLP (Fig. 5, hidden
size 256) discovered on scikit-learn's digits (1,438 training images of 8×8, one-hot
labels), lowered, and trained by `TorchTrainer` and `JaxTrainer`, against a hand-written
training loop with the same settings (batch 32, Adam with PyTorch's defaults, lr 1e-3,
the same initial weights and the same batch order):

* **PyTorch**: `nn.Sequential(Flatten, Linear(64, 256), ReLU, Linear(256, 10))`,
  `torch.optim.Adam(fused=True)`, `-(y * log_softmax(z)).sum(-1).mean()`, batches gathered by index,
  the batch losses summed once per epoch;
* **JAX**: a parameter pytree, Adam written out (bias corrections computed in the step),
  the loss on logits, and the fast idiom: the whole epoch as one jitted function, a
  `lax.scan` over `(44, 32)` index batches (4–5× faster here than one jitted call per
  batch) and one more step for the last 30 records, the data on the device, compiled
  ahead of time.

Only epochs are timed (after `compile`, synchronised); lowered and hand-written epochs
alternate (ABBA) so that machine noise hits both, and the figures are medians. PyTorch
runs on one thread (`torch.set_num_threads(1)`) and XLA on one
(`XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`). The
first-epoch losses of both sides are printed: they do the same arithmetic.

The lowered side may well be faster than the hand-written one: `TorchTrainer` runs the
graph as closures over `F.linear`/`torch.relu` and takes the loss with `F.cross_entropy`,
where the hand-written loop pays `nn.Module.__call__` per layer and a loss of five
separate ops; `JaxTrainer` computes Adam's bias corrections for the whole epoch before
the scan, where the hand-written step computes them in every step. On a 2-core machine
that is busy with anything else the spread is wide: read the paired ratio too, and
rerun on a quiet machine before drawing fine conclusions.

Target: lowered ≤ 1.10× hand-written in both backends (aim: 1.03×).

```bash
python benchmarks/lowering.py            # prints the table and rewrites the section below
python benchmarks/lowering.py --no-write # prints only
python benchmarks/lowering.py --quick    # a few epochs: a smoke test for CI
```

The section between the markers below is regenerated by the script; edit outside it.

"""


# =====================================================================================
# The lowered model and the data
# =====================================================================================

@dataclass
class Setup:
    """What both backends train on: the lowered model per backend, the data, the settings."""

    models: dict[str, Any]
    x: Any
    y: Any
    settings: Any
    discover_s: float


def setup(epochs: int) -> Setup:
    """Discover the digits MLP scenarios (PyTorch and JAX), lower their models, load the data.

    Parameters
    ----------
    epochs : int
        Epochs in the ``TrainSettings`` (the trainers do not use it: epochs are driven here).
    """
    import numpy as np
    from sklearn.datasets import load_digits

    from saibench_jupyter import Machine, Repository, discover
    from saibench_jupyter.backends import TrainSettings, graphs_of, lower

    repo = Repository()
    for name in ("stacks", "mnist"):
        repo.add_source((PAPER / f"{name}.py").read_text(encoding="utf-8"), origin=f"{name}.py")
    repo.load(DIGITS)
    t0 = time.perf_counter()
    lat = discover(repo, problem="Digits", model="MLP", machine=Machine(cpus=2, gpus=0, memory=2**34),
                   params={"MLP.hiddenSize": HIDDEN})
    discover_s = time.perf_counter() - t0
    models = {}
    for sc in lat.scenarios:
        backend = sc.software_instance.backend
        if sc.resources.device == "cpu" and backend in ("torch", "jax") and backend not in models:
            models[backend] = lower(graphs_of(sc.model_choice), lat.converters.resolve)
    missing = {"torch", "jax"} - set(models)
    if missing:
        raise RuntimeError(f"discovery found no CPU scenario for {', '.join(sorted(missing))}:\n{lat.explain()}")

    # The problem's data: digits in [0, 1], one-hot labels, an 80% training split.
    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[d.target]
    train = np.random.default_rng(SEED).permutation(len(images))[: round(0.8 * len(images))]
    x, y = np.ascontiguousarray(images[np.sort(train)]), np.ascontiguousarray(onehot[np.sort(train)])
    settings = TrainSettings(epochs=epochs, batch_size=BATCH, learning_rate=LR, seed=SEED)
    return Setup(models, x, y, settings, discover_s)


def _no_user_converters(chain: Any, record: Any) -> Any:
    """The ``convert`` callback: the MLP's conversions are built-in reshapes, never user code."""
    raise RuntimeError(f"unexpected user conversion {chain!r}")


def hand_params(model: Any, seed: int) -> dict[str, Any]:
    """The lowered model's initial weights, renamed for the hand-written networks.

    Returns ``{"w1", "b1", "w2", "b2"}`` as NumPy (PyTorch's layout: weights are ``(out, in)``).
    """
    from saibench_jupyter.backends import init_params

    init = init_params(model, seed)
    linears = [op.path for op in model.tasks[TASK].root.walk() if op.kind == "linear"]
    if len(linears) != 2:
        raise RuntimeError(f"expected the MLP's two Linear layers, found {linears}")
    out = {}
    for i, path in enumerate(linears, 1):
        out[f"w{i}"], out[f"b{i}"] = init[f"{path}.weight"], init[f"{path}.bias"]
    return out


# =====================================================================================
# The sides: each is "run one epoch in this order, return the mean loss", synchronised
# =====================================================================================

@dataclass
class Side:
    """One way of training: ``epoch(order) -> mean loss``, and its compile time (seconds)."""

    name: str
    epoch: Callable[[Any], float]
    compile_s: float = 0.0
    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def torch_sides(s: Setup) -> tuple[Side, Side]:
    """The lowered ``TorchTrainer`` and the hand-written PyTorch loop, on one thread."""
    import numpy as np
    import torch
    from torch import nn

    from saibench_jupyter.backends._torch import TorchTrainer

    torch.set_num_threads(1)
    model = s.models["torch"]
    trainer = TorchTrainer(model, s.settings, _no_user_converters)
    t0 = time.perf_counter()
    trainer.compile(TASK, s.x, s.y)
    lowered = Side("lowered", lambda order: trainer.train_epoch(TASK, s.x, s.y, order),
                   time.perf_counter() - t0)

    init = hand_params(model, s.settings.seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    with torch.no_grad():
        for i, layer in ((1, net[1]), (2, net[3])):
            layer.weight.copy_(torch.from_numpy(init[f"w{i}"]))
            layer.bias.copy_(torch.from_numpy(init[f"b{i}"]))
    opt = torch.optim.Adam(net.parameters(), lr=s.settings.learning_rate, fused=True)
    xt, yt = torch.from_numpy(s.x), torch.from_numpy(s.y)
    size = s.settings.batch_size

    def hand_epoch(order: Any) -> float:
        index = torch.from_numpy(np.asarray(order, dtype=np.int64))
        net.train()
        losses = []
        for start in range(0, len(index), size):
            i = index[start:start + size]
            xb, yb = xt[i], yt[i]
            loss = -(yb * torch.log_softmax(net(xb), dim=-1)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        # batch means weighted by batch sizes, read once per epoch (one synchronisation)
        weights = torch.full((len(losses),), float(size))
        weights[-1] = len(index) - size * (len(losses) - 1)
        return float(torch.stack(losses) @ weights) / len(index)

    return lowered, Side("hand-written", hand_epoch)


def jax_sides(s: Setup) -> tuple[Side, Side]:
    """The lowered ``JaxTrainer`` and the hand-written JAX epoch (a ``lax.scan``), compiled ahead of time."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    from saibench_jupyter.backends._jax import JaxTrainer

    model = s.models["jax"]
    trainer = JaxTrainer(model, s.settings, _no_user_converters)
    t0 = time.perf_counter()
    trainer.compile(TASK, s.x, s.y)
    lowered = Side("lowered", lambda order: trainer.train_epoch(TASK, s.x, s.y, order),
                   time.perf_counter() - t0)

    lr, b1, b2, eps = float(s.settings.learning_rate), 0.9, 0.999, 1e-8
    n, size = len(s.x), int(s.settings.batch_size)
    batches, rest = divmod(n, size)
    cut = batches * size
    device = jax.devices("cpu")[0]

    def loss_fn(p: dict[str, Any], xb: Any, yb: Any) -> Any:
        h = jax.nn.relu(jnp.reshape(xb, (xb.shape[0], -1)) @ p["w1"].T + p["b1"])
        z = h @ p["w2"].T + p["b2"]
        return jnp.mean(-jnp.sum(yb * jax.nn.log_softmax(z, axis=-1), axis=-1))

    def step(p: dict[str, Any], m: dict[str, Any], v: dict[str, Any], t: Any, xb: Any, yb: Any) -> tuple[Any, ...]:
        # torch.optim.Adam: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        t = t + 1
        tf = t.astype(jnp.float32)
        step_size = lr / (1.0 - b1 ** tf)
        corr = jnp.sqrt(1.0 - b2 ** tf)
        m = jax.tree_util.tree_map(lambda a, d: b1 * a + (1.0 - b1) * d, m, g)
        v = jax.tree_util.tree_map(lambda a, d: b2 * a + (1.0 - b2) * d * d, v, g)
        p = jax.tree_util.tree_map(lambda a, mk, vk: a - step_size * mk / (jnp.sqrt(vk) / corr + eps), p, m, v)
        return loss, p, m, v, t

    def epoch(state: tuple[Any, ...], dx: Any, dy: Any, order: Any) -> tuple[tuple[Any, ...], Any]:
        def body(carry: tuple[Any, ...], idx: Any) -> tuple[tuple[Any, ...], Any]:
            p, m, v, t, acc = carry
            loss, p, m, v, t = step(p, m, v, t, dx[idx], dy[idx])
            return (p, m, v, t, acc + loss), None

        p, m, v, t = state
        total = jnp.zeros((), jnp.float32)
        if batches:  # the full batches: one scan over (batches, size) index batches
            idx = jnp.reshape(order[:cut], (batches, size))
            (p, m, v, t, total), _ = lax.scan(body, (p, m, v, t, total), idx)
            total = total * size
        if rest:  # the final partial batch: one more step, traced for its shape
            idx = order[cut:]
            loss, p, m, v, t = step(p, m, v, t, dx[idx], dy[idx])
            total = total + loss * rest
        return (p, m, v, t), total / n

    params = {k: jnp.asarray(a) for k, a in hand_params(model, s.settings.seed).items()}
    zeros = {k: jnp.zeros_like(a) for k, a in params.items()}
    state: list[Any] = [jax.device_put((params, zeros, zeros, jnp.zeros((), jnp.int32)), device)]
    dx, dy = jax.device_put(s.x, device), jax.device_put(s.y, device)
    plan = jax.device_put(np.zeros((n,), np.int32), device)
    t0 = time.perf_counter()
    compiled = jax.jit(epoch).lower(state[0], dx, dy, plan).compile()
    compile_s = time.perf_counter() - t0

    def hand_epoch(order: Any) -> float:
        st, loss = compiled(state[0], dx, dy, jax.device_put(np.asarray(order, dtype=np.int32), device))
        state[0] = st
        out = float(loss)  # waits for the device
        jax.block_until_ready(st)
        return out

    return lowered, Side("hand-written", hand_epoch, compile_s)


# =====================================================================================
# Measuring
# =====================================================================================

def measure(lowered: Side, hand: Side, epochs: int, n: int, label: str) -> None:
    """Alternate epochs of the two sides (ABBA), each timed alone; epoch ``e`` uses ``epoch_order(e)``.

    The first epoch of each side is a warm-up: its loss is kept, its time is not.
    """
    from saibench_jupyter.backends._trainer import epoch_order

    for e in range(epochs):
        order = epoch_order(SEED, STAGE, e, n)
        pair = (lowered, hand) if e % 2 == 0 else (hand, lowered)
        for side in pair:
            t0 = time.perf_counter()
            loss = side.epoch(order)
            t = time.perf_counter() - t0
            side.losses.append(loss)
            if e > 0:
                side.times.append(t)
        if e == 0 or (e + 1) % max(epochs // 4, 1) == 0:
            print(f"  {label} epoch {e + 1}/{epochs}: lowered {lowered.losses[-1]:.6f} "
                  f"({_ms(lowered.times[-1]) if lowered.times else 'warm-up'}), "
                  f"hand-written {hand.losses[-1]:.6f} ({_ms(hand.times[-1]) if hand.times else 'warm-up'})",
                  flush=True)


@dataclass
class Result:
    """The figures of one backend."""

    backend: str
    hand_ms: float
    lowered_ms: float
    ratio: float
    paired: float
    hand_spread: str
    lowered_spread: str
    loss_lowered: float
    loss_hand: float
    max_loss_diff: float
    compile_lowered_ms: float | None
    compile_hand_ms: float | None
    epochs: int


def summarise(backend: str, lowered: Side, hand: Side, compiled: bool) -> Result:
    """Medians, the ratio of medians, the median of per-epoch paired ratios and the loss agreement."""
    lo, ha = statistics.median(lowered.times), statistics.median(hand.times)
    # Epoch e of each side ran next to each other: their ratio cancels slow drifts of the machine.
    paired = statistics.median(a / b for a, b in zip(lowered.times, hand.times, strict=True))
    diff = max(abs(a - b) for a, b in zip(lowered.losses, hand.losses, strict=True))
    return Result(backend, ha * 1e3, lo * 1e3, lo / ha, paired, _spread(hand.times), _spread(lowered.times),
                  lowered.losses[0], hand.losses[0], diff,
                  lowered.compile_s * 1e3 if compiled else None, hand.compile_s * 1e3 if compiled else None,
                  len(lowered.times))


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _spread(xs: list[float]) -> str:
    if len(xs) < 4:
        return f"min {min(xs) * 1e3:.2f}, max {max(xs) * 1e3:.2f}"
    q = statistics.quantiles(xs, n=4)
    return f"IQR {q[0] * 1e3:.2f}–{q[2] * 1e3:.2f}"


def mark(ok: bool) -> str:
    """✓ or ✗."""
    return "✓" if ok else "✗"


def render(results: list[Result], quick: bool) -> str:
    """The results as a Markdown table."""
    head = ("backend", "hand-written ms/epoch", "lowered ms/epoch", "ratio (paired)", "compile ms (hand / lowered)",
            "first-epoch loss (hand / lowered)", "largest loss difference, any epoch", f"≤ {TARGET:.2f}×")
    out = ["| " + " | ".join(head) + " |", "|---|--:|--:|--:|--:|--:|--:|:-:|"]
    for r in results:
        comp = "—" if r.compile_lowered_ms is None else f"{r.compile_hand_ms:.0f} / {r.compile_lowered_ms:.0f}"
        ok = "n/a (quick)" if quick else mark(r.ratio <= TARGET)
        out.append(f"| {r.backend} | {r.hand_ms:.2f} ({r.hand_spread}) | {r.lowered_ms:.2f} ({r.lowered_spread}) "
                   f"| **{r.ratio:.3f}×** ({r.paired:.3f}×) | {comp} | {r.loss_hand:.6f} / {r.loss_lowered:.6f} "
                   f"| {r.max_loss_diff:.1e} | {ok} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write README.md unless told not to."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few epochs (CI smoke test); "
                    "does not write README.md unless --write is given")
    add_write_flags(ap)
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs per side and backend, the first a warm-up (default 201 for torch and "
                         "401 for jax; 3 with --quick)")
    args = ap.parse_args(argv)

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " " + XLA_SINGLE_THREAD).strip()
    if "jax" in sys.modules:
        print("warning: JAX was imported before XLA_FLAGS was set; it may use several threads", file=sys.stderr)

    epochs = {"torch": 3, "jax": 3} if args.quick else {"torch": 201, "jax": 401}
    if args.epochs is not None:
        epochs = dict.fromkeys(epochs, max(args.epochs, 2))
    s = setup(max(epochs.values()))
    print(f"lowering benchmark: MLP(hiddenSize={HIDDEN}) on digits, {len(s.x):,} training records, batch {BATCH}, "
          f"Adam lr {LR:g}{' [quick]' if args.quick else ''} (discovery {s.discover_s * 1e3:.0f} ms)", flush=True)

    results = []
    for backend, make, compiled in (("torch", torch_sides, False), ("jax", jax_sides, True)):
        lowered, hand = make(s)
        if compiled:
            print(f"  {backend} compile: lowered {lowered.compile_s * 1e3:.0f} ms, "
                  f"hand-written {hand.compile_s * 1e3:.0f} ms", flush=True)
        measure(lowered, hand, epochs[backend], len(s.x), backend)
        results.append(summarise(backend, lowered, hand, compiled))

    print()
    print(f"{'backend':8} {'hand ms/epoch':>14} {'lowered ms/epoch':>17} {'ratio':>7} {'paired':>7} "
          f"{'compile ms (hand/lowered)':>26} {'first-epoch loss hand / lowered':>32} {'|diff|':>8}")
    for r in results:
        comp = "-" if r.compile_lowered_ms is None else f"{r.compile_hand_ms:.0f} / {r.compile_lowered_ms:.0f}"
        print(f"{r.backend:8} {r.hand_ms:14.3f} {r.lowered_ms:17.3f} {r.ratio:6.3f}x {r.paired:6.3f}x {comp:>26} "
              f"{r.loss_hand:15.7f} / {r.loss_lowered:.7f}   {abs(r.loss_hand - r.loss_lowered):.1e}")
    for r in results:
        verdict = "n/a (quick)" if args.quick else ("meets the target" if r.ratio <= TARGET else "MISSES the target")
        print(f"{r.backend}: lowered / hand-written = {r.ratio:.3f}x (target <= {TARGET:.2f}x, aim {AIM:.2f}x): "
              f"{verdict}")

    if not writes_readme(args):
        return 0
    command = "python benchmarks/lowering.py" + (" --quick" if args.quick else "") + (
        f" --epochs {args.epochs}" if args.epochs is not None else "")
    write_readme(render(results, args.quick), results, command)
    print(f"\nwrote {README}")
    return 0


def write_readme(table: str, results: list[Result], command: str) -> None:
    """Replace the section between the lowering markers (or append it, with its introduction)."""
    import jax
    import torch

    section = "\n".join([
        START,
        *latest(command, machine_line()
                + (f"; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) when written"
                   if hasattr(os, "getloadavg") else "")),
        f"* torch {torch.__version__} (1 thread), jax {jax.__version__} "
        f"(`XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}`)",
        "* timed epochs per side: " + ", ".join(f"{r.backend} {r.epochs}" for r in results)
        + " (after one warm-up epoch each); ms/epoch are medians (interquartile range in brackets); "
        "the ratio is of the medians, the paired ratio the median of per-epoch lowered/hand-written ratios",
        "",
        table,
        END,
    ])
    write_section(START, END, section, INTRO)


if __name__ == "__main__":
    sys.exit(main())
