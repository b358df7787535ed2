"""Pod environments: requirement checks, real uv builds, the cache, the lock, failures and conda."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saibench_jupyter.pods._environments import (
    MANIFEST,
    EnvironmentBuildError,
    Interpreter,
    environment_key,
    provision,
    unmet,
)

#: A tiny pure-Python package on the package index that this interpreter does not have.
TINY, TINY_MODULE = "tomli-w", "tomli_w"
RUNNING = platform.python_version()
MAJOR_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


def env(pip: list[str] | None = None, conda: list[str] | None = None, python: str | None = None) -> dict:
    return {"backend": "numpy", "pip": pip or [], "conda": conda or [], "python": python}


def imports(interpreter: Interpreter, *modules: str) -> str:
    """Run the interpreter for real: print where each module comes from."""
    code = "; ".join(f"import {m}; print({m}.__file__)" for m in modules)
    done = subprocess.run([interpreter.python, "-c", code], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Interpreter, list[str], Path]:
    """One real uv build, shared by the tests that need it (it installs numpy, pandas, scikit-learn ...).

    The cache starts with a half-built environment under the same key (a build that died
    before writing its manifest), which this build must replace.
    """
    cache = tmp_path_factory.mktemp("envs")
    broken = cache / environment_key([TINY], [], None)
    (broken / "bin").mkdir(parents=True)
    (broken / "bin" / "python").write_text("not a python")
    lines: list[str] = []
    return provision(env(pip=[TINY]), cache_dir=cache, progress=lines.append), lines, cache


def test_tiny_package_is_not_installed_here():
    # The build tests mean something only when the package must come from the index.
    assert unmet([TINY]) == [f"{TINY}: not installed"]


def test_malformed_requirements_raise_with_a_fix():
    with pytest.raises(ValueError, match=r"environment\['pip'\] must be a list of requirement strings"):
        provision(env() | {"pip": "numpy"})


def test_environment_key_ignores_spelling_and_order():
    key = environment_key(["scipy>=1.11", "tomli-w"], [], None)
    assert len(key) == 16 and int(key, 16) >= 0
    assert environment_key(["tomli-w", "scipy >= 1.11"], [], None) == key
    assert environment_key(["scipy>=1.12", "tomli-w"], [], None) != key
    assert environment_key(["scipy>=1.11", "tomli-w"], [], "3.12") != key
    assert environment_key(["scipy>=1.11", "tomli-w"], ["ase"], None) != key


def test_met_requirements_run_in_the_current_interpreter(tmp_path):
    lines: list[str] = []
    got = provision(env(pip=["numpy>=1.0"], conda=["numpy"], python=MAJOR_MINOR), cache_dir=tmp_path,
                    progress=lines.append)
    assert got == Interpreter(sys.executable, "current", None, False)
    assert lines == [] and list(tmp_path.iterdir()) == []


def test_a_uv_build_installs_the_requirements_and_saibench_jupyter(built):
    got, lines, cache = built
    assert got.built and got.key == environment_key([TINY], [], None) and got.prefix == cache / got.key
    assert got.python == str(got.prefix / "bin" / "python")
    where = imports(got, "saibench_jupyter", TINY_MODULE).splitlines()
    assert Path(where[0]).resolve() == Path(__file__).resolve().parents[1] / "saibench_jupyter" / "__init__.py"
    assert str(got.prefix) in where[1]
    assert lines[1].startswith(f"building environment {got.key[:8]}… for pip: {TINY} (uv)")
    assert any("virtual environment created" in line for line in lines)
    assert any(line.strip().startswith("installing ") for line in lines)
    assert any("linking saibench_jupyter" in line for line in lines)
    assert lines[-1].startswith(f"environment {got.key[:8]}… ready in ")
    manifest = json.loads((got.prefix / MANIFEST).read_text())
    assert manifest["tool"] == "uv" and manifest["requirements"]["pip"] == [TINY]
    assert manifest["python"] == RUNNING and manifest["build_seconds"] > 0
    assert any(r.startswith("numpy") for r in manifest["installed"])  # the core requirements came too


def test_a_second_provision_is_a_quick_cache_hit(built):
    first, _, cache = built
    lines: list[str] = []
    start = time.perf_counter()
    again = provision(env(pip=[TINY]), cache_dir=cache, progress=lines.append)
    assert time.perf_counter() - start < 1.0
    assert again == Interpreter(first.python, first.key, first.prefix, False)
    assert lines == []


def test_a_half_built_environment_is_rebuilt(built):
    got, lines, _ = built
    assert lines[0] == f"removing environment {got.key[:8]}…: half-built (no {MANIFEST}) or its Python is gone"
    assert got.built and (got.prefix / MANIFEST).is_file()


def test_a_build_in_progress_elsewhere_is_waited_for_not_repeated(built, tmp_path):
    import fcntl
    import threading

    got, _, _ = built
    lines: list[str] = []
    result: list[Interpreter] = []
    with open(tmp_path / f"{got.key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pod is building this environment
        waiter = threading.Thread(target=lambda: result.append(
            provision(env(pip=[TINY]), cache_dir=tmp_path, progress=lines.append)))
        waiter.start()
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lines == [f"waiting for another process building environment {got.key[:8]}…"]
        (tmp_path / got.key).symlink_to(got.prefix)  # ... and finishes it
    waiter.join(30)
    assert result == [Interpreter(str(tmp_path / got.key / "bin" / "python"), got.key, tmp_path / got.key, False)]
    assert len(lines) == 1


def test_a_failing_build_raises_with_uvs_message_and_leaves_nothing_ready(tmp_path):
    lines: list[str] = []
    with pytest.raises(EnvironmentBuildError, match=r"could not install saibench-no-such-package-xyz with saibench_jupyter's \d+ core requirements"
                       r"(.|\n)*fix: check that each requirement exists") as caught:
        provision(env(pip=["saibench-no-such-package-xyz"]), cache_dir=tmp_path, progress=lines.append)
    assert "saibench-no-such-package-xyz" in caught.value.log and "not found" in caught.value.log
    assert caught.value.log in str(caught.value)
    key = environment_key(["saibench-no-such-package-xyz"], [], None)
    assert not (tmp_path / key).exists()
    assert lines[0].startswith(f"building environment {key[:8]}")


def test_a_python_uv_cannot_find_names_the_version(tmp_path, monkeypatch):
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")  # fail at once instead of trying to download it
    with pytest.raises(EnvironmentBuildError, match=r"uv could not create a virtual environment with Python 3\.99"
                       r"(.|\n)*fix: install Python 3\.99 \(uv python install 3\.99\) or drop python="):
        provision(env(pip=[TINY], python="3.99"), cache_dir=tmp_path, progress=lambda _: None)
    assert not (tmp_path / environment_key([TINY], [], "3.99")).exists()


def test_conda_requirements_go_through_micromamba_on_path(tmp_path, monkeypatch):
    bin_dir, record = tmp_path / "bin", tmp_path / "argv.json"
    bin_dir.mkdir()
    fake = bin_dir / "micromamba"
    # A fake micromamba: records its argv, and makes the prefix (after -p) a real venv.
    fake.write_text(f"#!{sys.executable}\n"
                    "import json, subprocess, sys\n"
                    f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
                    "prefix = sys.argv[sys.argv.index('-p') + 1]\n"
                    f"subprocess.run([{sys.executable!r}, '-m', 'venv', '--without-pip', prefix], check=True)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    lines: list[str] = []
    cache = tmp_path / "envs"
    got = provision(env(pip=[TINY], conda=["saibench-fake-conda-pkg=1.0"]), cache_dir=cache, progress=lines.append)
    assert json.loads(record.read_text()) == ["create", "-y", "-p", str(cache / got.key), f"python={MAJOR_MINOR}",
                                              "saibench-fake-conda-pkg=1.0"]
    assert got.built and "(micromamba + uv)" in lines[0]
    assert json.loads((got.prefix / MANIFEST).read_text())["tool"] == "micromamba"
    imports(got, "saibench_jupyter", TINY_MODULE)


def test_unmet_conda_requirements_without_a_conda_tool_raise_with_the_fix(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # uv stays reachable through uv.find_uv_bin()
    with pytest.raises(EnvironmentBuildError, match=r"the conda requirements saibench-fake-conda-pkg=1\.0 are not "
                       r"met here and no conda tool(.|\n)*fix: install micromamba, mamba or conda on PATH, or give "
                       r"these as pip requirements"):
        provision(env(pip=["numpy"], conda=["numpy", "saibench-fake-conda-pkg=1.0"]), cache_dir=tmp_path,
                  progress=lambda _: None)
    assert not (tmp_path / environment_key(["numpy"], ["numpy", "saibench-fake-conda-pkg=1.0"], None)).exists()


def test_waiting_for_another_build_gives_up_after_the_timeout(tmp_path):
    import fcntl
    import threading

    key = environment_key([TINY], [], None)
    outcome: list[Exception] = []

    def attempt() -> None:
        try:
            provision(env(pip=[TINY]), cache_dir=tmp_path, progress=lambda _: None, timeout=1)
        except Exception as exc:
            outcome.append(exc)

    with open(tmp_path / f"{key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process builds it, and never finishes
        waiter = threading.Thread(target=attempt, daemon=True)
        waiter.start()
        waiter.join(30)
        assert not waiter.is_alive(), "provision() waited for the other build for good"
    (error,) = outcome
    assert isinstance(error, EnvironmentBuildError)
    assert str(error).startswith(f"another process has been building environment {key[:8]}… for more than 1 s")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="looks for the child in /proc")
def test_a_build_tool_past_its_timeout_is_stopped_with_its_children(tmp_path, monkeypatch):
    bin_dir, child = tmp_path / "bin", tmp_path / "child.pid"
    bin_dir.mkdir()
    fake = bin_dir / "micromamba"
    # A micromamba that hangs, with a child holding its output.
    fake.write_text(f"#!{sys.executable}\n"
                    "import os, time\n"
                    "pid = os.fork()\n"
                    f"if pid: open({str(child)!r}, 'w').write(str(pid))\n"
                    "time.sleep(120)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(EnvironmentBuildError, match=r"micromamba could not create the environment for conda: "
                       r"saibench-fake-conda-pkg=1\.0: `.*micromamba create .*` did not finish in 1 s"):
        provision(env(pip=[TINY], conda=["saibench-fake-conda-pkg=1.0"]), cache_dir=tmp_path / "envs",
                  progress=lambda _: None, timeout=1)
    pid = int(child.read_text())
    deadline = time.monotonic() + 5
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the build tool's child outlived the build")
        time.sleep(0.05)
