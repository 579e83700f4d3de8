"""OpenFlow table ids, priorities and other constants of the OVS agent's pipelines.

Table numbers follow Neutron's (neutron-lib ``ovs_constants``) so flow dumps
read the same; the br-int layout is the "classic" one (Pike…Zed): table 0
jumps straight to table 60 (no Local-IP 30/31 or QoS 58/59 hops) and
table 60 does ``NORMAL`` at priority 3.

br-int::

    0   LOCAL_SWITCHING  trunk parents' tagged frames <-> their subports' spi- patches,
                         dead VLAN drop, per-port drop (dead ports, phys patches),
                         provider VLAN -> local VLAN, anti-spoof jumps, wired VIFs and
                         patch-tun -> 60, else drop (a port the agent has not wired yet
                         sends nothing, whatever its tag)
    23  CANARY           one drop flow; an empty table 23 means OVS restarted
    24  ARP_SPOOF        allowed ARP SPA / IPv6 NA target per port -> 25, else drop
    25  MAC_SPOOF        allowed (MAC, IPv4/IPv6 source) pairs -> 60; other IP drop;
                         allowed source MAC (non-IP) -> 60; else drop
    60  TRANSIENT        firewall entry per port (in_port -> 71 / 73, dst MAC -> 81); else NORMAL
    71  BASE_EGRESS      firewall: a port's own MAC/IP (anti-spoofing), ARP, ND, DHCP client;
                         IP -> conntrack lookup -> 72
    72  RULES_EGRESS     firewall: conntrack state + egress rules -> 73
    73  ACCEPT_OR_INGRESS  to a filtered port on this host -> its ingress (81); commit new -> 91
    81  BASE_INGRESS     firewall: ARP, ND, DHCP replies; IP -> conntrack lookup -> 82
    82  RULES_INGRESS    firewall: conntrack state + ingress rules -> output to the port
    91  ACCEPTED_EGRESS  -> 94;  92 ACCEPTED_INGRESS, 93 DROPPED: drop;  94: NORMAL
    (neutrino/agents/ovs/firewall.py has the details)

br-tun::

    0   in_port: patch-int -> 2, tunnel port -> 3/4/6 (gre/vxlan/geneve), else drop
    2   from br-int: ARP broadcast -> 21 (ARP responder), unicast -> 20, multicast -> 22
    3/4/6  tun_id -> push local VLAN -> 10
    10  learn the remote MAC into 20, output to patch-int
    20  unicast to a tunnel: learned (prio 1) / l2pop (prio 2); miss -> 22
    21  ARP responder (l2pop); miss -> 22
    22  flood to the network's tunnel ports; miss drop

physical bridges::

    0   from phy-<br>: local VLAN -> segmentation id / untag, NORMAL;
        other traffic from phy-<br> drop; everything else NORMAL
"""

from __future__ import annotations

# --- br-int tables ---------------------------------------------------------------------
INT_LOCAL_SWITCHING = 0
CANARY = 23
ARP_SPOOF = 24
MAC_SPOOF = 25
TRANSIENT = 60
# The OVS (conntrack) firewall's tables (neutrino.agents.ovs.firewall).
BASE_EGRESS = 71
RULES_EGRESS = 72
ACCEPT_OR_INGRESS = 73
BASE_INGRESS = 81
RULES_INGRESS = 82
ACCEPTED_EGRESS = 91
ACCEPTED_INGRESS = 92
DROPPED = 93
ACCEPTED_EGRESS_NORMAL = 94

# --- br-tun tables ---------------------------------------------------------------------
TUN_LOCAL_SWITCHING = 0
PATCH_LV_TO_TUN = 2
GRE_TUN_TO_LV = 3
VXLAN_TUN_TO_LV = 4
GENEVE_TUN_TO_LV = 6
LEARN_FROM_TUN = 10
UCAST_TO_TUN = 20
ARP_RESPONDER = 21
FLOOD_TO_TUN = 22

#: Tunnel type -> table that maps its tun_id to a local VLAN.
TUN_TABLE: dict[str, int] = {
    "gre": GRE_TUN_TO_LV,
    "vxlan": VXLAN_TUN_TO_LV,
    "geneve": GENEVE_TUN_TO_LV,
}
TUNNEL_TYPES = tuple(TUN_TABLE)

# --- physical bridge tables ------------------------------------------------------------
PHYS_LOCAL_SWITCHING = 0

# --- priorities ------------------------------------------------------------------------
# br-int table 0
PRIO_DEAD_VLAN = 65535
PRIO_ARP_SPOOF_JUMP = 10  # arp / icmp6 NA from a protected port -> 24
PRIO_MAC_SPOOF_JUMP = 9  # anything else from a protected port -> 25
PRIO_TRUNK_SUBPORT = 12  # trunk parent, VLAN V -> its subport's spi- patch; spi- -> parent tagged V
PRIO_TRUNK_TAGGED_DROP = 11  # any other tagged frame from a trunk parent
PRIO_PROVIDER_IN = 3  # int-<br>: segmentation id -> local VLAN
PRIO_PORT_DROP = 2  # dead VIF ports, and all other traffic from int-<br>
PRIO_PORT_ALLOW = 1  # a wired VIF / patch-tun -> 60
PRIO_DEFAULT = 0  # anything else: drop
# br-int tables 24 / 25
PRIO_SPOOF_ALLOW = 2  # 24: allowed SPA / NA target; 25: allowed source MAC
PRIO_IP_ALLOW = 4  # 25: allowed (MAC, IP source) pairs
PRIO_IP_DROP = 3  # 25: any other IPv4/IPv6 from the port
# br-int table 60
PRIO_NORMAL = 3
# physical bridges table 0
PRIO_PROVIDER_OUT = 4  # phy-<br>: local VLAN -> segmentation id / untag
# br-tun
PRIO_TUN_IN_PORT = 1
PRIO_TUN_TO_LV = 1
PRIO_ARP_BCAST = 1
PRIO_LEARN = 1
PRIO_L2POP_UCAST = 2  # above learned flows (priority 1)
PRIO_ARP_REPLY = 1
PRIO_FLOOD = 1

# --- VLANs -----------------------------------------------------------------------------
MIN_VLAN = 1
MAX_VLAN = 4094
DEAD_VLAN = 4095
#: OFPVID_PRESENT: set_field values for vlan_vid carry this bit.
OFPVID_PRESENT = 0x1000

# --- misc ------------------------------------------------------------------------------
LEARN_HARD_TIMEOUT = 300
#: Cookie of flows created by table 10's learn(): the executor must leave
#: flows with this cookie alone (they are not the agent's desired flows).
LEARNED_FLOW_COOKIE = 0x4E4C  # "NL"
#: Peer of a physical-bridge patch port until its drop flows are installed.
NONEXISTENT_PEER = "nonexistent-peer"
INT_PEER_PATCH_PORT = "patch-tun"  # on br-int
#: Name prefixes of a trunk subport's patch pair on br-int: ``spt-`` is the subport's VIF,
#: ``spi-`` its peer, which carries the subport's frames to and from the parent's VIF.
SUBPORT_VIF_PREFIX = "spt-"
SUBPORT_PEER_PREFIX = "spi-"
TUN_PEER_PATCH_PORT = "patch-int"  # on br-tun
VXLAN_UDP_PORT = 4789
