"""The Compute API (a Nova v2.1 subset) and the agents' internal server API.

``build_compute_app(cfg, db, validate_token, deps)`` returns the ASGI app
served on ``[compute] bind_port`` (catalog type ``compute``, URL
``http://HOST:8774/v2.1``):

* ``GET /`` and ``GET /v2.1``: version documents (no token needed);
  microversions 2.1 to ``microversion.MAX`` via ``OpenStack-API-Version:
  compute X.Y`` or ``X-OpenStack-Nova-API-Version``.
* ``/v2.1/servers`` (GET, POST), ``/servers/detail``, ``/servers/{id}``
  (GET, PUT, DELETE), ``/servers/{id}/metadata[/{key}]``;
* ``/v2.1/flavors`` (GET, POST admin), ``/flavors/detail``,
  ``/flavors/{id}`` (GET, PUT and DELETE admin), ``/flavors/{id}/os-extra_specs[/{key}]``,
  ``/flavors/{id}/os-flavor-access``;
* ``/v2.1/os-keypairs`` (GET, POST), ``/os-keypairs/{name}`` (GET, DELETE);
* ``/v2.1/os-availability-zone[/detail]``, ``/v2.1/limits``;
* ``GET /v2.1/os-services`` (admin): the compute agents, as ``nova-compute`` services.

A project id after ``/v2.1/`` (old-style URLs) is accepted and ignored.
Errors are Nova's ``{"itemNotFound": {"message": ..., "code": 404}}``.

``install_internal(network_api, servers, feed)`` adds the agent side to the
network API, under ``/neutrino/v1/servers`` (admin or service role, or over TLS a
compute node's client certificate for its own host: ``neutrino.services.agent_identity``;
errors in the network API's ``NeutronError`` format):

``GET /neutrino/v1/servers[?host=H]``
    ``{"revision": R, "servers": [expanded agent view, ...]}``: every server
    (on host H), read in one snapshot with R, the newest change-feed
    revision.  Following the feed from R keeps it current.
``GET /neutrino/v1/servers/{id}``
    ``{"server": expanded agent view}``; 404 when it does not exist (deleted).
``GET /neutrino/v1/snapshot?resources=server``
    The feed's snapshot carries servers too (agent views, all hosts).
``POST /neutrino/v1/servers/{id}/state`` body ``{"status": "ACTIVE"|"ERROR"|"SHUTOFF",
    "fault": {"message", "code"?, "details"?}?, "host": H?, "power_state": N?}``
    The agent's report: ``200 {"server": agent view}``, a ``server`` update on
    the feed when something changed; 404 for a deleted server (tear it
    down), 409 when ``host`` is not the server's host.

The agent view (feed bodies of ``server`` changes, snapshot objects, state
answers) and its expanded form (the GETs above: plus ``ports``,
``networks``, ``subnets``) are documented at ``server_views.agent_view`` and ``server_views.expand``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from neutrino import errors as neutron_errors
from neutrino import request_limits as limits
from neutrino.asgi import handled_lifespan
from neutrino.compute import faults, microversion, scheduler, server_views
from neutrino.compute.flavors import FlavorService
from neutrino.compute.keypairs import KeypairService
from neutrino.compute.microversion import Version
from neutrino.compute.server_service import ServerGone, ServerService
from neutrino.config import Config
from neutrino.context import AuthInfo, RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import Database
from neutrino.feed import log
from neutrino.feed.publisher import Feed
from neutrino.services.common import Deps

LOG = logging.getLogger(__name__)
INTERNAL_PREFIX = "/neutrino/v1/servers"
_AUTH_ERROR = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}
_COLLECTIONS = ("servers", "flavors", "os-keypairs", "os-availability-zone", "limits", "os-services")


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=headers)


class _Unauthorized(Exception):
    pass


@dataclass
class ComputeApi:
    cfg: Config
    db: Database
    validate_token: Callable[[str], AuthInfo]
    servers: ServerService
    flavors: FlavorService
    keypairs: KeypairService
    auth_uri: str = ""


def make_compute_api(
    cfg: Config, db: Database, validate_token: Callable[[str], AuthInfo], deps: Deps, auth_uri: str = ""
) -> ComputeApi:
    """The compute services on ``deps``, the network services' (``neutrino.server`` builds both)."""
    flavors = FlavorService(db)
    keypairs = KeypairService(db)
    return ComputeApi(cfg, db, validate_token, ServerService(deps, flavors, keypairs), flavors, keypairs, auth_uri)


