"""Hardware at execution: thread counts of PyTorch, JAX and BLAS, and the device, from ``Resources``."""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

from ..sail._primitives import Resources


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
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            limits = threadpool_limits(n)
            self._restore.append(limits.restore_original_limits)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for undo in reversed(self._restore):
            undo()
        self._restore.clear()
