"""Subnets (reference §4.2, §7.2, §10.2, §10.10): validation, update, delete, policy."""

from __future__ import annotations

import pytest

from tests.api.conftest import error


def test_osc_subnet_create(api):
    net = api.network(
        shared=True,
        name="flat-network",
        **{"router:external": True, "provider:network_type": "flat", "provider:physical_network": "physnet"},
    )
    body = {
        "subnet": {
            "ip_version": 4,
            "cidr": "172.16.0.0/24",
            "allocation_pools": [{"start": "172.16.0.2", "end": "172.16.0.10"}],
            "network_id": net["id"],
            "name": "flat-subnet",
            "enable_dhcp": True,
        }
    }
    sub = api.ok(api.post("subnets", body), 201)["subnet"]
    assert sub["gateway_ip"] == "172.16.0.1" and sub["router:external"] is True
    assert sub["revision_number"] == 0
    assert sub["allocation_pools"] == [{"start": "172.16.0.2", "end": "172.16.0.10"}]
    expected = [
        "id",
        "name",
        "tenant_id",
        "project_id",
        "network_id",
        "ip_version",
        "subnetpool_id",
        "enable_dhcp",
        "ipv6_ra_mode",
        "ipv6_address_mode",
        "gateway_ip",
        "cidr",
        "allocation_pools",
        "host_routes",
        "dns_nameservers",
        "router:external",
        "segment_id",
        "service_types",
        "description",
        "tags",
        "created_at",
        "updated_at",
        "revision_number",
    ]
    assert set(sub) == set(expected)


def test_member_view_hides_segment_id(api):
    net, sub = api.net_with_subnet()
    assert "segment_id" not in sub
    assert api.show("subnets", "subnet", sub["id"])["segment_id"] is None


def test_create_defaults(api):
    net, sub = api.net_with_subnet("10.0.0.0/24")
    assert sub["enable_dhcp"] is True and sub["dns_nameservers"] == [] and sub["host_routes"] == []
    assert sub["ipv6_ra_mode"] is None and sub["ipv6_address_mode"] is None and sub["subnetpool_id"] is None
    assert sub["service_types"] == [] and sub["project_id"] == "p-demo" and sub["router:external"] is False


def test_cidr_host_bits_are_masked(api):
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], "10.0.0.5/24", as_="demo")
    assert sub["cidr"] == "10.0.0.0/24" and sub["gateway_ip"] == "10.0.0.1"


def test_cidr_without_prefix_is_a_host_route(api):
    net = api.network(as_="demo")
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0"}}, as_="demo"),
        400,
        "InvalidInput",
        "Invalid input for operation: Subnet has a prefix length that is incompatible with DHCP service enabled.",
    )
    sub = api.subnet(net["id"], "10.1.0.0", as_="demo", enable_dhcp=False)
    assert sub["cidr"] == "10.1.0.0/32"


def test_overlap_only_on_the_same_network(api):
    net, sub = api.net_with_subnet("10.0.0.0/24")
    before = api.snapshot()
    error(
        api.post(
            "subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.128/25"}}, as_="demo"
        ),
        400,
        "InvalidInput",
        f"Invalid input for operation: Requested subnet with cidr: 10.0.0.128/25 for network: {net['id']} "
        "overlaps with another subnet.",
    )
    assert api.snapshot() == before
    other, _ = api.net_with_subnet("10.0.0.0/24", as_="other")  # other networks may overlap
    api.net_with_subnet("10.0.0.0/24", as_="demo")


@pytest.mark.parametrize(
    "cidr,version,msg",
    [
        ("10.1.0.0/24", 6, "cidr '10.1.0.0/24' does not match the ip_version '6'"),
        ("fd00::/64", 4, "cidr 'fd00::/64' does not match the ip_version '4'"),
    ],
)
def test_cidr_version_mismatch(api, cidr, version, msg):
    net = api.network(as_="demo")
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": version, "cidr": cidr}}, as_="demo"),
        400,
        "InvalidInput",
        f"Invalid input for operation: {msg}.",
    )


