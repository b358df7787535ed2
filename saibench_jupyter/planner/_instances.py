"""Modules bound to parameter values, as the planner joins them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sail import (
    CheckedGraph,
    HardwareMeta,
    Location,
    MetricMeta,
    ParsedModule,
    ProblemMeta,
    SoftwareMeta,
    TaskSignature,
)
from ._converters import Chain


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def digest_of(*parts: str) -> str:
    """A short stable digest of ``parts``."""
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=8).hexdigest()


def instance_digest(module_digest: str, params: Mapping[str, Any]) -> str:
    """The digest of a module bound to ``params`` (a problem, hardware or software instance)."""
    return digest_of(module_digest, _canonical(dict(params)))


def scenario_id(problem: str, hardware: str, software: str, model: str) -> str:
    """A scenario's stable id: the digests of its problem, hardware and software instances and its model choice."""
    return digest_of(problem, hardware, software, model)


def label_of(name: str, params: Mapping[str, Any]) -> str:
    """``MLP(hiddenSize=128)``, or the bare name without parameters."""
    if not params:
        return name
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


@dataclass(frozen=True, eq=False)
class Instance:
    """A module with parameter values that accepted its context during discovery."""

    module: ParsedModule
    params: Mapping[str, Any]
    meta: Any
    digest: str = field(init=False)
    label: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", instance_digest(self.module.digest, self.params))
        object.__setattr__(self, "label", label_of(self.module.name, self.params))

    @property
    def name(self) -> str:
        """The module's name."""
        return self.module.name

    def __repr__(self) -> str:
        return self.label


@dataclass(frozen=True, eq=False)
class ProblemInstance(Instance):
    """A problem with its parameters and its tasks."""

    meta: ProblemMeta


@dataclass(frozen=True, eq=False)
class HardwareInstance(Instance):
    """A hardware module with its parameters and resources."""

    meta: HardwareMeta


@dataclass(frozen=True, eq=False)
class SoftwareInstance(Instance):
    """A software module's environment for one hardware instance."""

    meta: SoftwareMeta

    @property
    def backend(self) -> str:
        """The environment's backend (``torch``, ``jax``, ``numpy``)."""
        return self.meta.environment.backend


class HardwareView:
    """What a software module sees of the hardware: ``hardware.device``, ``.cpus``, its params."""

    def __init__(self, instance: HardwareInstance) -> None:
        self._instance = instance

    def __getattr__(self, name: str) -> Any:
        inst = self._instance
        if name == "name":
            return inst.name
        if name == "params":
            return dict(inst.params)
        if name in inst.params:
            return inst.params[name]
        return getattr(inst.meta.resources, name)

    def __repr__(self) -> str:
        return f"<hardware {self._instance.label}: {self._instance.meta.resources}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for the probe process (the default would ask __getattr__ for __setstate__).
        return HardwareView, (self._instance,)


