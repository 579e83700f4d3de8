"""The metadata agent (``neutrino agent metadata``; Neutron's ``neutron-metadata-agent``).

Serves the unix socket ``[metadata] metadata_proxy_socket`` (default
``STATE/metadata_proxy``) that the haproxy metadata proxies of routers and
networks forward to, with uvicorn in the agent's own event loop.  The ports
come from the change feed and are indexed in memory on every change
(``proxy.PortIndex``), so a request is answered without asking the server.
The request handling (resolution, signature, forwarding to Nova at
``nova_metadata_host:nova_metadata_port``) is in ``proxy``.

The socket's mode is 0644 (Neutron's ``deduce`` for a proxy running as the
agent's user): only root can connect, so an unprivileged local process
cannot pose as the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import httpx

from neutrino.agents.metadata import socket_path
from neutrino.agents.metadata.proxy import MetadataApp, PortIndex
from neutrino.config import Config
from neutrino.feed.state import State

LOG = logging.getLogger(__name__)
SOCKET_MODE = 0o644
BACKLOG = 4096


def _uvicorn_server(app: Any) -> Any:
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:   # the agent loop owns SIGTERM/SIGINT
            yield

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, backlog=BACKLOG,
                            server_header=False, timeout_keep_alive=30)
    return _Server(config)


def bind_unix(path: str, mode: int = SOCKET_MODE) -> socket.socket:
    """A listening unix socket at ``path`` (a stale socket file is replaced)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if p.is_socket():
            p.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(p))
    os.chmod(p, mode)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class MetadataDriver:
    agent_type = "Metadata agent"
    binary = "neutrino-metadata-agent"
    topic = "N/A"
    feed_types = ("port",)

    def __init__(self, socket: str, nova_host: str, nova_port: int, secret: str, *, protocol: str = "http",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.socket = socket
        self.nova_host = nova_host
        self.nova_port = nova_port
        host = f"[{nova_host}]" if ":" in nova_host else nova_host
        self.app = MetadataApp(f"{protocol}://{host}:{nova_port}", secret, transport=transport)
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    def configurations(self) -> dict[str, Any]:
        return {"metadata_proxy_socket": self.socket, "nova_metadata_host": self.nova_host,
                "nova_metadata_port": self.nova_port, "log_agent_heartbeats": False}

    async def start(self) -> None:
        """Serve the socket (idempotent; restarts a server that ended)."""
        if self._task is not None and not self._task.done():
            return
        if self._task is not None and self._task.done() and self._task.exception() is not None:
            LOG.warning("metadata socket server ended: %s", self._task.exception())
        self._sock = bind_unix(self.socket)
        self._server = _uvicorn_server(self.app)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="metadata-socket")
        for _ in range(200):
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()   # raise the reason it did not start
        LOG.info("metadata agent listening on %s, forwarding to %s", self.socket, self.app.nova_url)

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        if changed or self._task is None:
            self.app.index = PortIndex.build(state.of("port").values())
        await self.start()
        return {}

    async def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            if Path(self.socket).is_socket():
                Path(self.socket).unlink()
        await self.app.aclose()


def make_driver(cfg: Config, host: str) -> MetadataDriver:
    md = cfg.metadata
    return MetadataDriver(socket_path(cfg), md.nova_metadata_host, md.nova_metadata_port,
                          md.metadata_proxy_shared_secret, protocol=md.nova_metadata_protocol)
