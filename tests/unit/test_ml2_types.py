"""ML2 type drivers and type manager: range parsing, provider validation, id choice, MTU."""

from __future__ import annotations

import random

import pytest

from neutrino import config, errors
from neutrino.ml2 import binding
from neutrino.ml2.manager import TypeManager
from neutrino.ml2.types import (
    MAX_VLAN,
    MAX_VNI,
    FlatTypeDriver,
    LocalTypeDriver,
    Segment,
    TunnelTypeDriver,
    VlanTypeDriver,
    parse_ranges,
    parse_vlan_ranges,
    pick_free,
)


# --- range parsing -----------------------------------------------------------------------------------
def test_parse_ranges():
    assert parse_ranges(("1:1000", "2000:2000"), 1, MAX_VNI, "VNI") == [(1, 1000), (2000, 2000)]
    assert parse_ranges((), 1, MAX_VNI, "VNI") == []


@pytest.mark.parametrize("entry", ["0:10", "10:5", "1", "a:b", "1:16777216", ":5"])
def test_parse_ranges_invalid(entry):
    with pytest.raises(ValueError):
        parse_ranges((entry,), 1, MAX_VNI, "VNI")


def test_parse_vlan_ranges():
    got = parse_vlan_ranges(("physnet:100:200", "physnet:300:300", "ext", "other:1:2"))
    assert got == {"physnet": [(100, 200), (300, 300)], "ext": [(1, MAX_VLAN)], "other": [(1, 2)]}


@pytest.mark.parametrize("entry", ["physnet:0:10", "physnet:1:4095", "physnet:10", ":1:2", "p:a:b", "p:5:1"])
def test_parse_vlan_ranges_invalid(entry):
    with pytest.raises(ValueError):
        parse_vlan_ranges((entry,))


# --- id choice ---------------------------------------------------------------------------------------
def test_pick_free_is_random_and_avoids_taken():
    rng = random.Random(4)
    picks = [pick_free([(1, 1000)], set(), rng) for _ in range(50)]
    assert all(1 <= p <= 1000 for p in picks) and len(set(picks)) > 40
    assert pick_free([(1, 3)], {1, 3}, rng) == 2
    assert pick_free([(1, 3)], {1, 2, 3}, rng) is None
    assert pick_free([(1, 3)], {1, 2, 3, 50}, rng) is None  # ids outside the range do not count
    assert pick_free([], set(), rng) is None
    assert pick_free([(5, 5), (9, 9)], {5}, rng) == 9


def test_pick_free_large_range():
    rng = random.Random(5)
    taken = {1, 2, 3}
    picks = {pick_free([(1, MAX_VNI)], taken, rng) for _ in range(20)}
    assert not picks & taken and len(picks) == 20


# --- provider validation -------------------------------------------------------------------------------
def _invalid(driver, seg, msg):
    with pytest.raises(errors.InvalidInput) as ei:
        driver.validate_provider_segment(seg)
    assert ei.value.msg == f"Invalid input for operation: {msg}."


def test_flat_validation():
    d = FlatTypeDriver(("physnet",), 1500, {})
    assert d.validate_provider_segment(Segment("flat", "physnet")) == Segment("flat", "physnet")
    _invalid(d, Segment("flat"), "physical_network required for flat provider network")
    _invalid(d, Segment("flat", "x"), "physical_network 'x' unknown for flat provider network")
    _invalid(d, Segment("flat", "physnet", 3), "segmentation_id prohibited for flat provider network")
    _invalid(FlatTypeDriver((), 1500, {}), Segment("flat", "physnet"), "Flat provider networks are disabled")
    assert FlatTypeDriver(("*",), 1500, {}).validate_provider_segment(Segment("flat", "any")).physical_network == "any"
    assert d.allocate_tenant_segment(None, "n", random.Random()) is None


def test_vlan_validation():
    d = VlanTypeDriver({"physnet": [(100, 200)]}, 1500, {})
    assert d.validate_provider_segment(Segment("vlan", "physnet", 3000)).segmentation_id == 3000
    assert d.validate_provider_segment(Segment("vlan")) == Segment("vlan")
    _invalid(d, Segment("vlan", "x", 5), "physical_network 'x' unknown for VLAN provider network")
    _invalid(d, Segment("vlan", None, 5), "segmentation_id requires physical_network for VLAN provider network")
    for bad in (0, 4095):
        _invalid(d, Segment("vlan", "physnet", bad), "segmentation_id out of range (1 through 4094)")


