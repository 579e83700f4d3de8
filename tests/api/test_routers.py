"""Routers (reference §4.4, §7.4, §10.3-§10.5): CRUD, gateway, extra routes, interfaces."""

from __future__ import annotations

import pytest

from tests.api.conftest import error
from tests.api.l3_helpers import (
    add_subnet,
    changes,
    external_network,
    extra_external_network,
    floating_ip,
    router,
    router_ports,
    set_gateway,
    topology,
)

ROUTER_KEYS = {
    "id",
    "name",
    "tenant_id",
    "project_id",
    "admin_state_up",
    "status",
    "external_gateway_info",
    "description",
    "availability_zones",
    "availability_zone_hints",
    "routes",
    "flavor_id",
    "distributed",
    "ha",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
}
IFACE_KEYS = {"id", "project_id", "port_id", "network_id", "subnet_id", "subnet_ids"}


# --- CRUD ------------------------------------------------------------------------------------
def test_cli_router_create(api):
    """§10.3: ``openstack router create demo-router``."""
    r = api.post("routers", {"router": {"name": "demo-router", "admin_state_up": True}}, as_="demo")
    assert r.status_code == 201
    body = r.json()["router"]
    assert set(body) == ROUTER_KEYS - {"distributed", "ha"}  # admin-only view
    assert body["external_gateway_info"] is None and body["routes"] == [] and body["status"] == "ACTIVE"
    assert body["flavor_id"] is None and body["availability_zone_hints"] == [] == body["availability_zones"]
    assert body["project_id"] == body["tenant_id"] == "p-demo" and body["revision_number"] == 1
    admin_view = api.show("routers", "router", body["id"])
    assert set(admin_view) == ROUTER_KEYS and admin_view["distributed"] is False and admin_view["ha"] is False
    # The feed's body is the admin view plus the router's own port records, for the agents.
    assert changes(api, "router", body["id"]) == [
        (body["id"], "create", {**admin_view, "gw_port_id": None, "interface_port_ids": []})
    ]


def test_show_list_update_delete(api):
    r = router(api)
    assert api.list("routers", "demo") == [api.show("routers", "router", r["id"], "demo")]
    assert [x["id"] for x in api.list("routers", "demo", "name=demo-router")] == [r["id"]]
    assert api.list("routers", "demo", "name=nope") == []
    assert api.list("routers", "demo", "fields=id&fields=name") == [{"id": r["id"], "name": "demo-router"}]
    up = api.ok(
        api.put(f"routers/{r['id']}", {"router": {"name": "r2", "description": "d", "admin_state_up": False}}, "demo")
    )["router"]
    assert (up["name"], up["description"], up["admin_state_up"], up["revision_number"]) == ("r2", "d", False, 2)
    assert api.delete(f"routers/{r['id']}", "demo").status_code == 204
    error(api.get(f"routers/{r['id']}", "demo"), 404, "RouterNotFound", f"Router {r['id']} could not be found")
    assert [a for _, a, _ in changes(api, "router", r["id"])] == ["create", "update", "delete"]


def test_name_lookup_404_falls_back_to_list(api):
    """§10.4 steps 1-2: GET by name is a 404 (no final dot), then ?name= finds it."""
    r = router(api)
    error(api.get("routers/demo-router", "demo"), 404, "RouterNotFound", "Router demo-router could not be found")
    assert [x["id"] for x in api.list("routers", "demo", "name=demo-router")] == [r["id"]]


