"""RBAC policies (``/v2.0/rbac-policies``): who, besides its owner, may use an object.

A policy grants one *target project* (or every project: ``*``) one *action* on
one object: ``access_as_shared`` (see and use it, e.g. plug ports into a
network or put a security group on a port) or, for networks only,
``access_as_external`` (see it and use it as a router gateway / floating IP
network).  Object types plug in through ``OBJECT_TYPES``: each brings its
table, its not-found error, the actions it accepts, the columns that mirror
its wildcard policies and the projects that *use* it through an action (the
"in use" check that refuses to take access away from a project that still
depends on it).

This module is also the one place that says who can see a shared object:
``accessible_ids`` is the (uncorrelated, indexed) subquery that the services'
visibility clauses put in ``... OR id IN (...)``, so listing many objects with
many policies costs one extra index range scan, never a lookup per row.

Behaviour (Neutron's):

* ``shared=true`` on a network *is* the wildcard ``access_as_shared`` policy:
  the ``networks.shared`` column mirrors that row (setting the attribute
  creates/deletes it, deleting the row through this API unshares).  Likewise
  ``router:external=true`` creates a wildcard ``access_as_external`` policy;
  any ``access_as_external`` policy makes the network external, and deleting
  the policies leaves it external (only ``router:external=false`` clears it
  and every external policy).
* ``shared`` in a network or security group answer means "shared with the
  caller": a wildcard policy, or one that targets the caller's project.
* Only the object's owner (or an admin) may create policies on it
  (400 ``Only admins can manipulate policies on ... they do not own``); only
  admins may target ``*`` (403).  Policies are visible to the project that
  created them and to admins, not to their targets.
* Deleting a policy, or moving it to another target, is 409
  ``RbacPolicyInUse`` while the project losing access still uses the object
  and no other policy covers it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from sqlalchemy import Table, and_, delete, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.resources import convert as cv
from neutrino.resources import policy
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import MISSING, Attr, Resource, attr_rules
from neutrino.services import common, quotas
from neutrino.services.common import Deps

ACCESS_SHARED = "access_as_shared"
ACCESS_EXTERNAL = "access_as_external"
WILDCARD = "*"
#: What makes a network visible to a project that does not own it.
NETWORK_ACCESS = (ACCESS_SHARED, ACCESS_EXTERNAL)

_rp = t.rbac_policies.c


# --- object types ----------------------------------------------------------------------------------
def _values(conn: Connection, stmt: Any) -> set[str]:
    return {v for (v,) in conn.execute(stmt) if v is not None}


def _network_users(conn: Connection, object_id: str, action: str) -> tuple[set[str], str]:
    """Projects whose ports (shared) or routers and floating IPs (external) are on the network."""
    if action == ACCESS_SHARED:
        users = _values(conn, select(t.ports.c.project_id).where(t.ports.c.network_id == object_id).distinct())
        return users, (
            f"Unable to reconfigure sharing settings for network {object_id}. Multiple projects are using it."
        )
    users = _values(conn, select(t.routers.c.project_id).where(t.routers.c.gw_network_id == object_id).distinct())
    users |= _values(
        conn, select(t.floatingips.c.project_id).where(t.floatingips.c.floating_network_id == object_id).distinct()
    )
    return users, ("There are routers or floating IPs attached to this network that depend on this policy for access.")


def _group_users(conn: Connection, object_id: str, action: str) -> tuple[set[str], str]:
    """Projects with ports that carry the security group."""
    users = _values(
        conn,
        select(t.ports.c.project_id)
        .join(t.port_security_groups, t.port_security_groups.c.port_id == t.ports.c.id)
        .where(t.port_security_groups.c.security_group_id == object_id)
        .distinct(),
    )
    return users, ""


def _address_scope_users(conn: Connection, object_id: str, action: str) -> tuple[set[str], str]:
    """Projects with subnet pools in the address scope."""
    return _values(
        conn, select(t.subnetpools.c.project_id).where(t.subnetpools.c.address_scope_id == object_id).distinct()
    ), ""


def _subnetpool_users(conn: Connection, object_id: str, action: str) -> tuple[set[str], str]:
    """Projects with subnets allocated from the pool."""
    return _values(conn, select(t.subnets.c.project_id).where(t.subnets.c.subnetpool_id == object_id).distinct()), ""


@dataclass(frozen=True)
class ObjectType:
    """How one kind of object takes part in RBAC."""

    name: str  # "network" (the API's object_type)
    table: Table  # has ``id`` and ``project_id``
    actions: tuple[str, ...]  # valid actions, in Neutron's order
    not_found: Callable[[str], errors.NeutronException]
    noun: str  # "networks" in "... policies on networks they do not own"
    #: (conn, object id, action) -> (projects using the object through that access, details text)
    users: Callable[[Connection, str, str], tuple[set[str], str]]
    #: action -> boolean column of ``table`` that mirrors "a wildcard policy exists" (``shared``).
    wildcard_flags: dict[str, str] = field(default_factory=dict)
    #: action -> boolean column set to true by any policy with that action (``external``).
    sticky_flags: dict[str, str] = field(default_factory=dict)
    #: (conn, object row, target) -> None: extra checks before a policy is created (raises).
    check_create: Callable[[Connection, Any, str], None] | None = None


OBJECT_TYPES: dict[str, ObjectType] = {}
#: The object types on the change feed: a policy change re-records the object's view.
FEED_TYPES = ("network", "security_group", "subnetpool", "address_scope")


def register(otype: ObjectType) -> None:
    """Make an object type available to the RBAC API (idempotent)."""
    OBJECT_TYPES[otype.name] = otype


register(
    ObjectType(
        "network",
        t.networks,
        (ACCESS_EXTERNAL, ACCESS_SHARED),
        lambda i: errors.NetworkNotFound(net_id=i),
        "networks",
        _network_users,
        wildcard_flags={ACCESS_SHARED: "shared"},
        sticky_flags={ACCESS_EXTERNAL: "external"},
    )
)
register(
    ObjectType(
        "security_group",
        t.security_groups,
        (ACCESS_SHARED,),
        lambda i: errors.SecurityGroupNotFound(id=i),
        "objects",
        _group_users,
    )
)


def _pool_scope_reachable(conn: Connection, pool: Any, target: str) -> None:
    """A pool in an address scope may only be shared with projects that may use the scope."""
    if not pool.address_scope_id:
        return
    scope_owner = conn.execute(
        select(t.address_scopes.c.project_id).where(t.address_scopes.c.id == pool.address_scope_id)
    ).scalar()
    targets = [WILDCARD] if target == WILDCARD else [WILDCARD, target]
    if scope_owner == target or common.exists(
        conn,
        t.rbac_policies,
        _rp.object_type == "address_scope",
        _rp.object_id == pool.address_scope_id,
        _rp.action == ACCESS_SHARED,
        _rp.target_project.in_(targets),
    ):
        return
    raise errors.invalid(
        f"Failed to create RBAC policy on object {pool.id} because target project doesn't "
        "have access to associated address scope"
    )


# Address scopes and subnet pools: their ``shared`` column mirrors the wildcard policy.
register(
    ObjectType(
        "address_scope",
        t.address_scopes,
        (ACCESS_SHARED,),
        lambda i: errors.AddressScopeNotFound(address_scope_id=i),
        "objects",
        _address_scope_users,
        wildcard_flags={ACCESS_SHARED: "shared"},
    )
)
register(
    ObjectType(
        "subnetpool",
        t.subnetpools,
        (ACCESS_SHARED,),
        lambda i: errors.SubnetPoolNotFound(subnetpool_id=i),
        "objects",
        _subnetpool_users,
        wildcard_flags={ACCESS_SHARED: "shared"},
        check_create=_pool_scope_reachable,
    )
)


# --- visibility helpers (used by the object services) ------------------------------------------------
def accessible_ids(object_type: str, project_id: str, actions: Iterable[str] = (ACCESS_SHARED,)) -> Any:
    """Subquery: ids of ``object_type`` objects granted to ``project_id`` (or to everyone) by
    any of ``actions``.  Uncorrelated, served by ``ix_rbac_policies_target``."""
    targets = [WILDCARD, project_id] if project_id else [WILDCARD]
    acts = list(actions)
    cond = and_(
        _rp.target_project.in_(targets),
        _rp.object_type == object_type,
        _rp.action.in_(acts) if len(acts) > 1 else _rp.action == acts[0],
    )
    return select(_rp.object_id).where(cond)


def visible_clause(
    ctx: RequestContext, object_type: str, table: Table, actions: Iterable[str] = (ACCESS_SHARED,)
) -> Any:
    """Rows of ``table`` the caller may read: own, or granted by a policy (admin: all)."""
    if ctx.is_admin:
        return true()
    return or_(
        table.c.project_id == ctx.project_id, table.c.id.in_(accessible_ids(object_type, ctx.project_id, actions))
    )


def granted(
    conn: Connection, object_type: str, object_id: str, project_id: str, actions: Iterable[str] = (ACCESS_SHARED,)
) -> bool:
    """Whether a policy grants ``project_id`` (or everyone) one of ``actions`` on the object."""
    targets = [WILDCARD, project_id] if project_id else [WILDCARD]
    return common.exists(
        conn,
        t.rbac_policies,
        _rp.object_type == object_type,
        _rp.object_id == object_id,
        _rp.action.in_(list(actions)),
        _rp.target_project.in_(targets),
    )


def shared_ids(conn: Connection, object_type: str, ids: list[str], project_id: str) -> set[str]:
    """Those of ``ids`` shared (``access_as_shared``) with ``project_id`` or with everyone."""
    if not ids:
        return set()
    stmt = accessible_ids(object_type, project_id)
    if len(ids) <= 400:
        stmt = stmt.where(_rp.object_id.in_(ids))
    wanted = set(ids)
    return {i for (i,) in conn.execute(stmt) if i in wanted}


class Shareable(TypedDict):
    """The part of a view ``mark_shared`` reads and writes (networks, groups, pools, scopes)."""

    id: str
    shared: bool


def mark_shared(conn: Connection, ctx: RequestContext, object_type: str, dicts: Sequence[Shareable]) -> None:
    """Set ``shared`` in answers as Neutron computes it: shared with the caller's project (a
    wildcard policy or one targeting it).  Dicts already marked shared are left alone."""
    todo = [d["id"] for d in dicts if not d.get("shared")]
    if not todo or not ctx.project_id:
        return
    hits = shared_ids(conn, object_type, todo, ctx.project_id)
    for d in dicts:
        if d["id"] in hits:
            d["shared"] = True


def network_reachable(conn: Connection, ctx: RequestContext, net: Any) -> bool:
    """Whether the caller may see network row ``net`` (owner, admin or service, or a policy)."""
    if ctx.is_admin or ctx.is_service or net.project_id == ctx.project_id or net.shared:
        return True
    return granted(conn, "network", net.id, ctx.project_id, NETWORK_ACCESS)


def network_shared_with(conn: Connection, ctx: RequestContext, net: Any) -> bool:
    """Neutron's ``network:shared`` policy field: shared with everyone or with the caller's project."""
    return bool(net.shared) or (bool(ctx.project_id) and granted(conn, "network", net.id, ctx.project_id))


def group_usable(conn: Connection, sg_ids: list[str], project_id: str) -> set[str]:
    """Those of ``sg_ids`` that ports of ``project_id`` may carry because they are shared with it."""
    return shared_ids(conn, "security_group", sg_ids, project_id)


# --- writes made by the object services ----------------------------------------------------------------
def set_wildcard(conn: Connection, object_type: str, object_id: str, owner: str, action: str, on: bool) -> None:
    """Create (``on``) or remove the wildcard policy that an object attribute stands for
    (``shared``, ``router:external``); no checks (the caller made them), in txn."""
    if not on:
        conn.execute(
            delete(t.rbac_policies).where(
                and_(
                    _rp.object_type == object_type,
                    _rp.object_id == object_id,
                    _rp.action == action,
                    _rp.target_project == WILDCARD,
                )
            )
        )
        return
    if not common.exists(
        conn,
        t.rbac_policies,
        _rp.object_type == object_type,
        _rp.object_id == object_id,
        _rp.action == action,
        _rp.target_project == WILDCARD,
    ):
        conn.execute(
            insert(t.rbac_policies).values(
                id=common.new_id(),
                project_id=owner or "",
                object_type=object_type,
                object_id=object_id,
                action=action,
                target_project=WILDCARD,
            )
        )


def remove_action(conn: Connection, object_type: str, object_id: str, action: str) -> None:
    """Remove every policy of one action on an object (``router:external=false``)."""
    conn.execute(
        delete(t.rbac_policies).where(
            and_(_rp.object_type == object_type, _rp.object_id == object_id, _rp.action == action)
        )
    )


def object_deleted(conn: Connection, object_type: str, object_id: str) -> None:
    """Drop the policies of a deleted object (in txn)."""
    conn.execute(delete(t.rbac_policies).where(and_(_rp.object_type == object_type, _rp.object_id == object_id)))


def targets(conn: Connection, object_type: str, object_id: str, action: str) -> set[str]:
    """The projects (and ``*``) that policies grant ``action`` on the object."""
    return {
        p
        for (p,) in conn.execute(
            select(_rp.target_project).where(
                and_(_rp.object_type == object_type, _rp.object_id == object_id, _rp.action == action)
            )
        )
    }


def _check_release(
    conn: Connection,
    otype: ObjectType,
    row: Any,
    action: str,
    target: str,
    new_target: str | None,
    policy_id: str | None,
) -> None:
    """Refuse ``target`` (a project or ``*``) losing ``action`` on the object while it uses the
    object and no other policy covers it.  ``new_target``: the policy moves there (an update).

    The owner never depends on a policy, and neither do objects of no project (router gateway
    and floating IP ports)."""
    if target == row.project_id or new_target == WILDCARD:
        return
    others = {
        p
        for (p,) in conn.execute(
            select(_rp.target_project).where(
                and_(
                    _rp.object_type == otype.name,
                    _rp.object_id == row.id,
                    _rp.action == action,
                    _rp.id != (policy_id or ""),
                )
            )
        )
    }
    if target != WILDCARD and WILDCARD in others:
        return
    users, details = otype.users(conn, row.id, action)
    users -= {row.project_id, ""}
    if target == WILDCARD:
        stranded = users - others - ({new_target} if new_target else set())
    else:
        stranded = users & {target}
    if stranded:
        raise errors.RbacPolicyInUse(object_id=row.id, details=details or f"project_id={sorted(stranded)[0]}")


# --- the API resource --------------------------------------------------------------------------------
def _object_type(v: Any) -> str:
    """Neutron's converter: case-insensitive, blanks trimmed, one of the registered types."""
    text = v.strip().lower() if isinstance(v, str) else v
    if not isinstance(text, str) or text not in OBJECT_TYPES:
        raise cv.ConversionError(f"'{errors.echo(v)}' is not a valid RBAC object type")
    return text


