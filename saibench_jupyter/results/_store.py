"""The results store: one SQLite file that every BenchPod event is written to as it arrives.

The parent process owns one :class:`Store`. Executor threads hand it the JSON events
their pods stream (``started``, ``stage``, ``checkpoint``, ``metric``, ``warning``,
``log``, ``artifact``, ``finished``, ``failed``; see ``docs/benchpods.md``) and each event becomes one
transaction, so a parent killed mid-run loses at most the event it was writing and the
next ``run()`` knows exactly which pods have a final record. The file is in WAL mode:
a notebook can read results (:class:`~saibench_jupyter.results.Results`) while a run is
still writing them.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from sqlite3 import Connection
from types import TracebackType
from typing import Any

from . import _leases, _schema, _upkeep
from ._event_rows import EVENT_ROWS
from ._store_errors import StoreError as StoreError
from ._store_errors import StoreWarning as StoreWarning
from ._values import _duration, _json, _text

#: Columns of ``scenarios`` a record may give: plain text, then JSON-encoded values.
_SCENARIO_TEXT = ("scenario", "label", "family", "problem", "model", "software", "hardware", "version")
_SCENARIO_JSON = ("submodels", "params", "metrics", "metric_info", "modules", "sources", "environment", "resources",
                  "settings")
#: Pod statuses that are results: the pod ran to its end (or failed), so a run without ``rerun`` skips it.
RESULT_STATUSES = ("ok", "diverged", "failed")
#: Final pod statuses: a pod with one of these is done. ``cancelled``: its run was cancelled while it waited or
#: ran; ``interrupted``: its run's controller died before hearing the end (see ``_upkeep.reap``). Neither is a
#: result, so the next run does those pods again. ``running`` means a live run still owns the pod.
FINAL_STATUSES = (*RESULT_STATUSES, "cancelled", "interrupted")



class Store:
    """The SQLite results store (``schema_version`` 6, WAL mode).

    Parameters
    ----------
    path : str or os.PathLike
        The database file; its folder is created if needed and the schema if the file is new.

    Raises
    ------
    StoreError
        When ``path`` is a folder or cannot be created, is not an SQLite file, is another
        program's database (left untouched), was written by a newer saibench-jupyter, is
        damaged, or cannot be opened because the process has no file descriptor left.
        Any SQLite error of a later call is a :class:`StoreError` with its fix too.

    Warns
    -----
    StoreWarning
        When the file is a copy that may lack the results of unfinished runs (it was
        copied without its ``-wal``); ``notes`` keeps the message.

    Notes
    -----
    One connection serves every thread (events arrive from executor threads); each public
    method holds a lock for its duration. Each write method is one transaction.
    """

    SCHEMA_VERSION = _schema.SCHEMA_VERSION
    #: Milliseconds a write waits for another writer (a second run on the same store) before it fails.
    BUSY_MS = 30000

    def __init__(self, path: str | os.PathLike[str] = "saibench.db") -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._closed = False
        #: What a reader should know about this file (a copy that may lack results), one line each.
        self.notes: list[str] = []
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder: pass the path of a results file, such as "
                             f"{self.path / 'saibench.db'}")
        # Before connecting: SQLite creates the -wal of a WAL-mode file as soon as it reads it.
        without_wal = _upkeep.wal_missing(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), not the module's guesses.
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise _schema.open_error(self.path, e) from e
        try:
            _schema.prepare(self._db, self.path, self.BUSY_MS)
        except sqlite3.Error as e:
            error = _schema.database_error(self.path, e, opening=True)  # before closing: it probes descriptors
            self._db.close()
            raise error from e
        except StoreError:
            self._db.close()
            raise
        if without_wal:
            try:
                self.notes += _upkeep.unended_note(self)
            except StoreError:
                self.close()
                raise

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One write transaction; an SQLite error in it is a :class:`StoreError` saying what it means."""
        with self._lock, self._told():
            # IMMEDIATE takes the write lock up front (waiting up to busy_timeout for another writer) instead
            # of failing halfway when a read transaction would have to be upgraded.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one SELECT (for :class:`Results`)."""
        with self._lock, self._told():
            cursor = self._db.execute(sql, params)
            rows = cursor.fetchall()
            return [d[0] for d in cursor.description or ()], rows

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One read transaction (for :class:`Results`): its SELECTs all see the store as one moment, though a run
        may be writing between them."""
        with self._lock, self._told():
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                if self._db.in_transaction:
                    self._db.execute("COMMIT")

    @contextmanager
    def _told(self) -> Iterator[None]:
        """SQLite errors as :class:`StoreError`: a damaged file, a dropped table, no descriptor left ..."""
        if self._closed:
            raise StoreError(f"the results store {self.path} was closed: open it again with Store(path) or "
                             "Results(path)")
        try:
            yield
        except sqlite3.ProgrammingError as e:
            raise StoreError(f"the results store {self.path} cannot be used ({e}): open it again with "
                             "Store(path) or Results(path)") from e
        except sqlite3.Error as e:
            raise _schema.database_error(self.path, e) from e

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
        the pods of such a run ``interrupted``). Runs whose controller died are marked so
        here too, before this one starts.
        """
        _upkeep.reap(self)
        pid = os.getpid()
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO runs (started, executor, jobs, host, status, info, pid, pid_start) "
                                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                                (time.time(), executor, jobs, socket.gethostname(), _json(dict(info or {})), pid,
                                 _upkeep.process_start(pid)))
            run_id = int(cursor.lastrowid or 0)
        # Into the file at once, without waiting for readers: a copy of the file alone made during the run then
        # holds a run that has not ended, and its reader is told it may lack results (_upkeep.unended_note).
        _upkeep.checkpoint(self, "PASSIVE")
        return run_id

    def end_run(self, run_id: int, status: str) -> None:
        """Record the end of run ``run_id`` with its ``status`` (``finished``, ``interrupted`` ...); drop its leases."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET finished = ?, status = ? WHERE id = ?", (time.time(), status, run_id))
            _leases.release(db, run_id)

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
        A run that may share its pods with another uses :meth:`claim_pod`, which does this too.
        """
        with self._transaction() as db:
            _leases.mark_running(db, run_id, identity, repeat)

    def claim_pod(self, run_id: int, identity: str, repeat: int, seconds: float,
                  planned: tuple[str, int | None] | None = None) -> _leases.Claim:
        """Take pod ``(identity, repeat)``'s lease for run ``run_id`` and start it, unless another run has it.

        Parameters
        ----------
        run_id : int
            The claiming run.
        identity, repeat : str, int
            The pod.
        seconds : float
            How long the lease lasts unless renewed (:meth:`renew_leases`).
        planned : (status, run_id), optional
            The pod's status and run as the run saw them when it planned the pod (None: the
            store had no row): a result another run stored since is used, not run again.

        Returns
        -------
        Claim
            ``taken`` (the pod is this run's and ``running``), or the run that holds it
            (``status`` ``running``) or stored its result (``ok``, ``diverged``, ``failed``).
        """
        return _leases.claim(self, run_id, identity, repeat, seconds, planned)

    def renew_leases(self, run_id: int, seconds: float) -> None:
        """Extend every pod lease run ``run_id`` holds to ``seconds`` from now."""
        _leases.renew(self, run_id, seconds)

    def owners(self, identities: Iterable[str] | None = None) -> dict[tuple[str, int], tuple[str, int | None]]:
        """``(identity, repeat) -> (status, run_id)`` of the pods in the store (:meth:`claim_pod`'s ``planned``)."""
        wanted = None if identities is None else set(identities)
        _, rows = self._query("SELECT identity, repeat, status, run_id FROM pods")
        return {(i, r): (s, run) for i, r, s, run in rows if wanted is None or i in wanted}

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
            ``checkpoint``, ``metric``, ``warning``, ``log``, ``artifact`` (where the pod's
            executed notebook is: ``kind``, ``location``), ``finished`` or ``failed``
            (of kind ``interrupted``: the pod is ``cancelled``, which is not a failure).

        Raises
        ------
        ValueError
            For an unknown event name, or an event without a field it needs.
        """
        name = event.get("event")
        handler = EVENT_ROWS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise ValueError(f"unknown event {name!r}; known events: {', '.join(EVENT_ROWS)}")
        with self._transaction() as db:
            handler(db, run_id, identity, repeat, event)

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
        without a ``scenarios`` row. A value that is not a finite, non-negative number (a
        store changed by hand) is left out: it must not stop the runs that order pods by it.
        """
        _, rows = self._query(
            "SELECT p.identity, coalesce(s.family, ''), p.wall_ms, p.started, p.finished "
            "FROM pods p LEFT JOIN scenarios s ON s.identity = p.identity "
            f"WHERE p.status IN ({', '.join(repr(s) for s in RESULT_STATUSES)}) ORDER BY p.identity, p.repeat")
        out = []
        for identity, family, wall_ms, started, finished in rows:
            ms = _duration(wall_ms)
            if ms is None:
                begin, end = _duration(started), _duration(finished)
                ms = None if begin is None or end is None else _duration((end - begin) * 1000.0)
            if ms is not None:
                out.append((str(identity), str(family), ms))
        return out

    # -- upkeep ----------------------------------------------------------------------------
    def checkpoint(self) -> bool:
        """Move the write-ahead log into the database file, so that the file alone holds every result.

        Returns
        -------
        bool
            False when a reader kept the log busy (it is moved at a later checkpoint).
        """
        return _upkeep.checkpoint(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the file); closing twice is harmless.

        Pods of runs whose controller is gone are marked ``interrupted`` first, so the file
        never says ``running`` for a run nobody will end once its ``-wal`` is merged away.
        """
        if self._closed:
            return
        try:
            _upkeep.reap(self)
        except StoreError:
            pass  # a damaged or read-only file: closing must still close
        with self._lock:
            self._closed = True
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"
