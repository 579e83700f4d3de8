"""Full stack on one host: `neutrino up` (server + private OVS + OVS and compute
agents), instances booted with openstacksdk, traffic checked from inside them
with `neutrino console`.  Needs root; everything is removed by `down --purge`."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.fullstack.helpers import address, boot, console, reaches, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "ovs-vswitchd"], capture_output=True).returncode, reason="Open vSwitch not installed"
    ),
]


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    yield from start_aio(tmp_path_factory)


def test_instances_on_a_vxlan_network_talk_and_networks_are_isolated(aio):
    state, conn = aio
    net1 = conn.network.create_network(name="fs-net1")
    conn.network.create_subnet(network_id=net1.id, ip_version=4, cidr="10.10.0.0/24")
    net2 = conn.network.create_network(name="fs-net2")
    conn.network.create_subnet(network_id=net2.id, ip_version=4, cidr="10.10.0.0/24")  # same CIDR, isolated
    a, b, c = boot(conn, "fs-a", net1.id), boot(conn, "fs-b", net1.id), boot(conn, "fs-c", net2.id)
    for s in (a, b, c):
        wait_active(conn, s.id)
    assert net1.mtu == 1450
    link = console(state, "fs-a", "ip", "-o", "link", "show", "eth0")
    assert link.returncode == 0 and "mtu 1450" in link.stdout
    b_ip, c_ip = address(conn, b.id), address(conn, c.id)
    assert reaches(state, "fs-a", b_ip)
    # fs-c sits on another network with an overlapping CIDR: it must not reach fs-b.
    assert not reaches(state, "fs-c", b_ip, within=3)
    # Anti-spoofing: a source address that is not the port's is dropped.  The subnet's
    # gateway address is never a port's here (no router), so it cannot collide with fs-b.
    spoof = "10.10.0.1"
    assert console(state, "fs-a", "ip", "addr", "add", f"{spoof}/24", "dev", "eth0").returncode == 0
    assert not reaches(state, "fs-a", b_ip, within=3, source=spoof)
    # ... until the address is an allowed address pair of the port.
    a_port = next(conn.network.ports(device_id=a.id))
    conn.network.update_port(a_port, allowed_address_pairs=[{"ip_address": spoof}])
    assert reaches(state, "fs-a", b_ip, source=spoof)
    # A changed MAC address is dropped too ...
    mac = console(state, "fs-a", "ip", "link", "set", "dev", "eth0", "address", "fa:16:3e:99:99:99")
    assert mac.returncode == 0
    assert not reaches(state, "fs-a", b_ip, within=3)
    # ... unless port security is off, which lifts all of it.  fs-a then belongs to no
    # security group, so fs-b's group must let ICMP in from anywhere for the echo to get in.
    default = conn.network.find_security_group("default", project_id=conn.current_project_id)
    conn.network.create_security_group_rule(
        security_group_id=default.id, direction="ingress", ethertype="IPv4", protocol="icmp"
    )
    conn.network.update_port(a_port, security_groups=[], port_security_enabled=False, allowed_address_pairs=[])
    assert reaches(state, "fs-a", b_ip)
    # Deleting a server removes its namespace.
    conn.compute.delete_server(c.id)
    deadline = time.monotonic() + 30
    while f"vm-{c.id}" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, "instance namespace not removed"
        time.sleep(0.5)
    _ = c_ip


def test_console_on_unknown_server_fails(aio):
    state, _ = aio
    r = console(state, "no-such-server", "true")
    assert r.returncode != 0 and "no server" in r.stderr
