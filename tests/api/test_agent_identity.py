"""Agents authenticated by their client certificates (issue 16), at the API edges in process.

The TLS layer puts the verified client certificate's ``Peer`` into the ASGI scope
(``neutrino.pki.tls.PEER_SCOPE_KEY``); here a small ASGI wrapper does that, and the
TestClient's ``https://`` base URL makes the scope's scheme https (TLS on).  Every
refusal leaves the database as it was (the feed has no record of it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from neutrino.db import tables
from neutrino.metadata.app import build_metadata_app, sign_instance_id
from neutrino.pki.tls import PEER_SCOPE_KEY, Peer
from tests.api.compute_helpers import ComputeEnv
from tests.api.conftest import error

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CERT_REQUIRED = "client certificate issued by this cloud's CA is required"


class WithPeer:
    """ASGI wrapper: what the TLS layer does for a connection whose client certificate verified."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.peer: Peer | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.peer is not None:
            scope = {**scope, PEER_SCOPE_KEY: self.peer}
        await self.app(scope, receive, send)


def peer(host: str, role: str, serial: int = 0x10) -> Peer:
    return Peer(host, role, serial, f"CN={host},OU={role},O=Neutrino")


class Cloud:
    """The network API (with the feed and the compute agents' routes) and the metadata API over "TLS"."""

    def __init__(self, env: ComputeEnv) -> None:
        self.env = env
        self.net_app = WithPeer(env.net.app)
        self.tls = TestClient(self.net_app, base_url="https://testserver", raise_server_exceptions=False)
        self.tls.__enter__()
        self.md_app = WithPeer(build_metadata_app(env.cfg, env.db, env.compute_api.servers))
        self.md = TestClient(self.md_app, base_url="https://testserver", raise_server_exceptions=False)

    def close(self) -> None:
        self.tls.__exit__(None, None, None)

    def as_agent(self, who: Peer | None, method: str, path: str, json: Any = None, token: str | None = None) -> Any:
        self.net_app.peer = who
        try:
            headers = {"X-Auth-Token": token} if token else {}
            return self.tls.request(method, path, json=json, headers=headers)
        finally:
            self.net_app.peer = None

    def rows(self) -> dict[str, list[tuple[str, ...]]]:
        """Every row of every table, the change log included."""
        out = {}
        with self.env.db.read() as conn:
            for name, table in tables.metadata.tables.items():
                out[name] = sorted(tuple(repr(v) for v in r) for r in conn.execute(select(table)))
        return out


@pytest.fixture
def cloud(api_db_url: str, tmp_path: Path) -> Iterator[Cloud]:
    env = ComputeEnv(api_db_url, tmp_path)
    c = Cloud(env)
    yield c
    c.close()
    env.close()


def report(agent_type: str, host: str) -> dict[str, Any]:
    binary = {"L3 agent": "neutrino-l3-agent", "Open vSwitch agent": "neutrino-openvswitch-agent"}[agent_type]
    return {"agent": {"agent_type": agent_type, "binary": binary, "topic": "t", "host": host, "configurations": {}}}


def test_without_a_client_certificate_the_agent_routes_answer_401_and_change_nothing(cloud: Cloud) -> None:
    before = cloud.rows()
    for token in (None, "service", "demo", "bogus"):
        error(
            cloud.as_agent(None, "GET", "/neutrino/v1/snapshot", token=token),
            401,
            "ClientCertificateRequired",
            contains=CERT_REQUIRED,
        )
        r = cloud.as_agent(None, "POST", "/neutrino/v1/agents/report", report("Open vSwitch agent", "compute1"), token)
        error(r, 401, "ClientCertificateRequired", contains=CERT_REQUIRED)
        r = cloud.as_agent(None, "POST", "/neutrino/v1/ports/status", {"host": "compute1", "ports": {}}, token)
        error(r, 401, "ClientCertificateRequired")
        error(cloud.as_agent(None, "GET", "/neutrino/v1/servers", token=token), 401, "ClientCertificateRequired")
    assert cloud.rows() == before
    # The cloud admin's tools still read the feed with the admin's token.
    assert cloud.as_agent(None, "GET", "/neutrino/v1/snapshot", token="admin").status_code == 200
    # Over plain HTTP (--no-tls) the service user's token is what it was.
    assert cloud.env.neutron("GET", "/neutrino/v1/snapshot", "service").status_code == 200


