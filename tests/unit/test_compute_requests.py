"""Server request parsing (neutrino.compute.server_requests): pure checks of the
servers API's bodies and query parameters and of the agents' state reports."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from neutrino import errors as neutron_errors
from neutrino.compute import faults
from neutrino.compute import server_requests as rq
from neutrino.compute.microversion import Version

IMAGE = "cafe0123-0000-0000-0000-000000000000"
NET = "11111111-2222-3333-4444-555555555555"
PORT = "abcdef01-2345-6789-abcd-ef0123456789"
V21, V237, V274 = Version(2, 1), Version(2, 37), Version(2, 74)


def body(**kw: Any) -> dict[str, Any]:
    server: dict[str, Any] = {"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}
    server.update(kw)
    return {"server": server}


def test_minimal_create_before_2_37_defaults() -> None:
    req = rq.parse_create(body(), V21, admin=False)
    assert (req.name, req.image_ref, req.flavor_ref) == ("vm", IMAGE, "1")
    assert req.networks == "auto" and req.legacy_networks is True
    assert req.max_count == 1 and req.forced_host is None and req.availability_zone == "nova"
    assert req.metadata == {} and req.tags == [] and req.security_groups == []
    assert req.config_drive is False and req.user_data is None
    assert len(req.admin_pass) == 12 and req.admin_pass.isalnum()


def test_refs_given_as_urls_keep_their_last_segment() -> None:
    req = rq.parse_create(body(imageRef=f"http://x/images/{IMAGE}/", flavorRef=42), V21, admin=False)
    assert (req.image_ref, req.flavor_ref) == (IMAGE, "42")


def test_networks_required_from_2_37_and_empty_list_is_auto_before() -> None:
    with pytest.raises(faults.BadRequest, match="'networks' is a required property"):
        rq.parse_create(body(), V237, admin=False)
    assert rq.parse_create(body(networks=[]), V21, admin=False).networks == "auto"
    req = rq.parse_create(body(networks="none"), V237, admin=False)
    assert (req.networks, req.legacy_networks) == ("none", False)
    with pytest.raises(faults.BadRequest, match="is not of type 'array'"):
        rq.parse_create(body(networks="auto"), V21, admin=False)


def test_network_requests_checked_and_canonical() -> None:
    nets = rq.parse_networks([{"port": PORT}, {"uuid": NET, "fixed_ip": "fd00:0::05"}], V21)
    assert nets == [{"port": PORT}, {"uuid": NET, "fixed_ip": "fd00::5"}]
    with pytest.raises(faults.BadRequest, match="a fixed IP cannot be given with a port"):
        rq.parse_networks([{"port": PORT, "fixed_ip": "10.0.0.5"}], V21)
    with pytest.raises(faults.BadRequest, match="network uuid is not in proper format"):
        rq.parse_networks([{"uuid": "net1"}], V21)
    with pytest.raises(faults.BadRequest, match="Invalid fixed IP address"):
        rq.parse_networks([{"uuid": NET, "fixed_ip": "fe80::1%eth0"}], V21)
    with pytest.raises(faults.BadRequest, match="Additional properties"):
        rq.parse_networks([{"uuid": NET, "mac": "x"}], V21)


def test_unknown_and_version_gated_keys_refused() -> None:
    with pytest.raises(faults.BadRequest, match="'tags' was unexpected"):
        rq.parse_create(body(tags=["a"]), V21, admin=False)
    assert rq.parse_create(body(tags=["a", "a", "b"], networks="none"), Version(2, 52), admin=False).tags == ["a", "b"]
    with pytest.raises(faults.BadRequest, match="Additional properties"):
        rq.parse_create({**body(), "extra": 1}, V21, admin=False)


def test_counts_capped_and_checked() -> None:
    assert rq.parse_create(body(max_count=50), V21, admin=False).max_count == rq.MAX_COUNT
    with pytest.raises(faults.BadRequest, match="min_count must be <= max_count"):
        rq.parse_create(body(min_count=3, max_count=2), V21, admin=False)
    with pytest.raises(faults.Forbidden, match="Quota exceeded for instances"):
        rq.parse_create(body(min_count=11, max_count=11), V21, admin=False)
    with pytest.raises(faults.BadRequest, match="min_count"):
        rq.parse_create(body(min_count=True), V21, admin=False)


def test_forced_host_is_admin_only() -> None:
    assert rq.parse_create(body(availability_zone="nova:host1"), V21, admin=True).forced_host == "host1"
    assert rq.parse_create(body(host="host2", networks="none"), V274, admin=True).forced_host == "host2"
    with pytest.raises(faults.Forbidden, match="forced_host"):
        rq.parse_create(body(availability_zone="nova:host1"), V21, admin=False)
    with pytest.raises(faults.Forbidden, match="requested_destination"):
        rq.parse_create(body(host="host2", networks="none"), V274, admin=False)
    with pytest.raises(faults.BadRequest, match="availability zone is not available"):
        rq.parse_create(body(availability_zone="other"), V21, admin=True)


def test_access_ips_user_data_and_config_drive() -> None:
    ud = base64.b64encode(b"#!/bin/sh\n").decode()
    req = rq.parse_create(
        body(accessIPv4="10.0.0.1", accessIPv6="FD00::1", user_data=ud, config_drive="yes"), V21, admin=False
    )
    assert (req.access_ipv4, req.access_ipv6, req.user_data, req.config_drive) == ("10.0.0.1", "fd00::1", ud, True)
    with pytest.raises(faults.BadRequest, match="is not a 'ipv4'"):
        rq.parse_create(body(accessIPv4="fd00::1"), V21, admin=False)
    with pytest.raises(faults.BadRequest, match="valid base 64"):
        rq.parse_create(body(user_data="not base64!"), V21, admin=False)
    with pytest.raises(faults.BadRequest, match="User data too large"):
        rq.user_data("A" * (rq.MAX_USER_DATA + 1))
    with pytest.raises(faults.BadRequest, match="config_drive"):
        rq.config_drive("maybe")


def test_block_devices_local_only_and_give_the_boot_image() -> None:
    bdm = [{"source_type": "image", "destination_type": "local", "boot_index": 0, "uuid": IMAGE}]
    assert rq.parse_create(body(imageRef="", block_device_mapping_v2=bdm), V21, admin=False).image_ref == IMAGE
    with pytest.raises(faults.BadRequest, match="Volumes are not supported"):
        rq.check_bdms({"block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume"}]})
    with pytest.raises(faults.BadRequest, match="Personality files"):
        rq.parse_create(body(personality=[{"path": "/x"}]), V21, admin=False)


def test_metadata_limits() -> None:
    assert rq.check_metadata({"a": "b"}) == {"a": "b"}
    with pytest.raises(faults.Forbidden, match="metadata_items"):
        rq.check_metadata({str(i): "v" for i in range(rq.MAX_METADATA + 1)})
    with pytest.raises(faults.BadRequest, match="Metadata values"):
        rq.check_metadata({"a": 1})
    with pytest.raises(faults.BadRequest, match="Metadata keys"):
        rq.check_metadata({"": "v"})
    with pytest.raises(faults.BadRequest, match="is not of type 'object'"):
        rq.check_metadata(["a"])


def test_update_fields_and_values() -> None:
    with pytest.raises(faults.BadRequest, match="'description' was unexpected"):
        rq.update_fields({"server": {"description": "d"}}, V21)
    s = rq.update_fields({"server": {"name": "new", "description": None, "accessIPv4": "010.0.0.1"}}, Version(2, 19))
    with pytest.raises(faults.BadRequest, match="accessIPv4"):
        rq.update_values(s)  # strict: no leading zeros
    assert rq.update_values({"name": "new", "description": None, "accessIPv6": "FD00::1", "accessIPv4": None}) == {
        "name": "new",
        "description": None,
        "access_ipv6": "fd00::1",
        "access_ipv4": "",
    }
    with pytest.raises(faults.BadRequest, match="field/attribute name"):
        rq.update_values({"name": "  "})


def test_state_report() -> None:
    r = rq.parse_state_report({"status": "ACTIVE", "host": "h1"})
    assert (r.status, r.vm_state, r.power_state, r.host, r.fault) == ("ACTIVE", "active", rq.RUNNING, "h1", None)
    assert rq.parse_state_report({"status": "SHUTOFF", "power_state": 7}).power_state == 7
    for bad, msg in (
        ([], "Body must be an object"),
        ({"status": "ACTIVE", "x": 1}, "Unrecognized attribute"),
        ({"status": ["ACTIVE"]}, "Invalid status"),
        ({"status": "ERROR", "fault": "x"}, "'fault'"),
        ({"status": "ACTIVE", "host": 3}, "'host'"),
        ({"status": "ACTIVE", "power_state": True}, "'power_state'"),
        ({"status": "ACTIVE", "power_state": 8}, "'power_state'"),
    ):
        with pytest.raises(neutron_errors.NeutronException, match=msg):
            rq.parse_state_report(bad)


def test_list_parameters() -> None:
    assert rq.sort_order({}) == ("created_at", True)
    assert rq.sort_order({"sort_key": ["display_name"], "sort_dir": ["asc"]}) == ("name", False)
    with pytest.raises(faults.BadRequest, match="sort_key"):
        rq.sort_order({"sort_key": ["secret"]})
    with pytest.raises(faults.BadRequest, match="sort_dir"):
        rq.sort_order({"sort_dir": ["up"]})
    assert rq.iso_filter("2026-01-02T03:04:05+02:00", "changes-since") == "2026-01-02T01:04:05Z"
    with pytest.raises(faults.BadRequest, match="changes-since"):
        rq.iso_filter("yesterday", "changes-since")
    assert rq.filter_regex("vm[").search("a-vm[1]") and rq.filter_regex("^vm\\d$").search("vm1")
    assert rq.all_tenants({"all_tenants": [""]}) and rq.all_tenants({"all_tenants": ["True"]})
    assert not rq.all_tenants({"all_tenants": ["0"]}) and not rq.all_tenants({})
    assert rq.as_list({"host": ["", "h1"]}, "host") == ["h1"]
    with pytest.raises(faults.BadRequest, match="power_state"):
        rq.power_states({"power_state": ["on"]})


def test_hostname_for() -> None:
    assert rq.hostname_for("My VM_1!", "x") == "my-vm-1"
    assert rq.hostname_for("***", "abc") == "server-abc"
    assert len(rq.hostname_for("a" * 100, "x")) == 63
