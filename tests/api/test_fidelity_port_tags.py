"""``tag-ports-during-bulk-creation`` (issue 14): ``tags`` in a port POST, single and bulk, are stored,
returned, filterable, and on the change feed; invalid tags are 400 and create nothing."""

from __future__ import annotations

from tests.api.conftest import error


def test_single_and_bulk_create_keep_tags(api):
    net, _ = api.net_with_subnet()
    one = api.port(net["id"], "demo", tags=["red", "blue"])
    assert one["tags"] == ["blue", "red"]
    assert api.show("ports", "port", one["id"], "demo")["tags"] == ["blue", "red"]
    body = {
        "ports": [
            {"network_id": net["id"], "name": "a", "tags": ["red"]},
            {"network_id": net["id"], "name": "b", "tags": ["green", "red"]},
            {"network_id": net["id"], "name": "c"},
        ]
    }
    made = api.ok(api.post("ports", body, "demo"), 201)["ports"]
    assert [p["tags"] for p in made] == [["red"], ["green", "red"], []]
    red = {p["id"] for p in api.list("ports", "demo", "tags=red")}
    assert red == {one["id"], made[0]["id"], made[1]["id"]}
    assert {p["id"] for p in api.list("ports", "demo", "tags=red&tags=green")} == {made[1]["id"]}
    assert {p["id"] for p in api.list("ports", "demo", "not-tags-any=red")} >= {made[2]["id"]}
    # the tags sub-API sees the same tags
    assert api.ok(api.get(f"ports/{made[1]['id']}/tags", "demo"))["tags"] == ["green", "red"]


def test_tags_are_on_the_feed(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], tags=["x"])
    changes = api.ok(api.get("/neutrino/v1/changes?since=0&limit=10000"))["changes"]
    (created,) = [c for c in changes if c["resource"] == "port" and c["id"] == port["id"]]
    assert created["action"] == "create" and created["body"]["tags"] == ["x"]


def test_bad_tags_create_nothing(api):
    net, _ = api.net_with_subnet()
    before = api.snapshot()
    for tags in (["a,b"], ["x" * 256], "red", [1]):
        body = {"ports": [{"network_id": net["id"], "tags": ["fine"]}, {"network_id": net["id"], "tags": tags}]}
        error(api.post("ports", body, "demo"), 400, "HTTPBadRequest", contains="Invalid input for tags")
    error(
        api.post("ports", {"port": {"network_id": net["id"], "tags": [f"t{i}" for i in range(51)]}}, "demo"),
        400,
        "HTTPBadRequest",
        contains="more than 50 tags",
    )
    assert api.snapshot() == before
