"""Agent-owned ports (DHCP ``tap``, router ``qr-``/``qg-``): the interface driver.

A port is a device in the agent's namespace, plugged into the integration
bridge with the external_ids an OVS agent looks for, isolated (dead VLAN
4095, trunk mode) so no frame passes before the OVS agent wires it, with the
port's MAC and the network's MTU.  Two kinds of device (``veth=``):

* an OVS *internal* port (default, the DHCP agent's): ovs-vswitchd creates
  the device in its own namespace and it is moved into the agent's.
* a veth pair (``veth=True``, the L3 agent's; Neutron's ``ovs_use_veth``):
  ``tap<id>`` in OVS's namespace is the OVS port, its peer (``qr-<id>``...) is
  created directly in the agent's namespace, with checksum offload off on
  that end (``ethtool -K tx off``): the userspace datapath reads the tap end
  through AF_PACKET and never completes a partial checksum of a packet the
  namespace itself sends (the metadata proxy's TCP).

Why both: moving a device to another namespace costs the kernel an RCU grace
period under the RTNL lock (``dev_change_net_namespace``, ~20 ms on the test
machine whatever the number of processes trying), which makes moves the
floor of a resync of many ports (300 router ports: 6 s); creating a veth end
in another namespace costs nothing of the kind.  (An internal port needs no
offload change: ovs-vswitchd sets a tap's offloads itself, ``TUNSETOFFLOAD``.)

Two ways to plug:

* ``plug`` (one port, idempotent): an existing device in the namespace is
  only brought to the wanted MAC/MTU; otherwise it is (re)created.  About
  five commands.
* ``create_all`` (many ports at once, for a resync): the OVS ports of all of
  them with one OVSDB transaction (per ``CHUNK`` ports), then their devices
  with one ``ip -force -batch`` (veth pairs created, or internal ports
  moved).  The caller then sets MAC/MTU/up with ``link_command`` in each
  namespace's own ``ip`` batch, and runs ``finish`` for each device.  Meant
  for devices observed missing from their namespace; a port whose device
  could not be made is returned, for the caller to ``plug`` it.

The OVS port always comes first: a veth's OVS port may name a device that
does not exist yet (ovs-vswitchd opens it when it appears), so an agent
stopped in between leaves a port without device - seen missing and plugged
again by the next pass - never a device without port, which nothing would
notice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from neutrino.system import iproute
from neutrino.system import ovsdb as sysovs
from neutrino.system.errors import DeviceNotFound
from neutrino.system.host import Host

DEAD_VLAN = 4095
#: Ports per OVSDB transaction in ``create_all`` / ``unplug_all`` (bounds the ovs-vsctl argv).
CHUNK = 256
#: Offloads turned off on the namespace end of a veth (see the module docstring).
VETH_OFFLOADS_OFF = ("tx",)
T = TypeVar("T")


def device_name(prefix: str, port_id: str) -> str:
    """``tap``/``qr-``/``qg-`` + the first characters of the port id (14 chars in all)."""
    return f"{prefix}{port_id[: 14 - len(prefix)]}"


def tap_name(name: str) -> str:
    """The OVS end of the veth whose namespace end is ``name`` (``qr-<id>`` -> ``tap<id>``)."""
    return "tap" + name[3:]


@dataclass(frozen=True)
class NewPort:
    """A port for ``create_all``: device ``name`` for Neutron port ``port_id`` with ``mac``
    and ``mtu``, to be made in ``namespace`` (which must exist)."""

    name: str
    port_id: str
    mac: str
    mtu: int
    namespace: str


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class InterfaceDriver:
    """Plugs agent-owned ports on ``host`` (its OVS: ``host.ovs``) into ``bridge``."""

    def __init__(self, host: Host, bridge: str = "br-int", *, veth: bool = False) -> None:
        self.host = host
        self.ovs = host.ovs
        self.bridge = bridge
        self.host_netns = host.ovs.netns
        self.veth = veth

    def ovs_port_name(self, name: str) -> str:
        """The OVS port of device ``name``."""
        return tap_name(name) if self.veth else name

    def _port_ops(self, name: str, port_id: str, mac: str) -> list[sysovs.Op]:
        """Delete whatever port of that name exists, add it fresh (isolated): one device, clean."""
        port = self.ovs_port_name(name)
        return [
            sysovs.DelPort(port, self.bridge),
            sysovs.AddPort(
                self.bridge,
                port,
                type=None if self.veth else "internal",
                tag=DEAD_VLAN,
                vlan_mode="trunk",
                trunks=(DEAD_VLAN,),
                external_ids={"iface-id": port_id, "attached-mac": mac, "iface-status": "active"},
            ),
        ]

    def plug(self, name: str, port_id: str, mac: str, mtu: int, namespace: str) -> None:
        """Make ``name`` exist in ``namespace`` (created there if missing) with ``mac``/``mtu``,
        up.  Idempotent; blocks for the few commands it runs; raises the adapters' errors."""
        self.host.ensure_netns(namespace)
        present = self.host.get_link(name, netns=namespace) is not None
        if present and not self.veth and self.host.get_link(name, netns=self.host_netns) is not None:
            # An internal port outlived its ovs-vswitchd (kill -9, restart): nothing is behind
            # that device any more, and the new vswitchd made a device of that name in its own
            # namespace.  Start over with a fresh port.
            self.host.remove_link(name, netns=namespace)
            present = False
        if not present:
            if self.veth:
                tap = tap_name(name)
                self.ovs.transact(self._port_ops(name, port_id, mac))  # port first (module docstring)
                self.host.remove_link(tap, netns=self.host_netns)  # an end left over elsewhere
                self.host.ensure_veth(tap, name, netns=self.host_netns, peer_netns=namespace, mtu=mtu, peer_mac=mac)
                self.host.set_link(tap, netns=self.host_netns, up=True)
                self.finish(name, namespace)
            else:
                self.ovs.transact(self._port_ops(name, port_id, mac))
                self.host.move_link(name, namespace, netns=self.host_netns)
        elif self.veth:
            try:
                self.host.set_link(tap_name(name), netns=self.host_netns, mtu=mtu)  # both ends' MTU
            except DeviceNotFound:
                pass  # not one of our veths (an internal port plugged by an older agent)
        self.host.set_link(name, netns=namespace, mac_address=mac, mtu=mtu, up=True)

    def orphaned(self) -> set[str]:
        """Names whose device in an agent namespace is dead: internal ports that outlived their
        ovs-vswitchd (a restarted one re-creates a device of each name in its own namespace, so
        a name there is one).  Always empty for veths, which survive ovs-vswitchd.  One ``ip``."""
        if self.veth:
            return set()
        return {link.name for link in self.host.list_links(netns=self.host_netns)}

    def create_all(self, ports: Sequence[NewPort]) -> list[NewPort]:
        """Make the OVS ports of ``ports`` (devices missing from their namespaces), then the devices.

        One OVSDB transaction per ``CHUNK`` ports (raises ``OvsdbError``: that chunk not
        applied, no device made; the caller plugs the ports one by one), then one ``ip -force
        -batch`` in OVS's namespace: veth pairs created (tap end up, namespace end with its
        MAC/MTU, DOWN), or internal ports moved (DOWN, random MAC).  Either way the caller then
        runs ``link_command`` and ``finish`` per device.  Returns the ports whose device could
        not be made.  Blocks ~1 s per 300 veth ports (internal ports: + ~20 ms per move).
        """
        for chunk in _chunks(ports):
            self.ovs.transact([op for p in chunk for op in self._port_ops(p.name, p.port_id, p.mac)])
        # `ip -batch` gives up entirely on a line naming a missing namespace: leave those out.
        missing = [p for p in ports if not self.host.netns_exists(p.namespace)]
        todo = [p for p in ports if p not in missing]
        if self.veth:
            lines = []
            for p in todo:
                tap = tap_name(p.name)
                lines += [
                    iproute.veth_cmd(tap, p.name, peer_netns=p.namespace, mtu=p.mtu, peer_mac=p.mac),
                    iproute.set_link_cmd(tap, up=True),
                ]
            failed = {(f.line + 1) // 2 for f in self.host.ip_batch_force(lines, netns=self.host_netns)}
            self._settle_taps([tap_name(p.name) for i, p in enumerate(todo, 1) if i not in failed])
        else:
            moves = [["link", "set", "dev", iproute.ifname(p.name), "netns", p.namespace] for p in todo]
            failed = {f.line for f in self.host.ip_batch_force(moves, netns=self.host_netns)}
        return missing + [p for i, p in enumerate(todo, 1) if i in failed]

    def _settle_taps(self, taps: Sequence[str], timeout: float = 5.0) -> None:
        """Bring the OVS ends of new veths up once ovs-vswitchd has opened them.

        ovs-vswitchd opens a port's device asynchronously when it appears and rewrites the
        device's flags while doing so (read, add PROMISC, write back): an ``up`` of ours that
        lands in between is lost and the port stays down.  So wait until every tap shows
        PROMISC (opened), then set the ones that are down up again (one batch).
        """
        if not taps:
            return
        deadline = time.monotonic() + timeout
        links: dict[str, iproute.Link] = {}
        while True:
            links = {link.name: link for link in self.host.list_links(netns=self.host_netns)}
            opened = all(t in links and "PROMISC" in links[t].flags for t in taps)
            if opened or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        down = [t for t in taps if t in links and not links[t].up]
        if down:
            self.host.ip_batch_force([iproute.set_link_cmd(t, up=True) for t in down], netns=self.host_netns)

    def finish(self, name: str, namespace: str) -> None:
        """What a device made by ``create_all`` still needs in its namespace: for a veth end,
        checksum offload off (one ``ethtool``); nothing for an internal port."""
        if self.veth:
            self.host.disable_offloads(name, netns=namespace, features=VETH_OFFLOADS_OFF)

    @staticmethod
    def link_command(name: str, mac: str, mtu: int) -> list[str]:
        """The ``ip`` batch line that gives device ``name`` its ``mac``/``mtu`` and brings it up."""
        return iproute.set_link_cmd(name, mac_address=mac, mtu=mtu, up=True)

    def unplug(self, name: str, namespace: str | None = None) -> None:
        """Delete device ``name``'s OVS port(s) and the device (a veth takes its peer along)."""
        self.ovs.transact([sysovs.DelPort(n, self.bridge) for n in sorted({name, self.ovs_port_name(name)})])
        if namespace and self.host.netns_exists(namespace):
            self.host.remove_link(name, netns=namespace)

    def unplug_all(self, names: Iterable[str]) -> None:
        """Delete the OVS ports of devices ``names`` (missing ones are fine), one transaction
        per ``CHUNK``.  The devices themselves go with their namespaces: an internal port when
        ovs-vswitchd lets it go, a veth end with its namespace (and its peer with it), so
        removing the namespaces afterwards cleans up (in one batch, without a grace period
        per device as ``ip link del`` would cost)."""
        ports = sorted({n for name in names for n in (name, self.ovs_port_name(name))})
        for chunk in _chunks(ports):
            self.ovs.transact([sysovs.DelPort(n, self.bridge) for n in chunk])

    def set_addresses(self, name: str, namespace: str, cidrs: Iterable[str]) -> None:
        """Make the device's global addresses exactly ``cidrs`` (link-local ones are kept)."""
        want = {str(c) for c in cidrs}
        have = {
            str(a.address)
            for a in self.host.list_addresses(netns=namespace, dev=name)
            if not a.address.ip.is_link_local or str(a.address) in want
        }
        for extra in sorted(have - want):
            self.host.remove_address(name, extra, netns=namespace)
        for missing in sorted(want - have):
            self.host.ensure_address(name, missing, netns=namespace)


__all__ = ["CHUNK", "DEAD_VLAN", "InterfaceDriver", "NewPort", "VETH_OFFLOADS_OFF", "device_name", "tap_name"]
