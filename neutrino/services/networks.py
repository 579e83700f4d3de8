"""Networks: ML2 segments, MTU, sharing/external flags, visibility and deletion."""

from __future__ import annotations

import builtins  # the service's ``list`` method hides the builtin in its class body
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, true
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.ml2.types import Segment
from neutrino.resources import policy
from neutrino.resources.definitions import NETWORK
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import Network, NetworkCreate, NetworkUpdate
from neutrino.services import common, quotas, rbac
from neutrino.services.common import Deps
from neutrino.services.dhcp_scheduler import hosting_zones
from neutrino.services.security_groups import ensure_default_group
from neutrino.services.subnetpools import network_address_scopes

#: Ports removed with their network (they do not block its deletion).
AUTO_DELETE_OWNERS = ("network:dhcp", "network:distributed", "network:floatingip_agent_gateway")


def visible_clause(ctx: RequestContext) -> Any:
    """Networks a caller may read: own, or shared / external for its project or for every
    project by an RBAC policy (``neutrino.services.rbac``; admin: all)."""
    if ctx.is_admin:
        return true()
    return or_(
        t.networks.c.project_id == ctx.project_id,
        t.networks.c.shared == true(),
        t.networks.c.id.in_(rbac.accessible_ids("network", ctx.project_id, rbac.NETWORK_ACCESS)),
    )


