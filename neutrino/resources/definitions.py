"""The Neutron v2.0 wire contract: one attribute map per resource.

Values follow neutron-lib's definitions (what may be POSTed/PUT, defaults,
filters, sort keys).  Services and the controller read these; nothing here
has behaviour.
"""

from __future__ import annotations

from neutrino.resources import convert as cv
from neutrino.resources.resource import MISSING, Attr, Resource, std_attrs

_name = cv.string(255)
_bool = cv.to_bool

_fixed_ip = cv.dict_of({"subnet_id": cv.uuid_str, "ip_address": cv.ip})
_pool = cv.dict_of({"start": cv.ip, "end": cv.ip}, required=("start", "end"))
_route = cv.dict_of({"destination": cv.subnet_cidr, "nexthop": cv.ip}, required=("destination", "nexthop"))
_aap = cv.dict_of({"ip_address": cv.ip_or_cidr, "mac_address": cv.mac}, required=("ip_address",))
_dhcp_opt = cv.dict_of(
    {
        "opt_name": cv.string(255),
        "opt_value": cv.nullable(cv.string(255)),
        "ip_version": cv.int_one_of(4, 6),
    },  # an int, as Neutron
    required=("opt_name", "opt_value"),
)  # opt_value may be null, not missing (neutron-lib)
_ext_gw_dict = cv.dict_of(
    {"network_id": cv.uuid_str, "enable_snat": cv.to_bool, "external_fixed_ips": cv.list_of(_fixed_ip)},
    required=("network_id",),
)


def _ext_gw(v: object) -> object:
    """Neutron's ``type:dict_or_nodata``: ``{}`` (like null) clears the gateway."""
    if isinstance(v, dict) and not v:
        return {}
    return _ext_gw_dict(v)


#: Extra-route lists in the add/remove_extraroutes actions (duplicates are merged there).
route_list = cv.list_of(_route)


def _routes(v: object) -> object:
    """Router ``routes``: null means [], duplicates are rejected (``type:hostroutes``)."""
    return [] if v is None else cv.list_of(_route, unique=True, what="hostroute")(v)


def _check_port_range(v: object) -> str:
    """Neutron's ``type:port_range`` validator: ``"N"`` or ``"N:M"``, 0-65535, N <= M."""
    text = str(v)
    ports = text.split(":")
    if len(ports) > 2 or any(not p for p in ports):
        raise ValueError("Port range must be two integers separated by a colon")
    for p in ports:
        if not p.isdigit() or not 0 <= int(p) <= 65535:
            raise ValueError(f"Invalid port: {p}")
    if len(ports) == 2 and int(ports[0]) > int(ports[1]):
        raise ValueError("First port in a port range must be lower than the second port")
    return text


def _pf_port(v: object) -> int:
    return cv.to_int(_check_port_range(v))


def _group_id(v: object) -> str:
    """A security group named by a rule's ``remote_group_id`` or in a port's
    ``security_groups``: any string (at most 255 characters, no NUL) reaches the
    service, which answers an unknown or malformed id with 404
    SecurityGroupNotFound, as Neutron; a UUID is made canonical.  Other types
    are 400.  The service only compares the string with stored ids."""
    text: str = cv.string(255)(v)
    try:
        return cv.uuid_str(text)
    except ValueError:
        return text


