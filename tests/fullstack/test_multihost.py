"""Several hosts on one machine (neutrino.testing.cloud): one API server, two hosts
(compute1, compute2) each in its own namespace with its own OVS and its own OVS and
compute agents, joined by a VXLAN underlay and a physnet wire.

Servers are booted with openstacksdk as admin and pinned to a host with Nova's
``availability_zone="nova:<host>"``; traffic is checked from inside the instances
and seen on the fabric's wires with tcpdump.

    mh-vx    VXLAN 10.31.0.0/24 (pool .10-.49)     vx1@compute1  vx2@compute2
    mh-iso   VXLAN 10.31.0.0/24 (pool .50-.89)                   iso@compute2
    mh-vlan  VLAN 150 on physnet 10.32.0.0/24 (.10-.49)  vl1@compute1  vl2@compute2
    mh-flat  flat on physnet     10.32.0.0/24 (.50-.89)  fl1@compute1  fl2@compute2

The overlapping CIDRs make the isolation checks real: the addresses are on-link,
only the network (VNI, VLAN tag) separates them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neutrino.agents.ovs.planner import tunnel_port_name
from neutrino.agents.ovs.tables import FLOOD_TO_TUN, PRIO_L2POP_UCAST, UCAST_TO_TUN
from neutrino.system import netns as netns_mod
from neutrino.system import process
from neutrino.testing.cloud import NEUTRINO, Cloud

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        any(shutil.which(b) is None for b in ("ovs-vswitchd", "ovsdb-server", "tcpdump", "ip", "ping")),
        reason="Open vSwitch / iproute2 / tcpdump not installed",
    ),
]

LAYOUT = {  # server -> (network, host)
    "vx1": ("mh-vx", "compute1"),
    "vx2": ("mh-vx", "compute2"),
    "iso": ("mh-iso", "compute2"),
    "vl1": ("mh-vlan", "compute1"),
    "vl2": ("mh-vlan", "compute2"),
    "fl1": ("mh-flat", "compute1"),
    "fl2": ("mh-flat", "compute2"),
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = Cloud(tmp_path_factory.mktemp("multihost"))
    try:
        c.start()
        yield c
    finally:
        c.teardown()


@pytest.fixture(scope="module")
def env(cloud: Cloud) -> dict:
    """Networks and servers of the module (see the docstring), all ACTIVE."""
    conn = cloud.connect("admin")
    nets = {
        "mh-vx": conn.network.create_network(name="mh-vx"),
        "mh-iso": conn.network.create_network(name="mh-iso"),
        "mh-vlan": conn.network.create_network(
            name="mh-vlan",
            provider_network_type="vlan",
            provider_physical_network="physnet",
            provider_segmentation_id=150,
        ),
        "mh-flat": conn.network.create_network(
            name="mh-flat", provider_network_type="flat", provider_physical_network="physnet"
        ),
    }
    for name, cidr, pool in (
        ("mh-vx", "10.31.0.0/24", (10, 49)),
        ("mh-iso", "10.31.0.0/24", (50, 89)),
        ("mh-vlan", "10.32.0.0/24", (10, 49)),
        ("mh-flat", "10.32.0.0/24", (50, 89)),
    ):
        base = cidr.rsplit(".", 1)[0]
        conn.network.create_subnet(
            network_id=nets[name].id,
            ip_version=4,
            cidr=cidr,
            name=name,
            allocation_pools=[{"start": f"{base}.{pool[0]}", "end": f"{base}.{pool[1]}"}],
        )
    image = conn.image.find_image("cirros")
    flavor = conn.compute.find_flavor("m1.nano")
    servers = {
        name: conn.compute.create_server(
            name=name,
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": nets[net].id}],
            availability_zone=f"nova:{host}",
        )
        for name, (net, host) in LAYOUT.items()
    }
    deadline = time.monotonic() + 40
    pending = set(servers)
    while pending:
        for name in sorted(pending):
            s = conn.compute.get_server(servers[name].id)
            assert s.status != "ERROR", (name, s.fault)
            if s.status == "ACTIVE":
                assert s.compute_host == LAYOUT[name][1], (name, s.compute_host)
                servers[name] = s
                pending.discard(name)
        if pending:
            assert time.monotonic() < deadline, f"not ACTIVE: {sorted(pending)}\n" + "\n".join(
                f"--- {h.name} {k} ---\n{h.log(k)[-2000:]}" for h in cloud.hosts.values() for k in h.agents
            )
            time.sleep(0.3)
    ports = {name: next(conn.network.ports(device_id=s.id)) for name, s in servers.items()}
    return {
        "conn": conn,
        "nets": {n: conn.network.get_network(net.id) for n, net in nets.items()},
        "servers": servers,
        "ports": ports,
        "ip": {n: p.fixed_ips[0]["ip_address"] for n, p in ports.items()},
        "mac": {n: p.mac_address for n, p in ports.items()},
    }


def _sid(env: dict, name: str) -> str:
    return env["servers"][name].id


def _ping_captured(cloud: Cloud, env: dict, src: str, dst: str, dev: str, bpf: list[str]) -> list[str]:
    """Ping ``src`` -> ``dst`` (retrying up to 20 s) while tcpdump runs on the fabric's ``dev``."""
    # --immediate-mode: packets reach tcpdump as they arrive, not when a ring block fills
    # or times out (a stop right after a fast ping would lose them).
    cap = cloud.fabric.capture(dev, bpf, extra=("-e", "--immediate-mode"))
    try:
        ok = cloud.reaches(_sid(env, src), env["ip"][dst])
        # One more exchange once the path is warm, so the capture surely holds an echo pair.
        cloud.exec(_sid(env, src), ["ping", "-n", "-c", "1", "-W", "1", env["ip"][dst]], timeout=5)
    finally:
        lines = cap.stop()
    assert ok, f"{src} ({env['ip'][src]}) cannot reach {dst} ({env['ip'][dst]})"
    return lines


