"""Subnet pools (``subnet_allocation``, ``default-subnetpools``): the pool API, its validations,
subnets allocated from pools (prefix length, explicit CIDR, default pool, quota, growth) and policy."""

from __future__ import annotations

from tests.api.conftest import error

POOL_KEYS = {
    "id",
    "name",
    "tenant_id",
    "project_id",
    "prefixes",
    "min_prefixlen",
    "max_prefixlen",
    "default_prefixlen",
    "default_quota",
    "ip_version",
    "shared",
    "is_default",
    "address_scope_id",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
}


def pool(api, as_="demo", **attrs):
    attrs.setdefault("name", "pool")
    attrs.setdefault("prefixes", ["10.10.0.0/16"])
    return api.create("subnetpools", "subnetpool", as_, **attrs)


def pool_subnet(api, net_id, pool_id, as_="demo", **attrs):
    attrs.setdefault("ip_version", 4)
    return api.post("subnets", {"subnet": {"network_id": net_id, "subnetpool_id": pool_id, **attrs}}, as_)


# --- the pool resource ------------------------------------------------------------------
def test_create_shows_neutron_fields_and_defaults(api):
    p = pool(api, prefixes=["10.10.0.0/16"], description="d")
    assert set(p) == POOL_KEYS
    assert p["ip_version"] == 4 and p["prefixes"] == ["10.10.0.0/16"]
    # Neutron's defaults (min /8, max /32, default = min), returned as strings.
    assert (p["min_prefixlen"], p["default_prefixlen"], p["max_prefixlen"]) == ("8", "8", "32")
    assert p["shared"] is False and p["is_default"] is False and p["default_quota"] is None
    assert p["address_scope_id"] is None and p["project_id"] == "p-demo" and p["revision_number"] == 0
    v6 = pool(api, name="v6", prefixes=["2001:db8::/48"])
    assert v6["ip_version"] == 6 and (v6["min_prefixlen"], v6["max_prefixlen"]) == ("64", "128")
    assert api.show("subnetpools", "subnetpool", p["id"], "demo") == p


def test_prefixes_are_compacted(api):
    p = pool(api, prefixes=["10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/24", "10.0.0.0/26", "192.168.0.5/24"])
    assert p["prefixes"] == ["10.0.0.0/23", "192.168.0.0/24"]


def test_create_validations(api):
    before = api.snapshot()
    error(
        api.post("subnetpools", {"subnetpool": {"prefixes": ["10.0.0.0/8"]}}, "demo"),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'name' not specified",
    )
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x"}}, "demo"),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'prefixes' not specified",
    )
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x", "prefixes": []}}, "demo"),
        400,
        "EmptySubnetPoolPrefixList",
        "Empty subnet pool prefix list.",
    )
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8", "2001:db8::/32"]}}, "demo"),
        400,
        "PrefixVersionMismatch",
        "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
    )
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x", "prefixes": ["nonsense"]}}, "demo"),
        400,
        "HTTPBadRequest",
        contains="is not a valid IP subnet",
    )
    error(
        api.post(
            "subnetpools",
            {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"], "min_prefixlen": 28, "max_prefixlen": 24}},
            "demo",
        ),
        400,
        "IllegalSubnetPoolPrefixBounds",
        "Illegal prefix bounds: min_prefixlen=28, max_prefixlen=24.",
    )
    error(
        api.post(
            "subnetpools", {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"], "default_prefixlen": 4}}, "demo"
        ),
        400,
        "IllegalSubnetPoolPrefixBounds",
        "Illegal prefix bounds: default_prefixlen=4, min_prefixlen=8.",
    )
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"], "max_prefixlen": 33}}, "demo"),
        400,
        "IllegalSubnetPoolPrefixBounds",
        "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32.",
    )
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"], "ip_version": 4}}, "demo"),
        400,
        "HTTPBadRequest",
        "Attribute 'ip_version' not allowed in POST",
    )
    assert api.snapshot() == before


