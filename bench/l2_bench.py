#!/usr/bin/env python3
"""L2 benchmark: port wiring latency and OVS agent resync.  Prints figures; asserts nothing.

    .venv/bin/python bench/l2_bench.py [--only resync|api] [--resync-ports 1000] [--ports 100]

Needs root and Open vSwitch.  Two parts, each bounded in time (the whole run
stays under 5 minutes):

resync (in-process, no API): a private OVS in a throwaway namespace, N VIF
ports on br-int (internal ports with ``iface-id``/``attached-mac``), a feed
``State`` with those N ports on ~10 VXLAN networks bound to this host, then
``OvsDriver.reconcile_sync``:

* cold: a fresh driver, nothing wired (target <= 10 s at 1,000 ports);
* warm: a new driver after a simulated agent restart, everything wired
  (should be near no-op); once with a new cookie (what a restarted agent
  does) and once with the previous cookie (lower bound);
* no-op: the feed moved but nothing changed for this host (every change
  anywhere in the cloud costs this much);
* incremental: one more port (desired + VIF) per reconcile, 20 times
  (target p50 <= 100 ms).

Each figure comes with a breakdown: time in ovs-vsctl (observe / transact),
in ovs-ofctl (dump-flows / bundle), in the planner, and the rest (Python in
the executor: parsing dumps, building ``Flow`` values, diffing).

api (``neutrino up`` in a temporary state dir): port create with
``binding:host_id`` = this host, VIF plugged into the private br-int (internal
port with iface-id / attached-mac / iface-status), until the change feed
shows the port ACTIVE (p50/p99 over --ports); then servers: ``server create``
-> ACTIVE -> first ping answered from a neighbour instance (p50 over
--servers).

Targets (issue; /work/shared/reference/user-pains.md goal 1): port ready
p50 <= 1 s, p99 <= 3 s (Neutron's Nova waits up to 300 s for vif-plugged).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neutrino.agents.ovs import agent as ovs_agent  # noqa: E402
from neutrino.agents.ovs.agent import OvsDriver  # noqa: E402
from neutrino.agents.ovs.model import AgentConfig  # noqa: E402
from neutrino.feed.state import State  # noqa: E402
from neutrino.system import netns as netns_mod  # noqa: E402
from neutrino.system import ovsdb as sysovs  # noqa: E402
from neutrino.system.exec import Completed, run  # noqa: E402

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]
HOST = "l2-bench-host"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


class Timers:
    """Wall time and counts per kind of work (subprocesses by tool/verb, planner)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)
        self.extra: dict[str, int] = defaultdict(int)

    def add(self, kind: str, seconds: float) -> None:
        self.t[kind] += seconds
        self.n[kind] += 1

    def reset(self) -> None:
        self.t.clear()
        self.n.clear()
        self.extra.clear()

    def snapshot(self) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
        return dict(self.t), dict(self.n), dict(self.extra)


def classify(argv: Sequence[str]) -> str:
    tool = argv[0]
    if tool == "ovs-vsctl":
        return "ovs-vsctl observe" if "list" in argv else "ovs-vsctl transact/get"
    if tool == "ovs-ofctl":
        if "dump-flows" in argv:
            return "ovs-ofctl dump-flows"
        return "ovs-ofctl bundle"
    return tool


def timed_runner(timers: Timers) -> Callable[..., Completed]:
    def runner(argv: Sequence[str], **kw: Any) -> Completed:
        kind = classify(argv)
        t0 = time.perf_counter()
        try:
            done = run(argv, **kw)
        finally:
            timers.add(kind, time.perf_counter() - t0)
        if kind == "ovs-ofctl dump-flows":
            timers.extra["flow lines dumped"] += done.stdout.count("actions=")
        elif kind == "ovs-ofctl bundle" and kw.get("input"):
            timers.extra["flow mods sent"] += kw["input"].count("\n")
        return done
    return runner