def build_compute_app(
    cfg: Config,
    db: Database,
    validate_token: Callable[[str], AuthInfo],
    deps: Deps | None = None,
    auth_uri: str = "",
    api: ComputeApi | None = None,
) -> Callable[..., Awaitable[None]]:
    """The Compute API's ASGI app (``api`` given: serve that one, else build it on ``deps``)."""
    if api is None:
        if deps is None:
            raise ValueError("build_compute_app needs the compute api or the network side's deps")
        api = make_compute_api(cfg, db, validate_token, deps, auth_uri)
    capi = api

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await handled_lifespan(scope, receive, send) or scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = "req-" + str(uuid.uuid4())
        mv = Version(*microversion.MIN)
        try:
            mv = microversion.requested(request.headers)
            response = await dispatch(capi, request, request_id, mv)
        except _Unauthorized:
            response = _json(_AUTH_ERROR, 401, {"WWW-Authenticate": f"Keystone uri=\"{capi.auth_uri}\""})
        except faults.ComputeError as exc:
            response = _json(exc.body(), exc.status)
        except neutron_errors.NeutronException as exc:
            response = _json(faults.from_neutron(exc).body(), exc.status)
        except Exception:
            LOG.exception("request %s %s failed", request.method, request.url.path)
            response = _json(
                {
                    "computeFault": {
                        "message": "Unexpected API Error. Please report this at the neutrino issue tracker.",
                        "code": 500,
                    }
                },
                500,
            )
        response.headers.setdefault("x-openstack-request-id", request_id)
        response.headers.setdefault("x-compute-request-id", request_id)
        for k, v in microversion.response_headers(mv).items():
            response.headers.setdefault(k, v)
        await response(scope, receive, send)

    return app


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{proto}://{host}"


def _context(api: ComputeApi, request: Request, request_id: str) -> RequestContext:
    token = request.headers.get("x-auth-token")
    if not token:
        raise _Unauthorized()
    try:
        auth = api.validate_token(token)
    except Exception:  # noqa: BLE001 - any invalid token is a 401
        raise _Unauthorized() from None
    return RequestContext.from_auth(auth, request_id)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise faults.BadRequest("Malformed request body") from None
    if limits.contains_nul(body):  # PostgreSQL cannot store NUL in text; no field needs it
        raise faults.BadRequest(limits.NUL_REFUSED)
    return body


def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        if "\x00" in k or "\x00" in v:
            raise faults.BadRequest(limits.NUL_REFUSED)
        out.setdefault(k, []).append(v)
    return out


def _next_link(base: str, path: str, params: dict[str, list[str]], items: list[Any], key: Any) -> list[dict[str, str]]:
    """Nova's ``*_links``: a next link when a full page (``limit``) came back."""
    if "limit" not in params or not items:
        return []
    try:
        limit = int(params["limit"][-1])
    except ValueError:
        return []
    if len(items) < limit:
        return []
    q = [(k, v) for k, vs in params.items() if k != "marker" for v in vs] + [("marker", key(items[-1]))]
    return [{"rel": "next", "href": f"{base}{path}?{urlencode(q)}"}]


async def dispatch(api: ComputeApi, request: Request, request_id: str, mv: Version) -> Response:
    path = request.url.path
    method = request.method
    base = _base_url(request)
    if path == "/":
        if method != "GET":
            raise faults.MethodNotAllowed()
        return _json(microversion.versions_doc(base))
    if path in ("/v2.1", "/v2.1/"):
        if method != "GET":
            raise faults.MethodNotAllowed()
        return _json({"version": microversion.version_doc(base)})
    if path in ("/healthcheck", "/healthcheck/"):
        return Response("OK", media_type="text/plain")
    if not path.startswith("/v2.1/"):
        raise faults.NotFound("The resource could not be found.")
    ctx = _context(api, request, request_id)
    parts = [p for p in path[len("/v2.1/") :].split("/") if p]
    if len(parts) > 1 and parts[0] not in _COLLECTIONS and parts[1] in _COLLECTIONS:
        parts = parts[1:]  # /v2.1/{project_id}/servers/... (old-style URL)
    if parts and parts[-1].endswith(".json"):
        parts[-1] = parts[-1][:-5]
    if not parts:
        raise faults.NotFound("The resource could not be found.")
    handler = {
        "servers": _servers,
        "flavors": _flavors,
        "os-keypairs": _keypairs,
        "os-availability-zone": _zones,
        "limits": _limits,
        "os-services": _services,
    }.get(parts[0])
    if handler is None:
        raise faults.NotFound("The resource could not be found.")
    return await handler(api, request, ctx, mv, parts[1:], base)


