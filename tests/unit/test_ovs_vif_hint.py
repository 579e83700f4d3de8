"""The local VLAN hint a plugger reads from the ports the OVS agent has wired (pure part)."""

from __future__ import annotations

from neutrino.agents.ovs.vif_hint import find_args, hint_from_rows

NET = "6a3c1b9e-5f0d-4d7e-9a51-2f4b8c0d1e23"
WIRED = {"net_uuid": NET, "network_type": "vxlan", "physical_network": "None", "segmentation_id": "1001", "tag": "7"}


def test_a_wired_sibling_gives_its_tag_and_other_config() -> None:
    rows = [{"name": "tapb", "tag": 7, "other_config": dict(WIRED)}]
    assert hint_from_rows(rows, NET) == (7, WIRED)


def test_ports_that_do_not_carry_what_they_record_are_no_hint() -> None:
    rows = [
        {"name": "tapa", "tag": [], "other_config": dict(WIRED)},  # tag cleared
        {"name": "tapb", "tag": 4095, "other_config": {**WIRED, "tag": "4095"}},  # dead
        {"name": "tapc", "tag": 9, "other_config": dict(WIRED)},  # tag != recorded
        {"name": "tapd", "tag": 7, "other_config": {**WIRED, "net_uuid": "other"}},
    ]
    assert hint_from_rows(rows, NET) is None
    assert hint_from_rows([*rows, {"name": "tape", "tag": 7, "other_config": dict(WIRED)}], NET) == (7, WIRED)


def test_the_first_port_by_name_wins() -> None:
    rows = [
        {"name": "tapz", "tag": 8, "other_config": {**WIRED, "tag": "8"}},
        {"name": "tapa", "tag": 7, "other_config": dict(WIRED)},
    ]
    assert hint_from_rows(rows, NET) == (7, WIRED)


def test_the_query_is_an_exact_other_config_match() -> None:
    assert find_args(NET)[-2:] == ["Port", f'other_config:net_uuid="{NET}"']
