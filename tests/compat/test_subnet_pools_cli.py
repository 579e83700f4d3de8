"""Address scopes and subnet pools driven by the unchanged ``openstack`` CLI (and openstacksdk)
against ``neutrino up``.  The tests share one cloud and build on each other in file order."""

from __future__ import annotations

import json

import openstack
import pytest

pytestmark = pytest.mark.compat


def _json(proc) -> dict:
    return json.loads(proc.stdout)


def test_address_scope_create_list_show_set(cloud):
    out = _json(
        cloud.osc("admin", "address", "scope", "create", "--share", "--ip-version", "4", "scope-a", "-f", "json")
    )
    assert out["name"] == "scope-a" and out["ip_version"] == 4 and out["shared"] is True
    listed = _json(cloud.osc("demo", "address", "scope", "list", "-f", "json"))
    assert [s["Name"] for s in listed] == ["scope-a"]
    cloud.osc("admin", "address", "scope", "set", "--name", "scope-b", "scope-a")
    shown = _json(cloud.osc("demo", "address", "scope", "show", "scope-b", "-f", "json"))
    assert shown["id"] == out["id"] and shown["name"] == "scope-b"
    # A member's own scope, then deleted.
    cloud.osc("demo", "address", "scope", "create", "--ip-version", "6", "mine")
    cloud.osc("demo", "address", "scope", "delete", "mine")
    assert [s["Name"] for s in _json(cloud.osc("demo", "address", "scope", "list", "-f", "json"))] == ["scope-b"]


def test_subnet_pool_create_default_shared_in_scope(cloud):
    out = _json(
        cloud.osc(
            "admin",
            "subnet",
            "pool",
            "create",
            "--pool-prefix",
            "10.50.0.0/16",
            "--default-prefix-length",
            "24",
            "--default",
            "--share",
            "--address-scope",
            "scope-b",
            "pool-a",
            "-f",
            "json",
        )
    )
    assert out["prefixes"] == ["10.50.0.0/16"] and out["is_default"] is True and out["shared"] is True
    assert str(out["default_prefixlen"]) == "24" and out["ip_version"] == 4
    scope = _json(cloud.osc("admin", "address", "scope", "show", "scope-b", "-f", "json"))
    assert out["address_scope_id"] == scope["id"]
    listed = _json(cloud.osc("demo", "subnet", "pool", "list", "-f", "json"))
    assert [p["Name"] for p in listed] == ["pool-a"]
    # The scope is in use: deleting it is refused.
    proc = cloud.osc("admin", "address", "scope", "delete", "scope-b", ok=False)
    assert proc.returncode != 0


def test_subnet_create_from_pool_with_prefix_length(cloud):
    cloud.osc("demo", "network", "create", "pool-net")
    out = _json(
        cloud.osc(
            "demo",
            "subnet",
            "create",
            "--network",
            "pool-net",
            "--subnet-pool",
            "pool-a",
            "--prefix-length",
            "26",
            "pool-sub",
            "-f",
            "json",
        )
    )
    assert out["cidr"] == "10.50.0.0/26" and out["gateway_ip"] == "10.50.0.1"
    pool = _json(cloud.osc("demo", "subnet", "pool", "show", "pool-a", "-f", "json"))
    assert out["subnetpool_id"] == pool["id"]
    second = _json(
        cloud.osc(
            "demo", "subnet", "create", "--network", "pool-net", "--subnet-pool", "pool-a", "pool-sub2", "-f", "json"
        )
    )
    assert second["cidr"] == "10.50.1.0/24"
    net = _json(cloud.osc("demo", "network", "show", "pool-net", "-f", "json"))
    assert net["ipv4_address_scope"] == pool["address_scope_id"]


def test_subnet_pool_set_grows_prefixes(cloud):
    cloud.osc("admin", "subnet", "pool", "set", "--pool-prefix", "10.60.0.0/24", "pool-a")
    out = _json(cloud.osc("admin", "subnet", "pool", "show", "pool-a", "-f", "json"))
    assert sorted(out["prefixes"]) == ["10.50.0.0/16", "10.60.0.0/24"]


