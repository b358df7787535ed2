"""What a dry run learns about a module: typed metadata records, one class per kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import Location, SailError
from ._graph import Node, SubModel
from ._primitives import Environment, Resources
from ._types import SailType


@dataclass(frozen=True)
class TaskRecord:
    """One ``Train.Kind(...)``, ``Test.Kind(...)`` or ``Model.Kind(...)`` call of a problem."""

    phase: str
    kind: str
    types: tuple[SailType, ...]
    line: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"{self.phase}.{self.kind}({', '.join(map(repr, self.types))})"


@dataclass(frozen=True)
class TaskSignature:
    """A task a model must solve: ``kind`` mapping ``input`` to ``output``."""

    kind: str
    input: SailType
    output: SailType

    def __hash__(self) -> int:
        # Memo keys hash task signatures constantly; they are immutable, so hash once.
        try:
            return self.__dict__["_hash"]  # type: ignore[no-any-return]
        except KeyError:
            h = self.__dict__["_hash"] = hash((self.kind, self.input, self.output))
            return h

    def __str__(self) -> str:
        return f"{self.kind}: {self.input!r} -> {self.output!r}"


@dataclass(frozen=True)
class ProblemMeta:
    """A problem's tasks, test collections, required capabilities and data sources."""

    records: tuple[TaskRecord, ...]
    model_tasks: tuple[TaskSignature, ...]
    test_records: Mapping[str, tuple[SailType, ...]]
    capabilities: tuple[str, ...]
    inputs: tuple[str, ...]
    uses_gradients: bool

    @property
    def key(self) -> tuple[Any, ...]:
        """What later modules depend on (the dry-run context they see)."""
        return (self.model_tasks, tuple(sorted(self.test_records.items())), self.uses_gradients)


@dataclass(frozen=True)
class ModelMeta:
    """A model's graph for one task, with its sub-model slots."""

    graph: Node
    requires: tuple[SubModel, ...]


@dataclass(frozen=True)
class MetricMeta:
    """What a metric reads, and how its values are read."""

    reads: frozenset[str]
    counters: frozenset[str]
    axis: str
    better: str
    unit: str | None
    output: SailType


@dataclass(frozen=True)
class SoftwareMeta:
    """A software module's environment for one hardware choice."""

    environment: Environment


@dataclass(frozen=True)
class HardwareMeta:
    """A hardware module's resources for one parameter choice."""

    resources: Resources


@dataclass(frozen=True)
class ConverterMeta:
    """Conversions a converter's body asks for (a generic converter composing element ones)."""

    needs: tuple[tuple[SailType, SailType], ...]


Meta = ProblemMeta | ModelMeta | MetricMeta | SoftwareMeta | HardwareMeta | ConverterMeta


@dataclass(frozen=True, eq=False)
class Trace:
    """The outcome of one dry run of one module in one context.

    Exactly one of ``meta``, ``failure`` (the module called ``Fail``) and ``error``
    (something went wrong, with its location) is set.
    """

    module: str
    bindings: Mapping[str, Any]
    suggestions: Mapping[str, tuple[Any, ...]]
    unbound: tuple[str, ...]
    meta: Meta | None = None
    failure: str | None = None
    failure_site: Location | None = None
    error: SailError | None = None
    #: whether the run looked at the value of any unbound parameter
    params_observed: bool = True
    #: the files whose contents gave a type (an undeclared .npy input), with their stamps
    #: (mtime in ns, size), None for a file that was not there: the trace is stale once one differs
    files: tuple[tuple[str, tuple[int, int] | None], ...] = ()

    @property
    def ok(self) -> bool:
        """True when the module accepted the context."""
        return self.meta is not None

    @property
    def reason(self) -> str:
        """Why the module was rejected (empty when accepted)."""
        if self.failure is not None:
            return self.failure
        return self.error.what if self.error is not None else ""
