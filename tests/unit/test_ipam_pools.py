"""Pure IPAM arithmetic (neutrino.ipam.pools): defaults, validation, choice, EUI-64."""

from __future__ import annotations

import ipaddress
import random

import pytest

from neutrino import errors
from neutrino.ipam import pools as ipam

N = ipaddress.ip_network


def _ints(*addrs):
    return {int(ipaddress.ip_address(a)) for a in addrs}


@pytest.mark.parametrize(
    "cidr,bounds",
    [
        ("10.0.0.0/24", ("10.0.0.1", "10.0.0.254")),
        ("10.0.0.0/30", ("10.0.0.1", "10.0.0.2")),
        ("10.0.0.0/31", ("10.0.0.0", "10.0.0.1")),
        ("10.0.0.7/32", ("10.0.0.7", "10.0.0.7")),
        ("2001:db8::/64", ("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")),
        ("2001:db8::/127", ("2001:db8::1", "2001:db8::1")),
    ],
)
def test_usable_bounds(cidr, bounds):
    lo, hi = ipam.usable_bounds(N(cidr))
    assert (str(ipaddress.ip_address(lo)), str(ipaddress.ip_address(hi))) == bounds


@pytest.mark.parametrize(
    "cidr,gw",
    [
        ("10.0.0.0/24", "10.0.0.1"),
        ("192.168.5.0/29", "192.168.5.1"),
        ("2001:db8::/64", "2001:db8::"),
        ("2001:db8:1::/48", "2001:db8:1::"),
    ],
)
def test_default_gateway(cidr, gw):
    assert ipam.default_gateway(N(cidr)) == gw


