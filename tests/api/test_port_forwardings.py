"""Floating IP port forwardings (reference §4.5): /v2.0/floatingips/{fip}/port_forwardings."""

from __future__ import annotations

import pytest

from tests.api.conftest import error
from tests.api.l3_helpers import changes, floating_ip, topology

PF_KEYS = {
    "id",
    "protocol",
    "internal_ip_address",
    "internal_port",
    "internal_port_id",
    "external_port",
    "internal_port_range",
    "external_port_range",
    "description",
}


@pytest.fixture
def topo(api):
    return topology(api)


@pytest.fixture
def fip(api, topo):
    return floating_ip(api, topo.ext_net["id"])


def _pf_url(fip, pf_id=None):
    return f"floatingips/{fip['id']}/port_forwardings" + (f"/{pf_id}" if pf_id else "")


def _body(topo, **attrs):
    """What ``openstack floating ip port forwarding create`` sends."""
    pf = {
        "internal_ip_address": topo.port["fixed_ips"][0]["ip_address"],
        "internal_port": 22,
        "external_port": 2222,
        "protocol": "tcp",
        "internal_port_id": topo.port["id"],
    }
    pf.update(attrs)
    return {"port_forwarding": {k: v for k, v in pf.items() if v is not None}}


def _create(api, fip, topo, as_="demo", **attrs):
    return api.ok(api.post(_pf_url(fip), _body(topo, **attrs), as_), 201)["port_forwarding"]


def test_crud(api, topo, fip):
    ip = topo.port["fixed_ips"][0]["ip_address"]
    pf = _create(api, fip, topo, description="ssh")
    assert set(pf) == PF_KEYS
    assert pf == {
        "id": pf["id"],
        "protocol": "tcp",
        "internal_ip_address": ip,
        "internal_port": 22,
        "internal_port_id": topo.port["id"],
        "external_port": 2222,
        "internal_port_range": "22:22",
        "external_port_range": "2222:2222",
        "description": "ssh",
    }
    parent = api.show("floatingips", "floatingip", fip["id"], "demo")
    assert parent["router_id"] == topo.router["id"] and parent["port_id"] is None
    assert parent["port_forwardings"] == [
        {
            "id": pf["id"],
            "protocol": "tcp",
            "internal_ip_address": ip,
            "internal_port_id": topo.port["id"],
            "internal_port": 22,
            "external_port": 2222,
        }
    ]
    assert api.ok(api.get(_pf_url(fip), "demo")) == {"port_forwardings": [pf]}
    assert api.ok(api.get(_pf_url(fip, pf["id"]), "demo")) == {"port_forwarding": pf}
    assert api.ok(api.get(_pf_url(fip) + "?protocol=udp", "demo")) == {"port_forwardings": []}
    up = api.ok(
        api.put(_pf_url(fip, pf["id"]), {"port_forwarding": {"external_port": 2223, "description": "x"}}, "demo")
    )["port_forwarding"]
    assert (up["external_port"], up["external_port_range"], up["description"]) == (2223, "2223:2223", "x")
    # a description-only change to the floating IP keeps the router
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"description": "d"}}, "demo"))["floatingip"]
    assert out["router_id"] == topo.router["id"]
    assert api.delete(_pf_url(fip, pf["id"]), "demo").status_code == 204
    error(
        api.get(_pf_url(fip, pf["id"]), "demo"),
        404,
        "PortForwardingNotFound",
        f"Port Forwarding {pf['id']} could not be found.",
    )
    assert api.show("floatingips", "floatingip", fip["id"], "demo")["router_id"] is None
    assert [a for _, a, _ in changes(api, "port_forwarding", pf["id"])] == ["create", "update", "delete"]
    assert changes(api, "port_forwarding", pf["id"])[0][2] == dict(pf, floatingip_id=fip["id"])


def test_router_stays_while_forwardings_remain(api, topo, fip):
    a = _create(api, fip, topo)
    _create(api, fip, topo, internal_port=80, external_port=8080)
    api.delete(_pf_url(fip, a["id"]), "demo")
    assert api.show("floatingips", "floatingip", fip["id"], "demo")["router_id"] == topo.router["id"]


