"""The DHCP agent: one dnsmasq per network scheduled here, in ``qdhcp-<net>``.

Desired state: the networks whose ``dhcp_binding`` (feed) names this host,
with their subnets and ports.  The pure planner (``planner.plan``) compares
them with what this host has (namespaces, conf files, the running dnsmasq's
command line, the tap's addresses) and returns ops; this module applies
them.  Ops that need the API (creating or updating the DHCP port, releasing
it on teardown) run first, in the async part; the rest runs in a thread.

Networks are observed and applied in parallel (``WORKERS`` threads; each
network's ops in their planned order, teardowns before the rest).  A burst
of port changes arrives as one batch of feed changes, so it costs one pass
and at most one SIGHUP per network; a changed command line (ranges,
MTU, DNS servers) restarts dnsmasq.  Restarting the agent leaves healthy
dnsmasqs alone (their files and command line already match); a dnsmasq that
died is started again on the next pass.

Ownership: a network is this agent's when its conf dir exists under
``STATE/dhcp`` — several agents (hosts) on one machine never touch each
other's namespaces.

One bad network never blocks the others: a network that cannot be observed is
left out of the pass, one whose view is held or whose planning fails gets no
op (see the planner), an API call (its DHCP port) or a host op that fails ends
only that network's ops.  What happened is in ``configurations()`` as
``reconcile_error`` (``network <id>: ...``) until a pass goes through.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Set
from pathlib import Path
from typing import Any

from neutrino.agents.dhcp import render
from neutrino.agents.dhcp.model import DhcpConfig, dhcp_device_id, namespace_name, network_views
from neutrino.agents.dhcp.planner import (
    Coalescer,
    EnsureDhcpPort,
    EnsureNamespace,
    ObservedDevice,
    ObservedDhcp,
    Op,
    PlugTap,
    ReleaseLeases,
    ReloadDnsmasq,
    RestartDnsmasq,
    SetAddresses,
    StartDnsmasq,
    Teardown,
    UnplugTap,
    WriteFiles,
    plan,
)
from neutrino.agents.interface import InterfaceDriver
from neutrino.agents.metadata import MetadataProxies
from neutrino.agents.parallel import apply_grouped, parallel
from neutrino.config import Config
from neutrino.feed.state import State
from neutrino.system import dnsmasq
from neutrino.system.host import Host

LOG = logging.getLogger(__name__)
FILES = (render.FILE_HOST, render.FILE_ADDN_HOSTS, render.FILE_OPTS, render.FILE_INTERFACE, render.FILE_LEASES)
#: Networks observed / applied at the same time.  The work is external commands and waits
#: (ovs-vsctl --wait, dnsmasq's pid file), so it overlaps well even on few CPUs; each
#: network's own ops still run one after the other, in the planned order.
#: At most one dnsmasq reload per network per this many seconds (a burst is coalesced).
RELOAD_INTERVAL = 0.2


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with mode 0644: dnsmasq re-reads it as user nobody (the agents' umask is 077)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _conf_mkdir(conf: Path) -> None:
    """A network's dnsmasq directory, mode 0755 (searchable by dnsmasq's user, whatever the umask)."""
    conf.mkdir(parents=True, exist_ok=True)
    conf.chmod(0o755)


class DhcpDriver:
    """The DHCP agent's driver for the reconcile loop; changes the machine only through ``host``."""

    agent_type = "DHCP agent"
    binary = "neutrino-dhcp-agent"
    topic = "dhcp_agent"
    feed_types = ("network", "subnet", "port", "dhcp_binding")

    def __init__(
        self, cfg: DhcpConfig, iface: InterfaceDriver, metadata: MetadataProxies | None = None, *, host: Host
    ) -> None:
        self.cfg = cfg
        self.host = host
        self.iface = iface
        self.metadata = metadata
        self.client: Any = None
        self.counts = {"networks": 0, "subnets": 0, "ports": 0}
        self.coalescer: Coalescer[str] = Coalescer(time.monotonic, RELOAD_INTERVAL)
        self._reload_lock = threading.Lock()
        self._flusher: asyncio.Task[None] | None = None
        #: network id -> what went wrong with it in the last pass (see the module doc).
        self.problems: dict[str, list[str]] = {}

    def configurations(self) -> dict[str, Any]:
        return {
            "dhcp_driver": "dnsmasq",
            "dhcp_lease_duration": self.cfg.dhcp_lease_duration,
            "log_agent_heartbeats": False,
            **self.counts,
            **({"reconcile_error": problem_report(self.problems)} if self.problems else {}),
        }

    # --- paths ------------------------------------------------------------------------------
    def conf_dir(self, net_id: str) -> Path:
        return Path(self.cfg.conf_dir(net_id))

    def _spec(self, net_id: str, argv: tuple[str, ...] = ("dnsmasq",)) -> Any:
        return dnsmasq.spec(net_id, argv, self.conf_dir(net_id) / render.FILE_PID, namespace_name(net_id))

    # --- observe ----------------------------------------------------------------------------
    def observe(self, failed: dict[str, str] | None = None) -> dict[str, ObservedDhcp]:
        """Every network of this agent as the host has it; one that cannot be observed is
        left out (and named in ``failed``), so the pass leaves it alone."""
        base = Path(self.cfg.state_dir)
        if not base.is_dir():
            return {}
        dirs = sorted(p for p in base.iterdir() if p.is_dir())
        orphans = self.iface.orphaned() if dirs else set()

        def one(d: Path) -> ObservedDhcp | str:
            try:
                return self._observe_one(d, orphans)
            except Exception as exc:  # noqa: BLE001 - one network must not stop the others
                LOG.warning("observing network %s failed: %s", d.name, exc)
                return f"not observed ({type(exc).__name__}: {str(exc)[:200]})"

        out = {}
        for d, got in zip(dirs, parallel(one, dirs), strict=True):
            if isinstance(got, str):
                if failed is not None:
                    failed[d.name] = got
            else:
                out[d.name] = got
        return out

    def _observe_one(self, d: Path, orphans: Set[str] = frozenset()) -> ObservedDhcp:
        net_id = d.name
        ns = namespace_name(net_id)
        files = {}
        for name in FILES:
            f = d / name
            if f.exists():
                files[name] = f.read_text()
        argv = self.host.process_argv(self._spec(net_id))
        have_ns = self.host.netns_exists(ns)
        devices: dict[str, ObservedDevice] = {}
        routes: list[str] = []
        if have_ns:
            view = self.host.observe_netns(netns=ns)  # links, addresses, routes: one `ip` process
            addrs: dict[str, set[str]] = {}
            for a in view.addresses:
                if a.ifname != "lo" and not (
                    a.address.version == 6 and a.address.ip.is_link_local and str(a.address) != "fe80::a9fe:a9fe/128"
                ):
                    addrs.setdefault(a.ifname, set()).add(str(a.address))
            for link in view.links:
                if link.name != "lo" and link.name not in orphans:  # a dead tap: plugged again
                    devices[link.name] = ObservedDevice(
                        link.name, frozenset(addrs.get(link.name, set())), link.mac, link.mtu
                    )
            for fam_routes in (view.routes4, view.routes6):
                routes += [str(r.gateway) for r in fam_routes if r.dst == "default" and r.gateway is not None]
        return ObservedDhcp(
            namespace=have_ns,
            dnsmasq_alive=argv is not None,
            argv=tuple(argv or ()),
            files=files,
            devices=devices,
            default_route=tuple(routes),
        )

    # --- apply (host side) ----------------------------------------------------------------------
    def apply(self, op: Op) -> None:
        ns = namespace_name(op.network_id)
        conf = self.conf_dir(op.network_id)
        if isinstance(op, EnsureNamespace):
            _conf_mkdir(conf)
            self.host.ensure_netns(ns)
            self.host.set_sysctl("net.ipv4.ip_nonlocal_bind", 1, netns=ns)
        elif isinstance(op, UnplugTap):
            self.iface.unplug(op.device, ns)
        elif isinstance(op, PlugTap):
            _conf_mkdir(conf)
            self.iface.plug(op.device, op.port.id, op.port.mac, op.mtu or 1500, ns)
        elif isinstance(op, SetAddresses):
            self.iface.set_addresses(op.device, ns, op.addresses)
            for fam, gw in (
                (4, next((g for g in op.default_route if ":" not in g), None)),
                (6, next((g for g in op.default_route if ":" in g), None)),
            ):
                if gw:
                    self.host.ensure_route("default", via=gw, netns=ns)
                else:
                    for r in self.host.list_routes(netns=ns, family=fam):
                        if r.dst == "default":
                            self.host.remove_route("default", netns=ns, via=r.gateway)
        elif isinstance(op, WriteFiles):
            _conf_mkdir(conf)
            for name, text in op.files.items():
                atomic_write(conf / name, text)
        elif isinstance(op, ReleaseLeases):
            for lease in op.leases:
                tool = "dhcp_release6" if ":" in lease.ip else "dhcp_release"
                argv = [tool, op.device, lease.ip, lease.mac] + ([lease.client_id] if lease.client_id else [])
                self.host.run(argv, netns=ns, check=False)
        elif isinstance(op, StartDnsmasq):
            self.host.process_start(self._spec(op.network_id, op.argv))
        elif isinstance(op, RestartDnsmasq):
            self.host.process_stop(self._spec(op.network_id))
            self.host.process_start(self._spec(op.network_id, op.argv))
        elif isinstance(op, ReloadDnsmasq):
            # Coalesced: at most one SIGHUP per network per 200 ms during a burst.
            with self._reload_lock:
                self.coalescer.request(op.network_id)
        elif isinstance(op, Teardown):
            self.host.process_stop(self._spec(op.network_id))
            if self.metadata is not None:
                self.metadata.stop(op.network_id, ns)
            for dev in op.devices:
                self.iface.unplug(dev, ns)
            self.host.remove_netns(ns)
            shutil.rmtree(conf, ignore_errors=True)

    def apply_all(self, ops: list[Op]) -> dict[str, str]:
        """Apply ``ops``: each network's in order, networks in parallel, teardowns first.
        Returns network id -> what failed (that network's later ops were not run)."""
        return apply_grouped(
            ops,
            key=lambda op: op.network_id,
            apply=self.apply,
            is_teardown=lambda op: isinstance(op, Teardown),
            creates_namespace=lambda op: isinstance(op, EnsureNamespace),
            netns_dir_mounted=self.host.netns_dir_mounted,
            what="network",
        )

    def ensure_metadata_proxies(self, views: dict[str, Any]) -> None:
        """A haproxy metadata proxy in each namespace that serves metadata (see
        ``render.wants_metadata_proxy``), none in the others.  Idempotent; after the ops."""
        if self.metadata is None:
            return
        proxies = self.metadata

        def one(item: tuple[str, Any]) -> None:
            net_id, view = item
            ns = namespace_name(net_id)
            try:
                if render.wants_metadata_proxy(self.cfg, view) and self.host.netns_exists(ns):
                    proxies.ensure_network(net_id, ns)
                elif proxies.running(net_id):
                    proxies.stop(net_id, ns)
            except Exception as exc:  # noqa: BLE001 - retried on the next pass
                LOG.warning("metadata proxy for network %s failed: %s", net_id, exc)

        parallel(one, sorted(views.items()))

    # --- apply (API side) ------------------------------------------------------------------------
    async def _ensure_port(self, op: EnsureDhcpPort, state: State) -> None:
        device_id = op.device_id or dhcp_device_id(self.cfg.host, op.network_id)
        mine = _own_dhcp_ports(state, op.network_id, device_id)
        fixed = [{"subnet_id": s} for s in op.subnet_ids]
        if mine:
            port = mine[0]
            keep = [f for f in port.get("fixed_ips", []) if f["subnet_id"] in op.subnet_ids]
            have = {f["subnet_id"] for f in keep}
            body = {
                "fixed_ips": keep + [f for f in fixed if f["subnet_id"] not in have],
                "binding:host_id": self.cfg.host,
            }
            await self.client.api("PUT", f"/v2.0/ports/{port['id']}", {"port": body})
            return
        net = state.get("network", op.network_id) or {}
        await self.client.api(
            "POST",
            "/v2.0/ports",
            {
                "port": {
                    "network_id": op.network_id,
                    "device_owner": "network:dhcp",
                    "device_id": device_id,
                    "binding:host_id": self.cfg.host,
                    "fixed_ips": fixed,
                    "project_id": net.get("project_id", ""),
                    "name": "",
                }
            },
        )

    async def _release_port(self, net_id: str, state: State) -> None:
        for p in _own_dhcp_ports(state, net_id, dhcp_device_id(self.cfg.host, net_id)):
            await self.client.api("DELETE", f"/v2.0/ports/{p['id']}", None, ok=(204, 404, 409))

    # --- the loop's entry point ---------------------------------------------------------------------
    def desired(self, state: State) -> dict[str, Any]:
        mine = {b["network_id"] for b in state.of("dhcp_binding").values() if self.cfg.host in (b.get("hosts") or [])}
        nets = {n: state.of("network")[n] for n in mine if n in state.of("network")}
        return network_views(nets, state.of("subnet"), state.of("port"), self.cfg.host)

    def _flush_reloads(self) -> None:
        with self._reload_lock:
            due = self.coalescer.due()
        for net_id in due:
            self.host.process_reload(self._spec(net_id))

    async def _flush_later(self) -> None:
        """Send the reloads still pending once they are due (a burst's last one included)."""
        try:
            while True:
                with self._reload_lock:
                    at = self.coalescer.next_due()
                if at is None:
                    return
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                await asyncio.to_thread(self._flush_reloads)
        finally:
            self._flusher = None

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        views = self.desired(state)
        unobserved: dict[str, str] = {}
        observed = await asyncio.to_thread(self.observe, unobserved)
        # A network the host could not show is left alone this pass (neither planned nor torn down).
        problems: dict[str, list[str]] = {nid: [why] for nid, why in unobserved.items()}
        ops = plan(self.cfg, {n: v for n, v in views.items() if n not in unobserved}, observed, problems)
        host_ops: list[Op] = []
        for op in ops:
            try:
                if isinstance(op, EnsureDhcpPort):
                    await self._ensure_port(op, state)  # the port comes back on the feed
                    continue
                if isinstance(op, Teardown):
                    # Not served here any more (or no DHCP subnet left): give the port back
                    # first (if that fails, the teardown waits for the next pass).
                    await self._release_port(op.network_id, state)
            except Exception as exc:  # noqa: BLE001 - one network's API call must not stop the others
                LOG.warning("%s for network %s failed: %s", type(op).__name__, op.network_id, exc)
                problems.setdefault(op.network_id, []).append(f"{type(op).__name__} failed: {str(exc)[:200]}")
                continue
            host_ops.append(op)
        failed = await asyncio.to_thread(self.apply_all, host_ops)
        for nid, why in failed.items():
            problems.setdefault(nid, []).append(why)
        self.problems = problems
        await asyncio.to_thread(self.ensure_metadata_proxies, views)
        await asyncio.to_thread(self._flush_reloads)
        if self.coalescer.pending and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_later())
        self.counts = {
            "networks": len(views),
            "subnets": sum(len(v.dhcp_subnets) for v in views.values()),
            "ports": sum(len(v.ports) for v in views.values()),
        }
        return {}


