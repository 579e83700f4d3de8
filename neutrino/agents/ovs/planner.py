"""Pure planner of the OVS L2 agent: desired host + observed OVS -> OVSDB ops + flows.

``plan(cfg, desired, observed, local_vlans)`` decides, without touching the
host, everything one reconcile pass must do (see ``Plan``).  It is
convergent: applying the plan and planning again against the new observed
state eventually yields no OVSDB ops and the same flows.  Because OVS assigns
ofports, a port created in one pass gets its flows in the next, so a host
built from nothing needs three passes (ports; flows that name their ofports;
connecting the physical-bridge patch pair once its drop flows are seen
installed), and a fourth is a no-op.

Wiring rules (Neutron's, see tables.py for the table layout):

* A VIF is a br-int port with ``external_ids`` ``iface-id`` and
  ``attached-mac``.  A VIF whose port is desired, on a network this host can
  provision, and admin-up, is *wired*: access port on the network's local
  VLAN, ``other_config`` records the network (so local VLANs survive agent
  restarts), anti-spoofing flows unless port security is off or the port is
  trusted (``network:*``).  Any other VIF (unknown, unbound, admin-down,
  unprovisionable network) is *dead*: ``tag=4095`` trunk-only-4095 and an
  ``in_port`` drop flow.  VIFs without an ofport yet are left alone.
* Local VLANs: kept for networks still in use, lowest free id for new ones,
  released when the network has no VIF left on this host.
* Physical bridges (``bridge_mappings``) must exist (they hold the NIC); the
  ``int-<br>``/``phy-<br>`` patch pair is created with a dummy peer, gets its
  drop flows, and is connected only once both drop flows are observed.
* Tunnels (``tunnel_types`` + ``local_ip``): without l2population a tunnel
  port to every peer and flooding to all of them; with l2population tunnel
  ports only to VTEPs named in the fdb of networks in use here, flooding to
  the VTEPs with a flooding entry, unicast flows per remote MAC and (with
  ``arp_responder``) ARP replies per remote IPv4 address.

A security-group firewall plugs in as a ``FirewallFlowProvider``: its flows
are added to br-int, and when it ``provides_anti_spoofing`` the planner's own
table 24/25 anti-spoofing is left out.

Fail closed, per port: a desired port whose MAC or addresses are not strictly
a MAC and IP addresses/prefixes (``port_problem``: an IPv6 scope id, blanks,
anything ``ovs-ofctl`` could reject or read as more than one value) is never
given flows: its VIF is dead (no table-0 allow flow, so br-int's default drop
applies), its status ``ERROR`` and the reason in ``Plan.port_errors``.  The
same holds for the ports the executor names in ``isolated`` (their flows were
rejected by the switch; ``port_flows`` tells it which flows are whose).

The agent plans every pass for every port (the plan is the complete flow
set), so the per-port loops avoid work they can: flow builders are memoised,
and a provider returning a set (of memoised frozensets) lets the flow sets be
merged with the hashes they store.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from neutrino.agents.ovs import flows as fl
from neutrino.agents.ovs import tables as t
from neutrino.agents.ovs.model import (
    AgentConfig,
    DesiredHost,
    DesiredNetwork,
    DesiredPort,
    EnsureBridge,
    EnsurePatch,
    EnsureTrunkPatch,
    EnsureTunnelPort,
    FlowSpec,
    ObservedBridge,
    ObservedPort,
    ObservedState,
    OvsdbOp,
    Plan,
    PortStatus,
    RemovePort,
    SetPortOtherConfig,
    SetPortTag,
    WiredPort,
)
from neutrino.ipam import addresses

__all__ = [
    "FirewallFlowProvider",
    "local_vlans_from_observed",
    "patch_port_names",
    "plan",
    "port_flows",
    "port_problem",
    "tunnel_port_name",
]

DEAD_TRUNKS = (t.DEAD_VLAN,)


class FirewallFlowProvider(Protocol):
    """Seam for the security-group firewall (OVS conntrack tables 71-82)."""

    @property
    def provides_anti_spoofing(self) -> bool:
        """True if the firewall's own flows stop MAC/IP/ARP spoofing."""
        ...

    def flows(self, bridge: str, ports: Sequence[WiredPort]) -> Iterable[FlowSpec]:
        """All firewall flows for br-int, given every wired port."""
        ...


# --- names -----------------------------------------------------------------------------
_MAX_PORT_NAME = 15


