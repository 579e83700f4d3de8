"""Trunks in the OVS agent: derive (trunk_details -> DesiredTrunk) and the planner's subport
patch pairs, asserted on the fake pipeline (where tagged and untagged frames go)."""

from __future__ import annotations

from dataclasses import replace

from neutrino.agents.ovs import derive
from neutrino.agents.ovs import tables as t
from neutrino.agents.ovs.model import AgentConfig, DesiredHost, DesiredNetwork, DesiredPort, DesiredTrunk
from neutrino.agents.ovs.planner import plan, trunk_port_names
from neutrino.fakes.flowtable import FakeFlowTable, Packet, arp_request, ipv4
from tests.unit.test_ovs_planner import converge, make_host, tap

CFG = AgentConfig(host="compute1")
NET_A = DesiredNetwork("net-a", "local")
NET_B = DesiredNetwork("net-b", "local")
MAC_P, MAC_S, MAC_PEER_A, MAC_PEER_B = (
    "fa:16:3e:00:00:01",
    "fa:16:3e:00:00:02",
    "fa:16:3e:00:00:0a",
    "fa:16:3e:00:00:0b",
)
PARENT = DesiredPort("parent-port", "net-a", MAC_P, ("10.1.0.5",))
SUB = DesiredPort("sub-port-000", "net-b", MAC_S, ("10.2.0.5",))
PEER_A = DesiredPort("peer-a-port", "net-a", MAC_PEER_A, ("10.1.0.6",))
PEER_B = DesiredPort("peer-b-port", "net-b", MAC_PEER_B, ("10.2.0.6",))
SPT, SPI = trunk_port_names(SUB.id)


def desired(subports=((SUB.id, 101),), ports=(PARENT, SUB, PEER_A, PEER_B)) -> DesiredHost:
    return DesiredHost(networks=(NET_A, NET_B), ports=tuple(ports), trunks=(DesiredTrunk(PARENT.id, tuple(subports)),))


def host() -> FakeFlowTable:
    # The instance's interface is the parent's VIF; the subport has no device of its own.
    return make_host(*((p.id, p.mac) for p in (PARENT, PEER_A, PEER_B)))


def tagged(pkt: Packet, vlan: int) -> Packet:
    return replace(pkt, vlan=vlan)


def test_subport_traffic_goes_through_the_parent_tagged() -> None:
    fake = host()
    p = converge(fake, CFG, desired())
    assert p.port_status == {PARENT.id: "ACTIVE", SUB.id: "ACTIVE", PEER_A.id: "ACTIVE", PEER_B.id: "ACTIVE"}
    vif, peer = fake.port(SPT), fake.port(SPI)
    assert (vif.type, vif.iface_id, vif.attached_mac, vif.options["peer"]) == ("patch", SUB.id, MAC_S, SPI)
    assert (peer.tag, peer.vlan_mode) == (t.DEAD_VLAN, "access")  # NORMAL never outputs to it
    assert vif.tag == p.local_vlans["net-b"]
    # Tagged 101 from the instance: the subport's (network B), untagged there.
    outs = fake.outputs("br-int", tagged(arp_request(MAC_S, "10.2.0.5", "10.2.0.6"), 101), in_port=tap(PARENT.id))
    assert [(o.port, o.packet.vlan) for o in outs] == [(tap(PEER_B.id), None)]
    # Untagged from the instance: the parent's (network A).
    outs = fake.outputs("br-int", arp_request(MAC_P, "10.1.0.5", "10.1.0.6"), in_port=tap(PARENT.id))
    assert [(o.port, o.packet.vlan) for o in outs] == [(tap(PEER_A.id), None)]
    # Network B's broadcast reaches the instance tagged 101, network A's untagged.
    outs = fake.outputs("br-int", arp_request(MAC_PEER_B, "10.2.0.6", "10.2.0.5"), in_port=tap(PEER_B.id))
    assert [(o.port, o.packet.vlan) for o in outs] == [(tap(PARENT.id), 101)]
    outs = fake.outputs("br-int", ipv4(MAC_PEER_B, MAC_S, "10.2.0.6", "10.2.0.5"), in_port=tap(PEER_B.id))
    assert [(o.port, o.packet.vlan) for o in outs] == [(tap(PARENT.id), 101)]
    outs = fake.outputs("br-int", arp_request(MAC_PEER_A, "10.1.0.6", "10.1.0.5"), in_port=tap(PEER_A.id))
    assert [(o.port, o.packet.vlan) for o in outs] == [(tap(PARENT.id), None)]


