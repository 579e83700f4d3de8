"""An in-memory ``Host`` (``neutrino.system.host``) for the executors' unit tests.

``FakeHost`` plays the kernel, OVS and the process table the way the adapters
show them, and keeps the resulting state so a test asserts on it rather than on
calls: namespaces (``ns``: name -> ``Ns`` with devices, routes, an iptables
ruleset, sysctls), the root namespace (``root``, where OVS's own ends live),
OVS ports (``ovs.ports``), running processes (``processes``: uuid -> argv),
haproxy configurations, conntrack flushes, gratuitous ARPs and one-off commands.

``ip`` batch lines are interpreted (``line``); as with ``ip``, deleting something
absent fails, and a device deleted takes the routes through it along.  Every call
that would be one process on a real host is recorded in ``calls`` as
``(what, namespace)`` (``count`` sums them), so tests can bound the commands a
pass costs.  Faults: ``fail_once`` holds ``ip`` lines that fail once; ``faults``
maps ``(what, namespace)`` to the exception that call raises (until removed).
Thread-safe enough for the executors' worker threads (the record is locked).
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neutrino.system import errors, iproute
from neutrino.system import ovsdb as sysovs
from neutrino.system.exec import Completed
from neutrino.system.host import Host
from neutrino.system.process import ProcessSpec

__all__ = ["Dev", "FakeHost", "FakeOvs", "Ns", "RouteEntry", "as_host"]


@dataclass
class Dev:
    """A device: MAC, MTU, up, addresses (``str(ip_interface)``), checksum offload turned off."""

    mac: str = "02:00:00:00:00:01"
    mtu: int = 1500
    up: bool = False
    addrs: set[str] = field(default_factory=set)
    offloads_off: bool = False


@dataclass(frozen=True)
class RouteEntry:
    """A route of table main: ``destination`` (a network), ``nexthops`` or ``device``."""

    destination: str
    nexthops: tuple[str, ...] = ()
    device: str | None = None

    @property
    def is_default(self) -> bool:
        return ipaddress.ip_network(self.destination).prefixlen == 0


@dataclass
class Ns:
    """A network namespace's state."""

    devices: dict[str, Dev] = field(default_factory=dict)
    routes: dict[str, RouteEntry] = field(default_factory=dict)  # by destination ("replace" semantics)
    iptables: str = ""
    sysctls: dict[str, str] = field(default_factory=dict)
    lo_up: bool = False


def _network(dst: str) -> str:
    if dst == "default":
        return "0.0.0.0/0"
    return str(ipaddress.ip_network(dst, strict=False))


def _route_from_args(args: Sequence[str]) -> RouteEntry:
    """``DST [via GW | nexthop via GW ...] [dev DEV]`` -> a route (nexthops sorted)."""
    dst, hops, dev = args[0], [], None
    rest = list(args[1:])
    while rest:
        word = rest.pop(0)
        if word == "via":
            hops.append(rest.pop(0))
        elif word == "dev":
            dev = rest.pop(0)
    if dst == "default" and any(":" in h for h in hops):
        dst = "::/0"
    ips = sorted({ipaddress.ip_address(h) for h in hops}, key=lambda a: (a.version, int(a)))
    return RouteEntry(_network(dst), tuple(str(a) for a in ips), None if ips else dev)


