"""Issue 13, finding 3, against a private userspace OVS: a flow ``ovs-ofctl`` rejects
isolates the one port it belongs to; every other port of the host is programmed.

The planner's own check (``planner.port_problem``) would never build the flow, so
the driver is given one that lets everything through here to show the executor's part with the real tool: a port
whose address carries an IPv6 scope id (what the API accepted before issue 13)
gets an ``ipv6_src=fe80::2%x`` flow, which ``ovs-ofctl`` refuses, failing the
whole bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neutrino.agents.ovs.agent import OvsDriver
from neutrino.agents.ovs.model import FlowSpec
from neutrino.system.openflow import OpenFlow
from neutrino.system.ovsdb import AddBridge, PrivateOvs
from tests.functional.test_ovs_agent import CFG, HOST, NET, RULES, installed, port, vif

pytestmark = pytest.mark.root


def _state(rev: int, ports: list[dict[str, Any]]) -> Any:
    from neutrino.feed.state import State

    return State(
        rev,
        {"port": {p["id"]: p for p in ports}, "network": {"net-1": NET}, "agent": {}, "security_group_rule": RULES},
        frozenset({"port", "network", "agent", "security_group_rule"}),
    )


def _table0(flows: set[FlowSpec]) -> dict[str, str]:
    return {f.match: f.actions for f in flows if f.table == 0 and f.match.startswith("in_port=")}


def test_a_port_whose_flows_ovs_ofctl_rejects_is_isolated_alone(tmp_path: Path, netns: str) -> None:
    inst = PrivateOvs(tmp_path / "ovs", netns)
    drv = None
    try:
        ovs = inst.start()
        ovs.transact([AddBridge("br-int", datapath_type="netdev"), *(vif(i) for i in range(1, 5))])
        drv = OvsDriver(CFG, ovs, port_check=lambda p: None)  # the executor's part only
        of = OpenFlow(ovs)
        bad = dict(port(2), fixed_ips=[{"ip_address": "10.0.0.2"}, {"ip_address": "fe80::2%x"}])
        ports = [port(1), bad, port(3), port(4)]
        statuses = drv.reconcile_sync(_state(1, ports), True)
        assert statuses == {"port-1": "ACTIVE", "port-2": "ERROR", "port-3": "ACTIVE", "port-4": "ACTIVE"}
        assert HOST == CFG.host
        flows = installed(of, "br-int", drv.cookie)
        assert flows == drv._installed["br-int"]
        ofports = {i: ovs.observe().ports[f"tap{i}"].ofport for i in range(1, 5)}
        table0 = _table0(flows)
        assert table0[f"in_port={ofports[2]}"] == "drop"
        assert all(table0[f"in_port={ofports[i]}"] != "drop" for i in (1, 3, 4))
        assert not any(f"reg5=0x{ofports[2]:x}" in f.match for f in flows)
        assert ovs.observe().ports["tap2"].tag == 4095
        assert "port port-2: flows rejected by the switch" in drv.configurations()["reconcile_error"]

        # Fixed, the port is wired on the next pass.
        statuses = drv.reconcile_sync(_state(2, [port(1), port(2), port(3), port(4)]), True)
        assert set(statuses.values()) == {"ACTIVE"}
        assert _table0(installed(of, "br-int", drv.cookie))[f"in_port={ofports[2]}"] != "drop"
        assert "reconcile_error" not in drv.configurations()
    finally:
        if drv is not None:
            drv.stop()
        inst.destroy()