def test_other_vlans_and_spoofed_subport_frames_go_nowhere() -> None:
    fake = host()
    converge(fake, CFG, desired())
    arp = arp_request(MAC_S, "10.2.0.5", "10.2.0.6")
    assert fake.outputs("br-int", tagged(arp, 102), in_port=tap(PARENT.id)) == []
    # The subport is anti-spoofed like any VIF: its own MAC and address only.
    spoofed = ipv4(MAC_S, MAC_PEER_B, "10.2.0.99", "10.2.0.6")
    assert fake.outputs("br-int", tagged(spoofed, 101), in_port=tap(PARENT.id)) == []
    good = ipv4(MAC_S, MAC_PEER_B, "10.2.0.5", "10.2.0.6")
    assert [o.port for o in fake.outputs("br-int", tagged(good, 101), in_port=tap(PARENT.id))] == [tap(PEER_B.id)]


class _Recorder:
    """A firewall provider that records the ports it is asked about (and adds no flow)."""

    provides_anti_spoofing = True

    def __init__(self) -> None:
        self.ports: list = []

    def flows(self, bridge, ports):
        self.ports = list(ports)
        return []


def test_the_firewall_sees_the_subport_as_its_own_vif() -> None:
    fake = host()
    converge(fake, CFG, desired())
    fw = _Recorder()
    p = plan(CFG, desired(), fake.observed(), {"net-a": 1, "net-b": 2}, fw)
    sub = [w for w in fw.ports if w.port.id == SUB.id]
    assert [(w.name, w.lvid, w.ofport) for w in sub] == [(SPT, p.local_vlans["net-b"], fake.port(SPT).ofport)]
    assert SUB.id in {w.port.id for w in p.wired}


def test_removing_a_subport_removes_its_patch_pair_and_stops_its_traffic() -> None:
    fake = host()
    converge(fake, CFG, desired())
    p = converge(fake, CFG, desired(subports=()))
    names = {port.name for port in fake.observed().bridges["br-int"].ports}
    assert SPT not in names and SPI not in names
    assert p.port_status[SUB.id] == "DOWN"
    arp = arp_request(MAC_S, "10.2.0.5", "10.2.0.6")
    assert fake.outputs("br-int", tagged(arp, 101), in_port=tap(PARENT.id)) == []


def test_no_patch_pair_while_the_parent_is_not_wired() -> None:
    fake = make_host(*((p.id, p.mac) for p in (PEER_A, PEER_B)))  # no instance on the parent yet
    p = converge(fake, CFG, desired())
    names = {port.name for port in fake.observed().bridges["br-int"].ports}
    assert SPT not in names and SPI not in names
    assert (p.port_status[PARENT.id], p.port_status[SUB.id]) == ("DOWN", "DOWN")


def test_a_new_subport_vif_starts_dead() -> None:
    fake = host()
    converge(fake, CFG, desired(subports=()))
    first = plan(CFG, desired(), fake.observed(), {"net-a": 1, "net-b": 2})
    made = {op.name: op for op in first.ovsdb_ops if getattr(op, "name", "") in (SPT, SPI)}
    assert (made[SPT].tag, made[SPT].vlan_mode, made[SPT].trunks) == (t.DEAD_VLAN, "trunk", (t.DEAD_VLAN,))
    assert first.port_status[SUB.id] == "DOWN"


def test_derive_reads_trunk_details_of_this_hosts_parents() -> None:
    def port(pid, host="compute1", **kw):
        return {
            "id": pid,
            "network_id": "net-a",
            "mac_address": MAC_P,
            "binding:host_id": host,
            "binding:vif_type": "ovs",
            "fixed_ips": [],
            **kw,
        }

    details = {
        "trunk_id": "t1",
        "sub_ports": [
            {"port_id": "s2", "segmentation_type": "vlan", "segmentation_id": 200, "mac_address": MAC_S},
            {"port_id": "s1", "segmentation_type": "vlan", "segmentation_id": 100, "mac_address": MAC_S},
            {"port_id": "s3", "segmentation_type": "vlan", "segmentation_id": "7; drop", "mac_address": MAC_S},
            {"port_id": "s4", "segmentation_type": "vlan", "segmentation_id": 4095, "mac_address": MAC_S},
        ],
    }
    ports = {"p": port("p", trunk_details=details), "q": port("q", host="elsewhere", trunk_details=details)}
    d = derive.desired_host(CFG, ports, {"net-a": {"id": "net-a"}}, {})
    assert d.trunks == (DesiredTrunk("p", (("s1", 100), ("s2", 200))),)
