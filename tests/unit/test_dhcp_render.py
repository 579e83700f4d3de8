"""DHCP agent renderers: golden files per network state, plus targeted rules.

Each golden case builds a network from API-shaped dicts (as the feed
delivers them), renders argv/host/addn_hosts/opts/leases/addresses and
compares them with ``tests/golden/dhcp/<case>/``.  Regenerate with
``NEUTRINO_UPDATE_GOLDEN=1 pytest tests/unit/test_dhcp_render.py`` and review
the diff by eye.  When ``dnsmasq`` is installed, its own parser checks the
rendered command line and the host/opts lines (``dnsmasq --test`` only parses
the command line and conf files, so each hosts/opts line is fed to it as a
``dhcp-host=``/``dhcp-option=`` conf line: the same syntax).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neutrino.agents.dhcp import render
from neutrino.agents.dhcp.model import (
    DhcpConfig,
    NetworkView,
    dhcp_device_id,
    namespace_name,
    network_view,
    network_views,
    tap_name,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "dhcp"
HOST = "net1"
NET = "5b0c7c1e-8d3a-4e0f-9c1b-2a3d4e5f6a7b"
S4 = "6a1f2e3d-4c5b-4a69-8877-665544332211"
S4B = "7b2e3f4a-5d6c-4b7a-9988-776655443322"
S6 = "8c3f4a5b-6e7d-4c8b-aa99-887766554433"
S6SLAAC = "9d4a5b6c-7f8e-4d9c-bbaa-998877665544"
DHCP_PORT = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
DHCP_PORT2 = "abababab-abab-4bab-8bab-abababababab"
ROUTER_PORT = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
VM_PORT = "4f2a1b3c-9d8e-4a5b-8c7d-0123456789ab"
VM2_PORT = "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"
VM3_PORT = "6f7a8b9c-2d3e-4f4a-8b1c-2d3e4f5a6b7c"


# --- API-shaped builders ------------------------------------------------------------------
def api_network(subnets: list[str], mtu: int = 1450, **kw: Any) -> dict[str, Any]:
    return {"id": NET, "name": "net", "mtu": mtu, "admin_state_up": True, "subnets": subnets, "status": "ACTIVE", **kw}


def api_subnet(sid: str, cidr: str, gateway: str | None, **kw: Any) -> dict[str, Any]:
    d = {
        "id": sid,
        "network_id": NET,
        "cidr": cidr,
        "ip_version": 6 if ":" in cidr else 4,
        "gateway_ip": gateway,
        "enable_dhcp": True,
        "dns_nameservers": [],
        "host_routes": [],
        "ipv6_address_mode": None,
        "ipv6_ra_mode": None,
        "segment_id": None,
        "allocation_pools": [],
    }
    d.update(kw)
    return d


def api_port(
    pid: str,
    mac: str,
    ips: list[tuple[str, str]],
    owner: str = "compute:nova",
    device_id: str = "",
    dns_name: str = "",
    **kw: Any,
) -> dict[str, Any]:
    """A port dict as PortService renders it (dns_assignment included)."""
    fixed = [{"subnet_id": s, "ip_address": ip} for s, ip in ips]
    dns = []
    for _, ip in ips:
        host = dns_name or "host-" + ip.replace(".", "-").replace(":", "-")
        dns.append({"ip_address": ip, "hostname": host, "fqdn": f"{host}.openstacklocal."})
    d = {
        "id": pid,
        "network_id": NET,
        "mac_address": mac,
        "device_owner": owner,
        "device_id": device_id,
        "fixed_ips": fixed,
        "extra_dhcp_opts": [],
        "dns_assignment": dns,
        "dns_name": dns_name,
        "admin_state_up": True,
        "status": "ACTIVE",
    }
    d.update(kw)
    return d


def dhcp_port(
    ips: list[tuple[str, str]], pid: str = DHCP_PORT, host: str = HOST, mac: str = "fa:16:3e:aa:aa:aa"
) -> dict[str, Any]:
    return api_port(pid, mac, ips, owner="network:dhcp", device_id=dhcp_device_id(host, NET))


def router_port(ips: list[tuple[str, str]], mac: str = "fa:16:3e:bb:bb:bb") -> dict[str, Any]:
    return api_port(ROUTER_PORT, mac, ips, owner="network:router_interface", device_id="router-r")


def vm_port(
    ips: list[tuple[str, str]], pid: str = VM_PORT, mac: str = "fa:16:3e:11:22:33", **kw: Any
) -> dict[str, Any]:
    return api_port(pid, mac, ips, device_id="server-1", **kw)


# --- golden cases ------------------------------------------------------------------------
Case = tuple[DhcpConfig, NetworkView]


def _view(
    network: dict[str, Any], subs: list[dict[str, Any]], ports: list[dict[str, Any]], reverse: bool
) -> NetworkView:
    """The view; ``reverse`` feeds subnets and ports in the opposite order (feed order varies)."""
    if reverse:
        subs, ports = subs[::-1], ports[::-1]
    return network_view(network, subs, ports)


def router_attached(reverse: bool = False) -> Case:
    """The reference's worked example (qdhcp-N on net1): routed subnet, DNS 8.8.8.8."""
    subs = [api_subnet(S4, "10.0.0.0/24", "10.0.0.1", dns_nameservers=["8.8.8.8"])]
    ports = [dhcp_port([(S4, "10.0.0.2")]), router_port([(S4, "10.0.0.1")]), vm_port([(S4, "10.0.0.5")])]
    return DhcpConfig(HOST), _view(api_network([S4]), subs, ports, reverse)


