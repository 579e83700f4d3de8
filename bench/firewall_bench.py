#!/usr/bin/env python3
"""Firewall benchmark (issue 7): the OVS conntrack firewall's cost.  Prints figures; asserts nothing.

    .venv/bin/python bench/firewall_bench.py [--only rules|throughput] [--ports 500] [--seconds 5]

Needs root and Open vSwitch.  About 2-4 minutes on a 2-core machine.

rules (in-process ``OvsDriver``, a private OVS in a throwaway namespace, N
VIF ports on 10 networks, all in the project's default group: egress
anything, ingress from the group itself):

* flows per port with the default group, then with a 50-rule group (TCP/UDP
  ports and ranges, ICMP, IPv6, 10 rules with a remote group);
* a rule change: one rule added to the group every port is in, then removed:
  feed change -> flows installed (target <= 1 s at 500 ports);
* a remote-group membership change: a port on another host joins the group
  (its address must be accepted by every port here), then leaves.

Each figure: wall time (the reconcile pass, OVSDB + bundle included), the CPU
seconds of the agent, of the ovs tools it ran and of ovs-vswitchd, and the
flow mods sent.  On a busy machine wall time inflates much more than CPU time.

throughput: a private OVS with br-int wired by an in-process agent, two
namespace "instances" plugged with veths (checksum offload off, as the
compute agent does), a Python TCP bulk transfer between them for --seconds,
with ``firewall_driver = openvswitch`` then ``noop`` (the order alternates
over --rounds); MB/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import pct  # noqa: E402 - bench/ is on sys.path
from l2_bench import (  # noqa: E402 - imported after sys.path names the bench folder
    DEFAULT_SG,
    Timers,
    breakdown,
    default_group_rules,
    flow_count,
    instrument_planner,
    make_port,
    ms,
    stop,
    timed_runner,
    vif_op,
    vswitchd_cpu,
    vxlan_networks,
)

from neutrino.agents.ovs.agent import OvsDriver  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.ovs.model import AgentConfig  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.feed.state import State  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import iproute  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import netns as netns_mod  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import ovsdb as sysovs  # noqa: E402 - imported after sys.path names the bench folder

HOST = "fw-bench-host"
TYPES = frozenset({"port", "network", "agent", "security_group_rule"})


def rule(
    rid: str,
    group: str,
    direction: str,
    ethertype: str = "IPv4",
    protocol: str | None = None,
    lo: int | None = None,
    hi: int | None = None,
    prefix: str | None = None,
    remote: str | None = None,
) -> dict[str, Any]:
    return {
        "id": rid,
        "security_group_id": group,
        "direction": direction,
        "ethertype": ethertype,
        "protocol": protocol,
        "port_range_min": lo,
        "port_range_max": hi,
        "remote_ip_prefix": prefix,
        "remote_group_id": remote,
    }


def fifty_rules(group: str) -> dict[str, dict[str, Any]]:
    """A 50-rule group: the default group's 4, TCP/UDP ports and ranges from prefixes, ICMP,
    IPv6, and 10 rules from remote groups (the default group and itself)."""
    out = {r["id"]: dict(r, security_group_id=group) for r in default_group_rules(group).values()}
    specs: list[tuple[Any, ...]] = []
    for i, port in enumerate((22, 80, 443, 3306, 5432, 6379, 8080, 9090, 11211, 27017)):
        specs.append(("ingress", "IPv4", "tcp", port, port, f"172.16.{i}.0/24", None))
    for i, (lo, hi) in enumerate(
        (
            (1000, 1999),
            (3000, 3100),
            (5000, 5005),
            (6000, 6999),
            (8000, 8099),
            (10000, 10999),
            (20000, 20100),
            (30000, 30009),
        )
    ):
        specs.append(("ingress", "IPv4", "tcp" if i % 2 else "udp", lo, hi, "0.0.0.0/0", None))
    for i, port in enumerate((53, 123, 161, 514, 1812, 4789, 5353, 6081)):
        specs.append(("ingress", "IPv4", "udp", port, port, f"10.{100 + i}.0.0/16", None))
    for t, c in ((0, 0), (8, 0), (3, None), (11, None)):
        specs.append(("ingress", "IPv4", "icmp", t, c, None, None))
    for port in (22, 80, 443, 8443):
        specs.append(("ingress", "IPv6", "tcp", port, port, "2001:db8::/32", None))
    specs.append(("ingress", "IPv6", "ipv6-icmp", None, None, None, None))
    specs.append(("egress", "IPv4", "tcp", 25, 25, "192.0.2.0/24", None))
    for i, port in enumerate((2379, 2380, 4001, 7000, 7001, 8300, 8301, 9100, 9200, 9300)):
        specs.append(("ingress", "IPv4", "tcp", port, port, None, DEFAULT_SG if i % 2 else group))
    for i, (d, e, p, lo, hi, prefix, remote) in enumerate(specs, start=len(out)):
        rid = f"{group}-r{i}"
        out[rid] = rule(rid, group, d, e, p, lo, hi, prefix, remote)
    assert len(out) == 50, len(out)
    return out


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# --------------------------------------------------------------------------
# rules: rule change, membership change, flows per port
# --------------------------------------------------------------------------


def rules_bench(n_ports: int, n_nets: int, repeat: int) -> None:
    print(f"\n## Security-group changes at {n_ports} ports on {n_nets} networks (in-process agent)\n")
    timers = Timers()
    ns = "fwb-" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-fwb-"))
    po = sysovs.PrivateOvs(tmp / "ovs", ns, runner=timed_runner(timers))
    drv = None
    try:
        netns_mod.ensure_netns(ns)
        ovs = po.start()
        cfg = AgentConfig(host=HOST, local_ip="127.0.0.1", tunnel_types=("vxlan",), datapath_type="netdev")
        nets = vxlan_networks(n_nets, first_vni=2000)
        net_ids = list(nets)
        ports: dict[str, Any] = {}
        for i in range(n_ports):
            p = make_port(i + 1, net_ids[i % n_nets], host=HOST)
            ports[p["id"]] = p
        ovs.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
        plist = list(ports.values())
        for s in range(0, n_ports, 250):
            ovs.transact([vif_op(p) for p in plist[s : s + 250]])
        rules = default_group_rules()
        rev = [0]

        def state() -> State:
            rev[0] += 1
            return State(
                rev[0], {"port": dict(ports), "network": nets, "agent": {}, "security_group_rule": dict(rules)}, TYPES
            )

        drv = OvsDriver(cfg, ovs)

        def measure(label: str, fn: Callable[[], Any], target: str = "") -> tuple[float, float]:
            timers.reset()
            c0, k0, v0 = time.process_time(), children_cpu(), vswitchd_cpu(tmp / "ovs")
            t0 = time.perf_counter()
            with instrument_planner(timers):
                fn()
            dt = time.perf_counter() - t0
            cpu = time.process_time() - c0
            t, n, extra = timers.snapshot()
            print(
                f"* {label}: **{ms(dt)}**{target}; CPU: agent {ms(cpu)}, ovs tools "
                f"{ms(children_cpu() - k0)}, ovs-vswitchd {ms(vswitchd_cpu(tmp / 'ovs') - v0)}"
            )
            print(f"  - {breakdown(dt, t, n, extra)}")
            return dt, cpu

        def flows_per_port(label: str) -> None:
            count = flow_count(drv, "br-int")
            print(f"* flows on br-int with {label}: {count} ({count / n_ports:.1f} per port)")

        measure("cold sync, default group", lambda: drv.reconcile_sync(state(), True))
        flows_per_port("the default group (4 rules, remote group = itself)")

        # Rule change: one rule added to / removed from the group of every port.
        add_lat: list[float] = []
        del_lat: list[float] = []
        for k in range(repeat):
            rid = f"bench-http-{k}"
            rules[rid] = rule(rid, DEFAULT_SG, "ingress", "IPv4", "tcp", 8000 + k, 8000 + k, "0.0.0.0/0")
            add_lat.append(
                measure(
                    f"rule added to the group of all {n_ports} ports (#{k + 1})",
                    lambda: drv.reconcile_sync(state(), True),
                    " (target <= 1 s)",
                )[0]
            )
            del rules[rid]
            del_lat.append(measure(f"rule removed (#{k + 1})", lambda: drv.reconcile_sync(state(), True))[0])
        print(f"* rule change p50: added {ms(pct(add_lat, 50))}, removed {ms(pct(del_lat, 50))}")

        # Membership change: a port of another host joins the default group, then leaves.
        join_lat: list[float] = []
        leave_lat: list[float] = []
        for k in range(repeat):
            remote = make_port(n_ports + 100 + k, net_ids[0], host="elsewhere")
            remote["fixed_ips"] = [{"ip_address": f"192.168.{k}.7"}]
            ports[remote["id"]] = remote
            join_lat.append(
                measure(f"remote port joins the group (#{k + 1})", lambda: drv.reconcile_sync(state(), True))[0]
            )
            del ports[remote["id"]]
            leave_lat.append(measure(f"remote port leaves (#{k + 1})", lambda: drv.reconcile_sync(state(), True))[0])
        print(f"* membership change p50: join {ms(pct(join_lat, 50))}, leave {ms(pct(leave_lat, 50))}")

        # The same ports in a 50-rule group.
        big = fifty_rules("sg-big")
        rules.update(big)
        for pid in list(ports):
            ports[pid] = dict(ports[pid], security_groups=["sg-big"])
        measure("all ports moved to a 50-rule group", lambda: drv.reconcile_sync(state(), True))
        flows_per_port("a 50-rule group (10 rules with a remote group)")
        rid = "sg-big-extra"
        rules[rid] = rule(rid, "sg-big", "ingress", "IPv4", "tcp", 7777, 7777, "0.0.0.0/0")
        measure("rule added to the 50-rule group", lambda: drv.reconcile_sync(state(), True), " (target <= 1 s)")
        del rules[rid]
        measure("rule removed from the 50-rule group", lambda: drv.reconcile_sync(state(), True))
    finally:
        if drv is not None:
            stop(drv)
        po.destroy()
        netns_mod.remove_netns(ns)
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# throughput between two instances
# --------------------------------------------------------------------------

RECEIVER = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n = 0; t0 = None; buf = bytearray(1 << 20)
while True:
    k = c.recv_into(buf)
    if not k: break
    if t0 is None: t0 = time.perf_counter()
    n += k
print(n, time.perf_counter() - (t0 or time.perf_counter()), flush=True)
"""

