"""An OpenAPI 3.0 description of the served Neutron v2.0 API, built from the attribute maps.

``document(api)`` walks what a ``NetworkApi`` really serves (its collections,
sub-collections, member actions, the tags sub-API, quotas, extensions) and
describes each operation from the resource's ``Attr``s: what may be POSTed
and PUT, which keys are required, which may be filtered and sorted on, and a
JSON schema per attribute derived from its converter (``neutrino.resources.convert``).
A converter this module does not know gets the permissive schema ``{}``
(the value schemas are ``neutrino.api.openapi_schemas``; this module builds the operations).

The document is served at ``GET /v2.0/openapi.json`` without a token (it is
the same for every caller and holds nothing but the published contract) and
a copy is kept at ``docs/openapi.json``:

    python -m neutrino.api.openapi                 # rewrite docs/openapi.json
    python -m neutrino.api.openapi --check         # exit 1 when it is stale
    python -m neutrino.api.openapi --output -      # print it

Formats beyond OpenAPI's own: ``cidr`` (an IPv4/IPv6 network, host bits
allowed) and ``mac-address``.  Tools that do not know them ignore them.
Pure: no database, no HTTP.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from neutrino import config
from neutrino.api import extensions
from neutrino.api.openapi_schemas import (
    UUID_SCHEMA,
    body_schema,
    converter_schema,
    query_item_schema,
    response_schema,
)
from neutrino.context import AuthInfo
from neutrino.db.engine import Database
from neutrino.feed.publisher import Feed
from neutrino.resources import convert as cv
from neutrino.resources import definitions
from neutrino.resources.resource import Resource
from neutrino.services.quotas import ORDER
from neutrino.services.tags import TAGGABLE

#: Where the document is served (no token needed).
OPENAPI_PATH = "/v2.0/openapi.json"
#: The kept copy, relative to the source tree's root.
DOC_FILE = Path("docs") / "openapi.json"
API_VERSION = "2.0"

#: The five standard operations of a collection.
ALL_OPS = ("list", "create", "show", "update", "delete")
#: Collections and sub-collections that serve fewer (the others answer 405 or 404).
LIMITED_OPS: dict[Any, tuple[str, ...]] = {
    "agents": ("list", "show", "update", "delete"),  # agents register through reports
    "availability_zones": ("list",),
    "security-group-rules": ("list", "create", "show", "delete"),  # rules are immutable
    ("agents", "dhcp-networks"): ("list",),  # + POST {"network_id"} / DELETE: _Builder.scheduling
    ("agents", "l3-routers"): ("list",),  # + POST {"router_id"} / DELETE
    "network-ip-availabilities": ("list", "show"),
    "service-providers": ("list",),
    ("networks", "dhcp-agents"): ("list",),
    ("routers", "l3-agents"): ("list",),
}

_ERROR_REF = {"$ref": "#/components/schemas/NeutronError"}


# ----------------------------------------------------------------------------------------------
# Pieces of operations
# ----------------------------------------------------------------------------------------------
def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"401": {"$ref": "#/components/responses/Unauthorized"}}
    for code in codes:
        out[str(code)] = {"$ref": "#/components/responses/Error"}
    return out


def _ok(code: int, description: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    resp: dict[str, Any] = {"description": description}
    if schema is not None:
        resp["content"] = _json_content(schema)
    return {str(code): resp}


def _wrapped(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: schema}, "additionalProperties": False}


def _path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _id_param(res: Resource) -> dict[str, Any]:
    return _path_param(f"{res.name}_id", f"The {res.name}'s id.", UUID_SCHEMA)


def _param_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/parameters/{name}"}


def _common_params() -> dict[str, Any]:
    """Parameters shared by many operations (``components/parameters``)."""

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    out = {
        "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "description": "Only act when the object's revision is this one (revision-if-match).",
            "schema": {"type": "string", "pattern": "^revision_number=[0-9]+$"},
        },
        "SortDir": {
            "name": "sort_dir",
            "in": "query",
            "required": False,
            "style": "form",
            "explode": True,
            "description": "One direction per sort_key.",
            "schema": {"type": "array", "items": {"type": "string", "enum": ["asc", "desc"]}},
        },
        "Limit": query("limit", {"type": "integer", "minimum": 0}, "Page size."),
        "Marker": query("marker", UUID_SCHEMA, "Id of the last object seen."),
        "PageReverse": query("page_reverse", {"type": "boolean"}, "Page backwards."),
    }
    for name in _TAG_FILTERS:
        out[_camel(name.replace("-", "_"))] = query(name, {"type": "string"}, "Comma-separated tags.")
    return out


_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def _list_params(res: Resource, special: Iterable[str], *, taggable: bool) -> list[dict[str, Any]]:
    """Query parameters of a list: fields, filters, sorting, pagination, tags."""
    visible = [a.name for a in res.attrs if a.visible]
    sortable = [a.name for a in res.attrs if a.sort]

    def many(name: str, items: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "style": "form",
            "explode": True,
            "schema": {"type": "array", "items": items},
        }

    params = [many("fields", {"type": "string", "enum": visible}, "Return only these attributes.")]
    for attr in res.attrs:
        if attr.filter:
            params.append(many(attr.name, query_item_schema(attr), f"Filter on {attr.name} (any of)."))
    for name in special:
        if name not in res.by_name:
            params.append(many(name, {"type": "string"}, f"The {name} filter."))
    if sortable:
        params.append(many("sort_key", {"type": "string", "enum": sortable}, "Sort keys (with sort_dir)."))
        params.append(_param_ref("SortDir"))
    params += [_param_ref("Limit"), _param_ref("Marker"), _param_ref("PageReverse")]
    if taggable:
        params += [_param_ref(_camel(name.replace("-", "_"))) for name in _TAG_FILTERS]
    return params


def _op_id(verb: str, *words: str) -> str:
    return "_".join([verb, *words]).replace("-", "_").replace(":", "_")


# ----------------------------------------------------------------------------------------------
# Operations per part of the API
# ----------------------------------------------------------------------------------------------
class _Builder:
    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {}

    def add(self, path: str, method: str, op: dict[str, Any]) -> None:
        self.paths.setdefault(path, {})[method] = op

    def resource_schemas(self, res: Resource, *, creatable: bool, updatable: bool) -> None:
        """Component schemas ``<Name>``, ``<Name>Create`` and ``<Name>Update`` of a resource."""
        base = _camel(res.name)
        self.schemas.setdefault(base, response_schema(res))
        if creatable:
            self.schemas.setdefault(f"{base}Create", body_schema(res, creating=True))
        if updatable:
            self.schemas.setdefault(f"{base}Update", body_schema(res, creating=False))

    def collection(
        self,
        res: Resource,
        ops: Sequence[str],
        *,
        prefix: str,
        tag: str,
        parent: list[dict[str, Any]],
        special: Iterable[str] = (),
        taggable: bool = False,
        bulk: bool = True,
        if_match: bool = True,
        names: Sequence[str] = (),
        name: Sequence[str] = (),
    ) -> None:
        """list/create on ``prefix``, show/update/delete on ``prefix/{id}``.

        ``names``/``name``: the words of the operation ids (default: the
        resource's plural and singular).
        """
        base = _camel(res.name)
        self.resource_schemas(res, creatable="create" in ops, updatable="update" in ops)
        one = _wrapped(res.key, _ref(base))
        member = f"{prefix}/{{{res.name}_id}}"
        ident = [*parent, _id_param(res)]
        names = list(names or [res.plural_key])
        name = list(name or [res.name])
        if "list" in ops:
            self.add(
                prefix,
                "get",
                {
                    "operationId": _op_id("list", *names),
                    "tags": [tag],
                    "summary": f"List {res.plural_key}.",
                    "parameters": [*parent, *_list_params(res, special, taggable=taggable)],
                    "responses": {
                        **_ok(
                            200,
                            "The visible objects.",
                            {
                                "type": "object",
                                "required": [res.plural_key],
                                "properties": {
                                    res.plural_key: {"type": "array", "items": _ref(base)},
                                    f"{res.plural_key}_links": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                        ),
                        **_errors(400, 403, 404),
                    },
                },
            )
        if "create" in ops:
            single = _wrapped(res.key, _ref(f"{base}Create"))
            body = single
            if bulk:
                body = {
                    "oneOf": [
                        single,
                        _wrapped(res.plural_key, {"type": "array", "minItems": 1, "items": _ref(f"{base}Create")}),
                    ]
                }
            self.add(
                prefix,
                "post",
                {
                    "operationId": _op_id("create", *name),
                    "tags": [tag],
                    "summary": f"Create a {res.name}" + (" (or several, in the bulk form)." if bulk else "."),
                    "parameters": list(parent),
                    "requestBody": {"required": True, "content": _json_content(body)},
                    "responses": {**_ok(201, "Created.", {"type": "object"}), **_errors(400, 403, 404, 409)},
                },
            )
        if "show" in ops:
            self.add(
                member,
                "get",
                {
                    "operationId": _op_id("show", *name),
                    "tags": [tag],
                    "summary": f"Show a {res.name}.",
                    "parameters": [*ident, _list_params(res, (), taggable=False)[0]],
                    "responses": {**_ok(200, "The object.", one), **_errors(400, 403, 404)},
                },
            )
        if "update" in ops:
            self.add(
                member,
                "put",
                {
                    "operationId": _op_id("update", *name),
                    "tags": [tag],
                    "summary": f"Update a {res.name}.",
                    "parameters": [*ident, *([_param_ref("IfMatch")] if if_match else [])],
                    "requestBody": {
                        "required": True,
                        "content": _json_content(_wrapped(res.key, _ref(f"{base}Update"))),
                    },
                    "responses": {**_ok(200, "The updated object.", one), **_errors(400, 403, 404, 409, 412)},
                },
            )
        if "delete" in ops:
            self.add(
                member,
                "delete",
                {
                    "operationId": _op_id("delete", *name),
                    "tags": [tag],
                    "summary": f"Delete a {res.name}.",
                    "parameters": [*ident, *([_param_ref("IfMatch")] if if_match else [])],
                    "responses": {**_ok(204, "Deleted.", None), **_errors(400, 403, 404, 409, 412)},
                },
            )

    def tags(self, res: Resource, prefix: str) -> None:
        """The tags sub-API of one collection."""
        member = f"{prefix}/{{{res.name}_id}}/tags"
        ident = [_id_param(res)]
        tag_param = _path_param("tag", "A tag.", converter_schema(cv.tag))
        tag_list = _wrapped("tags", {"type": "array", "items": converter_schema(cv.tag), "maxItems": 50})
        body = {"required": True, "content": _json_content(tag_list)}
        group = "tags"
        self.add(
            member,
            "get",
            {
                "operationId": _op_id("list", res.name, "tags"),
                "tags": [group],
                "summary": f"The tags of a {res.name}.",
                "parameters": ident,
                "responses": {**_ok(200, "Its tags.", tag_list), **_errors(404)},
            },
        )
        self.add(
            member,
            "put",
            {
                "operationId": _op_id("replace", res.name, "tags"),
                "tags": [group],
                "summary": f"Replace the tags of a {res.name}.",
                "parameters": ident,
                "requestBody": body,
                "responses": {**_ok(200, "The new tags.", tag_list), **_errors(400, 403, 404)},
            },
        )
        self.add(
            member,
            "post",
            {
                "operationId": _op_id("add", res.name, "tags"),
                "tags": [group],
                "summary": f"Add tags to a {res.name}.",
                "parameters": ident,
                "requestBody": body,
                "responses": {**_ok(200, "The new tags.", tag_list), **_errors(400, 403, 404)},
            },
        )
        self.add(
            member,
            "delete",
            {
                "operationId": _op_id("remove_all", res.name, "tags"),
                "tags": [group],
                "summary": f"Remove every tag of a {res.name}.",
                "parameters": ident,
                "responses": {**_ok(204, "Removed.", None), **_errors(403, 404)},
            },
        )
        one = f"{member}/{{tag}}"
        self.add(
            one,
            "get",
            {
                "operationId": _op_id("check", res.name, "tag"),
                "tags": [group],
                "summary": f"Whether a {res.name} has a tag.",
                "parameters": [*ident, tag_param],
                "responses": {**_ok(204, "It has.", None), **_errors(404)},
            },
        )
        self.add(
            one,
            "put",
            {
                "operationId": _op_id("add", res.name, "tag"),
                "tags": [group],
                "summary": f"Add one tag to a {res.name}.",
                "parameters": [*ident, tag_param],
                "responses": {**_ok(201, "Added.", None), **_errors(400, 403, 404)},
            },
        )
        self.add(
            one,
            "delete",
            {
                "operationId": _op_id("remove", res.name, "tag"),
                "tags": [group],
                "summary": f"Remove one tag of a {res.name}.",
                "parameters": [*ident, tag_param],
                "responses": {**_ok(204, "Removed.", None), **_errors(400, 403, 404)},
            },
        )

    def action(self, res: Resource, prefix: str, name: str, body: dict[str, Any]) -> None:
        """A member action: ``PUT prefix/{id}/name``."""
        self.add(
            f"{prefix}/{{{res.name}_id}}/{name}",
            "put",
            {
                "operationId": _op_id(name),
                "tags": [res.collection],
                "summary": f"The {name} action.",
                "parameters": [_id_param(res)],
                "requestBody": {"required": True, "content": _json_content(body)},
                "responses": {**_ok(200, "The result.", {"type": "object"}), **_errors(400, 403, 404, 409)},
            },
        )

    def scheduling(self, prefix: str, parent: dict[str, Any], child_col: str, child: str) -> None:
        """Scheduling by hand: ``POST prefix`` with ``{child_col: id}`` (201, body ``null``) and
        ``DELETE prefix/{child_col}``, admin only (``Bindings.create_raw`` / ``delete``)."""
        tag = "agents"
        self.add(
            prefix,
            "post",
            {
                "operationId": _op_id("add", child, "to", "agent"),
                "tags": [tag],
                "summary": f"Schedule a {child} to the agent.",
                "parameters": [parent],
                "requestBody": {
                    "required": True,
                    "content": _json_content(
                        {
                            "type": "object",
                            "required": [child_col],
                            "additionalProperties": False,
                            "properties": {child_col: UUID_SCHEMA},
                        }
                    ),
                },
                "responses": {**_ok(201, "Scheduled (body: null).", {"nullable": True}), **_errors(400, 403, 404, 409)},
            },
        )
        self.add(
            f"{prefix}/{{{child_col}}}",
            "delete",
            {
                "operationId": _op_id("remove", child, "from", "agent"),
                "tags": [tag],
                "summary": f"Remove a {child} from the agent.",
                "parameters": [parent, _path_param(child_col, f"The {child}'s id.", UUID_SCHEMA)],
                "responses": {**_ok(204, "Removed.", None), **_errors(403, 404, 409)},
            },
        )

    def read_action(self, res: Resource, prefix: str, name: str) -> None:
        """A member read: ``GET prefix/{id}/name`` (trunks' ``get_subports``)."""
        self.add(
            f"{prefix}/{{{res.name}_id}}/{name}",
            "get",
            {
                "operationId": _op_id(name),
                "tags": [res.collection],
                "summary": f"The {name} query.",
                "parameters": [_id_param(res)],
                "responses": {**_ok(200, "The result.", {"type": "object"}), **_errors(403, 404)},
            },
        )


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("-", "_").split("_"))


def _action_bodies() -> dict[str, dict[str, Any]]:
    """Request bodies of the member actions this module knows (others: any object)."""
    interface = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {"subnet_id": UUID_SCHEMA, "port_id": UUID_SCHEMA},
    }
    routes = _wrapped("router", _wrapped("routes", converter_schema(definitions.route_list)))
    subports = _wrapped(
        "sub_ports",
        {
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
    )
    prefixes = _wrapped(
        "prefixes",
        {"type": "array", "minItems": 1, "items": {"type": "string"}, "description": "CIDRs of the pool's IP version."},
    )
    return {
        "add_subports": subports,
        "remove_subports": subports,
        "add_router_interface": interface,
        "remove_router_interface": interface,
        "add_extraroutes": routes,
        "remove_extraroutes": routes,
        "add_prefixes": prefixes,
        "remove_prefixes": prefixes,
    }


def _quotas(b: _Builder) -> None:
    prefix = "/v2.0/quotas"
    project = _path_param("project_id", "A project's id.")
    limits = {"type": "object", "properties": {name: {"type": "integer"} for name in ORDER}}
    quota = _wrapped("quota", limits)
    update = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **{name: {"type": "integer", "minimum": -1} for name in ORDER},
            "force": {"type": "boolean"},
            "check_limit": {"type": "boolean"},
        },
    }
    b.add(
        prefix,
        "get",
        {
            "operationId": "list_quotas",
            "tags": ["quotas"],
            "summary": "Projects with quotas that differ from the defaults.",
            "responses": {
                **_ok(
                    200,
                    "The quotas.",
                    {"type": "object", "required": ["quotas"], "properties": {"quotas": {"type": "array"}}},
                ),
                **_errors(403),
            },
        },
    )
    b.add(
        f"{prefix}/tenant",
        "get",
        {
            "operationId": "show_quota_tenant",
            "tags": ["quotas"],
            "summary": "The caller's project id.",
            "responses": {**_ok(200, "The project.", {"type": "object"}), **_errors()},
        },
    )
    b.add(
        f"{prefix}/{{project_id}}",
        "get",
        {
            "operationId": "show_quota",
            "tags": ["quotas"],
            "summary": "A project's limits.",
            "parameters": [project],
            "responses": {**_ok(200, "The limits.", quota), **_errors(403)},
        },
    )
    b.add(
        f"{prefix}/{{project_id}}",
        "put",
        {
            "operationId": "update_quota",
            "tags": ["quotas"],
            "summary": "Set a project's limits (admin).",
            "parameters": [project],
            "requestBody": {"required": True, "content": _json_content(_wrapped("quota", update))},
            "responses": {**_ok(200, "The limits.", quota), **_errors(400, 403, 409)},
        },
    )
    b.add(
        f"{prefix}/{{project_id}}",
        "delete",
        {
            "operationId": "delete_quota",
            "tags": ["quotas"],
            "summary": "Reset a project's limits (admin).",
            "parameters": [project],
            "responses": {**_ok(204, "Reset.", None), **_errors(403)},
        },
    )
    for sub, what in (("default", "The default limits."), ("details", "Limits with usage.")):
        b.add(
            f"{prefix}/{{project_id}}/{sub}",
            "get",
            {
                "operationId": f"show_quota_{sub}",
                "tags": ["quotas"],
                "summary": what,
                "parameters": [project],
                "responses": {**_ok(200, what, {"type": "object"}), **_errors(403)},
            },
        )


