"""The Open vSwitch L2 agent: observe OVS, plan (pure), apply, report.

The executor is thin: the planner's OVSDB ops become one ``ovs-vsctl``
transaction, and each bridge's flows are made equal to the planned set in one
``ovs-ofctl --bundle``.  Flows carry this run's random cookie; after the first
full pass, flows with any other cookie (a previous run's) are deleted, so a
restart replaces flows in place without interrupting traffic.

A full pass runs when the desired state changed, when br-int's canary flow
(table 23) is gone (ovs-vswitchd restarted and lost its flows), and every
``FULL_EVERY`` ticks; other ticks only check the canary.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from pathlib import Path
from typing import Any, Iterable, Mapping

from neutrino.agents.ovs import derive
from neutrino.agents.ovs.firewall import ConjIds, OvsFirewall
from neutrino.agents.ovs.model import (AgentConfig, EnsureBridge, EnsurePatch, EnsureTunnelPort, FlowSpec,
                                       ObservedBridge, ObservedPort, ObservedState, OvsdbOp, RemovePort,
                                       SetPortOtherConfig, SetPortTag)
from neutrino.agents.ovs.planner import local_vlans_from_observed, plan
from neutrino.agents.ovs.tables import LEARNED_FLOW_COOKIE
from neutrino.config import Config
from neutrino.feed.state import State
from neutrino.system import ovsdb as sysovs
from neutrino.system.openflow import Flow, OpenFlow, diff, parse_dump

LOG = logging.getLogger(__name__)
FULL_EVERY = 15
MAX_PASSES = 5
CANARY_TABLE = 23


def datapath_type(setting: str) -> str:
    """``auto``: the kernel datapath when its module is loaded, else userspace."""
    if setting != "auto":
        return setting
    return "system" if os.path.isdir("/sys/module/openvswitch") else "netdev"


def agent_config(cfg: Config, host: str) -> AgentConfig:
    return AgentConfig(host=host, integration_bridge=cfg.ovs.integration_bridge,
                       tunnel_bridge=cfg.ovs.tunnel_bridge, bridge_mappings=dict(cfg.ovs.bridge_mappings),
                       local_ip=cfg.ovs.local_ip or None, tunnel_types=tuple(cfg.agent.tunnel_types),
                       l2_population=cfg.agent.l2_population, arp_responder=cfg.agent.arp_responder,
                       datapath_type=datapath_type(cfg.ovs.datapath_type))  # type: ignore[arg-type]


def ovs_rundir(cfg: Config) -> Path:
    return Path(cfg.ovs.ovs_rundir) if cfg.ovs.ovs_rundir else cfg.state_dir / "ovs"


def host_netns(cfg: Config) -> str | None:
    """The namespace of this host's OVS (None: the root namespace)."""
    name = cfg.ovs.host_netns
    if name == "auto":
        digest = hashlib.sha1(str(cfg.state_dir.resolve()).encode()).hexdigest()[:8]
        return f"nt-{digest}"
    return name or None


def host_ovs(cfg: Config) -> sysovs.Ovs:
    return sysovs.Ovs(ovs_rundir(cfg), host_netns(cfg))


# --- mapping between the planner's model and the system adapters -------------------------
def to_system_op(op: OvsdbOp) -> list[sysovs.Op]:
    if isinstance(op, EnsureBridge):
        return [sysovs.AddBridge(op.name, datapath_type=op.datapath_type, fail_mode=op.fail_mode,
                                 protocols=op.protocols)]
    if isinstance(op, EnsurePatch):
        return [sysovs.AddPort(op.bridge, op.name, type="patch", options={"peer": op.peer})]
    if isinstance(op, EnsureTunnelPort):
        return [sysovs.AddPort(op.bridge, op.name, type=op.type, options={
            "remote_ip": op.remote_ip, "local_ip": op.local_ip, "in_key": "flow", "out_key": "flow",
            "df_default": "true"})]
    if isinstance(op, RemovePort):
        return [sysovs.DelPort(op.name, op.bridge)]
    if isinstance(op, SetPortTag):
        out: list[sysovs.Op] = []
        clear = [c for c, v in (("tag", op.tag), ("vlan_mode", op.vlan_mode), ("trunks", op.trunks or None))
                 if v is None]
        if clear:
            out.append(sysovs.ClearColumns("Port", op.name, tuple(clear)))
        cols = {k: v for k, v in (("tag", op.tag), ("vlan_mode", op.vlan_mode),
                                  ("trunks", tuple(op.trunks) or None)) if v is not None}
        if cols:
            out.append(sysovs.SetPort(op.name, **cols))
        return out
    if isinstance(op, SetPortOtherConfig):
        return [sysovs.SetPort(op.name, other_config=dict(op.other_config))]
    raise TypeError(f"unknown op {op!r}")


