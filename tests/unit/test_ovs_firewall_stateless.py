"""Stateless security groups in the OVS firewall (pure planner): no conntrack for
the port's traffic, rules in both directions needed, stateful ports unchanged.

Regenerate the golden file with ``NEUTRINO_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from neutrino.agents.ovs import derive
from neutrino.agents.ovs.firewall import ConjIds, OvsFirewall
from neutrino.agents.ovs.flows import dump
from neutrino.agents.ovs.model import AgentConfig, DesiredNetwork, DesiredPort, SecurityGroupRule, WiredPort

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ovs"
NET = DesiredNetwork("net-n", "vxlan", None, 100, 1450)
ICMP_IN = SecurityGroupRule("ingress", "IPv4", "icmp")
ALL_OUT = SecurityGroupRule("egress", "IPv4")
STATEFUL_RULES = (SecurityGroupRule("egress", "IPv4"), SecurityGroupRule("ingress", "IPv4", "tcp", 22, 22))


def _port(i: int, groups: tuple[str, ...], **kw) -> DesiredPort:
    return DesiredPort(f"port-{i}", NET.id, f"fa:16:3e:00:00:{i:02x}", (f"10.0.0.{i}",), security_groups=groups, **kw)


def _wired(port: DesiredPort, ofport: int, lvid: int = 1) -> WiredPort:
    return WiredPort(port, NET, f"tap{ofport}", ofport, lvid)


def _stateless(i: int, groups: tuple[str, ...] = ("sg-bare",)) -> WiredPort:
    return _wired(_port(i, groups, stateful=False), i)


def test_golden_stateless_port_next_to_a_stateful_one() -> None:
    groups = {
        "sg-bare": (
            ICMP_IN,
            ALL_OUT,
            SecurityGroupRule("ingress", "IPv4", "tcp", 22, 22),
            SecurityGroupRule("ingress", "IPv4", "udp", remote_group_id="sg-bare"),
        ),
        "sg-full": STATEFUL_RULES,
    }
    ports = [_stateless(5), _wired(_port(6, ("sg-full",)), 6)]
    text = dump(OvsFirewall(groups, {"sg-bare": ("10.0.0.5",)}).flows("br-int", ports))
    path = GOLDEN / "firewall-stateless-br-int.txt"
    if os.environ.get("NEUTRINO_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), "firewall-stateless-br-int.txt changed (NEUTRINO_UPDATE_GOLDEN=1 to accept)"


def test_stateless_port_traffic_never_meets_conntrack() -> None:
    fw = OvsFirewall({"sg-bare": (ICMP_IN, ALL_OUT)}, {})
    port = _stateless(5)
    mine = [f for f in fw.flows("br-int", [port]) if "reg5=0x5" in f.match or f.match == "in_port=5"]
    assert mine
    for f in mine:
        assert "ct(" not in f.actions, f
        assert "ct_state" not in f.match and "ct_mark" not in f.match and "ct_zone" not in f.match, f
    text = dump(mine)
    # IP from the port's own (MAC, IP) goes straight to the egress rules; IP to it to the ingress rules.
    assert ("table=71, priority=65,ip,reg5=0x5,dl_src=fa:16:3e:00:00:05,nw_src=10.0.0.5 actions=resubmit(,72)") in text
    assert "table=81, priority=90,ip,reg5=0x5 actions=resubmit(,82)" in text
    assert "table=81, priority=90,ipv6,reg5=0x5 actions=resubmit(,82)" in text
    # One flow per rule, whatever the conntrack state; ingress accepts without a commit.
    assert "table=82, priority=75,icmp,reg5=0x5 actions=output:5" in text
    assert "table=72, priority=74,ip,reg5=0x5 actions=resubmit(,73)" in text


def test_no_reply_without_a_rule() -> None:
    """Ingress ICMP only: echo replies from the port match nothing in table 72 (its
    default is drop), as there is no 'established' flow to let them through."""
    only_in = OvsFirewall({"sg-bare": (ICMP_IN,)}, {}).flows("br-int", [_stateless(5)])
    assert [f for f in only_in if f.table == 72 and "reg5=0x5" in f.match] == []
    with_out = OvsFirewall({"sg-bare": (ICMP_IN, SecurityGroupRule("egress", "IPv4", "icmp"))}, {}).flows(
        "br-int", [_stateless(5)]
    )
    assert [dump([f]) for f in with_out if f.table == 72 and "reg5=0x5" in f.match] == [
        "table=72, priority=75,icmp,reg5=0x5 actions=resubmit(,73)\n"
    ]


def test_anti_spoofing_and_dhcp_are_the_same_as_stateful() -> None:
    """Only IP filtering changes: ARP/ND, DHCP and spoofed-source drops are kept."""
    fw = OvsFirewall({"sg": (ICMP_IN,)}, {})
    stateful = _wired(_port(5, ("sg",)), 5)
    stateless = _wired(_port(5, ("sg",), stateful=False), 5)
    keep = {
        f
        for f in fw.port_flows("br-int", stateful)
        if f.table in (60, 71, 81) and "ct(" not in f.actions and "ct_state" not in f.match
    }
    assert keep and keep <= fw.port_flows("br-int", stateless)


def test_stateful_ports_flows_do_not_change() -> None:
    groups = {"sg-bare": (ICMP_IN, ALL_OUT), "sg-full": STATEFUL_RULES}
    full = [_wired(_port(6, ("sg-full",)), 6), _wired(_port(7, ("sg-full",)), 7)]
    before = OvsFirewall(groups, {}, ConjIds()).flows("br-int", full)
    after = OvsFirewall(groups, {}, ConjIds()).flows("br-int", [*full, _stateless(5)])
    assert before <= after
    added = after - before
    assert added
    # Everything added is about the stateless port.
    assert all("0x5" in f.match or "in_port=5" in f.match or "fa:16:3e:00:00:05" in f.match for f in added), dump(added)


def test_new_connection_from_a_local_stateful_port_is_committed_on_the_way() -> None:
    flows = dump(OvsFirewall({"sg-bare": (ICMP_IN,)}, {}).flows("br-int", [_stateless(5)]))
    assert (
        "table=73, priority=105,ct_state=+new-est,ip,reg6=0x1,dl_dst=fa:16:3e:00:00:05 "
        "actions=ct(commit,zone=NXM_NX_REG6[0..15]),set_field:0x5->reg5,resubmit(,81)"
    ) in flows


def test_remote_group_rule_of_a_stateless_port_uses_conjunctions_without_state() -> None:
    rule = SecurityGroupRule("ingress", "IPv4", "udp", remote_group_id="sg-bare")
    ids = ConjIds()
    flows = OvsFirewall({"sg-bare": (rule,)}, {"sg-bare": ("10.0.0.9",)}, ids).flows("br-int", [_stateless(5)])
    cid = ids.get(("sg-bare", "ingress", "IPv4", 73))
    text = dump(flows)
    assert f"table=82, priority=73,conj_id={cid},ip,reg5=0x5 actions=output:5" in text
    assert f"table=82, priority=73,udp,reg5=0x5 actions=conjunction({cid},2/2)" in text
    assert f"table=82, priority=73,ip,reg6=0x1,nw_src=10.0.0.9 actions=conjunction({cid},1/2)" in text


def test_switching_a_port_between_modes_rebuilds_its_flows() -> None:
    fw = OvsFirewall({"sg": (ICMP_IN,)}, {})
    full = _wired(_port(5, ("sg",)), 5)
    bare = _wired(replace(full.port, stateful=False), 5)
    assert fw.port_flows("br-int", full) != fw.port_flows("br-int", bare)
    assert any("ct(" in f.actions for f in fw.port_flows("br-int", full))


# --- derive: the port carries its groups' mode ----------------------------------------------------
def _feed():
    ports = {
        pid: {
            "id": pid,
            "network_id": "n",
            "mac_address": f"fa:16:3e:00:00:0{i}",
            "binding:host_id": "h1",
            "binding:vif_type": "ovs",
            "fixed_ips": [{"ip_address": f"10.0.0.{i}"}],
            "security_groups": groups,
        }
        for i, (pid, groups) in enumerate(
            {"p1": ["bare"], "p2": ["full"], "p3": [], "p4": ["bare", "full"]}.items(), start=1
        )
    }
    nets = {"n": {"id": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 5}}
    rules = {"r1": {"id": "r1", "security_group_id": "bare", "direction": "ingress", "ethertype": "IPv4"}}
    groups = {"bare": {"id": "bare", "stateful": False}, "full": {"id": "full", "stateful": True}}
    return ports, nets, rules, groups


def test_derive_marks_ports_of_stateless_groups() -> None:
    ports, nets, rules, groups = _feed()
    d = derive.desired_host(AgentConfig("h1"), ports, nets, {}, rules, sg_groups=groups)
    modes = {p.id: p.stateful for p in d.ports}
    # A port whose groups are mixed (the API refuses that) is stateless: it lets through less.
    assert modes == {"p1": False, "p2": True, "p3": True, "p4": False}


def test_derive_without_group_bodies_or_firewall_keeps_ports_stateful() -> None:
    ports, nets, rules, groups = _feed()
    assert all(p.stateful for p in derive.desired_host(AgentConfig("h1"), ports, nets, {}, rules).ports)
    assert all(
        p.stateful for p in derive.desired_host(AgentConfig("h1"), ports, nets, {}, None, sg_groups=groups).ports
    )


def test_derive_memo_follows_a_group_changing_mode() -> None:
    ports, nets, rules, groups = _feed()
    memo = derive.Memo()
    first = derive.desired_host(AgentConfig("h1"), ports, nets, {}, rules, memo=memo, sg_groups=groups)
    assert {p.id: p.stateful for p in first.ports}["p1"] is False
    groups = {**groups, "bare": {"id": "bare", "stateful": True}}
    second = derive.desired_host(AgentConfig("h1"), ports, nets, {}, rules, memo=memo, sg_groups=groups)
    assert {p.id: p.stateful for p in second.ports}["p1"] is True


def test_ovs_agent_follows_security_groups_on_the_feed() -> None:
    from neutrino.agents.ovs.agent import OvsDriver

    assert "security_group" in OvsDriver.feed_types
