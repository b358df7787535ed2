"""The well-known global objects ``Train``, ``Test`` and ``Model``, and the task constants.

Any attribute of a concept is a task kind: ``Train.Classify(x, y)`` declares a
training record, ``Test.Compare(golden, predicted)`` a procedural test and
``Model.Predict(x)`` a call of the model under test. Metrics iterate ``Test.Kind`` to
read the test records. All of it is dispatched to the current context.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._context import current


class TaskKind(str):
    """A task name such as ``Classify``; compares equal to its plain string."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


Classify = TaskKind("Classify")
Predict = TaskKind("Predict")
Segment = TaskKind("Segment")
Enhance = TaskKind("Enhance")
Pretrain = TaskKind("Pretrain")
Embedding = TaskKind("Embedding")
Solve = TaskKind("Solve")

#: Test kinds that compare two values instead of calling the model.
COMPARISON_KINDS = frozenset({"Compare"})


class TaskHandle:
    """``Concept.Kind``: call it to declare a record; iterate it (in a metric) to read them."""

    __slots__ = ("concept", "kind")

    def __init__(self, concept: str, kind: str) -> None:
        self.concept = concept
        self.kind = TaskKind(kind)

    def __call__(self, *args: Any) -> Any:
        return current().task(self.concept, self.kind, args)

    def __iter__(self) -> Iterator[Any]:
        return iter(current().collection(self.concept, self.kind))

    def __len__(self) -> int:
        return len(current().collection(self.concept, self.kind))

    def __repr__(self) -> str:
        return f"{self.concept}.{self.kind}"


class Concept:
    """A benchmarking concept whose attributes are task kinds (``Train.Classify``)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, kind: str) -> TaskHandle:
        if kind.startswith("_"):
            raise AttributeError(kind)
        return TaskHandle(self._name, kind)

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_concept, (self._name,))


def _concept(name: str) -> Concept:
    return {"Train": Train, "Test": Test, "Model": Model}[name]


Train = Concept("Train")
Test = Concept("Test")
Model = Concept("Model")
