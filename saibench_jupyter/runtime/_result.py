"""What a run gives back: points (one per stage × checkpoint), a status, and errors that say where."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..sail import COUNTERS as COUNTERS  # re-exported: runtime/_session.py and tests read it here
from ..sail import Location

if TYPE_CHECKING:
    from ._trained import TrainedModel


@dataclass(frozen=True)
class RunError:
    """Why a run (or one metric of it) failed, and where.

    Parameters
    ----------
    what : str
        The message.
    module : str, optional
        The module whose code failed (problem, model, converter, metric).
    location : Location, optional
        The file or cell and line.
    stage, checkpoint : int, optional
        Where in the run it happened (both count from 1).
    kind : str
        ``error`` (a module raised), ``diverged`` (the loss became NaN/inf) or ``internal``.
    fix : str, optional
        What to change.
    traceback : str, optional
        The Python traceback of the exception, for the details (not part of ``str``).
    """

    what: str
    module: str | None = None
    location: Location | None = None
    stage: int | None = None
    checkpoint: int | None = None
    kind: str = "error"
    fix: str | None = None
    traceback: str | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        where = [w for w in (f"in {self.module}" if self.module else "",
                             f"at {self.location}" if self.location else "",
                             f"stage {self.stage}" if self.stage else "",
                             f"checkpoint {self.checkpoint}" if self.checkpoint else "") if w]
        text = f"{self.what} ({', '.join(where)})" if where else self.what
        return text + (f"\n    fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Point:
    """One stage × checkpoint of a run: its work counters and metric values.

    ``metrics`` holds one number per metric (a metric that returns several numbers, such
    as ``CriticalLoss``'s top 1% losses, is their mean; ``values`` keeps them all).
    """

    stage: int
    checkpoint: int
    epoch: int
    counters: Mapping[str, float]
    metrics: Mapping[str, float | None]
    values: Mapping[str, Any] = field(default_factory=dict)
    loss: float | None = None

    def __getitem__(self, name: str) -> Any:
        if name in self.metrics:
            return self.metrics[name]
        return self.counters[name]


@dataclass
class ScenarioResult:
    """The outcome of one scenario run.

    Attributes
    ----------
    scenario : str
        The scenario's id.
    label : str
        ``MNIST × MLP(hiddenSize=128) × PyTorch × CPU``.
    status : str
        ``ok``, ``failed`` or ``diverged``.
    error : RunError or None
        Why the run did not finish.
    points : list of Point
        One per stage × checkpoint, in order (kept when a later stage fails).
    compile_ms : float
        One-time costs, kept out of the work counters: compilation, moving the data to the
        device and a first, untimed training step per task and stage (``Trainer.compile``),
        and the first prediction per batch shape.
    warnings : list of RunError
        Metrics that failed at some checkpoint (the run itself went on).
    model : TrainedModel or None
        The trained model, when the run was asked to keep it (``keep_model=True``) and
        finished: a predictor in the problem's types (``model.predict(records)``,
        ``model(record)``, ``model.native``). None otherwise: nothing is kept by default.
    """

    scenario: str
    label: str
    backend: str
    device: str
    settings: Mapping[str, Any]
    status: str = "ok"
    error: RunError | None = None
    points: list[Point] = field(default_factory=list)
    compile_ms: float = 0.0
    wall_ms: float = 0.0
    warnings: list[RunError] = field(default_factory=list)
    model: TrainedModel | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the run finished."""
        return self.status == "ok"

    def series(self, name: str) -> list[float | None]:
        """One metric or counter over the points."""
        return [p[name] for p in self.points]

    def to_dataframe(self) -> Any:
        """The points as a pandas DataFrame: one row per stage × checkpoint, with the run's ``compile_ms``."""
        import pandas as pd

        rows = []
        for p in self.points:
            rows.append({"scenario": self.scenario, "stage": p.stage, "checkpoint": p.checkpoint,
                         "epoch": p.epoch, "loss": p.loss, **dict(p.counters), "compile_ms": self.compile_ms,
                         **dict(p.metrics)})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        tail = f", error={self.error.what!r}" if self.error else ""
        return f"ScenarioResult({self.label}: {self.status}, {len(self.points)} points{tail})"
