"""A Jupyter Kernel Gateway on 127.0.0.1 for tests: started, waited for, and stopped with its kernels."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Seconds a gateway may take to answer after its start.
START_WITHIN = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningGateway:
    """A ``jupyter kernelgateway`` process of this test run: its URL, token, process and log."""

    url: str
    token: str | None
    process: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        """``method`` ``{url}{path}`` with the token (and a JSON body); the status and the decoded answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")

    def start_kernel(self, name: str = "python3") -> str:
        """Start a kernel on the gateway (as a notebook client would); its id."""
        status, model = self.request("POST", "/api/kernels", {"name": name})
        assert status == 201, (status, model)
        return str(model["id"])  # type: ignore[index]

    def kernel_ids(self) -> list[str]:
        """The ids of the kernels running on the gateway."""
        status, models = self.request("GET", "/api/kernels")
        assert status == 200, (status, models)
        return [m["id"] for m in models]  # type: ignore[union-attr]

    def stop(self, kill: bool = False) -> None:
        """End the gateway: SIGTERM (it shuts its kernels down), SIGKILL after 10 s; at once with ``kill``.

        Its kernels run in sessions of their own but exit when the gateway is gone (ipykernel polls its
        parent). Calling it again does nothing.
        """
        for sig in ((signal.SIGKILL,) if kill else (signal.SIGTERM, signal.SIGKILL)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


@contextmanager
def kernel_gateway(token: str | None = None) -> Iterator[RunningGateway]:
    """A Kernel Gateway on 127.0.0.1, a free port, asking for ``token`` (None: open); stopped on exit.

    It lists its kernels (``GET /api/kernels``), keeps its connection files in a temporary folder, and runs
    in a process group of its own that is ended on exit (or earlier, by ``stop()``).
    """
    pytest.importorskip("kernel_gateway")
    with tempfile.TemporaryDirectory(prefix="saibench-kg-") as folder:
        env = {**os.environ, "KG_LIST_KERNELS": "True", "JUPYTER_RUNTIME_DIR": folder}
        env.pop("KG_AUTH_TOKEN", None)
        if token:  # in the environment, not on the command line where ``ps`` shows it
            env["KG_AUTH_TOKEN"] = token
        log = Path(folder) / "gateway.log"
        gateway = None
        try:
            for _ in range(3):  # another process may take the free port first: the gateway then exits
                port = free_port()
                with open(log, "ab") as out:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1",
                         f"--KernelGatewayApp.port={port}", "--KernelGatewayApp.port_retries=0"],
                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                        start_new_session=True)
                gateway = RunningGateway(f"http://127.0.0.1:{port}", token, process, log)
                if _answers_within(gateway, START_WITHIN):
                    break
                gateway.stop()
            else:
                raise RuntimeError(f"no kernel gateway answered within {START_WITHIN:g} s:\n"
                                   + log.read_text(errors="replace")[-2000:])
            yield gateway
        finally:
            if gateway is not None:
                gateway.stop()


def _answers_within(gateway: RunningGateway, seconds: float) -> bool:
    """Wait until ``gateway`` answers HTTP (any status); False when its process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and gateway.process.poll() is None:
        try:
            urllib.request.urlopen(gateway.url + "/api", timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.1)
    return False
