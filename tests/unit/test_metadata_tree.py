"""The metadata trees (neutrino.metadata.tree): listings, EC2 and OpenStack items."""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest

from neutrino.metadata import tree
from neutrino.metadata.tree import Instance, NotFound, listing, resolve

SID = "4f2a1b3c-9d00-4e11-8a22-334455667788"
PORT = "abcdef01-2345-6789-abcd-ef0123456789"
NET = "11111111-2222-3333-4444-555555555555"
SUB4 = "aaaaaaaa-0000-0000-0000-000000000004"
SUB6 = "aaaaaaaa-0000-0000-0000-000000000006"


def inst(**kw: object) -> Instance:
    base: dict[str, object] = dict(
        uuid=SID,
        name="vm1",
        hostname="vm1",
        project_id="p-demo",
        availability_zone="nova",
        flavor_name="m1.nano",
        image_id="cafe0123-0000-0000-0000-000000000000",
        key_name="k1",
        key_data="ssh-ed25519 AAAA k1",
        user_data=b"#!/bin/sh\necho hi\n",
        meta={"role": "web"},
        security_groups=["default", "web"],
        floating_ips=["172.24.4.77"],
        ports=[
            {
                "id": PORT,
                "network_id": NET,
                "mac_address": "fa:16:3e:11:22:33",
                "binding:vif_type": "ovs",
                "fixed_ips": [
                    {"subnet_id": SUB4, "ip_address": "10.0.0.5"},
                    {"subnet_id": SUB6, "ip_address": "fd00::5"},
                ],
            }
        ],
        networks={NET: {"id": NET, "name": "private", "mtu": 1450}},
        subnets={
            SUB4: {
                "id": SUB4,
                "network_id": NET,
                "ip_version": 4,
                "cidr": "10.0.0.0/24",
                "gateway_ip": "10.0.0.1",
                "enable_dhcp": True,
                "dns_nameservers": ["8.8.8.8"],
                "host_routes": [],
            },
            SUB6: {
                "id": SUB6,
                "network_id": NET,
                "ip_version": 6,
                "cidr": "fd00::/64",
                "gateway_ip": "fd00::1",
                "enable_dhcp": False,
                "dns_nameservers": ["8.8.8.8", "fd00::53"],
                "host_routes": [{"destination": "fd01::/64", "nexthop": "fd00::2"}],
                "ipv6_address_mode": "slaac",
            },
        },
    )
    base.update(kw)
    return Instance(**base)


def get(i: Instance, path: str, **kw: object) -> str | bytes:
    return resolve(i, path, dhcp_domain="novalocal", **kw)[0]


def test_listing_format() -> None:
    assert listing({"b": 1, "a": {"x": 1}, "c": {"_name": "0=k", "y": 2}}) == "a/\nb\n0=k"
    assert listing({"_name": "0=k", "openssh-key": "K"}) == "openssh-key"
    assert listing(["x", "y"]) == "x\ny"
    assert listing(7) == "7" and listing(b"raw") == b"raw" and listing({}) == ""


def test_root_and_versions() -> None:
    i = inst()
    assert get(i, "/") == "\n".join([*tree.EC2_VERSIONS, "latest"])
    assert get(i, "/ec2") == get(i, "/")
    assert get(i, "/latest") == "meta-data/\nuser-data"
    assert get(i, "/2009-04-04/") == get(i, "/latest/")
    assert get(inst(user_data=None), "/latest") == "meta-data/"
    with pytest.raises(NotFound):
        get(i, "/2010-01-01/meta-data")


