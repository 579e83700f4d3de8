"""The compute agent's executor on the in-memory host (``neutrino.fakes.host.FakeHost``,
injected), with its ``/etc/netns`` directory in a tmp dir: a pass boots an instance
(namespace, veth pair plugged into br-int, addresses, default route, ``resolv.conf`` for
``ip netns exec``), the next pass changes nothing, and a server gone from the feed is
destroyed with its per-namespace files."""

from __future__ import annotations

import stat
from pathlib import Path

from neutrino.agents.compute.agent import ComputeDriver
from neutrino.agents.compute.planner import netns_name, tap_name
from neutrino.fakes.host import FakeHost
from neutrino.feed.state import State

HOST = "h1"
SID = "sid-1"
PORT = "p1aaaaaaaaaaaaaaa"


def _state(servers: bool = True) -> State:
    return State(
        1,
        {
            "server": {SID: {"id": SID, "name": "vm1", "host": HOST, "status": "BUILD", "port_ids": [PORT]}}
            if servers
            else {},
            "port": {
                PORT: {
                    "id": PORT,
                    "network_id": "net-1",
                    "mac_address": "fa:16:3e:00:00:05",
                    "status": "ACTIVE",
                    "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
                }
            },
            "network": {"net-1": {"id": "net-1", "mtu": 1450}},
            "subnet": {
                "s1": {
                    "id": "s1",
                    "network_id": "net-1",
                    "cidr": "10.0.0.0/24",
                    "ip_version": 4,
                    "gateway_ip": "10.0.0.1",
                    "enable_dhcp": False,
                    "dns_nameservers": ["192.0.2.53"],
                }
            },
            "dhcp_binding": {},
        },
        frozenset({"server", "port", "network", "subnet", "dhcp_binding"}),
    )


def test_an_instance_boots_on_the_fake_host_with_its_resolv_conf_in_the_given_dir(tmp_path: Path) -> None:
    host = FakeHost()
    etc = tmp_path / "etc-netns"
    drv = ComputeDriver(HOST, host, marks=tmp_path / "instances", etc_netns=etc)
    ns = netns_name(SID)

    assert drv.reconcile_sync(_state()) == {SID: "ACTIVE"}
    tap = tap_name(PORT)
    assert host.ovs.ports[tap].iface is not None
    assert host.ovs.ports[tap].iface.external_ids["iface-id"] == PORT
    assert host.ovs.ports[tap].iface.external_ids["vm-uuid"] == SID
    guest = host.ns[ns].devices["eth0"]
    assert guest.mac == "fa:16:3e:00:00:05" and guest.mtu == 1450 and "10.0.0.5/24" in guest.addrs
    resolv = etc / ns / "resolv.conf"
    assert resolv.read_text() == "nameserver 192.0.2.53\n"
    # What every process of the namespace reads, whatever the agent's umask.
    assert stat.S_IMODE(resolv.stat().st_mode) == 0o644 and stat.S_IMODE(resolv.parent.stat().st_mode) == 0o755
    assert (tmp_path / "instances" / SID).exists()

    host.calls.clear()
    assert drv.reconcile_sync(_state()) == {SID: "ACTIVE"}
    assert not [what for what, _ in host.calls if what not in ("ovsdb read", "ip netns list", "ip link show")]

    assert drv.reconcile_sync(_state(servers=False)) == {}
    assert ns not in host.ns and tap not in host.ovs.ports
    assert not (etc / ns).exists() and not (tmp_path / "instances" / SID).exists()
