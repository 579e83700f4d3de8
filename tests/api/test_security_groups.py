"""Security groups and rules (reference §4.6, §3.2)."""

from __future__ import annotations

import pytest

from tests.api.conftest import error


def _default(api, as_="demo"):
    (sg,) = [g for g in api.list("security-groups", as_) if g["name"] == "default"]
    return sg


def _rule_summary(rules):
    return sorted((r["direction"], r["ethertype"], r["remote_group_id"] is not None) for r in rules)


def test_default_group_created_lazily_on_list(api):
    assert api.list("security-groups", "demo") != []
    groups = api.list("security-groups", "demo")
    assert len(groups) == 1  # listing again creates nothing
    sg = groups[0]
    assert sg["name"] == "default" and sg["description"] == "Default security group"
    assert sg["project_id"] == sg["tenant_id"] == "p-demo" and sg["stateful"] is True and sg["shared"] is False
    rules = sg["security_group_rules"]
    assert _rule_summary(rules) == [
        ("egress", "IPv4", False),
        ("egress", "IPv6", False),
        ("ingress", "IPv4", True),
        ("ingress", "IPv6", True),
    ]
    for r in rules:
        assert r["belongs_to_default_sg"] is True and r["security_group_id"] == sg["id"]
        assert r["protocol"] is None and r["remote_ip_prefix"] is None and r["normalized_cidr"] is None
        if r["direction"] == "ingress":
            assert r["remote_group_id"] == sg["id"]


def test_default_group_created_by_network_create(api):
    api.network(as_="other")
    (sg,) = [g for g in api.list("security-groups") if g["project_id"] == "p-other"]
    assert sg["name"] == "default"


def test_create_group(api):
    sg = api.sg(as_="demo", name="web", description="d")
    assert sg["name"] == "web" and sg["description"] == "d" and sg["stateful"] is True
    assert _rule_summary(sg["security_group_rules"]) == [("egress", "IPv4", False), ("egress", "IPv6", False)]
    assert all(r["belongs_to_default_sg"] is False for r in sg["security_group_rules"])
    names = sorted(g["name"] for g in api.list("security-groups", "demo"))
    assert names == ["default", "web"]
    assert api.sg(as_="demo", name="stateless", stateful=False)["stateful"] is False


def test_default_name_refused(api):
    error(
        api.post("security-groups", {"security_group": {"name": "default"}}, as_="demo"),
        409,
        "SecurityGroupDefaultAlreadyExists",
        "Default security group already exists.",
    )


def test_update_group(api):
    sg = api.sg(as_="demo", name="web")
    upd = api.ok(
        api.put(f"security-groups/{sg['id']}", {"security_group": {"name": "www", "description": "x"}}, as_="demo")
    )["security_group"]
    assert upd["name"] == "www" and upd["description"] == "x"
    assert upd["revision_number"] > sg["revision_number"]
    default = _default(api)
    error(
        api.put(f"security-groups/{default['id']}", {"security_group": {"name": "x"}}, as_="demo"),
        409,
        "SecurityGroupCannotUpdateDefault",
        "Updating default security group not allowed.",
    )
    upd = api.ok(api.put(f"security-groups/{default['id']}", {"security_group": {"description": "mine"}}, as_="demo"))[
        "security_group"
    ]
    assert upd["description"] == "mine"


def test_delete_group(api):
    sg = api.sg(as_="demo", name="web")
    api.ok(api.delete(f"security-groups/{sg['id']}", as_="demo"), 204)
    error(
        api.get(f"security-groups/{sg['id']}", as_="demo"),
        404,
        "SecurityGroupNotFound",
        f"Security group {sg['id']} does not exist",
    )
    assert api.list("security-group-rules", "demo", f"security_group_id={sg['id']}") == []


def test_default_group_deletion(api):
    default = _default(api)
    error(
        api.delete(f"security-groups/{default['id']}", as_="demo"),
        409,
        "SecurityGroupCannotRemoveDefault",
        "Insufficient rights for removing default security group.",
    )
    api.ok(api.delete(f"security-groups/{default['id']}"), 204)  # admin may


