"""Agents authenticated by their client certificates (issue 16): who a verified peer is and what it may do.

With TLS on, an agent presents its node's client certificate (``CN=<host>,
OU=<role>, O=Neutrino``) and sends no token.  The TLS layer verifies the
certificate against the cloud's CA and puts the peer in the ASGI scope
(``scope[PEER_KEY]``: ``host``, ``role``, ``serial``, ``subject``); this module
is the one place that turns it into an agent identity and decides what that
identity may ask for.  The edges call it before any handler runs, so a refused
request changes nothing:

* the network API (``neutrino.api.app``): ``/neutrino/v1/`` (the feed, the
  reports, the compute agents' ``servers``) and the agents' ``/v2.0/ports``
  calls (DHCP ports, router port bindings);
* the metadata API (``neutrino.metadata.app``): the metadata agent.

Rules (each refusal is ``AgentNotAuthorized``, 403, naming the certificate):

* a role runs the agent types of ``ROLE_AGENT_TYPES`` (compute: Open vSwitch
  and compute agents; network: Open vSwitch, DHCP, L3 and metadata agents;
  controller: none; all: every type); a request that only an agent type
  the role does not run makes is refused;
* a request about a host names the certificate's host (CN): a report's
  ``agent.host``, the ``host`` of a port or floating IP status batch or of a
  server state, the ``binding:host_id`` a port is given;
* ``/v2.0/ports`` with a certificate: only what the DHCP and L3 agents do (create
  this host's DHCP port, change its fixed IPs, delete it; bind a router's port
  to this host when the router is scheduled to an L3 agent of this host);
* a revoked serial is refused at the handshake, and per request on a
  connection kept alive from before the revocation by the HTTP layer
  (``neutrino.request_limits``); ``identify(scope, revoked)`` checks it too
  when given the server's CRL.

With TLS on, a request without a certificate gets 401
``ClientCertificateRequired`` on the agent endpoints; the cloud admin's token is
the admin with or without a certificate (the admin tools read the feed), any
other token counts for nothing there (the agents' password is not a way in).
With TLS off (``--no-tls``) the token rules stay as they were (admin or
service role).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.pki.tls import PEER_SCOPE_KEY, Peer

#: Where the TLS layer puts the verified client certificate's ``Peer`` in the ASGI scope.
PEER_KEY = PEER_SCOPE_KEY

OVS_AGENT = "Open vSwitch agent"
DHCP_AGENT = "DHCP agent"
L3_AGENT = "L3 agent"
METADATA_AGENT = "Metadata agent"
COMPUTE_AGENT = "Compute agent"
ALL_AGENT_TYPES = frozenset({OVS_AGENT, DHCP_AGENT, L3_AGENT, METADATA_AGENT, COMPUTE_AGENT})

#: A node role (the certificate's OU) -> the agent types a node of that role runs.
ROLE_AGENT_TYPES: Mapping[str, frozenset[str]] = {
    "compute": frozenset({OVS_AGENT, COMPUTE_AGENT}),
    "network": frozenset({OVS_AGENT, DHCP_AGENT, L3_AGENT, METADATA_AGENT}),
    "controller": frozenset(),
    "all": ALL_AGENT_TYPES,
}

#: The route prefix of the agents' endpoints on the network API (``neutrino.feed.routes.PREFIX``).
AGENT_PREFIX = "/neutrino/v1/"
#: Port fields an agent's certificate may change with ``PUT /v2.0/ports/{id}``.
AGENT_PORT_FIELDS = frozenset({"fixed_ips", "binding:host_id"})
DHCP_OWNER = "network:dhcp"
ROUTER_OWNER_PREFIX = "network:router"


@dataclass(frozen=True)
class AgentIdentity:
    """An agent as its certificate names it: ``host`` (CN), ``role`` (OU), ``serial``, ``subject``."""

    host: str
    role: str
    serial: int
    subject: str

    @property
    def agent_types(self) -> frozenset[str]:
        return ROLE_AGENT_TYPES.get(self.role, frozenset())

    def context(self, request_id: str = "") -> RequestContext:
        """The request context of this agent: the ``service`` role, as the agents' service user had."""
        return RequestContext(f"agent:{self.host}", "", frozenset({"service"}), request_id)

    def refuse(self, why: str) -> errors.AgentNotAuthorized:
        return errors.AgentNotAuthorized(msg=f"The client certificate {self.subject} (serial {self.serial:x}) {why}.")

    def need(self, *agent_types: str) -> None:
        """Refuse unless the role runs one of ``agent_types``."""
        if not self.agent_types.intersection(agent_types):
            wanted = " or ".join(agent_types)
            raise self.refuse(f"has role {self.role!r}, which may not run the {wanted}")

    def need_any(self) -> None:
        if not self.agent_types:
            raise self.refuse(f"has role {self.role!r}, which runs no agent")

    def same_host(self, claimed: Any, what: str) -> None:
        """Refuse unless ``claimed`` (a host named in the request) is this certificate's host."""
        if claimed != self.host:
            raise self.refuse(f"is for host {self.host!r} and may not act for {what} {claimed!r}")


