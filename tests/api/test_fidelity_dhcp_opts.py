"""Extra DHCP options as Neutron accepts them (issue 14).

* ``ip_version: 6`` entries take IPv6 values;
* option names dnsmasq does not know (``test_option_1``) are accepted when they
  are option tokens, and the port shows that the DHCP agent leaves them out
  (``binding:vif_details.dhcp_opts_left_out``, admin view);
* names that are not tokens and values with control characters stay 400.
* blank values only for ``router`` and ``classless-static-route`` ("send no such option"),
  any other blank value or name 400 with neutron-lib's message.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import error


@pytest.fixture
def net(api):
    net, _ = api.net_with_subnet("10.0.0.0/24", "demo")
    api.subnet(net["id"], "2001:db8::/64", "demo", ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful")
    return net


@pytest.mark.parametrize("value", ["2001:db8::53", "[2001:db8::53]", "2001:db8::53,2001:db8::54"])
def test_ipv6_entries_take_ipv6_values(api, net, value):
    opts = [
        {"opt_name": "dns-server", "opt_value": value, "ip_version": 6},
        {"opt_name": "ntp-server", "opt_value": "2001:db8::123", "ip_version": 6},
    ]
    port = api.port(net["id"], "demo", extra_dhcp_opts=opts)
    assert port["extra_dhcp_opts"] == opts
    assert "dhcp_opts_left_out" not in api.show("ports", "port", port["id"])["binding:vif_details"]


def test_unknown_option_names_are_accepted_and_shown_as_left_out(api, net):
    opts = [
        {"opt_name": "test_option_1", "opt_value": "x", "ip_version": 4},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
        {"opt_name": "tftp-server", "opt_value": "2001:db8::9", "ip_version": 6},
    ]
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
    # an update merges: null values remove the two left-out options, bootfile-name stays
    gone = [dict(opts[0], opt_value=None), dict(opts[2], opt_value=None)]
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": {"extra_dhcp_opts": gone}}))["port"]
    assert upd["extra_dhcp_opts"] == [opts[1]]
    assert "dhcp_opts_left_out" not in upd["binding:vif_details"]


def test_unknown_names_count_once_per_ip_version(api, net):
    opts = [{"opt_name": "test_option_1", "opt_value": "a"}, {"opt_name": "TEST_OPTION_1", "opt_value": "b"}]
    error(
        api.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": opts}}, "demo"),
        400,
        "InvalidInput",
        contains="is given more than once for IPv4",
    )
    both = [opts[0], {**opts[1], "ip_version": 6}]
    assert api.port(net["id"], "demo", extra_dhcp_opts=both)["extra_dhcp_opts"] == [
        {**opts[0], "ip_version": 4},
        both[1],
    ]


@pytest.mark.parametrize("name", ["test option", "a,b", "tag:x", "a=b", "a\nb", "-x", "a" * 65])
def test_names_that_are_not_tokens_are_refused(api, net, name):
    before = api.snapshot()
    error(
        api.post(
            "ports",
            {"port": {"network_id": net["id"], "extra_dhcp_opts": [{"opt_name": name, "opt_value": "1"}]}},
            "demo",
        ),
        400,
        "InvalidInput",
        contains="is not a DHCP option name",
    )
    assert api.snapshot() == before


@pytest.mark.parametrize("value", ["a\nb", "x\rtag:y"])
def test_values_of_unknown_options_are_still_checked(api, net, value):
    error(
        api.post(
            "ports",
            {"port": {"network_id": net["id"], "extra_dhcp_opts": [{"opt_name": "test_option_1", "opt_value": value}]}},
            "demo",
        ),
        400,
        "InvalidInput",
        contains="must not contain newlines",
    )


def test_bulk_create_with_unknown_options(api, net):
    body = {
        "ports": [
            {"network_id": net["id"], "extra_dhcp_opts": [{"opt_name": "test_option_1", "opt_value": str(i)}]}
            for i in range(2)
        ]
    }
    ports = api.ok(api.post("ports", body), 201)["ports"]
    assert [p["binding:vif_details"]["dhcp_opts_left_out"] for p in ports] == [["test_option_1/ipv4"]] * 2


def test_nul_in_name_or_value_is_refused_by_the_attribute_layer(api, net):
    for opt in ({"opt_name": "a\u0000b", "opt_value": "1"}, {"opt_name": "test_option_1", "opt_value": "a\u0000"}):
        error(
            api.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [opt]}}, "demo"),
            400,
            "HTTPBadRequest",
            contains="NUL character",
        )


# --- addresses of the other IP version (tempest's IPv6 extra-DHCP-options test) --------------
TEMPEST_V6_OPTS = [
    {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
    {"opt_name": "tftp-server", "opt_value": "2015::dead"},
    {"opt_name": "server-ip-address", "opt_value": "2015::badd"},
]


def _named(opts):
    return {o["opt_name"]: (o["opt_value"], int(o.get("ip_version") or 4)) for o in opts}


def test_tempest_ipv6_options_without_ip_version_round_trip(api):
    """No ``ip_version`` (so IPv4) with IPv6 addresses, on a port of an IPv6 network: create, show,
    update, show; values come back exactly as given."""
    net = api.network("demo")
    api.subnet(net["id"], "2015::/64", "demo", ip_version=6)
    port = api.port(net["id"], "demo", extra_dhcp_opts=TEMPEST_V6_OPTS)
    expected = {o["opt_name"]: (o["opt_value"], 4) for o in TEMPEST_V6_OPTS}
    assert port["extra_dhcp_opts"] == [dict(o, ip_version=4) for o in TEMPEST_V6_OPTS]
    assert _named(api.show("ports", "port", port["id"], "demo")["extra_dhcp_opts"]) == expected
    listed = api.list("ports", "demo", query=f"id={port['id']}")[0]
    assert _named(listed["extra_dhcp_opts"]) == expected
    # server-ip-address is an IPv4 address field without a DHCPv6 twin: the DHCP agent leaves it out;
    # tftp-server (66) is a server *name* to dnsmasq, so its value passes as given
    assert api.show("ports", "port", port["id"])["binding:vif_details"]["dhcp_opts_left_out"] == [
        "server-ip-address/ipv4"
    ]
    # tempest's update: a fresh port (no options), then name and options together
    other = api.port(net["id"], "demo")
    upd = api.ok(
        api.put(f"ports/{other['id']}", {"port": {"name": "new-port-name", "extra_dhcp_opts": TEMPEST_V6_OPTS}}, "demo")
    )["port"]
    assert upd["name"] == "new-port-name" and _named(upd["extra_dhcp_opts"]) == expected
    assert _named(api.show("ports", "port", other["id"], "demo")["extra_dhcp_opts"]) == expected
    changed = [dict(TEMPEST_V6_OPTS[1], opt_value="2015::beef"), dict(TEMPEST_V6_OPTS[2], opt_value="2015::1")]
    upd = api.ok(api.put(f"ports/{other['id']}", {"port": {"extra_dhcp_opts": changed}}, "demo"))["port"]
    # merged into the port's options (bootfile-name, not named, stays)
    assert (
        _named(upd["extra_dhcp_opts"])
        == _named(api.show("ports", "port", other["id"], "demo")["extra_dhcp_opts"])
        == {"bootfile-name": ("pxelinux.0", 4), "tftp-server": ("2015::beef", 4), "server-ip-address": ("2015::1", 4)}
    )


def test_ipv4_addresses_for_ipv6_options(api, net):
    """The mirror case: ``ip_version: 6`` address options with IPv4 values are accepted and round-trip;
    dns-server has an IPv4 twin (served there), sntp-server has none (left out)."""
    opts = [
        {"opt_name": "dns-server", "opt_value": "10.0.0.53,10.0.0.54", "ip_version": 6},
        {"opt_name": "sntp-server", "opt_value": "10.0.0.123", "ip_version": 6},
    ]
    port = api.port(net["id"], "demo", extra_dhcp_opts=opts)
    assert port["extra_dhcp_opts"] == opts
    shown = api.show("ports", "port", port["id"])
    assert shown["extra_dhcp_opts"] == opts
    assert shown["binding:vif_details"]["dhcp_opts_left_out"] == ["sntp-server/ipv6"]
    upd = api.ok(
        api.put(f"ports/{port['id']}", {"port": {"extra_dhcp_opts": [dict(opts[1], opt_value=None)]}}, "demo")
    )["port"]
    assert upd["extra_dhcp_opts"] == opts[:1]
    assert "dhcp_opts_left_out" not in api.show("ports", "port", port["id"])["binding:vif_details"]


def test_a_moved_option_yields_to_the_ports_own(api, net):
    """dns-server given as IPv4 with IPv6 addresses would be served as DHCPv6 dns-server, but the port
    sets that option itself: the moved one is left out (and shown so)."""
    opts = [
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": 4},
        {"opt_name": "23", "opt_value": "2001:db8::54", "ip_version": 6},
    ]
    port = api.port(net["id"], "demo", extra_dhcp_opts=opts)
    assert port["extra_dhcp_opts"] == opts
    assert api.show("ports", "port", port["id"])["binding:vif_details"]["dhcp_opts_left_out"] == ["dns-server/ipv4"]


@pytest.mark.parametrize(
    "opt, reason",
    [
        ({"opt_name": "server-ip-address", "opt_value": "2015::badd,10.0.0.1"}, "mixes IPv4 and IPv6"),
        ({"opt_name": "server-ip-address", "opt_value": "tftp.example"}, "is not an IPv4 address, nor an IPv6"),
        ({"opt_name": "server-ip-address", "opt_value": "2015::badd\n"}, "must not contain newlines"),
        ({"opt_name": "router", "opt_value": "fe80::1%eth0"}, "is not an IPv4 address, nor an IPv6"),
        ({"opt_name": "dns-server", "opt_value": "2001:db8::53 2001:db8::54"}, "is not an IPv4 address, nor"),
        ({"opt_name": "dns-server", "opt_value": "[10.0.0.53]", "ip_version": 6}, "is not an IPv6 address, nor"),
    ],
)
def test_other_version_values_are_still_strictly_checked(api, net, opt, reason):
    before = api.snapshot()
    error(
        api.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [opt]}}, "demo"),
        400,
        "InvalidInput",
        contains=reason,
    )
    assert api.snapshot() == before


# --- updates merge, as Neutron (openstack port set --extra-dhcp-option sends only what it names) --------
def _opt(name, value, version=4):
    return {"opt_name": name, "opt_value": value, "ip_version": version}


BASE = [_opt("bootfile-name", "pxelinux.0"), _opt("tftp-server", "tftp.example"), _opt("dns-server", "2001:db8::53", 6)]


def _put_opts(api, port_id, opts, as_="demo"):
    return api.ok(api.put(f"ports/{port_id}", {"port": {"extra_dhcp_opts": opts}}, as_))["port"]


def test_update_adds_updates_and_deletes_by_name_and_ip_version(api, net):
    port = api.port(net["id"], "demo", extra_dhcp_opts=BASE)
    assert port["extra_dhcp_opts"] == BASE
    # add (no match), update (match; no ip_version means 4), delete (match, null), the rest stays
    upd = _put_opts(
        api,
        port["id"],
        [
            {"opt_name": "mtu", "opt_value": "1400"},
            {"opt_name": "bootfile-name", "opt_value": "ipxe.efi"},
            {"opt_name": "tftp-server", "opt_value": None, "ip_version": 4},
        ],
    )
    want = [_opt("bootfile-name", "ipxe.efi"), BASE[2], _opt("mtu", "1400")]
    assert upd["extra_dhcp_opts"] == want
    assert api.show("ports", "port", port["id"], "demo")["extra_dhcp_opts"] == want
    assert upd["revision_number"] == port["revision_number"] + 1
    # the same name for the other IP version is another option: dns-server (IPv6) stays
    upd = _put_opts(api, port["id"], [{"opt_name": "dns-server", "opt_value": "10.0.0.53"}])
    assert upd["extra_dhcp_opts"] == want + [_opt("dns-server", "10.0.0.53")]
    upd = _put_opts(api, port["id"], [{"opt_name": "dns-server", "opt_value": None, "ip_version": "6"}])
    assert upd["extra_dhcp_opts"] == [want[0], want[2], _opt("dns-server", "10.0.0.53")]


def test_null_for_an_option_the_port_does_not_have_is_ignored(api, net):
    port = api.port(net["id"], "demo", extra_dhcp_opts=BASE[:1])
    upd = _put_opts(
        api,
        port["id"],
        [
            {"opt_name": "tftp-server", "opt_value": None},
            {"opt_name": "bootfile-name", "opt_value": None, "ip_version": 6},
            {"opt_name": "test_option_1", "opt_value": None},
        ],
    )
    assert upd["extra_dhcp_opts"] == BASE[:1]


@pytest.mark.parametrize("body", [{"extra_dhcp_opts": []}, {"extra_dhcp_opts": None}, {"name": "renamed"}])
def test_empty_or_null_list_changes_no_option(api, net, body):
    port = api.port(net["id"], "demo", extra_dhcp_opts=BASE)
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": body}, "demo"))["port"]
    assert upd["extra_dhcp_opts"] == BASE


def test_create_drops_entries_without_a_value_and_shows_ip_version(api, net):
    given = [
        {"opt_name": "router", "opt_value": None},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": "6"},
        {"opt_name": "tftp-server", "opt_value": None},
    ]
    port = api.port(net["id"], "demo", extra_dhcp_opts=given)
    want = [_opt("bootfile-name", "pxelinux.0"), _opt("dns-server", "2001:db8::53", 6)]
    assert port["extra_dhcp_opts"] == want
    assert api.show("ports", "port", port["id"], "demo")["extra_dhcp_opts"] == want
    assert api.list("ports", "demo", query=f"id={port['id']}")[0]["extra_dhcp_opts"] == want
    bulk = api.ok(
        api.post("ports", {"ports": [{"network_id": net["id"], "extra_dhcp_opts": given[1:2]}]}, "demo"), 201
    )["ports"]
    assert bulk[0]["extra_dhcp_opts"] == want[:1]


def test_merged_result_is_checked_like_a_new_list(api, net):
    """Names match exactly, as Neutron: 'MTU' next to an existing 'mtu' would be the same dnsmasq option
    twice, so the update is refused and nothing changes."""
    port = api.port(net["id"], "demo", extra_dhcp_opts=[_opt("mtu", "1400")])
    before = api.snapshot()
    for opts in ([{"opt_name": "MTU", "opt_value": "1300"}], [{"opt_name": "26", "opt_value": "1300"}]):
        error(
            api.put(f"ports/{port['id']}", {"port": {"extra_dhcp_opts": opts}}, "demo"),
            400,
            "InvalidInput",
            contains="is given more than once for IPv4",
        )
    # a bad value is refused even when it would replace a good one
    error(
        api.put(
            f"ports/{port['id']}", {"port": {"extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "a\nb"}]}}, "demo"
        ),
        400,
        "InvalidInput",
        contains="must not contain",
    )
    assert api.snapshot() == before
    # renamed by removing one and adding the other in one request
    upd = _put_opts(api, port["id"], [{"opt_name": "mtu", "opt_value": None}, {"opt_name": "MTU", "opt_value": "9"}])
    assert upd["extra_dhcp_opts"] == [_opt("MTU", "9")]


def test_left_out_follows_the_merged_options(api, net):
    port = api.port(net["id"], "demo", extra_dhcp_opts=[_opt("bootfile-name", "pxelinux.0")])
    _put_opts(api, port["id"], [{"opt_name": "test_option_1", "opt_value": "x"}])
    assert api.show("ports", "port", port["id"])["binding:vif_details"]["dhcp_opts_left_out"] == ["test_option_1/ipv4"]
    _put_opts(api, port["id"], [{"opt_name": "test_option_1", "opt_value": None}])
    shown = api.show("ports", "port", port["id"])
    assert "dhcp_opts_left_out" not in shown["binding:vif_details"]
    assert shown["extra_dhcp_opts"] == [_opt("bootfile-name", "pxelinux.0")]


def test_feed_and_dhcp_agent_see_the_merged_options(api, net):
    """One update, one revision, one feed change whose body carries the merged list; the DHCP agent's
    renderer, fed that body, serves the kept option and the added one."""
    port = api.port(net["id"], "demo", extra_dhcp_opts=BASE[:2])
    since = api.ok(api.get("/neutrino/v1/changes?since=0&limit=10000"))["revision"]
    upd = _put_opts(
        api, port["id"], [{"opt_name": "tftp-server", "opt_value": None}, {"opt_name": "mtu", "opt_value": "1400"}]
    )
    assert upd["revision_number"] == port["revision_number"] + 1
    changes = api.ok(api.get(f"/neutrino/v1/changes?since={since}&limit=10000"))["changes"]
    mine = [c for c in changes if c["resource"] == "port" and c["id"] == port["id"]]
    assert [c["action"] for c in mine] == ["update"]
    body = mine[0]["body"]
    assert body["extra_dhcp_opts"] == [BASE[0], _opt("mtu", "1400")]
    assert body["revision_number"] == upd["revision_number"]
    from neutrino.agents.dhcp import render
    from neutrino.agents.dhcp.model import DhcpConfig, network_view

    subnets = api.list("subnets", query=f"network_id={net['id']}")
    opts = render.opts_file(
        DhcpConfig("host-1"), network_view(api.show("networks", "network", net["id"]), subnets, [body])
    )
    assert f"tag:port-{port['id']},option:bootfile-name,pxelinux.0" in opts
    assert f"tag:port-{port['id']},option:mtu,1400" in opts
    assert "tftp-server" not in opts


def test_opt_value_may_be_null_but_not_missing(api, net):
    """As neutron-lib (``opt_value`` is a required key): so ``openstack port set --extra-dhcp-option
    name=X`` without a value is refused, as by Neutron, and removes nothing."""
    port = api.port(net["id"], "demo", extra_dhcp_opts=BASE[:1])
    for method, path, body in (
        ("PUT", f"ports/{port['id']}", {"port": {"extra_dhcp_opts": [{"opt_name": "bootfile-name"}]}}),
        ("POST", "ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [{"opt_name": "mtu"}]}}),
    ):
        error(
            api.req(method, path, "demo", json=body),
            400,
            "HTTPBadRequest",
            contains="Validation of dictionary's keys failed",
        )
    assert api.show("ports", "port", port["id"], "demo")["extra_dhcp_opts"] == BASE[:1]


# --- blank values: only router and classless-static-route, meaning "send no such option" -------------
BLANKS = [_opt("router", ""), _opt("classless-static-route", "")]


def test_blank_router_and_classless_static_route_round_trip(api, net):
    port = api.port(net["id"], "demo", extra_dhcp_opts=BLANKS + [_opt("router", "", 6)])
    want = BLANKS + [_opt("router", "", 6)]
    assert port["extra_dhcp_opts"] == want
    assert api.show("ports", "port", port["id"], "demo")["extra_dhcp_opts"] == want
    assert api.list("ports", "demo", query=f"id={port['id']}")[0]["extra_dhcp_opts"] == want
    # dnsmasq has no DHCPv6 router option: that one is left out, the IPv4 ones are served
    assert api.show("ports", "port", port["id"])["binding:vif_details"]["dhcp_opts_left_out"] == ["router/ipv6"]
    # a value replaces the blank and a blank the value (merge by name and ip_version)
    upd = _put_opts(api, port["id"], [{"opt_name": "router", "opt_value": "10.0.0.9"}])
    assert upd["extra_dhcp_opts"][0] == _opt("router", "10.0.0.9")
    upd = _put_opts(
        api,
        port["id"],
        [{"opt_name": "router", "opt_value": ""}, {"opt_name": "router", "opt_value": None, "ip_version": 6}],
    )
    assert upd["extra_dhcp_opts"] == BLANKS
    assert "dhcp_opts_left_out" not in api.show("ports", "port", port["id"])["binding:vif_details"]


@pytest.mark.parametrize(
    "opt",
    [
        {"opt_name": "bootfile-name", "opt_value": ""},
        {"opt_name": "bootfile-name", "opt_value": "   "},
        {"opt_name": "3", "opt_value": ""},
        {"opt_name": "Router", "opt_value": ""},
        {"opt_name": "test_option_1", "opt_value": "", "ip_version": 6},
        {"opt_name": "", "opt_value": "x"},
    ],
)
def test_other_blank_values_are_refused_as_neutron(api, net, opt):
    port = api.port(net["id"], "demo", extra_dhcp_opts=BASE[:1])
    before = api.snapshot()
    want = f"Invalid input for operation: No valid key specs matched for: {opt}."
    error(
        api.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [opt]}}, "demo"),
        400,
        "InvalidInput",
        want,
    )
    error(api.put(f"ports/{port['id']}", {"port": {"extra_dhcp_opts": [opt]}}, "demo"), 400, "InvalidInput", want)
    assert api.snapshot() == before


def test_a_blank_router_reaches_dnsmasq_as_an_option_without_data(api, net):
    """The feed body of the port carries the blank, and the DHCP agent's renderer writes
    ``option:router`` with no data and no comma (dnsmasq: send no router to this port)."""
    since = api.ok(api.get("/neutrino/v1/changes?since=0&limit=10000"))["revision"]
    port = api.port(net["id"], "demo", extra_dhcp_opts=BLANKS)
    changes = api.ok(api.get(f"/neutrino/v1/changes?since={since}&limit=10000"))["changes"]
    body = [c for c in changes if c["resource"] == "port" and c["id"] == port["id"]][-1]["body"]
    assert body["extra_dhcp_opts"] == BLANKS
    from neutrino.agents.dhcp import render
    from neutrino.agents.dhcp.model import DhcpConfig, network_view

    subnets = api.list("subnets", query=f"network_id={net['id']}")
    lines = render.opts_file(
        DhcpConfig("host-1"), network_view(api.show("networks", "network", net["id"]), subnets, [body])
    ).splitlines()
    assert f"tag:port-{port['id']},option:router" in lines
    assert f"tag:port-{port['id']},option:classless-static-route" in lines
    assert not any(line.endswith(",") for line in lines)
