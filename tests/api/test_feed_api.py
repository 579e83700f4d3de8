"""The change feed over HTTP (/neutrino/v1/snapshot and /changes), in-process.

``FeedEnv`` builds the network API with handles on its services and the
``Feed`` (other feed/agent test modules import it).
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from neutrino import config
from neutrino.api.app import build_network_app
from neutrino.api.factory import make_deps, make_network_api
from neutrino.db import tables as t
from neutrino.db.engine import Database
from neutrino.feed import log
from neutrino.feed.publisher import open_feed
from neutrino.feed.routes import PREFIX
from tests.api.conftest import BASE_OVERRIDES, error, validate_token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class FeedEnv:
    """One server process' worth of API on ``db_url`` (two envs on one URL = two processes)."""

    def __init__(self, db_url: str, tmp_path: Path, overrides: dict[tuple[str, str], str] | None = None) -> None:
        self.cfg = config.defaults(tmp_path).with_overrides({**BASE_OVERRIDES, **(overrides or {})})
        self.db = Database(db_url)
        self.deps = make_deps(self.cfg, self.db)
        self.feed = open_feed(self.db, self.cfg.feed.retention)
        self.napi = make_network_api(self.deps, validate_token, feed=self.feed)
        self.app = build_network_app(self.napi)
        assert self.napi.extra_routes[PREFIX].feed is self.feed
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def req(self, method: str, path: str, as_: str = "admin", **kw: Any) -> Any:
        return self.client.request(method, path, headers={"X-Auth-Token": as_}, **kw)

    def ok(self, resp: Any, status: int = 200) -> Any:
        assert resp.status_code == status, (resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def changes(self, since: int, as_: str = "admin", **params: Any) -> dict[str, Any]:
        return self.ok(self.req("GET", f"{PREFIX}changes", as_, params={"since": since, **params}))

    def snapshot(self, as_: str = "admin", **params: Any) -> dict[str, Any]:
        return self.ok(self.req("GET", f"{PREFIX}snapshot", as_, params=params))

    def network(self, as_: str = "demo", **attrs: Any) -> dict[str, Any]:
        return self.ok(self.req("POST", "/v2.0/networks", as_, json={"network": attrs}), 201)["network"]

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")

    def close(self) -> None:
        self.client.close()
        self.db.dispose()


@pytest.fixture
def make_env(api_db_url, tmp_path):
    made: list[FeedEnv] = []

    def make(overrides=None, db_url=None) -> FeedEnv:
        env = FeedEnv(db_url or api_db_url, tmp_path, overrides)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture
def env(make_env) -> FeedEnv:
    return make_env()


def latest(env: FeedEnv) -> int:
    return env.snapshot(resources="network")["revision"]


# --- access --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["snapshot", "changes?since=0", "agents/report"])
def test_feed_needs_admin_or_service(env, path):
    for who in ("demo", "reader"):
        error(
            env.req("GET", PREFIX + path, who), 403, "PolicyNotAuthorized", "rule:neutrino_feed is disallowed by policy"
        )
    assert env.client.get(PREFIX + path).status_code == 401


def test_service_role_may_read_the_feed(env):
    assert env.snapshot(as_="service")["revision"] == 0
    assert env.changes(0, as_="service") == {"revision": 0, "changes": []}


def test_unknown_path_and_wrong_method(env):
    error(env.req("GET", PREFIX + "nothing"), 404, "HTTPNotFound")
    error(env.req("POST", PREFIX + "snapshot"), 405, "HTTPMethodNotAllowed")
    error(env.req("GET", PREFIX + "agents/report"), 405, "HTTPMethodNotAllowed")


# --- snapshot ----------------------------------------------------------------------------------------
def test_snapshot_holds_admin_views_of_everything(env):
    net = env.network(name="n1")
    sub = env.ok(
        env.req(
            "POST",
            "/v2.0/subnets",
            "demo",
            json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
        ),
        201,
    )["subnet"]
    port = env.ok(env.req("POST", "/v2.0/ports", "demo", json={"port": {"network_id": net["id"]}}), 201)["port"]
    snap = env.snapshot()
    res = snap["resources"]
    assert {"networks", "subnets", "ports", "security_groups", "security_group_rules", "agents"} <= set(res)
    assert [n["id"] for n in res["networks"]] == [net["id"]]
    assert res["networks"][0]["provider:network_type"] == "vxlan"  # admin view, not the member's
    assert [s["id"] for s in res["subnets"]] == [sub["id"]]
    (p,) = res["ports"]
    assert p["id"] == port["id"] and "binding:vif_type" in p
    assert [g["name"] for g in res["security_groups"]] == ["default"]
    assert len(res["security_group_rules"]) == 4
    assert snap["revision"] == env.changes(0)["revision"]


def test_snapshot_resource_selection(env):
    env.network()
    snap = env.snapshot(resources="network,port")
    assert set(snap["resources"]) == {"networks", "ports"}
    repeated = env.ok(env.req("GET", f"{PREFIX}snapshot?resources=network&resources=subnet"))
    assert set(repeated["resources"]) == {"networks", "subnets"}
    error(
        env.req("GET", f"{PREFIX}snapshot?resources=network,bogus"),
        400,
        "HTTPBadRequest",
        contains="Unknown feed resource(s): bogus",
    )
    error(env.req("GET", f"{PREFIX}snapshot?host=h1"), 501, "NotImplementedError")


def test_snapshot_is_consistent_with_its_revision_under_concurrent_writes(env):
    """Every network created at or before R is in the snapshot, none created after."""
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            env.network(name="w")

    th = threading.Thread(target=writer)
    th.start()
    snaps = []
    try:
        for _ in range(15):
            snaps.append(env.snapshot(resources="network"))
    finally:
        stop.set()
        th.join()
    with env.db.read() as conn:
        created = {
            r.resource_id: r.revision
            for r in conn.execute(
                select(t.changes).where(t.changes.c.resource == "network", t.changes.c.action == "create")
            )
        }
    assert len({s["revision"] for s in snaps}) > 1
    for s in snaps:
        have = {n["id"] for n in s["resources"]["networks"]}
        assert have == {i for i, rev in created.items() if rev <= s["revision"]}


# --- changes -------------------------------------------------------------------------------------------
def test_revisions_strictly_increase_and_changes_since_r_are_exactly_the_later_commits(env):
    r0 = latest(env)
    n1 = env.network(name="a")
    r1 = latest(env)
    n2 = env.network(name="b")
    env.ok(env.req("PUT", f"/v2.0/networks/{n1['id']}", "demo", json={"network": {"name": "a2"}}))
    env.ok(env.req("DELETE", f"/v2.0/networks/{n2['id']}", "demo"), 204)
    r2 = latest(env)
    assert r0 < r1 < r2

    all_ = env.changes(r0)
    revs = [c["revision"] for c in all_["changes"]]
    assert revs == sorted(set(revs)) and revs[0] > r0 and all_["revision"] == revs[-1] == r2
    later = env.changes(r1)
    assert [c["revision"] for c in later["changes"]] == [r for r in revs if r > r1]
    assert [(c["resource"], c["id"], c["action"]) for c in later["changes"] if c["resource"] == "network"] == [
        ("network", n2["id"], "create"),
        ("network", n1["id"], "update"),
        ("network", n2["id"], "delete"),
    ]
    upd = next(c for c in later["changes"] if c["action"] == "update")
    assert upd["body"]["name"] == "a2" and upd["project_id"] == "p-demo"
    assert next(c for c in later["changes"] if c["action"] == "delete")["body"] is None
    assert env.changes(r2) == {"revision": r2, "changes": []}


def test_limit_cuts_the_batch_and_the_revision_says_where(env):
    r0 = latest(env)
    for _ in range(3):
        env.network()
    full = env.changes(r0)["changes"]
    first = env.changes(r0, limit=2)
    assert first["changes"] == full[:2] and first["revision"] == full[1]["revision"]
    rest = env.changes(first["revision"], limit=1000)
    assert first["changes"] + rest["changes"] == full


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "Missing parameter 'since'"),
        ("since=x", "Invalid value for 'since': 'x' is not an integer"),
        ("since=-1", "Invalid value for 'since': -1 is out of range"),
        ("since=0&limit=0", "Invalid value for 'limit': 0 is out of range"),
        ("since=0&limit=10001", "Invalid value for 'limit': 10001 is out of range"),
        ("since=0&timeout=soon", "Invalid value for 'timeout': 'soon' is not a number"),
    ],
)
def test_changes_parameter_errors(env, query, message):
    error(env.req("GET", f"{PREFIX}changes?{query}"), 400, "HTTPBadRequest", message)


