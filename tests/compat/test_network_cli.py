"""The seed's network commands, run with the unchanged ``openstack`` CLI and
openstacksdk against ``neutrino up``.  The tests of this module share one
cloud and build on each other in file order (like the seed's walkthrough)."""

from __future__ import annotations

import ast
import json

import openstack
import pytest
import yaml

pytestmark = pytest.mark.compat


def _json(proc) -> dict:
    return json.loads(proc.stdout)


def test_admin_creates_flat_external_network(cloud):
    out = _json(
        cloud.osc(
            "admin",
            "network",
            "create",
            "--share",
            "--external",
            "--provider-network-type",
            "flat",
            "--provider-physical-network",
            "physnet",
            "flat-network",
            "-f",
            "json",
        )
    )
    assert out["name"] == "flat-network"
    assert out["provider:network_type"] == "flat"
    assert out["provider:physical_network"] == "physnet"
    assert out["router:external"] is True and out["shared"] is True
    assert out["mtu"] == 1500


def test_subnet_create_with_pool(cloud):
    out = _json(
        cloud.osc(
            "admin",
            "subnet",
            "create",
            "--dhcp",
            "--subnet-range",
            "172.16.0.0/24",
            "--network",
            "flat-network",
            "--allocation-pool",
            "start=172.16.0.2,end=172.16.0.10",
            "flat-subnet",
            "-f",
            "json",
        )
    )
    assert out["cidr"] == "172.16.0.0/24"
    assert out["gateway_ip"] == "172.16.0.1"
    assert out["allocation_pools"] == [{"start": "172.16.0.2", "end": "172.16.0.10"}]
    assert out["enable_dhcp"] is True


def test_network_show_yaml(cloud):
    out = yaml.safe_load(cloud.osc("admin", "network", "show", "flat-network", "-f", "yaml").stdout)
    assert out["router:external"] is True
    assert len(out["subnets"]) == 1
    assert out["provider:network_type"] == "flat"


def test_demo_network_is_vxlan_with_mtu_1450(cloud):
    out = _json(cloud.osc("demo", "network", "create", "demo-net", "-f", "json"))
    assert out["mtu"] == 1450
    # A member does not see provider attributes ...
    assert out.get("provider:network_type") is None
    # ... an admin does.
    admin_view = _json(cloud.osc("admin", "network", "show", out["id"], "-f", "json"))
    assert admin_view["provider:network_type"] == "vxlan"
    assert 1 <= admin_view["provider:segmentation_id"] <= 1000
    cloud.osc("demo", "subnet", "create", "--subnet-range", "10.0.0.0/24", "--network", "demo-net", "demo-subnet")


def test_member_forbidden_cases(cloud):
    cases = [
        ("network", "create", "--provider-network-type", "vlan", "--provider-physical-network", "physnet", "x1"),
        ("network", "create", "--share", "x2"),
        ("network", "create", "--external", "x3"),
    ]
    for args in cases:
        proc = cloud.osc("demo", *args, ok=False)
        assert proc.returncode != 0
        assert "ForbiddenException: 403" in proc.stderr, proc.stderr
        assert "is disallowed by policy" in proc.stderr
    proc = cloud.osc("demo", "port", "create", "--network", "demo-net", "--host", "compute1", "p-bad", ok=False)
    assert "ForbiddenException: 403" in proc.stderr and "binding:host_id" in proc.stderr
    # Nothing was created by the refused calls.
    names = cloud.osc("admin", "network", "list", "-f", "value", "-c", "Name").stdout.split()
    assert not {"x1", "x2", "x3"} & set(names)
    assert "p-bad" not in cloud.osc("admin", "port", "list", "-f", "value", "-c", "Name").stdout.split()


def test_port_set_no_security_group_disable_port_security(cloud):
    port = _json(cloud.osc("demo", "port", "create", "--network", "demo-net", "vm-port", "-f", "json"))
    assert len(port["security_group_ids"]) == 1
    cloud.osc("demo", "port", "set", "--no-security-group", "--disable-port-security", "vm-port")
    after = _json(cloud.osc("demo", "port", "show", "vm-port", "-f", "json"))
    assert after["security_group_ids"] == []
    assert after["port_security_enabled"] is False


