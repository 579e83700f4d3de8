"""SQL schema (SQLAlchemy Core).  Alembic migrations are generated from it.

Uniqueness rules that must hold across several server processes are
constraints here, not checks in Python: one MAC per network
(``ports``), one address per subnet (``ip_allocations``), one segment id per
type/physnet (``segment_allocations``), one default security group per
project.  Services pre-check for friendly errors and rely on these for races.

Timestamps are stored as ISO-8601 text (``2026-11-27T14:21:06Z``), the exact
form the API returns, so they sort and compare as strings.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

UUID = String(36)


def _std(with_name: bool = True) -> list[Column[Any]]:
    """Columns of Neutron's 'standard attributes'."""
    cols: list[Column[Any]] = [
        Column("id", UUID, primary_key=True),
        Column("project_id", String(255), nullable=False, default="", index=True),
        Column("description", String(255), nullable=False, default=""),
        Column("created_at", String(20), nullable=False),
        Column("updated_at", String(20), nullable=False),
        Column("revision_number", BigInteger, nullable=False, default=0),
    ]
    if with_name:
        cols.insert(2, Column("name", String(255), nullable=False, default="", index=True))
    return cols


# --- identity -------------------------------------------------------------------
projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("domain_id", String(64), nullable=False, default="default"),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    UniqueConstraint("domain_id", "name"),
)
users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("domain_id", String(64), nullable=False, default="default"),
    Column("password_hash", String(255), nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("default_project_id", String(64), nullable=True),
    Column("email", String(255), nullable=True),
    Column("description", Text, nullable=False, default=""),
    UniqueConstraint("domain_id", "name"),
)
roles = Table(
    "roles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
)
role_assignments = Table(
    "role_assignments",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("role_id", String(64), ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("user_id", "project_id", "role_id"),
)
revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("audit_id", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=False, index=True),
)
#: Failed password logins (neutrino.identity.throttle), shared by every API process.
#: ``subject``: the user id, or ``?`` + a digest of the name asked for when there is no such
#: user; ``source``: the client address (throttling), or "" for the user's consecutive
#: failures from anywhere (Keystone's lockout).  ``last_failure``: epoch seconds.
login_failures = Table(
    "login_failures",
    metadata,
    Column("subject", String(64), nullable=False),
    Column("source", String(64), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_failure", Float, nullable=False, index=True),
    PrimaryKeyConstraint("subject", "source"),
)

# --- L2 -----------------------------------------------------------------------------
networks = Table(
    "networks",
    metadata,
    *_std(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("shared", Boolean, nullable=False, default=False),
    Column("external", Boolean, nullable=False, default=False),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("mtu", Integer, nullable=False),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("dns_domain", String(255), nullable=False, default=""),
    Column("availability_zone_hints", JSON, nullable=False, default=list),
)
network_segments = Table(
    "network_segments",
    metadata,
    Column("id", UUID, primary_key=True),
    Column("network_id", UUID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("network_type", String(32), nullable=False),
    Column("physical_network", String(64), nullable=True),
    Column("segmentation_id", Integer, nullable=True),
    Column("segment_index", Integer, nullable=False, default=0),
)
segment_allocations = Table(
    "segment_allocations",
    metadata,
    # One row per allocated (type, physnet, id); flat networks use id 0.
    Column("network_type", String(32), nullable=False),
    Column("physical_network", String(64), nullable=False, default=""),
    Column("segmentation_id", BigInteger, nullable=False),
    Column("network_id", UUID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("network_type", "physical_network", "segmentation_id"),
)

subnets = Table(
    "subnets",
    metadata,
    *_std(),
    Column("network_id", UUID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("ip_version", Integer, nullable=False),
    Column("cidr", String(64), nullable=False),
    Column("gateway_ip", String(64), nullable=True),
    Column("enable_dhcp", Boolean, nullable=False, default=True),
    Column("ipv6_ra_mode", String(32), nullable=True),
    Column("ipv6_address_mode", String(32), nullable=True),
    Column("allocation_pools", JSON, nullable=False),
    Column("dns_nameservers", JSON, nullable=False),
    Column("host_routes", JSON, nullable=False),
    Column("service_types", JSON, nullable=False),
    Column("subnetpool_id", UUID, nullable=True),
    Column("segment_id", UUID, nullable=True),
)

ports = Table(
    "ports",
    metadata,
    *_std(),
    Column("network_id", UUID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("mac_address", String(32), nullable=False),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("device_id", String(255), nullable=False, default="", index=True),
    Column("device_owner", String(255), nullable=False, default=""),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("allowed_address_pairs", JSON, nullable=False),
    Column("extra_dhcp_opts", JSON, nullable=False),
    Column("dns_name", String(255), nullable=False, default=""),
    Column("binding_host_id", String(255), nullable=False, default="", index=True),
    Column("binding_profile", JSON, nullable=False),
    Column("binding_vnic_type", String(64), nullable=False, default="normal"),
    Column("binding_vif_type", String(64), nullable=False, default="unbound"),
    Column("binding_vif_details", JSON, nullable=False),
    UniqueConstraint("network_id", "mac_address"),
    Index("ix_ports_network_owner", "network_id", "device_owner"),
)
ip_allocations = Table(
    "ip_allocations",
    metadata,
    Column("subnet_id", UUID, ForeignKey("subnets.id", ondelete="CASCADE"), nullable=False),
    Column("ip_address", String(64), nullable=False),
    Column("port_id", UUID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("network_id", UUID, nullable=False, index=True),
    # Order of the address within the port's fixed_ips list.
    Column("position", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("subnet_id", "ip_address"),
)
port_security_groups = Table(
    "port_security_groups",
    metadata,
    Column("port_id", UUID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("security_group_id", UUID, ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=False, index=True),
    PrimaryKeyConstraint("port_id", "security_group_id"),
)

# --- subnet pools and address scopes (neutrino.services.subnetpools) -------------------------
address_scopes = Table(
    "address_scopes",
    metadata,
    *_std(),
    Column("ip_version", Integer, nullable=False),
    Column("shared", Boolean, nullable=False, default=False),
)
subnetpools = Table(
    "subnetpools",
    metadata,
    *_std(),
    Column("ip_version", Integer, nullable=False),
    # Compacted CIDRs (no two overlap or merge), sorted by address.
    Column("prefixes", JSON, nullable=False),
    Column("default_prefixlen", Integer, nullable=False),
    Column("min_prefixlen", Integer, nullable=False),
    Column("max_prefixlen", Integer, nullable=False),
    Column("default_quota", Integer, nullable=True),
    Column("shared", Boolean, nullable=False, default=False),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("address_scope_id", UUID, nullable=True, index=True),
)

# --- L3 --------------------------------------------------------------------------------
routers = Table(
    "routers",
    metadata,
    *_std(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("gw_network_id", UUID, nullable=True),
    Column("gw_port_id", UUID, nullable=True),
    Column("enable_snat", Boolean, nullable=False, default=True),
    Column("routes", JSON, nullable=False),
    Column("distributed", Boolean, nullable=False, default=False),
    Column("ha", Boolean, nullable=False, default=False),
    Column("flavor_id", UUID, nullable=True),
    Column("availability_zone_hints", JSON, nullable=False),
)
floatingips = Table(
    "floatingips",
    metadata,
    *_std(with_name=False),
    Column("floating_network_id", UUID, ForeignKey("networks.id"), nullable=False),
    Column("floating_ip_address", String(64), nullable=False),
    Column("floating_port_id", UUID, nullable=False),
    Column("fixed_port_id", UUID, nullable=True, index=True),
    Column("fixed_ip_address", String(64), nullable=True),
    Column("router_id", UUID, nullable=True, index=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("dns_name", String(255), nullable=False, default=""),
    Column("dns_domain", String(255), nullable=False, default=""),
)
port_forwardings = Table(
    "port_forwardings",
    metadata,
    Column("id", UUID, primary_key=True),
    Column("floatingip_id", UUID, ForeignKey("floatingips.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("protocol", String(8), nullable=False),
    Column("internal_port_id", UUID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("internal_ip_address", String(64), nullable=False),
    Column("internal_port_start", Integer, nullable=False),
    Column("internal_port_end", Integer, nullable=False),
    Column("external_port_start", Integer, nullable=False),
    Column("external_port_end", Integer, nullable=False),
    Column("description", String(255), nullable=False, default=""),
    UniqueConstraint("floatingip_id", "protocol", "external_port_start"),
)

# --- trunks (neutrino.services.trunks) ----------------------------------------------------------
#: One trunk per parent port; a port is the subport of at most one trunk, and a
#: (segmentation type, id) names at most one subport of a trunk.
trunks = Table(
    "trunks",
    metadata,
    *_std(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("port_id", UUID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, unique=True),
)
subports = Table(
    "subports",
    metadata,
    Column("port_id", UUID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("trunk_id", UUID, ForeignKey("trunks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("segmentation_type", String(32), nullable=False),
    Column("segmentation_id", Integer, nullable=False),
    UniqueConstraint("trunk_id", "segmentation_type", "segmentation_id"),
)

# --- security groups -------------------------------------------------------------------
security_groups = Table(
    "security_groups",
    metadata,
    *_std(),
    Column("stateful", Boolean, nullable=False, default=True),
)
default_security_groups = Table(
    "default_security_groups",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("security_group_id", UUID, ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=False),
)
security_group_rules = Table(
    "security_group_rules",
    metadata,
    *_std(with_name=False),
    Column("security_group_id", UUID, ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("direction", String(8), nullable=False),
    Column("ethertype", String(8), nullable=False),
    Column("protocol", String(40), nullable=True),
    Column("port_range_min", Integer, nullable=True),
    Column("port_range_max", Integer, nullable=True),
    Column("remote_ip_prefix", String(64), nullable=True),
    Column("remote_group_id", UUID, ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=True),
)

# --- RBAC policies (neutrino.services.rbac) -------------------------------------------------------
#: One row per (object, action, target project); ``target_project`` is a project id or ``*``.
#: The unique key also serves the lookups by object; ``ix_rbac_policies_target`` serves the
#: visibility subqueries ("objects of this type shared with project P or with everyone").
rbac_policies = Table(
    "rbac_policies",
    metadata,
    Column("id", UUID, primary_key=True),
    Column("project_id", String(255), nullable=False, index=True),
    Column("object_type", String(32), nullable=False),
    Column("object_id", UUID, nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_project", String(255), nullable=False),
    UniqueConstraint("object_type", "object_id", "action", "target_project"),
    Index("ix_rbac_policies_target", "target_project", "object_type", "action", "object_id"),
)

# --- cross-cutting ----------------------------------------------------------------------------
tags = Table(
    "tags",
    metadata,
    Column("resource_id", UUID, nullable=False),
    Column("tag", String(255), nullable=False),
    Column("resource_type", String(32), nullable=False),
    PrimaryKeyConstraint("resource_id", "tag"),
)
quotas = Table(
    "quotas",
    metadata,
    Column("project_id", String(255), nullable=False),
    Column("resource", String(64), nullable=False),
    Column("limit", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "resource"),
)
agents = Table(
    "agents",
    metadata,
    Column("id", UUID, primary_key=True),
    Column("agent_type", String(255), nullable=False),
    Column("binary", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("created_at", String(32), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("heartbeat_at", Integer, nullable=False),
    Column("heartbeat_timestamp", String(32), nullable=False),
    Column("description", String(255), nullable=True),
    Column("availability_zone", String(255), nullable=True),
    Column("configurations", JSON, nullable=False),
    Column("resources_synced", Boolean, nullable=True),
    UniqueConstraint("agent_type", "host"),
)
network_dhcp_agents = Table(
    "network_dhcp_agents",
    metadata,
    Column("network_id", UUID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("agent_id", UUID, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    PrimaryKeyConstraint("network_id", "agent_id"),
)
router_l3_agents = Table(
    "router_l3_agents",
    metadata,
    Column("router_id", UUID, ForeignKey("routers.id", ondelete="CASCADE"), nullable=False),
    Column("agent_id", UUID, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    PrimaryKeyConstraint("router_id", "agent_id"),
)
#: Networks / routers an admin took off an agent by hand (migration 0008): automatic scheduling
#: leaves them alone until an admin schedules them again (dhcp_scheduler / l3_scheduler).
dhcp_unscheduled_networks = Table(
    "dhcp_unscheduled_networks",
    metadata,
    Column("network_id", UUID, ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
)
l3_unscheduled_routers = Table(
    "l3_unscheduled_routers",
    metadata,
    Column("router_id", UUID, ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True),
)
#: The ports a router owns (its gateway and its interfaces), written by the router service
#: only.  A port's ``device_id``/``device_owner`` are what the port's owner says; this table
#: is what the router says, and everything that decides what a router connects reads it.
router_ports = Table(
    "router_ports",
    metadata,
    Column("router_id", UUID, ForeignKey("routers.id", ondelete="CASCADE"), nullable=False),
    Column("port_id", UUID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("port_type", String(255), nullable=False),
    PrimaryKeyConstraint("router_id", "port_id"),
)

# --- change feed --------------------------------------------------------------------------------
changes = Table(
    "changes",
    metadata,
    # Monotonic; commit order equals revision order (see neutrino.feed.log).
    Column("revision", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("resource", String(32), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("action", String(8), nullable=False),
    Column("project_id", String(255), nullable=False, default=""),
    Column("body", JSON, nullable=True),
    Column("created_at", String(20), nullable=False),
)

# --- compute (the Nova/Glance subset, neutrino.compute) ------------------------------------------
flavors = Table(
    "flavors",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("vcpus", Integer, nullable=False),
    Column("ram", Integer, nullable=False),  # MiB
    Column("disk", Integer, nullable=False),  # GiB
    Column("ephemeral", Integer, nullable=False, default=0),
    Column("swap", Integer, nullable=False, default=0),  # MiB
    Column("rxtx_factor", Float, nullable=False, default=1.0),
    Column("is_public", Boolean, nullable=False, default=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("description", Text, nullable=True),
    Column("extra_specs", JSON, nullable=False),
    Column("created_at", String(20), nullable=False),
)
keypairs = Table(
    "keypairs",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(16), nullable=False, default="ssh"),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(255), nullable=False),
    Column("created_at", String(20), nullable=False),
    PrimaryKeyConstraint("user_id", "name"),
)
servers = Table(
    "servers",
    metadata,
    Column("id", UUID, primary_key=True),
    Column("project_id", String(255), nullable=False, index=True),
    Column("user_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("status", String(16), nullable=False),  # BUILD, ACTIVE, ERROR, SHUTOFF
    Column("vm_state", String(16), nullable=False),
    Column("task_state", String(32), nullable=True),
    Column("power_state", Integer, nullable=False, default=0),
    Column("host", String(255), nullable=True, index=True),
    Column("availability_zone", String(255), nullable=True),
    Column("image_id", String(64), nullable=False),
    Column("flavor_id", String(255), nullable=False),
    Column("flavor", JSON, nullable=False),  # the flavor as it was at create time
    Column("key_name", String(255), nullable=True),
    Column("key_data", Text, nullable=True),  # the key pair's public key
    Column("user_data", Text, nullable=True),  # base64, as given
    Column("meta", JSON, nullable=False),  # the server's metadata (key -> value)
    Column("nics", JSON, nullable=False),  # [{port_id, network_id, created}] in request order
    Column("security_groups", JSON, nullable=False),  # requested group names/ids
    Column("tags", JSON, nullable=False),
    Column("config_drive", Boolean, nullable=False, default=False),
    Column("access_ipv4", String(64), nullable=False, default=""),
    Column("access_ipv6", String(64), nullable=False, default=""),
    Column("hostname", String(255), nullable=False, default=""),
    Column("fault", JSON, nullable=True),
    Column("launched_at", String(32), nullable=True),
    Column("created_at", String(20), nullable=False),
    Column("updated_at", String(20), nullable=False),
    Column("revision_number", BigInteger, nullable=False, default=0),
    # The password an instance POSTs to the metadata API (once; Nova keeps it in system_metadata).
    Column("admin_password", Text, nullable=True),
)
