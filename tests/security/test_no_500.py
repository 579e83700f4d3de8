"""Issue 13, finding 10: inputs that answered 500 now answer 400.

* a quota of ``1e30`` (and anything beyond the 32-bit column);
* ``POST /neutrino/v1/servers/<id>/state`` with ``{"status": []}``;
* a VXLAN (or Geneve) network with segmentation id -1 (or past 2^24-1, which the wire cannot carry);
* NUL characters in any string (PostgreSQL cannot store them in text): names,
  descriptions, tags, filters, and the compute and identity APIs' fields;
* a filter on an integer column that is not an integer (``?revision_number=abc``),
  or one the column cannot hold.

The security tier runs again on PostgreSQL, where the NUL and filter cases
were 500s (on SQLite they were stored or silently matched nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from neutrino import config
from neutrino import request_limits as limits
from neutrino.db import tables
from neutrino.db.engine import Database
from neutrino.identity.app import build_identity_app
from neutrino.identity.tokens import TokenProvider
from neutrino.resources import definitions, query
from neutrino.resources.resource import Resource
from tests.api.compute_helpers import ComputeEnv, fault
from tests.api.conftest import error


# --- quotas -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1e30, 2**31, 10**30, "1e30"])
def test_quota_too_large_is_400(api, value):
    before = api.snapshot()
    err = error(api.put("quotas/p-demo", {"quota": {"network": value}}), 400, "HTTPBadRequest")
    assert err["message"].startswith("Invalid input for network. Reason: ")
    assert api.snapshot() == before


def test_quota_overflowing_float_is_400(api):
    resp = api.req(
        "PUT", "quotas/p-demo", content=b'{"quota": {"network": 1e400}}', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400, resp.text


def test_quota_at_the_column_bound_is_stored(api):
    out = api.ok(api.put("quotas/p-demo", {"quota": {"network": 2**31 - 1}}))
    assert out["quota"]["network"] == 2**31 - 1


# --- server state reports -------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [[], {}, 5, None, ["ACTIVE"]])
def test_server_state_with_a_non_string_status_is_400(compute_env: ComputeEnv, status: Any) -> None:
    env = compute_env
    env.agent("cn1")
    sid = env.boot(networks=[{"uuid": env.network()["id"]}])["server"]["id"]
    r = env.report(sid, {"status": status, "host": "cn1"})
    assert r.status_code == 400, r.text
    assert r.json()["NeutronError"]["type"] == "HTTPBadRequest"


# --- provider segments ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ntype,seg_id", [("vxlan", -1), ("vxlan", 2**24), ("vxlan", 10**12), ("geneve", -1), ("geneve", 2**24)]
)
def test_tunnel_segmentation_id_out_of_range_is_400(api, ntype, seg_id):
    before = api.snapshot()
    err = error(
        api.post("networks", {"network": {"provider:network_type": ntype, "provider:segmentation_id": seg_id}}),
        400,
        "InvalidInput",
    )
    assert "segmentation_id out of range (0 through 16777215)" in err["message"]
    assert api.snapshot() == before


@pytest.mark.parametrize("ntype", ["vxlan", "geneve"])
def test_tunnel_segmentation_id_bounds_are_accepted(api, ntype):
    for seg_id in (0, 1, 2**24 - 1):
        net = api.network(**{"provider:network_type": ntype, "provider:segmentation_id": seg_id})
        assert net["provider:segmentation_id"] == seg_id


# --- NUL characters: the network API ------------------------------------------------------------------------
def _nul_bodies(api) -> list[tuple[str, dict[str, Any]]]:
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], "10.0.0.0/24", as_="demo")
    return [
        ("networks", {"network": {"name": "a\x00b"}}),
        ("networks", {"network": {"description": "\x00"}}),
        ("subnets", {"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/24", "ip_version": 4, "name": "s\x00"}}),
        ("ports", {"port": {"network_id": net["id"], "name": "p\x00"}}),
        ("ports", {"port": {"network_id": net["id"], "device_id": "\x00"}}),
        ("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1\x00"}]}}),
        ("routers", {"router": {"name": "r\x00"}}),
        ("security-groups", {"security_group": {"name": "g\x00"}}),
        (
            "subnets",
            {
                "subnet": {
                    "network_id": net["id"],
                    "cidr": "10.2.0.0/24",
                    "ip_version": 4,
                    "dns_nameservers": ["8.8.8.8\x00"],
                }
            },
        ),
        (f"subnets/{sub['id']}", {"subnet": {"name": "\x00"}}),
    ]


def test_nul_in_network_api_strings_is_400(api):
    bodies = _nul_bodies(api)
    before = api.snapshot()
    for path, body in bodies:
        resp = api.put(path, body, "demo") if "/" in path else api.post(path, body, "demo")
        assert resp.status_code == 400, (path, body, resp.status_code, resp.text)
        assert set(resp.json()) == {"NeutronError"}
    assert api.snapshot() == before


def test_nul_in_tags_is_400(api):
    net = api.network(as_="demo")
    before = api.snapshot()
    assert api.put(f"networks/{net['id']}/tags", {"tags": ["a\x00"]}, "demo").status_code == 400
    assert api.put(f"networks/{net['id']}/tags/a%00b", None, "demo").status_code == 400
    assert api.snapshot() == before


@pytest.mark.parametrize(
    "params",
    [
        {"name": "a\x00b"},
        {"id": "\x00"},
        {"tags": "x\x00"},
        {"marker": "\x00"},
        {"fields": "na\x00me"},
        {"sort_key": "\x00", "sort_dir": "asc"},
        {"n\x00": "1"},
    ],
)
def test_nul_in_a_list_query_is_400(api, params):
    resp = api.get("networks", "demo", params=params)
    assert resp.status_code == 400, resp.text


# --- NUL characters: the compute API ---------------------------------------------------------------------------
def test_nul_in_compute_strings_is_400(compute_env: ComputeEnv) -> None:
    env = compute_env
    env.agent("cn1")
    net = env.network()
    before = env.changes()
    for server in (
        {"name": "vm\x00"},
        {"metadata": {"k": "v\x00"}},
        {"metadata": {"k\x00": "v"}},
        {"description": "\x00"},
        {"tags": ["t\x00"]},
    ):
        r = env.call(
            "POST",
            "servers",
            "demo",
            {"server": {"name": "vm", "imageRef": "x", "flavorRef": "42", "networks": [{"uuid": net["id"]}], **server}},
        )
        fault(r, 400, "badRequest", limits.NUL_REFUSED)
    fault(
        env.call("POST", "os-keypairs", "demo", {"keypair": {"name": "k", "public_key": "ssh-rsa A\x00"}}),
        400,
        "badRequest",
    )
    fault(env.call("GET", "servers?name=a%00b", "demo"), 400, "badRequest", limits.NUL_REFUSED)
    assert env.changes() == before


# --- NUL characters: the identity API ----------------------------------------------------------------------------
@pytest.fixture
def identity(tmp_path: Path, api_db_url: str):
    cfg = config.defaults(tmp_path)
    db = Database(api_db_url)
    tokens = TokenProvider(tmp_path / "keys", db)
    client = TestClient(build_identity_app(cfg, db, tokens, []), raise_server_exceptions=False)
    admin = tokens.issue("u-adm", "admin", "p-adm", "admin", ["admin"], 3600)[0]
    yield client, admin
    client.close()
    db.dispose()


def test_nul_in_identity_strings_is_400(identity):
    client, admin = identity
    h = {"X-Auth-Token": admin}
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "ad\x00min", "domain": {"id": "default"}, "password": "x"}},
            }
        }
    }
    for method, path, body in (
        ("POST", "/v3/auth/tokens", auth),
        ("POST", "/v3/users", {"user": {"name": "u\x00", "password": "p"}}),
        ("POST", "/v3/projects", {"project": {"name": "p", "description": "\x00"}}),
        ("GET", "/v3/users?name=a%00", None),
        ("GET", "/v3/users/a%00b", None),
    ):
        r = client.request(method, path, content=orjson.dumps(body) if body else None, headers=h)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == 400


# --- filters on integer columns ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [{"revision_number": "abc"}, {"revision_number": ""}, {"mtu": "x"}, {"ip_version": "four"}, {"shared": ""}],
)
def test_filter_that_is_not_an_integer_is_400(api, params):
    error(api.get("networks" if "ip_version" not in params else "subnets", "demo", params=params), 400, "InvalidInput")


@pytest.mark.parametrize(
    "coll,params",
    [
        ("networks", {"revision_number": str(10**20)}),
        ("networks", {"mtu": str(2**40)}),
        ("networks", {"mtu": "-5"}),
        ("subnets", {"ip_version": "7"}),
        ("security-group-rules", {"port_range_min": str(2**31)}),
    ],
)
def test_filter_value_the_column_cannot_hold_matches_nothing(api, coll, params):
    net = api.network(as_="demo")
    api.subnet(net["id"], "10.0.0.0/24", as_="demo")
    listing = api.ok(api.get(coll, "demo", params=params))
    assert list(listing.values()) == [[]], listing


def test_integer_filter_still_matches(api):
    net = api.network(as_="demo")
    got = api.ok(api.get("networks", "demo", params={"revision_number": str(net["revision_number"])}))
    assert [n["id"] for n in got["networks"]] == [net["id"]]
    got = api.ok(api.get("networks", "demo", params={"revision_number": [str(net["revision_number"]), str(10**20)]}))
    assert [n["id"] for n in got["networks"]] == [net["id"]]
    got = api.ok(api.get("networks", "demo", params={"mtu": str(net["mtu"])}))
    assert [n["id"] for n in got["networks"]] == [net["id"]]


def test_integer_filters_cover_the_integer_columns():
    """Every filterable attribute stored in an integer column is an integer filter (query.INTEGER_FILTERS)."""
    missing = []
    for res in vars(definitions).values():
        if not isinstance(res, Resource):
            continue
        table = tables.metadata.tables.get(res.collection.replace("-", "_"))
        for attr in res.attrs:
            if not (attr.filter and attr.column and table is not None and attr.column in table.c):
                continue
            col = table.c[attr.column]
            if isinstance(col.type, sa.Integer) and not isinstance(col.type, sa.Boolean):
                bits = 64 if isinstance(col.type, sa.BigInteger) else 32
                if query.INTEGER_FILTERS.get(attr.name) != bits:
                    missing.append((res.collection, attr.name, bits))
    assert not missing, missing


def test_nul_in_a_network_api_path_is_400(api):
    """Also without neutrino.request_limits.RequestGuard in front (in-process apps, the fuzzer)."""
    for path in ("networks/a%00b", "ports/%00", "security-groups/x%00/tags"):
        error(api.get(path, "demo"), 400, "HTTPBadRequest", "NUL characters are not allowed in a request.")