def test_visibility_and_policy(api):
    r = router(api)
    rid = r["id"]
    for call in (
        api.get(f"routers/{rid}", "other"),
        api.put(f"routers/{rid}", {"router": {"name": "x"}}, "other"),
        api.delete(f"routers/{rid}", "other"),
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": rid}, "other"),
    ):
        error(call, 404, "RouterNotFound", f"Router {rid} could not be found")
    assert api.list("routers", "other") == []
    assert [x["id"] for x in api.list("routers", "admin")] == [rid]
    assert api.show("routers", "router", rid, "reader")["id"] == rid
    error(
        api.put(f"routers/{rid}", {"router": {"name": "x"}}, "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:update_router is disallowed by policy",
    )
    error(
        api.delete(f"routers/{rid}", "reader"), 403, "PolicyNotAuthorized", "rule:delete_router is disallowed by policy"
    )
    error(
        api.post("routers", {"router": {"name": "x"}}, "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:create_router is disallowed by policy",
    )
    error(
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": rid}, "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:add_router_interface is disallowed by policy",
    )


def test_admin_creates_for_another_project(api):
    r = api.ok(api.post("routers", {"router": {"name": "x", "project_id": "p-demo"}}), 201)["router"]
    assert r["project_id"] == "p-demo"
    assert [x["id"] for x in api.list("routers", "demo")] == [r["id"]]


def test_distributed_and_ha_are_admin_only(api):
    error(
        api.post("routers", {"router": {"name": "x", "distributed": True}}, "demo"),
        403,
        "PolicyNotAuthorized",
        "(rule:create_router and rule:create_router:distributed) is disallowed by policy",
    )
    error(
        api.post("routers", {"router": {"name": "x", "ha": True}}, "demo"),
        403,
        "PolicyNotAuthorized",
        "(rule:create_router and rule:create_router:ha) is disallowed by policy",
    )
    assert router(api, "demo", ha=False)["name"] == "demo-router"  # default value: not policed
    r = router(api, "admin", ha=True, distributed=True)
    assert (r["ha"], r["distributed"]) == (True, True)
    error(
        api.put(f"routers/{r['id']}", {"router": {"ha": False}}),
        400,
        "BadRequest",
        "Bad router request: Cannot change HA attribute of active routers. Please set router admin_state_up to "
        "False prior to upgrade.",
    )
    r2 = router(api, "admin")
    error(
        api.put(f"routers/{r2['id']}", {"router": {"distributed": True}}),
        400,
        "BadRequest",
        "Bad router request: Cannot upgrade active router to distributed. Please set router admin_state_up to "
        "False prior to upgrade.",
    )
    up = api.ok(api.put(f"routers/{r2['id']}", {"router": {"admin_state_up": False, "distributed": True, "ha": True}}))[
        "router"
    ]
    assert (up["distributed"], up["ha"]) == (True, True)


def test_quota(api):
    api.ok(api.put("quotas/p-demo", {"quota": {"router": 1}}))
    router(api)
    error(
        api.post("routers", {"router": {"name": "2"}}, "demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['router'].",
    )


def test_bad_bodies(api):
    error(
        api.post("routers", {"router": {"routes": []}}, "demo"),
        400,
        "HTTPBadRequest",
        "Attribute 'routes' not allowed in POST",
    )
    r = router(api)
    error(
        api.put(f"routers/{r['id']}", {"router": {"status": "DOWN"}}, "demo"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute status",
    )
    error(
        api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {"enable_snat": True}}}),
        400,
        "HTTPBadRequest",
        contains="Invalid input for external_gateway_info. Reason:",
    )
    error(
        api.put(f"routers/{r['id']}", {"router": {"name": "x"}}, "demo", headers={"If-Match": "revision_number=9"}),
        412,
        "RevisionNumberConstraintFailed",
        "Constrained to 9, but current revision is 1",
    )


def test_tags(api):
    r = router(api)
    assert api.ok(api.put(f"routers/{r['id']}/tags", {"tags": ["b", "a"]}, "demo")) == {"tags": ["a", "b"]}
    assert api.show("routers", "router", r["id"], "demo")["tags"] == ["a", "b"]


# --- external gateway -----------------------------------------------------------------------
def test_cli_set_and_unset_external_gateway(api):
    """§10.4: ``router set --external-gateway flat-network demo-router`` and ``router unset``."""
    net, sub = external_network(api)
    r = router(api)
    error(api.get("networks/flat-network", "demo"), 404, "NetworkNotFound")
    assert [n["id"] for n in api.list("networks", "demo", "name=flat-network")] == [net["id"]]
    error(api.get("extensions/external-gateway-multihoming", "demo"), 404, "ExtensionNotFound")
    assert api.get("extensions", "demo").status_code == 200
    out = api.ok(
        api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {"network_id": net["id"]}}}, "demo")
    )["router"]
    gw = out["external_gateway_info"]
    assert list(gw) == ["network_id", "external_fixed_ips", "enable_snat"]
    assert gw["network_id"] == net["id"] and gw["enable_snat"] is True
    (fixed,) = gw["external_fixed_ips"]
    assert fixed["subnet_id"] == sub["id"]
    assert 2 <= int(fixed["ip_address"].rsplit(".", 1)[1]) <= 10
    (port,) = router_ports(api, r["id"])
    assert port["device_owner"] == "network:router_gateway" and port["project_id"] == port["tenant_id"] == ""
    assert port["status"] == "DOWN" and port["security_groups"] == [] and port["port_security_enabled"] is False
    assert port["fixed_ips"] == gw["external_fixed_ips"]
    assert api.list("ports", "demo") == []  # members do not see it
    error(
        api.delete(f"ports/{port['id']}"),
        409,
        "ServicePortInUse",
        f"Port {port['id']} cannot be deleted directly via the port API: has device owner network:router_gateway.",
    )
    out = api.ok(api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {}}}, "demo"))["router"]
    assert out["external_gateway_info"] is None and router_ports(api, r["id"]) == []
    set_gateway(api, r["id"], net["id"])
    out = api.ok(api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": None}}, "demo"))["router"]
    assert out["external_gateway_info"] is None and router_ports(api, r["id"]) == []


def test_gateway_must_be_external_and_visible(api):
    r = router(api)
    net, _ = api.net_with_subnet("10.0.0.0/24")
    error(
        api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {"network_id": net["id"]}}}, "demo"),
        400,
        "BadRequest",
        f"Bad router request: Network {net['id']} is not an external network.",
    )
    hidden = api.network("other")
    error(
        api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {"network_id": hidden["id"]}}}, "demo"),
        404,
        "NetworkNotFound",
        f"Network {hidden['id']} could not be found.",
    )


