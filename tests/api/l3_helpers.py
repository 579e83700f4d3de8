"""Topology builders shared by the L3 API tests (routers, floating IPs, port forwardings).

``Topology`` is what the CLI flows of reference §10.1-§10.7 build: the admin's
flat external network ``flat-network`` (172.16.0.0/24, pool .2-.10), a
project's router with its gateway there, an internal network/subnet attached
to the router and a port on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from neutrino.db import tables

FLAT_NET_BODY = {
    "network": {
        "provider:network_type": "flat",
        "shared": True,
        "provider:physical_network": "physnet",
        "name": "flat-network",
        "admin_state_up": True,
        "router:external": True,
    }
}


def external_network(api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """reference §10.1 + §10.2, exactly as OSC sends them."""
    net = api.ok(api.post("networks", FLAT_NET_BODY), 201)["network"]
    sub = api.ok(
        api.post(
            "subnets",
            {
                "subnet": {
                    "ip_version": 4,
                    "cidr": "172.16.0.0/24",
                    "allocation_pools": [{"start": "172.16.0.2", "end": "172.16.0.10"}],
                    "network_id": net["id"],
                    "name": "flat-subnet",
                    "enable_dhcp": True,
                }
            },
        ),
        201,
    )["subnet"]
    return net, sub


def extra_external_network(api: Any, cidr: str, name: str = "ext2") -> tuple[dict[str, Any], dict[str, Any]]:
    """Another external network (tenant segment type), admin-owned."""
    net = api.network(name=name, **{"router:external": True})
    return net, api.subnet(net["id"], cidr)


def router(api: Any, as_: str = "demo", **attrs: Any) -> dict[str, Any]:
    body = {"name": "demo-router", "admin_state_up": True, **attrs}
    return api.ok(api.post("routers", {"router": body}, as_), 201)["router"]


def set_gateway(api: Any, router_id: str, net_id: str, as_: str = "demo", **extra: Any) -> dict[str, Any]:
    info = {"network_id": net_id, **extra}
    return api.ok(api.put(f"routers/{router_id}", {"router": {"external_gateway_info": info}}, as_))["router"]


def add_subnet(api: Any, router_id: str, subnet_id: str, as_: str = "demo") -> dict[str, Any]:
    return api.ok(api.put(f"routers/{router_id}/add_router_interface", {"subnet_id": subnet_id}, as_))


def router_ports(api: Any, router_id: str) -> list[dict[str, Any]]:
    return api.list("ports", "admin", f"device_id={router_id}")


def changes(api: Any, resource: str, resource_id: str | None = None) -> list[tuple[str, str, Any]]:
    """(resource_id, action, body) of the change feed rows for ``resource``, oldest first."""
    c = tables.changes.c
    stmt = select(c.resource_id, c.action, c.body).where(c.resource == resource).order_by(c.revision)
    if resource_id is not None:
        stmt = stmt.where(c.resource_id == resource_id)
    with api.db.read() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


@dataclass
class Topology:
    ext_net: dict[str, Any]
    ext_subnet: dict[str, Any]
    router: dict[str, Any]
    net: dict[str, Any]
    subnet: dict[str, Any]
    port: dict[str, Any]


def topology(api: Any, as_: str = "demo", cidr: str = "10.0.0.0/24") -> Topology:
    ext_net, ext_subnet = external_network(api)
    r = router(api, as_)
    r = set_gateway(api, r["id"], ext_net["id"], as_)
    net, sub = api.net_with_subnet(cidr, as_)
    add_subnet(api, r["id"], sub["id"], as_)
    port = api.port(net["id"], as_)
    return Topology(ext_net, ext_subnet, r, net, sub, port)


def floating_ip(api: Any, net_id: str, as_: str = "demo", **attrs: Any) -> dict[str, Any]:
    return api.ok(api.post("floatingips", {"floatingip": {"floating_network_id": net_id, **attrs}}, as_), 201)[
        "floatingip"
    ]
