"""Pod environments: the interpreter a BenchPod runs with, built once per set of requirements.

A software module declares ``Environment(backend=..., pip=[...], conda=[...], python=None)``.
A pod runs with ``sys.executable`` when that already satisfies it (:func:`unmet` is empty);
otherwise :func:`provision` builds an environment in ``cache_dir / key`` once, keyed by a hash
of the requirements, the Python version, the platform and saibench_jupyter's core requirements
(:func:`environment_key`), and later pods reuse it. Builds hold an exclusive ``flock`` on
``{key}.lock`` (two pods build it once) and are ready only when their manifest
``saibench-env.json`` exists: a folder without one is a build that died, and is rebuilt.
uv builds it (``python -m venv`` + pip is the slow fallback); unmet conda requirements go
through micromamba, mamba or conda on PATH. Every environment gets saibench_jupyter's core
requirements and a symlink to the running package: the pod shim imports it in there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._lifeline import GRACE, kill_group
from ._requirements import conda_requirement, pip_requirement, python_reason, unmet

MANIFEST = "saibench-env.json"
#: Seconds any one tool may run: a cold build of a scientific stack takes minutes, not hours.
TIMEOUT = 1800.0
#: The running saibench_jupyter package: what every environment links to.
PACKAGE = Path(__file__).resolve().parents[1]
_CONDA_TOOLS = ("micromamba", "mamba", "conda")
#: pip's setting -> (uv's variable, uv's separator for several values).
_PIP_TO_UV = {"index-url": ("UV_INDEX_URL", " "), "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
              "find-links": ("UV_FIND_LINKS", ","), "constraint": ("UV_CONSTRAINT", " ")}
_INFO = "import json, platform as p, sysconfig as s; print(json.dumps([s.get_paths()['purelib'], p.python_version()]))"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Interpreter:
    """The interpreter a pod runs with.

    Parameters
    ----------
    python : str
        The Python executable.
    key : str
        ``"current"``, ``"remote"`` (built where the pods run), or the environment's hash (16 hex digits).
    prefix : Path or None
        The environment's folder; None for the current interpreter.
    built : bool
        True when this call built the environment (False: current interpreter or cache hit).
    """

    python: str
    key: str
    prefix: Path | None
    built: bool


class EnvironmentBuildError(Exception):
    """An environment could not be built: ``what`` failed, ``fix`` says what to change, ``log`` is the tool's tail."""

    def __init__(self, what: str, fix: str, log: str = "") -> None:
        self.what, self.fix, self.log = what, fix, log
        super().__init__("\n".join(part for part in (what, log, f"fix: {fix}") if part))

    def __reduce__(self) -> tuple[Any, ...]:
        # Whole across processes: a Dask worker that could not build a pod's environment sends it back.
        return type(self), (self.what, self.fix, self.log)