def _general(b: _Builder) -> None:
    public: list[dict[str, Any]] = []
    b.add(
        "/",
        "get",
        {
            "operationId": "list_api_versions",
            "tags": ["general"],
            "security": public,
            "summary": "The API versions.",
            "responses": _ok(200, "The versions.", {"type": "object", "required": ["versions"]}),
        },
    )
    b.add(
        "/v2.0/",
        "get",
        {
            "operationId": "list_resources",
            "tags": ["general"],
            "summary": "The core resources.",
            "responses": {**_ok(200, "The resources.", {"type": "object"}), **_errors()},
        },
    )
    b.add(
        OPENAPI_PATH,
        "get",
        {
            "operationId": "show_openapi",
            "tags": ["general"],
            "security": public,
            "summary": "This document.",
            "responses": _ok(200, "The OpenAPI document.", {"type": "object"}),
        },
    )
    b.add(
        "/v2.0/extensions",
        "get",
        {
            "operationId": "list_extensions",
            "tags": ["extensions"],
            "summary": "The extensions served.",
            "responses": {**_ok(200, "The extensions.", {"type": "object", "required": ["extensions"]}), **_errors()},
        },
    )
    b.add(
        "/v2.0/extensions/{alias}",
        "get",
        {
            "operationId": "show_extension",
            "tags": ["extensions"],
            "summary": "One extension.",
            "parameters": [
                _path_param(
                    "alias", "The extension's alias.", {"type": "string", "enum": sorted(extensions.EXTENSIONS)}
                )
            ],
            "responses": {**_ok(200, "The extension.", {"type": "object", "required": ["extension"]}), **_errors(404)},
        },
    )


