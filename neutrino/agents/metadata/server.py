"""The metadata agent's HTTP/1.1 server on its unix socket (asyncio protocol, keep-alive).

The haproxy proxies are its only clients.  Per connection, requests are
read with ``wire.RequestReader`` and answered one after the other, in
order (pipelined requests wait in the buffer; reading pauses while more
than ``PAUSE_ABOVE`` bytes wait).  A request the reader refuses is
answered with its status (400, 413, 431 or 501) and the connection is
closed.  A connection idle (or with a partial request) for
``idle_timeout`` seconds is closed.  Every response carries
Content-Length; ``Connection: close`` from the client (HTTP/1.0 without
keep-alive) closes after the response.

``handler(request) -> (status, body, content type)`` does the work; an
exception in it is logged and answered 500.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import cast

from neutrino.agents.metadata.wire import BadMessage, Request, RequestReader, render_response

__all__ = ["Handler", "MetadataServer"]

LOG = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[tuple[int, bytes, str]]]
#: Stop reading from a connection while this many bytes of further requests wait.
PAUSE_ABOVE = 256 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Session(asyncio.Protocol):
    def __init__(self, server: MetadataServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.reader = RequestReader()
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.paused = False
        self.continued = False
        self.eof = False

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server or connection (unix socket, TCP) hands its protocol a Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.server.sessions.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        if self.task is None:
            self._next()
        elif self.reader.buffered > PAUSE_ABOVE and not self.paused:
            self.paused = True
            assert self.transport is not None  # set by connection_made, before any data
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        # Half-closed by the client: answer what is being handled, then close.
        self.eof = True
        return self.task is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.sessions.discard(self)
        if self.timer is not None:
            self.timer.cancel()

    # --- requests ----------------------------------------------------------------------------
    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.server.idle_timeout, self._idle)

    def _idle(self) -> None:
        if self.task is None and self.transport is not None:
            self.transport.close()

    def _next(self) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        try:
            req = self.reader.next()
        except BadMessage as exc:
            LOG.info("metadata request refused (%d): %s", exc.status, exc)
            self.transport.write(render_response(exc.status, b"", close=True))
            self.transport.close()
            return
        if req is None:
            if self.reader.expects_continue and not self.continued:
                self.continued = True
                self.transport.write(CONTINUE)
            return
        self.continued = False
        self.task = asyncio.get_running_loop().create_task(self._serve(req))

    async def _serve(self, req: Request) -> None:
        try:
            status, body, ctype = await self.server.handler(req)
        except Exception:
            LOG.exception("metadata request %s %s failed", req.method, req.target[:200])
            status, body, ctype = 500, b"", "text/plain"
        transport = self.transport
        assert transport is not None
        self.task = None
        if transport.is_closing():
            return
        close = not req.keep_alive or self.server.closing or self.eof
        transport.write(render_response(status, body, ctype, close=close))
        if close:
            transport.close()
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()
        self._arm()
        if self.reader.buffered:
            self._next()


class MetadataServer:
    """Serves ``handler`` on a listening unix socket (see the module docstring)."""

    def __init__(self, handler: Handler, *, idle_timeout: float = 30.0) -> None:
        self.handler = handler
        self.idle_timeout = idle_timeout
        self.sessions: set[_Session] = set()
        self.closing = False
        self._server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.closing = False
        self._server = await loop.create_unix_server(lambda: _Session(self), sock=sock)

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def close(self) -> None:
        """Stop accepting, close idle connections, let requests in progress finish (their
        connections close after the response)."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for s in list(self.sessions):
            if s.task is None and s.transport is not None:
                s.transport.close()
        tasks = [s.task for s in self.sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for s in list(self.sessions):
            if s.transport is not None:
                s.transport.abort()
        if self._server is not None:
            self._server = None
