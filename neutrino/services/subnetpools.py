"""Subnet pools and address scopes (``subnet_allocation``, ``address-scope``, ``default-subnetpools``).

A subnet pool is a set of prefixes subnets are carved from (``neutrino.ipam.prefixes`` does the
arithmetic); an address scope groups pools whose prefixes must not overlap, and tells routers which
traffic they route without NAT.  This module also serves the subnet service
(``pool_for_subnet``: which pool a subnet create uses and the CIDR it gets) and the network
service (``network_address_scopes``: a network's ``ipv4_address_scope``/``ipv6_address_scope``).

Visibility is one SQL clause per resource (``pool_visible_clause``, ``scope_visible_clause``):
own, shared, or everything for admins.  RBAC (``rbac-subnetpool``, ``rbac-address-scope``) widens
exactly these clauses.
"""

from __future__ import annotations

import builtins  # the services' ``list`` method hides the builtin in their class bodies
import ipaddress
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.ipam import prefixes as px
from neutrino.resources import convert as cv
from neutrino.resources import policy
from neutrino.resources.definitions import ADDRESS_SCOPE, SUBNETPOOL
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import (
    AddressScope,
    AddressScopeCreate,
    AddressScopeUpdate,
    SubnetCreate,
    SubnetPool,
    SubnetPoolCreate,
    SubnetPoolUpdate,
)
from neutrino.services import common, quotas, rbac
from neutrino.services.common import Deps

__all__ = [
    "AddressScopeService",
    "SubnetPoolService",
    "network_address_scopes",
    "pool_for_subnet",
    "pool_visible_clause",
    "scope_visible_clause",
]


# --- visibility ----------------------------------------------------------------------------
def pool_visible_clause(ctx: RequestContext) -> Any:
    """Subnet pools a caller may read and use: own or shared (admin: all)."""
    if ctx.is_admin:
        return true()
    return or_(
        t.subnetpools.c.project_id == ctx.project_id,
        t.subnetpools.c.shared == true(),
        t.subnetpools.c.id.in_(rbac.accessible_ids("subnetpool", ctx.project_id)),
    )  # RBAC


def scope_visible_clause(ctx: RequestContext) -> Any:
    """Address scopes a caller may read and use: own or shared (admin: all)."""
    if ctx.is_admin:
        return true()
    return or_(
        t.address_scopes.c.project_id == ctx.project_id,
        t.address_scopes.c.shared == true(),
        t.address_scopes.c.id.in_(rbac.accessible_ids("address_scope", ctx.project_id)),
    )  # RBAC


# --- network view ----------------------------------------------------------------------------
def network_address_scopes(conn: Connection, net_ids: Iterable[str]) -> dict[str, dict[int, str]]:
    """``{network id: {ip_version: address scope id}}`` from the pools of the networks' subnets.

    All subnets of one IP version on a network share their address scope (``pool_for_subnet``
    refuses otherwise), so the first scoped subnet decides."""
    ids = list(net_ids)
    if not ids:
        return {}
    q = (
        select(t.subnets.c.network_id, t.subnets.c.ip_version, t.subnetpools.c.address_scope_id)
        .join(t.subnetpools, t.subnetpools.c.id == t.subnets.c.subnetpool_id)
        .where(t.subnetpools.c.address_scope_id.is_not(None))
    )
    if len(ids) <= 400:
        q = q.where(t.subnets.c.network_id.in_(ids))
    out: dict[str, dict[int, str]] = {}
    for nid, version, scope in conn.execute(q):
        out.setdefault(nid, {}).setdefault(int(version), scope)
    return out


def _record_networks_of_pool(deps: Deps, uow: UnitOfWork, pool_id: str) -> None:
    """Put the networks holding subnets of ``pool_id`` on the feed (their address scope changed;
    ``deps.record``: the networks module imports this one)."""
    nets = sorted(
        {r[0] for r in uow.conn.execute(select(t.subnets.c.network_id).where(t.subnets.c.subnetpool_id == pool_id))}
    )
    for nid in nets:
        common.bump(uow.conn, t.networks, nid)
        deps.record(uow, "network", [nid])


