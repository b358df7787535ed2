"""Processes SAIBench starts that must not outlive the one that started them (pods, workers, the probe).

Shared by the layers that start such processes (``sail``'s probe, ``pods``), below both.
"""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent dies.

    Parameters
    ----------
    parent : int
        The pid the parent should have; when ``os.getppid()`` differs, the parent died
        before the signal was armed (this process was re-parented).
    sig : int
        The signal to receive: SIGKILL for a pod, SIGTERM for a warm worker (which then
        kills its pods' process groups itself).

    Returns
    -------
    bool
        False when the parent is gone already: the caller should exit.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this libc: the other guards remain
            pass
    return os.getppid() == parent
