"""Re-record the golden files of the neutrino.system unit tests from a real OVS (root).

    sudo .venv/bin/python tests/golden/capture_system.py

Builds a 2-host fabric with neutrino.testing.multihost, the Neutron-like
topology of tests/functional/_topology.py, pings across it (so br-tun learns a
flow), and writes the tools' raw outputs here:

* ``ofctl-dump-br-{tun,int,phys}.txt``: ``ovs-ofctl -O OpenFlow13 dump-flows --no-stats --no-names``
* ``ofctl-dump-misc.txt`` / ``-names.txt``: the MISC_FLOWS below, dumped without / with ``--names``
* ``ofctl-canonical.tsv``: ``<flow as written>\\t<line OVS dumped for it>``
* ``vsctl-observe.json``: ``ovs-vsctl <neutrino.system.ovsdb.observe_args()>``
* ``ip-link.json``, ``ip-addr.json``, ``ip-route.json``: ``ip -j [-d] ...`` in host h1's netns
* ``appctl-trace.txt``: ``ovs-appctl ofproto/trace`` of an ARP request from vm1
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from neutrino.system.openflow import OpenFlow  # noqa: E402 - imported after sys.path names the repository
from neutrino.system.ovsdb import AddBridge, AddPort, SetController, SetPort, observe_args  # noqa: E402 - imported after sys.path names the repository
from neutrino.testing.multihost import Fabric  # noqa: E402 - imported after sys.path names the repository
from tests.functional import _topology as topo  # noqa: E402 - imported after sys.path names the repository

HERE = Path(__file__).parent

#: Written in assorted non-canonical ways on purpose (field order, aliases,
#: bases, masks); one (table, priority) each.  In ports are numbers (1 = m1, 2 = m2).
MISC_FLOWS = """\
table=30,cookie=0xdeadbeef12345678,idle_timeout=60,priority=40000,tcp,reg5=0x5,in_port=1,nw_src=10.0.0.0/24,tp_dst=80 actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:40
table=30,priority=100,tcp,tp_dst=22,nw_dst=10.0.0.5 actions=drop
table=30,send_flow_rem,priority=5,udp,tp_src=68,tp_dst=67 actions=CONTROLLER:65535
table=30,hard_timeout=30,check_overlap,priority=6,udp,tp_src=67 actions=drop
table=31,priority=10,ct_state=+est-rel+trk,ip actions=NORMAL
table=31,priority=9,ct_state=-trk,ipv6 actions=ct(table=32,zone=NXM_NX_REG6[0..15])
table=31,priority=8,icmp6,icmp_type=136,nd_target=fe80::1 actions=NORMAL
table=31,priority=7,icmp,icmp_type=8 actions=NORMAL
table=31,priority=6,dl_type=0x88cc actions=drop
table=31,priority=5,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4099->vlan_vid,goto_table:58
table=31,priority=4,ip,dl_type=0x0800,nw_proto=47 actions=drop
table=31,priority=3,conj_id=10,ip actions=drop
table=31,priority=2,reg6=0x1/0xff,metadata=0x2,dl_src=fa:16:3e:00:00:00/ff:ff:ff:00:00:00 actions=drop
table=31,priority=1,tcp,tcp_flags=+syn-ack actions=drop
table=32,priority=40,ip,nw_src=10.1.0.0/16 actions=conjunction(10,1/2)
table=40,priority=1,reg5=0,tun_id=0,metadata=0 actions=drop
table=40,priority=2,reg5=5,tun_id=100/0xff,metadata=0x0/0xff actions=drop
table=40,priority=3,tcp,tp_src=0x10/0xfff0,tp_dst=443 actions=drop
table=40,priority=4,ct_zone=5,ct_mark=0x1/0x1,ip actions=drop
table=40,priority=5,in_port=2 actions=output:1
table=40,priority=7,ipv6,ipv6_src=2001:db8:0:0::1/64,ipv6_dst=2001:DB8::5 actions=drop
table=40,priority=8,ip,nw_src=10.0.0.5/255.255.255.0,nw_dst=10.0.0.5/32 actions=drop
table=40,priority=9,dl_vlan_pcp=3,dl_vlan=5 actions=drop
table=40,priority=10,vlan_tci=0x1000/0x1000 actions=drop
table=40,priority=11,dl_src=FA:16:3E:00:00:01/ff:ff:ff:ff:ff:ff,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop
table=40,priority=12,dl_type=0x0800,nw_proto=6 actions=drop
table=40,priority=13,eth_type=0x86dd,ip_proto=58,icmpv6_type=135 actions=drop
table=40,priority=14,arp_op=1,arp,arp_spa=10.0.0.1 actions=drop
table=40,priority=15,ip,nw_proto=99,nw_tos=16,nw_ttl=3 actions=drop
table=40,priority=16,udp6,tp_dst=547 actions=drop
table=40,priority=17,ct_state=+trk+new,ct_zone=0x10 actions=drop
table=40,priority=18,dl_vlan=0x10 actions=mod_vlan_vid:5,output:2
table=40,priority=19,in_port=LOCAL actions=drop
table=40,priority=20,in_port=65534 actions=drop
table=40,priority=21,ip,nw_frag=yes actions=drop
table=40,priority=22,reg0=0xffffffff,pkt_mark=0x1,tun_src=1.2.3.4 actions=drop
table=40,priority=23,tcp,tcp_flags=+syn-ack,ct_state=-trk actions=drop
table=40,priority=24,vlan_tci=0x0000 actions=drop
table=40,priority=25,icmp,icmp_type=3,icmp_code=4 actions=drop
table=40,priority=26,tun_id=0x64/0xffffffffffffffff actions=drop
table=40,priority=27,ipv6,ipv6_src=::1,nw_proto=17 actions=drop
table=40,priority=28,ip,nw_src=0.0.0.0/0 actions=drop
table=40,priority=29,mpls,mpls_label=5 actions=drop
table=40,priority=30,dl_dst=ff:ff:ff:ff:ff:ff,dl_src=00:00:00:00:00:00/01:00:00:00:00:00,in_port=1 actions=drop
table=40,priority=31,arp,dl_vlan=1,arp_tpa=10.0.0.5 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:11:22:33,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e112233->NXM_NX_ARP_SHA[],load:0xa000005->NXM_OF_ARP_SPA[],in_port
table=40,priority=32,udp,nw_dst=10.0.0.0/8,tp_dst=4789,dl_src=fa:16:3e:00:00:01,in_port=2,reg6=0x3 actions=drop
table=40,priority=33,eth_src=fa:16:3e:00:00:02,ip_src=10.2.3.4,udp_dst=53,ip_proto=17,eth_type=0x0800 actions=drop
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Fabric("ntgold", tmp) as fab:
        h1 = fab.add_host("h1", "192.168.99.1/24")
        h2 = fab.add_host("h2", "192.168.99.2/24")
        topo.build(h1, [h2])
        topo.build(h2, [h1])
        vm1 = h1.plug(
            "vm1",
            ip="10.99.0.1/24",
            mac="fa:16:3e:00:00:01",
            mtu=1450,
            tag=topo.LVID_VXLAN,
            kind="internal",
            port="tapvm1",
            external_ids={
                "iface-id": "4f2a1b3c-9d8e-4a1b-8c2d-0123456789ab",
                "attached-mac": "fa:16:3e:00:00:01",
                "iface-status": "active",
            },
        )
        h1.ovs.transact(
            [
                SetPort(
                    "tapvm1",
                    other_config={"net_uuid": "n1", "segmentation_id": "100", "network_type": "vxlan", "tag": "1"},
                )
            ]
        )
        h2.plug(
            "vm2",
            ip="10.99.0.2/24",
            mac="fa:16:3e:00:00:02",
            mtu=1450,
            tag=topo.LVID_VXLAN,
            kind="internal",
            port="tapvm2",
        )
        vm1.ping("10.99.0.2", count=2)

        def dump(of: OpenFlow, bridge: str, names: bool = False) -> str:
            return of.ovs.run(of.ofctl_argv("dump-flows", bridge, names=names)).stdout

        for br in ("br-tun", "br-int", "br-phys"):
            (HERE / f"ofctl-dump-{br}.txt").write_text(dump(h1.of, br))

        h1.ovs.transact(
            [
                AddBridge(
                    "br-misc",
                    datapath_type="netdev",
                    fail_mode="secure",
                    protocols=topo.PROTOCOLS,
                    other_config={"disable-in-band": "true"},
                    external_ids={"bridge-id": "br-misc"},
                ),
                SetController("br-misc", ("tcp:127.0.0.1:6633",)),
                AddPort("br-misc", "m1", type="internal"),
                AddPort("br-misc", "m_2", type="internal"),
                AddPort("br-misc", "tapiso", type="internal", tag=4095, vlan_mode="trunk", trunks=(4095,)),
            ]
        )
        h1.ovs.run(h1.of.ofctl_argv("add-flows", "br-misc", "-"), input=MISC_FLOWS)
        misc = dump(h1.of, "br-misc")
        (HERE / "ofctl-dump-misc.txt").write_text(misc)
        (HERE / "ofctl-dump-misc-names.txt").write_text(dump(h1.of, "br-misc", names=True))
        by_key = {}
        for line in misc.splitlines():
            table = line.split("table=")[1].split(",")[0] if "table=" in line else "0"
            prio = line.split("priority=")[1].split(",")[0].split(" ")[0]
            by_key[(table, prio)] = line.strip()
        pairs = []
        for line in MISC_FLOWS.splitlines():
            table = line.split("table=")[1].split(",")[0]
            prio = line.split("priority=")[1].split(",")[0].split(" ")[0]
            pairs.append(f"{line}\t{by_key[(table, prio)]}")
        (HERE / "ofctl-canonical.tsv").write_text("\n".join(pairs) + "\n")

        (HERE / "vsctl-observe.json").write_text(h1.ovs.vsctl(*observe_args()))
        (HERE / "ip-link.json").write_text(h1.exec(["ip", "-j", "-d", "link", "show"]).stdout)
        (HERE / "ip-addr.json").write_text(h1.exec(["ip", "-j", "addr", "show"]).stdout)
        h1.exec(["ip", "route", "add", "10.50.0.0/16", "via", "192.168.99.2"])
        (HERE / "ip-route.json").write_text(h1.exec(["ip", "-j", "-4", "route", "show", "table", "main"]).stdout)
        trace = h1.ovs.appctl(
            "ofproto/trace",
            "br-int",
            f"in_port={h1.ovs.observe().ports['tapvm1'].ofport},dl_src=fa:16:3e:00:00:01,"
            "dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_spa=10.99.0.1,arp_tpa=10.99.0.2,arp_op=1",
        )
        (HERE / "appctl-trace.txt").write_text(trace)
        print("recorded into", HERE, "; leftovers after teardown follow")
    print(fab.leftovers())


if __name__ == "__main__":
    main()
