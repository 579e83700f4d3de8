"""Security groups enforced in the data plane (the OVS conntrack firewall), end to end.

One all-in-one; an admin flat network on physnet `physnet` (the lab host,
172.16.0.1, is "outside"); demo instances on it in the demo project's
default group.  Every check sends real packets between namespaces: ping, TCP
and UDP echo servers inside the instances, clients in the lab host and in
other instances.  Rule changes go through the API, as a user would make
them, and the checks wait (bounded) for the agent to apply them.  Needs root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from neutrino.agents.compute.planner import netns_name
from tests.fullstack.helpers import address, boot, openrc_connect, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "ovs-vswitchd"], capture_output=True).returncode, reason="Open vSwitch not installed"
    ),
]

LAB = f"lab-f{uuid.uuid4().hex[:6]}"
LAB_IP = "172.16.0.1"

ECHO_SERVER = r"""
import socket, sys, threading
def echo(c):
    with c:
        while True:
            d = c.recv(4096)
            if not d:
                return
            c.sendall(d)
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(4096); s.sendto(d, a)
for spec in sys.argv[1:]:
    proto, port = spec.split(":")
    threading.Thread(target=tcp if proto == "tcp" else udp, args=(int(port),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

PROBE = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=1.5)
        s.sendall(b"ping"); ok = s.recv(16) == b"ping"
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
        s.sendto(b"ping", (host, port)); ok = s.recvfrom(16)[0] == b"ping"
except OSError:
    ok = False
sys.exit(0 if ok else 1)
"""

# A client that keeps one TCP connection open: every line on stdin is sent and
# "ok"/"fail" printed after the echo (or its absence).
HOLDER = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.settimeout(2); s.sendall(b"x"); ok = s.recv(16) == b"x"
    except OSError:
        ok = False
    print("ok" if ok else "fail", flush=True)
"""

TCP_PORTS = (22, 8080, 8081)
UDP_PORTS = (5005, 5011)


def in_ns(ns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)


def ping(ns: str, ip: str) -> bool:
    return in_ns(ns, "ping", "-c", "1", "-W", "1", ip).returncode == 0


def probe(ns: str, proto: str, ip: str, port: int) -> bool:
    return in_ns(ns, sys.executable, "-c", PROBE, proto, ip, str(port)).returncode == 0


def eventually(check: Callable[[], bool], within: float = 20.0) -> bool:
    """True as soon as ``check()`` is; False if it never is within the time."""
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)


def blocked(check: Callable[[], bool], within: float = 20.0) -> bool:
    """The traffic ``check`` sends is (or becomes, within the time) dropped."""
    return eventually(lambda: not check(), within)


class Cloud:
    def __init__(self, state, admin, demo) -> None:
        self.state, self.admin, self.demo = state, admin, demo
        self.servers: dict[str, tuple[str, str, str]] = {}  # name -> (server id, ip, namespace)
        self.procs: list[subprocess.Popen[str]] = []
        self.default = ""

    def boot(self, name: str, net_id: str) -> tuple[str, str, str]:
        vm = boot(self.demo, name, net_id)
        wait_active(self.demo, vm.id, timeout=90)
        self.servers[name] = (vm.id, address(self.demo, vm.id), netns_name(vm.id))
        return self.servers[name]

    def ip(self, name: str) -> str:
        return self.servers[name][1]

    def ns(self, name: str) -> str:
        return self.servers[name][2]

    def port(self, name: str):
        return next(self.demo.network.ports(device_id=self.servers[name][0]))

    def serve(self, name: str) -> None:
        specs = [f"tcp:{p}" for p in TCP_PORTS] + [f"udp:{p}" for p in UDP_PORTS]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(name), sys.executable, "-c", ECHO_SERVER, *specs],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def rule(self, group_id: str, **kw) -> str:
        return self.demo.network.create_security_group_rule(security_group_id=group_id, **kw).id


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    gen = start_aio(tmp_path_factory, {("lab", "host_netns"): LAB})
    state, demo = next(gen)
    c = None
    try:
        admin = openrc_connect(state / "admin-openrc")
        net = admin.network.create_network(
            name="fw-flat", provider_network_type="flat", provider_physical_network="physnet", is_shared=True
        )
        admin.network.create_subnet(
            network_id=net.id,
            ip_version=4,
            cidr="172.16.0.0/24",
            gateway_ip=LAB_IP,
            allocation_pools=[{"start": "172.16.0.100", "end": "172.16.0.150"}],
        )
        c = Cloud(state, admin, demo)
        c.default = demo.network.find_security_group("default", project_id=demo.current_project_id).id
        for name in ("vm1", "vm2"):
            c.boot(name, net.id)
        c.serve("vm1")
        yield c
    finally:
        for p in c.procs if c else ():
            p.kill()
            p.wait()
        try:
            next(gen)
        except StopIteration:
            pass


