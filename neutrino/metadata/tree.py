"""The metadata trees served to instances (pure functions, no I/O).

``Instance`` is what the trees are built from (``api.py`` fills it from the
server's expanded agent view, its floating IPs and security groups).  The
EC2 tree (``/<version>/meta-data/...``, ``/<version>/user-data``) and the
OpenStack tree (``/openstack/<version>/meta_data.json`` ...) follow the Nova
metadata API's layout, versions and listing format.

``resolve(inst, path, ...)`` answers one GET: ``(body, content_type)`` or
raises ``NotFound``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import posixpath
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

TEXT = "text/plain; charset=UTF-8"
JSON = "application/json"

EC2_VERSIONS = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
)

FOLSOM, GRIZZLY, HAVANA, LIBERTY = "2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15"
NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY = "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27"
VICTORIA, EPOXY = "2020-10-14", "2025-04-04"
OPENSTACK_VERSIONS = (FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA, EPOXY)

LINK_TYPES = frozenset({"bridge", "dvs", "hw_veb", "hyperv", "ovs", "tap", "vhostuser", "vif"})


class NotFound(Exception):
    """The path names no item (unknown version, key, or an absent item such as user data)."""


@dataclass
class Instance:
    uuid: str
    name: str
    hostname: str  # bare (no domain)
    project_id: str
    availability_zone: str
    flavor_name: str
    image_id: str
    launch_index: int = 0
    key_name: str | None = None
    key_data: str | None = None
    key_type: str = "ssh"
    user_data: bytes | None = None
    meta: dict[str, str] = field(default_factory=dict)
    security_groups: list[str] = field(default_factory=list)
    floating_ips: list[str] = field(default_factory=list)
    # Neutron port dicts (NIC order), {network id: {id, name, mtu}}, {subnet id: {...}}
    ports: list[dict[str, Any]] = field(default_factory=list)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Trunk subports of the trunk parents among ``ports``: {port id: Neutron port dict}
    # (their networks and subnets are in ``networks``/``subnets`` too)
    subports: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    password: str = ""
    vendor_data: dict[str, Any] = field(default_factory=dict)


def decode_user_data(raw: str | None) -> bytes | None:
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        return raw.encode()


def instance_from_view(
    view: dict[str, Any],
    *,
    floating_ips: list[str] | None = None,
    security_groups: list[str] | None = None,
    key_type: str = "ssh",
    password: str = "",
    subports: Sequence[Mapping[str, Any]] | None = None,
) -> Instance:
    """An ``Instance`` from ``ServerService.agent_view(..., expand=True)`` (and the port dicts of
    its trunk subports, whose networks and subnets the view's maps must hold as well)."""
    flavor = view.get("flavor") or {}
    return Instance(
        uuid=view["id"],
        name=view["name"],
        hostname=view.get("hostname") or view["name"],
        project_id=view["project_id"],
        availability_zone=view.get("availability_zone") or "nova",
        flavor_name=flavor.get("original_name") or flavor.get("name") or "",
        image_id=(view.get("image") or {}).get("id") or "",
        key_name=view.get("key_name"),
        key_data=view.get("key_data"),
        key_type=key_type or "ssh",
        user_data=decode_user_data(view.get("user_data")),
        meta=dict(view.get("metadata") or {}),
        security_groups=list(security_groups or []),
        floating_ips=list(floating_ips or []),
        ports=list(view.get("ports") or []),
        networks=dict(view.get("networks") or {}),
        subnets=dict(view.get("subnets") or {}),
        subports={p["id"]: p for p in subports or []},
        password=password,
    )


# --- formatting -------------------------------------------------------------------------------
def listing(data: Any) -> str | bytes:
    """Nova's rendering: dict keys sorted (sub-dicts as ``key/`` or their ``_name``), lists one
    item a line, joined by newlines, no trailing newline."""
    if isinstance(data, dict):
        out = []
        for key in sorted(data):
            if key == "_name":
                continue
            val = data[key]
            if isinstance(val, dict):
                out.append(val["_name"] if "_name" in val else f"{key}/")
            else:
                out.append(key)
        return "\n".join(out)
    if isinstance(data, list):
        return "\n".join(str(x) for x in data)
    if isinstance(data, (str, bytes)):
        return data
    return str(data)


def _hex8(text: str) -> int:
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")[:8]
    return int(digits or "0", 16)


def full_hostname(inst: Instance, dhcp_domain: str) -> str:
    return f"{inst.hostname}.{dhcp_domain}" if dhcp_domain else inst.hostname


def _fixed_ips(inst: Instance, version: int) -> list[str]:
    out = []
    for p in inst.ports:
        for a in p.get("fixed_ips") or []:
            if ipaddress.ip_address(a["ip_address"]).version == version:
                out.append(a["ip_address"])
    return out


# --- EC2 ----------------------------------------------------------------------------------------
def _ec2_at_least(required: str, requested: str) -> bool:
    return EC2_VERSIONS.index(requested) >= EC2_VERSIONS.index(required)


def ec2_metadata(inst: Instance, version: str, *, dhcp_domain: str, address: str | None) -> dict[str, Any]:
    """The ``/<version>/`` dict: ``meta-data`` (and ``user-data`` when there is some)."""
    if version == "latest":
        version = EC2_VERSIONS[-1]
    if version not in EC2_VERSIONS:
        raise NotFound(version)
    hostname = full_hostname(inst, dhcp_domain)
    fixed4 = _fixed_ips(inst, 4)
    md: dict[str, Any] = {
        "ami-id": f"ami-{_hex8(inst.image_id):08x}",
        "ami-launch-index": inst.launch_index,
        "ami-manifest-path": "FIXME",
        "hostname": hostname,
        "instance-id": f"i-{_hex8(inst.uuid):08x}",
        "local-ipv4": fixed4[0] if fixed4 else (address or ""),
        "reservation-id": f"r-{inst.uuid[:8]}",
        "security-groups": list(inst.security_groups),
    }
    if inst.key_name:
        md["public-keys"] = {"0": {"_name": f"0={inst.key_name}", "openssh-key": inst.key_data or ""}}
    if _ec2_at_least("2007-01-19", version):
        md["local-hostname"] = hostname
        md["public-hostname"] = hostname
        md["public-ipv4"] = inst.floating_ips[0] if inst.floating_ips else ""
    if _ec2_at_least("2007-08-29", version):
        md["instance-type"] = inst.flavor_name
    if _ec2_at_least("2007-12-15", version):
        bdm = {"ami": "vda", "root": "/dev/vda"}
        # No flavor ephemeral/swap disks are attached by our compute agent: none are listed.
        md["block-device-mapping"] = bdm
    if _ec2_at_least("2008-02-01", version):
        md["placement"] = {"availability-zone": inst.availability_zone}
    if _ec2_at_least("2008-09-01", version):
        md["instance-action"] = "none"
    data: dict[str, Any] = {"meta-data": md}
    if inst.user_data is not None:
        data["user-data"] = inst.user_data
    return data


# --- OpenStack ----------------------------------------------------------------------------------
def openstack_versions(today: date | None = None) -> list[str]:
    """The dated versions not in the future (``latest`` is the newest of these)."""
    day = (today or date.today()).isoformat()
    return [v for v in OPENSTACK_VERSIONS if v <= day]


def _os_at_least(required: str, requested: str) -> bool:
    return requested >= required


def meta_data_json(
    inst: Instance, version: str, *, dhcp_domain: str, random_bytes: Callable[[int], bytes] = os.urandom
) -> dict[str, Any]:
    md: dict[str, Any] = {"uuid": inst.uuid}
    if inst.meta:
        md["meta"] = dict(inst.meta)
    if inst.key_name:
        md["public_keys"] = {inst.key_name: inst.key_data or ""}
        md["keys"] = [{"name": inst.key_name, "type": inst.key_type, "data": inst.key_data or ""}]
    md["hostname"] = full_hostname(inst, dhcp_domain)
    md["name"] = inst.name
    md["launch_index"] = inst.launch_index
    md["availability_zone"] = inst.availability_zone
    if _os_at_least(GRIZZLY, version):
        md["random_seed"] = base64.b64encode(random_bytes(512)).decode()
    if _os_at_least(LIBERTY, version):
        md["project_id"] = inst.project_id
    if _os_at_least(NEWTON_ONE, version):
        md["devices"] = []  # no tagged devices
    if _os_at_least(VICTORIA, version):
        md["dedicated_cpus"] = []
    return md


def _netmask(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False).netmask)


