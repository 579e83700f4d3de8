"""Cross-option checks (``neutrino.config_checks.validate``): each problem is found, with the
message ``neutrino check-config`` and ``neutrino up`` print."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino import config
from neutrino.config_checks import validate


def _cfg(tmp_path: Path, **values: str) -> config.Config:
    """Defaults of the all-in-one with ``SECTION__option=value`` overrides."""
    overrides = dict(config.ALL_IN_ONE)
    for key, val in values.items():
        sec, _, name = key.partition("__")
        overrides[(sec, name)] = val
    return config.defaults(tmp_path).with_overrides(overrides)


def test_the_all_in_one_defaults_pass(tmp_path: Path) -> None:
    assert validate(_cfg(tmp_path)) == []


@pytest.mark.parametrize(
    "values, message",
    [
        ({"DEFAULT__bind_port": "70000"}, "[DEFAULT] bind_port = 70000 is not a TCP port"),
        ({"identity__bind_host": "localhost"}, "[identity] bind_host = 'localhost' is not an IP address"),
        ({"identity__bind_port": "9696"}, "[DEFAULT] bind_port and [identity] bind_port are both 9696"),
        ({"metadata__http_tokens": "maybe"}, "[metadata] http_tokens = 'maybe': choose optional or required"),
        ({"ovs__datapath_type": "dpdk"}, "[ovs] datapath_type = 'dpdk': choose system, netdev or auto"),
        ({"DEFAULT__api_workers": "0"}, "[DEFAULT] api_workers = 0: must be at least 1"),
        ({"DEFAULT__global_physnet_mtu": "60"}, "[DEFAULT] global_physnet_mtu = 60 is too small"),
        ({"DEFAULT__agent_down_time": "0"}, "[DEFAULT] agent_down_time must be positive"),
        ({"DEFAULT__roles": ""}, "[DEFAULT] roles: (empty): choose from all, controller, network, compute"),
        (
            {"ml2__type_drivers": "vxlan,gre"},
            "[ml2] type_drivers: unknown gre (known: local, flat, vlan, vxlan, geneve)",
        ),
        (
            {"ml2__tenant_network_types": "geneve", "ml2__type_drivers": "vxlan"},
            "[ml2] tenant_network_types: geneve not in type_drivers",
        ),
        ({"ml2__overlay_ip_version": "5"}, "[ml2] overlay_ip_version = 5: must be 4 or 6"),
        (
            {"ml2__external_network_type": "vlan", "ml2__type_drivers": "flat,vxlan"},
            "[ml2] external_network_type = vlan not in type_drivers",
        ),
        ({"ml2_type_vxlan__vni_ranges": "5:1"}, "[ml2_type_vxlan] vni_ranges: '5:1' is not a range within 1:16777215"),
        ({"ml2_type_geneve__vni_ranges": "x"}, "[ml2_type_geneve] vni_ranges: 'x' is not min:max"),
        ({"ml2_type_vlan__network_vlan_ranges": ":1:2"}, "[ml2_type_vlan] network_vlan_ranges: ':1:2' has no physnet"),
        (
            {"ml2_type_vlan__network_vlan_ranges": "physnet:0:5000"},
            "[ml2_type_vlan] network_vlan_ranges: physnet: '0:5000' is not a range within 1:4094",
        ),
        ({"token__expiration": "0"}, "[token] expiration must be positive"),
        (
            {"database__connection": "mysql://x"},
            "[database] connection = 'mysql://x': only sqlite:/// and postgresql:// URLs",
        ),
        ({"feed__retention": "0"}, "[feed] retention must be positive"),
    ],
)
def test_each_problem_has_its_message(tmp_path: Path, values: dict[str, str], message: str) -> None:
    assert validate(_cfg(tmp_path, **values)) == [message]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    errs = validate(_cfg(tmp_path, token__expiration="0", feed__retention="0", DEFAULT__api_workers="0"))
    assert errs == [
        "[DEFAULT] api_workers = 0: must be at least 1",
        "[token] expiration must be positive",
        "[feed] retention must be positive",
    ]
