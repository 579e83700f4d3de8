"""neutrino.system.openflow: Flow text parse/format, canonical match, bundle text (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from neutrino.system.openflow import (
    DEFAULT_PRIORITY, Flow, OpenFlow, bundle_text, canonical_bundle_text, canonical_match, delete_strict_text,
    diff, dump_entries, flow_mod_text, format_flow, parse_dump, parse_flow, parse_flow_mod, port_text,
    sort_flows, split_fields,
)
from neutrino.system.exec import Completed
from neutrino.system.ovsdb import Ovs

GOLDEN = Path(__file__).parent.parent / "golden"
DUMPS = ["ofctl-dump-br-tun.txt", "ofctl-dump-br-int.txt", "ofctl-dump-br-phys.txt",
         "ofctl-dump-misc.txt", "ofctl-dump-misc-names.txt"]


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
        assert (ours.table, ours.priority, ours.match) == (ovs.table, ovs.priority, ovs.match), \
            written


def test_parse_learned_flow_fields() -> None:
    learned = [f for f in map(parse_flow, _lines("ofctl-dump-br-tun.txt")) if f.cookie == 0x1]
    assert learned == [Flow(table=20, priority=1,
                            match="vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02",
                            actions="load:0->NXM_OF_VLAN_TCI[],load:0x64->NXM_NX_TUN_ID[],output:2",
                            cookie=0x1, hard_timeout=300)]


def test_parse_dump_skips_headers_and_reads_stats_lines() -> None:
    text = ("OFPST_FLOW reply (OF1.3) (xid=0x2):\n"
            " cookie=0x0, duration=0.104s, table=0, n_packets=3, n_bytes=180, idle_age=1, "
            "priority=1,in_port=1 actions=resubmit(,2)\n"
            " table=30, send_flow_rem priority=5,udp,tp_src=68,tp_dst=67 actions=CONTROLLER:65535\n")
    flows = parse_dump(text)
    assert flows == [Flow(0, 1, "in_port=1", "resubmit(,2)"),
                     Flow(30, 5, "udp,tp_src=68,tp_dst=67", "CONTROLLER:65535",
                          flags=("send_flow_rem",))]
    assert format_flow(flows[1]) == \
        "table=30, send_flow_rem priority=5,udp,tp_src=68,tp_dst=67 actions=CONTROLLER:65535"


def test_default_priority_and_empty_match_format() -> None:
    assert format_flow(Flow(0, DEFAULT_PRIORITY, "", "NORMAL")) == "actions=NORMAL"
    assert format_flow(Flow(3, 0, "", "")) == "table=3, priority=0 actions=drop"
    assert parse_flow("actions=NORMAL") == Flow(0, DEFAULT_PRIORITY, "", "NORMAL")
    assert format_flow(Flow(0, DEFAULT_PRIORITY, "ip", "drop")) == "ip actions=drop"


@pytest.mark.parametrize("written, canonical", [
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
])
def test_canonical_match(written: str, canonical: str) -> None:
    assert canonical_match(written) == canonical
    assert canonical_match(canonical) == canonical


def test_canonical_match_keeps_unknown_fields_in_place() -> None:
    assert canonical_match("in_port=1,frobnicate=3,dl_vlan=2") == "in_port=1,frobnicate=3,dl_vlan=2"


def test_priority_in_match_is_an_error() -> None:
    with pytest.raises(ValueError):
        Flow(0, 1, "priority=3,ip", "drop")


@pytest.mark.parametrize("kwargs", [dict(table=255), dict(priority=70000), dict(cookie=-1),
                                    dict(flags=("bogus",))])
def test_flow_validation(kwargs: dict) -> None:
    base = dict(table=0, priority=1, match="", actions="drop")
    with pytest.raises(ValueError):
        Flow(**{**base, **kwargs})


def test_split_fields_respects_quotes_and_parens() -> None:
    assert split_fields('a=1,b="x,y",c=learn(table=1,output:2),d') == \
        ["a=1", 'b="x,y"', "c=learn(table=1,output:2)", "d"]


def test_port_text() -> None:
    assert [port_text(p) for p in ("3", "0xfffe", "LOCAL", "local", "br0", "br-0", '"br0"')] == \
        ["3", "LOCAL", "LOCAL", "LOCAL", "br0", '"br-0"', "br0"]


def test_flow_mod_and_bundle_text() -> None:
    f = Flow(20, 1, "dl_dst=fa:16:3e:00:00:02,vlan_tci=0x0001/0x0fff", "output:2", cookie=0x1,
             hard_timeout=300, flags=("send_flow_rem",))
    assert flow_mod_text(f) == ("cookie=0x1,table=20,hard_timeout=300,send_flow_rem,priority=1,"
                                "vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02,actions=output:2")
    assert delete_strict_text(f) == \
        "delete_strict table=20,priority=1,vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02"
    text = bundle_text(add=[Flow(0, 0, "", "NORMAL")], delete=[f], delete_cookies=[0x5])
    assert text.splitlines() == [
        "delete cookie=0x5/-1",
        "delete_strict table=20,priority=1,vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02",
        "add cookie=0x0,table=0,priority=0,actions=NORMAL",
    ]
    assert bundle_text() == ""


def test_diff_and_sort() -> None:
    a = Flow(0, 1, "in_port=1", "drop")
    b = Flow(0, 2, "in_port=2", "drop")
    b2 = Flow(0, 2, "in_port=2", "NORMAL")
    c = Flow(1, 0, "", "drop")
    add, delete = diff(desired=[a, b2], observed=[a, b, c])
    assert add == [b2] and delete == [c]
    assert diff([a], [a]) == ([], [])
    assert sort_flows([c, a, b]) == [b, a, c]


class Recorder:
    def __init__(self, stdout: str = "") -> None:
        self.calls: list[dict] = []
        self.stdout = stdout

    def __call__(self, argv, *, netns=None, env=None, input=None, timeout=30, check=True):
        self.calls.append(dict(argv=list(argv), netns=netns, env=env, input=input))
        return Completed(tuple(argv), 0, self.stdout, "")


def test_openflow_argv_and_bundle_input(tmp_path: Path) -> None:
    rec = Recorder()
    of = OpenFlow(Ovs(tmp_path, "ns1", runner=rec))
    of.apply("br-int", add=[Flow(0, 0, "", "NORMAL")], delete=[Flow(0, 5, "in_port=1", "drop")])
    call = rec.calls[-1]
    assert call["argv"] == ["ovs-ofctl", "-O", "OpenFlow13", "--timeout=10", "--bundle",
                            "add-flows", f"unix:{tmp_path}/br-int.mgmt", "-"]
    assert call["netns"] == "ns1" and call["env"]["OVS_RUNDIR"] == str(tmp_path)
    assert call["input"] == ("delete_strict table=0,priority=5,in_port=1\n"
                             "add cookie=0x0,table=0,priority=0,actions=NORMAL\n")
    of.replace_cookie_flows("br-tun", 0xab, [Flow(4, 1, "tun_id=0x64", "drop", cookie=0x1)])
    assert rec.calls[-1]["input"] == ("delete cookie=0xab/-1\n"
                                      "add cookie=0xab,table=4,priority=1,tun_id=0x64,actions=drop\n")
    of.apply("br-int")  # nothing to do: no call
    assert len(rec.calls) == 2


def test_openflow_dump_and_delete_except_cookie(tmp_path: Path) -> None:
    rec = Recorder(stdout=(GOLDEN / "ofctl-dump-br-tun.txt").read_text())
    of = OpenFlow(Ovs(tmp_path, None, runner=rec))
    flows = of.dump("br-tun", table=20)
    assert rec.calls[0]["argv"][-2:] == [f"unix:{tmp_path}/br-tun.mgmt", "table=20"]
    assert "--no-names" in rec.calls[0]["argv"] and "--no-stats" in rec.calls[0]["argv"]
    assert len(flows) == 12
    stale = of.delete_flows_except_cookie("br-tun", 0x5EED)
    assert [f.cookie for f in stale] == [0x1]
    assert rec.calls[-1]["input"] == (
        "delete_strict cookie=0x1/-1,table=20,priority=1,"
        "vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02\n")
    assert of.delete_flows_except_cookie("br-tun", 0x5EED, keep=[0x1]) == []


def test_trace_parses_datapath_actions(tmp_path: Path) -> None:
    rec = Recorder(stdout=(GOLDEN / "appctl-trace.txt").read_text())
    tr = OpenFlow(Ovs(tmp_path, "ns", runner=rec)).trace("br-int", "in_port=3,arp")
    assert rec.calls[0]["argv"][-3:] == ["ofproto/trace", "br-int", "in_port=3,arp"]
    assert "tnl_push" in tr.datapath_actions and "vni=0x64" in tr.datapath_actions


@pytest.mark.parametrize("name", DUMPS)
def test_dump_entries_agree_with_parse_dump(name: str) -> None:
    text = (GOLDEN / name).read_text()
    assert [tuple(e) for e in dump_entries(text)] == [(f.cookie, f.table, f.priority, f.match, f.actions)
                                                      for f in parse_dump(text)]


def test_split_fields_plain_and_nested_agree() -> None:
    for text in ("a=1,b=2,,c", " ip ,nw_src=10.0.0.1 ", "", "ct_state=+new-est,reg5=0x5,tp_dst=0x10/0xfff0"):
        assert split_fields(text) == [f.strip() for f in text.split(",") if f.strip()]
    assert split_fields('a=1,b="x,y",c=(1,2),d') == ["a=1", 'b="x,y"', "c=(1,2)", "d"]


def test_canonical_bundle_text_and_apply_canonical(tmp_path: Path) -> None:
    class Spec(NamedTuple):
        table: int
        priority: int
        match: str
        actions: str

    add = [Spec(71, 10, "reg5=0x5", "drop"), Spec(0, 0, "", "NORMAL")]
    delete = [Spec(60, 100, "in_port=5", "resubmit(,71)")]
    text = canonical_bundle_text(0xAB, add, delete)
    assert text == ("delete_strict table=60,priority=100,in_port=5\n"
                    "add cookie=0xab,table=0,priority=0,actions=NORMAL\n"
                    "add cookie=0xab,table=71,priority=10,reg5=0x5,actions=drop\n")
    # The same text as the validating path would write for the same flows.
    assert text == bundle_text(add=sort_flows(Flow(*s, cookie=0xAB) for s in add),
                               delete=[Flow(*delete[0])])
    rec = Recorder()
    of = OpenFlow(Ovs(tmp_path, "ns1", runner=rec))
    of.apply_canonical("br-int", 0xAB, add * 5000)
    argv = rec.calls[-1]["argv"]
    assert argv[3] == "--timeout=30"        # a big bundle gets more time than the default 10 s
    of.apply_canonical("br-int", 0xAB)      # nothing to do: no call
    assert len(rec.calls) == 1
