"""What a warm worker may hold when it forks a pod: what it imports first, and when it must stop forking.

Measured with ``benchmarks/fork_safety.py`` (findings in ``docs/benchpods.md``):

* NumPy (OpenBLAS) is safe to fork after import and after use: OpenBLAS's own fork
  handler resets its thread pool, and the child's products are right; so is SciPy, which
  loads an OpenBLAS of its own (a second pool, started by ``import scipy.linalg`` or
  ``scipy.integrate``) with the same handler;
* PyTorch is safe to fork after ``import torch``, but not once an operation ran on its
  intra-op pool (GNU OpenMP; even a 50×50 product starts it): the child's first parallel
  operation hangs. Importing torch starts no thread, and with one thread set torch runs
  every operation on the calling thread, so a worker keeps torch at one thread
  (:func:`serial`: module code it loads may build layers) and each pod gets back the
  thread count a cold pod would have (:func:`threads_as_cold`), which is safe: no pool
  was ever started;
* JAX is safe to fork after ``import jax``, not once its runtime started (XLA's threads;
  JAX itself warns). The worker does not import it: the runtime sets XLA's thread count
  through ``XLA_FLAGS`` only when JAX is not loaded yet, so a JAX pod imports it itself;
* CUDA is never safe to fork once initialised (the child cannot use the GPU). Importing
  torch does not initialise it, and the worker never touches the GPU.

:class:`ForkGuard` checks before each fork that none of this happened in the worker since
it was ready (module code the worker loads for a pod may have done it): a native thread
that no OpenBLAS pool (built with pthreads) accounts for is taken as unsafe. A worker that
is no longer safe forks nothing more, and its pods run cold.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

#: backend -> the modules a warm worker for pods of that backend imports before it forks.
PRELOADS: Mapping[str, tuple[str, ...]] = {"torch": ("torch",)}


def preload_of(environment: Mapping[str, Any]) -> tuple[str, ...]:
    """The modules a worker imports for pods of this software ``environment`` (``()``: NumPy's worker)."""
    return PRELOADS.get(str(environment.get("backend", "")), ())


def preload(modules: Sequence[str]) -> None:
    """Import ``modules`` here; one that fails is reported on stderr and left to the pods, which say why."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            traceback.print_exc()


def serial() -> None:
    """Keep PyTorch and the BLAS pools, where loaded, at one thread here (a warm worker).

    PyTorch: no operation then starts the pool a fork would break. OpenBLAS shuts its pool
    down at a fork and starts it again in the child at its next call, with the thread count
    it had here: at one, the forked pod starts none until its hardware asks for them, as a
    cold pod pinned to its CPUs does. More would spin beside the pod's own thread on the
    CPUs it is pinned to, and slow its first 0.1 s of work about twice (measured: an ODE
    solve in a pod on one CPU).
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads") and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def threads_as_cold(affinity: Sequence[int] | None) -> None:
    """In a forked pod: PyTorch's threads as a cold pod's (pinned to ``affinity`` before it imported torch)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(len(affinity) if affinity else usable)


def native_threads() -> int:
    """OS threads of this process not started through :mod:`threading` (0 where ``/proc`` is missing).

    Python threads are the worker's own (the dry-run watchdog), restarted in the child after a
    fork; a native thread is a library's pool, which a fork can leave holding a lock.
    """
    try:
        total = len(os.listdir("/proc/self/task"))
    except OSError:
        return 0
    return max(0, total - len(threading.enumerate()))


def openblas_threads() -> int:
    """Worker threads of the OpenBLAS pools (pthreads builds) loaded in this process: NumPy's, SciPy's.

    Each pool of ``num_threads`` keeps ``num_threads - 1`` threads beside the caller's; OpenBLAS
    resets them at a fork, so they do not make forking unsafe (``benchmarks/fork_safety.py``).
    """
    from threadpoolctl import threadpool_info

    return sum(max(0, int(pool.get("num_threads") or 1) - 1) for pool in threadpool_info()
               if pool.get("internal_api") == "openblas" and pool.get("threading_layer") == "pthreads")


def resident_bytes() -> int:
    """This process's resident memory now (its peak where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class ForkGuard:
    """Remembers the worker's native threads once it is ready; says when forking is no longer safe."""

    def __init__(self) -> None:
        self.threads = native_threads()
        self.pools = openblas_threads()  # ~1 ms, once per worker

    def unsafe(self) -> str | None:
        """Why forking a pod now could hang or break it, or None when it is safe."""
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
            return "CUDA was initialised in the warm worker (module code used the GPU while it was loaded), " \
                   "and a forked process cannot use CUDA"
        bridge = sys.modules.get("jax._src.xla_bridge")
        if bridge is not None and getattr(bridge, "_backends", None):
            return "JAX started its runtime in the warm worker (module code computed while it was loaded), " \
                   "and JAX's threads do not survive a fork"
        now = native_threads()
        if now <= self.threads:
            return None
        pools = openblas_threads()
        # a pool set to fewer threads keeps them until the next fork: only a larger one explains threads
        unexplained = (now - self.threads) - max(0, pools - self.pools)
        if unexplained <= 0:
            # OpenBLAS pools (SciPy's, loaded by module code) account for every new thread: the new baseline
            self.threads, self.pools = now, pools
            return None
        return f"a library started {unexplained} thread(s) in the warm worker while module code was " \
               f"loaded (a thread pool, e.g. PyTorch's after an operation), and forking then can hang the pod"
