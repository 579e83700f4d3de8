"""Request limits shared by every API the server serves (identity, network,
compute, image, metadata, and the agents' routes under ``/neutrino/v1/``).

Two layers, both built by ``neutrino.server`` from the configuration:

``RequestGuard`` (ASGI middleware, wraps each app)
    * A body larger than its bound is refused with 413: at once when
      ``Content-Length`` says so (the body is never read), else as soon as the
      bytes received pass the bound (chunked bodies), so no more than the bound
      (plus one read) is ever held.  The bound is ``[oslo_middleware]
      max_request_body_size``; paths under a prefix given in ``larger`` (the
      agents' routes: port status batches of a whole host) have their own.
    * A NUL character in the URL, or in the body (a raw NUL byte, or a JSON
      ``\\u0000`` escape), is refused with 400: no field has a use for it and
      PostgreSQL cannot store it in text.
    * A client that goes away while its body is being read stops the request
      quietly (the app never sees half a body).

``http_protocol(...)`` (the uvicorn HTTP protocol, per listening socket)
    * The request line and headers must arrive within ``client_header_timeout``
      seconds (from the connection, or from a keep-alive request's first byte),
      and be at most ``max_request_header_size`` bytes: else 408 / 431 and the
      connection is closed.  A connection that sends nothing is closed silently
      after the same time.
    * While a body is being received, the client must send something at least
      every ``client_socket_timeout`` seconds (0: no bound), else 408 and close.
      Time the server itself is not reading (flow control) does not count.
    * Over ``max_connections`` open connections, a request is answered 503
      and its connection closed.
    * With TLS (``tls``, a ``neutrino.pki.tls.ReloadingServerContext``): a
      client certificate that verified at the handshake becomes a
      ``neutrino.pki.tls.Peer`` in every request's scope under
      ``PEER_SCOPE_KEY`` ("neutrino.peer"); once its serial is in the reloaded
      CRL, each further request on that (kept-alive) connection is answered 403
      and the connection closed.

Every refusal is rendered in the format of the API it reaches: Neutron's
``NeutronError``, Keystone's ``error``, Glance's, or the metadata API's plain
text (``RENDERERS``), or Nova's fault (``neutrino.compute.faults.render``,
added by ``neutrino.server``: this module sits below every HTTP edge and knows
none of them).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from neutrino.pki.tls import PEER_SCOPE_KEY, Peer, ReloadingServerContext

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
#: (status, message) -> (body, content type)
Render = Callable[[int, str], tuple[bytes, str]]

TOO_LARGE = "Request is too large."
NUL_REFUSED = "NUL characters are not allowed in a request."
HEADER_TIMEOUT = "The request line and headers were not received in time."
BODY_TIMEOUT = "The request body was not received in time."
HEADERS_TOO_LARGE = "The request line and headers are too large."
BUSY = "Too many connections; retry later."
REVOKED = "The client certificate {subject} (serial {serial:x}) has been revoked."

_JSON = "application/json"
#: Neutron's exception type names for the statuses produced here.
_NEUTRON_TYPES = {
    400: "HTTPBadRequest",
    403: "HTTPForbidden",
    408: "HTTPRequestTimeout",
    413: "HTTPRequestEntityTooLarge",
    431: "HTTPRequestHeaderFieldsTooLarge",
    503: "HTTPServiceUnavailable",
}
#: Titles as Keystone and Glance print them (http.client's older phrase for 413).
_TITLES = {413: "Request Entity Too Large"}


def _title(status: int) -> str:
    return _TITLES.get(status) or HTTPStatus(status).phrase


def _neutron(status: int, message: str) -> tuple[bytes, str]:
    return orjson.dumps(
        {"NeutronError": {"type": _NEUTRON_TYPES.get(status, "HTTPError"), "message": message, "detail": ""}}
    ), _JSON


def _keystone(status: int, message: str) -> tuple[bytes, str]:
    return orjson.dumps({"error": {"code": status, "title": _title(status), "message": message}}), _JSON


def _glance(status: int, message: str) -> tuple[bytes, str]:
    return orjson.dumps({"code": status, "title": _title(status), "message": message}), _JSON


def _text(status: int, message: str) -> tuple[bytes, str]:
    return f"{status} {_title(status)}\n\n{message}".encode(), "text/plain; charset=UTF-8"


#: API name (as in ``neutrino.server.build_all_apps``) -> its error format; the compute API's
#: (Nova's fault names) is ``neutrino.compute.faults.render``, added by ``neutrino.server``.
RENDERERS: dict[str, Render] = {
    "identity": _keystone,
    "network": _neutron,
    "image": _glance,
    "metadata": _text,
}


def response_bytes(render: Render, status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (for the protocol layer)."""
    body, ctype = render(status, message)
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: {ctype}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def send_error(send: Any, render: Render, status: int, message: str) -> None:
    """Send a whole error response through ASGI ``send``, asking the server to close the connection."""
    body, ctype = render(status, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", ctype.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def contains_nul(value: Any) -> bool:
    """True when a parsed JSON value has a NUL character in any string, key or value.

    For the APIs' own body checks, so they hold without ``RequestGuard`` too
    (in-process tests, and the apps' other hosts).
    """
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return True
        elif isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


# --- the ASGI layer ---------------------------------------------------------------------------------
class _Refused(BaseException):
    """Raised out of ``receive`` to stop the app (status, message for the client).

    A ``BaseException`` on purpose: the apps turn any ``Exception`` into a 500,
    and this must reach ``RequestGuard`` untouched.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _ClientGone(BaseException):
    """The client disconnected before its body was complete: stop the app, answer nothing."""


class NulScanner:
    """Finds a NUL in a body fed in pieces: a raw NUL byte, or (``json``) a
    ``\\u0000`` escape, i.e. one preceded by an even number of backslashes
    (a JSON escape cannot be split from its backslashes by a chunk boundary
    without us noticing: the scanner keeps the last bytes and the count of
    backslashes before them)."""

    _ESCAPE = re.compile(rb"\\u0000")
    _KEEP = 5  # len(b"\\u0000") - 1

    def __init__(self, json: bool = True) -> None:
        self.json = json
        self._tail = b""
        self._run = 0  # backslashes right before ``_tail``

    def feed(self, chunk: bytes) -> bool:
        """True when the body so far contains a NUL."""
        if b"\x00" in chunk:
            return True
        if not self.json:
            return False
        buf = self._tail + chunk
        for m in self._ESCAPE.finditer(buf):
            start = m.start()
            j = start
            while j > 0 and buf[j - 1] == 0x5C:
                j -= 1
            preceding = start - j + (self._run if j == 0 else 0)
            if preceding % 2 == 0:
                return True
        cut = max(0, len(buf) - self._KEEP)
        head = buf[:cut]
        run = len(head) - len(head.rstrip(b"\\"))
        self._run = run + self._run if run == len(head) else run
        self._tail = buf[cut:]
        return False


class _Body:
    """The guarded ``receive`` of one request."""

    def __init__(self, receive: Any, limit: int, json: bool) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.complete = False
        self.nul = NulScanner(json)

    async def receive(self) -> dict[str, Any]:
        msg = await self._receive()
        if msg["type"] == "http.request":
            chunk = msg.get("body", b"")
            self.received += len(chunk)
            if self.received > self.limit:
                raise _Refused(413, TOO_LARGE)
            if self.nul.feed(chunk):
                raise _Refused(400, NUL_REFUSED)
            if not msg.get("more_body", False):
                self.complete = True
        elif msg["type"] == "http.disconnect" and not self.complete:
            raise _ClientGone()
        return msg


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses such requests itself
    return None


def _url_has_nul(scope: dict[str, Any]) -> bool:
    query = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


class RequestGuard:
    """ASGI middleware: body size bound and NUL refusal (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        render: Render,
        max_body: int,
        *,
        larger: tuple[tuple[str, int], ...] = (),
        json_bodies: bool = True,
    ) -> None:
        self.app = app
        self.render = render
        self.max_body = max_body
        self.larger = larger
        self.json_bodies = json_bodies

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.larger:
            if path.startswith(prefix):
                return limit
        return self.max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _url_has_nul(scope):
            await send_error(send, self.render, 400, NUL_REFUSED)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await send_error(send, self.render, 413, TOO_LARGE)
            return
        body = _Body(receive, limit, self.json_bodies)
        started = False

        async def tracked_send(msg: dict[str, Any]) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, body.receive, tracked_send)
        except _Refused as exc:
            if not started:
                await send_error(send, self.render, exc.status, exc.message)
        except _ClientGone:
            pass


