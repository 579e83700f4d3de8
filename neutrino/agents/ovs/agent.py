"""The Open vSwitch L2 agent: observe OVS, plan (pure), apply, report.

The executor is thin: the planner's OVSDB ops become one transaction, and
each bridge's flows are made equal to the planned set in one ``ovs-ofctl
--bundle``.  Flows carry this run's random cookie; the first pass replaces
every flow in place (same match, new cookie) and deletes flows of any other
cookie in the same bundle, so a restart never interrupts traffic.

What a pass reads and writes, and what it costs at 1,000 ports (~50 firewall
flows per port, ~50k flows on br-int):

* OVSDB through an ``OvsdbMonitor`` (neutrino/system/ovsdb_monitor.py): the
  Bridge/Port/Interface rows are kept in memory from the server's update
  notifications, so observing is one round trip (falls back to ``ovs-vsctl
  list`` while the monitor cannot connect).  Column updates (port tags,
  ``other_config``) go over the same connection as one JSON-RPC transaction
  without waiting for ovs-vswitchd (as Neutron does); op lists that create or
  remove rows (bridges, patch and tunnel ports) use ``ovs-vsctl`` and wait,
  since the next pass needs the new ofports.
* Flows: the agent remembers, per bridge, the flow set its last successful
  bundle left (``_installed``).  A pass diffs the plan against that memory
  with set operations and sends only the difference.  The bridges' flows are
  re-read (``dump-flows``) only on a *full* pass: the first one, after any
  failed pass, when br-int's canary flow (table 23) is gone (ovs-vswitchd
  restarted and lost its flows), and every ``REREAD_EVERY`` seconds, so
  nothing relies on the memory for long.  The canary is checked on every
  idle tick, and on other passes when ovs-vswitchd's pid changed (or, when
  its pidfile cannot be read, every ``CANARY_EVERY`` seconds): each check is
  a round trip to ovs-vswitchd, ~100 ms at 1,000 userspace ports.  A
  re-read of an unchanged bridge compares dump lines with the memory and
  parses nothing.

A pass is planned when the feed moved or the host's OVSDB rows changed (a VIF
plugged or unplugged); ``host_changed()`` lets the agent loop wake up for the
latter instead of waiting for its next tick.  Other ticks only check the
canary.

Fail closed per port.  A bundle is all or nothing, so one flow the switch (or
``ovs-ofctl``) rejects would leave every port of the host unprogrammed.  When
br-int's bundle is rejected, the agent applies the flows no single port owns
(with the deletions), then each wired port's own flows (``planner.port_flows``)
in bundles split in halves until the rejected ports are found (a few bundles
for one bad port among a thousand).  Those ports are planned again as isolated
(``plan(..., isolated=...)``: dead VIF, no table-0 allow flow, status
``ERROR``) and named in ``configurations()["reconcile_error"]``, while every
other port is programmed.  A port stays isolated while its desired value and
rules are unchanged, until the next full pass tries it again.  A rejected
bundle that no port explains (the shared flows themselves) fails the pass as
before.  The planner never builds flows for a port whose MAC or addresses are
not strictly addresses (``planner.port_problem``): isolated without trying.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from neutrino.agents.ovs import derive
from neutrino.agents.ovs.bundle import flow_changes, rejection
from neutrino.agents.ovs.firewall import ConjIds, OvsFirewall
from neutrino.agents.ovs.host_config import agent_config, firewall_driver, host_ovs
from neutrino.agents.ovs.model import (
    AgentConfig,
    DesiredHost,
    DesiredPort,
    EnsureBridge,
    EnsurePatch,
    EnsureTrunkPatch,
    EnsureTunnelPort,
    FlowSpec,
    ObservedPort,
    RemovePort,
)
from neutrino.agents.ovs.ovsdb_model import observed_state, to_system_op
from neutrino.agents.ovs.planner import local_vlans_from_observed, plan, port_flows, port_problem
from neutrino.config import Config
from neutrino.feed.state import State
from neutrino.system import ovsdb as sysovs
from neutrino.system.errors import FlowRejected, FlowSyntaxError, HostError
from neutrino.system.host import Host
from neutrino.system.oftext import UnsafeFlowText, dump_entries
from neutrino.system.openflow import OpenFlow
from neutrino.system.ovsdb_monitor import OvsdbMonitor, Unsupported

LOG = logging.getLogger(__name__)
MAX_PASSES = 5
CANARY_TABLE = 23
#: Seconds between canary checks while passes run back to back (idle ticks always check).
CANARY_EVERY = 0.5
#: Seconds between full passes (flows re-read from the switches).
REREAD_EVERY = 60.0
#: Larger OVSDB op lists (a cold start) go through ovs-vsctl, not the monitor's connection.
MONITOR_MAX_OPS = 256
#: Ops that create or remove rows: ovs-vswitchd assigns ofports the next pass needs.
STRUCTURAL_OPS = (EnsureBridge, EnsurePatch, EnsureTunnelPort, RemovePort, EnsureTrunkPatch)
#: A bundle ovs-ofctl or the switch refused, or that was refused before ovs-ofctl ran
#: (a flow text holding a line break): nothing of it applied.
FLOWS_REJECTED = (FlowSyntaxError, FlowRejected, UnsafeFlowText)
#: Length bound of the ``reconcile_error`` the driver reports.
REPORT_MAX = 500


class OvsDriver:
    agent_type = derive.OVS_AGENT_TYPE
    binary = "neutrino-openvswitch-agent"
    topic = "N/A"
    feed_types = ("network", "port", "agent", "security_group_rule", "security_group")

    def __init__(
        self,
        cfg: AgentConfig,
        ovs: sysovs.Ovs,
        cookie: int | None = None,
        firewall_driver: str = "openvswitch",
        *,
        monitor: bool = True,
        clock: Callable[[], float] = time.monotonic,
        port_check: Callable[[DesiredPort], str | None] = port_problem,
    ) -> None:
        """``port_check``: the planner's check of a port's values (``planner.plan``)."""
        self.cfg = cfg
        self.port_check = port_check
        #: "openvswitch": security groups enforced with conntrack; "noop": only
        #: MAC/IP/ARP anti-spoofing (tables 24/25).
        self.firewall_driver = firewall_driver
        self.conj_ids = ConjIds()
        self.ovs = ovs
        self.of = OpenFlow(ovs)
        self.cookie = cookie if cookie is not None else random.getrandbits(63) | 1
        self.clock = clock
        self.local_vlans: dict[str, int] | None = None
        self.ticks = 0
        self.statuses: dict[str, str] = {}
        self.devices = 0
        self.warnings: list[str] = []
        #: Passes that re-read every bridge's flows (observability, tests).
        self.full_passes = 0
        #: Flow dumps parsed by re-reads (those of a bridge unchanged since the memory are not).
        self.dumps_parsed = 0
        self._use_monitor = monitor
        self._monitor: OvsdbMonitor | None = None
        self._seen_generation = -1
        self._seen_ports: frozenset[str] = frozenset()
        #: bridge -> the flows (all with our cookie) the last successful bundle left;
        #: empty = unknown, the next pass re-reads.
        self._installed: dict[str, frozenset[FlowSpec]] = {}
        self._reread_at = float("-inf")
        self._canary_at = float("-inf")
        self._vswitchd_pid: int | None = None
        self._obs_memo: dict[str, tuple[sysovs.Port, ObservedPort]] = {}
        self._lines: dict[str, tuple[frozenset[FlowSpec], frozenset[str]]] = {}
        self._port_memo = derive.Memo()
        self._desired: tuple[State, DesiredHost, OvsFirewall | None] | None = None
        #: port id -> (what its flows were built from, why): ports whose flows the
        #: switch rejected, kept isolated until that changes or a full pass retries.
        self._rejected: dict[str, tuple[Any, str]] = {}
        #: The bridge whose bundle ``_apply_flows`` last saw rejected (for ``_apply_or_isolate``).
        self._rejected_bridge: str | None = None
        #: port id -> why it is isolated (the last pass's ``Plan.port_errors``).
        self.port_errors: dict[str, str] = {}

    def configurations(self) -> dict[str, Any]:
        c = self.cfg
        return {
            "bridge_mappings": dict(c.bridge_mappings),
            "integration_bridge": c.integration_bridge,
            "tunnel_types": list(c.tunnel_types),
            "tunneling_ip": c.local_ip or "",
            "l2_population": c.l2_population,
            "arp_responder_enabled": c.arp_responder,
            "enable_distributed_routing": False,
            "devices": self.devices,
            "datapath_type": c.datapath_type,
            "ovs_hybrid_plug": False,
            "firewall_driver": self.firewall_driver,
            # Problems the last pass found (unknown physnet, VLANs exhausted, ...),
            # visible in `openstack network agent show` instead of only in a log.
            "errors": list(self.warnings),
            **({"reconcile_error": self.port_report()} if self.port_errors else {}),
        }

    def port_report(self) -> str:
        """The isolated ports and why, one ``port <id>: <why>`` each (bounded)."""
        text = "; ".join(f"port {pid}: {why}" for pid, why in sorted(self.port_errors.items()))
        return text if len(text) <= REPORT_MAX else text[: REPORT_MAX - 3] + "..."

    def _managed_bridges(self) -> list[str]:
        brs = [self.cfg.integration_bridge, *self.cfg.bridge_mappings.values()]
        if self.cfg.tunnel_types and self.cfg.local_ip:
            brs.append(self.cfg.tunnel_bridge)
        return list(dict.fromkeys(brs))

    # ---- OVSDB ---------------------------------------------------------------------
    def _live_monitor(self) -> OvsdbMonitor | None:
        """The monitor, (re)connected if needed; None while it cannot connect."""
        mon = self._monitor
        if mon is not None and mon.alive:
            return mon
        if mon is not None:
            mon.close()
            self._monitor = None
        if not self._use_monitor:
            return None
        try:
            self._monitor = OvsdbMonitor(self.ovs).start()
        except HostError as exc:
            LOG.debug("no OVSDB monitor (%s); observing with ovs-vsctl", exc)
            return None
        return self._monitor

    def _observe(self) -> tuple[sysovs.OvsState, int | None]:
        """(OVSDB state now, the monitor generation it reflects or None)."""
        mon = self._live_monitor()
        if mon is not None:
            try:
                return mon.state_and_generation()
            except HostError as exc:
                LOG.info("OVSDB monitor lost (%s); observing with ovs-vsctl", exc)
        return self.ovs.observe(), None

    def _transact(self, ops: list[sysovs.Op]) -> set[tuple[str, str]] | None:
        """Apply ``ops`` in one transaction; (table, name) of the rows written when it went
        through the monitor (column updates only, no wait), None when through ovs-vsctl."""
        mon = self._live_monitor()
        if mon is not None and len(ops) <= MONITOR_MAX_OPS:
            try:
                mon.transact(ops, wait=False)
                return {(op.table, op.record) for op in ops if isinstance(op, (sysovs.SetColumns, sysovs.ClearColumns))}
            except Unsupported:
                pass
        self.ovs.transact(ops)
        return None

    def _canary_present(self) -> bool:
        self._canary_at = self.clock()
        self._vswitchd_pid = self.ovs.vswitchd_pid()
        try:
            return bool(self.of.dump(self.cfg.integration_bridge, table=CANARY_TABLE))
        except Exception:  # noqa: BLE001 - a missing bridge or dead vswitchd means "resync"
            return False

    def _ports_unchanged(self) -> bool:
        """Without a monitor: are br-int's ports the ones the last pass saw?"""
        try:
            ports = frozenset(self.ovs.vsctl("list-ports", self.cfg.integration_bridge).split())
        except Exception:  # noqa: BLE001 - unreachable OVS means "plan"
            return False
        same = ports == self._seen_ports
        self._seen_ports = ports
        return same

    def _host_unchanged(self) -> bool:
        """Cheap check between planned passes: has OVSDB changed since the last pass saw it?

        A VIF plugged by the compute agent (or unplugged) is a host event, not a
        feed event.  With the monitor: its generation; without: br-int's port names.
        """
        mon = self._monitor
        if mon is not None and mon.alive:
            return mon.generation == self._seen_generation
        if self._live_monitor() is not None:
            return False  # (re)connected: what changed meanwhile is unknown
        return self._ports_unchanged()

    async def host_changed(self) -> None:
        """Return when OVSDB changed since the last pass (for the agent loop to wake up
        early); never returns while there is no monitor (the loop's tick covers that)."""
        mon = self._monitor
        if mon is None or not mon.alive:
            await asyncio.Event().wait()
            return
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        mon.add_listener(wake)
        try:
            while mon.alive and mon.generation == self._seen_generation:
                event.clear()
                await event.wait()
        finally:
            mon.remove_listener(wake)

    def stop(self) -> None:
        """Close the OVSDB monitor (idempotent; a later pass reconnects)."""
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None

    async def close(self) -> None:
        self.stop()

    # ---- the pass --------------------------------------------------------------------
    def _canary_due(self, changed: bool, now: float) -> bool:
        """Idle ticks always check the canary; passes the feed triggered only when
        ovs-vswitchd's pid changed (or is unknown and the last check is old): the
        check is one more round trip to ovs-vswitchd, ~100 ms at 1,000 userspace ports."""
        if not changed:
            return True
        pid = self.ovs.vswitchd_pid()
        if pid is None:
            return now - self._canary_at >= CANARY_EVERY
        return pid != self._vswitchd_pid

    def reconcile_sync(self, state: State, changed: bool) -> dict[str, str]:
        self.ticks += 1
        now = self.clock()
        full = self.local_vlans is None or not self._installed or now - self._reread_at >= REREAD_EVERY
        if not full and self._canary_due(changed, now) and not self._canary_present():
            LOG.info("canary flow gone (ovs-vswitchd restarted?): full resync")
            full = True
        if not (changed or full) and self._host_unchanged():
            return self.statuses
        try:
            return self._pass(state, full)
        except BaseException:
            self._installed.clear()  # what the switches hold is unknown now: re-read next time
            raise

    def _desired_state(self, state: State) -> tuple[DesiredHost, OvsFirewall | None]:
        if self._desired is not None and self._desired[0] is state:
            return self._desired[1], self._desired[2]
        firewall_on = self.firewall_driver == "openvswitch"
        desired = derive.desired_host(
            self.cfg,
            state.of("port"),
            state.of("network"),
            state.of("agent"),
            state.of("security_group_rule") if firewall_on else None,
            memo=self._port_memo,
            sg_groups=state.of("security_group") if firewall_on else None,
        )
        firewall = OvsFirewall(desired.security_groups, desired.group_members, self.conj_ids) if firewall_on else None
        self._desired = (state, desired, firewall)
        return desired, firewall

    def _pass(self, state: State, full: bool) -> dict[str, str]:
        started = self.clock()
        desired, firewall = self._desired_state(state)
        if self.local_vlans is None:
            # Physical bridges named in bridge_mappings are created when missing.
            self.ovs.transact(
                [sysovs.AddBridge(b, datapath_type=self.cfg.datapath_type) for b in self.cfg.bridge_mappings.values()]
            )
        if full:
            self.full_passes += 1
            self._vswitchd_pid = self.ovs.vswitchd_pid()
            self._rejected.clear()  # rejected ports are tried again
        reread = full
        # A fresh host converges in a few passes: OVS assigns ofports only after a
        # port exists, and flows naming them come in the next pass.
        budget = MAX_PASSES
        while budget > 0:
            budget -= 1
            sys_state, generation = self._observe()
            dumped: dict[str, list[tuple[FlowSpec, int]]] = {}
            for b in self._managed_bridges():
                if b in sys_state.bridges and (reread or b not in self._installed):
                    d = self._read_flows(b)
                    if d is not None:
                        dumped[b] = d
            flows = {b: frozenset(f for f, _ in d) for b, d in dumped.items()}
            for b, fl in self._installed.items():
                flows.setdefault(b, fl)
            observed = observed_state(sys_state, flows, self._obs_memo)
            if self.local_vlans is None:
                self.local_vlans = local_vlans_from_observed(observed, self.cfg.integration_bridge)
            p = plan(self.cfg, desired, observed, self.local_vlans, firewall, self._isolated(desired), self.port_check)
            self.local_vlans = dict(p.local_vlans)
            ops = [s for op in p.ovsdb_ops for s in to_system_op(op)]
            written = self._transact(ops) if ops else set()
            if not self._apply_or_isolate(p, dumped, desired, firewall):
                budget = max(budget, 1)  # plan again, with the rejected ports isolated
                continue
            reread = False
            if not any(isinstance(op, STRUCTURAL_OPS) for op in p.ovsdb_ops):
                # Column updates change nothing the next plan depends on; only new
                # OVSDB rows (ofports to learn) need another look.
                break
        self._seen_ports = frozenset(p_.name for p_ in sys_state.ports_on(self.cfg.integration_bridge))
        self._seen_generation = self._generation_after(generation, written)
        if full:
            self._reread_at = started
        for w in p.warnings:
            if w not in self.warnings:
                LOG.warning("%s", w)
        self.warnings = list(p.warnings)
        for pid in p.port_errors.keys() - self.port_errors.keys():
            LOG.warning("port %s isolated: %s", pid, p.port_errors[pid])
        self.port_errors = dict(p.port_errors)
        self.statuses = dict(p.port_status)
        self.devices = len(desired.ports)
        return self.statuses

    def _generation_after(self, observed: int | None, written: set[tuple[str, str]] | None) -> int:
        """The monitor generation this pass accounts for: the one it observed, moved past
        the updates of its own column writes if nothing else changed meanwhile."""
        mon = self._monitor
        if observed is None or mon is None:
            return -1
        if not written:
            return observed
        try:
            mon.sync()
        except HostError:
            return observed
        touched = mon.changes_since(observed)
        if touched is not None and touched <= written | {("Interface", n) for _, n in written}:
            return mon.generation
        return observed

    def _read_flows(self, bridge: str) -> list[tuple[FlowSpec, int]] | None:
        """Every flow of ``bridge`` as (FlowSpec, cookie); None when they are exactly
        what the memory says (compared as dump-flows lines, so a periodic re-read of
        an unchanged 50k-flow bridge parses nothing)."""
        text = self.ovs.run(self.of.ofctl_argv("dump-flows", bridge)).stdout
        installed = self._installed.get(bridge)
        if installed is not None:
            lines = set(text.splitlines())
            for line in [x for x in lines if "actions=" not in x]:
                lines.discard(line)  # the reply header
            if lines == self._dump_lines(bridge, installed):
                return None
        self.dumps_parsed += 1
        return [(FlowSpec(bridge, e.table, e.priority, e.match, e.actions), e.cookie) for e in dump_entries(text)]

    def _dump_lines(self, bridge: str, flows: frozenset[FlowSpec]) -> frozenset[str]:
        """``flows`` with this run's cookie, as ``dump-flows --no-stats`` prints them."""
        cached = self._lines.get(bridge)
        if cached is not None and cached[0] is flows:
            return cached[1]
        head = f" cookie={self.cookie:#x}, "
        lines = frozenset(
            f"{head}{f'table={f.table}, ' if f.table else ''}priority={f.priority}"
            f"{',' if f.match else ''}{f.match} actions={f.actions}"
            for f in flows
        )
        self._lines[bridge] = (flows, lines)
        return lines

    def _dump(self, bridge: str) -> list[tuple[FlowSpec, int]]:
        """Every flow of ``bridge`` as (FlowSpec, cookie)."""
        return [
            (FlowSpec(bridge, e.table, e.priority, e.match, e.actions), e.cookie) for e in self.of.dump_entries(bridge)
        ]

    def _apply_flows(
        self, planned: Mapping[str, frozenset[FlowSpec]], dumped: Mapping[str, list[tuple[FlowSpec, int]]]
    ) -> int:
        """Make each bridge's flows the planned set, in one bundle per bridge.

        Against the dump when the pass read one, else against the memory of the
        last bundle.  Flows of an earlier run (other cookies) are replaced in
        place or deleted in the same bundle; flows learned by table 10 are left
        alone.
        """
        changes = 0
        self._rejected_bridge = None
        for bridge, want in planned.items():
            d = dumped.get(bridge)
            have = self._installed.get(bridge) if d is None else None
            if d is None and have is None:
                d = self._dump(bridge)  # a bridge this pass created
            add, delete = flow_changes(want, have, d, cookie=self.cookie)
            if add or delete:
                try:
                    self.of.apply_canonical(bridge, self.cookie, add, delete)
                except FLOWS_REJECTED:
                    self._rejected_bridge = bridge
                    raise
                changes += len(add) + len(delete)
            self._installed[bridge] = want
        return changes

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        return await asyncio.to_thread(self.reconcile_sync, state, changed)

    # ---- fail closed per port ----------------------------------------------------------------
    @staticmethod
    def _fingerprint(desired: DesiredHost, port: Any) -> Any:
        """What a port's own flows are built from besides its ofport: the port and its rules."""
        return port, tuple(desired.security_groups.get(g, ()) for g in port.security_groups)

    def _isolated(self, desired: DesiredHost) -> dict[str, str]:
        """The rejected ports still built from the same values (the others are forgotten)."""
        if not self._rejected:
            return {}
        ports = {p.id: p for p in desired.ports if p.id in self._rejected}
        out = {}
        for pid, (fp, why) in list(self._rejected.items()):
            if pid in ports and self._fingerprint(desired, ports[pid]) == fp:
                out[pid] = why
            else:
                del self._rejected[pid]
        return out

    def _apply_or_isolate(
        self,
        p: Any,
        dumped: Mapping[str, list[tuple[FlowSpec, int]]],
        desired: DesiredHost,
        firewall: OvsFirewall | None,
    ) -> bool:
        """Apply the plan's flows; False when br-int's bundle was rejected and ports
        were found responsible (now in ``_rejected``; the caller plans again).  Raises
        when the rejection is not a port's (or another bridge's bundle failed)."""
        br_int = self.cfg.integration_bridge
        try:
            self._apply_flows(p.flows, dumped)
            return True
        except FLOWS_REJECTED as exc:
            if self._rejected_bridge != br_int or not p.wired:
                raise
            owned = {w.port.id: port_flows(self.cfg, w, firewall) for w in p.wired}
            self._installed.pop(br_int, None)  # partly applied below: re-read next time
            rejected = self._find_rejected(br_int, p.flows[br_int], dumped.get(br_int), owned, exc)
            if not rejected:
                raise  # every part went through on its own: no port to blame, the pass fails
        ports = {dp.id: dp for dp in desired.ports}
        for pid, why in rejected.items():
            self._rejected[pid] = (self._fingerprint(desired, ports[pid]), why)
        return False

    def _find_rejected(
        self,
        bridge: str,
        want: frozenset[FlowSpec],
        dumped: list[tuple[FlowSpec, int]] | None,
        owned: Mapping[str, frozenset[FlowSpec]],
        exc: Exception,
    ) -> dict[str, str]:
        """Apply ``want`` in parts and return the ports whose own flows the switch rejects
        (port id -> why).  First the flows nobody owns with every deletion (if that is
        rejected, no port is to blame: ``exc`` is raised again), then the ports' flows in
        bundles halved until each rejected bundle is one port's: O(k log n) bundles for k
        bad ports among n.  What is accepted stays applied."""
        have = None if dumped is not None else self._installed.get(bridge)
        if dumped is None and have is None:
            dumped = self._dump(bridge)
        add, delete = flow_changes(want, have, dumped, cookie=self.cookie)
        mine = {pid: flows & add for pid, flows in sorted(owned.items())}
        mine = {pid: flows for pid, flows in mine.items() if flows}
        shared = add.difference(*mine.values()) if mine else add
        try:
            self.of.apply_canonical(bridge, self.cookie, shared, delete)
        except FLOWS_REJECTED:
            raise exc from None
        bad: dict[str, str] = {}

        def search(ids: list[str]) -> None:
            try:
                self.of.apply_canonical(bridge, self.cookie, set().union(*(mine[i] for i in ids)), ())
                return
            except FLOWS_REJECTED as err:
                if len(ids) == 1:
                    bad[ids[0]] = rejection(err)
                    return
            half = len(ids) // 2
            search(ids[:half])
            search(ids[half:])

        if mine:
            search(list(mine))
        return bad


def make_driver(cfg: Config, host_name: str, host: Host) -> OvsDriver:
    """The OVS agent acts on its own ``Ovs`` (the same switch as ``host.ovs``, with the whole
    of OVSDB and OpenFlow the agent needs); ``host`` is not used."""
    return OvsDriver(agent_config(cfg, host_name), host_ovs(cfg), firewall_driver=firewall_driver(cfg))
