"""The typed values of ``neutrino.resources.types`` are what the services really return.

Each resource is made through the API, then read back from its service (``get`` and
``list``, the admin view the edge shapes): the value must have exactly the keys of its
TypedDict (all required ones, optional ones only as declared) and values of the declared
types, nested dicts included.  A service that grows, drops or retypes a key fails here
until ``neutrino.resources.gen_types`` (and so ``types.py``) says the same.
"""

from __future__ import annotations

import types as pytypes
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from neutrino.api.factory import make_network_api
from neutrino.context import RequestContext
from neutrino.feed.publisher import open_feed
from neutrino.resources import types as rt
from neutrino.resources.query import ListQuery
from tests.api import l3_helpers as l3
from tests.api.conftest import validate_token


def conforms(value: Any, hint: Any, path: str = "") -> list[str]:
    """The places where ``value`` is not a ``hint`` (empty: it is)."""
    if hint is Any:
        return []
    origin = get_origin(hint)
    if origin in (Union, pytypes.UnionType):
        tries = [conforms(value, arg, path) for arg in get_args(hint)]
        return [] if any(not t for t in tries) else [f"{path}: {value!r} is none of {hint}"]
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a dict"]
        keys = set(value)
        out = [f"{path}: missing {sorted(hint.__required_keys__ - keys)}"] if hint.__required_keys__ - keys else []
        extra = keys - hint.__required_keys__ - hint.__optional_keys__
        if extra:
            out.append(f"{path}: undeclared {sorted(extra)}")
        hints = get_type_hints(hint)
        for k in keys & set(hints):
            out += conforms(value[k], hints[k], f"{path}.{k}")
        return out
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [e for i, item in enumerate(value) for e in conforms(item, get_args(hint)[0], f"{path}[{i}]")]
    if origin is dict:
        return [] if isinstance(value, dict) else [f"{path}: {value!r} is not a dict"]
    if hint is None or hint is type(None):
        return [] if value is None else [f"{path}: {value!r} is not None"]
    if hint is int and isinstance(value, bool):
        return [f"{path}: {value!r} is a bool, not an int"]
    return [] if isinstance(value, hint) else [f"{path}: {value!r} is not {hint.__name__}"]


def _api(api: Any) -> Any:
    """The services of ``api``'s network API (built again on its database: reads only)."""
    return make_network_api(api.deps, validate_token, feed=open_feed(api.db, api.cfg.feed.retention))


def test_conforms_finds_what_is_wrong():
    good = {"subnet_id": "s", "ip_address": "10.0.0.2"}
    assert conforms(good, rt.FixedIp) == []
    assert conforms({"subnet_id": "s"}, rt.FixedIp) == [": missing ['ip_address']"]
    assert conforms({**good, "x": 1}, rt.FixedIp) == [": undeclared ['x']"]
    assert conforms({**good, "ip_address": 4}, rt.FixedIp) == [".ip_address: 4 is not str"]
    summary = {"id": "i", "protocol": "tcp", "internal_ip_address": "a", "internal_port_id": "p"}
    assert conforms(summary, rt.PortForwardingSummary) == []  # optional keys may be absent
    assert conforms({**summary, "internal_port": True}, rt.PortForwardingSummary) != []


@pytest.fixture
def world(api):
    """One of each resource (several shapes where a view varies), made through the API."""
    ext, _ = l3.external_network(api)
    net, sub = api.net_with_subnet()
    port = api.port(net["id"], "demo", allowed_address_pairs=[{"ip_address": "10.0.0.99"}])
    api.ok(
        api.put(
            f"ports/{port['id']}",
            {"port": {"extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400"}], "binding:host_id": "h1"}},
        )
    )
    router = l3.router(api)
    l3.set_gateway(api, router["id"], ext["id"])
    l3.add_subnet(api, router["id"], sub["id"])
    bare_router = l3.router(api, name="no-gateway")
    fip = api.create("floatingips", "floatingip", "demo", floating_network_id=ext["id"], port_id=port["id"])
    pf_fip = api.create("floatingips", "floatingip", "demo", floating_network_id=ext["id"])
    pf_port = api.port(net["id"], "demo")
    addr = pf_port["fixed_ips"][0]["ip_address"]
    common = {"internal_port_id": pf_port["id"], "internal_ip_address": addr, "protocol": "tcp"}
    for sides in (
        {"internal_port": 22, "external_port": 2222},
        {"internal_port_range": "100:110", "external_port_range": "200:210"},
    ):
        api.ok(api.post(f"floatingips/{pf_fip['id']}/port_forwardings", {"port_forwarding": {**common, **sides}}), 201)
    sg = api.sg("demo")
    api.create(
        "security-group-rules",
        "security_group_rule",
        "demo",
        security_group_id=sg["id"],
        direction="ingress",
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_ip_prefix="10.1.0.0/16",
    )
    pool = api.create("subnetpools", "subnetpool", "demo", name="p", prefixes=["10.9.0.0/16"], default_prefixlen=24)
    scope = api.create("address-scopes", "address_scope", name="s", ip_version=4)
    parent, child = api.port(net["id"], "demo"), api.port(net["id"], "demo")
    sub_port = {"port_id": child["id"], "segmentation_type": "vlan", "segmentation_id": 100}
    trunk = api.create("trunks", "trunk", "demo", port_id=parent["id"], sub_ports=[sub_port])
    return {
        "net": net,
        "ext": ext,
        "sub": sub,
        "port": port,
        "parent": parent,
        "router": router,
        "bare_router": bare_router,
        "fip": fip,
        "pf_fip": pf_fip,
        "sg": sg,
        "pool": pool,
        "scope": scope,
        "trunk": trunk,
    }


