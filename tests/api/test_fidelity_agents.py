"""Scheduling by hand (issue 14): ``POST/DELETE /v2.0/agents/{id}/dhcp-networks`` and ``.../l3-routers``.

* ``POST {"network_id": ...}`` binds at once, even without a DHCP subnet and
  beyond ``dhcp_agents_per_network``; 201 with a ``null`` body, as Neutron;
* ``POST {"router_id": ...}`` likewise for L3 agents;
* a removal sticks: automatic scheduling (agent restart/revival/admin-up,
  new DHCP subnets) takes only networks/routers that were never hosted or
  whose agent is dead, until an admin binds them again;
* Neutron's errors: InvalidDHCPAgent/InvalidL3Agent (404), already hosted /
  not hosted (409), admin only (403).
"""

from __future__ import annotations

import pytest

from tests.api.conftest import error
from tests.api.test_dhcp_scheduling import DOWN, T0, Env
from tests.api.test_feed_api import make_env  # noqa: F401 - fixture

L3 = "L3 agent"


@pytest.fixture
def env(make_env) -> Env:  # noqa: F811 - a pytest fixture, imported to be used by name
    e = Env(make_env())
    e.agents.l3_scheduler.started = T0 - 10 * DOWN
    return e


def dhcp_nets(env: Env, agent_id: str) -> list[str]:
    return [n["id"] for n in env.ok(env.req("GET", f"/v2.0/agents/{agent_id}/dhcp-networks"))["networks"]]


def l3_routers(env: Env, agent_id: str) -> list[str]:
    return [r["id"] for r in env.ok(env.req("GET", f"/v2.0/agents/{agent_id}/l3-routers"))["routers"]]


def add_net(env: Env, agent_id: str, net_id: str, as_: str = "admin"):
    return env.req("POST", f"/v2.0/agents/{agent_id}/dhcp-networks", as_, json={"network_id": net_id})


def add_router(env: Env, agent_id: str, router_id: str, as_: str = "admin"):
    return env.req("POST", f"/v2.0/agents/{agent_id}/l3-routers", as_, json={"router_id": router_id})


def router(env: Env) -> dict:
    return env.ok(env.req("POST", "/v2.0/routers", "demo", json={"router": {"name": "r"}}), 201)["router"]


# --- DHCP ------------------------------------------------------------------------------------------
def test_add_network_by_hand_even_without_a_dhcp_subnet(env):
    a = env.report("net1")
    net = env.network()
    assert env.hosts_of(net["id"]) == []
    rev = env.head()
    resp = add_net(env, a["id"], net["id"])
    assert resp.status_code == 201 and resp.content == b"null"
    assert env.hosts_of(net["id"]) == ["net1"] and dhcp_nets(env, a["id"]) == [net["id"]]
    assert [(act, i) for act, i, _ in env.bindings(rev)] == [("create", net["id"])]
    assert env.show_net(net["id"])["availability_zones"] == ["nova"]
    error(
        add_net(env, a["id"], net["id"]),
        409,
        "NetworkHostedByDHCPAgent",
        f"The network {net['id']} has been already hosted by the DHCP Agent {a['id']}.",
    )


def test_add_beyond_dhcp_agents_per_network(env):
    a1, a2 = env.report("net1"), env.report("net2")
    net = env.net_with_subnet()
    assert env.hosts_of(net["id"]) == ["net1"]
    env.ok(add_net(env, a2["id"], net["id"]), 201)
    assert env.hosts_of(net["id"]) == ["net1", "net2"]
    assert a1["id"] != a2["id"]


