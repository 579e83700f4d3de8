"""The L3 agent: legacy (centralised) routers as ``qrouter-<id>`` namespaces.

Desired state: the routers whose ``l3_binding`` (feed) names this host, with
their interface and gateway ports, subnets, networks and floating IPs.  The
pure planner compares them with what the host has (namespace, devices,
routes and the namespace's ``iptables-save``) and returns ops; this module
applies them.  The whole ruleset of a router is applied at once with
``iptables-restore`` (atomic per table), so there are never duplicate or
half-applied rules; removed floating IPs and forwardings have their conntrack
entries flushed.

Why iptables (iptables-restore) and not nftables: the rules are Neutron's
(operators know the ``neutron-l3-agent-*`` chains and read them with
``iptables-save``), and iptables-restore replaces a table atomically just as
``nft -f`` would; on Debian 12 the iptables tools are the nft-backed ones.

Routers are observed and applied in parallel (``WORKERS`` threads; each
router's ops in their planned order, teardowns before the rest): the work is
external commands, which overlap well even on few CPUs.  Gratuitous ARPs are
sent in the background (``GARP_WORKERS`` threads, one ``arping`` per address,
as Neutron spawns them): each ``arping`` takes about a second and only speeds
up neighbours' caches, so a pass does not wait for them.

Ownership: a router is this agent's when it has a marker under
``STATE/l3/`` (several hosts' agents may run on one machine in tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import queue
import threading
from pathlib import Path
from typing import Any

from neutrino.agents.interface import InterfaceDriver
from neutrino.agents.parallel import apply_grouped, parallel
from neutrino.agents.metadata import MetadataProxies
from neutrino.agents.l3.model import L3Config, namespace_name, router_views
from neutrino.agents.l3.planner import (ApplyRules, EnsureNamespace, FlushConntrack, Garp, ObservedDevice,
                                        ObservedRouter, Op, PlugInterface, Route, SetAddresses, SetRoutes, Teardown,
                                        UnplugInterface, floatingip_statuses, plan)
from neutrino.agents.ovs.agent import host_ovs
from neutrino.config import Config
from neutrino.feed.state import State
from neutrino.system import arping, conntrack, iproute, iptables, netns

LOG = logging.getLogger(__name__)
#: Routers observed / applied at the same time (each router's ops stay in order).
#: ``arping`` processes at the same time (gratuitous ARPs are sent in the background).
GARP_WORKERS = 32



class _GarpSender:
    """Gratuitous ARPs in the background: a queue and up to ``GARP_WORKERS`` daemon threads
    (started on demand; daemons, so a stopping agent never waits for them)."""

    def __init__(self, workers: int = GARP_WORKERS) -> None:
        self.workers = workers
        self.queue: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.pending = 0
        self.idle = threading.Condition(self.lock)

    def send(self, device: str, ip: str, ns: str) -> None:
        with self.lock:
            self.pending += 1
            if len(self.threads) < min(self.workers, self.pending):
                th = threading.Thread(target=self._run, name=f"garp-{len(self.threads)}", daemon=True)
                self.threads.append(th)
                th.start()
        self.queue.put((device, ip, ns))

    def _run(self) -> None:
        while True:
            device, ip, ns = self.queue.get()
            try:
                arping.garp(device, ip, ns)
            except Exception as exc:  # noqa: BLE001 - a missed GARP only delays neighbours' ARP
                LOG.debug("garp %s on %s failed: %s", ip, device, exc)
            finally:
                with self.lock:
                    self.pending -= 1
                    if not self.pending:
                        self.idle.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued GARP was sent; False on timeout."""
        with self.lock:
            return self.idle.wait_for(lambda: not self.pending, timeout)


