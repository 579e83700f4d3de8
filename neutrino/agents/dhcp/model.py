"""Typed inputs of the DHCP agent's renderers and planner (pure, frozen values).

``DhcpConfig`` is the agent's static configuration (``dhcp_agent.ini`` and
the ``neutron.conf`` options it reads).  ``NetworkView`` is one network as
the agent needs it: the network, all its subnets and all its ports, built
from the feed's Neutron API admin views by ``network_view``; each subnet
carries whether it is *isolated* (no router port holds its gateway IP).

Strings follow Neutron's API: MACs lower-case ``fa:16:3e:11:22:33``, IPs and
CIDRs as plain text.  Ports and subnets are kept in a stable order (ports by
first address, then id; subnets in the network's ``subnets`` order, then by
id) so that the same state renders byte-identical files whatever order the
feed delivered it in.

Values that dnsmasq's files carry are checked strictly when a view is built
(``port_problem``, ``subnet_problem``): addresses are addresses
(``neutrino.ipam.addresses``: no IPv6 scope id, blank or control character),
and nothing that ends up as one field of a hosts or opts line holds a comma,
a blank or a control character.  A port that fails is left out of its
network's view (no DHCP entries) and named in ``NetworkView.problems``; a
subnet that fails (or this host's own DHCP port) ``hold``s the whole network:
the planner leaves it as it is on the host and reports it.  Other networks
are never affected.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from neutrino.ipam import addresses

__all__ = [
    "DEVICE_OWNER_DHCP",
    "DEVICE_OWNER_DISTRIBUTED",
    "DHCPV6_STATEFUL",
    "DHCPV6_STATELESS",
    "IPV6_SLAAC",
    "NAMESPACE_PREFIX",
    "ROUTER_INTERFACE_OWNERS",
    "DhcpConfig",
    "DnsName",
    "ExtraDhcpOpt",
    "FixedIp",
    "HostRoute",
    "NetworkView",
    "PortView",
    "SubnetView",
    "dhcp_device_id",
    "namespace_name",
    "network_view",
    "network_views",
    "port_problem",
    "subnet_problem",
    "tap_name",
]

DEVICE_OWNER_DHCP = "network:dhcp"
DEVICE_OWNER_DISTRIBUTED = "network:distributed"  # OVN metadata port
#: A port with one of these owners holding a subnet's gateway IP makes it "routed".
ROUTER_INTERFACE_OWNERS = frozenset(
    {
        "network:router_interface",
        "network:ha_router_replicated_interface",
        "network:router_interface_distributed",
    }
)
DHCPV6_STATEFUL = "dhcpv6-stateful"
DHCPV6_STATELESS = "dhcpv6-stateless"
IPV6_SLAAC = "slaac"
NAMESPACE_PREFIX = "qdhcp-"
TAP_PREFIX = "tap"
_DEV_ID_LEN = 11  # Linux device names: prefix + port id[:11] <= 14 chars


# --- configuration ---------------------------------------------------------------------
@dataclass(frozen=True)
class DhcpConfig:
    """The DHCP agent's static configuration (Neutron option names and defaults).

    ``state_dir`` is the directory holding one conf dir per network
    (Neutron's ``dhcp_confs``, ``$state_path/dhcp``).  ``dhcp_lease_duration``
    of -1 means infinite leases.  ``interface_bridged`` is True for the OVS
    interface driver (dnsmasq then gets no ``--bridge-interface``).
    """

    host: str
    state_dir: str = "/var/lib/neutron/dhcp"
    dhcp_lease_duration: int = 86400
    dns_domain: str = "openstacklocal"
    dnsmasq_dns_servers: tuple[str, ...] = ()
    dnsmasq_local_resolv: bool = False
    enable_isolated_metadata: bool = False
    force_metadata: bool = False
    dhcp_renewal_time: int = 0
    dhcp_rebinding_time: int = 0
    dnsmasq_lease_max: int = 2**24
    dnsmasq_config_file: str = ""
    dnsmasq_txt_record: str = ""
    dhcp_broadcast_reply: bool = False
    dnsmasq_base_log_dir: str | None = None
    interface_bridged: bool = True

    def conf_dir(self, network_id: str) -> str:
        """``<state_dir>/<network_id>``: holds host, addn_hosts, opts, leases, pid, interface."""
        return posixpath.join(self.state_dir, network_id)

    @property
    def metadata_enabled(self) -> bool:
        """True if the DHCP namespace may serve metadata at all."""
        return self.force_metadata or self.enable_isolated_metadata


# --- names -----------------------------------------------------------------------------
def namespace_name(network_id: str) -> str:
    """``qdhcp-<network id>``."""
    return f"{NAMESPACE_PREFIX}{network_id}"


def tap_name(port_id: str) -> str:
    """``tap`` + the port id's first 11 characters (``tapaaaaaaaa-aa``)."""
    return f"{TAP_PREFIX}{port_id[:_DEV_ID_LEN]}"


def dhcp_device_id(host: str, network_id: str) -> str:
    """``dhcp<uuid5(NAMESPACE_DNS, short host name)>-<network id>``.

    The short host name (up to the first dot) is hashed, so ``net1`` and
    ``net1.example.org`` own the same DHCP ports.
    """
    short = host.split(".", 1)[0]
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, short)}-{network_id}"