def test_a_certificate_reports_only_its_hosts_agents_of_its_role(cloud: Cloud) -> None:
    compute1 = peer("compute1", "compute")
    ok = cloud.as_agent(compute1, "POST", "/neutrino/v1/agents/report", report("Open vSwitch agent", "compute1"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["agent"]["host"] == "compute1"
    before = cloud.rows()
    # A compute node's certificate cannot act as an L3 agent, its own host's or another node's.
    for body in (report("L3 agent", "compute1"), report("L3 agent", "net1"), report("Open vSwitch agent", "compute2")):
        r = cloud.as_agent(compute1, "POST", "/neutrino/v1/agents/report", body)
        err = error(r, 403, "AgentNotAuthorized")
        assert "CN=compute1,OU=compute,O=Neutrino" in err["message"]
    # A controller's certificate runs no agent: not even the feed (its admin tools use the admin's token).
    error(cloud.as_agent(peer("ctl", "controller"), "GET", "/neutrino/v1/changes?since=0"), 403, "AgentNotAuthorized")
    r = cloud.as_agent(peer("ctl", "controller"), "GET", "/neutrino/v1/changes?since=0", token="service")
    error(r, 403, "AgentNotAuthorized")
    assert cloud.as_agent(peer("ctl", "controller"), "GET", "/neutrino/v1/servers", token="admin").status_code == 200
    assert cloud.rows() == before
    with cloud.env.db.read() as conn:
        assert [(a.agent_type, a.host) for a in conn.execute(select(tables.agents))] == [
            ("Open vSwitch agent", "compute1")
        ]
    # The feed serves the certificate (no token).
    assert cloud.as_agent(compute1, "GET", "/neutrino/v1/snapshot").status_code == 200


def test_port_status_for_another_host_is_refused_and_a_port_bound_elsewhere_is_not_changed(cloud: Cloud) -> None:
    net = cloud.env.network("admin")
    there = cloud.env.port(net["id"], "admin", **{"binding:host_id": "compute2"})
    before = cloud.rows()
    compute1 = peer("compute1", "compute")
    r = cloud.as_agent(
        compute1, "POST", "/neutrino/v1/ports/status", {"host": "compute2", "ports": {there["id"]: "ACTIVE"}}
    )
    error(r, 403, "AgentNotAuthorized", contains="'compute2'")
    r = cloud.as_agent(
        compute1, "POST", "/neutrino/v1/ports/status", {"host": "compute1", "ports": {there["id"]: "ACTIVE"}}
    )
    assert r.status_code == 200 and r.json() == {"changed": [], "ignored": [there["id"]]}
    error(
        cloud.as_agent(compute1, "POST", "/neutrino/v1/floatingips/status", {"host": "compute1", "floatingips": {}}),
        403,
        "AgentNotAuthorized",
        contains="L3 agent",
    )
    assert cloud.rows() == before
    r = cloud.as_agent(
        peer("compute2", "compute"),
        "POST",
        "/neutrino/v1/ports/status",
        {"host": "compute2", "ports": {there["id"]: "ACTIVE"}},
    )
    assert r.json()["changed"] == [there["id"]]


def test_port_bindings_only_for_the_certificates_host(cloud: Cloud) -> None:
    net = cloud.env.network("admin")
    net1, net2 = peer("net1", "network"), peer("net2", "network")
    for who in (net1, net2):
        assert (
            cloud.as_agent(who, "POST", "/neutrino/v1/agents/report", report("L3 agent", who.host)).status_code == 200
        )
    dhcp = {
        "network_id": net["id"],
        "device_owner": "network:dhcp",
        "device_id": "dhcp-net1",
        "binding:host_id": "net1",
    }
    created = cloud.as_agent(net1, "POST", "/v2.0/ports", {"port": dhcp})
    assert created.status_code == 201, created.text
    port = created.json()["port"]
    router = cloud.env.ok(cloud.env.neutron("POST", "/v2.0/routers", "admin", {"router": {"name": "r"}}), 201)["router"]
    sub = cloud.env.ok(cloud.env.neutron("GET", f"/v2.0/subnets?network_id={net['id']}"))["subnets"][0]
    cloud.env.ok(
        cloud.env.neutron(
            "PUT", f"/v2.0/routers/{router['id']}/add_router_interface", "admin", {"subnet_id": sub["id"]}
        )
    )
    agents = cloud.env.ok(cloud.env.neutron("GET", f"/v2.0/routers/{router['id']}/l3-agents"))["agents"]
    assert len(agents) == 1
    mine = net1 if agents[0]["host"] == "net1" else net2
    other = net2 if mine is net1 else net1
    rport = cloud.env.ok(cloud.env.neutron("GET", f"/v2.0/ports?device_id={router['id']}"))["ports"][0]
    before = cloud.rows()
    refusals = [
        # another host's binding, for a port of its own
        (net1, "PUT", f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "net2"}}),
        # a DHCP port of another host: not created, not changed, not deleted
        (net2, "POST", "/v2.0/ports", {"port": dhcp}),
        (net2, "PUT", f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": []}}),
        (net2, "DELETE", f"/v2.0/ports/{port['id']}", None),
        # a router that is not scheduled to this host's L3 agent
        (other, "PUT", f"/v2.0/ports/{rport['id']}", {"port": {"binding:host_id": other.host}}),
        # a compute node's certificate acting as an L3 agent
        (peer("compute1", "compute"), "PUT", f"/v2.0/ports/{rport['id']}", {"port": {"binding:host_id": "compute1"}}),
        # anything but the agents' port calls
        (net1, "GET", "/v2.0/ports", None),
        (net1, "POST", "/v2.0/networks", {"network": {"name": "x"}}),
        (net1, "PUT", f"/v2.0/ports/{port['id']}", {"port": {"name": "renamed"}}),
    ]
    for who, method, path, body in refusals:
        error(cloud.as_agent(who, method, path, body), 403, "AgentNotAuthorized")
    assert cloud.rows() == before
    r = cloud.as_agent(mine, "PUT", f"/v2.0/ports/{rport['id']}", {"port": {"binding:host_id": mine.host}})
    assert r.status_code == 200 and r.json()["port"]["binding:host_id"] == mine.host
    assert cloud.as_agent(net1, "DELETE", f"/v2.0/ports/{port['id']}").status_code == 204


def test_server_state_only_from_the_servers_host(cloud: Cloud) -> None:
    env = cloud.env
    env.agent("compute1")
    net = env.network()
    sid = env.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    with env.db.read() as conn:
        assert conn.execute(select(tables.servers.c.host).where(tables.servers.c.id == sid)).scalar() == "compute1"
    before = cloud.rows()
    compute2 = peer("compute2", "compute")
    r = cloud.as_agent(compute2, "POST", f"/neutrino/v1/servers/{sid}/state", {"status": "ACTIVE", "host": "compute1"})
    error(r, 403, "AgentNotAuthorized", contains="'compute1'")
    error(
        cloud.as_agent(compute2, "POST", f"/neutrino/v1/servers/{sid}/state", {"status": "ACTIVE"}),
        403,
        "AgentNotAuthorized",
    )
    error(cloud.as_agent(peer("net1", "network"), "GET", "/neutrino/v1/servers"), 403, "AgentNotAuthorized")
    # Its own host named, but not the server's: the server's rules answer 409.
    r = cloud.as_agent(compute2, "POST", f"/neutrino/v1/servers/{sid}/state", {"status": "ACTIVE", "host": "compute2"})
    assert r.status_code == 409, r.text
    assert cloud.rows() == before
    r = cloud.as_agent(
        peer("compute1", "compute"),
        "POST",
        f"/neutrino/v1/servers/{sid}/state",
        {"status": "ACTIVE", "host": "compute1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["server"]["status"] == "ACTIVE"


def test_the_metadata_api_over_tls_serves_the_metadata_agents_certificate_only(cloud: Cloud) -> None:
    secret = cloud.env.cfg.metadata.metadata_proxy_shared_secret
    headers = {"X-Instance-ID": "i-1", "X-Tenant-ID": "p", "X-Instance-ID-Signature": sign_instance_id(secret, "i-1")}
    r = cloud.md.get("/latest/meta-data/", headers=headers)
    assert r.status_code == 401 and CERT_REQUIRED in r.text
    cloud.md_app.peer = peer("compute1", "compute")
    r = cloud.md.get("/latest/meta-data/", headers=headers)
    assert r.status_code == 403 and "Metadata agent" in r.text
    cloud.md_app.peer = peer("net1", "network")
    assert cloud.md.get("/latest/meta-data/", headers=headers).status_code == 404  # no such instance: past the checks
    # Nova's signature is still checked, certificate or not.
    bad = {**headers, "X-Instance-ID-Signature": "0" * 64}
    assert cloud.md.get("/latest/meta-data/", headers=bad).status_code == 403
