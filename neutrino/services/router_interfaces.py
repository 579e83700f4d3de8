"""Router interfaces: the ``add_router_interface`` / ``remove_router_interface`` member actions.

Contracts (Neutron's behaviour):

* The body is ``{"subnet_id": ...}`` or ``{"port_id": ...}``; neither -> 400,
  both -> 400 on add (on remove the port wins and the subnet must be one of
  its subnets, else 400 SubnetMismatchForPort).  An invisible router is 404
  RouterNotFound; a visible one the caller may not change is 403.
* By subnet: the subnet needs a gateway IP and (for non-admins) must belong
  to the caller's project; a new port is created with owner
  ``network:router_interface`` (``..._distributed`` on DVR routers), the
  gateway IP, device_id = router id, the router's project, no security
  groups, port security off.  An IPv6 subnet is added to an existing IPv6
  interface port on the same network instead.  A subnet the router already
  reaches (or an overlapping one) -> 400.
* By port: the port must be unattached (409 PortInUse) and have an address
  (400); its device_id/device_owner are rewritten.
* Remove: by port, the interface port is deleted (as Neutron's
  ``_remove_interface_by_port`` does); by subnet, the subnet's address
  leaves the interface port, which is deleted when it was its last.  409
  while a floating IP / port forwarding or an extra route needs the subnet.
* Response: ``{id, project_id, port_id, network_id, subnet_id, subnet_ids}``
  (no ``tenant_id``); the router's revision is bumped and recorded.
"""

from __future__ import annotations

import ipaddress
from typing import Any, TypedDict

from sqlalchemy import select

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.ipam import pools as ipam
from neutrino.resources import convert as cv
from neutrino.resources import policy
from neutrino.resources.types import FixedIp, FixedIpBody, Port
from neutrino.services.networks import network_target
from neutrino.services.routers import (
    INTERFACE_OWNERS,
    ROUTER_INTF,
    ROUTER_INTF_DVR,
    RouterService,
    port_addresses,
    record_router_port,
    router_bad,
    router_ports,
    subnet_rows,
)
from neutrino.services.subnets import SubnetService


def _interface_info(body: Any, *, removal: bool) -> bool:
    """Validate the action body; returns True when it names a port."""
    info = body if isinstance(body, dict) else {}
    by_port, by_subnet = "port_id" in info, "subnet_id" in info
    if not (by_port or by_subnet):
        raise router_bad("Either subnet_id or port_id must be specified")
    for key in ("port_id", "subnet_id"):
        if key in info:
            try:
                cv.uuid_str(info[key])
            except ValueError as exc:
                raise router_bad(str(exc)) from None
    if not removal and by_port and by_subnet:
        raise router_bad("Cannot specify both subnet-id and port-id")
    return by_port


class InterfaceInfo(TypedDict):
    """The answer of both member actions (Neutron's router interface info)."""

    id: str
    project_id: str
    port_id: str
    network_id: str
    subnet_id: str | None
    subnet_ids: list[str]


def _result(router_id: str, port: Port, subnet_id: str | None, subnet_ids: list[str]) -> InterfaceInfo:
    return {
        "id": router_id,
        "project_id": port["project_id"],
        "port_id": port["id"],
        "network_id": port["network_id"],
        "subnet_id": subnet_id,
        "subnet_ids": subnet_ids,
    }


