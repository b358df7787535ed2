"""What a machine offers, and why hardware modules that ask for more are refused."""

from __future__ import annotations

import pytest

from saibench_jupyter import Machine
from saibench_jupyter.planner import _machine
from saibench_jupyter.sail import Resources


def test_a_machine_refuses_what_it_lacks_and_says_what_it_has():
    m = Machine(cpus=2, gpus=0, memory=24 * 2**30)
    assert m.lacks(Resources(cpus=2)) is None
    assert m.lacks(Resources(cpus=4)) == "asks for 4 CPUs, but this machine has 2"
    assert m.lacks(Resources(device="cuda")) == "asks for 1 CUDA device(s), but none is visible on this machine"
    assert Machine(cpus=2, gpus=1).lacks(Resources(device="cuda", gpus=2)) == (
        "asks for 2 CUDA device(s), but only 1 are visible on this machine")
    assert m.lacks(Resources(memory="32GiB")) == "asks for 32.0 GiB of memory, but this machine has 24.0 GiB"
    assert m.lacks(Resources(memory="8GB")) is None


def test_resources_refuse_unknown_devices():
    with pytest.raises(ValueError, match="Resources\\(device='gpu'\\): use 'cpu' or 'cuda'"):
        Resources(device="gpu")


@pytest.mark.parametrize(("visible", "driver_gpus", "expected"), [
    (None, 0, 0), (None, 2, 2), ("", 2, 0), ("-1", 2, 0), ("0", 2, 1), ("0,1", 4, 2),
])
def test_cuda_devices_are_found_without_importing_torch(monkeypatch, tmp_path, visible, driver_gpus, expected):
    gpus = tmp_path / "gpus"
    gpus.mkdir()
    for i in range(driver_gpus):
        (gpus / f"0000:0{i}:00.0").mkdir()
    monkeypatch.setattr(_machine, "_DRIVER_GPUS", gpus)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert _machine._visible_gpus() == expected


def test_the_local_machine_is_described():
    m = Machine.local()
    assert m.cpus >= 1 and m.gpus >= 0 and (m.memory is None or m.memory > 0)
