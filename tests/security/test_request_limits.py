"""Issue 13, findings 6 and 8: request size limits and slow clients.

6. Bodies are bounded on every API the server serves by ``[oslo_middleware]
   max_request_body_size`` (the agents' routes by ``max_agent_request_body_size``):
   413 in each API's own error format, at once from ``Content-Length`` and while
   a chunked body streams in, never reading more than the bound.  Error messages
   repeat at most ``errors.ECHO_LIMIT`` characters of a client's value.
8. On a real server (uvicorn on 127.0.0.1): a half-sent request line/headers is
   answered 408 and closed after ``client_header_timeout``; a stalled body after
   ``client_socket_timeout``; oversized headers are 431; over ``max_connections``
   a request is 503.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from neutrino import config, errors, server
from neutrino import request_limits as limits
from neutrino.db.engine import Database
from tests.api.conftest import BASE_OVERRIDES

LIMIT = 114688


def _cfg(tmp_path: Path, db_url: str, overrides: dict[tuple[str, str], str] | None = None) -> config.Config:
    return config.defaults(tmp_path).with_overrides(
        {**BASE_OVERRIDES, ("database", "connection"): db_url, **(overrides or {})}
    )


class AllApps:
    """The five APIs exactly as ``neutrino.server`` builds them, in process."""

    def __init__(self, cfg: config.Config) -> None:
        self.db = Database(cfg.database_url)
        self.apps, self.tokens = server.build_all_apps(cfg, self.db)
        self.clients = {name: TestClient(app, raise_server_exceptions=False) for name, app in self.apps.items()}
        self.service_token = self.tokens.issue("u-svc", "neutron", "p-svc", "service", ["service"], 3600)[0]
        self.admin_token = self.tokens.issue("u-adm", "admin", "p-adm", "admin", ["admin"], 3600)[0]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.db.dispose()


@pytest.fixture
def all_apps(tmp_path: Path, api_db_url: str) -> Iterator[AllApps]:
    env = AllApps(_cfg(tmp_path, api_db_url))
    yield env
    env.close()


def _json_of_size(n: int) -> bytes:
    """A syntactically valid JSON body of exactly ``n`` bytes."""
    head, tail = b'{"network": {"name": "', b'"}}'
    return head + b"x" * (n - len(head) - len(tail)) + tail


# Where each API takes a body, and how its 413 looks.
TOO_LARGE = {
    "identity": (
        "/v3/auth/tokens",
        lambda b: b["error"] == {"code": 413, "title": "Request Entity Too Large", "message": "Request is too large."},
    ),
    "network": ("/v2.0/networks", lambda b: b["NeutronError"]["type"] == "HTTPRequestEntityTooLarge"),
    "compute": ("/v2.1/servers", lambda b: b["overLimit"] == {"code": 413, "message": "Request is too large."}),
    "image": ("/v2/images", lambda b: b["code"] == 413),
    "metadata": ("/openstack/latest/password", None),
}


# --- 6: body size ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TOO_LARGE))
def test_body_over_the_limit_is_413_on_every_api(all_apps: AllApps, name: str) -> None:
    path, check = TOO_LARGE[name]
    resp = all_apps.clients[name].post(
        path, content=_json_of_size(LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413, (name, resp.status_code, resp.text[:200])
    assert resp.headers["connection"] == "close"
    if check is None:
        assert resp.text.startswith("413 Request Entity Too Large")
    else:
        assert check(resp.json()), resp.text


def test_body_at_the_limit_reaches_the_api(all_apps: AllApps) -> None:
    # The API itself answers (no "auth" in the body), not the size bound.
    resp = all_apps.clients["identity"].post("/v3/auth/tokens", content=_json_of_size(LIMIT))
    assert resp.status_code == 400 and "Expecting to find auth" in resp.text, resp.text[:200]
    resp = all_apps.clients["network"].post(
        "/v2.0/networks", content=_json_of_size(LIMIT), headers={"X-Auth-Token": all_apps.admin_token}
    )
    assert resp.status_code == 400 and "exceeds maximum length" in resp.text  # name > 255


def test_chunked_body_over_the_limit_is_413(all_apps: AllApps) -> None:
    """No Content-Length: the bound applies while the body streams in."""

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 8192

    resp = all_apps.clients["identity"].post("/v3/auth/tokens", content=chunks())
    assert resp.status_code == 413 and resp.json()["error"]["code"] == 413


def test_streamed_body_is_never_read_past_the_limit() -> None:
    """The guard stops pulling chunks as soon as the bound is passed (an endless body)."""
    pulled = 0
    sent: list[dict[str, Any]] = []
    reached_app: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 4096, "more_body": True}

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            while True:  # an app that buffers everything, as they all do
                reached_app.append((await receive())["body"])
        except Exception:  # noqa: BLE001 - what our apps do with errors
            await send({"type": "http.response.start", "status": 500, "headers": []})

    guard = limits.RequestGuard(app, limits.RENDERERS["network"], 10_000)
    scope = {"type": "http", "method": "POST", "path": "/v2.0/networks", "headers": [], "query_string": b""}
    asyncio.run(guard(scope, receive, send))
    assert pulled == 3 and sum(map(len, reached_app)) == 8192  # the third chunk passed 10000: refused
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["NeutronError"]["type"] == "HTTPRequestEntityTooLarge"


def test_agent_routes_have_their_own_larger_bound(all_apps: AllApps) -> None:
    """A whole host's port status batch is larger than the API bound, and is accepted."""
    statuses = {f"{i:08d}-0000-4000-8000-000000000000": "ACTIVE" for i in range(4000)}
    body = orjson.dumps({"host": "h1", "ports": statuses})
    assert LIMIT < len(body) < 16 * 1024 * 1024
    resp = all_apps.clients["network"].post(
        "/neutrino/v1/ports/status", content=body, headers={"X-Auth-Token": all_apps.service_token}
    )
    assert resp.status_code == 200, resp.text[:300]
    huge = b'{"host": "h1", "ports": {"' + b"x" * (16 * 1024 * 1024) + b'": "ACTIVE"}}'
    resp = all_apps.clients["network"].post(
        "/neutrino/v1/ports/status", content=huge, headers={"X-Auth-Token": all_apps.service_token}
    )
    assert resp.status_code == 413


