"""Domain errors whose class names and messages are Neutron's wire contract.

The API renders any ``NeutronException`` as
``{"NeutronError": {"type": <class name>, "message": <text>, "detail": ""}}``
with the class's ``status``; clients (openstacksdk, OSC) map the status to their
own exception types and print ``message``.  So class names and message
templates here are API: do not rename them.

Tree (status in brackets)::

    NeutronException [500]
     ├── BadRequest [400]  HTTPBadRequest, InvalidInput, InvalidAllocationPool, ...
     ├── NotAuthorized [403]  PolicyNotAuthorized
     ├── NotFound [404]  HTTPNotFound, NetworkNotFound, PortNotFound, ...
     ├── NotAllowed [405]  HTTPMethodNotAllowed
     ├── Conflict [409]  InUse, OverQuota, IpAddressGenerationFailure, ...
     ├── PreconditionFailed [412]  RevisionNumberConstraintFailed
     ├── HTTPRequestEntityTooLarge [413]
     ├── NotImplementedError [501]
     └── ServiceUnavailable [503]  NoNetworkAvailable
"""

from __future__ import annotations

from typing import Any, ClassVar


class NeutronException(Exception):
    """Base: ``message`` is a ``%(name)s`` template filled from keyword args."""

    status: ClassVar[int] = 500
    message: ClassVar[str] = "An unknown exception occurred."
    #: Name rendered as ``type``; ``None`` means the class name.
    wire_type: ClassVar[str | None] = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        try:
            self.msg = self.message % kwargs
        except (KeyError, TypeError):
            self.msg = self.message
        super().__init__(self.msg)

    @property
    def type_name(self) -> str:
        return self.wire_type or type(self).__name__


# --- 400 --------------------------------------------------------------------
class BadRequest(NeutronException):
    status = 400
    message = "Bad %(resource)s request: %(msg)s."


class HTTPBadRequest(BadRequest):
    message = "%(msg)s"


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s is not valid."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class InvalidIpForNetwork(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for any of the subnets on the specified network."


