"""Cross-project checks for the compute side (issue 13, "keep it closed"): demo's
server and key pair read, changed and named by another project's member
(``other``) and reader (``other-reader``), changed by demo's own reader, and
the metadata API's refusal of requests that are not signed for the instance.

Nova's behaviour: another project's server is ``itemNotFound`` (404) for
every call, and absent from every list; key pairs are per user (404 for
anyone else, 403 for ``?user_id=`` without admin); a boot that names
another project's port, network, security group or key pair is a 400 that
creates nothing.  A port naming another project's server as its device is
refused (finding 2: ``DeviceIDNotOwnedByTenant``).

One environment (the fixture ``compute_env``'s ``ComputeEnv``, built once per
module) holds demo's objects; every check is a request that must fail and
change nothing (all tables, the change feed included).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select

from neutrino.db import tables
from neutrino.metadata.app import build_metadata_app, make_token, sign_instance_id
from tests.api.compute_helpers import CIRROS, ComputeEnv, fault
from tests.api.conftest import error
from tests.security.test_cross_project import Unchanged, _fill

STRANGERS = ("other", "other-reader")
SECRET = "cross-project-secret"
USER_DATA = b"#!/bin/sh\necho demo-secret-user-data\n"


@dataclass
class World:
    env: ComputeEnv
    ids: dict[str, str] = field(default_factory=dict)
    md: Any = None  # a TestClient of the metadata API


def _build(env: ComputeEnv) -> World:
    w = World(env)
    env.agent("cn1")
    net = env.network("demo", cidr="10.0.0.0/24", name="demo-net")
    shared = env.network("admin", cidr="10.1.0.0/24", name="demo-shared", project_id="p-demo", shared=True)
    w.ids.update(net=net["id"], shared_net=shared["id"])
    pub = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + " demo@host"
    )
    env.ok(env.call("POST", "os-keypairs", "demo", {"keypair": {"name": "demo-key", "public_key": pub}}), 201)
    sg = env.ok(env.neutron("POST", "/v2.0/security-groups", "demo", {"security_group": {"name": "demo-sg"}}), 201)[
        "security_group"
    ]
    w.ids["sg"] = sg["id"]
    server = env.boot(
        "demo",
        name="demo-vm",
        networks=[{"uuid": net["id"]}],
        key_name="demo-key",
        metadata={"role": "web"},
        user_data=base64.b64encode(USER_DATA).decode(),
    )["server"]
    w.ids["server"] = server["id"]
    [w.ids["server_port"]] = [p["id"] for p in env.ports_of(server["id"])]
    w.ids["free_port"] = env.port(net["id"], "demo", name="demo-free-port")["id"]
    onet = env.network("other", cidr="10.2.0.0/24", name="other-net")
    w.ids["o_net"] = onet["id"]
    w.ids["o_port"] = env.port(onet["id"], "other", name="other-port")["id"]
    w.ids["o_server"] = env.boot("other", name="other-vm", networks="none")["server"]["id"]
    cfg = env.cfg.with_overrides({("metadata", "metadata_proxy_shared_secret"): SECRET})
    from starlette.testclient import TestClient

    w.md = TestClient(build_metadata_app(cfg, env.db, env.compute_api.servers), raise_server_exceptions=False)
    return w


@pytest.fixture(scope="module")
def world(api_databases: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``compute_env`` (tests/security/conftest.py), once for the module: every test here uses only this."""
    tmp: Path = tmp_path_factory.mktemp("cross-project-compute")
    env = ComputeEnv(api_databases.clone(tmp), tmp)
    try:
        yield _build(env)
    finally:
        env.close()


def _server_ids(env: ComputeEnv, who: str, query: str) -> Iterator[str]:
    for path in ("servers", "servers/detail"):
        body = env.ok(env.call("GET", f"{path}{'?' + query if query else ''}", who))
        yield from (s["id"] for s in body["servers"])


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", STRANGERS)
def test_server_is_hidden(world: World, who: str) -> None:
    env, sid = world.env, world.ids["server"]
    fault(env.call("GET", f"servers/{sid}", who), 404, "itemNotFound")
    fault(env.call("GET", f"servers/{sid}/metadata", who), 404, "itemNotFound")
    fault(env.call("GET", f"servers/{sid}/metadata/role", who), 404, "itemNotFound")
    # Console output and other actions: the server is looked up first.
    fault(env.call("POST", f"servers/{sid}/action", who, {"os-getConsoleOutput": {}}), 404, "itemNotFound")
    for query in (
        "",
        "name=demo-vm",
        f"uuid={sid}",
        "project_id=p-demo",
        "tenant_id=p-demo",
        "key_name=demo-key",
        "ip=10.0.0",
        "limit=1000",
        "status=BUILD",
    ):
        assert sid not in set(_server_ids(env, who, query)), query
    fault(env.call("GET", "servers?all_tenants=1", who), 403, "forbidden")
    # Through the network API: its port is demo's, and the agents' server API is admin/service only.
    assert env.ok(env.neutron("GET", f"/v2.0/ports?device_id={sid}", who))["ports"] == []
    error(env.neutron("GET", f"/v2.0/ports/{world.ids['server_port']}", who), 404, "PortNotFound")
    error(env.neutron("GET", f"/neutrino/v1/servers/{sid}", who), 403, "PolicyNotAuthorized")
    error(env.neutron("GET", "/neutrino/v1/servers", who), 403, "PolicyNotAuthorized")