def isolated_metadata(reverse: bool = False) -> Case:
    """No router on the subnet, enable_isolated_metadata: metadata route via the DHCP port."""
    subs = [api_subnet(S4, "10.0.0.0/24", "10.0.0.1")]
    ports = [dhcp_port([(S4, "10.0.0.2")]), vm_port([(S4, "10.0.0.5")])]
    cfg = DhcpConfig(HOST, enable_isolated_metadata=True)
    return cfg, _view(api_network([S4]), subs, ports, reverse)


def dns_host_routes(reverse: bool = False) -> Case:
    """Two IPv4 subnets on one segment: DNS servers, host routes, 0.0.0.0 DNS, default host route."""
    subs = [
        api_subnet(
            S4,
            "10.0.0.0/24",
            "10.0.0.1",
            dns_nameservers=["8.8.8.8", "8.8.4.4"],
            host_routes=[
                {"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"},
                {"destination": "0.0.0.0/0", "nexthop": "10.0.0.253"},
            ],
        ),
        api_subnet(
            S4B,
            "10.1.0.0/24",
            None,
            dns_nameservers=["0.0.0.0"],
            host_routes=[{"destination": "0.0.0.0/0", "nexthop": "10.1.0.254"}],
        ),
    ]
    ports = [
        dhcp_port([(S4, "10.0.0.2"), (S4B, "10.1.0.2")]),
        router_port([(S4, "10.0.0.1")]),
        vm_port([(S4, "10.0.0.5"), (S4B, "10.1.0.5")]),
    ]
    cfg = DhcpConfig(
        HOST,
        dnsmasq_dns_servers=("1.1.1.1", "9.9.9.9"),
        dhcp_renewal_time=43200,
        dhcp_rebinding_time=75600,
        dhcp_lease_duration=3600,
    )
    return cfg, _view(api_network([S4, S4B], mtu=1500), subs, ports, reverse)


def no_gateway(reverse: bool = False) -> Case:
    """Subnet without gateway, two DHCP agents: empty router option, both DHCP IPs as DNS."""
    subs = [api_subnet(S4, "192.168.10.0/24", None)]
    ports = [
        dhcp_port([(S4, "192.168.10.2")]),
        dhcp_port([(S4, "192.168.10.3")], pid=DHCP_PORT2, host="net2", mac="fa:16:3e:ab:ab:ab"),
        vm_port([(S4, "192.168.10.7")]),
    ]
    return DhcpConfig(HOST), _view(api_network([S4]), subs, ports, reverse)


