"""Pure renderers of one network's dnsmasq command line, config files and tap addresses.

Everything here is a function of ``(DhcpConfig, NetworkView[, DHCP port])``
and returns text or argv; nothing touches the host.  The formats are
Neutron's ``Dnsmasq`` driver's, so a Neutron-trained operator finds the same
files in ``<state_dir>/<network id>/``:

* ``host`` (``--dhcp-hostsfile``), one ``dhcp-host`` per port address::

      fa:16:3e:11:22:33,host-10-0-0-5.openstacklocal,10.0.0.5

* ``addn_hosts`` (``--addn-hosts``), an ``/etc/hosts`` of the same names::

      10.0.0.5<TAB>host-10-0-0-5.openstacklocal host-10-0-0-5

* ``opts`` (``--dhcp-optsfile``), ``dhcp-option`` lines tagged per subnet/port::

      tag:subnet-S,option:router,10.0.0.1

* ``leases`` (``--dhcp-leasefile``), bootstrapped before each (re)start::

      0 fa:16:3e:11:22:33 10.0.0.5 * *

Ports whose owner is in ``HOSTS_EXCLUDED_OWNERS`` (the DHCP ports themselves,
floating IPs, HA and OVN metadata ports) get no entries; router interface
and gateway ports do.

No line carries a field dnsmasq would read as more than one (issue 13): every
field of a hosts, addn_hosts, leases or opts line and of a ``--dhcp-range``
is checked (``model.is_field``: no comma, blank or control character), and an
extra DHCP option's value (a dnsmasq value list, commas allowed) has no
control character.  A line that fails is not written; the renderers that
take ``skipped`` append why to it (the planner reports it).  The views are
checked when built (``model.port_problem``/``subnet_problem``), so this is a
second line of defence that should never trigger.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from neutrino.agents.dhcp.model import (
    DEVICE_OWNER_DHCP,
    DEVICE_OWNER_DISTRIBUTED,
    DhcpConfig,
    NetworkView,
    PortView,
    SubnetView,
    is_field,
)
from neutrino.agents.dhcp.model import tap_name as _tap_name

# The option tables the API validates with (pure, shared by the server and the agents).
from neutrino.shared.dnsmasq_options import is_blank, placements

__all__ = [
    "FILE_ADDN_HOSTS",
    "FILE_HOST",
    "FILE_INTERFACE",
    "FILE_LEASES",
    "FILE_OPTS",
    "FILE_PID",
    "HOSTS_EXCLUDED_OWNERS",
    "METADATA_CIDR",
    "METADATA_IP",
    "METADATA_V6_CIDR",
    "addn_hosts_file",
    "default_route",
    "dhcp_ranges",
    "dnsmasq_argv",
    "hosts_file",
    "interface_addresses",
    "lease_max",
    "leases_file",
    "opts_file",
    "wants_metadata_proxy",
]

FILE_HOST = "host"
FILE_ADDN_HOSTS = "addn_hosts"
FILE_OPTS = "opts"
FILE_LEASES = "leases"
FILE_PID = "pid"
FILE_INTERFACE = "interface"

METADATA_IP = "169.254.169.254"
METADATA_CIDR = "169.254.169.254/32"
METADATA_V6_CIDR = "fe80::a9fe:a9fe/128"

HOSTS_EXCLUDED_OWNERS = frozenset(
    {
        "network:router_ha_interface",
        "network:floatingip",
        DEVICE_OWNER_DHCP,
        DEVICE_OWNER_DISTRIBUTED,
    }
)
CLIENT_ID = "client-id"
DHCPV6_HOST_TAG = "tag:dhcpv6"
_MIN_V6_PREFIX = 64  # dnsmasq cannot serve DHCPv6 ranges on shorter prefixes
_ANY4 = "0.0.0.0"


# --- the line guard ----------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe(what: str, fields: list[str], skipped: list[str] | None, value: str | None = None) -> bool:
    """``fields`` may each be one field of a line (and ``value``, a dnsmasq value list,
    has no control character); else the line is skipped and ``skipped`` says why."""
    bad = next((f for f in fields if not is_field(f)), None)
    if bad is None and (value is None or not _CONTROL.search(value)):
        return True
    if skipped is not None:
        shown = repr(bad if bad is not None else value)
        skipped.append(
            f"{what} not written: {shown if len(shown) <= 60 else shown[:57] + '...'} cannot be a dnsmasq field"
        )
    return False


# --- host iteration --------------------------------------------------------------------
@dataclass(frozen=True)
class _Host:
    port: PortView
    subnet: SubnetView
    ip: str
    hostname: str
    fqdn: str


def _default_names(cfg: DhcpConfig, ip: str) -> tuple[str, str]:
    hostname = "host-" + ip.replace(".", "-").replace(":", "-")
    return hostname, f"{hostname}.{cfg.dns_domain}" if cfg.dns_domain else hostname


def _served_ports(net: NetworkView) -> Iterator[PortView]:
    return (p for p in net.ports if p.device_owner not in HOSTS_EXCLUDED_OWNERS)


def _port_hosts(cfg: DhcpConfig, net: NetworkView, port: PortView) -> list[_Host]:
    """One entry per fixed IP of ``port`` on a DHCP-enabled subnet, in ``fixed_ips`` order."""
    out = []
    for f in port.fixed_ips:
        sub = net.subnet(f.subnet_id)
        if sub is None or not sub.enable_dhcp:
            continue
        names = port.names_for(f.ip_address)
        if names is not None:
            hostname, fqdn = names.hostname, names.fqdn or names.hostname
        else:
            hostname, fqdn = _default_names(cfg, f.ip_address)
        out.append(_Host(port, sub, f.ip_address, hostname, fqdn))
    return out


def _active_opts(port: PortView) -> list[tuple[str, str, int]]:
    """(name, value, ip_version) of the port's extra DHCP options as dnsmasq gets them
    (``dnsmasq_options.placements``): an option the API accepted but dnsmasq could not parse (a name it
    does not know, an IPv6 address for an IPv4 option without a DHCPv6 twin, ...) is left out, and the
    API shows it on the port (``binding:vif_details.dhcp_opts_left_out``); an address option given
    with addresses of the other IP version is served as that version's option of the same name."""
    return placements((o.opt_name, o.opt_value, o.ip_version) for o in port.extra_dhcp_opts)[0]