def observed_state(state: sysovs.OvsState, flows: dict[str, list[Flow]],
                   specs: Mapping[str, Iterable[FlowSpec]] | None = None) -> ObservedState:
    """The planner's view of OVSDB + flows; ``specs``: the flows already as FlowSpecs (a cache)."""
    bridges = {}
    for name, br in state.bridges.items():
        ports = []
        for p in state.ports_on(name):
            iface = p.iface
            ofport = iface.ofport if iface and iface.ofport and iface.ofport > 0 else None
            ext = iface.external_ids if iface else {}
            ports.append(ObservedPort(name=p.name, ofport=ofport, iface_id=ext.get("iface-id"),
                                      attached_mac=ext.get("attached-mac"), tag=p.tag,
                                      other_config=dict(p.other_config), type=iface.type if iface else "",
                                      options=dict(iface.options) if iface else {}, vlan_mode=p.vlan_mode,
                                      trunks=tuple(p.trunks)))
        bridges[name] = ObservedBridge(name=name, datapath_type=br.datapath_type or "system",
                                       fail_mode=br.fail_mode, protocols=tuple(br.protocols), ports=tuple(ports))
    if specs is None:
        specs = {b: [FlowSpec(b, f.table, f.priority, f.match, f.actions) for f in fl]
                 for b, fl in flows.items()}
    return ObservedState(bridges=bridges, flows={b: frozenset(specs[b]) for b in flows})


