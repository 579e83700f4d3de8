#!/usr/bin/env python3
"""RBAC benchmark: listing networks with and without RBAC policies.  Prints figures; asserts nothing.

    .venv/bin/python bench/rbac_bench.py [--networks 1000] [--reps 7] [--db-url sqlite:///...]

An in-process API (the same factory the server uses, a migrated throwaway SQLite database
unless --db-url names another, fake tokens) holds --networks networks owned by ``demo``.  It
times ``GET /v2.0/networks`` (median of --reps) for

* ``demo``, the owner, before and after as many RBAC policies exist (each network shared
  with project ``other``): the cost of the policies for a caller they do not concern;
* ``other``, who sees the same networks only through those policies (compared with the
  owner's listing before: the same networks, the same answer size);
* ``admin``, before and after.

Neutron is known to slow down badly here (a join per network on its RBAC table); the
target is at most 2x.  Visibility is one uncorrelated ``id IN (SELECT object_id FROM
rbac_policies WHERE target_project IN ('*', :project) ...)`` on an index, and "shared with
the caller" one more indexed query per page, so the ratio should stay near 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from neutrino import config  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.api.factory import make_deps, make_network_app  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.context import AuthInfo  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.db.engine import Database  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.db.migrate import upgrade  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.feed.publisher import open_feed  # noqa: E402 - imported after sys.path names the bench folder

IDENTITIES = {
    "admin": ("p-admin", ("admin", "manager", "member", "reader")),
    "demo": ("p-demo", ("member", "reader")),
    "other": ("p-other", ("member", "reader")),
}


def validate_token(token: str) -> AuthInfo:
    project, roles = IDENTITIES[token]
    return AuthInfo("u-" + token, "u-" + token, project, project, roles, time.time() + 3600, "audit")


class Client:
    def __init__(self, app: Any) -> None:
        self.http = TestClient(app, raise_server_exceptions=True)
        self.http.__enter__()

    def call(self, method: str, path: str, token: str = "admin", body: Any = None, ok: int = 200) -> Any:
        r = self.http.request(method, "/v2.0/" + path, json=body, headers={"X-Auth-Token": token})
        if r.status_code != ok:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def timed_list(self, token: str, expect: int, reps: int) -> float:
        """Median seconds of one ``GET /v2.0/networks`` as ``token`` (which must see ``expect``)."""
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            nets = self.call("GET", "networks", token)["networks"]
            times.append(time.perf_counter() - t0)
            if len(nets) != expect:
                raise SystemExit(f"{token} sees {len(nets)} networks, expected {expect}")
        return statistics.median(times)


def populate(c: Client, n: int) -> list[str]:
    c.call("PUT", "quotas/p-demo", body={"quota": {"network": -1, "rbac_policy": -1}})
    ids: list[str] = []
    while len(ids) < n:
        batch = min(100, n - len(ids))
        made = c.call(
            "POST",
            "networks",
            body={"networks": [{"name": f"net-{len(ids) + i}", "project_id": "p-demo"} for i in range(batch)]},
            ok=201,
        )
        ids += [x["id"] for x in made["networks"]]
    return ids


def share_all(c: Client, ids: list[str]) -> None:
    for i in range(0, len(ids), 100):
        c.call(
            "POST",
            "rbac-policies",
            "demo",
            body={
                "rbac_policies": [
                    {
                        "object_type": "network",
                        "object_id": nid,
                        "action": "access_as_shared",
                        "target_tenant": "p-other",
                    }
                    for nid in ids[i : i + 100]
                ]
            },
            ok=201,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--db-url", default="", help="an empty database (default: a throwaway SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="neutrino-rbac-bench-") as tmp:
        url = args.db_url or f"sqlite:///{tmp}/bench.db"
        db = Database(url)
        upgrade(db.engine)
        cfg = config.defaults(Path(tmp)).with_overrides(dict(config.ALL_IN_ONE))
        c = Client(make_network_app(make_deps(cfg, db), validate_token, feed=open_feed(db, cfg.feed.retention)))
        n = args.networks
        t0 = time.perf_counter()
        ids = populate(c, n)
        setup_s = time.perf_counter() - t0
        for token in ("demo", "admin"):  # warm caches and the connection pool
            c.timed_list(token, n, 1)
        before = {"demo": c.timed_list("demo", n, args.reps), "admin": c.timed_list("admin", n, args.reps)}
        c.timed_list("other", 0, 1)
        t0 = time.perf_counter()
        share_all(c, ids)
        share_s = time.perf_counter() - t0
        after = {
            "demo": c.timed_list("demo", n, args.reps),
            "admin": c.timed_list("admin", n, args.reps),
            "other": c.timed_list("other", n, args.reps),
        }
        policies = len(c.call("GET", "rbac-policies")["rbac_policies"])
        db.dispose()

    print(f"\n# GET /v2.0/networks: {n} networks, median of {args.reps}\n")
    print(f"setup: {n} networks in {setup_s:.1f} s, {policies} RBAC policies in {share_s:.1f} s\n")
    print("| caller | without RBAC policies | with them | ratio (target <= 2.0) |")
    print("|---|---|---|---|")
    rows = (
        ("demo (owner, non-admin)", before["demo"], after["demo"]),
        ("other (sees them through the policies; baseline: the owner's listing)", before["demo"], after["other"]),
        ("admin", before["admin"], after["admin"]),
    )
    for name, b, a in rows:
        print(f"| {name} | {b * 1000:.0f} ms | {a * 1000:.0f} ms | {a / b:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
