"""A real JupyterLab on loopback and a real Chromium: shared by the browser tests and benchmarks/labextension.py.

Debian's ``chromium`` and PyPI's ``playwright`` drive it; Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TOKEN = "saibench-browser-test"
#: The extension's name (labextension/package.json).
EXTENSION = "saibench-jupyter-labextension"


def write_notebook(path: Path, cells: Sequence[str]) -> None:
    """A notebook of code cells, for the ``python3`` kernel."""
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": source} for i, source in enumerate(cells)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))


def bench_cells(modes: str) -> list[str]:
    """The doubling benchmark's cells (``Doubler`` with these modes: ``"'ok', 'raise'"``), SAIBench loaded first."""
    from test_ui_session import MODEL, PROBLEM, REST, SUPPORT

    return ["%load_ext saibench_jupyter", "%%sail\n" + SUPPORT, "%%problem\n" + PROBLEM,
            "%%model\n" + MODEL.format(modes=modes), *(f"%%{kind}\n{text}" for kind, text in REST.items())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def jupyterlab(folder: Path, *, disabled: Sequence[str] = (), wait: float = 120) -> Iterator[str]:
    """JupyterLab serving ``folder`` on 127.0.0.1 (these lab extensions disabled); yields its URL.

    The server and its kernels run in a session of their own, killed at the end; it starts with a
    workspace of its own (no tab an earlier server left open).
    """
    env = dict(os.environ)
    if disabled:  # a config folder of its own whose page config disables them
        config = folder / ".jupyter-config"
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {name: True for name in disabled}}))
        env["JUPYTER_CONFIG_DIR"] = str(config)
    port = free_port()
    log_path = folder / f"server-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
             "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={folder}",
             # Workspaces and settings of its own: the user's default workspace (shared by every server) would
             # reopen the tabs an earlier server left, and the active tab is what notebook commands act on.
             f"--LabApp.workspaces_dir={folder / f'.workspaces-{port}'}",
             f"--LabApp.user_settings_dir={folder / f'.settings-{port}'}"],
            cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("JupyterLab did not start:\n" + log_path.read_text()[-3000:]) from None
                    time.sleep(0.5)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # the server and its kernels
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A Playwright page in the system's headless Chromium."""
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        raise RuntimeError("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def open_notebook(page: Any, url: str, name: str, timeout: float = 180_000) -> None:
    """Open ``name`` in JupyterLab and wait for its kernel to be idle."""
    page.goto(f"{url}/lab/tree/{name}?token={TOKEN}")
    page.wait_for_function("window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status"
                           " === 'idle'", timeout=timeout)


def load_time(page: Any, url: str) -> float:
    """Milliseconds from navigation to JupyterLab's ``restored`` (its plugins activated, its layout back)."""
    page.goto(f"{url}/lab?token={TOKEN}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=120_000)
    return float(page.evaluate("window.jupyterapp.restored.then(() => performance.now())"))


@contextmanager
def explained(page: Any, folder: Path, regions: Sequence[tuple[str, str, int]]) -> Iterator[None]:
    """On failure, keep a screenshot in ``folder`` and say what each region of the page showed.

    ``regions`` are ``(what, CSS selector, most characters)``, each shown by its last characters
    (a timeout alone says nothing).
    """
    try:
        yield
    except Exception as exc:
        shot = folder / "failure.png"
        page.screenshot(path=str(shot))
        said = [f"--- {what} said:\n" + (page.locator(where).inner_text(timeout=5000)[-most:]
                                         if page.locator(where).count() else "(absent)")
                for what, where, most in regions]
        raise AssertionError("\n".join([f"{exc}", f"--- screenshot {shot}", *said])) from exc

