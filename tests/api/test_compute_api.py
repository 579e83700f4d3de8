"""The compute API's flavors and key pairs, the image API, and the wiring
(catalog entries, port offsets, availability zones, limits)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from neutrino import config
from neutrino.compute import flavors
from tests.api.compute_helpers import CIRROS, ComputeEnv, fault


@pytest.fixture
def env(api_db_url: str, tmp_path: Path) -> Iterator[ComputeEnv]:
    e = ComputeEnv(api_db_url, tmp_path)
    yield e
    e.close()


def _md5_fingerprint(public_line: str) -> str:
    blob = base64.b64decode(public_line.split()[1])
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())


# --- flavors ------------------------------------------------------------------------------------
def test_default_flavors(env: ComputeEnv) -> None:
    listed = env.ok(env.call("GET", "flavors/detail"))["flavors"]
    by_name = {f["name"]: f for f in listed}
    assert set(by_name) == {n for _, n, *_ in flavors.DEFAULT_FLAVORS}
    nano = by_name["m1.nano"]
    assert (nano["id"], nano["vcpus"], nano["ram"], nano["disk"]) == ("42", 1, 64, 1)
    assert nano["os-flavor-access:is_public"] is True and nano["OS-FLV-EXT-DATA:ephemeral"] == 0
    assert nano["extra_specs"] == {} and nano["description"] is None and nano["swap"] == 0
    old = env.ok(env.call("GET", "flavors/42", mv=None))["flavor"]
    assert old["swap"] == "" and "description" not in old and "extra_specs" not in old
    brief = env.ok(env.call("GET", "flavors"))["flavors"][0]
    assert set(brief) == {"id", "name", "links", "description"}
    assert flavors.seed(env.db) == 0  # seeded once only
    fault(env.call("GET", "flavors/m1.nano"), 404, "itemNotFound")  # by id only (clients then list)


def test_flavor_admin_writes(env: ComputeEnv) -> None:
    body = {
        "flavor": {
            "name": "custom",
            "vcpus": 2,
            "ram": 256,
            "disk": 2,
            "id": None,
            "os-flavor-access:is_public": True,
            "rxtx_factor": 1.0,
            "swap": 0,
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "description": "mine",
        }
    }
    fault(env.call("POST", "flavors", "demo", body), 403, "forbidden", "os-flavor-manage:create")
    made = env.ok(env.call("POST", "flavors", "admin", body))["flavor"]
    assert made["name"] == "custom" and made["description"] == "mine" and len(made["id"]) == 36
    fault(env.call("POST", "flavors", "admin", body), 409, "conflictingRequest", "already exists")
    fault(
        env.call("POST", "flavors", "admin", {"flavor": {"name": "x", "vcpus": 0, "ram": 1, "disk": 1}}),
        400,
        "badRequest",
    )
    fault(
        env.call("POST", "flavors", "admin", {"flavor": {"name": "y", "vcpus": 1, "ram": 1, "disk": 1, "id": "42"}}),
        409,
        "conflictingRequest",
    )
    fid = made["id"]
    specs = env.ok(
        env.call("POST", f"flavors/{fid}/os-extra_specs", "admin", {"extra_specs": {"hw:cpu_policy": "shared"}})
    )
    assert specs == {"extra_specs": {"hw:cpu_policy": "shared"}}
    fault(env.call("POST", f"flavors/{fid}/os-extra_specs", "demo", {"extra_specs": {"a": "b"}}), 403, "forbidden")
    assert env.ok(env.call("GET", f"flavors/{fid}"))["flavor"]["extra_specs"] == {"hw:cpu_policy": "shared"}
    assert env.ok(env.call("GET", f"flavors/{fid}/os-extra_specs/hw:cpu_policy")) == {"hw:cpu_policy": "shared"}
    assert env.call("DELETE", f"flavors/{fid}/os-extra_specs/hw:cpu_policy", "admin").status_code == 202
    assert (
        env.ok(env.call("PUT", f"flavors/{fid}", "admin", {"flavor": {"description": "new"}}))["flavor"]["description"]
        == "new"
    )
    fault(env.call("DELETE", f"flavors/{fid}", "demo"), 403, "forbidden")
    assert env.call("DELETE", f"flavors/{fid}", "admin").status_code == 202
    fault(env.call("GET", f"flavors/{fid}"), 404, "itemNotFound")


def test_private_flavors_are_admin_only(env: ComputeEnv) -> None:
    env.ok(
        env.call(
            "POST",
            "flavors",
            "admin",
            {
                "flavor": {
                    "name": "secret",
                    "vcpus": 1,
                    "ram": 64,
                    "disk": 1,
                    "id": "s1",
                    "os-flavor-access:is_public": False,
                }
            },
        )
    )
    assert "secret" not in {f["name"] for f in env.ok(env.call("GET", "flavors"))["flavors"]}
    fault(env.call("GET", "flavors/s1"), 404, "itemNotFound")
    names = {f["name"] for f in env.ok(env.call("GET", "flavors/detail?is_public=None", "admin"))["flavors"]}
    assert "secret" in names and "m1.nano" in names
    assert [f["name"] for f in env.ok(env.call("GET", "flavors?is_public=false", "admin"))["flavors"]] == ["secret"]
    assert env.ok(env.call("GET", "flavors/s1/os-flavor-access", "admin")) == {"flavor_access": []}


# --- key pairs ------------------------------------------------------------------------------------
def test_keypair_generate(env: ComputeEnv) -> None:
    kp = env.keypair("gen")
    assert kp["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert kp["public_key"].startswith("ssh-rsa ") and kp["type"] == "ssh" and kp["user_id"] == "u-demo"
    assert kp["fingerprint"] == _md5_fingerprint(kp["public_key"])
    key = serialization.load_pem_private_key(kp["private_key"].encode(), None)
    assert key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode() == " ".join(kp["public_key"].split()[:2])
    shown = env.ok(env.call("GET", "os-keypairs/gen"))["keypair"]
    assert "private_key" not in shown and shown["fingerprint"] == kp["fingerprint"]
    assert shown["user_id"] == "u-demo"
    listed = env.ok(env.call("GET", "os-keypairs"))["keypairs"]
    assert listed == [
        {"keypair": {"name": "gen", "public_key": kp["public_key"], "fingerprint": kp["fingerprint"], "type": "ssh"}}
    ]


def test_keypair_import_and_errors(env: ComputeEnv) -> None:
    pub = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + " me@host"
    )
    made = env.ok(env.call("POST", "os-keypairs", json={"keypair": {"name": "imp", "public_key": pub}}), 201)
    kp = made["keypair"]
    assert "private_key" not in kp and kp["public_key"] == pub and kp["fingerprint"] == _md5_fingerprint(pub)
    fault(
        env.call("POST", "os-keypairs", json={"keypair": {"name": "imp", "public_key": pub}}),
        409,
        "conflictingRequest",
        "already exists",
    )
    fault(
        env.call("POST", "os-keypairs", json={"keypair": {"name": "bad", "public_key": "ssh-rsa nope"}}),
        400,
        "badRequest",
        "failed to generate fingerprint",
    )
    fault(env.call("POST", "os-keypairs", json={"keypair": {"name": "a/b"}}), 400, "badRequest", "unsafe")
    fault(env.call("POST", "os-keypairs", json={"keypair": {"name": "t", "type": "dsa"}}), 400, "badRequest")
    x = env.ok(env.call("POST", "os-keypairs", json={"keypair": {"name": "cert", "type": "x509"}}), 201)["keypair"]
    assert x["public_key"].startswith("-----BEGIN CERTIFICATE-----") and len(x["fingerprint"].split(":")) == 20
    # Key pairs are per user.
    assert env.ok(env.call("GET", "os-keypairs", "other"))["keypairs"] == []
    fault(env.call("GET", "os-keypairs/imp", "other"), 404, "itemNotFound")
    fault(env.call("GET", "os-keypairs?user_id=u-demo", "other"), 403, "forbidden")
    assert len(env.ok(env.call("GET", "os-keypairs?user_id=u-demo", "admin"))["keypairs"]) == 2
    # Delete: 204 from 2.2 on, 202 before; the 2.1 create answers 200 without a type.
    assert env.call("DELETE", "os-keypairs/imp").status_code == 204
    old = env.call("POST", "os-keypairs", json={"keypair": {"name": "old", "public_key": pub}}, mv=None)
    assert old.status_code == 200 and "type" not in old.json()["keypair"]
    assert env.call("DELETE", "os-keypairs/old", mv=None).status_code == 202
    fault(env.call("DELETE", "os-keypairs/old"), 404, "itemNotFound")


# --- images ------------------------------------------------------------------------------------------
def test_image_api(env: ComputeEnv) -> None:
    g = env.glance
    root = g.get("/")
    assert root.status_code == 300 and root.json()["versions"][0]["status"] == "CURRENT"
    assert g.get("/versions").status_code == 200
    assert g.get("/v2/images").status_code == 401
    h = {"X-Auth-Token": "demo"}
    body = g.get("/v2/images", headers=h).json()
    assert [i["name"] for i in body["images"]] == ["cirros"] and body["first"] == "/v2/images"
    img = body["images"][0]
    assert img["id"] == CIRROS and img["status"] == "active" and img["visibility"] == "public"
    assert g.get("/v2/images?name=cirros", headers=h).json()["images"][0]["id"] == CIRROS
    assert g.get("/v2/images?name=ubuntu", headers=h).json()["images"] == []
    assert g.get(f"/v2/images/{CIRROS}", headers=h).json()["name"] == "cirros"
    assert g.get("/v2/images/cirros", headers=h).status_code == 404
    page = g.get("/v2/images?limit=0", headers=h).json()
    assert page["images"] == [] and "next" in page
    assert g.post("/v2/images", headers=h, json={"name": "x"}).status_code == 403
    assert g.delete(f"/v2/images/{CIRROS}", headers=h).status_code == 403


# --- wiring ----------------------------------------------------------------------------------------------
def test_catalog_and_port_offset(tmp_path: Path) -> None:
    from neutrino.cli.layout import with_port_offset
    from neutrino.server import catalog_endpoints

    cfg = config.defaults(tmp_path)
    by_type = {stype: url for stype, _, url in catalog_endpoints(cfg)}
    assert by_type["compute"] == "https://127.0.0.1:8774/v2.1" and by_type["image"] == "https://127.0.0.1:9292"
    moved = {stype: url for stype, _, url in catalog_endpoints(with_port_offset(cfg, 100))}
    assert moved["compute"] == "https://127.0.0.1:8874/v2.1" and moved["image"] == "https://127.0.0.1:9392"
    pub = cfg.with_overrides({("identity", "public_host"): "ctl"})
    assert {u for _, _, u in catalog_endpoints(pub)} >= {"https://ctl:8774/v2.1", "https://ctl:9292"}
    plain = cfg.with_overrides({("DEFAULT", "use_ssl"): "false"})  # `neutrino up --no-tls`
    assert {u.split("://")[0] for _, _, u in catalog_endpoints(plain)} == {"http"}


def test_zones_and_limits(env: ComputeEnv) -> None:
    env.agent("cn1")
    assert env.ok(env.call("GET", "os-availability-zone"))["availabilityZoneInfo"] == [
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}
    ]
    detail = env.ok(env.call("GET", "os-availability-zone/detail", "admin"))["availabilityZoneInfo"][0]
    assert list(detail["hosts"]) == ["cn1"]
    env.boot(networks="none")
    absolute = env.ok(env.call("GET", "limits"))["limits"]["absolute"]
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"], absolute["totalRAMUsed"]) == (1, 1, 64)


def test_compute_services(env: ComputeEnv) -> None:
    env.agent("cn1")
    env.agent("cn2", alive=False, up=False)
    services = env.ok(env.call("GET", "os-services", "admin"))["services"]
    assert [(s["binary"], s["host"], s["status"], s["state"]) for s in services] == [
        ("nova-compute", "cn1", "enabled", "up"),
        ("nova-compute", "cn2", "disabled", "down"),
    ]
    assert [s["host"] for s in env.ok(env.call("GET", "os-services?host=cn2", "admin"))["services"]] == ["cn2"]
    fault(env.call("GET", "os-services"), 403, "forbidden")
