"""Results: the SQLite store BenchPod events are written to, and the pandas views that read it.

:class:`Store` is the writer the parent of a ``run()`` owns (one transaction per event,
WAL mode so a notebook may read while it writes); :class:`Results` reads a store as tidy
DataFrames, their spread over repeats, failures, environments and logs. The table layout
is described in ``docs/benchpods.md``. pandas is imported only when a frame is asked for.
"""

from ._results import Results as Results
from ._store import Store as Store
from ._store import StoreError as StoreError

__all__ = ["Store", "StoreError", "Results"]
