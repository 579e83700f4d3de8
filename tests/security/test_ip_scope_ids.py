"""Issue 13, finding 3: IPv6 scope ids ("zone suffixes") and other text around addresses.

Python's ``ipaddress`` accepts ``fe80::1%<anything>`` (a newline, a comma, a
space included) and keeps the suffix in ``str()``.  Every address or CIDR the
API takes must refuse a ``%`` and any whitespace or control character with
Neutron's ``Invalid input for <attr>`` 400, leaving the database and the
change feed exactly as they were; and an address given in another textual
form (``2001:db8::0005``) is the same address (stored canonical, so it
cannot be allocated twice).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.compute_helpers import ComputeEnv, fault
from tests.api.conftest import Api, error
from tests.api.l3_helpers import external_network, floating_ip, router, topology

#: Values that are an address followed by something, or an address with blanks or control characters.
BAD_V6 = [
    "2001:db8::5%eth0",
    "2001:db8::5%a\nb",
    "2001:db8::5%a,b c",
    "2001:db8::5%",
    "2001:db8::5 ",
    " 2001:db8::5",
    "2001:db8::5\n",
]
BAD_V4 = ["10.0.0.5%eth0", "10.0.0.5 ", "\t10.0.0.5", "10.0.0.5\n", "10.0.0.5\x00"]
BAD_V6_CIDR = [
    "2001:db8::%x/64",
    "2001:db8::/64%x",
    "2001:db8::%a\nb/64",
    "2001:db8::/64 ",
    "2001:db8::/64\n",
    "2001:db8::/ 64",
]
BAD_V4_CIDR = ["10.9.0.0/24%x", "10.9.0.0/24 ", "10.9.0.0/24\n", " 10.9.0.0/24", "10.9.0.0/\t24"]


def _refused(api: Api, resp: Any, attr: str, before: dict[str, Any]) -> None:
    """A 400 ``Invalid input for <attr>`` and nothing changed (rows and change feed)."""
    error(resp, 400, "HTTPBadRequest", contains=f"Invalid input for {attr}. Reason: ")
    assert api.snapshot() == before


@pytest.fixture
def v6(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """Demo's network with an IPv6 subnet (2001:db8::/64) and an IPv4 one (10.0.0.0/24)."""
    net, sub6 = api.net_with_subnet("2001:db8::/64", "demo")
    api.subnet(net["id"], "10.0.0.0/24", "demo")
    return net, sub6


# --- ports ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_V6 + BAD_V4)
def test_port_fixed_ips(api: Api, v6: Any, bad: str) -> None:
    net, _ = v6
    port = api.port(net["id"], "demo")
    before = api.snapshot()
    _refused(
        api,
        api.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": bad}]}}, "demo"),
        "fixed_ips",
        before,
    )
    _refused(
        api, api.put(f"ports/{port['id']}", {"port": {"fixed_ips": [{"ip_address": bad}]}}, "demo"), "fixed_ips", before
    )


@pytest.mark.parametrize("bad", BAD_V6 + BAD_V4 + BAD_V6_CIDR + BAD_V4_CIDR)
def test_port_allowed_address_pairs(api: Api, v6: Any, bad: str) -> None:
    net, _ = v6
    port = api.port(net["id"], "demo")
    before = api.snapshot()
    pairs = [{"ip_address": bad}]
    _refused(
        api,
        api.post("ports", {"port": {"network_id": net["id"], "allowed_address_pairs": pairs}}, "demo"),
        "allowed_address_pairs",
        before,
    )
    _refused(
        api,
        api.put(f"ports/{port['id']}", {"port": {"allowed_address_pairs": pairs}}, "demo"),
        "allowed_address_pairs",
        before,
    )


# --- subnets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_V6_CIDR)
def test_subnet_cidr(api: Api, bad: str) -> None:
    net = api.network("demo")
    before = api.snapshot()
    _refused(
        api,
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 6, "cidr": bad}}, "demo"),
        "cidr",
        before,
    )


