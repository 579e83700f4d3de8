"""Servers: create (validate, schedule, wire ports), read, update, delete, and
the state reports of compute agents.

Lifecycle::

    create ──(a live compute host)──> BUILD ──agent: ACTIVE──> ACTIVE
       │                                 └────agent: ERROR───> ERROR
       └──(no host)──> ERROR, fault "No valid host was found. ...", no ports

Everything a create does happens in one unit of work: the server row, its
ports (created through the network services with ``device_owner``
``compute:nova``, ``device_id`` the server id, ``binding:host_id`` the chosen
host, ``dns_name`` the server's hostname, in the caller's project; ports given
by id are taken over) and the change-feed entries (``port`` and ``server``).  Delete removes the ports it
created, releases the ports it took over (device, binding, dns_name cleared),
deletes the row and records a ``server`` delete on the feed; the agent
tears the instance down when it sees it.

Visibility: a project's servers are its own; admins see every server
(listing needs ``all_tenants``, as in Nova).  Writes need ``member`` in the
owning project, or ``admin``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import secrets
import string
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from neutrino import errors as neutron_errors
from neutrino.compute import faults, images, scheduler
from neutrino.compute.flavors import FlavorService, _body, _no_extra
from neutrino.compute.keypairs import KeypairService
from neutrino.compute.microversion import Version
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.ipam import addresses
from neutrino.services import quotas, rbac
from neutrino.services.common import Deps
from neutrino.services.networks import network_target
from neutrino.services.ports import PortService
from neutrino.timeutil import now_iso

DEVICE_OWNER = "compute:nova"
DEFAULT_AZ = "nova"
MAX_COUNT = 10
MAX_METADATA = 128
MAX_USER_DATA = 65535
#: Nova's power states.
NOSTATE, RUNNING, SHUTDOWN = 0, 1, 4
#: status -> (vm_state, power_state) an agent report sets.
AGENT_STATES = {"ACTIVE": ("active", RUNNING), "ERROR": ("error", NOSTATE), "SHUTOFF": ("stopped", SHUTDOWN)}
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_TAG_BAD = re.compile(r"[/,]")
_CREATE_KEYS = {"name", "imageRef", "flavorRef", "key_name", "user_data", "metadata", "networks",
                "security_groups", "availability_zone", "config_drive", "adminPass", "accessIPv4",
                "accessIPv6", "OS-DCF:diskConfig", "min_count", "max_count", "return_reservation_id",
                "block_device_mapping", "block_device_mapping_v2", "personality"}


def _usec_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _as_list(params: dict[str, list[str]], key: str) -> list[str]:
    return [v for v in params.get(key, []) if v != ""]


def _truthy(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "t", "yes", "y", "on")


def hostname_for(name: str, fallback: str) -> str:
    """A DNS label from a display name (``server-<id>`` when nothing usable is left)."""
    h = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return h or f"server-{fallback}"


def host_id(project_id: str, host: str | None) -> str:
    """Nova's ``hostId``: an opaque per-project digest of the host ('' when unplaced)."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


#: Network failures Nova reports on the instance (ERROR + fault) rather than
#: refusing the request: the build is attempted, the network allocation fails.
BUILD_FAILURES = (neutron_errors.IpAddressGenerationFailure, neutron_errors.MacAddressGenerationFailure,
                  neutron_errors.PortBindingFailed)

