"""Trunks (``trunk``, ``trunk-details``): VLAN-aware instances.

Contracts (Neutron's trunk plugin with its Open vSwitch driver):

* A trunk has one *parent* port (the port an instance is booted on) and
  subports, each ``{port_id, segmentation_type: "vlan", segmentation_id:
  1..4094}``.  Visible to admins and its own project (else 404
  TrunkNotFound).  Every port named must be visible to the caller (else 404
  PortNotFound) and, for a caller without the admin role, belong to the
  trunk's project (404 PortNotFound too: the caller learns nothing of other
  projects' ports).
* Parent: a port that is already a trunk's parent is 409 TrunkPortInUse; a
  subport is 409 ParentPortInUse.  Bound parents are fine (the OVS driver
  trunks bound ports), so ``TrunkInUse`` is never raised.
* Subports (create and ``add_subports``): body validation as neutron-lib's
  ``type:subports`` (400); ``segmentation_type`` other than ``vlan`` or an id
  out of 1..4094 is 400; a trunk's parent (this trunk's or another's) is 409
  TrunkPortInUse; a port with a ``device_id`` (an instance's, or another
  trunk's subport) is 409 PortInUse; a segmentation already used on the trunk
  is 409 DuplicateSubPort; a subport whose network MTU exceeds the parent's
  is 409 SubPortMtuGreaterThanTrunkPortMtu.  A subport gets ``device_owner``
  ``trunk:subport``, ``device_id`` the trunk id, and the parent's binding
  host; removing it clears the three.  Unknown subport on ``remove_subports``:
  404 SubPortNotFound.
* ``add_subports``, ``remove_subports`` and delete need the trunk admin-up
  (409 TrunkDisabled); nothing is allowed on a trunk in ``ERROR`` (409
  TrunkInErrorState).  Deleting a trunk releases its subports.
* Status: ``DOWN`` until the parent port is ``ACTIVE``; then ``ACTIVE`` when
  every subport is, ``DEGRADED`` when one is ``ERROR``, ``BUILD`` while some
  are not wired yet.  Recomputed when agents report port status
  (``refresh_status``) and on every subport change.
* The parent port shows ``trunk_details`` (``trunk_details``); every trunk
  change bumps the parent port's revision, so its cached dict and its feed
  record (which the OVS agent wires from) follow.  Trunks are on the feed as
  ``trunk``.
* The ports API refuses to delete a parent (409 PortInUseAsTrunkParent) or
  a subport (409 PortInUseAsSubPort): ``check_port_delete``.
"""

from __future__ import annotations

import builtins  # the services' ``list`` method hides the builtin in their class bodies
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import and_, delete, insert, select, true
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.resources import policy
from neutrino.resources.definitions import TRUNK
from neutrino.resources.definitions import subports as parse_subports
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import Port, PortUpdate, SubPort, Trunk, TrunkCreate, TrunkDetails, TrunkUpdate
from neutrino.services import common
from neutrino.services.common import Deps
from neutrino.services.networks import network_target

SUBPORT_OWNER = "trunk:subport"
SEGMENTATION_TYPES = ("vlan",)
MIN_VLAN, MAX_VLAN = 1, 4094


def subports_of(conn: Connection, trunk_ids: list[str]) -> dict[str, list[Any]]:
    """trunk id -> its subport rows, by segmentation id."""
    out: dict[str, list[Any]] = {tid: [] for tid in trunk_ids}
    if trunk_ids:
        q = select(t.subports).order_by(t.subports.c.segmentation_type, t.subports.c.segmentation_id)
        if len(trunk_ids) <= 400:
            q = q.where(t.subports.c.trunk_id.in_(trunk_ids))
        for r in conn.execute(q):
            if r.trunk_id in out:
                out[r.trunk_id].append(r)
    return out


def trunk_details(conn: Connection, port_ids: list[str]) -> dict[str, TrunkDetails]:
    """parent port id -> its ``trunk_details`` (only for ports that are a trunk's parent)."""
    if not port_ids:
        return {}
    q = select(t.trunks.c.id, t.trunks.c.port_id)
    if len(port_ids) <= 400:
        q = q.where(t.trunks.c.port_id.in_(port_ids))
    wanted = set(port_ids)
    parents = {r.port_id: r.id for r in conn.execute(q) if r.port_id in wanted}
    if not parents:
        return {}
    subs = subports_of(conn, list(parents.values()))
    sub_ids = [s.port_id for rows in subs.values() for s in rows]
    macs = (
        {r[0]: r[1] for r in conn.execute(select(t.ports.c.id, t.ports.c.mac_address).where(t.ports.c.id.in_(sub_ids)))}
        if sub_ids
        else {}
    )
    return {
        pid: {
            "trunk_id": tid,
            "sub_ports": [
                {
                    "segmentation_id": s.segmentation_id,
                    "segmentation_type": s.segmentation_type,
                    "port_id": s.port_id,
                    "mac_address": macs.get(s.port_id),
                }
                for s in subs[tid]
            ],
        }
        for pid, tid in parents.items()
    }


