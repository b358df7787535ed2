"""What the executor's machines offer, so that hardware modules can be accepted or rejected."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..sail import Resources


@dataclass(frozen=True)
class Machine:
    """The resources one machine of the executor offers.

    Parameters
    ----------
    cpus : int
        Usable CPU cores.
    gpus : int
        Visible CUDA devices.
    memory : int or None
        Memory in bytes (``None``: unknown, not checked).
    place : str
        Where the pods run, as a reason names it (``this machine``, ``any worker of the Dask cluster``).
    """

    cpus: int
    gpus: int = 0
    memory: int | None = None
    place: str = "this machine"

    @classmethod
    def local(cls) -> Machine:
        """This machine, found without importing torch or jax."""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return cls(cpus, _visible_gpus(), _memory_bytes())

    def lacks(self, res: Resources) -> str | None:
        """Why ``res`` can't be had here, or ``None`` when it can."""
        if res.device == "cuda" and self.gpus < max(res.gpus, 1):
            return (f"asks for {max(res.gpus, 1)} CUDA device(s), but "
                    f"{'none is' if not self.gpus else f'only {self.gpus} are'} visible on {self.place}")
        if res.cpus > self.cpus:
            return f"asks for {res.cpus} CPUs, but {self.place} has {self.cpus}"
        need = res.memory_bytes
        if need is not None and self.memory is not None and need > self.memory:
            return f"asks for {need / 2**30:.1f} GiB of memory, but {self.place} has {self.memory / 2**30:.1f} GiB"
        return None


#: One folder per NVIDIA GPU the driver sees (no torch import needed to count them).
_DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")


def _visible_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return 0
    count = len(list(_DRIVER_GPUS.iterdir())) if _DRIVER_GPUS.is_dir() else 0
    if visible is not None and count:
        return min(count, len([v for v in visible.split(",") if v.strip()]))
    return count


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
