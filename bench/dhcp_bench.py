#!/usr/bin/env python3
"""DHCP benchmark: agent resync at scale, port create -> lease, a burst of port creates.
Prints figures; asserts nothing.

    .venv/bin/python bench/dhcp_bench.py [--only resync|api] [--networks 200] [--ports-per-net 10]
                                         [--lease-ports 30] [--burst 500] [--bulk 50]

Needs root, Open vSwitch and dnsmasq.  Each part is bounded in time (the
whole run stays under 5 minutes on this 2-core machine).

resync (in-process, no API): a private OVS (br-int, netdev) in a throwaway
namespace, conf dirs in a temporary directory, and a feed ``State`` with N
networks, each with one DHCP-enabled /24, 10 ports and this host's DHCP port
(so the agent never needs the API), all bound to this host by
``dhcp_binding`` objects.  Then ``DhcpDriver.reconcile(state, True)``:

* cold: nothing exists (namespaces, taps, files, dnsmasqs are all created);
  target <= 15 s at 200 networks / 2,000 ports (Neutron operators report
  minutes to hours);
* warm: a fresh driver after a simulated agent restart, everything in place:
  must be near no-op and must not restart any dnsmasq (pids compared);
* one port added on one network (the per-change cost at this scale);
* teardown: the agent loses all networks.

With a breakdown: wall time per op type, per external command (``ip ...``,
``ovs-vsctl``, ``sysctl``), in ``observe`` and in the planner; and the
dnsmasq memory (RSS and PSS, mean per network).

api (``neutrino up`` in a temporary state dir, the real agents):

* port create -> lease: ~30 ports created one at a time on a network with a
  DHCP subnet; per port, from just before the POST: the MAC in the network's
  ``host`` file, dnsmasq re-reading that file (seen with fanotify: dnsmasq's
  pid opening ``host``, and the content it read holds the MAC), and a probe
  DHCP client (raw socket in a namespace of the bench's own, on br-int with
  the network's local VLAN, DISCOVER every 50 ms with the port's MAC)
  getting the OFFER and ACK of the port's address;
* burst: 500 ports created on one network with bulk POSTs of 50, back to
  back: throughput (port changes/s until all 500 are in a host file dnsmasq
  has read), how many times dnsmasq re-read the host file (= SIGHUPs it
  handled) and per second, and per port the delay from its creation (its bulk
  POST answered) to dnsmasq knowing it (target >= 100 ports/s, leases
  current within 1 s of the port's creation).

TLS: on (the default ``neutrino up``: the agents follow the feed over mutual TLS, as users
run them); the bench's own API calls trust STATE/pki/ca.pem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import Timers, api_base, children_cpu, command_kind, free_offset, ms, pct, read_openrc, verify  # noqa: E402 - bench/ is on sys.path

from neutrino.agents.dhcp import agent as dhcp_agent  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.dhcp import render  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.dhcp.agent import DhcpDriver  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.dhcp.model import DhcpConfig, dhcp_device_id, namespace_name, tap_name  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.interface import InterfaceDriver  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.feed.state import State  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import dnsmasq as sysdnsmasq  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import netns as netns_mod  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import ovsdb as sysovs  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import process as sysprocess  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system.host import SystemHost  # noqa: E402 - imported after sys.path names the bench folder

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]
HOST = "dhcp-bench-host"
FEED_TYPES = frozenset({"network", "subnet", "port", "dhcp_binding"})


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def mem_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of ``pid`` in kB (0 when unknown)."""
    rss = pss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) ``pid`` has used so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = raw[raw.rfind(")") + 2 :].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def instrumented(drv: DhcpDriver, ops: Timers, cmds: Timers, steps: Timers) -> Iterator[None]:
    """Time, while active: every op the driver applies (by type), every external command
    (``subprocess.run`` / ``Popen`` by tool and verb), ``observe`` and the planner."""
    real_run = subprocess.run
    real_plan, real_observe, real_apply = dhcp_agent.plan, drv.observe, drv.apply

    def run(argv: Any, *a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_run(argv, *a, **kw)
        finally:
            cmds.add(command_kind(argv), time.perf_counter() - t0)

    def timed(fn: Callable[..., Any], label: str, into: Timers) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                into.add(label if label else type(a[0]).__name__, time.perf_counter() - t0)

        return wrapper

    subprocess.run = run
    dhcp_agent.plan = timed(real_plan, "plan (pure)", steps)
    drv.observe = timed(real_observe, "observe", steps)
    drv.apply = timed(real_apply, "", ops)
    try:
        yield
    finally:
        subprocess.run = real_run
        dhcp_agent.plan = real_plan
        del drv.observe, drv.apply


# --------------------------------------------------------------------------
# part 1: full resync, in-process
# --------------------------------------------------------------------------


def build_state(n_nets: int, per_net: int, rev: int = 1) -> tuple[State, list[str]]:
    nets: dict[str, Any] = {}
    subnets: dict[str, Any] = {}
    ports: dict[str, Any] = {}
    bindings: dict[str, Any] = {}
    mac_seq = 0

    def port(nid: str, sid: str, ip: str, owner: str, device_id: str) -> None:
        nonlocal mac_seq
        mac_seq += 1
        pid = str(uuid.uuid4())
        ports[pid] = {
            "id": pid,
            "network_id": nid,
            "project_id": "bench",
            "mac_address": f"fa:16:3e:{(mac_seq >> 16) & 255:02x}:{(mac_seq >> 8) & 255:02x}:{mac_seq & 255:02x}",
            "fixed_ips": [{"subnet_id": sid, "ip_address": ip}],
            "device_owner": owner,
            "device_id": device_id,
            "admin_state_up": True,
            "binding:host_id": "",
            "extra_dhcp_opts": [],
            "dns_assignment": [],
        }

    for i in range(n_nets):
        nid, sid = str(uuid.uuid4()), str(uuid.uuid4())
        base = f"10.{100 + i // 256}.{i % 256}"
        nets[nid] = {
            "id": nid,
            "name": f"dhb-{i}",
            "mtu": 1450,
            "admin_state_up": True,
            "subnets": [sid],
            "project_id": "bench",
            "status": "ACTIVE",
        }
        subnets[sid] = {
            "id": sid,
            "network_id": nid,
            "ip_version": 4,
            "cidr": f"{base}.0/24",
            "gateway_ip": f"{base}.1",
            "enable_dhcp": True,
            "dns_nameservers": [],
            "host_routes": [],
            "ipv6_address_mode": None,
            "ipv6_ra_mode": None,
            "segment_id": None,
            "project_id": "bench",
        }
        port(nid, sid, f"{base}.2", "network:dhcp", dhcp_device_id(HOST, nid))
        for k in range(per_net):
            port(nid, sid, f"{base}.{10 + k}", "compute:nova", str(uuid.uuid4()))
        bindings[nid] = {"id": nid, "network_id": nid, "agent_ids": ["bench-agent"], "hosts": [HOST]}
    state = State(rev, {"network": nets, "subnet": subnets, "port": ports, "dhcp_binding": bindings}, FEED_TYPES)
    return state, list(nets)


def dnsmasq_pids(drv: DhcpDriver, net_ids: Sequence[str]) -> dict[str, int | None]:
    return {n: sysprocess.pid_of(drv._spec(n)) for n in net_ids}


def resync_bench(n_nets: int, per_net: int, budget: float) -> None:
    print(f"\n## DHCP agent resync, {n_nets} networks / {n_nets * per_net} ports (in-process, no API)\n")
    ns = "dhb-" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-dhb-"))
    confs = tmp / "dhcp"
    confs.mkdir()
    for p in (tmp, confs):
        p.chmod(0o755)  # dnsmasq drops privileges and re-reads its files as nobody
    po = sysovs.PrivateOvs(tmp / "ovs", ns)
    net_ids: list[str] = []
    cfg = DhcpConfig(host=HOST, state_dir=str(confs), enable_isolated_metadata=True)
    deadline = time.monotonic() + budget
    try:
        netns_mod.ensure_netns(ns)
        ovs = po.start()
        ovs.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
        state, net_ids = build_state(n_nets, per_net)
        host = SystemHost(ovs)
        iface = InterfaceDriver(host, "br-int")

        def measure(label: str, drv: DhcpDriver, st: State, target: str = "") -> float:
            ops, cmds, steps = Timers(), Timers(), Timers()
            vsw = sysprocess.pid_of(po.vswitchd)
            cpu0, kids0, vsw0 = time.process_time(), children_cpu(), proc_cpu(vsw)
            t0 = time.perf_counter()
            with instrumented(drv, ops, cmds, steps):
                asyncio.run(drv.reconcile(st, True))
            dt = time.perf_counter() - t0
            cpu, kids, vswc = time.process_time() - cpu0, children_cpu() - kids0, proc_cpu(vsw) - vsw0
            print(
                f"* {label}: **{ms(dt)}**{target}; CPU: agent {ms(cpu)}, commands it ran {ms(kids)}, "
                f"ovs-vswitchd {ms(vswc)} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            )
            if steps.n:
                print(f"  - steps: {steps.text()}")
            print(f"  - ops applied: {sum(ops.n.values())} ({ops.text() or 'none'})")
            if cmds.n:
                print(
                    f"  - external commands (besides dnsmasq): {sum(cmds.n.values())}, "
                    f"{ms(sum(cmds.t.values()))}: {cmds.text()}"
                )
            workers = getattr(dhcp_agent, "WORKERS", 1)
            if (ops.n or cmds.n) and workers > 1:
                print(
                    f"  - (op and command times are summed over the executor's threads: up to {workers} "
                    f"networks at a time)"
                )
            return dt

        cold = DhcpDriver(cfg, iface, host=host)
        measure("cold sync (fresh driver, nothing exists)", cold, state, " (target <= 15 s)")
        pids = dnsmasq_pids(cold, net_ids)
        up = [p for p in pids.values() if p is not None]
        mem = [mem_kb(p) for p in up]
        print(
            f"  - dnsmasqs running: {len(up)}/{n_nets}; memory per dnsmasq: RSS mean "
            f"{sum(m[0] for m in mem) / max(1, len(mem)) / 1024:.2f} MB, PSS mean "
            f"{sum(m[1] for m in mem) / max(1, len(mem)) / 1024:.2f} MB "
            f"(total PSS {sum(m[1] for m in mem) / 1024:.0f} MB)"
        )

        warm = DhcpDriver(cfg, iface, host=host)
        measure(
            "warm sync (agent restarted: fresh driver, everything in place)", warm, state, " (should be near no-op)"
        )
        after = dnsmasq_pids(warm, net_ids)
        changed = sum(1 for n in net_ids if pids[n] != after[n])
        print(
            f"  - dnsmasq pids changed by the warm sync: {changed} of {n_nets}"
            + (" (OK: none restarted)" if changed == 0 else " (restarted healthy dnsmasqs!)")
        )
        measure("no-op pass (feed moved, nothing changed for this host)", warm, build_rev(state, 2))

        # one more port on one network: the cost of one feed change at this scale
        lat = []
        st = state
        for k in range(5):
            if time.monotonic() > deadline:
                break
            st = add_port(st, net_ids[k], 200 + k)
            ops, cmds, steps = Timers(), Timers(), Timers()
            t0 = time.perf_counter()
            with instrumented(warm, ops, cmds, steps):
                asyncio.run(warm.reconcile(st, True))
            lat.append(time.perf_counter() - t0)
        if lat:
            print(
                f"* one port added on one network (reconcile = observe all + write host + SIGHUP): "
                f"p50 **{ms(pct(lat, 50))}**, max {ms(max(lat))} ({len(lat)} samples); last one: "
                f"{steps.text()}; ops {ops.text()}"
            )
        final = dnsmasq_pids(warm, net_ids)
        print(
            f"  - dnsmasq pids changed since the cold sync: "
            f"{sum(1 for n in net_ids if pids[n] != final[n])} of {n_nets}"
        )

        empty = State(st.revision + 1, {t: {} for t in FEED_TYPES}, FEED_TYPES)
        measure("teardown (every network unscheduled from this host)", warm, empty)
    finally:
        # Safety net: whatever the bench created goes, verified pids only.
        for nid in net_ids:
            with contextlib.suppress(Exception):
                sysdnsmasq.stop(sysdnsmasq.spec(nid, ("dnsmasq",), confs / nid / render.FILE_PID, namespace_name(nid)))
            with contextlib.suppress(Exception):
                netns_mod.remove_netns(namespace_name(nid))
        po.destroy()
        netns_mod.remove_netns(ns)
        shutil.rmtree(tmp, ignore_errors=True)


def build_rev(state: State, rev: int) -> State:
    return State(rev, state.objects, state.types)


def add_port(state: State, net_id: str, host_octet: int) -> State:
    sub = next(s for s in state.of("subnet").values() if s["network_id"] == net_id)
    base = sub["cidr"].rsplit(".", 1)[0]
    pid = str(uuid.uuid4())
    mac = "fa:16:3f:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))
    ports = dict(state.of("port"))
    ports[pid] = {
        "id": pid,
        "network_id": net_id,
        "mac_address": mac,
        "device_owner": "compute:nova",
        "device_id": str(uuid.uuid4()),
        "admin_state_up": True,
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": f"{base}.{host_octet}"}],
    }
    return State(state.revision + 1, {**state.objects, "port": ports}, state.types)


# --------------------------------------------------------------------------
# probes: a raw-socket DHCP client, and a watch on the host file
# --------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the calling thread in namespace ``name`` (sockets made inside stay there)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


def _ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def dhcp_frame(mac: str, xid: int, msg_type: int, requested: str | None = None, server: str | None = None) -> bytes:
    """A broadcast DHCPDISCOVER (1) / DHCPREQUEST (3) from ``mac`` (broadcast flag set)."""
    hw = bytes.fromhex(mac.replace(":", ""))
    opts = bytes([53, 1, msg_type])
    if requested:
        opts += bytes([50, 4]) + socket.inet_aton(requested)
    if server:
        opts += bytes([54, 4]) + socket.inet_aton(server)
    opts += bytes([55, 4, 1, 3, 6, 15, 255])
    bootp = (
        struct.pack(
            "!BBBBIHH4s4s4s4s16s64s128sI",
            1,
            1,
            6,
            0,
            xid,
            0,
            0x8000,
            b"\0" * 4,
            b"\0" * 4,
            b"\0" * 4,
            b"\0" * 4,
            hw + b"\0" * 10,
            b"",
            b"",
            0x63825363,
        )
        + opts
    )
    bootp += b"\0" * max(0, 300 - len(bootp))
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), random.randrange(65536), 0, 64, 17, 0, b"\0" * 4, b"\xff" * 4
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    return b"\xff" * 6 + hw + b"\x08\x00" + ip + udp


def parse_reply(frame: bytes) -> tuple[int, int, str, str | None] | None:
    """(xid, DHCP message type, yiaddr, server id) of a BOOTREPLY, else None."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    udp = 14 + (frame[14] & 0xF) * 4
    if struct.unpack_from("!H", frame, udp + 2)[0] != 68:
        return None
    b = udp + 8
    if frame[b] != 2 or frame[b + 236 : b + 240] != b"\x63\x82\x53\x63":
        return None
    xid = struct.unpack_from("!I", frame, b + 4)[0]
    yiaddr = socket.inet_ntoa(frame[b + 16 : b + 20])
    i, mtype, server = b + 240, 0, None
    while i < len(frame) and frame[i] != 255:
        if frame[i] == 0:
            i += 1
            continue
        code, ln = frame[i], frame[i + 1]
        val = frame[i + 2 : i + 2 + ln]
        if code == 53 and ln:
            mtype = val[0]
        elif code == 54 and ln == 4:
            server = socket.inet_ntoa(val)
        i += 2 + ln
    return xid, mtype, yiaddr, server


class DhcpProbe:
    """A namespace of the bench's own, with a veth on br-int in VLAN ``tag``, and a raw
    socket in it that plays a DHCP client for any MAC (replies are broadcast)."""

    def __init__(self, ovs: sysovs.Ovs, bridge: str, tag: int) -> None:
        self.ovs, self.bridge = ovs, bridge
        suffix = uuid.uuid4().hex[:6]
        self.ns, self.dev = f"dhb-probe-{suffix}", f"dhbp{suffix}"
        self.sock: socket.socket | None = None
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        try:
            subprocess.run(
                [
                    "ip",
                    "link",
                    "add",
                    self.dev,
                    "netns",
                    ovs.netns or "1",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    self.ns,
                ],
                check=True,
            )
            subprocess.run(["ip", "-n", self.ns, "link", "set", "eth0", "up"], check=True)
            subprocess.run(["ip", *(["-n", ovs.netns] if ovs.netns else []), "link", "set", self.dev, "up"], check=True)
            for ns, dev in ((self.ns, "eth0"), (ovs.netns, self.dev)):
                subprocess.run(
                    ["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off"]
                    if ns
                    else ["ethtool", "-K", dev, "tx", "off", "rx", "off"],
                    capture_output=True,
                )
            ovs.transact([sysovs.AddPort(bridge, self.dev, tag=tag)])
            with in_netns(self.ns):
                self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
            self.sock.bind(("eth0", 0))
        except BaseException:
            self.close()
            raise

    def lease(
        self, mac: str, want_ip: str, t0: float, timeout: float = 10.0, every: float = 0.05
    ) -> tuple[float | None, float | None, int]:
        """DISCOVER every ``every`` s until an OFFER of ``want_ip``, then REQUEST until ACK.
        Returns (OFFER time, ACK time, DISCOVERs sent), times relative to ``t0``."""
        assert self.sock is not None
        xid = random.randrange(1 << 32)
        end = time.perf_counter() + timeout
        offer_at = ack_at = None
        server = None
        sent = 0
        next_send = 0.0
        while time.perf_counter() < end:
            now = time.perf_counter()
            if now >= next_send:
                if offer_at is None:
                    self.sock.send(dhcp_frame(mac, xid, 1))
                    sent += 1
                else:
                    self.sock.send(dhcp_frame(mac, xid, 3, requested=want_ip, server=server))
                next_send = now + every
            r, _, _ = select.select([self.sock], [], [], max(0.0, min(next_send, end) - time.perf_counter()))
            if not r:
                continue
            got = parse_reply(self.sock.recv(4096))
            if got is None or got[0] != xid:
                continue
            _, mtype, yiaddr, srv = got
            if mtype == 2 and offer_at is None and yiaddr == want_ip:
                offer_at, server = time.perf_counter() - t0, srv
                next_send = 0.0
            elif mtype == 5 and offer_at is not None:
                ack_at = time.perf_counter() - t0
                break
        return offer_at, ack_at, sent

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        with contextlib.suppress(Exception):
            self.ovs.transact([sysovs.DelPort(self.dev, self.bridge)])
        subprocess.run(["ip", "netns", "del", self.ns], check=False, capture_output=True)


FAN_CLASS_NOTIF, FAN_CLOEXEC, FAN_NONBLOCK = 0, 1, 2
FAN_OPEN, FAN_EVENT_ON_CHILD, FAN_MARK_ADD = 0x20, 0x08000000, 1
AT_FDCWD = -100
_EVENT = struct.Struct("IBBHQiI")


def _macs(text: str) -> set[str]:
    return {line.split(",", 1)[0].lower() for line in text.splitlines() if "," in line}


class HostFileWatch:
    """Per MAC: when it first appeared in ``<conf dir>/host`` as written by the agent (the file is
    replaced atomically: polled by inode every 2 ms) and as read by dnsmasq (fanotify: an open of
    ``host`` by dnsmasq's pid, i.e. a reload it handled; the content it read is checked)."""

    def __init__(self, conf_dir: Path, dnsmasq_pid: int) -> None:
        self.dir, self.pid = conf_dir, dnsmasq_pid
        self.written: dict[str, float] = {}
        self.read: dict[str, float] = {}
        self.writes: list[float] = []
        self.reloads: list[float] = []
        self.stop = threading.Event()
        self.fan = _libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY)
        if self.fan < 0:
            raise OSError(ctypes.get_errno(), "fanotify_init")
        _libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
        if (
            _libc.fanotify_mark(self.fan, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD, AT_FDCWD, str(conf_dir).encode())
            != 0
        ):
            raise OSError(ctypes.get_errno(), "fanotify_mark")
        self._ino = None
        self._seen_write: set[str] = set()
        self._poll_once()
        self.threads = [
            threading.Thread(target=self._poll, daemon=True),
            threading.Thread(target=self._fanotify, daemon=True),
        ]
        for th in self.threads:
            th.start()

    def _poll_once(self) -> None:
        path = self.dir / render.FILE_HOST
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._ino:
            return
        now = time.perf_counter()
        self._ino = key
        with contextlib.suppress(FileNotFoundError):
            macs = _macs(path.read_text())
            self.writes.append(now)
            for m in macs:
                self.written.setdefault(m, now)

    def _poll(self) -> None:
        while not self.stop.is_set():
            self._poll_once()
            time.sleep(0.002)

    def _fanotify(self) -> None:
        while not self.stop.is_set():
            r, _, _ = select.select([self.fan], [], [], 0.1)
            if not r:
                continue
            try:
                buf = os.read(self.fan, 8192)
            except BlockingIOError:
                continue
            now = time.perf_counter()
            off = 0
            while off + _EVENT.size <= len(buf):
                ln, _, _, _, _, efd, pid = _EVENT.unpack_from(buf, off)
                off += ln
                if efd < 0:
                    continue
                try:
                    if pid == self.pid and os.readlink(f"/proc/self/fd/{efd}").endswith("/" + render.FILE_HOST):
                        chunks = []
                        pos = 0
                        while True:
                            c = os.pread(efd, 1 << 20, pos)
                            if not c:
                                break
                            chunks.append(c)
                            pos += len(c)
                        self.reloads.append(now)
                        for m in _macs(b"".join(chunks).decode("utf-8", "replace")):
                            self.read.setdefault(m, now)
                finally:
                    os.close(efd)

    def close(self) -> None:
        self.stop.set()
        for th in self.threads:
            th.join(timeout=2)
        os.close(self.fan)

    def wait(self, macs: Sequence[str], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(m in self.read for m in macs):
                return True
            time.sleep(0.005)
        return False


# --------------------------------------------------------------------------
# part 2 + 3: through the API (`neutrino up`)
# --------------------------------------------------------------------------


def get_token(env: Mapping[str, str]) -> tuple[str, str]:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": env["OS_USERNAME"], "domain": {"name": "Default"}, "password": env["OS_PASSWORD"]}
                },
            },
            "scope": {"project": {"name": env["OS_PROJECT_NAME"], "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(f"{env['OS_AUTH_URL'].rstrip('/')}/auth/tokens", json=body, timeout=30, verify=verify(env))
    r.raise_for_status()
    return r.headers["X-Subject-Token"], r.json()["token"]["project"]["id"]


def wait_for(pred: Callable[[], Any], timeout: float, step: float = 0.02) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


class DhcpNet:
    """A network + DHCP subnet through the API, waited for until dnsmasq runs and its tap is wired."""

    def __init__(self, c: httpx.Client, ovs: sysovs.Ovs, confs: Path, name: str, cidr: str, wired: bool = True) -> None:
        t0 = time.perf_counter()
        self.net = c.post("/v2.0/networks", json={"network": {"name": name}}).json()["network"]
        c.post(
            "/v2.0/subnets", json={"subnet": {"network_id": self.net["id"], "ip_version": 4, "cidr": cidr}}
        ).raise_for_status()
        self.id = self.net["id"]
        self.conf = confs / self.id
        spec = sysdnsmasq.spec(self.id, ("dnsmasq",), self.conf / render.FILE_PID, namespace_name(self.id))
        self.pid = wait_for(lambda: sysprocess.pid_of(spec), 30)
        self.dnsmasq_s = time.perf_counter() - t0

        def tag() -> int | None:
            ports = c.get("/v2.0/ports", params={"network_id": self.id, "device_owner": "network:dhcp"}).json()["ports"]
            if not ports:
                return None
            t = ovs.get("Port", tap_name(ports[0]["id"]), "tag")
            return t if isinstance(t, int) and t != 4095 else None

        self.tag = wait_for(tag, 40, 0.05) if wired else None
        self.ready_s = time.perf_counter() - t0


def api_bench(n_lease: int, n_burst: int, bulk: int, budget: float, keep: bool) -> None:
    print("\n## Through the API (`neutrino up`: server, private OVS, ovs + dhcp + compute agents)\n")
    state = Path(tempfile.mkdtemp(prefix="neutrino-dhb-api-"))
    state.chmod(0o755)
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(state))
    off = free_offset()
    deadline = time.monotonic() + budget
    probe = watch = None
    try:
        t0 = time.perf_counter()
        subprocess.run(
            [*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(off)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        print(f"`neutrino up` (until the agents report alive): {ms(time.perf_counter() - t0)}")
        from neutrino.agents.ovs.host_config import host_ovs
        from neutrino.cli.main import load_config

        cfg = load_config(state / "neutrino.conf", state, off)
        ovs = host_ovs(cfg)
        confs = dhcp_agent.confs_dir(cfg)
        admin = read_openrc(state / "admin-openrc")
        tok, project = get_token(admin)
        c = httpx.Client(
            base_url=api_base(admin, 9696 + off), headers={"X-Auth-Token": tok}, timeout=60, verify=verify(admin)
        )
        c.put(f"/v2.0/quotas/{project}", json={"quota": {"port": -1, "network": -1, "subnet": -1}}).raise_for_status()

        # ---- part 2: port create -> lease, one port at a time ----
        net = DhcpNet(c, ovs, confs, "dhb-lease", "10.93.0.0/24")
        print(
            f"* network + subnet create -> dnsmasq running: {ms(net.dnsmasq_s)}; -> its tap wired by the "
            f"OVS agent: {ms(net.ready_s)}"
        )
        if net.pid is None or net.tag is None:
            print("  (DHCP not ready: no lease figures)")
            return
        probe = DhcpProbe(ovs, cfg.ovs.integration_bridge, net.tag)
        watch = HostFileWatch(net.conf, net.pid)
        rows = []
        for i in range(n_lease):
            if time.monotonic() > deadline - 90:
                print(f"  (stopped after {i} of {n_lease} ports: time budget)")
                break
            t0 = time.perf_counter()
            r = c.post("/v2.0/ports", json={"port": {"network_id": net.id, "name": f"dhb-{i}"}})
            r.raise_for_status()
            port = r.json()["port"]
            t_post = time.perf_counter() - t0
            mac, ip = port["mac_address"], port["fixed_ips"][0]["ip_address"]
            offer, ack, sent = probe.lease(mac, ip, t0)
            wr = watch.written.get(mac)
            rd = watch.read.get(mac)
            rows.append((t_post, None if wr is None else wr - t0, None if rd is None else rd - t0, offer, ack, sent))
            time.sleep(0.2)  # let the agent go idle between ports
        if rows:

            def col(k: int) -> list[float]:
                return [r[k] for r in rows if r[k] is not None]

            def line(name: str, k: int) -> str:
                v = col(k)
                miss = len(rows) - len(v)
                return (
                    f"{name} p50 **{ms(pct(v, 50))}**, p99 {ms(pct(v, 99))}, max {ms(max(v, default=float('nan')))}"
                    + (f" ({miss} never)" if miss else "")
                )

            print(
                f"\n### Port create -> lease available, one port at a time ({len(rows)} ports, "
                f"times from just before the POST)\n"
            )
            print(f"* POST /v2.0/ports answered: {line('', 0).strip()}")
            print(f"* MAC in the network's host file (written by the agent): {line('', 1).strip()}")
            print(f"* dnsmasq re-read a host file holding it (its SIGHUP handled): {line('', 2).strip()}")
            print(
                f"* probe client got the OFFER of the port's address: {line('', 3).strip()}"
                f" (DISCOVER every 50 ms; {sum(r[5] for r in rows) / len(rows):.1f} sent per port)"
            )
            print(f"* probe client got the ACK (lease available): {line('', 4).strip()}")
        watch.close()
        watch = None
        probe.close()
        probe = None

        # ---- part 3: a burst of port creates on one network ----
        if n_burst and time.monotonic() < deadline - 60:
            net = DhcpNet(c, ovs, confs, "dhb-burst", "10.94.0.0/16", wired=False)
            if net.pid is None:
                print("  (burst network: DHCP not ready)")
                return
            watch = HostFileWatch(net.conf, net.pid)
            time.sleep(0.5)
            reloads0, writes0 = len(watch.reloads), len(watch.writes)
            created: dict[str, float] = {}
            post_lat = []
            t_start = time.perf_counter()
            for s in range(0, n_burst, bulk):
                n = min(bulk, n_burst - s)
                t0 = time.perf_counter()
                r = c.post("/v2.0/ports", json={"ports": [{"network_id": net.id} for _ in range(n)]})
                r.raise_for_status()
                t1 = time.perf_counter()
                post_lat.append(t1 - t0)
                for p in r.json()["ports"]:
                    created[p["mac_address"]] = t1
            t_posted = time.perf_counter()
            done = watch.wait(list(created), 60)
            t_end = max((watch.read[m] for m in created if m in watch.read), default=time.perf_counter())
            time.sleep(1.0)  # catch trailing reloads
            reloads = [t for t in watch.reloads[reloads0:] if t <= t_end + 1e-3]
            writes = [t for t in watch.writes[writes0:] if t <= t_end + 1e-3]
            lag = [watch.read[m] - created[m] for m in created if m in watch.read]
            lag_w = [watch.written[m] - created[m] for m in created if m in watch.written]
            window = t_end - t_start
            print(f"\n### Burst: {n_burst} ports created on one network, bulk POSTs of {bulk} back to back\n")
            print(
                f"* the {len(post_lat)} bulk POSTs took {ms(t_posted - t_start)} in all "
                f"(p50 {ms(pct(post_lat, 50))} each) = {n_burst / (t_posted - t_start):.0f} ports/s created"
            )
            print(
                f"* all {n_burst} in a host file dnsmasq has read: {ms(window)} after the first POST = "
                f"**{n_burst / window:.0f} port changes/s** (target >= 100/s)"
                + ("" if done else f"; only {len(lag)} of {n_burst} within 60 s")
            )
            print(
                f"* host file written {len(writes)} times, re-read by dnsmasq (SIGHUPs handled) "
                f"{len(reloads)} times in {ms(window)} = **{len(reloads) / window:.1f} reloads/s**"
            )
            print(
                f"* port created (its bulk POST answered) -> dnsmasq has it: p50 **{ms(pct(lag, 50))}**, "
                f"p99 **{ms(pct(lag, 99))}**, max {ms(max(lag, default=float('nan')))}; "
                f"{sum(1 for x in lag if x > 1)} of {len(lag)} took > 1 s (target: within 1 s)"
            )
            print(f"  - -> in the host file (agent wrote it): p50 {ms(pct(lag_w, 50))}, p99 {ms(pct(lag_w, 99))}")
            mem = mem_kb(net.pid)
            print(f"* that dnsmasq with {n_burst} hosts: RSS {mem[0] / 1024:.1f} MB, PSS {mem[1] / 1024:.1f} MB")
            agent_pid = agent_pid_of(state, "dhcp-agent")
            if agent_pid:
                m = mem_kb(agent_pid)
                print(f"* DHCP agent process: RSS {m[0] / 1024:.0f} MB")
    finally:
        if watch is not None:
            watch.close()
        if probe is not None:
            probe.close()
        subprocess.run(
            [*NEUTRINO, "down", "--state-dir", str(state), "--purge"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"(state kept in {state})")


def agent_pid_of(state: Path, name: str) -> int | None:
    try:
        return int(json.loads((state / "run" / f"{name}.pid").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("resync", "api"))
    ap.add_argument("--networks", type=int, default=200)
    ap.add_argument("--ports-per-net", type=int, default=10)
    ap.add_argument("--lease-ports", type=int, default=30)
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--bulk", type=int, default=50)
    ap.add_argument("--keep", action="store_true", help="keep the API part's state dir")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None or shutil.which("dnsmasq") is None:
        print("needs root, Open vSwitch and dnsmasq", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.only in (None, "resync"):
        resync_bench(args.networks, args.ports_per_net, budget=150)
    if args.only in (None, "api"):
        api_bench(args.lease_ports, args.burst, args.bulk, budget=150, keep=args.keep)
    print(f"\n(total {time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
