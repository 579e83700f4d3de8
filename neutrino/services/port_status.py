"""Port status reported by agents (the L2 agent's ``update_device_up/down``).

An agent may set ``ACTIVE``/``DOWN``/``ERROR``/``BUILD`` on ports bound to
its host (``binding:host_id``), or on ports whose device lives on its host
(DHCP and router ports carry the host in ``binding:host_id`` too).  Each
change bumps the port's revision and goes on the change feed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from neutrino import errors
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.services import common
from neutrino.services.common import Deps
from neutrino.services.ports import PortService
from neutrino.services.trunks import on_ports_status

STATUSES = ("ACTIVE", "DOWN", "ERROR", "BUILD")


def set_statuses(deps: Deps, uow: UnitOfWork, body: Any) -> dict[str, Any]:
    """Apply ``{"host": H, "ports": {id: status}}``; returns what changed and what was ignored."""
    if not isinstance(body, dict) or not isinstance(body.get("ports"), dict) or not body.get("host"):
        raise errors.bad("Body must be {\"host\": <host>, \"ports\": {<port id>: <status>}}")
    host, wanted = body["host"], body["ports"]
    bad = [s for s in wanted.values() if s not in STATUSES]
    if bad:
        raise errors.bad(f"Invalid port status {bad[0]!r}; valid: {', '.join(STATUSES)}")
    conn = uow.conn
    rows = conn.execute(
        select(t.ports.c.id, t.ports.c.status, t.ports.c.project_id).where(
            and_(t.ports.c.id.in_(list(wanted)), t.ports.c.binding_host_id == host)
        )
    ).all()
    changed = []
    for r in rows:
        if r.status != wanted[r.id]:
            common.bump(conn, t.ports, r.id, {"status": wanted[r.id]})
            changed.append(r.id)
    if changed:
        svc = PortService(deps)
        for d in svc.dicts(conn, list(conn.execute(select(t.ports).where(t.ports.c.id.in_(changed))))):
            uow.changed("port", d["id"], "update", d, d["project_id"])
        on_ports_status(uow, changed)  # trunks of these ports follow their status
    found = {r.id for r in rows}
    return {"changed": changed, "ignored": [p for p in wanted if p not in found]}
