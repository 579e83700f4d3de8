"""Pure: the stateful security-group firewall of the OVS agent, as OpenFlow flows.

``OvsFirewall`` is the planner's ``FirewallFlowProvider``: given every wired
port of br-int it returns the complete set of firewall flows (tables 60,
71-73, 81-82, 91-94, Neutron's numbering; see tables.py).  It replaces the
planner's table 24/25 anti-spoofing with its own.

Pipeline (``P`` = the port's ofport, ``L`` = its network's local VLAN, which
is also the conntrack zone: one zone per network per host)::

    60  in_port=P               -> reg5=P, reg6=L, 71 (egress)    [unfiltered: -> 73]
    60  dl_vlan=L,dl_dst=MAC(P) -> reg5=P, reg6=L, pop_vlan, 81   (from a tunnel/physnet)
    71  ARP/ND/DHCP-client from P's own MACs and addresses -> 94 / 73;
        DHCP/RA server traffic from P -> 93; IP from P's (MAC, IP) pairs ->
        ct(zone=L) -> 72; anything else from P -> 93
    72  invalid, or marked by a rule removal (ct_mark=1) -> 93; replies and
        related -> 73; a rule matches (new or established original direction)
        -> 73; an established connection no rule allows any more -> mark it
        (ct_mark=1) and drop; other -> 93
    73  dst MAC of a filtered port on this host -> reg5=that port, 81 (its
        ingress); new connection -> ct(commit), 91; else -> 94
    81  ARP, ND and DHCP replies to P -> output:P; IP -> ct(zone=L) -> 82
    82  as 72 with ingress rules; accepted -> output:P (new: ct(commit) first)
    91 -> 94 NORMAL; 92, 93 drop

Rules become flows at priority 70 + offset (offset: +4 without a remote
group, +0 none / +1 ICMP without type / +2 ICMP type without code / +3 any
other protocol), each twice: for new connections (``ct_state=+new-est``,
which commit) and for established ones in the original direction
(``+est-rel-rpl``, re-checked per packet, so removing a rule cuts the
connections that only it allowed while replies are always let through).
TCP/UDP/SCTP port ranges become bitmask matches on ``tp_dst``.  Rules with a
remote group use OVS conjunctions: the group's member addresses are one
dimension (``reg6=L`` + source/destination address, shared by every port of
the network), the port's protocol/port match the other, and a ``conj_id``
flow per port accepts; a membership change touches only the address flows.

Stateless ports (every group of the port has ``stateful: false``) keep the
anti-spoofing and ARP/ND/DHCP flows, but their IP skips conntrack: table 71
sends it to 72 and table 81 to 82 without ``ct()``, their rules are single
flows matching any conntrack state (accept: 73, or output:P), and tables
72/82 have no state flows for them, so nothing passes without a rule: a
stateless group needs rules for both directions of a conversation, and no
conntrack entry is created for the port's traffic.  The one exception: a new
connection from a stateful port on this host to a stateless one is committed
at table 73 (priority 105), so that the stateful side recognises the replies.

Ports without port security, and trusted ports (``network:*``: DHCP,
routers) are not filtered: their traffic enters at table 73 (so it still
reaches a filtered port only through that port's ingress rules).

Cost: the planner asks for every port's flows on every pass (~50-200 per
port), so everything is memoised on its inputs: a port's rule-independent
flows, each rule's flows for a port, their union per port (a frozenset, whose
stored hashes make merging it into the pass's flow set cheap), and the
address dimension of each remote group per network, which is updated from
the previous pass when only the group's members changed.  A rule added to a
group recomputes that rule's flows for the group's ports; a member joining
computes one address flow per network.  The flows are exactly those a
computation from scratch gives (tested).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from neutrino.agents.ovs import tables as t
from neutrino.agents.ovs.flows import lla
from neutrino.agents.ovs.model import DesiredPort, FlowSpec, SecurityGroupRule, WiredPort
from neutrino.ip_protocols import protocol_number
from neutrino.system.oftext import canonical_match

__all__ = ["ConjIds", "OvsFirewall", "port_masks", "rule_priority"]

ZONE = "NXM_NX_REG6[0..15]"

# priorities
PRIO_ENTRY = 100  # 60: in_port of a port
PRIO_ENTRY_INGRESS = 90  # 60: dst MAC of a filtered port, tagged with its local VLAN
PRIO_TRACKED = 110  # 71: clear a conntrack state left from elsewhere
PRIO_EGRESS_ALLOW = 95  # 71: ARP / ND from the port's MACs and addresses
PRIO_DHCP_CLIENT = 80  # 71: DHCP requests
PRIO_SERVER_DROP = 70  # 71: DHCP/RA server traffic from an instance
PRIO_IP = 65  # 71: IP from the port's (MAC, IP) pairs -> conntrack
PRIO_EGRESS_DROP = 10  # 71: anything else from the port
PRIO_CT_STATE = 50  # 72/82: invalid, marked, replies and related
PRIO_CT_OTHER = 40  # 72/82: no rule: mark established ones, drop the rest
PRIO_LOCAL_DST = 100  # 73: to a filtered port on this host
PRIO_LOCAL_DST_COMMIT = 105  # 73: a new connection to a stateless port here: commit, then as above
PRIO_COMMIT = 90  # 73: commit new accepted connections
PRIO_ACCEPT = 80  # 73: anything else accepted -> NORMAL
PRIO_INGRESS_BASE = 100  # 81: ARP / ND to the port
PRIO_DHCP_REPLY = 95  # 81: DHCP replies to the port
PRIO_INGRESS_CT = 90  # 81: IP -> conntrack lookup
PRIO_INGRESS_TRACKED = 80  # 81: already tracked (local sender) -> 82
RULE_BASE = 70

NEW = "+new-est"
ESTABLISHED = "+est-rel-rpl"
#: ICMPv6 an instance may send: MLD query/report/done, RS, NS, NA, MLDv2 report.
ND_EGRESS = (130, 131, 132, 133, 135, 136, 143)
#: ICMPv6 an instance may receive without a rule: MLD, RA, NS, NA, MLDv2.
ND_INGRESS = (130, 131, 132, 134, 135, 136, 143)
RA = 134

#: Protocols OVS can match transport ports of, and their match keywords (IPv4, IPv6).
_PORT_KEYWORDS = {6: ("tcp", "tcp6"), 17: ("udp", "udp6"), 132: ("sctp", "sctp6")}
_ICMP = (1, 58)


@dataclass
class ConjIds:
    """Stable conjunction ids: (remote group, direction, ethertype, priority) -> id.

    Kept by the agent across passes so an unrelated change never renumbers
    (and so rewrites) conjunction flows.  Ids are never reused within a run.
    """

    ids: dict[tuple[str, str, str, int], int] = field(default_factory=dict)
    next_id: int = 8

    def get(self, key: tuple[str, str, str, int]) -> int:
        cid = self.ids.get(key)
        if cid is None:
            cid = self.ids[key] = self.next_id
            self.next_id += 1
        return cid


def rule_priority(rule: SecurityGroupRule) -> int:
    """Neutron's: more specific rules first, rules with a remote group below the others."""
    proto = protocol_number(rule.protocol)
    if proto is None:
        offset = 0
    elif proto in _ICMP:
        offset = 1 if rule.port_range_min is None else 2 if rule.port_range_max is None else 3
    else:
        offset = 3
    return RULE_BASE + offset + (0 if rule.remote_group_id else 4)


