"""Ports (reference §4.3, §4.6, §6.2, §7.3, §10.8, §10.11): attributes, policy,
MAC addresses, port security and security groups, allowed address pairs."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import error

MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")


def test_create_defaults(api):
    net, sub = api.net_with_subnet()
    sgs = api.list("security-groups", "demo")
    default_sg = next(g["id"] for g in sgs if g["name"] == "default")
    port = api.port(net["id"], as_="demo")
    assert MAC.match(port["mac_address"])
    assert port["status"] == "DOWN" and port["admin_state_up"] is True
    assert port["device_owner"] == "" and port["device_id"] == "" and port["name"] == ""
    assert port["security_groups"] == [default_sg]
    assert port["port_security_enabled"] is True
    assert port["allowed_address_pairs"] == [] and port["extra_dhcp_opts"] == []
    assert port["binding:vnic_type"] == "normal"
    assert port["revision_number"] == 1 and port["project_id"] == port["tenant_id"] == "p-demo"
    (fip,) = port["fixed_ips"]
    assert fip["subnet_id"] == sub["id"] and list(fip) == ["subnet_id", "ip_address"]
    host = "host-" + fip["ip_address"].replace(".", "-")
    assert port["dns_assignment"] == [
        {"ip_address": fip["ip_address"], "hostname": host, "fqdn": f"{host}.openstacklocal."}
    ]
    assert port["ip_allocation"] == "immediate" and port["tags"] == []


def test_port_creates_the_default_group(api):
    net, _ = api.net_with_subnet(as_="admin")
    port = api.port(net["id"], project_id="p-fresh")
    (sg,) = [g for g in api.list("security-groups") if g["project_id"] == "p-fresh"]
    assert sg["name"] == "default" and port["security_groups"] == [sg["id"]]


def test_osc_port_list_query(api):
    net = api.network(shared=True, name="flat-network")
    api.subnet(net["id"], "172.16.0.0/24", allocation_pools=[{"start": "172.16.0.2", "end": "172.16.0.10"}])
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    api.port(net["id"], device_owner="compute:nova")
    q = (
        f"device_owner=network%3Adhcp&fields=id&fields=name&fields=mac_address&fields=fixed_ips&fields=status"
        f"&network_id={net['id']}"
    )
    body = api.ok(api.get(f"ports?{q}"))
    assert body == {
        "ports": [
            {
                "id": dhcp["id"],
                "name": "",
                "mac_address": dhcp["mac_address"],
                "fixed_ips": dhcp["fixed_ips"],
                "status": "DOWN",
            }
        ]
    }
    assert dhcp["fixed_ips"][0]["ip_address"] == "172.16.0.2"


def test_port_filters(api):
    net, sub = api.net_with_subnet(as_="admin")
    net2, sub2 = api.net_with_subnet(as_="admin", cidr="10.1.0.0/24")
    a = api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.5"}], device_id="vm-1", name="a")
    b = api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.55"}], **{"binding:host_id": "h1"})
    c = api.port(net2["id"], fixed_ips=[{"ip_address": "10.1.0.5"}])

    def ids(q: str) -> set[str]:
        return {p["id"] for p in api.list("ports", query=q)}

    assert ids("fixed_ips=ip_address%3D10.0.0.5") == {a["id"]}
    assert ids(f"fixed_ips=subnet_id%3D{sub['id']}") == {a["id"], b["id"]}
    assert ids("ip_address_substr=0.5") == {a["id"], b["id"], c["id"]}
    assert ids("ip_address_substr=10.0.0.5") == {a["id"], b["id"]}
    assert ids("device_id=vm-1") == {a["id"]}
    assert ids(f"network_id={net2['id']}") == {c["id"]}
    assert ids(f"mac_address={b['mac_address']}") == {b["id"]}
    assert ids("binding:host_id=h1") == {b["id"]}
    assert ids(f"security_groups={a['security_groups'][0]}") == {a["id"], b["id"], c["id"]}
    assert ids("name=a&name=nope") == {a["id"]}


def test_mac_address(api):
    net, _ = api.net_with_subnet(as_="admin")
    p = api.port(net["id"], mac_address="FA-16-3E-00-00-01")
    assert p["mac_address"] == "fa:16:3e:00:00:01"
    before = api.snapshot()
    error(
        api.post("ports", {"port": {"network_id": net["id"], "mac_address": "fa:16:3e:00:00:01"}}),
        409,
        "MacAddressInUse",
        f"Unable to complete operation for network {net['id']}. The mac address fa:16:3e:00:00:01 is in use.",
    )
    for bad in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "zz:16:3e:00:00:01"):  # multicast is fine (issue 14)
        error(
            api.post("ports", {"port": {"network_id": net["id"], "mac_address": bad}}),
            400,
            "HTTPBadRequest",
            f"Invalid input for mac_address. Reason: '{bad}' is not a valid MAC address.",
        )
    assert api.snapshot() == before
    other = api.network()
    assert api.port(other["id"], mac_address="fa:16:3e:00:00:01")["mac_address"] == "fa:16:3e:00:00:01"
    # Update (admin; the port is not bound).
    p2 = api.port(net["id"])
    error(api.put(f"ports/{p2['id']}", {"port": {"mac_address": "fa:16:3e:00:00:01"}}), 409, "MacAddressInUse")
    upd = api.ok(api.put(f"ports/{p2['id']}", {"port": {"mac_address": "fa:16:3e:00:00:02"}}))["port"]
    assert upd["mac_address"] == "fa:16:3e:00:00:02"


def test_update_basic_attributes(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    upd = api.ok(
        api.put(
            f"ports/{port['id']}",
            {
                "port": {
                    "name": "p",
                    "description": "d",
                    "admin_state_up": False,
                    "device_id": "vm",
                    "device_owner": "compute:nova",
                    "dns_name": "vm1",
                }
            },
            as_="demo",
        )
    )["port"]
    assert (upd["name"], upd["description"], upd["admin_state_up"], upd["device_id"], upd["device_owner"]) == (
        "p",
        "d",
        False,
        "vm",
        "compute:nova",
    )
    assert upd["dns_assignment"][0]["hostname"] == "vm1"
    assert upd["revision_number"] == 2 and upd["fixed_ips"] == port["fixed_ips"]
    for attr in ("network_id", "status", "id", "binding:vif_type"):
        error(
            api.put(f"ports/{port['id']}", {"port": {attr: "x"}}, as_="demo"),
            400,
            "HTTPBadRequest",
            f"Cannot update read-only attribute {attr}",
        )


def test_port_tags_in_post_are_stored(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], as_="demo", tags=["a"])
    assert port["tags"] == ["a"]  # tag-ports-during-bulk-creation: tests/api/test_fidelity_port_tags.py


# --- policy (§6.2) ---------------------------------------------------------------------------------
def test_member_on_foreign_networks(api):
    private = api.network(as_="other")
    shared = api.network(shared=True)
    sub = api.subnet(shared["id"], "10.0.0.0/24")
    before = api.snapshot()
    error(
        api.post("ports", {"port": {"network_id": private["id"]}}, as_="demo"),
        404,
        "NetworkNotFound",
        f"Network {private['id']} could not be found.",
    )
    cases = [
        (
            {"fixed_ips": [{"ip_address": "10.0.0.5"}]},
            "(rule:create_port and (rule:create_port:fixed_ips and (rule:create_port:fixed_ips:ip_address)))",
        ),
        ({"mac_address": "fa:16:3e:00:00:09"}, "(rule:create_port and rule:create_port:mac_address)"),
        ({"device_owner": "network:dhcp"}, "(rule:create_port and rule:create_port:device_owner)"),
        ({"port_security_enabled": False}, "(rule:create_port and rule:create_port:port_security_enabled)"),
        ({"binding:host_id": "h1"}, "(rule:create_port and rule:create_port:binding:host_id)"),
        (
            {"allowed_address_pairs": [{"ip_address": "10.0.0.9"}]},
            "(rule:create_port and (rule:create_port:allowed_address_pairs and "
            "(rule:create_port:allowed_address_pairs:ip_address)))",
        ),
        (
            {"mac_address": "fa:16:3e:00:00:09", "binding:host_id": "h1"},
            "((rule:create_port and rule:create_port:mac_address) and rule:create_port:binding:host_id)",
        ),
    ]
    for attrs, rule in cases:
        error(
            api.post("ports", {"port": dict(network_id=shared["id"], **attrs)}, as_="demo"),
            403,
            "PolicyNotAuthorized",
            f"{rule} is disallowed by policy",
        )
    assert api.snapshot() == before
    # Allowed on a shared network: a plain port, a subnet choice, a compute owner, vnic type.
    p = api.port(
        shared["id"],
        as_="demo",
        fixed_ips=[{"subnet_id": sub["id"]}],
        device_owner="compute:nova",
        **{"binding:vnic_type": "direct"},
    )
    assert p["binding:vnic_type"] == "direct"


def test_network_owner_may_choose_addresses_and_macs(api):
    net, sub = api.net_with_subnet()
    p = api.port(
        net["id"],
        as_="demo",
        fixed_ips=[{"ip_address": "10.0.0.9"}],
        mac_address="fa:16:3e:00:00:09",
        device_owner="network:dhcp",
        port_security_enabled=False,
    )
    assert p["fixed_ips"][0]["ip_address"] == "10.0.0.9"
    # ... but neither binding host nor profile.
    error(
        api.post("ports", {"port": {"network_id": net["id"], "binding:host_id": "h"}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
    )


def test_binding_profile_needs_the_service_role(api):
    net, _ = api.net_with_subnet(as_="admin")
    error(
        api.post("ports", {"port": {"network_id": net["id"], "binding:profile": {"foo": "bar"}}}),
        403,
        "PolicyNotAuthorized",
        "(rule:create_port and rule:create_port:binding:profile) is disallowed by policy",
    )
    p = api.port(net["id"], as_="service", **{"binding:profile": {"foo": "bar"}})
    assert p["binding:profile"] == {"foo": "bar"}
    p = api.port(net["id"], **{"binding:host_id": "compute-1"})
    assert p["binding:host_id"] == "compute-1" and p["binding:vif_type"] == "binding_failed"


def test_port_visibility(api):
    net, _ = api.net_with_subnet()  # owned by p-demo
    theirs = api.port(net["id"], project_id="p-other")  # admin creates a p-other port there
    assert theirs["project_id"] == "p-other"
    # The network owner sees it (role:reader and network_owner), the port owner too.
    assert [p["id"] for p in api.list("ports", "demo")] == [theirs["id"]]
    assert [p["id"] for p in api.list("ports", "other")] == [theirs["id"]]
    # A third party does not.
    shared = api.network(shared=True)
    api.subnet(shared["id"], "10.3.0.0/24")
    mine = api.port(shared["id"], as_="demo")
    error(api.get(f"ports/{mine['id']}", as_="other"), 404, "PortNotFound", f"Port {mine['id']} could not be found.")
    error(api.put(f"ports/{mine['id']}", {"port": {"name": "x"}}, as_="other"), 404, "PortNotFound")
    error(api.delete(f"ports/{mine['id']}", as_="other"), 404, "PortNotFound")
    assert mine["id"] not in [p["id"] for p in api.list("ports", "other")]


def test_network_owner_may_delete_but_not_update_foreign_ports(api):
    net, _ = api.net_with_subnet()
    theirs = api.port(net["id"], project_id="p-other")
    error(
        api.put(f"ports/{theirs['id']}", {"port": {"name": "x"}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "rule:update_port is disallowed by policy",
    )
    api.ok(api.delete(f"ports/{theirs['id']}", as_="demo"), 204)


def test_service_ports_cannot_be_deleted_directly(api):
    ext = api.network(**{"router:external": True})
    api.subnet(ext["id"], "172.24.4.0/24")
    net, sub = api.net_with_subnet(as_="admin")
    router = api.create("routers", "router", external_gateway_info={"network_id": ext["id"]})
    intf = api.ok(api.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}))
    fip = api.create("floatingips", "floatingip", floating_network_id=ext["id"])
    by_owner = {
        "network:router_interface": intf["port_id"],
        "network:router_gateway": api.list("ports", query="device_owner=network:router_gateway")[0]["id"],
        "network:floatingip": api.list("ports", query=f"device_id={fip['id']}")[0]["id"],
    }
    for owner, pid in by_owner.items():
        error(
            api.delete(f"ports/{pid}"),
            409,
            "ServicePortInUse",
            f"Port {pid} cannot be deleted directly via the port API: has device owner {owner}.",
        )
    # Ports that only say they belong to a service (as Neutron: a stale router port) can go.
    for owner in by_owner:
        p = api.port(net["id"], device_owner=owner, device_id="r1")
        api.ok(api.delete(f"ports/{p['id']}"), 204)
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    api.ok(api.delete(f"ports/{dhcp['id']}"), 204)


def test_port_quota(make_api):
    api = make_api({("quotas", "quota_port"): "2"})
    net, _ = api.net_with_subnet()
    api.port(net["id"], as_="demo")
    before = api.snapshot()
    error(
        api.post("ports", {"ports": [{"network_id": net["id"]}, {"network_id": net["id"]}]}, as_="demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['port'].",
    )
    assert api.snapshot() == before
    api.port(net["id"], as_="demo")
    error(api.post("ports", {"port": {"network_id": net["id"]}}, as_="demo"), 409, "OverQuota")


# --- port security and security groups (§4.6, §10.11) ------------------------------------------------
def test_osc_disable_port_security(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    assert port["security_groups"]
    before = api.snapshot()
    error(
        api.put(f"ports/{port['id']}", {"port": {"port_security_enabled": False}}, as_="demo"),
        409,
        "PortSecurityPortHasSecurityGroup",
        "Port has security group associated. Cannot disable port security "
        "or IP address until security group is removed.",
    )
    assert api.snapshot() == before
    r = api.put(f"ports/{port['id']}", {"port": {"security_groups": [], "port_security_enabled": False}}, as_="demo")
    upd = api.ok(r)["port"]
    assert upd["security_groups"] == [] and upd["port_security_enabled"] is False
    # Groups cannot come back while port security is off.
    sg = port["security_groups"][0]
    before = api.snapshot()
    error(
        api.put(f"ports/{port['id']}", {"port": {"security_groups": [sg]}}, as_="demo"),
        400,
        "PortSecurityAndIPRequiredForSecurityGroups",
        "Port security must be enabled and port must have an IP address in order to use security groups.",
    )
    error(
        api.put(f"ports/{port['id']}", {"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.99"}]}}, as_="demo"),
        409,
        "AddressPairAndPortSecurityRequired",
        "Port Security must be enabled in order to have allowed address pairs on a port.",
    )
    assert api.snapshot() == before
    upd = api.ok(
        api.put(f"ports/{port['id']}", {"port": {"port_security_enabled": True, "security_groups": [sg]}}, as_="demo")
    )["port"]
    assert upd["security_groups"] == [sg] and upd["port_security_enabled"] is True


def test_disable_port_security_with_groups_in_the_same_request(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    r = api.put(
        f"ports/{port['id']}",
        {"port": {"port_security_enabled": False, "security_groups": port["security_groups"]}},
        as_="demo",
    )
    error(r, 400, "PortSecurityAndIPRequiredForSecurityGroups")


def test_osc_create_without_port_security(api):
    net, _ = api.net_with_subnet()
    body = {
        "port": {
            "network_id": net["id"],
            "security_groups": [],
            "port_security_enabled": False,
            "mac_address": "fa:16:3e:00:00:07",
            "binding:vnic_type": "direct",
            "name": "p",
        }
    }
    p = api.ok(api.post("ports", body, as_="demo"), 201)["port"]
    assert p["port_security_enabled"] is False and p["security_groups"] == []
    assert p["mac_address"] == "fa:16:3e:00:00:07"


def test_create_port_security_combinations(api):
    net, _ = api.net_with_subnet()
    sg = api.sg(as_="demo", name="web")
    p = api.port(net["id"], as_="demo", port_security_enabled=False)
    assert p["security_groups"] == []
    p = api.port(net["id"], as_="demo", security_groups=[])
    assert p["security_groups"] == [] and p["port_security_enabled"] is True
    p = api.port(net["id"], as_="demo", security_groups=[sg["id"]])
    assert p["security_groups"] == [sg["id"]]
    before = api.snapshot()
    error(
        api.post(
            "ports",
            {"port": {"network_id": net["id"], "port_security_enabled": False, "security_groups": [sg["id"]]}},
            as_="demo",
        ),
        400,
        "PortSecurityAndIPRequiredForSecurityGroups",
    )
    error(
        api.post(
            "ports",
            {
                "port": {
                    "network_id": net["id"],
                    "port_security_enabled": False,
                    "allowed_address_pairs": [{"ip_address": "10.0.0.9"}],
                }
            },
            as_="demo",
        ),
        409,
        "AddressPairAndPortSecurityRequired",
    )
    assert api.snapshot() == before


def test_ports_inherit_network_port_security(api):
    net = api.network(as_="demo", port_security_enabled=False)
    api.subnet(net["id"], "10.0.0.0/24", as_="demo")
    p = api.port(net["id"], as_="demo")
    assert p["port_security_enabled"] is False and p["security_groups"] == []
    p = api.port(net["id"], as_="demo", port_security_enabled=True)
    assert p["port_security_enabled"] is True and len(p["security_groups"]) == 1


def test_security_groups_of_other_projects(api):
    net, _ = api.net_with_subnet()
    theirs = api.sg(as_="other", name="theirs")
    before = api.snapshot()
    error(
        api.post("ports", {"port": {"network_id": net["id"], "security_groups": [theirs["id"]]}}, as_="demo"),
        404,
        "SecurityGroupNotFound",
        f"Security group {theirs['id']} does not exist",
    )
    port = api.port(net["id"], as_="demo")
    before = api.snapshot()
    error(
        api.put(f"ports/{port['id']}", {"port": {"security_groups": [theirs["id"]]}}, as_="demo"),
        404,
        "SecurityGroupNotFound",
    )
    missing = "11111111-2222-3333-4444-555555555555"
    error(
        api.put(f"ports/{port['id']}", {"port": {"security_groups": [missing]}}, as_="demo"),
        404,
        "SecurityGroupNotFound",
        f"Security group {missing} does not exist",
    )
    assert api.snapshot() == before
    # Admin may attach any group.
    p = api.port(net["id"], security_groups=[theirs["id"]])
    assert p["security_groups"] == [theirs["id"]]


def test_osc_add_security_group(api):
    net, _ = api.net_with_subnet()
    port = api.port(net["id"], as_="demo")
    web = api.sg(as_="demo", name="web")
    new = port["security_groups"] + [web["id"]]
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": {"security_groups": new}}, as_="demo"))["port"]
    assert sorted(upd["security_groups"]) == sorted(new)
    # In use now.
    error(
        api.delete(f"security-groups/{web['id']}", as_="demo"),
        409,
        "SecurityGroupInUse",
        f"Security Group {web['id']} in use.",
    )


def test_network_device_ports_get_no_default_group(api):
    net, _ = api.net_with_subnet(as_="admin")
    for owner in ("network:dhcp", "network:router_interface", "network:distributed"):
        assert api.port(net["id"], device_owner=owner)["security_groups"] == []


# --- allowed address pairs (§4.3) ------------------------------------------------------------------------
def test_allowed_address_pairs(api):
    net, _ = api.net_with_subnet()
    port = api.port(
        net["id"],
        as_="demo",
        mac_address="fa:16:3e:00:00:05",
        allowed_address_pairs=[
            {"ip_address": "10.0.0.200"},
            {"ip_address": "10.0.1.0/24", "mac_address": "FA:16:3E:00:00:99"},
        ],
    )
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.200", "mac_address": "fa:16:3e:00:00:05"},
        {"ip_address": "10.0.1.0/24", "mac_address": "fa:16:3e:00:00:99"},
    ]
    upd = api.ok(
        api.put(f"ports/{port['id']}", {"port": {"allowed_address_pairs": [{"ip_address": "::1"}]}}, as_="demo")
    )["port"]
    assert upd["allowed_address_pairs"] == [{"ip_address": "::1", "mac_address": "fa:16:3e:00:00:05"}]
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": {"allowed_address_pairs": []}}, as_="demo"))["port"]
    assert upd["allowed_address_pairs"] == []


@pytest.mark.parametrize(
    "pairs,status,type_,msg",
    [
        ([{"ip_address": "224.0.0.5"}], 400, None, None),
        ([{"ip_address": "ff02::1"}], 400, None, None),
        (
            [{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.5"}],
            400,
            "DuplicateAddressPairInRequest",
            "Request contains duplicate address pair: mac_address None ip_address 10.0.0.5.",
        ),
        (
            [{"ip_address": f"10.0.0.{i}"} for i in range(11)],
            400,
            "AllowedAddressPairExhausted",
            "The number of allowed address pair exceeds the maximum 10.",
        ),
        ([{"mac_address": "fa:16:3e:00:00:01"}], 400, None, None),
        ([{"ip_address": "10.0.0.5", "foo": 1}], 400, None, None),
        ([{"ip_address": "nope"}], 400, None, None),
    ],
)
def test_allowed_address_pairs_validation(api, pairs, status, type_, msg):
    net, _ = api.net_with_subnet()
    before = api.snapshot()
    r = api.post("ports", {"port": {"network_id": net["id"], "allowed_address_pairs": pairs}}, as_="demo")
    err = error(r, status, type_ or r.json()["NeutronError"]["type"], msg)
    assert err["type"] != "HTTPInternalServerError"
    assert api.snapshot() == before


def test_allowed_address_pairs_need_network_ownership(api):
    shared = api.network(shared=True)
    api.subnet(shared["id"], "10.0.0.0/24")
    port = api.port(shared["id"], as_="demo")
    error(
        api.put(f"ports/{port['id']}", {"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.9"}]}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "(rule:update_port and (rule:update_port:allowed_address_pairs and "
        "(rule:update_port:allowed_address_pairs:ip_address))) is disallowed by policy",
    )


def test_member_port_on_an_external_network_is_403(api):
    ext = api.network(**{"router:external": True})
    api.subnet(ext["id"], "172.16.0.0/24")
    error(
        api.post("ports", {"port": {"network_id": ext["id"]}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "rule:create_port is disallowed by policy",
    )


def test_member_device_owner_update_on_a_shared_network(api):
    shared = api.network(shared=True)
    api.subnet(shared["id"], "10.0.0.0/24")
    port = api.port(shared["id"], as_="demo")
    error(
        api.put(f"ports/{port['id']}", {"port": {"device_owner": "network:dhcp"}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "(rule:update_port and rule:update_port:device_owner) is disallowed by policy",
    )
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": {"device_owner": "compute:nova"}}, as_="demo"))["port"]
    assert upd["device_owner"] == "compute:nova"
