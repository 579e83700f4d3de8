"""The firewall's flows on a real Open vSwitch: OVS accepts every one of them, in one
bundle, and dumps them back exactly as the planner wrote them (so the agent's diff
against a dump is empty and a second pass changes nothing).  Needs root."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino.agents.ovs.model import FlowSpec
from neutrino.system.oftext import Flow, parse_dump
from neutrino.system.ovsdb import AddBridge, Ovs
from neutrino.testing.openflow import OpenFlowTool

pytestmark = pytest.mark.root

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ovs" / "firewall-br-int.txt"


def test_firewall_flows_round_trip_through_ovs(private_ovs: Ovs) -> None:
    ovs = private_ovs
    ovs.transact(
        [
            AddBridge(
                "br-int",
                datapath_type="netdev",
                fail_mode="secure",
                protocols=("OpenFlow10", "OpenFlow13", "OpenFlow14"),
            )
        ]
    )
    planned = [FlowSpec("br-int", f.table, f.priority, f.match, f.actions) for f in parse_dump(GOLDEN.read_text())]
    assert len(planned) > 100
    of = OpenFlowTool(ovs)
    want = [Flow(s.table, s.priority, s.match, s.actions, cookie=0x77) for s in planned]
    of.apply("br-int", add=want)
    dumped = {(f.table, f.priority, f.match, f.actions) for f in of.dump("br-int")}
    assert dumped == {(s.table, s.priority, s.match, s.actions) for s in planned}
