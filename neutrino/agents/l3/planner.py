"""Pure planner of the L3 agent: desired routers + observed namespaces -> ops.

``plan(cfg, desired, observed)`` compares, per router, what the server wants
(``RouterView``, only routers scheduled to this agent) with what the host has
(``ObservedRouter``) and returns the ops that close the gap, in the order
they must run.  It is convergent: once the ops are applied, planning against
the new observed state yields no op (tested with an in-memory host).

Per router (one that is administratively down: see below):

1. ``EnsureNamespace`` when ``qrouter-<id>`` is missing (lo up + sysctls);
   ``SetSysctls`` when it is there but the router's admin state changed.
2. ``UnplugInterface`` for every ``qr-``/``qg-`` device that is no longer
   wanted (other devices are left alone).
3. ``PlugInterface`` when a wanted device is missing (``exists=False``: a
   new OVS port) or its MAC/MTU differ (``exists=True``: only set them).
4. ``SetAddresses`` when a device's global addresses differ: a ``qr-`` gets
   its fixed IPs ``<ip>/<prefixlen>``, the ``qg-`` its fixed IPs plus a
   ``/32`` per configured floating IP; ``add``/``remove`` are the difference
   with what was observed.
5. ``SetRoutes`` when the namespace's non-connected routes differ: per
   gateway subnet with a gateway IP a default route via it (preceded by an
   on-link ``<gw>/32 dev qg`` route when the gateway lies outside every
   gateway subnet), and the router's extra routes (several nexthops of one
   destination = one ECMP route); ``stale`` the observed routes to delete.
6. ``ApplyRules`` with the whole ruleset when the observed ``iptables-save``
   differs (normal forms compared, see ``render``).
7. ``FlushConntrack`` for floating IPs whose NAT went away or changed
   (floating IP removed or moved, port forwardings changed): their DNAT
   rules in the observed and desired rulesets differ.
8. ``Garp`` for IPv4 addresses newly added to a device that was already
   there (gateway IPs, floating IPs, interface IPs).  A device plugged in
   this pass sends none: it stays on the dead VLAN until the OVS agent wires
   it, so its gratuitous ARPs would reach no one (and a cold resync would
   spend one ``arping`` per address for nothing).

``Teardown`` for routers observed here but no longer desired.

A router that is administratively down keeps its namespace and its plugged
``qr-``/``qg-`` devices (so the L2 agent wires their ports and reports them
ACTIVE, as clients wait for), but forwards nothing: its devices carry no
address (nothing answers ARP for its gateway or floating IPs), the namespace
has no route, forwarding is off (``ADMIN_DOWN_SYSCTLS``) and its ruleset is
the admin-down one (no NAT, INPUT and FORWARD dropped; no metadata redirect,
and the agent runs no metadata proxy for it).  ``SetSysctls`` switches
forwarding when the mode changes: the mode the host is in is read from the
observed ruleset (``render.is_admin_down_ruleset``), which ``ApplyRules``
writes after the sysctls, so an interrupted switch is redone by the next pass.

``floatingip_statuses`` gives the statuses to report.

One router never blocks another: a router whose planning fails (a value its
rules or routes cannot be made of) gets no op this pass and is named in
``problems``; the others are planned as usual.

The ops carry what the planner saw (``exists``, ``add``/``remove``,
``stale``), so the executor can apply a whole router with one ``ip`` batch
without observing again; each op's contract is still its end state (the
full ``cidrs``, ``routes()``), which an executor may establish by observing
afresh when the host moved in between.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from neutrino.agents.l3 import render
from neutrino.agents.l3.model import (
    GATEWAY_PREFIX,
    INTERNAL_PREFIX,
    L3Config,
    RouterPort,
    RouterView,
    namespace_name,
)

LOG = logging.getLogger(__name__)

__all__ = [
    "ApplyRules",
    "EnsureNamespace",
    "FlushConntrack",
    "Garp",
    "ObservedDevice",
    "ObservedRouter",
    "Op",
    "PlugInterface",
    "Route",
    "SetAddresses",
    "SetRoutes",
    "SetSysctls",
    "Teardown",
    "UnplugInterface",
    "desired_addresses",
    "desired_routes",
    "floatingip_statuses",
    "nat_by_floating_ip",
    "plan",
]


# --- routes ------------------------------------------------------------------------------
def _norm_cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def _norm_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _ip_key(ip: str) -> tuple[int, int, str]:
    try:
        a = ipaddress.ip_address(ip)
        return a.version, int(a), ip
    except ValueError:
        return 9, 0, ip


@dataclass(frozen=True)
class Route:
    """A non-connected route of the namespace.

    ``destination`` a CIDR (``0.0.0.0/0``/``::/0`` for defaults); ``nexthops``
    sorted (several = one ECMP route); no nexthop = an on-link (scope link)
    route on ``device``.  ``device`` only matters for on-link routes.
    """

    destination: str
    nexthops: tuple[str, ...] = ()
    device: str | None = None

    def normalised(self) -> Route:
        hops = tuple(sorted({_norm_ip(h) for h in self.nexthops}, key=_ip_key))
        return Route(_norm_cidr(self.destination), hops, None if hops else self.device)

    @property
    def is_default(self) -> bool:
        return self.destination in ("0.0.0.0/0", "::/0")

    def sort_key(self) -> tuple[int, int, int, str, tuple[str, ...]]:
        net = ipaddress.ip_network(self.destination, strict=False)
        # on-link routes first (a gateway outside the subnet must be reachable first)
        return (0 if not self.nexthops else 1, net.version, -net.prefixlen, str(net.network_address), self.nexthops)


# --- observed state ----------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedDevice:
    """A device inside ``qrouter-<id>`` (``lo`` excluded).

    ``addresses`` as ``ip/prefixlen`` (link-local ones are ignored);
    ``mac``/``mtu`` None when unknown (then not compared).
    """

    name: str
    addresses: frozenset[str] = frozenset()
    mac: str | None = None
    mtu: int | None = None


@dataclass(frozen=True)
class ObservedRouter:
    """What the host has for one router.

    * ``namespace``: ``qrouter-<id>`` exists.
    * ``devices``: devices in the namespace by name.
    * ``routes``: the namespace's routes except connected (``proto kernel``)
      and link-local/multicast ones, as ``Route``s (device kept only for
      on-link routes without nexthop).
    * ``iptables``: ``iptables-save`` output of the namespace ("" if none).

    ``floating_ips`` (the configured FIP set) is derived from ``iptables``:
    the NAT rules are the record of what is configured, so it survives an
    agent restart without any local state.
    """

    namespace: bool = False
    devices: Mapping[str, ObservedDevice] = field(default_factory=dict)
    routes: frozenset[Route] = frozenset()
    iptables: str = ""

    @cached_property
    def floating_ips(self) -> Mapping[str, frozenset[str]]:
        return nat_by_floating_ip(self.iptables)


# --- ops ---------------------------------------------------------------------------------
#: Namespace sysctls of a router (Neutron's values).
ROUTER_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.netfilter.nf_conntrack_tcp_be_liberal", "1"),
)
IPV6_SYSCTLS: tuple[tuple[str, str], ...] = (("net.ipv6.conf.all.forwarding", "1"),)
#: The forwarding sysctls that differ for a router that is administratively down.
_FORWARDING = frozenset({"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"})


@dataclass(frozen=True)
class EnsureNamespace:
    """``ip netns add qrouter-<id>``, ``lo`` up, then ``sysctl -w`` each of ``sysctls``."""

    router_id: str
    sysctls: tuple[tuple[str, str], ...] = ROUTER_SYSCTLS

    @property
    def namespace(self) -> str:
        return namespace_name(self.router_id)


@dataclass(frozen=True)
class SetSysctls:
    """``sysctl -w`` each of ``sysctls`` in the router's namespace (forwarding on or off when
    the router's admin state changed)."""

    router_id: str
    sysctls: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PlugInterface:
    """Ensure the OVS internal port ``device`` on br-int (iface-id ``port_id``,
    attached-mac), in the namespace, with ``mac`` and ``mtu``, up.  Idempotent.

    ``exists``: the device was observed in the namespace (only its MAC/MTU
    differ), so no OVS port needs creating."""

    router_id: str
    device: str
    port_id: str
    mac: str
    mtu: int
    kind: str  # "qr" | "qg"
    exists: bool = False


