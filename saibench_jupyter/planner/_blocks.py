"""Join blocks: the scenarios of one (problem instance, model), cached across discoveries.

A block is valid while its inputs are the *same objects* as when it was built (the
planner keeps instances, resolutions and metric tuples stable while nothing changes).
An unchanged plain model is reused without even being resolved again; a block whose
model resolution changed reuses every scenario whose composition did not change.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..sail import DECLARATIVE_BACKENDS, ParsedModule
from ._instances import ModelChoice, ProblemInstance, Rejection, SoftwareInstance
from ._lattice import Scenario
from ._models import Refusal, Resolution


class Block(NamedTuple):
    """One (problem, model) block and what it was built from."""

    resolution: Resolution
    #: what else it depends on: (problem, prefixes, metrics, rankings), one interned tuple
    #: per problem, so it compares by identity
    context: tuple[Any, ...]
    #: (model digest, resolver generation, parameter key): enough to skip resolving again
    stamp: tuple[Any, ...]
    rows: list[list[Scenario]]
    fits: dict[str, list[ModelChoice]]
    scenarios: list[Scenario]
    rejections: list[Rejection]
    candidates: int


class BlockCache:
    """Blocks by (problem digest, model name)."""

    def __init__(self) -> None:
        self._blocks: dict[tuple[str, str], Block] = {}
        self.built = 0

    def forget(self, problems: set[str], model: str | None = None) -> None:
        """Drop the blocks of these problem instances, and of ``model`` if it was removed."""
        for key in [k for k in self._blocks if k[0] in problems or k[1] == model]:
            del self._blocks[key]

    def reusable(self, p: ProblemInstance, m: ParsedModule, context: tuple[Any, ...],
                 stamp: tuple[Any, ...]) -> Block | None:
        """The block, if it holds without resolving ``m`` again (a plain model, unchanged)."""
        hit = self._blocks.get((p.digest, m.name))
        if hit is not None and hit.context is context and hit.stamp == stamp and not hit.resolution.composite:
            return hit
        return None

    def get(self, p: ProblemInstance, m: ParsedModule, res: Resolution, context: tuple[Any, ...],
            stamp: tuple[Any, ...]) -> Block:
        """The block for ``res`` in ``context``, reused or (partly) rebuilt."""
        key = (p.digest, m.name)
        hit = self._blocks.get(key)
        if hit is not None and hit.resolution is res and hit.context is context:
            if hit.stamp != stamp:
                hit = self._blocks[key] = hit._replace(stamp=stamp)
            return hit
        self.built += 1
        block = _build(p, m, res, context, stamp, hit if hit is not None and hit.context is context else None)
        self._blocks[key] = block
        return block


def _build(p: ProblemInstance, m: ParsedModule, res: Resolution, context: tuple[Any, ...],
           stamp: tuple[Any, ...], before: Block | None) -> Block:
    _, prefixes, metrics, rankings, repo = context
    local = [_refusal(r, p) for r in res.refusals]
    choices: Sequence[ModelChoice] = res.choices
    if p.meta.uses_gradients:
        kept = [c for c in choices if c.backends & DECLARATIVE_BACKENDS]
        local += [Rejection("model", c.label, "the problem takes Gradients of the model's output, and this "
                            "model is not differentiable", (("problem", p.label),), m.location, expected=True)
                  for c in choices if c not in kept]
        choices = kept
    # When only some choices changed (an edited model that a composite picks as a
    # sub-model), copy the old rows and rebuild just the positions that changed.
    fits: dict[str, list[ModelChoice]] = {}
    changed: dict[str, list[int] | None] = {}
    rows: list[list[Scenario]] = []
    for i, (h, sw) in enumerate(prefixes):
        backend = sw.backend
        if backend not in fits:
            fits[backend] = now = [c for c in choices if backend in c.backends]
            old = before.fits.get(backend) if before is not None else None
            changed[backend] = [k for k, (a, b) in enumerate(zip(old, now)) if a is not b] \
                if old is not None and len(old) == len(now) else None
            local += _backend_refusals(p, m, sw, choices)
        positions = changed[backend]
        if before is not None and positions is not None:
            row = before.rows[i].copy()
            for k in positions:
                row[k] = Scenario(p, h, sw, fits[backend][k], metrics, rankings, repo)
        elif before is not None:
            reuse = {sc.model_choice: sc for sc in before.rows[i]}
            row = [reuse.get(c) or Scenario(p, h, sw, c, metrics, rankings, repo) for c in fits[backend]]
        else:
            row = [Scenario(p, h, sw, c, metrics, rankings, repo) for c in fits[backend]]
        rows.append(row)
    candidates = len(prefixes) * (len(res.choices) + len(res.refusals))
    return Block(res, context, stamp, rows, fits, list(itertools.chain.from_iterable(rows)), local, candidates)


def _refusal(r: Refusal, p: ProblemInstance) -> Rejection:
    return Rejection("model", r.module, r.reason, (("problem", p.label),), r.location, r.details, r.fix,
                     r.expected)


def _backend_refusals(p: ProblemInstance, m: ParsedModule, sw: SoftwareInstance,
                      choices: Sequence[ModelChoice]) -> list[Rejection]:
    backend = sw.backend
    out: dict[str, Rejection] = {}
    for c in choices:
        if backend not in c.backends and c.name not in out:
            out[c.name] = Rejection(
                "model", c.name, f"runs on {' or '.join(sorted(c.backends)) or 'no backend'}, "
                f"but {sw.name} provides the {backend} backend",
                (("problem", p.label), ("software", sw.name)), m.location, expected=True)
    return list(out.values())
