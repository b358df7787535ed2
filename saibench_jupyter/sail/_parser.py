"""The SAIL parser: finds module definitions in source text without running it.

It reads the source with :mod:`ast`, recognises the seven decorators, validates their
options and the function signatures, separates *support code* (imports, helpers,
constants) from modules, rewrites what SAIL needs rewritten (list displays become
:class:`SailList`; a bare capability name in ``Require``/``Provides`` becomes
``Capability.named("Name")``) and compiles each module under a pseudo file name that
keeps the original line numbers, so tracebacks and errors point at the user's code.
"""

from __future__ import annotations

import ast
import builtins
import gc
import hashlib
import re
import symtable
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from ._decorators import DECORATORS, ModuleKind, validate_options
from ._depth import too_deep
from ._errors import Location, SailSyntaxError, register_source, source_filename
from ._namespace import namespace, sail_names
from ._tree import CAPABILITY_CALLS, Walk, rewrite, walk

_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True, eq=False)
class ParsedModule:
    """One module definition found in a source, ready to be dry-run or executed."""

    name: str
    kind: ModuleKind
    options: Mapping[str, Any]
    origin: str
    line: int
    end_line: int
    source: str
    doc: str | None
    params: tuple[str, ...]
    defaults: frozenset[str]
    digest: str
    #: global names the body reads that are neither SAIL names nor builtins
    free_names: frozenset[str]
    #: where each free name is first used: name -> (line, col)
    name_sites: Mapping[str, tuple[int, int]]
    code: CodeType = field(repr=False)

    @property
    def location(self) -> Location:
        """Where the module is defined."""
        return Location(self.origin, self.line)


@dataclass(frozen=True, eq=False)
class ParsedSource:
    """Everything in one source text: its modules and its support code."""

    origin: str
    text: str
    modules: tuple[ParsedModule, ...]
    support: str
    support_names: frozenset[str]
    support_digest: str
    #: SAIL type and capability classes the support code declares (evaluated, see
    #: :func:`_declarations`), by name
    declarations: Mapping[str, type] = field(default_factory=dict)


def _segments(text: str, nodes: list[ast.stmt]) -> list[str]:
    """The source text of each node, like ``ast.get_source_segment``.

    That function splits the whole text once per node, which made parsing a file
    quadratic in its number of statements; this splits it once.
    """
    lines = text.splitlines(keepends=True)
    out = []
    for node in nodes:
        end = node.end_lineno or node.lineno
        first, last = node.lineno - 1, end - 1
        # Column offsets are UTF-8 byte offsets.
        chunk = [ln.encode() for ln in lines[first:last + 1]]
        if not chunk:
            out.append("")
            continue
        chunk[-1] = chunk[-1][:node.end_col_offset]
        chunk[0] = chunk[0][node.col_offset:]
        out.append(b"".join(chunk).decode())
    return out


def parse(text: str, origin: str) -> ParsedSource:
    """Parse SAIL source ``text`` that came from ``origin``.

    Raises
    ------
    SailSyntaxError
        For invalid Python, a misused decorator, bad options or a bad signature;
        the message shows the line and the fix.
    """
    register_source(origin, text)  # errors quote the offending line, so register first
    # A source allocates ~100 AST nodes per module line, all acyclic: the cyclic collector
    # would scan them again and again (seen: more than half the time of 5,000 modules).
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, origin)
    except RecursionError:
        # The parser, the compiler or ast.dump recursed on a deeply nested expression.
        raise too_deep(text, origin) from None
    finally:
        if paused:
            gc.enable()


