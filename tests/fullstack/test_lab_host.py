"""The all-in-one's lab host: physnet `physnet` (br-phys) bridged to a network
namespace holding 172.16.0.1/24 (``[lab] host_netns`` / ``[lab] cidr``), never
to this machine's uplink.  An instance on an admin flat network on physnet
reaches it; ``down --purge`` removes the namespace.  Needs root."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from neutrino.system import netns
from tests.fullstack.helpers import NEUTRINO, address, boot, openrc_connect, reaches, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "ovs-vswitchd"], capture_output=True).returncode, reason="Open vSwitch not installed"
    ),
]

LAB_NS = f"lab-t{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    yield from start_aio(tmp_path_factory, {("lab", "host_netns"): LAB_NS})


def admin(state):
    return openrc_connect(state / "admin-openrc")


def ns(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", LAB_NS, *argv], capture_output=True, text=True, timeout=30)


def test_lab_namespace_holds_the_gateway(aio):
    out = ns("ip", "-o", "addr", "show", "dev", "lab0")
    assert out.returncode == 0 and "172.16.0.1/24" in out.stdout, out
    # nothing of it in this machine's own namespace
    assert subprocess.run(["ip", "link", "show", "lab0"], capture_output=True).returncode != 0
    offload = ns("ethtool", "-k", "lab0").stdout
    assert "tx-checksumming: off" in offload and "rx-checksumming: off" in offload


def test_instance_on_flat_physnet_reaches_the_lab_host(aio):
    state, _demo = aio
    conn = admin(state)
    net = conn.network.create_network(
        name="lab-flat",
        provider_network_type="flat",
        provider_physical_network="physnet",
        is_router_external=True,
        is_shared=True,
    )
    conn.network.create_subnet(
        network_id=net.id,
        ip_version=4,
        cidr="172.16.0.0/24",
        gateway_ip="172.16.0.1",
        allocation_pools=[{"start": "172.16.0.100", "end": "172.16.0.150"}],
    )
    vm = boot(conn, "lab-vm", net.id)
    wait_active(conn, vm.id)
    assert reaches(state, "lab-vm", "172.16.0.1", within=40)
    # and the lab host reaches the instance once its security group lets ICMP in
    vm_ip = address(conn, vm.id)
    default = conn.network.find_security_group("default", project_id=conn.current_project_id)
    conn.network.create_security_group_rule(
        security_group_id=default.id, direction="ingress", ethertype="IPv4", protocol="icmp"
    )
    deadline = time.monotonic() + 20
    while ns("ping", "-c", "1", "-W", "1", vm_ip).returncode != 0:
        assert time.monotonic() < deadline, "the lab host cannot ping the instance"


def test_up_again_keeps_the_lab_host_and_down_purge_removes_it(tmp_path_factory):
    lab = f"lab-u{uuid.uuid4().hex[:6]}"
    gen = start_aio(tmp_path_factory, {("lab", "host_netns"): lab, ("lab", "cidr"): "172.16.5.1/24"})
    state, _ = next(gen)
    try:
        assert netns.netns_exists(lab)
        up = subprocess.run([*NEUTRINO, "up", "--state-dir", str(state)], capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        out = subprocess.run(
            ["ip", "netns", "exec", lab, "ip", "-o", "addr", "show", "dev", "lab0"], capture_output=True, text=True
        )
        assert "172.16.5.1/24" in out.stdout
        down = subprocess.run(
            [*NEUTRINO, "down", "--state-dir", str(state)], capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stderr
        assert (
            subprocess.run(["ip", "netns", "exec", lab, "ip", "link", "show", "lab0"], capture_output=True).returncode
            != 0
        )  # veth gone, namespace kept
        assert netns.netns_exists(lab)
    finally:
        for _ in gen:  # `down --purge`
            pass
    assert not netns.netns_exists(lab)