@pytest.mark.parametrize("bad", BAD_V4_CIDR)
def test_subnet_cidr_v4(api: Api, bad: str) -> None:
    net = api.network("demo")
    before = api.snapshot()
    _refused(
        api,
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": bad}}, "demo"),
        "cidr",
        before,
    )


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("gateway_ip", "2001:db8::1%eth0"),
        ("gateway_ip", "2001:db8::1%a\nb"),
        ("gateway_ip", "2001:db8::1 "),
        ("dns_nameservers", ["2001:db8::53%a,b c"]),
        ("dns_nameservers", ["2001:db8::53%eth0"]),
        ("dns_nameservers", ["2001:db8::53\n"]),
        ("host_routes", [{"destination": "2001:db8:1::/64", "nexthop": "2001:db8::9%x"}]),
        ("host_routes", [{"destination": "2001:db8:1::%x/64", "nexthop": "2001:db8::9"}]),
        ("host_routes", [{"destination": "2001:db8:1::/64\n", "nexthop": "2001:db8::9"}]),
        ("allocation_pools", [{"start": "2001:db8::10%x", "end": "2001:db8::20"}]),
        ("allocation_pools", [{"start": "2001:db8::10", "end": "2001:db8::20%a\nb"}]),
    ],
)
def test_subnet_address_fields(api: Api, attr: str, value: Any) -> None:
    net = api.network("demo")
    sub = api.subnet(net["id"], "2001:db8::/64", "demo")
    before = api.snapshot()
    body = {"network_id": net["id"], "ip_version": 6, "cidr": "2001:db8:2::/64", attr: value}
    _refused(api, api.post("subnets", {"subnet": body}, "demo"), attr, before)
    _refused(api, api.put(f"subnets/{sub['id']}", {"subnet": {attr: value}}, "demo"), attr, before)


# --- security groups -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ethertype", "bad"), [("IPv6", b) for b in BAD_V6 + BAD_V6_CIDR] + [("IPv4", b) for b in BAD_V4 + BAD_V4_CIDR]
)
def test_security_group_remote_ip_prefix(api: Api, ethertype: str, bad: str) -> None:
    sg = api.sg("demo", name="web")
    before = api.snapshot()
    body = {"security_group_id": sg["id"], "direction": "ingress", "ethertype": ethertype, "remote_ip_prefix": bad}
    _refused(api, api.post("security-group-rules", {"security_group_rule": body}, "demo"), "remote_ip_prefix", before)


# --- routers, floating IPs, port forwardings ----------------------------------------------------
@pytest.mark.parametrize("bad", ["172.16.0.5%eth0", "172.16.0.5 ", "172.16.0.5\n"])
def test_router_external_fixed_ips(api: Api, bad: str) -> None:
    ext, ext_sub = external_network(api)
    r = router(api, "admin")
    before = api.snapshot()
    info = {"network_id": ext["id"], "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": bad}]}
    _refused(
        api,
        api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": info}}, "admin"),
        "external_gateway_info",
        before,
    )


@pytest.mark.parametrize(
    "route",
    [
        {"destination": "10.9.0.0/24", "nexthop": "10.0.0.50%x"},
        {"destination": "10.9.0.0/24", "nexthop": "10.0.0.50\n"},
        {"destination": "10.9.0.0/24%x", "nexthop": "10.0.0.50"},
        {"destination": "2001:db8:9::/64", "nexthop": "2001:db8::50%a,b c"},
    ],
)
def test_router_extra_routes(api: Api, route: dict[str, str]) -> None:
    topo = topology(api)
    rid = topo.router["id"]
    before = api.snapshot()
    _refused(api, api.put(f"routers/{rid}", {"router": {"routes": [route]}}, "demo"), "routes", before)
    for action in ("add_extraroutes", "remove_extraroutes"):
        resp = api.put(f"routers/{rid}/{action}", {"router": {"routes": [route]}}, "demo")
        _refused(api, resp, "routes", before)


@pytest.mark.parametrize("bad", ["172.16.0.7%eth0", "172.16.0.7 ", "172.16.0.7\n"])
def test_floating_ip_address(api: Api, bad: str) -> None:
    ext, _ = external_network(api)
    before = api.snapshot()
    resp = api.post(
        "floatingips", {"floatingip": {"floating_network_id": ext["id"], "floating_ip_address": bad}}, "admin"
    )
    _refused(api, resp, "floating_ip_address", before)


@pytest.mark.parametrize("bad", ["10.0.0.5%eth0", "10.0.0.5\n"])
def test_floating_ip_fixed_ip_address(api: Api, bad: str) -> None:
    topo = topology(api)
    before = api.snapshot()
    resp = api.post(
        "floatingips",
        {
            "floatingip": {
                "floating_network_id": topo.ext_net["id"],
                "port_id": topo.port["id"],
                "fixed_ip_address": bad,
            }
        },
        "demo",
    )
    _refused(api, resp, "fixed_ip_address", before)


@pytest.mark.parametrize("bad", ["10.0.0.5%eth0", "10.0.0.5 ", "10.0.0.5\n"])
def test_port_forwarding_internal_ip_address(api: Api, bad: str) -> None:
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"])
    before = api.snapshot()
    body = {
        "port_forwarding": {
            "internal_ip_address": bad,
            "internal_port": 22,
            "external_port": 2222,
            "protocol": "tcp",
            "internal_port_id": topo.port["id"],
        }
    }
    _refused(api, api.post(f"floatingips/{fip['id']}/port_forwardings", body, "demo"), "internal_ip_address", before)