@pytest.mark.parametrize("who", STRANGERS)
def test_server_cannot_be_changed(world: World, who: str) -> None:
    env, sid = world.env, world.ids["server"]
    with Unchanged(env.db):
        for method, path, body in (
            ("PUT", f"servers/{sid}", {"server": {"name": "x"}}),
            ("DELETE", f"servers/{sid}", None),
            ("POST", f"servers/{sid}/metadata", {"metadata": {"x": "1"}}),
            ("PUT", f"servers/{sid}/metadata", {"metadata": {"x": "1"}}),
            ("PUT", f"servers/{sid}/metadata/role", {"meta": {"role": "x"}}),
            ("DELETE", f"servers/{sid}/metadata/role", None),
            ("POST", f"servers/{sid}/action", {"os-stop": None}),
        ):
            fault(env.call(method, path, who, body), 404, "itemNotFound")
        error(
            env.neutron("POST", f"/neutrino/v1/servers/{sid}/state", who, {"status": "ERROR"}),
            403,
            "PolicyNotAuthorized",
        )


def test_own_reader_cannot_change_server(world: World) -> None:
    env, sid = world.env, world.ids["server"]
    assert env.show(sid, "reader")["id"] == sid
    with Unchanged(env.db):
        for method, path, body in (
            ("PUT", f"servers/{sid}", {"server": {"name": "x"}}),
            ("DELETE", f"servers/{sid}", None),
            ("POST", f"servers/{sid}/metadata", {"metadata": {"x": "1"}}),
            ("DELETE", f"servers/{sid}/metadata/role", None),
        ):
            fault(env.call(method, path, "reader", body), 403, "forbidden")
        fault(
            env.call(
                "POST",
                "servers",
                "reader",
                {"server": {"name": "r", "imageRef": CIRROS, "flavorRef": "42", "networks": "none"}},
            ),
            403,
            "forbidden",
        )


# --------------------------------------------------------------------------------------------
# key pairs (per user)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", (*STRANGERS, "reader"))
def test_keypair_is_per_user(world: World, who: str) -> None:
    """Nobody but demo's user sees or deletes demo's key pair, not even demo's project's reader."""
    env = world.env
    assert "demo-key" not in {k["keypair"]["name"] for k in env.ok(env.call("GET", "os-keypairs", who))["keypairs"]}
    fault(env.call("GET", "os-keypairs/demo-key", who), 404, "itemNotFound")
    with Unchanged(env.db):
        fault(env.call("DELETE", "os-keypairs/demo-key", who), 404, "itemNotFound")
        fault(env.call("DELETE", "os-keypairs/demo-key?user_id=u-demo", who), 403, "forbidden")
    fault(env.call("GET", "os-keypairs?user_id=u-demo", who), 403, "forbidden")
    fault(env.call("GET", "os-keypairs/demo-key?user_id=u-demo", who), 403, "forbidden")


# --------------------------------------------------------------------------------------------
# boots and ports that name demo's objects
# --------------------------------------------------------------------------------------------
BOOTS = [
    pytest.param({"key_name": "demo-key", "networks": "none"}, 400, "Invalid key_name provided.", id="key-name"),
    pytest.param({"networks": [{"port": "{free_port}"}]}, 400, "could not be found", id="free-port"),
    pytest.param({"networks": [{"port": "{server_port}"}]}, 400, "could not be found", id="port-in-use"),
    pytest.param({"networks": [{"uuid": "{net}"}]}, 400, "could not be found", id="private-network"),
    pytest.param(
        {"networks": [{"uuid": "{o_net}"}], "security_groups": [{"name": "{sg}"}]},
        400,
        "not found",
        id="security-group-by-id",
    ),
    pytest.param(
        {"networks": [{"uuid": "{o_net}"}], "security_groups": [{"name": "demo-sg"}]},
        400,
        "not found",
        id="security-group-by-name",
    ),
    # finding 4: the port policy of the caller applies (a fixed IP on a shared network it does not own)
    pytest.param(
        {"networks": [{"uuid": "{shared_net}", "fixed_ip": "10.1.0.77"}]}, 403, None, id="fixed-ip-on-shared-network"
    ),
]