def test_bad_ip_version_and_cidr(api):
    net = api.network(as_="demo")
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 5, "cidr": "10.0.0.0/24"}}, as_="demo"),
        400,
        "HTTPBadRequest",
        "Invalid input for ip_version. Reason: '5' is not in [4, 6].",
    )
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/33"}}, as_="demo"),
        400,
        "HTTPBadRequest",
        "Invalid input for cidr. Reason: '10.0.0.0/33' is not a valid IP subnet.",
    )


def test_no_cidr_and_no_pool(api):
    net = api.network(as_="demo")
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4}}, as_="demo"),
        400,
        "BadRequest",
        "Bad subnets request: a subnetpool must be specified in the absence of a cidr.",
    )


@pytest.mark.parametrize(
    "cidr,ok",
    [
        ("10.0.0.0/30", True),
        ("10.0.0.0/31", False),
        ("10.0.0.0/32", False),
        ("fd00::/126", True),
        ("fd00::/127", False),
    ],
)
def test_prefix_length_and_dhcp(api, cidr, ok):
    net = api.network(as_="demo")
    body = {"subnet": {"network_id": net["id"], "ip_version": 6 if ":" in cidr else 4, "cidr": cidr}}
    r = api.post("subnets", body, as_="demo")
    if ok:
        assert r.status_code == 201
    else:
        error(
            r,
            400,
            "InvalidInput",
            "Invalid input for operation: Subnet has a prefix length that is incompatible with DHCP service enabled.",
        )
        body["subnet"]["enable_dhcp"] = False
        assert api.post("subnets", body, as_="demo").status_code == 201


def test_multicast_and_loopback_refused_with_dhcp(api):
    net = api.network(as_="demo")
    for cidr in ("224.0.0.0/24", "127.0.0.0/24"):
        r = api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": cidr}}, as_="demo")
        error(r, 400, "InvalidInput")


def test_zero_prefix_refused(api):
    net = api.network(as_="demo")
    r = api.post(
        "subnets",
        {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "0.0.0.0/0", "enable_dhcp": False}},
        as_="demo",
    )
    error(r, 400, "InvalidInput")


