"""The interface driver (neutrino.agents.interface) against a private OVS and real namespaces:
many ports at once (veth pairs straight into their namespaces, or internal ports moved), one
port at a time, and cleanup through the namespaces."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from neutrino.agents.interface import DEAD_VLAN, InterfaceDriver, NewPort, tap_name
from neutrino.system import iproute
from neutrino.system import netns as netns_mod
from neutrino.system import ovsdb as sysovs
from neutrino.system.exec import run
from neutrino.system.host import SystemHost

pytestmark = pytest.mark.root


@pytest.fixture
def bridge(private_ovs: sysovs.Ovs) -> sysovs.Ovs:
    private_ovs.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
    return private_ovs


@pytest.fixture
def spaces(prefix: str) -> Iterator[list[str]]:
    names = [f"{prefix}-r{i}" for i in range(2)]
    netns_mod.ensure_netns_all(names)
    try:
        yield names
    finally:
        netns_mod.remove_netns_all(names)


def _ports(spaces: list[str]) -> list[NewPort]:
    return [
        NewPort(
            f"qr-{i:02d}aa-bbbbbb",
            f"{i:02d}aabbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
            f"fa:16:3e:00:00:{i:02x}",
            1450 - i,
            spaces[i % 2],
        )
        for i in range(4)
    ]


def _ofport(ovs: sysovs.Ovs, port: str, within: float = 5.0) -> int:
    end = time.monotonic() + within
    while True:
        of = ovs.get("Interface", port, "ofport")
        if (of or -1) > 0 or time.monotonic() > end:
            return of or -1
        time.sleep(0.05)


def test_veth_ports_are_made_in_their_namespaces_without_moves(bridge: sysovs.Ovs, spaces: list[str]) -> None:
    drv = InterfaceDriver(SystemHost(bridge), "br-int", veth=True)
    ports = _ports(spaces)
    assert drv.create_all(ports) == []
    for p in ports:
        drv.finish(p.name, p.namespace)
        link = iproute.get_link(p.name, netns=p.namespace)
        assert link is not None and link.kind == "veth"
        assert (link.mac, link.mtu, link.up) == (p.mac, p.mtu, False)  # the caller brings it up
        tap = iproute.get_link(tap_name(p.name), netns=bridge.netns)
        assert tap is not None and tap.up and tap.mtu == p.mtu
        assert _ofport(bridge, tap_name(p.name)) > 0  # ovs-vswitchd opened the device made after the port
        assert bridge.get("Port", tap_name(p.name), "tag") == DEAD_VLAN
        assert bridge.get("Interface", tap_name(p.name), "external_ids") == {
            "iface-id": p.port_id,
            "attached-mac": p.mac,
            "iface-status": "active",
        }
        feats = run(["ethtool", "-k", p.name], netns=p.namespace).stdout
        assert "tx-checksumming: off" in feats

    # plug: an existing device only gets its MAC/MTU (both ends) and comes up
    p = ports[0]
    drv.plug(p.name, p.port_id, "fa:16:3e:00:00:99", 1400, p.namespace)
    link = iproute.get_link(p.name, netns=p.namespace)
    assert link is not None and (link.mac, link.mtu, link.up) == ("fa:16:3e:00:00:99", 1400, True)
    assert iproute.get_link(tap_name(p.name), netns=bridge.netns).mtu == 1400

    # a device taken away (its veth end gone): plug makes the pair and the port again
    iproute.remove_link(ports[1].name, netns=ports[1].namespace)
    drv.plug(ports[1].name, ports[1].port_id, ports[1].mac, ports[1].mtu, ports[1].namespace)
    assert iproute.get_link(ports[1].name, netns=ports[1].namespace) is not None
    assert _ofport(bridge, tap_name(ports[1].name)) > 0

    # unplug_all + removing the namespaces leaves nothing
    drv.unplug_all(p.name for p in ports)
    assert not [n for n in bridge.vsctl("list-ports", "br-int").split() if n.startswith(("tap", "qr-"))]
    netns_mod.remove_netns_all(spaces)
    end = time.monotonic() + 5
    while [link.name for link in iproute.list_links(netns=bridge.netns) if link.name.startswith("tap")]:
        assert time.monotonic() < end, "veth ends left in OVS's namespace"
        time.sleep(0.05)


def test_a_port_whose_device_cannot_be_made_is_returned(bridge: sysovs.Ovs, spaces: list[str]) -> None:
    drv = InterfaceDriver(SystemHost(bridge), "br-int", veth=True)
    ports = _ports(spaces)
    gone = NewPort(
        "qr-zzaa-bbbbbb", "zzaabbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "fa:16:3e:00:00:7f", 1450, f"{spaces[0]}-gone"
    )
    assert drv.create_all([ports[0], gone, ports[1]]) == [gone]
    assert iproute.get_link(ports[1].name, netns=ports[1].namespace) is not None
    # its OVS port exists without a device: the namespace end is what a planner sees missing
    assert bridge.get("Interface", tap_name(gone.name), "ofport") == -1


def test_internal_ports_many_at_once_and_one_by_one(bridge: sysovs.Ovs, spaces: list[str]) -> None:
    drv = InterfaceDriver(SystemHost(bridge), "br-int")
    ports = _ports(spaces)[:2]
    assert drv.create_all(ports) == []
    for p in ports:
        link = iproute.get_link(p.name, netns=p.namespace)
        assert link is not None and link.kind == "tun"
        assert bridge.get("Interface", p.name, "type") == "internal"
        assert bridge.get("Interface", p.name, "external_ids")["iface-id"] == p.port_id
        drv.plug(p.name, p.port_id, p.mac, p.mtu, p.namespace)  # exists: MAC/MTU/up only
        link = iproute.get_link(p.name, netns=p.namespace)
        assert link is not None and (link.mac, link.mtu, link.up) == (p.mac, p.mtu, True)
    drv.unplug(ports[0].name, ports[0].namespace)
    drv.unplug(ports[0].name, ports[0].namespace)
    assert iproute.get_link(ports[0].name, netns=ports[0].namespace) is None
    assert ports[0].name not in bridge.vsctl("list-ports", "br-int").split()
