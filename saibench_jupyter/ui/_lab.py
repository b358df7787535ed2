"""The kernel side of the JupyterLab extension: requests from the sidebar, checked strictly, answered.

:class:`LabBridge` is plain Python over a :class:`~saibench_jupyter.ui._notebook.Notebook`:
``handle(data)`` takes a message as it comes off the comm and returns the reply
(``LAB_PROTOCOL.md``, protocol 1). Every request is checked before anything happens: exact
keys, types, a known operation, scenario ids of the current lattice, run numbers of this
notebook, pod keys of its runs or of its results store. A request that is wrong gets an
error reply naming what is wrong and the fix, and changes nothing; no part of a message is
ever evaluated. The comm itself, and the pushes, are ``_lab_comm``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from ..pods import DEFAULT_EXECUTOR
from ._cells import NotebookError
from ._lab_state import StateCache, pod_status, run_status
from ._lab_types import PROTOCOL, Cancelled, ErrorReply, Hello, OkReply, PodDetail, Reply, Started, State

if TYPE_CHECKING:
    from ..planner import Lattice
    from ._handle import RunHandle
    from ._notebook import Notebook

#: Each operation and the args it takes, with their types as the protocol says them.
OPS: dict[str, tuple[str, ...]] = {"hello": (), "state": (), "discover": (), "run": ("scenarios",),
                                   "cancel": ("run",), "pod": ("pod",)}
_MAX_ID = 2**53
_POD_KEY = re.compile(r"([0-9a-f]{1,64})-r(\d{1,9})")
_FIX_STATE = "ask for state (or discover) and use its ids"


class _Invalid(Exception):
    """A request the protocol does not allow: the message says what is wrong and the fix."""


def _shown(value: object, limit: int = 60) -> str:
    """``value`` as an error message quotes it: its repr, cut short (a message may be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _type(value: object) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no number


def request_id(data: object) -> int | None:
    """The ``id`` of a message when it is a valid one (an error reply carries it), else None."""
    if isinstance(data, dict):
        value = data.get("id")
        if _is_int(value) and 0 <= cast("int", value) < _MAX_ID:
            return cast("int", value)
    return None


class LabBridge:
    """Answers the JupyterLab sidebar's requests for one notebook (see ``LAB_PROTOCOL.md``).

    Parameters
    ----------
    notebook : Notebook
        The kernel's notebook: its modules, lattice, runs and results store.
    executor : str
        How ``run`` runs pods (``warm`` by default, as ``%sail run``).
    jobs : int, optional
        Pods at once for those runs (the usable CPUs by default).
    """

    def __init__(self, notebook: Notebook, *, executor: str = DEFAULT_EXECUTOR, jobs: int | None = None) -> None:
        self.notebook = notebook
        self.executor = executor
        self.jobs = jobs
        self.cache = StateCache()
        self._ops: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "hello": self._hello, "state": lambda _: self.state(), "discover": lambda _: self.discover(),
            "run": self._run, "cancel": self._cancel, "pod": self._pod}

    # -- the entry point ----------------------------------------------------------------------------
    def handle(self, data: object) -> Reply:
        """The reply to one message: ``{"id", "ok": true, "result"}``, or ``{"id", "ok": false, "error"}``.

        Never raises for what a message holds: a bad request, and a request that fails
        inside (a ``NotebookError`` from ``run``), are error replies.
        """
        rid = request_id(data)
        try:
            op, args = self._check(data)
            result = self._ops[op](args)
        except (_Invalid, NotebookError) as exc:
            return self.error(rid, str(exc))
        except Exception as exc:  # the kernel must answer, never show a traceback for a sidebar click
            return self.error(rid, f"{type(exc).__name__}: {exc}")
        return cast("OkReply", {"id": rid, "ok": True, "result": result})

    @staticmethod
    def error(rid: int | None, message: str) -> ErrorReply:
        """An error reply."""
        return {"id": rid, "ok": False, "error": message}

    def _check(self, data: object) -> tuple[str, dict[str, Any]]:
        """The op and args of a well-formed request (its args' values are checked by each op)."""
        example = 'e.g. {"id": 1, "op": "state", "args": {}}'
        if not isinstance(data, dict):
            raise _Invalid(f"a request is an object with id, op and args, not {_type(data)}: send {example}")
        keys = set(data)
        if keys != {"id", "op", "args"}:
            raise _Invalid(_keys_error("a request", keys, ("id", "op", "args")) + f": send {example}")
        if request_id(data) is None:
            raise _Invalid(f"id {_shown(data['id'])} is not a whole number from 0 to 2**53 - 1: number each "
                           "request (0, 1, 2 ...)")
        op = data["op"]
        if not isinstance(op, str) or op not in OPS:
            raise _Invalid(f"op {_shown(op)} is not an operation: use one of {', '.join(OPS)}")
        args = data["args"]
        if not isinstance(args, dict):
            raise _Invalid(f"{op}: args is {_type(args)}, not an object: send {_args_example(op)}")
        if set(args) != set(OPS[op]):
            raise _Invalid(f"{op}: " + _keys_error("args", set(args), OPS[op]) + f": send {_args_example(op)}")
        return op, args

    # -- operations --------------------------------------------------------------------------------
    def _hello(self, args: Mapping[str, Any]) -> Hello:
        import saibench_jupyter

        return {"protocol": PROTOCOL, "version": saibench_jupyter.__version__}

    def state(self) -> State:
        """The sidebar's state, from the notebook's lattice (discovered only when the modules changed)."""
        return self.cache.state(self.notebook, self.notebook.lattice())

    def discover(self) -> State:
        """Discover again (``Notebook.lattice()``, as ``%sail discover``); the state after it."""
        return self.state()

    def _run(self, args: Mapping[str, Any]) -> Started:
        wanted = args["scenarios"]
        if wanted is not None:
            if not isinstance(wanted, list):
                raise _Invalid(f"run: scenarios is {_type(wanted)}: give a list of scenario ids, or null for every "
                               "scenario")
            if not wanted:
                raise _Invalid("run: scenarios is an empty list: select scenarios, or give null to run every one")
            known = self.cache.scenario_ids(self._lattice())
            seen: set[str] = set()
            for i, sid in enumerate(wanted):
                if not isinstance(sid, str):
                    raise _Invalid(f"run: scenarios[{i}] is {_type(sid)}, not a scenario id: {_FIX_STATE}")
                if sid not in known:
                    raise _Invalid(f"run: scenarios[{i}] {_shown(sid)} is not a scenario of the current lattice: "
                                   f"{_FIX_STATE}")
                if sid in seen:
                    raise _Invalid(f"run: scenarios[{i}] {_shown(sid)} is listed twice: list each scenario once")
                seen.add(sid)
        handle = self.notebook.run(None if wanted is None else list(wanted), executor=self.executor, jobs=self.jobs)
        return {"run": handle.number or 0}

    def _lattice(self) -> Lattice:
        return self.notebook.lattice()

    def _cancel(self, args: Mapping[str, Any]) -> Cancelled:
        number = args["run"]
        handle = self._handle(number)
        if handle.done:  # nothing to stop: say how it ended
            return {"run": handle.number or 0, "status": run_status(handle)}
        handle.cancel()
        return {"run": handle.number or 0, "status": "cancelled"}

    def _handle(self, number: object) -> RunHandle:
        runs = list(self.notebook.runs)
        listed = ", ".join(str(h.number) for h in runs) or "none yet"
        if number is None:
            if not runs:
                raise _Invalid("cancel: there is no run yet in this kernel: start one with run")
            return runs[-1]
        if not _is_int(number):
            raise _Invalid(f"cancel: run is {_type(number)}: give a run number of this notebook ({listed}), or "
                           "null for the last run")
        for handle in runs:
            if handle.number == number:
                return handle
        raise _Invalid(f"cancel: there is no run {_shown(number)} in this notebook: its runs are {listed}")

    def _pod(self, args: Mapping[str, Any]) -> PodDetail:
        key = args["pod"]
        if not isinstance(key, str):
            raise _Invalid(f"pod: pod is {_type(key)}, not a pod key: give <identity>-r<repeat> from a run's pods")
        match = _POD_KEY.fullmatch(key)
        if match is None:
            raise _Invalid(f"pod: {_shown(key)} is not a pod key: give <identity>-r<repeat> from a run's pods")
        detail = pod_detail(self.notebook, key, match.group(1), int(match.group(2)))
        if detail is None:
            raise _Invalid(f"pod: no run of this notebook and nothing in its results store has pod {key}: give a "
                           "pod key from a run's pods")
        return detail


