"""Metadata: the haproxy proxies (in qrouter-/qdhcp- namespaces) and the metadata agent.

``MetadataProxies`` is what the L3 and DHCP executors call to keep a
router's / network's haproxy running (``ensure_router`` / ``ensure_network``,
idempotent: a running proxy with the same configuration is left alone) and
to stop it on teardown.  The agent (``neutrino.agents.metadata.agent``)
serves the unix socket the proxies forward to.

Privileges: a proxy starts as root (it binds port 80 in its namespace and
reads its configuration), then haproxy itself switches to
``[metadata] metadata_proxy_user`` / ``metadata_proxy_group`` (default: user
``haproxy``, else ``nobody``, and that user's primary group).  It reaches the
agent's socket through the socket's group: the socket is mode 0660 with group
``metadata_proxy_group`` in a directory of mode 0710 with the same group
(default ``/run/neutrino/metadata-<id of the state dir>/``, outside the
private state directory), so no other local user can pose as a proxy.
"""

from __future__ import annotations

import grp
import hashlib
import pwd
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.agents.metadata import haproxy as conf
from neutrino.system.host import Host

#: Where the default socket directories live (as the DHCP agent's dnsmasq directories).
RUN_ROOT = Path("/run/neutrino")
SOCKET_NAME = "metadata_proxy"
#: Users the proxies run as when ``metadata_proxy_user`` is empty, the first that exists.
DEFAULT_USERS = ("haproxy", "nobody")


def _md(cfg: Any) -> Any:
    return getattr(cfg, "sections", {}).get("metadata")


def default_socket_dir(state_dir: Path | str) -> Path:
    """``/run/neutrino/metadata-<8 hex digits of the state dir's path>``."""
    digest = hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]
    return RUN_ROOT / f"metadata-{digest}"


def socket_path(cfg: Any) -> str:
    """``[metadata] metadata_proxy_socket``, or ``default_socket_dir(STATE)/metadata_proxy``."""
    md = _md(cfg)
    configured = md.metadata_proxy_socket if md is not None else ""
    return configured or str(default_socket_dir(cfg.state_dir) / SOCKET_NAME)


def proxy_identity(cfg: Any) -> tuple[str, str]:
    """(user, group) the haproxy metadata proxies switch to: the configured ones, else the
    first of ``DEFAULT_USERS`` that exists and its primary group.  Raises ``ValueError``
    for a user or group that does not exist."""
    md = _md(cfg)
    user = (md.metadata_proxy_user if md is not None else "") or ""
    group = (md.metadata_proxy_group if md is not None else "") or ""
    if not user:
        user = next((u for u in DEFAULT_USERS if _user(u) is not None), "nobody")
    entry = _user(user)
    if entry is None:
        raise ValueError(f"[metadata] metadata_proxy_user {user!r} does not exist")
    if not group:
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = str(entry.pw_gid)
    if group_id(group) is None:
        raise ValueError(f"[metadata] metadata_proxy_group {group!r} does not exist")
    return user, group


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        return None


def group_id(name: str) -> int | None:
    """The gid of group ``name`` (or of a numeric gid), None if unknown."""
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


@dataclass
class MetadataProxies:
    """The haproxy metadata proxies of one agent's namespaces, run on ``host``."""

    state_dir: Path
    socket: str
    debug: bool = False
    #: The unprivileged user and group haproxy switches to (None: the agent's own, as Neutron).
    user: str | None = None
    group: str | None = None
    host: Host = field(kw_only=True)

    @classmethod
    def from_config(cls, cfg: Any, host: Host) -> MetadataProxies:
        user, group = proxy_identity(cfg)
        return cls(Path(cfg.state_dir), socket_path(cfg), bool(cfg.default.debug), user, group, host=host)

    def _ensure(self, c: conf.ProxyConf, ns: str) -> str:
        return self.host.haproxy_ensure(
            conf.spec(self.state_dir, c, ns), conf.conf_path(self.state_dir, c.uuid), conf.render(c)
        )

    def ensure_router(self, router_id: str, ns: str) -> str:
        return self._ensure(
            conf.router_conf(
                self.state_dir, router_id, self.socket, debug=self.debug, user=self.user, group=self.group
            ),
            ns,
        )

    def ensure_network(self, network_id: str, ns: str, v6_interface: str | None = None) -> str:
        return self._ensure(
            conf.network_conf(
                self.state_dir,
                network_id,
                self.socket,
                debug=self.debug,
                user=self.user,
                group=self.group,
                v6_interface=v6_interface,
            ),
            ns,
        )

    def stop(self, uuid: str, ns: str | None = None) -> None:
        c = conf.router_conf(self.state_dir, uuid, self.socket)  # only pidfile + uuid matter
        self.host.haproxy_stop(conf.spec(self.state_dir, c, ns or None), conf.conf_path(self.state_dir, uuid))

    def running(self, uuid: str) -> bool:
        c = conf.router_conf(self.state_dir, uuid, self.socket)
        return self.host.haproxy_alive(conf.spec(self.state_dir, c, None))
