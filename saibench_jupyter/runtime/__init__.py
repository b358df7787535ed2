"""Execution: run a discovered scenario for real and collect its work–precision points."""

from ._result import Point as Point
from ._result import RunError as RunError
from ._result import ScenarioResult as ScenarioResult
from ._run import resolve_settings as resolve_settings
from ._run import run_scenario as run_scenario

__all__ = ["Point", "RunError", "ScenarioResult", "resolve_settings", "run_scenario"]
