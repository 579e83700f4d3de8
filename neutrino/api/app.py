"""The Neutron v2.0 HTTP layer: routing, auth, envelopes, errors.

``build_network_app`` returns an ASGI app.  Handlers are thin: they parse
the request against the resource's attribute map, call the resource service
inside a unit of work (``Database.run_write``) or a read connection, shape
the result (policy stripping, ``fields=``) and wrap it in Neutron's
envelope.  Every error leaves as ``{"NeutronError": {...}}``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from neutrino import errors
from neutrino.api import extensions, openapi
from neutrino.asgi import handled_lifespan
from neutrino.context import AuthInfo, RequestContext
from neutrino.resources import query
from neutrino.resources.resource import Resource, Shaper, prepare_create, prepare_update, unwrap_create, unwrap_single
from neutrino.services import agent_identity
from neutrino.services import tags as tagsvc
from neutrino.services.common import Deps
from neutrino.services.tags import TAGGABLE  # collections with the /tags sub-API

LOG = logging.getLogger(__name__)

_AUTH_ERROR = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            # orjson stops at 64-bit integers; IPv6 address counts (IP availability) go beyond.
            return json.dumps(content, separators=(",", ":")).encode()


def error_response(exc: errors.NeutronException, request_id: str) -> Response:
    body = {"NeutronError": {"type": exc.type_name, "message": exc.msg, "detail": ""}}
    return JSONResponse(body, status_code=exc.status, headers={"x-openstack-request-id": request_id})


@dataclass
class NetworkApi:
    """Everything the handlers need; built by ``build_network_app``."""

    deps: Deps
    services: dict[str, Any]  # collection -> service
    validate_token: Callable[[str], AuthInfo]
    extra_routes: dict[str, Callable[..., Awaitable[Response]]] = field(default_factory=dict)
    quota_service: Any = None
    auth_uri: str = ""
    subresources: dict[tuple[str, str], Any] = field(default_factory=dict)  # (collection, sub) -> service
    openapi_doc: bytes = field(default=b"", repr=False, compare=False)  # built on first GET, then kept


def build_network_app(api: NetworkApi) -> Callable[..., Awaitable[None]]:
    """An ASGI callable serving ``/`` and ``/v2.0/...``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await handled_lifespan(scope, receive, send) or scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = "req-" + str(uuid.uuid4())
        try:
            response = await dispatch(api, request, request_id)
        except _Unauthorized:
            response = JSONResponse(
                _AUTH_ERROR, status_code=401, headers={"WWW-Authenticate": f"Keystone uri=\"{api.auth_uri}\""}
            )
        except errors.NeutronException as exc:
            response = error_response(exc, request_id)
        except Exception:
            LOG.exception("request %s %s failed", request.method, request.url.path)
            response = JSONResponse(
                {
                    "NeutronError": {
                        "type": "HTTPInternalServerError",
                        "message": "Request Failed: internal server error while processing your request.",
                        "detail": "",
                    }
                },
                status_code=500,
            )
        response.headers.setdefault("x-openstack-request-id", request_id)
        await response(scope, receive, send)

    return app


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{proto}://{host}"


