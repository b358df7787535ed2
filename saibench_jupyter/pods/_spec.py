"""The BenchPod spec: everything one isolated run needs, as a versioned JSON document.

A spec carries the sources (content-addressed) and the resolved scenario, its plan: the
chosen modules with their digests, the bound parameters (``{"Module.param": value}``),
the model tree with its sub-model slots, tasks and conversion chains. The pod binds the
plan to the sources and runs it: it never discovers. The spec also holds the
environment, resources, seed and limits. Its ``identity`` hashes whatever can change the
result, so the results store can tell what is already done (see ``docs/benchpods.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..planner import PlanError, digest_of
from ._logs import LOG_BYTES, LOG_LINES

if TYPE_CHECKING:
    from ..planner import Chain, Scenario

#: The spec format this version writes and reads (2: the pod gets the plan, not names to discover again).
SPEC_VERSION = 2


class SpecError(ValueError):
    """A pod spec that cannot be used: names the field, what is wrong and the fix."""


@dataclass(frozen=True)
class Limits:
    """What a pod may use.

    Parameters
    ----------
    timeout : float, optional
        Wall-clock seconds before the pod (and its children) is killed.
    memory : int, optional
        Bytes of data memory (``RLIMIT_DATA``); past it allocations fail with ``MemoryError``.
    affinity : tuple of int, optional
        The CPU ids the pod is pinned to (the executor assigns them).
    gpus : tuple of int, optional
        The CUDA device ids the pod may see (``CUDA_VISIBLE_DEVICES``).
    log_lines : int
        Most lines of module output the pod's log keeps (the first ones and the last
        ones, with a note of how much was dropped between them).
    log_bytes : int
        Most bytes (UTF-8) of module output the pod's log keeps.
    """

    timeout: float | None = None
    memory: int | None = None
    affinity: tuple[int, ...] | None = None
    gpus: tuple[int, ...] | None = None
    log_lines: int = LOG_LINES
    log_bytes: int = LOG_BYTES


@dataclass(frozen=True)
class PodSpec:
    """One BenchPod: a scenario, a repeat, and all it needs to run anywhere.

    Build specs with :func:`specs_of`; read one with :meth:`load`.
    """

    identity: str
    repeat: int
    plan: Mapping[str, Any]
    sources: tuple[tuple[str, str], ...]
    texts: Mapping[str, str]
    settings: Mapping[str, Any]
    seed: int
    environment: Mapping[str, Any]
    resources: Mapping[str, Any]
    limits: Limits = field(default_factory=Limits)
    workdir: str = "."

    @property
    def pod(self) -> str:
        """The pod's key: ``{identity}-r{repeat}``."""
        return f"{self.identity}-r{self.repeat}"

    @property
    def scenario(self) -> str:
        """The id of the scenario the plan holds."""
        return str(self.plan["id"])

    @property
    def label(self) -> str:
        """The label of the scenario the plan holds."""
        return str(self.plan["label"])

    @property
    def params(self) -> dict[str, Any]:
        """The bound parameters, ``{"Module.param": value}``."""
        return dict(self.plan["params"])

    @property
    def modules(self) -> dict[str, Any]:
        """The modules' names by role: ``problem``, ``model``, ``software``, ``hardware``, ``metrics`` (a
        list), ``submodels`` (``{role path: name}``) and ``converters`` (a list)."""
        p = self.plan
        models = p["models"]
        return {"problem": p["problem"], "model": models["model"]["name"], "software": p["software"],
                "hardware": p["hardware"], "metrics": sorted(p["metrics"]),
                "submodels": {role: m["name"] for role, m in models.items() if role != "model"},
                "converters": sorted(p["converters"])}

    @property
    def family(self) -> str:
        """Problem × model × software × hardware names (parameters aside): cost estimates group by it."""
        m = self.modules
        return " × ".join(str(m[k]) for k in ("problem", "model", "software", "hardware"))

    def replace(self, **changes: Any) -> PodSpec:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    # -- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (the format ``docs/benchpods.md`` describes)."""
        return {
            "saibench_pod": SPEC_VERSION, "pod": self.pod, "identity": self.identity, "repeat": self.repeat,
            "plan": dict(self.plan),
            "sources": [{"origin": o, "digest": d} for o, d in self.sources], "texts": dict(self.texts),
            "settings": dict(self.settings),
            "seed": self.seed, "environment": dict(self.environment), "resources": dict(self.resources),
            "limits": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.limits).items()},
            "workdir": self.workdir,
        }

    def to_json(self) -> str:
        """The spec as JSON text."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PodSpec:
        """Validate ``data`` and build the spec.

        Raises
        ------
        SpecError
            Naming the first bad field, what is wrong, and the fix.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"a pod spec is a JSON object, not {type(data).__name__}")
        version = data.get("saibench_pod")
        if version != SPEC_VERSION:
            fix = ("write it with this version's saibench_jupyter.pods.specs_of"
                   if version is None or (isinstance(version, int) and version < SPEC_VERSION)
                   else "run the pod with the saibench-jupyter version that wrote it, or upgrade")
            raise SpecError(f"saibench_pod: this is spec format {version!r}; this version reads {SPEC_VERSION}. "
                            f"Fix: {fix}")
        get = _Fields(data)
        sources = tuple((get.str_in(s, "origin", "sources[]"), get.str_in(s, "digest", "sources[]"))
                        for s in get.items("sources"))
        texts = get.mapping("texts")
        for origin, digest in sources:
            text = texts.get(digest)
            if not isinstance(text, str):
                raise SpecError(f"sources: {origin} has digest {digest}, which texts does not hold. "
                                "Fix: include every source's text under its digest")
            if _sha256(text) != digest:
                raise SpecError(f"texts: the text of {origin} does not match its digest {digest} (it was "
                                "changed after the spec was written). Fix: write the spec again")
        plan = get.mapping("plan")
        _check_plan(plan)
        limits = get.mapping("limits")
        spec = cls(
            identity=get.text("identity"), repeat=get.integer("repeat"), plan=dict(plan), sources=sources,
            texts=dict(texts), settings=dict(get.mapping("settings")),
            seed=get.integer("seed"), environment=dict(get.mapping("environment")),
            resources=dict(get.mapping("resources")), limits=_limits(limits), workdir=get.text("workdir"),
        )
        if "pod" in data and data["pod"] != spec.pod:
            raise SpecError(f"pod: {data['pod']!r} does not match identity and repeat ({spec.pod}). "
                            "Fix: write the spec again")
        return spec

    @classmethod
    def load(cls, source: str | os.PathLike[str]) -> PodSpec:
        """Read a spec from a JSON file (or JSON text starting with ``{``).

        Raises
        ------
        SpecError
            When the file is missing or not UTF-8, is not JSON (or JSON nested too deeply to
            decode), or the spec is invalid.
        """
        text = str(source)
        if not text.lstrip().startswith("{"):
            try:
                text = Path(source).read_text(encoding="utf-8")
            except OSError as exc:
                raise SpecError(f"cannot read the pod spec {source}: {exc.strerror}. Fix: give the path "
                                "of a spec written by specs_of(...)") from None
            except UnicodeDecodeError as exc:
                raise SpecError(f"cannot read the pod spec {source}: it is not UTF-8 text ({exc.reason} at "
                                f"byte {exc.start}). Fix: give a spec written by specs_of(...)") from None
        try:
            data = json.loads(text)
        except RecursionError:
            # json recurses once per nesting level: a spec is a few levels deep, never thousands.
            raise SpecError("the pod spec is not a spec: its JSON is nested too deeply to read. "
                            "Fix: give a spec written by specs_of(...)") from None
        except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
            raise SpecError(f"the pod spec is not JSON: {exc}. Fix: give a spec written by specs_of(...)") from None
        try:
            return cls.from_dict(data)
        except RecursionError:  # a field holds a value nested too deeply to check or print
            raise SpecError("the pod spec is not a spec: a field is nested too deeply. "
                            "Fix: give a spec written by specs_of(...)") from None


