"""The agents' client TLS (``neutrino.agents.tls``) and the feed client's certificate path: which
context an agent uses, the certificate check before connecting, reloading a rotated certificate."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import httpx
import pytest

from neutrino import config as nconfig
from neutrino.agents import runner
from neutrino.agents.tls import AgentCertificateError, AgentTls, agent_tls, tls_files
from neutrino.feed.client import FeedClient
from neutrino.pki.tls import peer_identity, server_context
from tests.tls_material import Material


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str = "localhost") -> ssl.SSLObject:
    """A TLS handshake in memory; returns the server's end (its peer certificate is the client's)."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, end, out, peer_in in (("c", c, c_out, s_in), ("s", s, s_out, c_in)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            # TLS 1.3: the server verifies the client's certificate after its own handshake ends.
            c.write(b"x")
            s_in.write(c_out.read())
            assert s.read(1) == b"x"
            return s
    raise AssertionError("handshake did not finish")


@pytest.fixture
def pki(tmp_path: Path) -> Material:
    return Material(tmp_path / "pki")


def test_an_https_server_url_gets_the_nodes_certificate_and_http_gets_none(tmp_path: Path, pki: Material) -> None:
    cert, key, leaf = pki.leaf("node", cn="compute1", ou="compute", client=True)
    cfg = nconfig.defaults(tmp_path).with_overrides(
        {
            ("DEFAULT", "ssl_ca_file"): str(pki.ca_file),
            ("pki", "client_cert_file"): str(cert),
            ("pki", "client_key_file"): str(key),
        }
    )
    assert tls_files(cfg) == (pki.ca_file, cert, key)
    assert agent_tls(cfg, "http://127.0.0.1:9696") is None
    tls = agent_tls(cfg, "https://127.0.0.1:9696")
    assert tls is not None
    server_cert, server_key, _ = pki.server()
    peer = peer_identity(handshake(server_context(server_cert, server_key, pki.ca_file), tls.context))
    assert peer is not None and (peer.host, peer.role, peer.serial) == ("compute1", "compute", leaf.serial_number)


def test_defaults_are_the_state_directorys_pki_files_and_the_scheme_follows_use_ssl(tmp_path: Path) -> None:
    cfg = nconfig.defaults(tmp_path)
    assert tls_files(cfg) == (tmp_path / "pki/ca.pem", tmp_path / "pki/node.pem", tmp_path / "pki/node.key")
    assert runner.server_url(cfg).startswith("https://")
    plain = cfg.with_overrides({("DEFAULT", "use_ssl"): "false"})
    assert runner.server_url(plain).startswith("http://")


def test_the_runner_stops_with_the_files_name_when_the_certificate_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        runner.feed_client(nconfig.defaults(tmp_path))
    assert str(tmp_path / "pki/node.pem") in str(info.value)


@pytest.mark.parametrize(
    ("start", "days", "words"),
    [
        (dt.datetime.now(dt.UTC) - dt.timedelta(days=40), 30, "expired on"),
        (dt.datetime.now(dt.UTC) + dt.timedelta(days=2), 30, "is not valid before"),
    ],
)
def test_an_expired_or_future_certificate_is_a_clear_error(
    pki: Material, start: dt.datetime, days: int, words: str
) -> None:
    cert, key, leaf = pki.leaf("old", cn="compute1", ou="compute", client=True, start=start, days=days)
    with pytest.raises(AgentCertificateError) as info:
        AgentTls(pki.ca_file, cert, key)
    msg = str(info.value)
    assert str(cert) in msg and "CN=compute1, OU=compute, O=Neutrino" in msg and words in msg
    assert leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC") in msg


def test_a_rotated_certificate_is_used_by_new_connections_and_a_bad_one_is_not(pki: Material) -> None:
    cert, key, first = pki.leaf("node", cn="compute1", ou="compute", client=True)
    now = [0.0]
    tls = AgentTls(pki.ca_file, cert, key, check_interval=1.0, clock=lambda: now[0])
    server_cert, server_key, _ = pki.server()
    server = server_context(server_cert, server_key, pki.ca_file)

    def presented() -> int:
        peer = peer_identity(handshake(server, tls.context))
        assert peer is not None
        return peer.serial

    assert presented() == first.serial_number
    _, _, second = pki.leaf("node", cn="compute1", ou="compute", client=True)  # rotate: same files
    assert not tls.maybe_reload()  # looked at most once per check_interval
    now[0] = 5.0
    assert tls.maybe_reload() and tls.reloads == 1
    assert presented() == second.serial_number
    # A key that does not belong to the certificate (a half-done rotation) keeps the current pair.
    good_key = key.read_bytes()
    pki.leaf("other", cn="compute1", ou="compute", client=True)
    key.write_bytes((pki.directory / "other.key").read_bytes())
    now[0] = 10.0
    assert not tls.maybe_reload()
    assert presented() == second.serial_number
    key.write_bytes(good_key)
    now[0] = 15.0
    assert tls.maybe_reload()
    assert presented() == second.serial_number


def test_the_feed_client_sends_no_token_with_a_certificate() -> None:
    seen: list[httpx.Request] = []
    hooks: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"revision": 1, "resources": {}})

    async def run(token: str | None) -> None:
        client = FeedClient(
            "https://ctl:9696", token, httpx.MockTransport(handler), before_request=lambda: hooks.append(1)
        )
        async with client:
            await client.snapshot()
            await client.api("GET", "/v2.0/ports")

    asyncio.run(run(None))
    assert [r.headers.get("x-auth-token") for r in seen] == [None, None] and len(hooks) == 2
    seen.clear()
    asyncio.run(run("tok"))
    assert [r.headers.get("x-auth-token") for r in seen] == ["tok", "tok"]


def test_a_401_is_not_retried_without_a_token_source() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, json={"NeutronError": {"type": "ClientCertificateRequired", "message": "m"}})

    async def run() -> None:
        async with FeedClient("https://ctl:9696", None, httpx.MockTransport(handler)) as client:
            await client.snapshot()

    with pytest.raises(Exception, match="ClientCertificateRequired"):
        asyncio.run(run())
    assert len(calls) == 1
