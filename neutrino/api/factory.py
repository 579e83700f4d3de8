"""Builds the Neutron API from its parts: the one place services are registered."""

from __future__ import annotations

import random
from typing import Any, Callable

from neutrino.api.app import NetworkApi, build_network_app
from neutrino.config import Config
from neutrino.context import AuthInfo
from neutrino.db.engine import Database
from neutrino.ml2.manager import TypeManager
from neutrino.services.common import Deps
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.quotas import QuotaService
from neutrino.services.security_groups import SecurityGroupRuleService, SecurityGroupService
from neutrino.services.subnets import SubnetService


def make_deps(cfg: Config, db: Database, rng: random.Random | None = None) -> Deps:
    rng = rng or random.SystemRandom()
    return Deps(cfg=cfg, db=db, types=TypeManager(cfg, rng), rng=rng)


def make_network_api(deps: Deps, validate_token: Callable[[str], AuthInfo], auth_uri: str = "") -> NetworkApi:
    services: dict[str, Any] = {
        "networks": NetworkService(deps),
        "subnets": SubnetService(deps),
        "ports": PortService(deps),
        "security-groups": SecurityGroupService(deps),
        "security-group-rules": SecurityGroupRuleService(deps),
    }
    subresources: dict[tuple[str, str], Any] = {}
    from neutrino.services.subnetpools import register as register_subnetpools
    register_subnetpools(deps, services)     # subnetpools, address-scopes
    try:  # L3 services (routers, floating IPs, port forwardings)
        from neutrino.services.l3 import register as register_l3
        register_l3(deps, services, subresources)
    except ImportError:
        pass
    from neutrino.services.trunks import register as register_trunks   # trunks (trunk, trunk-details)
    register_trunks(deps, services)
    from neutrino.services.rbac import register_service as register_rbac   # rbac-policies
    register_rbac(deps, services)
    try:  # agents, availability zones, scheduling
        from neutrino.services.agents import register as register_agents
        register_agents(deps, services, subresources)
    except ImportError:
        pass
    from neutrino.services.ip_availability import register as register_ip_availability
    register_ip_availability(deps, services)         # /v2.0/network-ip-availabilities
    from neutrino.services.service_providers import register as register_service_providers
    register_service_providers(deps, services)       # /v2.0/service-providers
    api = NetworkApi(deps=deps, services=services, validate_token=validate_token,
                     quota_service=QuotaService(deps.cfg), subresources=subresources, auth_uri=auth_uri)
    from neutrino.feed.api import install as install_feed  # /neutrino/v1/: change feed, agent reports
    install_feed(api)
    from neutrino.services.dhcp_scheduler import install_feed_source  # "dhcp_binding" snapshots
    install_feed_source(api)
    from neutrino.services.l3_scheduler import install_feed_source as install_l3_source  # "l3_binding"
    install_l3_source(api)
    return api


def make_network_app(deps: Deps, validate_token: Callable[[str], AuthInfo], auth_uri: str = "") -> Any:
    return build_network_app(make_network_api(deps, validate_token, auth_uri))
