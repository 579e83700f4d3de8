"""RBAC policies on subnet pools and address scopes (``rbac-subnetpool``, ``rbac-address-scope``)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import error


def share(api: Any, object_type: str, object_id: str, target: str, as_: str = "demo") -> Any:
    return api.post(
        "rbac-policies",
        {
            "rbac_policy": {
                "object_type": object_type,
                "object_id": object_id,
                "action": "access_as_shared",
                "target_tenant": target,
            }
        },
        as_,
    )


def pool(api: Any, as_: str = "demo", **attrs: Any) -> dict[str, Any]:
    attrs.setdefault("name", "pool")
    attrs.setdefault("prefixes", ["10.10.0.0/16"])
    return api.create("subnetpools", "subnetpool", as_, **attrs)


def test_pool_shared_with_one_project(api):
    p = pool(api, default_prefixlen=24)
    error(api.get(f"subnetpools/{p['id']}", "other"), 404, "SubnetPoolNotFound")
    pol = api.ok(share(api, "subnetpool", p["id"], "p-other"), 201)["rbac_policy"]
    seen = api.show("subnetpools", "subnetpool", p["id"], "other")
    assert seen["shared"] is True
    assert api.show("subnetpools", "subnetpool", p["id"], "demo")["shared"] is False
    assert p["id"] in {x["id"] for x in api.list("subnetpools", "other")}
    # The target allocates a subnet from it on its own network.
    net = api.network("other")
    sub = api.ok(
        api.post("subnets", {"subnet": {"network_id": net["id"], "subnetpool_id": p["id"], "ip_version": 4}}, "other"),
        201,
    )["subnet"]
    assert sub["cidr"] == "10.10.0.0/24" and sub["subnetpool_id"] == p["id"]
    # Its subnet depends on the policy.
    error(
        api.delete(f"rbac-policies/{pol['id']}", "demo"),
        409,
        "RbacPolicyInUse",
        f"RBAC policy on object {p['id']} cannot be removed because other objects depend on it.\n"
        "Details: project_id=p-other",
    )
    api.ok(api.delete(f"subnets/{sub['id']}", "other"), 204)
    api.ok(api.delete(f"rbac-policies/{pol['id']}", "demo"), 204)
    error(api.get(f"subnetpools/{p['id']}", "other"), 404, "SubnetPoolNotFound")


def test_shared_pool_attribute_is_the_wildcard_policy(api):
    p = pool(api, "admin", shared=True)
    pols = api.list("rbac-policies", "admin", f"object_id={p['id']}")
    assert [(x["object_type"], x["target_tenant"]) for x in pols] == [("subnetpool", "*")]
    assert api.show("subnetpools", "subnetpool", p["id"], "demo")["shared"] is True
    api.ok(api.delete(f"rbac-policies/{pols[0]['id']}", "admin"), 204)
    assert api.show("subnetpools", "subnetpool", p["id"], "admin")["shared"] is False
    error(api.get(f"subnetpools/{p['id']}", "demo"), 404, "SubnetPoolNotFound")
    api.ok(api.delete(f"subnetpools/{p['id']}"), 204)


def test_address_scope_sharing_and_pool_in_scope(api):
    scope = api.create("address-scopes", "address_scope", "demo", name="s", ip_version=4)
    p = pool(api, address_scope_id=scope["id"])
    # A pool in a scope may only be shared with projects that may use the scope.
    error(
        share(api, "subnetpool", p["id"], "p-other"),
        400,
        "InvalidInput",
        f"Invalid input for operation: Failed to create RBAC policy on object {p['id']} because target "
        "project doesn't have access to associated address scope.",
    )
    error(api.get(f"address-scopes/{scope['id']}", "other"), 404, "AddressScopeNotFound")
    spol = api.ok(share(api, "address_scope", scope["id"], "p-other"), 201)["rbac_policy"]
    seen = api.show("address-scopes", "address_scope", scope["id"], "other")
    assert seen["shared"] is True
    api.ok(share(api, "subnetpool", p["id"], "p-other"), 201)
    # The target's own pool in the shared scope depends on the scope's policy.
    mine = pool(api, "other", name="theirs", prefixes=["10.20.0.0/16"], address_scope_id=scope["id"])
    error(api.delete(f"rbac-policies/{spol['id']}", "demo"), 409, "RbacPolicyInUse")
    api.ok(api.delete(f"subnetpools/{mine['id']}", "other"), 204)
    api.ok(api.delete(f"rbac-policies/{spol['id']}", "demo"), 204)


def test_shared_scope_attribute_and_deletes(api):
    scope = api.create("address-scopes", "address_scope", "admin", name="s", ip_version=4, shared=True)
    pols = api.list("rbac-policies", "admin", f"object_id={scope['id']}")
    assert [(x["object_type"], x["target_tenant"]) for x in pols] == [("address_scope", "*")]
    p = pool(api)
    api.ok(share(api, "subnetpool", p["id"], "p-other"), 201)
    api.ok(api.delete(f"subnetpools/{p['id']}", "demo"), 204)
    api.ok(api.delete(f"address-scopes/{scope['id']}"), 204)
    assert api.list("rbac-policies", "admin") == []


def test_pool_owner_only_and_extensions(api):
    p = pool(api)
    error(
        share(api, "subnetpool", p["id"], "p-admin", "other"),
        400,
        "InvalidInput",
        f"Invalid input for operation: Subnet pool {p['id']} could not be found.",
    )
    aliases = {e["alias"] for e in api.ok(api.get("extensions"))["extensions"]}
    assert {"rbac-policies", "rbac-security-groups", "rbac-subnetpool", "rbac-address-scope"} <= aliases
