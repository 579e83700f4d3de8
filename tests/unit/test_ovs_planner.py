"""OVS agent planner: behaviour asserted on a fake OVS pipeline (no flow-list comparisons).

Each test builds one host's OVS in ``FakeFlowTable`` (bridges + VIF ports the
way os-vif plugs them), runs the planner until it converges, and then asks
where packets go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import pytest

from neutrino.agents.ovs import tables as t
from neutrino.agents.ovs.flows import lla
from neutrino.agents.ovs.model import (
    FLOODING_IP,
    FLOODING_MAC,
    AgentConfig,
    DesiredHost,
    DesiredNetwork,
    DesiredPort,
    EnsureBridge,
    EnsurePatch,
    EnsureTunnelPort,
    FdbEntry,
    FlowSpec,
    ObservedBridge,
    ObservedPort,
    ObservedState,
    Plan,
    RemovePort,
    SetPortTag,
    TunnelPeer,
    WiredPort,
)
from neutrino.agents.ovs.planner import (
    local_vlans_from_observed,
    patch_port_names,
    plan,
    tunnel_port_name,
)
from neutrino.fakes.flowtable import (
    FakeFlowTable,
    Output,
    Packet,
    arp_request,
    dhcp_discover,
    ethernet,
    icmp6,
    ipv4,
    ipv6,
)

LOCAL_IP = "192.168.100.11"
PEER2, PEER3 = "192.168.100.12", "192.168.100.13"
VX2, VX3 = "vxlan-c0a8640c", "vxlan-c0a8640d"

NET_X = DesiredNetwork("net-x", "vxlan", None, 100, 1450)
NET_Y = DesiredNetwork("net-y", "vxlan", None, 200, 1450)
NET_V = DesiredNetwork("net-v", "vlan", "physnet1", 101, 1500)
NET_F = DesiredNetwork("net-f", "flat", "physnet1", None, 1500)

MAC_A, MAC_B, MAC_C = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b", "fa:16:3e:00:00:0c"
MAC_V, MAC_F, MAC_U = "fa:16:3e:00:00:0d", "fa:16:3e:00:00:0e", "fa:16:3e:00:00:0f"
PORT_A = DesiredPort("port-a", "net-x", MAC_A, ("10.0.0.10",))
PORT_B = DesiredPort("port-b", "net-x", MAC_B, ("10.0.0.11",))
PORT_C = DesiredPort("port-c", "net-y", MAC_C, ("10.1.0.12",))
PORT_V = DesiredPort("port-v", "net-v", MAC_V, ("10.2.0.5",))
PORT_F = DesiredPort("port-f", "net-f", MAC_F, ("10.3.0.5",))
AAP_MAC = "fa:16:3e:99:99:99"
#: A port-security port with a dual-stack address and three kinds of address pairs.
GUARDED = DesiredPort(
    "port-g",
    "net-x",
    MAC_A,
    ("10.0.0.10", "2001:db8::10"),
    allowed_address_pairs=((None, "10.0.0.100"), (AAP_MAC, "10.0.0.200"), (None, "192.168.50.0/24")),
)

CFG = AgentConfig(host="compute1", bridge_mappings={"physnet1": "br-ex"}, local_ip=LOCAL_IP, tunnel_types=("vxlan",))
L2POP = replace(CFG, l2_population=True, arp_responder=True)


def tap(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def make_host(*vifs: tuple[str, str], datapath: str = "system") -> FakeFlowTable:
    """br-int with the given (port id, mac) VIFs plugged like os-vif, br-ex with eth1."""
    fake = FakeFlowTable()
    fake.add_bridge("br-int", datapath)
    fake.add_bridge("br-ex", datapath)
    fake.add_port("br-ex", "eth1")
    for port_id, mac in vifs:
        fake.add_port("br-int", tap(port_id), iface_id=port_id, attached_mac=mac)
    return fake


def converge(
    fake: FakeFlowTable,
    cfg: AgentConfig,
    desired: DesiredHost,
    local_vlans: Mapping[str, int] | None = None,
    rounds: int = 6,
) -> Plan:
    """Plan and apply until a pass has no OVSDB ops and changes no flow; return that pass."""
    lvids = dict(local_vlans) if local_vlans is not None else local_vlans_from_observed(fake.observed())
    for _ in range(rounds):
        before = fake.observed()
        p = plan(cfg, desired, before, lvids)
        fake.apply(p)
        lvids = p.local_vlans
        if not p.ovsdb_ops and all(before.flows.get(b) == f for b, f in p.flows.items()):
            return p
    raise AssertionError(f"no convergence in {rounds} rounds")


def standard_desired(fdb: Sequence[FdbEntry] = (), extra_ports: Sequence[DesiredPort] = ()) -> DesiredHost:
    """Networks X, Y (VXLAN), V (VLAN 101), F (flat); ports A, B on X, C on Y, V, F."""
    return DesiredHost(
        networks=(NET_X, NET_Y, NET_V, NET_F),
        ports=(PORT_A, PORT_B, PORT_C, PORT_V, PORT_F, *extra_ports),
        tunnel_peers=(TunnelPeer("compute1", LOCAL_IP), TunnelPeer("compute2", PEER2), TunnelPeer("net1", PEER3)),
        fdb=tuple(fdb),
    )


def standard_host(
    cfg: AgentConfig = CFG, fdb: Sequence[FdbEntry] = (), extra_ports: Sequence[DesiredPort] = ()
) -> tuple[FakeFlowTable, Plan]:
    desired = standard_desired(fdb, extra_ports)
    fake = make_host(*((p.id, p.mac) for p in desired.ports))
    return fake, converge(fake, cfg, desired)


def by_port(outs: Iterable[Output]) -> dict[str, Packet]:
    result: dict[str, Packet] = {}
    for o in outs:
        assert o.port not in result, f"{o.port} got the packet twice"
        result[o.port] = o.packet
    return result


def broadcast(mac: str) -> Packet:
    return ethernet(mac, "ff:ff:ff:ff:ff:ff")


# --- L2 switching and isolation --------------------------------------------------------
def test_broadcast_reaches_same_network_only() -> None:
    fake, _ = standard_host()
    outs = by_port(fake.outputs("br-int", broadcast(MAC_A), in_port=tap("port-a")))
    assert set(outs) == {tap("port-b"), VX2, VX3}
    assert outs[tap("port-b")].vlan is None  # access port: untagged
    for vx in (VX2, VX3):
        assert outs[vx].tun_id == 100 and outs[vx].vlan is None
    # and the other network is isolated the other way round too
    outs_c = by_port(fake.outputs("br-int", broadcast(MAC_C), in_port=tap("port-c")))
    assert set(outs_c) == {VX2, VX3}
    assert {p.tun_id for p in outs_c.values()} == {200}


def test_ports_get_their_networks_local_vlan() -> None:
    fake, p = standard_host()
    assert p.local_vlans == {"net-f": 1, "net-v": 2, "net-x": 3, "net-y": 4}
    port = fake.port(tap("port-a"))
    assert (port.tag, port.vlan_mode, port.trunks) == (3, None, ())
    assert port.other_config == {
        "net_uuid": "net-x",
        "network_type": "vxlan",
        "physical_network": "None",
        "segmentation_id": "100",
        "tag": "3",
    }
    assert p.port_status == {i: "ACTIVE" for i in ("port-a", "port-b", "port-c", "port-v", "port-f")}


def test_vlan_provider_egress_is_tagged_with_segmentation_id() -> None:
    fake, _ = standard_host()
    outs = by_port(fake.outputs("br-int", broadcast(MAC_V), in_port=tap("port-v")))
    assert set(outs) == {"eth1"}
    assert outs["eth1"].vlan == 101


def test_flat_provider_egress_is_untagged() -> None:
    fake, _ = standard_host()
    outs = by_port(fake.outputs("br-int", broadcast(MAC_F), in_port=tap("port-f")))
    assert set(outs) == {"eth1"}
    assert outs["eth1"].vlan is None


def test_provider_ingress_is_translated_to_the_local_vlan() -> None:
    fake, _ = standard_host()
    tagged = replace(broadcast("52:54:00:00:00:01"), vlan=101)
    outs = by_port(fake.outputs("br-ex", tagged, in_port="eth1"))
    assert set(outs) == {tap("port-v")}
    assert outs[tap("port-v")].vlan is None
    untagged = broadcast("52:54:00:00:00:01")
    assert fake.reaches("br-ex", untagged, in_port="eth1") == {tap("port-f")}
    # an unknown VLAN from the physical network stops at br-int
    assert fake.reaches("br-ex", replace(tagged, vlan=999), in_port="eth1") == set()


def test_tunnel_ingress_reaches_the_vni_network_and_learns() -> None:
    fake, _ = standard_host()
    remote = "fa:16:3e:77:77:77"
    pkt = replace(broadcast(remote), tun_id=100)
    outs = by_port(fake.outputs("br-tun", pkt, in_port=VX2))
    assert set(outs) == {tap("port-a"), tap("port-b")}
    assert all(p.vlan is None for p in outs.values())
    assert fake.reaches("br-tun", replace(pkt, tun_id=999), in_port=VX2) == set()
    # table 10 learned where `remote` lives: unicast to it now goes to VX2 only
    reply = ipv4(MAC_A, remote, "10.0.0.10", "10.0.0.77")
    outs = by_port(fake.outputs("br-int", reply, in_port=tap("port-a")))
    assert set(outs) == {tap("port-b"), VX2}  # NORMAL (no learning in the fake) + tunnel
    assert outs[VX2].tun_id == 100
    learned = fake.learned_flows("br-tun")
    assert [f.text for f in learned] == [
        (
            "table=20, priority=1,vlan_tci=0x0003/0x0fff,dl_dst=fa:16:3e:77:77:77 "
            "actions=load:0->NXM_OF_VLAN_TCI[],load:0x64->NXM_NX_TUN_ID[],"
            f"output:{fake.port(VX2).ofport}"
        )
    ]


def test_local_network_switches_on_the_host_only() -> None:
    net = DesiredNetwork("net-l", "local")
    p1 = DesiredPort("port-l1", "net-l", "fa:16:3e:00:01:01", ("10.9.0.1",))
    p2 = DesiredPort("port-l2", "net-l", "fa:16:3e:00:01:02", ("10.9.0.2",))
    fake = make_host((p1.id, p1.mac), (p2.id, p2.mac))
    converge(fake, CFG, DesiredHost((net,), (p1, p2), (TunnelPeer("c2", PEER2),)))
    assert fake.reaches("br-int", broadcast(p1.mac), in_port=tap(p1.id)) == {tap(p2.id)}


# --- dead ports and status -------------------------------------------------------------
def test_unknown_vif_is_put_on_the_dead_vlan_and_isolated() -> None:
    fake = make_host((PORT_A.id, MAC_A), (PORT_B.id, MAC_B), ("stranger", MAC_U))
    desired = DesiredHost((NET_X,), (PORT_A, PORT_B))
    p = converge(fake, CFG, desired)
    port = fake.port(tap("stranger"))
    assert (port.tag, port.vlan_mode, port.trunks) == (4095, "trunk", (4095,))
    assert fake.reaches("br-int", broadcast(MAC_U), in_port=tap("stranger")) == set()
    assert tap("stranger") not in fake.reaches("br-int", broadcast(MAC_A), in_port=tap(PORT_A.id))
    assert "stranger" not in p.port_status


def test_admin_down_port_is_dead_and_down() -> None:
    down = replace(PORT_B, admin_state_up=False)
    fake = make_host((PORT_A.id, MAC_A), (PORT_B.id, MAC_B))
    p = converge(fake, CFG, DesiredHost((NET_X,), (PORT_A, down)))
    assert p.port_status == {"port-a": "ACTIVE", "port-b": "DOWN"}
    assert fake.port(tap("port-b")).tag == 4095
    assert fake.reaches("br-int", broadcast(MAC_B), in_port=tap("port-b")) == set()
    assert tap("port-b") not in fake.reaches("br-int", broadcast(MAC_A), in_port=tap("port-a"))
    # admin up again: wired on the same local VLAN as its neighbour
    p = converge(fake, CFG, DesiredHost((NET_X,), (PORT_A, PORT_B)), p.local_vlans)
    assert p.port_status["port-b"] == "ACTIVE"
    assert fake.reaches("br-int", broadcast(MAC_B), in_port=tap("port-b")) == {tap("port-a")}


def test_status_down_until_plugged_and_while_ofport_unknown() -> None:
    fake = make_host((PORT_A.id, MAC_A))
    fake.add_port("br-int", tap("port-b"), iface_id="port-b", attached_mac=MAC_B, ofport=-1)
    p = converge(fake, CFG, DesiredHost((NET_X,), (PORT_A, PORT_B, PORT_C)))
    assert p.port_status == {"port-a": "ACTIVE", "port-b": "DOWN", "port-c": "DOWN"}
    assert fake.port(tap("port-b")).tag is None  # not ready: left alone


def test_network_this_host_cannot_provision_leaves_ports_dead() -> None:
    net = DesiredNetwork("net-z", "vlan", "physnet9", 300)
    port = DesiredPort("port-z", "net-z", "fa:16:3e:00:00:99")
    fake = make_host((port.id, port.mac))
    p = converge(fake, CFG, DesiredHost((net,), (port,)))
    assert p.port_status == {"port-z": "DOWN"}
    assert fake.port(tap("port-z")).tag == 4095
    assert any("net-z" in w for w in p.warnings)


# --- local VLANs -----------------------------------------------------------------------
def test_local_vlans_stable_lowest_free_and_reclaimed() -> None:
    fake, p = standard_host()
    assert p.local_vlans["net-x"] == 3
    # net-v loses its last port: its VLAN 2 is freed, the others keep theirs
    fake.del_port(tap("port-v"))
    desired = DesiredHost((NET_X, NET_Y, NET_V, NET_F), (PORT_A, PORT_B, PORT_C, PORT_F))
    p = converge(fake, CFG, desired, p.local_vlans)
    assert p.local_vlans == {"net-f": 1, "net-x": 3, "net-y": 4}
    assert fake.reaches("br-ex", replace(broadcast("52:54:00:00:00:01"), vlan=101), in_port="eth1") == set()
    assert not any(f.match.endswith("dl_vlan=2") for f in fake.flows("br-ex"))
    # a new network takes the lowest free id
    net_n = DesiredNetwork("net-n", "vxlan", None, 300)
    port_n = DesiredPort("port-n", "net-n", "fa:16:3e:00:00:33")
    fake.add_port("br-int", tap("port-n"), iface_id="port-n", attached_mac=port_n.mac)
    desired = replace(desired, networks=desired.networks + (net_n,), ports=desired.ports + (port_n,))
    p = converge(fake, CFG, desired, p.local_vlans)
    assert p.local_vlans == {"net-f": 1, "net-n": 2, "net-x": 3, "net-y": 4}


def test_local_vlans_survive_an_agent_restart() -> None:
    fake, p = standard_host()
    recovered = local_vlans_from_observed(fake.observed())
    assert recovered == p.local_vlans
    # a restarted agent (no memory) plans nothing new
    again = plan(CFG, standard_desired(), fake.observed(), recovered)
    assert again.ovsdb_ops == []
    assert again.local_vlans == p.local_vlans


def test_local_vlans_from_observed_skips_dead_and_conflicting_ports() -> None:
    def port(name: str, net: str, tag: int, actual: int | None) -> ObservedPort:
        return ObservedPort(name, 5, name, MAC_A, actual, {"net_uuid": net, "tag": str(tag)})

    br = ObservedBridge(
        "br-int",
        ports=(
            port("tap1", "n1", 7, 7),
            port("tap2", "n1", 8, 8),  # n1 already has 7
            port("tap3", "n2", 7, 7),  # 7 already taken
            port("tap4", "n3", 9, 4095),  # dead: its record is stale
            port("tap5", "n4", 10, 10),
            ObservedPort("tap6", 6, "x", MAC_A, 11, {"net_uuid": "n5", "tag": "junk"}),
        ),
    )
    assert local_vlans_from_observed(ObservedState({"br-int": br})) == {"n1": 7, "n4": 10}


# --- convergence -----------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [CFG, L2POP], ids=["mesh", "l2pop"])
def test_plan_is_idempotent_once_applied(cfg: AgentConfig) -> None:
    fdb = (FdbEntry("net-x", PEER2, FLOODING_MAC, FLOODING_IP), FdbEntry("net-x", PEER2, MAC_U, "10.0.0.99"))
    fake, final = standard_host(cfg, fdb, extra_ports=(replace(GUARDED, id="port-g2"),))
    desired = standard_desired(fdb, extra_ports=(replace(GUARDED, id="port-g2"),))
    observed = fake.observed()
    again = plan(cfg, desired, observed, final.local_vlans)
    assert again.ovsdb_ops == []
    assert again.flows == final.flows
    assert all(observed.flows[b] == f for b, f in again.flows.items())


def test_fresh_host_converges_in_bounded_passes() -> None:
    fake = make_host((PORT_A.id, MAC_A), (PORT_V.id, MAC_V))
    desired = DesiredHost((NET_X, NET_V), (PORT_A, PORT_V), (TunnelPeer("c2", PEER2),))
    lvids: dict[str, int] = {}
    passes = []
    for _ in range(4):
        p = plan(CFG, desired, fake.observed(), lvids)
        fake.apply(p)
        lvids = p.local_vlans
        passes.append(p)
    # 1: bridges/ports; 2: flows naming new ofports; 3: connect the phys patch; 4: nothing
    assert passes[0].ovsdb_ops and passes[2].ovsdb_ops
    assert passes[3].ovsdb_ops == [] and passes[3].flows == passes[2].flows
    assert {type(op) for op in passes[0].ovsdb_ops} >= {EnsureBridge, EnsurePatch, EnsureTunnelPort, SetPortTag}


def test_physical_patch_is_connected_only_after_its_drop_flows() -> None:
    fake = make_host((PORT_V.id, MAC_V))
    desired = DesiredHost((NET_V,), (PORT_V,))
    int_patch, phy_patch = patch_port_names("br-ex")
    assert (int_patch, phy_patch) == ("int-br-ex", "phy-br-ex")
    leak = broadcast("52:54:00:00:00:01")

    p1 = plan(CFG, desired, fake.observed(), {})
    fake.apply(p1)
    assert fake.port(int_patch).options["peer"] == t.NONEXISTENT_PEER
    assert fake.port(phy_patch).options["peer"] == t.NONEXISTENT_PEER
    assert fake.reaches("br-ex", leak, in_port="eth1") == set()

    p2 = plan(CFG, desired, fake.observed(), p1.local_vlans)
    assert not any(isinstance(op, EnsurePatch) for op in p2.ovsdb_ops)
    fake.apply(p2)  # drop flows (and translation flows) installed, still unplugged

    p3 = plan(CFG, desired, fake.observed(), p2.local_vlans)
    assert {op for op in p3.ovsdb_ops if isinstance(op, EnsurePatch)} == {
        EnsurePatch("br-ex", "phy-br-ex", "int-br-ex"),
        EnsurePatch("br-int", "int-br-ex", "phy-br-ex"),
    }
    fake.apply(p3)
    assert fake.reaches("br-ex", leak, in_port="eth1") == set()  # untagged: dropped
    assert fake.reaches("br-ex", replace(leak, vlan=101), in_port="eth1") == {tap(PORT_V.id)}


def test_long_physical_bridge_names_are_shortened() -> None:
    int_name, phy_name = patch_port_names("br-provider-physnet")
    assert len(int_name) <= 15 and len(phy_name) <= 15
    assert int_name.startswith("int-br-pr") and phy_name.startswith("phy-br-pr")
    assert int_name[-6:] == phy_name[-6:]


def test_missing_physical_bridge_is_a_warning_not_an_op() -> None:
    fake = FakeFlowTable()
    fake.add_bridge("br-int")
    p = plan(CFG, DesiredHost(), fake.observed(), {})
    assert any("br-ex" in w for w in p.warnings)
    assert not any(getattr(op, "name", "") == "br-ex" or getattr(op, "bridge", "") == "br-ex" for op in p.ovsdb_ops)


def test_bridges_get_the_configured_datapath_type() -> None:
    cfg = replace(CFG, datapath_type="netdev")
    fake = make_host((PORT_A.id, MAC_A), datapath="system")
    p = plan(cfg, DesiredHost((NET_X,), (PORT_A,)), fake.observed(), {})
    ensured = {op.name: op for op in p.ovsdb_ops if isinstance(op, EnsureBridge)}
    assert set(ensured) == {"br-int", "br-ex", "br-tun"}
    assert all(op.datapath_type == "netdev" and op.fail_mode == "secure" for op in ensured.values())


# --- tunnels ---------------------------------------------------------------------------
def test_tunnel_port_names() -> None:
    assert tunnel_port_name("vxlan", "192.168.100.12") == "vxlan-c0a8640c"
    assert tunnel_port_name("gre", "10.0.0.1") == "gre-0a000001"
    v6 = tunnel_port_name("geneve", "2001:db8::1")
    assert v6.startswith("geneve-") and len(v6) == 15
    assert v6 == tunnel_port_name("geneve", "2001:db8:0::1")


def test_without_l2pop_every_peer_gets_a_port_and_stale_ports_go() -> None:
    fake, p = standard_host()
    tun = fake.observed().bridges["br-tun"]
    assert {pt.name for pt in tun.ports if pt.type == "vxlan"} == {VX2, VX3}
    assert fake.port(VX2).options["remote_ip"] == PEER2
    assert fake.port(VX2).options["local_ip"] == LOCAL_IP
    # compute2 leaves the cloud
    desired = replace(standard_desired(), tunnel_peers=(TunnelPeer("net1", PEER3),))
    p2 = plan(CFG, desired, fake.observed(), p.local_vlans)
    assert RemovePort("br-tun", VX2) in p2.ovsdb_ops
    fake.apply(p2)
    converge(fake, CFG, desired, p2.local_vlans)
    assert fake.reaches("br-int", broadcast(MAC_A), in_port=tap("port-a")) == {tap("port-b"), VX3}


def test_l2pop_floods_only_to_vteps_with_ports_on_the_network() -> None:
    fdb = (
        FdbEntry("net-x", PEER2, FLOODING_MAC, FLOODING_IP),
        FdbEntry("net-x", PEER2, "fa:16:3e:22:22:22", "10.0.0.22"),
        FdbEntry("net-z", PEER3, FLOODING_MAC, FLOODING_IP),  # not a network of ours
        FdbEntry("net-x", LOCAL_IP, FLOODING_MAC, FLOODING_IP),  # ourselves: ignored
    )
    fake, _ = standard_host(L2POP, fdb)
    tun_ports = {pt.name for pt in fake.observed().bridges["br-tun"].ports if pt.type == "vxlan"}
    assert tun_ports == {VX2}
    # not an ARP broadcast: flooded to compute2 only
    outs = by_port(fake.outputs("br-int", broadcast(MAC_A), in_port=tap("port-a")))
    assert set(outs) == {tap("port-b"), VX2}
    assert outs[VX2].tun_id == 100
    # net-y has no remote VTEP at all: nothing leaves the host
    assert fake.reaches("br-int", broadcast(MAC_C), in_port=tap("port-c")) == set()
    # a VTEP joining net-x gets a port and joins the flood list
    fdb2 = fdb + (FdbEntry("net-x", PEER3, FLOODING_MAC, FLOODING_IP),)
    converge(fake, L2POP, standard_desired(fdb2))
    assert fake.reaches("br-int", broadcast(MAC_A), in_port=tap("port-a")) == {tap("port-b"), VX2, VX3}


def test_l2pop_unicast_goes_to_the_vtep_that_owns_the_mac() -> None:
    fdb = (
        FdbEntry("net-x", PEER2, FLOODING_MAC, FLOODING_IP),
        FdbEntry("net-x", PEER3, FLOODING_MAC, FLOODING_IP),
        FdbEntry("net-x", PEER3, "fa:16:3e:33:33:33", "10.0.0.33"),
    )
    fake, _ = standard_host(L2POP, fdb)
    pkt = ipv4(MAC_A, "fa:16:3e:33:33:33", "10.0.0.10", "10.0.0.33")
    outs = by_port(fake.outputs("br-int", pkt, in_port=tap("port-a")))
    assert {p for p in outs if p.startswith("vxlan-")} == {VX3}
    assert outs[VX3].tun_id == 100 and outs[VX3].vlan is None


def test_l2pop_arp_responder_answers_locally() -> None:
    remote_mac = "fa:16:3e:22:22:22"
    fdb = (FdbEntry("net-x", PEER2, FLOODING_MAC, FLOODING_IP), FdbEntry("net-x", PEER2, remote_mac, "10.0.0.22"))
    fake, _ = standard_host(L2POP, fdb)
    outs = fake.outputs("br-int", arp_request(MAC_A, "10.0.0.10", "10.0.0.22"), in_port=tap("port-a"))
    assert VX2 not in {o.port for o in outs}  # answered, not flooded to the tunnel
    # (the fake's NORMAL floods the reply to port B too: it does not learn MACs)
    [reply] = [o.packet for o in outs if o.port == tap("port-a")]
    assert (reply.arp_op, reply.arp_sha, reply.arp_spa, reply.arp_tha, reply.arp_tpa) == (
        2,
        remote_mac,
        "10.0.0.22",
        MAC_A,
        "10.0.0.10",
    )
    assert (reply.eth_src, reply.eth_dst, reply.vlan) == (remote_mac, MAC_A, None)
    # unknown address: the request floods to the VTEPs of the network
    outs = by_port(fake.outputs("br-int", arp_request(MAC_A, "10.0.0.10", "10.0.0.50"), in_port=tap("port-a")))
    assert VX2 in outs and outs[VX2].arp_op == 1


def test_arp_responder_needs_l2pop() -> None:
    _, p = standard_host(replace(CFG, arp_responder=True))
    assert not any(f.table == t.ARP_RESPONDER for f in p.flows["br-tun"])


# --- anti-spoofing ---------------------------------------------------------------------


def guarded_host(port: DesiredPort = GUARDED) -> FakeFlowTable:
    fake = make_host((port.id, port.mac), (PORT_B.id, MAC_B))
    converge(fake, CFG, DesiredHost((NET_X,), (port, PORT_B)))
    return fake


def passes(fake: FakeFlowTable, pkt: Packet, port: str = tap("port-g")) -> bool:
    return tap("port-b") in fake.reaches("br-int", pkt, in_port=port)


def test_legitimate_traffic_passes() -> None:
    fake = guarded_host()
    assert passes(fake, ipv4(MAC_A, MAC_B, "10.0.0.10", "10.0.0.11"))
    assert passes(fake, arp_request(MAC_A, "10.0.0.10", "10.0.0.11"))
    assert passes(fake, dhcp_discover(MAC_A))
    assert passes(fake, ethernet(MAC_A, MAC_B))  # non-IP from the port's own MAC
    assert passes(fake, ipv6(MAC_A, MAC_B, "2001:db8::10", "2001:db8::11"))
    assert passes(fake, ipv6(MAC_A, MAC_B, lla(MAC_A), "fe80::1"))
    assert passes(fake, icmp6(MAC_A, "33:33:ff:00:00:10", "::", "ff02::1:ff00:10", 135, "2001:db8::10"))  # DAD
    assert passes(fake, icmp6(MAC_A, MAC_B, lla(MAC_A), "fe80::1", 136, lla(MAC_A)))
    assert passes(fake, icmp6(MAC_A, MAC_B, "2001:db8::10", "fe80::1", 136, "2001:db8::10"))


def test_spoofed_mac_ip_and_arp_are_dropped() -> None:
    fake = guarded_host()
    evil = "fa:16:3e:66:66:66"
    assert not passes(fake, ethernet(evil, MAC_B))
    assert not passes(fake, ipv4(evil, MAC_B, "10.0.0.10", "10.0.0.11"))
    assert not passes(fake, ipv4(MAC_A, MAC_B, "10.0.0.11", "10.0.0.11"))
    assert not passes(fake, arp_request(MAC_A, "10.0.0.11", "10.0.0.1"))
    assert not passes(fake, arp_request(evil, "10.0.0.10", "10.0.0.1"))
    assert not passes(fake, ipv6(MAC_A, MAC_B, "2001:db8::11", "2001:db8::1"))
    assert not passes(fake, ipv6(MAC_A, MAC_B, lla(evil), "fe80::1"))
    assert not passes(fake, icmp6(MAC_A, MAC_B, lla(MAC_A), "fe80::1", 136, "2001:db8::11"))
    assert not passes(fake, ipv4(MAC_A, MAC_B, "0.0.0.0", "10.0.0.11"))  # only DHCP from 0/32


def test_allowed_address_pairs_pass() -> None:
    fake = guarded_host()
    assert passes(fake, ipv4(MAC_A, MAC_B, "10.0.0.100", "10.0.0.11"))
    assert passes(fake, arp_request(MAC_A, "10.0.0.100", "10.0.0.11"))
    assert passes(fake, ipv4(MAC_A, MAC_B, "192.168.50.77", "10.0.0.11"))  # CIDR pair
    assert passes(fake, arp_request(MAC_A, "192.168.50.77", "10.0.0.11"))
    assert passes(fake, ipv4(AAP_MAC, MAC_B, "10.0.0.200", "10.0.0.11"))  # (mac, ip) pair
    assert passes(fake, arp_request(AAP_MAC, "10.0.0.200", "10.0.0.11"))
    assert passes(fake, ipv6(AAP_MAC, MAC_B, lla(AAP_MAC), "fe80::1"))
    # the pair's MAC is bound to the pair's IP only
    assert not passes(fake, ipv4(AAP_MAC, MAC_B, "10.0.0.10", "10.0.0.11"))
    assert not passes(fake, ipv4(MAC_A, MAC_B, "10.0.0.200", "10.0.0.11"))


def test_any_address_pair_disables_the_ipv4_source_check() -> None:
    port = replace(GUARDED, allowed_address_pairs=((None, "0.0.0.0/0"),))
    fake = guarded_host(port)
    assert passes(fake, ipv4(MAC_A, MAC_B, "203.0.113.9", "10.0.0.11"))
    assert passes(fake, arp_request(MAC_A, "203.0.113.9", "10.0.0.11"))
    assert not passes(fake, ipv4("fa:16:3e:66:66:66", MAC_B, "203.0.113.9", "10.0.0.11"))
    assert not passes(fake, ipv6(MAC_A, MAC_B, "2001:db8::99", "2001:db8::1"))


@pytest.mark.parametrize(
    "port",
    [
        replace(GUARDED, port_security_enabled=False),
        replace(GUARDED, device_owner="network:dhcp"),
    ],
    ids=["port-security-off", "trusted-owner"],
)
def test_unprotected_ports_may_send_anything(port: DesiredPort) -> None:
    fake = guarded_host(port)
    evil = "fa:16:3e:66:66:66"
    assert passes(fake, ipv4(evil, MAC_B, "10.9.9.9", "10.0.0.11"))
    assert passes(fake, arp_request(evil, "10.9.9.9", "10.0.0.11"))
    assert passes(fake, ipv6(evil, MAC_B, "2001:db8::99", "2001:db8::1"))


def test_inbound_traffic_is_not_filtered_by_anti_spoofing() -> None:
    fake = guarded_host()
    pkt = ipv4(MAC_B, MAC_A, "10.0.0.11", "10.0.0.10")
    assert tap("port-g") in fake.reaches("br-int", pkt, in_port=tap("port-b"))


# --- firewall seam ---------------------------------------------------------------------
class RecordingFirewall:
    def __init__(self, anti_spoofing: bool) -> None:
        self.anti_spoofing = anti_spoofing
        self.seen: list[WiredPort] = []

    @property
    def provides_anti_spoofing(self) -> bool:
        return self.anti_spoofing

    def flows(self, bridge: str, ports: Sequence[WiredPort]) -> Iterable[FlowSpec]:
        self.seen = list(ports)
        return [FlowSpec(bridge, t.TRANSIENT, 100, f"in_port={p.ofport}", "goto_table:71") for p in ports] + [
            FlowSpec(bridge, t.BASE_EGRESS, 0, "", "drop")
        ]


@pytest.mark.parametrize("anti_spoofing", [True, False])
def test_firewall_provider_adds_flows_and_may_replace_anti_spoofing(anti_spoofing: bool) -> None:
    fake = make_host((PORT_A.id, MAC_A), (PORT_B.id, MAC_B))
    fw = RecordingFirewall(anti_spoofing)
    p = plan(CFG, DesiredHost((NET_X,), (PORT_A, PORT_B)), fake.observed(), {}, fw)
    assert {w.port.id for w in fw.seen} == {"port-a", "port-b"}
    assert {w.lvid for w in fw.seen} == {1}
    br_int = p.flows["br-int"]
    assert FlowSpec("br-int", t.BASE_EGRESS, 0, "", "drop") in br_int
    spoof_flows = [f for f in br_int if f.table in (t.ARP_SPOOF, t.MAC_SPOOF) and f.priority]
    assert bool(spoof_flows) is not anti_spoofing


# --- fake sanity -----------------------------------------------------------------------
def test_all_planned_flows_are_understood_by_the_fake() -> None:
    fdb = (
        FdbEntry("net-x", PEER2, FLOODING_MAC, FLOODING_IP),
        FdbEntry("net-x", PEER2, "fa:16:3e:22:22:22", "10.0.0.22"),
        FdbEntry("net-x", PEER2, "fa:16:3e:22:22:22", "2001:db8::22"),
    )
    _, p = standard_host(L2POP, fdb, extra_ports=(replace(GUARDED, id="port-g2"),))
    assert set(p.flows) == {"br-int", "br-tun", "br-ex"}
    # ARP replies are IPv4 only; one unicast flow per MAC
    tun = p.flows["br-tun"]
    assert sum(f.table == t.ARP_RESPONDER and f.priority == 1 for f in tun) == 1
    assert sum(f.table == t.UCAST_TO_TUN and f.priority == 2 for f in tun) == 1


def test_a_vif_is_let_in_only_once_wired_whatever_its_tag() -> None:
    """Table 0 drops traffic of ports the agent has not wired: a VIF plugged with its
    network's local VLAN already set (vif_hint) sends nothing until its flows are in."""
    fake = make_host((PORT_A.id, MAC_A), (PORT_B.id, MAC_B))
    p = converge(fake, CFG, DesiredHost((NET_X,), (PORT_A, PORT_B)))
    lvid = p.local_vlans["net-x"]
    hinted = replace(PORT_A, id="port-h", mac=MAC_U)
    # as the compute agent plugs it: the network's local VLAN set before any pass
    fake.add_port("br-int", tap("port-h"), iface_id="port-h", attached_mac=MAC_U, tag=lvid)
    assert fake.reaches("br-int", broadcast(MAC_U), in_port=tap("port-h")) == set()
    p = converge(fake, CFG, DesiredHost((NET_X,), (PORT_A, PORT_B, hinted)), p.local_vlans)
    assert p.port_status["port-h"] == "ACTIVE"
    assert fake.reaches("br-int", broadcast(MAC_U), in_port=tap("port-h")) >= {tap("port-a"), tap("port-b")}


def test_the_hinted_vif_needs_no_ovsdb_write() -> None:
    fake = make_host((PORT_A.id, MAC_A))
    p = converge(fake, CFG, DesiredHost((NET_X,), (PORT_A,)))
    a = fake.port(tap("port-a"))
    fake.add_port(
        "br-int", tap("port-b"), iface_id="port-b", attached_mac=MAC_B, tag=a.tag, other_config=dict(a.other_config)
    )
    nxt = plan(CFG, DesiredHost((NET_X,), (PORT_A, PORT_B)), fake.observed(), p.local_vlans)
    assert nxt.ovsdb_ops == [] and nxt.port_status["port-b"] == "ACTIVE"
