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

A pass costs external commands (a few milliseconds of CPU each) and kernel
waits, so ``apply_all`` spends as few as it can, whatever the number of
routers:

1. teardowns: their metadata proxies stopped, then ONE OVSDB transaction
   deleting all their ports and ONE ``ip -batch`` deleting the namespaces
   (which takes their veths along, without a grace period per device);
2. new namespaces: ONE ``ip -batch`` (``netns add`` per router), then their
   sysctls (one process each, in parallel);
3. new ``qr-``/``qg-`` devices of all routers: veth pairs created straight
   into their namespaces by ONE ``ip -batch``, their OVS ports by ONE OVSDB
   transaction (``InterfaceDriver.create_all``; no device moves, which cost
   ~20 ms each under the RTNL lock);
4. then per router, in parallel (``parallel.WORKERS`` threads), its ops in
   their planned order: ONE ``ip -force -batch`` in the namespace for
   loopback, devices (MAC/MTU/up), addresses and routes (the differences the
   planner computed), ``ethtool`` per new device (checksum offload),
   ``iptables-restore``, ``conntrack``.

A cold router is thus 6 commands of its own instead of ~35.  Whatever fails
in a shared step or a batch falls back, for the routers concerned, to the
op-by-op path (``apply``: each op observes what it changes, idempotent),
which also reports the error; a failed deletion of something already gone
is not a failure.  Gratuitous ARPs are sent in the background
(``garp.GARP_WORKERS`` threads, one ``arping`` per address, as Neutron spawns
them): each ``arping`` takes about a second and only speeds up neighbours'
caches, so a pass does not wait for them.  Routers are observed in parallel
(one ``ip -batch`` and one ``iptables-save`` each), and only those whose
desired state changed (or whose last pass failed) except on a full pass,
every ``L3Driver.FULL_SYNC_INTERVAL`` seconds and after a restart.

