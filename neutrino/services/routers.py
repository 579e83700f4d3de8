"""Routers: CRUD, the external gateway (``ext-gw-mode``) and extra routes
(``extraroute``, ``extraroute-atomic``).  Interfaces: ``router_interfaces``.

Contracts (Neutron's behaviour):

* A router is visible to admins and its own project; anyone else gets
  ``RouterNotFound`` (404).  ``distributed``/``ha`` are stripped for
  non-admins by the ``get_router:*`` read rules.
* Setting ``external_gateway_info`` creates a ``network:router_gateway`` port
  (project ``""``, device_id = router id, DOWN, no security groups, port
  security off) on an external network (else 400 "not an external
  network").  Same network + new ``external_fixed_ips`` re-addresses the
  port; another network or ``{}``/null deletes it (409
  RouterExternalGatewayInUseByFloatingIp while floating IPs use the router).
  ``enable_snat`` falls back to ``[DEFAULT] enable_snat_by_default``.
* ``routes`` is replaced wholesale; every nexthop must be inside a subnet of
  one of the router's ports and not be one of its addresses (400
  InvalidRoutes); at most ``[quotas] quota_router_route`` routes (400
  RoutesExhausted).
* Delete: 409 RouterInUse while interfaces remain; the gateway port goes
  with the router.
* Every write records a ``router`` change carrying the admin view.
"""

from __future__ import annotations

import builtins  # the services' ``list`` method hides the builtin in their class bodies
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, select, true, update
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.resources import policy
from neutrino.resources.definitions import ROUTER, route_list
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import ExternalGatewayInfo, FixedIpBody, HostRoute, Router, RouterCreate, RouterUpdate
from neutrino.services import common, quotas
from neutrino.services.common import Deps
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService

ROUTER_GW = "network:router_gateway"
ROUTER_INTF = "network:router_interface"
ROUTER_INTF_DVR = "network:router_interface_distributed"
ROUTER_INTF_HA = "network:ha_router_replicated_interface"
#: Owners of ports that connect a router to an internal subnet.
INTERFACE_OWNERS = (ROUTER_INTF, ROUTER_INTF_DVR, ROUTER_INTF_HA)


def router_bad(msg: str) -> errors.BadRequest:
    """``Bad router request: <msg>.``"""
    return errors.BadRequest(resource="router", msg=msg)


def router_ports(
    conn: Connection,
    router_id: str,
    owners: tuple[str, ...] = (ROUTER_GW, *INTERFACE_OWNERS),
    network_id: str | None = None,
) -> list[Any]:
    """The router's port rows (gateway and interfaces), oldest first.

    The router's own records (``router_ports``) decide, never a port's
    ``device_id``: any project may write that on its own ports."""
    rp = t.router_ports
    stmt = (
        select(t.ports)
        .join(rp, rp.c.port_id == t.ports.c.id)
        .where(and_(rp.c.router_id == router_id, t.ports.c.device_owner.in_(owners)))
    )
    if network_id is not None:
        stmt = stmt.where(t.ports.c.network_id == network_id)
    return list(conn.execute(stmt.order_by(t.ports.c.created_at, t.ports.c.id)))


def record_router_port(conn: Connection, router_id: str, port_id: str, port_type: str) -> None:
    """Make ``port_id`` one of the router's ports (its gateway or an interface)."""
    if not common.exists(conn, t.router_ports, t.router_ports.c.port_id == port_id):
        conn.execute(insert(t.router_ports).values(router_id=router_id, port_id=port_id, port_type=port_type))


def owned_port_ids(conn: Connection, router_ids: list[str]) -> dict[str, list[str]]:
    """Router id -> the ids of the interface ports it owns, sorted (the gateway is ``gw_port_id``)."""
    out: dict[str, list[str]] = {r: [] for r in router_ids}
    if router_ids:
        rp = t.router_ports
        q = select(rp.c.router_id, rp.c.port_id).where(rp.c.port_type != ROUTER_GW)
        if len(router_ids) <= 400:
            q = q.where(rp.c.router_id.in_(router_ids))
        for rid, pid in conn.execute(q.order_by(rp.c.port_id)):
            if rid in out:
                out[rid].append(pid)
    return out


