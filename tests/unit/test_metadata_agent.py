"""The metadata agent: who asks (router/network + address → instance), the
signature, the headers it sends (never a client's), forwarding and status
mapping, and its unix socket server (keep-alive, pipelining, refusals).

Nova is faked by a real HTTP/1.1 server on 127.0.0.1 (the standard library's,
so the agent's requests are read by a parser that is not its own); clients
of the unix socket are raw sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.agents.metadata.agent import MetadataDriver
from neutrino.agents.metadata.proxy import (
    LookupError_,
    MetadataProxy,
    PortIndex,
    Remote,
    mac_from_eui64,
    remote_of,
    resolve,
    sign,
)
from neutrino.agents.metadata.wire import Request

ROUTER, NET_A, NET_B, NET_C = "router-1", "net-a", "net-b", "net-c"


def port(
    pid: str,
    net: str,
    ip: str,
    device: str,
    owner: str = "compute:nova",
    project: str = "proj-1",
    mac: str = "fa:16:3e:00:00:01",
) -> dict[str, Any]:
    return {
        "id": pid,
        "network_id": net,
        "device_id": device,
        "device_owner": owner,
        "project_id": project,
        "mac_address": mac,
        "fixed_ips": [{"subnet_id": "s-" + net, "ip_address": ip}],
    }


PORTS = [
    port("ri-a", NET_A, "10.0.0.1", ROUTER, "network:router_interface"),
    port("ri-b", NET_B, "10.1.0.1", ROUTER, "network:router_interface"),
    port("vm1", NET_A, "10.0.0.5", "vm-1", project="proj-1", mac="fa:16:3e:aa:bb:01"),
    port("vm2", NET_B, "10.1.0.5", "vm-2", project="proj-2", mac="fa:16:3e:aa:bb:02"),
    port("vm3", NET_C, "10.0.0.5", "vm-3", project="proj-3"),  # same IP, not on the router
    port("dup1", NET_C, "10.2.0.9", "vm-4"),
    port("dup2", NET_C, "10.2.0.9", "vm-5"),  # ambiguous
    port("gw", "ext", "172.16.0.10", ROUTER, "network:router_gateway"),  # not an interface network
    port("v6", NET_C, "2001:db8::5", "vm-6", mac="fa:16:3e:12:34:56"),
]
ROUTERS = [{"id": ROUTER, "gw_port_id": "gw", "interface_port_ids": ["ri-a", "ri-b"]}]
INDEX = PortIndex.build(PORTS, ROUTERS)


def hdrs(**kw: str) -> dict[str, str]:
    return {k.replace("_", "-").lower(): v for k, v in kw.items()}


# --- resolution ------------------------------------------------------------------------------
def test_router_networks_are_its_interfaces_only() -> None:
    assert INDEX.router_networks == {ROUTER: {NET_A, NET_B}}


def test_a_port_that_only_claims_a_router_adds_no_network_to_it() -> None:
    """Another project's port naming the router as its device (owner network:router_interface)
    is not one of the router's interfaces: the router's own records decide."""
    claimed = port("intruder", NET_C, "10.9.0.1", ROUTER, "network:router_interface", project="proj-9")
    idx = PortIndex.build([*PORTS, claimed], ROUTERS)
    assert idx.router_networks == {ROUTER: {NET_A, NET_B}}
    # 10.0.0.5 is vm-1 on NET_A and vm-3 on NET_C: were NET_C the router's, this would be ambiguous.
    assert resolve(idx, hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.0.0.5"))[0] == "vm-1"


@pytest.mark.parametrize(
    "h, want",
    [
        (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.0.0.5"), ("vm-1", "proj-1", "10.0.0.5")),
        (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.1.0.5"), ("vm-2", "proj-2", "10.1.0.5")),
        (hdrs(x_neutron_network_id=NET_C, x_forwarded_for="10.0.0.5"), ("vm-3", "proj-3", "10.0.0.5")),
        (hdrs(x_neutron_network_id=NET_A, x_forwarded_for="::ffff:10.0.0.5"), ("vm-1", "proj-1", "10.0.0.5")),
        # a client-sent X-Forwarded-For comes first; the proxy's (last) one counts
        (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.1.0.5, 10.0.0.5"), ("vm-1", "proj-1", "10.0.0.5")),
        (hdrs(x_neutron_network_id=NET_C, x_forwarded_for="2001:db8::5"), ("vm-6", "proj-1", "2001:db8::5")),
        # IPv6 link-local: by the MAC of the EUI-64
        (
            hdrs(x_neutron_network_id=NET_C, x_forwarded_for="fe80::f816:3eff:fe12:3456"),
            ("vm-6", "proj-1", "fe80::f816:3eff:fe12:3456"),
        ),
    ],
)
def test_resolve(h: dict[str, str], want: tuple[str, str, str]) -> None:
    assert resolve(INDEX, h) == want


@pytest.mark.parametrize(
    "h, status",
    [
        (hdrs(x_neutron_router_id=ROUTER, x_neutron_network_id=NET_A, x_forwarded_for="10.0.0.5"), 404),
        (hdrs(x_forwarded_for="10.0.0.5"), 500),
        (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.9.9.9"), 404),  # unknown address
        (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="172.16.0.10"), 404),  # gateway net is not served
        (hdrs(x_neutron_router_id="other-router", x_forwarded_for="10.0.0.5"), 404),
        (hdrs(x_neutron_network_id=NET_C, x_forwarded_for="10.2.0.9"), 404),  # two ports
        (hdrs(x_neutron_network_id=NET_A), 404),
        (hdrs(x_neutron_network_id=NET_A, x_forwarded_for="not-an-ip"), 404),
    ],
)
def test_resolve_refuses(h: dict[str, str], status: int) -> None:
    with pytest.raises(LookupError_) as exc:
        resolve(INDEX, h)
    assert exc.value.status == status


def test_remote_of_and_eui64() -> None:
    assert remote_of("::ffff:192.0.2.1") == Remote(ip="192.0.2.1")
    assert remote_of("fe80::f816:3eff:fe12:3456") == Remote(mac="fa:16:3e:12:34:56")
    assert remote_of("") is None
    import ipaddress

    assert mac_from_eui64(ipaddress.IPv6Address("fe80::1")) is None


def test_signature_is_hex_hmac_sha256() -> None:
    want = hmac.new(b"s3cret", b"vm-1", hashlib.sha256).hexdigest()
    assert sign("s3cret", "vm-1") == want
    assert len(want) == 64 and sign("", "vm-1") != want


# --- a fake Nova -------------------------------------------------------------------------------
class Nova:
    """A real HTTP/1.1 server (keep-alive) on 127.0.0.1 answering ``status``/``body``/``ctype``;
    records every request (method, path, headers as a list, body) and counts connections."""

    def __init__(self, status: int = 200, body: bytes = b"{}", ctype: str = "application/json") -> None:
        self.status, self.body, self.ctype = status, body, ctype
        self.cache_control: str | None = None
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        nova = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                nova.connections += 1
                super().setup()

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                nova.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "body": self.rfile.read(n),
                        "headers": [(k.lower(), v) for k, v in self.headers.items()],
                    }
                )
                self.send_response(nova.status)
                self.send_header("Content-Type", nova.ctype)
                self.send_header("Content-Length", str(len(nova.body)))
                if nova.cache_control:
                    self.send_header("Cache-Control", nova.cache_control)
                self.end_headers()
                self.wfile.write(nova.body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def header(self, i: int, name: str) -> list[str]:
        return [v for k, v in self.requests[i]["headers"] if k == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nova() -> Iterator[Nova]:
    n = Nova()
    yield n
    n.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def request(
    headers: list[tuple[str, str]],
    method: str = "GET",
    target: str = "/openstack/latest/meta_data.json",
    body: bytes = b"",
) -> Request:
    return Request(method, target, "HTTP/1.1", [(k.lower(), v) for k, v in headers], body)


async def forward(nova_url: str, req: Request, secret: str = "s3cret") -> tuple[int, bytes, str]:
    proxy = MetadataProxy(nova_url, secret, index=INDEX)
    try:
        return await proxy.handle(req)
    finally:
        await proxy.aclose()


# --- forwarding --------------------------------------------------------------------------------------
def test_forwards_with_only_its_own_headers(nova: Nova) -> None:
    nova.body = b'{"uuid": "vm-1"}'
    status, body, ctype = run(
        forward(
            nova.url,
            request(
                [
                    ("X-Neutron-Router-ID", ROUTER),
                    ("X-Forwarded-For", "10.0.0.5"),
                    # an instance trying to pose as another one:
                    ("X-Instance-ID", "vm-2"),
                    ("X-Tenant-ID", "proj-2"),
                    ("X-Instance-ID-Signature", sign("s3cret", "vm-2")),
                    ("Cookie", "c=1"),
                    ("Authorization", "Bearer x"),
                ],
                target="/openstack/latest/meta_data.json?a=1&b=2",
            ),
        )
    )
    assert (status, body, ctype) == (200, b'{"uuid": "vm-1"}', "application/json")
    (req,) = nova.requests
    assert (req["method"], req["path"]) == ("GET", "/openstack/latest/meta_data.json?a=1&b=2")
    assert nova.header(0, "x-instance-id") == ["vm-1"]
    assert nova.header(0, "x-tenant-id") == ["proj-1"]
    assert nova.header(0, "x-instance-id-signature") == [sign("s3cret", "vm-1")]
    assert nova.header(0, "x-forwarded-for") == ["10.0.0.5"]
    sent = {k for k, _ in req["headers"]}
    for name in ("cookie", "authorization", "x-neutron-router-id", "x-neutron-network-id"):
        assert name not in sent


def test_post_body_and_imds_headers_are_forwarded(nova: Nova) -> None:
    nova.body, nova.ctype = b"ok", "text/plain"
    status, body, _ = run(
        forward(
            nova.url,
            request(
                [("X-Neutron-Network-ID", NET_A), ("X-Forwarded-For", "10.0.0.5"), ("X-aws-ec2-metadata-token", "t.1")],
                method="POST",
                target="/openstack/2013-04-04/password",
                body=b"secretpw",
            ),
        )
    )
    assert (status, body) == (200, b"ok")
    (req,) = nova.requests
    assert (req["method"], req["body"]) == ("POST", b"secretpw")
    assert nova.header(0, "x-aws-ec2-metadata-token") == ["t.1"]


def test_unknown_instance_is_404_without_calling_nova(nova: Nova) -> None:
    status, _, _ = run(forward(nova.url, request([("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.9.9.9")])))
    assert status == 404 and not nova.requests


@pytest.mark.parametrize(
    "nova_status, want",
    [(403, 403), (404, 404), (500, 500), (400, 400), (409, 409), (502, 502), (503, 503), (504, 504), (302, 500)],
)
def test_status_mapping(nova: Nova, nova_status: int, want: int) -> None:
    nova.status, nova.body = nova_status, b"nova's page"
    status, body, _ = run(
        forward(nova.url, request([("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5")]))
    )
    assert status == want and body == b""


@pytest.mark.parametrize("nova_status", [401, 405])
def test_imdsv2_refusals_and_wrong_methods_pass_through(nova: Nova, nova_status: int) -> None:
    """Unlike Neutron (which maps 401 to 500), IMDSv2's 401s and 405s reach the instance."""
    nova.status, nova.body = nova_status, b"why"
    status, body, _ = run(
        forward(nova.url, request([("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5")]))
    )
    assert status == nova_status and body == b"why"


