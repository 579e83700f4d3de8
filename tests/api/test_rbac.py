"""RBAC policies (``/v2.0/rbac-policies``) for networks: the API, visibility and use.

Projects: ``demo`` (p-demo) owns the objects, ``other`` (p-other) is the target,
a third project (p-third) is neither.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import error
from tests.api.l3_helpers import external_network, router, set_gateway

THIRD = "p-third"


def rbac(
    api: Any,
    object_id: str,
    target: str,
    as_: str = "demo",
    action: str = "access_as_shared",
    object_type: str = "network",
    **extra: Any,
) -> dict[str, Any]:
    body = {"object_type": object_type, "object_id": object_id, "action": action, "target_tenant": target, **extra}
    return api.ok(api.post("rbac-policies", {"rbac_policy": body}, as_), 201)["rbac_policy"]


def names(items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in items}


# --- the resource -------------------------------------------------------------------------------
def test_create_show_list_and_fields(api):
    net = api.network("demo", name="n1")
    pol = rbac(api, net["id"], "p-other")
    assert pol == {
        "id": pol["id"],
        "project_id": "p-demo",
        "tenant_id": "p-demo",
        "object_type": "network",
        "object_id": net["id"],
        "action": "access_as_shared",
        "target_tenant": "p-other",
    }
    assert api.show("rbac-policies", "rbac_policy", pol["id"], "demo") == pol
    assert api.list("rbac-policies", "demo") == [pol]
    assert api.list("rbac-policies", "demo", f"object_id={net['id']}&target_tenant=p-other") == [pol]
    assert api.list("rbac-policies", "demo", "target_tenant=nobody") == []
    assert api.list("rbac-policies", "demo", "fields=action") == [{"action": "access_as_shared"}]
    # Creating a policy advances the network's revision (as Neutron).
    assert api.show("networks", "network", net["id"], "demo")["revision_number"] > net["revision_number"]


def test_policies_are_visible_to_their_project_and_admins_only(api):
    net = api.network("demo")
    pol = rbac(api, net["id"], "p-other")
    assert api.list("rbac-policies", "other") == []  # the target does not see it
    error(
        api.get(f"rbac-policies/{pol['id']}", "other"),
        404,
        "RbacPolicyNotFound",
        f"RBAC policy of type unknown with ID {pol['id']} not found",
    )
    assert names(api.list("rbac-policies", "admin")) == {pol["id"]}
    assert api.list("rbac-policies", "reader") == [pol]  # a reader of the owning project reads
    error(api.delete(f"rbac-policies/{pol['id']}", "reader"), 403, "PolicyNotAuthorized")
    error(api.delete(f"rbac-policies/{pol['id']}", "other"), 404, "RbacPolicyNotFound")


def test_validation(api):
    net = api.network("demo")
    body = {"object_type": "network", "object_id": net["id"], "action": "access_as_shared", "target_tenant": "p-x"}

    def post(**changes: Any) -> Any:
        b = {k: v for k, v in dict(body, **changes).items() if v is not None}
        return api.post("rbac-policies", {"rbac_policy": b}, "demo")

    error(
        post(object_type="router"),
        400,
        "InvalidInput",
        "Invalid input for operation: 'router' is not a valid RBAC object type.",
    )
    error(
        post(action="access_as_owner"),
        400,
        "InvalidActionForType",
        "Invalid action 'access_as_owner' for object type 'network'. Valid actions: "
        "('access_as_external', 'access_as_shared')",
    )
    error(
        post(target_tenant=None),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'target_tenant' not specified",
    )
    error(post(object_id="nope"), 400, "HTTPBadRequest", contains="object_id")
    error(post(target_project="p-x"), 400, "HTTPBadRequest", "Unrecognized attribute(s) 'target_project'")
    error(
        post(object_id="0b1a9a4e-7a0a-4a55-9d53-1c1a6c0e0f00"),
        400,
        "InvalidInput",
        "Invalid input for operation: Network 0b1a9a4e-7a0a-4a55-9d53-1c1a6c0e0f00 could not be found.",
    )
    # The type is case-insensitive (Neutron's converter).
    assert api.ok(post(object_type=" Network "), 201)["rbac_policy"]["object_type"] == "network"
    error(post(), 409, "DuplicateRbacPolicy", "An RBAC policy already exists with those values.")


def test_wildcard_is_admin_only_and_owner_only(api):
    net = api.network("demo")
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "network",
                    "object_id": net["id"],
                    "action": "access_as_shared",
                    "target_tenant": "*",
                }
            },
            "demo",
        ),
        403,
        "PolicyNotAuthorized",
        "(rule:create_rbac_policy and rule:create_rbac_policy:target_tenant) is disallowed by policy",
    )
    # Another project cannot share what it does not own: invisible objects read as not found,
    # visible ones get Neutron's ownership message.
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "network",
                    "object_id": net["id"],
                    "action": "access_as_shared",
                    "target_tenant": "p-other",
                }
            },
            "other",
        ),
        400,
        "InvalidInput",
        f"Invalid input for operation: Network {net['id']} could not be found.",
    )
    rbac(api, net["id"], "p-other")
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "network",
                    "object_id": net["id"],
                    "action": "access_as_shared",
                    "target_tenant": THIRD,
                }
            },
            "other",
        ),
        400,
        "InvalidInput",
        "Invalid input for operation: Only admins can manipulate policies on networks they do not own.",
    )
    # Nor create one in another project's name.
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "network",
                    "object_id": net["id"],
                    "action": "access_as_shared",
                    "target_tenant": THIRD,
                    "project_id": "p-other",
                }
            },
            "demo",
        ),
        400,
        "HTTPBadRequest",
    )
    # Readers cannot create.
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "network",
                    "object_id": net["id"],
                    "action": "access_as_shared",
                    "target_tenant": THIRD,
                }
            },
            "reader",
        ),
        403,
        "PolicyNotAuthorized",
    )
    # The admin may share anyone's network with everyone.
    pol = rbac(api, net["id"], "*", "admin")
    assert pol["project_id"] == "p-admin"
    assert api.show("networks", "network", net["id"], "demo")["shared"] is True


# --- access_as_shared on networks ------------------------------------------------------------------
def test_shared_with_one_project(api):
    net, sub = api.net_with_subnet("10.0.0.0/24", "demo")
    assert net["id"] not in names(api.list("networks", "other"))
    error(api.get(f"networks/{net['id']}", "other"), 404, "NetworkNotFound")
    error(api.post("ports", {"port": {"network_id": net["id"]}}, "other"), 404, "NetworkNotFound")
    rbac(api, net["id"], "p-other")
    seen = api.show("networks", "network", net["id"], "other")
    assert seen["shared"] is True  # shared with the caller
    assert api.show("networks", "network", net["id"], "demo")["shared"] is False  # not with everyone
    assert api.show("networks", "network", net["id"], "admin")["shared"] is False
    assert net["id"] in names(api.list("networks", "other"))
    assert net["id"] in names(api.list("networks", "other", "shared=False"))  # the filter is the wildcard
    assert net["id"] not in names(api.list("networks", "other", "shared=True"))
    assert sub["id"] in names(api.list("subnets", "other"))
    # The target may plug ports into it (on the network's subnet), not create subnets.
    port = api.port(net["id"], "other")
    assert port["project_id"] == "p-other" and port["fixed_ips"][0]["subnet_id"] == sub["id"]
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/24", "ip_version": 4}}, "other"),
        403,
        "PolicyNotAuthorized",
    )
    # ... nor choose addresses (that stays the owner's), like on any shared network.
    error(
        api.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}}, "other"),
        403,
        "PolicyNotAuthorized",
    )
    # Nor change or delete the network.
    error(api.put(f"networks/{net['id']}", {"network": {"name": "x"}}, "other"), 403, "PolicyNotAuthorized")


def test_third_project_sees_nothing(api, monkeypatch):
    from tests.api import conftest

    monkeypatch.setitem(conftest.IDENTITIES, "third", ("u-third", THIRD, ("member", "reader")))
    net, sub = api.net_with_subnet("10.0.0.0/24", "demo")
    rbac(api, net["id"], "p-other")
    assert net["id"] not in names(api.list("networks", "third"))
    assert sub["id"] not in names(api.list("subnets", "third"))
    error(api.post("ports", {"port": {"network_id": net["id"]}}, "third"), 404, "NetworkNotFound")


def test_deleting_the_policy_is_refused_while_the_target_has_ports(api):
    net, _ = api.net_with_subnet("10.0.0.0/24", "demo")
    pol = rbac(api, net["id"], "p-other")
    port = api.port(net["id"], "other")
    err = error(api.delete(f"rbac-policies/{pol['id']}", "demo"), 409, "RbacPolicyInUse")
    assert err["message"].startswith(
        f"RBAC policy on object {net['id']} cannot be removed because other objects depend on it.\nDetails: "
    )
    # Retargeting it away from the project using it is refused too.
    error(
        api.put(f"rbac-policies/{pol['id']}", {"rbac_policy": {"target_tenant": THIRD}}, "demo"), 409, "RbacPolicyInUse"
    )
    # A wildcard policy covers the project: then the targeted one may go.
    wild = rbac(api, net["id"], "*", "admin")
    api.ok(api.delete(f"rbac-policies/{pol['id']}", "demo"), 204)
    # ... and the wildcard is now the one the port depends on.
    error(api.delete(f"rbac-policies/{wild['id']}", "admin"), 409, "RbacPolicyInUse")
    api.ok(api.delete(f"ports/{port['id']}", "other"), 204)
    api.ok(api.delete(f"rbac-policies/{wild['id']}", "admin"), 204)
    error(api.get(f"networks/{net['id']}", "other"), 404, "NetworkNotFound")
    assert api.list("rbac-policies", "admin") == []


def test_update_target(api):
    net, _ = api.net_with_subnet("10.0.0.0/24", "demo")
    pol = rbac(api, net["id"], "p-other")
    moved = api.ok(api.put(f"rbac-policies/{pol['id']}", {"rbac_policy": {"target_tenant": THIRD}}, "demo"))[
        "rbac_policy"
    ]
    assert moved == dict(pol, target_tenant=THIRD)
    error(api.get(f"networks/{net['id']}", "other"), 404, "NetworkNotFound")
    error(
        api.put(f"rbac-policies/{pol['id']}", {"rbac_policy": {"target_tenant": "*"}}, "demo"),
        403,
        "PolicyNotAuthorized",
    )
    error(
        api.put(f"rbac-policies/{pol['id']}", {"rbac_policy": {"action": "access_as_external"}}, "demo"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute action",
    )
    other = rbac(api, net["id"], "p-other")
    error(
        api.put(f"rbac-policies/{other['id']}", {"rbac_policy": {"target_tenant": THIRD}}, "demo"),
        409,
        "DuplicateRbacPolicy",
    )


def test_self_sharing_is_allowed_and_never_in_use(api):
    net, _ = api.net_with_subnet("10.0.0.0/24", "demo")
    pol = rbac(api, net["id"], "p-demo")
    api.port(net["id"], "demo")
    api.ok(api.delete(f"rbac-policies/{pol['id']}", "demo"), 204)


# --- shared=true is the wildcard policy -----------------------------------------------------------
def test_shared_attribute_is_the_wildcard_policy(api):
    net = api.network("admin", shared=True)
    pols = api.list("rbac-policies", "admin", f"object_id={net['id']}")
    assert [(p["action"], p["target_tenant"], p["project_id"]) for p in pols] == [("access_as_shared", "*", "p-admin")]
    assert net["id"] in names(api.list("networks", "demo", "shared=True"))
    # Deleting the wildcard unshares.
    api.ok(api.delete(f"rbac-policies/{pols[0]['id']}", "admin"), 204)
    assert api.show("networks", "network", net["id"])["shared"] is False
    error(api.get(f"networks/{net['id']}", "demo"), 404, "NetworkNotFound")
    # shared=true again creates it, shared=false removes it.
    api.ok(api.put(f"networks/{net['id']}", {"network": {"shared": True}}))
    assert len(api.list("rbac-policies", "admin", f"object_id={net['id']}&target_tenant=*")) == 1
    api.ok(api.put(f"networks/{net['id']}", {"network": {"shared": False}}))
    assert api.list("rbac-policies", "admin", f"object_id={net['id']}") == []


def test_unsharing_keeps_projects_with_their_own_policy(api):
    net = api.network("admin", shared=True)
    api.subnet(net["id"], "10.0.0.0/24")
    api.port(net["id"], "demo")
    error(api.put(f"networks/{net['id']}", {"network": {"shared": False}}), 409, "InvalidSharedSetting")
    wild = api.list("rbac-policies", "admin", f"object_id={net['id']}")[0]
    error(api.delete(f"rbac-policies/{wild['id']}"), 409, "RbacPolicyInUse")
    rbac(api, net["id"], "p-demo", "admin")  # demo keeps access of its own
    api.ok(api.put(f"networks/{net['id']}", {"network": {"shared": False}}))
    assert api.show("networks", "network", net["id"], "demo")["shared"] is True


def test_network_delete_removes_its_policies(api):
    net = api.network("demo")
    rbac(api, net["id"], "p-other")
    api.ok(api.delete(f"networks/{net['id']}", "demo"), 204)
    assert api.list("rbac-policies", "admin") == []


def test_quota(make_api):
    api = make_api({("quotas", "quota_rbac_policy"): "1"})
    net = api.network("demo")
    rbac(api, net["id"], "p-other")
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "network",
                    "object_id": net["id"],
                    "action": "access_as_shared",
                    "target_tenant": THIRD,
                }
            },
            "demo",
        ),
        409,
        "OverQuota",
    )
    usage = api.ok(api.get("quotas/p-demo/details", "demo"))["quota"]["rbac_policy"]
    assert usage["used"] == 1


# --- access_as_external -----------------------------------------------------------------------------
def _private_external(api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An admin network, external for nobody yet."""
    net = api.network("admin", name="ext-private")
    sub = api.subnet(net["id"], "172.20.0.0/24")
    return net, sub