@pytest.mark.parametrize(
    "info", [{"enable_snat": True}, {"enable_snat": False}, {"external_fixed_ips": [{"subnet_id": "SUB"}]}]
)
def test_member_may_only_set_network_id(api, info):
    net, sub = external_network(api)
    r = router(api)
    info = {k: ([{"subnet_id": sub["id"]}] if k == "external_fixed_ips" else v) for k, v in info.items()}
    key = next(iter(info))
    err = error(
        api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {"network_id": net["id"], **info}}}, "demo"),
        403,
        "PolicyNotAuthorized",
    )
    assert f"rule:update_router:external_gateway_info:{key}" in err["message"]
    err = error(
        api.post(
            "routers", {"router": {"name": "x", "external_gateway_info": {"network_id": net["id"], **info}}}, "demo"
        ),
        403,
        "PolicyNotAuthorized",
    )
    assert f"rule:create_router:external_gateway_info:{key}" in err["message"]


def test_admin_snat_and_fixed_ips(api):
    net, sub = external_network(api)
    r = api.ok(
        api.post(
            "routers",
            {
                "router": {
                    "name": "x",
                    "external_gateway_info": {
                        "network_id": net["id"],
                        "enable_snat": False,
                        "external_fixed_ips": [{"subnet_id": sub["id"], "ip_address": "172.16.0.7"}],
                    },
                }
            },
        ),
        201,
    )["router"]
    gw = r["external_gateway_info"]
    assert gw == {
        "network_id": net["id"],
        "enable_snat": False,
        "external_fixed_ips": [{"subnet_id": sub["id"], "ip_address": "172.16.0.7"}],
    }
    (port,) = router_ports(api, r["id"])
    moved = set_gateway(
        api, r["id"], net["id"], "admin", external_fixed_ips=[{"subnet_id": sub["id"], "ip_address": "172.16.0.8"}]
    )
    assert moved["external_gateway_info"]["external_fixed_ips"] == [
        {"subnet_id": sub["id"], "ip_address": "172.16.0.8"}
    ]
    assert moved["external_gateway_info"]["enable_snat"] is True  # not given: back to the default
    assert [p["id"] for p in router_ports(api, r["id"])] == [port["id"]]  # same port, re-addressed
    error(
        api.put(
            f"routers/{r['id']}",
            {
                "router": {
                    "external_gateway_info": {
                        "network_id": net["id"],
                        "external_fixed_ips": [{"ip_address": "172.16.0.1"}],
                    }
                }
            },
        ),
        400,
        "BadRequest",
        "Bad router request: External IP 172.16.0.1 is the same as the gateway IP.",
    )
    other = router(api, "admin")
    error(
        api.put(
            f"routers/{other['id']}",
            {
                "router": {
                    "external_gateway_info": {
                        "network_id": net["id"],
                        "external_fixed_ips": [{"ip_address": "172.16.0.8"}],
                    }
                }
            },
        ),
        409,
        "IpAddressAlreadyAllocated",
        f"IP address 172.16.0.8 already allocated in subnet {sub['id']}",
    )


