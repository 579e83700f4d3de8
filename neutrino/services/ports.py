"""Ports: MAC and address allocation, security-group and port-security rules,
allowed address pairs, binding, DNS assignment, and the internal helpers the
router and floating-IP services use to create their own ports.
"""

from __future__ import annotations

import builtins  # the services' ``list`` method hides the builtin in their class bodies
import ipaddress
import random
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import RetryRequest, UnitOfWork
from neutrino.ipam import allocator
from neutrino.ml2 import binding
from neutrino.resources import policy
from neutrino.resources.definitions import PORT
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import (
    AddressPair,
    AddressPairBody,
    DnsAssignment,
    FixedIp,
    FixedIpBody,
    Port,
    PortCreate,
    PortUpdate,
    Subnet,
)
from neutrino.services import common, dhcp_options, quotas, rbac
from neutrino.services.common import Deps
from neutrino.services.networks import network_target
from neutrino.services.security_groups import ensure_default_group
from neutrino.services.tags import MAX_TAGS
from neutrino.services.trunks import check_port_delete, on_parent_rebound, trunk_details

#: Ports that only their owning service may delete (ServicePortInUse).
SERVICE_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:router_gateway",
    "network:floatingip",
    "network:router_centralized_snat",
    "network:ha_router_replicated_interface",
)
BOUND = ("ovs", "bridge", "other", "vhostuser", "distributed")


def is_network_device(owner: str) -> bool:
    return owner.startswith(("network:", "neutron:"))


def random_mac(base_mac: str, rng: random.Random) -> str:
    base = base_mac.split(":")[:3]
    return ":".join(base + [f"{rng.randrange(256):02x}" for _ in range(3)])


def check_device_id(ctx: RequestContext, conn: Connection, device_id: str | None, project_id: str) -> None:
    """A caller without the admin or service role may name as ``device_id`` only a router or a
    server of the port's own project (Neutron's DeviceIDNotOwnedByTenant, which Neutron applies
    to routers; servers get the same rule here).  Other values (free text, ids of nothing) pass:
    they connect the port to nothing."""
    if not device_id or ctx.is_admin or ctx.is_service:
        return
    for table in (t.routers, t.servers):
        owner = conn.execute(select(table.c.project_id).where(table.c.id == device_id)).scalar()
        if owner is not None and owner != project_id:
            raise errors.DeviceIDNotOwnedByTenant(device_id=device_id)


def owned_by_service(conn: Connection, row: Any) -> bool:
    """Whether a port with a service owner really is that service's: one of a router's recorded
    ports, or a floating IP's own port.  A port that only says so in its owner fields is not."""
    if common.exists(conn, t.router_ports, t.router_ports.c.port_id == row.id):
        return True
    return common.exists(conn, t.floatingips, t.floatingips.c.floating_port_id == row.id)


def _port_select() -> Any:
    return select(t.ports)


