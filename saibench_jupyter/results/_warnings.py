"""One line per metric that failed: which metric, in how many pods, and why.

Shared by every view that reports metric warnings (``Results``, a run's live display,
``%sail plot`` and ``%sail rank``), so they all say it the same way.
"""

from __future__ import annotations

#: What a metric's failure message starts with (``runtime._metrics.evaluate``), trimmed for the line.
_PREFIXES = ("metric {name} raised ", "metric {name} failed: ", "metric {name} ")


def cause(name: str, message: str) -> str:
    """The first line of ``message`` without the ``metric NAME raised`` the line already says."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else "no message"
    for prefix in _PREFIXES:
        head = prefix.format(name=name)
        if first.startswith(head):
            return first[len(head):]
    return first


def warning_line(name: str, failed: int, pods: int, message: str, others: int = 0) -> str:
    """``⚠ metric RMSE failed in 3 of 4 pods: ValueError: ...``.

    Parameters
    ----------
    name : str
        The metric.
    failed, pods : int
        Pods where it failed, out of the pods that compute it.
    message : str
        The most common failure message.
    others : int
        How many other distinct messages there are.
    """
    more = f" (and {others} other error{'s' * (others != 1)})" if others else ""
    return f"⚠ metric {name} failed in {failed} of {pods} pod{'s' * (pods != 1)}: {cause(name, message)}{more}"