def test_gateway_moves_between_external_networks(api):
    net, _ = external_network(api)
    net2, sub2 = extra_external_network(api, "192.0.2.0/24")
    r = router(api)
    set_gateway(api, r["id"], net["id"])
    (old,) = router_ports(api, r["id"])
    out = set_gateway(api, r["id"], net2["id"])
    assert out["external_gateway_info"]["network_id"] == net2["id"]
    (new,) = router_ports(api, r["id"])
    assert new["id"] != old["id"] and new["network_id"] == net2["id"]
    assert new["fixed_ips"][0]["subnet_id"] == sub2["id"]


def test_new_external_subnet_gives_gateway_an_address(api):
    net, _ = external_network(api)
    r = router(api)
    set_gateway(api, r["id"], net["id"])
    sub2 = api.subnet(net["id"], "172.17.0.0/24")
    ips = api.show("routers", "router", r["id"], "demo")["external_gateway_info"]["external_fixed_ips"]
    assert [f["subnet_id"] for f in ips][-1] == sub2["id"]


def test_gateway_in_use_by_floating_ip(api):
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"])
    rid = topo.router["id"]
    msg = (
        f"Gateway cannot be updated for router {rid}, since a gateway to external network "
        f"{topo.ext_net['id']} is required by one or more floating IPs."
    )
    error(
        api.put(f"routers/{rid}", {"router": {"external_gateway_info": {}}}, "demo"),
        409,
        "RouterExternalGatewayInUseByFloatingIp",
        msg,
    )
    api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": None}}, "demo"))
    assert (
        api.ok(api.put(f"routers/{rid}", {"router": {"external_gateway_info": {}}}, "demo"))["router"][
            "external_gateway_info"
        ]
        is None
    )


def test_delete_router_in_use_then_gateway_goes_with_it(api):
    topo = topology(api)
    rid = topo.router["id"]
    (iface,) = [p for p in router_ports(api, rid) if p["device_owner"] == "network:router_interface"]
    error(
        api.delete(f"routers/{rid}", "demo"),
        409,
        "RouterInUse",
        f"Router {rid} has ports still attached: {iface['id']}",
    )
    api.ok(api.put(f"routers/{rid}/remove_router_interface", {"subnet_id": topo.subnet["id"]}, "demo"))
    assert api.delete(f"routers/{rid}", "demo").status_code == 204
    assert router_ports(api, rid) == []