def port_masks(lo: int | None, hi: int | None) -> list[str | None]:
    """A port range as ``tp_dst`` values (exact ports, ``0xVALUE/0xMASK`` blocks); [None] = any."""
    if lo is None and hi is None:
        return [None]
    lo = hi if lo is None else lo
    hi = lo if hi is None else hi
    assert lo is not None and hi is not None
    if lo <= 1 and hi >= 65535:
        return [None]
    out: list[str | None] = []
    while lo <= hi:
        size = 1
        while lo % (size * 2) == 0 and lo + size * 2 - 1 <= hi and size < 65536:
            size *= 2
        out.append(str(lo) if size == 1 else f"0x{lo:x}/0x{0xFFFF ^ (size - 1):x}")
        lo += size
    return out


def _rule_matches(rule: SecurityGroupRule) -> list[str]:
    """The match texts (without ct_state / reg5) of one rule; several for port ranges."""
    v6 = rule.ethertype == "IPv6"
    proto = protocol_number(rule.protocol)
    fields: list[str] = []
    if proto is None:
        keyword = "ipv6" if v6 else "ip"
    elif proto in _ICMP:
        keyword = "icmp6" if v6 else "icmp"
        if rule.port_range_min is not None:
            fields.append(f"icmp_type={rule.port_range_min}")
            if rule.port_range_max is not None:
                fields.append(f"icmp_code={rule.port_range_max}")
    elif proto in _PORT_KEYWORDS:
        keyword = _PORT_KEYWORDS[proto][v6]
    else:
        keyword = f"{'ipv6' if v6 else 'ip'},nw_proto={proto}"
    if rule.remote_ip_prefix:
        side = "src" if rule.direction == "ingress" else "dst"
        fields.append(f"{'ipv6' if v6 else 'nw'}_{side}={rule.remote_ip_prefix}")
    ports: list[str | None] = [None]
    if proto in _PORT_KEYWORDS:
        ports = port_masks(rule.port_range_min, rule.port_range_max)
    return [",".join([keyword, *fields, *([f"tp_dst={p}"] if p else [])]) for p in ports]


