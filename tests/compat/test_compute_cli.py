"""The compute commands of the issue, run with the unchanged ``openstack`` CLI
against ``neutrino up``: image list, flavors, key pairs, and
``server create --network N --key-name K --image cirros --flavor m1.nano
--user-data F NAME`` / list / show / delete.

No compute agent runs here: the tests heartbeat a fake one through the
agents' API (``POST /neutrino/v1/agents/report``) and play its part in
reporting server states (``POST /neutrino/v1/servers/{id}/state``).  The
tests share one cloud and build on each other in file order.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.compat

_STATE: dict[str, Any] = {}


def _json(proc) -> Any:
    return json.loads(proc.stdout)


def _internal(cloud, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """An admin call to the network API's /neutrino/v1 routes (the compute agent's side)."""
    if "token" not in _STATE:
        _STATE["token"] = cloud.osc("admin", "token", "issue", "-f", "value", "-c", "id").stdout.strip()
    req = urllib.request.Request(
        f"{cloud.network_url}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-Auth-Token": _STATE["token"], "Content-Type": "application/json"},
    )
    try:
        with cloud.opener().open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _heartbeat(cloud, host: str) -> dict[str, Any]:
    status, body = _internal(
        cloud,
        "POST",
        "/neutrino/v1/agents/report",
        {
            "agent": {
                "agent_type": "Compute agent",
                "binary": "neutrino-compute",
                "topic": "compute",
                "host": host,
                "configurations": {"instances": 0},
            }
        },
    )
    assert status == 200, body
    # ... and its L2 agent, so the server's port binds (vif_type "ovs") on that host.
    l2_status, l2 = _internal(
        cloud,
        "POST",
        "/neutrino/v1/agents/report",
        {
            "agent": {
                "agent_type": "Open vSwitch agent",
                "binary": "neutrino-openvswitch-agent",
                "topic": "N/A",
                "host": host,
                "configurations": {"tunnel_types": ["vxlan"], "bridge_mappings": {"physnet": "br-phys"}},
            }
        },
    )
    assert l2_status == 200, l2
    return body["agent"]


def _only_fake_compute_host(cloud) -> None:
    """Disable compute agents other than the fake one (``up`` may start a real one as root)."""
    for a in _json(cloud.osc("admin", "network", "agent", "list", "-f", "json")):
        if a["Agent Type"] == "Compute agent" and a["Host"] != "compute-1":
            cloud.osc("admin", "network", "agent", "set", "--disable", a["ID"])


def test_image_list_shows_cirros(cloud):
    images = _json(cloud.osc("demo", "image", "list", "-f", "json"))
    assert [(i["Name"], i["Status"]) for i in images] == [("cirros", "active")]
    shown = _json(cloud.osc("demo", "image", "show", "cirros", "-f", "json"))
    assert shown["id"] == images[0]["ID"]


def test_flavors(cloud):
    names = {f["Name"]: f for f in _json(cloud.osc("demo", "flavor", "list", "-f", "json"))}
    assert {"m1.nano", "m1.tiny", "m1.small"} <= set(names)
    assert (names["m1.nano"]["VCPUs"], names["m1.nano"]["RAM"], names["m1.nano"]["Disk"]) == (1, 64, 1)
    made = _json(
        cloud.osc(
            "admin",
            "flavor",
            "create",
            "--vcpus",
            "2",
            "--ram",
            "128",
            "--disk",
            "1",
            "--property",
            "hw:cpu_policy=shared",
            "m1.custom",
            "-f",
            "json",
        )
    )
    assert made["name"] == "m1.custom" and made["vcpus"] == 2 and made["ram"] == 128
    shown = _json(cloud.osc("demo", "flavor", "show", "m1.custom", "-f", "json"))
    assert shown["properties"] == {"hw:cpu_policy": "shared"}
    denied = cloud.osc("demo", "flavor", "create", "--vcpus", "1", "--ram", "64", "--disk", "1", "nope", ok=False)
    assert denied.returncode != 0
    assert "os-flavor-manage:create" in denied.stderr and "403" in denied.stderr


def test_keypair_create_and_list(cloud):
    proc = cloud.osc("demo", "keypair", "create", "demo-key")
    assert "PRIVATE KEY-----" in proc.stdout  # printed once, never stored
    listed = _json(cloud.osc("demo", "keypair", "list", "-f", "json"))
    assert [k["Name"] for k in listed] == ["demo-key"] and listed[0]["Type"] == "ssh"
    assert ":" in listed[0]["Fingerprint"]
    assert _json(cloud.osc("admin", "keypair", "list", "-f", "json")) == []  # per user


def test_server_create(cloud, tmp_path: Path):
    cloud.osc("demo", "network", "create", "vm-net")
    cloud.osc("demo", "subnet", "create", "--network", "vm-net", "--subnet-range", "10.20.0.0/24", "vm-subnet")
    _heartbeat(cloud, "compute-1")
    _only_fake_compute_host(cloud)
    user_data = tmp_path / "user-data"
    user_data.write_text("#!/bin/sh\necho hello\n")
    out = _json(
        cloud.osc(
            "demo",
            "server",
            "create",
            "--network",
            "vm-net",
            "--key-name",
            "demo-key",
            "--image",
            "cirros",
            "--flavor",
            "m1.nano",
            "--user-data",
            str(user_data),
            "vm1",
            "-f",
            "json",
        )
    )
    assert out["name"] == "vm1" and out["status"] == "BUILD"
    assert out["key_name"] == "demo-key" and out["adminPass"]
    assert out["image"].startswith("cirros (")
    assert out["addresses"]["vm-net"][0].startswith("10.20.0.")
    _STATE["server"] = out["id"]
    ports = _json(cloud.osc("admin", "port", "list", "--device-id", out["id"], "--long", "-f", "json"))
    assert len(ports) == 1
    port = _json(cloud.osc("admin", "port", "show", ports[0]["ID"], "-f", "json"))
    assert port["binding_host_id"] == "compute-1" and port["device_owner"] == "compute:nova"
    # What the compute agent reads: its servers, with key, user data and ports.
    status, body = _internal(cloud, "GET", "/neutrino/v1/servers?host=compute-1")
    assert status == 200
    [srv] = body["servers"]
    assert srv["id"] == out["id"] and srv["key_data"].startswith("ssh-")
    assert srv["ports"][0]["id"] == ports[0]["ID"]


def test_server_list_and_show(cloud):
    sid = _STATE["server"]
    listed = _json(cloud.osc("demo", "server", "list", "-f", "json"))
    assert [(s["Name"], s["Status"], s["Image"], s["Flavor"]) for s in listed] == [
        ("vm1", "BUILD", "cirros", "m1.nano")
    ]
    status, body = _internal(
        cloud, "POST", f"/neutrino/v1/servers/{sid}/state", {"status": "ACTIVE", "host": "compute-1"}
    )
    assert status == 200 and body["server"]["status"] == "ACTIVE"
    shown = _json(cloud.osc("demo", "server", "show", "vm1", "-f", "json"))
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1
    assert "m1.nano" in json.dumps(shown["flavor"]) and shown["key_name"] == "demo-key"
    assert shown["addresses"]["vm-net"][0].startswith("10.20.0.")
    admin = _json(cloud.osc("admin", "server", "show", sid, "-f", "json"))
    assert admin["OS-EXT-SRV-ATTR:host"] == "compute-1"
    assert [s["Name"] for s in _json(cloud.osc("admin", "server", "list", "--all-projects", "-f", "json"))] == ["vm1"]


def test_no_live_compute_host_means_error(cloud):
    agent = _heartbeat(cloud, "compute-1")
    cloud.osc("admin", "network", "agent", "set", "--disable", agent["id"])
    try:
        out = _json(
            cloud.osc(
                "demo",
                "server",
                "create",
                "--network",
                "vm-net",
                "--image",
                "cirros",
                "--flavor",
                "m1.nano",
                "vm-unplaced",
                "-f",
                "json",
            )
        )
    finally:
        cloud.osc("admin", "network", "agent", "set", "--enable", agent["id"])
    assert out["status"] == "ERROR"
    assert "No valid host was found" in str(out["fault"])
    assert _json(cloud.osc("admin", "port", "list", "--device-id", out["id"], "-f", "json")) == []
    cloud.osc("demo", "server", "delete", "vm-unplaced")


def test_server_delete(cloud):
    sid = _STATE["server"]
    cloud.osc("demo", "server", "delete", "--wait", "vm1")
    assert _json(cloud.osc("demo", "server", "list", "-f", "json")) == []
    assert _json(cloud.osc("admin", "port", "list", "--device-id", sid, "-f", "json")) == []
    status, _ = _internal(cloud, "POST", f"/neutrino/v1/servers/{sid}/state", {"status": "ACTIVE"})
    assert status == 404  # the agent tears it down