def test_port_list_filters_and_value_format(cloud):
    cloud.osc("admin", "port", "create", "--network", "flat-network", "--device-owner", "network:dhcp", "dhcp-port")
    cloud.osc("admin", "port", "create", "--network", "flat-network", "other-port")
    lines = (
        cloud.osc("admin", "port", "list", "--device-owner", "network:dhcp", "--network", "flat-network", "-f", "value")
        .stdout.strip()
        .splitlines()
    )
    assert len(lines) == 1
    port_id, name, mac, rest = lines[0].split(" ", 3)
    fixed, status = rest.rsplit(" ", 1)
    assert name == "dhcp-port" and mac.startswith("fa:16:3e:")
    ips = ast.literal_eval(fixed)
    # The DHCP port gets the lowest free address of the pool.
    assert ips[0]["ip_address"] == "172.16.0.2"
    assert status == "DOWN"


def test_subnet_set_dns_nameserver_appends(cloud):
    cloud.osc("admin", "subnet", "set", "--dns-nameserver", "8.8.8.8", "flat-subnet")
    cloud.osc("admin", "subnet", "set", "--dns-nameserver", "1.1.1.1", "flat-subnet")
    out = _json(cloud.osc("admin", "subnet", "show", "flat-subnet", "-f", "json"))
    assert out["dns_nameservers"] == ["1.1.1.1", "8.8.8.8"]


def test_router_gateway_interface_and_floating_ip(cloud):
    cloud.osc("demo", "router", "create", "demo-router")
    cloud.osc("demo", "router", "set", "--external-gateway", "flat-network", "demo-router")
    cloud.osc("demo", "router", "add", "subnet", "demo-router", "demo-subnet")
    router = _json(cloud.osc("admin", "router", "show", "demo-router", "-f", "json"))
    gw = router["external_gateway_info"]
    assert gw["network_id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("172.16.0.")
    owners = cloud.osc("admin", "port", "list", "--router", "demo-router", "-f", "value", "-c", "ID").stdout.split()
    assert len(owners) == 2  # the gateway and the interface
    fip = _json(cloud.osc("demo", "floating", "ip", "create", "--subnet", "flat-subnet", "flat-network", "-f", "json"))
    assert fip["floating_ip_address"].startswith("172.16.0.")
    target = _json(cloud.osc("demo", "port", "create", "--network", "demo-net", "fip-target", "-f", "json"))
    cloud.osc("demo", "floating", "ip", "set", "--port", "fip-target", fip["id"])
    after = _json(cloud.osc("demo", "floating", "ip", "show", fip["id"], "-f", "json"))
    assert after["port_id"] == target["id"]
    assert after["fixed_ip_address"] == target["fixed_ips"][0]["ip_address"]
    assert after["router_id"] == router["id"]
    # A member may not choose the external address of its gateway.
    proc = cloud.osc(
        "demo",
        "router",
        "set",
        "--external-gateway",
        "flat-network",
        "--fixed-ip",
        "subnet=flat-subnet,ip-address=172.16.0.9",
        "demo-router",
        ok=False,
    )
    assert "ForbiddenException: 403" in proc.stderr


def test_openstacksdk_roundtrip(cloud):
    conn = openstack.connect(
        auth_url=cloud.demo["OS_AUTH_URL"],
        cacert=cloud.demo.get("OS_CACERT"),  # TLS: the cloud's CA (openrc OS_CACERT)
        username="demo",
        password=cloud.demo["OS_PASSWORD"],
        project_name="demo",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )
    net = conn.network.create_network(name="sdk-net")
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="192.168.50.0/24", name="sdk-sub")
    port = conn.network.create_port(network_id=net.id, name="sdk-port")
    assert port.fixed_ips[0]["subnet_id"] == sub.id
    assert conn.network.find_network("sdk-net").id == net.id
    names = {p.name for p in conn.network.ports(network_id=net.id)}
    assert names == {"sdk-port"}
    conn.network.delete_port(port)
    conn.network.delete_subnet(sub)
    conn.network.delete_network(net)
    assert conn.network.find_network("sdk-net") is None
