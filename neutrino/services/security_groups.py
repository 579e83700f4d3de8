"""Security groups and rules (API and storage; enforcement is the L2 agent's).

Every project has exactly one group named ``default``, created lazily the
first time the project lists groups, creates a network or a port.  The
``default_security_groups`` table (primary key: project) makes that
race-free across server processes.
"""

from __future__ import annotations

import builtins  # the services' ``list`` method hides the builtin in their class bodies
import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.ip_protocols import PROTOCOL_NUMBERS
from neutrino.resources import policy
from neutrino.resources.definitions import SECURITY_GROUP, SECURITY_GROUP_RULE
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import attr_rules
from neutrino.resources.types import (
    SecurityGroup,
    SecurityGroupCreate,
    SecurityGroupRule,
    SecurityGroupRuleCreate,
    SecurityGroupUpdate,
)
from neutrino.services import common, quotas, rbac
from neutrino.services.common import Deps

PORT_PROTOCOLS = ("tcp", "udp", "udplite", "sctp", "dccp", "6", "17", "136", "132", "33")
#: Protocols that only exist over IPv6 (refused with ethertype IPv4).
IPV6_ONLY_PROTOCOLS = (
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "icmpv6",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "41",
    "44",
    "58",
    "59",
    "60",
    "43",
)
ICMP_PROTOCOLS = ("icmp", "icmpv6", "ipv6-icmp", "1", "58")

#: Neutron's seeded default-group rule templates: (direction, ethertype, remote is the group itself).
DEFAULT_GROUP_RULES = (
    ("egress", "IPv4", False),
    ("egress", "IPv6", False),
    ("ingress", "IPv4", True),
    ("ingress", "IPv6", True),
)


def _rule_values(
    sg_id: str, project_id: str, direction: str, ethertype: str, remote_group_id: str | None = None
) -> dict[str, Any]:
    vals = common.std_values({"project_id": project_id}, with_name=False)
    vals.update(
        security_group_id=sg_id,
        direction=direction,
        ethertype=ethertype,
        protocol=None,
        port_range_min=None,
        port_range_max=None,
        remote_ip_prefix=None,
        remote_group_id=remote_group_id,
    )
    return vals


def _create_group(uow: UnitOfWork, project_id: str, name: str, description: str, stateful: bool, default: bool) -> str:
    vals = common.std_values({"project_id": project_id, "name": name, "description": description}, revision=1)
    uow.conn.execute(insert(t.security_groups).values(**vals, stateful=stateful))
    sg_id: str = vals["id"]
    rules = [
        _rule_values(sg_id, project_id, d, e, sg_id if self_remote else None)
        for d, e, self_remote in DEFAULT_GROUP_RULES
        if default or not self_remote
    ]
    uow.conn.execute(insert(t.security_group_rules), rules)
    return sg_id


def ensure_default_group(uow: UnitOfWork, project_id: str) -> str:
    """The project's default group id, creating it (and its rules) if missing; in txn."""
    row = uow.conn.execute(
        select(t.default_security_groups.c.security_group_id).where(
            t.default_security_groups.c.project_id == project_id
        )
    ).first()
    if row:
        found: str = row[0]
        return found
    sg_id = _create_group(uow, project_id, "default", "Default security group", True, True)
    # A concurrent creator makes this insert fail; the unit of work is retried and finds theirs.
    uow.conn.execute(insert(t.default_security_groups).values(project_id=project_id, security_group_id=sg_id))
    record_group(uow, sg_id, "create", with_rules=True)
    return sg_id


def record_group(uow: UnitOfWork, sg_id: str, action: str = "update", *, with_rules: bool = False) -> SecurityGroup:
    """Put a group on the change feed with its full view (``with_rules``: each rule too,
    as created); returns the view.  In txn."""
    row = uow.conn.execute(select(t.security_groups).where(t.security_groups.c.id == sg_id)).one()
    out = group_dicts(uow.conn, [row])[0]
    uow.changed("security_group", sg_id, action, out, row.project_id)
    if with_rules:
        for rule in out["security_group_rules"]:
            uow.changed("security_group_rule", rule["id"], "create", rule, row.project_id)
    return out


def _is_default_name(name: str) -> bool:
    """Neutron's name check (``type:name_not_default``): "default" in any case is
    reserved for the project's default group, on create and on rename alike."""
    return name.lower() == "default"


