"""OVS L2 agent: pure model (``model``), desired state from the feed (``derive``), flow builders
(``flows``, ``firewall``, table ids in ``tables``) and planner (``planner``), exported here; the
executor (``agent``) applies a plan through the ``Ovs`` it is given, with the planner's values as
OVSDB values (``ovsdb_model``, pure) and one bundle per bridge (``bundle``: the flow diff, pure).
``host_config`` says where this host's OVS lives and how the agent is configured."""

from neutrino.agents.ovs.model import (
    AgentConfig,
    DesiredHost,
    DesiredNetwork,
    DesiredPort,
    EnsureBridge,
    EnsurePatch,
    EnsureTunnelPort,
    FdbEntry,
    FlowSpec,
    ObservedBridge,
    ObservedPort,
    ObservedState,
    OvsdbOp,
    Plan,
    RemovePort,
    SetPortOtherConfig,
    SetPortTag,
    TunnelPeer,
    WiredPort,
)
from neutrino.agents.ovs.planner import (
    FirewallFlowProvider,
    local_vlans_from_observed,
    patch_port_names,
    plan,
    tunnel_port_name,
)

__all__ = [
    "AgentConfig",
    "DesiredHost",
    "DesiredNetwork",
    "DesiredPort",
    "EnsureBridge",
    "EnsurePatch",
    "EnsureTunnelPort",
    "FdbEntry",
    "FirewallFlowProvider",
    "FlowSpec",
    "ObservedBridge",
    "ObservedPort",
    "ObservedState",
    "OvsdbOp",
    "Plan",
    "RemovePort",
    "SetPortOtherConfig",
    "SetPortTag",
    "TunnelPeer",
    "WiredPort",
    "local_vlans_from_observed",
    "patch_port_names",
    "plan",
    "tunnel_port_name",
]
