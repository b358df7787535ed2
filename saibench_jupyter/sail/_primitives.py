"""SAIL primitives: data, requirements, failures, suggestions, conversions, work counters.

Primitives with an effect (``Input``, ``Require``, ``Suggest``, ``Gradients``, counters)
dispatch to the current context; descriptors (``Environment``, ``Resources``,
``Capability``) are plain frozen values; data helpers work on symbolic placeholders
during discovery and on real data during execution.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any as _Any
from typing import ClassVar, NoReturn

from ._context import current
from ._errors import Location, ModuleFailed, source_origin
from ._graph import ConvertNode
from ._lists import SailList
from ._symbolic import Stream, TupleType, Value, typeof
from ._types import Atoms, SailType, Scalar, Set, Symbolic, Tensor, as_type, is_type


def caller_location(depth: int = 2) -> Location | None:
    """The SAIL source position of the code that called a primitive (None outside SAIL code)."""
    frame = sys._getframe(depth)
    while frame is not None:
        origin = source_origin(frame.f_code.co_filename)
        if origin is not None:
            return Location(origin, frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    return None


# -- effects ----------------------------------------------------------------------
def Input(source: _Any, type: _Any = None) -> _Any:
    """A lazy stream of records from a file or a dataset provider (``"dataset:digits"``)."""
    return current().input(source, type)


def Require(what: _Any, *args: _Any) -> _Any:
    """Ask the planner for a software capability, or a sub-model: ``Require(Model, task, i, o)``."""
    return current().require(what, args)


def Fail(reason: _Any = "rejected") -> NoReturn:
    """Decline the current context; the planner keeps ``reason`` and shows it."""
    raise ModuleFailed(str(reason))


def Suggest(param: _Any, *values: _Any) -> None:
    """Offer a grid of values for a parameter that has none yet (no effect when bound)."""
    current().suggest(param, values)


def Convert(value: _Any, to: _Any) -> _Any:
    """``Convert(fromType, toType)``: a conversion node; ``Convert(value, toType)``: convert now."""
    if is_type(value):
        return ConvertNode(value, to, caller_location())
    return current().convert_value(ConvertNode(typeof(value), to, caller_location()), value)


def Gradients(wrt: _Any, output: _Any) -> _Any:
    """Derivatives of ``output`` with respect to ``wrt`` through the model's backend."""
    return current().gradients(wrt, output)


def Provides(capability: _Any, implementation: _Any) -> None:
    """In a software module: this environment implements ``capability`` with ``implementation``."""
    current().provides(capability, implementation)


def _counter(name: str, doc: str) -> _Any:
    def counter() -> _Any:
        return current().counter(name)

    counter.__name__ = counter.__qualname__ = name
    counter.__doc__ = doc
    return counter


ElapsedMilliseconds = _counter("ElapsedMilliseconds", "Model work so far: training plus inference, in ms.")
TrainingMilliseconds = _counter("TrainingMilliseconds", "Training time so far, in ms.")
InferenceMilliseconds = _counter("InferenceMilliseconds", "Inference time so far, in ms.")
SamplesSeen = _counter("SamplesSeen", "Training samples processed so far.")
Epochs = _counter("Epochs", "Training epochs completed so far.")
Flops = _counter("Flops", "Floating-point operations so far, where the backend counts them.")
PeakMemoryBytes = _counter("PeakMemoryBytes", "Peak memory of the model's work, in bytes.")

#: The work counters' names, in the order tables show them: the runtime counts them, results store them as
#: columns, rankings and charts read them (the one list all of these import).
COUNTERS = ("ElapsedMilliseconds", "TrainingMilliseconds", "InferenceMilliseconds", "SamplesSeen", "Epochs",
            "Flops", "PeakMemoryBytes")
#: What a ranking reads of a scenario besides its metrics and :data:`COUNTERS`: who it is, where its final point
#: is, and ``checkpoints`` (every point). Discovery attaches a ranking by the metrics it reads, so it skips these.
RANKING_FIELDS = ("identity", "label", "family", "problem", "model", "software", "hardware", "params", "status",
                  "why", "n", "stage", "checkpoint", "epoch", "checkpoints")


