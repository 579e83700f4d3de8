"""Concurrent port creation: no duplicate addresses or MACs, exact exhaustion.

* threads: N threads share one in-process API on a real database file
  (SQLite in tmp_path, or PostgreSQL with NEUTRINO_TEST_PG_URL);
* processes: 3 processes, each with its own ``Database`` on the same
  database, create ports at the same moment.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from neutrino.db import tables
from tests.api.conftest import BASE_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]


def _db_rows(api):
    with api.db.read() as conn:
        ips = [
            tuple(r)
            for r in conn.execute(select(tables.ip_allocations.c.subnet_id, tables.ip_allocations.c.ip_address))
        ]
        macs = [tuple(r) for r in conn.execute(select(tables.ports.c.network_id, tables.ports.c.mac_address))]
    return ips, macs


def _assert_unique(api, expected_ports):
    ips, macs = _db_rows(api)
    assert len(macs) == expected_ports
    assert [k for k, n in Counter(ips).items() if n > 1] == []
    assert [k for k, n in Counter(macs).items() if n > 1] == []
    listed = api.list("ports")
    assert len(listed) == expected_ports
    assert len({p["fixed_ips"][0]["ip_address"] for p in listed}) == expected_ports


def _run_threads(n, fn):
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_threads_create_ports_on_a_small_subnet(api):
    net, sub = api.net_with_subnet(
        "10.0.0.0/24", as_="admin", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.19"}]
    )
    n = 16
    results = _run_threads(n, lambda i: api.post("ports", {"port": {"network_id": net["id"], "name": f"p{i}"}}))
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 10, 409: 6}, [r.text for r in results if r.status_code not in (201, 409)]
    for r in results:
        if r.status_code == 409:
            assert r.json()["NeutronError"] == {
                "type": "IpAddressGenerationFailure",
                "detail": "",
                "message": f"No more IP addresses available on network {net['id']}.",
            }
    got = sorted(r.json()["port"]["fixed_ips"][0]["ip_address"] for r in results if r.status_code == 201)
    assert got == sorted(f"10.0.0.{i}" for i in range(10, 20))
    _assert_unique(api, 10)


class _FewMacs(random.Random):
    """Only 8 different generated MACs: concurrent creators collide often."""

    def randrange(self, start, stop=None, step=1):
        if start == 256 and stop is None:
            return super().randrange(2)
        return super().randrange(start, stop, step)


def test_threads_with_colliding_macs(make_api):
    api = make_api(rng=_FewMacs(5))
    net, sub = api.net_with_subnet("10.0.0.0/24", as_="admin")
    results = _run_threads(6, lambda i: api.post("ports", {"port": {"network_id": net["id"]}}))
    assert [r.status_code for r in results] == [201] * 6, [r.text for r in results]
    _assert_unique(api, 6)


def test_threads_bulk_and_explicit_addresses(api):
    net, sub = api.net_with_subnet(
        "10.0.0.0/24", as_="admin", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.29"}]
    )
    # Everyone asks for the same explicit address: exactly one wins.
    results = _run_threads(
        8, lambda i: api.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.100"}]}})
    )
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 1, 409: 7}
    assert {r.json()["NeutronError"]["type"] for r in results if r.status_code == 409} == {"IpAddressAlreadyAllocated"}
    # Bulk creates of 4 ports each: 20 addresses -> 5 batches succeed, the rest fail atomically.
    results = _run_threads(8, lambda i: api.post("ports", {"ports": [{"network_id": net["id"]}] * 4}))
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 5, 409: 3}
    _assert_unique(api, 21)


WORKER = r"""
import json, random, sys, time
from pathlib import Path
from starlette.testclient import TestClient
from neutrino import config
from neutrino.api.factory import make_deps, make_network_app
from neutrino.context import AuthInfo
from neutrino.db.engine import Database
from neutrino.feed.publisher import open_feed

url, state_dir, net_id, count, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
overrides = {tuple(k.split("/")): v for k, v in json.loads(sys.argv[6]).items()}
cfg = config.defaults(state_dir).with_overrides(overrides)
db = Database(url)
tok = lambda t: AuthInfo("u-admin", "admin", "p-admin", "admin", ("admin", "member", "reader"),
                         time.time() + 3600, "a")
client = TestClient(make_network_app(make_deps(cfg, db), tok, feed=open_feed(db, cfg.feed.retention)))
client.get("/v2.0/networks", headers={"X-Auth-Token": "x"})       # warm up: imports, connections
print("ready", flush=True)
deadline = time.time() + 30
while not go.exists() and time.time() < deadline:
    time.sleep(0.005)
out = []
for i in range(count):
    r = client.post("/v2.0/ports", json={"port": {"network_id": net_id}}, headers={"X-Auth-Token": "x"})
    body = r.json()
    out.append([r.status_code, body.get("port", {}).get("fixed_ips") or body.get("NeutronError", {}).get("type")])
print(json.dumps(out), flush=True)
"""


def test_processes_create_ports_on_one_database(api, api_db_url, tmp_path):
    net, sub = api.net_with_subnet(
        "10.0.0.0/24", as_="admin", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.29"}]
    )
    go = tmp_path / "go"
    overrides = json.dumps({f"{s}/{k}": v for (s, k), v in BASE_OVERRIDES.items()})
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, api_db_url, str(tmp_path), net["id"], "10", str(go), overrides],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        go.touch()
        outs = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=120)
            assert p.returncode == 0, stderr
            outs.extend(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    codes = Counter(code for code, _ in outs)
    assert codes == {201: 20, 409: 10}
    assert {detail for code, detail in outs if code == 409} == {"IpAddressGenerationFailure"}
    ips = [detail[0]["ip_address"] for code, detail in outs if code == 201]
    assert sorted(ips) == sorted(f"10.0.0.{i}" for i in range(10, 30))
    _assert_unique(api, 20)
