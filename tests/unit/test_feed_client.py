"""FeedClient and DesiredState against a scripted server (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from neutrino.feed.client import ChangesGone, DesiredState, FeedClient, FeedError


class FakeServer:
    """A scripted /neutrino/v1/: a log of changes and a current object set."""

    def __init__(self):
        self.log = []  # change dicts
        self.objects = {}  # (type, id) -> body
        self.oldest = 1  # changes below this are "compacted"
        self.requests = []
        self.fail_next = []  # status codes to answer before serving normally
        self.tokens_seen = []

    def commit(self, resource, obj_id, action, body=None):
        rev = (self.log[-1]["revision"] if self.log else 0) + 1
        body = body if action == "delete" else (body or {"id": obj_id, "rev": rev})
        self.log.append(
            {
                "revision": rev,
                "resource": resource,
                "id": obj_id,
                "action": action,
                "project_id": "",
                "body": None if action == "delete" else body,
            }
        )
        if action == "delete":
            self.objects.pop((resource, obj_id), None)
        else:
            self.objects[(resource, obj_id)] = body

    def latest(self):
        return self.log[-1]["revision"] if self.log else 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.tokens_seen.append(request.headers.get("x-auth-token"))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return httpx.Response(status, json={"NeutronError": {"type": "Boom", "message": "boom", "detail": ""}})
        path = request.url.path
        if path == "/neutrino/v1/snapshot":
            res = {}
            for (rtype, _), body in self.objects.items():
                res.setdefault(rtype + "s", []).append(body)
            return httpx.Response(200, json={"revision": self.latest(), "resources": res})
        if path == "/neutrino/v1/changes":
            since = int(request.url.params["since"])
            limit = int(request.url.params.get("limit", 1000))
            if since > self.latest() or since < self.oldest - 1:
                return httpx.Response(
                    410, json={"NeutronError": {"type": "ChangesGone", "message": "gone", "detail": ""}}
                )
            out = [c for c in self.log if c["revision"] > since][:limit]
            return httpx.Response(200, json={"revision": out[-1]["revision"] if out else since, "changes": out})
        if path == "/neutrino/v1/agents/report":
            return httpx.Response(200, json={"agent": dict(json.loads(request.content)["agent"], id="a1")})
        return httpx.Response(404)


def run(coro):
    return asyncio.run(coro)


def make(server, token="tok", **kw):
    return FeedClient("http://ctl:9696/", token, httpx.MockTransport(server.handler), **kw)


def test_snapshot_and_changes_requests():
    srv = FakeServer()
    srv.commit("network", "n1", "create")

    async def main():
        async with make(srv) as c:
            snap = await c.snapshot(["network", "port"])
            ch = await c.changes(0, timeout=2.5, limit=7)
            return snap, ch

    snap, ch = run(main())
    assert snap["revision"] == 1
    assert [c["id"] for c in ch["changes"]] == ["n1"]
    r0, r1 = srv.requests
    assert r0.url.params["resources"] == "network,port"
    assert dict(r1.url.params) == {"since": "0", "timeout": "2.5", "limit": "7"}
    assert r1.headers["x-auth-token"] == "tok"
    assert r1.extensions["timeout"]["read"] == pytest.approx(12.5)


def test_410_raises_changes_gone_and_other_errors_feed_error():
    srv = FakeServer()

    async def main():
        async with make(srv) as c:
            with pytest.raises(ChangesGone):
                await c.changes(5)
            srv.fail_next = [500]
            with pytest.raises(FeedError) as exc:
                await c.snapshot()
            assert exc.value.status == 500 and exc.value.error_type == "Boom"

    run(main())


def test_token_callable_is_asked_again_after_a_401():
    srv = FakeServer()
    tokens = iter(["old", "new"])
    srv.fail_next = [401]

    async def main():
        async with make(srv, token=lambda: next(tokens)) as c:
            return await c.report({"agent_type": "DHCP agent"})

    assert run(main())["id"] == "a1"
    assert srv.tokens_seen == ["old", "new"]


def test_desired_state_snapshots_then_follows():
    srv = FakeServer()
    srv.commit("network", "n1", "create")

    async def main():
        async with make(srv) as c:
            ds = DesiredState(c, ["network"])
            await ds.poll()
            srv.commit("network", "n2", "create")
            srv.commit("port", "p1", "create")
            srv.commit("network", "n1", "delete")
            await ds.catch_up()
            return ds

    ds = run(main())
    assert ds.snapshots == 1
    assert ds.state.revision == 4
    assert set(ds.state.of("network")) == {"n2"} and "port" not in ds.state.objects


def test_desired_state_resnapshots_after_410():
    srv = FakeServer()
    srv.commit("network", "n1", "create")

    async def main():
        async with make(srv) as c:
            ds = DesiredState(c)
            await ds.poll()
            for i in range(5):
                srv.commit("network", f"m{i}", "create")
            srv.oldest = 4  # revisions 2..3 compacted away
            await ds.catch_up()
            return ds

    ds = run(main())
    assert ds.snapshots == 2
    assert set(ds.state.of("network")) == {"n1", "m0", "m1", "m2", "m3", "m4"}


def test_desired_state_resnapshots_when_the_answer_goes_backwards():
    srv = FakeServer()
    srv.commit("network", "n1", "create")
    real = srv.handler

    def backwards(request):
        if request.url.path.endswith("/changes"):
            return httpx.Response(200, json={"revision": 0, "changes": []})
        return real(request)

    async def main():
        async with make(srv) as c:
            ds = DesiredState(c)
            await ds.poll()
            c._http._transport = httpx.MockTransport(backwards)
            await ds.poll()
            return ds

    assert run(main()).snapshots == 2


def test_follow_yields_on_progress_and_backs_off_on_errors():
    srv = FakeServer()
    srv.commit("network", "n1", "create")
    sleeps = []

    async def fake_sleep(s):
        sleeps.append(s)

    async def main():
        async with make(srv) as c:
            ds = DesiredState(c, sleep=fake_sleep)
            seen = []
            srv.fail_next = [503, 503, 503]
            async for state in ds.follow(timeout=0, backoff=0.5):
                seen.append(state.revision)
                if len(seen) == 1:
                    srv.commit("network", "n2", "create")
                if len(seen) == 2:
                    break
            return seen

    assert run(main()) == [1, 2]
    assert sleeps == [0.5, 1.0, 2.0]


def test_agent_loop_reports_a_failing_reconcile_and_clears_it_after_a_success():
    """A pass that fails is retried (crash-only) and the failure is visible in the agent's
    configurations until a pass succeeds."""
    from neutrino.agents.loop import AgentLoop

    class Driver:
        agent_type, binary, topic, feed_types = "Test agent", "neutrino-test-agent", "N/A", ("port",)

        def __init__(self):
            self.calls = 0

        def configurations(self):
            return {"devices": 0}

        async def reconcile(self, state, changed):
            await asyncio.sleep(0.01)  # the scripted feed answers at once: let the test run too
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("bundle refused by the switch")
            return {}

    server = FakeServer()
    server.commit("port", "p1", "create")
    driver = Driver()

    async def main():
        loop = AgentLoop(driver, make(server), host="h1", tick=0.05, report_interval=60)
        task = asyncio.create_task(loop.run())
        while driver.calls < 1:
            await asyncio.sleep(0.01)
        seen = loop._agent_body(False)["configurations"]
        while driver.calls < 2 or loop.last_error:
            await asyncio.sleep(0.01)
        loop.stop.set()
        await task
        return seen, loop._agent_body(False)["configurations"]

    failing, healed = run(asyncio.wait_for(main(), 10))
    assert failing == {"devices": 0, "reconcile_error": "RuntimeError: bundle refused by the switch"}
    assert healed == {"devices": 0}
