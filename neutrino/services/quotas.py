"""Quotas: limits per project and resource, usage counting, the quota API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, delete, func, insert, select
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Config
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.resources import policy
from neutrino.resources.convert import ConversionError, to_bool

#: Quota resource name -> (table, extra condition or None)
COUNTED: dict[str, Table] = {
    "network": t.networks,
    "subnet": t.subnets,
    "port": t.ports,
    "router": t.routers,
    "floatingip": t.floatingips,
    "security_group": t.security_groups,
    "security_group_rule": t.security_group_rules,
    "subnetpool": t.subnetpools,
    "rbac_policy": t.rbac_policies,
}
#: Largest quota limit (the ``quotas.limit`` column is a 32-bit integer).
MAX_LIMIT = 2**31 - 1
ORDER = (
    "network",
    "subnet",
    "subnetpool",
    "port",
    "router_route",
    "router",
    "floatingip",
    "rbac_policy",
    "security_group",
    "security_group_rule",
)


def defaults(cfg: Config) -> dict[str, int]:
    q = cfg.quotas
    return {name: getattr(q, f"quota_{name}") for name in ORDER}


def limits(cfg: Config, conn: Connection, project_id: str) -> dict[str, int]:
    out = defaults(cfg)
    for row in conn.execute(select(t.quotas).where(t.quotas.c.project_id == project_id)):
        out[row.resource] = row.limit
    return out


def usage(conn: Connection, project_id: str, resource: str) -> int:
    table = COUNTED.get(resource)
    if table is None:
        return 0
    return conn.execute(select(func.count()).select_from(table).where(table.c.project_id == project_id)).scalar_one()


def check(cfg: Config, conn: Connection, project_id: str, resource: str, delta: int = 1) -> None:
    """Raise ``OverQuota`` when ``delta`` more ``resource`` would exceed the limit."""
    if not project_id:
        return
    limit = limits(cfg, conn, project_id).get(resource, cfg.quotas.default_quota)
    if limit < 0:
        return
    if usage(conn, project_id, resource) + delta > limit:
        raise errors.OverQuota(overs=[resource])


def _limit_value(name: str, raw: Any) -> int:
    """A quota limit from a request: an integer (JSON number without a fraction, or digits in a
    string); booleans, fractions and anything else are 400 (range checks are the caller's)."""
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            value = None
    if value is None:
        raise errors.bad(f"Invalid input for {name}. Reason: '{errors.echo(raw)}' is not an integer.")
    return value


class QuotaService:
    """``/v2.0/quotas`` (admin, and a project reading its own)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def _authorize_read(self, ctx: RequestContext, project_id: str) -> None:
        # Neutron skips the check for the caller's own project.
        if project_id != ctx.project_id:
            policy.enforce(ctx, "get_quota", {"project_id": project_id})

    def show(self, ctx: RequestContext, conn: Connection, project_id: str) -> dict[str, Any]:
        self._authorize_read(ctx, project_id)
        return {"quota": limits(self.cfg, conn, project_id)}

    def show_default(self, ctx: RequestContext, conn: Connection, project_id: str) -> dict[str, Any]:
        self._authorize_read(ctx, project_id)
        return {"quota": defaults(self.cfg)}

    def details(self, ctx: RequestContext, conn: Connection, project_id: str) -> dict[str, Any]:
        self._authorize_read(ctx, project_id)
        lim = limits(self.cfg, conn, project_id)
        return {"quota": {k: {"limit": v, "used": usage(conn, project_id, k), "reserved": 0} for k, v in lim.items()}}

    def list(self, ctx: RequestContext, conn: Connection) -> dict[str, Any]:
        projects = sorted({r[0] for r in conn.execute(select(t.quotas.c.project_id))})
        if not ctx.is_admin:
            projects = [p for p in projects if p == ctx.project_id]
        out = []
        for p in projects:
            q = limits(self.cfg, conn, p)
            q.update(project_id=p, tenant_id=p)
            out.append(q)
        return {"quotas": out}

    def update(self, ctx: RequestContext, uow: UnitOfWork, project_id: str, body: Any) -> dict[str, Any]:
        policy.enforce(ctx, "update_quota", {"project_id": project_id})
        if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
            raise errors.bad("Unable to find 'quota' in request body")
        req = dict(body["quota"])
        try:
            force = to_bool(req.pop("force", False))
        except ConversionError as exc:
            raise errors.bad(f"Invalid input for force. Reason: {exc}.") from None
        req.pop("check_limit", None)  # accepted and ignored: the check is the default (quota-check-limit-default)
        known = set(ORDER)
        unknown = [k for k in req if k not in known]
        if unknown:
            raise errors.bad(f"Unrecognized attribute(s) '{errors.echo(', '.join(unknown))}'")
        conn = uow.conn
        for name, raw in req.items():
            value = _limit_value(name, raw)
            if value < -1:
                raise errors.bad(
                    f"Invalid input for {name}. Reason: '{errors.echo(value)}' is smaller than minimum of -1."
                )
            if value > MAX_LIMIT:  # the column is a 32-bit integer (neutron-lib: DB_INTEGER_MAX_VALUE)
                raise errors.bad(
                    f"Invalid input for {name}. Reason: '{errors.echo(value)}' is too large - "
                    f"must be no larger than '{MAX_LIMIT}'."
                )
            if not force and value >= 0:  # -1 (unlimited) is never checked
                used = usage(conn, project_id, name)
                if used > value:
                    raise errors.bad(
                        f"Quota limit {value} for {name} must be greater than or equal to already used {used}"
                    )
            conn.execute(delete(t.quotas).where(and_(t.quotas.c.project_id == project_id, t.quotas.c.resource == name)))
            conn.execute(insert(t.quotas).values(project_id=project_id, resource=name, limit=value))
        return {"quota": limits(self.cfg, conn, project_id)}

    def delete(self, ctx: RequestContext, uow: UnitOfWork, project_id: str) -> None:
        policy.enforce(ctx, "delete_quota", {"project_id": project_id})
        uow.conn.execute(delete(t.quotas).where(t.quotas.c.project_id == project_id))
