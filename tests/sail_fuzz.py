"""A seeded fuzzer over SAIL sources: the repository's own modules, mutated, through registration and discovery.

The corpus is every SAIL source the project ships (``saibench_jupyter/examples``,
``sail_modules``, ``tests/sail``) and the SAIL cells of the quickstart notebook. Case ``i``
of seed ``s`` is one mutation of one corpus source, drawn from ``random.Random(f"{s}:{i}")``,
so the first 100 cases of the full run are the quick run's 100 cases. Mutations: token
deletion, duplication and swap; typos in names; numbers perturbed (zero, negative, huge,
infinite, a 5,000-digit literal) or nested thousands of levels deep; lines cut short;
indentation changed; statements only Python's compiler refuses (``break`` outside a loop,
``global`` of a parameter); and statements that
a module must not be able to smuggle past the harness (``sys.exit(3)``, ``raise
BaseException``) inserted into a module's body or a type declaration's body; lone
surrogates (``'\\ud800'``) inserted. Nothing inserts an endless loop.

Each case runs in a worker process (``python sail_fuzz.py serve``), so that a hang or a
crash of the interpreter is seen and bounded: ``Repository.add_source`` of the mutated
source, then ``discover`` over it beside the library's software, hardware and metrics.
A case's :class:`Outcome` is ``registered``, ``rejected`` (a :class:`SailError` with a line
and a fix), or one finding category (see :data:`CATEGORIES`).
"""

from __future__ import annotations

import io
import json
import keyword
import os
import random
import re
import select
import subprocess
import sys
import time
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The findings a case can have, by category: what each means.
CATEGORIES = {
    "system-exit": "SystemExit escaped add_source or discover (a module can end the kernel)",
    "base-exception": "a BaseException that is not an Exception escaped add_source or discover",
    "surrogate": "a lone surrogate in the source raised UnicodeEncodeError instead of a SailError",
    "crash": "another exception than a SailError escaped add_source or discover",
    "no-line": "a registration error without a line number",
    "no-fix": "a registration error without a fix",
    "rejection-no-line": "a discovery rejection without a line number",
    "rejection-no-fix": "a discovery rejection for an error in a dry run, without a fix",
    "hang": "the case did not finish within its time bound",
    "worker-died": "the worker process died (a crash of the interpreter)",
}
#: Per-case time bound (seconds): registration and a discovery whose dry runs stop at 0.5 s each.
CASE_SECONDS = 30.0
#: Cap on the worker's data memory: a mutated size (``[0] * 10**12``) must fail, not swap.
WORKER_MEMORY = 3 * 2**30
_DISCOVERY_CONTEXT = ("stacks", "metrics")


# =====================================================================================
# The corpus
# =====================================================================================
def corpus() -> list[tuple[str, str]]:
    """(name, text) of every shipped SAIL source that defines modules, in a fixed order."""
    files = sorted([*(ROOT / "saibench_jupyter" / "examples").rglob("*.py"), *(ROOT / "sail_modules").glob("*.py"),
                    *(ROOT / "tests" / "sail").glob("*.py")])
    out = [(str(f.relative_to(ROOT)), f.read_text(encoding="utf-8")) for f in files]
    out = [(name, text) for name, text in out if "Definition" in text]
    notebook = ROOT / "notebooks" / "quickstart.ipynb"
    if notebook.exists():
        cells = ["".join(c["source"]) for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
                 if c["cell_type"] == "code"]
        sail = [c.split("\n", 1)[1] for c in cells if re.match(r"%%(problem|model|metric|software|hardware|ranking|"
                                                               r"converter)\s*\n", c)]
        out.append(("notebooks/quickstart.ipynb (SAIL cells)", "\n\n".join(sail)))
    return out


# =====================================================================================
# Mutations: each returns the mutated text, or None where it does not apply
# =====================================================================================
Mutation = Callable[[str, random.Random], "str | None"]


#: A token: (kind, start offset, end offset, string).
Token = tuple[int, int, int, str]


