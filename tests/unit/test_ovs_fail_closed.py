"""Issue 13, finding 3: the OVS agent fails closed per port.

* The planner never builds flows for a port whose MAC or addresses are not
  strictly addresses (an IPv6 scope id, a newline, ...): its VIF is dead, its
  status ERROR, the reason in ``Plan.port_errors``; other ports are wired.
* ``derive`` leaves out what would put such a value into a shared flow (a
  rule's remote prefix, a group member's address, a peer's tunnel IP, an fdb
  entry) and says so.
* The executor (``OvsDriver`` against the fake switch of test_ovs_agent):
  when br-int's bundle is rejected, the ports whose own flows the switch
  rejects are found, isolated (no table-0 allow flow, status ERROR, named in
  ``reconcile_error``) and every other port is programmed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from neutrino.agents.ovs import derive
from neutrino.agents.ovs import tables as t
from neutrino.agents.ovs.agent import REREAD_EVERY
from neutrino.agents.ovs.firewall import OvsFirewall
from neutrino.agents.ovs.model import AgentConfig, DesiredHost, DesiredPort
from neutrino.agents.ovs.planner import plan, port_problem
from neutrino.fakes.flowtable import ethernet
from neutrino.system.errors import FlowRejected
from neutrino.system.exec import Completed
from tests.unit.test_ovs_agent import Clock, FakeSwitch, make, port, state
from tests.unit.test_ovs_planner import CFG, MAC_A, MAC_B, NET_X, PORT_A, PORT_B, converge, make_host, tap

BAD_IPS = ["10.0.0.7%eth0", "fe80::1%eth0", "fe80::1%a\nb", "fe80::1%a,b c", "10.0.0.7 ", "10.0.0.7\n", "nope"]


# --- the planner ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        *(replace(PORT_B, fixed_ips=(ip,)) for ip in BAD_IPS),
        *(replace(PORT_B, allowed_address_pairs=((None, ip),)) for ip in BAD_IPS + ["10.0.0.0/24%x", "10.0.0.0/33"]),
        replace(PORT_B, allowed_address_pairs=(("fa:16:3e:00:00:99\n", "10.0.0.9"),)),
        replace(PORT_B, mac="fa:16:3e:00:00:0b,in_port=1"),
    ],
)
@pytest.mark.parametrize("firewall", [False, True])
def test_a_port_with_an_unusable_address_is_isolated_and_the_others_wired(bad: DesiredPort, firewall: bool) -> None:
    assert port_problem(bad) is not None and port_problem(PORT_A) is None
    desired = DesiredHost(networks=(NET_X,), ports=(PORT_A, bad))
    fake = make_host((PORT_A.id, MAC_A), (bad.id, MAC_B))
    settled = converge(fake, CFG, desired)  # (the fake pipeline runs no firewall flows)
    fw = OvsFirewall({}, {}) if firewall else None
    p = plan(CFG, desired, fake.observed(), settled.local_vlans, fw)
    assert not p.ovsdb_ops
    assert p.port_status == {"port-a": "ACTIVE", "port-b": "ERROR"}
    assert set(p.port_errors) == {"port-b"}
    b_port, a_port = fake.port(tap("port-b")), fake.port(tap("port-a"))
    assert b_port.tag == t.DEAD_VLAN and a_port.tag not in (None, t.DEAD_VLAN)
    br_int = p.flows["br-int"]
    table0 = {f.match: f.actions for f in br_int if f.table == t.INT_LOCAL_SWITCHING}
    assert table0[f"in_port={b_port.ofport}"] == "drop"
    assert table0[f"in_port={a_port.ofport}"] != "drop"
    # No flow of the bad port anywhere, and nothing of its values reached a flow.
    assert not any(f"reg5=0x{b_port.ofport:x}" in f.match for f in br_int)
    for value in (bad.mac, *bad.fixed_ips, *(ip for _, ip in bad.allowed_address_pairs)):
        assert not any(value in f.match or value in f.actions for f in br_int)
    assert [w.port.id for w in p.wired] == ["port-a"]
    if not firewall:  # the fake pipeline: nothing from the dead VIF gets anywhere
        assert fake.outputs("br-int", ethernet(MAC_B, "ff:ff:ff:ff:ff:ff"), in_port=tap("port-b")) == []


def test_isolated_ports_named_by_the_executor_are_dead_whatever_they_are() -> None:
    desired = DesiredHost(networks=(NET_X,), ports=(PORT_A, PORT_B))
    fake = make_host((PORT_A.id, MAC_A), (PORT_B.id, MAC_B))
    converge(fake, CFG, desired)
    p = plan(CFG, desired, fake.observed(), {"net-x": 1}, None, {"port-b": "flows rejected by the switch"})
    assert p.port_status == {"port-a": "ACTIVE", "port-b": "ERROR"}
    assert p.port_errors == {"port-b": "flows rejected by the switch"}
    fake.apply(p)
    assert fake.port(tap("port-b")).tag == t.DEAD_VLAN


# --- derive --------------------------------------------------------------------------------------
def _api_port(i: int, **kw: Any) -> dict[str, Any]:
    body = {
        "id": f"port-{i}",
        "network_id": "net-1",
        "mac_address": f"fa:16:3e:00:00:{i:02x}",
        "fixed_ips": [{"ip_address": f"10.0.0.{i}"}],
        "binding:host_id": "h1",
        "binding:vif_type": "ovs",
        "admin_state_up": True,
        "security_groups": ["sg"],
        "device_owner": "compute:nova",
    }
    body.update(kw)
    return body


NET = {"id": "net-1", "provider:network_type": "vxlan", "provider:segmentation_id": 100}


def test_derive_leaves_out_rules_and_members_that_are_not_addresses() -> None:
    rules = {
        "good": {
            "id": "good",
            "security_group_id": "sg",
            "direction": "ingress",
            "ethertype": "IPv4",
            "remote_ip_prefix": "10.9.0.0/24",
        },
        "bad": {
            "id": "bad",
            "security_group_id": "sg",
            "direction": "ingress",
            "ethertype": "IPv6",
            "remote_ip_prefix": "fe80::/64%a\nb",
        },
        "group": {
            "id": "group",
            "security_group_id": "sg",
            "direction": "ingress",
            "ethertype": "IPv6",
            "remote_group_id": "sg",
        },
    }
    ports = {
        "port-1": _api_port(1),
        "port-2": _api_port(
            2,
            **{
                "binding:host_id": "h2",
                "fixed_ips": [{"ip_address": "fe80::2%eth0"}, {"ip_address": "10.0.0.2"}],
                "allowed_address_pairs": [{"ip_address": "2001:db8::9 "}],
            },
        ),
    }
    d = derive.desired_host(AgentConfig(host="h1"), ports, {"net-1": NET}, {}, rules)
    assert {r.remote_ip_prefix for r in d.security_groups["sg"]} == {"10.9.0.0/24", None}
    assert d.group_members["sg"] == ("10.0.0.1", "10.0.0.2")
    assert any("bad" in p and "remote_ip_prefix" in p for p in d.problems)


def test_derive_leaves_out_tunnel_peers_and_fdb_entries_that_are_not_addresses() -> None:
    cfg = AgentConfig(host="h1", local_ip="192.168.1.1", tunnel_types=("vxlan",), l2_population=True)
    agents = {
        f"a{i}": {"agent_type": derive.OVS_AGENT_TYPE, "host": h, "configurations": {"tunneling_ip": ip}}
        for i, (h, ip) in enumerate(
            [("h1", "192.168.1.1"), ("h2", "192.168.1.2"), ("h3", "192.168.1.3%eth0"), ("h4", "192.168.1.4\n")]
        )
    }
    ports = {
        "port-1": _api_port(1),
        "port-2": _api_port(
            2, **{"binding:host_id": "h2", "fixed_ips": [{"ip_address": "10.0.0.2"}, {"ip_address": "fe80::2%a,b"}]}
        ),
        "port-3": _api_port(3, **{"binding:host_id": "h2", "mac_address": "fa:16:3e:00:00:03\n"}),
        "port-4": _api_port(4, **{"binding:host_id": "h3"}),
    }
    d = derive.desired_host(cfg, ports, {"net-1": NET}, agents)
    assert [p.ip for p in d.tunnel_peers] == ["192.168.1.2"]
    assert {(e.mac, e.ip) for e in d.fdb if not e.is_flooding} == {("fa:16:3e:00:00:02", "10.0.0.2")}
    assert len([p for p in d.problems if "tunneling_ip" in p]) == 2


# --- the executor --------------------------------------------------------------------------------
@dataclass
class PickySwitch(FakeSwitch):
    """A fake switch that rejects any bundle with a line containing ``poison``."""

    poison: str | None = None
    rejected: int = 0

    def run(
        self, argv: list[str], *, input: str | None = None, check: bool = True, timeout: float | None = None
    ) -> Completed:
        if input is not None and self.poison is not None and self.poison in input:
            self.calls.append("rejected bundle")
            self.rejected += 1
            raise FlowRejected(list(argv), 1, "OFPT_ERROR (OF1.3): OFPBAC_BAD_ARGUMENT\nmore")
        return super().run(argv, input=input, check=check, timeout=timeout)


@pytest.fixture
def sw() -> PickySwitch:
    s = PickySwitch()
    from neutrino.system import ovsdb as sysovs

    s.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
    for i in range(1, 9):
        s.plug(i)
    return s


def table0(sw: PickySwitch) -> dict[int, str]:
    """in_port -> the table-0 action for it on br-int."""
    out = {}
    for (table, _, match), (_, actions) in sw.flows["br-int"].items():
        if table == 0 and match.startswith("in_port="):
            out[int(match.split("=")[1])] = actions
    return out


def ofport(sw: PickySwitch, i: int) -> int:
    return int(sw.ports[f"tap{i}"]["ofport"])


def test_a_port_whose_flows_the_switch_rejects_is_isolated_and_the_others_programmed(sw: PickySwitch) -> None:
    clock = Clock()
    drv = make(sw, clock)
    sw.poison = "fa:16:3e:00:00:05"  # in port-5's own flows only
    statuses = drv.reconcile_sync(state(1, *(port(i) for i in range(1, 9))), True)
    assert statuses == {f"port-{i}": ("ERROR" if i == 5 else "ACTIVE") for i in range(1, 9)}
    allow = table0(sw)
    assert allow[ofport(sw, 5)] == "drop"
    assert all(allow[ofport(sw, i)] != "drop" for i in range(1, 9) if i != 5)
    assert not any(sw.poison in m or sw.poison in a for (_, _, m), (_, a) in sw.flows["br-int"].items())
    assert sw.ports["tap5"]["tag"] == t.DEAD_VLAN
    conf = drv.configurations()
    assert conf["reconcile_error"].startswith("port port-5: flows rejected by the switch (OFPT_ERROR")
    # Found in few bundles (halving), not one per port; the memory matches the switch.
    assert sw.rejected <= 1 + 2 * 3
    assert {f for f, _ in sw.specs("br-int")} == drv._installed["br-int"]

    # The next pass does not try again (nothing rejected, nothing re-read) ...
    sw.calls.clear()
    assert drv.reconcile_sync(state(2, *(port(i) for i in range(1, 9))), True)["port-5"] == "ERROR"
    assert "rejected bundle" not in sw.calls
    # ... until the port changes (here: the switch would take it now) ...
    sw.poison = None
    p5 = dict(port(5), name="renamed", fixed_ips=[{"ip_address": "10.0.0.55"}])
    assert drv.reconcile_sync(state(3, *(port(i) for i in range(1, 9) if i != 5), p5), True)["port-5"] == "ACTIVE"
    assert table0(sw)[ofport(sw, 5)] != "drop" and "reconcile_error" not in drv.configurations()


def test_a_rejected_port_is_tried_again_on_a_full_pass(sw: PickySwitch) -> None:
    clock = Clock()
    drv = make(sw, clock)
    sw.poison = "fa:16:3e:00:00:02"
    ports = [port(i) for i in range(1, 4)]
    assert drv.reconcile_sync(state(1, *ports), True)["port-2"] == "ERROR"
    sw.poison = None
    assert drv.reconcile_sync(state(2, *ports), True)["port-2"] == "ERROR"  # not retried yet
    clock.now += REREAD_EVERY
    assert drv.reconcile_sync(state(3, *ports), True)["port-2"] == "ACTIVE"
    assert table0(sw)[ofport(sw, 2)] != "drop"


def test_a_wired_port_whose_new_flows_are_rejected_loses_its_old_ones(sw: PickySwitch) -> None:
    clock = Clock()
    drv = make(sw, clock)
    ports = [port(i) for i in range(1, 4)]
    assert set(drv.reconcile_sync(state(1, *ports), True).values()) == {"ACTIVE"}
    assert table0(sw)[ofport(sw, 3)] != "drop"
    sw.poison = "fa:16:3e:99:99:99"
    ports[2] = dict(ports[2], allowed_address_pairs=[{"mac_address": "fa:16:3e:99:99:99", "ip_address": "10.0.0.99"}])
    statuses = drv.reconcile_sync(state(2, *ports), True)
    assert statuses == {"port-1": "ACTIVE", "port-2": "ACTIVE", "port-3": "ERROR"}
    assert table0(sw)[ofport(sw, 3)] == "drop"
    assert not any(f"reg5=0x{ofport(sw, 3):x}" in m for (_, _, m) in sw.flows["br-int"])


def test_a_rejection_no_port_explains_fails_the_pass_as_before(sw: PickySwitch) -> None:
    clock = Clock()
    drv = make(sw, clock)
    sw.poison = "ct_state=+inv+trk"  # a default flow of the firewall: shared by all ports
    with pytest.raises(FlowRejected):
        drv.reconcile_sync(state(1, *(port(i) for i in range(1, 4))), True)
    sw.poison = None
    assert set(drv.reconcile_sync(state(2, *(port(i) for i in range(1, 4))), True).values()) == {"ACTIVE"}
    assert {f for f, _ in sw.specs("br-int")} == drv._installed["br-int"]


def test_a_port_with_an_unusable_address_never_reaches_the_switch(sw: PickySwitch) -> None:
    clock = Clock()
    drv = make(sw, clock)
    bad = dict(port(2), fixed_ips=[{"ip_address": "fe80::2%a\nadd table=0,priority=65535,actions=NORMAL"}])
    sw.poison = "fe80::2%"
    statuses = drv.reconcile_sync(state(1, port(1), bad, port(3)), True)
    assert statuses == {"port-1": "ACTIVE", "port-2": "ERROR", "port-3": "ACTIVE"}
    assert sw.rejected == 0 and all("fe80::2%" not in text for _, text in sw.bundles)
    assert "port port-2: fixed IP" in drv.configurations()["reconcile_error"]


def test_a_flow_with_a_line_break_never_reaches_ovs_ofctl_even_past_the_planner(sw: PickySwitch) -> None:
    """The bundle text itself is checked (one line per flow mod): a value that would
    add a flow of its own is refused before ``ovs-ofctl`` runs, and isolates its port."""
    clock = Clock()
    # The planner's own check lets everything through here: only the executor's guard is left.
    drv = make(sw, clock, port_check=lambda p: None)
    evil = "fe80::2%x\nadd cookie=0x1 table=0 priority=65535 actions=NORMAL"
    bad = dict(port(2), fixed_ips=[{"ip_address": "10.0.0.2"}, {"ip_address": evil}])
    statuses = drv.reconcile_sync(state(1, port(1), bad, port(3)), True)
    assert statuses == {"port-1": "ACTIVE", "port-2": "ERROR", "port-3": "ACTIVE"}
    assert all("priority=65535 actions=NORMAL" not in text for _, text in sw.bundles)
    assert not any("fe80::2%" in m for (_, _, m) in sw.flows["br-int"])
    assert "line break" in drv.configurations()["reconcile_error"]
