"""``neutrino up`` after a crash: the demo runs, then ``kill -9`` of everything the
all-in-one runs (API server, agents, ovsdb-server, ovs-vswitchd, dnsmasq, haproxy,
the instances' DHCP clients, the lab host's HTTP helper), then ``up`` again.  The
demo's checks pass again on the same instances and addresses, and exactly one of
each daemon runs (one dnsmasq / haproxy per namespace, one cookie on br-int).
Needs root."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from neutrino.agents.ovs.tables import LEARNED_FLOW_COOKIE
from neutrino.cli import demo_lab as demo_mod
from neutrino.cli import process
from neutrino.cli.host import private_ovs
from neutrino.cli.main import load_config
from neutrino.system.openflow import OpenFlow
from tests.fullstack.helpers import NEUTRINO, _our_namespaces, start_aio

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        any(
            subprocess.run(["which", b], capture_output=True).returncode
            for b in ("ovs-vswitchd", "dnsmasq", "haproxy", "iptables-restore", "curl")
        ),
        reason="Open vSwitch / dnsmasq / haproxy / iptables / curl not installed",
    ),
]


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    yield from start_aio(tmp_path_factory)


def _demo(state: Path) -> tuple[dict, subprocess.CompletedProcess[str]]:
    r = subprocess.run(
        [*NEUTRINO, "demo", "--state-dir", str(state), "--json"], capture_output=True, text=True, timeout=300
    )
    assert r.stdout, r.stderr[-3000:]
    return json.loads(r.stdout), r


def _netns_inodes(names: set[str]) -> dict[int, str]:
    out = {}
    for name in names:
        try:
            out[os.stat(f"/run/netns/{name}").st_ino] = name
        except OSError:
            pass
    return out


def _ours(state: Path) -> dict[int, tuple[str, str]]:
    """pid -> (what, namespace) of every process of this all-in-one: its command line
    names the state dir, it carries the token of a daemon recorded in STATE/run, or it
    runs in one of the all-in-one's namespaces."""
    inodes = _netns_inodes(_our_namespaces(state))
    tokens = set()
    for pf in process.pidfiles(state / "run"):
        try:
            rec = pf.read()
        except process.PidFileError:
            continue
        if rec is not None:
            tokens.add(f"{process.TOKEN_ENV}={rec.token}".encode())
    found = {}
    for pid in process.all_pids():
        if pid == os.getpid() or not process.is_running(pid):
            continue
        argv = process.proc_cmdline(pid)
        try:
            ns = inodes.get(os.stat(f"/proc/{pid}/ns/net").st_ino, "")
            env = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if ns or tokens & env or any(str(state) in a for a in argv):
            found[pid] = (_what(argv), ns)
    return found


def _what(argv: list[str]) -> str:
    """A daemon's kind: ``agent ovs``, ``server``, ``dnsmasq``, ``ovs-vswitchd``..."""
    if "neutrino.cli.main" in argv:
        i = argv.index("neutrino.cli.main")
        return " ".join(argv[i + 1 : i + 3]) if argv[i + 1 : i + 2] == ["agent"] else argv[i + 1]
    if argv[:3] == ["ip", "netns", "exec"]:
        argv = argv[4:]
    return os.path.basename(argv[0]) if argv else "?"


def _kill_everything(state: Path) -> dict[int, tuple[str, str]]:
    """SIGKILL every process of the all-in-one until none is left; pid -> (what, namespace) killed."""
    killed: dict[int, tuple[str, str]] = {}
    deadline = time.monotonic() + 30
    while True:
        left = _ours(state)
        if not left:
            return killed
        assert time.monotonic() < deadline, f"still running after kill -9: {left}"
        for pid, what in left.items():
            killed.setdefault(pid, what)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


#: Short-lived commands the agents run (a GARP's arping lasts ~2 s): not daemons.
TRANSIENT = {
    "arping",
    "ip",
    "ethtool",
    "conntrack",
    "iptables-restore",
    "iptables-save",
    "ovs-vsctl",
    "ovs-ofctl",
    "sysctl",
}


def _daemons(state: Path) -> collections.Counter:
    """(kind, namespace) -> how many run (daemons only, not the agents' passing commands)."""
    return collections.Counter(v for v in _ours(state).values() if v[0] not in TRANSIENT)


def _cookies(state: Path) -> set[int]:
    of = OpenFlow(private_ovs(load_config(state / "neutrino.conf", state)).ovs)
    return {f.cookie for f in of.dump("br-int")} - {LEARNED_FLOW_COOKIE}


def test_up_after_kill_9_of_everything_converges(aio):
    state, conn = aio
    before, r = _demo(state)
    assert r.returncode == 0 and before["ok"], ([c for c in before["checks"] if not c["ok"]], r.stderr[-3000:])
    running = _daemons(state)

    lab_http = json.loads((state / "run" / f"{demo_mod.LAB_HTTP}.pid").read_text())["pid"]

    killed = _kill_everything(state)
    kinds = collections.Counter(what for what, _ in killed.values())
    for what in (
        "server",
        "agent ovs",
        "agent dhcp",
        "agent l3",
        "agent metadata",
        "agent compute",
        "ovsdb-server",
        "ovs-vswitchd",
        "dnsmasq",
        "haproxy",
        "udhcpc",
    ):
        assert kinds[what], (what, kinds)
    assert kinds["dnsmasq"] == 2 and kinds["udhcpc"] == 3, kinds
    assert lab_http in killed, (lab_http, killed)

    up = subprocess.run([*NEUTRINO, "up", "--state-dir", str(state)], capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "not alive yet" not in up.stdout, up.stdout

    after, r = _demo(state)
    assert r.returncode == 0 and after["ok"], ([c for c in after["checks"] if not c["ok"]], r.stderr[-3000:])
    assert "created" not in r.stderr, r.stderr  # the same cloud: nothing had to be made again
    for key in ("servers", "floating_ip", "router_id", "router_gateway_ip", "networks"):
        assert after[key] == before[key], (key, before[key], after[key])
    assert sorted(c["name"] for c in after["checks"]) == sorted(c["name"] for c in before["checks"])

    # Exactly one of each daemon: what ran before the crash runs again, once.
    again = _daemons(state)
    doubled = {k: n for k, n in again.items() if n > 1}
    assert not doubled, doubled
    assert set(again) == set(running), (sorted(set(running) - set(again)), sorted(set(again) - set(running)))
    deadline = time.monotonic() + 30
    while len(cookies := _cookies(state)) != 1:
        assert time.monotonic() < deadline, f"br-int flows carry cookies {sorted(map(hex, cookies))}"
        time.sleep(0.3)
