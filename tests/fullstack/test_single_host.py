"""Full stack on one host: `neutrino up` (server + private OVS + OVS and compute
agents), instances booted with openstacksdk, traffic checked from inside them
with `neutrino console`.  Needs root; everything is removed by `down --purge`."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import openstack
import pytest

from tests.compat.conftest import openrc_env

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(subprocess.run(["which", "ovs-vswitchd"], capture_output=True).returncode,
                                 reason="Open vSwitch not installed")]

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


def _free_offset() -> int:
    for _ in range(100):
        off = random.randrange(20000, 40000)
        ok = True
        for port in (5000 + off, 9696 + off, 8774 + off, 9292 + off):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return off
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    state = tmp_path_factory.mktemp("aio")
    off = _free_offset()
    subprocess.run([*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(off)], check=True,
                   capture_output=True, timeout=120)
    try:
        env = openrc_env(state / "demo-openrc")
        conn = openstack.connect(auth_url=env["OS_AUTH_URL"], username="demo", password=env["OS_PASSWORD"],
                                 project_name="demo", user_domain_name="Default", project_domain_name="Default",
                                 region_name="RegionOne")
        yield state, conn
    finally:
        subprocess.run([*NEUTRINO, "down", "--state-dir", str(state), "--purge"], capture_output=True, timeout=120)


def console(state: Path, server: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NEUTRINO, "console", "--state-dir", str(state), server, "--", *argv],
                          capture_output=True, text=True, timeout=60)


def reaches(state: Path, server: str, dst: str, *, within: float = 20.0, source: str | None = None) -> bool:
    """Ping until one answer arrives or ``within`` seconds pass (the first packets
    of a new flow go through userspace OVS's slow path)."""
    deadline = time.monotonic() + within
    argv = ["ping", "-c", "1", "-W", "1", *(["-I", source] if source else []), dst]
    while time.monotonic() < deadline:
        if console(state, server, *argv).returncode == 0:
            return True
    return False


def boot(conn, name: str, net_id: str):  # noqa: ANN001, ANN201
    image = conn.image.find_image("cirros")
    flavor = conn.compute.find_flavor("m1.nano")
    return conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                                      networks=[{"uuid": net_id}])


def wait_active(conn, server_id: str, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        if s.status == "ACTIVE":
            return
        assert s.status != "ERROR", s.fault
        time.sleep(0.5)
    raise AssertionError(f"server {server_id} not ACTIVE after {timeout}s")


def address(conn, server_id: str) -> str:  # noqa: ANN001
    port = next(conn.network.ports(device_id=server_id))
    return port.fixed_ips[0]["ip_address"]


def test_instances_on_a_vxlan_network_talk_and_networks_are_isolated(aio):
    state, conn = aio
    net1 = conn.network.create_network(name="fs-net1")
    conn.network.create_subnet(network_id=net1.id, ip_version=4, cidr="10.10.0.0/24")
    net2 = conn.network.create_network(name="fs-net2")
    conn.network.create_subnet(network_id=net2.id, ip_version=4, cidr="10.10.0.0/24")  # same CIDR, isolated
    a, b, c = boot(conn, "fs-a", net1.id), boot(conn, "fs-b", net1.id), boot(conn, "fs-c", net2.id)
    for s in (a, b, c):
        wait_active(conn, s.id)
    assert net1.mtu == 1450
    link = console(state, "fs-a", "ip", "-o", "link", "show", "eth0")
    assert link.returncode == 0 and "mtu 1450" in link.stdout
    b_ip, c_ip = address(conn, b.id), address(conn, c.id)
    assert reaches(state, "fs-a", b_ip)
    # fs-c sits on another network with an overlapping CIDR: it must not reach fs-b.
    assert not reaches(state, "fs-c", b_ip, within=3)
    # Anti-spoofing: a source address that is not the port's is dropped.
    assert console(state, "fs-a", "ip", "addr", "add", "10.10.0.250/24", "dev", "eth0").returncode == 0
    assert not reaches(state, "fs-a", b_ip, within=3, source="10.10.0.250")
    # Deleting a server removes its namespace.
    conn.compute.delete_server(c.id)
    deadline = time.monotonic() + 30
    while f"vm-{c.id}" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, "instance namespace not removed"
        time.sleep(0.5)
    _ = c_ip


def test_console_on_unknown_server_fails(aio):
    state, _ = aio
    r = console(state, "no-such-server", "true")
    assert r.returncode != 0 and "no server" in r.stderr