def _flow(br: str, table: int, priority: int, match: str, actions: str) -> FlowSpec:
    return FlowSpec(br, table, priority, canonical_match(match), actions)


def _regs(ofport: int, lvid: int) -> str:
    return f"set_field:0x{ofport:x}->reg5,set_field:0x{lvid:x}->reg6"


def _defaults(br: str) -> list[FlowSpec]:
    commit = f"ct(commit,zone={ZONE}),resubmit(,{t.ACCEPTED_EGRESS})"
    return [
        _flow(br, t.BASE_EGRESS, PRIO_TRACKED, "ct_state=+trk", f"ct_clear,resubmit(,{t.BASE_EGRESS})"),
        _flow(br, t.BASE_EGRESS, 0, "", "drop"),
        _flow(br, t.RULES_EGRESS, PRIO_CT_STATE, "ct_state=+inv+trk", f"resubmit(,{t.DROPPED})"),
        _flow(br, t.RULES_EGRESS, 0, "", "drop"),
        _flow(br, t.ACCEPT_OR_INGRESS, PRIO_COMMIT, "ct_state=+new-est,ip", commit),
        _flow(br, t.ACCEPT_OR_INGRESS, PRIO_COMMIT, "ct_state=+new-est,ipv6", commit),
        _flow(br, t.ACCEPT_OR_INGRESS, PRIO_ACCEPT, "", f"resubmit(,{t.ACCEPTED_EGRESS_NORMAL})"),
        _flow(br, t.BASE_INGRESS, 0, "", "drop"),
        _flow(br, t.RULES_INGRESS, PRIO_CT_STATE, "ct_state=+inv+trk", f"resubmit(,{t.DROPPED})"),
        _flow(br, t.RULES_INGRESS, 0, "", "drop"),
        _flow(br, t.ACCEPTED_EGRESS, 1, "", f"resubmit(,{t.ACCEPTED_EGRESS_NORMAL})"),
        _flow(br, t.ACCEPTED_INGRESS, 0, "", "drop"),
        _flow(br, t.DROPPED, 0, "", "drop"),
        _flow(br, t.ACCEPTED_EGRESS_NORMAL, 1, "", "NORMAL"),
    ]


@functools.lru_cache(maxsize=16384)
def _unfiltered(br: str, ofport: int, lvid: int) -> frozenset[FlowSpec]:
    return frozenset(
        (
            _flow(
                br,
                t.TRANSIENT,
                PRIO_ENTRY,
                f"in_port={ofport}",
                f"{_regs(ofport, lvid)},resubmit(,{t.ACCEPT_OR_INGRESS})",
            ),
        )
    )


def _conntrack_flows(br: str, table: int, ofport: int, lvid: int, accept: str) -> list[FlowSpec]:
    """Table 72/82 state handling of one port (``accept``: where accepted packets go)."""
    mark = f"ct(commit,zone={ZONE},exec(set_field:0x1->ct_mark))"
    reg = f"reg5=0x{ofport:x}"
    return [
        _flow(br, table, PRIO_CT_STATE, f"ct_mark=0x1,{reg}", f"resubmit(,{t.DROPPED})"),
        _flow(br, table, PRIO_CT_STATE, f"ct_state=+est-rel+rpl,ct_zone={lvid},ct_mark=0,{reg}", accept),
        _flow(br, table, PRIO_CT_STATE, f"ct_state=-new-est+rel-inv,ct_zone={lvid},ct_mark=0,{reg}", accept),
        _flow(br, table, PRIO_CT_OTHER, f"ct_state=-est,{reg}", f"resubmit(,{t.DROPPED})"),
        _flow(br, table, PRIO_CT_OTHER, f"ct_state=+est,ip,{reg}", mark),
        _flow(br, table, PRIO_CT_OTHER, f"ct_state=+est,ipv6,{reg}", mark),
    ]


