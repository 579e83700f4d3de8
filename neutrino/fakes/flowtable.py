"""A stateful fake of one host's Open vSwitch: OVSDB bridges/ports plus an OpenFlow interpreter.

``FakeFlowTable`` holds bridges and ports (as OVSDB would), applies the OVS
agent planner's ``Plan`` (ops, then flows) and answers behavioural questions:
``outputs(bridge, packet, in_port=...)`` pushes a packet in at a port and
returns every ``(bridge, port, packet')`` where it leaves the host, following
patch ports across bridges.  Tests then say "a broadcast from A reaches B and
not C" instead of comparing flow lists.

It interprets only what the planner emits (and raises ``FakeFlowError`` on
anything else, so the fake never silently agrees with a bad flow):

* match: ``arp ip ipv6 icmp icmp6 tcp tcp6 udp udp6``, ``in_port``,
  ``dl_vlan``, ``vlan_tci`` (value/mask), ``dl_src``/``dl_dst`` (with masks),
  ``arp_spa arp_tpa arp_op arp_sha arp_tha``, ``nw_src nw_dst ipv6_src
  ipv6_dst nd_target`` (CIDR), ``icmp_type icmp_code tp_src tp_dst``,
  ``tun_id``;
* actions: ``drop``, ``output:N``, ``IN_PORT``, ``NORMAL``, ``goto_table:N``,
  ``resubmit(,N)``, ``push_vlan``, ``pop_vlan``/``strip_vlan``,
  ``set_field:V->{vlan_vid,tun_id,arp_op,arp_sha,arp_spa,arp_tha,arp_tpa,eth_src,eth_dst}``,
  ``mod_vlan_vid``, ``set_tunnel``, ``move:`` between ARP/Ethernet fields,
  ``load:`` into VLAN TCI / tunnel id, and the br-tun ``learn(...)`` shape.

Simplifications: ``NORMAL`` floods (no MAC learning) within the packet's VLAN
(access ports by tag, trunks by ``trunks``; patch and tunnel ports are
trunks for every VLAN); a table miss drops; two flows of the same priority
that both match with different actions raise (OVS would pick one at random).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from neutrino.agents.ovs.model import (
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
    RemovePort,
    SetPortOtherConfig,
    SetPortTag,
)
from neutrino.system.oftext import SHORTHANDS, split_fields

__all__ = [
    "FakeFlowError",
    "FakeFlowTable",
    "Output",
    "Packet",
    "arp_request",
    "dhcp_discover",
    "ethernet",
    "icmp6",
    "ipv4",
    "ipv6",
]

ETH_IP = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
BROADCAST = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
_MAX_HOPS = 64


class FakeFlowError(Exception):
    """A flow the fake cannot interpret, an ambiguous lookup, or a forwarding loop."""


# --- packets ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Packet:
    """The header fields the pipeline looks at.  ``vlan`` None = untagged."""

    eth_src: str
    eth_dst: str
    eth_type: int = ETH_IP
    vlan: int | None = None
    src: str | None = None  # IPv4 / IPv6 source
    dst: str | None = None
    proto: int | None = None  # IP protocol
    icmp_type: int | None = None
    icmp_code: int | None = None
    nd_target: str | None = None
    tp_src: int | None = None
    tp_dst: int | None = None
    arp_op: int | None = None
    arp_spa: str | None = None
    arp_tpa: str | None = None
    arp_sha: str | None = None
    arp_tha: str | None = None
    tun_id: int | None = None


def ethernet(src: str, dst: str, eth_type: int = 0x88B5) -> Packet:
    return Packet(src, dst, eth_type)


def arp_request(src_mac: str, spa: str, tpa: str) -> Packet:
    return Packet(src_mac, BROADCAST, ETH_ARP, arp_op=1, arp_spa=spa, arp_tpa=tpa, arp_sha=src_mac, arp_tha=ZERO_MAC)


def ipv4(
    src_mac: str, dst_mac: str, src: str, dst: str, proto: int = 1, tp_src: int | None = None, tp_dst: int | None = None
) -> Packet:
    return Packet(
        src_mac,
        dst_mac,
        ETH_IP,
        src=src,
        dst=dst,
        proto=proto,
        tp_src=tp_src,
        tp_dst=tp_dst,
        icmp_type=8 if proto == 1 else None,
        icmp_code=0 if proto == 1 else None,
    )


def dhcp_discover(src_mac: str) -> Packet:
    return ipv4(src_mac, BROADCAST, "0.0.0.0", "255.255.255.255", 17, 68, 67)


def ipv6(
    src_mac: str,
    dst_mac: str,
    src: str,
    dst: str,
    proto: int = 17,
    tp_src: int | None = 1000,
    tp_dst: int | None = 2000,
) -> Packet:
    return Packet(src_mac, dst_mac, ETH_IPV6, src=src, dst=dst, proto=proto, tp_src=tp_src, tp_dst=tp_dst)


def icmp6(src_mac: str, dst_mac: str, src: str, dst: str, icmp_type: int, nd_target: str | None = None) -> Packet:
    return Packet(
        src_mac, dst_mac, ETH_IPV6, src=src, dst=dst, proto=58, icmp_type=icmp_type, icmp_code=0, nd_target=nd_target
    )


@dataclass(frozen=True)
class Output:
    """A packet leaving the host at ``port`` of ``bridge``."""

    bridge: str
    port: str
    packet: Packet


# --- OVSDB side ------------------------------------------------------------------------
@dataclass
class _Port:
    name: str
    ofport: int
    type: str = ""
    iface_id: str | None = None
    attached_mac: str | None = None
    tag: int | None = None
    vlan_mode: str | None = None
    trunks: tuple[int, ...] = ()
    other_config: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class _Bridge:
    name: str
    datapath_type: str = "system"
    fail_mode: str | None = None
    protocols: tuple[str, ...] = ()
    ports: dict[str, _Port] = field(default_factory=dict)
    flows: list[_Flow] = field(default_factory=list)
    learned: list[_Flow] = field(default_factory=list)

    def by_ofport(self, ofport: int) -> _Port | None:
        for p in self.ports.values():
            if p.ofport == ofport:
                return p
        return None


# --- flow parsing ----------------------------------------------------------------------
# The protocol keywords the fake interprets (of OVS's ``SHORTHANDS``) -> their nw_proto.
_V4_PROTOS = {k: SHORTHANDS[k][1] for k in ("ip", "icmp", "tcp", "udp")}
_V6_PROTOS = {k: SHORTHANDS[k][1] for k in ("ipv6", "icmp6", "tcp6", "udp6")}
_NXM = {  # move:/load: field names -> Packet attributes
    "NXM_OF_ETH_SRC": "eth_src",
    "NXM_OF_ETH_DST": "eth_dst",
    "NXM_NX_ARP_SHA": "arp_sha",
    "NXM_NX_ARP_THA": "arp_tha",
    "NXM_OF_ARP_SPA": "arp_spa",
    "NXM_OF_ARP_TPA": "arp_tpa",
    "NXM_NX_TUN_ID": "tun_id",
}
_SET_FIELDS = {
    "tun_id": "tun_id",
    "arp_op": "arp_op",
    "arp_sha": "arp_sha",
    "arp_spa": "arp_spa",
    "arp_tha": "arp_tha",
    "arp_tpa": "arp_tpa",
    "eth_src": "eth_src",
    "eth_dst": "eth_dst",
}

Pred = Callable[[Packet, int], bool]


@dataclass
class _Flow:
    spec: FlowSpec
    preds: list[Pred]
    actions: list[str]


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur:
        parts.append(cur)
    return parts


def _int(text: str) -> int:
    return int(text, 0)


def _mac_pred(attr: str, value: str) -> Pred:
    if "/" in value:
        v, m = (int(x.replace(":", ""), 16) for x in value.split("/"))
    else:
        v, m = int(value.replace(":", ""), 16), (1 << 48) - 1

    def pred(p: Packet, _: int) -> bool:
        return (int(str(getattr(p, attr)).replace(":", ""), 16) & m) == (v & m)

    return pred


def _net_pred(attr: str, value: str) -> Pred:
    net = ipaddress.ip_network(value, strict=False)

    def pred(p: Packet, _: int) -> bool:
        addr = getattr(p, attr)
        if addr is None:
            return False
        ip = ipaddress.ip_address(addr)
        return ip.version == net.version and ip in net

    return pred


def _eq_pred(attr: str, value: object) -> Pred:
    return lambda p, _: bool(getattr(p, attr) == value)


def _in_port_pred(port: int) -> Pred:
    return lambda _, in_port: in_port == port


def _vlan_tci_pred(value: str) -> Pred:
    v, _, m = value.partition("/")
    val, mask = _int(v), _int(m) if m else 0xFFFF

    def pred(p: Packet, _: int) -> bool:
        tci = 0 if p.vlan is None else (0x1000 | p.vlan)
        return (tci & mask) == (val & mask)

    return pred


def _parse_match(text: str) -> list[Pred]:
    preds: list[Pred] = []
    family: str | None = None
    proto: str | None = None
    fields: dict[str, str] = {}
    for item in split_fields(text):
        if "=" not in item:
            if proto is not None:
                raise FakeFlowError(f"two protocol keywords in {text!r}")
            proto = item
            if item == "arp":
                family = "arp"
                preds.append(_eq_pred("eth_type", ETH_ARP))
            elif item in _V4_PROTOS or item in _V6_PROTOS:
                v4 = item in _V4_PROTOS
                family = "ip" if v4 else "ipv6"
                preds.append(_eq_pred("eth_type", ETH_IP if v4 else ETH_IPV6))
                number = (_V4_PROTOS if v4 else _V6_PROTOS)[item]
                if number is not None:
                    preds.append(_eq_pred("proto", number))
            else:
                raise FakeFlowError(f"unsupported protocol keyword {item!r}")
            continue
        key, value = item.split("=", 1)
        fields[key] = value
    needs = {
        "arp_spa": "arp",
        "arp_tpa": "arp",
        "arp_op": "arp",
        "arp_sha": "arp",
        "arp_tha": "arp",
        "nw_src": "ip",
        "nw_dst": "ip",
        "ipv6_src": "ipv6",
        "ipv6_dst": "ipv6",
        "nd_target": "ipv6",
    }
    for key, value in fields.items():
        if key in needs and needs[key] != family:
            raise FakeFlowError(f"{key} needs {needs[key]} in {text!r}")
        if key in ("icmp_type", "icmp_code") and proto not in ("icmp", "icmp6"):
            raise FakeFlowError(f"{key} needs icmp/icmp6 in {text!r}")
        if key in ("tp_src", "tp_dst") and proto not in ("tcp", "udp", "tcp6", "udp6"):
            raise FakeFlowError(f"{key} needs tcp/udp in {text!r}")
        if key == "nd_target" and fields.get("icmp_type") not in ("135", "136"):
            raise FakeFlowError(f"nd_target needs icmp_type 135/136 in {text!r}")
        if key == "in_port":
            preds.append(_in_port_pred(_int(value)))
        elif key == "dl_vlan":
            preds.append(_eq_pred("vlan", _int(value)))
        elif key == "vlan_tci":
            preds.append(_vlan_tci_pred(value))
        elif key in ("dl_src", "dl_dst"):
            preds.append(_mac_pred("eth_src" if key == "dl_src" else "eth_dst", value))
        elif key in ("arp_sha", "arp_tha"):
            preds.append(_mac_pred(key, value))
        elif key in ("arp_spa", "arp_tpa", "nd_target"):
            preds.append(_net_pred(key, value))
        elif key in ("nw_src", "ipv6_src"):
            preds.append(_net_pred("src", value))
        elif key in ("nw_dst", "ipv6_dst"):
            preds.append(_net_pred("dst", value))
        elif key in ("icmp_type", "icmp_code", "tp_src", "tp_dst", "arp_op"):
            preds.append(_eq_pred(key, _int(value)))
        elif key == "tun_id":
            preds.append(_eq_pred("tun_id", _int(value)))
        else:
            raise FakeFlowError(f"unsupported match field {key!r} in {text!r}")
    return preds


_SIMPLE_ACTIONS = ("drop", "NORMAL", "IN_PORT", "pop_vlan", "strip_vlan")
_PREFIXED_ACTIONS = (
    "output:",
    "goto_table:",
    "resubmit(,",
    "push_vlan:",
    "set_field:",
    "mod_vlan_vid:",
    "set_tunnel:",
    "move:",
    "load:",
    "learn(",
)


def _parse_flow(spec: FlowSpec) -> _Flow:
    actions = _split_top(spec.actions)
    for i, a in enumerate(actions):
        if a in _SIMPLE_ACTIONS:
            if a == "drop" and len(actions) > 1:
                raise FakeFlowError(f"drop must be the only action: {spec.text}")
            continue
        if not a.startswith(_PREFIXED_ACTIONS):
            raise FakeFlowError(f"unsupported action {a!r} in {spec.text}")
        if a.startswith("goto_table:"):
            if i != len(actions) - 1:
                raise FakeFlowError(f"goto_table must come last: {spec.text}")
            if _int(a.split(":")[1]) <= spec.table:
                raise FakeFlowError(f"goto_table must go forward: {spec.text}")
    return _Flow(spec, _parse_match(spec.match), actions)


# --- the fake --------------------------------------------------------------------------
class FakeFlowTable:
    """One host's OVS: bridges, ports, installed and learned flows."""

    def __init__(self) -> None:
        self.bridges: dict[str, _Bridge] = {}
        self.trace: list[str] = []  # flows hit by the last outputs() call

    # OVSDB -------------------------------------------------------------------------
    def add_bridge(
        self, name: str, datapath_type: str = "system", fail_mode: str | None = None, protocols: tuple[str, ...] = ()
    ) -> None:
        if name not in self.bridges:
            self.bridges[name] = _Bridge(name, datapath_type, fail_mode, protocols)

    def add_port(
        self,
        bridge: str,
        name: str,
        *,
        type: str = "",
        iface_id: str | None = None,
        attached_mac: str | None = None,
        tag: int | None = None,
        vlan_mode: str | None = None,
        trunks: tuple[int, ...] = (),
        other_config: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        ofport: int | None = None,
    ) -> int:
        """Add a port (``add-port``); returns its ofport (next free one unless given)."""
        br = self.bridges[bridge]
        if self._find_port(name) is not None:
            raise FakeFlowError(f"port {name} already exists")
        if ofport is None:
            used = {p.ofport for p in br.ports.values()}
            ofport = next(i for i in range(1, 65280) if i not in used)
        br.ports[name] = _Port(
            name,
            ofport,
            type,
            iface_id,
            attached_mac,
            tag,
            vlan_mode,
            trunks,
            dict(other_config or {}),
            dict(options or {}),
        )
        return ofport

    def del_port(self, name: str) -> None:
        for br in self.bridges.values():
            br.ports.pop(name, None)

    def port(self, name: str) -> _Port:
        found = self._find_port(name)
        if found is None:
            raise KeyError(name)
        return found[1]

    def _find_port(self, name: str) -> tuple[_Bridge, _Port] | None:
        for br in self.bridges.values():
            if name in br.ports:
                return br, br.ports[name]
        return None

    def apply(self, plan: Plan) -> None:
        """Apply a plan like the executor: OVSDB ops, then replace each bridge's flows."""
        self.apply_ops(plan.ovsdb_ops)
        for bridge, specs in plan.flows.items():
            self.set_flows(bridge, specs)

    def apply_ops(self, ops: Iterable[OvsdbOp]) -> None:
        for op in ops:
            if isinstance(op, EnsureBridge):
                self.add_bridge(op.name)
                br = self.bridges[op.name]
                br.datapath_type, br.fail_mode = op.datapath_type, op.fail_mode
                br.protocols = tuple(dict.fromkeys(br.protocols + op.protocols))
            elif isinstance(op, EnsurePatch):
                self._ensure_port(op.bridge, op.name, "patch").options["peer"] = op.peer
            elif isinstance(op, EnsureTrunkPatch):
                port = self._ensure_port(op.bridge, op.name, "patch")
                port.options["peer"] = op.peer
                port.tag, port.vlan_mode, port.trunks = op.tag, op.vlan_mode, tuple(op.trunks)
                if op.external_ids:
                    port.iface_id = op.external_ids.get("iface-id")
                    port.attached_mac = op.external_ids.get("attached-mac")
            elif isinstance(op, EnsureTunnelPort):
                port = self._ensure_port(op.bridge, op.name, op.type)
                port.options.update(
                    remote_ip=op.remote_ip, local_ip=op.local_ip, in_key="flow", out_key="flow", df_default="true"
                )
            elif isinstance(op, RemovePort):
                self.bridges[op.bridge].ports.pop(op.name, None)
            elif isinstance(op, SetPortTag):
                port = self.port(op.name)
                port.tag, port.vlan_mode, port.trunks = op.tag, op.vlan_mode, op.trunks
            elif isinstance(op, SetPortOtherConfig):
                self.port(op.name).other_config.update(op.other_config)
            else:  # pragma: no cover
                raise FakeFlowError(f"unknown op {op!r}")

    def _ensure_port(self, bridge: str, name: str, type: str) -> _Port:
        if name not in self.bridges[bridge].ports:
            self.add_port(bridge, name, type=type)
        port = self.bridges[bridge].ports[name]
        port.type = type
        return port

    def set_flows(self, bridge: str, specs: Iterable[FlowSpec]) -> None:
        """Replace the bridge's flows (learned flows stay, as they have their own cookie)."""
        parsed: dict[tuple[int, int, str], _Flow] = {}
        for spec in specs:
            if spec.bridge != bridge:
                raise FakeFlowError(f"flow for {spec.bridge} given to {bridge}: {spec.text}")
            key = (spec.table, spec.priority, spec.match)
            if key in parsed:
                raise FakeFlowError(f"two flows with one match: {spec.text} / {parsed[key].spec.text}")
            parsed[key] = _parse_flow(spec)
        self.bridges[bridge].flows = list(parsed.values())

    def flows(self, bridge: str) -> frozenset[FlowSpec]:
        return frozenset(f.spec for f in self.bridges[bridge].flows)

    def learned_flows(self, bridge: str) -> list[FlowSpec]:
        return [f.spec for f in self.bridges[bridge].learned]

    def observed(self) -> ObservedState:
        """What an OVSDB/dump-flows observer would report now."""
        bridges = {
            name: ObservedBridge(
                name,
                br.datapath_type,
                br.fail_mode,
                br.protocols,
                tuple(
                    ObservedPort(
                        p.name,
                        p.ofport,
                        p.iface_id,
                        p.attached_mac,
                        p.tag,
                        dict(p.other_config),
                        p.type,
                        dict(p.options),
                        p.vlan_mode,
                        p.trunks,
                    )
                    for p in sorted(br.ports.values(), key=lambda p: p.ofport)
                ),
            )
            for name, br in self.bridges.items()
        }
        flows = {name: self.flows(name) for name in self.bridges}
        return ObservedState(bridges, flows)

    # OpenFlow ----------------------------------------------------------------------
    def outputs(self, bridge: str, packet: Packet, *, in_port: str) -> list[Output]:
        """Every place ``packet``, entering at port ``in_port`` of ``bridge``, leaves the host."""
        self.trace = []
        br = self.bridges[bridge]
        out: list[Output] = []
        self._ingress(br, br.ports[in_port].ofport, packet, out, 0)
        return out

    def reaches(self, bridge: str, packet: Packet, *, in_port: str) -> set[str]:
        """Names of the ports where the packet leaves the host."""
        return {o.port for o in self.outputs(bridge, packet, in_port=in_port)}

    def _ingress(self, br: _Bridge, in_port: int, pkt: Packet, out: list[Output], hops: int) -> None:
        if hops > _MAX_HOPS:
            raise FakeFlowError("forwarding loop")
        self._table(br, 0, in_port, pkt, out, hops)

    def _lookup(self, br: _Bridge, table: int, in_port: int, pkt: Packet) -> _Flow | None:
        hits = [f for f in br.flows + br.learned if f.spec.table == table and all(p(pkt, in_port) for p in f.preds)]
        if not hits:
            return None
        top = max(f.spec.priority for f in hits)
        best = [f for f in hits if f.spec.priority == top]
        if len({f.spec.actions for f in best}) > 1:
            raise FakeFlowError("ambiguous match: " + " | ".join(f.spec.text for f in best))
        return best[0]

    def _table(self, br: _Bridge, table: int, in_port: int, pkt: Packet, out: list[Output], hops: int) -> Packet:
        flow = self._lookup(br, table, in_port, pkt)
        if flow is None:
            self.trace.append(f"{br.name} table={table} miss -> drop")
            return pkt
        self.trace.append(f"{br.name} {flow.spec.text}")
        return self._run(br, flow, in_port, pkt, out, hops)

    def _run(self, br: _Bridge, flow: _Flow, in_port: int, pkt: Packet, out: list[Output], hops: int) -> Packet:
        for action in flow.actions:
            if action == "drop":
                return pkt
            if action == "NORMAL":
                self._normal(br, in_port, pkt, out, hops)
            elif action == "IN_PORT":
                self._emit(br, in_port, pkt, out, hops)
            elif action.startswith("output:"):
                port = _int(action.split(":", 1)[1])
                if port != in_port:  # OpenFlow never outputs to in_port implicitly
                    self._emit(br, port, pkt, out, hops)
            elif action.startswith("goto_table:"):
                return self._table(br, _int(action.split(":", 1)[1]), in_port, pkt, out, hops)
            elif action.startswith("resubmit(,"):
                pkt = self._table(br, _int(action[len("resubmit(,") : -1]), in_port, pkt, out, hops)
            elif action.startswith("learn("):
                self._learn(br, action, in_port, pkt)
            else:
                pkt = self._modify(action, pkt, flow)
        return pkt

    def _modify(self, action: str, pkt: Packet, flow: _Flow) -> Packet:
        kind, _, arg = action.partition(":")
        if kind in ("pop_vlan", "strip_vlan"):
            if pkt.vlan is None:
                raise FakeFlowError(f"pop_vlan on an untagged packet: {flow.spec.text}")
            return replace(pkt, vlan=None)
        if kind == "push_vlan":
            if pkt.vlan is not None:
                raise FakeFlowError(f"double tagging is not modelled: {flow.spec.text}")
            return replace(pkt, vlan=0)
        if kind == "mod_vlan_vid":
            return replace(pkt, vlan=_int(arg))
        if kind == "set_tunnel":
            return replace(pkt, tun_id=_int(arg))
        if kind == "set_field":
            value, _, name = arg.partition("->")
            if name == "vlan_vid":
                if pkt.vlan is None:
                    raise FakeFlowError(f"set vlan_vid on an untagged packet: {flow.spec.text}")
                return replace(pkt, vlan=_int(value) & 0xFFF)
            if name not in _SET_FIELDS:
                raise FakeFlowError(f"unsupported set_field {name!r}")
            attr = _SET_FIELDS[name]
            typed: Any = _int(value) if attr in ("tun_id", "arp_op") else value
            return replace(pkt, **{attr: typed})
        if kind == "move":
            src, _, dst = arg.partition("->")
            return replace(pkt, **{_nxm(dst): getattr(pkt, _nxm(src))})
        if kind == "load":
            value, _, dst = arg.partition("->")
            if dst == "NXM_OF_VLAN_TCI[]" and _int(value) == 0:
                return replace(pkt, vlan=None)
            if dst == "NXM_NX_TUN_ID[]":
                return replace(pkt, tun_id=_int(value))
            raise FakeFlowError(f"unsupported load {action!r}")
        raise FakeFlowError(f"unsupported action {action!r}")

    def _learn(self, br: _Bridge, action: str, in_port: int, pkt: Packet) -> None:
        """The br-tun learn(): remember where a remote MAC lives (may be approximate)."""
        table, priority = 0, 0
        match: list[str] = []
        acts: list[str] = []
        for item in _split_top(action[len("learn(") : -1]):
            if item.startswith("table="):
                table = _int(item.split("=")[1])
            elif item.startswith("priority="):
                priority = _int(item.split("=")[1])
            elif item.startswith(("hard_timeout=", "idle_timeout=", "cookie=")):
                continue
            elif item == "NXM_OF_VLAN_TCI[0..11]":
                match.append(f"vlan_tci=0x{(pkt.vlan or 0):04x}/0x0fff")
            elif item == "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[]":
                match.append(f"dl_dst={pkt.eth_src}")
            elif item == "load:0->NXM_OF_VLAN_TCI[]":
                acts.append(item)
            elif item == "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[]":
                acts.append(f"load:0x{(pkt.tun_id or 0):x}->NXM_NX_TUN_ID[]")
            elif item in ("output:OXM_OF_IN_PORT[]", "output:NXM_OF_IN_PORT[]"):
                acts.append(f"output:{in_port}")
            else:
                raise FakeFlowError(f"unsupported learn spec {item!r}")
        spec = FlowSpec(br.name, table, priority, ",".join(match), ",".join(acts))
        key = (table, priority, spec.match)
        br.learned = [f for f in br.learned if (f.spec.table, f.spec.priority, f.spec.match) != key]
        br.learned.append(_parse_flow(spec))

    def _emit(self, br: _Bridge, ofport: int, pkt: Packet, out: list[Output], hops: int) -> None:
        port = br.by_ofport(ofport)
        if port is None:
            return
        if port.type != "patch":
            out.append(Output(br.name, port.name, pkt))
            return
        found = self._find_port(port.options.get("peer", ""))
        if found is None:
            return  # peer missing: the patch port is down
        peer_br, peer = found
        if peer.type != "patch" or peer.options.get("peer") != port.name or peer_br.datapath_type != br.datapath_type:
            return
        self._ingress(peer_br, peer.ofport, pkt, out, hops + 1)

    def _normal(self, br: _Bridge, in_port: int, pkt: Packet, out: list[Output], hops: int) -> None:
        inp = br.by_ofport(in_port)
        if inp is None:
            return
        vlan = _input_vlan(inp, pkt)
        if vlan is None:
            return
        for port in sorted(br.ports.values(), key=lambda p: p.ofport):
            if port is inp:
                continue
            egress = _egress(port, vlan, pkt)
            if egress is not None:
                self._emit(br, port.ofport, egress, out, hops)


def _nxm(name: str) -> str:
    base = name.removesuffix("[]")
    if base not in _NXM:
        raise FakeFlowError(f"unsupported field {name!r}")
    return _NXM[base]


def _is_access(port: _Port) -> bool:
    if port.vlan_mode not in (None, "access", "trunk"):
        raise FakeFlowError(f"vlan_mode {port.vlan_mode} is not modelled")
    return port.tag is not None and port.vlan_mode in (None, "access")


def _input_vlan(port: _Port, pkt: Packet) -> int | None:
    """The VLAN NORMAL switches a packet in (None: OVS drops it at the port)."""
    if _is_access(port):
        return port.tag if not pkt.vlan else None
    vlan = pkt.vlan or 0
    return vlan if not port.trunks or vlan in port.trunks else None


def _egress(port: _Port, vlan: int, pkt: Packet) -> Packet | None:
    if _is_access(port):
        return replace(pkt, vlan=None) if port.tag == vlan else None
    if port.trunks and vlan not in port.trunks:
        return None
    return replace(pkt, vlan=vlan or None)
