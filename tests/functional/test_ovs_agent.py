"""The OVS agent's driver against a private userspace OVS: its OVSDB monitor wakes it
up when a VIF is plugged, it wires the VIF without re-reading flows, and it repairs
everything after ovs-vswitchd restarts."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from neutrino.agents.ovs.agent import OvsDriver
from neutrino.agents.ovs.model import AgentConfig, FlowSpec
from neutrino.agents.ovs.vif_hint import local_vlan_hint
from neutrino.feed.state import State
from neutrino.system.openflow import OpenFlow
from neutrino.system.ovsdb import AddBridge, AddPort, PrivateOvs

pytestmark = pytest.mark.root

HOST = "h1"
CFG = AgentConfig(host=HOST, local_ip="192.168.99.1", tunnel_types=("vxlan",), datapath_type="netdev")
NET = {
    "id": "net-1",
    "provider:network_type": "vxlan",
    "provider:physical_network": None,
    "provider:segmentation_id": 100,
    "mtu": 1450,
}
RULES = {
    "r1": {
        "id": "r1",
        "security_group_id": "sg",
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
        "remote_ip_prefix": None,
        "remote_group_id": "sg",
    }
}


def port(i: int) -> dict[str, Any]:
    return {
        "id": f"port-{i}",
        "network_id": "net-1",
        "mac_address": f"fa:16:3e:00:00:{i:02x}",
        "fixed_ips": [{"ip_address": f"10.0.0.{i}"}],
        "binding:host_id": HOST,
        "binding:vif_type": "ovs",
        "admin_state_up": True,
        "port_security_enabled": True,
        "device_owner": "compute:nova",
        "security_groups": ["sg"],
    }


def state(rev: int, n: int) -> State:
    ports = {f"port-{i}": port(i) for i in range(1, n + 1)}
    return State(
        rev,
        {"port": ports, "network": {"net-1": NET}, "agent": {}, "security_group_rule": RULES},
        frozenset({"port", "network", "agent", "security_group_rule"}),
    )


def vif(i: int) -> AddPort:
    return AddPort(
        "br-int",
        f"tap{i}",
        type="internal",
        external_ids={"iface-id": f"port-{i}", "attached-mac": f"fa:16:3e:00:00:{i:02x}"},
    )


def installed(of: OpenFlow, bridge: str, cookie: int) -> set[FlowSpec]:
    flows = of.dump_entries(bridge)
    assert {f.cookie for f in flows} == {cookie}
    return {FlowSpec(bridge, f.table, f.priority, f.match, f.actions) for f in flows}


def test_plugged_vif_wakes_the_agent_and_a_vswitchd_restart_is_repaired(tmp_path: Path, netns: str) -> None:
    inst = PrivateOvs(tmp_path / "ovs", netns)
    drv = None
    try:
        ovs = inst.start()
        ovs.transact([AddBridge("br-int", datapath_type="netdev"), vif(1), vif(2)])
        drv = OvsDriver(CFG, ovs)
        of = OpenFlow(ovs)
        assert drv.reconcile_sync(state(1, 3), True) == {"port-1": "ACTIVE", "port-2": "ACTIVE", "port-3": "DOWN"}
        assert drv._monitor is not None and drv._monitor.alive
        assert installed(of, "br-int", drv.cookie) == drv._installed["br-int"]

        async def plug_and_wait() -> None:
            waiter = asyncio.ensure_future(drv.host_changed())
            await asyncio.sleep(0)
            assert not waiter.done()  # nothing changed since the pass
            await asyncio.to_thread(ovs.transact, [vif(3)])
            await asyncio.wait_for(waiter, 30)

        asyncio.run(plug_and_wait())
        passes = drv.full_passes
        assert drv.reconcile_sync(state(1, 3), False)["port-3"] == "ACTIVE"  # no feed change needed
        assert drv.full_passes == passes  # no flows re-read
        assert installed(of, "br-int", drv.cookie) == drv._installed["br-int"]
        assert any("in_port=" + str(ovs.observe().ports["tap3"].ofport) in f.match for f in drv._installed["br-int"])

        inst.restart_vswitchd()  # every flow lost
        assert of.dump_entries("br-int") == []
        drv.reconcile_sync(state(2, 3), True)
        assert drv.full_passes == passes + 1
        assert installed(of, "br-int", drv.cookie) == drv._installed["br-int"]
    finally:
        if drv is not None:
            drv.stop()
        inst.destroy()


def test_a_vif_plugged_with_the_hint_costs_the_agent_no_ovsdb_write(tmp_path: Path, netns: str) -> None:
    """The compute agent reads the network's local VLAN from a wired sibling (vif_hint) and
    plugs with it; the agent's pass is then flows only.  No sibling, no hint."""
    inst = PrivateOvs(tmp_path / "ovs", netns)
    drv = None
    try:
        ovs = inst.start()
        ovs.transact([AddBridge("br-int", datapath_type="netdev"), vif(1)])
        assert local_vlan_hint(ovs, "net-1") is None  # nothing wired yet
        drv = OvsDriver(CFG, ovs)
        assert drv.reconcile_sync(state(1, 2), True)["port-1"] == "ACTIVE"
        hint = local_vlan_hint(ovs, "net-1")
        assert hint is not None and hint[0] == drv.local_vlans["net-1"]
        assert hint[1]["net_uuid"] == "net-1" and hint[1]["tag"] == str(hint[0])
        assert local_vlan_hint(ovs, "net-2") is None
        tag, other_config = hint
        ovs.transact([replace(vif(2), tag=tag, other_config=other_config)])
        writes: list[list[Any]] = []
        real = drv._transact
        drv._transact = lambda ops: writes.append(ops) or real(ops)
        assert drv.reconcile_sync(state(2, 2), True)["port-2"] == "ACTIVE"
        assert writes == []
        assert ovs.observe().ports["tap2"].tag == tag
    finally:
        if drv is not None:
            drv.stop()
        inst.destroy()
