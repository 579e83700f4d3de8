"""Agents (reference §7.6): heartbeats, the admin API, availability zones, scheduling reads."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert

from neutrino.db import tables as t
from neutrino.feed.routes import PREFIX
from tests.api.conftest import error
from tests.api.test_feed_api import FeedEnv, make_env  # noqa: F401 - fixture

AGENT_TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
FIELDS = [
    "id",
    "agent_type",
    "binary",
    "topic",
    "host",
    "admin_state_up",
    "created_at",
    "started_at",
    "heartbeat_timestamp",
    "description",
    "resources_synced",
    "availability_zone",
    "alive",
    "configurations",
]
T0 = 1_790_000_000.0  # 2026-09-21 ...

OVS = {
    "agent_type": "Open vSwitch agent",
    "binary": "neutron-openvswitch-agent",
    "topic": "N/A",
    "host": "compute1",
    "configurations": {"bridge_mappings": {"physnet": "br-ex"}},
}
DHCP = {
    "agent_type": "DHCP agent",
    "binary": "neutron-dhcp-agent",
    "topic": "dhcp_agent",
    "host": "net1",
    "configurations": {"networks": 0},
}
L3 = {
    "agent_type": "L3 agent",
    "binary": "neutron-l3-agent",
    "topic": "l3_agent",
    "host": "net1",
    "configurations": {"routers": 0},
}


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def env(make_env) -> FeedEnv:  # noqa: F811 - a pytest fixture, imported to be used by name
    e = make_env()
    e.clock = Clock()
    e.napi.services["agents"].clock = e.clock
    return e


def report(env: FeedEnv, agent: dict, as_: str = "admin", **extra) -> dict:
    return env.ok(env.req("POST", f"{PREFIX}agents/report", as_, json={"agent": {**agent, **extra}}))["agent"]


def agent_changes(env: FeedEnv, since: int = 0) -> list[dict]:
    return [c for c in env.changes(since)["changes"] if c["resource"] == "agent"]


def head(env: FeedEnv) -> int:
    return env.changes(0)["revision"]


# --- report ------------------------------------------------------------------------------------------
def test_first_report_creates_the_agent_with_neutrons_fields(env):
    a = report(env, DHCP, start_flag=True)
    assert list(a) == FIELDS
    assert a["agent_type"] == "DHCP agent" and a["host"] == "net1" and a["topic"] == "dhcp_agent"
    assert a["admin_state_up"] is True and a["alive"] is True
    assert a["description"] is None and a["resources_synced"] is None
    assert a["availability_zone"] == "nova"
    assert a["configurations"] == {"networks": 0}
    for k in ("created_at", "started_at", "heartbeat_timestamp"):
        assert AGENT_TS.match(a[k]), a[k]
    assert a["created_at"] == a["started_at"] == a["heartbeat_timestamp"] == "2026-09-21 14:13:20.000000"
    assert env.ok(env.req("GET", "/v2.0/agents"))["agents"] == [a]
    (c,) = agent_changes(env)
    assert (c["action"], c["id"], c["body"]) == ("create", a["id"], a)


def test_l2_agents_have_no_availability_zone_and_topic_defaults(env):
    a = report(env, {k: v for k, v in OVS.items() if k != "topic"})
    assert a["availability_zone"] is None and a["topic"] == "N/A"
    b = report(env, L3, availability_zone="az2")
    assert b["availability_zone"] == "az2"


def test_service_role_reports(env):
    assert report(env, OVS, as_="service")["host"] == "compute1"


def test_heartbeat_updates_the_timestamp_but_not_the_feed(env):
    a = report(env, OVS, start_flag=True)
    rev = head(env)
    env.clock.now += 30.5
    b = report(env, OVS)
    assert b["id"] == a["id"]
    assert b["heartbeat_timestamp"] == "2026-09-21 14:13:50.500000"
    assert b["started_at"] == a["started_at"] and b["created_at"] == a["created_at"]
    assert agent_changes(env, rev) == []


def test_restart_configuration_change_and_revival_are_on_the_feed(env):
    a = report(env, OVS, start_flag=True)
    rev = head(env)
    env.clock.now += 10
    b = report(env, OVS, start_flag=True)
    assert b["started_at"] != a["started_at"]
    env.clock.now += 10
    report(env, OVS, configurations={"bridge_mappings": {}})
    env.clock.now += 10
    report(env, OVS, configurations={"bridge_mappings": {}}, resources_synced=True)
    changes = agent_changes(env, rev)
    assert [c["action"] for c in changes] == ["update", "update", "update"]
    assert changes[1]["body"]["configurations"] == {"bridge_mappings": {}}
    assert changes[2]["body"]["resources_synced"] is True

    env.clock.now += 76  # agent_down_time is 75 s
    (dead,) = env.ok(env.req("GET", "/v2.0/agents"))["agents"]
    assert dead["alive"] is False
    rev = head(env)
    assert report(env, OVS, configurations={"bridge_mappings": {}}, resources_synced=True)["alive"] is True
    (revived,) = agent_changes(env, rev)
    assert revived["body"]["alive"] is True


def test_agent_down_time_is_configurable(make_env):  # noqa: F811 - a pytest fixture, imported to be used by name
    env = make_env({("DEFAULT", "agent_down_time"): "5"})
    env.napi.services["agents"].clock = clock = Clock()
    a = report(env, DHCP)
    clock.now += 6
    assert env.ok(env.req("GET", f"/v2.0/agents/{a['id']}"))["agent"]["alive"] is False


@pytest.mark.parametrize(
    "body, message",
    [
        (None, "Unable to find 'agent' in request body"),
        ({"agent": "x"}, "Unable to find 'agent' in request body"),
        ({"agent": {**DHCP, "host": ""}}, "Invalid input for host. Reason: a non-empty string is required."),
        (
            {"agent": {k: v for k, v in DHCP.items() if k != "binary"}},
            "Invalid input for binary. Reason: a non-empty string is required.",
        ),
        ({"agent": {**DHCP, "color": "red"}}, "Unrecognized attribute(s) 'color'"),
        ({"agent": {**DHCP, "configurations": []}}, "Invalid input for configurations. Reason: not a dictionary."),
        ({"agent": {**DHCP, "start_flag": "maybe"}}, "Invalid input. Reason: 'maybe' cannot be converted to boolean."),
    ],
)
def test_report_validation(env, body, message):
    error(env.req("POST", f"{PREFIX}agents/report", json=body), 400, "HTTPBadRequest", message)
    assert env.ok(env.req("GET", "/v2.0/agents"))["agents"] == []


def test_malformed_report_body(env):
    error(env.req("POST", f"{PREFIX}agents/report", content=b"{nope"), 400, "HTTPBadRequest", "Malformed request body")


# --- admin API ------------------------------------------------------------------------------------------
def test_members_see_no_agents(env):
    a = report(env, DHCP)
    for who in ("demo", "reader"):
        assert env.ok(env.req("GET", "/v2.0/agents", who)) == {"agents": []}
        msg = f"Agent {a['id']} could not be found."
        error(env.req("GET", f"/v2.0/agents/{a['id']}", who), 404, "AgentNotFound", msg)
        error(
            env.req("PUT", f"/v2.0/agents/{a['id']}", who, json={"agent": {"description": "x"}}),
            404,
            "AgentNotFound",
            msg,
        )
        error(env.req("DELETE", f"/v2.0/agents/{a['id']}", who), 404, "AgentNotFound", msg)


def test_show_filter_and_fields(env):
    a = report(env, DHCP)
    report(env, OVS)
    assert env.ok(env.req("GET", f"/v2.0/agents/{a['id']}"))["agent"] == a
    listed = env.ok(env.req("GET", "/v2.0/agents", params={"agent_type": "DHCP agent"}))["agents"]
    assert [x["id"] for x in listed] == [a["id"]]
    query = {"fields": "host", "sort_key": "host", "sort_dir": "asc"}
    hosts = env.ok(env.req("GET", "/v2.0/agents", params=query))["agents"]
    assert hosts == [{"host": "compute1"}, {"host": "net1"}]
    error(env.req("GET", "/v2.0/agents/nope"), 404, "AgentNotFound", "Agent nope could not be found.")


def test_update_admin_state_and_description(env):
    a = report(env, DHCP)
    rev = head(env)
    b = env.ok(
        env.req(
            "PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"admin_state_up": False, "description": "maintenance"}}
        )
    )["agent"]
    assert b["admin_state_up"] is False and b["description"] == "maintenance"
    assert {k: v for k, v in b.items() if k not in ("admin_state_up", "description")} == {
        k: v for k, v in a.items() if k not in ("admin_state_up", "description")
    }
    (c,) = agent_changes(env, rev)
    assert c["action"] == "update" and c["body"] == b
    error(
        env.req("PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"host": "x"}}),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute host",
    )
    error(env.req("PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"alive": False}}), 400, "HTTPBadRequest")


def test_delete_agent(env):
    a = report(env, DHCP)
    rev = head(env)
    assert env.req("DELETE", f"/v2.0/agents/{a['id']}").status_code == 204
    error(env.req("GET", f"/v2.0/agents/{a['id']}"), 404, "AgentNotFound")
    assert [(c["action"], c["id"]) for c in agent_changes(env, rev)] == [("delete", a["id"])]
    assert report(env, DHCP)["id"] != a["id"]  # a new report registers it again


def test_agents_cannot_be_created_through_the_api(env):
    error(env.req("POST", "/v2.0/agents", json={"agent": {}}), 405, "HTTPMethodNotAllowed")


def test_agents_are_in_the_snapshot(env):
    a = report(env, DHCP)
    assert env.snapshot(resources="agent")["resources"]["agents"] == [a]


# --- availability zones ---------------------------------------------------------------------------------
def test_availability_zones_come_from_dhcp_and_l3_agents(env):
    assert env.ok(env.req("GET", "/v2.0/availability_zones")) == {"availability_zones": []}
    report(env, OVS, availability_zone="ignored")
    report(env, DHCP)
    l3 = report(env, L3, availability_zone="az2")
    report(env, {**L3, "host": "net2"}, availability_zone="az2")
    azs = env.ok(env.req("GET", "/v2.0/availability_zones", "demo"))["availability_zones"]
    assert azs == [
        {"name": "az2", "resource": "router", "state": "available"},
        {"name": "nova", "resource": "network", "state": "available"},
    ]
    env.ok(env.req("PUT", f"/v2.0/agents/{l3['id']}", json={"agent": {"admin_state_up": False}}))
    assert env.ok(env.req("GET", "/v2.0/availability_zones"))["availability_zones"][0]["state"] == "available"
    other = env.ok(env.req("GET", "/v2.0/agents", params={"host": "net2", "agent_type": "L3 agent"}))["agents"][0]
    env.ok(env.req("PUT", f"/v2.0/agents/{other['id']}", json={"agent": {"admin_state_up": False}}))
    routers = env.ok(env.req("GET", "/v2.0/availability_zones", params={"resource": "router"}))
    assert routers == {"availability_zones": [{"name": "az2", "resource": "router", "state": "unavailable"}]}
    assert env.ok(env.req("GET", "/v2.0/availability_zones", params={"state": "available"}))["availability_zones"] == [
        {"name": "nova", "resource": "network", "state": "available"}
    ]


# --- scheduling reads ----------------------------------------------------------------------------------------
def test_dhcp_scheduling_lists(env):
    a = report(env, DHCP)
    net = env.network(name="n1")
    env.network(name="unhosted")
    with env.db.write() as uow:
        uow.conn.execute(insert(t.network_dhcp_agents).values(network_id=net["id"], agent_id=a["id"]))
    nets = env.ok(env.req("GET", f"/v2.0/agents/{a['id']}/dhcp-networks"))["networks"]
    assert [n["id"] for n in nets] == [net["id"]]
    assert nets[0]["provider:network_type"] == "vxlan"
    assert env.ok(env.req("GET", f"/v2.0/agents/{a['id']}/dhcp-networks", params={"name": "other"}))["networks"] == []
    agents = env.ok(env.req("GET", f"/v2.0/networks/{net['id']}/dhcp-agents"))["agents"]
    assert [x["id"] for x in agents] == [a["id"]] and list(agents[0]) == FIELDS
    other = report(env, L3)
    assert env.ok(env.req("GET", f"/v2.0/agents/{other['id']}/dhcp-networks"))["networks"] == []

    error(
        env.req("GET", f"/v2.0/agents/{a['id']}/dhcp-networks", "demo"),
        403,
        "PolicyNotAuthorized",
        "rule:get_dhcp-networks is disallowed by policy",
    )
    error(env.req("GET", f"/v2.0/networks/{net['id']}/dhcp-agents", "demo"), 403, "PolicyNotAuthorized")
    error(env.req("GET", "/v2.0/agents/nope/dhcp-networks"), 404, "AgentNotFound")
    error(env.req("GET", "/v2.0/networks/nope/dhcp-agents"), 404, "NetworkNotFound")


def test_l3_scheduling_lists(env):
    if "routers" not in env.napi.services:
        pytest.skip("the L3 service is not registered")
    a = report(env, L3)
    r = env.ok(env.req("POST", "/v2.0/routers", "demo", json={"router": {"name": "r1"}}), 201)["router"]
    # the router is scheduled to the (only) L3 agent at create (neutrino.services.l3_scheduler)
    routers = env.ok(env.req("GET", f"/v2.0/agents/{a['id']}/l3-routers"))["routers"]
    assert [x["id"] for x in routers] == [r["id"]]
    agents = env.ok(env.req("GET", f"/v2.0/routers/{r['id']}/l3-agents"))["agents"]
    assert [x["id"] for x in agents] == [a["id"]]
    error(env.req("GET", f"/v2.0/routers/{r['id']}/l3-agents", "demo"), 403, "PolicyNotAuthorized")
    error(env.req("GET", "/v2.0/routers/nope/l3-agents"), 404, "RouterNotFound")


def test_agent_l3_routers_without_routers(env):
    a = report(env, L3)
    assert env.ok(env.req("GET", f"/v2.0/agents/{a['id']}/l3-routers"))["routers"] == []
