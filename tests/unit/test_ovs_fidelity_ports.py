"""Issue 14: the OVS agent's plan for ports the API now accepts: a filtered port without any
address (security groups, port security on, no fixed IP) and a port with a multicast MAC."""

from __future__ import annotations

import pytest

from neutrino.agents.ovs import derive
from neutrino.agents.ovs.firewall import OvsFirewall
from neutrino.agents.ovs.model import AgentConfig, DesiredHost, DesiredNetwork, DesiredPort, SecurityGroupRule
from neutrino.agents.ovs.planner import plan, port_problem
from neutrino.fakes.flowtable import FakeFlowTable

NET = DesiredNetwork("net-n", "vxlan", None, 100, 1450)
RULES = {
    "sg-web": (
        SecurityGroupRule("egress", "IPv4"),
        SecurityGroupRule("ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0"),
        SecurityGroupRule("ingress", "IPv4", remote_group_id="sg-web"),
    )
}


def _plan(port: DesiredPort, members: dict[str, tuple[str, ...]]):
    cfg = AgentConfig("h1", local_ip="192.168.100.11", tunnel_types=("vxlan",), datapath_type="netdev")
    desired = DesiredHost(networks=(NET,), ports=(port,), security_groups=RULES, group_members=members)
    fake = FakeFlowTable()
    fake.add_bridge("br-int")
    fake.add_port("br-int", "tap5", ofport=5, iface_id=port.id, attached_mac=port.mac)
    return plan(cfg, desired, fake.observed(), {}, OvsFirewall(desired.security_groups, desired.group_members))


def test_filtered_port_without_addresses_gets_only_mac_bound_flows() -> None:
    port = DesiredPort(
        "port-5", NET.id, "fa:16:3e:00:00:05", (), security_groups=("sg-web",), device_owner="compute:nova"
    )
    assert port_problem(port) is None
    flows = _plan(port, {"sg-web": ()}).flows["br-int"]
    mine = [
        f for f in flows if "in_port=5" in f.match or "reg5=0x5" in f.match or "dl_dst=fa:16:3e:00:00:05" in f.match
    ]
    assert any(f.match == "in_port=5" for f in mine)  # the port is wired and filtered
    # no IP may leave it (it has none): no nw_src/ipv6_src allow, no ARP for an address
    assert not [f for f in mine if "nw_src=" in f.match and "nw_src=0.0.0.0" not in f.match]
    assert not [f for f in mine if "arp_spa=" in f.match]
    # DHCP discovery (from 0.0.0.0) and its link-local IPv6 are still allowed from its MAC
    assert any("nw_src=0.0.0.0" in f.match and "dl_src=fa:16:3e:00:00:05" in f.match for f in mine)
    assert any("ipv6_src=fe80::" in f.match for f in mine)


def test_derive_keeps_groups_of_a_port_without_fixed_ips() -> None:
    cfg = AgentConfig("h1")
    ports = {
        "p1": {
            "id": "p1",
            "network_id": "n",
            "mac_address": "fa:16:3e:00:00:01",
            "binding:host_id": "h1",
            "binding:vif_type": "ovs",
            "fixed_ips": [],
            "security_groups": ["a"],
            "port_security_enabled": True,
        }
    }
    nets = {"n": {"id": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 5}}
    rules = {
        "r1": {
            "id": "r1",
            "security_group_id": "a",
            "direction": "ingress",
            "ethertype": "IPv4",
            "remote_group_id": "a",
        }
    }
    d = derive.desired_host(cfg, ports, nets, {}, rules)
    assert d.ports[0].fixed_ips == () and d.ports[0].security_groups == ("a",)
    assert set(d.security_groups) == {"a"}
    assert d.group_members.get("a", ()) == ()  # a member without addresses adds none


def test_port_with_a_multicast_mac_is_planned() -> None:
    port = DesiredPort(
        "port-5", NET.id, "11:22:33:44:55:66", ("10.0.0.5",), security_groups=("sg-web",), device_owner="compute:nova"
    )
    assert port_problem(port) is None
    flows = _plan(port, {"sg-web": ("10.0.0.5",)}).flows["br-int"]
    assert any("dl_src=11:22:33:44:55:66" in f.match and "nw_src=10.0.0.5" in f.match for f in flows)
    assert any(f.match == "in_port=5" for f in flows)


# --- DHCP: dnsmasq's hosts file -----------------------------------------------------------------
def test_dhcp_hosts_file_takes_a_multicast_mac_and_dnsmasq_parses_it(tmp_path) -> None:
    import shutil
    import subprocess

    from neutrino.agents.dhcp import render
    from neutrino.agents.dhcp.model import DhcpConfig, network_view
    from neutrino.agents.dhcp.model import port_problem as dhcp_port_problem
    from tests.unit.test_dhcp_render import HOST, S4, api_network, api_subnet, dhcp_port, vm_port

    ports = [dhcp_port([(S4, "10.0.0.2")]), vm_port([(S4, "10.0.0.5")], mac="11:22:33:44:55:66")]
    net = network_view(api_network([S4]), [api_subnet(S4, "10.0.0.0/24", "10.0.0.1")], ports)
    assert all(dhcp_port_problem(p) is None for p in net.ports)
    hosts = render.hosts_file(DhcpConfig(HOST), net)
    assert hosts == "11:22:33:44:55:66,host-10-0-0-5.openstacklocal,10.0.0.5\n"
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not shutil.which(dnsmasq):
        pytest.skip("dnsmasq not installed")
    conf = tmp_path / "check.conf"
    conf.write_text("".join(f"dhcp-host={line}\n" for line in hosts.splitlines()))
    res = subprocess.run(
        [dnsmasq, "--test", f"--conf-file={conf}"], capture_output=True, text=True, timeout=30, check=False
    )
    assert res.returncode == 0, res.stderr
