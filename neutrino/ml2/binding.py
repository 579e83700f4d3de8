"""Port binding (the openvswitch mechanism driver's job).

A port with ``binding:host_id`` is bound when a live Open vSwitch agent on
that host can serve the network's segment: flat/VLAN need the physnet in the
agent's ``bridge_mappings``, tunnels need the type in its ``tunnel_types``,
local networks always bind.  Otherwise the port is ``binding_failed``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from neutrino.db import tables as t

OVS_AGENT_TYPE = "Open vSwitch agent"
UNBOUND, FAILED, OVS = "unbound", "binding_failed", "ovs"


def vif_details(datapath_type: str = "system", bridge_name: str = "br-int") -> dict[str, Any]:
    return {
        "connectivity": "l2",
        "port_filter": True,
        "ovs_hybrid_plug": False,
        "ovs_create_tap": True,
        "datapath_type": datapath_type,
        "bridge_name": bridge_name,
        "bound_drivers": {"0": "openvswitch"},
    }


def agent_serves(configurations: dict[str, Any], network_type: str, physnet: str | None) -> bool:
    """Pure: can an OVS agent with these configurations wire this segment?"""
    if network_type == "local":
        return True
    if network_type in ("flat", "vlan"):
        return physnet is not None and physnet in (configurations.get("bridge_mappings") or {})
    return network_type in (configurations.get("tunnel_types") or [])


def bind(
    conn: Connection, host: str, segment: Any, agent_down_time: int, now: float | None = None
) -> tuple[str, dict[str, Any]]:
    """Return (vif_type, vif_details) for a port on ``host`` and ``segment`` (a row or None)."""
    if not host:
        return UNBOUND, {}
    if segment is None:
        return FAILED, {}
    now = time.time() if now is None else now
    rows = conn.execute(
        select(t.agents).where(and_(t.agents.c.host == host, t.agents.c.agent_type == OVS_AGENT_TYPE))
    ).all()
    for a in rows:
        if not a.admin_state_up or now - a.heartbeat_at > agent_down_time:
            continue
        conf = a.configurations or {}
        if agent_serves(conf, segment.network_type, segment.physical_network):
            return OVS, vif_details(conf.get("datapath_type", "system"), conf.get("integration_bridge", "br-int"))
    return FAILED, {}
