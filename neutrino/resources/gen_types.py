"""Writes ``neutrino/resources/types.py``, the typed values the services take and return.

Run ``python -m neutrino.resources.gen_types`` after changing an attribute map in
``neutrino.resources.definitions``; ``--check`` exits 1 when the kept module is stale
(``tests/unit/test_resource_types.py`` does the same in memory).

Per resource the module holds three ``TypedDict``s:

* ``<Name>``: what a service returns, the Neutron-shaped view (every attribute the
  service shows, in the attribute map's order; keys shown only sometimes are
  ``NotRequired``);
* ``<Name>Create``: a POST body after ``prepare_create`` (every postable attribute,
  defaults filled in, plus ``__given__``, the keys the caller sent);
* ``<Name>Update``: a PUT body after ``prepare_update`` (``total=False``: only the keys given).

A body attribute's type comes from its converter (``neutrino.resources.convert``); a
view attribute's type from the tables below when the service shows something else than
the converter returns (a read-only attribute has no converter; ``cidr`` is never null
in a view), else from the converter.  An attribute whose type is known from neither
stops the generator, so a new attribute cannot go untyped.
"""

from __future__ import annotations

import argparse
import inspect
import keyword
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from neutrino.resources import convert as cv
from neutrino.resources import definitions as d
from neutrino.resources.resource import Attr, Resource

TARGET = Path(__file__).with_name("types.py")

#: The resources that get types, with their Python names.
RESOURCES: tuple[tuple[Resource, str], ...] = (
    (d.NETWORK, "Network"),
    (d.SUBNET, "Subnet"),
    (d.PORT, "Port"),
    (d.ROUTER, "Router"),
    (d.FLOATINGIP, "FloatingIp"),
    (d.PORT_FORWARDING, "PortForwarding"),
    (d.SECURITY_GROUP_RULE, "SecurityGroupRule"),
    (d.SECURITY_GROUP, "SecurityGroup"),
    (d.SUBNETPOOL, "SubnetPool"),
    (d.ADDRESS_SCOPE, "AddressScope"),
    (d.TRUNK, "Trunk"),
)

#: Nested dicts of request bodies: the ``dict_of`` converters of ``definitions``, by name.
BODY_DICTS: tuple[tuple[Callable[[Any], Any], str], ...] = (
    (d._fixed_ip, "FixedIpBody"),
    (d._pool, "AllocationPool"),  # shown as given
    (d._route, "HostRoute"),  # shown as given
    (d._aap, "AddressPairBody"),
    (d._dhcp_opt, "DhcpOptionBody"),
    (d._ext_gw_dict, "ExternalGatewayBody"),
)

#: Nested dicts of views: (name, ((key, type, required), ...)), in dependency order.
VIEW_DICTS: tuple[tuple[str, tuple[tuple[str, str, bool], ...]], ...] = (
    ("FixedIp", (("subnet_id", "str", True), ("ip_address", "str", True))),
    ("AddressPair", (("ip_address", "str", True), ("mac_address", "str", True))),
    ("DhcpOption", (("opt_name", "str", True), ("opt_value", "str", True), ("ip_version", "int", True))),
    ("DnsAssignment", (("ip_address", "str", True), ("hostname", "str", True), ("fqdn", "str", True))),
    (
        "Segment",
        (
            ("provider:network_type", "str | None", True),
            ("provider:physical_network", "str | None", True),
            ("provider:segmentation_id", "int | None", True),
        ),
    ),
    ("SubPort", (("segmentation_id", "int", True), ("segmentation_type", "str", True), ("port_id", "str", True))),
    (
        "TrunkSubPort",
        (
            ("segmentation_id", "int", True),
            ("segmentation_type", "str", True),
            ("port_id", "str", True),
            ("mac_address", "str | None", True),
        ),
    ),
    ("TrunkDetails", (("trunk_id", "str", True), ("sub_ports", "list[TrunkSubPort]", True))),
    (
        "ExternalGatewayInfo",
        (("network_id", "str", True), ("external_fixed_ips", "list[FixedIp]", True), ("enable_snat", "bool", True)),
    ),
    (
        "PortDetails",
        (
            ("name", "str", True),
            ("network_id", "str", True),
            ("mac_address", "str", True),
            ("admin_state_up", "bool", True),
            ("status", "str", True),
            ("device_id", "str", True),
            ("device_owner", "str", True),
        ),
    ),
    (
        "PortForwardingSummary",  # a port forwarding as embedded in its floating IP
        (
            ("id", "str", True),
            ("protocol", "str", True),
            ("internal_ip_address", "str", True),
            ("internal_port_id", "str", True),
            ("internal_port", "int", False),  # a single port, not a range
            ("external_port", "int", False),
        ),
    ),
)