def test_shared_and_default_are_admin_only(api):
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"], "shared": True}}, "demo"),
        403,
        "PolicyNotAuthorized",
        contains="create_subnetpool:shared",
    )
    error(
        api.post("subnetpools", {"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"], "is_default": True}}, "demo"),
        403,
        "PolicyNotAuthorized",
        contains="create_subnetpool:is_default",
    )
    p = pool(api, "demo")
    error(
        api.put(f"subnetpools/{p['id']}", {"subnetpool": {"is_default": True}}, "demo"),
        403,
        "PolicyNotAuthorized",
        contains="update_subnetpool:is_default",
    )
    error(
        api.put(f"subnetpools/{p['id']}", {"subnetpool": {"shared": True}}, "admin"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute shared",
    )


def test_one_default_pool_per_ip_version(api):
    pool(api, "admin", name="d4", is_default=True, shared=True)
    pool(api, "admin", name="d6", prefixes=["2001:db8::/32"], is_default=True)
    error(
        api.post(
            "subnetpools", {"subnetpool": {"name": "x", "prefixes": ["172.16.0.0/12"], "is_default": True}}, "admin"
        ),
        400,
        "InvalidInput",
        contains="A default subnetpool for this IP family has already been set",
    )
    other = pool(api, "admin", name="other", prefixes=["172.16.0.0/12"])
    error(
        api.put(f"subnetpools/{other['id']}", {"subnetpool": {"is_default": True}}, "admin"),
        400,
        "InvalidInput",
        contains="Only one default may exist per IP family",
    )


def test_visibility_own_shared_admin(api):
    mine = pool(api, "demo", name="mine")
    shared = pool(api, "admin", name="shared", prefixes=["172.16.0.0/12"], shared=True)
    private = pool(api, "admin", name="private", prefixes=["192.168.0.0/16"])
    assert {p["name"] for p in api.list("subnetpools", "demo")} == {"mine", "shared"}
    assert {p["name"] for p in api.list("subnetpools", "other")} == {"shared"}
    assert {p["name"] for p in api.list("subnetpools", "admin")} == {"mine", "shared", "private"}
    error(
        api.get(f"subnetpools/{private['id']}", "demo"),
        404,
        "SubnetPoolNotFound",
        f"Subnet pool {private['id']} could not be found.",
    )
    error(api.get(f"subnetpools/{mine['id']}", "other"), 404, "SubnetPoolNotFound")
    # A shared pool is readable, not writable, by other projects.
    error(api.put(f"subnetpools/{shared['id']}", {"subnetpool": {"name": "z"}}, "demo"), 403, "PolicyNotAuthorized")
    error(api.delete(f"subnetpools/{shared['id']}", "demo"), 403, "PolicyNotAuthorized")
    assert [p["name"] for p in api.list("subnetpools", "admin", "is_default=false&name=mine")] == ["mine"]


def test_update_grows_never_shrinks(api):
    p = pool(api, prefixes=["10.10.0.0/24"])
    error(
        api.put(f"subnetpools/{p['id']}", {"subnetpool": {"prefixes": ["10.20.0.0/24"]}}, "demo"),
        400,
        "IllegalSubnetPoolPrefixUpdate",
        "Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes.",
    )
    error(
        api.put(f"subnetpools/{p['id']}", {"subnetpool": {"prefixes": ["10.10.0.0/25"]}}, "demo"),
        400,
        "IllegalSubnetPoolPrefixUpdate",
    )
    error(
        api.put(f"subnetpools/{p['id']}", {"subnetpool": {"prefixes": ["10.10.0.0/24", "2001:db8::/64"]}}, "demo"),
        400,
        "PrefixVersionMismatch",
    )
    grown = api.ok(
        api.put(
            f"subnetpools/{p['id']}",
            {"subnetpool": {"prefixes": ["10.10.0.0/24", "10.10.1.0/24", "10.30.0.0/24"]}},
            "demo",
        )
    )["subnetpool"]
    assert grown["prefixes"] == ["10.10.0.0/23", "10.30.0.0/24"] and grown["revision_number"] == 1
    # A superset given as one larger prefix is fine too.
    wider = api.ok(api.put(f"subnetpools/{p['id']}", {"subnetpool": {"prefixes": ["10.0.0.0/8"]}}, "demo"))
    assert wider["subnetpool"]["prefixes"] == ["10.0.0.0/8"]


def test_update_bounds_and_quota(api):
    p = pool(api, min_prefixlen=16, max_prefixlen=28, default_prefixlen=24)
    out = api.ok(
        api.put(
            f"subnetpools/{p['id']}",
            {"subnetpool": {"default_prefixlen": 26, "default_quota": 512, "name": "renamed"}},
            "demo",
        )
    )["subnetpool"]
    assert (out["min_prefixlen"], out["default_prefixlen"], out["max_prefixlen"]) == ("16", "26", "28")
    assert out["default_quota"] == 512 and out["name"] == "renamed"
    error(
        api.put(f"subnetpools/{p['id']}", {"subnetpool": {"max_prefixlen": 20}}, "demo"),
        400,
        "IllegalSubnetPoolPrefixBounds",
        "Illegal prefix bounds: default_prefixlen=26, max_prefixlen=20.",
    )


def test_delete_refused_while_subnets_allocated(api):
    p = pool(api)
    net = api.network("demo")
    sub = api.ok(pool_subnet(api, net["id"], p["id"], prefixlen=24), 201)["subnet"]
    error(
        api.delete(f"subnetpools/{p['id']}", "demo"),
        400,
        "SubnetPoolDeleteError",
        "Unable to delete subnet pool: Subnet pool has existing allocations.",
    )
    api.ok(api.delete(f"subnets/{sub['id']}", "demo"), 204)
    api.ok(api.delete(f"subnetpools/{p['id']}", "demo"), 204)
    error(api.get(f"subnetpools/{p['id']}", "demo"), 404, "SubnetPoolNotFound")


def test_tags_on_pools(api):
    p = pool(api)
    api.ok(api.put(f"subnetpools/{p['id']}/tags/blue", None, "demo"), 201)
    assert api.show("subnetpools", "subnetpool", p["id"], "demo")["tags"] == ["blue"]


def test_pool_quota_counts_pools(make_api):
    api = make_api({("quotas", "quota_subnetpool"): "1"})
    pool(api)
    error(
        api.post("subnetpools", {"subnetpool": {"name": "2", "prefixes": ["172.16.0.0/12"]}}, "demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['subnetpool'].",
    )


# --- subnets from pools ---------------------------------------------------------------------
def test_subnet_takes_first_free_prefix_of_requested_length(api):
    p = pool(api, prefixes=["10.10.0.0/16"], default_prefixlen=24)
    net = api.network("demo")
    a = api.ok(pool_subnet(api, net["id"], p["id"]), 201)["subnet"]
    assert a["cidr"] == "10.10.0.0/24" and a["subnetpool_id"] == p["id"]
    assert a["gateway_ip"] == "10.10.0.1"
    assert a["allocation_pools"] == [{"start": "10.10.0.2", "end": "10.10.0.254"}]
    net2 = api.network("demo")
    b = api.ok(pool_subnet(api, net2["id"], p["id"], prefixlen=26), 201)["subnet"]
    c = api.ok(pool_subnet(api, api.network("demo")["id"], p["id"], prefixlen=26), 201)["subnet"]
    # Best fit: the /26s come from the same /24, next to each other.
    assert (b["cidr"], c["cidr"]) == ("10.10.1.0/26", "10.10.1.64/26")
    assert api.list("subnets", "demo", f"subnetpool_id={p['id']}").__len__() == 3


def test_subnet_prefixlen_bounds(api):
    p = pool(api, min_prefixlen=20, max_prefixlen=28, default_prefixlen=24)
    net = api.network("demo")
    error(
        pool_subnet(api, net["id"], p["id"], prefixlen=29),
        400,
        "MaxPrefixSubnetAllocationError",
        "Unable to allocate subnet with prefix length 29, maximum allowed prefix is 28.",
    )
    error(
        pool_subnet(api, net["id"], p["id"], prefixlen=16),
        400,
        "MinPrefixSubnetAllocationError",
        "Unable to allocate subnet with prefix length 16, minimum allowed prefix is 20.",
    )
    error(pool_subnet(api, net["id"], p["id"], cidr="10.10.0.0/24", prefixlen=24), 400, "HTTPBadRequest")


def test_explicit_cidr_must_be_free_and_inside_the_pool(api):
    p = pool(api, prefixes=["10.10.0.0/16"], default_prefixlen=24)
    net = api.network("demo")
    s = api.ok(pool_subnet(api, net["id"], p["id"], cidr="10.10.5.0/24"), 201)["subnet"]
    assert s["cidr"] == "10.10.5.0/24" and s["subnetpool_id"] == p["id"]
    error(
        pool_subnet(api, api.network("demo")["id"], p["id"], cidr="10.11.0.0/24"),
        500,
        "SubnetAllocationError",
        "Failed to allocate subnet: Cannot allocate requested subnet from the available set of prefixes.",
    )
    error(pool_subnet(api, api.network("demo")["id"], p["id"], cidr="10.10.5.128/25"), 500, "SubnetAllocationError")
    # Automatic allocations skip the explicit one and fill the smallest free ranges first (best fit:
    # 10.10.4.0/24 is alone between .0/22 and .5, then the /23 at .6, then the /22 at .0).
    nxt = [api.ok(pool_subnet(api, api.network("demo")["id"], p["id"]), 201)["subnet"]["cidr"] for _ in range(6)]
    assert nxt == ["10.10.4.0/24", "10.10.6.0/24", "10.10.7.0/24", "10.10.0.0/24", "10.10.1.0/24", "10.10.2.0/24"]


def test_exhaustion_then_prefix_growth(api):
    p = pool(api, prefixes=["10.10.0.0/24"], default_prefixlen=25)
    nets = [api.network("demo")["id"] for _ in range(4)]
    api.ok(pool_subnet(api, nets[0], p["id"]), 201)
    api.ok(pool_subnet(api, nets[1], p["id"]), 201)
    before = api.snapshot()
    error(
        pool_subnet(api, nets[2], p["id"]),
        500,
        "SubnetAllocationError",
        "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /25.",
    )
    assert api.snapshot() == before
    api.ok(api.put(f"subnetpools/{p['id']}", {"subnetpool": {"prefixes": ["10.10.0.0/24", "10.20.0.0/24"]}}, "demo"))
    grown = api.ok(pool_subnet(api, nets[2], p["id"]), 201)["subnet"]
    assert grown["cidr"] == "10.20.0.0/25"


def test_ip_version_must_match_pool(api):
    p = pool(api, prefixes=["2001:db8::/48"])
    net = api.network("demo")
    error(
        pool_subnet(api, net["id"], p["id"], ip_version=4),
        400,
        "BadRequest",
        "Bad subnets request: Cannot allocate IPv4 subnet from IPv6 subnet pool.",
    )
    s = api.ok(pool_subnet(api, net["id"], p["id"], ip_version=6), 201)["subnet"]
    assert s["cidr"] == "2001:db8::/64" and s["gateway_ip"] == "2001:db8::1"


def test_default_subnetpool(api):
    net = api.network("demo")
    body = {"subnet": {"network_id": net["id"], "ip_version": 4, "use_default_subnetpool": True}}
    error(
        api.post("subnets", body, "demo"),
        400,
        "BadRequest",
        "Bad subnets request: No default subnetpool found for IPv4.",
    )
    d = pool(
        api, "admin", name="default", prefixes=["100.64.0.0/16"], default_prefixlen=26, is_default=True, shared=True
    )
    s = api.ok(api.post("subnets", body, "demo"), 201)["subnet"]
    assert s["subnetpool_id"] == d["id"] and s["cidr"] == "100.64.0.0/26" and s["project_id"] == "p-demo"
    both = {"subnet": {**body["subnet"], "subnetpool_id": d["id"]}}
    error(api.post("subnets", both, "demo"), 400, "BadRequest", contains="cannot both be specified")


def test_foreign_private_pool_is_not_found(api):
    p = pool(api, "admin", name="private")
    net = api.network("demo")
    error(pool_subnet(api, net["id"], p["id"]), 404, "SubnetPoolNotFound")
    error(pool_subnet(api, net["id"], "does-not-exist"), 404, "SubnetPoolNotFound")
    shared = pool(api, "admin", name="shared", prefixes=["172.16.0.0/16"], shared=True, default_prefixlen=24)
    s = api.ok(pool_subnet(api, net["id"], shared["id"]), 201)["subnet"]
    assert s["cidr"] == "172.16.0.0/24"


def test_prefix_quota_per_project(api):
    # default_quota counts addresses (IPv4): 512 = two /24s, or one /24 and two /25s...
    p = pool(api, "admin", prefixes=["10.10.0.0/16"], default_prefixlen=24, default_quota=512, shared=True)
    api.ok(pool_subnet(api, api.network("demo")["id"], p["id"]), 201)
    api.ok(pool_subnet(api, api.network("demo")["id"], p["id"], prefixlen=25), 201)
    net = api.network("demo")["id"]
    error(
        pool_subnet(api, net, p["id"]), 409, "SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota exceeded."
    )
    api.ok(pool_subnet(api, net, p["id"], prefixlen=25), 201)
    error(
        pool_subnet(api, api.network("demo")["id"], p["id"], prefixlen=32, enable_dhcp=False),
        409,
        "SubnetPoolQuotaExceeded",
    )
    # Another project has its own quota.
    api.ok(pool_subnet(api, api.network("other")["id"], p["id"], "other"), 201)


def test_network_pool_affinity(api):
    p1 = pool(api, name="p1", prefixes=["10.10.0.0/16"], default_prefixlen=24)
    p2 = pool(api, name="p2", prefixes=["10.20.0.0/16"], default_prefixlen=24)
    net = api.network("demo")
    api.ok(pool_subnet(api, net["id"], p1["id"]), 201)
    api.ok(pool_subnet(api, net["id"], p1["id"]), 201)
    msg = "Subnets hosted on the same network must be allocated from the same subnet pool."
    error(pool_subnet(api, net["id"], p2["id"]), 400, "NetworkSubnetPoolAffinityError", msg)
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "192.168.0.0/24"}}, "demo"),
        400,
        "NetworkSubnetPoolAffinityError",
        msg,
    )
    plain = api.network("demo")
    api.subnet(plain["id"], "192.168.0.0/24", "demo")
    error(pool_subnet(api, plain["id"], p1["id"]), 400, "NetworkSubnetPoolAffinityError", msg)


