"""Extra DHCP options as Neutron accepts them (issue 14).

* ``ip_version: 6`` entries take IPv6 values;
* option names dnsmasq does not know (``test_option_1``) are accepted when they
  are option tokens, and the port shows that the DHCP agent leaves them out
  (``binding:vif_details.dhcp_opts_left_out``, admin view);
* names that are not tokens and values with control characters stay 400.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import error


@pytest.fixture
def net(api):
    net, _ = api.net_with_subnet("10.0.0.0/24", "demo")
    api.subnet(net["id"], "2001:db8::/64", "demo", ipv6_address_mode="dhcpv6-stateful",
               ipv6_ra_mode="dhcpv6-stateful")
    return net


@pytest.mark.parametrize("value", ["2001:db8::53", "[2001:db8::53]", "2001:db8::53,2001:db8::54"])
def test_ipv6_entries_take_ipv6_values(api, net, value):
    opts = [{"opt_name": "dns-server", "opt_value": value, "ip_version": 6},
            {"opt_name": "ntp-server", "opt_value": "2001:db8::123", "ip_version": 6}]
    port = api.port(net["id"], "demo", extra_dhcp_opts=opts)
    assert port["extra_dhcp_opts"] == opts
    assert "dhcp_opts_left_out" not in api.show("ports", "port", port["id"])["binding:vif_details"]


def test_unknown_option_names_are_accepted_and_shown_as_left_out(api, net):
    opts = [{"opt_name": "test_option_1", "opt_value": "x", "ip_version": 4},
            {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
            {"opt_name": "tftp-server", "opt_value": "2001:db8::9", "ip_version": 6}]
    port = api.port(net["id"], "demo", extra_dhcp_opts=opts)
    assert port["extra_dhcp_opts"] == opts
    shown = api.show("ports", "port", port["id"])
    assert shown["extra_dhcp_opts"] == opts
    assert shown["binding:vif_details"]["dhcp_opts_left_out"] == ["test_option_1/ipv4", "tftp-server/ipv6"]
    # the owner sees its options, not the admin-only binding details
    assert "binding:vif_details" not in api.show("ports", "port", port["id"], "demo")
    # in lists too, and gone once the options are
    listed = api.list("ports", query=f"id={port['id']}")[0]
    assert listed["binding:vif_details"]["dhcp_opts_left_out"] == ["test_option_1/ipv4", "tftp-server/ipv6"]
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": {"extra_dhcp_opts": [opts[1]]}}))["port"]
    assert upd["extra_dhcp_opts"] == [opts[1]]
    assert "dhcp_opts_left_out" not in upd["binding:vif_details"]


def test_unknown_names_count_once_per_ip_version(api, net):
    opts = [{"opt_name": "test_option_1", "opt_value": "a"}, {"opt_name": "TEST_OPTION_1", "opt_value": "b"}]
    error(api.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": opts}}, "demo"), 400,
          "InvalidInput", contains="is given more than once for IPv4")
    both = [opts[0], {**opts[1], "ip_version": 6}]
    assert api.port(net["id"], "demo", extra_dhcp_opts=both)["extra_dhcp_opts"] == both


@pytest.mark.parametrize("name", ["test option", "a,b", "tag:x", "a=b", "a\nb", "-x", "a" * 65])
def test_names_that_are_not_tokens_are_refused(api, net, name):
    before = api.snapshot()
    error(api.post("ports", {"port": {"network_id": net["id"],
                                      "extra_dhcp_opts": [{"opt_name": name, "opt_value": "1"}]}}, "demo"),
          400, "InvalidInput", contains="is not a DHCP option name")
    assert api.snapshot() == before


@pytest.mark.parametrize("value", ["a\nb", "x\rtag:y"])
def test_values_of_unknown_options_are_still_checked(api, net, value):
    error(api.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "test_option_1", "opt_value": value}]}}, "demo"), 400, "InvalidInput",
          contains="must not contain newlines")


def test_bulk_create_with_unknown_options(api, net):
    body = {"ports": [{"network_id": net["id"], "extra_dhcp_opts": [{"opt_name": "test_option_1",
                                                                     "opt_value": str(i)}]} for i in range(2)]}
    ports = api.ok(api.post("ports", body), 201)["ports"]
    assert [p["binding:vif_details"]["dhcp_opts_left_out"] for p in ports] == [["test_option_1/ipv4"]] * 2


def test_nul_in_name_or_value_is_refused_by_the_attribute_layer(api, net):
    for opt in ({"opt_name": "a\u0000b", "opt_value": "1"}, {"opt_name": "test_option_1", "opt_value": "a\u0000"}):
        error(api.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [opt]}}, "demo"), 400,
              "HTTPBadRequest", contains="NUL character")
