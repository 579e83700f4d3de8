"""Routers created administratively down (issue 14): the server side and the L3 agent's view of it.

A router created with ``admin_state_up=false`` is ``ACTIVE``, is scheduled to an
L3 agent like any other, and its interfaces are in the feed; the L3 agent
built on that feed keeps the router's namespace and plugs its interface ports
(so the L2 agent wires them) while forwarding nothing.  The status the L2 agent
reports for those ports sticks whatever the router's admin state.  (Real
traffic: tests/fullstack/test_router_admin_down.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino.agents.l3 import render
from neutrino.agents.l3.agent import L3Driver
from neutrino.agents.l3.model import L3Config
from neutrino.agents.l3.planner import EnsureNamespace, PlugInterface, SetAddresses, SetRoutes, Teardown, plan
from neutrino.fakes.host import FakeHost
from neutrino.feed.routes import PREFIX
from neutrino.feed.state import from_snapshot
from tests.api.test_dhcp_scheduling import DOWN, T0
from tests.api.test_feed_api import make_env  # noqa: F401 - fixture
from tests.api.test_l3_scheduling import L3Env

HOST = "net1"


@pytest.fixture
def env(make_env) -> L3Env:  # noqa: F811 - a pytest fixture, imported to be used by name
    e = L3Env(make_env())
    e.agents.l3_scheduler.started = T0 - 10 * DOWN
    return e


def _down_router_with_two_interfaces(env: L3Env) -> tuple[dict, list[dict]]:
    env.l3(HOST)
    r = env.router(admin_state_up=False)
    for cidr in ("10.61.0.0/24", "10.62.0.0/24"):
        net = env.network()
        sub = env.subnet(net["id"], cidr)
        env.ok(env.req("PUT", f"/v2.0/routers/{r['id']}/add_router_interface", "demo", json={"subnet_id": sub["id"]}))
    ports = env.ok(env.req("GET", f"/v2.0/ports?device_id={r['id']}&device_owner=network:router_interface"))["ports"]
    return r, ports


def _show(env: L3Env, router_id: str) -> dict:
    return env.ok(env.req("GET", f"/v2.0/routers/{router_id}", "demo"))["router"]


def test_a_router_created_down_is_active_scheduled_and_planned_with_plugged_ports(env, tmp_path: Path):
    r, ports = _down_router_with_two_interfaces(env)
    assert (r["admin_state_up"], r["status"]) == (False, "ACTIVE")
    assert len(ports) == 2 and all(p["status"] == "DOWN" for p in ports)
    assert env.hosts_of(r["id"]) == [HOST]
    # The L3 agent on that host, from the server's feed: the router is served, not torn down.
    cfg = L3Config(HOST)
    driver = L3Driver(cfg, None, tmp_path / "l3", host=FakeHost())
    views = driver.desired(from_snapshot(env.snapshot()))
    assert set(views) == {r["id"]} and views[r["id"]].admin_state_up is False
    ops = plan(cfg, views, {})
    assert isinstance(ops[0], EnsureNamespace) and dict(ops[0].sysctls)["net.ipv4.ip_forward"] == "0"
    assert sorted(op.port_id for op in ops if isinstance(op, PlugInterface)) == sorted(p["id"] for p in ports)
    assert not any(isinstance(op, (SetAddresses, SetRoutes, Teardown)) for op in ops)
    assert render.is_admin_down_ruleset(ops[-1].text)


def test_interface_status_reported_by_the_l2_agent_sticks_whatever_the_admin_state(env):
    r, ports = _down_router_with_two_interfaces(env)
    ids = [p["id"] for p in ports]
    for pid in ids:  # what the L3 agent does for the ports of its routers
        env.ok(env.req("PUT", f"/v2.0/ports/{pid}", json={"port": {"binding:host_id": HOST}}))
    got = env.ok(env.req("POST", f"{PREFIX}ports/status", json={"host": HOST, "ports": {i: "ACTIVE" for i in ids}}))
    assert sorted(got["changed"]) == sorted(ids)

    def statuses() -> list[str]:
        return [env.ok(env.req("GET", f"/v2.0/ports/{i}", "demo"))["port"]["status"] for i in ids]

    assert statuses() == ["ACTIVE", "ACTIVE"]
    for up in (True, False):
        out = env.ok(env.req("PUT", f"/v2.0/routers/{r['id']}", "demo", json={"router": {"admin_state_up": up}}))
        assert (out["router"]["admin_state_up"], out["router"]["status"]) == (up, "ACTIVE")
        assert statuses() == ["ACTIVE", "ACTIVE"] and env.hosts_of(r["id"]) == [HOST]
    assert _show(env, r["id"])["admin_state_up"] is False
    # removing an interface of a down router works as on an up one
    env.ok(env.req("PUT", f"/v2.0/routers/{r['id']}/remove_router_interface", "demo", json={"port_id": ids[0]}))
    assert env.req("GET", f"/v2.0/ports/{ids[0]}").status_code == 404
