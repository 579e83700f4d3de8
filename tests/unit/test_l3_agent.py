"""L3 agent executor against an in-memory host (``neutrino.fakes.host.FakeHost``, injected).

The fake host plays the kernel and OVS the way the adapters see them: namespaces
holding devices (MAC, MTU, up, addresses), routes and an iptables ruleset; ``ip``
batch lines are interpreted (a deletion of something absent fails as ``ip`` does)
and every call is recorded as one process.  The tests drive the real
planner and the real ``observe`` through it: a pass converges (planning again
yields nothing), costs a fixed number of processes per router plus a few shared
ones, falls back op by op when a batch line fails, and tears down in bulk.
Also: gratuitous ARPs in the background, observation from one ``ip`` batch.
"""

from __future__ import annotations

import ipaddress
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from neutrino.agents.interface import InterfaceDriver, NewPort
from neutrino.agents.l3.agent import L3Driver
from neutrino.agents.l3.garp import GarpSender
from neutrino.agents.l3.ip_lines import ip_commands
from neutrino.agents.l3.model import L3Config, RouterView, gateway_name, internal_name, namespace_name, router_views
from neutrino.agents.l3.planner import ApplyRules, Garp, PlugInterface, Route, SetAddresses, SetRoutes, Teardown, plan
from neutrino.fakes.host import Dev, FakeHost, Ns
from neutrino.feed.state import State
from neutrino.system import errors, iproute

CFG = L3Config(host="h1")


# --- the in-memory host: neutrino.fakes.host.FakeHost ----------------------------------------
class FakeIface:
    """``InterfaceDriver`` on the fake host, one process per plug (OVS ports are names in
    ``ports``; devices appear in a namespace)."""

    link_command = staticmethod(InterfaceDriver.link_command)

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.ports: set[str] = set()
        self.fail_create = False
        self.fail_unplug_all = False
        self.fail_set_addresses = False
        self.finished: set[str] = set()

    def set_addresses(self, name: str, namespace: str, cidrs: Iterable[str]) -> None:
        """On ``self.host``, as the real one (unless ``fail_set_addresses``)."""
        if self.fail_set_addresses:
            raise RuntimeError("boom")
        InterfaceDriver.set_addresses(self, name, namespace, cidrs)  # duck-typed: it uses self.host only

    def create_all(self, ports: Sequence[NewPort]) -> list[NewPort]:
        self.host.call("ovs-vsctl", None)
        if self.fail_create:
            raise errors.OvsdbError(["ovs-vsctl"], 1, "ovs-vsctl: transaction error")
        self.ports.update(p.name for p in ports)
        self.host.call("ip -batch", None)
        failed = [p for p in ports if p.namespace not in self.host.ns]
        for p in ports:
            if p not in failed:
                self.host.ns[p.namespace].devices[p.name] = Dev(mac=p.mac, mtu=p.mtu)
        return failed

    def finish(self, name: str, namespace: str) -> None:
        self.host.call("ethtool", namespace)
        assert name in self.host.ns[namespace].devices
        self.finished.add(name)

    def plug(self, name: str, port_id: str, mac: str, mtu: int, namespace: str) -> None:
        self.host.call("plug", namespace)
        st = self.host.ns.setdefault(namespace, Ns(lo_up=True))
        if name not in st.devices:
            self.finished.add(name)  # plug finishes the devices it makes
        self.ports.add(name)
        st.devices[name] = Dev(mac, mtu, True, st.devices.get(name, Dev()).addrs)

    def unplug(self, name: str, namespace: str | None = None) -> None:
        self.host.call("unplug", namespace)
        self._drop([name])

    def unplug_all(self, names: Sequence[str]) -> None:
        self.host.call("ovs-vsctl", None)
        if self.fail_unplug_all:
            raise errors.OvsdbError(["ovs-vsctl"], 1, "ovs-vsctl: transaction error")
        self._drop(names)

    def _drop(self, names: Sequence[str]) -> None:
        for name in names:
            self.ports.discard(name)
            for st in self.host.ns.values():
                if st.devices.pop(name, None) is not None:
                    # the kernel drops the routes through a deleted device
                    for dst in [d for d, r in st.routes.items() if r.device == name]:
                        del st.routes[dst]