def test_tunnel_and_local_validation():
    vx = TunnelTypeDriver("vxlan", [(1, 10)], 30, 1500, 0, 4)
    assert vx.validate_provider_segment(Segment("vxlan", None, 0)).segmentation_id == 0
    assert vx.validate_provider_segment(Segment("vxlan", None, 2**24 - 1)).segmentation_id == 2**24 - 1
    for bad in (-1, 2**24):  # a VNI has 24 bits (issue 13: -1 was accepted)
        _invalid(vx, Segment("vxlan", None, bad), "segmentation_id out of range (0 through 16777215)")
    _invalid(vx, Segment("vxlan", "physnet", 1), "provider:physical_network specified for vxlan network")
    loc = LocalTypeDriver()
    assert loc.validate_provider_segment(Segment("local")) == Segment("local")
    _invalid(loc, Segment("local", "p"), "physical_network prohibited for local provider network")
    _invalid(loc, Segment("local", None, 1), "segmentation_id prohibited for local provider network")
    assert loc.allocate_tenant_segment(None, "n", random.Random()) == Segment("local")


# --- MTU (§8.4) -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "driver,physnet,mtu",
    [
        (FlatTypeDriver(("*",), 1500, {}), "p", 1500),
        (FlatTypeDriver(("*",), 1500, {"p": 1400}), "p", 1400),
        (FlatTypeDriver(("*",), 1500, {"p": 9000}), "p", 1500),
        (FlatTypeDriver(("*",), 0, {"p": 9000}), "p", 9000),
        (FlatTypeDriver(("*",), 0, {}), "p", 0),
        (VlanTypeDriver({"p": []}, 9000, {"q": 1400}), "p", 9000),
        (TunnelTypeDriver("vxlan", [], 30, 1500, 0, 4), None, 1450),
        (TunnelTypeDriver("vxlan", [], 30, 1500, 0, 6), None, 1430),
        (TunnelTypeDriver("gre", [], 22, 1500, 0, 4), None, 1458),
        (TunnelTypeDriver("gre", [], 22, 1500, 0, 6), None, 1438),
        (TunnelTypeDriver("geneve", [], 30, 1500, 0, 4), None, 1450),
        (TunnelTypeDriver("geneve", [], 38, 1500, 0, 4), None, 1442),
        (TunnelTypeDriver("vxlan", [], 30, 9000, 1500, 4), None, 1450),
        (TunnelTypeDriver("vxlan", [], 30, 1500, 9000, 4), None, 1450),
        (TunnelTypeDriver("vxlan", [], 30, 0, 0, 4), None, 0),
        (LocalTypeDriver(), None, 0),
    ],
)
def test_driver_mtu(driver, physnet, mtu):
    assert driver.get_mtu(physnet) == mtu


def _manager(over=None):
    overrides = dict(config.ALL_IN_ONE)
    overrides.update(over or {})
    return TypeManager(config.defaults("/tmp").with_overrides(overrides), random.Random(0))


def test_manager_network_mtu():
    m = _manager()
    assert m.network_mtu([Segment("vxlan", None, 5)]) == 1450
    assert m.network_mtu([Segment("flat", "physnet"), Segment("vxlan", None, 5)]) == 1450
    assert m.network_mtu([Segment("local")]) == 1500  # no opinion: global_physnet_mtu
    assert m.network_mtu([]) == 1500


def test_manager_provider_segment():
    m = _manager()
    assert m.provider_segment({}) is None
    assert m.provider_segment(
        {"provider:network_type": "vlan", "provider:physical_network": "physnet", "provider:segmentation_id": 5}
    ) == Segment("vlan", "physnet", 5)
    with pytest.raises(errors.InvalidInput) as ei:
        m.provider_segment({"provider:physical_network": "physnet"})
    assert ei.value.msg == "Invalid input for operation: network_type required."
    with pytest.raises(errors.InvalidInput) as ei:
        m.provider_segment({"provider:network_type": "gre"})
    assert ei.value.msg == "Invalid input for operation: network_type value 'gre' not supported."


def test_manager_config_errors():
    with pytest.raises(ValueError):
        _manager({("ml2", "tenant_network_types"): "gre"})
    with pytest.raises(ValueError):
        _manager({("ml2_type_vxlan", "vni_ranges"): "5:1"})
    with pytest.raises(ValueError):
        _manager({("ml2_type_vlan", "network_vlan_ranges"): "physnet:1:5000"})


# --- binding (pure part) ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "conf,ntype,physnet,ok",
    [
        ({"bridge_mappings": {"physnet": "br-ex"}}, "flat", "physnet", True),
        ({"bridge_mappings": {"physnet": "br-ex"}}, "vlan", "other", False),
        ({"bridge_mappings": {}}, "vlan", None, False),
        ({"tunnel_types": ["vxlan"]}, "vxlan", None, True),
        ({"tunnel_types": ["vxlan"]}, "geneve", None, False),
        ({}, "local", None, True),
    ],
)
def test_agent_serves(conf, ntype, physnet, ok):
    assert binding.agent_serves(conf, ntype, physnet) is ok
