#!/usr/bin/env python3
"""Metadata benchmark: instance -> 169.254.169.254 -> haproxy -> metadata agent (unix
socket) -> metadata API, through a router (qrouter-, 9697) and on an isolated network
(qdhcp-).  Prints figures; asserts nothing.

    .venv/bin/python bench/metadata_bench.py [--requests 2000] [--seconds 5] [--burst 20]

Needs root, Open vSwitch and haproxy.  One `neutrino up` in a temporary state dir
(torn down with `down --purge`); the whole run stays under 3 minutes on this 2-core
machine.

* latency/throughput: from inside one instance per path (`neutrino console SERVER --
  <this python> -c ...`, http.client with keep-alive): N sequential GETs of
  /latest/meta-data/instance-id (p50/p99; targets p99 <= 10 ms), then 4 worker
  processes for a few seconds (requests/s; target >= 1,000 req/s).  The agent
  replays these answers for as long as the metadata API allows (its
  Cache-Control); a third run sends an IMDSv2 token with every GET, which the
  agent never replays, so every request crosses the whole chain.  CPU per
  request of every process on the path (haproxy, agent, API, ovs-vswitchd, the
  load generator itself);
* burst: 20 instances booted at once on the routed network; each one, as soon as it
  is ACTIVE, asks for meta-data/instance-id every 20 ms until it gets a 200: the time
  from its first request to that answer (max over the 20; target <= 1 s);
* memory: USS / PSS / RSS of every per-namespace haproxy, and of the metadata agent.

TLS: on (the default ``neutrino up``): the metadata agent asks the metadata API over mutual
TLS, as users run it, so the uncached figures include that hop; the bench's own API calls
trust STATE/pki/ca.pem.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from l3_bench import Api, free_offset, get_token, ms, pct, read_openrc  # noqa: E402 - imported after sys.path names the bench folder

from neutrino import config as nconfig  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import netns as netns_mod  # noqa: E402 - imported after sys.path names the bench folder

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]
PATH = "/latest/meta-data/instance-id"

# Runs inside the instance (its namespace) with this venv's python.
LOAD = r"""
import http.client, json, os, sys, time
N, SECS, WORKERS, PATH, TOKEN = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
HEADERS = {}
def conn():
    return http.client.HTTPConnection("169.254.169.254", 80, timeout=5)
def get(c):
    c.request("GET", PATH, headers=HEADERS)
    r = c.getresponse(); r.read()
    return r.status, r.getheader("Connection", "")
# wait until the path answers (it may still be being set up)
end = time.monotonic() + 30
while True:
    try:
        c = conn(); st, _ = get(c)
        if st == 200: break
    except OSError: pass
    if time.monotonic() > end: print(json.dumps({"error": "no 200 within 30 s"})); sys.exit(0)
    time.sleep(0.1)
if TOKEN:   # an IMDSv2 session: every GET carries the token, so none is replayed by the agent
    c.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "600"})
    r = c.getresponse(); HEADERS["X-aws-ec2-metadata-token"] = r.read().decode()
lat, errors, reconnects = [], 0, 0
c = conn()
for _ in range(N):
    t0 = time.perf_counter()
    try:
        st, hdr = get(c)
        if st != 200: errors += 1
        if hdr.lower() == "close": c.close(); c = conn(); reconnects += 1
    except (OSError, http.client.HTTPException):
        errors += 1; c.close(); c = conn(); reconnects += 1
    lat.append(time.perf_counter() - t0)
out = {"lat": lat, "errors": errors, "reconnects": reconnects}
# concurrent: WORKERS forked processes, each a keep-alive connection, for SECS seconds
pipes, pids = [], []
start = time.monotonic() + 0.2
for w in range(WORKERS):
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        n = e = 0; l = []
        c = conn()
        while time.monotonic() < start: pass
        stop = start + SECS
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                st, _ = get(c)
                if st != 200: e += 1
            except (OSError, http.client.HTTPException):
                e += 1; c.close(); c = conn()
            l.append(time.perf_counter() - t0); n += 1
        os.write(wfd, json.dumps({"n": n, "e": e, "lat": l}).encode()); os.close(wfd)
        os._exit(0)
    os.close(wfd); pipes.append(rfd); pids.append(pid)
