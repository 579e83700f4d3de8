"""The configuration schema: one INI file, Neutron's section and option names.

Every option is declared once in ``OPTIONS`` with its type, default and help;
``load()`` parses a file against it, rejects unknown options and bad values,
and returns a frozen ``Config``.  Nothing reads configuration from globals:
the ``Config`` object is passed down explicitly.
"""

from __future__ import annotations

import configparser
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, get_type_hints


class ConfigError(ValueError):
    """A configuration file or value that cannot be used."""


def _bool(v: str) -> bool:
    low = v.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{v!r} is not a boolean")


def _list(v: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in v.split(",") if x.strip())


def _firewall_driver(v: str) -> str:
    low = v.strip().lower()
    # Neutron's alias for the native OVS driver is accepted too.
    low = {"ovs": "openvswitch", "neutron.agent.firewall.noopfirewalldriver": "noop"}.get(low, low)
    if low not in ("openvswitch", "noop"):
        raise ValueError(f"{v!r} is not a firewall driver (openvswitch, noop)")
    return low


def _interval(v: str) -> float:
    """Seconds, greater than 0 (fractions allowed)."""
    secs = float(v)
    if not secs > 0:
        raise ValueError(f"{v!r} is not a number of seconds greater than 0")
    return secs


def _dict_int(v: str) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for item in _list(v):
        key, sep, val = item.rpartition(":")
        if not sep or not key:
            raise ValueError(f"{item!r} is not of the form key:value")
        out[key] = int(val)
    return MappingProxyType(out)


def _dict_str(v: str) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for item in _list(v):
        key, sep, val = item.partition(":")
        if not sep or not key:
            raise ValueError(f"{item!r} is not of the form key:value")
        out[key] = val
    return MappingProxyType(out)


@dataclass(frozen=True)
class Option:
    section: str
    name: str
    type: Callable[[str], Any]
    default: str
    help: str
    neutron_name: bool = True  # False: our own option (no Neutron equivalent)


