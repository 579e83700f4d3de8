"""Stateless security groups end to end: a group created through the API with
``stateful=False`` reaches the OVS agent through the change feed, and the
instance's traffic is filtered without conntrack: replies pass only with a
rule for their direction, and the all-in-one's datapath holds no conntrack
entry for the instance (a stateful group, the control, leaves one).  Needs root.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from neutrino import config
from neutrino.agents.ovs.host_config import host_netns, ovs_rundir
from tests.fullstack.helpers import openrc_connect, start_aio
from tests.fullstack.test_firewall import Cloud, blocked, eventually, ping

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "ovs-vswitchd"], capture_output=True).returncode, reason="Open vSwitch not installed"
    ),
]

LAB = f"lab-s{uuid.uuid4().hex[:6]}"
LAB_IP = "172.16.0.1"


def _appctl(state, *argv: str) -> str:
    """``ovs-appctl`` against the all-in-one's own Open vSwitch."""
    cfg = config.load(state / "neutrino.conf", state)
    ns = host_netns(cfg)
    cmd = [*(["ip", "netns", "exec", ns] if ns else []), "env", f"OVS_RUNDIR={ovs_rundir(cfg)}", "ovs-appctl", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout


def tracked(state, ip: str) -> list[str]:
    """The datapath's conntrack entries naming ``ip``."""
    return [
        line
        for line in _appctl(state, "dpctl/dump-conntrack").splitlines()
        if re.search(rf"(src|dst)={re.escape(ip)}\b", line)
    ]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    gen = start_aio(tmp_path_factory, {("lab", "host_netns"): LAB})
    state, demo = next(gen)
    try:
        admin = openrc_connect(state / "admin-openrc")
        net = admin.network.create_network(
            name="sl-flat", provider_network_type="flat", provider_physical_network="physnet", is_shared=True
        )
        admin.network.create_subnet(
            network_id=net.id,
            ip_version=4,
            cidr="172.16.0.0/24",
            gateway_ip=LAB_IP,
            allocation_pools=[{"start": "172.16.0.100", "end": "172.16.0.150"}],
        )
        c = Cloud(state, admin, demo)
        c.default = demo.network.find_security_group("default", project_id=demo.current_project_id).id
        c.boot("vm1", net.id)
        yield c
    finally:
        try:
            next(gen)
        except StopIteration:
            pass


def test_stateless_group_filters_both_ways_without_conntrack(cloud: Cloud) -> None:
    vm1 = cloud.ip("vm1")
    # Control: in the (stateful) default group, the instance's own ping out is tracked.
    assert eventually(lambda: ping(cloud.ns("vm1"), LAB_IP), 40)
    assert tracked(cloud.state, vm1) != []

    demo = cloud.demo.network
    bare = demo.create_security_group(name="bare", stateful=False)
    assert bare.stateful is False
    for rule in list(demo.security_group_rules(security_group_id=bare.id)):
        demo.delete_security_group_rule(rule)  # the seeded egress rules
    cloud.rule(bare.id, direction="ingress", ethertype="IPv4", protocol="icmp")
    out = cloud.rule(bare.id, direction="egress", ethertype="IPv4", protocol="icmp")
    demo.update_port(cloud.port("vm1"), security_group_ids=[bare.id])

    # ICMP both ways allowed: the outside reaches the instance, and nothing is tracked.
    assert eventually(lambda: ping(LAB, vm1), 30)
    _appctl(cloud.state, "dpctl/flush-conntrack")
    assert all(ping(LAB, vm1) for _ in range(3))
    assert tracked(cloud.state, vm1) == []

    # Without the egress rule the replies are dropped (a stateful group would let them out).
    demo.delete_security_group_rule(out)
    assert blocked(lambda: ping(LAB, vm1), 30)
    assert tracked(cloud.state, vm1) == []