def _read(api: ComputeApi, fn: Callable[[Any], Any]) -> Awaitable[Any]:
    def work() -> Any:
        with api.db.read() as conn:
            return fn(conn)

    return run_in_threadpool(work)


def _write(api: ComputeApi, fn: Callable[[Any], Any]) -> Awaitable[Any]:
    return run_in_threadpool(api.db.run_write, fn)


# --- servers -----------------------------------------------------------------------------------
async def _servers(
    api: ComputeApi, request: Request, ctx: RequestContext, mv: Version, rest: list[str], base: str
) -> Response:
    svc = api.servers
    method = request.method
    if not rest or rest == ["detail"]:
        detail = bool(rest)
        if method == "GET":
            params = _params(request)

            def list_work(conn: Any) -> tuple[list[dict[str, Any]], list[Any]]:
                rows = svc.list(ctx, conn, params)
                if detail:
                    return svc.views(ctx, conn, rows, mv, base), rows
                return [{"id": r.id, "name": r.name, "links": server_views.links(base, r.id)} for r in rows], rows

            items, rows = await _read(api, list_work)
            body: dict[str, Any] = {"servers": items}
            links = _next_link(base, request.url.path, params, rows, lambda r: r.id)
            if links:
                body["servers_links"] = links
            return _json(body)
        if method == "POST" and not detail:
            payload = await _body(request)
            ids, admin_pass = await _write(api, lambda uow: api.servers.create(ctx, uow, payload, mv))

            def created(conn: Any) -> dict[str, Any]:
                row = svc.fetch(ctx, conn, ids[0])
                view = svc.views(ctx, conn, [row], mv, base)[0]
                view["adminPass"] = admin_pass
                if not view.get("security_groups"):  # no ports (yet): what was asked for
                    view["security_groups"] = [{"name": g} for g in (row.security_groups or ["default"])]
                return view

            return _json({"server": await _read(api, created)}, 202)
        raise faults.MethodNotAllowed()
    sid = rest[0]
    if len(rest) == 1:
        if method == "GET":
            return _json(
                {"server": await _read(api, lambda c: svc.views(ctx, c, [svc.fetch(ctx, c, sid)], mv, base)[0])}
            )
        if method == "PUT":
            payload = await _body(request)
            await _write(api, lambda uow: svc.update(ctx, uow, sid, payload, mv))
            return _json(
                {"server": await _read(api, lambda c: svc.views(ctx, c, [svc.fetch(ctx, c, sid)], mv, base)[0])}
            )
        if method == "DELETE":
            await _write(api, lambda uow: svc.delete(ctx, uow, sid))
            return Response(status_code=204)
        raise faults.MethodNotAllowed()
    sub = rest[1]
    if sub == "metadata":
        return await _metadata(api, request, ctx, sid, rest[2] if len(rest) > 2 else None)
    if sub == "action" and len(rest) == 2 and method == "POST":
        payload = await _body(request)
        await _read(api, lambda c: svc.fetch(ctx, c, sid))
        action = next(iter(payload), "") if isinstance(payload, dict) and payload else ""
        raise faults.BadRequest(f"There is no such action: {action}")
    raise faults.NotFound("The resource could not be found.")