def _components(b: _Builder) -> dict[str, Any]:
    error = {
        "type": "object",
        "required": ["NeutronError"],
        "additionalProperties": False,
        "properties": {
            "NeutronError": {
                "type": "object",
                "required": ["type", "message", "detail"],
                "additionalProperties": False,
                "properties": {
                    "type": {"type": "string", "description": "The exception's name."},
                    "message": {"type": "string"},
                    "detail": {"type": "string"},
                },
            }
        },
    }
    auth_error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "title", "message"],
                "properties": {"code": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    }
    return {
        "securitySchemes": {
            "keystone": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": "A Keystone v3 token (POST /v3/auth/tokens).",
            }
        },
        "parameters": _common_params(),
        "schemas": {"NeutronError": error, "AuthError": auth_error, **dict(sorted(b.schemas.items()))},
        "responses": {
            "Error": {"description": "A rejected request; nothing was changed.", "content": _json_content(_ERROR_REF)},
            "Unauthorized": {
                "description": "No token, or an invalid or expired one.",
                "content": _json_content(_ref("AuthError")),
            },
        },
    }


def document(api: Any) -> dict[str, Any]:
    """The OpenAPI 3.0 document of what ``api`` (a ``NetworkApi``) serves under ``/`` and ``/v2.0/``.

    Deterministic: the same registry gives the same document.  The agent
    API under ``/neutrino/v1/`` is not part of it.
    """
    b = _Builder()
    _general(b)
    actions = _action_bodies()
    for coll, svc in api.services.items():
        res: Resource = svc.resource
        prefix = f"/v2.0/{coll}"
        ops = LIMITED_OPS.get(coll, ALL_OPS)
        b.collection(
            res,
            ops,
            prefix=prefix,
            tag=coll,
            parent=[],
            special=getattr(svc, "special_filters", ("fixed_ips",)),
            taggable=coll in TAGGABLE,
            bulk=True,
        )
        if coll in TAGGABLE:
            b.tags(res, prefix)
        for name in getattr(svc, "member_actions", {}):
            b.action(res, prefix, name, actions.get(name, {"type": "object"}))
        for name in getattr(svc, "member_reads", {}):
            b.read_action(res, prefix, name)
    for (coll, sub), subsvc in api.subresources.items():
        parent_res: Resource = api.services[coll].resource
        sub_res: Resource = subsvc.resource
        b.collection(
            sub_res,
            LIMITED_OPS.get((coll, sub), ALL_OPS),
            prefix=f"/v2.0/{coll}/{{{parent_res.name}_id}}/{sub}",
            tag=coll,
            parent=[_id_param(parent_res)],
            bulk=False,
            if_match=False,
            names=(parent_res.name, sub),
            name=(parent_res.name, sub_res.name),
        )
        if getattr(subsvc, "writable", None) is not None:
            b.scheduling(
                f"/v2.0/{coll}/{{{parent_res.name}_id}}/{sub}", _id_param(parent_res), subsvc.child_col, sub_res.name
            )
    if api.quota_service is not None:
        _quotas(b)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Neutrino networking API (Neutron v2.0)",
            "version": API_VERSION,
            "description": "Generated from the attribute maps by neutrino.api.openapi; "
            "every rejected request answers a NeutronError and changes nothing.",
        },
        "servers": [{"url": "/"}],
        "security": [{"keystone": []}],
        "paths": b.paths,
        "components": _components(b),
    }


