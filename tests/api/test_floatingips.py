"""Floating IPs (reference §4.5, §7.4, §10.6, §10.7): allocation, association, visibility."""

from __future__ import annotations

from tests.api.conftest import error
from tests.api.l3_helpers import (
    add_subnet,
    changes,
    external_network,
    extra_external_network,
    floating_ip,
    router,
    set_gateway,
    topology,
)

FIP_KEYS = {
    "id",
    "tenant_id",
    "project_id",
    "floating_ip_address",
    "floating_network_id",
    "router_id",
    "port_id",
    "fixed_ip_address",
    "status",
    "port_details",
    "port_forwardings",
    "dns_name",
    "dns_domain",
    "qos_policy_id",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
}


def _fip_port(api, fip):
    (port,) = api.list("ports", "admin", f"device_id={fip['id']}")
    return port


def test_cli_floating_ip_create(api):
    """§10.6: ``openstack floating ip create --subnet flat-subnet flat-network``."""
    net, sub = external_network(api)
    error(api.get("networks/flat-network", "demo"), 404, "NetworkNotFound")
    (found_net,) = api.list("networks", "demo", "name=flat-network")
    error(api.get("subnets/flat-subnet", "demo"), 404, "SubnetNotFound")
    (found_sub,) = api.list("subnets", "demo", "name=flat-subnet")
    r = api.post(
        "floatingips", {"floatingip": {"floating_network_id": found_net["id"], "subnet_id": found_sub["id"]}}, "demo"
    )
    assert r.status_code == 201
    fip = r.json()["floatingip"]
    assert set(fip) == FIP_KEYS  # subnet_id is never returned
    assert fip["floating_network_id"] == net["id"] and fip["status"] == "DOWN"
    assert fip["router_id"] is fip["port_id"] is fip["fixed_ip_address"] is fip["port_details"] is None
    assert fip["port_forwardings"] == [] and fip["qos_policy_id"] is None and fip["revision_number"] == 0
    assert fip["project_id"] == fip["tenant_id"] == "p-demo"
    assert 2 <= int(fip["floating_ip_address"].rsplit(".", 1)[1]) <= 10
    port = _fip_port(api, fip)
    assert port["device_owner"] == "network:floatingip" and port["project_id"] == ""
    assert port["status"] == "N/A" and port["device_id"] == fip["id"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": fip["floating_ip_address"]}]
    assert api.list("ports", "demo") == []
    assert changes(api, "floatingip", fip["id"]) == [(fip["id"], "create", fip)]


def test_cli_floating_ip_set_and_unset_port(api):
    """§10.7: ``floating ip set --port <port> <fip>`` / ``unset --port`` / ``delete``."""
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"])
    ip = fip["floating_ip_address"]
    error(api.get(f"floatingips/{ip}", "demo"), 404, "FloatingIPNotFound", f"Floating IP {ip} could not be found")
    assert [f["id"] for f in api.list("floatingips", "demo") if f["floating_ip_address"] == ip] == [fip["id"]]
    error(api.get("ports/vm-port", "demo"), 404, "PortNotFound")
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": topo.port["id"]}}, "demo"))
    got = out["floatingip"]
    assert got["router_id"] == topo.router["id"] and got["port_id"] == topo.port["id"]
    assert got["fixed_ip_address"] == topo.port["fixed_ips"][0]["ip_address"]
    p = topo.port
    assert got["port_details"] == {
        "name": p["name"],
        "network_id": p["network_id"],
        "mac_address": p["mac_address"],
        "admin_state_up": True,
        "status": "DOWN",
        "device_id": "",
        "device_owner": "",
    }
    assert got["revision_number"] == 1 and got["status"] == "DOWN"
    assert api.list("floatingips", "demo", f"port_id={p['id']}") == [got]
    assert api.list("floatingips", "demo", f"router_id={topo.router['id']}") == [got]
    assert api.list("floatingips", "demo", f"floating_ip_address={ip}") == [got]
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": None}}, "demo"))["floatingip"]
    assert out["router_id"] is out["port_id"] is out["fixed_ip_address"] is out["port_details"] is None
    port_id = _fip_port(api, fip)["id"]
    assert api.delete(f"floatingips/{fip['id']}", "demo").status_code == 204
    error(api.get(f"floatingips/{fip['id']}", "demo"), 404, "FloatingIPNotFound")
    error(api.get(f"ports/{port_id}"), 404, "PortNotFound")
    assert [a for _, a, _ in changes(api, "floatingip", fip["id"])] == ["create", "update", "update", "delete"]


def test_create_with_port_associates_at_once(api):
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"], description="web")
    assert fip["port_id"] == topo.port["id"] and fip["router_id"] == topo.router["id"]
    assert fip["description"] == "web"


def test_create_errors(api):
    net, sub = external_network(api)
    own_net, own_sub = api.net_with_subnet("10.0.0.0/24")
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": own_net["id"]}}, "demo"),
        400,
        "BadRequest",
        f"Bad floatingip request: Network {own_net['id']} is not a valid external network.",
    )
    hidden = api.network("other")
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": hidden["id"]}}, "demo"),
        404,
        "NetworkNotFound",
        f"Network {hidden['id']} could not be found.",
    )
    error(
        api.post("floatingips", {"floatingip": {}}, "demo"),
        400,
        "HTTPBadRequest",
        "Failed to parse request. Required attribute 'floating_network_id' not specified",
    )
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": net["id"], "subnet_id": own_sub["id"]}}, "demo"),
        400,
        "InvalidInput",
        f"Invalid input for operation: Failed to create port on network {net['id']}, because fixed_ips included "
        f"invalid subnet {own_sub['id']}.",
    )
    error(
        api.post(
            "floatingips",
            {"floatingip": {"floating_network_id": net["id"], "floating_ip_address": "172.16.0.5"}},
            "demo",
        ),
        403,
        "PolicyNotAuthorized",
        "(rule:create_floatingip and rule:create_floatingip:floating_ip_address) is disallowed by policy",
    )
    error(
        api.post(
            "floatingips", {"floatingip": {"floating_network_id": net["id"], "fixed_ip_address": "10.0.0.5"}}, "demo"
        ),
        400,
        "BadRequest",
        "Bad floatingip request: fixed_ip_address cannot be specified without a port_id.",
    )
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": net["id"]}}, "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:create_floatingip is disallowed by policy",
    )
    assert api.list("floatingips", "admin") == []


