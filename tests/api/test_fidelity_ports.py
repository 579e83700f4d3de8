"""Issue 14, behaviours on ports: security groups on ports without an address, the ``fixed_ips``
filters (``ip-substring-filtering``) and the MAC addresses an admin may set."""

from __future__ import annotations

import pytest

from tests.api.conftest import error


# --- security groups without an address -------------------------------------------------------------
def test_port_without_subnet_may_carry_security_groups(api):
    net = api.network("demo")  # no subnet: the port gets no address
    sg = api.sg("demo", name="web")
    p = api.port(net["id"], "demo", security_groups=[sg["id"]])
    assert p["fixed_ips"] == [] and p["security_groups"] == [sg["id"]] and p["port_security_enabled"] is True
    # the group stays through a show
    assert api.show("ports", "port", p["id"], "demo")["security_groups"] == [sg["id"]]


def test_port_without_address_gets_the_default_group(api):
    net = api.network("demo")
    p = api.port(net["id"], "demo")
    (default,) = [g for g in api.list("security-groups", "demo") if g["name"] == "default"]
    assert p["fixed_ips"] == [] and p["security_groups"] == [default["id"]]
    # not without port security, and not on network-owned ports
    assert api.port(net["id"], "demo", port_security_enabled=False)["security_groups"] == []
    assert api.port(net["id"], "admin", device_owner="network:dhcp")["security_groups"] == []


def test_port_with_empty_fixed_ips_may_carry_security_groups(api):
    net, _ = api.net_with_subnet()
    sg = api.sg("demo", name="web")
    p = api.port(net["id"], "demo", fixed_ips=[], security_groups=[sg["id"]])
    assert p["fixed_ips"] == [] and p["security_groups"] == [sg["id"]]


def test_security_groups_added_and_kept_on_address_changes(api):
    net, sub = api.net_with_subnet()
    sg = api.sg("demo", name="web")
    p = api.port(net["id"], "demo", fixed_ips=[], security_groups=[])
    upd = api.ok(api.put(f"ports/{p['id']}", {"port": {"security_groups": [sg["id"]]}}, "demo"))["port"]
    assert upd["security_groups"] == [sg["id"]] and upd["fixed_ips"] == []
    # addresses come and go; the groups stay
    upd = api.ok(api.put(f"ports/{p['id']}", {"port": {"fixed_ips": [{"subnet_id": sub["id"]}]}}, "demo"))["port"]
    assert len(upd["fixed_ips"]) == 1 and upd["security_groups"] == [sg["id"]]
    upd = api.ok(api.put(f"ports/{p['id']}", {"port": {"fixed_ips": []}}, "demo"))["port"]
    assert upd["fixed_ips"] == [] and upd["security_groups"] == [sg["id"]]


def test_port_security_off_still_forbids_groups_without_address(api):
    net = api.network("demo")
    sg = api.sg("demo", name="web")
    before = api.snapshot()
    error(
        api.post(
            "ports",
            {"port": {"network_id": net["id"], "port_security_enabled": False, "security_groups": [sg["id"]]}},
            "demo",
        ),
        400,
        "PortSecurityAndIPRequiredForSecurityGroups",
        "Port security must be enabled and port must have an IP address in order to use security groups.",
    )
    assert api.snapshot() == before
    p = api.port(net["id"], "demo", port_security_enabled=False)
    error(
        api.put(f"ports/{p['id']}", {"port": {"security_groups": [sg["id"]]}}, "demo"),
        400,
        "PortSecurityAndIPRequiredForSecurityGroups",
    )


def test_unowned_group_on_addressless_port_is_still_refused(api):
    net = api.network("demo")
    theirs = api.sg("other", name="theirs")
    r = api.post("ports", {"port": {"network_id": net["id"], "security_groups": [theirs["id"]]}}, "demo")
    assert r.status_code == 404, r.text


# --- fixed_ips filters -----------------------------------------------------------------------------
def _ports_with(api, net, sub, addresses):
    return {
        a: api.port(net["id"], "admin", fixed_ips=[{"subnet_id": sub["id"], "ip_address": a}])["id"] for a in addresses
    }


def _ids(api, query):
    return {p["id"] for p in api.list("ports", "admin", query)}


