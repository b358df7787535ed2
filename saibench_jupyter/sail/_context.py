"""The active context that SAIL primitives dispatch to.

A SAIL primitive (``Input``, ``Train.Classify``, ``Require``, ``Convert`` ...) does
nothing by itself: it asks the *current context* to act. During discovery the context
is a dry run (:mod:`._dryrun`), which records typed metadata; inside a BenchPod it is
the execution runtime, which does the work for real. Outside both, every primitive
raises a :class:`NoContextError` that says so.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from ._errors import NoContextError

if TYPE_CHECKING:
    from ._graph import ConvertNode


class Context:
    """What a SAIL primitive can ask of the runtime. The base class refuses everything."""

    name = "no context"

    def _refuse(self, what: str) -> NoContextError:
        return NoContextError(
            f"{what} can only be used inside a SAIL module that is being discovered or run",
            fix="put it in a function decorated with @ProblemDefinition, @ModelDefinition, "
            "@MetricDefinition ... and let the repository and planner call it",
        )

    def input(self, source: Any, type: Any) -> Any:
        """``Input(source, type)``."""
        raise self._refuse("Input(...)")

    def task(self, concept: str, kind: str, args: tuple[Any, ...]) -> Any:
        """``Train.Kind(...)``, ``Test.Kind(...)`` or ``Model.Kind(...)``."""
        raise self._refuse(f"{concept}.{kind}(...)")

    def collection(self, concept: str, kind: str) -> Any:
        """The records of ``Test.Kind`` as a metric reads them (iterable, with ``len``)."""
        raise self._refuse(f"reading {concept}.{kind}")

    def require(self, what: Any, args: tuple[Any, ...]) -> Any:
        """``Require(capability)`` or ``Require(Model, task, inputType, outputType)``."""
        raise self._refuse("Require(...)")

    def suggest(self, param: Any, values: tuple[Any, ...]) -> None:
        """``Suggest(param, *values)``."""
        raise self._refuse("Suggest(...)")

    def convert_value(self, node: ConvertNode, value: Any) -> Any:
        """Apply a conversion to a value."""
        raise self._refuse("Convert(...) on a value")

    def gradients(self, wrt: Any, output: Any) -> Any:
        """``Gradients(wrt, output)``."""
        raise self._refuse("Gradients(...)")

    def counter(self, name: str) -> Any:
        """A work counter such as ``ElapsedMilliseconds()``."""
        raise self._refuse(f"{name}()")

    def provides(self, capability: Any, implementation: Any) -> None:
        """``Provides(capability, implementation)`` in a software module."""
        raise self._refuse("Provides(...)")


_NONE = Context()
_current: contextvars.ContextVar[Context] = contextvars.ContextVar("sail_context", default=_NONE)


def current() -> Context:
    """The context SAIL primitives dispatch to right now."""
    return _current.get()


class using:  # noqa: N801 - used like a function: ``with using(ctx):``
    """Make ``ctx`` the current context for the duration of the ``with`` block."""

    __slots__ = ("ctx", "token")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def __enter__(self) -> Context:
        self.token = _current.set(self.ctx)
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        _current.reset(self.token)
