"""Module code that hangs in C, exits or ends its process: tried in the probe process, reported with its line.

Through the real entry points: ``Repository.add_source``, ``discover``, ``%sail discover``
in an IPython shell and ``saibench discover`` as a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import PAPER, load

from saibench_jupyter import Machine, Repository, discover
from saibench_jupyter.sail import SailSyntaxError
from saibench_jupyter.sail._probe import PROBE

MACHINE = Machine(cpus=2, gpus=0)
#: A model whose dry run holds the interpreter in one C call for hours (no bytecode boundary).
STUCK_IN_C = textwrap.dedent("""
    @ModelDefinition
    def Hog(task, inputType, outputType):
        width = 10
        total = sum(range(10**12))
        return Pipeline([Flatten(), Linear(width)])
""")


def with_mnist() -> Repository:
    repo = Repository()
    load(repo, "mnist", "stacks")
    return repo


def rejection_of(lattice, module: str):
    found = [r for r in lattice.rejections if r.module == module]
    assert found, f"{module} was not rejected: {lattice.rejections}"
    return found[0]


@pytest.fixture
def warm_probe():
    """The probe process started (its start-up is no part of a dry run's bound); it must be available."""
    discover(with_mnist(), machine=MACHINE, model="MLP")
    assert PROBE.unavailable is None


# -- stuck in C code ---------------------------------------------------------------------
def test_a_dry_run_stuck_in_c_code_is_stopped_within_its_limit_and_rejected_at_its_line(warm_probe):
    repo = with_mnist()
    repo.add_source(STUCK_IN_C, origin="hog")
    start = time.monotonic()
    lattice = discover(repo, machine=MACHINE, time_limit=0.3)
    assert time.monotonic() - start < 0.3 + 2
    r = rejection_of(lattice, "Hog")
    assert r.reason.startswith("the dry run did not finish within 0.3 s: it was stuck in one long operation (C code")
    assert (r.location.origin, r.location.line) == ("hog", 5)
    assert "belongs in execution" in r.fix
    # Discovery goes on (a fresh probe process) and finds what fits.
    assert {s.model for s in lattice.scenarios} == {"MLP"}
    again = discover(with_mnist(), machine=MACHINE, model="MLP", time_limit=0.31)
    assert again.scenarios and not [r for r in again.rejections if r.kind == "model"]


def test_the_bound_counts_no_import(warm_probe, tmp_path, monkeypatch):
    # A slow import (torch on a busy machine) is not a stuck run: only what follows counts.
    (tmp_path / "saib_probe_slow.py").write_text("import time\ntime.sleep(1.6)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    repo = with_mnist()
    repo.add_source(STUCK_IN_C.replace("total = sum(range(10**12))", "import saib_probe_slow"), origin="slow")
    lattice = discover(repo, machine=MACHINE, time_limit=0.3)
    assert "Hog" in {s.model for s in lattice.scenarios}
    sys.modules.pop("saib_probe_slow", None)


def test_ctrl_c_interrupts_discovery_waiting_on_a_stuck_dry_run(warm_probe):
    repo = with_mnist()
    repo.add_source(STUCK_IN_C, origin="hog")
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        discover(repo, machine=MACHINE, time_limit=30)
    assert time.monotonic() - start < 5
    lattice = discover(with_mnist(), machine=MACHINE, model="MLP")  # the next one starts a new process
    assert lattice.scenarios


def test_sail_discover_in_the_kernel_survives_a_model_stuck_in_c_code(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from saibench_jupyter.ui._magics import load_ipython_extension, unload_ipython_extension

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    unload_ipython_extension(shell)
    load_ipython_extension(shell)
    try:
        shell.run_line_magic("sail", f"load {PAPER / 'mnist.py'}")
        shell.run_line_magic("sail", f"load {PAPER / 'stacks.py'}")
        assert shell.run_line_magic("sail", "discover").scenarios  # the probe process is up
        shell.run_cell_magic("model", "", STUCK_IN_C)
        start = time.monotonic()
        lattice = shell.run_line_magic("sail", "discover")  # the notebook's default limit: 2 s
        assert time.monotonic() - start < 2 + 2
        r = rejection_of(lattice, "Hog")
        assert "stuck in one long operation" in r.reason and r.location.line == 6  # line 1: %%model
        result = shell.run_cell("after = 6 * 7")
        assert result.success and shell.user_ns["after"] == 42
    finally:
        unload_ipython_extension(shell)


# -- what only ends processes, in a module ------------------------------------------------
ESCAPES = {
    "sys.exit(4)": ("import sys\n    sys.exit(4)", "SystemExit: 4"),
    "exit()": ("exit()", "SystemExit"),
    "raise SystemExit": ("raise SystemExit", "SystemExit"),
    "raise GeneratorExit": ("raise GeneratorExit", "GeneratorExit"),
    "raise BaseException": ("raise BaseException('out')", "BaseException: out"),
    "raise KeyboardInterrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
}


@pytest.mark.parametrize("statement", list(ESCAPES))
def test_a_model_that_exits_or_raises_a_base_exception_is_rejected_at_its_line(statement):
    code, what = ESCAPES[statement]
    repo = with_mnist()
    repo.add_source(textwrap.dedent("""
        @ModelDefinition
        def Quitter(task, inputType, outputType):
            width = 10
            {code}
            return Linear(width)
    """).format(code=code), origin="quitter")
    lattice = discover(repo, machine=MACHINE)
    r = rejection_of(lattice, "Quitter")
    assert r.reason == f"{what} raised during the dry run"
    assert r.location.line == (6 if "sys.exit" in statement else 5)
    assert "must not end the process" in r.fix and "Fail(reason)" in r.fix


def test_a_model_that_ends_its_process_is_rejected_and_the_caller_lives_on(warm_probe):
    repo = with_mnist()
    repo.add_source(STUCK_IN_C.replace("total = sum(range(10**12))", "import os\n    os._exit(3)"), origin="ender")
    r = rejection_of(discover(repo, machine=MACHINE), "Hog")
    assert r.reason == "the dry run ended the process it ran in (exit status 3)"
    assert "must not end its process" in r.fix


def test_a_converter_whose_annotation_exits_is_rejected():
    repo = with_mnist()
    repo.add_source(textwrap.dedent("""
        @ConverterDefinition
        def Leave(x: Tensor(3)) -> exit(5):
            return x
    """), origin="leave")
    r = rejection_of(discover(repo, machine=MACHINE), "Leave")
    assert (r.reason, r.location.line) == ("SystemExit: 5 raised during the dry run", 3)


def test_saibench_discover_prints_the_rejection_of_a_module_that_exits_and_ends_normally(tmp_path):
    for name in ("mnist", "stacks"):
        (tmp_path / f"{name}.py").write_text((PAPER / f"{name}.py").read_text())
    (tmp_path / "quit.py").write_text(textwrap.dedent("""
        @ModelDefinition
        def Quitter(task, inputType, outputType):
            import sys
            sys.exit(4)
    """))
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "saibench_jupyter.cli", "discover", str(tmp_path),
                           "--hardware", "CPU"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "✗ model Quitter for problem MNIST: SystemExit: 4 raised during the dry run" in done.stdout
    assert "quit.py, line 5" in done.stdout


# -- declarations run at registration ----------------------------------------------------
@pytest.mark.parametrize("statement", list(ESCAPES))
def test_a_declaration_that_exits_or_raises_a_base_exception_is_refused_at_its_line(statement):
    code, what = ESCAPES[statement]
    text = f"x = 1\n\nclass Molecule(SailType):\n    n = 2\n    {code}\n"
    repo = Repository()
    with pytest.raises(SailSyntaxError, match=rf"the declaration of Molecule raised {what}"
                                              r"; nothing from this source was registered") as caught:
        repo.add_source(text, origin="decl")
    assert caught.value.location.line == (6 if "sys.exit" in statement else 5)
    assert "must not end the process" in caught.value.fix
    assert len(repo) == 0


@pytest.mark.parametrize("body", ["while True:\n        pass", "n = sum(range(10**12))"])
def test_a_declaration_that_never_ends_is_refused_within_the_limit(warm_probe, body):
    repo = Repository()
    start = time.monotonic()
    with pytest.raises(SailSyntaxError, match=r"the declaration of Slow did not finish within 0.3 s") as caught:
        repo.add_source(f"class Slow(SailType):\n    size = 3\n    {body}\n", origin="slow", time_limit=0.3)
    assert time.monotonic() - start < 0.3 + 2
    assert caught.value.location.line == 3
    assert "keep loops and computations out" in caught.value.fix


def test_plain_declarations_are_not_sent_to_the_probe_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("sent to the probe process")

    monkeypatch.setattr(PROBE, "ask", refuse)
    repo = Repository()
    repo.add_source(textwrap.dedent('''
        class Molecule(SailType):
            """A molecule."""
            atoms: int = 3

        class Spectrometer(Capability):
            def Measure(self, m: Molecule, scale: float = -1.0) -> Tensor(64): ...
    '''), origin="plain")
    assert set(repo.declarations) == {"Molecule", "Spectrometer"}
    with pytest.raises(AssertionError, match="sent to the probe process"):
        repo.add_source("class Odd(SailType):\n    n = len('abc')\n", origin="odd")


def test_an_escaped_surrogate_in_a_string_reaches_the_rejection_printable():
    repo = with_mnist()
    repo.add_source('@ModelDefinition\ndef Odd(task, i, o):\n    Fail("no \\ud800 here")\n', origin="odd")
    r = rejection_of(discover(repo, machine=MACHINE), "Odd")
    assert r.reason == "no \\ud800 here" and r.location.line == 3
    str(r).encode("utf-8")


def test_without_a_probe_process_module_code_runs_here_under_the_deadline(monkeypatch):
    import saibench_jupyter.sail._vetting as vetting
    from saibench_jupyter.sail._probe import Probe

    lonely = Probe()
    monkeypatch.setattr(vetting, "PROBE", lonely)
    monkeypatch.setattr(sys, "executable", "/no/such/python")
    repo = with_mnist()
    repo.add_source(STUCK_IN_C.replace("total = sum(range(10**12))", "while True:\n        pass"), origin="loop")
    lattice = discover(repo, machine=MACHINE, time_limit=0.3)
    assert lonely.unavailable.startswith("the probe process did not start: ")
    assert rejection_of(lattice, "Hog").reason == "the dry run did not finish within 0.3 s"
    assert {s.model for s in lattice.scenarios} == {"MLP"}
    with pytest.raises(SailSyntaxError, match=r"evaluating the source's declarations raised SystemExit: 3") as caught:
        Repository().add_source("class Molecule(SailType):\n    exit(3)\n", origin="decl")
    assert caught.value.location.line == 2


def test_a_probe_process_started_from_a_passing_thread_outlives_the_thread():
    # Linux kills a child asking to die with its parent when the parent *thread* ends.
    PROBE.stop()
    worker = threading.Thread(target=discover, args=(with_mnist(),), kwargs={"machine": MACHINE, "model": "MLP"})
    worker.start()
    worker.join()
    pid = PROBE._proc.pid
    time.sleep(0.3)
    assert PROBE._proc is not None and PROBE._proc.pid == pid and PROBE._proc.poll() is None


def test_a_probe_started_ahead_serves_the_next_discovery_and_a_dead_one_is_replaced():
    from saibench_jupyter.sail import start_probe

    PROBE.stop()
    started = time.monotonic()
    start_probe()  # what `saibench run` does before it loads the sources
    assert time.monotonic() - started < 0.1  # it does not wait for the process to come up
    pid = PROBE._proc.pid
    lattice = discover(with_mnist(), machine=MACHINE, model="MLP")
    assert lattice.scenarios and PROBE.unavailable is None and PROBE._proc.pid == pid
    start_probe()  # running already: nothing more is started
    assert PROBE._proc.pid == pid
    PROBE.stop()
    start_probe()
    killed = PROBE._proc.pid
    os.killpg(killed, signal.SIGKILL)  # dies before it said it was ready
    PROBE._proc.wait(10)
    lattice = discover(with_mnist(), machine=MACHINE, model="MLP")
    assert lattice.scenarios and PROBE.unavailable is None and PROBE._proc.pid != killed