def test_admin_picks_the_address(api):
    net, sub = external_network(api)
    fip = floating_ip(api, net["id"], "admin", floating_ip_address="172.16.0.5", project_id="p-demo")
    assert fip["floating_ip_address"] == "172.16.0.5" and fip["project_id"] == "p-demo"
    error(
        api.post(
            "floatingips", {"floatingip": {"floating_network_id": net["id"], "floating_ip_address": "172.16.0.5"}}
        ),
        409,
        "IpAddressAlreadyAllocated",
        f"IP address 172.16.0.5 already allocated in subnet {sub['id']}",
    )
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": net["id"], "floating_ip_address": "10.9.9.9"}}),
        400,
        "InvalidIpForNetwork",
        "IP address 10.9.9.9 is not a valid IP for any of the subnets on the specified network.",
    )


def test_external_network_without_ipv4_or_addresses(api):
    v6net = api.network(**{"router:external": True})
    api.subnet(v6net["id"], "2001:db8::/64")
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": v6net["id"]}}),
        400,
        "BadRequest",
        f"Bad floatingip request: Network {v6net['id']} does not contain any IPv4 subnet.",
    )
    small = api.network(**{"router:external": True})
    api.subnet(small["id"], "192.0.2.0/29", allocation_pools=[{"start": "192.0.2.2", "end": "192.0.2.2"}])
    floating_ip(api, small["id"], "admin")
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": small["id"]}}),
        409,
        "IpAddressGenerationFailure",
        f"No more IP addresses available on network {small['id']}.",
    )


def test_quota(api):
    net, _ = external_network(api)
    api.ok(api.put("quotas/p-demo", {"quota": {"floatingip": 1}}))
    floating_ip(api, net["id"])
    error(
        api.post("floatingips", {"floatingip": {"floating_network_id": net["id"]}}, "demo"),
        409,
        "OverQuota",
        "Quota exceeded for resources: ['floatingip'].",
    )


