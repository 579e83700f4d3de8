"""Pure builders of the OVS agent's flows, in canonical ``dump-flows`` text.

Every builder returns ``FlowSpec`` values whose ``match``/``actions`` text is
exactly what ``ovs-ofctl -O OpenFlow13 dump-flows`` prints for that flow, so
the executor can compare desired and installed flows as strings:

* match fields come in OVS's print order (``match()`` below): protocol
  keyword (``arp``, ``ip``, ``icmp6`` ...), ``tun_id``, ``in_port``, VLAN,
  ``dl_src``, ``dl_dst``, L3 addresses, ``arp_op``, ``icmp_type``, ``nd_target``,
  ``tp_src``/``tp_dst``;
* OF1.3 action spellings: ``set_field:4097->vlan_vid`` (not ``mod_vlan_vid:1``),
  ``pop_vlan`` (not ``strip_vlan``), ``set_field:0x64->tun_id`` (not
  ``set_tunnel``), ``goto_table:N``;
* a /32 (/128) prefix prints as a plain address, a /0 prefix not at all.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from neutrino.agents.ovs import tables as t
from neutrino.agents.ovs.model import FlowSpec
from neutrino.system.oftext import MATCH_FIELD_ORDER

_PROTOCOLS = ("arp", "rarp", "ip", "ipv6", "icmp", "icmp6", "tcp", "tcp6", "udp", "udp6")
#: The match fields the builders use, ranked in OVS's print order (lib/match.c
#: ``match_format``), which ``oftext.MATCH_FIELD_ORDER`` holds for every field.
_FIELDS = (
    "reg5",
    "reg6",
    "tun_id",
    "in_port",
    "dl_vlan",
    "vlan_tci",
    "dl_src",
    "dl_dst",
    "ipv6_src",
    "ipv6_dst",
    "arp_spa",
    "arp_tpa",
    "nw_src",
    "nw_dst",
    "arp_op",
    "arp_sha",
    "arp_tha",
    "icmp_type",
    "icmp_code",
    "nd_target",
    "tp_src",
    "tp_dst",
)
_RANK = {name: MATCH_FIELD_ORDER.index(name) for name in _FIELDS}

UNICAST_MASK = "00:00:00:00:00:00/01:00:00:00:00:00"
MULTICAST_MASK = "01:00:00:00:00:00/01:00:00:00:00:00"
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
UNTAGGED = "0x0000/0x1fff"
NA_TYPE = 136
#: ICMPv6 types a host sends from the unspecified address :: (RS, DAD NS, MLDv2 report).
ICMP6_FROM_UNSPECIFIED = (133, 135, 143)


def match(proto: str | None = None, **fields: object) -> str:
    """Canonical match text; fields whose value is None are left out."""
    if proto is not None and proto not in _PROTOCOLS:
        raise ValueError(f"unknown protocol keyword {proto!r}")
    unknown = set(fields) - set(_RANK)
    if unknown:
        raise ValueError(f"unsupported match field(s) {sorted(unknown)}")
    parts = [proto] if proto else []
    parts += [f"{k}={v}" for k, v in sorted(fields.items(), key=lambda kv: _RANK[kv[0]]) if v is not None]
    return ",".join(parts)


def prefix(addr: str) -> str | None:
    """An address or CIDR as OVS prints it in a match; None for a /0 (no match)."""
    net = ipaddress.ip_network(addr, strict=False)
    if net.prefixlen == 0:
        return None
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def vlan_vid(vid: int) -> str:
    """``set_field`` action for a VLAN id (OF1.3 values carry OFPVID_PRESENT)."""
    return f"set_field:{t.OFPVID_PRESENT | vid}->vlan_vid"


def tun_id(vni: int) -> str:
    return f"0x{vni:x}"


def mac(value: str) -> str:
    return value.lower()


def _flow(bridge: str, table: int, priority: int, m: str, actions: str) -> FlowSpec:
    return FlowSpec(bridge, table, priority, m, actions)


def _goto(table: int) -> str:
    return f"goto_table:{table}"


# --- br-int ----------------------------------------------------------------------------
def int_defaults(br: str) -> list[FlowSpec]:
    """Dead-VLAN drop, default drop in table 0 (Neutron jumps to 60 here: ports are let in
    one by one, ``in_port_allow``), NORMAL in table 60, canary, spoof-table defaults."""
    return [
        _flow(br, t.INT_LOCAL_SWITCHING, t.PRIO_DEAD_VLAN, match(dl_vlan=t.DEAD_VLAN), "drop"),
        _flow(br, t.INT_LOCAL_SWITCHING, t.PRIO_DEFAULT, "", "drop"),
        _flow(br, t.CANARY, t.PRIO_DEFAULT, "", "drop"),
        _flow(br, t.ARP_SPOOF, t.PRIO_DEFAULT, "", "drop"),
        # Neutron relies on table-miss here; explicit so OF1.0 connections do not
        # turn misses into packet-ins.
        _flow(br, t.MAC_SPOOF, t.PRIO_DEFAULT, "", "drop"),
        _flow(br, t.TRANSIENT, t.PRIO_NORMAL, "", "NORMAL"),
    ]


@functools.lru_cache(maxsize=8192)
def in_port_allow(br: str, ofport: int) -> FlowSpec:
    """Let traffic from ``ofport`` (a wired VIF, patch-tun) into the pipeline (table 0 -> 60).

    Table 0 drops what no flow lets in, so a VIF plugged with its network's local
    VLAN already set (``neutrino.agents.ovs.vif_hint``) sends nothing before the agent
    has installed its firewall and anti-spoofing flows along with this one.
    """
    return _flow(br, t.INT_LOCAL_SWITCHING, t.PRIO_PORT_ALLOW, match(in_port=ofport), _goto(t.TRANSIENT))


def in_port_drop(br: str, ofport: int, table: int = 0) -> FlowSpec:
    """Drop everything from ``ofport`` (dead VIFs, not-yet-wired patch ports)."""
    return _flow(br, table, t.PRIO_PORT_DROP, match(in_port=ofport), "drop")


def int_provider_in(br: str, int_ofport: int, network_type: str, segmentation_id: int | None, lvid: int) -> FlowSpec:
    """Traffic from the physical bridge: segmentation id (or untagged) -> local VLAN."""
    if network_type == "flat":
        return _flow(
            br,
            t.INT_LOCAL_SWITCHING,
            t.PRIO_PROVIDER_IN,
            match(in_port=int_ofport, vlan_tci=UNTAGGED),
            f"push_vlan:0x8100,{vlan_vid(lvid)},{_goto(t.TRANSIENT)}",
        )
    return _flow(
        br,
        t.INT_LOCAL_SWITCHING,
        t.PRIO_PROVIDER_IN,
        match(in_port=int_ofport, dl_vlan=segmentation_id),
        f"{vlan_vid(lvid)},{_goto(t.TRANSIENT)}",
    )


def trunk_from_parent(br: str, parent_ofport: int, vlan: int, peer_ofport: int) -> FlowSpec:
    """A trunk parent's frame tagged ``vlan``: untagged into its subport's ``spi-`` patch, so it
    enters br-int again on the subport's ``spt-`` VIF (its local VLAN, firewall, anti-spoofing)."""
    return _flow(
        br,
        t.INT_LOCAL_SWITCHING,
        t.PRIO_TRUNK_SUBPORT,
        match(in_port=parent_ofport, dl_vlan=vlan),
        f"pop_vlan,output:{peer_ofport}",
    )


