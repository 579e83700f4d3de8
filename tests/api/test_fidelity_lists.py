"""Issue 14, behaviours of list queries: ``*_links`` in both directions (Neutron's rules) and the
hidden ``shared`` filter on subnets."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.api.conftest import error


def _links(body, key="networks"):
    return {link["rel"]: link["href"] for link in body.get(f"{key}_links", [])}


def _q(href):
    return parse_qs(urlsplit(href).query)


def _names(body, key="networks"):
    return [o["name"] for o in body[key]]


def _networks(api, names="abcdefg"):
    for name in names:
        api.network(name=name)
    return {n["name"]: n["id"] for n in api.list("networks")}


def test_forward_page_with_marker_has_next_and_previous(api):
    ids = _networks(api)
    body = api.ok(api.get(f"networks?limit=2&sort_key=name&sort_dir=asc&marker={ids['b']}"))
    assert _names(body) == ["c", "d"]
    links = _links(body)
    assert set(links) == {"next", "previous"}
    nxt, prev = _q(links["next"]), _q(links["previous"])
    assert nxt["marker"] == [ids["d"]] and "page_reverse" not in nxt
    assert prev["marker"] == [ids["c"]] and prev["page_reverse"] == ["True"]
    assert nxt["limit"] == prev["limit"] == ["2"] and nxt["sort_key"] == prev["sort_key"] == ["name"]
    # following "previous" goes back to the page before, which again links both ways
    back = api.ok(api.get(links["previous"]))
    assert _names(back) == ["a", "b"]
    assert set(_links(back)) == {"next", "previous"}
    assert _q(_links(back)["next"])["marker"] == [ids["b"]]


def test_reverse_pages_walk_back_to_the_start(api):
    ids = _networks(api)
    body = api.ok(api.get(f"networks?limit=2&sort_key=name&sort_dir=asc&marker={ids['g']}&page_reverse=True"))
    seen = []
    while True:
        seen = _names(body) + seen
        links = _links(body)
        assert "next" in links  # a reverse page always links forward
        if body["networks"]:
            assert _q(links["next"])["marker"] == [body["networks"][-1]["id"]]
        else:  # an empty page: back to the start
            assert "marker" not in _q(links["next"])
        if "previous" not in links:
            break
        assert _q(links["previous"])["page_reverse"] == ["True"]
        body = api.ok(api.get(links["previous"]))
    assert seen == list("abcdef")
    assert len(body["networks"]) < 2  # only a short page has no "previous"


def test_last_forward_page_has_no_next(api):
    ids = _networks(api, "abcde")
    body = api.ok(api.get(f"networks?limit=2&sort_key=name&sort_dir=asc&marker={ids['c']}"))
    assert _names(body) == ["d", "e"]
    assert set(_links(body)) == {"next", "previous"}  # a full page: the next one may be empty
    body = api.ok(api.get(_links(body)["next"]))
    assert body["networks"] == []
    links = _links(body)
    assert set(links) == {"previous"}  # as Neutron: no marker on an empty page
    assert "marker" not in _q(links["previous"]) and _q(links["previous"])["page_reverse"] == ["True"]
    body = api.ok(api.get(f"networks?limit=2&sort_key=name&sort_dir=asc&marker={ids['d']}"))
    assert _names(body) == ["e"] and set(_links(body)) == {"previous"}


def test_openstacksdk_style_walk_collects_everything_once(api):
    _networks(api, "abcdefghij")
    href, seen = "networks?limit=3", []
    while href:
        body = api.ok(api.get(href))
        seen += _names(body)
        href = _links(body).get("next")
    assert sorted(seen) == list("abcdefghij") and len(seen) == 10


def test_pagination_on_other_collections(api):
    net, _ = api.net_with_subnet("10.0.0.0/24", "admin")
    for i in range(4):
        api.port(net["id"], "admin", name=f"p{i}")
    body = api.ok(api.get("ports?limit=2&sort_key=name&sort_dir=asc&name=p0&name=p1&name=p2&name=p3"))
    assert _names(body, "ports") == ["p0", "p1"]
    links = _links(body, "ports")
    body = api.ok(api.get(links["next"]))
    assert _names(body, "ports") == ["p2", "p3"] and set(_links(body, "ports")) == {"next", "previous"}
    assert _q(_links(body, "ports")["next"])["name"] == ["p0", "p1", "p2", "p3"]


# --- shared as a subnet filter ---------------------------------------------------------------------
def test_subnets_filtered_by_shared(api):
    shared = api.network(shared=True)
    private = api.network("demo")
    s1 = api.subnet(shared["id"], "10.0.0.0/24")
    s2 = api.subnet(private["id"], "10.1.0.0/24", "demo")

    def ids(q: str, as_: str = "admin") -> set[str]:
        return {s["id"] for s in api.list("subnets", as_, q)}

    assert ids("shared=True") == {s1["id"]}
    assert ids("shared=true&shared=1") == {s1["id"]}
    assert ids("shared=False") == {s2["id"]}
    assert ids("shared=False&shared=True") == {s1["id"], s2["id"]}
    assert ids("shared=False", "demo") == {s2["id"]}
    assert ids("shared=True", "other") == {s1["id"]}
    assert ids("shared=False", "other") == set()
    # combined with other filters; the subnet's dict does not show the attribute (as Neutron)
    assert ids(f"shared=True&network_id={shared['id']}") == {s1["id"]}
    assert ids(f"shared=True&network_id={private['id']}") == set()
    assert "shared" not in api.show("subnets", "subnet", s1["id"])
    # the network follows later changes of its sharing
    api.ok(api.put(f"networks/{private['id']}", {"network": {"shared": True}}))
    assert ids("shared=True") == {s1["id"], s2["id"]}


def test_subnet_shared_filter_errors(api):
    error(api.get("subnets?shared=maybe"), 400, "InvalidInput", contains="'maybe' cannot be converted to boolean")
    net = api.network()
    error(
        api.post(
            "subnets", {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "shared": True}}
        ),
        400,
        "HTTPBadRequest",
    )


def test_subnets_filtered_by_router_external_value(api):
    ext = api.network(**{"router:external": True})
    internal = api.network()
    s1 = api.subnet(ext["id"], "172.16.0.0/24")
    s2 = api.subnet(internal["id"], "10.0.0.0/24")
    assert {s["id"] for s in api.list("subnets", "admin", "router%3Aexternal=True")} == {s1["id"]}
    assert {s["id"] for s in api.list("subnets", "admin", "router%3Aexternal=False")} == {s2["id"]}
