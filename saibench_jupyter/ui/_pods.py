"""Where one pod of a background run is: its status, stage and checkpoint, failure or metric warnings, as a line.

A :class:`PodStatus` is what a :class:`~saibench_jupyter.ui._handle.RunHandle` keeps of
each pod, moved on by each event of the run (:meth:`PodStatus.after`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Final statuses of a pod, in the order summaries count them.
_ENDED = ("ok", "diverged", "failed", "cancelled", "interrupted")
_MARK = {"ok": "✓", "diverged": "~", "failed": "✗", "cancelled": "■", "interrupted": "■", "running": "▶"}


@dataclass(frozen=True)
class PodStatus:
    """Where one pod is: its scenario label and repeat, status, stage, checkpoint, failure.

    ``warnings`` holds ``(metric, message)`` for each metric that failed in the pod (the
    first message of each): the pod still ends ``ok``, with the mark ``⚠``. ``notebook``:
    where its executed notebook is (a path or URL; ``executor="papermill"``), once said.
    """

    pod: str
    label: str
    repeat: int = 0
    status: str = "running"
    stage: int | None = None
    checkpoint: int | None = None
    epoch: int | None = None
    kind: str | None = None
    message: str | None = None
    started: float = 0.0
    seconds: float | None = None
    warnings: tuple[tuple[str, str], ...] = ()
    notebook: str | None = None

    def warning_mark(self) -> str:
        """``⚠ 1 metric failed (RMSE)``, or "" when every metric gave its values."""
        n = len(self.warnings)
        if not n:
            return ""
        return f"⚠ {n} metric{'s' * (n != 1)} failed ({', '.join(name for name, _ in self.warnings)})"

    def line(self) -> str:
        """One line of text: ``✗ label r0 failed (error): message``, ``✓ label r0 ok ⚠ 1 metric failed (RMSE) ...``."""
        head = f"{_MARK.get(self.status, '·')} {self.label} r{self.repeat} {self.status}"
        if self.warnings:
            head += " " + self.warning_mark()
        if self.status == "running":
            where = [f"stage {self.stage}"] if self.stage else []
            where += [f"checkpoint {self.checkpoint}"] if self.checkpoint else []
            return f"{head} {' · '.join(where)}".rstrip()
        if self.status in ("failed", "interrupted"):
            return f"{head} ({self.kind}): {self.message or ''}"
        if self.status == "cancelled":
            return head
        return f"{head} in {self.seconds or 0:.2f} s"

    def after(self, event: Mapping[str, Any]) -> PodStatus:
        """Where the pod is once ``event`` (one of its run's events) has come."""
        pod = self
        kind = event.get("event")
        if kind == "stage":
            pod = dataclasses.replace(pod, stage=event.get("stage"), checkpoint=None)
        elif kind == "checkpoint":
            pod = dataclasses.replace(pod, stage=event.get("stage"), checkpoint=event.get("checkpoint"),
                                      epoch=event.get("epoch"))
        elif kind == "finished":
            seconds = float(event.get("wall_ms") or 0) / 1e3 or time.monotonic() - pod.started
            pod = dataclasses.replace(pod, status=str(event.get("status", "ok")), seconds=seconds)
        elif kind == "warning":
            name = str(event.get("name") or "?")
            if all(name != known for known, _ in pod.warnings):
                pod = dataclasses.replace(pod, warnings=(*pod.warnings, (name, str(event.get("message") or ""))))
        elif kind == "artifact" and event.get("kind", "notebook") == "notebook" and event.get("location"):
            pod = dataclasses.replace(pod, notebook=str(event["location"]))
        elif kind == "shared":  # another run ran it at the same time: its result is this run's
            by = f"run {event['run']}" if event.get("run") is not None else "another run"
            pod = dataclasses.replace(pod, status=str(event.get("status") or "cancelled"), kind=by,
                                      message=f"the result of {by}, run at the same time",
                                      seconds=time.monotonic() - pod.started)
        elif kind == "failed":
            # The executor reports a pod it stopped because the run was cancelled as kind "interrupted".
            status = "cancelled" if event.get("kind") == "interrupted" else "failed"
            message = str(event.get("message") or "").strip().splitlines()
            pod = dataclasses.replace(pod, status=status, kind=event.get("kind"),
                                      message=message[0] if message else "", seconds=time.monotonic() - pod.started)
        return pod


def _note_of(pod: PodStatus) -> str:
    if pod.status in ("failed", "interrupted"):
        return f"{pod.kind}: {pod.message or ''}"
    return f"{pod.seconds:.2f} s" if pod.seconds is not None else ""
