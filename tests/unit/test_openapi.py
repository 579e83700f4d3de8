"""The OpenAPI document (neutrino.api.openapi): kept copy current, converters mapped to schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino.api import openapi
from neutrino.resources import convert as cv
from neutrino.resources import definitions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def doc() -> dict:
    return openapi.document(openapi.reference_api())


def test_docs_copy_is_current(doc):
    """docs/openapi.json is what the code generates (regenerate: python -m neutrino.api.openapi)."""
    kept = (ROOT / openapi.DOC_FILE).read_bytes()
    assert kept == openapi.render(doc), "docs/openapi.json is stale: run .venv/bin/python -m neutrino.api.openapi"


def test_check_mode_reports_a_stale_copy(tmp_path, capsys):
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert openapi.main(["--output", str(stale), "--check"]) == 1
    assert openapi.main(["--output", str(stale)]) == 0
    assert openapi.main(["--output", str(stale), "--check"]) == 0


@pytest.mark.parametrize(
    "conv,schema",
    [
        (cv.string(10), {"type": "string", "maxLength": 10}),
        (cv.nullable(cv.uuid_str), {"type": "string", "format": "uuid", "nullable": True}),
        (cv.one_of("a", "b", nullable=True), {"enum": ["a", "b", None], "nullable": True}),
        (cv.int_one_of(4, 6), {"type": "integer", "enum": [4, 6]}),
        (cv.in_range(0, 9), {"type": "integer", "minimum": 0, "maximum": 9}),
        (cv.list_of(cv.to_bool, unique=True), {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True}),
        (
            cv.dict_of({"n": cv.to_int}, required=("n",)),
            {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "additionalProperties": False,
                "required": ["n"],
            },
        ),
        (cv.subnet_cidr, {"type": "string", "format": "cidr"}),
        (lambda v: v, {}),  # unknown: anything
        (None, {}),
    ],
)
def test_converter_schemas(conv, schema):
    assert openapi.converter_schema(conv) == schema


def test_every_writable_attribute_has_a_schema():
    """Each POST/PUT attribute with a converter maps to a real schema, not the permissive fallback."""
    loose = []
    for res in definitions.ALL:
        for attr in res.attrs:
            if (attr.post or attr.put) and attr.convert is not None and attr.convert is not cv.any_value:
                if openapi.converter_schema(attr.convert) == {}:
                    loose.append(f"{res.name}.{attr.name}")
    assert loose == []


def test_operations(doc):
    ops = {(m.upper(), p): o["operationId"] for p, item in doc["paths"].items() for m, o in item.items()}
    assert len(set(ops.values())) == len(ops)  # operation ids are unique
    for path, op_id in [
        ("/v2.0/ports", "create_port"),
        ("/v2.0/routers/{router_id}/add_router_interface", "add_router_interface"),
        ("/v2.0/floatingips/{floatingip_id}/port_forwardings", "create_floatingip_port_forwarding"),
        ("/v2.0/networks/{network_id}/tags/{tag}", "add_network_tag"),
        ("/v2.0/quotas/{project_id}", "update_quota"),
    ]:
        assert op_id in ops.values(), path
    assert ("POST", "/v2.0/agents") not in ops and (
        "PUT",
        "/v2.0/security-group-rules/{security_group_rule_id}",
    ) not in ops
    create = doc["components"]["schemas"]["SubnetCreate"]
    assert create["required"] == ["ip_version", "network_id"]
    assert create["properties"]["ip_version"] == {"type": "integer", "enum": [4, 6]}
    assert "id" not in create["properties"]  # not allowed in POST
    assert doc["components"]["schemas"]["NetworkUpdate"]["properties"]["mtu"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 65535,
    }
    assert doc["paths"]["/v2.0/"]["get"]["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
