"""Server views: shape server rows and their network facts into Nova's API
view and into the compute agents' view (pure: no database).

``row`` is a ``servers`` row (anything with its columns as attributes).
``ports`` are a server's NICs as ``ServerService.network_info`` reads them:
``{id, network_id, network_name, mac_address, fixed_ips: [{ip_address,
version, subnet_id}], floating_ips: [{ip_address, fixed_ip_address,
version}], security_groups: [names]}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from neutrino.compute import images
from neutrino.compute.microversion import Version
from neutrino.compute.server_requests import DEFAULT_AZ


def host_id(project_id: str, host: str | None) -> str:
    """Nova's ``hostId``: an opaque per-project digest of the host ('' when unplaced)."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def links(base: str, sid: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/v2.1/servers/{sid}"}, {"rel": "bookmark", "href": f"{base}/servers/{sid}"}]


def addresses(ports: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Nova's ``addresses``: per network name (id when unnamed), fixed then floating addresses."""
    out: dict[str, list[dict[str, Any]]] = {}
    for p in ports:
        entries = out.setdefault(p["network_name"] or p["network_id"], [])
        for a in p["fixed_ips"]:
            entries.append(
                {
                    "version": a["version"],
                    "addr": a["ip_address"],
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": p["mac_address"],
                }
            )
        for f in p["floating_ips"]:
            entries.append(
                {
                    "version": f["version"],
                    "addr": f["ip_address"],
                    "OS-EXT-IPS:type": "floating",
                    "OS-EXT-IPS-MAC:mac_addr": p["mac_address"],
                }
            )
    return out


def nics_in_order(
    rows: Iterable[Any],
    port_rows: Iterable[Any],
    ips: dict[str, list[dict[str, Any]]],
    fips: dict[str, list[dict[str, Any]]],
    sgs: dict[str, list[str]],
) -> dict[str, list[dict[str, Any]]]:
    """Per server id of ``rows``: its ports (``port_rows``: id, device_id, network_id, network_name,
    mac_address) with their fixed IPs, floating IPs and security group names by port id, in the
    server's NIC order (ports it no longer lists last, in ``port_rows`` order)."""
    by_server: dict[str, list[dict[str, Any]]] = {}
    for r in port_rows:
        by_server.setdefault(r.device_id, []).append(
            {
                "id": r.id,
                "network_id": r.network_id,
                "network_name": r.network_name,
                "mac_address": r.mac_address,
                "fixed_ips": ips.get(r.id, []),
                "floating_ips": fips.get(r.id, []),
                "security_groups": sgs.get(r.id, []),
            }
        )
    out = {}
    for row in rows:
        ports = by_server.get(row.id, [])
        order = {n["port_id"]: i for i, n in enumerate(row.nics or [])}
        ports.sort(key=lambda x: order.get(x["id"], len(order)))
        out[row.id] = ports
    return out


# ============================================================================== the API view
def server_view(
    r: Any,
    ports: list[dict[str, Any]],
    mv: Version,
    base: str,
    *,
    admin: bool,
    host_status: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Nova's detailed server view at microversion ``mv``; ``admin`` adds the ``OS-EXT-SRV-ATTR``
    fields and fault details; ``host_status``: host -> ``UP``/``DOWN`` (2.16, admins)."""
    flavor = dict(r.flavor or {})
    if mv >= (2, 47):
        flavor_view: dict[str, Any] = {
            "vcpus": flavor.get("vcpus"),
            "ram": flavor.get("ram"),
            "disk": flavor.get("disk"),
            "ephemeral": flavor.get("ephemeral", 0),
            "swap": flavor.get("swap", 0),
            "original_name": flavor.get("name"),
            "extra_specs": dict(flavor.get("extra_specs") or {}),
        }
    else:
        flavor_view = {"id": r.flavor_id, "links": [{"rel": "bookmark", "href": f"{base}/flavors/{r.flavor_id}"}]}
    out: dict[str, Any] = {
        "id": r.id,
        "name": r.name,
        "status": r.status,
        "tenant_id": r.project_id,
        "user_id": r.user_id,
        "metadata": dict(r.meta or {}),
        "hostId": host_id(r.project_id, r.host),
        "image": {"id": r.image_id, "links": [{"rel": "bookmark", "href": f"{base}/images/{r.image_id}"}]},
        "flavor": flavor_view,
        "created": r.created_at,
        "updated": r.updated_at,
        "addresses": addresses(ports),
        "accessIPv4": r.access_ipv4,
        "accessIPv6": r.access_ipv6,
        "links": links(base, r.id),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": r.availability_zone or DEFAULT_AZ,
        "config_drive": "True" if r.config_drive else "",
        "key_name": r.key_name,
        "OS-SRV-USG:launched_at": r.launched_at,
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": r.task_state,
        "OS-EXT-STS:vm_state": r.vm_state,
        "OS-EXT-STS:power_state": r.power_state,
        "os-extended-volumes:volumes_attached": [],
    }
    if r.status in ("BUILD", "ACTIVE"):
        out["progress"] = 0
    groups = sorted({g for p in ports for g in p["security_groups"]})
    if groups:
        out["security_groups"] = [{"name": g} for g in groups]
    if admin:
        out["OS-EXT-SRV-ATTR:host"] = r.host
        out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = r.host
        out["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{r.id[:8]}"
        if mv >= (2, 3):
            out.update(
                {
                    "OS-EXT-SRV-ATTR:reservation_id": f"r-{r.id[:8]}",
                    "OS-EXT-SRV-ATTR:launch_index": 0,
                    "OS-EXT-SRV-ATTR:hostname": r.hostname,
                    "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    "OS-EXT-SRV-ATTR:root_device_name": None,
                    "OS-EXT-SRV-ATTR:user_data": r.user_data,
                }
            )
    if mv >= (2, 9):
        out["locked"] = False
    if admin and mv >= (2, 16):
        out["host_status"] = (host_status or {}).get(r.host, "") if r.host else ""
    if mv >= (2, 19):
        out["description"] = r.description
    if mv >= (2, 26):
        out["tags"] = list(r.tags or [])
    if mv >= (2, 63):
        out["trusted_image_certificates"] = None
    if mv >= (2, 71):
        out["server_groups"] = []
    if mv >= (2, 73):
        out["locked_reason"] = None
    if r.status == "ERROR" and r.fault:
        fault = {
            "code": r.fault.get("code", 500),
            "created": r.fault.get("created", r.updated_at),
            "message": r.fault.get("message", ""),
        }
        if admin or fault["code"] != 500:
            fault["details"] = r.fault.get("details", "")
        out["fault"] = fault
    return out


# ============================================================================== the agent view
def agent_view(r: Any) -> dict[str, Any]:
    """What a compute agent needs to run server ``r``.

    Only what the server owns: ``port_ids`` (NIC order, as created or taken
    over; a port deleted since is still listed, the agent skips it), the
    flavor as it was at create time, the key pair's public key
    (``key_data``), ``user_data`` (base64 as given), ``metadata``, ``host``,
    states and ``fault``.  Feed bodies and snapshot objects are exactly
    this, so a port or subnet change never changes a server's body (the
    agent follows ``port``/``network``/``subnet`` for those).
    """
    img = images.BY_ID.get(r.image_id)
    return {
        "id": r.id,
        "name": r.name,
        "project_id": r.project_id,
        "user_id": r.user_id,
        "status": r.status,
        "vm_state": r.vm_state,
        "task_state": r.task_state,
        "power_state": r.power_state,
        "host": r.host,
        "availability_zone": r.availability_zone or DEFAULT_AZ,
        "hostname": r.hostname,
        "image": {"id": r.image_id, "name": img.name if img else None, "type": img.kind if img else None},
        "flavor": dict(r.flavor or {}),
        "key_name": r.key_name,
        "key_data": r.key_data,
        "user_data": r.user_data,
        "metadata": dict(r.meta or {}),
        "config_drive": r.config_drive,
        "fault": r.fault,
        "port_ids": [n["port_id"] for n in (r.nics or [])],
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "launched_at": r.launched_at,
        "revision_number": r.revision_number,
    }


def expand(
    views: list[dict[str, Any]],
    port_dicts: Sequence[Mapping[str, Any]],
    nets: dict[str, Any],
    subnets: dict[str, Any],
) -> None:
    """Add to each agent view (in place) ``ports`` (its own of ``port_dicts``, Neutron admin-view
    dicts, in NIC order), ``networks`` ({id: {id, name, mtu}}) and ``subnets`` ({id: {id,
    network_id, ip_version, cidr, gateway_ip, enable_dhcp, dns_nameservers, host_routes}}) from
    ``nets``/``subnets`` (``server_service.network_context``).  A port is a server's own when it
    names the server and is in the server's project."""
    for v in views:
        order = {pid: i for i, pid in enumerate(v["port_ids"])}
        mine = sorted(
            (p for p in port_dicts if p["device_id"] == v["id"] and p["project_id"] == v["project_id"]),
            key=lambda p: order.get(p["id"], len(order)),
        )
        v["ports"] = mine
        v["networks"] = {p["network_id"]: nets[p["network_id"]] for p in mine if p["network_id"] in nets}
        v["subnets"] = {
            a["subnet_id"]: subnets[a["subnet_id"]] for p in mine for a in p["fixed_ips"] if a["subnet_id"] in subnets
        }