def _client_id(port: PortView, version: int) -> str | None:
    for name, value, v in _active_opts(port):
        if name == CLIENT_ID and v == version:
            return value
    return None


def _tagged(port: PortView) -> bool:
    """The port's hosts lines set ``port-<id>`` (it has options besides client-id)."""
    return any(name != CLIENT_ID for name, _, _ in _active_opts(port))


# --- host / addn_hosts / leases ----------------------------------------------------------
def hosts_file(cfg: DhcpConfig, net: NetworkView, skipped: list[str] | None = None) -> str:
    """The ``--dhcp-hostsfile``: one line per port address on a DHCP-enabled subnet.

    Line shapes (``set:port-<id>`` only for ports with extra DHCP options
    other than client-id, which goes in ``id:``)::

        fa:16:3e:11:22:33,host-10-0-0-5.openstacklocal,10.0.0.5
        fa:16:3e:11:22:33,host-10-0-0-5.openstacklocal,10.0.0.5,set:port-<id>
        fa:16:3e:11:22:33,id:<client id>,host-10-0-0-5.openstacklocal,10.0.0.5
        fa:16:3e:11:22:33,tag:dhcpv6,host-2001-db8--5.openstacklocal,[2001:db8::5]
        fa:16:3e:11:22:33,set:port-<id>          (SLAAC/DHCPv6-stateless, with options)

    For a port, the address-less IPv6 line comes before its other lines
    (dnsmasq matches the last line for a MAC).  Every line ends in a newline.
    """
    lines: list[str] = []
    for port in _served_ports(net):
        hosts = _port_hosts(cfg, net, port)
        tag = f"set:port-{port.id}" if _tagged(port) else None
        if (
            tag
            and any(h.subnet.stateless for h in hosts)
            and _safe(f"hosts line of port {port.id}", [port.mac, tag], skipped)
        ):
            lines.append(f"{port.mac},{tag}")
        for h in hosts:
            if h.subnet.stateless or not h.subnet.dhcp_served:
                continue
            fields = [port.mac]
            client_id = _client_id(port, h.subnet.ip_version)
            if client_id:
                fields.append(f"id:{client_id}")
            if h.subnet.ip_version == 6:
                fields += [DHCPV6_HOST_TAG, h.fqdn, f"[{h.ip}]"]
            else:
                fields += [h.fqdn, h.ip]
            if tag:
                fields.append(tag)
            if _safe(f"hosts line of port {port.id}", fields, skipped):
                lines.append(",".join(fields))
    return "".join(line + "\n" for line in lines)


