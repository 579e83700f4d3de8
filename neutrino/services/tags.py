"""The tags sub-API (``/v2.0/{collection}/{id}/tags[/{tag}]``).

Reading tags needs the object to be visible; changing them needs the right
to update the object (Neutron checks ``update_<resource>``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.resources import convert as cv
from neutrino.resources import policy
from neutrino.services import common
from neutrino.services.common import Deps

MAX_TAGS = 50
#: Collection -> the resource type its tags are stored under: the collections whose objects
#: carry tags (served by ``neutrino.api.app``, described by ``neutrino.api.openapi``).
TAGGABLE = {
    "networks": "networks",
    "subnets": "subnets",
    "ports": "ports",
    "routers": "routers",
    "floatingips": "floatingips",
    "security-groups": "security-groups",
    "subnetpools": "subnetpools",
    "trunks": "trunks",
}


def _tag_list(body: Any) -> list[str]:
    if not isinstance(body, dict) or "tags" not in body:
        raise errors.bad("Invalid input for tags. Reason: Validation of dictionary's keys failed.")
    try:
        tags: list[str] = cv.list_of(cv.tag)(body["tags"])
    except ValueError as exc:
        raise errors.bad(f"Invalid input for tags. Reason: {exc}.") from None
    if len(set(tags)) > MAX_TAGS:
        raise errors.bad(f"Invalid input for tags. Reason: more than {MAX_TAGS} tags.")
    return tags


def handle(
    deps: Deps, ctx: RequestContext, svc: Any, rtype: str, obj_id: str, method: str, tag: str | None, body: Any
) -> tuple[int, Any] | None:
    """Serve one tags request; returns (status, payload) or None for 204."""
    if method == "GET":
        with deps.db.read() as conn:
            svc.fetch_row(ctx, conn, obj_id)
            tags = common.load_tags(conn, rtype, [obj_id]).get(obj_id, [])
        if tag is None:
            return 200, {"tags": tags}
        if tag not in tags:
            raise errors.TagNotFound(tag=tag)
        return None

    def work(uow: Any) -> tuple[int, Any] | None:
        conn = uow.conn
        row = svc.fetch_row(ctx, conn, obj_id)
        policy.enforce(ctx, f"update_{svc.resource.policy_name}", {"project_id": row.project_id})
        current = common.load_tags(conn, rtype, [obj_id]).get(obj_id, [])
        if tag is None:
            if method == "PUT":
                new = common.set_tags(conn, rtype, obj_id, _tag_list(body))
            elif method == "POST":
                new = common.set_tags(conn, rtype, obj_id, current + _tag_list(body))
            elif method == "DELETE":
                common.set_tags(conn, rtype, obj_id, [])
                new = None
            else:
                raise errors.HTTPMethodNotAllowed()
        else:
            try:
                cv.tag(tag)
            except ValueError as exc:
                raise errors.bad(f"Invalid input for tags. Reason: {exc}.") from None
            if method == "PUT":
                if tag not in current:
                    if len(current) >= MAX_TAGS:
                        raise errors.bad(f"Invalid input for tags. Reason: more than {MAX_TAGS} tags.")
                    conn.execute(insert(t.tags).values(resource_id=obj_id, tag=tag, resource_type=rtype))
                new = None
            elif method == "DELETE":
                if tag not in current:
                    raise errors.TagNotFound(tag=tag)
                conn.execute(delete(t.tags).where(and_(t.tags.c.resource_id == obj_id, t.tags.c.tag == tag)))
                new = None
            else:
                raise errors.HTTPMethodNotAllowed()
        table = {
            "networks": t.networks,
            "subnets": t.subnets,
            "ports": t.ports,
            "routers": t.routers,
            "floatingips": t.floatingips,
            "security-groups": t.security_groups,
            "subnetpools": t.subnetpools,
            "trunks": t.trunks,
        }[rtype]
        common.bump(conn, table, obj_id)
        obj = svc.get(RequestContext.admin(), conn, obj_id)
        uow.changed(svc.resource.name, obj_id, "update", obj, row.project_id)
        if tag is None and method in ("PUT", "POST"):
            return 200, {"tags": new}
        if method == "PUT":
            return 201, None
        return None

    return deps.db.run_write(work)
