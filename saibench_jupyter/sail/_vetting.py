"""Module code tried in the probe process first (:mod:`._probe`), and what its verdicts mean.

Three places run code of the repository's modules in the process that asked for it:
a dry run (:func:`probed_dry_run`), loading a converter for its annotations
(:func:`probe_load`), and a type or capability declaration's class body, run when its
source is added (:func:`probe_declarations`). Each is tried in the probe process first;
what gets stuck there, raises what only ends processes, or ends the process becomes a
rejection or a registration error with its line and a fix, and never runs here.

Declarations whose evaluation can only run SAIL's own code (a docstring, methods,
constants, annotations made of SAIL types: what declarations almost always are) are not
sent at all.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._dryrun import DEFAULT_TIME_LIMIT, DryRun, dry_run, failed_trace
from ._dryrun_errors import escape_error, timeout_error
from ._errors import DryRunError, Location, SailError, SailSyntaxError
from ._meta import Trace
from ._parser import ParsedModule, ParsedSource
from ._probe import PROBE, Outcome, encode
from ._types import SailType, TypeVariable

#: How to fix a module that ended the process it ran in.
DIED_FIX = ("a module must not end its process: os._exit, os.kill, signals or native code that "
            "crashes have no place in its discovery path")


def start_probe() -> None:
    """Start the probe process in the background now, so that the first dry run does not wait for it.

    For a caller that knows discovery comes next (the ``saibench`` command): the process
    starts while the caller imports and parses. Nothing changes where it is not used.
    """
    PROBE.start_soon()


def dry_runs_in_process(reason: str) -> None:
    """Run module code of dry runs and declarations in this process from now on, with no probe process.

    Only for a process that is itself isolated and bounded, such as a pod: there a run
    stuck in C code ends with the pod at its timeout, and a probe process would only add
    its start-up to every pod. ``reason`` is kept as :attr:`Probe.unavailable`.
    """
    PROBE.keep_in_process(reason)


def probe_sources(sources: Iterable[ParsedSource]) -> None:
    """The sources the probe process must hold for the next dry runs (a repository's, in order)."""
    PROBE.want(sources)


def probed_dry_run(
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
    """:func:`~._dryrun.dry_run`, tried in the probe process first (see the module docstring).

    Parameters are those of :func:`~._dryrun.dry_run`; call :func:`probe_sources` with the
    repository's sources first. A run stuck in C code is stopped within ``time_limit`` +
    :data:`~._probe.GRACE` s (+ the time to take its stack), and reported at its line.
    """
    declared = declared or {}
    payload = encode((module, ctx, args, bindings, type_bindings), declared)
    outcome = _ask(("dry", time_limit, payload), time_limit, module.origin) if payload is not None \
        else Outcome("unvetted", detail="the request does not pickle")
    error = _error(outcome, module, time_limit)
    if error is not None:
        return failed_trace(module, args, bindings, error)
    return dry_run(module, ctx, args, bindings, support=support, declared=declared,
                   type_bindings=type_bindings, time_limit=time_limit)


def probe_load(module: ParsedModule, declared: Mapping[str, type],
               time_limit: float = DEFAULT_TIME_LIMIT) -> SailError | None:
    """Try loading ``module`` (its defaults and annotations run) in the probe process; its error, if any.

    None when loading may run here (it may still raise an ordinary exception: the caller's to report).
    """
    payload = encode((module,), declared)
    if payload is None:
        return None
    return _error(_ask(("load", time_limit, payload), time_limit, module.origin), module, time_limit)


def probe_declarations(text: str, origin: str, time_limit: float | None = None) -> SailSyntaxError | None:
    """Try the type and capability declarations of ``text`` in the probe process; the error, if any.

    Called before the source is parsed here (which evaluates them). None when they can
    run here: they finished there, or can only run SAIL's own code. ``time_limit`` is
    discovery's default when None.
    """
    time_limit = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
    if _CLASS.search(text) is None:
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None  # the parser says what is wrong
    classes = [s for s in tree.body if isinstance(s, ast.ClassDef)]
    risky = _running_user_code(classes)
    if not risky:
        return None
    outcome = PROBE.ask(("declare", time_limit, text, origin), time_limit, origin, mirrored=False)
    if outcome.kind not in _FAILED:
        return None
    line = outcome.line
    cls = next((c for c in classes if c.lineno <= line <= (c.end_lineno or c.lineno)), risky[0])
    where = Location(origin, line or cls.lineno, 0 if line else cls.col_offset)
    if outcome.kind in ("timeout", "stuck"):
        stuck = ": it was stuck in one long operation (C code), and the process evaluating it was stopped"
        return SailSyntaxError(
            f"the declaration of {cls.name} did not finish within {time_limit:g} s"
            f"{stuck if outcome.kind == 'stuck' else ''}", location=where,
            fix="type and capability declarations are evaluated when their source is added: "
            "keep loops and computations out of them (use only SAIL names and literals)")
    what = (f"raised {outcome.detail}" if outcome.kind == "raised"
            else f"ended the process evaluating it ({outcome.detail})")
    return SailSyntaxError(
        f"the declaration of {cls.name} {what}", location=where,
        fix="a declaration must not end the process (sys.exit(), exit(), SystemExit, KeyboardInterrupt, "
        "BaseException, os._exit): use only SAIL names and literals in it")


_FAILED = frozenset({"timeout", "stuck", "raised", "died"})
_CLASS = re.compile(r"^class\s", re.MULTILINE)  # a top-level class statement starts its line


def _ask(message: tuple[Any, ...], limit: float, origin: str) -> Outcome:
    outcome = PROBE.ask(message, limit, origin)
    if outcome.kind == "unknown":  # the process lacked a module: send every source again, once
        PROBE.resend()
        outcome = PROBE.ask(message, limit, origin)
        if outcome.kind == "unknown":
            outcome = Outcome("unvetted", detail=outcome.detail)
    return outcome


def _error(outcome: Outcome, module: ParsedModule, limit: float) -> SailError | None:
    """The error ``outcome`` means for ``module`` (None: run it here)."""
    if outcome.kind not in _FAILED:
        return None
    where = Location(module.origin, outcome.line or module.line)
    if outcome.kind in ("timeout", "stuck"):
        return timeout_error(module, limit, where, stuck=outcome.kind == "stuck")
    if outcome.kind == "raised":
        return escape_error(module, outcome.detail, where)
    return DryRunError(f"the dry run ended the process it ran in ({outcome.detail})", module=module.name,
                       location=where, fix=DIED_FIX)


# -- declarations that can run only SAIL's own code ---------------------------------------
def _running_user_code(classes: list[ast.ClassDef]) -> list[ast.ClassDef]:
    """The declarations among ``classes`` whose evaluation may run more than SAIL's own code."""
    from ._namespace import namespace
    from ._primitives import Capability

    sail = namespace()
    types = {n for n, v in sail.items() if isinstance(v, type) and issubclass(v, SailType)}
    bases = types | {n for n, v in sail.items() if isinstance(v, type) and issubclass(v, Capability)}
    declared: set[str] = set()
    risky = []
    for cls in classes:
        names = {b.id for b in cls.bases if isinstance(b, ast.Name)}
        if not names & (bases | declared):
            continue  # not a declaration: the parser does not run it
        declared.add(cls.name)
        # A base declared here may bring user code along (its __init_subclass__, a metaclass).
        if (cls.decorator_list or cls.keywords or not names <= bases
                or len(names) != len(cls.bases) or not all(_inert(s, types) for s in cls.body)):
            risky.append(cls)
    return risky


def _inert(stmt: ast.stmt, types: set[str]) -> bool:
    """True when running ``stmt`` in a class body can only run SAIL's own code."""
    if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
        return True
    if isinstance(stmt, ast.Assign):
        return all(isinstance(t, ast.Name) for t in stmt.targets) and _value(stmt.value, types)
    if isinstance(stmt, ast.AnnAssign):
        return (isinstance(stmt.target, ast.Name) and _value(stmt.annotation, types)
                and (stmt.value is None or _value(stmt.value, types)))
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
        # Only the defaults and annotations run now, not the body.
        a = stmt.args
        parts = [*a.defaults, *(d for d in a.kw_defaults if d is not None), *(
            x.annotation for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]
            if x.annotation is not None), *([stmt.returns] if stmt.returns else [])]
        return not stmt.decorator_list and all(_value(p, types) for p in parts)
    return False


def _value(node: ast.expr, types: set[str]) -> bool:
    """True for literals, names, attributes and SAIL type constructors (``Tensor(64)``) of those."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _value(node.value, types)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_value(e, types) for e in node.elts)
    if isinstance(node, ast.Subscript):  # of SAIL's types only: a declared class's __class_getitem__ is user code
        return isinstance(node.value, ast.Name) and node.value.id in types and _value(node.slice, types)
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Name) and node.func.id in types
                and all(_value(a, types) for a in node.args)
                and all(k.arg is not None and _value(k.value, types) for k in node.keywords))
    return False
