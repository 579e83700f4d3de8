"""List queries: ``fields=``, filters, sorting and pagination, as Neutron parses them.

``parse_list_query`` validates the query string against a ``Resource`` and
returns a ``ListQuery``; ``apply`` runs the parts that were not pushed down
to SQL (dict filters, sorting, marker/limit) and builds the ``*_links``.
Pure: no database, no HTTP objects (the URL parts are passed in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from neutrino.errors import BadRequest, bad, echo, invalid
from neutrino.resources.convert import ConversionError, to_int
from neutrino.resources.resource import Resource

#: Filters on integer values (columns or dict fields) -> the bits of their
#: signed column.  Their values must be integers (else 400, as neutron-lib's
#: ``convert_to_int``); one that fails the attribute's own validation
#: (``ip_version=7``) is kept as an integer, and one the column cannot hold is
#: dropped: either matches nothing.  A unit test keeps this in step with the
#: integer columns.
INTEGER_FILTERS: dict[str, int] = {
    "revision_number": 64,
    "mtu": 32,
    "ip_version": 32,
    "port_range_min": 32,
    "port_range_max": 32,
    "provider:segmentation_id": 32,
    "external_port": 32,
    "internal_port": 32,
    "default_prefixlen": 32,
    "min_prefixlen": 32,
    "max_prefixlen": 32,
    "default_quota": 32,
}
#: A filter value that can match nothing (dropped from ``ListQuery.filters``).
_NOTHING: Any = object()

# Query keys that are not attribute filters.
_RESERVED = {
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "changed_since",
    "ip_address_substr",
    "verbose",
}


@dataclass
class ListQuery:
    fields: list[str] | None = None
    #: attribute -> accepted values (converted); OR within, AND across.
    filters: dict[str, list[Any]] = field(default_factory=dict)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (key, ascending)
    limit: int = 0
    marker: str | None = None
    page_reverse: bool = False
    tags_all: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags_all: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    changed_since: str | None = None
    #: Extra resource-specific filters the service interprets (e.g. fixed_ips).
    special: dict[str, list[str]] = field(default_factory=dict)


def _to_bool_param(v: str) -> bool:
    low = v.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise bad(f"'{echo(v)}' cannot be converted to boolean")


def parse_list_query(
    res: Resource, params: list[tuple[str, str]], *, special: tuple[str, ...] = (), max_limit: int = -1
) -> ListQuery:
    q = ListQuery()
    grouped: dict[str, list[str]] = {}
    for k, v in params:
        if "\x00" in k or "\x00" in v:  # nothing matches it, and PostgreSQL cannot even compare it
            raise bad(f"Invalid query parameter '{echo(k)}': NUL characters are not allowed")
        grouped.setdefault(k, []).append(v)

    if "fields" in grouped:
        q.fields = [f for f in grouped["fields"] if f]
    bad_filters = []
    for key, values in grouped.items():
        if key in _RESERVED:
            continue
        if key in special:
            q.special[key] = values
            continue
        attr = res.by_name.get(key)
        if attr is None or not attr.filter:
            bad_filters.append(key)
            continue
        if key in INTEGER_FILTERS:
            converted = [_integer_filter(attr.convert, INTEGER_FILTERS[key], v) for v in values]
        else:
            converted = [_convert_filter(attr.convert, attr.name, v) for v in values]
        q.filters[key] = [v for v in converted if v is not _NOTHING]
    if bad_filters:
        raise bad(f"{echo(bad_filters)} is invalid attribute for filtering")

    keys, dirs = grouped.get("sort_key", []), grouped.get("sort_dir", [])
    if keys or dirs:
        if len(keys) != len(dirs):
            raise bad("The number of sort_keys and sort_dirs must be same")
        invalid = [k for k in keys if not (res.by_name.get(k) and res.by_name[k].sort)]
        if invalid:
            raise bad(f"{echo(invalid)} is invalid attribute for sort_keys")
        bad_dirs = [d for d in dirs if d not in ("asc", "desc")]
        if bad_dirs:
            raise bad(f"{echo(bad_dirs)} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
        q.sorts = [(k, d == "asc") for k, d in zip(keys, dirs, strict=True)]  # equal lengths, checked above

    if "limit" in grouped:
        raw = grouped["limit"][-1]
        try:
            lim = int(raw)
            if lim < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(
                resource="limit", msg=f"Limit must be an integer 0 or greater and not '{echo(raw)}'"
            ) from None
        if max_limit > 0 and (lim == 0 or lim > max_limit):
            lim = max_limit
        q.limit = lim
    elif max_limit > 0:
        q.limit = max_limit
    if "marker" in grouped:
        q.marker = grouped["marker"][-1]
    if "page_reverse" in grouped:
        q.page_reverse = _to_bool_param(grouped["page_reverse"][-1])

    for key, target in (
        ("tags", q.tags_all),
        ("tags-any", q.tags_any),
        ("not-tags", q.not_tags_all),
        ("not-tags-any", q.not_tags_any),
    ):
        for v in grouped.get(key, []):
            target.extend(t for t in v.split(",") if t)
    if "changed_since" in grouped:
        q.changed_since = grouped["changed_since"][-1]
    if "ip_address_substr" in grouped:
        q.special["ip_address_substr"] = grouped["ip_address_substr"]
    return q


def _convert_filter(conv: Callable[[Any], Any] | None, name: str, value: str) -> Any:
    if conv is None:
        return value
    try:
        return conv(value)
    except ConversionError as exc:
        # Neutron converts boolean and integer filters (400 when that fails) ...
        raise invalid(str(exc)) from None
    except ValueError:
        # ... and only validates the others on create/update: keep the raw string (it matches nothing).
        return value


def _integer_filter(conv: Callable[[Any], Any] | None, bits: int, value: str) -> Any:
    """A filter value of an integer attribute (see ``INTEGER_FILTERS``)."""
    try:
        number = to_int(value)
    except ConversionError as exc:
        raise invalid(str(exc)) from None
    if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
        return _NOTHING
    try:
        return conv(number) if conv is not None else number
    except ValueError:
        return number


def _matches(obj: dict[str, Any], key: str, values: list[Any]) -> bool:
    if key not in obj:
        return False
    have = obj[key]
    if isinstance(have, list):
        return any(v in have for v in values)
    return have in values


def apply(
    q: ListQuery,
    items: list[dict[str, Any]],
    *,
    pushed: set[str],
    tags_of: Callable[[dict[str, Any]], list[str]] | None = None,
    sort_values: dict[str, Callable[[Any], Any]] | None = None,
) -> list[dict[str, Any]]:
    """Filter (what SQL did not), then sort and paginate.

    ``sort_values`` maps a sort key to the function giving its sort value, for attributes whose
    wire value does not sort as the stored one (subnet pools' prefix lengths: ``"8"`` < ``"24"``)."""
    for key, values in q.filters.items():
        if key in pushed:
            continue
        items = [o for o in items if _matches(o, key, values)]
    if q.tags_all or q.tags_any or q.not_tags_all or q.not_tags_any:
        tags_of = tags_of or (lambda o: o.get("tags", []))
        out = []
        for o in items:
            t = set(tags_of(o))
            if q.tags_all and not set(q.tags_all) <= t:
                continue
            if q.tags_any and not set(q.tags_any) & t:
                continue
            if q.not_tags_all and set(q.not_tags_all) <= t:
                continue
            if q.not_tags_any and set(q.not_tags_any) & t:
                continue
            out.append(o)
        items = out
    if q.changed_since:
        items = [o for o in items if o.get("updated_at", "") >= q.changed_since]
    sorts = list(q.sorts)
    if q.limit and not any(k == "id" for k, _ in sorts):
        sorts.append(("id", True))
    for key, asc in reversed(sorts):
        conv = (sort_values or {}).get(key)
        items.sort(key=_key_of(key, conv), reverse=not asc)
    return items


def _key_of(key: str, conv: Callable[[Any], Any] | None) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    """The sort key of ``key`` in an item (its value through ``conv`` when both are there)."""

    def sort_key(o: dict[str, Any]) -> tuple[int, Any]:
        v = o.get(key)
        return _sort_key(v if conv is None or v is None else conv(v))

    return sort_key


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, "")
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))


