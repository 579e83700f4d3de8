"""Regressions found by the API fuzzer (test_fuzz_api.py, bench/fuzz_bench.py): each answered a 5xx,
or was served although the OpenAPI document leaves it out.  Each now answers a success, or a
Neutron-format 4xx that changes nothing."""

from __future__ import annotations

import pytest

from tests.api.conftest import error


def test_network_with_segments_is_400(api):
    """Multi-segment networks are not supported: a client error (was 501 NotImplementedError)."""
    before = api.snapshot()
    for segments in (
        [{"provider:network_type": "vxlan"}, {"provider:network_type": "vlan"}],
        {"provider:network_type": "vxlan"},
        "x",
    ):
        error(
            api.post("networks", {"network": {"name": "n", "segments": segments}}),
            400,
            "InvalidInput",
            "Invalid input for operation: Multi-segment (multi-provider) networks are not supported.",
        )
    assert api.snapshot() == before


def test_subnet_from_a_subnet_pool_is_4xx(api):
    """No subnet pool exists here: naming one is 404, asking for the default one 400 (were 501)."""
    net = api.network("demo")
    before = api.snapshot()
    pool = "0d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool}}, "demo"),
        404,
        "SubnetPoolNotFound",
        f"Subnet pool {pool} could not be found.",
    )
    error(
        api.post(
            "subnets", {"subnet": {"network_id": net["id"], "ip_version": 6, "use_default_subnetpool": True}}, "demo"
        ),
        400,
        "BadRequest",
        "Bad subnets request: No default subnetpool found for IPv6.",
    )
    assert api.snapshot() == before


def test_only_get_on_the_resource_list_and_quota_tenant(api):
    """``/v2.0/`` and ``/v2.0/quotas/tenant`` are GET only (other methods answered the GET's 200)."""
    for method in ("POST", "PUT", "DELETE"):
        error(api.req(method, "/v2.0/", json={} if method != "DELETE" else None), 405, "HTTPMethodNotAllowed")
    error(api.req("POST", "/v2.0/quotas/tenant", "demo", json={}), 405, "HTTPMethodNotAllowed")
    assert api.get("quotas/tenant", "demo").json() == {"tenant": {"tenant_id": "p-demo"}}


def _report_agents(api) -> None:
    for agent in (
        {
            "agent_type": "DHCP agent",
            "binary": "neutron-dhcp-agent",
            "topic": "dhcp_agent",
            "host": "h1",
            "configurations": {},
        },
        {
            "agent_type": "L3 agent",
            "binary": "neutron-l3-agent",
            "topic": "l3_agent",
            "host": "h1",
            "configurations": {},
        },
    ):
        api.ok(api.req("POST", "/neutrino/v1/agents/report", "admin", json={"agent": agent}))


@pytest.mark.parametrize("query", ["limit=1", "limit=1&marker=nova", "limit=1&page_reverse=true"])
def test_availability_zones_with_a_limit(api, query):
    """Zones have no id to page by: a limit answers the whole list without links (was 500 KeyError)."""
    _report_agents(api)
    body = api.ok(api.get(f"availability_zones?{query}", "demo"))
    assert body == {
        "availability_zones": [
            {"name": "nova", "resource": "network", "state": "available"},
            {"name": "nova", "resource": "router", "state": "available"},
        ]
    }


def test_availability_zones_with_a_page_size_limit(make_api):
    """The same under ``[DEFAULT] pagination_max_limit``, which pages every list."""
    api = make_api({("DEFAULT", "pagination_max_limit"): "1"})
    _report_agents(api)
    assert len(api.ok(api.get("availability_zones", "demo"))["availability_zones"]) == 2
    assert len(api.ok(api.get("networks", "demo"))["networks"]) == 0


def test_null_mac_address_is_400(api):
    """``mac_address: null`` is not a MAC address (Neutron's validator): a PUT was 500 (NOT NULL)."""
    net = api.network("admin")
    port = api.port(net["id"])
    before = api.snapshot()
    msg = "Invalid input for mac_address. Reason: 'None' is not a valid MAC address."
    error(api.put(f"ports/{port['id']}", {"port": {"mac_address": None}}), 400, "HTTPBadRequest", msg)
    error(api.post("ports", {"port": {"network_id": net["id"], "mac_address": None}}), 400, "HTTPBadRequest", msg)
    assert api.snapshot() == before
    assert api.port(net["id"])["mac_address"]  # left out: one is generated


def test_null_port_security_enabled_is_400(api):
    """``port_security_enabled: null`` is not a boolean (neutron-lib's convert_to_boolean): a PUT was 500
    (NOT NULL); left out on create, the port still takes its network's value."""
    net = api.network("admin", port_security_enabled=False)
    port = api.port(net["id"])
    before = api.snapshot()
    msg = "Invalid input for operation: 'None' cannot be converted to boolean."
    error(api.put(f"ports/{port['id']}", {"port": {"port_security_enabled": None}}), 400, "InvalidInput", msg)
    error(
        api.post("ports", {"port": {"network_id": net["id"], "port_security_enabled": None}}), 400, "InvalidInput", msg
    )
    assert api.snapshot() == before
    assert port["port_security_enabled"] is False


def test_allocation_pool_of_mixed_ip_versions_is_400(api) -> None:
    """Found by the fuzzer: start and end of different IP versions was a 500 (TypeError)."""
    net = api.network(as_="demo")
    before = api.snapshot()
    r = api.post(
        "subnets",
        {
            "subnet": {
                "network_id": net["id"],
                "cidr": "10.0.0.0/24",
                "ip_version": 4,
                "allocation_pools": [{"start": "10.0.0.10", "end": "fd00::5"}],
            }
        },
        as_="demo",
    )
    assert r.status_code == 400 and r.json()["NeutronError"]["type"] == "InvalidAllocationPool", r.text
    assert api.snapshot() == before
    sub = api.subnet(net["id"], "10.0.0.0/24", as_="demo")
    r = api.put(
        f"subnets/{sub['id']}", {"subnet": {"allocation_pools": [{"start": "fd00::5", "end": "10.0.0.10"}]}}, as_="demo"
    )
    assert r.status_code == 400, r.text
