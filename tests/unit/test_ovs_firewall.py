"""The OVS conntrack firewall's flows (pure): golden dumps, rule translation, and
that a change touches only the flows it concerns.

Regenerate the golden files with ``NEUTRINO_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from neutrino.agents.ovs import derive
from neutrino.agents.ovs.firewall import ConjIds, OvsFirewall, port_masks, rule_priority
from neutrino.agents.ovs.flows import dump
from neutrino.agents.ovs.model import (
    AgentConfig,
    DesiredHost,
    DesiredNetwork,
    DesiredPort,
    SecurityGroupRule,
    WiredPort,
)
from neutrino.agents.ovs.planner import plan
from neutrino.fakes.flowtable import FakeFlowTable

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ovs"
NET = DesiredNetwork("net-n", "vxlan", None, 100, 1450)

DEFAULT_RULES = (
    SecurityGroupRule("egress", "IPv4"),
    SecurityGroupRule("egress", "IPv6"),
    SecurityGroupRule("ingress", "IPv4", remote_group_id="sg-default"),
    SecurityGroupRule("ingress", "IPv6", remote_group_id="sg-default"),
)
WEB_RULES = (
    SecurityGroupRule("ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0"),
    SecurityGroupRule("ingress", "IPv4", "tcp", 8000, 8080, "172.16.0.0/24"),
    SecurityGroupRule("ingress", "IPv4", "icmp", 8, 0),
    SecurityGroupRule("ingress", "IPv4", "icmp"),
    SecurityGroupRule("ingress", "IPv4", "udp", 53, 53, remote_group_id="sg-default"),
    SecurityGroupRule("ingress", "IPv6", "ipv6-icmp"),
    SecurityGroupRule("egress", "IPv4", "112"),
)


def _port(i: int, groups: tuple[str, ...], **kw) -> DesiredPort:
    return DesiredPort(f"port-{i}", NET.id, f"fa:16:3e:00:00:{i:02x}", (f"10.0.0.{i}",), security_groups=groups, **kw)


def _wired(port: DesiredPort, ofport: int, lvid: int = 1) -> WiredPort:
    return WiredPort(port, NET, f"tap{ofport}", ofport, lvid)


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("NEUTRINO_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed (NEUTRINO_UPDATE_GOLDEN=1 to accept)"


def test_golden_two_ports_default_and_web_groups_and_an_unfiltered_port() -> None:
    groups = {"sg-default": DEFAULT_RULES, "sg-web": WEB_RULES}
    members = {"sg-default": ("10.0.0.5", "10.0.0.6", "10.1.0.9", "fd00::6")}
    ports = [
        _wired(_port(5, ("sg-default",)), 5),
        _wired(
            DesiredPort(
                "port-6",
                NET.id,
                "fa:16:3e:00:00:06",
                ("10.0.0.6", "fd00::6"),
                allowed_address_pairs=((None, "10.0.0.100"), ("fa:16:3e:aa:bb:cc", "10.0.0.0/28")),
                security_groups=("sg-default", "sg-web"),
            ),
            6,
        ),
        _wired(DesiredPort("dhcp", NET.id, "fa:16:3e:00:00:02", ("10.0.0.2",), device_owner="network:dhcp"), 7),
        _wired(_port(8, (), port_security_enabled=False), 8),
    ]
    _check_golden("firewall-br-int.txt", dump(OvsFirewall(groups, members).flows("br-int", ports)))


@pytest.mark.parametrize(
    "lo,hi", [(22, 22), (1000, 1999), (0, 65535), (1, 65535), (8000, 8080), (65535, 65535), (1, 1024), (33, 47)]
)
def test_port_masks_cover_exactly_the_range(lo: int, hi: int) -> None:
    masks = port_masks(lo, hi)
    if masks == [None]:
        assert lo <= 1 and hi == 65535
        return
    covered: set[int] = set()
    for m in masks:
        assert m is not None
        value, _, mask = m.partition("/")
        v, k = int(value, 0), int(mask, 0) if mask else 0xFFFF
        block = {p for p in range(v, v + (0xFFFF ^ k) + 1)}
        assert all(p & k == v for p in block) and not (covered & block)
        covered |= block
    assert covered == set(range(lo, hi + 1))


def test_port_masks_random_ranges() -> None:
    rnd = random.Random(7)
    for _ in range(200):
        lo = rnd.randrange(1, 65535)
        hi = rnd.randrange(lo, 65536)
        test_port_masks_cover_exactly_the_range(lo, hi)


def test_rule_priorities_follow_specificity() -> None:
    r = SecurityGroupRule
    assert rule_priority(r("ingress", "IPv4")) == 74
    assert rule_priority(r("ingress", "IPv4", "icmp")) == 75
    assert rule_priority(r("ingress", "IPv4", "icmp", 8)) == 76
    assert rule_priority(r("ingress", "IPv4", "icmp", 8, 0)) == 77
    assert rule_priority(r("ingress", "IPv4", "tcp", 22, 22)) == 77
    assert rule_priority(r("ingress", "IPv4", "tcp", remote_group_id="g")) == 73
    assert rule_priority(r("ingress", "IPv4", remote_group_id="g")) == 70


def test_rule_translation() -> None:
    fw = OvsFirewall(
        {
            "g": (
                SecurityGroupRule("egress", "IPv6", "udp", 53, 53, "2001:db8::/32"),
                SecurityGroupRule("ingress", "IPv4", "47"),
                SecurityGroupRule("ingress", "IPv6", "icmp", 128),
            )
        },
        {},
    )
    text = dump(fw.flows("br-int", [_wired(_port(5, ("g",)), 5)]))
    assert (
        "table=72, priority=77,ct_state=+new-est,udp6,reg5=0x5,ipv6_dst=2001:db8::/32,tp_dst=53 actions=resubmit(,73)"
    ) in text
    assert (
        "table=82, priority=77,ct_state=+new-est,ip,reg5=0x5,nw_proto=47 "
        "actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:5"
    ) in text
    assert "table=82, priority=76,ct_state=+est-rel-rpl,icmp6,reg5=0x5,icmp_type=128 actions=output:5" in text


def _flows(fw: OvsFirewall, ports: list[WiredPort]) -> set:
    return set(fw.flows("br-int", ports))


def test_a_rule_change_touches_only_the_ports_of_its_group() -> None:
    ports = [_wired(_port(i, ("sg-a",) if i % 2 else ("sg-b",)), i) for i in range(2, 40)]
    ids = ConjIds()
    rules = {"sg-a": DEFAULT_RULES[:2], "sg-b": DEFAULT_RULES[:2]}
    before = _flows(OvsFirewall(rules, {}, ids), ports)
    ssh = SecurityGroupRule("ingress", "IPv4", "tcp", 22, 22)
    after = _flows(OvsFirewall({**rules, "sg-a": (*rules["sg-a"], ssh)}, {}, ids), ports)
    added, removed = after - before, before - after
    assert not removed
    # Two flows (new + established) per port of sg-a, nothing else.
    assert len(added) == 2 * len([p for p in ports if "sg-a" in p.port.security_groups])
    assert all("tp_dst=22" in f.match for f in added)


def test_membership_change_touches_only_address_flows() -> None:
    ids = ConjIds()
    ports = [_wired(_port(i, ("sg-default",)), i) for i in range(2, 30)]
    rules = {"sg-default": DEFAULT_RULES}
    members = {"sg-default": tuple(f"10.0.0.{i}" for i in range(2, 30))}
    before = _flows(OvsFirewall(rules, members, ids), ports)
    grown = {"sg-default": (*members["sg-default"], "10.9.9.9")}
    after = _flows(OvsFirewall(rules, grown, ids), ports)
    assert before - after == set()
    (new,) = after - before
    assert new.match == "ip,reg6=0x1,nw_src=10.9.9.9" and new.actions.startswith("conjunction(")


def test_remote_group_rules_share_conjunctions_and_merge_actions() -> None:
    r1 = SecurityGroupRule("ingress", "IPv4", "tcp", 80, 80, remote_group_id="g1")
    r2 = SecurityGroupRule("ingress", "IPv4", "tcp", 80, 80, remote_group_id="g2")
    fw = OvsFirewall({"a": (r1, r2)}, {"g1": ("10.0.0.7",), "g2": ("10.0.0.7", "10.0.0.8")})
    flows = fw.flows("br-int", [_wired(_port(5, ("a",)), 5), _wired(_port(6, ("a",)), 6)])
    by_match = {(f.table, f.match): f.actions for f in flows if f.priority == 73}
    c1, c2 = sorted(fw.conj_ids.ids.values())
    assert by_match[(82, "tcp,reg5=0x5,tp_dst=80")] == f"conjunction({c1},2/2),conjunction({c2},2/2)"
    assert by_match[(82, "ip,reg6=0x1,nw_src=10.0.0.7")] == f"conjunction({c1},1/2),conjunction({c2},1/2)"
    assert by_match[(82, "ip,reg6=0x1,nw_src=10.0.0.8")] == f"conjunction({c2},1/2)"


def test_planner_with_firewall_drops_table_24_25_anti_spoofing() -> None:
    cfg = AgentConfig("h1", local_ip="192.168.100.11", tunnel_types=("vxlan",), datapath_type="netdev")
    port = _port(5, ("sg-default",), device_owner="compute:nova")
    desired = DesiredHost(
        networks=(NET,),
        ports=(port,),
        security_groups={"sg-default": DEFAULT_RULES},
        group_members={"sg-default": ("10.0.0.5",)},
    )
    fake = FakeFlowTable()
    fake.add_bridge("br-int")
    fake.add_port("br-int", "tap5", ofport=5, iface_id=port.id, attached_mac=port.mac)
    fw = OvsFirewall(desired.security_groups, desired.group_members)
    p = plan(cfg, desired, fake.observed(), {}, fw)
    flows = p.flows["br-int"]
    assert not [f for f in flows if f.table in (24, 25) and f.priority > 0]
    assert any(f.table == 60 and f.match == "in_port=5" for f in flows)
    no_fw = plan(cfg, desired, fake.observed(), {})
    assert any(f.table == 25 and "in_port=5" in f.match for f in no_fw.flows["br-int"])


def test_derive_collects_groups_rules_and_members() -> None:
    cfg = AgentConfig("h1")
    ports = {
        "p1": {
            "id": "p1",
            "network_id": "n",
            "mac_address": "fa:16:3e:00:00:01",
            "binding:host_id": "h1",
            "binding:vif_type": "ovs",
            "fixed_ips": [{"ip_address": "10.0.0.1"}],
            "security_groups": ["a"],
        },
        "p2": {
            "id": "p2",
            "network_id": "n",
            "mac_address": "fa:16:3e:00:00:02",
            "binding:host_id": "h2",
            "binding:vif_type": "ovs",
            "fixed_ips": [{"ip_address": "10.0.0.2"}],
            "allowed_address_pairs": [{"ip_address": "10.0.5.0/24"}],
            "security_groups": ["b"],
        },
    }
    nets = {"n": {"id": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 5}}
    rules = {
        "r1": {
            "id": "r1",
            "security_group_id": "a",
            "direction": "ingress",
            "ethertype": "IPv4",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
            "remote_group_id": "b",
        },
        "r2": {"id": "r2", "security_group_id": "b", "direction": "egress", "ethertype": "IPv4"},
    }
    d = derive.desired_host(cfg, ports, nets, {}, rules)
    assert d.ports[0].security_groups == ("a",)
    assert set(d.security_groups) == {"a"}  # only the groups of this host's ports
    assert d.security_groups["a"][0].remote_group_id == "b"
    assert d.group_members == {"b": ("10.0.0.2", "10.0.5.0/24")}


def test_incremental_address_sets_equal_a_computation_from_scratch() -> None:
    """The address dimension is updated from the previous pass when only a group's
    members changed; whatever the sequence of changes (addresses that canonicalise to
    the same match included), the flows are those computed from scratch."""
    from neutrino.agents.ovs.firewall import _address_flows, _AddressSets

    rng = random.Random(7)
    pool = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(40)] + [
        "10.0.0.1/32",
        "10.0.0.0/30",
        "10.0.0.2/30",
        "fd00::1",
        "fd00::1/128",
        "fd00::/64",
    ]
    sets = _AddressSets()
    members = tuple(rng.sample(pool, 10))
    for step in range(300):
        if step % 50 == 49:  # now and then the conjunction ids change too
            cids: tuple[int, ...] = (8, 9)
        else:
            cids = (8,)
        k = rng.randrange(4)
        if k == 0 and members:
            members = tuple(m for m in members if m != rng.choice(members))
        elif k == 1:
            members = tuple(sorted({*members, rng.choice(pool)}))
        elif k == 2:
            members = tuple(rng.sample(pool, rng.randrange(len(pool))))
        for v6 in (False, True):
            bucket = (("sg", members, cids),)
            got = sets.flows("br-int", 82, 70, 3, v6, bucket)
            assert got == _address_flows("br-int", 82, 70, 3, v6, bucket), (step, members)


def test_derive_memo_gives_the_same_result_and_follows_changed_bodies() -> None:
    cfg = AgentConfig("h1")
    nets = {"n": {"id": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 5}}

    def body(i: int, ip: str, groups: list[str]) -> dict:
        return {
            "id": f"p{i}",
            "network_id": "n",
            "mac_address": f"fa:16:3e:00:00:{i:02x}",
            "binding:host_id": "h1",
            "binding:vif_type": "ovs",
            "fixed_ips": [{"ip_address": ip}],
            "security_groups": groups,
        }

    rules = {
        "r": {"id": "r", "security_group_id": "a", "direction": "ingress", "ethertype": "IPv4", "remote_group_id": "a"}
    }
    ports = {f"p{i}": body(i, f"10.0.0.{i}", ["a"]) for i in range(1, 5)}
    memo = derive.Memo()
    first = derive.desired_host(cfg, ports, nets, {}, rules, memo=memo)
    assert first == derive.desired_host(cfg, ports, nets, {}, rules)
    ports = {**ports, "p2": body(2, "10.0.0.22", ["a"]), "p5": body(5, "10.0.0.5", ["b"])}
    del ports["p3"]
    second = derive.desired_host(cfg, ports, nets, {}, rules, memo=memo)
    assert second == derive.desired_host(cfg, ports, nets, {}, rules)
    assert second.group_members == {"a": ("10.0.0.1", "10.0.0.22", "10.0.0.4")}
    assert second.ports[0] is first.ports[0]  # p1's body did not change: same value
    assert set(memo.ports) == {"p1", "p2", "p4", "p5"}
