"""A router created administratively down, with real traffic.

Two instances on two networks joined by a router created with
``admin_state_up=false`` and a gateway on the lab's external network (SNAT),
one instance with a floating IP.  While the router is down its interface
ports become ACTIVE (they are wired) but it forwards nothing: no routing
between the networks, no SNAT or floating IP traffic, no metadata.  Setting
it up restores all of it; setting it down again stops it again.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from tests.fullstack.helpers import (
    address,
    boot,
    console,
    open_default_group,
    openrc_connect,
    reaches,
    start_aio,
    wait_active,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "iptables-restore"], capture_output=True).returncode, reason="iptables not installed"
    ),
]

LAB = f"lab-{uuid.uuid4().hex[:6]}"
LAB_IP = "172.16.0.1"
MD = "http://169.254.169.254/openstack"


def lab_pings(ip: str) -> bool:
    return (
        subprocess.run(
            ["ip", "netns", "exec", LAB, "ping", "-c", "1", "-W", "1", ip], capture_output=True, timeout=30
        ).returncode
        == 0
    )


def metadata_code(state, server: str) -> str:
    """The HTTP status of a metadata GET from inside ``server`` ("000": no answer)."""
    r = console(state, server, "curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", MD)
    return r.stdout.strip()[-3:]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    for state, conn in start_aio(tmp_path_factory, {("lab", "host_netns"): LAB}):
        admin = openrc_connect(state / "admin-openrc")
        ext = admin.network.create_network(
            name="ad-ext",
            is_shared=True,
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="physnet",
        )
        admin.network.create_subnet(
            network_id=ext.id,
            ip_version=4,
            cidr="172.16.0.0/24",
            gateway_ip=LAB_IP,
            allocation_pools=[{"start": "172.16.0.2", "end": "172.16.0.50"}],
        )
        net_a = conn.network.create_network(name="ad-a")
        sub_a = conn.network.create_subnet(network_id=net_a.id, ip_version=4, cidr="10.61.0.0/24")
        net_b = conn.network.create_network(name="ad-b")
        sub_b = conn.network.create_subnet(network_id=net_b.id, ip_version=4, cidr="10.62.0.0/24")
        router = conn.network.create_router(
            name="ad-router", is_admin_state_up=False, external_gateway_info={"network_id": ext.id}
        )
        assert router.is_admin_state_up is False
        conn.network.add_interface_to_router(router, subnet_id=sub_a.id)
        conn.network.add_interface_to_router(router, subnet_id=sub_b.id)
        vm_a, vm_b = boot(conn, "ad-vm-a", net_a.id), boot(conn, "ad-vm-b", net_b.id)
        wait_active(conn, vm_a.id)
        wait_active(conn, vm_b.id)
        open_default_group(conn)
        port_a = next(conn.network.ports(device_id=vm_a.id))
        fip = conn.network.create_ip(floating_network_id=ext.id, port_id=port_a.id)
        yield {"state": state, "conn": conn, "router": router, "fip": fip, "ip_b": address(conn, vm_b.id)}


def _set_admin_state(cloud, up: bool) -> None:
    conn, router = cloud["conn"], cloud["router"]
    assert conn.network.update_router(router, is_admin_state_up=up).is_admin_state_up is up


def _fip_status(cloud, want: str, within: float = 30) -> None:
    conn, fip = cloud["conn"], cloud["fip"]
    deadline = time.monotonic() + within
    while (status := conn.network.get_ip(fip.id).status) != want:
        assert time.monotonic() < deadline, f"floating IP {status}, not {want}"
        time.sleep(0.5)


def _forwards_nothing(cloud) -> None:
    """Nothing passes the router: checked after the agents had time to apply the state."""
    state, fip, ip_b = cloud["state"], cloud["fip"].floating_ip_address, cloud["ip_b"]
    _fip_status(cloud, "DOWN")
    ns = f"qrouter-{cloud['router'].id}"
    deadline = time.monotonic() + 30  # the L3 agent's pass: the admin-down rules are in place
    while (
        "neutron-l3-agent-admin-down"
        not in subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True).stdout
    ):
        assert time.monotonic() < deadline, "router rules not switched to admin-down"
        time.sleep(0.5)
    forwarding = subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"], capture_output=True, text=True
    ).stdout.strip()
    assert forwarding == "0"
    for _ in range(3):
        assert console(state, "ad-vm-a", "ping", "-c", "1", "-W", "1", ip_b).returncode != 0, "routed"
        assert console(state, "ad-vm-a", "ping", "-c", "1", "-W", "1", LAB_IP).returncode != 0, "SNATed"
        assert not lab_pings(fip), "floating IP answers"
        assert metadata_code(state, "ad-vm-a") != "200", "metadata served"


def _forwards_everything(cloud) -> None:
    state, fip, ip_b = cloud["state"], cloud["fip"].floating_ip_address, cloud["ip_b"]
    assert reaches(state, "ad-vm-a", ip_b, within=40)  # routed between the networks
    assert reaches(state, "ad-vm-b", LAB_IP)  # SNAT to the lab host
    deadline = time.monotonic() + 30
    while not lab_pings(fip):  # the floating IP, from outside
        assert time.monotonic() < deadline, "floating IP does not answer"
    _fip_status(cloud, "ACTIVE")
    deadline = time.monotonic() + 30
    while metadata_code(state, "ad-vm-b") != "200":
        assert time.monotonic() < deadline, "no metadata through the router"
        time.sleep(0.5)


def test_interface_ports_become_active_while_the_router_is_down(cloud):
    conn, router = cloud["conn"], cloud["router"]
    deadline = time.monotonic() + 60
    while True:
        ports = list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
        if len(ports) == 2 and all(p.status == "ACTIVE" for p in ports):
            break
        assert time.monotonic() < deadline, [(p.id, p.status) for p in ports]
        time.sleep(0.5)
    assert conn.network.get_router(router.id).is_admin_state_up is False


def test_a_router_created_down_forwards_nothing(cloud):
    _forwards_nothing(cloud)


def test_up_restores_everything_and_down_stops_it_again(cloud):
    _set_admin_state(cloud, True)
    _forwards_everything(cloud)
    _set_admin_state(cloud, False)
    _forwards_nothing(cloud)
    conn, router = cloud["conn"], cloud["router"]
    ports = list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
    assert [p.status for p in ports] == ["ACTIVE", "ACTIVE"]  # still wired
    _set_admin_state(cloud, True)
    _forwards_everything(cloud)