async def dispatch(api: NetworkApi, request: Request, request_id: str) -> Response:
    path = request.url.path
    method = request.method
    if "\x00" in request.scope["path"]:  # no id has one, and PostgreSQL cannot compare it (issue 13)
        raise errors.bad("NUL characters are not allowed in a request.")
    if path == "/":
        if method != "GET":
            raise errors.HTTPMethodNotAllowed()
        return JSONResponse(
            {
                "versions": [
                    {
                        "id": "v2.0",
                        "status": "CURRENT",
                        "links": [{"rel": "self", "href": f"{_base_url(request)}/v2.0/"}],
                    }
                ]
            }
        )
    if path in ("/healthcheck", "/healthcheck/"):
        return Response("OK", media_type="text/plain")
    if path == "/v2.0/openapi.json":  # public, like "/": the published contract, the same for everyone
        return _openapi(api, method)
    for prefix, handler in api.extra_routes.items():
        if path.startswith(prefix):
            return await handler(api, request, await _agent_route_context(api, request, request_id))
    if not path.startswith("/v2.0/"):
        raise errors.HTTPNotFound()
    ctx = await _context(api, request, request_id)
    rest = path[len("/v2.0/") :]
    if rest.endswith(".json"):
        rest = rest[:-5]
    parts = [p for p in rest.split("/") if p]
    if not parts:
        if method != "GET":
            raise errors.HTTPMethodNotAllowed()
        return JSONResponse(
            {
                "resources": [
                    {
                        "name": r[:-1],
                        "collection": r,
                        "links": [{"rel": "self", "href": f"{_base_url(request)}/v2.0/{r}"}],
                    }
                    for r in ("networks", "subnets", "subnetpools", "ports")
                ]
            }
        )
    coll = parts[0]
    if coll == "extensions":
        return _extensions(method, parts)
    if coll == "quotas":
        return await _quotas(api, request, ctx, parts)
    svc = api.services.get(coll)
    if svc is None:
        raise errors.HTTPNotFound()
    if len(parts) == 1:
        if method == "GET":
            return await _list(api, request, ctx, svc, coll)
        if method == "POST":
            return await _create(api, request, ctx, svc)
        raise errors.HTTPMethodNotAllowed()
    obj_id = parts[1]
    if len(parts) == 2:
        if method == "GET":
            return await _show(api, request, ctx, svc, obj_id)
        if method == "PUT":
            return await _update(api, request, ctx, svc, obj_id)
        if method == "DELETE":
            return await _delete(api, request, ctx, svc, obj_id)
        raise errors.HTTPMethodNotAllowed()
    sub = parts[2]
    if sub == "tags" and coll in TAGGABLE:
        return await _tags(api, request, ctx, svc, coll, obj_id, parts[3] if len(parts) > 3 else None)
    subsvc = api.subresources.get((coll, sub))
    if subsvc is not None:
        return await _subresource(api, request, ctx, subsvc, obj_id, parts[3] if len(parts) > 3 else None)
    reads = getattr(svc, "member_reads", {})  # GET member actions (trunks' get_subports)
    if len(parts) == 3 and sub in reads and method == "GET":

        def read_work() -> Any:
            with api.deps.db.read() as conn:
                return reads[sub](ctx, conn, obj_id)

        return JSONResponse(await run_in_threadpool(read_work))
    actions = getattr(svc, "member_actions", {})
    if len(parts) == 3 and sub in actions:
        if method != "PUT":
            raise errors.HTTPMethodNotAllowed()
        body = await _json(request)
        result = await run_in_threadpool(api.deps.db.run_write, lambda uow: actions[sub](ctx, uow, obj_id, body))
        return JSONResponse(result)
    raise errors.HTTPNotFound()


async def _context(api: NetworkApi, request: Request, request_id: str) -> RequestContext:
    token = request.headers.get("x-auth-token")
    if not token:
        agent = agent_identity.identify(request.scope)
        if agent is not None:  # an agent's own call (its DHCP ports, its routers' port bindings)
            await _authorize_port_request(api, request, agent)
            return agent.context(request_id)
        raise _Unauthorized()
    return _token_context(api, token, request_id)


def _token_context(api: NetworkApi, token: str, request_id: str) -> RequestContext:
    try:
        auth = api.validate_token(token)
    except Exception:  # noqa: BLE001 - any invalid token is a 401
        raise _Unauthorized() from None
    return RequestContext.from_auth(auth, request_id)


