"""The globals SAIL modules run with at execution: SAIL's names plus support code, run for real."""

from __future__ import annotations

import textwrap

from saibench_jupyter.repository import Repository
from saibench_jupyter.runtime import ExecutionNamespace

SOURCE = textwrap.dedent(
    """
    import saibench_jupyter.sail as sail

    SCALE = 3

    @sail.HardwareDefinition
    def Dotted():
        return Resources(cpus=1)

    @HardwareDefinition(
    )
    def Bare():
        return Resources(cpus=1)
    """
)


def test_support_code_runs_without_the_modules_however_their_decorator_is_written() -> None:
    repo = Repository()
    repo.add_source(SOURCE, "hardware.py")
    assert {r.name for r in repo.modules()} == {"Dotted", "Bare"}
    names = ExecutionNamespace.of(repo).globals
    assert names["SCALE"] == 3
    assert "Dotted" not in names and "Bare" not in names