_O = Option
OPTIONS: tuple[Option, ...] = (
    # --- [DEFAULT] -----------------------------------------------------------
    _O("DEFAULT", "bind_host", str, "127.0.0.1", "Address the Neutron API listens on."),
    _O("DEFAULT", "bind_port", int, "9696", "Port of the Neutron API."),
    _O("DEFAULT", "api_workers", int, "1", "Number of Neutron API server processes (SO_REUSEPORT)."),
    _O("DEFAULT", "global_physnet_mtu", int, "1500", "MTU of the underlying physical network."),
    _O("DEFAULT", "base_mac", str, "fa:16:3e:00:00:00", "Base MAC address; the first 3 octets are kept."),
    _O("DEFAULT", "dns_domain", str, "openstacklocal", "Domain used for port DNS assignments."),
    _O("DEFAULT", "agent_down_time", int, "75", "Seconds without heartbeat after which an agent is dead."),
    _O("DEFAULT", "dhcp_agents_per_network", int, "1", "DHCP agents that host each network."),
    _O("DEFAULT", "max_dns_nameservers", int, "5", "Maximum DNS name servers per subnet."),
    _O("DEFAULT", "max_subnet_host_routes", int, "20", "Maximum host routes per subnet."),
    _O("DEFAULT", "max_allowed_address_pair", int, "10", "Maximum allowed address pairs per port."),
    _O("DEFAULT", "pagination_max_limit", int, "-1", "Largest page size (-1: unlimited)."),
    _O("DEFAULT", "enable_snat_by_default", _bool, "true", "Default of enable_snat on router gateways."),
    _O("DEFAULT", "debug", _bool, "false", "Log at debug level."),
    _O("DEFAULT", "host", str, "", "Name of this host (default: the machine's hostname)."),
    _O(
        "DEFAULT",
        "roles",
        _list,
        "all",
        "What this node runs (comma-separated): controller (the API servers; database migrations), "
        "network (DHCP, L3 and metadata agents with the OVS agent; the lab host), compute (OVS and "
        "compute agents), or all (every role: the all-in-one).  `neutrino up --role` overrides it.",
        False,
    ),
    _O(
        "DEFAULT",
        "server_url",
        str,
        "",
        "URL of the Neutron API that this node's agents follow (feed, heartbeats, status), e.g. "
        "http://controller:9696; empty: this node's own bind_host and bind_port.",
        False,
    ),
    # --- request limits of every API the server serves (neutrino.request_limits) ----------
    _O(
        "oslo_middleware",
        "max_request_body_size",
        int,
        "114688",
        "Largest request body in bytes, on every API (413 beyond it, read no further); the agents' "
        "routes under /neutrino/v1/ have max_agent_request_body_size instead.",
    ),
    _O(
        "DEFAULT",
        "max_agent_request_body_size",
        int,
        "16777216",
        "Largest request body in bytes on the agents' routes (/neutrino/v1/: port status batches "
        "of a whole host, agent reports); the body is read only after the token is checked.",
        False,
    ),
    _O(
        "DEFAULT",
        "client_header_timeout",
        int,
        "20",
        "Seconds a client has to send a request line and headers, from connecting (or from a "
        "keep-alive request's first byte): else 408 and the connection is closed.  A connection "
        "that sends nothing is closed after the same time.",
        False,
    ),
    _O(
        "DEFAULT",
        "client_socket_timeout",
        int,
        "60",
        "Seconds a request body may stall (no bytes received) before 408 and the connection is "
        "closed; 0: no bound (Neutron's default: 900).",
        True,
    ),
    _O(
        "DEFAULT",
        "max_request_header_size",
        int,
        "65536",
        "Largest request line plus headers in bytes (431 beyond it).",
        False,
    ),
    _O(
        "DEFAULT",
        "max_connections",
        int,
        "1000",
        "Open connections per API and server process over which a request is answered 503 and its "
        "connection closed (0: no bound).  Agents hold one long-poll connection each.",
        False,
    ),
    _O("DEFAULT", "max_allocation_pools", int, "1000", "Most allocation pools per subnet (400 beyond it).", False),
    # --- [database] ------------------------------------------------------------
    _O("database", "connection", str, "", "SQLAlchemy URL; empty: SQLite in the state directory."),
    # --- [ml2] ---------------------------------------------------------------
    _O("ml2", "type_drivers", _list, "local,flat,vlan,vxlan,geneve", "Network type drivers to load."),
    _O("ml2", "tenant_network_types", _list, "vxlan", "Ordered network types to allocate project networks from."),
    _O("ml2", "mechanism_drivers", _list, "openvswitch,l2population", "Mechanism drivers."),
    _O("ml2", "extension_drivers", _list, "port_security,dns", "Extension drivers."),
    _O("ml2", "path_mtu", int, "0", "Maximum IP packet size on the overlay path (0: global_physnet_mtu)."),
    _O("ml2", "physical_network_mtus", _dict_int, "", "physnet:mtu pairs for flat and VLAN networks."),
    _O("ml2", "overlay_ip_version", int, "4", "IP version of the tunnel underlay (4 or 6)."),
    _O("ml2", "external_network_type", str, "", "Type for external networks created without provider attributes."),
    _O("ml2_type_flat", "flat_networks", _list, "*", "Physical networks usable for flat networks ('*' = any)."),
    _O(
        "ml2_type_vlan",
        "network_vlan_ranges",
        _list,
        "",
        "physnet[:min:max] entries; a bare physnet means VLANs 1-4094.",
    ),
    _O("ml2_type_vxlan", "vni_ranges", _list, "", "min:max VNI ranges for project VXLAN networks."),
    _O("ml2_type_geneve", "vni_ranges", _list, "", "min:max VNI ranges for project Geneve networks."),
    _O("ml2_type_geneve", "max_header_size", int, "30", "Geneve encapsulation header size."),
    # --- [quotas] ------------------------------------------------------------
    _O("quotas", "default_quota", int, "-1", "Default for resources without their own quota."),
    _O("quotas", "quota_network", int, "100", "Networks per project."),
    _O("quotas", "quota_subnet", int, "100", "Subnets per project."),
    _O("quotas", "quota_port", int, "500", "Ports per project."),
    _O("quotas", "quota_router", int, "10", "Routers per project."),
    _O("quotas", "quota_floatingip", int, "50", "Floating IPs per project."),
    _O("quotas", "quota_security_group", int, "10", "Security groups per project."),
    _O("quotas", "quota_security_group_rule", int, "100", "Security group rules per project."),
    _O("quotas", "quota_rbac_policy", int, "10", "RBAC policies per project."),
    _O("quotas", "quota_router_route", int, "30", "Extra routes per router."),
    _O("quotas", "quota_subnetpool", int, "-1", "Subnet pools per project."),
    # --- [identity] (Keystone's options where it has them) -------------------
    _O("identity", "bind_host", str, "127.0.0.1", "Address the Keystone v3 API listens on.", False),
    _O("identity", "bind_port", int, "5000", "Port of the Keystone v3 API.", False),
    _O("identity", "region", str, "RegionOne", "Region name in the service catalog.", False),
    _O("identity", "public_host", str, "", "Host name put into catalog URLs (default: bind_host).", False),
    _O("token", "expiration", int, "3600", "Token lifetime in seconds (Keystone's [token] expiration)."),
    _O("fernet_tokens", "key_repository", str, "", "Directory of Fernet keys (default: STATE/fernet-keys)."),
    _O(
        "identity",
        "login_throttle_failures",
        int,
        "5",
        "Failed password logins of one user from one client address let through before that address "
        "is throttled for that user (0: no throttling).  Other addresses are not affected.",
        False,
    ),
    _O(
        "identity",
        "login_throttle_delay",
        int,
        "1",
        "Seconds a throttled address waits after its first failure over login_throttle_failures; the "
        "wait doubles with each further failure (refused meanwhile with 429).",
        False,
    ),
    _O("identity", "login_throttle_max_delay", int, "300", "Cap of the throttling wait in seconds.", False),
    _O(
        "security_compliance",
        "lockout_failure_attempts",
        int,
        "0",
        "Consecutive failed logins (from anywhere) after which a user is locked (401 \"The account is "
        "locked\") for lockout_duration; 0: never.",
    ),
    _O(
        "security_compliance",
        "lockout_duration",
        int,
        "1800",
        "Seconds a locked user stays locked (0: until an admin sets the user enabled again).",
    ),
    # --- agents (openvswitch_agent.ini / [AGENT] names) -----------------------
    _O("ovs", "integration_bridge", str, "br-int", "Integration bridge."),
    _O("ovs", "tunnel_bridge", str, "br-tun", "Tunnel bridge."),
    _O("ovs", "int_peer_patch_port", str, "patch-tun", "Patch port on the integration bridge to the tunnel bridge."),
    _O("ovs", "tun_peer_patch_port", str, "patch-int", "Patch port on the tunnel bridge to the integration bridge."),
    _O("ovs", "local_ip", str, "", "This host's tunnel endpoint (VTEP) address; required for tunnels."),
    _O("ovs", "bridge_mappings", _dict_str, "", "physnet:bridge pairs (the bridges are created if missing)."),
    _O(
        "ovs",
        "datapath_type",
        str,
        "auto",
        "system, netdev, or auto (system when the openvswitch kernel module is loaded, else netdev).",
    ),
    _O(
        "ovs",
        "host_netns",
        str,
        "auto",
        "Namespace this host's OVS and agent-owned devices live in: auto (a private one per state "
        "directory, so nothing is added to the machine's own namespace), or empty for the root "
        "namespace.",
        False,
    ),
    _O(
        "ovs",
        "ovs_rundir",
        str,
        "",
        "Run directory of an OVS instance run by someone else (the host's own, or a test fabric's): "
        "`neutrino up` uses it and neither starts nor stops it.  Empty: a private one in STATE/ovs, "
        "started by `up` and stopped by `down`.",
        False,
    ),
    _O("agent", "tunnel_types", _list, "vxlan", "Tunnel types this host's OVS agent serves."),
    _O("agent", "l2_population", _bool, "true", "Use l2population (flood only where ports are)."),
    _O("agent", "arp_responder", _bool, "true", "Answer ARP for remote ports locally (with l2_population)."),
    _O(
        "agent",
        "polling_interval",
        int,
        "1",
        "Seconds between checks of the host (Neutron: 2); feed changes are handled at once.",
    ),
    _O("agent", "report_interval", int, "30", "Seconds between heartbeats."),
    _O("agent", "availability_zone", str, "nova", "Availability zone of this host's agents."),
    # --- [securitygroup] -------------------------------------------------------
    _O(
        "securitygroup",
        "enable_security_group",
        _bool,
        "true",
        "Enforce security groups on ports with port security (false: anti-spoofing only).",
    ),
    _O(
        "securitygroup",
        "firewall_driver",
        _firewall_driver,
        "openvswitch",
        "openvswitch: stateful OVS conntrack firewall (tables 71-94); noop: no filtering.",
    ),
    # --- [feed] ----------------------------------------------------------------
    _O(
        "feed", "retention", int, "200000", "Change-log rows kept; an agent further behind gets a full snapshot.", False
    ),
    # --- [compute] / [image]: the Nova v2.1 and Glance v2 subsets --------------------------
    _O("compute", "bind_host", str, "127.0.0.1", "Address the Compute API (Nova v2.1 subset) listens on.", False),
    _O("compute", "bind_port", int, "8774", "Port of the Compute API.", False),
    _O("image", "bind_host", str, "127.0.0.1", "Address the Image API (Glance v2 subset) listens on.", False),
    _O("image", "bind_port", int, "9292", "Port of the Image API.", False),
    # --- DHCP (neutron.conf and dhcp_agent.ini [DEFAULT] options, one file) ------------------
    _O(
        "DEFAULT",
        "network_auto_schedule",
        _bool,
        "true",
        "A DHCP agent that registers, restarts or revives takes the networks with DHCP subnets "
        "that have fewer than dhcp_agents_per_network agents.",
    ),
    _O(
        "DEFAULT",
        "allow_automatic_dhcp_failover",
        _bool,
        "true",
        "Move networks from dead DHCP agents to live ones (checked when a live DHCP agent reports).",
    ),
    _O(
        "DEFAULT",
        "dhcp_confs",
        str,
        "",
        "Directory of the dnsmasq configuration directories (default: /run/neutrino/dhcp-<id of the "
        "state directory>; dnsmasq drops to user nobody, so every directory on the path must be "
        "searchable by others).",
    ),
    _O("DEFAULT", "dhcp_lease_duration", int, "86400", "DHCP lease time in seconds (-1: infinite)."),
    _O(
        "DEFAULT",
        "enable_isolated_metadata",
        _bool,
        "false",
        "Serve metadata (169.254.169.254) from the DHCP namespace of networks with an isolated subnet.",
    ),
    _O(
        "DEFAULT",
        "force_metadata",
        _bool,
        "false",
        "Serve metadata from the DHCP namespace of every network with DHCP.",
    ),
    _O("DEFAULT", "dnsmasq_dns_servers", _list, "", "Upstream DNS servers dnsmasq forwards to (--server)."),
    _O(
        "DEFAULT",
        "dnsmasq_local_resolv",
        _bool,
        "false",
        "Let dnsmasq use the host's resolv.conf (no --no-resolv) when dnsmasq_dns_servers is empty.",
    ),
    _O("DEFAULT", "dhcp_renewal_time", int, "0", "DHCP renewal time T1 in seconds (0: dnsmasq's default)."),
    _O("DEFAULT", "dhcp_rebinding_time", int, "0", "DHCP rebinding time T2 in seconds (0: dnsmasq's default)."),
    _O("DEFAULT", "dnsmasq_lease_max", int, "16777216", "Upper bound of --dhcp-lease-max per network."),
    # --- L3 scheduling (neutron.conf) ------------------------------------------------------------
    _O(
        "DEFAULT",
        "router_auto_schedule",
        _bool,
        "true",
        "Schedule routers to a live L3 agent at create; an L3 agent that registers, restarts or "
        "revives takes the routers without an agent.",
    ),
    _O(
        "DEFAULT",
        "allow_automatic_l3agent_failover",
        _bool,
        "true",
        "Move routers from dead L3 agents to live ones (checked when a live L3 agent reports; "
        "Neutron's default is false).",
    ),
    # --- [metadata]: metadata_agent.ini's options (Neutron names; one file, own section) ----------------
    _O(
        "metadata",
        "metadata_proxy_socket",
        str,
        "",
        "Unix socket the metadata agent listens on and the haproxy metadata proxies forward to "
        "(default: /run/neutrino/metadata-<id of the state directory>/metadata_proxy, in a directory "
        "only root and metadata_proxy_group may enter).  The socket is mode 0660, group "
        "metadata_proxy_group: every directory on its path must be searchable by that group.",
    ),
    _O(
        "metadata",
        "metadata_proxy_user",
        str,
        "",
        "User the haproxy metadata proxies run as once they have bound their addresses (empty: "
        "haproxy if that user exists, else nobody; Neutron: the agent's user).",
    ),
    _O(
        "metadata",
        "metadata_proxy_group",
        str,
        "",
        "Group of the haproxy metadata proxies; only it (and root) may connect to the metadata socket "
        "(empty: the primary group of metadata_proxy_user).",
    ),
    _O("metadata", "nova_metadata_host", str, "127.0.0.1", "Host of the Nova metadata API."),
    _O("metadata", "nova_metadata_port", int, "8775", "Port of the Nova metadata API."),
    _O(
        "metadata",
        "nova_metadata_protocol",
        str,
        "http",
        "Protocol of the Nova metadata API (http or https); https, with this node's client certificate, "
        "whenever [DEFAULT] use_ssl is on.",
    ),
    _O(
        "metadata",
        "metadata_proxy_shared_secret",
        str,
        "",
        "Secret shared with the Nova metadata API; signs X-Instance-ID (HMAC-SHA256).",
    ),
    _O(
        "metadata",
        "bind_host",
        str,
        "127.0.0.1",
        "Address the metadata API (Nova's metadata handler) listens on.",
        False,
    ),
    _O("metadata", "bind_port", int, "8775", "Port of the metadata API.", False),
    _O(
        "metadata",
        "metadata_cache_expiration",
        int,
        "15",
        "Seconds an instance's metadata is cached by the metadata API (Nova's [api] option; 0: off).",
        False,
    ),
    _O(
        "metadata",
        "http_tokens",
        str,
        "optional",
        "IMDSv2 session tokens: optional (requests without X-aws-ec2-metadata-token are served) or "
        "required (they answer 401).",
        False,
    ),
    _O(
        "metadata",
        "dhcp_domain",
        str,
        "novalocal",
        "Domain appended to instance hostnames in metadata (Nova's [api] dhcp_domain; empty: bare hostname).",
        False,
    ),
    # --- [lab]: the all-in-one's lab host on physnet `physnet` ----------------------------------
    _O(
        "lab",
        "host_netns",
        str,
        "lab-host",
        "Network namespace playing the lab host / network node gateway, bridged to br-phys (physnet "
        "`physnet`) by `neutrino up`; empty: none.  Never the machine's own namespace.",
        False,
    ),
    _O("lab", "cidr", str, "172.16.0.1/24", "Address/prefix of the lab host's interface lab0.", False),
    # --- TLS (docs/tls.md): Neutron's [DEFAULT] names, our [pki] section ---------------------------
    _O(
        "DEFAULT",
        "use_ssl",
        _bool,
        "true",
        "Serve every API over TLS (HTTPS) and let agents authenticate with client certificates; "
        "false only with `neutrino up --no-tls` (plain HTTP, agents log in with a password).",
    ),
    _O(
        "DEFAULT",
        "ssl_cert_file",
        str,
        "",
        "Certificate chain the APIs present (leaf first; default: STATE/pki/server.pem).",
    ),
    _O("DEFAULT", "ssl_key_file", str, "", "Private key of ssl_cert_file (default: STATE/pki/server.key)."),
    _O(
        "DEFAULT",
        "ssl_ca_file",
        str,
        "",
        "CA certificate that client certificates must chain to, and that agents trust for the "
        "server (default: STATE/pki/ca.pem).",
    ),
    _O(
        "pki",
        "crl_file",
        str,
        "",
        "Certificate revocation list the server checks client certificates against, re-read when "
        "it changes (default: STATE/pki/crl.pem).",
        False,
    ),
    _O(
        "pki",
        "client_cert_file",
        str,
        "",
        "This node's client certificate chain, presented by its agents (default: STATE/pki/node.pem).",
        False,
    ),
    _O("pki", "client_key_file", str, "", "Private key of client_cert_file (default: STATE/pki/node.key).", False),
    _O(
        "pki",
        "expiry_warning_days",
        int,
        "30",
        "`neutrino status` and `neutrino pki show` warn about certificates that expire within this many days.",
        False,
    ),
    _O(
        "pki",
        "reload_interval",
        _interval,
        "2",
        "Seconds between the server's looks at its certificate, key and CRL files (changed files are "
        "loaded for new connections; SIGHUP loads them at once).",
        False,
    ),
)