def test_large_body_refused_before_authentication(all_apps: AllApps) -> None:
    resp = all_apps.clients["network"].post("/v2.0/networks", content=_json_of_size(10 * LIMIT))
    assert resp.status_code == 413


def test_error_messages_echo_a_bounded_part_of_the_value(all_apps: AllApps) -> None:
    long_mac = "z" * 50_000
    resp = all_apps.clients["network"].post(
        "/v2.0/networks",
        json={"network": {"name": "n", "mtu": long_mac}},
        headers={"X-Auth-Token": all_apps.admin_token},
    )
    assert resp.status_code == 400
    msg = resp.json()["NeutronError"]["message"]
    assert "z" * errors.ECHO_LIMIT + "..." in msg and len(msg) < 300


def test_echo_helper() -> None:
    assert errors.echo("abc") == "abc"
    assert errors.echo("a" * 101) == "a" * 100 + "..."
    assert errors.echo(["x" * 200], limit=10) == "['xxxxxxxx..."


# --- NUL characters: refused on every API, before any database sees them -----------------------------
@pytest.mark.parametrize(
    "name,path",
    [
        ("network", "/v2.0/networks/a%00b"),
        ("network", "/v2.0/networks?name=a%00b"),
        ("compute", "/v2.1/servers/a%00b"),
        ("identity", "/v3/users/a%00b"),
        ("image", "/v2/images/a%00b"),
    ],
)
def test_nul_in_the_url_is_400(all_apps: AllApps, name: str, path: str) -> None:
    resp = all_apps.clients[name].get(path, headers={"X-Auth-Token": all_apps.admin_token})
    assert resp.status_code == 400 and limits.NUL_REFUSED in resp.text, resp.text


