"""Issue 13, finding 3: the DHCP agent fails closed per network and never writes a
value dnsmasq would read as more than one (a newline, comma, blank or NUL in a
hosts or opts field).

* views (``model``): a port that cannot be rendered is left out and reported;
  a bad subnet or this host's bad DHCP port holds the network;
* renderers: a line with such a field is not written, and ``skipped`` says so
  (checked on views built by hand, past the model's checks);
* planner: a held network, or one whose planning fails, gets no op (not even
  a teardown) while the others are planned;
* executor: a failing API call or host op ends only its network's ops, and
  ``configurations()["reconcile_error"]`` names the network.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from neutrino.agents import parallel
from neutrino.agents.dhcp import render
from neutrino.agents.dhcp.agent import DhcpDriver
from neutrino.agents.dhcp.model import (
    DhcpConfig,
    DnsName,
    ExtraDhcpOpt,
    FixedIp,
    HostRoute,
    NetworkView,
    PortView,
    SubnetView,
    dhcp_device_id,
    namespace_name,
    network_views,
)
from neutrino.agents.dhcp.planner import ObservedDhcp, Teardown, desired_files, plan
from neutrino.agents.interface import InterfaceDriver
from neutrino.fakes.host import FakeHost
from neutrino.feed.state import State
from tests.unit.test_dhcp_planner import HOST, NET, NET2, S4, VM2_PORT, VM_PORT, World, routed_world

BAD_IPS = ["10.0.0.7%eth0", "fe80::7%a\nb", "10.0.0.7\n", "10.0.0.7,set:x", "10.0.0.7 ", "10.0.0.7\x00"]


def _two_networks() -> World:
    w = routed_world()
    w.add_network(NET2)
    w.add_subnet("s-two", "10.1.0.0/24", "10.1.0.1", nid=NET2)
    w.add_port(VM2_PORT, "fa:16:3e:44:55:66", [("s-two", "10.1.0.5")], nid=NET2)
    return w


# --- views -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_IPS)
def test_a_port_with_a_bad_address_is_left_out_and_reported(bad: str) -> None:
    w = routed_world()
    w.add_port(VM2_PORT, "fa:16:3e:44:55:66", [(S4, bad)])
    view = w.desired()[NET]
    assert not view.held and VM2_PORT not in {p.id for p in view.ports} and VM_PORT in {p.id for p in view.ports}
    assert any(VM2_PORT in p and "fixed IP" in p for p in view.problems)


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("gateway_ip", "10.0.0.1%eth0"),
        ("gateway_ip", "10.0.0.1\noption:x"),
        ("dns_nameservers", ["8.8.8.8,8.8.4.4"]),
        ("dns_nameservers", ["8.8.8.8 "]),
        ("host_routes", [{"destination": "10.9.0.0/24", "nexthop": "10.0.0.9\n"}]),
        ("host_routes", [{"destination": "10.9.0.0/24%x", "nexthop": "10.0.0.9"}]),
        ("cidr", "10.0.0.0/24\n"),
    ],
)
def test_a_subnet_with_a_bad_value_holds_only_its_network(attr: str, value: Any) -> None:
    w = _two_networks()
    w.subnets[S4][attr] = value
    views = w.desired()
    assert views[NET].held and any("subnet" in p for p in views[NET].problems)
    assert not views[NET2].held and not views[NET2].problems


def test_this_hosts_bad_dhcp_port_holds_the_network_another_hosts_does_not() -> None:
    w = routed_world()
    w.add_port(
        "dhcp-other",
        "fa:16:3e:aa:aa:01",
        [(S4, "10.0.0.3%x")],
        owner="network:dhcp",
        device_id=dhcp_device_id("other-host", NET),
    )
    view = network_views(w.networks, w.subnets, w.ports, HOST)[NET]
    assert not view.held and "dhcp-other" not in {p.id for p in view.ports}
    assert network_views(w.networks, w.subnets, w.ports)[NET].held  # no host given: any DHCP port
    w.add_port(
        "dhcp-mine",
        "fa:16:3e:aa:aa:02",
        [(S4, "10.0.0.2\n")],
        owner="network:dhcp",
        device_id=dhcp_device_id(HOST, NET),
    )
    assert network_views(w.networks, w.subnets, w.ports, HOST)[NET].held


# --- renderers --------------------------------------------------------------------------------------
def _hand_built_view() -> NetworkView:
    """A view nobody checked: every renderable field of one port and one subnet is hostile."""
    sub = SubnetView(
        S4,
        "10.0.0.0/24",
        4,
        gateway_ip="10.0.0.1",
        dns_nameservers=("8.8.8.8,option:x",),
        host_routes=(HostRoute("10.9.0.0/24", "10.0.0.9\nfoo"),),
    )
    good = PortView(VM_PORT, "fa:16:3e:11:22:33", fixed_ips=(FixedIp(S4, "10.0.0.5"),))
    bad_ip = PortView("p-ip", "fa:16:3e:11:22:34", fixed_ips=(FixedIp(S4, "10.0.0.6\nfa:16:3e:00:00:01,h,10.0.0.1"),))
    bad_name = PortView(
        "p-name",
        "fa:16:3e:11:22:35",
        fixed_ips=(FixedIp(S4, "10.0.0.7"),),
        dns_assignment=(DnsName("10.0.0.7", "a,b", "a,b.example"),),
    )
    bad_opts = PortView(
        "p-opts",
        "fa:16:3e:11:22:36",
        fixed_ips=(FixedIp(S4, "10.0.0.8"),),
        extra_dhcp_opts=(
            ExtraDhcpOpt("client-id", "x,set:evil"),
            ExtraDhcpOpt("tftp-server", "10.0.0.9\ndhcp-option=6,6.6.6.6"),
        ),
    )
    dhcp = PortView(
        "dhcp-port",
        "fa:16:3e:aa:aa:aa",
        "network:dhcp",
        dhcp_device_id(HOST, NET),
        fixed_ips=(FixedIp(S4, "10.0.0.2"),),
    )
    return NetworkView(NET, 1450, True, (sub,), (good, bad_ip, bad_name, bad_opts, dhcp))


def test_renderers_never_write_a_field_that_reads_as_two_and_say_what_they_skipped() -> None:
    cfg = DhcpConfig(HOST)
    net = _hand_built_view()
    skipped: list[str] = []
    files = desired_files(cfg, net, net.dhcp_port(HOST), skipped)
    files["leases"] = render.leases_file(cfg, net, "", skipped)
    argv = render.dnsmasq_argv(cfg, net, skipped=skipped)
    for name, text in files.items():
        for line in text.splitlines():
            assert not any(bad in line for bad in ("set:evil", "6.6.6.6", "foo", "option:x", "a,b", "10.0.0.6")), (
                name,
                line,
            )
    assert "fa:16:3e:11:22:33,host-10-0-0-5.openstacklocal,10.0.0.5" in files["host"].splitlines()
    assert "10.0.0.5\thost-10-0-0-5.openstacklocal host-10-0-0-5" in files["addn_hosts"].splitlines()
    assert not any("\n" in a or "\x00" in a for a in argv)
    whats = " ".join(skipped)
    for who in ("port p-ip", "port p-name", "port p-opts", f"subnet {S4}"):
        assert who in whats, (who, skipped)


# --- planner ---------------------------------------------------------------------------------------
def test_a_held_network_gets_no_op_not_even_a_teardown_and_the_others_are_planned() -> None:
    w = _two_networks()
    w.converge()
    assert set(w.host) == {NET, NET2}
    w.subnets[S4]["gateway_ip"] = "10.0.0.1%a\nb"
    w.add_port("late", "fa:16:3e:44:55:77", [("s-two", "10.1.0.6")], nid=NET2)
    problems: dict[str, list[str]] = {}
    ops = plan(w.cfg, w.desired(), w.host, problems)
    assert ops and {op.network_id for op in ops} == {NET2}
    assert not any(isinstance(op, Teardown) for op in ops)
    assert list(problems) == [NET] and "gateway_ip" in problems[NET][0]


def test_a_network_whose_planning_fails_is_left_alone() -> None:
    w = _two_networks()
    views = dict(w.desired())
    # A view the model would have held, handed to the planner directly: planning it raises.
    sub = SubnetView("s-x", "not-a-cidr", 4)
    dhcp = PortView(
        "dhcp-port",
        "fa:16:3e:aa:aa:aa",
        "network:dhcp",
        dhcp_device_id(HOST, NET),
        fixed_ips=(FixedIp("s-x", "10.0.0.2"),),
    )
    views[NET] = NetworkView(NET, 1450, True, (sub,), (dhcp,))
    problems: dict[str, list[str]] = {}
    ops = plan(w.cfg, views, {NET: ObservedDhcp(namespace=True)}, problems)
    assert {op.network_id for op in ops} == {NET2}
    assert "not planned" in problems[NET][0]


# --- executor --------------------------------------------------------------------------------------
def test_apply_grouped_stops_a_failing_namespace_only_and_says_why() -> None:
    done: list[tuple[str, int]] = []

    def apply(op: tuple[str, int]) -> None:
        if op == ("a", 2):
            raise RuntimeError("boom")
        done.append(op)

    failed = parallel.apply_grouped(
        [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)],
        key=lambda op: op[0],
        apply=apply,
        is_teardown=lambda op: False,
        creates_namespace=lambda op: False,
        netns_dir_mounted=lambda: True,
        what="network",
    )
    assert sorted(done) == [("a", 1), ("b", 1), ("b", 2)]
    assert list(failed) == ["a"] and "boom" in failed["a"]


class _Client:
    """The agent's API client: the DHCP port of ``bad`` cannot be made."""

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.calls: list[tuple[str, str]] = []

    async def api(self, method: str, url: str, body: Any, ok: Any = None) -> Any:
        self.calls.append((method, url))
        if body and body.get("port", {}).get("network_id") == self.bad:
            raise RuntimeError("409 IpAddressGenerationFailure")
        return {}


