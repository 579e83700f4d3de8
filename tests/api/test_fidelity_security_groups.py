"""Security groups, issue 14 fidelity: group ids named by rules and ports, the
reserved name, numeric protocols, quotas at group create, stateless groups."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import error

MISSING = "9a4c7b1e-0d3f-4e55-9c77-0123456789ab"


def _rule(api, sg_id, as_="demo", **attrs):
    return api.post("security-group-rules", {"security_group_rule": {"security_group_id": sg_id, **attrs}}, as_=as_)


def _port_net(api):
    net, _ = api.net_with_subnet()
    return net


# --- unknown and malformed group ids ------------------------------------------------------------
@pytest.mark.parametrize("bad", [MISSING, "not-a-uuid", "x" * 255])
def test_rule_remote_group_unknown_or_malformed_is_404(api, bad):
    sg = api.sg(as_="demo", name="web")
    before = api.snapshot()
    error(
        _rule(api, sg["id"], direction="ingress", remote_group_id=bad),
        404,
        "SecurityGroupNotFound",
        f"Security group {bad} does not exist",
    )
    assert api.snapshot() == before


def test_rule_remote_group_of_another_project_is_404(api):
    mine = api.sg(as_="demo", name="web")
    theirs = api.sg(as_="other", name="theirs")
    error(
        _rule(api, mine["id"], direction="ingress", remote_group_id=theirs["id"]),
        404,
        "SecurityGroupNotFound",
        f"Security group {theirs['id']} does not exist",
    )


@pytest.mark.parametrize("bad", [17, True, ["a"], {"id": "a"}, "x" * 256, "a\x00b"])
def test_rule_remote_group_of_wrong_type_is_400(api, bad):
    sg = api.sg(as_="demo", name="web")
    before = api.snapshot()
    error(
        _rule(api, sg["id"], direction="ingress", remote_group_id=bad),
        400,
        "HTTPBadRequest",
        contains="Invalid input for remote_group_id",
    )
    assert api.snapshot() == before


def test_rule_remote_group_uuid_is_made_canonical(api):
    sg = api.sg(as_="demo", name="web")
    r = api.ok(_rule(api, sg["id"], direction="ingress", remote_group_id=sg["id"].upper()), 201)
    assert r["security_group_rule"]["remote_group_id"] == sg["id"]


@pytest.mark.parametrize("bad", [MISSING, "not-a-uuid"])
def test_port_create_with_unknown_or_malformed_group_is_404(api, bad):
    net = _port_net(api)
    before = api.snapshot()
    error(
        api.post("ports", {"port": {"network_id": net["id"], "security_groups": [bad]}}, as_="demo"),
        404,
        "SecurityGroupNotFound",
        f"Security group {bad} does not exist",
    )
    assert api.snapshot() == before


@pytest.mark.parametrize("bad", [MISSING, "not-a-uuid"])
def test_port_update_with_unknown_or_malformed_group_is_404(api, bad):
    net = _port_net(api)
    port = api.port(net["id"], as_="demo")
    sg = api.sg(as_="demo", name="web")
    error(
        api.put(f"ports/{port['id']}", {"port": {"security_groups": [sg["id"], bad]}}, as_="demo"),
        404,
        "SecurityGroupNotFound",
        f"Security group {bad} does not exist",
    )
    assert api.show("ports", "port", port["id"])["security_groups"] == port["security_groups"]


@pytest.mark.parametrize("bad", [[17], "abc", [None], [["x"]], ["x" * 256]])
def test_port_groups_of_wrong_type_are_400(api, bad):
    net = _port_net(api)
    error(
        api.post("ports", {"port": {"network_id": net["id"], "security_groups": bad}}, as_="demo"),
        400,
        "HTTPBadRequest",
        contains="Invalid input for security_groups",
    )


def test_port_group_filter_with_malformed_id_matches_nothing(api):
    net = _port_net(api)
    api.port(net["id"], as_="demo")
    assert api.list("ports", "demo", "security_groups=not-a-uuid") == []


# --- the reserved name ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["default", "Default", "DEFAULT"])
def test_rename_to_default_refused(api, name):
    sg = api.sg(as_="demo", name="web")
    before = api.snapshot()
    error(
        api.put(f"security-groups/{sg['id']}", {"security_group": {"name": name}}, as_="demo"),
        409,
        "SecurityGroupDefaultAlreadyExists",
        "Default security group already exists.",
    )
    assert api.snapshot() == before


def test_create_named_default_in_other_case_refused(api):
    error(
        api.post("security-groups", {"security_group": {"name": "Default"}}, as_="demo"),
        409,
        "SecurityGroupDefaultAlreadyExists",
        "Default security group already exists.",
    )


def test_rename_to_other_names_still_works(api):
    sg = api.sg(as_="demo", name="web")
    out = api.ok(api.put(f"security-groups/{sg['id']}", {"security_group": {"name": "defaults"}}, as_="demo"))
    assert out["security_group"]["name"] == "defaults"


# --- protocol given as a number ------------------------------------------------------------------
@pytest.mark.parametrize("given,stored", [(17, "17"), ("17", "17"), (6, "6"), (0, "0"), (255, "255"), ("UDP", "udp")])
def test_protocol_as_json_number_or_string(api, given, stored):
    sg = api.sg(as_="demo", name="web")
    attrs = {"port_range_min": 53, "port_range_max": 53} if stored in ("17", "6", "udp") else {}
    r = api.ok(_rule(api, sg["id"], direction="ingress", protocol=given, **attrs), 201)["security_group_rule"]
    assert r["protocol"] == stored
    assert api.show("security-group-rules", "security_group_rule", r["id"], "demo")["protocol"] == stored


def test_numeric_protocol_duplicates_its_name(api):
    sg = api.sg(as_="demo", name="web")
    api.ok(_rule(api, sg["id"], direction="ingress", protocol="udp"), 201)
    error(_rule(api, sg["id"], direction="ingress", protocol=17), 409, "SecurityGroupRuleExists")


@pytest.mark.parametrize("bad", [256, -1, 10**50])
def test_numeric_protocol_out_of_range_is_400(api, bad):
    sg = api.sg(as_="demo", name="web")
    resp = _rule(api, sg["id"], direction="ingress", protocol=bad)
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize("bad", [True, 17.0, [17], {"p": 1}])
def test_protocol_of_wrong_type_is_400(api, bad):
    sg = api.sg(as_="demo", name="web")
    error(
        _rule(api, sg["id"], direction="ingress", protocol=bad),
        400,
        "HTTPBadRequest",
        contains="Invalid input for protocol",
    )


# --- quotas at group create ----------------------------------------------------------------------
def test_group_create_needs_room_for_its_rules(make_api):
    api = make_api({("quotas", "quota_security_group_rule"): "7"})
    api.sg(as_="demo", name="a")  # 4 default rules + 2 = 6
    before = api.snapshot()
    error(
        api.post("security-groups", {"security_group": {"name": "b"}}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['security_group_rule'].",
    )
    assert api.snapshot() == before
    assert len(api.list("security-groups", "demo")) == 2


def test_group_create_with_exact_rule_room_succeeds(make_api):
    api = make_api({("quotas", "quota_security_group_rule"): "8"})
    api.sg(as_="demo", name="a")
    api.sg(as_="demo", name="b")  # 8 rules: at the limit, not over
    error(api.post("security-groups", {"security_group": {"name": "c"}}, as_="demo"), 409, "OverQuota")


def test_rule_quota_counts_only_the_project(make_api):
    api = make_api({("quotas", "quota_security_group_rule"): "6"})
    api.sg(as_="demo", name="a")
    api.sg(as_="other", name="a")  # the other project has its own room


def test_implicit_default_group_not_held_against_the_request(make_api):
    api = make_api({("quotas", "quota_security_group"): "1"})
    sg = api.sg(as_="demo", name="first")  # creates the default group too
    names = sorted(g["name"] for g in api.list("security-groups", "demo"))
    assert names == ["default", "first"] and sg["name"] == "first"
    before = api.snapshot()
    error(
        api.post("security-groups", {"security_group": {"name": "second"}}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['security_group'].",
    )
    assert api.snapshot() == before


def test_group_quota_zero_refuses_even_first_group(make_api):
    api = make_api({("quotas", "quota_security_group"): "0"})
    error(
        api.post("security-groups", {"security_group": {"name": "first"}}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['security_group'].",
    )


# --- stateful and stateless --------------------------------------------------------------------
def _groups(api, as_="demo"):
    return api.sg(as_=as_, name="full"), api.sg(as_=as_, name="bare", stateful=False)


def test_mixing_stateful_and_stateless_on_create_is_409(api):
    net = _port_net(api)
    full, bare = _groups(api)
    assert full["stateful"] is True and bare["stateful"] is False
    before = api.snapshot()
    err = error(
        api.post("ports", {"port": {"network_id": net["id"], "security_groups": [full["id"], bare["id"]]}}, as_="demo"),
        409,
        "SecurityGroupConflict",
    )
    assert "stateful and stateless" in err["message"]
    assert api.snapshot() == before


def test_mixing_stateful_and_stateless_on_update_is_409(api):
    net = _port_net(api)
    full, bare = _groups(api)
    port = api.port(net["id"], as_="demo", security_groups=[bare["id"]])
    error(
        api.put(f"ports/{port['id']}", {"port": {"security_groups": [bare["id"], full["id"]]}}, as_="demo"),
        409,
        "SecurityGroupConflict",
    )
    assert api.show("ports", "port", port["id"])["security_groups"] == [bare["id"]]
    # All stateless, or all stateful, is fine.
    bare2 = api.sg(as_="demo", name="bare2", stateful=False)
    out = api.ok(api.put(f"ports/{port['id']}", {"port": {"security_groups": [bare["id"], bare2["id"]]}}, as_="demo"))
    assert sorted(out["port"]["security_groups"]) == sorted([bare["id"], bare2["id"]])
    out = api.ok(api.put(f"ports/{port['id']}", {"port": {"security_groups": [full["id"]]}}, as_="demo"))
    assert out["port"]["security_groups"] == [full["id"]]


def test_default_group_mixed_with_stateless_is_409(api):
    net = _port_net(api)
    default = [g for g in api.list("security-groups", "demo") if g["name"] == "default"][0]
    bare = api.sg(as_="demo", name="bare", stateful=False)
    error(
        api.post(
            "ports", {"port": {"network_id": net["id"], "security_groups": [default["id"], bare["id"]]}}, as_="demo"
        ),
        409,
        "SecurityGroupConflict",
    )


def test_group_in_use_cannot_change_stateful(api):
    net = _port_net(api)
    full, bare = _groups(api)
    port = api.port(net["id"], as_="demo", security_groups=[full["id"]])
    before = api.snapshot()
    error(
        api.put(f"security-groups/{full['id']}", {"security_group": {"stateful": False}}, as_="demo"),
        409,
        "SecurityGroupInUse",
        f"Security Group {full['id']} in use.",
    )
    assert api.snapshot() == before
    # Unchanged value, or other fields, are fine while in use.
    out = api.ok(
        api.put(f"security-groups/{full['id']}", {"security_group": {"stateful": True, "description": "d"}}, as_="demo")
    )
    assert out["security_group"]["stateful"] is True and out["security_group"]["description"] == "d"
    # Once no port uses it, the mode may change.
    api.ok(api.put(f"ports/{port['id']}", {"port": {"security_groups": []}}, as_="demo"))
    out = api.ok(api.put(f"security-groups/{full['id']}", {"security_group": {"stateful": False}}, as_="demo"))
    assert out["security_group"]["stateful"] is False


def test_group_used_by_another_projects_port_cannot_change_stateful(api):
    net = api.network("admin", shared=True)
    api.subnet(net["id"], "10.9.0.0/24", "admin")
    bare = api.sg(as_="admin", name="bare", stateful=False)
    api.port(net["id"], as_="admin", project_id="p-other", security_groups=[bare["id"]])
    error(api.put(f"security-groups/{bare['id']}", {"security_group": {"stateful": True}}), 409, "SecurityGroupInUse")


def test_stateless_group_shown_and_filterable(api):
    bare = api.sg(as_="demo", name="bare", stateful=False)
    assert api.show("security-groups", "security_group", bare["id"], "demo")["stateful"] is False
    assert api.list("security-groups", "demo", "stateful=false") == [
        api.show("security-groups", "security_group", bare["id"], "demo")
    ]


def test_uuid_ids_unchanged():
    # The canonical form the converter produces is the one ids are stored in.
    u = uuid.uuid4()
    from neutrino.resources.definitions import _group_id

    assert _group_id(str(u).upper()) == str(u)
    assert _group_id(u.hex) == str(u)
    assert _group_id("not-a-uuid") == "not-a-uuid"
