"""Floating IPs: allocation on an external network and association with ports.

Contracts (Neutron's behaviour):

* A floating IP is visible to admins and its own project; anyone else gets
  ``FloatingIPNotFound`` (404).  ``subnet_id`` is accepted on create but
  never returned.
* Create: ``floating_network_id`` must be visible (404 NetworkNotFound) and
  external (400 "not a valid external network") with an IPv4 subnet; a
  ``network:floatingip`` port (project ``""``, status ``N/A``, device_id =
  the floating IP's id) takes the address, from ``subnet_id`` and/or
  ``floating_ip_address`` when given (the latter needs admin or manager).
  Status starts ``DOWN``; agents change it.
* Association (``port_id`` on create or update): the port's fixed IPv4
  address (``fixed_ip_address``, else its only IPv4 address) must sit on a
  subnet that is an interface of a router whose gateway is on the floating
  network (else 404 ExternalGatewayForFloatingIPNotFound); one floating IP
  per fixed IP and external network (409 FloatingIPPortAlreadyAssociated);
  not while the floating IP has port forwardings (409
  FipInUseByPortForwarding).  ``{"port_id": null}`` disassociates, and so does
  an empty update body (``{"floatingip": {}}``, Neutron's "blank update");
  other attributes without ``port_id`` keep the association.  Asking for the
  association a floating IP already has is a no-op.
* Delete removes the floating IP port (409 while port forwardings exist).
* Every write records a ``floatingip`` change carrying the admin view.
"""

from __future__ import annotations

import builtins  # the service's ``list`` method hides the builtin in its class body
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, true
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.resources import policy
from neutrino.resources.definitions import FLOATINGIP
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import (
    FloatingIp,
    FloatingIpCreate,
    FloatingIpUpdate,
    PortDetails,
    PortForwardingSummary,
)
from neutrino.services import common, quotas
from neutrino.services.common import Deps
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.routers import INTERFACE_OWNERS, ROUTER_GW, port_addresses

FIP_OWNER = "network:floatingip"
DHCP_OWNER = "network:dhcp"


def fip_bad(msg: str) -> errors.BadRequest:
    """``Bad floatingip request: <msg>.``"""
    return errors.BadRequest(resource="floatingip", msg=msg)


def is_v4(address: str) -> bool:
    return ipaddress.ip_address(address).version == 4


@dataclass
class FipState:
    """What association checks need to know about a (possibly not yet stored) floating IP."""

    id: str
    project_id: str
    floating_network_id: str
    floating_ip_address: str
    fixed_port_id: str | None = None
    router_id: str | None = None


def find_router_for_fip(conn: Connection, port: Any, subnet: Any, ext_net_id: str) -> str:
    """The router joining ``subnet`` (an interface) to ``ext_net_id`` (its gateway).

    A router whose interface address is the subnet's gateway IP wins;
    otherwise the oldest match.  None: 404 ExternalGatewayForFloatingIPNotFound.
    """
    # Routers and their ports as the routers recorded them (router_ports), never by device_id.
    intf, gw, ips = t.ports.alias("intf"), t.ports.alias("gw"), t.ip_allocations
    rp_intf, rp_gw = t.router_ports.alias("rp_intf"), t.router_ports.alias("rp_gw")
    rows = conn.execute(
        select(rp_intf.c.router_id, ips.c.ip_address)
        .select_from(
            intf.join(rp_intf, rp_intf.c.port_id == intf.c.id)
            .join(ips, ips.c.port_id == intf.c.id)
            .join(rp_gw, rp_gw.c.router_id == rp_intf.c.router_id)
            .join(gw, gw.c.id == rp_gw.c.port_id)
        )
        .where(
            and_(
                intf.c.network_id == port.network_id,
                intf.c.device_owner.in_(INTERFACE_OWNERS),
                ips.c.subnet_id == subnet.id,
                gw.c.network_id == ext_net_id,
                gw.c.device_owner == ROUTER_GW,
            )
        )
        .order_by(intf.c.created_at, intf.c.id)
    ).all()
    for router_id, address in rows:
        if address == subnet.gateway_ip:
            found: str = router_id
            return found
    if rows:
        first: str = rows[0][0]
        return first
    raise errors.ExternalGatewayForFloatingIPNotFound(
        subnet_id=subnet.id, external_network_id=ext_net_id, port_id=port.id
    )


