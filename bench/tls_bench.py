#!/usr/bin/env python3
"""TLS benchmark: what HTTPS costs the network API.  Prints figures; asserts nothing.

    .venv/bin/python bench/tls_bench.py [--rounds 2] [--ports 500] [--networks 200] [--handshakes 200]

Two clouds in throwaway state dirs, the API alone (``--no-agents``): ``neutrino up`` (TLS,
the default) and ``neutrino up --no-tls`` (plain HTTP).  Then, alternating between them
(TLS, plain, plain, TLS, ...: a drift of the shared machine hits both alike):

* the shared Neutron load script (../shared/bench/api_load.py) on each: one kept-alive
  HTTP/1.1 connection per thread, so the sequential phases pay one handshake in all;
  p50/p95 per phase side by side, and the ratio TLS / plain (the issue's target: within
  15% for sequential requests on kept-alive connections).  The script trusts the CA
  through SSL_CERT_FILE=STATE/pki/ca.pem (stdlib http.client, default context);
* the handshake: ``--handshakes`` times a new connection + one GET /v2.0/networks?limit=1
  + close, against the same on one kept-alive connection: p50 of connect + first request
  for a new TLS connection and a new plain one, and the server CPU per new connection
  (CPU of the server's process tree over the new-connection run minus over the kept-alive
  run, per request).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from _common import api_base, free_offset, pct, read_openrc, token, verify

ROOT = Path(__file__).resolve().parent.parent
LOAD_SCRIPT = ROOT.parent / "shared" / "bench" / "api_load.py"
NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]
SEQUENTIAL = ("net_create_seq", "port_create_seq", "port_list_all", "port_get", "port_delete_seq", "net_delete_seq")
TICK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (the API workers)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kids.setdefault(int(fields[1]), []).append(int(d))
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
        stack.extend(kids.get(p, []))
    return total


class Cloud:
    """One ``neutrino up --no-agents`` in a throwaway state dir (TLS on or off)."""

    def __init__(self, tls: bool) -> None:
        self.tls = tls
        self.label = "TLS" if tls else "plain"
        self.state = Path(tempfile.mkdtemp(prefix=f"neutrino-tlsb-{self.label.lower()}-"))
        self.env = dict(os.environ, NEUTRINO_STATE_DIR=str(self.state))
        off = free_offset()
        argv = [*NEUTRINO, "up", "--no-agents", "--state-dir", str(self.state), "--port-offset", str(off)]
        t0 = time.perf_counter()
        subprocess.run([*argv, *([] if tls else ["--no-tls"])], check=True, env=self.env, stdout=subprocess.DEVNULL)
        self.up_s = time.perf_counter() - t0
        self.pid = int(json.loads((self.state / "run" / "server.pid").read_text())["pid"])
        self.openrc = read_openrc(self.state / "admin-openrc")
        self.ca = verify(self.openrc)
        self.port = 9696 + off
        self.url = api_base(self.openrc, self.port)
        self.token = self._token()

    def _token(self) -> str:
        return token(self.openrc["OS_AUTH_URL"].rstrip("/"), self.openrc)

    def load(self, ports: int, networks: int) -> dict[str, dict[str, float]]:
        """One run of the shared load script in a fresh project: phase -> its figures."""
        project = "tlsb-" + uuid.uuid4().hex[:8]
        httpx.put(
            f"{self.url}/v2.0/quotas/{project}",
            headers={"X-Auth-Token": self.token},
            json={"quota": {"port": -1, "network": -1, "subnet": -1}},
            timeout=30,
            verify=self.ca,
        ).raise_for_status()
        out = self.state / "load.json"
        # http.client's default context trusts the file SSL_CERT_FILE names: the script has no CA option.
        env = dict(os.environ, SSL_CERT_FILE=self.openrc["OS_CACERT"]) if self.tls else dict(os.environ)
        argv = [sys.executable, str(LOAD_SCRIPT), "--base-url", self.url, "--token", self.token]
        argv += ["--project", project, "--n-ports", str(ports), "--n-networks", str(networks)]
        argv += ["--cpu-pids", str(self.pid), "--json-out", str(out), "--quiet"]
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        return {r["phase"]: r for r in json.loads(out.read_text())["results"]}

    def connection(self) -> http.client.HTTPConnection:
        if not self.tls:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        ctx = ssl.create_default_context(cafile=self.openrc["OS_CACERT"])
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx)

    def requests(self, n: int, new_connection: bool) -> tuple[list[float], float]:
        """``n`` GET /v2.0/networks?limit=1: (seconds each, from connect when new, and the
        server's CPU seconds per request)."""
        h = {"X-Auth-Token": self.token}
        lat: list[float] = []
        c = self.connection()
        cpu0 = tree_cpu_s(self.pid)
        for _ in range(n):
            t0 = time.perf_counter()
            if new_connection:
                c = self.connection()
                c.connect()
            c.request("GET", "/v2.0/networks?limit=1", headers=h)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"{self.label}: GET /v2.0/networks answered {r.status}")
            lat.append(time.perf_counter() - t0)
            if new_connection:
                c.close()
        cpu = (tree_cpu_s(self.pid) - cpu0) / n
        c.close()
        return lat, cpu

    def down(self, keep: bool) -> None:
        subprocess.run([*NEUTRINO, "down", "--state-dir", str(self.state)], env=self.env, stdout=subprocess.DEVNULL)
        if not keep:
            shutil.rmtree(self.state, ignore_errors=True)


