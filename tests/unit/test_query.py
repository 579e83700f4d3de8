"""List-query parsing, filtering, sorting and pagination (neutrino.resources.query), pure."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from neutrino import errors
from neutrino.resources import query
from neutrino.resources.definitions import NETWORK, PORT


def parse(params, res=NETWORK, **kw):
    return query.parse_list_query(res, params, **kw)


def _bad(params, msg, exc=errors.HTTPBadRequest, res=NETWORK, **kw):
    with pytest.raises(exc) as ei:
        parse(params, res, **kw)
    assert ei.value.msg == msg
    return ei.value


def test_fields():
    assert parse([]).fields is None
    assert parse([("fields", "id"), ("fields", "name"), ("fields", "")]).fields == ["id", "name"]


def test_filters_are_grouped_and_converted():
    q = parse(
        [
            ("name", "a"),
            ("name", "b"),
            ("shared", "1"),
            ("admin_state_up", "False"),
            ("mtu", "1450"),
            ("router:external", "True"),
        ]
    )
    assert q.filters == {
        "name": ["a", "b"],
        "shared": [True],
        "admin_state_up": [False],
        "mtu": [1450],
        "router:external": [True],
    }


def test_filter_edge_values():
    q = parse([("name", ""), ("id", "not-a-uuid"), ("mtu", "-5"), ("revision_number", str(2**70))])
    # An integer filter stays an integer (PostgreSQL compares integer columns with integers only);
    # one its column cannot hold is dropped (it matches nothing: query.INTEGER_FILTERS).
    assert q.filters == {"name": [""], "id": ["not-a-uuid"], "mtu": [-5], "revision_number": []}


@pytest.mark.parametrize(
    "key,value,msg",
    [("shared", "maybe", "'maybe' cannot be converted to boolean"), ("mtu", "abc", "'abc' is not an integer")],
)
def test_unconvertible_filter_values(key, value, msg):
    _bad([(key, value)], f"Invalid input for operation: {msg}.", exc=errors.InvalidInput)


def test_invalid_filters():
    _bad([("foo", "1")], "['foo'] is invalid attribute for filtering")
    _bad([("foo", "1"), ("bar", "2"), ("name", "x")], "['foo', 'bar'] is invalid attribute for filtering")
    _bad([("availability_zones", "x")], "['availability_zones'] is invalid attribute for filtering")


def test_special_and_reserved_keys():
    q = parse(
        [
            ("fixed_ips", "ip_address=10.0.0.5"),
            ("ip_address_substr", "0.5"),
            ("tags", "a,b"),
            ("tags-any", "c"),
            ("not-tags", "d,"),
            ("not-tags-any", "e"),
            ("changed_since", "2020-01-01T00:00:00Z"),
            ("verbose", "True"),
        ],
        PORT,
        special=("fixed_ips",),
    )
    assert q.special == {"fixed_ips": ["ip_address=10.0.0.5"], "ip_address_substr": ["0.5"]}
    assert (q.tags_all, q.tags_any, q.not_tags_all, q.not_tags_any) == (["a", "b"], ["c"], ["d"], ["e"])
    assert q.changed_since == "2020-01-01T00:00:00Z" and q.filters == {}


def test_sorting():
    q = parse([("sort_key", "name"), ("sort_dir", "desc"), ("sort_key", "id"), ("sort_dir", "asc")])
    assert q.sorts == [("name", False), ("id", True)]
    _bad([("sort_key", "name")], "The number of sort_keys and sort_dirs must be same")
    _bad([("sort_dir", "asc")], "The number of sort_keys and sort_dirs must be same")
    _bad([("sort_key", "foo"), ("sort_dir", "asc")], "['foo'] is invalid attribute for sort_keys")
    _bad(
        [("sort_key", "name"), ("sort_dir", "sideways")],
        "['sideways'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'",
    )


def test_limit_marker_page_reverse():
    q = parse([("limit", "5"), ("marker", "m"), ("page_reverse", "True")])
    assert (q.limit, q.marker, q.page_reverse) == (5, "m", True)
    assert parse([("limit", "0")]).limit == 0
    assert parse([("limit", "50")], max_limit=10).limit == 10
    assert parse([("limit", "0")], max_limit=10).limit == 10
    assert parse([], max_limit=10).limit == 10
    assert parse([]).limit == 0
    for raw in ("abc", "-1", ""):
        err = _bad(
            [("limit", raw)],
            f"Bad limit request: Limit must be an integer 0 or greater and not '{raw}'.",
            exc=errors.BadRequest,
        )
        assert err.type_name == "BadRequest" and err.status == 400
    _bad([("page_reverse", "maybe")], "'maybe' cannot be converted to boolean")


ITEMS = [
    {
        "id": "1",
        "name": "b",
        "shared": False,
        "mtu": 1500,
        "tags": ["x"],
        "updated_at": "2020-01-02T00:00:00Z",
        "subnets": ["s1", "s2"],
    },
    {
        "id": "2",
        "name": "a",
        "shared": True,
        "mtu": 1450,
        "tags": ["x", "y"],
        "updated_at": "2020-01-03T00:00:00Z",
        "subnets": [],
    },
    {
        "id": "3",
        "name": "c",
        "shared": False,
        "mtu": None,
        "tags": [],
        "updated_at": "2020-01-01T00:00:00Z",
        "subnets": ["s3"],
    },
]


def _apply(params, pushed=frozenset()):
    q = parse(params)
    return [o["id"] for o in query.apply(q, [dict(o) for o in ITEMS], pushed=set(pushed))]


def test_apply_filters():
    assert _apply([("name", "a"), ("name", "c")]) == ["2", "3"]
    assert _apply([("shared", "false")]) == ["1", "3"]
    assert _apply([("shared", "false"), ("name", "c")]) == ["3"]
    assert _apply([("subnets", "s2")]) == ["1"]
    assert _apply([("name", "zzz")], pushed={"name"}) == ["1", "2", "3"]  # done in SQL already


def test_apply_tags_and_changed_since():
    assert _apply([("tags", "x,y")]) == ["2"]
    assert _apply([("tags-any", "y,z")]) == ["2"]
    assert _apply([("not-tags", "x,y")]) == ["1", "3"]
    assert _apply([("not-tags-any", "x")]) == ["3"]
    assert _apply([("changed_since", "2020-01-02T00:00:00Z")]) == ["1", "2"]


def test_apply_sorting():
    assert _apply([("sort_key", "name"), ("sort_dir", "asc")]) == ["2", "1", "3"]
    assert _apply([("sort_key", "name"), ("sort_dir", "desc")]) == ["3", "1", "2"]
    assert _apply([("sort_key", "mtu"), ("sort_dir", "asc")]) == ["3", "2", "1"]  # None first
    assert _apply([("sort_key", "shared"), ("sort_dir", "desc"), ("sort_key", "name"), ("sort_dir", "asc")]) == [
        "2",
        "1",
        "3",
    ]


def _page(params, items=None):
    q = parse(params)
    items = query.apply(q, [dict(o) for o in (items or ITEMS)], pushed=set())
    page, links = query.paginate(q, items, base_url="http://h/v2.0/networks", params=params, collection="networks")
    return [o["id"] for o in page], {link["rel"]: link["href"] for link in links or []}, links


def _q(href):
    return parse_qs(urlsplit(href).query)


def test_paginate():
    ids, links, raw = _page([])
    assert ids == ["1", "2", "3"] and raw is None
    ids, links, _ = _page([("limit", "2")])
    assert ids == ["1", "2"] and set(links) == {"next", "previous"}
    assert _q(links["next"]) == {"limit": ["2"], "marker": ["2"]}
    assert _q(links["previous"]) == {"limit": ["2"], "marker": ["1"], "page_reverse": ["True"]}
    assert links["next"].startswith("http://h/v2.0/networks?")
    ids, links, _ = _page([("limit", "2"), ("marker", "2")])
    assert ids == ["3"] and set(links) == {"previous"}
    ids, links, _ = _page([("limit", "2"), ("marker", "3"), ("page_reverse", "True")])
    assert ids == ["1", "2"] and set(links) == {"next", "previous"}
    ids, links, _ = _page([("limit", "2"), ("marker", "2"), ("page_reverse", "True")])
    assert ids == ["1"] and set(links) == {"next"}
    ids, links, _ = _page([("limit", "2"), ("marker", "nope")])
    assert ids == [] and links == {}


def test_paginate_sorts_by_id_as_tiebreaker():
    items = [{"id": i, "name": "same"} for i in ("c", "a", "b")]
    ids, _, _ = _page([("limit", "5"), ("sort_key", "name"), ("sort_dir", "asc")], items)
    assert ids == ["a", "b", "c"]
