"""The dry-run tracer: runs a module symbolically and returns its metadata (a :class:`Trace`).

``Input`` yields typed placeholders, a loop over a stream runs once, ``Train.*`` and
``Test.*`` record task signatures, unbound parameters are placeholders, ``Fail`` ends
the run with its reason. A run that loops is stopped after a time limit; a run that
raises becomes an error naming the module, the origin and the line.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._concepts import COMPARISON_KINDS, Concept, Model
from ._context import Context, using
from ._deadline import DeadlineExceeded, deadline, guarded_builtins, purge_partial_modules
from ._decorators import ModuleKind
from ._dryrun_errors import (
    describe,
    escape_error,
    internal_error,
    module_site,
    printable,
    raised_in,
    timeout_error,
)
from ._errors import (
    UNKNOWN_NAME_FIX,
    DryRunError,
    Location,
    ModuleFailed,
    SailError,
    SailNameError,
)
from ._graph import ConvertNode, Node, SubModel, as_node, submodels
from ._inputs import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
from ._inputs import FileStamp, file_stamp, input_type, lookup_paths
from ._meta import (
    ConverterMeta,
    HardwareMeta,
    Meta,
    MetricMeta,
    ModelMeta,
    ProblemMeta,
    SoftwareMeta,
    TaskRecord,
    TaskSignature,
    Trace,
)
from ._namespace import namespace
from ._parser import ParsedModule
from ._primitives import Capability, Environment, Resources, capability_of
from ._symbolic import Opaque, Param, Stream, Value, typeof
from ._types import AnyType, SailType, Scalar, TypeVariable, as_type, most_specific, unify

DEFAULT_TIME_LIMIT = 2.0


def load_function(module: ParsedModule, support: frozenset[str],
                  bindings: Mapping[str, Any] | None = None,
                  declared: Mapping[str, Any] | None = None) -> types.FunctionType:
    """Compile ``module`` into a function whose globals are SAIL names plus placeholders.

    Support-code names the module reads become :class:`Opaque` placeholders (support
    code is not run during discovery), except declared SAIL types and capabilities,
    which are real; ``bindings`` adds globals such as a bound ``T``. Imports in the body
    pause the dry run's time limit (see :func:`guarded_builtins`).
    """
    ns = namespace()
    ns["__builtins__"] = guarded_builtins()
    declared = declared or {}
    for name in module.free_names & support:
        ns[name] = declared[name] if name in declared else Opaque(name)
    if bindings:
        ns.update(bindings)
    shadowed = ns.get(module.name)
    exec(module.code, ns)  # defines the function; the body is not run
    fn = ns.pop(module.name)
    # Module names live in the repository, not in SAIL's namespace: inside the converter
    # Concat, ``Concat`` is still the primitive (paper Fig. 5).
    if shadowed is not None:
        ns[module.name] = shadowed
    return fn  # type: ignore[no-any-return]


class DryRun(Context):
    """The context SAIL primitives talk to during a dry run; subclasses per module kind."""

    name = "dry run"
    kind: ModuleKind

    def __init__(self, module: ParsedModule) -> None:
        self.module = module
        self.suggestions: dict[str, tuple[Any, ...]] = {}
        #: files whose contents gave a type, by path (a trace is stale once one changes)
        self.files: dict[str, FileStamp] = {}

    def _misplaced(self, what: str, where: str) -> SailError:
        return SailError(f"{what} is not allowed in a {self.kind.value} module",
                         module=self.module.name, fix=f"{what} belongs in {where}")

    def suggest(self, param: Any, values: tuple[Any, ...]) -> None:
        if isinstance(param, Param) and param.name not in self.suggestions:
            if not values:
                raise SailError(f"Suggest({param.name}) offers no values", module=self.module.name,
                                fix=f"write Suggest({param.name}, value1, value2, ...)")
            self.suggestions[param.name] = values

    def input(self, source: Any, type: Any) -> Any:
        raise self._misplaced("Input(...)", "a problem definition")

    def task(self, concept: str, kind: str, args: tuple[Any, ...]) -> Any:
        raise self._misplaced(f"{concept}.{kind}(...)", "a problem definition")

    def collection(self, concept: str, kind: str) -> Any:
        raise self._misplaced(f"reading {concept}.{kind}", "a metric definition")

    def require(self, what: Any, args: tuple[Any, ...]) -> Any:
        raise self._misplaced("Require(...)", "a problem (capabilities) or a model (sub-models)")

    def convert_value(self, node: ConvertNode, value: Any) -> Any:
        return Value(node.target)

    def gradients(self, wrt: Any, output: Any) -> Any:
        raise self._misplaced("Gradients(...)", "a problem definition")

    def counter(self, name: str) -> Any:
        raise self._misplaced(f"{name}()", "a metric definition")

    def provides(self, capability: Any, implementation: Any) -> None:
        raise self._misplaced("Provides(...)", "a software definition")

    def finish(self, result: Any) -> Meta:
        raise NotImplementedError


class _CapabilityProxy:
    """What ``Require(capability)`` gives a problem during discovery: typed method stubs."""

    def __init__(self, capability: type[Capability]) -> None:
        self._capability = capability

    def __getattr__(self, method: str) -> Callable[..., Value]:
        if method.startswith("_"):
            raise AttributeError(method)
        returns = self._capability.signature(method)
        return lambda *a, **k: Value(returns if returns is not None else AnyType(), method)


class ProblemRun(DryRun):
    """Records a problem's inputs, tasks, capabilities.

    ``search`` are the folders a relative input file is looked up in before the current
    directory (by default the folder of the module's source file), as at execution.
    """

    kind = ModuleKind.PROBLEM

    def __init__(self, module: ParsedModule, search: Sequence[Path] | None = None) -> None:
        super().__init__(module)
        if search is None:
            origin = Path(module.origin)
            search = [origin.parent] if origin.is_file() else []
        self.search = list(search)
        self.records: list[TaskRecord] = []
        self.seen: set[TaskRecord] = set()
        self.capabilities: list[str] = []
        self.inputs: list[str] = []
        self.uses_gradients = False

    def input(self, source: Any, type: Any) -> Any:
        src = str(source)
        self.inputs.append(src)
        if type is None and src.lower().endswith(".npy"):
            # Its header gives the type: note every place it could be, present or not.
            for place in lookup_paths(src, self.search):
                self.files[str(place)] = file_stamp(place)
        return Stream(input_type(src, type, self.search), src)

    def task(self, concept: str, kind: str, args: tuple[Any, ...]) -> Any:
        if not args:
            raise SailError(f"{concept}.{kind}() records nothing", module=self.module.name,
                            fix=f"pass the data: {concept}.{kind}(x, y)")
        if concept == "Train" and kind == "Gradients":
            # A derivative target of the last training record, not a task a model must solve.
            if len(args) != 2 or not any(r.phase == "Train" for r in self.records):
                raise SailError("Train.Gradients(wrt, target) follows a training record: Train.K(x, y), then "
                                "the derivative target of y with respect to x (or a field of x)",
                                module=self.module.name,
                                fix="e.g. Train.Predict(atoms, energy); Train.Gradients(atoms.positions, -forces)")
            return None
        line = sys._getframe(2).f_lineno
        rec = TaskRecord(concept, kind, tuple(typeof(a) for a in args), line)
        if rec not in self.seen:
            self.seen.add(rec)
            self.records.append(rec)
        if concept == "Model":
            out = next((r.types[1] for r in self.records
                        if r.kind == kind and r.phase != "Model" and len(r.types) > 1), AnyType())
            return Value(out, f"Model.{kind}")
        return None

    def require(self, what: Any, args: tuple[Any, ...]) -> Any:
        if isinstance(what, Concept) and what is Model:
            raise SailError("Require(Model, ...) is not allowed in a problem module",
                            module=self.module.name,
                            fix="a problem calls the model under test with Model.Kind(x); "
                            "Require(Model, ...) composes sub-models inside a model definition")
        cap = capability_of(what)
        if cap is None:
            raise SailError(f"Require({what!r}) does not name a capability", module=self.module.name,
                            fix="pass a Capability subclass or a capability name")
        if cap.capability_name() not in self.capabilities:
            self.capabilities.append(cap.capability_name())
        return _CapabilityProxy(cap)

    def gradients(self, wrt: Any, output: Any) -> Any:
        self.uses_gradients = True
        return Value(typeof(wrt), "gradients")

    def finish(self, result: Any) -> Meta:
        tasks: dict[str, TaskSignature] = {}
        lines: dict[str, TaskRecord] = {}
        tests: dict[str, tuple[SailType, ...]] = {}
        for rec in self.records:
            if rec.phase == "Test":
                known = tests.get(rec.kind)
                tests[rec.kind] = rec.types if known is None else tuple(
                    most_specific(a, b) for a, b in zip(known, rec.types))
            if rec.kind in COMPARISON_KINDS:
                continue
            if rec.phase == "Model":
                out = tasks[rec.kind].output if rec.kind in tasks else AnyType()
            else:
                out = rec.types[1] if len(rec.types) > 1 else rec.types[0]
            sig = TaskSignature(rec.kind, rec.types[0], out)
            old = tasks.get(rec.kind)
            if old is None:
                tasks[rec.kind], lines[rec.kind] = sig, rec
            elif unify(old.input, sig.input) is None or unify(old.output, sig.output) is None:
                first = lines[rec.kind]
                raise SailError(
                    f"{rec.phase}.{rec.kind} takes {sig.input!r} -> {sig.output!r}, but "
                    f"{first.phase}.{first.kind} (line {first.line}) takes {old.input!r} -> {old.output!r}",
                    module=self.module.name, location=Location(self.module.origin, rec.line),
                    fix="one task kind has one signature: make the types agree or use another kind",
                )
            else:
                # Records agree; keep what is known (a later record may know the output).
                tasks[rec.kind] = TaskSignature(rec.kind, most_specific(old.input, sig.input),
                                                most_specific(old.output, sig.output))
        return ProblemMeta(tuple(self.records), tuple(tasks.values()), tests,
                           tuple(self.capabilities), tuple(self.inputs), self.uses_gradients)


class ModelRun(DryRun):
    kind = ModuleKind.MODEL

    def require(self, what: Any, args: tuple[Any, ...]) -> Any:
        if not (isinstance(what, Concept) and what is Model):
            raise SailError(f"Require({what!r}, ...) in a model: only sub-models can be required here",
                            module=self.module.name,
                            fix="write Require(Model, task, inputType, outputType); software "
                            "capabilities are required by problems")
        if len(args) != 3:
            raise SailError(f"Require(Model, ...) takes (task, inputType, outputType), got {len(args)} arguments",
                            module=self.module.name, fix="write Require(Model, task, inputType, outputType)")
        frame = sys._getframe(2)
        positions = list(frame.f_code.co_positions())
        col = positions[frame.f_lasti // 2][2] if frame.f_lasti // 2 < len(positions) else 0
        return SubModel(f"{frame.f_lineno}:{col or 0}", str(args[0]), as_type(args[1]), as_type(args[2]),
                        Location(self.module.origin, frame.f_lineno, col or 0))

    def finish(self, result: Any) -> Meta:
        if isinstance(result, list | tuple):
            from ._graph import Pipeline

            result = Pipeline(list(result))
        try:
            graph: Node = as_node(result)
        except TypeError:
            raise SailError(
                f"model {self.module.name} returned {result!r}, not a model graph",
                module=self.module.name, location=self.module.location,
                fix="return Pipeline([...]), a layer, a sub-model, or a native wrapper such as TorchModule(m)",
            ) from None
        return ModelMeta(graph, submodels(graph))


class MetricRun(DryRun):
    kind = ModuleKind.METRIC

    def __init__(self, module: ParsedModule, tests: Mapping[str, tuple[SailType, ...]]) -> None:
        super().__init__(module)
        self.tests = tests
        self.reads: set[str] = set()
        self.counters: set[str] = set()

    def collection(self, concept: str, kind: str) -> Any:
        if concept != "Test":
            raise SailError(f"metrics read Test collections, not {concept}.{kind}",
                            module=self.module.name, fix=f"read Test.{kind}")
        if kind not in self.tests:
            have = ", ".join(f"Test.{k}" for k in self.tests) or "no test records"
            raise ModuleFailed(f"reads Test.{kind}, but the problem has {have}")
        self.reads.add(kind)
        types_ = self.tests[kind]
        if kind in COMPARISON_KINDS:
            return [tuple(Value(t) for t in types_)]
        x, y = types_[0], types_[-1]
        return [(Value(x, "x"), Value(y, "expected"), Value(y, "predicted"))]

    def counter(self, name: str) -> Any:
        self.counters.add(name)
        return Value(Scalar("float64"), name)

    def finish(self, result: Any) -> Meta:
        opts = self.module.options
        if not self.reads and not self.counters:
            raise SailError(f"metric {self.module.name} reads no Test collection and no work counter",
                            module=self.module.name, location=self.module.location,
                            fix="read Test.Kind records or call a counter such as ElapsedMilliseconds()")
        axis = opts.get("axis") or ("precision" if self.reads else "work")
        return MetricMeta(frozenset(self.reads), frozenset(self.counters), axis,
                          opts.get("better", "lower"), opts.get("unit"), typeof(result))


class SoftwareRun(DryRun):
    kind = ModuleKind.SOFTWARE

    def __init__(self, module: ParsedModule) -> None:
        super().__init__(module)
        self.provided: dict[str, str] = {}

    def provides(self, capability: Any, implementation: Any) -> None:
        cap = capability_of(capability)
        if cap is None:
            raise SailError(f"Provides({capability!r}, ...) does not name a capability",
                            module=self.module.name, fix="pass a Capability subclass or a name")
        self.provided[cap.capability_name()] = _implementation_name(implementation)

    def finish(self, result: Any) -> Meta:
        if not isinstance(result, Environment):
            raise SailError(f"software {self.module.name} returned {result!r}, not an Environment",
                            module=self.module.name, location=self.module.location,
                            fix='return Environment(backend="torch", pip=[...]) or call Fail(reason)')
        if self.provided:
            result = Environment(result.backend, result.pip, result.conda, result.python,
                                 {**result.provides, **self.provided})
        return SoftwareMeta(result)


def _implementation_name(impl: Any) -> str:
    """How a software module names an implementation: a support name or an ``"module:attr"`` path."""
    if isinstance(impl, Opaque):
        return impl.name
    return impl if isinstance(impl, str) else getattr(impl, "__name__", repr(impl))


class HardwareRun(DryRun):
    kind = ModuleKind.HARDWARE

    def finish(self, result: Any) -> Meta:
        if not isinstance(result, Resources):
            raise SailError(f"hardware {self.module.name} returned {result!r}, not Resources",
                            module=self.module.name, location=self.module.location,
                            fix='return Resources(cpus=..., device="cpu" or "cuda")')
        return HardwareMeta(result)


class ConverterRun(DryRun):
    kind = ModuleKind.CONVERTER

    def __init__(self, module: ParsedModule) -> None:
        super().__init__(module)
        self.needs: list[tuple[SailType, SailType]] = []

    def convert_value(self, node: ConvertNode, value: Any) -> Any:
        need = (typeof(value) if isinstance(node.source, AnyType) else node.source, node.target)
        if need not in self.needs:
            self.needs.append(need)
        return Value(node.target)

    def finish(self, result: Any) -> Meta:
        return ConverterMeta(tuple(self.needs))


def dry_run(
    module: ParsedModule,
    ctx: DryRun,
    args: tuple[Any, ...] = (),
    bindings: Mapping[str, Any] | None = None,
    *,
    support: frozenset[str] = frozenset(),
    declared: Mapping[str, Any] | None = None,
    type_bindings: Mapping[TypeVariable, SailType] | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Trace:
    """Run ``module`` symbolically in ``ctx`` and return what it declares.

    Parameters
    ----------
    module : ParsedModule
        The module to run.
    ctx : DryRun
        The kind-specific recorder (:class:`ProblemRun`, :class:`ModelRun`, ...).
    args : tuple
        Leading positional arguments (a model's task and types, a software's hardware,
        a converter's value).
    bindings : mapping, optional
        Values for the remaining parameters; parameters without a binding or a default
        become unbound :class:`Param` placeholders.
    support : frozenset of str
        Names defined by support code, seen as :class:`Opaque` placeholders.
    declared : mapping, optional
        Declared SAIL types and capabilities among those names (seen as themselves).
    type_bindings : mapping, optional
        Type variables bound for a generic converter (``T = Atom``).
    time_limit : float
        Seconds before the run is stopped as a :class:`DryRunTimeout`.
    """
    bindings = dict(bindings or {})
    extra = {v.name: t for v, t in (type_bindings or {}).items()}
    kwargs, unbound, placeholders = _arguments(module, args, bindings)
    meta: Meta | None = None
    failure: str | None = None
    site: Location | None = None
    error: SailError | None = None
    try:
        with using(ctx), deadline(time_limit):
            # Loading runs module code too: its parameters' defaults and annotations.
            fn = load_function(module, support, extra, declared)
            meta = ctx.finish(fn(*args, **kwargs))
    except DeadlineExceeded as exc:
        # Imports pause the limit, but one made another way (importlib.import_module,
        # a library's lazy import) may have been cut half-way: don't leave it broken.
        purge_partial_modules()
        error = timeout_error(module, time_limit, module_site(exc, module))
    except ModuleFailed as exc:
        failure, site = printable(exc.reason), module_site(exc, module)
    except SailError as exc:
        error = exc if exc.module and exc.location else type(exc)(
            exc.what, module=exc.module or module.name, location=exc.location or module_site(exc, module), fix=exc.fix)
    except NameError as exc:
        name = getattr(exc, "name", None) or str(exc)
        error = SailNameError(
            f"unknown name {name!r}", module=module.name, location=module_site(exc, module),
            fix=UNKNOWN_NAME_FIX,
        ) if raised_in(exc, module) else internal_error(exc, module)
    except RecursionError:
        error = DryRunError("the dry run recursed without end", module=module.name,
                            location=module.location, fix="remove the unbounded recursion")
    except Exception as exc:
        error = DryRunError(
            printable(f"{type(exc).__name__} during the dry run: {exc}"), module=module.name,
            location=module_site(exc, module),
            fix="during discovery data are typed placeholders and unbound parameters have no "
            "value: keep code that needs real values out of the discovery path, or give defaults",
        )
    except KeyboardInterrupt:
        raise  # the user's: a module's own is seen first in the probe process (see _probe)
    except BaseException as exc:
        # SystemExit (sys.exit, exit()), GeneratorExit, a bare BaseException: a module
        # must not be able to end discovery, the CLI or the kernel with them.
        error = escape_error(module, describe(exc), module_site(exc, module))
    suggestions = {k: v for k, v in ctx.suggestions.items() if k in unbound}
    return Trace(module.name, bindings, suggestions,
                 tuple(p for p in unbound if p not in suggestions), meta, failure, site, error,
                 any(p.observed for p in placeholders), tuple(ctx.files.items()))


def _arguments(module: ParsedModule, args: tuple[Any, ...],
               bindings: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[Param]]:
    """The keyword arguments of a dry run, its unbound parameters and their placeholders."""
    kwargs: dict[str, Any] = {}
    unbound = []
    placeholders = []
    for p in module.params[len(args):]:
        if p in bindings:
            kwargs[p] = bindings[p]
        elif p not in module.defaults:
            kwargs[p] = placeholder = Param(p, module.name)
            placeholders.append(placeholder)
            unbound.append(p)
    return kwargs, unbound, placeholders


def failed_trace(module: ParsedModule, args: tuple[Any, ...], bindings: Mapping[str, Any] | None,
                 error: SailError) -> Trace:
    """The trace of a dry run that ended in ``error`` without running here (the probe process saw it)."""
    bindings = dict(bindings or {})
    _, unbound, _ = _arguments(module, args, bindings)
    return Trace(module.name, bindings, {}, tuple(unbound), None, None, None, error, False, ())
