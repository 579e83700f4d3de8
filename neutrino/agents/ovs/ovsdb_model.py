"""The OVS planner's model and the system adapters' OVSDB values, both ways (pure).

``to_system_op`` turns one planned ``OvsdbOp`` into ``neutrino.system.ovsdb`` ops (one
transaction takes a pass's ops); ``observed_port`` and ``observed_state`` turn OVSDB rows
(and the flows read or remembered) into the ``ObservedState`` the planner reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from neutrino.agents.ovs.model import (
    EnsureBridge,
    EnsurePatch,
    EnsureTrunkPatch,
    EnsureTunnelPort,
    FlowSpec,
    ObservedBridge,
    ObservedPort,
    ObservedState,
    OvsdbOp,
    RemovePort,
    SetPortOtherConfig,
    SetPortTag,
)
from neutrino.system import ovsdb as sysovs


def to_system_op(op: OvsdbOp) -> list[sysovs.Op]:
    if isinstance(op, EnsureBridge):
        return [
            sysovs.AddBridge(op.name, datapath_type=op.datapath_type, fail_mode=op.fail_mode, protocols=op.protocols)
        ]
    if isinstance(op, EnsurePatch):
        return [sysovs.AddPort(op.bridge, op.name, type="patch", options={"peer": op.peer})]
    if isinstance(op, EnsureTrunkPatch):
        return [
            sysovs.AddPort(
                op.bridge,
                op.name,
                type="patch",
                options={"peer": op.peer},
                external_ids=dict(op.external_ids),
                tag=op.tag,
                vlan_mode=op.vlan_mode,
                trunks=tuple(op.trunks) or None,
            )
        ]
    if isinstance(op, EnsureTunnelPort):
        return [
            sysovs.AddPort(
                op.bridge,
                op.name,
                type=op.type,
                options={
                    "remote_ip": op.remote_ip,
                    "local_ip": op.local_ip,
                    "in_key": "flow",
                    "out_key": "flow",
                    "df_default": "true",
                },
            )
        ]
    if isinstance(op, RemovePort):
        return [sysovs.DelPort(op.name, op.bridge)]
    if isinstance(op, SetPortTag):
        out: list[sysovs.Op] = []
        clear = [
            c for c, v in (("tag", op.tag), ("vlan_mode", op.vlan_mode), ("trunks", op.trunks or None)) if v is None
        ]
        if clear:
            out.append(sysovs.ClearColumns("Port", op.name, tuple(clear)))
        cols = {
            k: v
            for k, v in (("tag", op.tag), ("vlan_mode", op.vlan_mode), ("trunks", tuple(op.trunks) or None))
            if v is not None
        }
        if cols:
            out.append(sysovs.SetPort(op.name, **cols))
        return out
    if isinstance(op, SetPortOtherConfig):
        return [sysovs.SetPort(op.name, other_config=dict(op.other_config))]
    raise TypeError(f"unknown op {op!r}")


def observed_port(p: sysovs.Port) -> ObservedPort:
    """The planner's view of one OVSDB port (+ its interface)."""
    iface = p.iface
    ofport = iface.ofport if iface and iface.ofport and iface.ofport > 0 else None
    ext = iface.external_ids if iface else {}
    return ObservedPort(
        name=p.name,
        ofport=ofport,
        iface_id=ext.get("iface-id"),
        attached_mac=ext.get("attached-mac"),
        tag=p.tag,
        other_config=dict(p.other_config),
        type=iface.type if iface else "",
        options=dict(iface.options) if iface else {},
        vlan_mode=p.vlan_mode,
        trunks=tuple(p.trunks),
    )


def observed_state(
    state: sysovs.OvsState,
    flows: Mapping[str, frozenset[FlowSpec]],
    memo: dict[str, tuple[sysovs.Port, ObservedPort]] | None = None,
) -> ObservedState:
    """The planner's view of OVSDB + flows.

    ``memo`` (port name -> (Port, ObservedPort)) is reused across calls: a
    ``Port`` value the monitor hands out again unchanged (same object) is not
    converted again.
    """
    memo = {} if memo is None else memo
    bridges = {}
    for name, br in state.bridges.items():
        ports = []
        for p in state.ports_on(name):
            hit = memo.get(p.name)
            if hit is None or hit[0] is not p:
                hit = memo[p.name] = (p, observed_port(p))
            ports.append(hit[1])
        bridges[name] = ObservedBridge(
            name=name,
            datapath_type=br.datapath_type or "system",
            fail_mode=br.fail_mode,
            protocols=tuple(br.protocols),
            ports=tuple(ports),
        )
    for gone in [n for n in memo if n not in state.ports]:
        del memo[gone]
    return ObservedState(bridges=bridges, flows=dict(flows))


__all__ = ["observed_port", "observed_state", "to_system_op"]
