"""``neutrino demo`` on a live all-in-one: the seed's Lab 10 is built, every check
passes, every "see it yourself" command it prints really shows what the check
claims, a second run reuses everything, and ``demo --clean`` leaves nothing of
the demo (API objects, namespaces, files, the lab host's HTTP server).  Needs root."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from neutrino.cli import demo_lab as demo_mod
from neutrino.system import netns
from tests.fullstack.helpers import NEUTRINO, start_aio

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


def _demo(state: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEUTRINO, "demo", "--state-dir", str(state), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    yield from start_aio(tmp_path_factory)


@pytest.fixture(scope="module")
def first_run(aio):
    state, _ = aio
    r = _demo(state, "--json")
    assert r.stdout, r.stderr
    return json.loads(r.stdout), r


def test_demo_builds_lab10_and_every_check_passes(aio, first_run):
    state, conn = aio
    out, r = first_run
    failed = [c for c in out["checks"] if not c["ok"]]
    assert r.returncode == 0 and out["ok"] and not failed, (failed, r.stderr[-3000:])
    names = " | ".join(c["name"] for c in out["checks"])
    for what in (
        "DHCP lease",
        "demo-instance-1 -> demo-instance-2",
        "DNS: demo-instance-1 resolves demo-instance-2",
        "metadata: openssh-key",
        "metadata: user-data",
        "SNAT",
        "floating IP",
        "flat network",
    ):
        assert what in names, names
    # What was built is the seed's topology.
    assert out["networks"]["flat-network"]["type"] == "flat"
    assert out["networks"]["vxlan-network"]["type"] == "vxlan" and out["networks"]["vxlan-network"]["mtu"] == 1450
    servers = {s.name: s for s in conn.compute.servers()}
    assert {n: servers[n].status for n in ("demo-instance-1", "demo-instance-2", "demo-instance-3")} == dict.fromkeys(
        ("demo-instance-1", "demo-instance-2", "demo-instance-3"), "ACTIVE"
    )
    assert servers["demo-instance-1"].key_name == "demo-key"
    fip = next(conn.network.ips(floating_ip_address=out["floating_ip"]))
    assert fip.fixed_ip_address == out["servers"]["demo-instance-1"]["ip"]
    router = conn.network.find_router("demo-router")
    assert router.external_gateway_info["network_id"] == out["networks"]["flat-network"]["id"]
    default = next(conn.network.security_groups(name="default", project_id=conn.current_project_id))
    ingress = {
        (r["protocol"], r["port_range_min"])
        for r in default.security_group_rules
        if r["direction"] == "ingress" and r["remote_ip_prefix"] == "0.0.0.0/0"
    }
    assert {("icmp", None), ("tcp", 22)} <= ingress
    # The lab host's server logged the router's gateway address as the client (SNAT).
    log = (state / "log" / f"{demo_mod.LAB_HTTP}.log").read_text()
    assert f"{out['router_gateway_ip']} \"GET / " in log, log


def test_the_printed_commands_show_what_the_checks_claim(aio, first_run):
    state, conn = aio
    out, _ = first_run
    ip = {n: s["ip"] for n, s in out["servers"].items()}
    assert (state / "demo" / "demo-key").stat().st_mode & 0o077 == 0  # the private key, for ssh -i
    public_key = conn.compute.get_keypair("demo-key").public_key.strip()
    expect = {  # a substring of the command's output, per check name prefix
        "demo-instance-1 -> demo-instance-2": "1 received",
        "DNS: demo-instance-1 resolves demo-instance-2": ip["demo-instance-2"],
        "metadata: openssh-key": public_key,
        "metadata: user-data": "hello from the neutrino demo",
        "SNAT": out["router_gateway_ip"],
        "floating IP": "1 received",
        "demo-instance-3 -> lab host": "1 received",
        "metadata on flat-network": "hello from the neutrino demo",
        "DHCP lease: demo-instance-1": f"{ip['demo-instance-1']}/24",
        "DHCP lease: demo-instance-3": f"{ip['demo-instance-3']}/24",
    }
    for c in out["checks"]:
        argv = shlex.split(c["command"])
        assert argv[0].endswith("neutrino") or argv[:3] == ["ip", "netns", "exec"], c
        if argv[0].endswith("neutrino"):
            argv = [*NEUTRINO, *argv[1:]]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        want = next(v for k, v in expect.items() if c["name"].startswith(k))
        assert r.returncode == 0 and want in r.stdout, (c["command"], r.stdout, r.stderr)


def test_demo_again_reuses_everything(aio, first_run):
    state, _ = aio
    out, _ = first_run
    created = (state / "demo" / "created.json").read_text()
    r = _demo(state, "--json")
    again = json.loads(r.stdout)
    assert r.returncode == 0 and again["ok"], r.stderr[-2000:]
    assert {n: s["id"] for n, s in again["servers"].items()} == {n: s["id"] for n, s in out["servers"].items()}
    assert again["floating_ip"] == out["floating_ip"] and again["router_id"] == out["router_id"]
    assert (state / "demo" / "created.json").read_text() == created
    assert "created" not in r.stderr, r.stderr


def test_the_opened_default_group_is_what_lets_the_lab_host_in(aio, first_run):
    """With security groups enforced, the floating IP answers the lab host only through the
    ICMP rule the demo added; a demo run puts a removed rule back."""
    state, conn = aio
    out, _ = first_run
    fip, lab = out["floating_ip"], out["lab_netns"]

    def lab_ping() -> bool:
        return (
            subprocess.run(
                ["ip", "netns", "exec", lab, "ping", "-n", "-c", "1", "-W", "1", fip], capture_output=True, timeout=10
            ).returncode
            == 0
        )

    default = next(conn.network.security_groups(name="default", project_id=conn.current_project_id))
    icmp = [r for r in default.security_group_rules if r["protocol"] == "icmp" and r["direction"] == "ingress"]
    assert len(icmp) == 1 and lab_ping()
    conn.network.delete_security_group_rule(icmp[0]["id"])
    deadline = time.monotonic() + 30
    while lab_ping():
        assert time.monotonic() < deadline, "the lab host still reaches the floating IP without the ICMP rule"
    r = _demo(state, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stderr[-2000:]
    assert lab_ping()


def test_demo_clean_removes_everything_it_made(aio, first_run):
    state, conn = aio
    out, _ = first_run
    pid = json.loads((state / "run" / f"{demo_mod.LAB_HTTP}.pid").read_text())["pid"]
    r = _demo(state, "--clean")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (state / "demo").exists()
    assert not (state / "run" / f"{demo_mod.LAB_HTTP}.pid").exists()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the lab host's HTTP server still runs"
        time.sleep(0.1)
    assert not [s for s in conn.compute.servers() if s.name.startswith("demo-instance-")]
    assert conn.network.find_router("demo-router") is None
    assert conn.network.find_ip(out["floating_ip"]) is None
    for name in ("flat-network", "vxlan-network"):
        assert conn.network.find_network(name) is None
    assert conn.compute.find_keypair("demo-key") is None
    default = next(conn.network.security_groups(name="default", project_id=conn.current_project_id))
    assert not [
        r for r in default.security_group_rules if r["remote_ip_prefix"] == "0.0.0.0/0" and r["direction"] == "ingress"
    ]
    ours = (
        {f"vm-{s['id']}" for s in out["servers"].values()}
        | {f"qrouter-{out['router_id']}"}
        | {f"qdhcp-{n['id']}" for n in out["networks"].values()}
    )
    assert not ours & set(netns.list_netns())
    # Nothing left to clean: a second --clean is a no-op.
    again = _demo(state, "--clean")
    assert again.returncode == 0 and "nothing of the demo" in again.stderr, again.stderr