def ipv6(reverse: bool = False) -> Case:
    """DHCPv6-stateful + SLAAC subnets (force_metadata), a port with an IPv6 extra option."""
    subs = [
        api_subnet(
            S6,
            "2001:db8:1::/64",
            "2001:db8:1::1",
            ipv6_address_mode="dhcpv6-stateful",
            ipv6_ra_mode="dhcpv6-stateful",
            dns_nameservers=["2001:4860:4860::8888"],
        ),
        api_subnet(S6SLAAC, "2001:db8:2::/64", "2001:db8:2::1", ipv6_address_mode="slaac", ipv6_ra_mode="slaac"),
    ]
    ports = [
        dhcp_port([(S6, "2001:db8:1::2"), (S6SLAAC, "2001:db8:2::f816:3eff:feaa:aaaa")]),
        router_port([(S6, "2001:db8:1::1"), (S6SLAAC, "2001:db8:2::1")]),
        vm_port([(S6, "2001:db8:1::5"), (S6SLAAC, "2001:db8:2::f816:3eff:fe11:2233")]),
        vm_port(
            [(S6, "2001:db8:1::6"), (S6SLAAC, "2001:db8:2::f816:3eff:fe44:5566")],
            pid=VM2_PORT,
            mac="fa:16:3e:44:55:66",
            extra_dhcp_opts=[
                {"opt_name": "bootfile-url", "ip_version": 6, "opt_value": "tftp://[2001:db8:1::9]/boot.ipxe"}
            ],
        ),
    ]
    cfg = DhcpConfig(HOST, force_metadata=True)
    return cfg, _view(api_network([S6, S6SLAAC]), subs, ports, reverse)


