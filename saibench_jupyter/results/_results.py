"""Reading a results store: pandas frames of the points, their spread over repeats, and what went wrong.

A :class:`Results` is a view of a :class:`~saibench_jupyter.results.Store`, optionally
limited to some scenario identities (what one ``run()`` covered). Nothing is cached:
every call reads the store again, so a notebook polling a running benchmark sees each
point as soon as the parent wrote it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runtime._result import COUNTERS
from ._store import Store, StoreError

if TYPE_CHECKING:
    import pandas

#: Scenario columns carried by every frame, in this order.
_SCENARIO = ("scenario", "label", "family", "problem", "model", "software", "hardware", "params")
_COUNTER_SELECT = ", ".join(f'pt."{c}"' for c in COUNTERS)
_TIDY = (f"SELECT p.identity, {', '.join('s.' + c for c in _SCENARIO)}, p.repeat, p.status, pt.stage, "
         f"pt.checkpoint, pt.epoch, pt.loss, {_COUNTER_SELECT}, p.compile_ms, m.name AS metric, m.value "
         "FROM pods p LEFT JOIN scenarios s ON s.identity = p.identity "
         "LEFT JOIN points pt ON pt.identity = p.identity AND pt.repeat = p.repeat "
         "LEFT JOIN metrics m ON m.identity = pt.identity AND m.repeat = pt.repeat AND m.stage = pt.stage "
         "AND m.checkpoint = pt.checkpoint {where} "
         "ORDER BY p.identity, p.repeat, pt.stage, pt.checkpoint, m.name")


def _decode(text: Any) -> Any:
    return None if text is None else json.loads(text)


class Results:
    """What a results store holds, as pandas DataFrames.

    Parameters
    ----------
    store : Store, str or os.PathLike
        An open store, or the path of an existing one.
    identities : iterable of str, optional
        Only these scenario identities (default: everything in the store).

    Raises
    ------
    StoreError
        When ``store`` is a path where there is no file (reading never creates an
        empty store), or a file that is not a results store.

    Examples
    --------
    >>> results = Results("saibench.db")  # doctest: +SKIP
    >>> results.aggregate().query("metric == 'Accuracy'")  # doctest: +SKIP
    """

    def __init__(self, store: Store | str | os.PathLike[str], identities: Iterable[str] | None = None) -> None:
        if not isinstance(store, Store):
            path = Path(store).expanduser()
            if not path.exists():
                raise StoreError(f"there is no results store at {path}: pass the path a run() wrote "
                                 f"(saibench.db in its working directory by default)")
            store = Store(path)
        self.store = store
        self._identities = None if identities is None else sorted(set(identities))

    # -- queries ------------------------------------------------------------------------
    def _where(self, alias: str) -> tuple[str, list[Any]]:
        """A WHERE clause limiting ``alias.identity`` to the view (one JSON parameter: no variable limit)."""
        if self._identities is None:
            return "", []
        return f"WHERE {alias}.identity IN (SELECT value FROM json_each(?))", [json.dumps(self._identities)]

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pandas.DataFrame:
        import pandas as pd

        columns, rows = self.store._query(sql, params)
        return pd.DataFrame.from_records(rows, columns=columns)

    # -- frames -------------------------------------------------------------------------
    def to_dataframe(self) -> pandas.DataFrame:
        """The tidy frame: one row per scenario × repeat × checkpoint × metric.

        Columns: ``identity``, ``scenario``, ``label``, ``family``, ``problem``, ``model``,
        ``software``, ``hardware``, ``params`` (JSON text, so it can be grouped on),
        ``repeat``, ``status``, ``stage``, ``checkpoint``, ``epoch``, ``loss``, the work
        counters (``ElapsedMilliseconds`` ... ``PeakMemoryBytes``), ``compile_ms`` (the pod's
        one-time costs, kept out of the counters: compilation, data to the device, first
        runs), ``metric``, ``value``.

        A pod without points (failed early, or still starting) is one row with its status
        and missing values elsewhere, so a chart can show it as DNF; a checkpoint without
        metrics is one row with ``metric`` None. A NaN metric (a diverged loss) is NaN
        and an infinite one inf. Sorted by identity, repeat, stage, checkpoint, metric.
        """
        where, params = self._where("p")
        df = self._frame(_TIDY.format(where=where), params)
        for column in ("loss", *COUNTERS, "compile_ms", "value"):
            df[column] = df[column].astype("float64")
        for column in ("stage", "checkpoint", "epoch"):
            # Nullable integers: a pod without points has none, and 3.0 is not a checkpoint number.
            df[column] = df[column].astype("Int64")
        df["repeat"] = df["repeat"].astype("int64")
        return df

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
        info = ["identity", *_SCENARIO]
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

        Columns: ``identity``, ``scenario``, ``label``, ``family``, ``problem``, ``model``,
        ``software``, ``hardware``, ``metrics``, ``modules`` (``{name: digest}``),
        ``params`` (``{"Module.param": [values]}``), then pod counts ``repeats``, ``ok``,
        ``failed``, ``diverged`` and ``running`` (started, never finished).
        """
        where, params = self._where("s")
        scenarios = self._frame("SELECT s.identity, s.scenario, s.label, s.family, s.problem, s.model, s.software, "
                                f"s.hardware, s.metrics, s.modules, s.params FROM scenarios s {where}", params)
        for column in ("metrics", "modules", "params"):
            scenarios[column] = scenarios[column].map(_decode)
        where, params = self._where("p")
        counts = self._frame("SELECT p.identity, count(*) AS repeats, sum(p.status = 'ok') AS ok, "
                             "sum(p.status = 'failed') AS failed, sum(p.status = 'diverged') AS diverged, "
                             f"sum(p.status = 'running') AS running FROM pods p {where} GROUP BY p.identity", params)
        # Outer: a pod whose scenario row is missing still shows up (with its counts and no label).
        out = scenarios.merge(counts, on="identity", how="outer")
        for column in ("repeats", "ok", "failed", "diverged", "running"):
            out[column] = out[column].fillna(0).astype("int64")
        return out.sort_values("identity", ignore_index=True)

    def metric_info(self) -> dict[str, dict[str, Any]]:
        """What the metrics in view measure: ``{name: {"axis": "work"|"precision", "better": "lower"|"higher",
        "unit": str or None}}``, from their ``@MetricDefinition`` options.

        Empty for scenarios stored before this was recorded (schema version 1).
        """
        where, params = self._where("s")
        _, rows = self.store._query(f"SELECT s.metric_info FROM scenarios s {where}", params)
        info: dict[str, dict[str, Any]] = {}
        for (text,) in rows:
            for name, meta in (_decode(text) or {}).items():
                info.setdefault(name, meta)
        return dict(sorted(info.items()))

    def failures(self) -> pandas.DataFrame:
        """Every failure in view (``failed`` pods, and ``diverged`` ones with the reason).

        Columns: ``identity``, ``label``, ``repeat``, ``kind``, ``message``, ``module``,
        ``location``, ``stage``, ``checkpoint``, ``fix``, ``stderr``, ``traceback``,
        ``run_id``, ``t``.
        """
        where, params = self._where("f")
        df = self._frame("SELECT f.identity, s.label, f.repeat, f.kind, f.message, f.module, f.location, f.stage, "
                         "f.checkpoint, f.fix, f.stderr, f.traceback, f.run_id, f.t FROM failures f "
                         f"LEFT JOIN scenarios s ON s.identity = f.identity {where} "
                         "ORDER BY f.identity, f.repeat, f.t, f.id", params)
        for column in ("stage", "checkpoint"):
            df[column] = df[column].astype("Int64")
        return df

    def environments(self) -> pandas.DataFrame:
        """The environments the pods in view ran in: one row each, ``packages`` as ``{name: version}``.

        Columns: ``id``, ``python``, ``executable``, ``packages``, ``cpu``, ``gpu``, ``host``,
        ``platform``, ``pods`` (how many pods in view ran there).
        """
        where, params = self._where("p")
        df = self._frame("SELECT e.id, e.python, e.executable, e.packages, e.cpu, e.gpu, e.host, e.platform, "
                         "count(*) AS pods FROM pods p JOIN environments e ON e.id = p.environment_id "
                         f"{where} GROUP BY e.id ORDER BY e.id", params)
        df["packages"] = df["packages"].map(_decode)
        return df

    def logs(self) -> pandas.DataFrame:
        """What module code printed: ``identity``, ``label``, ``repeat``, ``t``, ``level``, ``message``, in order."""
        where, params = self._where("g")
        return self._frame("SELECT g.identity, s.label, g.repeat, g.t, g.level, g.message FROM logs g "
                           f"LEFT JOIN scenarios s ON s.identity = g.identity {where} "
                           "ORDER BY g.identity, g.repeat, g.t, g.id", params)

    # -- files --------------------------------------------------------------------------
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
        where_s, params_s = self._where("s")
        where_p, params_p = self._where("p")
        _, rows = self.store._query(f"SELECT count(*) FROM (SELECT s.identity FROM scenarios s {where_s} "
                                    f"UNION SELECT p.identity FROM pods p {where_p})", [*params_s, *params_p])
        _, by_status = self.store._query(f"SELECT p.status, count(*) FROM pods p {where_p} GROUP BY p.status",
                                         params_p)
        return int(rows[0][0]), {str(s): int(n) for s, n in by_status}

    def __len__(self) -> int:
        return sum(self._counts()[1].values())

    def __repr__(self) -> str:
        scenarios, by_status = self._counts()
        order = ["ok", "failed", "diverged", "running", *sorted(set(by_status) - {"ok", "failed", "diverged",
                                                                                    "running"})]
        parts = ", ".join(f"{by_status[s]} {s}" for s in order if by_status.get(s))
        pods = sum(by_status.values())
        return (f"Results({scenarios} scenario{'s' * (scenarios != 1)}, {pods} pod{'s' * (pods != 1)}"
                f"{': ' + parts if parts else ''}; {self.store.path})")
