"""The Keystone v3 identity API subset: discovery, tokens, catalog.

``build_identity_app(cfg, db, tokens, catalog_endpoints)`` returns the
Starlette app.  Token and catalog routes live here; domains, projects and users are in
``neutrino.identity.resources``, roles and role assignments in
``neutrino.identity.roles``.

Authentication methods: ``password`` (user by id, or by name plus domain
``{"id": "default"}`` / ``{"name": "Default"}``) and ``token`` (rescoping an
existing token, keeping its expiry).  Scope: a project by id or by name plus
domain; without a scope the user's ``default_project_id`` is used when the
user has a role there, otherwise the token is unscoped.  Any failure is a 401
with Keystone's body, never a hint which part was wrong.

Password guessing (``neutrino.identity.throttle``): failed password logins are
counted per user and client address; past ``[identity]
login_throttle_failures`` that address is refused (429, ``Retry-After``)
for a wait that doubles with each failure.  With ``[security_compliance]
lockout_failure_attempts`` a user is locked (401 "The account is locked for
user: <id>.") after that many consecutive failures from anywhere.
"""

from __future__ import annotations

import functools
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino.config import Config
from neutrino.context import AuthInfo
from neutrino.db.engine import Database
from neutrino.identity import store
from neutrino.identity.passwords import hash_password, verify_password
from neutrino.identity.resources import Resources
from neutrino.identity.roles import Roles
from neutrino.identity.throttle import (
    AccountLocked,
    LoginGuard,
    LoginThrottled,
    ThrottlePolicy,
    retry_after_header,
    subject_of,
)
from neutrino.identity.tokens import TokenError, TokenProvider
from neutrino.identity.views import Endpoint, build_catalog, collection, default_catalog_endpoints, token_view, version
from neutrino.identity.web import (
    Call,
    KeystoneError,
    bad_request,
    endpoint,
    forbidden,
    json_response,
    no_content,
    not_found,
    unauthorized,
)

