"""The store's tables, how an older store is brought up to date, and what a file must be to be opened as a store.

Opening is careful with files that are not ours: everything that decides whether a file
is a results store (its tables, its ``schema_version``) is read before anything is
written, so a file that is refused is left exactly as it was (its journal mode
included). Errors SQLite raises are told as what they are (a damaged file, a missing
table, no file descriptor left) with the fix, never as a raw ``sqlite3`` error.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from ..planner import roles_to_flat
from ..sail import COUNTERS
from ._store_errors import StoreError

#: The schema this code writes (meta's ``schema_version``).
SCHEMA_VERSION = 6

# What went wrong in a pod that still finished (a metric that raised at some checkpoints): a record of its own,
# so views can say which metric failed in how many pods without reading logs.
_WARNINGS = ("CREATE TABLE IF NOT EXISTS warnings (id INTEGER PRIMARY KEY, identity TEXT NOT NULL, "
             "repeat INTEGER NOT NULL, run_id INTEGER, kind TEXT, name TEXT, message TEXT, location TEXT, "
             "stage INTEGER, checkpoint INTEGER, fix TEXT, t REAL)",
             "CREATE INDEX IF NOT EXISTS warnings_pod ON warnings (identity, repeat)")
# Who runs a pod now: a run takes a pod's lease before starting it, so two runs of the same scenarios at
# once run each pod once (the other waits for the result). ``expires``: when a silent owner stops counting.
_LEASES = ("CREATE TABLE IF NOT EXISTS leases (identity TEXT NOT NULL, repeat INTEGER NOT NULL, "
           "run_id INTEGER NOT NULL, expires REAL NOT NULL, PRIMARY KEY (identity, repeat))",)
# What a pod left behind besides its records (its executed notebook): one location per pod and kind, so a
# rerun replaces it. ``location``: an absolute path, or a URL (http://..., s3://...).
_ARTIFACTS = ("CREATE TABLE IF NOT EXISTS artifacts (identity TEXT NOT NULL, repeat INTEGER NOT NULL, "
              "run_id INTEGER, kind TEXT NOT NULL, location TEXT NOT NULL, t REAL, "
              "PRIMARY KEY (identity, repeat, kind))",)

# points is WITHOUT ROWID: small fixed rows stored in their key's b-tree, one b-tree write per checkpoint.
# metrics keeps its rowid because raw (CriticalLoss's losses, say) can be kilobytes.
_COUNTER_COLUMNS = ", ".join(f'"{c}" REAL' for c in COUNTERS)
SCHEMA = f"""
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
{_LEASES[0]};
{_ARTIFACTS[0]};
"""

#: The tables a store of the current version has (one dropped by hand makes the file a damaged store).
TABLES = frozenset({"meta", "runs", "sources", "scenarios", "pods", "points", "metrics", "environments",
                    "failures", "logs", "warnings", "leases", "artifacts"})
#: Tables that came with a later version: an older store lacks them until it is migrated.
_ADDED = {"warnings": 3, "leases": 4, "artifacts": 6}



def _one_shape_params(db: sqlite3.Connection) -> None:
    """Scenarios' parameters stored by role (``{"model": {"hiddenSize": 128}}``) in the one shape that
    discovery, pod specs and charts use: ``{"MLP.hiddenSize": 128}``."""
    rows = db.execute("SELECT identity, problem, model, software, hardware, submodels, params FROM scenarios "
                      "WHERE params IS NOT NULL").fetchall()
    for identity, problem, model, software, hardware, submodels, text in rows:
        try:
            params, subs = json.loads(text), json.loads(submodels or "{}")
        except ValueError:
            continue  # a damaged value is reported when it is read, with the fix
        if not isinstance(params, dict) or not isinstance(subs, dict):
            continue
        names = {"problem": problem, "hardware": hardware, "software": software, "model": model, **subs}
        flat = roles_to_flat(params, names)
        if flat is not None and flat != params:
            db.execute("UPDATE scenarios SET params = ? WHERE identity = ?", (json.dumps(flat), identity))


#: How to bring an older store up to date: version -> the statements (SQL, or a function of the
#: connection) that make it version + 1.
MIGRATIONS: dict[int, tuple[str | Callable[[sqlite3.Connection], None], ...]] = {
    1: ("ALTER TABLE scenarios ADD COLUMN metric_info TEXT",),  # version 2: metrics' axis, direction and unit
    # version 3: metric warnings as records, the controller of each run (is it alive?), the code version
    # of a scenario and when a run last asked for it (which version of a label is current)
    2: ("ALTER TABLE runs ADD COLUMN pid INTEGER", "ALTER TABLE runs ADD COLUMN pid_start TEXT",
        "ALTER TABLE scenarios ADD COLUMN version TEXT", "ALTER TABLE scenarios ADD COLUMN registered REAL",
        *_WARNINGS),
    3: _LEASES,  # version 4: pod leases (two runs at once run each pod once)
    4: (_one_shape_params,),  # version 5: parameters as {"Module.param": value}, as everywhere else
    5: _ARTIFACTS,  # version 6: what pods left behind (their executed notebooks)
}

#: What to do with a store SQLite cannot read.
_RESTORE = ("fix: restore it from a copy or an export (Results(...).export(path), saibench export), or save "
            "what is readable with `sqlite3 {name} .recover | sqlite3 recovered.db` and pass that path")


def prepare(db: sqlite3.Connection, path: Path, busy_ms: int) -> None:
    """Check that ``db`` is a results store (read-only), then set it up: WAL, and the schema or its migration.

    Raises
    ------
    StoreError
        For another program's database, a store of a newer version, a store that lacks tables.
    sqlite3.DatabaseError
        For a file SQLite cannot read (the caller says what that means with :func:`database_error`).
    """

    db.execute(f"PRAGMA busy_timeout={busy_ms}")
    # NORMAL: a commit is not an fsync, which keeps one transaction per event cheap; a power cut may lose the
    # last events, never the file. Per connection: nothing is written to the file.
    db.execute("PRAGMA synchronous=NORMAL")
    tables = _tables(db)
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer saibench-jupyter (schema_version {version}; "
                             f"this one reads {SCHEMA_VERSION}): upgrade saibench-jupyter "
                             f"(pip install -U saibench-jupyter)")
        if version not in MIGRATIONS and version != SCHEMA_VERSION:
            raise StoreError(f"{path} has no usable schema_version ({row[0] if row else 'none'}): it is "
                             f"not a SAIBench results store; pass another path or move the file away")
        missing = sorted(t for t in TABLES - tables if _ADDED.get(t, 0) <= version)
        if missing:
            raise StoreError(f"{path} is a SAIBench results store that lacks the table{'s' * (len(missing) > 1)} "
                             f"{', '.join(missing)}: it was changed by hand or by another program\n  "
                             + _RESTORE.format(name=path.name))
        # WAL: readers (a notebook) never block the writer (a run) and vice versa. Only now that the file is
        # known to be ours: a refused file must be left as it was.
        db.execute("PRAGMA journal_mode=WAL")
        if version < SCHEMA_VERSION:
            _migrate(db)
        return
    if tables - {"sqlite_sequence"}:
        raise StoreError(f"{path} is an SQLite database of another program (tables: "
                         f"{', '.join(sorted(tables))}); pass another path for the results store")
    # The schema goes into the file itself (before WAL mode), in one transaction: a second process opening
    # the same new file sees all of it or none, and a copy of the file alone is a store, not an empty file.
    db.executescript(f"BEGIN IMMEDIATE; {SCHEMA}\nINSERT OR IGNORE INTO meta (key, value) "
                     f"VALUES ('schema_version', '{SCHEMA_VERSION}');\nCOMMIT;")
    db.execute("PRAGMA journal_mode=WAL")


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _migrate(db: sqlite3.Connection) -> None:
    """Upgrade an older store in place, one version per transaction (another process may race us)."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if version >= SCHEMA_VERSION:
                db.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                if callable(statement):
                    statement(db)
                else:
                    db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