def extra_dhcp_opts(reverse: bool = False) -> Case:
    """PXE options (named, numeric), client-id alone and with options, an unset value."""
    subs = [api_subnet(S4, "10.0.0.0/24", "10.0.0.1")]
    ports = [
        dhcp_port([(S4, "10.0.0.2")]),
        router_port([(S4, "10.0.0.1")]),
        vm_port(
            [(S4, "10.0.0.5")],
            dns_name="pxe-client",
            extra_dhcp_opts=[
                {"opt_name": "tftp-server", "opt_value": "10.0.0.9", "ip_version": 4},
                {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
                {"opt_name": "150", "opt_value": "10.0.0.9", "ip_version": 4},
                {"opt_name": "client-id", "opt_value": "01:fa:16:3e:11:22:33", "ip_version": 4},
                {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": 6},
            ],
        ),
        vm_port(
            [(S4, "10.0.0.6")],
            pid=VM2_PORT,
            mac="fa:16:3e:44:55:66",
            extra_dhcp_opts=[{"opt_name": "client-id", "opt_value": "ff:00:00:00:01", "ip_version": 4}],
        ),
        vm_port(
            [(S4, "10.0.0.7")],
            pid=VM3_PORT,
            mac="fa:16:3e:77:88:99",
            extra_dhcp_opts=[
                {"opt_name": "ntp-server", "opt_value": None, "ip_version": 4},
                {"opt_name": "domain-name", "opt_value": "pxe.example.org"},
            ],
        ),
    ]
    return DhcpConfig(HOST), _view(api_network([S4]), subs, ports, reverse)


CASES: dict[str, Callable[[], Case]] = {
    "router_attached": router_attached,
    "isolated_metadata": isolated_metadata,
    "dns_host_routes": dns_host_routes,
    "no_gateway": no_gateway,
    "ipv6": ipv6,
    "extra_dhcp_opts": extra_dhcp_opts,
}


def rendered(cfg: DhcpConfig, net: NetworkView) -> dict[str, str]:
    port = net.dhcp_port(cfg.host)
    assert port is not None
    argv = render.dnsmasq_argv(cfg, net, port)
    addrs = render.interface_addresses(cfg, net, port)
    routes = render.default_route(net)
    return {
        "argv": "".join(a + "\n" for a in argv),
        "host": render.hosts_file(cfg, net),
        "addn_hosts": render.addn_hosts_file(cfg, net),
        "opts": render.opts_file(cfg, net),
        "leases": render.leases_file(cfg, net),
        "addresses": "".join(f"{a}\n" for a in addrs) + "".join(f"default via {r}\n" for r in routes),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    got = rendered(*CASES[case]())
    folder = GOLDEN / case
    if os.environ.get("NEUTRINO_UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in got.items():
            (folder / name).write_text(text)
    for name, text in got.items():
        assert (folder / name).read_text() == text, f"{case}/{name}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_does_not_depend_on_feed_order(case: str) -> None:
    assert rendered(*CASES[case]()) == rendered(*CASES[case](reverse=True))


# --- the worked example, literally -------------------------------------------------------
def test_worked_example_matches_reference_text() -> None:
    cfg, net = router_attached()
    d = f"/var/lib/neutron/dhcp/{NET}"
    assert render.dnsmasq_argv(cfg, net) == [
        "dnsmasq",
        "--no-hosts",
        "--no-resolv",
        f"--pid-file={d}/pid",
        f"--dhcp-hostsfile={d}/host",
        f"--addn-hosts={d}/addn_hosts",
        f"--dhcp-optsfile={d}/opts",
        f"--dhcp-leasefile={d}/leases",
        "--dhcp-match=set:ipxe,175",
        "--dhcp-userclass=set:ipxe6,iPXE",
        "--local-service",
        "--bind-dynamic",
        f"--dhcp-range=set:subnet-{S4},10.0.0.0,static,255.255.255.0,86400s",
        "--dhcp-option-force=option:mtu,1450",
        "--dhcp-lease-max=256",
        "--conf-file=/dev/null",
        "--domain=openstacklocal",
    ]
    assert render.hosts_file(cfg, net) == (
        "fa:16:3e:bb:bb:bb,host-10-0-0-1.openstacklocal,10.0.0.1\n"
        "fa:16:3e:11:22:33,host-10-0-0-5.openstacklocal,10.0.0.5\n"
    )
    assert render.addn_hosts_file(cfg, net) == (
        "10.0.0.1\thost-10-0-0-1.openstacklocal host-10-0-0-1\n10.0.0.5\thost-10-0-0-5.openstacklocal host-10-0-0-5\n"
    )
    assert render.opts_file(cfg, net) == (
        f"tag:subnet-{S4},option:dns-server,8.8.8.8\n"
        f"tag:subnet-{S4},option:classless-static-route,169.254.169.254/32,10.0.0.1,0.0.0.0/0,10.0.0.1\n"
        f"tag:subnet-{S4},249,169.254.169.254/32,10.0.0.1,0.0.0.0/0,10.0.0.1\n"
        f"tag:subnet-{S4},option:router,10.0.0.1"
    )
    assert render.leases_file(cfg, net) == ("0 fa:16:3e:bb:bb:bb 10.0.0.1 * *\n0 fa:16:3e:11:22:33 10.0.0.5 * *\n")
    port = net.dhcp_port(HOST)
    assert port is not None and tap_name(port.id) == "tapaaaaaaaa-aa"
    assert render.interface_addresses(cfg, net, port) == ("10.0.0.2/24",)
    assert render.default_route(net) == ("10.0.0.1",)
    assert namespace_name(NET) == f"qdhcp-{NET}"


# --- model -------------------------------------------------------------------------------
def test_dhcp_device_id_hashes_the_short_host_name() -> None:
    assert dhcp_device_id("net1", NET) == dhcp_device_id("net1.example.org", NET)
    assert dhcp_device_id("net1", NET).startswith("dhcp")
    assert dhcp_device_id("net1", NET).endswith(f"-{NET}")
    assert dhcp_device_id("net1", NET) != dhcp_device_id("net2", NET)


def test_isolation_is_about_a_router_port_holding_the_gateway() -> None:
    cfg, net = router_attached()
    assert not net.subnets[0].isolated
    _, iso = isolated_metadata()
    assert iso.subnets[0].isolated
    # A router port with another IP on the subnet does not route it.
    subs = [api_subnet(S4, "10.0.0.0/24", "10.0.0.1")]
    other = network_view(api_network([S4]), subs, [router_port([(S4, "10.0.0.99")])])
    assert other.subnets[0].isolated
    # No gateway: always isolated.
    _, nogw = no_gateway()
    assert nogw.subnets[0].isolated
    # IPv6 gateway written differently still matches.
    subs6 = [api_subnet(S6, "2001:db8:1::/64", "2001:db8:1:0::1")]
    v6 = network_view(api_network([S6]), subs6, [router_port([(S6, "2001:db8:1::1")])])
    assert not v6.subnets[0].isolated


def test_network_view_keeps_only_its_own_resources_in_a_stable_order() -> None:
    subs = {
        S4B: api_subnet(S4B, "10.1.0.0/24", None),
        S4: api_subnet(S4, "10.0.0.0/24", None),
        "x": dict(api_subnet("x", "10.9.0.0/24", None), network_id="other"),
    }
    ports = [
        vm_port([(S4, "10.0.0.5")]),
        router_port([(S4, "10.0.0.1")]),
        dict(vm_port([]), id="zz", network_id="other"),
    ]
    net = network_view(api_network([S4, S4B]), subs, ports)
    assert [s.id for s in net.subnets] == [S4, S4B]  # the network's subnets order
    assert [p.id for p in net.ports] == [ROUTER_PORT, VM_PORT]  # by address
    views = network_views({NET: api_network([S4, S4B])}, subs, ports)
    assert views[NET] == net


# --- targeted rules ----------------------------------------------------------------------
def test_no_resolv_and_resolver_options() -> None:
    _, net = router_attached()
    local = render.dnsmasq_argv(DhcpConfig(HOST, dnsmasq_local_resolv=True), net)
    assert "--no-resolv" not in local and "" not in local
    servers = render.dnsmasq_argv(DhcpConfig(HOST, dnsmasq_local_resolv=True, dnsmasq_dns_servers=("1.1.1.1",)), net)
    assert "--no-resolv" in servers and "--server=1.1.1.1" in servers
    assert "--domain=openstacklocal" not in render.dnsmasq_argv(DhcpConfig(HOST, dns_domain=""), net)


def test_optional_command_line_flags() -> None:
    _, net = router_attached()
    cfg = DhcpConfig(
        HOST,
        dhcp_lease_duration=-1,
        dnsmasq_config_file="/etc/neutron/dnsmasq.conf",
        dhcp_broadcast_reply=True,
        dnsmasq_txt_record="v=1",
        dnsmasq_base_log_dir="/var/log/dnsmasq",
        interface_bridged=False,
    )
    argv = render.dnsmasq_argv(cfg, net, net.dhcp_port(HOST), conf_dir="/tmp/x")
    assert f"--dhcp-range=set:subnet-{S4},10.0.0.0,static,255.255.255.0,infinite" in argv
    assert "--conf-file=/etc/neutron/dnsmasq.conf" in argv
    assert argv[-4:] == [
        "--dhcp-broadcast",
        "--log-queries",
        "--log-dhcp",
        f"--log-facility=/var/log/dnsmasq/{NET}/dhcp_dns_log",
    ]
    assert "--txt-record=v=1" in argv and "--pid-file=/tmp/x/pid" in argv
    assert argv[argv.index("--bind-dynamic") + 1] == "--bridge-interface=tapaaaaaaaa-aa,tap*"
    zero_mtu = NetworkView(net.id, 0, True, net.subnets, net.ports)
    assert not any("option:mtu" in a for a in render.dnsmasq_argv(DhcpConfig(HOST), zero_mtu))


def test_ipv6_ranges_skip_slaac_and_short_prefixes_and_cap_lease_max() -> None:
    cfg, net = ipv6()
    assert render.dhcp_ranges(cfg, net) == [f"set:subnet-{S6},2001:db8:1::,static,64,86400s"]
    assert render.lease_max(cfg, net) == 2**24
    subs = [
        api_subnet(S6, "2001:db8::/56", None, ipv6_address_mode="dhcpv6-stateful"),
        api_subnet(S4, "10.0.0.0/28", None),
    ]
    short = network_view(api_network([S6, S4]), subs, [])
    assert render.dhcp_ranges(cfg, short) == [f"set:subnet-{S4},10.0.0.0,static,255.255.255.240,86400s"]
    assert render.lease_max(cfg, short) == 16


def test_stateless_dhcpv6_gets_a_range_and_options_but_no_addresses() -> None:
    subs = [
        api_subnet(
            S6,
            "2001:db8:1::/64",
            "2001:db8:1::1",
            ipv6_address_mode="dhcpv6-stateless",
            ipv6_ra_mode="dhcpv6-stateless",
        )
    ]
    ports = [
        vm_port(
            [(S6, "2001:db8:1::f816:3eff:fe11:2233")],
            extra_dhcp_opts=[{"opt_name": "ntp-server", "opt_value": "[2001:db8::123]", "ip_version": 6}],
        )
    ]
    cfg = DhcpConfig(HOST)
    net = network_view(api_network([S6]), subs, ports)
    assert render.dhcp_ranges(cfg, net) == [f"set:subnet-{S6},2001:db8:1::,static,64,86400s"]
    assert render.hosts_file(cfg, net) == f"fa:16:3e:11:22:33,set:port-{VM_PORT}\n"
    assert render.opts_file(cfg, net) == (
        f"tag:subnet-{S6},option6:domain-search,openstacklocal\ntag:port-{VM_PORT},option6:ntp-server,[2001:db8::123]"
    )
    assert render.leases_file(cfg, net) == ""


def test_metadata_route_nexthop_rules() -> None:
    _, routed = router_attached()
    _, iso = isolated_metadata()
    tag = f"tag:subnet-{S4}"
    # force_metadata: DHCP port even on a routed subnet.
    forced = render.opts_file(DhcpConfig(HOST, force_metadata=True), routed)
    assert f"{tag},249,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1" in forced
    # Isolated without enable_isolated_metadata: no route at all, so no 121/249.
    plain = render.opts_file(DhcpConfig(HOST), iso)
    assert plain == f"{tag},option:router,10.0.0.1"
    # An OVN metadata port wins.
    ovn = NetworkView(
        iso.id,
        iso.mtu,
        True,
        iso.subnets,
        iso.ports
        + network_view(
            api_network([S4]),
            [api_subnet(S4, "10.0.0.0/24", "10.0.0.1")],
            [
                api_port(
                    "ovnmeta",
                    "fa:16:3e:00:00:01",
                    [(S4, "10.0.0.3")],
                    owner="network:distributed",
                    device_id=f"ovnmeta-{NET}",
                )
            ],
        ).ports,
    )
    assert f"{tag},249,169.254.169.254/32,10.0.0.3,0.0.0.0/0,10.0.0.1" in render.opts_file(
        DhcpConfig(HOST, enable_isolated_metadata=True), ovn
    )
    assert not render.wants_metadata_proxy(DhcpConfig(HOST, force_metadata=True), ovn)
    # A host route to the metadata IP is kept as given.
    subs = [
        api_subnet(
            S4, "10.0.0.0/24", "10.0.0.1", host_routes=[{"destination": "169.254.169.254/32", "nexthop": "10.0.0.50"}]
        )
    ]
    own = network_view(api_network([S4]), subs, [router_port([(S4, "10.0.0.1")])])
    assert render.opts_file(DhcpConfig(HOST), own).count("169.254.169.254/32") == 2


def test_metadata_addresses_and_proxy() -> None:
    cfg, iso = isolated_metadata()
    port = iso.dhcp_port(HOST)
    assert port is not None
    assert render.interface_addresses(cfg, iso, port) == ("10.0.0.2/24", "169.254.169.254/32")
    assert render.wants_metadata_proxy(cfg, iso)
    _, routed = router_attached()
    # The address comes with the option, regardless of isolation; the proxy does not.
    assert render.interface_addresses(cfg, routed, port)[-1] == "169.254.169.254/32"
    assert not render.wants_metadata_proxy(cfg, routed)
    assert render.wants_metadata_proxy(DhcpConfig(HOST, force_metadata=True), routed)
    assert not render.wants_metadata_proxy(DhcpConfig(HOST), iso)


def test_leases_bootstrap_keeps_ipv6_leases_and_duid() -> None:
    cfg, net = router_attached()
    existing = (
        "1700000000 fa:16:3e:11:22:33 10.0.0.5 host-10-0-0-5 *\n"
        "duid 00:01:00:01:2c:5e:3a:1b:fa:16:3e:aa:aa:aa\n"
        "1700000000 1122867 2001:db8::5 host-2001-db8--5 00:04:aa\n"
    )
    assert render.leases_file(cfg, net, existing) == (
        "0 fa:16:3e:bb:bb:bb 10.0.0.1 * *\n0 fa:16:3e:11:22:33 10.0.0.5 * *\n"
        "duid 00:01:00:01:2c:5e:3a:1b:fa:16:3e:aa:aa:aa\n"
        "1700000000 1122867 2001:db8::5 host-2001-db8--5 00:04:aa\n"
    )


def test_hosts_exclude_dhcp_floatingip_and_ha_ports_and_non_dhcp_subnets() -> None:
    subs = [api_subnet(S4, "10.0.0.0/24", "10.0.0.1"), api_subnet(S4B, "10.1.0.0/24", "10.1.0.1", enable_dhcp=False)]
    ports = [
        dhcp_port([(S4, "10.0.0.2")]),
        api_port("fip", "fa:16:3e:00:00:02", [(S4, "10.0.0.50")], owner="network:floatingip"),
        api_port("ha", "fa:16:3e:00:00:03", [(S4, "10.0.0.60")], owner="network:router_ha_interface"),
        vm_port([(S4, "10.0.0.5"), (S4B, "10.1.0.5")]),
    ]
    cfg = DhcpConfig(HOST)
    net = network_view(api_network([S4, S4B]), subs, ports)
    assert render.hosts_file(cfg, net) == "fa:16:3e:11:22:33,host-10-0-0-5.openstacklocal,10.0.0.5\n"
    assert render.dhcp_ranges(cfg, net) == [f"set:subnet-{S4},10.0.0.0,static,255.255.255.0,86400s"]
    # The DHCP subnet's on-link route to the other IPv4 subnet still applies.
    assert f"tag:subnet-{S4},option:classless-static-route,10.1.0.0/24,0.0.0.0," in render.opts_file(cfg, net)


def test_names_fall_back_without_dns_assignment() -> None:
    subs = [api_subnet(S6, "2001:db8:1::/64", None, ipv6_address_mode="dhcpv6-stateful")]
    ports = [dict(vm_port([(S6, "2001:db8:1::5")]), dns_assignment=[])]
    net = network_view(api_network([S6]), subs, ports)
    assert render.hosts_file(DhcpConfig(HOST), net) == (
        "fa:16:3e:11:22:33,tag:dhcpv6,host-2001-db8-1--5.openstacklocal,[2001:db8:1::5]\n"
    )
    assert render.addn_hosts_file(DhcpConfig(HOST, dns_domain=""), net) == (
        "2001:db8:1::5\thost-2001-db8-1--5 host-2001-db8-1--5\n"
    )


# --- dnsmasq's own parser ----------------------------------------------------------------
DNSMASQ = shutil.which("dnsmasq") or next(
    (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None
)


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq not installed")
@pytest.mark.parametrize("case", sorted(CASES))
def test_dnsmasq_accepts_rendered_config(case: str, tmp_path: Path) -> None:
    assert DNSMASQ is not None
    cfg, net = CASES[case]()
    conf = tmp_path / "check.conf"
    lines = [f"dhcp-host={line}" for line in render.hosts_file(cfg, net).splitlines()]
    lines += [f"dhcp-option={line}" for line in render.opts_file(cfg, net).splitlines()]
    conf.write_text("".join(line + "\n" for line in lines))
    argv = render.dnsmasq_argv(cfg, net, net.dhcp_port(HOST), conf_dir=str(tmp_path))
    argv = [DNSMASQ, "--test"] + [f"--conf-file={conf}" if a.startswith("--conf-file=") else a for a in argv[1:]]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    # The check is real: a bad option line is refused.
    conf.write_text("dhcp-option=tag:subnet-x,option:no-such-option,1\n")
    bad = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode != 0