async def _agent_route_context(api: NetworkApi, request: Request, request_id: str) -> RequestContext:
    """The caller of an ``extra_routes`` route (the agents' ``/neutrino/v1/``), checked before its handler.

    Over plain HTTP (``--no-tls``): the token, as the handlers require it.  Over TLS: the cloud
    admin's token (the admin tools), else a verified client certificate, which is the agent
    (``agent_identity``: its role and host decide), else 401 ``ClientCertificateRequired``."""
    scope = request.scope
    agent = agent_identity.identify(scope)
    if not agent_identity.is_agent_path(request.url.path) or (agent is None and not agent_identity.tls_on(scope)):
        return await _context(api, request, request_id)
    token = request.headers.get("x-auth-token")
    try:
        ctx = _token_context(api, token, request_id) if token else None
    except _Unauthorized:
        ctx = None
    if ctx is not None and ctx.is_admin:
        return ctx
    if agent is None:
        raise errors.ClientCertificateRequired()
    route = request.url.path[len(agent_identity.AGENT_PREFIX) :].strip("/")
    body = await _lenient_json(request)
    agent_identity.authorize_agent_route(agent, route, request.method, request.query_params, body)
    return agent.context(request_id)


async def _authorize_port_request(api: NetworkApi, request: Request, agent: agent_identity.AgentIdentity) -> None:
    """Refuse an agent's ``/v2.0/`` request unless ``agent_identity`` allows it (reads the port it names)."""
    parts = [p for p in request.url.path[len("/v2.0/") :].removesuffix(".json").split("/") if p]
    current = None
    if len(parts) == 2 and parts[0] == "ports":

        def read() -> agent_identity.PortBinding | None:
            with api.deps.db.read() as conn:
                return agent_identity.port_binding(conn, parts[1])

        current = await run_in_threadpool(read)
    body = await _lenient_json(request)
    agent_identity.authorize_port_request(agent, request.method, parts, body, current)


async def _lenient_json(request: Request) -> Any:
    """The JSON body for the agent checks; None when empty or malformed (the handler then answers 400)."""
    raw = await request.body()  # Starlette keeps it: the handler reads the same bytes
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


class _Unauthorized(errors.NeutronException):
    status = 401
    message = "The request you have made requires authentication."


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.bad("Body contains invalid data") from None
    if body is None:  # a literal ``null`` (an empty body is None too, but is reported differently)
        raise errors.bad("Body contains invalid data")
    return body


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _fields(request: Request) -> list[str] | None:
    f = [x for x in request.query_params.getlist("fields") if x]
    return f or None


async def _list(api: NetworkApi, request: Request, ctx: RequestContext, svc: Any, coll: str) -> Response:
    res: Resource = svc.resource
    params = _params(request)
    q = query.parse_list_query(
        res,
        params,
        special=getattr(svc, "special_filters", ("fixed_ips",)),
        max_limit=api.deps.cfg.default.pagination_max_limit,
    )
    if res.attr("id") is None:  # nothing to page by (availability zones): the whole list, no links
        q.limit, q.marker = 0, None
    if hasattr(svc, "prepare_list"):
        await run_in_threadpool(svc.prepare_list, ctx)

    def work() -> tuple[list[dict[str, Any]], Any]:
        with api.deps.db.read() as conn:
            items, pushed = svc.list(ctx, conn, q)
        items = query.apply(q, items, pushed=pushed, sort_values=getattr(svc, "sort_values", None))
        page, links = query.paginate(
            q, items, base_url=f"{_base_url(request)}{request.url.path}", params=params, collection=res.plural_key
        )
        shaper = Shaper(ctx, res, q.fields)
        return [shaper(o) for o in page], links

    page, links = await run_in_threadpool(work)
    body: dict[str, Any] = {res.plural_key: page}
    if links is not None:
        body[f"{res.plural_key}_links"] = links
    return JSONResponse(body)


async def _show(api: NetworkApi, request: Request, ctx: RequestContext, svc: Any, obj_id: str) -> Response:
    res: Resource = svc.resource

    def work() -> dict[str, Any]:
        with api.deps.db.read() as conn:
            return svc.get(ctx, conn, obj_id)

    obj = await run_in_threadpool(work)
    return JSONResponse({res.key: Shaper(ctx, res, _fields(request))(obj)})


