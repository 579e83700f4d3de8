"""L3 agent: routers that are administratively down.

Such a router keeps its namespace and its plugged ``qr-``/``qg-`` devices (the
L2 agent wires their ports, which become ACTIVE) but forwards nothing: no
address on its devices, no route, forwarding sysctls off, the admin-down
ruleset (no NAT, INPUT/FORWARD dropped) and no metadata proxy.  Going up again
restores everything.  Planner scenarios use the in-memory ``World`` of
``test_l3_planner``; executor ones the fake host of ``test_l3_agent``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from neutrino.agents.l3 import render
from neutrino.agents.l3.model import L3Config, namespace_name
from neutrino.agents.l3.planner import (
    ApplyRules,
    EnsureNamespace,
    FlushConntrack,
    Garp,
    PlugInterface,
    SetAddresses,
    SetRoutes,
    SetSysctls,
    Teardown,
    UnplugInterface,
    floatingip_statuses,
)
from tests.unit.test_l3_agent import CFG, FakeHost, _driver, _feed, _state, fake_host_fixture  # noqa: F401 - registers the `host` fixture here
from tests.unit.test_l3_planner import NET, QG, QR, QR2, QR_PORT, QR_PORT2, R1, SUB, World, kernel_save, kinds


def _world(admin_up: bool = True, cfg: L3Config | None = None) -> World:
    """A router with a gateway (SNAT), two interfaces and a floating IP with a port forwarding."""
    w = World(cfg)
    w.add_router(gateway=True)
    w.routers[R1]["admin_state_up"] = admin_up
    w.add_interface()
    w.add_interface(QR_PORT2, "net-2", "sub-2", "10.1.0.1")
    w.add_fip("fip-1", "172.24.4.50", "10.0.0.5", "vm-1")
    w.add_fip(
        "fip-2",
        "172.24.4.51",
        pfs=[
            {
                "id": "pf-1",
                "protocol": "tcp",
                "internal_ip_address": "10.1.0.7",
                "internal_port": 22,
                "external_port": 2222,
            }
        ],
    )
    return w


def _rules(w: World) -> str:
    return w.host[R1].iptables


# --- render ------------------------------------------------------------------------------
@pytest.mark.parametrize("comment", [True, False])
def test_admin_down_ruleset_has_no_nat_and_drops_input_and_forward(comment: bool) -> None:
    w = _world(admin_up=False, cfg=L3Config("net1", comment_iptables_rules=comment))
    text = render.iptables_ruleset(w.cfg, w.desired()[R1])
    tables = render.parse_iptables_save(text)
    assert set(tables) == set(render.TABLES)
    for name in ("nat", "mangle", "raw"):  # builtins only: no NAT, no metadata mark or redirect
        assert tables[name] == render.empty_table(name), name
    chain = "neutron-l3-agent-admin-down"
    flt = tables["filter"]
    assert flt.chain_rules("INPUT") == (f"-j {chain}",)
    assert flt.chain_rules("FORWARD") == (f"-j {chain}",)
    assert flt.chain_rules("OUTPUT") == ()
    drop = '-m comment --comment "Router is administratively down." -j DROP' if comment else "-j DROP"
    assert flt.chain_rules(chain) == (drop,)
    assert render.is_admin_down_ruleset(text) and render.is_admin_down_ruleset(kernel_save(text))
    up = render.iptables_ruleset(w.cfg, _world().desired()[R1])
    assert not render.is_admin_down_ruleset(up) and not render.is_admin_down_ruleset("")
    assert "DNAT" in up and "SNAT" in up and "REDIRECT" in up


# --- planner -----------------------------------------------------------------------------
def test_router_created_down_plugs_its_ports_and_forwards_nothing() -> None:
    w = _world(admin_up=False)
    ops = w.converge()
    assert kinds(ops) == ["EnsureNamespace", "PlugInterface", "PlugInterface", "PlugInterface", "ApplyRules"]
    ens = ops[0]
    assert isinstance(ens, EnsureNamespace)
    assert dict(ens.sysctls)["net.ipv4.ip_forward"] == "0"
    assert {op.device for op in ops if isinstance(op, PlugInterface)} == {QG, QR, QR2}
    obs = w.host[R1]
    assert set(obs.devices) == {QG, QR, QR2}
    assert all(not d.addresses for d in obs.devices.values())  # nothing answers ARP for them
    assert obs.routes == frozenset()
    assert render.is_admin_down_ruleset(_rules(w)) and obs.floating_ips == {}
    assert floatingip_statuses(w.desired()) == {"fip-1": "DOWN", "fip-2": "DOWN"}


def test_down_then_up_then_down() -> None:
    w = _world()
    w.converge()
    up_rules = _rules(w)
    up_devices = w.host[R1].devices
    up_routes = w.host[R1].routes
    assert w.sysctls[R1]["net.ipv4.ip_forward"] == "1"

    w.routers[R1]["admin_state_up"] = False
    ops = w.converge()
    # forwarding goes off first; the devices stay (no unplug, no teardown); the ruleset records the mode
    assert ops[0] == SetSysctls(R1, (("net.ipv4.ip_forward", "0"),))
    assert not any(isinstance(op, (Teardown, UnplugInterface, PlugInterface, EnsureNamespace)) for op in ops)
    assert {op.device for op in ops if isinstance(op, SetAddresses)} == {QG, QR, QR2}
    assert all(op.cidrs == () for op in ops if isinstance(op, SetAddresses))
    routes = next(op for op in ops if isinstance(op, SetRoutes))
    assert routes.routes() == () and routes.stale
    assert kinds(ops).index("SetSysctls") < kinds(ops).index("ApplyRules")
    # the conntrack entries of the floating IPs' NAT go with it
    assert next(op for op in ops if isinstance(op, FlushConntrack)).ips == ("172.24.4.50", "172.24.4.51")
    assert w.sysctls[R1]["net.ipv4.ip_forward"] == "0"
    assert set(w.host[R1].devices) == {QG, QR, QR2}
    assert render.is_admin_down_ruleset(_rules(w))

    w.routers[R1]["admin_state_up"] = True
    ops = w.converge()
    assert ops[0] == SetSysctls(R1, (("net.ipv4.ip_forward", "1"),))
    assert kinds(ops).index("SetSysctls") < kinds(ops).index("ApplyRules")
    assert w.sysctls[R1]["net.ipv4.ip_forward"] == "1"
    assert w.host[R1].devices == up_devices and w.host[R1].routes == up_routes
    assert render.same_ruleset(_rules(w), up_rules)
    # the addresses come back on devices that are wired already: neighbours are told
    garps = {op.device: op.ips for op in ops if isinstance(op, Garp)}
    assert garps == {QG: ("172.24.4.10", "172.24.4.50", "172.24.4.51"), QR: ("10.0.0.1",), QR2: ("10.1.0.1",)}
    assert floatingip_statuses(w.desired()) == {"fip-1": "ACTIVE", "fip-2": "ACTIVE"}

    w.routers[R1]["admin_state_up"] = False
    assert kinds(w.converge())[0] == "SetSysctls"
    assert render.is_admin_down_ruleset(_rules(w))


def test_changes_while_down_keep_it_down() -> None:
    w = _world(admin_up=False)
    w.converge()
    # a new interface is plugged (and wired), still without an address; a removed one goes
    del w.ports[QR_PORT2]
    w.add_interface("dddddddd-dddd-4ddd-8ddd-dddddddddddd", NET, SUB, "10.0.0.99")
    ops = w.converge()
    assert kinds(ops) == ["UnplugInterface", "PlugInterface"]
    # a new floating IP changes nothing on the host
    w.add_fip("fip-3", "172.24.4.52", "10.0.0.6", "vm-3")
    assert w.plan() == []


@pytest.mark.parametrize("going_up", [False, True])
def test_an_interrupted_switch_is_redone(going_up: bool) -> None:
    w = _world(admin_up=not going_up)
    w.converge()
    w.routers[R1]["admin_state_up"] = going_up
    ops = w.plan()
    w.apply([op for op in ops if not isinstance(op, ApplyRules)])  # the agent died before the rules
    again = w.plan()
    assert kinds(again) == ["SetSysctls", "ApplyRules"] + ([] if going_up else ["FlushConntrack"])
    w.apply(again)
    assert w.plan() == []
    assert w.sysctls[R1]["net.ipv4.ip_forward"] == ("1" if going_up else "0")


def test_lost_rules_of_a_down_router_switch_forwarding_off_again() -> None:
    from dataclasses import replace

    w = _world(admin_up=False)
    w.converge()
    w.host[R1] = replace(w.host[R1], iptables="")
    w.sysctls[R1]["net.ipv4.ip_forward"] = "1"
    assert kinds(w.converge()) == ["SetSysctls", "ApplyRules"]
    assert w.sysctls[R1]["net.ipv4.ip_forward"] == "0"


def test_ipv6_forwarding_off_too() -> None:
    w = World()
    w.subnets["v6"] = {
        "id": "v6",
        "network_id": NET,
        "cidr": "2001:db8::/64",
        "ip_version": 6,
        "gateway_ip": "2001:db8::1",
    }
    w.add_router()
    w.add_port(QR_PORT, NET, "fa:16:3e:bb:bb:bb", [("v6", "2001:db8::1")], "network:router_interface")
    w.converge()
    w.routers[R1]["admin_state_up"] = False
    ops = w.converge()
    assert ops[0] == SetSysctls(R1, (("net.ipv4.ip_forward", "0"), ("net.ipv6.conf.all.forwarding", "0")))
    assert w.host[R1].devices[QR].addresses == frozenset()


def test_deleting_a_down_router_tears_it_down() -> None:
    w = _world(admin_up=False)
    w.converge()
    del w.routers[R1]
    assert w.converge() == [Teardown(R1, (QG, QR, QR2))]


# --- executor ----------------------------------------------------------------------------
class FakeMetadata:
    """Proxies by router id (``ensure_router``/``stop``/``running`` as ``MetadataProxies``)."""

    def __init__(self) -> None:
        self.running_ids: set[str] = set()
        self.stopped: list[str] = []

    def ensure_router(self, rid: str, ns: str) -> str:
        self.running_ids.add(rid)
        return "conf"

    def stop(self, rid: str, ns: str | None = None) -> None:
        self.running_ids.discard(rid)
        self.stopped.append(rid)

    def running(self, rid: str) -> bool:
        return rid in self.running_ids


def test_agent_switches_a_router_down_and_up(tmp_path: Path, host: FakeHost) -> None:
    feed = _feed(2)
    rids = sorted(feed["router"])
    clock = [1000.0]
    drv = _driver(tmp_path, host, clock=lambda: clock[0])
    md = FakeMetadata()
    drv.metadata = md

    def reconcile() -> None:
        clock[0] += 1
        asyncio.run(drv.reconcile(_state(feed), True))

    reconcile()
    assert md.running_ids == set(rids)
    down, other = rids
    st = host.ns[namespace_name(down)]
    gw = drv.applied[down].gateway
    assert gw is not None and st.sysctls["net.ipv4.ip_forward"] == "1" and st.routes

    feed["router"][down]["admin_state_up"] = False
    reconcile()
    st = host.ns[namespace_name(down)]  # still there, devices plugged, nothing configured
    assert set(st.devices) == {p.device for p in drv.applied[down].ports}
    assert all(not d.addrs for d in st.devices.values()) and not st.routes
    assert st.sysctls["net.ipv4.ip_forward"] == "0"
    assert render.is_admin_down_ruleset(st.iptables)
    assert md.running_ids == {other} and md.stopped == [down]
    assert drv.counts["interfaces"] == 2 and not drv.problems
    reconcile()  # idempotent: nothing more to stop or change
    assert md.stopped == [down]

    feed["router"][down]["admin_state_up"] = True
    reconcile()
    st = host.ns[namespace_name(down)]
    assert st.sysctls["net.ipv4.ip_forward"] == "1" and st.routes
    assert f"{gw.first_v4}/16" in st.devices[gw.device].addrs
    assert not render.is_admin_down_ruleset(st.iptables)
    assert md.running_ids == set(rids)
