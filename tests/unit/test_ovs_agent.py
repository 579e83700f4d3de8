"""The OVS agent's executor (``OvsDriver``) against a fake switch: what it sends, when it
re-reads, and that the flows end up exactly the plan whatever happened in between.

``FakeSwitch`` stands in for one OVS instance behind ``Ovs``: an OVSDB (bridges,
ports with ofports) and flow tables that interpret the ``ovs-ofctl --bundle``
input the agent writes and print ``dump-flows --no-stats`` the way OVS does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from neutrino.agents.ovs.agent import REREAD_EVERY, OvsDriver
from neutrino.agents.ovs.bundle import flow_changes
from neutrino.agents.ovs.model import AgentConfig, FlowSpec
from neutrino.agents.ovs.tables import LEARNED_FLOW_COOKIE
from neutrino.feed.state import State
from neutrino.system import ovsdb as sysovs
from neutrino.system.errors import FlowRejected
from neutrino.system.exec import Completed

HOST = "h1"
CFG = AgentConfig(host=HOST, local_ip="192.168.100.11", tunnel_types=("vxlan",), datapath_type="netdev")
NET = {
    "id": "net-1",
    "provider:network_type": "vxlan",
    "provider:physical_network": None,
    "provider:segmentation_id": 100,
    "mtu": 1450,
}
RULES = {
    f"r{i}": {
        "id": f"r{i}",
        "security_group_id": "sg",
        "direction": d,
        "ethertype": e,
        "protocol": None,
        "port_range_min": None,
        "port_range_max": None,
        "remote_ip_prefix": None,
        "remote_group_id": g,
    }
    for i, (d, e, g) in enumerate([("egress", "IPv4", None), ("ingress", "IPv4", "sg")])
}


def port(i: int) -> dict[str, Any]:
    return {
        "id": f"port-{i}",
        "network_id": "net-1",
        "mac_address": f"fa:16:3e:00:00:{i:02x}",
        "fixed_ips": [{"ip_address": f"10.0.0.{i}"}],
        "binding:host_id": HOST,
        "binding:vif_type": "ovs",
        "admin_state_up": True,
        "port_security_enabled": True,
        "device_owner": "compute:nova",
        "security_groups": ["sg"],
    }


def state(rev: int, *ports: dict[str, Any]) -> State:
    return State(
        rev,
        {"port": {p["id"]: p for p in ports}, "network": {"net-1": NET}, "agent": {}, "security_group_rule": RULES},
        frozenset({"port", "network", "agent", "security_group_rule"}),
    )


@dataclass
class FakeSwitch:
    """OVSDB rows + flow tables of one fake OVS, driven through ``Ovs``'s interface."""

    bridges: dict[str, dict[str, Any]] = field(default_factory=dict)
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    flows: dict[str, dict[tuple[int, int, str], tuple[int, str]]] = field(default_factory=dict)
    pid: int = 100
    next_ofport: int = 1
    calls: list[str] = field(default_factory=list)  # "dump br", "bundle br", "transact", ...
    bundles: list[tuple[str, str]] = field(default_factory=list)
    reject_next_bundle: bool = False
    timeout: float = 10
    rundir: None = None

    # -- the parts of Ovs the agent uses ------------------------------------------------
    def mgmt(self, bridge: str) -> str:
        return f"unix:/fake/{bridge}.mgmt"

    def vswitchd_pid(self) -> int | None:
        return self.pid

    def vsctl(self, *args: str, wait: bool = True) -> str:
        assert args[0] == "list-ports"
        return "\n".join(sorted(n for n, p in self.ports.items() if p["bridge"] == args[1]))

    def observe(self) -> sysovs.OvsState:
        self.calls.append("observe")
        ports = {}
        for name, p in self.ports.items():
            iface = sysovs.Interface(
                name, p["type"], p["ofport"], dict(p["options"]), dict(p["external_ids"]), {}, None, None, None
            )
            ports[name] = sysovs.Port(
                name,
                p["bridge"],
                p.get("tag"),
                p.get("vlan_mode"),
                tuple(p.get("trunks", ())),
                dict(p.get("other_config", {})),
                {},
                (iface,),
            )
        bridges = {
            n: sysovs.Bridge(
                n,
                b["datapath_type"],
                b.get("fail_mode"),
                tuple(b.get("protocols", ())),
                {},
                {},
                (),
                tuple(sorted(p for p, r in self.ports.items() if r["bridge"] == n)),
            )
            for n, b in self.bridges.items()
        }
        return sysovs.OvsState(bridges, ports)

    def transact(self, ops: list[sysovs.Op], *, wait: bool = True) -> None:
        self.calls.append("transact")
        for op in ops:
            if isinstance(op, sysovs.AddBridge):
                b = self.bridges.setdefault(op.name, {"datapath_type": "system"})
                self.flows.setdefault(op.name, {})
                for col in ("datapath_type", "fail_mode", "protocols"):
                    if getattr(op, col) is not None:
                        b[col] = getattr(op, col)
            elif isinstance(op, sysovs.AddPort):
                p = self.ports.get(op.name)
                if p is None:
                    p = self.ports[op.name] = {
                        "bridge": op.bridge,
                        "type": "",
                        "ofport": self.next_ofport,
                        "options": {},
                        "external_ids": {},
                    }
                    self.next_ofport += 1
                p["type"] = op.type if op.type is not None else p["type"]
                p["options"].update(op.options)
                p["external_ids"].update(op.external_ids)
            elif isinstance(op, sysovs.DelPort):
                self.ports.pop(op.name, None)
            elif isinstance(op, sysovs.SetColumns):
                p = self.ports[op.record]
                for col, value in op.columns.items():
                    if isinstance(value, dict):
                        p.setdefault(col, {}).update(value)
                    elif value is not None:
                        p[col] = value
            elif isinstance(op, sysovs.ClearColumns):
                for col in op.columns:
                    self.ports[op.record].pop(col, None)
            else:
                raise AssertionError(f"unexpected op {op!r}")

    def run(
        self, argv: list[str], *, input: str | None = None, check: bool = True, timeout: float | None = None
    ) -> Completed:
        target = next(a for a in argv if a.startswith("unix:/fake/"))
        bridge = target[len("unix:/fake/") : -len(".mgmt")]
        if "dump-flows" in argv:
            table = next((int(a[6:]) for a in argv if a.startswith("table=")), None)
            self.calls.append(f"dump {bridge}" + (f" table={table}" if table is not None else ""))
            return Completed(tuple(argv), 0, self.dump(bridge, table), "")
        assert "add-flows" in argv and "--bundle" in argv and input is not None
        self.calls.append(f"bundle {bridge}")
        self.bundles.append((bridge, input))
        if self.reject_next_bundle:
            self.reject_next_bundle = False
            raise FlowRejected(list(argv), 1, "OFPBFC_MSG_FAILED")
        table = dict(self.flows[bridge])
        for line in input.splitlines():
            verb, _, rest = line.partition(" ")
            if verb == "delete_strict":
                m = re.fullmatch(r"table=(\d+),priority=(\d+),?(.*)", rest)
                assert m, line
                table.pop((int(m[1]), int(m[2]), m[3]), None)
            else:
                assert verb == "add", line
                m = re.fullmatch(r"cookie=(0x[0-9a-f]+),table=(\d+),priority=(\d+),(?:(.*),)?actions=(.*)", rest)
                assert m, line
                table[(int(m[2]), int(m[3]), m[4] or "")] = (int(m[1], 16), m[5])
        self.flows[bridge] = table  # all or nothing, like a bundle
        return Completed(tuple(argv), 0, "", "")

    # -- test helpers ---------------------------------------------------------------------
    def dump(self, bridge: str, table: int | None = None) -> str:
        lines = ["OFPST_FLOW reply (OF1.3) (xid=0x2):"]
        for (t, prio, match), (cookie, actions) in sorted(self.flows.get(bridge, {}).items()):
            if table is None or t == table:
                lines.append(
                    f" cookie={cookie:#x}, {f'table={t}, ' if t else ''}priority={prio}"
                    f"{',' if match else ''}{match} actions={actions}"
                )
        return "\n".join(lines) + "\n"

    def specs(self, bridge: str) -> set[tuple[FlowSpec, int]]:
        return {(FlowSpec(bridge, t, p, m, a), c) for (t, p, m), (c, a) in self.flows[bridge].items()}

    def plug(self, i: int) -> None:
        self.transact(
            [
                sysovs.AddPort(
                    "br-int",
                    f"tap{i}",
                    type="internal",
                    external_ids={"iface-id": f"port-{i}", "attached-mac": f"fa:16:3e:00:00:{i:02x}"},
                )
            ]
        )

    def restart_vswitchd(self) -> None:
        self.pid += 1
        for table in self.flows.values():
            table.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(sw: FakeSwitch, clock: Clock, cookie: int = 0x1, **kw: Any) -> OvsDriver:
    return OvsDriver(CFG, sw, cookie=cookie, monitor=False, clock=clock, **kw)


