"""The checks of ``neutrino demo``: each probes the built lab from inside an instance or the lab host.

``plan_checks`` is pure (nothing runs until a probe is called); ``run_checks``
runs them in parallel, each retried until it passes or the time is up;
``render_table`` prints the result with the command a user runs to see the same.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from neutrino.cli.demo_lab import FLAT_NET, LAB_HTTP_PORT, METADATA, Lab
from neutrino.cli.progress import Progress


@dataclass
class Check:
    name: str
    command: str  # what a user types to see it
    probe: Callable[[], tuple[bool, str]]
    ok: bool = False
    detail: str = ""
    seconds: float = 0.0


def _in(netns: str, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", "timed out")


def _retry(probe: Callable[[], tuple[bool, str]], deadline: float) -> tuple[bool, str]:
    while True:
        ok, detail = probe()
        if ok or time.monotonic() >= deadline:
            return ok, detail
        time.sleep(0.3)


def plan_checks(lab: Lab, console: str, lab_cmd: str) -> list[Check]:
    """The checks (pure: nothing runs until a probe is called)."""
    from neutrino.agents.compute.planner import netns_name

    ns = {name: netns_name(s["id"]) for name, s in lab.servers.items()}
    one, two, three = "demo-instance-1", "demo-instance-2", "demo-instance-3"
    prefix = ipaddress.ip_network(lab.subnet["cidr"]).prefixlen
    fip, gw = lab.fip["floating_ip_address"], lab.gateway_ip
    url = f"http://{lab.lab_ip}:{LAB_HTTP_PORT}/"

    def lease(name: str, plen: int) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            want = f"{lab.ip(name)}/{plen}"
            return want in r.stdout, want if want in r.stdout else f"eth0 has: {r.stdout.split()[3:4] or r.stderr}"

        return probe

    def ping(name: str, dst: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["ping", "-n", "-c", "1", "-W", "1", dst], timeout=5)
            return r.returncode == 0, "answers" if r.returncode == 0 else "no answer"

        return probe

    def lab_ping(dst: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(lab.lab_netns, ["ping", "-n", "-c", "1", "-W", "1", dst], timeout=5)
            return r.returncode == 0, "answers" if r.returncode == 0 else "no answer"

        return probe

    def resolves(name: str, other: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["getent", "hosts", other])
            got = r.stdout.split()[:1]
            return got == [lab.ip(other)], f"{other} -> {got[0] if got else '(nothing)'}"

        return probe

    def fetch(name: str, path: str, want: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["curl", "-s", "-m", "3", f"{METADATA}/{path}"])
            ok = r.stdout.strip() == want.strip()
            return ok, "matches" if ok else f"got {r.stdout.strip()[:40]!r}"

        return probe

    def snat() -> tuple[bool, str]:
        r = _in(ns[two], ["curl", "-s", "-m", "3", url])
        seen = r.stdout.strip()
        return seen == gw, f"the lab host sees {seen or '(nothing)'} (router gateway {gw})"

    return [
        Check(
            f"DHCP lease: {one} has {lab.ip(one)}/{prefix}",
            f"{console} {one} -- ip -4 addr show eth0",
            lease(one, prefix),
        ),
        Check(
            f"DHCP lease: {three} has {lab.ip(three)} on {FLAT_NET}",
            f"{console} {three} -- ip -4 addr show eth0",
            lease(three, ipaddress.ip_network(lab.flat_subnet["cidr"]).prefixlen),
        ),
        Check(
            f"{one} -> {two} ({lab.ip(two)}), VXLAN",
            f"{console} {one} -- ping -c1 {lab.ip(two)}",
            ping(one, lab.ip(two)),
        ),
        Check(f"DNS: {one} resolves {two}", f"{console} {one} -- getent hosts {two}", resolves(one, two)),
        Check(
            "metadata: openssh-key",
            f"{console} {one} -- curl -s {METADATA}/1.0/meta-data/public-keys/0/openssh-key",
            fetch(one, "1.0/meta-data/public-keys/0/openssh-key", lab.key["public_key"]),
        ),
        Check(
            "metadata: user-data",
            f"{console} {one} -- curl -s {METADATA}/1.0/user-data",
            fetch(one, "1.0/user-data", lab.user_data),
        ),
        Check(f"SNAT: {two} -> lab host {lab.lab_ip} from {gw}", f"{console} {two} -- curl -s {url}", snat),
        Check(f"floating IP {fip} ({one}) from the lab host", f"{lab_cmd} ping -c1 {fip}", lab_ping(fip)),
        Check(
            f"{three} -> lab host {lab.lab_ip}, flat network",
            f"{console} {three} -- ping -c1 {lab.lab_ip}",
            ping(three, lab.lab_ip),
        ),
        Check(
            f"metadata on {FLAT_NET} (from the DHCP namespace)",
            f"{console} {three} -- curl -s {METADATA}/1.0/user-data",
            fetch(three, "1.0/user-data", lab.user_data),
        ),
    ]


def run_checks(checks: list[Check], timeout: float, progress: Progress) -> None:
    """Run every check (in parallel), each retried until it passes or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    done: list[str] = []

    def one(c: Check) -> None:
        c.ok, c.detail = _retry(c.probe, deadline)
        c.seconds = time.monotonic() - t0
        done.append(c.name)
        progress.update(f"checks: {len(done)}/{len(checks)} done")

    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        list(pool.map(one, checks))
    progress.say(f"checks: {sum(c.ok for c in checks)}/{len(checks)} passed")


def render_table(checks: list[Check]) -> str:
    w = max(len(c.name) for c in checks)
    lines = [f"{'check':{w}}  result  see it yourself", f"{'-' * w}  ------  {'-' * 15}"]
    for c in checks:
        lines.append(f"{c.name:{w}}  {'ok' if c.ok else 'FAILED':6}  {c.command}")
        if not c.ok:
            lines.append(f"{'':{w}}          ({c.detail})")
    return "\n".join(lines)
