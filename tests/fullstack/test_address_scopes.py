"""Address scopes decide where a router NATs, with real packets: an instance on a subnet from the
external subnet's address scope reaches the lab host with its own address (routed, no SNAT) and
is reachable from it, while an instance on an unscoped subnet of the same router is SNATed to the
router's gateway address."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from tests.fullstack.helpers import address, boot, open_default_group, openrc_connect, reaches, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "iptables-restore"], capture_output=True).returncode, reason="iptables not installed"
    ),
]

LAB = f"lab-{uuid.uuid4().hex[:6]}"


def lab(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", LAB, *argv], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    for state, conn in start_aio(tmp_path_factory, {("lab", "host_netns"): LAB}):
        admin = openrc_connect(state / "admin-openrc")
        scope = admin.network.create_address_scope(name="public-scope", ip_version=4, is_shared=True)
        ext_pool = admin.network.create_subnet_pool(
            name="ext-pool", prefixes=["172.16.0.0/24"], address_scope_id=scope.id, is_shared=True
        )
        in_pool = admin.network.create_subnet_pool(
            name="routed-pool",
            prefixes=["10.60.0.0/16"],
            default_prefix_length=24,
            address_scope_id=scope.id,
            is_shared=True,
        )
        ext = admin.network.create_network(
            name="as-ext",
            is_shared=True,
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="physnet",
        )
        admin.network.create_subnet(
            network_id=ext.id,
            ip_version=4,
            cidr="172.16.0.0/24",
            subnet_pool_id=ext_pool.id,
            gateway_ip="172.16.0.1",
            allocation_pools=[{"start": "172.16.0.2", "end": "172.16.0.50"}],
        )
        routed = conn.network.create_network(name="as-routed")
        routed_sub = conn.network.create_subnet(network_id=routed.id, ip_version=4, subnet_pool_id=in_pool.id)
        natted = conn.network.create_network(name="as-natted")
        natted_sub = conn.network.create_subnet(network_id=natted.id, ip_version=4, cidr="10.70.0.0/24")
        router = conn.network.create_router(name="as-router", external_gateway_info={"network_id": ext.id})
        conn.network.add_interface_to_router(router, subnet_id=routed_sub.id)
        conn.network.add_interface_to_router(router, subnet_id=natted_sub.id)
        vm_routed = boot(conn, "as-routed-vm", routed.id)
        vm_natted = boot(conn, "as-natted-vm", natted.id)
        wait_active(conn, vm_routed.id)
        wait_active(conn, vm_natted.id)
        open_default_group(conn)
        router = conn.network.get_router(router.id)
        gw_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
        # The lab host routes the scope's internal prefixes to the router (as an upstream router
        # of the same address scope would); the unscoped 10.70.0.0/24 stays unknown to it.
        r = lab("ip", "route", "replace", "10.60.0.0/16", "via", gw_ip)
        assert r.returncode == 0, r.stderr
        yield {
            "state": state,
            "conn": conn,
            "admin": admin,
            "scope": scope,
            "routed_sub": routed_sub,
            "gw_ip": gw_ip,
            "vm_routed": vm_routed,
            "vm_natted": vm_natted,
            "routed": routed,
        }


def _source_seen_by_lab(state, server: str) -> str:
    """The source address of the instance's ping as the lab host's interface sees it."""
    cap = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            LAB,
            "tcpdump",
            "-lnni",
            "lab0",
            "-c",
            "1",
            "icmp",
            "and",
            "icmp[icmptype] == icmp-echo",
            "and",
            "dst",
            "host",
            "172.16.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(0.5)
        assert reaches(state, server, "172.16.0.1"), f"{server} does not reach the lab host"
        out, _ = cap.communicate(timeout=10)
    finally:
        if cap.poll() is None:
            cap.kill()
    for line in out.splitlines():
        if " > 172.16.0.1" in line and "IP " in line:
            return line.split("IP ", 1)[1].split(" > ", 1)[0]
    raise AssertionError(f"no echo request captured: {out!r}")


def test_network_shows_its_address_scope(cloud):
    net = cloud["conn"].network.get_network(cloud["routed"].id)
    assert net.ipv4_address_scope_id == cloud["scope"].id
    assert cloud["routed_sub"].cidr == "10.60.0.0/24"


def test_same_scope_instance_reaches_the_lab_host_with_its_own_address(cloud):
    state, conn = cloud["state"], cloud["conn"]
    own = address(conn, cloud["vm_routed"].id)
    assert own.startswith("10.60.0.")
    assert _source_seen_by_lab(state, "as-routed-vm") == own


def test_other_subnet_is_still_snated_to_the_gateway_address(cloud):
    assert _source_seen_by_lab(cloud["state"], "as-natted-vm") == cloud["gw_ip"]


def test_lab_host_reaches_the_same_scope_instance_directly(cloud):
    own = address(cloud["conn"], cloud["vm_routed"].id)
    deadline = time.monotonic() + 20
    while lab("ping", "-c", "1", "-W", "1", own).returncode != 0:
        assert time.monotonic() < deadline, f"lab host cannot reach {own} through the router"
    # The unscoped subnet is not routed to from outside (no route, and the router would drop it).
    natted = address(cloud["conn"], cloud["vm_natted"].id)
    assert lab("ping", "-c", "1", "-W", "1", natted).returncode != 0
