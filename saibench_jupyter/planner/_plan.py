"""A scenario as a plan: what it is made of, bound to modules, and its JSON form.

A plan names every module a scenario uses with the digest it was discovered with, holds
the bound parameters (``{"Module.param": value}``), the model tree (each model's role,
tasks, sub-model slots and the conversion chains discovery resolved for it), the
software environment and the hardware resources. :meth:`ScenarioPlan.to_dict` writes it
as JSON (a pod spec carries it); :meth:`ScenarioPlan.from_dict` binds it to a repository
holding the same sources, checking each module's digest, with no discovery: a pod runs
its plan, it does not search for it.

Nothing here runs a module, and nothing here imports the discovery machinery.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..sail import Environment, ParsedModule, Resources, SailType, TaskSignature
from ._converters import Chain, ConversionStep
from ._instances import ModelChoice, instance_digest, scenario_id
from ._params import Place, params_by_place

if TYPE_CHECKING:
    from ..repository import Repository
    from ._lattice import Scenario

#: Re-plan: what to do when a plan does not fit its sources.
REPLAN = "re-plan the run (discover again from the current sources and run what it finds)"


class PlanError(ValueError):
    """A plan that does not fit the sources it is bound to, or that cannot be written or read.

    ``module``, ``expected`` and ``actual`` name the module whose digest differs, where that is the fault.
    """

    def __init__(self, message: str, module: str | None = None, expected: str | None = None,
                 actual: str | None = None) -> None:
        super().__init__(message)
        self.module = module
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, eq=False)
class ScenarioPlan:
    """One scenario, bound to the modules of ``repository``: everything a run needs.

    Build one with :meth:`Scenario.plan <saibench_jupyter.planner.Scenario.plan>` or
    :meth:`from_dict`; run it with :func:`saibench_jupyter.runtime.run_scenario`.

    Attributes
    ----------
    id, label : str
        The scenario's id and label.
    repository : Repository
        Where the modules (and the support code a run executes) come from.
    problem, hardware, software : ParsedModule
        The scenario's modules.
    model : ModelChoice
        The model under test, with its sub-models, tasks and conversion chains.
    metrics, converters : tuple of ParsedModule
        The metrics measured, and the user converters the chains use.
    params : mapping
        The bound parameters, ``{"Module.param": value}``.
    environment : Environment
        The software environment (backend, requirements, capability implementations).
    resources : Resources
        The hardware resources.
    inputs : tuple of str
        The data sources the problem reads with these parameters (``Input(source)``, as its
        dry run saw them): what a warm worker may load once for all the pods it forks.
    """

    id: str
    label: str
    repository: Repository
    problem: ParsedModule
    hardware: ParsedModule
    software: ParsedModule
    model: ModelChoice
    metrics: tuple[ParsedModule, ...]
    converters: tuple[ParsedModule, ...]
    params: Mapping[str, Any]
    environment: Environment
    resources: Resources
    inputs: tuple[str, ...] = ()

    @property
    def places(self) -> list[Place]:
        """(role, module name) of every bound module, as :attr:`Scenario.places` lists them."""
        return [("problem", self.problem.name), ("hardware", self.hardware.name), ("software", self.software.name),
                *((role, m.name) for role, m in self.model.walk())]

    @property
    def problem_params(self) -> dict[str, Any]:
        """The problem's own parameters (``{"epochs": 4}``)."""
        return params_by_place(self.places, self.params)[0]

    @property
    def backend(self) -> str:
        """The environment's backend (``torch``, ``jax``, ``numpy``)."""
        return self.environment.backend

    @property
    def chains(self) -> tuple[Chain, ...]:
        """The conversions the model and its sub-models use."""
        return self.model.all_chains()

    @classmethod
    def of(cls, scenario: Scenario) -> ScenarioPlan:
        """The plan of a discovered scenario (metrics and converters as its repository holds them now).

        Raises
        ------
        RuntimeError
            When the scenario's repository no longer exists.
        KeyError
            When a metric or converter it uses is no longer in the repository.
        """
        repo = scenario.repository
        used = dict.fromkeys(n for chain in scenario.converters for n in chain.converters)
        return cls(scenario.id, scenario.label, repo, scenario.problem_instance.module,
                   scenario.hardware_instance.module, scenario.software_instance.module, scenario.model_choice,
                   tuple(repo.get(m.name) for m in scenario.metrics), tuple(repo.get(n) for n in used),
                   scenario.params, scenario.environment, scenario.resources,
                   scenario.problem_instance.meta.inputs)

    # -- JSON ---------------------------------------------------------------------------
    def to_dict(self, strict: bool = True) -> dict[str, Any]:
        """The plan as JSON-able data: names and digests instead of modules.

        Parameters
        ----------
        strict : bool
            Refuse a type holding a value JSON cannot (a declared type's odd attribute);
            False writes its ``repr`` instead, for a plan that is recorded, never run.

        Raises
        ------
        PlanError
            With ``strict``, for such a type.
        """
        types = functools.partial(_type_json, strict=strict)
        walk = self.model.walk()
        modules = [self.problem, self.hardware, self.software, *(m.module for _, m in walk), *self.metrics,
                   *self.converters]
        env = self.environment
        return {
            "id": self.id, "label": self.label,
            "problem": self.problem.name, "hardware": self.hardware.name, "software": self.software.name,
            "models": {role: {"name": m.name, "tasks": [_task_json(t, types) for t in m.tasks],
                              "chains": [_chain_json(c, types) for c in m.chains], "backends": sorted(m.backends)}
                       for role, m in walk},
            "metrics": [m.name for m in self.metrics], "converters": [m.name for m in self.converters],
            "modules": {m.name: m.digest for m in modules},
            "support": {origin: src.support_digest for origin, src in self.repository.sources().items()},
            "params": dict(self.params),
            "environment": {"backend": env.backend, "pip": list(env.pip), "conda": list(env.conda),
                            "python": env.python, "provides": dict(env.provides)},
            "resources": dataclasses.asdict(self.resources),
            "inputs": list(self.inputs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], repository: Repository, *,
                  any_origin: bool = False) -> ScenarioPlan:
        """Bind the plan ``data`` (from :meth:`to_dict`) to ``repository``'s modules, without discovery.

        Every module the plan names must be in ``repository`` with the digest the plan
        holds, and every source's support code must be the plan's.

        With ``any_origin``, sources are matched by content, not by origin: the support code
        the sources hold must be the plan's, whatever they are called, and a source without
        support code need not be there unless it holds a module the plan names (a module's
        digest covers its own source's support code). A pod notebook binds its plan so: its
        cells hold the plan's sources under cell ids of their own.

        Raises
        ------
        PlanError
            Naming the module (or source) whose code differs, the digest the plan was made
            with and the one the repository gives, and the fix; or what is malformed.
        """
        try:
            return _bind(data, repository, any_origin)
        except PlanError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanError(f"the plan is malformed ({type(exc).__name__}: {exc}); fix: write it again with "
                            "Scenario.plan().to_dict()") from None


