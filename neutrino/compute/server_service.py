"""The server service: create (schedule, wire ports), read, update, delete, and
the state reports of compute agents.  Request bodies are checked by
``server_requests`` and rows are shaped for the API and the agents by
``server_views`` (both pure); this module holds what needs the database.

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

import builtins
import ipaddress
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from neutrino import errors as neutron_errors
from neutrino.compute import faults, images, scheduler, server_requests, server_views
from neutrino.compute.flavors import FlavorService
from neutrino.compute.keypairs import KeypairService
from neutrino.compute.microversion import Version
from neutrino.compute.server_requests import NOSTATE, CreateRequest, as_list, hostname_for
from neutrino.compute.validate import page
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import UnitOfWork
from neutrino.services import quotas, rbac
from neutrino.services.common import Deps
from neutrino.services.networks import network_target
from neutrino.services.ports import PortService
from neutrino.timeutil import now_iso

DEVICE_OWNER = "compute:nova"

#: Network failures Nova reports on the instance (ERROR + fault) rather than
#: refusing the request: the build is attempted, the network allocation fails.
BUILD_FAILURES = (
    neutron_errors.IpAddressGenerationFailure,
    neutron_errors.MacAddressGenerationFailure,
    neutron_errors.PortBindingFailed,
)


class ServerService:
    """Servers in the database, their ports and their change-feed entries (see the module docstring).

    The read method is named ``list`` like every service's; inside the class body that name hides the
    builtin, so the signatures after it spell ``builtins.list``.
    """

    def __init__(
        self, deps: Deps, flavors: FlavorService, keypairs: KeypairService, ports: PortService | None = None
    ) -> None:
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
        privileged = ctx.is_admin  # Nova's API: the agents' service role is no admin here
        all_tenants = server_requests.all_tenants(params)
        if all_tenants and not privileged:
            raise faults.policy("os_compute_api:servers:index:get_all_tenants")
        projects = as_list(params, "project_id") or as_list(params, "tenant_id")
        if privileged and projects:
            stmt = stmt.where(s.project_id.in_(projects))
        elif not (privileged and all_tenants):
            stmt = stmt.where(s.project_id == ctx.project_id)
        if "deleted" in params and server_requests.truthy(params["deleted"][-1]):
            return []  # deleted servers are gone, not kept
        for key, col in (
            ("user_id", s.user_id),
            ("flavor", s.flavor_id),
            ("image", s.image_id),
            ("key_name", s.key_name),
            ("vm_state", s.vm_state),
            ("task_state", s.task_state),
            ("uuid", s.id),
        ):
            vals = as_list(params, key)
            if vals:
                stmt = stmt.where(col.in_(vals))
        hosts = as_list(params, "host") or as_list(params, "node")
        if hosts and privileged:
            stmt = stmt.where(s.host.in_(hosts))
        statuses = [v.upper() for v in as_list(params, "status")]
        if statuses:
            stmt = stmt.where(s.status.in_(statuses))
        if "power_state" in params:
            stmt = stmt.where(s.power_state.in_(server_requests.power_states(params)))
        for key in ("changes-since", "changes-before"):
            if key in params:
                ts = server_requests.iso_filter(params[key][-1], key)
                stmt = stmt.where(s.updated_at >= ts if key == "changes-since" else s.updated_at <= ts)
        column, descending = server_requests.sort_order(params)
        col = s[column]
        order = (col.desc(), s.id.desc()) if descending else (col.asc(), s.id.asc())
        rows = list(conn.execute(stmt.order_by(*order)))
        name_res = [server_requests.filter_regex(v) for v in as_list(params, "name")]
        if name_res:
            rows = [r for r in rows if any(rx.search(r.name) for rx in name_res)]
        ip_res = [(k, server_requests.filter_regex(v)) for k in ("ip", "ip6") for v in as_list(params, k)]
        if ip_res:
            nets = self.network_info(conn, rows)
            rows = [
                r
                for r in rows
                if any(
                    rx.search(a["ip_address"])
                    for k, rx in ip_res
                    for p in nets.get(r.id, [])
                    for a in p["fixed_ips"]
                    if (a["version"] == 4) == (k == "ip")
                )
            ]
        return page(rows, params, lambda r: r.id, "server")

    # --- network facts for views ---------------------------------------------------------
    def network_info(self, conn: Connection, rows: builtins.list[Any]) -> dict[str, builtins.list[dict[str, Any]]]:
        """Per server id: its ports in NIC order, each ``{id, network_id, network_name, mac_address,
        fixed_ips: [{ip_address, version, subnet_id}], floating_ips: [{ip_address, fixed_ip_address}],
        security_groups: [names]}`` (assembled by ``server_views.nics_in_order``)."""
        ids = [r.id for r in rows]
        if not ids:
            return {}
        # A server's ports are those of its own project that name it (as Nova only uses a port
        # of the instance's project): a port elsewhere that names the server is not its NIC.
        projects = {r.id: r.project_id for r in rows}
        p = t.ports
        port_rows = conn.execute(
            select(
                p.c.id,
                p.c.device_id,
                p.c.project_id,
                p.c.network_id,
                p.c.mac_address,
                p.c.created_at,
                t.networks.c.name.label("network_name"),
            )
            .join(t.networks, t.networks.c.id == p.c.network_id)
            .where(p.c.device_id.in_(ids), p.c.device_owner.like("compute:%"))
            .order_by(p.c.created_at, p.c.id)
        ).all()
        port_rows = [r for r in port_rows if r.project_id == projects[r.device_id]]
        port_ids = [r.id for r in port_rows]
        ips: dict[str, list[dict[str, Any]]] = {}
        fips: dict[str, list[dict[str, Any]]] = {}
        sgs: dict[str, list[str]] = {}
        if port_ids:
            for pid, sid, ip in conn.execute(
                select(t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address)
                .where(t.ip_allocations.c.port_id.in_(port_ids))
                .order_by(t.ip_allocations.c.port_id, t.ip_allocations.c.position)
            ):
                ips.setdefault(pid, []).append(
                    {"ip_address": ip, "subnet_id": sid, "version": ipaddress.ip_address(ip).version}
                )
            for pid, fip, fixed in conn.execute(
                select(
                    t.floatingips.c.fixed_port_id, t.floatingips.c.floating_ip_address, t.floatingips.c.fixed_ip_address
                )
                .where(t.floatingips.c.fixed_port_id.in_(port_ids))
                .order_by(t.floatingips.c.floating_ip_address)
            ):
                fips.setdefault(pid, []).append(
                    {"ip_address": fip, "fixed_ip_address": fixed, "version": ipaddress.ip_address(fip).version}
                )
            for pid, name in conn.execute(
                select(t.port_security_groups.c.port_id, t.security_groups.c.name)
                .join(t.security_groups, t.security_groups.c.id == t.port_security_groups.c.security_group_id)
                .where(t.port_security_groups.c.port_id.in_(port_ids))
                .order_by(t.security_groups.c.name)
            ):
                sgs.setdefault(pid, []).append(name)
        return server_views.nics_in_order(rows, port_rows, ips, fips, sgs)

    # --- the API view -----------------------------------------------------------------------
    def views(
        self, ctx: RequestContext, conn: Connection, rows: builtins.list[Any], mv: Version, base: str
    ) -> builtins.list[dict[str, Any]]:
        """Nova's detailed views of ``rows`` as ``ctx`` may see them (``server_views.server_view``)."""
        nets = self.network_info(conn, rows)
        status_of_host = self._host_status(conn, rows) if (ctx.is_admin and mv >= (2, 16)) else {}
        return [
            server_views.server_view(r, nets.get(r.id, []), mv, base, admin=ctx.is_admin, host_status=status_of_host)
            for r in rows
        ]

    def _host_status(self, conn: Connection, rows: builtins.list[Any]) -> dict[str, str]:
        live = {a.host for a in scheduler.live_agents(conn, self.deps.cfg.default.agent_down_time)}
        return {r.host: ("UP" if r.host in live else "DOWN") for r in rows if r.host}

    # --- the agent view (change feed bodies and the internal API) ----------------------------
    def agent_views(
        self, conn: Connection, rows: builtins.list[Any], *, expand: bool = False
    ) -> builtins.list[dict[str, Any]]:
        """What a compute agent needs to run servers, one dict per row (``server_views.agent_view``).

        ``expand`` (the internal GET) adds ``ports``, ``networks`` and
        ``subnets``, read now (``server_views.expand``).
        """
        out = [server_views.agent_view(r) for r in rows]
        if expand:
            self._expand(conn, out)
        return out

    def _expand(self, conn: Connection, agent_views: builtins.list[dict[str, Any]]) -> None:
        ids = [v["id"] for v in agent_views]
        port_rows = (
            list(
                conn.execute(
                    select(t.ports)
                    .where(t.ports.c.device_id.in_(ids), t.ports.c.device_owner.like("compute:%"))
                    .order_by(t.ports.c.created_at, t.ports.c.id)
                )
            )
            if ids
            else []
        )
        port_dicts = self.ports.dicts(conn, port_rows) if port_rows else []
        nets, subnets = network_context(conn, port_dicts)
        server_views.expand(agent_views, port_dicts, nets, subnets)

    def agent_view(self, conn: Connection, sid: str, *, expand: bool = False) -> dict[str, Any]:
        row = conn.execute(select(t.servers).where(t.servers.c.id == sid)).one()
        return self.agent_views(conn, [row], expand=expand)[0]

    def agent_list(self, conn: Connection, host: str | None, *, expand: bool = False) -> builtins.list[dict[str, Any]]:
        stmt = select(t.servers)
        if host is not None:
            stmt = stmt.where(t.servers.c.host == host)
        return self.agent_views(
            conn, list(conn.execute(stmt.order_by(t.servers.c.created_at, t.servers.c.id))), expand=expand
        )

    def _record(self, uow: UnitOfWork, sid: str, action: str) -> dict[str, Any]:
        body = self.agent_view(uow.conn, sid)
        uow.changed("server", sid, action, body, body["project_id"])
        return body

    # ============================================================================== create
    def create(self, ctx: RequestContext, uow: UnitOfWork, body: Any, mv: Version) -> tuple[builtins.list[str], str]:
        """Create the servers of one request; returns (server ids, admin password)."""
        if not (ctx.is_admin or ctx.has("member")):
            raise faults.policy("os_compute_api:servers:create")
        req = server_requests.parse_create(body, mv, admin=ctx.is_admin)
        conn = uow.conn

        # --- references ---------------------------------------------------------------
        image = images.find(req.image_ref)
        if image is None:
            raise faults.BadRequest("Can not find requested image")
        try:
            flavor = self.flavors.find(ctx, conn, req.flavor_ref)
        except faults.NotFound:
            raise faults.BadRequest(f"Flavor {req.flavor_ref} could not be found.") from None
        if flavor.disabled:
            raise faults.BadRequest("Flavor is disabled.")
        if flavor.ram < image.min_ram or (flavor.disk and flavor.disk < image.min_disk):
            raise faults.BadRequest("Flavor's memory or disk is too small for requested image.")
        key_data = None
        if req.key_name is not None:
            kp = conn.execute(
                select(t.keypairs).where(t.keypairs.c.user_id == ctx.user_id, t.keypairs.c.name == req.key_name)
            ).first()
            if kp is None:
                raise faults.BadRequest("Invalid key_name provided.")
            key_data = kp.public_key
        nics = self._resolve_networks(ctx, conn, req)
        sg_ids = self._resolve_groups(ctx, conn, req.security_groups) if req.security_groups else None

        # --- one server per count: schedule, wire, record ----------------------------------------
        agent_down = self.deps.cfg.default.agent_down_time
        placed: dict[str, int] = {}
        ids: list[str] = []
        count = req.max_count
        for index in range(count):
            sid = str(uuid.uuid4())
            name = req.name if count == 1 else f"{req.name}-{index + 1}"
            host = scheduler.pick_host(conn, agent_down, forced=req.forced_host, extra=placed)
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
                    fault = {
                        "code": 500,
                        "message": f"Build of instance {sid} aborted: Failed to allocate the network(s): {exc.msg}",
                        "details": exc.type_name,
                        "created": ts,
                    }
            else:
                status, vm_state, task_state = "ERROR", "error", None
                fault = {"code": 500, "message": scheduler.NO_VALID_HOST, "details": "", "created": ts}
            conn.execute(
                insert(t.servers).values(
                    id=sid,
                    project_id=ctx.project_id,
                    user_id=ctx.user_id,
                    name=name,
                    description=req.description,
                    status=status,
                    vm_state=vm_state,
                    task_state=task_state,
                    power_state=NOSTATE,
                    host=host,
                    availability_zone=req.availability_zone,
                    image_id=image.id,
                    flavor_id=flavor.id,
                    flavor=self.flavors.embedded(flavor),
                    key_name=req.key_name,
                    key_data=key_data,
                    user_data=req.user_data,
                    meta=req.metadata,
                    nics=nic_records,
                    security_groups=req.security_groups or [],
                    tags=req.tags,
                    config_drive=req.config_drive,
                    access_ipv4=req.access_ipv4,
                    access_ipv6=req.access_ipv6,
                    hostname=hostname,
                    fault=fault,
                    launched_at=None,
                    created_at=ts,
                    updated_at=ts,
                    revision_number=1,
                )
            )
            self._record(uow, sid, "create")
            ids.append(sid)
        return ids, req.admin_pass

    # --- network resolution --------------------------------------------------------------------
    @staticmethod
    def _network_usable(ctx: RequestContext, conn: Connection, net: Any) -> None:
        has_subnet = conn.execute(select(t.subnets.c.id).where(t.subnets.c.network_id == net.id).limit(1)).first()
        if has_subnet is None:
            raise faults.BadRequest(f"Network {net.id} requires a subnet in order to boot instances on.")

    def _resolve_networks(
        self, ctx: RequestContext, conn: Connection, request: CreateRequest
    ) -> builtins.list[dict[str, Any]]:
        """The requested NICs, checked against what ``ctx`` may use: ``[{"network": row, "fixed_ip":
        address | None} | {"port": row}]`` in request order."""
        nets, legacy = request.networks, request.legacy_networks
        privileged = ctx.is_admin  # Nova's API: the agents' service role is no admin here
        if nets == "none":
            return []
        if nets == "auto":
            n = t.networks.c
            rows = conn.execute(
                select(t.networks)
                .where(
                    or_(n.project_id == ctx.project_id, n.shared == true()), n.external.is_(False) | n.shared.is_(True)
                )
                .where(n.id.in_(select(t.subnets.c.network_id)))
                .order_by(n.created_at, n.id)
            ).all()
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
                if not conn.execute(
                    select(t.ip_allocations.c.ip_address).where(t.ip_allocations.c.port_id == pid).limit(1)
                ).first():
                    raise faults.BadRequest(f"Port {pid} requires a FixedIP in order to be used.")
                seen_ports.add(pid)
                out.append({"port": row})
                continue
            net = network_target(conn, req["uuid"])
            visible = net is not None and (
                privileged
                or net.project_id == ctx.project_id
                or net.shared
                or rbac.granted(conn, "network", net.id, ctx.project_id, rbac.NETWORK_ACCESS)
            )
            if not visible:
                raise faults.BadRequest(f"Network {req['uuid']} could not be found.")
            if net.external and not privileged and not rbac.network_shared_with(conn, ctx, net):
                raise faults.Forbidden(f"It is not allowed to create an interface on external network {net.id}")
            self._network_usable(ctx, conn, net)
            out.append({"network": net, "fixed_ip": req.get("fixed_ip")})
        return out

    @staticmethod
    def _resolve_groups(ctx: RequestContext, conn: Connection, names: builtins.list[str]) -> builtins.list[str]:
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
                raise faults.Conflict(
                    f"Multiple security groups found matching '{name}'. Use an ID to be more specific."
                )
            out.append(rows[0].id)
        return list(dict.fromkeys(out))

    def _wire_ports(
        self,
        ctx: RequestContext,
        uow: UnitOfWork,
        sid: str,
        host: str,
        hostname: str,
        nics: builtins.list[dict[str, Any]],
        sg_ids: builtins.list[str] | None,
    ) -> builtins.list[dict[str, Any]]:
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
                            f"dns_name attribute does not match instance's hostname {hostname}"
                        )
                    net = network_target(conn, row.network_id)
                    current = self.ports.dicts(conn, [row])[0]
                    port = self.ports.apply_update(
                        uow,
                        row,
                        net,
                        current,
                        {"device_id": sid, "device_owner": DEVICE_OWNER, "binding:host_id": host, "dns_name": hostname},
                    )
                    records.append({"port_id": port["id"], "network_id": row.network_id, "created": False})
                    continue
                net = nic["network"]
                quotas.check(self.deps.cfg, conn, ctx.project_id, "port")
                item: dict[str, Any] = {
                    "network_id": net.id,
                    "project_id": ctx.project_id,
                    "name": "",
                    "admin_state_up": True,
                    "device_owner": DEVICE_OWNER,
                    "device_id": sid,
                    "binding:host_id": host,
                    "dns_name": hostname,
                    "fixed_ips": [{"ip_address": nic["fixed_ip"]}] if nic.get("fixed_ip") else None,
                    "security_groups": list(sg_ids) if sg_ids is not None else None,
                }
                # Nova creates the port with the caller's own token, so Neutron's port policy is the
                # caller's (e.g. a fixed IP on a shared network it does not own is 403); only the
                # binding is set with Nova's service credentials.
                self.ports.authorize_create(
                    ctx, conn, net, {k: v for k, v in item.items() if not k.startswith("binding:")}
                )
                port = self.ports.insert_port(uow, net, item)
                if port["binding:vif_type"] == "binding_failed":
                    # Nova's "Binding failed for port": the build is aborted (see create).
                    raise neutron_errors.PortBindingFailed(port_id=port["id"], host=host, net_id=net.id)
                records.append({"port_id": port["id"], "network_id": net.id, "created": True})
        except BUILD_FAILURES:
            raise  # the server is created in ERROR (see create)
        except neutron_errors.NeutronException as exc:
            raise faults.from_neutron(exc) from None
        return records

    # ============================================================================== update
    def _check_write(self, ctx: RequestContext, row: Any, action: str) -> None:
        if ctx.is_admin or (ctx.has("member") and row.project_id == ctx.project_id):
            return
        raise faults.policy(f"os_compute_api:servers:{action}")

    def update(self, ctx: RequestContext, uow: UnitOfWork, sid: str, body: Any, mv: Version) -> Any:
        s = server_requests.update_fields(body, mv)
        row = self.fetch(ctx, uow.conn, sid)
        self._check_write(ctx, row, "update")
        values = server_requests.update_values(s)
        self._bump(uow, sid, values)
        return uow.conn.execute(select(t.servers).where(t.servers.c.id == sid)).one()

    def _bump(self, uow: UnitOfWork, sid: str, values: dict[str, Any]) -> None:
        vals = dict(values)
        vals["revision_number"] = t.servers.c.revision_number + 1
        vals["updated_at"] = now_iso()
        uow.conn.execute(update(t.servers).where(t.servers.c.id == sid).values(**vals))
        self._record(uow, sid, "update")

    # --- metadata ---------------------------------------------------------------------------------
    def set_metadata(
        self, ctx: RequestContext, uow: UnitOfWork, sid: str, md: dict[str, str], replace: bool
    ) -> dict[str, str]:
        row = self.fetch(ctx, uow.conn, sid)
        self._check_write(ctx, row, "update")
        md = server_requests.check_metadata(md)
        new = dict(md) if replace else {**(row.meta or {}), **md}
        server_requests.check_metadata(new)
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
        ports = conn.execute(
            select(t.ports).where(t.ports.c.device_id == row.id, t.ports.c.device_owner.like("compute:%"))
        ).all()
        for p in ports:
            if p.id in created:
                self.ports.remove(uow, p)
            else:
                net = network_target(conn, p.network_id)
                current = self.ports.dicts(conn, [p])[0]
                self.ports.apply_update(
                    uow, p, net, current, {"device_id": "", "device_owner": "", "binding:host_id": "", "dns_name": ""}
                )

    # ============================================================================== agent reports
    def set_state(self, uow: UnitOfWork, sid: str, body: Any) -> dict[str, Any]:
        """``POST /neutrino/v1/servers/{id}/state``; returns the agent view (raises NeutronException)."""
        report = server_requests.parse_state_report(body)
        status, host, fault = report.status, report.host, report.fault
        conn = uow.conn
        row = conn.execute(select(t.servers).where(t.servers.c.id == sid)).first()
        if row is None:
            raise ServerGone(id=sid)
        if host is not None and row.host != host:
            raise WrongHost(id=sid, host=host, placed=row.host or "no host")
        if row.host is None and status != "ERROR":
            raise WrongHost(id=sid, host=host or "any host", placed="no host")
        values: dict[str, Any] = {
            "status": status,
            "vm_state": report.vm_state,
            "task_state": None,
            "power_state": report.power_state,
        }
        if status == "ERROR":
            f = fault or {}
            code = f.get("code", 500)
            values["fault"] = {
                "code": code if isinstance(code, int) else 500,
                "message": str(f.get("message") or "Unknown error")[:255],
                "details": str(f.get("details") or ""),
                "created": now_iso(),
            }
        else:
            values["fault"] = None
        if status == "ACTIVE" and row.launched_at is None:
            values["launched_at"] = server_requests.usec_now()
        same = all(getattr(row, k) == v for k, v in values.items() if k != "fault") and (
            status != "ERROR" or (row.fault or {}).get("message") == values["fault"]["message"]
        )
        if same:
            return self.agent_view(conn, sid)
        self._bump(uow, sid, values)
        return self.agent_view(conn, sid)


