"""The compute API's servers: create (scheduling, ports), views, policy, delete,
and the compute agents' internal API (state reports, per-host reads, feed)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from neutrino.compute.scheduler import NO_VALID_HOST
from neutrino.db import tables
from neutrino.timeutil import now_iso
from tests.api.compute_helpers import CIRROS, ComputeEnv, fault


@pytest.fixture
def env(api_db_url: str, tmp_path: Path) -> Iterator[ComputeEnv]:
    e = ComputeEnv(api_db_url, tmp_path)
    yield e
    e.close()


def _ud(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- create ---------------------------------------------------------------------------------------
def test_create_schedules_and_wires_ports(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network(name="private")
    kp = env.keypair("k1")
    created = env.boot(
        name="vm1",
        networks=[{"uuid": net["id"]}],
        key_name="k1",
        user_data=_ud("#!/bin/sh\n"),
        metadata={"role": "web"},
    )["server"]
    sid = created["id"]
    assert created["status"] == "BUILD" and created["adminPass"]
    assert created["OS-EXT-STS:vm_state"] == "building" and created["OS-EXT-STS:task_state"] == "spawning"

    [port] = env.ports_of(sid)
    assert port["device_owner"] == "compute:nova" and port["device_id"] == sid
    assert port["binding:host_id"] == "cn1" and port["project_id"] == "p-demo"
    assert port["network_id"] == net["id"] and len(port["security_groups"]) == 1

    s = env.show(sid)
    assert s["name"] == "vm1" and s["status"] == "BUILD" and s["tenant_id"] == "p-demo"
    assert s["user_id"] == "u-demo" and s["key_name"] == "k1" and s["metadata"] == {"role": "web"}
    assert s["image"]["id"] == CIRROS
    assert s["flavor"] == {
        "vcpus": 1,
        "ram": 64,
        "disk": 1,
        "ephemeral": 0,
        "swap": 0,
        "original_name": "m1.nano",
        "extra_specs": {},
    }
    assert s["addresses"] == {
        "private": [
            {
                "version": 4,
                "addr": port["fixed_ips"][0]["ip_address"],
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
            }
        ]
    }
    assert s["security_groups"] == [{"name": "default"}]
    assert s["OS-EXT-AZ:availability_zone"] == "nova" and s["accessIPv4"] == "" and s["config_drive"] == ""
    assert s["progress"] == 0 and s["OS-EXT-STS:power_state"] == 0 and s["hostId"]
    assert "fault" not in s
    assert "OS-EXT-SRV-ATTR:host" not in s  # admin only
    assert env.show(sid, "admin")["OS-EXT-SRV-ATTR:host"] == "cn1"

    # The feed: the port, then the server with everything the agent needs.
    [ch] = env.changes("server")
    assert ch["action"] == "create" and ch["id"] == sid and ch["project_id"] == "p-demo"
    body = ch["body"]
    assert body["host"] == "cn1" and body["status"] == "BUILD"
    assert body["key_data"] == kp["public_key"] and body["user_data"] == _ud("#!/bin/sh\n")
    assert body["metadata"] == {"role": "web"} and body["flavor"]["ram"] == 64
    assert body["port_ids"] == [port["id"]] and "ports" not in body  # ports have their own feed entries
    port_changes = [c for c in env.changes("port") if c["id"] == port["id"]]
    assert port_changes[0]["action"] == "create" and port_changes[0]["body"]["binding:host_id"] == "cn1"


def test_no_live_host_means_error_without_ports(env: ComputeEnv) -> None:
    net = env.network()
    env.agent("dead", alive=False)
    env.agent("disabled", up=False)
    created = env.boot(networks=[{"uuid": net["id"]}])["server"]
    s = env.show(created["id"])
    assert s["status"] == "ERROR" and s["OS-EXT-STS:vm_state"] == "error"
    assert s["fault"]["code"] == 500 and s["fault"]["message"] == NO_VALID_HOST
    assert "details" not in s["fault"]  # details of 500 faults: admin only
    assert "details" in env.show(created["id"], "admin")["fault"]
    assert s["hostId"] == "" and s["addresses"] == {}
    assert env.ports_of(created["id"]) == []
    [ch] = env.changes("server")
    assert ch["body"]["status"] == "ERROR" and ch["body"]["host"] is None
    assert env.changes("port") == []


def test_no_free_address_means_error_without_ports(env: ComputeEnv) -> None:
    net = env.network(cidr="10.9.0.0/30")  # one usable address
    env.agent("compute-1")
    first = env.boot(networks=[{"uuid": net["id"]}])["server"]
    assert env.show(first["id"])["status"] == "BUILD"
    second = env.boot(networks=[{"uuid": net["id"]}])["server"]
    s = env.show(second["id"])
    assert s["status"] == "ERROR"
    assert "No more IP addresses available" in s["fault"]["message"]
    assert env.ports_of(second["id"]) == []  # nothing half-made
    assert len(env.ports_of(first["id"])) == 1


def test_unbindable_port_means_error_without_ports(env: ComputeEnv) -> None:
    net = env.network()
    env.agent("compute-1", ovs=False)  # no L2 agent there: the port cannot bind
    created = env.boot(networks=[{"uuid": net["id"]}])["server"]
    s = env.show(created["id"])
    assert s["status"] == "ERROR" and "Binding failed for port" in s["fault"]["message"]
    assert env.ports_of(created["id"]) == []


def test_least_loaded_host(env: ComputeEnv) -> None:
    net = env.network()
    env.agent("a", instances=5)
    env.agent("b", instances=0)
    hosts = []
    for i in range(4):
        sid = env.boot(name=f"vm{i}", networks=[{"uuid": net["id"]}])["server"]["id"]
        hosts.append(env.show(sid, "admin")["OS-EXT-SRV-ATTR:host"])
    # Tie on placed servers: the agent reporting fewer instances wins.
    assert hosts == ["b", "a", "b", "a"]
    env.agent("c", max_instances=0)  # full: never chosen
    sid = env.boot(name="more", networks=[{"uuid": net["id"]}])["server"]["id"]
    assert env.show(sid, "admin")["OS-EXT-SRV-ATTR:host"] in ("a", "b")


def test_forced_host_is_admin_only(env: ComputeEnv) -> None:
    net = env.network("admin")
    env.agent("a")
    env.agent("b")
    sid = env.boot("admin", networks=[{"uuid": net["id"]}], availability_zone="nova:b")["server"]["id"]
    assert env.show(sid, "admin")["OS-EXT-SRV-ATTR:host"] == "b"
    sid = env.boot("admin", networks=[{"uuid": net["id"]}], host="a")["server"]["id"]
    assert env.show(sid, "admin")["OS-EXT-SRV-ATTR:host"] == "a"
    demo_net = env.network()
    fault(
        env.call(
            "POST",
            "servers",
            "demo",
            {
                "server": {
                    "name": "x",
                    "imageRef": CIRROS,
                    "flavorRef": "42",
                    "networks": [{"uuid": demo_net["id"]}],
                    "availability_zone": "nova:a",
                }
            },
        ),
        403,
        "forbidden",
    )
    fault(
        env.call(
            "POST",
            "servers",
            "demo",
            {
                "server": {
                    "name": "x",
                    "imageRef": CIRROS,
                    "flavorRef": "42",
                    "networks": "none",
                    "availability_zone": "az9",
                }
            },
        ),
        400,
        "badRequest",
        "availability zone",
    )


def test_networks_by_port_and_fixed_ip(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    port = env.port(net["id"], name="mine")
    sid = env.boot(networks=[{"port": port["id"]}, {"uuid": net["id"], "fixed_ip": "10.0.0.50"}])["server"]["id"]
    ports = env.ports_of(sid)
    assert {p["id"] for p in ports} >= {port["id"]} and len(ports) == 2
    taken = next(p for p in ports if p["id"] == port["id"])
    assert taken["device_owner"] == "compute:nova" and taken["binding:host_id"] == "cn1"
    made = next(p for p in ports if p["id"] != port["id"])
    assert made["fixed_ips"][0]["ip_address"] == "10.0.0.50"
    addrs = env.show(sid)["addresses"][net["name"]]
    assert [a["addr"] for a in addrs] == [taken["fixed_ips"][0]["ip_address"], "10.0.0.50"]  # request order
    # A port in use cannot be given again.
    fault(
        env.call(
            "POST",
            "servers",
            "demo",
            {"server": {"name": "x", "imageRef": CIRROS, "flavorRef": "42", "networks": [{"port": port["id"]}]}},
        ),
        409,
        "conflictingRequest",
        "still in use",
    )
    # Delete: the created port goes, the given one stays, released.
    assert env.call("DELETE", f"servers/{sid}").status_code == 204
    kept = env.ok(env.neutron("GET", f"/v2.0/ports/{port['id']}"))["port"]
    assert kept["device_id"] == "" and kept["device_owner"] == "" and kept["binding:host_id"] == ""
    assert env.neutron("GET", f"/v2.0/ports/{made['id']}").status_code == 404


def test_ports_get_the_hostname_as_dns_name(env: ComputeEnv) -> None:
    """As Nova with Neutron's dns-integration: the port's dns_name is the server's hostname
    (lowercase, other characters than letters, digits and hyphens replaced, at most 63), so
    the DHCP agent's host files name the instance."""
    env.agent("cn1")
    net = env.network()
    sid = env.boot(name="vm1", networks=[{"uuid": net["id"]}])["server"]["id"]
    [port] = env.ports_of(sid)
    ip = port["fixed_ips"][0]["ip_address"]
    assert port["dns_name"] == "vm1"
    assert port["dns_assignment"] == [{"ip_address": ip, "hostname": "vm1", "fqdn": "vm1.openstacklocal."}]
    # The feed carries it to the DHCP agent.
    assert env.changes("port")[-1]["body"]["dns_name"] == "vm1"

    cases = {
        "Web Server_01.example": "web-server-01-example",
        "--Ünïcode--": "n-code",
        "x" * 70 + "-y": "x" * 63,
        "!!!": None,
    }
    for name, want in cases.items():
        sid = env.boot(name=name, networks=[{"uuid": net["id"]}])["server"]["id"]
        [port] = env.ports_of(sid)
        hostname = env.show(sid, "admin")["OS-EXT-SRV-ATTR:hostname"]
        assert port["dns_name"] == hostname == (want or f"server-{sid}"), name
    # Several servers of one request: each its own name.
    env.boot(name="Web", networks=[{"uuid": net["id"]}], min_count=2, max_count=2)
    names = {s["name"]: s["id"] for s in env.ok(env.call("GET", "servers"))["servers"]}
    assert [env.ports_of(names[n])[0]["dns_name"] for n in ("Web-1", "Web-2")] == ["web-1", "web-2"]
    # A rename keeps the hostname (as in Nova): the port's dns_name stays.
    env.ok(env.call("PUT", f"servers/{names['Web-1']}", json={"server": {"name": "other"}}))
    assert env.ports_of(names["Web-1"])[0]["dns_name"] == "web-1"


