"""Flavors: the default set (seeded once), admin create/delete/update, extra specs.

Everyone may list and show public flavors; private flavors are visible to
admins only (flavor access lists are not implemented).  Writes need the
``admin`` role.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from neutrino.compute import faults
from neutrino.compute.microversion import Version
from neutrino.compute.validate import member, no_extra, page
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import Database, UnitOfWork
from neutrino.timeutil import now_iso

#: (id, name, vcpus, ram MiB, disk GiB): the set a fresh installation starts with.
DEFAULT_FLAVORS = (
    ("42", "m1.nano", 1, 64, 1),
    ("84", "m1.micro", 1, 128, 1),
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("5", "m1.xlarge", 8, 16384, 160),
)

_ID_RE = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_NAME_BAD = re.compile(r"^\s|\s$")
_SPEC_KEY_RE = re.compile(r"^[a-zA-Z0-9_:. -]{1,255}$")
_INT_MAX = 2**31 - 1


def seed(db: Database) -> int:
    """Insert the default flavors into an empty flavors table; returns how many were added.

    Only an empty table is seeded, so flavors an admin deleted stay deleted.
    Safe to run from several processes at once (a racing insert is retried
    and then finds the table filled).
    """

    def work(uow: UnitOfWork) -> int:
        if uow.conn.execute(select(t.flavors.c.id).limit(1)).first() is not None:
            return 0
        ts = now_iso()
        uow.conn.execute(
            insert(t.flavors),
            [
                {
                    "id": fid,
                    "name": name,
                    "vcpus": vcpus,
                    "ram": ram,
                    "disk": disk,
                    "ephemeral": 0,
                    "swap": 0,
                    "rxtx_factor": 1.0,
                    "is_public": True,
                    "disabled": False,
                    "description": None,
                    "extra_specs": {},
                    "created_at": ts,
                }
                for fid, name, vcpus, ram, disk in DEFAULT_FLAVORS
            ],
        )
        return len(DEFAULT_FLAVORS)

    return db.run_write(work)


def _swap(row: Any, mv: Version) -> Any:
    # Before 2.75 Nova shows a swap of 0 as "".
    return row.swap if (row.swap or mv >= (2, 75)) else ""


class FlavorService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- views -------------------------------------------------------------------------
    @staticmethod
    def links(base: str, fid: str) -> list[dict[str, str]]:
        return [
            {"rel": "self", "href": f"{base}/v2.1/flavors/{fid}"},
            {"rel": "bookmark", "href": f"{base}/flavors/{fid}"},
        ]

    def view(self, row: Any, mv: Version, base: str, detail: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": row.id, "name": row.name}
        if detail:
            out.update(
                {
                    "ram": row.ram,
                    "disk": row.disk,
                    "vcpus": row.vcpus,
                    "swap": _swap(row, mv),
                    "OS-FLV-EXT-DATA:ephemeral": row.ephemeral,
                    "OS-FLV-DISABLED:disabled": row.disabled,
                    "rxtx_factor": row.rxtx_factor,
                    "os-flavor-access:is_public": row.is_public,
                }
            )
        if mv >= (2, 55):
            out["description"] = row.description
        if detail and mv >= (2, 61):
            out["extra_specs"] = dict(row.extra_specs or {})
        out["links"] = self.links(base, row.id)
        return out

    @staticmethod
    def embedded(row: Any) -> dict[str, Any]:
        """What a server keeps of its flavor (shown from 2.47 on, and given to the agent)."""
        return {
            "id": row.id,
            "name": row.name,
            "vcpus": row.vcpus,
            "ram": row.ram,
            "disk": row.disk,
            "ephemeral": row.ephemeral,
            "swap": row.swap,
            "extra_specs": dict(row.extra_specs or {}),
        }

    # --- reading -------------------------------------------------------------------------
    def find(self, ctx: RequestContext, conn: Connection, fid: str) -> Any:
        row = conn.execute(select(t.flavors).where(t.flavors.c.id == fid)).first()
        if row is None or not (row.is_public or ctx.is_admin):
            raise faults.NotFound(f"Flavor {fid} could not be found.")
        return row

    def list(self, ctx: RequestContext, conn: Connection, params: dict[str, list[str]]) -> list[Any]:
        stmt = select(t.flavors)
        is_public = (params.get("is_public") or ["true"])[-1].strip().lower()
        if not ctx.is_admin or is_public in ("true", "t", "1", "yes", "y", "on"):
            stmt = stmt.where(t.flavors.c.is_public.is_(True))
        elif is_public in ("false", "f", "0", "no", "n", "off"):
            stmt = stmt.where(t.flavors.c.is_public.is_(False))
        # "none" (admins): public and private alike
        for key, col in (("minRam", t.flavors.c.ram), ("minDisk", t.flavors.c.disk)):
            if key in params:
                try:
                    stmt = stmt.where(col >= int(params[key][-1]))
                except ValueError:
                    raise faults.BadRequest(f"Invalid {key} filter [{params[key][-1]}]") from None
        sort_key = (params.get("sort_key") or ["flavorid"])[-1]
        sort_dir = (params.get("sort_dir") or ["asc"])[-1]
        cols = {
            "flavorid": t.flavors.c.id,
            "id": t.flavors.c.id,
            "name": t.flavors.c.name,
            "memory_mb": t.flavors.c.ram,
            "ram": t.flavors.c.ram,
            "vcpus": t.flavors.c.vcpus,
            "root_gb": t.flavors.c.disk,
            "disk": t.flavors.c.disk,
            "swap": t.flavors.c.swap,
            "ephemeral_gb": t.flavors.c.ephemeral,
            "rxtx_factor": t.flavors.c.rxtx_factor,
            "created_at": t.flavors.c.created_at,
        }
        if sort_key not in cols:
            raise faults.BadRequest(f"Invalid sort_key {sort_key}")
        if sort_dir not in ("asc", "desc"):
            raise faults.BadRequest(f"Invalid sort_dir {sort_dir}")
        col = cols[sort_key]
        rows = list(conn.execute(stmt.order_by(col.desc() if sort_dir == "desc" else col.asc(), t.flavors.c.id)))
        return page(rows, params, lambda r: r.id, "flavor")

    # --- writes (admin) ----------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, body: Any, mv: Version) -> Any:
        if not ctx.is_admin:
            raise faults.policy("os_compute_api:os-flavor-manage:create")
        f = member(body, "flavor")
        allowed = {
            "name",
            "id",
            "ram",
            "vcpus",
            "disk",
            "OS-FLV-EXT-DATA:ephemeral",
            "swap",
            "rxtx_factor",
            "os-flavor-access:is_public",
        }
        if mv >= (2, 55):
            allowed.add("description")
        no_extra(f, allowed)
        name = f.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255 or _NAME_BAD.search(name):
            raise faults.BadRequest(
                "Invalid input for field/attribute name. Value: "
                f"{name}. 'name' must be a non-empty string without leading or "
                "trailing whitespace, at most 255 characters"
            )
        fid = f.get("id")
        if fid is None or fid == "auto":
            fid = str(uuid.uuid4())
        elif not isinstance(fid, str) or not 1 <= len(fid) <= 255 or not _ID_RE.match(fid):
            raise faults.BadRequest(
                f"Invalid input for field/attribute id. Value: {fid}. "
                "'id' must be a string of letters, digits, '.', '_', '-' and spaces"
            )
        vals = {
            "id": fid,
            "name": name,
            "ram": _int(f, "ram", 1),
            "vcpus": _int(f, "vcpus", 1),
            "disk": _int(f, "disk", 0),
            "ephemeral": _int(f, "OS-FLV-EXT-DATA:ephemeral", 0, default=0),
            "swap": 0 if f.get("swap") in (None, "") else _int(f, "swap", 0),
            "rxtx_factor": _float(f, "rxtx_factor", 1.0),
            "is_public": _bool(f.get("os-flavor-access:is_public", True), "os-flavor-access:is_public"),
            "disabled": False,
            "extra_specs": {},
            "created_at": now_iso(),
        }
        desc = f.get("description")
        if desc is not None and (not isinstance(desc, str) or len(desc) > 65535):
            raise faults.BadRequest("Invalid input for field/attribute description.")
        vals["description"] = desc
        conn = uow.conn
        if conn.execute(select(t.flavors.c.id).where(t.flavors.c.name == name)).first():
            raise faults.Conflict(f"Flavor with name {name} already exists.")
        if conn.execute(select(t.flavors.c.id).where(t.flavors.c.id == fid)).first():
            raise faults.Conflict(f"Flavor with ID {fid} already exists.")
        conn.execute(insert(t.flavors).values(**vals))
        return conn.execute(select(t.flavors).where(t.flavors.c.id == fid)).one()

    def update(self, ctx: RequestContext, uow: UnitOfWork, fid: str, body: Any, mv: Version) -> Any:
        if mv < (2, 55):
            raise faults.MethodNotAllowed()
        if not ctx.is_admin:
            raise faults.policy("os_compute_api:os-flavor-manage:update")
        f = member(body, "flavor")
        no_extra(f, {"description"})
        if "description" not in f:
            raise faults.BadRequest("'description' is a required property")
        desc = f["description"]
        if desc is not None and (not isinstance(desc, str) or len(desc) > 65535):
            raise faults.BadRequest("Invalid input for field/attribute description.")
        self.find(ctx, uow.conn, fid)
        uow.conn.execute(update(t.flavors).where(t.flavors.c.id == fid).values(description=desc))
        return self.find(ctx, uow.conn, fid)

    def delete(self, ctx: RequestContext, uow: UnitOfWork, fid: str) -> None:
        if not ctx.is_admin:
            raise faults.policy("os_compute_api:os-flavor-manage:delete")
        self.find(ctx, uow.conn, fid)
        uow.conn.execute(delete(t.flavors).where(t.flavors.c.id == fid))

    def set_extra_specs(
        self, ctx: RequestContext, uow: UnitOfWork, fid: str, body: Any, key: str | None = None
    ) -> dict[str, str]:
        """POST os-extra_specs (merge) or PUT os-extra_specs/{key} (one key); returns what was set."""
        if not ctx.is_admin:
            raise faults.policy("os_compute_api:os-flavor-extra-specs:" + ("update" if key else "create"))
        if key is None:
            specs = member(body, "extra_specs")
        else:
            if not isinstance(body, dict) or len(body) != 1 or key not in body:
                raise faults.BadRequest("Request body and URI mismatch")
            specs = body
        for k, v in specs.items():
            if not _SPEC_KEY_RE.match(k):
                raise faults.BadRequest(f"Invalid input for field/attribute extra_specs. Key {k!r} is invalid")
            if isinstance(v, bool) or not isinstance(v, (str, int, float)) or len(str(v)) > 255:
                raise faults.BadRequest(
                    f"Invalid input for field/attribute {k}. Value must be a string of at most 255 characters"
                )
        row = self.find(ctx, uow.conn, fid)
        merged = dict(row.extra_specs or {})
        merged.update({k: str(v) for k, v in specs.items()})
        uow.conn.execute(update(t.flavors).where(t.flavors.c.id == fid).values(extra_specs=merged))
        return {k: str(v) for k, v in specs.items()}

    def delete_extra_spec(self, ctx: RequestContext, uow: UnitOfWork, fid: str, key: str) -> None:
        if not ctx.is_admin:
            raise faults.policy("os_compute_api:os-flavor-extra-specs:delete")
        row = self.find(ctx, uow.conn, fid)
        specs = dict(row.extra_specs or {})
        if key not in specs:
            raise faults.NotFound(f"Flavor {fid} has no extra specs with key {key}.")
        del specs[key]
        uow.conn.execute(update(t.flavors).where(t.flavors.c.id == fid).values(extra_specs=specs))


# --- flavor field checks ----------------------------------------------------------------------
def _int(d: dict[str, Any], key: str, minimum: int, default: int | None = None) -> int:
    if key not in d or d[key] is None:
        if default is not None:
            return default
        raise faults.BadRequest(f"Invalid input for field/attribute flavor. '{key}' is a required property")
    v = d[key]
    if isinstance(v, bool):
        v = None
    try:
        n = int(v) if not isinstance(v, float) or v.is_integer() else None
    except (TypeError, ValueError):
        n = None
    if n is None or not minimum <= n <= _INT_MAX:
        raise faults.BadRequest(
            f"Invalid input for field/attribute {key}. Value: {v}. "
            f"{key} must be an integer between {minimum} and {_INT_MAX}"
        )
    return n


def _float(d: dict[str, Any], key: str, default: float) -> float:
    v = d.get(key, default)
    try:
        x = float(v) if not isinstance(v, bool) else -1.0
    except (TypeError, ValueError):
        x = -1.0
    if not 0 < x <= 3.40282e38:
        raise faults.BadRequest(
            f"Invalid input for field/attribute {key}. Value: {v}. {key} must be a number greater than 0"
        )
    return x


def _bool(v: Any, key: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return v.lower() in ("true", "1", "yes", "on")
    raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}. {v!r} is not a boolean")
