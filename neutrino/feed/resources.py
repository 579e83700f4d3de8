"""Names of the resource types the change feed carries (shared by server and agents).

A feed *resource type* is the singular name services pass to
``UnitOfWork.changed`` (``"network"``, ``"security_group_rule"``, …).  The
snapshot groups objects under the plural key (``"networks"``).  Pure
constants: agents import this module without pulling in the server.
"""

from __future__ import annotations

#: Feed resource type -> key of its list in a snapshot's ``resources``.
PLURAL: dict[str, str] = {
    "network": "networks",
    "subnet": "subnets",
    "port": "ports",
    "router": "routers",
    "floatingip": "floatingips",
    "security_group": "security_groups",
    "security_group_rule": "security_group_rules",
    "trunk": "trunks",
    "subnetpool": "subnetpools",
    "address_scope": "address_scopes",
    "agent": "agents",
    "server": "servers",
    # DHCP agents serving a network: {"id"/"network_id": net, "agent_ids": [...], "hosts": [...]}
    # (neutrino.services.dhcp_scheduler).
    "dhcp_binding": "dhcp_bindings",
    # The L3 agent hosting a router: {"id"/"router_id": router, "agent_ids": [...], "hosts": [...]}
    # (neutrino.services.l3_scheduler).
    "l3_binding": "l3_bindings",
}
SINGULAR: dict[str, str] = {v: k for k, v in PLURAL.items()}

#: Fields that are refreshed without a feed entry (agent heartbeats), so a
#: state built from changes may hold older values than a fresh snapshot.
VOLATILE_FIELDS: dict[str, frozenset[str]] = {
    "agent": frozenset({"heartbeat_timestamp", "alive"}),
}

__all__ = ["PLURAL", "SINGULAR", "VOLATILE_FIELDS"]