class InvalidIpForSubnet(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class DNSNameServersExhausted(BadRequest):
    message = (
        "Unable to complete operation for %(subnet_id)s. The number of DNS nameservers exceeds the limit %(quota)s."
    )


class HostRoutesExhausted(BadRequest):
    message = "Unable to complete operation for %(subnet_id)s. The number of host routes exceeds the limit %(quota)s."


class AllowedAddressPairExhausted(BadRequest):
    message = "The number of allowed address pair exceeds the maximum %(quota)s."


class SegmentsSetInConjunctionWithProviders(BadRequest):
    message = "Segments and provider values cannot both be set."


class PortSecurityAndIPRequiredForSecurityGroups(BadRequest):
    message = "Port security must be enabled and port must have an IP address in order to use security groups."


class SecurityGroupRuleInvalidProtocol(BadRequest):
    message = (
        "Security group rule protocol %(protocol)s not supported. Only protocol values %(values)s and integer "
        "representations [0 to 255] are supported."
    )


class SecurityGroupInvalidPortRange(BadRequest):
    message = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupInvalidPortValue(BadRequest):
    message = "Invalid value for port %(port)s"


class SecurityGroupInvalidIcmpValue(BadRequest):
    message = "Invalid value for ICMP %(field)s (%(attr)s) %(value)s. It must be 0 to 255."


class SecurityGroupMissingIcmpType(BadRequest):
    message = "ICMP code (port-range-max) %(value)s is provided but ICMP type (port-range-min) is missing."


class SecurityGroupRuleParameterConflict(BadRequest):
    message = "Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s"


class SecurityGroupInvalidProtocolForPort(BadRequest):
    message = "Invalid protocol %(protocol)s for port range, only supported for %(valid_port_protocols)s protocols."


class SecurityGroupEthertypeConflictWithProtocol(BadRequest):
    message = "Invalid ethertype %(ethertype)s for protocol %(protocol)s."


class SecurityGroupRemoteGroupAndRemoteIpPrefix(BadRequest):
    message = "Only remote_ip_prefix or remote_group_id may be provided."


class SecurityGroupProtocolRequiredWithPorts(BadRequest):
    message = "Must also specify protocol if port range is given."


class SecurityGroupRuleInvalidEtherType(BadRequest):
    message = "Security group rule for ethertype '%(ethertype)s' not supported. Allowed values are %(values)s."


class InvalidRoutes(BadRequest):
    message = "Invalid format for routes: %(routes)s, %(reason)s"


# --- 403 --------------------------------------------------------------------
class NotAuthorized(NeutronException):
    status = 403
    message = "Not authorized."


class PolicyNotAuthorized(NotAuthorized):
    message = "%(action)s is disallowed by policy"


class AgentNotAuthorized(NotAuthorized):
    """An agent's client certificate does not allow this request (its role or its host)."""

    message = "%(msg)s"


class ClientCertificateRequired(NeutronException):
    """401 on the agents' endpoints when TLS is on and the request has no verified client certificate."""

    status = 401
    message = (
        "A client certificate issued by this cloud's CA is required: agents connect with their node's "
        "certificate (STATE/pki/node.pem, see `neutrino pki issue`)."
    )


# --- 404 --------------------------------------------------------------------
class NotFound(NeutronException):
    status = 404
    message = "An unknown exception occurred."


class HTTPNotFound(NotFound):
    message = "The resource could not be found."


class NetworkNotFound(NotFound):
    message = "Network %(net_id)s could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet %(subnet_id)s could not be found."


class SubnetPoolNotFound(NotFound):
    message = "Subnet pool %(subnetpool_id)s could not be found."


class PortNotFound(NotFound):
    message = "Port %(port_id)s could not be found."


class RouterNotFound(NotFound):
    message = "Router %(router_id)s could not be found"


class FloatingIPNotFound(NotFound):
    message = "Floating IP %(floatingip_id)s could not be found"


class PortForwardingNotFound(NotFound):
    message = "Port Forwarding %(id)s could not be found."


class SecurityGroupNotFound(NotFound):
    message = "Security group %(id)s does not exist"


class SecurityGroupRuleNotFound(NotFound):
    message = "Security group rule %(id)s does not exist"


class AgentNotFound(NotFound):
    message = "Agent %(id)s could not be found."


# Manual scheduling (dhcp_agent_scheduler / l3_agent_scheduler): an agent of the wrong type
# (or admin-down) is "not found" for the purpose, as Neutron has it.
class InvalidDHCPAgent(AgentNotFound):
    message = "Agent %(id)s is not a valid DHCP Agent or has been disabled"


class InvalidL3Agent(AgentNotFound):
    message = "Agent %(id)s is not a L3 Agent or has been disabled"


class ExtensionNotFound(NotFound):
    message = "Extension with alias %(alias)s does not exist."


class TagNotFound(NotFound):
    message = "Tag %(tag)s could not be found."


class RouterInterfaceNotFound(NotFound):
    message = "Router %(router_id)s does not have an interface with id %(port_id)s"


class RouterInterfaceNotFoundForSubnet(NotFound):
    message = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class ExternalGatewayForFloatingIPNotFound(NotFound):
    message = (
        "External network %(external_network_id)s is not reachable from subnet %(subnet_id)s.  "
        "Therefore, cannot associate Port %(port_id)s with a Floating IP."
    )


class ProjectNotFound(NotFound):
    message = "Project %(project_id)s could not be found."


# --- 405 --------------------------------------------------------------------
class HTTPMethodNotAllowed(NeutronException):
    status = 405
    message = "The server could not comply with the request since it is either malformed or otherwise incorrect."


# --- 409 --------------------------------------------------------------------
class Conflict(NeutronException):
    status = 409


class InUse(Conflict):
    message = "The resource is in use."


class NetworkHostedByDHCPAgent(Conflict):
    message = "The network %(network_id)s has been already hosted by the DHCP Agent %(agent_id)s."


class NetworkNotHostedByDhcpAgent(Conflict):
    message = "The network %(network_id)s is not hosted by the DHCP agent %(agent_id)s."


class RouterHostedByL3Agent(Conflict):
    message = "The router %(router_id)s has been already hosted by the L3 Agent %(agent_id)s."


class RouterNotHostedByL3Agent(Conflict):
    message = "The router %(router_id)s is not hosted by L3 agent %(agent_id)s."


class NetworkInUse(InUse):
    message = (
        "Unable to complete operation on network %(net_id)s. There are one or more ports still "
        "in use on the network, id for these ports is: %(port_ids)s."
    )


class SubnetInUse(InUse):
    message = (
        "Unable to complete operation on subnet %(subnet_id)s: One or more ports have an IP "
        "allocation from this subnet."
    )


class PortInUse(InUse):
    message = (
        "Unable to complete operation on port %(port_id)s for network %(net_id)s. Port already "
        "has an attached device %(device_id)s."
    )


class DeviceIDNotOwnedByTenant(Conflict):
    message = "The following device_id %(device_id)s is not owned by your tenant or matches another tenants router."


class ServicePortInUse(InUse):
    message = "Port %(port_id)s cannot be deleted directly via the port API: %(reason)s."


class RouterInUse(InUse):
    message = "Router %(router_id)s %(reason)s"


class SecurityGroupInUse(InUse):
    message = "Security Group %(id)s in use."


class SecurityGroupCannotRemoveDefault(InUse):
    message = "Insufficient rights for removing default security group."


class SecurityGroupCannotUpdateDefault(InUse):
    message = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(InUse):
    message = "Default security group already exists."


class SecurityGroupRuleExists(InUse):
    message = "Security group rule already exists. Rule id is %(rule_id)s."


class SecurityGroupConflict(Conflict):
    message = "Error %(reason)s while attempting the operation."


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class PortBindingFailed(Conflict):
    """Raised by the compute side when no agent on the chosen host can wire a port."""

    message = (
        "Binding failed for port %(port_id)s, please check neutron logs for more information "
        "(no agent on host %(host)s serves network %(net_id)s)."
    )


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network %(net_id)s."


class MacAddressInUse(InUse):
    message = "Unable to complete operation for network %(net_id)s. The mac address %(mac)s is in use."


class MacAddressGenerationFailure(Conflict):
    message = "Unable to generate unique mac on network %(net_id)s."


class OverlappingAllocationPools(Conflict):
    message = "Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet %(subnet_cidr)s."


class GatewayConflictWithAllocationPools(InUse):
    message = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class GatewayIpInUse(InUse):
    message = "Current gateway ip %(ip_address)s already in use by port %(port_id)s. Unable to update."


class FlatNetworkInUse(InUse):
    message = "Unable to create the flat network. Physical network %(physical_network)s is in use."


class VlanIdInUse(InUse):
    message = "Unable to create the network. The VLAN %(vlan_id)s on physical network %(physical_network)s is in use."


class TunnelIdInUse(InUse):
    message = "Unable to create the network. The tunnel ID %(tunnel_id)s is in use."


class OverQuota(Conflict):
    message = "Quota exceeded for resources: %(overs)s."


class NetworkMTUSubnetConflict(Conflict):
    """A network MTU below the minimum of an IP version its subnets use (68 for IPv4,
    1280 for IPv6), on subnet create or MTU update."""

    message = "Network MTU %(mtu)s is too small for IPv%(ip_version)s subnets: the minimum is %(minimum)s."


#: The smallest MTU an IP version works with (RFC 791, RFC 8200).
MIN_MTU = {4: 68, 6: 1280}


class InvalidQuotaValue(Conflict):
    message = "Change would make usage less than 0 for the following resources: %(unders)s."


class PortSecurityPortHasSecurityGroup(InUse):
    message = (
        "Port has security group associated. Cannot disable port security or IP address until "
        "security group is removed."
    )


class AddressPairAndPortSecurityRequired(Conflict):
    message = "Port Security must be enabled in order to have allowed address pairs on a port."


class DuplicateAddressPairInRequest(BadRequest):
    message = "Request contains duplicate address pair: mac_address %(mac_address)s ip_address %(ip_address)s."


class PortBound(InUse):
    message = (
        "Unable to complete operation on port %(port_id)s, port is already bound, port type: "
        "%(vif_type)s, old_mac %(old_mac)s, new_mac %(new_mac)s."
    )


class RouterExternalGatewayInUseByFloatingIp(InUse):
    message = (
        "Gateway cannot be updated for router %(router_id)s, since a gateway to external network "
        "%(net_id)s is required by one or more floating IPs."
    )


class RouterInterfaceInUseByFloatingIP(InUse):
    message = (
        "Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be deleted, as it "
        "is required by one or more floating IPs."
    )


class FloatingIPPortAlreadyAssociated(InUse):
    message = (
        "Cannot associate floating IP %(floating_ip_address)s (%(fip_id)s) with port %(port_id)s "
        "using fixed IP %(fixed_ip)s, as that fixed IP already has a floating IP on external "
        "network %(net_id)s."
    )


class FipInUseByPortForwarding(InUse):
    message = "Floating IP %(id)s in use by Port Forwarding resources."


class PortHasBindingFloatingIP(InUse):
    message = (
        "Cannot create port forwarding to floating IP %(floating_ip_address)s (%(fip_id)s) with "
        "port %(port_id)s using fixed IP %(fixed_ip)s, as that port already has a binding "
        "floating IP."
    )


class PortForwardingCollision(Conflict):
    message = (
        "A duplicate port forwarding entry with same attributes already exists, conflicting values are %(conflict)s"
    )


class ExternalNetworkInUse(InUse):
    message = (
        "External network %(net_id)s cannot be updated to be made non-external, since it has existing gateway ports."
    )


class InvalidSharedSetting(Conflict):
    message = "Unable to reconfigure sharing settings for network %(network)s. Multiple projects are using it."


# --- 412 / 413 / 501 / 503 ----------------------------------------------------
class RevisionNumberConstraintFailed(NeutronException):
    status = 412
    message = "Constrained to %(expected)s, but current revision is %(current)s"


class HTTPRequestEntityTooLarge(NeutronException):
    """A request body over ``[oslo_middleware] max_request_body_size`` (``neutrino.request_limits``)."""

    status = 413
    message = "Request is too large."


class NotImplementedFeature(NeutronException):
    status = 501
    wire_type = "NotImplementedError"
    message = "%(msg)s"


class ServiceUnavailable(NeutronException):
    status = 503
    message = "The service is unavailable."


class NoNetworkAvailable(ServiceUnavailable):
    message = "Unable to create the network. No project network is available for allocation."


#: Longest part of a client's value that an error message repeats (``echo``).
ECHO_LIMIT = 100


def echo(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``str(value)`` for an error message, cut to ``limit`` characters plus "...".

    Messages that repeat what the client sent use this, so an error is never
    larger than a bounded multiple of its template, whatever the input.
    """
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def bad(msg: str) -> HTTPBadRequest:
    """Shorthand for the generic 400 the attribute layer raises."""
    return HTTPBadRequest(msg=msg)


def invalid(msg: str) -> InvalidInput:
    """Shorthand for ``InvalidInput`` (its template adds the trailing dot)."""
    return InvalidInput(error_message=msg.rstrip("."))


# --- L3 (routers, floating IPs, port forwardings) -------------------------------
class ExternalIpAddressExhausted(BadRequest):
    message = "Unable to find any IP address on external network %(net_id)s."


class RoutesExhausted(BadRequest):
    message = "Unable to complete operation for %(router_id)s. The number of routes exceeds the maximum %(quota)s."


class SubnetMismatchForPort(BadRequest):
    message = "Subnet on port %(port_id)s does not match the requested subnet %(subnet_id)s."


class RouterInterfaceInUseByRoute(InUse):
    message = (
        "Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be deleted, as it "
        "is required by one or more routes."
    )


class PortForwardingNotSupportFilterField(BadRequest):
    message = "Port Forwarding filter %(filter)s is not supported."


# --- subnet pools and address scopes (neutrino.services.subnetpools) ------------
class EmptySubnetPoolPrefixList(BadRequest):
    message = "Empty subnet pool prefix list."


class PrefixVersionMismatch(BadRequest):
    message = "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."


class UnsupportedMinSubnetPoolPrefix(BadRequest):
    message = "Prefix '%(prefix)s' not supported in IPv%(version)s pool."


class IllegalSubnetPoolPrefixBounds(BadRequest):
    message = "Illegal prefix bounds: %(prefix_type)s=%(prefixlen)s, %(base_prefix_type)s=%(base_prefixlen)s."


class IllegalSubnetPoolPrefixUpdate(BadRequest):
    message = "Illegal update to prefixes: %(msg)s."


class IllegalSubnetPoolAssociationToAddressScope(BadRequest):
    message = (
        "Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot be associated with "
        "address scope %(address_scope_id)s."
    )


class IllegalSubnetPoolIpVersionAssociationToAddressScope(BadRequest):
    message = (
        "Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot associate with address "
        "scope %(address_scope_id)s because subnetpool ip_version is not %(ip_version)s."
    )


class IllegalSubnetPoolUpdate(BadRequest):
    message = "Illegal subnetpool update : %(reason)s."


class MinPrefixSubnetAllocationError(BadRequest):
    message = "Unable to allocate subnet with prefix length %(prefixlen)s, minimum allowed prefix is %(min_prefixlen)s."


class MaxPrefixSubnetAllocationError(BadRequest):
    message = "Unable to allocate subnet with prefix length %(prefixlen)s, maximum allowed prefix is %(max_prefixlen)s."


class SubnetPoolDeleteError(BadRequest):
    message = "Unable to delete subnet pool: %(reason)s."


class NetworkSubnetPoolAffinityError(BadRequest):
    message = "Subnets hosted on the same network must be allocated from the same subnet pool."


class NetworkAddressScopeAffinityError(BadRequest):
    message = (
        "Subnets of the same address family hosted on the same network must all participate in the same address scope."
    )


class AddressScopeNotFound(NotFound):
    message = "Address scope %(address_scope_id)s could not be found."


class SubnetPoolQuotaExceeded(OverQuota):
    message = "Per-tenant subnet pool prefix quota exceeded."


class AddressScopePrefixConflict(Conflict):
    message = "Failed to associate address scope: subnetpools within an address scope must have unique prefixes."


class AddressScopeInUse(InUse):
    message = (
        "Unable to complete operation on address scope %(address_scope_id)s. There are one or more "
        "subnet pools in use on the address scope."
    )


class AddressScopeUpdateError(BadRequest):
    message = "Unable to update address scope %(address_scope_id)s : %(reason)s."


class SubnetAllocationError(NeutronException):
    """Neutron answers 500 here (its base class is not mapped to a client error)."""

    message = "Failed to allocate subnet: %(reason)s."


# --- trunks (neutrino.services.trunks) ----------------------------------------------
class TrunkNotFound(NotFound):
    message = "Trunk %(trunk_id)s could not be found."


class SubPortNotFound(NotFound):
    message = "SubPort %(port_id)s on trunk %(trunk_id)s could not be found."


class TrunkPortInUse(InUse):
    message = "Port %(port_id)s is in use by another trunk."


class ParentPortInUse(InUse):
    message = "Port %(port_id)s is currently in use and is not eligible for use as a parent port."


class DuplicateSubPort(InUse):
    message = (
        "segmentation_type %(segmentation_type)s and segmentation_id %(segmentation_id)s already "
        "in use on trunk %(trunk_id)s."
    )


class SubPortMtuGreaterThanTrunkPortMtu(Conflict):
    message = "MTU %(port_mtu)s of subport %(port_id)s cannot be greater than MTU %(trunk_mtu)s of trunk %(trunk_id)s."


class PortInUseAsTrunkParent(InUse):
    message = "Port %(port_id)s is currently a parent port for trunk %(trunk_id)s."


class PortInUseAsSubPort(InUse):
    message = "Port %(port_id)s is currently a subport for trunk %(trunk_id)s."


class TrunkInUse(InUse):
    message = "Trunk %(trunk_id)s is currently in use."


class TrunkDisabled(Conflict):
    message = "Trunk %(trunk_id)s is currently disabled."


class TrunkInErrorState(Conflict):
    message = "Trunk %(trunk_id)s is in error state. Attempt to resolve the error condition before proceeding."


# --- RBAC policies (neutrino.services.rbac) ---------------------------------------------------
class RbacPolicyNotFound(NotFound):
    message = "RBAC policy of type %(object_type)s with ID %(id)s not found"


class RbacPolicyInUse(Conflict):
    message = (
        "RBAC policy on object %(object_id)s cannot be removed because other objects depend on "
        "it.\nDetails: %(details)s"
    )


class DuplicateRbacPolicy(Conflict):
    message = "An RBAC policy already exists with those values."


class InvalidActionForType(InvalidInput):
    message = "Invalid action '%(action)s' for object type '%(object_type)s'. Valid actions: %(valid_actions)s"
