"""What a warm worker may hold when it forks: each case in a fresh Python process, as a worker is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")


def guarded(code: str) -> dict:
    """Run ``code`` after ``guard = ForkGuard()`` in a new process; it fills ``seen``, printed back as JSON."""
    program = ("import json, numpy\nfrom saibench_jupyter.pods._forksafe import ForkGuard, serial\n"
               f"guard = ForkGuard()\nseen = {{}}\n{code}\nprint(json.dumps(seen))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(len(getattr(os, "sched_getaffinity", lambda _: ())(0)) < 2, reason="a one-CPU process starts no intra-op thread")
def test_torch_is_safe_to_fork_when_imported_and_kept_serial_not_once_its_pool_started():
    pytest.importorskip("torch")
    seen = guarded("import torch\nseen['imported'] = guard.unsafe()\n"
                   "serial()\nx = torch.ones(800, 800)\nx @ x\nseen['serial'] = guard.unsafe()\n"
                   "torch.set_num_threads(2)\nx @ x\nseen['pool'] = guard.unsafe()")
    assert seen["imported"] is None and seen["serial"] is None
    assert seen["pool"].startswith("a library started 1 thread(s) in the warm worker while module code was loaded")


def test_jax_is_safe_to_fork_when_imported_not_once_its_runtime_started():
    pytest.importorskip("jax")
    seen = guarded("import jax.numpy as jnp\nseen['imported'] = guard.unsafe()\n"
                   "(jnp.ones(3) + 1).block_until_ready()\nseen['started'] = guard.unsafe()")
    assert seen["imported"] is None
    assert seen["started"] == ("JAX started its runtime in the warm worker (module code computed while it was "
                               "loaded), and JAX's threads do not survive a fork")


def test_scipys_openblas_pool_is_safe_to_fork_and_any_other_native_thread_is_not():
    pytest.importorskip("scipy")
    # SciPy loads an OpenBLAS of its own (a second pool); faulthandler's watchdog is a native thread of another kind.
    seen = guarded("import scipy.integrate, scipy.linalg\nscipy.linalg.solve(numpy.eye(300), numpy.ones(300))\n"
                   "seen['scipy'] = guard.unsafe()\n"
                   "import faulthandler\nfaulthandler.dump_traceback_later(60)\nseen['watchdog'] = guard.unsafe()\n"
                   "faulthandler.cancel_dump_traceback_later()")
    assert seen["scipy"] is None
    assert seen["watchdog"].startswith("a library started 1 thread(s) in the warm worker while module code was loaded")