res = []
for rfd in pipes:
    data = b""
    while True:
        b = os.read(rfd, 1 << 20)
        if not b: break
        data += b
    res.append(json.loads(data))
for pid in pids: os.waitpid(pid, 0)
out["conc"] = {"n": sum(r["n"] for r in res), "errors": sum(r["e"] for r in res), "secs": SECS,
               "lat": [x for r in res for x in r["lat"]]}
import resource
out["cpu"] = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                 for f in ("ru_utime", "ru_stime"))
print(json.dumps(out))
"""

# Runs inside a fresh instance: time from the first request to the first 200.
FIRST = r"""
import http.client, json, sys, time
PATH = sys.argv[1]
t0 = time.perf_counter(); tries = 0; last = None
while time.perf_counter() - t0 < 30:
    tries += 1
    try:
        c = http.client.HTTPConnection("169.254.169.254", 80, timeout=1)
        c.request("GET", PATH); r = c.getresponse(); r.read(); last = r.status; c.close()
        if r.status == 200:
            print(json.dumps({"t": time.perf_counter() - t0, "tries": tries})); sys.exit(0)
    except (OSError, http.client.HTTPException) as e:
        last = type(e).__name__
    time.sleep(0.02)
print(json.dumps({"t": None, "tries": tries, "last": str(last)}))
"""


def console(state: Path, server: str, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEUTRINO, "console", "--state-dir", str(state), server, "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rollup_kb(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` in kB (Rss, Pss, Private_Clean, Private_Dirty, ...)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def pss_kb(pid: int) -> int:
    """Proportional set size: private pages + each shared page divided by its number of users."""
    return rollup_kb(pid).get("Pss", 0)


def uss_kb(pid: int) -> int:
    """Unique set size: the pages only this process maps, i.e. what one more such process costs."""
    r = rollup_kb(pid)
    return r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)


def pids_matching(needle: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            out.append(int(p.name))
    return out


def load_path(state: Path, label: str, server: str, n: int, secs: float, token: bool = False) -> None:
    t0 = time.perf_counter()
    ps = procs(state)
    idle0 = {k: cpu_s(p) for k, p in ps.items()}
    time.sleep(2)  # background CPU (feed, reports) to subtract
    idle = {k: (cpu_s(p) - idle0[k]) / 2 for k, p in ps.items()}
    t0 = time.perf_counter()
    cpu0 = {k: cpu_s(p) for k, p in ps.items()}
    r = console(
        state,
        server,
        sys.executable,
        "-c",
        LOAD,
        str(n),
        str(secs),
        "4",
        PATH,
        "1" if token else "",
        timeout=60 + n * 0.05 + secs,
    )
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"* {label}: load generator failed (rc {r.returncode}): {r.stderr[-500:]}")
        return
    if "error" in out:
        print(f"* {label}: {out['error']}")
        return
    lat = out["lat"]
    c = out["conc"]
    what = f"GETs {PATH}" + (" with an IMDSv2 token" if token else "")
    print(
        f"* {label}: {len(lat)} sequential keep-alive {what}: p50 **{pct(lat, 50) * 1000:.2f} ms**"
        f", p90 {pct(lat, 90) * 1000:.2f} ms, p99 **{pct(lat, 99) * 1000:.2f} ms**, max "
        f"{max(lat) * 1000:.1f} ms (target p99 <= 10 ms); {len(lat) / sum(lat):.0f} req/s sequential; "
        f"errors {out['errors']}, reconnects {out['reconnects']}"
    )
    cl = c["lat"]
    print(
        f"  - 4 concurrent keep-alive clients for {c['secs']:.0f} s: **{c['n'] / c['secs']:.0f} req/s** "
        f"(target >= 1,000), p50 {pct(cl, 50) * 1000:.2f} ms, p99 {pct(cl, 99) * 1000:.2f} ms, "
        f"errors {c['errors']} (wall {time.perf_counter() - t0:.1f} s incl. console start)"
    )
    total, wall = len(lat) + c["n"], time.perf_counter() - t0
    used = {k: max(0.0, cpu_s(p) - cpu0[k] - idle[k] * wall) for k, p in ps.items() if cpu0[k] or cpu_s(p)}
    used = {k: v for k, v in used.items() if not k.startswith("haproxy") or v > 0.01}  # the other path's proxy
    used["load generator"] = out.get("cpu", 0.0)
    print(
        "  - CPU per request over both phases (idle background subtracted): "
        + ", ".join(f"{k} {v / total * 1e6:.0f} us" for k, v in used.items())
        + f"; sum {sum(used.values()) / total * 1e6:.0f} us (the {os.cpu_count()} CPUs give "
        f"{os.cpu_count() * 1e6:.0f} us per second)"
    )


def burst(state: Path, api: Api, net_id: str, n: int) -> None:
    print(f"\n## {n} instances booted at once (routed network): first request -> first 200\n")
    t0 = time.perf_counter()
    ids = [api.boot(f"mdb-burst-{i}", net_id) for i in range(n)]
    t_post = time.perf_counter() - t0
    results: dict[str, Any] = {}
    active_at: dict[str, float] = {}

    def one(sid: str) -> None:
        st = api.wait_active(sid, 90)
        active_at[sid] = time.perf_counter() - t0
        if st != "ACTIVE":
            results[sid] = {"t": None, "last": st}
            return
        r = subprocess.run(
            ["ip", "netns", "exec", f"vm-{sid}", sys.executable, "-c", FIRST, PATH],
            capture_output=True,
            text=True,
            timeout=60,
        )
        try:
            results[sid] = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            results[sid] = {"t": None, "last": r.stderr[-200:]}
        results[sid]["done"] = time.perf_counter() - t0

    threads = [threading.Thread(target=one, args=(s,)) for s in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    ts = [r["t"] for r in results.values() if r.get("t") is not None]
    failed = [r for r in results.values() if r.get("t") is None]
    print(
        f"* first request -> 200: max **{ms(max(ts, default=float('nan')))}** (target <= 1 s), "
        f"p50 {ms(pct(ts, 50))}; requests needed: max {max((r.get('tries', 0) for r in results.values()), default=0)}"
        + (f"; {len(failed)} never answered: {failed[:3]}" if failed else "")
    )
    print(
        f"  - {n} POSTs took {ms(t_post)}; ACTIVE (from the first POST, polled every 200 ms): "
        f"p50 {ms(pct(list(active_at.values()), 50))}, max {ms(max(active_at.values(), default=float('nan')))}; "
        f"metadata answered (from the first POST): max "
        f"{ms(max((r.get('done', 0) for r in results.values()), default=float('nan')))}"
    )
    print(
        "  - note: 'first request' is made from the instance's namespace via `ip netns exec` "
        "as soon as the API says ACTIVE"
    )


def cpu_s(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = raw[raw.rfind(")") + 2 :].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def procs(state: Path) -> dict[str, int]:
    """haproxy (per uuid prefix), metadata agent, the API server and ovs-vswitchd (the instances'
    packets cross its userspace datapath), by pid."""
    out: dict[str, int] = {}
    pids_dir = state / "external" / "pids"
    for pf in sorted(pids_dir.glob("*.pid.haproxy")) if pids_dir.exists() else []:
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[f"haproxy {pf.name[:8]}"] = int(pf.read_text().split()[0])
    for pid in pids_matching(f"agent metadata --state-dir {state}"):
        out["metadata agent"] = pid
    with contextlib.suppress(OSError, ValueError, KeyError):
        out["API server"] = int(json.loads((state / "run" / "server.pid").read_text())["pid"])
    with contextlib.suppress(OSError, ValueError, IndexError):
        out["ovs-vswitchd"] = int((state / "ovs" / "ovs-vswitchd.pid").read_text().split()[0])
    return out


def hops(state: Path, off: int, server_id: str, project_id: str, router_id: str, n: int) -> None:
    """The same GET, sequential, from the host to each hop: the metadata API (signed, keep-alive),
    the metadata agent's unix socket (keep-alive, as haproxy uses it: answers it replays, and
    answers it fetches because the request carries an IMDSv2 token; and a new connection per
    request); CPU per request of the agent and the API for each."""
    import hashlib
    import hmac
    import http.client
    import socket as socketmod

    from neutrino.agents.metadata import socket_path
    from neutrino.cli.main import load_config

    print(f"\n## Per hop ({n} sequential GETs {PATH} from the host)\n")
    cfg = load_config(state / "neutrino.conf", state)
    port = cfg.metadata.bind_port + off
    sig = hmac.new(cfg.metadata.metadata_proxy_shared_secret.encode(), server_id.encode(), hashlib.sha256).hexdigest()
    h = {"X-Instance-ID": server_id, "X-Tenant-ID": project_id, "X-Instance-ID-Signature": sig}

    ps = procs(state)

    def run(label: str, make: Any, headers: dict[str, str], reuse: bool) -> None:
        lat, bad = [], 0
        cpu0 = {k: cpu_s(ps[k]) for k in ("metadata agent", "API server") if k in ps}
        c = make()
        for _ in range(n):
            t0 = time.perf_counter()
            if not reuse:
                c = make()
            c.request("GET", PATH, headers=headers)
            r = c.getresponse()
            r.read()
            bad += r.status != 200
            if not reuse:
                c.close()
            lat.append(time.perf_counter() - t0)
        cpu = ", ".join(f"{k} {(cpu_s(ps[k]) - v) / n * 1e6:.0f} us" for k, v in cpu0.items())
        print(
            f"* {label}: p50 {pct(lat, 50) * 1000:.2f} ms, p99 {pct(lat, 99) * 1000:.2f} ms, "
            f"{len(lat) / sum(lat):.0f} req/s; CPU per request: {cpu}" + (f", {bad} not 200" if bad else "")
        )

    if cfg.default.use_ssl:  # the API speaks TLS: connect as the metadata agent does (node certificate)
        from neutrino.agents.tls import tls_files
        from neutrino.pki.tls import client_context

        ctx = client_context(*tls_files(cfg))
        run(
            f"metadata API (https://127.0.0.1:{port}, node certificate, signed, keep-alive)",
            lambda: http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx),
            h,
            True,
        )
    else:
        run(
            f"metadata API (127.0.0.1:{port}, signed, keep-alive)",
            lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=5),
            h,
            True,
        )

    class UnixConn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socketmod.socket(socketmod.AF_UNIX, socketmod.SOCK_STREAM)
            self.sock.settimeout(5)
            self.sock.connect(socket_path(cfg))

    from neutrino.metadata.app import make_token

    ip = ADDRESSES.get(server_id, "")
    token = make_token(cfg.metadata.metadata_proxy_shared_secret, server_id, int(time.time()) + 600)
    agent_h = {"X-Forwarded-For": ip, "X-Neutron-Router-ID": router_id}
    run(
        "metadata agent (unix socket, keep-alive, X-Forwarded-For + X-Neutron-Router-ID; replayed)",
        lambda: UnixConn("localhost"),
        agent_h,
        True,
    )
    for reuse in (True, False):
        run(
            f"metadata agent (unix socket, {'keep-alive' if reuse else 'new connection per request'}, "
            f"+ X-aws-ec2-metadata-token: fetched from the API)",
            lambda: UnixConn("localhost"),
            {**agent_h, "X-aws-ec2-metadata-token": token},
            reuse,
        )


ADDRESSES: dict[str, str] = {}


def memory(state: Path) -> None:
    """Memory of every per-namespace haproxy.  The target (<= 5 MB per proxy) is judged on
    what a proxy costs the host: its unique pages (USS), which is what each further router
    adds, and its proportional share (PSS).  RSS is printed as well: it also counts the
    pages of the haproxy binary, libc, libcrypto and the other libraries of Debian's build
    (Lua, OpenSSL, PCRE2, systemd, OpenTracing), which are in memory once, for all proxies
    and every other process using them."""
    print("\n## Memory of the per-namespace proxies\n")
    pids_dir = state / "external" / "pids"
    rows = []
    for pf in sorted(pids_dir.glob("*.pid.haproxy")) if pids_dir.exists() else []:
        try:
            pid = int(pf.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        conf = state / "ns-metadata-proxy" / (pf.name.split(".")[0] + ".conf")
        kind = "router" if "9697" in (conf.read_text() if conf.exists() else "") else "network"
        rows.append((kind, pf.name.split(".")[0][:8], pid, uss_kb(pid), pss_kb(pid), rss_kb(pid)))
    for kind, u, pid, uss, pss, rss in rows:
        print(
            f"* haproxy ({kind} {u}, pid {pid}): unique (USS) **{uss / 1024:.1f} MB**, "
            f"PSS **{pss / 1024:.1f} MB** (target <= 5 MB); RSS {rss / 1024:.1f} MB, of which "
            f"{(rss - uss) / 1024:.1f} MB are shared pages of the binary and its libraries"
        )
    if rows:
        n = len(rows)
        print(
            f"* all {n} proxies together: {sum(r[4] for r in rows) / 1024:.1f} MB (sum of PSS), "
            f"{sum(r[4] for r in rows) / 1024 / n:.1f} MB per proxy; one more proxy adds its USS, "
            f"~{max(r[3] for r in rows) / 1024:.1f} MB"
        )
    agents = pids_matching(f"agent metadata --state-dir {state}")
    for pid in agents:
        print(
            f"* metadata agent (pid {pid}): **{rss_kb(pid) / 1024:.1f} MB** "
            f"(private {rss_kb(pid, 'RssAnon') / 1024:.1f} MB)"
        )
    if not agents:
        print("* metadata agent: process not found")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the state dir (the cloud is still torn down)")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("ovs-vswitchd") or not shutil.which("haproxy"):
        print("needs root, Open vSwitch and haproxy", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="neutrino-mdb-"))
    lab = f"lab-mdb-{uuid.uuid4().hex[:6]}"
    (state / "neutrino.conf").write_text(nconfig.render_ini({**nconfig.ALL_IN_ONE, ("lab", "host_netns"): lab}))
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(state))
    off = free_offset()
    try:
        t0 = time.perf_counter()
        subprocess.run(
            [*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(off)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        print(f"`neutrino up`: {ms(time.perf_counter() - t0)}")
        demo = read_openrc(state / "demo-openrc")
        api = Api(demo, off, get_token(demo))
        routed, routed_sub = api.network("mdb-routed", "10.72.0.0/24")
        router = api.call("POST", "/routers", {"router": {"name": "mdb-router"}})["router"]
        api.call("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": routed_sub})
        isolated, _ = api.network("mdb-isolated", "10.73.0.0/24")
        vm_r, vm_i = api.boot("mdb-routed-vm", routed), api.boot("mdb-iso-vm", isolated)
        for sid in (vm_r, vm_i):
            print(f"instance {sid[:8]}: {api.wait_active(sid, 60)}")
        print(
            f"\n## Latency and throughput from inside an instance ({os.cpu_count()} CPUs, "
            f"load generator in the same machine)\n"
        )
        load_path(state, "through the router (qrouter- haproxy on 9697)", vm_r, args.requests, args.seconds)
        load_path(state, "isolated network (qdhcp- haproxy on 169.254.169.254:80)", vm_i, args.requests, args.seconds)
        load_path(
            state,
            "through the router, every request to the metadata API (the agent replays no request carrying a token)",
            vm_r,
            max(1, args.requests // 4),
            args.seconds,
            token=True,
        )
        port = api.call("GET", f"/ports?device_id={vm_r}")["ports"][0]
        ADDRESSES[vm_r] = port["fixed_ips"][0]["ip_address"]
        hops(state, off, vm_r, port["project_id"], router["id"], min(args.requests, 1000))
        memory(state)
        if args.burst:
            burst(state, api, routed, args.burst)
            memory(state)
    finally:
        subprocess.run(
            [*NEUTRINO, "down", "--state-dir", str(state), "--purge"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        if netns_mod.netns_exists(lab):
            print(f"(lab namespace {lab} still there after down --purge: removing it)")
            netns_mod.remove_netns(lab)
        if args.keep:
            print(f"(state kept in {state})")
        else:
            shutil.rmtree(state, ignore_errors=True)
    print(
        f"\n(total {time.monotonic() - t_start:.0f} s on {os.cpu_count()} CPUs; load average at the end "
        f"{os.getloadavg()[0]:.1f}: anything else running on this machine skews every figure)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
