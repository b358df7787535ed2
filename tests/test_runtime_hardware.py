"""``Resources(cpus=N)`` limits PyTorch and BLAS threads for a run, and gives them back afterwards."""

from __future__ import annotations

import pytest

from saibench_jupyter.runtime._hardware import hardware
from saibench_jupyter.sail import Resources


def test_torch_and_blas_threads_follow_the_hardware_module() -> None:
    torch = pytest.importorskip("torch")
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with hardware(Resources(cpus=1), "torch") as hw:
            assert torch.get_num_threads() == 1
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
            assert hw.device == "cpu"
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_cuda_resources_pick_the_gpu_device() -> None:
    assert hardware(Resources(cpus=1, device="cuda"), "torch").device == "cuda"


def test_a_blas_loaded_after_an_earlier_run_is_limited_too() -> None:
    # The libraries are looked up again only after an extension module came: here SciPy's own OpenBLAS.
    import os
    import subprocess
    import sys

    pytest.importorskip("scipy")
    code = """
import json, numpy
from threadpoolctl import threadpool_info
from saibench_jupyter.runtime._hardware import hardware
from saibench_jupyter.sail import Resources
with hardware(Resources(cpus=1), "numpy"):
    pass
import scipy.linalg
pools = lambda: [(p["filepath"], p["num_threads"]) for p in threadpool_info()]
before = pools()
with hardware(Resources(cpus=1), "numpy"):
    inside = pools()
print(json.dumps([before, inside, pools()]))
"""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    before, inside, after = json.loads(done.stdout)
    assert len({path for path, _ in inside}) >= 2  # NumPy's and SciPy's
    assert {n for _, n in inside} == {1}
    assert after == before  # given back