def _bind(data: Mapping[str, Any], repo: Repository, any_origin: bool = False) -> ScenarioPlan:
    digests: Mapping[str, str] = data["modules"]
    sources = repo.sources()
    if any_origin:
        _same_support(data["support"], [s.support_digest for s in sources.values() if s.support.strip()])
    else:
        for origin, expected in data["support"].items():
            source = sources.get(origin)
            actual = source.support_digest if source is not None else "none (no such source)"
            if actual != expected:
                raise PlanError(f"the support code of {origin} differs from the plan's: the plan was made with "
                                f"support digest {expected}, the sources give {actual}; fix: {REPLAN}",
                                origin, expected, actual)

    def module(name: str) -> ParsedModule:
        expected = digests[name]
        actual = repo.get(name).digest if name in repo else None
        if actual != expected:
            held = f"digest {actual}" if actual is not None else "no such module"
            raise PlanError(f"module {name} differs from the plan's: the plan was made with digest {expected}, "
                            f"the sources give {held}; fix: {REPLAN}", name, expected, actual)
        return repo.get(name)

    declared = repo.declarations
    own = _sail_types()
    models: Mapping[str, Mapping[str, Any]] = data["models"]
    if "model" not in models:
        raise PlanError(f"the plan has no model; fix: {REPLAN}")
    places: list[Place] = [("problem", data["problem"]), ("hardware", data["hardware"]),
                           ("software", data["software"]), *((role, m["name"]) for role, m in models.items())]
    try:
        bound = params_by_place(places, data["params"])
    except ValueError as exc:
        raise PlanError(f"{exc}; fix: {REPLAN}") from None
    by_role = {role: params for (role, _), params in zip(places, bound)}

    def choice(role: str) -> ModelChoice:
        node = models[role]
        below = [r for r in models if r.startswith(role + "/") and "/" not in r[len(role) + 1:]]
        types = functools.partial(_type_from, own=own, declared=declared)
        tasks = tuple(TaskSignature(t["kind"], types(t["input"]), types(t["output"])) for t in node["tasks"])
        return ModelChoice(module(node["name"]), by_role[role], tasks,
                           {}, tuple((r[len(role) + 1:], choice(r)) for r in below),
                           tuple(_chain_from(c, types) for c in node["chains"]), frozenset(node["backends"]))

    problem, hardware, software = module(data["problem"]), module(data["hardware"]), module(data["software"])
    model = choice("model")
    found = scenario_id(instance_digest(problem.digest, bound[0]), instance_digest(hardware.digest, bound[1]),
                        instance_digest(software.digest, bound[2]), model.digest)
    if found != data["id"]:
        raise PlanError(f"the plan's modules and parameters make scenario {found}, not {data['id']} "
                        f"({data['label']}); fix: {REPLAN}")
    return ScenarioPlan(data["id"], data["label"], repo, problem, hardware, software, model,
                        tuple(module(n) for n in data["metrics"]), tuple(module(n) for n in data["converters"]),
                        dict(data["params"]), Environment(**data["environment"]), Resources(**data["resources"]),
                        tuple(str(source) for source in data.get("inputs", ())))


