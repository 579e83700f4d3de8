"""Projects, users and the one domain (Keystone v3 subset); roles and role
assignments are in ``neutrino.identity.roles``.

Policy (project-scoped ``admin`` role = cloud admin, as Keystone's legacy
rules): creating, changing, deleting and listing anything needs admin.
Others may read their own project, their own user, their own user's projects,
and the domain.  Deleting or disabling a user, changing its password, or
removing one of its roles revokes the user's tokens; deleting a project
revokes the tokens scoped to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, overload

from sqlalchemy.exc import IntegrityError
from starlette.responses import Response
from starlette.routing import Route

from neutrino.db.engine import Database
from neutrino.identity import store, throttle
from neutrino.identity.passwords import hash_password, verify_password
from neutrino.identity.tokens import TokenProvider
from neutrino.identity.views import collection, domain_view, project_view, user_view
from neutrino.identity.web import (
    Call,
    KeystoneError,
    bad_request,
    conflict,
    endpoint,
    forbidden,
    json_response,
    no_content,
    not_found,
)

_TRUE = ("1", "true", "yes", "on")


@overload
def _str(obj: dict, key: str, *, required: Literal[True], max_len: int = 255) -> str: ...
@overload
def _str(obj: dict, key: str, *, required: bool = False, max_len: int = 255) -> str | None: ...
def _str(obj: dict, key: str, *, required: bool = False, max_len: int = 255) -> str | None:
    """``obj[key]``: a string of at most ``max_len``; ``None`` when absent unless ``required``."""
    val = obj.get(key)
    if val is None:
        if required:
            raise bad_request(f"Expecting to find {key} in request body.")
        return None
    if not isinstance(val, str) or (required and not val.strip()) or len(val) > max_len:
        raise bad_request(f"Invalid input for field '{key}'.")
    return val


def _bool(obj: dict, key: str) -> bool | None:
    val = obj.get(key)
    if val is None:
        return None
    if not isinstance(val, bool):
        raise bad_request(f"Invalid input for field '{key}': {val!r} is not of type 'boolean'.")
    return val


def _domain(obj: dict) -> str:
    dom = obj.get("domain_id")
    if dom is None:
        return "default"
    if dom != "default":
        raise not_found("domain", str(dom))
    return dom


class ResourceBase:
    """Shared helpers of the resource handler classes."""

    def __init__(self, db: Database, tokens: TokenProvider, token_ttl: int) -> None:
        self.db, self.tokens, self.token_ttl = db, tokens, token_ttl

    def _revoke(self, kind: str, subject_id: str) -> None:
        """Revoke the tokens of user (``"u"``) or project (``"p"``) ``subject_id``."""
        self.tokens.revoke_subject(kind, subject_id, time.time() + self.token_ttl + 60)

    def _write(self, fn: Callable[[Any], Any], kind: str, detail: str) -> Any:
        """Run ``fn(conn)`` in a unit of work; a lost uniqueness race is a 409."""
        try:
            return self.db.run_write(lambda uow: fn(uow.conn))
        except IntegrityError as exc:
            raise conflict(kind, detail) from exc

    def _project(self, conn, project_id: str) -> dict:
        p = store.get_project(conn, project_id)
        if p is None:
            raise not_found("project", project_id)
        return p

    def _user(self, conn, user_id: str) -> dict:
        u = store.get_user(conn, user_id)
        if u is None:
            raise not_found("user", user_id)
        return u

    def _role(self, conn, role_id: str) -> dict:
        r = store.get_role(conn, role_id)
        if r is None:
            raise not_found("role", role_id)
        return r

    def _route(self, path: str, fn: Callable[[Call], Response], *methods: str) -> Route:
        return Route(path, endpoint(fn, self.tokens), methods=list(methods))


class Resources(ResourceBase):
    """Domains, projects and users; ``routes()`` lists them."""

    # --- domains -------------------------------------------------------------------------
    def list_domains(self, call: Call) -> Response:
        dom = domain_view(call.base)
        name, enabled = call.query.get("name"), call.query.get("enabled")
        keep = (name is None or name == dom["name"]) and (enabled is None or enabled.lower() in _TRUE)
        return json_response(collection("domains", [dom] if keep else [], f"{call.base}v3/domains"))

    def get_domain(self, call: Call) -> Response:
        if call.path["domain_id"] != "default":
            raise not_found("domain", call.path["domain_id"])
        return json_response({"domain": domain_view(call.base)})

    def domain_unsupported(self, call: Call) -> Response:
        raise KeystoneError(501, "The action you have requested has not been implemented.")

    # --- projects ------------------------------------------------------------------------------
    def list_projects(self, call: Call) -> Response:
        call.require_admin("list_projects")
        q = call.query
        enabled = q.get("enabled")
        with self.db.read() as conn:
            rows = store.list_projects(
                conn,
                name=q.get("name"),
                domain_id=q.get("domain_id"),
                enabled=None if enabled is None else enabled.lower() in _TRUE,
            )
        if q.get("parent_id") not in (None, "default") or q.get("is_domain", "false").lower() in _TRUE:
            rows = []
        return json_response(
            collection("projects", [project_view(p, call.base) for p in rows], f"{call.base}v3/projects")
        )

    def get_project(self, call: Call) -> Response:
        pid = call.path["project_id"]
        assert call.auth is not None
        with self.db.read() as conn:
            project = self._project(conn, pid)  # 404 before 403, as Keystone
        if not (call.is_admin or call.auth.project_id == pid):
            raise forbidden("identity:get_project")
        return json_response({"project": project_view(project, call.base)})

    def create_project(self, call: Call) -> Response:
        call.require_admin("create_project")
        body = call.obj("project")
        name = _str(body, "name", required=True, max_len=64)
        dom = _domain(body)
        if body.get("is_domain"):
            raise KeystoneError(501, "The action you have requested has not been implemented.")
        if body.get("parent_id") not in (None, dom):
            raise not_found("project", str(body["parent_id"]))
        values = {
            "id": store.new_id(),
            "name": name,
            "domain_id": dom,
            "description": _str(body, "description") or "",
            "enabled": True if _bool(body, "enabled") is None else body["enabled"],
        }
        detail = f"Duplicate entry found with name {name} at domain ID {dom}"

        def write(conn):
            if store.find_project(conn, name, dom) is not None:
                raise conflict("project", detail)
            return store.create_project(conn, values)

        row = self._write(write, "project", detail)
        return json_response({"project": project_view(row, call.base)}, 201)

    def update_project(self, call: Call) -> Response:
        call.require_admin("update_project")
        pid, body = call.path["project_id"], call.obj("project")
        values: dict[str, Any] = {}
        if "name" in body:
            values["name"] = _str(body, "name", required=True, max_len=64)
        if "description" in body:
            values["description"] = _str(body, "description") or ""
        if _bool(body, "enabled") is not None:
            values["enabled"] = body["enabled"]
        detail = f"Duplicate entry found with name {values.get('name')} at domain ID default"

        def write(conn):
            p = self._project(conn, pid)
            other = store.find_project(conn, values["name"], p["domain_id"]) if "name" in values else None
            if other is not None and other["id"] != pid:
                raise conflict("project", detail)
            store.update_project(conn, pid, values)
            return store.get_project(conn, pid)

        row = self._write(write, "project", detail)
        if values.get("enabled") is False:
            self._revoke("p", pid)
        return json_response({"project": project_view(row, call.base)})

    def delete_project(self, call: Call) -> Response:
        call.require_admin("delete_project")
        pid = call.path["project_id"]

        def write(conn):
            if not store.delete_project(conn, pid):
                raise not_found("project", pid)

        self._write(write, "project", pid)
        self._revoke("p", pid)
        return no_content()

    # --- users ------------------------------------------------------------------------------------
    def list_users(self, call: Call) -> Response:
        call.require_admin("list_users")
        q = call.query
        enabled = q.get("enabled")
        with self.db.read() as conn:
            rows = store.list_users(
                conn,
                name=q.get("name"),
                domain_id=q.get("domain_id"),
                enabled=None if enabled is None else enabled.lower() in _TRUE,
            )
        return json_response(collection("users", [user_view(u, call.base) for u in rows], f"{call.base}v3/users"))

    def _self_or_admin(self, call: Call, action: str) -> str:
        uid = call.path["user_id"]
        assert call.auth is not None
        if not (call.is_admin or call.auth.user_id == uid):
            raise forbidden(f"identity:{action}")
        return uid

    def get_user(self, call: Call) -> Response:
        with self.db.read() as conn:
            user = self._user(conn, call.path["user_id"])  # 404 before 403, as Keystone
        self._self_or_admin(call, "get_user")
        return json_response({"user": user_view(user, call.base)})

    def _user_values(self, body: dict, conn) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "name" in body:
            values["name"] = _str(body, "name", required=True)
        for key in ("email", "description"):
            if key in body:
                values[key] = _str(body, key) or ("" if key == "description" else None)
        if _bool(body, "enabled") is not None:
            values["enabled"] = body["enabled"]
        if "default_project_id" in body:
            dp = _str(body, "default_project_id", max_len=64)
            if dp and store.get_project(conn, dp) is None:
                raise not_found("project", dp)
            values["default_project_id"] = dp or None
        return values

    def create_user(self, call: Call) -> Response:
        call.require_admin("create_user")
        body = call.obj("user")
        name = _str(body, "name", required=True)
        dom = _domain(body)
        password = _str(body, "password", max_len=4096)
        pw_hash = hash_password(password) if password is not None else None
        detail = f"Duplicate entry found with name {name} at domain ID {dom}"

        def write(conn):
            values = {
                "id": store.new_id(),
                "name": name,
                "domain_id": dom,
                "password_hash": pw_hash,
                "enabled": True,
                "description": "",
                **self._user_values(body, conn),
            }
            if store.find_user(conn, name, dom) is not None:
                raise conflict("user", detail)
            return store.create_user(conn, values)

        row = self._write(write, "user", detail)
        return json_response({"user": user_view(row, call.base)}, 201)

    def update_user(self, call: Call) -> Response:
        call.require_admin("update_user")
        uid, body = call.path["user_id"], call.obj("user")
        password = _str(body, "password", max_len=4096)
        pw_hash = hash_password(password) if password is not None else None
        detail = f"Duplicate entry found with name {body.get('name')} at domain ID default"

        def write(conn):
            u = self._user(conn, uid)
            values = self._user_values(body, conn)
            if pw_hash is not None:
                values["password_hash"] = pw_hash
            other = store.find_user(conn, values["name"], u["domain_id"]) if "name" in values else None
            if other is not None and other["id"] != uid:
                raise conflict("user", detail)
            store.update_user(conn, uid, values)
            if pw_hash is not None or values.get("enabled") is True:
                throttle.forget_user(conn, uid)  # unlocks, as Keystone does on enable
            return store.get_user(conn, uid)

        row = self._write(write, "user", detail)
        if pw_hash is not None or body.get("enabled") is False:
            self._revoke("u", uid)
        return json_response({"user": user_view(row, call.base)})

    def change_password(self, call: Call) -> Response:
        uid = call.path["user_id"]
        assert call.auth is not None
        if call.auth.user_id != uid:
            raise forbidden("identity:change_password")
        body = call.obj("user")
        new, old = _str(body, "password", required=True, max_len=4096), _str(body, "original_password")
        with self.db.read() as conn:
            user = self._user(conn, uid)
        if old is None or not verify_password(old, user["password_hash"]):
            raise KeystoneError(401, "The request you have made requires authentication.")
        pw_hash = hash_password(new)
        self._write(lambda conn: store.update_user(conn, uid, {"password_hash": pw_hash}), "user", uid)
        self._revoke("u", uid)
        return no_content()

    def delete_user(self, call: Call) -> Response:
        call.require_admin("delete_user")
        uid = call.path["user_id"]

        def write(conn):
            if not store.delete_user(conn, uid):
                raise not_found("user", uid)
            throttle.forget_user(conn, uid)

        self._write(write, "user", uid)
        self._revoke("u", uid)
        return no_content()

    def user_projects(self, call: Call) -> Response:
        uid = self._self_or_admin(call, "list_user_projects")
        with self.db.read() as conn:
            self._user(conn, uid)
            rows = [p for p in store.projects_of_user(conn, uid) if p["enabled"]]
        return json_response(
            collection("projects", [project_view(p, call.base) for p in rows], f"{call.base}v3/users/{uid}/projects")
        )

    def auth_projects(self, call: Call) -> Response:
        assert call.auth is not None
        with self.db.read() as conn:
            rows = [p for p in store.projects_of_user(conn, call.auth.user_id) if p["enabled"]]
        return json_response(
            collection("projects", [project_view(p, call.base) for p in rows], f"{call.base}v3/auth/projects")
        )

    def user_groups(self, call: Call) -> Response:
        uid = self._self_or_admin(call, "list_groups_for_user")
        with self.db.read() as conn:
            self._user(conn, uid)
        return json_response(collection("groups", [], f"{call.base}v3/users/{uid}/groups"))

    def routes(self) -> list[Route]:
        r = self._route
        return [
            r("/v3/domains", self.list_domains, "GET"),
            r("/v3/domains", self.domain_unsupported, "POST"),
            r("/v3/domains/{domain_id}", self.get_domain, "GET"),
            r("/v3/domains/{domain_id}", self.domain_unsupported, "PATCH", "DELETE"),
            r("/v3/projects", self.list_projects, "GET"),
            r("/v3/projects", self.create_project, "POST"),
            r("/v3/projects/{project_id}", self.get_project, "GET"),
            r("/v3/projects/{project_id}", self.update_project, "PATCH"),
            r("/v3/projects/{project_id}", self.delete_project, "DELETE"),
            r("/v3/users", self.list_users, "GET"),
            r("/v3/users", self.create_user, "POST"),
            r("/v3/users/{user_id}", self.get_user, "GET"),
            r("/v3/users/{user_id}", self.update_user, "PATCH"),
            r("/v3/users/{user_id}", self.delete_user, "DELETE"),
            r("/v3/users/{user_id}/password", self.change_password, "POST"),
            r("/v3/users/{user_id}/projects", self.user_projects, "GET"),
            r("/v3/users/{user_id}/groups", self.user_groups, "GET"),
            r("/v3/auth/projects", self.auth_projects, "GET"),
        ]