def test_external_for_one_project(api):
    net, sub = _private_external(api)
    r = router(api, "demo")
    error(
        api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {"network_id": net["id"]}}}, "demo"),
        404,
        "NetworkNotFound",
    )
    pol = rbac(api, net["id"], "p-demo", "admin", action="access_as_external")
    shown = api.show("networks", "network", net["id"], "demo")
    assert shown["router:external"] is True and shown["shared"] is False
    assert api.show("networks", "network", net["id"], "admin")["router:external"] is True
    assert sub["id"] in names(api.list("subnets", "demo"))
    # Usable as a gateway and for floating IPs by the target; not visible to others.
    gw = set_gateway(api, r["id"], net["id"], "demo")
    assert gw["external_gateway_info"]["network_id"] == net["id"]
    assert net["id"] not in names(api.list("networks", "other"))
    error(api.post("floatingips", {"floatingip": {"floating_network_id": net["id"]}}, "other"), 404, "NetworkNotFound")
    # A project that only sees it as external cannot plug ports into it.
    error(api.post("ports", {"port": {"network_id": net["id"]}}, "demo"), 403, "PolicyNotAuthorized")
    # The router's gateway depends on the policy.
    err = error(api.delete(f"rbac-policies/{pol['id']}", "admin"), 409, "RbacPolicyInUse")
    assert "routers or floating IPs" in err["message"]
    api.ok(api.put(f"routers/{r['id']}", {"router": {"external_gateway_info": {}}}, "demo"))
    fip = api.create("floatingips", "floatingip", "demo", floating_network_id=net["id"])
    error(api.delete(f"rbac-policies/{pol['id']}", "admin"), 409, "RbacPolicyInUse")
    api.ok(api.delete(f"floatingips/{fip['id']}", "demo"), 204)
    api.ok(api.delete(f"rbac-policies/{pol['id']}", "admin"), 204)
    error(api.get(f"networks/{net['id']}", "demo"), 404, "NetworkNotFound")
    # The network stays external (as Neutron): only router:external=false clears it.
    assert api.show("networks", "network", net["id"])["router:external"] is True


