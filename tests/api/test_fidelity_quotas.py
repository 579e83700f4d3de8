"""Issue 14, behaviours of quota updates (``quota-check-limit-default``) and of network MTUs."""

from __future__ import annotations

import pytest

from tests.api.conftest import error

MAX = 2**31 - 1


# --- quota values ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,reason",
    [
        (-2, "'-2' is smaller than minimum of -1."),
        (-100, "'-100' is smaller than minimum of -1."),
        (MAX + 1, f"'{MAX + 1}' is too large - must be no larger than '{MAX}'."),
        (2**40, f"'{2**40}' is too large - must be no larger than '{MAX}'."),
        ("abc", "'abc' is not an integer."),
        ("1.5", "'1.5' is not an integer."),
        (1.5, "'1.5' is not an integer."),
        (True, "'True' is not an integer."),
        (None, "'None' is not an integer."),
        ([], "'[]' is not an integer."),
        ({}, "'{}' is not an integer."),
    ],
)
def test_invalid_quota_values_are_400(api, value, reason):
    before = api.snapshot()
    error(
        api.put("quotas/p-demo", {"quota": {"network": value}}),
        400,
        "HTTPBadRequest",
        f"Invalid input for network. Reason: {reason}",
    )
    assert api.snapshot() == before


@pytest.mark.parametrize("value,stored", [(-1, -1), (0, 0), (MAX, MAX), ("7", 7), (3.0, 3)])
def test_valid_quota_values(api, value, stored):
    assert api.ok(api.put("quotas/p-demo", {"quota": {"port": value}}))["quota"]["port"] == stored


# --- limits below usage ----------------------------------------------------------------------------
def test_lowering_below_usage_is_400_with_neutrons_message(api):
    for _ in range(3):
        api.network("demo")
    before = api.snapshot()
    error(
        api.put("quotas/p-demo", {"quota": {"network": 2}}),
        400,
        "HTTPBadRequest",
        "Quota limit 2 for network must be greater than or equal to already used 3",
    )
    error(
        api.put("quotas/p-demo", {"quota": {"network": 0}}),
        400,
        "HTTPBadRequest",
        "Quota limit 0 for network must be greater than or equal to already used 3",
    )
    # check_limit is accepted and ignored: the check happens anyway
    for flag in (True, False, "true"):
        error(
            api.put("quotas/p-demo", {"quota": {"network": 1, "check_limit": flag}}),
            400,
            "HTTPBadRequest",
            "Quota limit 1 for network must be greater than or equal to already used 3",
        )
    # one resource below usage refuses the whole request
    error(api.put("quotas/p-demo", {"quota": {"port": 5, "network": 1}}), 400, "HTTPBadRequest")
    assert api.snapshot() == before
    # equal to usage, above it, or unlimited: fine
    assert api.ok(api.put("quotas/p-demo", {"quota": {"network": 3}}))["quota"]["network"] == 3
    assert api.ok(api.put("quotas/p-demo", {"quota": {"network": -1}}))["quota"]["network"] == -1


@pytest.mark.parametrize("force", [True, "true", "True", 1])
def test_force_skips_the_usage_check(api, force):
    for _ in range(2):
        api.network("demo")
    q = api.ok(api.put("quotas/p-demo", {"quota": {"network": 1, "force": force}}))["quota"]
    assert q["network"] == 1 and "force" not in q
    error(api.post("networks", {"network": {}}, "demo"), 409, "OverQuota")


@pytest.mark.parametrize("force", [False, "false", 0])
def test_force_false_checks(api, force):
    api.network("demo")
    error(
        api.put("quotas/p-demo", {"quota": {"network": 0, "force": force}}),
        400,
        "HTTPBadRequest",
        "Quota limit 0 for network must be greater than or equal to already used 1",
    )


def test_force_must_be_a_boolean(api):
    error(
        api.put("quotas/p-demo", {"quota": {"network": 1, "force": "perhaps"}}),
        400,
        "HTTPBadRequest",
        contains="'perhaps' cannot be converted to boolean",
    )


def test_usage_counts_only_the_projects_own_resources(api):
    api.network("other")
    assert api.ok(api.put("quotas/p-demo", {"quota": {"network": 0}}))["quota"]["network"] == 0


def test_quota_check_limit_default_is_announced(api):
    aliases = {e["alias"] for e in api.ok(api.get("extensions"))["extensions"]}
    assert "quota-check-limit-default" in aliases


# --- MTU -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mtu,cidr,version,minimum",
    [(67, "10.0.0.0/24", 4, 68), (1279, "2001:db8::/64", 6, 1280), (1000, "2001:db8::/64", 6, 1280)],
)
def test_subnet_on_a_network_whose_mtu_is_too_small_is_409(api, mtu, cidr, version, minimum):
    net = api.network(mtu=mtu)
    before = api.snapshot()
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": version}}),
        409,
        "NetworkMTUSubnetConflict",
        f"Network MTU {mtu} is too small for IPv{version} subnets: the minimum is {minimum}.",
    )
    assert api.snapshot() == before


@pytest.mark.parametrize("mtu,cidr", [(68, "10.0.0.0/24"), (1000, "10.0.0.0/24"), (1280, "2001:db8::/64")])
def test_subnet_at_the_minimum_mtu_is_fine(api, mtu, cidr):
    net = api.network(mtu=mtu)
    api.subnet(net["id"], cidr)


def test_mtu_update_below_the_minimum_of_existing_subnets_is_409(api):
    net = api.network()
    api.subnet(net["id"], "10.0.0.0/24")
    before = api.snapshot()
    error(
        api.put(f"networks/{net['id']}", {"network": {"mtu": 67}}),
        409,
        "NetworkMTUSubnetConflict",
        "Network MTU 67 is too small for IPv4 subnets: the minimum is 68.",
    )
    assert api.snapshot() == before
    assert api.ok(api.put(f"networks/{net['id']}", {"network": {"mtu": 1000}}))["network"]["mtu"] == 1000
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "cidr": "2001:db8::/64", "ip_version": 6}}),
        409,
        "NetworkMTUSubnetConflict",
    )
    api.ok(api.put(f"networks/{net['id']}", {"network": {"mtu": 1400}}))
    api.subnet(net["id"], "2001:db8::/64")
    error(
        api.put(f"networks/{net['id']}", {"network": {"mtu": 1279}}),
        409,
        "NetworkMTUSubnetConflict",
        "Network MTU 1279 is too small for IPv6 subnets: the minimum is 1280.",
    )
    assert api.ok(api.put(f"networks/{net['id']}", {"network": {"mtu": 1280}}))["network"]["mtu"] == 1280


def test_small_mtu_without_subnets_is_fine(api):
    net = api.network(mtu=1400)
    assert api.ok(api.put(f"networks/{net['id']}", {"network": {"mtu": 60}}))["network"]["mtu"] == 60
