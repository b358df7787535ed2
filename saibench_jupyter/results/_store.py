"""The results store: one SQLite file that every BenchPod event is written to as it arrives.

The parent process owns one :class:`Store`. Executor threads hand it the JSON events
their pods stream (``started``, ``stage``, ``checkpoint``, ``metric``, ``warning``,
``log``, ``finished``, ``failed``; see ``docs/benchpods.md``) and each event becomes one
transaction, so a parent killed mid-run loses at most the event it was writing and the
next ``run()`` knows exactly which pods have a final record. The file is in WAL mode:
a notebook can read results (:class:`~saibench_jupyter.results.Results`) while a run is
still writing them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from sqlite3 import Connection
from types import TracebackType
from typing import Any, ClassVar

from ..runtime._result import COUNTERS
from . import _upkeep

#: A decoded event line.
Event = Mapping[str, Any]


class StoreError(Exception):
    """A results store that cannot be opened: a bad path, a newer schema, a file that is not a store."""


#: Columns of ``scenarios`` a record may give: plain text, then JSON-encoded values.
_SCENARIO_TEXT = ("scenario", "label", "family", "problem", "model", "software", "hardware", "version")
_SCENARIO_JSON = ("submodels", "params", "metrics", "metric_info", "modules", "sources", "environment", "resources",
                  "settings")
#: Fields of a failure, shared by ``failed`` events and the ``error`` of a diverged ``finished``.
_FAILURE_FIELDS = ("kind", "message", "module", "location", "stage", "checkpoint", "fix", "traceback", "stderr")
#: Fields of an environment record (the ``started`` event), in the columns' order.
_ENVIRONMENT_FIELDS = ("python", "executable", "packages", "cpu", "gpu", "host", "platform")
#: Pod statuses that are results: the pod ran to its end (or failed), so a run without ``rerun`` skips it.
RESULT_STATUSES = ("ok", "diverged", "failed")
#: Final pod statuses: a pod with one of these is done. ``cancelled``: its run was cancelled while it waited or
#: ran; ``interrupted``: its run's controller died before hearing the end (see ``_upkeep.reap``). Neither is a
#: result, so the next run does those pods again. ``running`` means a live run still owns the pod.
FINAL_STATUSES = (*RESULT_STATUSES, "cancelled", "interrupted")

# What went wrong in a pod that still finished (a metric that raised at some checkpoints): a record of its own,
# so views can say which metric failed in how many pods without reading logs.
_WARNINGS = ("CREATE TABLE IF NOT EXISTS warnings (id INTEGER PRIMARY KEY, identity TEXT NOT NULL, "
             "repeat INTEGER NOT NULL, run_id INTEGER, kind TEXT, name TEXT, message TEXT, location TEXT, "
             "stage INTEGER, checkpoint INTEGER, fix TEXT, t REAL)",
             "CREATE INDEX IF NOT EXISTS warnings_pod ON warnings (identity, repeat)")

# points is WITHOUT ROWID: small fixed rows stored in their key's b-tree, one b-tree write per checkpoint.
# metrics keeps its rowid because raw (CriticalLoss's losses, say) can be kilobytes.
_COUNTER_COLUMNS = ", ".join(f'"{c}" REAL' for c in COUNTERS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL, finished REAL, executor TEXT, jobs INTEGER,
    host TEXT, status TEXT, info TEXT, pid INTEGER, pid_start TEXT);
CREATE TABLE IF NOT EXISTS sources (digest TEXT PRIMARY KEY, origin TEXT, text TEXT);
CREATE TABLE IF NOT EXISTS scenarios (
    identity TEXT PRIMARY KEY, scenario TEXT, label TEXT, family TEXT, problem TEXT, model TEXT, software TEXT,
    hardware TEXT, submodels TEXT, params TEXT, metrics TEXT, modules TEXT, sources TEXT, environment TEXT,
    resources TEXT, settings TEXT, metric_info TEXT, version TEXT, registered REAL);
CREATE TABLE IF NOT EXISTS pods (
    identity TEXT NOT NULL, repeat INTEGER NOT NULL, run_id INTEGER, status TEXT NOT NULL, started REAL,
    finished REAL, wall_ms REAL, compile_ms REAL, settings TEXT, environment_id TEXT, pid INTEGER,
    PRIMARY KEY (identity, repeat));
CREATE TABLE IF NOT EXISTS points (
    identity TEXT NOT NULL, repeat INTEGER NOT NULL, stage INTEGER NOT NULL, checkpoint INTEGER NOT NULL,
    epoch INTEGER, loss REAL, {_COUNTER_COLUMNS},
    PRIMARY KEY (identity, repeat, stage, checkpoint)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metrics (
    identity TEXT NOT NULL, repeat INTEGER NOT NULL, stage INTEGER NOT NULL, checkpoint INTEGER NOT NULL,
    name TEXT NOT NULL, value REAL, raw TEXT,
    PRIMARY KEY (identity, repeat, stage, checkpoint, name));
CREATE TABLE IF NOT EXISTS environments (
    id TEXT PRIMARY KEY, python TEXT, executable TEXT, packages TEXT, cpu TEXT, gpu TEXT, host TEXT, platform TEXT);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY, identity TEXT NOT NULL, repeat INTEGER NOT NULL, run_id INTEGER, kind TEXT,
    message TEXT, module TEXT, location TEXT, stage INTEGER, checkpoint INTEGER, fix TEXT, traceback TEXT,
    stderr TEXT, t REAL);
CREATE INDEX IF NOT EXISTS failures_pod ON failures (identity, repeat);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY, identity TEXT NOT NULL, repeat INTEGER NOT NULL, t REAL, level TEXT, message TEXT);
CREATE INDEX IF NOT EXISTS logs_pod ON logs (identity, repeat);
{_WARNINGS[0]};
{_WARNINGS[1]};
"""