def _tokens(text: str) -> list[Token]:
    """(kind, start offset, end offset, string) of the source's tokens that have text."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.string.strip() and tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
                (r0, c0), (r1, c1) = tok.start, tok.end
                out.append((tok.type, starts[r0 - 1] + c0, starts[r1 - 1] + c1, tok.string))
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _pick(rng: random.Random, items: list[Token], what: Callable[[Token], bool] = lambda t: True) -> Token | None:
    chosen = [t for t in items if what(t)]
    return rng.choice(chosen) if chosen else None


def delete_token(text: str, rng: random.Random) -> str | None:
    tok = _pick(rng, _tokens(text))
    return None if tok is None else text[:tok[1]] + text[tok[2]:]


def duplicate_token(text: str, rng: random.Random) -> str | None:
    tok = _pick(rng, _tokens(text))
    return None if tok is None else text[:tok[2]] + " " + tok[3] + text[tok[2]:]


def swap_tokens(text: str, rng: random.Random) -> str | None:
    toks = _tokens(text)
    if len(toks) < 2:
        return None
    i = rng.randrange(len(toks) - 1)
    a, b = toks[i], toks[i + 1]
    return text[:a[1]] + b[3] + text[a[2]:b[1]] + a[3] + text[b[2]:]


def typo(text: str, rng: random.Random) -> str | None:
    tok = _pick(rng, _tokens(text), lambda t: t[0] == tokenize.NAME and not keyword.iskeyword(t[3]))
    if tok is None:
        return None
    name = str(tok[3])
    i = rng.randrange(len(name))
    how = rng.choice(("drop", "double", "swap", "case", "replace"))
    if how == "drop" and len(name) > 1:
        new = name[:i] + name[i + 1:]
    elif how == "swap" and i < len(name) - 1:
        new = name[:i] + name[i + 1] + name[i] + name[i + 2:]
    elif how == "case":
        new = name[:i] + name[i].swapcase() + name[i + 1:]
    elif how == "replace":
        new = name[:i] + rng.choice("abcxyz_") + name[i + 1:]
    else:
        new = name[:i] + name[i] + name[i:]
    return text[:tok[1]] + new + text[tok[2]:]


#: What a number becomes: edge values, huge ones, and a literal Python refuses to parse.
NUMBERS = ("0", "-1", "1", "2", "0.5", "-0.0", "1e-308", "1e308", "1e999", "10**6", "10**12", "2**63", "10**100",
           "9" * 5000)


def perturb_number(text: str, rng: random.Random) -> str | None:
    tok = _pick(rng, _tokens(text), lambda t: t[0] == tokenize.NUMBER)
    if tok is None:
        return None
    return text[:tok[1]] + f"({rng.choice(NUMBERS)})" + text[tok[2]:]


def truncate_line(text: str, rng: random.Random) -> str | None:
    lines = text.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if len(line.strip()) > 1]
    if not candidates:
        return None
    i = rng.choice(candidates)
    line = lines[i].rstrip("\n")
    lines[i] = line[:rng.randrange(1, len(line))] + "\n"
    return "".join(lines)


def reindent(text: str, rng: random.Random) -> str | None:
    lines = text.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if line.strip()]
    if not candidates:
        return None
    i = rng.choice(candidates)
    body = lines[i].lstrip(" \t")
    indent = lines[i][:len(lines[i]) - len(body)]
    how = rng.choice(("add", "remove", "tab", "dedent", "odd"))
    indent = {"add": indent + "    ", "remove": "", "tab": indent.replace("    ", "\t"),
              "dedent": indent[4:], "odd": indent + " "}[how]
    lines[i] = indent + body
    return "".join(lines)


#: Statements a module must not smuggle past the harness (none of them loops).
ESCAPES = ("raise SystemExit(3)", "__import__('sys').exit(3)", "raise BaseException('fuzz')",
           "raise KeyboardInterrupt")


def insert_escape_in_module(text: str, rng: random.Random) -> str | None:
    """An escape statement after a line inside a function body, indented like the next line."""
    lines = text.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines[:-1]) if re.match(r"def \w+\(.*\).*:\s*$", line)
                  or (line.startswith("    ") and not line.rstrip().endswith((",", "(", "[", "\\", "{"))
                      and not line.strip().startswith(("@", "#", '"', "'")))]
    if not candidates:
        return None
    i = rng.choice(candidates)
    nxt = next((line for line in lines[i + 1:] if line.strip()), "    pass")
    indent = nxt[:len(nxt) - len(nxt.lstrip(" \t"))] or "    "
    lines.insert(i + 1, indent + rng.choice(ESCAPES) + "\n")
    return "".join(lines)


def add_declaration_with_escape(text: str, rng: random.Random) -> str | None:
    # Type and capability declarations are run at registration: their bodies are the way in.
    escape = rng.choice(ESCAPES)
    return text + f"\n\nclass FuzzType(SailType):\n    {escape}\n"


def deepen(text: str, rng: random.Random) -> str | None:
    """A number becomes an expression nested hundreds to a hundred thousand levels deep."""
    tok = _pick(rng, _tokens(text), lambda t: t[0] == tokenize.NUMBER)
    if tok is None:
        return None
    n = rng.choice((200, 1500, 5000, 100_000))
    deep = rng.choice(("-" * n + tok[3], "(" * min(n, 5000) + tok[3] + ")" * min(n, 5000), tok[3] + "+1" * n))
    return text[:tok[1]] + deep + text[tok[2]:]


#: Statements Python's parser accepts and only its symbol table or compiler refuses.
COMPILE_ERRORS = ("break", "continue", "nonlocal fuzz", "global task", "await fuzz", "x = [(yield) for _ in ()]",
                  "return [(yield y) for y in ()]")


def insert_compile_error(text: str, rng: random.Random) -> str | None:
    lines = text.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines[:-1]) if re.match(r"def \w+\(.*\).*:\s*$", line)]
    if not candidates:
        return None
    i = rng.choice(candidates)
    nxt = next((line for line in lines[i + 1:] if line.strip()), "    pass")
    lines.insert(i + 1, nxt[:len(nxt) - len(nxt.lstrip(" \t"))] + rng.choice(COMPILE_ERRORS) + "\n")
    return "".join(lines)


def lone_surrogate(text: str, rng: random.Random) -> str | None:
    strings = [t for t in _tokens(text) if t[0] == tokenize.STRING]
    if strings and rng.random() < 0.7:
        tok = rng.choice(strings)
        at = tok[2] - 1  # inside the quotes
        return text[:at] + "\ud800" + text[at:]
    at = rng.randrange(len(text) + 1)
    return text[:at] + "\udcff" + text[at:]


MUTATIONS: dict[str, Mutation] = {
    "delete-token": delete_token,
    "duplicate-token": duplicate_token,
    "swap-tokens": swap_tokens,
    "typo": typo,
    "number": perturb_number,
    "truncate-line": truncate_line,
    "indent": reindent,
    "escape-in-module": insert_escape_in_module,
    "declaration-with-escape": add_declaration_with_escape,
    "surrogate": lone_surrogate,
    "deep-expression": deepen,
    "compile-error": insert_compile_error,
}


@dataclass(frozen=True)
class Case:
    """One mutated source."""

    id: int
    source: str
    mutation: str
    text: str


def cases(n: int, seed: int = 15) -> list[Case]:
    """The first ``n`` cases of ``seed`` (mutations in turn, sources drawn; a prefix of any larger run)."""
    sources = corpus()
    names = list(MUTATIONS)
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        mutation = names[i % len(names)]
        for _ in range(20):  # a mutation may not apply to a source (no class declaration, no number)
            name, text = rng.choice(sources)
            mutated = MUTATIONS[mutation](text, rng)
            if mutated is not None and mutated != text:
                break
        else:
            mutation, mutated = "delete-token", delete_token(text, rng) or text
        out.append(Case(i, name, mutation, mutated))
    return out


# =====================================================================================
# Running a case (in the worker)
# =====================================================================================
@dataclass(frozen=True)
class Outcome:
    """What one case did: ``registered``, ``rejected`` or a finding category, with details."""

    id: int
    result: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def finding(self) -> bool:
        return self.result in CATEGORIES


def _escaped(exc: BaseException, where: str) -> tuple[str, str]:
    text = f"{where}: {type(exc).__name__}: {str(exc)[:300]!r}"
    if isinstance(exc, SystemExit):
        return "system-exit", text
    if not isinstance(exc, Exception):
        return "base-exception", text
    if isinstance(exc, UnicodeEncodeError) and "surrogates not allowed" in str(exc):
        return "surrogate", text
    return "crash", text


def run_case(text: str, origin: str) -> tuple[str, str]:
    """(result, detail) of registering ``text`` and discovering over it, in this process."""
    from saibench_jupyter import Machine, Repository, discover
    from saibench_jupyter.sail import SailError

    repo = Repository()
    for name in _DISCOVERY_CONTEXT:
        if not origin.endswith(f"sail_modules/{name}.py"):
            repo.add_source((ROOT / "sail_modules" / f"{name}.py").read_text(encoding="utf-8"), f"{name}.py")
    try:
        repo.add_source(text, origin)
    except SailError as exc:
        line = exc.location.line if exc.location else 0
        if not line:
            return "no-line", str(exc)[:500]
        if not exc.fix:
            return "no-fix", str(exc)[:500]
        result = "rejected"
    except BaseException as exc:  # what the fuzzer looks for: nothing else may escape
        return _escaped(exc, "add_source")
    else:
        result = "registered"
    try:
        lattice = discover(repo, machine=Machine(cpus=2, gpus=0, memory=2**33), time_limit=0.5)
    except BaseException as exc:
        return _escaped(exc, "discover")
    for r in lattice.rejections:
        if r.location is None or not r.location.line:
            return "rejection-no-line", str(r)[:500]
        # A module's own Fail or a misfit needs no fix; an error in its dry run does.
        if not r.fix and re.search(r"during the dry run|did not finish", r.reason):
            return "rejection-no-fix", str(r)[:500]
    return result, ""


def serve() -> None:
    """The worker: one JSON case per stdin line, one JSON (result, detail) per stdout line."""
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (WORKER_MEMORY, WORKER_MEMORY))
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # what module code prints goes to stderr, not into the answers
    for line in sys.stdin:
        case = json.loads(line)
        start = time.perf_counter()
        try:
            result, detail = run_case(case["text"], case["origin"])
        except BaseException as exc:  # e.g. a MemoryError while reporting
            result, detail = _escaped(exc, "worker")
        out.write(json.dumps({"result": result, "detail": detail, "seconds": time.perf_counter() - start}) + "\n")


# =====================================================================================
# Running many cases (in the test process)
# =====================================================================================
class _Worker:
    def __init__(self) -> None:
        import saibench_jupyter

        # The worker fuzzes the package this process imports (PYTHONPATH, or the installed one).
        package = str(Path(saibench_jupyter.__file__ or ROOT).parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, __file__, "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
                                     encoding="utf-8", bufsize=1)

    def ask(self, case: Case, timeout: float) -> tuple[str, str, float] | None:
        """(result, detail, seconds), or None when the case ran past ``timeout`` or the worker died."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        start = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps({"text": case.text, "origin": case.source}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return None
        answer = json.loads(line)
        return answer["result"], answer["detail"], time.perf_counter() - start

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def run(selected: Iterable[Case], timeout: float = CASE_SECONDS) -> Iterator[Outcome]:
    """Run ``selected`` cases in a worker; a hang or a dead worker is a finding, and a fresh worker goes on."""
    worker = _Worker()
    try:
        for case in selected:
            answer = worker.ask(case, timeout)
            if answer is None:
                hung, status = worker.proc.poll() is None, worker.proc.returncode
                worker.close()
                worker = _Worker()
                yield Outcome(case.id, "hang" if hung else "worker-died",
                              f"no answer within {timeout:g} s" if hung else f"exit status {status}", timeout)
            else:
                yield Outcome(case.id, *answer)
    finally:
        worker.close()


