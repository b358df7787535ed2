"""docs/sail.md, the SAIL language reference: every public SAIL name is in it, and its examples run as written.

Fenced blocks of the reference are run through the real entry points:

* ```` ```python ```` blocks are executed as they are, each in a fresh namespace and a
  fresh working directory;
* ```` ```python notebook=NAME ```` blocks are the cells of notebook NAME, run in order
  through IPython with the extension loaded (``%%problem`` ... cells register modules,
  ``%sail discover`` discovers); a cell tagged ``error`` must be refused;
* a ```` ```text output ```` block right after one of those is what it prints: each of
  its lines must match a printed line, in order, with runs of spaces equal and ``…``
  standing for any text.
"""

from __future__ import annotations

import contextlib
import io
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import saibench_jupyter.sail as sail
from saibench_jupyter.ui import _reference
from saibench_jupyter.ui._magics import load_ipython_extension, unload_ipython_extension

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "sail.md"
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


@dataclass
class Block:
    """One fenced block of the reference that the tests run, and the output it must print."""

    line: int
    info: str
    text: str
    expected: str | None = None

    @property
    def notebook(self) -> str | None:
        found = re.search(r"\bnotebook=(\S+)", self.info)
        return found.group(1) if found else None

    @property
    def fails(self) -> bool:
        return "error" in self.info.split()

    def __repr__(self) -> str:
        return f"docs/sail.md:{self.line}"