def test_extensions_listed(api):
    aliases = {e["alias"] for e in api.ok(api.get("extensions", "demo"))["extensions"]}
    assert {"subnet_allocation", "default-subnetpools", "address-scope"} <= aliases


# --- subnetpool-prefix-ops: add_prefixes / remove_prefixes ----------------------------------
def add_prefixes(api, pool_id, prefixes, as_="demo"):
    return api.put(f"subnetpools/{pool_id}/add_prefixes", {"prefixes": prefixes}, as_)


def remove_prefixes(api, pool_id, prefixes, as_="demo"):
    return api.put(f"subnetpools/{pool_id}/remove_prefixes", {"prefixes": prefixes}, as_)


def test_add_prefixes_merges_and_answers_the_list(api):
    p = pool(api, prefixes=["10.10.0.0/24"], default_prefixlen=24)
    net = api.network("demo")
    api.ok(pool_subnet(api, net["id"], p["id"]), 201)
    error(pool_subnet(api, net["id"], p["id"]), 500, "SubnetAllocationError")  # the pool is full
    out = api.ok(add_prefixes(api, p["id"], ["10.10.1.0/24", "10.30.0.0/24"]))
    assert out == {"prefixes": ["10.10.0.0/23", "10.30.0.0/24"]}
    shown = api.show("subnetpools", "subnetpool", p["id"], "demo")
    assert shown["prefixes"] == out["prefixes"] and shown["revision_number"] == 1
    # The added space is allocated from at once.
    assert api.ok(pool_subnet(api, net["id"], p["id"]), 201)["subnet"]["cidr"] == "10.10.1.0/24"
    # Prefixes already in the pool change nothing but are accepted.
    assert api.ok(add_prefixes(api, p["id"], ["10.10.0.128/25"]))["prefixes"] == out["prefixes"]