class FloatingIPService:
    resource = FLOATINGIP

    def __init__(self, deps: Deps, ports: PortService | None = None) -> None:
        self.deps = deps
        self.ports = ports or PortService(deps)
        self.networks = NetworkService(deps)

    # --- reading ------------------------------------------------------------------------
    @staticmethod
    def _visible(ctx: RequestContext) -> Any:
        return true() if ctx.is_admin else t.floatingips.c.project_id == ctx.project_id

    def fetch_row(self, ctx: RequestContext, conn: Connection, fip_id: str) -> Any:
        row = conn.execute(select(t.floatingips).where(and_(t.floatingips.c.id == fip_id, self._visible(ctx)))).first()
        if row is None:
            raise errors.FloatingIPNotFound(floatingip_id=fip_id)
        return row

    def dicts(self, conn: Connection, rows: list[Any]) -> list[FloatingIp]:
        ids = [r.id for r in rows]
        port_ids = sorted({r.fixed_port_id for r in rows if r.fixed_port_id})
        ports = {p.id: p for p in conn.execute(select(t.ports).where(t.ports.c.id.in_(port_ids)))} if port_ids else {}
        pfs: dict[str, list[PortForwardingSummary]] = {}
        if ids:
            q = select(t.port_forwardings).order_by(t.port_forwardings.c.external_port_start, t.port_forwardings.c.id)
            if len(ids) <= 400:
                q = q.where(t.port_forwardings.c.floatingip_id.in_(ids))
            for pf in conn.execute(q):
                pfs.setdefault(pf.floatingip_id, []).append(pf_summary(pf))
        tags = common.load_tags(conn, "floatingips", ids)
        return [self._dict(r, ports.get(r.fixed_port_id or ""), pfs.get(r.id, []), tags.get(r.id, [])) for r in rows]

    @staticmethod
    def _dict(r: Any, port: Any, pfs: list[PortForwardingSummary], tags: list[str]) -> FloatingIp:
        details: PortDetails | None = None
        if port is not None:
            details = {
                "name": port.name,
                "network_id": port.network_id,
                "mac_address": port.mac_address,
                "admin_state_up": port.admin_state_up,
                "status": port.status,
                "device_id": port.device_id,
                "device_owner": port.device_owner,
            }
        return {
            "id": r.id,
            "tenant_id": r.project_id,
            "floating_ip_address": r.floating_ip_address,
            "floating_network_id": r.floating_network_id,
            "router_id": r.router_id,
            "port_id": r.fixed_port_id,
            "fixed_ip_address": r.fixed_ip_address,
            "status": r.status,
            "project_id": r.project_id,
            "port_details": details,
            "dns_domain": r.dns_domain,
            "dns_name": r.dns_name,
            "port_forwardings": pfs,
            "qos_policy_id": None,
            **common.std_tail(r, tags),
        }

    def get(self, ctx: RequestContext, conn: Connection, fip_id: str) -> FloatingIp:
        return self.dicts(conn, [self.fetch_row(ctx, conn, fip_id)])[0]

    def admin_view(self, conn: Connection, fip_id: str) -> FloatingIp:
        return self.get(RequestContext.admin(), conn, fip_id)

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[FloatingIp], set[str]]:
        stmt, pushed = common.push_filters(
            select(t.floatingips).where(self._visible(ctx)), t.floatingips, FLOATINGIP, q
        )
        rows = list(conn.execute(stmt.order_by(t.floatingips.c.created_at, t.floatingips.c.id)))
        return self.dicts(conn, rows), pushed

    # --- writing ----------------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: FloatingIpCreate) -> FloatingIp:
        conn = uow.conn
        policy.enforce(ctx, "create_floatingip", item, attr_rules(FLOATINGIP, "create", item, creating=True))
        quotas.check(self.deps.cfg, conn, item["project_id"], "floatingip")
        net_id = item["floating_network_id"]
        net = self.networks.fetch_row(ctx, conn, net_id)
        if not net.external:
            raise fip_bad(f"Network {net_id} is not a valid external network")
        if not common.exists(conn, t.subnets, t.subnets.c.network_id == net_id, t.subnets.c.ip_version == 4):
            raise fip_bad(f"Network {net_id} does not contain any IPv4 subnet")
        fip_id = common.new_id()
        wanted = {
            k: v
            for k, v in (("subnet_id", item.get("subnet_id")), ("ip_address", item.get("floating_ip_address")))
            if v is not None
        }
        port = self.ports.insert_port(
            uow,
            net,
            {
                "project_id": "",
                "name": "",
                "network_id": net_id,
                "admin_state_up": True,
                "device_id": fip_id,
                "device_owner": FIP_OWNER,
                "fixed_ips": [wanted] if wanted else None,
            },
            status="N/A",
        )
        v4 = [f["ip_address"] for f in port["fixed_ips"] if is_v4(f["ip_address"])]
        if not v4:
            raise errors.ExternalIpAddressExhausted(net_id=net_id)
        state = FipState(fip_id, item["project_id"], net_id, v4[0])
        port_id, fixed_ip, router_id = self._association(ctx, conn, item, state)
        vals = common.std_values(dict(item, id=fip_id), revision=0, with_name=False)
        conn.execute(
            insert(t.floatingips).values(
                **vals,
                floating_network_id=net_id,
                floating_ip_address=v4[0],
                floating_port_id=port["id"],
                fixed_port_id=port_id,
                fixed_ip_address=fixed_ip,
                router_id=router_id,
                status="DOWN",
                dns_name=item.get("dns_name") or "",
                dns_domain=item.get("dns_domain") or "",
            )
        )
        out = self.admin_view(conn, fip_id)
        uow.changed("floatingip", fip_id, "create", out, item["project_id"])
        return out

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, fip_id: str, changes: FloatingIpUpdate, if_match: str | None = None
    ) -> FloatingIp:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, fip_id)
        policy.enforce(
            ctx,
            "update_floatingip",
            self.dicts(conn, [row])[0],
            attr_rules(FLOATINGIP, "update", changes, creating=False),
        )
        common.check_if_match(if_match, row.revision_number)
        state = FipState(
            row.id, row.project_id, row.floating_network_id, row.floating_ip_address, row.fixed_port_id, row.router_id
        )
        if not changes:
            # Neutron's "blank update": an empty body clears the association (a body with
            # other attributes and no port_id keeps it).
            changes = {"port_id": None}
        port_id, fixed_ip, router_id = self._association(ctx, conn, changes, state)
        if changes.get("port_id") and common.exists(
            conn, t.port_forwardings, t.port_forwardings.c.floatingip_id == fip_id
        ):
            raise errors.FipInUseByPortForwarding(id=fip_id)
        values = {"fixed_port_id": port_id, "fixed_ip_address": fixed_ip, "router_id": router_id}
        if "description" in changes:
            values["description"] = changes["description"]
        common.bump(conn, t.floatingips, fip_id, values)
        out = self.admin_view(conn, fip_id)
        uow.changed("floatingip", fip_id, "update", out, row.project_id)
        return out

    def delete(self, ctx: RequestContext, uow: UnitOfWork, fip_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, fip_id)
        policy.enforce(ctx, "delete_floatingip", {"project_id": row.project_id})
        common.check_if_match(if_match, row.revision_number)
        if common.exists(conn, t.port_forwardings, t.port_forwardings.c.floatingip_id == fip_id):
            raise errors.FipInUseByPortForwarding(id=fip_id)
        conn.execute(delete(t.floatingips).where(t.floatingips.c.id == fip_id))
        common.delete_tags(conn, fip_id)
        port = conn.execute(select(t.ports).where(t.ports.c.id == row.floating_port_id)).first()
        if port is not None:
            self.ports.remove(uow, port)
        uow.changed("floatingip", fip_id, "delete", None, row.project_id)

    def touch(self, uow: UnitOfWork, fip_id: str, values: Mapping[str, Any] | None = None) -> FloatingIp:
        """Apply ``values``, bump the revision and record an update (port forwarding changes)."""
        common.bump(uow.conn, t.floatingips, fip_id, values)
        out = self.admin_view(uow.conn, fip_id)
        uow.changed("floatingip", fip_id, "update", out, out["project_id"])
        return out

    # --- association ------------------------------------------------------------------------
    def _association(
        self, ctx: RequestContext, conn: Connection, req: FloatingIpCreate | FloatingIpUpdate, fip: FipState
    ) -> tuple[str | None, str | None, str | None]:
        """(port_id, fixed_ip_address, router_id) a request leaves the floating IP with."""
        port_id = fixed_ip = router_id = None
        if req.get("fixed_ip_address") and not req.get("port_id"):
            raise fip_bad("fixed_ip_address cannot be specified without a port_id")
        if req.get("port_id"):
            port_id, fixed_ip, router_id = self._assoc_data(ctx, conn, req, fip)
            if port_id == fip.fixed_port_id and fixed_ip == self._fixed_ip_of(conn, fip.id):
                return port_id, fixed_ip, router_id  # the association it already has: a no-op
            if common.exists(
                conn,
                t.floatingips,
                t.floatingips.c.fixed_port_id == port_id,
                t.floatingips.c.floating_network_id == fip.floating_network_id,
                t.floatingips.c.fixed_ip_address == fixed_ip,
            ):
                raise errors.FloatingIPPortAlreadyAssociated(
                    port_id=port_id,
                    fip_id=fip.id,
                    floating_ip_address=fip.floating_ip_address,
                    fixed_ip=fixed_ip,
                    net_id=fip.floating_network_id,
                )
        if "port_id" not in req and fip.fixed_port_id:
            port_id, fixed_ip, router_id = self._assoc_data(ctx, conn, dict(req, port_id=fip.fixed_port_id), fip)
        if not fip.fixed_port_id and fip.router_id:  # held by its port forwardings
            router_id = fip.router_id
        return port_id, fixed_ip, router_id

    @staticmethod
    def _fixed_ip_of(conn: Connection, fip_id: str) -> str | None:
        return conn.execute(select(t.floatingips.c.fixed_ip_address).where(t.floatingips.c.id == fip_id)).scalar()

    def _assoc_data(
        self, ctx: RequestContext, conn: Connection, req: Mapping[str, Any], fip: FipState
    ) -> tuple[str, str, str]:
        """``req``: a create or update body, or one with the current ``port_id`` filled in."""
        port = self.ports.fetch_row(ctx, conn, req["port_id"])
        if port.project_id != fip.project_id and not ctx.is_admin:
            raise fip_bad(
                f"Cannot process floating IP association with Port {port.id}, since that port is "
                "owned by a different tenant"
            )
        if port.device_owner == DHCP_OWNER:
            raise fip_bad("Port %(id)s is unable to be assigned a floating IP")  # sic: Neutron's text
        addrs = port_addresses(conn, [port.id])[port.id]
        fixed = req.get("fixed_ip_address")
        if fixed:
            if not is_v4(fixed):
                raise fip_bad(f"Cannot process floating IP association with {fixed}, since that is not an IPv4 address")
            subnet_id = next((s for s, ip in addrs if ip == fixed), None)
            if subnet_id is None:
                raise fip_bad(f"Port {port.id} does not have fixed ip {fixed}")
        else:
            v4 = [(s, ip) for s, ip in addrs if is_v4(ip)]
            if not v4:
                raise fip_bad(f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses")
            if len(v4) > 1:
                raise fip_bad(
                    f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific "
                    "IPv4 address when assigning a floating IP"
                )
            subnet_id, fixed = v4[0]
        subnet = conn.execute(select(t.subnets).where(t.subnets.c.id == subnet_id)).one()
        return port.id, fixed, find_router_for_fip(conn, port, subnet, fip.floating_network_id)


def pf_summary(pf: Any) -> PortForwardingSummary:
    """A port forwarding as embedded in its floating IP (``expose-port-forwarding-in-fip``)."""
    d: PortForwardingSummary = {
        "id": pf.id,
        "protocol": pf.protocol,
        "internal_ip_address": pf.internal_ip_address,
        "internal_port_id": pf.internal_port_id,
    }
    if pf.internal_port_start == pf.internal_port_end:
        d["internal_port"] = pf.internal_port_start
    if pf.external_port_start == pf.external_port_end:
        d["external_port"] = pf.external_port_start
    return d


def release_unused_floating_ips(deps: Deps, uow: UnitOfWork, net_id: str) -> None:
    """Deleting an external network first deletes its floating IPs that serve nothing: neither
    associated with a port nor held by a router for port forwardings (Neutron does the same,
    whoever owns them).  Those left keep their ports, which then block the deletion.
    A hook of ``NetworkService.delete`` (``Deps.external_network_deleting``, added by
    ``neutrino.services.l3.register``)."""
    fips = t.floatingips.c
    unused = [
        r.id
        for r in uow.conn.execute(
            select(fips.id).where(
                and_(fips.floating_network_id == net_id, fips.fixed_port_id.is_(None), fips.router_id.is_(None))
            )
        )
    ]
    svc = FloatingIPService(deps)
    for fip_id in unused:
        svc.delete(RequestContext.admin(), uow, fip_id)
