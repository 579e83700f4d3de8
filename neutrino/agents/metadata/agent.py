"""The metadata agent (``neutrino agent metadata``; Neutron's ``neutron-metadata-agent``).

Serves the unix socket ``[metadata] metadata_proxy_socket`` (default
``STATE/metadata_proxy``) that the haproxy metadata proxies of routers and
networks forward to, in the agent's own event loop (``server``: a small
HTTP/1.1 server with keep-alive, ``wire``: its strict framing).  The ports
come from the change feed and are indexed in memory on every change
(``proxy.PortIndex``), so a request is answered without asking the server.
The request handling (resolution, signature, forwarding to Nova at
``nova_metadata_host:nova_metadata_port`` over kept-alive connections,
``upstream``) is in ``proxy``.

The proxies run unprivileged (``[metadata] metadata_proxy_user`` /
``metadata_proxy_group``): the socket is mode 0660 with the proxies' group,
and its directory (the default one, ``/run/neutrino/metadata-<id>/``) mode
0710 with that group, so root and the proxies can connect and no other local
process can pose as a proxy.  Without a group (``group=None``) the socket is
0644: root only (Neutron's ``deduce`` for a proxy running as the agent's user).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

from neutrino.agents.metadata import group_id, proxy_identity, socket_path
from neutrino.agents.metadata.proxy import MetadataProxy, PortIndex
from neutrino.agents.metadata.server import MetadataServer
from neutrino.agents.metadata.upstream import Upstream
from neutrino.agents.tls import AgentCertificateError, agent_tls
from neutrino.config import Config
from neutrino.feed.state import State
from neutrino.system.host import Host

LOG = logging.getLogger(__name__)
SOCKET_MODE = 0o644
#: With the proxies' group: the group may connect (write), others may not.
GROUP_SOCKET_MODE = 0o660
#: The socket's own directory: the group may enter it (not list it).
GROUP_DIR_MODE = 0o710
BACKLOG = 4096
#: haproxy keeps its connections to the agent alive and closes the idle ones itself within
#: seconds (it halves its idle pool every 5 s); the agent closes one only after this long, so it
#: never closes a connection at the moment haproxy sends a request on it.
IDLE_TIMEOUT = 600.0


def bind_unix(path: str, mode: int = SOCKET_MODE, *, gid: int | None = None, own_dir: bool = False) -> socket.socket:
    """A listening unix socket at ``path`` (a stale socket file is replaced).

    With ``gid``: the socket gets that group and mode ``GROUP_SOCKET_MODE``; with
    ``own_dir`` too, its directory (ours alone) gets that group and ``GROUP_DIR_MODE``.
    The socket is bound under umask 077 and opened up only after its group is set, so
    it is never connectable by others in between."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if own_dir:
        os.chown(p.parent, -1, gid if gid is not None else -1)
        os.chmod(p.parent, GROUP_DIR_MODE if gid is not None else 0o700)
        for parent in p.parent.parents:  # /run/neutrino: searchable, as for dnsmasq's files
            if parent == Path("/run"):
                break
            if parent.stat().st_mode & 0o011 != 0o011:
                os.chmod(parent, parent.stat().st_mode | 0o111)
    with contextlib.suppress(FileNotFoundError):
        if p.is_socket():
            p.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)
    try:
        sock.bind(str(p))
    finally:
        os.umask(old_umask)
    if gid is not None:
        os.chown(p, -1, gid)
        mode = GROUP_SOCKET_MODE
    os.chmod(p, mode)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class MetadataDriver:
    agent_type = "Metadata agent"
    binary = "neutrino-metadata-agent"
    topic = "N/A"
    feed_types = ("port", "router")
    #: The listening socket while serving (declared here: ``__init__``'s ``socket`` is the path).
    _sock: socket.socket | None

    def __init__(
        self,
        socket: str,
        nova_host: str,
        nova_port: int,
        secret: str,
        *,
        protocol: str = "http",
        upstream: Upstream | None = None,
        gid: int | None = None,
        own_dir: bool = False,
    ) -> None:
        self.socket = socket
        self.gid, self.own_dir = gid, own_dir
        self.nova_host = nova_host
        self.nova_port = nova_port
        host = f"[{nova_host}]" if ":" in nova_host else nova_host
        self.app = MetadataProxy(f"{protocol}://{host}:{nova_port}", secret, upstream=upstream)
        self._server = MetadataServer(self.app.handle, idle_timeout=IDLE_TIMEOUT)
        self._sock = None

    def configurations(self) -> dict[str, Any]:
        return {
            "metadata_proxy_socket": self.socket,
            "nova_metadata_host": self.nova_host,
            "nova_metadata_port": self.nova_port,
            "log_agent_heartbeats": False,
        }

    async def start(self) -> None:
        """Serve the socket (idempotent; serves it again if it was removed)."""
        if self._server.serving and Path(self.socket).is_socket():
            return
        if self._server.serving:
            LOG.warning("metadata socket %s disappeared: binding it again", self.socket)
            await self._server.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = bind_unix(self.socket, gid=self.gid, own_dir=self.own_dir)
        await self._server.start(self._sock)
        LOG.info("metadata agent listening on %s, forwarding to %s", self.socket, self.app.nova_url)

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        if changed or not self._server.serving:
            self.app.index = PortIndex.build(state.of("port").values(), state.of("router").values())
        await self.start()
        return {}

    async def close(self) -> None:
        await self._server.close()
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            if Path(self.socket).is_socket():
                Path(self.socket).unlink()
        await self.app.aclose()


def make_driver(cfg: Config, host_name: str, host: Host) -> MetadataDriver:
    """The metadata agent changes nothing on the machine (it serves its socket and keeps its
    port index in memory): ``host`` is not used.  The proxies it serves are run by the L3
    and DHCP agents through their ``MetadataProxies`` on their ``Host``.

    With TLS on (``[DEFAULT] use_ssl``) the metadata API is reached over
    https with this node's client certificate (mutual TLS); the requests keep
    Nova's signature of the instance id.  Raises ``SystemExit`` naming the
    file and its dates when the certificate cannot be used."""
    md = cfg.metadata
    _user, group = proxy_identity(cfg)
    protocol = "https" if cfg.default.use_ssl else md.nova_metadata_protocol
    nova = f"[{md.nova_metadata_host}]" if ":" in md.nova_metadata_host else md.nova_metadata_host
    url = f"{protocol}://{nova}:{md.nova_metadata_port}"
    try:
        tls = agent_tls(cfg, url)
    except AgentCertificateError as exc:
        raise SystemExit(str(exc)) from None
    upstream = None if tls is None else Upstream(url, ssl_context=tls.context, before_connect=tls.maybe_reload)
    return MetadataDriver(
        socket_path(cfg),
        md.nova_metadata_host,
        md.nova_metadata_port,
        md.metadata_proxy_shared_secret,
        protocol=protocol,
        upstream=upstream,
        gid=group_id(group),
        own_dir=not md.metadata_proxy_socket,
    )
