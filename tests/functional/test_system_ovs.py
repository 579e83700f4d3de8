"""neutrino.system.ovsdb + openflow (+ testing.openflow) against a private userspace OVS in a namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino.system import errors, iproute, process
from neutrino.system.oftext import Flow, canonical_match
from neutrino.system.ovsdb import (
    AddBridge,
    AddPort,
    ClearColumns,
    DelBridge,
    DelPort,
    Ovs,
    PrivateOvs,
    RemoveKeys,
    SetPort,
)
from neutrino.system.ovsdb_monitor import OvsdbMonitor
from neutrino.testing.openflow import OpenFlowTool, parse_flow_mod, sort_flows

pytestmark = pytest.mark.root

GOLDEN = Path(__file__).parent.parent / "golden"
PROTOCOLS = ("OpenFlow10", "OpenFlow13")


def _ops() -> list:
    return [
        AddBridge(
            "br-int",
            datapath_type="netdev",
            fail_mode="secure",
            protocols=PROTOCOLS,
            other_config={"mac-table-size": "50000"},
        ),
        AddBridge("br-tun", datapath_type="netdev", fail_mode="secure", protocols=PROTOCOLS),
        AddPort("br-int", "patch-tun", type="patch", options={"peer": "patch-int"}),
        AddPort("br-tun", "patch-int", type="patch", options={"peer": "patch-tun"}),
        AddPort(
            "br-int",
            "tapa",
            type="internal",
            tag=4095,
            vlan_mode="trunk",
            trunks=(4095,),
            external_ids={"iface-id": "port-a", "attached-mac": "fa:16:3e:00:00:0a", "iface-status": "active"},
            other_config={"net_uuid": "net-1"},
        ),
        AddPort(
            "br-tun",
            "vxlan-c0a86302",
            type="vxlan",
            options={"remote_ip": "192.168.99.2", "local_ip": "192.168.99.1", "in_key": "flow", "out_key": "flow"},
        ),
    ]


def test_private_instance_is_isolated_and_restartable(tmp_path: Path, netns: str) -> None:
    inst = PrivateOvs(tmp_path / "ovs", netns)
    try:
        ovs = inst.start()
        assert inst.alive() and len(inst.pids()) == 2
        assert inst.start() is ovs  # idempotent
        assert (tmp_path / "ovs" / "db.sock").exists()
        ovs.transact([AddBridge("br-x", datapath_type="netdev")])
        # The bridge's tap lives in OUR namespace, not the root one.
        assert iproute.get_link("br-x", netns=netns) is not None
        assert iproute.get_link("br-x") is None
        assert (tmp_path / "ovs" / "br-x.mgmt").exists()
        old = inst.pids()
        inst.restart_vswitchd()
        assert inst.pids()[0] != old[0] and ovs.bridges() == ["br-x"]
    finally:
        inst.destroy()
    assert not inst.alive() and not (tmp_path / "ovs").exists()
    inst.destroy()  # idempotent


def test_transaction_observe_and_idempotence(private_ovs: Ovs) -> None:
    ovs = private_ovs
    ovs.transact(_ops())
    state = ovs.observe()
    cfg = ovs.next_cfg()
    assert set(state.bridges) == {"br-int", "br-tun"}
    br = state.bridges["br-int"]
    assert (br.datapath_type, br.fail_mode, br.protocols) == ("netdev", "secure", PROTOCOLS)
    assert br.other_config == {"mac-table-size": "50000"}
    tapa = state.ports["tapa"]
    assert (tapa.bridge, tapa.tag, tapa.vlan_mode, tapa.trunks) == ("br-int", 4095, "trunk", (4095,))
    assert tapa.iface.external_ids["attached-mac"] == "fa:16:3e:00:00:0a"
    assert tapa.other_config == {"net_uuid": "net-1"}
    assert tapa.ofport is not None and tapa.ofport > 0  # transact waited for vswitchd
    assert state.ports["vxlan-c0a86302"].iface.options["in_key"] == "flow"
    assert state.ports["vxlan-c0a86302"].iface.error is None

    # The same op list again: nothing changes, not even next_cfg.
    ovs.transact(_ops())
    assert ovs.observe() == state
    assert ovs.next_cfg() == cfg

    # Bind the port (Neutron's port_bound), drop a key, then delete things twice.
    ovs.transact(
        [
            SetPort("tapa", tag=1),
            ClearColumns("Port", "tapa", ("vlan_mode", "trunks")),
            RemoveKeys("Port", "tapa", "other_config", ("net_uuid", "missing")),
        ]
    )
    tapa = ovs.observe().ports["tapa"]
    assert (tapa.tag, tapa.vlan_mode, tapa.trunks, tapa.other_config) == (1, None, (), {})
    for _ in range(2):
        ovs.transact([DelPort("tapa"), DelPort("nope"), DelBridge("br-gone")])
    assert "tapa" not in ovs.observe().ports
    assert ovs.ports("br-tun")[0].bridge == "br-tun"
    assert ovs.get("Bridge", "br-int", "fail_mode") == "secure"


def test_transaction_is_all_or_nothing(private_ovs: Ovs) -> None:
    ovs = private_ovs
    ovs.transact([AddBridge("br-int", datapath_type="netdev")])
    before = ovs.observe()
    with pytest.raises(errors.BridgeNotFound):
        ovs.transact([AddPort("br-int", "p1"), AddPort("br-nope", "p2")])
    assert ovs.observe() == before
    ovs.transact([AddBridge("br-tun", datapath_type="netdev"), AddPort("br-int", "p1")])
    with pytest.raises(errors.RecordExists):
        ovs.transact([AddPort("br-tun", "p1")])  # on another bridge: no silent move
    with pytest.raises(errors.OvsdbUnreachable):
        Ovs(Path("/nonexistent-neutrino"), ovs.netns, timeout=1).bridges()


def test_flows_round_trip_and_canonical_text(private_ovs: Ovs) -> None:
    """Flows written as OVS prints them come back equal; golden non-canonical inputs
    are canonicalised exactly as this OVS does."""
    ovs = private_ovs
    ovs.transact(
        [
            AddBridge("br-misc", datapath_type="netdev", fail_mode="secure", protocols=PROTOCOLS),
            AddPort("br-misc", "m1", type="internal"),
            AddPort("br-misc", "m2", type="internal"),
        ]
    )
    of = OpenFlowTool(ovs)
    rows = [ln.split("\t")[0] for ln in (GOLDEN / "ofctl-canonical.tsv").read_text().splitlines()]
    written = [parse_flow_mod(r) for r in rows]
    of.apply("br-misc", add=written)
    dumped = of.dump("br-misc")
    assert {f.key for f in dumped} == {f.key for f in written}
    # Flows re-applied from their dumped form: the table is unchanged.
    of.apply("br-misc", add=dumped)
    assert sort_flows(of.dump("br-misc")) == sort_flows(dumped)
    named = of.dump("br-misc", table=40, names=True)
    assert any(f.match.startswith("in_port=m1") or "in_port=m2" in f.match for f in named)
    assert canonical_match("dl_vlan=5,in_port=m2") == "in_port=m2,dl_vlan=5"


def test_bundle_is_atomic(private_ovs: Ovs) -> None:
    ovs = private_ovs
    ovs.transact([AddBridge("br-int", datapath_type="netdev", fail_mode="secure", protocols=PROTOCOLS)])
    of = OpenFlowTool(ovs)
    base = [Flow(0, 0, "", "NORMAL", cookie=0x10), Flow(23, 0, "", "drop", cookie=0x10)]
    of.apply("br-int", add=base)
    before = sort_flows(of.dump("br-int"))
    assert before == sort_flows(base)

    good = Flow(9, 5, "arp", "drop", cookie=0x10)
    # The switch rejects the second flow (no group 99): the first is not installed either.
    with pytest.raises(errors.FlowRejected):
        of.apply("br-int", add=[good, Flow(9, 6, "ip", "group:99")], delete=[base[1]])
    assert sort_flows(of.dump("br-int")) == before
    # ovs-ofctl itself rejects a syntax error before anything reaches the switch.
    with pytest.raises(errors.FlowSyntaxError):
        of.apply("br-int", add=[good, Flow(9, 7, "ip", "dropx")])
    assert sort_flows(of.dump("br-int")) == before
    with pytest.raises(errors.SwitchUnreachable):
        of.dump("br-nope")


def test_cookie_replace_and_stale_cleanup(private_ovs: Ovs) -> None:
    ovs = private_ovs
    ovs.transact([AddBridge("br-int", datapath_type="netdev", fail_mode="secure", protocols=PROTOCOLS)])
    of = OpenFlowTool(ovs)
    old = [Flow(0, 0, "", "NORMAL"), Flow(0, 2, "in_port=5", "drop"), Flow(24, 0, "", "drop")]
    of.replace_cookie_flows("br-int", 0xA, old)
    foreign = Flow(30, 1, "ip", "drop", cookie=0xF)
    of.apply("br-int", add=[foreign])
    assert {f.cookie for f in of.dump("br-int")} == {0xA, 0xF}

    # A resync with a new cookie: same (table, priority, match) flows get the new cookie,
    # new ones appear, and the old cookie's leftovers are cleaned up afterwards.
    new = [Flow(0, 0, "", "NORMAL"), Flow(0, 3, "in_port=6,dl_vlan=150", "set_field:4098->vlan_vid,NORMAL")]
    of.replace_cookie_flows("br-int", 0xB, new)
    stale = of.delete_flows_except_cookie("br-int", 0xB, keep=[0xF])
    assert sorted(f.key for f in stale) == [(0, 2, "in_port=5"), (24, 0, "")]
    assert sort_flows(of.dump("br-int")) == sort_flows([f.with_cookie(0xB) for f in new] + [foreign])
    assert of.delete_flows_except_cookie("br-int", 0xB, keep=[0xF]) == []

    # apply(): add + delete in one bundle.
    of.apply("br-int", add=[Flow(0, 0, "", "drop", cookie=0xB)], delete=[foreign])
    assert sort_flows(of.dump("br-int")) == sort_flows([Flow(0, 0, "", "drop", cookie=0xB), new[1].with_cookie(0xB)])
    of.replace_flows("br-int", [Flow(0, 0, "", "NORMAL")])
    assert of.dump("br-int") == [Flow(0, 0, "", "NORMAL")]
    trace = of.trace("br-int", "in_port=LOCAL,dl_dst=ff:ff:ff:ff:ff:ff")
    assert "NORMAL" in trace.text
    of.delete_all("br-int")
    assert of.dump("br-int") == []


def test_vswitchd_restart_loses_flows_keeps_ports(tmp_path: Path, netns: str) -> None:
    inst = PrivateOvs(tmp_path / "ovs", netns)
    try:
        ovs = inst.start()
        ovs.transact(
            [
                AddBridge("br-int", datapath_type="netdev", fail_mode="secure", protocols=PROTOCOLS),
                AddPort("br-int", "t1", type="internal"),
            ]
        )
        of = OpenFlowTool(ovs)
        of.apply("br-int", add=[Flow(23, 0, "", "drop")])
        ofport = ovs.observe().ports["t1"].ofport
        old_pid = process.pid_of(inst.vswitchd)
        inst.restart_vswitchd()
        assert process.pid_of(inst.vswitchd) != old_pid
        assert of.dump("br-int") == []  # the canary is gone: an agent must resync
        assert ovs.observe().ports["t1"].ofport == ofport
    finally:
        inst.destroy()


def test_monitor_mirrors_ovsdb_and_applies_column_updates(tmp_path: Path, netns: str) -> None:
    """The OVSDB monitor's state is what ``ovs-vsctl list`` shows, after every kind of
    change; its transactions wait for ovs-vswitchd; it reports a lost server."""
    inst = PrivateOvs(tmp_path / "ovs", netns)
    mon = None
    try:
        ovs = inst.start()
        mon = OvsdbMonitor(ovs).start()
        ovs.transact(_ops())
        assert mon.state() == ovs.observe()
        gen = mon.generation
        mon.transact(
            [SetPort("tapa", tag=7, other_config={"tag": "7"}), ClearColumns("Port", "tapa", ("vlan_mode", "trunks"))]
        )
        tapa = mon.state().ports["tapa"]
        assert (tapa.tag, tapa.vlan_mode, tapa.trunks) == (7, None, ())
        assert tapa.other_config == {"net_uuid": "net-1", "tag": "7"}
        assert mon.changes_since(gen) == {("Port", "tapa")}
        assert mon.state() == ovs.observe()
        assert int(ovs.vsctl("get", "Open_vSwitch", ".", "cur_cfg")) == ovs.next_cfg()  # waited for vswitchd
        with pytest.raises(errors.PortNotFound):
            mon.transact([SetPort("tapa", tag=8), SetPort("nope", tag=8)])
        assert mon.state().ports["tapa"].tag == 7
        ovs.transact([AddPort("br-int", "tapb", type="internal"), DelPort("vxlan-c0a86302")])
        state = mon.state()
        assert state == ovs.observe() and state.ports["tapb"].ofport > 0
        assert state.ports["tapa"] is mon.state().ports["tapa"]
        inst.stop()
        with pytest.raises(errors.OvsdbUnreachable):
            mon.state()
        assert not mon.alive
    finally:
        if mon is not None:
            mon.close()
        inst.destroy()
