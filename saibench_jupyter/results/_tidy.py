"""The tidy frame, read column by column: one row per scenario × repeat × checkpoint × metric.

Read as one SQL join, the frame costs a Python object per cell for every column of every
row: the scenario's label, family, parameters ... repeated on each of its points' metric
rows, then converted back column by column by pandas. Here the store is read in three
queries of one snapshot (a run may be writing): the pods in view with their scenario
columns (a few rows), the points (numbers only) and the metrics (name and value), each
ordered as the frame is. The frame's rows are then index arithmetic in NumPy: every
column is its table's column taken at the row's pod, point or metric, so a scenario's
text is decoded once, not once per point. The points and metrics are fetched in chunks
and packed into arrays as they come, so memory stays a small multiple of the frame's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..sail import COUNTERS
from . import _schema
from ._store import Store

if TYPE_CHECKING:
    import numpy
    import pandas

#: The frame's columns, in order (``Results.to_dataframe`` documents them).
COLUMNS = ("identity", "scenario", "label", "family", "problem", "model", "software", "hardware", "params",
           "repeat", "status", "stage", "checkpoint", "epoch", "loss", *COUNTERS, "compile_ms", "metric", "value")
#: Scenario columns carried by every frame, in this order.
SCENARIO = ("scenario", "label", "family", "problem", "model", "software", "hardware", "params")
#: Columns of the points query, in order: the key, then the numbers, then how many metrics the point has.
_POINT = ("stage", "checkpoint", "epoch", "loss", *COUNTERS)
_INTEGER = ("stage", "checkpoint", "epoch")
#: Rows converted to arrays at a time: Python objects for at most this many rows are alive at once.
CHUNK = 65536


def _pods_sql(where: str) -> str:
    return (f"SELECT p.identity, {', '.join('s.' + c for c in SCENARIO)}, p.repeat, p.status, p.compile_ms, "
            "(SELECT count(*) FROM points pt WHERE pt.identity = p.identity AND pt.repeat = p.repeat) "
            f"FROM pods p LEFT JOIN scenarios s ON s.identity = p.identity {where} ORDER BY p.identity, p.repeat")


def _points_sql(where: str) -> str:
    counters = ", ".join(f'pt."{c}"' for c in COUNTERS)
    return (f"SELECT pt.stage, pt.checkpoint, pt.epoch, pt.loss, {counters}, "
            "(SELECT count(*) FROM metrics m WHERE m.identity = pt.identity AND m.repeat = pt.repeat "
            "AND m.stage = pt.stage AND m.checkpoint = pt.checkpoint) "
            "FROM pods p JOIN points pt ON pt.identity = p.identity AND pt.repeat = p.repeat "
            f"{where} ORDER BY p.identity, p.repeat, pt.stage, pt.checkpoint")


def _metrics_sql(where: str, exact: bool) -> str:
    """The metrics of the pods in view, in the frame's order.

    ``exact``: only those of a stored point (as the frame joins them). Otherwise every
    metric of the pods, read through the pods' key alone (twice as fast: no look-up of
    a pod and a point per metric); the same rows unless a metric lacks its point, which
    :func:`tidy_frame` tells by their count, and then reads the exact ones.
    """
    if exact:
        return ("SELECT m.name, m.value FROM pods p JOIN points pt ON pt.identity = p.identity "
                "AND pt.repeat = p.repeat JOIN metrics m ON m.identity = pt.identity AND m.repeat = pt.repeat "
                f"AND m.stage = pt.stage AND m.checkpoint = pt.checkpoint {where} "
                # The metrics' own key (equal to the pod's and point's): SQLite reads its index in order, no sort.
                "ORDER BY m.identity, m.repeat, m.stage, m.checkpoint, m.name")
    # CROSS JOIN: SQLite keeps this order, pods first, then each pod's metrics as its index holds them.
    return ("SELECT m.name, m.value FROM pods p CROSS JOIN metrics m ON m.identity = p.identity "
            f"AND m.repeat = p.repeat {where} ORDER BY p.identity, p.repeat, m.stage, m.checkpoint, m.name")


def _metrics(store: Store, db: Any, where: str, params: Sequence[Any], count: int,
             exact: bool) -> tuple[numpy.ndarray, numpy.ndarray, list[str]] | None:
    """The ``count`` metrics of the points read: name codes, values and the names; None when there are more."""
    import numpy as np
    import pandas as pd

    codes, values = np.empty(count, dtype=np.int64), np.empty(count)
    distinct: dict[str, int] = {}  # metric name -> its code: a few names, each decoded once
    cursor, at = db.execute(_metrics_sql(where, exact), params), 0
    while chunk := cursor.fetchmany(CHUNK):
        if at + len(chunk) > count:
            return None  # a metric without its point: the exact query leaves it out
        block = np.array(chunk, dtype=object)  # much faster than zip(*chunk) for two columns
        local, names = pd.factorize(block[:, 0])
        codes[at:at + len(chunk)] = np.array([distinct.setdefault(n, len(distinct)) for n in names],
                                             dtype=np.int64)[local]
        values[at:at + len(chunk)] = _floats(store, block[:, 1], ["metrics.value"])
        at += len(chunk)
    return (codes, values, list(distinct)) if at == count else None


def _floats(store: Store, rows: Sequence[Any] | numpy.ndarray, columns: Sequence[str]) -> numpy.ndarray:
    """``rows`` (tuples of ``columns``, or values of one column) as a float64 array, None as NaN.

    A value that is not a number is a StoreError naming its column.
    """
    import numpy as np

    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), *([len(columns)] if len(columns) > 1 else []))
    except (TypeError, ValueError):
        for k, column in enumerate(columns):  # the slow path finds the damaged value, to say where it is
            for row in rows:
                value = row[k] if len(columns) > 1 else row
                try:
                    np.float64(np.nan if value is None else value)
                except (TypeError, ValueError):
                    what = "is not a whole number" if column.endswith(_INTEGER) else "is not a number"
                    raise _schema.damaged_value(store.path, column, value, what) from None
        raise


def _whole(store: Store, values: numpy.ndarray, column: str) -> pandas.api.extensions.ExtensionArray:
    """``values`` (float64, NaN for missing) as a nullable Int64 array; a fraction is a StoreError."""
    import numpy as np
    import pandas as pd

    missing = np.isnan(values)
    bad = ~missing & (values != np.round(values))
    if bad.any():
        raise _schema.damaged_value(store.path, column, float(values[bad][0]), "is not a whole number")
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _strings(values: Sequence[Any], at: numpy.ndarray) -> Any:
    """The text column ``values[at]`` (``at`` -1: missing) in the dtype pandas gives text read from SQL.

    That is ``str`` (Arrow-backed where pyarrow is installed) on pandas 3, ``object`` on
    pandas 2, and ``object`` for a column with no text at all, as ``DataFrame.from_records``
    infers. With Arrow the column is taken from the few distinct values in Arrow, without
    a Python object per row.
    """
    import numpy as np
    import pandas as pd

    table = np.empty(len(values) + 1, dtype=object)
    table[:-1] = values
    table[-1] = None  # index -1: a row without this value
    texts = [isinstance(v, str) for v in values]
    if not any(texts) or not len(at) or not all(t or v is None for t, v in zip(texts, values, strict=True)):
        return table[at]  # no text (or a damaged column holding something else): as from_records infers it
    dtype = pd.Series(["text"]).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        return pd.array(pa.array(table, type=pa.large_string()).take(pa.array(at % len(table))), dtype=dtype)
    return pd.array(table[at], dtype=dtype) if isinstance(dtype, pd.StringDtype) else table[at]


def _offsets(counts: numpy.ndarray) -> numpy.ndarray:
    """Where each group of ``counts`` starts in the concatenation."""
    import numpy as np

    return np.cumsum(counts) - counts if len(counts) else np.zeros(0, dtype=np.int64)


def _within(counts: numpy.ndarray) -> numpy.ndarray:
    """Each element's position in its group, for groups of ``counts`` elements laid end to end."""
    import numpy as np

    within: numpy.ndarray = np.arange(int(counts.sum())) - np.repeat(_offsets(counts), counts)
    return within