def test_prefix_actions_validate_like_create(api):
    p = pool(api, prefixes=["10.10.0.0/24"])
    before = api.snapshot()
    for action in ("add_prefixes", "remove_prefixes"):
        for body in (None, {}, {"prefixes": []}, {"prefixes": "10.0.0.0/8"}, ["10.0.0.0/8"]):
            error(
                api.put(f"subnetpools/{p['id']}/{action}", body, "demo"),
                400,
                "HTTPBadRequest",
                "Request body contains invalid data",
            )
        error(
            api.put(f"subnetpools/{p['id']}/{action}", {"prefixes": ["nonsense"]}, "demo"),
            400,
            "HTTPBadRequest",
            "Invalid input for prefixes. Reason: 'nonsense' is not a valid IP subnet.",
        )
        error(
            api.post(f"subnetpools/{p['id']}/{action}", {"prefixes": ["10.0.0.0/8"]}, "demo"),
            405,
            "HTTPMethodNotAllowed",
        )
    error(
        add_prefixes(api, p["id"], ["2001:db8::/64"]),
        400,
        "PrefixVersionMismatch",
        "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
    )
    error(add_prefixes(api, p["id"], ["10.20.0.0/24", "2001:db8::/64"]), 400, "PrefixVersionMismatch")
    error(add_prefixes(api, "9a8b1c5e-0000-4000-8000-000000000000", ["10.0.0.0/8"]), 404, "SubnetPoolNotFound")
    assert api.snapshot() == before


