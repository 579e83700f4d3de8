"""DNS for instances, in the three set-ups of Neutron's DHCP agent:

A. ``dnsmasq_dns_servers``: dnsmasq (``--no-resolv --server=<ip>``) answers the
   instances' names itself and forwards everything else to that server;
B. ``dnsmasq_local_resolv``: dnsmasq (no ``--no-resolv``) forwards to the name
   servers of the resolv.conf it sees — its namespace's
   ``/etc/netns/qdhcp-<net>/resolv.conf``, bind-mounted by ``ip netns exec``;
C. per-subnet ``dns_nameservers``: handed to the instances by DHCP, which then
   ask that server directly (dnsmasq is not involved).

The upstream name server is an instance of the test cloud ("ns1", at a fixed
address ``.53``) running a tiny authoritative server for ``example.test``
(``www.example.test A 192.0.2.80``) that logs who asked what — never the
machine's own resolver.  In A and B the DHCP port asks it; in C the client does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fullstack.helpers import NEUTRINO, address, boot, console, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "dnsmasq"], capture_output=True).returncode, reason="dnsmasq not installed"
    ),
]

WWW = "www.example.test"
WWW_IP = "192.0.2.80"

# A UDP name server, authoritative for example.test only: A www -> 192.0.2.80,
# other types of www -> no data, other example.test names -> NXDOMAIN, anything
# else -> REFUSED.  Logs "<source ip> <qname> <qtype>" per query; writes its pid
# once it listens; exits by itself after a while in case nobody stops it.
RESPONDER = r'''
import os, socket, struct, sys, time
pidfile, log = sys.argv[1], sys.argv[2]
ZONE, A = "example.test", {"www.example.test": "192.0.2.80"}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
s.settimeout(1.0)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(pidfile + ".tmp", pidfile)
out = open(log, "a", buffering=1)
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    try:
        q, src = s.recvfrom(4096)
    except socket.timeout:
        continue
    try:
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        qtype, _ = struct.unpack("!HH", q[i + 1:i + 5])
    except Exception:
        continue
    question = q[12:i + 5]
    name = ".".join(labels).lower()
    out.write(f"{src[0]} {name} {qtype}\n")
    answers = b""
    if name in A:
        rcode = 0
        if qtype == 1:
            answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(A[name])
    elif name == ZONE or name.endswith("." + ZONE):
        rcode = 3
    else:
        rcode = 5
    aa = 0x0400 if rcode != 5 else 0
    hdr = struct.pack("!HHHHHH", qid, 0x8000 | aa | (flags & 0x0100) | rcode, 1, 1 if answers else 0, 0, 0)
    s.sendto(hdr + question + answers, src)
'''


@dataclass
class Lab:
    """One cloud with the upstream name server instance running."""

    state: Path
    conn: object
    net: object  # the network of set-up A / B
    upstream_ip: str  # ns1's address on ``net``
    log: Path  # the upstream's query log
    proc: subprocess.Popen | None = None
    pidfile: Path | None = None
    cleanup: list[Path] = field(default_factory=list)  # files/dirs under /etc/netns we made
    clients: dict[str, str] = field(default_factory=dict)  # client instances: name -> server id

    def queries(self) -> list[tuple[str, str]]:
        """(source ip, qname) of every query the upstream has seen."""
        if not self.log.exists():
            return []
        return [(f[0], f[1]) for f in (line.split() for line in self.log.read_text().splitlines()) if len(f) >= 2]


def _wait(pred, timeout: float = 30, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _dns_group(conn):
    """A security group letting DNS queries in (the DHCP port and other networks' clients ask ns1)."""
    sg = conn.network.create_security_group(name="dns-in")
    for proto in ("udp", "tcp"):
        conn.network.create_security_group_rule(
            security_group_id=sg.id,
            direction="ingress",
            ethertype="IPv4",
            protocol=proto,
            port_range_min=53,
            port_range_max=53,
            remote_ip_prefix="0.0.0.0/0",
        )
    return sg


def _ns_port(conn, net, subnet, ip: str, sg, **kw):
    default = next(conn.network.security_groups(name="default", project_id=conn.current_project_id))
    return conn.network.create_port(
        network_id=net.id,
        fixed_ips=[{"subnet_id": subnet.id, "ip_address": ip}],
        security_group_ids=[default.id, sg.id],
        **kw,
    )


def _start_upstream(lab: Lab, tmp: Path, ports: list, clients: dict[str, str]) -> None:
    """Boot ns1 on ``ports`` and the ``clients`` ({name: network id}) together, then
    run the responder inside ns1 (through `neutrino console`)."""
    conn = lab.conn
    image, flavor = conn.image.find_image("cirros"), conn.compute.find_flavor("m1.nano")
    ns1 = conn.compute.create_server(
        name="ns1", image_id=image.id, flavor_id=flavor.id, networks=[{"port": p.id} for p in ports]
    )
    lab.clients = {name: boot(conn, name, net_id).id for name, net_id in clients.items()}
    for sid in (ns1.id, *lab.clients.values()):  # they come up in parallel
        wait_active(conn, sid)
    script = tmp / "responder.py"
    script.write_text(RESPONDER)
    lab.pidfile = tmp / "responder.pid"
    err = open(tmp / "responder.err", "w")
    lab.proc = subprocess.Popen(
        [
            *NEUTRINO,
            "console",
            "--state-dir",
            str(lab.state),
            "ns1",
            "--",
            sys.executable,
            str(script),
            str(lab.pidfile),
            str(lab.log),
        ],
        stdin=subprocess.DEVNULL,
        stdout=err,
        stderr=err,
    )
    err.close()

    def listening() -> bool:
        assert lab.proc.poll() is None, (tmp / "responder.err").read_text()
        return lab.pidfile.exists()

    _wait(listening, timeout=30, what="the upstream name server")


def _stop_upstream(lab: Lab) -> None:
    if lab.proc is None:
        return
    if lab.pidfile is not None and lab.pidfile.exists():
        try:
            os.kill(int(lab.pidfile.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        lab.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        lab.proc.kill()
        lab.proc.wait(timeout=10)


def _dhcp_ip(conn, net) -> str:
    port = _wait(
        lambda: next(conn.network.ports(network_id=net.id, device_owner="network:dhcp"), None), what="the DHCP port"
    )
    return port.fixed_ips[0]["ip_address"]


def _dnsmasq_argv(net_id: str) -> list[str]:
    pids = subprocess.run(["ip", "netns", "pids", f"qdhcp-{net_id}"], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == "dnsmasq":
            return argv
    return []


def _nameservers(state: Path, server: str) -> list[str]:
    resolv = console(state, server, "cat", "/etc/resolv.conf").stdout
    return [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver ")]


def _resolve(state: Path, server: str, name: str, within: float = 15) -> str:
    """The addresses ``getent ahostsv4 NAME`` gives inside ``server``.

    Retried: the guest may still be getting its lease."""
    deadline = time.monotonic() + within
    while True:
        r = console(state, server, "getent", "ahostsv4", name)
        if r.returncode == 0 or time.monotonic() > deadline:
            return r.stdout if r.returncode == 0 else f"<rc {r.returncode}> {r.stdout}{r.stderr}"
        time.sleep(0.5)


def _local_names_resolve(lab: Lab, client: str, client_ip: str) -> None:
    """The instances' own names are answered by dnsmasq, never asked upstream."""
    assert client_ip in _resolve(lab.state, client, client)  # the compute API set its port's dns_name
    assert lab.upstream_ip in _resolve(lab.state, client, "ns1")  # ns1's port has dns_name "ns1"
    assert lab.upstream_ip in _resolve(lab.state, client, "ns1.openstacklocal")
    asked = {q for _, q in lab.queries()}
    assert not any(q.startswith((client, "ns1")) for q in asked), asked


# --- A + C: dnsmasq_dns_servers (and a subnet with its own dns_nameservers) --------------------
@pytest.fixture(scope="module")
def lab_a(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dns-a")
    aio = start_aio(tmp_path_factory, {("DEFAULT", "dnsmasq_dns_servers"): "10.61.0.53"})
    state, conn = next(aio)
    lab = Lab(state, conn, None, "10.61.0.53", tmp / "queries.log")
    try:
        sg = _dns_group(conn)
        lab.net = conn.network.create_network(name="dns-a")
        sub = conn.network.create_subnet(network_id=lab.net.id, ip_version=4, cidr="10.61.0.0/24")
        # Set-up C's network: its subnet hands ns1's address there straight to the instances.
        net_c = conn.network.create_network(name="dns-c")
        sub_c = conn.network.create_subnet(
            network_id=net_c.id, ip_version=4, cidr="10.63.0.0/24", dns_nameservers=["10.63.0.53"]
        )
        ports = [
            _ns_port(conn, lab.net, sub, "10.61.0.53", sg, dns_name="ns1"),
            _ns_port(conn, net_c, sub_c, "10.63.0.53", sg),
        ]
        _start_upstream(
            lab,
            tmp,
            ports,  # ns1 is on both networks
            {"dns-a1": lab.net.id, "dns-c1": net_c.id},
        )
        yield lab
    finally:
        _stop_upstream(lab)
        aio.close()  # neutrino down --purge


def test_dnsmasq_dns_servers_forwards_to_the_configured_server(lab_a):
    state, conn = lab_a.state, lab_a.conn
    dhcp_ip = _dhcp_ip(conn, lab_a.net)
    argv = _dnsmasq_argv(lab_a.net.id)
    assert "--no-resolv" in argv and "--server=10.61.0.53" in argv, argv
    client_ip = address(conn, lab_a.clients["dns-a1"])
    # The instance's name server is the DHCP port ...
    assert _wait(lambda: _nameservers(state, "dns-a1"), what="resolv.conf") == [dhcp_ip]
    # ... which forwards what it does not know to the upstream.
    assert f"{WWW_IP} " in _resolve(state, "dns-a1", WWW)
    assert (dhcp_ip, WWW) in lab_a.queries(), lab_a.queries()
    _local_names_resolve(lab_a, "dns-a1", client_ip)


def test_subnet_dns_nameservers_are_asked_directly(lab_a):
    state, conn = lab_a.state, lab_a.conn
    net_c = conn.network.find_network("dns-c")
    client_ip = address(conn, lab_a.clients["dns-c1"])
    # The instance gets exactly the subnet's name server (not the DHCP port) ...
    assert _wait(lambda: _nameservers(state, "dns-c1"), what="resolv.conf") == ["10.63.0.53"]
    # ... and asks it itself: the upstream sees the instance's address, not dnsmasq's.
    assert f"{WWW_IP} " in _resolve(state, "dns-c1", WWW)
    assert (client_ip, WWW) in lab_a.queries(), lab_a.queries()
    dhcp_c = _dhcp_ip(conn, net_c)
    assert not any(src == dhcp_c for src, _ in lab_a.queries())


# --- B: dnsmasq_local_resolv ----------------------------------------------------------------
@pytest.fixture(scope="module")
def lab_b(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dns-b")
    aio = start_aio(tmp_path_factory, {("DEFAULT", "dnsmasq_local_resolv"): "true"})
    state, conn = next(aio)
    lab = Lab(state, conn, None, "10.62.0.53", tmp / "queries.log")
    try:
        sg = _dns_group(conn)
        lab.net = conn.network.create_network(name="dns-b")
        # dnsmasq reads the resolv.conf of its namespace: write it before the subnet
        # exists (dnsmasq starts with the first DHCP subnet), so it never sees the host's.
        etc_netns = Path("/etc/netns")
        if not etc_netns.exists():
            etc_netns.mkdir()
            lab.cleanup.append(etc_netns)
        d = etc_netns / f"qdhcp-{lab.net.id}"
        d.mkdir()
        lab.cleanup.append(d)
        (d / "resolv.conf").write_text("nameserver 10.62.0.53\n")
        lab.cleanup.append(d / "resolv.conf")
        sub = conn.network.create_subnet(network_id=lab.net.id, ip_version=4, cidr="10.62.0.0/24")
        _start_upstream(
            lab, tmp, [_ns_port(conn, lab.net, sub, "10.62.0.53", sg, dns_name="ns1")], {"dns-b1": lab.net.id}
        )
        yield lab
    finally:
        _stop_upstream(lab)
        aio.close()  # neutrino down --purge
        for p in reversed(lab.cleanup):  # the file, its directory, /etc/netns if we made it
            if p.is_dir():
                p.rmdir()
            else:
                p.unlink(missing_ok=True)


def test_dnsmasq_local_resolv_forwards_to_its_namespace_resolv_conf(lab_b):
    state, conn = lab_b.state, lab_b.conn
    dhcp_ip = _dhcp_ip(conn, lab_b.net)
    argv = _dnsmasq_argv(lab_b.net.id)
    assert argv and "--no-resolv" not in argv and not any(a.startswith("--server") for a in argv), argv
    client_ip = address(conn, lab_b.clients["dns-b1"])
    assert _wait(lambda: _nameservers(state, "dns-b1"), what="resolv.conf") == [dhcp_ip]
    assert f"{WWW_IP} " in _resolve(state, "dns-b1", WWW)
    assert (dhcp_ip, WWW) in lab_b.queries(), lab_b.queries()
    _local_names_resolve(lab_b, "dns-b1", client_ip)