@contextlib.contextmanager
def instrument_planner(timers: Timers) -> Iterator[None]:
    """Time every planner call (and the observed-state conversion) the executor makes."""
    orig_plan, orig_obs = ovs_agent.plan, ovs_agent.observed_state

    def plan(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig_plan(*a, **kw)
        finally:
            timers.add("planner (pure)", time.perf_counter() - t0)

    def observed_state(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig_obs(*a, **kw)
        finally:
            timers.add("observed_state()", time.perf_counter() - t0)

    ovs_agent.plan, ovs_agent.observed_state = plan, observed_state
    try:
        yield
    finally:
        ovs_agent.plan, ovs_agent.observed_state = orig_plan, orig_obs


def breakdown(total: float, t: Mapping[str, float], n: Mapping[str, int], extra: Mapping[str, int],
              per: int = 1) -> str:
    parts = []
    accounted = 0.0
    for kind in sorted(t, key=lambda k: -t[k]):
        accounted += t[kind]
        parts.append(f"{kind} {ms(t[kind] / per)} ({n[kind] / per:g}x)")
    parts.append(f"other Python (dump parsing, Flow values, diff) {ms((total - accounted) / per)}")
    if extra:
        parts.append(", ".join(f"{k} {v / per:g}" for k, v in sorted(extra.items())))
    return "; ".join(parts)


# --------------------------------------------------------------------------
# part 2 + 3: resync and incremental wiring, in-process
# --------------------------------------------------------------------------

def make_port(i: int, net_id: str) -> dict[str, Any]:
    pid = str(uuid.uuid4())
    mac = f"fa:16:3e:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{(i & 255) or 1}"
    return {"id": pid, "network_id": net_id, "mac_address": mac,
            "fixed_ips": [{"ip_address": ip, "subnet_id": "sub-" + net_id}],
            "binding:host_id": HOST, "binding:vif_type": "ovs", "admin_state_up": True,
            "port_security_enabled": True, "device_owner": "compute:nova", "status": "DOWN"}


def vif_op(port: Mapping[str, Any]) -> sysovs.AddPort:
    return sysovs.AddPort("br-int", "tap" + port["id"][:11], type="internal", external_ids={
        "iface-id": port["id"], "attached-mac": port["mac_address"], "iface-status": "active"})


def make_state(rev: int, ports: Mapping[str, Any], nets: Mapping[str, Any]) -> State:
    return State(rev, {"port": dict(ports), "network": dict(nets), "agent": {}},
                 frozenset({"port", "network", "agent"}))


def flows_per_bridge(drv: OvsDriver) -> str:
    return ", ".join(f"{b} {len(drv.of.dump(b))}" for b in drv._managed_bridges())


def resync_bench(n_ports: int, n_nets: int, n_incr: int, budget: float, profile: Path | None) -> None:
    print(f"\n## OVS agent resync, {n_ports} bound ports on {n_nets} VXLAN networks (in-process)\n")
    timers = Timers()
    ns = "l2b-" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-l2b-"))
    po = sysovs.PrivateOvs(tmp / "ovs", ns, runner=timed_runner(timers))
    deadline = time.monotonic() + budget
    try:
        netns_mod.ensure_netns(ns)
        ovs = po.start()
        cfg = AgentConfig(host=HOST, bridge_mappings={"physnet": "br-phys"}, local_ip="127.0.0.1",
                          tunnel_types=("vxlan",), datapath_type="netdev")
        nets = {}
        for i in range(n_nets):
            nid = str(uuid.uuid4())
            nets[nid] = {"id": nid, "provider:network_type": "vxlan", "provider:physical_network": None,
                         "provider:segmentation_id": 1000 + i, "mtu": 1450}
        net_ids = list(nets)
        ports: dict[str, Any] = {}
        for i in range(n_ports):
            p = make_port(i + 1, net_ids[i % n_nets])
            ports[p["id"]] = p
        t0 = time.perf_counter()
        ovs.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
        plist = list(ports.values())
        for s in range(0, n_ports, 250):
            ovs.transact([vif_op(p) for p in plist[s:s + 250]])
        print(f"setup: {n_ports} VIFs added in {ms(time.perf_counter() - t0)} "
              f"({(n_ports + 249) // 250} ovs-vsctl transactions)")
        state = make_state(1, ports, nets)

        def measure(label: str, fn: Callable[[], dict[str, str]], target: str = "") -> float:
            timers.reset()
            prof = None
            if profile is not None:
                import cProfile
                prof = cProfile.Profile()
                prof.enable()
            t0 = time.perf_counter()
            with instrument_planner(timers):
                statuses = fn()
            dt = time.perf_counter() - t0
            if prof is not None:
                prof.disable()
                prof.dump_stats(str(profile.with_name(f"{profile.stem}-{label.split()[0]}.prof")))
            t, n, extra = timers.snapshot()
            active = sum(1 for v in statuses.values() if v == "ACTIVE")
            print(f"* {label}: **{ms(dt)}**{target}; {active}/{len(statuses)} ports ACTIVE")
            print(f"  - {breakdown(dt, t, n, extra)}")
            return dt

        cold = OvsDriver(cfg, ovs)
        measure("cold sync (fresh driver, nothing wired)", lambda: cold.reconcile_sync(state, True),
                " (target <= 10 s)")
        print(f"  - flows per bridge after the cold sync: {flows_per_bridge(cold)}")
        warm = OvsDriver(cfg, ovs)
        measure("warm sync (restarted agent: new driver, new cookie, everything wired)",
                lambda: warm.reconcile_sync(state, True), " (should be near no-op)")
        same = OvsDriver(cfg, ovs, cookie=warm.cookie)
        measure("warm sync with the previous cookie (lower bound of a restart)",
                lambda: same.reconcile_sync(state, True))
        measure("no-op reconcile (feed moved, nothing changed for this host)",
                lambda: same.reconcile_sync(make_state(2, ports, nets), True))
        measure("idle tick (feed unchanged: canary check only)",
                lambda: same.reconcile_sync(make_state(2, ports, nets), False))

        # part 3: one more port at a time.
        drv = same
        lat: list[float] = []
        agg = Timers()
        rev = 3
        for k in range(n_incr):
            if time.monotonic() > deadline:
                print(f"  (stopped after {k} incremental ports: time budget)")
                break
            p = make_port(n_ports + k + 1, net_ids[k % n_nets])
            ports[p["id"]] = p
            ovs.transact([vif_op(p)])   # the VIF is plugged (Nova / compute agent) ...
            st = make_state(rev, ports, nets)
            rev += 1
            timers.reset()
            t0 = time.perf_counter()
            with instrument_planner(timers):
                statuses = drv.reconcile_sync(st, True)   # ... and the agent wires it
            lat.append(time.perf_counter() - t0)
            if statuses.get(p["id"]) != "ACTIVE":
                print(f"  (port {k} not ACTIVE after its reconcile: {statuses.get(p['id'])})")
            t, n, extra = timers.snapshot()
            for kind, v in t.items():
                agg.t[kind] += v
                agg.n[kind] += n[kind]
            for kind, v in extra.items():
                agg.extra[kind] += v
        if lat:
            print(f"\n## Incremental wiring of one more port at {n_ports} ports ({len(lat)} samples)\n")
            print(f"* reconcile after one port + VIF added: p50 **{ms(pct(lat, 50))}**, "
                  f"p99 {ms(pct(lat, 99))} (target p50 <= 100 ms)")
            print(f"  - per port: {breakdown(sum(lat), agg.t, agg.n, agg.extra, per=len(lat))}")
    finally:
        po.destroy()
        netns_mod.remove_netns(ns)
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# part 1: through the API (`neutrino up`)
# --------------------------------------------------------------------------

def free_offset() -> int:
    for _ in range(100):
        off = random.randrange(20000, 40000)
        ok = True
        for port in (5000 + off, 9696 + off, 8774 + off, 9292 + off):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return off
    raise RuntimeError("no free port offset")


def read_openrc(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = v.strip().strip("'\"")
    return env


def get_token(env: Mapping[str, str]) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": env["OS_USERNAME"], "domain": {"name": "Default"}, "password": env["OS_PASSWORD"]}}},
        "scope": {"project": {"name": env["OS_PROJECT_NAME"], "domain": {"name": "Default"}}}}}
    r = httpx.post(f"{env['OS_AUTH_URL'].rstrip('/')}/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


class Feed:
    """Follows /neutrino/v1/changes; ``wait_port(id, status)`` returns when a change shows it."""

    def __init__(self, client: httpx.Client) -> None:
        self.c = client
        self.rev = int(client.get("/neutrino/v1/snapshot", params={"resources": "agent"}).json()["revision"])
        self.seen: dict[str, str] = {}

    def wait_port(self, port_id: str, status: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.seen.get(port_id) != status:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r = self.c.get("/neutrino/v1/changes", params={"since": self.rev, "timeout": min(left, 10)},
                           timeout=min(left, 10) + 10)
            body = r.json()
            for ch in body["changes"]:
                if ch["resource"] == "port" and ch.get("body"):
                    self.seen[ch["id"]] = ch["body"].get("status", "")
            self.rev = body["revision"]
        return True


def api_bench(n_ports: int, n_servers: int, budget: float, keep: bool) -> None:
    print("\n## Through the API (`neutrino up`: server, private OVS, ovs + compute agents)\n")
    state = Path(tempfile.mkdtemp(prefix="neutrino-l2b-api-"))
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(state))
    off = free_offset()
    t0 = time.perf_counter()
    subprocess.run([*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(off)],
                   check=True, env=env, stdout=subprocess.DEVNULL, timeout=120)
    print(f"`neutrino up` (with agents alive): {ms(time.perf_counter() - t0)}")
    deadline = time.monotonic() + budget
    try:
        from neutrino.cli.main import load_config
        cfg = load_config(state / "neutrino.conf", state, off)
        ovs = ovs_agent.host_ovs(cfg)
        admin = read_openrc(state / "admin-openrc")
        tok = get_token(admin)
        net_url = f"http://127.0.0.1:{9696 + off}"
        c = httpx.Client(base_url=net_url, headers={"X-Auth-Token": tok}, timeout=30)
        agents = c.get("/v2.0/agents").json()["agents"]
        host = next(a["host"] for a in agents if a["agent_type"] == "Open vSwitch agent")
        net = c.post("/v2.0/networks", json={"network": {"name": "l2b-net"}}).json()["network"]
        c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                 "cidr": "10.77.0.0/16"}}).raise_for_status()
        feed = Feed(c)

        # ---- ports: create + bind, plug, ACTIVE ----
        create, plug, active, missed = [], [], [], 0
        port_timeout = 45.0
        for i in range(n_ports):
            if time.monotonic() + port_timeout > deadline:
                print(f"(stopped after {i} ports: time budget)")
                break
            t0 = time.perf_counter()
            r = c.post("/v2.0/ports", json={"port": {"network_id": net["id"], "binding:host_id": host,
                                                     "device_owner": "compute:l2bench",
                                                     "device_id": f"l2b-{i}"}})
            r.raise_for_status()
            port = r.json()["port"]
            t1 = time.perf_counter()
            ovs.transact([sysovs.AddPort(cfg.ovs.integration_bridge, "tap" + port["id"][:11],
                                         type="internal", external_ids={
                                             "iface-id": port["id"], "attached-mac": port["mac_address"],
                                             "iface-status": "active"})])
            t2 = time.perf_counter()
            ok = feed.wait_port(port["id"], "ACTIVE", port_timeout)
            t3 = time.perf_counter()
            create.append(t1 - t0)
            plug.append(t2 - t1)
            if ok:
                active.append(t3 - t0)
            else:
                missed += 1
        print(f"\n### Port create + bind -> ACTIVE ({len(create)} ports, one at a time)\n")
        print(f"* POST /v2.0/ports (binding:host_id set): p50 {ms(pct(create, 50))}, p99 {ms(pct(create, 99))}")
        print(f"* VIF plug (ovs-vsctl add-port, waits for vswitchd): p50 {ms(pct(plug, 50))}")
        print(f"* create -> ACTIVE on the feed: p50 **{ms(pct(active, 50))}**, p99 **{ms(pct(active, 99))}**, "
              f"max {ms(max(active) if active else float('nan'))} (target p50 <= 1 s, p99 <= 3 s)"
              + (f"; {missed} not ACTIVE within {port_timeout:g} s" if missed else ""))

        # ---- servers: create -> ACTIVE -> first ping from a neighbour ----
        if n_servers and time.monotonic() < deadline:
            server_bench(state, off, admin, tok, n_servers, deadline)
    finally:
        subprocess.run([*NEUTRINO, "down", "--state-dir", str(state), "--purge"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"(state kept in {state})")


def server_bench(state: Path, off: int, admin: Mapping[str, str], tok: str, n: int, deadline: float) -> None:
    h = {"X-Auth-Token": tok}
    nova = httpx.Client(base_url=f"http://127.0.0.1:{8774 + off}/v2.1", headers=h, timeout=30)
    neutron = httpx.Client(base_url=f"http://127.0.0.1:{9696 + off}", headers=h, timeout=30)
    images = httpx.get(f"http://127.0.0.1:{9292 + off}/v2/images", headers=h, timeout=30).json()["images"]
    image = next(i["id"] for i in images if i["name"] == "cirros")
    flavor = next(f["id"] for f in nova.get("/flavors").json()["flavors"] if f["name"] == "m1.nano")
    net = neutron.post("/v2.0/networks", json={"network": {"name": "l2b-srv"}}).json()["network"]
    neutron.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                   "cidr": "10.78.0.0/24"}}).raise_for_status()

    def boot(name: str) -> str:
        r = nova.post("/servers", json={"server": {"name": name, "imageRef": image, "flavorRef": flavor,
                                                   "networks": [{"uuid": net["id"]}]}})
        r.raise_for_status()
        return r.json()["server"]["id"]

    def wait_active(sid: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = nova.get(f"/servers/{sid}").json()["server"]
            if s["status"] == "ACTIVE":
                return True
            if s["status"] == "ERROR":
                return False
            time.sleep(0.05)
        return False

    def address(sid: str) -> str:
        p = neutron.get("/v2.0/ports", params={"device_id": sid}).json()["ports"][0]
        return p["fixed_ips"][0]["ip_address"]

    def first_ping(src: str, dst: str, timeout: float) -> bool:
        # One echo every 50 ms until the first answer (or the deadline).
        r = subprocess.run(["ip", "netns", "exec", f"vm-{src}", "ping", "-n", "-q", "-c", "1", "-i", "0.05",
                            "-w", str(int(timeout)), dst], capture_output=True, timeout=timeout + 5)
        return r.returncode == 0

    t0 = time.perf_counter()
    neighbour = boot("l2b-neighbour")
    ok = wait_active(neighbour, 60)
    print(f"\n### Servers: create -> ACTIVE -> first ping from a neighbour ({n} servers, one at a time)\n")
    print(f"* neighbour boot (first server on the network): {ms(time.perf_counter() - t0)}"
          + ("" if ok else " (NOT ACTIVE)"))
    if not ok:
        return
    to_active, to_ping, failed = [], [], 0
    for i in range(n):
        if time.monotonic() + 60 > deadline:
            print(f"(stopped after {i} servers: time budget)")
            break
        t0 = time.perf_counter()
        sid = boot(f"l2b-{i}")
        if not wait_active(sid, 45):
            failed += 1
            continue
        t1 = time.perf_counter()
        if first_ping(neighbour, address(sid), 15):
            to_ping.append(time.perf_counter() - t0)
        else:
            failed += 1
        to_active.append(t1 - t0)
    print(f"* server create -> ACTIVE: p50 **{ms(pct(to_active, 50))}**, max {ms(max(to_active, default=0))}")
    print(f"* server create -> first ping answered from the neighbour: p50 **{ms(pct(to_ping, 50))}**, "
          f"max {ms(max(to_ping, default=0))}" + (f"; {failed} failed" if failed else ""))


# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("resync", "api"))
    ap.add_argument("--resync-ports", type=int, default=1000)
    ap.add_argument("--networks", type=int, default=10)
    ap.add_argument("--incremental", type=int, default=20)
    ap.add_argument("--ports", type=int, default=100, help="ports through the API")
    ap.add_argument("--servers", type=int, default=10)
    ap.add_argument("--profile", type=Path, help="write cProfile stats of each resync phase here (prefix)")
    ap.add_argument("--keep", action="store_true", help="keep the API part's state dir")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None:
        print("needs root and Open vSwitch", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.only in (None, "resync"):
        resync_bench(args.resync_ports, args.networks, args.incremental, budget=120, profile=args.profile)
    if args.only in (None, "api"):
        api_bench(args.ports, args.servers, budget=150, keep=args.keep)
    print(f"\n(total {time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