def test_prefix_actions_policy(api):
    mine = pool(api, "demo", name="mine")
    shared = pool(api, "admin", name="shared", prefixes=["172.16.0.0/16"], shared=True)
    for action in ("add_prefixes", "remove_prefixes"):
        error(
            api.put(f"subnetpools/{mine['id']}/{action}", {"prefixes": ["10.99.0.0/24"]}, "other"),
            404,
            "SubnetPoolNotFound",
        )
        error(
            api.put(f"subnetpools/{shared['id']}/{action}", {"prefixes": ["172.17.0.0/24"]}, "demo"),
            403,
            "PolicyNotAuthorized",
            contains=f"rule:{action}",
        )
        # The owner project's reader sees the pool but may not change it.
        error(
            api.put(f"subnetpools/{mine['id']}/{action}", {"prefixes": ["10.99.0.0/24"]}, "reader"),
            403,
            "PolicyNotAuthorized",
        )
    # Admins act on anyone's pool.
    assert api.ok(add_prefixes(api, mine["id"], ["10.99.0.0/24"], "admin"))["prefixes"] == [
        "10.10.0.0/16",
        "10.99.0.0/24",
    ]


def test_add_prefixes_keeps_address_scopes_unique(api):
    s4 = api.create("address-scopes", "address_scope", "demo", name="s4", ip_version=4)
    a = pool(api, name="a", prefixes=["10.10.0.0/16"], address_scope_id=s4["id"])
    b = pool(api, name="b", prefixes=["10.20.0.0/16"], address_scope_id=s4["id"])
    error(add_prefixes(api, b["id"], ["10.10.5.0/24"]), 409, "AddressScopePrefixConflict")
    assert api.ok(add_prefixes(api, b["id"], ["10.21.0.0/16"]))["prefixes"] == ["10.20.0.0/15"]
    # A pool in another project's shared scope cannot be changed by its owner (as updates).
    shared = api.create("address-scopes", "address_scope", "admin", name="sh", ip_version=4, shared=True)
    c = pool(api, name="c", prefixes=["10.40.0.0/16"], address_scope_id=shared["id"])
    error(add_prefixes(api, c["id"], ["10.41.0.0/16"]), 400, "IllegalSubnetPoolUpdate")
    assert a["address_scope_id"] == s4["id"]