def addn_hosts_file(cfg: DhcpConfig, net: NetworkView, skipped: list[str] | None = None) -> str:
    """The ``--addn-hosts`` file: ``<ip>\\t<fqdn> <hostname>`` per port address (FQDN first for PTR).

    Every address on a DHCP-enabled subnet is listed, SLAAC ones included.
    """
    return "".join(
        f"{h.ip}\t{h.fqdn} {h.hostname}\n"
        for port in _served_ports(net)
        for h in _port_hosts(cfg, net, port)
        if _safe(f"addn_hosts line of port {port.id}", [h.ip, h.fqdn, h.hostname], skipped)
    )


def _is_ipv6_lease(line: str) -> bool:
    fields = line.split()
    if len(fields) < 3:
        return False
    try:
        return ipaddress.ip_address(fields[2]).version == 6
    except ValueError:
        return False


def leases_file(cfg: DhcpConfig, net: NetworkView, existing: str = "", skipped: list[str] | None = None) -> str:
    """The bootstrap ``--dhcp-leasefile``, written just before dnsmasq (re)starts.

    ``0 <mac> <ip> * *`` per port IPv4 address on a DHCP-enabled subnet
    (expiry 0: dnsmasq renews them with real leases), then the ``duid`` line
    and IPv6 lease lines of ``existing`` (the current file) unchanged::

        0 fa:16:3e:11:22:33 10.0.0.5 * *
        duid 00:01:00:01:2c:...
        1700000000 1122867 2001:db8::5 host-2001-db8--5 00:04:...
    """
    lines = [
        f"0 {port.mac} {h.ip} * *"
        for port in _served_ports(net)
        for h in _port_hosts(cfg, net, port)
        if h.subnet.ip_version == 4 and _safe(f"lease of port {port.id}", [port.mac, h.ip], skipped)
    ]
    lines += [line for line in existing.splitlines() if line.startswith("duid ") or _is_ipv6_lease(line)]
    return "".join(line + "\n" for line in lines)


# --- opts --------------------------------------------------------------------------------
def _opt_key(name: str, version: int) -> str:
    """``option:router``; numeric IPv4 options bare (``249``); IPv6 ``option6:...``."""
    if version == 6:
        return f"option6:{name}"
    return name if name.isdigit() else f"option:{name}"


def _opt_line(tag: str, name: str, version: int, values: list[str]) -> str:
    """One opts line; ``_Unsafe`` if a field could be read as more than one."""
    fields = [tag, _opt_key(name, version), *values]
    bad = next((f for f in fields if not is_field(f)), None)
    if bad is not None:
        raise _Unsafe(bad)
    return ",".join(fields)


def _addr(ip: str, version: int) -> str:
    return f"[{ip}]" if version == 6 else ip


