"""The messages of the JupyterLab extension's comm (``saibench.lab``, protocol 1), as TypedDicts.

The front end (``labextension/src/protocol.ts``) declares the same shapes as TypeScript
interfaces; the protocol itself is fixed in ``LAB_PROTOCOL.md`` of issue 20. Every
front-end message is a :class:`Request` answered by one :class:`Reply` (``OkReply`` or
``ErrorReply``) with the same ``id``; the kernel also pushes :class:`StatePush`,
:class:`PodsPush` and :class:`RunPush`, which carry no ``id``.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

#: The protocol's version, sent by ``hello``.
PROTOCOL = 1
#: The comm target the front end opens.
TARGET = "saibench.lab"

Op = Literal["hello", "state", "discover", "run", "cancel", "pod"]
ModuleKindName = Literal["problem", "model", "metric", "converter", "software", "hardware", "ranking"]
RunStatus = Literal["running", "finished", "cancelled", "failed"]
PodStatusName = Literal["queued", "running", "ok", "diverged", "failed", "cancelled", "shared"]


# -- requests (front end -> kernel) ---------------------------------------------------------------
class NoArgs(TypedDict):
    """The args of ``hello``, ``state`` and ``discover``: none."""


class RunArgs(TypedDict):
    """The args of ``run``: scenario ids of the current lattice, or None for every scenario."""

    scenarios: list[str] | None


class CancelArgs(TypedDict):
    """The args of ``cancel``: a run number of this notebook, or None for the last run."""

    run: int | None


class PodArgs(TypedDict):
    """The args of ``pod``: a pod key, ``<identity>-r<repeat>``."""

    pod: str


class Request(TypedDict):
    """``{"id": 0 <= int < 2**53, "op": Op, "args": {...}}``."""

    id: int
    op: Op
    args: NoArgs | RunArgs | CancelArgs | PodArgs


# -- results ------------------------------------------------------------------------------------
class Hello(TypedDict):
    """What ``hello`` answers."""

    protocol: int
    version: str


class ModuleInfo(TypedDict):
    """One registered module."""

    kind: ModuleKindName
    name: str
    doc: str
    origin: str
    line: int


class SupportInfo(TypedDict):
    """The names one source's support code defines."""

    origin: str
    names: list[str]


class ModelNode(TypedDict):
    """One problem × model pair: its scenario ids, or why it has none.

    ``labels`` holds each scenario's label, as ``%sail discover`` prints it, in the order of ``scenarios``.
    """

    model: str
    scenarios: list[str]
    labels: list[str]
    rejected: str | None


class ProblemNode(TypedDict):
    """A problem and its models."""

    problem: str
    models: list[ModelNode]


class Counts(TypedDict):
    """Pods over all runs: queued (not started yet), running, done (ok, diverged, shared) and failed."""

    queued: int
    running: int
    done: int
    failed: int


class PodInfo(TypedDict):
    """One pod of a run; ``kind`` and ``message`` say why a failed (or shared) pod is so."""

    pod: str
    label: str
    repeat: int
    status: PodStatusName
    kind: str | None
    message: str | None


class RunInfo(TypedDict):
    """One run of the notebook, with every pod it plans (those not started yet ``queued``)."""

    run: int
    status: RunStatus
    executor: str
    pods: list[PodInfo]


class State(TypedDict):
    """What the sidebar shows: modules, discovery, runs and the status bar's counts."""

    modules: list[ModuleInfo]
    support: list[SupportInfo]
    scenarios: int
    rejections: int
    tree: list[ProblemNode]
    runs: list[RunInfo]
    counts: Counts


class Started(TypedDict):
    """What ``run`` answers: the new run's number."""

    run: int


class Cancelled(TypedDict):
    """What ``cancel`` answers: the run and its status (``cancelled``, or how it had ended already)."""

    run: int
    status: str


class PodDetail(TypedDict):
    """One pod in full: why it failed, where, its stderr tail and traceback."""

    pod: str
    label: str
    status: str
    kind: str | None
    message: str | None
    fix: str | None
    location: str | None
    stderr: str | None
    traceback: str | None


# -- replies and pushes (kernel -> front end) ---------------------------------------------------------
class OkReply(TypedDict):
    """A valid request's answer."""

    id: int
    ok: Literal[True]
    result: Hello | State | Started | Cancelled | PodDetail


class ErrorReply(TypedDict):
    """An invalid or failed request's answer: what is wrong and the fix (nothing changed)."""

    id: int | None
    ok: Literal[False]
    error: str


Reply = OkReply | ErrorReply


class StatePush(TypedDict):
    """After discovery, or a cell that changed the modules."""

    event: Literal["state"]
    state: State


class PodsPush(TypedDict):
    """Pods of a run whose status changed, with the counts over all runs."""

    event: Literal["pods"]
    run: int
    counts: Counts
    pods: list[PodInfo]


class RunPush(TypedDict):
    """A run started or ended."""

    event: Literal["run"]
    run: int
    status: RunStatus


Push = StatePush | PodsPush | RunPush
Message = dict[str, Any]  # a message as it comes off the wire, before validation