Ownership: a router is this agent's when it has a marker under
``STATE/l3/`` (several hosts' agents may run on one machine in tests).

One bad router never blocks the others: a router whose view cannot be built,
whose namespace cannot be observed or whose planning fails is left as it is
this pass (and retried by the next one, like a router some op of which
failed), and a failed binding of one of its ports stops nothing else.  What
happened is in ``configurations()`` as ``reconcile_error`` (``router <id>:
...``) until a pass goes through.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from neutrino.agents.interface import InterfaceDriver, NewPort
from neutrino.agents.l3.garp import GarpSender
from neutrino.agents.l3.ip_lines import ip_commands, planner_route
from neutrino.agents.l3.model import L3Config, RouterView, namespace_name, router_views
from neutrino.agents.l3.planner import (
    ApplyRules,
    EnsureNamespace,
    FlushConntrack,
    Garp,
    ObservedDevice,
    ObservedRouter,
    Op,
    PlugInterface,
    SetAddresses,
    SetRoutes,
    SetSysctls,
    Teardown,
    UnplugInterface,
    floatingip_statuses,
    plan,
)
from neutrino.agents.metadata import MetadataProxies
from neutrino.agents.parallel import parallel
from neutrino.config import Config
from neutrino.feed.state import State
from neutrino.system import iproute
from neutrino.system.host import Host

LOG = logging.getLogger(__name__)
#: Ops ``apply_all`` turns into ``ip`` batch lines (see ``ip_commands``).
_BATCHED = (PlugInterface, SetAddresses, SetRoutes)


class L3Driver:
    """The L3 agent's driver for the reconcile loop (``neutrino.agents.loop``).

    Passes are incremental: a router is observed and planned again only when its desired
    view changed since the host last matched it, or its last pass failed; every
    ``FULL_SYNC_INTERVAL`` seconds (and on the first pass, e.g. after a restart) every router
    is observed afresh, which also repairs what was changed behind the agent's back.  An
    idle pass thus costs no command at all (100 routers: 200 commands otherwise).

    The machine is changed only through ``host``; ``clock`` (``time.monotonic``) times the
    full passes.
    """

    #: Seconds between passes that observe every router.
    FULL_SYNC_INTERVAL = 30.0
    agent_type = "L3 agent"
    binary = "neutrino-l3-agent"
    topic = "l3_agent"
    feed_types = ("router", "port", "subnet", "network", "floatingip", "l3_binding")

    def __init__(
        self,
        cfg: L3Config,
        iface: InterfaceDriver,
        marks: Path,
        metadata: MetadataProxies | None = None,
        *,
        host: Host,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.host = host
        self.clock = clock
        self.iface = iface
        self.marks = marks
        self.metadata = metadata
        self.client: Any = None
        self.counts = {"routers": 0, "ex_gw_ports": 0, "interfaces": 0, "floating_ips": 0}
        self.reported: dict[str, str] = {}
        self.garps = GarpSender(host.garp)
        self.applied: dict[str, RouterView] = {}  # router -> the view the host matched after a pass
        self.retry: set[str] = set()  # routers whose last pass failed
        self.full_sync_at: float | None = None  # self.clock() of the last full pass
        self._failed: set[str] = set()
        self._errors: dict[str, str] = {}  # router -> the first failure of this pass's ops
        self._lock = threading.Lock()
        #: router -> what went wrong with it in the last pass (see the module doc).
        self.problems: dict[str, str] = {}

    def configurations(self) -> dict[str, Any]:
        return {
            "agent_mode": "legacy",
            "handle_internal_only_routers": True,
            "interface_driver": "openvswitch",
            "log_agent_heartbeats": False,
            "extensions": ["port_forwarding"],
            **self.counts,
            **({"reconcile_error": problem_report(self.problems)} if self.problems else {}),
        }

    # --- observe ----------------------------------------------------------------------------
    def observe(
        self, router_ids: Iterable[str] | None = None, failed: dict[str, str] | None = None
    ) -> dict[str, ObservedRouter]:
        """The routers of this agent (a mark each) as the host has them; only those of
        ``router_ids`` if given.  Two commands per router, routers in parallel.  A router
        that cannot be observed is left out (and named in ``failed``)."""
        if not self.marks.is_dir():
            return {}
        rids = sorted(mark.name for mark in self.marks.iterdir())
        if router_ids is not None:
            only = set(router_ids)
            rids = [r for r in rids if r in only]

        def one(rid: str) -> ObservedRouter | str:
            try:
                return self._observe_one(rid)
            except Exception as exc:  # noqa: BLE001 - one router must not stop the others
                LOG.warning("observing router %s failed: %s", rid, exc)
                return f"not observed ({type(exc).__name__}: {str(exc)[:200]})"

        out = {}
        for rid, got in zip(rids, parallel(one, rids), strict=True):
            if isinstance(got, str):
                if failed is not None:
                    failed[rid] = got
            else:
                out[rid] = got
        return out

    def _observe_one(self, rid: str) -> ObservedRouter:
        ns = namespace_name(rid)
        if not self.host.netns_exists(ns):
            return ObservedRouter(namespace=False)
        view = self.host.observe_netns(netns=ns)  # links, addresses, routes: one `ip` process
        routes4, routes6 = view.routes4, view.routes6
        if any(r.dst == "default" and not r.gateway and not r.nexthops for r in routes4):
            # A default route without gateway does not tell its family in the batch output.
            routes4, routes6 = self.host.list_routes(netns=ns, family=4), self.host.list_routes(netns=ns, family=6)
        addrs: dict[str, set[str]] = {}
        for a in view.addresses:
            if a.ifname != "lo" and not a.address.ip.is_link_local:
                addrs.setdefault(a.ifname, set()).add(str(a.address))
        devices = {
            link.name: ObservedDevice(link.name, frozenset(addrs.get(link.name, set())), link.mac, link.mtu)
            for link in view.links
            if link.name != "lo"
        }
        routes = {
            route
            for fam, fam_routes in ((4, routes4), (6, routes6))
            for r in fam_routes
            if (route := planner_route(r, fam)) is not None
        }
        return ObservedRouter(
            namespace=True, devices=devices, routes=frozenset(routes), iptables=self.host.iptables_save(ns)
        )

    # --- apply ------------------------------------------------------------------------------------
    def apply(self, op: Op) -> None:
        ns = namespace_name(op.router_id)
        if isinstance(op, EnsureNamespace):
            self.marks.mkdir(parents=True, exist_ok=True)
            (self.marks / op.router_id).touch()
            self.host.ensure_netns(ns)
            self.host.set_sysctls(op.sysctls, netns=ns)  # one sysctl process
        elif isinstance(op, SetSysctls):
            self.host.set_sysctls(op.sysctls, netns=ns)
        elif isinstance(op, PlugInterface):
            self.iface.plug(op.device, op.port_id, op.mac, op.mtu or 1500, ns)
        elif isinstance(op, UnplugInterface):
            self.iface.unplug(op.device, ns)
        elif isinstance(op, SetAddresses):
            self.iface.set_addresses(op.device, ns, op.cidrs)
        elif isinstance(op, SetRoutes):
            self._set_routes(ns, op)
        elif isinstance(op, ApplyRules):
            self.host.iptables_restore(op.text, ns)
        elif isinstance(op, FlushConntrack):
            for ip in op.ips:
                self.host.conntrack_flush(ns, dst=ip)
                self.host.conntrack_flush(ns, src=ip)
        elif isinstance(op, Garp):
            for ip in op.ips:  # in the background, one arping per address (see GarpSender)
                self.garps.send(op.device, ip, ns)
        elif isinstance(op, Teardown):
            if self.metadata is not None:
                self.metadata.stop(op.router_id, ns)
            for dev in op.devices:
                self.iface.unplug(dev, ns)
            self.host.remove_netns(ns)
            (self.marks / op.router_id).unlink(missing_ok=True)

    def _ensure_namespace(self, op: EnsureNamespace) -> None:
        """The namespace part of ``EnsureNamespace`` once its mark and (normally) the namespace
        itself exist (``apply_all`` creates them for all routers at once): sysctls."""
        ns = op.namespace
        if not self.host.netns_exists(ns):
            self.host.ensure_netns(ns, lo_up=False)
        self.host.set_sysctls(op.sysctls, netns=ns)  # one sysctl process

    def _set_routes(self, ns: str, op: SetRoutes) -> None:
        want = [r.normalised() for r in op.routes()]
        want_set = set(want)
        for fam in (4, 6):
            for seen in self.host.list_routes(netns=ns, family=fam):
                have = planner_route(seen, fam)
                if have is not None and have not in want_set:
                    self.host.remove_route(have.destination, via=seen.gateway, netns=ns)
        for r in want:
            if r.nexthops:
                if len(r.nexthops) == 1:
                    self.host.ensure_route(r.destination, via=r.nexthops[0], netns=ns)
                else:
                    self.host.ip_batch(
                        [["route", "replace", r.destination, *[w for h in r.nexthops for w in ("nexthop", "via", h)]]],
                        netns=ns,
                    )
            else:
                self.host.ensure_route(r.destination, dev=r.device, netns=ns)

    def _attempt(self, what: str, rid: str, fn: Any, *args: Any, **kw: Any) -> None:
        """``_logged``, remembering ``rid`` as failed in this pass (and its first failure)."""
        error = _tried(what, rid, fn, *args, **kw)
        if error is not None:
            with self._lock:
                self._failed.add(rid)
                self._errors.setdefault(rid, f"{what} failed: {error}")

    def apply_all(self, ops: list[Op]) -> set[str]:
        """Apply one pass's ``ops`` with shared steps for all routers (module docstring).

        Each router's ops take effect in their planned order, teardowns before the rest.  A
        failing op is logged and does not stop the router's next ops nor other routers (the
        next pass retries).  Blocks until done (not for gratuitous ARPs).  Returns the routers
        some op of which failed.
        """
        self._failed = set()
        self._errors = {}
        self._apply_all(ops)
        return set(self._failed)

    def _apply_all(self, ops: list[Op]) -> None:
        groups: dict[str, list[Op]] = {}
        for op in ops:
            groups.setdefault(op.router_id, []).append(op)
        teardowns = [op for g in groups.values() for op in g if isinstance(op, Teardown)]
        rest = [g for g in groups.values() if not any(isinstance(op, Teardown) for op in g)]
        if teardowns:
            self._teardown_all(teardowns)
        if not rest:
            return
        ready = self._create_namespaces([op for g in rest for op in g if isinstance(op, EnsureNamespace)])
        slow = self._create_devices([op for g in rest for op in g if isinstance(op, PlugInterface) and not op.exists])
        parallel(lambda g: self._apply_router(g, ready, slow), rest, name="router")

    def _create_namespaces(self, ops: list[EnsureNamespace]) -> set[str]:
        """Marks, then every new namespace with one ``ip -batch``, then their sysctls (one process
        each, in parallel).  The sysctls go before anything else of the pass: writing
        ``ip_forward`` retries its system call until it gets the RTNL lock, so it spins while
        device and address changes hold it.  Returns the routers done (the others go through
        ``_ensure_namespace`` with their other ops)."""
        if not ops:
            return set()
        self.marks.mkdir(parents=True, exist_ok=True)
        for op in ops:
            (self.marks / op.router_id).touch()
        _logged("create namespaces", "", self.host.ensure_netns_all, [op.namespace for op in ops], lo_up=False)

        def sysctls(op: EnsureNamespace) -> str | None:
            try:
                self.host.set_sysctls(op.sysctls, netns=op.namespace)
                return op.router_id
            except Exception as exc:  # noqa: BLE001 - retried with the router's other ops
                LOG.debug("sysctls of router %s: %s", op.router_id, exc)
                return None

        return {rid for rid in parallel(sysctls, ops, name="router") if rid is not None}

    def _teardown_all(self, ops: list[Teardown]) -> None:
        """Every ``Teardown`` at once: metadata proxies, one OVSDB transaction, one namespace
        batch; a router whose namespace is still there after that goes through ``apply``.  The
        namespaces go only once their ports are deleted (a namespace gone is the record that
        its router is done with; an OVS port left behind would never be noticed)."""
        if self.metadata is not None:
            metadata = self.metadata
            parallel(
                lambda op: self._attempt(
                    "stop metadata proxy", op.router_id, metadata.stop, op.router_id, namespace_name(op.router_id)
                ),
                ops,
                name="router",
            )
        if _logged("delete router ports", "", self.iface.unplug_all, [d for op in ops for d in op.devices]):
            _logged("delete namespaces", "", self.host.remove_netns_all, [namespace_name(op.router_id) for op in ops])
        left = []
        for op in ops:
            if self.host.netns_exists(namespace_name(op.router_id)):
                left.append(op)
            else:
                (self.marks / op.router_id).unlink(missing_ok=True)
        parallel(lambda op: self._attempt(type(op).__name__, op.router_id, self.apply, op), left, name="router")

    def _create_devices(self, plugs: list[PlugInterface]) -> set[tuple[str, str]]:
        """The new devices of every router of the pass at once (``InterfaceDriver.create_all``).
        Returns the (router, device) pairs that must be plugged one by one instead."""
        if not plugs:
            return set()
        try:
            failed = self.iface.create_all([_new_port(op) for op in plugs])
        except Exception as exc:  # noqa: BLE001 - each router plugs its own ports instead
            LOG.warning("creating %d router ports at once failed (%s); one by one instead", len(plugs), exc)
            return {(op.router_id, op.device) for op in plugs}
        return {(op.router_id, op.device) for op in plugs if _new_port(op) in failed}

    def _apply_router(self, group: list[Op], ready: set[str], slow: set[tuple[str, str]]) -> None:
        """One router's ops in order; consecutive device/address/route ops as one ``ip`` batch.

        Batched: ``PlugInterface`` of a device ``create_all`` made (its MAC/MTU/up, then
        ``finish``), ``SetAddresses``, ``SetRoutes``.  ``apply`` (op by op): the others, and a
        ``PlugInterface`` of an existing device (MAC/MTU of both veth ends) or of one that
        could not be made with the others.
        """
        rid = group[0].router_id
        ns = namespace_name(rid)
        lines: list[list[str]] = []
        batched: list[Op] = []
        for op in group:
            if isinstance(op, _BATCHED) and not (
                isinstance(op, PlugInterface) and (op.exists or (rid, op.device) in slow)
            ):
                lines += ip_commands(op)
                batched.append(op)
                continue
            self._run_batch(rid, ns, lines, batched)
            lines, batched = [], []
            if isinstance(op, EnsureNamespace):
                if rid not in ready:
                    self._attempt(type(op).__name__, rid, self._ensure_namespace, op)
                lines.append(iproute.set_link_cmd("lo", up=True))
            else:
                self._attempt(type(op).__name__, rid, self.apply, op)
        self._run_batch(rid, ns, lines, batched)

    def _run_batch(self, rid: str, ns: str, lines: list[list[str]], ops: list[Op]) -> None:
        """``lines`` in one ``ip -force -batch`` in ``ns``; if any line failed (other than
        deleting something already gone), ``ops`` again one by one through ``apply``.  Then
        ``finish`` for the devices of the batched ``PlugInterface``s."""
        if not lines:
            return
        try:
            failures = [f for f in self.host.ip_batch_force(lines, netns=ns) if not f.already_gone]
            failed, why = len(failures), "; ".join(f"{' '.join(f.command)}: {f.error}" for f in failures[:3])
        except Exception as exc:  # noqa: BLE001 - retried op by op below
            failed, why = 1, str(exc)
        if failed:
            LOG.info("router %s: %d ip command(s) failed (%s); applying its ops one by one", rid, failed, why)
            for op in ops:
                self._attempt(type(op).__name__, rid, self.apply, op)
        for op in ops:
            if isinstance(op, PlugInterface):
                self._attempt("finish device", rid, self.iface.finish, op.device, ns)

    def ensure_metadata_proxies(self, router_ids: list[str], down: Iterable[str] = ()) -> None:
        """Keep each router's haproxy metadata proxy running (idempotent; after its ops), and
        stop the proxies of the routers ``down`` (administratively down: no metadata)."""
        if self.metadata is None:
            return
        for rid in down:
            if self.metadata.running(rid):  # a pidfile read: no process started
                _logged("stop metadata proxy", rid, self.metadata.stop, rid, namespace_name(rid))
        if not self.cfg.enable_metadata_proxy:
            return
        proxies = self.metadata

        def one(rid: str) -> None:
            ns = namespace_name(rid)
            try:
                if self.host.netns_exists(ns):
                    proxies.ensure_router(rid, ns)
            except Exception as exc:  # noqa: BLE001 - retried on the next pass
                LOG.warning("metadata proxy for router %s failed: %s", rid, exc)

        parallel(one, router_ids)

    # --- the loop's entry point ----------------------------------------------------------------------
    def desired(self, state: State, failed: dict[str, str] | None = None) -> dict[str, Any]:
        """The views of this agent's routers; a router whose view cannot be built is left
        out (and named in ``failed``): built all at once, then one by one if that fails."""
        mine = {b["router_id"] for b in state.of("l3_binding").values() if self.cfg.host in (b.get("hosts") or [])}
        routers = {r: state.of("router")[r] for r in mine if r in state.of("router")}
        rest = (state.of("port"), state.of("subnet"), state.of("network"), state.of("floatingip"), self.cfg)
        try:
            return router_views(routers, *rest)
        except Exception:  # noqa: BLE001 - find the router(s) at fault below
            pass
        views = {}
        for rid, router in sorted(routers.items()):
            try:
                views.update(router_views({rid: router}, *rest))
            except Exception as exc:  # noqa: BLE001 - one router's data must not stop the others
                LOG.warning("router %s cannot be read: %r", rid, exc)
                if failed is not None:
                    failed[rid] = f"cannot be read ({type(exc).__name__}: {str(exc)[:160]}); left as it is"
        return views

    async def _bind_ports(self, views: dict[str, Any], state: State, problems: dict[str, str]) -> None:
        """Router ports are bound to the host of the agent that runs the router
        (so this host's OVS agent wires them); a failure is the router's problem only."""
        for rid, view in views.items():
            for port in view.ports:
                p = state.get("port", port.id) or {}
                if p and p.get("binding:host_id") != self.cfg.host:
                    try:
                        await self.client.api(
                            "PUT", f"/v2.0/ports/{port.id}", {"port": {"binding:host_id": self.cfg.host}}, ok=(404,)
                        )
                    except Exception as exc:  # noqa: BLE001 - retried on the next pass
                        LOG.warning("binding port %s of router %s failed: %s", port.id, rid, exc)
                        problems.setdefault(rid, f"binding port {port.id} failed: {str(exc)[:160]}")

    def scope(self, views: Mapping[str, RouterView], now: float) -> list[str] | None:
        """The routers this pass looks at: None (all of them, observed afresh) on the first
        pass and every ``FULL_SYNC_INTERVAL`` seconds; otherwise those whose desired view
        differs from the one last applied (new, changed, removed) or whose last pass failed."""
        if self.full_sync_at is None or now - self.full_sync_at >= self.FULL_SYNC_INTERVAL:
            return None
        return sorted(
            {r for r, v in views.items() if self.applied.get(r) != v}
            | (self.applied.keys() - views.keys())
            | self.retry
        )

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        # router -> what went wrong; such a router is left as it is this pass and retried.
        problems: dict[str, str] = {}
        views = self.desired(state, problems)
        unreadable = set(problems)
        now = self.clock()
        scope = self.scope(views, now)
        if scope is not None:
            scope = sorted(set(scope) | unreadable)
        if scope is None or scope:
            observed = await asyncio.to_thread(self.observe, scope, problems)
            # Not planned: routers not observed (planning would start them from nothing) or not
            # read (planning would tear them down).
            skip = set(problems)
            observed = {r: o for r, o in observed.items() if r not in unreadable}
            want = {
                r: v
                for r, v in (views if scope is None else {r: views[r] for r in scope if r in views}).items()
                if r not in skip
            }
            ops = plan(self.cfg, want, observed, problems)
            failed = await asyncio.to_thread(self.apply_all, ops) if ops else set()
            for rid in failed:
                problems.setdefault(rid, self._errors.get(rid, "some op failed"))
            failed |= set(problems)
            if scope is None:
                self.applied, self.full_sync_at = {}, now
            for rid in views if scope is None else scope:
                if rid in views and rid not in failed:
                    self.applied[rid] = views[rid]
                else:
                    self.applied.pop(rid, None)
            self.retry = failed
        await asyncio.to_thread(
            self.ensure_metadata_proxies,
            sorted(r for r, v in views.items() if v.admin_state_up),
            sorted(r for r, v in views.items() if not v.admin_state_up),
        )
        if self.client is not None:
            # After plugging: the binding's feed change makes this host's OVS agent wire the
            # port, which it can do at once only if the device is already on br-int (otherwise
            # it would wait for its next tick's check of br-int's ports).
            await self._bind_ports(views, state, problems)
        self.problems = {r: why for r, why in problems.items()}
        statuses = floatingip_statuses(views)
        delta = {
            f: s
            for f, s in statuses.items()
            if self.reported.get(f) != s and (state.get("floatingip", f) or {}).get("status") != s
        }
        if delta and self.client is not None:
            await self.client.post("floatingips/status", {"host": self.cfg.host, "floatingips": delta})
            self.reported.update(delta)
        self.counts = {
            "routers": len(views),
            "ex_gw_ports": sum(1 for v in views.values() if v.gateway is not None),
            "interfaces": sum(len(v.interfaces) for v in views.values()),
            "floating_ips": sum(len(v.floating_ips) for v in views.values()),
        }
        return {}


def _new_port(op: PlugInterface) -> NewPort:
    return NewPort(op.device, op.port_id, op.mac, op.mtu, namespace_name(op.router_id))


def _logged(what: str, rid: str, fn: Any, *args: Any, **kw: Any) -> bool:
    """``fn(*args, **kw)``; a failure is logged (the next pass retries), never raised: False."""
    return _tried(what, rid, fn, *args, **kw) is None


def _tried(what: str, rid: str, fn: Any, *args: Any, **kw: Any) -> str | None:
    """``_logged``, returning None or the failure (bounded) instead of True/False."""
    try:
        fn(*args, **kw)
        return None
    except Exception as exc:  # noqa: BLE001 - one router's failure must not stop the others
        LOG.warning("%s for router %s failed: %s", what, rid or "(all)", exc)
        return f"{type(exc).__name__}: {str(exc)[:200]}"


def problem_report(problems: Mapping[str, str], limit: int = 500) -> str:
    """``router <id>: <what>; ...`` (bounded), for ``reconcile_error``."""
    text = "; ".join(f"router {rid}: {why}" for rid, why in sorted(problems.items()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def l3_config(cfg: Config, host: str) -> L3Config:
    return L3Config(host=host, enable_snat_by_default=cfg.default.enable_snat_by_default)


def interface_driver(host: Host, bridge: str) -> InterfaceDriver:
    """Router ports are veth pairs (no device moves between namespaces: see ``interface``)."""
    return InterfaceDriver(host, bridge, veth=True)


def make_driver(cfg: Config, host_name: str, host: Host) -> L3Driver:
    return L3Driver(
        l3_config(cfg, host_name),
        interface_driver(host, cfg.ovs.integration_bridge),
        cfg.state_dir / "l3",
        MetadataProxies.from_config(cfg, host),
        host=host,
    )