#: A rule with its conjunction id (None: no remote group).
_Resolved = tuple[SecurityGroupRule, int | None]


@functools.lru_cache(maxsize=16384)
def _filtered(
    br: str,
    ofport: int,
    lvid: int,
    macs: tuple[str, ...],
    pairs: tuple[tuple[str, str], ...],
    rules: tuple[_Resolved, ...],
    stateful: bool = True,
) -> frozenset[FlowSpec]:
    """Every flow of one filtered port (memoised: a pass re-plans all ports, and only
    the ports whose addresses, network, ofport or rules changed get new flows; those
    are put together from the memoised flows of the port and of each of its rules, so
    a rule added to a group shared by many ports costs only that rule's flows).

    A frozenset: merging it into the pass's flow set reuses the hashes it stores
    (hashing ~50k flows again every pass would cost more than the rest of a pass)."""
    parts = [
        _port_flows(br, ofport, lvid, macs, pairs) if stateful else _stateless_port_flows(br, ofport, lvid, macs, pairs)
    ]
    port_dims: dict[tuple[int, int, str], set[int]] = {}  # (table, prio, match) -> conj ids
    for rule, cid in rules:
        flows, dims = _rule_flows(br, ofport, rule, cid) if stateful else _stateless_rule_flows(br, ofport, rule, cid)
        parts.append(flows)
        if cid is not None:  # (a rule without a conjunction has no dimension)
            for key in dims:
                port_dims.setdefault(key, set()).add(cid)
    parts.append(
        frozenset(FlowSpec(br, table, prio, m, _conjunctions(cids, 2)) for (table, prio, m), cids in port_dims.items())
    )
    # A union of frozensets reuses the hashes they store.
    return frozenset().union(*parts)