def test_remove_prefixes(api):
    p = pool(api, prefixes=["10.10.0.0/16", "10.30.0.0/24"])
    net = api.network("demo")
    sub = api.ok(pool_subnet(api, net["id"], p["id"], prefixlen=24), 201)["subnet"]
    assert sub["cidr"] == "10.30.0.0/24"  # best fit: the smallest free range
    # A range holding an allocated subnet cannot go (nor any prefix overlapping it).
    for gone in (["10.30.0.0/24"], ["10.30.0.128/25"], ["10.0.0.0/8"]):
        error(
            remove_prefixes(api, p["id"], gone),
            400,
            "IllegalSubnetPoolPrefixUpdate",
            "Illegal update to prefixes: One or more the prefixes to be removed is in use by a subnet.",
        )
    # Part of a prefix: the rest stays, compacted.
    out = api.ok(remove_prefixes(api, p["id"], ["10.10.128.0/17", "10.10.64.0/18"]))
    assert out == {"prefixes": ["10.10.0.0/18", "10.30.0.0/24"]}
    shown = api.show("subnetpools", "subnetpool", p["id"], "demo")
    assert shown["prefixes"] == out["prefixes"] and shown["revision_number"] == 1
    # Addresses not in the pool: nothing changes (no new revision).
    assert api.ok(remove_prefixes(api, p["id"], ["192.168.0.0/24", "2001:db8::/64"]))["prefixes"] == out["prefixes"]
    assert api.show("subnetpools", "subnetpool", p["id"], "demo")["revision_number"] == 1
    # The removed space is no longer allocated from.
    error(pool_subnet(api, net["id"], p["id"], cidr="10.10.128.0/24"), 500, "SubnetAllocationError")
    # Once the subnet is gone its prefix can be removed too.
    api.ok(api.delete(f"subnets/{sub['id']}", "demo"), 204)
    assert api.ok(remove_prefixes(api, p["id"], ["10.30.0.0/24"]))["prefixes"] == ["10.10.0.0/18"]