def render(doc: dict[str, Any]) -> bytes:
    """The document as the bytes kept in ``docs/openapi.json`` (and served)."""
    return (json.dumps(doc, indent=1, ensure_ascii=True) + "\n").encode()


def reference_api() -> Any:
    """A ``NetworkApi`` with every service the factory registers, on a database never opened."""
    # The factory imports api.app, which serves this document (api.app imports this module).
    from neutrino.api.factory import make_deps, make_network_api  # noqa: PLC0415 - module level would be a cycle

    cfg = config.defaults("/nonexistent-neutrino-state")
    db = Database("sqlite:////nonexistent-neutrino-state/unused.db")
    return make_network_api(make_deps(cfg, db), _no_tokens, feed=Feed(db))  # a feed nobody follows


def _no_tokens(token: str) -> AuthInfo:
    """The reference API describes itself and serves no request: no token is ever valid."""
    raise RuntimeError("the reference API validates no token")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m neutrino.api.openapi", description="Write (or check) the OpenAPI document of the network API."
    )
    root = Path(__file__).resolve().parents[2]
    parser.add_argument("--output", default=str(root / DOC_FILE), help="file to write, '-' for stdout")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from the code")
    args = parser.parse_args(argv)
    data = render(document(reference_api()))
    if args.output == "-":
        sys.stdout.write(data.decode())
        return 0
    out = Path(args.output)
    if args.check:
        if not out.exists() or out.read_bytes() != data:
            print(f"{out} is stale: run python -m neutrino.api.openapi", file=sys.stderr)
            return 1
        return 0
    out.write_bytes(data)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
