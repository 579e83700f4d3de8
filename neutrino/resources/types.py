"""The typed values of the resource services (generated: do not edit).

Written by ``python -m neutrino.resources.gen_types`` from the attribute maps in
``neutrino.resources.definitions``; ``tests/unit/test_resource_types.py`` fails when
this file is stale, and ``tests/api/test_resource_types.py`` checks that the services
return exactly these keys.  ``<Name>`` is what a service returns (Neutron's view, before
the edge applies read policy and ``fields=``); ``<Name>Create`` a POST body with its
defaults filled in; ``<Name>Update`` a PUT body (only the keys given).  No ``from __future__
import annotations``: ``NotRequired`` must be seen at run time (``__optional_keys__``).
"""

from typing import Any, NotRequired, TypedDict


# --- nested values of request bodies ---
class FixedIpBody(TypedDict):
    subnet_id: NotRequired[str]
    ip_address: NotRequired[str]


class AllocationPool(TypedDict):
    start: str
    end: str


class HostRoute(TypedDict):
    destination: str
    nexthop: str


class AddressPairBody(TypedDict):
    ip_address: str
    mac_address: NotRequired[str]


class DhcpOptionBody(TypedDict):
    opt_name: str
    opt_value: str | None
    ip_version: NotRequired[int]


class ExternalGatewayBody(TypedDict):
    network_id: str
    enable_snat: NotRequired[bool]
    external_fixed_ips: NotRequired[list[FixedIpBody]]


# --- nested values of views ---
class FixedIp(TypedDict):
    subnet_id: str
    ip_address: str


class AddressPair(TypedDict):
    ip_address: str
    mac_address: str


class DhcpOption(TypedDict):
    opt_name: str
    opt_value: str
    ip_version: int


class DnsAssignment(TypedDict):
    ip_address: str
    hostname: str
    fqdn: str


Segment = TypedDict(
    "Segment",
    {
        "provider:network_type": str | None,
        "provider:physical_network": str | None,
        "provider:segmentation_id": int | None,
    },
)


class SubPort(TypedDict):
    segmentation_id: int
    segmentation_type: str
    port_id: str


class TrunkSubPort(TypedDict):
    segmentation_id: int
    segmentation_type: str
    port_id: str
    mac_address: str | None


class TrunkDetails(TypedDict):
    trunk_id: str
    sub_ports: list[TrunkSubPort]


class ExternalGatewayInfo(TypedDict):
    network_id: str
    external_fixed_ips: list[FixedIp]
    enable_snat: bool


class PortDetails(TypedDict):
    name: str
    network_id: str
    mac_address: str
    admin_state_up: bool
    status: str
    device_id: str
    device_owner: str


class PortForwardingSummary(TypedDict):
    id: str
    protocol: str
    internal_ip_address: str
    internal_port_id: str
    internal_port: NotRequired[int]
    external_port: NotRequired[int]


# --- network ---
Network = TypedDict(
    "Network",
    {
        "id": str,
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "created_at": str,
        "updated_at": str,
        "revision_number": int,
        "tags": list[str],
        "admin_state_up": bool,
        "status": str,
        "subnets": list[str],
        "shared": bool,
        "mtu": int,
        "port_security_enabled": bool,
        "dns_domain": str,
        "router:external": bool,
        "provider:network_type": str | None,
        "provider:physical_network": str | None,
        "provider:segmentation_id": int | None,
        "segments": NotRequired[list[Segment]],
        "is_default": bool,
        "availability_zone_hints": list[str],
        "availability_zones": list[str],
        "ipv4_address_scope": str | None,
        "ipv6_address_scope": str | None,
        "l2_adjacency": bool,
    },
)


NetworkCreate = TypedDict(
    "NetworkCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "admin_state_up": bool,
        "shared": bool,
        "mtu": int,
        "port_security_enabled": bool,
        "dns_domain": str,
        "router:external": bool,
        "provider:network_type": str | None,
        "provider:physical_network": str | None,
        "provider:segmentation_id": int | None,
        "segments": Any,
        "is_default": bool,
        "availability_zone_hints": list[str],
        "__given__": frozenset[str],
    },
)


NetworkUpdate = TypedDict(
    "NetworkUpdate",
    {
        "name": str,
        "description": str,
        "admin_state_up": bool,
        "shared": bool,
        "mtu": int,
        "port_security_enabled": bool,
        "dns_domain": str,
        "router:external": bool,
        "provider:network_type": str | None,
        "provider:physical_network": str | None,
        "provider:segmentation_id": int | None,
        "is_default": bool,
    },
    total=False,
)


# --- subnet ---
Subnet = TypedDict(
    "Subnet",
    {
        "id": str,
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "created_at": str,
        "updated_at": str,
        "revision_number": int,
        "tags": list[str],
        "ip_version": int,
        "network_id": str,
        "cidr": str,
        "subnetpool_id": str | None,
        "gateway_ip": str | None,
        "allocation_pools": list[AllocationPool],
        "dns_nameservers": list[str],
        "host_routes": list[HostRoute],
        "enable_dhcp": bool,
        "ipv6_ra_mode": str | None,
        "ipv6_address_mode": str | None,
        "segment_id": str | None,
        "service_types": list[str],
        "router:external": bool,
    },
)