_BY_KEY = {(o.section, o.name): o for o in OPTIONS}


class Section(Mapping[str, Any]):
    """One section's options: typed attributes, and a read-only mapping by option name.

    Each subclass below is a frozen dataclass whose fields are exactly the options
    ``OPTIONS`` declares for its section, typed as their parsers return them, so a
    misspelt option is an error for the type checker (``tests/unit/test_config.py``
    checks that the classes and ``OPTIONS`` agree).  The mapping view serves generic
    code (``Config.with_overrides``).
    """

    # Declared (set on every subclass by @dataclass) so that ``dataclasses.fields`` types.
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


# One class per section, its fields in the order of OPTIONS (parsers: str, int, _bool -> bool,
# _list -> tuple[str, ...], _dict_int -> Mapping[str, int], _dict_str -> Mapping[str, str]).


@dataclass(frozen=True)
class DefaultSection(Section):
    """[DEFAULT]"""

    bind_host: str
    bind_port: int
    api_workers: int
    global_physnet_mtu: int
    base_mac: str
    dns_domain: str
    agent_down_time: int
    dhcp_agents_per_network: int
    max_dns_nameservers: int
    max_subnet_host_routes: int
    max_allowed_address_pair: int
    pagination_max_limit: int
    enable_snat_by_default: bool
    debug: bool
    host: str
    roles: tuple[str, ...]
    server_url: str
    max_agent_request_body_size: int
    client_header_timeout: int
    client_socket_timeout: int
    max_request_header_size: int
    max_connections: int
    max_allocation_pools: int
    network_auto_schedule: bool
    allow_automatic_dhcp_failover: bool
    dhcp_confs: str
    dhcp_lease_duration: int
    enable_isolated_metadata: bool
    force_metadata: bool
    dnsmasq_dns_servers: tuple[str, ...]
    dnsmasq_local_resolv: bool
    dhcp_renewal_time: int
    dhcp_rebinding_time: int
    dnsmasq_lease_max: int
    router_auto_schedule: bool
    allow_automatic_l3agent_failover: bool
    use_ssl: bool
    ssl_cert_file: str
    ssl_key_file: str
    ssl_ca_file: str


