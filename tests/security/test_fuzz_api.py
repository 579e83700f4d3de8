"""Property-based fuzzing of the whole network API from its OpenAPI document (issue 13, "keep it closed").

A bounded budget: every operation of ``GET /v2.0/openapi.json`` gets
``NEUTRINO_FUZZ_EXAMPLES`` (default 3) requests drawn by schemathesis in its
positive mode (valid by the schema) and as many in its negative mode, as a
member (demo) and as admin, on a seeded cloud (see fuzz_helpers.py), with a
fixed Hypothesis seed (``NEUTRINO_FUZZ_SEED``, default 13).  Every answer is
a success or a Neutron-format 4xx, never a 5xx, and a rejected request
commits nothing.  bench/fuzz_bench.py runs the same for longer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from neutrino.api import openapi
from tests.api.conftest import error
from tests.security.fuzz_helpers import NEGATIVE, POSITIVE, Fuzzer, error_shape

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("NEUTRINO_FUZZ_EXAMPLES", "3"))
SEED = int(os.environ.get("NEUTRINO_FUZZ_SEED", "13"))
PUBLIC = {"list_api_versions", "show_openapi"}


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_served_document_is_public_and_current(api):
    resp = api.get("/v2.0/openapi.json", as_=None)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.content == (ROOT / openapi.DOC_FILE).read_bytes()
    assert api.get("/v2.0/openapi.json", as_="demo").content == resp.content
    error(api.post("/v2.0/openapi.json", {}, as_=None), 405, "HTTPMethodNotAllowed")


def test_every_operation_needs_a_token(api):
    """Without a token every documented operation but the public two answers Keystone's 401."""
    doc = api.get("/v2.0/openapi.json", as_=None).json()
    for method, path, op in _operations(doc):
        url = re.sub(r"\{[^}]+\}", "x", path)
        resp = api.req(method, url, as_=None, json={} if method in ("POST", "PUT") else None)
        if op["operationId"] in PUBLIC:
            assert resp.status_code == 200, (method, path)
        else:
            assert resp.status_code == 401, (method, path, resp.status_code)
            assert error_shape(401, resp.content) is None, resp.text
            assert resp.headers["www-authenticate"].startswith("Keystone uri=")


def test_operations_left_out_are_not_served(api):
    """The document leaves out what the server refuses: those answer 404 or 405, in Neutron's format."""
    doc = api.get("/v2.0/openapi.json", as_=None).json()
    documented = [
        (m, re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$")) for m, p, _ in _operations(doc)
    ]
    tried = 0
    for path in doc["paths"]:
        if not path.startswith("/v2.0/") or "/tags" in path:
            continue
        for method in ("GET", "POST", "PUT", "DELETE"):
            url = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
            if any(m == method and rx.match(url) for m, rx in documented):
                continue
            resp = api.req(method, url, as_="admin", json={} if method in ("POST", "PUT") else None)
            assert resp.status_code in (400, 404, 405), (method, path, resp.status_code, resp.text)
            assert error_shape(resp.status_code, resp.content) is None, resp.text
            tried += 1
    assert tried > 20


@pytest.mark.parametrize("role", ["demo", "admin"])
@pytest.mark.parametrize("mode", [POSITIVE, NEGATIVE], ids=["positive", "negative"])
def test_fuzz_budget(api, role, mode):
    """No 5xx, Neutron-format 4xx, rejected requests commit nothing (see fuzz_helpers.Fuzzer.send)."""
    fuzzer = Fuzzer(api)
    try:
        fuzzer.run([role], [mode], EXAMPLES, rng_seed=SEED)
    finally:
        fuzzer.close()
    assert not fuzzer.problems, fuzzer.report()
    stats = fuzzer.stats
    untried = [
        op for op, _ in fuzzer.operations if op not in stats.by_op and f"{op} ({mode.value})" not in stats.skipped
    ]
    assert untried == [], untried
    # The requests went deep: many operations succeeded at least once.
    succeeded = [op for op, counts in stats.by_op_status.items() if any(s < 300 for s in counts)]
    assert len(succeeded) >= len(fuzzer.operations) // 3, (len(succeeded), dict(stats.by_status))