async def _metadata(api: ComputeApi, request: Request, ctx: RequestContext, sid: str, key: str | None) -> Response:
    svc = api.servers
    method = request.method
    if key is None:
        if method == "GET":
            row = await _read(api, lambda c: svc.fetch(ctx, c, sid))
            return _json({"metadata": dict(row.meta or {})})
        if method in ("POST", "PUT"):
            payload = await _body(request)
            if not isinstance(payload, dict) or not isinstance(payload.get("metadata"), dict):
                raise faults.BadRequest("Malformed request body: 'metadata' is a required property")
            md = await _write(
                api, lambda uow: svc.set_metadata(ctx, uow, sid, payload["metadata"], replace=method == "PUT")
            )
            return _json({"metadata": md})
        raise faults.MethodNotAllowed()
    if method == "GET":
        row = await _read(api, lambda c: svc.fetch(ctx, c, sid))
        if key not in (row.meta or {}):
            raise faults.NotFound("Metadata item was not found")
        return _json({"meta": {key: row.meta[key]}})
    if method == "PUT":
        payload = await _body(request)
        meta = payload.get("meta") if isinstance(payload, dict) else None
        if not isinstance(meta, dict):
            raise faults.BadRequest("Malformed request body: 'meta' is a required property")
        if key not in meta:
            raise faults.BadRequest("Request body and URI mismatch")
        if len(meta) > 1:
            raise faults.BadRequest("Request body contains too many items")
        await _write(api, lambda uow: svc.set_metadata(ctx, uow, sid, meta, replace=False))
        return _json({"meta": meta})
    if method == "DELETE":
        await _write(api, lambda uow: svc.delete_metadata(ctx, uow, sid, key))
        return Response(status_code=204)
    raise faults.MethodNotAllowed()


# --- flavors -----------------------------------------------------------------------------------
async def _flavors(
    api: ComputeApi, request: Request, ctx: RequestContext, mv: Version, rest: list[str], base: str
) -> Response:
    svc = api.flavors
    method = request.method
    if not rest or rest == ["detail"]:
        detail = bool(rest)
        if method == "GET":
            params = _params(request)
            rows = await _read(api, lambda c: svc.list(ctx, c, params))
            body: dict[str, Any] = {"flavors": [svc.view(r, mv, base, detail) for r in rows]}
            links = _next_link(base, request.url.path, params, rows, lambda r: r.id)
            if links:
                body["flavors_links"] = links
            return _json(body)
        if method == "POST" and not detail:
            payload = await _body(request)
            row = await _write(api, lambda uow: svc.create(ctx, uow, payload, mv))
            return _json({"flavor": svc.view(row, mv, base)})
        raise faults.MethodNotAllowed()
    fid = rest[0]
    if len(rest) == 1:
        if method == "GET":
            return _json({"flavor": svc.view(await _read(api, lambda c: svc.find(ctx, c, fid)), mv, base)})
        if method == "PUT":
            payload = await _body(request)
            row = await _write(api, lambda uow: svc.update(ctx, uow, fid, payload, mv))
            return _json({"flavor": svc.view(row, mv, base)})
        if method == "DELETE":
            await _write(api, lambda uow: svc.delete(ctx, uow, fid))
            return Response(status_code=202)
        raise faults.MethodNotAllowed()
    sub = rest[1]
    if sub == "os-extra_specs":
        key = rest[2] if len(rest) > 2 else None
        if method == "GET":
            row = await _read(api, lambda c: svc.find(ctx, c, fid))
            specs = dict(row.extra_specs or {})
            if key is None:
                return _json({"extra_specs": specs})
            if key not in specs:
                raise faults.NotFound(f"Flavor {fid} has no extra specs with key {key}.")
            return _json({key: specs[key]})
        if method == "POST" and key is None:
            payload = await _body(request)
            return _json({"extra_specs": await _write(api, lambda uow: svc.set_extra_specs(ctx, uow, fid, payload))})
        if method == "PUT" and key is not None:
            payload = await _body(request)
            return _json(await _write(api, lambda uow: svc.set_extra_specs(ctx, uow, fid, payload, key)))
        if method == "DELETE" and key is not None:
            await _write(api, lambda uow: svc.delete_extra_spec(ctx, uow, fid, key))
            return Response(status_code=202)
        raise faults.MethodNotAllowed()
    if sub == "os-flavor-access" and len(rest) == 2 and method == "GET":
        row = await _read(api, lambda c: svc.find(ctx, c, fid))
        if row.is_public:
            raise faults.NotFound("Access list not available for public flavors.")
        return _json({"flavor_access": []})
    raise faults.NotFound("The resource could not be found.")


