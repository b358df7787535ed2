"""Execution: run a discovered scenario for real and collect its work–precision points."""

from ._data import preload_datasets as preload_datasets
from ._execution_namespace import ExecutionNamespace as ExecutionNamespace
from ._hardware import prime_thread_pools as prime_thread_pools
from ._result import Point as Point
from ._result import RunError as RunError
from ._result import ScenarioResult as ScenarioResult
from ._scenario_run import resolve_settings as resolve_settings
from ._scenario_run import run_scenario as run_scenario
from ._trained import TrainedModel as TrainedModel

__all__ = ["ExecutionNamespace", "Point", "RunError", "ScenarioResult", "TrainedModel", "preload_datasets",
           "prime_thread_pools", "resolve_settings", "run_scenario"]
