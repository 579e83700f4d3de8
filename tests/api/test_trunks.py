"""Trunks (``trunk``, ``trunk-details``): /v2.0/trunks, its member actions, and what they do to ports."""

from __future__ import annotations

import pytest

from tests.api.conftest import error

TRUNK_KEYS = {
    "id",
    "name",
    "description",
    "port_id",
    "status",
    "admin_state_up",
    "sub_ports",
    "project_id",
    "tenant_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
}


@pytest.fixture
def nets(api):
    """Two networks of the demo project with a subnet each: (A, B)."""
    a = api.net_with_subnet("10.10.0.0/24")
    b = api.net_with_subnet("10.20.0.0/24")
    return a, b


def _net_id(x):
    return x[0]["id"] if isinstance(x, tuple) else x["id"]


def _port(api, net, as_="demo", **attrs):
    return api.port(_net_id(net), as_, **attrs)


def _trunk(api, parent, subports=(), as_="demo", **attrs):
    body = {"port_id": parent["id"], "sub_ports": list(subports), **attrs}
    return api.ok(api.post("trunks", {"trunk": body}, as_), 201)["trunk"]


def _sub(port, seg=101):
    return {"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": seg}


def test_crud_and_trunk_details(api, nets):
    a, b = nets
    parent, sub = _port(api, a), _port(api, b)
    trunk = _trunk(api, parent, [_sub(sub)], name="t1", description="d")
    assert set(trunk) == TRUNK_KEYS
    assert trunk["status"] == "DOWN" and trunk["admin_state_up"] is True and trunk["name"] == "t1"
    assert trunk["sub_ports"] == [{"segmentation_id": 101, "segmentation_type": "vlan", "port_id": sub["id"]}]
    # The subport belongs to the trunk now; the parent shows the trunk's details.
    s = api.show("ports", "port", sub["id"], "demo")
    assert (s["device_owner"], s["device_id"]) == ("trunk:subport", trunk["id"])
    p = api.show("ports", "port", parent["id"], "demo")
    assert p["trunk_details"] == {
        "trunk_id": trunk["id"],
        "sub_ports": [
            {
                "segmentation_id": 101,
                "segmentation_type": "vlan",
                "port_id": sub["id"],
                "mac_address": sub["mac_address"],
            }
        ],
    }
    assert p["revision_number"] > parent["revision_number"]
    assert "trunk_details" not in s
    assert api.ok(api.get(f"ports/{parent['id']}?fields=trunk_details", "demo"))["port"] == {
        "trunk_details": p["trunk_details"]
    }
    # show / list / filters / update
    assert api.show("trunks", "trunk", trunk["id"], "demo")["sub_ports"] == trunk["sub_ports"]
    assert [x["id"] for x in api.list("trunks", "demo", f"port_id={parent['id']}")] == [trunk["id"]]
    assert api.list("trunks", "demo", "name=nope") == []
    up = api.ok(api.put(f"trunks/{trunk['id']}", {"trunk": {"name": "t2", "admin_state_up": False}}, "demo"))
    assert up["trunk"]["name"] == "t2" and up["trunk"]["revision_number"] > trunk["revision_number"]
    error(
        api.put(f"trunks/{trunk['id']}", {"trunk": {"port_id": parent["id"]}}, "demo"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute port_id",
    )
    # An admin-down trunk cannot be managed.
    error(api.delete(f"trunks/{trunk['id']}", "demo"), 409, "TrunkDisabled")
    api.ok(api.put(f"trunks/{trunk['id']}", {"trunk": {"admin_state_up": True}}, "demo"))
    assert api.delete(f"trunks/{trunk['id']}", "demo").status_code == 204
    error(api.get(f"trunks/{trunk['id']}", "demo"), 404, "TrunkNotFound")
    # Deleting the trunk hands the subport back and the parent loses its details.
    s = api.show("ports", "port", sub["id"], "demo")
    assert (s["device_owner"], s["device_id"]) == ("", "")
    assert "trunk_details" not in api.show("ports", "port", parent["id"], "demo")


def test_member_actions(api, nets):
    a, b = nets
    parent, s1, s2 = _port(api, a), _port(api, b), _port(api, b)
    trunk = _trunk(api, parent)
    r = api.ok(api.put(f"trunks/{trunk['id']}/add_subports", {"sub_ports": [_sub(s1, 101), _sub(s2, 102)]}, "demo"))
    assert "trunk" not in r and r["id"] == trunk["id"]  # Neutron answers the trunk without envelope
    assert sorted(x["segmentation_id"] for x in r["sub_ports"]) == [101, 102]
    got = api.ok(api.get(f"trunks/{trunk['id']}/get_subports", "demo"))
    assert got == {"sub_ports": r["sub_ports"]}
    # Same segmentation again: 409; the same port again: in use (its device is the trunk).
    s3 = _port(api, b)
    error(
        api.put(f"trunks/{trunk['id']}/add_subports", {"sub_ports": [_sub(s3, 101)]}, "demo"),
        409,
        "DuplicateSubPort",
        f"segmentation_type vlan and segmentation_id 101 already in use on trunk {trunk['id']}.",
    )
    error(api.put(f"trunks/{trunk['id']}/add_subports", {"sub_ports": [_sub(s1, 103)]}, "demo"), 409, "PortInUse")
    r = api.ok(api.put(f"trunks/{trunk['id']}/remove_subports", {"sub_ports": [{"port_id": s1["id"]}]}, "demo"))
    assert [x["port_id"] for x in r["sub_ports"]] == [s2["id"]]
    assert api.show("ports", "port", s1["id"], "demo")["device_owner"] == ""
    error(
        api.put(f"trunks/{trunk['id']}/remove_subports", {"sub_ports": [{"port_id": s1["id"]}]}, "demo"),
        404,
        "SubPortNotFound",
    )
    error(api.put(f"trunks/{trunk['id']}/add_subports", {"nope": []}, "demo"), 400, "HTTPBadRequest")
    error(api.put(f"trunks/{trunk['id']}/get_subports", {}, "demo"), 404, "HTTPNotFound")  # a GET-only action


@pytest.mark.parametrize(
    "subports, reason",
    [
        ("x", "Invalid data format for subports: 'x' is not a list"),
        ([1], "Invalid data format for subport: '1' is not a dict"),
        ([{"segmentation_type": "vlan", "segmentation_id": 1}], "A valid port UUID must be specified"),
        ([{"port_id": "nope"}], "Invalid UUID for subport: 'nope'"),
        ([{"port_id": "2d0d6ae1-97c0-4b3a-8d63-4a5e1e0e3c11", "segmentation_id": 5}], "missing segmentation"),
    ],
)
def test_subports_body_validation(api, nets, subports, reason):
    parent = _port(api, nets[0])
    e = error(
        api.post("trunks", {"trunk": {"port_id": parent["id"], "sub_ports": subports}}, "demo"), 400, "HTTPBadRequest"
    )
    assert e["message"].startswith("Invalid input for sub_ports. Reason: ") and reason in e["message"], e


def test_subport_checks(api, nets):
    a, b = nets
    parent, s1, s2 = _port(api, a), _port(api, b), _port(api, b)
    dup = [_sub(s1, 7), _sub(s2, 7)]
    e = error(api.post("trunks", {"trunk": {"port_id": parent["id"], "sub_ports": dup}}, "demo"), 400, "HTTPBadRequest")
    assert "Segmentation ID '7' for" in e["message"] and "is not unique" in e["message"]
    error(
        api.post(
            "trunks",
            {
                "trunk": {
                    "port_id": parent["id"],
                    "sub_ports": [{"port_id": s1["id"], "segmentation_type": "vxlan", "segmentation_id": 7}],
                }
            },
            "demo",
        ),
        400,
        "InvalidInput",
        "Invalid input for operation: Unknown segmentation_type 'vxlan'.",
    )
    for seg in (0, 4095):
        error(
            api.post("trunks", {"trunk": {"port_id": parent["id"], "sub_ports": [_sub(s1, seg)]}}, "demo"),
            400,
            "InvalidInput",
        )
    # The parent itself, or a port with a device (an instance's), cannot be a subport.
    error(
        api.post("trunks", {"trunk": {"port_id": parent["id"], "sub_ports": [_sub(parent)]}}, "demo"),
        409,
        "TrunkPortInUse",
    )
    used = _port(api, b, device_id="some-instance")
    error(api.post("trunks", {"trunk": {"port_id": parent["id"], "sub_ports": [_sub(used)]}}, "demo"), 409, "PortInUse")
    # A failed create changes nothing.
    assert api.list("trunks", "demo") == []
    assert api.show("ports", "port", s1["id"], "demo")["device_owner"] == ""


def test_parent_checks_and_port_delete(api, nets):
    a, b = nets
    parent, sub, other = _port(api, a), _port(api, b), _port(api, a)
    trunk = _trunk(api, parent, [_sub(sub)])
    error(
        api.post("trunks", {"trunk": {"port_id": parent["id"]}}, "demo"),
        409,
        "TrunkPortInUse",
        f"Port {parent['id']} is in use by another trunk.",
    )
    error(api.post("trunks", {"trunk": {"port_id": sub["id"]}}, "demo"), 409, "ParentPortInUse")
    # A trunk's parent cannot become a subport of another trunk.
    t2 = _trunk(api, other)
    error(api.put(f"trunks/{t2['id']}/add_subports", {"sub_ports": [_sub(parent, 5)]}, "demo"), 409, "TrunkPortInUse")
    error(
        api.delete(f"ports/{parent['id']}", "demo"),
        409,
        "PortInUseAsTrunkParent",
        f"Port {parent['id']} is currently a parent port for trunk {trunk['id']}.",
    )
    error(
        api.delete(f"ports/{sub['id']}", "demo"),
        409,
        "PortInUseAsSubPort",
        f"Port {sub['id']} is currently a subport for trunk {trunk['id']}.",
    )
    api.ok(api.put(f"trunks/{trunk['id']}/remove_subports", {"sub_ports": [{"port_id": sub["id"]}]}, "demo"))
    assert api.delete(f"ports/{sub['id']}", "demo").status_code == 204
    assert api.delete(f"trunks/{trunk['id']}", "demo").status_code == 204
    assert api.delete(f"ports/{parent['id']}", "demo").status_code == 204


def test_mtu_of_subport_network(api):
    a = api.net_with_subnet("10.10.0.0/24")
    big = api.network("demo", mtu=1450)
    small = api.network("demo", mtu=1400)
    api.subnet(big["id"], "10.30.0.0/24", "demo")
    api.subnet(small["id"], "10.40.0.0/24", "demo")
    parent = api.port(small["id"], "demo")
    sub = api.port(big["id"], "demo")
    error(
        api.post("trunks", {"trunk": {"port_id": parent["id"], "sub_ports": [_sub(sub)]}}, "demo"),
        409,
        "SubPortMtuGreaterThanTrunkPortMtu",
    )
    assert a


def test_ownership_and_policy(api, nets):
    a, b = nets
    parent, sub = _port(api, a), _port(api, b)
    trunk = _trunk(api, parent)
    # Other projects see nothing and cannot use demo's ports.
    error(api.get(f"trunks/{trunk['id']}", "other"), 404, "TrunkNotFound")
    assert api.list("trunks", "other") == []
    error(api.put(f"trunks/{trunk['id']}/add_subports", {"sub_ports": [_sub(sub)]}, "other"), 404, "TrunkNotFound")
    error(api.delete(f"trunks/{trunk['id']}", "other"), 404, "TrunkNotFound")
    other_net = api.net_with_subnet("10.50.0.0/24", as_="other")
    other_port = api.port(other_net[0]["id"] if isinstance(other_net, tuple) else other_net["id"], "other")
    error(api.post("trunks", {"trunk": {"port_id": other_port["id"]}}, "demo"), 404, "PortNotFound")
    error(api.put(f"trunks/{trunk['id']}/add_subports", {"sub_ports": [_sub(other_port)]}, "demo"), 404, "PortNotFound")
    # Readers read, members write; admins see every project's trunks.
    assert api.show("trunks", "trunk", trunk["id"], "reader")["id"] == trunk["id"]
    error(
        api.put(f"trunks/{trunk['id']}/add_subports", {"sub_ports": [_sub(sub)]}, "reader"), 403, "PolicyNotAuthorized"
    )
    assert [x["id"] for x in api.list("trunks", "admin")] == [trunk["id"]]
    # tags (standard-attr-tag covers trunks)
    assert api.put(f"trunks/{trunk['id']}/tags/red", None, "demo").status_code == 201
    assert api.show("trunks", "trunk", trunk["id"], "demo")["tags"] == ["red"]


def test_subports_follow_the_parent_and_status(api, nets):
    a, b = nets
    parent, sub = _port(api, a), _port(api, b)
    trunk = _trunk(api, parent, [_sub(sub)])
    # Binding the parent (what booting an instance does) binds the subports to the same host.
    api.ok(api.put(f"ports/{parent['id']}", {"port": {"binding:host_id": "compute1"}}))
    assert api.show("ports", "port", sub["id"])["binding:host_id"] == "compute1"
    # The agent of that host wires the parent first, then the subport.
    r = api.post("/neutrino/v1/ports/status", {"host": "compute1", "ports": {parent["id"]: "ACTIVE"}})
    assert r.status_code == 200, r.text
    assert api.show("trunks", "trunk", trunk["id"], "demo")["status"] == "BUILD"
    api.post("/neutrino/v1/ports/status", {"host": "compute1", "ports": {sub["id"]: "ACTIVE"}})
    assert api.show("trunks", "trunk", trunk["id"], "demo")["status"] == "ACTIVE"
    api.post("/neutrino/v1/ports/status", {"host": "compute1", "ports": {sub["id"]: "ERROR"}})
    assert api.show("trunks", "trunk", trunk["id"], "demo")["status"] == "DEGRADED"
    # A subport added to a bound trunk is bound at once; a removed one is unbound.
    s2 = _port(api, b)
    api.ok(api.put(f"trunks/{trunk['id']}/add_subports", {"sub_ports": [_sub(s2, 9)]}, "demo"))
    assert api.show("ports", "port", s2["id"])["binding:host_id"] == "compute1"
    api.ok(api.put(f"trunks/{trunk['id']}/remove_subports", {"sub_ports": [{"port_id": s2["id"]}]}, "demo"))
    assert api.show("ports", "port", s2["id"])["binding:host_id"] == ""
    # Trunks are on the feed (agents follow them), and so is the parent's trunk_details.
    snap = api.ok(api.get("/neutrino/v1/snapshot?resources=trunk,port"))["resources"]
    assert [x["id"] for x in snap["trunks"]] == [trunk["id"]]
    feed_parent = next(p for p in snap["ports"] if p["id"] == parent["id"])
    assert feed_parent["trunk_details"]["sub_ports"][0]["port_id"] == sub["id"]


def test_extensions_listed(api):
    aliases = {e["alias"] for e in api.ok(api.get("extensions"))["extensions"]}
    assert {"trunk", "trunk-details"} <= aliases