def environment_key(pip: Sequence[str], conda: Sequence[str], python: str | None) -> str:
    """The cache key of an environment.

    Parameters
    ----------
    pip, conda : sequence of str
        The requirements (their order and the spelling of equal pip requirements do not matter).
    python : str or None
        The requested Python version.

    Returns
    -------
    str
        16 hex digits of a hash of the normalised requirements, the running Python's version,
        the platform (``sys.platform``, machine) and saibench_jupyter's core requirements.
    """
    import platform

    record = {"pip": sorted(str(pip_requirement(r)) for r in pip), "conda": sorted(c.strip() for c in conda),
              "python": python, "running": platform.python_version(), "platform": [sys.platform, platform.machine()],
              "core": sorted(_core_requirements())}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def provision(environment: Mapping[str, Any], *, cache_dir: str | Path | None = None,
              progress: Progress | None = None, timeout: float = TIMEOUT) -> Interpreter:
    """The interpreter that satisfies a software module's environment, built once if needed.

    Parameters
    ----------
    environment : mapping
        ``backend``, ``pip``, ``conda`` (lists of str) and ``python`` (str or None): the
        ``environment`` field of a pod spec.
    cache_dir : str or Path, optional
        Where environments live; default ``$SAIBENCH_CACHE/envs`` or ``~/.cache/saibench/envs``.
    progress : callable, optional
        Receives one line per build step; default: print to stderr.
    timeout : float
        Seconds each tool may run.

    Returns
    -------
    Interpreter
        The current interpreter when it satisfies the environment, else the cached or newly built one.

    Raises
    ------
    ValueError
        A field of ``environment`` or a requirement is malformed.
    EnvironmentBuildError
        The environment could not be built.
    """
    pip, conda, python = _strings(environment, "pip"), _strings(environment, "conda"), environment.get("python")
    if python is not None and not isinstance(python, str):
        raise ValueError(f"environment['python'] must be a version string such as '3.11' or None, not {python!r}")
    if not unmet(pip, conda, python):
        return Interpreter(sys.executable, "current", None, False)
    key = environment_key(pip, conda, python)
    cache = os.environ.get("SAIBENCH_CACHE")
    root = Path(cache_dir or (Path(cache, "envs") if cache else Path.home() / ".cache" / "saibench" / "envs"))
    prefix, found = root / key, Interpreter(str(root / key / "bin" / "python"), key, root / key, False)
    if _ready(prefix):
        return found
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "a+") as lock:
        _lock(lock, key, root, timeout, say)
        if _ready(prefix):
            return found
        if prefix.exists() or prefix.is_symlink():
            say(f"removing environment {key[:8]}…: half-built (no {MANIFEST}) or its Python is gone")
            _remove(prefix)
        try:
            _build(prefix, key, pip, conda, python, say, timeout)
        except BaseException:
            _remove(prefix)  # so that the next call retries from scratch
            raise
    return Interpreter(found.python, key, prefix, True)


def _lock(lock: Any, key: str, root: Path, timeout: float, say: Progress) -> None:
    """Take the build lock of environment ``key``, waiting at most ``timeout`` seconds for another builder."""
    import fcntl

    deadline = time.monotonic() + timeout
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        say(f"waiting for another process building environment {key[:8]}…")
    pause = 0.05
    while True:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise EnvironmentBuildError(
                    f"another process has been building environment {key[:8]}… for more than {timeout:.0f} s",
                    f"let it finish, stop it, or give provision() a longer timeout (lock: {root / key}.lock)") from None
        pause = min(pause * 2, 1.0)


