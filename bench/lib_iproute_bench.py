#!/usr/bin/env python3
"""Namespace reading benchmark: our ``ip -j`` layer (``neutrino.system.iproute.observe_netns``)
against pyroute2 (netlink), on what a router resync reads.  Prints figures; asserts nothing.

    .venv/bin/python bench/lib_iproute_bench.py [--routers 100] [--repeat 3]

Needs root.  Creates ``--routers`` network namespaces named ``nbench-lib-<pid>-<i>``, each built
like a router's (lo; a ``qg-`` and a ``qr-`` device, veth pairs kept inside the namespace; the
gateway address + 5 floating IP /32s on qg-, an IPv4 and an IPv6 subnet address on qr-; a default
route and 3 extra routes), and deletes exactly those namespaces at the end, even on failure.

Reads every namespace's links, addresses and main-table routes (IPv4 and IPv6) into the same
``NetnsView`` the L3 and DHCP agents plan from:

* ours: ``observe_netns`` (one ``ip -j -d -batch -`` process per namespace);
* pyroute2 cold: ``IPRoute(netns=...)`` opened per namespace, three dumps, closed;
* pyroute2 warm: the sockets kept open (what a long-lived agent would do), three dumps each.

pyroute2's messages are converted to ``Link``/``Address``/``Route`` here; the bench checks that
both sides give the same views and prints any namespace where they differ.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import resource
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyroute2 import IPRoute  # noqa: E402 - imported after sys.path names the bench folder

from neutrino.system import iproute  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system.iproute import Address, Link, NetnsView, Route  # noqa: E402 - imported after sys.path names the bench folder

# net/if.h bits, in the order iproute2 prints them (print_link_flags)
_FLAGS = [
    (0x8, "LOOPBACK"),
    (0x2, "BROADCAST"),
    (0x10, "POINTOPOINT"),
    (0x1000, "MULTICAST"),
    (0x80, "NOARP"),
    (0x200, "ALLMULTI"),
    (0x100, "PROMISC"),
    (0x20, "NOTRAILERS"),
    (0x4, "DEBUG"),
    (0x8000, "DYNAMIC"),
    (0x4000, "AUTOMEDIA"),
    (0x2000, "PORTSEL"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
    (0x1, "UP"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
    (0x40000, "ECHO"),
]
_PROTO = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    16: "dhcp",
    18: "keepalived",
    186: "bgp",
    188: "ospf",
}
_SCOPE = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


def _flags(value: int) -> tuple[str, ...]:
    names = ["NO-CARRIER"] if value & 0x1 and not value & 0x40 else []
    return tuple(names + [n for bit, n in _FLAGS if value & bit])


def view_from_netlink(links: list[Any], addrs: list[Any], routes: list[Any]) -> NetnsView:
    """pyroute2 dumps -> the ``NetnsView`` ``observe_netns`` returns (same values, same order
    for links; addresses and routes in dump order)."""
    names = {m["index"]: m.get("ifname") for m in links}
    out_links = []
    for m in links:
        link, netnsid = m.get("link"), m.get("link_netnsid")
        out_links.append(
            Link(
                name=m.get("ifname"),
                ifindex=m["index"],
                kind=m.get(("linkinfo", "kind")),
                mtu=m.get("mtu") or 0,
                mac=m.get("address"),
                up=bool(m["flags"] & 0x1),
                operstate=m.get("operstate") or "UNKNOWN",
                master=names.get(m.get("master")) if m.get("master") else None,
                peer=names.get(link) if link and netnsid is None else None,
                peer_ifindex=link if link and (netnsid is not None or link not in names) else None,
                link_netnsid=netnsid,
                flags=_flags(m["flags"]),
            )
        )
    out_addrs = [
        Address(
            ifname=names[a["index"]],
            address=ipaddress.ip_interface(f"{a.get('local') or a.get('address')}/{a['prefixlen']}"),
            scope=_SCOPE.get(a["scope"], str(a["scope"])),
        )
        for a in addrs
    ]
    r4: list[Route] = []
    r6: list[Route] = []
    for r in routes:
        if r.get("table") != 254 or r["type"] != 1:  # main table, unicast
            continue
        full = 32 if r["family"] == 2 else 128
        dst = (
            "default"
            if r["dst_len"] == 0
            else r.get("dst")
            if r["dst_len"] == full
            else f"{r.get('dst')}/{r['dst_len']}"
        )
        hops = tuple(h.get("gateway") for h in r.get("multipath") or () if h.get("gateway"))
        route = Route(
            dst=dst,
            gateway=r.get("gateway"),
            dev=names.get(r.get("oif")),
            protocol=_PROTO.get(r["proto"], str(r["proto"])),
            scope=_SCOPE.get(r["scope"]),
            prefsrc=r.get("prefsrc"),
            table="main",
            nexthops=hops,
        )
        (r6 if r["family"] == 10 else r4).append(route)
    return NetnsView(out_links, out_addrs, r4, r6)


def read_pyroute2(ip: IPRoute) -> NetnsView:
    return view_from_netlink(list(ip.get_links()), list(ip.get_addr()), list(ip.get_routes(family=0, table=254)))


def same(a: NetnsView, b: NetnsView) -> bool:
    key = lambda x: repr(x)  # noqa: E731 - order-insensitive comparison of dataclasses
    return (
        a.links == b.links
        and sorted(a.addresses, key=key) == sorted(b.addresses, key=key)
        and sorted(a.routes4, key=key) == sorted(b.routes4, key=key)
        and sorted(a.routes6, key=key) == sorted(b.routes6, key=key)
    )


def build(ns: str, i: int) -> None:
    """A router-like namespace (see the module docstring)."""
    subprocess.run(["ip", "netns", "add", ns], check=True)
    a, b = i // 250, i % 250
    script = (
        f"link set lo up\n"
        f"link add qg-{i} type veth peer name qg-{i}-p\nlink add qr-{i} type veth peer name qr-{i}-p\n"
        f"link set qg-{i} up\nlink set qg-{i}-p up\nlink set qr-{i} up\nlink set qr-{i}-p up\n"
        f"addr add 172.24.{a}.{b + 1}/16 dev qg-{i}\n"
        + "".join(f"addr add 172.{25 + k}.{a}.{b + 1}/32 dev qg-{i}\n" for k in range(5))
        + f"addr add 10.{a}.{b}.1/24 dev qr-{i}\naddr add fd00:{i:x}::1/64 dev qr-{i} nodad\n"
        f"route add default via 172.24.0.254\n"
        + "".join(f"route add 192.168.{k}.0/24 via 10.{a}.{b}.{10 + k}\n" for k in range(3))
    )
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input=script, text=True, check=True)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(fn: Any) -> tuple[Any, float, float, float]:
    """(result, wall s, CPU s of this process, CPU s of finished children)."""
    w, c, k = time.perf_counter(), time.process_time(), children_cpu()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c, children_cpu() - k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routers", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    ipv = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
    print(f"pyroute2 {version('pyroute2')}, {ipv}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    names = [f"nbench-lib-{os.getpid()}-{i}" for i in range(args.routers)]
    created: list[str] = []
    sockets: list[IPRoute] = []
    try:
        t0 = time.perf_counter()
        for i, ns in enumerate(names):
            created.append(ns)
            build(ns, i)
        print(f"{len(names)} router namespaces built in {time.perf_counter() - t0:.1f} s")

        ours = {ns: iproute.observe_netns(netns=ns) for ns in names}
        for ns in names:
            with IPRoute(netns=ns) as ip:
                theirs = read_pyroute2(ip)
            if not same(ours[ns], theirs):
                print(f"DIFFERENT VIEW in {ns}:\n  ours   {ours[ns]}\n  theirs {theirs}")
                break
        else:
            print("views: identical in every namespace (addresses and routes compared as sets)")
        n = len(names)
        print(
            f"  per namespace: {len(ours[names[0]].links)} links, {len(ours[names[0]].addresses)} addresses, "
            f"{len(ours[names[0]].routes4)} + {len(ours[names[0]].routes6)} routes"
        )

        def run_ours() -> None:
            for ns in names:
                iproute.observe_netns(netns=ns)

        def run_cold() -> None:
            for ns in names:
                with IPRoute(netns=ns) as ip:
                    read_pyroute2(ip)

        sockets.extend(IPRoute(netns=ns) for ns in names)

        def run_warm() -> None:
            for ip in sockets:
                read_pyroute2(ip)

        results: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(args.repeat):
            for label, fn in (
                ("ours (ip -j -batch)", run_ours),
                ("pyroute2 cold", run_cold),
                ("pyroute2 warm sockets", run_warm),
            ):
                _, wall, cpu, kids = timed(fn)
                results.setdefault(label, []).append((wall, cpu, kids))
        print(
            f"\nread all {n} namespaces (median of {args.repeat}):\n"
            f"  {'':24} {'wall':>9} {'per ns':>9} {'CPU here':>9} {'CPU children':>12}"
        )
        for label, runs in results.items():
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            kids = statistics.median(r[2] for r in runs)
            print(
                f"  {label:24} {wall * 1000:7.0f}ms {wall / n * 1000:7.2f}ms {cpu * 1000:7.0f}ms {kids * 1000:10.0f}ms"
            )
    finally:
        for ip in sockets:
            ip.close()
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        left = [ns for ns in created if Path(f"/run/netns/{ns}").exists()]
        print(f"cleanup: {len(created)} namespaces deleted" + (f", LEFT: {left}" if left else ""))


if __name__ == "__main__":
    main()
