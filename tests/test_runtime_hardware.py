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
