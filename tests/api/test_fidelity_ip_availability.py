"""Network IP availability (``network-ip-availability``) and service providers (``service-type``), issue 14.

total_ips = the size of the subnet's allocation pools; used_ips = the
addresses allocated on the subnet; network figures are the sums.
"""

from __future__ import annotations

from tests.api.conftest import error


def _avail(api, query: str = "", as_: str = "admin") -> list[dict]:
    return api.list("network-ip-availabilities", as_, query)


def test_counts_pools_and_allocations(api):
    net = api.network(name="n1")
    s4 = api.subnet(net["id"], "10.0.0.0/24", name="v4")  # pool .2-.254: 253
    s6 = api.subnet(
        net["id"], "2001:db8::/120", name="v6", ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful"
    )  # :: gateway, pool ::1-::ff
    api.port(net["id"])  # one v4 + one v6 address
    api.port(net["id"], fixed_ips=[{"subnet_id": s4["id"]}])
    body = api.show("network-ip-availabilities", "network_ip_availability", net["id"])
    assert body == {
        "network_id": net["id"],
        "network_name": "n1",
        "project_id": "p-admin",
        "tenant_id": "p-admin",
        "total_ips": 253 + 255,
        "used_ips": 3,
        "subnet_ip_availability": sorted(
            [
                {
                    "subnet_id": s4["id"],
                    "subnet_name": "v4",
                    "cidr": "10.0.0.0/24",
                    "ip_version": 4,
                    "total_ips": 253,
                    "used_ips": 2,
                },
                {
                    "subnet_id": s6["id"],
                    "subnet_name": "v6",
                    "cidr": "2001:db8::/120",
                    "ip_version": 6,
                    "total_ips": 255,
                    "used_ips": 1,
                },
            ],
            key=lambda s: s["subnet_id"],
        ),
    }


def test_pools_and_addresses_outside_them(api):
    net = api.network()
    sub = api.subnet(
        net["id"],
        "10.1.0.0/24",
        allocation_pools=[{"start": "10.1.0.10", "end": "10.1.0.19"}, {"start": "10.1.0.100", "end": "10.1.0.104"}],
    )
    api.port(net["id"], fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.1.0.200"}])  # outside the pools
    (got,) = _avail(api, f"network_id={net['id']}")
    assert (got["total_ips"], got["used_ips"]) == (15, 1)


def test_big_ipv6_totals_are_exact(api):
    net = api.network()
    api.subnet(net["id"], "2001:db8:1::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    api.subnet(net["id"], "2001:db8:2::/64", ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful")
    (got,) = _avail(api, f"network_id={net['id']}")
    sizes = [s["total_ips"] for s in got["subnet_ip_availability"]]
    assert sizes == [2**64 - 1] * 2  # all but the gateway (::)
    assert got["total_ips"] == 2**65 - 2  # beyond 64 bits, still exact


def test_network_without_subnets_and_filters(api):
    empty = api.network(name="empty", as_="demo")
    net, _ = api.net_with_subnet("10.2.0.0/24", "other")
    v6 = api.network(name="six")
    api.subnet(v6["id"], "2001:db8:9::/64")
    everything = {a["network_id"]: a for a in _avail(api)}
    assert everything[empty["id"]]["total_ips"] == 0 and everything[empty["id"]]["subnet_ip_availability"] == []
    assert {net["id"], v6["id"]} <= set(everything)
    assert [a["network_id"] for a in _avail(api, "network_name=empty")] == [empty["id"]]
    assert [a["network_id"] for a in _avail(api, "project_id=p-other")] == [net["id"]]
    assert [a["network_id"] for a in _avail(api, "tenant_id=p-other")] == [net["id"]]
    six = _avail(api, "ip_version=6")
    assert [a["network_id"] for a in six] == [v6["id"]]
    assert [a["network_id"] for a in _avail(api, f"ip_version=4&network_id={net['id']}")] == [net["id"]]
    assert _avail(api, f"ip_version=6&network_id={net['id']}") == []
    shaped = _avail(api, f"network_id={net['id']}&fields=network_id&fields=used_ips")
    assert shaped == [{"network_id": net["id"], "used_ips": 0}]
    error(api.get("network-ip-availabilities?ip_version=5"), 400, "HTTPBadRequest")
    error(api.get("network-ip-availabilities?cidr=x"), 400, "HTTPBadRequest")


def test_admin_only(api):
    net, _ = api.net_with_subnet("10.3.0.0/24", "demo")
    assert _avail(api, as_="demo") == []
    error(api.get(f"network-ip-availabilities/{net['id']}", "demo"), 404, "HTTPNotFound")
    error(api.get("network-ip-availabilities/0c8d3a3e-0000-4000-8000-000000000009"), 404, "NetworkNotFound")
    assert api.req("POST", "network-ip-availabilities", json={"network_ip_availability": {}}).status_code in (400, 405)
    assert api.req("DELETE", f"network-ip-availabilities/{net['id']}").status_code == 405
    aliases = {e["alias"] for e in api.ok(api.get("extensions"))["extensions"]}
    assert {"network-ip-availability", "service-type", "tag-ports-during-bulk-creation"} <= aliases


# --- service providers -----------------------------------------------------------------------------
def test_service_providers(api):
    want = [{"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True}]
    assert api.list("service-providers") == want
    assert api.list("service-providers", "demo") == want
    assert api.list("service-providers", "reader", "service_type=L3_ROUTER_NAT") == want
    assert api.list("service-providers", "demo", "service_type=FIREWALL") == []
    assert api.list("service-providers", "demo", "fields=name") == [{"name": "single_node"}]
    assert api.req("POST", "service-providers", json={"service_provider": {}}).status_code in (400, 405)
    assert api.get("service-providers/single_node").status_code == 404
