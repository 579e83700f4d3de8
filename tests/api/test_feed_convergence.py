"""Property: following the feed converges to a fresh snapshot.

Random API creates/updates/deletes (networks, subnets, ports, security
groups and rules, tags, agents, routers when the L3 service is present) run
while three followers track them:

* a stepping ``DesiredState`` that catches up at random moments and, half
  way, "restarts": its state is saved as JSON and a new client resumes from
  it;
* a ``follow()`` long-poller running in the background the whole time;
* in the compaction variant, the log is compacted behind the stepping
  follower, which must take a new snapshot (410) and still converge.

At the end each follower's state must equal a fresh snapshot (agent
heartbeat fields excepted: they are not on the feed by design).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from neutrino.feed import log
from neutrino.feed.client import DesiredState, FeedClient
from neutrino.feed.state import State, comparable, from_snapshot
from tests.api.test_feed_api import FeedEnv, make_env  # noqa: F401 - fixture

ACTORS = ("demo", "other", "admin")
AGENTS = [
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent"),
    ("L3 agent", "neutron-l3-agent", "l3_agent"),
    ("Open vSwitch agent", "neutron-openvswitch-agent", "N/A"),
]


class World:
    """Issues random API calls; remembers ids (possibly stale: failures are fine)."""

    def __init__(self, http: httpx.AsyncClient, rng: random.Random, with_l3: bool) -> None:
        self.http = http
        self.rng = rng
        self.with_l3 = with_l3
        self.ids: dict[str, list[tuple[str, str]]] = {}  # kind -> [(id, owner)]
        self.cidr = 0
        self.agent_ids: list[str] = []

    async def call(self, method: str, path: str, who: str = "admin", body: Any = None) -> Any:
        r = await self.http.request(method, path, json=body, headers={"X-Auth-Token": who})
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        return r.json() if r.status_code in (200, 201) and r.content else None

    def pick(self, kind: str) -> tuple[str, str] | None:
        items = self.ids.get(kind)
        return self.rng.choice(items) if items else None

    def remember(self, kind: str, obj_id: str, owner: str) -> None:
        self.ids.setdefault(kind, []).append((obj_id, owner))

    def forget(self, kind: str, obj_id: str) -> None:
        self.ids[kind] = [x for x in self.ids.get(kind, []) if x[0] != obj_id]

    async def step(self) -> None:
        ops = [
            self.net_create,
            self.net_update,
            self.net_delete,
            self.subnet_create,
            self.subnet_update,
            self.subnet_delete,
            self.port_create,
            self.port_create,
            self.port_update,
            self.port_delete,
            self.sg_create,
            self.sg_update,
            self.sg_delete,
            self.rule_create,
            self.rule_delete,
            self.tag,
            self.agent_report,
            self.agent_report,
            self.agent_update,
            self.agent_delete,
        ]
        if self.with_l3:
            ops += [
                self.router_create,
                self.router_update,
                self.router_delete,
                self.router_gateway,
                self.router_interface,
                self.router_interface,
                self.fip_create,
                self.fip_associate,
                self.fip_delete,
            ]
        await self.rng.choice(ops)()

    async def setup(self) -> None:
        """An admin-owned shared external network with a subnet (for gateways and floating IPs)."""
        out = await self.call(
            "POST",
            "/v2.0/networks",
            "admin",
            {
                "network": {
                    "name": "ext",
                    "router:external": True,
                    "shared": True,
                    "provider:network_type": "flat",
                    "provider:physical_network": "physnet",
                }
            },
        )
        self.ext_net = out["network"]["id"]
        await self.call(
            "POST",
            "/v2.0/subnets",
            "admin",
            {"subnet": {"network_id": self.ext_net, "ip_version": 4, "cidr": "172.16.0.0/24"}},
        )

    # networks, subnets, ports ---------------------------------------------------------
    async def net_create(self) -> None:
        who = self.rng.choice(ACTORS)
        body = {"name": f"n{self.rng.randrange(99)}"}
        if who == "admin" and self.rng.random() < 0.3:
            body["shared"] = True
        out = await self.call("POST", "/v2.0/networks", who, {"network": body})
        if out:
            self.remember("network", out["network"]["id"], who)

    async def net_update(self) -> None:
        if p := self.pick("network"):
            body = self.rng.choice(
                [
                    {"name": "renamed"},
                    {"admin_state_up": self.rng.random() < 0.5},
                    {"description": f"d{self.rng.randrange(9)}"},
                ]
            )
            await self.call("PUT", f"/v2.0/networks/{p[0]}", p[1], {"network": body})

    async def net_delete(self) -> None:
        if p := self.pick("network"):
            r = await self.http.delete(f"/v2.0/networks/{p[0]}", headers={"X-Auth-Token": p[1]})
            assert r.status_code in (204, 404, 409), r.text
            if r.status_code == 204 and self.rng.random() < 0.5:  # sometimes keep stale ids around
                self.forget("network", p[0])

    async def subnet_create(self) -> None:
        if p := self.pick("network"):
            self.cidr += 1
            body = {"network_id": p[0], "ip_version": 4, "cidr": f"10.{self.cidr % 250}.{self.cidr // 250}.0/24"}
            out = await self.call("POST", "/v2.0/subnets", p[1], {"subnet": body})
            if out:
                self.remember("subnet", out["subnet"]["id"], p[1])

    async def subnet_update(self) -> None:
        if p := self.pick("subnet"):
            body = self.rng.choice([{"name": "s"}, {"dns_nameservers": ["8.8.8.8"]}, {"enable_dhcp": False}])
            await self.call("PUT", f"/v2.0/subnets/{p[0]}", p[1], {"subnet": body})

    async def subnet_delete(self) -> None:
        if p := self.pick("subnet"):
            await self.call("DELETE", f"/v2.0/subnets/{p[0]}", p[1])

    async def port_create(self) -> None:
        if p := self.pick("network"):
            body: dict[str, Any] = {"network_id": p[0]}
            if p[1] == "admin" and self.rng.random() < 0.3:
                body["binding:host_id"] = "compute1"
            out = await self.call("POST", "/v2.0/ports", p[1], {"port": body})
            if out:
                self.remember("port", out["port"]["id"], p[1])

    async def port_update(self) -> None:
        if p := self.pick("port"):
            choices: list[dict[str, Any]] = [{"name": "pp"}, {"admin_state_up": False}]
            if sg := self.pick("sg"):
                choices.append({"security_groups": [sg[0]]})
            await self.call("PUT", f"/v2.0/ports/{p[0]}", p[1], {"port": self.rng.choice(choices)})

    async def port_delete(self) -> None:
        if p := self.pick("port"):
            await self.call("DELETE", f"/v2.0/ports/{p[0]}", p[1])

    # security groups ------------------------------------------------------------------
    async def sg_create(self) -> None:
        who = self.rng.choice(ACTORS)
        out = await self.call("POST", "/v2.0/security-groups", who, {"security_group": {"name": "g"}})
        if out:
            self.remember("sg", out["security_group"]["id"], who)

    async def sg_update(self) -> None:
        if p := self.pick("sg"):
            await self.call("PUT", f"/v2.0/security-groups/{p[0]}", p[1], {"security_group": {"name": "g2"}})

    async def sg_delete(self) -> None:
        if p := self.pick("sg"):
            await self.call("DELETE", f"/v2.0/security-groups/{p[0]}", p[1])

    async def rule_create(self) -> None:
        if p := self.pick("sg"):
            body: dict[str, Any] = {
                "security_group_id": p[0],
                "direction": self.rng.choice(["ingress", "egress"]),
                "protocol": "tcp",
                "port_range_min": self.rng.randrange(1, 2000),
            }
            if (other := self.pick("sg")) and other[1] == p[1] and self.rng.random() < 0.4:
                body["remote_group_id"] = other[0]
            out = await self.call("POST", "/v2.0/security-group-rules", p[1], {"security_group_rule": body})
            if out:
                self.remember("rule", out["security_group_rule"]["id"], p[1])

    async def rule_delete(self) -> None:
        if p := self.pick("rule"):
            await self.call("DELETE", f"/v2.0/security-group-rules/{p[0]}", p[1])

    async def tag(self) -> None:
        kind, coll = self.rng.choice([("network", "networks"), ("port", "ports"), ("sg", "security-groups")])
        if p := self.pick(kind):
            await self.call("PUT", f"/v2.0/{coll}/{p[0]}/tags/t{self.rng.randrange(3)}", p[1])

    # agents ------------------------------------------------------------------------------------
    async def agent_report(self) -> None:
        agent_type, binary, topic = self.rng.choice(AGENTS)
        body = {
            "agent_type": agent_type,
            "binary": binary,
            "topic": topic,
            "host": f"host{self.rng.randrange(3)}",
            "configurations": {"n": self.rng.randrange(3)},
            "start_flag": self.rng.random() < 0.2,
        }
        out = await self.call(
            "POST", "/neutrino/v1/agents/report", self.rng.choice(["admin", "service"]), {"agent": body}
        )
        self.agent_ids.append(out["agent"]["id"])

    async def agent_update(self) -> None:
        if self.agent_ids:
            await self.call(
                "PUT",
                f"/v2.0/agents/{self.rng.choice(self.agent_ids)}",
                "admin",
                {"agent": {"admin_state_up": self.rng.random() < 0.5, "description": "x"}},
            )

    async def agent_delete(self) -> None:
        if self.agent_ids and self.rng.random() < 0.3:
            await self.call("DELETE", f"/v2.0/agents/{self.rng.choice(self.agent_ids)}", "admin")

    # routers (when the L3 service is registered) ----------------------------------------------------
    async def router_create(self) -> None:
        who = self.rng.choice(ACTORS)
        out = await self.call("POST", "/v2.0/routers", who, {"router": {"name": "r"}})
        if out:
            self.remember("router", out["router"]["id"], who)

    async def router_update(self) -> None:
        if p := self.pick("router"):
            await self.call("PUT", f"/v2.0/routers/{p[0]}", p[1], {"router": {"name": "r2"}})

    async def router_delete(self) -> None:
        if p := self.pick("router"):
            await self.call("DELETE", f"/v2.0/routers/{p[0]}", p[1])

    async def router_gateway(self) -> None:
        if p := self.pick("router"):
            info = {"network_id": self.ext_net} if self.rng.random() < 0.7 else {}
            await self.call("PUT", f"/v2.0/routers/{p[0]}", p[1], {"router": {"external_gateway_info": info}})

    async def router_interface(self) -> None:
        if self.rng.random() < 0.4 and (att := self.pick("iface")):
            router_id, subnet_id = att[0].split(":")
            await self.call(
                "PUT", f"/v2.0/routers/{router_id}/remove_router_interface", att[1], {"subnet_id": subnet_id}
            )
            self.forget("iface", att[0])
        elif (p := self.pick("router")) and (sub := self.pick("subnet")) and p[1] == sub[1]:
            if await self.call("PUT", f"/v2.0/routers/{p[0]}/add_router_interface", p[1], {"subnet_id": sub[0]}):
                self.remember("iface", f"{p[0]}:{sub[0]}", p[1])

    async def fip_create(self) -> None:
        who = self.rng.choice(ACTORS)
        out = await self.call("POST", "/v2.0/floatingips", who, {"floatingip": {"floating_network_id": self.ext_net}})
        if out:
            self.remember("fip", out["floatingip"]["id"], who)

    async def fip_associate(self) -> None:
        if fip := self.pick("fip"):
            ports = [pid for pid, owner in self.ids.get("port", []) if owner == fip[1]]
            body = {"port_id": self.rng.choice(ports) if ports and self.rng.random() < 0.7 else None}
            await self.call("PUT", f"/v2.0/floatingips/{fip[0]}", fip[1], {"floatingip": body})

    async def fip_delete(self) -> None:
        if p := self.pick("fip"):
            await self.call("DELETE", f"/v2.0/floatingips/{p[0]}", p[1])


def diff(a: State, b: State) -> list[str]:
    """Readable differences between two states (empty when equal)."""
    ca, cb = comparable(a), comparable(b)
    out = []
    for rtype in sorted(set(ca) | set(cb)):
        x, y = ca.get(rtype, {}), cb.get(rtype, {})
        for oid in sorted(set(x) | set(y)):
            if x.get(oid) != y.get(oid):
                if oid not in x or oid not in y:
                    out.append(f"{rtype} {oid}: {'missing' if oid not in x else 'extra'}")
                else:
                    keys = sorted(k for k in set(x[oid]) | set(y[oid]) if x[oid].get(k) != y[oid].get(k))
                    out.append(f"{rtype} {oid}: {[(k, x[oid].get(k), y[oid].get(k)) for k in keys]}")
    return out


async def scenario(env: FeedEnv, seed: int, steps: int, compact: bool) -> None:
    rng = random.Random(seed)
    transport = httpx.ASGITransport(app=env.app)
    base = "http://testserver"
    async with httpx.AsyncClient(transport=transport, base_url=base) as http:
        world = World(http, rng, "routers" in env.napi.services)
        if world.with_l3:
            await world.setup()
        for _ in range(5):  # some state before the followers start
            await world.step()

        stepper = DesiredState(FeedClient(base, "admin", transport))
        await stepper.poll()
        follower = DesiredState(FeedClient(base, "service", transport))
        latest: list[State] = []

        async def follow() -> None:
            async for state in follower.follow(timeout=5):
                latest.append(state)

        bg = asyncio.create_task(follow())
        for i in range(steps):
            await world.step()
            if rng.random() < 0.2:
                await stepper.catch_up()
            if i == steps // 2:
                saved = stepper.state.to_json()
                await stepper.client.aclose()
                stepper = DesiredState(FeedClient(base, "admin", transport), state=State.from_json(saved))
                if compact:
                    for _ in range(10):
                        await world.net_create()
                    assert log.compact(env.db, 3) > 0  # the stepper's position is gone now
        await stepper.catch_up()

        snap = from_snapshot((await http.get("/neutrino/v1/snapshot", headers={"X-Auth-Token": "admin"})).json())
        assert stepper.state.revision == snap.revision
        assert diff(stepper.state, snap) == []
        if compact:
            assert stepper.snapshots >= 1

        for _ in range(200):
            if latest and latest[-1].revision >= snap.revision:
                break
            await asyncio.sleep(0.05)
        bg.cancel()
        try:
            await bg
        except asyncio.CancelledError:
            pass
        assert latest and latest[-1].revision == snap.revision
        assert diff(latest[-1], snap) == []
        assert follower.snapshots == 1 or compact
        await stepper.client.aclose()
        await follower.client.aclose()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_followers_converge_to_a_fresh_snapshot(make_env, seed):  # noqa: F811 - a pytest fixture, imported to be used by name
    asyncio.run(scenario(make_env(), seed, steps=120, compact=False))


def test_followers_converge_after_the_log_was_compacted_behind_them(make_env):  # noqa: F811 - a pytest fixture, imported to be used by name
    asyncio.run(scenario(make_env(), 11, steps=80, compact=True))
