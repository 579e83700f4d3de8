"""Port forwardings: ``/v2.0/floatingips/{fip}/port_forwardings[/{id}]``.

Contracts (Neutron's ``floating-ip-port-forwarding`` plugin, with
descriptions and port ranges):

* The parent floating IP decides everything: invisible -> 404
  FloatingIPNotFound; the ``*_floatingip_port_forwarding`` rules are checked
  against its owner.  A forwarding of another floating IP -> 404
  PortForwardingNotFound.
* ``protocol`` is tcp|udp; internal side ``internal_port`` or
  ``internal_port_range`` ("a:b"), external side likewise; ranges must be
  N-N or 1-N.  ``internal_ip_address`` must be an IPv4 fixed IP of
  ``internal_port_id``, whose subnet a router connects to the floating
  network.  Overlapping ranges on the same floating IP/protocol, or on the
  same internal address/protocol -> 400 (Neutron raises BadRequest).
* ``internal_port_id`` must name a port the caller may see (else 404
  PortNotFound, on create and update), checked before anything else about
  that port: the other checks' messages would describe another project's
  port (its floating IP, its forwardings).
* A floating IP with a ``port_id`` cannot get forwardings (409
  FloatingIPPortAlreadyAssociated), nor can a port that has a floating IP
  (409 PortHasBindingFloatingIP).  The first forwarding sets the floating
  IP's ``router_id``; deleting the last one clears it.
* Responses: ``id, external_port, protocol, internal_port_id,
  internal_ip_address, internal_port, description, external_port_range,
  internal_port_range`` (single ports also show as "p:p" ranges; ranges
  show null single ports).  Changes are recorded as ``port_forwarding``
  (body: that dict plus ``floatingip_id``) and the parent floating IP's
  ``update``.
"""

from __future__ import annotations

import builtins  # the service's ``list`` method hides the builtin in its class body
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.resources import policy
from neutrino.resources.definitions import PORT_FORWARDING
from neutrino.resources.query import ListQuery
from neutrino.resources.types import PortForwarding, PortForwardingCreate, PortForwardingUpdate
from neutrino.services import common
from neutrino.services.common import Deps
from neutrino.services.floatingips import FloatingIPService, find_router_for_fip, is_v4
from neutrino.services.routers import port_addresses

#: Filters Neutron refuses on this collection.
UNSUPPORTED_FILTERS = ("internal_ip_address", "internal_port")
Span = tuple[int, int]


def pf_bad(msg: str) -> errors.BadRequest:
    """``Bad port_forwarding request: <msg>.``"""
    return errors.BadRequest(resource="port_forwarding", msg=msg)


def pf_dict(pf: Any) -> PortForwarding:
    int_single = pf.internal_port_start == pf.internal_port_end
    ext_single = pf.external_port_start == pf.external_port_end
    return {
        "id": pf.id,
        "external_port": pf.external_port_start if ext_single else None,
        "protocol": pf.protocol,
        "internal_port_id": pf.internal_port_id,
        "internal_ip_address": pf.internal_ip_address,
        "internal_port": pf.internal_port_start if int_single else None,
        "description": pf.description,
        "external_port_range": f"{pf.external_port_start}:{pf.external_port_end}",
        "internal_port_range": f"{pf.internal_port_start}:{pf.internal_port_end}",
    }


def _span(single: int | None, text: str | None) -> tuple[Span, str] | None:
    """(bounds, how Neutron prints them) of a side given as a port or a range."""
    if text is not None:
        lo, _, hi = text.partition(":")
        return (int(lo), int(hi or lo)), text
    if single is not None:
        return (single, single), f"{single}:{single}"
    return None


def _side(req: Mapping[str, Any], name: str, current: tuple[Span, str] | None) -> tuple[Span, str]:
    single, text = req.get(f"{name}_port"), req.get(f"{name}_port_range")
    if single is not None and text is not None:
        raise pf_bad(f"{name}_port and {name}_port_range cannot be specified together")
    got = _span(single, text) or current
    if got is None:
        raise pf_bad(f"Either {name}_port or {name}_port_range must be specified")
    if not all(1 <= p <= 65535 for p in got[0]):
        raise pf_bad("Invalid port value, the port value must be a value between 1 and 65535.")
    return got


def _fixed_ips_text(addrs: list[tuple[str, str]]) -> str:
    return str([{"subnet_id": s, "ip_address": ip} for s, ip in addrs])