# --- subnet creation -----------------------------------------------------------------------
def _pool_row(ctx: RequestContext, conn: Connection, pool_id: str) -> Any:
    row = conn.execute(
        select(t.subnetpools).where(and_(t.subnetpools.c.id == pool_id, pool_visible_clause(ctx)))
    ).first()
    if row is None:
        raise errors.SubnetPoolNotFound(subnetpool_id=pool_id)
    return row


def _default_pool(ctx: RequestContext, conn: Connection, version: int) -> Any:
    return conn.execute(
        select(t.subnetpools)
        .where(
            and_(t.subnetpools.c.is_default == true(), t.subnetpools.c.ip_version == version, pool_visible_clause(ctx))
        )
        .order_by(t.subnetpools.c.created_at)
    ).first()


def _check_network_affinity(conn: Connection, net_id: str, version: int, pool: Any) -> None:
    """Neutron's network rules for a new subnet of ``version`` from ``pool`` (None: a plain CIDR).

    A network whose subnets of that version are in an address scope takes only pools of that
    scope; without a scope, all its subnets of one version come from one pool or from none."""
    others = conn.execute(
        select(t.subnets.c.subnetpool_id, t.subnetpools.c.address_scope_id)
        .outerjoin(t.subnetpools, t.subnetpools.c.id == t.subnets.c.subnetpool_id)
        .where(and_(t.subnets.c.network_id == net_id, t.subnets.c.ip_version == version))
    ).all()
    network_scope = next((o.address_scope_id for o in others if o.address_scope_id), None)
    if pool is None:
        if any(o.subnetpool_id for o in others):
            raise errors.NetworkSubnetPoolAffinityError()
        return
    if network_scope is not None:
        if pool.address_scope_id != network_scope:
            raise errors.NetworkAddressScopeAffinityError()
        return
    if any(o.subnetpool_id != pool.id for o in others):
        raise errors.NetworkSubnetPoolAffinityError()


def _lock_pool(conn: Connection, pool_id: str) -> None:
    """Serialise allocations from one pool: a no-op update takes the pool row's write lock
    (PostgreSQL); a second allocator waits, then reads the first one's subnet."""
    conn.execute(
        update(t.subnetpools).where(t.subnetpools.c.id == pool_id).values(ip_version=t.subnetpools.c.ip_version)
    )


def _check_quota(conn: Connection, pool: Any, project_id: str, cidr: str) -> None:
    if pool.default_quota is None:
        return
    used = sum(
        px.quota_units(c)
        for (c,) in conn.execute(
            select(t.subnets.c.cidr).where(
                and_(t.subnets.c.subnetpool_id == pool.id, t.subnets.c.project_id == project_id)
            )
        )
    )
    if used + px.quota_units(cidr) > pool.default_quota:
        raise errors.SubnetPoolQuotaExceeded()


def pool_for_subnet(ctx: RequestContext, conn: Connection, item: SubnetCreate, net: Any) -> Any | None:
    """The pool a subnet create uses (None: a plain CIDR), after allocating from it.

    With a pool, ``item["cidr"]`` is set to the allocated CIDR: the given one if it lies in a
    free range of the pool, else the first free block of ``prefixlen`` (default: the pool's
    ``default_prefixlen``).  Checks the pool's visibility, IP version, prefix bounds, the
    project's prefix quota and the network's pool/scope affinity.  In the write transaction."""
    pool_id = item.get("subnetpool_id")
    version = item["ip_version"]
    given_cidr = item.get("cidr")
    if given_cidr and ipaddress.ip_network(given_cidr, strict=False).version != version:
        raise errors.invalid(f"cidr '{given_cidr}' does not match the ip_version '{version}'")
    if pool_id and item.get("use_default_subnetpool"):
        raise errors.BadRequest(
            resource="subnets", msg="subnetpool_id and use_default_subnetpool cannot both be specified"
        )
    if pool_id:
        pool = _pool_row(ctx, conn, pool_id)
    elif item.get("use_default_subnetpool"):
        pool = _default_pool(ctx, conn, version)
        if pool is None:
            raise errors.BadRequest(resource="subnets", msg=f"No default subnetpool found for IPv{version}")
    else:
        _check_network_affinity(conn, net.id, version, None)
        return None
    if pool.ip_version != version:
        raise errors.BadRequest(
            resource="subnets", msg=f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} subnet pool"
        )
    _check_network_affinity(conn, net.id, version, pool)
    _lock_pool(conn, pool.id)
    used = [c for (c,) in conn.execute(select(t.subnets.c.cidr).where(t.subnets.c.subnetpool_id == pool.id))]
    if given_cidr:
        want = ipaddress.ip_network(given_cidr, strict=False)
        _check_prefixlen(pool, want.prefixlen)
        if want.version != pool.ip_version or not px.specific_fits(pool.prefixes, used, want):
            raise errors.SubnetAllocationError(
                reason="Cannot allocate requested subnet from the available set of prefixes"
            )
        _check_quota(conn, pool, item["project_id"], str(want))
        return pool
    prefixlen = item.get("prefixlen")
    prefixlen = pool.default_prefixlen if prefixlen is None else int(prefixlen)
    _check_prefixlen(pool, prefixlen)
    cidr = px.first_free(pool.prefixes, used, prefixlen)
    if cidr is None:
        raise errors.SubnetAllocationError(reason=f"Insufficient prefix space to allocate subnet size /{prefixlen}")
    _check_quota(conn, pool, item["project_id"], cidr)
    item["cidr"] = cidr
    return pool