def test_a_given_port_takes_the_hostname_and_gives_it_back(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    port = env.port(net["id"])
    assert port["dns_name"] == ""
    sid = env.boot(name="My VM", networks=[{"port": port["id"]}])["server"]["id"]
    assert env.ok(env.neutron("GET", f"/v2.0/ports/{port['id']}"))["port"]["dns_name"] == "my-vm"
    assert env.call("DELETE", f"servers/{sid}").status_code == 204
    assert env.ok(env.neutron("GET", f"/v2.0/ports/{port['id']}"))["port"]["dns_name"] == ""
    # A port already named for the same hostname is fine; another name is refused (Nova's
    # PortNotUsableDNS), and nothing is made.
    named = env.port(net["id"], dns_name="db")
    fault(
        env.call(
            "POST",
            "servers",
            "demo",
            {"server": {"name": "web", "imageRef": CIRROS, "flavorRef": "42", "networks": [{"port": named["id"]}]}},
        ),
        400,
        "badRequest",
        "does not match instance's hostname web",
    )
    assert env.ok(env.neutron("GET", f"/v2.0/ports/{named['id']}"))["port"]["device_id"] == ""
    assert not [s for s in env.ok(env.call("GET", "servers"))["servers"] if s["name"] == "web"]
    sid = env.boot(name="DB", networks=[{"port": named["id"]}])["server"]["id"]
    assert env.ok(env.neutron("GET", f"/v2.0/ports/{named['id']}"))["port"]["device_id"] == sid


def test_auto_none_and_missing_networks(env: ComputeEnv) -> None:
    env.agent("cn1")
    fault(
        env.call("POST", "servers", "demo", {"server": {"name": "x", "imageRef": CIRROS, "flavorRef": "42"}}),
        400,
        "badRequest",
        "'networks' is a required property",
    )
    fault(
        env.call(
            "POST",
            "servers",
            "demo",
            {"server": {"name": "x", "imageRef": CIRROS, "flavorRef": "42", "networks": "auto"}},
        ),
        400,
        "badRequest",
    )
    net = env.network()
    sid = env.boot(networks="auto")["server"]["id"]
    assert [p["network_id"] for p in env.ports_of(sid)] == [net["id"]]
    sid = env.boot(networks="none")["server"]["id"]
    assert env.ports_of(sid) == [] and env.show(sid)["status"] == "BUILD"
    # Before 2.37 "networks" may be left out: the one available network is used.
    sid = env.boot(mv="2.1")["server"]["id"]
    assert [p["network_id"] for p in env.ports_of(sid)] == [net["id"]]
    env.network(cidr="10.9.0.0/24")
    fault(
        env.call(
            "POST",
            "servers",
            "demo",
            {"server": {"name": "x", "imageRef": CIRROS, "flavorRef": "42", "networks": "auto"}},
        ),
        409,
        "conflictingRequest",
        "Multiple possible networks",
    )


def test_create_validation(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    other = env.network("other", cidr="10.5.0.0/24")
    ext = env.network("admin", cidr="172.24.4.0/24", **{"router:external": True})
    bare = env.network(cidr="")
    before = env.changes()

    def bad(status: int, kind: str, contains: str, mv: str = "2.79", **server: object) -> None:
        body = {"name": "x", "imageRef": CIRROS, "flavorRef": "42", "networks": [{"uuid": net["id"]}], **server}
        fault(env.call("POST", "servers", "demo", {"server": body}, mv=mv), status, kind, contains)

    bad(400, "badRequest", "Can not find requested image", imageRef="nope")
    bad(400, "badRequest", "Flavor 999 could not be found", flavorRef="999")
    bad(400, "badRequest", "Invalid key_name provided", key_name="nokey")
    bad(400, "badRequest", "valid base 64", user_data="!!!")
    bad(400, "badRequest", "name", name="")
    bad(400, "badRequest", "Additional properties", bogus=1)
    bad(400, "badRequest", "Metadata values", metadata={"k": 1})
    bad(400, "badRequest", f"Network {other['id']} could not be found", networks=[{"uuid": other["id"]}])
    bad(400, "badRequest", "not in proper format", networks=[{"uuid": "not-a-uuid"}])
    bad(400, "badRequest", "requires a subnet", networks=[{"uuid": bare["id"]}])
    bad(403, "forbidden", "external network", networks=[{"uuid": ext["id"]}])
    bad(400, "badRequest", "Invalid fixed IP", networks=[{"uuid": net["id"], "fixed_ip": "nope"}])
    bad(400, "badRequest", "not a valid IP", networks=[{"uuid": net["id"], "fixed_ip": "10.1.0.5"}])
    bad(400, "badRequest", "Security group nogroup not found", security_groups=[{"name": "nogroup"}])
    bad(
        400,
        "badRequest",
        "Volumes are not supported",
        block_device_mapping_v2=[{"source_type": "volume", "destination_type": "volume", "uuid": CIRROS}],
    )
    fault(
        env.call(
            "POST",
            "servers",
            "reader",
            {"server": {"name": "x", "imageRef": CIRROS, "flavorRef": "42", "networks": "none"}},
        ),
        403,
        "forbidden",
    )
    fault(env.call("POST", "servers", "demo", {"nope": {}}), 400, "badRequest")
    fault(env.call("POST", "servers", "demo", None), 400, "badRequest")
    assert env.changes() == before  # nothing half-done


def test_image_given_as_block_device(env: ComputeEnv) -> None:
    """OSC sends the image both as imageRef and as a local block device."""
    env.agent("cn1")
    net = env.network()
    sid = env.boot(
        networks=[{"uuid": net["id"]}],
        block_device_mapping_v2=[
            {
                "uuid": CIRROS,
                "boot_index": 0,
                "source_type": "image",
                "destination_type": "local",
                "delete_on_termination": True,
            }
        ],
    )["server"]["id"]
    assert env.show(sid)["image"]["id"] == CIRROS


def test_security_groups_by_name(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    sg = env.ok(env.neutron("POST", "/v2.0/security-groups", "demo", {"security_group": {"name": "web"}}), 201)[
        "security_group"
    ]
    sid = env.boot(networks=[{"uuid": net["id"]}], security_groups=[{"name": "web"}])["server"]["id"]
    assert env.ports_of(sid)[0]["security_groups"] == [sg["id"]]
    assert env.show(sid)["security_groups"] == [{"name": "web"}]


def test_multi_create(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    env.boot(name="web", networks=[{"uuid": net["id"]}], min_count=2, max_count=2)
    servers = env.ok(env.call("GET", "servers/detail"))["servers"]
    assert sorted(s["name"] for s in servers) == ["web-1", "web-2"]
    assert all(len(s["addresses"][net["name"]]) == 1 for s in servers)


def test_floating_ips_in_addresses(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    ext = env.network("admin", cidr="172.24.4.0/24", **{"router:external": True})
    sid = env.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    [port] = env.ports_of(sid)
    fip_port = env.port(ext["id"], "admin")
    with env.db.write() as uow:
        ts = now_iso()
        uow.conn.execute(
            insert(tables.floatingips).values(
                id="f0000000-0000-0000-0000-000000000001",
                project_id="p-demo",
                description="",
                created_at=ts,
                updated_at=ts,
                revision_number=0,
                floating_network_id=ext["id"],
                floating_ip_address="172.24.4.77",
                floating_port_id=fip_port["id"],
                fixed_port_id=port["id"],
                fixed_ip_address=port["fixed_ips"][0]["ip_address"],
                router_id=None,
                status="ACTIVE",
            )
        )
    addrs = env.show(sid)["addresses"][net["name"]]
    assert [(a["addr"], a["OS-EXT-IPS:type"]) for a in addrs] == [
        (port["fixed_ips"][0]["ip_address"], "fixed"),
        ("172.24.4.77", "floating"),
    ]
    assert addrs[1]["OS-EXT-IPS-MAC:mac_addr"] == port["mac_address"]


# --- reading, microversions ---------------------------------------------------------------------------------
def test_microversion_shapes(env: ComputeEnv) -> None:
    env.agent("cn1")
    sid = env.boot(networks="none", description="d")["server"]["id"]
    old = env.show(sid, mv=None)  # no header: 2.1
    assert set(old["flavor"]) == {"id", "links"} and old["flavor"]["id"] == "42"
    for key in ("locked", "description", "tags", "server_groups"):
        assert key not in old
    new = env.show(sid)
    assert new["description"] == "d" and new["tags"] == [] and new["locked"] is False
    r = env.call("GET", f"servers/{sid}", mv="latest")
    assert r.headers["OpenStack-API-Version"] == "compute 2.79"
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.79"
    r = env.call("GET", f"servers/{sid}", mv=None, headers={"X-OpenStack-Nova-API-Version": "2.47"})
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.47" and "original_name" in r.json()["server"]["flavor"]
    fault(env.call("GET", f"servers/{sid}", mv="2.80"), 406, "notAcceptable", "maximum is 2.79")
    fault(env.call("GET", f"servers/{sid}", mv="2.x"), 400, "badRequest")


def test_versions_need_no_token(env: ComputeEnv) -> None:
    root = env.ok(env.call("GET", "/", None, mv=None))["versions"]
    assert [(v["id"], v["min_version"], v["version"]) for v in root] == [("v2.1", "2.1", "2.79")]
    doc = env.ok(env.call("GET", "/v2.1", None, mv=None))["version"]
    assert doc["links"][0]["href"] == "http://testserver/v2.1/" and doc["status"] == "CURRENT"
    r = env.call("GET", "servers", None)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert env.call("GET", "servers", "bogus-token").status_code == 401
    fault(env.call("GET", "nothing-here"), 404, "itemNotFound")


def test_visibility_and_listing(env: ComputeEnv) -> None:
    env.agent("cn1")
    mine = env.boot(name="alpha", networks="none")["server"]["id"]
    env.boot(name="beta", networks="none")
    theirs = env.boot("other", name="gamma", networks="none")["server"]["id"]
    admins = env.boot("admin", name="delta", networks="none")["server"]["id"]

    brief = env.ok(env.call("GET", "servers"))["servers"]
    assert sorted(s["name"] for s in brief) == ["alpha", "beta"]
    assert set(brief[0]) == {"id", "name", "links"}
    fault(env.call("GET", f"servers/{theirs}"), 404, "itemNotFound")
    fault(env.call("DELETE", f"servers/{theirs}"), 404, "itemNotFound")
    fault(env.call("GET", "servers?all_tenants=1"), 403, "forbidden")
    # Admin: own project unless all_tenants, but may show anything.
    assert [s["id"] for s in env.ok(env.call("GET", "servers", "admin"))["servers"]] == [admins]
    assert len(env.ok(env.call("GET", "servers/detail?all_tenants=1", "admin"))["servers"]) == 4
    assert [
        s["name"] for s in env.ok(env.call("GET", "servers?all_tenants=1&project_id=p-other", "admin"))["servers"]
    ] == ["gamma"]
    assert env.show(theirs, "admin")["name"] == "gamma"
    assert env.ok(env.call("GET", "servers/detail?all_tenants=1&host=cn1", "admin"))["servers"]
    # Filters: name is a regular expression, status is case-insensitive.
    assert [s["id"] for s in env.ok(env.call("GET", "servers?name=^al"))["servers"]] == [mine]
    assert len(env.ok(env.call("GET", "servers?status=build"))["servers"]) == 2
    assert env.ok(env.call("GET", "servers?status=ACTIVE"))["servers"] == []
    # Paging: a next link while pages are full (order: created_at, then id, descending).
    page = env.ok(env.call("GET", "servers?limit=1"))
    assert len(page["servers"]) == 1
    nxt = page["servers_links"][0]["href"]
    assert "marker=" in nxt
    page2 = env.ok(env.call("GET", nxt.replace("http://testserver", "")))
    assert sorted(s["name"] for s in page["servers"] + page2["servers"]) == ["alpha", "beta"]
    assert env.ok(env.call("GET", f"servers?limit=1&marker={page2['servers'][0]['id']}"))["servers"] == []
    fault(env.call("GET", "servers?marker=nope"), 400, "badRequest", "marker")


def test_update_and_metadata(env: ComputeEnv) -> None:
    env.agent("cn1")
    sid = env.boot(networks="none", metadata={"a": "1"})["server"]["id"]
    assert (
        env.ok(env.call("PUT", f"servers/{sid}", json={"server": {"name": "renamed"}}))["server"]["name"] == "renamed"
    )
    assert env.ok(env.call("POST", f"servers/{sid}/metadata", json={"metadata": {"b": "2"}}))["metadata"] == {
        "a": "1",
        "b": "2",
    }
    assert env.ok(env.call("GET", f"servers/{sid}/metadata/b")) == {"meta": {"b": "2"}}
    assert env.ok(env.call("PUT", f"servers/{sid}/metadata/c", json={"meta": {"c": "3"}})) == {"meta": {"c": "3"}}
    assert env.call("DELETE", f"servers/{sid}/metadata/a").status_code == 204
    fault(env.call("DELETE", f"servers/{sid}/metadata/a"), 404, "itemNotFound")
    assert env.ok(env.call("PUT", f"servers/{sid}/metadata", json={"metadata": {"z": "9"}}))["metadata"] == {"z": "9"}
    assert env.show(sid)["metadata"] == {"z": "9"}
    fault(env.call("PUT", f"servers/{sid}", "reader", {"server": {"name": "x"}}), 403, "forbidden")
    fault(env.call("PUT", f"servers/{sid}", "other", {"server": {"name": "x"}}), 404, "itemNotFound")
    updates = [c for c in env.changes("server") if c["action"] == "update"]
    assert updates[-1]["body"]["metadata"] == {"z": "9"} and updates[-1]["body"]["name"] == "renamed"


def test_delete(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    sid = env.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    [port] = env.ports_of(sid)
    fault(env.call("DELETE", f"servers/{sid}", "reader"), 403, "forbidden")
    assert env.call("DELETE", f"servers/{sid}").status_code == 204
    fault(env.call("GET", f"servers/{sid}"), 404, "itemNotFound")
    assert env.ports_of(sid) == []
    tail = env.changes()[-2:]
    assert [(c["resource"], c["id"], c["action"]) for c in tail] == [
        ("port", port["id"], "delete"),
        ("server", sid, "delete"),
    ]
    assert tail[1]["body"] is None
    fault(env.call("DELETE", f"servers/{sid}"), 404, "itemNotFound")


# --- the agents' internal API -----------------------------------------------------------------------------
def test_agent_state_reports(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    sid = env.boot(networks=[{"uuid": net["id"]}])["server"]["id"]

    r = env.report(sid, {"status": "ACTIVE", "host": "cn1"})
    assert r.status_code == 200, r.text
    assert r.json()["server"]["status"] == "ACTIVE"
    s = env.show(sid)
    assert s["status"] == "ACTIVE" and s["OS-EXT-STS:vm_state"] == "active"
    assert s["OS-EXT-STS:power_state"] == 1 and s["OS-EXT-STS:task_state"] is None
    assert s["OS-SRV-USG:launched_at"]
    n = len(env.changes("server"))
    assert env.report(sid, {"status": "ACTIVE", "host": "cn1"}).status_code == 200
    assert len(env.changes("server")) == n  # nothing changed, nothing recorded

    r = env.report(sid, {"status": "ERROR", "fault": {"message": "namespace setup failed", "details": "trace"}})
    assert r.status_code == 200
    s = env.show(sid)
    assert s["status"] == "ERROR" and s["fault"]["message"] == "namespace setup failed"
    assert env.show(sid, "admin")["fault"]["details"] == "trace"
    last = env.changes("server")[-1]
    assert last["action"] == "update" and last["body"]["status"] == "ERROR"

    assert env.report(sid, {"status": "ACTIVE", "host": "elsewhere"}).status_code == 409
    assert env.report(sid, {"status": "PAUSED"}).status_code == 400
    assert env.report(sid, {"status": "ACTIVE", "extra": 1}).status_code == 400
    assert env.report(sid, {"status": "ACTIVE"}, as_="demo").status_code == 403
    assert env.report("00000000-0000-0000-0000-000000000000", {"status": "ACTIVE"}).status_code == 404
    unplaced = env.boot(networks="none", availability_zone="nova:nowhere", as_="admin")["server"]["id"]
    assert env.report(unplaced, {"status": "ACTIVE"}).status_code == 409
    r = env.report(sid, "garbage")
    assert r.status_code == 400 and "NeutronError" in r.json()


def test_agent_reads_its_servers(env: ComputeEnv) -> None:
    env.agent("cn1")
    net = env.network()
    kp = env.keypair("k1")
    sid = env.boot(networks=[{"uuid": net["id"]}], key_name="k1", user_data=_ud("hi"))["server"]["id"]
    env.agent("cn2", instances=-1)  # reports fewer instances: takes the next server
    sid2 = env.boot(networks="none")["server"]["id"]

    body = env.ok(env.neutron("GET", "/neutrino/v1/servers?host=cn1", "service"))
    assert body["revision"] == env.changes()[-1]["revision"]
    [srv] = body["servers"]
    assert srv["id"] == sid and srv["host"] == "cn1" and srv["key_data"] == kp["public_key"]
    assert srv["user_data"] == _ud("hi") and srv["image"]["name"] == "cirros"
    assert srv["port_ids"] == [srv["ports"][0]["id"]] and srv["ports"][0]["binding:host_id"] == "cn1"
    net_id = srv["ports"][0]["network_id"]
    assert srv["networks"][net_id]["name"] == net["name"] and srv["networks"][net_id]["mtu"] == 1450
    subnet = srv["subnets"][srv["ports"][0]["fixed_ips"][0]["subnet_id"]]
    assert subnet["cidr"] == "10.0.0.0/24" and subnet["gateway_ip"] == "10.0.0.1"
    assert [s["id"] for s in env.ok(env.neutron("GET", "/neutrino/v1/servers?host=cn2", "service"))["servers"]] == [
        sid2
    ]
    assert len(env.ok(env.neutron("GET", "/neutrino/v1/servers", "admin"))["servers"]) == 2
    assert env.ok(env.neutron("GET", f"/neutrino/v1/servers/{sid}", "service"))["server"]["id"] == sid
    assert env.neutron("GET", "/neutrino/v1/servers", "demo").status_code == 403
    env.call("DELETE", f"servers/{sid}")
    assert env.neutron("GET", f"/neutrino/v1/servers/{sid}", "service").status_code == 404
    # The feed's own routes are unaffected.
    assert env.neutron("GET", "/neutrino/v1/changes?since=0", "service").status_code == 200


def test_feed_snapshot_carries_servers(env: ComputeEnv) -> None:
    """Servers are a snapshot type of the feed; replaying the changes gives the same bodies."""
    env.agent("cn1")
    net = env.network()
    a = env.boot(name="a", networks=[{"uuid": net["id"]}])["server"]["id"]
    b = env.boot(name="b", networks="none")["server"]["id"]
    env.report(a, {"status": "ACTIVE", "host": "cn1"})
    env.call("DELETE", f"servers/{b}")
    # A port change (the OVS agent setting it ACTIVE) leaves the server's body alone.
    [port] = env.ports_of(a)
    env.ok(env.neutron("PUT", f"/v2.0/ports/{port['id']}", "admin", {"port": {"name": "renamed"}}))
    snap = env.ok(env.neutron("GET", "/neutrino/v1/snapshot?resources=server", "service"))
    assert [s["id"] for s in snap["resources"]["servers"]] == [a]
    replayed: dict[str, object] = {}
    for ch in env.changes("server"):
        if ch["action"] == "delete":
            replayed.pop(ch["id"], None)
        else:
            replayed[ch["id"]] = ch["body"]
    assert replayed == {a: snap["resources"]["servers"][0]}
