"""Reading a results store: pandas frames of the points, their spread over repeats, and what went wrong.

A :class:`Results` is a view of a :class:`~saibench_jupyter.results.Store`, optionally
limited to some scenario identities (what one ``run()`` covered), and by default to the
current version of each scenario: after a module is edited and run again, the results
of its earlier code stay in the store but out of view (``versions="all"`` shows them).
Nothing is cached: every call reads the store again, so a notebook polling a running
benchmark sees each point as soon as the parent wrote it; and each read first marks
``interrupted`` the pods of runs whose controller died (``_upkeep.reap``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..sail import COUNTERS
from . import _schema, _upkeep
from ._artifacts import NOTEBOOK, artifacts_frame, find_artifact, notebook_lines
from ._store import Store, StoreError
from ._tidy import SCENARIO, tidy_frame
from ._warnings import warning_line

if TYPE_CHECKING:
    import pandas

#: Pod statuses in the order summaries list them.
_STATUSES = ("ok", "failed", "diverged", "cancelled", "interrupted", "running")


def _decode(store: Store, column: str, text: Any) -> Any:
    """A JSON column's value; a damaged one is a :class:`StoreError` naming the column and the fix."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise _schema.damaged_value(store.path, column, text, "is not JSON") from None


def _typed(store: Store, df: pandas.DataFrame, dtypes: dict[str, str], table: str) -> None:
    """Give ``df``'s columns their dtypes in place; a value that has none (text in a REAL column) is a StoreError."""
    import pandas as pd

    for column, dtype in dtypes.items():
        try:
            df[column] = df[column].astype(dtype)
        except (TypeError, ValueError):
            for value in df[column]:
                try:
                    pd.Series([value]).astype(dtype)
                except (TypeError, ValueError):
                    what = "is not a whole number" if dtype.lower() == "int64" else "is not a number"
                    raise _schema.damaged_value(store.path, f"{table}.{column}", value,
                                                what) from None
            raise