# --- key pairs ------------------------------------------------------------------------------------
async def _keypairs(
    api: ComputeApi, request: Request, ctx: RequestContext, mv: Version, rest: list[str], base: str
) -> Response:
    svc = api.keypairs
    method = request.method
    params = _params(request)
    user_id = params["user_id"][-1] if params.get("user_id") else None
    if not rest:
        if method == "GET":
            owner = svc.owner(ctx, user_id, mv, "index")
            rows = await _read(api, lambda c: svc.list(c, owner, params))
            body: dict[str, Any] = {"keypairs": [{"keypair": svc.view(r, mv)} for r in rows]}
            if mv >= (2, 35):
                links = _next_link(base, request.url.path, params, rows, lambda r: r.name)
                if links:
                    body["keypairs_links"] = links
            return _json(body)
        if method == "POST":
            payload = await _body(request)
            out = await _write(api, lambda uow: svc.create(ctx, uow, payload, mv))
            return _json({"keypair": out}, 201 if mv >= (2, 2) else 200)
        raise faults.MethodNotAllowed()
    if len(rest) != 1:
        raise faults.NotFound("The resource could not be found.")
    name = rest[0]
    if method == "GET":
        owner = svc.owner(ctx, user_id, mv, "show")
        row = await _read(api, lambda c: svc.get(c, owner, name))
        return _json({"keypair": svc.view(row, mv, full=True)})
    if method == "DELETE":
        await _write(api, lambda uow: svc.delete(ctx, uow, name, user_id, mv))
        return Response(status_code=204 if mv >= (2, 2) else 202)
    raise faults.MethodNotAllowed()


# --- availability zones, limits ----------------------------------------------------------------------
async def _zones(
    api: ComputeApi, request: Request, ctx: RequestContext, mv: Version, rest: list[str], base: str
) -> Response:
    if request.method != "GET" or rest not in ([], ["detail"]):
        raise faults.NotFound("The resource could not be found.")
    hosts = None
    if rest and ctx.is_admin:

        def work(conn: Any) -> list[Any]:
            return scheduler.live_agents(conn, api.cfg.default.agent_down_time)

        agents = await _read(api, work)
        hosts = {
            a.host: {"nova-compute": {"available": True, "active": True, "updated_at": a.heartbeat_timestamp}}
            for a in agents
        }
    return _json({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": hosts}]})


async def _limits(
    api: ComputeApi, request: Request, ctx: RequestContext, mv: Version, rest: list[str], base: str
) -> Response:
    if request.method != "GET" or rest:
        raise faults.NotFound("The resource could not be found.")

    def work(conn: Any) -> tuple[int, int, int]:
        row = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(t.servers.c.flavor["vcpus"].as_integer()), 0),
                func.coalesce(func.sum(t.servers.c.flavor["ram"].as_integer()), 0),
            ).where(t.servers.c.project_id == ctx.project_id)
        ).one()
        return int(row[0]), int(row[1]), int(row[2])

    n, cores, ram = await _read(api, work)
    absolute = {
        "maxTotalInstances": -1,
        "maxTotalCores": -1,
        "maxTotalRAMSize": -1,
        "maxServerMeta": 128,
        "maxTotalKeypairs": 100,
        "maxServerGroups": -1,
        "maxServerGroupMembers": -1,
        "totalInstancesUsed": n,
        "totalCoresUsed": cores,
        "totalRAMUsed": ram,
        "totalServerGroupsUsed": 0,
    }
    if mv < (2, 36):
        absolute.update(
            {
                "maxImageMeta": 128,
                "maxPersonality": 5,
                "maxPersonalitySize": 10240,
                "maxSecurityGroups": -1,
                "maxSecurityGroupRules": -1,
                "maxTotalFloatingIps": -1,
                "totalFloatingIpsUsed": 0,
                "totalSecurityGroupsUsed": 0,
            }
        )
    return _json({"limits": {"rate": [], "absolute": absolute}})


