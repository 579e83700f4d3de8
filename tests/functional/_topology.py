"""Neutron-like bridges and flows on harness hosts, built only through neutrino.system.

Not a test module: shared by the functional tests and tests/golden/capture_system.py.
Local VLANs: 1 = VXLAN VNI 100, 2 = provider VLAN 150, 3 = flat.  Flow text is
written the way OVS prints it for OpenFlow 1.3, with ofport numbers, so the
desired flows compare equal to ``OpenFlow.dump()``.
"""

from __future__ import annotations

from neutrino.system.oftext import Flow
from neutrino.system.ovsdb import AddBridge, AddPort
from neutrino.testing.multihost import PHYSNET_DEV, Host, vxlan_port_name
from neutrino.testing.openflow import parse_flow_mod, sort_flows

PROTOCOLS = ("OpenFlow10", "OpenFlow13")
VNI = 100
LVID_VXLAN, LVID_VLAN, LVID_FLAT = 1, 2, 3
VLAN_ID = 150
COOKIE = 0x5EED


def secure_bridge(name: str) -> AddBridge:
    return AddBridge(name, datapath_type="netdev", fail_mode="secure", protocols=PROTOCOLS)


def tunnel_ops(host: Host, peers: list[Host]) -> list:
    """br-int + br-tun + patch pair + one vxlan port per peer (key=flow)."""
    ops = [
        secure_bridge("br-int"),
        secure_bridge("br-tun"),
        AddPort("br-int", "patch-tun", type="patch", options={"peer": "patch-int"}),
        AddPort("br-tun", "patch-int", type="patch", options={"peer": "patch-tun"}),
    ]
    for peer in peers:
        ops.append(
            AddPort(
                "br-tun",
                vxlan_port_name(peer.vtep.ip),
                type="vxlan",
                options={
                    "remote_ip": str(peer.vtep.ip),
                    "local_ip": str(host.vtep.ip),
                    "in_key": "flow",
                    "out_key": "flow",
                    "df_default": "true",
                },
            )
        )
    return ops


def physnet_ops() -> list:
    return [
        secure_bridge("br-phys"),
        AddPort("br-phys", PHYSNET_DEV),
        AddPort("br-int", "int-br-phys", type="patch", options={"peer": "phy-br-phys"}),
        AddPort("br-phys", "phy-br-phys", type="patch", options={"peer": "int-br-phys"}),
    ]


def _flows(lines: list[str]) -> list[Flow]:
    return sort_flows(parse_flow_mod(line) for line in lines)


def br_tun_flows(ofports: dict[str, int], peers: list[Host]) -> list[Flow]:
    patch = ofports["patch-int"]
    tuns = [ofports[vxlan_port_name(p.vtep.ip)] for p in peers]
    lines = [f"table=0,priority=1,in_port={patch} actions=resubmit(,2)"]
    lines += [f"table=0,priority=1,in_port={t} actions=resubmit(,4)" for t in tuns]
    lines += [
        "table=0,priority=0 actions=drop",
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)",
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,22)",
        f"table=4,priority=1,tun_id={VNI:#x} "
        f"actions=push_vlan:0x8100,set_field:{4096 + LVID_VXLAN}->vlan_vid,resubmit(,10)",
        "table=4,priority=0 actions=drop",
        "table=10,priority=1 actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x1,"
        "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
        f"load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:{patch}",
        "table=20,priority=0 actions=resubmit(,22)",
        f"table=22,priority=1,dl_vlan={LVID_VXLAN} actions=pop_vlan,set_field:{VNI:#x}->tun_id,"
        + ",".join(f"output:{t}" for t in tuns),
        "table=22,priority=0 actions=drop",
    ]
    return _flows(lines)


def br_int_flows(ofports: dict[str, int], physnet: bool) -> list[Flow]:
    lines = ["table=0,priority=0 actions=NORMAL", "table=23,priority=0 actions=drop"]
    if physnet:
        p = ofports["int-br-phys"]
        lines += [
            f"table=0,priority=3,in_port={p},dl_vlan={VLAN_ID} actions=set_field:{4096 + LVID_VLAN}->vlan_vid,NORMAL",
            f"table=0,priority=3,in_port={p},vlan_tci=0x0000/0x1fff "
            f"actions=push_vlan:0x8100,set_field:{4096 + LVID_FLAT}->vlan_vid,NORMAL",
            f"table=0,priority=2,in_port={p} actions=drop",
        ]
    return _flows(lines)


def br_phys_flows(ofports: dict[str, int]) -> list[Flow]:
    p = ofports["phy-br-phys"]
    return _flows(
        [
            f"table=0,priority=4,in_port={p},dl_vlan={LVID_VLAN} actions=set_field:{4096 + VLAN_ID}->vlan_vid,NORMAL",
            f"table=0,priority=4,in_port={p},dl_vlan={LVID_FLAT} actions=pop_vlan,NORMAL",
            f"table=0,priority=2,in_port={p} actions=drop",
            "table=0,priority=0 actions=NORMAL",
        ]
    )


def ofports(host: Host) -> dict[str, int]:
    return {name: port.ofport for name, port in host.ovs.observe().ports.items() if port.ofport is not None}


def build(host: Host, peers: list[Host], *, physnet: bool = True) -> dict[str, list[Flow]]:
    """Create the bridges (one OVSDB transaction) and install every bridge's flows
    (one bundle per bridge, cookie ``COOKIE``).  Returns the desired flows per bridge."""
    ops = tunnel_ops(host, peers) + (physnet_ops() if physnet else [])
    host.ovs.transact(ops)
    ports = ofports(host)
    desired = {"br-int": br_int_flows(ports, physnet), "br-tun": br_tun_flows(ports, peers)}
    if physnet:
        desired["br-phys"] = br_phys_flows(ports)
    for bridge, flows in desired.items():
        host.of.replace_cookie_flows(bridge, COOKIE, flows)
    return {b: [f.with_cookie(COOKIE) for f in flows] for b, flows in desired.items()}
