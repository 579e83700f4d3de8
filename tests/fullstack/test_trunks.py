"""Trunks with real packets: a VLAN-aware instance booted on a trunk's parent port (network A)
with a VLAN-101 subport on network B reaches a peer on A untagged and a peer on B tagged 101;
removing the subport stops B's traffic, adding it back restores it.

The instance speaks VLAN 101 with raw 802.1Q frames (``neutrino.testing.vlanping``): the test
kernel has no 802.1Q module, so no ``eth0.101`` sub-interface can be made (a real guest would
make one).  The subport carries the parent's MAC, as a VLAN sub-interface would.  Needs root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.fullstack.helpers import address, boot, console, open_default_group, reaches, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "ovs-vswitchd"], capture_output=True).returncode, reason="Open vSwitch not installed"
    ),
]

VLAN = 101


def _wait(predicate, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _vlan_ping(state, server: str, mac: str, ip: str, dst: str, timeout: float = 4.0) -> bool:
    proc = console(
        state,
        server,
        sys.executable,
        "-m",
        "neutrino.testing.vlanping",
        "--dev",
        "eth0",
        "--vlan",
        str(VLAN),
        "--mac",
        mac,
        "--ip",
        ip,
        "--dst",
        dst,
        "--timeout",
        str(timeout),
    )
    return proc.returncode == 0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    for state, conn in start_aio(tmp_path_factory):
        open_default_group(conn, ("icmp",))
        net_a = conn.network.create_network(name="trunk-a")
        conn.network.create_subnet(network_id=net_a.id, ip_version=4, cidr="10.81.0.0/24")
        net_b = conn.network.create_network(name="trunk-b")
        conn.network.create_subnet(network_id=net_b.id, ip_version=4, cidr="10.82.0.0/24")
        parent = conn.network.create_port(network_id=net_a.id, name="trunk-parent")
        sub = conn.network.create_port(network_id=net_b.id, name="trunk-sub", mac_address=parent.mac_address)
        trunk = conn.network.create_trunk(
            name="trunk",
            port_id=parent.id,
            sub_ports=[{"port_id": sub.id, "segmentation_type": "vlan", "segmentation_id": VLAN}],
        )
        image = conn.image.find_image("cirros")
        flavor = conn.compute.find_flavor("m1.nano")
        vm = conn.compute.create_server(
            name="trunk-vm", image_id=image.id, flavor_id=flavor.id, networks=[{"port": parent.id}]
        )
        peer_a, peer_b = boot(conn, "peer-a", net_a.id), boot(conn, "peer-b", net_b.id)
        for s in (vm, peer_a, peer_b):
            wait_active(conn, s.id)
        yield {
            "state": state,
            "conn": conn,
            "trunk": trunk,
            "parent": parent,
            "sub": sub,
            "vm": vm,
            "peer_a": address(conn, peer_a.id),
            "peer_b": address(conn, peer_b.id),
        }


def test_trunk_and_subport_become_active(cloud):
    conn = cloud["conn"]
    _wait(lambda: conn.network.get_trunk(cloud["trunk"].id).status == "ACTIVE", what="trunk ACTIVE")
    assert conn.network.get_port(cloud["sub"].id).status == "ACTIVE"
    parent = conn.network.get_port(cloud["parent"].id)
    assert parent.status == "ACTIVE"
    assert parent.trunk_details["sub_ports"][0]["segmentation_id"] == VLAN


def test_instance_reaches_both_networks(cloud):
    state, vm, sub = cloud["state"], cloud["vm"].id, cloud["sub"]
    # Network A, untagged, through the parent.
    assert reaches(state, vm, cloud["peer_a"])
    # Network B, tagged 101, through the subport (and not untagged: nothing routes there).
    ip = sub.fixed_ips[0]["ip_address"]
    deadline = time.monotonic() + 30
    while not _vlan_ping(state, vm, sub.mac_address, ip, cloud["peer_b"]):
        assert time.monotonic() < deadline, "no reply on VLAN 101 from the peer on network B"
    assert console(state, vm, "ping", "-c", "1", "-W", "1", cloud["peer_b"]).returncode != 0
    # The peer on B sees the instance at the subport's address (its ARP entry names the parent's MAC).
    neigh = console(state, "peer-b", "ip", "neigh", "show", ip).stdout
    assert sub.mac_address in neigh, neigh


def test_removing_the_subport_stops_network_b(cloud):
    conn, state, vm, sub = cloud["conn"], cloud["state"], cloud["vm"].id, cloud["sub"]
    ip = sub.fixed_ips[0]["ip_address"]
    conn.network.delete_trunk_subports(cloud["trunk"], [{"port_id": sub.id}])
    _wait(
        lambda: not _vlan_ping(state, vm, sub.mac_address, ip, cloud["peer_b"], timeout=2.0),
        what="VLAN 101 traffic to stop",
    )
    for _ in range(3):  # stays stopped
        assert not _vlan_ping(state, vm, sub.mac_address, ip, cloud["peer_b"], timeout=2.0)
    assert reaches(state, vm, cloud["peer_a"])  # the parent is untouched
    assert conn.network.get_port(sub.id).status == "DOWN"
    # Adding it back restores it.
    conn.network.add_trunk_subports(
        cloud["trunk"], [{"port_id": sub.id, "segmentation_type": "vlan", "segmentation_id": VLAN}]
    )
    deadline = time.monotonic() + 30
    while not _vlan_ping(state, vm, sub.mac_address, ip, cloud["peer_b"]):
        assert time.monotonic() < deadline, "VLAN 101 not restored"
    _wait(lambda: conn.network.get_trunk(cloud["trunk"].id).status == "ACTIVE", what="trunk ACTIVE again")