# -- telling errors ------------------------------------------------------------------------------
def out_of_descriptors() -> str | None:
    """Why a file cannot be opened when the reason is that no file descriptor is left, else None.

    SQLite says only "unable to open database file": trying to open a file ourselves tells
    a process at its descriptor limit (EMFILE) or a system out of them (ENFILE) apart.
    Two probes, because SQLite may have failed on its second file (the ``-wal``) with one left.
    """
    held: list[int] = []
    try:
        for _ in range(2):
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            return f"too many open files (EMFILE): this process has all {_limit()} file descriptors it may have open"
        if exc.errno == errno.ENFILE:
            return "too many open files on this system (ENFILE): every file descriptor of the system is in use"
    finally:
        for fd in held:
            os.close(fd)
    return None


def _limit() -> str:
    try:
        import resource  # Unix only
    except ImportError:
        return "the"
    return str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


_DESCRIPTOR_FIX = ("the store itself is fine; fix: raise the limit (`ulimit -n 4096` in the shell that starts "
                   "Jupyter or Python), or close what holds files open (Results(...).store.close(), "
                   "files and stores kept in variables)")


def open_error(path: Path, exc: BaseException) -> StoreError:
    """The :class:`StoreError` for a store whose file could not be opened at all."""

    descriptors = out_of_descriptors()
    if descriptors is not None:
        return StoreError(f"cannot open the results store {path}: {descriptors}\n  {_DESCRIPTOR_FIX}")
    return StoreError(f"cannot open the results store {path}: {exc}; pass a writable file path")