def _parse(text: str, origin: str) -> ParsedSource:
    filename = source_filename(origin)
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        raise _syntax_error(exc, origin) from None
    except MemoryError:
        # CPython's parser says "out of memory" when its stack overflows on deep nesting.
        raise too_deep(text, origin) from None
    # Every later check reads these lists: each statement's subtree is walked once.
    walks = [walk(stmt) for stmt in tree.body]
    _reject_nested_modules(tree.body, walks, origin)
    defs: list[tuple[ast.FunctionDef, ModuleKind, dict[str, Any], Walk]] = []
    support_stmts: list[ast.stmt] = []
    for stmt, below in zip(tree.body, walks):
        kind_options = _module_decorator(stmt, origin)
        if kind_options is None or not isinstance(stmt, ast.FunctionDef):
            support_stmts.append(stmt)
        else:
            defs.append((stmt, *kind_options, below))
    support_names = frozenset(_defined_names(support_stmts))
    declarations = _declarations(support_stmts, origin)
    support_text = "\n".join(_segments(text, support_stmts))
    support_digest = _digest("support", *(ast.dump(s) for s in support_stmts))
    # The symbol table's children (one per top-level def/class) are listed once: each call
    # of get_children() builds a wrapper per child, so asking per module was quadratic.
    try:
        # The symbol table also finds what ast.parse lets through: `global` of a
        # parameter, `nonlocal` at the top level, `yield` in a comprehension...
        table = symtable.symtable(text, filename, "exec")
    except SyntaxError as exc:
        raise _syntax_error(exc, origin) from None
    scopes = {(c.get_name(), c.get_lineno()): c for c in table.get_children()}
    lines = text.splitlines()
    seen: dict[str, int] = {}
    modules = []
    for fn, kind, options, below in defs:
        if fn.name in seen:
            raise SailSyntaxError(
                f"{fn.name} is defined twice in this source (lines {seen[fn.name]} and {fn.lineno})",
                location=Location(origin, fn.lineno, fn.col_offset),
                fix="rename one of them, or delete the older definition",
            )
        seen[fn.name] = fn.lineno
        modules.append(_parse_module(text, lines, origin, fn, below, kind, options,
                                     scopes[fn.name, fn.lineno], support_digest))
    return ParsedSource(origin, text, tuple(modules), support_text, support_names, support_digest,
                        declarations)


def _declarations(stmts: list[ast.stmt], origin: str) -> dict[str, type]:
    """Evaluate the support code's type and capability declarations.

    ``class Molecule(SailType): ...`` and ``class MDSoftware(Capability): ...`` are part of
    the language (discovery matches on them), so unlike other support code they are run
    when the source is added, once, in SAIL's namespace: their classes stay the same
    objects for every dry run.
    """
    from ._primitives import Capability
    from ._types import SailType

    ns = namespace()
    out: dict[str, type] = {}
    for stmt in stmts:
        if not isinstance(stmt, ast.ClassDef):
            continue
        bases = [ns.get(b.id, out.get(b.id)) for b in stmt.bases if isinstance(b, ast.Name)]
        if not any(isinstance(b, type) and issubclass(b, SailType | Capability) for b in bases):
            continue
        code = compile(ast.Module(body=[stmt], type_ignores=[]), source_filename(origin), "exec",
                       dont_inherit=True)
        local = {**ns, **out}
        try:
            exec(code, local)
        except Exception as exc:
            raise SailSyntaxError(
                f"the declaration of {stmt.name} failed: {type(exc).__name__}: {exc}",
                location=Location(origin, stmt.lineno, stmt.col_offset),
                fix="type and capability declarations are evaluated during discovery: "
                "use only SAIL names and literals in them",
            ) from None
        out[stmt.name] = local[stmt.name]
    return out


# -- errors -------------------------------------------------------------------------
def _syntax_error(exc: SyntaxError, origin: str) -> SailSyntaxError:
    line = exc.text or ""
    msg = exc.msg
    if "→" in line:
        fix = "write -> for a return annotation"
    elif re.search(r"\w\s*\.\.\s*\w", line):
        fix = "Python has no a..b ranges: slice with a:b+1 or use range(a, b+1)"
    elif "Maybe you meant '==' " in msg:
        fix = "compare with ==, not ="
    else:
        fix = "correct the Python syntax at the marked position"
    return SailSyntaxError(
        f"invalid Python: {msg}",
        location=Location(origin, exc.lineno or 0, max((exc.offset or 1) - 1, 0)),
        fix=fix,
    )


def _reject_nested_modules(top: list[ast.stmt], walks: list[Walk], origin: str) -> None:
    """Reject a module decorator below the top level; ``walks[i]`` is ``walk(top[i])``."""
    for stmt, (below, _) in zip(top, walks):
        for node in below:
            if node is stmt or not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for deco in node.decorator_list:
                name = decorator_name(deco)
                if name in DECORATORS:
                    raise SailSyntaxError(
                        f"@{name} on {node.name}, which is not at the top level of the source",
                        location=Location(origin, deco.lineno, deco.col_offset),
                        fix="define SAIL modules at the top level (not inside a function, class or if)",
                    )