def _bounded(prefix: str, name: str) -> str:
    full = prefix + name
    if len(full) <= _MAX_PORT_NAME:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:6]
    return prefix + name[: _MAX_PORT_NAME - len(prefix) - 6] + digest


def patch_port_names(phys_bridge: str) -> tuple[str, str]:
    """(port on br-int, port on the physical bridge): ``int-br-ex``, ``phy-br-ex``."""
    return _bounded("int-", phys_bridge), _bounded("phy-", phys_bridge)


def tunnel_port_name(tunnel_type: str, remote_ip: str) -> str:
    """``vxlan-c0a8640c`` for 192.168.100.12; IPv6 peers get a hash suffix."""
    ip = ipaddress.ip_address(remote_ip)
    if ip.version == 4:
        return f"{tunnel_type}-{int(ip):08x}"
    digest = hashlib.blake2b(ip.packed, digest_size=20).digest()
    suffix = base64.b32encode(digest).decode().lower()
    return f"{tunnel_type}-{suffix[: _MAX_PORT_NAME - len(tunnel_type) - 1]}"


# --- local VLANs -----------------------------------------------------------------------
def local_vlans_from_observed(observed: ObservedState, integration_bridge: str = "br-int") -> dict[str, int]:
    """Recover network -> local VLAN from br-int ``Port other_config`` (agent restart).

    A port counts when ``other_config`` has ``net_uuid`` and ``tag`` and the
    port really carries that tag; the first port (by name) wins any conflict.
    """
    br = observed.bridges.get(integration_bridge)
    result: dict[str, int] = {}
    if br is None:
        return result
    used: set[int] = set()
    for port in sorted(br.ports, key=lambda p: p.name):
        net = port.other_config.get("net_uuid")
        try:
            lvid = int(port.other_config.get("tag", ""))
        except ValueError:
            continue
        if not net or net in result or lvid in used or port.tag != lvid or not t.MIN_VLAN <= lvid <= t.MAX_VLAN:
            continue
        result[net] = lvid
        used.add(lvid)
    return result


