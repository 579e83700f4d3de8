#!/usr/bin/env python3
"""Request limits benchmark (issue 13, findings 6-8): a real `neutrino server`
in a throwaway state dir, then what the audit tried, with figures.  Prints; asserts nothing.

    .venv/bin/python bench/limits_bench.py [--body-mb 400] [--pools 20000]

* a --body-mb POST /v3/auth/tokens without a token, with Content-Length and
  chunked: the answer, how long, and the server's RSS before and after (the
  audit saw 146 MB grow to 963 MB, never released);
* a subnet with --pools allocation pools (the audit: 13 s inside the write
  transaction), and one with max_allocation_pools pools: answer and time;
  max_request_body_size is raised for this run so the pools reach the API;
* a request sent halfway: how long until the server closes it.

TLS: off (``use_ssl = false``): these bounds are the HTTP server's, the same under TLS, and
plain HTTP lets the half-sent request go through a bare socket.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from _common import read_openrc

from neutrino import config, server

API_PORTS = {
    ("identity", "bind_port"),
    ("DEFAULT", "bind_port"),
    ("compute", "bind_port"),
    ("image", "bind_port"),
    ("metadata", "bind_port"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(state: Path, body_limit: int) -> tuple[subprocess.Popen, dict[tuple[str, str], int]]:
    ports = {key: free_port() for key in API_PORTS}
    values = {
        **config.ALL_IN_ONE,
        **{k: str(v) for k, v in ports.items()},
        ("oslo_middleware", "max_request_body_size"): str(body_limit),
        ("DEFAULT", "client_header_timeout"): "10",
        ("DEFAULT", "use_ssl"): "false",  # plain HTTP: the limits do not depend on TLS (docstring)
    }
    (state / "neutrino.conf").write_text(config.render_ini(values))
    cfg = config.load(state / "neutrino.conf", state)
    server.prepare(cfg)
    proc = subprocess.Popen(
        [sys.executable, "-m", "neutrino.cli.main", "server", "--state-dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{ports[('DEFAULT', 'bind_port')]}/", timeout=1)
            return proc, ports
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start") from None
            time.sleep(0.2)


def big_body(mb: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    yield b'{"auth": "'
    for _ in range(mb):
        yield b"x" * chunk
    yield b'"}'


def body_bound(pid: int, identity: str, mb: int) -> None:
    print(f"\n## A {mb} MB POST /v3/auth/tokens, no token\n")
    print(f"* server RSS before: {rss_mb(pid):.0f} MB")
    size = mb * (1 << 20) + 12
    for how, headers in (("Content-Length", {"Content-Length": str(size)}), ("chunked", {})):
        t0 = time.perf_counter()
        try:
            r = httpx.post(f"{identity}/v3/auth/tokens", content=big_body(mb), headers=headers, timeout=120)
            answer = f"{r.status_code} {r.text[:80]}"
        except httpx.HTTPError as exc:  # the server closed the connection after answering
            answer = f"connection closed by the server ({type(exc).__name__})"
        print(f"* {how}: {answer} after {time.perf_counter() - t0:.2f} s; server RSS after: {rss_mb(pid):.0f} MB")


def pools(n: int, step: int = 4) -> list[dict[str, str]]:
    base = int(ipaddress.ip_address("10.0.0.0"))
    return [
        {"start": str(ipaddress.ip_address(base + 2 + step * i)), "end": str(ipaddress.ip_address(base + 3 + step * i))}
        for i in range(n)
    ]


def pool_bound(state: Path, identity: str, network: str, n: int) -> None:
    env = read_openrc(state / "admin-openrc")
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": env["OS_USERNAME"], "domain": {"id": "default"}, "password": env["OS_PASSWORD"]}
                },
            },
            "scope": {"project": {"name": env["OS_PROJECT_NAME"], "domain": {"id": "default"}}},
        }
    }
    token = httpx.post(f"{identity}/v3/auth/tokens", json=auth).headers["X-Subject-Token"]
    c = httpx.Client(base_url=network, headers={"X-Auth-Token": token}, timeout=120)
    print("\n## Allocation pools\n")
    limit = config.defaults("/").default.max_allocation_pools
    for count in (n, limit):
        net = c.post("/v2.0/networks", json={"network": {"name": f"pools-{count}"}}).json()["network"]
        body = {
            "subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/8", "allocation_pools": pools(count)}
        }
        t0 = time.perf_counter()
        r = c.post("/v2.0/subnets", json=body)
        print(
            f"* {count} pools: {r.status_code} in {(time.perf_counter() - t0) * 1000:.0f} ms "
            f"{'' if r.status_code < 300 else r.json()['NeutronError']['message'][:90]}"
        )


def slow_client(network_port: int) -> None:
    print("\n## A request sent halfway\n")
    with socket.create_connection(("127.0.0.1", network_port), timeout=300) as s:
        s.sendall(b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Le")
        t0 = time.perf_counter()
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        status_line = data.split(b"\r\n", 1)[0].decode() or "no answer"
        print(f"* closed after {time.perf_counter() - t0:.1f} s (client_header_timeout = 10): {status_line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--body-mb", type=int, default=400)
    ap.add_argument("--pools", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="neutrino-limits-") as tmp:
        state = Path(tmp)
        # The pools request is ~40 bytes a pool: let it through the body bound, to reach the pool bound.
        proc, ports = start(state, max(114688, 64 * args.pools))
        try:
            identity = f"http://127.0.0.1:{ports[('identity', 'bind_port')]}"
            network = f"http://127.0.0.1:{ports[('DEFAULT', 'bind_port')]}"
            print(
                f"# Request limits (server pid {proc.pid}; max_request_body_size raised to "
                f"{max(114688, 64 * args.pools)} for the pools)"
            )
            body_bound(proc.pid, identity, args.body_mb)
            pool_bound(state, identity, network, args.pools)
            slow_client(ports[("DEFAULT", "bind_port")])
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
