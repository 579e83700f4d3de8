"""The metadata agent's request handling: who is asking, and forwarding to Nova.

``PortIndex`` is built from the feed's ports (kept in memory, so a request
needs no server round trip): the networks of each router (its interface
ports) and the ports by (network, IP) and (network, MAC).  ``MetadataApp``
is the ASGI application served on the unix socket the haproxy proxies
forward to (reference §5.3):

1. ``X-Forwarded-For`` = the VM's address (the last value: haproxy's own,
   it also deletes client copies); IPv4-mapped IPv6 becomes IPv4; an IPv6
   link-local address is looked up by the MAC of its EUI-64.
2. Exactly one of ``X-Neutron-Network-ID`` / ``X-Neutron-Router-ID``
   (both ⇒ 404, neither ⇒ 500).
3. Router: its networks are those of its interface ports.
4. Exactly one port with that address on those networks ⇒ the instance is
   the port's ``device_id``, the project its ``project_id``; otherwise 404.
5. Forward to Nova with the same method, path, query and body and only
   ``X-Forwarded-For``, ``X-Instance-ID``, ``X-Tenant-ID`` and
   ``X-Instance-ID-Signature`` (hex HMAC-SHA256 of the instance id with
   ``metadata_proxy_shared_secret``).  Headers a client sent under those
   names are never passed on: the outgoing headers are built from scratch.
6. 200 ⇒ body and Nova's Content-Type; 400/403/404/409/500/502/503/504 ⇒
   the same code; a connection error ⇒ 503; any other code ⇒ 500.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping

import httpx
from neutrino.asgi import handled_lifespan

LOG = logging.getLogger(__name__)

ROUTER_INTERFACE_OWNERS = frozenset({"network:router_interface", "network:ha_router_replicated_interface",
                                     "network:router_interface_distributed"})
PASSED_CODES = frozenset({400, 403, 404, 409, 500, 502, 503, 504})
TIMEOUT = 60.0


def sign(secret: str, instance_id: str) -> str:
    """``X-Instance-ID-Signature``: hex HMAC-SHA256 of the instance id, keyed with the shared secret."""
    return hmac.new(secret.encode("utf-8"), instance_id.encode("utf-8"), hashlib.sha256).hexdigest()


def mac_from_eui64(addr: ipaddress.IPv6Address) -> str | None:
    """The MAC an EUI-64 interface id was made from (None if it is not one)."""
    iid = addr.packed[8:]
    if iid[3:5] != b"\xff\xfe":
        return None
    mac = bytes([iid[0] ^ 0x02]) + iid[1:3] + iid[5:8]
    return ":".join(f"{b:02x}" for b in mac)


#: Client headers passed to the metadata API as they are (IMDSv2).
IMDS_HEADERS = ("X-aws-ec2-metadata-token", "X-aws-ec2-metadata-token-ttl-seconds")


@dataclass(frozen=True)
class Remote:
    """Who is asking: an IP address (or, for IPv6 link-local, a MAC)."""

    ip: str | None = None
    mac: str | None = None


def remote_of(forwarded_for: str | None) -> Remote | None:
    """Parse ``X-Forwarded-For`` (its last value: the one the proxy added)."""
    if not forwarded_for:
        return None
    value = forwarded_for.split(",")[-1].strip()
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return Remote(ip=str(ip.ipv4_mapped))
        if ip.is_link_local:
            mac = mac_from_eui64(ip)
            return Remote(mac=mac) if mac else None
    return Remote(ip=str(ip))


@dataclass
class PortIndex:
    """Ports by (network, IP) and (network, MAC); routers' networks."""

    by_ip: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    by_mac: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    router_networks: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, ports: Iterable[Mapping[str, Any]]) -> "PortIndex":
        idx = cls()
        for p in ports:
            net = p.get("network_id")
            if not net:
                continue
            if p.get("device_owner") in ROUTER_INTERFACE_OWNERS and p.get("device_id"):
                idx.router_networks.setdefault(p["device_id"], set()).add(net)
            for f in p.get("fixed_ips") or ():
                ip = f.get("ip_address")
                if ip:
                    idx.by_ip.setdefault((net, str(ipaddress.ip_address(ip))), []).append(dict(p))
            if p.get("mac_address"):
                idx.by_mac.setdefault((net, p["mac_address"].lower()), []).append(dict(p))
        return idx

    def networks(self, router_id: str | None, network_id: str | None) -> set[str]:
        if router_id:
            return set(self.router_networks.get(router_id, ()))
        return {network_id} if network_id else set()

    def ports_for(self, networks: set[str], remote: Remote) -> list[dict[str, Any]]:
        if remote.ip is not None:
            table, key = self.by_ip, remote.ip
        else:
            table, key = self.by_mac, (remote.mac or "").lower()
        found: dict[str, dict[str, Any]] = {}
        for net in sorted(networks):
            for p in table.get((net, key), ()):
                found[p.get("id") or id(p)] = p   # type: ignore[index]
        return list(found.values())