def test_visibility(api):
    net, _ = external_network(api)
    fip = floating_ip(api, net["id"])
    fid = fip["id"]
    msg = f"Floating IP {fid} could not be found"
    for call in (
        api.get(f"floatingips/{fid}", "other"),
        api.put(f"floatingips/{fid}", {"floatingip": {"description": "x"}}, "other"),
        api.delete(f"floatingips/{fid}", "other"),
    ):
        error(call, 404, "FloatingIPNotFound", msg)
    assert api.list("floatingips", "other") == []
    assert [f["id"] for f in api.list("floatingips", "admin")] == [fid]
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"description": "x"}}, "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:update_floatingip is disallowed by policy",
    )
    error(
        api.delete(f"floatingips/{fid}", "reader"),
        403,
        "PolicyNotAuthorized",
        "rule:delete_floatingip is disallowed by policy",
    )


def test_update_description_and_read_only(api):
    net, _ = external_network(api)
    fip = floating_ip(api, net["id"])
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"description": "d"}}, "demo"))["floatingip"]
    assert out["description"] == "d" and out["revision_number"] == 1
    error(
        api.put(f"floatingips/{fip['id']}", {"floatingip": {"floating_network_id": net["id"]}}, "demo"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute floating_network_id",
    )
    error(
        api.put(f"floatingips/{fip['id']}", {"floatingip": {"subnet_id": None}}, "demo"),
        400,
        "HTTPBadRequest",
        "Cannot update read-only attribute subnet_id",
    )
    assert api.ok(api.put(f"floatingips/{fip['id']}/tags", {"tags": ["x"]}, "demo")) == {"tags": ["x"]}


def test_association_needs_a_router_path(api):
    net, _ = external_network(api)
    r = router(api)
    inet, isub = api.net_with_subnet("10.0.0.0/24")
    port = api.port(inet["id"], "demo")
    fip = floating_ip(api, net["id"])
    msg = (
        f"External network {net['id']} is not reachable from subnet {isub['id']}.  Therefore, cannot associate "
        f"Port {port['id']} with a Floating IP."
    )
    error(
        api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}}, "demo"),
        404,
        "ExternalGatewayForFloatingIPNotFound",
        msg,
    )
    add_subnet(api, r["id"], isub["id"])  # interface, but no gateway yet
    error(
        api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}}, "demo"),
        404,
        "ExternalGatewayForFloatingIPNotFound",
        msg,
    )
    net2, _ = extra_external_network(api, "192.0.2.0/24")
    set_gateway(api, r["id"], net2["id"])  # gateway on the wrong network
    error(
        api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}}, "demo"),
        404,
        "ExternalGatewayForFloatingIPNotFound",
        msg,
    )
    set_gateway(api, r["id"], net["id"])
    out = api.ok(api.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}}, "demo"))
    assert out["floatingip"]["router_id"] == r["id"]


def test_association_errors(api):
    topo = topology(api)
    ext = topo.ext_net["id"]
    fip = floating_ip(api, ext)
    fid = fip["id"]
    port = topo.port
    address = port["fixed_ips"][0]["ip_address"]
    # An address of the subnet that is not the port's (its own is picked at random).
    other = "10.0.0.254" if address != "10.0.0.254" else "10.0.0.253"
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"port_id": port["id"], "fixed_ip_address": other}}, "demo"),
        400,
        "BadRequest",
        f"Bad floatingip request: Port {port['id']} does not have fixed ip {other}.",
    )
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"fixed_ip_address": address}}, "demo"),
        400,
        "BadRequest",
        "Bad floatingip request: fixed_ip_address cannot be specified without a port_id.",
    )
    missing = "00000000-0000-0000-0000-000000000002"
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"port_id": missing}}, "demo"),
        404,
        "PortNotFound",
        f"Port {missing} could not be found.",
    )
    api.ok(api.put(f"floatingips/{fid}", {"floatingip": {"port_id": port["id"], "fixed_ip_address": address}}, "demo"))
    second = floating_ip(api, ext)
    error(
        api.put(f"floatingips/{second['id']}", {"floatingip": {"port_id": port["id"]}}, "demo"),
        409,
        "FloatingIPPortAlreadyAssociated",
        f"Cannot associate floating IP {second['floating_ip_address']} ({second['id']}) with port {port['id']} "
        f"using fixed IP {address}, as that fixed IP already has a floating IP on external network {ext}.",
    )
    # re-sending the same association is fine
    api.ok(api.put(f"floatingips/{fid}", {"floatingip": {"port_id": port["id"]}}, "demo"))


