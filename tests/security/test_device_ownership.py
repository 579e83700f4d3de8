"""Findings 1, 2 and 4 of the audit: a port's owner fields cannot join it to another
project's router or server, and Nova's server create applies Neutron's port policy.

A port's ``device_id``/``device_owner`` are written by whoever owns the port.  What a
router connects is what the router service recorded (``router_ports``), and what a
server's NICs are is its own project's ports; a non-admin naming another project's router
or server as ``device_id`` is 409 DeviceIDNotOwnedByTenant, as Neutron does for routers.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from neutrino.db import tables
from tests.api.compute_helpers import CIRROS, ComputeEnv
from tests.api.conftest import Api, error

ROUTER_OWNERS = ("network:router_interface", "network:router_gateway")


def _admin_router(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """admin's external network, router (gateway set) and an internal subnet on it."""
    ext = api.network(**{"router:external": True})
    api.subnet(ext["id"], "172.24.4.0/24")
    router = api.create("routers", "router", external_gateway_info={"network_id": ext["id"]})
    _, sub = api.net_with_subnet("10.1.0.0/24", as_="admin")
    api.ok(api.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}))
    return ext, router, sub


def _feed_router(api: Api, router_id: str) -> dict[str, Any]:
    """The router as the agents last got it on the change feed."""
    body = api.ok(api.get("/neutrino/v1/changes?since=0&limit=10000", as_="service"))
    return [c["body"] for c in body["changes"] if c["resource"] == "router" and c["id"] == router_id][-1]


@pytest.mark.parametrize("owner", ROUTER_OWNERS)
def test_a_member_cannot_plug_a_port_into_another_projects_router(api: Api, owner: str) -> None:
    """Finding 1: POST /ports naming admin's router as device (interface or gateway) is 409."""
    _, router, _ = _admin_router(api)
    net, _ = api.net_with_subnet("10.0.0.0/24", as_="demo")
    before = api.snapshot()
    err = error(
        api.post(
            "ports", {"port": {"network_id": net["id"], "device_owner": owner, "device_id": router["id"]}}, as_="demo"
        ),
        409,
        "DeviceIDNotOwnedByTenant",
    )
    assert router["id"] in err["message"]
    assert api.snapshot() == before


@pytest.mark.parametrize("owner", [*ROUTER_OWNERS, "compute:nova", ""])
def test_a_member_cannot_move_a_port_onto_another_projects_router(api: Api, owner: str) -> None:
    """Finding 1, update path: PUT device_id (with any owner) to admin's router is 409."""
    _, router, _ = _admin_router(api)
    net, _ = api.net_with_subnet("10.0.0.0/24", as_="demo")
    port = api.port(net["id"], as_="demo")
    before = api.snapshot()
    error(
        api.put(f"ports/{port['id']}", {"port": {"device_owner": owner, "device_id": router["id"]}}, as_="demo"),
        409,
        "DeviceIDNotOwnedByTenant",
    )
    assert api.snapshot() == before


def test_own_router_and_free_text_device_ids_are_still_allowed(api: Api) -> None:
    """Neutron lets a project name its own router, or any id of nothing; such a port is not the
    router's (its records stay), and its owner can delete it again."""
    net, _ = api.net_with_subnet("10.0.0.0/24", as_="demo")
    mine = api.create("routers", "router", as_="demo")
    for device_id in (mine["id"], "my-appliance-7"):
        p = api.port(net["id"], as_="demo", device_owner="network:router_interface", device_id=device_id)
        assert _feed_router(api, mine["id"])["interface_port_ids"] == []
        api.ok(api.delete(f"ports/{p['id']}", as_="demo"), 204)


