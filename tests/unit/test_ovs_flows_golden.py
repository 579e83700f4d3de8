"""Golden flow dumps: the complete flow set per bridge for fixed hosts.

Each case builds a host (ofports fixed as in the reference's worked example),
plans until converged, and compares the dump with ``tests/golden/ovs/<case>.txt``.
Regenerate with ``NEUTRINO_UPDATE_GOLDEN=1 pytest tests/unit/test_ovs_flows_golden.py``
and review the diff by eye.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from neutrino.agents.ovs.flows import dump
from neutrino.agents.ovs.model import (
    FLOODING_IP,
    FLOODING_MAC,
    AgentConfig,
    DesiredHost,
    DesiredNetwork,
    DesiredPort,
    FdbEntry,
    Plan,
    TunnelPeer,
)
from neutrino.agents.ovs.planner import local_vlans_from_observed, plan
from neutrino.fakes.flowtable import FakeFlowTable

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ovs"
VM_PORT = "4f2a1b3c-9d8e-4a5b-8c7d-0123456789ab"


def _patch(fake: FakeFlowTable, bridge: str, name: str, peer: str, ofport: int) -> None:
    fake.add_port(bridge, name, type="patch", options={"peer": peer}, ofport=ofport)


def _vxlan(fake: FakeFlowTable, name: str, remote: str, local: str, ofport: int, kind: str = "vxlan") -> None:
    fake.add_port("br-tun", name, type=kind, ofport=ofport, options={"remote_ip": remote, "local_ip": local})


def compute1_l2pop() -> tuple[AgentConfig, DesiredHost, FakeFlowTable]:
    """The reference's compute1: VM on VXLAN net N, l2pop + ARP responder, net1 as peer."""
    cfg = AgentConfig(
        "compute1",
        bridge_mappings={"physnet1": "br-ex"},
        local_ip="192.168.100.11",
        tunnel_types=("vxlan",),
        l2_population=True,
        arp_responder=True,
    )
    net_n = DesiredNetwork("net-n", "vxlan", None, 100, 1450)
    net_e = DesiredNetwork("net-e", "flat", "physnet1", None, 1500)
    vm = DesiredPort(VM_PORT, "net-n", "fa:16:3e:11:22:33", ("10.0.0.5",), device_owner="compute:nova")
    fdb = (
        FdbEntry("net-n", "192.168.100.12", FLOODING_MAC, FLOODING_IP),
        FdbEntry("net-n", "192.168.100.12", "fa:16:3e:aa:aa:aa", "10.0.0.2"),
        FdbEntry("net-n", "192.168.100.12", "fa:16:3e:bb:bb:bb", "10.0.0.1"),
    )
    fake = FakeFlowTable()
    for br in ("br-int", "br-tun", "br-ex"):
        fake.add_bridge(br)
    _patch(fake, "br-int", "patch-tun", "patch-int", 1)
    _patch(fake, "br-int", "int-br-ex", "phy-br-ex", 2)
    fake.add_port("br-int", "tap4f2a1b3c-9d", iface_id=VM_PORT, attached_mac="fa:16:3e:11:22:33", ofport=5)
    _patch(fake, "br-tun", "patch-int", "patch-tun", 1)
    _vxlan(fake, "vxlan-c0a8640c", "192.168.100.12", "192.168.100.11", 2)
    fake.add_port("br-ex", "eth1", ofport=1)
    _patch(fake, "br-ex", "phy-br-ex", "int-br-ex", 2)
    return cfg, DesiredHost((net_n, net_e), (vm,), fdb=fdb), fake


def net1_provider() -> tuple[AgentConfig, DesiredHost, FakeFlowTable]:
    """Provider networks only: VLAN 101 and flat on physnet1, no tunnels.

    DHCP port (trusted), a VM with allowed address pairs, the router gateway on
    the flat network, a VIF nobody knows and an admin-down VM.
    """
    cfg = AgentConfig("net1", bridge_mappings={"physnet1": "br-ex"})
    net_v = DesiredNetwork("net-v", "vlan", "physnet1", 101, 1500)
    net_e = DesiredNetwork("net-e", "flat", "physnet1", None, 1500)
    ports = (
        DesiredPort("dhcp-port", "net-v", "fa:16:3e:aa:aa:aa", ("10.1.0.2",), device_owner="network:dhcp"),
        DesiredPort(
            "vm-port",
            "net-v",
            "fa:16:3e:11:11:11",
            ("10.1.0.5", "2001:db8::5"),
            allowed_address_pairs=(
                (None, "10.1.0.100"),
                ("fa:16:3e:99:99:99", "10.1.0.200"),
                (None, "192.168.50.0/24"),
            ),
            device_owner="compute:nova",
        ),
        DesiredPort("gw-port", "net-e", "fa:16:3e:cc:cc:cc", ("172.24.4.10",), device_owner="network:router_gateway"),
        DesiredPort("down-port", "net-v", "fa:16:3e:dd:dd:dd", ("10.1.0.7",), admin_state_up=False),
    )
    fake = FakeFlowTable()
    fake.add_bridge("br-int")
    fake.add_bridge("br-ex")
    _patch(fake, "br-int", "int-br-ex", "phy-br-ex", 1)
    for ofport, (name, port_id, mac) in enumerate(
        [
            ("tapdhcp-port", "dhcp-port", "fa:16:3e:aa:aa:aa"),
            ("tapvm-port", "vm-port", "fa:16:3e:11:11:11"),
            ("qg-gw-port", "gw-port", "fa:16:3e:cc:cc:cc"),
            ("tapstranger", "stranger", "fa:16:3e:ee:ee:ee"),
            ("tapdown-port", "down-port", "fa:16:3e:dd:dd:dd"),
        ],
        start=3,
    ):
        fake.add_port("br-int", name, iface_id=port_id, attached_mac=mac, ofport=ofport)
    fake.add_port("br-ex", "eth1", ofport=1)
    _patch(fake, "br-ex", "phy-br-ex", "int-br-ex", 2)
    return cfg, DesiredHost((net_v, net_e), ports), fake


