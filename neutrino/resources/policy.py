"""Neutron's default policy (``enforce_new_defaults``), as a table of predicates.

Rules are named exactly as Neutron names them (``create_port:mac_address``)
because the names appear in 403 messages.  A *target* is the resource dict,
plus ``network:project_id`` (the owning project of the resource's network)
and ``network:shared`` / ``network:router:external`` where they matter.

Engine semantics (they decide 403 vs 404 and must match Neutron):

* create: ``create_X`` AND ``create_X:<attr>`` for each policed attribute whose
  value differs from its default, AND ``create_X:<attr>:<key>`` for each key
  present in a dict (or list of dicts) value;
* update: the same, but an attribute counts whenever it is present;
* read: ``get_X`` decides visibility; ``get_X:<attr>`` strips attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from neutrino.context import RequestContext
from neutrino.errors import PolicyNotAuthorized

Target = Mapping[str, Any]
Check = Callable[[RequestContext, Target], bool]


def admin(c: RequestContext, t: Target) -> bool:
    return c.is_admin


def service(c: RequestContext, t: Target) -> bool:
    return c.is_service


def _own(c: RequestContext, t: Target) -> bool:
    return bool(c.project_id) and t.get("project_id") == c.project_id


def pm(c: RequestContext, t: Target) -> bool:
    return c.has("member") and _own(c, t)


def pr(c: RequestContext, t: Target) -> bool:
    return c.has("reader") and _own(c, t)


def mgr(c: RequestContext, t: Target) -> bool:
    return c.has("manager") and _own(c, t)


def _net_owner(c: RequestContext, t: Target) -> bool:
    owner = t.get("network:project_id", t.get("project_id"))
    return bool(c.project_id) and owner == c.project_id


def nom(c: RequestContext, t: Target) -> bool:
    return c.has("member") and _net_owner(c, t)


def nor(c: RequestContext, t: Target) -> bool:
    return c.has("reader") and _net_owner(c, t)


def shared(c: RequestContext, t: Target) -> bool:
    return bool(t.get("network:shared", t.get("shared")))


def external(c: RequestContext, t: Target) -> bool:
    return bool(t.get("network:router:external", t.get("router:external")))


def any_of(*checks: Check) -> Check:
    def check(c: RequestContext, t: Target) -> bool:
        return any(ch(c, t) for ch in checks)

    return check


def not_network_device(c: RequestContext, t: Target) -> bool:
    owner = t.get("device_owner") or ""
    return not owner.startswith(("network:", "neutron:"))


def sg_owner_member(c: RequestContext, t: Target) -> bool:
    return c.has("member") and t.get("security_group:project_id", t.get("project_id")) == c.project_id


def sg_owner_reader(c: RequestContext, t: Target) -> bool:
    return c.has("reader") and t.get("security_group:project_id", t.get("project_id")) == c.project_id


def always(c: RequestContext, t: Target) -> bool:
    return True


def reader(c: RequestContext, t: Target) -> bool:
    return c.has("reader")


ADMIN_OR_PM = any_of(admin, pm)
ADMIN_OR_PR = any_of(admin, pr)
ADMIN_ONLY: Check = admin
ADMIN_SVC = any_of(admin, service)
ADMIN_SVC_NOM = any_of(admin, service, nom)

RULES: dict[str, Check] = {
    # networks
    "create_network": ADMIN_OR_PM,
    "update_network": ADMIN_OR_PM,
    "delete_network": ADMIN_OR_PM,
    "get_network": any_of(admin, pr, service, shared, external),
    # subnets
    "create_subnet": any_of(admin, nom),
    "create_subnet:segment_id": ADMIN_ONLY,
    "create_subnet:service_types": ADMIN_ONLY,
    "update_subnet": any_of(pm, admin, nom),
    "update_subnet:segment_id": ADMIN_ONLY,
    "update_subnet:service_types": ADMIN_ONLY,
    "delete_subnet": any_of(pm, admin, nom),
    "get_subnet": any_of(pr, shared, external, admin, nor, service),
    "get_subnet:segment_id": ADMIN_ONLY,
    # ports
    # A port on a shared network is a write: members only (readers of any project may read, never create).
    "create_port": any_of(admin, service, nom, lambda c, t: c.has("member") and shared(c, t)),
    "create_port:device_owner": any_of(not_network_device, admin, service, nom),
    "create_port:mac_address": ADMIN_SVC_NOM,
    "create_port:fixed_ips": any_of(admin, service, nom, shared),
    "create_port:fixed_ips:ip_address": ADMIN_SVC_NOM,
    "create_port:fixed_ips:subnet_id": any_of(admin, service, nom, shared),
    "create_port:port_security_enabled": ADMIN_SVC_NOM,
    "create_port:binding:host_id": ADMIN_SVC,
    "create_port:binding:profile": service,
    "create_port:binding:vnic_type": any_of(admin, pm, service),
    "create_port:allowed_address_pairs": any_of(admin, nom, service),
    "create_port:allowed_address_pairs:mac_address": any_of(admin, nom, service),
    "create_port:allowed_address_pairs:ip_address": any_of(admin, nom, service),
    "get_port": any_of(admin, service, nor, pr),
    "get_port:binding:vif_type": ADMIN_SVC,
    "get_port:binding:vif_details": ADMIN_SVC,
    "get_port:binding:host_id": ADMIN_SVC,
    "get_port:binding:profile": ADMIN_SVC,
    "update_port": any_of(admin, service, pm),
    "update_port:device_owner": any_of(not_network_device, admin, service, nom),
    "update_port:mac_address": any_of(admin, service, lambda c, t: c.has("manager") and _net_owner(c, t)),
    "update_port:fixed_ips": any_of(admin, service, nom, shared),
    "update_port:fixed_ips:ip_address": ADMIN_SVC_NOM,
    "update_port:fixed_ips:subnet_id": any_of(admin, service, nom, shared),
    "update_port:port_security_enabled": ADMIN_SVC_NOM,
    "update_port:binding:host_id": ADMIN_SVC,
    "update_port:binding:profile": service,
    "update_port:binding:vnic_type": any_of(admin, pm, service),
    "update_port:allowed_address_pairs": any_of(admin, nom, service),
    "update_port:allowed_address_pairs:mac_address": any_of(admin, nom, service),
    "update_port:allowed_address_pairs:ip_address": any_of(admin, nom, service),
    "delete_port": any_of(admin, service, nom, pm),
    # routers
    "create_router": ADMIN_OR_PM,
    "update_router": ADMIN_OR_PM,
    "delete_router": ADMIN_OR_PM,
    "get_router": ADMIN_OR_PR,
    "add_router_interface": ADMIN_OR_PM,
    "remove_router_interface": ADMIN_OR_PM,
    "add_extraroutes": ADMIN_OR_PM,
    "remove_extraroutes": ADMIN_OR_PM,
    "create_router:external_gateway_info": ADMIN_OR_PM,
    "create_router:external_gateway_info:network_id": ADMIN_OR_PM,
    "create_router:external_gateway_info:enable_snat": ADMIN_ONLY,
    "create_router:external_gateway_info:external_fixed_ips": ADMIN_ONLY,
    "create_router:distributed": ADMIN_ONLY,
    "create_router:ha": ADMIN_ONLY,
    "update_router:external_gateway_info": ADMIN_OR_PM,
    "update_router:external_gateway_info:network_id": ADMIN_OR_PM,
    "update_router:external_gateway_info:enable_snat": ADMIN_ONLY,
    "update_router:external_gateway_info:external_fixed_ips": ADMIN_ONLY,
    "update_router:distributed": ADMIN_ONLY,
    "update_router:ha": ADMIN_ONLY,
    "get_router:distributed": ADMIN_ONLY,
    # The router's own port records travel to the agents on the feed; API answers never carry them.
    "get_router:gw_port_id": service,
    "get_router:interface_port_ids": service,
    "get_router:ha": ADMIN_ONLY,
    # floating IPs and port forwardings (policy keyed on the FIP owner)
    "create_floatingip": ADMIN_OR_PM,
    "create_floatingip:floating_ip_address": any_of(admin, mgr),
    "update_floatingip": ADMIN_OR_PM,
    "delete_floatingip": ADMIN_OR_PM,
    "get_floatingip": ADMIN_OR_PR,
    "create_floatingip_port_forwarding": ADMIN_OR_PM,
    "update_floatingip_port_forwarding": ADMIN_OR_PM,
    "delete_floatingip_port_forwarding": ADMIN_OR_PM,
    "get_floatingip_port_forwarding": ADMIN_OR_PR,
    # security groups
    "create_security_group": ADMIN_OR_PM,
    "update_security_group": ADMIN_OR_PM,
    "delete_security_group": ADMIN_OR_PM,
    "get_security_group": ADMIN_OR_PR,
    "create_security_group_rule": any_of(admin, sg_owner_member),
    "delete_security_group_rule": any_of(admin, sg_owner_member),
    "get_security_group_rule": any_of(admin, sg_owner_reader, pr),
    # trunks (Neutron's: owner or admin)
    "create_trunk": ADMIN_OR_PM,
    "update_trunk": ADMIN_OR_PM,
    "delete_trunk": ADMIN_OR_PM,
    "get_trunk": any_of(admin, pr, service),
    "add_subports": ADMIN_OR_PM,
    "remove_subports": ADMIN_OR_PM,
    "get_subports": any_of(admin, pr, service),
    # agents, quotas, availability zones
    "get_agent": ADMIN_ONLY,
    "update_agent": ADMIN_ONLY,
    "delete_agent": ADMIN_ONLY,
    "get_quota": any_of(admin, mgr),
    "update_quota": ADMIN_ONLY,
    "delete_quota": ADMIN_ONLY,
    "get_availability_zone": reader,
    # network IP availability, service providers, scheduling by hand
    "get_network_ip_availability": ADMIN_ONLY,
    "get_service_provider": reader,
    "create_dhcp-network": ADMIN_ONLY,
    "delete_dhcp-network": ADMIN_ONLY,
    "create_l3-router": ADMIN_ONLY,
    "delete_l3-router": ADMIN_ONLY,
    # RBAC policies: members manage their project's policies; only admins target every project ('*').
    "create_rbac_policy": ADMIN_OR_PM,
    "create_rbac_policy:target_tenant": any_of(admin, lambda c, t: t.get("target_tenant") != "*"),
    "update_rbac_policy": ADMIN_OR_PM,
    "update_rbac_policy:target_tenant": any_of(admin, lambda c, t: t.get("target_tenant") != "*" and pm(c, t)),
    "get_rbac_policy": ADMIN_OR_PR,
    "delete_rbac_policy": ADMIN_OR_PM,
}

# Attributes with a per-attribute rule, by resource: the attribute layer
# checks exactly these (Neutron's ``enforce_policy``).
_NETWORK_ADMIN_ATTRS = (
    "shared",
    "router:external",
    "is_default",
    "segments",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
)
for _action in ("create", "update"):
    for _attr in _NETWORK_ADMIN_ATTRS:
        RULES[f"{_action}_network:{_attr}"] = ADMIN_ONLY
for _attr in ("provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"):
    RULES[f"get_network:{_attr}"] = ADMIN_ONLY

# Subnet pools and address scopes: owner or admin; shared ones readable by all; only admins
# share them or mark a default pool.
RULES.update(
    {
        "create_subnetpool": ADMIN_OR_PM,
        "create_subnetpool:shared": ADMIN_ONLY,
        "create_subnetpool:is_default": ADMIN_ONLY,
        "get_subnetpool": any_of(admin, pr, shared),
        "update_subnetpool": ADMIN_OR_PM,
        "update_subnetpool:is_default": ADMIN_ONLY,
        "delete_subnetpool": ADMIN_OR_PM,
        "add_prefixes": ADMIN_OR_PM,  # subnetpool-prefix-ops
        "remove_prefixes": ADMIN_OR_PM,
        "create_address_scope": ADMIN_OR_PM,
        "create_address_scope:shared": ADMIN_ONLY,
        "get_address_scope": any_of(admin, pr, shared),
        "update_address_scope": ADMIN_OR_PM,
        "update_address_scope:shared": ADMIN_ONLY,
        "delete_address_scope": ADMIN_OR_PM,
    }
)


def check(ctx: RequestContext, rule: str, target: Target) -> bool:
    """Evaluate one rule; unknown rules allow (they are not policed)."""
    fn = RULES.get(rule)
    return True if fn is None else fn(ctx, target)


def enforce(
    ctx: RequestContext, action: str, target: Target, attr_rules: list[tuple[str, list[str]]] | None = None
) -> None:
    """Check ``action`` and its attribute rules; raise ``PolicyNotAuthorized``.

    ``attr_rules`` lists (attribute rule, [sub-key rules]) in body order.
    The message nests the rules the way Neutron composes them.
    """
    ok = check(ctx, action, target)
    text = f"rule:{action}"
    for rule, subs in attr_rules or ():
        part = f"rule:{rule}"
        ok = ok and check(ctx, rule, target)
        if subs:
            inner = " and ".join(f"rule:{s}" for s in subs)
            part = f"(rule:{rule} and ({inner}))"
            ok = ok and all(check(ctx, s, target) for s in subs)
        text = f"({text} and {part})"
    if not ok:
        raise PolicyNotAuthorized(action=text)