class PortForwardingService:
    resource = PORT_FORWARDING

    def __init__(self, deps: Deps, fips: FloatingIPService | None = None) -> None:
        self.deps = deps
        self.fips = fips or FloatingIPService(deps)

    # --- reading ------------------------------------------------------------------------
    @staticmethod
    def _row(conn: Connection, fip_id: str, pf_id: str) -> Any:
        row = conn.execute(
            select(t.port_forwardings).where(
                and_(t.port_forwardings.c.id == pf_id, t.port_forwardings.c.floatingip_id == fip_id)
            )
        ).first()
        if row is None:
            raise errors.PortForwardingNotFound(id=pf_id)
        return row

    def list(
        self, ctx: RequestContext, conn: Connection, parent_id: str, q: ListQuery
    ) -> tuple[builtins.list[PortForwarding], set[str]]:
        self.fips.fetch_row(ctx, conn, parent_id)
        for name in UNSUPPORTED_FILTERS:
            if name in q.filters:
                raise errors.PortForwardingNotSupportFilterField(filter=name)
        rows = conn.execute(
            select(t.port_forwardings)
            .where(t.port_forwardings.c.floatingip_id == parent_id)
            .order_by(t.port_forwardings.c.external_port_start, t.port_forwardings.c.id)
        )
        return [pf_dict(r) for r in rows], set()

    def get(self, ctx: RequestContext, conn: Connection, parent_id: str, pf_id: str) -> PortForwarding:
        self.fips.fetch_row(ctx, conn, parent_id)
        return pf_dict(self._row(conn, parent_id, pf_id))

    # --- writing ----------------------------------------------------------------------------
    def create(
        self, ctx: RequestContext, uow: UnitOfWork, parent_id: str, item: PortForwardingCreate
    ) -> PortForwarding:
        conn = uow.conn
        fip = self.fips.fetch_row(ctx, conn, parent_id)
        policy.enforce(ctx, "create_floatingip_port_forwarding", {"project_id": fip.project_id})
        # A port the caller cannot see is a 404 before any check that would describe it
        # (its floating IP, its other forwardings).
        self.fips.ports.fetch_row(ctx, conn, item["internal_port_id"])
        internal, external = _side(item, "internal", None), _side(item, "external", None)
        self._check_relation(internal[0], external[0])
        pf: dict[str, Any] = dict(item)
        self._check_collisions(conn, fip.id, pf, internal, external, exclude=None)
        self._check_port_has_fip(conn, pf["internal_port_id"], pf["internal_ip_address"])
        if fip.fixed_port_id:
            raise errors.FloatingIPPortAlreadyAssociated(
                port_id=pf["internal_port_id"],
                fip_id=fip.id,
                floating_ip_address=fip.floating_ip_address,
                fixed_ip=pf["internal_ip_address"],
                net_id=fip.floating_network_id,
            )
        router_id = self._router_for(ctx, conn, pf, fip)
        self._check_router_match(conn, fip, router_id, pf, internal[0])
        pf_id = common.new_id()
        conn.execute(
            insert(t.port_forwardings).values(
                id=pf_id,
                floatingip_id=fip.id,
                protocol=pf["protocol"],
                internal_port_id=pf["internal_port_id"],
                internal_ip_address=pf["internal_ip_address"],
                internal_port_start=internal[0][0],
                internal_port_end=internal[0][1],
                external_port_start=external[0][0],
                external_port_end=external[0][1],
                description=pf.get("description") or "",
            )
        )
        self.fips.touch(uow, fip.id, None if fip.router_id else {"router_id": router_id})
        return self._record(uow, fip, pf_id, "create")

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, parent_id: str, pf_id: str, changes: PortForwardingUpdate
    ) -> PortForwarding:
        conn = uow.conn
        fip = self.fips.fetch_row(ctx, conn, parent_id)
        policy.enforce(ctx, "update_floatingip_port_forwarding", {"project_id": fip.project_id})
        row = self._row(conn, fip.id, pf_id)
        req: dict[str, Any] = dict(changes)
        if req.get("internal_port_id"):
            self.fips.ports.fetch_row(ctx, conn, req["internal_port_id"])  # hidden: 404 first (as create)
            self._check_port_has_fip(
                conn, req["internal_port_id"], req.get("internal_ip_address") or row.internal_ip_address
            )
        current_int = (
            (row.internal_port_start, row.internal_port_end),
            f"{row.internal_port_start}:{row.internal_port_end}",
        )
        current_ext = (
            (row.external_port_start, row.external_port_end),
            f"{row.external_port_start}:{row.external_port_end}",
        )
        internal, external = _side(req, "internal", current_int), _side(req, "external", current_ext)
        self._check_relation(internal[0], external[0])
        if req.get("internal_port_id") and req["internal_port_id"] != row.internal_port_id:
            router_id = self._router_for(ctx, conn, req, fip)
            self._check_router_match(
                conn, fip, router_id, {**req, "internal_port_id": req["internal_port_id"]}, internal[0]
            )
        pf = {
            "protocol": req.get("protocol") or row.protocol,
            "internal_port_id": req.get("internal_port_id") or row.internal_port_id,
            "internal_ip_address": req.get("internal_ip_address") or row.internal_ip_address,
        }
        self._check_update(conn, fip, pf_id, pf, internal[0], external[0])
        if any(k in changes for k in ("internal_port", "internal_port_range", "external_port", "external_port_range")):
            self._check_collisions(conn, fip.id, pf, internal, external, exclude=pf_id)
        values = dict(
            pf,
            internal_port_start=internal[0][0],
            internal_port_end=internal[0][1],
            external_port_start=external[0][0],
            external_port_end=external[0][1],
        )
        if "description" in changes:
            values["description"] = changes["description"] or ""
        conn.execute(update(t.port_forwardings).where(t.port_forwardings.c.id == pf_id).values(**values))
        self.fips.touch(uow, fip.id)
        return self._record(uow, fip, pf_id, "update")

    def delete(self, ctx: RequestContext, uow: UnitOfWork, parent_id: str, pf_id: str) -> None:
        conn = uow.conn
        fip = self.fips.fetch_row(ctx, conn, parent_id)
        policy.enforce(ctx, "delete_floatingip_port_forwarding", {"project_id": fip.project_id})
        self._row(conn, fip.id, pf_id)
        remove_forwardings(self.fips, uow, [pf_id])

    def _record(self, uow: UnitOfWork, fip: Any, pf_id: str, action: str) -> PortForwarding:
        row = uow.conn.execute(select(t.port_forwardings).where(t.port_forwardings.c.id == pf_id)).one()
        out = pf_dict(row)
        body: dict[str, Any] = {**out, "floatingip_id": fip.id}  # the feed's view names its floating IP
        uow.changed("port_forwarding", pf_id, action, body, fip.project_id)
        return out

    # --- checks (in Neutron's order) -------------------------------------------------------------
    @staticmethod
    def _check_relation(internal: Span, external: Span) -> None:
        int_len, ext_len = internal[1] - internal[0], external[1] - external[0]
        if int_len > 0 and int_len != ext_len:
            raise pf_bad(
                "Invalid ranges of internal and/or external ports. The relation between internal and "
                "external ports must be N-N or 1-N"
            )

    @staticmethod
    def _check_collisions(
        conn: Connection,
        fip_id: str,
        pf: dict[str, Any],
        internal: tuple[Span, str],
        external: tuple[Span, str],
        exclude: str | None,
    ) -> None:
        c = t.port_forwardings.c
        checks = (
            (
                "internal_port_range",
                internal,
                and_(
                    c.internal_port_id == pf["internal_port_id"],
                    c.protocol == pf["protocol"],
                    c.internal_ip_address == pf["internal_ip_address"],
                ),
                c.internal_port_start,
                c.internal_port_end,
            ),
            (
                "external_port_range",
                external,
                and_(c.floatingip_id == fip_id, c.protocol == pf["protocol"]),
                c.external_port_start,
                c.external_port_end,
            ),
        )
        for key, (span, text), cond, start, end in checks:
            for other in conn.execute(select(c.id, start, end).where(cond).order_by(c.id)):
                if other.id != exclude and max(span[0], other[1]) <= min(span[1], other[2]):
                    raise pf_bad(
                        f"There is a port collision with the {key}. The following ranges collides: "
                        f"{other[1]}:{other[2]} and {text}"
                    )

    @staticmethod
    def _check_port_has_fip(conn: Connection, port_id: str, fixed_ip: str) -> None:
        bound = conn.execute(
            select(t.floatingips).where(t.floatingips.c.fixed_port_id == port_id).order_by(t.floatingips.c.created_at)
        ).first()
        if bound is not None:
            raise errors.PortHasBindingFloatingIP(
                floating_ip_address=bound.floating_ip_address, fip_id=bound.id, port_id=port_id, fixed_ip=fixed_ip
            )

    def _router_for(self, ctx: RequestContext, conn: Connection, pf: dict[str, Any], fip: Any) -> str:
        """The router serving ``pf``; fills in ``internal_ip_address`` when missing."""
        port = self.fips.ports.fetch_row(ctx, conn, pf["internal_port_id"])
        v4 = [(s, ip) for s, ip in port_addresses(conn, [port.id])[port.id] if is_v4(ip)]
        if not v4:
            raise pf_bad(f"Requested internal port {port.id} must allocate an IPv4 address at least.")
        wanted = pf.get("internal_ip_address")
        if not wanted:
            subnet_id, pf["internal_ip_address"] = v4[0]
        else:
            subnet_id = next((s for s, ip in v4 if ip == wanted), "")
            if not subnet_id:
                raise pf_bad(
                    f"Requested internal IP address {wanted} is not suitable for internal neutron port "
                    f"{port.id}, as its fixed_ips are {_fixed_ips_text(v4)}"
                )
        subnet = conn.execute(select(t.subnets).where(t.subnets.c.id == subnet_id)).one()
        try:
            return find_router_for_fip(conn, port, subnet, fip.floating_network_id)
        except errors.ExternalGatewayForFloatingIPNotFound:
            raise pf_bad(
                f"External network {fip.floating_network_id} is not reachable from subnet {subnet_id}. "
                f"Cannot set Port forwarding for port {port.id} with Floating IP {fip.id}"
            ) from None

    @staticmethod
    def _check_router_match(conn: Connection, fip: Any, router_id: str, pf: dict[str, Any], internal: Span) -> None:
        if not fip.router_id or fip.router_id == router_id:
            return
        c = t.port_forwardings.c
        single = internal[0] if internal[0] == internal[1] else None
        same = conn.execute(
            select(c.id).where(
                and_(
                    c.floatingip_id == fip.id,
                    c.internal_ip_address == pf["internal_ip_address"],
                    c.internal_port_start == single,
                    c.internal_port_end == single,
                )
            )
        ).first()
        if same is not None:
            raise pf_bad(
                f"Floating IP {fip.id} with params: internal_ip_address: {pf['internal_ip_address']}, "
                f"internal_port: {single} already exists"
            )
        raise pf_bad(
            f"The Floating IP {fip.id} had been set on router {fip.router_id}, the internal Neutron port "
            f"{pf['internal_port_id']} can not reach it"
        )

    @staticmethod
    def _check_update(
        conn: Connection, fip: Any, pf_id: str, pf: dict[str, Any], internal: Span, external: Span
    ) -> None:
        addrs = port_addresses(conn, [pf["internal_port_id"]])[pf["internal_port_id"]]
        if pf["internal_ip_address"] not in {ip for _, ip in addrs}:
            raise pf_bad(
                "The internal IP does not correspond to an address on the internal port, which has "
                f"fixed_ips {_fixed_ips_text(addrs)}"
            )
        c = t.port_forwardings.c
        for other in conn.execute(
            select(t.port_forwardings)
            .where(and_(c.floatingip_id == fip.id, c.protocol == pf["protocol"], c.id != pf_id))
            .order_by(c.id)
        ):
            if external[0] == external[1] and (other.external_port_start, other.external_port_end) == external:
                conflict = {"floating_ip_address": fip.floating_ip_address, "external_port": external[0]}
            elif (
                internal[0] == internal[1]
                and other.internal_port_id == pf["internal_port_id"]
                and other.internal_ip_address == pf["internal_ip_address"]
                and (other.internal_port_start, other.internal_port_end) == internal
            ):
                conflict = {
                    "internal_port_id": other.internal_port_id,
                    "internal_ip_address": other.internal_ip_address,
                    "internal_port": internal[0],
                }
            else:
                continue
            raise pf_bad(
                f"Another port forwarding entry with the same attributes already exists, conflicting "
                f"values are {conflict}"
            )