@dataclass(frozen=True)
class OsloMiddlewareSection(Section):
    """[oslo_middleware]"""

    max_request_body_size: int


@dataclass(frozen=True)
class DatabaseSection(Section):
    """[database]"""

    connection: str


@dataclass(frozen=True)
class Ml2Section(Section):
    """[ml2]"""

    type_drivers: tuple[str, ...]
    tenant_network_types: tuple[str, ...]
    mechanism_drivers: tuple[str, ...]
    extension_drivers: tuple[str, ...]
    path_mtu: int
    physical_network_mtus: Mapping[str, int]
    overlay_ip_version: int
    external_network_type: str


@dataclass(frozen=True)
class Ml2TypeFlatSection(Section):
    """[ml2_type_flat]"""

    flat_networks: tuple[str, ...]


@dataclass(frozen=True)
class Ml2TypeVlanSection(Section):
    """[ml2_type_vlan]"""

    network_vlan_ranges: tuple[str, ...]


@dataclass(frozen=True)
class Ml2TypeVxlanSection(Section):
    """[ml2_type_vxlan]"""

    vni_ranges: tuple[str, ...]


@dataclass(frozen=True)
class Ml2TypeGeneveSection(Section):
    """[ml2_type_geneve]"""

    vni_ranges: tuple[str, ...]
    max_header_size: int