def paginate(
    q: ListQuery, items: list[dict[str, Any]], *, base_url: str, params: list[tuple[str, str]], collection: str
) -> tuple[list[dict[str, Any]], list[dict[str, str]] | None]:
    """Cut one page by marker/limit and build Neutron's ``*_links``."""
    if not q.limit:
        return items, None
    ids = [o.get("id") for o in items]
    if q.marker is not None:
        try:
            pos = ids.index(q.marker)
        except ValueError:
            return [], []
        if q.page_reverse:
            page = items[max(0, pos - q.limit) : pos]
        else:
            page = items[pos + 1 : pos + 1 + q.limit]
    else:
        page = items[-q.limit :] if q.page_reverse else items[: q.limit]
    return page, page_links(q, page, base_url=base_url, params=params)


def page_links(
    q: ListQuery, page: list[dict[str, Any]], *, base_url: str, params: list[tuple[str, str]]
) -> list[dict[str, str]]:
    """Neutron's ``*_links`` of one page (both directions, any marker):

    * ``next`` unless a forward page came back short; it repeats the query with
      ``marker=<last id>`` and without ``page_reverse``;
    * ``previous`` unless a reverse page came back short; it repeats the query with
      ``marker=<first id>&page_reverse=True``.  The first page has one too.

    On an empty page the link carries no marker (as Neutron: the other end of the list)."""
    keep = [(k, v) for k, v in params if k not in ("marker", "page_reverse")]
    short = len(page) < q.limit
    links: list[dict[str, str]] = []
    if not (short and not q.page_reverse):
        marker = [("marker", page[-1]["id"])] if page else []
        links.append({"rel": "next", "href": f"{base_url}?{urlencode(keep + marker)}"})
    if not (short and q.page_reverse):
        marker = [("marker", page[0]["id"])] if page else []
        links.append({"rel": "previous", "href": f"{base_url}?{urlencode(keep + marker + [('page_reverse', 'True')])}"})
    return links