@functools.lru_cache(maxsize=16384)
def _port_flows(
    br: str, ofport: int, lvid: int, macs: tuple[str, ...], pairs: tuple[tuple[str, str], ...]
) -> frozenset[FlowSpec]:
    """The flows of one filtered port that do not depend on its rules."""
    reg = f"reg5=0x{ofport:x}"
    regs = _regs(ofport, lvid)
    out = [_flow(br, t.TRANSIENT, PRIO_ENTRY, f"in_port={ofport}", f"{regs},resubmit(,{t.BASE_EGRESS})")]
    for m in macs:
        out.append(
            _flow(
                br,
                t.TRANSIENT,
                PRIO_ENTRY_INGRESS,
                f"dl_vlan={lvid},dl_dst={m}",
                f"{regs},pop_vlan,resubmit(,{t.BASE_INGRESS})",
            )
        )
        out.append(
            _flow(
                br,
                t.ACCEPT_OR_INGRESS,
                PRIO_LOCAL_DST,
                f"reg6=0x{lvid:x},dl_dst={m}",
                f"set_field:0x{ofport:x}->reg5,resubmit(,{t.BASE_INGRESS})",
            )
        )
        for icmp_type in ND_EGRESS:
            out.append(
                _flow(
                    br,
                    t.BASE_EGRESS,
                    PRIO_EGRESS_ALLOW,
                    f"icmp6,{reg},dl_src={m},icmp_type={icmp_type}",
                    f"resubmit(,{t.ACCEPTED_EGRESS_NORMAL})",
                )
            )
        out.append(
            _flow(
                br,
                t.BASE_EGRESS,
                PRIO_DHCP_CLIENT,
                f"udp,{reg},dl_src={m},nw_src=0.0.0.0,tp_src=68,tp_dst=67",
                f"resubmit(,{t.ACCEPT_OR_INGRESS})",
            )
        )
        out.append(
            _flow(
                br,
                t.BASE_EGRESS,
                PRIO_DHCP_CLIENT,
                f"udp6,{reg},dl_src={m},tp_src=546,tp_dst=547",
                f"resubmit(,{t.ACCEPT_OR_INGRESS})",
            )
        )
        out.append(
            _flow(
                br,
                t.BASE_EGRESS,
                PRIO_IP,
                f"ipv6,{reg},dl_src={m},ipv6_src={lla(m)}",
                f"ct(table={t.RULES_EGRESS},zone={ZONE})",
            )
        )
    for m, ip in pairs:
        if _ip_version(ip) == 4:
            out.append(
                _flow(
                    br,
                    t.BASE_EGRESS,
                    PRIO_EGRESS_ALLOW,
                    f"arp,{reg},dl_src={m},arp_spa={ip}",
                    f"resubmit(,{t.ACCEPTED_EGRESS_NORMAL})",
                )
            )
            out.append(
                _flow(
                    br,
                    t.BASE_EGRESS,
                    PRIO_DHCP_CLIENT,
                    f"udp,{reg},dl_src={m},nw_src={ip},tp_src=68,tp_dst=67",
                    f"resubmit(,{t.ACCEPT_OR_INGRESS})",
                )
            )
            out.append(
                _flow(
                    br,
                    t.BASE_EGRESS,
                    PRIO_IP,
                    f"ip,{reg},dl_src={m},nw_src={ip}",
                    f"ct(table={t.RULES_EGRESS},zone={ZONE})",
                )
            )
        else:
            out.append(
                _flow(
                    br,
                    t.BASE_EGRESS,
                    PRIO_IP,
                    f"ipv6,{reg},dl_src={m},ipv6_src={ip}",
                    f"ct(table={t.RULES_EGRESS},zone={ZONE})",
                )
            )
    drop = f"resubmit(,{t.DROPPED})"
    out += [
        _flow(br, t.BASE_EGRESS, PRIO_SERVER_DROP, f"udp,{reg},tp_src=67,tp_dst=68", drop),
        _flow(br, t.BASE_EGRESS, PRIO_SERVER_DROP, f"udp6,{reg},tp_src=547,tp_dst=546", drop),
        _flow(br, t.BASE_EGRESS, PRIO_SERVER_DROP, f"icmp6,{reg},icmp_type={RA}", drop),
        _flow(br, t.BASE_EGRESS, PRIO_EGRESS_DROP, reg, f"ct_clear,{drop}"),
    ]
    out += _conntrack_flows(br, t.RULES_EGRESS, ofport, lvid, f"resubmit(,{t.ACCEPT_OR_INGRESS})")

    output = f"output:{ofport}"
    out.append(_flow(br, t.BASE_INGRESS, PRIO_INGRESS_BASE, f"arp,{reg}", output))
    out += [_flow(br, t.BASE_INGRESS, PRIO_INGRESS_BASE, f"icmp6,{reg},icmp_type={i}", output) for i in ND_INGRESS]
    out += [
        _flow(br, t.BASE_INGRESS, PRIO_DHCP_REPLY, f"udp,{reg},tp_src=67,tp_dst=68", output),
        _flow(br, t.BASE_INGRESS, PRIO_DHCP_REPLY, f"udp6,{reg},tp_src=547,tp_dst=546", output),
        _flow(
            br, t.BASE_INGRESS, PRIO_INGRESS_CT, f"ct_state=-trk,ip,{reg}", f"ct(table={t.RULES_INGRESS},zone={ZONE})"
        ),
        _flow(
            br, t.BASE_INGRESS, PRIO_INGRESS_CT, f"ct_state=-trk,ipv6,{reg}", f"ct(table={t.RULES_INGRESS},zone={ZONE})"
        ),
        _flow(br, t.BASE_INGRESS, PRIO_INGRESS_TRACKED, f"ct_state=+trk,{reg}", f"resubmit(,{t.RULES_INGRESS})"),
    ]
    out += _conntrack_flows(br, t.RULES_INGRESS, ofport, lvid, output)
    return frozenset(out)


