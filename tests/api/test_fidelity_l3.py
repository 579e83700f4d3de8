"""Issue 14, behaviours of external networks, floating IPs and routers: deleting an external network
with unused floating IPs, the "blank update", re-association as a no-op, ``distributed``/``ha``."""

from __future__ import annotations

import pytest

from neutrino.services.floatingips import release_unused_floating_ips
from tests.api.conftest import error
from tests.api.l3_helpers import changes, external_network, floating_ip, router, set_gateway, topology


# --- deleting an external network ------------------------------------------------------------------
def test_delete_external_network_removes_unassociated_floating_ips(api):
    net, _ = external_network(api)
    mine = floating_ip(api, net["id"], "demo")
    theirs = floating_ip(api, net["id"], "other")
    assert len(api.list("ports", "admin", f"network_id={net['id']}")) == 2
    assert api.delete(f"networks/{net['id']}").status_code == 204
    for fip in (mine, theirs):
        error(api.get(f"floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
        assert changes(api, "floatingip", fip["id"])[-1] == (fip["id"], "delete", None)
    assert api.list("ports", "admin", f"network_id={net['id']}") == []
    assert api.list("floatingips", "admin") == []
    error(api.get(f"networks/{net['id']}"), 404, "NetworkNotFound")


def test_delete_external_network_blocked_by_a_router_gateway(api):
    topo = topology(api)
    ext = topo.ext_net["id"]
    free = floating_ip(api, ext)
    used = floating_ip(api, ext, port_id=topo.port["id"])
    before = api.snapshot()
    err = error(api.delete(f"networks/{ext}"), 409, "NetworkInUse")
    assert "There are one or more ports still in use on the network" in err["message"]
    assert api.snapshot() == before  # nothing deleted, not even the free floating IP
    assert api.show("floatingips", "floatingip", free["id"])["id"] == free["id"]
    assert api.show("floatingips", "floatingip", used["id"])["port_id"] == topo.port["id"]


def test_delete_external_network_blocked_by_a_user_port(api):
    net, _ = external_network(api)
    fip = floating_ip(api, net["id"])
    api.port(net["id"], "admin")
    error(api.delete(f"networks/{net['id']}"), 409, "NetworkInUse")
    assert api.show("floatingips", "floatingip", fip["id"])["id"] == fip["id"]


def test_only_floating_ips_serving_nothing_are_released(api):
    """The release step alone (a 409 afterwards rolls everything back, so check it directly):
    associated floating IPs and those held by port forwardings stay."""
    topo = topology(api)
    ext = topo.ext_net["id"]
    free = floating_ip(api, ext)
    used = floating_ip(api, ext, port_id=topo.port["id"])
    held = floating_ip(api, ext)
    target = api.port(topo.net["id"], "demo")
    api.ok(
        api.post(
            f"floatingips/{held['id']}/port_forwardings",
            {
                "port_forwarding": {
                    "protocol": "tcp",
                    "internal_ip_address": target["fixed_ips"][0]["ip_address"],
                    "internal_port": 22,
                    "internal_port_id": target["id"],
                    "external_port": 2222,
                }
            },
            "demo",
        ),
        201,
    )
    api.db.run_write(lambda uow: release_unused_floating_ips(api.deps, uow, ext))
    assert {f["id"] for f in api.list("floatingips")} == {used["id"], held["id"]}
    assert free["id"] not in {p["device_id"] for p in api.list("ports", "admin", f"network_id={ext}")}


def test_delete_network_that_is_not_external_is_unchanged(api):
    net, _ = api.net_with_subnet("10.0.0.0/24", "admin")
    api.port(net["id"], "admin")
    error(api.delete(f"networks/{net['id']}"), 409, "NetworkInUse")


# --- floating IP updates ---------------------------------------------------------------------------
def test_blank_update_clears_the_association(api):
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"], description="d1")
    assert fip["port_id"] == topo.port["id"]
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {}}, "demo"))["floatingip"]
    assert out["port_id"] is out["fixed_ip_address"] is out["router_id"] is out["port_details"] is None
    assert out["description"] == "d1"
    assert changes(api, "floatingip", fip["id"])[-1] == (fip["id"], "update", out)
    # a blank update of an unassociated floating IP is fine too
    assert api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {}}, "demo"))["floatingip"]["port_id"] is None


