"""``network_data.json`` of an instance booted on a trunk parent: its subports appear as VLAN links
on the parent's link, with their networks, following the trunk's changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.compute_helpers import ComputeEnv
from tests.api.test_metadata_api import Env


@pytest.fixture
def env(api_db_url: str, tmp_path: Path) -> Iterator[ComputeEnv]:
    e = ComputeEnv(api_db_url, tmp_path)
    yield e
    e.close()


def _subnet_of(env: ComputeEnv, net: dict[str, Any]) -> dict[str, Any]:
    return env.ok(env.neutron("GET", f"/v2.0/subnets?network_id={net['id']}"))["subnets"][0]


def _network_data(md: Env, sid: str) -> dict[str, Any]:
    r = md.get("/openstack/latest/network_data.json", sid)
    assert r.status_code == 200, r.text
    return json.loads(r.text)


def test_trunk_subports_are_vlan_links(env: ComputeEnv) -> None:
    env.agent("cn1")
    net_a = env.network(name="a", cidr="10.0.0.0/24")
    net_b = env.network(name="b", cidr="10.20.0.0/24", mtu=1400)
    net_c = env.network(name="c", cidr="10.30.0.0/24")
    sub_b = _subnet_of(env, net_b)
    env.ok(
        env.neutron(
            "PUT",
            f"/v2.0/subnets/{sub_b['id']}",
            "demo",
            {"subnet": {"dns_nameservers": ["10.20.0.53"], "enable_dhcp": False}},
        )
    )
    parent, port_b, port_c = env.port(net_a["id"]), env.port(net_b["id"]), env.port(net_c["id"])
    trunk = env.ok(
        env.neutron(
            "POST",
            "/v2.0/trunks",
            "demo",
            {
                "trunk": {
                    "port_id": parent["id"],
                    "sub_ports": [{"port_id": port_b["id"], "segmentation_type": "vlan", "segmentation_id": 120}],
                }
            },
        ),
        201,
    )["trunk"]
    sid = env.boot(name="vm1", networks=[{"port": parent["id"]}])["server"]["id"]
    md = Env(env, cache_expiration="0")

    nd = _network_data(md, sid)
    parent_link = "tap" + parent["id"][:11]
    vlan_b = "tap" + port_b["id"][:11]
    assert [link["id"] for link in nd["links"]] == [parent_link, vlan_b]
    assert nd["links"][1] == {
        "id": vlan_b,
        "vif_id": port_b["id"],
        "type": "vlan",
        "mtu": 1400,
        "vlan_link": parent_link,
        "vlan_id": 120,
        "vlan_mac_address": port_b["mac_address"],
        "neutron_port_id": port_b["id"],
    }
    [net_entry] = [n for n in nd["networks"] if n["link"] == vlan_b]
    assert net_entry["type"] == "ipv4" and net_entry["network_id"] == net_b["id"]
    assert net_entry["ip_address"] == port_b["fixed_ips"][0]["ip_address"]
    assert net_entry["netmask"] == "255.255.255.0"
    assert {"type": "dns", "address": "10.20.0.53"} in nd["services"]

    # A subport added later shows up (ordered by VLAN id); a removed one goes away.
    env.ok(
        env.neutron(
            "PUT",
            f"/v2.0/trunks/{trunk['id']}/add_subports",
            "demo",
            {"sub_ports": [{"port_id": port_c["id"], "segmentation_type": "vlan", "segmentation_id": 110}]},
        )
    )
    nd = _network_data(md, sid)
    assert [(link["id"], link.get("vlan_id")) for link in nd["links"]] == [
        (parent_link, None),
        ("tap" + port_c["id"][:11], 110),
        (vlan_b, 120),
    ]
    [dhcp] = [n for n in nd["networks"] if n["link"] == "tap" + port_c["id"][:11]]
    assert dhcp["type"] == "ipv4_dhcp" and dhcp["network_id"] == net_c["id"]
    env.ok(
        env.neutron(
            "PUT", f"/v2.0/trunks/{trunk['id']}/remove_subports", "demo", {"sub_ports": [{"port_id": port_b["id"]}]}
        )
    )
    nd = _network_data(md, sid)
    assert [link["id"] for link in nd["links"]] == [parent_link, "tap" + port_c["id"][:11]]
    assert {"type": "dns", "address": "10.20.0.53"} not in nd["services"]


def test_no_vlan_links_without_a_trunk(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network(name="a")
    sid = env.boot(name="vm1", networks=[{"uuid": net["id"]}])["server"]["id"]
    nd = _network_data(Env(env, cache_expiration="0"), sid)
    assert [link["type"] for link in nd["links"]] == ["ovs"]
