"""The agent-facing HTTP API under ``/neutrino/v1/`` on the network API.

Every route needs a token with the ``admin`` or ``service`` role (else 403
``PolicyNotAuthorized``; no token: 401).  Over TLS an agent presents its
node's client certificate instead of a token: the network API's dispatch asks
``neutrino.services.agent_identity`` (its role's agent types, its own host
only) before any handler here runs (no certificate: 401
``ClientCertificateRequired``; another host or role: 403 ``AgentNotAuthorized``).

``GET /neutrino/v1/snapshot[?resources=network,subnet,...]``
    ``{"revision": R, "resources": {"networks": [...], ...}}``: admin-view
    dicts of every object of the requested feed resource types (default: all
    registered ones, see ``neutrino.feed.resources.PLURAL``), read in one
    snapshot transaction together with R, the newest revision.  Applying
    the changes after R to it gives the current state.  Unknown type: 400.

``GET /neutrino/v1/changes?since=R[&timeout=S][&limit=N]``
    ``{"revision": L, "changes": [{"revision", "resource", "id", "action",
    "project_id", "body"}, ...]}``, revision order, at most N (default 1000,
    max 10000).  ``action`` is create/update/delete; ``body`` is the object's
    admin-view dict after the change (null for delete).  L is the last
    revision examined (R when there is nothing new): pass it as the next
    ``since``.  Long-poll: when nothing is newer than R, wait up to S seconds
    (default 0, max 60) for a commit, woken at once by commits of this
    process and by re-reading the log every ``poll_interval`` for other
    processes.  410 ``ChangesGone`` when R is older than the retained log
    or newer than its head: take a snapshot.

``POST /neutrino/v1/agents/report`` body ``{"agent": {agent_type, binary,
    topic, host, configurations, availability_zone?, start_flag?,
    resources_synced?}}``
    Heartbeat; ``200 {"agent": {...}}`` (see ``neutrino.services.agents``).

``POST /neutrino/v1/ports/status`` body ``{"host": H, "ports": {id: status}}``
    Port status from the agents of host H (``neutrino.services.port_status``).

``POST /neutrino/v1/floatingips/status`` body ``{"host": H, "floatingips":
    {id: "ACTIVE"|"DOWN"|"ERROR"}}``
    Floating IP status from the L3 agent of host H, only for floating IPs
    whose router is scheduled to an L3 agent on H; ``200 {"changed": [...],
    "ignored": [...]}`` (``neutrino.services.fip_status``).

The log also carries ``port_forwarding`` records, which snapshots do not
list: follow port forwardings through the ``port_forwardings`` of floating
IP bodies (a forwarding change re-records its floating IP).

Wiring: this module is HTTP only.  The ``Feed`` it serves comes from
``neutrino.feed.publisher`` (built once per process by ``neutrino.server``),
and the three report routes call an injected ``AgentReports``
(``neutrino.services.agent_reports``): ``install(api, feed, reports)``.
It imports no service module.

Planned, not implemented: ``host=`` on snapshot and changes, returning only
what one host needs.  Revisions stay global, so a filtered ``changes`` still
returns the last revision examined and the client's position advances over
changes it did not receive.  Until then ``host=`` answers 501.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.feed import log
from neutrino.feed.publisher import Feed

PREFIX = "/neutrino/v1/"
MAX_TIMEOUT = 60.0
DEFAULT_LIMIT = 1000

Handler = Callable[["FeedHandler", Request, RequestContext], Awaitable[Response]]


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


class Reports(Protocol):
    """What the report routes call (``neutrino.services.agent_reports.AgentReports``); blocking."""

    @property
    def takes_heartbeats(self) -> bool: ...

    def heartbeat(self, ctx: RequestContext, body: Any) -> dict[str, Any]: ...

    def port_statuses(self, body: Any) -> dict[str, Any]: ...

    def fip_statuses(self, body: Any) -> dict[str, Any]: ...


def _int_param(request: Request, name: str, default: int | None, lo: int, hi: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise errors.bad(f"Missing parameter '{name}'")
        return default
    try:
        val = int(raw)
    except ValueError:
        raise errors.bad(f"Invalid value for '{name}': '{raw}' is not an integer") from None
    if val < lo or (hi is not None and val > hi):
        raise errors.bad(f"Invalid value for '{name}': {val} is out of range")
    return val


def _no_host(request: Request) -> None:
    if "host" in request.query_params:
        raise errors.NotImplementedFeature(msg="The host filter of the change feed is not implemented yet")


async def _snapshot(h: FeedHandler, request: Request, ctx: RequestContext) -> Response:
    _no_host(request)
    feed = h.feed
    known = feed.types()
    raw = [x.strip() for v in request.query_params.getlist("resources") for x in v.split(",") if x.strip()]
    unknown = [x for x in raw if x not in known]
    if unknown:
        raise errors.bad(f"Unknown feed resource(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    types = list(dict.fromkeys(raw)) or known
    return _json(await run_in_threadpool(feed.snapshot, types))


async def _changes(h: FeedHandler, request: Request, ctx: RequestContext) -> Response:
    _no_host(request)
    since = _int_param(request, "since", None, 0)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, log.MAX_LIMIT)
    raw_timeout = request.query_params.get("timeout", "0")
    try:
        timeout = min(MAX_TIMEOUT, max(0.0, float(raw_timeout)))
    except ValueError:
        raise errors.bad(f"Invalid value for 'timeout': '{raw_timeout}' is not a number") from None
    return _json(await h.feed.wait_changes(since, timeout, limit))


async def _json_body(request: Request) -> Any:
    """The request's JSON body (None when empty); 400 when malformed."""
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise errors.bad("Malformed request body") from None