# --- extra routes ---------------------------------------------------------------------------
def test_routes(api):
    topo = topology(api)
    rid = topo.router["id"]
    routes = [
        {"destination": "10.9.0.0/24", "nexthop": "10.0.0.50"},
        {"destination": "0.0.0.0/0", "nexthop": "172.16.0.99"},
    ]
    out = api.ok(api.put(f"routers/{rid}", {"router": {"routes": routes}}, "demo"))["router"]
    assert out["routes"] == routes
    bad = [{"destination": "10.9.0.0/24", "nexthop": "10.1.0.5"}]
    error(
        api.put(f"routers/{rid}", {"router": {"routes": bad}}, "demo"),
        400,
        "InvalidRoutes",
        "Invalid format for routes: [{'destination': '10.9.0.0/24', 'nexthop': '10.1.0.5'}], the nexthop is not "
        "connected with router",
    )
    own = [{"destination": "10.9.0.0/24", "nexthop": "10.0.0.1"}]
    error(
        api.put(f"routers/{rid}", {"router": {"routes": own}}, "demo"),
        400,
        "InvalidRoutes",
        "Invalid format for routes: [{'destination': '10.9.0.0/24', 'nexthop': '10.0.0.1'}], the nexthop is used "
        "by router",
    )
    error(
        api.put(f"routers/{rid}", {"router": {"routes": routes[:1] * 2}}, "demo"),
        400,
        "HTTPBadRequest",
        contains="Duplicate hostroute",
    )
    assert api.ok(api.put(f"routers/{rid}", {"router": {"routes": None}}, "demo"))["router"]["routes"] == []


def test_routes_limit(api):
    topo = topology(api)
    api.ok(api.put("quotas/p-demo", {"quota": {"router_route": 1}}))
    rid = topo.router["id"]
    two = [{"destination": f"10.9.{i}.0/24", "nexthop": "10.0.0.50"} for i in range(2)]
    error(
        api.put(f"routers/{rid}", {"router": {"routes": two}}, "demo"),
        400,
        "RoutesExhausted",
        f"Unable to complete operation for {rid}. The number of routes exceeds the maximum 1.",
    )


