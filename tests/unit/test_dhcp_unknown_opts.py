"""Extra DHCP options dnsmasq does not know: accepted by the API, left out by the DHCP agent.

The API accepts option names that are safe tokens (``dhcp_options.OPT_TOKEN``)
even when dnsmasq does not know them (as Neutron does); the renderers leave
such options out of the host and opts files, so one such option never breaks
DHCP for the port or the network, and ``dhcp_options.left_out`` names them
for the port's ``binding:vif_details``.
"""

from __future__ import annotations

import subprocess

import pytest

from neutrino import errors
from neutrino.agents.dhcp import render
from neutrino.agents.dhcp.model import DhcpConfig, network_view
from neutrino.services import dhcp_options
from neutrino.shared import dnsmasq_options
from tests.unit.test_dhcp_planner import S4, VM_PORT, kinds, routed_world
from tests.unit.test_dhcp_render import DNSMASQ, HOST, S6, api_network, api_subnet, dhcp_port, vm_port

UNKNOWN = {"opt_name": "test_option_1", "opt_value": "x"}
KNOWN = {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}


def _net(opts: list[dict], with_v6: bool = False):
    subs = [api_subnet(S4, "10.0.0.0/24", "10.0.0.1")]
    ips = [(S4, "10.0.0.5")]
    if with_v6:
        subs.append(
            api_subnet(
                S6, "2001:db8::/64", "2001:db8::1", ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful"
            )
        )
        ips.append((S6, "2001:db8::5"))
    ports = [dhcp_port([(S4, "10.0.0.2")]), vm_port(ips, extra_dhcp_opts=opts)]
    return network_view(api_network([s["id"] for s in subs]), subs, ports)


def test_unknown_option_is_left_out_and_known_ones_stay() -> None:
    net = _net([UNKNOWN, KNOWN])
    skipped: list[str] = []
    opts = render.opts_file(DhcpConfig(HOST), net, skipped)
    assert f"tag:port-{VM_PORT},option:bootfile-name,pxelinux.0" in opts
    assert "test_option_1" not in opts
    assert skipped == []  # not an error of the pass: the API shows it on the port
    hosts = render.hosts_file(DhcpConfig(HOST), net)
    assert f"set:port-{VM_PORT}" in hosts


def test_a_port_with_only_unknown_options_renders_like_one_without() -> None:
    cfg = DhcpConfig(HOST)
    plain, odd = _net([]), _net([UNKNOWN, {"opt_name": "router", "opt_value": "10.0.0.1", "ip_version": 6}])
    assert render.hosts_file(cfg, odd) == render.hosts_file(cfg, plain)
    assert render.opts_file(cfg, odd) == render.opts_file(cfg, plain)
    assert render.dnsmasq_argv(cfg, odd) == render.dnsmasq_argv(cfg, plain)


def test_ipv6_values_render_as_option6() -> None:
    net = _net(
        [
            {"opt_name": "dns-server", "opt_value": "[2001:db8::53]", "ip_version": 6},
            {"opt_name": "tftp-server", "opt_value": "2001:db8::9", "ip_version": 6},
        ],
        with_v6=True,
    )
    opts = render.opts_file(DhcpConfig(HOST), net)
    assert f"tag:port-{VM_PORT},option6:dns-server,[2001:db8::53]" in opts
    assert "tftp-server" not in opts  # an IPv4-only name given for IPv6: dnsmasq does not know it


def test_planner_adding_an_unknown_option_changes_nothing_on_the_host() -> None:
    w = routed_world()
    w.converge()
    w.ports[VM_PORT]["extra_dhcp_opts"] = [UNKNOWN]
    assert w.plan() == []
    w.ports[VM_PORT]["extra_dhcp_opts"] = [UNKNOWN, KNOWN]
    ops = w.plan()
    assert kinds(ops) == ["WriteFiles", "ReloadDnsmasq"]
    w.apply(ops)
    assert "test_option_1" not in w.host[next(iter(w.host))].files["opts"]
    assert w.plan() == []