def test_group_in_use(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    sg_id = port["security_groups"][0]
    before = api.snapshot()
    error(api.delete(f"security-groups/{sg_id}"), 409, "SecurityGroupInUse", f"Security Group {sg_id} in use.")
    assert api.snapshot() == before


def test_group_visibility(api):
    sg = api.sg(as_="demo", name="mine")
    before = api.snapshot()
    for method, body in (("GET", None), ("PUT", {"security_group": {"name": "x"}}), ("DELETE", None)):
        error(
            api.req(method, f"security-groups/{sg['id']}", "other", json=body),
            404,
            "SecurityGroupNotFound",
            f"Security group {sg['id']} does not exist",
        )
    body = {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress"}}
    error(api.post("security-group-rules", body, as_="other"), 404, "SecurityGroupNotFound")
    assert api.snapshot() == before
    assert sg["id"] not in [g["id"] for g in api.list("security-groups", "other")]
    assert sg["id"] in [g["id"] for g in api.list("security-groups")]  # admin sees all


def test_security_group_quota(make_api):
    api = make_api({("quotas", "quota_security_group"): "2"})
    api.sg(as_="demo", name="a")  # the default group counts too
    before = api.snapshot()
    error(
        api.post("security-groups", {"security_group": {"name": "b"}}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['security_group'].",
    )
    assert api.snapshot() == before


# --- rules ------------------------------------------------------------------------------------------
def _rule(api, sg_id, as_="demo", **attrs):
    return api.create("security-group-rules", "security_group_rule", as_, security_group_id=sg_id, **attrs)


def test_create_and_delete_rule(api):
    sg = api.sg(as_="demo", name="web")
    r = _rule(
        api,
        sg["id"],
        direction="ingress",
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_ip_prefix="10.0.0.5/24",
        description="ssh",
    )
    assert (r["direction"], r["ethertype"], r["protocol"], r["port_range_min"], r["port_range_max"]) == (
        "ingress",
        "IPv4",
        "tcp",
        22,
        22,
    )
    assert r["remote_ip_prefix"] == "10.0.0.5/24" and r["normalized_cidr"] == "10.0.0.0/24"
    assert r["belongs_to_default_sg"] is False and r["description"] == "ssh" and r["project_id"] == "p-demo"
    assert r["remote_group_id"] is None and r["remote_address_group_id"] is None
    got = api.show("security-groups", "security_group", sg["id"], "demo")
    assert r["id"] in [x["id"] for x in got["security_group_rules"]]
    assert api.show("security-group-rules", "security_group_rule", r["id"], "demo") == r
    api.ok(api.delete(f"security-group-rules/{r['id']}", as_="demo"), 204)
    error(
        api.get(f"security-group-rules/{r['id']}", as_="demo"),
        404,
        "SecurityGroupRuleNotFound",
        f"Security group rule {r['id']} does not exist",
    )


def test_rule_prefix_without_mask_and_ethertype_case(api):
    sg = api.sg(as_="demo", name="web")
    r = _rule(api, sg["id"], direction="egress", remote_ip_prefix="192.168.1.10")
    assert r["remote_ip_prefix"] == "192.168.1.10/32"
    r = _rule(api, sg["id"], direction="ingress", ethertype="ipv6", protocol="ICMP")
    assert r["ethertype"] == "IPv6" and r["protocol"] == "ipv6-icmp"
    r = _rule(api, sg["id"], direction="ingress", protocol="17", port_range_min=53, port_range_max=53)
    assert r["protocol"] == "17"
    r = _rule(api, sg["id"], direction="ingress", protocol="icmp", port_range_min=8, port_range_max=0)
    assert (r["port_range_min"], r["port_range_max"]) == (8, 0)
    r = _rule(api, sg["id"], direction="ingress", remote_group_id=sg["id"], protocol="any")
    assert r["remote_group_id"] == sg["id"] and r["protocol"] is None


def test_duplicate_rules(api):
    sg = api.sg(as_="demo", name="web")
    r = _rule(api, sg["id"], direction="ingress", protocol="tcp", port_range_min=80, port_range_max=80)
    before = api.snapshot()
    msg = f"Security group rule already exists. Rule id is {r['id']}."
    for attrs in ({"protocol": "tcp"}, {"protocol": "TCP"}, {"protocol": "6"}):
        body = dict(security_group_id=sg["id"], direction="ingress", port_range_min=80, port_range_max=80, **attrs)
        error(
            api.post("security-group-rules", {"security_group_rule": body}, as_="demo"),
            409,
            "SecurityGroupRuleExists",
            msg,
        )
    # The seeded egress rule: no prefix is the same as 0.0.0.0/0.
    egress = next(x for x in sg["security_group_rules"] if x["ethertype"] == "IPv4")
    body = {"security_group_id": sg["id"], "direction": "egress", "remote_ip_prefix": "0.0.0.0/0"}
    error(
        api.post("security-group-rules", {"security_group_rule": body}, as_="demo"),
        409,
        "SecurityGroupRuleExists",
        f"Security group rule already exists. Rule id is {egress['id']}.",
    )
    assert api.snapshot() == before


@pytest.mark.parametrize(
    "attrs,type_,msg",
    [
        (
            {"port_range_min": 22, "port_range_max": 22},
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        ),
        (
            {"protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
            "SecurityGroupInvalidPortRange",
            "For TCP/UDP protocols, port_range_min must be <= port_range_max",
        ),
        (
            {"protocol": "tcp", "port_range_min": 90},
            "SecurityGroupInvalidPortRange",
            "For TCP/UDP protocols, port_range_min must be <= port_range_max",
        ),
        (
            {"protocol": "udp", "port_range_min": 0, "port_range_max": 10},
            "SecurityGroupInvalidPortValue",
            "Invalid value for port 0",
        ),
        (
            {"protocol": "tcp", "port_range_min": 1, "port_range_max": 65536},
            "SecurityGroupInvalidPortValue",
            "Invalid value for port 65536",
        ),
        (
            {"protocol": "icmp", "port_range_min": 256},
            "SecurityGroupInvalidIcmpValue",
            "Invalid value for ICMP type (port_range_min) 256. It must be 0 to 255.",
        ),
        (
            {"protocol": "icmp", "port_range_max": 3},
            "SecurityGroupMissingIcmpType",
            "ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing.",
        ),
        ({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, "SecurityGroupInvalidProtocolForPort", None),
        ({"protocol": "foo"}, "SecurityGroupRuleInvalidProtocol", None),
        ({"protocol": "256"}, "SecurityGroupRuleInvalidProtocol", None),
        (
            {"ethertype": "IPv5"},
            "SecurityGroupRuleInvalidEtherType",
            "Security group rule for ethertype 'IPv5' not supported. Allowed values are ['IPv4', 'IPv6'].",
        ),
        (
            {"remote_ip_prefix": "fd00::/64"},
            "SecurityGroupRuleParameterConflict",
            "Conflicting value ethertype IPv4 for CIDR fd00::/64",
        ),
        (
            {"protocol": "ipv6-icmp"},
            "SecurityGroupEthertypeConflictWithProtocol",
            "Invalid ethertype IPv4 for protocol ipv6-icmp.",
        ),
        (
            {"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "SELF"},
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ),
        ({"direction": "sideways"}, "HTTPBadRequest", None),
        (
            {"remote_ip_prefix": "nope"},
            "HTTPBadRequest",
            "Invalid input for remote_ip_prefix. Reason: 'nope' is not a valid IP subnet.",
        ),
    ],
)
def test_rule_validation(api, attrs, type_, msg):
    sg = api.sg(as_="demo", name="web")
    body = {"security_group_id": sg["id"], "direction": "ingress"}
    body.update({k: (sg["id"] if v == "SELF" else v) for k, v in attrs.items()})
    before = api.snapshot()
    error(api.post("security-group-rules", {"security_group_rule": body}, as_="demo"), 400, type_, msg)
    assert api.snapshot() == before


def test_rule_required_attributes(api):
    sg = api.sg(as_="demo", name="web")
    error(
        api.post("security-group-rules", {"security_group_rule": {"security_group_id": sg["id"]}}, as_="demo"),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'direction' not specified",
    )


def test_rules_are_not_updatable(api):
    sg = api.sg(as_="demo", name="web")
    r = sg["security_group_rules"][0]
    r2 = api.put(f"security-group-rules/{r['id']}", {"security_group_rule": {"description": "x"}}, as_="demo")
    assert r2.status_code in (400, 405)
    assert api.show("security-group-rules", "security_group_rule", r["id"], "demo")["description"] == ""


def test_rule_remote_group_of_another_project(api):
    mine = api.sg(as_="demo", name="mine")
    theirs = api.sg(as_="other", name="theirs")
    body = {"security_group_id": mine["id"], "direction": "ingress", "remote_group_id": theirs["id"]}
    error(
        api.post("security-group-rules", {"security_group_rule": body}, as_="demo"),
        404,
        "SecurityGroupNotFound",
        f"Security group {theirs['id']} does not exist",
    )


def test_rule_visibility_and_filters(api):
    sg = api.sg(as_="demo", name="web")
    r = _rule(api, sg["id"], direction="ingress", protocol="tcp", port_range_min=443, port_range_max=443)
    assert [x["id"] for x in api.list("security-group-rules", "demo", "protocol=tcp")] == [r["id"]]
    assert {x["security_group_id"] for x in api.list("security-group-rules", "demo")} == {sg["id"], _default(api)["id"]}
    assert api.list("security-group-rules", "other", "protocol=tcp") == []
    error(api.get(f"security-group-rules/{r['id']}", as_="other"), 404, "SecurityGroupRuleNotFound")
    error(api.delete(f"security-group-rules/{r['id']}", as_="other"), 404, "SecurityGroupRuleNotFound")


def test_rule_quota(make_api):
    api = make_api({("quotas", "quota_security_group_rule"): "7"})
    sg = api.sg(as_="demo", name="web")  # 4 default rules + 2 egress rules
    _rule(api, sg["id"], direction="ingress", protocol="tcp", port_range_min=1, port_range_max=1)
    error(
        api.post(
            "security-group-rules",
            {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress", "protocol": "udp"}},
            as_="demo",
        ),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['security_group_rule'].",
    )


def test_rule_changes_bump_group_revision(api):
    sg = api.sg(as_="demo", name="web")
    _rule(api, sg["id"], direction="ingress", protocol="tcp", port_range_min=1, port_range_max=1)
    assert api.show("security-groups", "security_group", sg["id"])["revision_number"] > sg["revision_number"]
