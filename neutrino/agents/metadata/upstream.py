"""Keep-alive HTTP/1.1 connections from the metadata agent to the metadata API.

A small pool instead of a general HTTP client: the agent sends one kind of
request to one server, so the cost per request is one write and one read on
an open connection (a general client spent more CPU per request than the
API itself).  Connections are reused only after a response that was read
exactly to its end (``wire.ResponseReader``): stray bytes, a framing error,
a timeout or a cancelled request close the connection, so a response can
never be handed to the wrong request.

* ``Upstream.request`` raises ``UpstreamError`` when the API cannot be
  reached, times out (``timeout``, 60 s as Neutron) or answers something
  that is not HTTP; the agent answers 503 then.
* A request on a reused connection that the server had closed meanwhile
  (nothing received) is sent again once on a new connection: the server
  never saw it.
* At most ``max_connections`` requests are in flight; at most ``max_idle``
  connections are kept open, each for at most ``idle_timeout`` seconds.
* ``https://``: ``ssl_context`` (the agent's ``AgentTls.context``: it trusts
  the cloud's CA and presents the node's client certificate) and
  ``before_connect`` (``AgentTls.maybe_reload``), run before each new
  connection, so a rotated certificate is used by new connections while the
  kept-alive ones finish with the old.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from neutrino.agents.metadata.wire import BadMessage, Response, ResponseReader, render_request

__all__ = ["Upstream", "UpstreamError"]


class UpstreamError(Exception):
    """The metadata API could not be reached or did not answer properly."""


class _Lost(UpstreamError):
    """The connection closed before any byte of the response arrived."""


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader: ResponseReader | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.idle_since = 0.0

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server or connection (unix socket, TCP) hands its protocol a Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.reader is None or self.waiter is None or self.waiter.done():
            self.abort()  # bytes nobody asked for: this connection is done
            return
        try:
            resp = self.reader.feed(data)
        except BadMessage as exc:
            self._fail(UpstreamError(f"bad response from the metadata API: {exc}"))
            return
        if resp is not None:
            if self.reader.leftover:
                resp.keep_alive = False
            self._done(resp)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None or self.waiter.done():
            return
        reader = self.reader
        if reader is not None and reader.started:
            try:
                self._done(reader.eof())
            except BadMessage as bad:
                self._fail(UpstreamError(str(bad)))
        else:
            self._fail(_Lost(f"connection closed ({exc})" if exc else "connection closed"))

    # --- one exchange -----------------------------------------------------------------------
    def exchange(self, data: bytes, reader: ResponseReader, timeout: float) -> asyncio.Future[Response]:
        loop = asyncio.get_running_loop()
        self.reader, self.waiter = reader, loop.create_future()
        self.timer = loop.call_later(timeout, self._timeout, timeout)
        assert self.transport is not None
        self.transport.write(data)
        return self.waiter

    def _timeout(self, timeout: float) -> None:
        self._fail(UpstreamError(f"no answer from the metadata API within {timeout:g} s"))

    def _done(self, resp: Response) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.reader = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(resp)

    def _fail(self, exc: UpstreamError) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.reader = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Upstream:
    """A pool of keep-alive connections to ``url`` (``http://host:port`` or ``https://...``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        max_idle: int = 32,
        idle_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        before_connect: Callable[[], object] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"metadata API URL {url!r}: need http://host:port or https://host:port")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        self.host_header = parts.netloc
        self._before_connect = before_connect
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.max_idle, self.idle_timeout = max_idle, idle_timeout
        self._max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Conn] = []
        self._busy: set[_Conn] = set()

    async def request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> Response:
        """Send one request and read its response (see the module docstring for errors)."""
        data = render_request(method, target, self.host_header, headers, body)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        async with self._slots:
            conn = self._take()
            if conn is not None:
                try:
                    return await self._exchange(conn, data, method)
                except _Lost:
                    pass  # the server closed it while idle: it never saw the request
            return await self._exchange(await self._connect(), data, method)

    async def _exchange(self, conn: _Conn, data: bytes, method: str) -> Response:
        self._busy.add(conn)
        try:
            resp = await conn.exchange(data, ResponseReader(method), self.timeout)
        except BaseException:
            conn.abort()  # includes cancellation: the answer may still come
            raise
        finally:
            self._busy.discard(conn)
        if resp.keep_alive and not conn.closed and len(self._idle) < self.max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.abort()
        return resp

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < self.idle_timeout:
                return conn
            conn.abort()
        return None

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        if self._before_connect is not None:
            self._before_connect()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Conn, self.host, self.port, ssl=self.ssl), self.connect_timeout
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            raise UpstreamError(
                f"cannot connect to the metadata API at {self.url}: {exc or type(exc).__name__}"
            ) from exc
        return conn

    async def aclose(self) -> None:
        for conn in [*self._idle, *self._busy]:
            with contextlib.suppress(Exception):
                conn.abort()
        self._idle.clear()
