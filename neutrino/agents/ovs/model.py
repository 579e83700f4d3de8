"""Typed inputs and outputs of the OVS L2 agent's planner (pure, frozen values).

Inputs: ``AgentConfig`` (the agent's static configuration), ``DesiredHost``
(what the server wants on this host), ``ObservedState`` (what OVSDB and the
flow tables hold now).  Outputs: ``FlowSpec`` (one OpenFlow flow, in the
canonical text ``ovs-ofctl -O OpenFlow13 dump-flows`` prints) and the OVSDB
ops below, which an executor maps onto its adapters.

Strings follow OVS conventions: MACs are lower-case ``aa:bb:cc:dd:ee:ff``,
IP addresses and prefixes are plain text (``10.0.0.5``, ``10.0.0.0/24``,
``2001:db8::/64``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

DatapathType = Literal["system", "netdev"]
PortStatus = Literal["ACTIVE", "DOWN", "ERROR"]

#: l2population "flooding entry": include this VTEP in the network's flood list.
FLOODING_MAC = "00:00:00:00:00:00"
FLOODING_IP = "0.0.0.0"


# --- configuration ---------------------------------------------------------------------
@dataclass(frozen=True)
class AgentConfig:
    """The OVS agent's static configuration (``[OVS]``/``[AGENT]`` options)."""

    host: str
    integration_bridge: str = "br-int"
    tunnel_bridge: str = "br-tun"
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)  # physnet -> bridge
    local_ip: str | None = None
    tunnel_types: tuple[str, ...] = ()  # "vxlan", "gre", "geneve"
    l2_population: bool = False
    arp_responder: bool = False  # effective only together with l2_population
    datapath_type: DatapathType = "system"


# --- desired state ---------------------------------------------------------------------
@dataclass(frozen=True)
class DesiredNetwork:
    """One network (its single segment) as this host must provision it."""

    id: str
    network_type: str  # "vxlan" | "gre" | "geneve" | "vlan" | "flat" | "local"
    physical_network: str | None = None
    segmentation_id: int | None = None
    mtu: int = 1500


@dataclass(frozen=True)
class DesiredPort:
    """A Neutron port bound to this host (``binding:host_id`` == agent host)."""

    id: str
    network_id: str
    mac: str
    fixed_ips: tuple[str, ...] = ()
    #: (mac or None, ip or CIDR); a None/empty MAC means the port's own MAC.
    allowed_address_pairs: tuple[tuple[str | None, str], ...] = ()
    port_security_enabled: bool = True
    admin_state_up: bool = True
    device_owner: str = ""
    security_groups: tuple[str, ...] = ()
    #: False when the port's groups are stateless: its firewall then matches rules
    #: without conntrack and lets nothing through without a rule (not even replies).
    stateful: bool = True

    @property
    def trusted(self) -> bool:
        """DHCP/router ports (``network:*``) are never anti-spoofed or filtered."""
        return self.device_owner.startswith("network:")


class SecurityGroupRule(NamedTuple):
    """One security-group rule as the firewall needs it (API field names).

    ``protocol`` is None (any), a name (``tcp``, ``icmp``, ...) or a number as
    text; for ICMP ``port_range_min``/``max`` are the type and code.

    A NamedTuple, not a dataclass: rules are hash keys of the firewall's
    memos, and a tuple hashes and compares in C (a frozen dataclass's
    ``__hash__``/``__eq__`` run Python code on every lookup).
    """

    direction: str  # "ingress" | "egress"
    ethertype: str  # "IPv4" | "IPv6"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclass(frozen=True)
class TunnelPeer:
    """Another agent's tunnel endpoint (``tunnel_sync``); used without l2pop."""

    host: str
    ip: str