class LookupError_(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def resolve(index: PortIndex, headers: Mapping[str, str]) -> tuple[str, str, str]:
    """(instance_id, project_id, remote ip) for a request's headers (lower-case names).

    Raises ``LookupError_`` with the HTTP status to answer."""
    router_id = headers.get("x-neutron-router-id")
    network_id = headers.get("x-neutron-network-id")
    if router_id and network_id:
        raise LookupError_(404, "both X-Neutron-Router-ID and X-Neutron-Network-ID")
    if not router_id and not network_id:
        raise LookupError_(500, "neither X-Neutron-Router-ID nor X-Neutron-Network-ID")
    forwarded = headers.get("x-forwarded-for")
    remote = remote_of(forwarded)
    if remote is None:
        raise LookupError_(404, f"no usable X-Forwarded-For ({forwarded!r})")
    ports = index.ports_for(index.networks(router_id, network_id), remote)
    if len(ports) != 1:
        raise LookupError_(404, f"{len(ports)} ports for {remote} on "
                                f"{'router ' + router_id if router_id else 'network ' + str(network_id)}")
    port = ports[0]
    instance = port.get("device_id") or ""
    project = port.get("project_id") or port.get("tenant_id") or ""
    client_ip = remote.ip or forwarded.split(",")[-1].strip()   # type: ignore[union-attr]
    return instance, project, client_ip


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class MetadataApp:
    """ASGI app: resolve the instance, sign, forward to Nova, map the answer."""

    def __init__(self, nova_url: str, secret: str, *, index: PortIndex | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = TIMEOUT) -> None:
        self.nova_url = nova_url.rstrip("/")
        self.secret = secret
        self.index = index or PortIndex()
        self.client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def aclose(self) -> None:
        await self.client.aclose()

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        return b"".join(chunks)

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode("latin-1")),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def forward(self, method: str, path: str, query: str, body: bytes,
                      headers: Mapping[str, str]) -> tuple[int, bytes, str]:
        """(status, body, content type) to send back for one request."""
        try:
            instance, project, client_ip = resolve(self.index, headers)
        except LookupError_ as exc:
            LOG.info("metadata request refused (%d): %s", exc.status, exc)
            return exc.status, b"", "text/plain"
        out = {"X-Forwarded-For": client_ip, "X-Instance-ID": instance, "X-Tenant-ID": project,
               "X-Instance-ID-Signature": sign(self.secret, instance)}
        # IMDSv2 session tokens pass through: they are bound to the instance by the
        # metadata API itself, so a forged one can only fail.
        for name in IMDS_HEADERS:
            if name.lower() in headers:
                out[name] = headers[name.lower()]
        url = f"{self.nova_url}{path}" + (f"?{query}" if query else "")
        try:
            r = await self.client.request(method, url, content=body or None, headers=out)
        except httpx.HTTPError as exc:
            LOG.warning("metadata API unreachable at %s: %s", self.nova_url, exc)
            return 503, b"", "text/plain"
        if r.status_code == 200:
            return 200, r.content, r.headers.get("content-type", "text/plain")
        if r.status_code in (401, 405):   # IMDSv2 refusals and wrong methods keep their meaning
            return r.status_code, r.content, r.headers.get("content-type", "text/plain")
        if r.status_code == 403:
            LOG.warning("the metadata API refused instance %s: shared secrets do not match?", instance)
        if r.status_code in PASSED_CODES:
            return r.status_code, b"", "text/plain"
        LOG.warning("unexpected status %d from the metadata API", r.status_code)
        return 500, b"", "text/plain"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await handled_lifespan(scope, receive, send) or scope["type"] != "http":
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", ()):
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
            # Repeated headers: X-Forwarded-For keeps every value (the last one counts), the
            # X-Neutron-* ones keep the last (haproxy's set-header leaves exactly one).
            headers[name] = f"{headers[name]}, {value}" if name == "x-forwarded-for" and name in headers else value
        body = await self._body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or scope.get("path", "/")
        status, out, ctype = await self.forward(scope["method"], path, query, body, headers)
        await self._answer(send, status, out, ctype)
