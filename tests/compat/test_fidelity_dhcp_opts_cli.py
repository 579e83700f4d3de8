"""Extra DHCP options with addresses of the other IP version, as the unchanged ``openstack`` CLI
(``--extra-dhcp-option name=...,value=...[,ip-version=...]``) and openstacksdk send them (issue 14):
tempest's IPv6 case gives IPv6 addresses to options without ``ip-version`` (so IPv4)."""

from __future__ import annotations

import json

import openstack
import pytest

pytestmark = pytest.mark.compat


def _opts(port: dict) -> dict[str, tuple[str, int]]:
    return {o["opt_name"]: (o["opt_value"], int(o.get("ip_version") or 4)) for o in port["extra_dhcp_opts"]}


def test_cli_ipv6_values_for_options_without_ip_version(cloud):
    cloud.osc("demo", "network", "create", "dhcpopt-net")
    cloud.osc(
        "demo",
        "subnet",
        "create",
        "--network",
        "dhcpopt-net",
        "--ip-version",
        "6",
        "--subnet-range",
        "2015::/64",
        "dhcpopt-sub",
    )
    port = json.loads(
        cloud.osc(
            "demo",
            "port",
            "create",
            "--network",
            "dhcpopt-net",
            "--extra-dhcp-option",
            "name=bootfile-name,value=pxelinux.0",
            "--extra-dhcp-option",
            "name=tftp-server,value=2015::dead",
            "--extra-dhcp-option",
            "name=server-ip-address,value=2015::badd",
            "--extra-dhcp-option",
            "name=dns-server,value=10.0.0.53,ip-version=6",
            "dhcpopt-port",
            "-f",
            "json",
        ).stdout
    )
    expected = {
        "bootfile-name": ("pxelinux.0", 4),
        "tftp-server": ("2015::dead", 4),
        "server-ip-address": ("2015::badd", 4),
        "dns-server": ("10.0.0.53", 6),
    }
    assert _opts(port) == expected
    shown = json.loads(cloud.osc("demo", "port", "show", "dhcpopt-port", "-f", "json").stdout)
    assert _opts(shown) == expected
    cloud.osc("demo", "port", "set", "dhcpopt-port", "--extra-dhcp-option", "name=server-ip-address,value=2015::1")
    shown = json.loads(cloud.osc("demo", "port", "show", "dhcpopt-port", "-f", "json").stdout)
    assert _opts(shown)["server-ip-address"] == ("2015::1", 4)
    # still strictly checked: not an address of either version
    proc = cloud.osc(
        "demo",
        "port",
        "set",
        "dhcpopt-port",
        "--extra-dhcp-option",
        "name=server-ip-address,value=tftp.example",
        ok=False,
    )
    assert proc.returncode != 0 and "is not an IPv4 address, nor an IPv6 address" in proc.stderr
    # openstacksdk: the same round trip
    env = cloud.demo
    conn = openstack.connect(
        auth_url=env["OS_AUTH_URL"],
        cacert=env.get("OS_CACERT"),  # TLS: the cloud's CA (openrc OS_CACERT)
        username="demo",
        password=env["OS_PASSWORD"],
        project_name="demo",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )
    sdk_opts = [
        {"opt_name": "tftp-server", "opt_value": "2015::dead"},
        {"opt_name": "server-ip-address", "opt_value": "2015::badd"},
    ]
    sdk_port = conn.network.create_port(network_id=port["network_id"], extra_dhcp_opts=sdk_opts)
    assert [(o["opt_name"], o["opt_value"]) for o in conn.network.get_port(sdk_port.id).extra_dhcp_opts] == [
        (o["opt_name"], o["opt_value"]) for o in sdk_opts
    ]
    conn.network.delete_port(sdk_port.id)
    cloud.osc("demo", "port", "delete", "dhcpopt-port")
    cloud.osc("demo", "subnet", "delete", "dhcpopt-sub")
    cloud.osc("demo", "network", "delete", "dhcpopt-net")


def test_cli_port_set_merges_extra_dhcp_options(cloud):
    """``openstack port set --extra-dhcp-option`` sends only the options it names: they are merged into
    the port's (as Neutron), so the others stay.  The CLI has no ``port unset --extra-dhcp-option``, and
    an option without ``value=`` is sent without ``opt_value``, which Neutron (and we) refuse; removing
    takes ``opt_value: null`` on the API (openstacksdk here)."""
    cloud.osc("demo", "network", "create", "dhcpmerge-net")
    cloud.osc(
        "demo", "subnet", "create", "--network", "dhcpmerge-net", "--subnet-range", "10.9.0.0/24", "dhcpmerge-sub"
    )
    cloud.osc(
        "demo",
        "port",
        "create",
        "--network",
        "dhcpmerge-net",
        "--extra-dhcp-option",
        "name=bootfile-name,value=pxelinux.0",
        "--extra-dhcp-option",
        "name=tftp-server,value=10.9.0.9",
        "dhcpmerge-port",
    )
    cloud.osc(
        "demo",
        "port",
        "set",
        "dhcpmerge-port",
        "--extra-dhcp-option",
        "name=bootfile-name,value=ipxe.efi",
        "--extra-dhcp-option",
        "name=mtu,value=1400",
    )
    shown = json.loads(cloud.osc("demo", "port", "show", "dhcpmerge-port", "-f", "json").stdout)
    assert _opts(shown) == {"bootfile-name": ("ipxe.efi", 4), "tftp-server": ("10.9.0.9", 4), "mtu": ("1400", 4)}
    assert all("ip_version" in o for o in shown["extra_dhcp_opts"])
    proc = cloud.osc("demo", "port", "set", "dhcpmerge-port", "--extra-dhcp-option", "name=mtu", ok=False)
    assert proc.returncode != 0 and "Validation of dictionary's keys failed" in proc.stderr
    assert "--extra-dhcp-option" not in cloud.osc("demo", "port", "unset", "--help").stdout
    env = cloud.demo
    conn = openstack.connect(
        auth_url=env["OS_AUTH_URL"],
        cacert=env.get("OS_CACERT"),  # TLS: the cloud's CA (openrc OS_CACERT)
        username="demo",
        password=env["OS_PASSWORD"],
        project_name="demo",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )
    conn.network.update_port(shown["id"], extra_dhcp_opts=[{"opt_name": "tftp-server", "opt_value": None}])
    shown = json.loads(cloud.osc("demo", "port", "show", "dhcpmerge-port", "-f", "json").stdout)
    assert _opts(shown) == {"bootfile-name": ("ipxe.efi", 4), "mtu": ("1400", 4)}
    cloud.osc("demo", "port", "delete", "dhcpmerge-port")
    cloud.osc("demo", "subnet", "delete", "dhcpmerge-sub")
    cloud.osc("demo", "network", "delete", "dhcpmerge-net")