# -- data helpers -----------------------------------------------------------------
def _columns(data: _Any) -> _Any:
    # A list of parallel streams (images, masks) is read as one stream of records.
    if isinstance(data, list | tuple) and data and all(isinstance(d, Stream) for d in data):
        return Stream(TupleType(*(d.element for d in data)), data[0].source)
    if isinstance(data, list | tuple) and data and all(getattr(d, "__sail_stream__", False) for d in data):
        return SailList(zip(*data))  # real streams at execution: records (a_i, b_i)
    return data


def _placeholders(items: list[_Any]) -> bool:
    # During a dry run a stream yields one placeholder record: every part of a split gets
    # it, or a loop over the test part would never run and the problem would lose its tests.
    return any(isinstance(i, Symbolic) or (isinstance(i, tuple) and any(isinstance(x, Symbolic) for x in i))
               for i in items)


def RandomSplit(data: _Any, fraction: float, seed: int = 0) -> tuple[_Any, _Any]:
    """Shuffle ``data`` with ``seed`` and split it into ``fraction`` and the rest."""
    data = _columns(data)
    if isinstance(data, Symbolic):
        return data, data
    items = list(data)
    if _placeholders(items):
        return SailList(items), SailList(items)
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(items))
    cut = round(float(fraction) * len(items))
    return SailList(items[i] for i in order[:cut]), SailList(items[i] for i in order[cut:])


def Chunks(data: _Any, n: int) -> SailList:
    """Split ``data`` into ``n`` consecutive chunks of near-equal size."""
    data = _columns(data)
    if isinstance(data, Symbolic):
        return SailList([data] * n)
    items = list(data)
    if _placeholders(items):
        return SailList(SailList(items) for _ in range(n))
    bounds = [round(i * len(items) / n) for i in range(n + 1)]
    return SailList(SailList(items[a:b]) for a, b in itertools.pairwise(bounds))


def Concat(tensors: Iterable[_Any]) -> _Any:
    """Concatenate tensors (flattened) into one flat tensor."""
    items = list(tensors)
    if isinstance(tensors, Symbolic) or any(isinstance(t, Symbolic) for t in items):
        coll = typeof(tensors)
        n, el = coll.Size, coll.ElementType
        each = el.Size if el is not None else None
        return Value(Tensor(n * each if n is not None and each is not None else None))
    xp = array_namespace(*items)
    return xp.concat([xp.reshape(t, (-1,)) for t in items])


def Stack(tensors: Iterable[_Any]) -> _Any:
    """Stack tensors of one shape along a new first axis."""
    items = list(tensors)
    if isinstance(tensors, Symbolic) or any(isinstance(t, Symbolic) for t in items):
        coll = typeof(tensors)
        inner = coll.ElementType.dims if coll.ElementType is not None else None
        return Value(Tensor(coll.Size, *(inner or ())))
    return array_namespace(*items).stack(items)


def array_namespace(*arrays: _Any) -> _Any:
    """The array API namespace of ``arrays``: NumPy itself for NumPy ≥ 2 data, else array_api_compat's.

    NumPy 2's own namespace follows the standard; ``array_api_compat.numpy`` re-exports
    all of NumPy (f2py and testing included), which costs a pod ~0.2 s to import.
    """
    import numpy as np

    if int(np.__version__.split(".")[0]) >= 2 and all(isinstance(x, np.ndarray | np.generic | int | float)
                                                      for x in arrays):
        return np
    from array_api_compat import array_namespace as compat_namespace

    return compat_namespace(*arrays)


def L2Error(a: _Any, b: _Any) -> _Any:
    """Euclidean norm of ``a - b``."""
    if isinstance(a, Symbolic) or isinstance(b, Symbolic):
        return Value(Scalar("float32"))
    xp = array_namespace(a, b)
    d = xp.reshape(xp.asarray(a) - xp.asarray(b), (-1,))
    return xp.sqrt(xp.sum(d * d))