def problem_report(problems: dict[str, list[str]], limit: int = 500) -> str:
    """``network <id>: <what>; ...`` (bounded), for ``reconcile_error``."""
    text = "; ".join(f"network {nid}: {', '.join(whats)}" for nid, whats in sorted(problems.items()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def confs_dir(cfg: Config) -> Path:
    """Where the per-network dnsmasq directories live (see ``[DEFAULT] dhcp_confs``)."""
    if cfg.default.dhcp_confs:
        return Path(cfg.default.dhcp_confs)
    digest = hashlib.sha1(str(cfg.state_dir.resolve()).encode()).hexdigest()[:8]
    return Path("/run/neutrino") / f"dhcp-{digest}"


def dhcp_config(cfg: Config, host: str) -> DhcpConfig:
    d = cfg.default
    base = confs_dir(cfg)
    base.mkdir(parents=True, exist_ok=True)
    for p in (base.parent, base):
        p.chmod(0o755)  # dnsmasq (user nobody) re-reads its files on SIGHUP
    return DhcpConfig(
        host=host,
        state_dir=str(base),
        dhcp_lease_duration=d.dhcp_lease_duration,
        dns_domain=d.dns_domain,
        dnsmasq_dns_servers=tuple(d.dnsmasq_dns_servers),
        dnsmasq_local_resolv=d.dnsmasq_local_resolv,
        enable_isolated_metadata=d.enable_isolated_metadata,
        force_metadata=d.force_metadata,
        dhcp_renewal_time=d.dhcp_renewal_time,
        dhcp_rebinding_time=d.dhcp_rebinding_time,
        dnsmasq_lease_max=d.dnsmasq_lease_max,
    )


def make_driver(cfg: Config, host_name: str, host: Host) -> DhcpDriver:
    return DhcpDriver(
        dhcp_config(cfg, host_name),
        InterfaceDriver(host, cfg.ovs.integration_bridge),
        MetadataProxies.from_config(cfg, host),
        host=host,
    )


def _own_dhcp_ports(state: State, network_id: str, device_id: str) -> list[dict[str, Any]]:
    """This host's DHCP ports on ``network_id``: owner ``network:dhcp``, our device id, and on that
    network.  Any project can write a DHCP-like ``device_id`` on a port of its own network; such a
    port is never taken over (updated with another network's subnets) nor deleted."""
    return [
        p
        for p in state.of("port").values()
        if p.get("device_id") == device_id
        and p.get("network_id") == network_id
        and p.get("device_owner") == "network:dhcp"
    ]
