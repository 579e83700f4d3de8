"""IPAM through the API (reference §9, §7.3): default gateways and pools, pool
validation, fixed IP requests, allocation order, IPv6 modes and SLAAC, and the
semantics of fixed_ips updates."""

from __future__ import annotations

import ipaddress
import random

import pytest

from neutrino.db import tables
from tests.api.conftest import error


def _ips(port):
    return [f["ip_address"] for f in port["fixed_ips"]]


# --- defaults (§9.2) ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cidr,attrs,gateway,pools",
    [
        ("10.0.0.0/24", {}, "10.0.0.1", [("10.0.0.2", "10.0.0.254")]),
        ("10.200.0.0/24", {"gateway_ip": None}, None, [("10.200.0.1", "10.200.0.254")]),
        ("10.0.0.0/29", {"gateway_ip": "10.0.0.6"}, "10.0.0.6", [("10.0.0.1", "10.0.0.5")]),
        (
            "10.0.0.0/24",
            {"gateway_ip": "10.0.0.100"},
            "10.0.0.100",
            [("10.0.0.1", "10.0.0.99"), ("10.0.0.101", "10.0.0.254")],
        ),
        ("10.0.0.0/24", {"gateway_ip": "192.168.0.1"}, "192.168.0.1", [("10.0.0.1", "10.0.0.254")]),
        ("10.0.0.0/30", {}, "10.0.0.1", [("10.0.0.2", "10.0.0.2")]),
        ("10.0.0.0/31", {"enable_dhcp": False, "gateway_ip": None}, None, [("10.0.0.0", "10.0.0.1")]),
        ("2001:db8::/64", {}, "2001:db8::", [("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")]),
        (
            "2001:db8::/64",
            {"gateway_ip": "2001:db8::1"},
            "2001:db8::1",
            [("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")],
        ),
        (
            "2001:db8::/120",
            {"gateway_ip": "2001:db8::80"},
            "2001:db8::80",
            [("2001:db8::1", "2001:db8::7f"), ("2001:db8::81", "2001:db8::ff")],
        ),
    ],
)
def test_default_gateway_and_pools(api, cidr, attrs, gateway, pools):
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], cidr, as_="demo", **attrs)
    assert sub["gateway_ip"] == gateway
    assert sub["allocation_pools"] == [{"start": a, "end": b} for a, b in pools]


def test_supplied_pools_are_canonicalised(api):
    net = api.network(as_="demo")
    sub = api.subnet(
        net["id"], "2001:db8::/64", as_="demo", allocation_pools=[{"start": "2001:DB8:0::10", "end": "2001:db8::0020"}]
    )
    assert sub["allocation_pools"] == [{"start": "2001:db8::10", "end": "2001:db8::20"}]


