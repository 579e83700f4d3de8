"""Networks (reference §4.1, §7.1)."""

from __future__ import annotations

from tests.api.conftest import error

ADMIN_KEY_ORDER = [
    "id",
    "name",
    "tenant_id",
    "project_id",
    "admin_state_up",
    "mtu",
    "status",
    "subnets",
    "shared",
    "port_security_enabled",
    "dns_domain",
    "router:external",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "is_default",
    "availability_zone_hints",
    "availability_zones",
    "ipv4_address_scope",
    "ipv6_address_scope",
    "description",
    "l2_adjacency",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
]


def test_member_create_defaults(api):
    net = api.network(as_="demo", name="demo-net")
    assert net["name"] == "demo-net"
    assert net["project_id"] == net["tenant_id"] == "p-demo"
    assert net["admin_state_up"] is True and net["status"] == "ACTIVE"
    assert net["shared"] is False and net["router:external"] is False and net["is_default"] is False
    assert net["port_security_enabled"] is True
    assert net["mtu"] == 1450  # vxlan project network
    assert net["subnets"] == [] and net["tags"] == [] and net["description"] == ""
    assert net["availability_zone_hints"] == [] and net["availability_zones"] == []
    assert net["ipv4_address_scope"] is None and net["ipv6_address_scope"] is None
    assert net["l2_adjacency"] is True and net["dns_domain"] == ""
    assert net["revision_number"] == 1
    assert [k for k in ADMIN_KEY_ORDER if not k.startswith("provider:")] == list(net)


def test_admin_create_key_order(api):
    net = api.network(
        shared=True,
        **{"provider:network_type": "flat", "provider:physical_network": "physnet", "router:external": True},
        name="flat-network",
    )
    assert list(net) == ADMIN_KEY_ORDER
    assert net["provider:network_type"] == "flat" and net["provider:physical_network"] == "physnet"
    assert net["provider:segmentation_id"] is None and net["mtu"] == 1500


def test_osc_network_create_body(api):
    body = {
        "network": {
            "provider:network_type": "flat",
            "shared": True,
            "provider:physical_network": "physnet",
            "name": "flat-network",
            "admin_state_up": True,
            "router:external": True,
        }
    }
    r = api.post("networks", body)
    assert r.status_code == 201
    net = r.json()["network"]
    assert net["shared"] is True and net["router:external"] is True
    # External networks are readable by every project; they are found by name.
    assert [n["id"] for n in api.list("networks", "demo", "name=flat-network")] == [net["id"]]
    assert [n["id"] for n in api.list("networks", "demo", "router%3Aexternal=True")] == [net["id"]]


def test_update_fields_and_revision(api):
    net = api.network(as_="demo")
    upd = api.ok(
        api.put(
            f"networks/{net['id']}",
            {
                "network": {
                    "name": "x",
                    "description": "d",
                    "admin_state_up": False,
                    "port_security_enabled": False,
                    "dns_domain": "example.org.",
                }
            },
            as_="demo",
        )
    )
    n = upd["network"]
    assert (n["name"], n["description"], n["admin_state_up"], n["port_security_enabled"], n["dns_domain"]) == (
        "x",
        "d",
        False,
        False,
        "example.org.",
    )
    assert n["revision_number"] == 2 and n["updated_at"] >= net["updated_at"]
    assert api.show("networks", "network", net["id"], "demo") == n


def test_member_cannot_set_admin_attributes(api):
    before = api.snapshot()
    for attr, value in (
        ("shared", True),
        ("router:external", True),
        ("is_default", True),
        ("provider:physical_network", "physnet"),
        ("provider:segmentation_id", 5),
    ):
        error(
            api.post("networks", {"network": {attr: value}}, as_="demo"),
            403,
            "PolicyNotAuthorized",
            f"(rule:create_network and rule:create_network:{attr}) is disallowed by policy",
        )
    assert api.snapshot() == before


def test_admin_shared_network_usable_by_members(api):
    net = api.network(shared=True)
    sub = api.subnet(net["id"], "10.5.0.0/24")
    assert api.show("networks", "network", net["id"], "other")["subnets"] == [sub["id"]]
    assert [s["id"] for s in api.list("subnets", "other")] == [sub["id"]]
    port = api.port(net["id"], as_="other")
    assert port["project_id"] == "p-other"
    # Subnets need network ownership, even on shared networks (visible -> 403).
    error(
        api.post("subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.6.0.0/24"}}, as_="other"),
        403,
        "PolicyNotAuthorized",
        "rule:create_subnet is disallowed by policy",
    )