def fenced(text: str) -> list[tuple[int, str, str]]:
    """Every fenced block: (line of its opening fence, info string, body)."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def runnable(text: str) -> list[Block]:
    """The blocks to run, each with the ``text output`` block that follows it (if any)."""
    out: list[Block] = []
    previous: Block | None = None
    for line, info, body in fenced(text):
        words = info.split()
        if words[:1] == ["python"]:
            previous = Block(line, info, body)
            out.append(previous)
        elif words == ["text", "output"]:
            if previous is None or previous.expected is not None:
                raise ValueError(f"docs/sail.md:{line}: an output block must follow a block that runs")
            previous.expected = body
        else:
            previous = None
    return out


def assert_prints(expected: str, printed: str, where: Block) -> None:
    """Each expected line matches a printed line, in order (spaces normalised, ``…`` is any text)."""
    lines = [" ".join(x.split()) for x in printed.splitlines()]
    at = 0
    for want in filter(None, (" ".join(x.split()) for x in expected.splitlines())):
        pattern = re.compile(".*".join(map(re.escape, want.split("…"))))
        at = next((i for i in range(at, len(lines)) if pattern.fullmatch(lines[i])), -1) + 1
        assert at, f"{where}: no line matching {want!r} (in order) in what the example printed:\n{printed}"


BLOCKS = runnable(REFERENCE.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.notebook is None]
NOTEBOOKS = sorted({b.notebook for b in BLOCKS if b.notebook})


def test_the_reference_names_every_public_sail_name():
    text = REFERENCE.read_text(encoding="utf-8")
    code = " ".join(re.findall(r"`([^`\n]+)`", text))
    public = {n for n in dir(sail) if not n.startswith("_") and not isinstance(getattr(sail, n), type(sail))}
    assert set(sail.__all__) <= public
    missing = sorted(n for n in public if not re.search(rf"(?<![\w.]){re.escape(n)}\b", code))
    assert not missing, f"docs/sail.md does not document {missing}: add them (in `code`)"


def test_the_reference_runs_every_python_block_and_checks_outputs():
    # Guards the harness itself: a python block that is neither plain nor a cell would silently not run.
    assert len(PYTHON) >= 8 and len(NOTEBOOKS) >= 5
    for line, info, _ in fenced(REFERENCE.read_text(encoding="utf-8")):
        words = info.split()
        if words[:1] == ["python"]:
            assert set(words[1:]) <= {"error"} | {w for w in words if w.startswith("notebook=")}, line
    assert sum(b.expected is not None for b in BLOCKS) >= 15


def test_the_reference_links_resolve():
    text = REFERENCE.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
        assert (REFERENCE.parent / target).is_file(), target


@pytest.mark.parametrize("block", PYTHON, ids=repr)
def test_python_example(block: Block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        # Padded so that a traceback names the reference's own line.
        exec(compile("\n" * block.line + block.text, str(REFERENCE), "exec"), {"__name__": "__doc_example__"})
    if block.expected is not None:
        assert_prints(block.expected, printed.getvalue(), block)


@pytest.fixture
def shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    unload_ipython_extension(ip)
    ip.extension_manager.loaded.discard("saibench_jupyter")  # each notebook starts with no module
    names = set(ip.user_ns)
    yield ip
    unload_ipython_extension(ip)
    ip.extension_manager.loaded.discard("saibench_jupyter")
    for name in set(ip.user_ns) - names:
        del ip.user_ns[name]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_example(name: str, shell, capsys):
    cells = [b for b in BLOCKS if b.notebook == name]
    if not cells[0].text.startswith("%load_ext"):
        load_ipython_extension(shell)
    for cell in cells:
        capsys.readouterr()
        result = shell.run_cell(cell.text)
        out, err = capsys.readouterr()
        error = result.error_before_exec or result.error_in_exec
        if cell.fails:
            assert error is not None, f"{cell}: the cell should be refused"
            out += f"\n{error}"
        else:
            assert error is None, f"{cell}: {error!r}\n{out}\n{err}"
        if cell.expected is not None:
            assert_prints(cell.expected, out + "\n" + err, cell)


def test_the_output_check_fails_on_output_that_differs():
    block = Block(1, "python", "")
    assert_prints("2 scenarios, … (…)\n✓ A × B", "2 scenarios, 1 rejection (3 ms)\n  ✓  A × B\n", block)
    with pytest.raises(AssertionError, match="no line matching '✓ A × C'"):
        assert_prints("✓ A × C", "✓ A × B\n", block)
    with pytest.raises(AssertionError, match="in order"):
        assert_prints("second\nfirst", "first\nsecond\n", block)


# -- where users find the reference ----------------------------------------------------------------
def test_sail_help_sail_shows_the_reference(shell, capsys):
    load_ipython_extension(shell)
    for topic in ("sail", "language"):
        shown = shell.run_line_magic("sail", f"help {topic}")
        out = capsys.readouterr().out
        assert f"The SAIL language reference: {REFERENCE}" in out
        assert shown._repr_markdown_() == REFERENCE.read_text(encoding="utf-8")
    shell.run_line_magic("sail", "help")
    assert "%sail help sail" in capsys.readouterr().out
    assert shell.run_line_magic("sail", "help run") is None
    assert "--executor" in capsys.readouterr().out
    with pytest.raises(UsageError, match=r"%sail help nonsense: no such topic; ask for sail \(the language reference\)"):
        shell.run_line_magic("sail", "help nonsense")


def test_the_reference_ships_inside_the_package(tmp_path, monkeypatch, shell):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert shipped["docs/sail.md"] == "saibench_jupyter/docs/sail.md"
    # Installed from a wheel, the package's copy is found (there is no checkout around it).
    package = tmp_path / "site-packages" / "saibench_jupyter"
    (package / "docs").mkdir(parents=True)
    (package / "docs" / "sail.md").write_text("# SAIL language reference\n", encoding="utf-8")
    monkeypatch.setattr(_reference, "PACKAGE", package)
    assert _reference.reference_path() == package / "docs" / "sail.md"
    (package / "docs" / "sail.md").unlink()
    with pytest.raises(FileNotFoundError, match="the SAIL language reference is not installed"):
        _reference.reference_path()
    load_ipython_extension(shell)
    with pytest.raises(UsageError, match="the SAIL language reference is not installed: reinstall"):
        shell.run_line_magic("sail", "help sail")


def test_the_readme_points_to_the_reference():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/sail.md" in readme
    assert "SAIL.md" not in readme.replace("docs/sail.md", "")
