"""``dhcp_options.stored`` / ``merged``: how a port keeps its extra DHCP options (Neutron's semantics)."""

from __future__ import annotations

from neutrino.services.dhcp_options import merged, stored


def _o(name, value, version=4):
    return {"opt_name": name, "opt_value": value, "ip_version": version}


def test_stored_fills_ip_version_and_drops_entries_without_a_value() -> None:
    given = [
        {"opt_name": "a", "opt_value": "1"},
        {"opt_name": "b", "opt_value": None},
        {"opt_name": "c", "opt_value": "3", "ip_version": 6},
        {"opt_name": "d", "opt_value": "", "ip_version": 4},
    ]
    assert stored(given) == [_o("a", "1"), _o("c", "3", 6), _o("d", "")]


def test_merged_updates_in_place_adds_at_the_end_removes_on_null() -> None:
    current = [_o("a", "1"), _o("b", "2"), _o("a", "6", 6)]
    given = [
        {"opt_name": "b", "opt_value": "20"},
        {"opt_name": "c", "opt_value": "3"},
        {"opt_name": "a", "opt_value": None},
        {"opt_name": "x", "opt_value": None, "ip_version": 6},
    ]
    assert merged(current, given) == [_o("b", "20"), _o("a", "6", 6), _o("c", "3")]
    assert current == [_o("a", "1"), _o("b", "2"), _o("a", "6", 6)]  # inputs untouched


def test_merged_matches_exact_names_and_treats_a_missing_ip_version_as_4() -> None:
    current = [{"opt_name": "mtu", "opt_value": "1400"}]  # a row written before ip_version was kept
    assert merged(current, [{"opt_name": "mtu", "opt_value": "9000"}]) == [_o("mtu", "9000")]
    assert merged(current, [{"opt_name": "MTU", "opt_value": "9000"}]) == [_o("mtu", "1400"), _o("MTU", "9000")]
    assert merged(current, [{"opt_name": "mtu", "opt_value": None, "ip_version": 6}]) == [_o("mtu", "1400")]
    assert merged(current, []) == [_o("mtu", "1400")]