def test_add_network_errors(env):
    a = env.report("net1")
    ovs = env.report("compute1", "Open vSwitch agent")
    net = env.network()
    error(
        add_net(env, a["id"], net["id"], "demo"),
        403,
        "PolicyNotAuthorized",
        "rule:create_dhcp-network is disallowed by policy",
    )
    error(
        add_net(env, ovs["id"], net["id"]),
        404,
        "InvalidDHCPAgent",
        f"Agent {ovs['id']} is not a valid DHCP Agent or has been disabled",
    )
    error(add_net(env, "0c8d3a3e-0000-4000-8000-000000000000", net["id"]), 404, "AgentNotFound")
    error(add_net(env, a["id"], "0c8d3a3e-0000-4000-8000-000000000001"), 404, "NetworkNotFound")
    error(
        add_net(env, a["id"], "nope"),
        400,
        "HTTPBadRequest",
        "Invalid input for network_id. Reason: 'nope' is not a valid UUID.",
    )
    error(
        env.req("POST", f"/v2.0/agents/{a['id']}/dhcp-networks", json={"network": {"id": net["id"]}}),
        400,
        "HTTPBadRequest",
        "Unable to find 'network_id' in request body",
    )
    env.ok(env.req("PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"admin_state_up": False}}))
    error(add_net(env, a["id"], net["id"]), 404, "InvalidDHCPAgent")
    assert env.hosts_of(net["id"]) == []


def test_removed_network_stays_off_until_added_again(env):
    a = env.report("net1")
    net = env.net_with_subnet()
    assert env.hosts_of(net["id"]) == ["net1"]
    error(
        env.req("DELETE", f"/v2.0/agents/{a['id']}/dhcp-networks/{net['id']}", "demo"),
        403,
        "PolicyNotAuthorized",
        "rule:delete_dhcp-network is disallowed by policy",
    )
    env.ok(env.req("DELETE", f"/v2.0/agents/{a['id']}/dhcp-networks/{net['id']}"), 204)
    assert env.hosts_of(net["id"]) == []
    error(
        env.req("DELETE", f"/v2.0/agents/{a['id']}/dhcp-networks/{net['id']}"),
        409,
        "NetworkNotHostedByDhcpAgent",
        f"The network {net['id']} is not hosted by the DHCP agent {a['id']}.",
    )
    # restart, revival, admin-up, another DHCP subnet, a new agent: it stays off
    env.report("net1", start_flag=True)
    env.clock.now += 2 * DOWN
    env.report("net1")
    env.ok(env.req("PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"admin_state_up": False}}))
    env.ok(env.req("PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"admin_state_up": True}}))
    env.subnet(net["id"], "10.0.1.0/24")
    env.report("net2")
    assert env.hosts_of(net["id"]) == []
    # other networks are still scheduled automatically
    other = env.net_with_subnet("10.1.0.0/24")
    assert env.hosts_of(other["id"]) != []
    # until an admin adds it again; then it is an ordinary network
    env.ok(add_net(env, a["id"], net["id"]), 201)
    assert env.hosts_of(net["id"]) == ["net1"]


# --- L3 --------------------------------------------------------------------------------------------
def test_add_and_remove_router_by_hand(env):
    r = router(env)  # no L3 agent yet: unscheduled
    a = env.report("net1", L3)  # a new agent takes it
    assert l3_routers(env, a["id"]) == [r["id"]]
    b = env.report("net2", L3)
    error(
        add_router(env, b["id"], r["id"]),
        409,
        "RouterHostedByL3Agent",
        f"The router {r['id']} has been already hosted by the L3 Agent {a['id']}.",
    )
    env.ok(add_router(env, a["id"], r["id"]), 201)  # already there: nothing to do
    env.ok(env.req("DELETE", f"/v2.0/agents/{a['id']}/l3-routers/{r['id']}"), 204)
    assert l3_routers(env, a["id"]) == [] and l3_routers(env, b["id"]) == []
    error(
        env.req("DELETE", f"/v2.0/agents/{a['id']}/l3-routers/{r['id']}"),
        409,
        "RouterNotHostedByL3Agent",
        f"The router {r['id']} is not hosted by L3 agent {a['id']}.",
    )
    # restarts, revivals and new agents leave it alone
    env.report("net1", L3, start_flag=True)
    env.clock.now += 2 * DOWN
    env.report("net2", L3)
    env.report("net3", L3)
    assert env.ok(env.req("GET", f"/v2.0/routers/{r['id']}/l3-agents"))["agents"] == []
    # a router never hosted is still taken automatically
    r2 = router(env)
    assert env.ok(env.req("GET", f"/v2.0/routers/{r2['id']}/l3-agents"))["agents"] != []
    resp = add_router(env, b["id"], r["id"])
    assert resp.status_code == 201 and resp.content == b"null"
    assert r["id"] in l3_routers(env, b["id"])


def test_add_router_errors(env):
    dhcp = env.report("net1")
    dvr = env.report("compute1", L3, configurations={"agent_mode": "dvr"})
    a = env.report("net2", L3)
    r = router(env)
    error(
        add_router(env, a["id"], r["id"], "demo"),
        403,
        "PolicyNotAuthorized",
        "rule:create_l3-router is disallowed by policy",
    )
    error(
        add_router(env, dhcp["id"], r["id"]),
        404,
        "InvalidL3Agent",
        f"Agent {dhcp['id']} is not a L3 Agent or has been disabled",
    )
    error(add_router(env, dvr["id"], r["id"]), 404, "InvalidL3Agent")
    error(add_router(env, a["id"], "0c8d3a3e-0000-4000-8000-000000000001"), 404, "RouterNotFound")
    error(
        env.req("POST", f"/v2.0/agents/{a['id']}/l3-routers", json={"router_id": r["id"], "x": 1}),
        400,
        "HTTPBadRequest",
        "Unrecognized attribute(s) 'x'",
    )


def test_removed_router_moves_when_its_new_agent_dies(env):
    a = env.report("net1", L3)
    r = router(env)
    env.ok(env.req("DELETE", f"/v2.0/agents/{a['id']}/l3-routers/{r['id']}"), 204)
    b = env.report("net2", L3)
    env.ok(add_router(env, b["id"], r["id"]), 201)  # the admin's choice ends the hold
    env.clock.now += 2 * DOWN  # net2 dies; net1 reports: failover
    env.report("net1", L3)
    assert l3_routers(env, a["id"]) == [r["id"]]