def decorator_name(node: ast.expr) -> str | None:
    """The name a decorator calls: ``X`` for ``@X``, ``@X(...)`` and ``@sail.X`` (None for any other expression).

    The one reading of decorators, read as syntax only: the parser, the execution
    namespace, the notebook's cell scan and a results store's ranking list agree on
    which functions are SAIL modules.
    """
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _module_decorator(stmt: ast.stmt, origin: str) -> tuple[ModuleKind, dict[str, Any]] | None:
    if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return None
    found = [(d, decorator_name(d)) for d in stmt.decorator_list]
    sail = [(d, n) for d, n in found if n in DECORATORS]
    if not sail:
        return None
    deco, name = sail[0]
    where = Location(origin, deco.lineno, deco.col_offset)
    if len(sail) > 1:
        raise SailSyntaxError(
            f"{stmt.name} has two module decorators (@{name} and @{sail[1][1]})",
            location=where, fix="a module is of one kind: keep one decorator",
        )
    if not isinstance(stmt, ast.FunctionDef):
        what = "a class" if isinstance(stmt, ast.ClassDef) else "an async function"
        raise SailSyntaxError(f"@{name} decorates {what}, {stmt.name}", location=where,
                              fix="SAIL modules are plain functions (def, not class or async def)")
    if len(found) > 1:
        other = next(n for d, n in found if n not in DECORATORS)
        raise SailSyntaxError(
            f"{stmt.name} has another decorator (@{other}) beside @{name}",
            location=where, fix="SAIL modules take no other decorators: move the logic into the body",
        )
    options: dict[str, Any] = {}
    if isinstance(deco, ast.Call):
        if deco.args:
            raise SailSyntaxError(f"@{name}(...) takes options by keyword only", location=where,
                                  fix=f"write @{name}(option=value) or bare @{name}")
        for kw in deco.keywords:
            if kw.arg is None:
                raise SailSyntaxError(f"@{name}(**...) is not allowed", location=where,
                                      fix="spell the options out")
            try:
                options[kw.arg] = ast.literal_eval(kw.value)
            except (ValueError, TypeError, SyntaxError, MemoryError):
                # TypeError: an unhashable key ({[]: 1}); MemoryError: 1 << 10**9...
                raise SailSyntaxError(
                    f"@{name}({kw.arg}=...) must be a literal value", location=where,
                    fix="use a string, number, tuple or list literal",
                ) from None
    try:
        return DECORATORS[name], validate_options(DECORATORS[name], options)
    except ValueError as exc:
        raise SailSyntaxError(str(exc), location=where, fix="fix or remove the option") from None


# -- one module ---------------------------------------------------------------------
_ARITY = {
    ModuleKind.MODEL: (3, None, "(task, inputType, outputType, *hyper-parameters)"),
    ModuleKind.CONVERTER: (1, 1, "(value: FromType) -> ToType"),
    ModuleKind.SOFTWARE: (1, 1, "(hardware)"),
    # A ranking's one or two scenarios come first; its own parameters follow, each with a default.
    ModuleKind.RANKING: (1, None, "(result) for a score or (a, b) for a comparison"),
}


def _check_signature(fn: ast.FunctionDef, kind: ModuleKind, origin: str) -> None:
    a = fn.args
    where = Location(origin, fn.lineno, fn.col_offset)
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
        raise SailSyntaxError(
            f"{fn.name} uses *args, **kwargs, keyword-only or positional-only parameters",
            location=where, fix="SAIL modules take plain named parameters",
        )
    n = len(a.args)
    lo, hi, form = _ARITY.get(kind, (0, None, ""))
    if n < lo or (hi is not None and n > hi):
        got = ", ".join(x.arg for x in a.args)
        raise SailSyntaxError(
            f"{kind.value} {fn.name}({got}) has the wrong parameters",
            location=where, fix=f"a {kind.value} module is written {fn.name}{form}",
        )
    if kind is ModuleKind.CONVERTER and (a.args[0].annotation is None or fn.returns is None):
        raise SailSyntaxError(
            f"converter {fn.name} needs type annotations on its argument and its result",
            location=where, fix=f"write def {fn.name}(x: FromType) -> ToType:",
        )
    if kind is ModuleKind.METRIC and len(a.defaults) != n:
        raise SailSyntaxError(
            f"metric {fn.name} has parameters without defaults",
            location=where, fix="metrics do not multiply runs: give every parameter a default",
        )
    if kind is ModuleKind.RANKING:
        _check_ranking_signature(fn, where, form)


def _check_ranking_signature(fn: ast.FunctionDef, where: Location, form: str) -> None:
    """One or two scenarios without defaults, then the ranking's own parameters, each with a default."""
    a = fn.args
    names = [x.arg for x in a.args]
    scenarios = len(names) - len(a.defaults)
    if scenarios in (1, 2):
        return
    if scenarios == 0:
        why = (f"its first parameter, {names[0]}, is the scenario it reads and takes no default "
               "(a ranking's own parameters follow the one or two scenarios)")
    else:
        why = (f"{', '.join(names[2:scenarios])} {'has' if scenarios == 3 else 'have'} no default (after the one "
               "or two scenarios come the ranking's own parameters, each with a default: name=value)")
    raise SailSyntaxError(f"ranking {fn.name}({', '.join(names)}) has the wrong parameters: {why}",
                          location=where, fix=f"a ranking module is written {fn.name}{form}")