class ServerGone(neutron_errors.NotFound):
    message = "Server %(id)s could not be found."


class WrongHost(neutron_errors.Conflict):
    message = "Server %(id)s is placed on %(placed)s, not on %(host)s."


def network_context(conn: Connection, port_dicts: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The networks and subnets of ``port_dicts``, as the expanded agent view shows them:
    ``({id: {id, name, mtu}}, {id: {id, network_id, ip_version, cidr, gateway_ip, enable_dhcp,
    dns_nameservers, host_routes}})`` (also used for trunk subports by the metadata API)."""
    net_ids = sorted({p["network_id"] for p in port_dicts})
    subnet_ids = sorted({a["subnet_id"] for p in port_dicts for a in p["fixed_ips"]})
    nets = (
        {
            n.id: {"id": n.id, "name": n.name, "mtu": n.mtu}
            for n in conn.execute(
                select(t.networks.c.id, t.networks.c.name, t.networks.c.mtu).where(t.networks.c.id.in_(net_ids))
            )
        }
        if net_ids
        else {}
    )
    subnets = (
        {
            s.id: {
                "id": s.id,
                "network_id": s.network_id,
                "ip_version": s.ip_version,
                "cidr": s.cidr,
                "gateway_ip": s.gateway_ip,
                "enable_dhcp": s.enable_dhcp,
                "dns_nameservers": list(s.dns_nameservers or []),
                "host_routes": list(s.host_routes or []),
            }
            for s in conn.execute(select(t.subnets).where(t.subnets.c.id.in_(subnet_ids)))
        }
        if subnet_ids
        else {}
    )
    return nets, subnets