def test_unreachable_nova_is_503(free_port: Any) -> None:
    status, _, _ = run(
        forward(
            f"http://127.0.0.1:{free_port()}",
            request([("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5")]),
        )
    )
    assert status == 503


def test_requests_share_one_kept_alive_connection(nova: Nova) -> None:
    async def go() -> list[int]:
        proxy = MetadataProxy(nova.url, "k", index=INDEX)
        out = []
        for ip in ("10.0.0.5", "10.1.0.5", "10.0.0.5"):
            out.append((await proxy.handle(request([("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", ip)])))[0])
        await proxy.aclose()
        return out

    assert run(go()) == [200, 200, 200]
    assert nova.connections == 1
    assert [nova.header(i, "x-instance-id") for i in range(3)] == [["vm-1"], ["vm-2"], ["vm-1"]]


# --- replaying answers -------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_answers_replayed_per_instance_for_as_long_as_the_api_allows(nova: Nova) -> None:
    from neutrino.agents.metadata.cache import AnswerCache

    nova.ctype, nova.cache_control = "text/plain", "max-age=10"
    clock = Clock()

    async def go() -> list[tuple[int, bytes]]:
        proxy = MetadataProxy(nova.url, "k", index=INDEX, cache=AnswerCache(clock=clock))

        async def ask(
            ip: str, target: str = "/latest/meta-data/instance-id", method: str = "GET", **extra: str
        ) -> tuple[int, bytes]:
            nova.body = f"answer {len(nova.requests)}".encode()
            hdrs = [("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", ip), *extra.items()]
            status, body, _ = await proxy.handle(request(hdrs, method=method, target=target))
            return status, body

        out = [
            await ask("10.0.0.5"),  # vm-1: fetched            -> answer 0
            await ask("10.0.0.5"),  # vm-1: replayed           -> answer 0
            await ask("10.1.0.5"),  # vm-2, same path: fetched -> answer 1
            await ask("10.0.0.5", "/latest/meta-data/instance-id?x=1"),  # query: fetched
            await ask("10.0.0.5", **{"X-aws-ec2-metadata-token": "t"}),  # token: fetched
            await ask("10.0.0.5", method="PUT", target="/latest/api/token"),
        ]  # PUT: fetched
        clock.now += 10
        out.append(await ask("10.0.0.5"))  # expired: fetched
        nova.cache_control = "no-store"
        out += [
            await ask("10.1.0.5", "/openstack/latest/meta_data.json"),
            await ask("10.1.0.5", "/openstack/latest/meta_data.json"),
        ]  # never replayed
        await proxy.aclose()
        return out

    out = run(go())
    assert [b for _, b in out] == [
        b"answer 0",
        b"answer 0",
        b"answer 1",
        b"answer 2",
        b"answer 3",
        b"answer 4",
        b"answer 5",
        b"answer 6",
        b"answer 7",
    ]
    assert [[v for k, v in r["headers"] if k == "x-instance-id"] for r in nova.requests] == [
        ["vm-1"],
        ["vm-2"],
        ["vm-1"],
        ["vm-1"],
        ["vm-1"],
        ["vm-1"],
        ["vm-2"],
        ["vm-2"],
    ]