@pytest.fixture
def switch() -> FakeSwitch:
    sw = FakeSwitch()
    sw.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
    for i in (1, 2, 3):
        sw.plug(i)
    return sw


def planned(drv: OvsDriver) -> dict[str, frozenset[FlowSpec]]:
    return dict(drv._installed)


def test_cold_start_wires_ports_and_a_second_pass_sends_nothing(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    st = state(1, port(1), port(2), port(3))
    assert drv.reconcile_sync(st, True) == {f"port-{i}": "ACTIVE" for i in (1, 2, 3)}
    assert switch.ports["tap1"]["tag"] == 1 and switch.ports["tap1"]["other_config"]["net_uuid"] == "net-1"
    for bridge, want in planned(drv).items():
        assert switch.specs(bridge) == {(f, 0x1) for f in want}
    switch.calls.clear()
    drv.reconcile_sync(state(2, port(1), port(2), port(3)), True)  # applying twice changes nothing
    assert not any(c.startswith(("bundle", "dump")) or c == "transact" for c in switch.calls), switch.calls


def test_incremental_pass_sends_only_the_new_ports_flows_and_reads_nothing(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    drv.reconcile_sync(state(1, port(1), port(2), port(3)), True)
    before = {b: set(f) for b, f in switch.flows.items()}
    switch.plug(4)
    switch.calls.clear()
    switch.bundles.clear()
    statuses = drv.reconcile_sync(state(2, port(1), port(2), port(3), port(4)), True)
    assert statuses["port-4"] == "ACTIVE"
    assert not any(c.startswith("dump") for c in switch.calls), switch.calls
    ((bridge, text),) = switch.bundles
    assert bridge == "br-int" and "delete_strict" not in text
    # Only flows of the new port (its reg5 / in_port / MAC), plus the address of the new
    # member of "sg" in the remote-group address set.
    ofport = switch.ports["tap4"]["ofport"]
    for line in text.splitlines():
        assert (
            f"reg5=0x{ofport:x}" in line
            or f"in_port={ofport}" in line
            or "fa:16:3e:00:00:04" in line
            or "nw_src=10.0.0.4" in line
        ), line
    assert before["br-int"] < set(switch.flows["br-int"])
    for bridge, want in planned(drv).items():
        assert switch.specs(bridge) == {(f, 0x1) for f in want}


def test_restart_restamps_every_flow_in_one_bundle_and_drops_stale_ones(switch: FakeSwitch) -> None:
    clock = Clock()
    first = make(switch, clock, cookie=0x1)
    st = state(1, port(1), port(2), port(3))
    first.reconcile_sync(st, True)
    want = planned(first)
    switch.flows["br-int"][(60, 7, "dl_dst=fa:16:3e:de:ad:00")] = (0xDEAD, "drop")  # left by a crashed run
    switch.flows["br-tun"][(20, 1, "dl_dst=fa:16:3e:00:00:99")] = (LEARNED_FLOW_COOKIE, "output:9")
    switch.bundles.clear()
    second = make(switch, clock, cookie=0x2)
    second.reconcile_sync(st, True)
    bridges = [b for b, _ in switch.bundles]
    assert len(bridges) == len(set(bridges)) == len(want)
    for bridge, text in switch.bundles:  # one bundle per bridge: replaced in place, never deleted first
        deletes = [ln for ln in text.splitlines() if ln.startswith("delete")]
        assert deletes == (["delete_strict table=60,priority=7,dl_dst=fa:16:3e:de:ad:00"] if bridge == "br-int" else [])
    for bridge, flows in want.items():
        learned = {(FlowSpec("br-tun", 20, 1, "dl_dst=fa:16:3e:00:00:99", "output:9"), LEARNED_FLOW_COOKIE)}
        assert switch.specs(bridge) == {(f, 0x2) for f in flows} | (learned if bridge == "br-tun" else set())


def test_vswitchd_restart_is_repaired_by_the_next_pass(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    drv.reconcile_sync(state(1, port(1), port(2), port(3)), True)
    want = planned(drv)
    switch.restart_vswitchd()  # all flows gone, a new pid
    switch.plug(4)
    drv.reconcile_sync(state(2, port(1), port(2), port(3), port(4)), True)
    assert drv.full_passes == 2
    assert {f for f, _ in switch.specs("br-int")} == planned(drv)["br-int"] > want["br-int"]


def test_idle_tick_checks_the_canary(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    st = state(1, port(1), port(2), port(3))
    drv.reconcile_sync(st, True)
    switch.calls.clear()
    drv.reconcile_sync(st, False)
    assert switch.calls == ["dump br-int table=23"]
    for table in switch.flows.values():  # flows lost, same pid (e.g. del-flows)
        table.clear()
    drv.reconcile_sync(st, False)
    assert drv.full_passes == 2 and {f for f, _ in switch.specs("br-int")} == planned(drv)["br-int"]


def test_changes_behind_the_agents_back_are_repaired_by_the_periodic_full_pass(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    drv.reconcile_sync(state(1, port(1), port(2), port(3)), True)
    key = next(k for k in switch.flows["br-int"] if k[0] == 71)
    del switch.flows["br-int"][key]  # someone deleted one of our flows
    switch.flows["br-int"][(71, 5, "ip,reg5=0x63")] = (0x1, "drop")  # ... and added one with our cookie
    drv.reconcile_sync(state(2, port(1), port(2), port(3)), True)
    assert key not in switch.flows["br-int"]  # the memory still believes all is well
    clock.now += REREAD_EVERY
    drv.reconcile_sync(state(3, port(1), port(2), port(3)), True)
    assert {f for f, _ in switch.specs("br-int")} == planned(drv)["br-int"]


def test_periodic_full_pass_of_an_unchanged_switch_parses_nothing(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    drv.reconcile_sync(state(1, port(1), port(2), port(3)), True)
    parsed = drv.dumps_parsed
    switch.calls.clear()
    switch.bundles.clear()
    clock.now += REREAD_EVERY
    drv.reconcile_sync(state(2, port(1), port(2), port(3)), True)
    assert drv.full_passes == 2 and drv.dumps_parsed == parsed and switch.bundles == []
    assert sorted(c for c in switch.calls if c.startswith("dump")) == ["dump br-int", "dump br-tun"]


def test_a_rejected_bundle_leaves_no_memory_behind(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    drv.reconcile_sync(state(1, port(1), port(2), port(3)), True)
    switch.plug(4)
    switch.reject_next_bundle = True
    with pytest.raises(FlowRejected):
        drv.reconcile_sync(state(2, port(1), port(2), port(3), port(4)), True)
    switch.calls.clear()
    drv.reconcile_sync(state(3, port(1), port(2), port(3), port(4)), True)
    assert "dump br-int" in switch.calls and drv.full_passes == 2
    assert {f for f, _ in switch.specs("br-int")} == planned(drv)["br-int"]


def test_a_plugged_vif_is_noticed_between_feed_changes(switch: FakeSwitch) -> None:
    clock = Clock()
    drv = make(switch, clock)
    st = state(1, port(1), port(2), port(3), port(4))
    assert drv.reconcile_sync(st, True)["port-4"] == "DOWN"  # desired, VIF not plugged yet
    switch.plug(4)
    assert drv.reconcile_sync(st, False)["port-4"] == "ACTIVE"  # a tick, feed unchanged


def f(table: int, prio: int, match: str, actions: str) -> FlowSpec:
    return FlowSpec("br-int", table, prio, match, actions)


def test_flow_changes_against_memory_and_against_a_dump() -> None:
    a, b, b2, c = (
        f(0, 1, "in_port=1", "drop"),
        f(0, 2, "in_port=2", "NORMAL"),
        f(0, 2, "in_port=2", "drop"),
        f(60, 3, "", "NORMAL"),
    )
    add, delete = flow_changes(frozenset({a, b2}), frozenset({a, b, c}))
    assert add == {b2} and delete == [c]  # b is replaced by b2's add, not deleted
    learned = f(20, 1, "dl_dst=fa:16:3e:00:00:01", "output:3")
    dumped = [(a, 0x9), (b, 0x1), (c, 0x1), (learned, LEARNED_FLOW_COOKIE)]
    add, delete = flow_changes(frozenset({a, b}), dumped=dumped, cookie=0x1)
    assert add == {a} and delete == [c]  # a re-stamped; the learned flow left alone
