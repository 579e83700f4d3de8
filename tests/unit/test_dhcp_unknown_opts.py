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
from tests.unit.test_dhcp_planner import S4, VM_PORT, kinds, routed_world
from tests.unit.test_dhcp_render import DNSMASQ, HOST, S6, api_network, api_subnet, dhcp_port, vm_port

UNKNOWN = {"opt_name": "test_option_1", "opt_value": "x"}
KNOWN = {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}


def _net(opts: list[dict], with_v6: bool = False):
    subs = [api_subnet(S4, "10.0.0.0/24", "10.0.0.1")]
    ips = [(S4, "10.0.0.5")]
    if with_v6:
        subs.append(api_subnet(S6, "2001:db8::/64", "2001:db8::1", ipv6_address_mode="dhcpv6-stateful",
                               ipv6_ra_mode="dhcpv6-stateful"))
        ips.append((S6, "2001:db8::5"))
    ports = [dhcp_port([(S4, "10.0.0.2")]), vm_port(ips, extra_dhcp_opts=opts)]
    return network_view(api_network([s["id"] for s in subs]), subs, ports)


def test_unknown_option_is_left_out_and_known_ones_stay() -> None:
    net = _net([UNKNOWN, KNOWN])
    skipped: list[str] = []
    opts = render.opts_file(DhcpConfig(HOST), net, skipped)
    assert f"tag:port-{VM_PORT},option:bootfile-name,pxelinux.0" in opts
    assert "test_option_1" not in opts
    assert skipped == []          # not an error of the pass: the API shows it on the port
    hosts = render.hosts_file(DhcpConfig(HOST), net)
    assert f"set:port-{VM_PORT}" in hosts


def test_a_port_with_only_unknown_options_renders_like_one_without() -> None:
    cfg = DhcpConfig(HOST)
    plain, odd = _net([]), _net([UNKNOWN, {"opt_name": "router", "opt_value": "10.0.0.1", "ip_version": 6}])
    assert render.hosts_file(cfg, odd) == render.hosts_file(cfg, plain)
    assert render.opts_file(cfg, odd) == render.opts_file(cfg, plain)
    assert render.dnsmasq_argv(cfg, odd) == render.dnsmasq_argv(cfg, plain)


def test_ipv6_values_render_as_option6() -> None:
    net = _net([{"opt_name": "dns-server", "opt_value": "[2001:db8::53]", "ip_version": 6},
                {"opt_name": "tftp-server", "opt_value": "2001:db8::9", "ip_version": 6}], with_v6=True)
    opts = render.opts_file(DhcpConfig(HOST), net)
    assert f"tag:port-{VM_PORT},option6:dns-server,[2001:db8::53]" in opts
    assert "tftp-server" not in opts   # an IPv4-only name given for IPv6: dnsmasq does not know it


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


@pytest.mark.parametrize("name", ["a b", "a,b", "a:b", "a=b", "a\nb", "a\x00b", "-a", ".a", "+a", "a" * 65,
                                  "tag:x", "a\"b", "a#b", "a/b", "ä", "", "0", "255"])
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(errors.InvalidInput):
        dhcp_options.check_extra_dhcp_opts([{"opt_name": name, "opt_value": "v"}])


@pytest.mark.parametrize("value", ["a\nb", "a\x00b", "a\rb", "\"a"])
def test_values_of_unknown_options_stay_strictly_validated(value: str) -> None:
    with pytest.raises(errors.InvalidInput):
        dhcp_options.check_extra_dhcp_opts([{"opt_name": "test_option_1", "opt_value": value}])


def test_left_out_lists_only_options_with_a_value_dnsmasq_does_not_know() -> None:
    opts = [KNOWN, UNKNOWN, {"opt_name": "unset_one", "opt_value": None},
            {"opt_name": "router", "opt_value": "10.0.0.1", "ip_version": 6},
            {"opt_name": "client-id", "opt_value": "abc"}, {"opt_name": "300", "opt_value": "x", "ip_version": 6}]
    assert dhcp_options.left_out(opts) == ["test_option_1/ipv4", "router/ipv6"]


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq not installed")
def test_dnsmasq_parses_what_is_rendered_with_unknown_options(tmp_path) -> None:
    """dnsmasq itself refuses ``option:test_option_1``; the rendered files never hold it."""
    cfg = DhcpConfig(HOST)
    net = _net([UNKNOWN, KNOWN, {"opt_name": "router", "opt_value": "10.0.0.1", "ip_version": 6},
                {"opt_name": "dns-server", "opt_value": "[2001:db8::53]", "ip_version": 6}], with_v6=True)
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
