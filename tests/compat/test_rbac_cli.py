"""``openstack network rbac ...`` (unchanged CLI) against ``neutrino up``: sharing a network and a
security group with one project.  The tests share one cloud and build on each other in file order."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.compat

STATE: dict[str, str] = {}


def _json(proc) -> dict:
    return json.loads(proc.stdout)


def _project_id(cloud, name: str) -> str:
    return cloud.osc("admin", "project", "show", name, "-f", "value", "-c", "id").stdout.strip()


def test_share_a_network_with_one_project(cloud):
    STATE["demo"] = _project_id(cloud, "demo")
    STATE["admin"] = _project_id(cloud, "admin")
    net = _json(cloud.osc("admin", "network", "create", "rbac-net", "-f", "json"))
    cloud.osc("admin", "subnet", "create", "--subnet-range", "10.77.0.0/24", "--network", "rbac-net", "rbac-sub")
    STATE["net"] = net["id"]
    assert cloud.osc("demo", "network", "show", "rbac-net", ok=False).returncode != 0
    pol = _json(
        cloud.osc(
            "admin",
            "network",
            "rbac",
            "create",
            "--target-project",
            STATE["demo"],
            "--action",
            "access_as_shared",
            "--type",
            "network",
            "rbac-net",
            "-f",
            "json",
        )
    )
    assert pol["object_id"] == net["id"] and pol["object_type"] == "network"
    assert pol["action"] == "access_as_shared" and pol["target_project_id"] == STATE["demo"]
    assert pol["project_id"] == STATE["admin"]
    STATE["pol"] = pol["id"]
    seen = _json(cloud.osc("demo", "network", "show", net["id"], "-f", "json"))
    assert seen["shared"] is True
    port = _json(cloud.osc("demo", "port", "create", "--network", net["id"], "demo-on-shared", "-f", "json"))
    assert port["project_id"] == STATE["demo"]
    STATE["port"] = port["id"]


def test_list_show_and_filters(cloud):
    rows = _json(cloud.osc("admin", "network", "rbac", "list", "--long", "-f", "json"))
    mine = [r for r in rows if r["ID"] == STATE["pol"]]
    assert mine and mine[0]["Object Type"] == "network" and mine[0]["Object ID"] == STATE["net"]
    assert mine[0]["Action"] == "access_as_shared"
    by_target = _json(cloud.osc("admin", "network", "rbac", "list", "--target-project", STATE["demo"], "-f", "json"))
    assert STATE["pol"] in {r["ID"] for r in by_target}
    by_admin = _json(cloud.osc("admin", "network", "rbac", "list", "--target-project", "admin", "-f", "json"))
    assert STATE["pol"] not in {r["ID"] for r in by_admin}
    ext = _json(cloud.osc("admin", "network", "rbac", "list", "--action", "access_as_external", "-f", "json"))
    assert STATE["pol"] not in {r["ID"] for r in ext}
    sgs = _json(cloud.osc("admin", "network", "rbac", "list", "--type", "security_group", "-f", "json"))
    assert STATE["pol"] not in {r["ID"] for r in sgs}
    shown = _json(cloud.osc("admin", "network", "rbac", "show", STATE["pol"], "-f", "json"))
    assert shown["target_project_id"] == STATE["demo"]
    # The target project does not see the policy (Neutron shows policies to their creators).
    assert STATE["pol"] not in {r["ID"] for r in _json(cloud.osc("demo", "network", "rbac", "list", "-f", "json"))}


def test_delete_refused_while_in_use_then_set_and_delete(cloud):
    proc = cloud.osc("admin", "network", "rbac", "delete", STATE["pol"], ok=False)
    assert proc.returncode != 0 and "cannot be removed because other objects depend on it" in proc.stderr
    proc = cloud.osc("admin", "network", "rbac", "set", "--target-project", STATE["admin"], STATE["pol"], ok=False)
    assert proc.returncode != 0
    cloud.osc("demo", "port", "delete", STATE["port"])
    cloud.osc("admin", "network", "rbac", "set", "--target-project", STATE["admin"], STATE["pol"])
    shown = _json(cloud.osc("admin", "network", "rbac", "show", STATE["pol"], "-f", "json"))
    assert shown["target_project_id"] == STATE["admin"]
    assert cloud.osc("demo", "network", "show", STATE["net"], ok=False).returncode != 0
    cloud.osc("admin", "network", "rbac", "delete", STATE["pol"])
    assert cloud.osc("admin", "network", "rbac", "show", STATE["pol"], ok=False).returncode != 0


def test_all_projects_and_external(cloud):
    pol = _json(
        cloud.osc(
            "admin",
            "network",
            "rbac",
            "create",
            "--target-all-projects",
            "--action",
            "access_as_external",
            "--type",
            "network",
            "rbac-net",
            "-f",
            "json",
        )
    )
    assert pol["target_project_id"] == "*"
    seen = _json(cloud.osc("demo", "network", "show", STATE["net"], "-f", "json"))
    assert seen["router:external"] is True and seen["shared"] is False
    # A member may not target every project.
    proc = cloud.osc(
        "demo",
        "network",
        "rbac",
        "create",
        "--target-all-projects",
        "--action",
        "access_as_shared",
        "--type",
        "network",
        STATE["net"],
        ok=False,
    )
    assert proc.returncode != 0
    cloud.osc("admin", "network", "rbac", "delete", pol["id"])


def test_share_a_security_group(cloud):
    sg = _json(cloud.osc("admin", "security", "group", "create", "shared-sg", "-f", "json"))
    assert sg["id"] not in {g["ID"] for g in _json(cloud.osc("demo", "security", "group", "list", "-f", "json"))}
    pol = _json(
        cloud.osc(
            "admin",
            "network",
            "rbac",
            "create",
            "--target-project",
            STATE["demo"],
            "--action",
            "access_as_shared",
            "--type",
            "security_group",
            "shared-sg",
            "-f",
            "json",
        )
    )
    assert pol["object_type"] == "security_group" and pol["object_id"] == sg["id"]
    assert sg["id"] in {g["ID"] for g in _json(cloud.osc("demo", "security", "group", "list", "-f", "json"))}
    cloud.osc("demo", "network", "create", "sg-net")
    cloud.osc("demo", "subnet", "create", "--subnet-range", "10.78.0.0/24", "--network", "sg-net", "sg-sub")
    port = _json(
        cloud.osc(
            "demo", "port", "create", "--network", "sg-net", "--security-group", sg["id"], "sg-port", "-f", "json"
        )
    )
    assert port["security_group_ids"] == [sg["id"]]
    proc = cloud.osc("admin", "network", "rbac", "delete", pol["id"], ok=False)
    assert proc.returncode != 0 and "cannot be removed because other objects depend on it" in proc.stderr
    cloud.osc("demo", "port", "delete", "sg-port")
    cloud.osc("admin", "network", "rbac", "delete", pol["id"])
    assert sg["id"] not in {g["ID"] for g in _json(cloud.osc("demo", "security", "group", "list", "-f", "json"))}