def test_sorting_by_prefix_lengths_is_numeric(api):
    # As strings ("8", "12", "24") these would sort "12" < "24" < "8".
    for name, prefix, (lo, default, hi) in (
        ("p8", "10.0.0.0/8", (8, 8, 32)),
        ("p24", "192.168.0.0/16", (16, 24, 28)),
        ("p12", "172.16.0.0/12", (10, 12, 30)),
    ):
        pool(api, name=name, prefixes=[prefix], min_prefixlen=lo, default_prefixlen=default, max_prefixlen=hi)

    def names(q):
        return [p["name"] for p in api.list("subnetpools", "demo", q)]

    assert names("sort_key=default_prefixlen&sort_dir=asc") == ["p8", "p12", "p24"]
    assert names("sort_key=default_prefixlen&sort_dir=desc") == ["p24", "p12", "p8"]
    assert names("sort_key=min_prefixlen&sort_dir=asc") == ["p8", "p12", "p24"]
    assert names("sort_key=max_prefixlen&sort_dir=desc") == ["p8", "p12", "p24"]
    # Pagination follows the same order.
    first = api.ok(api.get("subnetpools?sort_key=default_prefixlen&sort_dir=asc&limit=2", "demo"))
    assert [p["name"] for p in first["subnetpools"]] == ["p8", "p12"]
    marker = first["subnetpools"][-1]["id"]
    rest = api.ok(api.get(f"subnetpools?sort_key=default_prefixlen&sort_dir=asc&limit=2&marker={marker}", "demo"))
    assert [p["name"] for p in rest["subnetpools"]] == ["p24"]


def test_prefix_ops_extension_listed(api):
    aliases = {e["alias"] for e in api.ok(api.get("extensions", "demo"))["extensions"]}
    assert "subnetpool-prefix-ops" in aliases