@functools.lru_cache(maxsize=16384)
def _stateless_port_flows(
    br: str, ofport: int, lvid: int, macs: tuple[str, ...], pairs: tuple[tuple[str, str], ...]
) -> frozenset[FlowSpec]:
    """``_port_flows`` of a port whose groups are stateless: the same anti-spoofing
    and ARP/ND/DHCP handling, but IP goes to the rule tables without a conntrack
    lookup (no ``ct()``, so no conntrack entry), and there is no connection-state
    handling there: a packet passes only if a rule matches it, replies included.

    A connection that a stateful port on this host opens to this port is
    committed on the way (table 73): the stateful side's ingress would otherwise
    see this port's replies as new connections."""
    to_rules = f"resubmit(,{t.RULES_EGRESS})"
    out = []
    for f in _port_flows(br, ofport, lvid, macs, pairs):
        if f.table in (t.RULES_EGRESS, t.RULES_INGRESS):
            continue  # the conntrack state flows
        if f.table == t.BASE_EGRESS and f.actions.startswith("ct(table="):
            f = f._replace(actions=to_rules)
        elif f.table == t.BASE_INGRESS and "ct_state=" in f.match:
            continue  # replaced below
        out.append(f)
    reg = f"reg5=0x{ofport:x}"
    for eth in ("ip", "ipv6"):
        out.append(_flow(br, t.BASE_INGRESS, PRIO_INGRESS_CT, f"{eth},{reg}", f"resubmit(,{t.RULES_INGRESS})"))
        for m in macs:
            out.append(
                _flow(
                    br,
                    t.ACCEPT_OR_INGRESS,
                    PRIO_LOCAL_DST_COMMIT,
                    f"ct_state={NEW},{eth},reg6=0x{lvid:x},dl_dst={m}",
                    f"ct(commit,zone={ZONE}),set_field:0x{ofport:x}->reg5,resubmit(,{t.BASE_INGRESS})",
                )
            )
    return frozenset(out)


@functools.lru_cache(maxsize=65536)
def _stateless_rule_flows(
    br: str, ofport: int, rule: SecurityGroupRule, cid: int | None
) -> tuple[frozenset[FlowSpec], tuple[tuple[int, int, str], ...]]:
    """``_rule_flows`` of a stateless port: one flow per match, whatever the
    packet's conntrack state, accepting without a commit."""
    reg = f"reg5=0x{ofport:x}"
    ingress = rule.direction == "ingress"
    table = t.RULES_INGRESS if ingress else t.RULES_EGRESS
    accept = f"output:{ofport}" if ingress else f"resubmit(,{t.ACCEPT_OR_INGRESS})"
    prio = rule_priority(rule)
    if cid is None:
        return frozenset(_flow(br, table, prio, f"{m},{reg}", accept) for m in _rule_matches(rule)), ()
    dims = tuple((table, prio, canonical_match(f"{m},{reg}")) for m in _rule_matches(rule))
    eth = "ipv6" if rule.ethertype == "IPv6" else "ip"
    return frozenset((_flow(br, table, prio, f"conj_id={cid},{eth},{reg}", accept),)), dims


@functools.lru_cache(maxsize=65536)
def _rule_flows(
    br: str, ofport: int, rule: SecurityGroupRule, cid: int | None
) -> tuple[frozenset[FlowSpec], tuple[tuple[int, int, str], ...]]:
    """One rule of one port: (its flows, the (table, priority, match) of its conjunction
    dimension, merged per port by ``_filtered`` since rules may share one)."""
    reg = f"reg5=0x{ofport:x}"
    output = f"output:{ofport}"
    ingress = rule.direction == "ingress"
    table = t.RULES_INGRESS if ingress else t.RULES_EGRESS
    accept_new = f"ct(commit,zone={ZONE}),{output}" if ingress else f"resubmit(,{t.ACCEPT_OR_INGRESS})"
    accept_est = output if ingress else f"resubmit(,{t.ACCEPT_OR_INGRESS})"
    prio = rule_priority(rule)
    out: list[FlowSpec] = []
    if cid is None:
        for m in _rule_matches(rule):
            out.append(_flow(br, table, prio, f"ct_state={NEW},{m},{reg}", accept_new))
            out.append(_flow(br, table, prio, f"ct_state={ESTABLISHED},{m},{reg}", accept_est))
        return frozenset(out), ()
    # Remote group: this port's dimension (protocol/ports) and the accepting conj_id flows;
    # the address dimension is shared by the network's ports (OvsFirewall.flows).
    dims = tuple((table, prio, canonical_match(f"{m},{reg}")) for m in _rule_matches(rule))
    eth = "ipv6" if rule.ethertype == "IPv6" else "ip"
    out.append(_flow(br, table, prio, f"conj_id={cid},ct_state={NEW},{eth},{reg}", accept_new))
    out.append(_flow(br, table, prio, f"conj_id={cid},ct_state={ESTABLISHED},{eth},{reg}", accept_est))
    return frozenset(out), dims


@functools.lru_cache(maxsize=65536)
def _ip_version(addr: str) -> int:
    return ipaddress.ip_network(addr, strict=False).version


