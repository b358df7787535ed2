"""Remote kernels for notebook pods: a Jupyter Kernel Gateway or Enterprise Gateway, its token and checks.

:func:`check_gateway`, :func:`gateway_alive` and :func:`shutdown_remote_kernel` speak the gateway's REST
API with the standard library, so a parent process can check a gateway cheaply. :func:`configure_gateway`
sets up jupyter_server's ``GatewayClient`` in the process that runs the notebook and returns the keyword
arguments that make nbclient (or Papermill) run it there, through ``_gateway_kernels``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

#: Where a token is read from when none is given, first match wins.
TOKEN_VARIABLES = ("SAIBENCH_GATEWAY_TOKEN", "JUPYTER_GATEWAY_AUTH_TOKEN")

#: The ``kernel_manager_class`` nbclient loads (traitlets' ``Type`` takes the dotted ``module.Class`` form).
KERNEL_MANAGER_CLASS = "saibench_jupyter.pods._gateway_kernels.TokenGatewayKernelManager"


class GatewayError(RuntimeError):
    """A kernel gateway that cannot run pods: unreachable, refusing the token, or without the kernel."""


@dataclass(frozen=True)
class KernelGateway:
    """A Jupyter Kernel Gateway or Enterprise Gateway to run notebook pods on.

    Parameters
    ----------
    url : str
        The gateway's base URL (``http://host:8888``), a trailing slash removed.
    token : str or None
        The gateway's auth token (sent as ``Authorization: token <token>``); None for an open gateway.
        Never shown in the repr.
    kernel : str
        The name of the kernelspec on the gateway that runs the pods.
    timeout : float
        Seconds an HTTP request to the gateway may take (connecting, and the checks).

    Raises
    ------
    GatewayError
        When ``url`` is not an http(s) URL or ``timeout`` is not positive.
    """

    url: str
    token: str | None = field(default=None, repr=False)
    kernel: str = "python3"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise GatewayError(f"gateway URL {self.url!r} is not an http(s) URL; fix: give it as http://host:port")
        if not self.timeout > 0:
            raise GatewayError(f"gateway {self.url}: timeout {self.timeout!r} is not positive; fix: give seconds > 0")
        object.__setattr__(self, "url", self.url.rstrip("/"))

    @classmethod
    def from_env(cls, url: str, token: str | None = None, kernel: str = "python3",
                 timeout: float = 10.0) -> KernelGateway:
        """A gateway whose token, when not given, comes from the environment.

        Parameters
        ----------
        url, token, kernel, timeout
            As for :class:`KernelGateway`; a None ``token`` is read from ``SAIBENCH_GATEWAY_TOKEN``, then
            ``JUPYTER_GATEWAY_AUTH_TOKEN`` (an empty variable counts as unset).

        Returns
        -------
        KernelGateway
            The gateway.
        """
        if token is None:
            token = next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)
        return cls(url, token, kernel, timeout)

    def headers(self) -> dict[str, str]:
        """The HTTP headers of a request to the gateway: the token, when there is one.

        Returns
        -------
        dict[str, str]
            Header name to value.
        """
        return {"Authorization": f"token {self.token}"} if self.token else {}


def _request(gateway: KernelGateway, method: str, path: str) -> tuple[int, bytes]:
    """``method`` ``{url}{path}`` with the token; its status and body (an HTTP error status is returned too).

    Raises
    ------
    OSError
        When the gateway does not answer (refused, timed out, name unknown): ``urllib.error.URLError``,
        ``TimeoutError`` or ``ConnectionError``.
    """
    request = urllib.request.Request(gateway.url + path, method=method, headers=gateway.headers())
    # No proxies from the environment: jupyter_server's tornado client, which runs the notebook, uses none
    # either, so a check must reach the gateway the same way.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=gateway.timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), bytes(error.read())


def check_gateway(gateway: KernelGateway) -> list[str]:
    """Check that ``gateway`` answers, accepts its token and offers its kernel; the kernels it offers.

    Parameters
    ----------
    gateway : KernelGateway
        The gateway.

    Returns
    -------
    list[str]
        The names of the gateway's kernelspecs, sorted.

    Raises
    ------
    GatewayError
        When the gateway does not answer within ``gateway.timeout`` seconds, refuses the token (HTTP 401
        or 403), answers anything else than 200 with kernelspecs, or does not offer ``gateway.kernel``.
    """
    where = f"{gateway.url}/api/kernelspecs"
    try:
        status, body = _request(gateway, "GET", "/api/kernelspecs")
    except OSError as error:
        reason = getattr(error, "reason", error)
        raise GatewayError(f"gateway {gateway.url} did not answer within {gateway.timeout:g} s ({reason}); "
                           "fix: start the gateway, or check its URL and that this machine can reach it") from None
    if status in (401, 403):
        what = "refused the token" if gateway.token else "wants a token (none was given)"
        raise GatewayError(f"gateway {gateway.url} {what} (HTTP {status} on GET {where}); "
                           "fix: pass the gateway's token with --token or SAIBENCH_GATEWAY_TOKEN")
    text = body.decode("utf-8", "replace")
    try:
        specs = json.loads(text)["kernelspecs"] if status == 200 else None
    except (ValueError, KeyError, TypeError):
        specs = None
    if not isinstance(specs, dict):
        raise GatewayError(f"gateway {gateway.url} answered GET {where} with HTTP {status}: {text[:200]!r}; "
                           "fix: check that the URL is a Jupyter Kernel Gateway or Enterprise Gateway")
    names = sorted(specs)
    if gateway.kernel not in specs:
        raise GatewayError(f"gateway {gateway.url} offers no kernel {gateway.kernel!r} (it offers: "
                           f"{', '.join(names) or 'none'}); fix: name one of these as the kernel")
    return names


def gateway_alive(gateway: KernelGateway) -> bool:
    """Whether ``gateway`` answers HTTP at all within its timeout (any status, a refused token too).

    Parameters
    ----------
    gateway : KernelGateway
        The gateway.

    Returns
    -------
    bool
        True when it answered.
    """
    try:
        _request(gateway, "GET", "/api/kernelspecs")
    except OSError:
        return False
    return True


def shutdown_remote_kernel(gateway: KernelGateway, kernel_id: str) -> None:
    """Ask ``gateway`` to shut kernel ``kernel_id`` down; bounded by the gateway's timeout, never raises.

    Made for a watchdog thread ending a pod whose time ran out: the gateway ends the kernel process (an
    unknown kernel, or a gateway that is gone, is left as it is).

    Parameters
    ----------
    gateway : KernelGateway
        The gateway the kernel runs on.
    kernel_id : str
        The kernel's id on the gateway.
    """
    try:
        _request(gateway, "DELETE", f"/api/kernels/{urllib.parse.quote(kernel_id, safe='')}")
    except Exception:  # best effort by contract: the caller is already ending the pod
        pass


def configure_gateway(gateway: KernelGateway, startup_timeout: float = 60.0) -> dict[str, Any]:
    """Point this process's jupyter_server ``GatewayClient`` at ``gateway``; the notebook client's arguments.

    Pass the result to ``nbclient.NotebookClient(nb, **kwargs)`` or ``papermill.execute_notebook(...,
    **kwargs)`` and the notebook's kernel runs on the gateway, its websocket sending the token too.

    Parameters
    ----------
    gateway : KernelGateway
        The gateway.
    startup_timeout : float
        Seconds the gateway may take to start a kernel (its POST, and the websocket's handshake).

    Returns
    -------
    dict[str, Any]
        ``kernel_manager_class`` (a dotted name) and ``kernel_name``.

    Notes
    -----
    ``GatewayClient`` is a process-wide singleton: this replaces it, so one process runs notebooks on one
    gateway at a time. The ``JUPYTER_GATEWAY_*`` variables still configure what this does not set
    (extra headers, certificates, the auth scheme).
    """
    from jupyter_server.gateway.gateway_client import GatewayClient

    GatewayClient.clear_instance()
    # A class attribute read by the kernel client (the websocket's handshake timeout) and sent to the
    # gateway as KERNEL_LAUNCH_TIMEOUT; the request timeout must cover it, plus the client's pad.
    GatewayClient.KERNEL_LAUNCH_TIMEOUT = max(1, round(startup_timeout))
    client = GatewayClient.instance(
        url=gateway.url,
        # Derived here so a JUPYTER_GATEWAY_WS_URL left in the environment can't point at another gateway.
        ws_url="ws" + gateway.url.removeprefix("http"),
        auth_token=gateway.token or "",
        connect_timeout=gateway.timeout,
    )
    client.request_timeout = GatewayClient.KERNEL_LAUNCH_TIMEOUT + client.launch_timeout_pad
    return {"kernel_manager_class": KERNEL_MANAGER_CLASS, "kernel_name": gateway.kernel}
