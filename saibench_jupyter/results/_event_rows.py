"""How each event a pod streams becomes rows of the results store: one function per event.

:meth:`Store.record <._store.Store.record>` looks the event's name up in :data:`EVENT_ROWS`
and runs its function in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from sqlite3 import Connection
from typing import Any

from ..sail import COUNTERS
from . import _artifacts
from ._values import _int, _json, _need, _real, _text

#: A decoded event line.
Event = Mapping[str, Any]

#: Fields of a failure, shared by ``failed`` events and the ``error`` of a diverged ``finished``.
_FAILURE_FIELDS = ("kind", "message", "module", "location", "stage", "checkpoint", "fix", "traceback", "stderr")
#: Fields of an environment record (the ``started`` event), in the columns' order.
_ENVIRONMENT_FIELDS = ("python", "executable", "packages", "cpu", "gpu", "host", "platform")
_COUNTER_NAMES = ", ".join(f'"{c}"' for c in COUNTERS)
_INSERT_POINT = (f"INSERT OR REPLACE INTO points (identity, repeat, stage, checkpoint, epoch, loss, {_COUNTER_NAMES}) "
                 f"VALUES ({', '.join('?' * (6 + len(COUNTERS)))})")
#: What a counter of the model's own measures (Count): work, lower is better, no unit.
_COUNTED_INFO = json.dumps({"axis": "work", "better": "lower", "unit": None})
_INSERT_FAILURE = (f"INSERT INTO failures (identity, repeat, run_id, {', '.join(_FAILURE_FIELDS)}, t) "
                   f"VALUES ({', '.join('?' * (4 + len(_FAILURE_FIELDS)))})")


def _started(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    environment = event.get("environment")
    env_id = None
    if environment is not None:
        # Content-addressed: the many pods of one machine and venv share one row.
        canonical = json.dumps(environment, sort_keys=True, separators=(",", ":"), default=str)
        env_id = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        db.execute(f"INSERT OR IGNORE INTO environments (id, {', '.join(_ENVIRONMENT_FIELDS)}) "
                   f"VALUES ({', '.join('?' * (1 + len(_ENVIRONMENT_FIELDS)))})",
                   (env_id, *(_json(environment.get(k)) if k == "packages" else _text(environment.get(k))
                              for k in _ENVIRONMENT_FIELDS)))
    db.execute("INSERT INTO pods (identity, repeat, run_id, status, started, environment_id, pid) "
               "VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (identity, repeat) DO UPDATE SET "
               "run_id = excluded.run_id, started = excluded.started, environment_id = excluded.environment_id, "
               "pid = excluded.pid",
               (identity, repeat, run_id, _real(event.get("t")) or time.time(), env_id, _int(event.get("pid"))))

def _stage(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    """A stage begins: the points that follow carry its number, so there is nothing to keep."""

def _checkpoint(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    counters = event.get("counters") or {}
    stage, checkpoint = int(_need(event, "stage")), int(_need(event, "checkpoint"))
    db.execute(_INSERT_POINT, (identity, repeat, stage, checkpoint, _int(event.get("epoch")),
                               _real(event.get("loss")), *(_real(counters.get(c)) for c in COUNTERS)))
    # A counter of the model's own (Count("fevals", n)) is a work metric of the scenario: a value at each
    # checkpoint, and "work" in the scenario's metric info, so that charts and rankings take it as an axis.
    named = [(name, _real(value)) for name, value in counters.items() if name not in COUNTERS
             and isinstance(name, str) and name.isidentifier() and _real(value) is not None]
    for name, value in named:
        db.execute("INSERT OR REPLACE INTO metrics (identity, repeat, stage, checkpoint, name, value, raw) "
                   "VALUES (?, ?, ?, ?, ?, ?, NULL)", (identity, repeat, stage, checkpoint, name, value))
        path = f'$."{name}"'
        db.execute("UPDATE scenarios SET metric_info = json_set(COALESCE(metric_info, '{}'), ?, json(?)) "
                   "WHERE identity = ? AND json_extract(COALESCE(metric_info, '{}'), ?) IS NULL",
                   (path, _COUNTED_INFO, identity, path))

def _metric(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    value, raw = event.get("value"), event.get("raw")
    raw_text = _json(raw)
    if raw_text is None and value is not None and math.isnan(float(value)):
        # SQLite stores NaN as NULL; raw 'NaN' tells a NaN metric (diverged) from a missing one.
        raw_text = "NaN"
    db.execute("INSERT OR REPLACE INTO metrics (identity, repeat, stage, checkpoint, name, value, raw) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               (identity, repeat, int(_need(event, "stage")), int(_need(event, "checkpoint")),
                str(_need(event, "name")), _real(value), raw_text))

def _log(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    # A batch of lines ("lines") is one event and one transaction: a row per line, a commit per batch.
    lines = event.get("lines")
    messages = lines if isinstance(lines, list) else [event.get("message")]
    t, level = _real(event.get("t")) or time.time(), event.get("level", "info")
    db.executemany("INSERT INTO logs (identity, repeat, t, level, message) VALUES (?, ?, ?, ?, ?)",
                   [(identity, repeat, t, level, _text(m)) for m in messages])

def _warning(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    db.execute("INSERT INTO warnings (identity, repeat, run_id, kind, name, message, location, stage, "
               "checkpoint, fix, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (identity, repeat, run_id, _text(event.get("kind", "metric")), _text(event.get("name")),
                _text(_need(event, "message")), _text(event.get("location")), _int(event.get("stage")),
                _int(event.get("checkpoint")), _text(event.get("fix")),
                _real(event.get("t")) or time.time()))

def _artifact(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    _artifacts.record_artifact(db, run_id, identity, repeat, event)

def _finished(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    t = _real(event.get("t")) or time.time()
    _end_pod(db, run_id, identity, repeat, str(_need(event, "status")), t, event)
    error = event.get("error")
    if error:
        fields = error if isinstance(error, Mapping) else {"message": str(error)}
        _failure(db, run_id, identity, repeat, {**fields, "kind": "diverged"}, t)

def _failed(db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
    t = _real(event.get("t")) or time.time()
    if event.get("kind") == "interrupted":  # the run was cancelled: the pod has no result, and no fault
        _end_pod(db, run_id, identity, repeat, "cancelled", t, event)
        return
    _end_pod(db, run_id, identity, repeat, "failed", t, event)
    _failure(db, run_id, identity, repeat, event, t)

def _end_pod(db: Connection, run_id: int, identity: str, repeat: int, status: str, t: float, event: Event) -> None:
    db.execute("INSERT INTO pods (identity, repeat, run_id, status, finished, wall_ms, compile_ms, settings) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (identity, repeat) DO UPDATE SET "
               "run_id = excluded.run_id, status = excluded.status, finished = excluded.finished, "
               "wall_ms = excluded.wall_ms, compile_ms = excluded.compile_ms, "
               "settings = coalesce(excluded.settings, settings)",
               (identity, repeat, run_id, status, t, _real(event.get("wall_ms")), _real(event.get("compile_ms")),
                _json(event.get("settings"))))

def _failure(db: Connection, run_id: int, identity: str, repeat: int, fields: Mapping[str, Any],
             t: float) -> None:
    values = [_int(fields.get(k)) if k in ("stage", "checkpoint") else _text(fields.get(k))
              for k in _FAILURE_FIELDS]
    db.execute(_INSERT_FAILURE, (identity, repeat, run_id, *values, t))


#: Event name -> the function that writes it.
EVENT_ROWS: Mapping[str, Callable[[Connection, int, str, int, Event], None]] = {
    "started": _started, "stage": _stage, "checkpoint": _checkpoint, "metric": _metric, "warning": _warning,
    "log": _log, "finished": _finished, "failed": _failed, "artifact": _artifact,
}