def test_member_pool_and_sdk(cloud):
    cloud.osc(
        "demo",
        "subnet",
        "pool",
        "create",
        "--pool-prefix",
        "192.168.100.0/24",
        "--default-prefix-length",
        "28",
        "my-pool",
    )
    proc = cloud.osc(
        "demo", "subnet", "pool", "create", "--pool-prefix", "192.168.101.0/24", "--share", "not-allowed", ok=False
    )
    assert proc.returncode != 0
    conn = openstack.connect(
        auth_url=cloud.demo["OS_AUTH_URL"],
        cacert=cloud.demo.get("OS_CACERT"),  # TLS: the cloud's CA (openrc OS_CACERT)
        project_name=cloud.demo["OS_PROJECT_NAME"],
        username=cloud.demo["OS_USERNAME"],
        password=cloud.demo["OS_PASSWORD"],
        user_domain_name=cloud.demo.get("OS_USER_DOMAIN_NAME", "Default"),
        project_domain_name=cloud.demo.get("OS_PROJECT_DOMAIN_NAME", "Default"),
    )
    try:
        pool = conn.network.find_subnet_pool("my-pool")
        assert pool.default_prefix_length == 28 and pool.prefixes == ["192.168.100.0/24"]
        net = conn.network.create_network(name="sdk-pool-net")
        sub = conn.network.create_subnet(network_id=net.id, ip_version=4, subnet_pool_id=pool.id)
        assert sub.cidr == "192.168.100.0/28"
        conn.network.delete_subnet(sub)
        conn.network.delete_network(net)
    finally:
        conn.close()
    cloud.osc("demo", "subnet", "pool", "delete", "my-pool")


def test_prefix_actions_over_raw_http_then_cli(cloud):
    """openstacksdk has no call for subnetpool-prefix-ops: its session sends the actions; the CLI
    sees the result and grows the pool with ``set --pool-prefix`` (an update of ``prefixes``)."""
    pool = _json(
        cloud.osc("demo", "subnet", "pool", "create", "--pool-prefix", "192.168.110.0/24", "ops-pool", "-f", "json")
    )
    conn = openstack.connect(
        auth_url=cloud.demo["OS_AUTH_URL"],
        cacert=cloud.demo.get("OS_CACERT"),  # TLS: the cloud's CA (openrc OS_CACERT)
        project_name=cloud.demo["OS_PROJECT_NAME"],
        username=cloud.demo["OS_USERNAME"],
        password=cloud.demo["OS_PASSWORD"],
        user_domain_name=cloud.demo.get("OS_USER_DOMAIN_NAME", "Default"),
        project_domain_name=cloud.demo.get("OS_PROJECT_DOMAIN_NAME", "Default"),
    )
    try:
        exts = {e.alias for e in conn.network.extensions()}
        assert "subnetpool-prefix-ops" in exts
        added = conn.network.put(f"/subnetpools/{pool['id']}/add_prefixes", json={"prefixes": ["192.168.111.0/24"]})
        assert added.status_code == 200 and added.json() == {"prefixes": ["192.168.110.0/23"]}
        removed = conn.network.put(
            f"/subnetpools/{pool['id']}/remove_prefixes", json={"prefixes": ["192.168.110.0/24"]}
        )
        assert removed.status_code == 200 and removed.json() == {"prefixes": ["192.168.111.0/24"]}
    finally:
        conn.close()
    shown = _json(cloud.osc("demo", "subnet", "pool", "show", "ops-pool", "-f", "json"))
    assert shown["prefixes"] == ["192.168.111.0/24"]
    cloud.osc("demo", "subnet", "pool", "set", "--pool-prefix", "192.168.112.0/24", "ops-pool")
    shown = _json(cloud.osc("demo", "subnet", "pool", "show", "ops-pool", "-f", "json"))
    assert sorted(shown["prefixes"]) == ["192.168.111.0/24", "192.168.112.0/24"]
    cloud.osc("demo", "subnet", "pool", "delete", "ops-pool")
