"""The metadata agent: who asks (router/network + address → instance), the
signature, the headers it sends (never a client's), forwarding and status
mapping (Nova faked with ``httpx.MockTransport``), and the unix socket."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from neutrino.agents.metadata.agent import MetadataDriver
from neutrino.agents.metadata.proxy import (LookupError_, MetadataApp, PortIndex, Remote, mac_from_eui64, remote_of,
                                            resolve, sign)

ROUTER, NET_A, NET_B, NET_C = "router-1", "net-a", "net-b", "net-c"


def port(pid: str, net: str, ip: str, device: str, owner: str = "compute:nova", project: str = "proj-1",
         mac: str = "fa:16:3e:00:00:01") -> dict[str, Any]:
    return {"id": pid, "network_id": net, "device_id": device, "device_owner": owner, "project_id": project,
            "mac_address": mac, "fixed_ips": [{"subnet_id": "s-" + net, "ip_address": ip}]}


PORTS = [
    port("ri-a", NET_A, "10.0.0.1", ROUTER, "network:router_interface"),
    port("ri-b", NET_B, "10.1.0.1", ROUTER, "network:router_interface"),
    port("vm1", NET_A, "10.0.0.5", "vm-1", project="proj-1", mac="fa:16:3e:aa:bb:01"),
    port("vm2", NET_B, "10.1.0.5", "vm-2", project="proj-2", mac="fa:16:3e:aa:bb:02"),
    port("vm3", NET_C, "10.0.0.5", "vm-3", project="proj-3"),          # same IP, not on the router
    port("dup1", NET_C, "10.2.0.9", "vm-4"),
    port("dup2", NET_C, "10.2.0.9", "vm-5"),                            # ambiguous
    port("gw", "ext", "172.16.0.10", ROUTER, "network:router_gateway"),  # not an interface network
    port("v6", NET_C, "2001:db8::5", "vm-6", mac="fa:16:3e:12:34:56"),
]
INDEX = PortIndex.build(PORTS)


def hdrs(**kw: str) -> dict[str, str]:
    return {k.replace("_", "-").lower(): v for k, v in kw.items()}


# --- resolution ------------------------------------------------------------------------------
def test_router_networks_are_its_interfaces_only() -> None:
    assert INDEX.router_networks == {ROUTER: {NET_A, NET_B}}


@pytest.mark.parametrize("h, want", [
    (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.0.0.5"), ("vm-1", "proj-1", "10.0.0.5")),
    (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.1.0.5"), ("vm-2", "proj-2", "10.1.0.5")),
    (hdrs(x_neutron_network_id=NET_C, x_forwarded_for="10.0.0.5"), ("vm-3", "proj-3", "10.0.0.5")),
    (hdrs(x_neutron_network_id=NET_A, x_forwarded_for="::ffff:10.0.0.5"), ("vm-1", "proj-1", "10.0.0.5")),
    # a client-sent X-Forwarded-For comes first; the proxy's (last) one counts
    (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.1.0.5, 10.0.0.5"), ("vm-1", "proj-1", "10.0.0.5")),
    (hdrs(x_neutron_network_id=NET_C, x_forwarded_for="2001:db8::5"), ("vm-6", "proj-1", "2001:db8::5")),
    # IPv6 link-local: by the MAC of the EUI-64
    (hdrs(x_neutron_network_id=NET_C, x_forwarded_for="fe80::f816:3eff:fe12:3456"),
     ("vm-6", "proj-1", "fe80::f816:3eff:fe12:3456")),
])
def test_resolve(h: dict[str, str], want: tuple[str, str, str]) -> None:
    assert resolve(INDEX, h) == want


@pytest.mark.parametrize("h, status", [
    (hdrs(x_neutron_router_id=ROUTER, x_neutron_network_id=NET_A, x_forwarded_for="10.0.0.5"), 404),
    (hdrs(x_forwarded_for="10.0.0.5"), 500),
    (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="10.9.9.9"), 404),     # unknown address
    (hdrs(x_neutron_router_id=ROUTER, x_forwarded_for="172.16.0.10"), 404),  # gateway net is not served
    (hdrs(x_neutron_router_id="other-router", x_forwarded_for="10.0.0.5"), 404),
    (hdrs(x_neutron_network_id=NET_C, x_forwarded_for="10.2.0.9"), 404),     # two ports
    (hdrs(x_neutron_network_id=NET_A), 404),
    (hdrs(x_neutron_network_id=NET_A, x_forwarded_for="not-an-ip"), 404),
])
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


# --- forwarding (ASGI, Nova faked) ----------------------------------------------------------
class Nova:
    def __init__(self, status: int = 200, body: bytes = b"{}", ctype: str = "application/json",
                 fail: bool = False) -> None:
        self.status, self.body, self.ctype, self.fail = status, body, ctype, fail
        self.requests: list[httpx.Request] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        if self.fail:
            raise httpx.ConnectError("refused", request=req)
        return httpx.Response(self.status, content=self.body, headers={"content-type": self.ctype})


async def call(app: MetadataApp, headers: list[tuple[str, str]], method: str = "GET",
               path: str = "/openstack/latest/meta_data.json", query: str = "", body: bytes = b"",
               ) -> tuple[int, dict[str, str], bytes]:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query.encode(),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}
    msgs = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return msgs.pop(0) if msgs else {"type": "http.disconnect"}

    async def send(m: dict[str, Any]) -> None:
        sent.append(m)

    await app(scope, receive, send)
    start, resp = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, resp["body"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_forwards_with_only_its_own_headers() -> None:
    nova = Nova(body=b'{"uuid": "vm-1"}')
    app = MetadataApp("http://127.0.0.1:8775", "s3cret", index=INDEX, transport=httpx.MockTransport(nova))
    status, h, body = run(call(app, [
        ("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5"),
        # an instance trying to pose as another one:
        ("X-Instance-ID", "vm-2"), ("X-Tenant-ID", "proj-2"), ("X-Instance-ID-Signature", sign("s3cret", "vm-2")),
        ("Cookie", "c=1"), ("Authorization", "Bearer x")],
        query="a=1&b=2"))
    assert (status, body, h["content-type"]) == (200, b'{"uuid": "vm-1"}', "application/json")
    (req,) = nova.requests
    assert str(req.url) == "http://127.0.0.1:8775/openstack/latest/meta_data.json?a=1&b=2"
    assert req.method == "GET"
    assert req.headers["x-instance-id"] == "vm-1"
    assert req.headers["x-tenant-id"] == "proj-1"
    assert req.headers["x-instance-id-signature"] == sign("s3cret", "vm-1")
    assert req.headers["x-forwarded-for"] == "10.0.0.5"
    assert req.headers.get_list("x-instance-id") == ["vm-1"]
    for name in ("cookie", "authorization", "x-neutron-router-id", "x-neutron-network-id"):
        assert name not in req.headers


def test_post_body_is_forwarded() -> None:
    nova = Nova(body=b"ok", ctype="text/plain")
    app = MetadataApp("http://nova:8775", "k", index=INDEX, transport=httpx.MockTransport(nova))
    status, _, body = run(call(app, [("X-Neutron-Network-ID", NET_A), ("X-Forwarded-For", "10.0.0.5")],
                               method="POST", path="/openstack/2013-04-04/password", body=b"secretpw"))
    assert (status, body) == (200, b"ok")
    assert nova.requests[0].method == "POST" and nova.requests[0].content == b"secretpw"


def test_unknown_instance_is_404_without_calling_nova() -> None:
    nova = Nova()
    app = MetadataApp("http://nova:8775", "k", index=INDEX, transport=httpx.MockTransport(nova))
    status, _, _ = run(call(app, [("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.9.9.9")]))
    assert status == 404 and not nova.requests


@pytest.mark.parametrize("nova_status, want", [(403, 403), (404, 404), (500, 500), (400, 400), (409, 409),
                                               (502, 502), (503, 503), (504, 504), (302, 500)])
def test_status_mapping(nova_status: int, want: int) -> None:
    app = MetadataApp("http://nova:8775", "k", index=INDEX,
                      transport=httpx.MockTransport(Nova(status=nova_status, body=b"nova's page")))
    status, _, body = run(call(app, [("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5")]))
    assert status == want and body == b""


def test_unreachable_nova_is_503() -> None:
    app = MetadataApp("http://nova:8775", "k", index=INDEX, transport=httpx.MockTransport(Nova(fail=True)))
    status, _, _ = run(call(app, [("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5")]))
    assert status == 503


# --- the driver: feed → index, the unix socket --------------------------------------------------
class FakeState:
    def __init__(self, ports: list[dict[str, Any]]) -> None:
        self.ports = {p["id"]: p for p in ports}

    def of(self, rtype: str) -> dict[str, Any]:
        return self.ports if rtype == "port" else {}


def test_driver_serves_the_unix_socket(tmp_path: Path) -> None:
    nova = Nova(body=json.dumps({"ok": True}).encode())
    sock = tmp_path / "metadata_proxy"

    async def go() -> tuple[int, int, int]:
        drv = MetadataDriver(str(sock), "127.0.0.1", 8775, "s3cret", transport=httpx.MockTransport(nova))
        assert drv.configurations()["metadata_proxy_socket"] == str(sock)
        assert drv.agent_type == "Metadata agent" and drv.feed_types == ("port",)
        await drv.reconcile(FakeState(PORTS), True)
        assert sock.is_socket() and (sock.stat().st_mode & 0o777) == 0o644
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock))) as c:
            r1 = await c.get("http://proxy/latest/meta-data/",
                             headers={"X-Neutron-Router-ID": ROUTER, "X-Forwarded-For": "10.0.0.5"})
            # a new port arrives on the feed: found without any server round trip
            await drv.reconcile(FakeState(PORTS + [port("vm9", NET_B, "10.1.0.9", "vm-9")]), True)
            r2 = await c.get("http://proxy/latest/meta-data/",
                             headers={"X-Neutron-Router-ID": ROUTER, "X-Forwarded-For": "10.1.0.9"})
            r3 = await c.get("http://proxy/latest/meta-data/", headers={"X-Forwarded-For": "10.1.0.9"})
        await drv.close()
        assert not sock.exists()
        return r1.status_code, r2.status_code, r3.status_code

    assert run(go()) == (200, 200, 500)
    assert [r.headers["x-instance-id"] for r in nova.requests] == ["vm-1", "vm-9"]


@pytest.mark.parametrize("nova_status", [401, 405])
def test_imdsv2_refusals_and_wrong_methods_pass_through(nova_status: int) -> None:
    """Unlike Neutron (which maps 401 to 500), IMDSv2's 401s and 405s reach the instance."""
    app = MetadataApp("http://nova:8775", "k", index=INDEX,
                      transport=httpx.MockTransport(Nova(status=nova_status, body=b"why")))
    status, _, body = run(call(app, [("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.0.0.5")]))
    assert status == nova_status and body == b"why"