def test_the_driver_keeps_serving_other_networks_and_reports_the_failing_one(tmp_path: Any) -> None:
    net_a, net_b, net_c = (f"{c * 8}-0000-4000-8000-000000000000" for c in "abc")
    cfg = DhcpConfig(HOST, state_dir=str(tmp_path))
    host = FakeHost()
    # net_c's namespace cannot be set up (its EnsureNamespace fails on the host).
    host.faults[("sysctl", namespace_name(net_c))] = RuntimeError("sysctl in the new namespace failed")
    drv = DhcpDriver(cfg, InterfaceDriver(host, "br-int"), metadata=None, host=host)
    drv.client = _Client(net_a)
    nets = {n: {"id": n, "mtu": 1450, "admin_state_up": True, "subnets": [f"s-{n[0]}"]} for n in (net_a, net_b, net_c)}
    subnets = {
        f"s-{n[0]}": {
            "id": f"s-{n[0]}",
            "network_id": n,
            "cidr": f"10.{i}.0.0/24",
            "ip_version": 4,
            "gateway_ip": None,
            "enable_dhcp": True,
        }
        for i, n in enumerate((net_a, net_b, net_c))
    }
    ports = {
        f"d-{n[0]}": {
            "id": f"d-{n[0]}",
            "network_id": n,
            "mac_address": f"fa:16:3e:00:00:0{i}",
            "device_owner": "network:dhcp",
            "device_id": dhcp_device_id(HOST, n),
            "fixed_ips": [{"subnet_id": f"s-{n[0]}", "ip_address": f"10.{i}.0.2"}],
        }
        for i, n in enumerate((net_b, net_c), start=1)
    }
    bindings = {n: {"network_id": n, "hosts": [HOST]} for n in nets}
    state = State(
        1,
        {"network": nets, "subnet": subnets, "port": ports, "dhcp_binding": bindings},
        frozenset({"network", "subnet", "port", "dhcp_binding"}),
    )
    asyncio.run(drv.reconcile(state, True))
    # What each network's namespace saw on the host: (command, namespace) of every process.
    seen = {n: [what for what, ns in host.calls if ns == namespace_name(n)] for n in (net_a, net_b, net_c)}
    assert seen[net_a] == ["sysctl"]  # its EnsureNamespace; then its DHCP port could not be made
    assert seen[net_c] == ["sysctl"]  # its first op failed: nothing after it
    assert "dnsmasq" in seen[net_b]  # served whatever happened to the others
    assert [argv[0] for argv in host.processes.values()] == ["dnsmasq"]
    assert not host.ns[namespace_name(net_a)].devices and not host.ns[namespace_name(net_c)].devices
    report = drv.configurations()["reconcile_error"]
    assert f"network {net_a}: EnsureDhcpPort failed: 409" in report
    assert f"network {net_c}: EnsureNamespace failed: sysctl in the new namespace failed" in report
    assert net_b not in report
