"""Declarative resource attribute maps and the request-body pipeline.

A ``Resource`` lists its ``Attr``s the way neutron-lib's attribute maps do
(allow_post / allow_put / default / convert / visible / filter / sort).  The
functions here turn a raw JSON body into a validated dict, in Neutron's order
of checks (so error messages match), and shape responses (``fields=`` and
per-attribute read policy).  Pure: no database, no HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.context import RequestContext
from neutrino.errors import bad, echo, invalid
from neutrino.resources import convert as cv
from neutrino.resources import policy

MISSING: Any = object()


@dataclass(frozen=True)
class Attr:
    name: str
    post: bool = False
    put: bool = False
    default: Any = MISSING  # MISSING + post => required
    convert: Callable[[Any], Any] | None = None
    visible: bool = True
    filter: bool = False
    sort: bool = False
    #: Column used to filter/sort in SQL; None => filtered on the dict.
    column: str | None = None


@dataclass(frozen=True)
class Resource:
    name: str  # "network"
    collection: str  # "networks" (URL path segment)
    attrs: tuple[Attr, ...]
    plural_key: str = ""  # JSON key of lists, default collection with '-' -> '_'
    policy_name: str = ""  # default: name
    by_name: dict[str, Attr] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {a.name: a for a in self.attrs})
        if not self.plural_key:
            object.__setattr__(self, "plural_key", self.collection.replace("-", "_"))
        if not self.policy_name:
            object.__setattr__(self, "policy_name", self.name)

    @property
    def key(self) -> str:
        return self.name

    def attr(self, name: str) -> Attr | None:
        return self.by_name.get(name)


def std_attrs(*, name: bool = True, description_put: bool = True, sort_project: bool = True) -> list[Attr]:
    """The standard attributes every Neutron resource carries."""
    out = [
        Attr("id", convert=cv.uuid_str, filter=True, sort=True, column="id"),
        Attr(
            "project_id",
            post=True,
            default=None,
            convert=cv.string(255),
            filter=True,
            sort=sort_project,
            column="project_id",
        ),
        Attr(
            "tenant_id",
            post=True,
            default=None,
            convert=cv.string(255),
            filter=True,
            sort=sort_project,
            column="project_id",
        ),
        Attr(
            "description",
            post=True,
            put=description_put,
            default="",
            convert=cv.string(255),
            filter=True,
            sort=True,
            column="description",
        ),
        Attr("created_at", filter=True, sort=True, column="created_at"),
        Attr("updated_at", filter=True, sort=True, column="updated_at"),
        Attr("revision_number", filter=True, sort=True, column="revision_number"),
        Attr("tags", filter=False),
    ]
    if name:
        out.insert(
            1,
            Attr(
                "name", post=True, put=True, default="", convert=cv.string(255), filter=True, sort=True, column="name"
            ),
        )
    return out


def _convert(res: Resource, attr: Attr, value: Any) -> Any:
    if attr.convert is None:
        return value
    try:
        return attr.convert(value)
    except cv.ConversionError as exc:
        # neutron-lib's convert_to_boolean/convert_to_int raise InvalidInput themselves.
        raise invalid(str(exc)) from None
    except ValueError as exc:
        reason = str(exc).rstrip(".")
        raise bad(f"Invalid input for {attr.name}. Reason: {reason}.") from None


def _project(ctx: RequestContext, body: dict[str, Any], *, creating: bool) -> None:
    pid, tid = body.get("project_id"), body.get("tenant_id")
    if pid is not None and tid is not None and pid != tid:
        raise bad("'project_id' and 'tenant_id' do not match")
    project = pid if pid is not None else tid
    # The service role too: the DHCP agent (service user, not admin) makes a network's DHCP
    # port in the network owner's project; policy still decides what the service role may create.
    if project is not None and not (ctx.is_admin or ctx.is_service) and project != ctx.project_id:
        raise bad(
            "Specifying 'project_id' other than the authenticated project in request is not "
            "allowed for the current user."
        )
    if creating:
        project = project if project is not None else ctx.project_id
        body["project_id"] = body["tenant_id"] = project


def unwrap_single(res: Resource, body: Any) -> dict[str, Any]:
    if body is None:  # an empty body: Neutron reports the missing resource key
        body = {}
    if not isinstance(body, dict):
        raise bad("Body contains invalid data")
    item = body.get(res.key)
    if item is None or res.key not in body:
        raise bad(f"Unable to find '{res.key}' in request body")
    if not isinstance(item, dict):
        raise bad("Body contains invalid data")
    return item


def unwrap_create(res: Resource, body: Any) -> tuple[list[dict[str, Any]], bool]:
    """Return (items, is_bulk) from a create body (single or bulk form)."""
    if body is None:  # an empty body: Neutron reports the missing resource key
        body = {}
    if not isinstance(body, dict):
        raise bad("Body contains invalid data")
    if res.plural_key in body and res.key not in body:
        items = body[res.plural_key]
        if not isinstance(items, list):
            raise bad("Body contains invalid data")
        if not items:
            raise bad("Resources required")
        out = []
        for it in items:
            if isinstance(it, dict) and res.key in it and len(it) == 1 and isinstance(it[res.key], dict):
                it = it[res.key]
            if not isinstance(it, dict):
                raise bad("Body contains invalid data")
            out.append(it)
        return out, True
    return [unwrap_single(res, body)], False


def prepare_create(
    ctx: RequestContext, res: Resource, item: dict[str, Any], extra_keys: Iterable[str] = ()
) -> dict[str, Any]:
    """Validate a POST item: unknown keys, required, not-postable, conversion.

    Returns a dict with every postable attribute (defaults filled in) and
    ``project_id``/``tenant_id`` resolved.  The set of keys the caller
    actually sent is stored under ``"__given__"``.
    """
    extras = set(extra_keys)
    # Neutron's order: project/tenant, unknown keys, defaults (required, not
    # allowed in POST) over the whole map, then conversion.
    _project(ctx, dict(item), creating=False)
    unknown = [k for k in item if k not in res.by_name and k not in extras]
    if unknown:
        raise bad(f"Unrecognized attribute(s) '{echo(', '.join(unknown))}'")
    for attr in res.attrs:
        if attr.name in item:
            if not attr.post:
                raise bad(f"Attribute '{attr.name}' not allowed in POST")
        elif attr.post and attr.default is MISSING:
            raise bad(f"Failed to parse request. Required attribute '{attr.name}' not specified")
    out: dict[str, Any] = {}
    for attr in res.attrs:
        if attr.name in item:
            out[attr.name] = _convert(res, attr, item[attr.name])
        elif attr.post:
            out[attr.name] = attr.default() if callable(attr.default) else attr.default
    for k in extras:
        if k in item:
            out[k] = item[k]
    _project(ctx, out, creating=True)
    out["__given__"] = frozenset(item)
    return out


def prepare_update(
    ctx: RequestContext, res: Resource, item: dict[str, Any], extra_keys: Iterable[str] = ()
) -> dict[str, Any]:
    """Validate a PUT item; returns only the keys given, converted."""
    extras = set(extra_keys)
    unknown = [k for k in item if k not in res.by_name and k not in extras]
    if unknown:
        raise bad(f"Unrecognized attribute(s) '{echo(', '.join(unknown))}'")
    out: dict[str, Any] = {}
    for k, v in item.items():
        attr = res.by_name.get(k)
        if attr is None:
            out[k] = v
            continue
        if not attr.put:
            raise bad(f"Cannot update read-only attribute {k}")
        out[k] = _convert(res, attr, v)
    return out


def attr_rules(res: Resource, action: str, body: Mapping[str, Any], *, creating: bool) -> list[tuple[str, list[str]]]:
    """The per-attribute policy rules a body triggers (see ``policy``)."""
    out: list[tuple[str, list[str]]] = []
    given = body.get("__given__", frozenset(body))
    for name, value in body.items():
        if name.startswith("__") or name in ("project_id", "tenant_id"):
            continue
        rule = f"{action}_{res.policy_name}:{name}"
        if rule not in policy.RULES:
            continue
        if creating:
            attr = res.by_name.get(name)
            default = attr.default if attr else MISSING
            if name not in given or value == default:
                continue
        subs: list[str] = []
        items = value if isinstance(value, list) else [value]
        for it in items:
            if isinstance(it, dict):
                for key in it:
                    sub = f"{rule}:{key}"
                    if sub in policy.RULES and sub not in subs:
                        subs.append(sub)
        out.append((rule, subs))
    return out


class Shaper:
    """Applies read policy (strips attributes) and ``fields=`` to response dicts.

    ``get_X:<attr>`` rules depend on the caller's roles only, so the set of
    stripped attributes is computed once per request, not per object.
    """

    def __init__(self, ctx: RequestContext, res: Resource, fields: list[str] | None = None) -> None:
        prefix = f"get_{res.policy_name}:"
        self.strip = frozenset(
            rule[len(prefix) :] for rule in policy.RULES if rule.startswith(prefix) and not policy.check(ctx, rule, {})
        )
        self.fields = [f for f in fields if f not in self.strip] if fields else None

    def __call__(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON dict of a service's typed value (``neutrino.resources.types``): the value itself
        (every typed value is a dict) when nothing is hidden or selected."""
        if self.fields is not None:
            return {k: obj[k] for k in self.fields if k in obj}
        if self.strip:
            return {k: v for k, v in obj.items() if k not in self.strip}
        return obj if isinstance(obj, dict) else dict(obj)