def test_fixed_ips_ip_address_substr(api):
    net, sub = api.net_with_subnet("10.0.0.0/24", "admin")
    net2, sub2 = api.net_with_subnet("10.1.0.0/24", "admin")
    ports = _ports_with(api, net, sub, ["10.0.0.5", "10.0.0.15", "10.0.0.51"])
    ports.update(_ports_with(api, net2, sub2, ["10.1.0.5"]))
    assert _ids(api, "fixed_ips=ip_address_substr%3D10.0.0.5") == {ports["10.0.0.5"], ports["10.0.0.51"]}
    assert _ids(api, "fixed_ips=ip_address_substr=0.0.1") == {ports["10.0.0.15"]}
    assert _ids(api, "fixed_ips=ip_address_substr=.5") == {ports["10.0.0.5"], ports["10.0.0.51"], ports["10.1.0.5"]}
    # the value is a substring, not a pattern
    assert _ids(api, "fixed_ips=ip_address_substr=10%25") == set()
    assert _ids(api, "fixed_ips=ip_address_substr=10_0") == set()
    # several values of one key are alternatives
    assert _ids(api, "fixed_ips=ip_address_substr=.15&fixed_ips=ip_address_substr=1.0.5") == {
        ports["10.0.0.15"],
        ports["10.1.0.5"],
    }


def test_fixed_ips_keys_combined(api):
    net, sub = api.net_with_subnet("10.0.0.0/24", "admin")
    sub2 = api.subnet(net["id"], "10.2.0.0/24")
    a = api.port(
        net["id"],
        "admin",
        fixed_ips=[
            {"subnet_id": sub["id"], "ip_address": "10.0.0.7"},
            {"subnet_id": sub2["id"], "ip_address": "10.2.0.9"},
        ],
    )["id"]
    b = api.port(net["id"], "admin", fixed_ips=[{"subnet_id": sub2["id"], "ip_address": "10.2.0.7"}])["id"]
    c = api.port(net["id"], "admin", fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.0.0.8"}])["id"]
    assert _ids(api, f"fixed_ips=subnet_id={sub2['id']}") == {a, b}
    # different keys must hold for the same address
    assert _ids(api, f"fixed_ips=subnet_id={sub2['id']}&fixed_ips=ip_address_substr=.7") == {b}
    assert _ids(api, f"fixed_ips=subnet_id={sub['id']}&fixed_ips=ip_address=10.2.0.9") == set()
    assert _ids(api, f"fixed_ips=subnet_id={sub['id']}&fixed_ips=ip_address=10.0.0.7") == {a}
    # values of one key are alternatives
    assert _ids(api, "fixed_ips=ip_address=10.0.0.7&fixed_ips=ip_address=10.0.0.8") == {a, c}
    # with another filter
    assert _ids(api, f"fixed_ips=ip_address_substr=10.&network_id={net['id']}&id={c}") == {c}


@pytest.mark.parametrize("raw", ["mac_address=fa:16:3e:00:00:01", "ip_address", "bogus=1"])
def test_fixed_ips_unknown_key_is_400(api, raw):
    error(api.get(f"ports?fixed_ips={raw}"), 400, "HTTPBadRequest", f"Invalid fixed_ips filter '{raw}'")


def test_ip_substring_filtering_is_announced(api):
    aliases = {e["alias"] for e in api.ok(api.get("extensions"))["extensions"]}
    assert "ip-substring-filtering" in aliases


# --- MAC addresses ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mac,shown",
    [
        ("11:22:33:44:55:66", "11:22:33:44:55:66"),
        ("01:00:5E:00:00:FB", "01:00:5e:00:00:fb"),
        ("fa-16-3e-00-00-09", "fa:16:3e:00:00:09"),
    ],
)
def test_admin_sets_unicast_or_multicast_mac(api, mac, shown):
    net, _ = api.net_with_subnet("10.0.0.0/24", "admin")
    p = api.port(net["id"], "admin", mac_address=mac)
    assert p["mac_address"] == shown
    assert api.list("ports", "admin", f"mac_address={shown}")[0]["id"] == p["id"]
    other = api.port(net["id"], "admin")
    upd = api.ok(api.put(f"ports/{other['id']}", {"port": {"mac_address": "33:33:00:00:00:01"}}))["port"]
    assert upd["mac_address"] == "33:33:00:00:00:01"
    error(api.post("ports", {"port": {"network_id": net["id"], "mac_address": shown}}), 409, "MacAddressInUse")


@pytest.mark.parametrize(
    "mac",
    [
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "FF:FF:FF:FF:FF:FF",
        "11:22:33:44:55",
        "11:22:33:44:55:6g",
        "11:22:33:44:55:66:77",
    ],
)
def test_invalid_macs_are_400(api, mac):
    net = api.network()
    error(
        api.post("ports", {"port": {"network_id": net["id"], "mac_address": mac}}),
        400,
        "HTTPBadRequest",
        f"Invalid input for mac_address. Reason: '{mac}' is not a valid MAC address.",
    )