def test_other_attributes_without_port_id_keep_the_association(api):
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"], description="d1")
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"description": "d2"}}, "demo"))["floatingip"]
    assert out["description"] == "d2" and out["port_id"] == topo.port["id"]
    assert out["port_details"]["mac_address"] == topo.port["mac_address"]
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": None}}, "demo"))["floatingip"]
    assert out["port_id"] is None and out["description"] == "d2"


def test_reassociating_the_same_port_and_address_is_a_no_op(api):
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"])
    address = topo.port["fixed_ips"][0]["ip_address"]
    for body in ({"port_id": topo.port["id"]}, {"port_id": topo.port["id"], "fixed_ip_address": address}):
        out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": body}, "demo"))["floatingip"]
        assert out["port_id"] == topo.port["id"] and out["fixed_ip_address"] == address
        assert out["router_id"] == topo.router["id"]


def test_moving_to_another_address_of_the_same_port_checks_that_address(api):
    topo = topology(api)
    sub2 = api.subnet(topo.net["id"], "10.1.0.0/24", "demo")
    api.ok(api.put(f"routers/{topo.router['id']}/add_router_interface", {"subnet_id": sub2["id"]}, "demo"))
    port = api.port(topo.net["id"], "demo", fixed_ips=[{"subnet_id": topo.subnet["id"]}, {"subnet_id": sub2["id"]}])
    first, second = (f["ip_address"] for f in port["fixed_ips"])
    a = floating_ip(api, topo.ext_net["id"], port_id=port["id"], fixed_ip_address=first)
    b = floating_ip(api, topo.ext_net["id"], port_id=port["id"], fixed_ip_address=second)
    # a may not take the address b already has, even though a is on the same port
    error(
        api.put(f"floatingips/{a['id']}", {"floatingip": {"port_id": port["id"], "fixed_ip_address": second}}, "demo"),
        409,
        "FloatingIPPortAlreadyAssociated",
    )
    api.ok(api.put(f"floatingips/{b['id']}", {"floatingip": {"port_id": None}}, "demo"))
    out = api.ok(
        api.put(f"floatingips/{a['id']}", {"floatingip": {"port_id": port["id"], "fixed_ip_address": second}}, "demo")
    )
    assert out["floatingip"]["fixed_ip_address"] == second


# --- router distributed / ha -----------------------------------------------------------------------
@pytest.mark.parametrize("as_", ["admin", "demo"])
def test_router_distributed_and_ha_as_neutron_shows_them(api, as_):
    r = router(api, as_)
    ext, _ = external_network(api)
    set_gateway(api, r["id"], ext["id"], as_)
    shown = api.show("routers", "router", r["id"], "admin")
    listed = [x for x in api.list("routers", "admin") if x["id"] == r["id"]][0]
    for d in (shown, listed):
        assert d["distributed"] is False and d["ha"] is False
    only = api.ok(api.get(f"routers/{r['id']}?fields=distributed&fields=ha"))["router"]
    assert only == {"distributed": False, "ha": False}
    assert api.ok(api.get("routers?fields=id&fields=ha"))["routers"] == [{"id": r["id"], "ha": False}]
    assert [x["id"] for x in api.list("routers", "admin", "distributed=False&ha=False")] == [r["id"]]
    assert api.list("routers", "admin", "ha=True") == []
    # members do not get the keys at all (get_router:distributed / get_router:ha are admin only)
    if as_ == "demo":
        mine = api.show("routers", "router", r["id"], "demo")
        assert "distributed" not in mine and "ha" not in mine
        assert api.ok(api.get(f"routers/{r['id']}?fields=ha&fields=name", "demo"))["router"] == {"name": "demo-router"}


def test_admin_created_router_echoes_the_attributes(api):
    created = api.ok(api.post("routers", {"router": {"name": "r", "distributed": False, "ha": False}}), 201)["router"]
    assert created["distributed"] is False and created["ha"] is False
    error(api.post("routers", {"router": {"name": "r", "ha": True}}, "demo"), 403, "PolicyNotAuthorized")