def test_external_attribute_is_the_wildcard_external_policy(api):
    net, _ = external_network(api)
    pols = {(p["action"], p["target_tenant"]) for p in api.list("rbac-policies", "admin", f"object_id={net['id']}")}
    assert pols == {("access_as_shared", "*"), ("access_as_external", "*")}
    plain = api.network("admin", **{"router:external": True})
    wild = api.list("rbac-policies", "admin", f"object_id={plain['id']}")
    assert [(p["action"], p["target_tenant"]) for p in wild] == [("access_as_external", "*")]
    assert plain["id"] in names(api.list("networks", "demo"))
    rbac(api, plain["id"], "p-demo", "admin", action="access_as_external")
    # router:external=false drops every external policy.
    api.ok(api.put(f"networks/{plain['id']}", {"network": {"router:external": False}}))
    assert api.list("rbac-policies", "admin", f"object_id={plain['id']}") == []
    error(api.get(f"networks/{plain['id']}", "demo"), 404, "NetworkNotFound")


def test_wildcard_external_removal_checks_routers_without_their_own_policy(api):
    net, _ = _private_external(api)
    wild = rbac(api, net["id"], "*", "admin", action="access_as_external")
    r = router(api, "demo")
    set_gateway(api, r["id"], net["id"], "demo")
    error(api.delete(f"rbac-policies/{wild['id']}", "admin"), 409, "RbacPolicyInUse")
    rbac(api, net["id"], "p-demo", "admin", action="access_as_external")
    api.ok(api.delete(f"rbac-policies/{wild['id']}", "admin"), 204)
    assert api.show("routers", "router", r["id"], "demo")["external_gateway_info"]["network_id"] == net["id"]


