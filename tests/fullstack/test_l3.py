"""Routers on one host: SNAT to the lab host, floating IPs both ways, port
forwarding (TCP and UDP), overlapping tenant CIDRs, an L3 agent restart that
leaves exactly the same rules, and teardown of the router namespace."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from tests.fullstack.helpers import (
    NEUTRINO,
    address,
    boot,
    open_default_group,
    openrc_connect,
    reaches,
    start_aio,
    wait_active,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "iptables-restore"], capture_output=True).returncode, reason="iptables not installed"
    ),
]

LAB = f"lab-{uuid.uuid4().hex[:6]}"


def lab(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", LAB, *argv], capture_output=True, text=True, timeout=timeout)


def lab_reaches(ip: str, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if lab("ping", "-c", "1", "-W", "1", ip).returncode == 0:
            return True
    return False


def admin_conn(state):
    return openrc_connect(state / "admin-openrc")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    for state, conn in start_aio(tmp_path_factory, {("lab", "host_netns"): LAB}):
        admin = admin_conn(state)
        ext = admin.network.create_network(
            name="l3-ext",
            is_shared=True,
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="physnet",
        )
        ext_sub = admin.network.create_subnet(
            network_id=ext.id,
            ip_version=4,
            cidr="172.16.0.0/24",
            gateway_ip="172.16.0.1",
            allocation_pools=[{"start": "172.16.0.2", "end": "172.16.0.50"}],
        )
        net = conn.network.create_network(name="l3-net")
        sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.50.0.0/24")
        router = conn.network.create_router(name="l3-router", external_gateway_info={"network_id": ext.id})
        conn.network.add_interface_to_router(router, subnet_id=sub.id)
        vm = boot(conn, "l3-vm", net.id)
        wait_active(conn, vm.id)
        # The lab host is outside the instance's security group: let its pings and probes in.
        open_default_group(conn)
        yield {
            "state": state,
            "conn": conn,
            "admin": admin,
            "ext": ext,
            "ext_sub": ext_sub,
            "net": net,
            "sub": sub,
            "router": conn.network.get_router(router.id),
            "vm": vm,
        }


def _serve(state, server: str, proto: str, port: int) -> subprocess.Popen[str]:
    """A one-line TCP/UDP echo server inside an instance (our own python, run in its namespace)."""
    code = (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_INET,socket.SOCK_{'STREAM' if proto == 'tcp' else 'DGRAM'})\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('0.0.0.0',{port}))\n"
        + (
            "s.listen(5)\nwhile True:\n c,a=s.accept();c.sendall(b'hello '+a[0].encode());c.close()\n"
            if proto == "tcp"
            else "while True:\n d,a=s.recvfrom(100);s.sendto(b'hello '+a[0].encode(),a)\n"
        )
    )
    return subprocess.Popen(
        [*NEUTRINO, "console", "--state-dir", str(state), server, "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _serve_lines(state, server: str, port: int) -> subprocess.Popen[str]:
    """A TCP server inside an instance that keeps each connection open and echoes lines."""
    code = (
        "import socket,threading\n"
        "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('0.0.0.0',{port}));s.listen(5)\n"
        "def h(c):\n"
        " f=c.makefile('rwb')\n"
        " for line in f:\n  f.write(b'echo '+line);f.flush()\n"
        "while True:\n c,a=s.accept();threading.Thread(target=h,args=(c,),daemon=True).start()\n"
    )
    return subprocess.Popen(
        [*NEUTRINO, "console", "--state-dir", str(state), server, "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ask(proto: str, ip: str, port: int, within: float = 20.0) -> str:
    """From the lab host: connect (TCP) or send (UDP); returns the answer or ''."""
    code = (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_INET,socket.SOCK_{'STREAM' if proto == 'tcp' else 'DGRAM'});s.settimeout(1)\n"
        + (
            f"s.connect(('{ip}',{port}));print(s.recv(100).decode())\n"
            if proto == "tcp"
            else f"s.sendto(b'x',('{ip}',{port}));print(s.recv(100).decode())\n"
        )
    )
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        r = lab(sys.executable, "-c", code)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
        time.sleep(0.3)
    return ""


def test_snat_to_the_lab_host_uses_the_router_gateway_address(cloud):
    state, router = cloud["state"], cloud["router"]
    gw_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
    srv = subprocess.Popen(
        ["ip", "netns", "exec", LAB, "tcpdump", "-lni", "lab0", "-c", "1", "icmp", "and", "dst", "host", "172.16.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(0.5)
        assert reaches(state, "l3-vm", "172.16.0.1")
        out, _ = srv.communicate(timeout=10)
    finally:
        if srv.poll() is None:
            srv.kill()
    assert f"IP {gw_ip} > 172.16.0.1" in out, out


def test_floating_ip_both_ways_and_disassociation(cloud):
    state, conn, ext, vm = cloud["state"], cloud["conn"], cloud["ext"], cloud["vm"]
    port = next(conn.network.ports(device_id=vm.id))
    fip = conn.network.create_ip(floating_network_id=ext.id)
    conn.network.update_ip(fip, port_id=port.id)
    assert lab_reaches(fip.floating_ip_address)
    deadline = time.monotonic() + 20
    while conn.network.get_ip(fip.id).status != "ACTIVE":
        assert time.monotonic() < deadline, "floating IP not ACTIVE"
        time.sleep(0.3)
    server = _serve(state, "l3-vm", "tcp", 8080)
    try:
        # TCP in through the floating IP; the instance sees the lab host's address.
        assert _ask("tcp", fip.floating_ip_address, 8080) == "hello 172.16.0.1"
        # The instance's own traffic leaves with the floating IP.
        cap = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                LAB,
                "tcpdump",
                "-lni",
                "lab0",
                "-c",
                "1",
                "icmp",
                "and",
                "dst",
                "host",
                "172.16.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(0.5)
        assert reaches(state, "l3-vm", "172.16.0.1")
        out, _ = cap.communicate(timeout=10)
        assert f"IP {fip.floating_ip_address} > 172.16.0.1" in out, out
    finally:
        server.send_signal(signal.SIGTERM)
    # An open connection through the floating IP ...
    lines = _serve_lines(state, "l3-vm", 8081)
    client_code = (
        "import socket,sys\n"
        f"ip='{fip.floating_ip_address}'\n"
        "for _ in range(100):\n"
        " try:\n  c=socket.create_connection((ip,8081),timeout=1);break\n"
        " except OSError:\n  import time;time.sleep(0.2)\n"
        "f=c.makefile('rwb');c.settimeout(3)\n"
        "f.write(b'one\\n');f.flush();print(f.readline().decode().strip(),flush=True)\n"
        "sys.stdin.readline()\n"
        "try:\n f.write(b'two\\n');f.flush();r=f.readline().decode().strip();print(r or 'cut',flush=True)\n"
        "except OSError:\n print('cut',flush=True)\n"
    )
    client = subprocess.Popen(
        ["ip", "netns", "exec", LAB, sys.executable, "-c", client_code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout.readline().strip() == "echo one"
        # ... is cut when the floating IP is disassociated (rules gone, conntrack flushed).
        conn.network.update_ip(fip, port_id=None)
        deadline = time.monotonic() + 20
        while lab("ping", "-c", "1", "-W", "1", fip.floating_ip_address).returncode == 0:
            assert time.monotonic() < deadline, "floating IP still answers after disassociation"
        client.stdin.write("go\n")
        client.stdin.flush()
        assert client.stdout.readline().strip() == "cut"
    finally:
        client.kill()
        lines.send_signal(signal.SIGTERM)
    conn.network.delete_ip(fip)


def test_port_forwarding_tcp_and_udp(cloud):
    state, conn, ext, vm = cloud["state"], cloud["conn"], cloud["ext"], cloud["vm"]
    port = next(conn.network.ports(device_id=vm.id))
    ip = address(conn, vm.id)
    fip = conn.network.create_ip(floating_network_id=ext.id)
    for proto, ext_port, int_port in (("tcp", 2222, 8022), ("udp", 5353, 8053)):
        conn.network.create_port_forwarding(
            floatingip_id=fip.id,
            protocol=proto,
            internal_port_id=port.id,
            internal_ip_address=ip,
            internal_port=int_port,
            external_port=ext_port,
        )
    tcp, udp = _serve(state, "l3-vm", "tcp", 8022), _serve(state, "l3-vm", "udp", 8053)
    try:
        assert _ask("tcp", fip.floating_ip_address, 2222) == "hello 172.16.0.1"
        assert _ask("udp", fip.floating_ip_address, 5353) == "hello 172.16.0.1"
    finally:
        tcp.send_signal(signal.SIGTERM)
        udp.send_signal(signal.SIGTERM)


def test_extra_routes(cloud):
    conn, router, vm = cloud["conn"], cloud["router"], cloud["vm"]
    nexthop = address(conn, vm.id)
    ns = f"qrouter-{router.id}"

    def routes() -> str:
        return subprocess.run(["ip", "netns", "exec", ns, "ip", "route"], capture_output=True, text=True).stdout

    conn.network.update_router(router, routes=[{"destination": "192.0.2.0/24", "nexthop": nexthop}])
    deadline = time.monotonic() + 20
    while f"192.0.2.0/24 via {nexthop}" not in routes():
        assert time.monotonic() < deadline, routes()
        time.sleep(0.3)
    conn.network.update_router(router, routes=[])
    while "192.0.2.0/24" in routes():
        assert time.monotonic() < deadline + 20, routes()
        time.sleep(0.3)


def test_overlapping_cidrs_in_two_projects(cloud):
    state, admin, ext = cloud["state"], cloud["admin"], cloud["ext"]
    net = admin.network.create_network(name="l3-admin-net")
    sub = admin.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.50.0.0/24")  # same CIDR
    router = admin.network.create_router(name="l3-admin-router", external_gateway_info={"network_id": ext.id})
    admin.network.add_interface_to_router(router, subnet_id=sub.id)
    image, flavor = admin.image.find_image("cirros"), admin.compute.find_flavor("m1.nano")
    vm = admin.compute.create_server(
        name="l3-admin-vm", image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}]
    )
    wait_active(admin, vm.id)
    assert reaches(state, "l3-admin-vm", "172.16.0.1")  # through its own router
    assert reaches(state, "l3-vm", "172.16.0.1")  # the demo project's still works


def test_l3_agent_restart_keeps_exactly_the_same_rules(cloud):
    state, router = cloud["state"], cloud["router"]
    ns = f"qrouter-{router.id}"

    def rules() -> list[str]:
        """Every rule, as "<table> <rule>" (the same jump text appears in several tables)."""
        out = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True).stdout
        table, rows = "", []
        for line in out.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A"):
                rows.append(f"{table} {line}")
        return sorted(rows)

    before = rules()
    assert any("neutron-l3-agent-snat" in r for r in before)
    # A running flow (vm -> lab host through SNAT) across the restart.
    pinger = subprocess.Popen(
        [
            *NEUTRINO,
            "console",
            "--state-dir",
            str(state),
            "l3-vm",
            "--",
            "ping",
            "-i",
            "0.05",
            "-c",
            "120",
            "-W",
            "1",
            "172.16.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        pid = json.loads((state / "run" / "l3-agent.pid").read_text())["pid"]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{pid}"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        subprocess.run([*NEUTRINO, "up", "--state-dir", str(state)], check=True, capture_output=True, timeout=120)
        out, _ = pinger.communicate(timeout=60)
    finally:
        if pinger.poll() is None:
            pinger.kill()
    assert " 0% packet loss" in out, out
    time.sleep(2)  # let the new agent finish a pass
    after = rules()
    assert after == before and len(after) == len(set(after))
    assert reaches(state, "l3-vm", "172.16.0.1")


def test_removing_interface_and_router_cleans_up(cloud):
    admin = cloud["admin"]
    router = admin.network.find_router("l3-admin-router")
    sub = admin.network.find_subnet("l3-admin-net", ignore_missing=True) or next(
        admin.network.subnets(network_id=admin.network.find_network("l3-admin-net").id)
    )
    ns = f"qrouter-{router.id}"
    vm = admin.compute.find_server("l3-admin-vm")
    admin.compute.delete_server(vm)
    admin.network.remove_interface_from_router(router, subnet_id=sub.id)
    admin.network.update_router(router, external_gateway_info={})
    admin.network.delete_router(router)
    deadline = time.monotonic() + 30
    while ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, "router namespace not removed"
        time.sleep(0.3)
    _ = socket