def remove_forwardings(fips: FloatingIPService, uow: UnitOfWork, pf_ids: list[str]) -> None:
    """Delete these forwardings; a floating IP left without any loses its router_id.

    Records the ``port_forwarding`` deletions and the floating IPs' updates.
    """
    conn = uow.conn
    c = t.port_forwardings.c
    rows = list(conn.execute(select(c.id, c.floatingip_id).where(c.id.in_(pf_ids))))
    if not rows:
        return
    conn.execute(delete(t.port_forwardings).where(c.id.in_([r.id for r in rows])))
    for fip_id in sorted({r.floatingip_id for r in rows}):
        left = conn.execute(
            select(func.count()).select_from(t.port_forwardings).where(c.floatingip_id == fip_id)
        ).scalar_one()
        out = fips.touch(uow, fip_id, None if left else {"router_id": None})
        for r in rows:
            if r.floatingip_id == fip_id:
                uow.changed("port_forwarding", r.id, "delete", None, out["project_id"])


def release_port_forwardings(deps: Deps, uow: UnitOfWork, port_id: str, keep_ips: set[str] | None = None) -> None:
    """Hook for port deletion/re-addressing (Neutron's PF port callbacks): drop the
    forwardings to ``port_id`` whose internal address is not in ``keep_ips``."""
    rows = uow.conn.execute(
        select(t.port_forwardings.c.id, t.port_forwardings.c.internal_ip_address).where(
            t.port_forwardings.c.internal_port_id == port_id
        )
    ).all()
    doomed = [r.id for r in rows if keep_ips is None or r.internal_ip_address not in keep_ips]
    if doomed:
        remove_forwardings(FloatingIPService(deps), uow, doomed)