def test_subnets_listed_on_network(api):
    net = api.network(as_="demo")
    s1 = api.subnet(net["id"], "10.0.0.0/24", as_="demo")
    s2 = api.subnet(net["id"], "fd00::/64", as_="demo")
    got = api.show("networks", "network", net["id"], "demo")
    assert sorted(got["subnets"]) == sorted([s1["id"], s2["id"]])
    assert got["revision_number"] == 3


def test_delete_blocked_by_user_port(api):
    net, _ = api.net_with_subnet()
    p1 = api.port(net["id"], as_="demo")
    p2 = api.port(net["id"], as_="demo", device_owner="compute:nova")
    before = api.snapshot()
    err = error(api.delete(f"networks/{net['id']}", as_="demo"), 409, "NetworkInUse")
    prefix = (
        f"Unable to complete operation on network {net['id']}. There are one or more ports still in use "
        "on the network, id for these ports is: "
    )
    assert err["message"].startswith(prefix) and err["message"].endswith(".")
    assert set(err["message"][len(prefix) : -1].split(",")) == {p1["id"], p2["id"]}
    assert api.snapshot() == before


def test_delete_removes_dhcp_ports_and_subnets(api):
    net, sub = api.net_with_subnet()
    dhcp = api.port(net["id"], device_owner="network:dhcp", device_id="dhcp-x")
    assert api.delete(f"networks/{net['id']}", as_="demo").status_code == 204
    assert api.get(f"ports/{dhcp['id']}").status_code == 404
    assert api.get(f"subnets/{sub['id']}").status_code == 404
    assert api.list("ports") == [] and api.list("subnets") == []


def test_delete_releases_segment(make_api):
    api = make_api({("ml2_type_vxlan", "vni_ranges"): "7:7"})
    net = api.network(as_="demo")
    error(api.post("networks", {"network": {}}, as_="demo"), 503, "NoNetworkAvailable")
    api.ok(api.delete(f"networks/{net['id']}", as_="demo"), 204)
    again = api.network(as_="demo")
    assert api.show("networks", "network", again["id"])["provider:segmentation_id"] == 7


def test_shared_off_blocked_while_other_projects_use_it(api):
    net = api.network(shared=True, name="sh")
    api.subnet(net["id"], "10.0.0.0/24")
    port = api.port(net["id"], as_="other")
    before = api.snapshot()
    error(
        api.put(f"networks/{net['id']}", {"network": {"shared": False}}),
        409,
        "InvalidSharedSetting",
        "Unable to reconfigure sharing settings for network sh. Multiple projects are using it.",
    )
    assert api.snapshot() == before
    api.ok(api.delete(f"ports/{port['id']}", as_="other"), 204)
    assert api.ok(api.put(f"networks/{net['id']}", {"network": {"shared": False}}))["network"]["shared"] is False
    error(api.get(f"networks/{net['id']}", as_="other"), 404, "NetworkNotFound")


def test_mtu_may_only_be_lowered(api):
    net = api.network(as_="demo", mtu=1400)
    assert net["mtu"] == 1400
    before = api.snapshot()
    error(
        api.post("networks", {"network": {"mtu": 1451}}, as_="demo"),
        400,
        "InvalidInput",
        "Invalid input for operation: Requested MTU is too big, maximum is 1450.",
    )
    error(
        api.put(f"networks/{net['id']}", {"network": {"mtu": 9000}}, as_="demo"),
        400,
        "InvalidInput",
        "Invalid input for operation: Requested MTU is too big, maximum is 1450.",
    )
    assert api.snapshot() == before
    assert api.ok(api.put(f"networks/{net['id']}", {"network": {"mtu": 1450}}, as_="demo"))["network"]["mtu"] == 1450
    assert api.ok(api.put(f"networks/{net['id']}", {"network": {"mtu": 1300}}, as_="demo"))["network"]["mtu"] == 1300


def test_network_quota(make_api):
    api = make_api({("quotas", "quota_network"): "2"})
    api.network(as_="demo")
    api.network(as_="demo")
    before = api.snapshot()
    error(
        api.post("networks", {"network": {}}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['network'].",
    )
    assert api.snapshot() == before
    api.network(as_="other")  # per project


def test_external_network_subnets_visible_to_members(api):
    ext = api.network(**{"router:external": True})
    sub = api.subnet(ext["id"], "172.16.0.0/24")
    got = api.show("subnets", "subnet", sub["id"], "demo")
    assert got["router:external"] is True
    assert [s["id"] for s in api.list("subnets", "demo", "router:external=True")] == [sub["id"]]
