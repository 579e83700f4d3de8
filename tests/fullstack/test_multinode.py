"""Four nodes by role on one machine (``neutrino.testing.nodes``): controller (API
servers, two workers, PostgreSQL when installed), network (DHCP, L3, metadata and
OVS agents; the lab host on its br-phys), compute1 and compute2 (OVS and compute
agents), each a namespace running ``neutrino up --role ...`` with its own private
Open vSwitch, joined by a management network (HTTPS, the agents with their node's
client certificate from a bundle the controller's CA issued), a VXLAN underlay and a physnet
wire.  ``neutrino demo`` runs on the controller and every check passes; the wires
show east-west traffic crossing the tunnel between the computes and north-south
traffic crossing the network node; several API workers serve one database
consistently; ``demo --clean`` and the teardown leave nothing.

The database is a throwaway PostgreSQL cluster over a unix socket (the API server
runs in the controller's namespace, where the pg tier's 127.0.0.1 server is not
reachable); without the PostgreSQL server binaries it is SQLite and the test says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from neutrino.cli import process as cli_process
from neutrino.pki import certs
from neutrino.system import netns as netns_mod
from neutrino.testing.nodes import AGENT_TYPES, Nodes
from neutrino.testing.postgres import Postgres

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        any(
            shutil.which(b) is None
            for b in ("ovs-vswitchd", "dnsmasq", "haproxy", "iptables-restore", "tcpdump", "nsenter", "curl")
        ),
        reason="Open vSwitch / dnsmasq / haproxy / iptables / tcpdump / nsenter / curl not installed",
    ),
]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    n = Nodes(tmp_path_factory.mktemp("multinode"))
    try:
        n.start()
        yield n
    finally:
        n.teardown()


@pytest.fixture(scope="module")
def demo(nodes: Nodes) -> dict:
    r = nodes.neutrino("controller", "demo", "--json", timeout=300)
    assert r.stdout, r.stderr[-3000:]
    out = json.loads(r.stdout)
    out["returncode"], out["stderr"] = r.returncode, r.stderr
    return out


def _ping(server_id: str, dst: str, within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while True:
        r = subprocess.run(
            ["ip", "netns", "exec", f"vm-{server_id}", "ping", "-n", "-c", "1", "-W", "1", dst],
            capture_output=True,
            timeout=10,
        )
        if r.returncode == 0:
            return True
        if time.monotonic() > deadline:
            return False


def _captured(nodes: Nodes, dev: str, bpf: list[str], traffic) -> list[str]:
    """tcpdump on the fabric's ``dev`` while ``traffic()`` runs (it must return True)."""
    cap = nodes.fabric.capture(dev, bpf, extra=("-e", "--immediate-mode"))
    try:
        ok = traffic()
        ok = traffic() and ok  # once more on a warm path, so the capture surely holds a pair
    finally:
        lines = cap.stop()
    assert ok, "the traffic did not get through"
    return lines


