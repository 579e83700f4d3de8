"""DHCP scheduling: which DHCP agents serve which networks (``network_dhcp_agents``).

A network *wants DHCP* when at least one of its subnets has ``enable_dhcp``.
Such a network is bound to ``dhcp_agents_per_network`` DHCP agents that are
alive (heartbeat within ``agent_down_time``) and admin-up:

* when it gets its first DHCP subnet or one of its subnets turns DHCP on
  (``network_changed``, from the subnet service), or a hosting agent is
  deleted (``agent_removed``);
* when a DHCP agent registers, restarts (``start_flag``), comes back from
  dead, or is set admin-up: it takes every network that wants DHCP and has
  fewer than ``dhcp_agents_per_network`` agents (``network_auto_schedule``,
  as Neutron's agents pull their networks on start);
* dead agents lose their networks to live ones, checked whenever a live
  DHCP agent reports (``allow_automatic_dhcp_failover``).  A binding moves
  only when a live replacement exists, and not during the first
  ``agent_down_time`` after this server process started (until then every
  agent would look dead after a server outage).

By hand (``POST /v2.0/agents/{id}/dhcp-networks``, ``DELETE .../{network_id}``;
``add_by_hand`` / ``remove_by_hand``): an admin binds a network to an
admin-up DHCP agent whether or not it wants DHCP and whatever
``dhcp_agents_per_network`` says, or unbinds it.  A network an admin took
off an agent is *held* (``dhcp_unscheduled_networks``): automatic scheduling
(new DHCP subnets, agents that register, restart, revive or are set admin-up,
agent deletion) leaves it alone until an admin binds it again; only failover
from dead agents still moves its remaining bindings.

A network that no longer wants DHCP (last DHCP subnet deleted or turned off)
is unbound from all its agents; a deleted network loses its bindings
(``network_removed``).  Agents already bound are kept when the setting is
lowered, and admin-down agents keep their networks (as in Neutron).

Choice of agents: candidates are live, admin-up DHCP agents not yet bound
to the network, limited to the network's ``availability_zone_hints`` when it
has any; an agent in a zone the network does not use yet comes first, then
the least loaded (fewest networks), then host name and id, so the outcome
is deterministic.  Every change to a network's bindings happens with the
network row locked (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL; SQLite
writers are serialised), and the ``(network_id, agent_id)`` primary key turns any
remaining race into a retried unit of work.

Feed: resource type ``dhcp_binding`` (snapshot key ``dhcp_bindings``), one
object per network that has agents::

    {"id": <network id>, "network_id": <network id>,
     "agent_ids": [<agent id>, ...], "hosts": [<host of that agent>, ...]}

(``agent_ids``/``hosts`` parallel, ordered by host then agent id), recorded
as ``create`` when a network gets its first agent, ``update`` when the set
changes and ``delete`` when the last one goes.  A network's
``availability_zones`` (the zones of its DHCP agents) is part of the network
view, so the network is recorded too whenever that list changes.
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

DHCP_AGENT = "DHCP agent"
FEED_TYPE = "dhcp_binding"

_nda = t.network_dhcp_agents
_held = t.dhcp_unscheduled_networks


# --- reads shared with the network view and the feed --------------------------------------------
def hosting_zones(conn: Connection, net_ids: list[str]) -> dict[str, list[str]]:
    """network id -> sorted availability zones of the DHCP agents bound to it."""
    if not net_ids:
        return {}
    q = (
        select(_nda.c.network_id, t.agents.c.availability_zone)
        .distinct()
        .join(t.agents, t.agents.c.id == _nda.c.agent_id)
        .where(t.agents.c.availability_zone.is_not(None))
    )
    if len(net_ids) <= 400:
        q = q.where(_nda.c.network_id.in_(net_ids))
    out: dict[str, list[str]] = {}
    for net_id, zone in conn.execute(q):
        out.setdefault(net_id, []).append(zone)
    return {k: sorted(v) for k, v in out.items()}


def _binding_rows(conn: Connection, net_ids: list[str] | None) -> list[Any]:
    q = (
        select(_nda.c.network_id, _nda.c.agent_id, t.agents.c.host)
        .join(t.agents, t.agents.c.id == _nda.c.agent_id)
        .order_by(_nda.c.network_id, t.agents.c.host, _nda.c.agent_id)
    )
    if net_ids is not None:
        q = q.where(_nda.c.network_id.in_(net_ids))
    return list(conn.execute(q))


def _bodies(rows: Iterable[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        body = out.setdefault(
            r.network_id, {"id": r.network_id, "network_id": r.network_id, "agent_ids": [], "hosts": []}
        )
        body["agent_ids"].append(r.agent_id)
        body["hosts"].append(r.host)
    return out


def binding_body(conn: Connection, net_id: str) -> dict[str, Any] | None:
    """The ``dhcp_binding`` feed object of one network, or None when no agent hosts it."""
    return _bodies(_binding_rows(conn, [net_id])).get(net_id)


def snapshot_bindings(conn: Connection) -> list[dict[str, Any]]:
    """Every ``dhcp_binding`` object (the feed's snapshot source), by network id."""
    return list(_bodies(_binding_rows(conn, None)).values())


def install_feed_source(feed: Feed) -> None:
    """Make ``dhcp_binding`` a snapshot type of ``feed`` (the process's change feed, passed in by the factory)."""
    feed.add_source(FEED_TYPE, snapshot_bindings)


# --- the scheduler ---------------------------------------------------------------------------------
class DhcpScheduler:
    """Keeps ``network_dhcp_agents`` in line with the rules above; every method runs in the caller's txn."""

    def __init__(self, deps: Deps, clock: Callable[[], float] = time.time) -> None:
        self.deps = deps
        self.clock = clock
        #: Failover waits agent_down_time after this (tests may move it back).
        self.started = clock()

    # --- configuration and liveness --------------------------------------------------------
    @property
    def per_network(self) -> int:
        return max(0, self.deps.cfg.default.dhcp_agents_per_network)

    def _dead_before(self, now: float) -> float:
        """Heartbeats older than this are dead agents (``alive`` is ``now - hb <= agent_down_time``)."""
        return now - self.deps.cfg.default.agent_down_time

    def _candidates(self, conn: Connection, now: float) -> list[Any]:
        """Live, admin-up DHCP agents with their load (bound networks)."""
        load = (
            select(func.count())
            .select_from(_nda)
            .where(_nda.c.agent_id == t.agents.c.id)
            .correlate(t.agents)
            .scalar_subquery()
        )
        return list(
            conn.execute(
                select(t.agents.c.id, t.agents.c.host, t.agents.c.availability_zone, load.label("load")).where(
                    and_(
                        t.agents.c.agent_type == DHCP_AGENT,
                        t.agents.c.admin_state_up == true(),
                        t.agents.c.heartbeat_at >= self._dead_before(now),
                    )
                )
            )
        )

    @staticmethod
    def _lock_network(conn: Connection, net_id: str) -> Any:
        """The network row (id, project, zone hints), locked for this transaction; None if gone.

        ``FOR NO KEY UPDATE`` (PostgreSQL; SQLite writers are serialised): the
        lock an UPDATE of the row takes, so it serialises schedulers of one
        network without conflicting with the key-share locks of concurrent
        inserts that reference the network (subnets, ports), which would deadlock.
        """
        return conn.execute(
            select(t.networks.c.id, t.networks.c.project_id, t.networks.c.availability_zone_hints)
            .where(t.networks.c.id == net_id)
            .with_for_update(key_share=True)
        ).first()

    @staticmethod
    def _wants_dhcp(conn: Connection, net_id: str) -> bool:
        return (
            conn.execute(
                select(t.subnets.c.id)
                .where(and_(t.subnets.c.network_id == net_id, t.subnets.c.enable_dhcp == true()))
                .limit(1)
            ).first()
            is not None
        )

    @staticmethod
    def _bound(conn: Connection, net_id: str) -> list[str]:
        return [
            r[0]
            for r in conn.execute(select(_nda.c.agent_id).where(_nda.c.network_id == net_id).order_by(_nda.c.agent_id))
        ]

    @staticmethod
    def _is_held(conn: Connection, net_id: str) -> bool:
        """An admin took the network off an agent: automatic scheduling leaves it alone."""
        return conn.execute(select(_held.c.network_id).where(_held.c.network_id == net_id)).first() is not None

    @staticmethod
    def _pick(
        candidates: list[Any],
        loads: dict[str, int],
        hints: list[str],
        bound: list[str],
        zones_used: set[str],
        count: int,
    ) -> list[str]:
        """Choose ``count`` agents: unused zone first, then least loaded, host, id."""
        pool = [a for a in candidates if a.id not in bound and (not hints or a.availability_zone in hints)]
        chosen: list[str] = []
        used = set(zones_used)
        for _ in range(count):
            if not pool:
                break
            best = min(pool, key=lambda a: (a.availability_zone in used, loads[a.id], a.host, a.id))
            pool.remove(best)
            chosen.append(best.id)
            used.add(best.availability_zone)
            loads[best.id] += 1
        return chosen

    # --- applying a change (with its feed records) ------------------------------------------------
    def _apply(self, uow: UnitOfWork, net: Any, add: list[str], remove: list[str], *, record_network: bool) -> None:
        if not add and not remove:
            return
        conn = uow.conn
        before = binding_body(conn, net.id)
        zones_before = hosting_zones(conn, [net.id]).get(net.id, [])
        if remove:
            conn.execute(delete(_nda).where(and_(_nda.c.network_id == net.id, _nda.c.agent_id.in_(remove))))
        if add:
            conn.execute(insert(_nda), [{"network_id": net.id, "agent_id": a} for a in add])
        self._record(uow, net, before, zones_before, record_network=record_network)

    def _record(
        self, uow: UnitOfWork, net: Any, before: dict[str, Any] | None, zones_before: list[str], *, record_network: bool
    ) -> None:
        conn = uow.conn
        after = binding_body(conn, net.id)
        if after != before:
            action = "delete" if after is None else ("create" if before is None else "update")
            uow.changed(FEED_TYPE, net.id, action, after, net.project_id)
        if record_network and hosting_zones(conn, [net.id]).get(net.id, []) != zones_before:
            # A network's view shows its DHCP agents' zones (recorded by recorders.register's recorder).
            self.deps.record(uow, "network", [net.id])

    # --- entry points -------------------------------------------------------------------------
    def network_changed(self, uow: UnitOfWork, net_id: str, *, record_network: bool = True) -> None:
        """A network's DHCP subnets changed: bind it up to ``dhcp_agents_per_network`` agents, or unbind it.

        ``record_network=False`` when the caller records the network afterwards anyway.
        """
        conn = uow.conn
        net = self._lock_network(conn, net_id)
        if net is None:
            return
        bound = self._bound(conn, net_id)
        if not self._wants_dhcp(conn, net_id):
            self._apply(uow, net, [], bound, record_network=record_network)
            return
        missing = self.per_network - len(bound)
        if missing <= 0 or self._is_held(conn, net_id):
            return
        candidates = self._candidates(conn, self.clock())
        loads = {a.id: a.load for a in candidates}
        zones_used = set(hosting_zones(conn, [net_id]).get(net_id, []))
        add = self._pick(candidates, loads, list(net.availability_zone_hints or []), bound, zones_used, missing)
        self._apply(uow, net, add, [], record_network=record_network)

    def network_removed(self, uow: UnitOfWork, net_id: str) -> None:
        """Before a network is deleted: drop its bindings (the network itself is recorded as deleted)."""
        net = self._lock_network(uow.conn, net_id)
        if net is not None:
            self._apply(uow, net, [], self._bound(uow.conn, net_id), record_network=False)

    def agent_removed(self, uow: UnitOfWork, agent_id: str) -> list[str]:
        """Before an agent is deleted: unbind its networks; returns them (see ``after_agent_removed``)."""
        conn = uow.conn
        nets = [
            r[0]
            for r in conn.execute(
                select(_nda.c.network_id).where(_nda.c.agent_id == agent_id).order_by(_nda.c.network_id)
            )
        ]
        for net_id in nets:
            net = self._lock_network(conn, net_id)
            if net is not None:
                self._apply(uow, net, [], [agent_id], record_network=True)
        return nets

    def after_agent_removed(self, uow: UnitOfWork, net_ids: list[str]) -> None:
        """After an agent is deleted: give its former networks other live agents."""
        for net_id in net_ids:
            self.network_changed(uow, net_id)

    def agent_reported(self, uow: UnitOfWork, agent_id: str, before: Any, now: float, start_flag: bool) -> None:
        """After a heartbeat of any agent (``before``: its row before the report, None when new)."""
        conn = uow.conn
        agent = conn.execute(select(t.agents).where(t.agents.c.id == agent_id)).one()
        if agent.agent_type != DHCP_AGENT:
            return
        cfg = self.deps.cfg.default
        if before is not None and before.availability_zone != agent.availability_zone:
            self._zone_changed(uow, agent_id)
        if cfg.allow_automatic_dhcp_failover:
            self.fail_over(uow, now)
        revived = before is None or before.heartbeat_at < self._dead_before(now)
        if cfg.network_auto_schedule and agent.admin_state_up and (revived or start_flag):
            self.auto_schedule(uow, agent)

    def agent_admin_up(self, uow: UnitOfWork, agent_id: str) -> None:
        """An admin set a DHCP agent admin-up: it may take unscheduled networks at once."""
        agent = uow.conn.execute(select(t.agents).where(t.agents.c.id == agent_id)).first()
        if (
            agent is not None
            and agent.agent_type == DHCP_AGENT
            and self.deps.cfg.default.network_auto_schedule
            and agent.heartbeat_at >= self._dead_before(self.clock())
        ):
            self.auto_schedule(uow, agent)

    def auto_schedule(self, uow: UnitOfWork, agent: Any) -> None:
        """Bind ``agent`` to every network that wants DHCP, has too few agents and admits its zone."""
        conn = uow.conn
        per = self.per_network
        count = (
            select(func.count())
            .select_from(_nda)
            .where(_nda.c.network_id == t.networks.c.id)
            .correlate(t.networks)
            .scalar_subquery()
        )
        has_dhcp = exists().where(and_(t.subnets.c.network_id == t.networks.c.id, t.subnets.c.enable_dhcp == true()))
        mine = exists().where(and_(_nda.c.network_id == t.networks.c.id, _nda.c.agent_id == agent.id))
        held = exists().where(_held.c.network_id == t.networks.c.id)
        rows = conn.execute(
            select(t.networks.c.id).where(and_(has_dhcp, ~mine, ~held, count < per)).order_by(t.networks.c.id)
        ).all()
        for (net_id,) in rows:
            net = self._lock_network(conn, net_id)
            if net is None or (
                net.availability_zone_hints and agent.availability_zone not in net.availability_zone_hints
            ):
                continue
            bound = self._bound(conn, net_id)  # re-read under the lock
            if agent.id in bound or len(bound) >= per:
                continue
            self._apply(uow, net, [agent.id], [], record_network=True)

    def add_by_hand(self, uow: UnitOfWork, agent_id: str, net_id: str) -> None:
        """An admin binds ``net_id`` to DHCP agent ``agent_id`` (checked by the caller: an admin-up DHCP
        agent, an existing network); ``NetworkHostedByDHCPAgent`` when it is already; releases a hold."""
        conn = uow.conn
        net = self._lock_network(conn, net_id)
        if net is None:
            raise errors.NetworkNotFound(net_id=net_id)
        if agent_id in self._bound(conn, net_id):
            raise errors.NetworkHostedByDHCPAgent(network_id=net_id, agent_id=agent_id)
        conn.execute(delete(_held).where(_held.c.network_id == net_id))
        self._apply(uow, net, [agent_id], [], record_network=True)

    def remove_by_hand(self, uow: UnitOfWork, agent_id: str, net_id: str) -> None:
        """An admin unbinds ``net_id`` from ``agent_id`` (``NetworkNotHostedByDhcpAgent`` when it is not
        bound there); the network is then held (see the module doc)."""
        conn = uow.conn
        net = self._lock_network(conn, net_id)
        if net is None or agent_id not in self._bound(conn, net_id):
            raise errors.NetworkNotHostedByDhcpAgent(network_id=net_id, agent_id=agent_id)
        if not self._is_held(conn, net_id):
            conn.execute(insert(_held).values(network_id=net_id))
        self._apply(uow, net, [], [agent_id], record_network=True)

    def fail_over(self, uow: UnitOfWork, now: float) -> None:
        """Move networks off dead DHCP agents onto live ones.

        A dead agent's binding goes when a live replacement is found, or when
        the network already has ``dhcp_agents_per_network`` live agents;
        otherwise it stays (the network keeps its place until an agent is back).
        """
        cfg = self.deps.cfg.default
        if now - self.started <= cfg.agent_down_time:
            return
        conn = uow.conn
        dead = conn.execute(
            select(_nda.c.network_id, _nda.c.agent_id)
            .join(t.agents, t.agents.c.id == _nda.c.agent_id)
            .where(and_(t.agents.c.agent_type == DHCP_AGENT, t.agents.c.heartbeat_at < self._dead_before(now)))
            .order_by(_nda.c.network_id, _nda.c.agent_id)
        ).all()
        if not dead:
            return
        candidates = self._candidates(conn, now)
        live = {a.id: a for a in candidates}
        loads = {a.id: a.load for a in candidates}
        by_net: dict[str, list[str]] = {}
        for net_id, agent_id in dead:
            by_net.setdefault(net_id, []).append(agent_id)
        for net_id in by_net:
            net = self._lock_network(conn, net_id)
            if net is None or not self._wants_dhcp(conn, net_id):
                continue
            bound = self._bound(conn, net_id)  # re-read under the lock
            live_bound = [a for a in bound if a in live]
            gone = [a for a in bound if a not in live and self._is_dead(conn, a, now)]
            if not gone:
                continue
            wanted = max(0, min(len(gone), self.per_network - len(live_bound)))
            zones_used = {live[a].availability_zone for a in live_bound}
            add = self._pick(candidates, loads, list(net.availability_zone_hints or []), bound, zones_used, wanted)
            remove = gone if len(live_bound) + len(add) >= self.per_network else gone[: len(add)]
            self._apply(uow, net, add, remove, record_network=True)

    def _is_dead(self, conn: Connection, agent_id: str, now: float) -> bool:
        hb = conn.execute(select(t.agents.c.heartbeat_at).where(t.agents.c.id == agent_id)).scalar()
        return hb is not None and hb < self._dead_before(now)

    def _zone_changed(self, uow: UnitOfWork, agent_id: str) -> None:
        """An agent reported another availability zone: the views of its networks changed."""
        conn = uow.conn
        net_ids = conn.execute(
            select(_nda.c.network_id).where(_nda.c.agent_id == agent_id).order_by(_nda.c.network_id)
        ).scalars()
        self.deps.record(uow, "network", list(net_ids))


__all__ = [
    "DHCP_AGENT",
    "FEED_TYPE",
    "DhcpScheduler",
    "binding_body",
    "hosting_zones",
    "install_feed_source",
    "snapshot_bindings",
]