class FakeOvs:
    """OVS ports in memory (``ports``: name -> ``sysovs.Port``); ``netns`` is the root one."""

    netns: str | None = None

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.ports: dict[str, sysovs.Port] = {}

    def transact(self, ops: Iterable[sysovs.Op], *, wait: bool = True) -> None:
        """One ``ovs-vsctl`` (raises the fault set for ``("ovs-vsctl", None)``): ``AddPort`` /
        ``DelPort`` are applied, other ops are not supported.  As ovs-vswitchd does, an internal
        port gets a device in the root namespace, which goes (wherever it was moved) with the port."""
        self.host.call("ovs-vsctl", None)
        for op in ops:
            if isinstance(op, sysovs.DelPort):
                gone = self.ports.pop(op.name, None)
                if gone is not None and gone.iface is not None and gone.iface.type == "internal":
                    with self.host.lock:
                        for st in (self.host.root, *self.host.ns.values()):
                            self.host._drop_device(st, op.name)
            elif isinstance(op, sysovs.AddPort):
                if op.type == "internal":
                    with self.host.lock:
                        if self.host.find(op.name) is None:
                            self.host.root.devices.setdefault(op.name, Dev())
                iface = sysovs.Interface(op.name, op.type or "", None, {}, dict(op.external_ids), {}, None, None, None)
                self.ports[op.name] = sysovs.Port(
                    op.name,
                    op.bridge,
                    op.tag,
                    op.vlan_mode,
                    tuple(op.trunks or ()),
                    dict(op.other_config),
                    {},
                    (iface,),
                )
            else:
                raise NotImplementedError(f"FakeOvs does not apply {type(op).__name__}")

    def observe(self) -> sysovs.OvsState:
        self.host.call("ovsdb read", None)
        return sysovs.OvsState({}, dict(self.ports))

    def vsctl(self, *args: str, wait: bool = True) -> str:
        """Only ``find Port`` (``vif_hint``): no rows."""
        self.host.call("ovs-vsctl", None)
        return json.dumps({"headings": ["name", "tag", "other_config"], "data": []})


