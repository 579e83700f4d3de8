"""The metadata agent's keep-alive pool to the metadata API (neutrino.agents.metadata.upstream),
against scripted servers on 127.0.0.1: reuse, a server that closed an idle connection, timeouts,
garbage, stray bytes, cancellation.  A connection whose state is in doubt is never reused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from neutrino.agents.metadata.upstream import Upstream, UpstreamError

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

Script = Callable[[int, bytes], Awaitable[bytes | None]]


class Server:
    """Answers each request head with ``script(connection number, head)``: bytes to write, or
    None to close the connection without answering."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.open = self.peak = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Server:
        self.srv = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.srv.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.srv.close()
        for w in self.writers:
            w.close()
        await asyncio.sleep(0.01)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        self.writers.append(writer)
        n = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                out = await self.script(n, head)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        self.open -= 1
        writer.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def ok(n: int, head: bytes) -> bytes:
    return OK


def test_one_connection_is_reused() -> None:
    async def go() -> tuple[list[bytes], int, bytes]:
        async with Server(ok) as srv:
            up = Upstream(srv.url)
            bodies = [(await up.request("GET", f"/{i}", [("X-Instance-ID", "vm-1")])).body for i in range(5)]
            await up.aclose()
            return bodies, srv.connections, srv.requests[0]

    bodies, conns, first = run(go())
    assert bodies == [b"ok"] * 5 and conns == 1
    assert first.startswith(b"GET /0 HTTP/1.1\r\nHost: 127.0.0.1:") and b"X-Instance-ID: vm-1\r\n" in first


def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    async def close_after_first(n: int, head: bytes) -> bytes:
        return OK.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n")

    async def go() -> tuple[list[int], int]:
        async with Server(close_after_first) as srv:
            up = Upstream(srv.url)
            first = await up.request("GET", "/a", [])
            # the server drops the idle connection without telling (as a keep-alive timeout does)
            for conn in up._idle:
                conn.transport.abort()
            second = await up.request("GET", "/b", [])
            await up.aclose()
            return [first.status, second.status], srv.connections

    assert run(go()) == ([200, 200], 2)


def test_closed_before_answering_a_fresh_connection_is_an_error() -> None:
    async def hang_up(n: int, head: bytes) -> None:
        return None

    async def go() -> str:
        async with Server(hang_up) as srv:
            up = Upstream(srv.url)
            with pytest.raises(UpstreamError) as exc:
                await up.request("GET", "/", [])
            await up.aclose()
            return str(exc.value)

    assert "closed" in run(go())


def test_timeout() -> None:
    async def silent(n: int, head: bytes) -> bytes:
        await asyncio.sleep(5)
        return OK

    async def go() -> tuple[str, int]:
        async with Server(silent) as srv:
            up = Upstream(srv.url, timeout=0.2)
            with pytest.raises(UpstreamError) as exc:
                await up.request("GET", "/", [])
            n = len(up._idle)
            await up.aclose()
            return str(exc.value), n

    message, idle = run(go())
    assert "within 0.2 s" in message and idle == 0


@pytest.mark.parametrize("answer", [b"garbage\r\n\r\n", OK + b"HTTP/1.1 200 OK\r\n", OK.replace(b"2\r\n", b"x\r\n")])
def test_bad_or_overlong_answers_never_reuse_the_connection(answer: bytes) -> None:
    async def script(n: int, head: bytes) -> bytes:
        return answer if n == 1 else OK

    async def go() -> tuple[int, int]:
        async with Server(script) as srv:
            up = Upstream(srv.url)
            try:
                first = (await up.request("GET", "/", [])).status
            except UpstreamError:
                first = 0
            second = await up.request("GET", "/", [])
            await up.aclose()
            assert second.body == b"ok"
            return first, srv.connections

    first, conns = run(go())
    assert conns == 2 and first in (0, 200)


def test_cancelled_request_closes_its_connection() -> None:
    async def slow(n: int, head: bytes) -> bytes:
        await asyncio.sleep(0.3 if n == 1 else 0)
        return OK

    async def go() -> int:
        async with Server(slow) as srv:
            up = Upstream(srv.url)
            task = asyncio.create_task(up.request("GET", "/", []))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.4)  # the late answer to the cancelled request must go nowhere
            r = await up.request("GET", "/", [])
            await up.aclose()
            assert r.body == b"ok"
            return srv.connections

    assert run(go()) == 2


def test_concurrent_requests_then_reuse() -> None:
    async def slow(n: int, head: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return OK

    async def go(max_idle: int) -> tuple[int, int, int]:
        async with Server(slow) as srv:
            up = Upstream(srv.url, max_connections=4, max_idle=max_idle)
            rs = await asyncio.gather(*(up.request("GET", f"/{i}", []) for i in range(10)))
            assert all(r.body == b"ok" for r in rs)
            idle = len(up._idle)
            await up.aclose()
            return srv.peak, srv.connections, idle

    # never more than 4 at once; the idle ones are reused by the requests that waited
    assert run(go(4)) == (4, 4, 4)
    assert run(go(1))[2] == 1  # and only max_idle are kept


def test_unreachable_and_bad_urls(free_port: Any) -> None:
    async def go() -> None:
        up = Upstream(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(UpstreamError):
            await up.request("GET", "/", [])

    run(go())
    with pytest.raises(ValueError):
        Upstream("unix:///x")
