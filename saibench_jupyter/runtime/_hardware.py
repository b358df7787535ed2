"""Hardware at execution: thread counts of PyTorch, JAX and BLAS, and the device, from ``Resources``."""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

from ..sail import Resources

#: (modules loaded, extension modules loaded, threadpoolctl's controller then). Finding the
#: loaded BLAS and OpenMP libraries walks every shared object (~1.6 ms, a tenth of a small
#: pod); a new one comes with a new extension module, so only then is it done again.
_POOLS: list[tuple[int, int, Any]] = []


def _extension_modules() -> int:
    import importlib.machinery

    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sum(1 for m in list(sys.modules.values()) if str(getattr(m, "__file__", None) or "").endswith(suffixes))


def _thread_pools() -> Any | None:
    """threadpoolctl's controller of the thread pools loaded in this process (None without threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    if _POOLS and _POOLS[0][0] == len(sys.modules):
        return _POOLS[0][2]
    native = _extension_modules()
    if not _POOLS or _POOLS[0][1] != native:
        _POOLS[:] = [(0, native, ThreadpoolController())]
    _POOLS[0] = (len(sys.modules), _extension_modules(), _POOLS[0][2])  # counted after: making it may import
    return _POOLS[0][2]


def prime_thread_pools() -> None:
    """Look up the thread pools loaded now, so that a process forked from this one need not (a warm worker's)."""
    _thread_pools()


class hardware:  # noqa: N801 - used like a function: ``with hardware(resources, backend):``
    """Limit the run to ``resources.cpus`` threads for the duration of the block.

    PyTorch's intra-op threads and BLAS pools (through threadpoolctl, where installed)
    are set and restored afterwards. XLA reads its thread settings once, when JAX
    starts: they are set through ``XLA_FLAGS`` only if JAX is not loaded yet (a BenchPod
    is a fresh process, so there it always is).
    """

    def __init__(self, resources: Resources, backend: str) -> None:
        self.resources = resources
        self.backend = backend
        self._restore: list[Any] = []

    @property
    def device(self) -> str:
        """``cuda`` or ``cpu``: discovery already rejected CUDA where there is none."""
        return self.resources.device

    def __enter__(self) -> hardware:
        n = max(1, int(self.resources.cpus))
        if self.backend == "torch":
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(n)
            self._restore.append(lambda: torch.set_num_threads(before))
        if self.backend == "jax" and "jax" not in sys.modules:
            flags = os.environ.get("XLA_FLAGS", "")
            if "intra_op_parallelism_threads" not in flags:
                extra = f"--xla_cpu_multi_thread_eigen={'false' if n == 1 else 'true'} " \
                        f"intra_op_parallelism_threads={n}"
                os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()
        pools = _thread_pools()
        if pools is not None:
            # Only pools not at n already: setting an OpenBLAS count starts its pool, with as many
            # threads as it found CPUs where it was loaded (a warm worker's), which then spin for
            # ~0.1 s beside the model on the CPUs the pod is pinned to (its first solves ran 2x slower).
            changing = [lib.filepath for lib in pools.lib_controllers if lib.num_threads != n]
            if changing:
                self._restore.append(pools.select(filepath=changing).limit(limits=n).restore_original_limits)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for undo in reversed(self._restore):
            undo()
        self._restore.clear()