@dataclass(frozen=True)
class QuotasSection(Section):
    """[quotas]"""

    default_quota: int
    quota_network: int
    quota_subnet: int
    quota_port: int
    quota_router: int
    quota_floatingip: int
    quota_security_group: int
    quota_security_group_rule: int
    quota_rbac_policy: int
    quota_router_route: int
    quota_subnetpool: int


@dataclass(frozen=True)
class IdentitySection(Section):
    """[identity]"""

    bind_host: str
    bind_port: int
    region: str
    public_host: str
    login_throttle_failures: int
    login_throttle_delay: int
    login_throttle_max_delay: int


@dataclass(frozen=True)
class TokenSection(Section):
    """[token]"""

    expiration: int


@dataclass(frozen=True)
class FernetTokensSection(Section):
    """[fernet_tokens]"""

    key_repository: str


@dataclass(frozen=True)
class SecurityComplianceSection(Section):
    """[security_compliance]"""

    lockout_failure_attempts: int
    lockout_duration: int


@dataclass(frozen=True)
class OvsSection(Section):
    """[ovs]"""

    integration_bridge: str
    tunnel_bridge: str
    int_peer_patch_port: str
    tun_peer_patch_port: str
    local_ip: str
    bridge_mappings: Mapping[str, str]
    datapath_type: str
    host_netns: str
    ovs_rundir: str


