"""Generic Neutron API behaviour (reference §1-§3, §5, §6.1): transport, envelopes,
body processing, fields/filters/sorting/pagination, If-Match, visibility."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.conftest import error

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --- transport ---------------------------------------------------------------------------------
def test_versions_document_needs_no_token(api):
    r = api.get("/", as_=None)
    assert r.status_code == 200
    (v,) = r.json()["versions"]
    assert v["id"] == "v2.0" and v["status"] == "CURRENT"
    assert v["links"] == [{"rel": "self", "href": "http://testserver/v2.0/"}]
    for method in ("HEAD", "POST", "PUT", "DELETE", "PATCH"):
        assert api.req(method, "/", as_=None).status_code == 405


def test_v2_root_lists_core_resources(api):
    body = api.ok(api.get("/v2.0/"))
    assert [r["collection"] for r in body["resources"]] == ["networks", "subnets", "subnetpools", "ports"]
    assert body["resources"][0] == {
        "name": "network",
        "collection": "networks",
        "links": [{"rel": "self", "href": "http://testserver/v2.0/networks"}],
    }


def test_v2_without_slash_and_unknown_collection_are_404(api):
    for path in ("/v2.0", "/v2.0/foobars", "/v2.0/foobars/x"):
        error(api.get(path), 404, "HTTPNotFound", "The resource could not be found.")


@pytest.mark.parametrize("token", [None, "nope"])
def test_missing_or_invalid_token_is_401(api, token):
    r = api.get("networks", as_=token)
    assert r.status_code == 401
    assert r.json() == {
        "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
    }
    assert r.headers["www-authenticate"].startswith("Keystone uri=")


def test_every_response_has_a_request_id(api):
    for r in (api.get("networks"), api.get("networks/nope"), api.get("networks", as_=None)):
        assert re.match(r"^req-[0-9a-f-]{36}$", r.headers["x-openstack-request-id"])


# --- envelopes and methods -----------------------------------------------------------------------
def test_crud_envelopes_and_codes(api):
    r = api.post("networks", {"network": {"name": "n1"}}, as_="demo")
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    net = r.json()["network"]
    assert TS.match(net["created_at"]) and net["created_at"] == net["updated_at"]
    assert api.ok(api.get("networks", as_="demo")) == {"networks": [net]}
    assert api.ok(api.get(f"networks/{net['id']}", as_="demo")) == {"network": net}
    upd = api.ok(api.put(f"networks/{net['id']}", {"network": {"name": "n2"}}, as_="demo"))["network"]
    assert set(upd) == set(net) and upd["name"] == "n2"
    assert upd["revision_number"] == net["revision_number"] + 1
    r = api.delete(f"networks/{net['id']}", as_="demo")
    assert r.status_code == 204 and r.content == b""
    error(
        api.get(f"networks/{net['id']}", as_="demo"), 404, "NetworkNotFound", f"Network {net['id']} could not be found."
    )


def test_unknown_object_messages_use_the_literal_name(api):
    error(api.get("networks/flat-network"), 404, "NetworkNotFound", "Network flat-network could not be found.")
    error(api.get("subnets/x"), 404, "SubnetNotFound", "Subnet x could not be found.")
    error(api.get("ports/x"), 404, "PortNotFound", "Port x could not be found.")
    error(api.put("networks/x", {"network": {"name": "a"}}), 404, "NetworkNotFound")
    error(api.delete("networks/x"), 404, "NetworkNotFound")


def test_delete_with_body_is_400(api):
    net = api.network()
    r = api.req("DELETE", f"networks/{net['id']}", content=b'{"a": 1}')
    error(r, 400, "HTTPBadRequest", "Request body is not supported in DELETE.")
    assert api.get(f"networks/{net['id']}").status_code == 200


@pytest.mark.parametrize(
    "method,path",
    [
        ("PATCH", "networks"),
        ("PUT", "networks"),
        ("DELETE", "networks"),
        ("PATCH", "networks/{id}"),
        ("POST", "networks/{id}"),
    ],
)
def test_unsupported_methods_are_405(api, method, path):
    net = api.network()
    r = api.req(method, path.format(id=net["id"]), json={"network": {}})
    error(r, 405, "HTTPMethodNotAllowed")


def test_head_is_405(api):
    net = api.network()
    assert api.req("HEAD", "networks").status_code == 405
    assert api.req("HEAD", f"networks/{net['id']}").status_code == 405


def test_json_suffix_is_accepted(api):
    net = api.network(name="j")
    assert api.ok(api.get("networks.json"))["networks"][0]["id"] == net["id"]
    assert api.ok(api.get(f"networks/{net['id']}.json"))["network"]["name"] == "j"
    assert api.ok(api.put(f"networks/{net['id']}.json", {"network": {"name": "k"}}))["network"]["name"] == "k"
    assert "quota" in api.ok(api.get("quotas/p-demo/details.json"))


# --- body processing (§2.1) -----------------------------------------------------------------------
@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"network"', b"42", b"null"])
def test_malformed_or_non_object_body(api, raw):
    before = api.snapshot()
    r = api.req("POST", "networks", content=raw, headers={"Content-Type": "application/json"})
    error(r, 400, "HTTPBadRequest", "Body contains invalid data")
    assert api.snapshot() == before


def test_empty_body_or_missing_resource_key(api):
    net = api.network()
    for raw in (b"", b"{}", b'{"net": {}}'):
        r = api.req("POST", "networks", content=raw)
        error(r, 400, "HTTPBadRequest", "Unable to find 'network' in request body")
    error(
        api.put(f"networks/{net['id']}", {"subnet": {}}),
        400,
        "HTTPBadRequest",
        "Unable to find 'network' in request body",
    )
    error(api.post("networks", {"network": "x"}), 400, "HTTPBadRequest", "Body contains invalid data")


def test_unknown_attributes(api):
    error(api.post("networks", {"network": {"foo": 1}}), 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo'")
    r = api.post("networks", {"network": {"name": "x", "foo": 1, "bar": 2}})
    error(r, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo, bar'")
    net = api.network()
    error(
        api.put(f"networks/{net['id']}", {"network": {"foo": 1}}),
        400,
        "HTTPBadRequest",
        "Unrecognized attribute(s) 'foo'",
    )
    assert api.list("networks") == [net]


def test_read_only_and_not_postable_attributes(api):
    error(
        api.post("networks", {"network": {"status": "DOWN"}}),
        400,
        "HTTPBadRequest",
        "Attribute 'status' not allowed in POST",
    )
    error(
        api.post("networks", {"network": {"id": str(uuid.uuid4())}}),
        400,
        "HTTPBadRequest",
        "Attribute 'id' not allowed in POST",
    )
    error(
        api.post("networks", {"network": {"tags": ["a"]}}),
        400,
        "HTTPBadRequest",
        "Attribute 'tags' not allowed in POST",
    )
    net = api.network()
    for attr, value in (
        ("id", str(uuid.uuid4())),
        ("status", "DOWN"),
        ("project_id", "p-x"),
        ("tenant_id", "p-x"),
        ("availability_zone_hints", []),
        ("revision_number", 3),
    ):
        error(
            api.put(f"networks/{net['id']}", {"network": {attr: value}}),
            400,
            "HTTPBadRequest",
            f"Cannot update read-only attribute {attr}",
        )
    assert api.show("networks", "network", net["id"]) == net


def test_required_attribute_missing(api):
    net = api.network()
    error(
        api.post("subnets", {"subnet": {"cidr": "10.0.0.0/24"}}),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'ip_version' not specified",
    )
    error(
        api.post("subnets", {"subnet": {"ip_version": 4, "cidr": "10.0.0.0/24"}}),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'network_id' not specified",
    )
    # Required attributes are checked before values are converted.
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "cidr": "nonsense"}}),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'ip_version' not specified",
    )


def test_conversion_errors(api):
    error(
        api.post("subnets", {"subnet": {"network_id": "not-a-uuid", "ip_version": 4, "cidr": "10.0.0.0/24"}}),
        400,
        "HTTPBadRequest",
        "Invalid input for network_id. Reason: 'not-a-uuid' is not a valid UUID.",
    )
    # Boolean and integer conversions fail the way neutron-lib's converters do (InvalidInput).
    error(
        api.post("networks", {"network": {"admin_state_up": "maybe"}}),
        400,
        "InvalidInput",
        "Invalid input for operation: 'maybe' cannot be converted to boolean.",
    )
    error(
        api.post("networks", {"network": {"mtu": "big"}}),
        400,
        "InvalidInput",
        "Invalid input for operation: 'big' is not an integer.",
    )
    error(
        api.post("subnets", {"subnet": {"network_id": str(uuid.uuid4()), "ip_version": 5, "cidr": "10.0.0.0/24"}}),
        400,
        "HTTPBadRequest",
        "Invalid input for ip_version. Reason: '5' is not in [4, 6].",
    )
    error(
        api.post("networks", {"network": {"name": "x" * 256}}),
        400,
        "HTTPBadRequest",
        contains="Invalid input for name. Reason:",
    )
    error(
        api.post("networks", {"network": {"name": 5}}),
        400,
        "HTTPBadRequest",
        "Invalid input for name. Reason: '5' is not a valid string.",
    )


def test_lenient_converters(api):
    net = api.network(
        admin_state_up="False",
        shared="true",
        **{"provider:network_type": "vlan", "provider:physical_network": "physnet", "provider:segmentation_id": "101"},
    )
    assert net["admin_state_up"] is False and net["shared"] is True
    assert net["provider:segmentation_id"] == 101
    sub = api.subnet(net["id"], "10.0.0.5/24", ip_version="4")
    assert sub["cidr"] == "10.0.0.0/24" and sub["ip_version"] == 4


# --- project_id / tenant_id (§2.1 step 3) ------------------------------------------------------------
def test_project_id_rules(api):
    n = api.network(as_="demo", project_id="p-demo")
    assert n["project_id"] == n["tenant_id"] == "p-demo"
    n = api.network(as_="demo", tenant_id="p-demo")
    assert n["project_id"] == n["tenant_id"] == "p-demo"
    before = api.snapshot()
    error(
        api.post("networks", {"network": {"project_id": "p-demo", "tenant_id": "p-x"}}, as_="demo"),
        400,
        "HTTPBadRequest",
        "'project_id' and 'tenant_id' do not match",
    )
    msg = "Specifying 'project_id' other than the authenticated project in request is not allowed for the current user."
    error(api.post("networks", {"network": {"project_id": "p-other"}}, as_="demo"), 400, "HTTPBadRequest", msg)
    error(api.post("networks", {"network": {"tenant_id": "p-other"}}, as_="demo"), 400, "HTTPBadRequest", msg)
    # The project check comes before the unknown-attribute check.
    error(
        api.post("networks", {"network": {"project_id": "p-other", "foo": 1}}, as_="demo"), 400, "HTTPBadRequest", msg
    )
    assert api.snapshot() == before
    # Admin may create for any project; the owner then sees it.
    n = api.network(project_id="p-other", name="for-other")
    assert n["tenant_id"] == "p-other"
    assert [x["id"] for x in api.list("networks", "other")] == [n["id"]]


def test_project_and_tenant_filters(api):
    a = api.network(as_="demo")
    b = api.network(as_="other")
    assert [n["id"] for n in api.list("networks", query="project_id=p-demo")] == [a["id"]]
    assert [n["id"] for n in api.list("networks", query="tenant_id=p-other")] == [b["id"]]


# --- bulk create (§2.2) ------------------------------------------------------------------------------
def test_bulk_create(api):
    body = {"networks": [{"name": "b1"}, {"network": {"name": "b2"}}]}
    r = api.post("networks", body, as_="demo")
    assert r.status_code == 201
    created = r.json()["networks"]
    assert [n["name"] for n in created] == ["b1", "b2"]
    assert sorted(n["id"] for n in api.list("networks", "demo")) == sorted(n["id"] for n in created)


def test_bulk_empty_list(api):
    error(api.post("networks", {"networks": []}), 400, "HTTPBadRequest", "Resources required")


def test_bulk_create_is_atomic_on_plugin_error(api):
    api.network(**{"provider:network_type": "flat", "provider:physical_network": "physnet"})
    before = api.snapshot()
    body = {
        "networks": [
            {"name": "b3"},
            {"name": "b4", "provider:network_type": "flat", "provider:physical_network": "physnet"},
        ]
    }
    error(api.post("networks", body), 409, "FlatNetworkInUse")
    assert api.snapshot() == before
    assert "b3" not in [n["name"] for n in api.list("networks")]


def test_bulk_create_is_atomic_on_validation_error(api):
    before = api.snapshot()
    error(
        api.post("networks", {"networks": [{"name": "ok"}, {"name": "bad", "foo": 1}]}),
        400,
        "HTTPBadRequest",
        "Unrecognized attribute(s) 'foo'",
    )
    assert api.snapshot() == before


def test_bulk_ports_atomic_on_address_conflict(api):
    net, sub = api.net_with_subnet(as_="admin")
    before = api.snapshot()
    ip = {"fixed_ips": [{"ip_address": "10.0.0.50"}]}
    r = api.post("ports", {"ports": [dict(network_id=net["id"], **ip), dict(network_id=net["id"], **ip)]})
    error(r, 409, "IpAddressAlreadyAllocated", f"IP address 10.0.0.50 already allocated in subnet {sub['id']}")
    assert api.snapshot() == before
    r = api.post("ports", {"ports": [{"network_id": net["id"]}, {"network_id": net["id"]}]})
    assert r.status_code == 201 and len(r.json()["ports"]) == 2


# --- fields= (§2.3) ----------------------------------------------------------------------------------
def test_fields_selection(api):
    net = api.network(name="f1")
    api.network(name="f2")
    body = api.ok(api.get("networks?fields=id&fields=name"))
    assert all(list(n) == ["id", "name"] for n in body["networks"])
    assert api.ok(api.get("networks?fields=nonexistent"))["networks"] == [{}, {}]
    assert api.ok(api.get(f"networks/{net['id']}?fields=name")) == {"network": {"name": "f1"}}
    body = api.ok(api.get(f"networks/{net['id']}?fields=name&fields=mtu&fields=nope"))
    assert body == {"network": {"name": "f1", "mtu": net["mtu"]}}


def test_fields_cannot_reveal_stripped_attributes(api):
    net = api.network(as_="demo")
    assert api.ok(api.get(f"networks/{net['id']}?fields=provider:network_type", as_="demo")) == {"network": {}}
    got = api.ok(api.get(f"networks/{net['id']}?fields=provider:network_type"))
    assert got == {"network": {"provider:network_type": "vxlan"}}


# --- filters (§2.4) ----------------------------------------------------------------------------------
def test_repeated_filter_keys_are_ored_and_different_keys_anded(api):
    t1 = api.network(name="t1")
    t2 = api.network(name="t2", admin_state_up=False)
    api.network(name="t3")
    got = {n["name"] for n in api.list("networks", query="name=t1&name=t2")}
    assert got == {"t1", "t2"}
    got = [n["id"] for n in api.list("networks", query="name=t1&name=t2&admin_state_up=False")]
    assert got == [t2["id"]]
    got = [n["id"] for n in api.list("networks", query=f"id={t1['id']}&id={t2['id']}&name=t1")]
    assert got == [t1["id"]]


@pytest.mark.parametrize(
    "query,expect",
    [
        ("shared=1", {"shared"}),
        ("shared=True", {"shared"}),
        ("shared=true", {"shared"}),
        ("shared=0", {"plain", "ext"}),
        ("shared=False", {"plain", "ext"}),
        ("router%3Aexternal=True", {"ext"}),
        ("router:external=False", {"plain", "shared"}),
        ("mtu=1450", {"plain", "shared", "ext"}),
        ("mtu=1400", set()),
        ("admin_state_up=true", {"plain", "shared", "ext"}),
        ("name=", set()),
        ("name=plain", {"plain"}),
        ("description=d", {"ext"}),
        ("status=ACTIVE", {"plain", "shared", "ext"}),
    ],
)
def test_filter_value_conversion(api, query, expect):
    api.network(name="plain")
    api.network(name="shared", shared=True)
    api.network(name="ext", description="d", **{"router:external": True})
    assert {n["name"] for n in api.list("networks", query=query)} == expect


def test_empty_string_filter_matches_empty_names(api):
    a = api.network()
    api.network(name="named")
    assert [n["id"] for n in api.list("networks", query="name=")] == [a["id"]]


def test_filter_on_list_attribute(api):
    net, sub = api.net_with_subnet(as_="admin")
    api.network()
    assert [n["id"] for n in api.list("networks", query=f"subnets={sub['id']}")] == [net["id"]]
    assert [s["id"] for s in api.list("subnets", query="cidr=10.0.0.0/24")] == [sub["id"]]
    assert [s["id"] for s in api.list("subnets", query="ip_version=4")] == [sub["id"]]
    assert api.list("subnets", query="ip_version=6") == []


def test_invalid_filter_is_400(api):
    before = api.snapshot()
    error(api.get("networks?foo=1"), 400, "HTTPBadRequest", "['foo'] is invalid attribute for filtering")
    error(
        api.get("networks?name=a&foo=1&bar=2"),
        400,
        "HTTPBadRequest",
        "['foo', 'bar'] is invalid attribute for filtering",
    )
    # Known but not filterable.
    error(
        api.get("networks?shared=maybe"),
        400,
        "InvalidInput",
        "Invalid input for operation: 'maybe' cannot be converted to boolean.",
    )
    error(
        api.get("networks?availability_zones=nova"),
        400,
        "HTTPBadRequest",
        "['availability_zones'] is invalid attribute for filtering",
    )
    error(
        api.get("ports?allowed_address_pairs=x"),
        400,
        "HTTPBadRequest",
        "['allowed_address_pairs'] is invalid attribute for filtering",
    )
    assert api.snapshot() == before


def test_changed_since_filter(api):
    net = api.network()
    assert [n["id"] for n in api.list("networks", query="changed_since=2000-01-01T00:00:00Z")] == [net["id"]]
    assert api.list("networks", query="changed_since=2999-01-01T00:00:00Z") == []


# --- sorting (§2.5) ----------------------------------------------------------------------------------
def test_sorting(api):
    for name in ("b", "c", "a"):
        api.network(name=name)

    def names(q: str) -> list[str]:
        return [n["name"] for n in api.list("networks", query=q)]

    assert names("sort_key=name&sort_dir=asc") == ["a", "b", "c"]
    assert names("sort_key=name&sort_dir=desc") == ["c", "b", "a"]
    api.network(name="a", admin_state_up=False)
    got = api.list("networks", query="sort_key=name&sort_dir=asc&sort_key=admin_state_up&sort_dir=asc")
    assert [(n["name"], n["admin_state_up"]) for n in got] == [("a", False), ("a", True), ("b", True), ("c", True)]


def test_sorting_errors(api):
    error(
        api.get("networks?sort_key=name&sort_key=id&sort_dir=asc"),
        400,
        "HTTPBadRequest",
        "The number of sort_keys and sort_dirs must be same",
    )
    error(
        api.get("networks?sort_key=name"), 400, "HTTPBadRequest", "The number of sort_keys and sort_dirs must be same"
    )
    error(
        api.get("networks?sort_key=foo&sort_dir=asc"),
        400,
        "HTTPBadRequest",
        "['foo'] is invalid attribute for sort_keys",
    )
    error(
        api.get("networks?sort_key=subnets&sort_dir=asc"),
        400,
        "HTTPBadRequest",
        "['subnets'] is invalid attribute for sort_keys",
    )
    error(
        api.get("networks?sort_key=name&sort_dir=up"),
        400,
        "HTTPBadRequest",
        "['up'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'",
    )


# --- pagination (§2.6) --------------------------------------------------------------------------------
def _links(body, key="networks"):
    return {link["rel"]: link["href"] for link in body.get(f"{key}_links", [])}


def _query(href):
    parts = urlsplit(href)
    return parts.path, parse_qs(parts.query)


def test_pagination_forward_with_links(api):
    for name in "abcde":
        api.network(name=name)
    body = api.ok(api.get("networks?limit=2&sort_key=name&sort_dir=asc"))
    page = [n["name"] for n in body["networks"]]
    assert page == ["a", "b"]
    links = _links(body)
    assert set(links) == {"next", "previous"}  # the first page carries "previous" too
    path, q = _query(links["next"])
    assert path == "/v2.0/networks"
    assert q["marker"] == [body["networks"][-1]["id"]] and q["limit"] == ["2"] and "page_reverse" not in q
    assert q["sort_key"] == ["name"] and q["sort_dir"] == ["asc"]
    _, q = _query(links["previous"])
    assert q["marker"] == [body["networks"][0]["id"]] and q["page_reverse"] == ["True"]

    seen = page
    href = links["next"]
    while href:
        body = api.ok(api.get(href))
        seen += [n["name"] for n in body["networks"]]
        href = _links(body).get("next")
    assert seen == list("abcde")
    assert "previous" in _links(body)  # the last (short) page has only "previous"
    assert len(body["networks"]) == 1


def test_pagination_reverse(api):
    for name in "abcde":
        api.network(name=name)
    ids = {n["name"]: n["id"] for n in api.list("networks")}
    body = api.ok(api.get(f"networks?limit=2&sort_key=name&sort_dir=asc&marker={ids['d']}&page_reverse=True"))
    assert [n["name"] for n in body["networks"]] == ["b", "c"]
    assert set(_links(body)) == {"next", "previous"}
    body = api.ok(api.get(f"networks?limit=2&sort_key=name&sort_dir=asc&marker={ids['b']}&page_reverse=True"))
    assert [n["name"] for n in body["networks"]] == ["a"]
    assert set(_links(body)) == {"next"}


def test_pagination_limits(api):
    for name in "abc":
        api.network(name=name)
    body = api.ok(api.get("networks?limit=0"))
    assert len(body["networks"]) == 3 and "networks_links" not in body
    assert "networks_links" not in api.ok(api.get("networks"))
    assert api.ok(api.get(f"networks?limit=2&marker={uuid.uuid4()}"))["networks"] == []
    for bad in ("abc", "-1", "1.5"):
        error(
            api.get(f"networks?limit={bad}"),
            400,
            "BadRequest",
            f"Bad limit request: Limit must be an integer 0 or greater and not '{bad}'.",
        )


def test_pagination_max_limit_caps(make_api):
    api = make_api({("DEFAULT", "pagination_max_limit"): "2"})
    for name in "abc":
        api.network(name=name)
    body = api.ok(api.get("networks?limit=10"))
    assert len(body["networks"]) == 2 and "next" in _links(body)


# --- If-Match (§2.9) --------------------------------------------------------------------------------
def test_if_match_on_update_and_delete(api):
    net = api.network()
    rev = net["revision_number"]
    ok = api.put(f"networks/{net['id']}", {"network": {"name": "a"}}, headers={"If-Match": f"revision_number={rev}"})
    assert ok.status_code == 200 and ok.json()["network"]["revision_number"] == rev + 1
    before = api.snapshot()
    r = api.put(f"networks/{net['id']}", {"network": {"name": "b"}}, headers={"If-Match": f"revision_number={rev}"})
    error(r, 412, "RevisionNumberConstraintFailed", f"Constrained to {rev}, but current revision is {rev + 1}")
    r = api.delete(f"networks/{net['id']}", headers={"If-Match": f"revision_number={rev}"})
    error(r, 412, "RevisionNumberConstraintFailed")
    msg = "Revision number etag must be in the format of revision_number=<int>"
    for bad in ("revision_number=x", "rev=1", "revision_number=1, revision_number=2"):
        error(
            api.put(f"networks/{net['id']}", {"network": {"name": "c"}}, headers={"If-Match": bad}),
            400,
            "HTTPBadRequest",
            msg,
        )
    assert api.snapshot() == before
    r = api.delete(f"networks/{net['id']}", headers={"If-Match": f"revision_number={rev + 1}"})
    assert r.status_code == 204


def test_if_match_on_ports_and_subnets(api):
    net, sub = api.net_with_subnet(as_="admin")
    port = api.port(net["id"])
    for coll, key, obj in (("subnets", "subnet", sub), ("ports", "port", port)):
        r = api.put(
            f"{coll}/{obj['id']}",
            {key: {"name": "x"}},
            headers={"If-Match": f"revision_number={obj['revision_number'] + 5}"},
        )
        error(r, 412, "RevisionNumberConstraintFailed")


# --- visibility and policy (§5, §6) --------------------------------------------------------------------
def test_private_network_of_another_project_is_hidden(api):
    net = api.network(as_="demo")
    before = api.snapshot()
    msg = f"Network {net['id']} could not be found."
    error(api.get(f"networks/{net['id']}", as_="other"), 404, "NetworkNotFound", msg)
    error(api.put(f"networks/{net['id']}", {"network": {"name": "x"}}, as_="other"), 404, "NetworkNotFound", msg)
    error(api.delete(f"networks/{net['id']}", as_="other"), 404, "NetworkNotFound", msg)
    assert api.list("networks", "other") == []
    assert api.snapshot() == before
    assert api.show("networks", "network", net["id"])["id"] == net["id"]  # admin sees everything


def test_visible_but_not_owned_network_is_403(api):
    shared = api.network(shared=True, name="s")
    ext = api.network(**{"router:external": True})
    before = api.snapshot()
    for net in (shared, ext):
        assert api.show("networks", "network", net["id"], "demo")["id"] == net["id"]
        error(
            api.put(f"networks/{net['id']}", {"network": {"name": "x"}}, as_="demo"),
            403,
            "PolicyNotAuthorized",
            "rule:update_network is disallowed by policy",
        )
        error(
            api.delete(f"networks/{net['id']}", as_="demo"),
            403,
            "PolicyNotAuthorized",
            "rule:delete_network is disallowed by policy",
        )
    assert {n["id"] for n in api.list("networks", "demo")} == {shared["id"], ext["id"]}
    assert api.snapshot() == before


def test_member_view_strips_admin_attributes(api):
    net = api.network(as_="demo")
    for view in (api.show("networks", "network", net["id"], "demo"), api.list("networks", "demo")[0], net):
        assert not any(k.startswith("provider:") for k in view)
        assert "segments" not in view
    admin_view = api.show("networks", "network", net["id"])
    assert admin_view["provider:network_type"] == "vxlan"
    assert admin_view["provider:physical_network"] is None
    assert 1 <= admin_view["provider:segmentation_id"] <= 1000


def test_member_port_view_strips_binding_attributes(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    hidden = {"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"}
    assert not hidden & set(port)
    assert port["binding:vnic_type"] == "normal"
    admin_view = api.show("ports", "port", port["id"])
    assert hidden <= set(admin_view)
    assert admin_view["binding:vif_type"] == "unbound" and admin_view["binding:host_id"] == ""
    assert admin_view["binding:vif_details"] == {} and admin_view["binding:profile"] == {}


def test_reader_can_read_but_not_write(api):
    net, sub = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    assert api.show("networks", "network", net["id"], "reader")["id"] == net["id"]
    assert [p["id"] for p in api.list("ports", "reader")] == [port["id"]]
    assert [s["id"] for s in api.list("subnets", "reader")] == [sub["id"]]
    before = api.snapshot()
    error(
        api.post("networks", {"network": {"name": "r"}}, as_="reader"),
        403,
        "PolicyNotAuthorized",
        "rule:create_network is disallowed by policy",
    )
    error(
        api.post("ports", {"port": {"network_id": net["id"]}}, as_="reader"),
        403,
        "PolicyNotAuthorized",
        "rule:create_port is disallowed by policy",
    )
    error(
        api.post(
            "subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0/24"}}, as_="reader"
        ),
        403,
        "PolicyNotAuthorized",
        "rule:create_subnet is disallowed by policy",
    )
    error(
        api.post("security-groups", {"security_group": {"name": "r"}}, as_="reader"),
        403,
        "PolicyNotAuthorized",
        "rule:create_security_group is disallowed by policy",
    )
    error(
        api.put(f"networks/{net['id']}", {"network": {"name": "x"}}, as_="reader"),
        403,
        "PolicyNotAuthorized",
        "rule:update_network is disallowed by policy",
    )
    error(
        api.delete(f"ports/{port['id']}", as_="reader"),
        403,
        "PolicyNotAuthorized",
        "rule:delete_port is disallowed by policy",
    )
    assert api.snapshot() == before


def test_create_with_admin_only_attribute_is_403(api):
    before = api.snapshot()
    error(
        api.post("networks", {"network": {"provider:network_type": "vlan"}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "(rule:create_network and rule:create_network:provider:network_type) is disallowed by policy",
    )
    error(
        api.post("networks", {"network": {"shared": True, "router:external": True}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "((rule:create_network and rule:create_network:shared) and "
        "rule:create_network:router:external) is disallowed by policy",
    )
    assert api.snapshot() == before
    # Values equal to the default do not count on create ...
    net = api.network(as_="demo", shared=False, **{"router:external": False})
    # ... but any present attribute counts on update.
    error(
        api.put(f"networks/{net['id']}", {"network": {"shared": False}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "(rule:update_network and rule:update_network:shared) is disallowed by policy",
    )


# --- bad input changes nothing ------------------------------------------------------------------------
def test_sequence_of_bad_requests_changes_nothing(api):
    net, sub = api.net_with_subnet(as_="demo", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.12"}])
    port = api.port(net["id"], as_="demo", fixed_ips=[{"ip_address": "10.0.0.10"}])
    api.port(net["id"], as_="demo")
    api.port(net["id"], as_="demo")
    api.list("security-groups", "demo")
    n, s, p = net["id"], sub["id"], port["id"]
    bad = [
        ("POST", "networks", {"network": {"mtu": 9000}}, 400),
        ("POST", "networks", {"network": {"provider:network_type": "flat"}}, 403),
        ("POST", "subnets", {"subnet": {"network_id": n, "ip_version": 4, "cidr": "10.0.0.128/25"}}, 400),
        ("POST", "subnets", {"subnet": {"network_id": n, "ip_version": 6, "cidr": "10.1.0.0/24"}}, 400),
        (
            "POST",
            "subnets",
            {
                "subnet": {
                    "network_id": n,
                    "ip_version": 4,
                    "cidr": "10.1.0.0/24",
                    "gateway_ip": "10.1.0.5",
                    "allocation_pools": [{"start": "10.1.0.2", "end": "10.1.0.10"}],
                }
            },
            409,
        ),
        ("POST", "ports", {"port": {"network_id": n}}, 409),  # pool exhausted
        ("POST", "ports", {"port": {"network_id": n, "fixed_ips": [{"ip_address": "10.0.0.10"}]}}, 409),
        ("POST", "ports", {"port": {"network_id": n, "fixed_ips": [{"ip_address": "10.9.0.5"}]}}, 400),
        ("POST", "ports", {"port": {"network_id": n, "mac_address": port["mac_address"]}}, 409),
        ("PUT", f"ports/{p}", {"port": {"port_security_enabled": False}}, 409),
        ("PUT", f"ports/{p}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.255"}]}}, 400),
        ("PUT", f"subnets/{s}", {"subnet": {"gateway_ip": "10.0.0.11"}}, 409),
        ("PUT", f"subnets/{s}", {"subnet": {"dns_nameservers": ["1.1.1.1"] * 2}}, 400),
        ("DELETE", f"networks/{n}", None, 409),
        ("DELETE", f"subnets/{s}", None, 409),
        ("PUT", f"networks/{n}", {"network": {"mtu": 1451}}, 400),
    ]
    before = api.snapshot()
    for method, path, body, status in bad:
        r = api.req(method, path, "demo", json=body)
        assert r.status_code == status, (method, path, body, r.text)
        assert "NeutronError" in r.json()
        assert api.snapshot() == before, (method, path, body)


def test_failed_list_creates_no_default_group(api):
    before = api.snapshot()
    error(
        api.get("security-groups?foo=1", as_="other"),
        400,
        "HTTPBadRequest",
        "['foo'] is invalid attribute for filtering",
    )
    error(api.get("security-groups?limit=x", as_="other"), 400, "BadRequest")
    assert api.snapshot() == before


def test_extensions(api):
    body = api.ok(api.get("extensions"))
    aliases = {e["alias"] for e in body["extensions"]}
    for alias in (
        "external-net",
        "provider",
        "binding",
        "port-security",
        "security-group",
        "quotas",
        "standard-attr-tag",
        "revision-if-match",
        "pagination",
        "sorting",
        "filter-validation",
        "net-mtu",
        "net-mtu-writable",
        "allowed-address-pairs",
        "empty-string-filtering",
    ):
        assert alias in aliases, alias
    assert "external-gateway-multihoming" not in aliases
    assert api.ok(api.get("extensions/provider"))["extension"]["alias"] == "provider"
    assert api.get("extensions/external-gateway-multihoming").status_code == 404
    assert api.req("POST", "extensions", json={}).status_code == 404
