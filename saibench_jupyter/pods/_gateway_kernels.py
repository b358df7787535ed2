"""Kernel manager and client for a Jupyter Kernel/Enterprise Gateway that wants a token on its websocket too.

jupyter_server's gateway client sends ``GatewayClient``'s headers (the ``Authorization`` token among them)
on its REST calls but opens the kernel's websocket without them, so a gateway started with a token starts
the kernel and then answers the websocket with 401. nbclient and Papermill load these classes by dotted
name (``kernel_manager_class``); :func:`saibench_jupyter.pods._gateway.configure_gateway` names them.

Importing this module imports jupyter_server (~1 s): only a process that runs a notebook on a gateway does.
"""

from __future__ import annotations

from threading import Thread

import websocket
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_core.utils import ensure_async
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelClient, GatewayKernelManager
from jupyter_server.utils import url_escape, url_path_join
from traitlets import DottedObjectName, Type


def websocket_headers(client: GatewayClient) -> dict[str, str]:
    """The headers jupyter_server's REST calls to the gateway send: its configured ones, auth and cookies.

    Parameters
    ----------
    client : GatewayClient
        The configured gateway client (``GatewayClient.instance()``).

    Returns
    -------
    dict[str, str]
        Header name to value.
    """
    headers: dict[str, str] = client.load_connection_args(headers={})["headers"]  # type: ignore[no-untyped-call]
    if client.auth_token:  # load_connection_args adds it only when ``headers`` is configured non-empty
        headers.setdefault(client.auth_header_key, f"{client.auth_scheme} {client.auth_token}")
    return headers


class TokenGatewayKernelClient(GatewayKernelClient):
    """A :class:`GatewayKernelClient` whose websocket carries the gateway's headers (its token)."""

    async def start_channels(  # type: ignore[override]  # async like the base's, unlike jupyter_client's
            self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = True, control: bool = True,
    ) -> None:
        """Open the kernel's websocket with the gateway's headers, then the channel queues and their router.

        Parameters
        ----------
        shell, iopub, stdin, hb, control : bool
            Which channels to start (as in :meth:`jupyter_client.KernelClient.start_channels`).
        """
        # The base method opens the socket, starts the channels and the router thread in one body, and the
        # socket can't be opened differently from outside it: its three steps are repeated here, the first
        # with ``header=``.
        client = GatewayClient.instance()
        ws_url = url_path_join(client.ws_url or "", client.kernels_endpoint, url_escape(self.kernel_id), "channels")
        self.channel_socket = websocket.create_connection(
            ws_url,
            timeout=client.KERNEL_LAUNCH_TIMEOUT,
            enable_multithread=True,
            sslopt={"ca_certs": client.ca_certs, "certfile": client.client_cert, "keyfile": client.client_key},
            header=websocket_headers(client),
        )
        # The timeout bounds the handshake. Left on the socket it would also end the router's ``recv`` after
        # that many seconds without a message, i.e. during any cell that runs that long silently;
        # stop_channels closes the socket to end the router instead.
        self.channel_socket.settimeout(None)
        await ensure_async(AsyncKernelClient.start_channels(  # type: ignore[func-returns-value]
            self, shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control))
        # A daemon: with no recv timeout, a router left running (stop_channels never called after an error)
        # would otherwise keep the process from exiting.
        self.response_router = Thread(target=self._route_responses, daemon=True)
        self.response_router.start()

    def stop_channels(self) -> None:
        """Close the websocket and the channel queues; nothing to do when the websocket never opened.

        The base method asserts that the socket exists: after a failed handshake (a 401) nbclient's cleanup
        would raise a bare ``AssertionError`` in place of the handshake's own error.
        """
        if self.channel_socket is None:
            self._channels_stopped = True
            return
        super().stop_channels()  # type: ignore[no-untyped-call]


class TokenGatewayKernelManager(GatewayKernelManager):
    """A :class:`GatewayKernelManager` whose clients are :class:`TokenGatewayKernelClient`."""

    client_class = DottedObjectName(f"{__name__}.TokenGatewayKernelClient")
    client_factory = Type(klass=TokenGatewayKernelClient)

    async def _async_is_alive(self) -> bool:
        """Whether the gateway still has the kernel (False too when the gateway does not answer).

        nbclient asks this every second while a cell runs, to stop waiting on a dead kernel. jupyter_client's
        version polls a local provisioner, which a gateway kernel has none of: it fails an assertion, and a
        kernel shut down on the gateway (a pod's time limit) goes unnoticed.
        """
        if not self.has_kernel:
            return False
        try:
            return await self.refresh_model() is not None  # type: ignore[no-untyped-call]
        except Exception:  # a gateway that can't say is one the pod can't go on with
            return False