def check_port_delete(conn: Connection, port_id: str) -> None:
    """The ports API may not delete a trunk's parent or subport (409)."""
    tid = conn.execute(select(t.trunks.c.id).where(t.trunks.c.port_id == port_id)).scalar()
    if tid is not None:
        raise errors.PortInUseAsTrunkParent(port_id=port_id, trunk_id=tid)
    tid = conn.execute(select(t.subports.c.trunk_id).where(t.subports.c.port_id == port_id)).scalar()
    if tid is not None:
        raise errors.PortInUseAsSubPort(port_id=port_id, trunk_id=tid)


def _status(parent: str, subs: Iterable[str]) -> str:
    """A trunk's status from its ports' (see the module docstring)."""
    subs = list(subs)
    if parent == "ERROR":
        return "ERROR"
    if parent != "ACTIVE":
        return "DOWN"
    if any(s == "ERROR" for s in subs):
        return "DEGRADED"
    if all(s == "ACTIVE" for s in subs):
        return "ACTIVE"
    return "BUILD"


class PortWriter(Protocol):
    """What trunks need of the port service: ``neutrino.services.ports.PortService``, given to
    ``TrunkService`` by ``register`` (that module imports this one for ``trunk_details``)."""

    deps: Deps

    def fetch_row(self, ctx: RequestContext, conn: Connection, port_id: str) -> Any: ...

    def dicts(self, conn: Connection, rows: builtins.list[Any]) -> builtins.list[Port]: ...

    def apply_update(
        self, uow: UnitOfWork, row: Any, net: Any, current: Port, changes: PortUpdate, *, admin: bool = True
    ) -> Port: ...


