"""The notebook runner: one pod notebook executed by Papermill, its events relayed as they come.

``python -m saibench_jupyter.pods notebook -`` reads a request (the pod spec, where the
executed notebook goes, the kernel's interpreter or kernelspec, a gateway) on stdin, writes
the pod's notebook, and executes it with Papermill through a notebook client that reads the
kernel's events from its comm (:data:`~._kernel_pod.COMM_TARGET`) while cells run. Events go
to stdout as JSON lines, the protocol of every pod, so the ``papermill`` executor treats this
process as it treats a cold pod. The runner, not the kernel, decides how the pod ended:

* the kernel's own final event (``finished``, or ``failed`` completed with the cell it failed in);
* ``timeout``: past the pod's time limit the kernel is shut down and its process group killed;
* ``kernel-died``: the kernel process went away (``os._exit``, a crash), naming the cell;
* ``cell``: a cell raised before the run ended (Papermill's error: the cell, the exception, the traceback);
* ``gateway``: the kernel gateway stopped answering.

In every case the executed notebook, partly executed or not, is written where the request says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from ._kernel_pod import COMM_TARGET, skip_slow_imports
from ._lifeline import DEADLINE_VARIABLE, GRACE, PARENT_VARIABLE, kill_group
from ._pod_notebook import pod_notebook
from ._shim import EventWriter, _failure
from ._spec import PodSpec, SpecError
from ._subprocess import KERNEL_START

#: The Papermill engine name the runner registers (in its own process only).
ENGINE = "saibench-pod"
#: Seconds between two looks at a gateway while its kernel runs a pod.
GATEWAY_POLL = 1.0
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookRun:
    """One pod notebook's execution (see the module docstring).

    Parameters
    ----------
    spec : PodSpec
        The pod.
    request : mapping
        ``output`` (where the executed notebook goes), ``python`` (the kernel's interpreter) or
        ``kernel`` (a kernelspec name), and ``gateway`` (``url``, ``token``, ``kernel``) or None.
    write : callable
        Where events go.
    """

    def __init__(self, spec: PodSpec, request: dict[str, Any], write: Any) -> None:
        self.spec, self.request, self.write = spec, request, write
        self.output = str(request["output"])
        self.lock = threading.Lock()
        self.comms: set[str] = set()
        self.cell: tuple[int, str] | None = None  # the cell running now: index, first line
        self.final: dict[str, Any] | None = None  # the kernel's own final event
        self.stopped: str | None = None  # why the runner stopped the kernel: "timeout" or "gateway"
        self.kernel: tuple[str, Any] | None = None  # ("local", its Popen) or ("gateway", its kernel id)
        self.client: Any = None
        self.done = threading.Event()
        self.ready = threading.Event()  # the kernel started
        self.gateway: Any = None
        self.lines = 0
        self.concluded = False  # the final event is written (by the run, or by the watcher that gave up on it)

    # -- what the notebook client calls ---------------------------------------------------------
    def attach(self, client: Any) -> None:
        """The notebook client about to run the notebook."""
        self.client = client

    def kernel_started(self, **_: Any) -> None:
        km = self.client.km
        if self.gateway is not None:
            self.kernel = ("gateway", km.kernel_id)
        else:
            process = getattr(km.provisioner, "process", None)
            self.kernel = ("local", process) if process is not None else None
        self.ready.set()

    def cell_started(self, cell: Any, cell_index: int, **_: Any) -> None:
        first = next((ln for ln in str(cell.source).splitlines() if ln.strip()), "")
        self.cell = (cell_index, first[:80])

    def comm(self, msg_type: str, content: dict[str, Any]) -> bool:
        """Take the kernel's events from a comm message; False when the message is not the pod's."""
        if msg_type == "comm_open" and content.get("target_name") == COMM_TARGET:
            self.comms.add(str(content.get("comm_id")))
            return True
        if content.get("comm_id") not in self.comms:
            return False
        for event in (content.get("data") or {}).get("events", ()):
            if not isinstance(event, dict):
                continue
            if event.get("event") == "failed":
                self.final = event  # completed with the cell once the notebook stopped
            else:
                if event.get("event") == "finished":
                    self.final = event
                self.emit(event)
        return True

    def stream(self, text: str) -> None:
        """What a cell printed, as log events (within the pod's log limit)."""
        for line in text.splitlines():
            if line.strip() and self.lines < self.spec.limits.log_lines:
                self.lines += 1
                self.emit({"event": "log", "level": "info", "message": line})

    def emit(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.write(event)

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> int:
        """Execute the notebook and report how the pod ended; the exit status (0: a final event was written)."""
        import nbformat
        import papermill

        folder = tempfile.mkdtemp(prefix="saibench-pod-")
        source = os.path.join(folder, f"{self.spec.pod}.ipynb")
        nbformat.write(pod_notebook(self.spec), source)
        options = self._kernel(folder)
        if "://" not in self.output:
            os.makedirs(os.path.dirname(os.path.abspath(self.output)) or ".", exist_ok=True)
        self.emit({"event": "artifact", "kind": "notebook", "location": self.output})
        _register_engine()
        threading.Thread(target=self._watch, daemon=True, name="saibench-notebook-deadline").start()
        error: BaseException | None = None
        try:
            papermill.execute_notebook(
                source, self.output, parameters={"events": True}, engine_name=ENGINE, progress_bar=False,
                log_output=False, start_timeout=KERNEL_START, request_save_on_cell_execute=True,
                # The notebook is saved by then; the kernel's group is killed below in any case. A polite
                # shutdown waits for the kernel's lifeline keeper, a child it forked, for seconds.
                shutdown_kernel="immediate",
                cwd=self.spec.workdir if os.path.isdir(self.spec.workdir) else None, pod_run=self, **options)
        except Exception as exc:  # a cell raised, the kernel died or did not start, the output cannot be written
            error = exc
            if self.gateway is not None and self.kernel is not None and self.stopped is None:
                from ._gateway import gateway_alive

                if not gateway_alive(self.gateway):  # its client noticed before the watcher did
                    self.stopped = "gateway"
            if self.client is not None and self.kernel is None:
                import atexit

                # nbclient leaves a cleanup hook behind a kernel that never started: it would fail at exit.
                atexit.unregister(self.client._cleanup_kernel)
        finally:
            self.done.set()
            self.ready.set()
            self._stop_kernel()
        self._conclude(error)
        shutil.rmtree(folder, ignore_errors=True)  # the notebook as written, and the kernelspec
        return 0

    def _kernel(self, folder: str) -> dict[str, Any]:
        """Papermill's kernel options: the gateway's, a kernelspec named in the request, or one for ``python``."""
        gateway = self.request.get("gateway")
        if gateway:
            from ._gateway import KernelGateway, configure_gateway

            self.gateway = KernelGateway(gateway["url"], gateway.get("token"), gateway.get("kernel") or "python3")
            options: dict[str, Any] = configure_gateway(self.gateway)
            return options
        # The kernel dies with this runner and ends itself at the pod's deadline (its lifeline).
        os.environ[PARENT_VARIABLE] = str(os.getpid())
        os.environ.pop(DEADLINE_VARIABLE, None)
        if self.spec.limits.timeout is not None:
            os.environ[DEADLINE_VARIABLE] = str(self.spec.limits.timeout + 2 * GRACE)
        if self.request.get("kernel"):
            return {"kernel_name": self.request["kernel"]}
        spec_dir = os.path.join(folder, "kernels", "saibench-pod")
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w", encoding="utf-8") as f:
            json.dump({"argv": [self.request["python"], "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                       "display_name": "SAIBench pod", "language": "python"}, f)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (folder, os.environ.get("JUPYTER_PATH")) if p)
        return {"kernel_name": "saibench-pod"}

    def _watch(self) -> None:
        """Stop the kernel at the pod's time limit, or when its gateway stops answering.

        The limit counts from the kernel's start: starting it is bounded on its own (:data:`KERNEL_START`).
        """
        if not self.ready.wait(KERNEL_START + GRACE) or self.done.is_set():
            return
        timeout = self.spec.limits.timeout
        end = None if timeout is None else time.monotonic() + timeout
        misses = 0
        while not self.done.is_set():
            left = GATEWAY_POLL if end is None else min(GATEWAY_POLL, end - time.monotonic())
            if self.done.wait(max(left, 0.0)):
                return
            if end is not None and time.monotonic() >= end:
                self._abort("timeout")
                return
            if self.gateway is not None and self.kernel is not None:
                from ._gateway import gateway_alive

                misses = 0 if gateway_alive(self.gateway) else misses + 1
                if misses >= 2:
                    self._abort("gateway")
                    return

    def _abort(self, why: str) -> None:
        """Stop the kernel; if the client does not return within the grace period, end the pod from here."""
        self.stopped = why
        self._stop_kernel()
        if self.done.wait(GRACE):
            return
        # The client is stuck on a kernel that is gone (a gateway's websocket, say): what ran is kept all the same.
        self._save_partial()
        self._conclude(None)
        sys.stdout.flush()
        os._exit(0)

    def _stop_kernel(self) -> None:
        if self.kernel is None:
            return
        where, which = self.kernel
        if where == "local":
            kill_group(which.pid)  # the kernel leads its own session: its children go with it
        elif self.gateway is not None:
            from ._gateway import shutdown_remote_kernel

            shutdown_remote_kernel(self.gateway, str(which))

    def _save_partial(self) -> None:
        try:
            from papermill.iorw import write_ipynb

            if self.client is not None:
                write_ipynb(self.client.nb, self.output)
        except Exception as exc:  # the output location is gone too: say so, keep going
            self.emit({"event": "log", "level": "warning", "message": f"the notebook could not be saved: {exc}"})

    def _conclude(self, error: BaseException | None) -> None:
        """The pod's final event, from what the kernel said and what the runner saw."""
        from nbclient.exceptions import DeadKernelError
        from papermill.exceptions import PapermillExecutionError

        with self.lock:
            if self.concluded:
                return
            self.concluded = True
        where = f"cell {self.cell[0]}" if self.cell else None
        shown = f"cell {self.cell[0]} (`{self.cell[1]}`)" if self.cell else "the notebook"
        see = f"open the executed notebook ({self.output}) to see the cell and its output"
        if self.final is not None and self.final.get("event") == "finished":
            if error is not None:
                self.emit({"event": "log", "level": "warning",
                           "message": f"after the run, {shown} failed: {_error_text(error)}"})
            return
        if self.stopped == "timeout":
            self.emit(_failure("timeout", f"the pod ran past its {self.spec.limits.timeout:g} s time limit in "
                                          f"{shown}: its kernel was shut down with its process group",
                               location=where, fix="raise timeout=..., or make the scenario cheaper"))
        elif self.stopped == "gateway":
            self.emit(_failure("gateway", f"the kernel gateway at {self.gateway.url} stopped answering while "
                                          f"{shown} ran", location=where,
                               fix="restart the gateway and run again with rerun='failed'"))
        elif self.final is not None:
            self.emit({**self.final, "location": self.final.get("location") or where})
        elif isinstance(error, PapermillExecutionError):
            tb = _ANSI.sub("", "\n".join(error.traceback)) if error.traceback else None
            self.emit(_failure("cell", f"cell {error.cell_index} raised {error.ename}: {error.evalue}",
                               location=f"cell {error.cell_index}", tb=tb, fix=see))
        elif isinstance(error, DeadKernelError):
            self.emit(_failure("kernel-died", f"the kernel died{self._how_it_died()} while running {shown}",
                               location=where,
                               fix=f"{see}; module code must not exit the process (os._exit, sys.exit) or crash it"))
        elif error is not None:
            kind = "kernel" if self.kernel is None else "internal"
            self.emit(_failure(kind, f"the notebook could not run: {_error_text(error)}",
                               fix="check the kernel (or gateway) and the output location" if kind == "kernel"
                               else "this looks like a bug in SAIBench: please report it"))
        else:
            self.emit(_failure("lost", "the notebook ran to its end without the pod reporting how it ended",
                               fix=f"{see}: the run cell must call bench.run(...)"))

    def _how_it_died(self) -> str:
        """`` (killed by SIGSEGV)`` or `` (exit status 3)`` for a local kernel, else nothing."""
        import signal

        if self.kernel is None or self.kernel[0] != "local":
            return ""
        try:
            code = self.kernel[1].wait(GRACE)
        except Exception:  # not reaped yet: say nothing rather than guess
            return ""
        if code is None or code == 0:
            return ""
        return f" (killed by {signal.Signals(-code).name})" if code < 0 else f" (exit status {code})"


def _error_text(error: BaseException) -> str:
    return _ANSI.sub("", f"{type(error).__name__}: {error}").strip().splitlines()[0][:500]


def _register_engine() -> None:
    """Register the runner's Papermill engine (its notebook client reads the pod's comm)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class PodNotebookClient(PapermillNotebookClient):  # type: ignore[misc]
        """Papermill's client, reading the pod's events from the kernel as they come."""

        def __init__(self, nb_man: Any, run: NotebookRun, **kw: Any) -> None:
            super().__init__(nb_man, **kw)
            self.pod_run = run
            self.on_notebook_start = run.kernel_started
            self.on_cell_execute = run.cell_started
            run.attach(self)

        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            kind = msg["msg_type"]
            if kind in ("comm_open", "comm_msg") and self.pod_run.comm(kind, msg["content"]):
                return None
            if kind == "stream":
                self.pod_run.stream(str(msg["content"].get("text", "")))
            return super().process_message(msg, cell, cell_index)

    class PodEngine(NBClientEngine):  # type: ignore[misc]
        """Papermill's nbclient engine with :class:`PodNotebookClient`."""

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                     stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                     execution_timeout: Any = None, **kwargs: Any) -> Any:
            import logging

            run = kwargs.pop("pod_run")
            for unused in ("input_path", "timeout", "startup_timeout"):
                kwargs.pop(unused, None)
            return PodNotebookClient(nb_man, run, timeout=execution_timeout, startup_timeout=start_timeout,
                                     kernel_name=kernel_name, log=logging.getLogger("papermill"),
                                     log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                                     **kwargs).execute()

    papermill_engines.register(ENGINE, PodEngine)


def notebook_request(options: Mapping[str, Any], spec: PodSpec, python: str) -> str:
    """The runner's request: ``options`` (``output``, ``gateway``, ``kernel``), the spec, the kernel's interpreter."""
    return json.dumps({**options, "spec": spec.to_dict(), "python": python})


def serve_notebook(source: str) -> int:
    """The body of ``python -m saibench_jupyter.pods notebook -``: returns the exit status.

    The original stdout becomes the event stream (the kernel's and Papermill's chatter go to stderr).
    """
    events: IO[str] = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    skip_slow_imports()
    try:
        request = json.loads(sys.stdin.read() if source == "-" else source)
        spec = PodSpec.from_dict(request["spec"])
    except (ValueError, KeyError, TypeError, SpecError) as exc:
        EventWriter(events, "?")(_failure("spec", f"the notebook request is not valid: {exc}",
                                          fix="this looks like a bug in SAIBench: please report it"))
        return 2
    write = EventWriter(events, spec.pod)
    try:
        return NotebookRun(spec, request, write).run()
    except BaseException as exc:
        import traceback

        write(_failure("internal", f"{type(exc).__name__}: {exc}", tb=traceback.format_exc(),
                       fix="this looks like a bug in SAIBench: please report it"))
        return 1