def test_errors_are_never_replayed(nova: Nova) -> None:
    nova.status, nova.cache_control = 404, "max-age=10"

    async def go() -> int:
        proxy = MetadataProxy(nova.url, "k", index=INDEX)
        for _ in range(2):
            await proxy.handle(request([("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5")]))
        await proxy.aclose()
        return len(nova.requests)

    assert run(go()) == 2


# --- the driver: feed → index, the unix socket --------------------------------------------------
class FakeState:
    def __init__(self, ports: list[dict[str, Any]], routers: list[dict[str, Any]] = ROUTERS) -> None:
        self.ports = {p["id"]: p for p in ports}
        self.routers = {r["id"]: r for r in routers}

    def of(self, rtype: str) -> dict[str, Any]:
        return {"port": self.ports, "router": self.routers}.get(rtype, {})


def driver(sock: Path, nova: Nova, secret: str = "s3cret") -> MetadataDriver:
    port = int(nova.url.rsplit(":", 1)[1])
    return MetadataDriver(str(sock), "127.0.0.1", port, secret)


def get(path: str, **headers: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 169.254.169.254",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(sock: Path, data: bytes, responses: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``data`` on one connection of the unix socket, read ``responses`` responses."""
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(data)
    out = []
    for _ in range(responses):
        status_line = await reader.readline()
        if not status_line:
            break
        headers = {}
        while (line := await reader.readline()) != b"\r\n":
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        out.append((int(status_line.split()[1]), headers, body))
    writer.close()
    return out


async def closed_after(sock: Path, data: bytes) -> tuple[int, bool]:
    """(status of the one answer, whether the agent closed the connection right after it)."""
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(data)
    raw = await asyncio.wait_for(reader.read(65536), 5)
    rest = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return int(raw.split()[1]), rest == b""


def test_driver_serves_the_unix_socket(tmp_path: Path, nova: Nova) -> None:
    nova.body = json.dumps({"ok": True}).encode()
    sock = tmp_path / "metadata_proxy"

    async def go() -> list[int]:
        drv = driver(sock, nova)
        assert drv.configurations()["metadata_proxy_socket"] == str(sock)
        assert drv.agent_type == "Metadata agent" and drv.feed_types == ("port", "router")
        await drv.reconcile(FakeState(PORTS), True)
        assert sock.is_socket() and (sock.stat().st_mode & 0o777) == 0o644
        (r1,) = await exchange(sock, get("/latest/meta-data/", X_Neutron_Router_ID=ROUTER, X_Forwarded_For="10.0.0.5"))
        # a new port arrives on the feed: found without any server round trip
        await drv.reconcile(FakeState(PORTS + [port("vm9", NET_B, "10.1.0.9", "vm-9")]), True)
        (r2,) = await exchange(sock, get("/latest/meta-data/", X_Neutron_Router_ID=ROUTER, X_Forwarded_For="10.1.0.9"))
        (r3,) = await exchange(sock, get("/latest/meta-data/", X_Forwarded_For="10.1.0.9"))
        await drv.reconcile(FakeState(PORTS), False)  # idempotent
        await drv.close()
        assert not sock.exists()
        return [r[0] for r in (r1, r2, r3)]

    assert run(go()) == [200, 200, 500]
    assert [nova.header(i, "x-instance-id") for i in range(2)] == [["vm-1"], ["vm-9"]]


def test_keep_alive_and_pipelined_requests_answered_in_order(tmp_path: Path, nova: Nova) -> None:
    """One haproxy connection carries requests of different instances: each is resolved on
    its own headers, and answers come back in order."""
    nova.ctype = "text/plain"
    sock = tmp_path / "s"

    async def go() -> list[tuple[int, dict[str, str], bytes]]:
        drv = driver(sock, nova)
        await drv.reconcile(FakeState(PORTS), True)
        data = (
            get("/a", X_Neutron_Router_ID=ROUTER, X_Forwarded_For="10.0.0.5")
            + get("/b", X_Neutron_Router_ID=ROUTER, X_Forwarded_For="10.1.0.5")
            + get("/c", X_Neutron_Router_ID=ROUTER, X_Forwarded_For="10.9.9.9")
            + get("/d", X_Neutron_Network_ID=NET_C, X_Forwarded_For="10.0.0.5")
        )
        out = await exchange(sock, data, responses=4)
        await drv.close()
        return out

    out = run(go())
    assert [r[0] for r in out] == [200, 200, 404, 200]
    assert all("connection" not in r[1] for r in out)
    assert [(r["path"], [v for k, v in r["headers"] if k == "x-instance-id"]) for r in nova.requests] == [
        ("/a", ["vm-1"]),
        ("/b", ["vm-2"]),
        ("/d", ["vm-3"]),
    ]


@pytest.mark.parametrize(
    "data, status",
    [
        (b"THIS IS NOT HTTP\r\n\r\n", 400),
        (b"GET /latest HTTP/9\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.5\r\n folded\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
)
def test_refused_requests_close_the_connection(tmp_path: Path, nova: Nova, data: bytes, status: int) -> None:
    sock = tmp_path / "s"

    async def go() -> tuple[int, bool]:
        drv = driver(sock, nova)
        await drv.reconcile(FakeState(PORTS), True)
        # a valid request queued behind the bad one is never forwarded
        out = await closed_after(sock, data + get("/x", X_Neutron_Router_ID=ROUTER, X_Forwarded_For="10.0.0.5"))
        await drv.close()
        return out

    assert run(go()) == (status, True)
    assert not nova.requests


def test_chunked_body_and_connection_close(tmp_path: Path, nova: Nova) -> None:
    nova.body = b""
    sock = tmp_path / "s"

    async def go() -> tuple[int, bool]:
        drv = driver(sock, nova)
        await drv.reconcile(FakeState(PORTS), True)
        data = (
            b"POST /openstack/latest/password HTTP/1.1\r\nX-Neutron-Router-ID: "
            + ROUTER.encode()
            + b"\r\nX-Forwarded-For: 10.0.0.5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"4\r\nsecr\r\n2\r\net\r\n0\r\n\r\n"
        )
        out = await closed_after(sock, data)
        await drv.close()
        return out

    assert run(go()) == (200, True)
    assert nova.requests[0]["body"] == b"secret"
    assert "transfer-encoding" not in dict(nova.requests[0]["headers"])


def test_agent_restart_while_nova_is_down_then_up(tmp_path: Path, free_port: Any) -> None:
    """No metadata API: 503; the socket keeps serving."""
    sock = tmp_path / "s"

    async def go() -> list[int]:
        drv = MetadataDriver(str(sock), "127.0.0.1", free_port(), "k")
        await drv.reconcile(FakeState(PORTS), True)
        out = await exchange(sock, get("/a", X_Neutron_Router_ID=ROUTER, X_Forwarded_For="10.0.0.5") * 2, responses=2)
        await drv.close()
        return [r[0] for r in out]

    assert run(go()) == [503, 503]


def test_server_idle_timeout_handler_errors_and_half_close(tmp_path: Path) -> None:
    from neutrino.agents.metadata.agent import bind_unix
    from neutrino.agents.metadata.server import MetadataServer

    sock = tmp_path / "s"

    async def handler(req: Request) -> tuple[int, bytes, str]:
        if req.target == "/boom":
            raise RuntimeError("a bug")
        await asyncio.sleep(0.05)
        return 200, req.target.encode(), "text/plain"

    async def go() -> tuple[list[int], bytes, bool]:
        srv = MetadataServer(handler, idle_timeout=0.3)
        await srv.start(bind_unix(str(sock)))
        # a handler that fails answers 500; the connection goes on
        statuses = [r[0] for r in await exchange(sock, get("/boom") + get("/ok"), responses=2)]
        # half-closed right after the request: still answered, then closed
        reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(get("/half"))
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        # an idle connection is closed after idle_timeout, a busy one is not
        reader, writer = await asyncio.open_unix_connection(str(sock))
        t0 = asyncio.get_running_loop().time()
        closed = await asyncio.wait_for(reader.read(), 5) == b""
        idle_for = asyncio.get_running_loop().time() - t0
        writer.close()
        await srv.close()
        return statuses, answer, closed and idle_for > 0.2

    statuses, answer, idle_closed = run(go())
    assert statuses == [500, 200]
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\n/half")
    assert b"Connection: close" in answer
    assert idle_closed