async def _services(
    api: ComputeApi, request: Request, ctx: RequestContext, mv: Version, rest: list[str], base: str
) -> Response:
    if rest:
        raise faults.NotFound("The resource could not be found.")
    if request.method != "GET":
        raise faults.MethodNotAllowed()
    if not ctx.is_admin:
        raise faults.policy("os_compute_api:os-services:list")
    params = _params(request)
    down_time = api.cfg.default.agent_down_time

    def work(conn: Any) -> list[Any]:
        return list(
            conn.execute(
                select(t.agents).where(t.agents.c.agent_type == scheduler.COMPUTE_AGENT).order_by(t.agents.c.host)
            )
        )

    now = time.time()
    out = []
    for a in await _read(api, work):
        if params.get("host") and a.host not in params["host"]:
            continue
        if params.get("binary") and "nova-compute" not in params["binary"]:
            continue
        svc = {
            "id": a.id,
            "binary": "nova-compute",
            "host": a.host,
            "zone": a.availability_zone or "nova",
            "status": "enabled" if a.admin_state_up else "disabled",
            "state": "up" if now - a.heartbeat_at <= down_time else "down",
            "updated_at": a.heartbeat_timestamp.replace(" ", "T"),
            "disabled_reason": None if a.admin_state_up else "disabled by an administrator",
        }
        if mv >= (2, 11):
            svc["forced_down"] = False
        out.append(svc)
    return _json({"services": out})


# --- the agents' internal API (on the network API) ---------------------------------------------------
class InternalServers:
    """``extra_routes`` handler of the network API for ``INTERNAL_PREFIX`` (see the module docstring)."""

    def __init__(self, servers: ServerService) -> None:
        self.servers = servers

    async def __call__(self, api: Any, request: Request, ctx: RequestContext) -> Response:
        if not (ctx.is_admin or ctx.is_service):
            raise neutron_errors.PolicyNotAuthorized(action="rule:neutrino_servers")
        rest = request.url.path[len(INTERNAL_PREFIX) :]
        if rest and not rest.startswith("/"):
            raise neutron_errors.HTTPNotFound()
        parts = [p for p in rest.split("/") if p]
        db = api.deps.db
        method = request.method
        if not parts:
            if method != "GET":
                raise neutron_errors.HTTPMethodNotAllowed()
            host = request.query_params.get("host")

            def list_work() -> dict[str, Any]:
                with log.snapshot_read(db) as conn:
                    revision = log.latest_revision(conn)
                    return {"revision": revision, "servers": self.servers.agent_list(conn, host, expand=True)}

            return _json(await run_in_threadpool(list_work))
        sid = parts[0]
        if len(parts) == 1:
            if method != "GET":
                raise neutron_errors.HTTPMethodNotAllowed()

            def show_work() -> dict[str, Any]:
                with db.read() as conn:
                    if conn.execute(select(t.servers.c.id).where(t.servers.c.id == sid)).first() is None:
                        raise ServerGone(id=sid)
                    return {"server": self.servers.agent_view(conn, sid, expand=True)}

            return _json(await run_in_threadpool(show_work))
        if len(parts) == 2 and parts[1] == "state":
            if method != "POST":
                raise neutron_errors.HTTPMethodNotAllowed()
            raw = await request.body()
            try:
                payload = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                raise neutron_errors.bad("Malformed request body") from None
            out = await run_in_threadpool(db.run_write, lambda uow: self.servers.set_state(uow, sid, payload))
            return _json({"server": out})
        raise neutron_errors.HTTPNotFound()


def install_internal(network_api: Any, servers: ServerService, feed: Feed) -> InternalServers:
    """Serve ``INTERNAL_PREFIX`` on the network API, ahead of the feed's ``/neutrino/v1/``,
    and make ``server`` a snapshot type of ``feed``, the change feed that API serves
    (agent views of every server)."""
    handler = InternalServers(servers)
    network_api.extra_routes = {INTERNAL_PREFIX: handler, **network_api.extra_routes}
    feed.add_source("server", lambda conn: servers.agent_list(conn, None))
    return handler


__all__ = [
    "ComputeApi",
    "INTERNAL_PREFIX",
    "InternalServers",
    "build_compute_app",
    "install_internal",
    "make_compute_api",
]
