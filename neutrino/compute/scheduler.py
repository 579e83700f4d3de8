"""Placing servers on compute hosts.

A host is a candidate when it runs a compute agent (agents row with
``agent_type`` "Compute agent") that is admin-up and alive (heartbeat within
``[DEFAULT] agent_down_time``).  The least loaded candidate wins: fewest
servers placed on it that are not in ERROR (counted in the database, so
placements not yet reported by the agent count), then the fewest instances
the agent itself reports (``configurations.instances``), then the host name.
An agent may cap its host with ``configurations.max_instances``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from neutrino.db import tables as t

COMPUTE_AGENT = "Compute agent"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
#: Server statuses that occupy a host.
_PLACED = ("BUILD", "ACTIVE", "SHUTOFF")


def _int(v: Any, default: int | None) -> int | None:
    try:
        return int(v) if v is not None and not isinstance(v, bool) else default
    except (TypeError, ValueError):
        return default


def live_agents(conn: Connection, agent_down_time: int, now: float | None = None) -> list[Any]:
    now = time.time() if now is None else now
    rows = conn.execute(select(t.agents).where(t.agents.c.agent_type == COMPUTE_AGENT)).all()
    return [r for r in rows if r.admin_state_up and now - r.heartbeat_at <= agent_down_time]


def host_is_up(conn: Connection, host: str, agent_down_time: int, now: float | None = None) -> bool:
    return any(a.host == host for a in live_agents(conn, agent_down_time, now))


def load(conn: Connection) -> dict[str, int]:
    """Servers per host that occupy it."""
    q = (
        select(t.servers.c.host, func.count())
        .where(t.servers.c.host.is_not(None), t.servers.c.status.in_(_PLACED))
        .group_by(t.servers.c.host)
    )
    return {h: n for h, n in conn.execute(q)}


def pick_host(
    conn: Connection,
    agent_down_time: int,
    *,
    forced: str | None = None,
    now: float | None = None,
    extra: dict[str, int] | None = None,
) -> str | None:
    """The host for one more server, or None when no host can take it.

    ``forced`` restricts the choice to that host (admin ``nova:HOST``);
    ``extra`` counts placements made earlier in the same request.
    """
    placed = load(conn)
    for h, n in (extra or {}).items():
        placed[h] = placed.get(h, 0) + n
    best: tuple[int, int, str] | None = None
    for a in live_agents(conn, agent_down_time, now):
        if forced is not None and a.host != forced:
            continue
        conf = a.configurations or {}
        n = placed.get(a.host, 0)
        cap = _int(conf.get("max_instances"), None)
        if cap is not None and n >= cap:
            continue
        key = (n, _int(conf.get("instances"), 0) or 0, a.host)
        if best is None or key < best:
            best = key
    return best[2] if best else None