class _Fields:
    """Typed access to a spec's fields, with errors that name the field."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def _get(self, name: str, kind: type | tuple[type, ...], what: str) -> Any:
        if name not in self.data:
            raise SpecError(f"{name}: missing. Fix: write the spec with specs_of(...), which fills every field")
        value = self.data[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise SpecError(f"{name}: expected {what}, got {type(value).__name__} {value!r:.60}")
        return value

    def text(self, name: str) -> str:
        return self._get(name, str, "a string")  # type: ignore[no-any-return]

    def integer(self, name: str) -> int:
        return self._get(name, int, "an integer")  # type: ignore[no-any-return]

    def items(self, name: str) -> list[Any]:
        return self._get(name, list, "a list")  # type: ignore[no-any-return]

    def mapping(self, name: str) -> Mapping[str, Any]:
        return self._get(name, dict, "an object")  # type: ignore[no-any-return]

    @staticmethod
    def str_in(item: Any, key: str, where: str) -> str:
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str):
            raise SpecError(f"{where}.{key}: missing or not a string in {item!r:.80}")
        return value


def _check_plan(plan: Mapping[str, Any]) -> None:
    """The plan's outline (what names the scenario); the pod checks the rest against the sources."""
    fix = "Fix: write the spec with specs_of(...)"
    for key in ("id", "label", "problem", "hardware", "software"):
        if not isinstance(plan.get(key), str):
            raise SpecError(f"plan.{key}: missing or not a string. {fix}")
    for key in ("models", "modules", "params", "support", "environment", "resources"):
        if not isinstance(plan.get(key), dict):
            raise SpecError(f"plan.{key}: missing or not an object. {fix}")
    for key in ("metrics", "converters"):
        if not isinstance(plan.get(key), list) or not all(isinstance(n, str) for n in plan[key]):
            raise SpecError(f"plan.{key}: missing or not a list of module names. {fix}")
    models = plan["models"]
    if not isinstance(models.get("model"), dict) or not all(isinstance(m, dict) and isinstance(m.get("name"), str)
                                                           for m in models.values()):
        raise SpecError(f"plan.models: expected the model under test (\"model\") and its sub-models, each "
                        f"with its module name. {fix}")