def tls_on(scope: Mapping[str, Any]) -> bool:
    """Whether the request came over TLS (the listener serves https)."""
    return scope.get("scheme") in ("https", "wss")


def identify(scope: Mapping[str, Any], revoked: Callable[[int], bool] | None = None) -> AgentIdentity | None:
    """The agent of a request with a verified client certificate, else None.

    ``revoked(serial)`` is the server's current CRL: a revoked certificate (a
    connection kept alive from before the revocation) is refused 403."""
    peer: Peer | None = scope.get(PEER_KEY)
    if peer is None:
        return None
    agent = AgentIdentity(peer.host, peer.role, peer.serial, peer.subject)
    if revoked is not None and revoked(peer.serial):
        raise agent.refuse("is revoked")
    return agent


def require(scope: Mapping[str, Any], revoked: Callable[[int], bool] | None = None) -> AgentIdentity:
    """The request's agent; ``ClientCertificateRequired`` (401) without a verified certificate."""
    agent = identify(scope, revoked)
    if agent is None:
        raise errors.ClientCertificateRequired()
    return agent


def is_agent_path(path: str) -> bool:
    return path.startswith(AGENT_PREFIX)


def _field(body: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


# --- /neutrino/v1/ ------------------------------------------------------------------------------
def authorize_agent_route(agent: AgentIdentity, route: str, method: str, query: Mapping[str, str], body: Any) -> None:
    """Refuse what ``agent`` may not do on ``/neutrino/v1/<route>`` (``route`` without slashes at the ends).

    ``body`` is the parsed JSON body (None when there is none).  Unknown
    routes pass: the handler answers 404/405 for them and changes nothing."""
    parts = [p for p in route.split("/") if p]
    if not parts:
        return
    head = parts[0]
    if head in ("snapshot", "changes"):
        agent.need_any()
    elif route == "agents/report":
        agent.need_any()
        agent_type = _field(body, "agent", "agent_type")
        if agent_type not in agent.agent_types:
            raise agent.refuse(f"has role {agent.role!r}, which may not run the {agent_type!r}")
        agent.same_host(_field(body, "agent", "host"), "host")
    elif route == "ports/status":
        agent.need_any()
        agent.same_host(_field(body, "host"), "host")
    elif route == "floatingips/status":
        agent.need(L3_AGENT)
        agent.same_host(_field(body, "host"), "host")
    elif head == "servers":
        agent.need(COMPUTE_AGENT)
        if "host" in query:
            agent.same_host(query["host"], "host")
        if len(parts) == 3 and parts[2] == "state" and method == "POST":
            agent.same_host(_field(body, "host"), "host")


# --- /v2.0/ports ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PortBinding:
    """What the port rules read of an existing port."""

    host: str  # binding:host_id ("" when unbound)
    device_owner: str
    device_id: str
    router_hosts: frozenset[str]  # hosts of the L3 agents its router (device_id) is scheduled to


def port_binding(conn: Connection, port_id: str) -> PortBinding | None:
    """The binding of port ``port_id``, or None when it does not exist (the handler answers 404)."""
    row = conn.execute(
        select(t.ports.c.binding_host_id, t.ports.c.device_owner, t.ports.c.device_id).where(t.ports.c.id == port_id)
    ).first()
    if row is None:
        return None
    hosts: frozenset[str] = frozenset()
    if row.device_owner.startswith(ROUTER_OWNER_PREFIX) and row.device_id:
        hosts = frozenset(
            conn.execute(
                select(t.agents.c.host)
                .join(t.router_l3_agents, t.router_l3_agents.c.agent_id == t.agents.c.id)
                .where(t.router_l3_agents.c.router_id == row.device_id)
            ).scalars()
        )
    return PortBinding(row.binding_host_id, row.device_owner, row.device_id, hosts)


def authorize_port_request(
    agent: AgentIdentity, method: str, parts: list[str], body: Any, current: PortBinding | None
) -> None:
    """Refuse a certificate's ``/v2.0/...`` request unless it is one of the agents' port calls.

    ``parts``: the path after ``/v2.0/`` split on ``/``; ``current``: the
    binding of the port named (``port_binding``), None when there is none."""
    if not parts or parts[0] != "ports" or len(parts) > 2 or (len(parts) == 1) != (method == "POST"):
        raise agent.refuse("authenticates agents only, whose calls here are limited to their own ports")
    if method == "POST":
        agent.need(DHCP_AGENT)
        port = _field(body, "port")
        if not isinstance(port, dict) or port.get("device_owner") != DHCP_OWNER:
            raise agent.refuse("may create only DHCP ports")
        agent.same_host(port.get("binding:host_id"), "binding:host_id")
        return
    if current is None:
        return  # the handler answers 404 and changes nothing
    if method == "DELETE":
        agent.need(DHCP_AGENT)
        if current.device_owner != DHCP_OWNER:
            raise agent.refuse("may delete only DHCP ports")
        agent.same_host(current.host, "a port bound to")
        return
    if method != "PUT":
        raise agent.refuse("authenticates agents only, whose calls here are limited to their own ports")
    port = _field(body, "port")
    if not isinstance(port, dict) or not set(port) <= AGENT_PORT_FIELDS:
        raise agent.refuse(f"may change only {', '.join(sorted(AGENT_PORT_FIELDS))} of a port")
    if "binding:host_id" in port:
        agent.same_host(port["binding:host_id"], "binding:host_id")
    if current.device_owner == DHCP_OWNER:
        agent.need(DHCP_AGENT)
        if current.host not in ("", agent.host):
            agent.same_host(current.host, "a port bound to")
    elif current.device_owner.startswith(ROUTER_OWNER_PREFIX) and set(port) == {"binding:host_id"}:
        agent.need(L3_AGENT)
        if agent.host not in current.router_hosts:
            raise agent.refuse(f"is for host {agent.host!r}, which runs no L3 agent of router {current.device_id}")
    else:
        raise agent.refuse("may change only its DHCP ports and bind its routers' ports")


# --- the metadata API --------------------------------------------------------------------------
def authorize_metadata(agent: AgentIdentity) -> None:
    """The metadata API serves the metadata agent only."""
    agent.need(METADATA_AGENT)


__all__ = [
    "AGENT_PREFIX",
    "ALL_AGENT_TYPES",
    "AgentIdentity",
    "PEER_KEY",
    "PortBinding",
    "ROLE_AGENT_TYPES",
    "authorize_agent_route",
    "authorize_metadata",
    "authorize_port_request",
    "identify",
    "is_agent_path",
    "port_binding",
    "require",
    "tls_on",
]