def port_addresses(conn: Connection, port_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """port id -> [(subnet_id, ip_address)] in the port's order."""
    out: dict[str, list[tuple[str, str]]] = {p: [] for p in port_ids}
    if port_ids:
        rows = conn.execute(
            select(t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address)
            .where(t.ip_allocations.c.port_id.in_(port_ids))
            .order_by(t.ip_allocations.c.port_id, t.ip_allocations.c.position)
        )
        for pid, sid, ip in rows:
            out[pid].append((sid, ip))
    return out


def subnet_rows(conn: Connection, subnet_ids: list[str]) -> list[Any]:
    if not subnet_ids:
        return []
    return list(
        conn.execute(
            select(t.subnets).where(t.subnets.c.id.in_(subnet_ids)).order_by(t.subnets.c.created_at, t.subnets.c.id)
        )
    )


def _nexthop_cidrs(conn: Connection, ports: list[Any]) -> tuple[list[Any], set[str]]:
    """(subnet networks of these ports' addresses, the addresses)."""
    addrs = port_addresses(conn, [p.id for p in ports])
    ips = {ip for pairs in addrs.values() for _, ip in pairs}
    subnets = subnet_rows(conn, sorted({sid for pairs in addrs.values() for sid, _ in pairs}))
    return [ipaddress.ip_network(s.cidr) for s in subnets], ips


class RouterService:
    resource = ROUTER
    #: L3 scheduling hooks (``neutrino.services.l3_scheduler.L3Scheduler``, set by the agents service).
    l3_scheduler: Any = None

    def __init__(self, deps: Deps, ports: PortService | None = None) -> None:
        self.deps = deps
        self.ports = ports or PortService(deps)
        self.networks = NetworkService(deps)
        #: ``PUT /v2.0/routers/{id}/<action>``; the interface actions are added at wiring time by
        #: ``neutrino.services.router_interfaces.install`` (that module builds on this one).
        self.member_actions: dict[str, Any] = {
            "add_extraroutes": self.add_extraroutes,
            "remove_extraroutes": self.remove_extraroutes,
        }

    # --- reading ------------------------------------------------------------------------
    @staticmethod
    def _visible(ctx: RequestContext) -> Any:
        return true() if ctx.is_admin else t.routers.c.project_id == ctx.project_id

    def fetch_row(self, ctx: RequestContext, conn: Connection, router_id: str) -> Any:
        row = conn.execute(select(t.routers).where(and_(t.routers.c.id == router_id, self._visible(ctx)))).first()
        if row is None:
            raise errors.RouterNotFound(router_id=router_id)
        return row

    def dicts(self, conn: Connection, rows: list[Any]) -> list[Router]:
        ids = [r.id for r in rows]
        gw_ips = port_addresses(conn, [r.gw_port_id for r in rows if r.gw_port_id])
        zones: dict[str, set[str]] = {}
        if ids:
            q = select(t.router_l3_agents.c.router_id, t.agents.c.availability_zone).join(
                t.agents, t.agents.c.id == t.router_l3_agents.c.agent_id
            )
            if len(ids) <= 400:
                q = q.where(t.router_l3_agents.c.router_id.in_(ids))
            for rid, az in conn.execute(q):
                if az:
                    zones.setdefault(rid, set()).add(az)
        tags = common.load_tags(conn, "routers", ids)
        owned = owned_port_ids(conn, ids)
        return [
            self._dict(
                r,
                gw_ips.get(r.gw_port_id or "", []),
                sorted(zones.get(r.id, ())),
                tags.get(r.id, []),
                owned.get(r.id, []),
            )
            for r in rows
        ]

    @staticmethod
    def _dict(r: Any, gw_ips: list[tuple[str, str]], zones: list[str], tags: list[str], owned: list[str]) -> Router:
        gw: ExternalGatewayInfo | None = None
        if r.gw_port_id:
            gw = {
                "network_id": r.gw_network_id,
                "external_fixed_ips": [{"subnet_id": s, "ip_address": ip} for s, ip in gw_ips],
                "enable_snat": r.enable_snat,
            }
        return {
            "id": r.id,
            "name": r.name,
            "tenant_id": r.project_id,
            "admin_state_up": r.admin_state_up,
            "status": r.status,
            "external_gateway_info": gw,
            "availability_zones": zones,
            "availability_zone_hints": list(r.availability_zone_hints or []),
            "routes": [x.copy() for x in r.routes],  # copies of the stored JSON
            "flavor_id": r.flavor_id,
            "distributed": r.distributed,
            "ha": r.ha,
            **common.std_tail(r, tags),
            "project_id": r.project_id,
            # The router's own records, for the agents (the feed's admin view): stripped from API
            # answers by the get_router:gw_port_id / get_router:interface_port_ids rules.
            "gw_port_id": r.gw_port_id,
            "interface_port_ids": owned,
        }

    def get(self, ctx: RequestContext, conn: Connection, router_id: str) -> Router:
        return self.dicts(conn, [self.fetch_row(ctx, conn, router_id)])[0]

    def admin_view(self, conn: Connection, router_id: str) -> Router:
        return self.get(RequestContext.admin(), conn, router_id)

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[Router], set[str]]:
        stmt, pushed = common.push_filters(select(t.routers).where(self._visible(ctx)), t.routers, ROUTER, q)
        rows = list(conn.execute(stmt.order_by(t.routers.c.created_at, t.routers.c.id)))
        return self.dicts(conn, rows), pushed

    # --- create / update / delete ----------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: RouterCreate) -> Router:
        conn = uow.conn
        policy.enforce(ctx, "create_router", item, attr_rules(ROUTER, "create", item, creating=True))
        quotas.check(self.deps.cfg, conn, item["project_id"], "router")
        vals = common.std_values(item, revision=1)
        conn.execute(
            insert(t.routers).values(
                **vals,
                admin_state_up=item["admin_state_up"],
                status="ACTIVE",
                gw_network_id=None,
                gw_port_id=None,
                enable_snat=self.deps.cfg.default.enable_snat_by_default,
                routes=[],
                distributed=item["distributed"],
                ha=item["ha"],
                flavor_id=item["flavor_id"],
                availability_zone_hints=item["availability_zone_hints"],
            )
        )
        if item["external_gateway_info"]:
            row = conn.execute(select(t.routers).where(t.routers.c.id == vals["id"])).one()
            gw_values = self._set_gateway(ctx, uow, row, item["external_gateway_info"], [])
            conn.execute(update(t.routers).where(t.routers.c.id == row.id).values(**gw_values))
        if self.l3_scheduler is not None:  # before the create record, which then carries the zones
            self.l3_scheduler.router_created(uow, vals["id"])
        out = self.admin_view(conn, vals["id"])
        uow.changed("router", vals["id"], "create", out, item["project_id"])
        return out

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, router_id: str, changes: RouterUpdate, if_match: str | None = None
    ) -> Router:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, router_id)
        policy.enforce(
            ctx, "update_router", self.dicts(conn, [row])[0], attr_rules(ROUTER, "update", changes, creating=False)
        )
        common.check_if_match(if_match, row.revision_number)
        return self.apply_update(ctx, uow, row, changes)

    def apply_update(self, ctx: RequestContext, uow: UnitOfWork, row: Any, changes: RouterUpdate) -> Router:
        """Apply validated changes (no policy); records the change."""
        conn = uow.conn
        values: dict[str, Any] = {  # column -> new value, for one UPDATE
            k: changes[k] for k in ("name", "description", "admin_state_up") if k in changes
        }
        admin_up = changes.get("admin_state_up", row.admin_state_up)
        if "ha" in changes and changes["ha"] != row.ha:
            if admin_up:
                raise router_bad(
                    "Cannot change HA attribute of active routers. Please set router "
                    "admin_state_up to False prior to upgrade"
                )
            values["ha"] = changes["ha"]
        if "distributed" in changes and changes["distributed"] != row.distributed:
            if changes["distributed"] and admin_up:
                raise router_bad(
                    "Cannot upgrade active router to distributed. Please set router "
                    "admin_state_up to False prior to upgrade"
                )
            values["distributed"] = changes["distributed"]
        routes: builtins.list[HostRoute] = list(row.routes)
        if "routes" in changes:
            routes = changes["routes"]
            self.validate_routes(conn, row, routes)
            values["routes"] = routes
        if "external_gateway_info" in changes:
            values.update(self._set_gateway(ctx, uow, row, changes["external_gateway_info"], routes))
        common.bump(conn, t.routers, row.id, values)
        out = self.admin_view(conn, row.id)
        uow.changed("router", row.id, "update", out, row.project_id)
        return out

    def delete(self, ctx: RequestContext, uow: UnitOfWork, router_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, router_id)
        policy.enforce(ctx, "delete_router", {"project_id": row.project_id})
        common.check_if_match(if_match, row.revision_number)
        attached = [p.id for p in router_ports(conn, router_id, INTERFACE_OWNERS)]
        if attached:
            raise errors.RouterInUse(router_id=router_id, reason="has ports still attached: " + ", ".join(attached))
        self._clear_gateway(uow, row)
        for p in router_ports(conn, router_id):
            self.ports.remove(uow, p)
        if self.l3_scheduler is not None:  # records the l3_binding delete
            self.l3_scheduler.router_removed(uow, router_id)
        conn.execute(delete(t.router_l3_agents).where(t.router_l3_agents.c.router_id == router_id))
        conn.execute(delete(t.routers).where(t.routers.c.id == router_id))
        common.delete_tags(conn, router_id)
        uow.changed("router", router_id, "delete", None, row.project_id)

    def touch(self, uow: UnitOfWork, router_id: str) -> Router:
        """Bump the router's revision and record an update (after interface changes)."""
        common.bump(uow.conn, t.routers, router_id)
        out = self.admin_view(uow.conn, router_id)
        uow.changed("router", router_id, "update", out, out["project_id"])
        return out

    # --- external gateway ------------------------------------------------------------------
    def _set_gateway(
        self,
        ctx: RequestContext,
        uow: UnitOfWork,
        row: Any,
        info: Mapping[str, Any] | None,
        routes: Sequence[HostRoute],
    ) -> dict[str, Any]:
        """Make the gateway match ``info`` (an ``external_gateway_info`` body; ``{}`` clears it);
        returns the router column values to store."""
        conn = uow.conn
        net_id = info.get("network_id") if info else None
        ext_ips = (info or {}).get("external_fixed_ips") or []
        gw = self._gateway_port(conn, row)
        gw_subnets: list[Any] = []
        net = None
        if net_id:
            net = self.networks.fetch_row(ctx, conn, net_id)
            if not net.external:
                raise router_bad(f"Network {net_id} is not an external network")
            gw_subnets = list(
                conn.execute(
                    select(t.subnets)
                    .where(t.subnets.c.network_id == net_id)
                    .order_by(t.subnets.c.created_at, t.subnets.c.id)
                )
            )
            gateways = {s.gateway_ip for s in gw_subnets if s.gateway_ip}
            for ext in ext_ips:
                if ext.get("ip_address") in gateways:
                    raise router_bad(f"External IP {ext['ip_address']} is the same as the gateway IP")
        if routes:
            others = [p for p in router_ports(conn, row.id) if p.id != row.gw_port_id]
            cidrs, ips = _nexthop_cidrs(conn, others)
            cidrs += [ipaddress.ip_network(s.cidr) for s in gw_subnets]
            self._check_nexthops(routes, cidrs, ips)
        values: dict[str, Any] = {  # router columns
            "enable_snat": (info or {}).get("enable_snat", self.deps.cfg.default.enable_snat_by_default)
        }
        if gw is not None and net_id == gw.network_id:
            if self._ext_ips_changed(conn, gw, ext_ips):
                current = self.ports.dicts(conn, [gw])[0]
                self.ports.apply_update(uow, gw, net, current, {"fixed_ips": ext_ips})
            return values
        if gw is not None:
            self._clear_gateway(uow, row)
            values.update(gw_port_id=None, gw_network_id=None)
        if net is not None:
            self._check_duplicate_subnets(conn, row.id, gw_subnets)
            port = self.ports.insert_port(
                uow,
                net,
                {
                    "project_id": "",
                    "name": "",
                    "network_id": net.id,
                    "admin_state_up": True,
                    "device_id": row.id,
                    "device_owner": ROUTER_GW,
                    "fixed_ips": ext_ips or None,
                    "security_groups": [],
                    "port_security_enabled": False,
                },
            )
            record_router_port(conn, row.id, port["id"], ROUTER_GW)
            values.update(gw_port_id=port["id"], gw_network_id=net.id)
        return values

    @staticmethod
    def _gateway_port(conn: Connection, row: Any) -> Any:
        if not row.gw_port_id:
            return None
        return conn.execute(select(t.ports).where(t.ports.c.id == row.gw_port_id)).first()

    @staticmethod
    def _ext_ips_changed(conn: Connection, gw: Any, ext_ips: Sequence[FixedIpBody]) -> bool:
        if not ext_ips:
            return False
        have = port_addresses(conn, [gw.id])[gw.id]
        if {f["subnet_id"] for f in ext_ips if f.get("subnet_id")} != {s for s, _ in have}:
            return True
        return {f["ip_address"] for f in ext_ips if f.get("ip_address")} != {ip for _, ip in have}

    def _clear_gateway(self, uow: UnitOfWork, row: Any) -> None:
        """Delete the gateway port (409 while floating IPs are routed through this router)."""
        gw = self._gateway_port(uow.conn, row)
        if gw is None:
            return
        if common.exists(uow.conn, t.floatingips, t.floatingips.c.router_id == row.id):
            raise errors.RouterExternalGatewayInUseByFloatingIp(router_id=row.id, net_id=gw.network_id)
        self.ports.remove(uow, gw)
        uow.conn.execute(update(t.routers).where(t.routers.c.id == row.id).values(gw_port_id=None, gw_network_id=None))

    @staticmethod
    def _check_duplicate_subnets(
        conn: Connection, router_id: str, new_subnets: builtins.list[Any], exclude_port: str | None = None
    ) -> None:
        """Neutron's "already has a port on subnet" / overlapping-CIDR checks for a new connection."""
        new_ids = {s.id for s in new_subnets}
        ports = [p for p in router_ports(conn, router_id) if p.id != exclude_port]
        addrs = port_addresses(conn, [p.id for p in ports])
        existing: list[str] = []
        for p in ports:
            for sid, _ in addrs[p.id]:
                if sid in new_ids:
                    raise router_bad(f"Router already has a port on subnet {sid}")
                if p.device_owner == ROUTER_GW:
                    existing += [
                        r.id for r in conn.execute(select(t.subnets.c.id).where(t.subnets.c.network_id == p.network_id))
                    ]
                else:
                    existing.append(sid)
        for old in subnet_rows(conn, sorted(set(existing))):
            old_net = ipaddress.ip_network(old.cidr)
            for new in new_subnets:
                if old_net.overlaps(ipaddress.ip_network(new.cidr)):
                    raise router_bad(
                        f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr {old.cidr} of subnet {old.id}"
                    )

    # --- extra routes -----------------------------------------------------------------------
    def validate_routes(self, conn: Connection, row: Any, routes: Sequence[HostRoute]) -> None:
        limit = quotas.limits(self.deps.cfg, conn, row.project_id).get("router_route", -1)
        if 0 <= limit < len(routes):
            raise errors.RoutesExhausted(router_id=row.id, quota=limit)
        cidrs, ips = _nexthop_cidrs(conn, router_ports(conn, row.id))
        self._check_nexthops(routes, cidrs, ips)

    @staticmethod
    def _check_nexthops(routes: Sequence[HostRoute], cidrs: builtins.list[Any], ips: set[str]) -> None:
        for route in routes:
            hop = ipaddress.ip_address(route["nexthop"])
            if not any(hop.version == c.version and hop in c for c in cidrs):
                raise errors.InvalidRoutes(routes=routes, reason="the nexthop is not connected with router")
            if route["nexthop"] in ips:
                raise errors.InvalidRoutes(routes=routes, reason="the nexthop is used by router")

    def _routes_action(
        self, ctx: RequestContext, uow: UnitOfWork, router_id: str, body: Any, action: str
    ) -> dict[str, Router]:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, router_id)
        policy.enforce(ctx, action, self.dicts(conn, [row])[0])
        if not isinstance(body, dict) or not isinstance(body.get("router"), dict) or "routes" not in body["router"]:
            raise errors.bad("Unable to find 'routes' in request body")
        try:
            given = route_list(body["router"]["routes"])
        except ValueError as exc:
            raise errors.bad(f"Invalid input for routes. Reason: {str(exc).rstrip('.')}.") from None
        old = [r.copy() for r in row.routes]
        if action == "add_extraroutes":
            new = old + [r for i, r in enumerate(given) if r not in old and r not in given[:i]]
        else:
            new = [r for r in old if r not in given]
        return {"router": self.apply_update(ctx, uow, row, {"routes": new})}

    def add_extraroutes(self, ctx: RequestContext, uow: UnitOfWork, router_id: str, body: Any) -> dict[str, Router]:
        """PUT /routers/{id}/add_extraroutes {"router": {"routes": [...]}} -> {"router": {...}}."""
        return self._routes_action(ctx, uow, router_id, body, "add_extraroutes")

    def remove_extraroutes(self, ctx: RequestContext, uow: UnitOfWork, router_id: str, body: Any) -> dict[str, Router]:
        """PUT /routers/{id}/remove_extraroutes; routes not present are ignored."""
        return self._routes_action(ctx, uow, router_id, body, "remove_extraroutes")