class NetworkService:
    resource = NETWORK
    #: DHCP scheduling hooks (``neutrino.services.dhcp_scheduler.DhcpScheduler``, set by the agents service).
    dhcp_scheduler: Any = None

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- reading ------------------------------------------------------------------
    def _rows_to_dicts(self, conn: Connection, rows: list[Any]) -> list[Network]:
        ids = [r.id for r in rows]
        subnets: dict[str, list[str]] = {}
        segs: dict[str, list[Any]] = {}
        if ids:
            sq = select(t.subnets.c.network_id, t.subnets.c.id).order_by(t.subnets.c.created_at, t.subnets.c.id)
            gq = select(t.network_segments).order_by(t.network_segments.c.segment_index)
            if len(ids) <= 400:
                sq = sq.where(t.subnets.c.network_id.in_(ids))
                gq = gq.where(t.network_segments.c.network_id.in_(ids))
            for nid, sid in conn.execute(sq):
                subnets.setdefault(nid, []).append(sid)
            for g in conn.execute(gq):
                segs.setdefault(g.network_id, []).append(g)
        tags = common.load_tags(conn, "networks", ids)
        out = [self._dict(r, subnets.get(r.id, []), segs.get(r.id, []), tags.get(r.id, [])) for r in rows]
        # availability_zones: the zones of the DHCP agents hosting the network (dhcp_scheduler).
        zones = hosting_zones(conn, ids)
        # ipv4/ipv6_address_scope: the address scope of the pools of the network's subnets.
        scopes = network_address_scopes(conn, ids)
        for d in out:
            d["availability_zones"] = zones.get(d["id"], [])
            d["ipv4_address_scope"] = scopes.get(d["id"], {}).get(4)
            d["ipv6_address_scope"] = scopes.get(d["id"], {}).get(6)
        return out

    @staticmethod
    def _dict(r: Any, subnets: list[str], segs: list[Any], tags: list[str]) -> Network:
        seg = segs[0] if segs else None
        # Neutron's order: ..., description, l2_adjacency, tags, created_at, ...
        tail = common.std_tail(r, tags)
        d: Network = {
            "id": r.id,
            "name": r.name,
            "tenant_id": r.project_id,
            "project_id": r.project_id,
            "admin_state_up": r.admin_state_up,
            "mtu": r.mtu,
            "status": r.status,
            "subnets": subnets,
            "shared": r.shared,
            "port_security_enabled": r.port_security_enabled,
            "dns_domain": r.dns_domain,
            "router:external": r.external,
            "provider:network_type": seg.network_type if seg else None,
            "provider:physical_network": seg.physical_network if seg else None,
            "provider:segmentation_id": seg.segmentation_id if seg else None,
            "is_default": r.is_default,
            "availability_zone_hints": list(r.availability_zone_hints or []),
            "availability_zones": [],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "description": tail["description"],
            "l2_adjacency": True,
            "tags": tail["tags"],
            "created_at": tail["created_at"],
            "updated_at": tail["updated_at"],
            "revision_number": tail["revision_number"],
        }
        if len(segs) > 1:
            d["segments"] = [
                {
                    "provider:network_type": s.network_type,
                    "provider:physical_network": s.physical_network,
                    "provider:segmentation_id": s.segmentation_id,
                }
                for s in segs
            ]
        return d

    def fetch_row(self, ctx: RequestContext, conn: Connection, net_id: str) -> Any:
        row = conn.execute(select(t.networks).where(and_(t.networks.c.id == net_id, visible_clause(ctx)))).first()
        if row is None:
            raise errors.NetworkNotFound(net_id=net_id)
        return row

    def get(self, ctx: RequestContext, conn: Connection, net_id: str) -> Network:
        out = self._rows_to_dicts(conn, [self.fetch_row(ctx, conn, net_id)])
        rbac.mark_shared(conn, ctx, "network", out)  # "shared" means shared with the caller
        return out[0]

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[Network], set[str]]:
        stmt = select(t.networks).where(visible_clause(ctx))
        stmt, pushed = common.push_filters(stmt, t.networks, NETWORK, q)
        rows = list(conn.execute(stmt.order_by(t.networks.c.created_at, t.networks.c.id)))
        out = self._rows_to_dicts(conn, rows)
        rbac.mark_shared(conn, ctx, "network", out)  # "shared" means shared with the caller
        return out, pushed

    # --- writing --------------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: NetworkCreate) -> Network:
        policy.enforce(ctx, "create_network", item, attr_rules(NETWORK, "create", item, creating=True))
        quotas.check(self.deps.cfg, uow.conn, item["project_id"], "network")
        if item.get("segments") is not None:
            if any(
                item.get(k) is not None
                for k in ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
            ):
                raise errors.SegmentsSetInConjunctionWithProviders()
            raise errors.invalid("Multi-segment (multi-provider) networks are not supported")
        conn = uow.conn
        types = self.deps.types
        seg = types.provider_segment(item)
        vals = common.std_values(item, revision=1)
        net_id = vals["id"]
        # Insert first with a placeholder MTU: segments reference the network.
        conn.execute(
            insert(t.networks).values(
                **vals,
                admin_state_up=item["admin_state_up"],
                status="ACTIVE",
                shared=item["shared"],
                external=item["router:external"],
                is_default=item["is_default"],
                mtu=0,
                port_security_enabled=item["port_security_enabled"],
                dns_domain=item["dns_domain"],
                availability_zone_hints=item["availability_zone_hints"],
            )
        )
        seg = types.reserve_network_segment(conn, net_id, seg, item["router:external"])
        # shared / router:external stand for wildcard RBAC policies (neutrino.services.rbac).
        rbac.set_wildcard(conn, "network", net_id, vals["project_id"], rbac.ACCESS_SHARED, item["shared"])
        rbac.set_wildcard(conn, "network", net_id, vals["project_id"], rbac.ACCESS_EXTERNAL, item["router:external"])
        max_mtu = types.network_mtu([seg])
        mtu = item["mtu"] or max_mtu
        if max_mtu and mtu > max_mtu:  # no maximum known (0): any MTU, as in Neutron
            raise errors.invalid(f"Requested MTU is too big, maximum is {max_mtu}")
        conn.execute(t.networks.update().where(t.networks.c.id == net_id).values(mtu=mtu))
        if item["project_id"]:
            ensure_default_group(uow, item["project_id"])
        out = self.get(RequestContext.admin(), conn, net_id)
        uow.changed("network", net_id, "create", out, item["project_id"])
        return out

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, net_id: str, changes: NetworkUpdate, if_match: str | None = None
    ) -> Network:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, net_id)
        current = self._rows_to_dicts(conn, [row])[0]
        target = dict(current)
        policy.enforce(ctx, "update_network", target, attr_rules(NETWORK, "update", changes, creating=False))
        common.check_if_match(if_match, row.revision_number)
        values: dict[str, Any] = {}  # column -> new value, for one UPDATE
        for key in ("name", "description", "admin_state_up", "port_security_enabled", "dns_domain", "is_default"):
            if key in changes:
                values[key] = changes[key]
        if (
            "provider:network_type" in changes
            or "provider:physical_network" in changes
            or "provider:segmentation_id" in changes
        ):
            self._update_segment(conn, current, changes)
        if "router:external" in changes and changes["router:external"] != row.external:
            if not changes["router:external"] and common.exists(
                conn, t.ports, t.ports.c.network_id == net_id, t.ports.c.device_owner == "network:router_gateway"
            ):
                raise errors.ExternalNetworkInUse(net_id=net_id)
            values["external"] = changes["router:external"]
            if changes["router:external"]:  # the wildcard policy; false drops every external policy
                rbac.set_wildcard(conn, "network", net_id, row.project_id, rbac.ACCESS_EXTERNAL, True)
            else:
                rbac.remove_action(conn, "network", net_id, rbac.ACCESS_EXTERNAL)
        if "shared" in changes and changes["shared"] != row.shared:
            if not changes["shared"]:
                # Projects using the network, other than its owner and those it is shared with
                # by a policy of their own, would lose it.
                users = {
                    p
                    for (p,) in conn.execute(
                        select(t.ports.c.project_id)
                        .where(
                            and_(
                                t.ports.c.network_id == net_id,
                                t.ports.c.project_id != row.project_id,
                                t.ports.c.project_id != "",
                                ~t.ports.c.device_owner.like("network:%"),
                            )
                        )
                        .distinct()
                    )
                }
                users |= {
                    p
                    for (p,) in conn.execute(
                        select(t.subnets.c.project_id)
                        .where(and_(t.subnets.c.network_id == net_id, t.subnets.c.project_id != row.project_id))
                        .distinct()
                    )
                }
                if users - rbac.targets(conn, "network", net_id, rbac.ACCESS_SHARED):
                    raise errors.InvalidSharedSetting(network=row.name or net_id)
            values["shared"] = changes["shared"]
            rbac.set_wildcard(conn, "network", net_id, row.project_id, rbac.ACCESS_SHARED, changes["shared"])
        if "mtu" in changes:
            segs = [
                Segment(g.network_type, g.physical_network, g.segmentation_id)
                for g in conn.execute(select(t.network_segments).where(t.network_segments.c.network_id == net_id))
            ]
            max_mtu = self.deps.types.network_mtu(segs)
            mtu = changes["mtu"] or max_mtu
            if max_mtu and mtu > max_mtu:
                raise errors.invalid(f"Requested MTU is too big, maximum is {max_mtu}")
            for (version,) in conn.execute(
                select(t.subnets.c.ip_version)
                .where(t.subnets.c.network_id == net_id)
                .distinct()
                .order_by(t.subnets.c.ip_version)
            ):
                if mtu < errors.MIN_MTU[version]:  # its subnets' IP versions need at least this
                    raise errors.NetworkMTUSubnetConflict(mtu=mtu, ip_version=version, minimum=errors.MIN_MTU[version])
            values["mtu"] = mtu
        common.bump(conn, t.networks, net_id, values)
        out = self.get(RequestContext.admin(), conn, net_id)
        uow.changed("network", net_id, "update", out, row.project_id)
        return out

    def _update_segment(self, conn: Connection, current: Network, changes: NetworkUpdate) -> None:
        """Only the VLAN id of a VLAN network may change (as in Neutron)."""
        changed = [
            k
            for k in ("provider:network_type", "provider:physical_network")
            if k in changes and changes[k] != current[k]
        ]
        if changed:
            raise errors.invalid(
                f"Plugin does not support updating the following provider network attributes: {', '.join(changed)}"
            )
        new_id = changes.get("provider:segmentation_id")
        if new_id is None or new_id == current["provider:segmentation_id"]:
            return
        if current["provider:network_type"] != "vlan":
            raise errors.invalid(
                "Plugin does not support updating the following provider network attributes: provider:segmentation_id"
            )
        physnet = current["provider:physical_network"]
        seg = self.deps.types.provider_segment(
            {"provider:network_type": "vlan", "provider:physical_network": physnet, "provider:segmentation_id": new_id}
        )
        old = Segment("vlan", physnet, current["provider:segmentation_id"])
        self.deps.types.release(conn, old)
        self.deps.types.drivers["vlan"].reserve(conn, seg, current["id"], self.deps.rng)
        conn.execute(
            t.network_segments.update()
            .where(t.network_segments.c.network_id == current["id"])
            .values(segmentation_id=new_id)
        )

    def delete(self, ctx: RequestContext, uow: UnitOfWork, net_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, net_id)
        policy.enforce(ctx, "delete_network", {"project_id": row.project_id})
        common.check_if_match(if_match, row.revision_number)
        if row.external:  # hooks added by neutrino.services.l3.register (its unused floating IPs go)
            for hook in self.deps.external_network_deleting:
                hook(uow, net_id)
        blocking = [
            r.id
            for r in conn.execute(
                select(t.ports.c.id).where(
                    and_(t.ports.c.network_id == net_id, t.ports.c.device_owner.notin_(AUTO_DELETE_OWNERS))
                )
            )
        ]
        if blocking:
            raise errors.NetworkInUse(net_id=net_id, port_ids=",".join(blocking))
        auto = [r.id for r in conn.execute(select(t.ports.c.id).where(t.ports.c.network_id == net_id))]
        for pid in auto:
            conn.execute(delete(t.ports).where(t.ports.c.id == pid))
            common.delete_tags(conn, pid)
            uow.changed("port", pid, "delete", None, row.project_id)
        for (sid,) in conn.execute(select(t.subnets.c.id).where(t.subnets.c.network_id == net_id)).all():
            conn.execute(delete(t.subnets).where(t.subnets.c.id == sid))
            common.delete_tags(conn, sid)
            uow.changed("subnet", sid, "delete", None, row.project_id)
        for g in conn.execute(select(t.network_segments).where(t.network_segments.c.network_id == net_id)).all():
            self.deps.types.release(conn, Segment(g.network_type, g.physical_network, g.segmentation_id))
        conn.execute(delete(t.network_segments).where(t.network_segments.c.network_id == net_id))
        conn.execute(delete(t.segment_allocations).where(t.segment_allocations.c.network_id == net_id))
        # DHCP scheduling: the network's DHCP agent bindings go with it (recorded on the feed).
        if self.dhcp_scheduler is not None:
            self.dhcp_scheduler.network_removed(uow, net_id)
        rbac.object_deleted(conn, "network", net_id)
        conn.execute(delete(t.networks).where(t.networks.c.id == net_id))
        common.delete_tags(conn, net_id)
        uow.changed("network", net_id, "delete", None, row.project_id)


def network_target(conn: Connection, net_id: str) -> Any:
    """The network row used for policy targets of subnets/ports (no visibility check)."""
    return conn.execute(select(t.networks).where(t.networks.c.id == net_id)).first()
