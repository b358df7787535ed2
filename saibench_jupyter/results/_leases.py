"""Who runs a pod now: leases, so that two runs of the same scenarios at once run each pod once.

Before a run starts a pod it *claims* it: in one write transaction it checks that no other
live run holds the pod's lease and that no other run has stored the pod's result since
this run planned it, then takes the lease (its run id and an expiry) and marks the pod
``running``. A second run that finds the lease held waits for the holder's result and
uses it; it takes the pod over when the lease expires (the holder stopped renewing it)
or when the holder's controller is gone (same host: process id and start time, as
:func:`~saibench_jupyter.results._upkeep.reap` tells it). A run's leases are dropped
when it ends.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from sqlite3 import Connection
from typing import TYPE_CHECKING

from . import _upkeep

if TYPE_CHECKING:
    from ._store import Store

#: Statuses that are results (as ``_store.RESULT_STATUSES``: repeated to keep this module free of the store's).
_RESULTS = ("ok", "diverged", "failed")


@dataclass(frozen=True)
class Claim:
    """What claiming a pod found.

    Attributes
    ----------
    taken : bool
        The pod is this run's now: its lease taken, the pod marked ``running`` and what an
        earlier run stored of it deleted. Start it.
    holder : int or None
        Otherwise, the run that holds the pod (it runs it now) or that stored its result.
    status : str or None
        ``running`` while the holder runs the pod; its result's status (``ok``,
        ``diverged``, ``failed``) once the holder stored it: use that result.
    expires : float or None
        When the holder's lease lapses unless renewed (``time.time()`` seconds).
    """

    taken: bool
    holder: int | None = None
    status: str | None = None
    expires: float | None = None


def mark_running(db: Connection, run_id: int, identity: str, repeat: int) -> None:
    """In ``db``'s open transaction: pod ``(identity, repeat)`` is ``running`` in run ``run_id``, its old rows gone."""
    key = (identity, repeat)
    for table in ("points", "metrics", "failures", "logs", "warnings", "artifacts"):
        db.execute(f"DELETE FROM {table} WHERE identity = ? AND repeat = ?", key)
    db.execute("INSERT INTO pods (identity, repeat, run_id, status, started) VALUES (?, ?, ?, 'running', ?) "
               "ON CONFLICT (identity, repeat) DO UPDATE SET run_id = excluded.run_id, status = 'running', "
               "started = excluded.started, finished = NULL, wall_ms = NULL, compile_ms = NULL, "
               "settings = NULL, environment_id = NULL, pid = NULL", (*key, run_id, time.time()))


def _found(db: Connection, run_id: int, identity: str, repeat: int,
           planned: tuple[str, int | None] | None) -> Claim | None:
    """The claim another run's result or live lease makes: None when the pod is free for ``run_id``."""
    row = db.execute("SELECT status, run_id FROM pods WHERE identity = ? AND repeat = ?",
                     (identity, repeat)).fetchone()
    if row is not None and row[0] in _RESULTS and row[1] != run_id:
        # A result this run did not know of when it planned the pod: another run stored it since.
        stale = planned is not None and planned[0] in _RESULTS and planned[1] == row[1]
        if not stale:
            return Claim(False, row[1], row[0])
    lease = db.execute("SELECT run_id, expires FROM leases WHERE identity = ? AND repeat = ?",
                       (identity, repeat)).fetchone()
    if lease is None or lease[0] == run_id or float(lease[1]) <= time.time() or not _live(db, int(lease[0])):
        return None
    return Claim(False, int(lease[0]), "running", float(lease[1]))


def _live(db: Connection, run_id: int) -> bool:
    """Whether run ``run_id`` is going: not ended, its controller alive (another host's is taken as alive)."""
    row = db.execute("SELECT status, host, pid, pid_start FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row[0] != "running":
        return False
    _, host, pid, start = row
    return host != socket.gethostname() or pid is None or _upkeep.alive(int(pid), start)


def claim(store: Store, run_id: int, identity: str, repeat: int, seconds: float,
          planned: tuple[str, int | None] | None = None) -> Claim:
    """Take pod ``(identity, repeat)`` for run ``run_id`` for ``seconds``, unless another run has it or its result.

    Parameters
    ----------
    store : Store
        The results store.
    run_id : int
        The claiming run.
    identity, repeat : str, int
        The pod.
    seconds : float
        How long the lease lasts unless renewed (:func:`renew`): the pod's time limit and a
        grace, so that a run whose controller hangs lets others take its pods.
    planned : (status, run_id), optional
        The pod's row as the run saw it when it planned the pod (None: no row). A result
        stored since by another run is used rather than run again; one that was there
        before is run again (the run was asked to rerun it).

    Returns
    -------
    Claim
        ``taken``, or who holds the pod and whether its result is there.
    """
    # A look without the write lock first: a pod another run holds is the common answer while two runs go on,
    # and waiting runs ask again and again.
    with store._lock, store._told():
        seen = _found(store._db, run_id, identity, repeat, planned)
    if seen is not None:
        return seen
    with store._transaction() as db:
        seen = _found(db, run_id, identity, repeat, planned)  # again under the lock: it may have changed
        if seen is not None:
            return seen
        db.execute("INSERT OR REPLACE INTO leases (identity, repeat, run_id, expires) VALUES (?, ?, ?, ?)",
                   (identity, repeat, run_id, time.time() + seconds))
        mark_running(db, run_id, identity, repeat)
    return Claim(True)


def renew(store: Store, run_id: int, seconds: float) -> None:
    """Extend every lease run ``run_id`` holds to ``seconds`` from now (its controller is alive and well)."""
    with store._transaction() as db:
        db.execute("UPDATE leases SET expires = ? WHERE run_id = ?", (time.time() + seconds, run_id))


def release(db: Connection, run_id: int) -> None:
    """In ``db``'s open transaction: drop every lease of run ``run_id`` (it ended)."""
    db.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
