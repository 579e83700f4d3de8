#!/usr/bin/env python3
"""Demo benchmark: ``neutrino up`` until every agent is alive, ``neutrino demo``
until every check is green, and the same demo on four simulated hosts.
Prints figures; asserts nothing.

    .venv/bin/python bench/demo_bench.py [--runs 2] [--only aio|multinode]

Needs root and the packages of ``make install``.

aio (per run, a fresh state directory with its own lab host namespace):

* ``neutrino up`` (server, private Open vSwitch, the five agents) until it
  returns and the agents API lists all five alive; target <= 10 s;
* ``neutrino demo`` (Lab 10 built from nothing) until it exits with every
  check green; target <= 30 s; its own breakdown (build, checks);
* ``neutrino demo`` again (everything exists: the checks alone);
* ``neutrino demo --clean`` and ``neutrino down --purge``.

multinode (``neutrino.testing.nodes``: controller, network, compute1,
compute2 as namespaces on one fabric, each running ``neutrino up --role``;
PostgreSQL when installed): the time to bring the four nodes up, and
``neutrino demo`` on the controller until every check is green.

TLS: on (the default ``neutrino up``, which creates the CA and certificates on the first
start, so ``up`` includes that): what users get.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import free_offset

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


def _run(argv: list[str], timeout: float = 300) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return time.monotonic() - t0, r


def _agents_alive(state: Path) -> int:
    import httpx

    from neutrino.agents.auth import read_openrc
    from neutrino.cli.console import _token
    from neutrino.cli.host import AGENT_TYPES, AGENTS
    from neutrino.pki.tls import verify_arg

    rec = json.loads((state / "run" / "server.pid").read_text())
    url = rec["extra"]["endpoints"]["network"].rstrip("/")
    creds = read_openrc(state / "admin-openrc")
    tok = _token(creds)
    h = {"X-Auth-Token": tok}
    agents = httpx.get(f"{url}/v2.0/agents", headers=h, timeout=10, verify=verify_arg(creds.cacert)).json()["agents"]
    want = {AGENT_TYPES[k] for k in AGENTS}
    return len({a["agent_type"] for a in agents if a["alive"]} & want)


def aio_run(base: Path) -> dict[str, float]:
    from neutrino import config

    state = base / f"aio-{uuid.uuid4().hex[:6]}"
    state.mkdir()
    lab = f"lab-b{uuid.uuid4().hex[:6]}"
    (state / "neutrino.conf").write_text(config.render_ini({**config.ALL_IN_ONE, ("lab", "host_netns"): lab}))
    out: dict[str, float] = {}
    try:
        out["up"], r = _run([*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(free_offset())])
        if r.returncode != 0:
            raise RuntimeError(f"up failed: {r.stderr}")
        # `up` returns once every agent reported alive; if one was not (a warning), wait for it.
        t0, extra = time.monotonic(), 0.0
        while _agents_alive(state) < 5:
            if time.monotonic() - t0 > 60:
                raise RuntimeError("agents not alive after up + 60 s")
            time.sleep(0.1)
            extra = time.monotonic() - t0
        out["up_until_alive"] = out["up"] + extra
        out["demo"], r = _run([*NEUTRINO, "demo", "--json", "--state-dir", str(state)])
        res = json.loads(r.stdout) if r.stdout else {}
        if r.returncode != 0:
            raise RuntimeError(f"demo failed: {r.stderr[-2000:]}\n{r.stdout[-3000:]}")
        out["demo_checks_slowest"] = max(c["seconds"] for c in res["checks"])
        out["demo_again"], r = _run([*NEUTRINO, "demo", "--json", "--state-dir", str(state)])
        out["clean"], r = _run([*NEUTRINO, "demo", "--clean", "--state-dir", str(state)])
        if r.returncode != 0:
            raise RuntimeError(f"demo --clean failed: {r.stderr}")
    finally:
        out["down_purge"], _ = _run([*NEUTRINO, "down", "--purge", "--state-dir", str(state)])
    return out


def multinode_run(base: Path) -> dict[str, float]:
    from neutrino.testing.nodes import Nodes

    out: dict[str, float] = {}
    nodes = Nodes(base / f"mn-{uuid.uuid4().hex[:6]}")
    try:
        t0 = time.monotonic()
        nodes.start()
        out["four_nodes_up"] = time.monotonic() - t0
        out.update({f"up_{k}": v for k, v in nodes.timings.items()})
        t0 = time.monotonic()
        r = nodes.neutrino("controller", "demo", "--json", timeout=300)
        out["demo"] = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(f"demo failed: {r.stderr[-2000:]}\n{r.stdout[-3000:]}")
        res = json.loads(r.stdout)
        out["demo_checks_slowest"] = max(c["seconds"] for c in res["checks"])
        out["database_postgresql"] = float(nodes.database.startswith("postgresql"))
        t0 = time.monotonic()
        nodes.neutrino("controller", "demo", "--clean", timeout=120)
        out["clean"] = time.monotonic() - t0
    finally:
        t0 = time.monotonic()
        nodes.teardown()
        out["teardown"] = time.monotonic() - t0
    return out


def _report(title: str, runs: list[dict[str, float]], targets: dict[str, str]) -> None:
    print(f"\n{title} ({len(runs)} run(s); seconds)")
    keys = list(runs[0])
    for k in keys:
        vals = [r[k] for r in runs if k in r]
        shown = "  ".join(f"{v:6.2f}" for v in vals)
        med = statistics.median(vals)
        print(f"  {k:22} {shown}   median {med:6.2f}  {targets.get(k, '')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--only", choices=("aio", "multinode"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="neutrino-demo-bench-") as tmp:
        base = Path(tmp)
        if args.only in (None, "aio"):
            runs = []
            for i in range(args.runs):
                runs.append(aio_run(base))
                print(
                    f"aio run {i + 1}: up {runs[-1]['up_until_alive']:.1f} s, demo {runs[-1]['demo']:.1f} s",
                    file=sys.stderr,
                )
            _report("all-in-one", runs, {"up_until_alive": "[target <= 10 s]", "demo": "[target <= 30 s]"})
        if args.only in (None, "multinode"):
            runs = []
            for i in range(args.runs):
                runs.append(multinode_run(base))
                print(
                    f"multinode run {i + 1}: up {runs[-1]['four_nodes_up']:.1f} s, demo {runs[-1]['demo']:.1f} s",
                    file=sys.stderr,
                )
            _report("four nodes (controller, network, compute1, compute2)", runs, {})
    return 0


if __name__ == "__main__":
    sys.exit(main())
