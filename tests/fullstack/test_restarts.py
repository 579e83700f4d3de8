"""Crash-only agents on one host: restarting the OVS agent loses no packet,
`kill -9` + restart converges with no stale flows, and a restarted
ovs-vswitchd (all flows lost) is detected and rewired."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from neutrino.agents.ovs.tables import LEARNED_FLOW_COOKIE
from neutrino.cli.host import private_ovs
from neutrino.cli.main import load_config
from neutrino.testing.openflow import OpenFlowTool
from tests.fullstack.helpers import NEUTRINO, address, boot, reaches, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "ovs-vswitchd"], capture_output=True).returncode, reason="Open vSwitch not installed"
    ),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An all-in-one with two instances on one network that can reach each other."""
    for state, conn in start_aio(tmp_path_factory):
        net = conn.network.create_network(name="rs-net")
        conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.20.0.0/24")
        a, b = boot(conn, "rs-a", net.id), boot(conn, "rs-b", net.id)
        for s in (a, b):
            wait_active(conn, s.id)
        b_ip = address(conn, b.id)
        assert reaches(state, "rs-a", b_ip)
        yield state, conn, b_ip


def _agent_pid(state) -> int:
    return json.loads((state / "run" / "ovs-agent.pid").read_text())["pid"]


def _ofctl(state):
    cfg = load_config(state / "neutrino.conf", state)
    return OpenFlowTool(private_ovs(cfg).ovs)


def _up(state) -> None:
    subprocess.run([*NEUTRINO, "up", "--state-dir", str(state)], check=True, capture_output=True, timeout=120)


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not exit")


def _cookies(state, bridge: str = "br-int") -> set[int]:
    return {f.cookie for f in _ofctl(state).dump(bridge)} - {LEARNED_FLOW_COOKIE}


def _converged(state, timeout: float = 30) -> set[int]:
    """Wait until br-int carries exactly one agent cookie again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cookies = _cookies(state)
        if len(cookies) == 1:
            return cookies
        time.sleep(0.3)
    raise AssertionError(f"br-int flows carry cookies {sorted(map(hex, _cookies(state)))}")


def test_agent_restart_loses_no_packet(pair):
    state, _, b_ip = pair
    before = _converged(state)
    pinger = subprocess.Popen(
        [
            *NEUTRINO,
            "console",
            "--state-dir",
            str(state),
            "rs-a",
            "--",
            "ping",
            "-i",
            "0.05",
            "-c",
            "120",
            "-W",
            "1",
            b_ip,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        pid = _agent_pid(state)
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)
        _up(state)  # restarts the missing agent
        out, _ = pinger.communicate(timeout=60)
    finally:
        if pinger.poll() is None:
            pinger.kill()
    assert " 0% packet loss" in out, out
    after = _converged(state)
    assert after != before  # the new run re-stamped every flow with its own cookie


def test_kill_9_then_restart_leaves_no_stale_flows(pair):
    state, _, b_ip = pair
    of = _ofctl(state)
    pid = _agent_pid(state)
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    # A flow a crashed run might have left behind (its cookie is not the next run's).
    from neutrino.system.oftext import Flow

    of.apply("br-int", add=[Flow(60, 7, "dl_dst=fa:16:3e:de:ad:00", "drop", cookie=0xDEAD)])
    assert 0xDEAD in _cookies(state)
    _up(state)
    cookies = _converged(state)
    assert 0xDEAD not in cookies
    assert reaches(state, "rs-a", b_ip)


def test_vswitchd_restart_is_detected_and_rewired(pair):
    state, _, b_ip = pair
    cfg = load_config(state / "neutrino.conf", state)
    private_ovs(cfg).restart_vswitchd()
    # All flows are gone now; the agent notices its canary is missing and rewires.
    assert reaches(state, "rs-a", b_ip, within=30)
    assert len(_converged(state)) == 1