@pytest.mark.parametrize(
    "name,path,body",
    [
        (
            "identity",
            "/v3/auth/tokens",
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"name": "ad\u0000min", "domain": {"id": "default"}, "password": "x"}},
                    }
                }
            },
        ),
        ("network", "/v2.0/networks", {"network": {"name": "a\u0000"}}),
        ("compute", "/v2.1/os-keypairs", {"keypair": {"name": "k\u0000"}}),
    ],
)
def test_nul_in_a_json_body_is_400(all_apps: AllApps, name: str, path: str, body: Any) -> None:
    resp = all_apps.clients[name].post(path, content=orjson.dumps(body), headers={"X-Auth-Token": all_apps.admin_token})
    assert resp.status_code == 400 and limits.NUL_REFUSED in resp.text, resp.text


def test_nul_scanner_finds_escapes_across_chunks() -> None:
    def scan(*chunks: bytes, json: bool = True) -> bool:
        s = limits.NulScanner(json)
        return any(s.feed(c) for c in chunks)

    assert scan(b'{"a": "\\u0000"}')
    assert scan(b'{"a": "\\u00', b'00"}')
    assert scan(b'{"a": "\\', b'u0000"}')
    assert not scan(b'{"a": "\\\\u0000"}')  # an escaped backslash, then text "u0000"
    assert not scan(b'{"a": "\\\\', b'u0000"}')
    assert not scan(b'{"a": "\\', b'\\', b'u0000"}')
    assert scan(b'{"a": "\\\\\\u0000"}')  # backslash, then NUL
    assert scan(b'{"a": "\\', b'\\', b'\\u0000"}')
    assert not scan(b'{"a": "\\u0001"}')
    assert scan(b"pass\x00word", json=False) and not scan(b"\\u0000", json=False)


def test_nul_byte_in_a_raw_body_is_400() -> None:
    """The metadata API takes raw text (a password): a NUL byte is refused, an escape-like text is not."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def run(body: bytes) -> int:
        sent.clear()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        guard = limits.RequestGuard(app, limits.RENDERERS["metadata"], 1000, json_bodies=False)
        await guard(
            {"type": "http", "path": "/openstack/latest/password", "headers": [], "query_string": b""}, receive, send
        )
        return sent[0]["status"]

    assert asyncio.run(run(b"pa\x00ss")) == 400 and sent[1]["body"].startswith(b"400 Bad Request")
    assert asyncio.run(run(b"pa\\u0000ss")) == 200


# --- 8: slow clients, on a real server -------------------------------------------------------------------
class LiveServer:
    """One API of ``neutrino.server`` served by uvicorn with our protocol on 127.0.0.1."""

    def __init__(self, cfg: config.Config, name: str = "network") -> None:
        self.db = Database(cfg.database_url)
        apps, _ = server.build_all_apps(cfg, self.db)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        conf = uvicorn.Config(
            apps[name],
            lifespan="off",
            log_level="critical",
            timeout_keep_alive=75,
            http=server.http_protocol(cfg, name),
        )
        self.server = uvicorn.Server(conf)
        self.thread = threading.Thread(target=asyncio.run, args=(self.server.serve(sockets=[self.sock]),), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)

    def connect(self) -> socket.socket:
        c = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return c

    def close(self) -> None:
        self.server.should_exit = self.server.force_exit = True
        self.thread.join(10)
        self.sock.close()
        self.db.dispose()


@pytest.fixture
def live(tmp_path: Path, api_db_url: str) -> Iterator[Any]:
    started: list[LiveServer] = []

    def start(name: str = "network", **opts: str) -> LiveServer:
        overrides = {("DEFAULT", k): v for k, v in opts.items()}
        srv = LiveServer(_cfg(tmp_path, api_db_url, overrides), name)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.close()


def _read_until_closed(c: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or the 10 s socket timeout), and when."""
    t0 = time.monotonic()
    out = b""
    while True:
        try:
            data = c.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        out += data
    return out, time.monotonic() - t0


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def _body(raw: bytes) -> Any:
    return orjson.loads(raw.partition(b"\r\n\r\n")[2])


