"""neutrino.system.oftext: Flow text parse/format, canonical match, dump and bundle text (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from neutrino.system.oftext import (
    DEFAULT_PRIORITY,
    Flow,
    canonical_bundle_text,
    canonical_match,
    dump_entries,
    format_flow,
    parse_dump,
    parse_flow,
    port_text,
    split_fields,
)
from neutrino.testing.openflow import flow_mod_text, parse_flow_mod

GOLDEN = Path(__file__).parent.parent / "golden"
DUMPS = [
    "ofctl-dump-br-tun.txt",
    "ofctl-dump-br-int.txt",
    "ofctl-dump-br-phys.txt",
    "ofctl-dump-misc.txt",
    "ofctl-dump-misc-names.txt",
]


def _lines(name: str) -> list[str]:
    return [ln for ln in (GOLDEN / name).read_text().splitlines() if ln.strip()]


@pytest.mark.parametrize("name", DUMPS)
def test_golden_dump_round_trips(name: str) -> None:
    lines = _lines(name)
    assert lines, name
    for line in lines:
        flow = parse_flow(line)
        assert format_flow(flow) == line.strip()
        assert canonical_match(flow.match) == flow.match  # OVS output is already canonical
        assert parse_flow_mod(flow_mod_text(flow)) == flow


def test_golden_canonical_pairs() -> None:
    """Flows written in assorted ways canonicalise to exactly what OVS 3.1 printed."""
    rows = [ln.split("\t") for ln in (GOLDEN / "ofctl-canonical.tsv").read_text().splitlines()]
    assert len(rows) > 40
    for written, dumped in rows:
        ours, ovs = parse_flow_mod(written), parse_flow(dumped)
        assert (ours.table, ours.priority, ours.match) == (ovs.table, ovs.priority, ovs.match), written


def test_parse_learned_flow_fields() -> None:
    learned = [f for f in map(parse_flow, _lines("ofctl-dump-br-tun.txt")) if f.cookie == 0x1]
    assert learned == [
        Flow(
            table=20,
            priority=1,
            match="vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02",
            actions="load:0->NXM_OF_VLAN_TCI[],load:0x64->NXM_NX_TUN_ID[],output:2",
            cookie=0x1,
            hard_timeout=300,
        )
    ]


def test_parse_dump_skips_headers_and_reads_stats_lines() -> None:
    text = (
        "OFPST_FLOW reply (OF1.3) (xid=0x2):\n"
        " cookie=0x0, duration=0.104s, table=0, n_packets=3, n_bytes=180, idle_age=1, "
        "priority=1,in_port=1 actions=resubmit(,2)\n"
        " table=30, send_flow_rem priority=5,udp,tp_src=68,tp_dst=67 actions=CONTROLLER:65535\n"
    )
    flows = parse_dump(text)
    assert flows == [
        Flow(0, 1, "in_port=1", "resubmit(,2)"),
        Flow(30, 5, "udp,tp_src=68,tp_dst=67", "CONTROLLER:65535", flags=("send_flow_rem",)),
    ]
    assert (
        format_flow(flows[1]) == "table=30, send_flow_rem priority=5,udp,tp_src=68,tp_dst=67 actions=CONTROLLER:65535"
    )


def test_default_priority_and_empty_match_format() -> None:
    assert format_flow(Flow(0, DEFAULT_PRIORITY, "", "NORMAL")) == "actions=NORMAL"
    assert format_flow(Flow(3, 0, "", "")) == "table=3, priority=0 actions=drop"
    assert parse_flow("actions=NORMAL") == Flow(0, DEFAULT_PRIORITY, "", "NORMAL")
    assert format_flow(Flow(0, DEFAULT_PRIORITY, "ip", "drop")) == "ip actions=drop"


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("in_port=1,dl_vlan=150", "in_port=1,dl_vlan=150"),
        ("dl_vlan=150,in_port=1", "in_port=1,dl_vlan=150"),
        ("dl_type=0x0800,nw_proto=6,tp_dst=80", "tcp,tp_dst=80"),
        ("nw_proto=17,dl_type=0x86dd", "udp6"),
        ("eth_type=0x0800", "ip"),
        ("dl_type=0x806,arp_op=2", "arp,arp_op=2"),
        ("arp_tpa=10.0.0.1,arp", "arp,arp_tpa=10.0.0.1"),
        ("ip,nw_proto=99", "ip,nw_proto=99"),
        ("dl_type=0x88cc", "dl_type=0x88cc"),
        ("tun_id=100", "tun_id=0x64"),
        ("reg6=0", "reg6=0"),
        ("reg6=0x0/0xff", "reg6=0/0xff"),
        ("metadata=0xffffffffffffffff/0xffffffffffffffff", "metadata=0xffffffffffffffff"),
        ("tp_src=0x10/0xfff0,tcp", "tcp,tp_src=0x10/0xfff0"),
        ("udp,tp_dst=0x43", "udp,tp_dst=67"),
        ("ip,nw_src=10.0.0.5/255.255.255.0", "ip,nw_src=10.0.0.0/24"),
        ("ip,nw_src=10.0.0.5/32", "ip,nw_src=10.0.0.5"),
        ("ip,nw_src=10.0.0.0/255.0.255.0", "ip,nw_src=10.0.0.0/255.0.255.0"),
        ("ip,nw_dst=0.0.0.0/0", "ip"),
        ("ipv6,ipv6_src=2001:DB8:0::1/64", "ipv6,ipv6_src=2001:db8::/64"),
        ("dl_src=FA:16:3E:00:00:01/ff:ff:ff:ff:ff:ff", "dl_src=fa:16:3e:00:00:01"),
        ("ct_state=+trk+new", "ct_state=+new+trk"),
        ("tcp,tcp_flags=-ack+syn", "tcp,tcp_flags=+syn-ack"),
        ("ct_zone=0x10", "ct_zone=16"),
        ("vlan_tci=0x0000", "vlan_tci=0x0000/0x1fff"),
        ("vlan_tci=0x1000/0x1000", "vlan_tci=0x1000/0x1000"),
        ("in_port=65534", "in_port=LOCAL"),
        ("in_port=patch-int", 'in_port="patch-int"'),
        ('in_port="tap1"', "in_port=tap1"),
        ("in_port=tap_2", 'in_port="tap_2"'),
        ("tcp,ct_state=-trk,reg5=0x3,in_port=4", "ct_state=-trk,tcp,reg5=0x3,in_port=4"),
        ("", ""),
    ],
)
def test_canonical_match(written: str, canonical: str) -> None:
    assert canonical_match(written) == canonical
    assert canonical_match(canonical) == canonical


def test_canonical_match_keeps_unknown_fields_in_place() -> None:
    assert canonical_match("in_port=1,frobnicate=3,dl_vlan=2") == "in_port=1,frobnicate=3,dl_vlan=2"


def test_priority_in_match_is_an_error() -> None:
    with pytest.raises(ValueError):
        Flow(0, 1, "priority=3,ip", "drop")


@pytest.mark.parametrize("kwargs", [dict(table=255), dict(priority=70000), dict(cookie=-1), dict(flags=("bogus",))])
def test_flow_validation(kwargs: dict) -> None:
    base = dict(table=0, priority=1, match="", actions="drop")
    with pytest.raises(ValueError):
        Flow(**{**base, **kwargs})


def test_split_fields_respects_quotes_and_parens() -> None:
    assert split_fields('a=1,b="x,y",c=learn(table=1,output:2),d') == [
        "a=1",
        'b="x,y"',
        "c=learn(table=1,output:2)",
        "d",
    ]


def test_port_text() -> None:
    assert [port_text(p) for p in ("3", "0xfffe", "LOCAL", "local", "br0", "br-0", '"br0"')] == [
        "3",
        "LOCAL",
        "LOCAL",
        "LOCAL",
        "br0",
        '"br-0"',
        "br0",
    ]


@pytest.mark.parametrize("name", DUMPS)
def test_dump_entries_agree_with_parse_dump(name: str) -> None:
    text = (GOLDEN / name).read_text()
    assert [tuple(e) for e in dump_entries(text)] == [
        (f.cookie, f.table, f.priority, f.match, f.actions) for f in parse_dump(text)
    ]


def test_split_fields_plain_and_nested_agree() -> None:
    for text in ("a=1,b=2,,c", " ip ,nw_src=10.0.0.1 ", "", "ct_state=+new-est,reg5=0x5,tp_dst=0x10/0xfff0"):
        assert split_fields(text) == [f.strip() for f in text.split(",") if f.strip()]
    assert split_fields('a=1,b="x,y",c=(1,2),d') == ["a=1", 'b="x,y"', "c=(1,2)", "d"]


class Spec(NamedTuple):
    """A canonical flow as the agent passes it (``FlowText``): not a ``Flow``."""

    table: int
    priority: int
    match: str
    actions: str


ADD = [Spec(71, 10, "reg5=0x5", "drop"), Spec(0, 0, "", "NORMAL")]
DELETE = [Spec(60, 100, "in_port=5", "resubmit(,71)")]


def test_canonical_bundle_text() -> None:
    text = canonical_bundle_text(0xAB, ADD, DELETE)
    assert text == (
        "delete_strict table=60,priority=100,in_port=5\n"
        "add cookie=0xab,table=0,priority=0,actions=NORMAL\n"
        "add cookie=0xab,table=71,priority=10,reg5=0x5,actions=drop\n"
    )


def test_agent_match_builder_writes_what_canonical_match_writes() -> None:
    """The OVS agent's ``flows.match`` ranks its fields by ``MATCH_FIELD_ORDER``: given every
    field it knows (in reverse order), it writes exactly the canonical text."""
    from neutrino.agents.ovs import flows as fl

    values = {
        "reg5": "0x5",
        "reg6": "0x1",
        "tun_id": "0x64",
        "in_port": "5",
        "dl_vlan": "10",
        "vlan_tci": "0x1000/0x1000",
        "dl_src": "fa:16:3e:00:00:01",
        "dl_dst": "fa:16:3e:00:00:02",
        "ipv6_src": "2001:db8::1",
        "ipv6_dst": "2001:db8::/64",
        "arp_spa": "10.0.0.1",
        "arp_tpa": "10.0.0.2",
        "nw_src": "10.0.0.0/24",
        "nw_dst": "10.0.0.3",
        "arp_sha": "fa:16:3e:00:00:03",
        "arp_tha": "fa:16:3e:00:00:04",
        "icmp_type": "135",
        "icmp_code": "0",
        "nd_target": "fe80::1",
        "tp_src": "68",
        "tp_dst": "67",
    }
    # arp_op is the protocol number slot (nw_proto) unless the match says ``arp``: checked below.
    assert set(values) == set(fl._FIELDS) - {"arp_op"}
    written = fl.match("ip", **dict(reversed(list(values.items()))))
    assert written == canonical_match(written)
    assert written.split(",")[0] == "ip" and written.split(",")[1] == "reg5=0x5"
    assert written.split(",")[-1] == "tp_dst=67"
    arp = fl.match("arp", arp_tha="fa:16:3e:00:00:04", arp_op=2, arp_tpa="10.0.0.2", in_port=3)
    assert arp == canonical_match(arp) == "arp,in_port=3,arp_tpa=10.0.0.2,arp_op=2,arp_tha=fa:16:3e:00:00:04"