@pytest.fixture(name="host")
def fake_host_fixture(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """The fake host; a real command (a path that bypassed it) fails the test."""

    def forbidden(argv: Any, *a: Any, **kw: Any) -> None:
        raise AssertionError(f"a unit test ran a real command: {argv}")

    monkeypatch.setattr(subprocess, "run", forbidden)
    return FakeHost()


# --- feed-shaped routers -----------------------------------------------------------------------
def _routers(n: int, *, fips: int = 1, extra: list[dict[str, str]] | None = None) -> dict[str, RouterView]:
    f = _feed(n, fips=fips, extra=extra)
    return router_views(f["router"], f["port"], f["subnet"], f["network"], f["floatingip"], CFG)


def _state(feed: dict[str, Any], rev: int = 1) -> State:
    feed = {**feed, "l3_binding": {r: {"id": r, "router_id": r, "hosts": [CFG.host]} for r in feed["router"]}}
    return State(rev, feed, frozenset(feed))


def _feed(n: int, *, fips: int = 1, extra: list[dict[str, str]] | None = None) -> dict[str, Any]:
    nets = {"ext": {"id": "ext", "mtu": 1500}}
    subs = {
        "ext-sub": {
            "id": "ext-sub",
            "network_id": "ext",
            "cidr": "172.24.0.0/16",
            "ip_version": 4,
            "gateway_ip": "172.24.0.1",
        }
    }
    ports: dict[str, Any] = {}
    routers: dict[str, Any] = {}
    fipd: dict[str, Any] = {}
    for i in range(n):
        rid = f"{i:08x}-0000-4000-8000-000000000000"
        gw = f"{i:08x}-1111-4000-8000-000000000000"
        qr = f"{i:08x}-2222-4000-8000-000000000000"
        net, sub = f"net-{i}", f"sub-{i}"
        nets[net] = {"id": net, "mtu": 1450}
        subs[sub] = {
            "id": sub,
            "network_id": net,
            "cidr": f"10.{i}.0.0/24",
            "ip_version": 4,
            "gateway_ip": f"10.{i}.0.1",
        }
        routers[rid] = {
            "id": rid,
            "admin_state_up": True,
            "routes": extra or [],
            "gw_port_id": gw,
            "interface_port_ids": [qr],
            "external_gateway_info": {
                "network_id": "ext",
                "enable_snat": True,
                "external_fixed_ips": [{"subnet_id": "ext-sub", "ip_address": f"172.24.1.{i + 1}"}],
            },
        }
        ports[gw] = {
            "id": gw,
            "network_id": "ext",
            "mac_address": f"fa:16:3e:01:00:{i:02x}",
            "device_id": rid,
            "device_owner": "network:router_gateway",
            "admin_state_up": True,
            "fixed_ips": [{"subnet_id": "ext-sub", "ip_address": f"172.24.1.{i + 1}"}],
        }
        ports[qr] = {
            "id": qr,
            "network_id": net,
            "mac_address": f"fa:16:3e:02:00:{i:02x}",
            "device_id": rid,
            "device_owner": "network:router_interface",
            "admin_state_up": True,
            "fixed_ips": [{"subnet_id": sub, "ip_address": f"10.{i}.0.1"}],
        }
        for k in range(fips):
            fipd[f"fip-{i}-{k}"] = {
                "id": f"fip-{i}-{k}",
                "floating_ip_address": f"172.24.2{k}.{i + 1}",
                "router_id": rid,
                "port_id": f"vm-{i}-{k}",
                "fixed_ip_address": f"10.{i}.0.{10 + k}",
                "port_forwardings": [],
            }
    return {"router": routers, "port": ports, "subnet": subs, "network": nets, "floatingip": fipd}


def _driver(tmp_path: Path, host: FakeHost, clock: Callable[[], float] = time.monotonic) -> L3Driver:
    return L3Driver(CFG, FakeIface(host), tmp_path / "l3", host=host, clock=clock)


def _pass(drv: L3Driver, views: dict[str, RouterView]) -> list[Any]:
    ops = plan(CFG, views, drv.observe())
    drv.apply_all(ops)
    return ops


# --- the executor ----------------------------------------------------------------------------------
def test_cold_pass_converges_with_four_commands_per_router_and_a_device(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(4, fips=2)
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    assert drv.garps.wait(5)
    # shared steps: the namespaces (one batch), the devices (one batch) and their OVS ports (one transaction)
    assert host.count("ovs-vsctl") == 1 and host.count("plug") == 0
    assert [w for w, ns in host.calls if ns is None] == ["ip -batch", "ovs-vsctl", "ip -batch"]
    per_ns = {ns: [w for w, n in host.calls if n == ns] for ns in (namespace_name(r) for r in views)}
    for ns, calls in per_ns.items():
        # no arping: new devices are isolated until the OVS agent wires them
        assert sorted(calls) == sorted(["sysctl", "ip -batch", "iptables-restore", "ethtool", "ethtool"]), ns
        assert calls.index("sysctl") == 0  # before any device
    assert len(host.calls) == 3 + 5 * len(views)
    assert drv.iface.finished == {p.device for v in views.values() for p in v.ports}
    for rid, view in views.items():
        st = host.ns[namespace_name(rid)]
        assert st.lo_up and st.sysctls["net.ipv4.ip_forward"] == "1"
        assert (tmp_path / "l3" / rid).exists()
        for port in view.ports:
            dev = st.devices[port.device]
            assert (dev.mac, dev.mtu, dev.up) == (port.mac, port.mtu, True)
        assert len(st.devices[view.gateway.device].addrs) == 3  # type: ignore[union-attr] # gateway IP + 2 FIPs
        assert set(st.routes) == {"0.0.0.0/0"}
    # converged: observing and planning again yields nothing
    host.calls.clear()
    assert plan(CFG, views, drv.observe()) == []
    assert {w for w, _ in host.calls} == {"ip -batch", "iptables-save"}


def test_drift_is_repaired_from_the_planned_differences(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(
        2,
        extra=[
            {"destination": "192.168.0.0/16", "nexthop": "10.0.0.253"},
            {"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"},
        ],
    )
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    rid = next(iter(views))
    st = host.ns[namespace_name(rid)]
    qg = views[rid].gateway.device
    assert st.routes["192.168.0.0/16"].nexthops == ("10.0.0.253", "10.0.0.254")  # ECMP, observed as such
    assert plan(CFG, views, drv.observe()) == []
    st.devices[qg].addrs.add("172.24.9.9/32")
    st.devices[qg].mtu = 9000
    st.routes["10.99.0.0/16"] = Route("10.99.0.0/16", ("172.24.0.7",))
    del st.routes["0.0.0.0/0"]
    host.calls.clear()
    ops = _pass(drv, views)
    assert [type(op).__name__ for op in ops] == ["PlugInterface", "SetAddresses", "SetRoutes"]
    assert host.count("ip -batch") == 2 + 1  # observing both routers + the one repair batch
    assert host.count("plug") == 1  # the MTU of an existing device: both veth ends
    assert "ip addr show" not in {w for w, _ in host.calls}  # nothing observed twice
    assert st.devices[qg].mtu == 1500 and "172.24.9.9/32" not in st.devices[qg].addrs
    assert set(st.routes) == {"0.0.0.0/0", "192.168.0.0/16"}
    assert plan(CFG, views, drv.observe()) == []


def test_a_failed_batch_line_falls_back_to_op_by_op(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(2)
    rid = sorted(views)[1]
    qr = views[rid].interfaces[0].device
    host.fail_once.add(f"addr replace 10.1.0.1/24 dev {qr}")
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    # that router's device/address/route ops were applied again one by one, the other's not
    assert [ns for w, ns in host.calls if w == "ip addr show"] == [namespace_name(rid)] * 2
    assert [ns for w, ns in host.calls if w == "ip route show"] == [namespace_name(rid)] * 2
    assert [ns for w, ns in host.calls if w == "plug"] == [namespace_name(rid)] * 2
    assert drv.iface.finished == {p.device for v in views.values() for p in v.ports}
    assert plan(CFG, views, drv.observe()) == []


def test_deleting_what_is_already_gone_is_no_failure(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(1)
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    st = host.ns[namespace_name(next(iter(views)))]
    st.routes["10.77.0.0/16"] = Route("10.77.0.0/16", ("172.24.0.9",))
    qg = next(iter(views.values())).gateway.device
    st.devices[qg].addrs.add("172.24.9.9/32")
    ops = plan(CFG, views, drv.observe())
    # ... gone between observing and applying (e.g. the kernel dropped them with a device)
    del st.routes["10.77.0.0/16"]
    st.devices[qg].addrs.discard("172.24.9.9/32")
    host.calls.clear()
    drv.apply_all(ops)
    assert [w for w, _ in host.calls] == ["ip -batch"]  # no fallback
    assert plan(CFG, views, drv.observe()) == []


def test_ovs_failure_falls_back_to_plugging_each_port(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(3)
    drv = _driver(tmp_path, host)
    drv.iface.fail_create = True
    _pass(drv, views)
    assert host.count("plug") == 6 and host.count("ethtool") == 0  # plug finished them
    assert drv.iface.finished == {p.device for v in views.values() for p in v.ports}
    assert plan(CFG, views, drv.observe()) == []


def test_teardown_in_bulk_before_the_other_routers(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(5)
    rids = sorted(views)
    drv = _driver(tmp_path, host)
    _pass(drv, {r: views[r] for r in rids[:4]})
    gone, keep = rids[:3], {r: views[r] for r in rids[3:]}  # the last one is new
    ops = plan(CFG, keep, drv.observe())
    host.calls.clear()
    drv.apply_all(ops)
    assert [op for op in ops if isinstance(op, Teardown)] == [
        Teardown(r, tuple(sorted(p.device for p in views[r].ports))) for r in gone
    ]
    # all ports in one transaction, all namespaces in one batch, before anything else
    assert [w for w, _ in host.calls[:2]] == ["ovs-vsctl", "ip -batch"] and host.count("ovs-vsctl") == 2
    assert set(host.ns) == {namespace_name(r) for r in keep}
    assert sorted(p.name for p in (tmp_path / "l3").iterdir()) == sorted(keep)
    assert not any(p.device in drv.iface.ports for r in gone for p in views[r].ports)
    assert plan(CFG, keep, drv.observe()) == []


def test_teardown_falls_back_to_each_router_when_the_ports_cannot_go_at_once(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(2)
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    ops = plan(CFG, {}, drv.observe())
    drv.iface.fail_unplug_all = True
    assert drv.apply_all(ops) == set()  # each router's own teardown did it
    assert host.count("unplug") == 4 and host.ns == {} and drv.iface.ports == set()
    assert not list((tmp_path / "l3").iterdir())


def test_one_routers_failure_does_not_stop_its_next_ops_or_others(tmp_path: Path, host: FakeHost) -> None:
    drv = _driver(tmp_path, host)
    _pass(drv, _routers(3))
    views = _routers(3, fips=2)  # one more floating IP each: addresses, rules, a GARP
    bad = namespace_name(sorted(views)[0])

    host.faults[("iptables-restore", bad)] = errors.IptablesError(
        ["iptables-restore"], 1, "iptables-restore: line 3 failed"
    )
    host.calls.clear()
    ops = _pass(drv, views)
    assert [type(op).__name__ for op in ops if op.router_id == sorted(views)[0]] == [
        "SetAddresses",
        "ApplyRules",
        "Garp",
    ]
    assert drv.garps.wait(5)
    assert [ns for w, ns in host.calls if w == "arping"].count(bad) == 1  # its GARP still went
    assert all(host.ns[namespace_name(r)].iptables for r in sorted(views)[1:])
    del host.faults[("iptables-restore", bad)]
    assert [type(op).__name__ for op in plan(CFG, views, drv.observe())] == ["ApplyRules"]


def test_passes_look_only_at_changed_or_failed_routers_between_full_ones(tmp_path: Path, host: FakeHost) -> None:
    import asyncio

    feed = _feed(3)
    rids = sorted(feed["router"])
    clock = [1000.0]
    drv = _driver(tmp_path, host, clock=lambda: clock[0])

    def reconcile(feed: dict[str, Any]) -> list[str | None]:
        host.calls.clear()
        asyncio.run(drv.reconcile(_state(feed), True))
        return sorted({ns for w, ns in host.calls if w == "iptables-save"}, key=str)

    assert reconcile(feed) == []  # first pass: full (nothing to observe yet)
    assert set(drv.applied) == set(rids)
    clock[0] += 1
    assert reconcile(feed) == [] and host.calls == []  # nothing changed: no command at all
    # one floating IP more on the second router: only that one is observed and changed
    feed["floatingip"]["fip-1-9"] = {
        **feed["floatingip"]["fip-1-0"],
        "id": "fip-1-9",
        "floating_ip_address": "172.24.29.2",
        "fixed_ip_address": "10.1.0.99",
    }
    clock[0] += 1
    assert reconcile(feed) == [namespace_name(rids[1])]
    assert "172.24.29.2/32" in host.ns[namespace_name(rids[1])].devices[drv.applied[rids[1]].gateway.device].addrs
    # a failing router is retried by the next pass even though its view did not change again
    feed["floatingip"]["fip-2-9"] = {
        **feed["floatingip"]["fip-2-0"],
        "id": "fip-2-9",
        "floating_ip_address": "172.24.29.3",
        "fixed_ip_address": "10.2.0.99",
    }
    host.fail_once.add(f"addr replace 172.24.29.3/32 dev {drv.applied[rids[2]].gateway.device}")
    drv.iface.fail_set_addresses = True  # ... and its op-by-op fallback too
    clock[0] += 1
    assert reconcile(feed) == [namespace_name(rids[2])] and drv.retry == {rids[2]}
    drv.iface.fail_set_addresses = False
    clock[0] += 1
    assert reconcile(feed) == [namespace_name(rids[2])] and drv.retry == set()
    clock[0] += 1
    assert reconcile(feed) == []
    # drift behind the agent's back is repaired by the next full pass
    st = host.ns[namespace_name(rids[0])]
    st.iptables = ""
    clock[0] += 1
    reconcile(feed)
    assert st.iptables == ""
    clock[0] += drv.FULL_SYNC_INTERVAL
    assert reconcile(feed) == [namespace_name(r) for r in rids]
    assert st.iptables != ""
    # a router removed from the feed is torn down by an incremental pass
    del feed["router"][rids[0]]
    clock[0] += 1
    assert reconcile(feed) == [namespace_name(rids[0])]
    assert namespace_name(rids[0]) not in host.ns and rids[0] not in drv.applied


def test_ip_commands() -> None:
    assert ip_commands(PlugInterface("r", "qr-1", "p", "fa:16:3e:00:00:01", 1450, "qr")) == [
        ["link", "set", "dev", "qr-1", "mtu", "1450", "address", "fa:16:3e:00:00:01", "up"]
    ]
    assert ip_commands(
        SetAddresses("r", "qg-1", ("172.24.4.5/24", "172.24.4.9/32"), add=("172.24.4.9",), remove=("172.24.4.7/32",))
    ) == [["addr", "del", "172.24.4.7/32", "dev", "qg-1"], ["addr", "replace", "172.24.4.9/32", "dev", "qg-1"]]
    op = SetRoutes(
        "r",
        "qg-1",
        ("172.24.5.1",),
        (Route("192.168.0.0/16", ("10.0.0.254", "10.0.0.253")),),
        onlink=("172.24.5.1",),
        stale=(Route("0.0.0.0/0", ("172.24.4.1",)), Route("10.9.0.0/16", (), "qr-2")),
    )
    assert ip_commands(op) == [
        ["route", "del", "0.0.0.0/0", "via", "172.24.4.1"],
        ["route", "del", "10.9.0.0/16", "dev", "qr-2"],
        ["route", "replace", "172.24.5.1/32", "dev", "qg-1"],
        ["route", "replace", "0.0.0.0/0", "via", "172.24.5.1"],
        ["route", "replace", "192.168.0.0/16", "nexthop", "via", "10.0.0.253", "nexthop", "via", "10.0.0.254"],
    ]
    with pytest.raises(TypeError):
        ip_commands(ApplyRules("r", ""))


class _SlowGarps(FakeHost):
    """A host whose ``arping`` waits for ``release`` (and fails for 10.0.0.9)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.sent: list[tuple[str, str, str | None]] = []

    def garp(self, dev: str, ip: str, netns: str | None = None) -> None:
        self.release.wait(5)
        if ip == "10.0.0.9":
            raise RuntimeError("no such device")
        self.sent.append((dev, ip, netns))


def test_garps_are_sent_in_the_background(tmp_path: Path) -> None:
    host = _SlowGarps()
    release, sent = host.release, host.sent
    drv = L3Driver(CFG, None, tmp_path / "l3", host=host)
    t0 = time.monotonic()
    drv.apply(Garp("r1", "qg-1", ("172.24.4.10", "172.24.4.11", "10.0.0.9")))
    assert time.monotonic() - t0 < 1 and drv.garps.pending == 3  # the pass did not wait
    assert not drv.garps.wait(0.05)
    release.set()
    assert drv.garps.wait(5) and drv.garps.pending == 0
    assert sorted(sent) == [("qg-1", "172.24.4.10", "qrouter-r1"), ("qg-1", "172.24.4.11", "qrouter-r1")]


def test_garp_sender_bounds_its_threads() -> None:
    release = threading.Event()
    sender = GarpSender(lambda *a: release.wait(5) and None, workers=3)
    for i in range(10):
        sender.send("qg-1", f"10.0.0.{i}", "ns")
    assert len(sender.threads) == 3 and all(t.daemon for t in sender.threads)
    release.set()
    assert sender.wait(5)


# --- observation ------------------------------------------------------------------------------------
def _route(
    dst: str, gw: str | None = None, dev: str | None = "qg-1", proto: str | None = "boot", hops: tuple[str, ...] = ()
) -> iproute.Route:
    return iproute.Route(dst, gw, dev, proto, None, None, "main", hops)


def _view(routes4: list[iproute.Route], routes6: list[iproute.Route]) -> iproute.NetnsView:
    mac = "fa:16:3e:00:00:01"
    link = iproute.Link("qg-1", 2, "tun", 1500, mac, True, "UNKNOWN", None, None, None, None, ())
    lo = iproute.Link("lo", 1, None, 65536, "00:00:00:00:00:00", True, "UNKNOWN", None, None, None, None, ())
    addrs = [
        iproute.Address("qg-1", ipaddress.ip_interface("172.24.4.5/24"), "global"),
        iproute.Address("qg-1", ipaddress.ip_interface("fe80::1/64"), "link"),
        iproute.Address("lo", ipaddress.ip_interface("127.0.0.1/8"), "host"),
    ]
    return iproute.NetnsView([lo, link], addrs, routes4, routes6)


class _ShownHost(FakeHost):
    """A host whose namespace ``qrouter-r1`` shows ``view`` (as ``ip``'s batch output gives it),
    ``routes`` per family and ``ruleset``; ``listed`` records the families asked."""

    def __init__(
        self, view: iproute.NetnsView, ruleset: str = "", routes: dict[int, list[iproute.Route]] | None = None
    ) -> None:
        super().__init__()
        self.ns["qrouter-r1"] = Ns()
        self.view, self.ruleset, self.routes, self.listed = view, ruleset, routes, []

    def observe_netns(self, *, netns: str | None = None) -> iproute.NetnsView:
        return self.view

    def list_routes(self, *, netns: str | None = None, family: int = 4) -> list[iproute.Route]:
        if self.routes is None:
            pytest.fail("no fallback expected")
        self.listed.append(family)
        return self.routes[family]

    def iptables_save(self, netns: str | None = None) -> str:
        return self.ruleset


def test_observe_one_router_from_one_ip_batch(tmp_path: Path) -> None:
    view = _view(
        [
            _route("default", "172.24.4.1"),
            _route("172.24.4.0/24", proto="kernel"),
            _route("10.9.0.0/16", "172.24.4.7"),
            _route("192.168.0.0/16", None, None, hops=("10.0.0.254", "10.0.0.253")),
        ],
        [_route("fe80::/64", proto="kernel")],
    )
    host = _ShownHost(view, "*nat\nCOMMIT\n")
    obs = L3Driver(CFG, None, tmp_path, host=host)._observe_one("r1")
    assert obs.namespace and set(obs.devices) == {"qg-1"}
    assert obs.devices["qg-1"].addresses == frozenset({"172.24.4.5/24"})
    assert obs.devices["qg-1"].mac == "fa:16:3e:00:00:01" and obs.devices["qg-1"].mtu == 1500
    assert obs.routes == frozenset(
        {
            Route("0.0.0.0/0", ("172.24.4.1",)),
            Route("10.9.0.0/16", ("172.24.4.7",)),
            Route("192.168.0.0/16", ("10.0.0.253", "10.0.0.254")),
        }
    )
    assert obs.iptables == "*nat\nCOMMIT\n"


def test_observe_default_route_without_gateway_asks_each_family(tmp_path: Path) -> None:
    # In the batch output a gateway-less default route has no family: list them per family instead.
    host = _ShownHost(_view([_route("default")], []), routes={4: [], 6: [_route("default")]})
    obs = L3Driver(CFG, None, tmp_path, host=host)._observe_one("r1")
    assert host.listed == [4, 6]
    assert obs.routes == frozenset({Route("::/0", (), "qg-1")})


def test_observe_without_namespace(tmp_path: Path) -> None:
    host = FakeHost()
    assert not L3Driver(CFG, None, tmp_path, host=host)._observe_one("r1").namespace
    assert host.calls == []  # nothing to ask the namespace


def test_device_names_are_the_models() -> None:
    assert internal_name("bbbbbbbb-bbbb") == "qr-bbbbbbbb-bb" and gateway_name("7e1c2d3e-4f5a") == "qg-7e1c2d3e-4f"