def _outputs(actions: str) -> set[int]:
    return {int(p) for p in re.findall(r"output:(\d+)", actions)}


def test_vxlan_across_hosts_with_l2population(cloud: Cloud, env: dict) -> None:
    net = env["nets"]["mh-vx"]
    assert net.provider_network_type == "vxlan" and net.mtu == 1450
    vni = net.provider_segmentation_id
    fab = cloud.fabric
    lines = _ping_captured(cloud, env, "vx1", "vx2", fab.underlay_bridge, ["udp", "port", "4789"])
    c1, c2 = cloud.hosts["compute1"], cloud.hosts["compute2"]
    assert any(f"{c1.vtep_ip}." in ln and f"> {c2.vtep_ip}.4789: VXLAN" in ln and f"vni {vni}" in ln for ln in lines), (
        lines
    )
    assert any(f"{env['ip']['vx1']} > {env['ip']['vx2']}: ICMP echo request" in ln for ln in lines), lines
    assert any(f"{env['ip']['vx2']} > {env['ip']['vx1']}: ICMP echo reply" in ln for ln in lines), lines
    # `neutrino console` reaches the same instance through the API server's state dir.
    r = subprocess.run(
        [
            *NEUTRINO,
            "console",
            "--state-dir",
            str(cloud.server_dir),
            "vx1",
            "--",
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "2",
            env["ip"]["vx2"],
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stdout + r.stderr

    # l2population: on each host, br-tun floods the network's traffic only to the other
    # host's VTEP, and has a unicast entry for the remote port's MAC behind that VTEP.
    iso_vni = env["nets"]["mh-iso"].provider_segmentation_id
    for here, there, remote in ((c1, c2, "vx2"), (c2, c1, "vx1")):
        tun_ports = {p.name: p.ofport for p in here.node.ovs.ports("br-tun") if p.name.startswith("vxlan-")}
        to_there = tun_ports.get(tunnel_port_name("vxlan", there.vtep_ip))
        assert to_there is not None and set(tun_ports) == {tunnel_port_name("vxlan", there.vtep_ip)}, tun_ports
        floods = here.node.of.dump("br-tun", table=FLOOD_TO_TUN)
        net_floods = [f for f in floods if f"set_field:{vni:#x}->tun_id" in f.actions]
        assert len(net_floods) == 1 and _outputs(net_floods[0].actions) == {to_there}, floods
        # mh-iso has a port on compute2 only: nobody floods it anywhere.
        assert not [f for f in floods if f"set_field:{iso_vni:#x}->tun_id" in f.actions], floods
        ucast = [
            f
            for f in here.node.of.dump("br-tun", table=UCAST_TO_TUN)
            if f.priority == PRIO_L2POP_UCAST and f"dl_dst={env['mac'][remote]}" in f.match
        ]
        assert len(ucast) == 1 and _outputs(ucast[0].actions) == {to_there}, ucast
        assert f"set_field:{vni:#x}->tun_id" in ucast[0].actions


def test_vlan_provider_network_across_hosts_is_tagged_on_the_wire(cloud: Cloud, env: dict) -> None:
    net = env["nets"]["mh-vlan"]
    assert (net.provider_network_type, net.provider_physical_network, net.provider_segmentation_id) == (
        "vlan",
        "physnet",
        150,
    )
    lines = _ping_captured(cloud, env, "vl1", "vl2", cloud.fabric.physnet_bridge, [])
    echo = [ln for ln in lines if f"{env['ip']['vl1']} > {env['ip']['vl2']}: ICMP echo request" in ln]
    assert echo and all("802.1Q" in ln and "vlan 150," in ln for ln in echo), lines
    reply = [ln for ln in lines if f"{env['ip']['vl2']} > {env['ip']['vl1']}: ICMP echo reply" in ln]
    assert reply and all("vlan 150," in ln for ln in reply), lines


def test_flat_provider_network_across_hosts_is_untagged_on_the_wire(cloud: Cloud, env: dict) -> None:
    net = env["nets"]["mh-flat"]
    assert (net.provider_network_type, net.provider_physical_network) == ("flat", "physnet")
    lines = _ping_captured(cloud, env, "fl1", "fl2", cloud.fabric.physnet_bridge, [])
    echo = [ln for ln in lines if f"{env['ip']['fl1']} > {env['ip']['fl2']}: ICMP echo request" in ln]
    assert echo and not any("802.1Q" in ln for ln in echo), lines


def test_servers_on_different_networks_are_isolated(cloud: Cloud, env: dict) -> None:
    # Same CIDR, different VXLAN networks, different hosts; and VLAN 150 vs flat on one wire.
    pairs = [("iso", "vx1"), ("vx1", "iso"), ("vl1", "fl2"), ("fl2", "vl1")]
    with ThreadPoolExecutor(len(pairs)) as pool:
        got = list(pool.map(lambda p: cloud.reaches(_sid(env, p[0]), env["ip"][p[1]], within=2), pairs))
    assert not any(got), dict(zip(pairs, got, strict=True))
    # Positive control: the same instances do reach their own network's peers.
    assert cloud.reaches(_sid(env, "fl2"), env["ip"]["fl1"])


def test_teardown_removes_everything(cloud: Cloud, env: dict) -> None:
    """Servers deleted (agents remove the instances), agents stopped, server purged,
    fabric gone: no namespace, process or directory of ours is left."""
    instance_ns = {cloud.instance_netns(s.id) for s in env["servers"].values()}
    ours = instance_ns | {h.netns for h in cloud.hosts.values()} | {cloud.fabric.netns}
    assert ours <= set(netns_mod.list_netns())
    ovs_pids = [p for h in cloud.hosts.values() for p in h.node.daemons.pids()]
    agent_pids = [process.pid_of(s) for h in cloud.hosts.values() for s in h.agents.values()]
    assert len(ovs_pids) == 4 and all(agent_pids)
    server_dir: Path = cloud.server_dir
    t0 = time.monotonic()
    cloud.teardown()
    assert time.monotonic() - t0 < 20
    assert cloud.not_removed_by_agents == []  # the compute agents removed their instances
    assert cloud.leftovers() == []
    assert not ours & set(netns_mod.list_netns())
    assert not any(process.is_running(p) for p in ovs_pids + agent_pids if p is not None)
    assert not server_dir.exists()