def test_each_node_runs_the_agents_of_its_role(nodes: Nodes) -> None:
    agents = nodes.api("GET", "/v2.0/agents").json()["agents"]
    by_host: dict[str, set[str]] = {}
    for a in agents:
        assert a["alive"], a
        by_host.setdefault(a["host"], set()).add(a["agent_type"])
    assert by_host == {n.name: AGENT_TYPES[n.spec.role] for n in nodes.nodes.values() if AGENT_TYPES[n.spec.role]}
    # Agent nodes run no API server, the controller runs no agent and no Open vSwitch.
    ctl = nodes.controller
    assert sorted(p.stem for p in (ctl.state_dir / "run").glob("*.pid")) == ["server"]
    for n in nodes.nodes.values():
        if n is not ctl:
            assert not (n.state_dir / "run" / "server.pid").exists()
            assert f"server_url = {nodes.network_url}" in (n.state_dir / "neutrino.conf").read_text()
            # Its agents present the node's certificate from its bundle (CN=<host>, OU=<role>): no
            # password on the node (neither the admin's nor the service user's), and the CA's keys
            # stay on the controller.
            pki = n.state_dir / "pki"
            assert (pki / "node.pem").exists() and (pki / "node.key").stat().st_mode & 0o077 == 0
            assert (pki / "ca.pem").read_bytes() == (ctl.state_dir / "pki" / "ca.pem").read_bytes()
            assert not (pki / "ca").exists() and not (pki / "server.key").exists()
            assert not (n.state_dir / "agent-openrc").exists() and not (n.state_dir / "admin-openrc").exists()
            subject = certs.describe(certs.check_pair(pki / "node.pem", pki / "node.key")[0]).subject
            assert f"CN={n.name}" in subject and f"OU={n.spec.role}" in subject, subject
    # The controller's server certificate names the management address the nodes reach it by.
    server = certs.describe(certs.load_chain(ctl.state_dir / "pki" / "server.pem")[0])
    assert f"IP:{ctl.mgmt_ip}" in server.sans, server.sans
    # Two API server processes (api_workers = 2) behind one address.
    rec = cli_process.PidFile(ctl.state_dir / "run" / "server.pid").read()
    assert len(rec.processes()) == 2, rec.processes()
    # `status` on an agent node: its agents run and the controller's API answers there.
    status = nodes.neutrino("compute1", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "compute-agent" in status.stdout and nodes.network_url in status.stdout and "answers" in status.stdout
    assert nodes.network_url.startswith("https://"), nodes.network_url  # TLS everywhere, the default
    check = nodes.neutrino("controller", "check-config")
    assert check.returncode == 0 and "roles         controller" in check.stdout, check.stdout
    # PostgreSQL whenever its server is installed (make install does), else SQLite.
    want = "postgresql" if Postgres.find() is not None else "sqlite"
    assert nodes.database.startswith(want) and f"database      {want}" in check.stdout, check.stdout


def test_demo_checks_pass_on_four_nodes(nodes: Nodes, demo: dict) -> None:
    failed = [c for c in demo["checks"] if not c["ok"]]
    assert demo["returncode"] == 0 and demo["ok"] and not failed, (failed, demo["stderr"][-3000:])
    hosts = {name: s["host"] for name, s in demo["servers"].items()}
    # The scheduler spread the VXLAN instances over both computes.
    assert {hosts["demo-instance-1"], hosts["demo-instance-2"]} == {"compute1", "compute2"}, hosts
    assert hosts["demo-instance-3"] in ("compute1", "compute2")
    # The router and the networks' DHCP servers are on the network node.
    l3 = nodes.api("GET", f"/v2.0/routers/{demo['router_id']}/l3-agents").json()["agents"]
    assert [a["host"] for a in l3] == ["network"]
    for net in demo["networks"].values():
        dhcp = nodes.api("GET", f"/v2.0/networks/{net['id']}/dhcp-agents").json()["agents"]
        assert [a["host"] for a in dhcp] == ["network"]
    assert netns_mod.netns_exists(f"qrouter-{demo['router_id']}")


def test_east_west_traffic_crosses_the_tunnel_between_the_computes(nodes: Nodes, demo: dict) -> None:
    s1, s2 = demo["servers"]["demo-instance-1"], demo["servers"]["demo-instance-2"]
    vtep = {n.name: n.vtep_ip for n in nodes.nodes.values()}
    vni = demo["networks"]["vxlan-network"]["segmentation_id"]
    lines = _captured(nodes, nodes.fabric.underlay_bridge, ["udp", "port", "4789"], lambda: _ping(s1["id"], s2["ip"]))
    a, b = vtep[s1["host"]], vtep[s2["host"]]
    assert any(f"{a}." in ln and f"> {b}.4789: VXLAN" in ln and f"vni {vni}" in ln for ln in lines), lines
    assert any(f"{s1['ip']} > {s2['ip']}: ICMP echo request" in ln for ln in lines), lines
    assert any(f"{s2['ip']} > {s1['ip']}: ICMP echo reply" in ln for ln in lines), lines
    # Nothing of the ping went through the network node (other traffic of the moment may: a
    # flooded broadcast, a guest's DHCP renewal).
    ping = (f"{s1['ip']} > {s2['ip']}: ICMP", f"{s2['ip']} > {s1['ip']}: ICMP")
    via_network = [ln for ln in lines if f"{vtep['network']}." in ln and any(p in ln for p in ping)]
    assert not via_network, via_network


def test_north_south_traffic_crosses_the_network_node(nodes: Nodes, demo: dict) -> None:
    s2, s1 = demo["servers"]["demo-instance-2"], demo["servers"]["demo-instance-1"]
    vtep = {n.name: n.vtep_ip for n in nodes.nodes.values()}
    lab_ip, fip = demo["lab_ip"], demo["floating_ip"]
    # Out: demo-instance-2 -> the lab host goes over the tunnel to the network node's router.
    lines = _captured(nodes, nodes.fabric.underlay_bridge, ["udp", "port", "4789"], lambda: _ping(s2["id"], lab_ip))
    assert any(f"{vtep[s2['host']]}." in ln and f"> {vtep['network']}.4789: VXLAN" in ln for ln in lines), lines
    assert any(f"{s2['ip']} > {lab_ip}: ICMP echo request" in ln for ln in lines), lines

    # In: the lab host -> the floating IP is DNATed on the network node and tunnelled to compute.
    def lab_pings_fip() -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (
                subprocess.run(
                    ["ip", "netns", "exec", demo["lab_netns"], "ping", "-n", "-c", "1", "-W", "1", fip],
                    capture_output=True,
                    timeout=10,
                ).returncode
                == 0
            ):
                return True
        return False

    lines = _captured(nodes, nodes.fabric.underlay_bridge, ["udp", "port", "4789"], lab_pings_fip)
    assert any(f"{vtep['network']}." in ln and f"> {vtep[s1['host']]}.4789: VXLAN" in ln for ln in lines), lines
    assert any(f"{lab_ip} > {s1['ip']}: ICMP echo request" in ln for ln in lines), lines


def test_flat_network_traffic_crosses_the_physnet_wire(nodes: Nodes, demo: dict) -> None:
    s3 = demo["servers"]["demo-instance-3"]
    lines = _captured(nodes, nodes.fabric.physnet_bridge, ["icmp"], lambda: _ping(s3["id"], demo["lab_ip"]))
    echo = [ln for ln in lines if f"{s3['ip']} > {demo['lab_ip']}: ICMP echo request" in ln]
    assert echo and not any("802.1Q" in ln for ln in echo), lines


def test_several_api_workers_serve_one_database(nodes: Nodes) -> None:
    """Writes through fresh connections (SO_REUSEPORT spreads them over both workers) are
    seen at once by every later request, whichever worker answers it."""
    token = nodes.admin_token()
    url, verify = nodes.network_url, nodes.verify

    def exercise() -> tuple[list[str], list[int], set[int]]:
        def create(i: int) -> str:
            with httpx.Client(timeout=30, verify=verify) as c:  # one connection per request
                r = c.post(
                    f"{url}/v2.0/networks",
                    headers={"X-Auth-Token": token},
                    json={"network": {"name": f"mn-workers-{i}"}},
                )
                r.raise_for_status()
                return r.json()["network"]["id"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(create, range(16)))
        codes, counts = [], set()
        for nid in ids:
            with httpx.Client(timeout=30, verify=verify) as c:
                codes.append(c.get(f"{url}/v2.0/networks/{nid}", headers={"X-Auth-Token": token}).status_code)
            with httpx.Client(timeout=30, verify=verify) as c:
                listed = c.get(f"{url}/v2.0/networks", params={"fields": "id"}, headers={"X-Auth-Token": token}).json()[
                    "networks"
                ]
                counts.add(len(set(ids) & {n["id"] for n in listed}))
        for nid in ids:
            with httpx.Client(timeout=30, verify=verify) as c:
                c.delete(f"{url}/v2.0/networks/{nid}", headers={"X-Auth-Token": token})
        return ids, codes, counts

    ids, codes, counts = nodes.call_in("controller", exercise)
    assert len(set(ids)) == 16 and codes == [200] * 16 and counts == {16}


def test_demo_clean_and_teardown_leave_nothing(nodes: Nodes, demo: dict) -> None:
    r = nodes.neutrino("controller", "demo", "--clean", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    left = nodes.api("GET", "/v2.0/ports", params={"device_owner": "compute:nova"}).json()["ports"]
    assert left == []
    assert nodes.api("GET", "/v2.0/routers").json()["routers"] == []
    ours = {f"vm-{s['id']}" for s in demo["servers"].values()} | {f"qrouter-{demo['router_id']}"}
    assert not ours & set(netns_mod.list_netns())
    node_ns = {n.netns for n in nodes.nodes.values()} | {nodes.fabric.netns, nodes.lab_netns}
    nodes.teardown()
    assert nodes.leftovers() == []
    assert not node_ns & set(netns_mod.list_netns())