def _build(prefix: Path, key: str, pip: list[str], conda: list[str], python: str | None, say: Progress,
           timeout: float) -> None:
    start, uv = time.monotonic(), _find_uv()
    tool = _conda_tool(conda) if unmet(conda=conda) else None
    wanted = "; ".join(part for part in (f"pip: {', '.join(pip)}" if pip else "", f"python {python}" if python else "",
                                         f"conda: {', '.join(conda)}" if conda else "") if part)
    tools = f"{Path(tool).name} + " if tool else ""
    say(f"building environment {key[:8]}… for {wanted or 'nothing'} ({tools}"
        f"{'uv' if uv else 'pip: uv not found, python -m venv + pip is slow'}) in {prefix}")
    # Conda requirements met here are Python distributions: pip installs them as well as conda would.
    core, extra = _core_requirements(), [] if tool else ["{}{}".format(*conda_requirement(c)) for c in conda]
    requirements = [*pip, *extra, *core]
    _create(prefix, tool, uv, python, conda, say, timeout)
    env_python = str(prefix / "bin" / "python")
    say(f"  installing {len(requirements)} requirements with {'uv' if uv else 'pip'}")
    install = ([uv, "pip", "install", "--python", env_python, "--compile-bytecode"] if uv
               else [env_python, "-m", "pip", "install", "--disable-pip-version-check"])
    _run([*install, *requirements], f"could not install {', '.join([*pip, *extra]) or 'nothing'} with "
         f"saibench_jupyter's {len(core)} core requirements", "check that each requirement exists on the package "
         "index in a version for this Python and platform (uv gets pip's indexes, find-links and constraint from "
         "`pip config list`)", timeout, env=_uv_env() if uv else None)
    info = _run([env_python, "-I", "-c", _INFO], f"the environment's Python {env_python} does not run",
                "remove the environment folder and retry", timeout)
    site, version = json.loads(info.strip().splitlines()[-1])
    say(f"  linking saibench_jupyter -> {PACKAGE}")
    _link(Path(site) / "saibench_jupyter")
    # Pods start faster with the package compiled; a read-only tree cannot be, which is fine.
    try:
        _bounded([env_python, "-m", "compileall", "-q", str(Path(site) / "saibench_jupyter")], timeout)
    except OSError:
        pass
    seconds = time.monotonic() - start
    manifest = {"key": key, "requirements": {"pip": pip, "conda": conda, "python": python},
                "installed": requirements, "python": version, "executable": env_python, "site_packages": site,
                "package": str(PACKAGE), "tool": Path(tool).name if tool else "uv" if uv else "venv+pip",
                "build_seconds": round(seconds, 3), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    partial = prefix / f"{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=1))
    partial.replace(prefix / MANIFEST)  # the environment exists for others only from here on
    say(f"environment {key[:8]}… ready in {seconds:.1f} s: {env_python}")


def _create(prefix: Path, tool: str | None, uv: str | None, python: str | None, conda: list[str], say: Progress,
            timeout: float) -> None:
    """The empty environment: conda's when conda requirements are unmet, else a virtual environment."""
    # The running interpreter when it is the requested Python: uv could pick another of that version.
    base = sys.executable if not python_reason(python) else python or ""
    if tool:
        version = python or f"{sys.version_info.major}.{sys.version_info.minor}"
        pin = f"python{version}" if version[:1] in "<>=!~" else f"python={version}"
        _run([tool, "create", "-y", "-p", str(prefix), pin, *conda], f"{Path(tool).name} could not create the "
             f"environment for conda: {', '.join(conda)}", "check these conda requirements and their channels "
             "(channel::name), or give them as pip requirements", timeout)
        say(f"  conda environment created with {Path(tool).name}")
    elif uv:
        fix = (f"install Python {python} (uv python install {python}) or drop python= from the Environment"
               if python else "check that this Python can create virtual environments")
        _run([uv, "venv", "--python", base, str(prefix)], f"uv could not create a virtual environment with Python "
             f"{base}", fix, timeout, env=_uv_env())
        say("  virtual environment created with uv")
    else:
        base = base if base == sys.executable else shutil.which(f"python{python}") or ""
        if not base:
            raise EnvironmentBuildError(f"uv is not installed and there is no python{python} on PATH",
                                        f"install uv (pip install uv) or Python {python}, or drop python=")
        _run([base, "-m", "venv", str(prefix)], f"python -m venv could not create an environment with {base}",
             "install the venv module of this Python (e.g. apt install python3-venv), or install uv", timeout)
        say("  virtual environment created with python -m venv (install uv to build in seconds)")


def _ready(prefix: Path) -> bool:
    """A finished build whose Python still runs (its base interpreter may have been removed)."""
    try:
        site = json.loads((prefix / MANIFEST).read_text())["site_packages"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    link = Path(site) / "saibench_jupyter"
    # Another checkout of saibench_jupyter with the same core requirements shares the
    # environment: its pods must run the code of the checkout that started them.
    if link.is_symlink() and Path(os.readlink(link)) != PACKAGE:
        _link(link)
    return (prefix / "bin" / "python").exists()


def _link(link: Path) -> None:
    temporary = link.with_name(f".saibench_jupyter.{os.getpid()}")
    _remove(temporary)
    temporary.symlink_to(PACKAGE, target_is_directory=True)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # a saibench_jupyter some requirement installed: the shim must speak our protocol
    os.replace(temporary, link)  # atomic: a pod starting meanwhile sees the old or the new link


def _run(command: list[str], what: str, fix: str, timeout: float, env: Mapping[str, str] | None = None) -> str:
    def tail(text: str) -> str:
        return "\n".join(text.rstrip().splitlines()[-40:])

    shown = " ".join(command)
    try:
        returncode, output = _bounded(command, timeout, env)
    except OSError as e:
        raise EnvironmentBuildError(f"{what}: `{shown}` could not start ({e})", fix) from None
    if returncode is None:
        raise EnvironmentBuildError(f"{what}: `{shown}` did not finish in {timeout:.0f} s", "check the network and "
                                    "the package index, or give provision() a longer timeout", tail(output))
    if returncode != 0:
        raise EnvironmentBuildError(f"{what}: `{shown}` exited with status {returncode}", fix, tail(output))
    return output


def _bounded(command: list[str], timeout: float, env: Mapping[str, str] | None = None) -> tuple[int | None, str]:
    """Run ``command`` (stdout and stderr together) for at most ``timeout`` seconds, plus a grace period.

    The tool runs in a process group of its own: past ``timeout`` the group is killed, so
    that neither it nor a process it started (a build backend) runs on, and no child holding
    the output pipe can make the wait outlast the limit. Returns the exit status (None when
    the time ran out) and the output.

    Raises
    ------
    OSError
        When the command cannot start.
    """
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", env=env, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        try:
            output, _ = proc.communicate(timeout=GRACE)
        except subprocess.TimeoutExpired as again:  # a process that left the group still holds the pipe
            proc.kill()
            output = again.output.decode(errors="replace") if isinstance(again.output, bytes) else again.output or ""
        return None, output
    except BaseException:  # Ctrl-C while it runs: the tool and its children stop too
        kill_group(proc.pid)
        raise


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _strings(environment: Mapping[str, Any], field: str) -> list[str]:
    values = environment.get(field) or []
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"environment[{field!r}] must be a list of requirement strings, not {values!r}")
    return list(values)


@lru_cache(maxsize=1)
def _core_requirements() -> tuple[str, ...]:
    """saibench_jupyter's own runtime requirements: what the pod shim needs in any environment."""
    # The linked source tree's pyproject.toml is the truth when there is one: an editable
    # install's metadata is frozen at install time while the code linked into pods moves on.
    pyproject = PACKAGE.parent / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if project.get("name") == "saibench-jupyter":
            return tuple(project.get("dependencies", []))
    from importlib.metadata import PackageNotFoundError, requires

    try:
        listed = requires("saibench-jupyter") or []
    except PackageNotFoundError:
        raise EnvironmentBuildError("saibench-jupyter is neither installed nor a source checkout: its core "
                                    "requirements are unknown", "pip install saibench-jupyter") from None
    return tuple(r for r in listed if "extra" not in r.partition(";")[2])


def _find_uv() -> str | None:
    # The uv wheel installed with saibench_jupyter first: the pinned one, with no pyenv shim in between.
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _conda_tool(conda: Sequence[str]) -> str:
    for name in _CONDA_TOOLS:
        found = shutil.which(name)
        if found:
            return found
    needed = ", ".join(c for c in conda if unmet(conda=[c]))
    raise EnvironmentBuildError(f"the conda requirements {needed} are not met here and no conda tool "
                                "(micromamba, mamba, conda) is on PATH",
                                "install micromamba, mamba or conda on PATH, or give these as pip requirements")


def _uv_env() -> dict[str, str]:
    """This process's environment plus pip's index settings (uv reads no pip configuration); the user's UV_ win."""
    return {**_pip_settings(), **os.environ}


@lru_cache(maxsize=1)
def _pip_settings() -> dict[str, str]:
    """uv's variables for pip's configured indexes, find-links and constraint (`pip config list`)."""
    import ast

    try:
        status, listed = _bounded([sys.executable, "-m", "pip", "config", "list"], 120)
    except OSError:
        status = None
    if status is None:
        return {}  # no pip (or it hangs): uv's defaults are all there is
    values: dict[str, list[str]] = {}
    for line in listed.splitlines():  # global.extra-index-url='file:///a file:///b', :env:.find-links='/w'
        name, _, quoted = line.partition("=")
        setting = name.rpartition(".")[2]
        try:
            value = str(ast.literal_eval(quoted)) if setting in _PIP_TO_UV else ""
        except (ValueError, SyntaxError):
            continue
        found = values.setdefault(setting, [])
        found.extend(v for v in value.split() if v not in found)
    settings = {_PIP_TO_UV[s][0]: _PIP_TO_UV[s][1].join(v[:1] if s == "index-url" else v)
                for s, v in values.items() if v}
    if settings:
        # pip takes the best version over all indexes; uv's default stops at the first index that has the name
        # (and without the constraint file it picks a multi-GB CUDA torch).
        settings["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    return settings