@pytest.mark.parametrize("gw", ["10.1.0.0", "10.1.0.255", "fd00::1"])
def test_gateway_invalid(api, gw):
    net = api.network(as_="demo")
    r = api.post(
        "subnets",
        {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": gw}},
        as_="demo",
    )
    error(r, 400, "InvalidInput", "Invalid input for operation: Gateway is not valid on subnet.")


def test_dns_nameservers(api):
    net = api.network(as_="demo")
    base = {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}
    before = api.snapshot()
    six = [f"10.9.9.{i}" for i in range(1, 7)]
    error(
        api.post("subnets", {"subnet": dict(base, dns_nameservers=six)}, as_="demo"),
        400,
        "DNSNameServersExhausted",
        "Unable to complete operation for new subnet. The number of DNS nameservers exceeds the limit 5.",
    )
    error(
        api.post("subnets", {"subnet": dict(base, dns_nameservers=["8.8.8.8", "8.8.8.8"])}, as_="demo"),
        400,
        "HTTPBadRequest",
        "Invalid input for dns_nameservers. Reason: Duplicate nameserver '8.8.8.8'.",
    )
    error(
        api.post("subnets", {"subnet": dict(base, dns_nameservers=["dns.example"])}, as_="demo"),
        400,
        "HTTPBadRequest",
        "Invalid input for dns_nameservers. Reason: 'dns.example' is not a valid IP address.",
    )
    assert api.snapshot() == before
    sub = api.ok(api.post("subnets", {"subnet": dict(base, dns_nameservers=["8.8.8.8", "1.1.1.1"])}, as_="demo"), 201)[
        "subnet"
    ]
    assert sub["dns_nameservers"] == ["8.8.8.8", "1.1.1.1"]
    # OSC merges on the client and sends the whole list; neutron keeps the order given.
    upd = api.ok(api.put(f"subnets/{sub['id']}", {"subnet": {"dns_nameservers": ["1.1.1.1", "8.8.8.8"]}}, as_="demo"))[
        "subnet"
    ]
    assert upd["dns_nameservers"] == ["1.1.1.1", "8.8.8.8"] and upd["revision_number"] == 1
    error(
        api.put(f"subnets/{sub['id']}", {"subnet": {"dns_nameservers": six}}, as_="demo"),
        400,
        "DNSNameServersExhausted",
        f"Unable to complete operation for {sub['id']}. The number of DNS nameservers exceeds the limit 5.",
    )


def test_host_routes(make_api):
    api = make_api({("DEFAULT", "max_subnet_host_routes"): "2"})
    net = api.network(as_="demo")
    route = {"destination": "192.168.0.0/24", "nexthop": "10.0.0.5"}
    sub = api.subnet(net["id"], "10.0.0.0/24", as_="demo", host_routes=[route])
    assert sub["host_routes"] == [route]
    routes = [{"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.5"} for i in range(3)]
    error(api.put(f"subnets/{sub['id']}", {"subnet": {"host_routes": routes}}, as_="demo"), 400, "HostRoutesExhausted")
    error(
        api.put(f"subnets/{sub['id']}", {"subnet": {"host_routes": [{"destination": "x"}]}}, as_="demo"),
        400,
        "HTTPBadRequest",
        contains="Invalid input for host_routes.",
    )
    upd = api.ok(api.put(f"subnets/{sub['id']}", {"subnet": {"host_routes": []}}, as_="demo"))["subnet"]
    assert upd["host_routes"] == []


def test_read_only_on_update(api):
    net, sub = api.net_with_subnet()
    for attr, value in (
        ("cidr", "10.9.0.0/24"),
        ("ip_version", 6),
        ("network_id", net["id"]),
        ("ipv6_ra_mode", "slaac"),
        ("ipv6_address_mode", "slaac"),
        ("subnetpool_id", None),
        ("prefixlen", 24),
    ):
        error(
            api.put(f"subnets/{sub['id']}", {"subnet": {attr: value}}, as_="demo"),
            400,
            "HTTPBadRequest",
            f"Cannot update read-only attribute {attr}",
        )


def test_update_name_gateway_and_pools(api):
    net, sub = api.net_with_subnet("10.0.0.0/24")
    upd = api.ok(
        api.put(
            f"subnets/{sub['id']}",
            {
                "subnet": {
                    "name": "n",
                    "gateway_ip": "10.0.0.254",
                    "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.100"}],
                }
            },
            as_="demo",
        )
    )["subnet"]
    assert upd["name"] == "n" and upd["gateway_ip"] == "10.0.0.254"
    assert upd["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.100"}]
    upd = api.ok(api.put(f"subnets/{sub['id']}", {"subnet": {"gateway_ip": None}}, as_="demo"))["subnet"]
    assert upd["gateway_ip"] is None
    before = api.snapshot()
    error(
        api.put(f"subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.0.0.50"}}, as_="demo"),
        409,
        "GatewayConflictWithAllocationPools",
        "Gateway ip 10.0.0.50 conflicts with allocation pool 10.0.0.2-10.0.0.100.",
    )
    assert api.snapshot() == before