def tidy_frame(store: Store, where: str, params: Sequence[Any]) -> pandas.DataFrame:
    """The tidy frame of the pods ``where`` (a clause on ``p.identity``, with its ``params``) selects.

    Raises
    ------
    StoreError
        For a value that is not what its column holds (text in a REAL column), naming it.
    """
    import numpy as np
    import pandas as pd

    with store._snapshot() as db:  # the counts of one query are the rows of the next
        pods = db.execute(_pods_sql(where), params).fetchall()
        pod_points = np.array([row[-1] for row in pods], dtype=np.int64)
        # Filled chunk by chunk: the Python objects of one chunk at a time, no second copy to concatenate.
        points = np.empty((int(pod_points.sum()), len(_POINT) + 1))
        cursor, at = db.execute(_points_sql(where), params), 0
        while chunk := cursor.fetchmany(CHUNK):
            points[at:at + len(chunk)] = _floats(store, chunk, [*(f"points.{c}" for c in _POINT), "metrics"])
            at += len(chunk)
        count = int(points[:, -1].sum())
        read = _metrics(store, db, where, params, count, False) or _metrics(store, db, where, params, count, True)
    if read is None:  # within one snapshot the exact query has the rows counted; anything else is a bug
        raise RuntimeError(f"the metrics of {store.path} changed while they were read; read them again")
    codes, values, distinct = read

    # Pods -> their points -> their metrics. A pod without points is one row, a point without metrics one row.
    # Index -1 stands for "none" (no point, no metric): each array indexed so has a stand-in appended.
    point_metrics = np.append(points[:, -1].astype(np.int64), 0)
    units = np.maximum(pod_points, 1)  # per pod: its points, or one stand-in
    unit_pod = np.repeat(np.arange(len(pods)), units)
    unit_point = np.where(pod_points[unit_pod] > 0, np.repeat(_offsets(pod_points), units) + _within(units), -1)
    unit_rows = np.maximum(point_metrics[unit_point], 1)
    row_unit = np.repeat(np.arange(len(unit_point)), unit_rows)
    row_pod, row_point = unit_pod[row_unit], unit_point[row_unit]
    first_metric = np.append(_offsets(point_metrics[:-1]), -1)
    row_metric = np.where(point_metrics[row_point] > 0, first_metric[row_point] + _within(unit_rows), -1)

    def numbers(column: numpy.ndarray, index: numpy.ndarray) -> numpy.ndarray:
        picked: numpy.ndarray = np.append(column, np.nan)[index]  # index -1: NaN
        return picked

    columns: dict[str, Any] = {}
    for k, name in enumerate(["identity", *SCENARIO]):
        columns[name] = _strings([row[k] for row in pods], row_pod)
    pod_numbers = _floats(store, [(row[-4], row[-2]) for row in pods], ["pods.repeat", "pods.compile_ms"])
    columns["repeat"] = pod_numbers[:, 0][row_pod].astype(np.int64)
    columns["status"] = _strings([row[-3] for row in pods], row_pod)
    for k, name in enumerate(_POINT):
        column = numbers(points[:, k], row_point)
        columns[name] = _whole(store, column, f"points.{name}") if name in _INTEGER else column
    columns["compile_ms"] = pod_numbers[:, 1][row_pod]
    columns["metric"] = _strings(distinct, np.append(codes, -1)[row_metric])
    columns["value"] = numbers(values, row_metric)
    # copy=False: the columns are this function's own arrays; pandas would otherwise copy every number column
    # into one block (seconds and the frame's size again at a million points).
    return pd.DataFrame({c: columns[c] for c in COLUMNS}, copy=False)