@dataclass(frozen=True)
class AgentSection(Section):
    """[agent]"""

    tunnel_types: tuple[str, ...]
    l2_population: bool
    arp_responder: bool
    polling_interval: int
    report_interval: int
    availability_zone: str


@dataclass(frozen=True)
class SecuritygroupSection(Section):
    """[securitygroup]"""

    enable_security_group: bool
    firewall_driver: str


@dataclass(frozen=True)
class FeedSection(Section):
    """[feed]"""

    retention: int


@dataclass(frozen=True)
class ComputeSection(Section):
    """[compute]"""

    bind_host: str
    bind_port: int


@dataclass(frozen=True)
class ImageSection(Section):
    """[image]"""

    bind_host: str
    bind_port: int


@dataclass(frozen=True)
class MetadataSection(Section):
    """[metadata]"""

    metadata_proxy_socket: str
    metadata_proxy_user: str
    metadata_proxy_group: str
    nova_metadata_host: str
    nova_metadata_port: int
    nova_metadata_protocol: str
    metadata_proxy_shared_secret: str
    bind_host: str
    bind_port: int
    metadata_cache_expiration: int
    http_tokens: str
    dhcp_domain: str


@dataclass(frozen=True)
class LabSection(Section):
    """[lab]"""

    host_netns: str
    cidr: str


@dataclass(frozen=True)
class PkiSection(Section):
    """[pki]"""

    crl_file: str
    client_cert_file: str
    client_key_file: str
    expiry_warning_days: int
    reload_interval: float