# --- views -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedIp:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True)
class DnsName:
    """One ``dns_assignment`` entry; ``fqdn`` without the trailing dot."""

    ip_address: str
    hostname: str
    fqdn: str


@dataclass(frozen=True)
class ExtraDhcpOpt:
    """One ``extra_dhcp_opts`` entry; ``opt_value`` None means "unset" (ignored)."""

    opt_name: str
    opt_value: str | None
    ip_version: int = 4


@dataclass(frozen=True)
class HostRoute:
    destination: str
    nexthop: str


@dataclass(frozen=True)
class PortView:
    id: str
    mac: str
    device_owner: str = ""
    device_id: str = ""
    fixed_ips: tuple[FixedIp, ...] = ()
    extra_dhcp_opts: tuple[ExtraDhcpOpt, ...] = ()
    dns_assignment: tuple[DnsName, ...] = ()
    admin_state_up: bool = True

    def ips_on(self, subnet_id: str) -> tuple[str, ...]:
        return tuple(f.ip_address for f in self.fixed_ips if f.subnet_id == subnet_id)

    def names_for(self, ip: str) -> DnsName | None:
        want = _norm_ip(ip)
        for d in self.dns_assignment:
            if _norm_ip(d.ip_address) == want:
                return d
        return None


@dataclass(frozen=True)
class SubnetView:
    id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    segment_id: str | None = None
    #: No port owned by a router interface holds ``gateway_ip`` (always True without a gateway).
    isolated: bool = True

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).prefixlen

    @property
    def dhcp_served(self) -> bool:
        """dnsmasq serves this subnet: IPv4, or IPv6 DHCPv6-stateful/-stateless or modeless."""
        if self.ip_version != 6:
            return True
        if self.ipv6_address_mode is None:
            return self.ipv6_ra_mode is None
        return self.ipv6_address_mode in (DHCPV6_STATEFUL, DHCPV6_STATELESS)

    @property
    def stateless(self) -> bool:
        """No DHCP-assigned address on this subnet (SLAAC or DHCPv6-stateless)."""
        if self.ip_version != 6:
            return False
        mode = self.ipv6_address_mode or self.ipv6_ra_mode
        return mode in (IPV6_SLAAC, DHCPV6_STATELESS)


@dataclass(frozen=True)
class NetworkView:
    """One network as the DHCP agent serves it."""

    id: str
    mtu: int = 1500
    admin_state_up: bool = True
    subnets: tuple[SubnetView, ...] = ()
    ports: tuple[PortView, ...] = ()
    #: What was left out of this view (or why it is held), for the agent's report.
    problems: tuple[str, ...] = ()
    #: A subnet or this host's DHCP port cannot be rendered: leave the network as it is.
    held: bool = False

    def subnet(self, subnet_id: str) -> SubnetView | None:
        for s in self.subnets:
            if s.id == subnet_id:
                return s
        return None

    @property
    def dhcp_subnets(self) -> tuple[SubnetView, ...]:
        """Subnets with ``enable_dhcp`` (SLAAC ones included: the DHCP port gets an IP there)."""
        return tuple(s for s in self.subnets if s.enable_dhcp)

    @property
    def dhcp_ports(self) -> tuple[PortView, ...]:
        """Every DHCP port of the network (all agents')."""
        return tuple(p for p in self.ports if p.device_owner == DEVICE_OWNER_DHCP)

    def dhcp_port(self, host: str) -> PortView | None:
        """This host's DHCP port (by its ``device_id``), or None."""
        device_id = dhcp_device_id(host, self.id)
        for p in self.dhcp_ports:
            if p.device_id == device_id:
                return p
        return None


