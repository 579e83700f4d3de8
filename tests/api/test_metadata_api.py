"""The metadata API (neutrino.metadata.app), in process, over servers booted through the compute API."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from neutrino.db import tables
from neutrino.metadata.app import build_metadata_app, make_token, sign_instance_id
from tests.api.compute_helpers import ComputeEnv

SECRET = "s3cret"


class Env:
    def __init__(self, compute: ComputeEnv, tokens: str = "optional", cache_expiration: str = "15") -> None:
        self.compute = compute
        cfg = compute.cfg.with_overrides(
            {
                ("metadata", "metadata_proxy_shared_secret"): SECRET,
                ("metadata", "http_tokens"): tokens,
                ("metadata", "metadata_cache_expiration"): cache_expiration,
            }
        )
        self.client = TestClient(
            build_metadata_app(cfg, compute.db, compute.compute_api.servers), raise_server_exceptions=False
        )

    def get(self, path: str, sid: str, project: str = "p-demo", method: str = "GET", **headers: str) -> Any:
        h = {
            "X-Instance-ID": sid,
            "X-Tenant-ID": project,
            "X-Instance-ID-Signature": sign_instance_id(SECRET, sid),
            "X-Forwarded-For": "10.0.0.99",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        return self.client.request(method, path, headers=h)


@pytest.fixture
def env(api_db_url: str, tmp_path: Path) -> Iterator[ComputeEnv]:
    e = ComputeEnv(api_db_url, tmp_path)
    yield e
    e.close()


def _boot(env: ComputeEnv) -> tuple[str, dict[str, Any], dict[str, Any]]:
    env.agent("cn1")
    net = env.network(name="private")
    kp = env.keypair("k1")
    sid = env.boot(
        name="vm1",
        networks=[{"uuid": net["id"]}],
        key_name="k1",
        metadata={"role": "web"},
        user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
    )["server"]["id"]
    [port] = env.ports_of(sid)
    return sid, port, kp


def test_headers_signature_and_project(env: ComputeEnv) -> None:
    sid, _, _ = _boot(env)
    md = Env(env)
    c = md.client
    r = c.get("/")
    assert r.status_code == 200 and r.text.split("\n")[-1] == "latest" and r.text.startswith("1.0\n")
    good = {"X-Instance-ID": sid, "X-Tenant-ID": "p-demo", "X-Instance-ID-Signature": sign_instance_id(SECRET, sid)}
    for missing, message in (
        ("X-Instance-ID", "X-Instance-ID header is missing"),
        ("X-Tenant-ID", "X-Tenant-ID header is missing"),
        ("X-Instance-ID-Signature", "X-Instance-ID-Signature header is missing"),
    ):
        r = c.get("/latest/meta-data/", headers={k: v for k, v in good.items() if k != missing})
        assert r.status_code == 400 and message in r.text, r.text
    r = c.get("/latest/meta-data/", headers=[*good.items(), ("X-Tenant-ID", "p-demo")])
    assert r.status_code == 400 and "Multiple X-Tenant-ID" in r.text
    r = c.get("/latest/meta-data/", headers={**good, "X-Instance-ID-Signature": "0" * 64})
    assert r.status_code == 403 and "Invalid proxy request signature." in r.text
    assert md.get("/latest/meta-data/", sid, project="p-other").status_code == 404
    other = "00000000-0000-0000-0000-000000000000"
    assert md.get("/latest/meta-data/", other).status_code == 404
    assert md.get("/latest/meta-data/", "not-a-uuid").status_code == 404
    assert md.get("/latest/meta-data/", sid).status_code == 200


def test_ec2_tree(env: ComputeEnv) -> None:
    sid, port, kp = _boot(env)
    ext = env.network("admin", cidr="172.24.4.0/24", **{"router:external": True})
    fip_port = env.port(ext["id"], "admin")
    with env.db.write() as uow:
        uow.conn.execute(
            insert(tables.floatingips).values(
                id="f0000000-0000-0000-0000-000000000001",
                project_id="p-demo",
                description="",
                created_at="2026-01-01T00:00:00Z",
                updated_at="2026-01-01T00:00:00Z",
                revision_number=0,
                floating_network_id=ext["id"],
                floating_ip_address="172.24.4.77",
                floating_port_id=fip_port["id"],
                fixed_port_id=port["id"],
                fixed_ip_address=port["fixed_ips"][0]["ip_address"],
                router_id=None,
                status="ACTIVE",
            )
        )
    md = Env(env)
    r = md.get("/latest/", sid)
    assert (r.status_code, r.text) == (200, "meta-data/\nuser-data")
    assert r.headers["content-type"].startswith("text/plain")
    listing = md.get("/latest/meta-data", sid).text
    assert listing == md.get("/2009-04-04/meta-data/", sid).text == md.get("/ec2/latest/meta-data/", sid).text
    assert "public-keys/" in listing.split("\n") and not listing.endswith("\n")
    assert md.get("/latest/meta-data/hostname", sid).text == "vm1.novalocal"
    assert md.get("/latest/meta-data/local-ipv4", sid).text == port["fixed_ips"][0]["ip_address"]
    assert md.get("/latest/meta-data/public-ipv4", sid).text == "172.24.4.77"
    assert md.get("/latest/meta-data/instance-type", sid).text == "m1.nano"
    assert md.get("/latest/meta-data/placement/availability-zone", sid).text == "nova"
    assert md.get("/latest/meta-data/public-keys/", sid).text == "0=k1"
    assert md.get("/latest/meta-data/public-keys/0/openssh-key", sid).text == kp["public_key"]
    assert md.get("/latest/meta-data/security-groups", sid).text == "default"
    assert md.get("/latest/meta-data/instance-id", sid).text == f"i-{sid[:8]}"
    assert md.get("/latest/user-data", sid).content == b"#!/bin/sh\necho hi\n"
    for bad in ("/latest/meta-data/nope", "/2010-01-01/meta-data/", "/nope"):
        assert md.get(bad, sid).status_code == 404, bad


def test_openstack_tree(env: ComputeEnv) -> None:
    sid, port, kp = _boot(env)
    md = Env(env)
    versions = md.get("/openstack", sid).text.split("\n")
    assert versions[0] == "2012-08-10" and versions[-1] == "latest"
    assert md.get("/openstack/latest", sid).text == (
        "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
    )
    r = md.get("/openstack/latest/meta_data.json", sid)
    assert r.headers["content-type"] == "application/json"
    meta = r.json()
    assert meta["uuid"] == sid and meta["name"] == "vm1" and meta["hostname"] == "vm1.novalocal"
    assert meta["meta"] == {"role": "web"} and meta["public_keys"] == {"k1": kp["public_key"]}
    assert meta["keys"] == [{"name": "k1", "type": "ssh", "data": kp["public_key"]}]
    assert meta["project_id"] == "p-demo" and meta["availability_zone"] == "nova" and meta["launch_index"] == 0
    r = md.get("/openstack/latest/network_data.json", sid)
    assert r.headers["content-type"].startswith("text/plain")
    nd = json.loads(r.text)
    assert nd["links"][0]["ethernet_mac_address"] == port["mac_address"]
    assert nd["links"][0]["vif_id"] == port["id"] and nd["links"][0]["mtu"] == 1450  # the network's MTU
    assert nd["networks"][0]["type"] == "ipv4_dhcp" and nd["networks"][0]["network_id"] == port["network_id"]
    assert md.get("/openstack/latest/user_data", sid).content == b"#!/bin/sh\necho hi\n"
    assert md.get("/openstack/latest/vendor_data.json", sid).json() == {}
    assert md.get("/openstack/latest/vendor_data2.json", sid).json() == {"static": {}}
    assert md.get("/openstack/latest/password", sid).text == ""
    assert md.get("/openstack/2099-01-01/meta_data.json", sid).status_code == 404


def test_password_and_methods(env: ComputeEnv) -> None:
    sid, _, _ = _boot(env)
    md = Env(env)
    h = {"X-Instance-ID": sid, "X-Tenant-ID": "p-demo", "X-Instance-ID-Signature": sign_instance_id(SECRET, sid)}
    c = md.client
    assert c.post("/openstack/latest/password", content=b"x" * 1021, headers=h).status_code == 400
    assert c.post("/openstack/latest/password", content=b"enc-pass", headers=h).status_code == 200
    assert c.post("/openstack/latest/password", content=b"again", headers=h).status_code == 409
    assert c.get("/openstack/latest/password", headers=h).text == "enc-pass"
    # Stored in the database: another server process (a fresh app) sees it and refuses a second set.
    other = Env(env).client
    assert other.get("/openstack/latest/password", headers=h).text == "enc-pass"
    assert other.post("/openstack/latest/password", content=b"again", headers=h).status_code == 409
    assert c.post("/openstack/2012-08-10/password", content=b"x", headers=h).status_code == 404
    for method, path in (
        ("POST", "/latest/meta-data/"),
        ("DELETE", "/openstack/latest/password"),
        ("PUT", "/latest/meta-data/"),
        ("GET", "/latest/api/token"),
        ("PATCH", "/"),
    ):
        r = c.request(method, path, headers=h)
        assert r.status_code == 405, (method, path)
        assert r.headers["allow"]


def test_imdsv2_tokens(env: ComputeEnv) -> None:
    sid, _, _ = _boot(env)
    other = env.boot(name="vm2", networks="none")["server"]["id"]
    for tokens in ("optional", "required"):
        md = Env(env, tokens)
        # TTL header missing or out of range: 400
        assert md.get("/latest/api/token", sid, method="PUT").status_code == 400
        for ttl in ("0", "21601", "x", "-5"):
            assert (
                md.get(
                    "/latest/api/token", sid, method="PUT", **{"X-aws-ec2-metadata-token-ttl-seconds": ttl}
                ).status_code
                == 400
            )
        r = md.get("/latest/api/token", sid, method="PUT", **{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        assert r.status_code == 200 and r.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "60"
        token = r.text
        ok = md.get("/latest/meta-data/hostname", sid, **{"X-aws-ec2-metadata-token": token})
        assert (ok.status_code, ok.text) == (200, "vm1.novalocal")
        # bound to the instance; forged and expired tokens
        assert md.get("/latest/meta-data/hostname", other, **{"X-aws-ec2-metadata-token": token}).status_code == 401
        forged = token[:-1] + ("1" if token[-1] == "0" else "0")
        assert md.get("/latest/meta-data/hostname", sid, **{"X-aws-ec2-metadata-token": forged}).status_code == 401
        assert md.get("/latest/meta-data/hostname", sid, **{"X-aws-ec2-metadata-token": "junk"}).status_code == 401
        expired = make_token(SECRET, sid, 1000)
        assert md.get("/latest/meta-data/hostname", sid, **{"X-aws-ec2-metadata-token": expired}).status_code == 401
        bare = md.get("/latest/meta-data/hostname", sid).status_code
        assert bare == (200 if tokens == "optional" else 401)
        assert md.get("/openstack/latest/meta_data.json", sid).status_code == bare
        assert md.client.get("/").status_code == 200  # the version list needs nothing


def test_answers_from_the_cache_stay_per_instance_and_project(env: ComputeEnv) -> None:
    """Served from memory after the first load, an answer still needs the right project; the
    rendered answers are per instance and per address; meta_data.json is never replayed."""
    sid, port, _ = _boot(env)
    bare = env.boot(name="vm2", networks="none")["server"]["id"]  # no fixed IP: local-ipv4 = address
    md = Env(env)
    assert md.get("/latest/meta-data/instance-id", sid).text == f"i-{sid[:8]}"
    assert md.get("/latest/meta-data/instance-id", sid, project="p-other").status_code == 404
    assert md.get("/latest/meta-data/instance-id", bare).text == f"i-{bare[:8]}"
    assert md.get("/latest/meta-data/local-ipv4", bare, X_Forwarded_For="10.9.0.1").text == "10.9.0.1"
    assert md.get("/latest/meta-data/local-ipv4", bare, X_Forwarded_For="10.9.0.2").text == "10.9.0.2"
    assert md.get("/latest/meta-data/local-ipv4", sid).text == port["fixed_ips"][0]["ip_address"]
    seeds = {md.get("/openstack/latest/meta_data.json", sid).json()["random_seed"] for _ in range(3)}
    assert len(seeds) == 3
    # a password set through the API shows at once (the cache entry is dropped)
    h = {"X-Instance-ID": sid, "X-Tenant-ID": "p-demo", "X-Instance-ID-Signature": sign_instance_id(SECRET, sid)}
    assert md.client.get("/openstack/latest/password", headers=h).text == ""
    assert md.client.post("/openstack/latest/password", content=b"pw", headers=h).status_code == 200
    assert md.client.get("/openstack/latest/password", headers=h).text == "pw"


def test_cache_control_tells_the_agent_what_it_may_replay(env: ComputeEnv) -> None:
    sid, _, _ = _boot(env)
    md = Env(env)
    first = md.get("/latest/meta-data/instance-id", sid).headers["cache-control"]
    assert first.startswith("max-age=") and 1 <= int(first.split("=")[1]) <= 15  # the entry's remaining life
    for path in ("/openstack/latest/meta_data.json", "/openstack/latest/password"):
        assert md.get(path, sid).headers["cache-control"] == "no-store"
    assert "cache-control" not in md.get("/nope", sid).headers
    off = Env(env, cache_expiration="0")
    assert off.get("/latest/meta-data/instance-id", sid).headers["cache-control"] == "no-store"


def test_network_data_mtu_and_dns_from_the_network_and_subnets(env: ComputeEnv) -> None:
    """``network_data.json``: the link's MTU is the network's (also after an update), the DNS
    services are the subnets' ``dns_nameservers`` (top level and per static network)."""
    env.agent("cn1")
    net = env.network(name="dns-net", cidr="", mtu=1400)
    env.ok(
        env.neutron(
            "POST",
            "/v2.0/subnets",
            "demo",
            {
                "subnet": {
                    "network_id": net["id"],
                    "cidr": "10.9.0.0/24",
                    "ip_version": 4,
                    "dns_nameservers": ["10.9.0.53", "9.9.9.9"],
                }
            },
        ),
        201,
    )
    env.ok(
        env.neutron(
            "POST",
            "/v2.0/subnets",
            "demo",
            {
                "subnet": {
                    "network_id": net["id"],
                    "cidr": "fd09::/64",
                    "ip_version": 6,
                    "dns_nameservers": ["fd09::53"],
                }
            },
        ),
        201,
    )
    sid = env.boot(name="vm-dns", networks=[{"uuid": net["id"]}])["server"]["id"]
    md = Env(env, cache_expiration="0")
    nd = json.loads(md.get("/openstack/latest/network_data.json", sid).text)
    assert [link["mtu"] for link in nd["links"]] == [1400]
    assert nd["services"] == [{"type": "dns", "address": a} for a in ("10.9.0.53", "9.9.9.9", "fd09::53")]
    [v4, v6] = nd["networks"]
    assert v4["type"] == "ipv4_dhcp" and "services" not in v4
    assert v6["type"] == "ipv6" and v6["services"] == [{"type": "dns", "address": "fd09::53"}]
    env.ok(env.neutron("PUT", f"/v2.0/networks/{net['id']}", "demo", {"network": {"mtu": 1300}}))
    nd = json.loads(md.get("/openstack/latest/network_data.json", sid).text)
    assert [link["mtu"] for link in nd["links"]] == [1300]
