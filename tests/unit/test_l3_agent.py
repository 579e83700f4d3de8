"""L3 agent executor against an in-memory host (no host access: the adapters are replaced).

``FakeHost`` plays the kernel and OVS the way the adapters see them: namespaces
holding devices (MAC, MTU, up, addresses), routes and an iptables ruleset; ``ip``
batch lines are interpreted (a deletion of something absent fails as ``ip`` does)
and every adapter call is recorded as one process.  The tests drive the real
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pytest

from neutrino.agents.interface import InterfaceDriver, NewPort
from neutrino.agents.l3 import agent as l3_agent
from neutrino.agents.l3.agent import L3Driver, _GarpSender, ip_commands
from neutrino.agents.l3.model import L3Config, RouterView, gateway_name, internal_name, namespace_name, router_views
from neutrino.agents.l3.planner import (ApplyRules, Garp, PlugInterface, Route, SetAddresses, SetRoutes, Teardown,
                                        plan)
from neutrino.feed.state import State
from neutrino.system import errors, iproute

CFG = L3Config(host="h1")


# --- the in-memory host ----------------------------------------------------------------------
@dataclass
class Dev:
    mac: str = "02:00:00:00:00:01"
    mtu: int = 1500
    up: bool = False
    addrs: set[str] = field(default_factory=set)


@dataclass
class Ns:
    devices: dict[str, Dev] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)   # by destination ("replace" semantics)
    iptables: str = ""
    sysctls: dict[str, str] = field(default_factory=dict)
    lo_up: bool = False


def _route_from_args(args: Sequence[str]) -> Route:
    dst, hops, dev = args[0], [], None
    rest = list(args[1:])
    while rest:
        word = rest.pop(0)
        if word == "via":
            hops.append(rest.pop(0))
        elif word == "dev":
            dev = rest.pop(0)
    return Route("0.0.0.0/0" if dst == "default" else dst, tuple(hops), dev).normalised()


class FakeHost:
    def __init__(self) -> None:
        self.ns: dict[str, Ns] = {}
        self.ovs_ports: set[str] = set()
        self.calls: list[tuple[str, str | None]] = []   # (what, namespace): one per process
        self.fail_once: set[str] = set()                 # batch lines that fail once (not deletions)
        self.lock = threading.Lock()

    def count(self, what: str) -> int:
        return sum(1 for w, _ in self.calls if w == what)

    def _call(self, what: str, ns: str | None = None) -> None:
        with self.lock:
            self.calls.append((what, ns))

    def _ns(self, name: str | None) -> Ns:
        if name not in self.ns:
            raise errors.NamespaceNotFound(["ip", "-n", str(name)], 1, "Cannot open network namespace")
        return self.ns[name]  # type: ignore[index]

    # ip lines (batch and single commands)
    def line(self, st: Ns, cmd: Sequence[str]) -> str | None:
        """Apply one ``ip`` command; its error text, or None."""
        key = " ".join(cmd)
        if key in self.fail_once:
            self.fail_once.discard(key)
            return "RTNETLINK answers: Operation not permitted"
        obj, verb = cmd[0], cmd[1]
        if obj == "link" and verb == "set":
            name = cmd[3]
            if name == "lo":
                st.lo_up = True
                return None
            dev = st.devices.get(name)
            if dev is None:
                return f'Cannot find device "{name}"'
            rest = list(cmd[4:])
            while rest:
                word = rest.pop(0)
                if word == "address":
                    dev.mac = rest.pop(0)
                elif word == "mtu":
                    dev.mtu = int(rest.pop(0))
                elif word == "up":
                    dev.up = True
            return None
        if obj == "addr":
            addr, name = str(ipaddress.ip_interface(cmd[2])), cmd[4]
            dev = st.devices.get(name)
            if dev is None:
                return f'Cannot find device "{name}"'
            if verb == "del":
                if addr not in dev.addrs:
                    return "Error: ipv4: Address not found."
                dev.addrs.discard(addr)
            else:
                dev.addrs.add(addr)
            return None
        if obj == "route":
            r = _route_from_args(cmd[2:])
            if r.device is not None and r.device not in st.devices:
                return f'Cannot find device "{r.device}"'
            have = st.routes.get(r.destination)
            if verb == "del":
                if have is None or (r.nexthops and have.nexthops != r.nexthops):
                    return "RTNETLINK answers: No such process"
                del st.routes[r.destination]
            else:
                st.routes[r.destination] = r
            return None
        raise AssertionError(cmd)

    def _must(self, ns: str | None, cmd: Sequence[str]) -> None:
        err = self.line(self._ns(ns), [str(c) for c in cmd])
        if err:
            raise errors.CommandFailed(["ip", *cmd], 2, err)

    # neutrino.system.iproute
    def batch_force(self, lines: Sequence[Sequence[str]], *, netns: str | None = None) -> list[iproute.BatchFailure]:
        self._call("ip -batch", netns)
        st = self._ns(netns)
        out = []
        for i, cmd in enumerate(lines, 1):
            err = self.line(st, cmd)
            if err:
                out.append(iproute.BatchFailure(i, tuple(cmd), err))
        return out

    def batch(self, cmds: Sequence[Sequence[str]], *, netns: str | None = None) -> None:
        self._call("ip -batch", netns)
        for cmd in cmds:
            self._must(netns, cmd)

    def set_sysctls(self, pairs: Sequence[tuple[str, str]], *, netns: str | None = None) -> None:
        self._call("sysctl", netns)
        self._ns(netns).sysctls.update(dict(pairs))

    def list_addresses(self, *, netns: str | None = None, dev: str | None = None) -> list[iproute.Address]:
        self._call("ip addr show", netns)
        return [iproute.Address(name, ipaddress.ip_interface(a), "global")
                for name, d in self._ns(netns).devices.items() if dev in (None, name) for a in sorted(d.addrs)]

    def ensure_address(self, dev: str, address: str, *, netns: str | None = None) -> None:
        self._call("ip addr replace", netns)
        self._must(netns, ["addr", "replace", address, "dev", dev])

    def remove_address(self, dev: str, address: str, *, netns: str | None = None) -> None:
        self._call("ip addr del", netns)
        self.line(self._ns(netns), ["addr", "del", address, "dev", dev])

    def _iproute_routes(self, netns: str | None, family: int | None = None) -> list[iproute.Route]:
        out = []
        for r in self._ns(netns).routes.values():
            net = ipaddress.ip_network(r.destination)
            if family not in (None, net.version):
                continue
            dst = "default" if r.is_default else r.destination
            gw = r.nexthops[0] if len(r.nexthops) == 1 else None
            many = r.nexthops if len(r.nexthops) > 1 else ()
            out.append(iproute.Route(dst, gw, r.device, "boot", None, None, "main", many))
        return out

    def list_routes(self, *, netns: str | None = None, family: int = 4) -> list[iproute.Route]:
        self._call("ip route show", netns)
        return self._iproute_routes(netns, family)

    def ensure_route(self, dst: str, *, via: str | None = None, dev: str | None = None,
                     netns: str | None = None) -> None:
        self._call("ip route replace", netns)
        self._must(netns, ["route", "replace", dst, *(["via", via] if via else []), *(["dev", dev] if dev else [])])

    def remove_route(self, dst: str, *, via: str | None = None, netns: str | None = None) -> None:
        self._call("ip route del", netns)
        self.line(self._ns(netns), ["route", "del", dst, *(["via", via] if via else [])])

    def observe_netns(self, *, netns: str | None = None) -> iproute.NetnsView:
        self._call("ip -batch", netns)
        st = self._ns(netns)
        links = [iproute.Link("lo", 1, None, 65536, "00:00:00:00:00:00", st.lo_up, "UNKNOWN", None, None, None,
                              None, ())]
        addrs = []
        for i, (name, d) in enumerate(sorted(st.devices.items()), 2):
            links.append(iproute.Link(name, i, "tun", d.mtu, d.mac, d.up, "UP", None, None, None, None, ()))
            addrs += [iproute.Address(name, ipaddress.ip_interface(a), "global") for a in sorted(d.addrs)]
        routes = self._iproute_routes(netns)
        v4 = [r for r in routes if ":" not in (r.gateway or r.dst)]
        return iproute.NetnsView(links, addrs, v4, [r for r in routes if r not in v4])

    # neutrino.system.netns
    def netns_exists(self, name: str) -> bool:
        return name in self.ns

    def ensure_netns(self, name: str, *, lo_up: bool = True) -> None:
        self._call("ip netns add", None)
        self.ns.setdefault(name, Ns(lo_up=lo_up))

    def ensure_netns_all(self, names: Sequence[str], *, lo_up: bool = True) -> None:
        self._call("ip -batch", None)
        for name in names:
            self.ns.setdefault(name, Ns(lo_up=lo_up))

    def remove_netns(self, name: str) -> None:
        self._call("ip netns delete", None)
        self.ns.pop(name, None)

    def remove_netns_all(self, names: Sequence[str]) -> None:
        self._call("ip -batch", None)
        for name in names:
            self.ns.pop(name, None)

    # neutrino.system.iptables
    def save(self, ns: str) -> str:
        self._call("iptables-save", ns)
        return self._ns(ns).iptables

    def restore(self, text: str, ns: str) -> None:
        self._call("iptables-restore", ns)
        self._ns(ns).iptables = text

    def find(self, device: str) -> str | None:
        return next((n for n, st in self.ns.items() if device in st.devices), None)


class FakeIface:
    """``InterfaceDriver`` on the fake host (OVS ports are names; devices appear in a namespace)."""

    link_command = staticmethod(InterfaceDriver.link_command)
    set_addresses = staticmethod(InterfaceDriver.set_addresses)

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.fail_create = False
        self.finished: set[str] = set()

    def create_all(self, ports: Sequence[NewPort]) -> list[NewPort]:
        self.host._call("ovs-vsctl", None)
        if self.fail_create:
            raise errors.OvsdbError(["ovs-vsctl"], 1, "ovs-vsctl: transaction error")
        self.host.ovs_ports.update(p.name for p in ports)
        self.host._call("ip -batch", None)
        failed = [p for p in ports if p.namespace not in self.host.ns]
        for p in ports:
            if p not in failed:
                self.host.ns[p.namespace].devices[p.name] = Dev(mac=p.mac, mtu=p.mtu)
        return failed

    def finish(self, name: str, namespace: str) -> None:
        self.host._call("ethtool", namespace)
        assert name in self.host.ns[namespace].devices
        self.finished.add(name)

    def plug(self, name: str, port_id: str, mac: str, mtu: int, namespace: str) -> None:
        self.host._call("plug", namespace)
        st = self.host.ns.setdefault(namespace, Ns(lo_up=True))
        if name not in st.devices:
            self.finished.add(name)   # plug finishes the devices it makes
        self.host.ovs_ports.add(name)
        st.devices[name] = Dev(mac, mtu, True, st.devices.get(name, Dev()).addrs)

    def unplug(self, name: str, namespace: str | None = None) -> None:
        self.host._call("unplug", namespace)
        self._drop([name])

    def unplug_all(self, names: Sequence[str]) -> None:
        self.host._call("ovs-vsctl", None)
        self._drop(names)

    def _drop(self, names: Sequence[str]) -> None:
        for name in names:
            self.host.ovs_ports.discard(name)
            for st in self.host.ns.values():
                if st.devices.pop(name, None) is not None:
                    # the kernel drops the routes through a deleted device
                    for dst in [d for d, r in st.routes.items() if r.device == name]:
                        del st.routes[dst]


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    h = FakeHost()

    def forbidden(argv: Any, *a: Any, **kw: Any) -> None:
        raise AssertionError(f"a unit test ran a real command: {argv}")
    monkeypatch.setattr(subprocess, "run", forbidden)
    for name in ("batch_force", "batch", "set_sysctls", "list_addresses", "ensure_address", "remove_address",
                 "list_routes", "ensure_route", "remove_route", "observe_netns"):
        monkeypatch.setattr(l3_agent.iproute, name, getattr(h, name))
    for name in ("netns_exists", "ensure_netns", "ensure_netns_all", "remove_netns", "remove_netns_all"):
        monkeypatch.setattr(l3_agent.netns, name, getattr(h, name))
    monkeypatch.setattr(l3_agent.iptables, "save", h.save)
    monkeypatch.setattr(l3_agent.iptables, "restore", h.restore)
    monkeypatch.setattr(l3_agent.conntrack, "flush", lambda ns, dst=None, src=None: h._call("conntrack", ns))
    monkeypatch.setattr(l3_agent.arping, "garp", lambda dev, ip, ns: h._call("arping", ns))
    return h


# --- feed-shaped routers -----------------------------------------------------------------------
def _routers(n: int, *, fips: int = 1, extra: list[dict[str, str]] | None = None) -> dict[str, RouterView]:
    f = _feed(n, fips=fips, extra=extra)
    return router_views(f["router"], f["port"], f["subnet"], f["network"], f["floatingip"], CFG)


def _state(feed: dict[str, Any], rev: int = 1) -> State:
    feed = {**feed, "l3_binding": {r: {"id": r, "router_id": r, "hosts": [CFG.host]} for r in feed["router"]}}
    return State(rev, feed, frozenset(feed))


def _feed(n: int, *, fips: int = 1, extra: list[dict[str, str]] | None = None) -> dict[str, Any]:
    nets = {"ext": {"id": "ext", "mtu": 1500}}
    subs = {"ext-sub": {"id": "ext-sub", "network_id": "ext", "cidr": "172.24.0.0/16", "ip_version": 4,
                        "gateway_ip": "172.24.0.1"}}
    ports: dict[str, Any] = {}
    routers: dict[str, Any] = {}
    fipd: dict[str, Any] = {}
    for i in range(n):
        rid = f"{i:08x}-0000-4000-8000-000000000000"
        gw = f"{i:08x}-1111-4000-8000-000000000000"
        qr = f"{i:08x}-2222-4000-8000-000000000000"
        net, sub = f"net-{i}", f"sub-{i}"
        nets[net] = {"id": net, "mtu": 1450}
        subs[sub] = {"id": sub, "network_id": net, "cidr": f"10.{i}.0.0/24", "ip_version": 4,
                     "gateway_ip": f"10.{i}.0.1"}
        routers[rid] = {"id": rid, "admin_state_up": True, "routes": extra or [],
                        "gw_port_id": gw, "interface_port_ids": [qr],
                        "external_gateway_info": {"network_id": "ext", "enable_snat": True, "external_fixed_ips": [
                            {"subnet_id": "ext-sub", "ip_address": f"172.24.1.{i + 1}"}]}}
        ports[gw] = {"id": gw, "network_id": "ext", "mac_address": f"fa:16:3e:01:00:{i:02x}", "device_id": rid,
                     "device_owner": "network:router_gateway", "admin_state_up": True,
                     "fixed_ips": [{"subnet_id": "ext-sub", "ip_address": f"172.24.1.{i + 1}"}]}
        ports[qr] = {"id": qr, "network_id": net, "mac_address": f"fa:16:3e:02:00:{i:02x}", "device_id": rid,
                     "device_owner": "network:router_interface", "admin_state_up": True,
                     "fixed_ips": [{"subnet_id": sub, "ip_address": f"10.{i}.0.1"}]}
        for k in range(fips):
            fipd[f"fip-{i}-{k}"] = {"id": f"fip-{i}-{k}", "floating_ip_address": f"172.24.2{k}.{i + 1}",
                                    "router_id": rid, "port_id": f"vm-{i}-{k}", "fixed_ip_address": f"10.{i}.0.{10 + k}",
                                    "port_forwardings": []}
    return {"router": routers, "port": ports, "subnet": subs, "network": nets, "floatingip": fipd}


def _driver(tmp_path: Path, host: FakeHost) -> L3Driver:
    return L3Driver(CFG, FakeIface(host), tmp_path / "l3")  # type: ignore[arg-type]


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
        assert calls.index("sysctl") == 0   # before any device
    assert len(host.calls) == 3 + 5 * len(views)
    assert drv.iface.finished == {p.device for v in views.values() for p in v.ports}  # type: ignore[attr-defined]
    for rid, view in views.items():
        st = host.ns[namespace_name(rid)]
        assert st.lo_up and st.sysctls["net.ipv4.ip_forward"] == "1"
        assert (tmp_path / "l3" / rid).exists()
        for port in view.ports:
            dev = st.devices[port.device]
            assert (dev.mac, dev.mtu, dev.up) == (port.mac, port.mtu, True)
        assert len(st.devices[view.gateway.device].addrs) == 3   # type: ignore[union-attr] # gateway IP + 2 FIPs
        assert set(st.routes) == {"0.0.0.0/0"}
    # converged: observing and planning again yields nothing
    host.calls.clear()
    assert plan(CFG, views, drv.observe()) == []
    assert {w for w, _ in host.calls} == {"ip -batch", "iptables-save"}


def test_drift_is_repaired_from_the_planned_differences(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(2, extra=[{"destination": "192.168.0.0/16", "nexthop": "10.0.0.253"},
                               {"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}])
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    rid = next(iter(views))
    st = host.ns[namespace_name(rid)]
    qg = views[rid].gateway.device  # type: ignore[union-attr]
    assert st.routes["192.168.0.0/16"].nexthops == ("10.0.0.253", "10.0.0.254")   # ECMP, observed as such
    assert plan(CFG, views, drv.observe()) == []
    st.devices[qg].addrs.add("172.24.9.9/32")
    st.devices[qg].mtu = 9000
    st.routes["10.99.0.0/16"] = Route("10.99.0.0/16", ("172.24.0.7",))
    del st.routes["0.0.0.0/0"]
    host.calls.clear()
    ops = _pass(drv, views)
    assert [type(op).__name__ for op in ops] == ["PlugInterface", "SetAddresses", "SetRoutes"]
    assert host.count("ip -batch") == 2 + 1   # observing both routers + the one repair batch
    assert host.count("plug") == 1            # the MTU of an existing device: both veth ends
    assert "ip addr show" not in {w for w, _ in host.calls}   # nothing observed twice
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
    assert drv.iface.finished == {p.device for v in views.values() for p in v.ports}  # type: ignore[attr-defined]
    assert plan(CFG, views, drv.observe()) == []


def test_deleting_what_is_already_gone_is_no_failure(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(1)
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    st = host.ns[namespace_name(next(iter(views)))]
    st.routes["10.77.0.0/16"] = Route("10.77.0.0/16", ("172.24.0.9",))
    qg = next(iter(views.values())).gateway.device  # type: ignore[union-attr]
    st.devices[qg].addrs.add("172.24.9.9/32")
    ops = plan(CFG, views, drv.observe())
    # ... gone between observing and applying (e.g. the kernel dropped them with a device)
    del st.routes["10.77.0.0/16"]
    st.devices[qg].addrs.discard("172.24.9.9/32")
    host.calls.clear()
    drv.apply_all(ops)
    assert [w for w, _ in host.calls] == ["ip -batch"]   # no fallback
    assert plan(CFG, views, drv.observe()) == []


def test_ovs_failure_falls_back_to_plugging_each_port(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(3)
    drv = _driver(tmp_path, host)
    drv.iface.fail_create = True  # type: ignore[attr-defined]
    _pass(drv, views)
    assert host.count("plug") == 6 and host.count("ethtool") == 0   # plug finished them
    assert drv.iface.finished == {p.device for v in views.values() for p in v.ports}  # type: ignore[attr-defined]
    assert plan(CFG, views, drv.observe()) == []


def test_teardown_in_bulk_before_the_other_routers(tmp_path: Path, host: FakeHost) -> None:
    views = _routers(5)
    rids = sorted(views)
    drv = _driver(tmp_path, host)
    _pass(drv, {r: views[r] for r in rids[:4]})
    gone, keep = rids[:3], {r: views[r] for r in rids[3:]}   # the last one is new
    ops = plan(CFG, keep, drv.observe())
    host.calls.clear()
    drv.apply_all(ops)
    assert [op for op in ops if isinstance(op, Teardown)] == [
        Teardown(r, tuple(sorted(p.device for p in views[r].ports))) for r in gone]
    # all ports in one transaction, all namespaces in one batch, before anything else
    assert [w for w, _ in host.calls[:2]] == ["ovs-vsctl", "ip -batch"] and host.count("ovs-vsctl") == 2
    assert set(host.ns) == {namespace_name(r) for r in keep}
    assert sorted(p.name for p in (tmp_path / "l3").iterdir()) == sorted(keep)
    assert not any(p.device in host.ovs_ports for r in gone for p in views[r].ports)
    assert plan(CFG, keep, drv.observe()) == []


def test_teardown_falls_back_to_each_router_when_the_ports_cannot_go_at_once(
        tmp_path: Path, host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    views = _routers(2)
    drv = _driver(tmp_path, host)
    _pass(drv, views)
    ops = plan(CFG, {}, drv.observe())
    monkeypatch.setattr(drv.iface, "unplug_all", lambda names: (_ for _ in ()).throw(
        errors.OvsdbError(["ovs-vsctl"], 1, "ovs-vsctl: transaction error")))
    assert drv.apply_all(ops) == set()          # each router's own teardown did it
    assert host.count("unplug") == 4 and host.ns == {} and host.ovs_ports == set()
    assert not list((tmp_path / "l3").iterdir())


def test_one_routers_failure_does_not_stop_its_next_ops_or_others(tmp_path: Path, host: FakeHost,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    drv = _driver(tmp_path, host)
    _pass(drv, _routers(3))
    views = _routers(3, fips=2)   # one more floating IP each: addresses, rules, a GARP
    bad = namespace_name(sorted(views)[0])

    def restore(text: str, ns: str) -> None:
        if ns == bad:
            raise errors.IptablesError(["iptables-restore"], 1, "iptables-restore: line 3 failed")
        host.restore(text, ns)

    monkeypatch.setattr(l3_agent.iptables, "restore", restore)
    host.calls.clear()
    ops = _pass(drv, views)
    assert [type(op).__name__ for op in ops if op.router_id == sorted(views)[0]] == [
        "SetAddresses", "ApplyRules", "Garp"]
    assert drv.garps.wait(5)
    assert [ns for w, ns in host.calls if w == "arping"].count(bad) == 1   # its GARP still went
    assert all(host.ns[namespace_name(r)].iptables for r in sorted(views)[1:])
    monkeypatch.setattr(l3_agent.iptables, "restore", host.restore)
    assert [type(op).__name__ for op in plan(CFG, views, drv.observe())] == ["ApplyRules"]


def test_passes_look_only_at_changed_or_failed_routers_between_full_ones(tmp_path: Path, host: FakeHost,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    feed = _feed(3)
    rids = sorted(feed["router"])
    drv = _driver(tmp_path, host)
    clock = [1000.0]
    monkeypatch.setattr(l3_agent.time, "monotonic", lambda: clock[0])

    def reconcile(feed: dict[str, Any]) -> list[str | None]:
        host.calls.clear()
        asyncio.run(drv.reconcile(_state(feed), True))
        return sorted({ns for w, ns in host.calls if w == "iptables-save"}, key=str)

    assert reconcile(feed) == []                   # first pass: full (nothing to observe yet)
    assert set(drv.applied) == set(rids)
    clock[0] += 1
    assert reconcile(feed) == [] and host.calls == []      # nothing changed: no command at all
    # one floating IP more on the second router: only that one is observed and changed
    feed["floatingip"]["fip-1-9"] = {**feed["floatingip"]["fip-1-0"], "id": "fip-1-9",
                                     "floating_ip_address": "172.24.29.2", "fixed_ip_address": "10.1.0.99"}
    clock[0] += 1
    assert reconcile(feed) == [namespace_name(rids[1])]
    assert "172.24.29.2/32" in host.ns[namespace_name(rids[1])].devices[
        drv.applied[rids[1]].gateway.device].addrs   # type: ignore[union-attr]
    # a failing router is retried by the next pass even though its view did not change again
    feed["floatingip"]["fip-2-9"] = {**feed["floatingip"]["fip-2-0"], "id": "fip-2-9",
                                     "floating_ip_address": "172.24.29.3", "fixed_ip_address": "10.2.0.99"}
    host.fail_once.add(f"addr replace 172.24.29.3/32 dev {drv.applied[rids[2]].gateway.device}")  # type: ignore[union-attr]
    with monkeypatch.context() as m:   # ... and its op-by-op fallback too
        m.setattr(drv.iface, "set_addresses", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
        clock[0] += 1
        assert reconcile(feed) == [namespace_name(rids[2])] and drv.retry == {rids[2]}
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
        ["link", "set", "dev", "qr-1", "mtu", "1450", "address", "fa:16:3e:00:00:01", "up"]]
    assert ip_commands(SetAddresses("r", "qg-1", ("172.24.4.5/24", "172.24.4.9/32"), add=("172.24.4.9",),
                                    remove=("172.24.4.7/32",))) == [
        ["addr", "del", "172.24.4.7/32", "dev", "qg-1"], ["addr", "replace", "172.24.4.9/32", "dev", "qg-1"]]
    op = SetRoutes("r", "qg-1", ("172.24.5.1",), (Route("192.168.0.0/16", ("10.0.0.254", "10.0.0.253")),),
                   onlink=("172.24.5.1",), stale=(Route("0.0.0.0/0", ("172.24.4.1",)), Route("10.9.0.0/16", (),
                                                                                            "qr-2")))
    assert ip_commands(op) == [
        ["route", "del", "0.0.0.0/0", "via", "172.24.4.1"], ["route", "del", "10.9.0.0/16", "dev", "qr-2"],
        ["route", "replace", "172.24.5.1/32", "dev", "qg-1"], ["route", "replace", "0.0.0.0/0", "via", "172.24.5.1"],
        ["route", "replace", "192.168.0.0/16", "nexthop", "via", "10.0.0.253", "nexthop", "via", "10.0.0.254"]]
    with pytest.raises(TypeError):
        ip_commands(ApplyRules("r", ""))


def test_garps_are_sent_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    sent: list[tuple[str, str, str | None]] = []

    def garp(dev: str, ip: str, netns: str | None = None) -> None:
        release.wait(5)
        if ip == "10.0.0.9":
            raise RuntimeError("no such device")
        sent.append((dev, ip, netns))

    monkeypatch.setattr(l3_agent.arping, "garp", garp)
    drv = L3Driver(CFG, None, tmp_path / "l3")  # type: ignore[arg-type]
    t0 = time.monotonic()
    drv.apply(Garp("r1", "qg-1", ("172.24.4.10", "172.24.4.11", "10.0.0.9")))
    assert time.monotonic() - t0 < 1 and drv.garps.pending == 3     # the pass did not wait
    assert not drv.garps.wait(0.05)
    release.set()
    assert drv.garps.wait(5) and drv.garps.pending == 0
    assert sorted(sent) == [("qg-1", "172.24.4.10", "qrouter-r1"), ("qg-1", "172.24.4.11", "qrouter-r1")]


def test_garp_sender_bounds_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(l3_agent.arping, "garp", lambda *a, **k: release.wait(5))
    sender = _GarpSender(workers=3)
    for i in range(10):
        sender.send("qg-1", f"10.0.0.{i}", "ns")
    assert len(sender.threads) == 3 and all(t.daemon for t in sender.threads)
    release.set()
    assert sender.wait(5)


# --- observation ------------------------------------------------------------------------------------
def _route(dst: str, gw: str | None = None, dev: str | None = "qg-1", proto: str | None = "boot",
           hops: tuple[str, ...] = ()) -> iproute.Route:
    return iproute.Route(dst, gw, dev, proto, None, None, "main", hops)


def _view(routes4: list[iproute.Route], routes6: list[iproute.Route]) -> iproute.NetnsView:
    mac = "fa:16:3e:00:00:01"
    link = iproute.Link("qg-1", 2, "tun", 1500, mac, True, "UNKNOWN", None, None, None, None, ())
    lo = iproute.Link("lo", 1, None, 65536, "00:00:00:00:00:00", True, "UNKNOWN", None, None, None, None, ())
    addrs = [iproute.Address("qg-1", ipaddress.ip_interface("172.24.4.5/24"), "global"),
             iproute.Address("qg-1", ipaddress.ip_interface("fe80::1/64"), "link"),
             iproute.Address("lo", ipaddress.ip_interface("127.0.0.1/8"), "host")]
    return iproute.NetnsView([lo, link], addrs, routes4, routes6)


def test_observe_one_router_from_one_ip_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    view = _view([_route("default", "172.24.4.1"), _route("172.24.4.0/24", proto="kernel"),
                  _route("10.9.0.0/16", "172.24.4.7"),
                  _route("192.168.0.0/16", None, None, hops=("10.0.0.254", "10.0.0.253"))],
                 [_route("fe80::/64", proto="kernel")])
    monkeypatch.setattr(l3_agent.netns, "netns_exists", lambda ns: True)
    monkeypatch.setattr(l3_agent.iproute, "observe_netns", lambda netns: view)
    monkeypatch.setattr(l3_agent.iproute, "list_routes", lambda **kw: pytest.fail("no fallback expected"))
    monkeypatch.setattr(l3_agent.iptables, "save", lambda ns: "*nat\nCOMMIT\n")
    obs = L3Driver._observe_one("r1")
    assert obs.namespace and set(obs.devices) == {"qg-1"}
    assert obs.devices["qg-1"].addresses == frozenset({"172.24.4.5/24"})
    assert obs.devices["qg-1"].mac == "fa:16:3e:00:00:01" and obs.devices["qg-1"].mtu == 1500
    assert obs.routes == frozenset({Route("0.0.0.0/0", ("172.24.4.1",)), Route("10.9.0.0/16", ("172.24.4.7",)),
                                    Route("192.168.0.0/16", ("10.0.0.253", "10.0.0.254"))})
    assert obs.iptables == "*nat\nCOMMIT\n"


def test_observe_default_route_without_gateway_asks_each_family(monkeypatch: pytest.MonkeyPatch) -> None:
    # In the batch output a gateway-less default route has no family: list them per family instead.
    view = _view([_route("default")], [])
    asked: list[int] = []

    def list_routes(*, netns: str, family: int) -> list[iproute.Route]:
        asked.append(family)
        return [] if family == 4 else [_route("default")]

    monkeypatch.setattr(l3_agent.netns, "netns_exists", lambda ns: True)
    monkeypatch.setattr(l3_agent.iproute, "observe_netns", lambda netns: view)
    monkeypatch.setattr(l3_agent.iproute, "list_routes", list_routes)
    monkeypatch.setattr(l3_agent.iptables, "save", lambda ns: "")
    obs = L3Driver._observe_one("r1")
    assert asked == [4, 6]
    assert obs.routes == frozenset({Route("::/0", (), "qg-1")})


def test_observe_without_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(l3_agent.netns, "netns_exists", lambda ns: False)
    assert not L3Driver._observe_one("r1").namespace


def test_device_names_are_the_models() -> None:
    assert internal_name("bbbbbbbb-bbbb") == "qr-bbbbbbbb-bb" and gateway_name("7e1c2d3e-4f5a") == "qg-7e1c2d3e-4f"