@dataclass(frozen=True)
class _Scope:
    """Which identities one read covers: those asked for, less the superseded versions."""

    identities: list[str] | None
    superseded: list[str]

    def where(self, alias: str) -> tuple[str, list[Any]]:
        """A WHERE clause on ``alias.identity`` (JSON parameters: no limit on how many identities)."""
        clauses, params = [], []
        if self.identities is not None:
            clauses.append(f"{alias}.identity IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(self.identities))
        if self.superseded:
            clauses.append(f"{alias}.identity NOT IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(self.superseded))
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _superseded(store: Store) -> list[str]:
    """Identities whose label and settings have a newer code version in the store.

    The current version of a label (and settings) is the one a run last asked for (its
    ``registered`` time; for scenarios stored before that was kept, its latest pod's
    start). Other identities of the same version (another seed) stay current with it.
    """
    _, rows = store._query("SELECT s.identity, s.label, s.settings, coalesce(s.version, s.identity), "
                           "coalesce(s.registered, (SELECT max(p.started) FROM pods p "
                           "WHERE p.identity = s.identity), 0) FROM scenarios s WHERE s.label IS NOT NULL")
    groups: dict[tuple[str, str | None], list[tuple[float, str, str]]] = {}
    for identity, label, settings, version, when in rows:
        groups.setdefault((label, settings), []).append((float(when), str(version), identity))
    out: list[str] = []
    for members in groups.values():
        latest = max(members)[1]
        out += [identity for _, version, identity in members if version != latest]
    return sorted(out)


class Results:
    """What a results store holds, as pandas DataFrames.

    Parameters
    ----------
    store : Store, str or os.PathLike
        An open store, or the path of an existing one.
    identities : iterable of str, optional
        Only these scenario identities (default: everything in the store).
    versions : {"current", "all"}
        ``current`` (default): of the scenarios that share a label and settings, only
        those of the code version a run last asked for (results of edited modules'
        earlier code are left out); ``all``: every version, told apart by
        :meth:`scenarios`' ``version`` column.

    Raises
    ------
    StoreError
        When ``store`` is a path where there is no file (reading never creates an
        empty store), or a file that is not a results store.
    ValueError
        For another ``versions``.

    Examples
    --------
    >>> results = Results("saibench.db")  # doctest: +SKIP
    >>> results.aggregate().query("metric == 'Accuracy'")  # doctest: +SKIP
    """

    def __init__(self, store: Store | str | os.PathLike[str], identities: Iterable[str] | None = None,
                 versions: Literal["current", "all"] = "current") -> None:
        if versions not in ("current", "all"):
            raise ValueError(f"versions={versions!r}: use 'current' (the latest code version of each scenario "
                             "label) or 'all'")
        if not isinstance(store, Store):
            path = Path(store).expanduser()
            if not path.exists():
                raise StoreError(f"there is no results store at {path}: pass the path a run() wrote "
                                 f"(saibench.db in its working directory by default)")
            store = Store(path)
        self.store = store
        self.versions = versions
        self._identities = None if identities is None else sorted(set(identities))
        #: The trained models of an in-process ``run(..., keep_models=True)``, by scenario label or id
        #: (a mapping of ``TrainedModel``); empty otherwise: the store holds no weights.
        self.models: Mapping[str, Any] = {}

    @property
    def identities(self) -> list[str] | None:
        """The scenario identities in view (sorted), or None for every scenario of the store."""
        return None if self._identities is None else list(self._identities)

    # -- queries ------------------------------------------------------------------------
    def _scope(self) -> _Scope:
        """What this read covers, once pods no live run owns are marked ``interrupted``."""
        _upkeep.reap(self.store)
        return _Scope(self._identities, [] if self.versions == "all" else _superseded(self.store))

    def _where(self, alias: str) -> tuple[str, list[Any]]:
        """A WHERE clause limiting ``alias.identity`` to the view, for one query (rankings read sources so)."""
        return self._scope().where(alias)

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pandas.DataFrame:
        import pandas as pd

        columns, rows = self.store._query(sql, params)
        return pd.DataFrame.from_records(rows, columns=columns)

    # -- frames -------------------------------------------------------------------------
    def to_dataframe(self) -> pandas.DataFrame:
        """The tidy frame: one row per scenario × repeat × checkpoint × metric.

        Columns: ``identity``, ``scenario``, ``label``, ``family``, ``problem``, ``model``,
        ``software``, ``hardware``, ``params`` (``{"Module.param": value}`` as JSON text, so
        it can be grouped on), ``repeat``, ``status``, ``stage``, ``checkpoint``, ``epoch``,
        ``loss``, the work counters (``ElapsedMilliseconds`` ... ``PeakMemoryBytes``), ``compile_ms`` (the pod's
        one-time costs, kept out of the counters: compilation, data to the device, first
        runs), ``metric``, ``value``.

        A pod without points (failed early, or still starting) is one row with its status
        and missing values elsewhere, so a chart can show it as DNF; a checkpoint without
        metrics is one row with ``metric`` None. A NaN metric (a diverged loss) is NaN
        and an infinite one inf. Sorted by identity, repeat, stage, checkpoint, metric.

        The frame is one moment of the store: what a run writes while it is read is in
        the next read, never half in this one.
        """
        where, params = self._scope().where("p")
        return tidy_frame(self.store, where, params)

    def aggregate(self) -> pandas.DataFrame:
        """The spread over repeats: one row per identity × stage × checkpoint × metric.

        Columns: ``identity`` and the scenario columns, ``stage``, ``checkpoint``,
        ``metric``, ``n`` (how many repeats have this point), ``value_median``,
        ``value_min``, ``value_max``, ``value_q20``, ``value_q80`` (quantiles interpolate
        linearly; missing values are skipped), then the medians of ``epoch``, ``loss`` and
        every work counter under their own names (so the x axis of a work–precision chart
        is the median cost). A scenario none of whose pods has a point is one row with
        ``n`` 0, like its DNF rows in :meth:`to_dataframe`.
        """
        import pandas as pd

        df = self.to_dataframe()
        keys = ["identity", "stage", "checkpoint", "metric"]
        medians = ["epoch", "loss", *COUNTERS]
        stats = ["n", "value_median", "value_min", "value_max", "value_q20", "value_q80"]
        info = ["identity", *SCENARIO]
        if df.empty:
            return pd.DataFrame(columns=[*info, *keys[1:], *stats, *medians])
        df["epoch"] = df["epoch"].astype("float64")
        groups = df.groupby(keys, dropna=False, sort=True)
        out = groups.agg(n=("repeat", "nunique"), value_median=("value", "median"), value_min=("value", "min"),
                         value_max=("value", "max"))
        out["value_q20"] = groups["value"].quantile(0.2)
        out["value_q80"] = groups["value"].quantile(0.8)
        out = out.join(groups[medians].median()).reset_index()
        # Pods without points group under a missing stage: a scenario that has points elsewhere drops that
        # row; one that has none keeps it with n = 0 (nothing was measured).
        no_point = out["stage"].isna()
        measured = set(out.loc[~no_point, "identity"])
        out = out[~(no_point & out["identity"].isin(measured))].copy()
        out.loc[out["stage"].isna(), "n"] = 0
        out = df.drop_duplicates("identity")[info].merge(out, on="identity", how="right")
        return out[[*info, *keys[1:], *stats, *medians]].reset_index(drop=True)

    def scenarios(self) -> pandas.DataFrame:
        """One row per scenario identity in view, with how its pods ended.

        Columns: ``identity``, ``scenario``, ``label``, ``version`` (a short digest of the
        code it ran: its modules and support code), ``registered`` (when a run last asked
        for it, local time), ``family``, ``problem``, ``model``, ``software``, ``hardware``,
        ``metrics``, ``modules`` (``{name: digest}``), ``params`` (``{"Module.param":
        value}``), then pod counts ``repeats``, ``ok``, ``failed``, ``diverged``,
        ``cancelled`` (its run was cancelled), ``interrupted`` (its run's controller died),
        ``running`` (a live run owns it) and ``warnings`` (pods where a metric failed).
        """
        import pandas as pd

        scope = self._scope()
        where, params = scope.where("s")
        scenarios = self._frame("SELECT s.identity, s.scenario, s.label, s.version, s.registered, s.family, "
                                "s.problem, s.model, s.software, s.hardware, s.metrics, s.modules, s.params "
                                f"FROM scenarios s {where}", params)
        for column in ("metrics", "modules", "params"):
            scenarios[column] = [_decode(self.store, f"scenarios.{column}", v) for v in scenarios[column]]
        # Local wall-clock time, as a notebook user reads it; NaT for scenarios stored before it was kept.
        _typed(self.store, scenarios, {"registered": "float64"}, "scenarios")
        scenarios["registered"] = pd.Series(pd.to_datetime(
            [None if t != t else datetime.fromtimestamp(t) for t in scenarios["registered"]]),
            index=scenarios.index, dtype="datetime64[ns]")
        where, params = scope.where("p")
        statuses = ", ".join(f"sum(p.status = '{s}') AS {s}" for s in _STATUSES)
        counts = self._frame(f"SELECT p.identity, count(*) AS repeats, {statuses}, "
                             "sum(EXISTS (SELECT 1 FROM warnings w WHERE w.identity = p.identity "
                             f"AND w.repeat = p.repeat)) AS warnings FROM pods p {where} GROUP BY p.identity", params)
        # Outer: a pod whose scenario row is missing still shows up (with its counts and no label).
        out = scenarios.merge(counts, on="identity", how="outer")
        for column in ("repeats", "ok", "failed", "diverged", "cancelled", "interrupted", "running", "warnings"):
            out[column] = out[column].fillna(0).astype("int64")
        return out.sort_values("identity", ignore_index=True)

    def metric_info(self) -> dict[str, dict[str, Any]]:
        """What the metrics in view measure: ``{name: {"axis": "work"|"precision", "better": "lower"|"higher",
        "unit": str or None}}``, from their ``@MetricDefinition`` options.

        Empty for scenarios written by a store of ``schema_version`` 1, which did not record it
        (the migration to later versions keeps them empty).
        """
        where, params = self._scope().where("s")
        _, rows = self.store._query(f"SELECT s.metric_info FROM scenarios s {where}", params)
        info: dict[str, dict[str, Any]] = {}
        for (text,) in rows:
            for name, meta in (_decode(self.store, "scenarios.metric_info", text) or {}).items():
                info.setdefault(name, meta)
        return dict(sorted(info.items()))

    def failures(self) -> pandas.DataFrame:
        """Every failure in view (``failed`` pods, and ``diverged`` ones with the reason).

        Columns: ``identity``, ``label``, ``repeat``, ``kind``, ``message``, ``module``,
        ``location``, ``stage``, ``checkpoint``, ``fix``, ``stderr``, ``traceback``,
        ``run_id``, ``t``.
        """
        where, params = self._scope().where("f")
        df = self._frame("SELECT f.identity, s.label, f.repeat, f.kind, f.message, f.module, f.location, f.stage, "
                         "f.checkpoint, f.fix, f.stderr, f.traceback, f.run_id, f.t FROM failures f "
                         f"LEFT JOIN scenarios s ON s.identity = f.identity {where} "
                         "ORDER BY f.identity, f.repeat, f.t, f.id", params)
        _typed(self.store, df, {"stage": "Int64", "checkpoint": "Int64"}, "failures")
        return df

    def failure_lines(self) -> list[str]:
        """One line per failure in view, as :meth:`failures` lists them: ``✗ <label> r0 (error): <message>``.

        Only the message's first line. Read without pandas, so a script (``saibench run``)
        that only reports how a run went does not import it.
        """
        where, params = self._scope().where("f")
        _, rows = self.store._query("SELECT f.identity, s.label, f.repeat, f.kind, f.message FROM failures f "
                                    f"LEFT JOIN scenarios s ON s.identity = f.identity {where} "
                                    "ORDER BY f.identity, f.repeat, f.t, f.id", params)
        lines = []
        for identity, label, repeat, kind, message in rows:
            first = next(iter(str(message or "").splitlines()), "")
            head = f"✗ {label if label is not None else identity} r{repeat} ({kind})"
            lines.append(f"{head}: {first}" if first else head)
        return lines

    def warnings(self) -> pandas.DataFrame:
        """Metrics that failed in pods that still finished: one row per pod × metric × message.

        A metric that raises on real data (at some checkpoints or all of them) leaves its
        pod ``ok`` with the other metrics; this says where it did not give a value.

        Columns: ``identity``, ``label``, ``repeat``, ``kind`` (``metric``), ``metric``,
        ``count`` (checkpoints where it failed with this message), ``message``, ``stage``
        and ``checkpoint`` (the first such), ``location``, ``fix``, ``run_id``.
        """
        where, params = self._scope().where("w")
        # SQLite: with min(w.id) in the select list, the bare columns come from the row holding that minimum,
        # so stage, checkpoint, location and fix are those of the first failure of the group.
        df = self._frame("SELECT w.identity, s.label, w.repeat, w.kind, w.name AS metric, count(*) AS count, "
                         "w.message, w.stage, w.checkpoint, w.location, w.fix, w.run_id, min(w.id) AS first "
                         f"FROM warnings w LEFT JOIN scenarios s ON s.identity = w.identity {where} "
                         "GROUP BY w.identity, w.repeat, w.name, w.message ORDER BY w.identity, w.repeat, first",
                         params)
        df = df.drop(columns="first")
        _typed(self.store, df, {"stage": "Int64", "checkpoint": "Int64", "count": "int64"}, "warnings")
        return df

    def warning_lines(self) -> list[str]:
        """One line per metric that failed in the pods in view: ``⚠ metric RMSE failed in 3 of 4 pods: ...``.

        The count is out of the pods in view whose scenario computes the metric; the
        message is the one most pods gave.
        """
        scope = self._scope()
        where, params = scope.where("w")
        _, rows = self.store._query(f"SELECT w.name, w.identity, w.repeat, w.message FROM warnings w {where} "
                                    "ORDER BY w.name, w.id", params)
        if not rows:
            return []
        where, params = scope.where("p")
        _, computing = self.store._query(
            "SELECT j.value, count(*) FROM pods p JOIN scenarios s ON s.identity = p.identity, "
            f"json_each(s.metrics) j {where} GROUP BY j.value", params)
        pods_of = {str(name): int(n) for name, n in computing}
        failed: dict[str, set[tuple[str, int]]] = {}
        messages: dict[str, dict[str, set[tuple[str, int]]]] = {}
        for name, identity, repeat, message in rows:
            failed.setdefault(name, set()).add((identity, repeat))
            messages.setdefault(name, {}).setdefault(str(message), set()).add((identity, repeat))
        lines = []
        for name, pods in failed.items():
            ranked = sorted(messages[name].items(), key=lambda item: -len(item[1]))  # stable: first seen wins ties
            lines.append(warning_line(name, len(pods), max(pods_of.get(name, 0), len(pods)), ranked[0][0],
                                      len(ranked) - 1))
        return lines

    def environments(self) -> pandas.DataFrame:
        """The environments the pods in view ran in: one row each, ``packages`` as ``{name: version}``.

        Columns: ``id``, ``python``, ``executable``, ``packages``, ``cpu``, ``gpu``, ``host``,
        ``platform``, ``pods`` (how many pods in view ran there).
        """
        where, params = self._scope().where("p")
        df = self._frame("SELECT e.id, e.python, e.executable, e.packages, e.cpu, e.gpu, e.host, e.platform, "
                         "count(*) AS pods FROM pods p JOIN environments e ON e.id = p.environment_id "
                         f"{where} GROUP BY e.id ORDER BY e.id", params)
        df["packages"] = [_decode(self.store, "environments.packages", v) for v in df["packages"]]
        return df

    def logs(self) -> pandas.DataFrame:
        """What module code printed: ``identity``, ``label``, ``repeat``, ``t``, ``level``, ``message``, in order."""
        where, params = self._scope().where("g")
        return self._frame("SELECT g.identity, s.label, g.repeat, g.t, g.level, g.message FROM logs g "
                           f"LEFT JOIN scenarios s ON s.identity = g.identity {where} "
                           "ORDER BY g.identity, g.repeat, g.t, g.id", params)

    def artifacts(self, kind: str | None = None) -> pandas.DataFrame:
        """What the pods in view left behind: their executed notebooks (``executor="papermill"``).

        Columns: ``identity``, ``repeat``, ``pod`` (its key, ``{identity}-r{repeat}``), ``label``,
        ``kind`` (``notebook``), ``location`` (an absolute path, or a URL such as
        ``s3://bucket/runs/...``), ``run_id``, ``t``; one row per pod and kind (a rerun replaces it).

        Parameters
        ----------
        kind : str, optional
            Only artifacts of this kind.
        """
        return artifacts_frame(self, kind)

    def notebook(self, pod: str) -> str:
        """Where a pod's executed notebook is: its path or URL, as the executor wrote it.

        Parameters
        ----------
        pod : str
            A pod key (``3f2a9c0d1e2b4a5c-r1``), or the start of a scenario identity: its
            repeat 0, or its only pod with a notebook.

        Raises
        ------
        KeyError
            When no pod in view matches, or the pod kept no notebook (another executor ran it).
        ValueError
            When the prefix starts several identities, or names several repeats and none is 0.
        """
        return find_artifact(self, pod, NOTEBOOK).location

    # -- files --------------------------------------------------------------------------
    def export(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write a self-contained copy of the whole store (every version, every scenario) to one file.

        The store keeps its latest writes in ``saibench.db-wal`` beside the file while a
        run is on; the copy needs no such file: send it, archive it, open it with
        ``Results(path)`` anywhere.

        Parameters
        ----------
        path : str or os.PathLike
            The copy's file.
        overwrite : bool
            Replace a file already at ``path`` (default: refuse).

        Returns
        -------
        Path
            The copy's path.

        Raises
        ------
        StoreError
            When ``path`` is this store, a folder, or an existing file and not ``overwrite``.
        """
        return _upkeep.export(self.store, path, overwrite)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the tidy frame (:meth:`to_dataframe`) as CSV and return the file's path."""
        target = Path(path).expanduser()
        self.to_dataframe().to_csv(target, index=False)
        return target

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write the tidy frame (:meth:`to_dataframe`) as Parquet and return the file's path.

        Raises
        ------
        ImportError
            Without pyarrow, saying how to install it.
        """
        try:
            import pyarrow  # noqa: F401  (only to fail early with the fix)
        except ImportError as e:
            raise ImportError("writing Parquet needs pyarrow: pip install 'saibench-jupyter[parquet]'") from e
        target = Path(path).expanduser()
        self.to_dataframe().to_parquet(target, index=False, engine="pyarrow")
        return target

    # -- summary ------------------------------------------------------------------------
    def _counts(self) -> tuple[int, dict[str, int]]:
        """Scenarios in view, and pods in view by status."""
        scope = self._scope()
        where_s, params_s = scope.where("s")
        where_p, params_p = scope.where("p")
        _, rows = self.store._query(f"SELECT count(*) FROM (SELECT s.identity FROM scenarios s {where_s} "
                                    f"UNION SELECT p.identity FROM pods p {where_p})", [*params_s, *params_p])
        _, by_status = self.store._query(f"SELECT p.status, count(*) FROM pods p {where_p} GROUP BY p.status",
                                         params_p)
        return int(rows[0][0]), {str(s): int(n) for s, n in by_status}

    def __len__(self) -> int:
        return sum(self._counts()[1].values())

    def __repr__(self) -> str:
        """``Results(2 scenarios, 4 pods: 4 ok; saibench.db)``, a line per metric that failed, the store's notes."""
        scenarios, by_status = self._counts()
        order = [*_STATUSES, *sorted(set(by_status) - set(_STATUSES))]
        parts = ", ".join(f"{by_status[s]} {s}" for s in order if by_status.get(s))
        pods = sum(by_status.values())
        head = (f"Results({scenarios} scenario{'s' * (scenarios != 1)}, {pods} pod{'s' * (pods != 1)}"
                f"{': ' + parts if parts else ''}; {self.store.path})")
        return "\n".join([head, *self.warning_lines(), *notebook_lines(self),
                          *(f"⚠ {note}" for note in self.store.notes)])
