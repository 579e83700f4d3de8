"""neutrino.system.netns + iproute against the real kernel, inside throwaway namespaces."""

from __future__ import annotations

import ipaddress

import pytest

from neutrino.system import errors, iproute
from neutrino.system import netns as netns_mod
from neutrino.system.exec import run

pytestmark = pytest.mark.root


def test_netns_lifecycle_is_idempotent(prefix: str) -> None:
    name = f"{prefix}-life"
    try:
        netns_mod.ensure_netns(name)
        netns_mod.ensure_netns(name)
        assert netns_mod.netns_exists(name)
        assert name in netns_mod.list_netns()
        lo = iproute.get_link("lo", netns=name)
        assert lo is not None and lo.up
        assert netns_mod.netns_pids(name) == []
    finally:
        netns_mod.remove_netns(name)
    netns_mod.remove_netns(name)
    assert not netns_mod.netns_exists(name)
    with pytest.raises(errors.NamespaceNotFound):
        iproute.list_links(netns=name)


def test_veth_across_namespaces(netns: str, prefix: str) -> None:
    other = f"{prefix}-o"
    netns_mod.ensure_netns(other)
    try:
        iproute.ensure_veth("va", "vb", netns=netns, peer_netns=other, mtu=1600)
        iproute.ensure_veth("va", "vb", netns=netns, peer_netns=other)  # idempotent
        iproute.set_link("va", netns=netns, up=True, mac_address="fa:16:3e:00:00:0a", mtu=1450)
        iproute.set_link("vb", netns=other, up=True)
        va = iproute.get_link("va", netns=netns)
        vb = iproute.get_link("vb", netns=other)
        assert va is not None and vb is not None
        assert (va.kind, va.mtu, va.mac, va.up) == ("veth", 1450, "fa:16:3e:00:00:0a", True)
        assert vb.mtu == 1600 and va.peer_ifindex == vb.ifindex
        assert iproute.get_link("vb", netns=netns) is None

        iproute.ensure_address("va", "10.9.0.1/24", netns=netns)
        iproute.ensure_address("va", "10.9.0.1/24", netns=netns)  # idempotent
        iproute.ensure_address("vb", "10.9.0.2/24", netns=other)
        addrs = iproute.list_addresses(netns=netns, dev="va")
        assert [a.address for a in addrs if a.address.version == 4] == [ipaddress.ip_interface("10.9.0.1/24")]
        iproute.ensure_route("10.77.0.0/16", via="10.9.0.2", netns=netns)
        iproute.ensure_route("10.77.0.0/16", via="10.9.0.2", netns=netns)
        routes = {r.dst: r for r in iproute.list_routes(netns=netns)}
        assert routes["10.77.0.0/16"].gateway == "10.9.0.2" and routes["10.77.0.0/16"].dev == "va"
        iproute.remove_route("10.77.0.0/16", netns=netns)
        iproute.remove_route("10.77.0.0/16", netns=netns)
        assert "10.77.0.0/16" not in {r.dst for r in iproute.list_routes(netns=netns)}

        iproute.disable_offloads("vb", netns=other)
        iproute.disable_offloads("vb", netns=other)  # already off: still fine
        feats = run(["ethtool", "-k", "vb"], netns=other).stdout
        assert "tx-checksumming: off" in feats and "rx-checksumming: off" in feats

        iproute.remove_address("va", "10.9.0.1/24", netns=netns)
        iproute.remove_address("va", "10.9.0.1/24", netns=netns)
        iproute.flush_addresses("va", netns=netns)
        assert not [a for a in iproute.list_addresses(netns=netns, dev="va") if a.address.version == 4]

        iproute.move_link("vb", netns, netns=other)
        iproute.move_link("vb", netns, netns=other)  # already moved: no-op
        assert iproute.get_link("vb", netns=netns) is not None
        iproute.remove_link("va", netns=netns)
        iproute.remove_link("va", netns=netns)
        assert iproute.get_link("vb", netns=netns) is None  # the peer went with it
    finally:
        netns_mod.remove_netns(other)