def test_default_group_lets_members_talk_and_blocks_the_outside(cloud: Cloud) -> None:
    # Same group: everything is allowed between the two instances.
    assert eventually(lambda: ping(cloud.ns("vm2"), cloud.ip("vm1")), 40)
    assert probe(cloud.ns("vm2"), "tcp", cloud.ip("vm1"), 8080)
    assert probe(cloud.ns("vm2"), "udp", cloud.ip("vm1"), 5005)
    # Outside (the lab host): nothing gets in ...
    assert not ping(LAB, cloud.ip("vm1"))
    assert not probe(LAB, "tcp", cloud.ip("vm1"), 22)
    assert not probe(LAB, "udp", cloud.ip("vm1"), 5005)
    # ... but replies to the instance's own connections come back.
    assert eventually(lambda: ping(cloud.ns("vm1"), LAB_IP), 20)


def test_icmp_and_ssh_rules_open_and_removing_them_closes(cloud: Cloud) -> None:
    vm1 = cloud.ip("vm1")
    icmp = cloud.rule(cloud.default, direction="ingress", ethertype="IPv4", protocol="icmp")
    ssh = cloud.rule(
        cloud.default, direction="ingress", ethertype="IPv4", protocol="tcp", port_range_min=22, port_range_max=22
    )
    try:
        assert eventually(lambda: ping(LAB, vm1))
        assert eventually(lambda: probe(LAB, "tcp", vm1, 22))
        assert not probe(LAB, "tcp", vm1, 8080)  # only port 22 is open
    finally:
        cloud.demo.network.delete_security_group_rule(icmp)
        cloud.demo.network.delete_security_group_rule(ssh)
    assert blocked(lambda: ping(LAB, vm1))
    assert blocked(lambda: probe(LAB, "tcp", vm1, 22))


def test_prefix_port_range_udp_and_icmp_type(cloud: Cloud) -> None:
    vm1 = cloud.ip("vm1")
    rules = [
        cloud.rule(
            cloud.default,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=8000,
            port_range_max=8080,
            remote_ip_prefix=f"{LAB_IP}/32",
        ),
        cloud.rule(
            cloud.default,
            direction="ingress",
            ethertype="IPv4",
            protocol="udp",
            port_range_min=5000,
            port_range_max=5010,
        ),
        cloud.rule(
            cloud.default, direction="ingress", ethertype="IPv4", protocol="icmp", port_range_min=13, port_range_max=0
        ),  # timestamp requests only, not echo
    ]
    try:
        assert eventually(lambda: probe(LAB, "tcp", vm1, 8080))
        assert not probe(LAB, "tcp", vm1, 8081)  # outside the range
        assert probe(LAB, "udp", vm1, 5005)
        assert not probe(LAB, "udp", vm1, 5011)  # outside the range
        assert not ping(LAB, vm1)  # echo is not type 13
    finally:
        for r in rules:
            cloud.demo.network.delete_security_group_rule(r)
    assert blocked(lambda: probe(LAB, "tcp", vm1, 8080))
    assert blocked(lambda: probe(LAB, "udp", vm1, 5005))


