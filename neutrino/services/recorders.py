"""The feed recorders: for each feed type another service changes indirectly, what puts the
admin view of its objects on the change feed (``neutrino.services.common.Deps.record``).

A service that changes what another resource shows (the DHCP scheduler a network's
availability zones, RBAC a network's or a pool's ``shared``, a subnet pool the address
scope of its networks, a trunk its parent port's ``trunk_details``, a port's deletion
its floating IPs' association) cannot import that resource's module: the module imports
its own.  It calls ``deps.record(uow, feed_type, ids)`` instead, and ``register`` --
called once by ``neutrino.api.factory.make_network_api`` after every service is
registered -- says who records each type.  This module sits above the resource
services and is imported by the factory only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection

from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.services.common import Deps, Recorder
from neutrino.services.ports import PortService
from neutrino.services.security_groups import record_group


class _Readable(Protocol):
    """A resource service's read of one object (``get``), as every one has."""

    def get(self, ctx: RequestContext, conn: Connection, obj_id: str, /) -> Any: ...


def register(deps: Deps, services: Mapping[str, Any]) -> None:
    """Fill ``deps.recorders`` from the registered services (``networks``, ``ports``,
    ``subnetpools``, ``address-scopes``, ``floatingips``) and the security groups' own recorder."""
    deps.recorders.update(
        {
            "network": _by_get(services["networks"], "network"),
            "port": _ports(services["ports"]),
            "security_group": _groups,
            "subnetpool": _by_get(services["subnetpools"], "subnetpool"),
            "address_scope": _by_get(services["address-scopes"], "address_scope"),
            "floatingip": _by_get(services["floatingips"], "floatingip"),
        }
    )


def _by_get(svc: _Readable, feed_type: str) -> Recorder:
    """Records each object as ``svc.get`` shows it to an admin."""

    def record(uow: UnitOfWork, ids: Sequence[str]) -> None:
        for obj_id in ids:
            body = svc.get(RequestContext.admin(), uow.conn, obj_id)
            uow.changed(feed_type, obj_id, "update", body, body["project_id"])

    return record


def _ports(svc: PortService) -> Recorder:
    """Records ports built from their rows (``PortService.dicts``, not its read cache)."""

    def record(uow: UnitOfWork, ids: Sequence[str]) -> None:
        rows = [uow.conn.execute(select(t.ports).where(t.ports.c.id == pid)).one() for pid in ids]
        for d in svc.dicts(uow.conn, rows):
            uow.changed("port", d["id"], "update", d, d["project_id"])

    return record


def _groups(uow: UnitOfWork, ids: Sequence[str]) -> None:
    """Records security groups with their rules listed (``security_groups.record_group``)."""
    for sg_id in ids:
        record_group(uow, sg_id)


__all__ = ["register"]
