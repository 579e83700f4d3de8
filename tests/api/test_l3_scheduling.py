"""L3 scheduling (neutrino.services.l3_scheduler): routers get one live L3 agent.

Covers scheduling at router create, at L3 agent report (new, revived,
restarted agents; failover from dead agents), agent admin-up and delete,
agent modes and zone hints, the ``l3_binding`` feed type (changes and
snapshot), router status, and the admin scheduling reads.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from neutrino.db import tables as t
from neutrino.feed.routes import PREFIX
from neutrino.feed.state import apply_changes, comparable, from_snapshot
from tests.api.test_dhcp_scheduling import DOWN, T0, Env
from tests.api.test_feed_api import make_env  # noqa: F401 - fixture

L3 = "L3 agent"


class L3Env(Env):
    def l3(self, host: str, **extra) -> dict:
        return self.report(host, L3, **extra)

    def router(self, as_: str = "demo", **attrs) -> dict:
        body = {"name": "r", **attrs}
        return self.ok(self.req("POST", "/v2.0/routers", as_, json={"router": body}), 201)["router"]

    def hosts_of(self, router_id: str) -> list[str]:
        agents = self.ok(self.req("GET", f"/v2.0/routers/{router_id}/l3-agents"))["agents"]
        return sorted(a["host"] for a in agents)

    def bindings(self, since: int = 0) -> list[tuple[str, str, dict | None]]:
        return [
            (c["action"], c["id"], c["body"]) for c in self.changes(since)["changes"] if c["resource"] == "l3_binding"
        ]

    def rows(self) -> list[tuple[str, str]]:
        with self.db.read() as conn:
            return sorted(tuple(r) for r in conn.execute(select(t.router_l3_agents)))


@pytest.fixture
def env(make_env) -> L3Env:  # noqa: F811 - a pytest fixture, imported to be used by name
    e = L3Env(make_env())
    e.l3s = e.agents.l3_scheduler
    e.l3s.started = T0 - 10 * DOWN
    return e


def body(router_id: str, *agents: dict) -> dict:
    agents = sorted(agents, key=lambda a: (a["host"], a["id"]))
    return {
        "id": router_id,
        "router_id": router_id,
        "agent_ids": [a["id"] for a in agents],
        "hosts": [a["host"] for a in agents],
    }


def test_router_without_l3_agent_stays_unscheduled_and_active(env):
    env.report("net1")  # a DHCP agent does not host routers
    r = env.router()
    assert r["status"] == "ACTIVE" and r["availability_zones"] == []
    assert env.rows() == [] and env.bindings() == []


def test_router_create_schedules_to_the_l3_agent(env):
    a = env.l3("net1")
    rev = env.head()
    r = env.router()
    assert r["status"] == "ACTIVE" and r["availability_zones"] == ["nova"]
    assert env.hosts_of(r["id"]) == ["net1"]
    routers = env.ok(env.req("GET", f"/v2.0/agents/{a['id']}/l3-routers"))["routers"]
    assert [x["id"] for x in routers] == [r["id"]]
    assert env.bindings(rev) == [("create", r["id"], body(r["id"], a))]
    # the binding comes before the router's create record, which carries the zones
    recs = [(c["resource"], c["action"]) for c in env.changes(rev)["changes"]]
    assert recs == [("l3_binding", "create"), ("router", "create")]
    assert env.changes(rev)["changes"][1]["body"]["availability_zones"] == ["nova"]


def test_least_loaded_agent_first(env):
    env.l3("net1")
    env.l3("net2")
    r1, r2, r3 = env.router(), env.router(), env.router()
    assert env.hosts_of(r1["id"]) == ["net1"]  # tie: host order
    assert env.hosts_of(r2["id"]) == ["net2"]  # least loaded
    assert env.hosts_of(r3["id"]) == ["net1"]


def test_agent_modes_and_admin_down_agents_are_skipped(env):
    env.l3("compute1", configurations={"agent_mode": "dvr"})
    down = env.l3("net2")
    env.ok(env.req("PUT", f"/v2.0/agents/{down['id']}", json={"agent": {"admin_state_up": False}}))
    r = env.router()
    assert env.hosts_of(r["id"]) == []
    # admin-up: the agent takes the unscheduled router at once
    rev = env.head()
    env.ok(env.req("PUT", f"/v2.0/agents/{down['id']}", json={"agent": {"admin_state_up": True}}))
    assert env.hosts_of(r["id"]) == ["net2"]
    assert env.bindings(rev) == [("create", r["id"], body(r["id"], down))]
    snat = env.l3("net3", configurations={"agent_mode": "dvr_snat"})
    r2 = env.router()
    assert env.hosts_of(r2["id"]) == ["net3"] and snat["host"] == "net3"


def test_new_agent_picks_up_unscheduled_routers(env):
    r1, r2 = env.router(), env.router()
    rev = env.head()
    a = env.l3("net1")
    assert env.hosts_of(r1["id"]) == ["net1"] and env.hosts_of(r2["id"]) == ["net1"]
    got = env.bindings(rev)
    assert sorted(got, key=lambda x: x[1]) == sorted(
        [("create", r1["id"], body(r1["id"], a)), ("create", r2["id"], body(r2["id"], a))], key=lambda x: x[1]
    )
    # routers are recorded with their new zones
    routers = [c for c in env.changes(rev)["changes"] if c["resource"] == "router"]
    assert {c["id"] for c in routers} == {r1["id"], r2["id"]}
    assert all(c["body"]["availability_zones"] == ["nova"] for c in routers)
    # a second agent does not steal them (each router has its agent)
    env.l3("net2")
    assert env.hosts_of(r1["id"]) == ["net1"] and env.hosts_of(r2["id"]) == ["net1"]


def test_failover_from_dead_agent(env):
    a1 = env.l3("net1")
    r = env.router()
    a2 = env.l3("net2")
    assert env.hosts_of(r["id"]) == ["net1"]
    env.clock.now += DOWN + 1  # net1 dies; net2 keeps reporting
    rev = env.head()
    env.l3("net2")
    assert env.hosts_of(r["id"]) == ["net2"]
    assert env.bindings(rev) == [("update", r["id"], body(r["id"], a2))]
    # revived net1 does not take it back
    env.l3("net1")
    assert env.hosts_of(r["id"]) == ["net2"]
    assert a1["id"] != a2["id"]


def test_no_failover_without_live_replacement_or_right_after_start(env):
    env.l3("net1")
    r = env.router()
    env.clock.now += DOWN + 1
    env.report("net9")  # a DHCP agent reporting changes nothing
    assert env.hosts_of(r["id"]) == ["net1"]
    env.l3s.started = env.clock.now  # server just (re)started: no failover yet
    env.l3("net2")
    assert env.hosts_of(r["id"]) == ["net1"]


def test_failover_can_be_disabled(make_env):  # noqa: F811 - a pytest fixture, imported to be used by name
    e = L3Env(make_env({("DEFAULT", "allow_automatic_l3agent_failover"): "false"}))
    e.agents.l3_scheduler.started = T0 - 10 * DOWN
    e.l3("net1")
    r = e.router()
    e.l3("net2")
    e.clock.now += DOWN + 1
    e.l3("net2")
    assert e.hosts_of(r["id"]) == ["net1"]


def test_auto_schedule_can_be_disabled(make_env):  # noqa: F811 - a pytest fixture, imported to be used by name
    e = L3Env(make_env({("DEFAULT", "router_auto_schedule"): "false"}))
    e.l3("net1")
    r = e.router()
    assert e.hosts_of(r["id"]) == []


def test_agent_delete_moves_routers(env):
    a1 = env.l3("net1")
    r = env.router()
    a2 = env.l3("net2")
    rev = env.head()
    env.ok(env.req("DELETE", f"/v2.0/agents/{a1['id']}"), 204)
    assert env.hosts_of(r["id"]) == ["net2"]
    assert env.bindings(rev) == [("delete", r["id"], None), ("create", r["id"], body(r["id"], a2))]


def test_router_delete_records_binding_delete(env):
    env.l3("net1")
    r = env.router()
    rev = env.head()
    env.ok(env.req("DELETE", f"/v2.0/routers/{r['id']}", "demo"), 204)
    assert env.rows() == []
    assert env.bindings(rev) == [("delete", r["id"], None)]


def test_zone_hints(env):
    env.l3("net1", availability_zone="az1")
    a2 = env.l3("net2", availability_zone="az2")
    r = env.router(availability_zone_hints=["az2"])
    assert env.hosts_of(r["id"]) == ["net2"] and r["availability_zones"] == ["az2"]
    # a zone change of the hosting agent re-records the router
    rev = env.head()
    env.l3("net2", availability_zone="az3")
    routers = [c for c in env.changes(rev)["changes"] if c["resource"] == "router"]
    assert [c["body"]["availability_zones"] for c in routers] == [["az3"]]
    assert a2["availability_zone"] == "az2"


def test_snapshot_and_changes_agree(env):
    env.l3("net1")
    env.l3("net2")
    r1 = env.router()
    base = env.snapshot(resources="l3_binding,router")
    state = from_snapshot(base)
    env.router()
    env.ok(env.req("DELETE", f"/v2.0/routers/{r1['id']}", "demo"), 204)
    env.clock.now += DOWN + 1
    env.l3("net2")
    state = apply_changes(state, env.changes(base["revision"])["changes"])
    fresh = from_snapshot(env.snapshot(resources="l3_binding,router"))
    for kind in ("l3_binding", "router"):
        assert comparable(state)[kind] == comparable(fresh)[kind]
    assert len(fresh.of("l3_binding")) == 1
    (b,) = fresh.of("l3_binding").values()
    assert b["hosts"] == ["net2"]


def test_l3_binding_is_a_snapshot_type(env):
    env.l3("net1")
    r = env.router()
    snap = env.snapshot()
    assert snap["resources"]["l3_bindings"] == [
        {
            "id": r["id"],
            "router_id": r["id"],
            "agent_ids": snap["resources"]["l3_bindings"][0]["agent_ids"],
            "hosts": ["net1"],
        }
    ]
    assert env.ok(env.req("GET", f"{PREFIX}snapshot", params={"resources": "l3_binding"}))["resources"].keys() == {
        "l3_bindings"
    }