def test_port_ranges(api, topo, fip):
    pf = _create(
        api,
        fip,
        topo,
        internal_port=None,
        external_port=None,
        internal_port_range="1000:1010",
        external_port_range="2000:2010",
    )
    assert (pf["internal_port"], pf["external_port"]) == (None, None)
    assert (pf["internal_port_range"], pf["external_port_range"]) == ("1000:1010", "2000:2010")
    summary = api.show("floatingips", "floatingip", fip["id"], "demo")["port_forwardings"]
    assert summary == [
        {
            "id": pf["id"],
            "protocol": "tcp",
            "internal_ip_address": pf["internal_ip_address"],
            "internal_port_id": topo.port["id"],
        }
    ]
    one_to_n = _create(api, fip, topo, internal_port=80, external_port=None, external_port_range="3000:3005")
    assert (one_to_n["internal_port"], one_to_n["external_port_range"]) == (80, "3000:3005")
    error(
        api.post(
            _pf_url(fip),
            _body(
                topo,
                internal_port=None,
                external_port=None,
                internal_port_range="100:110",
                external_port_range="200:205",
            ),
            "demo",
        ),
        400,
        "BadRequest",
        "Bad port_forwarding request: Invalid ranges of internal and/or external ports. The "
        "relation between internal and external ports must be N-N or 1-N.",
    )
    error(
        api.post(_pf_url(fip), _body(topo, external_port=None, external_port_range="2005:2007"), "demo"),
        400,
        "BadRequest",
        "Bad port_forwarding request: There is a port collision with the external_port_range. The "
        "following ranges collides: 2000:2010 and 2005:2007.",
    )


def test_collisions(api, topo, fip):
    _create(api, fip, topo)
    error(
        api.post(_pf_url(fip), _body(topo, internal_port=23), "demo"),
        400,
        "BadRequest",
        "Bad port_forwarding request: There is a port collision with the external_port_range. The following "
        "ranges collides: 2222:2222 and 2222:2222.",
    )
    error(
        api.post(_pf_url(fip), _body(topo, external_port=2223), "demo"),
        400,
        "BadRequest",
        "Bad port_forwarding request: There is a port collision with the internal_port_range. The following "
        "ranges collides: 22:22 and 22:22.",
    )
    udp = _create(api, fip, topo, protocol="udp")  # other protocol: no collision
    assert udp["protocol"] == "udp"
    other = _create(api, fip, topo, internal_port=80, external_port=80)
    error(
        api.put(_pf_url(fip, other["id"]), {"port_forwarding": {"external_port": 2222}}, "demo"),
        400,
        "BadRequest",
        "Bad port_forwarding request: Another port forwarding entry with the same attributes "
        f"already exists, conflicting values are {{'floating_ip_address': "
        f"'{fip['floating_ip_address']}', 'external_port': 2222}}.",
    )


@pytest.mark.parametrize(
    "attrs,message",
    [
        ({"protocol": "icmp"}, "Invalid input for protocol. Reason: 'icmp' is not in ['tcp', 'udp']."),
        ({"external_port": 70000}, "Invalid input for external_port. Reason: Invalid port: 70000."),
        (
            {"internal_port_range": "9:1", "internal_port": None},
            "Invalid input for internal_port_range. Reason: First port in a port range must be lower than the second "
            "port.",
        ),
        (
            {"external_port_range": "1:2:3", "external_port": None},
            "Invalid input for external_port_range. Reason: Port range must be two integers separated by a colon.",
        ),
        ({"internal_port_id": None}, "Failed to parse request. Required attribute 'internal_port_id' not specified"),
        ({"bogus": 1}, "Unrecognized attribute(s) 'bogus'"),
    ],
)
def test_attribute_validation(api, topo, fip, attrs, message):
    error(api.post(_pf_url(fip), _body(topo, **attrs), "demo"), 400, "HTTPBadRequest", message)


def test_port_value_and_sides(api, topo, fip):
    error(
        api.post(_pf_url(fip), _body(topo, external_port=0), "demo"),
        400,
        "BadRequest",
        "Bad port_forwarding request: Invalid port value, the port value must be a value between 1 and 65535..",
    )
    error(
        api.post(_pf_url(fip), _body(topo, external_port=None), "demo"),
        400,
        "BadRequest",
        "Bad port_forwarding request: Either external_port or external_port_range must be specified.",
    )


def test_internal_address_must_belong_to_the_port(api, topo, fip):
    ips = topo.port["fixed_ips"]
    text = str([{"subnet_id": ips[0]["subnet_id"], "ip_address": ips[0]["ip_address"]}])
    error(
        api.post(_pf_url(fip), _body(topo, internal_ip_address="10.0.0.254"), "demo"),
        400,
        "BadRequest",
        f"Bad port_forwarding request: Requested internal IP address 10.0.0.254 is not suitable for internal "
        f"neutron port {topo.port['id']}, as its fixed_ips are {text}.",
    )
    pf = _create(api, fip, topo)
    error(
        api.put(_pf_url(fip, pf["id"]), {"port_forwarding": {"internal_ip_address": "10.0.0.254"}}, "demo"),
        400,
        "BadRequest",
        "Bad port_forwarding request: The internal IP does not correspond to an address on the "
        f"internal port, which has fixed_ips {text}.",
    )