async def _create(api: NetworkApi, request: Request, ctx: RequestContext, svc: Any) -> Response:
    res: Resource = svc.resource
    body = await _json(request)
    raw_items, bulk = unwrap_create(res, body)
    extra = getattr(svc, "extra_post_keys", ())
    items = [prepare_create(ctx, res, it, extra) for it in raw_items]
    precheck = getattr(svc, "precheck_create", None)
    if precheck is not None:
        await run_in_threadpool(_prechecked, api, lambda conn: [precheck(ctx, conn, it) for it in items])

    def work(uow: Any) -> list[dict[str, Any]]:
        return [svc.create(ctx, uow, it) for it in items]

    created = await run_in_threadpool(api.deps.db.run_write, work)
    shaper = Shaper(ctx, res)
    if bulk:
        return JSONResponse({res.plural_key: [shaper(o) for o in created]}, status_code=201)
    return JSONResponse({res.key: shaper(created[0])}, status_code=201)


async def _update(api: NetworkApi, request: Request, ctx: RequestContext, svc: Any, obj_id: str) -> Response:
    res: Resource = svc.resource
    body = await _json(request)
    changes = prepare_update(ctx, res, unwrap_single(res, body), getattr(svc, "extra_put_keys", ()))
    if_match = request.headers.get("if-match")
    precheck = getattr(svc, "precheck_update", None)
    if precheck is not None:
        await run_in_threadpool(_prechecked, api, lambda conn: precheck(ctx, conn, obj_id, changes))
    obj = await run_in_threadpool(api.deps.db.run_write, lambda uow: svc.update(ctx, uow, obj_id, changes, if_match))
    return JSONResponse({res.key: Shaper(ctx, res)(obj)})


def _prechecked(api: NetworkApi, check: Callable[[Any], Any]) -> None:
    """Run a service's checks that need only reads (``precheck_create`` / ``precheck_update``) on a
    read connection, before the write transaction, so costly validation never holds the write lock."""
    with api.deps.db.read() as conn:
        check(conn)


async def _delete(api: NetworkApi, request: Request, ctx: RequestContext, svc: Any, obj_id: str) -> Response:
    if await request.body():
        raise errors.bad("Request body is not supported in DELETE.")
    if_match = request.headers.get("if-match")
    await run_in_threadpool(api.deps.db.run_write, lambda uow: svc.delete(ctx, uow, obj_id, if_match))
    return Response(status_code=204)


async def _subresource(
    api: NetworkApi, request: Request, ctx: RequestContext, svc: Any, parent_id: str, sub_id: str | None
) -> Response:
    res: Resource = svc.resource
    method = request.method
    db = api.deps.db
    if sub_id is None:
        if method == "GET":
            params = _params(request)
            q = query.parse_list_query(res, params, special=())

            def list_work() -> list[dict[str, Any]]:
                with db.read() as conn:
                    items, pushed = svc.list(ctx, conn, parent_id, q)
                items = query.apply(q, items, pushed=pushed)
                shaper = Shaper(ctx, res, q.fields)
                return [shaper(o) for o in items]

            return JSONResponse({res.plural_key: await run_in_threadpool(list_work)})
        if method == "POST" and hasattr(svc, "create_raw"):  # a body that is not the resource's envelope
            body = await _json(request)
            await run_in_threadpool(db.run_write, lambda uow: svc.create_raw(ctx, uow, parent_id, body))
            return Response(b"null", status_code=201, media_type="application/json")
        if method == "POST":
            item = prepare_create(ctx, res, unwrap_single(res, await _json(request)))
            obj = await run_in_threadpool(db.run_write, lambda uow: svc.create(ctx, uow, parent_id, item))
            return JSONResponse({res.key: Shaper(ctx, res)(obj)}, status_code=201)
        raise errors.HTTPMethodNotAllowed()
    if method == "GET":

        def show_work() -> dict[str, Any]:
            with db.read() as conn:
                return svc.get(ctx, conn, parent_id, sub_id)

        obj = await run_in_threadpool(show_work)
        return JSONResponse({res.key: Shaper(ctx, res, _fields(request))(obj)})
    if method == "PUT":
        changes = prepare_update(ctx, res, unwrap_single(res, await _json(request)))
        obj = await run_in_threadpool(db.run_write, lambda uow: svc.update(ctx, uow, parent_id, sub_id, changes))
        return JSONResponse({res.key: Shaper(ctx, res)(obj)})
    if method == "DELETE":
        await run_in_threadpool(db.run_write, lambda uow: svc.delete(ctx, uow, parent_id, sub_id))
        return Response(status_code=204)
    raise errors.HTTPMethodNotAllowed()