@dataclass(frozen=True)
class Config:
    """A validated, frozen configuration: one typed attribute per section, named as the
    INI section (``default`` is [DEFAULT]).  ``state_dir`` is where files live."""

    state_dir: Path
    default: DefaultSection
    oslo_middleware: OsloMiddlewareSection
    database: DatabaseSection
    ml2: Ml2Section
    ml2_type_flat: Ml2TypeFlatSection
    ml2_type_vlan: Ml2TypeVlanSection
    ml2_type_vxlan: Ml2TypeVxlanSection
    ml2_type_geneve: Ml2TypeGeneveSection
    quotas: QuotasSection
    identity: IdentitySection
    token: TokenSection
    fernet_tokens: FernetTokensSection
    security_compliance: SecurityComplianceSection
    ovs: OvsSection
    agent: AgentSection
    securitygroup: SecuritygroupSection
    feed: FeedSection
    compute: ComputeSection
    image: ImageSection
    metadata: MetadataSection
    lab: LabSection
    pki: PkiSection

    @property
    def sections(self) -> Mapping[str, Section]:
        """Every section by its INI name ("DEFAULT", "ml2", ...)."""
        return MappingProxyType({ini: getattr(self, attr) for ini, attr in _SECTION_ATTRS.items()})

    @property
    def database_url(self) -> str:
        return self.database.connection or f"sqlite:///{self.state_dir / 'neutrino.db'}"

    def with_overrides(self, overrides: Mapping[tuple[str, str], str]) -> Config:
        raw = {(s, k): v for s, sec in self.sections.items() for k, v in sec.items()}
        parsed = dict(raw)
        for key, text in overrides.items():
            parsed[key] = _parse(key, text)
        return _build(self.state_dir, parsed)


#: INI section name -> ``Config`` attribute, and -> its typed class (from Config's fields).
_SECTION_ATTRS: Mapping[str, str] = MappingProxyType(
    {
        ("DEFAULT" if f.name == "default" else f.name): f.name
        for f in dataclasses.fields(Config)
        if f.name != "state_dir"
    }
)
_SECTION_TYPES: Mapping[str, type[Section]] = MappingProxyType(
    {ini: get_type_hints(Config)[attr] for ini, attr in _SECTION_ATTRS.items()}
)


