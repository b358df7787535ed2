"""The pod side of a BenchPod: limits, binding the spec's plan to its sources, running it, streaming events.

``python -m saibench_jupyter.pods run SPEC`` calls :func:`main`; the inline executor calls
:func:`run_pod` directly. Events are JSON lines (``docs/benchpods.md``). In a pod process
the event stream is the original stdout; module code's ``print`` becomes ``log`` events
and C-level output goes to stderr, so nothing a module writes can corrupt the stream.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import IO, Any, NamedTuple

from ._logs import PodLog, deadline_of
from ._spec import Limits, PodSpec, SpecError

Emit = Callable[[dict[str, Any]], None]

#: The environment variable through which an executor hands a pod the environment record an
#: earlier pod of the same interpreter made (JSON), so that each cold pod need not redo it.
RECORD_VARIABLE = "SAIBENCH_POD_ENVIRONMENT"

#: Packages whose versions a pod records, besides its software module's requirements.
RECORDED = ("saibench-jupyter", "numpy", "scipy", "scikit-learn", "torch", "jax", "jaxlib", "pandas", "networkx")


class EventWriter:
    """Writes one JSON line per event to ``stream``, stamped with the pod key and time."""

    def __init__(self, stream: IO[str], pod: str) -> None:
        self.stream = stream
        self.pod = pod

    def __call__(self, event: dict[str, Any]) -> None:
        event.setdefault("pod", self.pod)
        event.setdefault("t", time.time())
        self.stream.write(json.dumps(event, default=_jsonable) + "\n")
        self.stream.flush()


def apply_limits(limits: Limits, cpus: int) -> None:
    """Pin the process to its CPUs and GPUs, and cap its memory and CPU time (before heavy imports).

    The CPU-time cap (``timeout`` × CPUs, plus slack) is a backstop for a parent that died:
    the parent enforces the wall-clock timeout itself.
    """
    if limits.affinity and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, limits.affinity)
    if limits.gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, limits.gpus))
    if limits.memory:
        # RLIMIT_DATA, not RLIMIT_AS: CUDA and XLA reserve far more address space than they use.
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory, limits.memory))
    if limits.timeout:
        seconds = math.ceil(limits.timeout * max(cpus, len(limits.affinity or ()), 1)) + 10
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))


def environment_record(requirements: tuple[str, ...] = (), base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where this pod runs: Python, package versions, CPU, GPU, host and platform.

    ``base`` is a record made earlier for this interpreter (the warm worker's, or the
    executor's from an earlier pod): only requirements it lacks are looked up then, and the
    GPUs, which depend on ``CUDA_VISIBLE_DEVICES``.
    """
    import re

    names = [re.split(r"[\s;<>=!~\[]", r, maxsplit=1)[0] for r in requirements]
    packages = dict(base["packages"]) if base else {}
    missing = [n for n in (names if base else [*RECORDED, *names]) if n not in packages]
    if missing:  # importlib.metadata alone costs a cold pod ~15 ms: only when there is a lookup
        import importlib.metadata as metadata

        for name in missing:
            try:
                packages[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    if base:
        return {**base, "packages": packages, "gpu": _gpu_models()}
    import platform
    import socket

    return {"python": platform.python_version(), "executable": sys.executable, "packages": packages,
            "cpu": _cpu_model(), "gpu": _gpu_models(), "host": socket.gethostname(), "platform": platform.platform()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _gpu_models() -> str | None:
    # The driver's own listing: no torch import (seconds) just to name the GPU.
    root = "/proc/driver/nvidia/gpus"
    names = []
    if os.path.isdir(root):
        for gpu in sorted(os.listdir(root)):
            try:
                with open(os.path.join(root, gpu, "information"), encoding="utf-8") as f:
                    names += [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("Model:")]
            except OSError:
                continue
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if names and visible is not None:
        names = [names[int(i)] for i in visible.split(",") if i.strip().isdigit() and int(i) < len(names)]
    return ", ".join(names) or None


class Rebuilt(NamedTuple):
    """A spec's plan bound to its sources: what :func:`rebuild` makes, and a warm worker before it forks."""

    plan: Any  # ScenarioPlan
    repository: Any  # Repository
    #: the sources' support code, already run (a warm worker's, for the pods it forks); None: the run does it
    namespace: Any = None


def run_pod(spec: PodSpec, emit: Emit, record: dict[str, Any] | None = None,
            rebuilt: Rebuilt | None = None, keep: Callable[[Any], None] | None = None) -> bool:
    """Bind ``spec``'s plan to its sources, run it, and emit its events.

    ``record`` is this interpreter's :func:`environment_record`, when already known;
    ``rebuilt`` is :func:`rebuild`'s result for ``spec``, when a warm worker made it before forking;
    ``keep`` receives the trained model of a run that finished ``ok`` (an in-process pod only).

    Returns
    -------
    bool
        True when the run finished (``ok`` or ``diverged``); a ``failed`` event was
        emitted otherwise. Nothing is raised for a module's fault.
    """
    emit({"event": "started", "pid": os.getpid(),
          "environment": environment_record(tuple(spec.environment.get("pip", ())), record)})
    started = time.perf_counter()
    try:
        scenario, repo, namespace = rebuilt or rebuild(spec)
    except SpecError as exc:  # the plan does not fit the sources: made for other code
        emit(_failure("spec", str(exc).split(". Fix: ")[0], fix=str(exc).split(". Fix: ")[-1]))
        return False
    except Exception as exc:  # a source that no longer parses here (a declaration that fails)
        emit(_failure("rejected", f"the pod could not load its sources: {exc}", tb=traceback.format_exc(),
                      fix="check that the sources load with Repository.add_source in this environment"))
        return False
    return run_bound(scenario, repo, {**spec.settings, "seed": spec.seed}, emit, namespace, started, keep)


def run_bound(scenario: Any, repo: Any, settings: Mapping[str, Any], emit: Emit, namespace: Any = None,
              started: float | None = None, keep: Callable[[Any], None] | None = None) -> bool:
    """Run a plan already bound to ``repo``'s sources and emit its events (the part of a pod after ``started``).

    ``settings`` are the training settings with the pod's ``seed``; ``namespace`` is the sources'
    support code already run, if a warm worker ran it; ``started`` the ``perf_counter`` the pod's wall
    time counts from (now by default); ``keep`` receives the trained model when the run finishes ``ok``.

    Returns
    -------
    bool
        True when the run finished (``ok`` or ``diverged``); a ``failed`` event was emitted otherwise.
    """
    started = time.perf_counter() if started is None else started
    from ..runtime import Point, RunError, run_scenario

    def listener(what: str, data: Any) -> None:
        if what == "stage":
            emit({"event": "stage", "stage": data})
        elif what == "warning" and isinstance(data, RunError):
            # A metric that raised at this checkpoint: the pod goes on, and the store keeps the record.
            emit({"event": "warning", "kind": "metric", "name": data.module, "message": data.what,
                  "location": str(data.location) if data.location else None, "stage": data.stage,
                  "checkpoint": data.checkpoint, "fix": data.fix})
        elif what == "point" and isinstance(data, Point):
            where = {"stage": data.stage, "checkpoint": data.checkpoint}
            emit({"event": "checkpoint", **where, "epoch": data.epoch, "loss": data.loss,
                  "counters": dict(data.counters)})
            for name, value in data.metrics.items():
                emit({"event": "metric", **where, "name": name, "value": value, "raw": data.values.get(name)})

    result = run_scenario(scenario, settings=dict(settings), repository=repo, listener=listener, namespace=namespace,
                          keep_model=keep is not None)
    if keep is not None and result.model is not None:
        keep(result.model)
    wall_ms = (time.perf_counter() - started) * 1e3
    if result.status == "failed" and result.error is not None:
        e = result.error
        emit(_failure(e.kind, e.what, module=e.module, location=str(e.location) if e.location else None,
                      stage=e.stage, checkpoint=e.checkpoint, fix=e.fix, tb=e.traceback))
        return False
    error = None
    if result.error is not None:
        error = {"kind": result.error.kind, "message": result.error.what, "stage": result.error.stage,
                 "checkpoint": result.error.checkpoint, "fix": result.error.fix}
    emit({"event": "finished", "status": result.status, "wall_ms": wall_ms, "compile_ms": result.compile_ms,
          "settings": dict(result.settings), "error": error})
    return True


def load_sources(spec: PodSpec) -> Any:
    """A fresh repository holding ``spec``'s sources, parsed (their support code runs)."""
    from ..repository import Repository

    repo = Repository()
    for origin, digest in spec.sources:
        repo.add_source(spec.texts[digest], origin)
    return repo


def rebuild(spec: PodSpec, repo: Any = None) -> Rebuilt:
    """``spec``'s scenario plan, bound to its sources, and the repository holding them.

    No discovery: the sources are parsed (into a fresh repository unless ``repo``, one
    :func:`load_sources` made for the same sources, is given), and each module the plan
    names is checked against the digest it was planned with.

    Raises
    ------
    SpecError
        When a module (or a source's support code) is not the one the plan was made with:
        naming it, the digest expected and the one found, and the fix (re-plan the run).
    """
    from ..planner import PlanError, ScenarioPlan

    repo = load_sources(spec) if repo is None else repo
    try:
        return Rebuilt(ScenarioPlan.from_dict(spec.plan, repo), repo)
    except PlanError as exc:
        message, _, fix = str(exc).partition("; fix: ")
        raise SpecError(f"{spec.label}: {message}. Fix: {fix or 're-plan the run'}") from None


def _failure(kind: str, message: str, *, module: str | None = None, location: str | None = None,
             stage: int | None = None, checkpoint: int | None = None, fix: str | None = None,
             tb: str | None = None) -> dict[str, Any]:
    return {"event": "failed", "kind": kind, "message": message, "module": module, "location": location,
            "stage": stage, "checkpoint": checkpoint, "fix": fix, "traceback": tb, "stderr": None}


def _jsonable(value: Any) -> Any:
    """Raw metric values (arrays, numpy scalars) as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | tuple):
        return list(value)
    return repr(value)


def serve_pod(spec_source: str) -> int:
    """The body of ``python -m saibench_jupyter.pods run SPEC``: returns the exit status.

    The original stdout becomes the event stream; exit status 0 means a final event was written.
    """
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # C-level writes to stdout now land in stderr, not in the events
    try:
        text = sys.stdin.read() if spec_source == "-" else spec_source
        spec = PodSpec.load(text)
    except SpecError as exc:
        EventWriter(events, "?")(_failure("spec", str(exc), fix="write the spec with specs_of(...)"))
        return 2
    return run_guarded(spec, EventWriter(events, spec.pod), _inherited_record())


def _inherited_record() -> dict[str, Any] | None:
    """The record in :data:`RECORD_VARIABLE`, if it was made for this very interpreter."""
    try:
        record = json.loads(os.environ.pop(RECORD_VARIABLE, "null"))
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("executable") != sys.executable \
            or not isinstance(record.get("packages"), dict):
        return None
    return record


def run_guarded(spec: PodSpec, emit: Emit, record: dict[str, Any] | None = None,
                rebuilt: Rebuilt | None = None) -> int:
    """Everything a pod process does once it has its spec; returns its exit status.

    Module ``print`` becomes ``log`` events (within the log limits); limits and the working
    directory are set; whatever goes wrong still ends in a ``failed`` event (0 means a final
    event was written), after the last lines printed.
    """
    log = PodLog(emit, spec.limits.log_lines, spec.limits.log_bytes, deadline_of(spec.limits.timeout))
    sys.stdout = log
    emit = log.event  # every event after the lines printed before it; a final one closes the log first
    try:
        apply_limits(spec.limits, int(spec.resources.get("cpus", 1)))
        os.chdir(spec.workdir)
    except (OSError, ValueError) as exc:
        emit(_failure("rejected", f"the pod could not set up its limits or working directory: {exc}",
                      fix="check limits.affinity against this machine's CPUs, and that workdir exists"))
        return 1
    try:
        finished = run_pod(spec, emit, record, rebuilt)
    except MemoryError as exc:
        emit(_failure("memory", f"out of memory: {exc}", fix="raise the memory limit"))
        return 1
    except BaseException as exc:  # our own bug: still a final event, with the traceback
        emit(_failure("internal", f"{type(exc).__name__}: {exc}", tb=traceback.format_exc(),
                      fix="this looks like a bug in SAIBench: please report it with the traceback"))
        return 1
    finally:
        log.close_log()  # a final event closed it already, unless the writer itself failed
    return 0 if finished else 1