@functools.lru_cache(maxsize=65536)
def _address_match(table: int, lvid: int, addr: str, v6: bool) -> str | None:
    """The address-dimension match of a remote group member; None if not of that family."""
    if (_ip_version(addr) == 6) != v6:
        return None
    side = "src" if table == t.RULES_INGRESS else "dst"
    return canonical_match(f"{'ipv6' if v6 else 'ip'},reg6=0x{lvid:x},{'ipv6' if v6 else 'nw'}_{side}={addr}")


#: (group, its member addresses, conjunction ids) of every group sharing one address bucket.
_Bucket = tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...]


class _AddressSets:
    """The address dimensions of remote-group rules, per (bridge, table, priority,
    network, family) bucket: one flow per member address, naming every conjunction
    that uses it.

    Memoised incrementally: when only the member list of a single-group bucket
    changed since the last call (a port joined or left the group), the flows are
    the previous ones minus the gone addresses plus the new ones, so a membership
    change costs O(changed members), not O(members x networks).  Results are
    exactly those of a computation from scratch (``_address_flows``).
    """

    MAX_BUCKETS = 4096

    def __init__(self) -> None:
        #: bucket key -> (groups, flows, canonical match -> how many members give it)
        self.last: dict[tuple[str, int, int, int, bool], tuple[_Bucket, frozenset[FlowSpec], dict[str, int]]] = {}

    def flows(self, br: str, table: int, prio: int, lvid: int, v6: bool, groups: _Bucket) -> frozenset[FlowSpec]:
        key = (br, table, prio, lvid, v6)
        prev = self.last.get(key)
        if prev is not None and prev[0] == groups:
            return prev[1]
        if (
            prev is not None
            and len(groups) == 1
            and len(prev[0]) == 1
            and groups[0][0] == prev[0][0][0]
            and groups[0][2] == prev[0][0][2]
        ):
            (_, members, cids), ((_, old_members, _),) = groups[0], prev[0]
            result, counts = self._update(
                br,
                table,
                prio,
                lvid,
                v6,
                cids,
                prev[1],
                dict(prev[2]),
                set(old_members).difference(members),
                set(members).difference(old_members),
            )
        else:
            result = _address_flows(br, table, prio, lvid, v6, groups)
            counts = {}
            for _, members, _ in groups:
                for addr in members:
                    m = _address_match(table, lvid, addr, v6)
                    if m is not None:
                        counts[m] = counts.get(m, 0) + 1
        if len(self.last) >= self.MAX_BUCKETS:
            self.last.clear()
        self.last[key] = (groups, result, counts)
        return result

    @staticmethod
    def _update(
        br: str,
        table: int,
        prio: int,
        lvid: int,
        v6: bool,
        cids: tuple[int, ...],
        flows: frozenset[FlowSpec],
        counts: dict[str, int],
        gone: set[str],
        added: set[str],
    ) -> tuple[frozenset[FlowSpec], dict[str, int]]:
        actions = _conjunctions(cids, 1)
        drop: set[FlowSpec] = set()
        new: set[FlowSpec] = set()
        for addr in gone:
            m = _address_match(table, lvid, addr, v6)
            if m is not None:
                counts[m] -= 1
                if not counts[m]:
                    del counts[m]
                    drop.add(FlowSpec(br, table, prio, m, actions))
        for addr in added:
            m = _address_match(table, lvid, addr, v6)
            if m is not None:
                counts[m] = counts.get(m, 0) + 1
                if counts[m] == 1:
                    new.add(FlowSpec(br, table, prio, m, actions))
        return (flows - drop) | new, counts


_ADDRESS_SETS = _AddressSets()


def _address_flows(br: str, table: int, prio: int, lvid: int, v6: bool, groups: _Bucket) -> frozenset[FlowSpec]:
    """See ``_AddressSets`` (this is the computation from scratch)."""
    conj: dict[str, set[int]] = {}
    for _, members, cids in groups:
        for addr in members:
            m = _address_match(table, lvid, addr, v6)
            if m is not None:
                conj.setdefault(m, set()).update(cids)
    return frozenset(FlowSpec(br, table, prio, m, _conjunctions(cids, 1)) for m, cids in conj.items())


def _conjunctions(cids: Iterable[int], dimension: int) -> str:
    return ",".join(f"conjunction({c},{dimension}/2)" for c in sorted(cids))