@dataclass(frozen=True)
class UnplugInterface:
    """Remove ``device`` from the namespace and its OVS port."""

    router_id: str
    device: str


@dataclass(frozen=True)
class SetAddresses:
    """Make ``device``'s global addresses exactly ``cidrs`` (link-local ones kept).

    ``add``: the ``cidrs`` not observed on the device; ``remove``: observed
    global addresses not in ``cidrs`` (as observed)."""

    router_id: str
    device: str
    cidrs: tuple[str, ...]
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetRoutes:
    """Make the namespace's non-connected routes exactly ``routes()``.

    ``default_via``: default gateways (one per IP version) through
    ``device`` (the ``qg-``); ``onlink``: gateways outside every gateway
    subnet, which get ``<gw>/<32|128> dev <device> scope link`` first;
    ``extra_routes``: the router's ``routes`` (``ip route replace``; several
    nexthops of one destination as one multipath route); ``stale``: observed
    routes that are not wanted (normalised), to delete first.
    """

    router_id: str
    device: str | None
    default_via: tuple[str, ...]
    extra_routes: tuple[Route, ...]
    onlink: tuple[str, ...] = ()
    stale: tuple[Route, ...] = ()

    def routes(self) -> tuple[Route, ...]:
        out = []
        for gw in self.onlink:
            bits = 32 if ipaddress.ip_address(gw).version == 4 else 128
            out.append(Route(f"{gw}/{bits}", (), self.device))
        for gw in self.default_via:
            dest = "0.0.0.0/0" if ipaddress.ip_address(gw).version == 4 else "::/0"
            out.append(Route(dest, (gw,)))
        return tuple(out) + self.extra_routes