class OvsDriver:
    agent_type = derive.OVS_AGENT_TYPE
    binary = "neutrino-openvswitch-agent"
    topic = "N/A"
    feed_types = ("network", "port", "agent", "security_group_rule")

    def __init__(self, cfg: AgentConfig, ovs: sysovs.Ovs, cookie: int | None = None,
                 firewall_driver: str = "openvswitch") -> None:
        self.cfg = cfg
        #: "openvswitch": security groups enforced with conntrack; "noop": only
        #: MAC/IP/ARP anti-spoofing (tables 24/25).
        self.firewall_driver = firewall_driver
        self.conj_ids = ConjIds()
        self.ovs = ovs
        self.of = OpenFlow(ovs)
        self.cookie = cookie if cookie is not None else random.getrandbits(63) | 1
        self.local_vlans: dict[str, int] | None = None
        self.ticks = 0
        self.statuses: dict[str, str] = {}
        self.devices = 0
        self.warnings: list[str] = []
        self._seen_ports: frozenset[str] = frozenset()
        # Memos of pure conversions, per bridge, holding only what the last pass saw:
        # dump-flows line -> (Flow, FlowSpec), planned FlowSpec -> Flow (with this
        # run's cookie).  Parsing and canonicalising ~14 flows per port dominated a
        # pass otherwise (bench/l2_bench.py).
        self._parsed: dict[str, dict[str, list[tuple[Flow, FlowSpec]]]] = {}
        self._wanted: dict[str, dict[FlowSpec, Flow]] = {}

    def configurations(self) -> dict[str, Any]:
        c = self.cfg
        return {"bridge_mappings": dict(c.bridge_mappings), "integration_bridge": c.integration_bridge,
                "tunnel_types": list(c.tunnel_types), "tunneling_ip": c.local_ip or "",
                "l2_population": c.l2_population, "arp_responder_enabled": c.arp_responder,
                "enable_distributed_routing": False, "devices": self.devices,
                "datapath_type": c.datapath_type, "ovs_hybrid_plug": False,
                "firewall_driver": self.firewall_driver,
                # Problems the last pass found (unknown physnet, VLANs exhausted, ...),
                # visible in `openstack network agent show` instead of only in a log.
                "errors": list(self.warnings)}

    def _managed_bridges(self) -> list[str]:
        brs = [self.cfg.integration_bridge, *self.cfg.bridge_mappings.values()]
        if self.cfg.tunnel_types and self.cfg.local_ip:
            brs.append(self.cfg.tunnel_bridge)
        return list(dict.fromkeys(brs))

    def _canary_present(self) -> bool:
        try:
            return bool(self.of.dump(self.cfg.integration_bridge, table=CANARY_TABLE))
        except Exception:  # noqa: BLE001 - a missing bridge or dead vswitchd means "resync"
            return False

    def _ports_unchanged(self) -> bool:
        """Cheap check between full passes: are br-int's ports the ones the last pass saw?

        A VIF plugged by the compute agent (or unplugged) is a host event, not a
        feed event: without this, it would wait for the next periodic full pass.
        """
        try:
            ports = frozenset(self.ovs.vsctl("list-ports", self.cfg.integration_bridge).split())
        except Exception:  # noqa: BLE001 - unreachable OVS means "full pass"
            return False
        same = ports == self._seen_ports
        self._seen_ports = ports
        return same

    def reconcile_sync(self, state: State, changed: bool) -> dict[str, str]:
        self.ticks += 1
        if (not changed and self.local_vlans is not None and self.ticks % FULL_EVERY
                and self._ports_unchanged() and self._canary_present()):
            return self.statuses
        firewall_on = self.firewall_driver == "openvswitch"
        desired = derive.desired_host(self.cfg, state.of("port"), state.of("network"), state.of("agent"),
                                      state.of("security_group_rule") if firewall_on else None)
        firewall = (OvsFirewall(desired.security_groups, desired.group_members, self.conj_ids)
                    if firewall_on else None)
        if self.local_vlans is None:
            # Physical bridges named in bridge_mappings are created when missing.
            self.ovs.transact([sysovs.AddBridge(b, datapath_type=self.cfg.datapath_type)
                               for b in self.cfg.bridge_mappings.values()])
        # A fresh host converges in a few passes: OVS assigns ofports only after a
        # port exists, and flows naming them come in the next pass.
        for _ in range(MAX_PASSES):
            sys_state = self.ovs.observe()
            dumps = {b: self._dump(b) for b in self._managed_bridges() if b in sys_state.bridges}
            flows = {b: [f for f, _ in d] for b, d in dumps.items()}
            observed = observed_state(sys_state, flows, {b: [s for _, s in d] for b, d in dumps.items()})
            if self.local_vlans is None:
                self.local_vlans = local_vlans_from_observed(observed, self.cfg.integration_bridge)
            p = plan(self.cfg, desired, observed, self.local_vlans, firewall)
            self.local_vlans = dict(p.local_vlans)
            ops = [s for op in p.ovsdb_ops for s in to_system_op(op)]
            if ops:
                self.ovs.transact(ops)
            self._apply_flows(p.flows, flows)
            if not ops:
                # The bundle made the flows exactly the plan; only new OVSDB rows
                # (ofports to learn) need another look.
                break
        for w in p.warnings:
            if w not in self.warnings:
                LOG.warning("%s", w)
        self.warnings = list(p.warnings)
        self._seen_ports = frozenset(p_.name for p_ in sys_state.ports_on(self.cfg.integration_bridge))
        self.local_vlans = dict(p.local_vlans)
        self.statuses = dict(p.port_status)
        self.devices = len(desired.ports)
        return self.statuses

    def _dump(self, bridge: str) -> list[tuple[Flow, FlowSpec]]:
        """``self.of.dump(bridge)`` (with each flow's FlowSpec), parsing only the lines
        the previous dump of the bridge did not have."""
        text = self.ovs.run(self.of.ofctl_argv("dump-flows", bridge)).stdout
        seen = self._parsed.get(bridge, {})
        now: dict[str, list[tuple[Flow, FlowSpec]]] = {}
        out: list[tuple[Flow, FlowSpec]] = []
        for line in text.splitlines():
            parsed = now.get(line)
            if parsed is None:
                parsed = seen.get(line)
                if parsed is None:
                    parsed = [(f, FlowSpec(bridge, f.table, f.priority, f.match, f.actions))
                              for f in parse_dump(line)]
                now[line] = parsed
            out += parsed
        self._parsed[bridge] = now
        return out

    def _desired_flows(self, bridge: str, specs: frozenset[FlowSpec]) -> list[Flow]:
        """The planned flows of ``bridge`` as ``Flow`` values carrying this run's cookie."""
        seen = self._wanted.get(bridge, {})
        now: dict[FlowSpec, Flow] = {}
        for s in specs:
            f = seen.get(s)
            if f is None or f.cookie != self.cookie:
                f = Flow(s.table, s.priority, s.match, s.actions, cookie=self.cookie)
            now[s] = f
        self._wanted[bridge] = now
        return list(now.values())

    def _apply_flows(self, planned: dict[str, frozenset[FlowSpec]], observed: dict[str, list[Flow]]) -> int:
        """Make each bridge's flows the planned set, in one bundle per bridge.

        Flows of an earlier run (other cookies) are replaced in place or
        deleted in the same bundle; flows learned by table 10 are left alone.
        """
        changes = 0
        for bridge, specs in planned.items():
            want = self._desired_flows(bridge, specs)
            have = [f for f in observed.get(bridge, []) if f.cookie != LEARNED_FLOW_COOKIE]
            add, delete = diff(want, have)
            if add or delete:
                self.of.apply(bridge, add=add, delete=delete)
                changes += len(add) + len(delete)
        return changes

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        return await asyncio.to_thread(self.reconcile_sync, state, changed)


def firewall_driver(cfg: Config) -> str:
    """``[securitygroup] firewall_driver`` (``noop`` also when security groups are disabled)."""
    sg = cfg.securitygroup
    return sg.firewall_driver if sg.enable_security_group else "noop"


def make_driver(cfg: Config, host: str) -> OvsDriver:
    return OvsDriver(agent_config(cfg, host), host_ovs(cfg), firewall_driver=firewall_driver(cfg))