class ServerService:
    def __init__(self, deps: Deps, flavors: FlavorService, keypairs: KeypairService,
                 ports: PortService | None = None) -> None:
        self.deps = deps
        self.flavors = flavors
        self.keypairs = keypairs
        self.ports = ports or PortService(deps)

    # ============================================================================== reading
    def fetch(self, ctx: RequestContext, conn: Connection, sid: str) -> Any:
        row = conn.execute(select(t.servers).where(t.servers.c.id == sid)).first()
        if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
            raise faults.NotFound(f"Instance {sid} could not be found.")
        return row

    def list(self, ctx: RequestContext, conn: Connection, params: dict[str, list[str]]) -> list[Any]:
        """Rows matching Nova's list filters, sorted, one page (limit/marker)."""
        s = t.servers.c
        stmt = select(t.servers)
        privileged = ctx.is_admin   # Nova's API: the agents' service role is no admin here
        all_tenants = "all_tenants" in params and (params["all_tenants"][-1] == "" or
                                                  _truthy(params["all_tenants"][-1]))
        if all_tenants and not privileged:
            raise faults.policy("os_compute_api:servers:index:get_all_tenants")
        projects = _as_list(params, "project_id") or _as_list(params, "tenant_id")
        if privileged and projects:
            stmt = stmt.where(s.project_id.in_(projects))
        elif not (privileged and all_tenants):
            stmt = stmt.where(s.project_id == ctx.project_id)
        if "deleted" in params and _truthy(params["deleted"][-1]):
            return []           # deleted servers are gone, not kept
        for key, col in (("user_id", s.user_id), ("flavor", s.flavor_id), ("image", s.image_id),
                         ("key_name", s.key_name), ("vm_state", s.vm_state), ("task_state", s.task_state),
                         ("uuid", s.id)):
            vals = _as_list(params, key)
            if vals:
                stmt = stmt.where(col.in_(vals))
        hosts = _as_list(params, "host") or _as_list(params, "node")
        if hosts and privileged:
            stmt = stmt.where(s.host.in_(hosts))
        statuses = [v.upper() for v in _as_list(params, "status")]
        if statuses:
            stmt = stmt.where(s.status.in_(statuses))
        if "power_state" in params:
            try:
                stmt = stmt.where(s.power_state.in_([int(v) for v in _as_list(params, "power_state")]))
            except ValueError:
                raise faults.BadRequest("Invalid power_state filter") from None
        for key in ("changes-since", "changes-before"):
            if key in params:
                ts = self._iso(params[key][-1], key)
                stmt = stmt.where(s.updated_at >= ts if key == "changes-since" else s.updated_at <= ts)
        sort_key = (params.get("sort_key") or ["created_at"])[-1]
        sort_dir = (params.get("sort_dir") or ["desc"])[-1]
        cols = {"created_at": s.created_at, "updated_at": s.updated_at, "display_name": s.name,
                "name": s.name, "uuid": s.id, "vm_state": s.vm_state, "task_state": s.task_state,
                "power_state": s.power_state, "host": s.host, "project_id": s.project_id,
                "user_id": s.user_id, "key_name": s.key_name, "launched_at": s.launched_at,
                "display_description": s.description, "availability_zone": s.availability_zone}
        if sort_key not in cols:
            raise faults.BadRequest(f"Invalid input for query parameters sort_key. Value: {sort_key}.")
        if sort_dir not in ("asc", "desc"):
            raise faults.BadRequest(f"Invalid input for query parameters sort_dir. Value: {sort_dir}.")
        col = cols[sort_key]
        order = (col.desc(), s.id.desc()) if sort_dir == "desc" else (col.asc(), s.id.asc())
        rows = list(conn.execute(stmt.order_by(*order)))
        name_res = [self._regex(v, "name") for v in _as_list(params, "name")]
        if name_res:
            rows = [r for r in rows if any(rx.search(r.name) for rx in name_res)]
        ip_res = [(k, self._regex(v, k)) for k in ("ip", "ip6") for v in _as_list(params, k)]
        if ip_res:
            nets = self.network_info(conn, rows)
            rows = [r for r in rows if any(
                rx.search(a["ip_address"]) for k, rx in ip_res for p in nets.get(r.id, [])
                for a in p["fixed_ips"] if (a["version"] == 4) == (k == "ip"))]
        from neutrino.compute.flavors import _page
        return _page(rows, params, lambda r: r.id, "server")

    @staticmethod
    def _regex(pattern: str, key: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except re.error:
            return re.compile(re.escape(pattern))

    @staticmethod
    def _iso(raw: str, key: str) -> str:
        try:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise faults.BadRequest(f"Invalid filter field: {key}.") from None
        if dt.tzinfo is not None:
            dt = dt.astimezone(timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- network facts for views ---------------------------------------------------------
    def network_info(self, conn: Connection, rows: list[Any]) -> dict[str, list[dict[str, Any]]]:
        """Per server id: its ports in NIC order, each ``{id, network_id, network_name, mac_address,
        fixed_ips: [{ip_address, version, subnet_id}], floating_ips: [{ip_address, fixed_ip_address}],
        security_groups: [names]}``."""
        ids = [r.id for r in rows]
        if not ids:
            return {}
        # A server's ports are those of its own project that name it (as Nova only uses a port
        # of the instance's project): a port elsewhere that names the server is not its NIC.
        projects = {r.id: r.project_id for r in rows}
        p = t.ports
        port_rows = conn.execute(select(p.c.id, p.c.device_id, p.c.project_id, p.c.network_id, p.c.mac_address,
                                        p.c.created_at, t.networks.c.name.label("network_name"))
                                 .join(t.networks, t.networks.c.id == p.c.network_id)
                                 .where(p.c.device_id.in_(ids), p.c.device_owner.like("compute:%"))
                                 .order_by(p.c.created_at, p.c.id)).all()
        port_rows = [r for r in port_rows if r.project_id == projects[r.device_id]]
        port_ids = [r.id for r in port_rows]
        ips: dict[str, list[dict[str, Any]]] = {}
        fips: dict[str, list[dict[str, Any]]] = {}
        sgs: dict[str, list[str]] = {}
        if port_ids:
            for pid, sid, ip in conn.execute(select(t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id,
                                                    t.ip_allocations.c.ip_address)
                                             .where(t.ip_allocations.c.port_id.in_(port_ids))
                                             .order_by(t.ip_allocations.c.port_id, t.ip_allocations.c.position)):
                ips.setdefault(pid, []).append({"ip_address": ip, "subnet_id": sid,
                                                "version": ipaddress.ip_address(ip).version})
            for pid, fip, fixed in conn.execute(select(t.floatingips.c.fixed_port_id,
                                                       t.floatingips.c.floating_ip_address,
                                                       t.floatingips.c.fixed_ip_address)
                                                .where(t.floatingips.c.fixed_port_id.in_(port_ids))
                                                .order_by(t.floatingips.c.floating_ip_address)):
                fips.setdefault(pid, []).append({"ip_address": fip, "fixed_ip_address": fixed,
                                                 "version": ipaddress.ip_address(fip).version})
            for pid, name in conn.execute(select(t.port_security_groups.c.port_id, t.security_groups.c.name)
                                          .join(t.security_groups, t.security_groups.c.id ==
                                                t.port_security_groups.c.security_group_id)
                                          .where(t.port_security_groups.c.port_id.in_(port_ids))
                                          .order_by(t.security_groups.c.name)):
                sgs.setdefault(pid, []).append(name)
        by_server: dict[str, list[dict[str, Any]]] = {}
        for r in port_rows:
            by_server.setdefault(r.device_id, []).append({
                "id": r.id, "network_id": r.network_id, "network_name": r.network_name,
                "mac_address": r.mac_address, "fixed_ips": ips.get(r.id, []), "floating_ips": fips.get(r.id, []),
                "security_groups": sgs.get(r.id, [])})
        out = {}
        for row in rows:
            ports = by_server.get(row.id, [])
            order = {n["port_id"]: i for i, n in enumerate(row.nics or [])}
            ports.sort(key=lambda x: order.get(x["id"], len(order)))
            out[row.id] = ports
        return out

    @staticmethod
    def addresses(ports: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for p in ports:
            entries = out.setdefault(p["network_name"] or p["network_id"], [])
            for a in p["fixed_ips"]:
                entries.append({"version": a["version"], "addr": a["ip_address"], "OS-EXT-IPS:type": "fixed",
                                "OS-EXT-IPS-MAC:mac_addr": p["mac_address"]})
            for f in p["floating_ips"]:
                entries.append({"version": f["version"], "addr": f["ip_address"], "OS-EXT-IPS:type": "floating",
                                "OS-EXT-IPS-MAC:mac_addr": p["mac_address"]})
        return out

    # --- the API view -----------------------------------------------------------------------
    def views(self, ctx: RequestContext, conn: Connection, rows: list[Any], mv: Version,
              base: str) -> list[dict[str, Any]]:
        nets = self.network_info(conn, rows)
        status_of_host = self._host_status(conn, rows) if (ctx.is_admin and mv >= (2, 16)) else {}
        return [self.view(ctx, r, nets.get(r.id, []), mv, base, status_of_host) for r in rows]

    def _host_status(self, conn: Connection, rows: list[Any]) -> dict[str, str]:
        live = {a.host for a in scheduler.live_agents(conn, self.deps.cfg.default.agent_down_time)}
        return {r.host: ("UP" if r.host in live else "DOWN") for r in rows if r.host}

    @staticmethod
    def links(base: str, sid: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": f"{base}/v2.1/servers/{sid}"},
                {"rel": "bookmark", "href": f"{base}/servers/{sid}"}]

    def view(self, ctx: RequestContext, r: Any, ports: list[dict[str, Any]], mv: Version, base: str,
             host_status: dict[str, str] | None = None) -> dict[str, Any]:
        admin = ctx.is_admin
        flavor = dict(r.flavor or {})
        if mv >= (2, 47):
            flavor_view: dict[str, Any] = {
                "vcpus": flavor.get("vcpus"), "ram": flavor.get("ram"), "disk": flavor.get("disk"),
                "ephemeral": flavor.get("ephemeral", 0), "swap": flavor.get("swap", 0),
                "original_name": flavor.get("name"), "extra_specs": dict(flavor.get("extra_specs") or {})}
        else:
            flavor_view = {"id": r.flavor_id, "links": [{"rel": "bookmark", "href": f"{base}/flavors/{r.flavor_id}"}]}
        out: dict[str, Any] = {
            "id": r.id, "name": r.name, "status": r.status, "tenant_id": r.project_id, "user_id": r.user_id,
            "metadata": dict(r.meta or {}), "hostId": host_id(r.project_id, r.host),
            "image": {"id": r.image_id, "links": [{"rel": "bookmark", "href": f"{base}/images/{r.image_id}"}]},
            "flavor": flavor_view, "created": r.created_at, "updated": r.updated_at,
            "addresses": self.addresses(ports), "accessIPv4": r.access_ipv4, "accessIPv6": r.access_ipv6,
            "links": self.links(base, r.id), "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": r.availability_zone or DEFAULT_AZ,
            "config_drive": "True" if r.config_drive else "", "key_name": r.key_name,
            "OS-SRV-USG:launched_at": r.launched_at, "OS-SRV-USG:terminated_at": None,
            "OS-EXT-STS:task_state": r.task_state, "OS-EXT-STS:vm_state": r.vm_state,
            "OS-EXT-STS:power_state": r.power_state, "os-extended-volumes:volumes_attached": [],
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
                out.update({"OS-EXT-SRV-ATTR:reservation_id": f"r-{r.id[:8]}",
                            "OS-EXT-SRV-ATTR:launch_index": 0, "OS-EXT-SRV-ATTR:hostname": r.hostname,
                            "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                            "OS-EXT-SRV-ATTR:root_device_name": None, "OS-EXT-SRV-ATTR:user_data": r.user_data})
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
            fault = {"code": r.fault.get("code", 500), "created": r.fault.get("created", r.updated_at),
                     "message": r.fault.get("message", "")}
            if admin or fault["code"] != 500:
                fault["details"] = r.fault.get("details", "")
            out["fault"] = fault
        return out

    # --- the agent view (change feed bodies and the internal API) ----------------------------
    def agent_views(self, conn: Connection, rows: list[Any], *, expand: bool = False) -> list[dict[str, Any]]:
        """What a compute agent needs to run servers, one dict per row.

        Only what the server owns: ``port_ids`` (NIC order, as created or
        taken over; a port deleted since is still listed, the agent skips
        it), the flavor as it was at create time, the key pair's public key
        (``key_data``), ``user_data`` (base64 as given), ``metadata``,
        ``host``, states and ``fault``.  Feed bodies and snapshot objects are
        exactly this, so a port or subnet change never changes a server's
        body (the agent follows ``port``/``network``/``subnet`` for those).

        ``expand`` (the internal GET) adds ``ports`` (Neutron admin-view
        dicts, NIC order), ``networks`` ({id: {id, name, mtu}}) and
        ``subnets`` ({id: {id, network_id, ip_version, cidr, gateway_ip,
        enable_dhcp, dns_nameservers, host_routes}}), read now.
        """
        out = []
        for r in rows:
            img = images.BY_ID.get(r.image_id)
            out.append({
                "id": r.id, "name": r.name, "project_id": r.project_id, "user_id": r.user_id,
                "status": r.status, "vm_state": r.vm_state, "task_state": r.task_state,
                "power_state": r.power_state, "host": r.host,
                "availability_zone": r.availability_zone or DEFAULT_AZ, "hostname": r.hostname,
                "image": {"id": r.image_id, "name": img.name if img else None, "type": img.kind if img else None},
                "flavor": dict(r.flavor or {}), "key_name": r.key_name, "key_data": r.key_data,
                "user_data": r.user_data, "metadata": dict(r.meta or {}), "config_drive": r.config_drive,
                "fault": r.fault, "port_ids": [n["port_id"] for n in (r.nics or [])],
                "created_at": r.created_at, "updated_at": r.updated_at, "launched_at": r.launched_at,
                "revision_number": r.revision_number,
            })
        if expand:
            self._expand(conn, out)
        return out

    def _expand(self, conn: Connection, views: list[dict[str, Any]]) -> None:
        ids = [v["id"] for v in views]
        port_rows = list(conn.execute(select(t.ports).where(t.ports.c.device_id.in_(ids),
                                                           t.ports.c.device_owner.like("compute:%"))
                                      .order_by(t.ports.c.created_at, t.ports.c.id))) if ids else []
        port_dicts = self.ports.dicts(conn, port_rows) if port_rows else []
        nets, subnets = network_context(conn, port_dicts)
        for v in views:
            order = {pid: i for i, pid in enumerate(v["port_ids"])}
            mine = sorted((p for p in port_dicts if p["device_id"] == v["id"] and p["project_id"] == v["project_id"]),
                          key=lambda p: order.get(p["id"], len(order)))
            v["ports"] = mine
            v["networks"] = {p["network_id"]: nets[p["network_id"]] for p in mine if p["network_id"] in nets}
            v["subnets"] = {a["subnet_id"]: subnets[a["subnet_id"]] for p in mine for a in p["fixed_ips"]
                            if a["subnet_id"] in subnets}

    def agent_view(self, conn: Connection, sid: str, *, expand: bool = False) -> dict[str, Any]:
        row = conn.execute(select(t.servers).where(t.servers.c.id == sid)).one()
        return self.agent_views(conn, [row], expand=expand)[0]

    def agent_list(self, conn: Connection, host: str | None, *, expand: bool = False) -> list[dict[str, Any]]:
        stmt = select(t.servers)
        if host is not None:
            stmt = stmt.where(t.servers.c.host == host)
        return self.agent_views(conn, list(conn.execute(stmt.order_by(t.servers.c.created_at, t.servers.c.id))),
                                expand=expand)

    def _record(self, uow: UnitOfWork, sid: str, action: str) -> dict[str, Any]:
        body = self.agent_view(uow.conn, sid)
        uow.changed("server", sid, action, body, body["project_id"])
        return body

    # ============================================================================== create
    def create(self, ctx: RequestContext, uow: UnitOfWork, body: Any, mv: Version) -> tuple[list[str], str]:
        """Create the servers of one request; returns (server ids, admin password)."""
        if not (ctx.is_admin or ctx.has("member")):
            raise faults.policy("os_compute_api:servers:create")
        s = _body(body, "server")
        if isinstance(body, dict):
            _no_extra(body, {"server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"})
        allowed = set(_CREATE_KEYS)
        if mv >= (2, 19):
            allowed.add("description")
        if mv >= (2, 52):
            allowed.add("tags")
        if mv >= (2, 63):
            allowed.add("trusted_image_certificates")
        if mv >= (2, 74):
            allowed |= {"host", "hypervisor_hostname"}
        _no_extra(s, allowed)
        req = self._parse_create(ctx, s, mv)
        conn = uow.conn

        # --- references ---------------------------------------------------------------
        image = images.find(req["image_ref"])
        if image is None:
            raise faults.BadRequest("Can not find requested image")
        try:
            flavor = self.flavors.find(ctx, conn, req["flavor_ref"])
        except faults.NotFound:
            raise faults.BadRequest(f"Flavor {req['flavor_ref']} could not be found.") from None
        if flavor.disabled:
            raise faults.BadRequest("Flavor is disabled.")
        if flavor.ram < image.min_ram or (flavor.disk and flavor.disk < image.min_disk):
            raise faults.BadRequest("Flavor's memory or disk is too small for requested image.")
        key_data = None
        if req["key_name"] is not None:
            kp = conn.execute(select(t.keypairs).where(t.keypairs.c.user_id == ctx.user_id,
                                                       t.keypairs.c.name == req["key_name"])).first()
            if kp is None:
                raise faults.BadRequest("Invalid key_name provided.")
            key_data = kp.public_key
        nics = self._resolve_networks(ctx, conn, req["networks"], req["legacy_networks"])
        sg_ids = self._resolve_groups(ctx, conn, req["security_groups"]) if req["security_groups"] else None

        # --- one server per count: schedule, wire, record ----------------------------------------
        agent_down = self.deps.cfg.default.agent_down_time
        placed: dict[str, int] = {}
        ids: list[str] = []
        count = req["max_count"]
        for index in range(count):
            sid = str(uuid.uuid4())
            name = req["name"] if count == 1 else f"{req['name']}-{index + 1}"
            host = scheduler.pick_host(conn, agent_down, forced=req["forced_host"], extra=placed)
            ts = now_iso()
            hostname = hostname_for(name, sid)
            nic_records: list[dict[str, Any]] = []
            if host is not None:
                placed[host] = placed.get(host, 0) + 1
                try:
                    # A savepoint: a port that cannot be made (no free address, ...)
                    # leaves no half-made ports; the server ends in ERROR with the reason.
                    with conn.begin_nested():
                        nic_records = self._wire_ports(ctx, uow, sid, host, hostname, nics, sg_ids)
                    status, vm_state, task_state, fault = "BUILD", "building", "spawning", None
                except BUILD_FAILURES as exc:
                    nic_records = []
                    status, vm_state, task_state = "ERROR", "error", None
                    fault = {"code": 500, "message": f"Build of instance {sid} aborted: Failed to allocate "
                             f"the network(s): {exc.msg}", "details": exc.type_name, "created": ts}
            else:
                status, vm_state, task_state = "ERROR", "error", None
                fault = {"code": 500, "message": scheduler.NO_VALID_HOST, "details": "", "created": ts}
            conn.execute(insert(t.servers).values(
                id=sid, project_id=ctx.project_id, user_id=ctx.user_id, name=name,
                description=req["description"], status=status, vm_state=vm_state, task_state=task_state,
                power_state=NOSTATE, host=host, availability_zone=req["availability_zone"],
                image_id=image.id, flavor_id=flavor.id, flavor=self.flavors.embedded(flavor),
                key_name=req["key_name"], key_data=key_data, user_data=req["user_data"], meta=req["metadata"],
                nics=nic_records, security_groups=req["security_groups"] or [], tags=req["tags"],
                config_drive=req["config_drive"], access_ipv4=req["access_ipv4"], access_ipv6=req["access_ipv6"],
                hostname=hostname, fault=fault, launched_at=None, created_at=ts, updated_at=ts,
                revision_number=1))
            self._record(uow, sid, "create")
            ids.append(sid)
        return ids, req["admin_pass"]

    def _parse_create(self, ctx: RequestContext, s: dict[str, Any], mv: Version) -> dict[str, Any]:
        req: dict[str, Any] = {}
        name = s.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise faults.BadRequest("Invalid input for field/attribute name. Value: "
                                    f"{name}. 'name' must be a non-empty string of at most 255 characters")
        req["name"] = name
        boot_image = self._check_bdms(s)
        for key, out in (("imageRef", "image_ref"), ("flavorRef", "flavor_ref")):
            v = s.get(key)
            if key == "imageRef" and not v and boot_image:
                v = boot_image
            if v is None or v == "":
                raise faults.BadRequest(f"Invalid input for field/attribute server. '{key}' is a required property")
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}.")
            req[out] = str(v).rstrip("/").rsplit("/", 1)[-1]
        if s.get("personality"):
            raise faults.BadRequest("Personality files are not supported; use user data instead")
        key_name = s.get("key_name")
        if key_name is not None and (not isinstance(key_name, str) or not 1 <= len(key_name) <= 255):
            raise faults.BadRequest(f"Invalid input for field/attribute key_name. Value: {key_name}.")
        req["key_name"] = key_name
        req["user_data"] = self._user_data(s.get("user_data"))
        req["metadata"] = self.check_metadata(s.get("metadata", {}))
        req["admin_pass"] = s.get("adminPass") or "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
        if not isinstance(req["admin_pass"], str):
            raise faults.BadRequest("Invalid input for field/attribute adminPass.")
        for key in ("accessIPv4", "accessIPv6"):
            v = s.get(key) or ""
            if v:
                try:   # strict: no IPv6 scope id, blanks or control characters (issue 13)
                    ok = addresses.parse_ip(v).version == (4 if key == "accessIPv4" else 6)
                except (ValueError, TypeError):
                    ok = False
                if not ok:
                    raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}. "
                                            f"{v!r} is not a '{'ipv4' if key == 'accessIPv4' else 'ipv6'}'")
                v = addresses.canonical_ip(v)
            req[key.replace("IPv", "_ipv")] = v
        req["config_drive"] = self._config_drive(s.get("config_drive"))
        desc = s.get("description")
        if desc is not None and (not isinstance(desc, str) or len(desc) > 255):
            raise faults.BadRequest("Invalid input for field/attribute description.")
        req["description"] = desc
        tags = s.get("tags", [])
        if not isinstance(tags, list) or len(tags) > 50 or any(
                not isinstance(x, str) or not 1 <= len(x) <= 60 or _TAG_BAD.search(x) for x in tags):
            raise faults.BadRequest("Invalid input for field/attribute tags.")
        req["tags"] = list(dict.fromkeys(tags))
        counts = []
        for key in ("min_count", "max_count"):
            v = s.get(key, 1)
            try:
                n = int(v) if not isinstance(v, bool) else 0
            except (TypeError, ValueError):
                n = 0
            if n < 1:
                raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}.")
            counts.append(n)
        if counts[0] > counts[1]:
            raise faults.BadRequest("min_count must be <= max_count")
        if counts[0] > MAX_COUNT:
            raise faults.Forbidden(f"Quota exceeded for instances: Requested {counts[0]}, "
                                   f"but the limit per request is {MAX_COUNT}")
        req["max_count"] = min(counts[1], MAX_COUNT)
        # placement
        forced = None
        az = s.get("availability_zone")
        if az not in (None, ""):
            if not isinstance(az, str):
                raise faults.BadRequest("Invalid input for field/attribute availability_zone.")
            zone, _, rest = az.partition(":")
            if zone not in ("", DEFAULT_AZ):
                raise faults.BadRequest("The requested availability zone is not available")
            if rest:
                if not ctx.is_admin:
                    raise faults.policy("os_compute_api:servers:create:forced_host")
                forced = rest.split(":", 1)[0] or None
        host = s.get("host")
        if host is not None:
            if not ctx.is_admin:
                raise faults.policy("compute:servers:create:requested_destination")
            if not isinstance(host, str) or not host:
                raise faults.BadRequest("Invalid input for field/attribute host.")
            forced = host
        req["forced_host"] = forced
        req["availability_zone"] = DEFAULT_AZ
        # networks
        if "networks" not in s:
            if mv >= (2, 37):
                raise faults.BadRequest("Invalid input for field/attribute server. 'networks' is a required "
                                        "property")
            req["networks"], req["legacy_networks"] = "auto", True
        else:
            req["networks"], req["legacy_networks"] = self._parse_networks(s["networks"], mv), False
            if req["networks"] == [] and mv < (2, 37):
                req["networks"], req["legacy_networks"] = "auto", True
        groups = s.get("security_groups")
        names: list[str] = []
        if groups is not None:
            if not isinstance(groups, list) or any(not isinstance(g, dict) or not isinstance(g.get("name"), str)
                                                   or not g["name"] for g in groups):
                raise faults.BadRequest("Invalid input for field/attribute security_groups.")
            names = list(dict.fromkeys(g["name"] for g in groups))
        req["security_groups"] = names
        return req

    @staticmethod
    def _check_bdms(s: dict[str, Any]) -> str | None:
        """Accept only local block devices (the image itself, blank local disks); returns a boot image id.

        OSC sends the image as a ``block_device_mapping_v2`` entry (source
        image, destination local, boot index 0) besides ``imageRef``.
        """
        if s.get("block_device_mapping"):
            raise faults.BadRequest("Volumes are not supported: block_device_mapping must be empty")
        bdms = s.get("block_device_mapping_v2") or []
        if not isinstance(bdms, list):
            raise faults.BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
        boot = None
        for b in bdms:
            if not isinstance(b, dict):
                raise faults.BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
            src, dst = b.get("source_type", "image"), b.get("destination_type", "local")
            if dst != "local" or src not in ("image", "blank"):
                raise faults.BadRequest("Volumes are not supported: block devices must be local "
                                        "(source_type image or blank, destination_type local)")
            if src == "image" and str(b.get("boot_index", "")) == "0":
                boot = b.get("uuid")
        return boot if isinstance(boot, str) else None

    @staticmethod
    def _user_data(v: Any) -> str | None:
        if v is None:
            return None
        if not isinstance(v, str):
            raise faults.BadRequest("Invalid input for field/attribute user_data.")
        if len(v) > MAX_USER_DATA:
            raise faults.BadRequest(f"User data too large. User data must be no larger than {MAX_USER_DATA} "
                                    f"bytes once base64 encoded. Your data is {len(v)} bytes")
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise faults.BadRequest("User data needs to be valid base 64.") from None
        return v

    @staticmethod
    def _config_drive(v: Any) -> bool:
        if v is None or v == "":
            return False
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return v.lower() in ("true", "1", "yes", "on")
        raise faults.BadRequest(f"Invalid input for field/attribute config_drive. Value: {v}.")

    @staticmethod
    def check_metadata(md: Any) -> dict[str, str]:
        if not isinstance(md, dict):
            raise faults.BadRequest("Invalid input for field/attribute metadata. Value: "
                                    f"{md}. {md!r} is not of type 'object'")
        for k, v in md.items():
            if not isinstance(k, str) or not 1 <= len(k) <= 255:
                raise faults.BadRequest("Invalid input for field/attribute metadata. Metadata keys must be "
                                        "strings of 1 to 255 characters")
            if not isinstance(v, str) or len(v) > 255:
                raise faults.BadRequest(f"Invalid input for field/attribute {k}. Metadata values must be "
                                        "strings of at most 255 characters")
        if len(md) > MAX_METADATA:
            raise faults.Forbidden(f"Quota exceeded for metadata_items: Requested {len(md)}, but already used "
                                   f"0 of {MAX_METADATA} metadata_items")
        return dict(md)

    @staticmethod
    def _parse_networks(nets: Any, mv: Version) -> Any:
        if isinstance(nets, str):
            if nets in ("auto", "none") and mv >= (2, 37):
                return nets
            raise faults.BadRequest(f"Invalid input for field/attribute networks. Value: {nets}. "
                                    f"{nets!r} is not of type 'array'")
        if not isinstance(nets, list):
            raise faults.BadRequest(f"Invalid input for field/attribute networks. Value: {nets}.")
        out = []
        for n in nets:
            if not isinstance(n, dict):
                raise faults.BadRequest(f"Invalid input for field/attribute networks. Value: {n}.")
            _no_extra(n, {"uuid", "port", "fixed_ip", "tag"})
            uid, port, fixed = n.get("uuid"), n.get("port"), n.get("fixed_ip")
            if port:
                if not isinstance(port, str) or not _UUID_RE.match(port):
                    raise faults.BadRequest(f"Bad networks format: port uuid is not in proper format ({port})")
                if fixed:
                    raise faults.BadRequest("Bad networks format: a fixed IP cannot be given with a port")
                out.append({"port": port})
                continue
            if not isinstance(uid, str) or not _UUID_RE.match(uid):
                raise faults.BadRequest(f"Bad networks format: network uuid is not in proper format ({uid})")
            if fixed is not None:
                try:   # strict and canonical: the allocator compares addresses as stored text
                    fixed = addresses.canonical_ip(fixed)
                except (ValueError, TypeError):
                    raise faults.BadRequest(f"Invalid fixed IP address ({fixed})") from None
            out.append({"uuid": uid, "fixed_ip": fixed})
        return out

    # --- network resolution --------------------------------------------------------------------
    @staticmethod
    def _network_usable(ctx: RequestContext, conn: Connection, net: Any) -> None:
        has_subnet = conn.execute(select(t.subnets.c.id).where(t.subnets.c.network_id == net.id).limit(1)).first()
        if has_subnet is None:
            raise faults.BadRequest(f"Network {net.id} requires a subnet in order to boot instances on.")

    def _resolve_networks(self, ctx: RequestContext, conn: Connection, nets: Any,
                          legacy: bool) -> list[dict[str, Any]]:
        """[{"network": row} | {"port": row}] in request order."""
        privileged = ctx.is_admin   # Nova's API: the agents' service role is no admin here
        if nets == "none":
            return []
        if nets == "auto":
            n = t.networks.c
            rows = conn.execute(select(t.networks).where(
                or_(n.project_id == ctx.project_id, n.shared == true()), n.external.is_(False) | n.shared.is_(True))
                .where(n.id.in_(select(t.subnets.c.network_id))).order_by(n.created_at, n.id)).all()
            if len(rows) > 1:
                raise faults.Conflict("Multiple possible networks found, use a Network ID to be more specific.")
            if not rows:
                if legacy:
                    return []
                raise faults.BadRequest(f"Unable to automatically allocate a network for project {ctx.project_id}")
            return [{"network": rows[0], "fixed_ip": None}]
        out: list[dict[str, Any]] = []
        seen_ports: set[str] = set()
        for req in nets:
            if "port" in req:
                pid = req["port"]
                row = conn.execute(select(t.ports).where(t.ports.c.id == pid)).first()
                if row is None or not (privileged or row.project_id == ctx.project_id):
                    raise faults.BadRequest(f"Port id {pid} could not be found.")
                if row.device_id or pid in seen_ports:
                    raise faults.Conflict(f"Port {pid} is still in use.")
                if not conn.execute(select(t.ip_allocations.c.ip_address)
                                    .where(t.ip_allocations.c.port_id == pid).limit(1)).first():
                    raise faults.BadRequest(f"Port {pid} requires a FixedIP in order to be used.")
                seen_ports.add(pid)
                out.append({"port": row})
                continue
            net = network_target(conn, req["uuid"])
            visible = net is not None and (privileged or net.project_id == ctx.project_id or net.shared
                                           or rbac.granted(conn, "network", net.id, ctx.project_id,
                                                           rbac.NETWORK_ACCESS))
            if not visible:
                raise faults.BadRequest(f"Network {req['uuid']} could not be found.")
            if net.external and not privileged and not rbac.network_shared_with(conn, ctx, net):
                raise faults.Forbidden(f"It is not allowed to create an interface on external network {net.id}")
            self._network_usable(ctx, conn, net)
            out.append({"network": net, "fixed_ip": req.get("fixed_ip")})
        return out

    @staticmethod
    def _resolve_groups(ctx: RequestContext, conn: Connection, names: list[str]) -> list[str]:
        sg = t.security_groups.c
        out = []
        for name in names:
            q = select(sg.id, sg.project_id).where(or_(sg.id == name, sg.name == name))
            if not ctx.is_admin:
                q = q.where(sg.project_id == ctx.project_id)
            rows = conn.execute(q).all()
            by_id = [r for r in rows if r.id == name]
            if by_id:
                rows = by_id
            elif len(rows) > 1:
                mine = [r for r in rows if r.project_id == ctx.project_id]
                rows = mine if len(mine) == 1 else rows
            if not rows:
                raise faults.BadRequest(f"Security group {name} not found.")
            if len(rows) > 1:
                raise faults.Conflict(f"Multiple security groups found matching '{name}'. Use an ID to be "
                                      "more specific.")
            out.append(rows[0].id)
        return list(dict.fromkeys(out))

    def _wire_ports(self, ctx: RequestContext, uow: UnitOfWork, sid: str, host: str, hostname: str,
                    nics: list[dict[str, Any]], sg_ids: list[str] | None) -> list[dict[str, Any]]:
        """Create or take over the server's ports, bound to ``host``; returns the NIC records.

        Every port gets the server's ``hostname`` as ``dns_name``, as Nova does when Neutron
        has the ``dns-integration`` extension (neutrino always has it): the DHCP agent's
        host files then name the instance, so its neighbours resolve it.  A port given by id
        whose ``dns_name`` is already something else is refused (Nova's PortNotUsableDNS)."""
        conn = uow.conn
        records = []
        try:
            for nic in nics:
                if "port" in nic:
                    row = nic["port"]
                    if row.dns_name and row.dns_name != hostname:
                        raise faults.BadRequest(
                            f"Port {row.id} not usable for instance {sid}. Value {row.dns_name} assigned to "
                            f"dns_name attribute does not match instance's hostname {hostname}")
                    net = network_target(conn, row.network_id)
                    current = self.ports.dicts(conn, [row])[0]
                    port = self.ports.apply_update(uow, row, net, current, {
                        "device_id": sid, "device_owner": DEVICE_OWNER, "binding:host_id": host,
                        "dns_name": hostname})
                    records.append({"port_id": port["id"], "network_id": row.network_id, "created": False})
                    continue
                net = nic["network"]
                quotas.check(self.deps.cfg, conn, ctx.project_id, "port")
                item: dict[str, Any] = {
                    "network_id": net.id, "project_id": ctx.project_id, "name": "", "admin_state_up": True,
                    "device_owner": DEVICE_OWNER, "device_id": sid, "binding:host_id": host,
                    "dns_name": hostname, "fixed_ips": [{"ip_address": nic["fixed_ip"]}] if nic.get("fixed_ip") else None,
                    "security_groups": list(sg_ids) if sg_ids is not None else None,
                }
                # Nova creates the port with the caller's own token, so Neutron's port policy is the
                # caller's (e.g. a fixed IP on a shared network it does not own is 403); only the
                # binding is set with Nova's service credentials.
                self.ports.authorize_create(ctx, conn, net, {k: v for k, v in item.items()
                                                             if not k.startswith("binding:")})
                port = self.ports.insert_port(uow, net, item)
                if port["binding:vif_type"] == "binding_failed":
                    # Nova's "Binding failed for port": the build is aborted (see create).
                    raise neutron_errors.PortBindingFailed(port_id=port["id"], host=host, net_id=net.id)
                records.append({"port_id": port["id"], "network_id": net.id, "created": True})
        except BUILD_FAILURES:
            raise   # the server is created in ERROR (see create)
        except neutron_errors.NeutronException as exc:
            raise faults.from_neutron(exc) from None
        return records

    # ============================================================================== update
    def _check_write(self, ctx: RequestContext, row: Any, action: str) -> None:
        if ctx.is_admin or (ctx.has("member") and row.project_id == ctx.project_id):
            return
        raise faults.policy(f"os_compute_api:servers:{action}")

    def update(self, ctx: RequestContext, uow: UnitOfWork, sid: str, body: Any, mv: Version) -> Any:
        s = _body(body, "server")
        allowed = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
        if mv >= (2, 19):
            allowed.add("description")
        _no_extra(s, allowed)
        row = self.fetch(ctx, uow.conn, sid)
        self._check_write(ctx, row, "update")
        values: dict[str, Any] = {}
        if "name" in s:
            name = s["name"]
            if not isinstance(name, str) or not name.strip() or len(name) > 255:
                raise faults.BadRequest(f"Invalid input for field/attribute name. Value: {name}.")
            values["name"] = name
        if "description" in s:
            d = s["description"]
            if d is not None and (not isinstance(d, str) or len(d) > 255):
                raise faults.BadRequest("Invalid input for field/attribute description.")
            values["description"] = d
        for key, col in (("accessIPv4", "access_ipv4"), ("accessIPv6", "access_ipv6")):
            if key in s:
                v = s[key] or ""
                if v:
                    try:
                        v = addresses.canonical_ip(v)   # strict: no scope id, blanks or controls
                    except (ValueError, TypeError):
                        raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}.") from None
                values[col] = v
        self._bump(uow, sid, values)
        return uow.conn.execute(select(t.servers).where(t.servers.c.id == sid)).one()

    def _bump(self, uow: UnitOfWork, sid: str, values: dict[str, Any]) -> None:
        vals = dict(values)
        vals["revision_number"] = t.servers.c.revision_number + 1
        vals["updated_at"] = now_iso()
        uow.conn.execute(update(t.servers).where(t.servers.c.id == sid).values(**vals))
        self._record(uow, sid, "update")

    # --- metadata ---------------------------------------------------------------------------------
    def set_metadata(self, ctx: RequestContext, uow: UnitOfWork, sid: str, md: dict[str, str],
                     replace: bool) -> dict[str, str]:
        row = self.fetch(ctx, uow.conn, sid)
        self._check_write(ctx, row, "update")
        md = self.check_metadata(md)
        new = dict(md) if replace else {**(row.meta or {}), **md}
        self.check_metadata(new)
        self._bump(uow, sid, {"meta": new})
        return new

    def delete_metadata(self, ctx: RequestContext, uow: UnitOfWork, sid: str, key: str) -> None:
        row = self.fetch(ctx, uow.conn, sid)
        self._check_write(ctx, row, "update")
        md = dict(row.meta or {})
        if key not in md:
            raise faults.NotFound("Metadata item was not found")
        del md[key]
        self._bump(uow, sid, {"meta": md})

    # ============================================================================== delete
    def delete(self, ctx: RequestContext, uow: UnitOfWork, sid: str) -> None:
        conn = uow.conn
        row = self.fetch(ctx, conn, sid)
        self._check_write(ctx, row, "delete")
        self.release_ports(uow, row)
        conn.execute(delete(t.servers).where(t.servers.c.id == sid))
        uow.changed("server", sid, "delete", None, row.project_id)

    def release_ports(self, uow: UnitOfWork, row: Any) -> None:
        """Delete the ports the server created; clear device, binding and ``dns_name`` of the ones
        it took over."""
        conn = uow.conn
        created = {n["port_id"] for n in (row.nics or []) if n.get("created")}
        ports = conn.execute(select(t.ports).where(t.ports.c.device_id == row.id,
                                                   t.ports.c.device_owner.like("compute:%"))).all()
        for p in ports:
            if p.id in created:
                self.ports.remove(uow, p)
            else:
                net = network_target(conn, p.network_id)
                current = self.ports.dicts(conn, [p])[0]
                self.ports.apply_update(uow, p, net, current,
                                        {"device_id": "", "device_owner": "", "binding:host_id": "",
                                         "dns_name": ""})

    # ============================================================================== agent reports
    def set_state(self, uow: UnitOfWork, sid: str, body: Any) -> dict[str, Any]:
        """``POST /neutrino/v1/servers/{id}/state``; returns the agent view (raises NeutronException)."""
        if not isinstance(body, dict):
            raise neutron_errors.bad("Body must be an object")
        unknown = sorted(set(body) - {"status", "fault", "host", "power_state"})
        if unknown:
            raise neutron_errors.bad(f"Unrecognized attribute(s) '{neutron_errors.echo(', '.join(unknown))}'")
        status = body.get("status")
        if not isinstance(status, str) or status not in AGENT_STATES:    # a list or dict is not hashable
            raise neutron_errors.bad(f"Invalid status {neutron_errors.echo(repr(status))}: one of "
                                     f"{', '.join(AGENT_STATES)}")
        fault = body.get("fault")
        if fault is not None and not isinstance(fault, dict):
            raise neutron_errors.bad("'fault' must be an object")
        host = body.get("host")
        if host is not None and not isinstance(host, str):
            raise neutron_errors.bad("'host' must be a string")
        power = body.get("power_state")
        if power is not None and (not isinstance(power, int) or isinstance(power, bool) or not 0 <= power <= 7):
            raise neutron_errors.bad("'power_state' must be an integer 0-7")
        conn = uow.conn
        row = conn.execute(select(t.servers).where(t.servers.c.id == sid)).first()
        if row is None:
            raise ServerGone(id=sid)
        if host is not None and row.host != host:
            raise WrongHost(id=sid, host=host, placed=row.host or "no host")
        if row.host is None and status != "ERROR":
            raise WrongHost(id=sid, host=host or "any host", placed="no host")
        vm_state, default_power = AGENT_STATES[status]
        values: dict[str, Any] = {"status": status, "vm_state": vm_state, "task_state": None,
                                  "power_state": default_power if power is None else power}
        if status == "ERROR":
            f = fault or {}
            code = f.get("code", 500)
            values["fault"] = {"code": code if isinstance(code, int) else 500,
                               "message": str(f.get("message") or "Unknown error")[:255],
                               "details": str(f.get("details") or ""), "created": now_iso()}
        else:
            values["fault"] = None
        if status == "ACTIVE" and row.launched_at is None:
            values["launched_at"] = _usec_now()
        same = all(getattr(row, k) == v for k, v in values.items() if k != "fault") and \
            (status != "ERROR" or (row.fault or {}).get("message") == values["fault"]["message"])
        if same:
            return self.agent_view(conn, sid)
        self._bump(uow, sid, values)
        return self.agent_view(conn, sid)


class ServerGone(neutron_errors.NotFound):
    message = "Server %(id)s could not be found."


class WrongHost(neutron_errors.Conflict):
    message = "Server %(id)s is placed on %(placed)s, not on %(host)s."


__all__ = ["ServerService", "DEVICE_OWNER", "hostname_for", "host_id", "network_context"]


def network_context(conn: Connection, port_dicts: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The networks and subnets of ``port_dicts``, as the expanded agent view shows them:
    ``({id: {id, name, mtu}}, {id: {id, network_id, ip_version, cidr, gateway_ip, enable_dhcp,
    dns_nameservers, host_routes}})`` (also used for trunk subports by the metadata API)."""
    net_ids = sorted({p["network_id"] for p in port_dicts})
    subnet_ids = sorted({a["subnet_id"] for p in port_dicts for a in p["fixed_ips"]})
    nets = {n.id: {"id": n.id, "name": n.name, "mtu": n.mtu}
            for n in conn.execute(select(t.networks.c.id, t.networks.c.name, t.networks.c.mtu)
                                  .where(t.networks.c.id.in_(net_ids)))} if net_ids else {}
    subnets = {s.id: {"id": s.id, "network_id": s.network_id, "ip_version": s.ip_version, "cidr": s.cidr,
                      "gateway_ip": s.gateway_ip, "enable_dhcp": s.enable_dhcp,
                      "dns_nameservers": list(s.dns_nameservers or []),
                      "host_routes": list(s.host_routes or [])}
               for s in conn.execute(select(t.subnets).where(t.subnets.c.id.in_(subnet_ids)))} \
        if subnet_ids else {}
    return nets, subnets
