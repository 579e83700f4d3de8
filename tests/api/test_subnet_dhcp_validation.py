"""Values dnsmasq would refuse (or silently drop) are refused by the API, and nothing changes.

Subnets: a default host route together with a gateway, duplicate host
routes.  Ports: extra_dhcp_opts dnsmasq does not know or cannot parse, and
dns_name values that would break the hosts files.  Every refusal is
checked against a snapshot of all tables (feed included).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from neutrino.shared import dnsmasq_options
from tests.api.conftest import error


@pytest.fixture
def net_sub(api):
    return api.net_with_subnet("10.0.0.0/24")


def refused(api, method: str, path: str, body: dict, type_: str, *, contains: str, as_: str = "demo") -> None:
    before = api.snapshot()
    error(api.req(method, path, as_, json=body), 400, type_, contains=contains)
    assert api.snapshot() == before


# --- subnets ----------------------------------------------------------------------------------------
def test_default_host_route_with_gateway_is_refused_on_update(api, net_sub):
    net, sub = net_sub
    route = [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.9"}]
    refused(
        api,
        "PUT",
        f"subnets/{sub['id']}",
        {"subnet": {"host_routes": route}},
        "InvalidInput",
        contains=f"Subnet {sub['id']} has gateway_ip 10.0.0.1: the host route 0.0.0.0/0 via 10.0.0.9",
    )
    # with the gateway removed in the same request, the route becomes the default route: fine
    out = api.ok(api.put(f"subnets/{sub['id']}", {"subnet": {"host_routes": route, "gateway_ip": None}}, "demo"))[
        "subnet"
    ]
    assert out["gateway_ip"] is None and out["host_routes"] == route
    # setting a gateway again while the default route is there is refused as well
    refused(
        api,
        "PUT",
        f"subnets/{sub['id']}",
        {"subnet": {"gateway_ip": "10.0.0.1"}},
        "InvalidInput",
        contains="would be a second default route",
    )


def test_default_host_route_with_gateway_is_refused_on_create(api):
    net = api.network("demo")
    body = {
        "subnet": {
            "network_id": net["id"],
            "cidr": "10.0.0.0/24",
            "ip_version": 4,
            "host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.9"}],
        }
    }
    refused(api, "POST", "subnets", body, "InvalidInput", contains="would be a second default route")
    body6 = {
        "subnet": {
            "network_id": net["id"],
            "cidr": "2001:db8::/64",
            "ip_version": 6,
            "host_routes": [{"destination": "::/0", "nexthop": "2001:db8::9"}],
        }
    }
    refused(api, "POST", "subnets", body6, "InvalidInput", contains="host route ::/0 via 2001:db8::9")
    ok = dict(body["subnet"], gateway_ip=None)
    assert api.ok(api.post("subnets", {"subnet": ok}, "demo"), 201)["subnet"]["gateway_ip"] is None


def test_duplicate_host_routes_are_refused(api, net_sub):
    net, sub = net_sub
    routes = [
        {"destination": "10.1.0.0/16", "nexthop": "10.0.0.9"},
        {"destination": "10.1.0.0/16", "nexthop": "10.0.0.9"},
    ]
    refused(
        api,
        "PUT",
        f"subnets/{sub['id']}",
        {"subnet": {"host_routes": routes}},
        "HTTPBadRequest",
        contains="Invalid input for host_routes. Reason: Duplicate hostroute",
    )
    same_dest = [routes[0], {"destination": "10.1.0.0/16", "nexthop": "10.0.0.8"}]
    assert (
        len(
            api.ok(api.put(f"subnets/{sub['id']}", {"subnet": {"host_routes": same_dest}}, "demo"))["subnet"][
                "host_routes"
            ]
        )
        == 2
    )


def test_attribute_layer_refusals_still_leave_nothing(api, net_sub):
    net, sub = net_sub
    refused(
        api,
        "PUT",
        f"subnets/{sub['id']}",
        {"subnet": {"dns_nameservers": ["dns.example"]}},
        "HTTPBadRequest",
        contains="is not a valid IP address",
    )
    refused(
        api,
        "PUT",
        f"subnets/{sub['id']}",
        {"subnet": {"host_routes": [{"destination": "10.1.0.0/16", "nexthop": "gw"}]}},
        "HTTPBadRequest",
        contains="'gw' is not a valid IP address",
    )


def test_good_subnet_updates_pass(api, net_sub):
    net, sub = net_sub
    routes = [
        {"destination": "10.1.0.0/16", "nexthop": "10.0.0.9"},
        {"destination": "169.254.169.254/32", "nexthop": "10.0.0.2"},
    ]
    out = api.ok(
        api.put(
            f"subnets/{sub['id']}",
            {"subnet": {"host_routes": routes, "dns_nameservers": ["8.8.8.8"], "gateway_ip": None}},
            "demo",
        )
    )["subnet"]
    assert out["host_routes"] == routes and out["gateway_ip"] is None


# --- ports: extra_dhcp_opts -----------------------------------------------------------------------------
GOOD_OPTS = [
    {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
    {"opt_name": "tftp-server", "opt_value": "tftp.example.com"},
    {"opt_name": "server-ip-address", "opt_value": "10.0.0.9"},
    {"opt_name": "dns-server", "opt_value": "8.8.8.8, 1.1.1.1"},
    {"opt_name": "T1", "opt_value": "1000"},
    {"opt_name": "252", "opt_value": "http://wpad/wpad.dat"},
    {"opt_name": "domain-search", "opt_value": "a.example,b.example"},
    {"opt_name": "client-id", "opt_value": "01:fa:16:3e:00:00:01"},
    {"opt_name": "dns-server", "opt_value": "[2001:db8::53]", "ip_version": 6},
    {"opt_name": "bootfile-url", "opt_value": "http://boot/x.efi", "ip_version": 6},
    {"opt_name": "router", "opt_value": None},
    {"opt_name": "MTU", "opt_value": "1400"},
]


def test_known_options_are_accepted(api, net_sub):
    net, _ = net_sub
    port = api.port(net["id"], "demo", extra_dhcp_opts=GOOD_OPTS)
    # shown with ip_version; an entry without a value (router: null) is not kept, as Neutron
    kept = [dict(o, ip_version=o.get("ip_version", 4)) for o in GOOD_OPTS if o["opt_value"] is not None]
    assert port["extra_dhcp_opts"] == kept
    # an update merges (test_fidelity_dhcp_opts.py): null values remove all but the first two
    drop = [dict(o, opt_value=None) for o in GOOD_OPTS[2:]]
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": {"extra_dhcp_opts": drop}}, "demo"))["port"]
    assert upd["extra_dhcp_opts"] == kept[:2]


BAD_OPTS = [
    # (names dnsmasq does not know but that are option tokens are accepted: test_fidelity_dhcp_opts.py)
    ({"opt_name": "option:router", "opt_value": "1.2.3.4"}, "is not a DHCP option name"),
    ({"opt_name": "tag:ipxe,bootfile-name", "opt_value": "x"}, "is not a DHCP option name"),
    ({"opt_name": "bootfile-name,extra", "opt_value": "x"}, "is not a DHCP option name"),
    ({"opt_name": "0", "opt_value": "x"}, "option number, IPv4 1-254"),
    ({"opt_name": "255", "opt_value": "x"}, "option number, IPv4 1-254"),
    ({"opt_name": "70000", "opt_value": "x", "ip_version": 6}, "IPv6 1-65535"),
    ({"opt_name": "router", "opt_value": "gateway"}, "'gateway' is not an IPv4 address"),
    # (a blank router means "send none", as Neutron; other blank values: test_fidelity_dhcp_opts.py)
    ({"opt_name": "router", "opt_value": ","}, "'' is not an IPv4 address"),
    # (addresses of the other IP version only are accepted: test_fidelity_dhcp_opts.py)
    ({"opt_name": "3", "opt_value": "10.0.0.1,2001:db8::1"}, "mixes IPv4 and IPv6 addresses"),
    ({"opt_name": "dns-server", "opt_value": "8.8.8.8,"}, "'' is not an IPv4 address"),
    ({"opt_name": "dns-server", "opt_value": "8.8.8.8,dns.example"}, "'dns.example' is not an IPv4 address"),
    ({"opt_name": "server-ip-address", "opt_value": "tftp"}, "'tftp' is not an IPv4 address"),
    ({"opt_name": "dns-server", "opt_value": "2001:db8::53,8.8.8.8", "ip_version": 6}, "mixes IPv4 and IPv6"),
    ({"opt_name": "dns-server", "opt_value": "8.8.8.8,[8.8.4.4]", "ip_version": 6}, "'[8.8.4.4]' is not an IPv6"),
    ({"opt_name": "server-ip-address", "opt_value": "2015::badd\n"}, "must not contain newlines"),
    ({"opt_name": "dns-server", "opt_value": "[fe80::1%eth0]", "ip_version": 6}, "is not an IPv6 address"),
    ({"opt_name": "bootfile-name", "opt_value": "a\nb"}, "must not contain newlines"),
    ({"opt_name": "bootfile-name", "opt_value": "a\rtag:x,option:router,1.1.1.1"}, "must not contain newlines"),
    ({"opt_name": "bootfile-name", "opt_value": "\"pxe"}, "unbalanced double quote"),
    ({"opt_name": "client-id", "opt_value": "a,b"}, "a client-id must not contain commas"),
    ({"opt_name": "client-id", "opt_value": "a b"}, "a client-id must not contain commas"),
]


@pytest.mark.parametrize("opt, reason", BAD_OPTS, ids=[str(i) for i in range(len(BAD_OPTS))])
def test_bad_extra_dhcp_opts_are_refused(api, net_sub, opt, reason):
    net, _ = net_sub
    port = api.port(net["id"], "demo", extra_dhcp_opts=GOOD_OPTS[:1])
    refused(
        api,
        "PUT",
        f"ports/{port['id']}",
        {"port": {"extra_dhcp_opts": [GOOD_OPTS[1], opt]}},
        "InvalidInput",
        contains=reason,
    )
    err = error(api.put(f"ports/{port['id']}", {"port": {"extra_dhcp_opts": [opt]}}, "demo"), 400, "InvalidInput")
    assert err["message"].startswith("Invalid input for operation: Invalid extra_dhcp_opt {")
    refused(
        api,
        "POST",
        "ports",
        {"port": {"network_id": net["id"], "extra_dhcp_opts": [opt]}},
        "InvalidInput",
        contains=reason,
    )
    assert api.show("ports", "port", port["id"])["extra_dhcp_opts"] == [dict(GOOD_OPTS[0], ip_version=4)]


def test_duplicate_options_are_refused(api, net_sub):
    net, _ = net_sub
    for opts in (
        [{"opt_name": "router", "opt_value": "10.0.0.1"}, {"opt_name": "router", "opt_value": "10.0.0.2"}],
        [{"opt_name": "router", "opt_value": "10.0.0.1"}, {"opt_name": "3", "opt_value": "10.0.0.2"}],
        [{"opt_name": "mtu", "opt_value": "1400"}, {"opt_name": "MTU", "opt_value": "1300"}],
    ):
        refused(
            api,
            "POST",
            "ports",
            {"port": {"network_id": net["id"], "extra_dhcp_opts": opts}},
            "InvalidInput",
            contains="is given more than once for IPv4",
        )
    both = [
        {"opt_name": "dns-server", "opt_value": "8.8.8.8", "ip_version": 4},
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": 6},
    ]
    assert api.port(net["id"], "demo", extra_dhcp_opts=both)["extra_dhcp_opts"] == both


# --- ports: dns_name -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a b", "a,b", "vm_1", "-vm", "vm-", "a..b", "a\nb", "x" * 64, "host.123."])
def test_bad_dns_names_are_refused(api, net_sub, name):
    net, _ = net_sub
    port = api.port(net["id"], "demo", dns_name="vm1")
    refused(
        api,
        "PUT",
        f"ports/{port['id']}",
        {"port": {"dns_name": name}},
        "HTTPBadRequest",
        contains="Invalid input for dns_name. Reason: ",
    )
    refused(
        api,
        "POST",
        "ports",
        {"port": {"network_id": net["id"], "dns_name": name}},
        "HTTPBadRequest",
        contains="not a valid PQDN or FQDN",
    )


@pytest.mark.parametrize("name", ["vm1", "VM-1", "web.internal", "a" * 63, "vm1.example.org.", ""])
def test_good_dns_names_pass(api, net_sub, name):
    net, _ = net_sub
    assert api.port(net["id"], "demo", dns_name=name)["dns_name"] == name


# --- the option tables match this machine's dnsmasq (when it is installed) ----------------------------
def _dnsmasq_options(section: str) -> dict[str, int]:
    out = subprocess.run(["dnsmasq", "--help", section], capture_output=True, text=True, check=True).stdout
    opts = {}
    for line in out.splitlines()[1:]:
        code, _, name = line.strip().partition(" ")
        if code.isdigit():
            opts[name.strip()] = int(code)
    return opts


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq is not installed")
def test_known_options_are_dnsmasqs():
    """Every option we accept by name is one this dnsmasq knows, with the same code."""
    for section, ours in (("dhcp", dnsmasq_options.KNOWN_V4), ("dhcp6", dnsmasq_options.KNOWN_V6)):
        theirs = _dnsmasq_options(section)
        assert {k: theirs.get(k) for k in ours} == ours
