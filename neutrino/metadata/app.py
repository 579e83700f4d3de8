"""The metadata API (the Nova metadata handler's job), served on ``[metadata] bind_port``.

Requests come from the Neutron metadata agent, which identifies the
instance with headers (trusted only with a valid signature):

``X-Instance-ID``            the server id (exactly one; missing or repeated: 400)
``X-Tenant-ID``              its project id (exactly one; missing or repeated: 400;
                             not the server's project: 404)
``X-Instance-ID-Signature``  hex HMAC-SHA256 of X-Instance-ID keyed with ``[metadata]
                             metadata_proxy_shared_secret`` (missing: 400; wrong: 403,
                             compared in constant time)
``X-Forwarded-For``          the instance's address (``local-ipv4`` when it has no fixed IPv4)

``GET /`` (the EC2 version list) needs none of them.  Unknown server: 404.

Over TLS (issue 16) only the metadata agent is served: every request needs a
verified client certificate whose role runs the metadata agent
(``neutrino.services.agent_identity``): none 401, another role 403.  The
signature above is checked as before, certificate or not.

IMDSv2 session tokens (not in Nova): ``PUT /latest/api/token`` with
``X-aws-ec2-metadata-token-ttl-seconds`` (1-21600, else 400) answers a token
(stateless: expiry + HMAC over instance id and expiry with the shared
secret, so any replica validates it, and it is good for that instance
only).  A request carrying ``X-aws-ec2-metadata-token`` with a bad, expired
or other-instance token answers 401; without one it answers 401 when
``[metadata] http_tokens = required``.

Methods: GET everywhere, PUT only for the token, POST only for
``/openstack/<version>/password``; anything else 405.

Cost per request: this is a bare ASGI app (no request/response objects);
an instance's metadata is loaded from the database once per
``metadata_cache_expiration`` (in a worker thread) and served from memory
in the event loop until then, together with the answers already rendered
for it (by path and address; never ``meta_data.json``, whose
``random_seed`` is new on every request).  Everything cached is keyed by
the signed instance id and checked against its project.  GET answers say
with ``Cache-Control: max-age=N`` how much longer this process would give
the same answer (``no-store`` for ``meta_data.json`` and ``password``); the
metadata agent replays them for at most that long.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import NoResultFound
from starlette.concurrency import run_in_threadpool

from neutrino import errors
from neutrino.asgi import handled_lifespan
from neutrino.compute.server_service import ServerService, network_context
from neutrino.config import Config
from neutrino.db import tables as t
from neutrino.db.engine import Database
from neutrino.metadata import tree
from neutrino.resources.types import Port
from neutrino.services import agent_identity

LOG = logging.getLogger(__name__)

TOKEN_HEADER = "x-aws-ec2-metadata-token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600
MAX_PASSWORD = 1020


@functools.lru_cache(maxsize=4096)
def sign_instance_id(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def make_token(secret: str, instance_id: str, expires: int) -> str:
    mac = hmac.new(secret.encode(), f"imdsv2-token\0{instance_id}\0{expires}".encode(), hashlib.sha256)
    return f"{expires}.{mac.hexdigest()}"


def token_valid(secret: str, instance_id: str, token: str, now: float | None = None) -> bool:
    expires_text, _, _ = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires <= (time.time() if now is None else now):
        return False
    return hmac.compare_digest(make_token(secret, instance_id, expires).encode(), token.encode())


class _Answer(Exception):
    def __init__(self, status: int, message: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}
#: Rendered answers kept per cached instance (distinct paths x addresses); beyond, start over.
MAX_RENDERED = 256
#: Answers the metadata agent must not replay: new on every request (random_seed), or changed
#: by the instance's own POST (the agent does not see it drop this process's cache entry).
NOT_REPLAYABLE = frozenset({"meta_data.json", "password"})


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = tree.TEXT
    headers: tuple[tuple[str, str], ...] = ()

    async def send(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        headers = [
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _text(
    status: int, body: str | bytes, content_type: str = tree.TEXT, headers: dict[str, str] | None = None
) -> _Reply:
    return _Reply(
        status, body.encode("utf-8") if isinstance(body, str) else body, content_type, tuple((headers or {}).items())
    )


def _error(exc: _Answer) -> _Reply:
    reason = _REASONS.get(exc.status, "Error")
    body = f"{exc.status} {reason}\n\n{exc.message}" if exc.message else f"{exc.status} {reason}"
    return _text(exc.status, body, headers=exc.headers)


class _Request:
    """What the handlers read of an ASGI request: method, path, headers (all values per name)."""

    __slots__ = ("method", "path", "headers", "_receive")

    def __init__(self, scope: dict[str, Any], receive: Any) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        headers: dict[str, list[str]] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        self.headers = headers
        self._receive = receive

    def getlist(self, name: str) -> list[str]:
        return self.headers.get(name, [])

    def get(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    async def body(self) -> bytes:
        chunks = []
        while True:
            msg = await self._receive()
            if msg["type"] != "http.request":
                break
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        return b"".join(chunks)


@dataclass
class _Cached:
    expires: float
    tenant_id: str
    instance: tree.Instance
    #: (path segments, address) -> rendered GET answer
    rendered: dict[tuple[tuple[str, ...], str | None], tuple[bytes, str]]


class MetadataApi:
    def __init__(self, cfg: Config, db: Database, servers: ServerService) -> None:
        self.cfg, self.db, self.servers = cfg, db, servers
        self._cache: dict[str, _Cached] = {}
        self.secret = cfg.metadata.metadata_proxy_shared_secret
        self.dhcp_domain = cfg.metadata.dhcp_domain
        self.tokens_required = cfg.metadata.http_tokens == "required"

    # --- identity -----------------------------------------------------------------------------
    def identify(self, request: _Request) -> tuple[str, str, str | None]:
        """(instance id, project id, address) from the signed headers, or a 400/403."""
        h = request
        ids, tenants, sigs = h.getlist("x-instance-id"), h.getlist("x-tenant-id"), h.getlist("x-instance-id-signature")
        if not ids:
            raise _Answer(400, "X-Instance-ID header is missing from request.")
        if not sigs:
            raise _Answer(400, "X-Instance-ID-Signature header is missing from request.")
        if not tenants:
            raise _Answer(400, "X-Tenant-ID header is missing from request.")
        if len(ids) > 1:
            raise _Answer(400, "Multiple X-Instance-ID headers found within request.")
        if len(tenants) > 1:
            raise _Answer(400, "Multiple X-Tenant-ID headers found within request.")
        instance_id, tenant_id = ids[0], tenants[0]
        expected = sign_instance_id(self.secret, instance_id)
        if len(sigs) > 1 or not hmac.compare_digest(expected.encode(), sigs[0].encode()):
            LOG.warning("X-Instance-ID-Signature mismatch for instance %s", instance_id)
            raise _Answer(403, "Invalid proxy request signature.")
        forwarded = h.get("x-forwarded-for")
        address = forwarded.split(",")[0].strip() if forwarded else None
        return instance_id, tenant_id, address

    def cached(self, instance_id: str, tenant_id: str) -> _Cached | None:
        """The cache entry of this instance if it is fresh and of this project (no I/O)."""
        hit = self._cache.get(instance_id)
        if hit is not None and hit.expires > time.monotonic() and hit.tenant_id == tenant_id:
            return hit
        return None

    def load(self, instance_id: str, tenant_id: str) -> tree.Instance:
        """The instance's metadata, cached for ``metadata_cache_expiration`` seconds
        (Nova's behaviour and default: a changed floating IP shows within 15 s).
        Blocking (database) on a miss."""
        return self._entry(instance_id, tenant_id).instance

    def _entry(self, instance_id: str, tenant_id: str) -> _Cached:
        hit = self.cached(instance_id, tenant_id)
        if hit is not None:
            return hit
        ttl = self.cfg.metadata.metadata_cache_expiration
        entry = _Cached(time.monotonic() + ttl, tenant_id, self._load(instance_id, tenant_id), {})
        if ttl > 0:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[instance_id] = entry
        return entry

    def forget(self, instance_id: str) -> None:
        self._cache.pop(instance_id, None)

    def _load(self, instance_id: str, tenant_id: str) -> tree.Instance:
        if not tree.is_uuid(instance_id):
            raise _Answer(404)
        with self.db.read() as conn:
            try:
                view = self.servers.agent_view(conn, instance_id, expand=True)
            except NoResultFound:
                raise _Answer(404) from None
            if view["project_id"] != tenant_id:
                raise _Answer(404)
            port_ids = [p["id"] for p in view.get("ports") or []]
            fips: list[str] = []
            group_names: list[str] = []
            if port_ids:
                order = {pid: i for i, pid in enumerate(port_ids)}
                rows = conn.execute(
                    select(t.floatingips.c.fixed_port_id, t.floatingips.c.floating_ip_address)
                    .where(t.floatingips.c.fixed_port_id.in_(port_ids))
                    .order_by(t.floatingips.c.created_at, t.floatingips.c.id)
                ).all()
                fips = [r.floating_ip_address for r in sorted(rows, key=lambda r: order[r.fixed_port_id])]
                sg_ids = list(dict.fromkeys(g for p in view["ports"] for g in p.get("security_groups") or []))
                if sg_ids:
                    names = dict(
                        conn.execute(
                            select(t.security_groups.c.id, t.security_groups.c.name).where(
                                t.security_groups.c.id.in_(sg_ids)
                            )
                        ).all()
                    )
                    group_names = list(dict.fromkeys(names[g] for g in sg_ids if g in names))
            subports = self._trunk_subports(conn, view)
            if view.get("subnets"):
                modes = dict(
                    conn.execute(
                        select(t.subnets.c.id, t.subnets.c.ipv6_address_mode).where(
                            t.subnets.c.id.in_(list(view["subnets"]))
                        )
                    ).all()
                )
                for sid, sub in view["subnets"].items():
                    sub.setdefault("ipv6_address_mode", modes.get(sid))
            key_type = "ssh"
            if view.get("key_name"):
                kt = conn.execute(
                    select(t.keypairs.c.type).where(
                        t.keypairs.c.user_id == view["user_id"], t.keypairs.c.name == view["key_name"]
                    )
                ).scalar()
                key_type = kt or "ssh"
            password = (
                conn.execute(select(t.servers.c.admin_password).where(t.servers.c.id == instance_id)).scalar() or ""
            )
        return tree.instance_from_view(
            view,
            floating_ips=fips,
            security_groups=group_names,
            key_type=key_type,
            password=password,
            subports=subports,
        )

    def _trunk_subports(self, conn: Any, view: dict[str, Any]) -> list[Port]:
        """The port dicts of the subports of the instance's trunk parents (their ``trunk_details``),
        with their networks and subnets added to the view's (``network_data.json`` lists them
        as VLAN links)."""
        ids = [
            s["port_id"] for p in view.get("ports") or [] for s in (p.get("trunk_details") or {}).get("sub_ports") or []
        ]
        if not ids:
            return []
        rows = list(conn.execute(select(t.ports).where(t.ports.c.id.in_(ids))))
        ports = self.servers.ports.dicts(conn, rows) if rows else []
        nets, subnets = network_context(conn, ports)
        view["networks"] = {**nets, **(view.get("networks") or {})}
        view["subnets"] = {**subnets, **(view.get("subnets") or {})}
        return ports

    def check_token(self, request: _Request, instance_id: str) -> None:
        tokens = request.getlist(TOKEN_HEADER)
        if not tokens:
            if self.tokens_required:
                raise _Answer(401)
            return
        if len(tokens) > 1 or not token_valid(self.secret, instance_id, tokens[0]):
            raise _Answer(401)

    # --- requests -----------------------------------------------------------------------------
    async def handle(self, request: _Request) -> _Reply:
        method = request.method
        parts = tree.split_path(request.path)
        is_token = parts == ["latest", "api", "token"]
        is_password = len(parts) == 3 and parts[0] == "openstack" and parts[2] == "password"
        allowed = "PUT" if is_token else ("GET, POST" if is_password else "GET")
        if method not in allowed.split(", "):
            raise _Answer(405, headers={"Allow": allowed})
        if method == "GET" and not parts:
            return _text(200, tree.root_listing())
        instance_id, tenant_id, address = self.identify(request)
        entry = self.cached(instance_id, tenant_id)
        if entry is None:  # a miss reads the database: off the event loop
            entry = await run_in_threadpool(self._entry, instance_id, tenant_id)
        inst = entry.instance
        if is_token:
            return self.issue_token(request, inst.uuid)
        self.check_token(request, inst.uuid)
        if method == "POST":
            return await self.set_password(request, inst, parts[1])
        return self.render(entry, parts, request.path, address)

    def render(self, entry: _Cached, parts: list[str], path: str, address: str | None) -> _Reply:
        """A GET answer, from the rendered ones of this cache entry when it is there.

        ``Cache-Control: max-age=N`` tells the metadata agent for how long the same request of
        this instance would get the same answer here (the rest of this entry's life), so an
        answer it replays is never older than one served from here; ``no-store`` marks the
        answers that change on every request or on an instance's own POST."""
        key = (tuple(parts), address)
        hit = entry.rendered.get(key)
        if hit is None:
            try:
                body, ctype = tree.resolve(entry.instance, path, dhcp_domain=self.dhcp_domain, address=address)
            except tree.NotFound:
                raise _Answer(404) from None
            hit = (body.encode("utf-8") if isinstance(body, str) else body, ctype)
            if parts[-1] != "meta_data.json":  # random_seed: new on every request
                if len(entry.rendered) >= MAX_RENDERED:
                    entry.rendered.clear()
                entry.rendered[key] = hit
        left = int(entry.expires - time.monotonic())
        replayable = left >= 1 and key in entry.rendered and parts[-1] not in NOT_REPLAYABLE
        return _Reply(200, hit[0], hit[1], (("Cache-Control", f"max-age={left}" if replayable else "no-store"),))

    def issue_token(self, request: _Request, instance_id: str) -> _Reply:
        ttls = request.getlist(TTL_HEADER)
        if len(ttls) != 1 or not ttls[0].strip().isdigit() or not 1 <= int(ttls[0]) <= MAX_TTL:
            raise _Answer(400, f"{TTL_HEADER} must be one integer from 1 to {MAX_TTL}.")
        ttl = int(ttls[0])
        token = make_token(self.secret, instance_id, int(time.time()) + ttl)
        return _text(200, token, headers={TTL_HEADER: str(ttl)})

    async def set_password(self, request: _Request, inst: tree.Instance, version: str) -> _Reply:
        versions = tree.openstack_versions()
        real = versions[-1] if version == "latest" else version
        if real not in versions or real < tree.GRIZZLY:
            raise _Answer(404)
        body = await request.body()
        if len(body) > MAX_PASSWORD:
            raise _Answer(400, "Request is too large.")
        password = body.decode("utf-8", "replace")

        def store(uow: Any) -> bool:
            # Set once, atomically: a second POST (from any replica) finds it set.
            res = uow.conn.execute(
                update(t.servers)
                .where(t.servers.c.id == inst.uuid, t.servers.c.admin_password.is_(None))
                .values(admin_password=password)
            )
            return res.rowcount == 1

        stored = await run_in_threadpool(self.db.run_write, store)
        self.forget(inst.uuid)
        if not stored:
            raise _Answer(409, "Password already set.")
        return _text(200, "")


def _check_agent(scope: dict[str, Any]) -> None:
    """Over TLS: refuse (401/403) a request without the metadata agent's client certificate."""
    if not agent_identity.tls_on(scope):
        return
    try:
        agent_identity.authorize_metadata(agent_identity.require(scope))
    except errors.NeutronException as exc:
        raise _Answer(exc.status, exc.msg) from None


def build_metadata_app(cfg: Config, db: Database, servers: ServerService) -> Callable[..., Awaitable[None]]:
    """The metadata API's ASGI app, reading instances through the compute API's ``servers``."""
    api = MetadataApi(cfg, db, servers)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await handled_lifespan(scope, receive, send) or scope["type"] != "http":
            return
        request = _Request(scope, receive)
        try:
            _check_agent(scope)
            response = await api.handle(request)
        except _Answer as exc:
            response = _error(exc)
        except Exception:
            LOG.exception("metadata request %s %s failed", request.method, request.path)
            response = _error(_Answer(500))
        await response.send(send)

    return app