@dataclass
class Report:
    """The outcomes of a run, and its findings by category."""

    cases: list[Case]
    outcomes: list[Outcome]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.result] = out.get(o.result, 0) + 1
        return dict(sorted(out.items()))

    def findings(self, category: str) -> list[tuple[Case, Outcome]]:
        by_id = {c.id: c for c in self.cases}
        return [(by_id[o.id], o) for o in self.outcomes if o.result == category]

    def describe(self, category: str, limit: int = 5) -> str:
        """The findings of ``category``, a few of them with the mutation and the detail."""
        found = self.findings(category)
        lines = [f"{len(found)} of {len(self.outcomes)} cases: {CATEGORIES.get(category, category)}"]
        for case, outcome in found[:limit]:
            lines.append(f"  case {case.id} ({case.mutation} of {case.source}): {outcome.detail}")
        return "\n".join(lines)

    def to_json(self) -> str:
        by_id = {c.id: c for c in self.cases}
        return json.dumps([{**asdict(o), "mutation": by_id[o.id].mutation, "source": by_id[o.id].source}
                           for o in self.outcomes], indent=1)


def fuzz(n: int, seed: int = 15, timeout: float = CASE_SECONDS) -> Report:
    """Run the first ``n`` cases of ``seed``."""
    selected = cases(n, seed)
    return Report(selected, list(run(selected, timeout)))


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:  # python tests/sail_fuzz.py [N [SEED]]: the counts by result, and a few findings of each category
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
        report = fuzz(n, int(sys.argv[2]) if len(sys.argv) > 2 else 15)
        print(json.dumps(report.counts(), indent=1))
        for category in CATEGORIES:
            if report.findings(category):
                print(report.describe(category, limit=10))
