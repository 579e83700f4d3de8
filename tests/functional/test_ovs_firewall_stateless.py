"""Stateless security groups with real packets: the OVS agent's driver wires two
instance namespaces on a private userspace Open vSwitch (one host of a test
fabric), and ping shows that a stateless group lets through only what its rules
allow in each direction, without a conntrack entry (``dpctl/dump-conntrack`` of
the host's own datapath), while a stateful group lets replies back and tracks
them (the control that shows the conntrack check can fail).  Needs root."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neutrino.agents.ovs.agent import OvsDriver
from neutrino.agents.ovs.model import AgentConfig
from neutrino.feed.state import State
from neutrino.system.oftext import Flow, parse_dump
from neutrino.system.ovsdb import AddBridge, Ovs
from neutrino.testing.multihost import Fabric, Host
from neutrino.testing.openflow import OpenFlowTool

pytestmark = pytest.mark.root

CFG = AgentConfig(host="h1", datapath_type="netdev")
NET = {
    "id": "net-1",
    "provider:network_type": "local",
    "provider:physical_network": None,
    "provider:segmentation_id": None,
    "mtu": 1500,
}
A_MAC, B_MAC = "fa:16:3e:00:00:05", "fa:16:3e:00:00:06"
A_IP, B_IP = "10.0.0.5", "10.0.0.6"
TYPES = frozenset({"port", "network", "agent", "security_group_rule", "security_group"})


def _port(pid: str, mac: str, ip: str, groups: list[str], security: bool = True) -> dict[str, Any]:
    return {
        "id": pid,
        "network_id": "net-1",
        "mac_address": mac,
        "fixed_ips": [{"ip_address": ip}],
        "binding:host_id": CFG.host,
        "binding:vif_type": "ovs",
        "admin_state_up": True,
        "port_security_enabled": security,
        "device_owner": "compute:nova",
        "security_groups": groups,
    }


def _rule(rid: str, group: str, direction: str, protocol: str | None = "icmp") -> dict[str, Any]:
    return {
        "id": rid,
        "security_group_id": group,
        "direction": direction,
        "ethertype": "IPv4",
        "protocol": protocol,
        "port_range_min": None,
        "port_range_max": None,
        "remote_ip_prefix": None,
        "remote_group_id": None,
    }


def _state(rev: int, group: str, rules: list[dict[str, Any]]) -> State:
    """Instance A in ``group`` (with ``rules``); instance B without port security pings it."""
    ports = {
        "port-a": _port("port-a", A_MAC, A_IP, [group]),
        "port-b": _port("port-b", B_MAC, B_IP, [], security=False),
    }
    groups = {"bare": {"id": "bare", "stateful": False}, "full": {"id": "full", "stateful": True}}
    return State(
        rev,
        {
            "port": ports,
            "network": {"net-1": NET},
            "agent": {},
            "security_group_rule": {r["id"]: r for r in rules},
            "security_group": groups,
        },
        TYPES,
    )


def _conntrack_of(host: Host, ip: str) -> list[str]:
    """The host datapath's conntrack entries naming ``ip``."""
    out = host.exec(["ovs-appctl", "dpctl/dump-conntrack"]).stdout
    return [line for line in out.splitlines() if re.search(rf"(src|dst)={re.escape(ip)}\b", line)]


def _flush_conntrack(host: Host) -> None:
    host.exec(["ovs-appctl", "dpctl/flush-conntrack"])


def _packets(host: Host, table: int, needle: str) -> int:
    """Packets counted by the br-int flows of ``table`` whose text contains ``needle``."""
    out = host.exec(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "br-int", f"table={table}"]).stdout
    return sum(
        int(m.group(1))
        for line in out.splitlines()
        if needle in line
        for m in [re.search(r"n_packets=(\d+)", line)]
        if m
    )


def test_stateless_group_needs_rules_both_ways_and_tracks_nothing(make_fabric: Callable[..., Fabric]) -> None:
    fab = make_fabric(1, physnet=False)
    host = fab.hosts["h1"]
    host.ovs.transact([AddBridge("br-int", datapath_type="netdev")])
    a = host.plug("a", ip=f"{A_IP}/24", mac=A_MAC, external_ids={"iface-id": "port-a", "attached-mac": A_MAC})
    b = host.plug("b", ip=f"{B_IP}/24", mac=B_MAC, external_ids={"iface-id": "port-b", "attached-mac": B_MAC})
    drv = OvsDriver(CFG, host.ovs, monitor=False)
    try:
        ingress_only = [_rule("r-in", "bare", "ingress")]
        assert drv.reconcile_sync(_state(1, "bare", ingress_only), True) == {"port-a": "ACTIVE", "port-b": "ACTIVE"}
        _flush_conntrack(host)

        # 1. Stateless, ingress ICMP only: the requests reach A, its replies are dropped.
        assert b.ping(A_IP, count=3, timeout=1, check=False).rc != 0
        assert _packets(host, 82, "icmp,reg5=") >= 3  # requests let in by the rule
        assert _packets(host, 72, "reg5=") == 0  # no egress rule to match
        assert _conntrack_of(host, A_IP) == []

        # 2. An egress rule lets the replies out; still nothing tracked.
        both = [*ingress_only, _rule("r-out", "bare", "egress")]
        drv.reconcile_sync(_state(2, "bare", both), True)
        assert b.ping(A_IP, count=3, timeout=2, check=False).rc == 0
        assert _conntrack_of(host, A_IP) == []
        assert a.ping(B_IP, count=1, timeout=2, check=False).rc == 0  # A may start it too: B is open

        # 3. Control: a stateful group with the same ingress rule and no egress rule
        #    lets the replies back through conntrack, and conntrack shows it.
        drv.reconcile_sync(_state(3, "full", [_rule("r-full", "full", "ingress")]), True)
        assert b.ping(A_IP, count=2, timeout=2, check=False).rc == 0
        assert _conntrack_of(host, A_IP) != []
    finally:
        drv.stop()


def test_stateless_flows_round_trip_through_ovs(private_ovs: Ovs) -> None:
    """OVS dumps the stateless port's flows exactly as planned (no churn between passes)."""
    golden = Path(__file__).resolve().parent.parent / "golden" / "ovs" / "firewall-stateless-br-int.txt"
    private_ovs.transact(
        [
            AddBridge(
                "br-int",
                datapath_type="netdev",
                fail_mode="secure",
                protocols=("OpenFlow10", "OpenFlow13", "OpenFlow14"),
            )
        ]
    )
    planned = {(f.table, f.priority, f.match, f.actions) for f in parse_dump(golden.read_text())}
    of = OpenFlowTool(private_ovs)
    of.apply("br-int", add=[Flow(*p, cookie=0x77) for p in planned])
    assert {(f.table, f.priority, f.match, f.actions) for f in of.dump("br-int")} == planned