_COUNTER_NAMES = ", ".join(f'"{c}"' for c in COUNTERS)
_INSERT_POINT = (f"INSERT OR REPLACE INTO points (identity, repeat, stage, checkpoint, epoch, loss, {_COUNTER_NAMES}) "
                 f"VALUES ({', '.join('?' * (6 + len(COUNTERS)))})")
_INSERT_FAILURE = (f"INSERT INTO failures (identity, repeat, run_id, {', '.join(_FAILURE_FIELDS)}, t) "
                   f"VALUES ({', '.join('?' * (4 + len(_FAILURE_FIELDS)))})")


def _json(value: Any) -> str | None:
    """JSON text of ``value`` (keys sorted, so equal values give equal, groupable text), NULL for None."""
    if value is None:
        return None
    # default=str: a stray non-JSON object (a Path, a Location) must not lose the whole event.
    return json.dumps(value, sort_keys=True, default=str)


def _text(value: Any) -> str | None:
    """Text as is; anything else (a location given as a mapping, a GPU list) as JSON."""
    return value if value is None or isinstance(value, str) else _json(value)


def _real(value: Any) -> float | None:
    """A number for a REAL column. SQLite stores inf as is but turns NaN into NULL, so NaN is NULL here."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _need(event: Event, key: str) -> Any:
    try:
        return event[key]
    except KeyError:
        raise ValueError(f"{event.get('event')!r} event without {key!r}: {dict(event)!r}") from None


class Store:
    """The SQLite results store (``schema_version`` 3, WAL mode).

    Parameters
    ----------
    path : str or os.PathLike
        The database file; its folder is created if needed and the schema if the file is new.

    Raises
    ------
    StoreError
        When ``path`` is a folder or cannot be created, is not an SQLite file, is another
        program's database, or was written by a newer saibench-jupyter.

    Notes
    -----
    One connection serves every thread (events arrive from executor threads); each public
    method holds a lock for its duration. Each write method is one transaction.
    """

    SCHEMA_VERSION = 3
    #: Milliseconds a write waits for another writer (a second run on the same store) before it fails.
    BUSY_MS = 30000
    #: How to bring an older store up to date: version -> the statements that make it version + 1.
    _MIGRATIONS: ClassVar[dict[int, tuple[str, ...]]] = {
        1: ("ALTER TABLE scenarios ADD COLUMN metric_info TEXT",),  # version 2: metrics' axis, direction and unit
        # version 3: metric warnings as records, the controller of each run (is it alive?), the code version
        # of a scenario and when a run last asked for it (which version of a label is current)
        2: ("ALTER TABLE runs ADD COLUMN pid INTEGER", "ALTER TABLE runs ADD COLUMN pid_start TEXT",
            "ALTER TABLE scenarios ADD COLUMN version TEXT", "ALTER TABLE scenarios ADD COLUMN registered REAL",
            *_WARNINGS),
    }

    def __init__(self, path: str | os.PathLike[str] = "saibench.db") -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder: pass the path of a results file, such as "
                             f"{self.path / 'saibench.db'}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), not the module's guesses.
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the results store {self.path}: {e}; pass a writable file path") from e
        try:
            self._open()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(f"{self.path} is not a SAIBench results store ({e}); pass another path, "
                             f"or move the file away to start a new store there") from e
        except StoreError:
            self._db.close()
            raise

    def _open(self) -> None:
        db = self._db
        # WAL: readers (a notebook) never block the writer (a run) and vice versa. NORMAL: a commit is not an
        # fsync, which keeps one transaction per event cheap; a power cut may lose the last events, never the file.
        db.execute(f"PRAGMA busy_timeout={self.BUSY_MS}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row and str(row[0]).isdigit() else 0
            if version > self.SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer saibench-jupyter (schema_version {version}; "
                                 f"this one reads {self.SCHEMA_VERSION}): upgrade saibench-jupyter "
                                 f"(pip install -U saibench-jupyter)")
            if version not in self._MIGRATIONS and version != self.SCHEMA_VERSION:
                raise StoreError(f"{self.path} has no usable schema_version ({row[0] if row else 'none'}): it is "
                                 f"not a SAIBench results store; pass another path or move the file away")
            if version < self.SCHEMA_VERSION:
                self._migrate()
            return  # an existing store: no write lock needed, so a reader opens it while a run is writing
        if tables - {"sqlite_sequence"}:
            raise StoreError(f"{self.path} is an SQLite database of another program (tables: "
                             f"{', '.join(sorted(tables))}); pass another path for the results store")
        # One transaction: a second process opening the same new file sees the whole schema or none of it.
        db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}\nINSERT OR IGNORE INTO meta (key, value) "
                         f"VALUES ('schema_version', '{self.SCHEMA_VERSION}');\nCOMMIT;")

    def _migrate(self) -> None:
        """Upgrade an older store in place, one version per transaction (another process may race us)."""
        while True:
            with self._transaction() as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = int(row[0])
                if version >= self.SCHEMA_VERSION:
                    return
                for statement in self._MIGRATIONS[version]:
                    db.execute(statement)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._lock:
            # IMMEDIATE takes the write lock up front (waiting up to busy_timeout for another writer) instead
            # of failing halfway when a read transaction would have to be upgraded.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one SELECT (for :class:`Results`)."""
        with self._lock:
            cursor = self._db.execute(sql, params)
            rows = cursor.fetchall()
            return [d[0] for d in cursor.description or ()], rows

    # -- runs, sources, scenarios -----------------------------------------------------
    def begin_run(self, executor: str, jobs: int, info: Mapping[str, Any] | None = None) -> int:
        """Record the start of one ``run()`` call and return its id.

        Parameters
        ----------
        executor : str
            The executor's name (``local``, ``dask`` ...).
        jobs : int
            How many pods run at once.
        info : mapping, optional
            Anything else worth keeping about the run (JSON-able).

        Notes
        -----
        The run's controller (this process: its id and start time) is recorded too, so a
        reader can tell a live run from one whose controller died (:class:`Results` marks
        the pods of such a run ``interrupted``).
        """
        pid = os.getpid()
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO runs (started, executor, jobs, host, status, info, pid, pid_start) "
                                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                                (time.time(), executor, jobs, socket.gethostname(), _json(dict(info or {})), pid,
                                 _upkeep.process_start(pid)))
            return int(cursor.lastrowid or 0)

    def end_run(self, run_id: int, status: str) -> None:
        """Record the end of run ``run_id`` with its ``status`` (``finished``, ``interrupted`` ...)."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET finished = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def add_sources(self, sources: Mapping[str, tuple[str, str]]) -> None:
        """Keep source texts, content-addressed: ``{digest: (origin, text)}``; known digests are left alone."""
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO sources (digest, origin, text) VALUES (?, ?, ?)",
                           [(digest, origin, text) for digest, (origin, text) in sources.items()])

    def add_scenario(self, identity: str, record: Mapping[str, Any]) -> None:
        """Insert or replace the ``scenarios`` row of ``identity``.

        Parameters
        ----------
        identity : str
            The scenario identity (16 hex digits).
        record : mapping
            ``scenario``, ``label``, ``family``, ``problem``, ``model``, ``software``,
            ``hardware``, ``version`` (a short digest of its code; text) and ``submodels``,
            ``params``, ``metrics``, ``metric_info`` (``{name: {"axis", "better", "unit"}}``),
            ``modules``, ``sources``, ``environment``, ``resources``, ``settings`` (JSON-able). Missing
            keys are stored as NULL. The time is kept as ``registered``: the latest
            version of a label is the one a run asked for last.

        Raises
        ------
        ValueError
            For a key that is not a column (a typo would otherwise lose the value silently).
        """
        unknown = set(record) - set(_SCENARIO_TEXT) - set(_SCENARIO_JSON)
        if unknown:
            raise ValueError(f"unknown scenario field(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(_SCENARIO_TEXT + _SCENARIO_JSON)}")
        columns = ("identity", *_SCENARIO_TEXT, *_SCENARIO_JSON, "registered")
        values = (identity, *(_text(record.get(k)) for k in _SCENARIO_TEXT),
                  *(_json(record.get(k)) for k in _SCENARIO_JSON), time.time())
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        with self._transaction() as db:
            db.execute(f"INSERT INTO scenarios ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                       f"ON CONFLICT (identity) DO UPDATE SET {updates}", values)

    # -- pods and their events --------------------------------------------------------
    def start_pod(self, run_id: int, identity: str, repeat: int) -> None:
        """Mark pod ``(identity, repeat)`` ``running`` in run ``run_id``, deleting what an earlier run stored of it.

        Both happen in one transaction, so a rerun replaces the pod's rows, never adds to them.
        """
        key = (identity, repeat)
        with self._transaction() as db:
            for table in ("points", "metrics", "failures", "logs", "warnings"):
                db.execute(f"DELETE FROM {table} WHERE identity = ? AND repeat = ?", key)
            db.execute("INSERT INTO pods (identity, repeat, run_id, status, started) VALUES (?, ?, ?, 'running', ?) "
                       "ON CONFLICT (identity, repeat) DO UPDATE SET run_id = excluded.run_id, status = 'running', "
                       "started = excluded.started, finished = NULL, wall_ms = NULL, compile_ms = NULL, "
                       "settings = NULL, environment_id = NULL, pid = NULL", (*key, run_id, time.time()))

    def record(self, run_id: int, identity: str, repeat: int, event: Mapping[str, Any]) -> None:
        """Store one event of pod ``(identity, repeat)`` (one transaction).

        Parameters
        ----------
        run_id : int
            The run the pod belongs to (from :meth:`begin_run`).
        identity, repeat : str, int
            The pod.
        event : mapping
            A decoded event line (``docs/benchpods.md``): ``started``, ``stage``,
            ``checkpoint``, ``metric``, ``warning``, ``log``, ``finished`` or ``failed``
            (of kind ``interrupted``: the pod is ``cancelled``, which is not a failure).

        Raises
        ------
        ValueError
            For an unknown event name, or an event without a field it needs.
        """
        name = event.get("event")
        handler = self._HANDLERS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise ValueError(f"unknown event {name!r}; known events: {', '.join(self._HANDLERS)}")
        with self._transaction() as db:
            handler(self, db, run_id, identity, repeat, event)

    def _started(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
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

    def _stage(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
        """A stage begins: the points that follow carry its number, so there is nothing to keep."""

    def _checkpoint(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
        counters = event.get("counters") or {}
        db.execute(_INSERT_POINT, (identity, repeat, int(_need(event, "stage")), int(_need(event, "checkpoint")),
                                   _int(event.get("epoch")), _real(event.get("loss")),
                                   *(_real(counters.get(c)) for c in COUNTERS)))

    def _metric(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
        value, raw = event.get("value"), event.get("raw")
        raw_text = _json(raw)
        if raw_text is None and value is not None and math.isnan(float(value)):
            # SQLite stores NaN as NULL; raw 'NaN' tells a NaN metric (diverged) from a missing one.
            raw_text = "NaN"
        db.execute("INSERT OR REPLACE INTO metrics (identity, repeat, stage, checkpoint, name, value, raw) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (identity, repeat, int(_need(event, "stage")), int(_need(event, "checkpoint")),
                    str(_need(event, "name")), _real(value), raw_text))

    def _log(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
        # A batch of lines ("lines") is one event and one transaction: a row per line, a commit per batch.
        lines = event.get("lines")
        messages = lines if isinstance(lines, list) else [event.get("message")]
        t, level = _real(event.get("t")) or time.time(), event.get("level", "info")
        db.executemany("INSERT INTO logs (identity, repeat, t, level, message) VALUES (?, ?, ?, ?, ?)",
                       [(identity, repeat, t, level, _text(m)) for m in messages])

    def _warning(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
        db.execute("INSERT INTO warnings (identity, repeat, run_id, kind, name, message, location, stage, "
                   "checkpoint, fix, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (identity, repeat, run_id, _text(event.get("kind", "metric")), _text(event.get("name")),
                    _text(_need(event, "message")), _text(event.get("location")), _int(event.get("stage")),
                    _int(event.get("checkpoint")), _text(event.get("fix")),
                    _real(event.get("t")) or time.time()))

    def _finished(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
        t = _real(event.get("t")) or time.time()
        self._end_pod(db, run_id, identity, repeat, str(_need(event, "status")), t, event)
        error = event.get("error")
        if error:
            fields = error if isinstance(error, Mapping) else {"message": str(error)}
            self._failure(db, run_id, identity, repeat, {**fields, "kind": "diverged"}, t)

    def _failed(self, db: Connection, run_id: int, identity: str, repeat: int, event: Event) -> None:
        t = _real(event.get("t")) or time.time()
        if event.get("kind") == "interrupted":  # the run was cancelled: the pod has no result, and no fault
            self._end_pod(db, run_id, identity, repeat, "cancelled", t, event)
            return
        self._end_pod(db, run_id, identity, repeat, "failed", t, event)
        self._failure(db, run_id, identity, repeat, event, t)

    @staticmethod
    def _end_pod(db: Connection, run_id: int, identity: str, repeat: int, status: str, t: float, event: Event) -> None:
        db.execute("INSERT INTO pods (identity, repeat, run_id, status, finished, wall_ms, compile_ms, settings) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (identity, repeat) DO UPDATE SET "
                   "run_id = excluded.run_id, status = excluded.status, finished = excluded.finished, "
                   "wall_ms = excluded.wall_ms, compile_ms = excluded.compile_ms, "
                   "settings = coalesce(excluded.settings, settings)",
                   (identity, repeat, run_id, status, t, _real(event.get("wall_ms")), _real(event.get("compile_ms")),
                    _json(event.get("settings"))))

    @staticmethod
    def _failure(db: Connection, run_id: int, identity: str, repeat: int, fields: Mapping[str, Any],
                 t: float) -> None:
        values = [_int(fields.get(k)) if k in ("stage", "checkpoint") else _text(fields.get(k))
                  for k in _FAILURE_FIELDS]
        db.execute(_INSERT_FAILURE, (identity, repeat, run_id, *values, t))

    #: Event name -> handler; record() looks the name up before opening a transaction.
    _HANDLERS: ClassVar[Mapping[str, Callable[[Store, Connection, int, str, int, Event], None]]] = {
        "started": _started, "stage": _stage, "checkpoint": _checkpoint, "metric": _metric, "warning": _warning,
        "log": _log, "finished": _finished, "failed": _failed,
    }

    # -- reading ----------------------------------------------------------------------
    def statuses(self, identities: Iterable[str] | None = None) -> dict[tuple[str, int], str]:
        """``(identity, repeat) -> status`` of the pods in the store, ``running`` ones included.

        Parameters
        ----------
        identities : iterable of str, optional
            Only these scenario identities (default: all).
        """
        wanted = None if identities is None else set(identities)
        _, rows = self._query("SELECT identity, repeat, status FROM pods")
        return {(i, r): s for i, r, s in rows if wanted is None or i in wanted}

    def durations(self) -> list[tuple[str, str, float]]:
        """``(identity, family, wall_ms)`` of every pod with a result (:data:`RESULT_STATUSES`) and a known duration.

        The duration is the pod's ``wall_ms`` or, for pods that failed before reporting one,
        the time between its start and its final event. The family is ``""`` for a scenario
        without a ``scenarios`` row.
        """
        _, rows = self._query(
            "SELECT p.identity, coalesce(s.family, ''), coalesce(p.wall_ms, (p.finished - p.started) * 1000.0) AS ms "
            "FROM pods p LEFT JOIN scenarios s ON s.identity = p.identity "
            f"WHERE p.status IN ({', '.join(repr(s) for s in RESULT_STATUSES)}) AND ms IS NOT NULL "
            "ORDER BY p.identity, p.repeat")
        return [(i, f, float(ms)) for i, f, ms in rows]

    # -- upkeep ----------------------------------------------------------------------------
    def checkpoint(self) -> bool:
        """Move the write-ahead log into the database file, so that the file alone holds every result.

        Returns
        -------
        bool
            False when a reader kept the log busy (it is moved at a later checkpoint).
        """
        return _upkeep.checkpoint(self)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the file)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"