def test_half_sent_request_head_is_closed_after_the_header_timeout(live: Any) -> None:
    srv = live(client_header_timeout="1")
    c = srv.connect()
    c.sendall(b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
    raw, took = _read_until_closed(c)
    assert _status(raw) == 408 and took < 3, (raw[:200], took)
    assert _body(raw)["NeutronError"]["type"] == "HTTPRequestTimeout"


def test_silent_connection_is_closed_after_the_header_timeout(live: Any) -> None:
    srv = live(client_header_timeout="1")
    c = srv.connect()
    raw, took = _read_until_closed(c)
    assert raw == b"" and took < 3


def test_trickled_headers_do_not_extend_the_header_timeout(live: Any) -> None:
    srv = live(client_header_timeout="1")
    c = srv.connect()
    c.sendall(b"GET / HTTP/1.1\r\n")
    t0 = time.monotonic()
    with pytest.raises(OSError):
        for _ in range(30):  # a header line every 0.2 s: never idle, still too slow
            c.sendall(b"X-A: b\r\n")
            time.sleep(0.2)
    raw, _ = _read_until_closed(c)
    assert time.monotonic() - t0 < 4


def test_stalled_body_is_closed_after_the_socket_timeout(live: Any) -> None:
    srv = live(client_socket_timeout="1", client_header_timeout="30")
    c = srv.connect()
    c.sendall(
        b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Length: 100\r\n\r\n{\"network\": "
    )
    raw, took = _read_until_closed(c)
    assert took < 3, took
    # The network API authenticates before it reads the body: either answer shows the request was cut short.
    assert _status(raw) in (401, 408), raw[:200]


def test_steady_slow_body_is_served(live: Any) -> None:
    """The body bound is on idleness, not on the total time."""
    srv = live(client_socket_timeout="1")
    c = srv.connect()
    body = orjson.dumps({"auth": {}})
    c.sendall(b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    for i in range(0, len(body), 3):  # ~1.5 s in all, 0.3 s between pieces
        c.sendall(body[i : i + 3])
        time.sleep(0.3)
    c.settimeout(5)
    raw = c.recv(65536)
    assert _status(raw) != 408, raw[:200]


def test_oversized_request_head_is_431(live: Any) -> None:
    srv = live(max_request_header_size="8192")
    c = srv.connect()
    c.sendall(b"GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Big: ")
    with pytest.raises(OSError):
        for _ in range(200):  # 200 MB would be buffered by an unbounded server
            c.sendall(b"a" * 1024 * 1024)
    raw, _ = _read_until_closed(c)
    assert raw == b"" or _status(raw) == 431


def test_request_head_within_bound_is_served(live: Any) -> None:
    srv = live(max_request_header_size="8192")
    c = srv.connect()
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\nConnection: close\r\n\r\n")
    raw, _ = _read_until_closed(c)
    assert _status(raw) == 200


def test_connections_over_the_bound_get_503(live: Any) -> None:
    srv = live(max_connections="3")
    idle = [srv.connect() for _ in range(3)]
    time.sleep(0.2)
    c = srv.connect()
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    raw, _ = _read_until_closed(c)
    assert _status(raw) == 503 and _body(raw)["NeutronError"]["type"] == "HTTPServiceUnavailable"
    for s in idle:
        s.close()
    time.sleep(0.2)
    c = srv.connect()
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw, _ = _read_until_closed(c)
    assert _status(raw) == 200


def test_chunked_body_over_the_limit_on_a_real_server(live: Any) -> None:
    srv = live(name="identity")
    c = srv.connect()
    c.sendall(b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    with pytest.raises(OSError):
        for _ in range(400):  # 25 MB, if nobody stops it
            c.sendall(chunk)
    raw, _ = _read_until_closed(c)
    assert raw == b"" or _status(raw) == 413
    if raw:
        assert _body(raw)["error"]["code"] == 413