def test_port_rules(api):
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"])
    fid = fip["id"]
    admin_port = api.port(topo.net["id"], "admin", project_id="p-admin")
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"port_id": admin_port["id"]}}, "demo"),
        400,
        "BadRequest",
        f"Bad floatingip request: Cannot process floating IP association with Port {admin_port['id']}, since "
        "that port is owned by a different tenant.",
    )
    dhcp = api.port(topo.net["id"], "demo", device_owner="network:dhcp")
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"port_id": dhcp["id"]}}, "demo"),
        400,
        "BadRequest",
        "Bad floatingip request: Port %(id)s is unable to be assigned a floating IP.",
    )
    bare = api.port(api.network("demo")["id"], "demo")
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"port_id": bare["id"]}}, "demo"),
        400,
        "BadRequest",
        f"Bad floatingip request: Cannot add floating IP to port {bare['id']} that has no fixed IPv4 addresses.",
    )
    sub2 = api.subnet(topo.net["id"], "10.1.0.0/24", "demo")
    two = api.port(topo.net["id"], "demo", fixed_ips=[{"subnet_id": topo.subnet["id"]}, {"subnet_id": sub2["id"]}])
    error(
        api.put(f"floatingips/{fid}", {"floatingip": {"port_id": two["id"]}}, "demo"),
        400,
        "BadRequest",
        f"Bad floatingip request: Port {two['id']} has multiple fixed IPv4 addresses.  Must provide a specific "
        "IPv4 address when assigning a floating IP.",
    )
    error(
        api.put(
            f"floatingips/{fid}", {"floatingip": {"port_id": two["id"], "fixed_ip_address": "2001:db8::5"}}, "demo"
        ),
        400,
        "BadRequest",
        "Bad floatingip request: Cannot process floating IP association with 2001:db8::5, since that is not an "
        "IPv4 address.",
    )
    chosen = two["fixed_ips"][0]["ip_address"]
    out = api.ok(
        api.put(f"floatingips/{fid}", {"floatingip": {"port_id": two["id"], "fixed_ip_address": chosen}}, "demo")
    )["floatingip"]
    assert out["fixed_ip_address"] == chosen
    # admin may associate another project's port
    admin_fip = floating_ip(api, topo.ext_net["id"], "admin")
    out = api.ok(api.put(f"floatingips/{admin_fip['id']}", {"floatingip": {"port_id": topo.port["id"]}}))
    assert out["floatingip"]["port_id"] == topo.port["id"]


def test_deleting_the_port_disassociates(api):
    topo = topology(api)
    fip = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"])
    assert api.delete(f"ports/{topo.port['id']}", "demo").status_code == 204
    now = api.show("floatingips", "floatingip", fip["id"], "demo")
    assert now["port_id"] is now["router_id"] is now["fixed_ip_address"] is now["port_details"] is None
    assert now["revision_number"] == fip["revision_number"] + 1
    last = changes(api, "floatingip", fip["id"])[-1]
    assert last == (fip["id"], "update", now)


def test_fip_port_cannot_be_deleted_directly(api):
    net, _ = external_network(api)
    fip = floating_ip(api, net["id"])
    port = _fip_port(api, fip)
    error(
        api.delete(f"ports/{port['id']}"),
        409,
        "ServicePortInUse",
        f"Port {port['id']} cannot be deleted directly via the port API: has device owner network:floatingip.",
    )
    # Deleting the network releases the unassociated floating IP with its port (issue 14).
    assert api.delete(f"networks/{net['id']}").status_code == 204
    error(api.get(f"floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
