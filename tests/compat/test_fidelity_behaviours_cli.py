"""Issue 14's behaviours as the unchanged ``openstack`` CLI and openstacksdk meet them, against
``neutrino up`` (no agents): quota limits below usage, security groups on a port without an
address, multicast MACs, deleting an external network with a free floating IP, router
``distributed``/``ha``, and openstacksdk following the pagination links."""

from __future__ import annotations

import json

import openstack
import pytest

pytestmark = pytest.mark.compat


def _json(proc) -> object:
    return json.loads(proc.stdout)


def _sdk(cloud, who: str = "demo"):
    env = cloud.demo if who == "demo" else cloud.admin
    return openstack.connect(
        auth_url=env["OS_AUTH_URL"],
        cacert=env.get("OS_CACERT"),  # TLS: the cloud's CA (openrc OS_CACERT)
        username=who,
        password=env["OS_PASSWORD"],
        project_name=who,
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )


def test_quota_below_usage_needs_force(cloud):
    for name in ("q-net-1", "q-net-2"):
        cloud.osc("demo", "network", "create", name)
    proc = cloud.osc("admin", "quota", "set", "--networks", "1", "demo", ok=False)
    assert proc.returncode != 0
    assert "Quota limit 1 for network must be greater than or equal to already used" in proc.stderr
    cloud.osc("admin", "quota", "set", "--networks", "1", "--force", "demo")
    rows = _json(cloud.osc("admin", "quota", "show", "--network", "demo", "-f", "json"))
    assert {r["Resource"]: r["Limit"] for r in rows}["networks"] == 1
    cloud.osc("admin", "quota", "set", "--networks", "-1", "demo")
    for name in ("q-net-1", "q-net-2"):
        cloud.osc("demo", "network", "delete", name)


def test_security_group_on_a_port_without_address(cloud):
    cloud.osc("demo", "network", "create", "bare-net")
    cloud.osc("demo", "security", "group", "create", "bare-sg")
    port = _json(
        cloud.osc(
            "demo", "port", "create", "--network", "bare-net", "--security-group", "bare-sg", "bare-port", "-f", "json"
        )
    )
    assert port["fixed_ips"] in ([], None, "")
    sg = _json(cloud.osc("demo", "security", "group", "show", "bare-sg", "-f", "json"))
    assert port["security_group_ids"] == [sg["id"]]
    cloud.osc("demo", "port", "delete", "bare-port")
    cloud.osc("demo", "network", "delete", "bare-net")


def test_admin_sets_a_multicast_mac(cloud):
    cloud.osc("admin", "network", "create", "mac-net")
    port = _json(
        cloud.osc(
            "admin",
            "port",
            "create",
            "--network",
            "mac-net",
            "--mac-address",
            "11:22:33:44:55:66",
            "mac-port",
            "-f",
            "json",
        )
    )
    assert port["mac_address"] == "11:22:33:44:55:66"
    cloud.osc("admin", "port", "delete", "mac-port")
    cloud.osc("admin", "network", "delete", "mac-net")


def test_external_network_with_a_free_floating_ip_is_deleted(cloud):
    cloud.osc("admin", "network", "create", "--external", "gone-ext")
    cloud.osc("admin", "subnet", "create", "--network", "gone-ext", "--subnet-range", "198.51.100.0/24", "gone-ext-sub")
    fip = _json(cloud.osc("demo", "floating", "ip", "create", "gone-ext", "-f", "json"))
    cloud.osc("admin", "network", "delete", "gone-ext")
    proc = cloud.osc("demo", "floating", "ip", "show", fip["id"], ok=False)
    assert proc.returncode != 0


def test_router_distributed_and_ha_for_admins(cloud):
    cloud.osc("demo", "router", "create", "attr-router")
    shown = _json(cloud.osc("admin", "router", "show", "attr-router", "-f", "json"))
    assert shown["distributed"] is False and shown["ha"] is False
    listed = _json(cloud.osc("admin", "router", "list", "--long", "-f", "json"))
    row = next(r for r in listed if r["Name"] == "attr-router")
    assert row["Distributed"] is False and row["HA"] is False
    cloud.osc("demo", "router", "delete", "attr-router")


def test_openstacksdk_pages_through_links(cloud):
    conn = _sdk(cloud)
    made = [conn.network.create_network(name=f"page-{i}") for i in range(5)]
    try:
        got = [
            n.name
            for n in conn.network.networks(limit=2, sort_key="name", sort_dir="asc")
            if n.name.startswith("page-")
        ]
        assert got == [f"page-{i}" for i in range(5)]
        subnet = conn.network.create_subnet(network_id=made[0].id, ip_version=4, cidr="10.77.0.0/24")
        port = conn.network.create_port(network_id=made[0].id, fixed_ips=[{"ip_address": "10.77.0.77"}])
        found = [p.id for p in conn.network.ports(fixed_ips="ip_address_substr=0.77.0.7")]
        assert found == [port.id]
        conn.network.delete_port(port)
        conn.network.delete_subnet(subnet)
    finally:
        for net in made:
            conn.network.delete_network(net)