@pytest.mark.parametrize("name", ["test_option_1", "my.opt", "x+y", "_a", "A-1", "a" * 64])
def test_option_tokens_are_accepted(name: str) -> None:
    dhcp_options.check_extra_dhcp_opts([{"opt_name": name, "opt_value": "v"}])
    assert dhcp_options.left_out([{"opt_name": name, "opt_value": "v"}]) == [f"{name}/ipv4"]


@pytest.mark.parametrize(
    "name",
    [
        "a b",
        "a,b",
        "a:b",
        "a=b",
        "a\nb",
        "a\x00b",
        "-a",
        ".a",
        "+a",
        "a" * 65,
        "tag:x",
        "a\"b",
        "a#b",
        "a/b",
        "ä",
        "",
        "0",
        "255",
    ],
)
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(errors.InvalidInput):
        dhcp_options.check_extra_dhcp_opts([{"opt_name": name, "opt_value": "v"}])


@pytest.mark.parametrize("value", ["a\nb", "a\x00b", "a\rb", "\"a"])
def test_values_of_unknown_options_stay_strictly_validated(value: str) -> None:
    with pytest.raises(errors.InvalidInput):
        dhcp_options.check_extra_dhcp_opts([{"opt_name": "test_option_1", "opt_value": value}])


def test_left_out_lists_only_options_with_a_value_dnsmasq_does_not_know() -> None:
    opts = [
        KNOWN,
        UNKNOWN,
        {"opt_name": "unset_one", "opt_value": None},
        {"opt_name": "router", "opt_value": "10.0.0.1", "ip_version": 6},
        {"opt_name": "client-id", "opt_value": "abc"},
        {"opt_name": "300", "opt_value": "x", "ip_version": 6},
    ]
    assert dhcp_options.left_out(opts) == ["test_option_1/ipv4", "router/ipv6"]


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq not installed")
def test_dnsmasq_parses_what_is_rendered_with_unknown_options(tmp_path) -> None:
    """dnsmasq itself refuses ``option:test_option_1``; the rendered files never hold it."""
    cfg = DhcpConfig(HOST)
    net = _net(
        [
            UNKNOWN,
            KNOWN,
            {"opt_name": "router", "opt_value": "10.0.0.1", "ip_version": 6},
            {"opt_name": "dns-server", "opt_value": "[2001:db8::53]", "ip_version": 6},
        ],
        with_v6=True,
    )
    conf = tmp_path / "check.conf"
    argv = render.dnsmasq_argv(cfg, net, net.dhcp_port(HOST), conf_dir=str(tmp_path))
    argv = [DNSMASQ, "--test"] + [f"--conf-file={conf}" if a.startswith("--conf-file=") else a for a in argv[1:]]

    def parses(lines: list[str]) -> bool:
        conf.write_text("".join(line + "\n" for line in lines))
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).returncode == 0

    lines = [f"dhcp-host={line}" for line in render.hosts_file(cfg, net).splitlines()]
    lines += [f"dhcp-option={line}" for line in render.opts_file(cfg, net).splitlines()]
    assert parses(lines)
    assert not parses(lines + [f"dhcp-option=tag:port-{VM_PORT},option:test_option_1,x"])


# --- address options given addresses of the other IP version ----------------------------------
TEMPEST_V6 = [
    KNOWN,
    {"opt_name": "tftp-server", "opt_value": "2015::dead"},
    {"opt_name": "server-ip-address", "opt_value": "2015::badd"},
]
#: Every address option of each version, by name and by number, with addresses of the other version.
CROSS = (
    [
        {"opt_name": n, "opt_value": "2001:db8::7,[2001:db8::8]"}
        for n, c in dnsmasq_options.KNOWN_V4.items()
        if c in dnsmasq_options.ADDRESS_V4
    ]
    + [{"opt_name": str(c), "opt_value": "2001:db8::7"} for c in sorted(dnsmasq_options.ADDRESS_V4 - {255})]
    + [
        {"opt_name": n, "opt_value": "10.0.0.7,10.0.0.8", "ip_version": 6}
        for n, c in dnsmasq_options.KNOWN_V6.items()
        if c in dnsmasq_options.ADDRESS_V6
    ]
    + [{"opt_name": str(c), "opt_value": "10.0.0.7", "ip_version": 6} for c in sorted(dnsmasq_options.ADDRESS_V6)]
)


