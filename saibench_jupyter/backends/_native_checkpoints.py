"""Checkpoints a native model reports while it runs: the ``checkpoint`` function it is given.

A ``Solver`` whose function takes a keyword ``checkpoint`` (``fn(x, checkpoint)``), or an
``Estimator`` whose ``fit`` does (``fit(x, y, checkpoint)``), receives a
:class:`CheckpointCalls`. Each call ``checkpoint(value)`` may become one checkpoint: the
spacing (every k-th call, or geometric) and the cap (``TrainSettings.checkpoints`` points per
stage, the final one included) decide which; the other calls return at once. A kept call
takes a snapshot (a copy of the value, or of the estimator), with the clock paused: what
the call costs is not the model's work, and its metrics are computed later, on the test
records, outside every timer.

A solver declared ``Solver(fn, sweep=True)`` reports separate solves (a tolerance sweep):
a kept call's work is then what the model did since its previous call, and the final
answer's what it did after its last one; returning the very answer it last reported makes
that call the final answer instead of a point of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..sail import tally_now

#: what a ``checkpoint_spacing`` setting may be
SPACING_HELP = "an integer k >= 1 (every k-th call), 'geometric' (calls 1, 2, 4, 8, ...) or 'geometric:r' (ratio r > 1)"


def spacing_ratio(spacing: int | str) -> tuple[int, float]:
    """``(k, r)`` for a spacing setting: every ``k``-th call (``r`` = 0), or geometric with ratio ``r``.

    Raises
    ------
    ValueError
        For anything but an integer k >= 1, ``"geometric"`` or ``"geometric:r"`` with r > 1.
    """
    if isinstance(spacing, bool):
        raise ValueError(f"checkpoint_spacing={spacing!r}: use {SPACING_HELP}")
    if isinstance(spacing, int):
        if spacing >= 1:
            return spacing, 0.0
        raise ValueError(f"checkpoint_spacing={spacing!r}: use {SPACING_HELP}")
    name, _, ratio = str(spacing).partition(":")
    if name == "geometric":
        try:
            r = float(ratio) if ratio else 2.0
        except ValueError:
            r = 0.0
        if r > 1:
            return 1, r
    raise ValueError(f"checkpoint_spacing={spacing!r}: use {SPACING_HELP}")


@dataclass(frozen=True)
class NativeCheckpoint:
    """One kept ``checkpoint(...)`` call.

    Attributes
    ----------
    call : int
        The call's number in the model's run (from 1): the iteration, when it calls once per iteration.
    ms : float
        The model's time from its start to the call, in ms (earlier calls' snapshots excluded).
    value : object
        The snapshot: a solver's answer for a batch, or a trainer state.
    counts : mapping
        The named work counters (``Count(name, n)``) from the model's start to the call.
    """

    call: int
    ms: float
    value: Any
    counts: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class NativeTrace:
    """What a native model reported during one ``predict`` or ``train_epoch``.

    Attributes
    ----------
    checkpoints : tuple of NativeCheckpoint
        The kept calls, in order.
    model_ms : float
        The final answer's model time (snapshots excluded): the model's own time to its end,
        or in a sweep after its last call.
    paused_ms : float
        The time that is not the final answer's work, which the runtime takes out of its
        timers: ``checkpoint`` calls and assembling the snapshots, and in a sweep the solves
        before the final one.
    calls : int
        How many times the model called ``checkpoint`` (the most over records).
    model_counts : mapping
        The named work counters of the final answer (the model's whole run, but in a sweep).
    paused_counts : mapping
        The named counters that are not the final answer's (a sweep's earlier solves).
    """

    checkpoints: tuple[NativeCheckpoint, ...]
    model_ms: float
    paused_ms: float
    calls: int
    model_counts: Mapping[str, float] = field(default_factory=dict)
    paused_counts: Mapping[str, float] = field(default_factory=dict)


class CheckpointCalls:
    """The ``checkpoint`` function given to one native run (one solver call, one ``fit``).

    Parameters
    ----------
    spacing : int or str
        The ``checkpoint_spacing`` setting (see :func:`spacing_ratio`).
    cap : int
        How many calls it keeps at most.
    snapshot : callable
        ``snapshot(value)``: what a kept call stores (a copy), given what the model passed.
    sweep : bool
        Whether each call reports a separate solve: its work counts from the previous call.
    """

    def __init__(self, spacing: int | str, cap: int, snapshot: Callable[[Any], Any], sweep: bool = False) -> None:
        self._every, self._ratio = spacing_ratio(spacing)
        self._next = 1.0
        self._cap = cap
        self._snapshot = snapshot
        self._sweep = sweep
        self.kept: list[NativeCheckpoint] = []
        self.calls = 0
        self.paused = 0.0
        #: the named counters (``Count``) of the final answer, at the run's end
        self.counts: dict[str, float] = {}
        #: a sweep's work before its final answer: model ms and named counters
        self.earlier_ms = 0.0
        self.earlier_counts: dict[str, float] = {}
        # a sweep's previous call: model ms and counters to it, the ones before, and what it reported
        self._at: tuple[float, dict[str, float]] = (0.0, {})
        self._before: tuple[float, dict[str, float]] = (0.0, {})
        self._reported: Any = None
        self._counted = tally_now()
        self._start = time.perf_counter()

    def _keeps(self, n: int) -> bool:
        if len(self.kept) >= self._cap:
            return False
        if not self._ratio:
            return n % self._every == 0
        if n < self._next:
            return False
        while self._next <= n:  # the next kept call: the first one at or past the next power of the ratio
            self._next *= self._ratio
        return True

    def __call__(self, value: Any = None) -> None:
        entered = time.perf_counter()
        self.calls += 1
        keep = self._keeps(self.calls)
        if keep or self._sweep:
            ms, counts = (entered - self._start - self.paused) * 1e3, self._since_start()
            if self._sweep:
                self._before, self._at, self._reported = self._at, (ms, counts), value
                ms, counts = ms - self._before[0], _minus(counts, self._before[1])
            if keep:
                self.kept.append(NativeCheckpoint(self.calls, ms, self._snapshot(value), counts))
        self.paused += time.perf_counter() - entered

    def stop(self, answer: Any = None) -> float:
        """End the run's clock; the final answer's model time in ms (snapshots excluded).

        Sets ``counts``, and for a sweep ``earlier_ms`` and ``earlier_counts``. In a sweep
        whose ``answer`` is the very value its last call reported, that call is the final
        answer (and no longer a point of its own).
        """
        end = time.perf_counter()
        total_ms, total = (end - self._start - self.paused) * 1e3, self._since_start()
        if not self._sweep:
            self.counts = total
            return total_ms
        if self.calls and answer is self._reported:
            if self.kept and self.kept[-1].call == self.calls:
                self.kept.pop()
            self._at = self._before  # the final answer's work: the last call's solve (and returning it)
        self.earlier_ms, self.earlier_counts = self._at[0], self._at[1]
        self.counts = _minus(total, self.earlier_counts)
        return total_ms - self.earlier_ms

    def _since_start(self) -> dict[str, float]:
        return _minus(tally_now(), self._counted)


def _minus(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {k: v - b.get(k, 0.0) for k, v in a.items()}