__all__ = ["build_identity_app", "default_catalog_endpoints", "IdentityAPI"]


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so timing does not tell."""
    return hash_password(secrets.token_urlsafe(16))


class IdentityAPI:
    """Token and catalog handlers (see module docstring)."""

    def __init__(self, cfg: Config, db: Database, tokens: TokenProvider, catalog_endpoints: list[Endpoint]) -> None:
        self.cfg, self.db, self.tokens = cfg, db, tokens
        self.ttl = int(cfg.token.expiration)
        self.region = cfg.identity.region
        self.endpoints = list(catalog_endpoints)
        self.catalog = build_catalog(self.endpoints, self.region)
        self.guard = LoginGuard(db, ThrottlePolicy.from_config(cfg))

    # --- discovery ----------------------------------------------------------------------
    async def versions(self, request: Request) -> Response:
        return json_response({"versions": {"values": [version(str(request.base_url))]}}, 300)

    async def v3(self, request: Request) -> Response:
        return json_response({"version": version(str(request.base_url))})

    # --- tokens ---------------------------------------------------------------------------
    def _password_user(self, ref: Any, address: str | None) -> dict:
        """The user a password login names, if the password is right and the login is not
        throttled or locked (``address``: the client's, what throttling is keyed on)."""
        if not isinstance(ref, dict) or not isinstance(ref.get("password"), str):
            raise unauthorized()
        dom = None
        with self.db.read() as conn:
            if ref.get("id"):
                user = store.get_user(conn, str(ref["id"]))
            elif ref.get("name"):
                dom = store.resolve_domain(ref.get("domain"))
                user = store.find_user(conn, str(ref["name"]), dom) if dom else None
            else:
                raise bad_request("Expecting to find id or name in user.")
        asked = ref.get("id") or ref.get("name")
        who = f"{user['name']} ({user['id']})" if user else f"{str(asked)[:64]!r} (no such user)"
        try:
            seen = self.guard.check(subject_of(user, asked, dom), address, who)
        except LoginThrottled as exc:
            raise KeystoneError(
                429,
                f"Too many failed logins of this user from {address or 'your address'}: try again in "
                f"{retry_after_header(exc.retry_after)} seconds.",
                {"Retry-After": retry_after_header(exc.retry_after)},
            ) from None
        except AccountLocked as exc:
            raise unauthorized(str(exc)) from None
        ok = verify_password(ref["password"], user["password_hash"] if user else _dummy_hash())
        if not ok:
            self.guard.failed(seen, who)
        if not ok or user is None or not user["enabled"]:
            raise unauthorized()
        self.guard.succeeded(seen)
        return user

    def _scope_project(self, conn, scope: Any) -> dict | None:
        if scope is None or scope == "unscoped":
            return None
        if not isinstance(scope, dict) or not isinstance(scope.get("project"), dict):
            raise unauthorized()  # domain / system scope: no roles there
        ref = scope["project"]
        if ref.get("id"):
            project = store.get_project(conn, str(ref["id"]))
        elif ref.get("name"):
            dom = store.resolve_domain(ref.get("domain"))
            project = store.find_project(conn, str(ref["name"]), dom) if dom else None
        else:
            raise bad_request("Expecting to find id or name in project.")
        if project is None or not project["enabled"]:
            raise unauthorized()
        return project

    def issue_token(self, call: Call) -> Response:
        auth = call.obj("auth")
        ident = auth.get("identity")
        methods = ident.get("methods") if isinstance(ident, dict) else None
        if not isinstance(ident, dict) or not isinstance(methods, list) or not methods:
            raise bad_request("Expecting to find identity in auth.")
        expires_at = None
        if "password" in methods:
            pw = ident.get("password")
            client = call.request.client
            user = self._password_user(
                pw.get("user") if isinstance(pw, dict) else None, client.host if client else None
            )
        elif "token" in methods:
            ref = ident.get("token")
            try:
                prior = self.tokens.validate(str(ref.get("id")) if isinstance(ref, dict) else "")
            except TokenError as exc:
                raise unauthorized() from exc
            with self.db.read() as conn:
                found = store.get_user(conn, prior.user_id)
            if found is None or not found["enabled"]:
                raise unauthorized()
            user = found
            expires_at = prior.expires_at
        else:
            raise unauthorized()
        with self.db.read() as conn:
            scope = auth.get("scope")
            project = self._scope_project(conn, scope)
            roles: list[dict] = []
            if project is not None:
                roles = store.roles_on_project(conn, user["id"], project["id"])
                if not roles:
                    raise unauthorized()
            elif scope is None and user["default_project_id"]:
                dp = store.get_project(conn, user["default_project_id"])
                roles = store.roles_on_project(conn, user["id"], dp["id"]) if dp and dp["enabled"] else []
                project = dp if roles else None
            role_ids = {r["name"]: r["id"] for r in store.list_roles(conn)}
        ttl = self.ttl
        token, info = self.tokens.issue(
            user["id"],
            user["name"],
            project["id"] if project else "",
            project["name"] if project else "",
            [r["name"] for r in roles],
            ttl,
            domain_id=user["domain_id"],
            expires_at=int(expires_at) if expires_at is not None else None,
        )
        body = token_view(
            info,
            [m for m in ("token", "password") if m in methods],
            role_ids,
            None if call.query.get("nocatalog") is not None else self.catalog,
        )
        return json_response(body, 201, {"X-Subject-Token": token})

    def _subject(self, call: Call) -> AuthInfo:
        tok = call.request.headers.get("x-subject-token")
        if not tok:
            raise not_found("token", "")
        try:
            subject = self.tokens.validate(tok)
        except TokenError as exc:
            raise not_found("token", tok[:12]) from exc
        assert call.auth is not None
        if not (call.is_admin or "service" in call.auth.roles or call.auth.user_id == subject.user_id):
            raise forbidden("identity:validate_token")
        return subject

    def check_token(self, call: Call) -> Response:
        subject = self._subject(call)
        if call.request.method == "HEAD":
            return Response(status_code=200, headers={"X-Subject-Token": call.request.headers["x-subject-token"]})
        with self.db.read() as conn:
            role_ids = {r["name"]: r["id"] for r in store.list_roles(conn)}
        body = token_view(
            subject, ["password"], role_ids, None if call.query.get("nocatalog") is not None else self.catalog
        )
        return json_response(body, 200, {"X-Subject-Token": call.request.headers["x-subject-token"]})

    def revoke_token(self, call: Call) -> Response:
        subject = self._subject(call)
        self.tokens.revoke(subject.audit_id, subject.expires_at)
        return no_content()

    # --- catalog ------------------------------------------------------------------------------
    def auth_catalog(self, call: Call) -> Response:
        assert call.auth is not None
        if not call.auth.project_id:
            raise forbidden("identity:get_auth_catalog")
        return json_response({"catalog": self.catalog, "links": {"self": f"{call.base}v3/auth/catalog"}})

    # The catalog is read-only: services, endpoints and the region come from configuration.
    def _services(self, base: str) -> list[dict[str, Any]]:
        return [
            {
                "id": s["id"],
                "type": s["type"],
                "name": s["name"],
                "enabled": True,
                "description": "",
                "links": {"self": f"{base}v3/services/{s['id']}"},
            }
            for s in self.catalog
        ]

    def _endpoints(self, base: str) -> list[dict[str, Any]]:
        return [
            {**e, "service_id": s["id"], "enabled": True, "links": {"self": f"{base}v3/endpoints/{e['id']}"}}
            for s in self.catalog
            for e in s["endpoints"]
        ]

    def _regions(self, base: str) -> list[dict[str, Any]]:
        return [
            {
                "id": self.region,
                "description": "",
                "parent_region_id": None,
                "links": {"self": f"{base}v3/regions/{self.region}"},
            }
        ]

    def _listing(self, call: Call, kind: str, filters: tuple[str, ...]) -> Response:
        if kind != "regions":  # regions are public in Keystone's policy
            call.require_admin(f"list_{kind}")
        items = getattr(self, f"_{kind}")(call.base)
        for key in filters:
            if call.query.get(key) is not None:
                items = [i for i in items if i[key] == call.query[key]]
        return json_response(collection(kind, items, f"{call.base}v3/{kind}"))

    def _showing(self, call: Call, kind: str) -> Response:
        if kind != "regions":
            call.require_admin(f"get_{kind[:-1]}")
        for item in getattr(self, f"_{kind}")(call.base):
            if item["id"] == call.path["id"]:
                return json_response({kind[:-1]: item})
        raise not_found(kind[:-1], call.path["id"])

    def list_services(self, call: Call) -> Response:
        return self._listing(call, "services", ("type", "name"))

    def list_endpoints(self, call: Call) -> Response:
        return self._listing(call, "endpoints", ("interface", "service_id", "region_id"))

    def list_regions(self, call: Call) -> Response:
        return self._listing(call, "regions", ())

    def routes(self) -> list[Route]:
        t = self.tokens
        return [
            Route("/", self.versions, methods=["GET"]),
            Route("/v3", self.v3, methods=["GET"]),
            Route("/v3/", self.v3, methods=["GET"]),
            Route("/v3/auth/tokens", endpoint(self.issue_token, t, authed=False), methods=["POST"]),
            Route("/v3/auth/tokens", endpoint(self.check_token, t), methods=["GET", "HEAD"]),
            Route("/v3/auth/tokens", endpoint(self.revoke_token, t), methods=["DELETE"]),
            Route("/v3/auth/catalog", endpoint(self.auth_catalog, t), methods=["GET"]),
            Route("/v3/services", endpoint(self.list_services, t), methods=["GET"]),
            Route("/v3/endpoints", endpoint(self.list_endpoints, t), methods=["GET"]),
            Route("/v3/regions", endpoint(self.list_regions, t), methods=["GET"]),
            *[
                Route(f"/v3/{kind}/{{id}}", endpoint(functools.partial(self._showing, kind=kind), t), methods=["GET"])
                for kind in ("services", "endpoints", "regions")
            ],
        ]


def build_identity_app(
    cfg: Config, db: Database, tokens: TokenProvider, catalog_endpoints: list[Endpoint] | None = None
) -> Starlette:
    """The Keystone v3 subset as a Starlette app.

    ``catalog_endpoints``: ``(service_type, service_name, url)`` entries of the
    catalog; None means ``default_catalog_endpoints(cfg)`` (identity and
    network).  ``tokens`` should share ``db`` so revocations are recorded.
    """
    api = IdentityAPI(
        cfg, db, tokens, default_catalog_endpoints(cfg) if catalog_endpoints is None else catalog_endpoints
    )
    routes = api.routes() + Resources(db, tokens, api.ttl).routes() + Roles(db, tokens, api.ttl).routes()
    app = Starlette(routes=routes)
    app.state.login_guard = api.guard  # for operators' tools and tests (its clock, its policy)
    return app
