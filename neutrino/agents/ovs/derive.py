"""Pure: the server's state (as mirrored from the change feed) → what one
host's OVS agent must wire (``DesiredHost``).

* ports: those bound to this host with ``binding:vif_type == "ovs"``;
* networks: the networks of those ports (their single segment);
* tunnel peers: every other Open vSwitch agent that reports a
  ``tunneling_ip`` (used without l2population);
* security groups: the rules of every group of those ports, and the member
  addresses of every group the rules name as remote group;
* fdb (l2population): for each tunnelled network with ports here, every port
  of that network bound on another host, behind that host's ``tunneling_ip``,
  plus one flooding entry per such host — so flooding reaches only hosts that
  have ports on the network.

Values that go into flows are checked strictly here (``neutrino.ipam.addresses``:
no IPv6 scope id, blank or control character): a rule whose remote prefix is
not a prefix is left out (the group then allows less, never more), and so are
a member address, a peer's tunnel IP or an fdb entry that is not an address;
``DesiredHost.problems`` says what was left out.  (Ports themselves are
checked by the planner, which isolates them: ``planner.port_problem``.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from neutrino.agents.ovs.model import (
    FLOODING_IP,
    FLOODING_MAC,
    AgentConfig,
    DesiredHost,
    DesiredNetwork,
    DesiredPort,
    DesiredTrunk,
    FdbEntry,
    SecurityGroupRule,
    TunnelPeer,
)
from neutrino.ipam import addresses

OVS_AGENT_TYPE = "Open vSwitch agent"
TUNNEL_TYPES = ("vxlan", "geneve", "gre")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def rule_problem(rule: SecurityGroupRule) -> str | None:
    """Why ``rule`` cannot become flows (its remote prefix is not a prefix), or None."""
    prefix = rule.remote_ip_prefix
    if prefix is not None and not addresses.is_ip_or_network(prefix):
        return f"remote_ip_prefix {_shown(prefix)} is not an IP prefix"
    return None


def tunnel_ips(agents: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """host -> tunneling_ip of every OVS agent that has one."""
    out: dict[str, str] = {}
    for a in agents.values():
        if a.get("agent_type") != OVS_AGENT_TYPE:
            continue
        ip = (a.get("configurations") or {}).get("tunneling_ip")
        if ip:
            out[a["host"]] = ip
    return out


def desired_network(net: Mapping[str, Any]) -> DesiredNetwork:
    return DesiredNetwork(
        id=net["id"],
        network_type=net.get("provider:network_type") or "local",
        physical_network=net.get("provider:physical_network"),
        segmentation_id=net.get("provider:segmentation_id"),
        mtu=int(net.get("mtu") or 1500),
    )


def desired_port(p: Mapping[str, Any]) -> DesiredPort:
    aaps = tuple((a.get("mac_address"), a["ip_address"]) for a in p.get("allowed_address_pairs") or [])
    return DesiredPort(
        id=p["id"],
        network_id=p["network_id"],
        mac=p["mac_address"],
        fixed_ips=tuple(f["ip_address"] for f in p.get("fixed_ips") or []),
        allowed_address_pairs=aaps,
        port_security_enabled=bool(p.get("port_security_enabled", True)),
        admin_state_up=bool(p.get("admin_state_up", True)),
        device_owner=p.get("device_owner") or "",
        security_groups=tuple(sorted(p.get("security_groups") or ())),
    )


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def security_group_rule(r: Mapping[str, Any]) -> SecurityGroupRule:
    return SecurityGroupRule(
        direction=r["direction"],
        ethertype=r.get("ethertype") or "IPv4",
        protocol=r.get("protocol"),
        port_range_min=_int_or_none(r.get("port_range_min")),
        port_range_max=_int_or_none(r.get("port_range_max")),
        remote_ip_prefix=r.get("remote_ip_prefix"),
        remote_group_id=r.get("remote_group_id"),
    )


def security_groups(
    mine: list[Mapping[str, Any]],
    ports: Mapping[str, Mapping[str, Any]],
    rules: Mapping[str, Mapping[str, Any]],
    memo: Memo | None = None,
    problems: list[str] | None = None,
) -> tuple[dict[str, tuple[SecurityGroupRule, ...]], dict[str, tuple[str, ...]]]:
    """(group -> rules, remote group -> member addresses) for the groups of ``mine``.

    Members are every port of the cloud in the group (its fixed IPs and
    allowed-address-pair addresses): traffic from a member on another network
    arrives routed, with its own source address.  Rules and member addresses
    that are not strictly addresses are left out (``problems`` names the rules).
    """
    memo = memo if memo is not None else Memo()
    wanted = {g for p in mine for g in p.get("security_groups") or ()}
    by_group: dict[str, list[SecurityGroupRule]] = {g: [] for g in wanted}
    seen_rules: dict[int, tuple[Mapping[str, Any], SecurityGroupRule, str | None]] = {}
    for r in rules.values():
        g = r.get("security_group_id")
        if g in by_group:
            hit = memo.rules.get(id(r))
            if hit is None or hit[0] is not r:
                rule = security_group_rule(r)
                hit = (r, rule, rule_problem(rule))
            seen_rules[id(r)] = hit
            if hit[2] is None:
                by_group[g].append(hit[1])
            elif problems is not None:
                problems.append(f"security group rule {r.get('id')} left out: {hit[2]}")
    memo.rules = seen_rules
    group_rules = {g: tuple(sorted(set(rs), key=_rule_key)) for g, rs in sorted(by_group.items())}
    remotes = {r.remote_group_id for rs in group_rules.values() for r in rs if r.remote_group_id}
    members: dict[str, set[str]] = {g: set() for g in remotes}
    seen_ports: dict[int, tuple[Mapping[str, Any], frozenset[str], tuple[str, ...]]] = {}
    if remotes:
        for p in ports.values():
            member = memo.members.get(id(p))
            if member is None or member[0] is not p:
                addrs = [f["ip_address"] for f in p.get("fixed_ips") or []]
                addrs += [a["ip_address"] for a in p.get("allowed_address_pairs") or []]
                # A member address that is not one would make the network's shared
                # address-set flow (and so the whole bundle) fail: left out.
                member = (
                    p,
                    frozenset(p.get("security_groups") or ()),
                    tuple(a for a in addrs if addresses.is_ip_or_network(a)),
                )
            seen_ports[id(p)] = member
            if member[1] and not remotes.isdisjoint(member[1]):
                for g in remotes.intersection(member[1]):
                    members[g].update(member[2])
    memo.members = seen_ports
    return group_rules, {g: tuple(sorted(a)) for g, a in sorted(members.items())}


class Memo:
    """What ``desired_host`` derived from feed bodies it may see again, kept by the
    caller across calls: the feed state shares unchanged bodies between
    revisions, so a body is recognised by identity (each entry holds its body,
    so the id cannot be reused meanwhile).  Only saves work: results are the
    same without it.  Each call keeps only the entries of bodies it saw."""

    def __init__(self) -> None:
        self.ports: dict[str, tuple[Mapping[str, Any], DesiredPort]] = {}
        #: id(rule body) -> (body, the rule, why it is left out or None)
        self.rules: dict[int, tuple[Mapping[str, Any], SecurityGroupRule, str | None]] = {}
        #: id(port body) -> (body, its security groups, its addresses)
        self.members: dict[int, tuple[Mapping[str, Any], frozenset[str], tuple[str, ...]]] = {}


def _rule_key(r: SecurityGroupRule) -> tuple[Any, ...]:
    return tuple(
        "" if v is None else str(v)
        for v in (
            r.direction,
            r.ethertype,
            r.protocol,
            r.port_range_min,
            r.port_range_max,
            r.remote_ip_prefix,
            r.remote_group_id,
        )
    )


def _desired_ports(
    mine: list[Mapping[str, Any]], memo: dict[str, tuple[Mapping[str, Any], DesiredPort]] | None
) -> tuple[DesiredPort, ...]:
    """``desired_port`` of each body, by id; a body seen before (the same object: the
    feed state shares unchanged bodies between revisions) is not converted again."""
    out = []
    fresh: dict[str, tuple[Mapping[str, Any], DesiredPort]] = {}
    for p in sorted(mine, key=lambda x: x["id"]):
        hit = memo.get(p["id"]) if memo is not None else None
        if hit is None or hit[0] is not p:
            hit = (p, desired_port(p))
        fresh[p["id"]] = hit
        out.append(hit[1])
    if memo is not None:
        memo.clear()
        memo.update(fresh)
    return tuple(out)


def stateless_groups(groups: Mapping[str, Mapping[str, Any]] | None) -> frozenset[str]:
    """Ids of the groups whose ``stateful`` is false (a group not seen is stateful)."""
    if not groups:
        return frozenset()
    return frozenset(g["id"] for g in groups.values() if g.get("stateful") is False)


def _with_modes(ports: tuple[DesiredPort, ...], stateless: frozenset[str]) -> tuple[DesiredPort, ...]:
    """Mark the ports that are in a stateless group.  The API keeps a port's groups
    all of one mode; should they ever be mixed, the port is stateless, which lets
    through less (no reply is allowed without a rule), never more."""
    if not stateless:
        return ports
    return tuple(replace(p, stateful=False) if stateless.intersection(p.security_groups) else p for p in ports)


def desired_trunks(mine: list[Mapping[str, Any]]) -> tuple[DesiredTrunk, ...]:
    """The trunks of this host's parent ports (their ``trunk_details``): VLAN subports whose
    segmentation id is an integer 1..4094 (anything else is left out: it carries nothing)."""
    out = []
    for p in sorted(mine, key=lambda x: x["id"]):
        details = p.get("trunk_details")
        if not isinstance(details, Mapping):
            continue
        subs = []
        for sp in details.get("sub_ports") or ():
            seg = sp.get("segmentation_id")
            if (
                sp.get("segmentation_type") == "vlan"
                and isinstance(seg, int)
                and not isinstance(seg, bool)
                and 1 <= seg <= 4094
                and isinstance(sp.get("port_id"), str)
            ):
                subs.append((sp["port_id"], seg))
        out.append(DesiredTrunk(p["id"], tuple(sorted(subs, key=lambda x: x[1]))))
    return tuple(out)


def desired_host(
    cfg: AgentConfig,
    ports: Mapping[str, Mapping[str, Any]],
    networks: Mapping[str, Mapping[str, Any]],
    agents: Mapping[str, Mapping[str, Any]],
    sg_rules: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    memo: Memo | None = None,
    sg_groups: Mapping[str, Mapping[str, Any]] | None = None,
) -> DesiredHost:
    """What this host's agent must wire; ``memo`` (kept by the caller across calls)
    only saves work, the result is the same without it.  ``sg_groups`` (the
    security groups, for their ``stateful``) matters only with ``sg_rules``."""
    mine = [p for p in ports.values() if p.get("binding:host_id") == cfg.host and p.get("binding:vif_type") == "ovs"]
    net_ids = sorted({p["network_id"] for p in mine if p["network_id"] in networks})
    nets = tuple(desired_network(networks[n]) for n in net_ids)
    problems: list[str] = []
    vteps = tunnel_ips(agents)
    for h, ip in sorted(vteps.items()):
        if not addresses.is_ip(ip):
            problems.append(f"tunneling_ip {_shown(ip)} of host {_shown(h)} is not an IP address: no tunnel")
            del vteps[h]
    peers = tuple(TunnelPeer(h, ip) for h, ip in sorted(vteps.items()) if h != cfg.host)
    fdb: list[FdbEntry] = []
    if cfg.l2_population:
        tunnelled = {n.id for n in nets if n.network_type in TUNNEL_TYPES}
        local_ip = cfg.local_ip
        flood_seen: set[tuple[str, str]] = set()
        for p in sorted(ports.values(), key=lambda x: x["id"]):
            net_id = p.get("network_id")
            host = p.get("binding:host_id")
            if net_id not in tunnelled or not host or host == cfg.host:
                continue
            vtep = vteps.get(host)
            if vtep is None or vtep == local_ip:
                continue
            if (net_id, vtep) not in flood_seen:
                flood_seen.add((net_id, vtep))
                fdb.append(FdbEntry(net_id, vtep, FLOODING_MAC, FLOODING_IP))
            mac = p.get("mac_address")
            if not (isinstance(mac, str) and _MAC.fullmatch(mac)):
                continue  # no forwarding entry (it would be a flow ovs-ofctl rejects)
            for f in p.get("fixed_ips") or []:
                if addresses.is_ip(f["ip_address"]):
                    fdb.append(FdbEntry(net_id, vtep, mac, f["ip_address"]))
    group_rules, members = security_groups(mine, ports, sg_rules, memo, problems) if sg_rules is not None else ({}, {})
    desired_ports = _desired_ports(mine, memo.ports if memo is not None else None)
    if sg_rules is not None:
        desired_ports = _with_modes(desired_ports, stateless_groups(sg_groups))
    return DesiredHost(
        networks=nets,
        ports=desired_ports,
        tunnel_peers=peers,
        fdb=tuple(fdb),
        security_groups=group_rules,
        group_members=members,
        problems=tuple(problems),
        trunks=desired_trunks(mine),
    )