@dataclass(frozen=True)
class MetricInfo:
    """A metric attached to a scenario."""

    name: str
    axis: str
    better: str
    unit: str | None
    reads: frozenset[str]
    counters: frozenset[str]

    @classmethod
    def of(cls, module: ParsedModule, meta: MetricMeta) -> MetricInfo:
        return cls(module.name, meta.axis, meta.better, meta.unit, meta.reads, meta.counters)

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class RankingInfo:
    """A ranking attached to a scenario: a score (total order) or a comparison (partial order)."""

    name: str
    comparison: bool
    metrics: frozenset[str]
    better: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class ModelChoice:
    """A model with hyper-parameters and chosen sub-models, checked against a problem's tasks.

    ``graphs`` maps each task kind to the graph discovery checked (empty in a choice read
    back from a plan: execution builds and checks its graphs itself); ``submodels`` maps
    each ``Require(Model, ...)`` slot (its call site) to the model chosen for it.
    """

    module: ParsedModule
    params: Mapping[str, Any]
    tasks: tuple[TaskSignature, ...]
    graphs: Mapping[str, CheckedGraph]
    submodels: tuple[tuple[str, ModelChoice], ...]
    chains: tuple[Chain, ...]
    backends: frozenset[str]
    digest: str = field(init=False)
    label: str = field(init=False)

    def __post_init__(self) -> None:
        subs = [f"{slot}={c.digest}" for slot, c in self.submodels]
        object.__setattr__(self, "digest", digest_of(self.module.digest, _canonical(dict(self.params)), *subs))
        inner = ", ".join(c.label for _, c in self.submodels)
        base = label_of(self.module.name, self.params)
        object.__setattr__(self, "label", f"{base}[{inner}]" if inner else base)

    @property
    def name(self) -> str:
        """The model's name."""
        return self.module.name

    def walk(self, role: str = "model") -> list[tuple[str, ModelChoice]]:
        """This choice and its sub-models, each with its role path (``model``, ``model/5:8``)."""
        out = [(role, self)]
        for slot, sub in self.submodels:
            out += sub.walk(f"{role}/{slot}")
        return out

    def all_chains(self) -> tuple[Chain, ...]:
        """Conversions used here and in every sub-model."""
        return tuple(c for _, m in self.walk() for c in m.chains)

    def __repr__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Rejection:
    """A module that did not fit a partial tuple, and why.

    Parameters
    ----------
    kind : str
        The kind of the rejected module (``model``, ``software`` ...).
    module : str
        The rejected module (with parameters where they matter).
    reason : str
        Why, in the module's words (``Fail``) or the planner's.
    context : tuple of (str, str)
        The partial tuple it was tried in, as (kind, label) pairs.
    location : Location, optional
        Where in the source the rejection comes from.
    details : tuple of str
        Deeper reasons (why each candidate sub-model did not fit).
    fix : str, optional
        What to change, where the planner knows (errors; a ``Fail`` is the module's own word).
    expected : bool
        An expected non-pairing rather than a defect: the module was made for other
        contexts (it said so with ``Fail``, runs on another backend, reads another kind of
        ``Test``, provides a capability the problem does not need ...). Nothing needs fixing.
    """

    kind: str
    module: str
    reason: str
    context: tuple[tuple[str, str], ...] = ()
    location: Location | None = None
    details: tuple[str, ...] = ()
    fix: str | None = None
    expected: bool = False

    @property
    def name(self) -> str:
        """The rejected module's name (without parameters)."""
        return self.module.split("(", 1)[0].split("[", 1)[0]

    @property
    def problem(self) -> str | None:
        """The label of the problem it was rejected for; None when it holds for every problem."""
        if self.kind == "problem":
            return self.module
        return next((label for kind, label in self.context if kind == "problem"), None)

    def __str__(self) -> str:
        ctx = ", ".join(f"{k} {v}" for k, v in self.context)
        if self.kind != "problem" and self.problem is None:
            # Hardware, a software refused by a hardware, a module that can't run at all.
            ctx = "every problem" + (", " + ctx if ctx else "")
        where = f" ({self.location})" if self.location else ""
        text = f"{self.kind} {self.module}{' for ' + ctx if ctx else ''}: {self.reason}{where}"
        text += "".join(f"\n    - {d}" for d in self.details)
        return text + (f"\n    fix: {self.fix}" if self.fix else "")


def software_for(p: ProblemInstance, pairs: Sequence[tuple[HardwareInstance, SoftwareInstance]]
                 ) -> tuple[list[tuple[HardwareInstance, SoftwareInstance]], list[Rejection]]:
    """The (hardware, software) pairs that serve problem ``p``, and why the others don't.

    Software must provide every capability the problem requires. Software that provides more
    is passed over where another of the same backend on the same hardware provides fewer:
    ASE's stack serves the problems that need molecular dynamics, and on the others it would
    only repeat each scenario of the plain stack.
    """
    fitting: list[tuple[HardwareInstance, SoftwareInstance]] = []
    rejected: list[Rejection] = []
    for h, sw in pairs:
        missing = [c for c in p.meta.capabilities if c not in sw.meta.environment.provides]
        if missing:
            rejected.append(Rejection(
                "software", sw.label, f"does not provide {', '.join(missing)}, which the problem requires",
                (("problem", p.label), ("hardware", h.label)), sw.module.location, expected=True))
        else:
            fitting.append((h, sw))
    served = []
    for h, sw in fitting:
        mine = set(sw.meta.environment.provides)
        leaner = next((o for g, o in fitting if g is h and o.backend == sw.backend
                       and set(o.meta.environment.provides) < mine), None)
        if leaner is None:
            served.append((h, sw))
            continue
        extra = sorted(mine - set(leaner.meta.environment.provides))
        rejected.append(Rejection(
            "software", sw.label, f"provides {', '.join(extra)}, which the problem does not require; "
            f"{leaner.label} gives the same {sw.backend} backend without it",
            (("problem", p.label), ("hardware", h.label)), sw.module.location, expected=True))
    return served, rejected