def _routes(subnet: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    if subnet.get("gateway_ip"):
        any_ = "0.0.0.0" if subnet["ip_version"] == 4 else "::"
        out.append({"network": any_, "netmask": any_, "gateway": subnet["gateway_ip"]})
    for r in subnet.get("host_routes") or []:
        net = ipaddress.ip_network(r["destination"], strict=False)
        out.append({"network": str(net.network_address), "netmask": str(net.netmask), "gateway": r["nexthop"]})
    return out


def _dns(subnet: dict[str, Any]) -> list[dict[str, str]]:
    return [{"type": "dns", "address": a} for a in subnet.get("dns_nameservers") or []]


def _mtu(value: Any) -> int | None:
    """A network's MTU as an int (None if absent or not a positive number)."""
    try:
        mtu = int(value)
    except (TypeError, ValueError):
        return None
    return mtu if mtu > 0 else None


def _port_networks(
    inst: Instance,
    port: Mapping[str, Any],
    ips: list[dict[str, Any]],
    link_id: str,
    networks: list[dict[str, Any]],
    services: list[dict[str, str]],
) -> None:
    """Append a port's ``networks`` entries (its first subnet of each IP version: a DHCP IPv4 one
    as ``ipv4_dhcp``, a static one with address, routes and DNS ``services``) and add its
    subnets' DNS servers to the top-level ``services`` (IPv4 subnets first, once each)."""
    for version in (4, 6):
        first = next((a for a in ips if inst.subnets[a["subnet_id"]]["ip_version"] == version), None)
        if first is None:
            continue
        subnet = inst.subnets[first["subnet_id"]]
        nid = f"network{len(networks)}"
        if version == 4 and subnet.get("enable_dhcp"):
            networks.append({"id": nid, "type": "ipv4_dhcp", "link": link_id, "network_id": port["network_id"]})
            continue
        kind = f"ipv{version}"
        if version == 6 and subnet.get("ipv6_address_mode"):
            kind = f"ipv6_{subnet['ipv6_address_mode']}"
        networks.append(
            {
                "id": nid,
                "type": kind,
                "link": link_id,
                "ip_address": first["ip_address"],
                "netmask": _netmask(subnet["cidr"]),
                "routes": _routes(subnet),
                "network_id": port["network_id"],
                "services": _dns(subnet),
            }
        )
    # IPv4 subnets first, as in ``networks`` (the port's fixed IPs come in no set order)
    subnet_ids = list(dict.fromkeys(a["subnet_id"] for a in ips))
    for s in sorted(subnet_ids, key=lambda sid: inst.subnets[sid]["ip_version"]):
        for svc in _dns(inst.subnets[s]):
            if svc not in services:
                services.append(svc)


def _addressed(inst: Instance, port: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The port's fixed IPs on subnets the instance's view knows."""
    return [a for a in port.get("fixed_ips") or [] if a["subnet_id"] in inst.subnets]


def _vlan_links(
    inst: Instance,
    parent: dict[str, Any],
    parent_link: str,
    links: list[dict[str, Any]],
    networks: list[dict[str, Any]],
    services: list[dict[str, str]],
) -> None:
    """The VLAN links of a trunk parent's subports (those with an address here), by
    segmentation id: ``{"id", "vif_id", "type": "vlan", "mtu", "vlan_link": <parent's link>,
    "vlan_id": <segmentation id>, "vlan_mac_address", "neutron_port_id"}``, each followed by
    the subport's ``networks`` entries on that link, so a guest (cloud-init) creates the VLAN
    interface on the parent's NIC and configures it."""
    subs = [
        s
        for s in (parent.get("trunk_details") or {}).get("sub_ports") or []
        if s.get("segmentation_type", "vlan") == "vlan" and s["port_id"] in inst.subports
    ]
    for sub in sorted(subs, key=lambda s: int(s["segmentation_id"])):
        port = inst.subports[sub["port_id"]]
        ips = _addressed(inst, port)
        if not ips:
            continue
        link_id = "tap" + port["id"][:11]
        net = inst.networks.get(port["network_id"]) or {}
        links.append(
            {
                "id": link_id,
                "vif_id": port["id"],
                "type": "vlan",
                "mtu": _mtu(net.get("mtu")),
                "vlan_link": parent_link,
                "vlan_id": int(sub["segmentation_id"]),
                "vlan_mac_address": port.get("mac_address") or sub.get("mac_address"),
                "neutron_port_id": port["id"],
            }
        )
        _port_networks(inst, port, ips, link_id, networks, services)


def network_data_json(inst: Instance) -> dict[str, Any]:
    """Nova's ``network_data.json``: ``links`` (one per port with an address here, with its
    network's ``mtu``; after a trunk parent's link, a ``vlan`` link per subport), ``networks``
    (per port, its first subnet of each IP version: a DHCP one as ``ipv4_dhcp``, a static one
    with address, routes and the subnet's DNS ``services``) and the top-level ``services``:
    every DNS server of the ports' subnets (``dns_nameservers``), once each, by port, IPv4
    subnets before IPv6 ones."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    for port in inst.ports:
        ips = _addressed(inst, port)
        if not ips:
            continue
        link_id = "tap" + port["id"][:11]
        vif_type = port.get("binding:vif_type") or ""
        net = inst.networks.get(port["network_id"]) or {}
        # The network's MTU whether or not DHCP also announces it (as current Nova): IPv6 and
        # static configurations have no other source.  None only when it is unknown.
        links.append(
            {
                "id": link_id,
                "vif_id": port["id"],
                "type": vif_type if vif_type in LINK_TYPES else "phy",
                "mtu": _mtu(net.get("mtu")),
                "ethernet_mac_address": port["mac_address"],
            }
        )
        _port_networks(inst, port, ips, link_id, networks, services)
        _vlan_links(inst, port, link_id, links, networks, services)
    if not links:
        return {}
    return {"links": links, "networks": networks, "services": services}


def openstack_listing(inst: Instance, version: str) -> list[str]:
    out = ["meta_data.json"]
    if inst.user_data is not None:
        out.append("user_data")
    if _os_at_least(GRIZZLY, version):
        out.append("password")
    if _os_at_least(HAVANA, version):
        out.append("vendor_data.json")
    if _os_at_least(LIBERTY, version):
        out.append("network_data.json")
    if _os_at_least(NEWTON_TWO, version):
        out.append("vendor_data2.json")
    return out


def root_listing() -> str:
    """``GET /``: the EC2 versions (answered before any authentication)."""
    return "\n".join([*EC2_VERSIONS, "latest"])


# --- one GET -------------------------------------------------------------------------------------
def split_path(raw: str) -> list[str]:
    """Normalised path segments (trailing slashes and ``.``/``..`` resolved, as Nova does)."""
    path = posixpath.normpath("/" + raw.lstrip("/"))
    return [p for p in path.split("/") if p]


def resolve(
    inst: Instance, raw_path: str, *, dhcp_domain: str, address: str | None = None, today: date | None = None
) -> tuple[str | bytes, str]:
    """(body, content type) for ``GET raw_path``; raises ``NotFound``."""
    parts = split_path(raw_path)
    if not parts:
        return root_listing(), TEXT
    if parts[0] == "openstack":
        return _resolve_openstack(inst, parts[1:], dhcp_domain, today)
    if parts[0] == "ec2":
        parts = parts[1:]
        if not parts:
            return root_listing(), TEXT
    data: Any = ec2_metadata(inst, parts[0], dhcp_domain=dhcp_domain, address=address)
    for key in parts[1:]:
        if not isinstance(data, dict) or key == "_name" or key not in data:
            raise NotFound(raw_path)
        data = data[key]
    return listing(data), TEXT


def _resolve_openstack(
    inst: Instance, parts: list[str], dhcp_domain: str, today: date | None
) -> tuple[str | bytes, str]:
    versions = openstack_versions(today)
    if not parts:
        return listing(versions + ["latest"]), TEXT
    version = versions[-1] if parts[0] == "latest" else parts[0]
    if version not in versions:
        raise NotFound(parts[0])
    if len(parts) == 1:
        return listing(openstack_listing(inst, version)), TEXT
    if len(parts) > 2:
        raise NotFound("/".join(parts))
    item = parts[1]
    if item == "meta_data.json":
        return orjson.dumps(meta_data_json(inst, version, dhcp_domain=dhcp_domain)).decode(), JSON
    if item == "user_data":
        if inst.user_data is None:
            raise NotFound(item)
        return inst.user_data, TEXT
    if item == "password" and _os_at_least(GRIZZLY, version):
        return inst.password, TEXT
    if item == "vendor_data.json" and _os_at_least(HAVANA, version):
        return orjson.dumps(inst.vendor_data).decode(), JSON
    if item == "network_data.json":
        return orjson.dumps(network_data_json(inst)).decode(), TEXT
    if item == "vendor_data2.json" and _os_at_least(NEWTON_TWO, version):
        return orjson.dumps({"static": inst.vendor_data}).decode(), JSON
    raise NotFound(item)


def is_uuid(text: str) -> bool:
    try:
        uuidlib.UUID(text)
    except ValueError:
        return False
    return True