RBAC_POLICY = Resource(
    "rbac_policy",
    "rbac-policies",
    (
        Attr("id", convert=cv.uuid_str, filter=True, sort=True, column="id"),
        Attr(
            "object_type", post=True, default=None, convert=_object_type, filter=True, sort=True, column="object_type"
        ),
        Attr("object_id", post=True, default=MISSING, convert=cv.uuid_str, filter=True, sort=True, column="object_id"),
        Attr(
            "target_tenant",
            post=True,
            put=True,
            default=MISSING,
            convert=cv.string(255),
            filter=True,
            sort=True,
            column="target_project",
        ),
        Attr(
            "project_id", post=True, default=None, convert=cv.string(255), filter=True, sort=True, column="project_id"
        ),
        Attr("tenant_id", post=True, default=None, convert=cv.string(255), filter=True, sort=True, column="project_id"),
        Attr("action", post=True, default=MISSING, convert=cv.string(255), filter=True, sort=True, column="action"),
    ),
    plural_key="rbac_policies",
)


def policy_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "project_id": r.project_id,
        "tenant_id": r.project_id,
        "object_type": r.object_type,
        "object_id": r.object_id,
        "action": r.action,
        "target_tenant": r.target_project,
    }


class RbacPolicyService:
    resource = RBAC_POLICY
    special_filters = ()

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- reading ---------------------------------------------------------------------------
    @staticmethod
    def _visible(ctx: RequestContext) -> Any:
        return true() if ctx.is_admin else _rp.project_id == ctx.project_id

    def fetch_row(self, ctx: RequestContext, conn: Connection, policy_id: str) -> Any:
        row = conn.execute(select(t.rbac_policies).where(and_(_rp.id == policy_id, self._visible(ctx)))).first()
        if row is None:
            raise errors.RbacPolicyNotFound(id=policy_id, object_type="unknown")
        return row

    def get(self, ctx: RequestContext, conn: Connection, policy_id: str) -> dict[str, Any]:
        return policy_dict(self.fetch_row(ctx, conn, policy_id))

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], set[str]]:
        stmt, pushed = common.push_filters(
            select(t.rbac_policies).where(self._visible(ctx)), t.rbac_policies, RBAC_POLICY, q
        )
        rows = conn.execute(stmt.order_by(_rp.object_type, _rp.object_id, _rp.action, _rp.target_project))
        return [policy_dict(r) for r in rows], pushed

    # --- writing ---------------------------------------------------------------------------
    def _object(self, ctx: RequestContext, conn: Connection, otype: ObjectType, object_id: str) -> Any:
        """The object row, for a caller that owns it (or an admin).

        An object the caller cannot see reads as not found, one it sees but does not own is
        Neutron's 400 (both are 400 InvalidInput: Neutron reports the failed check that way)."""
        row = conn.execute(select(otype.table).where(otype.table.c.id == object_id)).first()
        if row is not None and (ctx.is_admin or row.project_id == ctx.project_id):
            return row
        if row is None or not granted(conn, otype.name, object_id, ctx.project_id, otype.actions):
            raise errors.invalid(otype.not_found(object_id).msg.rstrip("."))
        raise errors.invalid(f"Only admins can manipulate policies on {otype.noun} they do not own")

    @staticmethod
    def _check_duplicate(conn: Connection, otype: str, object_id: str, action: str, target: str) -> None:
        if common.exists(
            conn,
            t.rbac_policies,
            _rp.object_type == otype,
            _rp.object_id == object_id,
            _rp.action == action,
            _rp.target_project == target,
        ):
            raise errors.DuplicateRbacPolicy()

    def create(self, ctx: RequestContext, uow: UnitOfWork, item: dict[str, Any]) -> dict[str, Any]:
        conn = uow.conn
        policy.enforce(ctx, "create_rbac_policy", item, attr_rules(RBAC_POLICY, "create", item, creating=True))
        if item["object_type"] is None:
            raise errors.invalid("'None' is not a valid RBAC object type")
        otype = OBJECT_TYPES[item["object_type"]]
        row = self._object(ctx, conn, otype, item["object_id"])
        action, target = item["action"], item["target_tenant"]
        if action not in otype.actions:
            raise errors.InvalidActionForType(action=action, object_type=otype.name, valid_actions=str(otype.actions))
        self._check_duplicate(conn, otype.name, row.id, action, target)
        if otype.check_create is not None:
            otype.check_create(conn, row, target)
        quotas.check(self.deps.cfg, conn, item["project_id"], "rbac_policy")
        policy_id = common.new_id()
        conn.execute(
            insert(t.rbac_policies).values(
                id=policy_id,
                project_id=item["project_id"] or "",
                object_type=otype.name,
                object_id=row.id,
                action=action,
                target_project=target,
            )
        )
        self._object_changed(uow, otype, row.id, action)
        return self.get(RequestContext.admin(), conn, policy_id)

    def update(
        self, ctx: RequestContext, uow: UnitOfWork, policy_id: str, changes: dict[str, Any], if_match: str | None = None
    ) -> dict[str, Any]:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, policy_id)
        current = policy_dict(row)
        policy.enforce(
            ctx,
            "update_rbac_policy",
            dict(current, **changes),
            attr_rules(RBAC_POLICY, "update", changes, creating=False),
        )
        target = changes.get("target_tenant", row.target_project)
        if target == row.target_project:
            return current
        otype = OBJECT_TYPES.get(row.object_type)
        if otype is None:
            raise errors.RbacPolicyNotFound(id=policy_id, object_type=row.object_type)
        obj = conn.execute(select(otype.table).where(otype.table.c.id == row.object_id)).one()
        if not ctx.is_admin and obj.project_id != ctx.project_id:
            raise errors.RbacPolicyInUse(
                object_id=obj.id, details=(f"Only admins can manipulate policies on {otype.noun} they do not own.")
            )
        _check_release(conn, otype, obj, row.action, row.target_project, target, row.id)
        self._check_duplicate(conn, otype.name, obj.id, row.action, target)
        conn.execute(update(t.rbac_policies).where(_rp.id == policy_id).values(target_project=target))
        self._object_changed(uow, otype, obj.id, row.action)
        return self.get(RequestContext.admin(), conn, policy_id)

    def delete(self, ctx: RequestContext, uow: UnitOfWork, policy_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, policy_id)
        policy.enforce(ctx, "delete_rbac_policy", policy_dict(row))
        otype = OBJECT_TYPES.get(row.object_type)
        obj = (
            None
            if otype is None
            else conn.execute(select(otype.table).where(otype.table.c.id == row.object_id)).first()
        )
        if otype is not None and obj is not None:
            _check_release(conn, otype, obj, row.action, row.target_project, None, row.id)
        conn.execute(delete(t.rbac_policies).where(_rp.id == policy_id))
        if otype is not None and obj is not None:
            self._object_changed(uow, otype, obj.id, row.action)

    # --- effects on the object ---------------------------------------------------------------------
    def _object_changed(self, uow: UnitOfWork, otype: ObjectType, object_id: str, action: str) -> None:
        """Mirror the policies into the object's flag columns, advance its revision (as Neutron
        does) and put its new view on the change feed."""
        conn = uow.conn
        values: dict[str, Any] = {}
        col = otype.wildcard_flags.get(action)
        if col is not None:
            values[col] = common.exists(
                conn,
                t.rbac_policies,
                _rp.object_type == otype.name,
                _rp.object_id == object_id,
                _rp.action == action,
                _rp.target_project == WILDCARD,
            )
        col = otype.sticky_flags.get(action)
        if col is not None and common.exists(
            conn, t.rbac_policies, _rp.object_type == otype.name, _rp.object_id == object_id, _rp.action == action
        ):
            values[col] = True
        if "revision_number" in otype.table.c:
            common.bump(conn, otype.table, object_id, values)
        elif values:
            conn.execute(update(otype.table).where(otype.table.c.id == object_id).values(**values))
        self._record(uow, otype, object_id)

    def _record(self, uow: UnitOfWork, otype: ObjectType, object_id: str) -> None:
        """Put the object's new view on the feed (its module imports this one: through the
        recorders of ``neutrino.services.recorders``)."""
        if otype.name in FEED_TYPES:
            self.deps.record(uow, otype.name, [object_id])


def register_service(deps: Deps, services: dict[str, Any]) -> None:
    """Add ``rbac-policies`` (called by ``neutrino.api.factory``)."""
    services["rbac-policies"] = RbacPolicyService(deps)
