"""The metadata agent's request handling: who is asking, and forwarding to Nova.

``PortIndex`` is built from the feed's ports and routers (kept in memory, so
a request needs no server round trip): the networks of each router (the
interface ports the router records, ``interface_port_ids``: a port's own
``device_id`` never adds a network to a router) and the ports by (network,
IP) and (network, MAC).
``MetadataProxy.handle`` answers each request that the agent's server
(``server.py``, on the unix socket the haproxy proxies forward to) reads
(reference §5.3):

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
   names are never passed on: the outgoing headers are built from scratch
   (only the IMDSv2 token headers are copied).  The request goes over a
   kept-alive connection of ``upstream.Upstream``.
6. 200 ⇒ body and Nova's Content-Type; 400/403/404/409/500/502/503/504 ⇒
   the same code; a connection error ⇒ 503; any other code ⇒ 500.
7. Replay (``cache.AnswerCache``): a GET without body, query or IMDSv2
   token header, answered 200 with ``Cache-Control: max-age=N``, is
   answered again from memory for the same (instance, project, address,
   target) for at most N seconds, the time the metadata API itself would
   give the same answer.  Everything else (tokens, PUT, POST, answers
   marked ``no-store`` such as ``meta_data.json`` and ``password``) always
   goes to the API.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.agents.metadata.cache import AnswerCache
from neutrino.agents.metadata.upstream import Upstream, UpstreamError
from neutrino.agents.metadata.wire import Request

LOG = logging.getLogger(__name__)

ROUTER_INTERFACE_OWNERS = frozenset(
    {"network:router_interface", "network:ha_router_replicated_interface", "network:router_interface_distributed"}
)
PASSED_CODES = frozenset({400, 403, 404, 409, 500, 502, 503, 504})
TIMEOUT = 60.0


@functools.lru_cache(maxsize=4096)
def sign(secret: str, instance_id: str) -> str:
    """``X-Instance-ID-Signature``: hex HMAC-SHA256 of the instance id, keyed with the shared secret
    (memoised: the same instances ask again and again)."""
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
    return _remote(forwarded_for.rpartition(",")[2].strip())


@functools.lru_cache(maxsize=4096)
def _remote(value: str) -> Remote | None:
    # Memoised: the same few addresses ask again and again, and parsing is most of
    # what resolving a request costs.
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
    def build(cls, ports: Iterable[Mapping[str, Any]], routers: Iterable[Mapping[str, Any]] = ()) -> PortIndex:
        idx = cls()
        router_of = {pid: r["id"] for r in routers for pid in r.get("interface_port_ids") or ()}
        for p in ports:
            net = p.get("network_id")
            if not net:
                continue
            rid = router_of.get(p.get("id", ""))
            if rid is not None and p.get("device_owner") in ROUTER_INTERFACE_OWNERS and p.get("device_id") == rid:
                idx.router_networks.setdefault(rid, set()).add(net)
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
        found: dict[str | int, dict[str, Any]] = {}
        for net in sorted(networks):
            for p in table.get((net, key), ()):
                found[p.get("id") or id(p)] = p
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
    if remote is None or forwarded is None:  # (remote_of gives None for no header)
        raise LookupError_(404, f"no usable X-Forwarded-For ({forwarded!r})")
    ports = index.ports_for(index.networks(router_id, network_id), remote)
    if len(ports) != 1:
        raise LookupError_(
            404,
            f"{len(ports)} ports for {remote} on "
            f"{'router ' + router_id if router_id else 'network ' + str(network_id)}",
        )
    port = ports[0]
    instance = port.get("device_id") or ""
    project = port.get("project_id") or port.get("tenant_id") or ""
    client_ip = remote.ip or forwarded.split(",")[-1].strip()
    return instance, project, client_ip


class MetadataProxy:
    """Resolve the instance, sign, forward to the metadata API, map the answer.

    ``handle`` is the ``server.MetadataServer`` handler; ``index`` is
    replaced whole by the agent on every feed change (requests in flight
    keep the one they started with).
    """

    def __init__(
        self,
        nova_url: str,
        secret: str,
        *,
        index: PortIndex | None = None,
        upstream: Upstream | None = None,
        timeout: float = TIMEOUT,
        cache: AnswerCache | None = None,
    ) -> None:
        self.nova_url = nova_url.rstrip("/")
        self.secret = secret
        self.index = index or PortIndex()
        self.upstream = upstream or Upstream(self.nova_url, timeout=timeout)
        self.cache = AnswerCache() if cache is None else cache

    async def aclose(self) -> None:
        await self.upstream.aclose()

    async def handle(self, req: Request) -> tuple[int, bytes, str]:
        # Repeated headers: X-Forwarded-For keeps every value (the last one counts), the others
        # keep the last (haproxy's set-header leaves exactly one X-Neutron-*-ID).
        headers = dict(req.headers)
        if len(headers) != len(req.headers):
            forwarded = req.get_all("x-forwarded-for")
            if len(forwarded) > 1:
                headers["x-forwarded-for"] = ", ".join(forwarded)
        return await self.forward(req.method, req.target, req.body, headers)

    async def forward(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes, str]:
        """(status, body, content type) to send back for one request (``headers``: lower-case names)."""
        try:
            instance, project, client_ip = resolve(self.index, headers)
        except LookupError_ as exc:
            LOG.info("metadata request refused (%d): %s", exc.status, exc)
            return exc.status, b"", "text/plain"
        replay = (
            method == "GET"
            and not body
            and "?" not in target
            and not any(name.lower() in headers for name in IMDS_HEADERS)
        )
        key = (instance, project, client_ip, target)
        if replay and (hit := self.cache.get(key)) is not None:
            return hit
        out = [
            ("X-Forwarded-For", client_ip),
            ("X-Instance-ID", instance),
            ("X-Tenant-ID", project),
            ("X-Instance-ID-Signature", sign(self.secret, instance)),
        ]
        # IMDSv2 session tokens pass through: they are bound to the instance by the
        # metadata API itself, so a forged one can only fail.
        for name in IMDS_HEADERS:
            value = headers.get(name.lower())
            if value is not None:
                out.append((name, value))
        try:
            r = await self.upstream.request(method, target, out, body)
        except UpstreamError as exc:
            LOG.warning("metadata API unreachable at %s: %s", self.nova_url, exc)
            return 503, b"", "text/plain"
        ctype = r.headers.get("content-type", "text/plain")
        if r.status == 200:
            if replay:
                self.cache.put(key, r.body, ctype, r.headers.get("cache-control"))
            return 200, r.body, ctype
        if r.status in (401, 405):  # IMDSv2 refusals and wrong methods keep their meaning
            return r.status, r.body, ctype
        if r.status == 403:
            LOG.warning("the metadata API refused instance %s: shared secrets do not match?", instance)
        if r.status in PASSED_CODES:
            return r.status, b"", "text/plain"
        LOG.warning("unexpected status %d from the metadata API", r.status)
        return 500, b"", "text/plain"