def _triples(opts: list[dict]) -> list[tuple[str, str, int]]:
    return [(o["opt_name"], o["opt_value"], int(o.get("ip_version") or 4)) for o in opts]


def test_cross_version_values_are_accepted_strictly() -> None:
    dhcp_options.check_extra_dhcp_opts(TEMPEST_V6)
    for opt in CROSS:
        dhcp_options.check_extra_dhcp_opts([opt])
    for value in (
        "2015::badd,10.0.0.1",
        "2015::badd 2015::1",
        "fe80::1%eth0",
        "[10.0.0.1]",
        "2015::badd,",
        "host.example",
        "2015::badd\x00",
        "2015::badd\n",
    ):
        with pytest.raises(errors.InvalidInput):
            dhcp_options.check_extra_dhcp_opts([{"opt_name": "server-ip-address", "opt_value": value}])


def test_placements_move_to_the_same_named_option_or_leave_out() -> None:
    served, out = dnsmasq_options.placements(
        _triples(
            TEMPEST_V6
            + [
                {"opt_name": "dns-server", "opt_value": "2001:db8::53"},  # -> option6:dns-server
                {"opt_name": "NTP-server", "opt_value": "2001:db8::123"},  # -> option6:ntp-server
                {"opt_name": "sip-server", "opt_value": "10.0.0.5", "ip_version": 6},  # -> option:sip-server
                {"opt_name": "sntp-server", "opt_value": "10.0.0.6", "ip_version": 6},  # no IPv4 twin
                {"opt_name": "6", "opt_value": "2001:db8::1"},  # numbers differ per version
                {"opt_name": "router", "opt_value": "2001:db8::1"},  # no DHCPv6 twin
            ]
        )
    )
    assert served == [
        ("bootfile-name", "pxelinux.0", 4),
        ("tftp-server", "2015::dead", 4),
        ("dns-server", "2001:db8::53", 6),
        ("NTP-server", "2001:db8::123", 6),
        ("sip-server", "10.0.0.5", 4),
    ]
    assert out == ["server-ip-address/ipv4", "sntp-server/ipv6", "6/ipv4", "router/ipv4"]


def test_a_moved_option_yields_to_the_ports_own() -> None:
    opts = [
        ("dns-server", "2001:db8::53", 4),
        ("23", "2001:db8::54", 6),
        ("nis-server", "10.0.0.9", 6),
        ("nis-server", "2001:db8::9", 4),
    ]  # these two swap places: no conflict
    served, out = dnsmasq_options.placements(opts)
    assert served == [("23", "2001:db8::54", 6), ("nis-server", "10.0.0.9", 4), ("nis-server", "2001:db8::9", 6)]
    assert out == ["dns-server/ipv4"]


def test_values_dnsmasq_would_refuse_are_left_out_by_the_agent() -> None:
    """Second line of defence, for rows stored before the API checked values: never rendered."""
    served, out = dnsmasq_options.placements(
        [
            ("router", "gateway", 4),
            ("router", "10.0.0.1,2001:db8::1", 6),
            ("dns-server", "10.0.0.1,2001:db8::1", 4),
            ("mtu", "1400", 5),
        ]
    )
    assert served == [] and out == ["router/ipv4", "router/ipv6", "dns-server/ipv4", "mtu/ipv5"]


def test_left_out_matches_placements() -> None:
    assert dhcp_options.left_out(TEMPEST_V6) == ["server-ip-address/ipv4"]