def _limits(data: Mapping[str, Any]) -> Limits:
    def ids(key: str) -> tuple[int, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise SpecError(f"limits.{key}: expected a list of integer ids, got {value!r}")
        return tuple(value)

    def count(key: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SpecError(f"limits.{key}: expected an integer >= 1, got {value!r}")
        return value

    timeout, memory = data.get("timeout"), data.get("memory")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise SpecError(f"limits.timeout: expected seconds > 0 or null, got {timeout!r}")
    if memory is not None and (not isinstance(memory, int) or memory <= 0):
        raise SpecError(f"limits.memory: expected bytes > 0 or null, got {memory!r}")
    return Limits(timeout, memory, ids("affinity"), ids("gpus"), count("log_lines", LOG_LINES),
                  count("log_bytes", LOG_BYTES))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- building specs from scenarios ------------------------------------------------------------
def specs_of(scenario: Scenario, *, repeats: int = 1, seed: int = 0, settings: Mapping[str, Any] | None = None,
             limits: Limits | None = None, workdir: str | os.PathLike[str] | None = None,
             check: bool = True) -> list[PodSpec]:
    """The pod specs of ``repeats`` independent runs of ``scenario`` (repeat ``r`` uses seed ``seed + r``).

    Parameters
    ----------
    scenario : Scenario
        A discovered scenario (its repository must still exist: the sources come from it).
    repeats : int
        How many independent pods.
    seed : int
        The base seed.
    settings : mapping, optional
        Training-setting overrides (``{"epochs": 5}``); part of the identity.
    limits : Limits, optional
        Time and memory limits.
    workdir : path, optional
        Where relative inputs resolve; the current directory by default.
    check : bool
        Refuse a scenario whose parameter values a spec cannot hold (see :func:`unwritable`).
        False builds its specs all the same, for a caller that records them as failed
        pods instead of sending them anywhere (their ``to_json`` would fail).

    Raises
    ------
    SpecError
        When a setting, or (with ``check``) a parameter value, cannot be written as JSON.
    """
    if repeats < 1:
        raise SpecError(f"repeats={repeats}: run each scenario at least once (repeats >= 1)")
    repo = scenario.repository
    sources = repo.sources()
    texts = {origin: src.text for origin, src in sources.items()}
    digests = {origin: _sha256(text) for origin, text in texts.items()}
    environment = _environment(scenario)
    settings = dict(settings or {})
    try:
        json.dumps(settings, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"settings {settings!r:.80} cannot be written to a pod spec ({exc}). "
                        "Fix: use numbers, strings, booleans, lists or dicts as settings") from None
    refused = unwritable(scenario) if check else None
    if refused is not None:
        raise SpecError(f"{scenario.label}: {refused[0]}. Fix: {refused[1]}")
    identity = digest_of(*_code_of(scenario), json.dumps(environment, sort_keys=True),
                         json.dumps(settings, sort_keys=True), str(seed))
    plan = scenario.plan().to_dict(strict=check)
    base = PodSpec(
        identity=identity, repeat=0, plan={**plan, "record": scenario_record(scenario, plan, environment, settings)},
        sources=tuple((o, digests[o]) for o in sources), texts={digests[o]: t for o, t in texts.items()},
        settings=settings, seed=seed, environment=environment,
        resources=_resources(scenario), limits=limits or Limits(), workdir=str(workdir or os.getcwd()),
    )
    return [base.replace(repeat=r, seed=seed + r) for r in range(repeats)]


def scenario_record(scenario: Scenario, plan: Mapping[str, Any], environment: Mapping[str, Any],
                    settings: Mapping[str, Any]) -> dict[str, Any]:
    """What the results store keeps about ``scenario`` (its ``scenarios`` row), carried in the plan as ``record``.

    The controller stores it; a pod notebook's own store, which draws the pod's chart, too.
    """
    repo = scenario.repository
    models = plan["models"]
    return {
        "scenario": scenario.id, "version": version_of(scenario), "label": scenario.label,
        "family": " × ".join((scenario.problem, models["model"]["name"], scenario.software, scenario.hardware)),
        "problem": scenario.problem, "model": scenario.model, "software": scenario.software,
        "hardware": scenario.hardware, "submodels": scenario.submodels, "params": scenario.params,
        "metrics": sorted(plan["metrics"]),
        "metric_info": {m.name: {"axis": m.axis, "better": m.better, "unit": m.unit} for m in scenario.metrics},
        "modules": {n: repo.get(n).digest for names in scenario.names().values() for n in names if n in repo},
        "sources": [_sha256(s.text) for s in repo.sources().values()], "environment": dict(environment),
        "resources": _resources(scenario), "settings": dict(settings),
    }


def unwritable(scenario: Scenario) -> tuple[str, str] | None:
    """Why ``scenario``'s pods cannot be written as specs, and the fix; None when they can.

    A pod gets its parameter values (and the types of its model's tasks) as JSON, so a
    value JSON cannot hold (a set, a NumPy number, an object) cannot reach it. Such a
    scenario cannot run, but it is one bad scenario: :func:`~saibench_jupyter.pods.run`
    records its pods as failed and runs the others.

    Returns
    -------
    tuple of str, or None
        The message (naming the parameter, its value and why) and the fix.
    """
    for name, value in scenario.params.items():
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError, RecursionError) as exc:
            why = str(exc) if not isinstance(exc, RecursionError) else "it nests too deeply"
            return (f"parameter {name} = {value!r:.80} cannot be written to a pod spec ({why}): a pod "
                    "gets its parameters as JSON",
                    f"give {name} only JSON values (numbers, strings, booleans, None, lists, dicts) in "
                    "Suggest(...) or discover(params=...): a list instead of a set or an array, int(x) or "
                    "float(x) for a NumPy number, or a name the module turns into the object")
    try:
        scenario.plan().to_dict()
    except PlanError as exc:
        return str(exc).split("; fix: ")[0], str(exc).split("; fix: ")[-1]
    return None


def _code_of(scenario: Scenario) -> tuple[str, ...]:
    """The digests of the code a scenario's results depend on: its modules (with their bindings), the
    metrics and converters it uses, and the support code of every source."""
    repo = scenario.repository
    used = [repo.get(n).digest for n in (*sorted(m.name for m in scenario.metrics),
                                         *sorted(_converters(scenario.converters)))]
    return (scenario.id, *used, *sorted(s.support_digest for s in repo.sources().values()))


def version_of(scenario: Scenario) -> str:
    """A short digest of ``scenario``'s code: it changes when a module it uses, or support code, is edited.

    The pod identity also hashes the environment, settings and seed; the version is what
    tells two results of one label and settings apart after an edit.
    """
    return digest_of(*_code_of(scenario))[:7]


def _converters(chains: Sequence[Chain]) -> set[str]:
    out: set[str] = set()
    for chain in chains:
        for step in chain.steps:
            if not step.builtin:
                out.add(step.converter)
            out |= _converters(step.inner)
    return out


def _environment(scenario: Scenario) -> dict[str, Any]:
    env = scenario.environment
    return {"backend": env.backend, "pip": list(env.pip), "conda": list(env.conda), "python": env.python}


def _resources(scenario: Scenario) -> dict[str, Any]:
    res = scenario.resources
    return {"cpus": res.cpus, "device": res.device, "gpus": res.gpus, "memory": res.memory_bytes}
