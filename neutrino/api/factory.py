"""Builds the Neutron API from its parts: the one place services are registered."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from neutrino.api.app import NetworkApi, build_network_app
from neutrino.config import Config
from neutrino.context import AuthInfo, RequestContext
from neutrino.db.engine import Database
from neutrino.feed.publisher import Feed, Source
from neutrino.feed.resources import PLURAL
from neutrino.feed.routes import install as install_feed
from neutrino.ml2.manager import TypeManager
from neutrino.resources.query import ListQuery
from neutrino.services import (
    agents,
    dhcp_scheduler,
    ip_availability,
    l3,
    l3_scheduler,
    rbac,
    recorders,
    service_providers,
    subnetpools,
    trunks,
)
from neutrino.services.agent_reports import AgentReports
from neutrino.services.common import Deps
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.quotas import QuotaService
from neutrino.services.security_groups import SecurityGroupRuleService, SecurityGroupService
from neutrino.services.subnets import SubnetService


def make_deps(cfg: Config, db: Database, rng: random.Random | None = None) -> Deps:
    rng = rng or random.SystemRandom()
    return Deps(cfg=cfg, db=db, types=TypeManager(cfg, rng), rng=rng)


def make_network_api(
    deps: Deps, validate_token: Callable[[str], AuthInfo], auth_uri: str = "", *, feed: Feed
) -> NetworkApi:
    """The network API with every service registered, serving ``feed`` under ``/neutrino/v1/``.

    ``feed`` is the process's change feed, built once by its owner
    (``neutrino.server``; tests and tools: ``neutrino.feed.publisher.open_feed``).
    The services publish into it: each feed type's snapshot source is
    registered here.  So are the links between services whose modules cannot
    import each other (``Deps``): the feed recorders (``recorders.register``)
    and the L3 hooks on port and network events (``l3.register``).
    """
    services: dict[str, Any] = {
        "networks": NetworkService(deps),
        "subnets": SubnetService(deps),
        "ports": PortService(deps),
        "security-groups": SecurityGroupService(deps),
        "security-group-rules": SecurityGroupRuleService(deps),
    }
    subresources: dict[tuple[str, str], Any] = {}
    subnetpools.register(deps, services)  # subnetpools, address-scopes
    l3.register(deps, services, subresources)  # routers, floating IPs, port forwardings; port/network hooks
    trunks.register(deps, services)  # trunks (trunk, trunk-details), given the ports service
    rbac.register_service(deps, services)  # rbac-policies
    agents.register(deps, services, subresources)  # agents, availability zones, scheduling
    ip_availability.register(deps, services)  # /v2.0/network-ip-availabilities
    service_providers.register(deps, services)  # /v2.0/service-providers
    recorders.register(deps, services)  # deps.record: whose admin view goes on the feed, by feed type
    api = NetworkApi(
        deps=deps,
        services=services,
        validate_token=validate_token,
        quota_service=QuotaService(deps.cfg),
        subresources=subresources,
        auth_uri=auth_uri,
    )
    for svc in services.values():  # the network resources on the feed, in registration order
        resource = getattr(getattr(svc, "resource", None), "name", None)
        if resource in PLURAL:
            feed.add_source(resource, _service_source(svc))
    dhcp_scheduler.install_feed_source(feed)  # "dhcp_binding" snapshots
    l3_scheduler.install_feed_source(feed)  # "l3_binding" snapshots
    install_feed(api, feed, AgentReports(deps, services.get("agents")))  # /neutrino/v1/: feed, agent reports
    return api


def _service_source(svc: Any) -> Source:
    """A snapshot source listing every object of ``svc`` in the admin view."""

    def source(conn: Connection) -> list[dict[str, Any]]:
        return svc.list(RequestContext.admin(), conn, ListQuery())[0]

    return source


def make_network_app(deps: Deps, validate_token: Callable[[str], AuthInfo], auth_uri: str = "", *, feed: Feed) -> Any:
    return build_network_app(make_network_api(deps, validate_token, auth_uri, feed=feed))
