"""Trunks with the unchanged ``openstack`` CLI (``network trunk`` / ``network subport``) and
openstacksdk.  The tests share one cloud and build on each other in file order."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.compat


def _json(proc) -> dict:
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def ports(cloud):
    """Networks A and B of the demo project, a parent port on A and two subport candidates on B."""
    for net, cidr in (("trunk-a", "10.61.0.0/24"), ("trunk-b", "10.62.0.0/24")):
        cloud.osc("demo", "network", "create", net)
        cloud.osc("demo", "subnet", "create", "--subnet-range", cidr, "--network", net, f"{net}-subnet")
    out = {}
    for name, net in (("parent", "trunk-a"), ("sub1", "trunk-b"), ("sub2", "trunk-b")):
        out[name] = _json(cloud.osc("demo", "port", "create", "--network", net, name, "-f", "json"))
    return out


def test_trunk_create_with_subport(cloud, ports):
    out = _json(
        cloud.osc(
            "demo",
            "network",
            "trunk",
            "create",
            "--parent-port",
            "parent",
            "--subport",
            "port=sub1,segmentation-type=vlan,segmentation-id=101",
            "trunk1",
            "-f",
            "json",
        )
    )
    assert out["name"] == "trunk1" and out["port_id"] == ports["parent"]["id"]
    assert out["status"] == "DOWN"
    subs = out["sub_ports"]
    if isinstance(subs, str):  # older clients print the list as text
        assert ports["sub1"]["id"] in subs and "101" in subs
    else:
        assert subs == [{"port_id": ports["sub1"]["id"], "segmentation_type": "vlan", "segmentation_id": 101}]


def test_trunk_list_and_show(cloud, ports):
    rows = _json(cloud.osc("demo", "network", "trunk", "list", "-f", "json"))
    assert [r["Name"] for r in rows] == ["trunk1"]
    assert rows[0]["Parent Port"] == ports["parent"]["id"]
    out = _json(cloud.osc("demo", "network", "trunk", "show", "trunk1", "-f", "json"))
    assert out["port_id"] == ports["parent"]["id"]
    # trunk-details on the parent port
    parent = _json(cloud.osc("demo", "port", "show", "parent", "-f", "json"))
    details = parent["trunk_details"]
    if isinstance(details, str):
        assert ports["sub1"]["id"] in details
    else:
        assert details["sub_ports"][0]["port_id"] == ports["sub1"]["id"]


def test_trunk_set_and_unset_subport(cloud, ports):
    cloud.osc(
        "demo", "network", "trunk", "set", "--subport", "port=sub2,segmentation-type=vlan,segmentation-id=102", "trunk1"
    )
    rows = _json(cloud.osc("demo", "network", "subport", "list", "--trunk", "trunk1", "-f", "json"))
    assert sorted((r["Port"], r["Segmentation ID"]) for r in rows) == sorted(
        [(ports["sub1"]["id"], 101), (ports["sub2"]["id"], 102)]
    )
    # The same segmentation id again is refused (409 DuplicateSubPort).
    extra = _json(cloud.osc("demo", "port", "create", "--network", "trunk-b", "sub3", "-f", "json"))
    proc = cloud.osc(
        "demo",
        "network",
        "trunk",
        "set",
        "--subport",
        "port=sub3,segmentation-type=vlan,segmentation-id=102",
        "trunk1",
        ok=False,
    )
    assert proc.returncode != 0 and "already in use" in proc.stderr
    cloud.osc("demo", "network", "trunk", "unset", "--subport", "sub2", "trunk1")
    rows = _json(cloud.osc("demo", "network", "subport", "list", "--trunk", "trunk1", "-f", "json"))
    assert [r["Port"] for r in rows] == [ports["sub1"]["id"]]
    assert extra["id"]


def test_port_delete_refused_while_in_a_trunk(cloud, ports):
    proc = cloud.osc("demo", "port", "delete", "parent", ok=False)
    assert proc.returncode != 0
    proc = cloud.osc("demo", "port", "delete", "sub1", ok=False)
    assert proc.returncode != 0


def test_sdk_drives_trunks(cloud, ports):
    import openstack

    from tests.fullstack.helpers import openrc_connect

    conn = openrc_connect(cloud.state_dir / "demo-openrc")
    trunk = conn.network.find_trunk("trunk1")
    assert trunk is not None and trunk.port_id == ports["parent"]["id"]
    subs = conn.network.get_trunk_subports(trunk)
    assert [s["port_id"] for s in subs["sub_ports"]] == [ports["sub1"]["id"]]
    conn.network.add_trunk_subports(
        trunk, [{"port_id": ports["sub2"]["id"], "segmentation_type": "vlan", "segmentation_id": 202}]
    )
    assert len(conn.network.get_trunk_subports(trunk)["sub_ports"]) == 2
    conn.network.delete_trunk_subports(trunk, [{"port_id": ports["sub2"]["id"]}])
    assert len(conn.network.get_trunk_subports(trunk)["sub_ports"]) == 1
    assert isinstance(conn, openstack.connection.Connection)


def test_trunk_delete(cloud, ports):
    cloud.osc("demo", "network", "trunk", "delete", "trunk1")
    assert _json(cloud.osc("demo", "network", "trunk", "list", "-f", "json")) == []
    sub = _json(cloud.osc("demo", "port", "show", "sub1", "-f", "json"))
    assert sub["device_owner"] == "" and sub["device_id"] == ""
    cloud.osc("demo", "port", "delete", "sub1")