def _unspecified(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_unspecified
    except ValueError:
        return False


def _dns_servers(net: NetworkView, sub: SubnetView) -> list[str] | None:
    """Values of option dns-server, or None to leave dnsmasq's default (itself)."""
    v = sub.ip_version
    if sub.dns_nameservers:
        if len(sub.dns_nameservers) == 1 and _unspecified(sub.dns_nameservers[0]):
            return []  # announce no DNS server at all
        return [_addr(ip, v) for ip in sub.dns_nameservers]
    per_port = [p.ips_on(sub.id) for p in net.dhcp_ports]
    per_port = [ips for ips in per_port if ips]
    if len(per_port) >= 2:  # several agents: announce every DHCP server
        return [_addr(ips[0], v) for ips in per_port]
    return None


def _metadata_nexthop(cfg: DhcpConfig, net: NetworkView, sub: SubnetView) -> str | None:
    """Next hop of the IPv4 metadata route for ``sub``, or None for no route.

    An OVN metadata port on the subnet wins; then the DHCP port (force_metadata,
    or isolated subnet with enable_isolated_metadata); then the gateway of a
    routed (not isolated) subnet.
    """
    for p in net.ports:
        if p.device_owner == DEVICE_OWNER_DISTRIBUTED and p.ips_on(sub.id):
            return p.ips_on(sub.id)[0]
    if cfg.force_metadata or (sub.isolated and cfg.enable_isolated_metadata):
        own = net.dhcp_port(cfg.host)
        if own is not None and own.ips_on(sub.id):
            return own.ips_on(sub.id)[0]
    if not sub.isolated and sub.gateway_ip:
        return sub.gateway_ip
    return None


def _is_default(dest: str) -> bool:
    try:
        return ipaddress.ip_network(dest, strict=False).prefixlen == 0
    except ValueError:
        return False


def _ipv4_routes(cfg: DhcpConfig, net: NetworkView, sub: SubnetView) -> tuple[list[tuple[str, str]], str | None]:
    """(classless static routes, router) for an IPv4 subnet.

    Routes, in order: on-link (``<cidr>,0.0.0.0``) to the other IPv4 subnets
    of the same segment, the subnet's host routes, the metadata route, and
    ``0.0.0.0/0,<gateway>`` last — the default only when there is any other
    route, since clients ignore option 3 once they get option 121.  A
    ``0.0.0.0/0`` host route is not a static route: it is the router when
    the subnet has no gateway (and ignored otherwise).
    """
    gateway = sub.gateway_ip
    routes: list[tuple[str, str]] = []
    for other in net.subnets:
        if (
            other.id != sub.id
            and other.ip_version == 4
            and other.cidr != sub.cidr
            and other.segment_id == sub.segment_id
        ):
            routes.append((other.cidr, _ANY4))
    for hr in sub.host_routes:
        if _is_default(hr.destination):
            gateway = gateway or hr.nexthop
        else:
            routes.append((hr.destination, hr.nexthop))
    nexthop = _metadata_nexthop(cfg, net, sub)
    if nexthop and not any(dest == METADATA_CIDR for dest, _ in routes):
        routes.append((METADATA_CIDR, nexthop))
    if routes and gateway:
        routes.append(("0.0.0.0/0", gateway))
    return routes, gateway


class _Unsafe(ValueError):
    """A field that cannot be one field of an opts line (``_opt_line``)."""


def _subnet_opts(cfg: DhcpConfig, net: NetworkView, sub: SubnetView, skipped: list[str] | None = None) -> list[str]:
    """The subnet's option lines; none at all if any field of them is unsafe."""
    try:
        return _checked_subnet_opts(cfg, net, sub)
    except _Unsafe as exc:
        _safe(f"opts lines of subnet {sub.id}", [exc.args[0]], skipped)
        return []


def _checked_subnet_opts(cfg: DhcpConfig, net: NetworkView, sub: SubnetView) -> list[str]:
    tag = f"tag:subnet-{sub.id}"
    v = sub.ip_version
    out = []
    dns = _dns_servers(net, sub)
    if dns is not None:
        out.append(_opt_line(tag, "dns-server", v, dns))
    if v == 6:
        if cfg.dns_domain:
            out.append(_opt_line(tag, "domain-search", v, [cfg.dns_domain]))
        return out
    routes, gateway = _ipv4_routes(cfg, net, sub)
    if routes:
        flat = [x for route in routes for x in route]
        out.append(_opt_line(tag, "classless-static-route", v, flat))
        out.append(_opt_line(tag, "249", v, flat))
    out.append(_opt_line(tag, "router", v, [gateway] if gateway else []))
    return out


def _port_opts(cfg: DhcpConfig, net: NetworkView, port: PortView, skipped: list[str] | None = None) -> list[str]:
    versions = {h.subnet.ip_version for h in _port_hosts(cfg, net, port)}
    tag = f"tag:port-{port.id}"
    # The value is the option's own dnsmasq value list (commas separate its items).  A blank value
    # (only router and classless-static-route may have one: "send no such option") is written as the
    # option without data and without a comma: dnsmasq then omits the option, whereas it refuses
    # ``option:router,`` ("bad IP address") and would skip the line.
    return [
        f"{tag},{_opt_key(name, v)}" if is_blank(value) else f"{tag},{_opt_key(name, v)},{value}"
        for name, value, v in _active_opts(port)
        if name != CLIENT_ID
        and v in versions
        and _safe(f"opts line of port {port.id}", [tag, _opt_key(name, v)], skipped, value)
    ]


def opts_file(cfg: DhcpConfig, net: NetworkView, skipped: list[str] | None = None) -> str:
    """The ``--dhcp-optsfile``: per-subnet options, then per-port extra options.

    For each DHCP-enabled subnet that dnsmasq serves (not SLAAC), in order:
    dns-server (6), IPv6 domain-search, IPv4 classless-static-route (121) and
    the same routes as Microsoft's 249, IPv4 router (3, empty value when the
    subnet has no gateway).  Then ``tag:port-<id>`` lines for ports' extra
    DHCP options.  Example (router-attached subnet S)::

        tag:subnet-S,option:dns-server,8.8.8.8
        tag:subnet-S,option:classless-static-route,169.254.169.254/32,10.0.0.1,0.0.0.0/0,10.0.0.1
        tag:subnet-S,249,169.254.169.254/32,10.0.0.1,0.0.0.0/0,10.0.0.1
        tag:subnet-S,option:router,10.0.0.1
        tag:port-P,option:tftp-server,10.0.0.9
        tag:subnet-V6,option6:dns-server,[2001:db8::53]

    Lines are joined by newlines, with no trailing newline (as Neutron writes it).
    """
    lines: list[str] = []
    for sub in net.subnets:
        if sub.enable_dhcp and sub.dhcp_served:
            lines += _subnet_opts(cfg, net, sub, skipped)
    for port in _served_ports(net):
        lines += _port_opts(cfg, net, port, skipped)
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------
def _ranged_subnets(net: NetworkView) -> list[SubnetView]:
    return [s for s in net.dhcp_subnets if s.ip_version == 4 or (s.dhcp_served and s.prefixlen >= _MIN_V6_PREFIX)]


def _lease(cfg: DhcpConfig) -> str:
    return "infinite" if cfg.dhcp_lease_duration == -1 else f"{cfg.dhcp_lease_duration}s"


def dhcp_ranges(cfg: DhcpConfig, net: NetworkView, skipped: list[str] | None = None) -> list[str]:
    """Values of ``--dhcp-range``, one per subnet dnsmasq serves::

        set:subnet-<id>,10.0.0.0,static,255.255.255.0,86400s      (IPv4: netmask)
        set:subnet-<id>,2001:db8::,static,64,86400s               (IPv6: prefix length)

    IPv6 SLAAC subnets and IPv6 prefixes shorter than /64 get no range.
    """
    out = []
    for s in _ranged_subnets(net):
        cidr = ipaddress.ip_network(s.cidr, strict=False)
        mask = str(cidr.netmask) if s.ip_version == 4 else str(cidr.prefixlen)
        fields = [f"set:subnet-{s.id}", str(cidr.network_address), "static", mask, _lease(cfg)]
        if _safe(f"--dhcp-range of subnet {s.id}", fields, skipped):
            out.append(",".join(fields))
    return out


def lease_max(cfg: DhcpConfig, net: NetworkView) -> int:
    """Sum of the sizes of the ranged subnets, capped at ``dnsmasq_lease_max``."""
    total = sum(ipaddress.ip_network(s.cidr, strict=False).num_addresses for s in _ranged_subnets(net))
    return min(total, cfg.dnsmasq_lease_max)


def dnsmasq_argv(
    cfg: DhcpConfig,
    net: NetworkView,
    dhcp_port: PortView | None = None,
    conf_dir: str | None = None,
    tap_name: str | None = None,
    skipped: list[str] | None = None,
) -> list[str]:
    """The dnsmasq command line (run inside ``qdhcp-<net>``), in Neutron's order::

        dnsmasq --no-hosts [--no-resolv] --pid-file=<dir>/pid --dhcp-hostsfile=<dir>/host
          --addn-hosts=<dir>/addn_hosts --dhcp-optsfile=<dir>/opts
          --dhcp-leasefile=<dir>/leases --dhcp-match=set:ipxe,175
          --dhcp-userclass=set:ipxe6,iPXE --local-service --bind-dynamic
          [--bridge-interface=<tap>,tap*]
          --dhcp-range=<range> ...  [--dhcp-option-force=option:mtu,<mtu>]
          --dhcp-lease-max=<n> [--dhcp-option-force=option:T1,<s>s]
          [--dhcp-option-force=option:T2,<s>s] [--txt-record=<rec>]
          --conf-file=<file or /dev/null> [--server=<ip> ...] [--domain=<domain>]
          [--dhcp-broadcast] [--log-queries --log-dhcp --log-facility=<file>]

    ``conf_dir`` defaults to ``cfg.conf_dir(net.id)`` (so the network id is in
    the command line, which is how the process is recognised).  The tap name
    (``tap_name``, else derived from ``dhcp_port``) is only used for
    ``--bridge-interface``, i.e. with a non-bridged interface driver.
    """
    d = conf_dir if conf_dir is not None else cfg.conf_dir(net.id)
    argv = ["dnsmasq", "--no-hosts"]
    if cfg.dnsmasq_dns_servers or not cfg.dnsmasq_local_resolv:
        argv.append("--no-resolv")
    argv += [
        f"--pid-file={posixpath.join(d, FILE_PID)}",
        f"--dhcp-hostsfile={posixpath.join(d, FILE_HOST)}",
        f"--addn-hosts={posixpath.join(d, FILE_ADDN_HOSTS)}",
        f"--dhcp-optsfile={posixpath.join(d, FILE_OPTS)}",
        f"--dhcp-leasefile={posixpath.join(d, FILE_LEASES)}",
        "--dhcp-match=set:ipxe,175",
        "--dhcp-userclass=set:ipxe6,iPXE",
        "--local-service",
        "--bind-dynamic",
    ]
    if not cfg.interface_bridged:
        dev = tap_name or (_tap_name(dhcp_port.id) if dhcp_port is not None else None)
        if dev:
            argv.append(f"--bridge-interface={dev},tap*")
    argv += [f"--dhcp-range={r}" for r in dhcp_ranges(cfg, net, skipped)]
    if net.mtu > 0:
        argv.append(f"--dhcp-option-force=option:mtu,{net.mtu}")
    argv.append(f"--dhcp-lease-max={lease_max(cfg, net)}")
    if cfg.dhcp_renewal_time > 0:
        argv.append(f"--dhcp-option-force=option:T1,{cfg.dhcp_renewal_time}s")
    if cfg.dhcp_rebinding_time > 0:
        argv.append(f"--dhcp-option-force=option:T2,{cfg.dhcp_rebinding_time}s")
    if cfg.dnsmasq_txt_record:
        argv.append(f"--txt-record={cfg.dnsmasq_txt_record}")
    argv.append(f"--conf-file={cfg.dnsmasq_config_file or '/dev/null'}")
    argv += [f"--server={server}" for server in cfg.dnsmasq_dns_servers]
    if cfg.dns_domain:
        argv.append(f"--domain={cfg.dns_domain}")
    if cfg.dhcp_broadcast_reply:
        argv.append("--dhcp-broadcast")
    if cfg.dnsmasq_base_log_dir:
        log = posixpath.join(cfg.dnsmasq_base_log_dir, net.id, "dhcp_dns_log")
        argv += ["--log-queries", "--log-dhcp", f"--log-facility={log}"]
    return argv


# --- the namespace side --------------------------------------------------------------------
def interface_addresses(cfg: DhcpConfig, net: NetworkView, dhcp_port: PortView) -> tuple[str, ...]:
    """Every address the DHCP tap must carry (anything else is removed).

    ``<port ip>/<subnet prefixlen>`` per fixed IP on a DHCP-enabled subnet, then
    ``169.254.169.254/32`` when force_metadata or enable_isolated_metadata is set
    (whether or not a subnet is isolated), and with it ``fe80::a9fe:a9fe/128`` if
    the network has an IPv6 subnet.
    """
    out = []
    for f in dhcp_port.fixed_ips:
        sub = net.subnet(f.subnet_id)
        if sub is not None and sub.enable_dhcp:
            out.append(f"{f.ip_address}/{sub.prefixlen}")
    if cfg.metadata_enabled:
        out.append(METADATA_CIDR)
        if any(s.ip_version == 6 for s in net.subnets):
            out.append(METADATA_V6_CIDR)
    return tuple(dict.fromkeys(out))


def default_route(net: NetworkView) -> tuple[str, ...]:
    """Default gateways of the namespace: at most one IPv4 then one IPv6.

    Each is the ``gateway_ip`` of the first DHCP-enabled subnet of that IP
    version that has one.  The executor adds an on-link route first when the
    gateway is outside the tap's prefixes.
    """
    out = []
    for version in (4, 6):
        for s in net.dhcp_subnets:
            if s.ip_version == version and s.gateway_ip:
                out.append(s.gateway_ip)
                break
    return tuple(out)


def wants_metadata_proxy(cfg: DhcpConfig, net: NetworkView) -> bool:
    """Should a metadata proxy run in this network's namespace?

    Yes with force_metadata, or with enable_isolated_metadata when any
    DHCP-enabled subnet is isolated; never when the network has an OVN
    metadata port or no DHCP-enabled subnet.
    """
    if not net.dhcp_subnets or any(p.device_owner == DEVICE_OWNER_DISTRIBUTED for p in net.ports):
        return False
    if cfg.force_metadata:
        return True
    return cfg.enable_isolated_metadata and any(s.isolated for s in net.dhcp_subnets)