def test_long_poll_wakes_on_a_commit_during_the_wait(env):
    r0 = latest(env)

    async def main():
        async with env.async_client() as c:

            async def commit_later():
                await asyncio.sleep(0.3)
                r = await c.post("/v2.0/networks", json={"network": {"name": "late"}}, headers={"X-Auth-Token": "demo"})
                assert r.status_code == 201

            t0 = time.monotonic()
            task = asyncio.create_task(commit_later())
            r = await c.get(f"{PREFIX}changes", params={"since": r0, "timeout": 10}, headers={"X-Auth-Token": "admin"})
            waited = time.monotonic() - t0
            await task
            return r.json(), waited

    env.feed.poll_interval = 30  # only the in-process commit signal can wake it this fast
    body, waited = asyncio.run(main())
    assert 0.25 < waited < 1.0
    assert any(c["resource"] == "network" and c["body"]["name"] == "late" for c in body["changes"])


def test_long_poll_times_out_empty(env):
    r0 = latest(env)
    t0 = time.monotonic()
    assert env.changes(r0, timeout=0.4) == {"revision": r0, "changes": []}
    assert 0.35 < time.monotonic() - t0 < 2.0


def test_long_poll_sees_commits_of_another_server_process(make_env, api_db_url):
    a = make_env()
    b = make_env(db_url=api_db_url)
    r0 = latest(a)
    a.feed.poll_interval = 0.2

    def commit_later():
        time.sleep(0.3)
        b.network(name="from-b")

    th = threading.Thread(target=commit_later)
    t0 = time.monotonic()
    th.start()
    body = a.changes(r0, timeout=10)
    waited = time.monotonic() - t0
    th.join()
    assert [c["body"]["name"] for c in body["changes"] if c["resource"] == "network"] == ["from-b"]
    assert waited < 2.0


