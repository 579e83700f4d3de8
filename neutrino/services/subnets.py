"""Subnets: CIDR, gateway, pools, DNS and routes validation (in Neutron's order),
IPv6 modes, and the in-use rules for update and delete.
"""

from __future__ import annotations

import builtins  # the service's ``list`` method hides the builtin in its class body
import ipaddress
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, true
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.ipam import pools as ipam
from neutrino.resources import policy
from neutrino.resources.definitions import SUBNET
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import Subnet, SubnetCreate, SubnetUpdate
from neutrino.services import common, dhcp_options, quotas, rbac, subnetpools
from neutrino.services.common import Deps
from neutrino.services.networks import NetworkService, network_target
from neutrino.services.ports import add_gateway_addresses_for_subnet, record_port_changes

AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
#: Owners whose addresses on a subnet do not block the subnet's deletion.
AUTO_DELETE_OWNERS = ("network:dhcp", "network:distributed")


def is_auto_address(row: Any) -> bool:
    return (
        row.ipv6_address_mode in AUTO_ADDRESS_MODES
        or row.ipv6_ra_mode in AUTO_ADDRESS_MODES
        and row.ipv6_address_mode is None
    )


class SubnetService:
    resource = SUBNET
    #: DHCP scheduling hooks (``neutrino.services.dhcp_scheduler.DhcpScheduler``, set by the agents service).
    dhcp_scheduler: Any = None

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._max_pools = deps.cfg.default.max_allocation_pools

    # --- checks before the write transaction ---------------------------------------------
    def precheck_create(self, ctx: RequestContext, conn: Connection, item: SubnetCreate) -> None:
        """Allocation pools checked on a read connection, before the write transaction: a long or
        bad pool list is refused without holding the write lock (the transaction checks again,
        against the gateway, at bounded cost)."""
        pools, cidr = item.get("allocation_pools"), item.get("cidr")
        if pools and cidr:
            ipam.validate_pools(ipaddress.ip_network(cidr, strict=False), pools, None, self._max_pools)

    def precheck_update(self, ctx: RequestContext, conn: Connection, subnet_id: str, changes: SubnetUpdate) -> None:
        """``precheck_create`` for an update: the pools against the subnet's CIDR."""
        pools = changes.get("allocation_pools")
        if pools:
            # Joined to its network: the visibility clause reads both tables.
            cidr = conn.execute(
                select(t.subnets.c.cidr)
                .join(t.networks, t.networks.c.id == t.subnets.c.network_id)
                .where(and_(t.subnets.c.id == subnet_id, self._visible(ctx)))
            ).scalar()
            if cidr is not None:
                ipam.validate_pools(ipaddress.ip_network(cidr), pools, None, self._max_pools)

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def _visible(ctx: RequestContext) -> Any:
        if ctx.is_admin:
            return true()
        return or_(
            t.subnets.c.project_id == ctx.project_id,
            t.networks.c.project_id == ctx.project_id,
            t.networks.c.shared == true(),  # on a network shared / external for the caller (RBAC)
            t.networks.c.id.in_(rbac.accessible_ids("network", ctx.project_id, rbac.NETWORK_ACCESS)),
        )

    def _select(self, ctx: RequestContext) -> Any:
        return (
            select(t.subnets, t.networks.c.external.label("net_external"))
            .join(t.networks, t.networks.c.id == t.subnets.c.network_id)
            .where(self._visible(ctx))
        )

    def _dicts(self, conn: Connection, rows: list[Any]) -> list[Subnet]:
        tags = common.load_tags(conn, "subnets", [r.id for r in rows])
        return [self._dict(r, tags.get(r.id, [])) for r in rows]

    @staticmethod
    def _dict(r: Any, tags: list[str]) -> Subnet:
        return {
            "id": r.id,
            "name": r.name,
            "tenant_id": r.project_id,
            "project_id": r.project_id,
            "network_id": r.network_id,
            "ip_version": r.ip_version,
            "subnetpool_id": r.subnetpool_id,
            "enable_dhcp": r.enable_dhcp,
            "ipv6_ra_mode": r.ipv6_ra_mode,
            "ipv6_address_mode": r.ipv6_address_mode,
            "gateway_ip": r.gateway_ip,
            "cidr": r.cidr,
            "allocation_pools": list(r.allocation_pools),
            "host_routes": list(r.host_routes),
            "dns_nameservers": list(r.dns_nameservers),
            "router:external": bool(r.net_external),
            "segment_id": r.segment_id,
            "service_types": list(r.service_types),
            **common.std_tail(r, tags),
        }

    def fetch_row(self, ctx: RequestContext, conn: Connection, subnet_id: str) -> Any:
        row = conn.execute(self._select(ctx).where(t.subnets.c.id == subnet_id)).first()
        if row is None:
            raise errors.SubnetNotFound(subnet_id=subnet_id)
        return row

    def get(self, ctx: RequestContext, conn: Connection, subnet_id: str) -> Subnet:
        return self._dicts(conn, [self.fetch_row(ctx, conn, subnet_id)])[0]

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[Subnet], set[str]]:
        stmt, pushed = common.push_filters(self._select(ctx), t.subnets, SUBNET, q)
        if "router:external" in q.filters:
            stmt = stmt.where(t.networks.c.external.in_([bool(v) for v in q.filters["router:external"]]))
            pushed.add("router:external")
        if "shared" in q.filters:  # the network's sharing (Neutron's hidden subnet filter)
            stmt = stmt.where(t.networks.c.shared.in_([bool(v) for v in q.filters["shared"]]))
            pushed.add("shared")
        rows = list(conn.execute(stmt.order_by(t.subnets.c.created_at, t.subnets.c.id)))
        return self._dicts(conn, rows), pushed

    # --- create ------------------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: SubnetCreate) -> Subnet:
        conn = uow.conn
        net = network_target(conn, item["network_id"])
        if net is None or not rbac.network_reachable(conn, ctx, net):
            raise errors.NetworkNotFound(net_id=item["network_id"])
        target = dict(item, **{"network:project_id": net.project_id})
        policy.enforce(ctx, "create_subnet", target, attr_rules(SUBNET, "create", item, creating=True))
        quotas.check(self.deps.cfg, conn, item["project_id"], "subnet")
        given = item["__given__"]
        if item.get("cidr") and item.get("prefixlen") is not None:
            raise errors.bad("cidr and prefixlen must not be supplied together")
        # A subnet pool (given, or the default one) allocates the CIDR (neutrino.services.subnetpools).
        pool = subnetpools.pool_for_subnet(ctx, conn, item, net)
        cidr = item.get("cidr")
        if not cidr:
            raise errors.BadRequest(resource="subnets", msg="a subnetpool must be specified in the absence of a cidr")
        net_cidr = ipaddress.ip_network(cidr, strict=False)
        version = item["ip_version"]
        if net_cidr.version != version:
            raise errors.invalid(f"cidr '{item['cidr']}' does not match the ip_version '{version}'")
        if net_cidr.prefixlen == 0:
            raise errors.invalid("0 is not allowed as CIDR prefix length")
        self._validate_modes(item, version, net_cidr)
        if item["enable_dhcp"]:
            if (version == 4 and net_cidr.prefixlen > 30) or (version == 6 and net_cidr.prefixlen > 126):
                raise errors.invalid("Subnet has a prefix length that is incompatible with DHCP service enabled")
            if net_cidr.is_multicast or net_cidr.is_loopback:
                raise errors.invalid("Multicast or loopback IP subnet is not supported if enable_dhcp is True")
        gateway = (
            item["gateway_ip"]
            if "gateway_ip" in given
            else (subnetpools.pool_gateway(str(net_cidr)) if pool is not None else ipam.default_gateway(net_cidr))
        )
        if gateway is not None:
            self._validate_gateway(net_cidr, gateway)
        self._validate_dns_routes(item, version, "new subnet")  # no id yet: POST bodies cannot hold one
        if net.mtu < errors.MIN_MTU[version]:
            raise errors.NetworkMTUSubnetConflict(mtu=net.mtu, ip_version=version, minimum=errors.MIN_MTU[version])
        for other in conn.execute(select(t.subnets.c.cidr).where(t.subnets.c.network_id == net.id)):
            if ipaddress.ip_network(other.cidr).overlaps(net_cidr):
                raise errors.invalid(
                    f"Requested subnet with cidr: {net_cidr} for network: {net.id} overlaps with another subnet"
                )
        given_pools = item.get("allocation_pools")
        if given_pools is not None:
            pools = ipam.validate_pools(net_cidr, given_pools, gateway, self._max_pools)
        else:
            pools = ipam.default_pools(net_cidr, gateway)
        # What dnsmasq could not render is refused (neutrino.services.dhcp_options).
        dhcp_options.check_subnet("new subnet", gateway, item["host_routes"] or [])
        vals = common.std_values(item, revision=0)
        conn.execute(
            insert(t.subnets).values(
                **vals,
                network_id=net.id,
                ip_version=version,
                cidr=str(net_cidr),
                gateway_ip=gateway,
                enable_dhcp=item["enable_dhcp"],
                ipv6_ra_mode=item["ipv6_ra_mode"],
                ipv6_address_mode=item["ipv6_address_mode"],
                allocation_pools=pools,
                dns_nameservers=item["dns_nameservers"],
                host_routes=item["host_routes"],
                service_types=item["service_types"],
                subnetpool_id=pool.id if pool is not None else None,
                segment_id=item.get("segment_id"),
            )
        )
        common.bump(conn, t.networks, net.id)
        # DHCP scheduling: a DHCP subnet gets its network DHCP agents (recorded with the network below).
        if self.dhcp_scheduler is not None and item["enable_dhcp"]:
            self.dhcp_scheduler.network_changed(uow, net.id, record_network=False)
        record_network(self.deps, uow, net.id)
        out = self.get(RequestContext.admin(), conn, vals["id"])
        uow.changed("subnet", vals["id"], "create", out, item["project_id"])
        if net.external:
            add_gateway_addresses_for_subnet(self.deps, uow, out)
        return out

    @staticmethod
    def _validate_modes(item: SubnetCreate, version: int, net_cidr: Any) -> None:
        ra, addr = item.get("ipv6_ra_mode"), item.get("ipv6_address_mode")
        if version == 4:
            for key in ("ipv6_ra_mode", "ipv6_address_mode"):
                if item.get(key) is not None:
                    raise errors.invalid(f"{key} is not valid when ip_version is 4")
            return
        if (ra or addr) and not item.get("enable_dhcp", True):
            raise errors.invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
        if ra and addr and ra != addr:
            raise errors.invalid(
                f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not "
                "valid. If both attributes are set, they must be the same value"
            )
        if (addr in AUTO_ADDRESS_MODES or (ra in AUTO_ADDRESS_MODES and addr is None)) and net_cidr.prefixlen != 64:
            raise errors.invalid(
                f"Invalid CIDR {net_cidr} for IPv6 address mode. OpenStack uses the EUI-64 "
                "address format, which requires the prefix to be /64"
            )

    @staticmethod
    def _validate_gateway(net_cidr: Any, gateway: str) -> None:
        gw = ipaddress.ip_address(gateway)
        if gw.version != net_cidr.version:
            raise errors.invalid("Gateway is not valid on subnet")
        if (
            gw in net_cidr
            and net_cidr.version == 4
            and net_cidr.prefixlen < 31
            and gw in (net_cidr.network_address, net_cidr.broadcast_address)
        ):
            raise errors.invalid("Gateway is not valid on subnet")

    def _validate_dns_routes(self, item: SubnetCreate | SubnetUpdate, version: int, subnet_id: str) -> None:
        d = self.deps.cfg.default
        dns = item.get("dns_nameservers")
        if dns is not None:
            if len(dns) > d.max_dns_nameservers:
                raise errors.DNSNameServersExhausted(subnet_id=subnet_id, quota=d.max_dns_nameservers)
            for ns in dns:
                if ipaddress.ip_address(ns).version != version:
                    raise errors.invalid(f"Invalid nameserver '{ns}' for ip_version {version}")
        routes = item.get("host_routes")
        if routes is not None:
            if len(routes) > d.max_subnet_host_routes:
                raise errors.HostRoutesExhausted(subnet_id=subnet_id, quota=d.max_subnet_host_routes)
            for r in routes:
                if (
                    ipaddress.ip_network(r["destination"]).version != version
                    or ipaddress.ip_address(r["nexthop"]).version != version
                ):
                    raise errors.invalid(f"Invalid route {r} for ip_version {version}")

    # --- update / delete ----------------------------------------------------------------------
    def update(
        self, ctx: RequestContext, uow: UnitOfWork, subnet_id: str, changes: SubnetUpdate, if_match: str | None = None
    ) -> Subnet:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, subnet_id)
        net = network_target(conn, row.network_id)
        target = dict(self._dict(row, []), **{"network:project_id": net.project_id})
        policy.enforce(ctx, "update_subnet", target, attr_rules(SUBNET, "update", changes, creating=False))
        common.check_if_match(if_match, row.revision_number)
        net_cidr = ipaddress.ip_network(row.cidr)
        values: dict[str, Any] = {}  # column -> new value, for one UPDATE
        for key in ("name", "description", "service_types", "segment_id"):
            if key in changes:
                values[key] = changes[key]
        if "enable_dhcp" in changes:
            if not changes["enable_dhcp"] and (row.ipv6_ra_mode or row.ipv6_address_mode):
                raise errors.invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
            if changes["enable_dhcp"] and (
                (row.ip_version == 4 and net_cidr.prefixlen > 30) or (row.ip_version == 6 and net_cidr.prefixlen > 126)
            ):
                raise errors.invalid("Subnet has a prefix length that is incompatible with DHCP service enabled")
            values["enable_dhcp"] = changes["enable_dhcp"]
        self._validate_dns_routes(changes, row.ip_version, subnet_id)
        for name in ("dns_nameservers", "host_routes"):
            if name in changes:
                values[name] = changes[name]
        gateway = row.gateway_ip
        if "gateway_ip" in changes and changes["gateway_ip"] != row.gateway_ip:
            gateway = changes["gateway_ip"]
            if gateway is not None:
                self._validate_gateway(net_cidr, gateway)
            if row.gateway_ip:
                user = conn.execute(
                    select(t.ip_allocations.c.port_id)
                    .join(t.ports, t.ports.c.id == t.ip_allocations.c.port_id)
                    .where(
                        and_(
                            t.ip_allocations.c.subnet_id == subnet_id,
                            t.ip_allocations.c.ip_address == row.gateway_ip,
                            t.ports.c.device_owner.like("network:router_interface%"),
                        )
                    )
                ).first()
                if user:
                    raise errors.GatewayIpInUse(ip_address=row.gateway_ip, port_id=user.port_id)
            values["gateway_ip"] = gateway
        if "allocation_pools" in changes:
            pools = changes["allocation_pools"]
            values["allocation_pools"] = (
                ipam.default_pools(net_cidr, gateway)
                if pools is None
                else ipam.validate_pools(net_cidr, pools, gateway, self._max_pools)
            )
        elif "gateway_ip" in values and gateway is not None:
            # The stored pools were valid when set: the count bound is not re-applied to them.
            ipam.validate_pools(net_cidr, list(row.allocation_pools), gateway, len(row.allocation_pools))
        # What dnsmasq could not render is refused, on the resulting gateway and routes.
        if "gateway_ip" in values or "host_routes" in values:
            dhcp_options.check_subnet(subnet_id, gateway, values.get("host_routes", row.host_routes) or [])
        common.bump(conn, t.subnets, subnet_id, values)
        # DHCP scheduling: enable_dhcp toggled, so the network may gain or lose its DHCP agents.
        if self.dhcp_scheduler is not None and values.get("enable_dhcp", row.enable_dhcp) != row.enable_dhcp:
            self.dhcp_scheduler.network_changed(uow, row.network_id)
        out = self.get(RequestContext.admin(), conn, subnet_id)
        uow.changed("subnet", subnet_id, "update", out, row.project_id)
        return out

    def delete(self, ctx: RequestContext, uow: UnitOfWork, subnet_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, subnet_id)
        net = network_target(conn, row.network_id)
        policy.enforce(ctx, "delete_subnet", {"project_id": row.project_id, "network:project_id": net.project_id})
        common.check_if_match(if_match, row.revision_number)
        allocs = conn.execute(
            select(t.ip_allocations.c.port_id, t.ip_allocations.c.ip_address, t.ports.c.device_owner)
            .join(t.ports, t.ports.c.id == t.ip_allocations.c.port_id)
            .where(t.ip_allocations.c.subnet_id == subnet_id)
        ).all()
        auto_address = is_auto_address(row)
        for a in allocs:
            owner = a.device_owner or ""
            if owner.startswith("network:router_interface"):
                raise errors.SubnetInUse(subnet_id=subnet_id)
            if owner in AUTO_DELETE_OWNERS or (auto_address and not owner.startswith("network:")):
                continue
            raise errors.SubnetInUse(subnet_id=subnet_id)
        touched = sorted({a.port_id for a in allocs})
        conn.execute(delete(t.ip_allocations).where(t.ip_allocations.c.subnet_id == subnet_id))
        conn.execute(delete(t.subnets).where(t.subnets.c.id == subnet_id))
        common.delete_tags(conn, subnet_id)
        common.bump(conn, t.networks, row.network_id)
        # DHCP scheduling: the network's last DHCP subnet gone means no DHCP agents (network recorded below).
        if self.dhcp_scheduler is not None and row.enable_dhcp:
            self.dhcp_scheduler.network_changed(uow, row.network_id, record_network=False)
        record_network(self.deps, uow, row.network_id)
        uow.changed("subnet", subnet_id, "delete", None, row.project_id)
        if touched:
            record_port_changes(self.deps, uow, touched)


def record_network(deps: Deps, uow: UnitOfWork, net_id: str) -> None:
    """Put a network on the change feed after its subnets changed (its view lists them); in txn."""
    net = NetworkService(deps).get(RequestContext.admin(), uow.conn, net_id)
    uow.changed("network", net_id, "update", net, net["project_id"])