class L3Driver:
    agent_type = "L3 agent"
    binary = "neutrino-l3-agent"
    topic = "l3_agent"
    feed_types = ("router", "port", "subnet", "network", "floatingip", "l3_binding")

    def __init__(self, cfg: L3Config, iface: InterfaceDriver, marks: Path,
                 metadata: MetadataProxies | None = None) -> None:
        self.cfg = cfg
        self.iface = iface
        self.marks = marks
        self.metadata = metadata
        self.client: Any = None
        self.counts = {"routers": 0, "ex_gw_ports": 0, "interfaces": 0, "floating_ips": 0}
        self.reported: dict[str, str] = {}
        self.garps = _GarpSender()

    def configurations(self) -> dict[str, Any]:
        return {"agent_mode": "legacy", "handle_internal_only_routers": True, "interface_driver": "openvswitch",
                "log_agent_heartbeats": False, "extensions": ["port_forwarding"], **self.counts}

    # --- observe ----------------------------------------------------------------------------
    def observe(self) -> dict[str, ObservedRouter]:
        if not self.marks.is_dir():
            return {}
        rids = sorted(mark.name for mark in self.marks.iterdir())
        return dict(zip(rids, parallel(self._observe_one, rids)))

    @staticmethod
    def _observe_one(rid: str) -> ObservedRouter:
        ns = namespace_name(rid)
        if not netns.netns_exists(ns):
            return ObservedRouter(namespace=False)
        view = iproute.observe_netns(netns=ns)   # links, addresses, routes: one `ip` process
        routes4, routes6 = view.routes4, view.routes6
        if any(r.dst == "default" and not r.gateway for r in routes4):
            # A default route without gateway does not tell its family in the batch output.
            routes4, routes6 = iproute.list_routes(netns=ns, family=4), iproute.list_routes(netns=ns, family=6)
        addrs: dict[str, set[str]] = {}
        for a in view.addresses:
            if a.ifname != "lo" and not a.address.ip.is_link_local:
                addrs.setdefault(a.ifname, set()).add(str(a.address))
        devices = {link.name: ObservedDevice(link.name, frozenset(addrs.get(link.name, set())), link.mac,
                                             link.mtu)
                   for link in view.links if link.name != "lo"}
        routes = set()
        for fam, fam_routes in ((4, routes4), (6, routes6)):
            for r in fam_routes:
                if r.protocol == "kernel" or (r.dst != "default" and
                                              ipaddress.ip_network(r.dst, strict=False).is_link_local):
                    continue
                dst = ("0.0.0.0/0" if fam == 4 else "::/0") if r.dst == "default" else r.dst
                if "/" not in dst:
                    dst += "/32" if fam == 4 else "/128"
                hops = (r.gateway,) if r.gateway else ()
                routes.add(Route(dst, hops, None if hops else r.dev).normalised())
        return ObservedRouter(namespace=True, devices=devices, routes=frozenset(routes),
                              iptables=iptables.save(ns))

    # --- apply ------------------------------------------------------------------------------------
    def apply(self, op: Op) -> None:
        ns = namespace_name(op.router_id)
        if isinstance(op, EnsureNamespace):
            self.marks.mkdir(parents=True, exist_ok=True)
            (self.marks / op.router_id).touch()
            netns.ensure_netns(ns)
            iproute.set_sysctls(op.sysctls, netns=ns)   # one sysctl process
        elif isinstance(op, PlugInterface):
            self.iface.plug(op.device, op.port_id, op.mac, op.mtu or 1500, ns)
            iproute.disable_offloads(op.device, netns=ns)
        elif isinstance(op, UnplugInterface):
            self.iface.unplug(op.device, ns)
        elif isinstance(op, SetAddresses):
            self.iface.set_addresses(op.device, ns, op.cidrs)
        elif isinstance(op, SetRoutes):
            self._set_routes(ns, op)
        elif isinstance(op, ApplyRules):
            iptables.restore(op.text, ns)
        elif isinstance(op, FlushConntrack):
            for ip in op.ips:
                conntrack.flush(ns, dst=ip)
                conntrack.flush(ns, src=ip)
        elif isinstance(op, Garp):
            for ip in op.ips:   # in the background, one arping per address (see _GarpSender)
                self.garps.send(op.device, ip, ns)
        elif isinstance(op, Teardown):
            if self.metadata is not None:
                self.metadata.stop(op.router_id, ns)
            for dev in op.devices:
                self.iface.unplug(dev, ns)
            netns.remove_netns(ns)
            (self.marks / op.router_id).unlink(missing_ok=True)

    @staticmethod
    def _set_routes(ns: str, op: SetRoutes) -> None:
        want = [r.normalised() for r in op.routes()]
        want_set = set(want)
        for fam in (4, 6):
            for r in iproute.list_routes(netns=ns, family=fam):
                if r.protocol == "kernel":
                    continue
                dst = ("0.0.0.0/0" if fam == 4 else "::/0") if r.dst == "default" else r.dst
                if "/" not in dst:
                    dst += "/32" if fam == 4 else "/128"
                have = Route(dst, (r.gateway,) if r.gateway else (), None if r.gateway else r.dev).normalised()
                if have not in want_set and not ipaddress.ip_network(dst, strict=False).is_link_local:
                    iproute.remove_route(dst, via=r.gateway, netns=ns)
        for r in want:
            if r.nexthops:
                if len(r.nexthops) == 1:
                    iproute.ensure_route(r.destination, via=r.nexthops[0], netns=ns)
                else:
                    iproute.batch([["route", "replace", r.destination,
                                    *[w for h in r.nexthops for w in ("nexthop", "via", h)]]], netns=ns)
            else:
                iproute.ensure_route(r.destination, dev=r.device, netns=ns)

    def apply_all(self, ops: list[Op]) -> None:
        """Apply ``ops``: each router's in order, routers in parallel, teardowns first."""
        apply_grouped(ops, key=lambda op: op.router_id, apply=self.apply,
                      is_teardown=lambda op: isinstance(op, Teardown),
                      creates_namespace=lambda op: isinstance(op, EnsureNamespace), what="router")

    def ensure_metadata_proxies(self, router_ids: list[str]) -> None:
        """Keep each router's haproxy metadata proxy running (idempotent; after its ops)."""
        if self.metadata is None or not self.cfg.enable_metadata_proxy:
            return

        def one(rid: str) -> None:
            ns = namespace_name(rid)
            try:
                if netns.netns_exists(ns):
                    self.metadata.ensure_router(rid, ns)   # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - retried on the next pass
                LOG.warning("metadata proxy for router %s failed: %s", rid, exc)
        parallel(one, router_ids)

    # --- the loop's entry point ----------------------------------------------------------------------
    def desired(self, state: State) -> dict[str, Any]:
        mine = {b["router_id"] for b in state.of("l3_binding").values() if self.cfg.host in (b.get("hosts") or [])}
        routers = {r: state.of("router")[r] for r in mine if r in state.of("router")}
        return router_views(routers, state.of("port"), state.of("subnet"), state.of("network"),
                            state.of("floatingip"), self.cfg)

    async def _bind_ports(self, views: dict[str, Any], state: State) -> None:
        """Router ports are bound to the host of the agent that runs the router
        (so this host's OVS agent wires them)."""
        for view in views.values():
            for port in view.ports:
                p = state.get("port", port.id) or {}
                if p and p.get("binding:host_id") != self.cfg.host:
                    await self.client.api("PUT", f"/v2.0/ports/{port.id}",
                                          {"port": {"binding:host_id": self.cfg.host}}, ok=(404,))

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        views = self.desired(state)
        observed = await asyncio.to_thread(self.observe)
        ops = plan(self.cfg, views, observed)
        if ops:
            await asyncio.to_thread(self.apply_all, ops)
        await asyncio.to_thread(self.ensure_metadata_proxies, sorted(views))
        if self.client is not None:
            # After plugging: the binding's feed change makes this host's OVS agent wire the
            # port, which it can do at once only if the device is already on br-int (otherwise
            # it would wait for its next tick's check of br-int's ports).
            await self._bind_ports(views, state)
        statuses = floatingip_statuses(views)
        delta = {f: s for f, s in statuses.items()
                 if self.reported.get(f) != s and (state.get("floatingip", f) or {}).get("status") != s}
        if delta and self.client is not None:
            await self.client.post("floatingips/status", {"host": self.cfg.host, "floatingips": delta})
            self.reported.update(delta)
        self.counts = {"routers": len(views),
                       "ex_gw_ports": sum(1 for v in views.values() if v.gateway is not None),
                       "interfaces": sum(len(v.interfaces) for v in views.values()),
                       "floating_ips": sum(len(v.floating_ips) for v in views.values())}
        return {}


def l3_config(cfg: Config, host: str) -> L3Config:
    return L3Config(host=host, enable_snat_by_default=cfg.default.enable_snat_by_default)


def make_driver(cfg: Config, host: str) -> L3Driver:
    return L3Driver(l3_config(cfg, host), InterfaceDriver(host_ovs(cfg), cfg.ovs.integration_bridge),
                    cfg.state_dir / "l3", MetadataProxies.from_config(cfg))
