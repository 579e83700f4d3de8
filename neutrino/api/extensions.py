"""The extensions this server really implements (``GET /v2.0/extensions``)."""

from __future__ import annotations

from typing import Any

_UPDATED = "2026-11-27T00:00:00-00:00"

#: alias -> (name, description).  Only what is implemented end to end.
EXTENSIONS: dict[str, tuple[str, str]] = {
    "address-scope": ("Address scope", "Address scopes extension."),
    "agent": ("agent", "The agent management extension."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "default-subnetpools": ("Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    "dhcp_agent_scheduler": ("DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    "dns-integration": ("DNS Integration", "Provides integration with DNS."),
    "empty-string-filtering": (
        "Empty String Filtering Extension",
        "Allow filtering by attributes with empty string value",
    ),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "ext-gw-mode": (
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway",
    ),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP."),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": (
        "Atomically add/remove extra routes",
        "Edit extra routes of a router on server side by atomically adding/removing extra routes",
    ),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "fip-port-details": ("Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource"),
    "floating-ip-port-forwarding": ("Floating IP Port Forwarding", "Provide port forwarding to floating IP."),
    "floating-ip-port-forwarding-description": (
        "Floating IP Port Forwarding new attribute description",
        "Add a description field to Port Forwarding rules",
    ),
    "expose-port-forwarding-in-fip": ("Expose Port Forwarding in FIP", "Expose on floating IPs their port forwardings"),
    "ip-substring-filtering": (
        "IP address substring filtering",
        "Provides IP address substring filtering when listing ports",
    ),
    "l3_agent_scheduler": ("L3 Agent Scheduler", "Schedule routers among l3 agents"),
    "multi-provider": ("Multi Provider Network", "Expose mapping of virtual networks to multiple physical networks"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    "network_availability_zone": ("Network Availability Zone", "Availability zone support for network."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "quota_details": ("Quota details management support", "Expose functions for quotas usage statistics per project"),
    "quota-check-limit-default": (
        "Quota engine limit check (default)",
        "Checks the resource usage limit when the quota is updated",
    ),
    "rbac-policies": (
        "RBAC Policies",
        "Allows creation and modification of policies that control tenant access to resources.",
    ),
    "rbac-address-scope": ("Add address_scope type to RBAC", "Add address_scope type to RBAC"),
    "rbac-subnetpool": ("Add subnetpool type to RBAC", "Add subnetpool type to RBAC"),
    "rbac-security-groups": ("Add security_group type to network RBAC", "Add security_group type to network RBAC"),
    "revision-if-match": (
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    "router": (
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks "
        "via a NAT gateway.",
    ),
    "router_availability_zone": ("Router Availability Zone", "Availability zone support for router."),
    "security-group": ("security-group", "The security groups extension."),
    "security-groups-normalized-cidr": (
        "Security Group Rule normalized CIDR",
        "Add new field with normalized remote_ip_prefix cidr in SG rule",
    ),
    "security-groups-rules-belongs-to-default-sg": (
        "Security group rule belongs to the project's default security group",
        "Flag to determine if the security group rule belongs to the project's default security group",
    ),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard attributes"),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    "standard-attr-tag": (
        "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, "
        "policy, subnetpool, port, security_group, floatingip",
        "Enables to set tag on resources with standard attribute.",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group is stateful or not"),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    "subnetpool-prefix-ops": (
        "Subnet Pool Prefix Operations",
        "Provides support for adjusting the prefix list of subnet pools",
    ),
    "service-type": (
        "Neutron Service Type Management",
        "API for retrieving service providers for Neutron advanced services",
    ),
    "network-ip-availability": (
        "Network IP Availability",
        "Provides IP availability data for each network and subnet.",
    ),
    "tag-ports-during-bulk-creation": ("Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation"),
    "subnet-external-network": (
        "Subnet External Network",
        "Informs if the subnet is associated to an external network.",
    ),
    "trunk": ("Trunk Extension", "Provides support for trunk ports"),
    "trunk-details": ("Trunk port details", "Expose trunk port details"),
    "tag-creation": ("Tag creation extension", "Allow to create multiple tags."),
}


def extension_dict(alias: str) -> dict[str, Any]:
    name, desc = EXTENSIONS[alias]
    return {"name": name, "alias": alias, "description": desc, "updated": _UPDATED, "links": []}


def all_extensions() -> list[dict[str, Any]]:
    return [extension_dict(a) for a in sorted(EXTENSIONS)]