@functools.lru_cache(maxsize=16384)
def _addresses(
    mac: str, fixed_ips: tuple[str, ...], address_pairs: tuple[tuple[str | None, str], ...]
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(allowed MACs, allowed (MAC, IP) pairs) of a port, in a stable order."""
    pairs = tuple(
        sorted({(mac.lower(), ip) for ip in fixed_ips} | {((m or mac).lower(), ip) for m, ip in address_pairs})
    )
    macs = tuple(sorted({mac.lower()} | {m for m, _ in pairs}))
    return macs, pairs


class OvsFirewall:
    """The conntrack firewall for one pass (``FirewallFlowProvider``).

    Args:
        groups: security group id -> its rules (the groups of this host's ports).
        members: remote group id -> member addresses (IPs or CIDRs).
        conj_ids: the agent's conjunction id allocator (kept across passes).
    """

    provides_anti_spoofing = True

    def __init__(
        self,
        groups: Mapping[str, Sequence[SecurityGroupRule]],
        members: Mapping[str, Sequence[str]],
        conj_ids: ConjIds | None = None,
    ) -> None:
        self.groups = groups
        self.members = members
        self.conj_ids = conj_ids if conj_ids is not None else ConjIds()
        self._rules: dict[tuple[str, ...], tuple[_Resolved, ...]] = {}

    @staticmethod
    def filtered(port: DesiredPort) -> bool:
        return port.port_security_enabled and not port.trusted

    def rules_of(self, port: DesiredPort) -> tuple[_Resolved, ...]:
        """The port's rules (the union of its groups'), each with its conjunction id."""
        resolved = self._rules.get(port.security_groups)
        if resolved is None:
            rules = sorted(
                {r for g in port.security_groups for r in self.groups.get(g, ())},
                key=lambda r: tuple("" if v is None else str(v) for v in r),
            )
            resolved = tuple(
                (
                    r,
                    self.conj_ids.get((r.remote_group_id, r.direction, r.ethertype, rule_priority(r)))
                    if r.remote_group_id
                    else None,
                )
                for r in rules
            )
            self._rules[port.security_groups] = resolved
        return resolved

    def port_flows(self, bridge: str, port: WiredPort) -> frozenset[FlowSpec]:
        """The flows ``flows`` gives for ``port`` alone (memoised, so cheap): all but the
        defaults and the remote groups' address sets, which ports share."""
        p, _, _, ofport, lvid = port
        if not self.filtered(p):
            return _unfiltered(bridge, ofport, lvid)
        return _filtered(
            bridge, ofport, lvid, *_addresses(p.mac, p.fixed_ips, p.allowed_address_pairs), self.rules_of(p), p.stateful
        )

    def flows(self, bridge: str, ports: Sequence[WiredPort]) -> set[FlowSpec]:
        out = set(_defaults(bridge))
        # (lvid, the ports' resolved rules) of the filtered ports: the address
        # dimensions depend only on these, not on the ports themselves.
        uses: set[tuple[int, tuple[_Resolved, ...]]] = set()
        resolved = self._rules
        for p, _, _, ofport, lvid in ports:
            if not p.port_security_enabled or p.trusted:  # not self.filtered(p), inlined
                out |= _unfiltered(bridge, ofport, lvid)
                continue
            rules = resolved.get(p.security_groups) or self.rules_of(p)
            out |= _filtered(
                bridge, ofport, lvid, *_addresses(p.mac, p.fixed_ips, p.allowed_address_pairs), rules, p.stateful
            )
            uses.add((lvid, rules))
        # (table, priority, lvid, v6) -> remote group -> conjunction ids using its addresses
        buckets: dict[tuple[int, int, int, bool], dict[str, set[int]]] = {}
        for lvid, rules in uses:
            for rule, cid in rules:
                if cid is not None:
                    assert rule.remote_group_id is not None
                    table = t.RULES_INGRESS if rule.direction == "ingress" else t.RULES_EGRESS
                    key = (table, rule_priority(rule), lvid, rule.ethertype == "IPv6")
                    buckets.setdefault(key, {}).setdefault(rule.remote_group_id, set()).add(cid)
        for (table, prio, lvid, v6), groups in buckets.items():
            bucket = tuple(
                sorted((g, tuple(self.members.get(g, ())), tuple(sorted(cids))) for g, cids in groups.items())
            )
            out |= _ADDRESS_SETS.flows(bridge, table, prio, lvid, v6, bucket)
        return out
