"""DHCP on one host: dnsmasq in qdhcp- namespaces answering only for known
ports, with the options an instance needs, names, renewals and teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.fullstack.helpers import address, boot, console, openrc_connect, reaches, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "dnsmasq"], capture_output=True).returncode, reason="dnsmasq not installed"
    ),
]


@pytest.fixture(scope="module")
def aio(tmp_path_factory):
    yield from start_aio(tmp_path_factory)


def renew(state, server_id: str) -> None:
    """Make the guest's DHCP client renew now (busybox udhcpc: SIGUSR1), as its
    renewal timer would at half the lease time."""
    pid = int((state / "guests" / server_id / "udhcpc-eth0.pid").read_text())
    os.kill(pid, signal.SIGUSR1)


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _wait(pred, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_instances_get_exactly_their_port_config(aio):
    state, conn = aio
    net = conn.network.create_network(name="dh-net")
    sub = conn.network.create_subnet(
        network_id=net.id,
        ip_version=4,
        cidr="10.40.0.0/24",
        host_routes=[{"destination": "192.0.2.0/24", "nexthop": "10.40.0.254"}],
    )
    a, b = boot(conn, "dh-a", net.id), boot(conn, "dh-b", net.id)
    for s in (a, b):
        wait_active(conn, s.id)
    a_ip, b_ip = address(conn, a.id), address(conn, b.id)
    dhcp = next(conn.network.ports(network_id=net.id, device_owner="network:dhcp"))
    dhcp_ip = dhcp.fixed_ips[0]["ip_address"]
    # The lowest free address of the pool (unless an instance's random pick got there first).
    assert dhcp_ip == "10.40.0.2" or "10.40.0.2" in (a_ip, b_ip)
    addr = console(state, "dh-a", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"{a_ip}/24" in addr
    assert "mtu 1450" in console(state, "dh-a", "ip", "-o", "link", "show", "eth0").stdout
    routes = console(state, "dh-a", "ip", "route").stdout
    assert "default via 10.40.0.1" in routes
    assert "192.0.2.0/24 via 10.40.0.254" in routes
    # No router on this network: the metadata route points at the DHCP port.
    assert f"169.254.169.254 via {dhcp_ip}" in routes
    # No dns_nameservers on the subnet: the DHCP port is the name server ...
    resolv = console(state, "dh-a", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {dhcp_ip}" in resolv
    # ... and it resolves the neighbour's name (its port's dns_name, set by the compute API).
    hosts = console(state, "dh-a", "getent", "ahostsv4", "dh-b")
    assert hosts.returncode == 0 and b_ip in hosts.stdout, hosts.stdout + hosts.stderr
    assert reaches(state, "dh-a", b_ip)
    # A changed DNS server reaches the instance on its next renewal.
    conn.network.update_subnet(sub, dns_nameservers=["10.40.0.53"])

    def renewed() -> bool:
        renew(state, a.id)
        time.sleep(0.5)
        return "nameserver 10.40.0.53" in console(state, "dh-a", "cat", "/etc/resolv.conf").stdout

    _wait(renewed, timeout=30, what="the new name server after a renewal")
    # With a router on the subnet, the metadata route points at the router instead.
    router = conn.network.create_router(name="dh-router")
    conn.network.add_interface_to_router(router, subnet_id=sub.id)

    def via_router() -> bool:
        renew(state, a.id)
        time.sleep(0.5)
        return "169.254.169.254 via 10.40.0.1" in console(state, "dh-a", "ip", "route").stdout

    _wait(via_router, timeout=30, what="the metadata route through the router")


def _probe_lease(state, conn, net, mac: str) -> subprocess.CompletedProcess[str]:
    """Run a one-shot DHCP client with ``mac`` on ``net`` from a namespace of the test's own.

    br-int lets in only ports the OVS agent has wired, so the probe's veth is the VIF of a
    port of its own (bound to this host, port security off: it may send with any MAC)."""
    from neutrino.agents.runner import host_name
    from neutrino.cli.host import private_ovs
    from neutrino.cli.main import load_config
    from neutrino.system import ovsdb as sysovs

    cfg = load_config(state / "neutrino.conf", state)
    ovs = private_ovs(cfg).ovs
    admin = openrc_connect(state / "admin-openrc")  # binding:host_id is the admin's to set
    vif = admin.network.create_port(
        network_id=net.id,
        name="dh-probe",
        port_security_enabled=False,
        binding_host_id=host_name(cfg),
        device_owner="compute:probe",
    )
    probe = "dh-probe"
    subprocess.run(["ip", "netns", "add", probe], check=True)
    try:
        subprocess.run(
            [
                "ip",
                "link",
                "add",
                "dhprobe0",
                "netns",
                ovs.netns,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                probe,
            ],
            check=True,
        )
        subprocess.run(["ip", "-n", probe, "link", "set", "eth0", "address", mac, "up"], check=True)
        subprocess.run(["ip", "-n", ovs.netns, "link", "set", "dhprobe0", "up"], check=True)
        for ns, dev in ((probe, "eth0"), (ovs.netns, "dhprobe0")):
            subprocess.run(
                ["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off"], capture_output=True
            )
        ovs.transact(
            [
                sysovs.AddPort(
                    "br-int",
                    "dhprobe0",
                    external_ids={"iface-id": vif.id, "attached-mac": vif.mac_address, "iface-status": "active"},
                )
            ]
        )
        _wait(lambda: admin.network.get_port(vif.id).status == "ACTIVE", 20, "the probe port wired")
        return subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                probe,
                "busybox",
                "udhcpc",
                "-i",
                "eth0",
                "-n",
                "-q",
                "-t",
                "4",
                "-T",
                "1",
                "-s",
                "/bin/true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        ovs.transact([sysovs.DelPort("dhprobe0", "br-int")])
        subprocess.run(["ip", "netns", "del", probe], check=False)
        admin.network.delete_port(vif.id)


def test_only_macs_with_a_port_get_a_lease(aio):
    state, conn = aio
    net = conn.network.find_network("dh-net")
    # Control: the MAC of an existing (unbound) port gets exactly that port's address ...
    port = conn.network.create_port(network_id=net.id, name="dh-control")
    want = port.fixed_ips[0]["ip_address"]
    deadline = time.monotonic() + 20
    while True:  # the DHCP agent adds the port's host entry from the feed
        got = _probe_lease(state, conn, net, port.mac_address)
        if got.returncode == 0 or time.monotonic() > deadline:
            break
    assert got.returncode == 0 and f"lease of {want} obtained" in got.stdout + got.stderr, got.stdout + got.stderr
    # ... and a MAC without a port gets nothing.
    none = _probe_lease(state, conn, net, "fa:16:3e:ee:ee:01")
    assert none.returncode != 0 and "obtained" not in none.stdout + none.stderr


def test_dhcp_disabled_answers_nothing_and_delete_removes_everything(aio):
    state, conn = aio
    net = conn.network.create_network(name="dh-off")
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.41.0.0/24", is_dhcp_enabled=True)
    _wait(lambda: f"qdhcp-{net.id}" in _netns(), what="the DHCP namespace")
    conn.network.update_subnet(sub, is_dhcp_enabled=False)
    _wait(lambda: f"qdhcp-{net.id}" not in _netns(), what="the DHCP namespace to go")
    assert not list(conn.network.ports(network_id=net.id, device_owner="network:dhcp"))
    conn.network.update_subnet(sub, is_dhcp_enabled=True)
    _wait(lambda: f"qdhcp-{net.id}" in _netns(), what="the DHCP namespace again")
    conn.network.delete_subnet(sub)
    conn.network.delete_network(net)
    _wait(lambda: f"qdhcp-{net.id}" not in _netns(), what="the namespace after network delete")
    assert not (state / "dhcp" / net.id).exists()