def alternate(clouds: list[Cloud], rounds: int, run: Callable[[Cloud], T]) -> dict[str, list[T]]:
    """``run`` on each cloud, ``rounds`` times, the order reversed every round (ABBA...)."""
    out: dict[str, list[T]] = {c.label: [] for c in clouds}
    for i in range(rounds):
        for c in clouds if i % 2 == 0 else reversed(clouds):
            out[c.label].append(run(c))
    return out


def load_table(runs: dict[str, list[dict[str, dict[str, float]]]]) -> None:
    print("\n## The shared load script (median over the rounds of each phase's p50 / p95, ms)\n")
    print(
        "| phase | TLS p50 | plain p50 | TLS/plain p50 | TLS p95 | plain p95 | TLS/plain p95 "
        "| server CPU ms/req TLS / plain |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for phase in runs["TLS"][0]:

        def med(label: str, key: str, phase: str = phase) -> float:
            vals = [r[phase].get(key) for r in runs[label]]
            return statistics.median(v for v in vals if v is not None) if any(v is not None for v in vals) else 0.0

        t50, p50, t95, p95 = med("TLS", "p50_ms"), med("plain", "p50_ms"), med("TLS", "p95_ms"), med("plain", "p95_ms")
        cpu = med("TLS", "server_cpu_ms_per_req"), med("plain", "server_cpu_ms_per_req")
        mark = " (sequential)" if phase in SEQUENTIAL else ""
        print(
            f"| {phase}{mark} | {t50:.2f} | {p50:.2f} | {t50 / p50:.2f} | {t95:.2f} | {p95:.2f} | {t95 / p95:.2f} "
            f"| {cpu[0]:.2f} / {cpu[1]:.2f} |"
        )
    seq = [
        statistics.median(r[ph]["p50_ms"] for r in runs["TLS"])
        / statistics.median(r[ph]["p50_ms"] for r in runs["plain"])
        for ph in SEQUENTIAL
        if ph in runs["TLS"][0]
    ]
    print(
        f"\nSequential phases on kept-alive connections: TLS/plain p50 ratio {min(seq):.2f}-{max(seq):.2f}, "
        f"geometric mean {statistics.geometric_mean(seq):.2f} (target <= 1.15)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="load runs per cloud, alternating")
    ap.add_argument("--ports", type=int, default=500, help="ports per load phase")
    ap.add_argument("--networks", type=int, default=200)
    ap.add_argument("--handshakes", type=int, default=200, help="new connections timed per cloud")
    ap.add_argument("--keep", action="store_true", help="keep the state dirs")
    args = ap.parse_args()

    clouds: list[Cloud] = []
    try:
        clouds.append(Cloud(tls=True))
        clouds.append(Cloud(tls=False))
        print(
            f"`neutrino up --no-agents`: TLS {clouds[0].up_s:.2f} s (CA + certificates created), "
            f"plain {clouds[1].up_s:.2f} s"
        )
        loads = alternate(clouds, args.rounds, lambda c: c.load(args.ports, args.networks))
        load_table(loads)
        n = args.handshakes
        new = alternate(clouds, 1, lambda c: c.requests(n, new_connection=True))
        kept = alternate(clouds, 1, lambda c: c.requests(n, new_connection=False))
        print(f"\n## New connection + GET /v2.0/networks?limit=1 + close ({n} times) vs one kept-alive connection\n")
        print("| | new connection p50 ms | p95 ms | kept-alive p50 ms | server CPU ms per request: new / kept-alive |")
        print("|---|---|---|---|---|")
        figs = {}
        for label in ("TLS", "plain"):
            (lat_new, cpu_new), (lat_kept, cpu_kept) = new[label][0], kept[label][0]
            figs[label] = (pct(lat_new, 50) * 1000, pct(lat_kept, 50) * 1000, (cpu_new - cpu_kept) * 1000)
            print(
                f"| {label} | {pct(lat_new, 50) * 1000:.2f} | {pct(lat_new, 95) * 1000:.2f} | "
                f"{pct(lat_kept, 50) * 1000:.2f} | {cpu_new * 1000:.2f} / {cpu_kept * 1000:.2f} |"
            )
        extra = figs["TLS"][0] - figs["plain"][0]
        cpu_extra = figs["TLS"][2] - figs["plain"][2]
        print(
            f"\nTLS handshake cost: +{extra:.2f} ms wall per new connection (p50 vs a new plain one), "
            f"~{cpu_extra:.2f} ms server CPU per handshake (new-connection CPU minus kept-alive CPU, TLS minus plain; "
            f"{TICK} Hz ticks, so +-{1000 / TICK / n * 2:.2f} ms)"
        )
    finally:
        for c in clouds:
            c.down(args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
