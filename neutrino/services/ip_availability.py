"""Network IP availability (``network-ip-availability``): ``/v2.0/network-ip-availabilities[/{network_id}]``.

Read-only, admin only by default (``get_network_ip_availability``, as
Neutron): others list nothing and get 404 on show.  One object per network::

    {"network_id", "network_name", "project_id", "tenant_id", "total_ips", "used_ips",
     "subnet_ip_availability": [{"subnet_id", "subnet_name", "cidr", "ip_version",
                                 "total_ips", "used_ips"}, ...]}

* a subnet's ``total_ips`` is the size of its allocation pools (first to last
  address, inclusive, summed over pools), as Neutron counts it: addresses
  outside the pools (the gateway, fixed IPs an admin chose outside them) are
  not part of the total;
* a subnet's ``used_ips`` is the number of addresses allocated on it (every
  port's fixed IP on the subnet, whatever its owner, inside the pools or not);
* a network's figures are the sums over its subnets; a network without
  subnets shows ``0``/``0`` and an empty list.

Filters ``network_id``, ``network_name``, ``project_id``/``tenant_id`` and
``ip_version`` (which keeps only the subnets of that version and drops the
networks that have none, as Neutron's joined query does).  IPv6 pools make
totals far beyond 64 bits; they are exact JSON integers.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.resources import convert as cv
from neutrino.resources import policy
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import Attr, Resource
from neutrino.services.common import Deps, ReadOnlyService

NETWORK_IP_AVAILABILITY = Resource(
    "network_ip_availability",
    "network-ip-availabilities",
    (
        Attr("network_id", convert=cv.uuid_str, filter=True, sort=True),
        Attr("network_name", convert=cv.string(255), filter=True, sort=True),
        Attr("project_id", convert=cv.string(255), filter=True, sort=True),
        Attr("tenant_id", convert=cv.string(255), filter=True, sort=True),
        Attr("total_ips"),
        Attr("used_ips"),
        Attr("subnet_ip_availability"),
    ),
)

_RULE = "get_network_ip_availability"


def pool_size(pools: list[dict[str, str]]) -> int:
    """Addresses in ``pools`` (``[{"start", "end"}]``, inclusive); pure."""
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1 for p in pools)


def _ip_versions(values: list[str]) -> set[int]:
    out = set()
    for v in values:
        if v not in ("4", "6"):
            raise errors.bad(f"Invalid input for ip_version. Reason: {errors.echo(v)} is not in [4, 6].")
        out.add(int(v))
    return out


class IpAvailabilityService(ReadOnlyService):
    """``GET`` list and show; writes are 405 (Neutron allows nothing else)."""

    resource = NETWORK_IP_AVAILABILITY
    special_filters = ("ip_version",)

    def _build(self, conn: Connection, net_ids: list[str] | None, versions: set[int]) -> list[dict[str, Any]]:
        nets = select(t.networks.c.id, t.networks.c.name, t.networks.c.project_id)
        subs = select(
            t.subnets.c.id,
            t.subnets.c.network_id,
            t.subnets.c.name,
            t.subnets.c.cidr,
            t.subnets.c.ip_version,
            t.subnets.c.allocation_pools,
        )
        used = select(t.ip_allocations.c.subnet_id, func.count()).group_by(t.ip_allocations.c.subnet_id)
        if net_ids is not None:
            nets = nets.where(t.networks.c.id.in_(net_ids))
            subs = subs.where(t.subnets.c.network_id.in_(net_ids))
            used = used.where(t.ip_allocations.c.network_id.in_(net_ids))
        counts: dict[str, int] = dict(conn.execute(used).all())
        by_net: dict[str, list[dict[str, Any]]] = {}
        for s in conn.execute(subs.order_by(t.subnets.c.network_id, t.subnets.c.id)):
            if versions and s.ip_version not in versions:
                continue
            by_net.setdefault(s.network_id, []).append(
                {
                    "subnet_id": s.id,
                    "subnet_name": s.name,
                    "cidr": s.cidr,
                    "ip_version": s.ip_version,
                    "total_ips": pool_size(list(s.allocation_pools or [])),
                    "used_ips": counts.get(s.id, 0),
                }
            )
        out = []
        for n in conn.execute(nets.order_by(t.networks.c.id)):
            subnets = by_net.get(n.id, [])
            if versions and not subnets:
                continue
            out.append(
                {
                    "network_id": n.id,
                    "network_name": n.name,
                    "project_id": n.project_id,
                    "tenant_id": n.project_id,
                    "total_ips": sum(s["total_ips"] for s in subnets),
                    "used_ips": sum(s["used_ips"] for s in subnets),
                    "subnet_ip_availability": subnets,
                }
            )
        return out

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], set[str]]:
        if not policy.check(ctx, _RULE, {}):
            return [], set()
        versions = _ip_versions(q.special.get("ip_version", []))
        ids = q.filters.get("network_id")
        return self._build(conn, list(ids) if ids is not None else None, versions), set()

    def get(self, ctx: RequestContext, conn: Connection, net_id: str) -> dict[str, Any]:
        if not policy.check(ctx, _RULE, {}):
            raise errors.HTTPNotFound()  # as Neutron: do not tell others what exists
        found = self._build(conn, [net_id], set())
        if not found:
            raise errors.NetworkNotFound(net_id=net_id)
        return found[0]


def register(deps: Deps, services: dict[str, Any]) -> None:
    services["network-ip-availabilities"] = IpAvailabilityService(deps)


__all__ = ["NETWORK_IP_AVAILABILITY", "IpAvailabilityService", "pool_size", "register"]
