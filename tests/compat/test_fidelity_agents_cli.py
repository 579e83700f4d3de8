"""Scheduling by hand, IP availability, service providers and tagged bulk ports with the unchanged
``openstack`` CLI against ``neutrino up`` (issue 14).  No real agents run (``--no-agents``): a DHCP
and an L3 agent are registered through the agent report endpoint, as the agents do."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.compat


def _json(proc) -> object:
    return json.loads(proc.stdout)


def _report(cloud, host: str, agent_type: str, binary: str) -> None:
    token = cloud.osc("admin", "token", "issue", "-f", "value", "-c", "id").stdout.strip()
    body = {"agent": {"agent_type": agent_type, "binary": binary, "host": host, "topic": "x", "configurations": {}}}
    req = urllib.request.Request(
        f"{cloud.network_url}/neutrino/v1/agents/report",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
    )
    with cloud.opener().open(req, timeout=30) as resp:
        assert resp.status == 200


def _agent_id(cloud, agent_type: str) -> str:
    agents = _json(
        cloud.osc(
            "admin",
            "network",
            "agent",
            "list",
            "--agent-type",
            "dhcp" if agent_type == "DHCP agent" else "l3",
            "-f",
            "json",
        )
    )
    return agents[0]["ID"]


def test_dhcp_network_add_list_remove(cloud):
    _report(cloud, "cli-net1", "DHCP agent", "neutron-dhcp-agent")
    agent = _agent_id(cloud, "DHCP agent")
    net = _json(cloud.osc("admin", "network", "create", "cli-sched-net", "-f", "json"))["id"]
    listed = _json(cloud.osc("admin", "network", "agent", "list", "--network", net, "-f", "json"))
    assert listed == []
    cloud.osc("admin", "network", "agent", "add", "network", "--dhcp", agent, net)
    listed = _json(cloud.osc("admin", "network", "agent", "list", "--network", net, "-f", "json"))
    assert [a["ID"] for a in listed] == [agent]
    cloud.osc("admin", "network", "agent", "remove", "network", "--dhcp", agent, net)
    assert _json(cloud.osc("admin", "network", "agent", "list", "--network", net, "-f", "json")) == []
    # the removal sticks: a DHCP subnet does not bring the agent back
    cloud.osc("admin", "subnet", "create", "--network", net, "--subnet-range", "10.77.0.0/24", "cli-sched-sub")
    assert _json(cloud.osc("admin", "network", "agent", "list", "--network", net, "-f", "json")) == []


def test_l3_router_add_list_remove(cloud):
    router = _json(cloud.osc("admin", "router", "create", "cli-sched-router", "-f", "json"))["id"]
    _report(cloud, "cli-net1", "L3 agent", "neutron-l3-agent")  # takes the unscheduled router
    agent = _agent_id(cloud, "L3 agent")
    listed = _json(cloud.osc("admin", "network", "agent", "list", "--router", router, "-f", "json"))
    assert [a["ID"] for a in listed] == [agent]
    cloud.osc("admin", "network", "agent", "remove", "router", "--l3", agent, router)
    assert _json(cloud.osc("admin", "network", "agent", "list", "--router", router, "-f", "json")) == []
    _report(cloud, "cli-net1", "L3 agent", "neutron-l3-agent")
    assert _json(cloud.osc("admin", "network", "agent", "list", "--router", router, "-f", "json")) == []
    cloud.osc("admin", "network", "agent", "add", "router", "--l3", agent, router)
    listed = _json(cloud.osc("admin", "network", "agent", "list", "--router", router, "-f", "json"))
    assert [a["ID"] for a in listed] == [agent]


def test_ip_availability_list_and_show(cloud):
    net = _json(cloud.osc("admin", "network", "create", "cli-avail-net", "-f", "json"))["id"]
    cloud.osc(
        "admin",
        "subnet",
        "create",
        "--network",
        net,
        "--subnet-range",
        "10.78.0.0/24",
        "--allocation-pool",
        "start=10.78.0.10,end=10.78.0.19",
        "cli-avail-sub",
    )
    cloud.osc("admin", "port", "create", "--network", net, "cli-avail-port")
    rows = _json(cloud.osc("admin", "ip", "availability", "list", "--ip-version", "4", "-f", "json"))
    (row,) = [r for r in rows if r["Network ID"] == net]
    assert (row["Network Name"], row["Total IPs"], row["Used IPs"]) == ("cli-avail-net", 10, 1)
    shown = _json(cloud.osc("admin", "ip", "availability", "show", net, "-f", "json"))
    assert (shown["total_ips"], shown["used_ips"]) == (10, 1)
    assert _json(cloud.osc("demo", "ip", "availability", "list", "-f", "json")) == []


def test_service_provider_list(cloud):
    rows = _json(cloud.osc("demo", "network", "service", "provider", "list", "-f", "json"))
    assert rows == [{"Service Type": "L3_ROUTER_NAT", "Name": "single_node", "Default": True}]


def test_port_create_with_tags(cloud):
    net = _json(cloud.osc("demo", "network", "create", "cli-tag-net", "-f", "json"))["id"]
    port = _json(
        cloud.osc(
            "demo", "port", "create", "--network", net, "--tag", "red", "--tag", "blue", "cli-tag-port", "-f", "json"
        )
    )
    assert sorted(port["tags"]) == ["blue", "red"]
    listed = _json(cloud.osc("demo", "port", "list", "--tags", "red", "-f", "json"))
    assert [p["ID"] for p in listed] == [port["id"]]
