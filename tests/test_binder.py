"""binder/ gives a JupyterLab with SAIBench, its extension, the notebooks and the CPU PyTorch, as mybinder builds it.

mybinder.org's repo2docker copies the repository (``binder/requirements.txt`` names the local package ``.``,
so the whole repository comes first), then runs ``pip install -r binder/requirements.txt`` in its root with the
Python of ``binder/runtime.txt``, and serves the repository from JupyterLab in that same environment.

This test does the same in a fresh virtual environment: a copy of the files a clone would hold (tracked and
untracked-but-not-ignored; no build outputs), ``uv pip install -r binder/requirements.txt`` run in the copy's
root (uv, not pip, for speed; both read the file's options and resolve ``.`` against the working directory),
then JupyterLab from that environment on loopback, checked through its REST API and ``jupyter labextension list``.

One difference from mybinder, and only one: download.pytorch.org is out of reach here, so the copy's
``--extra-index-url`` line for PyTorch's CPU index is dropped and the machine's configured indexes supply the
same CPU wheel (``torch==2.13.0+cpu`` stays pinned). ``SAIBENCH_BINDER_TORCH_INDEX=<url>`` puts another index
there instead (the real one, on a machine that reaches it). Slow: ~140 packages (10-15 s with uv's cache warm
or cold from the local indexes) plus the extension's npm install and build (~80 s): run it with ``-m slow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from saibench_jupyter.pods._environments import _uv_env  # pip's indexes as uv's variables: one owner

ROOT = Path(__file__).resolve().parents[1]
PYTORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
TOKEN = "saibench-binder-test"
#: A cold build of ~150 packages plus the extension's npm install and build, on two shared cores.
INSTALL_TIMEOUT = 1500
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Binder:
    """The built environment and the JupyterLab it serves."""

    repo: Path
    venv: Path
    env: dict[str, str]
    url: str


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run ``command`` in its own session; on timeout kill the whole group (uv's npm and node children too)."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"{command[:3]} ran past {timeout} s:\n{out[-3000:]}")
    if process.returncode != 0:
        pytest.fail(f"{command[:3]} failed ({process.returncode}):\n{out[-5000:]}")
    return out


def _clone(destination: Path) -> Path:
    """The working tree's files a clone of it would hold: tracked and untracked-but-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not in a clone of it either
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def _for_this_machine(requirements: Path) -> None:
    """Drop (or replace) PyTorch's CPU index: the test's one change to binder/, explicit and checked."""
    text = requirements.read_text()
    assert PYTORCH_CPU_INDEX in text.splitlines(), "binder/requirements.txt must take torch from PyTorch's CPU index"
    index = os.environ.get("SAIBENCH_BINDER_TORCH_INDEX")
    replacement = f"--extra-index-url {index}" if index else "# (test) the CPU torch comes from this machine's indexes"
    requirements.write_text(text.replace(PYTORCH_CPU_INDEX, replacement))


