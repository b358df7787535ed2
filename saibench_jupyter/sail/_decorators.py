"""The seven module decorators, usable bare (``@ModelDefinition``) or with options.

At run time a decorator only marks the function (``fn.__sail_kind__``); discovery
never imports module files but finds the same decorators with the parser, which
validates options with :func:`validate_options` so both paths agree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class ModuleKind(str, enum.Enum):
    """What a module is; the planner joins kinds in this order."""

    PROBLEM = "problem"
    HARDWARE = "hardware"
    SOFTWARE = "software"
    MODEL = "model"
    CONVERTER = "converter"
    METRIC = "metric"
    RANKING = "ranking"

    def __str__(self) -> str:
        return self.value


#: decorator name -> kind
DECORATORS: dict[str, ModuleKind] = {
    "ProblemDefinition": ModuleKind.PROBLEM,
    "ModelDefinition": ModuleKind.MODEL,
    "MetricDefinition": ModuleKind.METRIC,
    "ConverterDefinition": ModuleKind.CONVERTER,
    "SoftwareDefinition": ModuleKind.SOFTWARE,
    "HardwareDefinition": ModuleKind.HARDWARE,
    "RankingDefinition": ModuleKind.RANKING,
}
DECORATOR_OF = {kind: name for name, kind in DECORATORS.items()}

_CHOICES: dict[ModuleKind, dict[str, tuple[str, ...] | type | tuple[type, ...]]] = {
    ModuleKind.METRIC: {"axis": ("work", "precision"), "better": ("lower", "higher"), "unit": str},
    ModuleKind.RANKING: {"better": ("lower", "higher")},
}
_COMMON: dict[str, tuple[type, ...] | type] = {"description": str, "tags": (tuple, list)}


def validate_options(kind: ModuleKind, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check decorator options for ``kind``; return them normalised.

    Raises
    ------
    ValueError
        With a message naming the bad option and the allowed ones.
    """
    allowed = {**_COMMON, **_CHOICES.get(kind, {})}
    out: dict[str, Any] = {}
    deco = DECORATOR_OF[kind]
    for key, value in options.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            raise ValueError(f"@{deco} has no option {key!r} (options: {names})")
        rule = allowed[key]
        if isinstance(rule, tuple) and all(isinstance(r, str) for r in rule):
            if value not in rule:
                raise ValueError(f"@{deco}({key}={value!r}): {key} must be one of {', '.join(map(repr, rule))}")
        elif not isinstance(value, rule):  # type: ignore[arg-type]
            raise ValueError(f"@{deco}({key}={value!r}): {key} must be a {_type_name(rule)}")
        out[key] = tuple(value) if key == "tags" else value
    return out


def _type_name(rule: Any) -> str:
    rules = rule if isinstance(rule, tuple) else (rule,)
    return " or ".join(r.__name__ for r in rules)


def _decorator(name: str) -> Callable[..., Any]:
    kind = DECORATORS[name]

    def decorator(fn: Any = None, /, **options: Any) -> Any:
        opts = validate_options(kind, options)

        def mark(f: F) -> F:
            if not callable(f):
                raise TypeError(f"@{name} decorates a function, not {f!r}")
            f.__sail_kind__ = kind  # type: ignore[attr-defined]
            f.__sail_options__ = opts  # type: ignore[attr-defined]
            return f

        if fn is None:
            return mark
        if options:
            raise TypeError(f"use @{name}(option=...) or bare @{name}, not both")
        return mark(fn)

    decorator.__name__ = decorator.__qualname__ = name
    decorator.__doc__ = f"Mark a function as a SAIL {kind.value} module (bare or with options)."
    return decorator


ProblemDefinition = _decorator("ProblemDefinition")
ModelDefinition = _decorator("ModelDefinition")
MetricDefinition = _decorator("MetricDefinition")
ConverterDefinition = _decorator("ConverterDefinition")
SoftwareDefinition = _decorator("SoftwareDefinition")
HardwareDefinition = _decorator("HardwareDefinition")
RankingDefinition = _decorator("RankingDefinition")