def test_admin_router_keeps_its_gateway_and_interfaces_whatever_ports_claim(api: Api) -> None:
    """The router's feed view names its ports; a port that only claims the router (here made by
    admin, who may, on demo's network) is neither its gateway nor an interface, so the L3 and
    metadata agents never plug it in, and floating IPs behind it find no router."""
    ext, router, sub = _admin_router(api)
    real = _feed_router(api, router["id"])
    [intf] = api.list("ports", query=f"device_id={router['id']}&device_owner=network:router_interface")
    assert real["interface_port_ids"] == [intf["id"]] and real["gw_port_id"]
    net, dsub = api.net_with_subnet("10.0.0.0/24", as_="demo")
    for owner in ("network:router_interface", "network:router_gateway"):
        api.port(
            net["id"],
            as_="admin",
            project_id="p-demo",
            device_owner=owner,
            device_id=router["id"],
            fixed_ips=[{"subnet_id": dsub["id"], "ip_address": "10.0.0.1" if "interface" in owner else "10.0.0.2"}],
        )
    api.ok(api.put(f"routers/{router['id']}", {"router": {"name": "touched"}}))
    now = _feed_router(api, router["id"])
    assert now["interface_port_ids"] == real["interface_port_ids"] and now["gw_port_id"] == real["gw_port_id"]
    # A floating IP for a port on demo's network cannot route through admin's router.
    vm = api.port(net["id"], as_="demo")
    fip = api.create("floatingips", "floatingip", as_="demo", floating_network_id=ext["id"])
    error(
        api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": vm["id"]}}, as_="demo"),
        404,
        "ExternalGatewayForFloatingIPNotFound",
    )
    # API answers never carry the records.
    for who in ("admin", "demo"):
        for r in api.list("routers", as_=who):
            assert "gw_port_id" not in r and "interface_port_ids" not in r


def test_router_port_records_follow_interfaces_and_gateway(api: Api) -> None:
    _, router, sub = _admin_router(api)
    rec = _feed_router(api, router["id"])
    [gw] = api.list("ports", query=f"device_owner=network:router_gateway&device_id={router['id']}")
    assert rec["gw_port_id"] == gw["id"] and len(rec["interface_port_ids"]) == 1
    net2, sub2 = api.net_with_subnet("10.2.0.0/24", as_="admin")
    port = api.port(net2["id"])
    api.ok(api.put(f"routers/{router['id']}/add_router_interface", {"port_id": port["id"]}))
    assert sorted(_feed_router(api, router["id"])["interface_port_ids"]) == sorted(
        [*rec["interface_port_ids"], port["id"]]
    )
    api.ok(api.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]}))
    assert _feed_router(api, router["id"])["interface_port_ids"] == [port["id"]]
    api.ok(api.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {}}}))
    assert _feed_router(api, router["id"])["gw_port_id"] is None


