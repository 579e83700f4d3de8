"""Address scopes (``address-scope``): the API, pools joining scopes, and networks'
``ipv4_address_scope`` / ``ipv6_address_scope``."""

from __future__ import annotations

from tests.api.conftest import error
from tests.api.l3_helpers import changes

SCOPE_KEYS = {
    "id",
    "name",
    "tenant_id",
    "project_id",
    "shared",
    "ip_version",
    "description",
    "created_at",
    "updated_at",
    "revision_number",
}


def scope(api, as_="demo", **attrs):
    attrs.setdefault("name", "scope")
    attrs.setdefault("ip_version", 4)
    return api.create("address-scopes", "address_scope", as_, **attrs)


def pool(api, as_="demo", **attrs):
    attrs.setdefault("name", "pool")
    attrs.setdefault("prefixes", ["10.10.0.0/16"])
    return api.create("subnetpools", "subnetpool", as_, **attrs)


def test_crud(api):
    s = scope(api, name="s1")
    assert set(s) == SCOPE_KEYS
    assert s["ip_version"] == 4 and s["shared"] is False and s["project_id"] == "p-demo"
    assert api.list("address-scopes", "demo") == [s]
    out = api.ok(api.put(f"address-scopes/{s['id']}", {"address_scope": {"name": "s2"}}, "demo"))["address_scope"]
    assert out["name"] == "s2" and out["revision_number"] == 1
    error(
        api.put(f"address-scopes/{s['id']}", {"address_scope": {"ip_version": 6}}, "demo"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute ip_version",
    )
    api.ok(api.delete(f"address-scopes/{s['id']}", "demo"), 204)
    error(
        api.get(f"address-scopes/{s['id']}", "demo"),
        404,
        "AddressScopeNotFound",
        f"Address scope {s['id']} could not be found.",
    )


def test_create_validations(api):
    error(
        api.post("address-scopes", {"address_scope": {"name": "x"}}, "demo"),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'ip_version' not specified",
    )
    error(
        api.post("address-scopes", {"address_scope": {"name": "x", "ip_version": 5}}, "demo"),
        400,
        "HTTPBadRequest",
        contains="Invalid input for ip_version",
    )
    error(
        api.post("address-scopes", {"address_scope": {"name": "x", "ip_version": 4, "shared": True}}, "demo"),
        403,
        "PolicyNotAuthorized",
        contains="create_address_scope:shared",
    )


def test_visibility_and_sharing(api):
    mine = scope(api, "demo", name="mine")
    shared = scope(api, "admin", name="shared", shared=True)
    private = scope(api, "admin", name="private")
    assert {s["name"] for s in api.list("address-scopes", "demo")} == {"mine", "shared"}
    assert {s["name"] for s in api.list("address-scopes", "other")} == {"shared"}
    error(api.get(f"address-scopes/{private['id']}", "demo"), 404, "AddressScopeNotFound")
    error(api.get(f"address-scopes/{mine['id']}", "other"), 404, "AddressScopeNotFound")
    error(
        api.put(f"address-scopes/{mine['id']}", {"address_scope": {"shared": True}}, "demo"),
        403,
        "PolicyNotAuthorized",
        contains="update_address_scope:shared",
    )
    error(
        api.put(f"address-scopes/{shared['id']}", {"address_scope": {"shared": False}}, "admin"),
        400,
        "AddressScopeUpdateError",
        contains="Shared address scope can't be unshared",
    )
    error(
        api.put(f"address-scopes/{shared['id']}", {"address_scope": {"name": "n"}}, "demo"), 403, "PolicyNotAuthorized"
    )


def test_pool_in_scope_checks(api):
    s4 = scope(api, name="s4")
    s6 = scope(api, name="s6", ip_version=6)
    p = pool(api, name="a", prefixes=["10.10.0.0/16"], address_scope_id=s4["id"])
    assert p["address_scope_id"] == s4["id"]
    error(
        api.post(
            "subnetpools",
            {"subnetpool": {"name": "v", "prefixes": ["10.20.0.0/16"], "address_scope_id": s6["id"]}},
            "demo",
        ),
        400,
        "IllegalSubnetPoolIpVersionAssociationToAddressScope",
        contains="ip_version is not 6",
    )
    # Overlapping prefixes in one scope are refused; outside the scope they are fine.
    error(
        api.post(
            "subnetpools",
            {"subnetpool": {"name": "b", "prefixes": ["10.10.128.0/20"], "address_scope_id": s4["id"]}},
            "demo",
        ),
        409,
        "AddressScopePrefixConflict",
        "Failed to associate address scope: subnetpools within an address scope must have unique prefixes.",
    )
    b = pool(api, name="b", prefixes=["10.10.128.0/20"])
    error(
        api.put(f"subnetpools/{b['id']}", {"subnetpool": {"address_scope_id": s4["id"]}}, "demo"),
        409,
        "AddressScopePrefixConflict",
    )
    # Growing a pool into another pool's prefixes of the same scope is refused as well.
    c = pool(api, name="c", prefixes=["10.30.0.0/16"], address_scope_id=s4["id"])
    error(
        api.put(f"subnetpools/{c['id']}", {"subnetpool": {"prefixes": ["10.30.0.0/16", "10.10.0.0/24"]}}, "demo"),
        409,
        "AddressScopePrefixConflict",
    )
    # Another project's private scope cannot be used, nor a missing one.
    other_scope = scope(api, "other", name="theirs")
    error(
        api.post(
            "subnetpools",
            {"subnetpool": {"name": "d", "prefixes": ["10.40.0.0/16"], "address_scope_id": other_scope["id"]}},
            "demo",
        ),
        400,
        "IllegalSubnetPoolAssociationToAddressScope",
    )
    error(
        api.post(
            "subnetpools",
            {
                "subnetpool": {
                    "name": "d",
                    "prefixes": ["10.40.0.0/16"],
                    "address_scope_id": "9a8b1c5e-0000-4000-8000-000000000000",
                }
            },
            "demo",
        ),
        404,
        "AddressScopeNotFound",
    )
    # A scope in use by a pool cannot be deleted.
    error(api.delete(f"address-scopes/{s4['id']}", "demo"), 409, "AddressScopeInUse")
    api.ok(api.put(f"subnetpools/{p['id']}", {"subnetpool": {"address_scope_id": None}}, "demo"))
    api.ok(api.put(f"subnetpools/{c['id']}", {"subnetpool": {"address_scope_id": None}}, "demo"))
    api.ok(api.delete(f"address-scopes/{s4['id']}", "demo"), 204)


def test_pool_in_shared_foreign_scope(api):
    shared = scope(api, "admin", name="shared", shared=True)
    p = pool(api, "demo", address_scope_id=shared["id"])
    assert p["address_scope_id"] == shared["id"]
    error(
        api.put(f"subnetpools/{p['id']}", {"subnetpool": {"name": "x"}}, "demo"),
        400,
        "IllegalSubnetPoolUpdate",
        contains="cannot be updated when associated with shared address scope",
    )


def test_network_address_scope_attributes(api):
    s4 = scope(api, name="s4")
    s6 = scope(api, name="s6", ip_version=6)
    p4 = pool(api, name="p4", prefixes=["10.10.0.0/16"], default_prefixlen=24, address_scope_id=s4["id"])
    p6 = pool(api, name="p6", prefixes=["2001:db8::/48"], address_scope_id=s6["id"])
    net = api.network("demo")
    assert net["ipv4_address_scope"] is None and net["ipv6_address_scope"] is None
    api.create("subnets", "subnet", "demo", network_id=net["id"], ip_version=4, subnetpool_id=p4["id"])
    shown = api.show("networks", "network", net["id"], "demo")
    assert shown["ipv4_address_scope"] == s4["id"] and shown["ipv6_address_scope"] is None
    api.create("subnets", "subnet", "demo", network_id=net["id"], ip_version=6, subnetpool_id=p6["id"])
    (listed,) = [n for n in api.list("networks", "demo") if n["id"] == net["id"]]
    assert listed["ipv4_address_scope"] == s4["id"] and listed["ipv6_address_scope"] == s6["id"]
    # The feed carries the network with its scope (the L3 agent reads it from there).
    last = [body for _, _, body in changes(api, "network", net["id"]) if body][-1]
    assert last["ipv4_address_scope"] == s4["id"]
    # Leaving the scope: the pool's networks are re-announced without it.
    api.ok(api.put(f"subnetpools/{p4['id']}", {"subnetpool": {"address_scope_id": None}}, "demo"))
    assert api.show("networks", "network", net["id"], "demo")["ipv4_address_scope"] is None
    last = [body for _, _, body in changes(api, "network", net["id"]) if body][-1]
    assert last["ipv4_address_scope"] is None


def test_network_scope_affinity(api):
    s4 = scope(api, name="s4")
    s4b = scope(api, name="s4b")
    pa = pool(api, name="a", prefixes=["10.10.0.0/16"], default_prefixlen=24, address_scope_id=s4["id"])
    pb = pool(api, name="b", prefixes=["10.20.0.0/16"], default_prefixlen=24, address_scope_id=s4["id"])
    pc = pool(api, name="c", prefixes=["10.30.0.0/16"], default_prefixlen=24, address_scope_id=s4b["id"])
    net = api.network("demo")
    api.create("subnets", "subnet", "demo", network_id=net["id"], ip_version=4, subnetpool_id=pa["id"])
    # Another pool of the same scope may serve the network; a pool of another scope may not.
    api.create("subnets", "subnet", "demo", network_id=net["id"], ip_version=4, subnetpool_id=pb["id"])
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pc["id"]}}, "demo"),
        400,
        "NetworkAddressScopeAffinityError",
    )
    # Other updates of a pool sharing a network with another pool of its scope are fine.
    api.ok(api.put(f"subnetpools/{pa['id']}", {"subnetpool": {"name": "renamed"}}, "demo"))
    # Moving a pool to another scope would split the network: refused.
    error(
        api.put(f"subnetpools/{pa['id']}", {"subnetpool": {"address_scope_id": s4b["id"]}}, "demo"),
        400,
        "NetworkAddressScopeAffinityError",
    )