class _CaseKeepingParser(configparser.ConfigParser):
    """An INI parser that keeps option names as written (configparser lower-cases them)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _parse(key: tuple[str, str], text: str) -> Any:
    opt = _BY_KEY.get(key)
    if opt is None:
        raise ConfigError(f"unknown option [{key[0]}] {key[1]}")
    try:
        return opt.type(text)
    except ValueError as exc:
        raise ConfigError(f"[{key[0]}] {key[1]} = {text!r}: {exc}") from exc


def _build(state_dir: Path, values: dict[tuple[str, str], Any]) -> Config:
    """A ``Config`` of ``values``, which hold every option (by (section, name)) parsed."""
    by_section: dict[str, dict[str, Any]] = {ini: {} for ini in _SECTION_TYPES}
    for (sec, name), val in values.items():
        by_section[sec][name] = val
    sections: dict[str, Any] = {_SECTION_ATTRS[ini]: cls(**by_section[ini]) for ini, cls in _SECTION_TYPES.items()}
    return Config(Path(state_dir), **sections)


def defaults(state_dir: Path | str) -> Config:
    """The configuration with every option at its default."""
    return _build(Path(state_dir), {(o.section, o.name): o.type(o.default) for o in OPTIONS})


def load(
    path: Path | str, state_dir: Path | str | None = None, overrides: Iterable[tuple[str, str, str]] = ()
) -> Config:
    """Parse ``path`` against the schema.

    Raises ``ConfigError`` for unknown sections or options and for values that
    do not convert; nothing is half-applied.
    """
    path = Path(path)
    parser = _CaseKeepingParser(interpolation=None, default_section="__none__")
    try:
        with path.open() as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    values = {(o.section, o.name): o.type(o.default) for o in OPTIONS}
    for sec in parser.sections():
        for name, text in parser.items(sec):
            values[(sec, name)] = _parse((sec, name), text)
    for sec, name, text in overrides:
        values[(sec, name)] = _parse((sec, name), text)
    return _build(Path(state_dir) if state_dir else path.parent, values)


ALL_IN_ONE = {
    ("ml2", "tenant_network_types"): "vxlan",
    ("ml2_type_flat", "flat_networks"): "physnet",
    ("ml2_type_vlan", "network_vlan_ranges"): "physnet:100:200",
    ("ml2_type_vxlan", "vni_ranges"): "1:1000",
    ("ml2_type_geneve", "vni_ranges"): "1:1000",
    ("ovs", "bridge_mappings"): "physnet:br-phys",
    # One host: br-tun exists (no peers yet), so tunnelled networks switch locally.
    ("ovs", "local_ip"): "127.0.0.1",
    # Networks without a router still get metadata (served from their DHCP namespace).
    ("DEFAULT", "enable_isolated_metadata"): "true",
}


def render_ini(values: Mapping[tuple[str, str], str]) -> str:
    """Render an INI file: the given values set, every other option as a commented default."""
    out: list[str] = ["# Neutrino configuration. Option names follow Neutron's where Neutron has one.", ""]
    seen: list[str] = []
    for o in OPTIONS:
        if o.section not in seen:
            seen.append(o.section)
    for sec in seen:
        out.append(f"[{sec}]")
        for o in OPTIONS:
            if o.section != sec:
                continue
            out.append(f"# {o.help}")
            if (sec, o.name) in values:
                out.append(f"{o.name} = {values[(sec, o.name)]}")
            else:
                out.append(f"#{o.name} = {o.default}")
        out.append("")
    return "\n".join(out)


def describe() -> list[dict[str, Any]]:
    """Option reference (for docs and ``neutrino check-config``)."""
    return [dataclasses.asdict(o) | {"type": o.type.__name__} for o in OPTIONS]


#: Where Neutron (or Keystone) has a section's options: file and section.
_NEUTRON_FILES = {
    "DEFAULT": "neutron.conf [DEFAULT]",
    "database": "neutron.conf [database]",
    "oslo_middleware": "neutron.conf [oslo_middleware]",
    "quotas": "neutron.conf [quotas]",
    "ml2": "ml2_conf.ini [ml2]",
    "ml2_type_flat": "ml2_conf.ini [ml2_type_flat]",
    "ml2_type_vlan": "ml2_conf.ini [ml2_type_vlan]",
    "ml2_type_vxlan": "ml2_conf.ini [ml2_type_vxlan]",
    "ml2_type_geneve": "ml2_conf.ini [ml2_type_geneve]",
    "token": "keystone.conf [token]",
    "fernet_tokens": "keystone.conf [fernet_tokens]",
    "security_compliance": "keystone.conf [security_compliance]",
    "ovs": "openvswitch_agent.ini [ovs]",
    "agent": "openvswitch_agent.ini [agent]",
    "securitygroup": "openvswitch_agent.ini [securitygroup]",
    "metadata": "metadata_agent.ini [DEFAULT]",
}
#: [DEFAULT] options that Neutron reads from dhcp_agent.ini.
_DHCP_AGENT_OPTIONS = frozenset(
    {
        "dhcp_confs",
        "enable_isolated_metadata",
        "force_metadata",
        "dnsmasq_dns_servers",
        "dnsmasq_local_resolv",
        "dhcp_renewal_time",
        "dhcp_rebinding_time",
        "dnsmasq_lease_max",
    }
)


def neutron_location(o: Option) -> str:
    """Neutron's file and section for ``o`` ("" for an option of our own)."""
    if not o.neutron_name:
        return ""
    if o.section == "DEFAULT" and o.name in _DHCP_AGENT_OPTIONS:
        return "dhcp_agent.ini [DEFAULT]"
    return _NEUTRON_FILES.get(o.section, f"[{o.section}]")


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md is this text; a test keeps them equal)."""
    out = [
        "# Configuration reference",
        "",
        "One INI file, `STATE_DIR/neutrino.conf` (written on the first `neutrino up`): every",
        "option below, its default, and where Neutron (or Keystone) has the same option — Neutron",
        "spreads them over several files, neutrino keeps Neutron's section and option names in one.",
        "Options whose Neutron column says *neutrino* are our own.  Unknown options and bad values",
        "are refused at start (`neutrino check-config` validates a file).  Every node of a",
        "multi-node set-up reads the same schema ([multinode.md](multinode.md)).",
        "",
    ]
    section = None
    order = list(dict.fromkeys(o.section for o in OPTIONS))  # one table per section
    for o in sorted(OPTIONS, key=lambda o: order.index(o.section)):
        if o.section != section:
            section = o.section
            out += ["", f"## [{section}]", "", "| option | default | Neutron | meaning |", "|---|---|---|---|"]
        where = f"`{neutron_location(o)}`" if o.neutron_name else "*neutrino*"
        default = o.default if o.default != "" else "(empty)"
        out.append(f"| `{o.name}` | `{default}` | {where} | {o.help} |")
    out += ["", "## All-in-one defaults written by `neutrino up`", ""]
    for (sec, name), val in ALL_IN_ONE.items():
        out.append(f"- `[{sec}] {name} = {val}`")
    return "\n".join(out) + "\n"