SubnetCreate = TypedDict(
    "SubnetCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "ip_version": int,
        "network_id": str,
        "cidr": str | None,
        "prefixlen": int | None,
        "subnetpool_id": str | None,
        "use_default_subnetpool": bool,
        "gateway_ip": str | None,
        "allocation_pools": list[AllocationPool] | None,
        "dns_nameservers": list[str],
        "host_routes": list[HostRoute],
        "enable_dhcp": bool,
        "ipv6_ra_mode": str | None,
        "ipv6_address_mode": str | None,
        "segment_id": str | None,
        "service_types": list[str],
        "__given__": frozenset[str],
    },
)


class SubnetUpdate(TypedDict, total=False):
    name: str
    description: str
    gateway_ip: str | None
    allocation_pools: list[AllocationPool] | None
    dns_nameservers: list[str]
    host_routes: list[HostRoute]
    enable_dhcp: bool
    segment_id: str | None
    service_types: list[str]


# --- port ---
Port = TypedDict(
    "Port",
    {
        "id": str,
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "created_at": str,
        "updated_at": str,
        "revision_number": int,
        "tags": list[str],
        "network_id": str,
        "admin_state_up": bool,
        "mac_address": str,
        "fixed_ips": list[FixedIp],
        "device_id": str,
        "device_owner": str,
        "status": str,
        "security_groups": list[str],
        "port_security_enabled": bool,
        "allowed_address_pairs": list[AddressPair],
        "extra_dhcp_opts": list[DhcpOption],
        "binding:host_id": str,
        "binding:profile": dict[str, Any],
        "binding:vnic_type": str,
        "binding:vif_type": str,
        "binding:vif_details": dict[str, Any],
        "dns_name": str,
        "dns_assignment": list[DnsAssignment],
        "dns_domain": str,
        "ip_allocation": str,
        "propagate_uplink_status": bool,
        "trunk_details": NotRequired[TrunkDetails],
    },
)


PortCreate = TypedDict(
    "PortCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "tags": list[str] | None,
        "network_id": str,
        "admin_state_up": bool,
        "mac_address": str | None,
        "fixed_ips": list[FixedIpBody] | None,
        "device_id": str,
        "device_owner": str,
        "security_groups": list[str] | None,
        "port_security_enabled": bool | None,
        "allowed_address_pairs": list[AddressPairBody],
        "extra_dhcp_opts": list[DhcpOptionBody] | None,
        "binding:host_id": str,
        "binding:profile": dict[str, Any],
        "binding:vnic_type": str,
        "dns_name": str,
        "propagate_uplink_status": bool,
        "__given__": frozenset[str],
    },
)


PortUpdate = TypedDict(
    "PortUpdate",
    {
        "name": str,
        "description": str,
        "admin_state_up": bool,
        "mac_address": str,
        "fixed_ips": list[FixedIpBody] | None,
        "device_id": str,
        "device_owner": str,
        "security_groups": list[str] | None,
        "port_security_enabled": bool,
        "allowed_address_pairs": list[AddressPairBody],
        "extra_dhcp_opts": list[DhcpOptionBody] | None,
        "binding:host_id": str,
        "binding:profile": dict[str, Any],
        "binding:vnic_type": str,
        "dns_name": str,
        "propagate_uplink_status": bool,
    },
    total=False,
)


# --- router ---
class Router(TypedDict):
    id: str
    name: str
    project_id: str
    tenant_id: str
    description: str
    created_at: str
    updated_at: str
    revision_number: int
    tags: list[str]
    admin_state_up: bool
    status: str
    external_gateway_info: ExternalGatewayInfo | None
    routes: list[HostRoute]
    distributed: bool
    ha: bool
    flavor_id: str | None
    availability_zone_hints: list[str]
    availability_zones: list[str]
    gw_port_id: str | None
    interface_port_ids: list[str]


RouterCreate = TypedDict(
    "RouterCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "admin_state_up": bool,
        "external_gateway_info": ExternalGatewayBody | dict[str, Any] | None,
        "distributed": bool,
        "ha": bool,
        "flavor_id": str | None,
        "availability_zone_hints": list[str],
        "__given__": frozenset[str],
    },
)


class RouterUpdate(TypedDict, total=False):
    name: str
    description: str
    admin_state_up: bool
    external_gateway_info: ExternalGatewayBody | dict[str, Any] | None
    routes: list[HostRoute]
    distributed: bool
    ha: bool


# --- floatingip ---
class FloatingIp(TypedDict):
    id: str
    project_id: str
    tenant_id: str
    description: str
    created_at: str
    updated_at: str
    revision_number: int
    tags: list[str]
    floating_network_id: str
    floating_ip_address: str
    port_id: str | None
    fixed_ip_address: str | None
    router_id: str | None
    status: str
    port_details: PortDetails | None
    port_forwardings: list[PortForwardingSummary]
    dns_name: str
    dns_domain: str
    qos_policy_id: None