@pytest.mark.parametrize(
    "cidr,gw,pools",
    [
        ("10.0.0.0/24", "10.0.0.1", [("10.0.0.2", "10.0.0.254")]),
        ("10.0.0.0/24", None, [("10.0.0.1", "10.0.0.254")]),
        ("10.0.0.0/24", "10.0.0.254", [("10.0.0.1", "10.0.0.253")]),
        ("10.0.0.0/24", "10.0.0.128", [("10.0.0.1", "10.0.0.127"), ("10.0.0.129", "10.0.0.254")]),
        ("10.0.0.0/24", "10.1.0.1", [("10.0.0.1", "10.0.0.254")]),  # gateway outside the CIDR
        ("10.0.0.0/24", "10.0.0.0", [("10.0.0.1", "10.0.0.254")]),
        ("10.0.0.0/29", "10.0.0.6", [("10.0.0.1", "10.0.0.5")]),
        ("10.0.0.0/30", "10.0.0.1", [("10.0.0.2", "10.0.0.2")]),
        ("10.0.0.0/30", "10.0.0.2", [("10.0.0.1", "10.0.0.1")]),
        ("2001:db8::/64", "2001:db8::", [("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")]),
        ("2001:db8::/64", "2001:db8::1", [("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]),
    ],
)
def test_default_pools(cidr, gw, pools):
    assert ipam.default_pools(N(cidr), gw) == [{"start": a, "end": b} for a, b in pools]


def test_validate_pools_ok_and_canonical():
    got = ipam.validate_pools(N("2001:db8::/64"), [{"start": "2001:DB8::0010", "end": "2001:db8::20"}], None)
    assert got == [{"start": "2001:db8::10", "end": "2001:db8::20"}]
    got = ipam.validate_pools(
        N("10.0.0.0/24"),
        [{"start": "10.0.0.2", "end": "10.0.0.2"}, {"start": "10.0.0.3", "end": "10.0.0.254"}],
        "10.0.0.1",
    )
    assert len(got) == 2


@pytest.mark.parametrize(
    "pools,gw,exc,msg",
    [
        (
            [{"start": "10.1.0.20", "end": "10.1.0.10"}],
            None,
            errors.InvalidAllocationPool,
            "The allocation pool {'start': '10.1.0.20', 'end': '10.1.0.10'} is not valid.",
        ),
        ([{"start": "x", "end": "10.1.0.10"}], None, errors.InvalidAllocationPool, None),
        ([{"start": "10.1.0.1"}], None, errors.InvalidAllocationPool, None),
        (
            [{"start": "fd00::1", "end": "fd00::2"}],
            None,
            errors.InvalidAllocationPool,
            "The allocation pool fd00::1-fd00::2 is not valid.",
        ),
        (
            [{"start": "10.1.0.0", "end": "10.1.0.5"}],
            None,
            errors.OutOfBoundsAllocationPool,
            "The allocation pool 10.1.0.0-10.1.0.5 spans beyond the subnet cidr 10.1.0.0/24.",
        ),
        ([{"start": "10.1.0.250", "end": "10.1.0.255"}], None, errors.OutOfBoundsAllocationPool, None),
        (
            [{"start": "10.1.0.2", "end": "10.1.0.20"}, {"start": "10.1.0.20", "end": "10.1.0.30"}],
            None,
            errors.OverlappingAllocationPools,
            "Found overlapping allocation pools: 10.1.0.2-10.1.0.20 10.1.0.20-10.1.0.30 for subnet 10.1.0.0/24.",
        ),
        (
            [{"start": "10.1.0.2", "end": "10.1.0.20"}],
            "10.1.0.2",
            errors.GatewayConflictWithAllocationPools,
            "Gateway ip 10.1.0.2 conflicts with allocation pool 10.1.0.2-10.1.0.20.",
        ),
    ],
)
def test_validate_pools_errors(pools, gw, exc, msg):
    with pytest.raises(exc) as ei:
        ipam.validate_pools(N("10.1.0.0/24"), pools, gw)
    if msg is not None:
        assert ei.value.msg == msg


def test_lowest_free():
    ranges = ipam.pool_ranges([{"start": "10.0.0.10", "end": "10.0.0.12"}, {"start": "10.0.0.2", "end": "10.0.0.3"}])
    assert ipam.lowest_free(ranges, set()) == int(ipaddress.ip_address("10.0.0.10"))
    assert ipam.lowest_free(ranges, _ints("10.0.0.10", "10.0.0.11")) == int(ipaddress.ip_address("10.0.0.12"))
    assert ipam.lowest_free(ranges, _ints("10.0.0.10", "10.0.0.11", "10.0.0.12")) == int(
        ipaddress.ip_address("10.0.0.2")
    )
    assert ipam.lowest_free(ranges, _ints("10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.2", "10.0.0.3")) is None


def test_random_free_window():
    rng = random.Random(1)
    ranges = [(0, 9999)]
    picks = {ipam.random_free(ranges, set(), rng) for _ in range(300)}
    assert max(picks) < ipam.RANDOM_WINDOW == 1000 and len(picks) > 100
    used = set(range(500))
    picks = {ipam.random_free(ranges, used, rng) for _ in range(300)}
    assert min(picks) >= 500 and max(picks) < 1500
    # The first pool with room wins.
    assert ipam.random_free([(0, 1), (10, 20)], {0, 1}, rng) in range(10, 21)
    assert ipam.random_free([(0, 1)], {0, 1}, rng) is None


def test_probe_free_stays_in_the_window():
    rng = random.Random(2)
    ranges = [(100, 10**6)]
    picks = {ipam.probe_free(ranges, lambda x: False, rng) for _ in range(200)}
    assert min(picks) >= 100 and max(picks) < 100 + ipam.RANDOM_WINDOW
    assert ipam.probe_free(ranges, lambda x: True, rng) is None
    picks = {ipam.probe_free([(0, 3), (10, 10**6)], lambda x: False, rng, window=None) for _ in range(50)}
    assert max(picks) > 10000


@pytest.mark.parametrize(
    "prefix,mac,addr",
    [
        ("2001:db8:1::/64", "fa:16:3e:12:34:56", "2001:db8:1:0:f816:3eff:fe12:3456"),
        ("2001:db8::/64", "00:00:00:00:00:01", "2001:db8::200:ff:fe00:1"),
        ("fd00:aa:bb:cc::/64", "02:ab:cd:ef:01:23", "fd00:aa:bb:cc:ab:cdff:feef:123"),
    ],
)
def test_eui64(prefix, mac, addr):
    assert ipam.eui64(N(prefix), mac) == addr


@pytest.mark.parametrize(
    "cidr,addr,ok",
    [
        ("10.0.0.0/24", "10.0.0.1", True),
        ("10.0.0.0/24", "10.0.0.0", False),
        ("10.0.0.0/24", "10.0.0.255", False),
        ("10.0.0.0/24", "10.0.1.1", False),
        ("2001:db8::/64", "2001:db8::1", True),
        ("2001:db8::/64", "2001:db8::", False),
        ("2001:db8::/64", "2001:db9::1", False),
    ],
)
def test_valid_host_address(cidr, addr, ok):
    assert ipam.valid_host_address(N(cidr), addr) is ok


def test_in_subnet():
    assert ipam.in_subnet(N("10.0.0.0/24"), "10.0.0.9")
    assert not ipam.in_subnet(N("10.0.0.0/24"), "nonsense")
    assert not ipam.in_subnet(N("10.0.0.0/24"), "fd00::1")


def test_pool_size_and_format():
    ranges = ipam.pool_ranges([{"start": "10.0.0.2", "end": "10.0.0.254"}, {"start": "10.0.1.1", "end": "10.0.1.1"}])
    assert ipam.pool_size(ranges) == 254
    assert ipam.to_pool(ranges[1], 4) == {"start": "10.0.1.1", "end": "10.0.1.1"}
