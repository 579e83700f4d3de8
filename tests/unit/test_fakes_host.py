"""The in-memory host (``neutrino.fakes.host.FakeHost``) behaves as the adapters show the
real one: it satisfies the ``Host`` interface method for method, interprets ``ip`` lines
(with ``ip``'s failures), keeps namespaces, routes, rulesets, processes and OVS ports, and
injects the faults tests ask for.  The real ``InterfaceDriver`` runs on it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from neutrino.agents.interface import DEAD_VLAN, InterfaceDriver, NewPort
from neutrino.fakes.host import FakeHost, RouteEntry, as_host
from neutrino.system import errors
from neutrino.system import ovsdb as sysovs
from neutrino.system.host import Host, SystemHost
from neutrino.system.process import ProcessSpec


def _members(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(cls).items() if callable(fn) and not name.startswith("_")}


def test_fake_and_real_host_offer_every_method_of_the_interface_with_its_signature() -> None:
    want = _members(Host)
    assert {"ensure_netns", "ip_batch_force", "iptables_restore", "process_start", "haproxy_ensure", "run"} <= set(want)
    for impl in (FakeHost, SystemHost):
        have = _members(impl)
        missing = set(want) - set(have)
        assert not missing, (impl.__name__, missing)
        for name, sig in want.items():
            assert list(have[name].parameters) == list(sig.parameters), (impl.__name__, name)
    assert as_host(FakeHost()).ovs.netns is None


def test_namespaces_and_the_calls_they_cost() -> None:
    h = FakeHost()
    h.ensure_netns_all(["a", "b"], lo_up=False)
    h.ensure_netns("c")
    assert h.list_netns() == ["a", "b", "c"] and not h.ns["a"].lo_up and h.ns["c"].lo_up
    h.remove_netns_all(["a", "x"])
    h.remove_netns("b")
    assert sorted(h.ns) == ["c"] and h.netns_exists("c") and not h.netns_exists("a")
    assert [w for w, _ in h.calls] == ["ip -batch", "ip netns add", "ip netns list", "ip -batch", "ip netns delete"]
    assert h.count("ip -batch") == 2
    with pytest.raises(errors.NamespaceNotFound):
        h.list_links(netns="a")


def test_ip_lines_change_state_and_fail_as_ip_does() -> None:
    h = FakeHost()
    h.ensure_netns("r")
    assert h.ip_batch_force(
        [
            [
                "link",
                "add",
                "tap1",
                "mtu",
                "1450",
                "type",
                "veth",
                "peer",
                "name",
                "qr-1",
                "address",
                "fa:16:3e:00:00:01",
                "netns",
                "r",
            ],
            ["addr", "replace", "10.0.0.1/24", "dev", "qr-1"],
        ]
    ) == [errors_line(2, "addr replace 10.0.0.1/24 dev qr-1", 'Cannot find device "qr-1"')]  # not in the root ns
    assert "tap1" in h.root.devices and h.ns["r"].devices["qr-1"].mac == "fa:16:3e:00:00:01"
    failures = h.ip_batch_force(
        [
            ["link", "set", "dev", "qr-1", "mtu", "1450", "up"],
            ["addr", "replace", "10.0.0.1/24", "dev", "qr-1"],
            ["addr", "del", "10.0.0.9/24", "dev", "qr-1"],
            ["route", "replace", "192.168.0.0/16", "nexthop", "via", "10.0.0.254", "nexthop", "via", "10.0.0.253"],
            ["route", "replace", "10.9.0.0/16", "dev", "qr-1"],
            ["route", "del", "10.8.0.0/16"],
        ],
        netns="r",
    )
    assert [f.line for f in failures] == [3, 6]  # deleting what is not there fails
    st = h.ns["r"]
    assert st.devices["qr-1"].up and st.devices["qr-1"].mtu == 1450 and st.devices["qr-1"].addrs == {"10.0.0.1/24"}
    assert st.routes["192.168.0.0/16"] == RouteEntry("192.168.0.0/16", ("10.0.0.253", "10.0.0.254"))
    view = h.observe_netns(netns="r")
    assert [link.name for link in view.links] == ["lo", "qr-1"]
    assert {r.dst for r in view.routes4} == {"192.168.0.0/16", "10.9.0.0/16"}
    h.remove_link("qr-1", netns="r")  # routes through it go with it
    assert set(st.routes) == {"192.168.0.0/16"} and not st.devices
    with pytest.raises(errors.CommandFailed):
        h.ip_batch([["addr", "replace", "10.0.0.1/24", "dev", "qr-1"]], netns="r")


def errors_line(line: int, cmd: str, error: str) -> object:
    from neutrino.system.iproute import BatchFailure

    return BatchFailure(line, tuple(cmd.split()), error)


def test_routes_and_addresses_one_by_one() -> None:
    h = FakeHost()
    h.ensure_netns("q")
    h.ip_batch([["link", "add", "t", "type", "veth", "peer", "name", "eth0", "netns", "q"]])
    h.ensure_address("eth0", "10.1.0.5/24", netns="q")
    h.ensure_route("default", via="10.1.0.1", netns="q")
    assert [str(a.address) for a in h.list_addresses(netns="q", dev="eth0")] == ["10.1.0.5/24"]
    assert [(r.dst, r.gateway) for r in h.list_routes(netns="q", family=4)] == [("default", "10.1.0.1")]
    assert h.list_routes(netns="q", family=6) == []
    h.remove_route("default", via="10.1.0.1", netns="q")
    h.remove_address("eth0", "10.1.0.5/24", netns="q")
    h.remove_address("eth0", "10.1.0.5/24", netns="q")  # already gone: no error raised
    assert not h.ns["q"].routes and not h.ns["q"].devices["eth0"].addrs
    h.set_sysctl("net.ipv4.ip_forward", 1, netns="q")
    assert h.ns["q"].sysctls == {"net.ipv4.ip_forward": "1"}
    h.disable_offloads("eth0", netns="q")
    assert h.ns["q"].devices["eth0"].offloads_off
    with pytest.raises(errors.DeviceNotFound):
        h.set_link("nope", netns="q", up=True)


def test_rulesets_conntrack_garps_and_faults() -> None:
    h = FakeHost()
    h.ensure_netns("r")
    h.iptables_restore("*nat\nCOMMIT\n", "r")
    assert h.iptables_save("r") == "*nat\nCOMMIT\n"
    h.conntrack_flush("r", dst="172.24.4.9")
    h.garp("qg-1", "172.24.4.9", "r")
    assert h.flushed == [("r", "172.24.4.9", None)] and h.garps == [("qg-1", "172.24.4.9", "r")]
    h.faults[("iptables-restore", "r")] = errors.IptablesError(["iptables-restore"], 1, "line 3 failed")
    with pytest.raises(errors.IptablesError):
        h.iptables_restore("*filter\nCOMMIT\n", "r")
    assert h.ns["r"].iptables == "*nat\nCOMMIT\n"  # a failed restore changes nothing
    h.faults.clear()
    h.fail_once.add("addr replace 10.0.0.1/24 dev x")
    assert (
        h.line(h.ns["r"], ["addr", "replace", "10.0.0.1/24", "dev", "x"])
        == "RTNETLINK answers: Operation not permitted"
    )
    assert h.line(h.ns["r"], ["addr", "replace", "10.0.0.1/24", "dev", "x"]) == 'Cannot find device "x"'


def test_processes_and_haproxy(tmp_path: Path) -> None:
    h = FakeHost()
    h.ensure_netns("qdhcp-n")
    spec = ProcessSpec(("dnsmasq", "--conf-file=x"), tmp_path / "pid", netns="qdhcp-n", uuid="n")
    assert not h.process_alive(spec) and h.process_argv(spec) is None and not h.process_reload(spec)
    h.process_start(spec)
    assert h.process_alive(spec) and h.process_argv(spec) == ["dnsmasq", "--conf-file=x"]
    assert h.process_reload(spec) and h.reloads == ["n"]
    h.process_stop(spec)
    assert not h.processes
    with pytest.raises(errors.NamespaceNotFound):
        h.process_start(ProcessSpec(("dnsmasq",), tmp_path / "pid", netns="gone", uuid="g"))
    proxy = ProcessSpec(("haproxy", "-f", "c"), tmp_path / "hp", netns="qdhcp-n", uuid="p")
    assert h.haproxy_ensure(proxy, tmp_path / "c", "conf") == "started"
    assert h.haproxy_ensure(proxy, tmp_path / "c", "conf") == "unchanged"
    assert h.haproxy_alive(proxy) and h.haproxy == {"p": "conf"}
    h.haproxy_stop(proxy)
    assert not h.haproxy_alive(proxy)
    done = h.run(["dhcp_release", "tap1", "10.0.0.5", "fa:16:3e:00:00:01"], netns="qdhcp-n", check=False)
    assert done.rc == 0 and h.commands == [(done.argv, "qdhcp-n")]


def test_ovs_ports_in_memory() -> None:
    h = FakeHost()
    h.ovs.transact([sysovs.AddPort("br-int", "tap1", tag=5, external_ids={"iface-id": "p1"})])
    port = h.ovs.observe().ports_on("br-int")[0]
    assert port.iface is not None
    assert (port.name, port.tag, port.iface.external_ids) == ("tap1", 5, {"iface-id": "p1"})
    h.ovs.transact([sysovs.DelPort("tap1", "br-int"), sysovs.DelPort("absent", "br-int")])
    assert h.ovs.ports == {}
    with pytest.raises(NotImplementedError):
        h.ovs.transact([sysovs.AddBridge("br-x")])
    h.faults[("ovs-vsctl", None)] = errors.OvsdbError(["ovs-vsctl"], 1, "transaction error")
    with pytest.raises(errors.OvsdbError):
        h.ovs.transact([sysovs.DelPort("tap1", "br-int")])


def test_the_real_interface_driver_plugs_and_unplugs_on_it() -> None:
    h = FakeHost()
    drv = InterfaceDriver(h, "br-int", veth=True)
    drv.plug("qr-1", "port-1", "fa:16:3e:00:00:01", 1450, "qrouter-r")
    dev = h.ns["qrouter-r"].devices["qr-1"]
    assert (dev.mac, dev.mtu, dev.up, dev.offloads_off) == ("fa:16:3e:00:00:01", 1450, True, True)
    assert h.root.devices["tap1"].up
    port = h.ovs.ports["tap1"]
    assert port.tag == DEAD_VLAN and port.iface.external_ids["iface-id"] == "port-1"
    drv.set_addresses("qr-1", "qrouter-r", ["10.0.0.1/24"])
    assert dev.addrs == {"10.0.0.1/24"}
    drv.unplug("qr-1", "qrouter-r")
    assert "tap1" not in h.ovs.ports and "qr-1" not in h.ns["qrouter-r"].devices
    # many at once: one transaction, one batch; a port whose namespace is missing is returned
    h.ensure_netns("qrouter-s")
    ports = [
        NewPort("qr-2", "port-2", "fa:16:3e:00:00:02", 1500, "qrouter-s"),
        NewPort("qr-3", "port-3", "fa:16:3e:00:00:03", 1500, "qrouter-gone"),
    ]
    h.calls.clear()
    assert drv.create_all(ports) == [ports[1]]
    assert [w for w, _ in h.calls if w in ("ovs-vsctl", "ip -batch")] == ["ovs-vsctl", "ip -batch"]
    assert "qr-2" in h.ns["qrouter-s"].devices and h.root.devices["tap2"].up