def test_add_and_remove_extraroutes(api):
    topo = topology(api)
    rid = topo.router["id"]
    a = {"destination": "10.9.0.0/24", "nexthop": "10.0.0.50"}
    b = {"destination": "10.8.0.0/24", "nexthop": "10.0.0.51"}
    out = api.ok(api.put(f"routers/{rid}/add_extraroutes", {"router": {"routes": [a, a]}}, "demo"))
    assert set(out) == {"router"} and out["router"]["routes"] == [a]
    out = api.ok(api.put(f"routers/{rid}/add_extraroutes", {"router": {"routes": [a, b]}}, "demo"))
    assert out["router"]["routes"] == [a, b]
    out = api.ok(
        api.put(
            f"routers/{rid}/remove_extraroutes",
            {"router": {"routes": [a, {"destination": "1.0.0.0/8", "nexthop": "10.0.0.9"}]}},
            "demo",
        )
    )
    assert out["router"]["routes"] == [b]
    error(
        api.put(
            f"routers/{rid}/add_extraroutes",
            {"router": {"routes": [{"destination": "1.0.0.0/8", "nexthop": "9.9.9.9"}]}},
            "demo",
        ),
        400,
        "InvalidRoutes",
        contains="the nexthop is not connected with router",
    )
    error(api.put(f"routers/{rid}/add_extraroutes", {"routes": []}, "demo"), 400, "HTTPBadRequest")
    error(
        api.put(f"routers/{rid}/add_extraroutes", {"router": {"routes": [a]}}, "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:add_extraroutes is disallowed by policy",
    )
    assert api.get(f"routers/{rid}/add_extraroutes", "demo").status_code == 405


def test_remove_interface_needed_by_route(api):
    topo = topology(api)
    rid = topo.router["id"]
    api.ok(
        api.put(
            f"routers/{rid}", {"router": {"routes": [{"destination": "10.9.0.0/24", "nexthop": "10.0.0.50"}]}}, "demo"
        )
    )
    error(
        api.put(f"routers/{rid}/remove_router_interface", {"subnet_id": topo.subnet["id"]}, "demo"),
        409,
        "RouterInterfaceInUseByRoute",
        f"Router interface for subnet {topo.subnet['id']} on router {rid} cannot be deleted, as it is required by "
        "one or more routes.",
    )


# --- interfaces -------------------------------------------------------------------------------
def test_cli_router_add_subnet(api):
    """§10.5: ``openstack router add subnet demo-router vlan-subnet``."""
    r = router(api)
    net = api.network("demo", name="vlan-net")
    sub = api.subnet(net["id"], "10.0.0.0/24", "demo", name="vlan-subnet")
    error(api.get("subnets/vlan-subnet", "demo"), 404, "SubnetNotFound")
    assert [s["id"] for s in api.list("subnets", "demo", "name=vlan-subnet")] == [sub["id"]]
    error(api.get("routers/demo-router", "demo"), 404, "RouterNotFound")
    (found,) = api.list("routers", "demo", "name=demo-router")
    info = api.ok(api.put(f"routers/{found['id']}/add_router_interface", {"subnet_id": sub["id"]}, "demo"))
    assert set(info) == IFACE_KEYS
    assert info["id"] == r["id"] and info["project_id"] == "p-demo" and info["network_id"] == net["id"]
    assert info["subnet_id"] == sub["id"] and info["subnet_ids"] == [sub["id"]]
    port = api.show("ports", "port", info["port_id"], "demo")
    assert port["device_owner"] == "network:router_interface" and port["device_id"] == r["id"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]
    assert port["project_id"] == "p-demo" and port["security_groups"] == []
    assert port["port_security_enabled"] is False and port["status"] == "DOWN"
    assert api.show("routers", "router", r["id"], "demo")["revision_number"] == 2
    error(api.delete(f"subnets/{sub['id']}", "demo"), 409, "SubnetInUse")
    # §10.5 note: removal uses the same body; the created port is deleted
    out = api.ok(api.put(f"routers/{r['id']}/remove_router_interface", {"subnet_id": sub["id"]}, "demo"))
    assert out == info
    error(api.get(f"ports/{info['port_id']}", "demo"), 404, "PortNotFound")


def test_add_interface_body_errors(api):
    r = router(api)
    rid = r["id"]
    _, sub = api.net_with_subnet("10.0.0.0/24")
    cases = [
        ({"subnet_id": sub["id"], "port_id": sub["id"]}, "Cannot specify both subnet-id and port-id"),
        ({}, "Either subnet_id or port_id must be specified"),
        (None, "Either subnet_id or port_id must be specified"),
        ({"subnet_id": "xyz"}, "'xyz' is not a valid UUID"),
        ({"port_id": "xyz"}, "'xyz' is not a valid UUID"),
    ]
    for body, msg in cases:
        error(
            api.put(f"routers/{rid}/add_router_interface", body, "demo"),
            400,
            "BadRequest",
            f"Bad router request: {msg}.",
        )
    error(
        api.put(f"routers/{rid}/remove_router_interface", {}, "demo"),
        400,
        "BadRequest",
        "Bad router request: Either subnet_id or port_id must be specified.",
    )


def test_add_interface_subnet_errors(api):
    r = router(api)
    rid = r["id"]
    net, sub = api.net_with_subnet("10.0.0.0/24")
    no_gw = api.subnet(net["id"], "10.0.1.0/24", "demo", gateway_ip=None)
    error(
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": no_gw["id"]}, "demo"),
        400,
        "BadRequest",
        "Bad router request: Subnet for router interface must have a gateway IP.",
    )
    add_subnet(api, rid, sub["id"])
    error(
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": sub["id"]}, "demo"),
        400,
        "BadRequest",
        f"Bad router request: Router already has a port on subnet {sub['id']}.",
    )
    net2 = api.network("demo")
    overlap = api.subnet(net2["id"], "10.0.0.0/16", "demo")
    error(
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": overlap["id"]}, "demo"),
        400,
        "BadRequest",
        f"Bad router request: Cidr 10.0.0.0/16 of subnet {overlap['id']} overlaps with cidr 10.0.0.0/24 of "
        f"subnet {sub['id']}.",
    )
    _, hidden = api.net_with_subnet("10.5.0.0/24", as_="other")
    error(
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": hidden["id"]}, "demo"),
        404,
        "SubnetNotFound",
        f"Subnet {hidden['id']} could not be found.",
    )
    shared = api.network(shared=True)
    shared_sub = api.subnet(shared["id"], "10.6.0.0/24")
    error(
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": shared_sub["id"]}, "demo"),
        400,
        "BadRequest",
        f"Bad router request: Cannot add interface to router because subnet {shared_sub['id']} is "
        "not owned by project making the request.",
    )
    v6 = api.subnet(net2["id"], "2001:db8::/64", "demo", ipv6_address_mode="slaac")
    error(
        api.put(f"routers/{rid}/add_router_interface", {"subnet_id": v6["id"]}, "demo"),
        400,
        "BadRequest",
        f"Bad router request: IPv6 subnet {v6['id']} configured to receive RAs from an external router cannot be "
        "added to Neutron Router.",
    )


def test_interface_on_gateway_subnet_is_a_duplicate(api):
    net, sub = external_network(api)
    r = router(api, "admin")
    set_gateway(api, r["id"], net["id"], "admin")
    error(
        api.put(f"routers/{r['id']}/add_router_interface", {"subnet_id": sub["id"]}),
        400,
        "BadRequest",
        f"Bad router request: Router already has a port on subnet {sub['id']}.",
    )


def test_ipv6_subnets_share_one_interface_port(api):
    r = router(api)
    net = api.network("demo")
    a = api.subnet(net["id"], "2001:db8:1::/64", "demo", gateway_ip="2001:db8:1::1")
    b = api.subnet(net["id"], "2001:db8:2::/64", "demo", gateway_ip="2001:db8:2::1")
    first = add_subnet(api, r["id"], a["id"])
    second = add_subnet(api, r["id"], b["id"])
    assert second["port_id"] == first["port_id"] and second["subnet_ids"] == [b["id"]]
    port = api.show("ports", "port", first["port_id"])
    assert port["fixed_ips"] == [
        {"subnet_id": a["id"], "ip_address": "2001:db8:1::1"},
        {"subnet_id": b["id"], "ip_address": "2001:db8:2::1"},
    ]
    api.ok(api.put(f"routers/{r['id']}/remove_router_interface", {"subnet_id": a["id"]}, "demo"))
    assert api.show("ports", "port", first["port_id"])["fixed_ips"] == [
        {"subnet_id": b["id"], "ip_address": "2001:db8:2::1"}
    ]


def test_ipv6_default_gateway_interface(api):
    r = router(api)
    net = api.network("demo")
    a = api.subnet(net["id"], "2001:db8:1::/64", "demo")
    info = add_subnet(api, r["id"], a["id"])
    assert api.show("ports", "port", info["port_id"])["fixed_ips"] == [
        {"subnet_id": a["id"], "ip_address": "2001:db8:1::"}
    ]


def test_add_and_remove_by_port(api):
    r = router(api)
    rid = r["id"]
    net, sub = api.net_with_subnet("10.0.0.0/24")
    port = api.port(net["id"], "demo", fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}])
    info = api.ok(api.put(f"routers/{rid}/add_router_interface", {"port_id": port["id"]}, "demo"))
    assert info == {
        "id": rid,
        "project_id": "p-demo",
        "port_id": port["id"],
        "network_id": net["id"],
        "subnet_id": sub["id"],
        "subnet_ids": [sub["id"]],
    }
    now = api.show("ports", "port", port["id"], "demo")
    assert (now["device_owner"], now["device_id"]) == ("network:router_interface", rid)
    assert now["revision_number"] > port["revision_number"]
    error(
        api.put(f"routers/{rid}/add_router_interface", {"port_id": port["id"]}, "demo"),
        409,
        "PortInUse",
        f"Unable to complete operation on port {port['id']} for network {net['id']}. Port already has an attached "
        f"device {rid}.",
    )
    error(
        api.put(f"routers/{rid}/remove_router_interface", {"port_id": port["id"], "subnet_id": rid}, "demo"),
        400,
        "SubnetMismatchForPort",
        f"Subnet on port {port['id']} does not match the requested subnet {rid}.",
    )
    out = api.ok(api.put(f"routers/{rid}/remove_router_interface", {"port_id": port["id"]}, "demo"))
    assert out == info
    error(api.get(f"ports/{port['id']}", "demo"), 404, "PortNotFound")  # Neutron deletes it