CASES = [
    ("networks", rt.Network, ("net", "ext")),
    ("subnets", rt.Subnet, ("sub",)),
    ("ports", rt.Port, ("port", "parent")),
    ("routers", rt.Router, ("router", "bare_router")),
    ("floatingips", rt.FloatingIp, ("fip", "pf_fip")),
    ("security-groups", rt.SecurityGroup, ("sg",)),
    ("subnetpools", rt.SubnetPool, ("pool",)),
    ("address-scopes", rt.AddressScope, ("scope",)),
    ("trunks", rt.Trunk, ("trunk",)),
]


@pytest.mark.parametrize("collection,kind,names", CASES, ids=[c[0] for c in CASES])
def test_service_values_have_their_declared_keys_and_types(api, world, collection, kind, names):
    svc = _api(api).services[collection]
    admin = RequestContext.admin()
    with api.db.read() as conn:
        listed = svc.list(admin, conn, ListQuery())[0]
        shown = [svc.get(admin, conn, world[n]["id"]) for n in names]
    assert listed and len(shown) == len(names)
    for i, value in enumerate([*shown, *listed]):
        assert conforms(value, kind, f"{collection}[{i}]") == []


def test_rules_and_port_forwardings(api, world):
    services = _api(api)
    rules = services.services["security-group-rules"]
    pfs = services.subresources[("floatingips", "port_forwardings")]
    admin = RequestContext.admin()
    with api.db.read() as conn:
        rule_list = rules.list(admin, conn, ListQuery())[0]
        pf_list = pfs.list(admin, conn, world["pf_fip"]["id"], ListQuery())[0]
        shown = [rules.get(admin, conn, r["id"]) for r in rule_list] + [
            pfs.get(admin, conn, world["pf_fip"]["id"], p["id"]) for p in pf_list
        ]
    assert len(rule_list) >= 3 and len(pf_list) == 2
    assert any(r["protocol"] == "tcp" for r in rule_list)
    for i, rule in enumerate(rule_list):
        assert conforms(rule, rt.SecurityGroupRule, f"rule[{i}]") == []
    for i, pf in enumerate(pf_list):
        assert conforms(pf, rt.PortForwarding, f"pf[{i}]") == []
    assert {pf["internal_port"] for pf in pf_list} == {22, None}  # a single port, then a range
    for i, value in enumerate(shown):
        kind = rt.SecurityGroupRule if i < len(rule_list) else rt.PortForwarding
        assert conforms(value, kind, f"shown[{i}]") == []


def test_optional_keys_are_seen_both_ways(api, world):
    """``trunk_details`` (a trunk's parent only) and a floating IP's single-port summaries."""
    svc = _api(api).services
    admin = RequestContext.admin()
    with api.db.read() as conn:
        parent = svc["ports"].get(admin, conn, world["parent"]["id"])
        plain = svc["ports"].get(admin, conn, world["port"]["id"])
        fip = svc["floatingips"].get(admin, conn, world["pf_fip"]["id"])
    assert "trunk_details" in parent and "trunk_details" not in plain
    summaries = fip["port_forwardings"]
    assert sorted("internal_port" in s for s in summaries) == [False, True]  # a range, a single port
    assert all(conforms(s, rt.PortForwardingSummary) == [] for s in summaries)


def test_the_edge_shows_the_service_value(api, world):
    """As admin, the API answer is the service's value, less what read policy hides from everyone."""
    svc = _api(api).services["routers"]
    with api.db.read() as conn:
        value = svc.get(RequestContext.admin(), conn, world["router"]["id"])
    answer = api.show("routers", "router", world["router"]["id"])
    assert list(answer) == [k for k in value if k not in ("gw_port_id", "interface_port_ids")]
    assert conforms(value, rt.Router) == []
