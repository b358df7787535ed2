"""The comm target ``saibench.lab``: the JupyterLab sidebar's requests in, replies and pushes out.

``%load_ext saibench_jupyter`` calls :func:`start_lab`, which registers the target with
the kernel's comm manager (``comm.get_comm_manager()``: ipykernel's in a kernel, the
``comm`` package's own in a plain IPython shell, where no front end ever opens it). Each
comm the front end opens gets a :class:`~saibench_jupyter.ui._lab.LabBridge` reply per
request. Pushes go to every open comm:

* ``state`` after a cell that changed the modules (IPython's ``post_run_cell``), built on
  the kernel's thread, sent at most 4 times a second;
* ``run`` when a run starts (``Notebook.subscribe_runs``) and when it ends;
* ``pods`` with the pods whose status changed (the run's events, from its thread), at
  most 4 times a second per run, and always before the run's end; the run's pods come
  first as ``queued``, all together, as soon as it has planned them.

ipykernel sends comm messages through its IOPub thread, so sending from a run's thread
or a timer is safe.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._lab import LabBridge
from ._lab_state import counts, pod_info, run_status
from ._lab_types import TARGET, PodsPush, Push, Reply, RunPush, State, StatePush
from ._throttle import Throttle

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ._handle import RunHandle
    from ._notebook import Notebook

#: Seconds between two pushes of one kind (the protocol allows 4 a second).
THROTTLE = 0.25
#: The lab of each shell the extension is loaded in: id(shell) -> its comms.
_LABS: dict[int, LabComms] = {}


class _RunWatch:
    """Follows one run: its pods whose status changed go out as ``pods`` pushes, its end as a ``run`` push."""

    def __init__(self, lab: LabComms, handle: RunHandle) -> None:
        self.lab = lab
        self.handle = handle
        self._lock = threading.Lock()
        self._changed: set[str] = set()  # pods with an event since the last push
        self._pushed: dict[str, str] = {}  # pod -> the status last pushed
        self.throttle = Throttle(THROTTLE, self._send)
        self.unsubscribe: Callable[[], None] = lambda: None  # a run that already ended calls on_event at once
        self.unsubscribe = handle.subscribe(self.on_event)

    def on_event(self, event: dict[str, Any]) -> None:  # from the run's thread
        if event.get("event") == "done":
            self.throttle.flush()
            self.unsubscribe()
            self.lab.push(RunPush(event="run", run=self.handle.number or 0, status=run_status(self.handle)))
            return
        if event.get("event") == "planned":  # every pod of the run, queued: the sidebar lists them all at once
            keys = {str(p.get("pod")) for p in event.get("pods") or ()}
        elif event.get("pod") is not None:
            keys = {str(event["pod"])}
        else:
            return
        with self._lock:
            self._changed |= keys
        self.throttle.poke()

    def _send(self) -> None:
        with self._lock:
            keys, self._changed = self._changed, set()
        if not keys or not self.lab.comms:  # no sidebar open: it asks for the state when it opens
            return
        pods = []
        for pod in self.handle.planned:
            if pod.pod in keys:
                info = pod_info(pod)
                if self._pushed.get(pod.pod) != info["status"]:  # a stage or a checkpoint is no change of status
                    self._pushed[pod.pod] = info["status"]
                    pods.append(info)
        if pods:
            self.lab.push(PodsPush(event="pods", run=self.handle.number or 0, counts=counts(self.lab.notebook.runs),
                                   pods=pods))


class LabComms:
    """The comm target of one shell: replies from a :class:`LabBridge`, and the pushes.

    Parameters
    ----------
    shell : InteractiveShell
        The shell whose cells and notebook it follows.
    notebook : Notebook
        The notebook behind the magics.
    bridge : LabBridge, optional
        What answers the requests (one over ``notebook`` by default).
    """

    def __init__(self, shell: InteractiveShell, notebook: Notebook, bridge: LabBridge | None = None) -> None:
        self.shell = shell
        self.notebook = notebook
        self.bridge = bridge if bridge is not None else LabBridge(notebook)
        self.comms: list[Any] = []
        self._lock = threading.Lock()
        self._version = notebook.repository.version
        self._state: State | None = None
        self._state_push = Throttle(THROTTLE, self._send_state)
        self._watches: list[_RunWatch] = []
        self._unsubscribe: Callable[[], None] | None = None

    def register(self) -> None:
        """Register the comm target and follow the shell's cells and the notebook's runs."""
        import comm

        comm.get_comm_manager().register_target(TARGET, self._open)
        self.shell.events.register("post_run_cell", self._after_cell)
        self._unsubscribe = self.notebook.subscribe_runs(self._follow)
        for handle in self.notebook.runs:
            if not handle.done:  # a run started before: its end still goes out
                self._follow(handle, announce=False)

    def unregister(self) -> None:
        """Unregister the target, close the open comms (the sidebar then offers to load SAIBench again)."""
        import comm

        manager = comm.get_comm_manager()
        if manager.targets.get(TARGET) == self._open:  # not another shell's
            manager.unregister_target(TARGET, self._open)
        try:
            self.shell.events.unregister("post_run_cell", self._after_cell)
        except ValueError:
            pass  # already gone
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._state_push.cancel()
        for watch in self._watches:
            watch.unsubscribe()
            watch.throttle.cancel()
        with self._lock:
            comms, self.comms = self.comms, []
        for channel in comms:
            try:
                channel.close()
            except Exception as exc:  # a front end that went away must not stop the unloading
                print(f"saibench: could not close the lab's comm: {exc!r}", file=sys.stderr)

    # -- requests --------------------------------------------------------------------------------
    def _open(self, channel: Any, msg: dict[str, Any]) -> None:
        with self._lock:
            self.comms.append(channel)
        channel.on_msg(lambda message: self._request(channel, message))
        channel.on_close(lambda message: self._closed(channel))

    def _closed(self, channel: Any) -> None:
        with self._lock:
            if channel in self.comms:
                self.comms.remove(channel)

    def _request(self, channel: Any, msg: Any) -> None:
        content = msg.get("content") if isinstance(msg, dict) else None
        data = content.get("data") if isinstance(content, dict) else None
        reply: Reply = self.bridge.handle(data)
        self._send(channel, reply)

    # -- pushes ----------------------------------------------------------------------------------
    def push(self, message: Push) -> None:
        """Send a push to every open comm (from any thread)."""
        with self._lock:
            comms = list(self.comms)
        for channel in comms:
            self._send(channel, message)

    def _send(self, channel: Any, message: Reply | Push) -> None:
        try:
            channel.send(dict(message))
        except Exception as exc:  # a closed front end: forget it, never fail a run or a cell
            print(f"saibench: the lab's comm failed, closing it: {exc!r}", file=sys.stderr)
            self._closed(channel)

    def _after_cell(self, result: Any) -> None:
        """After a cell: when it changed the modules and a sidebar is open, push the state (throttled)."""
        version = self.notebook.repository.version
        if version == self._version:
            return
        self._version = version
        with self._lock:
            if not self.comms:
                return
        try:
            state = self.bridge.state()  # on the kernel's thread: discovery is not thread-safe
        except Exception as exc:  # a module discovery cannot take: the sidebar's next state says why
            print(f"saibench: the lab's state could not be built: {exc!r}", file=sys.stderr)
            return
        with self._lock:
            self._state = state
        self._state_push.poke()

    def _send_state(self) -> None:
        with self._lock:
            state, self._state = self._state, None
        if state is not None:
            self.push(StatePush(event="state", state=state))

    def _follow(self, handle: RunHandle, announce: bool = True) -> None:
        if announce:
            self.push(RunPush(event="run", run=handle.number or 0, status="running"))
        self._watches = [w for w in self._watches if not w.handle.done]
        self._watches.append(_RunWatch(self, handle))


def start_lab(shell: InteractiveShell, notebook: Notebook) -> LabComms | None:
    """Register ``saibench.lab`` for ``shell`` (``%load_ext``); None where there is no ``comm`` package."""
    if id(shell) in _LABS:
        return _LABS[id(shell)]
    try:
        import comm  # noqa: F401  (ipykernel's dependency; a bare IPython may lack it)
    except ImportError:
        return None
    lab = LabComms(shell, notebook)
    lab.register()
    _LABS[id(shell)] = lab
    return lab


def stop_lab(shell: InteractiveShell) -> None:
    """Unregister what :func:`start_lab` registered for ``shell``."""
    lab = _LABS.pop(id(shell), None)
    if lab is not None:
        lab.unregister()


def lab_of(shell: InteractiveShell) -> LabComms | None:
    """The lab registered for ``shell``, if any."""
    return _LABS.get(id(shell))