def _protocol(v: object) -> str:
    """A rule's ``protocol``: a name or number as a string, or a JSON integer
    (``17``), which becomes the string ``"17"`` as in Neutron.  The service
    checks the value (0-255 or a known name)."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    text: str = cv.string(40)(v)
    return text


NETWORK = Resource(
    "network",
    "networks",
    (
        *std_attrs(),
        Attr(
            "admin_state_up",
            post=True,
            put=True,
            default=True,
            convert=_bool,
            filter=True,
            sort=True,
            column="admin_state_up",
        ),
        Attr("status", filter=True, sort=True, column="status"),
        Attr("subnets", filter=True),
        Attr("shared", post=True, put=True, default=False, convert=_bool, filter=True, sort=True, column="shared"),
        Attr(
            "mtu", post=True, put=True, default=0, convert=cv.in_range(0, 65535), filter=True, sort=True, column="mtu"
        ),
        Attr(
            "port_security_enabled",
            post=True,
            put=True,
            default=True,
            convert=_bool,
            filter=True,
            column="port_security_enabled",
        ),
        Attr("dns_domain", post=True, put=True, default="", convert=cv.string(255), filter=True),
        Attr(
            "router:external",
            post=True,
            put=True,
            default=False,
            convert=_bool,
            filter=True,
            sort=True,
            column="external",
        ),
        Attr(
            "provider:network_type", post=True, put=True, default=None, convert=cv.nullable(cv.string(32)), filter=True
        ),
        Attr(
            "provider:physical_network",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(cv.string(64)),
            filter=True,
        ),
        Attr(
            "provider:segmentation_id", post=True, put=True, default=None, convert=cv.nullable(cv.to_int), filter=True
        ),
        Attr("segments", post=True, default=None),
        Attr("is_default", post=True, put=True, default=False, convert=_bool, filter=True, column="is_default"),
        Attr("availability_zone_hints", post=True, default=list, convert=cv.list_of(cv.string(255))),
        Attr("availability_zones"),
        Attr("ipv4_address_scope"),
        Attr("ipv6_address_scope"),
        Attr("l2_adjacency"),
    ),
)

SUBNET = Resource(
    "subnet",
    "subnets",
    (
        *std_attrs(),
        Attr(
            "ip_version",
            post=True,
            default=MISSING,
            convert=cv.int_one_of(4, 6),
            filter=True,
            sort=True,
            column="ip_version",
        ),
        Attr(
            "network_id", post=True, default=MISSING, convert=cv.uuid_str, filter=True, sort=True, column="network_id"
        ),
        Attr(
            "cidr",
            post=True,
            default=None,
            convert=cv.nullable(cv.cidr_keep_host),
            filter=True,
            sort=True,
            column="cidr",
        ),
        Attr("prefixlen", post=True, default=None, convert=cv.nullable(cv.to_int), visible=False),
        Attr(
            "subnetpool_id",
            post=True,
            default=None,
            convert=cv.nullable(cv.string(36)),
            filter=True,
            column="subnetpool_id",
        ),
        Attr("use_default_subnetpool", post=True, default=False, convert=_bool, visible=False),
        Attr(
            "gateway_ip",
            post=True,
            put=True,
            default=None,
            convert=cv.ip_or_none,
            filter=True,
            sort=True,
            column="gateway_ip",
        ),
        Attr("allocation_pools", post=True, put=True, default=None, convert=cv.nullable(cv.list_of(_pool))),
        Attr(
            "dns_nameservers",
            post=True,
            put=True,
            default=list,
            convert=cv.list_of(cv.ip, unique=True, what="nameserver"),
        ),
        Attr("host_routes", post=True, put=True, default=list, convert=cv.list_of(_route)),
        Attr(
            "enable_dhcp",
            post=True,
            put=True,
            default=True,
            convert=_bool,
            filter=True,
            sort=True,
            column="enable_dhcp",
        ),
        Attr(
            "ipv6_ra_mode",
            post=True,
            default=None,
            convert=cv.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless", nullable=True),
            filter=True,
            sort=True,
            column="ipv6_ra_mode",
        ),
        Attr(
            "ipv6_address_mode",
            post=True,
            default=None,
            convert=cv.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless", nullable=True),
            filter=True,
            sort=True,
            column="ipv6_address_mode",
        ),
        Attr(
            "segment_id", post=True, put=True, default=None, convert=cv.uuid_or_none, filter=True, column="segment_id"
        ),
        Attr("service_types", post=True, put=True, default=list, convert=cv.list_of(cv.string(255))),
        Attr("router:external", convert=_bool, filter=True),
        # A filter only (hidden, as in Neutron): a subnet is shared when its network is.
        Attr("shared", convert=_bool, visible=False, filter=True),
        Attr("dns_publish_fixed_ip", visible=False),
    ),
)


def _port_std_attrs() -> list[Attr]:
    """Ports accept ``tags`` in POST, single and bulk (tag-ports-during-bulk-creation); they are stored."""
    return [
        Attr("tags", post=True, default=None, convert=cv.nullable(cv.list_of(cv.tag))) if a.name == "tags" else a
        for a in std_attrs()
    ]


PORT = Resource(
    "port",
    "ports",
    (
        *_port_std_attrs(),
        Attr(
            "network_id", post=True, default=MISSING, convert=cv.uuid_str, filter=True, sort=True, column="network_id"
        ),
        Attr(
            "admin_state_up",
            post=True,
            put=True,
            default=True,
            convert=_bool,
            filter=True,
            sort=True,
            column="admin_state_up",
        ),
        Attr(
            "mac_address",
            post=True,
            put=True,
            default=None,
            convert=cv.mac,
            filter=True,
            sort=True,
            column="mac_address",
        ),
        Attr("fixed_ips", post=True, put=True, default=None, convert=cv.nullable(cv.fixed_ips(_fixed_ip)), filter=True),
        Attr(
            "device_id",
            post=True,
            put=True,
            default="",
            convert=cv.string(255),
            filter=True,
            sort=True,
            column="device_id",
        ),
        Attr(
            "device_owner",
            post=True,
            put=True,
            default="",
            convert=cv.string(255),
            filter=True,
            sort=True,
            column="device_owner",
        ),
        Attr("status", filter=True, sort=True, column="status"),
        Attr(
            "security_groups",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(cv.list_of(_group_id)),
            filter=True,
        ),
        Attr(
            "port_security_enabled",
            post=True,
            put=True,
            default=None,
            convert=_bool,  # left out: the network's
            filter=True,
            column="port_security_enabled",
        ),
        Attr("allowed_address_pairs", post=True, put=True, default=list, convert=cv.list_of(_aap)),
        Attr(
            "extra_dhcp_opts",
            post=True,
            put=True,
            default=list,  # null: none (create), no change (update)
            convert=cv.nullable(cv.list_of(_dhcp_opt)),
        ),
        Attr(
            "binding:host_id",
            post=True,
            put=True,
            default="",
            convert=cv.string(255),
            filter=True,
            column="binding_host_id",
        ),
        Attr("binding:profile", post=True, put=True, default=dict, convert=cv.dict_value),
        Attr(
            "binding:vnic_type",
            post=True,
            put=True,
            default="normal",
            convert=cv.one_of(
                "normal",
                "direct",
                "macvtap",
                "baremetal",
                "direct-physical",
                "virtio-forwarder",
                "smart-nic",
                "vdpa",
                "accelerator-direct",
                "accelerator-direct-physical",
                "remote-managed",
            ),
            filter=True,
            column="binding_vnic_type",
        ),
        Attr("binding:vif_type", filter=True, column="binding_vif_type"),
        Attr("binding:vif_details"),
        Attr("dns_name", post=True, put=True, default="", convert=cv.string(255), filter=True, column="dns_name"),
        Attr("dns_assignment"),
        Attr("dns_domain"),
        Attr("ip_allocation"),
        Attr("propagate_uplink_status", post=True, put=True, default=False, convert=_bool),
        Attr("trunk_details"),  # trunk-details: on a trunk's parent port only
    ),
)

ROUTER = Resource(
    "router",
    "routers",
    (
        *std_attrs(),
        Attr(
            "admin_state_up",
            post=True,
            put=True,
            default=True,
            convert=_bool,
            filter=True,
            sort=True,
            column="admin_state_up",
        ),
        Attr("status", filter=True, sort=True, column="status"),
        Attr("external_gateway_info", post=True, put=True, default=None, convert=cv.nullable(_ext_gw)),
        Attr("routes", put=True, default=list, convert=_routes),
        Attr("distributed", post=True, put=True, default=False, convert=_bool, filter=True),
        Attr("ha", post=True, put=True, default=False, convert=_bool, filter=True),
        Attr("flavor_id", post=True, default=None, convert=cv.uuid_or_none, filter=True),
        Attr("availability_zone_hints", post=True, default=list, convert=cv.list_of(cv.string(255))),
        Attr("availability_zones"),
        Attr("enable_ndp_proxy", visible=False),
    ),
)

FLOATINGIP = Resource(
    "floatingip",
    "floatingips",
    (
        *std_attrs(name=False),
        Attr(
            "floating_network_id",
            post=True,
            default=MISSING,
            convert=cv.uuid_str,
            filter=True,
            sort=True,
            column="floating_network_id",
        ),
        Attr("subnet_id", post=True, default=None, convert=cv.uuid_or_none, visible=False),
        Attr(
            "floating_ip_address",
            post=True,
            default=None,
            convert=cv.ip_or_none,
            filter=True,
            sort=True,
            column="floating_ip_address",
        ),
        Attr(
            "port_id",
            post=True,
            put=True,
            default=None,
            convert=cv.uuid_or_none,
            filter=True,
            sort=True,
            column="fixed_port_id",
        ),
        Attr(
            "fixed_ip_address",
            post=True,
            put=True,
            default=None,
            convert=cv.ip_or_none,
            filter=True,
            sort=True,
            column="fixed_ip_address",
        ),
        Attr("router_id", filter=True, sort=True, column="router_id"),
        Attr("status", filter=True, sort=True, column="status"),
        Attr("port_details"),
        Attr("port_forwardings"),
        Attr("dns_name", post=True, default="", convert=cv.string(255), filter=True),
        Attr("dns_domain", post=True, default="", convert=cv.string(255), filter=True),
        Attr("qos_policy_id", visible=False),
    ),
)

PORT_FORWARDING = Resource(
    "port_forwarding",
    "port_forwardings",
    (
        Attr("id", convert=cv.uuid_str, filter=True, sort=True, column="id"),
        Attr("external_port", post=True, put=True, default=None, convert=cv.nullable(_pf_port), filter=True, sort=True),
        Attr("internal_port", post=True, put=True, default=None, convert=cv.nullable(_pf_port), filter=True, sort=True),
        Attr(
            "external_port_range",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(_check_port_range),
            filter=True,
        ),
        Attr(
            "internal_port_range",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(_check_port_range),
            filter=True,
        ),
        Attr("internal_ip_address", post=True, put=True, default=MISSING, convert=cv.ip, filter=True),
        Attr("protocol", post=True, put=True, default=MISSING, convert=cv.one_of("tcp", "udp"), filter=True, sort=True),
        Attr("internal_port_id", post=True, put=True, default=MISSING, convert=cv.uuid_str, filter=True),
        Attr("description", post=True, put=True, default="", convert=cv.string(255), filter=True),
        Attr("project_id", post=True, default=None, convert=cv.string(255)),
        Attr("tenant_id", post=True, default=None, convert=cv.string(255)),
    ),
    policy_name="floatingip_port_forwarding",
)


def subports(v: object) -> list[dict[str, object]]:
    """A trunk's ``sub_ports`` (neutron-lib's ``type:subports``): a list of dicts with a unique
    ``port_id``; ``segmentation_type`` and ``segmentation_id`` go together (a dict holding only
    ``port_id`` is what ``remove_subports`` takes), and no two entries share a segmentation."""
    if not isinstance(v, list):
        raise ValueError(f"Invalid data format for subports: '{v}' is not a list")
    ids: set[str] = set()
    seen: set[tuple[object, int]] = set()
    out: list[dict[str, object]] = []
    for sp in v:
        if not isinstance(sp, dict):
            raise ValueError(f"Invalid data format for subport: '{sp}' is not a dict")
        unknown = sorted(set(sp) - {"port_id", "segmentation_type", "segmentation_id"})
        if unknown:
            raise ValueError(f"Unrecognized attribute(s) '{', '.join(map(str, unknown))}'")
        if "port_id" not in sp:
            raise ValueError("A valid port UUID must be specified")
        try:
            port_id = cv.uuid_str(sp["port_id"])
        except ValueError:
            raise ValueError(f"Invalid UUID for subport: '{sp['port_id']}'") from None
        if port_id in ids:
            raise ValueError(f"Non unique UUID for subport: '{port_id}'")
        ids.add(port_id)
        item: dict[str, object] = {"port_id": port_id}
        seg_type, seg_id = sp.get("segmentation_type"), sp.get("segmentation_id")
        if len(sp) > 1:
            if not seg_type or seg_id is None:
                raise ValueError(
                    f"Invalid subport details '{sp}': missing segmentation information. Must "
                    f"specify both segmentation_id and segmentation_type"
                )
            try:
                seg_id = cv.to_int(seg_id)
            except ValueError:
                raise ValueError(f"Invalid segmentation_id '{seg_id}' for subport '{port_id}'") from None
            if (seg_type, seg_id) in seen:
                raise ValueError(f"Segmentation ID '{seg_id}' for '{port_id}' is not unique")
            seen.add((seg_type, seg_id))
            item.update(segmentation_type=seg_type, segmentation_id=seg_id)
        out.append(item)
    return out


TRUNK = Resource(
    "trunk",
    "trunks",
    (
        *std_attrs(),
        Attr(
            "admin_state_up",
            post=True,
            put=True,
            default=True,
            convert=_bool,
            filter=True,
            sort=True,
            column="admin_state_up",
        ),
        Attr("status", filter=True, sort=True, column="status"),
        Attr("port_id", post=True, default=MISSING, convert=cv.uuid_str, filter=True, sort=True, column="port_id"),
        Attr("sub_ports", post=True, default=list, convert=subports),
    ),
)

SECURITY_GROUP = Resource(
    "security_group",
    "security-groups",
    (
        *std_attrs(),
        Attr("stateful", post=True, put=True, default=True, convert=_bool, filter=True, sort=True, column="stateful"),
        Attr("shared", filter=True),
        Attr("security_group_rules"),
    ),
)

SECURITY_GROUP_RULE = Resource(
    "security_group_rule",
    "security-group-rules",
    (
        *std_attrs(name=False, description_put=False),
        Attr(
            "security_group_id",
            post=True,
            default=MISSING,
            convert=cv.uuid_str,
            filter=True,
            sort=True,
            column="security_group_id",
        ),
        Attr(
            "direction",
            post=True,
            default=MISSING,
            convert=cv.one_of("ingress", "egress"),
            filter=True,
            sort=True,
            column="direction",
        ),
        Attr("ethertype", post=True, default="IPv4", convert=cv.string(8), filter=True, sort=True, column="ethertype"),
        Attr(
            "protocol",
            post=True,
            default=None,
            convert=cv.nullable(_protocol),
            filter=True,
            sort=True,
            column="protocol",
        ),
        Attr(
            "port_range_min",
            post=True,
            default=None,
            convert=cv.nullable(cv.to_int),
            filter=True,
            sort=True,
            column="port_range_min",
        ),
        Attr(
            "port_range_max",
            post=True,
            default=None,
            convert=cv.nullable(cv.to_int),
            filter=True,
            sort=True,
            column="port_range_max",
        ),
        Attr(
            "remote_ip_prefix",
            post=True,
            default=None,
            convert=cv.nullable(cv.cidr_keep_host),
            filter=True,
            sort=True,
            column="remote_ip_prefix",
        ),
        Attr(
            "remote_group_id",
            post=True,
            default=None,
            convert=cv.nullable(_group_id),
            filter=True,
            sort=True,
            column="remote_group_id",
        ),
        Attr("remote_address_group_id", post=True, default=None, convert=cv.uuid_or_none, filter=True),
        Attr("normalized_cidr", filter=True),
        Attr("belongs_to_default_sg", filter=True),
    ),
)

AGENT = Resource(
    "agent",
    "agents",
    (
        Attr("id", filter=True, sort=True, column="id"),
        Attr("agent_type", filter=True, sort=True, column="agent_type"),
        Attr("binary", filter=True, sort=True, column="binary"),
        Attr("topic", filter=True, sort=True, column="topic"),
        Attr("host", filter=True, sort=True, column="host"),
        Attr("admin_state_up", put=True, convert=_bool, filter=True, sort=True, column="admin_state_up"),
        Attr("created_at", filter=True, sort=True),
        Attr("started_at", filter=True, sort=True),
        Attr("heartbeat_timestamp", filter=True, sort=True),
        Attr("alive", filter=True, sort=True),
        Attr("description", put=True, convert=cv.nullable(cv.string(255)), filter=True),
        Attr("availability_zone", filter=True, sort=True, column="availability_zone"),
        Attr("configurations"),
        Attr("resources_synced", filter=True),
    ),
)

_prefixlen = cv.in_range(0, 128)

SUBNETPOOL = Resource(
    "subnetpool",
    "subnetpools",
    (
        # ``name`` is required for subnet pools (neutron-lib gives it no default).
        *[
            Attr(
                "name",
                post=True,
                put=True,
                default=MISSING,
                convert=cv.string(255),
                filter=True,
                sort=True,
                column="name",
            )
            if a.name == "name"
            else a
            for a in std_attrs()
        ],
        Attr("prefixes", post=True, put=True, default=MISSING, convert=cv.list_of(cv.subnet_cidr)),
        Attr(
            "default_prefixlen",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(_prefixlen),
            filter=True,
            sort=True,
            column="default_prefixlen",
        ),
        Attr(
            "min_prefixlen",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(_prefixlen),
            filter=True,
            sort=True,
            column="min_prefixlen",
        ),
        Attr(
            "max_prefixlen",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(_prefixlen),
            filter=True,
            sort=True,
            column="max_prefixlen",
        ),
        Attr(
            "default_quota",
            post=True,
            put=True,
            default=None,
            convert=cv.nullable(cv.in_range(0, 2**31 - 1)),
            filter=True,
            sort=True,
            column="default_quota",
        ),
        Attr("ip_version", filter=True, sort=True, column="ip_version"),
        Attr("shared", post=True, default=False, convert=_bool, filter=True, sort=True, column="shared"),
        Attr(
            "is_default", post=True, put=True, default=False, convert=_bool, filter=True, sort=True, column="is_default"
        ),
        Attr(
            "address_scope_id",
            post=True,
            put=True,
            default=None,
            convert=cv.uuid_or_none,
            filter=True,
            sort=True,
            column="address_scope_id",
        ),
    ),
)

ADDRESS_SCOPE = Resource(
    "address_scope",
    "address-scopes",
    (
        *std_attrs(),
        Attr(
            "ip_version",
            post=True,
            default=MISSING,
            convert=cv.int_one_of(4, 6),
            filter=True,
            sort=True,
            column="ip_version",
        ),
        Attr("shared", post=True, put=True, default=False, convert=_bool, filter=True, sort=True, column="shared"),
    ),
)

ALL: tuple[Resource, ...] = (
    NETWORK,
    SUBNET,
    PORT,
    ROUTER,
    FLOATINGIP,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    AGENT,
    SUBNETPOOL,
    ADDRESS_SCOPE,
)
ALL = (*ALL, TRUNK)
BY_COLLECTION = {r.collection: r for r in ALL}
