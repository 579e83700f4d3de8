"""L3 scheduling: which L3 agent hosts which router (``router_l3_agents``).

Every router (legacy, centralised: one agent per router, Neutron's
``LeastRoutersScheduler``) is bound to one L3 agent that is alive (heartbeat
within ``agent_down_time``), admin-up and in agent mode ``legacy`` or
``dvr_snat`` (``configurations.agent_mode``; a report without it counts as
``legacy``):

* at router create (``router_created``, with ``router_auto_schedule``);
* when an L3 agent registers, restarts (``start_flag``), comes back from dead
  or is set admin-up: it takes every router without an agent
  (``router_auto_schedule``);
* a deleted agent's routers go to other live agents (``agent_removed`` /
  ``after_agent_removed``);
* dead agents lose their routers to live ones, checked whenever a live L3
  agent reports (``allow_automatic_l3agent_failover``).  A binding moves only
  when a live replacement exists, and not during the first
  ``agent_down_time`` after this server process started (until then every
  agent would look dead after a server outage).

By hand (``POST /v2.0/agents/{id}/l3-routers``, ``DELETE .../{router_id}``;
``add_by_hand`` / ``remove_by_hand``): an admin binds a router to an
admin-up L3 agent in a hosting mode (a router hosted by another agent: 409
``RouterHostedByL3Agent``; by this one: nothing to do), or unbinds it.  A
router an admin took off its agent is *held* (``l3_unscheduled_routers``):
automatic scheduling takes only routers that were never hosted, or whose
agent is dead or deleted, and leaves a held router alone until an admin
binds it again.

A deleted router loses its binding (``router_removed``).  Router ``status``
is not touched (it stays ``ACTIVE``, as in Neutron's legacy routers).

Choice of agent: candidates are limited to the router's
``availability_zone_hints`` when it has any; then the least loaded (fewest
routers), then host name and id, so the outcome is deterministic.  Changes
to a router's binding happen with the router row locked (``FOR NO KEY
UPDATE`` on PostgreSQL; SQLite writers are serialised), and the
``(router_id, agent_id)`` primary key turns any remaining race into a retried
unit of work.

Feed: resource type ``l3_binding`` (snapshot key ``l3_bindings``), one object
per router that has an agent::

    {"id": <router id>, "router_id": <router id>,
     "agent_ids": [<agent id>], "hosts": [<host of that agent>]}

recorded as ``create`` when a router gets its agent, ``update`` when it
moves and ``delete`` when it loses it.  A router's ``availability_zones``
(zones of its L3 agents) is part of the router view, so the router is
recorded too whenever that list changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, true
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.feed.publisher import Feed
from neutrino.services.common import Deps
from neutrino.services.routers import RouterService

L3_AGENT = "L3 agent"
FEED_TYPE = "l3_binding"
#: Agent modes that host centralised routers.
HOSTING_MODES = ("legacy", "dvr_snat")
#: Non-HA routers are hosted by one agent.
AGENTS_PER_ROUTER = 1

_rla = t.router_l3_agents
_held = t.l3_unscheduled_routers


# --- reads shared with the feed and the FIP status endpoint --------------------------------------
def _binding_rows(conn: Connection, router_ids: list[str] | None) -> list[Any]:
    q = (
        select(_rla.c.router_id, _rla.c.agent_id, t.agents.c.host)
        .join(t.agents, t.agents.c.id == _rla.c.agent_id)
        .order_by(_rla.c.router_id, t.agents.c.host, _rla.c.agent_id)
    )
    if router_ids is not None:
        q = q.where(_rla.c.router_id.in_(router_ids))
    return list(conn.execute(q))


def _bodies(rows: Iterable[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        body = out.setdefault(r.router_id, {"id": r.router_id, "router_id": r.router_id, "agent_ids": [], "hosts": []})
        body["agent_ids"].append(r.agent_id)
        body["hosts"].append(r.host)
    return out


def binding_body(conn: Connection, router_id: str) -> dict[str, Any] | None:
    """The ``l3_binding`` feed object of one router, or None when no agent hosts it."""
    return _bodies(_binding_rows(conn, [router_id])).get(router_id)


def snapshot_bindings(conn: Connection) -> list[dict[str, Any]]:
    """Every ``l3_binding`` object (the feed's snapshot source), by router id."""
    return list(_bodies(_binding_rows(conn, None)).values())


def routers_on_host(conn: Connection, host: str) -> set[str]:
    """Ids of the routers scheduled to an L3 agent on ``host``."""
    return {
        r[0]
        for r in conn.execute(
            select(_rla.c.router_id)
            .join(t.agents, t.agents.c.id == _rla.c.agent_id)
            .where(and_(t.agents.c.agent_type == L3_AGENT, t.agents.c.host == host))
        )
    }


def install_feed_source(feed: Feed) -> None:
    """Make ``l3_binding`` a snapshot type of ``feed`` (the process's change feed, passed in by the factory)."""
    feed.add_source(FEED_TYPE, snapshot_bindings)


def _mode(agent: Any) -> str:
    return str((agent.configurations or {}).get("agent_mode") or "legacy")


# --- the scheduler ---------------------------------------------------------------------------------
class L3Scheduler:
    """Keeps ``router_l3_agents`` in line with the rules above; every method runs in the caller's txn."""

    def __init__(self, deps: Deps, clock: Callable[[], float] = time.time) -> None:
        self.deps = deps
        self.clock = clock
        #: Failover waits agent_down_time after this (tests may move it back).
        self.started = clock()

    def _dead_before(self, now: float) -> float:
        return now - self.deps.cfg.default.agent_down_time

    def _candidates(self, conn: Connection, now: float) -> list[Any]:
        """Live, admin-up L3 agents in a hosting mode, with their load (bound routers)."""
        load = (
            select(func.count())
            .select_from(_rla)
            .where(_rla.c.agent_id == t.agents.c.id)
            .correlate(t.agents)
            .scalar_subquery()
        )
        rows = conn.execute(
            select(
                t.agents.c.id,
                t.agents.c.host,
                t.agents.c.availability_zone,
                t.agents.c.configurations,
                load.label("load"),
            ).where(
                and_(
                    t.agents.c.agent_type == L3_AGENT,
                    t.agents.c.admin_state_up == true(),
                    t.agents.c.heartbeat_at >= self._dead_before(now),
                )
            )
        ).all()
        return [r for r in rows if _mode(r) in HOSTING_MODES]

    @staticmethod
    def _lock_router(conn: Connection, router_id: str) -> Any:
        """The router row (id, project, zone hints), locked for this transaction; None if gone."""
        return conn.execute(
            select(t.routers.c.id, t.routers.c.project_id, t.routers.c.availability_zone_hints)
            .where(t.routers.c.id == router_id)
            .with_for_update(key_share=True)
        ).first()

    @staticmethod
    def _bound(conn: Connection, router_id: str) -> list[str]:
        return [
            r[0]
            for r in conn.execute(
                select(_rla.c.agent_id).where(_rla.c.router_id == router_id).order_by(_rla.c.agent_id)
            )
        ]

    @staticmethod
    def _pick(
        candidates: list[Any], loads: dict[str, int], hints: list[str], bound: list[str], count: int
    ) -> list[str]:
        pool = [a for a in candidates if a.id not in bound and (not hints or a.availability_zone in hints)]
        chosen: list[str] = []
        for _ in range(count):
            if not pool:
                break
            best = min(pool, key=lambda a: (loads[a.id], a.host, a.id))
            pool.remove(best)
            chosen.append(best.id)
            loads[best.id] += 1
        return chosen

    @staticmethod
    def _zones(conn: Connection, router_id: str) -> list[str]:
        return sorted(
            {
                r[0]
                for r in conn.execute(
                    select(t.agents.c.availability_zone)
                    .join(_rla, _rla.c.agent_id == t.agents.c.id)
                    .where(and_(_rla.c.router_id == router_id, t.agents.c.availability_zone.is_not(None)))
                )
            }
        )

    # --- applying a change (with its feed records) ------------------------------------------------
    def _apply(self, uow: UnitOfWork, router: Any, add: list[str], remove: list[str], *, record_router: bool) -> None:
        if not add and not remove:
            return
        conn = uow.conn
        before = binding_body(conn, router.id)
        zones_before = self._zones(conn, router.id)
        if remove:
            conn.execute(delete(_rla).where(and_(_rla.c.router_id == router.id, _rla.c.agent_id.in_(remove))))
        if add:
            conn.execute(insert(_rla), [{"router_id": router.id, "agent_id": a} for a in add])
        after = binding_body(conn, router.id)
        if after != before:
            action = "delete" if after is None else ("create" if before is None else "update")
            uow.changed(FEED_TYPE, router.id, action, after, router.project_id)
        if record_router and self._zones(conn, router.id) != zones_before:
            self._record_router(uow, router.id)

    def _record_router(self, uow: UnitOfWork, router_id: str) -> None:
        body = RouterService(self.deps).admin_view(uow.conn, router_id)
        uow.changed("router", router_id, "update", body, body["project_id"])

    def _schedule(self, uow: UnitOfWork, router_id: str, *, record_router: bool) -> None:
        conn = uow.conn
        router = self._lock_router(conn, router_id)
        if router is None:
            return
        bound = self._bound(conn, router_id)
        missing = AGENTS_PER_ROUTER - len(bound)
        if missing <= 0:
            return
        candidates = self._candidates(conn, self.clock())
        loads = {a.id: a.load for a in candidates}
        add = self._pick(candidates, loads, list(router.availability_zone_hints or []), bound, missing)
        self._apply(uow, router, add, [], record_router=record_router)

    # --- entry points -------------------------------------------------------------------------
    def router_created(self, uow: UnitOfWork, router_id: str) -> None:
        """A router was inserted (before its ``create`` record, which then carries its zones)."""
        if self.deps.cfg.default.router_auto_schedule:
            self._schedule(uow, router_id, record_router=False)

    def router_removed(self, uow: UnitOfWork, router_id: str) -> None:
        """Before a router is deleted: drop its binding (the router itself is recorded as deleted)."""
        router = self._lock_router(uow.conn, router_id)
        if router is not None:
            self._apply(uow, router, [], self._bound(uow.conn, router_id), record_router=False)

    def agent_removed(self, uow: UnitOfWork, agent_id: str) -> list[str]:
        """Before an agent is deleted: unbind its routers; returns them (see ``after_agent_removed``)."""
        conn = uow.conn
        routers = [
            r[0]
            for r in conn.execute(
                select(_rla.c.router_id).where(_rla.c.agent_id == agent_id).order_by(_rla.c.router_id)
            )
        ]
        for router_id in routers:
            router = self._lock_router(conn, router_id)
            if router is not None:
                self._apply(uow, router, [], [agent_id], record_router=True)
        return routers

    def after_agent_removed(self, uow: UnitOfWork, router_ids: list[str]) -> None:
        """After an agent is deleted: give its former routers other live agents."""
        for router_id in router_ids:
            self._schedule(uow, router_id, record_router=True)

    def agent_reported(self, uow: UnitOfWork, agent_id: str, before: Any, now: float, start_flag: bool) -> None:
        """After a heartbeat of any agent (``before``: its row before the report, None when new)."""
        conn = uow.conn
        agent = conn.execute(select(t.agents).where(t.agents.c.id == agent_id)).one()
        if agent.agent_type != L3_AGENT:
            return
        cfg = self.deps.cfg.default
        if before is not None and before.availability_zone != agent.availability_zone:
            for (router_id,) in conn.execute(
                select(_rla.c.router_id).where(_rla.c.agent_id == agent_id).order_by(_rla.c.router_id)
            ).all():
                self._record_router(uow, router_id)
        if cfg.allow_automatic_l3agent_failover:
            self.fail_over(uow, now)
        revived = before is None or before.heartbeat_at < self._dead_before(now)
        if cfg.router_auto_schedule and agent.admin_state_up and (revived or start_flag):
            self.auto_schedule(uow, agent)

    def agent_admin_up(self, uow: UnitOfWork, agent_id: str) -> None:
        """An admin set an L3 agent admin-up: it may take unscheduled routers at once."""
        agent = uow.conn.execute(select(t.agents).where(t.agents.c.id == agent_id)).first()
        if (
            agent is not None
            and agent.agent_type == L3_AGENT
            and self.deps.cfg.default.router_auto_schedule
            and agent.heartbeat_at >= self._dead_before(self.clock())
        ):
            self.auto_schedule(uow, agent)

    def auto_schedule(self, uow: UnitOfWork, agent: Any) -> None:
        """Bind ``agent`` to every router without an agent whose zone hints admit it."""
        if _mode(agent) not in HOSTING_MODES:
            return
        conn = uow.conn
        bound = exists().where(_rla.c.router_id == t.routers.c.id)
        held = exists().where(_held.c.router_id == t.routers.c.id)
        rows = conn.execute(select(t.routers.c.id).where(and_(~bound, ~held)).order_by(t.routers.c.id)).all()
        for (router_id,) in rows:
            router = self._lock_router(conn, router_id)
            if router is None or (
                router.availability_zone_hints and agent.availability_zone not in router.availability_zone_hints
            ):
                continue
            if self._bound(conn, router_id):  # re-read under the lock
                continue
            self._apply(uow, router, [agent.id], [], record_router=True)

    def add_by_hand(self, uow: UnitOfWork, agent: Any, router_id: str) -> None:
        """An admin binds ``router_id`` to L3 agent row ``agent`` (an admin-up L3 agent, checked by the
        caller); releases a hold.  ``RouterNotFound``, ``InvalidL3Agent`` (not a hosting mode),
        ``RouterHostedByL3Agent`` (another agent hosts it)."""
        conn = uow.conn
        router = self._lock_router(conn, router_id)
        if router is None:
            raise errors.RouterNotFound(router_id=router_id)
        if _mode(agent) not in HOSTING_MODES:
            raise errors.InvalidL3Agent(id=agent.id)
        bound = self._bound(conn, router_id)
        if agent.id in bound:
            return
        if len(bound) >= AGENTS_PER_ROUTER:
            raise errors.RouterHostedByL3Agent(router_id=router_id, agent_id=bound[0])
        conn.execute(delete(_held).where(_held.c.router_id == router_id))
        self._apply(uow, router, [agent.id], [], record_router=True)

    def remove_by_hand(self, uow: UnitOfWork, agent_id: str, router_id: str) -> None:
        """An admin unbinds ``router_id`` from ``agent_id`` (``RouterNotHostedByL3Agent`` when it is not
        bound there); the router is then held (see the module doc)."""
        conn = uow.conn
        router = self._lock_router(conn, router_id)
        if router is None or agent_id not in self._bound(conn, router_id):
            raise errors.RouterNotHostedByL3Agent(router_id=router_id, agent_id=agent_id)
        if conn.execute(select(_held.c.router_id).where(_held.c.router_id == router_id)).first() is None:
            conn.execute(insert(_held).values(router_id=router_id))
        self._apply(uow, router, [], [agent_id], record_router=True)

    def fail_over(self, uow: UnitOfWork, now: float) -> None:
        """Move routers off dead L3 agents onto live ones (a binding stays until a replacement exists)."""
        if now - self.started <= self.deps.cfg.default.agent_down_time:
            return
        conn = uow.conn
        dead = conn.execute(
            select(_rla.c.router_id, _rla.c.agent_id)
            .join(t.agents, t.agents.c.id == _rla.c.agent_id)
            .where(and_(t.agents.c.agent_type == L3_AGENT, t.agents.c.heartbeat_at < self._dead_before(now)))
            .order_by(_rla.c.router_id, _rla.c.agent_id)
        ).all()
        if not dead:
            return
        candidates = self._candidates(conn, now)
        live = {a.id for a in candidates}
        loads = {a.id: a.load for a in candidates}
        routers = list(dict.fromkeys(r for r, _ in dead))
        for router_id in routers:
            router = self._lock_router(conn, router_id)
            if router is None:
                continue
            bound = self._bound(conn, router_id)  # re-read under the lock
            live_bound = [a for a in bound if a in live]
            gone = [a for a in bound if a not in live and self._is_dead(conn, a, now)]
            if not gone:
                continue
            wanted = max(0, min(len(gone), AGENTS_PER_ROUTER - len(live_bound)))
            add = self._pick(candidates, loads, list(router.availability_zone_hints or []), bound, wanted)
            remove = gone if len(live_bound) + len(add) >= AGENTS_PER_ROUTER else gone[: len(add)]
            self._apply(uow, router, add, remove, record_router=True)

    def _is_dead(self, conn: Connection, agent_id: str, now: float) -> bool:
        hb = conn.execute(select(t.agents.c.heartbeat_at).where(t.agents.c.id == agent_id)).scalar()
        return hb is not None and hb < self._dead_before(now)


__all__ = [
    "FEED_TYPE",
    "L3_AGENT",
    "L3Scheduler",
    "binding_body",
    "install_feed_source",
    "routers_on_host",
    "snapshot_bindings",
]