class PortService:
    resource = PORT

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.cache: common.VersionedCache[Port] = common.VersionedCache()

    # --- reading ---------------------------------------------------------------------------------
    @staticmethod
    def _visible_stmt(ctx: RequestContext, *cols: Any) -> Any:
        base = select(*cols) if cols else select(t.ports)
        if ctx.is_admin or ctx.is_service:
            return base.where(true())
        return base.join(t.networks, t.networks.c.id == t.ports.c.network_id).where(
            or_(t.ports.c.project_id == ctx.project_id, t.networks.c.project_id == ctx.project_id)
        )

    def dicts(self, conn: Connection, rows: list[Any]) -> list[Port]:
        ids = [r.id for r in rows]
        ips: dict[str, list[FixedIp]] = {}
        sgs: dict[str, list[str]] = {}
        if ids:
            iq = select(
                t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address
            ).order_by(t.ip_allocations.c.port_id, t.ip_allocations.c.position)
            gq = select(t.port_security_groups.c.port_id, t.port_security_groups.c.security_group_id)
            if len(ids) <= 400:
                iq = iq.where(t.ip_allocations.c.port_id.in_(ids))
                gq = gq.where(t.port_security_groups.c.port_id.in_(ids))
            for pid, sid, ip in conn.execute(iq):
                ips.setdefault(pid, []).append({"subnet_id": sid, "ip_address": ip})
            for pid, sg in conn.execute(gq):
                sgs.setdefault(pid, []).append(sg)
        tags = common.load_tags(conn, "ports", ids)
        domain = self.deps.cfg.default.dns_domain
        out = [self._dict(r, ips.get(r.id, []), sorted(sgs.get(r.id, [])), tags.get(r.id, []), domain) for r in rows]
        details = trunk_details(conn, ids)  # trunk-details: on trunk parents only
        for d in out:
            if d["id"] in details:
                d["trunk_details"] = details[d["id"]]
            self.cache.put(d["id"], d["revision_number"], d)
        return out

    def cached_dicts(self, conn: Connection, keys: list[Any]) -> list[Port]:
        """Dicts for (id, revision_number) rows, from the cache where it is current."""
        found: dict[str, Port] = {}
        missing = []
        for k in keys:
            hit = self.cache.get(k.id, k.revision_number)
            if hit is None:
                missing.append(k.id)
            else:
                found[k.id] = hit
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            for d in self.dicts(conn, list(conn.execute(select(t.ports).where(t.ports.c.id.in_(chunk))))):
                found[d["id"]] = d
        return [found[k.id] for k in keys if k.id in found]

    @staticmethod
    def _dict(r: Any, fixed_ips: list[FixedIp], sgs: list[str], tags: list[str], domain: str) -> Port:
        dns: list[DnsAssignment] = []
        for f in fixed_ips:
            host = r.dns_name or "host-" + f["ip_address"].replace(".", "-").replace(":", "-")
            dns.append({"ip_address": f["ip_address"], "hostname": host, "fqdn": f"{host}.{domain}."})
        return {
            "id": r.id,
            "name": r.name,
            "network_id": r.network_id,
            "tenant_id": r.project_id,
            "mac_address": r.mac_address,
            "admin_state_up": r.admin_state_up,
            "status": r.status,
            "device_id": r.device_id,
            "device_owner": r.device_owner,
            "fixed_ips": fixed_ips,
            "allowed_address_pairs": list(r.allowed_address_pairs),
            "extra_dhcp_opts": dhcp_options.stored(r.extra_dhcp_opts),  # with ip_version, as Neutron
            "security_groups": sgs,
            "description": r.description,
            "binding:vnic_type": r.binding_vnic_type,
            "binding:profile": dict(r.binding_profile),
            "binding:host_id": r.binding_host_id,
            "binding:vif_type": r.binding_vif_type,
            "binding:vif_details": _vif_details(r),
            "port_security_enabled": r.port_security_enabled,
            "dns_name": r.dns_name,
            "dns_assignment": dns,
            "dns_domain": "",
            "ip_allocation": "immediate",
            "propagate_uplink_status": False,
            "tags": tags,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "revision_number": r.revision_number,
            "project_id": r.project_id,
        }

    def fetch_row(self, ctx: RequestContext, conn: Connection, port_id: str) -> Any:
        row = conn.execute(self._visible_stmt(ctx).where(t.ports.c.id == port_id)).first()
        if row is None:
            raise errors.PortNotFound(port_id=port_id)
        return row

    def get(self, ctx: RequestContext, conn: Connection, port_id: str) -> Port:
        key = conn.execute(
            self._visible_stmt(ctx, t.ports.c.id, t.ports.c.revision_number).where(t.ports.c.id == port_id)
        ).first()
        if key is None:
            raise errors.PortNotFound(port_id=port_id)
        return self.cached_dicts(conn, [key])[0]

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[Port], set[str]]:
        stmt, pushed = common.push_filters(
            self._visible_stmt(ctx, t.ports.c.id, t.ports.c.revision_number), t.ports, PORT, q
        )
        if q.special.get("fixed_ips"):
            stmt = stmt.where(t.ports.c.id.in_(fixed_ips_filter(q.special["fixed_ips"])))
        for sub in q.special.get("ip_address_substr", []):
            stmt = stmt.where(
                t.ports.c.id.in_(
                    select(t.ip_allocations.c.port_id).where(
                        t.ip_allocations.c.ip_address.contains(sub, autoescape=True)
                    )
                )
            )
        if "security_groups" in q.filters:
            stmt = stmt.where(
                t.ports.c.id.in_(
                    select(t.port_security_groups.c.port_id).where(
                        t.port_security_groups.c.security_group_id.in_(q.filters["security_groups"])
                    )
                )
            )
            pushed.add("security_groups")
        keys = list(conn.execute(stmt.order_by(t.ports.c.created_at, t.ports.c.id)))
        return self.cached_dicts(conn, keys), pushed

    # --- create ----------------------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: PortCreate) -> Port:
        conn = uow.conn
        net = network_target(conn, item["network_id"])
        if net is None or not rbac.network_reachable(conn, ctx, net):
            raise errors.NetworkNotFound(net_id=item["network_id"])
        self.authorize_create(ctx, conn, net, item)
        quotas.check(self.deps.cfg, conn, item["project_id"], "port")
        port = self.insert_port(uow, net, item, admin=ctx.is_admin)
        return port

    @staticmethod
    def authorize_create(ctx: RequestContext, conn: Connection, net: Any, item: Mapping[str, Any]) -> None:
        """``create_port`` policy (with its attribute rules) and the device_id ownership rule, for
        ``ctx`` creating ``item`` on ``net``: every path that makes a port for a caller, the port API
        and the compute API's server create, goes through here.  ``item``: a ``PortCreate``, or the
        part of one the compute API builds (hence a plain mapping)."""
        target = dict(
            item, **{"network:project_id": net.project_id, "network:shared": rbac.network_shared_with(conn, ctx, net)}
        )
        policy.enforce(ctx, "create_port", target, attr_rules(PORT, "create", item, creating=True))
        check_device_id(ctx, conn, item.get("device_id"), item["project_id"])

    def insert_port(
        self,
        uow: UnitOfWork,
        net: Any,
        item: Mapping[str, Any],
        *,
        status: str = "DOWN",
        record: bool = True,
        admin: bool = True,
    ) -> Port:
        """Create a port row with its addresses and groups (no policy; in txn).

        ``item``: a ``PortCreate``, or the partial ones the router, floating IP and compute services
        build for their own ports (a plain mapping: a missing key takes its default here).
        ``admin=False``: the groups must belong to the port's project (Neutron
        checks this for every non-admin caller).
        """
        conn = uow.conn
        dhcp_options.check_port(item)  # extra_dhcp_opts / dns_name dnsmasq could not use (dhcp_options)
        rng = self.deps.rng
        owner = item.get("device_owner") or ""
        mac = item.get("mac_address")
        if mac is not None:
            if common.exists(conn, t.ports, t.ports.c.network_id == net.id, t.ports.c.mac_address == mac):
                raise errors.MacAddressInUse(net_id=net.id, mac=mac)
        else:
            for _ in range(16):
                mac = random_mac(self.deps.cfg.default.base_mac, rng)
                if not common.exists(conn, t.ports, t.ports.c.network_id == net.id, t.ports.c.mac_address == mac):
                    break
            else:
                raise errors.MacAddressGenerationFailure(net_id=net.id)
        fixed = allocator.allocate(conn, net.id, item.get("fixed_ips"), mac=mac, owner=owner, rng=rng)
        pse = item.get("port_security_enabled")
        if pse is None:
            pse = net.port_security_enabled
        sgs = item.get("security_groups")
        aaps = self._normalise_aaps(item.get("allowed_address_pairs") or [], mac)
        if aaps and not pse:
            raise errors.AddressPairAndPortSecurityRequired()
        if sgs is None:
            sgs = []
            # The project's default group, with or without an address (as ML2 now does).
            if pse and not is_network_device(owner) and item["project_id"]:
                sgs = [ensure_default_group(uow, item["project_id"])]
        elif sgs:
            # Only port security off forbids groups: a port without an address may carry them
            # (Neutron dropped its "and an IP address" condition; the message keeps the old text).
            if not pse:
                raise errors.PortSecurityAndIPRequiredForSecurityGroups()
            self._check_groups(conn, sgs, item["project_id"], admin)
        vals = common.std_values(item, revision=1)
        port_id = vals["id"]
        host = item.get("binding:host_id") or ""
        vif_type, details = self._bind(conn, net.id, host)
        conn.execute(
            insert(t.ports).values(
                **vals,
                network_id=net.id,
                mac_address=mac,
                admin_state_up=item.get("admin_state_up", True),
                status=status,
                device_id=item.get("device_id") or "",
                device_owner=owner,
                port_security_enabled=pse,
                allowed_address_pairs=aaps,
                extra_dhcp_opts=dhcp_options.stored(item.get("extra_dhcp_opts") or ()),  # null values dropped
                dns_name=item.get("dns_name") or "",
                binding_host_id=host,
                binding_profile=item.get("binding:profile") or {},
                binding_vnic_type=item.get("binding:vnic_type") or "normal",
                binding_vif_type=vif_type,
                binding_vif_details=details,
            )
        )
        self._insert_ips(conn, port_id, net.id, fixed)
        if sgs:
            conn.execute(insert(t.port_security_groups), [{"port_id": port_id, "security_group_id": g} for g in sgs])
        if item.get("tags"):  # tag-ports-during-bulk-creation (single and bulk POST)
            _check_tag_count(item["tags"])
            common.set_tags(conn, "ports", port_id, item["tags"])
        out = self.dicts(conn, [conn.execute(select(t.ports).where(t.ports.c.id == port_id)).one()])[0]
        if record:
            uow.changed("port", port_id, "create", out, item["project_id"])
        return out

    @staticmethod
    def _insert_ips(
        conn: Connection, port_id: str, net_id: str, fixed: builtins.list[tuple[str, str]], start: int = 0
    ) -> None:
        if fixed:
            conn.execute(
                insert(t.ip_allocations),
                [
                    {"subnet_id": s, "ip_address": a, "port_id": port_id, "network_id": net_id, "position": start + i}
                    for i, (s, a) in enumerate(fixed)
                ],
            )

    def _normalise_aaps(self, aaps: builtins.list[AddressPairBody], mac: str) -> builtins.list[AddressPair]:
        limit = self.deps.cfg.default.max_allowed_address_pair
        if len(aaps) > limit:
            raise errors.AllowedAddressPairExhausted(quota=limit)
        raw_seen: set[tuple[Any, str]] = set()
        for p in aaps:  # neutron-lib compares the pairs as given (mac may be absent)
            key = (p.get("mac_address"), p["ip_address"])
            if key in raw_seen:
                raise errors.DuplicateAddressPairInRequest(mac_address=key[0], ip_address=key[1])
            raw_seen.add(key)
        out: list[AddressPair] = []
        for p in aaps:
            addr = p["ip_address"]
            net = ipaddress.ip_network(addr, strict=False)
            if net.is_multicast:
                raise errors.invalid(f"Allowed address pair {addr} is a multicast address")
            entry: AddressPair = {"ip_address": addr, "mac_address": p.get("mac_address") or mac}
            if entry in out:
                raise errors.DuplicateAddressPairInRequest(mac_address=entry["mac_address"], ip_address=addr)
            out.append(entry)
        return out

    @staticmethod
    def _check_groups(conn: Connection, sgs: builtins.list[str], project_id: str, admin: bool = True) -> None:
        """Every group exists and is usable by the port's project (404 otherwise; any
        string may come here, see ``definitions._group_id``), and the groups are all
        stateful or all stateless (409, as Neutron: one port, one firewall mode)."""
        rows = {
            r.id: r
            for r in conn.execute(
                select(t.security_groups.c.id, t.security_groups.c.project_id, t.security_groups.c.stateful).where(
                    t.security_groups.c.id.in_(sgs)
                )
            )
        }
        # Groups of other projects: only those shared with the port's project (RBAC).
        foreign = [g for g in rows if not (admin or not project_id or rows[g].project_id == project_id)]
        usable = rbac.group_usable(conn, foreign, project_id)
        missing = [g for g in dict.fromkeys(sgs) if g not in rows or (g in foreign and g not in usable)]
        if missing:
            raise errors.SecurityGroupNotFound(id=errors.echo(", ".join(missing), limit=2000))
        if len({bool(rows[g].stateful) for g in sgs}) > 1:
            raise errors.SecurityGroupConflict(
                reason="Cannot apply both stateful and stateless security groups on the same port at the same time"
            )

    def _bind(self, conn: Connection, net_id: str, host: str) -> tuple[str, dict[str, Any]]:  # vif details: free-form
        if not host:
            return binding.UNBOUND, {}
        seg = conn.execute(
            select(t.network_segments)
            .where(t.network_segments.c.network_id == net_id)
            .order_by(t.network_segments.c.segment_index)
        ).first()
        return binding.bind(conn, host, seg, self.deps.cfg.default.agent_down_time)

    # --- update ----------------------------------------------------------------------------------
    def update(
        self, ctx: RequestContext, uow: UnitOfWork, port_id: str, changes: PortUpdate, if_match: str | None = None
    ) -> Port:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, port_id)
        net = network_target(conn, row.network_id)
        current = self.dicts(conn, [row])[0]
        target = dict(
            current,
            **{"network:project_id": net.project_id, "network:shared": rbac.network_shared_with(conn, ctx, net)},
        )
        if "device_owner" in changes:
            target["device_owner"] = changes["device_owner"]
        policy.enforce(ctx, "update_port", target, attr_rules(PORT, "update", changes, creating=False))
        if "device_id" in changes or "device_owner" in changes:
            check_device_id(ctx, conn, changes.get("device_id", row.device_id), row.project_id)
        common.check_if_match(if_match, row.revision_number)
        return self.apply_update(uow, row, net, current, changes, admin=ctx.is_admin)

    def apply_update(
        self,
        uow: UnitOfWork,
        row: Any,
        net: Any,
        current: Port,
        changes: PortUpdate,
        *,
        admin: bool = True,
    ) -> Port:
        """Apply validated changes to a port (no policy; in txn)."""
        conn = uow.conn
        port_id = row.id
        dhcp_options.check_port(changes)  # extra_dhcp_opts / dns_name dnsmasq could not use (dhcp_options)
        values: dict[str, Any] = {}  # column -> new value, for one UPDATE
        given: Mapping[str, Any] = changes  # read by attribute name in the loop below
        for key, col in (
            ("name", "name"),
            ("description", "description"),
            ("admin_state_up", "admin_state_up"),
            ("device_id", "device_id"),
            ("device_owner", "device_owner"),
            ("dns_name", "dns_name"),
            ("binding:profile", "binding_profile"),
            ("binding:vnic_type", "binding_vnic_type"),
        ):
            if key in given:
                values[col] = given[key]
        new_opts = changes.get("extra_dhcp_opts")
        if new_opts:
            # Merged into the port's options, as Neutron (null or [] changes nothing; dhcp_options.merged).
            opts = dhcp_options.merged(current["extra_dhcp_opts"], new_opts)
            dhcp_options.check_extra_dhcp_opts(opts)  # e.g. 'MTU' added next to an existing 'mtu'
            values["extra_dhcp_opts"] = opts
        mac = row.mac_address
        if "mac_address" in changes and changes["mac_address"] != row.mac_address:
            if row.binding_vif_type in BOUND:
                raise errors.PortBound(
                    port_id=port_id,
                    vif_type=row.binding_vif_type,
                    old_mac=row.mac_address,
                    new_mac=changes["mac_address"],
                )
            mac = changes["mac_address"]
            if common.exists(conn, t.ports, t.ports.c.network_id == net.id, t.ports.c.mac_address == mac):
                raise errors.MacAddressInUse(net_id=net.id, mac=mac)
            values["mac_address"] = mac
        fixed = current["fixed_ips"]
        if "fixed_ips" in changes:
            fixed = self._update_ips(conn, row, net, current, changes["fixed_ips"] or [], mac)
            for hook in self.deps.port_addresses_released:  # l3.register: port forwardings to dropped addresses go
                hook(uow, port_id, {f["ip_address"] for f in fixed})
        pse = changes.get("port_security_enabled", row.port_security_enabled)
        sgs = changes["security_groups"] if "security_groups" in changes else current["security_groups"]
        if sgs is None:
            sgs = []
        if "port_security_enabled" in changes:
            values["port_security_enabled"] = pse
        if "allowed_address_pairs" in changes:
            values["allowed_address_pairs"] = self._normalise_aaps(changes["allowed_address_pairs"] or [], mac)
        aaps = values.get("allowed_address_pairs", current["allowed_address_pairs"])
        if not pse:
            # ML2's order: address pairs first, then security groups (given, or already on the port).
            if aaps:
                raise errors.AddressPairAndPortSecurityRequired()
            if sgs and "security_groups" in changes:
                raise errors.PortSecurityAndIPRequiredForSecurityGroups()
            if sgs:
                raise errors.PortSecurityPortHasSecurityGroup()
        if "security_groups" in changes and sgs:  # with or without addresses (see insert_port)
            self._check_groups(conn, sgs, row.project_id, admin)
        if "security_groups" in changes:
            conn.execute(delete(t.port_security_groups).where(t.port_security_groups.c.port_id == port_id))
            if sgs:
                conn.execute(
                    insert(t.port_security_groups),
                    [{"port_id": port_id, "security_group_id": g} for g in dict.fromkeys(sgs)],
                )
        if "binding:host_id" in changes and changes["binding:host_id"] != row.binding_host_id:
            host = changes["binding:host_id"]
            values["binding_host_id"] = host
            values["binding_vif_type"], values["binding_vif_details"] = self._bind(conn, net.id, host)
            values["status"] = "DOWN"
        common.bump(conn, t.ports, port_id, values)
        if "binding_host_id" in values:  # a trunk's subports follow their parent's host
            on_parent_rebound(self, uow, port_id, values["binding_host_id"])
        out = self.dicts(conn, [conn.execute(select(t.ports).where(t.ports.c.id == port_id)).one()])[0]
        uow.changed("port", port_id, "update", out, row.project_id)
        return out

    def _update_ips(
        self,
        conn: Connection,
        row: Any,
        net: Any,
        current: Port,
        wanted: builtins.list[FixedIpBody],
        mac: str,
    ) -> builtins.list[FixedIp]:
        """Make the port's addresses the complete ``wanted`` set; keep those that stay."""
        have = {(f["subnet_id"], f["ip_address"]) for f in current["fixed_ips"]}
        keep: list[tuple[str, str]] = []
        new_reqs: list[FixedIpBody] = []
        for w in wanted:
            addr = w.get("ip_address")
            match = (
                next((h for h in have if h[1] == addr and (w.get("subnet_id") in (None, h[0]))), None) if addr else None
            )
            if match:
                keep.append(match)
            else:
                new_reqs.append(w)
        # Addresses on SLAAC/DHCPv6-stateless subnets stay unless the request names that subnet
        # (Neutron only removes automatic addresses when asked explicitly).
        named = {w.get("subnet_id") for w in wanted}
        auto = {s.id for s in allocator.network_subnets(conn, net.id) if allocator.subnet_is_auto(s)}
        for h in sorted(
            have - set(keep), key=lambda f: current["fixed_ips"].index({"subnet_id": f[0], "ip_address": f[1]})
        ):
            if h[0] in auto and h[0] not in named:
                keep.append(h)
        conn.execute(delete(t.ip_allocations).where(t.ip_allocations.c.port_id == row.id))
        added = (
            allocator.allocate(conn, net.id, new_reqs, mac=mac, owner=row.device_owner, rng=self.deps.rng)
            if new_reqs
            else []
        )
        self._insert_ips(conn, row.id, net.id, keep + added)
        return [{"subnet_id": s, "ip_address": a} for s, a in keep + added]

    # --- delete ----------------------------------------------------------------------------------
    def delete(self, ctx: RequestContext, uow: UnitOfWork, port_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, port_id)
        net = network_target(conn, row.network_id)
        policy.enforce(
            ctx,
            "delete_port",
            {"project_id": row.project_id, "network:project_id": net.project_id, "device_owner": row.device_owner},
        )
        common.check_if_match(if_match, row.revision_number)
        if row.device_owner in SERVICE_OWNERS and owned_by_service(conn, row):
            raise errors.ServicePortInUse(port_id=port_id, reason=f"has device owner {row.device_owner}")
        check_port_delete(conn, port_id)  # 409 for a trunk's parent or subport
        self.remove(uow, row)

    def remove(self, uow: UnitOfWork, row: Any) -> None:
        """Delete a port and what hangs off it (floating IP associations, port
        forwardings to it); in txn."""
        conn = uow.conn
        for hook in self.deps.port_addresses_released:  # l3.register: the port forwardings to it go
            hook(uow, row.id, None)
        fips = conn.execute(
            select(t.floatingips.c.id, t.floatingips.c.project_id).where(t.floatingips.c.fixed_port_id == row.id)
        ).all()
        for fip in fips:
            conn.execute(
                update(t.floatingips)
                .where(t.floatingips.c.id == fip.id)
                .values(fixed_port_id=None, fixed_ip_address=None, router_id=None)
            )
        conn.execute(delete(t.ports).where(t.ports.c.id == row.id))
        common.delete_tags(conn, row.id)
        uow.changed("port", row.id, "delete", None, row.project_id)
        if fips:  # their association changed: a new revision each, on the feed
            for fip in fips:
                common.bump(conn, t.floatingips, fip.id)
            self.deps.record(uow, "floatingip", [f.id for f in fips])