def trunk_to_parent(br: str, peer_ofport: int, vlan: int, parent_ofport: int) -> FlowSpec:
    """What br-int sends to a subport (out of its ``spt-`` VIF, in at ``spi-``): tagged ``vlan``,
    out of the trunk parent's VIF."""
    return _flow(
        br,
        t.INT_LOCAL_SWITCHING,
        t.PRIO_TRUNK_SUBPORT,
        match(in_port=peer_ofport),
        f"push_vlan:0x8100,{vlan_vid(vlan)},output:{parent_ofport}",
    )


def trunk_tagged_drop(br: str, parent_ofport: int) -> FlowSpec:
    """A trunk parent's tagged frame of no subport's VLAN goes nowhere."""
    return _flow(
        br,
        t.INT_LOCAL_SWITCHING,
        t.PRIO_TRUNK_TAGGED_DROP,
        match(in_port=parent_ofport, vlan_tci="0x1000/0x1000"),
        "drop",
    )


def lla(mac_address: str) -> str:
    """The EUI-64 IPv6 link-local address of a MAC (fe80::f816:3eff:fe11:2233)."""
    octets = [int(b, 16) for b in mac_address.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui)))


def anti_spoof(br: str, ofport: int, macs: Iterable[str], pairs: Iterable[tuple[str, str]]) -> list[FlowSpec]:
    """ARP/NA, source-MAC and source-IP checks for one port (tables 0, 24, 25).

    Memoised: a pass at 1,000 ports otherwise spends most of its planning time
    re-parsing the same addresses (the flows depend only on the arguments).
    """
    return list(_anti_spoof(br, ofport, tuple(macs), tuple(pairs)))


