"""The module repository: SAIL modules by name, from cells, files, folders and packages.

A module's identity is its name: adding a module with a known name replaces the old
one. Adding a source under an ``origin`` (a file path, a notebook cell id) replaces
everything that origin held before, like saving a file. Listeners hear about every
change, which is what makes discovery incremental.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from .sail import (
    Location,
    ModuleKind,
    ParsedModule,
    ParsedSource,
    SailError,
    SailSyntaxError,
    describe,
    misspelt_name,
    parse,
    printable,
    probe_declarations,
    register_source,
    traceback_line,
)

ModuleRecord = ParsedModule
"""A registered module: name, kind, options, origin, line, source, digest (content hash)."""


@dataclass(frozen=True)
class RepositoryEvent:
    """A change of the repository: a module ``added``, ``replaced`` or ``removed``, or ``support`` code.

    A ``support`` event names the source (cell or file) whose support code changed; it
    carries no record, since no module changed, yet modules that use the code may now
    behave differently.
    """

    action: Literal["added", "replaced", "removed", "support"]
    name: str
    record: ModuleRecord | None
    previous: ModuleRecord | None


Listener = Callable[[RepositoryEvent], None]
T = TypeVar("T")
_anonymous = itertools.count(1)


class Repository:
    """SAIL modules by name, with their sources and change events.

    Examples
    --------
    >>> repo = Repository()
    >>> records = repo.add_source(open("mnist.py").read(), origin="mnist.py")  # doctest: +SKIP
    >>> [m.name for m in repo.modules("model")]  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._modules: dict[str, ModuleRecord] = {}
        self._sources: dict[str, ParsedSource] = {}
        self._listeners: list[Listener] = []
        self._support_names: frozenset[str] | None = None
        self._folders: tuple[int, dict[str, Path]] | None = None
        self._searched: list[Path] = []  # more folders, after the sources' own (search_also)
        self._attached: dict[str, Any] = {}
        self.version = 0

    # -- reading ----------------------------------------------------------------------
    def modules(self, kind: ModuleKind | str | None = None) -> list[ModuleRecord]:
        """The registered modules in registration order, optionally of one ``kind``."""
        if kind is None:
            return list(self._modules.values())
        k = ModuleKind(kind)
        return [m for m in self._modules.values() if m.kind is k]

    def get(self, name: str) -> ModuleRecord:
        """The module called ``name``.

        Raises
        ------
        KeyError
            With the known names when there is no such module.
        """
        try:
            return self._modules[name]
        except KeyError:
            known = ", ".join(self._modules) or "none"
            raise KeyError(f"no module {name!r} in the repository (modules: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __iter__(self) -> Iterator[ModuleRecord]:
        return iter(list(self._modules.values()))

    def __len__(self) -> int:
        return len(self._modules)

    def __repr__(self) -> str:
        counts = {k.value: len(self.modules(k)) for k in ModuleKind}
        return "Repository(" + ", ".join(f"{k}={n}" for k, n in counts.items() if n) + ")"

    @property
    def support_names(self) -> frozenset[str]:
        """Names defined by the support code of all sources (visible to every module)."""
        if self._support_names is None:
            self._support_names = frozenset().union(*(s.support_names for s in self._sources.values()))
        return self._support_names

    @property
    def declarations(self) -> dict[str, type]:
        """SAIL types and capabilities declared by support code, by name (visible to every module)."""
        out: dict[str, type] = {}
        for source in self._sources.values():
            out.update(source.declarations)
        return out

    def sources(self) -> dict[str, ParsedSource]:
        """Every registered source by origin (with its support code)."""
        return dict(self._sources)

    def search_path(self, origin: str) -> list[Path]:
        """Folders of the source files, ``origin``'s first: where relative input files are found.

        Discovery (reading a ``.npy`` header) and execution look in the same places, then
        in the current directory.
        """
        if self._folders is None or self._folders[0] != self.version:
            # One stat per source and version: discovery asks once per problem.
            found = {o: Path(o).parent for o in self._sources if Path(o).is_file()}
            self._folders = (self.version, found)
        folders = self._folders[1]
        own = folders.get(origin)
        if own is None and Path(origin).is_file():
            own = Path(origin).parent
        rest = [f for f in dict.fromkeys([*folders.values(), *self._searched]) if f != own]
        return rest if own is None else [own, *rest]

    def search_also(self, *folders: str | Path) -> None:
        """Look for relative input files in ``folders`` too, after the source files' own folders.

        A pod notebook holds its file sources in cells: the files' folders, where their inputs
        lie, are given here.
        """
        self._searched += [Path(f) for f in folders if Path(f) not in self._searched]

    def source_of(self, record: ModuleRecord) -> ParsedSource:
        """The source a module came from."""
        return self._sources[record.origin]

    def attached(self, key: str, make: Callable[[], T]) -> T:
        """What a layer above keeps for this repository under ``key``, made by ``make`` on first use.

        It lives as long as the repository (the planner keeps its memo here), so no
        module-level registry of repositories is needed.

        Parameters
        ----------
        key : str
            Whose it is (``"planner"``).
        make : callable
            ``make()`` makes it, once.

        Returns
        -------
        object
            What ``make`` made for this repository.
        """
        found = self._attached.get(key)
        if found is None:
            found = self._attached.setdefault(key, make())
        return found  # type: ignore[no-any-return]

    # -- changing -------------------------------------------------------------------
    def add_source(self, text: str, origin: str | None = None, *, known: Iterable[str] = (),
                   time_limit: float | None = None) -> list[ModuleRecord]:
        """Parse ``text`` and register its modules; return them.

        With an ``origin`` that was added before, the new text replaces the old one:
        modules the origin no longer defines are removed.

        Parameters
        ----------
        text : str
            SAIL source: modules and support code.
        origin : str, optional
            Its file path or cell id (a new anonymous origin without one).
        known : iterable of str
            Names defined elsewhere that are not misspellings (a notebook's own variables).
        time_limit : float, optional
            Seconds the source's type and capability declarations may take to evaluate
            (they run now; discover's default time limit when not given).

        Raises
        ------
        SailSyntaxError
            When the text does not parse, holds a lone surrogate character, or a type or
            capability declaration in it does not finish within ``time_limit``, raises
            what only ends processes (``SystemExit``, ``KeyboardInterrupt``...) or ends its
            process (it is tried in the probe process first: see ``sail._probe``).
        SailNameError
            For a name no support code defines that looks like a misspelt known one
            (``Tanhh``, ``Linaer``), with its line and the name it misspells. Other unknown
            names may come from a source added later: discovery reports them.
            Either way nothing changes: the previous good version of every module stays in
            place, and the message says which.
        """
        origin = origin or f"<source {next(_anonymous)}>"
        try:
            parsed = _parse(text, origin, time_limit)
        except SailSyntaxError as exc:
            raise self._refused(exc, origin) from None
        return self._register(parsed, frozenset(known))

    def _refused(self, exc: SailError, origin: str) -> SailError:
        """``exc``, saying which version of the source's modules stays in use."""
        kept = [m.name for m in self._modules.values() if m.origin == origin]
        note = (f"; the previous version of {', '.join(kept)} stays in use" if kept
                else "; nothing from this source was registered")
        # Made before the kept text goes back to linecache: it quotes the rejected line.
        refused = type(exc)(exc.what + note, module=exc.module, location=exc.location, fix=exc.fix)
        if origin in self._sources:
            # Later errors must quote the version that stays in use, not the rejected text.
            register_source(origin, self._sources[origin].text)
        return refused

    def _register(self, parsed: ParsedSource, known: frozenset[str]) -> list[ModuleRecord]:
        origin = parsed.origin
        defined = set(known).union(parsed.support_names,
                                   *(s.support_names for o, s in self._sources.items() if o != origin))
        for module in parsed.modules:
            error = misspelt_name(module, defined)
            if error is not None:
                raise self._refused(error, origin)
        events: list[RepositoryEvent] = []
        new_names = {m.name for m in parsed.modules}
        for old in [m for m in self._modules.values() if m.origin == origin and m.name not in new_names]:
            del self._modules[old.name]
            events.append(RepositoryEvent("removed", old.name, None, old))
        before = self._sources.get(origin)
        support_changed = (before.support_digest if before else None) != parsed.support_digest
        self._sources[origin] = parsed
        for record in parsed.modules:
            # Assigning in place keeps a replaced module where it was (stable order).
            previous = self._modules.get(record.name)
            self._modules[record.name] = record
            if previous is None:
                events.append(RepositoryEvent("added", record.name, record, None))
            elif previous.digest != record.digest or previous.origin != record.origin:
                events.append(RepositoryEvent("replaced", record.name, record, previous))
        self._forget_empty_sources()
        if support_changed and (parsed.support_names or before):
            events.append(RepositoryEvent("support", origin, None, None))
        self._emit(events)
        return list(parsed.modules)

    def load(self, path: str | Path) -> list[ModuleRecord]:
        """Register the modules of a file, of every ``.py`` file under a folder, or of a package.

        Files that fail to parse do not stop the others; a :class:`SailError` listing
        them is raised once everything else is registered.
        """
        files = _files_of(path)
        records: list[ModuleRecord] = []
        failures: list[str] = []
        parsed: list[ParsedSource] = []
        for file in files:
            try:
                parsed.append(_parse(_read(file), str(file), None))
            except SailSyntaxError as exc:
                failures.append(str(self._refused(exc, str(file))))
        # A module may use a helper of a file that comes later: all of them count as defined.
        support = frozenset().union(*(p.support_names for p in parsed))
        for source in parsed:
            try:
                records += self._register(source, support)
            except SailError as exc:
                failures.append(str(exc))
        if failures:
            raise SailError(
                f"{len(failures)} of {len(files)} files did not load "
                f"({len(records)} modules from the others are registered):\n" + "\n".join(failures),
                location=Location(str(path)), fix="fix the files named above and load again",
            )
        return records

    def remove(self, name: str) -> ModuleRecord:
        """Remove the module ``name`` and return its record."""
        record = self.get(name)
        del self._modules[name]
        self._forget_empty_sources()
        self._emit([RepositoryEvent("removed", name, None, record)])
        return record

    def clear(self) -> None:
        """Remove every module and source."""
        events = [RepositoryEvent("removed", n, None, r) for n, r in self._modules.items()]
        self._modules.clear()
        self._sources.clear()
        self._emit(events)

    # -- events ---------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on every change; return a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, events: list[RepositoryEvent]) -> None:
        if not events:
            return
        self._support_names = None
        self.version += 1
        for event in events:
            for listener in list(self._listeners):
                listener(event)

    def _forget_empty_sources(self) -> None:
        used = {m.origin for m in self._modules.values()}
        for origin in [o for o, s in self._sources.items() if o not in used and not s.support_names]:
            del self._sources[origin]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse(text: str, origin: str, time_limit: float | None) -> ParsedSource:
    """:func:`parse`, after the checks that keep every failure a :class:`SailSyntaxError` with its line.

    Declarations run when a source is parsed: they are tried in the probe process first
    (:func:`probe_declarations`), so one that loops, even in C code, or ends its process
    is refused with its line instead of hanging or ending this process.
    """
    bad = _SURROGATE.search(text)
    if bad is not None:
        at = bad.start()
        line, col = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1)
        register_source(origin, printable(text))  # the error quotes the line: escaped, it prints
        raise SailSyntaxError(
            f"a lone surrogate character ({printable(bad.group())}) at line {line}: "
            "a source must be valid Unicode text", location=Location(origin, line, col),
            fix="delete it; in a string, write it as an escape sequence ('\\ud800')")
    refused = probe_declarations(text, origin, time_limit)
    if refused is not None:
        raise refused
    try:
        return parse(text, origin)
    except (KeyboardInterrupt, Exception):
        raise  # the user's Ctrl-C; a SailSyntaxError (or a defect of the parser, not to hide)
    except BaseException as exc:
        # Where the probe process is not available, a declaration ran here: SystemExit & co.
        raise SailSyntaxError(printable(f"evaluating the source's declarations raised {describe(exc)}"),
                              location=Location(origin, traceback_line(exc, origin)),
                              fix="a declaration must not end the process (sys.exit(), exit(), SystemExit, "
                              "BaseException): use only SAIL names and literals in it") from None


def _read(file: Path) -> str:
    """The text of a source file; a :class:`SailSyntaxError` at its line when it is not UTF-8."""
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SailSyntaxError(
            f"{file.name} is not UTF-8 text: {exc.reason} (byte {data[exc.start]:#04x}) at line {line}",
            location=Location(str(file), line),
            fix="save the file as UTF-8; a lone surrogate (an encoded \\ud800) has no place in it") from None


def _files_of(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*.py")
                      if not any(part.startswith((".", "__pycache__")) for part in f.relative_to(p).parts))
    name = str(path)
    spec = None
    if all(part.isidentifier() for part in name.split(".")):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
    if spec is None:
        raise SailError(f"{path!s} is not a file, a folder or an importable package",
                        location=Location(str(path)), fix="give a path to a .py file or folder, or a package name")
    if spec.submodule_search_locations:
        return sorted(itertools.chain.from_iterable(_files_of(d) for d in spec.submodule_search_locations))
    return [Path(spec.origin)] if spec.origin else []
