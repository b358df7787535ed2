"""Background runs: pods run on a thread while the kernel keeps executing cells.

A :class:`RunHandle` wraps one :func:`saibench_jupyter.run` call on a daemon thread. It
follows every event (per-pod status, stage, checkpoint, failure), estimates the time
left from the pods that finished, and shows a live display in the output area of the
cell that started it (an IPython display updated in place, throttled). Anything the run
raises is kept on the handle and shown there; it never surfaces in an unrelated cell.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import statistics
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._formatting import notebook_cell_html
from ._pods import _ENDED, _MARK, PodStatus, _note_of
from ._throttle import Throttle

if TYPE_CHECKING:
    from ..planner import Scenario
    from ..pods import Executor
    from ..results import Results

Subscriber = Callable[[dict[str, Any]], None]
#: Seconds between two updates of a live display (events can come by the hundred per second).
THROTTLE = 0.3
#: Seconds ``start()`` waits for the run to have read the repository (then the cells may change it).
PREPARE_WAIT = 30.0
_LIVE: weakref.WeakSet[RunHandle] = weakref.WeakSet()


class RunFailedError(RuntimeError):
    """The run itself failed (not a pod: those are results); the cause is chained."""


class RunHandle:
    """One run in the background: progress, ETA, results, cancellation, live display.

    Made by :meth:`Notebook.run <saibench_jupyter.ui._notebook.Notebook.run>`; the pods
    run as :func:`saibench_jupyter.run` runs them, with every event stored as it arrives.

    Parameters
    ----------
    scenarios : sequence of Scenario
        What to run.
    executor : Executor
        Where the pods run (an instance: cancelling goes through it).
    store : path
        The results store.
    repeats, rerun, timeout, settings, keep_models
        As :func:`saibench_jupyter.run` takes them.

    Attributes
    ----------
    total : int
        Pods this run runs (known once it started; those the store held are not counted).
    skipped : int
        Pods the store already held, not run again.
    error : BaseException or None
        What the run itself raised (failed pods are results, not errors); ``traceback`` has the details.
    number : int or None
        The run's number in its notebook (1 for the kernel's first run), once it has one.
    """

    def __init__(self, scenarios: Sequence[Scenario], executor: Executor, *, store: str | os.PathLike[str],
                 repeats: int = 1, rerun: bool | Literal["failed"] = False, timeout: float | None = 600.0,
                 settings: Mapping[str, Any] | None = None, keep_models: bool = False) -> None:
        self.scenarios = list(scenarios)
        self.executor = executor
        self.store = Path(store)
        self._options: dict[str, Any] = {"repeats": repeats, "rerun": rerun, "timeout": timeout,
                                         "settings": dict(settings) if settings else None,
                                         "keep_models": keep_models}
        # The kept models (inline executor only): filled as pods finish, so a handle needs no store for them.
        self._models: Mapping[str, Any] = executor.keep_models() if keep_models else {}
        self._lock = threading.RLock()
        self._prepared = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._pods: dict[str, PodStatus] = {}
        self._planned: dict[str, PodStatus] = {}  # every pod the run will run, as queued (its "planned" event)
        self._subscribers: list[Subscriber] = []
        self._views: list[Any] = []  # IPython DisplayHandles updated from the run's thread
        self._shown_in: int | None = None
        self._refreshing = Throttle(THROTTLE, self._update_views)  # the live displays, at most every THROTTLE s
        self._status = "starting"
        self.total = 0
        self.skipped = 0
        self._note = ""
        #: ``3 pods were run by run 12 at the same time: their results are used``, once the run ended.
        self.shared_note: str | None = None
        #: The cluster's dashboard (``executor="dask"``), once the executor started.
        self.dashboard: str | None = None
        self._cancelled = False
        self._started = time.monotonic()
        self._ended: float | None = None
        # The run's scenario identities once it ended well; its Results are opened when asked for (a handle
        # must not hold a store's connection: a notebook makes hundreds of runs).
        self._identities: list[str] | None = None
        self._results: weakref.ref[Results] | None = None
        self.number: int | None = None
        self.error: BaseException | None = None
        self.traceback: str | None = None

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the run's thread; return once it has read what it runs (the cells may change then)."""
        if self._thread is not None:
            return
        _watch_exit(self)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._main, name="saibench-run", daemon=True)
        self._thread.start()
        # Pod specs copy the repository's sources before the run's "planned" event: a cell
        # run right after must not change what this run runs.
        self._prepared.wait(PREPARE_WAIT)

    def _main(self) -> None:
        from ..pods import run

        try:
            results = run(self.scenarios, executor=self.executor, store=self.store, progress=self._on_event,
                          **self._options)
            # The run's store is closed with the run: its connection (two descriptors, a page cache) would
            # otherwise live as long as the handle.
            results.store.close()
            with self._lock:
                self._identities = results.identities or []
                self._status = "cancelled" if self._cancelled else "finished"
        except BaseException as exc:  # the thread's top: kept on the handle, never raised into a cell
            import traceback

            with self._lock:
                self.error = exc
                self.traceback = traceback.format_exc()
                self._status = "error"
        finally:
            self._ended = time.monotonic()
            self._prepared.set()
            self._done.set()
            self._publish({"event": "done", "status": self._status,
                           "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}"})
            self._refresh(force=True)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        with self._lock:
            if kind == "run" and event.get("status") == "started":
                self.total = int(event.get("pods") or 0)
                self.skipped = int(event.get("skipped") or 0)
                self._status = "running"
            elif kind == "environment":
                self._note = str(event.get("message", ""))
            elif kind == "cluster":
                self.dashboard = str(event.get("dashboard"))
            elif kind == "planned":  # right after "started": start() returns once the run's pods are known
                self._planned = {str(p["pod"]): PodStatus(str(p["pod"]), str(p.get("label", p["pod"])),
                                                          int(p.get("repeat") or 0), status="queued")
                                 for p in event.get("pods") or ()}
                self._prepared.set()
            elif kind == "run" and event.get("note"):
                self.shared_note = str(event["note"])  # pods another run ran at the same time
            elif event.get("pod") is not None:
                self._update_pod(str(event["pod"]), event)
        if self._cancelled and kind == "started":
            self.executor.cancel()  # a pod that started as we cancelled: stop it too
        self._publish(event)
        self._refresh()

    def _update_pod(self, key: str, event: dict[str, Any]) -> None:
        pod = self._pods.get(key) or PodStatus(key, str(event.get("label", key)), int(event.get("repeat") or 0),
                                               started=time.monotonic())
        self._pods[key] = pod.after(event)

    def _publish(self, event: dict[str, Any]) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as exc:  # a broken dashboard must not stop the run
                print(f"saibench: a run subscriber failed: {exc!r}", file=sys.stderr)

    # -- the public surface ---------------------------------------------------------------------
    @property
    def status(self) -> str:
        """``starting``, ``running``, ``finished``, ``cancelled`` or ``error`` (the run itself failed)."""
        return self._status

    @property
    def done(self) -> bool:
        """True once the run has ended (however it ended)."""
        return self._done.is_set()

    @property
    def results(self) -> Results | None:
        """The run's :class:`~saibench_jupyter.results.Results` once it has ended (None before, or on error).

        Opened from the store's file when asked for (the same object while one is in use),
        so that a finished run holds no open store.

        Raises
        ------
        StoreError
            When the store's file can no longer be read (moved away, damaged).
        """
        from ..results import Results

        with self._lock:
            if self._identities is None:
                return None
            results = self._results() if self._results is not None else None
            if results is None or results.store.closed:
                results = Results(self.store, self._identities)
                results.models = self._models
                self._results = weakref.ref(results)
            return results

    @property
    def models(self) -> Mapping[str, Any]:
        """The trained models of a run with ``keep_models=True``, by scenario label or id (empty otherwise).

        Each is a :class:`~saibench_jupyter.runtime.TrainedModel`: ``.predict(records)``,
        ``(record)``, ``.native``. A model comes as its pod finishes ``ok``.
        """
        return self._models

    @property
    def pods(self) -> list[PodStatus]:
        """Every pod seen so far, in the order they started."""
        with self._lock:
            return list(self._pods.values())

    @property
    def planned(self) -> list[PodStatus]:
        """Every pod of the run, in the run's order: those not started yet ``queued`` (``cancelled`` once it ended)."""
        ended = self.done  # first: a run that ended has had all its pods' events
        with self._lock:
            seen, planned = dict(self._pods), list(self._planned.values())
        pods = [seen.pop(p.pod, dataclasses.replace(p, status="cancelled") if ended else p) for p in planned]
        return pods + list(seen.values())

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it ended)."""
        return (self._ended or time.monotonic()) - self._started

    @property
    def eta(self) -> float | None:
        """Seconds left, estimated from the durations of the pods that finished (None before one did)."""
        if self.done:
            return 0.0
        pods = self.pods
        durations = [p.seconds for p in pods if p.status in ("ok", "diverged", "failed") and p.seconds]
        if not durations:
            return None
        typical = statistics.median(durations)
        now = time.monotonic()
        running = [p for p in pods if p.status == "running"]
        waiting = max(self.total - len(pods), 0)
        work = waiting * typical + sum(max(typical - (now - p.started), 0.0) for p in running)
        return work / max(min(self.executor.jobs, waiting + len(running)), 1)

    def wait(self, timeout: float | None = None) -> Results:
        """Block until the run ends; return its results.

        Raises
        ------
        TimeoutError
            When it is still running after ``timeout`` seconds (it goes on).
        RunFailedError
            When the run itself failed (failed pods are results, not errors).
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"the run is still going after {timeout:g} s ({self.summary()}); "
                               "wait again, or cancel() it")
        results = self.results
        if self.error is not None or results is None:
            raise RunFailedError(f"the run failed: {type(self.error).__name__}: {self.error}") from self.error
        return results

    def cancel(self) -> None:
        """Stop the run: running pods are killed, waiting ones skipped (the store keeps what finished).

        Stopped and skipped pods are ``cancelled`` in the store: not results, so the next
        run of the same scenarios does them. The inline executor lets its running pod finish.
        """
        if self.done:
            return
        self._cancelled = True
        self.executor.cancel()
        self._refresh(force=True)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of the run (from its thread); return an unsubscriber.

        Events are those of :func:`saibench_jupyter.run` (``docs/benchpods.md``), then a
        last ``{"event": "done", "status": ..., "error": ...}``, sent at once to a
        subscriber that comes after the end.
        """
        self._subscribers.append(callback)
        if self.done:
            callback({"event": "done", "status": self._status,
                      "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}"})
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    # -- display -------------------------------------------------------------------------------
    def summary(self) -> str:
        """One line: the status, pods done out of all, failures, time left or taken."""
        pods = self.pods
        counts = {s: sum(1 for p in pods if p.status == s) for s in _ENDED}
        ended = sum(counts.values())
        if self._status == "error":
            return f"the run failed: {type(self.error).__name__}: {self.error} (.traceback has the details)"
        if self._status == "starting":
            return "preparing"
        parts = [f"{ended} of {self.total} pods done" if not self.done else f"{self.total} pods"]
        if any(counts.values()):
            parts[-1] += " (" + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ")"
        if self.skipped:
            parts.append(f"{self.skipped} already in the store")
        eta = self.eta
        if self.done:
            parts.append(f"{self.elapsed:.1f} s")
        elif eta is not None:
            parts.append(f"ETA ~{eta:.0f} s")
        if self._note and not self.done and not pods:
            parts.append(self._note)
        return f"{self._status}: " + ", ".join(parts)

    def warning_lines(self) -> list[str]:
        """One line per metric that failed in this run's pods: ``⚠ metric RMSE failed in 3 of 4 pods: ...``."""
        from ..results import warning_line

        pods = self.pods
        failed: dict[str, list[str]] = {}
        for pod in pods:
            for name, message in pod.warnings:
                failed.setdefault(name, []).append(message)
        lines = []
        for name, messages in sorted(failed.items()):  # by name, as Results.warning_lines says them
            distinct = list(dict.fromkeys(messages))
            common = max(distinct, key=messages.count)
            lines.append(warning_line(name, len(messages), max(self.total, len(pods)), common, len(distinct) - 1))
        return lines

    def __repr__(self) -> str:
        return f"RunHandle({self.summary()})"

    def text(self, limit: int = 30) -> str:
        """The summary, a line per metric that failed, and one line per pod (at most ``limit``)."""
        pods = self.pods
        lines = [f"SAIBench run — {self.summary()}", *("  " + w for w in self.warning_lines())]
        lines += [f"  {self.shared_note}"] if self.shared_note else []
        lines += [f"  {self.executor.name.capitalize()} dashboard: {self.dashboard}"] if self.dashboard else []
        lines += ["  " + p.line() for p in pods[:limit]]
        if len(pods) > limit:
            lines.append(f"  … {len(pods) - limit} more pods")
        waiting = self.total - len(pods)
        if waiting > 0 and not self.done:
            lines.append(f"  … {waiting} waiting")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self, limit: int = 50) -> str:
        pods = self.pods
        ended = sum(1 for p in pods if p.status in _ENDED)
        bar = "" if self.done else (f'<progress value="{ended}" max="{max(self.total, 1)}" '
                                    'style="width: 20em"></progress>')
        rows = "".join(
            f"<tr><td>{_MARK.get(p.status, '')}</td><td>{escape(p.label)}</td><td>{p.repeat}</td>"
            f"<td>{escape(p.status)} {escape(p.warning_mark())}</td><td>{p.stage or ''}</td>"
            f"<td>{p.checkpoint or ''}</td><td>{escape(_note_of(p))}</td><td>{notebook_cell_html(p.notebook)}</td>"
            "</tr>" for p in pods[:limit])
        warned = "".join(f"<br>{escape(w)}" for w in self.warning_lines())
        more = f"<p>… {len(pods) - limit} more pods</p>" if len(pods) > limit else ""
        if self.dashboard:
            name = escape(self.executor.name.capitalize())
            warned += f'<br><a href="{escape(self.dashboard)}" target="_blank">{name} dashboard</a>'
        table = ("<table><thead><tr><th></th><th>scenario</th><th>repeat</th><th>status</th><th>stage</th>"
                 f"<th>checkpoint</th><th></th><th></th></tr></thead><tbody>{rows}</tbody></table>") if rows else ""
        return (f"<div><b>SAIBench run</b> — {escape(self.summary())}{warned}<br>{bar}{table}{more}</div>")

    def _bundle(self) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self._repr_html_()}

    def show(self) -> None:
        """Display the run here; in a Jupyter kernel the display follows the run until it ends."""
        from IPython.display import display

        self._shown_in = _execution_count()
        front_end = _front_end()
        if front_end == "none":  # plain Python: no display machinery at all
            print(self.text())
            return
        if front_end == "terminal":
            display(self._bundle(), raw=True)  # a terminal or a test: printed once, never updated
            return
        view = display(self._bundle(), raw=True, display_id=True)
        with self._lock:
            self._views.append(view)

    def _ipython_display_(self) -> None:
        # The cell that started the run shows it already (the magic called show()): not twice.
        if self._shown_in is not None and self._shown_in == _execution_count():
            self._shown_in = None  # once: asked again later, it is shown again
            return
        self.show()
        self._shown_in = None

    def _refresh(self, force: bool = False) -> None:
        """Update the live displays, at most every THROTTLE seconds (and always at the end: ``force``)."""
        if force:
            self._refreshing.flush()
        else:
            self._refreshing.poke()

    def _update_views(self) -> None:
        with self._lock:
            views = list(self._views)
        if not views:
            return
        bundle = self._bundle()
        for view in views:
            try:
                view.update(bundle, raw=True)
            except Exception as exc:  # a closed front end must not stop the run
                print(f"saibench: could not update the run's display: {exc!r}", file=sys.stderr)
                with self._lock:
                    self._views.remove(view)


def _front_end() -> Literal["kernel", "terminal", "none"]:
    """``kernel`` where a front end can update a display in place; ``terminal`` (or a test shell); ``none``."""
    from IPython.core.getipython import get_ipython

    shell = get_ipython()
    if shell is None:
        return "none"
    return "kernel" if getattr(shell, "kernel", None) is not None else "terminal"


def _execution_count() -> int | None:
    from IPython.core.getipython import get_ipython

    shell = get_ipython()
    return None if shell is None else int(shell.execution_count)


def _watch_exit(handle: RunHandle) -> None:
    """Cancel running runs when the kernel exits: their pods are other process groups and would live on."""
    if not _LIVE:
        atexit.unregister(_cancel_all)
        atexit.register(_cancel_all)
    _LIVE.add(handle)


def _cancel_all() -> None:
    for handle in list(_LIVE):
        handle.cancel()