def test_update_enable_dhcp(api):
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], "10.0.0.0/31", as_="demo", enable_dhcp=False)
    error(api.put(f"subnets/{sub['id']}", {"subnet": {"enable_dhcp": True}}, as_="demo"), 400, "InvalidInput")
    v6 = api.subnet(net["id"], "fd00::/64", as_="demo", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    error(
        api.put(f"subnets/{v6['id']}", {"subnet": {"enable_dhcp": False}}, as_="demo"),
        400,
        "InvalidInput",
        "Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set "
        "to False.",
    )


def test_delete_subnet(api):
    net, sub = api.net_with_subnet()
    assert api.delete(f"subnets/{sub['id']}", as_="demo").status_code == 204
    assert api.show("networks", "network", net["id"], "demo")["subnets"] == []
    error(api.get(f"subnets/{sub['id']}", as_="demo"), 404, "SubnetNotFound")


def test_delete_blocked_by_user_port(api):
    net, sub = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    before = api.snapshot()
    error(
        api.delete(f"subnets/{sub['id']}", as_="demo"),
        409,
        "SubnetInUse",
        f"Unable to complete operation on subnet {sub['id']}: One or more ports have an IP allocation from "
        "this subnet.",
    )
    assert api.snapshot() == before
    api.ok(api.delete(f"ports/{port['id']}", as_="demo"), 204)
    api.ok(api.delete(f"subnets/{sub['id']}", as_="demo"), 204)


def test_delete_blocked_by_router_interface_port(api):
    net, sub = api.net_with_subnet(as_="admin")
    api.port(
        net["id"],
        device_owner="network:router_interface",
        fixed_ips=[{"subnet_id": sub["id"], "ip_address": sub["gateway_ip"]}],
    )
    error(api.delete(f"subnets/{sub['id']}"), 409, "SubnetInUse")


def test_delete_removes_dhcp_addresses(api):
    net, sub = api.net_with_subnet(as_="admin")
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    assert len(dhcp["fixed_ips"]) == 1
    api.ok(api.delete(f"subnets/{sub['id']}"), 204)
    assert api.show("ports", "port", dhcp["id"])["fixed_ips"] == []


def test_delete_slaac_subnet_removes_user_addresses(api):
    net = api.network(as_="demo")
    v4 = api.subnet(net["id"], "10.0.0.0/24", as_="demo")
    v6 = api.subnet(net["id"], "fd00:1::/64", as_="demo", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = api.port(net["id"], as_="demo")
    assert {f["subnet_id"] for f in port["fixed_ips"]} == {v4["id"], v6["id"]}
    api.ok(api.delete(f"subnets/{v6['id']}", as_="demo"), 204)
    assert [f["subnet_id"] for f in api.show("ports", "port", port["id"])["fixed_ips"]] == [v4["id"]]


def test_member_subnet_policy(api):
    private = api.network(as_="other")
    shared = api.network(shared=True)
    before = api.snapshot()
    body = {"subnet": {"network_id": private["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}}
    error(api.post("subnets", body, as_="demo"), 404, "NetworkNotFound", f"Network {private['id']} could not be found.")
    body["subnet"]["network_id"] = shared["id"]
    error(
        api.post("subnets", body, as_="demo"), 403, "PolicyNotAuthorized", "rule:create_subnet is disallowed by policy"
    )
    admin_only = dict(body["subnet"], service_types=["compute:nova"], network_id=private["id"])
    error(
        api.post("subnets", {"subnet": admin_only}, as_="other"),
        403,
        "PolicyNotAuthorized",
        "(rule:create_subnet and rule:create_subnet:service_types) is disallowed by policy",
    )
    assert api.snapshot() == before
    # A subnet on another project's network that is visible only to its owner.
    sub = api.subnet(private["id"], "10.0.0.0/24", as_="other")
    error(api.get(f"subnets/{sub['id']}", as_="demo"), 404, "SubnetNotFound")
    error(api.put(f"subnets/{sub['id']}", {"subnet": {"name": "x"}}, as_="demo"), 404, "SubnetNotFound")
    error(api.delete(f"subnets/{sub['id']}", as_="demo"), 404, "SubnetNotFound")
    # Subnets of a shared network are visible, but only the owner may change them.
    ssub = api.subnet(shared["id"], "10.7.0.0/24")
    error(
        api.put(f"subnets/{ssub['id']}", {"subnet": {"name": "x"}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "rule:update_subnet is disallowed by policy",
    )
    error(
        api.delete(f"subnets/{ssub['id']}", as_="demo"),
        403,
        "PolicyNotAuthorized",
        "rule:delete_subnet is disallowed by policy",
    )


def test_network_owner_manages_subnets_created_by_admin(api):
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], "10.0.0.0/24", project_id="p-other")
    assert sub["project_id"] == "p-other"
    assert api.show("subnets", "subnet", sub["id"], "demo")["id"] == sub["id"]
    api.ok(api.put(f"subnets/{sub['id']}", {"subnet": {"name": "mine"}}, as_="demo"))


def test_subnet_quota(make_api):
    api = make_api({("quotas", "quota_subnet"): "1"})
    net, _ = api.net_with_subnet("10.0.0.0/24")
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0/24"}}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['subnet'].",
    )


def test_bulk_subnets_atomic(api):
    net = api.network(as_="demo")
    before = api.snapshot()
    body = {
        "subnets": [
            {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"},
            {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/25"},
        ]
    }
    error(api.post("subnets", body, as_="demo"), 400, "InvalidInput", contains="overlaps with another subnet")
    assert api.snapshot() == before
    body["subnets"][1]["cidr"] = "10.0.1.0/24"
    assert len(api.ok(api.post("subnets", body, as_="demo"), 201)["subnets"]) == 2