@functools.lru_cache(maxsize=16384)
def _anti_spoof(
    br: str, ofport: int, macs: tuple[str, ...], pairs: tuple[tuple[str, str], ...]
) -> tuple[FlowSpec, ...]:
    """See ``anti_spoof``.

    ``macs`` are the allowed source MACs, ``pairs`` the allowed (MAC,
    IP-or-CIDR) pairs: fixed IPs with the port MAC and the allowed address
    pairs; the link-local address of every allowed MAC is added here.  ARP
    SPAs and NA targets are checked against the IPs (any allowed MAC);
    IPv4/IPv6 sources against the (MAC, IP) pairs; all other traffic against
    the MACs only.  DHCPv4 DISCOVER (0.0.0.0) and RS/DAD/MLD
    from :: are let through from allowed MACs.
    """
    allowed: set[tuple[str, str | None, int]] = set()  # (mac, prefix, version)
    mac_set = {mac(m) for m in macs}
    for m, ip in pairs:
        mac_set.add(mac(m))
        allowed.add((mac(m), prefix(ip), ipaddress.ip_network(ip, strict=False).version))
    for m in mac_set:
        allowed.add((m, lla(m), 6))

    flows = [
        _flow(br, 0, t.PRIO_ARP_SPOOF_JUMP, match("arp", in_port=ofport), _goto(t.ARP_SPOOF)),
        _flow(br, 0, t.PRIO_ARP_SPOOF_JUMP, match("icmp6", in_port=ofport, icmp_type=NA_TYPE), _goto(t.ARP_SPOOF)),
        _flow(br, 0, t.PRIO_MAC_SPOOF_JUMP, match(in_port=ofport), _goto(t.MAC_SPOOF)),
        _flow(br, t.MAC_SPOOF, t.PRIO_IP_DROP, match("ip", in_port=ofport), "drop"),
        _flow(br, t.MAC_SPOOF, t.PRIO_IP_DROP, match("ipv6", in_port=ofport), "drop"),
    ]
    for m, p, version in allowed:
        if version == 4:
            flows.append(
                _flow(br, t.ARP_SPOOF, t.PRIO_SPOOF_ALLOW, match("arp", in_port=ofport, arp_spa=p), _goto(t.MAC_SPOOF))
            )
            flows.append(
                _flow(
                    br,
                    t.MAC_SPOOF,
                    t.PRIO_IP_ALLOW,
                    match("ip", in_port=ofport, dl_src=m, nw_src=p),
                    _goto(t.TRANSIENT),
                )
            )
        else:
            # NA continues to the MAC/IPv6-source check (Neutron jumps to 60).
            flows.append(
                _flow(
                    br,
                    t.ARP_SPOOF,
                    t.PRIO_SPOOF_ALLOW,
                    match("icmp6", in_port=ofport, icmp_type=NA_TYPE, nd_target=p),
                    _goto(t.MAC_SPOOF),
                )
            )
            flows.append(
                _flow(
                    br,
                    t.MAC_SPOOF,
                    t.PRIO_IP_ALLOW,
                    match("ipv6", in_port=ofport, dl_src=m, ipv6_src=p),
                    _goto(t.TRANSIENT),
                )
            )
    for m in mac_set:
        flows.append(_flow(br, t.MAC_SPOOF, t.PRIO_SPOOF_ALLOW, match(in_port=ofport, dl_src=m), _goto(t.TRANSIENT)))
        flows.append(
            _flow(
                br,
                t.MAC_SPOOF,
                t.PRIO_IP_ALLOW,
                match("udp", in_port=ofport, dl_src=m, nw_src="0.0.0.0", tp_src=68, tp_dst=67),
                _goto(t.TRANSIENT),
            )
        )
        for icmp_type in ICMP6_FROM_UNSPECIFIED:
            flows.append(
                _flow(
                    br,
                    t.MAC_SPOOF,
                    t.PRIO_IP_ALLOW,
                    match("icmp6", in_port=ofport, dl_src=m, ipv6_src="::", icmp_type=icmp_type),
                    _goto(t.TRANSIENT),
                )
            )
    return tuple(flows)


# --- physical bridges ------------------------------------------------------------------
def phys_defaults(br: str) -> list[FlowSpec]:
    return [_flow(br, t.PHYS_LOCAL_SWITCHING, t.PRIO_DEFAULT, "", "NORMAL")]


def phys_provider_out(br: str, phy_ofport: int, network_type: str, segmentation_id: int | None, lvid: int) -> FlowSpec:
    """Traffic from br-int: local VLAN -> segmentation id (vlan) or untagged (flat)."""
    m = match(in_port=phy_ofport, dl_vlan=lvid)
    if network_type == "flat":
        return _flow(br, t.PHYS_LOCAL_SWITCHING, t.PRIO_PROVIDER_OUT, m, "pop_vlan,NORMAL")
    assert segmentation_id is not None
    return _flow(br, t.PHYS_LOCAL_SWITCHING, t.PRIO_PROVIDER_OUT, m, f"{vlan_vid(segmentation_id)},NORMAL")


