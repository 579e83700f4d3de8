"""A blank ``router`` extra DHCP option really stops dnsmasq from sending a router (root).

Real dnsmasq, fed the files the DHCP agent renders, answers a busybox ``udhcpc`` across a veth
pair between two namespaces of the test's own; the client's script records what it got. One
subnet (gateway 10.0.0.1, a host route, so option 121 is sent too), three ports: without
options, with a blank ``router``, with blank ``router`` and ``classless-static-route``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.agents.dhcp import render
from neutrino.agents.dhcp.model import DhcpConfig, NetworkView, network_view
from tests.unit.test_dhcp_render import HOST, S4, api_network, api_subnet, dhcp_port, vm_port

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not (shutil.which("dnsmasq") and shutil.which("busybox")), reason="needs dnsmasq and busybox"),
]

PLAIN = ("4f2a1b3c-9d8e-4a5b-8c7d-00000000000a", "fa:16:3e:00:00:0a", "10.0.0.10")
NO_ROUTER = ("4f2a1b3c-9d8e-4a5b-8c7d-00000000000b", "fa:16:3e:00:00:0b", "10.0.0.11")
NO_ROUTES = ("4f2a1b3c-9d8e-4a5b-8c7d-00000000000c", "fa:16:3e:00:00:0c", "10.0.0.12")
SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
{ echo "ip=$ip"; echo "router=$router"; echo "staticroutes=$staticroutes"; } > "$0.out"
"""


def _network() -> NetworkView:
    sub = api_subnet(
        S4, "10.0.0.0/24", "10.0.0.1", host_routes=[{"destination": "192.0.2.0/24", "nexthop": "10.0.0.254"}]
    )
    blank = {"opt_name": "router", "opt_value": ""}
    ports = [
        dhcp_port([(S4, "10.0.0.2")]),
        vm_port([(S4, PLAIN[2])], pid=PLAIN[0], mac=PLAIN[1]),
        vm_port([(S4, NO_ROUTER[2])], pid=NO_ROUTER[0], mac=NO_ROUTER[1], extra_dhcp_opts=[blank]),
        vm_port(
            [(S4, NO_ROUTES[2])],
            pid=NO_ROUTES[0],
            mac=NO_ROUTES[1],
            extra_dhcp_opts=[blank, {"opt_name": "classless-static-route", "opt_value": ""}],
        ),
    ]
    return network_view(api_network([S4]), [sub], ports)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def dhcp_server(prefix: str, tmp_path: Path) -> Iterator[str]:
    """Namespaces ``<prefix>-s`` (dnsmasq on ``s0``, 10.0.0.2/24) and ``<prefix>-c`` (``c0``);
    yields the client namespace. Everything is removed afterwards, whatever happened."""
    server, client = f"{prefix}-s", f"{prefix}-c"
    proc: subprocess.Popen[bytes] | None = None
    try:
        _ip("netns", "add", server)
        _ip("netns", "add", client)
        _ip("link", "add", "s0", "netns", server, "type", "veth", "peer", "name", "c0", "netns", client)
        _ip("-n", server, "addr", "add", "10.0.0.2/24", "dev", "s0")
        _ip("-n", server, "link", "set", "s0", "up")
        _ip("-n", client, "link", "set", "lo", "up")
        cfg, net = DhcpConfig(HOST), _network()
        files = {
            render.FILE_HOST: render.hosts_file(cfg, net),
            render.FILE_OPTS: render.opts_file(cfg, net),
            render.FILE_ADDN_HOSTS: render.addn_hosts_file(cfg, net),
            render.FILE_LEASES: "",
        }
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        argv = render.dnsmasq_argv(cfg, net, net.dhcp_port(HOST), conf_dir=str(tmp_path), tap_name="s0")
        # in the foreground as root, so this fixture owns (and stops) exactly this process
        argv = [
            shutil.which("dnsmasq") or "dnsmasq",
            *argv[1:],
            "--keep-in-foreground",
            "--user=root",
            "--port=0",
            f"--log-facility={tmp_path / 'log'}",
            "--log-dhcp",
        ]
        proc = subprocess.Popen(["ip", "netns", "exec", server, *argv])
        time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "log").read_text() if (tmp_path / "log").exists() else argv
        yield client
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for ns in (client, server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _lease(client: str, mac: str, tmp_path: Path) -> dict[str, str]:
    """What udhcpc (asking for router and option 121) got for ``mac``, from its ``bound`` event."""
    script = tmp_path / f"script-{mac.replace(':', '')}"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    _ip("-n", client, "link", "set", "c0", "down")
    _ip("-n", client, "link", "set", "c0", "address", mac)
    _ip("-n", client, "link", "set", "c0", "up")
    got = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            client,
            "busybox",
            "udhcpc",
            "-i",
            "c0",
            "-n",
            "-q",
            "-f",
            "-t",
            "5",
            "-T",
            "1",
            "-O",
            "router",
            "-O",
            "staticroutes",
            "-s",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = Path(f"{script}.out")
    assert got.returncode == 0 and out.exists(), got.stdout + got.stderr
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


def test_blank_router_and_classless_static_route_suppress_those_options(dhcp_server: str, tmp_path: Path):
    plain = _lease(dhcp_server, PLAIN[1], tmp_path)
    assert plain["ip"] == PLAIN[2] and plain["router"] == "10.0.0.1"
    assert "192.0.2.0/24 10.0.0.254" in plain["staticroutes"]
    # blank router: no router option; the subnet's classless routes (with its default) still come
    no_router = _lease(dhcp_server, NO_ROUTER[1], tmp_path)
    assert no_router["ip"] == NO_ROUTER[2] and no_router["router"] == ""
    assert "192.0.2.0/24 10.0.0.254" in no_router["staticroutes"]
    # blank router and classless-static-route: neither a router nor classless routes
    no_routes = _lease(dhcp_server, NO_ROUTES[1], tmp_path)
    assert no_routes["ip"] == NO_ROUTES[2] and no_routes["router"] == ""
    assert no_routes["staticroutes"] == ""