def mesh_vxlan_geneve() -> tuple[AgentConfig, DesiredHost, FakeFlowTable]:
    """Full tunnel mesh without l2pop: two peers, a VXLAN and a Geneve network."""
    cfg = AgentConfig("compute1", local_ip="192.168.100.11", tunnel_types=("vxlan", "geneve"))
    nets = (DesiredNetwork("net-a", "vxlan", None, 100, 1450), DesiredNetwork("net-b", "geneve", None, 5000, 1450))
    ports = (
        DesiredPort("port-a", "net-a", "fa:16:3e:00:00:0a", ("10.0.0.10",), port_security_enabled=False),
        DesiredPort("port-b", "net-b", "fa:16:3e:00:00:0b", ("10.5.0.10",), port_security_enabled=False),
    )
    peers = (TunnelPeer("compute2", "192.168.100.12"), TunnelPeer("net1", "192.168.100.13"))
    fake = FakeFlowTable()
    fake.add_bridge("br-int")
    fake.add_bridge("br-tun")
    _patch(fake, "br-int", "patch-tun", "patch-int", 1)
    fake.add_port("br-int", "tapport-a", iface_id="port-a", attached_mac="fa:16:3e:00:00:0a", ofport=5)
    fake.add_port("br-int", "tapport-b", iface_id="port-b", attached_mac="fa:16:3e:00:00:0b", ofport=6)
    _patch(fake, "br-tun", "patch-int", "patch-tun", 1)
    _vxlan(fake, "vxlan-c0a8640c", "192.168.100.12", "192.168.100.11", 2)
    _vxlan(fake, "vxlan-c0a8640d", "192.168.100.13", "192.168.100.11", 3)
    _vxlan(fake, "geneve-c0a8640c", "192.168.100.12", "192.168.100.11", 4, "geneve")
    _vxlan(fake, "geneve-c0a8640d", "192.168.100.13", "192.168.100.11", 5, "geneve")
    return cfg, DesiredHost(nets, ports, peers), fake


CASES: dict[str, Callable[[], tuple[AgentConfig, DesiredHost, FakeFlowTable]]] = {
    "compute1_l2pop": compute1_l2pop,
    "net1_provider": net1_provider,
    "mesh_vxlan_geneve": mesh_vxlan_geneve,
}


def converged_plan(cfg: AgentConfig, desired: DesiredHost, fake: FakeFlowTable) -> Plan:
    lvids = local_vlans_from_observed(fake.observed())
    for _ in range(6):
        before = fake.observed()
        p = plan(cfg, desired, before, lvids)
        fake.apply(p)
        lvids = p.local_vlans
        if not p.ovsdb_ops and all(before.flows.get(b) == f for b, f in p.flows.items()):
            return p
    raise AssertionError("no convergence")


def render(case: str, p: Plan) -> str:
    doc = (CASES[case].__doc__ or "").strip().splitlines()[0]
    lvids = ", ".join(f"{net}={vid}" for net, vid in sorted(p.local_vlans.items()))
    out = [f"# {case}: {doc}", f"# local VLANs: {lvids}"]
    for bridge in sorted(p.flows):
        out.append(f"\n## {bridge}")
        out.append(dump(p.flows[bridge]).rstrip("\n"))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_flow_dump(case: str) -> None:
    cfg, desired, fake = CASES[case]()
    text = render(case, converged_plan(cfg, desired, fake))
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("NEUTRINO_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_hosts_are_already_wired_as_in_the_reference(case: str) -> None:
    """The fixtures' patch and tunnel ports are exactly what the planner wants
    (so the dumps show the reference's ofports)."""
    cfg, desired, fake = CASES[case]()
    first = plan(cfg, desired, fake.observed(), local_vlans_from_observed(fake.observed()))
    assert {type(op).__name__ for op in first.ovsdb_ops} <= {"EnsureBridge", "SetPortTag", "SetPortOtherConfig"}