# --- pool validation (§3.2) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pools,gateway,status,type_,msg",
    [
        (
            [{"start": "10.1.0.2", "end": "10.1.0.10"}],
            "10.1.0.5",
            409,
            "GatewayConflictWithAllocationPools",
            "Gateway ip 10.1.0.5 conflicts with allocation pool 10.1.0.2-10.1.0.10.",
        ),
        (
            [{"start": "10.1.0.2", "end": "10.1.1.10"}],
            None,
            400,
            "OutOfBoundsAllocationPool",
            "The allocation pool 10.1.0.2-10.1.1.10 spans beyond the subnet cidr 10.1.0.0/24.",
        ),
        (
            [{"start": "10.1.0.0", "end": "10.1.0.10"}],
            None,
            400,
            "OutOfBoundsAllocationPool",
            "The allocation pool 10.1.0.0-10.1.0.10 spans beyond the subnet cidr 10.1.0.0/24.",
        ),
        (
            [{"start": "10.1.0.2", "end": "10.1.0.255"}],
            None,
            400,
            "OutOfBoundsAllocationPool",
            "The allocation pool 10.1.0.2-10.1.0.255 spans beyond the subnet cidr 10.1.0.0/24.",
        ),
        (
            [{"start": "10.1.0.2", "end": "10.1.0.20"}, {"start": "10.1.0.10", "end": "10.1.0.30"}],
            None,
            409,
            "OverlappingAllocationPools",
            "Found overlapping allocation pools: 10.1.0.2-10.1.0.20 10.1.0.10-10.1.0.30 for subnet 10.1.0.0/24.",
        ),
        (
            [{"start": "10.1.0.20", "end": "10.1.0.10"}],
            None,
            400,
            "InvalidAllocationPool",
            "The allocation pool {'start': '10.1.0.20', 'end': '10.1.0.10'} is not valid.",
        ),
        (
            [{"start": "fd00::2", "end": "fd00::9"}],
            None,
            400,
            "InvalidAllocationPool",
            "The allocation pool fd00::2-fd00::9 is not valid.",
        ),
    ],
)
def test_pool_validation_errors(api, pools, gateway, status, type_, msg):
    net = api.network(as_="demo")
    before = api.snapshot()
    body = {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": pools}
    if gateway:
        body["gateway_ip"] = gateway
    error(api.post("subnets", {"subnet": body}, as_="demo"), status, type_, msg)
    assert api.snapshot() == before


@pytest.mark.parametrize("pool", [{"start": "10.1.0.2"}, {"start": "x", "end": "10.1.0.3"}, "10.1.0.2-10.1.0.3"])
def test_malformed_pools(api, pool):
    net = api.network(as_="demo")
    body = {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [pool]}
    error(
        api.post("subnets", {"subnet": body}, as_="demo"),
        400,
        "HTTPBadRequest",
        contains="Invalid input for allocation_pools. Reason:",
    )


def test_pool_update_replaces_and_keeps_allocations(api):
    net, sub = api.net_with_subnet("10.0.0.0/24", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.20"}])
    port = api.port(net["id"], as_="demo")
    upd = api.ok(
        api.put(
            f"subnets/{sub['id']}",
            {"subnet": {"allocation_pools": [{"start": "10.0.0.100", "end": "10.0.0.101"}]}},
            as_="demo",
        )
    )["subnet"]
    assert upd["allocation_pools"] == [{"start": "10.0.0.100", "end": "10.0.0.101"}]
    assert api.show("ports", "port", port["id"])["fixed_ips"] == port["fixed_ips"]
    assert _ips(api.port(net["id"], as_="demo"))[0] in ("10.0.0.100", "10.0.0.101")


# --- fixed_ips on create (§7.3, §9.1) ------------------------------------------------------------------
def test_default_allocation_is_random_within_the_pool(make_api):
    api = make_api(rng=random.Random(7))
    net, sub = api.net_with_subnet("10.0.0.0/24")
    got = [_ips(api.port(net["id"], as_="demo"))[0] for _ in range(6)]
    assert len(set(got)) == 6
    assert all(
        ipaddress.ip_address("10.0.0.2") <= ipaddress.ip_address(a) <= ipaddress.ip_address("10.0.0.254") for a in got
    )
    assert got != [f"10.0.0.{i}" for i in range(2, 8)]  # not lowest-first


def test_random_window_is_the_first_thousand_free_addresses(make_api):
    api = make_api(rng=random.Random(3))
    net, sub = api.net_with_subnet("10.0.0.0/16")
    for _ in range(5):
        addr = ipaddress.ip_address(_ips(api.port(net["id"], as_="demo"))[0])
        assert int(addr) - int(ipaddress.ip_address("10.0.0.2")) < 1000, addr


def test_v6_allocation_stays_near_the_start_of_a_64(api):
    net, sub = api.net_with_subnet("fd00:9::/64")
    addr = ipaddress.ip_address(_ips(api.port(net["id"], as_="demo"))[0])
    assert addr in ipaddress.ip_network("fd00:9::/64")
    assert int(addr) - int(ipaddress.ip_address("fd00:9::1")) < 1000


def test_dhcp_ports_get_the_lowest_free_address(api):
    net, sub = api.net_with_subnet("10.0.0.0/24", as_="admin")
    d1 = api.port(net["id"], device_owner="network:dhcp")
    d2 = api.port(net["id"], device_owner="network:dhcp")
    assert (_ips(d1), _ips(d2)) == (["10.0.0.2"], ["10.0.0.3"])
    api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.4"}])
    assert _ips(api.port(net["id"], device_owner="network:distributed")) == ["10.0.0.5"]
    api.ok(api.delete(f"ports/{d1['id']}"), 204)
    assert _ips(api.port(net["id"], device_owner="network:dhcp")) == ["10.0.0.2"]
    assert d1["security_groups"] == [] and d1["device_owner"] == "network:dhcp"


def test_dhcp_lowest_free_across_pools(api):
    net, sub = api.net_with_subnet(
        "10.0.0.0/24",
        as_="admin",
        allocation_pools=[{"start": "10.0.0.50", "end": "10.0.0.50"}, {"start": "10.0.0.10", "end": "10.0.0.11"}],
    )
    got = [_ips(api.port(net["id"], device_owner="network:dhcp"))[0] for _ in range(3)]
    assert got == ["10.0.0.50", "10.0.0.10", "10.0.0.11"]  # pools are taken in order


def test_fixed_ip_by_subnet_and_by_address(api):
    net = api.network(as_="admin")
    s1 = api.subnet(net["id"], "10.0.0.0/24")
    s2 = api.subnet(net["id"], "10.1.0.0/24")
    p = api.port(net["id"], fixed_ips=[{"subnet_id": s2["id"]}])
    assert [f["subnet_id"] for f in p["fixed_ips"]] == [s2["id"]]
    assert ipaddress.ip_address(_ips(p)[0]) in ipaddress.ip_network("10.1.0.0/24")
    p = api.port(net["id"], fixed_ips=[{"ip_address": "10.1.0.77"}])
    assert p["fixed_ips"] == [{"subnet_id": s2["id"], "ip_address": "10.1.0.77"}]
    p = api.port(net["id"], fixed_ips=[{"subnet_id": s1["id"], "ip_address": "10.0.0.77"}, {"subnet_id": s2["id"]}])
    assert p["fixed_ips"][0] == {"subnet_id": s1["id"], "ip_address": "10.0.0.77"}
    assert list(p["fixed_ips"][0]) == ["subnet_id", "ip_address"]
    assert p["fixed_ips"][1]["subnet_id"] == s2["id"]
    # Two addresses from the same subnet.
    p = api.port(net["id"], fixed_ips=[{"subnet_id": s1["id"]}, {"subnet_id": s1["id"]}])
    assert len(set(_ips(p))) == 2


def test_no_fixed_ips_takes_one_v4_from_the_first_subnet_with_room(api):
    net = api.network(as_="admin")
    s1 = api.subnet(net["id"], "10.0.0.0/30")  # a single address: 10.0.0.2
    s2 = api.subnet(net["id"], "10.1.0.0/24")
    # Creation order decides; timestamps have whole seconds, so make it unambiguous.
    with api.db.write() as uow:
        uow.conn.execute(
            tables.subnets.update().where(tables.subnets.c.id == s1["id"]).values(created_at="2000-01-01T00:00:00Z")
        )
    p1 = api.port(net["id"])
    p2 = api.port(net["id"])
    assert (p1["fixed_ips"][0]["subnet_id"], p2["fixed_ips"][0]["subnet_id"]) == (s1["id"], s2["id"])
    assert len(p1["fixed_ips"]) == len(p2["fixed_ips"]) == 1


def test_network_without_subnets_gives_no_addresses(api):
    net = api.network(as_="demo")
    assert api.port(net["id"], as_="demo")["fixed_ips"] == []


def test_address_outside_the_pool_is_allowed(api):
    net, sub = api.net_with_subnet(as_="admin", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.20"}])
    assert _ips(api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.200"}])) == ["10.0.0.200"]
    # ... but never the gateway once taken, nor network/broadcast addresses.
    assert _ips(api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.1"}])) == ["10.0.0.1"]


def test_invalid_fixed_ips(api):
    net = api.network(as_="admin")
    sub = api.subnet(net["id"], "10.0.0.0/24")
    other = api.subnet(api.network()["id"], "10.9.0.0/24")
    api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.159"}])
    before = api.snapshot()
    cases = [
        (
            [{"ip_address": "10.0.0.159"}],
            409,
            "IpAddressAlreadyAllocated",
            f"IP address 10.0.0.159 already allocated in subnet {sub['id']}",
        ),
        (
            [{"subnet_id": sub["id"], "ip_address": "10.0.0.159"}],
            409,
            "IpAddressAlreadyAllocated",
            f"IP address 10.0.0.159 already allocated in subnet {sub['id']}",
        ),
        (
            [{"ip_address": "10.9.0.5"}],
            400,
            "InvalidIpForNetwork",
            "IP address 10.9.0.5 is not a valid IP for any of the subnets on the specified network.",
        ),
        (
            [{"ip_address": "10.0.0.255"}],
            400,
            "InvalidIpForNetwork",
            "IP address 10.0.0.255 is not a valid IP for any of the subnets on the specified network.",
        ),
        (
            [{"subnet_id": sub["id"], "ip_address": "10.0.0.255"}],
            400,
            "InvalidIpForSubnet",
            "IP address 10.0.0.255 is not a valid IP for the specified subnet.",
        ),
        (
            [{"subnet_id": sub["id"], "ip_address": "10.0.0.0"}],
            400,
            "InvalidIpForSubnet",
            "IP address 10.0.0.0 is not a valid IP for the specified subnet.",
        ),
        (
            [{"subnet_id": sub["id"], "ip_address": "10.9.0.5"}],
            400,
            "InvalidIpForSubnet",
            "IP address 10.9.0.5 is not a valid IP for the specified subnet.",
        ),
        (
            [{"subnet_id": other["id"]}],
            400,
            "InvalidInput",
            f"Invalid input for operation: Failed to create port on network {net['id']}, because fixed_ips "
            f"included invalid subnet {other['id']}.",
        ),
        (
            [{"ip_address": "10.0.0.7"}, {"ip_address": "10.0.0.7"}],
            400,
            "HTTPBadRequest",
            "Invalid input for fixed_ips. Reason: Duplicate IP address '10.0.0.7'.",
        ),
        (
            [{"ip_address": "nope"}],
            400,
            "HTTPBadRequest",
            "Invalid input for fixed_ips. Reason: 'nope' is not a valid IP address.",
        ),
        (
            [{"subnet_id": "nope"}],
            400,
            "HTTPBadRequest",
            "Invalid input for fixed_ips. Reason: 'nope' is not a valid UUID.",
        ),
        ([{}], 400, "InvalidInput", "Invalid input for operation: IP allocation requires subnet_id or ip_address."),
    ]
    for fixed, status, type_, msg in cases:
        r = api.post("ports", {"port": {"network_id": net["id"], "fixed_ips": fixed}})
        error(r, status, type_, msg)
        assert api.snapshot() == before, fixed


def test_exhaustion(api):
    net, sub = api.net_with_subnet("10.0.0.0/29", as_="admin")  # pool .2-.6: five addresses
    got = {_ips(api.port(net["id"]))[0] for _ in range(5)}
    assert got == {f"10.0.0.{i}" for i in range(2, 7)}
    before = api.snapshot()
    msg = f"No more IP addresses available on network {net['id']}."
    error(api.post("ports", {"port": {"network_id": net["id"]}}), 409, "IpAddressGenerationFailure", msg)
    error(
        api.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"]}]}}),
        409,
        "IpAddressGenerationFailure",
        msg,
    )
    error(
        api.post("ports", {"port": {"network_id": net["id"], "device_owner": "network:dhcp"}}),
        409,
        "IpAddressGenerationFailure",
        msg,
    )
    assert api.snapshot() == before
    # An explicit address outside the pool still works.
    assert _ips(api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.1"}])) == ["10.0.0.1"]


def test_released_addresses_are_reusable(api):
    net, sub = api.net_with_subnet("10.0.0.0/30", as_="admin")  # one address
    p = api.port(net["id"])
    error(api.post("ports", {"port": {"network_id": net["id"]}}), 409, "IpAddressGenerationFailure")
    api.ok(api.delete(f"ports/{p['id']}"), 204)
    assert _ips(api.port(net["id"])) == ["10.0.0.2"]


# --- IPv6 ---------------------------------------------------------------------------------------------
def _eui64(prefix: str, mac: str) -> str:
    b = bytes(int(x, 16) for x in mac.split(":"))
    iid = bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.ip_network(prefix)[int.from_bytes(iid, "big")])


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_slaac_address_is_eui64(api, mode):
    net = api.network(as_="admin")
    v4 = api.subnet(net["id"], "10.0.0.0/24")
    v6 = api.subnet(net["id"], "2001:db8:1::/64", ipv6_ra_mode=mode, ipv6_address_mode=mode)
    mac = "fa:16:3e:12:34:56"
    port = api.port(net["id"], mac_address=mac)
    assert _eui64("2001:db8:1::/64", mac) == "2001:db8:1:0:f816:3eff:fe12:3456"
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    assert by_subnet[v6["id"]] == "2001:db8:1:0:f816:3eff:fe12:3456"
    assert v4["id"] in by_subnet
    # Random MACs too.
    p2 = api.port(net["id"])
    assert {f["subnet_id"]: f["ip_address"] for f in p2["fixed_ips"]}[v6["id"]] == _eui64(
        "2001:db8:1::/64", p2["mac_address"]
    )


def test_slaac_address_on_every_auto_subnet(api):
    net = api.network(as_="admin")
    a = api.subnet(net["id"], "2001:db8:1::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    b = api.subnet(net["id"], "2001:db8:2::/64", ipv6_address_mode="slaac")
    port = api.port(net["id"], mac_address="fa:16:3e:00:00:01")
    assert {f["subnet_id"] for f in port["fixed_ips"]} == {a["id"], b["id"]}
    assert sorted(_ips(port)) == ["2001:db8:1:0:f816:3eff:fe00:1", "2001:db8:2:0:f816:3eff:fe00:1"]


def test_slaac_with_explicit_subnet_and_router_ports(api):
    net = api.network(as_="admin")
    v6 = api.subnet(net["id"], "2001:db8:1::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    p = api.port(net["id"], mac_address="fa:16:3e:aa:bb:cc", fixed_ips=[{"subnet_id": v6["id"]}])
    assert _ips(p) == ["2001:db8:1:0:f816:3eff:feaa:bbcc"]
    rp = api.port(net["id"], device_owner="network:router_interface")
    assert rp["fixed_ips"] == []  # no auto address for router ports


def test_dhcpv6_stateful_uses_ipam(api):
    net = api.network(as_="admin")
    v6 = api.subnet(net["id"], "2001:db8:5::/64", ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful")
    port = api.port(net["id"], mac_address="fa:16:3e:12:34:56")
    (addr,) = _ips(port)
    assert addr != _eui64("2001:db8:5::/64", "fa:16:3e:12:34:56")
    assert ipaddress.ip_address(addr) in ipaddress.ip_network("2001:db8:5::/64")
    d = api.port(net["id"], device_owner="network:dhcp")
    assert _ips(d) == ["2001:db8:5::1"]
    assert v6["gateway_ip"] == "2001:db8:5::"


@pytest.mark.parametrize(
    "ra,addr,cidr,dhcp,msg",
    [
        (
            "slaac",
            "slaac",
            "2001:dbb::/80",
            True,
            "Invalid CIDR 2001:dbb::/80 for IPv6 address mode. OpenStack uses the "
            "EUI-64 address format, which requires the prefix to be /64",
        ),
        (
            "dhcpv6-stateless",
            None,
            "2001:dbb::/80",
            True,
            "Invalid CIDR 2001:dbb::/80 for IPv6 address mode. OpenStack "
            "uses the EUI-64 address format, which requires the prefix "
            "to be /64",
        ),
        (
            "slaac",
            "dhcpv6-stateful",
            "2001:dbb::/64",
            True,
            "ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateful' is not valid. "
            "If both attributes are set, they must be the same value",
        ),
        (
            "slaac",
            "slaac",
            "2001:dbb::/64",
            False,
            "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False",
        ),
        (
            None,
            "dhcpv6-stateful",
            "2001:dbb::/64",
            False,
            "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False",
        ),
        ("slaac", None, "10.0.0.0/24", True, "ipv6_ra_mode is not valid when ip_version is 4"),
        (None, "slaac", "10.0.0.0/24", True, "ipv6_address_mode is not valid when ip_version is 4"),
    ],
)
def test_ipv6_mode_validation(api, ra, addr, cidr, dhcp, msg):
    net = api.network(as_="demo")
    body = {"network_id": net["id"], "ip_version": 6 if ":" in cidr else 4, "cidr": cidr, "enable_dhcp": dhcp}
    if ra:
        body["ipv6_ra_mode"] = ra
    if addr:
        body["ipv6_address_mode"] = addr
    before = api.snapshot()
    error(
        api.post("subnets", {"subnet": body}, as_="demo"), 400, "InvalidInput", f"Invalid input for operation: {msg}."
    )
    assert api.snapshot() == before


@pytest.mark.parametrize(
    "ra,addr,cidr",
    [
        ("slaac", None, "2001:dbb::/64"),
        (None, "slaac", "2001:dbb::/64"),
        ("dhcpv6-stateful", None, "2001:dbb::/80"),
        (None, "dhcpv6-stateful", "2001:dbb::/80"),
        ("dhcpv6-stateless", "dhcpv6-stateless", "2001:dbb::/64"),
    ],
)
def test_ipv6_modes_accepted(api, ra, addr, cidr):
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], cidr, as_="demo", ipv6_ra_mode=ra, ipv6_address_mode=addr)
    assert (sub["ipv6_ra_mode"], sub["ipv6_address_mode"]) == (ra, addr)


def test_bad_ipv6_mode_value(api):
    net = api.network(as_="demo")
    r = api.post(
        "subnets",
        {"subnet": {"network_id": net["id"], "ip_version": 6, "cidr": "2001:dbb::/64", "ipv6_ra_mode": "auto"}},
        as_="demo",
    )
    error(r, 400, "HTTPBadRequest", contains="Invalid input for ipv6_ra_mode. Reason: 'auto' is not in")


# --- fixed_ips updates (§7.3) -------------------------------------------------------------------------
def test_fixed_ips_update_semantics(api):
    net = api.network(as_="admin")
    s1 = api.subnet(net["id"], "10.0.0.0/24")
    s2 = api.subnet(net["id"], "10.1.0.0/24")
    port = api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.10"}])

    def put(fixed):
        return api.ok(api.put(f"ports/{port['id']}", {"port": {"fixed_ips": fixed}}))["port"]

    # Keep the existing address and add one from another subnet.
    p = put([{"ip_address": "10.0.0.10"}, {"subnet_id": s2["id"]}])
    assert p["fixed_ips"][0] == {"subnet_id": s1["id"], "ip_address": "10.0.0.10"}
    assert p["fixed_ips"][1]["subnet_id"] == s2["id"]
    s2_ip = p["fixed_ips"][1]["ip_address"]
    # The full list is the desired set: 10.0.0.10 is released.
    p = put([{"subnet_id": s2["id"], "ip_address": s2_ip}, {"ip_address": "10.0.0.11"}])
    assert p["fixed_ips"] == [
        {"subnet_id": s2["id"], "ip_address": s2_ip},
        {"subnet_id": s1["id"], "ip_address": "10.0.0.11"},
    ]
    assert _ips(api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.10"}])) == ["10.0.0.10"]
    # An address taken by another port: nothing changes.
    before = api.snapshot()
    error(
        api.put(f"ports/{port['id']}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.10"}]}}),
        409,
        "IpAddressAlreadyAllocated",
        f"IP address 10.0.0.10 already allocated in subnet {s1['id']}",
    )
    error(
        api.put(f"ports/{port['id']}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.255"}]}}),
        400,
        "InvalidIpForNetwork",
    )
    assert api.snapshot() == before
    # An empty list removes every address.
    p = put([])
    assert p["fixed_ips"] == []
    assert p["revision_number"] > port["revision_number"]


def test_fixed_ips_update_keeps_slaac_addresses(api):
    net = api.network(as_="admin")
    v4 = api.subnet(net["id"], "10.0.0.0/24")
    v6 = api.subnet(net["id"], "2001:db8:1::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = api.port(net["id"], mac_address="fa:16:3e:00:00:02")
    upd = api.ok(api.put(f"ports/{port['id']}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.42"}]}}))["port"]
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in upd["fixed_ips"]}
    assert by_subnet == {v4["id"]: "10.0.0.42", v6["id"]: "2001:db8:1:0:f816:3eff:fe00:2"}


def test_member_fixed_ip_update_needs_network_ownership(api):
    net = api.network(shared=True)
    api.subnet(net["id"], "10.0.0.0/24")
    port = api.port(net["id"], as_="demo")
    before = api.snapshot()
    error(
        api.put(f"ports/{port['id']}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.99"}]}}, as_="demo"),
        403,
        "PolicyNotAuthorized",
        "(rule:update_port and (rule:update_port:fixed_ips and "
        "(rule:update_port:fixed_ips:ip_address))) is disallowed by policy",
    )
    assert api.snapshot() == before
