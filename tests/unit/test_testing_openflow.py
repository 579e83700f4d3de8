"""neutrino.testing.openflow: ovs-ofctl input text for Flow values, flow-set diff, OpenFlowTool."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from neutrino.system.exec import Completed
from neutrino.system.oftext import Flow, canonical_bundle_text
from neutrino.system.ovsdb import Ovs
from neutrino.testing.openflow import (
    OpenFlowTool,
    bundle_text,
    delete_strict_text,
    diff,
    flow_mod_text,
    sort_flows,
)

GOLDEN = Path(__file__).parent.parent / "golden"


def test_flow_mod_and_bundle_text() -> None:
    f = Flow(
        20,
        1,
        "dl_dst=fa:16:3e:00:00:02,vlan_tci=0x0001/0x0fff",
        "output:2",
        cookie=0x1,
        hard_timeout=300,
        flags=("send_flow_rem",),
    )
    assert flow_mod_text(f) == (
        "cookie=0x1,table=20,hard_timeout=300,send_flow_rem,priority=1,"
        "vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02,actions=output:2"
    )
    assert delete_strict_text(f) == "delete_strict table=20,priority=1,vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02"
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


class Spec(NamedTuple):
    """A canonical flow as the agent passes it (``FlowText``): not a ``Flow``."""

    table: int
    priority: int
    match: str
    actions: str


ADD = [Spec(71, 10, "reg5=0x5", "drop"), Spec(0, 0, "", "NORMAL")]
DELETE = [Spec(60, 100, "in_port=5", "resubmit(,71)")]


def test_canonical_bundle_text_is_what_the_validating_path_writes() -> None:
    assert canonical_bundle_text(0xAB, ADD, DELETE) == bundle_text(
        add=sort_flows(Flow(*s, cookie=0xAB) for s in ADD), delete=[Flow(*DELETE[0])]
    )


class Recorder:
    def __init__(self, stdout: str = "") -> None:
        self.calls: list[dict] = []
        self.stdout = stdout

    def __call__(self, argv, *, netns=None, env=None, input=None, timeout=30, check=True):
        self.calls.append(dict(argv=list(argv), netns=netns, env=env, input=input))
        return Completed(tuple(argv), 0, self.stdout, "")


def test_openflow_argv_and_bundle_input(tmp_path: Path) -> None:
    rec = Recorder()
    of = OpenFlowTool(Ovs(tmp_path, "ns1", runner=rec))
    of.apply("br-int", add=[Flow(0, 0, "", "NORMAL")], delete=[Flow(0, 5, "in_port=1", "drop")])
    call = rec.calls[-1]
    assert call["argv"] == [
        "ovs-ofctl",
        "-O",
        "OpenFlow13",
        "--timeout=10",
        "--bundle",
        "add-flows",
        f"unix:{tmp_path}/br-int.mgmt",
        "-",
    ]
    assert call["netns"] == "ns1" and call["env"]["OVS_RUNDIR"] == str(tmp_path)
    assert call["input"] == (
        "delete_strict table=0,priority=5,in_port=1\nadd cookie=0x0,table=0,priority=0,actions=NORMAL\n"
    )
    of.replace_cookie_flows("br-tun", 0xAB, [Flow(4, 1, "tun_id=0x64", "drop", cookie=0x1)])
    assert rec.calls[-1]["input"] == (
        "delete cookie=0xab/-1\nadd cookie=0xab,table=4,priority=1,tun_id=0x64,actions=drop\n"
    )
    of.apply("br-int")  # nothing to do: no call
    assert len(rec.calls) == 2


def test_delete_flows_except_cookie(tmp_path: Path) -> None:
    rec = Recorder(stdout=(GOLDEN / "ofctl-dump-br-tun.txt").read_text())
    of = OpenFlowTool(Ovs(tmp_path, None, runner=rec))
    stale = of.delete_flows_except_cookie("br-tun", 0x5EED)
    assert [f.cookie for f in stale] == [0x1]
    assert rec.calls[-1]["input"] == (
        "delete_strict cookie=0x1/-1,table=20,priority=1,vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02\n"
    )
    assert of.delete_flows_except_cookie("br-tun", 0x5EED, keep=[0x1]) == []


def test_trace_parses_datapath_actions(tmp_path: Path) -> None:
    rec = Recorder(stdout=(GOLDEN / "appctl-trace.txt").read_text())
    tr = OpenFlowTool(Ovs(tmp_path, "ns", runner=rec)).trace("br-int", "in_port=3,arp")
    assert rec.calls[0]["argv"][-3:] == ["ofproto/trace", "br-int", "in_port=3,arp"]
    assert "tnl_push" in tr.datapath_actions and "vni=0x64" in tr.datapath_actions
