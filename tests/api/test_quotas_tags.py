"""Quotas (reference §7.7) and the tags sub-API (§2.8), with tag filters (§2.4)."""

from __future__ import annotations

import pytest

from tests.api.conftest import error

DEFAULTS = {
    "network": 100,
    "subnet": 100,
    "subnetpool": -1,
    "port": 500,
    "router_route": 30,
    "router": 10,
    "floatingip": 50,
    "rbac_policy": 10,
    "security_group": 10,
    "security_group_rule": 100,
}


# --- quotas ------------------------------------------------------------------------------------------
def test_show_own_quota_as_member(api):
    assert api.ok(api.get("quotas/p-demo", as_="demo")) == {"quota": DEFAULTS}
    assert api.ok(api.get("quotas/p-demo/default", as_="demo")) == {"quota": DEFAULTS}
    assert api.ok(api.get("quotas/p-demo", as_="reader")) == {"quota": DEFAULTS}


def test_other_projects_quota_is_forbidden(api):
    error(api.get("quotas/p-other", as_="demo"), 403, "PolicyNotAuthorized", "rule:get_quota is disallowed by policy")
    error(
        api.put("quotas/p-demo", {"quota": {"network": 1}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "rule:update_quota is disallowed by policy",
    )
    error(
        api.delete("quotas/p-demo", as_="demo"), 403, "PolicyNotAuthorized", "rule:delete_quota is disallowed by policy"
    )
    assert api.ok(api.get("quotas/p-other")) == {"quota": DEFAULTS}  # admin


def test_quotas_from_config(make_api):
    api = make_api({("quotas", "quota_network"): "3", ("quotas", "quota_port"): "-1"})
    q = api.ok(api.get("quotas/p-demo", as_="demo"))["quota"]
    assert q == dict(DEFAULTS, network=3, port=-1)


def test_update_list_and_delete(api):
    q = api.ok(api.put("quotas/p-demo", {"quota": {"network": 2, "port": "7"}}))["quota"]
    assert q == dict(DEFAULTS, network=2, port=7)
    assert api.ok(api.get("quotas/p-demo", as_="demo"))["quota"] == q
    assert api.ok(api.get("quotas/p-demo/default", as_="demo"))["quota"] == DEFAULTS
    assert api.ok(api.get("quotas")) == {"quotas": [dict(q, project_id="p-demo", tenant_id="p-demo")]}
    assert api.ok(api.get("quotas", as_="other")) == {"quotas": []}
    api.ok(api.delete("quotas/p-demo"), 204)
    assert api.ok(api.get("quotas/p-demo"))["quota"] == DEFAULTS
    assert api.ok(api.get("quotas")) == {"quotas": []}


def test_update_validation(api):
    before = api.snapshot()
    error(api.put("quotas/p-demo", {"quota": {"foo": 1}}), 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo'")
    error(
        api.put("quotas/p-demo", {"quota": {"network": "x"}}),
        400,
        "HTTPBadRequest",
        "Invalid input for network. Reason: 'x' is not an integer.",
    )
    error(api.put("quotas/p-demo", {"quota": {"network": -2}}), 400, "HTTPBadRequest")
    error(api.put("quotas/p-demo", {"network": 1}), 400, "HTTPBadRequest", "Unable to find 'quota' in request body")
    assert api.snapshot() == before


def test_enforcement_and_limit_below_usage(api):
    api.ok(api.put("quotas/p-demo", {"quota": {"network": 2}}))
    api.network(as_="demo")
    api.network(as_="demo")
    before = api.snapshot()
    error(
        api.post("networks", {"network": {}}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['network'].",
    )
    assert api.snapshot() == before
    error(
        api.put("quotas/p-demo", {"quota": {"network": 1}}),
        400,
        "HTTPBadRequest",
        "Quota limit 1 for network must be greater than or equal to already used 2",
    )
    assert api.snapshot() == before
    assert api.ok(api.put("quotas/p-demo", {"quota": {"network": 1, "force": True}}))["quota"]["network"] == 1
    assert api.ok(api.put("quotas/p-demo", {"quota": {"network": 5, "check_limit": True}}))["quota"]["network"] == 5
    api.ok(api.put("quotas/p-demo", {"quota": {"network": 0, "force": True}}))
    error(api.post("networks", {"network": {}}, as_="demo"), 409, "OverQuota")
    api.ok(api.put("quotas/p-demo", {"quota": {"network": -1}}))
    api.network(as_="demo")


def test_bulk_counts_the_whole_batch(api):
    api.ok(api.put("quotas/p-demo", {"quota": {"network": 2}}))
    before = api.snapshot()
    error(
        api.post("networks", {"networks": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}, as_="demo"), 409, "OverQuota"
    )
    assert api.snapshot() == before


def test_details(api):
    net, _ = api.net_with_subnet()
    api.port(net["id"], as_="demo")
    d = api.ok(api.get("quotas/p-demo/details", as_="demo"))["quota"]
    assert set(d) == set(DEFAULTS)
    assert d["network"] == {"limit": 100, "used": 1, "reserved": 0}
    assert d["subnet"]["used"] == 1 and d["port"]["used"] == 1
    assert d["security_group"]["used"] == 1 and d["security_group_rule"]["used"] == 4
    assert api.ok(api.get("quotas/p-demo/details.json", as_="demo"))["quota"] == d
    error(api.get("quotas/p-other/details", as_="demo"), 403, "PolicyNotAuthorized")


def test_quota_tenant(api):
    assert api.ok(api.get("quotas/tenant", as_="demo")) == {"tenant": {"tenant_id": "p-demo"}}


def test_quota_methods(api):
    assert api.req("POST", "quotas", json={}).status_code == 405
    assert api.req("POST", "quotas/p-demo", json={}).status_code == 405


# --- tags --------------------------------------------------------------------------------------------
@pytest.fixture
def tagged(api):
    net, sub = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    sg = api.sg(as_="demo", name="web")
    return {"networks": net, "subnets": sub, "ports": port, "security-groups": sg}


@pytest.mark.parametrize(
    "coll,key",
    [("networks", "network"), ("subnets", "subnet"), ("ports", "port"), ("security-groups", "security_group")],
)
def test_tags_lifecycle(api, tagged, coll, key):
    obj = tagged[coll]
    base = f"{coll}/{obj['id']}/tags"
    assert api.ok(api.get(base, as_="demo")) == {"tags": []}
    assert api.ok(api.put(base, {"tags": ["b", "a", "b"]}, as_="demo")) == {"tags": ["a", "b"]}
    assert api.ok(api.post(base, {"tags": ["c"]}, as_="demo")) == {"tags": ["a", "b", "c"]}
    r = api.put(f"{base}/d", None, as_="demo")
    assert r.status_code == 201 and r.content == b"null"
    assert api.put(f"{base}/d", None, as_="demo").status_code == 201  # idempotent
    assert api.get(f"{base}/d", as_="demo").status_code == 204
    error(api.get(f"{base}/nope", as_="demo"), 404, "TagNotFound", "Tag nope could not be found.")
    shown = api.show(coll, key, obj["id"], "demo")
    assert shown["tags"] == ["a", "b", "c", "d"]
    assert shown["revision_number"] > obj["revision_number"]
    assert api.delete(f"{base}/d", as_="demo").status_code == 204
    error(api.delete(f"{base}/d", as_="demo"), 404, "TagNotFound", "Tag d could not be found.")
    assert api.delete(base, as_="demo").status_code == 204
    assert api.ok(api.get(base, as_="demo")) == {"tags": []}


def test_tags_validation(api, tagged):
    base = f"networks/{tagged['networks']['id']}/tags"
    api.ok(api.put(base, {"tags": ["keep"]}, as_="demo"))
    before = api.snapshot()
    for body in (
        {"tags": "a"},
        {"tags": [""]},
        {"tags": ["x" * 256]},
        {"tags": [1]},
        {"nottags": []},
        {"tags": [f"t{i}" for i in range(51)]},
    ):
        error(api.put(base, body, as_="demo"), 400, "HTTPBadRequest")
    error(api.put(f"{base}/{'x' * 256}", None, as_="demo"), 400, "HTTPBadRequest")
    assert api.snapshot() == before


def test_tags_of_invisible_or_foreign_objects(api, tagged):
    net = tagged["networks"]
    error(api.get(f"networks/{net['id']}/tags", as_="other"), 404, "NetworkNotFound")
    error(api.put(f"networks/{net['id']}/tags", {"tags": ["x"]}, as_="other"), 404, "NetworkNotFound")
    shared = api.network(shared=True)
    assert api.ok(api.get(f"networks/{shared['id']}/tags", as_="demo")) == {"tags": []}
    error(
        api.put(f"networks/{shared['id']}/tags", {"tags": ["x"]}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "rule:update_network is disallowed by policy",
    )
    error(api.put(f"networks/{net['id']}/tags/x", None, as_="reader"), 403, "PolicyNotAuthorized")
    error(api.get("networks/00000000-0000-0000-0000-000000000000/tags"), 404, "NetworkNotFound")


def test_tag_filters(api):
    nets = {}
    for name, tags in (("n1", ["a", "b"]), ("n2", ["a"]), ("n3", ["c"]), ("n4", [])):
        nets[name] = api.network(as_="demo", name=name)
        api.ok(api.put(f"networks/{nets[name]['id']}/tags", {"tags": tags}, as_="demo"))

    def names(q):
        return sorted(n["name"] for n in api.list("networks", "demo", q))

    assert names("tags=a,b") == ["n1"]
    assert names("tags=a") == ["n1", "n2"]
    assert names("tags=a&tags=b") == ["n1"]
    assert names("tags-any=b,c") == ["n1", "n3"]
    assert names("not-tags=a,b") == ["n2", "n3", "n4"]
    assert names("not-tags-any=a,c") == ["n4"]
    assert names("tags=a&not-tags=b") == ["n2"]


def test_tag_filters_on_ports_and_subnets(api, tagged):
    api.ok(api.put(f"ports/{tagged['ports']['id']}/tags", {"tags": ["vm"]}, as_="demo"))
    api.ok(api.put(f"subnets/{tagged['subnets']['id']}/tags", {"tags": ["v4"]}, as_="demo"))
    assert [p["id"] for p in api.list("ports", "demo", "tags=vm")] == [tagged["ports"]["id"]]
    assert api.list("ports", "demo", "tags=nope") == []
    assert [s["id"] for s in api.list("subnets", "demo", "tags-any=v4,v6")] == [tagged["subnets"]["id"]]