def test_ec2_meta_data_latest() -> None:
    i = inst()
    assert get(i, "/latest/meta-data/") == "\n".join(
        [
            "ami-id",
            "ami-launch-index",
            "ami-manifest-path",
            "block-device-mapping/",
            "hostname",
            "instance-action",
            "instance-id",
            "instance-type",
            "local-hostname",
            "local-ipv4",
            "placement/",
            "public-hostname",
            "public-ipv4",
            "public-keys/",
            "reservation-id",
            "security-groups",
        ]
    )
    assert get(i, "/latest/meta-data/hostname") == "vm1.novalocal"
    assert get(i, "/latest/meta-data/local-hostname") == "vm1.novalocal"
    assert get(i, "/latest/meta-data/instance-id") == "i-4f2a1b3c"
    assert get(i, "/latest/meta-data/ami-id") == "ami-cafe0123"
    assert get(i, "/latest/meta-data/ami-launch-index") == "0"
    assert get(i, "/latest/meta-data/instance-type") == "m1.nano"
    assert get(i, "/latest/meta-data/local-ipv4") == "10.0.0.5"
    assert get(i, "/latest/meta-data/public-ipv4") == "172.24.4.77"
    assert get(i, "/latest/meta-data/placement") == "availability-zone"
    assert get(i, "/latest/meta-data/placement/availability-zone") == "nova"
    assert get(i, "/latest/meta-data/public-keys") == "0=k1"
    assert get(i, "/latest/meta-data/public-keys/0") == "openssh-key"
    assert get(i, "/latest/meta-data/public-keys/0/openssh-key") == "ssh-ed25519 AAAA k1"
    assert get(i, "/latest/meta-data/reservation-id") == "r-4f2a1b3c"
    assert get(i, "/latest/meta-data/security-groups") == "default\nweb"
    assert get(i, "/latest/meta-data/block-device-mapping/root") == "/dev/vda"
    assert get(i, "/latest/user-data") == b"#!/bin/sh\necho hi\n"
    for bad in (
        "/latest/meta-data/nope",
        "/latest/meta-data/hostname/x",
        "/latest/meta-data/public-keys/0/_name",
        "/latest/meta-data/public-keys/1",
    ):
        with pytest.raises(NotFound):
            get(i, bad)
    with pytest.raises(NotFound):
        get(inst(user_data=None), "/latest/user-data")


def test_ec2_version_gating_and_fallbacks() -> None:
    i = inst(key_name=None, floating_ips=[], ports=[])
    assert get(i, "/1.0/meta-data") == "\n".join(
        [
            "ami-id",
            "ami-launch-index",
            "ami-manifest-path",
            "hostname",
            "instance-id",
            "local-ipv4",
            "reservation-id",
            "security-groups",
        ]
    )
    assert get(i, "/latest/meta-data/public-ipv4") == ""
    assert get(i, "/latest/meta-data/local-ipv4", address="10.9.9.9") == "10.9.9.9"
    assert resolve(i, "/latest/meta-data/hostname", dhcp_domain="")[0] == "vm1"


def test_openstack_versions_and_listing() -> None:
    i = inst()
    day = date(2026, 1, 1)
    assert resolve(i, "/openstack", dhcp_domain="", today=day)[0] == "\n".join([*tree.OPENSTACK_VERSIONS, "latest"])
    assert tree.openstack_versions(date(2020, 1, 1))[-1] == tree.ROCKY
    assert get(i, "/openstack/latest") == "\n".join(
        ["meta_data.json", "user_data", "password", "vendor_data.json", "network_data.json", "vendor_data2.json"]
    )
    assert get(inst(user_data=None), "/openstack/2012-08-10") == "meta_data.json"
    assert get(i, "/openstack/2013-10-17/") == "meta_data.json\nuser_data\npassword\nvendor_data.json"
    for bad in (
        "/openstack/2012-08-10/password",
        "/openstack/2013-04-04/vendor_data.json",
        "/openstack/2016-06-30/vendor_data2.json",
        "/openstack/1999-01-01",
        "/openstack/latest/nope",
        "/openstack/latest/meta_data.json/uuid",
    ):
        with pytest.raises(NotFound):
            get(i, bad)
    # network_data.json is served for any version
    assert get(i, "/openstack/2012-08-10/network_data.json")
    assert resolve(i, "/openstack/latest/network_data.json", dhcp_domain="")[1].startswith("text/plain")
    assert resolve(i, "/openstack/latest/meta_data.json", dhcp_domain="")[1] == "application/json"
    assert json.loads(get(i, "/openstack/latest/vendor_data.json")) == {}
    assert json.loads(get(i, "/openstack/latest/vendor_data2.json")) == {"static": {}}
    assert get(i, "/openstack/latest/user_data") == b"#!/bin/sh\necho hi\n"
    assert get(inst(password="s3cret"), "/openstack/latest/password") == "s3cret"