FloatingIpCreate = TypedDict(
    "FloatingIpCreate",
    {
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "floating_network_id": str,
        "subnet_id": str | None,
        "floating_ip_address": str | None,
        "port_id": str | None,
        "fixed_ip_address": str | None,
        "dns_name": str,
        "dns_domain": str,
        "__given__": frozenset[str],
    },
)


class FloatingIpUpdate(TypedDict, total=False):
    description: str
    port_id: str | None
    fixed_ip_address: str | None


# --- port_forwarding ---
class PortForwarding(TypedDict):
    id: str
    external_port: int | None
    internal_port: int | None
    external_port_range: str
    internal_port_range: str
    internal_ip_address: str
    protocol: str
    internal_port_id: str
    description: str


PortForwardingCreate = TypedDict(
    "PortForwardingCreate",
    {
        "external_port": int | None,
        "internal_port": int | None,
        "external_port_range": str | None,
        "internal_port_range": str | None,
        "internal_ip_address": str,
        "protocol": str,
        "internal_port_id": str,
        "description": str,
        "project_id": str,
        "tenant_id": str,
        "__given__": frozenset[str],
    },
)


class PortForwardingUpdate(TypedDict, total=False):
    external_port: int | None
    internal_port: int | None
    external_port_range: str | None
    internal_port_range: str | None
    internal_ip_address: str
    protocol: str
    internal_port_id: str
    description: str


# --- security_group_rule ---
class SecurityGroupRule(TypedDict):
    id: str
    project_id: str
    tenant_id: str
    description: str
    created_at: str
    updated_at: str
    revision_number: int
    tags: list[str]
    security_group_id: str
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    remote_address_group_id: str | None
    normalized_cidr: str | None
    belongs_to_default_sg: bool


SecurityGroupRuleCreate = TypedDict(
    "SecurityGroupRuleCreate",
    {
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "security_group_id": str,
        "direction": str,
        "ethertype": str,
        "protocol": str | None,
        "port_range_min": int | None,
        "port_range_max": int | None,
        "remote_ip_prefix": str | None,
        "remote_group_id": str | None,
        "remote_address_group_id": str | None,
        "__given__": frozenset[str],
    },
)


# --- security_group ---
class SecurityGroup(TypedDict):
    id: str
    name: str
    project_id: str
    tenant_id: str
    description: str
    created_at: str
    updated_at: str
    revision_number: int
    tags: list[str]
    stateful: bool
    shared: bool
    security_group_rules: list[SecurityGroupRule]


SecurityGroupCreate = TypedDict(
    "SecurityGroupCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "stateful": bool,
        "__given__": frozenset[str],
    },
)


class SecurityGroupUpdate(TypedDict, total=False):
    name: str
    description: str
    stateful: bool


# --- subnetpool ---
class SubnetPool(TypedDict):
    id: str
    name: str
    project_id: str
    tenant_id: str
    description: str
    created_at: str
    updated_at: str
    revision_number: int
    tags: list[str]
    prefixes: list[str]
    default_prefixlen: str
    min_prefixlen: str
    max_prefixlen: str
    default_quota: int | None
    ip_version: int
    shared: bool
    is_default: bool
    address_scope_id: str | None


SubnetPoolCreate = TypedDict(
    "SubnetPoolCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "prefixes": list[str],
        "default_prefixlen": int | None,
        "min_prefixlen": int | None,
        "max_prefixlen": int | None,
        "default_quota": int | None,
        "shared": bool,
        "is_default": bool,
        "address_scope_id": str | None,
        "__given__": frozenset[str],
    },
)


class SubnetPoolUpdate(TypedDict, total=False):
    name: str
    description: str
    prefixes: list[str]
    default_prefixlen: int | None
    min_prefixlen: int | None
    max_prefixlen: int | None
    default_quota: int | None
    is_default: bool
    address_scope_id: str | None


# --- address_scope ---
class AddressScope(TypedDict):
    id: str
    name: str
    project_id: str
    tenant_id: str
    description: str
    created_at: str
    updated_at: str
    revision_number: int
    ip_version: int
    shared: bool


AddressScopeCreate = TypedDict(
    "AddressScopeCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "ip_version": int,
        "shared": bool,
        "__given__": frozenset[str],
    },
)


class AddressScopeUpdate(TypedDict, total=False):
    name: str
    description: str
    shared: bool


# --- trunk ---
class Trunk(TypedDict):
    id: str
    name: str
    project_id: str
    tenant_id: str
    description: str
    created_at: str
    updated_at: str
    revision_number: int
    tags: list[str]
    admin_state_up: bool
    status: str
    port_id: str
    sub_ports: list[SubPort]


TrunkCreate = TypedDict(
    "TrunkCreate",
    {
        "name": str,
        "project_id": str,
        "tenant_id": str,
        "description": str,
        "admin_state_up": bool,
        "port_id": str,
        "sub_ports": list[dict[str, Any]],
        "__given__": frozenset[str],
    },
)


class TrunkUpdate(TypedDict, total=False):
    name: str
    description: str
    admin_state_up: bool