# -- descriptors ------------------------------------------------------------------
class Capability:
    """A software capability a problem may ``Require`` and a software module ``Provides``.

    Subclass it with annotated method stubs to give the capability a typed interface
    (the dry run then knows what its methods return); a bare name becomes an untyped
    capability through :meth:`named`.
    """

    _registry: ClassVar[dict[str, type[Capability]]] = {}

    def __init_subclass__(cls, **kwargs: _Any) -> None:
        super().__init_subclass__(**kwargs)
        # By name, so that Require(Name) finds a declared, typed capability.
        Capability._registry[cls.__name__] = cls

    @classmethod
    def capability_name(cls) -> str:
        return cls.__name__

    @classmethod
    def named(cls, name: str) -> type[Capability]:
        """The (untyped) capability called ``name``; one class per name."""
        if name not in Capability._registry:
            Capability._registry[name] = type(name, (Capability,), {"__module__": __name__})
        return Capability._registry[name]

    @classmethod
    def signature(cls, method: str) -> SailType | None:
        """The declared return type of ``method``, if the capability declares one."""
        return _signature(cls, method)  # type: ignore[arg-type]  # classes are hashable


@functools.cache
def _signature(cls: type[Capability], method: str) -> SailType | None:
    fn = getattr(cls, method, None)
    if not callable(fn):
        return None
    try:
        ret = inspect.get_annotations(fn, eval_str=True).get("return")
    except (NameError, SyntaxError, TypeError):
        return None
    return None if ret is None or not is_type(ret) else as_type(ret)


class MolecularDynamicsSoftware(Capability):
    """Golden molecular dynamics: energies, forces and integration steps (paper Fig. 6)."""

    def PredictEnergy(self, atoms: Atoms) -> Scalar("float32"):  # type: ignore[valid-type]
        """Potential energy of a configuration."""
        raise NotImplementedError

    def ComputeForces(self, atoms: Atoms, energy: Scalar) -> Set(Tensor(3)):  # type: ignore[valid-type]
        """Forces on each atom (minus the energy gradient)."""
        raise NotImplementedError

    def ComputeNewStates(self, atoms: Atoms, dt: float, forces: _Any) -> Atoms:  # type: ignore[valid-type]
        """One integration step of length ``dt`` under ``forces``."""
        raise NotImplementedError


def capability_of(value: _Any) -> type[Capability] | None:
    """The capability class ``value`` names (a Capability subclass, or a string), or None."""
    if isinstance(value, type) and issubclass(value, Capability):
        return value
    if isinstance(value, str):
        return Capability.named(value)
    return None


@dataclass(frozen=True)
class Environment:
    """A software environment: the backend and what to install.

    Parameters
    ----------
    backend : str
        ``"torch"``, ``"jax"`` or ``"numpy"`` (classical solvers and estimators).
    pip, conda : list of str
        Requirements for a uv/venv or a conda environment.
    python : str, optional
        Python version; ``None`` keeps the running one.
    provides : mapping
        Capability name to implementation (filled from ``Provides(...)`` calls).
    """

    backend: str = "numpy"
    pip: Sequence[str] = ()
    conda: Sequence[str] = ()
    python: str | None = None
    provides: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pip", tuple(self.pip))
        object.__setattr__(self, "conda", tuple(self.conda))
        object.__setattr__(self, "provides", dict(self.provides))

    def __hash__(self) -> int:
        return hash((self.backend, tuple(self.pip), tuple(self.conda), self.python,
                     tuple(sorted(self.provides.items()))))


@dataclass(frozen=True)
class Resources:
    """Hardware a scenario runs on: ``Resources(cpus=2, device="cuda", memory="8GB")``."""

    cpus: int = 1
    device: str = "cpu"
    memory: int | str | None = None
    gpus: int = 0

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"Resources(device={self.device!r}): use 'cpu' or 'cuda'")
        if self.device == "cuda" and not self.gpus:
            object.__setattr__(self, "gpus", 1)

    @property
    def memory_bytes(self) -> int | None:
        """``memory`` in bytes (strings such as ``"8GB"`` or ``"512MiB"`` are parsed)."""
        m = self.memory
        if m is None or isinstance(m, int):
            return m
        units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
                 "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
        text = str(m).strip().upper().replace(" ", "")
        digits = text.rstrip("KMGTIB")
        return int(float(digits) * units[text[len(digits):]])