def normalise_protocol(proto: str | None) -> str | None:
    if proto is None:
        return None
    p = str(proto).lower()
    if p in ("any", ""):
        return None
    if p in PROTOCOL_NUMBERS:
        return p
    try:
        n = int(p)
    except ValueError:
        raise errors.SecurityGroupRuleInvalidProtocol(protocol=proto, values=sorted(PROTOCOL_NUMBERS)) from None
    if not 0 <= n <= 255:
        raise errors.SecurityGroupRuleInvalidProtocol(protocol=proto, values=sorted(PROTOCOL_NUMBERS))
    return str(n)


def group_dicts(conn: Connection, rows: list[Any]) -> list[SecurityGroup]:
    """API views of group rows (rules embedded)."""
    ids = [r.id for r in rows]
    rules: dict[str, list[SecurityGroupRule]] = {}
    if ids:
        rq = select(t.security_group_rules).where(t.security_group_rules.c.security_group_id.in_(ids))
        rrows = list(conn.execute(rq.order_by(t.security_group_rules.c.created_at)))
        defaults = _default_ids(conn, {r.security_group_id for r in rrows})
        for r in rrows:
            rules.setdefault(r.security_group_id, []).append(rule_dict(r, [], r.security_group_id in defaults))
    tags = common.load_tags(conn, "security-groups", ids)
    out: list[SecurityGroup] = []
    for r in rows:
        d: SecurityGroup = {
            "id": r.id,
            "name": r.name,
            "stateful": r.stateful,
            "tenant_id": r.project_id,
            "description": r.description,
            "shared": False,
            "security_group_rules": rules.get(r.id, []),
            "tags": tags.get(r.id, []),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "revision_number": r.revision_number,
            "project_id": r.project_id,
        }
        out.append(d)
    return out