def test_meta_data_json() -> None:
    md = json.loads(get(inst(), "/openstack/latest/meta_data.json"))
    assert list(md) == [
        "uuid",
        "meta",
        "public_keys",
        "keys",
        "hostname",
        "name",
        "launch_index",
        "availability_zone",
        "random_seed",
        "project_id",
        "devices",
        "dedicated_cpus",
    ]
    assert md["uuid"] == SID and md["meta"] == {"role": "web"} and md["hostname"] == "vm1.novalocal"
    assert md["public_keys"] == {"k1": "ssh-ed25519 AAAA k1"}
    assert md["keys"] == [{"name": "k1", "type": "ssh", "data": "ssh-ed25519 AAAA k1"}]
    assert len(base64.b64decode(md["random_seed"])) == 512 and md["project_id"] == "p-demo"
    old = json.loads(get(inst(meta={}, key_name=None), "/openstack/2012-08-10/meta_data.json"))
    assert list(old) == ["uuid", "hostname", "name", "launch_index", "availability_zone"]


def test_network_data_json() -> None:
    nd = json.loads(get(inst(), "/openstack/latest/network_data.json"))
    assert nd["links"] == [
        {
            "id": "tapabcdef01-23",
            "vif_id": PORT,
            "type": "ovs",
            "mtu": 1450,
            "ethernet_mac_address": "fa:16:3e:11:22:33",
        }
    ]
    assert nd["networks"] == [
        {"id": "network0", "type": "ipv4_dhcp", "link": "tapabcdef01-23", "network_id": NET},
        {
            "id": "network1",
            "type": "ipv6_slaac",
            "link": "tapabcdef01-23",
            "ip_address": "fd00::5",
            "netmask": "ffff:ffff:ffff:ffff::",
            "routes": [
                {"network": "::", "netmask": "::", "gateway": "fd00::1"},
                {"network": "fd01::", "netmask": "ffff:ffff:ffff:ffff::", "gateway": "fd00::2"},
            ],
            "network_id": NET,
            "services": [{"type": "dns", "address": "8.8.8.8"}, {"type": "dns", "address": "fd00::53"}],
        },
    ]
    assert nd["services"] == [{"type": "dns", "address": "8.8.8.8"}, {"type": "dns", "address": "fd00::53"}]

    static = inst()
    static.subnets[SUB4]["enable_dhcp"] = False
    static.ports[0]["binding:vif_type"] = "unbound"
    nd = json.loads(get(static, "/openstack/latest/network_data.json"))
    assert nd["links"][0]["mtu"] == 1450 and nd["links"][0]["type"] == "phy"
    assert nd["networks"][0] == {
        "id": "network0",
        "type": "ipv4",
        "link": "tapabcdef01-23",
        "ip_address": "10.0.0.5",
        "netmask": "255.255.255.0",
        "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}],
        "network_id": NET,
        "services": [{"type": "dns", "address": "8.8.8.8"}],
    }
    assert json.loads(get(inst(ports=[]), "/openstack/latest/network_data.json")) == {}