@dataclass(frozen=True)
class ApplyRules:
    """``ip netns exec qrouter-<id> iptables-restore`` (no ``--noflush``) of ``text``."""

    router_id: str
    text: str


@dataclass(frozen=True)
class FlushConntrack:
    """Delete conntrack entries to or from ``ips`` in the namespace
    (``conntrack -D -d <ip>`` and ``conntrack -D -q <ip>``)."""

    router_id: str
    ips: tuple[str, ...]


@dataclass(frozen=True)
class Garp:
    """Gratuitous ARP for ``ips`` on ``device`` (``arping -U`` then ``-A``, 3 times 2 s apart)."""

    router_id: str
    device: str
    ips: tuple[str, ...]


@dataclass(frozen=True)
class Teardown:
    """Kill the router's metadata proxy, unplug ``devices``, delete the namespace.  Idempotent."""

    router_id: str
    devices: tuple[str, ...] = ()


Op = (
    EnsureNamespace
    | SetSysctls
    | PlugInterface
    | UnplugInterface
    | SetAddresses
    | SetRoutes
    | ApplyRules
    | FlushConntrack
    | Garp
    | Teardown
)


# --- helpers -----------------------------------------------------------------------------
def _norm_addr(a: str) -> str | None:
    """``ip/prefixlen`` in normal form; None for a link-local address."""
    try:
        iface = ipaddress.ip_interface(a)
    except ValueError:
        return a
    return None if iface.ip.is_link_local else str(iface)


