"""Identity queries over a SQLAlchemy ``Connection`` (no policy, no HTTP).

There is one domain, ``default`` (name ``Default``); ``resolve_domain``
maps a Keystone domain reference onto it.  Rows are returned as plain
dicts.  Writers take the ``Connection`` of a unit of work.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from neutrino.db.tables import projects, role_assignments, roles, users

DEFAULT_DOMAIN = {"id": "default", "name": "Default", "description": "The default domain", "enabled": True}

Row = dict[str, Any]


def new_id() -> str:
    return uuid.uuid4().hex


def resolve_domain(ref: dict | None) -> str | None:
    """``{"id": ...}`` or ``{"name": ...}`` (or None: default) -> domain id, None if unknown."""
    if not ref:
        return "default"
    if not isinstance(ref, dict):
        return None
    if "id" in ref:
        return "default" if ref["id"] == "default" else None
    if "name" in ref:
        return "default" if str(ref["name"]).lower() == "default" else None
    return None


def _one(conn: Connection, q) -> Row | None:
    row = conn.execute(q).mappings().first()
    return dict(row) if row is not None else None


def _inserted(row: Row | None, what: str) -> Row:
    """``row`` read back right after its INSERT in the same transaction (so never ``None``)."""
    if row is None:
        raise LookupError(f"the {what} just inserted cannot be read back")
    return row


def _all(conn: Connection, q) -> list[Row]:
    return [dict(r) for r in conn.execute(q).mappings()]


def _filtered(table, filters: dict[str, Any]):
    q = select(table)
    for col, val in filters.items():
        if val is not None:
            q = q.where(table.c[col] == val)
    return q.order_by(table.c.name)


# --- projects ---------------------------------------------------------------------
def get_project(conn: Connection, project_id: str) -> Row | None:
    return _one(conn, select(projects).where(projects.c.id == project_id))


def find_project(conn: Connection, name: str, domain_id: str = "default") -> Row | None:
    return _one(conn, select(projects).where(projects.c.name == name, projects.c.domain_id == domain_id))


def list_projects(conn: Connection, **filters: Any) -> list[Row]:
    return _all(conn, _filtered(projects, filters))


def create_project(conn: Connection, values: Row) -> Row:
    conn.execute(insert(projects).values(**values))
    return _inserted(get_project(conn, values["id"]), "project")


def update_project(conn: Connection, project_id: str, values: Row) -> None:
    if values:
        conn.execute(update(projects).where(projects.c.id == project_id).values(**values))


def delete_project(conn: Connection, project_id: str) -> bool:
    conn.execute(delete(role_assignments).where(role_assignments.c.project_id == project_id))
    return conn.execute(delete(projects).where(projects.c.id == project_id)).rowcount > 0


# --- users -------------------------------------------------------------------------
def get_user(conn: Connection, user_id: str) -> Row | None:
    return _one(conn, select(users).where(users.c.id == user_id))


def find_user(conn: Connection, name: str, domain_id: str = "default") -> Row | None:
    return _one(conn, select(users).where(users.c.name == name, users.c.domain_id == domain_id))


def list_users(conn: Connection, **filters: Any) -> list[Row]:
    return _all(conn, _filtered(users, filters))


def create_user(conn: Connection, values: Row) -> Row:
    conn.execute(insert(users).values(**values))
    return _inserted(get_user(conn, values["id"]), "user")


def update_user(conn: Connection, user_id: str, values: Row) -> None:
    if values:
        conn.execute(update(users).where(users.c.id == user_id).values(**values))


def delete_user(conn: Connection, user_id: str) -> bool:
    conn.execute(delete(role_assignments).where(role_assignments.c.user_id == user_id))
    return conn.execute(delete(users).where(users.c.id == user_id)).rowcount > 0


# --- roles -------------------------------------------------------------------------
def get_role(conn: Connection, role_id: str) -> Row | None:
    return _one(conn, select(roles).where(roles.c.id == role_id))


def find_role(conn: Connection, name: str) -> Row | None:
    return _one(conn, select(roles).where(roles.c.name == name))


def list_roles(conn: Connection, **filters: Any) -> list[Row]:
    return _all(conn, _filtered(roles, filters))


def create_role(conn: Connection, values: Row) -> Row:
    conn.execute(insert(roles).values(**values))
    return _inserted(get_role(conn, values["id"]), "role")


def delete_role(conn: Connection, role_id: str) -> bool:
    conn.execute(delete(role_assignments).where(role_assignments.c.role_id == role_id))
    return conn.execute(delete(roles).where(roles.c.id == role_id)).rowcount > 0


# --- assignments ---------------------------------------------------------------------
def roles_on_project(conn: Connection, user_id: str, project_id: str) -> list[Row]:
    """Roles (``id``, ``name``) directly assigned to the user on the project."""
    ra = role_assignments
    q = (
        select(roles.c.id, roles.c.name)
        .join(ra, ra.c.role_id == roles.c.id)
        .where(ra.c.user_id == user_id, ra.c.project_id == project_id)
        .order_by(roles.c.name)
    )
    return _all(conn, q)


def list_assignments(
    conn: Connection, user_id: str | None = None, project_id: str | None = None, role_id: str | None = None
) -> list[Row]:
    """Assignments with names: keys user_id, user_name, user_domain_id, project_id,
    project_name, project_domain_id, role_id, role_name."""
    ra = role_assignments
    q = (
        select(
            ra.c.user_id,
            users.c.name.label("user_name"),
            users.c.domain_id.label("user_domain_id"),
            ra.c.project_id,
            projects.c.name.label("project_name"),
            projects.c.domain_id.label("project_domain_id"),
            ra.c.role_id,
            roles.c.name.label("role_name"),
        )
        .join(users, users.c.id == ra.c.user_id)
        .join(projects, projects.c.id == ra.c.project_id)
        .join(roles, roles.c.id == ra.c.role_id)
    )
    for col, val in (("user_id", user_id), ("project_id", project_id), ("role_id", role_id)):
        if val is not None:
            q = q.where(ra.c[col] == val)
    return _all(conn, q.order_by(users.c.name, projects.c.name, roles.c.name))


def has_assignment(conn: Connection, user_id: str, project_id: str, role_id: str) -> bool:
    ra = role_assignments
    return (
        conn.execute(
            select(ra.c.role_id).where(
                and_(ra.c.user_id == user_id, ra.c.project_id == project_id, ra.c.role_id == role_id)
            )
        ).first()
        is not None
    )


def add_assignment(conn: Connection, user_id: str, project_id: str, role_id: str) -> None:
    """Idempotent."""
    if not has_assignment(conn, user_id, project_id, role_id):
        conn.execute(insert(role_assignments).values(user_id=user_id, project_id=project_id, role_id=role_id))


def remove_assignment(conn: Connection, user_id: str, project_id: str, role_id: str) -> bool:
    ra = role_assignments
    return (
        conn.execute(
            delete(ra).where(ra.c.user_id == user_id, ra.c.project_id == project_id, ra.c.role_id == role_id)
        ).rowcount
        > 0
    )


def projects_of_user(conn: Connection, user_id: str) -> list[Row]:
    """Projects on which the user has at least one role."""
    ra = role_assignments
    sub = select(ra.c.project_id).where(ra.c.user_id == user_id)
    return _all(conn, select(projects).where(projects.c.id.in_(sub)).order_by(projects.c.name))