#: View types of attributes every resource shows the same way.
COMMON_VIEW: dict[str, str] = {
    "id": "str",
    "name": "str",
    "project_id": "str",
    "tenant_id": "str",
    "description": "str",
    "status": "str",
    "tags": "list[str]",
    "created_at": "str",
    "updated_at": "str",
    "revision_number": "int",
}

#: View types that differ from the converter's (or that have none), per resource.
VIEW: dict[str, dict[str, str]] = {
    "network": {
        "subnets": "list[str]",
        "segments": "list[Segment]",
        "availability_zones": "list[str]",
        "ipv4_address_scope": "str | None",
        "ipv6_address_scope": "str | None",
        "l2_adjacency": "bool",
    },
    "subnet": {"cidr": "str", "allocation_pools": "list[AllocationPool]"},
    "port": {
        "fixed_ips": "list[FixedIp]",
        "security_groups": "list[str]",
        "allowed_address_pairs": "list[AddressPair]",
        "extra_dhcp_opts": "list[DhcpOption]",
        "port_security_enabled": "bool",
        # free-form: whatever the binding's driver or the caller put there
        "binding:vif_details": "dict[str, Any]",
        "binding:vif_type": "str",
        "dns_assignment": "list[DnsAssignment]",
        "dns_domain": "str",
        "ip_allocation": "str",
        "trunk_details": "TrunkDetails",
    },
    "router": {
        "external_gateway_info": "ExternalGatewayInfo | None",
        "availability_zones": "list[str]",
        "gw_port_id": "str | None",
        "interface_port_ids": "list[str]",
    },
    "floatingip": {
        "floating_ip_address": "str",
        "router_id": "str | None",
        "port_details": "PortDetails | None",
        "port_forwardings": "list[PortForwardingSummary]",
        "qos_policy_id": "None",
    },
    "port_forwarding": {"external_port_range": "str", "internal_port_range": "str"},
    "security_group": {"shared": "bool", "security_group_rules": "list[SecurityGroupRule]"},
    "security_group_rule": {"normalized_cidr": "str | None", "belongs_to_default_sg": "bool"},
    "subnetpool": {"default_prefixlen": "str", "min_prefixlen": "str", "max_prefixlen": "str", "ip_version": "int"},
    "trunk": {"sub_ports": "list[SubPort]"},
}

#: Keys a view has only sometimes.
SOMETIMES: dict[str, frozenset[str]] = {
    "network": frozenset({"segments"}),  # only with more than one segment
    "port": frozenset({"trunk_details"}),  # only on a trunk's parent port
}

#: Keys a view has that the attribute map hides (``visible=False``) or lacks.
SHOWN: dict[str, tuple[str, ...]] = {
    "floatingip": ("qos_policy_id",),
    # the router's own records, for the agents (the feed's view); policy strips them from API answers
    "router": ("gw_port_id", "interface_port_ids"),
}

#: Keys of the attribute map a view never has (body-only attributes).
NOT_SHOWN: dict[str, frozenset[str]] = {
    "port_forwarding": frozenset({"project_id", "tenant_id"}),
    "address_scope": frozenset({"tags"}),  # address scopes carry no tags
}

