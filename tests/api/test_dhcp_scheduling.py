"""DHCP scheduling (neutrino.services.dhcp_scheduler): networks with DHCP subnets get live DHCP agents.

Covers scheduling at subnet create/update/delete, at agent report (new,
revived, restarted agents; failover from dead agents), agent admin-up and
delete, availability zones, the ``dhcp_binding`` feed type (changes and
snapshot) and the admin scheduling reads.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from neutrino.db import tables as t
from neutrino.feed.routes import PREFIX
from neutrino.feed.state import apply_changes, comparable, from_snapshot
from tests.api.conftest import error
from tests.api.test_feed_api import FeedEnv, make_env  # noqa: F401 - fixture

T0 = 1_790_000_000.0
DOWN = 75  # agent_down_time


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Env:
    """A FeedEnv with a fake clock shared by the agents service and the DHCP scheduler."""

    def __init__(self, fe: FeedEnv) -> None:
        self.fe = fe
        self.clock = Clock()
        self.agents = fe.napi.services["agents"]
        self.agents.clock = self.clock
        self.scheduler = self.agents.dhcp_scheduler
        self.scheduler.started = T0 - 10 * DOWN  # the server has been up for a while

    def __getattr__(self, name):
        return getattr(self.fe, name)

    def report(self, host: str, agent_type: str = "DHCP agent", **extra) -> dict:
        binary = {"DHCP agent": "neutron-dhcp-agent", "L3 agent": "neutron-l3-agent"}.get(
            agent_type, "neutron-openvswitch-agent"
        )
        body = {
            "agent_type": agent_type,
            "binary": binary,
            "topic": "dhcp_agent",
            "host": host,
            "configurations": {},
            **extra,
        }
        return self.ok(self.req("POST", f"{PREFIX}agents/report", json={"agent": body}))["agent"]

    def subnet(self, net_id: str, cidr: str, as_: str = "demo", **attrs) -> dict:
        body = {"network_id": net_id, "cidr": cidr, "ip_version": 4, **attrs}
        return self.ok(self.req("POST", "/v2.0/subnets", as_, json={"subnet": body}), 201)["subnet"]

    def net_with_subnet(self, cidr: str = "10.0.0.0/24", **net_attrs) -> dict:
        net = self.network(**net_attrs)
        self.subnet(net["id"], cidr)
        return net

    def hosts_of(self, net_id: str) -> list[str]:
        agents = self.ok(self.req("GET", f"/v2.0/networks/{net_id}/dhcp-agents"))["agents"]
        return sorted(a["host"] for a in agents)

    def show_net(self, net_id: str) -> dict:
        return self.ok(self.req("GET", f"/v2.0/networks/{net_id}"))["network"]

    def head(self) -> int:
        return self.changes(0)["revision"]

    def bindings(self, since: int = 0) -> list[tuple[str, str, dict | None]]:
        return [
            (c["action"], c["id"], c["body"]) for c in self.changes(since)["changes"] if c["resource"] == "dhcp_binding"
        ]

    def rows(self) -> list[tuple[str, str]]:
        with self.db.read() as conn:
            return sorted(tuple(r) for r in conn.execute(select(t.network_dhcp_agents)))


@pytest.fixture
def make(make_env):  # noqa: F811 - a pytest fixture, imported to be used by name
    def build(overrides=None) -> Env:
        return Env(make_env(overrides))

    return build


@pytest.fixture
def env(make) -> Env:
    return make()


def body(net_id: str, *agents: dict) -> dict:
    agents = sorted(agents, key=lambda a: (a["host"], a["id"]))
    return {
        "id": net_id,
        "network_id": net_id,
        "agent_ids": [a["id"] for a in agents],
        "hosts": [a["host"] for a in agents],
    }


# --- scheduling at subnet create -------------------------------------------------------------------
def test_without_dhcp_agents_nothing_is_scheduled(env):
    env.report("compute1", "Open vSwitch agent")
    net = env.net_with_subnet()
    assert env.rows() == [] and env.hosts_of(net["id"]) == []
    assert env.show_net(net["id"])["availability_zones"] == []
    assert env.bindings() == []


def test_one_agent_hosts_the_network(env):
    a = env.report("net1")
    net = env.network()
    rev = env.head()
    sub = env.subnet(net["id"], "10.0.0.0/24")
    assert env.hosts_of(net["id"]) == ["net1"]
    nets = env.ok(env.req("GET", f"/v2.0/agents/{a['id']}/dhcp-networks"))["networks"]
    assert [n["id"] for n in nets] == [net["id"]] and nets[0]["availability_zones"] == ["nova"]
    assert env.show_net(net["id"])["availability_zones"] == ["nova"]
    # the member's view has the zones too
    assert env.ok(env.req("GET", f"/v2.0/networks/{net['id']}", "demo"))["network"]["availability_zones"] == ["nova"]
    assert env.bindings(rev) == [("create", net["id"], body(net["id"], a))]
    changes = env.changes(rev)["changes"]
    (net_change,) = [c for c in changes if c["resource"] == "network"]
    assert net_change["body"]["availability_zones"] == ["nova"] and net_change["body"]["subnets"] == [sub["id"]]
    # a second DHCP subnet changes nothing
    rev = env.head()
    env.subnet(net["id"], "10.0.1.0/24")
    assert env.bindings(rev) == [] and env.hosts_of(net["id"]) == ["net1"]


def test_two_agents_least_loaded_first(env):
    a1 = env.report("net1")
    a2 = env.report("net2")
    n1 = env.net_with_subnet("10.0.1.0/24")
    n2 = env.net_with_subnet("10.0.2.0/24")
    n3 = env.net_with_subnet("10.0.3.0/24")
    assert env.hosts_of(n1["id"]) == ["net1"]  # tie: host order
    assert env.hosts_of(n2["id"]) == ["net2"]  # least loaded
    assert env.hosts_of(n3["id"]) == ["net1"]
    nets = env.ok(env.req("GET", f"/v2.0/agents/{a1['id']}/dhcp-networks"))["networks"]
    assert sorted(n["id"] for n in nets) == sorted([n1["id"], n3["id"]])
    assert [n["id"] for n in env.ok(env.req("GET", f"/v2.0/agents/{a2['id']}/dhcp-networks"))["networks"]] == [n2["id"]]


def test_dhcp_agents_per_network_two(make):
    env = make({("DEFAULT", "dhcp_agents_per_network"): "2"})
    a1 = env.report("net1")
    net = env.net_with_subnet()
    assert env.hosts_of(net["id"]) == ["net1"]  # only one agent exists
    rev = env.head()
    a2 = env.report("net2")  # a new agent takes the network too
    assert env.hosts_of(net["id"]) == ["net1", "net2"]
    assert env.bindings(rev) == [("update", net["id"], body(net["id"], a1, a2))]
    env.report("net3")
    assert env.hosts_of(net["id"]) == ["net1", "net2"]  # already has two
    n2 = env.net_with_subnet("10.0.9.0/24")
    assert env.hosts_of(n2["id"]) == ["net1", "net3"]  # net3 (idle) first, then net1 (tie with net2: host)


def test_dead_and_admin_down_agents_are_not_chosen(env):
    a = env.report("net1")
    env.report("net2")
    env.ok(env.req("PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"admin_state_up": False}}))
    n1 = env.net_with_subnet("10.0.1.0/24")
    assert env.hosts_of(n1["id"]) == ["net2"]
    env.clock.now += DOWN + 1  # both dead
    n2 = env.net_with_subnet("10.0.2.0/24")
    assert env.hosts_of(n2["id"]) == []


# --- enable_dhcp and unscheduling ----------------------------------------------------------------
def test_enable_dhcp_toggles_schedule_and_unschedule(env):
    a = env.report("net1")
    net = env.network()
    sub = env.subnet(net["id"], "10.0.0.0/24", enable_dhcp=False)
    assert env.hosts_of(net["id"]) == [] and env.bindings() == []
    rev = env.head()
    env.ok(env.req("PUT", f"/v2.0/subnets/{sub['id']}", "demo", json={"subnet": {"enable_dhcp": True}}))
    assert env.hosts_of(net["id"]) == ["net1"]
    assert env.bindings(rev) == [("create", net["id"], body(net["id"], a))]
    (nc,) = [c for c in env.changes(rev)["changes"] if c["resource"] == "network"]
    assert nc["body"]["availability_zones"] == ["nova"]

    rev = env.head()
    env.ok(env.req("PUT", f"/v2.0/subnets/{sub['id']}", "demo", json={"subnet": {"name": "x"}}))
    assert env.bindings(rev) == []
    env.ok(env.req("PUT", f"/v2.0/subnets/{sub['id']}", "demo", json={"subnet": {"enable_dhcp": False}}))
    assert env.hosts_of(net["id"]) == [] and env.rows() == []
    assert env.bindings(rev) == [("delete", net["id"], None)]
    (nc,) = [c for c in env.changes(rev)["changes"] if c["resource"] == "network"]
    assert nc["body"]["availability_zones"] == []


def test_last_dhcp_subnet_deleted_unschedules(env):
    env.report("net1")
    net = env.network()
    s1 = env.subnet(net["id"], "10.0.1.0/24")
    s2 = env.subnet(net["id"], "10.0.2.0/24")
    s3 = env.subnet(net["id"], "10.0.3.0/24", enable_dhcp=False)
    rev = env.head()
    env.ok(env.req("DELETE", f"/v2.0/subnets/{s1['id']}", "demo"), 204)
    assert env.hosts_of(net["id"]) == ["net1"] and env.bindings(rev) == []
    env.ok(env.req("DELETE", f"/v2.0/subnets/{s2['id']}", "demo"), 204)
    assert env.hosts_of(net["id"]) == [] and env.bindings(rev) == [("delete", net["id"], None)]
    net_changes = [c for c in env.changes(rev)["changes"] if c["resource"] == "network"]
    assert net_changes[-1]["body"]["availability_zones"] == [] and net_changes[-1]["body"]["subnets"] == [s3["id"]]


def test_network_delete_removes_the_binding(env):
    env.report("net1")
    net = env.net_with_subnet()
    rev = env.head()
    env.ok(env.req("DELETE", f"/v2.0/networks/{net['id']}", "demo"), 204)
    assert env.rows() == []
    assert env.bindings(rev) == [("delete", net["id"], None)]
    error(env.req("GET", f"/v2.0/networks/{net['id']}/dhcp-agents"), 404, "NetworkNotFound")


# --- agent reports --------------------------------------------------------------------------------
def test_new_dhcp_agent_takes_unscheduled_networks(env):
    net = env.net_with_subnet("10.0.1.0/24")
    plain = env.network()
    env.subnet(plain["id"], "10.0.2.0/24", enable_dhcp=False)
    env.report("compute1", "Open vSwitch agent")
    env.report("net1", "L3 agent")
    assert env.rows() == []
    rev = env.head()
    a = env.report("net1")
    assert env.hosts_of(net["id"]) == ["net1"] and env.hosts_of(plain["id"]) == []
    assert env.bindings(rev) == [("create", net["id"], body(net["id"], a))]
    assert env.show_net(net["id"])["availability_zones"] == ["nova"]
    rev = env.head()
    env.clock.now += 30
    env.report("net1")  # a plain heartbeat
    assert env.bindings(rev) == []


def test_network_auto_schedule_off(make):
    env = make({("DEFAULT", "network_auto_schedule"): "false"})
    net = env.net_with_subnet("10.0.1.0/24")
    env.report("net1", start_flag=True)
    assert env.hosts_of(net["id"]) == []
    n2 = env.net_with_subnet("10.0.2.0/24")  # scheduling on subnet create still happens
    assert env.hosts_of(n2["id"]) == ["net1"]


def test_revived_or_restarted_agent_takes_networks(env):
    env.report("net1")
    env.clock.now += DOWN + 1  # net1 dead
    net = env.net_with_subnet()
    assert env.hosts_of(net["id"]) == []
    env.report("net1")  # back: takes it
    assert env.hosts_of(net["id"]) == ["net1"]

    env.ok(env.req("DELETE", f"/v2.0/networks/{net['id']}", "demo"), 204)
    a2 = env.report("net2")
    env.ok(env.req("PUT", f"/v2.0/agents/{a2['id']}", json={"agent": {"admin_state_up": False}}))
    other = env.report("net1")
    env.ok(env.req("PUT", f"/v2.0/agents/{other['id']}", json={"agent": {"admin_state_up": False}}))
    n2 = env.net_with_subnet("10.0.5.0/24")
    assert env.hosts_of(n2["id"]) == []
    env.ok(env.req("PUT", f"/v2.0/agents/{other['id']}", json={"agent": {"admin_state_up": True}}))
    assert env.hosts_of(n2["id"]) == ["net1"]  # admin-up takes it at once
    env.ok(env.req("DELETE", f"/v2.0/agents/{other['id']}"), 204)
    assert env.hosts_of(n2["id"]) == []  # no live admin-up agent left
    env.ok(env.req("PUT", f"/v2.0/agents/{a2['id']}", json={"agent": {"admin_state_up": True}}))
    assert env.hosts_of(n2["id"]) == ["net2"]


def test_restart_flag_takes_networks(env):
    a = env.report("net1")
    env.ok(env.req("PUT", f"/v2.0/agents/{a['id']}", json={"agent": {"admin_state_up": False}}))
    net = env.net_with_subnet()
    with env.db.write() as uow:  # admin-up behind the API's back
        uow.conn.execute(t.agents.update().values(admin_state_up=True))
    env.clock.now += 10
    env.report("net1")  # a plain heartbeat takes nothing
    assert env.hosts_of(net["id"]) == []
    env.clock.now += 10
    env.report("net1", start_flag=True)  # a restart does
    assert env.hosts_of(net["id"]) == ["net1"]


# --- failover from dead agents -------------------------------------------------------------------
def _two_agents_network(env: Env) -> tuple[dict, dict, dict]:
    a1 = env.report("net1")
    net = env.net_with_subnet()
    a2 = env.report("net2")
    assert env.hosts_of(net["id"]) == ["net1"]
    return a1, a2, net


def test_dead_agents_networks_move_when_another_agent_reports(env):
    a1, a2, net = _two_agents_network(env)
    env.clock.now += 60
    env.report("net2")  # net1 last seen 60 s ago: alive
    assert env.hosts_of(net["id"]) == ["net1"]
    env.clock.now += 30
    rev = env.head()
    env.report("net2")  # net1 last seen 90 s ago: dead
    assert env.hosts_of(net["id"]) == ["net2"]
    assert env.bindings(rev) == [("update", net["id"], body(net["id"], a2))]
    env.clock.now += 10
    rev = env.head()
    env.report("net1")  # back: nothing to take (net2 serves it)
    assert env.hosts_of(net["id"]) == ["net2"] and env.bindings(rev) == []


def test_failover_keeps_the_binding_without_a_live_replacement(env):
    a1, a2, net = _two_agents_network(env)
    env.ok(env.req("PUT", f"/v2.0/agents/{a2['id']}", json={"agent": {"admin_state_up": False}}))
    env.clock.now += DOWN + 15
    env.report("net2")
    assert env.hosts_of(net["id"]) == ["net1"]


def test_failover_waits_agent_down_time_after_server_start(env):
    a1, a2, net = _two_agents_network(env)
    env.scheduler.started = env.clock.now + 30  # as if this server just started
    env.clock.now += DOWN + 15
    env.report("net2")
    assert env.hosts_of(net["id"]) == ["net1"]
    env.clock.now += 60
    env.report("net2")
    assert env.hosts_of(net["id"]) == ["net2"]


def test_failover_can_be_turned_off(make):
    env = make({("DEFAULT", "allow_automatic_dhcp_failover"): "false"})
    a1, a2, net = _two_agents_network(env)
    env.clock.now += DOWN + 15
    env.report("net2")
    assert env.hosts_of(net["id"]) == ["net1"]


def test_failover_with_two_agents_per_network(make):
    env = make({("DEFAULT", "dhcp_agents_per_network"): "2"})
    a1 = env.report("net1")
    a2 = env.report("net2")
    net = env.net_with_subnet()
    assert env.hosts_of(net["id"]) == ["net1", "net2"]
    env.clock.now += 60
    a3 = env.report("net3")
    env.report("net2")
    env.clock.now += 30
    env.report("net3")  # net1 dead: replaced by net3
    assert env.hosts_of(net["id"]) == ["net2", "net3"]
    assert env.rows() == sorted([(net["id"], a2["id"]), (net["id"], a3["id"])])
    assert a1["id"] not in {r[1] for r in env.rows()}


def test_agent_delete_moves_networks_to_a_live_agent(env):
    a1, a2, net = _two_agents_network(env)
    rev = env.head()
    env.ok(env.req("DELETE", f"/v2.0/agents/{a1['id']}"), 204)
    assert env.hosts_of(net["id"]) == ["net2"]
    assert [b[0] for b in env.bindings(rev)] == ["delete", "create"]
    assert env.bindings(rev)[-1][2] == body(net["id"], a2)
    rev = env.head()
    env.ok(env.req("DELETE", f"/v2.0/agents/{a2['id']}"), 204)
    assert env.hosts_of(net["id"]) == [] and env.bindings(rev) == [("delete", net["id"], None)]
    assert env.show_net(net["id"])["availability_zones"] == []


# --- availability zones ----------------------------------------------------------------------------
def test_zones_spread_and_hints(make):
    env = make({("DEFAULT", "dhcp_agents_per_network"): "2"})
    env.report("a1", availability_zone="az1")
    env.report("a2", availability_zone="az1")
    env.report("b1", availability_zone="az2")
    net = env.net_with_subnet("10.0.1.0/24")
    assert env.hosts_of(net["id"]) == ["a1", "b1"]  # one agent per zone first
    assert env.show_net(net["id"])["availability_zones"] == ["az1", "az2"]
    hinted = env.net_with_subnet("10.0.2.0/24", availability_zone_hints=["az1"])
    assert env.hosts_of(hinted["id"]) == ["a1", "a2"]
    assert env.show_net(hinted["id"])["availability_zones"] == ["az1"]
    azs = env.ok(env.req("GET", "/v2.0/availability_zones", params={"resource": "network"}))["availability_zones"]
    assert azs == [
        {"name": "az1", "resource": "network", "state": "available"},
        {"name": "az2", "resource": "network", "state": "available"},
    ]


def test_hints_limit_auto_schedule(env):
    net = env.net_with_subnet(availability_zone_hints=["az2"])
    env.report("a1", availability_zone="az1")
    assert env.hosts_of(net["id"]) == []
    env.report("b1", availability_zone="az2")
    assert env.hosts_of(net["id"]) == ["b1"]


def test_agent_zone_change_rerecords_its_networks(env):
    env.report("net1")
    net = env.net_with_subnet()
    rev = env.head()
    env.report("net1", availability_zone="az9")
    assert env.show_net(net["id"])["availability_zones"] == ["az9"]
    (nc,) = [c for c in env.changes(rev)["changes"] if c["resource"] == "network"]
    assert nc["body"]["availability_zones"] == ["az9"]


# --- feed: snapshot and convergence ---------------------------------------------------------------
def test_snapshot_holds_the_bindings_and_the_feed_converges(make):
    env = make({("DEFAULT", "dhcp_agents_per_network"): "2"})
    start = env.snapshot()
    assert start["resources"]["dhcp_bindings"] == []
    state = from_snapshot(start)
    a1 = env.report("net1")
    n1 = env.net_with_subnet("10.0.1.0/24")
    a2 = env.report("net2")
    n2 = env.net_with_subnet("10.0.2.0/24")
    n3 = env.network()
    env.subnet(n3["id"], "10.0.3.0/24", enable_dhcp=False)
    env.clock.now += DOWN + 5
    a3 = env.report("net3")
    env.ok(env.req("DELETE", f"/v2.0/networks/{n2['id']}", "demo"), 204)
    snap = env.snapshot()
    got = snap["resources"]["dhcp_bindings"]
    (only,) = got  # n2 deleted, n3 has no DHCP
    assert only["id"] == only["network_id"] == n1["id"]
    # a3 replaced one of the dead agents; the other dead one stays until a second live agent exists
    assert a3["id"] in only["agent_ids"] and len(only["agent_ids"]) == 2
    assert set(only["agent_ids"]) - {a3["id"]} <= {a1["id"], a2["id"]}
    assert only["hosts"] == sorted(only["hosts"]) and "net3" in only["hosts"]
    assert env.snapshot(resources="dhcp_binding")["resources"] == {"dhcp_bindings": got}
    ch = env.changes(start["revision"], limit=10000)
    followed = apply_changes(state, ch["changes"], ch["revision"])
    assert comparable(followed) == comparable(from_snapshot(snap))


def test_bindings_are_admin_scheduling_reads_only(env):
    a = env.report("net1")
    net = env.net_with_subnet()
    error(env.req("GET", f"/v2.0/networks/{net['id']}/dhcp-agents", "demo"), 403, "PolicyNotAuthorized")
    error(env.req("GET", f"/v2.0/agents/{a['id']}/dhcp-networks", "demo"), 403, "PolicyNotAuthorized")
    assert env.ok(env.req("GET", f"/v2.0/agents/{a['id']}/dhcp-networks", params={"fields": "id"}))["networks"] == [
        {"id": net["id"]}
    ]


# --- concurrency --------------------------------------------------------------------------------------
def test_concurrent_subnet_creates_bind_once(make_env, api_db_url):  # noqa: F811 - a pytest fixture, imported to be used by name
    e1, e2 = make_env(), make_env(db_url=api_db_url)  # two server processes on one database
    e1.ok(
        e1.req(
            "POST",
            f"{PREFIX}agents/report",
            json={
                "agent": {
                    "agent_type": "DHCP agent",
                    "binary": "neutron-dhcp-agent",
                    "topic": "dhcp_agent",
                    "host": "net1",
                }
            },
        )
    )
    e1.ok(
        e1.req(
            "POST",
            f"{PREFIX}agents/report",
            json={
                "agent": {
                    "agent_type": "DHCP agent",
                    "binary": "neutron-dhcp-agent",
                    "topic": "dhcp_agent",
                    "host": "net2",
                }
            },
        )
    )
    net = e1.network()
    failures: list[str] = []

    def work(fe: FeedEnv, i: int) -> None:
        r = fe.req(
            "POST",
            "/v2.0/subnets",
            "demo",
            json={"subnet": {"network_id": net["id"], "cidr": f"10.0.{i}.0/24", "ip_version": 4}},
        )
        if r.status_code != 201:
            failures.append(r.text)

    threads = [threading.Thread(target=work, args=(e1 if i % 2 else e2, i)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []
    with e1.db.read() as conn:
        rows = conn.execute(select(t.network_dhcp_agents)).all()
    assert len(rows) == 1
    creates = [c for c in e1.changes(0)["changes"] if c["resource"] == "dhcp_binding"]
    assert [c["action"] for c in creates] == ["create"]