# --- the HTTP protocol layer (uvicorn) ----------------------------------------------------------------
def http_protocol(
    render: Render,
    *,
    header_timeout: float,
    body_timeout: float,
    max_header_size: int,
    max_connections: int,
    tls: ReloadingServerContext | None = None,
) -> type:
    """A uvicorn ``HttpToolsProtocol`` with the limits of the module docstring.

    ``body_timeout`` or ``max_connections`` 0: that bound is off.  ``tls``: the
    listener serves TLS with ``tls.base`` (peer identity and revocation as in the
    module docstring).  Pass the class as ``uvicorn.Config(http=...)``.
    """

    async def busy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_error(send, render, 503, BUSY)

    async def revoked(scope: dict[str, Any], receive: Any, send: Any) -> None:
        peer = scope[PEER_SCOPE_KEY]
        await send_error(send, render, 403, REVOKED.format(subject=peer.subject, serial=peer.serial))

    class GuardedHttpProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._served_app = self.app
            self._deadline: asyncio.TimerHandle | None = None
            self._in_head = False  # a request's first byte seen, its headers not yet complete
            self._in_body = False  # headers complete, body not yet complete
            self._head_bytes = 0
            self._peer: Peer | None = None  # the verified client certificate's identity (TLS only)

        # -- deadlines ------------------------------------------------------------------------------
        def _arm(self, seconds: float) -> None:
            self._disarm()
            if seconds > 0:
                self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self._in_body and self.flow.read_paused:
                self._arm(body_timeout)  # we are not reading: not the client's delay
                return
            if self._in_head:
                self._refuse(408, HEADER_TIMEOUT)
            elif self._in_body and self.cycle is not None and not self.cycle.response_started:
                self._refuse(408, BODY_TIMEOUT)
            else:
                self.transport.close()  # idle since connecting, or a body nobody waits for

        def _refuse(self, status: int, message: str) -> None:
            self.transport.write(response_bytes(render, status, message))
            self.transport.close()

        # -- protocol callbacks ------------------------------------------------------------------------
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if tls is not None:  # the handshake is complete when the protocol gets the transport
                self._peer = tls.peer(transport.get_extra_info("ssl_object"))
            self._arm(header_timeout)  # a new connection must send its request in time

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                self._head_bytes += len(data)
                if self._head_bytes > max_header_size:
                    self._disarm()
                    self._refuse(431, HEADERS_TOO_LARGE)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._peer is not None:
                self.scope[PEER_SCOPE_KEY] = self._peer  # type: ignore[literal-required] # our extension key
            self._in_head, self._head_bytes = True, 0
            if self._deadline is None:  # a keep-alive request (a new connection is armed already)
                self._arm(header_timeout)

        def on_headers_complete(self) -> None:
            self._in_head, self._in_body = False, True
            self._arm(body_timeout)
            busy_now = max_connections > 0 and (
                len(self.connections) > max_connections or len(self.tasks) >= max_connections
            )
            if tls is not None and self._peer is not None and tls.is_revoked(self._peer):
                self.app = revoked
            else:
                self.app = busy if busy_now else self._served_app
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            super().on_body(body)
            self._arm(body_timeout)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_body = False
            self._disarm()

    return GuardedHttpProtocol


__all__ = ["RENDERERS", "NulScanner", "contains_nul", "RequestGuard", "http_protocol", "response_bytes", "send_error"]