@pytest.mark.parametrize(("server", "status", "message"), BOOTS)
def test_boot_naming_demo_objects_fails(world: World, server: dict[str, Any], status: int, message: str | None) -> None:
    env = world.env
    with Unchanged(env.db):
        resp = env.call(
            "POST",
            "servers",
            "other",
            {"server": {"name": "intruder", "imageRef": CIRROS, "flavorRef": "42", **_fill(server, world.ids)}},
        )
        fault(resp, status, {400: "badRequest", 403: "forbidden"}[status], message)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param(
            "POST",
            "/v2.0/ports",
            {"port": {"network_id": "{o_net}", "device_owner": "compute:nova", "device_id": "{server}"}},
            id="new-port-on-own-network",
        ),
        pytest.param(
            "POST",
            "/v2.0/ports",
            {"port": {"network_id": "{shared_net}", "device_owner": "compute:nova", "device_id": "{server}"}},
            id="new-port-on-shared-network",
        ),
        pytest.param(
            "PUT",
            "/v2.0/ports/{o_port}",
            {"port": {"device_owner": "compute:nova", "device_id": "{server}"}},
            id="own-port-updated",
        ),
    ],
)
def test_port_cannot_join_demo_server(world: World, method: str, path: str, body: Any) -> None:
    """finding 2: a port of another project naming demo's server as its device is refused, and the
    server's addresses and network_data.json stay as they were."""
    env, sid = world.env, world.ids["server"]
    addresses = env.show(sid)["addresses"]
    with Unchanged(env.db):
        error(
            env.neutron(method, _fill(path, world.ids), "other", _fill(body, world.ids)),
            409,
            "DeviceIDNotOwnedByTenant",
        )
    assert env.show(sid)["addresses"] == addresses


# --------------------------------------------------------------------------------------------
# the metadata API: only a request signed for the instance (and its project) gets its data
# --------------------------------------------------------------------------------------------
def _md(
    world: World, path: str, instance: str, signature: str, tenant: str = "p-demo", method: str = "GET", **extra: str
) -> Any:
    headers = {
        "X-Instance-ID": instance,
        "X-Tenant-ID": tenant,
        "X-Instance-ID-Signature": signature,
        "X-Forwarded-For": "10.0.0.99",
        **extra,
    }
    return world.md.request(method, path, headers=headers)


def test_metadata_needs_the_instance_signature(world: World) -> None:
    sid, theirs = world.ids["server"], world.ids["o_server"]
    good = sign_instance_id(SECRET, sid)
    assert _md(world, "/openstack/latest/user_data", sid, good).content == USER_DATA  # the control
    refused = [
        (403, sign_instance_id(SECRET, theirs), "p-demo"),  # another instance's signature
        (403, sign_instance_id("guessed", sid), "p-demo"),  # a signature with another secret
        (403, "0" * 64, "p-demo"),
        (403, good.upper(), "p-demo"),
        (403, good[:-1], "p-demo"),
        (404, good, "p-other"),  # signed, but not the server's project
    ]
    for status, signature, tenant in refused:
        for path in (
            "/openstack/latest/user_data",
            "/openstack/latest/meta_data.json",
            "/latest/meta-data/public-keys/0/openssh-key",
            "/openstack/latest/password",
        ):
            r = _md(world, path, sid, signature, tenant)
            assert r.status_code == status, (path, signature, tenant, r.status_code)
            assert b"demo-secret" not in r.content and b"demo@host" not in r.content and b"demo-vm" not in r.content
    # other's own signed request naming demo's instance only through the project header: 404.
    assert _md(world, "/latest/meta-data/", theirs, sign_instance_id(SECRET, theirs), "p-demo").status_code == 404


def test_metadata_token_and_password_of_another_instance(world: World) -> None:
    sid, theirs = world.ids["server"], world.ids["o_server"]
    good = sign_instance_id(SECRET, sid)
    foreign_token = make_token(SECRET, theirs, int(time.time()) + 600)
    r = _md(world, "/openstack/latest/user_data", sid, good, **{"X-aws-ec2-metadata-token": foreign_token})
    assert r.status_code == 401 and USER_DATA not in r.content
    with Unchanged(world.env.db):
        r = _md(world, "/openstack/latest/password", sid, sign_instance_id(SECRET, theirs), method="POST")
        assert r.status_code == 403
        r = _md(world, "/openstack/latest/password", sid, good, tenant="p-other", method="POST")
        assert r.status_code == 404
    with world.env.db.read() as conn:
        assert conn.execute(select(tables.servers.c.admin_password).where(tables.servers.c.id == sid)).scalar() is None