# -- types, tasks and chains as JSON ----------------------------------------------------------
def _type_json(t: SailType, strict: bool = True) -> dict[str, Any]:
    """A type as ``{"type": "Tensor", "fields": {...}}`` (SAIL's own) or ``{"declared": "Molecule", ...}``."""
    cls = type(t)
    fields = {name: _value_json(getattr(t, name), strict) for name in cls._fields}
    fields.update((k, _value_json(v, strict)) for k, v in getattr(t, "__dict__", {}).items())
    out: dict[str, Any] = {"type" if cls.__module__.startswith("saibench_jupyter.") else "declared": cls.__name__}
    if fields:
        out["fields"] = fields
    return out


def _value_json(value: Any, strict: bool) -> Any:
    if isinstance(value, SailType):
        return _type_json(value, strict)
    if isinstance(value, tuple | list):
        return [_value_json(v, strict) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if not strict:
        return repr(value)
    raise PlanError(f"a type holds {value!r:.60}, which a plan cannot write; fix: give declared types only "
                    "numbers, strings, tuples and types as attributes")


def _sail_types() -> dict[str, type[SailType]]:
    """SAIL's own type classes by name (found once per plan read: a few dozen classes)."""
    out: dict[str, type[SailType]] = {}
    todo = [SailType]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("saibench_jupyter."):
            out[cls.__name__] = cls
        todo += cls.__subclasses__()
    return out


def _type_from(data: Mapping[str, Any], own: Mapping[str, type[SailType]], declared: Mapping[str, type]) -> SailType:
    name = data.get("type")
    cls = own.get(name) if name is not None else declared.get(data.get("declared", ""))
    if not (isinstance(cls, type) and issubclass(cls, SailType)):
        raise PlanError(f"the plan uses the type {name or data.get('declared')!r}, which neither SAIL nor the "
                        f"sources declare; fix: {REPLAN}")
    t = cls.__new__(cls)
    for key, value in data.get("fields", {}).items():
        object.__setattr__(t, key, _value_from(value, own, declared))  # types are immutable: as their __init__ does
    return t


def _value_from(value: Any, own: Mapping[str, type[SailType]], declared: Mapping[str, type]) -> Any:
    if isinstance(value, dict):
        return _type_from(value, own, declared)
    if isinstance(value, list):
        return tuple(_value_from(v, own, declared) for v in value)  # JSON has no tuples; types hold none but tuples
    return value


TypeWriter = Callable[[SailType], dict[str, Any]]


def _same_support(planned: Mapping[str, str], found: list[str]) -> None:
    """The support code of the sources, whatever they are called, is the plan's (sources without any aside)."""
    from collections import Counter

    empty = _empty_support()
    expected = Counter(d for d in planned.values() if d != empty)
    actual = Counter(found)
    if expected != actual:
        missing = sorted(o for o, d in planned.items() if d != empty and actual[d] < expected[d])
        extra = sorted((actual - expected).elements())
        what = (f"the support code of {', '.join(missing)} is not in the sources" if missing
                else f"the sources hold support code the plan was not made with (digest {', '.join(extra)})")
        raise PlanError(f"{what}; fix: {REPLAN}", missing[0] if missing else None, None, None)


@functools.cache
def _empty_support() -> str:
    """The support digest of a source without support code."""
    from ..sail import parse

    return parse("", "<no support>").support_digest


def _task_json(task: TaskSignature, types: TypeWriter) -> dict[str, Any]:
    return {"kind": task.kind, "input": types(task.input), "output": types(task.output)}


def _chain_json(chain: Chain, types: TypeWriter) -> dict[str, Any]:
    return {"source": types(chain.source), "target": types(chain.target), "output": types(chain.output),
            "steps": [_step_json(s, types) for s in chain.steps]}


def _step_json(step: ConversionStep, types: TypeWriter) -> dict[str, Any]:
    return {"converter": step.converter, "source": types(step.source), "target": types(step.target),
            "builtin": step.builtin, "bindings": [[n, types(t)] for n, t in step.bindings],
            "inner": [_chain_json(c, types) for c in step.inner]}


def _chain_from(data: Mapping[str, Any], types: Callable[[Any], SailType]) -> Chain:
    steps = tuple(ConversionStep(s["converter"], types(s["source"]), types(s["target"]), bool(s["builtin"]),
                                 tuple((str(n), types(t)) for n, t in s["bindings"]),
                                 tuple(_chain_from(c, types) for c in s["inner"])) for s in data["steps"])
    return Chain(types(data["source"]), types(data["target"]), types(data["output"]), steps)
