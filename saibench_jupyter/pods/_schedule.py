"""Scheduling pods: longest expected first, within the machine's CPUs and GPUs.

Cost estimates come from the results store: the median wall time of earlier pods of
the same scenario identity, else of the same family (problem × model × software ×
hardware names, whatever the parameters). Pods with no history at all run first, in
discovery order: any of them may be the longest, and running them early also gives
the next run its estimates. Then the rest, longest first (the LPT rule, which keeps the
last pod from finishing long after the others).
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence

from ._spec import PodSpec


def estimate(specs: Sequence[PodSpec], durations: Iterable[tuple[str, str, float]]) -> dict[str, float | None]:
    """Expected wall milliseconds of each pod (by pod key), or ``None`` when nothing is known.

    Parameters
    ----------
    specs : sequence of PodSpec
        The pods to run.
    durations : iterable of (identity, family, wall_ms)
        Earlier pods from the results store.
    """
    by_identity: dict[str, list[float]] = defaultdict(list)
    by_family: dict[str, list[float]] = defaultdict(list)
    for identity, family, wall_ms in durations:
        by_identity[identity].append(wall_ms)
        by_family[family].append(wall_ms)
    out: dict[str, float | None] = {}
    for spec in specs:
        known = by_identity.get(spec.identity) or by_family.get(spec.family)
        out[spec.pod] = statistics.median(known) if known else None
    return out


def order(specs: Sequence[PodSpec], estimates: dict[str, float | None]) -> list[PodSpec]:
    """Unknown costs first (in the given order), then longest expected first."""
    unknown = [s for s in specs if estimates.get(s.pod) is None]
    known = sorted((s for s in specs if estimates.get(s.pod) is not None),
                   key=lambda s: -(estimates[s.pod] or 0.0))
    return unknown + known


class Allocator:
    """Hands out CPU (and GPU) ids so that running pods never share a core.

    Parameters
    ----------
    jobs : int
        Most pods at once.
    cpus : sequence of int, optional
        The CPU ids pods may use; those this process may run on by default.
    gpus : int
        Visible CUDA devices.
    """

    def __init__(self, jobs: int, cpus: Sequence[int] | None = None, gpus: int = 0) -> None:
        if cpus is None:
            cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(
                range(os.cpu_count() or 1))
        self.jobs = jobs
        self.all_cpus = tuple(cpus)
        self.free_cpus = list(cpus)
        self.free_gpus = list(range(gpus))
        self.gpus = gpus
        self.held: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def need(self, spec: PodSpec) -> tuple[int, int]:
        """CPUs and GPUs the pod asks for, capped at what the machine has."""
        res = spec.resources
        cpus = min(max(int(res.get("cpus", 1)), 1), len(self.all_cpus))
        gpus = min(int(res.get("gpus", 0)), self.gpus)
        return cpus, gpus

    def fits(self, spec: PodSpec) -> bool:
        """Whether the pod can start now."""
        cpus, gpus = self.need(spec)
        return len(self.held) < self.jobs and cpus <= len(self.free_cpus) and gpus <= len(self.free_gpus)

    def take(self, spec: PodSpec) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        """Reserve the pod's CPU ids and GPU ids (``None``: GPUs untouched, for CPU pods)."""
        cpus, gpus = self.need(spec)
        got_cpus = tuple(self.free_cpus[:cpus])
        got_gpus = tuple(self.free_gpus[:gpus])
        del self.free_cpus[:cpus], self.free_gpus[:gpus]
        self.held[spec.pod] = (got_cpus, got_gpus)
        return got_cpus, (got_gpus if spec.resources.get("device") == "cuda" else None)

    def give_back(self, pod: str) -> None:
        """Release what ``pod`` held."""
        cpus, gpus = self.held.pop(pod, ((), ()))
        self.free_cpus = sorted(self.free_cpus + list(cpus))
        self.free_gpus = sorted(self.free_gpus + list(gpus))