def test_internal_subnet_must_reach_the_floating_network(api, topo, fip):
    net, sub = api.net_with_subnet("10.7.0.0/24")
    port = api.port(net["id"], "demo")
    error(
        api.post(
            _pf_url(fip),
            _body(topo, internal_port_id=port["id"], internal_ip_address=port["fixed_ips"][0]["ip_address"]),
            "demo",
        ),
        400,
        "BadRequest",
        f"Bad port_forwarding request: External network {topo.ext_net['id']} is not reachable from subnet "
        f"{sub['id']}. Cannot set Port forwarding for port {port['id']} with Floating IP {fip['id']}.",
    )


def test_floating_ip_with_port_and_port_with_floating_ip(api, topo, fip):
    bound = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"])
    address = topo.port["fixed_ips"][0]["ip_address"]
    error(
        api.post(_pf_url(fip), _body(topo), "demo"),
        409,
        "PortHasBindingFloatingIP",
        f"Cannot create port forwarding to floating IP {bound['floating_ip_address']} ({bound['id']}) with port "
        f"{topo.port['id']} using fixed IP {address}, as that port already has a binding floating IP.",
    )
    other = api.port(topo.net["id"], "demo")
    other_ip = other["fixed_ips"][0]["ip_address"]
    error(
        api.post(_pf_url(bound), _body(topo, internal_port_id=other["id"], internal_ip_address=other_ip), "demo"),
        409,
        "FloatingIPPortAlreadyAssociated",
        f"Cannot associate floating IP {bound['floating_ip_address']} ({bound['id']}) with port {other['id']} "
        f"using fixed IP {other_ip}, as that fixed IP already has a floating IP on external network "
        f"{topo.ext_net['id']}.",
    )


def test_floating_ip_in_use_by_forwardings(api, topo, fip):
    _create(api, fip, topo)
    other = api.port(topo.net["id"], "demo")
    msg = f"Floating IP {fip['id']} in use by Port Forwarding resources."
    error(
        api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": other["id"]}}, "demo"),
        409,
        "FipInUseByPortForwarding",
        msg,
    )
    error(api.delete(f"floatingips/{fip['id']}", "demo"), 409, "FipInUseByPortForwarding", msg)
    error(
        api.put(f"routers/{topo.router['id']}/remove_router_interface", {"subnet_id": topo.subnet["id"]}, "demo"),
        409,
        "RouterInterfaceInUseByFloatingIP",
    )


def test_policy_follows_the_floating_ip_owner(api, topo, fip):
    url = _pf_url(fip)
    msg = f"Floating IP {fip['id']} could not be found"
    error(api.post(url, _body(topo), "other"), 404, "FloatingIPNotFound", msg)
    error(api.get(url, "other"), 404, "FloatingIPNotFound", msg)
    error(
        api.post(url, _body(topo), "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:create_floatingip_port_forwarding is disallowed by policy",
    )
    pf = _create(api, fip, topo, "admin")  # admin acts on the member's FIP
    assert api.ok(api.get(_pf_url(fip, pf["id"]), "reader"))["port_forwarding"]["id"] == pf["id"]
    error(
        api.put(_pf_url(fip, pf["id"]), {"port_forwarding": {"description": "x"}}, "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:update_floatingip_port_forwarding is disallowed by policy",
    )
    error(
        api.delete(_pf_url(fip, pf["id"]), "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:delete_floatingip_port_forwarding is disallowed by policy",
    )
    error(api.get(_pf_url(fip, pf["id"]), "other"), 404, "FloatingIPNotFound", msg)
    second = floating_ip(api, topo.ext_net["id"])
    error(api.get(_pf_url(second, pf["id"]), "demo"), 404, "PortForwardingNotFound")
    error(api.delete(_pf_url(second, pf["id"]), "demo"), 404, "PortForwardingNotFound")


def test_unsupported_filters(api, topo, fip):
    error(
        api.get(_pf_url(fip) + "?internal_port=22", "demo"),
        400,
        "PortForwardingNotSupportFilterField",
        "Port Forwarding filter internal_port is not supported.",
    )


def test_update_moves_to_another_port(api, topo, fip):
    pf = _create(api, fip, topo)
    other = api.port(topo.net["id"], "demo")
    out = api.ok(api.put(_pf_url(fip, pf["id"]), {"port_forwarding": {"internal_port_id": other["id"]}}, "demo"))[
        "port_forwarding"
    ]
    assert out["internal_port_id"] == other["id"]
    assert out["internal_ip_address"] == other["fixed_ips"][0]["ip_address"]
    error(
        api.put(_pf_url(fip, pf["id"]), {"port_forwarding": {"project_id": "x"}}, "demo"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute project_id",
    )


def test_deleting_the_internal_port_releases_its_forwardings(api, topo, fip):
    pf = _create(api, fip, topo)
    assert api.delete(f"ports/{topo.port['id']}", "demo").status_code == 204
    assert api.ok(api.get(_pf_url(fip), "demo")) == {"port_forwardings": []}
    assert api.show("floatingips", "floatingip", fip["id"], "demo")["router_id"] is None
    assert changes(api, "port_forwarding", pf["id"])[-1][1] == "delete"
