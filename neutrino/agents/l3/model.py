"""Typed inputs of the L3 agent's renderer and planner (pure, frozen values).

``L3Config`` is the agent's static configuration (``l3_agent.ini`` names and
defaults).  ``RouterView`` is one legacy (centralised) router as the agent
needs it, built by ``router_view`` from the feed's Neutron API admin views:

* the router (``admin_state_up``, ``external_gateway_info`` with
  ``enable_snat``, ``routes``);
* its ``network:router_interface`` ports -> ``interfaces`` (``qr-`` devices,
  admin up only), each fixed IP with the prefix length of its subnet and the
  subnets' CIDR/gateway;
* its ``network:router_gateway`` port -> ``gateway`` (``qg-`` device), only
  while the router has ``external_gateway_info``;

A router's ports are the ones the router itself records: ``gw_port_id`` and
``interface_port_ids`` of its admin view (the server's ``router_ports``).  A
port's ``device_id`` and ``device_owner`` are written by the port's owner, so
they only have to agree; they never add a port to a router.
* the floating IPs whose ``router_id`` is the router: associated ones (a
  ``port_id`` and ``fixed_ip_address``) and port-forwarding-only ones (no
  port, a non-empty ``port_forwardings`` list);
* network MTUs (a port's MTU is its network's) and IPv4 address scopes (a port's scope is its
  network's ``ipv4_address_scope``: the scope of the pools its subnets came from).

Everything is kept in a stable order (ports by id, floating IPs by address,
forwardings by protocol/external port/id, routes by destination) so the same
state renders byte-identical rules whatever order the feed delivered it in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEVICE_OWNER_ROUTER_GW",
    "DEVICE_OWNER_ROUTER_INTF",
    "GATEWAY_PREFIX",
    "INTERNAL_PREFIX",
    "NAMESPACE_PREFIX",
    "ExtraRoute",
    "FloatingIp",
    "L3Config",
    "PortForwarding",
    "RouterIp",
    "RouterPort",
    "RouterSubnet",
    "RouterView",
    "gateway_name",
    "internal_name",
    "namespace_name",
    "router_view",
    "router_views",
]

DEVICE_OWNER_ROUTER_INTF = "network:router_interface"
DEVICE_OWNER_ROUTER_GW = "network:router_gateway"
NAMESPACE_PREFIX = "qrouter-"
INTERNAL_PREFIX = "qr-"
GATEWAY_PREFIX = "qg-"
_DEV_LEN = 14  # Linux agent device names: prefix + port id prefix


# --- configuration ---------------------------------------------------------------------
@dataclass(frozen=True)
class L3Config:
    """The L3 agent's static configuration.

    ``enable_snat_by_default`` is used when a router's gateway info carries
    no ``enable_snat`` (the server's ``enable_snat_by_default``).
    ``port_forwarding`` = the ``port_forwarding`` agent extension is loaded
    (the ``fip-pf`` chain exists).  ``comment_iptables_rules`` adds the
    ``-m comment`` on rules that have one.
    """

    host: str
    enable_snat_by_default: bool = True
    metadata_port: int = 9697
    enable_metadata_proxy: bool = True
    use_random_fully: bool = True
    port_forwarding: bool = True
    comment_iptables_rules: bool = True


# --- names -----------------------------------------------------------------------------
def namespace_name(router_id: str) -> str:
    """``qrouter-<router id>``."""
    return f"{NAMESPACE_PREFIX}{router_id}"


def internal_name(port_id: str) -> str:
    """``qr-`` + the port id's first 11 characters."""
    return f"{INTERNAL_PREFIX}{port_id[: _DEV_LEN - len(INTERNAL_PREFIX)]}"


def gateway_name(port_id: str) -> str:
    """``qg-`` + the port id's first 11 characters."""
    return f"{GATEWAY_PREFIX}{port_id[: _DEV_LEN - len(GATEWAY_PREFIX)]}"


# --- views -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RouterSubnet:
    id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None = None


@dataclass(frozen=True)
class RouterIp:
    """A fixed IP of a router port with its subnet's prefix length."""

    ip_address: str
    prefixlen: int
    subnet_id: str

    @property
    def cidr(self) -> str:
        """``<ip>/<prefixlen>`` (as the address is configured on the device)."""
        return f"{self.ip_address}/{self.prefixlen}"

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.ip_address).version