class SecurityGroupService:
    resource = SECURITY_GROUP

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def prepare_list(self, ctx: RequestContext) -> None:
        """Listing groups creates the caller's default group (as Neutron does)."""
        if ctx.project_id:
            with self.deps.db.read() as conn:
                if conn.execute(
                    select(t.default_security_groups).where(t.default_security_groups.c.project_id == ctx.project_id)
                ).first():
                    return
            self.deps.db.run_write(lambda uow: ensure_default_group(uow, ctx.project_id))

    @staticmethod
    def _visible(ctx: RequestContext) -> Any:
        """Own groups and those shared with the caller's project (RBAC; admin: all)."""
        return rbac.visible_clause(ctx, "security_group", t.security_groups)

    def dicts(self, conn: Connection, rows: list[Any]) -> list[SecurityGroup]:
        return group_dicts(conn, rows)

    def fetch_row(self, ctx: RequestContext, conn: Connection, sg_id: str) -> Any:
        row = conn.execute(
            select(t.security_groups).where(and_(t.security_groups.c.id == sg_id, self._visible(ctx)))
        ).first()
        if row is None:
            raise errors.SecurityGroupNotFound(id=sg_id)
        return row

    def get(self, ctx: RequestContext, conn: Connection, sg_id: str) -> SecurityGroup:
        out = self.dicts(conn, [self.fetch_row(ctx, conn, sg_id)])
        rbac.mark_shared(conn, ctx, "security_group", out)  # "shared": shared with the caller
        return out[0]

    def list(
        self, ctx: RequestContext, conn: Connection, q: ListQuery
    ) -> tuple[builtins.list[SecurityGroup], set[str]]:
        stmt, pushed = common.push_filters(
            select(t.security_groups).where(self._visible(ctx)), t.security_groups, SECURITY_GROUP, q
        )
        rows = list(conn.execute(stmt.order_by(t.security_groups.c.created_at, t.security_groups.c.id)))
        out = self.dicts(conn, rows)
        rbac.mark_shared(conn, ctx, "security_group", out)
        return out, pushed

    def create(self, ctx: RequestContext, uow: UnitOfWork, item: SecurityGroupCreate) -> SecurityGroup:
        policy.enforce(ctx, "create_security_group", item)
        if _is_default_name(item["name"]):
            ensure_default_group(uow, item["project_id"])
            raise errors.SecurityGroupDefaultAlreadyExists()
        # As Neutron (whose API layer reserves quota before the plugin runs): the
        # group quota is checked before the project's default group is created, so
        # that implicit group is not held against this request.
        quotas.check(self.deps.cfg, uow.conn, item["project_id"], "security_group")
        ensure_default_group(uow, item["project_id"])
        # The new group's seeded rules count against the rule quota.
        seeded = sum(1 for _, _, self_remote in DEFAULT_GROUP_RULES if not self_remote)
        quotas.check(self.deps.cfg, uow.conn, item["project_id"], "security_group_rule", delta=seeded)
        sg_id = _create_group(uow, item["project_id"], item["name"], item["description"], item["stateful"], False)
        return record_group(uow, sg_id, "create", with_rules=True)

    def update(
        self,
        ctx: RequestContext,
        uow: UnitOfWork,
        sg_id: str,
        changes: SecurityGroupUpdate,
        if_match: str | None = None,
    ) -> SecurityGroup:
        row = self.fetch_row(ctx, uow.conn, sg_id)
        policy.enforce(ctx, "update_security_group", {"project_id": row.project_id})
        common.check_if_match(if_match, row.revision_number)
        if (
            "stateful" in changes
            and changes["stateful"] != row.stateful
            and common.exists(uow.conn, t.port_security_groups, t.port_security_groups.c.security_group_id == sg_id)
        ):
            # Ports' firewalls are built for one mode; Neutron refuses the switch while in use.
            raise errors.SecurityGroupInUse(id=sg_id)
        if row.name == "default" and "name" in changes:
            raise errors.SecurityGroupCannotUpdateDefault()
        if "name" in changes and _is_default_name(changes["name"]):
            raise errors.SecurityGroupDefaultAlreadyExists()
        values: dict[str, Any] = {  # column -> new value, for one UPDATE
            k: changes[k] for k in ("name", "description", "stateful") if k in changes
        }
        common.bump(uow.conn, t.security_groups, sg_id, values)
        out = self.get(RequestContext.admin(), uow.conn, sg_id)
        uow.changed("security_group", sg_id, "update", out, row.project_id)
        return out

    def delete(self, ctx: RequestContext, uow: UnitOfWork, sg_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, sg_id)
        policy.enforce(ctx, "delete_security_group", {"project_id": row.project_id})
        common.check_if_match(if_match, row.revision_number)
        is_default = _default_ids(conn, {sg_id})
        if is_default and not ctx.is_admin:
            raise errors.SecurityGroupCannotRemoveDefault()
        if common.exists(conn, t.port_security_groups, t.port_security_groups.c.security_group_id == sg_id):
            raise errors.SecurityGroupInUse(id=sg_id)
        rc = t.security_group_rules.c
        gone = conn.execute(
            select(rc.id, rc.security_group_id, rc.project_id).where(
                or_(rc.security_group_id == sg_id, rc.remote_group_id == sg_id)
            )
        ).all()
        conn.execute(delete(t.default_security_groups).where(t.default_security_groups.c.security_group_id == sg_id))
        conn.execute(
            delete(t.security_group_rules).where(or_(rc.security_group_id == sg_id, rc.remote_group_id == sg_id))
        )
        rbac.object_deleted(conn, "security_group", sg_id)
        conn.execute(delete(t.security_groups).where(t.security_groups.c.id == sg_id))
        common.delete_tags(conn, sg_id)
        for r in gone:
            uow.changed("security_group_rule", r.id, "delete", None, r.project_id)
        uow.changed("security_group", sg_id, "delete", None, row.project_id)
        for other in sorted({r.security_group_id for r in gone} - {sg_id}):
            common.bump(conn, t.security_groups, other)
            record_group(uow, other)


def _rule_key(rule: Any) -> tuple[Any, ...]:
    """What makes two rules of a group the same (Neutron's ``_rule_to_key``)."""
    proto = rule["protocol"]
    if proto is not None:
        proto = str(PROTOCOL_NUMBERS.get(proto, proto))
    prefix = rule["remote_ip_prefix"]
    if prefix in ("0.0.0.0/0", "::/0"):
        prefix = None
    return (
        rule["direction"],
        rule["ethertype"],
        rule["port_range_max"],
        rule["port_range_min"],
        proto,
        rule["remote_group_id"],
        prefix,
    )