# --- br-tun ----------------------------------------------------------------------------
def tun_defaults(br: str, patch_int_ofport: int | None, arp_responder: bool) -> list[FlowSpec]:
    flows = [
        _flow(br, t.TUN_LOCAL_SWITCHING, t.PRIO_DEFAULT, "", "drop"),
        _flow(br, t.PATCH_LV_TO_TUN, t.PRIO_DEFAULT, match(dl_dst=UNICAST_MASK), _goto(t.UCAST_TO_TUN)),
        _flow(br, t.PATCH_LV_TO_TUN, t.PRIO_DEFAULT, match(dl_dst=MULTICAST_MASK), _goto(t.FLOOD_TO_TUN)),
        _flow(br, t.UCAST_TO_TUN, t.PRIO_DEFAULT, "", _goto(t.FLOOD_TO_TUN)),
        _flow(br, t.FLOOD_TO_TUN, t.PRIO_DEFAULT, "", "drop"),
    ]
    flows += [_flow(br, table, t.PRIO_DEFAULT, "", "drop") for table in t.TUN_TABLE.values()]
    if arp_responder:
        flows.append(
            _flow(br, t.PATCH_LV_TO_TUN, t.PRIO_ARP_BCAST, match("arp", dl_dst=BROADCAST_MAC), _goto(t.ARP_RESPONDER))
        )
        flows.append(_flow(br, t.ARP_RESPONDER, t.PRIO_DEFAULT, "", _goto(t.FLOOD_TO_TUN)))
    if patch_int_ofport is not None:
        flows.append(
            _flow(
                br, t.TUN_LOCAL_SWITCHING, t.PRIO_TUN_IN_PORT, match(in_port=patch_int_ofport), _goto(t.PATCH_LV_TO_TUN)
            )
        )
        flows.append(_flow(br, t.LEARN_FROM_TUN, t.PRIO_LEARN, "", f"{learn_action()},output:{patch_int_ofport}"))
    return flows


def learn_action() -> str:
    """Learn "remote MAC lives behind this tunnel port, on this VNI" into table 20."""
    return (
        f"learn(table={t.UCAST_TO_TUN},hard_timeout={t.LEARN_HARD_TIMEOUT},"
        f"priority={t.PRIO_LEARN},cookie=0x{t.LEARNED_FLOW_COOKIE:x},"
        "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
        "load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
        "output:OXM_OF_IN_PORT[])"
    )


def tun_port_in(br: str, ofport: int, tunnel_type: str) -> FlowSpec:
    return _flow(br, t.TUN_LOCAL_SWITCHING, t.PRIO_TUN_IN_PORT, match(in_port=ofport), _goto(t.TUN_TABLE[tunnel_type]))


def tun_to_lv(br: str, tunnel_type: str, vni: int, lvid: int) -> FlowSpec:
    return _flow(
        br,
        t.TUN_TABLE[tunnel_type],
        t.PRIO_TUN_TO_LV,
        match(tun_id=tun_id(vni)),
        f"push_vlan:0x8100,{vlan_vid(lvid)},{_goto(t.LEARN_FROM_TUN)}",
    )


def _to_tunnel(vni: int, ofports: Iterable[int]) -> str:
    outs = ",".join(f"output:{p}" for p in sorted(set(ofports)))
    return f"pop_vlan,set_field:{tun_id(vni)}->tun_id,{outs}"


def flood(br: str, lvid: int, vni: int, ofports: Iterable[int]) -> FlowSpec:
    return _flow(br, t.FLOOD_TO_TUN, t.PRIO_FLOOD, match(dl_vlan=lvid), _to_tunnel(vni, ofports))


def l2pop_unicast(br: str, lvid: int, vni: int, mac_address: str, ofport: int) -> FlowSpec:
    return _flow(
        br, t.UCAST_TO_TUN, t.PRIO_L2POP_UCAST, match(dl_vlan=lvid, dl_dst=mac(mac_address)), _to_tunnel(vni, [ofport])
    )


def arp_reply(br: str, lvid: int, mac_address: str, ip: str) -> FlowSpec:
    """Answer an ARP request for ``ip`` with ``mac_address`` and send it back in."""
    m = mac(mac_address)
    actions = (
        "set_field:2->arp_op,"
        "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
        "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
        f"set_field:{m}->arp_sha,set_field:{ip}->arp_spa,"
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
        f"set_field:{m}->eth_src,IN_PORT"
    )
    return _flow(br, t.ARP_RESPONDER, t.PRIO_ARP_REPLY, match("arp", dl_vlan=lvid, arp_tpa=ip), actions)


def dump(flows: Iterable[FlowSpec]) -> str:
    """Flows as dump-flows lines, sorted by table, then priority (high first), then text."""
    ordered = sorted(flows, key=lambda f: (f.table, -f.priority, f.match, f.actions))
    return "".join(f.text + "\n" for f in ordered)
