"""RBAC policies on security groups (``rbac-security-groups``): sharing a group with a project."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import error


def share(api: Any, sg_id: str, target: str, as_: str = "demo") -> dict[str, Any]:
    return api.ok(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "security_group",
                    "object_id": sg_id,
                    "action": "access_as_shared",
                    "target_tenant": target,
                }
            },
            as_,
        ),
        201,
    )["rbac_policy"]


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in items}


def test_shared_group_is_visible_and_usable_by_the_target(api):
    sg = api.sg("demo", name="web")
    net, _ = api.net_with_subnet("10.0.0.0/24", "other")
    error(api.get(f"security-groups/{sg['id']}", "other"), 404, "SecurityGroupNotFound")
    error(
        api.post("ports", {"port": {"network_id": net["id"], "security_groups": [sg["id"]]}}, "other"),
        404,
        "SecurityGroupNotFound",
    )
    share(api, sg["id"], "p-other")
    seen = api.show("security-groups", "security_group", sg["id"], "other")
    assert seen["shared"] is True and seen["project_id"] == "p-demo"
    assert [r["direction"] for r in seen["security_group_rules"]] == ["egress", "egress"]
    assert api.show("security-groups", "security_group", sg["id"], "demo")["shared"] is False
    assert sg["id"] in ids(api.list("security-groups", "other"))
    port = api.port(net["id"], "other", security_groups=[sg["id"]])
    assert port["security_groups"] == [sg["id"]]
    # Put on an existing port too.
    p2 = api.port(net["id"], "other")
    assert api.ok(api.put(f"ports/{p2['id']}", {"port": {"security_groups": [sg["id"]]}}, "other"))["port"][
        "security_groups"
    ] == [sg["id"]]
    # The target cannot change the group or its rules.
    error(
        api.put(f"security-groups/{sg['id']}", {"security_group": {"name": "x"}}, "other"), 403, "PolicyNotAuthorized"
    )
    error(
        api.post(
            "security-group-rules",
            {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress"}},
            "other",
        ),
        403,
        "PolicyNotAuthorized",
    )
    error(api.delete(f"security-groups/{sg['id']}", "other"), 403, "PolicyNotAuthorized")


def test_unshared_group_is_refused_for_other_projects(api):
    sg = api.sg("demo", name="web")
    share(api, sg["id"], "p-admin", "demo")  # shared with someone else only
    net, _ = api.net_with_subnet("10.0.0.0/24", "other")
    error(
        api.post("ports", {"port": {"network_id": net["id"], "security_groups": [sg["id"]]}}, "other"),
        404,
        "SecurityGroupNotFound",
    )
    assert sg["id"] not in ids(api.list("security-groups", "other"))


def test_policy_delete_refused_while_target_ports_use_the_group(api):
    sg = api.sg("demo", name="web")
    pol = share(api, sg["id"], "p-other")
    net, _ = api.net_with_subnet("10.0.0.0/24", "other")
    port = api.port(net["id"], "other", security_groups=[sg["id"]])
    error(
        api.delete(f"rbac-policies/{pol['id']}", "demo"),
        409,
        "RbacPolicyInUse",
        f"RBAC policy on object {sg['id']} cannot be removed because other objects depend on it.\n"
        "Details: project_id=p-other",
    )
    error(
        api.put(f"rbac-policies/{pol['id']}", {"rbac_policy": {"target_tenant": "p-admin"}}, "demo"),
        409,
        "RbacPolicyInUse",
    )
    api.ok(api.put(f"ports/{port['id']}", {"port": {"security_groups": []}}, "other"))
    api.ok(api.delete(f"rbac-policies/{pol['id']}", "demo"), 204)
    error(api.get(f"security-groups/{sg['id']}", "other"), 404, "SecurityGroupNotFound")


def test_wildcard_group_sharing(api):
    sg = api.sg("demo", name="web")
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "security_group",
                    "object_id": sg["id"],
                    "action": "access_as_shared",
                    "target_tenant": "*",
                }
            },
            "demo",
        ),
        403,
        "PolicyNotAuthorized",
    )
    wild = share(api, sg["id"], "*", "admin")
    assert api.show("security-groups", "security_group", sg["id"], "demo")["shared"] is True
    assert api.show("security-groups", "security_group", sg["id"], "other")["shared"] is True
    net, _ = api.net_with_subnet("10.0.0.0/24", "other")
    api.port(net["id"], "other", security_groups=[sg["id"]])
    error(api.delete(f"rbac-policies/{wild['id']}", "admin"), 409, "RbacPolicyInUse")
    share(api, sg["id"], "p-other")
    api.ok(api.delete(f"rbac-policies/{wild['id']}", "admin"), 204)


def test_only_the_owner_shares_a_group(api):
    sg = api.sg("demo", name="web")
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "security_group",
                    "object_id": sg["id"],
                    "action": "access_as_shared",
                    "target_tenant": "p-other",
                }
            },
            "other",
        ),
        400,
        "InvalidInput",
        f"Invalid input for operation: Security group {sg['id']} does not exist.",
    )
    share(api, sg["id"], "p-other")
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "security_group",
                    "object_id": sg["id"],
                    "action": "access_as_shared",
                    "target_tenant": "p-admin",
                }
            },
            "other",
        ),
        400,
        "InvalidInput",
        "Invalid input for operation: Only admins can manipulate policies on objects they do not own.",
    )


def test_group_delete_removes_its_policies(api):
    sg = api.sg("demo", name="web")
    share(api, sg["id"], "p-other")
    api.ok(api.delete(f"security-groups/{sg['id']}", "demo"), 204)
    assert api.list("rbac-policies", "admin") == []