class TrunkService:
    resource = TRUNK

    def __init__(self, deps: Deps, ports: PortWriter) -> None:
        self.deps = deps
        self.ports = ports
        self.member_actions = {"add_subports": self.add_subports, "remove_subports": self.remove_subports}
        #: GET member actions (``GET /v2.0/trunks/{id}/get_subports``).
        self.member_reads = {"get_subports": self.get_subports}

    # --- reading ----------------------------------------------------------------------------
    @staticmethod
    def _visible(ctx: RequestContext) -> Any:
        return true() if ctx.is_admin or ctx.is_service else t.trunks.c.project_id == ctx.project_id

    def fetch_row(self, ctx: RequestContext, conn: Connection, trunk_id: str) -> Any:
        row = conn.execute(select(t.trunks).where(and_(t.trunks.c.id == trunk_id, self._visible(ctx)))).first()
        if row is None:
            raise errors.TrunkNotFound(trunk_id=trunk_id)
        return row

    def dicts(self, conn: Connection, rows: list[Any]) -> list[Trunk]:
        return trunk_dicts(conn, rows)

    def get(self, ctx: RequestContext, conn: Connection, trunk_id: str) -> Trunk:
        row = self.fetch_row(ctx, conn, trunk_id)
        policy.enforce(ctx, "get_trunk", {"project_id": row.project_id})
        return self.dicts(conn, [row])[0]

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[Trunk], set[str]]:
        stmt, pushed = common.push_filters(select(t.trunks).where(self._visible(ctx)), t.trunks, TRUNK, q)
        rows = list(conn.execute(stmt.order_by(t.trunks.c.created_at, t.trunks.c.id)))
        return self.dicts(conn, rows), pushed

    def get_subports(self, ctx: RequestContext, conn: Connection, trunk_id: str) -> dict[str, builtins.list[SubPort]]:
        """``GET /v2.0/trunks/{id}/get_subports`` -> ``{"sub_ports": [...]}``."""
        row = self.fetch_row(ctx, conn, trunk_id)
        policy.enforce(ctx, "get_subports", {"project_id": row.project_id})
        return {"sub_ports": [_subport_dict(s) for s in subports_of(conn, [row.id])[row.id]]}

    # --- writing ----------------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: TrunkCreate) -> Trunk:
        conn = uow.conn
        policy.enforce(ctx, "create_trunk", item, attr_rules(TRUNK, "create", item, creating=True))
        parent = self._port(ctx, conn, item["port_id"], item["project_id"])
        if common.exists(conn, t.trunks, t.trunks.c.port_id == parent.id):
            raise errors.TrunkPortInUse(port_id=parent.id)
        if common.exists(conn, t.subports, t.subports.c.port_id == parent.id):
            raise errors.ParentPortInUse(port_id=parent.id)
        vals = common.std_values(item, revision=1)
        wanted = self._check_subports(ctx, conn, vals["id"], parent, item["project_id"], item["sub_ports"])
        conn.execute(
            insert(t.trunks).values(**vals, admin_state_up=item["admin_state_up"], status="DOWN", port_id=parent.id)
        )
        self._attach(uow, vals["id"], parent, wanted)
        return self._changed(uow, vals["id"], "create", parent.id)

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, trunk_id: str, changes: TrunkUpdate, if_match: str | None = None
    ) -> Trunk:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, trunk_id)
        policy.enforce(
            ctx, "update_trunk", {"project_id": row.project_id}, attr_rules(TRUNK, "update", changes, creating=False)
        )
        common.check_if_match(if_match, row.revision_number)
        if row.status == "ERROR":
            raise errors.TrunkInErrorState(trunk_id=row.id)
        values: dict[str, Any] = {  # column -> new value, for one UPDATE
            k: changes[k] for k in ("name", "description", "admin_state_up") if k in changes
        }
        common.bump(conn, t.trunks, row.id, values)
        return self._changed(uow, row.id, "update", None)

    def delete(self, ctx: RequestContext, uow: UnitOfWork, trunk_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, trunk_id)
        policy.enforce(ctx, "delete_trunk", {"project_id": row.project_id})
        common.check_if_match(if_match, row.revision_number)
        self._check_manageable(row)
        self._detach(uow, [s.port_id for s in subports_of(conn, [row.id])[row.id]])
        conn.execute(delete(t.trunks).where(t.trunks.c.id == row.id))
        common.delete_tags(conn, row.id)
        self._touch_parent(uow, row.port_id)
        uow.changed("trunk", row.id, "delete", None, row.project_id)

    def add_subports(self, ctx: RequestContext, uow: UnitOfWork, trunk_id: str, body: Any) -> Trunk:
        """``PUT /v2.0/trunks/{id}/add_subports`` ``{"sub_ports": [...]}`` -> the trunk (no envelope)."""
        conn = uow.conn
        row = self.fetch_row(ctx, conn, trunk_id)
        policy.enforce(ctx, "add_subports", {"project_id": row.project_id})
        given = _body_subports(body)
        self._check_manageable(row)
        parent = conn.execute(select(t.ports).where(t.ports.c.id == row.port_id)).one()
        wanted = self._check_subports(ctx, conn, row.id, parent, row.project_id, given)
        self._attach(uow, row.id, parent, wanted)
        common.bump(conn, t.trunks, row.id)
        return self._changed(uow, row.id, "update", parent.id)

    def remove_subports(self, ctx: RequestContext, uow: UnitOfWork, trunk_id: str, body: Any) -> Trunk:
        """``PUT /v2.0/trunks/{id}/remove_subports`` ``{"sub_ports": [{"port_id": ...}]}`` -> the trunk."""
        conn = uow.conn
        row = self.fetch_row(ctx, conn, trunk_id)
        policy.enforce(ctx, "remove_subports", {"project_id": row.project_id})
        given = _body_subports(body)
        self._check_manageable(row)
        current = {s.port_id for s in subports_of(conn, [row.id])[row.id]}
        for sp in given:
            if sp["port_id"] not in current:
                raise errors.SubPortNotFound(trunk_id=row.id, port_id=sp["port_id"])
        self._detach(uow, [sp["port_id"] for sp in given])
        common.bump(conn, t.trunks, row.id)
        return self._changed(uow, row.id, "update", row.port_id)

    # --- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _check_manageable(row: Any) -> None:
        if row.status == "ERROR":
            raise errors.TrunkInErrorState(trunk_id=row.id)
        if not row.admin_state_up:
            raise errors.TrunkDisabled(trunk_id=row.id)

    def _port(self, ctx: RequestContext, conn: Connection, port_id: str, project_id: str) -> Any:
        """A port the caller may put in a trunk of ``project_id`` (else 404 PortNotFound)."""
        row = self.ports.fetch_row(ctx, conn, port_id)
        if not (ctx.is_admin or ctx.is_service) and row.project_id != project_id:
            raise errors.PortNotFound(port_id=port_id)
        return row

    def _check_subports(
        self,
        ctx: RequestContext,
        conn: Connection,
        trunk_id: str,
        parent: Any,
        project_id: str,
        given: builtins.list[dict[str, Any]],  # request entries: this checks their keys (400 if missing)
    ) -> builtins.list[tuple[Any, dict[str, Any]]]:
        """(port row, subport) of each requested subport, checked in Neutron's order."""
        mtus = {r[0]: r[1] for r in conn.execute(select(t.networks.c.id, t.networks.c.mtu))}
        used = {(s.segmentation_type, s.segmentation_id) for s in subports_of(conn, [trunk_id])[trunk_id]}
        out = []
        for sp in given:
            if "segmentation_type" not in sp:
                raise errors.invalid(
                    f"Invalid subport details '{sp}': missing segmentation information. Must "
                    f"specify both segmentation_id and segmentation_type"
                )
            if sp["segmentation_type"] not in SEGMENTATION_TYPES:
                raise errors.invalid(f"Unknown segmentation_type '{sp['segmentation_type']}'")
            if not MIN_VLAN <= sp["segmentation_id"] <= MAX_VLAN:
                raise errors.invalid(f"Segmentation ID '{sp['segmentation_id']}' is not in range")
        for sp in given:
            port = self._port(ctx, conn, sp["port_id"], project_id)
            if port.id == parent.id or common.exists(conn, t.trunks, t.trunks.c.port_id == port.id):
                raise errors.TrunkPortInUse(port_id=port.id)
            if port.device_id:
                raise errors.PortInUse(port_id=port.id, net_id=port.network_id, device_id=port.device_id)
            key = (sp["segmentation_type"], sp["segmentation_id"])
            if key in used:
                raise errors.DuplicateSubPort(segmentation_type=key[0], segmentation_id=key[1], trunk_id=trunk_id)
            if (mtus.get(port.network_id) or 0) > (mtus.get(parent.network_id) or 0):
                raise errors.SubPortMtuGreaterThanTrunkPortMtu(
                    port_id=port.id,
                    port_mtu=mtus.get(port.network_id),
                    trunk_id=trunk_id,
                    trunk_mtu=mtus.get(parent.network_id),
                )
            out.append((port, sp))
        return out

    def _attach(
        self, uow: UnitOfWork, trunk_id: str, parent: Any, wanted: builtins.list[tuple[Any, dict[str, Any]]]
    ) -> None:
        """Record the subports and make each port the trunk's (owner, device, the parent's host)."""
        conn = uow.conn
        if not wanted:
            return
        conn.execute(
            insert(t.subports),
            [
                {
                    "port_id": p.id,
                    "trunk_id": trunk_id,
                    "segmentation_type": sp["segmentation_type"],
                    "segmentation_id": sp["segmentation_id"],
                }
                for p, sp in wanted
            ],
        )
        for port, _ in wanted:
            self._set_port(
                uow,
                port.id,
                {"device_owner": SUBPORT_OWNER, "device_id": trunk_id, "binding:host_id": parent.binding_host_id},
            )

    def _detach(self, uow: UnitOfWork, port_ids: builtins.list[str]) -> None:
        """Forget these subports and hand their ports back (no owner, no device, unbound)."""
        conn = uow.conn
        if not port_ids:
            return
        conn.execute(delete(t.subports).where(t.subports.c.port_id.in_(port_ids)))
        for pid in port_ids:
            self._set_port(uow, pid, {"device_owner": "", "device_id": "", "binding:host_id": ""})

    def _set_port(self, uow: UnitOfWork, port_id: str, changes: PortUpdate) -> None:
        conn = uow.conn
        row = conn.execute(select(t.ports).where(t.ports.c.id == port_id)).one()
        net = network_target(conn, row.network_id)
        current = self.ports.dicts(conn, [row])[0]
        self.ports.apply_update(uow, row, net, current, changes)

    def _touch_parent(self, uow: UnitOfWork, port_id: str) -> None:
        """Re-record the parent port: its ``trunk_details`` changed."""
        if common.exists(uow.conn, t.ports, t.ports.c.id == port_id):
            common.bump(uow.conn, t.ports, port_id)
            self.deps.record(uow, "port", [port_id])  # recorders.register

    def _changed(self, uow: UnitOfWork, trunk_id: str, action: str, parent_id: str | None) -> Trunk:
        refresh_status(uow, [trunk_id], record=False)
        if parent_id is not None:
            self._touch_parent(uow, parent_id)
        row = uow.conn.execute(select(t.trunks).where(t.trunks.c.id == trunk_id)).one()
        out = self.dicts(uow.conn, [row])[0]
        uow.changed("trunk", trunk_id, action, out, row.project_id)
        return out


