"""Results: the SQLite store BenchPod events are written to, and the pandas views that read it.

:class:`Store` is the writer the parent of a ``run()`` owns (one transaction per event,
WAL mode so a notebook may read while it writes); :class:`Results` reads a store as tidy
DataFrames, their spread over repeats, failures, metric warnings, environments and logs,
and exports it as one self-contained file. The table layout
is described in ``docs/benchpods.md``. :func:`rank` orders the scenarios by a ranking
module, a function, the built-in Pareto ranking or the time to a target precision.
pandas is imported only when a frame is asked for.
"""

from ._leases import Claim as Claim
from ._pareto import pareto as pareto
from ._rankings import Ranking as Ranking
from ._rankings import RankingError as RankingError
from ._rankings import describe_metrics as describe_metrics
from ._rankings import final_points as final_points
from ._rankings import rank as rank
from ._rankings import rank_comparison as rank_comparison
from ._rankings import rank_scores as rank_scores
from ._results import Results as Results
from ._store import Store as Store
from ._store import StoreError as StoreError
from ._store import StoreWarning as StoreWarning
from ._target import time_to_target as time_to_target
from ._warnings import warning_line as warning_line

__all__ = ["Store", "StoreError", "StoreWarning", "Claim", "Results", "Ranking", "RankingError", "describe_metrics",
           "final_points", "pareto", "rank", "rank_comparison", "rank_scores", "time_to_target", "warning_line"]