def database_error(path: Path, exc: sqlite3.Error, opening: bool = False) -> StoreError:
    """The :class:`StoreError` that says what an SQLite error on the store at ``path`` means, with the fix.

    Parameters
    ----------
    path : Path
        The store's file.
    exc : sqlite3.Error
        What SQLite raised (call this before closing the connection: descriptors are probed).
    opening : bool
        Whether the error came while checking what the file is (a file that is not SQLite at
        all is then another file, not a damaged store).
    """

    code = getattr(exc, "sqlite_errorname", "")
    text = str(exc)
    if code in ("SQLITE_CANTOPEN", "SQLITE_IOERR") or code.startswith(("SQLITE_CANTOPEN_", "SQLITE_IOERR_")) \
            or "unable to open" in text:
        descriptors = out_of_descriptors()
        if descriptors is not None:
            return StoreError(f"cannot open the results store {path}: {descriptors}\n  {_DESCRIPTOR_FIX}")
        return StoreError(f"cannot read or write the results store {path} ({text}): check that its folder "
                          "exists and is writable, with room left on the disk")
    if code == "SQLITE_NOTADB" and opening:
        return StoreError(f"{path} is not a SAIBench results store ({text}); pass another path, "
                          f"or move the file away to start a new store there")
    if code.startswith("SQLITE_CORRUPT") and opening:
        return StoreError(f"{path} is a damaged SQLite file ({text}); if it is a results store, "
                          + _RESTORE.format(name=path.name) + "; else pass another path")
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"the results store {path} stayed locked by another process ({text}): another run or "
                          "program holds its write lock; fix: wait for it to end, or stop it")
    if code.startswith("SQLITE_READONLY"):
        return StoreError(f"the results store {path} is read-only ({text}): pass a writable path, or copy it "
                          "somewhere writable")
    if code == "SQLITE_FULL":
        return StoreError(f"the results store {path} cannot grow: the disk is full ({text}); free some space")
    if "no such table" in text or "no such column" in text:
        return StoreError(f"{path} is a SAIBench results store that lacks part of its schema ({text}): it was "
                          f"changed by hand or by another program\n  " + _RESTORE.format(name=path.name))
    if "JSON" in text:
        return StoreError(f"{path} holds a damaged value ({text}): a JSON column was changed by hand or by "
                          f"another program\n  " + _RESTORE.format(name=path.name))
    return StoreError(f"{path} is a damaged results store ({text})\n  " + _RESTORE.format(name=path.name))


def damaged_value(path: Path, column: str, value: object, what: str) -> StoreError:
    """The :class:`StoreError` for one value of the store that cannot be read as what its column holds."""

    shown = value[:40] + "…" if isinstance(value, str) and len(value) > 40 else value
    return StoreError(f"{path} holds a damaged value in {column}: {shown!r} {what}; it was changed by hand or by "
                      f"another program\n  " + _RESTORE.format(name=path.name))