def test_add_by_port_errors(api):
    r = router(api)
    rid = r["id"]
    net, sub = api.net_with_subnet("10.0.0.0/24")
    bare_net = api.network("demo")
    bare = api.port(bare_net["id"], "demo")
    error(
        api.put(f"routers/{rid}/add_router_interface", {"port_id": bare["id"]}, "demo"),
        400,
        "BadRequest",
        "Bad router request: Router port must have at least one fixed IP.",
    )
    used = api.port(net["id"], "demo", device_id="vm-1")
    error(
        api.put(f"routers/{rid}/add_router_interface", {"port_id": used["id"]}, "demo"),
        409,
        "PortInUse",
        f"Unable to complete operation on port {used['id']} for network {net['id']}. Port already has an "
        "attached device vm-1.",
    )
    missing = "00000000-0000-0000-0000-000000000001"
    error(
        api.put(f"routers/{rid}/add_router_interface", {"port_id": missing}, "demo"),
        404,
        "PortNotFound",
        f"Port {missing} could not be found.",
    )
    add_subnet(api, rid, sub["id"])
    dup = api.port(net["id"], "demo")
    error(
        api.put(f"routers/{rid}/add_router_interface", {"port_id": dup["id"]}, "demo"),
        400,
        "BadRequest",
        f"Bad router request: Router already has a port on subnet {sub['id']}.",
    )
    assert api.show("ports", "port", dup["id"], "demo")["device_owner"] == ""  # rolled back