def test_tempest_options_on_a_dual_stack_port_render() -> None:
    net = _net(
        TEMPEST_V6
        + [
            {"opt_name": "dns-server", "opt_value": "2001:db8::53"},
            {"opt_name": "dns-server", "opt_value": "10.0.0.53", "ip_version": 6},
        ],
        with_v6=True,
    )
    opts = render.opts_file(DhcpConfig(HOST), net).splitlines()
    port_lines = [line for line in opts if line.startswith(f"tag:port-{VM_PORT},")]
    assert port_lines == [
        f"tag:port-{VM_PORT},option:bootfile-name,pxelinux.0",
        f"tag:port-{VM_PORT},option:tftp-server,2015::dead",
        f"tag:port-{VM_PORT},option6:dns-server,2001:db8::53",
        f"tag:port-{VM_PORT},option:dns-server,10.0.0.53",
    ]


def test_moved_options_follow_the_ports_addresses() -> None:
    """An IPv4-tagged option moved to DHCPv6 is written only when the port has a DHCPv6 address."""
    only_v4 = _net([{"opt_name": "dns-server", "opt_value": "2001:db8::53"}])
    assert render.opts_file(DhcpConfig(HOST), only_v4) == render.opts_file(DhcpConfig(HOST), _net([]))


def _many_ports_net(opts: list[dict]):
    """A dual-stack network with one port per option."""
    subs = [
        api_subnet(S4, "10.0.0.0/24", "10.0.0.1"),
        api_subnet(
            S6, "2001:db8::/64", "2001:db8::1", ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful"
        ),
    ]
    ports = [dhcp_port([(S4, "10.0.0.2"), (S6, "2001:db8::2")])]
    for i, opt in enumerate(opts):
        ports.append(
            vm_port(
                [(S4, f"10.0.0.{10 + i}"), (S6, f"2001:db8::{10 + i:x}")],
                pid=f"00000000-0000-4000-8000-{i:012x}",
                mac=f"fa:16:3e:00:01:{i:02x}",
                extra_dhcp_opts=[opt],
            )
        )
    return network_view(api_network([S4, S6]), subs, ports)


def _dnsmasq_parses(tmp_path, net, extra: list[str] = ()) -> tuple[bool, str]:
    cfg = DhcpConfig(HOST)
    conf = tmp_path / "check.conf"
    argv = render.dnsmasq_argv(cfg, net, net.dhcp_port(HOST), conf_dir=str(tmp_path))
    argv = [DNSMASQ, "--test"] + [f"--conf-file={conf}" if a.startswith("--conf-file=") else a for a in argv[1:]]
    lines = [f"dhcp-host={line}" for line in render.hosts_file(cfg, net).splitlines()]
    lines += [f"dhcp-option={line}" for line in render.opts_file(cfg, net).splitlines()] + list(extra)
    conf.write_text("".join(line + "\n" for line in lines))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return proc.returncode == 0, proc.stderr


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq not installed")
def test_dnsmasq_parses_every_cross_version_address_option(tmp_path) -> None:
    """Each address option of either version, given addresses of the other one, renders into files that
    dnsmasq parses (moved to the same-named option of the other version, or left out); the opts lines
    written as given would not parse."""
    net = _many_ports_net(CROSS + TEMPEST_V6)
    ok, err = _dnsmasq_parses(tmp_path, net)
    assert ok, err
    opts = render.opts_file(DhcpConfig(HOST), net)
    for moved in (
        "option6:dns-server,2001:db8::7,[2001:db8::8]",
        "option6:ntp-server,",
        "option6:nis-server,",
        "option6:nis+-server,",
        "option:dns-server,10.0.0.7,10.0.0.8",
        "option:sip-server,10.0.0.7",
    ):
        assert moved in opts
    assert "server-ip-address" not in opts and "option:router,2001" not in opts
    for bad in ("option:server-ip-address,2015::badd", "option:router,2001:db8::7", "option6:sntp-server,10.0.0.7"):
        ok, err = _dnsmasq_parses(tmp_path, net, [f"dhcp-option=tag:port-{VM_PORT},{bad}"])
        assert not ok and "bad IP" in err, bad
