"""The DHCP agent's executor on the in-memory host (``neutrino.fakes.host.FakeHost``, injected),
with the real ``InterfaceDriver``: a pass brings a network up (namespace, tap with the DHCP
port's address, files, one dnsmasq), the next one changes nothing, and a network no longer
scheduled here is torn down (dnsmasq stopped, namespace and files gone, port given back)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from neutrino.agents.dhcp.agent import DhcpDriver
from neutrino.agents.dhcp.model import DhcpConfig, dhcp_device_id, namespace_name, network_views
from neutrino.agents.dhcp.planner import plan
from neutrino.agents.interface import InterfaceDriver
from neutrino.fakes.host import FakeHost
from neutrino.feed.state import State

HOST = "h1"
NET = "aaaaaaaa-0000-4000-8000-000000000000"


class _Client:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def api(self, method: str, url: str, body: Any, ok: Any = None) -> Any:
        self.calls.append((method, url))
        return {}


def _state(bound: bool = True) -> State:
    nets = {NET: {"id": NET, "mtu": 1450, "admin_state_up": True, "subnets": ["s1"]}}
    subnets = {
        "s1": {
            "id": "s1",
            "network_id": NET,
            "cidr": "10.1.0.0/24",
            "ip_version": 4,
            "gateway_ip": "10.1.0.1",
            "enable_dhcp": True,
        }
    }
    ports = {
        "d1": {
            "id": "d1",
            "network_id": NET,
            "mac_address": "fa:16:3e:00:00:01",
            "admin_state_up": True,
            "device_owner": "network:dhcp",
            "device_id": dhcp_device_id(HOST, NET),
            "binding:host_id": HOST,
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.1.0.2"}],
        },
        "vm": {
            "id": "vm",
            "network_id": NET,
            "mac_address": "fa:16:3e:00:00:02",
            "admin_state_up": True,
            "device_owner": "compute:nova",
            "device_id": "server-1",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.1.0.10"}],
        },
    }
    bindings = {NET: {"network_id": NET, "hosts": [HOST] if bound else []}}
    return State(
        1,
        {"network": nets, "subnet": subnets, "port": ports, "dhcp_binding": bindings},
        frozenset({"network", "subnet", "port", "dhcp_binding"}),
    )


def _driver(tmp_path: Path, host: FakeHost) -> DhcpDriver:
    drv = DhcpDriver(DhcpConfig(HOST, state_dir=str(tmp_path / "dhcp")), InterfaceDriver(host, "br-int"), host=host)
    drv.client = _Client()
    return drv


def test_a_network_comes_up_converges_and_is_torn_down(tmp_path: Path) -> None:
    host = FakeHost()
    drv = _driver(tmp_path, host)
    asyncio.run(drv.reconcile(_state(), True))
    assert not drv.problems
    ns = namespace_name(NET)
    st = host.ns[ns]
    assert st.sysctls["net.ipv4.ip_nonlocal_bind"] == "1"
    ((tap, dev),) = st.devices.items()
    assert tap.startswith("tap") and dev.up and dev.mtu == 1450 and dev.mac == "fa:16:3e:00:00:01"
    assert "10.1.0.2/24" in dev.addrs
    assert host.ovs.ports[tap].iface.type == "internal"
    argv = host.processes[NET]
    conf = tmp_path / "dhcp" / NET
    assert argv[0] == "dnsmasq" and f"--pid-file={conf}/pid" in argv
    assert "fa:16:3e:00:00:02" in (conf / "host").read_text()
    # converged: nothing to do, nothing restarted
    views = network_views(_state().of("network"), _state().of("subnet"), _state().of("port"), HOST)
    assert plan(drv.cfg, views, drv.observe()) == []
    started = host.count("dnsmasq")
    asyncio.run(drv.reconcile(_state(), True))
    assert host.count("dnsmasq") == started and host.processes[NET] == argv
    # no longer scheduled here: dnsmasq stopped, namespace and files gone, the port given back
    asyncio.run(drv.reconcile(_state(bound=False), True))
    assert ns not in host.ns and NET not in host.processes and not conf.exists()
    assert tap not in host.ovs.ports
    assert ("DELETE", "/v2.0/ports/d1") in drv.client.calls
