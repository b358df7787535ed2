"""Keeping a store honest and portable: pods no live run owns, the write-ahead log, single-file copies.

A pod is ``running`` in the store from its start to its final event. When the process
that ran the ``run()`` (its controller: a kernel, a script) dies without writing that
event, nothing else would: :func:`reap` tells such runs by the controller's process id
and start time, recorded when the run began, and marks their pods ``interrupted``.

The store is in WAL mode, so its latest transactions live in ``saibench.db-wal`` until
a checkpoint moves them into ``saibench.db``: :func:`checkpoint` does so at the end of
each run, and :func:`export` writes a copy that needs no ``-wal`` at all.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ._store_errors import StoreError, StoreWarning

if TYPE_CHECKING:
    from ._store import Store

#: Milliseconds a checkpoint waits for readers: a run's end must not hang on a notebook reading the store.
CHECKPOINT_WAIT_MS = 2000


def _stat(pid: int) -> tuple[str, str] | None:
    """State letter and start time (clock ticks since boot) of process ``pid``, from Linux's ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: fields are counted after its ')'.
    fields = text[text.rfind(")") + 2:].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as a token that differs for a later process given the same id.

    None where the system does not say (not Linux): liveness then rests on the id alone.
    """
    stat = _stat(pid)
    return None if stat is None else stat[1]


def alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` of this host still runs, and is the one that started at ``start``."""
    if os.name == "nt":
        return True  # os.kill(pid, 0) would stop the process there, not probe it: taken as live
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _stat(pid)
    if stat is None:
        return True
    state, started = stat
    return state not in ("Z", "X") and (start is None or started == start)


def reap(store: Store) -> int:
    """Mark ``interrupted`` the ``running`` pods no live run owns; return how many.

    A pod's run no longer owns it when the run has ended (its controller wrote the run's
    end but never the pod's), or when the run's controller, on this host, is gone. A run
    of another host, or one stored before controllers were recorded, is taken as live.
    A run whose controller is gone is marked ``interrupted`` too, even with no pod left
    running (a file must not say a run is going that nobody will end).
    A store this process may not write is left as it is.
    """

    _, runs = store._query("SELECT r.id, r.status, r.host, r.pid, r.pid_start FROM runs r WHERE r.status = "
                           "'running' OR r.id IN (SELECT DISTINCT p.run_id FROM pods p WHERE p.status = 'running')")
    host = socket.gethostname()
    dead = [run_id for run_id, status, run_host, pid, start in runs
            if status != "running" or (run_host == host and pid is not None and not alive(int(pid), start))]
    if not dead:
        return 0
    now = time.time()
    try:
        with store._transaction() as db:
            marked = db.execute("UPDATE pods SET status = 'interrupted', finished = ? WHERE status = 'running' "
                                "AND run_id IN (SELECT value FROM json_each(?))", (now, _ids(dead))).rowcount
            db.execute("UPDATE runs SET status = 'interrupted', finished = ? WHERE status = 'running' "
                       "AND id IN (SELECT value FROM json_each(?))", (now, _ids(dead)))
    except StoreError:  # a read-only copy: its reader still sees the pods as stored
        return 0
    return int(marked)


def _ids(ids: list[int]) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


def checkpoint(store: Store, mode: Literal["TRUNCATE", "PASSIVE"] = "TRUNCATE") -> bool:
    """Move the write-ahead log into the database file; False when a reader kept it busy.

    ``TRUNCATE`` (a run's end) waits up to :data:`CHECKPOINT_WAIT_MS` for readers and empties
    the log; ``PASSIVE`` (a run's start) moves what it can without waiting for anyone.
    """
    if store.closed:
        return False
    db = store._db
    with store._lock:
        db.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
        try:
            busy, _, _ = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.OperationalError:
            return False
        finally:
            db.execute(f"PRAGMA busy_timeout={store.BUSY_MS}")
    return int(busy) == 0


def wal_missing(path: Path) -> bool:
    """Whether ``path`` is an SQLite file in WAL mode with no ``-wal`` beside it (read before SQLite opens it).

    Such a file holds what was checkpointed into it, and nothing written after: it is the
    file of a store whose connections all closed (they merge and delete the log), or a copy
    made without the log.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError:
        return False
    # Bytes 18 and 19 of the header are the file format's write and read versions: 2 is WAL.
    return (len(header) == 100 and header.startswith(b"SQLite format 3\x00") and header[18] == 2
            and not Path(f"{path}-wal").exists())


def unended_note(store: Store) -> list[str]:
    """Say, and keep in the file, that a store opened without its ``-wal`` may lack runs' results.

    A run's start is checkpointed into the file at once, and its end with everything it
    wrote: a file whose log is gone but that still holds runs that have not ended was
    copied (or left) while those runs were writing, and may lack what they wrote since.
    The note is kept in ``meta`` (``incomplete``), so later readers of the copy see it too.
    """
    import warnings


    _, kept = store._query("SELECT value FROM meta WHERE key = 'incomplete'")
    note = str(kept[0][0]) if kept else None
    if note is None:
        _, found = store._query("SELECT id, host, pid, pid_start FROM runs WHERE status = 'running' ORDER BY id")
        # A run of this very process writes through this process's connections: with no -wal, it wrote nothing
        # more (a store it opened by hand and closed), so only other controllers' runs can be missing.
        me = (socket.gethostname(), os.getpid(), process_start(os.getpid()))
        rows = [r for r in found if (r[1], r[2], r[3]) != me]
        if not rows:
            return []
        ids = ", ".join(str(r[0]) for r in rows)
        name = store.path.name
        note = (f"this copy of {name} may lack results of run{'s' * (len(rows) > 1)} {ids}: "
                f"{'they' if len(rows) > 1 else 'it'} had not ended when the file was last checkpointed, and "
                f"there is no {name}-wal beside it (where the later results were); fix: copy {name}-wal with "
                f"{name} while a run is going, or copy with Results({name!r}).export(path) "
                f"(saibench export), which needs no -wal")
        try:
            with store._transaction() as db:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('incomplete', ?)", (note,))
        except Exception:  # a read-only copy: its readers are told at each opening anyway
            pass
    warnings.warn(note, StoreWarning, stacklevel=4)
    return [note]


def export(store: Store, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Copy ``store`` into one self-contained file at ``path`` (rollback journal, no ``-wal``); return its path.

    The copy is SQLite's online backup of a consistent snapshot (a run may go on writing),
    written beside the target and renamed into place, so a reader never sees half a copy.

    Raises
    ------
    StoreError
        When ``path`` is the store itself, a folder, or an existing file and not ``overwrite``.
    """

    target = Path(path).expanduser()
    if target.is_dir():
        raise StoreError(f"{target} is a folder: pass the path of the copy's file, such as {target / 'results.db'}")
    if target.exists():
        if target.resolve() == store.path.resolve():
            raise StoreError(f"{target} is the store itself: pass another path for the copy")
        if not overwrite:
            raise StoreError(f"{target} already exists: pass another path, or overwrite=True (--force) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            with store._lock:
                store._db.backup(copy)
            # The backup copies the source's header, WAL mode included: back to a rollback journal, so the
            # file is whole on its own once this connection closes.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
        for stale in ("-wal", "-shm"):  # a log left by an earlier store at target would be replayed into the copy
            Path(f"{target}{stale}").unlink(missing_ok=True)
        os.replace(partial, target)
    finally:
        for leftover in ("", "-wal", "-shm", "-journal"):
            Path(f"{partial}{leftover}").unlink(missing_ok=True)
    return target