# --- the same address in another textual form ---------------------------------------------------
@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("2001:db8::5", "2001:db8::0005"),
        ("2001:db8::5", "2001:DB8:0:0:0:0:0:5"),
        ("2001:db8::a", "2001:db8::A"),
    ],
)
def test_same_address_in_another_form_is_already_allocated(api: Api, v6: Any, first: str, again: str) -> None:
    net, sub6 = v6
    port = api.port(net["id"], "demo", fixed_ips=[{"subnet_id": sub6["id"], "ip_address": first}])
    assert [f["ip_address"] for f in port["fixed_ips"]] == [first]
    before = api.snapshot()
    resp = api.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": again}]}}, "demo")
    error(resp, 409, "IpAddressAlreadyAllocated")
    assert api.snapshot() == before
    # Twice in one request is the same address twice.
    resp = api.post(
        "ports",
        {
            "port": {
                "network_id": net["id"],
                "fixed_ips": [{"ip_address": "2001:db8::7"}, {"ip_address": "2001:db8::0007"}],
            }
        },
        "demo",
    )
    error(resp, 400, "HTTPBadRequest", contains="Duplicate IP address")
    assert api.snapshot() == before


def test_stored_forms_are_canonical(api: Api, v6: Any) -> None:
    net, sub6 = v6
    port = api.port(
        net["id"],
        "demo",
        fixed_ips=[{"ip_address": "2001:DB8:0:0::0009"}],
        allowed_address_pairs=[{"ip_address": "2001:DB8::00aa/128"}],
    )
    assert port["fixed_ips"][0]["ip_address"] == "2001:db8::9"
    assert port["allowed_address_pairs"][0]["ip_address"] == "2001:db8::aa/128"


# --- Nova: networks[].fixed_ip -------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["10.0.0.5%eth0", "10.0.0.5 ", "10.0.0.5\n", 167772165, "2001:db8::5%a\nb"])
def test_nova_fixed_ip(compute_env: ComputeEnv, bad: Any) -> None:
    env = compute_env
    env.agent("cmp1")
    net = env.network("demo")
    before = _rows(env)
    resp = env.call(
        "POST",
        "servers",
        "demo",
        {
            "server": {
                "name": "vm",
                "imageRef": _image(),
                "flavorRef": "42",
                "networks": [{"uuid": net["id"], "fixed_ip": bad}],
            }
        },
    )
    fault(resp, 400, "badRequest", "Invalid fixed IP address")
    assert _rows(env) == before


def test_nova_fixed_ip_other_form_is_already_allocated(compute_env: ComputeEnv) -> None:
    env = compute_env
    env.agent("cmp1")
    net = env.network("demo", cidr="2001:db8::/64")
    env.port(net["id"], fixed_ips=[{"ip_address": "2001:db8::5"}])
    resp = env.call(
        "POST",
        "servers",
        "demo",
        {
            "server": {
                "name": "vm",
                "imageRef": _image(),
                "flavorRef": "42",
                "networks": [{"uuid": net["id"], "fixed_ip": "2001:db8::0005"}],
            }
        },
    )
    assert resp.status_code in (400, 409), resp.text
    ips = [f["ip_address"] for p in env.ok(env.neutron("GET", "/v2.0/ports"))["ports"] for f in p["fixed_ips"]]
    assert ips.count("2001:db8::5") == 1 and "2001:db8::0005" not in ips


@pytest.mark.parametrize(
    ("key", "bad"),
    [("accessIPv6", "2001:db8::5%eth0"), ("accessIPv4", "10.0.0.5\n"), ("accessIPv6", "2001:db8::5%a\nb")],
)
def test_nova_access_ips(compute_env: ComputeEnv, key: str, bad: str) -> None:
    env = compute_env
    env.agent("cmp1")
    net = env.network("demo")
    before = _rows(env)
    resp = env.call(
        "POST",
        "servers",
        "demo",
        {
            "server": {
                "name": "vm",
                "imageRef": _image(),
                "flavorRef": "42",
                "networks": [{"uuid": net["id"]}],
                key: bad,
            }
        },
    )
    assert resp.status_code == 400, resp.text
    assert _rows(env) == before


def _image() -> str:
    from tests.api.compute_helpers import CIRROS

    return CIRROS


def _rows(env: ComputeEnv) -> dict[str, list[tuple[Any, ...]]]:
    from sqlalchemy import select

    from neutrino.db import tables

    out = {}
    with env.db.read() as conn:
        for name, table in tables.metadata.tables.items():
            out[name] = sorted(tuple(repr(v) for v in r) for r in conn.execute(select(table)))
    return out