def _check_prefixlen(pool: Any, prefixlen: int) -> None:
    if prefixlen > pool.max_prefixlen:
        raise errors.MaxPrefixSubnetAllocationError(prefixlen=prefixlen, max_prefixlen=pool.max_prefixlen)
    if prefixlen < pool.min_prefixlen:
        raise errors.MinPrefixSubnetAllocationError(prefixlen=prefixlen, min_prefixlen=pool.min_prefixlen)


def pool_gateway(cidr: str) -> str:
    """A pool-allocated subnet's default gateway: the first address after the network's (v4 and v6)."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address + 1) if net.num_addresses > 1 else str(net.network_address)


# --- subnet pools ------------------------------------------------------------------------------
def _pool_dict(r: Any, tags: list[str]) -> SubnetPool:
    """The API view; prefix lengths are strings, as Neutron answers them."""
    return {
        "id": r.id,
        "name": r.name,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "prefixes": list(r.prefixes),
        "min_prefixlen": str(r.min_prefixlen),
        "max_prefixlen": str(r.max_prefixlen),
        "default_prefixlen": str(r.default_prefixlen),
        "default_quota": r.default_quota,
        "ip_version": r.ip_version,
        "shared": r.shared,
        "is_default": r.is_default,
        "address_scope_id": r.address_scope_id,
        **common.std_tail(r, tags),
    }


def _prefix_version(prefixes: list[str]) -> int:
    if not prefixes:
        raise errors.EmptySubnetPoolPrefixList()
    versions = {ipaddress.ip_network(p, strict=False).version for p in prefixes}
    if len(versions) > 1:
        raise errors.PrefixVersionMismatch()
    return versions.pop()


def _bounds(version: int, min_len: int | None, default_len: int | None, max_len: int | None) -> px.Bounds:
    """Neutron's defaults (min: /8 or /64, max: the version's bits, default: min), then validated."""
    lo = px.DEFAULT_MIN_PREFIXLEN[version] if min_len is None else min_len
    hi = px.MAX_PREFIXLEN[version] if max_len is None else max_len
    b = px.Bounds(lo, lo if default_len is None else default_len, hi)
    problem = b.problem(version)
    if problem is not None:
        raise errors.IllegalSubnetPoolPrefixBounds(
            prefix_type=problem[0], prefixlen=problem[1], base_prefix_type=problem[2], base_prefixlen=problem[3]
        )
    return b


class SubnetPoolService:
    resource = SUBNETPOOL

    #: Prefix lengths are strings on the wire (as Neutron's): sort them as numbers.
    sort_values = {"default_prefixlen": int, "min_prefixlen": int, "max_prefixlen": int}

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # subnetpool-prefix-ops: PUT /subnetpools/{id}/add_prefixes and .../remove_prefixes
        self.member_actions = {"add_prefixes": self.add_prefixes, "remove_prefixes": self.remove_prefixes}

    def fetch_row(self, ctx: RequestContext, conn: Connection, pool_id: str) -> Any:
        return _pool_row(ctx, conn, pool_id)

    def _dicts(self, conn: Connection, rows: list[Any]) -> list[SubnetPool]:
        tags = common.load_tags(conn, "subnetpools", [r.id for r in rows])
        return [_pool_dict(r, tags.get(r.id, [])) for r in rows]

    def get(self, ctx: RequestContext, conn: Connection, pool_id: str) -> SubnetPool:
        out = self._dicts(conn, [self.fetch_row(ctx, conn, pool_id)])
        rbac.mark_shared(conn, ctx, "subnetpool", out)  # "shared": shared with the caller (RBAC)
        return out[0]

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[SubnetPool], set[str]]:
        stmt, pushed = common.push_filters(
            select(t.subnetpools).where(pool_visible_clause(ctx)), t.subnetpools, SUBNETPOOL, q
        )
        rows = list(conn.execute(stmt.order_by(t.subnetpools.c.created_at, t.subnetpools.c.id)))
        out = self._dicts(conn, rows)
        rbac.mark_shared(conn, ctx, "subnetpool", out)
        return out, pushed

    # --- checks shared by create and update ---------------------------------------------
    @staticmethod
    def _check_default_unique(conn: Connection, version: int, pool_id: str | None) -> None:
        cond = [t.subnetpools.c.is_default == true(), t.subnetpools.c.ip_version == version]
        if pool_id:
            cond.append(t.subnetpools.c.id != pool_id)
        if common.exists(conn, t.subnetpools, *cond):
            raise errors.invalid(
                "A default subnetpool for this IP family has already been set. Only one default may exist per IP family"
            )

    @staticmethod
    def _check_scope(
        ctx: RequestContext,
        conn: Connection,
        scope_id: str | None,
        pool_id: str,
        version: int,
        prefixes: builtins.list[str],
        rescoping: bool = True,
    ) -> None:
        """The scope is usable by the caller, of the pool's IP version, and no other pool in it
        shares an address with this one; re-scoping (``rescoping``) must not split a network's
        subnets between scopes."""
        if scope_id is None:
            return
        scope = conn.execute(select(t.address_scopes).where(t.address_scopes.c.id == scope_id)).first()
        if scope is None:
            raise errors.AddressScopeNotFound(address_scope_id=scope_id)
        visible = conn.execute(
            select(t.address_scopes.c.id).where(and_(t.address_scopes.c.id == scope_id, scope_visible_clause(ctx)))
        ).first()
        if visible is None:
            raise errors.IllegalSubnetPoolAssociationToAddressScope(subnetpool_id=pool_id, address_scope_id=scope_id)
        if scope.ip_version != version:
            raise errors.IllegalSubnetPoolIpVersionAssociationToAddressScope(
                subnetpool_id=pool_id, address_scope_id=scope_id, ip_version=scope.ip_version
            )
        nets = select(t.subnets.c.network_id).where(t.subnets.c.subnetpool_id == pool_id)
        if rescoping and common.exists(
            conn,
            t.subnets,
            t.subnets.c.network_id.in_(nets),
            t.subnets.c.ip_version == version,
            or_(t.subnets.c.subnetpool_id.is_(None), t.subnets.c.subnetpool_id != pool_id),
        ):
            raise errors.NetworkAddressScopeAffinityError()
        for other in conn.execute(
            select(t.subnetpools.c.prefixes).where(
                and_(t.subnetpools.c.address_scope_id == scope_id, t.subnetpools.c.id != pool_id)
            )
        ):
            if px.overlaps(other.prefixes, prefixes):
                raise errors.AddressScopePrefixConflict()

    # --- writing ------------------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, item: SubnetPoolCreate) -> SubnetPool:
        conn = uow.conn
        policy.enforce(ctx, "create_subnetpool", item, attr_rules(SUBNETPOOL, "create", item, creating=True))
        quotas.check(self.deps.cfg, conn, item["project_id"], "subnetpool")
        version = _prefix_version(item["prefixes"])
        prefixes = px.compact(item["prefixes"])
        b = _bounds(version, item["min_prefixlen"], item["default_prefixlen"], item["max_prefixlen"])
        vals = common.std_values(item, revision=0)
        if item["is_default"]:
            self._check_default_unique(conn, version, None)
        self._check_scope(ctx, conn, item["address_scope_id"], vals["id"], version, prefixes)
        conn.execute(
            insert(t.subnetpools).values(
                **vals,
                ip_version=version,
                prefixes=prefixes,
                default_prefixlen=b.default_prefixlen,
                min_prefixlen=b.min_prefixlen,
                max_prefixlen=b.max_prefixlen,
                default_quota=item["default_quota"],
                shared=item["shared"],
                is_default=item["is_default"],
                address_scope_id=item["address_scope_id"],
            )
        )
        # shared=true is the wildcard RBAC policy (neutrino.services.rbac)
        rbac.set_wildcard(conn, "subnetpool", vals["id"], vals["project_id"], rbac.ACCESS_SHARED, item["shared"])
        out = self.get(RequestContext.admin(), conn, vals["id"])
        uow.changed("subnetpool", vals["id"], "create", out, item["project_id"])
        return out

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, pool_id: str, changes: SubnetPoolUpdate, if_match: str | None = None
    ) -> SubnetPool:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, pool_id)
        policy.enforce(
            ctx, "update_subnetpool", _pool_dict(row, []), attr_rules(SUBNETPOOL, "update", changes, creating=False)
        )
        common.check_if_match(if_match, row.revision_number)
        return self._apply_update(ctx, uow, row, changes)

    def _apply_update(self, ctx: RequestContext, uow: UnitOfWork, row: Any, changes: SubnetPoolUpdate) -> SubnetPool:
        """An authorised update of pool ``row`` (Neutron's update_subnetpool): checks, write, feed."""
        conn, pool_id = uow.conn, row.id
        values: dict[str, Any] = {  # column -> new value, for one UPDATE
            k: changes[k] for k in ("name", "description", "default_quota") if k in changes
        }
        prefixes = list(row.prefixes)
        if "prefixes" in changes:
            new = changes["prefixes"]
            if not new:
                raise errors.EmptySubnetPoolPrefixList()
            if _prefix_version(new) != row.ip_version:
                raise errors.PrefixVersionMismatch()
            if not px.covers(new, prefixes):
                raise errors.IllegalSubnetPoolPrefixUpdate(msg="Existing prefixes must be a subset of the new prefixes")
            prefixes = values["prefixes"] = px.compact(new)
        if any(k in changes for k in ("min_prefixlen", "default_prefixlen", "max_prefixlen")):
            b = _bounds(
                row.ip_version,
                changes.get("min_prefixlen", row.min_prefixlen),
                changes.get("default_prefixlen", row.default_prefixlen),
                changes.get("max_prefixlen", row.max_prefixlen),
            )
            values.update(
                min_prefixlen=b.min_prefixlen, default_prefixlen=b.default_prefixlen, max_prefixlen=b.max_prefixlen
            )
        if changes.get("is_default") and not row.is_default:
            self._check_default_unique(conn, row.ip_version, pool_id)
        if "is_default" in changes:
            values["is_default"] = changes["is_default"]
        if (
            row.address_scope_id
            and not ctx.is_admin
            and not common.exists(
                conn,
                t.address_scopes,
                t.address_scopes.c.id == row.address_scope_id,
                t.address_scopes.c.project_id == ctx.project_id,
            )
        ):
            raise errors.IllegalSubnetPoolUpdate(
                reason=f"subnetpool {pool_id} cannot be updated when associated with shared address scope "
                f"{row.address_scope_id}"
            )
        scope_id = changes.get("address_scope_id", row.address_scope_id)
        self._check_scope(
            ctx, conn, scope_id, pool_id, row.ip_version, prefixes, rescoping=scope_id != row.address_scope_id
        )
        if "address_scope_id" in changes:
            values["address_scope_id"] = scope_id
        common.bump(conn, t.subnetpools, pool_id, values)
        if scope_id != row.address_scope_id:
            _record_networks_of_pool(self.deps, uow, pool_id)
        out = self.get(RequestContext.admin(), conn, pool_id)
        uow.changed("subnetpool", pool_id, "update", out, row.project_id)
        return out

    # --- subnetpool-prefix-ops ------------------------------------------------------------
    def _action_row(
        self, ctx: RequestContext, uow: UnitOfWork, pool_id: str, body: Any, action: str
    ) -> tuple[Any, builtins.list[str]]:
        """The pool (locked against concurrent allocations) and the action's validated prefixes.

        The body is ``{"prefixes": [CIDR, ...]}`` with at least one prefix (Neutron: 400
        "Request body contains invalid data" otherwise)."""
        if not isinstance(body, dict) or not isinstance(body.get("prefixes"), list) or not body["prefixes"]:
            raise errors.bad("Request body contains invalid data")
        try:
            given = [cv.subnet_cidr(p) for p in body["prefixes"]]
        except ValueError as exc:
            raise errors.bad(f"Invalid input for prefixes. Reason: {str(exc).rstrip('.')}.") from None
        row = self.fetch_row(ctx, uow.conn, pool_id)
        policy.enforce(ctx, action, _pool_dict(row, []))
        _lock_pool(uow.conn, pool_id)
        return row, given

    def add_prefixes(
        self, ctx: RequestContext, uow: UnitOfWork, pool_id: str, body: Any
    ) -> dict[str, builtins.list[str]]:
        """``PUT /subnetpools/{id}/add_prefixes`` -> ``{"prefixes": [the pool's, compacted]}``.

        As Neutron, an update of ``prefixes`` to the union: the same checks (IP version, no
        overlap with other pools of the address scope, not in someone else's shared scope)."""
        row, given = self._action_row(ctx, uow, pool_id, body, "add_prefixes")
        out = self._apply_update(ctx, uow, row, {"prefixes": [*row.prefixes, *given]})
        return {"prefixes": out["prefixes"]}

    def remove_prefixes(
        self, ctx: RequestContext, uow: UnitOfWork, pool_id: str, body: Any
    ) -> dict[str, builtins.list[str]]:
        """``PUT /subnetpools/{id}/remove_prefixes`` -> ``{"prefixes": [what is left, compacted]}``.

        Prefixes sharing no address with the pool change nothing.  Refused (400
        IllegalSubnetPoolPrefixUpdate) while a subnet allocated from the pool has an address
        in a removed range, as Neutron."""
        row, given = self._action_row(ctx, uow, pool_id, body, "remove_prefixes")
        current = list(row.prefixes)
        if not px.overlaps(current, given):
            return {"prefixes": current}
        used = [c for (c,) in uow.conn.execute(select(t.subnets.c.cidr).where(t.subnets.c.subnetpool_id == pool_id))]
        if px.overlaps(used, given):
            raise errors.IllegalSubnetPoolPrefixUpdate(
                msg="One or more the prefixes to be removed is in use by a subnet"
            )
        left = px.free_ranges(current, given)
        common.bump(uow.conn, t.subnetpools, pool_id, {"prefixes": [str(n) for n in left]})
        out = self.get(RequestContext.admin(), uow.conn, pool_id)
        uow.changed("subnetpool", pool_id, "update", out, row.project_id)
        return {"prefixes": out["prefixes"]}

    def delete(self, ctx: RequestContext, uow: UnitOfWork, pool_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, pool_id)
        policy.enforce(ctx, "delete_subnetpool", _pool_dict(row, []))
        common.check_if_match(if_match, row.revision_number)
        if common.exists(conn, t.subnets, t.subnets.c.subnetpool_id == pool_id):
            raise errors.SubnetPoolDeleteError(reason="Subnet pool has existing allocations")
        rbac.object_deleted(conn, "subnetpool", pool_id)
        conn.execute(delete(t.subnetpools).where(t.subnetpools.c.id == pool_id))
        common.delete_tags(conn, pool_id)
        uow.changed("subnetpool", pool_id, "delete", None, row.project_id)


# --- address scopes ------------------------------------------------------------------------------
def _scope_dict(r: Any) -> AddressScope:
    return {
        "id": r.id,
        "name": r.name,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "shared": r.shared,
        "ip_version": r.ip_version,
        "description": r.description,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "revision_number": r.revision_number,
    }


class AddressScopeService:
    resource = ADDRESS_SCOPE

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def fetch_row(self, ctx: RequestContext, conn: Connection, scope_id: str) -> Any:
        row = conn.execute(
            select(t.address_scopes).where(and_(t.address_scopes.c.id == scope_id, scope_visible_clause(ctx)))
        ).first()
        if row is None:
            raise errors.AddressScopeNotFound(address_scope_id=scope_id)
        return row

    def get(self, ctx: RequestContext, conn: Connection, scope_id: str) -> AddressScope:
        out = [_scope_dict(self.fetch_row(ctx, conn, scope_id))]
        rbac.mark_shared(conn, ctx, "address_scope", out)  # "shared": shared with the caller (RBAC)
        return out[0]

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[builtins.list[AddressScope], set[str]]:
        stmt, pushed = common.push_filters(
            select(t.address_scopes).where(scope_visible_clause(ctx)), t.address_scopes, ADDRESS_SCOPE, q
        )
        rows = list(conn.execute(stmt.order_by(t.address_scopes.c.created_at, t.address_scopes.c.id)))
        out = [_scope_dict(r) for r in rows]
        rbac.mark_shared(conn, ctx, "address_scope", out)
        return out, pushed

    def create(self, ctx: RequestContext, uow: UnitOfWork, item: AddressScopeCreate) -> AddressScope:
        policy.enforce(ctx, "create_address_scope", item, attr_rules(ADDRESS_SCOPE, "create", item, creating=True))
        vals = common.std_values(item, revision=0)
        uow.conn.execute(insert(t.address_scopes).values(**vals, ip_version=item["ip_version"], shared=item["shared"]))
        rbac.set_wildcard(
            uow.conn, "address_scope", vals["id"], vals["project_id"], rbac.ACCESS_SHARED, item["shared"]
        )  # shared=true is the wildcard RBAC policy
        out = self.get(RequestContext.admin(), uow.conn, vals["id"])
        uow.changed("address_scope", vals["id"], "create", out, item["project_id"])
        return out

    def update(
        self,
        ctx: RequestContext,
        uow: UnitOfWork,
        scope_id: str,
        changes: AddressScopeUpdate,
        if_match: str | None = None,
    ) -> AddressScope:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, scope_id)
        policy.enforce(
            ctx, "update_address_scope", _scope_dict(row), attr_rules(ADDRESS_SCOPE, "update", changes, creating=False)
        )
        common.check_if_match(if_match, row.revision_number)
        if row.shared and changes.get("shared") is False:
            raise errors.AddressScopeUpdateError(
                address_scope_id=scope_id, reason="Shared address scope can't be unshared"
            )
        values: dict[str, Any] = {  # column -> new value, for one UPDATE
            k: changes[k] for k in ("name", "description", "shared") if k in changes
        }
        if changes.get("shared"):
            rbac.set_wildcard(conn, "address_scope", scope_id, row.project_id, rbac.ACCESS_SHARED, True)
        common.bump(conn, t.address_scopes, scope_id, values)
        out = self.get(RequestContext.admin(), conn, scope_id)
        uow.changed("address_scope", scope_id, "update", out, row.project_id)
        return out

    def delete(self, ctx: RequestContext, uow: UnitOfWork, scope_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, scope_id)
        policy.enforce(ctx, "delete_address_scope", _scope_dict(row))
        common.check_if_match(if_match, row.revision_number)
        if common.exists(conn, t.subnetpools, t.subnetpools.c.address_scope_id == scope_id):
            raise errors.AddressScopeInUse(address_scope_id=scope_id)
        rbac.object_deleted(conn, "address_scope", scope_id)
        conn.execute(delete(t.address_scopes).where(t.address_scopes.c.id == scope_id))
        uow.changed("address_scope", scope_id, "delete", None, row.project_id)


def register(deps: Deps, services: dict[str, Any]) -> None:
    """Add ``subnetpools`` and ``address-scopes`` (called by ``neutrino.api.factory``)."""
    services["subnetpools"] = SubnetPoolService(deps)
    services["address-scopes"] = AddressScopeService(deps)
