"""JSON schemas (OpenAPI 3.0 dialect) of the values the resource schema accepts; pure.

``converter_schema`` describes what an attribute's converter
(``neutrino.resources.convert``, or one defined beside the attribute maps)
accepts; ``body_schema`` and ``response_schema`` describe a resource's POST/PUT
bodies and its views, ``query_item_schema`` one filter value.  Used by
``neutrino.api.openapi``, which builds the operations from them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from neutrino.resources import convert as cv
from neutrino.resources import definitions
from neutrino.resources.resource import MISSING, Attr, Resource

UUID_SCHEMA = {"type": "string", "format": "uuid"}
_IP = {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}
_CIDR = {"type": "string", "format": "cidr"}
_MAC = {"type": "string", "format": "mac-address", "pattern": "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"}
_PORT_RANGE = {"type": "string", "pattern": "^[0-9]{1,5}(:[0-9]{1,5})?$"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out["nullable"] = True
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _plain_schemas() -> dict[Callable[..., Any], dict[str, Any]]:
    """Converters that are plain functions of ``neutrino.resources.convert``."""
    return {
        cv.to_bool: {"type": "boolean"},
        cv.to_int: {"type": "integer"},
        cv.uuid_str: UUID_SCHEMA,
        cv.uuid_or_none: _nullable(UUID_SCHEMA),
        cv.mac: _MAC,
        cv.ip: _IP,
        cv.ip_or_none: _nullable(_IP),
        cv.cidr_keep_host: _CIDR,
        cv.subnet_cidr: _CIDR,
        cv.ip_or_cidr: {"anyOf": [*_IP["anyOf"], _CIDR]},
        cv.dict_value: {"type": "object"},
        cv.dict_or_none: {"type": "object", "nullable": True},
        cv.tag: {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^,]*$"},
        cv.any_value: {},
    }


def _local_schemas() -> dict[Callable[..., Any], dict[str, Any]]:
    """Converters defined next to the attribute maps (``neutrino.resources.definitions``)."""
    ext_gw = converter_schema(definitions._ext_gw_dict)
    route = converter_schema(definitions._route)
    return {
        definitions._ext_gw: {"anyOf": [ext_gw, {"type": "object", "maxProperties": 0}]},
        definitions._routes: {"type": "array", "items": route, "uniqueItems": True, "nullable": True},
        definitions._check_port_range: _PORT_RANGE,
        definitions._pf_port: {"type": "integer", "minimum": 0, "maximum": 65535},
        # Any string: an unknown or malformed group id is a 404, not a 400.
        definitions._group_id: {"type": "string", "maxLength": 255},
        definitions._protocol: {
            "anyOf": [{"type": "string", "maxLength": 40}, {"type": "integer", "minimum": 0, "maximum": 255}]
        },
        definitions.subports: {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["port_id"],
                "additionalProperties": False,
                "properties": {
                    "port_id": UUID_SCHEMA,
                    "segmentation_type": {"type": "string", "enum": ["vlan"]},
                    "segmentation_id": {"type": "integer", "minimum": 1, "maximum": 4094},
                },
            },
        },
    }


def _factory(conv: Callable[..., Any]) -> tuple[str, dict[str, Any]] | None:
    """(factory name, closure variables) of a converter made by a factory of ``convert``."""
    qual = getattr(conv, "__qualname__", "")
    if getattr(conv, "__module__", None) != cv.__name__ or ".<locals>." not in qual:
        return None
    return qual.split(".<locals>.")[0], dict(inspect.getclosurevars(conv).nonlocals)


def converter_schema(conv: Callable[..., Any] | None) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.0 dialect) of the values ``conv`` accepts.

    Describes the canonical, JSON-typed inputs (``true`` rather than
    ``"yes"``); unknown converters get ``{}`` (anything).
    """
    if conv is None:
        return {}
    plain = _plain_schemas().get(conv)
    if plain is not None:
        return dict(plain)
    if getattr(conv, "__module__", None) == definitions.__name__:
        local = _local_schemas().get(conv)
        return dict(local) if local is not None else {}
    made = _factory(conv)
    if made is None:
        return {}
    name, env = made
    if name == "string":
        out: dict[str, Any] = {"type": "string"}
        if env.get("max_len") is not None:
            out["maxLength"] = env["max_len"]
        return out
    if name == "nullable":
        return _nullable(converter_schema(env["conv"]))
    if name == "one_of":
        schema = {"enum": list(env["choices"])}
        return _nullable(schema) if env.get("nullable") else schema
    if name == "int_one_of":
        return {"type": "integer", "enum": list(env["choices"])}
    if name == "in_range":
        return {"type": "integer", "minimum": env["lo"], "maximum": env["hi"]}
    if name == "list_of":
        out = {"type": "array", "items": converter_schema(env["item"])}
        if env.get("unique"):
            out["uniqueItems"] = True
        return out
    if name == "fixed_ips":
        return converter_schema(env["inner"])
    if name == "dict_of":
        out = {
            "type": "object",
            "properties": {k: converter_schema(c) for k, c in env["spec"].items()},
            "additionalProperties": False,
        }
        if env.get("required"):
            out["required"] = list(env["required"])
        return out
    return {}


def query_item_schema(attr: Attr) -> dict[str, Any]:
    """A filter value's schema: scalars as the attribute, anything else as text."""
    schema = converter_schema(attr.convert)
    schema.pop("nullable", None)
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    if schema.get("type") in ("boolean", "integer", "string") or "enum" in schema or "anyOf" in schema:
        return schema
    return {"type": "string"}


def body_schema(res: Resource, *, creating: bool, extra: Iterable[str] = ()) -> dict[str, Any]:
    """The inner object of a POST or PUT body: the attributes allowed there."""
    props: dict[str, Any] = {}
    required: list[str] = []
    for attr in res.attrs:
        if attr.post if creating else attr.put:
            props[attr.name] = converter_schema(attr.convert)
            if creating and attr.default is MISSING:
                required.append(attr.name)
    for name in extra:
        props.setdefault(name, {})
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def response_schema(res: Resource) -> dict[str, Any]:
    return {"type": "object", "properties": {a.name: {} for a in res.attrs if a.visible}}