def fixed_ips_filter(raw_values: list[str]) -> Any:
    """The ids of ports matching ``fixed_ips=<key>=<value>`` filters, as Neutron reads them: keys
    ``ip_address``, ``subnet_id`` and ``ip_address_substr`` (ip-substring-filtering); values of one
    key are alternatives, different keys must hold for the same address.  Another key is 400."""
    wanted: dict[str, list[str]] = {}
    for raw in raw_values:
        key, sep, value = raw.partition("=")
        if not sep or key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise errors.bad(f"Invalid fixed_ips filter '{errors.echo(raw)}'")
        wanted.setdefault(key, []).append(value)
    ips = t.ip_allocations.c
    conds: list[ColumnElement[bool]] = []
    if "ip_address" in wanted:
        conds.append(ips.ip_address.in_(wanted["ip_address"]))
    if "subnet_id" in wanted:
        conds.append(ips.subnet_id.in_(wanted["subnet_id"]))
    if "ip_address_substr" in wanted:  # a substring, not a pattern: % and _ match themselves
        conds.append(or_(*[ips.ip_address.contains(v, autoescape=True) for v in wanted["ip_address_substr"]]))
    return select(ips.port_id).where(and_(*conds))


def record_port_changes(deps: Deps, uow: UnitOfWork, port_ids: Iterable[str]) -> None:
    """Re-read ports after an indirect change and put them on the feed."""
    svc = PortService(deps)
    for pid in port_ids:
        common.bump(uow.conn, t.ports, pid)
    rows = uow.conn.execute(select(t.ports).where(t.ports.c.id.in_(list(port_ids)))).all()
    for d in svc.dicts(uow.conn, list(rows)):
        uow.changed("port", d["id"], "update", d, d["project_id"])


