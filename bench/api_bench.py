#!/usr/bin/env python3
"""API benchmark: `neutrino up` in a throwaway state dir, then the shared
Neutron load script (../shared/bench/api_load.py) against it, then a linear
list-scaling check.  Prints figures; asserts nothing.

TLS: on (the default `neutrino up`): these are the figures users get.  The load script
(stdlib http.client) trusts the cloud's CA through SSL_CERT_FILE=STATE/pki/ca.pem;
bench/tls_bench.py compares the same load with and without TLS.

    .venv/bin/python bench/api_bench.py [--port-offset 20000] [--ports 500]

Reference (real Neutron 29 on this kind of machine, same script): network
create p50 39 ms, port create p50 88 ms, 8-way concurrent port create p50
433-976 ms, list of 1,000 ports 586 ms, GET port 11 ms, port delete 73 ms,
~210 MB per API worker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from _common import api_base, read_openrc, token, verify

ROOT = Path(__file__).resolve().parent.parent
LOAD_SCRIPT = ROOT.parent / "shared" / "bench" / "api_load.py"
NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def list_scaling(net_url: str, tok: str, sizes: list[int], ca: str | bool) -> list[tuple[int, float]]:
    """p50 of GET /ports for growing numbers of ports (linear growth expected)."""
    h = {"X-Auth-Token": tok}
    out = []
    with httpx.Client(base_url=net_url, headers=h, timeout=60, verify=ca) as c:
        proj = "scale-" + uuid.uuid4().hex[:8]
        c.put(f"/v2.0/quotas/{proj}", json={"quota": {"port": -1, "network": -1, "subnet": -1}})
        net = c.post("/v2.0/networks", json={"network": {"name": "scale", "project_id": proj}}).json()["network"]
        c.post(
            "/v2.0/subnets",
            json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.8.0.0/16", "project_id": proj}},
        )
        have = 0
        for n in sizes:
            while have < n:
                batch = min(100, n - have)
                r = c.post(
                    "/v2.0/ports", json={"ports": [{"network_id": net["id"], "project_id": proj} for _ in range(batch)]}
                )
                r.raise_for_status()
                have += batch
            lat = []
            for _ in range(7):
                t0 = time.perf_counter()
                r = c.get("/v2.0/ports", params={"network_id": net["id"]})
                lat.append((time.perf_counter() - t0) * 1000)
                assert len(r.json()["ports"]) == n
            out.append((n, statistics.median(lat)))
    return out


def load_env(openrc: dict[str, str]) -> dict[str, str]:
    """The load script's environment: it uses http.client with the default SSL context, which
    trusts the file SSL_CERT_FILE names (it has no CA option), so point that at the cloud's CA."""
    ca = openrc.get("OS_CACERT")
    return dict(os.environ, SSL_CERT_FILE=ca) if ca else dict(os.environ)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port-offset", type=int, default=20000)
    ap.add_argument("--ports", type=int, default=500, help="ports per load phase")
    ap.add_argument("--networks", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the state dir")
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="neutrino-bench-"))
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(state))
    t0 = time.perf_counter()
    # The API alone: agents would add DHCP ports to the measured networks and share the CPU.
    subprocess.run(
        [*NEUTRINO, "up", "--no-agents", "--state-dir", str(state), "--port-offset", str(args.port_offset)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    up_s = time.perf_counter() - t0
    try:
        pid = int(json.loads((state / "run" / "server.pid").read_text())["pid"])
        openrc = read_openrc(state / "admin-openrc")
        auth_url = openrc["OS_AUTH_URL"]
        net_url = api_base(openrc, 9696 + args.port_offset)
        tok = token(auth_url, openrc)
        project = "load-" + uuid.uuid4().hex[:8]
        # The load creates 2 x --ports ports in one project: lift its quotas first.
        httpx.put(
            f"{net_url}/v2.0/quotas/{project}",
            headers={"X-Auth-Token": tok},
            json={"quota": {"port": -1, "network": -1, "subnet": -1}},
            timeout=30,
            verify=verify(openrc),
        ).raise_for_status()
        rss_before = rss_mb(pid)
        out_json = state / "load.json"
        subprocess.run(
            [
                sys.executable,
                str(LOAD_SCRIPT),
                "--base-url",
                net_url,
                "--token",
                tok,
                "--project",
                project,
                "--n-ports",
                str(args.ports),
                "--n-networks",
                str(args.networks),
                "--cpu-pids",
                str(pid),
                "--json-out",
                str(out_json),
            ],
            check=True,
            env=load_env(openrc),
        )
        scaling = list_scaling(net_url, tok, [250, 500, 1000, 2000], verify(openrc))
        print("\n# GET /v2.0/ports latency by number of ports (p50 of 7)\n")
        print("| ports | p50_ms | ms per 1,000 ports |")
        print("|---|---|---|")
        for n, ms in scaling:
            print(f"| {n} | {ms:.1f} | {ms * 1000 / n:.1f} |")
        print(f"\n`neutrino up` until the APIs answer: {up_s:.2f} s (target <= 3 s)")
        print(f"server RSS: {rss_before:.0f} MB after start, {rss_mb(pid):.0f} MB after the load (target < 120 MB)")
    finally:
        subprocess.run([*NEUTRINO, "down", "--state-dir", str(state)], env=env, stdout=subprocess.DEVNULL)
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