@dataclass(frozen=True)
class FdbEntry:
    """One l2population forwarding entry: (mac, ip) of a port behind VTEP ``peer_ip``.

    ``(FLOODING_MAC, FLOODING_IP)`` puts the VTEP in the network's flood list.
    """

    network_id: str
    peer_ip: str
    mac: str
    ip: str

    @property
    def is_flooding(self) -> bool:
        return self.mac == FLOODING_MAC and self.ip == FLOODING_IP


@dataclass(frozen=True)
class DesiredTrunk:
    """A trunk whose parent port is bound to this host: its subports as (port id, VLAN id).

    The parent's VIF is the instance's interface; frames it sends tagged with a
    subport's VLAN are that subport's, and the subport's frames reach it tagged
    (see ``planner``: trunk patch ports)."""

    parent_id: str
    subports: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class DesiredHost:
    """Everything the server wants on one host."""

    networks: tuple[DesiredNetwork, ...] = ()
    ports: tuple[DesiredPort, ...] = ()  # ports bound to this host
    tunnel_peers: tuple[TunnelPeer, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()
    #: Rules of every security group a port here belongs to (group id -> rules).
    security_groups: Mapping[str, tuple[SecurityGroupRule, ...]] = field(default_factory=dict)
    #: Addresses (fixed IPs and allowed address pairs, anywhere in the cloud) of the
    #: members of every group those rules name as ``remote_group_id``.
    group_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: What ``derive`` left out because a value could not be put into a flow (a rule's
    #: remote prefix, a member address, a peer's tunnel IP, an fdb entry); for the report.
    problems: tuple[str, ...] = ()
    #: Trunks whose parent port is bound here (``trunk_details`` of the parent ports).
    trunks: tuple[DesiredTrunk, ...] = ()


# --- observed state --------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedPort:
    """One OVSDB Port (+ its single Interface), flattened.

    ``ofport`` is None while OVS has not assigned one (OVSDB shows ``[]`` or -1).
    ``iface_id``/``attached_mac`` come from ``Interface.external_ids``; a port
    is a Neutron VIF only when both are set.  ``options`` are the Interface
    options (``peer`` for patch ports, ``remote_ip``/``local_ip`` for tunnels).
    """

    name: str
    ofport: int | None = None
    iface_id: str | None = None
    attached_mac: str | None = None
    tag: int | None = None
    other_config: Mapping[str, str] = field(default_factory=dict)
    type: str = ""  # Interface type: "", "internal", "patch", "vxlan", ...
    options: Mapping[str, str] = field(default_factory=dict)
    vlan_mode: str | None = None
    trunks: tuple[int, ...] = ()

    @property
    def is_vif(self) -> bool:
        return bool(self.iface_id) and bool(self.attached_mac)

    @property
    def ready(self) -> bool:
        return self.ofport is not None and self.ofport > 0


@dataclass(frozen=True)
class ObservedBridge:
    name: str
    datapath_type: str = "system"
    fail_mode: str | None = None
    protocols: tuple[str, ...] = ()
    ports: tuple[ObservedPort, ...] = ()

    def port(self, name: str) -> ObservedPort | None:
        for p in self.ports:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class ObservedState:
    """OVSDB bridges by name, and the flows currently installed per bridge."""

    bridges: Mapping[str, ObservedBridge] = field(default_factory=dict)
    flows: Mapping[str, frozenset[FlowSpec]] = field(default_factory=dict)


# --- outputs: flows --------------------------------------------------------------------
class FlowSpec(NamedTuple):
    """One flow as ``ovs-ofctl -O OpenFlow13 dump-flows`` prints it (cookie, stats omitted).

    ``match`` is the text after ``priority=N,`` (fields in OVS's print order,
    empty for a match-all flow); ``actions`` the text after ``actions=``.

    A NamedTuple (immutable, ordered by its fields): a br-int with the
    firewall holds ~50 flows per port, and the agent compares whole flow
    sets every pass; tuples hash and compare in C, ~10x faster than a frozen
    dataclass.
    """

    bridge: str
    table: int
    priority: int
    match: str
    actions: str

    @property
    def text(self) -> str:
        """``table=0, priority=2,in_port=5 actions=drop`` (one dump-flows line)."""
        m = f",{self.match}" if self.match else ""
        return f"table={self.table}, priority={self.priority}{m} actions={self.actions}"


# --- outputs: OVSDB ops ----------------------------------------------------------------
@dataclass(frozen=True)
class EnsureBridge:
    """``add-br --may-exist`` + set ``datapath_type``, ``fail_mode`` and add ``protocols``."""

    name: str
    datapath_type: str
    fail_mode: str = "secure"
    protocols: tuple[str, ...] = ("OpenFlow10", "OpenFlow13", "OpenFlow14")


@dataclass(frozen=True)
class EnsurePatch:
    """A patch port ``name`` on ``bridge`` whose ``options:peer`` is ``peer`` (create or update)."""

    bridge: str
    name: str
    peer: str


@dataclass(frozen=True)
class EnsureTunnelPort:
    """A tunnel port (``in_key=flow, out_key=flow, df_default=true``), created or updated."""

    bridge: str
    name: str
    type: str
    remote_ip: str
    local_ip: str


@dataclass(frozen=True)
class RemovePort:
    """``del-port --if-exists bridge name``."""

    bridge: str
    name: str


@dataclass(frozen=True)
class SetPortTag:
    """Set ``Port tag``, ``vlan_mode`` and ``trunks`` together (None/() clear the column)."""

    name: str
    tag: int | None
    vlan_mode: str | None = None
    trunks: tuple[int, ...] = ()


@dataclass(frozen=True)
class SetPortOtherConfig:
    """Set these keys of ``Port other_config`` (other keys are left alone)."""

    name: str
    other_config: Mapping[str, str]


@dataclass(frozen=True)
class EnsureTrunkPatch:
    """A patch port of a trunk subport pair on br-int (created or updated), with its Port
    VLAN columns and Interface ``external_ids`` (``iface-id``/``attached-mac`` make the
    ``spt-`` end the subport's VIF)."""

    bridge: str
    name: str
    peer: str
    tag: int
    vlan_mode: str
    trunks: tuple[int, ...] = ()
    external_ids: Mapping[str, str] = field(default_factory=dict)


OvsdbOp = (
    EnsureBridge | EnsurePatch | EnsureTunnelPort | RemovePort | SetPortTag | SetPortOtherConfig | EnsureTrunkPatch
)


class WiredPort(NamedTuple):
    """A desired port wired on br-int (handed to firewall flow providers)."""

    port: DesiredPort
    network: DesiredNetwork
    name: str
    ofport: int
    lvid: int


@dataclass
class Plan:
    """What one reconcile pass must do.

    * ``ovsdb_ops``: apply in order, in one OVSDB transaction.
    * ``flows``: the COMPLETE desired flow set per bridge; the executor makes
      the bridge's flows (of the agent's cookie) equal to it and deletes the
      rest.  Apply the OVSDB ops first, then the flows.
    * ``local_vlans``: network id -> local VLAN id after this pass.
    * ``port_status``: desired port id -> "ACTIVE" | "DOWN" | "ERROR".
    * ``warnings``: configuration problems the agent should log.
    * ``port_errors``: port id -> why it is isolated (status ERROR, its VIF dead:
      an address or MAC no flow can carry, or flows the switch rejected).
    * ``wired``: the ports wired on br-int, for ``planner.port_flows`` (which flows
      are whose when the switch rejects a bundle).
    """

    ovsdb_ops: list[OvsdbOp] = field(default_factory=list)
    flows: dict[str, frozenset[FlowSpec]] = field(default_factory=dict)
    local_vlans: dict[str, int] = field(default_factory=dict)
    port_status: dict[str, PortStatus] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    port_errors: dict[str, str] = field(default_factory=dict)
    wired: tuple[WiredPort, ...] = ()