def test_network_data_mtu_and_dns_of_every_port() -> None:
    """Each link has its network's MTU (DHCP or not; None when unknown); the top-level DNS
    services are every subnet's ``dns_nameservers`` once, by port, IPv4 subnets first."""
    net2, port2, sub2 = "22222222-2222-3333-4444-555555555555", "bcdef012-2345-6789-abcd-ef0123456789", "bbbb"
    i = inst()
    i.ports.append(
        {
            "id": port2,
            "network_id": net2,
            "mac_address": "fa:16:3e:44:55:66",
            "binding:vif_type": "ovs",
            "fixed_ips": [{"subnet_id": sub2, "ip_address": "192.168.5.9"}],
        }
    )
    i.networks[net2] = {"id": net2, "name": "jumbo", "mtu": 8950}
    i.subnets[sub2] = {
        "id": sub2,
        "network_id": net2,
        "ip_version": 4,
        "cidr": "192.168.5.0/24",
        "gateway_ip": None,
        "enable_dhcp": False,
        "dns_nameservers": ["192.168.5.53", "8.8.8.8"],
        "host_routes": [],
    }
    nd = json.loads(get(i, "/openstack/latest/network_data.json"))
    assert [(link["vif_id"], link["mtu"]) for link in nd["links"]] == [(PORT, 1450), (port2, 8950)]
    assert nd["services"] == [{"type": "dns", "address": a} for a in ("8.8.8.8", "fd00::53", "192.168.5.53")]
    assert nd["networks"][2] == {
        "id": "network2",
        "type": "ipv4",
        "link": "tapbcdef012-23",
        "ip_address": "192.168.5.9",
        "netmask": "255.255.255.0",
        "routes": [],
        "network_id": net2,
        "services": [{"type": "dns", "address": "192.168.5.53"}, {"type": "dns", "address": "8.8.8.8"}],
    }
    i.ports[0]["fixed_ips"].reverse()  # the IPv6 address first: same order
    assert json.loads(get(i, "/openstack/latest/network_data.json"))["services"] == nd["services"]
    # no DNS server anywhere: empty services; an unknown MTU: null
    bare = inst(networks={})
    for sub in bare.subnets.values():
        sub["dns_nameservers"] = []
    nd = json.loads(get(bare, "/openstack/latest/network_data.json"))
    assert nd["services"] == [] and nd["links"][0]["mtu"] is None and nd["networks"][1]["services"] == []


def test_instance_from_view() -> None:
    view = {
        "id": SID,
        "name": "vm1",
        "project_id": "p",
        "user_id": "u",
        "hostname": "vm-1",
        "availability_zone": "az1",
        "image": {"id": "img"},
        "flavor": {"original_name": "m1.nano"},
        "key_name": None,
        "key_data": None,
        "user_data": base64.b64encode(b"hello").decode(),
        "metadata": {"a": "b"},
        "ports": [],
        "networks": {},
        "subnets": {},
    }
    i = tree.instance_from_view(view, floating_ips=["1.2.3.4"])
    assert (i.hostname, i.availability_zone, i.flavor_name, i.user_data) == ("vm-1", "az1", "m1.nano", b"hello")
    assert i.floating_ips == ["1.2.3.4"] and i.meta == {"a": "b"}


# --- trunk subports as VLAN links --------------------------------------------------------------
SUBPORT_A = "5ab00000-0000-4000-8000-00000000000a"
SUBPORT_B = "5ab00000-0000-4000-8000-00000000000b"
SUBPORT_C = "5ab00000-0000-4000-8000-00000000000c"
NET_A = "22222222-0000-0000-0000-00000000000a"
NET_B = "22222222-0000-0000-0000-00000000000b"
SUB_A = "bbbbbbbb-0000-0000-0000-00000000000a"
SUB_B = "bbbbbbbb-0000-0000-0000-00000000000b"


