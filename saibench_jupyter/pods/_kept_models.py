"""The trained models an in-process run kept (``run(..., executor="inline", keep_models=True)``).

A pod's weights never reach the results store: a model is a live object of the process
that trained it, so only the inline executor (pods in this process) can hand one back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from ._spec import PodSpec


class KeptModels(Mapping[str, Any]):
    """The trained models of a run, by scenario label; each a :class:`~saibench_jupyter.runtime.TrainedModel`.

    A model is looked up by its scenario's label, its id (``Scenario.id``), its identity
    (the store's, as ``Results.scenarios()`` lists it) or a pod key (``IDENTITY-rN``); the
    first three give the scenario's first repeat kept, a pod key one repeat. Only pods
    that finished ``ok`` keep a model.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[str, tuple[PodSpec, Any]] = {}

    def add(self, spec: PodSpec, model: Any) -> None:
        """Keep ``model``, the one ``spec``'s pod trained (from the executor's thread)."""
        with self._lock:
            self._pods[spec.pod] = (spec, model)

    def _entries(self) -> list[tuple[PodSpec, Any]]:
        with self._lock:
            return sorted(self._pods.values(), key=lambda e: e[0].repeat)

    def __getitem__(self, key: str) -> Any:
        for spec, model in self._entries():
            if key in (spec.pod, spec.label, spec.scenario, spec.identity):
                return model
        known = ", ".join(dict.fromkeys(spec.label for spec, _ in self._entries())) or "none: no pod finished ok"
        raise KeyError(f"no kept model for {key!r}; the kept ones (by scenario label): {known}")

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(spec.label for spec, _ in self._entries()))

    def __len__(self) -> int:
        return len(dict.fromkeys(spec.label for spec, _ in self._entries()))

    def __repr__(self) -> str:
        return f"KeptModels({list(self)})"
