"""Two simulated hosts (neutrino.testing.multihost) wired Neutron-style through neutrino.system.

One fabric for the module: h1 and h2, each with br-int / br-tun (VXLAN, VNI 100 ->
local VLAN 1) and br-phys on the fabric's physnet (VLAN 150 -> local VLAN 2,
flat -> local VLAN 3).  Captures run in the fabric namespace.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from neutrino.system import iproute, process
from neutrino.system import netns as netns_mod
from neutrino.system.exec import run
from neutrino.system.ovsdb import AddBridge, DelBridge
from neutrino.testing.multihost import Fabric, Host, vxlan_port_name
from neutrino.testing.openflow import sort_flows
from tests.functional import _topology as topo

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def net(module_fabric: Fabric) -> dict:
    h1, h2 = module_fabric.hosts["h1"], module_fabric.hosts["h2"]
    desired = {"h1": topo.build(h1, [h2]), "h2": topo.build(h2, [h1])}
    inst = {}
    for i, host in ((1, h1), (2, h2)):
        inst[f"vx{i}"] = host.plug(
            f"vx{i}", ip=f"10.99.0.{i}/24", mac=f"fa:16:3e:00:01:0{i}", mtu=1450, tag=topo.LVID_VXLAN, kind="internal"
        )
        inst[f"vl{i}"] = host.plug(
            f"vl{i}", ip=f"10.99.150.{i}/24", mac=f"fa:16:3e:00:02:0{i}", tag=topo.LVID_VLAN, kind="veth"
        )
        inst[f"fl{i}"] = host.plug(
            f"fl{i}", ip=f"10.99.160.{i}/24", mac=f"fa:16:3e:00:03:0{i}", tag=topo.LVID_FLAT, kind="internal"
        )
    return {"fabric": module_fabric, "h1": h1, "h2": h2, "desired": desired, **inst}


def _ours(flows):
    return sort_flows(f for f in flows if f.cookie == topo.COOKIE)


def test_flows_installed_exactly_as_planned(net: dict) -> None:
    for name in ("h1", "h2"):
        host: Host = net[name]
        for bridge, flows in net["desired"][name].items():
            assert _ours(host.of.dump(bridge)) == sort_flows(flows), (name, bridge)


def test_reapplying_the_same_topology_changes_nothing(net: dict) -> None:
    h1: Host = net["h1"]
    state, cfg = h1.ovs.observe(), h1.ovs.next_cfg()
    flows = {b: _ours(h1.of.dump(b)) for b in ("br-int", "br-tun", "br-phys")}
    topo.build(h1, [net["h2"]])
    assert h1.ovs.observe() == state and h1.ovs.next_cfg() == cfg
    assert {b: _ours(h1.of.dump(b)) for b in flows} == flows


def test_hosts_are_isolated(net: dict) -> None:
    h1, h2 = net["h1"], net["h2"]
    assert h1.ovs.rundir != h2.ovs.rundir
    assert "tapvx1" in h1.ovs.observe().ports and "tapvx1" not in h2.ovs.observe().ports
    # A bridge made on h1 has its tap in h1's namespace only (not h2's, not the root one).
    probe = f"bi{net['fabric'].prefix[-6:]}"
    h1.ovs.transact([AddBridge(probe, datapath_type="netdev")])
    try:
        assert iproute.get_link(probe, netns=h1.netns) is not None
        assert iproute.get_link(probe, netns=h2.netns) is None
        assert iproute.get_link(probe) is None
        assert probe not in h2.ovs.bridges()
    finally:
        h1.ovs.transact([DelBridge(probe)])
    ports = h1.ovs.observe().ports
    assert ports[vxlan_port_name("192.168.99.2")].iface.options["remote_ip"] == "192.168.99.2"
    assert ports["und0"].bridge == "br-underlay"
    assert h1.vtep is not None and str(h1.vtep) == "192.168.99.1/24"


def test_vxlan_ping_across_hosts_shows_vni_on_the_fabric(net: dict) -> None:
    fab: Fabric = net["fabric"]
    cap = fab.capture(fab.underlay_bridge, ["udp", "port", "4789"])
    result = net["vx1"].ping("10.99.0.2", count=3, check=False)
    lines = cap.stop()
    assert result.rc == 0, result.stdout + result.stderr
    assert any("192.168.99.1" in ln and "192.168.99.2.4789: VXLAN" in ln and "vni 100" in ln for ln in lines), lines
    assert any("10.99.0.1 > 10.99.0.2: ICMP echo request" in ln for ln in lines), lines
    assert any("fa:16:3e:00:01:01 > fa:16:3e:00:01:02" in ln for ln in lines), lines
    # br-tun learned the remote MAC (learn() works in the userspace datapath).
    learned = [f for f in net["h1"].of.dump("br-tun", table=20) if f.cookie == 0x1]
    assert any("dl_dst=fa:16:3e:00:01:02" in f.match for f in learned), learned
    trace = net["h1"].of.trace(
        "br-int",
        f"in_port={net['h1'].ovs.observe().ports['tapvx1'].ofport},"
        "dl_src=fa:16:3e:00:01:01,dl_dst=fa:16:3e:00:01:02,ip,"
        "nw_src=10.99.0.1,nw_dst=10.99.0.2",
    )
    assert "tnl_push" in trace.datapath_actions and "vni=0x64" in trace.datapath_actions


def test_vlan_provider_ping_shows_8021q_tag(net: dict) -> None:
    fab: Fabric = net["fabric"]
    cap = fab.capture(fab.physnet_bridge, ["vlan"])
    result = net["vl1"].ping("10.99.150.2", count=2, check=False)
    lines = cap.stop()
    assert result.rc == 0, result.stdout + result.stderr
    assert any(
        "802.1Q" in ln and "vlan 150" in ln and "10.99.150.1 > 10.99.150.2: ICMP echo request" in ln for ln in lines
    ), lines


def test_flat_provider_ping_is_untagged(net: dict) -> None:
    fab: Fabric = net["fabric"]
    cap = fab.capture(fab.physnet_bridge, ["icmp"])
    result = net["fl1"].ping("10.99.160.2", count=2, check=False)
    lines = cap.stop()
    assert result.rc == 0, result.stdout + result.stderr
    hits = [ln for ln in lines if "10.99.160.1 > 10.99.160.2: ICMP echo request" in ln]
    assert hits and not any("802.1Q" in ln for ln in hits), lines


def test_networks_are_isolated(net: dict) -> None:
    vx1 = net["vx1"]
    iproute.ensure_address(vx1.dev, "10.99.150.9/24", netns=vx1.netns)
    try:
        assert vx1.ping("10.99.150.2", count=1, timeout=1, check=False).rc != 0
    finally:
        iproute.remove_address(vx1.dev, "10.99.150.9/24", netns=vx1.netns)


SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5555)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); n = 0
while n < 300000:
    d = c.recv(65536)
    if not d: break
    n += len(d)
c.sendall(b"got %d" % n); c.close()
"""
CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 5555), timeout=5)
c.sendall(b"x" * 300000); print(c.recv(100).decode())
"""


def test_tcp_over_veth_instances_with_offloads_off(net: dict, tmp_path: Path) -> None:
    """Bulk TCP works because plug(kind='veth') turned checksum offload off (recipe §5)."""
    server = process.ProcessSpec(
        argv=(sys.executable, "-c", SERVER, "10.99.150.2"),
        pidfile=tmp_path / "srv.pid",
        netns=net["vl2"].netns,
        uuid=f"srv-{tmp_path.name}",
        log_path=tmp_path / "srv.log",
    )
    process.start(server)
    try:
        deadline = time.monotonic() + 5
        while "ready" not in (tmp_path / "srv.log").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        out = run([sys.executable, "-c", CLIENT, "10.99.150.2"], netns=net["vl1"].netns, timeout=15)
        assert out.stdout.strip() == "got 300000"
    finally:
        process.stop(server)


def test_single_host_fabric_and_teardown(tmp_path: Path) -> None:
    """An all-in-one host (own private OVS, no underlay); teardown leaves nothing, twice,
    also after an exception inside the ``with`` block."""
    fab = Fabric("ntaio", tmp_path)
    with pytest.raises(RuntimeError):
        with fab:
            host = fab.add_host("aio", vtep_ip=None, physnet=False)
            assert host.vtep is None and host.physnet_dev is None
            assert host.ovs.bridges() == []
            host.ovs.transact([topo.secure_bridge("br-int")])
            a = host.plug("a", ip="10.5.0.1/24", kind="internal")
            host.plug("b", ip="10.5.0.2/24", kind="veth")
            host.of.replace_flows("br-int", [topo.parse_flow_mod("priority=0 actions=NORMAL")])
            assert a.ping("10.5.0.2", count=1).rc == 0
            assert host.exec(["ovs-vsctl", "br-exists", "br-int"]).rc == 0  # env reaches it
            pids = host.daemons.pids()
            raise RuntimeError("test failure inside the fabric")
    assert fab.leftovers() == []
    assert not any(process.is_running(p) for p in pids)
    assert not [n for n in netns_mod.list_netns() if n.startswith("ntaio-")]
    fab.teardown()
