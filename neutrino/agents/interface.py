"""Agent-owned ports (DHCP ``tap``, router ``qr-``/``qg-``): the interface driver.

A port is an OVS *internal* port on the integration bridge carrying the
external_ids an OVS agent looks for, created isolated (dead VLAN 4095, trunk
mode) so no frame passes before the OVS agent wires it, then moved into its
namespace with the port's MAC and the network's MTU.  ``plug`` is idempotent:
an existing device in the namespace is only brought to the wanted MAC/MTU.
"""

from __future__ import annotations

from typing import Iterable

from neutrino.system import iproute, netns
from neutrino.system import ovsdb as sysovs

DEAD_VLAN = 4095


def device_name(prefix: str, port_id: str) -> str:
    """``tap``/``qr-``/``qg-`` + the first characters of the port id (14 chars in all)."""
    return f"{prefix}{port_id[:14 - len(prefix)]}"


class InterfaceDriver:
    def __init__(self, ovs: sysovs.Ovs, bridge: str = "br-int") -> None:
        self.ovs = ovs
        self.bridge = bridge
        self.host_netns = ovs.netns

    def plug(self, name: str, port_id: str, mac: str, mtu: int, namespace: str) -> None:
        netns.ensure_netns(namespace)
        if iproute.get_link(name, netns=namespace) is None:
            self.ovs.transact([
                sysovs.DelPort(name, self.bridge),
                sysovs.AddPort(self.bridge, name, type="internal", tag=DEAD_VLAN, vlan_mode="trunk",
                               trunks=(DEAD_VLAN,), external_ids={"iface-id": port_id, "attached-mac": mac,
                                                                 "iface-status": "active"})])
            iproute.move_link(name, namespace, netns=self.host_netns)
        iproute.set_link(name, netns=namespace, mac_address=mac, mtu=mtu, up=True)

    def unplug(self, name: str, namespace: str | None = None) -> None:
        self.ovs.transact([sysovs.DelPort(name, self.bridge)])
        if namespace and netns.netns_exists(namespace):
            iproute.remove_link(name, netns=namespace)

    @staticmethod
    def set_addresses(name: str, namespace: str, cidrs: Iterable[str]) -> None:
        """Make the device's global addresses exactly ``cidrs`` (link-local ones are kept)."""
        want = {str(c) for c in cidrs}
        have = {str(a.address) for a in iproute.list_addresses(netns=namespace, dev=name)
                if not a.address.ip.is_link_local or str(a.address) in want}
        for extra in sorted(have - want):
            iproute.remove_address(name, extra, netns=namespace)
        for missing in sorted(want - have):
            iproute.ensure_address(name, missing, netns=namespace)