def _default_ids(conn: Connection, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    return {
        r[0]
        for r in conn.execute(
            select(t.default_security_groups.c.security_group_id).where(
                t.default_security_groups.c.security_group_id.in_(list(ids))
            )
        )
    }


def rule_dict(r: Any, tags: list[str], in_default: bool) -> SecurityGroupRule:
    prefix = r.remote_ip_prefix
    normalized = str(ipaddress.ip_network(prefix, strict=False)) if prefix else None
    return {
        "id": r.id,
        "tenant_id": r.project_id,
        "security_group_id": r.security_group_id,
        "ethertype": r.ethertype,
        "direction": r.direction,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": prefix,
        "remote_address_group_id": None,
        "normalized_cidr": normalized,
        "remote_group_id": r.remote_group_id,
        "belongs_to_default_sg": in_default,
        "description": r.description,
        "tags": tags,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "revision_number": r.revision_number,
        "project_id": r.project_id,
    }


class SecurityGroupRuleService:
    resource = SECURITY_GROUP_RULE

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @staticmethod
    def _stmt(ctx: RequestContext) -> Any:
        stmt = select(t.security_group_rules)
        if not ctx.is_admin:
            stmt = stmt.join(
                t.security_groups, t.security_groups.c.id == t.security_group_rules.c.security_group_id
            ).where(t.security_groups.c.project_id == ctx.project_id)
        return stmt

    def dicts(self, conn: Connection, rows: list[Any]) -> list[SecurityGroupRule]:
        defaults = _default_ids(conn, {r.security_group_id for r in rows})
        tags = common.load_tags(conn, "security-group-rules", [r.id for r in rows])
        return [rule_dict(r, tags.get(r.id, []), r.security_group_id in defaults) for r in rows]

    def fetch_row(self, ctx: RequestContext, conn: Connection, rule_id: str) -> Any:
        row = conn.execute(self._stmt(ctx).where(t.security_group_rules.c.id == rule_id)).first()
        if row is None:
            raise errors.SecurityGroupRuleNotFound(id=rule_id)
        return row

    def get(self, ctx: RequestContext, conn: Connection, rule_id: str) -> SecurityGroupRule:
        return self.dicts(conn, [self.fetch_row(ctx, conn, rule_id)])[0]

    def list(
        self, ctx: RequestContext, conn: Connection, q: ListQuery
    ) -> tuple[builtins.list[SecurityGroupRule], set[str]]:
        stmt, pushed = common.push_filters(self._stmt(ctx), t.security_group_rules, SECURITY_GROUP_RULE, q)
        rows = list(conn.execute(stmt.order_by(t.security_group_rules.c.created_at, t.security_group_rules.c.id)))
        return self.dicts(conn, rows), pushed

    def create(self, ctx: RequestContext, uow: UnitOfWork, item: SecurityGroupRuleCreate) -> SecurityGroupRule:
        conn = uow.conn
        sg = conn.execute(select(t.security_groups).where(t.security_groups.c.id == item["security_group_id"])).first()
        if sg is None or not (
            ctx.is_admin
            or sg.project_id == ctx.project_id
            or rbac.granted(conn, "security_group", sg.id, ctx.project_id)
        ):
            raise errors.SecurityGroupNotFound(id=item["security_group_id"])
        policy.enforce(ctx, "create_security_group_rule", dict(item, **{"security_group:project_id": sg.project_id}))
        rule = self.validate(ctx, conn, item)
        quotas.check(self.deps.cfg, conn, sg.project_id, "security_group_rule")
        self._check_duplicate(conn, rule)
        vals = common.std_values(dict(item, project_id=sg.project_id), with_name=False)
        vals.update(rule)
        conn.execute(insert(t.security_group_rules).values(**vals))
        common.bump(conn, t.security_groups, sg.id)
        out = self.get(RequestContext.admin(), conn, vals["id"])
        uow.changed("security_group_rule", vals["id"], "create", out, sg.project_id)
        record_group(uow, sg.id)
        return out

    @staticmethod
    def validate(ctx: RequestContext, conn: Connection, item: SecurityGroupRuleCreate) -> dict[str, Any]:
        """Neutron's rule checks; returns the column values of the rule (column -> value)."""
        given_eth = item.get("ethertype") or "IPv4"
        eth = {"ipv4": "IPv4", "ipv6": "IPv6"}.get(given_eth.lower()) if isinstance(given_eth, str) else None
        if eth is None:
            raise errors.SecurityGroupRuleInvalidEtherType(ethertype=item.get("ethertype"), values=["IPv4", "IPv6"])
        proto = normalise_protocol(item.get("protocol"))
        pmin, pmax = item.get("port_range_min"), item.get("port_range_max")
        for v in (pmin, pmax):  # neutron-lib's converter (convert_validate_port_value)
            if v is not None and not 0 <= v <= 65535:
                raise errors.SecurityGroupInvalidPortValue(port=v)
        if eth == "IPv6":  # legacy IPv6 ICMP names and number are made canonical
            if proto in ("icmp", "icmpv6"):
                proto = "ipv6-icmp"
            elif proto == "1":
                proto = "58"
        if pmin is not None or pmax is not None:
            if proto is None:
                raise errors.SecurityGroupProtocolRequiredWithPorts()
            if proto in PORT_PROTOCOLS:
                if pmin == 0 or pmax == 0:
                    raise errors.SecurityGroupInvalidPortValue(port=0)
                if pmin is None or pmax is None or pmin > pmax:
                    raise errors.SecurityGroupInvalidPortRange()
            elif proto in ICMP_PROTOCOLS:
                for field, attr, v in (("type", "port_range_min", pmin), ("code", "port_range_max", pmax)):
                    if v is not None and not 0 <= v <= 255:
                        raise errors.SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=v)
                if pmin is None and pmax is not None:
                    raise errors.SecurityGroupMissingIcmpType(value=pmax)
            else:
                raise errors.SecurityGroupInvalidProtocolForPort(
                    protocol=PROTOCOL_NUMBERS.get(proto, proto), valid_port_protocols="DCCP, SCTP, TCP, UDP, UDPLITE"
                )
        prefix = item.get("remote_ip_prefix")
        remote = item.get("remote_group_id")
        if prefix:
            version = ipaddress.ip_network(prefix, strict=False).version
            if f"IPv{version}" != eth:
                raise errors.SecurityGroupRuleParameterConflict(ethertype=eth, cidr=prefix)
        if proto in IPV6_ONLY_PROTOCOLS and eth == "IPv4":
            raise errors.SecurityGroupEthertypeConflictWithProtocol(ethertype=eth, protocol=proto)
        if prefix and remote:
            raise errors.SecurityGroupRemoteGroupAndRemoteIpPrefix()
        if remote:
            rg = conn.execute(select(t.security_groups.c.project_id).where(t.security_groups.c.id == remote)).first()
            if rg is None or not (ctx.is_admin or rg.project_id == ctx.project_id):
                raise errors.SecurityGroupNotFound(id=remote)
        return {
            "security_group_id": item["security_group_id"],
            "direction": item["direction"],
            "ethertype": eth,
            "protocol": proto,
            "port_range_min": pmin,
            "port_range_max": pmax,
            "remote_ip_prefix": prefix,
            "remote_group_id": remote,
        }

    @staticmethod
    def _check_duplicate(conn: Connection, rule: Mapping[str, Any]) -> None:
        """Neutron compares rules by a normalised key: a protocol's name and number are
        the same, and 0.0.0.0/0 or ::/0 is the same as no prefix."""
        c = t.security_group_rules.c
        want = _rule_key(rule)
        for r in conn.execute(select(t.security_group_rules).where(c.security_group_id == rule["security_group_id"])):
            if _rule_key(r._mapping) == want:
                raise errors.SecurityGroupRuleExists(rule_id=r.id)

    def delete(self, ctx: RequestContext, uow: UnitOfWork, rule_id: str, if_match: str | None = None) -> None:
        conn = uow.conn
        row = self.fetch_row(ctx, conn, rule_id)
        sg = conn.execute(select(t.security_groups).where(t.security_groups.c.id == row.security_group_id)).one()
        policy.enforce(
            ctx,
            "delete_security_group_rule",
            {"security_group:project_id": sg.project_id, "project_id": row.project_id},
        )
        common.check_if_match(if_match, row.revision_number)
        conn.execute(delete(t.security_group_rules).where(t.security_group_rules.c.id == rule_id))
        common.bump(conn, t.security_groups, sg.id)
        uow.changed("security_group_rule", rule_id, "delete", None, sg.project_id)
        record_group(uow, sg.id)

    def update(
        self,
        ctx: RequestContext,
        uow: UnitOfWork,
        rule_id: str,
        changes: Mapping[str, Any],  # rules have no updatable attribute: any body is refused
        if_match: str | None = None,
    ) -> SecurityGroupRule:
        raise errors.HTTPMethodNotAllowed()


__all__ = ["SecurityGroupService", "SecurityGroupRuleService", "ensure_default_group", "attr_rules"]
