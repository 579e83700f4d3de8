"""Agents: the admin API, heartbeats (``report``), availability zones, scheduling reads.

* ``/v2.0/agents`` (admin only): list (others get ``200 {"agents": []}``),
  show (others: 404), PUT ``admin_state_up``/``description``, DELETE.
* ``report`` is the agent side (``POST /neutrino/v1/agents/report``, see
  ``neutrino.feed.routes`` and ``neutrino.services.agent_reports``): upsert by
  ``(agent_type, host)``, refresh the heartbeat, and set ``started_at`` when
  ``start_flag`` is true.
* ``/v2.0/availability_zones``: built from DHCP agents (``network``) and L3
  agents (``router``); a zone is ``available`` when any of its agents is
  admin-up (liveness does not count, as in Neutron).
* Scheduling reads: ``/v2.0/agents/{id}/dhcp-networks``,
  ``/v2.0/agents/{id}/l3-routers``, ``/v2.0/networks/{id}/dhcp-agents``,
  ``/v2.0/routers/{id}/l3-agents`` (admin only; lists).  The first two also
  take ``POST {"network_id"|"router_id": ...}`` and ``DELETE .../{id}``
  (scheduling by hand, admin only; see the schedulers).
* DHCP scheduling (writes of ``network_dhcp_agents``) is
  ``neutrino.services.dhcp_scheduler``; reports, admin-up and DELETE of DHCP
  agents call into it.  L3 scheduling (``router_l3_agents``) is
  ``neutrino.services.l3_scheduler``, called the same way for L3 agents.

Feed policy for agents (keeps the feed small): a heartbeat records an
``agent`` change only when the agent is new (``create``), restarted
(``start_flag``), was dead (no heartbeat for ``agent_down_time``), or changed
what it reports (configurations, availability zone, binary, topic,
resources_synced).  Plain heartbeats are not on the feed, so an agent body
on the feed carries the ``heartbeat_timestamp``/``alive`` of its last
recorded change (``neutrino.feed.resources.VOLATILE_FIELDS``).  Admin PUT and
DELETE are always recorded.

Time comes from the injectable ``clock`` (epoch seconds).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.resources import convert as cv
from neutrino.resources import policy
from neutrino.resources.definitions import AGENT, NETWORK, ROUTER
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import Attr, Resource
from neutrino.services import common
from neutrino.services.common import Deps
from neutrino.services.dhcp_scheduler import DhcpScheduler
from neutrino.services.l3_scheduler import L3Scheduler
from neutrino.timeutil import agent_ts

DHCP_AGENT = "DHCP agent"
L3_AGENT = "L3 agent"
#: Agent types that carry an availability zone, and the resource they serve.
AZ_RESOURCE = {DHCP_AGENT: "network", L3_AGENT: "router"}
DEFAULT_AZ = "nova"

AVAILABILITY_ZONE = Resource(
    "availability_zone",
    "availability_zones",
    (
        Attr("name", filter=True, sort=True),
        Attr("resource", filter=True, sort=True),
        Attr("state", filter=True, sort=True),
    ),
)

_REPORT_KEYS = {
    "agent_type",
    "binary",
    "topic",
    "host",
    "configurations",
    "availability_zone",
    "start_flag",
    "resources_synced",
}
#: Reported fields whose change puts the agent on the feed.
_TRACKED = ("binary", "topic", "availability_zone", "configurations", "resources_synced")


class AgentService:
    resource = AGENT
    #: DHCP scheduling hooks (a ``neutrino.services.dhcp_scheduler.DhcpScheduler``, set by ``register``).
    dhcp_scheduler: Any = None
    #: L3 scheduling hooks (a ``neutrino.services.l3_scheduler.L3Scheduler``, set by ``register``).
    l3_scheduler: Any = None

    def __init__(self, deps: Deps, clock: Callable[[], float] = time.time) -> None:
        self.deps = deps
        self.clock = clock

    # --- reading --------------------------------------------------------------------
    def to_dict(self, r: Any, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        return {
            "id": r.id,
            "agent_type": r.agent_type,
            "binary": r.binary,
            "topic": r.topic,
            "host": r.host,
            "admin_state_up": r.admin_state_up,
            "created_at": r.created_at,
            "started_at": r.started_at,
            "heartbeat_timestamp": r.heartbeat_timestamp,
            "description": r.description,
            "resources_synced": r.resources_synced,
            "availability_zone": r.availability_zone,
            "alive": self.is_alive(r.heartbeat_at, now),
            "configurations": dict(r.configurations or {}),
        }

    def is_alive(self, heartbeat_at: float, now: float) -> bool:
        return now - heartbeat_at <= self.deps.cfg.default.agent_down_time

    def fetch_row(self, ctx: RequestContext, conn: Connection, agent_id: str) -> Any:
        row = None
        if policy.check(ctx, "get_agent", {}):
            row = conn.execute(select(t.agents).where(t.agents.c.id == agent_id)).first()
        if row is None:
            raise errors.AgentNotFound(id=agent_id)
        return row

    def get(self, ctx: RequestContext, conn: Connection, agent_id: str) -> dict[str, Any]:
        return self.to_dict(self.fetch_row(ctx, conn, agent_id))

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], set[str]]:
        if not policy.check(ctx, "get_agent", {}):
            return [], set()
        stmt, pushed = common.push_filters(select(t.agents), t.agents, AGENT, q)
        now = self.clock()
        rows = conn.execute(stmt.order_by(t.agents.c.host, t.agents.c.agent_type)).all()
        return [self.to_dict(r, now) for r in rows], pushed

    # --- admin writes -------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: dict[str, Any]) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, agent_id: str, changes: dict[str, Any], if_match: str | None = None
    ) -> dict[str, Any]:
        row = self.fetch_row(ctx, uow.conn, agent_id)
        policy.enforce(ctx, "update_agent", {})
        values = {k: changes[k] for k in ("admin_state_up", "description") if k in changes}
        if values:
            uow.conn.execute(update(t.agents).where(t.agents.c.id == agent_id).values(**values))
        # DHCP scheduling: an agent set admin-up may take unscheduled networks.
        if self.dhcp_scheduler is not None and values.get("admin_state_up") and not row.admin_state_up:
            self.dhcp_scheduler.agent_admin_up(uow, agent_id)
        if self.l3_scheduler is not None and values.get("admin_state_up") and not row.admin_state_up:
            self.l3_scheduler.agent_admin_up(uow, agent_id)
        out = self.get(ctx, uow.conn, agent_id)
        uow.changed("agent", agent_id, "update", out)
        return out

    def delete(self, ctx: RequestContext, uow: UnitOfWork, agent_id: str, if_match: str | None = None) -> None:
        self.fetch_row(ctx, uow.conn, agent_id)
        policy.enforce(ctx, "delete_agent", {})
        # DHCP scheduling: the agent's networks are unbound (recorded), then given other live agents.
        moved = self.dhcp_scheduler.agent_removed(uow, agent_id) if self.dhcp_scheduler is not None else []
        # L3 scheduling: likewise for the agent's routers.
        moved_routers = self.l3_scheduler.agent_removed(uow, agent_id) if self.l3_scheduler is not None else []
        uow.conn.execute(delete(t.agents).where(t.agents.c.id == agent_id))
        uow.changed("agent", agent_id, "delete", None)
        if moved:
            self.dhcp_scheduler.after_agent_removed(uow, moved)
        if moved_routers:
            self.l3_scheduler.after_agent_removed(uow, moved_routers)

    # --- the agent side ---------------------------------------------------------------
    def report(self, ctx: RequestContext, uow: UnitOfWork, body: Any) -> dict[str, Any]:
        """Heartbeat: upsert the agent by (agent_type, host); returns ``{"agent": {...}}``.

        In txn; safe to re-run (a concurrent first report of the same agent
        makes the insert fail, and the retried unit finds that row).
        Raises ``HTTPBadRequest`` for a malformed body.
        """
        if not (ctx.is_admin or ctx.is_service):
            raise errors.PolicyNotAuthorized(action="rule:report_agent")
        rep = parse_report(body)
        now = self.clock()
        ts = agent_ts(now)
        conn = uow.conn
        row = conn.execute(
            select(t.agents).where(and_(t.agents.c.agent_type == rep["agent_type"], t.agents.c.host == rep["host"]))
        ).first()
        if row is None:
            agent_id = common.new_id()
            conn.execute(
                insert(t.agents).values(
                    id=agent_id,
                    agent_type=rep["agent_type"],
                    binary=rep["binary"],
                    topic=rep["topic"],
                    host=rep["host"],
                    admin_state_up=True,
                    created_at=ts,
                    started_at=ts,
                    heartbeat_at=int(now),
                    heartbeat_timestamp=ts,
                    description=None,
                    availability_zone=rep["availability_zone"],
                    configurations=rep["configurations"],
                    resources_synced=rep.get("resources_synced"),
                )
            )
            action = "create"
        else:
            agent_id = row.id
            values: dict[str, Any] = {"heartbeat_at": int(now), "heartbeat_timestamp": ts}
            for key in _TRACKED:
                if key in rep and rep[key] != getattr(row, key):
                    values[key] = rep[key]
            if rep["start_flag"]:
                values["started_at"] = ts
            conn.execute(update(t.agents).where(t.agents.c.id == agent_id).values(**values))
            noteworthy = len(values) > 2 or not self.is_alive(row.heartbeat_at, now)
            action = "update" if noteworthy else ""
        # DHCP scheduling: a new/restarted/revived DHCP agent takes networks; dead agents' move.
        if self.dhcp_scheduler is not None and rep["agent_type"] == DHCP_AGENT:
            self.dhcp_scheduler.agent_reported(uow, agent_id, row, now, rep["start_flag"])
        # L3 scheduling: a new/restarted/revived L3 agent takes unscheduled routers; dead agents' move.
        if self.l3_scheduler is not None and rep["agent_type"] == L3_AGENT:
            self.l3_scheduler.agent_reported(uow, agent_id, row, now, rep["start_flag"])
        out = self.to_dict(conn.execute(select(t.agents).where(t.agents.c.id == agent_id)).one(), now)
        if action:
            uow.changed("agent", agent_id, action, out)
        return {"agent": out}


def parse_report(body: Any) -> dict[str, Any]:
    """Validate a report body; returns the fields with defaults filled in.

    ``availability_zone`` defaults to ``nova`` for DHCP and L3 agents and to
    ``None`` (Neutron shows null) for the others.
    """
    if not isinstance(body, dict) or not isinstance(body.get("agent"), dict):
        raise errors.bad("Unable to find 'agent' in request body")
    item = body["agent"]
    unknown = sorted(set(item) - _REPORT_KEYS)
    if unknown:
        raise errors.bad(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    out: dict[str, Any] = {}
    for key in ("agent_type", "binary", "host"):
        val = item.get(key)
        if not isinstance(val, str) or not val or len(val) > 255:
            raise errors.bad(f"Invalid input for {key}. Reason: a non-empty string is required.")
        out[key] = val
    topic = item.get("topic", "N/A")
    if not isinstance(topic, str) or len(topic) > 255:
        raise errors.bad("Invalid input for topic. Reason: not a string.")
    out["topic"] = topic
    confs = item.get("configurations", {})
    if not isinstance(confs, dict):
        raise errors.bad("Invalid input for configurations. Reason: not a dictionary.")
    out["configurations"] = confs
    az = item.get("availability_zone")
    if az is not None and (not isinstance(az, str) or len(az) > 255):
        raise errors.bad("Invalid input for availability_zone. Reason: not a string.")
    out["availability_zone"] = az or (DEFAULT_AZ if out["agent_type"] in AZ_RESOURCE else None)
    try:
        out["start_flag"] = cv.to_bool(item.get("start_flag", False))
        if item.get("resources_synced") is not None:
            out["resources_synced"] = cv.to_bool(item["resources_synced"])
    except ValueError as exc:
        raise errors.bad(f"Invalid input. Reason: {exc}.") from None
    return out


class AvailabilityZoneService(common.ReadOnlyService):
    """``GET /v2.0/availability_zones`` (filters ``name``, ``resource``, ``state``)."""

    resource = AVAILABILITY_ZONE

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], set[str]]:
        policy.enforce(ctx, "get_availability_zone", {})
        up: dict[tuple[str, str], bool] = {}
        rows = conn.execute(
            select(t.agents.c.availability_zone, t.agents.c.agent_type, t.agents.c.admin_state_up).where(
                t.agents.c.agent_type.in_(list(AZ_RESOURCE))
            )
        ).all()
        for az, agent_type, admin_up in rows:
            if az:
                key = (az, AZ_RESOURCE[agent_type])
                up[key] = up.get(key, False) or bool(admin_up)
        return [
            {"name": name, "resource": res, "state": "available" if ok else "unavailable"}
            for (name, res), ok in sorted(up.items())
        ], set()


@dataclasses.dataclass
class Bindings:
    """A scheduling list: the children bound to one parent through ``table``.

    ``check_parent(conn, parent_id)`` raises the parent's NotFound;
    ``children`` is the service listing the child resource (admin view).
    With ``add``/``remove`` (agent side only) it is also writable, as Neutron:
    ``POST`` with ``{<child_col>: id}`` binds (201, body ``null``), ``DELETE
    .../<child id>`` unbinds (204); ``add(uow, agent_row, child_id)`` and
    ``remove(uow, agent_id, child_id)`` raise the scheduler's errors.
    """

    resource: Resource
    rule: str
    table: Any
    parent_col: str
    child_col: str
    check_parent: Callable[[Connection, str], None]
    children: Callable[[], Any]
    #: (agent type, InvalidXAgent class, create rule, delete rule) for writable lists.
    writable: tuple[str, Any, str, str] | None = None
    add: Callable[[UnitOfWork, Any, str], None] | None = None
    remove: Callable[[UnitOfWork, str, str], None] | None = None

    def list(
        self, ctx: RequestContext, conn: Connection, parent_id: str, q: ListQuery
    ) -> tuple[list[dict[str, Any]], set[str]]:
        if not ctx.is_admin:  # Neutron's default for every scheduling API: admin only
            raise errors.PolicyNotAuthorized(action=f"rule:{self.rule}")
        self.check_parent(conn, parent_id)
        ids = [
            r[0]
            for r in conn.execute(
                select(self.table.c[self.child_col]).where(self.table.c[self.parent_col] == parent_id)
            )
        ]
        svc = self.children()
        if svc is None or not ids:
            return [], set()
        wanted = set(ids)
        if "id" in q.filters:
            wanted &= set(q.filters["id"])
        q2 = dataclasses.replace(q, filters={**q.filters, "id": sorted(wanted)})
        if not wanted:
            return [], set()
        items, pushed = svc.list(RequestContext.admin(), conn, q2)
        return [o for o in items if o["id"] in wanted], pushed | {"id"}

    def get(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise errors.HTTPNotFound()

    def create(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()

    def create_raw(self, ctx: RequestContext, uow: UnitOfWork, parent_id: str, body: Any) -> None:
        """``POST``: bind the child named in ``{<child_col>: id}`` to agent ``parent_id`` (admin only)."""
        if self.writable is None or self.add is None:
            raise errors.HTTPMethodNotAllowed()
        agent_type, invalid, create_rule, _ = self.writable
        policy.enforce(ctx, create_rule, {})
        if not isinstance(body, dict) or self.child_col not in body:
            raise errors.bad(f"Unable to find '{self.child_col}' in request body")
        unknown = sorted(set(body) - {self.child_col})
        if unknown:
            raise errors.bad(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        try:
            child_id = cv.uuid_str(body[self.child_col])
        except ValueError as exc:
            raise errors.bad(f"Invalid input for {self.child_col}. Reason: {exc}.") from None
        self.check_parent(uow.conn, parent_id)
        agent = uow.conn.execute(select(t.agents).where(t.agents.c.id == parent_id)).one()
        if agent.agent_type != agent_type or not agent.admin_state_up:
            raise invalid(id=parent_id)
        self.add(uow, agent, child_id)

    def update(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()

    def delete(self, ctx: RequestContext, uow: UnitOfWork, parent_id: str, child_id: str) -> None:
        """``DELETE .../<child id>``: unbind the child from agent ``parent_id`` (admin only)."""
        if self.writable is None or self.remove is None:
            raise errors.HTTPMethodNotAllowed()
        policy.enforce(ctx, self.writable[3], {})
        self.check_parent(uow.conn, parent_id)
        self.remove(uow, parent_id, child_id)


def _exists_or(table: Any, exc: Callable[[str], errors.NeutronException]) -> Callable[[Connection, str], None]:
    def check(conn: Connection, obj_id: str) -> None:
        if not common.exists(conn, table, table.c.id == obj_id):
            raise exc(obj_id)

    return check


def register(deps: Deps, services: dict[str, Any], subresources: dict[tuple[str, str], Any]) -> None:
    """Add ``agents``, ``availability_zones`` and the scheduling sub-resources."""
    agents = AgentService(deps)
    services["agents"] = agents
    # DHCP scheduling: one scheduler for the agent, network and subnet services, on the agents' clock.
    scheduler = DhcpScheduler(deps, clock=lambda: agents.clock())
    agents.dhcp_scheduler = scheduler
    for name in ("networks", "subnets"):
        if name in services:
            services[name].dhcp_scheduler = scheduler
    # L3 scheduling: one scheduler for the agent and router services.
    l3 = L3Scheduler(deps, clock=lambda: agents.clock())
    agents.l3_scheduler = l3
    if "routers" in services:
        services["routers"].l3_scheduler = l3
    services["availability_zones"] = AvailabilityZoneService(deps)
    agent_exists = _exists_or(t.agents, lambda i: errors.AgentNotFound(id=i))
    subresources[("agents", "dhcp-networks")] = Bindings(
        NETWORK,
        "get_dhcp-networks",
        t.network_dhcp_agents,
        "agent_id",
        "network_id",
        agent_exists,
        lambda: services.get("networks"),
        writable=(DHCP_AGENT, errors.InvalidDHCPAgent, "create_dhcp-network", "delete_dhcp-network"),
        add=lambda uow, agent, net_id: scheduler.add_by_hand(uow, agent.id, net_id),
        remove=scheduler.remove_by_hand,
    )
    subresources[("agents", "l3-routers")] = Bindings(
        ROUTER,
        "get_l3-routers",
        t.router_l3_agents,
        "agent_id",
        "router_id",
        agent_exists,
        lambda: services.get("routers"),
        writable=(L3_AGENT, errors.InvalidL3Agent, "create_l3-router", "delete_l3-router"),
        add=l3.add_by_hand,
        remove=l3.remove_by_hand,
    )
    subresources[("networks", "dhcp-agents")] = Bindings(
        AGENT,
        "get_dhcp-agents",
        t.network_dhcp_agents,
        "network_id",
        "agent_id",
        _exists_or(t.networks, lambda i: errors.NetworkNotFound(net_id=i)),
        lambda: agents,
    )
    subresources[("routers", "l3-agents")] = Bindings(
        AGENT,
        "get_l3-agents",
        t.router_l3_agents,
        "router_id",
        "agent_id",
        _exists_or(t.routers, lambda i: errors.RouterNotFound(router_id=i)),
        lambda: agents,
    )


__all__ = ["AVAILABILITY_ZONE", "AgentService", "AvailabilityZoneService", "Bindings", "parse_report", "register"]