def _allocate(in_use: Iterable[str], previous: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
    """Keep previous ids of networks still in use; lowest free id for the others."""
    result: dict[str, int] = {}
    used: set[int] = set()
    needed = sorted(set(in_use))
    for net in needed:
        lvid = previous.get(net)
        if lvid is not None and t.MIN_VLAN <= lvid <= t.MAX_VLAN and lvid not in used:
            result[net] = lvid
            used.add(lvid)
    free = (v for v in range(t.MIN_VLAN, t.MAX_VLAN + 1) if v not in used)
    unallocated: list[str] = []
    for net in needed:
        if net not in result:
            lvid = next(free, None)
            if lvid is None:
                unallocated.append(net)
            else:
                result[net] = lvid
    return result, unallocated


# --- the planner -----------------------------------------------------------------------
class _Vif(NamedTuple):
    port: ObservedPort
    ofport: int
    desired: DesiredPort | None
    network: DesiredNetwork | None


@dataclass
class _Acc:
    """What the pass is building (ops by kind, flows by bridge)."""

    bridges: list[OvsdbOp] = field(default_factory=list)
    patches: list[OvsdbOp] = field(default_factory=list)
    tunnels: list[OvsdbOp] = field(default_factory=list)
    ports: list[OvsdbOp] = field(default_factory=list)
    removals: list[OvsdbOp] = field(default_factory=list)
    flows: dict[str, set[FlowSpec]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, bridge: str, specs: Iterable[FlowSpec]) -> None:
        # A set/frozenset argument is merged with the hashes it stores.
        self.flows.setdefault(bridge, set()).update(specs)

    def ops(self) -> list[OvsdbOp]:
        return self.bridges + self.patches + self.tunnels + self.ports + self.removals


def _tunnels_enabled(cfg: AgentConfig) -> bool:
    return bool(cfg.tunnel_types) and cfg.local_ip is not None


def _provisionable(cfg: AgentConfig, net: DesiredNetwork) -> bool:
    if net.network_type in t.TUN_TABLE:
        return _tunnels_enabled(cfg) and net.network_type in cfg.tunnel_types and net.segmentation_id is not None
    if net.network_type == "vlan":
        return net.physical_network in cfg.bridge_mappings and net.segmentation_id is not None
    if net.network_type == "flat":
        return net.physical_network in cfg.bridge_mappings
    return net.network_type == "local"


def _ensure_bridge(acc: _Acc, cfg: AgentConfig, name: str, obs: ObservedBridge | None) -> None:
    want = EnsureBridge(name, cfg.datapath_type)
    if (
        obs is None
        or obs.datapath_type != want.datapath_type
        or obs.fail_mode != want.fail_mode
        or not set(want.protocols) <= set(obs.protocols)
    ):
        acc.bridges.append(want)


def _ensure_patch(acc: _Acc, bridge: str, name: str, peer: str, obs: ObservedBridge | None) -> None:
    port = obs.port(name) if obs else None
    if port is None or port.type != "patch" or port.options.get("peer") != peer:
        acc.patches.append(EnsurePatch(bridge, name, peer))


def _ofport(obs: ObservedBridge | None, name: str) -> int | None:
    port = obs.port(name) if obs else None
    return port.ofport if port is not None and port.ready else None


def _other_config(net: DesiredNetwork, lvid: int) -> dict[str, str]:
    """What a wired port's ``other_config`` records."""
    return {
        "net_uuid": net.id,
        "network_type": net.network_type,
        "physical_network": str(net.physical_network),
        "segmentation_id": str(net.segmentation_id),
        "tag": str(lvid),
    }


def _spoof_pairs(port: DesiredPort) -> list[tuple[str, str]]:
    """Allowed (MAC, IP-or-CIDR): fixed IPs with the port MAC, then the address pairs."""
    pairs = [(port.mac, ip) for ip in port.fixed_ips]
    pairs += [(m or port.mac, ip) for m, ip in port.allowed_address_pairs]
    return pairs


_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


def _shown(value: object) -> str:
    """A value for a report line (bounded: it may be anything a tenant sent)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=16384)
def _address_problem(mac: str, fixed_ips: tuple[str, ...], pairs: tuple[tuple[str | None, str], ...]) -> str | None:
    if not isinstance(mac, str) or not _MAC.fullmatch(mac):
        return f"MAC address {_shown(mac)} is not a MAC address"
    for ip in fixed_ips:
        if not addresses.is_ip(ip):
            return f"fixed IP {_shown(ip)} is not an IP address"
    for m, ip in pairs:
        if m and not (isinstance(m, str) and _MAC.fullmatch(m)):
            return f"allowed address pair MAC {_shown(m)} is not a MAC address"
        if not addresses.is_ip_or_network(ip):
            return f"allowed address pair {_shown(ip)} is not an IP address or prefix"
    return None


def port_problem(port: DesiredPort) -> str | None:
    """Why no flow may be built for ``port``, or None (pure, memoised).

    Its MAC and those of its address pairs must be ``xx:xx:xx:xx:xx:xx``, its
    fixed IPs addresses and its pairs' IPs addresses or prefixes, all strictly
    (``neutrino.ipam.addresses``: no IPv6 scope id, blank or control character).
    The API refuses anything else; this keeps a value stored before it did (or
    arriving some other way) from reaching ``ovs-ofctl``.
    """
    return _address_problem(port.mac, port.fixed_ips, port.allowed_address_pairs)


def port_flows(cfg: AgentConfig, wired: WiredPort, firewall: FirewallFlowProvider | None = None) -> frozenset[FlowSpec]:
    """The br-int flows that belong to ``wired`` alone (pure): its table-0 allow
    flow and its firewall (or anti-spoofing) flows.  Flows shared by several
    ports (defaults, the address sets of remote groups) are nobody's.  Without
    these flows the port sends nothing (table 0 drops by default); the executor
    applies them port by port when the switch rejects a bridge's bundle.
    """
    br = cfg.integration_bridge
    out = {fl.in_port_allow(br, wired.ofport)}
    if firewall is not None:
        own = getattr(firewall, "port_flows", None)
        if own is not None:
            out.update(own(br, wired))
        if firewall.provides_anti_spoofing:
            return frozenset(out)
    p = wired.port
    if p.port_security_enabled and not p.trusted:
        out.update(fl.anti_spoof(br, wired.ofport, [p.mac], _spoof_pairs(p)))
    return frozenset(out)


def _port_errors(
    desired: DesiredHost, isolated: Mapping[str, str], port_check: Callable[[DesiredPort], str | None]
) -> dict[str, str]:
    """port id -> why it gets no flows (``isolated`` by the executor, or ``port_check``)."""
    out: dict[str, str] = {}
    for p in desired.ports:
        why = isolated.get(p.id) or port_check(p)
        if why:
            out[p.id] = why
    return out


def plan(
    cfg: AgentConfig,
    desired: DesiredHost,
    observed: ObservedState,
    local_vlans: Mapping[str, int],
    firewall: FirewallFlowProvider | None = None,
    isolated: Mapping[str, str] | None = None,
    port_check: Callable[[DesiredPort], str | None] = port_problem,
) -> Plan:
    """Plan one reconcile pass (pure).

    Args:
        cfg: the agent configuration.
        desired: networks, ports bound to this host, tunnel peers, l2pop fdb.
        observed: OVSDB bridges/ports and installed flows right now.
        local_vlans: network id -> local VLAN from the previous pass (on start:
            ``local_vlans_from_observed(observed)``).
        firewall: optional security-group flow provider.
        isolated: port id -> reason: ports to keep dead whatever they are (the
            executor's list of ports whose flows the switch rejected).
        port_check: why a port's values are unusable (None: usable): such ports are
            isolated without trying.  ``port_problem``; a test passes a check that lets
            everything through, to reach the executor's own guard.

    Returns:
        A ``Plan``; ``Plan.flows`` holds the complete flow set of every bridge
        the agent manages.
    """
    acc = _Acc()
    nets = {n.id: n for n in desired.networks}
    ports = {p.id: p for p in desired.ports}
    port_errors = _port_errors(desired, isolated or {}, port_check)
    acc.warnings.extend(desired.problems)
    bridges = observed.bridges
    int_name = cfg.integration_bridge
    br_int = bridges.get(int_name)

    _ensure_bridge(acc, cfg, int_name, br_int)
    acc.add(int_name, fl.int_defaults(int_name))
    for ttype in cfg.tunnel_types:
        if ttype not in t.TUN_TABLE:
            acc.warnings.append(f"unsupported tunnel type {ttype!r} ignored")
    if cfg.tunnel_types and cfg.local_ip is None:
        acc.warnings.append("tunnel_types set but local_ip is not: tunnels disabled")

    # VIFs on br-int and the networks they use.  (This loop and the next run for
    # every port on every pass: they stay free of per-port allocations they can avoid.)
    provisionable = {n.id: _provisionable(cfg, n) for n in desired.networks}
    vifs: list[_Vif] = []
    for port in sorted(br_int.ports if br_int else (), key=lambda p: p.name):
        if not port.iface_id or not port.attached_mac or port.ofport is None or port.ofport <= 0:
            continue  # not a VIF, or no ofport yet
        dport = ports.get(port.iface_id)
        net = nets.get(dport.network_id) if dport and dport.id not in port_errors else None
        if net is not None and not provisionable[net.id]:
            acc.warnings.append(f"network {net.id} ({net.network_type}) cannot be provisioned on this host")
            net = None
        vifs.append(_Vif(port, port.ofport, dport, net))
    lvids, unallocated = _allocate((v.network.id for v in vifs if v.network), local_vlans)
    for net_id in unallocated:
        acc.warnings.append(f"no free local VLAN for network {net_id}")

    status: dict[str, PortStatus] = {p.id: "DOWN" for p in desired.ports}
    wired: list[WiredPort] = []
    allow: list[FlowSpec] = []
    other_configs: dict[tuple[str, int], Mapping[str, str]] = {}
    for vif in vifs:
        port, ofport, dport, net = vif
        lvid = lvids.get(net.id) if net is not None else None
        if dport is None or net is None or lvid is None or not dport.admin_state_up:
            _plan_dead(acc, int_name, vif)
            continue
        wired.append(WiredPort(dport, net, port.name, ofport, lvid))
        allow.append(fl.in_port_allow(int_name, ofport))
        status[dport.id] = "ACTIVE"
        if (port.tag, port.vlan_mode, port.trunks) != (lvid, None, ()):
            acc.ports.append(SetPortTag(port.name, lvid, None, ()))
        want = other_configs.get((net.id, lvid))
        if want is None:
            want = other_configs[(net.id, lvid)] = _other_config(net, lvid)
        if not want.items() <= port.other_config.items():
            acc.ports.append(SetPortOtherConfig(port.name, dict(want)))
    unwired = _plan_trunks(acc, int_name, desired, br_int, wired, port_check)
    if unwired:  # subport VIFs not (yet, or any more) attached through their wired parent
        gone = {fl.in_port_allow(int_name, w.ofport) for w in wired if w.port.id in unwired}
        wired = [w for w in wired if w.port.id not in unwired]
        allow = [f for f in allow if f not in gone]
        status.update({pid: "DOWN" for pid in unwired})
    acc.add(int_name, allow)
    _plan_anti_spoof(acc, int_name, wired, firewall)
    for pid in port_errors:
        status[pid] = "ERROR"

    in_use = {n: nets[n] for n in lvids}
    _plan_physical(acc, cfg, observed, in_use, lvids)
    _plan_tunnels(acc, cfg, desired, observed, in_use, lvids)

    return Plan(
        ovsdb_ops=acc.ops(),
        flows={br: frozenset(specs) for br, specs in acc.flows.items()},
        local_vlans=lvids,
        port_status=status,
        warnings=list(dict.fromkeys(acc.warnings)),
        port_errors=port_errors,
        wired=tuple(wired),
    )


def trunk_port_names(subport_id: str) -> tuple[str, str]:
    """(subport VIF, its peer) on br-int: ``spt-``/``spi-`` + the first 11 characters of the id."""
    return t.SUBPORT_VIF_PREFIX + subport_id[:11], t.SUBPORT_PEER_PREFIX + subport_id[:11]


def _plan_trunks(
    acc: _Acc,
    br: str,
    desired: DesiredHost,
    br_int: ObservedBridge | None,
    wired: Sequence[WiredPort],
    port_check: Callable[[DesiredPort], str | None],
) -> set[str]:
    """Trunks: each subport of a trunk whose parent is wired gets a patch pair on br-int.

    ``spt-<id>`` is the subport's VIF (``iface-id``/``attached-mac``), wired like any VIF
    (local VLAN, table-0 allow, firewall or anti-spoofing); it is created dead (VLAN 4095)
    so nothing reaches it before that.  Its peer ``spi-<id>`` is an access port of the dead
    VLAN, so ``NORMAL`` never outputs to it; two table-0 flows join it to the parent's VIF:
    the parent's frames tagged with the subport's VLAN go untagged into ``spi-`` (and come
    out of ``spt-`` into the pipeline), and frames entering from ``spi-`` leave the parent
    tagged.  Other tagged frames from a parent are dropped.  Patch ports of subports no
    wired parent carries are removed.

    Returns the ids of subport VIFs wired by the caller that must not be (their parent is
    not wired, or their peer has no ofport yet): their status is DOWN, they get no flows.
    """
    by_id = {w.port.id: w for w in wired}
    ports = {p.id: p for p in desired.ports}
    wanted: set[str] = set()
    attached: set[str] = set()
    for trunk in desired.trunks:
        parent = by_id.get(trunk.parent_id)
        if parent is None:
            continue
        acc.add(br, [fl.trunk_tagged_drop(br, parent.ofport)])
        for sub_id, vlan in trunk.subports:
            sub = ports.get(sub_id)
            if sub is None or not t.MIN_VLAN <= vlan <= t.MAX_VLAN or port_check(sub):
                continue
            vif, peer = trunk_port_names(sub_id)
            wanted.update((vif, peer))
            _ensure_trunk_patches(acc, br, br_int, vif, peer, sub)
            peer_ofport = _ofport(br_int, peer)
            sub_wired = by_id.get(sub_id)
            if peer_ofport is None or sub_wired is None or sub_wired.name != vif:
                continue
            attached.add(sub_id)
            acc.add(
                br,
                [
                    fl.trunk_from_parent(br, parent.ofport, vlan, peer_ofport),
                    fl.trunk_to_parent(br, peer_ofport, vlan, parent.ofport),
                ],
            )
    for port in br_int.ports if br_int else ():
        if port.name.startswith((t.SUBPORT_VIF_PREFIX, t.SUBPORT_PEER_PREFIX)) and port.name not in wanted:
            acc.removals.append(RemovePort(br, port.name))
    return {w.port.id for w in wired if w.name.startswith(t.SUBPORT_VIF_PREFIX) and w.port.id not in attached}


def _ensure_trunk_patches(
    acc: _Acc, br: str, br_int: ObservedBridge | None, vif: str, peer: str, sub: DesiredPort
) -> None:
    """Create (or repair) a subport's patch pair; a VIF end created or repaired starts dead."""
    obs_vif = br_int.port(vif) if br_int else None
    if (
        obs_vif is None
        or obs_vif.type != "patch"
        or obs_vif.options.get("peer") != peer
        or obs_vif.iface_id != sub.id
        or obs_vif.attached_mac != sub.mac
    ):
        acc.patches.append(
            EnsureTrunkPatch(
                br, vif, peer, t.DEAD_VLAN, "trunk", DEAD_TRUNKS, {"iface-id": sub.id, "attached-mac": sub.mac}
            )
        )
    obs_peer = br_int.port(peer) if br_int else None
    if (
        obs_peer is None
        or obs_peer.type != "patch"
        or obs_peer.options.get("peer") != vif
        or (obs_peer.tag, obs_peer.vlan_mode) != (t.DEAD_VLAN, "access")
    ):
        acc.patches.append(EnsureTrunkPatch(br, peer, vif, t.DEAD_VLAN, "access"))


def _plan_dead(acc: _Acc, br: str, vif: _Vif) -> None:
    p = vif.port
    if (p.tag, p.vlan_mode, p.trunks) != (t.DEAD_VLAN, "trunk", DEAD_TRUNKS):
        acc.ports.append(SetPortTag(p.name, t.DEAD_VLAN, "trunk", DEAD_TRUNKS))
    acc.add(br, [fl.in_port_drop(br, vif.ofport)])


def _plan_anti_spoof(acc: _Acc, br: str, wired: list[WiredPort], firewall: FirewallFlowProvider | None) -> None:
    if firewall is not None:
        acc.add(br, firewall.flows(br, wired))
        if firewall.provides_anti_spoofing:
            return
    for w in wired:
        if w.port.port_security_enabled and not w.port.trusted:
            acc.add(br, fl.anti_spoof(br, w.ofport, [w.port.mac], _spoof_pairs(w.port)))


def _plan_physical(
    acc: _Acc, cfg: AgentConfig, observed: ObservedState, in_use: Mapping[str, DesiredNetwork], lvids: Mapping[str, int]
) -> None:
    int_name = cfg.integration_bridge
    br_int = observed.bridges.get(int_name)
    for physnet, br_name in sorted(cfg.bridge_mappings.items()):
        br = observed.bridges.get(br_name)
        if br is None:
            acc.warnings.append(
                f"bridge {br_name} of physical network {physnet} does not "
                f"exist: create it (with its NIC) before starting the agent"
            )
            continue
        _ensure_bridge(acc, cfg, br_name, br)
        acc.add(br_name, fl.phys_defaults(br_name))
        int_patch, phy_patch = patch_port_names(br_name)
        int_ofport, phy_ofport = _ofport(br_int, int_patch), _ofport(br, phy_patch)
        int_drop = fl.in_port_drop(int_name, int_ofport) if int_ofport else None
        phy_drop = fl.in_port_drop(br_name, phy_ofport) if phy_ofport else None
        if int_drop:
            acc.add(int_name, [int_drop])
        if phy_drop:
            acc.add(br_name, [phy_drop])
        # Connect the pair only once traffic from it is known to be dropped by
        # default (and never disconnect it again).
        int_port = br_int.port(int_patch) if br_int else None
        phy_port = br.port(phy_patch)
        connected = (
            int_port is not None
            and int_port.options.get("peer") == phy_patch
            and phy_port is not None
            and phy_port.options.get("peer") == int_patch
        )
        drops_seen = (
            int_drop is not None
            and phy_drop is not None
            and int_drop in observed.flows.get(int_name, frozenset())
            and phy_drop in observed.flows.get(br_name, frozenset())
        )
        connect = connected or drops_seen
        _ensure_patch(acc, int_name, int_patch, phy_patch if connect else t.NONEXISTENT_PEER, br_int)
        _ensure_patch(acc, br_name, phy_patch, int_patch if connect else t.NONEXISTENT_PEER, br)
        if int_ofport is None or phy_ofport is None:
            continue
        for net_id, net in sorted(in_use.items()):
            if net.physical_network != physnet or net.network_type not in ("vlan", "flat"):
                continue
            lvid = lvids[net_id]
            acc.add(int_name, [fl.int_provider_in(int_name, int_ofport, net.network_type, net.segmentation_id, lvid)])
            acc.add(br_name, [fl.phys_provider_out(br_name, phy_ofport, net.network_type, net.segmentation_id, lvid)])


def _plan_tunnels(
    acc: _Acc,
    cfg: AgentConfig,
    desired: DesiredHost,
    observed: ObservedState,
    in_use: Mapping[str, DesiredNetwork],
    lvids: Mapping[str, int],
) -> None:
    if not _tunnels_enabled(cfg):
        return
    assert cfg.local_ip is not None
    int_name, tun_name = cfg.integration_bridge, cfg.tunnel_bridge
    br_int, br_tun = observed.bridges.get(int_name), observed.bridges.get(tun_name)
    types = [tt for tt in cfg.tunnel_types if tt in t.TUN_TABLE]
    arp_responder = cfg.arp_responder and cfg.l2_population

    _ensure_bridge(acc, cfg, tun_name, br_tun)
    _ensure_patch(acc, int_name, t.INT_PEER_PATCH_PORT, t.TUN_PEER_PATCH_PORT, br_int)
    _ensure_patch(acc, tun_name, t.TUN_PEER_PATCH_PORT, t.INT_PEER_PATCH_PORT, br_tun)
    patch_tun = _ofport(br_int, t.INT_PEER_PATCH_PORT)
    if patch_tun is not None:
        acc.add(int_name, [fl.in_port_allow(int_name, patch_tun)])
    acc.add(tun_name, fl.tun_defaults(tun_name, _ofport(br_tun, t.TUN_PEER_PATCH_PORT), arp_responder))

    # Tunnel ports: name -> (type, remote ip).
    tunnel_nets = {n: net for n, net in in_use.items() if net.network_type in types}
    fdb = [e for e in desired.fdb if e.network_id in tunnel_nets and e.peer_ip != cfg.local_ip]
    wanted: dict[str, tuple[str, str]] = {}
    if cfg.l2_population:
        for e in fdb:
            ttype = tunnel_nets[e.network_id].network_type
            wanted[tunnel_port_name(ttype, e.peer_ip)] = (ttype, e.peer_ip)
    else:
        for peer in desired.tunnel_peers:
            if peer.ip != cfg.local_ip:
                for ttype in types:
                    wanted[tunnel_port_name(ttype, peer.ip)] = (ttype, peer.ip)

    ofports: dict[tuple[str, str], int] = {}  # (type, remote ip) -> ofport
    for name, (ttype, remote) in sorted(wanted.items()):
        port = br_tun.port(name) if br_tun else None
        if (
            port is None
            or port.type != ttype
            or port.options.get("remote_ip") != remote
            or port.options.get("local_ip") != cfg.local_ip
        ):
            acc.tunnels.append(EnsureTunnelPort(tun_name, name, ttype, remote, cfg.local_ip))
        elif port.ready and port.ofport is not None:
            ofports[(ttype, remote)] = port.ofport
            acc.add(tun_name, [fl.tun_port_in(tun_name, port.ofport, ttype)])
    for port in br_tun.ports if br_tun else ():
        if port.type in t.TUNNEL_TYPES and port.name not in wanted:
            acc.removals.append(RemovePort(tun_name, port.name))

    for net_id, net in sorted(tunnel_nets.items()):
        lvid, vni, ttype = lvids[net_id], net.segmentation_id, net.network_type
        assert vni is not None
        acc.add(tun_name, [fl.tun_to_lv(tun_name, ttype, vni, lvid)])
        if cfg.l2_population:
            net_fdb = [e for e in fdb if e.network_id == net_id]
            flood_to = [ofports[(ttype, e.peer_ip)] for e in net_fdb if e.is_flooding and (ttype, e.peer_ip) in ofports]
            seen_macs: set[str] = set()
            seen_ips: set[str] = set()
            for e in sorted(net_fdb, key=lambda e: (e.mac, e.ip, e.peer_ip)):
                ofport = ofports.get((ttype, e.peer_ip))
                if e.is_flooding or ofport is None:
                    continue
                if e.mac not in seen_macs:
                    seen_macs.add(e.mac)
                    acc.add(tun_name, [fl.l2pop_unicast(tun_name, lvid, vni, e.mac, ofport)])
                if arp_responder and _is_ipv4(e.ip) and e.ip not in seen_ips:
                    seen_ips.add(e.ip)
                    acc.add(tun_name, [fl.arp_reply(tun_name, lvid, e.mac, e.ip)])
        else:
            flood_to = [p for (tt, _), p in ofports.items() if tt == ttype]
        if flood_to:
            acc.add(tun_name, [fl.flood(tun_name, lvid, vni, flood_to)])


def _is_ipv4(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 4
    except ValueError:
        return False