def test_external_action_is_for_networks_only(api):
    sg = api.sg("demo", name="web")
    error(
        api.post(
            "rbac-policies",
            {
                "rbac_policy": {
                    "object_type": "security_group",
                    "object_id": sg["id"],
                    "action": "access_as_external",
                    "target_tenant": "p-other",
                }
            },
            "demo",
        ),
        400,
        "InvalidActionForType",
        "Invalid action 'access_as_external' for object type 'security_group'. Valid actions: ('access_as_shared',)",
    )


def test_router_interface_of_target_counts_as_use(api):
    net, sub = api.net_with_subnet("10.0.0.0/24", "demo")
    pol = rbac(api, net["id"], "p-other")
    r = router(api, "other")
    port = api.port(net["id"], "other")
    api.ok(api.put(f"routers/{r['id']}/add_router_interface", {"port_id": port["id"]}, "other"))
    error(api.delete(f"rbac-policies/{pol['id']}", "demo"), 409, "RbacPolicyInUse")


def test_pagination_and_sorting(api):
    net = api.network("demo")
    made = [rbac(api, net["id"], f"p-{i}") for i in range(3)]
    page = api.ok(api.get("rbac-policies?limit=2&sort_key=target_tenant&sort_dir=desc", "demo"))
    assert [p["target_tenant"] for p in page["rbac_policies"]] == ["p-2", "p-1"]
    assert any(link["rel"] == "next" for link in page["rbac_policies_links"])
    everything = api.list("rbac-policies", "demo", "sort_key=target_tenant&sort_dir=asc")
    assert [p["id"] for p in everything] == [p["id"] for p in made]