def test_remote_group_membership_is_followed(cloud: Cloud) -> None:
    """vm1 only in group "srv" (tcp 8080 from members of "cli"); vm2 joins and leaves "cli"."""
    demo = cloud.demo
    srv = demo.network.create_security_group(name=f"srv-{uuid.uuid4().hex[:4]}")
    cli = demo.network.create_security_group(name=f"cli-{uuid.uuid4().hex[:4]}")
    cloud.rule(
        srv.id,
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=8080,
        port_range_max=8080,
        remote_group_id=cli.id,
    )
    p1, p2 = cloud.port("vm1"), cloud.port("vm2")
    vm1 = cloud.ip("vm1")
    try:
        demo.network.update_port(p1, security_group_ids=[srv.id])
        # vm2 (default group only) is no member of "cli": blocked now that vm1 left "default".
        assert blocked(lambda: probe(cloud.ns("vm2"), "tcp", vm1, 8080))
        demo.network.update_port(p2, security_group_ids=[cloud.default, cli.id])
        assert eventually(lambda: probe(cloud.ns("vm2"), "tcp", vm1, 8080))
        assert not probe(cloud.ns("vm2"), "tcp", vm1, 8081)  # the rule is for 8080 only
        demo.network.update_port(p2, security_group_ids=[cloud.default])
        assert blocked(lambda: probe(cloud.ns("vm2"), "tcp", vm1, 8080))
    finally:
        demo.network.update_port(p1, security_group_ids=[cloud.default])
        demo.network.update_port(p2, security_group_ids=[cloud.default])
        assert eventually(lambda: probe(cloud.ns("vm2"), "tcp", vm1, 8080))
        demo.network.delete_security_group(srv)
        demo.network.delete_security_group(cli)


def test_egress_rules_restrict_outgoing_traffic(cloud: Cloud) -> None:
    demo = cloud.demo
    out = demo.network.create_security_group(name=f"out-{uuid.uuid4().hex[:4]}")
    for r in list(demo.network.security_group_rules(security_group_id=out.id)):
        demo.network.delete_security_group_rule(r)  # a new group allows all egress: take that away
    p2 = cloud.port("vm2")
    try:
        demo.network.update_port(p2, security_group_ids=[out.id])
        assert blocked(lambda: ping(cloud.ns("vm2"), LAB_IP))
        assert not probe(cloud.ns("vm2"), "tcp", cloud.ip("vm1"), 8080)
        cloud.rule(out.id, direction="egress", ethertype="IPv4", protocol="icmp")
        assert eventually(lambda: ping(cloud.ns("vm2"), LAB_IP))  # the reply comes back in
        assert not probe(cloud.ns("vm2"), "tcp", cloud.ip("vm1"), 8080)
    finally:
        demo.network.update_port(p2, security_group_ids=[cloud.default])
        demo.network.delete_security_group(out)


def test_live_connection_survives_unrelated_changes_and_dies_with_its_rule(cloud: Cloud) -> None:
    vm1 = cloud.ip("vm1")
    ssh = cloud.rule(
        cloud.default, direction="ingress", ethertype="IPv4", protocol="tcp", port_range_min=22, port_range_max=22
    )
    assert eventually(lambda: probe(LAB, "tcp", vm1, 22))
    holder = subprocess.Popen(
        ["ip", "netns", "exec", LAB, sys.executable, "-c", HOLDER, vm1, "22"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    cloud.procs.append(holder)
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline().strip() == "connected"

    def exchange() -> bool:
        holder.stdin.write("x\n")
        holder.stdin.flush()
        return holder.stdout.readline().strip() == "ok"

    assert exchange()
    other = cloud.rule(
        cloud.default, direction="ingress", ethertype="IPv4", protocol="udp", port_range_min=5011, port_range_max=5011
    )
    assert eventually(lambda: probe(LAB, "udp", vm1, 5011))  # the unrelated rule is applied
    assert exchange(), "an unrelated rule change cut a live connection"
    cloud.demo.network.delete_security_group_rule(other)
    cloud.demo.network.delete_security_group_rule(ssh)
    assert blocked(exchange), "the connection outlived the rule that allowed it"


def test_port_security_disabled_lifts_filtering(cloud: Cloud) -> None:
    vm1 = cloud.ip("vm1")
    p1 = cloud.port("vm1")
    assert not ping(LAB, vm1)
    # port_security_enabled is the network owner's (admin's) to change on this shared network.
    try:
        cloud.admin.network.update_port(p1, security_group_ids=[], port_security_enabled=False)
        assert eventually(lambda: ping(LAB, vm1))
        assert probe(LAB, "tcp", vm1, 8081)
    finally:
        cloud.admin.network.update_port(p1, port_security_enabled=True, security_group_ids=[cloud.default])
    assert blocked(lambda: ping(LAB, vm1))
