"""Blank extra DHCP option values, as Neutron: only ``router`` and ``classless-static-route``.

neutron-lib accepts ``opt_value: ""`` (or only spaces) for exactly those two names and refuses it
for every other name ("No valid key specs matched for: ..."). A blank option means "send no such
option": the DHCP agent writes the option without data (``tag:port-P,option:router``), which dnsmasq
takes as "do not send it" and which outranks the subnet's router line for that port. The
trailing-comma form (``option:router,``) is refused by dnsmasq, so it is never written.
"""

from __future__ import annotations

import subprocess

import pytest

from neutrino import errors
from neutrino.agents.dhcp import render
from neutrino.agents.dhcp.model import DhcpConfig, network_view
from neutrino.services import dhcp_options
from neutrino.shared import dnsmasq_options
from tests.unit.test_dhcp_render import DNSMASQ, HOST, S4, VM_PORT, api_network, api_subnet, dhcp_port, vm_port

BLANK_ROUTER = {"opt_name": "router", "opt_value": ""}
BLANK_CSR = {"opt_name": "classless-static-route", "opt_value": " "}


def _net(opts: list[dict]):
    subs = [
        api_subnet(
            S4, "10.0.0.0/24", "10.0.0.1", host_routes=[{"destination": "192.0.2.0/24", "nexthop": "10.0.0.254"}]
        )
    ]
    ports = [dhcp_port([(S4, "10.0.0.2")]), vm_port([(S4, "10.0.0.5")], extra_dhcp_opts=opts)]
    return network_view(api_network([S4]), subs, ports)


@pytest.mark.parametrize(
    "opt",
    [
        BLANK_ROUTER,
        BLANK_CSR,
        {**BLANK_ROUTER, "ip_version": 6},
        {"opt_name": "classless-static-route", "opt_value": "", "ip_version": 6},
    ],
)
def test_blank_router_and_classless_static_route_are_accepted(opt: dict) -> None:
    dhcp_options.check_extra_dhcp_opts([opt])


@pytest.mark.parametrize(
    "opt",
    [
        {"opt_name": "bootfile-name", "opt_value": ""},
        {"opt_name": "bootfile-name", "opt_value": "  "},
        {"opt_name": "dns-server", "opt_value": ""},
        {"opt_name": "test_option_1", "opt_value": ""},
        {"opt_name": "client-id", "opt_value": ""},
        {"opt_name": "3", "opt_value": ""},
        {"opt_name": "121", "opt_value": ""},
        {"opt_name": "Router", "opt_value": ""},
        {"opt_name": "ROUTER", "opt_value": "", "ip_version": 6},
        {"opt_name": "", "opt_value": "x"},
        {"opt_name": " ", "opt_value": "x"},
        {"opt_name": "", "opt_value": ""},
    ],
)
def test_other_blank_values_and_blank_names_are_refused_as_neutron(opt: dict) -> None:
    with pytest.raises(errors.InvalidInput) as exc:
        dhcp_options.check_extra_dhcp_opts([opt])
    assert exc.value.msg == f"Invalid input for operation: No valid key specs matched for: {opt}."


def test_a_blank_router_still_counts_as_the_router_option() -> None:
    with pytest.raises(errors.InvalidInput, match="given more than once"):
        dhcp_options.check_extra_dhcp_opts([BLANK_ROUTER, {"opt_name": "router", "opt_value": "10.0.0.9"}])


def test_blank_values_are_served_as_given_except_where_dnsmasq_has_no_such_option() -> None:
    served, out = dnsmasq_options.placements(
        [("router", "", 4), ("classless-static-route", " ", 4), ("router", "", 6), ("classless-static-route", "", 6)]
    )
    assert served == [("router", "", 4), ("classless-static-route", " ", 4)]
    assert out == ["router/ipv6", "classless-static-route/ipv6"]


def test_a_blank_option_is_written_without_data_and_without_a_comma() -> None:
    cfg = DhcpConfig(HOST)
    net = _net([BLANK_ROUTER, BLANK_CSR])
    lines = render.opts_file(cfg, net).splitlines()
    assert f"tag:port-{VM_PORT},option:router" in lines
    assert f"tag:port-{VM_PORT},option:classless-static-route" in lines
    assert not any(line.endswith(",") for line in lines)
    # the subnet's own router and routes stay for every other port; the port's tag is set
    assert f"tag:subnet-{S4},option:router,10.0.0.1" in lines
    assert f"set:port-{VM_PORT}" in render.hosts_file(cfg, net)


def _parses(tmp_path, net, extra: list[str] = ()) -> subprocess.CompletedProcess[str]:
    """``dnsmasq --test`` on the rendered hosts and opts lines (plus ``extra`` option lines)."""
    cfg = DhcpConfig(HOST)
    conf = tmp_path / "check.conf"
    argv = render.dnsmasq_argv(cfg, net, net.dhcp_port(HOST), conf_dir=str(tmp_path))
    argv = [DNSMASQ, "--test"] + [f"--conf-file={conf}" if a.startswith("--conf-file=") else a for a in argv[1:]]
    lines = [f"dhcp-host={line}" for line in render.hosts_file(cfg, net).splitlines()]
    lines += [f"dhcp-option={line}" for line in render.opts_file(cfg, net).splitlines() + list(extra)]
    conf.write_text("".join(line + "\n" for line in lines))
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq not installed")
def test_dnsmasq_parses_blank_options_as_rendered(tmp_path) -> None:
    net = _net([BLANK_ROUTER, BLANK_CSR, {"opt_name": "router", "opt_value": "", "ip_version": 6}])
    got = _parses(tmp_path, net)
    assert got.returncode == 0, got.stderr
    # the form Neutron's driver writes would be refused (and skipped, in an opts file)
    bad = _parses(tmp_path, net, [f"tag:port-{VM_PORT},option:router,"])
    assert bad.returncode != 0 and "bad IP address" in bad.stderr
