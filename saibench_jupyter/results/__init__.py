"""Results: the SQLite store BenchPod events are written to, and the pandas views that read it.

:class:`Store` is the writer the parent of a ``run()`` owns (one transaction per event,
WAL mode so a notebook may read while it writes); :class:`Results` reads a store as tidy
DataFrames, their spread over repeats, failures, metric warnings, environments and logs,
and exports it as one self-contained file. The table layout
is described in ``docs/benchpods.md``. :func:`rank` orders the scenarios by a ranking
module, a function, the built-in Pareto ranking or the time to a target precision, each
named by a typed spec (:class:`RankingModuleSpec`, :class:`RankingFunctionSpec`,
:class:`ParetoSpec`, :class:`TargetSpec`) or by what stands for one (a name, a function,
``("pareto", work, precision)``, ``("target", precision, value)``).
pandas is imported only when a frame is asked for.
"""

from ._final_points import describe_metrics as describe_metrics
from ._final_points import final_points as final_points
from ._leases import Claim as Claim
from ._levels import Ranking as Ranking
from ._pareto import pareto as pareto
from ._ranking_specs import ParetoSpec as ParetoSpec
from ._ranking_specs import RankingFunctionSpec as RankingFunctionSpec
from ._ranking_specs import RankingModuleSpec as RankingModuleSpec
from ._ranking_specs import RankingSpec as RankingSpec
from ._ranking_specs import TargetSpec as TargetSpec
from ._ranking_specs import as_ranking_spec as as_ranking_spec
from ._rankings import RankingError as RankingError
from ._rankings import rank as rank
from ._rankings import rank_comparison as rank_comparison
from ._rankings import rank_scores as rank_scores
from ._results import Results as Results
from ._store import Store as Store
from ._store_errors import StoreError as StoreError
from ._store_errors import StoreWarning as StoreWarning
from ._target import time_to_target as time_to_target
from ._warnings import warning_line as warning_line

__all__ = ["Store", "StoreError", "StoreWarning", "Claim", "Results", "Ranking", "RankingError", "final_points",
           "describe_metrics", "pareto", "rank", "rank_comparison", "rank_scores", "time_to_target", "warning_line",
           "RankingSpec", "RankingModuleSpec", "RankingFunctionSpec", "ParetoSpec", "TargetSpec", "as_ranking_spec"]
