"""The notebook experience: magics, background runs, work–precision charts and headless reports.

``%load_ext saibench_jupyter`` registers the magics (``saibench_jupyter.ui._magics``), a
thin layer over :class:`Notebook`, the plain core that holds a kernel's repository, runs
and store. Nothing here imports IPython, plotly or pandas until it is used.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._charts import ChartTrace as ChartTrace
    from ._charts import axes_available as axes_available
    from ._charts import plot_work_precision as plot_work_precision
    from ._charts import work_precision_traces as work_precision_traces
    from ._handle import RunFailedError as RunFailedError
    from ._handle import RunHandle as RunHandle
    from ._lab import LabBridge as LabBridge
    from ._magics import load_ipython_extension as load_ipython_extension
    from ._magics import notebook as notebook
    from ._magics import unload_ipython_extension as unload_ipython_extension
    from ._notebook import Notebook as Notebook
    from ._notebook import NotebookError as NotebookError
    from ._options import add_executor_options as add_executor_options
    from ._options import executor_options as executor_options
    from ._options import hide_secrets as hide_secrets
    from ._pods import PodStatus as PodStatus
    from ._reference import language_reference as language_reference
    from ._report import Report as Report
    from ._report import ReportError as ReportError
    from ._report import quickstart as quickstart
    from ._report import report as report

_MODULES = {
    "._charts": ("ChartTrace", "axes_available", "plot_work_precision", "work_precision_traces"),
    "._handle": ("RunFailedError", "RunHandle"),
    "._lab": ("LabBridge",),
    "._magics": ("load_ipython_extension", "notebook", "unload_ipython_extension"),
    "._notebook": ("Notebook", "NotebookError"),
    "._options": ("add_executor_options", "executor_options", "hide_secrets"),
    "._pods": ("PodStatus",),
    "._reference": ("language_reference",),
    "._report": ("Report", "ReportError", "quickstart", "report"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