@dataclass(frozen=True)
class RouterPort:
    """A router interface (``kind`` "qr") or gateway (``kind`` "qg") port."""

    id: str
    kind: str
    mac: str
    network_id: str
    mtu: int = 1500
    fixed_ips: tuple[RouterIp, ...] = ()
    subnets: tuple[RouterSubnet, ...] = ()
    #: The IPv4 address scope of the port's network (its subnets' pools), None outside any scope.
    address_scope: str | None = None

    @property
    def device(self) -> str:
        return internal_name(self.id) if self.kind == "qr" else gateway_name(self.id)

    @property
    def cidrs(self) -> tuple[str, ...]:
        return tuple(ip.cidr for ip in self.fixed_ips)

    @property
    def first_v4(self) -> str | None:
        """The first IPv4 fixed IP (the gateway's SNAT source), or None."""
        for ip in self.fixed_ips:
            if ip.version == 4:
                return ip.ip_address
        return None


@dataclass(frozen=True)
class PortForwarding:
    """One forwarding of a floating IP: ``external`` ports (on the FIP) -> ``internal`` ones.

    Ranges are inclusive ``(start, end)``; a single port has start == end.
    """

    id: str
    protocol: str
    internal_ip_address: str
    internal_ports: tuple[int, int]
    external_ports: tuple[int, int]


@dataclass(frozen=True)
class FloatingIp:
    """A floating IP of the router: associated (``fixed_ip_address`` set) or
    used by its ``port_forwardings`` only."""

    id: str
    floating_ip_address: str
    fixed_ip_address: str | None = None
    port_id: str | None = None
    port_forwardings: tuple[PortForwarding, ...] = ()

    @property
    def associated(self) -> bool:
        return bool(self.port_id and self.fixed_ip_address)


@dataclass(frozen=True)
class ExtraRoute:
    destination: str
    nexthop: str


@dataclass(frozen=True)
class RouterView:
    """One legacy router as the L3 agent serves it."""

    id: str
    admin_state_up: bool = True
    enable_snat: bool = True
    interfaces: tuple[RouterPort, ...] = ()
    gateway: RouterPort | None = None
    floating_ips: tuple[FloatingIp, ...] = ()
    routes: tuple[ExtraRoute, ...] = ()

    @property
    def namespace(self) -> str:
        return namespace_name(self.id)

    @property
    def gateway_ip(self) -> str | None:
        """The gateway port's first IPv4 address (NAT needs one), or None."""
        return self.gateway.first_v4 if self.gateway is not None else None

    @property
    def active_floating_ips(self) -> tuple[FloatingIp, ...]:
        """Floating IPs actually configured: IPv4, on a router with an IPv4 gateway."""
        if self.gateway_ip is None:
            return ()
        return tuple(f for f in self.floating_ips if ipaddress.ip_address(f.floating_ip_address).version == 4)

    @property
    def ports(self) -> tuple[RouterPort, ...]:
        """Interfaces then the gateway."""
        return self.interfaces + ((self.gateway,) if self.gateway is not None else ())