def _norm_addrs(addrs: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    return frozenset(n for n in map(_norm_addr, addrs) if n is not None)


def desired_addresses(router: RouterView, port: RouterPort) -> tuple[str, ...]:
    """``qr``: its fixed IPs; ``qg``: its fixed IPs then each configured FIP as ``/32``;
    none on a router that is administratively down."""
    if not router.admin_state_up:
        return ()
    cidrs = list(port.cidrs)
    if port.kind == "qg":
        seen = {str(ipaddress.ip_interface(c).ip) for c in cidrs}
        for fip in router.active_floating_ips:
            if _norm_ip(fip.floating_ip_address) not in seen:
                seen.add(_norm_ip(fip.floating_ip_address))
                cidrs.append(f"{fip.floating_ip_address}/32")
    return tuple(cidrs)


def desired_routes(router: RouterView) -> SetRoutes:
    """The routes the router's namespace should hold (none while it is administratively down)."""
    if not router.admin_state_up:
        return SetRoutes(router.id, None, (), ())
    gw = router.gateway
    default_via: list[str] = []
    onlink: list[str] = []
    device = gw.device if gw is not None else None
    if gw is not None:
        versions = set()
        for sub in gw.subnets:
            if not sub.gateway_ip or sub.ip_version in versions:
                continue
            if not any(ip.subnet_id == sub.id for ip in gw.fixed_ips):
                continue
            versions.add(sub.ip_version)
            gw_ip = ipaddress.ip_address(sub.gateway_ip)
            if not any(
                gw_ip in ipaddress.ip_network(s.cidr, strict=False) for s in gw.subnets if s.ip_version == gw_ip.version
            ):
                onlink.append(str(gw_ip))
            default_via.append(str(gw_ip))
    hops: dict[str, set[str]] = {}
    for r in router.routes:
        hops.setdefault(_norm_cidr(r.destination), set()).add(_norm_ip(r.nexthop))
    extra = tuple(sorted((Route(d, tuple(sorted(h, key=_ip_key))) for d, h in hops.items()), key=Route.sort_key))
    return SetRoutes(
        router.id, device, tuple(sorted(default_via, key=_ip_key)), extra, tuple(sorted(onlink, key=_ip_key))
    )


def nat_by_floating_ip(iptables_text: str) -> dict[str, frozenset[str]]:
    """The DNAT rules (``nat`` table) per floating IP, from a ruleset or ``iptables-save`` text.

    A rule counts when it has ``-d <ip>/32`` and ``-j DNAT``; the chain name
    is left out (the per-forwarding chain names carry the forwarding id, the
    rule text carries what matters).
    """
    nat = render.parse_iptables_save(iptables_text).get("nat")
    out: dict[str, set[str]] = {}
    if nat is None:
        return {}
    for _chain, rule in nat.rules:
        tokens = rule.split()
        if "DNAT" not in tokens or "-d" not in tokens:
            continue
        dest = tokens[tokens.index("-d") + 1]
        if not dest.endswith("/32"):
            continue
        out.setdefault(_norm_ip(dest[:-3]), set()).add(rule)
    return {ip: frozenset(rules) for ip, rules in out.items()}


def _v4(cidrs: frozenset[str]) -> list[str]:
    out = []
    for c in cidrs:
        try:
            ip = ipaddress.ip_interface(c).ip
        except ValueError:
            continue
        if ip.version == 4:
            out.append(str(ip))
    return sorted(out, key=_ip_key)


def _sysctls(router: RouterView) -> tuple[tuple[str, str], ...]:
    """The namespace's sysctls; forwarding off while the router is administratively down."""
    v6 = any(ip.version == 6 for p in router.ports for ip in p.fixed_ips)
    sysctls = ROUTER_SYSCTLS + (IPV6_SYSCTLS if v6 else ())
    if router.admin_state_up:
        return sysctls
    return tuple((k, "0" if k in _FORWARDING else v) for k, v in sysctls)


# --- the planner -------------------------------------------------------------------------
def _plan_router(cfg: L3Config, router: RouterView, obs: ObservedRouter) -> list[Op]:
    ops: list[Op] = []
    rid = router.id
    if not obs.namespace:
        ops.append(EnsureNamespace(rid, _sysctls(router)))
    elif render.is_admin_down_ruleset(obs.iptables) == router.admin_state_up:
        # The admin state changed since the rules were applied: forwarding first (off before
        # the addresses go, on before the rules that record the new mode are written).
        ops.append(SetSysctls(rid, tuple(kv for kv in _sysctls(router) if kv[0] in _FORWARDING)))
    wanted = {p.device: p for p in router.ports}
    for name in sorted(obs.devices):
        if name not in wanted and name.startswith((INTERNAL_PREFIX, GATEWAY_PREFIX)):
            ops.append(UnplugInterface(rid, name))
    for port in router.ports:
        cur = obs.devices.get(port.device)
        if (
            cur is None
            or (cur.mac is not None and cur.mac.lower() != port.mac)
            or (cur.mtu is not None and cur.mtu != port.mtu)
        ):
            ops.append(PlugInterface(rid, port.device, port.id, port.mac, port.mtu, port.kind, exists=cur is not None))

    garps: list[Garp] = []
    for port in router.ports:
        cur = obs.devices.get(port.device)
        have = _norm_addrs(cur.addresses) if cur is not None else frozenset()
        cidrs = desired_addresses(router, port)
        want = _norm_addrs(cidrs)
        if have != want:
            add = tuple(c for c in cidrs if _norm_addr(c) not in have)
            remove = tuple(
                sorted(
                    a
                    for a in (cur.addresses if cur is not None else ())
                    if _norm_addr(a) not in want and _norm_addr(a) is not None
                )
            )
            ops.append(SetAddresses(rid, port.device, cidrs, add, remove))
            new = _v4(want - have)
            if new and cur is not None:  # a new device is isolated until wired: no one to tell
                garps.append(Garp(rid, port.device, tuple(new)))

    routes = desired_routes(router)
    want_routes = frozenset(r.normalised() for r in routes.routes())
    have_routes = frozenset(r.normalised() for r in obs.routes)
    if want_routes != have_routes:
        stale = tuple(sorted(have_routes - want_routes, key=Route.sort_key))
        ops.append(replace(routes, stale=stale))

    text = render.iptables_ruleset(cfg, router)
    if not render.same_ruleset(text, obs.iptables):
        ops.append(ApplyRules(rid, text))
        want_nat = nat_by_floating_ip(text)
        have_nat = obs.floating_ips
        gone = [ip for ip, rules in have_nat.items() if want_nat.get(ip) != rules]
        if gone:
            ops.append(FlushConntrack(rid, tuple(sorted(gone, key=_ip_key))))
    ops += garps
    return ops


def plan(
    cfg: L3Config,
    desired: Mapping[str, RouterView],
    observed: Mapping[str, ObservedRouter],
    problems: dict[str, str] | None = None,
) -> list[Op]:
    """All ops for this pass: teardowns first, then each router (sorted by id).

    ``desired`` holds only routers scheduled to this agent; ``observed`` every
    router with a ``qrouter-`` namespace on this host.  A router whose planning
    raises gets no op (``problems``, if given, says why) and the others are
    planned as usual.
    """
    ops: list[Op] = []
    for rid in sorted(observed):
        if rid not in desired:
            ops.append(Teardown(rid, tuple(sorted(observed[rid].devices))))
    for rid in sorted(desired):
        router = desired[rid]
        try:
            ops += _plan_router(cfg, router, observed.get(rid, ObservedRouter()))
        except Exception as exc:  # noqa: BLE001 - one router's data must not stop the others
            LOG.warning("planning router %s failed: %r", rid, exc)
            if problems is not None:
                problems[rid] = f"not planned ({type(exc).__name__}: {str(exc)[:160]}); left as it is"
    return ops


def floatingip_statuses(desired: Mapping[str, RouterView]) -> dict[str, str]:
    """``{fip_id: "ACTIVE"}`` for floating IPs configured on a router that is up;
    ``"DOWN"`` for the router's other floating IPs (router down or without an
    IPv4 gateway)."""
    out: dict[str, str] = {}
    for rid in sorted(desired):
        router = desired[rid]
        active = {f.id for f in router.active_floating_ips} if router.admin_state_up else set()
        for fip in router.floating_ips:
            out[fip.id] = "ACTIVE" if fip.id in active else "DOWN"
    return out