# --- strict checks of what goes into dnsmasq's files ------------------------------------
#: One field of a hosts/opts line: no comma (the field separator), blank or control character.
_FIELD = re.compile(r"[^\s,\x00-\x1f\x7f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


def _shown(value: object) -> str:
    """A value for a report (bounded: it may be anything a tenant sent)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_field(value: object) -> bool:
    """``value`` can be one field of a dnsmasq hosts or opts line."""
    return isinstance(value, str) and _FIELD.fullmatch(value) is not None


def port_problem(port: PortView) -> str | None:
    """Why ``port`` cannot be written into dnsmasq's files, or None (pure)."""
    if not is_field(port.id):
        return f"id {_shown(port.id)} cannot be a tag"
    if not _MAC.fullmatch(port.mac):
        return f"MAC address {_shown(port.mac)} is not a MAC address"
    for f in port.fixed_ips:
        if not addresses.is_ip(f.ip_address):
            return f"fixed IP {_shown(f.ip_address)} is not an IP address"
    for d in port.dns_assignment:
        if not (is_field(d.hostname) and (not d.fqdn or is_field(d.fqdn))):
            return f"DNS name {_shown(d.fqdn or d.hostname)} cannot be a host name"
    for o in port.extra_dhcp_opts:
        if not is_field(o.opt_name):
            return f"DHCP option name {_shown(o.opt_name)} cannot be an option"
        if o.opt_value is not None and (
            _CONTROL.search(o.opt_value) or (o.opt_name == "client-id" and not is_field(o.opt_value))
        ):
            return f"DHCP option value {_shown(o.opt_value)} cannot be written"
    return None


def subnet_problem(sub: SubnetView) -> str | None:
    """Why ``sub`` cannot be rendered (its addresses, routes, id), or None (pure)."""
    if not is_field(sub.id):
        return f"id {_shown(sub.id)} cannot be a tag"
    try:
        if addresses.parse_network(sub.cidr).version != sub.ip_version:
            return f"cidr {_shown(sub.cidr)} is not IPv{sub.ip_version}"
    except ValueError:
        return f"cidr {_shown(sub.cidr)} is not a prefix"
    for what, value in (
        ("gateway_ip", sub.gateway_ip),
        *(("dns_nameservers", ns) for ns in sub.dns_nameservers),
        *(("host_routes nexthop", r.nexthop) for r in sub.host_routes),
    ):
        if value is not None and not addresses.is_ip(value):
            return f"{what} {_shown(value)} is not an IP address"
    for r in sub.host_routes:
        if not addresses.is_ip_or_network(r.destination):
            return f"host_routes destination {_shown(r.destination)} is not a prefix"
    return None


def _checked(net: NetworkView, host: str | None) -> NetworkView:
    """``net`` without the ports that fail ``port_problem``, held if a subnet (or, with
    ``host``, that host's DHCP port) fails; what was done is in ``problems``."""
    problems = list(net.problems)
    held = net.held
    for s in net.subnets:
        why = subnet_problem(s)
        if why:
            problems.append(f"subnet {s.id}: {why}; network left as it is")
            held = True
    ports = []
    own = dhcp_device_id(host, net.id) if host is not None else None
    for p in net.ports:
        why = port_problem(p)
        if why is None:
            ports.append(p)
            continue
        if p.device_owner == DEVICE_OWNER_DHCP and (own is None or p.device_id == own):
            problems.append(f"DHCP port {p.id}: {why}; network left as it is")
            held = True
        else:
            problems.append(f"port {p.id}: {why}; no DHCP entries for it")
    if not problems:
        return net
    return NetworkView(net.id, net.mtu, net.admin_state_up, net.subnets, tuple(ports), tuple(problems), held)


# --- building views from the feed's API dicts ------------------------------------------
def _norm_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def _values(items: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(items, Mapping):
        return list(items.values())
    return list(items)


def _port(d: Mapping[str, Any]) -> PortView:
    fixed = tuple(FixedIp(f["subnet_id"], f["ip_address"]) for f in d.get("fixed_ips") or ())
    opts = []
    for o in d.get("extra_dhcp_opts") or ():
        version = o.get("ip_version")
        opts.append(
            ExtraDhcpOpt(
                str(o["opt_name"]),
                None if o.get("opt_value") is None else str(o["opt_value"]),
                int(version) if version not in (None, "") else 4,
            )
        )
    names = tuple(
        DnsName(a["ip_address"], a.get("hostname") or "", (a.get("fqdn") or "").rstrip("."))
        for a in d.get("dns_assignment") or ()
        if a.get("hostname")
    )
    return PortView(
        d["id"],
        str(d.get("mac_address", "")).lower(),
        d.get("device_owner") or "",
        d.get("device_id") or "",
        fixed,
        tuple(opts),
        names,
        bool(d.get("admin_state_up", True)),
    )


def _port_order(port: PortView) -> tuple[int, int, str]:
    """Ports by their first address (IPv4 before IPv6), address-less ones last, then by id."""
    if port.fixed_ips:
        try:
            ip = ipaddress.ip_address(port.fixed_ips[0].ip_address)
            return ip.version, int(ip), port.id
        except ValueError:
            pass
    return 7, 0, port.id


def _isolated(sub: Mapping[str, Any], ports: Iterable[PortView]) -> bool:
    gateway = sub.get("gateway_ip")
    if not gateway:
        return True
    gw = _norm_ip(gateway)
    for p in ports:
        if p.device_owner not in ROUTER_INTERFACE_OWNERS:
            continue
        if any(f.subnet_id == sub["id"] and _norm_ip(f.ip_address) == gw for f in p.fixed_ips):
            return False
    return True


def _subnet(d: Mapping[str, Any], ports: Iterable[PortView]) -> SubnetView:
    routes = tuple(HostRoute(r["destination"], r["nexthop"]) for r in d.get("host_routes") or ())
    return SubnetView(
        id=d["id"],
        cidr=d["cidr"],
        ip_version=int(d["ip_version"]),
        gateway_ip=d.get("gateway_ip") or None,
        enable_dhcp=bool(d.get("enable_dhcp", True)),
        ipv6_address_mode=d.get("ipv6_address_mode") or None,
        ipv6_ra_mode=d.get("ipv6_ra_mode") or None,
        dns_nameservers=tuple(d.get("dns_nameservers") or ()),
        host_routes=routes,
        segment_id=d.get("segment_id"),
        isolated=_isolated(d, ports),
    )


def network_view(
    network: Mapping[str, Any],
    subnets: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    ports: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    host: str | None = None,
) -> NetworkView:
    """The view of ``network`` from API dicts; subnets/ports of other networks are ignored.

    Checked (``_checked``): ports that cannot be rendered are left out, a subnet (or
    ``host``'s DHCP port; any DHCP port without ``host``) that cannot be holds it.
    A network whose dicts cannot even be read is a held view of its id."""
    try:
        return _checked(_network_view(network, subnets, ports), host)
    except (KeyError, TypeError, ValueError) as exc:
        return NetworkView(
            str(network.get("id")), problems=(f"cannot be read ({type(exc).__name__}: {_shown(str(exc))})",), held=True
        )


def _network_view(
    network: Mapping[str, Any],
    subnets: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    ports: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
) -> NetworkView:
    net_id = network["id"]
    pviews = tuple(sorted((_port(p) for p in _values(ports) if p.get("network_id") == net_id), key=_port_order))
    order = {sid: i for i, sid in enumerate(network.get("subnets") or ())}
    sdicts = sorted(
        (s for s in _values(subnets) if s.get("network_id") == net_id),
        key=lambda s: (order.get(s["id"], len(order)), s["id"]),
    )
    return NetworkView(
        net_id,
        int(network.get("mtu") or 0),
        bool(network.get("admin_state_up", True)),
        tuple(_subnet(s, pviews) for s in sdicts),
        pviews,
    )


def network_views(
    networks: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    subnets: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    ports: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    host: str | None = None,
) -> dict[str, NetworkView]:
    """``network_view`` for every network given, keyed by network id (one pass over ports)."""
    by_net_sub: dict[str, list[Mapping[str, Any]]] = {}
    by_net_port: dict[str, list[Mapping[str, Any]]] = {}
    for s in _values(subnets):
        by_net_sub.setdefault(s.get("network_id", ""), []).append(s)
    for p in _values(ports):
        by_net_port.setdefault(p.get("network_id", ""), []).append(p)
    return {
        n["id"]: network_view(n, by_net_sub.get(n["id"], []), by_net_port.get(n["id"], []), host)
        for n in _values(networks)
    }