def trunk_dicts(conn: Connection, rows: list[Any]) -> list[Trunk]:
    """Response dicts of these trunk rows."""
    ids = [r.id for r in rows]
    subs = subports_of(conn, ids)
    tags = common.load_tags(conn, "trunks", ids)
    return [
        {
            "id": r.id,
            "name": r.name,
            "tenant_id": r.project_id,
            "admin_state_up": r.admin_state_up,
            "status": r.status,
            "port_id": r.port_id,
            "sub_ports": [_subport_dict(s) for s in subs[r.id]],
            **common.std_tail(r, tags.get(r.id, [])),
            "project_id": r.project_id,
        }
        for r in rows
    ]


def _subport_dict(s: Any) -> SubPort:
    return {"segmentation_id": s.segmentation_id, "segmentation_type": s.segmentation_type, "port_id": s.port_id}


def _body_subports(body: Any) -> list[dict[str, Any]]:
    """The ``sub_ports`` of an add/remove_subports body, validated (400 as Neutron)."""
    if not isinstance(body, dict) or "sub_ports" not in body:
        raise errors.bad("Unable to find 'sub_ports' in request body")
    try:
        return parse_subports(body["sub_ports"])
    except ValueError as exc:
        raise errors.bad(f"Invalid input for sub_ports. Reason: {str(exc).rstrip('.')}.") from None