# --- building views from the feed's API dicts ------------------------------------------
def _values(items: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(items, Mapping):
        return list(items.values())
    return list(items)


def _by_id(items: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    if isinstance(items, Mapping):
        return items
    return {d["id"]: d for d in items}


def _ip_key(ip: str) -> tuple[int, int]:
    try:
        a = ipaddress.ip_address(ip)
        return a.version, int(a)
    except ValueError:
        return 9, 0


def _port(
    d: Mapping[str, Any], kind: str, subnets: Mapping[str, Mapping[str, Any]], networks: Mapping[str, Mapping[str, Any]]
) -> RouterPort:
    ips = []
    subs: dict[str, RouterSubnet] = {}
    for f in d.get("fixed_ips") or ():
        s = subnets.get(f.get("subnet_id", ""))
        if s is None:
            continue  # subnet not (yet) in the feed: the address waits for it
        net = ipaddress.ip_network(s["cidr"], strict=False)
        ips.append(RouterIp(f["ip_address"], net.prefixlen, s["id"]))
        subs.setdefault(
            s["id"],
            RouterSubnet(s["id"], s["cidr"], int(s.get("ip_version") or net.version), s.get("gateway_ip") or None),
        )
    ips.sort(key=lambda i: (_ip_key(i.ip_address), i.subnet_id))
    net_d = networks.get(d.get("network_id", "")) or {}
    mtu = int(net_d.get("mtu") or 0) or 1500
    scope = net_d.get("ipv4_address_scope") or None
    return RouterPort(
        d["id"],
        kind,
        str(d.get("mac_address", "")).lower(),
        d.get("network_id") or "",
        mtu,
        tuple(ips),
        tuple(subs[k] for k in sorted(subs)),
        str(scope) if scope is not None else None,
    )


def _port_range(pf: Mapping[str, Any], side: str) -> tuple[int, int] | None:
    """``<side>_port`` (single) or ``<side>_port_range`` ("a:b" / "a-b") or start/end keys."""
    single = pf.get(f"{side}_port")
    if single not in (None, ""):
        return int(single), int(single)
    rng = pf.get(f"{side}_port_range")
    if rng:
        text = str(rng).replace("-", ":")
        a, _, b = text.partition(":")
        return int(a), int(b or a)
    start, end = pf.get(f"{side}_port_start"), pf.get(f"{side}_port_end")
    if start not in (None, ""):
        return int(start), int(end if end not in (None, "") else start)
    return None


def _forwarding(pf: Mapping[str, Any]) -> PortForwarding | None:
    internal = _port_range(pf, "internal")
    external = _port_range(pf, "external")
    if internal is None or external is None or not pf.get("internal_ip_address"):
        return None
    return PortForwarding(
        str(pf["id"]), str(pf.get("protocol") or "tcp").lower(), str(pf["internal_ip_address"]), internal, external
    )


def _floating_ip(d: Mapping[str, Any]) -> FloatingIp | None:
    pfs = [p for p in (_forwarding(x) for x in d.get("port_forwardings") or ()) if p is not None]
    pfs.sort(key=lambda p: (p.protocol, p.external_ports, p.id))
    fip = FloatingIp(
        d["id"], d["floating_ip_address"], d.get("fixed_ip_address") or None, d.get("port_id") or None, tuple(pfs)
    )
    if fip.associated:
        return fip
    if pfs:
        return FloatingIp(fip.id, fip.floating_ip_address, None, None, fip.port_forwardings)
    return None


def router_view(
    router: Mapping[str, Any],
    ports: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    subnets: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    networks: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    floatingips: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    cfg: L3Config | None = None,
) -> RouterView:
    """The view of ``router`` from API dicts; other routers' ports and FIPs are ignored."""
    rid = router["id"]
    subs, nets = _by_id(subnets), _by_id(networks)
    gw_info = router.get("external_gateway_info") or None
    default_snat = cfg.enable_snat_by_default if cfg is not None else True
    enable_snat = default_snat
    if gw_info is not None and gw_info.get("enable_snat") is not None:
        enable_snat = bool(gw_info["enable_snat"])
    owned = frozenset(router.get("interface_port_ids") or ())
    gw_port_id = router.get("gw_port_id") or None
    interfaces, gateway = [], None
    for p in _values(ports):
        if p.get("device_id") != rid:
            continue
        owner = p.get("device_owner")
        if owner == DEVICE_OWNER_ROUTER_INTF and p.get("id") in owned and p.get("admin_state_up", True):
            interfaces.append(_port(p, "qr", subs, nets))
        elif owner == DEVICE_OWNER_ROUTER_GW and gw_info is not None and p.get("id") == gw_port_id:
            gateway = _port(p, "qg", subs, nets)
    interfaces.sort(key=lambda p: p.id)
    fips = [f for f in (_floating_ip(d) for d in _values(floatingips) if d.get("router_id") == rid) if f is not None]
    fips.sort(key=lambda f: (_ip_key(f.floating_ip_address), f.id))
    routes = sorted(
        {ExtraRoute(str(r["destination"]), str(r["nexthop"])) for r in router.get("routes") or ()},
        key=lambda r: (r.destination, _ip_key(r.nexthop)),
    )
    return RouterView(
        rid,
        bool(router.get("admin_state_up", True)),
        enable_snat,
        tuple(interfaces),
        gateway,
        tuple(fips),
        tuple(routes),
    )


def router_views(
    routers: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    ports: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    subnets: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    networks: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    floatingips: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    cfg: L3Config | None = None,
) -> dict[str, RouterView]:
    """``router_view`` for every router given (those scheduled to this agent), by id."""
    rlist = _values(routers)
    ids = {r["id"] for r in rlist}
    owner_of = {
        pid: r["id"] for r in rlist for pid in (r.get("gw_port_id"), *(r.get("interface_port_ids") or ())) if pid
    }
    by_router_ports: dict[str, list[Mapping[str, Any]]] = {}
    for p in _values(ports):
        rid = owner_of.get(p.get("id", ""))
        if rid is not None:
            by_router_ports.setdefault(rid, []).append(p)
    by_router_fips: dict[str, list[Mapping[str, Any]]] = {}
    for f in _values(floatingips):
        if f.get("router_id") in ids:
            by_router_fips.setdefault(f["router_id"], []).append(f)
    subs, nets = _by_id(subnets), _by_id(networks)
    return {
        r["id"]: router_view(r, by_router_ports.get(r["id"], []), subs, nets, by_router_fips.get(r["id"], []), cfg)
        for r in rlist
    }