def test_bridge_batch_sysctl_and_errors(netns: str) -> None:
    iproute.ensure_bridge("br0", netns=netns)
    iproute.ensure_bridge("br0", netns=netns)
    iproute.batch(
        [
            ["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
            ["link", "set", "dev", "d0", "master", "br0", "up"],
            ["link", "set", "dev", "d1", "up"],
        ],
        netns=netns,
    )
    links = {link.name: link for link in iproute.list_links(netns=netns)}
    assert links["br0"].kind == "bridge" and links["d0"].master == "br0"
    assert links["d0"].peer == "d1"

    with pytest.raises(errors.DeviceExists):
        iproute.ensure_veth("br0", "zz", netns=netns)  # exists, but not a veth
    with pytest.raises(errors.DeviceNotFound):
        iproute.set_link("nope0", netns=netns, up=True)
    with pytest.raises(errors.DeviceNotFound):
        iproute.disable_offloads("nope0", netns=netns)
    with pytest.raises(errors.CommandFailed):
        iproute.batch([["link", "set", "dev", "nope0", "up"]], netns=netns)

    iproute.set_sysctl("net.ipv4.ip_forward", 1, netns=netns)
    assert iproute.get_sysctl("net.ipv4.ip_forward", netns=netns) == "1"
    iproute.set_sysctl("net.ipv6.conf.all.disable_ipv6", 1, netns=netns)
    assert iproute.get_sysctl("net.ipv6.conf.all.disable_ipv6", netns=netns) == "1"


def test_observe_netns_matches_the_separate_commands(netns: str) -> None:
    """One `ip -batch` process sees what list_links / list_addresses / list_routes see."""
    for cmd in (
        ["link", "add", "va", "type", "veth", "peer", "name", "vb"],
        ["link", "set", "va", "up"],
        ["link", "set", "vb", "up", "mtu", "1400", "address", "fa:16:3e:00:00:0b"],
        ["addr", "add", "10.9.0.2/24", "dev", "va"],
        ["addr", "add", "169.254.169.254/32", "dev", "va"],
        ["addr", "add", "2001:db8::2/64", "dev", "va", "nodad"],
        ["route", "add", "default", "via", "10.9.0.1"],
        ["-6", "route", "add", "default", "via", "2001:db8::1"],
        ["route", "add", "192.0.2.0/24", "via", "10.9.0.9"],
    ):
        run(["ip", "-n", netns, *cmd])
    view = iproute.observe_netns(netns=netns)
    assert view.links == iproute.list_links(netns=netns)
    assert view.addresses == iproute.list_addresses(netns=netns)

    def key(routes: list[iproute.Route]) -> list[tuple]:
        return [(r.dst, r.gateway, r.dev, r.table) for r in routes]

    assert key(view.routes4) == key(iproute.list_routes(netns=netns, family=4))
    assert key(view.routes6) == key(iproute.list_routes(netns=netns, family=6))
    assert ("default", "2001:db8::1") in [(r.dst, r.gateway) for r in view.routes6]


def test_batch_force_tries_every_line_and_reports_the_failed_ones(netns: str) -> None:
    run(["ip", "-n", netns, "link", "add", "va", "type", "veth", "peer", "name", "vb"])
    failures = iproute.batch_force(
        [
            ["link", "set", "dev", "va", "mtu", "1400", "up"],
            ["addr", "del", "10.9.9.9/32", "dev", "va"],  # 2: not there
            ["addr", "replace", "10.9.0.1/24", "dev", "va"],
            ["route", "del", "10.1.0.0/16"],  # 4: not there
            ["link", "set", "dev", "nope0", "up"],  # 5: no such device
            ["route", "replace", "10.2.0.0/16", "nexthop", "via", "10.9.0.7", "nexthop", "via", "10.9.0.8"],
        ],
        netns=netns,
    )
    assert [(f.line, f.already_gone) for f in failures] == [(2, True), (4, True), (5, False)]
    assert failures[2].command == ("link", "set", "dev", "nope0", "up") and "nope0" in failures[2].error
    link = iproute.get_link("va", netns=netns)
    assert link is not None and link.mtu == 1400 and link.up
    assert [str(a.address) for a in iproute.list_addresses(netns=netns, dev="va") if a.address.version == 4] == [
        "10.9.0.1/24"
    ]
    routes = {r.dst: r for r in iproute.list_routes(netns=netns)}
    assert routes["10.2.0.0/16"].nexthops == ("10.9.0.7", "10.9.0.8")  # multipath, parsed
    assert iproute.batch_force([["link", "set", "dev", "va", "up"]], netns=netns) == []
    with pytest.raises(errors.NamespaceNotFound):
        iproute.batch_force([["link", "set", "dev", "lo", "up"]], netns=f"{netns}-nope")


def test_many_namespaces_at_once_are_idempotent(prefix: str) -> None:
    names = [f"{prefix}-m{i}" for i in range(3)]
    try:
        netns_mod.ensure_netns(names[0])
        netns_mod.ensure_netns_all(names, lo_up=False)
        netns_mod.ensure_netns_all(names, lo_up=False)
        assert all(netns_mod.netns_exists(n) for n in names)
        assert not iproute.get_link("lo", netns=names[1]).up
        netns_mod.ensure_netns_all(names[1:])
        assert iproute.get_link("lo", netns=names[2]).up
        # distinct namespaces, not one bound under several names
        run(["ip", "-n", names[1], "link", "add", "xa", "type", "veth", "peer", "name", "xb"])
        assert iproute.get_link("xa", netns=names[2]) is None
        netns_mod.remove_netns_all(names[:2])
        netns_mod.remove_netns_all(names[:2])
        assert [netns_mod.netns_exists(n) for n in names] == [False, False, True]
    finally:
        netns_mod.remove_netns_all(names)
    assert not any(netns_mod.netns_exists(n) for n in names)
