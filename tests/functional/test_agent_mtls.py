"""Agents and mutual TLS over real sockets (issue 16): the network API and the metadata API served
on 127.0.0.1 by uvicorn with the server's TLS stack (``neutrino.server.http_protocol`` and a
``ReloadingServerContext``), reached by a real agent feed client and the metadata agent's upstream.

* node.pem of the cloud's CA: served, without any token;
* no client certificate: 401 ``ClientCertificateRequired``;
* a certificate from another CA, or an expired one: a TLS alert (no HTTP at all);
* after revocation (CRL reloaded): 403 on the connection kept alive, a TLS alert on a new one;
* every refusal: the change feed has no record of it.

Needs no root (only loopback sockets); it sits with the functional tier's real-process tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from neutrino import config as nconfig
from neutrino import server
from neutrino.agents.metadata.upstream import Upstream
from neutrino.agents.tls import AgentCertificateError, AgentTls
from neutrino.api.factory import make_deps, make_network_app
from neutrino.compute.app import make_compute_api
from neutrino.db import tables
from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.feed import log
from neutrino.feed.client import FeedClient, FeedError
from neutrino.feed.publisher import open_feed
from neutrino.metadata.app import build_metadata_app, sign_instance_id
from neutrino.pki.tls import ReloadingServerContext
from tests.api.conftest import validate_token
from tests.tls_material import Material

OVS_REPORT = {
    "agent_type": "Open vSwitch agent",
    "binary": "neutrino-openvswitch-agent",
    "topic": "N/A",
    "host": "compute1",
    "configurations": {},
}


@contextmanager
def serving(cfg: nconfig.Config, name: str, app: Any, tls: ReloadingServerContext) -> Iterator[int]:
    """Serve ``app`` over TLS on 127.0.0.1 (a free port, yielded) in a thread of its own."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    conf = uvicorn.Config(app, lifespan="off", log_level="warning", http=server.http_protocol(cfg, name, tls))
    conf.load()
    conf.ssl = tls.base
    srv = uvicorn.Server(conf)
    thread = threading.Thread(target=lambda: asyncio.run(srv.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if srv.started:
                break
            threading.Event().wait(0.02)
        assert srv.started, "the test server did not start"
        yield sock.getsockname()[1]
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


class Cloud:
    def __init__(self, tmp: Path) -> None:
        self.pki = Material(tmp / "pki")
        self.crl = self.pki.write_crl()
        cert, key, _ = self.pki.server()
        self.tls = ReloadingServerContext(cert, key, self.pki.ca_file, self.crl)
        self.cfg = nconfig.defaults(tmp).with_overrides(dict(nconfig.ALL_IN_ONE))
        self.db = Database(self.cfg.database_url)
        upgrade(self.db.engine)
        self.feed = open_feed(self.db, self.cfg.feed.retention)
        self.deps = make_deps(self.cfg, self.db)

    def records(self) -> int:
        with self.db.read() as conn:
            return log.latest_revision(conn)

    def agents(self) -> list[tuple[str, str]]:
        with self.db.read() as conn:
            return [(r.agent_type, r.host) for r in conn.execute(tables.agents.select())]


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    c = Cloud(tmp_path)
    yield c
    c.db.dispose()


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())


def test_agents_connect_with_the_nodes_certificate_and_nothing_else(cloud: Cloud) -> None:
    app = make_network_app(cloud.deps, validate_token, feed=cloud.feed)
    node_cert, node_key, node = cloud.pki.leaf("node", cn="compute1", ou="compute", client=True)
    other_ca = Material(cloud.pki.directory / "other")
    foreign_cert, foreign_key, _ = other_ca.leaf("foreign", cn="compute1", ou="compute", client=True)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    expired_cert, expired_key, _ = cloud.pki.leaf("expired", cn="compute1", ou="compute", client=True, start=old)

    with serving(cloud.cfg, "network", app, cloud.tls) as port:
        url = f"https://127.0.0.1:{port}"
        tls = AgentTls(cloud.pki.ca_file, node_cert, node_key)

        def raw_context(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
            ctx = ssl.create_default_context(cafile=str(cloud.pki.ca_file))
            if cert is not None and key is not None:
                ctx.load_cert_chain(cert, key)  # no client-side checks: what the server does with it
            return ctx

        async def refused_at_handshake(ctx: ssl.SSLContext) -> None:
            async with FeedClient(url, None, verify=ctx) as client:
                with pytest.raises(httpx.TransportError):
                    await client.report(OVS_REPORT)

        async def scenario() -> None:
            start = cloud.records()
            # Without a client certificate: 401, a clear Neutron-format message.
            async with FeedClient(url, "any-token", verify=raw_context()) as client:
                with pytest.raises(FeedError) as info:
                    await client.report(OVS_REPORT)
                assert info.value.status == 401 and info.value.error_type == "ClientCertificateRequired"
                assert "client certificate issued by this cloud's CA is required" in str(info.value)
            # Another CA's certificate, an expired one: the handshake fails (TLS alert).
            await refused_at_handshake(raw_context(foreign_cert, foreign_key))
            await refused_at_handshake(raw_context(expired_cert, expired_key))
            assert cloud.records() == start and cloud.agents() == []
            # node.pem: served, no token sent.
            async with FeedClient(url, None, verify=tls.context, before_request=tls.maybe_reload) as client:
                agent = await client.report(OVS_REPORT)
                assert agent["host"] == "compute1" and agent["alive"]
                assert (await client.snapshot(["agent"]))["resources"]["agents"]
                # Revoked (the CRL reloaded by the server): 403 on this kept-alive connection ...
                before = cloud.records()
                cloud.pki.revoked.append(node.serial_number)
                cloud.pki.write_crl()
                assert cloud.tls.reload()
                with pytest.raises(FeedError) as info:
                    await client.report(OVS_REPORT)
                assert info.value.status == 403
                assert cloud.records() == before
            # ... and a TLS alert on a new connection.
            await refused_at_handshake(tls.context)
            assert cloud.records() == before

        run(scenario)
    # The agent itself refuses to start with the expired certificate, naming it and its dates.
    with pytest.raises(AgentCertificateError, match="expired on"):
        AgentTls(cloud.pki.ca_file, expired_cert, expired_key)


def test_the_metadata_agent_reaches_the_metadata_api_over_mutual_tls(cloud: Cloud) -> None:
    servers = make_compute_api(cloud.cfg, cloud.db, validate_token, cloud.deps).servers
    app = build_metadata_app(cloud.cfg, cloud.db, servers)
    secret = cloud.cfg.metadata.metadata_proxy_shared_secret
    net_cert, net_key, _ = cloud.pki.leaf("net1", cn="net1", ou="network", client=True)
    cmp_cert, cmp_key, _ = cloud.pki.leaf("compute1", cn="compute1", ou="compute", client=True)
    headers = [
        ("X-Instance-ID", "i-1"),
        ("X-Tenant-ID", "p"),
        ("X-Instance-ID-Signature", sign_instance_id(secret, "i-1")),
    ]
    with serving(cloud.cfg, "metadata", app, cloud.tls) as port:

        async def ask(cert: Path, key: Path, hdrs: list[tuple[str, str]]) -> int:
            tls = AgentTls(cloud.pki.ca_file, cert, key)
            up = Upstream(f"https://localhost:{port}", ssl_context=tls.context, before_connect=tls.maybe_reload)
            try:
                return (await up.request("GET", "/latest/meta-data/", hdrs)).status
            finally:
                await up.aclose()

        assert asyncio.run(ask(net_cert, net_key, headers)) == 404  # past TLS and the signature: no such instance
        assert asyncio.run(ask(cmp_cert, cmp_key, headers)) == 403  # a compute node runs no metadata agent
        bad = [*headers[:2], ("X-Instance-ID-Signature", "0" * 64)]
        assert asyncio.run(ask(net_cert, net_key, bad)) == 403  # Nova's signature is still checked