def test_long_poll_timeout_is_capped(env, monkeypatch):
    seen = []

    async def fake(since, timeout, limit):
        seen.append(timeout)
        return {"revision": since, "changes": []}

    monkeypatch.setattr(env.feed, "wait_changes", fake)
    env.changes(0, timeout=3600)
    env.changes(0, timeout=-5)
    assert seen == [60.0, 0.0]


# --- retention --------------------------------------------------------------------------------------------
def test_compaction_then_410_for_revisions_no_longer_retained(env):
    for _ in range(4):
        env.network()
    top = latest(env)
    assert log.compact(env.db, 3) > 0
    with env.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.changes)).scalar() <= 3
        oldest, newest = log.bounds(conn)
    assert newest == top
    err = error(env.req("GET", f"{PREFIX}changes?since=0"), 410, "ChangesGone")
    assert f"retained revisions: {oldest} to {top}" in err["message"]
    assert env.changes(oldest - 1)["changes"][0]["revision"] == oldest  # the boundary is still served
    error(env.req("GET", f"{PREFIX}changes?since={top + 1}"), 410, "ChangesGone")  # from a reset database


def test_compaction_keeps_at_least_one_row(env):
    env.network()
    top = latest(env)
    log.compact(env.db, 0)
    with env.db.read() as conn:
        assert log.bounds(conn) == (top, top)
    assert env.changes(top) == {"revision": top, "changes": []}


def test_compactor_runs_after_commits_at_most_once_per_interval(make_env):
    env = make_env({("feed", "retention"): "2"})
    now = [1000.0]
    comp = log.Compactor(env.db, 2, interval=30, clock=lambda: now[0])
    env.feed.compactor = comp
    for _ in range(4):
        env.network()
    with env.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.changes)).scalar() > 2
    now[0] += 31
    env.network()  # this commit triggers the compaction
    with env.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.changes)).scalar() == 2
    for _ in range(3):
        env.network()  # not due again yet
    with env.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.changes)).scalar() > 2