class FakeHost:
    """See the module docstring.  Satisfies ``neutrino.system.host.Host``."""

    def __init__(self) -> None:
        self.ns: dict[str, Ns] = {}
        self.root = Ns(lo_up=True)
        self.ovs = FakeOvs(self)
        self.calls: list[tuple[str, str | None]] = []  # (what, namespace): one per process
        self.fail_once: set[str] = set()  # ip lines that fail once (not deletions)
        self.faults: dict[tuple[str, str | None], Exception] = {}
        self.processes: dict[str, tuple[str, ...]] = {}  # uuid -> argv of what runs
        self.reloads: list[str] = []  # uuids SIGHUPed
        self.haproxy: dict[str, str] = {}  # uuid -> configuration text
        self.commands: list[tuple[tuple[str, ...], str | None]] = []  # one-off commands (argv, namespace)
        self.garps: list[tuple[str, str, str | None]] = []
        self.flushed: list[tuple[str | None, str | None, str | None]] = []  # conntrack (ns, dst, src)
        self.mounted = True
        self.lock = threading.RLock()

    # --- the record ------------------------------------------------------------------------
    def count(self, what: str) -> int:
        return sum(1 for w, _ in self.calls if w == what)

    def call(self, what: str, ns: str | None = None) -> None:
        """Record one process; raise the fault set for ``(what, ns)``, if any."""
        with self.lock:
            self.calls.append((what, ns))
            fault = self.faults.get((what, ns))
        if fault is not None:
            raise fault

    def _ns(self, name: str | None) -> Ns:
        if name is None:
            return self.root
        if name not in self.ns:
            raise errors.NamespaceNotFound(["ip", "-n", str(name)], 1, "Cannot open network namespace")
        return self.ns[name]

    def find(self, device: str) -> str | None:
        """The namespace holding ``device`` (None: none)."""
        return next((n for n, st in self.ns.items() if device in st.devices), None)

    # --- ip lines ---------------------------------------------------------------------------
    def line(self, st: Ns, cmd: Sequence[str]) -> str | None:
        """Apply one ``ip`` command to ``st``; its error text, or None."""
        key = " ".join(cmd)
        with self.lock:
            if key in self.fail_once:
                self.fail_once.discard(key)
                return "RTNETLINK answers: Operation not permitted"
            return self._line(st, cmd)

    def _line(self, st: Ns, cmd: Sequence[str]) -> str | None:
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
                elif word == "down":
                    dev.up = False
                elif word == "netns":
                    target = self._ns(rest.pop(0))
                    target.devices[name] = st.devices.pop(name)
            return None
        if obj == "link" and verb == "add":  # veth_cmd: link add NAME [mtu M] type veth peer name P ...
            return self._add_veth(st, list(cmd[2:]))
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
        raise NotImplementedError(f"FakeHost does not interpret ip {' '.join(cmd)}")

    def _add_veth(self, st: Ns, words: list[str]) -> str | None:
        name, mtu, peer, peer_ns, peer_mac = words[0], None, None, None, None
        i = 1
        while i < len(words):
            w = words[i]
            if w == "mtu":
                mtu = int(words[i + 1])
            elif w == "name" and peer is None:
                peer = words[i + 1]
            elif w == "netns":
                peer_ns = words[i + 1]
            elif w == "address":
                peer_mac = words[i + 1]
            i += 1 if w in ("type", "veth", "peer") else 2
        if name in st.devices:
            return "RTNETLINK answers: File exists"
        target = self._ns(peer_ns) if peer_ns is not None else st
        st.devices[name] = Dev(mtu=mtu or 1500)
        target.devices[str(peer)] = Dev(mac=peer_mac or "02:00:00:00:00:02", mtu=mtu or 1500)
        return None

    def _must(self, ns: str | None, cmd: Sequence[str]) -> None:
        err = self.line(self._ns(ns), [str(c) for c in cmd])
        if err:
            raise errors.CommandFailed(["ip", *cmd], 2, err)

    @staticmethod
    def _drop_device(st: Ns, name: str) -> None:
        if st.devices.pop(name, None) is not None:
            for dst in [d for d, r in st.routes.items() if r.device == name]:
                del st.routes[dst]  # the kernel drops the routes through a deleted device

    # --- namespaces ---------------------------------------------------------------------------
    def netns_exists(self, name: str) -> bool:
        return name in self.ns

    def list_netns(self) -> list[str]:
        self.call("ip netns list", None)
        return sorted(self.ns)

    def netns_dir_mounted(self) -> bool:
        return self.mounted

    def ensure_netns(self, name: str, *, lo_up: bool = True) -> None:
        self.call("ip netns add", None)
        with self.lock:
            self.ns.setdefault(name, Ns(lo_up=lo_up))

    def ensure_netns_all(self, names: Iterable[str], *, lo_up: bool = True) -> None:
        self.call("ip -batch", None)
        with self.lock:
            for name in names:
                self.ns.setdefault(name, Ns(lo_up=lo_up))

    def remove_netns(self, name: str) -> None:
        self.call("ip netns delete", None)
        with self.lock:
            self.ns.pop(name, None)

    def remove_netns_all(self, names: Iterable[str]) -> None:
        self.call("ip -batch", None)
        with self.lock:
            for name in names:
                self.ns.pop(name, None)

    # --- links ------------------------------------------------------------------------------------
    def _links(self, st: Ns) -> list[iproute.Link]:
        links = [
            iproute.Link("lo", 1, None, 65536, "00:00:00:00:00:00", st.lo_up, "UNKNOWN", None, None, None, None, ())
        ]
        for i, (name, d) in enumerate(sorted(st.devices.items()), 2):
            links.append(
                iproute.Link(
                    name,
                    i,
                    "tun",
                    d.mtu,
                    d.mac,
                    d.up,
                    "UP" if d.up else "DOWN",
                    None,
                    None,
                    None,
                    None,
                    ("UP", "PROMISC") if d.up else ("PROMISC",),
                )
            )
        return links

    def list_links(self, *, netns: str | None = None) -> list[iproute.Link]:
        self.call("ip link show", netns)
        return self._links(self._ns(netns))

    def get_link(self, name: str, *, netns: str | None = None) -> iproute.Link | None:
        self.call("ip link show", netns)
        return next((link for link in self._links(self._ns(netns)) if link.name == name), None)

    def ensure_veth(
        self,
        name: str,
        peer: str,
        *,
        netns: str | None = None,
        peer_netns: str | None = None,
        mtu: int | None = None,
        peer_mac: str | None = None,
    ) -> None:
        self.call("ip link add", netns)
        st = self._ns(netns)
        if name in st.devices:
            return
        self._must(netns, iproute.veth_cmd(name, peer, peer_netns=peer_netns, mtu=mtu, peer_mac=peer_mac))

    def set_link(
        self,
        name: str,
        *,
        netns: str | None = None,
        up: bool | None = None,
        mtu: int | None = None,
        mac_address: str | None = None,
    ) -> None:
        self.call("ip link set", netns)
        if name not in self._ns(netns).devices and name != "lo":
            raise errors.DeviceNotFound(["ip", "link", "set", name], 1, f'Cannot find device "{name}"')
        self._must(netns, iproute.set_link_cmd(name, up=up, mtu=mtu, mac_address=mac_address))

    def move_link(self, name: str, to_netns: str, *, netns: str | None = None) -> None:
        self.call("ip link set", netns)
        self._must(netns, ["link", "set", "dev", name, "netns", to_netns])

    def remove_link(self, name: str, *, netns: str | None = None) -> None:
        self.call("ip link del", netns)
        with self.lock:
            self._drop_device(self._ns(netns), name)

    def disable_offloads(
        self, dev: str, *, netns: str | None = None, features: Iterable[str] = iproute.DEFAULT_OFFLOADS_OFF
    ) -> None:
        self.call("ethtool", netns)
        d = self._ns(netns).devices.get(dev)
        if d is None:
            raise errors.DeviceNotFound(["ethtool", "-K", dev], 1, f"Cannot get device {dev}")
        d.offloads_off = True

    # --- addresses ----------------------------------------------------------------------------------
    def list_addresses(self, *, netns: str | None = None, dev: str | None = None) -> list[iproute.Address]:
        self.call("ip addr show", netns)
        return [
            iproute.Address(name, ipaddress.ip_interface(a), "global")
            for name, d in sorted(self._ns(netns).devices.items())
            if dev in (None, name)
            for a in sorted(d.addrs)
        ]

    def ensure_address(self, dev: str, address: str, *, netns: str | None = None) -> None:
        self.call("ip addr replace", netns)
        self._must(netns, ["addr", "replace", str(address), "dev", dev])

    def remove_address(self, dev: str, address: str, *, netns: str | None = None) -> None:
        self.call("ip addr del", netns)
        self.line(self._ns(netns), ["addr", "del", str(address), "dev", dev])

    # --- routes -------------------------------------------------------------------------------------
    def _routes(self, netns: str | None, family: int | None = None) -> list[iproute.Route]:
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
        self.call("ip route show", netns)
        return self._routes(netns, family)

    def ensure_route(
        self, dst: str, *, via: str | None = None, dev: str | None = None, netns: str | None = None
    ) -> None:
        self.call("ip route replace", netns)
        self._must(netns, ["route", "replace", dst, *(["via", via] if via else []), *(["dev", dev] if dev else [])])

    def remove_route(self, dst: str, *, via: str | None = None, netns: str | None = None) -> None:
        self.call("ip route del", netns)
        self.line(self._ns(netns), ["route", "del", dst, *(["via", via] if via else [])])

    def observe_netns(self, *, netns: str | None = None) -> iproute.NetnsView:
        self.call("ip -batch", netns)
        st = self._ns(netns)
        addrs = [
            iproute.Address(name, ipaddress.ip_interface(a), "global")
            for name, d in sorted(st.devices.items())
            for a in sorted(d.addrs)
        ]
        routes = self._routes(netns)
        v4 = [r for r in routes if ":" not in (r.gateway or r.dst) and not any(":" in h for h in r.nexthops)]
        return iproute.NetnsView(self._links(st), addrs, v4, [r for r in routes if r not in v4])

    def ip_batch(self, commands: Sequence[Sequence[str]], *, netns: str | None = None) -> None:
        self.call("ip -batch", netns)
        for cmd in commands:
            self._must(netns, cmd)

    def ip_batch_force(
        self, commands: Sequence[Sequence[str]], *, netns: str | None = None
    ) -> list[iproute.BatchFailure]:
        self.call("ip -batch", netns)
        st = self._ns(netns)
        out = []
        for i, cmd in enumerate(commands, 1):
            err = self.line(st, [str(c) for c in cmd])
            if err:
                out.append(iproute.BatchFailure(i, tuple(str(c) for c in cmd), err))
        return out

    def set_sysctl(self, key: str, value: str | int, *, netns: str | None = None) -> None:
        self.set_sysctls([(key, value)], netns=netns)

    def set_sysctls(self, pairs: Iterable[tuple[str, str | int]], *, netns: str | None = None) -> None:
        self.call("sysctl", netns)
        self._ns(netns).sysctls.update({k: str(v) for k, v in pairs})

    # --- iptables, conntrack, ARP ------------------------------------------------------------------
    def iptables_save(self, netns: str | None = None) -> str:
        self.call("iptables-save", netns)
        return self._ns(netns).iptables

    def iptables_restore(self, text: str, netns: str | None = None) -> None:
        self.call("iptables-restore", netns)
        self._ns(netns).iptables = text

    def conntrack_flush(self, netns: str | None = None, dst: str | None = None, src: str | None = None) -> int:
        self.call("conntrack", netns)
        with self.lock:
            self.flushed.append((netns, dst, src))
        return 0

    def garp(self, dev: str, ip: str, netns: str | None = None) -> None:
        self.call("arping", netns)
        with self.lock:
            self.garps.append((dev, ip, netns))

    # --- processes ------------------------------------------------------------------------------------
    @staticmethod
    def _key(spec: ProcessSpec) -> str:
        return spec.uuid or str(spec.pidfile)

    def process_alive(self, spec: ProcessSpec) -> bool:
        return self._key(spec) in self.processes

    def process_start(self, spec: ProcessSpec) -> int:
        self.call(spec.argv[0], spec.netns)
        if spec.netns is not None:
            self._ns(spec.netns)  # a process cannot start in a missing namespace
        with self.lock:
            self.processes[self._key(spec)] = spec.argv
        return 1000 + len(self.processes)

    def process_stop(self, spec: ProcessSpec) -> None:
        with self.lock:
            self.processes.pop(self._key(spec), None)

    def process_argv(self, spec: ProcessSpec) -> list[str] | None:
        argv = self.processes.get(self._key(spec))
        return list(argv) if argv is not None else None

    def process_reload(self, spec: ProcessSpec) -> bool:
        with self.lock:
            if self._key(spec) not in self.processes:
                return False
            self.reloads.append(self._key(spec))
        return True

    def haproxy_ensure(self, spec: ProcessSpec, conf: Path, text: str) -> str:
        key = self._key(spec)
        if self.haproxy.get(key) == text and key in self.processes:
            return "unchanged"
        self.process_start(spec)
        with self.lock:
            self.haproxy[key] = text
        return "started"

    def haproxy_stop(self, spec: ProcessSpec, conf: Path | None = None) -> None:
        self.process_stop(spec)
        with self.lock:
            self.haproxy.pop(self._key(spec), None)

    def haproxy_alive(self, spec: ProcessSpec) -> bool:
        return self.process_alive(spec)

    def run(
        self, argv: Sequence[str], *, netns: str | None = None, check: bool = True, timeout: float = 30
    ) -> Completed:
        self.call(argv[0], netns)
        with self.lock:
            self.commands.append((tuple(argv), netns))
        return Completed(tuple(argv), 0, "", "")

    def __repr__(self) -> str:
        return f"FakeHost({len(self.ns)} namespaces, {len(self.processes)} processes)"


def as_host(fake: FakeHost) -> Host:
    """``fake`` as a ``Host`` (mypy checks here that ``FakeHost`` satisfies the interface)."""
    return fake
