"""Shared helpers of the full-stack tests: a live all-in-one (`neutrino up` with
its private OVS and agents) and ways to boot instances and check traffic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import openstack

from neutrino.testing.ports import free_port_offset
from tests.compat.conftest import openrc_env

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


def openrc_connect(openrc: Path):
    """An openstacksdk connection as the user of an openrc file that ``neutrino up`` wrote
    (``STATE/admin-openrc``, ``STATE/demo-openrc``)."""
    env = openrc_env(openrc)
    return openstack.connect(
        auth_url=env["OS_AUTH_URL"],
        username=env["OS_USERNAME"],
        password=env["OS_PASSWORD"],
        project_name=env["OS_PROJECT_NAME"],
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
        cacert=env.get("OS_CACERT"),  # TLS (the default): verify the APIs with the cloud's CA
    )


def start_aio(tmp_path_factory, overrides: dict | None = None):
    """`neutrino up` in a fresh state dir (config = all-in-one + a unique ``[lab] host_netns`` +
    ``overrides``); yields (state, demo conn)."""
    state = tmp_path_factory.mktemp("aio")
    from neutrino import config

    # Several all-in-ones may run at once: each gets its own lab host namespace.
    lab = {("lab", "host_netns"): f"lab-{uuid.uuid4().hex[:8]}"}
    (state / "neutrino.conf").write_text(config.render_ini({**config.ALL_IN_ONE, **lab, **(overrides or {})}))
    off = free_port_offset()
    subprocess.run(
        [*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(off)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield state, openrc_connect(state / "demo-openrc")
    finally:
        if os.environ.get("NEUTRINO_KEEP_FULLSTACK"):  # debugging: keep the cloud and its logs
            print(f"kept {state}")
        else:
            ours = _our_namespaces(state)
            subprocess.run([*NEUTRINO, "down", "--state-dir", str(state), "--purge"], capture_output=True, timeout=120)
            left = ours & set(_netns_list())
            procs = _our_processes(state)
            assert not left and not procs, f"down --purge left namespaces {left} and processes {procs}"


def _netns_list() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _our_namespaces(state: Path) -> set[str]:
    """The namespaces this all-in-one made: its host and lab namespaces, and one per
    router, DHCP-served network and instance it recorded."""
    from neutrino.agents.dhcp.agent import confs_dir
    from neutrino.agents.ovs.host_config import host_netns
    from neutrino.cli.main import load_config

    cfg = load_config(state / "neutrino.conf", state)
    names = {host_netns(cfg), cfg.lab.host_netns}
    names |= {f"qrouter-{m.name}" for m in (state / "l3").glob("*")}
    names |= {f"qdhcp-{d.name}" for d in confs_dir(cfg).glob("*")}
    names |= {f"vm-{m.name}" for m in (state / "instances").glob("*")}
    return {n for n in names if n}


def _our_processes(state: Path) -> list[str]:
    """Processes whose command line names this state dir (dnsmasq, haproxy, agents, OVS)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(state) in cmd:
                found.append(f"{d.name}: {cmd[:120]}")
    return found


def console(state: Path, server: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEUTRINO, "console", "--state-dir", str(state), server, "--", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def reaches(state: Path, server: str, dst: str, *, within: float = 20.0, source: str | None = None) -> bool:
    """Ping until one answer arrives or ``within`` seconds pass (the first packets
    of a new flow go through userspace OVS's slow path)."""
    deadline = time.monotonic() + within
    argv = ["ping", "-c", "1", "-W", "1", *(["-I", source] if source else []), dst]
    while time.monotonic() < deadline:
        if console(state, server, *argv).returncode == 0:
            return True
    return False


def boot(conn, name: str, net_id: str):
    image = conn.image.find_image("cirros")
    flavor = conn.compute.find_flavor("m1.nano")
    return conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net_id}])


def wait_active(conn, server_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        if s.status == "ACTIVE":
            return
        assert s.status != "ERROR", s.fault
        time.sleep(0.5)
    raise AssertionError(f"server {server_id} not ACTIVE after {timeout}s")


def address(conn, server_id: str) -> str:
    port = next(conn.network.ports(device_id=server_id))
    return port.fixed_ips[0]["ip_address"]


def open_default_group(conn, protocols=("icmp", "tcp", "udp")) -> None:
    """Let everything of ``protocols`` into the instances of ``conn``'s project (its default
    security group admits only the group's own members)."""
    group = conn.network.find_security_group("default", project_id=conn.current_project_id)
    for proto in protocols:
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol=proto
        )
