"""Agents authenticated by client certificates: roles -> agent types, host checks, the port rules
(``neutrino.services.agent_identity``, pure parts; the edges are tested in tests/api/test_agent_identity.py)."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino import errors
from neutrino.pki.tls import PEER_SCOPE_KEY, Peer
from neutrino.services import agent_identity as ai


def agent(host: str = "compute1", role: str = "compute", serial: int = 0x1F) -> ai.AgentIdentity:
    return ai.AgentIdentity(host, role, serial, f"CN={host},OU={role},O=Neutrino")


def refused(fn: Any, *args: Any, contains: str = "") -> str:
    with pytest.raises(errors.AgentNotAuthorized) as info:
        fn(*args)
    assert info.value.status == 403
    assert contains in info.value.msg, info.value.msg
    return info.value.msg


def test_roles_map_to_the_agent_types_of_the_design() -> None:
    assert ai.ROLE_AGENT_TYPES["compute"] == {"Open vSwitch agent", "Compute agent"}
    assert ai.ROLE_AGENT_TYPES["network"] == {"Open vSwitch agent", "DHCP agent", "L3 agent", "Metadata agent"}
    assert ai.ROLE_AGENT_TYPES["controller"] == frozenset()
    assert ai.ROLE_AGENT_TYPES["all"] == ai.ALL_AGENT_TYPES
    assert agent(role="bogus").agent_types == frozenset()


def test_identify_reads_the_verified_peer_and_refuses_a_revoked_serial() -> None:
    assert ai.identify({"type": "http"}) is None
    peer = Peer("net1", "network", 0xABC, "CN=net1,OU=network,O=Neutrino")
    scope = {"type": "http", "scheme": "https", PEER_SCOPE_KEY: peer}
    got = ai.identify(scope, lambda serial: False)
    assert got == ai.AgentIdentity("net1", "network", 0xABC, "CN=net1,OU=network,O=Neutrino")
    assert got.context("req-1").is_service and not got.context().is_admin
    msg = refused(ai.identify, scope, lambda serial: serial == 0xABC, contains="is revoked")
    assert "CN=net1,OU=network,O=Neutrino" in msg and "serial abc" in msg


def test_require_without_a_certificate_is_401() -> None:
    with pytest.raises(errors.ClientCertificateRequired) as info:
        ai.require({"type": "http", "scheme": "https"})
    assert info.value.status == 401
    assert "client certificate issued by this cloud's CA is required" in info.value.msg


def report(agent_type: str, host: str) -> dict[str, Any]:
    return {"agent": {"agent_type": agent_type, "host": host, "binary": "b", "topic": "t", "configurations": {}}}


def test_reports_name_the_certificates_host_and_an_agent_type_of_its_role() -> None:
    route = ai.authorize_agent_route
    route(agent(), "agents/report", "POST", {}, report("Open vSwitch agent", "compute1"))
    route(agent(), "agents/report", "POST", {}, report("Compute agent", "compute1"))
    refused(route, agent(), "agents/report", "POST", {}, report("Open vSwitch agent", "compute2"), contains="compute2")
    # A compute node's certificate cannot act as an L3 agent (its own host or another's).
    refused(route, agent(), "agents/report", "POST", {}, report("L3 agent", "compute1"), contains="L3 agent")
    refused(route, agent(), "agents/report", "POST", {}, report("L3 agent", "net1"))
    refused(route, agent(), "agents/report", "POST", {}, None)
    route(agent("net1", "network"), "agents/report", "POST", {}, report("L3 agent", "net1"))


def test_status_batches_and_server_states_are_for_the_certificates_host_only() -> None:
    route = ai.authorize_agent_route
    route(agent(), "ports/status", "POST", {}, {"host": "compute1", "ports": {}})
    refused(route, agent(), "ports/status", "POST", {}, {"host": "net1", "ports": {}}, contains="'net1'")
    refused(route, agent(), "floatingips/status", "POST", {}, {"host": "compute1", "floatingips": {}})
    route(agent("net1", "network"), "floatingips/status", "POST", {}, {"host": "net1", "floatingips": {}})
    refused(route, agent("net1", "network"), "floatingips/status", "POST", {}, {"host": "net2", "floatingips": {}})
    route(agent(), "servers/s1/state", "POST", {}, {"status": "ACTIVE", "host": "compute1"})
    refused(route, agent(), "servers/s1/state", "POST", {}, {"status": "ACTIVE", "host": "compute2"})
    refused(route, agent(), "servers/s1/state", "POST", {}, {"status": "ACTIVE"})
    refused(route, agent("net1", "network"), "servers", "GET", {}, None, contains="Compute agent")
    refused(route, agent(), "servers", "GET", {"host": "compute2"}, None)
    route(agent(), "servers", "GET", {"host": "compute1"}, None)


def test_the_feed_is_for_roles_that_run_agents() -> None:
    route = ai.authorize_agent_route
    for role in ("compute", "network", "all"):
        route(agent(role=role), "snapshot", "GET", {}, None)
        route(agent(role=role), "changes", "GET", {"since": "0"}, None)
    refused(route, agent("ctl", "controller"), "snapshot", "GET", {}, None, contains="runs no agent")
    refused(route, agent("ctl", "controller"), "changes", "GET", {}, None)


def binding(host: str, owner: str, router_hosts: tuple[str, ...] = ()) -> ai.PortBinding:
    return ai.PortBinding(
        host, owner, "r1" if owner.startswith("network:router") else "dhcp-x", frozenset(router_hosts)
    )


def test_port_calls_of_the_dhcp_and_l3_agents_and_nothing_else() -> None:
    check = ai.authorize_port_request
    net1 = agent("net1", "network")
    dhcp = {"port": {"network_id": "n", "device_owner": "network:dhcp", "binding:host_id": "net1"}}
    check(net1, "POST", ["ports"], dhcp, None)
    refused(check, agent(), "POST", ["ports"], {"port": {**dhcp["port"], "binding:host_id": "compute1"}}, None)
    refused(check, net1, "POST", ["ports"], {"port": {**dhcp["port"], "binding:host_id": "net2"}}, None)
    refused(check, net1, "POST", ["ports"], {"port": {**dhcp["port"], "device_owner": "compute:nova"}}, None)
    refused(check, net1, "POST", ["ports"], {"ports": [dhcp["port"]]}, None)
    # Its DHCP port: new fixed IPs, bound here.
    check(
        net1, "PUT", ["ports", "p"], {"port": {"fixed_ips": [], "binding:host_id": "net1"}}, binding("", "network:dhcp")
    )
    refused(check, net1, "PUT", ["ports", "p"], {"port": {"fixed_ips": []}}, binding("net2", "network:dhcp"))
    refused(check, net1, "PUT", ["ports", "p"], {"port": {"binding:host_id": "net2"}}, binding("net1", "network:dhcp"))
    refused(check, net1, "PUT", ["ports", "p"], {"port": {"name": "x"}}, binding("net1", "network:dhcp"))
    # A router's port: bound to this host only when the router is scheduled to an L3 agent here.
    put = {"port": {"binding:host_id": "net1"}}
    check(net1, "PUT", ["ports", "p"], put, binding("net2", "network:router_interface", ("net1",)))
    refused(check, net1, "PUT", ["ports", "p"], put, binding("net2", "network:router_interface", ("net2",)))
    refused(
        check,
        agent(),
        "PUT",
        ["ports", "p"],
        {"port": {"binding:host_id": "compute1"}},
        binding("", "network:router_gateway", ("compute1",)),
    )
    refused(check, net1, "PUT", ["ports", "p"], put, binding("", "compute:nova"))
    # Deleting: only its own DHCP ports.
    check(net1, "DELETE", ["ports", "p"], None, binding("net1", "network:dhcp"))
    refused(check, net1, "DELETE", ["ports", "p"], None, binding("net2", "network:dhcp"))
    refused(check, net1, "DELETE", ["ports", "p"], None, binding("net1", "compute:nova"))
    # A port that does not exist: the handler answers 404.
    check(net1, "DELETE", ["ports", "p"], None, None)
    # Anything else of the API.
    for method, parts in (("GET", ["ports"]), ("GET", ["networks"]), ("POST", ["networks"]), ("GET", ["ports", "p"])):
        refused(check, net1, method, parts, None, binding("net1", "network:dhcp"), contains="authenticates agents only")


def test_the_metadata_api_serves_the_metadata_agent_only() -> None:
    ai.authorize_metadata(agent("net1", "network"))
    ai.authorize_metadata(agent("aio", "all"))
    refused(ai.authorize_metadata, agent(), contains="Metadata agent")
    refused(ai.authorize_metadata, agent("ctl", "controller"))
