"""The reconcile loop every agent runs.

    snapshot → reconcile → (changes since R | tick) → reconcile → ...

* Desired state comes from the server's change feed (``DesiredState``):
  a snapshot on start, then changes since the last revision; a gap or a
  compacted log means a new snapshot.  Nothing is kept across restarts, so a
  restarted agent simply starts over (crash-only).
* ``driver.reconcile(state, changed)`` is called after every feed step and at
  least every ``tick`` seconds; the driver observes the host, plans and
  applies (its planner is idempotent, so an unchanged state is cheap).
* A driver may also have ``async host_changed()``, returning when something
  on the host changed that its next ``reconcile`` should see (the OVS agent:
  a VIF plugged, seen by its OVSDB monitor).  The loop then reconciles right
  away with ``changed=False`` instead of waiting for the feed or the tick;
  the pending feed poll keeps running meanwhile.
* Port status changes the driver returns are reported to the server; the
  heartbeat (with the driver's ``configurations()``) goes every
  ``report_interval`` seconds.
* Errors never end the loop: they are logged and retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import httpx

from neutrino.feed.client import DesiredState, FeedClient, FeedError
from neutrino.feed.state import State

LOG = logging.getLogger(__name__)


class Driver(Protocol):
    agent_type: str
    binary: str
    topic: str
    feed_types: tuple[str, ...] | None

    def configurations(self) -> dict[str, Any]: ...

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        """Make the host match ``state``; return {port_id: "ACTIVE"|"DOWN"} for ports it owns."""
        ...


class AgentLoop:
    def __init__(
        self,
        driver: Driver,
        client: FeedClient,
        *,
        host: str,
        availability_zone: str | None = None,
        report_interval: float = 30.0,
        tick: float = 2.0,
    ) -> None:
        self.driver = driver
        self.client = client
        self.host = host
        self.availability_zone = availability_zone
        self.report_interval = report_interval
        self.tick = tick
        self.desired = DesiredState(client, driver.feed_types)
        if hasattr(driver, "client"):
            driver.client = client  # drivers that report more than port status
        self.reported: dict[str, str] = {}
        self.stop = asyncio.Event()
        self.reconciles = 0
        self._poll: asyncio.Task[State] | None = None
        #: The last failed reconcile ("Type: message"), shown in the agent's configurations
        #: (``openstack network agent show``) until a pass succeeds again.
        self.last_error: str | None = None

    def _agent_body(self, start: bool) -> dict[str, Any]:
        configurations = dict(self.driver.configurations())
        if self.last_error:
            configurations["reconcile_error"] = self.last_error
        body: dict[str, Any] = {
            "agent_type": self.driver.agent_type,
            "binary": self.driver.binary,
            "topic": self.driver.topic,
            "host": self.host,
            "configurations": configurations,
        }
        if self.availability_zone is not None:
            body["availability_zone"] = self.availability_zone
        if start:
            body["start_flag"] = True
        return body

    async def report(self, start: bool = False) -> None:
        await self.client.report(self._agent_body(start))

    async def _heartbeats(self) -> None:
        first = True
        while not self.stop.is_set():
            try:
                await self.report(start=first)
                first = False
            except (httpx.HTTPError, FeedError) as exc:
                LOG.warning("heartbeat failed: %s", exc)
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=self.report_interval if not first else 1.0)
            except TimeoutError:
                pass

    async def _report_status(self, statuses: dict[str, str]) -> None:
        # Forget ports the driver no longer reports first: one that comes back (a trunk
        # subport removed and added again, a port unbound and bound again) was set DOWN by
        # the server meanwhile, so its status must be reported again even if unchanged here.
        for pid in [p for p in self.reported if p not in statuses]:
            del self.reported[pid]
        delta = {pid: st for pid, st in statuses.items() if self.reported.get(pid) != st}
        if not delta:
            return
        await self.client.post("ports/status", {"host": self.host, "ports": delta})
        self.reported.update(delta)

    async def _next_state(self, timeout: float) -> State:
        """The next feed step; or, if the driver reports a host change first, the
        current state (the feed poll stays pending for the next call)."""
        if self._poll is None:
            self._poll = asyncio.ensure_future(self.desired.poll(timeout=timeout))
        host_changed = getattr(self.driver, "host_changed", None)
        if host_changed is not None and self.desired.state is not None:
            waiter = asyncio.ensure_future(host_changed())
            try:
                await asyncio.wait({self._poll, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not waiter.done():
                    waiter.cancel()
                await asyncio.gather(waiter, return_exceptions=True)
            failed = waiter.done() and not waiter.cancelled() and waiter.exception() is not None
            if failed:
                LOG.warning("host_changed() failed: %r; waiting for the feed", waiter.exception())
            elif not self._poll.done():
                return self.desired.state
        poll, self._poll = self._poll, None
        return await poll

    async def run(self) -> None:
        beats = asyncio.create_task(self._heartbeats())
        backoff = 0.5
        last_rev: int | None = None
        try:
            while not self.stop.is_set():
                try:
                    state = await self._next_state(timeout=self.tick if last_rev is not None else 0)
                    changed = state.revision != last_rev
                    last_rev = state.revision
                    t0 = time.perf_counter()
                    statuses = await self.driver.reconcile(state, changed)
                    self.reconciles += 1
                    self.last_error = None
                    if changed:
                        LOG.debug(
                            "reconciled revision %s in %.1f ms", state.revision, (time.perf_counter() - t0) * 1000
                        )
                    await self._report_status(statuses)
                    backoff = 0.5
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    LOG.warning(
                        "reconcile failed (%s: %s); retrying in %.1fs",
                        type(exc).__name__,
                        exc,
                        backoff,
                        exc_info=LOG.isEnabledFor(logging.DEBUG),
                    )
                    self.reported.clear()
                    self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    try:
                        await asyncio.wait_for(self.stop.wait(), timeout=backoff)
                    except TimeoutError:
                        pass
                    backoff = min(backoff * 2, 10.0)
        finally:
            pending = [t for t in (beats, self._poll) if t is not None]
            self._poll = None
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