def test_remove_interface_errors(api):
    r = router(api)
    rid = r["id"]
    net, sub = api.net_with_subnet("10.0.0.0/24")
    port = api.port(net["id"], "demo")
    error(
        api.put(f"routers/{rid}/remove_router_interface", {"port_id": port["id"]}, "demo"),
        404,
        "RouterInterfaceNotFound",
        f"Router {rid} does not have an interface with id {port['id']}",
    )
    error(
        api.put(f"routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]}, "demo"),
        404,
        "RouterInterfaceNotFoundForSubnet",
        f"Router {rid} has no interface on subnet {sub['id']}",
    )


def test_remove_interface_needed_by_floating_ip(api):
    topo = topology(api)
    floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"])
    error(
        api.put(f"routers/{topo.router['id']}/remove_router_interface", {"subnet_id": topo.subnet["id"]}, "demo"),
        409,
        "RouterInterfaceInUseByFloatingIP",
        f"Router interface for subnet {topo.subnet['id']} on router {topo.router['id']} cannot be deleted, as it "
        "is required by one or more floating IPs.",
    )


def test_distributed_router_interface_owner(api):
    r = router(api, "admin", distributed=True)
    _, sub = api.net_with_subnet("10.0.0.0/24", as_="admin")
    info = add_subnet(api, r["id"], sub["id"], "admin")
    assert api.show("ports", "port", info["port_id"])["device_owner"] == "network:router_interface_distributed"
    error(api.delete(f"routers/{r['id']}"), 409, "RouterInUse")


def test_feed_records_interface_changes(api):
    topo = topology(api)
    kinds = [a for _, a, _ in changes(api, "router", topo.router["id"])]
    assert kinds == ["create", "update", "update"]  # gateway, then interface
    body = changes(api, "router", topo.router["id"])[-1][2]
    assert body["revision_number"] == 3 and body["distributed"] is False