def trunk_inst() -> Instance:
    """``inst()`` whose port is a trunk parent with subports on VLAN 200 (static IPv4 with DNS),
    VLAN 101 (DHCP) and VLAN 300 (no address: no link)."""
    base = inst()
    parent = dict(base.ports[0])
    parent["trunk_details"] = {
        "trunk_id": "7e000000-0000-4000-8000-000000000001",
        "sub_ports": [
            {
                "segmentation_id": 200,
                "segmentation_type": "vlan",
                "port_id": SUBPORT_B,
                "mac_address": "fa:16:3e:00:00:0b",
            },
            {
                "segmentation_id": 101,
                "segmentation_type": "vlan",
                "port_id": SUBPORT_A,
                "mac_address": "fa:16:3e:00:00:0a",
            },
            {
                "segmentation_id": 300,
                "segmentation_type": "vlan",
                "port_id": SUBPORT_C,
                "mac_address": "fa:16:3e:00:00:0c",
            },
        ],
    }
    subports = [
        {
            "id": SUBPORT_A,
            "network_id": NET_A,
            "mac_address": "fa:16:3e:00:00:0a",
            "binding:vif_type": "ovs",
            "fixed_ips": [{"subnet_id": SUB_A, "ip_address": "192.168.101.5"}],
        },
        {
            "id": SUBPORT_B,
            "network_id": NET_B,
            "mac_address": "fa:16:3e:00:00:0b",
            "binding:vif_type": "ovs",
            "fixed_ips": [{"subnet_id": SUB_B, "ip_address": "192.168.200.5"}],
        },
        {"id": SUBPORT_C, "network_id": NET_B, "mac_address": "fa:16:3e:00:00:0c", "fixed_ips": []},
    ]
    networks = {
        **base.networks,
        NET_A: {"id": NET_A, "name": "a", "mtu": 1400},
        NET_B: {"id": NET_B, "name": "b", "mtu": 1500},
    }
    subnets = {
        **base.subnets,
        SUB_A: {
            "id": SUB_A,
            "network_id": NET_A,
            "ip_version": 4,
            "cidr": "192.168.101.0/24",
            "gateway_ip": "192.168.101.1",
            "enable_dhcp": True,
            "dns_nameservers": ["8.8.8.8"],
            "host_routes": [],
        },
        SUB_B: {
            "id": SUB_B,
            "network_id": NET_B,
            "ip_version": 4,
            "cidr": "192.168.200.0/24",
            "gateway_ip": None,
            "enable_dhcp": False,
            "dns_nameservers": ["192.168.200.53"],
            "host_routes": [{"destination": "10.99.0.0/16", "nexthop": "192.168.200.1"}],
        },
    }
    return inst(ports=[parent], networks=networks, subnets=subnets, subports={p["id"]: p for p in subports})


def test_network_data_lists_trunk_subports_as_vlan_links() -> None:
    nd = json.loads(get(trunk_inst(), "/openstack/latest/network_data.json"))
    parent_link = "tap" + PORT[:11]
    assert [link["id"] for link in nd["links"]] == [parent_link, "tap" + SUBPORT_A[:11], "tap" + SUBPORT_B[:11]]
    assert nd["links"][0]["type"] == "ovs"
    assert nd["links"][1] == {
        "id": "tap" + SUBPORT_A[:11],
        "vif_id": SUBPORT_A,
        "type": "vlan",
        "mtu": 1400,
        "vlan_link": parent_link,
        "vlan_id": 101,
        "vlan_mac_address": "fa:16:3e:00:00:0a",
        "neutron_port_id": SUBPORT_A,
    }
    assert nd["links"][2]["vlan_id"] == 200 and nd["links"][2]["mtu"] == 1500
    assert nd["links"][2]["vlan_mac_address"] == "fa:16:3e:00:00:0b"
    # The parent's networks, then each subport's, on its VLAN link.
    assert [(n["id"], n["type"], n["link"]) for n in nd["networks"]] == [
        ("network0", "ipv4_dhcp", parent_link),
        ("network1", "ipv6_slaac", parent_link),
        ("network2", "ipv4_dhcp", "tap" + SUBPORT_A[:11]),
        ("network3", "ipv4", "tap" + SUBPORT_B[:11]),
    ]
    assert nd["networks"][2]["network_id"] == NET_A
    assert nd["networks"][3] == {
        "id": "network3",
        "type": "ipv4",
        "link": "tap" + SUBPORT_B[:11],
        "ip_address": "192.168.200.5",
        "netmask": "255.255.255.0",
        "routes": [{"network": "10.99.0.0", "netmask": "255.255.0.0", "gateway": "192.168.200.1"}],
        "network_id": NET_B,
        "services": [{"type": "dns", "address": "192.168.200.53"}],
    }
    # DNS servers of the subports' subnets join the top-level services, once each.
    assert nd["services"] == [
        {"type": "dns", "address": "8.8.8.8"},
        {"type": "dns", "address": "fd00::53"},
        {"type": "dns", "address": "192.168.200.53"},
    ]


def test_network_data_vlan_links_need_a_known_subport() -> None:
    # Subports the view did not load (e.g. deleted since) and a parent without an address are left out.
    i = trunk_inst()
    i.subports = {}
    nd = json.loads(get(i, "/openstack/latest/network_data.json"))
    assert [link["type"] for link in nd["links"]] == ["ovs"]
    i = trunk_inst()
    i.ports = [dict(i.ports[0], fixed_ips=[])]
    assert json.loads(get(i, "/openstack/latest/network_data.json")) == {}