SENDER = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
chunk = b"x" * (1 << 16); end = time.perf_counter() + float(sys.argv[3])
while time.perf_counter() < end: c.sendall(chunk)
c.close()
"""


def transfer(src_ns: str, dst_ns: str, dst_ip: str, seconds: float, port: int = 5201) -> float:
    """MB/s of one TCP bulk transfer from ``src_ns`` to ``dst_ip`` in ``dst_ns``."""
    rx = subprocess.Popen(
        ["ip", "netns", "exec", dst_ns, sys.executable, "-c", RECEIVER, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert rx.stdout is not None and rx.stdout.readline().strip() == "ready"
        subprocess.run(
            ["ip", "netns", "exec", src_ns, sys.executable, "-c", SENDER, dst_ip, str(port), str(seconds)],
            check=True,
            timeout=seconds + 60,
        )
        out, _ = rx.communicate(timeout=60)
        n, dt = out.split()
        return int(n) / float(dt) / 1e6
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()


def throughput_bench(seconds: float, rounds: int) -> None:
    print(f"\n## Throughput between two instances on one host (TCP bulk, {seconds:g} s per run)\n")
    tag = uuid.uuid4().hex[:5]
    ovs_ns, vm_ns = f"fwt-{tag}", [f"fwt-{tag}-a", f"fwt-{tag}-b"]
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-fwt-"))
    po = sysovs.PrivateOvs(tmp / "ovs", ovs_ns)
    drivers: list[OvsDriver] = []
    try:
        for ns in (ovs_ns, *vm_ns):
            netns_mod.ensure_netns(ns)
        ovs = po.start()
        ovs.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
        cfg = AgentConfig(host=HOST, datapath_type="netdev")
        net = {
            "id": "fwt-net",
            "provider:network_type": "local",
            "provider:physical_network": None,
            "provider:segmentation_id": None,
            "mtu": 1500,
        }
        ports = {}
        for i, ns in enumerate(vm_ns, start=1):
            p = make_port(i, net["id"], host=HOST)
            p["fixed_ips"] = [{"ip_address": f"10.77.0.{i}"}]
            ports[p["id"]] = p
            tap = f"fwt{tag}{i}"
            iproute.ensure_veth(tap, "eth0", netns=ovs_ns, peer_netns=ns, mtu=1500, peer_mac=p["mac_address"])
            iproute.set_link(tap, netns=ovs_ns, up=True)
            iproute.set_link("eth0", netns=ns, up=True)
            iproute.set_link("lo", netns=ns, up=True)
            iproute.disable_offloads(tap, netns=ovs_ns)
            iproute.disable_offloads("eth0", netns=ns)
            iproute.ensure_address("eth0", f"10.77.0.{i}/24", netns=ns)
            ovs.transact(
                [
                    sysovs.AddPort(
                        "br-int",
                        tap,
                        external_ids={"iface-id": p["id"], "attached-mac": p["mac_address"], "iface-status": "active"},
                    )
                ]
            )
        st = State(
            1,
            {"port": ports, "network": {net["id"]: net}, "agent": {}, "security_group_rule": default_group_rules()},
            TYPES,
        )
        results: dict[str, list[float]] = {"openvswitch": [], "noop": []}
        vcpu: dict[str, list[float]] = {"openvswitch": [], "noop": []}
        for r in range(rounds):
            order = ("openvswitch", "noop") if r % 2 == 0 else ("noop", "openvswitch")
            for driver in order:
                drv = OvsDriver(cfg, ovs, firewall_driver=driver)
                drivers.append(drv)
                statuses = drv.reconcile_sync(st, True)
                stop(drv)
                assert set(statuses.values()) == {"ACTIVE"}, statuses
                ping = subprocess.run(
                    ["ip", "netns", "exec", vm_ns[0], "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2"],
                    capture_output=True,
                    text=True,
                )
                if ping.returncode != 0:
                    print(f"  ({driver}: ping failed: {ping.stdout.strip().splitlines()[-1:]})")
                v0 = vswitchd_cpu(tmp / "ovs")
                mbs = transfer(vm_ns[0], vm_ns[1], "10.77.0.2", seconds)
                results[driver].append(mbs)
                vcpu[driver].append((vswitchd_cpu(tmp / "ovs") - v0) / seconds)
                print(
                    f"* round {r + 1}, firewall_driver = {driver}: {mbs:.0f} MB/s "
                    f"(ovs-vswitchd {100 * vcpu[driver][-1]:.0f} % of a CPU, "
                    f"{vcpu[driver][-1] * 1000 / mbs:.1f} CPU s per GB)"
                )
        fw, noop = pct(results["openvswitch"], 50), pct(results["noop"], 50)
        print(
            f"* median: openvswitch **{fw:.0f} MB/s**, noop **{noop:.0f} MB/s**, ratio **{fw / noop:.2f}**; "
            f"best: {max(results['openvswitch']):.0f} / {max(results['noop']):.0f} MB/s"
        )
    finally:
        for d in drivers:
            stop(d)
        po.destroy()
        for ns in (*vm_ns, ovs_ns):
            netns_mod.remove_netns(ns)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("rules", "throughput"))
    ap.add_argument("--ports", type=int, default=500)
    ap.add_argument("--networks", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="rule / membership changes measured")
    ap.add_argument("--seconds", type=float, default=5.0, help="per throughput run")
    ap.add_argument("--rounds", type=int, default=3, help="throughput runs per driver")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None:
        print("needs root and Open vSwitch", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.only in (None, "rules"):
        rules_bench(args.ports, args.networks, args.repeat)
    if args.only in (None, "throughput"):
        throughput_bench(args.seconds, args.rounds)
    print(
        f"\n(total {time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.1f} at the end)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
