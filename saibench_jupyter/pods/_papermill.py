"""The papermill executor: each pod runs as a notebook, executed by Papermill, and the notebook is kept.

For each pod the executor starts the notebook runner (``python -m saibench_jupyter.pods
notebook -``, :mod:`._notebook_run`) as the ``subprocess`` executor starts a cold pod: in
its own session, with the pod's limits, killed whole at the end. The runner writes the pod's
notebook (:mod:`._pod_notebook`) and executes it on a kernel in the pod's software
environment (a kernelspec for the environment's interpreter; ``kernel=`` names another), or on
a Jupyter Kernel Gateway or Enterprise Gateway (``gateway=``). The executed notebook goes to
``output`` (a folder, or any location Papermill writes: ``s3://``, ``gs://``, ``abs://``,
``http(s)://`` PUT); its location is stored with the pod (an ``artifact`` event). The pod's
events reach the controller while cells run; only the controller writes the store.

With ``scheduler=``, each notebook runs on a worker of that Dask cluster instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ._environments import Interpreter
from ._executors import PodEvents
from ._notebook_run import notebook_request
from ._spec import PodSpec
from ._subprocess import SubprocessExecutor, notebook_limit

#: Where executed notebooks go unless told: this folder, under the current directory.
OUTPUT = "saibench-notebooks"


class PapermillExecutor(SubprocessExecutor):
    """Pods as notebooks (see the module docstring).

    Parameters
    ----------
    jobs : int
        Pods running at once.
    scheduler : str, Client or cluster, optional
        Run each notebook on a worker of this Dask cluster (as ``executor="dask"`` takes it).
    gateway : str, optional
        The URL of a Jupyter Kernel Gateway or Enterprise Gateway whose kernels run the pods.
    token : str, optional
        The gateway's token; ``SAIBENCH_GATEWAY_TOKEN`` (or ``JUPYTER_GATEWAY_AUTH_TOKEN``) by default.
    kernel : str, optional
        The kernelspec to run pods on (on the gateway: ``python3`` by default; here: one made
        for the pod's environment by default).
    output : str, optional
        Where executed notebooks go: a folder (``saibench-notebooks`` by default) or a
        location Papermill writes (``s3://bucket/runs/``); each is ``{pod}.ipynb`` there.
    """

    name = "papermill"

    def __init__(self, jobs: int = 1, *, scheduler: Any = None, gateway: str | None = None,
                 token: str | None = None, kernel: str | None = None, output: str | None = None) -> None:
        super().__init__(jobs)
        self.gateway: Any = None
        if gateway is not None:
            from ._gateway import KernelGateway

            self.gateway = KernelGateway(gateway.rstrip("/"), token if token is not None else _token(),
                                         kernel or "python3")
        elif token is not None:
            raise ValueError("token= goes with gateway=: a local kernel needs no token")
        self.kernel = kernel
        location = output or OUTPUT
        self.output = location.rstrip("/") if "://" in location else os.path.abspath(location)
        self._dask: Any = None
        if scheduler is not None:
            from ._dask import DaskExecutor

            self._dask = DaskExecutor(jobs, scheduler=scheduler)
            self.remote = True

    def location(self, spec: PodSpec) -> str:
        """Where the executed notebook of ``spec`` goes."""
        return f"{self.output}/{spec.pod}.ipynb" if "://" in self.output else os.path.join(self.output,
                                                                                           f"{spec.pod}.ipynb")

    @property
    def dashboard(self) -> str | None:
        """The Dask dashboard's address, when notebooks run on a cluster."""
        return None if self._dask is None else self._dask.dashboard

    def _options(self, spec: PodSpec) -> dict[str, Any]:
        """The runner's options for ``spec``: where its notebook goes, the gateway (with its token), the kernelspec."""
        gateway = None
        if self.gateway is not None:
            gateway = {"url": self.gateway.url, "token": self.gateway.token, "kernel": self.gateway.kernel}
        return {"output": self.location(spec), "gateway": gateway, "kernel": self.kernel}

    def start(self) -> None:
        if self.gateway is not None:
            from ._gateway import check_gateway

            check_gateway(self.gateway)  # a wrong token or URL fails the run here, before any pod starts
        if self._dask is not None:
            self._dask.start()
        super().start()

    def shim(self, spec: PodSpec, interpreter: Interpreter) -> tuple[str, str, float | None, str]:
        # The runner's interpreter is this one (it has Papermill); the kernel's is the pod's.
        request = notebook_request(self._options(spec), spec, interpreter.python)
        return sys.executable, request, notebook_limit(spec.limits.timeout), "notebook"

    def execute(self, spec: PodSpec, interpreter: Interpreter, events: PodEvents) -> None:
        if self._dask is not None:
            self._dask.send(spec, events, self._options(spec))
        else:
            super().execute(spec, interpreter, events)

    def cancel(self) -> None:
        super().cancel()  # the runners; their kernels die with them (the kernel's lifeline)
        if self._dask is not None:
            self._dask.cancel()

    def finish(self) -> None:
        super().finish()
        if self._dask is not None:
            self._dask.finish()


def _token() -> str | None:
    return os.environ.get("SAIBENCH_GATEWAY_TOKEN") or os.environ.get("JUPYTER_GATEWAY_AUTH_TOKEN") or None
