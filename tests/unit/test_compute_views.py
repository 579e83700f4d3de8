"""Server views (neutrino.compute.server_views): pure shaping of server rows into
Nova's API view and the compute agents' view."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from neutrino.compute import server_views as sv
from neutrino.compute.images import IMAGES
from neutrino.compute.microversion import Version

SID = "4f2a1b3c-9d00-4e11-8a22-334455667788"
P1, P2 = "p1000000-0000-0000-0000-000000000001", "p2000000-0000-0000-0000-000000000002"
BASE = "http://nova"


def row(**kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict(
        id=SID,
        name="vm",
        status="ACTIVE",
        project_id="proj",
        user_id="u",
        meta={"k": "v"},
        host="h1",
        image_id=IMAGES[0].id,
        flavor_id="1",
        flavor={"name": "m1.nano", "vcpus": 1, "ram": 128, "disk": 1},
        created_at="c",
        updated_at="u",
        access_ipv4="",
        access_ipv6="",
        availability_zone=None,
        config_drive=False,
        key_name=None,
        key_data=None,
        launched_at=None,
        task_state=None,
        vm_state="active",
        power_state=1,
        hostname="vm",
        user_data=None,
        description=None,
        tags=["t"],
        fault=None,
        nics=[{"port_id": P2}, {"port_id": P1}],
        revision_number=3,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def port(pid: str, net: str = "n1", name: str | None = "private") -> dict[str, Any]:
    return {
        "id": pid,
        "network_id": net,
        "network_name": name,
        "mac_address": "fa:16:3e:00:00:01",
        "fixed_ips": [{"ip_address": "10.0.0.5", "version": 4, "subnet_id": "s1"}],
        "floating_ips": [{"ip_address": "172.24.4.9", "fixed_ip_address": "10.0.0.5", "version": 4}],
        "security_groups": ["web", "default"],
    }


def test_host_id_is_per_project_and_empty_unplaced() -> None:
    assert sv.host_id("a", "h1") != sv.host_id("b", "h1") and len(sv.host_id("a", "h1")) == 56
    assert sv.host_id("a", None) == ""


def test_addresses_fixed_then_floating_by_network_name() -> None:
    out = sv.addresses([port(P1), port(P2, net="n2", name=None)])
    assert [a["OS-EXT-IPS:type"] for a in out["private"]] == ["fixed", "floating"]
    assert out["n2"][0] == {
        "version": 4,
        "addr": "10.0.0.5",
        "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
    }


def test_member_view_hides_admin_fields_and_internal_fault_details() -> None:
    fault = {"code": 500, "message": "boom", "details": "trace", "created": "t"}
    v = sv.server_view(row(status="ERROR", fault=fault), [port(P1)], Version(2, 1), BASE, admin=False)
    assert v["fault"] == {"code": 500, "created": "t", "message": "boom"}
    assert not [k for k in v if k.startswith("OS-EXT-SRV-ATTR")] and "host_status" not in v
    assert v["security_groups"] == [{"name": "default"}, {"name": "web"}]
    assert v["flavor"] == {"id": "1", "links": [{"rel": "bookmark", "href": f"{BASE}/flavors/1"}]}
    assert v["OS-EXT-AZ:availability_zone"] == "nova" and "progress" not in v and "tags" not in v
    assert v["links"][0]["href"] == f"{BASE}/v2.1/servers/{SID}"


def test_admin_view_at_a_late_microversion() -> None:
    v = sv.server_view(row(), [], Version(2, 73), BASE, admin=True, host_status={"h1": "DOWN"})
    assert v["OS-EXT-SRV-ATTR:host"] == "h1" and v["OS-EXT-SRV-ATTR:hostname"] == "vm"
    assert v["host_status"] == "DOWN" and v["tags"] == ["t"] and v["locked_reason"] is None
    assert v["flavor"]["original_name"] == "m1.nano" and v["flavor"]["ephemeral"] == 0
    assert v["progress"] == 0 and "security_groups" not in v and v["addresses"] == {}


def test_nics_in_order_follows_the_server_nic_list() -> None:
    r = row()
    ports = [
        SimpleNamespace(id=P1, device_id=SID, network_id="n1", network_name="a", mac_address="m1"),
        SimpleNamespace(id=P2, device_id=SID, network_id="n2", network_name="b", mac_address="m2"),
        SimpleNamespace(id="p3", device_id=SID, network_id="n3", network_name="c", mac_address="m3"),
    ]
    out = sv.nics_in_order([r], ports, {P1: [{"ip_address": "10.0.0.1"}]}, {}, {P2: ["default"]})
    assert [p["id"] for p in out[SID]] == [P2, P1, "p3"]  # unlisted ports last
    assert out[SID][1]["fixed_ips"] == [{"ip_address": "10.0.0.1"}] and out[SID][0]["security_groups"] == ["default"]


def test_agent_view_and_expand_take_only_the_servers_own_ports() -> None:
    v = sv.agent_view(row())
    assert v["port_ids"] == [P2, P1] and v["image"]["name"] == IMAGES[0].name and v["availability_zone"] == "nova"
    mine = [
        {"id": P1, "device_id": SID, "project_id": "proj", "network_id": "n1", "fixed_ips": [{"subnet_id": "s1"}]},
        {"id": P2, "device_id": SID, "project_id": "proj", "network_id": "n1", "fixed_ips": []},
    ]
    foreign = {
        "id": "px",
        "device_id": SID,
        "project_id": "other",
        "network_id": "n9",
        "fixed_ips": [{"subnet_id": "s9"}],
    }
    nets = {"n1": {"id": "n1"}, "n9": {"id": "n9"}}
    subnets = {"s1": {"id": "s1"}, "s9": {"id": "s9"}}
    sv.expand([v], mine + [foreign], nets, subnets)
    assert [p["id"] for p in v["ports"]] == [P2, P1]
    assert v["networks"] == {"n1": {"id": "n1"}} and v["subnets"] == {"s1": {"id": "s1"}}


def test_request_and_view_modules_stay_pure() -> None:
    """Importing them pulls in no database, service or HTTP layer."""
    import subprocess
    import sys

    code = (
        "import sys; import neutrino.compute.server_requests, neutrino.compute.server_views; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'neutrino.db', "
        "'neutrino.services', 'neutrino.api', 'starlette'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
