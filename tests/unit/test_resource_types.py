"""neutrino/resources/types.py: kept current with the attribute maps, converters mapped to types."""

from __future__ import annotations

import pytest

from neutrino.resources import convert as cv
from neutrino.resources import definitions, gen_types
from neutrino.resources import types as rt
from neutrino.resources.resource import Attr, Resource


def test_kept_module_is_current():
    """types.py is what the generator writes (regenerate: python -m neutrino.resources.gen_types)."""
    assert gen_types.TARGET.read_text() == gen_types.render(), (
        "neutrino/resources/types.py is stale: run .venv/bin/python -m neutrino.resources.gen_types"
    )
    assert gen_types.main(["--check"]) == 0


@pytest.mark.parametrize(
    "conv,expected",
    [
        (cv.string(10), "str"),
        (cv.nullable(cv.uuid_str), "str | None"),
        (cv.one_of("a", "b", nullable=True), "str | None"),
        (cv.one_of("a", 1), "Any"),
        (cv.int_one_of(4, 6), "int"),
        (cv.in_range(0, 9), "int"),
        (cv.list_of(cv.to_bool), "list[bool]"),
        (cv.nullable(cv.list_of(definitions._pool)), "list[AllocationPool] | None"),
        (cv.dict_of({"n": cv.to_int}), "dict[str, Any]"),
        (cv.dict_value, "dict[str, Any]"),
        (definitions._routes, "list[HostRoute]"),
        (lambda v: v, None),  # unknown
        (None, None),
    ],
)
def test_converter_types(conv, expected):
    assert gen_types.converter_type(conv) == expected


def test_an_untyped_attribute_stops_the_generator():
    res = Resource("thing", "things", (Attr("id", convert=cv.uuid_str), Attr("mystery")))
    with pytest.raises(gen_types.UntypedAttribute, match="thing.mystery"):
        gen_types.view_keys(res)


def test_view_create_and_update_keys():
    assert rt.Network.__optional_keys__ == frozenset({"segments"})
    assert "router:external" in rt.Network.__required_keys__
    assert rt.Port.__optional_keys__ == frozenset({"trunk_details"})
    assert "qos_policy_id" in rt.FloatingIp.__required_keys__  # shown though hidden from the schema
    assert "subnet_id" not in rt.FloatingIp.__required_keys__  # hidden and not shown
    assert {"gw_port_id", "interface_port_ids"} <= rt.Router.__required_keys__
    # a create body: every postable attribute and the keys given; an update body: all optional
    postable = {a.name for a in definitions.PORT.attrs if a.post}
    assert rt.PortCreate.__required_keys__ == postable | {"__given__"}
    assert rt.PortUpdate.__required_keys__ == frozenset()
    assert rt.PortUpdate.__optional_keys__ == {a.name for a in definitions.PORT.attrs if a.put}
