"""The haproxy metadata proxy of one router or one network (pure).

One haproxy per router (in ``qrouter-<id>``, on ``0.0.0.0:9697``; the L3
rules redirect ``169.254.169.254:80`` there) and per network that serves
metadata from its DHCP namespace (``qdhcp-<id>``, bound to
``169.254.169.254:80``).  It adds ``X-Forwarded-For`` (the VM's address)
and ``X-Neutron-Router-ID`` or ``X-Neutron-Network-ID``, drops the other
one and any client-sent copy, and forwards to the metadata agent's unix
socket.  Configuration as Neutron renders it (reference §5.2), with three
differences, all for cost per namespace and per request
(bench/metadata_bench.py):

* ``nbthread 1`` (Neutron: 2): each thread costs ~1 MB, one is plenty.
* ``httpclient.ssl.verify none``: haproxy's internal HTTP client (used by
  Lua scripts only, never here) otherwise loads the whole system CA store
  and builds a TLS context at start-up, ~0.9 MB of private memory per proxy.
* no ``option http-server-close``: connections to the agent are kept alive
  and reused (haproxy's default ``http-reuse safe``), so a request costs
  the proxy and the agent no connect/accept/close.  Each request still
  carries its own ``X-Forwarded-For`` and ``X-Neutron-*-ID`` (haproxy
  rewrites the headers of every request, not only a connection's first),
  and the agent resolves every request on its own headers, so requests of
  different instances sharing a connection cannot be confused.

Files (Neutron's layout): ``STATE/ns-metadata-proxy/<uuid>.conf`` and the
pidfile ``STATE/external/pids/<uuid>.pid.haproxy``; the command is
``haproxy -f <conf>`` run in the namespace.  The process is recognised by
the uuid in its command line (the conf path).  haproxy reads the
configuration, binds and writes its pidfile as root, then switches to the
``user``/``group`` of the configuration (``MetadataProxies`` passes the
unprivileged ``[metadata] metadata_proxy_user``/``_group``; the builders
here default to the agent's own user, as Neutron does).
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from neutrino.system.process import ProcessSpec

__all__ = [
    "L3_BIND",
    "DHCP_BIND",
    "ProxyConf",
    "conf_path",
    "pidfile_path",
    "render",
    "same_config",
    "spec",
    "router_conf",
    "network_conf",
]

L3_BIND = "0.0.0.0:9697"
DHCP_BIND = "169.254.169.254:80"
MAXCONN = 1024
#: One thread: the proxy costs ~0.1 ms CPU per request, far from the bottleneck (the agent and
#: the metadata API), and each extra thread adds ~1 MB RSS per namespace (bench/metadata_bench.py).
NBTHREAD = 1
#: ``[haproxy]`` timeouts (Neutron's defaults).
TIMEOUTS = (
    ("http-request", "30s"),
    ("connect", "30s"),
    ("client", "32s"),
    ("server", "32s"),
    ("http-keep-alive", "30s"),
)


@dataclass(frozen=True)
class ProxyConf:
    uuid: str
    #: "router" or "network": which X-Neutron-*-ID header this proxy sets.
    kind: str
    bind: str
    socket_path: str
    pidfile: str
    user: str
    group: str
    debug: bool = False
    #: optional ``bind [fe80::a9fe:a9fe]:80 interface <dev>`` (DHCP, IPv6 metadata)
    v6_interface: str | None = None

    @property
    def header(self) -> str:
        return "X-Neutron-Router-ID" if self.kind == "router" else "X-Neutron-Network-ID"

    @property
    def other_header(self) -> str:
        return "X-Neutron-Network-ID" if self.kind == "router" else "X-Neutron-Router-ID"


def _names() -> tuple[str, str]:
    """The agent's effective user and group, as names (Neutron's default user/group)."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    try:
        group = grp.getgrgid(os.getegid()).gr_name
    except KeyError:
        group = str(os.getegid())
    return user, group


def conf_path(state_dir: Path, uuid: str) -> Path:
    return Path(state_dir) / "ns-metadata-proxy" / f"{uuid}.conf"


def pidfile_path(state_dir: Path, uuid: str) -> Path:
    return Path(state_dir) / "external" / "pids" / f"{uuid}.pid.haproxy"


def router_conf(
    state_dir: Path,
    router_id: str,
    socket_path: str,
    *,
    debug: bool = False,
    user: str | None = None,
    group: str | None = None,
) -> ProxyConf:
    u, g = _names()
    return ProxyConf(
        router_id, "router", L3_BIND, socket_path, str(pidfile_path(state_dir, router_id)), user or u, group or g, debug
    )


def network_conf(
    state_dir: Path,
    network_id: str,
    socket_path: str,
    *,
    debug: bool = False,
    user: str | None = None,
    group: str | None = None,
    v6_interface: str | None = None,
) -> ProxyConf:
    u, g = _names()
    return ProxyConf(
        network_id,
        "network",
        DHCP_BIND,
        socket_path,
        str(pidfile_path(state_dir, network_id)),
        user or u,
        group or g,
        debug,
        v6_interface,
    )


def render(c: ProxyConf) -> str:
    """The haproxy configuration text."""
    lines = [
        "global",
        f"    log         /dev/log local0 {'debug' if c.debug else 'info'}",
        f"    log-tag     haproxy-metadata-proxy-{c.uuid}",
        f"    user        {c.user}",
        f"    group       {c.group}",
        f"    maxconn     {MAXCONN}",
        f"    nbthread    {NBTHREAD}",
        f"    pidfile     {c.pidfile}",
        "    daemon",
        # The internal HTTP client (Lua only) would load the system CA store: ~0.9 MB per proxy.
        "    httpclient.ssl.verify none",
        "",
        "defaults",
        "    log global",
        "    mode http",
        "    option httplog",
        "    option dontlognull",
        # No "option http-server-close": the connections to the agent are kept alive.
        "    option forwardfor",
        "    retries                 3",
        *[f"    timeout {name:<16} {value}" for name, value in TIMEOUTS],
        "",
        "listen listener",
        f"    bind {c.bind}",
    ]
    if c.v6_interface:
        lines.append(f"    bind [fe80::a9fe:a9fe]:80 interface {c.v6_interface}")
    lines += [
        f"    server metadata {c.socket_path}",
        # The VM's address is the one haproxy adds (option forwardfor); never a client's copy.
        "    http-request del-header X-Forwarded-For",
        f"    http-request del-header {c.other_header}",
        f"    http-request set-header {c.header} {c.uuid}",
        "",
    ]
    return "\n".join(lines)


def _without_pidfile(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.strip().startswith("pidfile")]


def same_config(old: str | None, new: str) -> bool:
    """Equal but for the pidfile line (Neutron restarts the proxy only when this is False)."""
    return old is not None and _without_pidfile(old) == _without_pidfile(new)


def spec(state_dir: Path, c: ProxyConf, netns: str | None) -> ProcessSpec:
    """How to run (and recognise) the proxy: ``haproxy -f <conf>`` in ``netns``; haproxy
    daemonises and writes the pidfile itself; the uuid is in the conf path."""
    return ProcessSpec(
        argv=("haproxy", "-f", str(conf_path(state_dir, c.uuid))),
        pidfile=Path(c.pidfile),
        netns=netns,
        uuid=c.uuid,
        daemonizes=True,
    )
