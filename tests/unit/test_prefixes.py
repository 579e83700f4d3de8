"""Pure subnet-pool prefix arithmetic (neutrino.ipam.prefixes)."""

from __future__ import annotations

import ipaddress

import pytest

from neutrino.ipam import prefixes as px


def test_compact_merges_overlapping_and_adjacent():
    assert px.compact(["10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/26", "10.0.1.0/24"]) == ["10.0.0.0/23"]
    assert px.compact(["192.168.0.5/24", "10.0.0.0/8"]) == ["10.0.0.0/8", "192.168.0.0/24"]
    assert px.compact(["2001:db8::/49", "2001:db8:0:8000::/49"]) == ["2001:db8::/48"]
    assert px.compact([]) == []


def test_covers_and_overlaps():
    assert px.covers(["10.0.0.0/24", "10.0.1.0/24"], ["10.0.0.0/23"])  # covered by two adjacent prefixes
    assert not px.covers(["10.0.0.0/24"], ["10.0.0.0/23"])
    assert px.covers(["10.0.0.0/8"], ["10.1.0.0/16", "10.2.3.0/24"])
    assert px.overlaps(["10.0.0.0/8"], ["10.200.0.0/24"])
    assert not px.overlaps(["10.0.0.0/8"], ["11.0.0.0/8", "2001:db8::/32"])


def test_first_free_is_best_fit_then_lowest_address():
    assert px.first_free(["10.0.0.0/16"], [], 24) == "10.0.0.0/24"
    assert px.first_free(["10.0.0.0/16"], ["10.0.0.0/24"], 24) == "10.0.1.0/24"
    # 10.0.3.0/24 is the smallest free range holding a /24: taken before the /23 and larger ranges.
    used = ["10.0.0.0/23", "10.0.2.0/24", "10.0.4.0/22"]
    assert px.first_free(["10.0.0.0/16"], used, 24) == "10.0.3.0/24"
    # A /26 goes into the smallest hole, keeping the large range whole.
    assert px.first_free(["10.0.0.0/24", "10.1.0.0/16"], ["10.0.0.0/25"], 26) == "10.0.0.128/26"
    assert px.first_free(["10.0.0.0/24"], ["10.0.0.0/25", "10.0.0.128/25"], 26) is None
    assert px.first_free(["10.0.0.0/24"], [], 23) is None
    assert px.first_free(["2001:db8::/48"], ["2001:db8::/64"], 64) == "2001:db8:0:1::/64"


def test_first_free_never_overlaps_what_is_used():
    prefixes = ["10.0.0.0/22", "10.9.0.0/24"]
    used: list[str] = []
    for length in (26, 24, 28, 25, 24, 27, 26, 24, 28):
        got = px.first_free(prefixes, used, length)
        if got is None:
            break
        net = ipaddress.ip_network(got)
        assert net.prefixlen == length and px.covers(prefixes, [got])
        assert not px.overlaps(used, [got])
        used.append(got)
    assert len(used) >= 6


def test_specific_fits():
    assert px.specific_fits(["10.0.0.0/16"], ["10.0.1.0/24"], "10.0.2.0/24")
    assert not px.specific_fits(["10.0.0.0/16"], ["10.0.1.0/24"], "10.0.1.128/25")
    assert not px.specific_fits(["10.0.0.0/16"], ["10.0.1.0/24"], "10.0.0.0/23")
    assert not px.specific_fits(["10.0.0.0/16"], [], "10.1.0.0/24")
    assert px.specific_fits(["10.0.0.0/24", "10.0.1.0/24"], [], "10.0.0.0/23")


def test_quota_units():
    assert px.quota_units("10.0.0.0/24") == 256
    assert px.quota_units("10.0.0.5/32") == 1
    assert px.quota_units("2001:db8::/64") == 1
    assert px.quota_units("2001:db8::/56") == 256
    assert px.quota_units("2001:db8::/80") == 1


@pytest.mark.parametrize(
    ("bounds", "problem"),
    [
        ((8, 8, 32), None),
        ((28, 28, 24), ("min_prefixlen", 28, "max_prefixlen", 24)),
        ((8, 8, 33), ("max_prefixlen", 33, "ip_version_max", 32)),
        ((16, 12, 24), ("default_prefixlen", 12, "min_prefixlen", 16)),
        ((16, 26, 24), ("default_prefixlen", 26, "max_prefixlen", 24)),
    ],
)
def test_bounds(bounds, problem):
    assert px.Bounds(*bounds).problem(4) == problem