def add_gateway_addresses_for_subnet(deps: Deps, uow: UnitOfWork, subnet: Subnet) -> None:
    """A new subnet on an external network gives each router gateway port an address on it."""
    conn = uow.conn
    if subnet["ip_version"] != 4 and subnet.get("ipv6_address_mode") is None:
        return
    gw_ports = conn.execute(
        select(t.ports).where(
            and_(t.ports.c.network_id == subnet["network_id"], t.ports.c.device_owner == "network:router_gateway")
        )
    ).all()
    for p in gw_ports:
        if common.exists(
            conn, t.ip_allocations, t.ip_allocations.c.port_id == p.id, t.ip_allocations.c.subnet_id == subnet["id"]
        ):
            continue
        got = allocator.allocate(
            conn, p.network_id, [{"subnet_id": subnet["id"]}], mac=p.mac_address, owner=p.device_owner, rng=deps.rng
        )
        n = conn.execute(select(t.ip_allocations.c.position).where(t.ip_allocations.c.port_id == p.id)).all()
        PortService._insert_ips(conn, p.id, p.network_id, got, start=len(n))
    if gw_ports:
        record_port_changes(deps, uow, [p.id for p in gw_ports])


def _check_tag_count(tags: list[str]) -> None:
    if len(set(tags)) > MAX_TAGS:
        raise errors.bad(f"Invalid input for tags. Reason: more than {MAX_TAGS} tags.")


def _vif_details(r: Any) -> dict[str, Any]:  # free-form, as Neutron's binding:vif_details
    """The binding's details, plus ``dhcp_opts_left_out`` (``name/ipv4``...) when the port has extra DHCP
    options the DHCP agent leaves out of dnsmasq's files (names dnsmasq does not know; ``dhcp_options``)."""
    details = dict(r.binding_vif_details)
    skipped = dhcp_options.left_out(r.extra_dhcp_opts or ())
    if skipped:
        details["dhcp_opts_left_out"] = skipped
    return details


__all__ = ["PortService", "RetryRequest", "record_port_changes", "add_gateway_addresses_for_subnet"]