def pod_detail(notebook: Notebook, key: str, identity: str, repeat: int) -> PodDetail | None:
    """Pod ``key`` of a run of ``notebook`` or of its results store, with its failure in full; None if neither has it.

    The run's handle says where the pod is now; the failure (fix, location, stderr tail,
    traceback) is read from the store, where the run wrote it before telling the handle.
    """
    from ..results import Results, StoreError

    pod = next((p for h in reversed(list(notebook.runs)) for p in h.planned if p.pod == key), None)
    detail: PodDetail = {"pod": key, "label": pod.label if pod is not None else key,
                         "status": pod_status(pod) if pod is not None else "", "kind": None, "message": None,
                         "fix": None, "location": None, "stderr": None, "traceback": None}
    if pod is not None:
        detail["kind"], detail["message"] = pod.kind, pod.message
    try:
        results = Results(notebook.store, [identity], versions="all")
    except StoreError:  # no store yet: what the run's handle knows is all there is
        return detail if pod is not None else None
    try:
        if pod is None:  # a pod of an earlier kernel's run: the store's row says what it is
            rows = results.to_dataframe()
            rows = rows[rows["repeat"] == repeat]
            if rows.empty:
                return None
            detail["label"], detail["status"] = str(rows["label"].iloc[0]), str(rows["status"].iloc[0])
        failures = results.failures()
        failures = failures[failures["repeat"] == repeat]
        if not failures.empty:
            row = failures.iloc[-1]  # the latest: a pod run again has only its last failure
            detail["kind"], detail["message"] = _text(row["kind"]), _text(row["message"])
            detail["fix"], detail["location"] = _text(row["fix"]), _text(row["location"])
            detail["stderr"] = _text(row["stderr"])
            detail["traceback"] = _text(row["traceback"])
    finally:
        results.store.close()
    return detail


def _text(value: object) -> str | None:
    """A store value as text; None for a missing one (pandas gives None or NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _keys_error(what: str, keys: set[str], wanted: tuple[str, ...]) -> str:
    """``args has keys x; it takes exactly y (missing: z; unexpected: w)``."""
    missing = [k for k in wanted if k not in keys]
    extra = sorted(_shown(k, 30) for k in keys - set(wanted))
    takes = f"exactly {', '.join(wanted)}" if wanted else "no keys"
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [f"unexpected {', '.join(extra)}"] if extra else []
    return f"{what} takes {takes} ({'; '.join(parts)})"


def _args_example(op: str) -> str:
    shown = {"run": '{"scenarios": ["<scenario id>", ...] or null}', "cancel": '{"run": <run number> or null}',
             "pod": '{"pod": "<identity>-r<repeat>"}'}
    return f"args {shown.get(op, '{}')}"