# --- servers (findings 2 and 4) ---------------------------------------------------------------
def _others_server(env: ComputeEnv) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(other's network, a server of other's on it, that server's addresses)."""
    env.agent("cn1")
    theirs = env.network(as_="other", cidr="10.5.0.0/24")
    sid = env.boot(as_="other", networks=[{"uuid": theirs["id"]}])["server"]["id"]
    return theirs, sid, env.show(sid, as_="other")["addresses"]


def test_a_member_cannot_attach_a_port_to_another_projects_server(compute_env: ComputeEnv) -> None:
    """Finding 2: device_owner compute:nova + another project's server id is 409, on create and
    update, and the server's addresses do not change."""
    env = compute_env
    theirs, sid, addresses = _others_server(env)
    net = env.network(as_="demo")
    r = env.neutron(
        "POST",
        "/v2.0/ports",
        "demo",
        {"port": {"network_id": net["id"], "device_owner": "compute:nova", "device_id": sid}},
    )
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "DeviceIDNotOwnedByTenant", r.text
    mine = env.port(net["id"], as_="demo")
    r = env.neutron(
        "PUT", f"/v2.0/ports/{mine['id']}", "demo", {"port": {"device_owner": "compute:nova", "device_id": sid}}
    )
    assert r.status_code == 409, r.text
    assert env.show(sid, as_="other")["addresses"] == addresses


def test_a_server_lists_only_its_own_projects_ports(compute_env: ComputeEnv) -> None:
    """Finding 2, defence in depth: a port of another project naming the server (such as one made
    before this rule, or by an admin) is not in the server's addresses or in network_data.json."""
    env = compute_env
    theirs, sid, addresses = _others_server(env)
    net = env.network(as_="demo")
    env.port(net["id"], as_="admin", project_id="p-demo", device_owner="compute:nova", device_id=sid)
    assert env.show(sid, as_="other")["addresses"] == addresses
    view = env.ok(env.neutron("GET", f"/neutrino/v1/servers/{sid}?expand=true", "service"))
    view = view.get("server", view)
    assert [p["network_id"] for p in view["ports"]] == [theirs["id"]]
    assert set(view["networks"]) == {theirs["id"]}


def test_server_create_applies_the_callers_port_policy(compute_env: ComputeEnv) -> None:
    """Finding 4: a fixed IP on admin's shared network is 403 through POST /ports, and so it is
    through a server create; no port is made."""
    env = compute_env
    env.agent("cn1")
    shared = env.network(as_="admin", cidr="10.7.0.0/24", shared=True)
    r = env.neutron(
        "POST",
        "/v2.0/ports",
        "demo",
        {"port": {"network_id": shared["id"], "fixed_ips": [{"ip_address": "10.7.0.50"}]}},
    )
    assert r.status_code == 403, r.text
    ports_before = env.ok(env.neutron("GET", "/v2.0/ports"))["ports"]
    resp = env.call(
        "POST",
        "servers",
        "demo",
        {
            "server": {
                "name": "vm",
                "imageRef": CIRROS,
                "flavorRef": "42",
                "networks": [{"uuid": shared["id"], "fixed_ip": "10.7.0.50"}],
            }
        },
    )
    if resp.status_code == 202:  # the build fails (as Nova's does when Neutron refuses the port)
        s = env.show(resp.json()["server"]["id"])
        assert s["status"] == "ERROR", s
    else:
        assert resp.status_code == 403, resp.text
    assert env.ok(env.neutron("GET", "/v2.0/ports"))["ports"] == ports_before
    # Without the fixed IP (policy allows a port on a shared network) the same boot works.
    ok = env.boot(networks=[{"uuid": shared["id"]}])["server"]
    assert env.show(ok["id"])["status"] == "BUILD"


# --- the migration's backfill -------------------------------------------------------------------
def test_migration_records_only_the_routers_own_ports(api: Api) -> None:
    """Upgrading a database from before router_ports: the gateway (gw_port_id) and the interface
    ports of the router's own project become the router's records; a port of another project
    that claimed the router does not."""
    from alembic import command

    from neutrino.db.migrate import alembic_config, upgrade

    _, router, _ = _admin_router(api)
    want = _feed_router(api, router["id"])
    net, _ = api.net_with_subnet("10.0.0.0/24", as_="demo")
    api.port(
        net["id"], as_="admin", project_id="p-demo", device_owner="network:router_interface", device_id=router["id"]
    )
    url = api.db.engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0002")
    with api.db.engine.connect() as conn:
        assert "router_ports" not in conn.dialect.get_table_names(conn)
    upgrade(api.db.engine)
    with api.db.read() as conn:
        rows = {(r.port_id, r.port_type) for r in conn.execute(select(tables.router_ports))}
    assert rows == {(want["gw_port_id"], "network:router_gateway")} | {
        (pid, "network:router_interface") for pid in want["interface_port_ids"]
    }


# --- the DHCP agent's own port ------------------------------------------------------------------
def test_dhcp_agent_takes_over_only_its_own_port_on_that_network() -> None:
    """A project can write this host's DHCP device_id for another network on a port of its own
    network; the DHCP agent must neither update that port with the other network's subnets (which
    would fail for ever, leaving that network without DHCP) nor delete it."""
    from neutrino.agents.dhcp.agent import _own_dhcp_ports
    from neutrino.agents.dhcp.model import dhcp_device_id
    from neutrino.feed.state import State

    did = dhcp_device_id("host-1", "net-admin")
    ports = {
        "decoy": {"id": "decoy", "network_id": "net-demo", "device_owner": "network:dhcp", "device_id": did},
        "fake-owner": {"id": "fake-owner", "network_id": "net-admin", "device_owner": "compute:nova", "device_id": did},
        "real": {"id": "real", "network_id": "net-admin", "device_owner": "network:dhcp", "device_id": did},
    }
    feed = {"port": ports}
    state = State(1, feed, frozenset(feed))
    assert [p["id"] for p in _own_dhcp_ports(state, "net-admin", did)] == ["real"]
    assert _own_dhcp_ports(state, "net-demo", dhcp_device_id("host-1", "net-demo")) == []


def test_a_reader_cannot_create_a_port_on_a_shared_network(api: Api) -> None:
    """create_port is a write: a project's reader may see a shared network but not plug into it."""
    net = api.network(shared=True)
    api.subnet(net["id"], "10.0.0.0/24")
    before = api.snapshot()
    error(api.post("ports", {"port": {"network_id": net["id"]}}, as_="reader"), 403, "PolicyNotAuthorized")
    error(api.post("ports", {"port": {"network_id": net["id"]}}, as_="other-reader"), 403, "PolicyNotAuthorized")
    assert api.snapshot() == before
    api.port(net["id"], as_="demo")  # a member may
