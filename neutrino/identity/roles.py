"""Roles and project role assignments (Keystone v3 subset).

All of it needs the admin role (see ``neutrino.identity.resources``).
Removing a role from a user (or deleting a role) revokes the user's tokens.
Implied roles are ``neutrino.context.IMPLIED_ROLES``; ``effective`` listings
of role assignments include them.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from neutrino.context import IMPLIED_ROLES
from neutrino.identity import store
from neutrino.identity.resources import _TRUE, ResourceBase, _str
from neutrino.identity.views import collection, role_view
from neutrino.identity.web import Call, KeystoneError, conflict, json_response, no_content, not_found


class Roles(ResourceBase):
    """Handlers for roles and grants; ``routes()`` lists them."""

    # --- roles -----------------------------------------------------------------------------------
    def list_roles(self, call: Call) -> Response:
        call.require_admin("list_roles")
        with self.db.read() as conn:
            rows = store.list_roles(conn, name=call.query.get("name"))
        if call.query.get("domain_id"):
            rows = []
        return json_response(collection("roles", [role_view(r, call.base) for r in rows], f"{call.base}v3/roles"))

    def get_role(self, call: Call) -> Response:
        call.require_admin("get_role")
        with self.db.read() as conn:
            return json_response({"role": role_view(self._role(conn, call.path["role_id"]), call.base)})

    def create_role(self, call: Call) -> Response:
        call.require_admin("create_role")
        body = call.obj("role")
        name = _str(body, "name", required=True)
        if body.get("domain_id"):
            raise KeystoneError(501, "The action you have requested has not been implemented.")
        detail = f"Duplicate entry found with name {name}"

        def write(conn):
            if store.find_role(conn, name) is not None:
                raise conflict("role", detail)
            return store.create_role(conn, {"id": store.new_id(), "name": name})

        row = self._write(write, "role", detail)
        return json_response({"role": role_view(row, call.base)}, 201)

    def delete_role(self, call: Call) -> Response:
        call.require_admin("delete_role")
        rid = call.path["role_id"]

        def write(conn):
            users = {a["user_id"] for a in store.list_assignments(conn, role_id=rid)}
            if not store.delete_role(conn, rid):
                raise not_found("role", rid)
            return users

        for uid in self._write(write, "role", rid):
            self._revoke("u", uid)
        return no_content()

    # --- assignments -------------------------------------------------------------------------------
    def _check_triple(self, conn, call: Call) -> tuple[str, str, str]:
        p, u, r = call.path["project_id"], call.path["user_id"], call.path.get("role_id", "")
        self._project(conn, p)
        self._user(conn, u)
        if r:
            self._role(conn, r)
        return p, u, r

    def grant(self, call: Call) -> Response:
        call.require_admin("create_grant")

        def write(conn):
            p, u, r = self._check_triple(conn, call)
            store.add_assignment(conn, u, p, r)

        self._write(write, "role assignment", "duplicate")
        return no_content()

    def check_grant(self, call: Call) -> Response:
        call.require_admin("check_grant")
        with self.db.read() as conn:
            p, u, r = self._check_triple(conn, call)
            if not store.has_assignment(conn, u, p, r):
                raise self._assignment_not_found(p, u, r)
        return no_content()

    @staticmethod
    def _assignment_not_found(p: str, u: str, r: str) -> KeystoneError:
        return KeystoneError(
            404, f"Could not find role assignment with role: {r}, user or group: {u}, project, domain, or system: {p}."
        )

    def revoke_grant(self, call: Call) -> Response:
        call.require_admin("revoke_grant")

        def write(conn):
            p, u, r = self._check_triple(conn, call)
            if not store.remove_assignment(conn, u, p, r):
                raise self._assignment_not_found(p, u, r)
            return u

        self._revoke("u", self._write(write, "role assignment", ""))
        return no_content()

    def list_grants(self, call: Call) -> Response:
        call.require_admin("list_grants")
        with self.db.read() as conn:
            p, u, _ = self._check_triple(conn, call)
            rows = store.roles_on_project(conn, u, p)
        return json_response(
            collection("roles", [role_view(r, call.base) for r in rows], f"{call.base}v3/projects/{p}/users/{u}/roles")
        )

    def role_assignments(self, call: Call) -> Response:
        """GET /v3/role_assignments: filters user.id, scope.project.id, role.id;
        ``effective`` adds implied roles, ``include_names`` adds names."""
        call.require_admin("list_role_assignments")
        q = call.query
        if any(k in q for k in ("group.id", "scope.domain.id", "scope.system")):
            return json_response(
                {"role_assignments": [], "links": {"self": str(call.request.url), "previous": None, "next": None}}
            )
        names = q.get("include_names", "false").lower() in _TRUE or q.get("include_names") == ""
        effective = "effective" in q and q.get("effective", "").lower() not in ("0", "false", "no", "off")
        with self.db.read() as conn:
            rows = store.list_assignments(conn, user_id=q.get("user.id"), project_id=q.get("scope.project.id"))
            by_name = {r["name"]: r["id"] for r in store.list_roles(conn)}
        out, seen = [], set()
        for a in rows:
            entries = [(a["role_id"], a["role_name"], None)]
            if effective:
                entries += [
                    (by_name[n], n, a["role_id"]) for n in IMPLIED_ROLES.get(a["role_name"], ()) if n in by_name
                ]
            for rid, rname, prior in entries:
                key = (a["user_id"], a["project_id"], rid)
                if key in seen or (q.get("role.id") and q["role.id"] != rid):
                    continue
                seen.add(key)
                out.append(self._assignment_view(call.base, a, rid, rname, prior, names))
        return json_response(
            {"role_assignments": out, "links": {"self": str(call.request.url), "previous": None, "next": None}}
        )

    @staticmethod
    def _assignment_view(base: str, a: dict, rid: str, rname: str, prior: str | None, names: bool) -> dict[str, Any]:
        role: dict[str, Any] = {"id": rid}
        user: dict[str, Any] = {"id": a["user_id"]}
        project: dict[str, Any] = {"id": a["project_id"]}
        if names:
            dom = {"id": "default", "name": "Default"}
            role["name"] = rname
            user.update(name=a["user_name"], domain=dom)
            project.update(name=a["project_name"], domain=dom)
        links = {"assignment": f"{base}v3/projects/{a['project_id']}/users/{a['user_id']}/roles/{prior or rid}"}
        if prior:
            links["prior_role"] = f"{base}v3/roles/{prior}"
        return {"role": role, "user": user, "scope": {"project": project}, "links": links}

    def routes(self) -> list[Route]:
        r = self._route
        return [
            r("/v3/projects/{project_id}/users/{user_id}/roles", self.list_grants, "GET"),
            r("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", self.grant, "PUT"),
            r("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", self.check_grant, "GET", "HEAD"),
            r("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", self.revoke_grant, "DELETE"),
            r("/v3/roles", self.list_roles, "GET"),
            r("/v3/roles", self.create_role, "POST"),
            r("/v3/roles/{role_id}", self.get_role, "GET"),
            r("/v3/roles/{role_id}", self.delete_role, "DELETE"),
            r("/v3/role_assignments", self.role_assignments, "GET"),
        ]
