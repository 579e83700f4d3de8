"""AgentLoop: a driver's ``host_changed()`` wakes the loop up between feed steps."""

from __future__ import annotations

import asyncio
from typing import Any

from neutrino.agents.loop import AgentLoop


class Feed:
    """A feed whose long-poll answers only when the test says so."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.polls = 0
        self.answered = 0

    async def snapshot(self, types: Any) -> dict[str, Any]:
        return {"revision": 1, "resources": {}}

    async def changes(self, since: int, timeout: float, limit: int) -> dict[str, Any]:
        self.polls += 1
        await self.answer.wait()
        self.answer.clear()
        self.answered += 1
        return {"revision": since + 1, "changes": []}

    async def report(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return {}


class Driver:
    agent_type, binary, topic, feed_types = "Test agent", "neutrino-test-agent", "N/A", ("port",)

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.host = asyncio.Event()
        self.called = asyncio.Event()

    def configurations(self) -> dict[str, Any]:
        return {}

    async def host_changed(self) -> None:
        await self.host.wait()
        self.host.clear()

    async def reconcile(self, state: Any, changed: bool) -> dict[str, str]:
        self.calls.append((state.revision, changed))
        self.called.set()
        return {}


async def _next_call(driver: Driver, n: int) -> None:
    while len(driver.calls) < n:
        driver.called.clear()
        await driver.called.wait()


def test_host_change_reconciles_without_waiting_for_the_feed() -> None:
    async def main() -> tuple[list[tuple[int, bool]], int, int]:
        feed, driver = Feed(), Driver()
        loop = AgentLoop(driver, feed, host="h1", tick=3600, report_interval=3600)
        task = asyncio.create_task(loop.run())
        await _next_call(driver, 1)  # the snapshot
        driver.host.set()  # a VIF plugged: the feed poll is still pending
        await _next_call(driver, 2)
        polls_meanwhile = feed.polls
        feed.answer.set()  # then the feed moves
        await _next_call(driver, 3)
        loop.stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return driver.calls, polls_meanwhile, feed.answered

    calls, polls, answered = asyncio.run(asyncio.wait_for(main(), 30))
    assert calls == [(1, True), (1, False), (2, True)]
    assert polls == 1 and answered == 1  # the same long-poll carried over the wake-up


def test_a_port_that_leaves_and_comes_back_is_reported_again() -> None:
    """A trunk subport removed and added back (or a port unbound and bound again) was set DOWN by
    the server meanwhile: the same status from the driver must be posted again."""
    posted: list[dict[str, str]] = []

    class Recorder(Feed):
        async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            posted.append(dict(body["ports"]))
            return {}

    loop = AgentLoop(Driver(), Recorder(), host="h1", tick=3600, report_interval=3600)

    async def main() -> None:
        await loop._report_status({"a": "ACTIVE", "b": "ACTIVE"})
        await loop._report_status({"a": "ACTIVE"})  # b left; nothing new to say
        await loop._report_status({"a": "ACTIVE", "b": "ACTIVE"})  # b is back

    asyncio.run(main())
    assert posted == [{"a": "ACTIVE", "b": "ACTIVE"}, {"b": "ACTIVE"}]