#: Converters defined in ``definitions``, by their result type.
_LOCAL: tuple[tuple[Callable[[Any], Any], str], ...] = (
    (d._ext_gw, "ExternalGatewayBody | dict[str, Any]"),  # {} clears the gateway
    (d._routes, "list[HostRoute]"),
    (d._check_port_range, "str"),
    (d._pf_port, "int"),
    (d._group_id, "str"),
    (d._protocol, "str"),
    (d.subports, "list[dict[str, Any]]"),  # port_id, and segmentation_type/_id together or neither
)

_PLAIN: tuple[tuple[Callable[[Any], Any], str], ...] = (
    (cv.to_bool, "bool"),
    (cv.to_int, "int"),
    (cv.uuid_str, "str"),
    (cv.uuid_or_none, "str | None"),
    (cv.mac, "str"),
    (cv.ip, "str"),
    (cv.ip_or_none, "str | None"),
    (cv.cidr_keep_host, "str"),
    (cv.subnet_cidr, "str"),
    (cv.ip_or_cidr, "str"),
    (cv.dict_value, "dict[str, Any]"),
    (cv.dict_or_none, "dict[str, Any] | None"),
    (cv.tag, "str"),
    (cv.any_value, "Any"),
)


class UntypedAttribute(Exception):
    """An attribute whose type neither its converter nor the tables give."""


def _or_none(t: str) -> str:
    return t if t == "Any" or t.endswith("| None") or t == "None" else f"{t} | None"


def converter_type(conv: Callable[[Any], Any] | None) -> str | None:
    """The Python type (as source text) of what ``conv`` returns; None when unknown."""
    if conv is None:
        return None
    for table in (_PLAIN, _LOCAL, BODY_DICTS):
        for fn, name in table:
            if fn is conv:
                return name
    qual = getattr(conv, "__qualname__", "")
    if getattr(conv, "__module__", None) != cv.__name__ or ".<locals>." not in qual:
        return None
    factory = qual.split(".<locals>.")[0]
    env = inspect.getclosurevars(conv).nonlocals
    if factory == "string":
        return "str"
    if factory in ("int_one_of", "in_range"):
        return "int"
    if factory == "one_of":
        kinds = {type(c).__name__ for c in env["choices"]}
        kind = kinds.pop() if len(kinds) == 1 and kinds <= {"str", "int"} else "Any"
        return _or_none(kind) if env.get("nullable") else kind
    if factory == "nullable":
        inner = converter_type(env["conv"])
        return None if inner is None else _or_none(inner)
    if factory == "list_of":
        inner = converter_type(env["item"])
        return None if inner is None else f"list[{inner}]"
    if factory == "fixed_ips":
        return converter_type(env["inner"])
    if factory == "dict_of":
        return "dict[str, Any]"
    return None


def _known(res: Resource, attr: Attr, t: str | None) -> str:
    if t is None:
        raise UntypedAttribute(f"{res.name}.{attr.name}: add its type to neutrino.resources.gen_types")
    return t


def view_keys(res: Resource) -> list[tuple[str, str, bool]]:
    """(key, type, required) of the view of ``res``."""
    own = VIEW.get(res.name, {})
    hidden = NOT_SHOWN.get(res.name, frozenset())
    shown = SHOWN.get(res.name, ())
    out = []
    for attr in res.attrs:
        if attr.name in hidden or (not attr.visible and attr.name not in shown):
            continue
        t = own.get(attr.name) or COMMON_VIEW.get(attr.name) or converter_type(attr.convert)
        out.append((attr.name, _known(res, attr, t), attr.name not in SOMETIMES.get(res.name, frozenset())))
    for name in shown:
        if res.attr(name) is None:
            out.append((name, own[name], True))
    return out