def _python(runtime: Path) -> str:
    """The interpreter version binder/runtime.txt asks for (``python-3.11`` -> ``3.11``)."""
    found = re.fullmatch(r"python-(\d+\.\d+)", runtime.read_text().strip())
    assert found, f"binder/runtime.txt should read python-X.Y, not {runtime.read_text()!r}"
    return found[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict:
    with urllib.request.urlopen(f"{url}?token={TOKEN}", timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Binder]:
    """Build binder/'s environment in a fresh venv from a clean copy, and serve the copy from its JupyterLab."""
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    top = tmp_path_factory.mktemp("binder")
    repo = _clone(top / "repo")
    _for_this_machine(repo / "binder" / "requirements.txt")
    venv = top / "venv"
    # Nothing of this checkout may leak in: no PYTHONPATH, and Jupyter's user folders are the test's own.
    env = {k: v for k, v in _uv_env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(JUPYTER_CONFIG_DIR=str(top / "config"), JUPYTER_DATA_DIR=str(top / "data"),
               JUPYTER_RUNTIME_DIR=str(top / "runtime"), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
    started = time.monotonic()
    _run(["uv", "venv", "--python", _python(repo / "binder" / "runtime.txt"), str(venv)], top, env, 120)
    # repo2docker's `pip install --no-cache-dir -r binder/requirements.txt`, in the repository's root.
    _run(["uv", "pip", "install", "--python", str(venv / "bin" / "python"), "-r", "binder/requirements.txt"],
         repo, env, INSTALL_TIMEOUT)
    print(f"binder environment built in {time.monotonic() - started:.0f} s")
    port = _free_port()
    log = (top / "server.log").open("w")
    server = subprocess.Popen(
        [str(venv / "bin" / "jupyter-lab"), "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", "--ServerApp.allow_root=True",
         f"--ServerApp.root_dir={repo}"],
        cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _get(f"{url}/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (top / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield Binder(repo=repo, venv=venv, env=env, url=url)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and any kernels
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
        log.close()


@pytest.mark.slow
def test_binder_installs_saibench_with_the_cpu_torch(binder: Binder) -> None:
    code = ("import json, importlib.metadata as m, saibench_jupyter, jupyterlab;"
            "print(json.dumps([saibench_jupyter.__file__, m.version('torch'), m.version('jax'), m.version('scipy')]))")
    # Run outside the copy: Python puts the working directory first on sys.path.
    found, torch, _jax, _scipy = json.loads(_run([str(binder.venv / "bin" / "python"), "-c", code], binder.venv,
                                                 binder.env, 120).splitlines()[-1])
    assert Path(found).is_relative_to(binder.venv)  # installed in the environment, not this checkout
    assert torch == "2.13.0+cpu"


@pytest.mark.slow
def test_binder_lab_opens_every_notebook(binder: Binder) -> None:
    names = sorted(p.name for p in (binder.repo / "notebooks").glob("*.ipynb"))
    assert "quickstart.ipynb" in names  # the badge's urlpath opens it
    for name in names:
        model = _get(f"{binder.url}/api/contents/notebooks/{name}")
        assert (model["type"], model["name"]) == ("notebook", name)
        on_disk = json.loads((binder.repo / "notebooks" / name).read_text())
        assert len(model["content"]["cells"]) == len(on_disk["cells"])
    specs = _get(f"{binder.url}/api/kernelspecs")
    assert "python3" in specs["kernelspecs"]


@pytest.mark.slow
def test_binder_lab_has_the_saibench_extension(binder: Binder) -> None:
    package = binder.repo / "labextension" / "package.json"
    if not package.parent.is_dir():
        pytest.skip("no labextension/ in this repository yet")
    name = json.loads(package.read_text())["name"]
    listed = ANSI.sub("", _run([str(binder.venv / "bin" / "jupyter"), "labextension", "list"], binder.repo,
                               binder.env, 120))
    # The section of the environment's own labextensions folder, not a user's or the system's.
    after = listed.partition(str(binder.venv / "share" / "jupyter" / "labextensions"))[2].splitlines()[1:]
    section = after[:next((i for i, row in enumerate(after) if not row[:1].isspace()), len(after))]
    line = next((row for row in section if row.split()[:1] == [name]), None)
    assert line is not None, f"{name} is not in the environment's labextensions:\n{listed}"
    assert "enabled" in line.split() and "OK" in line.split(), line


def test_the_readme_badge_opens_the_quickstart_of_this_repository() -> None:
    badge = re.search(r"\(https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/HEAD\?urlpath=lab/tree/([^)\s]+)\)",
                      (ROOT / "README.md").read_text())
    assert badge, "README.md needs a mybinder badge opening JupyterLab on a notebook"
    assert badge[1] == "notebooks/quickstart.ipynb" and (ROOT / badge[1]).is_file()


def test_binder_runtime_satisfies_the_package() -> None:
    # With a binder/ folder repo2docker ignores pyproject's requires-python: runtime.txt alone picks Python.
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert _python(ROOT / "binder" / "runtime.txt") in SpecifierSet(requires)