def _body(f: FixedIp) -> FixedIpBody:
    """A port's address as a ``fixed_ips`` request entry (keeps it in an update)."""
    return {"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]}


def _check_address_mode(subnet: Any) -> None:
    if subnet.ip_version == 6 and subnet.ipv6_ra_mode is None and subnet.ipv6_address_mode is not None:
        raise router_bad(
            f"IPv6 subnet {subnet.id} configured to receive RAs from an external router cannot "
            "be added to Neutron Router"
        )


def _authorized_router(svc: RouterService, ctx: RequestContext, uow: UnitOfWork, router_id: str, action: str) -> Any:
    row = svc.fetch_row(ctx, uow.conn, router_id)
    policy.enforce(ctx, action, svc.dicts(uow.conn, [row])[0])
    return row


# --- add ------------------------------------------------------------------------------------------
def install(svc: RouterService) -> None:
    """Give the routers service its interface member actions (``add_router_interface``,
    ``remove_router_interface``), first, as the API lists them; called when the services are wired
    (``neutrino.services.l3.register``)."""
    svc.member_actions = {
        "add_router_interface": lambda ctx, uow, rid, body: add_interface(svc, ctx, uow, rid, body),
        "remove_router_interface": lambda ctx, uow, rid, body: remove_interface(svc, ctx, uow, rid, body),
        **svc.member_actions,
    }


def add_interface(svc: RouterService, ctx: RequestContext, uow: UnitOfWork, router_id: str, body: Any) -> InterfaceInfo:
    """PUT /routers/{id}/add_router_interface."""
    row = _authorized_router(svc, ctx, uow, router_id, "add_router_interface")
    owner = ROUTER_INTF_DVR if row.distributed else ROUTER_INTF
    if _interface_info(body, removal=False):
        port, subnets = _add_by_port(svc, ctx, uow, row, body["port_id"], owner)
    else:
        port, subnets = _add_by_subnet(svc, ctx, uow, row, body["subnet_id"], owner)
    svc.touch(uow, row.id)
    return _result(row.id, port, subnets[-1].id, [s.id for s in subnets])


def _add_by_subnet(
    svc: RouterService, ctx: RequestContext, uow: UnitOfWork, row: Any, subnet_id: str, owner: str
) -> tuple[Port, list[Any]]:
    conn = uow.conn
    subnet = SubnetService(svc.deps).fetch_row(ctx, conn, subnet_id)
    if not subnet.gateway_ip:
        raise router_bad("Subnet for router interface must have a gateway IP")
    if subnet.project_id != ctx.project_id and not ctx.is_admin:
        raise router_bad(
            f"Cannot add interface to router because subnet {subnet_id} is not owned by project making the request"
        )
    _check_address_mode(subnet)
    svc._check_duplicate_subnets(conn, row.id, [subnet])
    fixed: FixedIpBody = {"ip_address": subnet.gateway_ip, "subnet_id": subnet.id}
    net = network_target(conn, subnet.network_id)
    if subnet.ip_version == 6:
        for p in router_ports(conn, row.id, (owner,), network_id=subnet.network_id):
            addrs = port_addresses(conn, [p.id])[p.id]
            if any(ipaddress.ip_address(ip).version == 6 for _, ip in addrs):
                current = svc.ports.dicts(conn, [p])[0]
                wanted = [_body(f) for f in current["fixed_ips"]] + [fixed]
                return svc.ports.apply_update(uow, p, net, current, {"fixed_ips": wanted}), [subnet]
    port = svc.ports.insert_port(
        uow,
        net,
        {
            "project_id": row.project_id,
            "name": "",
            "network_id": net.id,
            "admin_state_up": True,
            "device_id": row.id,
            "device_owner": owner,
            "fixed_ips": [fixed],
            "security_groups": [],
            "port_security_enabled": False,
        },
    )
    record_router_port(conn, row.id, port["id"], owner)
    return port, [subnet]


def _add_by_port(
    svc: RouterService, ctx: RequestContext, uow: UnitOfWork, row: Any, port_id: str, owner: str
) -> tuple[Port, list[Any]]:
    conn = uow.conn
    prow = svc.ports.fetch_row(ctx, conn, port_id)
    if prow.device_id != "":
        raise errors.PortInUse(net_id=prow.network_id, port_id=prow.id, device_id=prow.device_id)
    addrs = port_addresses(conn, [prow.id])[prow.id]
    if not addrs:
        raise router_bad("Router port must have at least one fixed IP")
    by_id = {s.id: s for s in subnet_rows(conn, [sid for sid, _ in addrs])}
    subnets = [by_id[sid] for sid, _ in addrs if sid in by_id]
    for s in subnets:
        _check_address_mode(s)
    net = network_target(conn, prow.network_id)
    port = svc.ports.apply_update(
        uow, prow, net, svc.ports.dicts(conn, [prow])[0], {"device_id": row.id, "device_owner": owner}
    )
    record_router_port(conn, row.id, prow.id, owner)
    if any(ipaddress.ip_address(ip).version == 6 for _, ip in addrs):
        for other in router_ports(conn, row.id, network_id=prow.network_id):
            if other.id != prow.id and any(
                ipaddress.ip_address(ip).version == 6 for _, ip in port_addresses(conn, [other.id])[other.id]
            ):
                raise router_bad(
                    f"Router already contains IPv6 port {other.id} belonging to network id "
                    f"{other.network_id}. Only one IPv6 port from the same network subnet can be "
                    "connected to a router"
                )
    svc._check_duplicate_subnets(conn, row.id, subnets, exclude_port=prow.id)
    if len([s for s in subnets if s.ip_version == 4]) > 1:
        raise router_bad("Cannot have multiple IPv4 subnets on router port")
    if not ctx.is_admin:
        for sid, ip in addrs:
            s = by_id[sid]
            in_pool = any(lo <= int(ipaddress.ip_address(ip)) <= hi for lo, hi in ipam.pool_ranges(s.allocation_pools))
            if not in_pool and s.project_id != ctx.project_id:
                raise router_bad(
                    f"Cannot add interface to router because specified port {prow.id} has an IP "
                    f"address out of the allocation pool of subnet {sid}, which is not owned by "
                    "the project making the request"
                )
    return port, subnets


# --- remove ---------------------------------------------------------------------------------------
def remove_interface(
    svc: RouterService, ctx: RequestContext, uow: UnitOfWork, router_id: str, body: Any
) -> InterfaceInfo:
    """PUT /routers/{id}/remove_router_interface."""
    row = _authorized_router(svc, ctx, uow, router_id, "remove_router_interface")
    if _interface_info(body, removal=True):
        port, subnets = _remove_by_port(svc, uow, row, body["port_id"], body.get("subnet_id"))
    else:
        port, subnets = _remove_by_subnet(svc, ctx, uow, row, body["subnet_id"])
    svc.touch(uow, row.id)
    return _result(row.id, port, subnets[0].id if subnets else None, [s.id for s in subnets])


def _remove_by_port(
    svc: RouterService, uow: UnitOfWork, row: Any, port_id: str, subnet_id: str | None
) -> tuple[Port, list[Any]]:
    conn = uow.conn
    prow = next((p for p in router_ports(conn, row.id, INTERFACE_OWNERS) if p.id == port_id), None)
    if prow is None:
        raise errors.RouterInterfaceNotFound(router_id=row.id, port_id=port_id)
    sids = [sid for sid, _ in port_addresses(conn, [prow.id])[prow.id]]
    if subnet_id and subnet_id not in sids:
        raise errors.SubnetMismatchForPort(port_id=port_id, subnet_id=subnet_id)
    by_id = {s.id: s for s in subnet_rows(conn, sids)}
    subnets = [by_id[s] for s in sids if s in by_id]
    for s in subnets:
        confirm_not_in_use(conn, row, s)
    port = svc.ports.dicts(conn, [prow])[0]
    svc.ports.remove(uow, prow)
    return port, subnets


def _remove_by_subnet(
    svc: RouterService, ctx: RequestContext, uow: UnitOfWork, row: Any, subnet_id: str
) -> tuple[Port, list[Any]]:
    conn = uow.conn
    subnet = SubnetService(svc.deps).fetch_row(ctx, conn, subnet_id)
    ports = router_ports(conn, row.id, INTERFACE_OWNERS, network_id=subnet.network_id)
    if ports:
        confirm_not_in_use(conn, row, subnet)
    for p in ports:
        current = svc.ports.dicts(conn, [p])[0]
        sids = [f["subnet_id"] for f in current["fixed_ips"]]
        if subnet_id in sids and len(sids) > 1:
            wanted = [_body(f) for f in current["fixed_ips"] if f["subnet_id"] != subnet_id]
            svc.ports.apply_update(uow, p, network_target(conn, p.network_id), current, {"fixed_ips": wanted})
            return current, [subnet]
        if subnet_id in sids:
            svc.ports.remove(uow, p)
            return current, [subnet]
    raise errors.RouterInterfaceNotFoundForSubnet(router_id=row.id, subnet_id=subnet_id)


def confirm_not_in_use(conn: Any, router: Any, subnet: Any) -> None:
    """409 when floating IPs, port forwardings or extra routes of ``router`` need ``subnet``."""
    cidr = ipaddress.ip_network(subnet.cidr)

    def inside(ip: str | None) -> bool:
        if not ip:
            return False
        addr = ipaddress.ip_address(ip)
        return addr.version == cidr.version and addr in cidr

    on_subnet = {
        r[0] for r in conn.execute(select(t.ip_allocations.c.port_id).where(t.ip_allocations.c.subnet_id == subnet.id))
    }
    fips = list(conn.execute(select(t.floatingips).where(t.floatingips.c.router_id == router.id)))
    if fips:
        pfs = conn.execute(
            select(t.port_forwardings).where(t.port_forwardings.c.floatingip_id.in_([f.id for f in fips]))
        )
        if any(inside(pf.internal_ip_address) and pf.internal_port_id in on_subnet for pf in pfs) or any(
            inside(f.fixed_ip_address) and f.fixed_port_id in on_subnet for f in fips
        ):
            raise errors.RouterInterfaceInUseByFloatingIP(router_id=router.id, subnet_id=subnet.id)
    if any(inside(r["nexthop"]) for r in router.routes):
        raise errors.RouterInterfaceInUseByRoute(router_id=router.id, subnet_id=subnet.id)