async def _report(h: FeedHandler, request: Request, ctx: RequestContext) -> Response:
    if not h.reports.takes_heartbeats:
        raise errors.HTTPNotFound()
    body = await _json_body(request)
    return _json(await run_in_threadpool(h.reports.heartbeat, ctx, body))


async def _port_status(h: FeedHandler, request: Request, ctx: RequestContext) -> Response:
    body = await _json_body(request)
    return _json(await run_in_threadpool(h.reports.port_statuses, body))


async def _fip_status(h: FeedHandler, request: Request, ctx: RequestContext) -> Response:
    body = await _json_body(request)
    return _json(await run_in_threadpool(h.reports.fip_statuses, body))


ROUTES: dict[str, dict[str, Handler]] = {
    "snapshot": {"GET": _snapshot},
    "changes": {"GET": _changes},
    "agents/report": {"POST": _report},
    "ports/status": {"POST": _port_status},
    "floatingips/status": {"POST": _fip_status},
}


class FeedHandler:
    """The ``extra_routes`` handler for ``PREFIX``: serves ``feed`` and passes reports to ``reports``.

    ``feed`` is reachable for tests."""

    def __init__(self, feed: Feed, reports: Reports) -> None:
        self.feed = feed
        self.reports = reports

    async def __call__(self, api: Any, request: Request, ctx: RequestContext) -> Response:
        if not (ctx.is_admin or ctx.is_service):
            raise errors.PolicyNotAuthorized(action="rule:neutrino_feed")
        methods = ROUTES.get(request.url.path[len(PREFIX) :].strip("/"))
        if methods is None:
            raise errors.HTTPNotFound()
        handler = methods.get(request.method)
        if handler is None:
            raise errors.HTTPMethodNotAllowed()
        return await handler(self, request, ctx)


def install(api: Any, feed: Feed, reports: Reports) -> FeedHandler:
    """Serve ``feed`` and the agents' ``reports`` under ``PREFIX`` on ``api`` (a ``NetworkApi``)."""
    handler = FeedHandler(feed, reports)
    api.extra_routes[PREFIX] = handler
    return handler


__all__ = ["DEFAULT_LIMIT", "FeedHandler", "MAX_TIMEOUT", "PREFIX", "ROUTES", "Reports", "install"]
