"""Service providers (``service-type`` extension): ``GET /v2.0/service-providers``.

List only (show is 404, writes 405), for any user with a role
(``get_service_provider``, Neutron's ``reader`` rule).  It lists what this
server really provides: one L3 provider, ``single_node`` (Neutron's name for
centralised, non-HA, non-DVR routers, which is what every router here is),
and it is the default one.  Filters and ``fields=`` on ``service_type``,
``name`` and ``default``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from neutrino.context import RequestContext
from neutrino.resources import convert as cv
from neutrino.resources import policy
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import Attr, Resource
from neutrino.services.common import Deps, ReadOnlyService

SERVICE_PROVIDER = Resource(
    "service_provider",
    "service-providers",
    (
        Attr("service_type", convert=cv.string(255), filter=True, sort=True),
        Attr("name", convert=cv.string(255), filter=True, sort=True),
        Attr("default", convert=cv.to_bool, filter=True, sort=True),
    ),
)

#: (service_type, name, default): what this server implements.
PROVIDERS: tuple[tuple[str, str, bool], ...] = (("L3_ROUTER_NAT", "single_node", True),)


class ServiceProviderService(ReadOnlyService):
    resource = SERVICE_PROVIDER

    def list(self, ctx: RequestContext, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], set[str]]:
        policy.enforce(ctx, "get_service_provider", {})
        return [{"service_type": st, "name": name, "default": default} for st, name, default in PROVIDERS], set()


def register(deps: Deps, services: dict[str, Any]) -> None:
    services["service-providers"] = ServiceProviderService(deps)


__all__ = ["PROVIDERS", "SERVICE_PROVIDER", "ServiceProviderService", "register"]