def create_keys(res: Resource) -> list[tuple[str, str, bool]]:
    """(key, type, required) of a POST body after ``prepare_create``: every postable attribute."""
    out = []
    for attr in res.attrs:
        if not attr.post:
            continue
        t = "Any" if attr.convert is None else _known(res, attr, converter_type(attr.convert))
        if attr.name in ("project_id", "tenant_id"):
            t = "str"  # prepare_create resolves the project (the caller's when none is given)
        elif attr.default is None:
            t = _or_none(t)
        out.append((attr.name, t, True))
    out.append(("__given__", "frozenset[str]", True))
    return out


def update_keys(res: Resource) -> list[tuple[str, str, bool]]:
    """(key, type, required) of a PUT body after ``prepare_update`` (all optional)."""
    return [(a.name, _known(res, a, converter_type(a.convert)), False) for a in res.attrs if a.put]


def _typeddict(name: str, keys: Sequence[tuple[str, str, bool]], *, total: bool = True) -> str:
    """Class syntax, or the functional one when a key is no identifier (``router:external``)."""

    def shown(t: str, required: bool) -> str:
        return t if required or not total else f"NotRequired[{t}]"

    if all(k.isidentifier() and not keyword.iskeyword(k) and not k.startswith("_") for k, _, _ in keys):
        head = f"class {name}(TypedDict{'' if total else ', total=False'}):"
        return "\n".join([head, *(f"    {k}: {shown(t, r)}" for k, t, r in keys)])
    lines = [f'{name} = TypedDict(\n    "{name}",\n    {{']
    lines += [f'        "{k}": {shown(t, r)},' for k, t, r in keys]
    lines.append("    }," if total else "    },\n    total=False,")
    lines.append(")")
    return "\n".join(lines)


def _body_dict(conv: Callable[[Any], Any], name: str) -> str:
    env = inspect.getclosurevars(conv).nonlocals
    keys = [(k, _known_nested(name, k, converter_type(c)), k in env["required"]) for k, c in env["spec"].items()]
    return _typeddict(name, keys)


def _known_nested(name: str, key: str, t: str | None) -> str:
    if t is None:
        raise UntypedAttribute(f"{name}.{key}: add its type to neutrino.resources.gen_types")
    return t


HEADER = '''"""The typed values of the resource services (generated: do not edit).

Written by ``python -m neutrino.resources.gen_types`` from the attribute maps in
``neutrino.resources.definitions``; ``tests/unit/test_resource_types.py`` fails when
this file is stale, and ``tests/api/test_resource_types.py`` checks that the services
return exactly these keys.  ``<Name>`` is what a service returns (Neutron's view, before
the edge applies read policy and ``fields=``); ``<Name>Create`` a POST body with its
defaults filled in; ``<Name>Update`` a PUT body (only the keys given).  No ``from __future__
import annotations``: ``NotRequired`` must be seen at run time (``__optional_keys__``).
"""

from typing import Any, NotRequired, TypedDict'''


def render() -> str:
    """The source of ``types.py``."""
    parts = [HEADER]
    parts += ["# --- nested values of request bodies ---\n" + _body_dict(*BODY_DICTS[0])]
    parts += [_body_dict(conv, name) for conv, name in BODY_DICTS[1:]]
    parts += ["# --- nested values of views ---\n" + _typeddict(*VIEW_DICTS[0])]
    parts += [_typeddict(name, keys) for name, keys in VIEW_DICTS[1:]]
    for res, name in RESOURCES:
        parts.append(f"# --- {res.name} ---\n" + _typeddict(name, view_keys(res)))
        if any(a.post for a in res.attrs):
            parts.append(_typeddict(f"{name}Create", create_keys(res)))
        if any(a.put for a in res.attrs):
            parts.append(_typeddict(f"{name}Update", update_keys(res), total=False))
    return "\n\n\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neutrino.resources.gen_types", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when types.py differs from the attribute maps")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python -m neutrino.resources.gen_types", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