def _openapi(api: NetworkApi, method: str) -> Response:
    """``GET /v2.0/openapi.json``: the OpenAPI document of this API (``neutrino.api.openapi``)."""
    if method != "GET":
        raise errors.HTTPMethodNotAllowed()
    if not api.openapi_doc:
        api.openapi_doc = openapi.render(openapi.document(api))
    return Response(api.openapi_doc, media_type="application/json")


def _extensions(method: str, parts: list[str]) -> Response:
    if method != "GET":
        raise errors.HTTPNotFound()
    if len(parts) == 1:
        return JSONResponse({"extensions": extensions.all_extensions()})
    alias = parts[1]
    if len(parts) > 2 or alias not in extensions.EXTENSIONS:
        raise errors.ExtensionNotFound(alias=alias)
    return JSONResponse({"extension": extensions.extension_dict(alias)})


async def _tags(
    api: NetworkApi, request: Request, ctx: RequestContext, svc: Any, coll: str, obj_id: str, tag: str | None
) -> Response:
    method = request.method
    body = await _json(request) if method in ("PUT", "POST") and tag is None else None
    result = await run_in_threadpool(tagsvc.handle, api.deps, ctx, svc, TAGGABLE[coll], obj_id, method, tag, body)
    if result is None:
        return Response(status_code=204)
    status, payload = result
    if payload is None:
        return Response(b"null", status_code=status, media_type="application/json")
    return JSONResponse(payload, status_code=status)


async def _quotas(api: NetworkApi, request: Request, ctx: RequestContext, parts: list[str]) -> Response:
    qs = api.quota_service
    db = api.deps.db
    method = request.method
    if len(parts) == 1:
        if method != "GET":
            raise errors.HTTPMethodNotAllowed()

        def list_work() -> dict[str, Any]:
            with db.read() as conn:
                return qs.list(ctx, conn)

        return JSONResponse(await run_in_threadpool(list_work))
    project = parts[1]
    if project == "tenant" and len(parts) == 2 and method == "GET":  # else the project named "tenant"
        return JSONResponse({"tenant": {"tenant_id": ctx.project_id}})
    if len(parts) == 3 and method == "GET" and parts[2] in ("default", "details"):
        fn = qs.show_default if parts[2] == "default" else qs.details

        def sub_work() -> dict[str, Any]:
            with db.read() as conn:
                return fn(ctx, conn, project)

        return JSONResponse(await run_in_threadpool(sub_work))
    if len(parts) != 2:
        raise errors.HTTPNotFound()
    if method == "GET":

        def show_work() -> dict[str, Any]:
            with db.read() as conn:
                return qs.show(ctx, conn, project)

        return JSONResponse(await run_in_threadpool(show_work))
    if method == "PUT":
        body = await _json(request)
        return JSONResponse(await run_in_threadpool(db.run_write, lambda uow: qs.update(ctx, uow, project, body)))
    if method == "DELETE":
        await run_in_threadpool(db.run_write, lambda uow: qs.delete(ctx, uow, project))
        return Response(status_code=204)
    raise errors.HTTPMethodNotAllowed()