def refresh_status(uow: UnitOfWork, trunk_ids: list[str], *, record: bool = True) -> None:
    """Recompute the status of these trunks from their ports'; bump and (``record``) re-record
    those that changed."""
    conn = uow.conn
    if not trunk_ids:
        return
    rows = list(conn.execute(select(t.trunks).where(t.trunks.c.id.in_(trunk_ids))))
    subs = subports_of(conn, [r.id for r in rows])
    port_ids = [r.port_id for r in rows] + [s.port_id for ss in subs.values() for s in ss]
    status = {
        r[0]: r[1] for r in conn.execute(select(t.ports.c.id, t.ports.c.status).where(t.ports.c.id.in_(port_ids)))
    }
    for r in rows:
        new = _status(status.get(r.port_id, "DOWN"), (status.get(s.port_id, "DOWN") for s in subs[r.id]))
        if new != r.status:
            common.bump(conn, t.trunks, r.id, {"status": new})
            if record:
                fresh = conn.execute(select(t.trunks).where(t.trunks.c.id == r.id)).one()
                uow.changed("trunk", r.id, "update", trunk_dicts(conn, [fresh])[0], r.project_id)


def trunks_of_ports(conn: Connection, port_ids: list[str]) -> list[str]:
    """Ids of the trunks these ports are the parent or a subport of."""
    if not port_ids:
        return []
    ids = {r[0] for r in conn.execute(select(t.trunks.c.id).where(t.trunks.c.port_id.in_(port_ids)))}
    ids |= {r[0] for r in conn.execute(select(t.subports.c.trunk_id).where(t.subports.c.port_id.in_(port_ids)))}
    return sorted(ids)


def on_ports_status(uow: UnitOfWork, port_ids: list[str]) -> None:
    """Port statuses changed (agent reports): follow with the trunks they belong to."""
    refresh_status(uow, trunks_of_ports(uow.conn, port_ids))


def on_parent_rebound(ports: PortWriter, uow: UnitOfWork, port_id: str, host: str) -> None:
    """A port's binding host changed (``ports`` changed it): when it is a trunk's parent, its
    subports follow it (the agent of that host wires them through the parent)."""
    conn = uow.conn
    tid = conn.execute(select(t.trunks.c.id).where(t.trunks.c.port_id == port_id)).scalar()
    if tid is None:
        return
    svc = TrunkService(ports.deps, ports)
    for s in subports_of(conn, [tid])[tid]:
        svc._set_port(uow, s.port_id, {"binding:host_id": host})


def register(deps: Deps, services: dict[str, Any]) -> None:
    """Add ``trunks``, given the registered ``ports`` service (a ``PortWriter``; its cache is shared)."""
    services["trunks"] = TrunkService(deps, services["ports"])


__all__ = [
    "PortWriter",
    "TrunkService",
    "check_port_delete",
    "on_parent_rebound",
    "on_ports_status",
    "refresh_status",
    "register",
    "trunk_details",
]
