"""Floating IP status reported by L3 agents (Neutron's ``update_floatingip_statuses``).

``POST /neutrino/v1/floatingips/status`` body
``{"host": H, "floatingips": {<fip id>: "ACTIVE"|"DOWN"|"ERROR"}}``: an L3
agent on host H may set the status of floating IPs whose router
(``router_id``) is scheduled to an L3 agent on H
(``neutrino.services.l3_scheduler``).  Each change bumps the floating IP's
revision and goes on the change feed as a ``floatingip`` update.  Answer:
``{"changed": [ids], "ignored": [ids not found / not on H]}``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from neutrino import errors
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.services.common import Deps
from neutrino.services.floatingips import FloatingIPService
from neutrino.services.l3_scheduler import routers_on_host

STATUSES = ("ACTIVE", "DOWN", "ERROR")


def set_statuses(deps: Deps, uow: UnitOfWork, body: Any) -> dict[str, Any]:
    """Apply ``{"host": H, "floatingips": {id: status}}``; returns what changed and what was ignored."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("floatingips"), dict)
        or not isinstance(body.get("host"), str)
        or not body["host"]
    ):
        raise errors.bad("Body must be {\"host\": <host>, \"floatingips\": {<floating IP id>: <status>}}")
    host, wanted = body["host"], body["floatingips"]
    bad = [s for s in wanted.values() if s not in STATUSES]
    if bad:
        raise errors.bad(f"Invalid floating IP status {bad[0]!r}; valid: {', '.join(STATUSES)}")
    if not wanted:
        return {"changed": [], "ignored": []}
    conn = uow.conn
    mine = routers_on_host(conn, host)
    rows = [
        r
        for r in conn.execute(
            select(t.floatingips.c.id, t.floatingips.c.status, t.floatingips.c.router_id)
            .where(t.floatingips.c.id.in_(list(wanted)))
            .order_by(t.floatingips.c.id)
        )
        if r.router_id in mine
    ]
    svc = FloatingIPService(deps)
    changed = []
    for r in rows:
        if r.status != wanted[r.id]:
            svc.touch(uow, r.id, {"status": wanted[r.id]})
            changed.append(r.id)
    found = {r.id for r in rows}
    return {"changed": changed, "ignored": [f for f in wanted if f not in found]}


__all__ = ["STATUSES", "set_statuses"]