def _scan(nodes: list[ast.AST], text: str, origin: str, sail: frozenset[str]
          ) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """One pass over a module's nodes: the first site of every name, and the bare capability
    names in ``Require``/``Provides``; a paper-style ``0..i`` range is rejected."""
    sites: dict[str, tuple[int, int]] = {}
    capability_args: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Name):
            site = (node.lineno, node.col_offset)
            if node.id not in sites or site < sites[node.id]:
                sites[node.id] = site
        elif isinstance(node, ast.Call):
            f, args = node.func, node.args
            if isinstance(f, ast.Name) and f.id in CAPABILITY_CALLS and args and isinstance(args[0], ast.Name) \
                    and args[0].id not in sail:
                capability_args.add(args[0].id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, float):
            # The paper writes ranges as ``0..i``: valid Python ((0.).i), so ast accepts it.
            segment = ast.get_source_segment(text, node) or ""
            if re.match(r"\d+\.\.", segment):
                raise SailSyntaxError(
                    f"{segment} is not a range: Python reads it as the attribute {node.attr!r} of {node.value.value}",
                    location=Location(origin, node.lineno, node.col_offset),
                    fix="Python has no a..b ranges: slice with a:b+1 or use range(a, b+1)",
                )
    return sites, capability_args


def _parse_module(
    text: str, lines: list[str], origin: str, fn: ast.FunctionDef, walked: Walk,
    kind: ModuleKind, options: dict[str, Any], scope: symtable.SymbolTable, support_digest: str,
) -> ParsedModule:
    """One module; ``walked`` is ``walk(fn)``, ``scope`` its symbol table."""
    _check_signature(fn, kind, origin)
    sail = sail_names()
    first_sites, capability_args = _scan(walked[0], text, origin, sail)
    start = fn.decorator_list[0].lineno
    source = "\n".join(lines[start - 1 : fn.end_lineno])
    doc = ast.get_docstring(fn)
    body = fn.body[1:] if doc is not None and len(fn.body) > 1 else fn.body
    shape = ast.FunctionDef(fn.name, fn.args, body, [], fn.returns, None)
    digest = _digest(kind.value, fn.name, repr(sorted(options.items())), ast.dump(shape),
                     support_digest)

    # Annotations and defaults are evaluated where the function is defined, outside its scope.
    outside = [*fn.args.defaults, *(a.annotation for a in fn.args.args if a.annotation), *(
        [fn.returns] if fn.returns else [])]
    globals_read = _globals_read(scope) | {
        n.id for e in outside for n in ast.walk(e) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    free = frozenset(n for n in globals_read - capability_args if n not in sail and n not in _BUILTINS)
    sites = {n: first_sites[n] for n in free if n in first_sites}

    bare = ast.FunctionDef(fn.name, fn.args, fn.body, [], fn.returns, None, lineno=fn.lineno,
                           col_offset=fn.col_offset, end_lineno=fn.end_lineno,
                           end_col_offset=fn.end_col_offset)
    rewrite(walked, fn, bare, sail)
    module = ast.Module(body=[bare], type_ignores=[])
    # dont_inherit: our own `from __future__ import annotations` must not turn the
    # module's annotations (converter signatures) into strings.
    try:
        code = compile(module, source_filename(origin), "exec", dont_inherit=True)
    except SyntaxError as exc:  # `break` outside a loop, `await` outside async...
        raise _syntax_error(exc, origin) from None
    return ParsedModule(
        name=fn.name, kind=kind, options=options, origin=origin, line=fn.lineno,
        end_line=fn.end_lineno or fn.lineno, source=source, doc=doc,
        params=tuple(a.arg for a in fn.args.args),
        defaults=frozenset(a.arg for a in fn.args.args[len(fn.args.args) - len(fn.args.defaults):]),
        digest=digest, free_names=free, name_sites=sites, code=code,
    )


def _globals_read(scope: symtable.SymbolTable) -> set[str]:
    """Global names read in ``scope`` (a module's function) and the scopes nested in it."""
    names: set[str] = set()
    stack = [scope]
    while stack:
        t = stack.pop()
        names.update(s.get_name() for s in t.get_symbols() if s.is_global() and s.is_referenced())
        stack.extend(t.get_children())
    return names


def _defined_names(stmts: Iterable[ast.stmt]) -> Iterable[str]:
    for stmt in stmts:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield stmt.name
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                if alias.name != "*":
                    yield alias.asname or alias.name.split(".")[0]
        else:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    yield node.id


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]
