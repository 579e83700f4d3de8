"""The agent-facing HTTP API under ``/neutrino/v1/`` on the network API.

Every route needs a token with the ``admin`` or ``service`` role (else 403
``PolicyNotAuthorized``; no token: 401).

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

Planned, not implemented: ``host=`` on snapshot and changes, returning only
what one host needs.  Revisions stay global, so a filtered ``changes`` still
returns the last revision examined and the client's position advances over
changes it did not receive.  Until then ``host=`` answers 501.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from neutrino import errors
from neutrino.api.query import ListQuery
from neutrino.context import RequestContext
from neutrino.feed import log
from neutrino.feed.resources import PLURAL
from neutrino.feed.signal import CommitSignal

PREFIX = "/neutrino/v1/"
MAX_TIMEOUT = 60.0
DEFAULT_LIMIT = 1000

Handler = Callable[["Feed", Request, RequestContext], Awaitable[Response]]


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


@dataclass
class Feed:
    """The feed endpoints' state: the API they serve, the commit signal, the compactor."""

    api: Any                                    # neutrino.api.app.NetworkApi
    signal: CommitSignal = field(default_factory=CommitSignal)
    compactor: log.Compactor | None = None
    poll_interval: float = 1.0
    #: Snapshot sources for feed types served by other APIs (e.g. "server" from
    #: the compute API): type -> fn(connection) -> admin-view dicts.
    extra_sources: dict[str, Any] = field(default_factory=dict)

    @property
    def db(self) -> Any:
        return self.api.deps.db

    def on_commit(self, revision: int) -> None:
        """Commit listener (any thread): wake long-polls, maybe compact."""
        self.signal.notify(revision)
        if self.compactor is not None:
            self.compactor.maybe_run()

    def services_by_type(self) -> dict[str, Any]:
        """Feed resource type -> registered service (only types the feed knows)."""
        out = {}
        for svc in self.api.services.values():
            name = getattr(getattr(svc, "resource", None), "name", None)
            if name in PLURAL:
                out[name] = svc
        for name in self.extra_sources:
            out.setdefault(name, None)
        return out

    # --- snapshot -------------------------------------------------------------------
    def snapshot(self, types: list[str]) -> dict[str, Any]:
        """Blocking: R and the objects of ``types``, all from one database snapshot."""
        services = self.services_by_type()
        admin = RequestContext.admin()
        with log.snapshot_read(self.db) as conn:
            revision = log.latest_revision(conn)
            resources = {PLURAL[name]: (self.extra_sources[name](conn) if name in self.extra_sources
                                        else services[name].list(admin, conn, ListQuery())[0])
                         for name in types}
        return {"revision": revision, "resources": resources}

    # --- changes --------------------------------------------------------------------------
    def read_changes(self, since: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Blocking: one read of the log (raises ``ChangesGone``)."""
        with self.db.read() as conn:
            return log.read_changes(conn, since, limit)

    async def wait_changes(self, since: int, timeout: float, limit: int) -> dict[str, Any]:
        """Long-poll: return as soon as there is something after ``since`` or at ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            generation = self.signal.generation
            revision, changes = await run_in_threadpool(self.read_changes, since, limit)
            remaining = deadline - loop.time()
            if changes or revision != since or remaining <= 0:
                return {"revision": revision, "changes": changes}
            await self.signal.wait(generation, min(self.poll_interval, remaining))


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


async def _snapshot(feed: Feed, request: Request, ctx: RequestContext) -> Response:
    _no_host(request)
    known = feed.services_by_type()
    raw = [x.strip() for v in request.query_params.getlist("resources") for x in v.split(",") if x.strip()]
    unknown = [x for x in raw if x not in known]
    if unknown:
        raise errors.bad(f"Unknown feed resource(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    types = list(dict.fromkeys(raw)) or list(known)
    return _json(await run_in_threadpool(feed.snapshot, types))


async def _changes(feed: Feed, request: Request, ctx: RequestContext) -> Response:
    _no_host(request)
    since = _int_param(request, "since", None, 0)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, log.MAX_LIMIT)
    raw_timeout = request.query_params.get("timeout", "0")
    try:
        timeout = min(MAX_TIMEOUT, max(0.0, float(raw_timeout)))
    except ValueError:
        raise errors.bad(f"Invalid value for 'timeout': '{raw_timeout}' is not a number") from None
    return _json(await feed.wait_changes(since, timeout, limit))


async def _report(feed: Feed, request: Request, ctx: RequestContext) -> Response:
    svc = feed.api.services.get("agents")
    if svc is None:
        raise errors.HTTPNotFound()
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise errors.bad("Malformed request body") from None
    result = await run_in_threadpool(feed.db.run_write, lambda uow: svc.report(ctx, uow, body))
    return _json(result)


async def _port_status(feed: Feed, request: Request, ctx: RequestContext) -> Response:
    from neutrino.services.port_status import set_statuses
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise errors.bad("Malformed request body") from None
    deps = feed.api.deps
    return _json(await run_in_threadpool(feed.db.run_write, lambda uow: set_statuses(deps, uow, body)))


async def _fip_status(feed: Feed, request: Request, ctx: RequestContext) -> Response:
    from neutrino.services.fip_status import set_statuses
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise errors.bad("Malformed request body") from None
    deps = feed.api.deps
    return _json(await run_in_threadpool(feed.db.run_write, lambda uow: set_statuses(deps, uow, body)))


ROUTES: dict[str, dict[str, Handler]] = {
    "snapshot": {"GET": _snapshot},
    "changes": {"GET": _changes},
    "agents/report": {"POST": _report},
    "ports/status": {"POST": _port_status},
    "floatingips/status": {"POST": _fip_status},
}


class FeedHandler:
    """The ``extra_routes`` handler for ``PREFIX``; ``feed`` is reachable for tests and wiring."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    async def __call__(self, api: Any, request: Request, ctx: RequestContext) -> Response:
        if not (ctx.is_admin or ctx.is_service):
            raise errors.PolicyNotAuthorized(action="rule:neutrino_feed")
        methods = ROUTES.get(request.url.path[len(PREFIX):].strip("/"))
        if methods is None:
            raise errors.HTTPNotFound()
        handler = methods.get(request.method)
        if handler is None:
            raise errors.HTTPMethodNotAllowed()
        return await handler(self.feed, request, ctx)


def install(api: Any, *, compact_interval: float = 30.0) -> Feed:
    """Serve ``/neutrino/v1/`` on ``api`` and become its database's commit listener.

    The listener (``Feed.on_commit``) may run a compaction, itself a write:
    ``Database`` calls listeners after the committing unit has released its
    connection and write lock.
    """
    db = api.deps.db
    feed = Feed(api, compactor=log.Compactor(db, api.deps.cfg.feed.retention, interval=compact_interval))
    db.set_commit_listener(feed.on_commit)
    api.extra_routes[PREFIX] = FeedHandler(feed)
    return feed


__all__ = ["DEFAULT_LIMIT", "Feed", "FeedHandler", "MAX_TIMEOUT", "PREFIX", "ROUTES", "install"]
