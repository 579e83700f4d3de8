#!/usr/bin/env python3
"""L3 benchmark: L3 agent resync at scale, floating IP associate -> reachable, router -> SNAT.
Prints figures; asserts nothing.

    .venv/bin/python bench/l3_bench.py [--only resync|api] [--routers 100] [--fips 20] [--snat 4]

Needs root, Open vSwitch and iptables.  Each part is bounded in time (the
whole run stays under 5 minutes on this 2-core machine).

resync (in-process, no API): a private OVS (br-int, netdev) in a throwaway
namespace, the agent's marks in a temporary directory, and a feed ``State``
with N routers, each with a gateway on a fake external network
(172.24.0.0/16), 2 interface subnets and 2 floating IPs pointing at fake
instance ports, all scheduled to this host by ``l3_binding`` objects and
with their router ports already bound here (so the agent never needs the
API).  Then ``L3Driver.reconcile(state, True)``:

* cold: nothing exists (qrouter namespaces, qr-/qg- ports, addresses,
  routes, iptables rulesets; no GARP from a new device, which is isolated
  until an OVS agent wires it); target <= 10 s at 100 routers;
* warm: a fresh driver after a simulated agent restart, everything in
  place: must plan nothing (ops counted) and leave every rule as it was
  (``iptables-save`` of every router compared);
* no-op pass: the feed moved, nothing changed for this host (an incremental
  pass: no router to look at);
* one floating IP added to one router (the per-change cost at this scale);
* teardown: the agent loses all routers (then checked: no namespace left).

With a breakdown: the ops planned (by type), wall time in ``observe``, the
planner and each step of the executor, wall time per external command
(``ip ...``, ``ovs-vsctl``, ``iptables-save``, ``ethtool``...; summed over
threads), and the CPU of the agent, of the commands it ran and of
ovs-vswitchd (the machine has 2 CPUs: CPU / 2 is a floor for the wall time).

api (``neutrino up`` in a temporary state dir with its own lab host
namespace on physnet 172.16.0.0/24, 172.16.0.1 = the lab host; the real
agents):

* floating IP associate -> reachable: one instance behind a router; ~20
  times: create a floating IP, associate it (PUT port_id) and time from the
  PUT until the lab host's ping answers (one echo every 50 ms); the /32
  appearing on the router's qg- device is stamped too (``ip monitor``);
  then disassociate and delete it.  Target p50 <= 500 ms.
* router create + gateway + interface -> SNAT: instances booted first on
  their own networks; then per sample: POST router (with gateway), PUT
  add_router_interface, and time until the instance's ping to 172.16.0.1
  (the lab host) answers (one echo every 50 ms).

TLS: on (the default ``neutrino up``: the agents follow the feed over mutual TLS, as users
run them); the bench's own API calls trust STATE/pki/ca.pem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import Timers, api_base, children_cpu, command_kind, free_offset, ms, pct, read_openrc, verify  # noqa: E402 - bench/ is on sys.path

from neutrino import config as nconfig  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents import parallel as parallel_mod  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.l3 import agent as l3_agent  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.l3.agent import L3Driver  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.l3.garp import GARP_WORKERS  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.l3.model import L3Config, namespace_name  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.feed.state import State  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import netns as netns_mod  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import ovsdb as sysovs  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system.host import SystemHost  # noqa: E402 - imported after sys.path names the bench folder

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]
HOST = "l3-bench-host"
FEED_TYPES = frozenset({"router", "port", "subnet", "network", "floatingip", "l3_binding"})


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


@contextlib.contextmanager
def instrumented(drv: L3Driver, ops: Timers, cmds: Timers, steps: Timers) -> Iterator[None]:
    """Count, while active, the ops the planner returns (by type, in ``ops``); time every
    external command (``subprocess.run`` by tool and verb; the background GARP threads'
    marked), ``observe``, the planner and the executor's steps (``apply_all``: teardowns,
    namespaces, devices, then the routers in parallel)."""
    real_run = subprocess.run
    real_plan, real_observe = l3_agent.plan, drv.observe
    real_steps = {
        name: getattr(drv, name) for name in ("apply_all", "_teardown_all", "_create_namespaces", "_create_devices")
    }
    labels = {
        "apply_all": "apply (all)",
        "_teardown_all": "apply: teardowns",
        "_create_namespaces": "apply: namespaces + sysctls",
        "_create_devices": "apply: new devices",
    }

    def run(argv: Any, *a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_run(argv, *a, **kw)
        finally:
            kind = command_kind(argv)
            if threading.current_thread().name.startswith("garp"):
                kind += " (background)"
            cmds.add(kind, time.perf_counter() - t0)

    def timed(fn: Callable[..., Any], label: str, into: Timers) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                into.add(label if label else type(a[0]).__name__, time.perf_counter() - t0)

        return wrapper

    def plan(*a: Any, **kw: Any) -> Any:
        planned = real_plan(*a, **kw)
        for op in planned:
            ops.add(type(op).__name__, 0.0)
        return planned

    subprocess.run = run
    l3_agent.plan = timed(plan, "plan (pure)", steps)
    drv.observe = timed(real_observe, "observe", steps)
    for name, fn in real_steps.items():
        setattr(drv, name, timed(fn, labels[name], steps))
    try:
        yield
    finally:
        subprocess.run = real_run
        l3_agent.plan = real_plan
        del drv.observe
        for name in real_steps:
            delattr(drv, name)


# --------------------------------------------------------------------------
# part 1: full resync, in-process
# --------------------------------------------------------------------------


def _mac(seq: int) -> str:
    return f"fa:16:3e:{(seq >> 16) & 255:02x}:{(seq >> 8) & 255:02x}:{seq & 255:02x}"


def build_state(n_routers: int, rev: int = 1) -> tuple[State, list[str]]:
    """N routers: gateway on one external network, 2 interface subnets, 2 floating IPs each."""
    nets: dict[str, Any] = {}
    subnets: dict[str, Any] = {}
    ports: dict[str, Any] = {}
    routers: dict[str, Any] = {}
    fips: dict[str, Any] = {}
    bindings: dict[str, Any] = {}
    seq = 0

    def port(nid: str, sid: str, ip: str, owner: str, device_id: str) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        pid = str(uuid.uuid4())
        ports[pid] = {
            "id": pid,
            "network_id": nid,
            "project_id": "bench",
            "mac_address": _mac(seq),
            "fixed_ips": [{"subnet_id": sid, "ip_address": ip}],
            "device_owner": owner,
            "device_id": device_id,
            "admin_state_up": True,
            "binding:host_id": HOST,
            "status": "ACTIVE",
        }
        return ports[pid]

    ext, ext_sub = str(uuid.uuid4()), str(uuid.uuid4())
    nets[ext] = {
        "id": ext,
        "name": "l3b-ext",
        "mtu": 1500,
        "admin_state_up": True,
        "router:external": True,
        "subnets": [ext_sub],
        "provider:network_type": "flat",
        "provider:physical_network": "physnet",
    }
    subnets[ext_sub] = {
        "id": ext_sub,
        "network_id": ext,
        "ip_version": 4,
        "cidr": "172.24.0.0/16",
        "gateway_ip": "172.24.0.1",
    }
    ext_seq = 10

    def ext_ip() -> str:
        nonlocal ext_seq
        ext_seq += 1
        return f"172.24.{ext_seq >> 8}.{ext_seq & 255}"

    for r in range(n_routers):
        rid = str(uuid.uuid4())
        gw = port(ext, ext_sub, ext_ip(), "network:router_gateway", rid)
        routers[rid] = {
            "id": rid,
            "name": f"l3b-{r}",
            "admin_state_up": True,
            "status": "ACTIVE",
            "routes": [],
            "project_id": "bench",
            "external_gateway_info": {"network_id": ext, "enable_snat": True, "external_fixed_ips": gw["fixed_ips"]},
        }
        bindings[rid] = {"id": rid, "router_id": rid, "agent_ids": ["bench-agent"], "hosts": [HOST]}
        for k in range(2):
            nid, sid = str(uuid.uuid4()), str(uuid.uuid4())
            base = f"10.{100 + k}.{r}" if r < 256 else f"10.{110 + 2 * (r // 256) + k}.{r % 256}"
            nets[nid] = {
                "id": nid,
                "name": f"l3b-{r}-{k}",
                "mtu": 1450,
                "admin_state_up": True,
                "subnets": [sid],
                "provider:network_type": "vxlan",
            }
            subnets[sid] = {
                "id": sid,
                "network_id": nid,
                "ip_version": 4,
                "cidr": f"{base}.0/24",
                "gateway_ip": f"{base}.1",
            }
            port(nid, sid, f"{base}.1", "network:router_interface", rid)
            vm = port(nid, sid, f"{base}.10", "compute:nova", str(uuid.uuid4()))
            fid = str(uuid.uuid4())
            fips[fid] = {
                "id": fid,
                "floating_ip_address": ext_ip(),
                "floating_network_id": ext,
                "router_id": rid,
                "port_id": vm["id"],
                "fixed_ip_address": f"{base}.10",
                "status": "DOWN",
                "port_forwardings": [],
                "project_id": "bench",
            }
    state = State(
        rev,
        {
            "network": nets,
            "subnet": subnets,
            "port": ports,
            "router": routers,
            "floatingip": fips,
            "l3_binding": bindings,
        },
        FEED_TYPES,
    )
    return state, list(routers)


def with_rev(state: State, rev: int) -> State:
    return State(rev, state.objects, state.types)


def add_fip(state: State, router_id: str) -> State:
    """One more floating IP on ``router_id`` (its instance port on the router's first subnet)."""
    ports = dict(state.of("port"))
    intf = next(
        p for p in ports.values() if p["device_id"] == router_id and p["device_owner"] == "network:router_interface"
    )
    sid = intf["fixed_ips"][0]["subnet_id"]
    base = intf["fixed_ips"][0]["ip_address"].rsplit(".", 1)[0]
    host = random.randrange(100, 250)
    pid = str(uuid.uuid4())
    ports[pid] = {
        "id": pid,
        "network_id": intf["network_id"],
        "mac_address": _mac(random.randrange(1 << 20)),
        "fixed_ips": [{"subnet_id": sid, "ip_address": f"{base}.{host}"}],
        "device_owner": "compute:nova",
        "device_id": str(uuid.uuid4()),
        "admin_state_up": True,
    }
    used = {f["floating_ip_address"] for f in state.of("floatingip").values()}
    ip = next(f"172.24.200.{i}" for i in range(2, 250) if f"172.24.200.{i}" not in used)
    fid = str(uuid.uuid4())
    fips = dict(state.of("floatingip"))
    fips[fid] = {
        "id": fid,
        "floating_ip_address": ip,
        "router_id": router_id,
        "port_id": pid,
        "fixed_ip_address": f"{base}.{host}",
        "status": "DOWN",
        "port_forwardings": [],
    }
    return State(state.revision + 1, {**state.objects, "port": ports, "floatingip": fips}, state.types)


def rules_of(router_ids: Sequence[str]) -> dict[str, list[str]]:
    """Every rule of each router's namespace, as sorted "<table> <rule>" lines."""
    out: dict[str, list[str]] = {}
    for rid in router_ids:
        ns = namespace_name(rid)
        if not netns_mod.netns_exists(ns):
            out[rid] = []
            continue
        text = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True).stdout
        table, rows = "", []
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A"):
                rows.append(f"{table} {line}")
        out[rid] = sorted(rows)
    return out


def resync_bench(n_routers: int, budget: float) -> None:
    print(
        f"\n## L3 agent resync, {n_routers} routers x (gateway + 2 interfaces + 2 floating IPs) (in-process, no API)\n"
    )
    ns = "l3b-" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-l3b-"))
    po = sysovs.PrivateOvs(tmp / "ovs", ns)
    router_ids: list[str] = []
    cfg = L3Config(host=HOST)
    marks = tmp / "l3"
    deadline = time.monotonic() + budget
    try:
        netns_mod.ensure_netns(ns)
        ovs = po.start()
        ovs.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
        state, router_ids = build_state(n_routers)
        host = SystemHost(ovs)
        iface = l3_agent.interface_driver(host, "br-int")
        vsw_pid = None
        with contextlib.suppress(Exception):
            vsw_pid = int((tmp / "ovs" / "ovs-vswitchd.pid").read_text().split()[0])

        def vsw_cpu() -> float:
            if vsw_pid is None:
                return 0.0
            try:
                raw = Path(f"/proc/{vsw_pid}/stat").read_text()
            except OSError:
                return 0.0
            f = raw[raw.rfind(")") + 2 :].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

        def measure(label: str, drv: L3Driver, st: State, target: str = "") -> tuple[float, Timers]:
            ops, cmds, steps = Timers(), Timers(), Timers()
            cpu0, kids0, vsw0 = time.process_time(), children_cpu(), vsw_cpu()
            t0 = time.perf_counter()
            with instrumented(drv, ops, cmds, steps):
                asyncio.run(drv.reconcile(st, True))
            dt = time.perf_counter() - t0
            cpu, kids, vswc = time.process_time() - cpu0, children_cpu() - kids0, vsw_cpu() - vsw0
            ncpu = os.cpu_count() or 1
            print(
                f"* {label}: **{ms(dt)}**{target}; CPU: agent {ms(cpu)}, commands it ran {ms(kids)}, "
                f"ovs-vswitchd {ms(vswc)}: {ms(cpu + kids + vswc)} in all, >= {ms((cpu + kids + vswc) / ncpu)} "
                f"of wall time on {ncpu} idle CPUs (load average now {os.getloadavg()[0]:.1f})"
            )
            if steps.n:
                print(f"  - steps: {steps.text()}")
            print(f"  - ops planned: {ops.total()} ({ops.counts() or 'none'})")
            if cmds.n:
                print(f"  - external commands: {cmds.total()}, {ms(sum(cmds.t.values()))}: {cmds.text(limit=14)}")
            workers = parallel_mod.WORKERS
            if cmds.n and workers > 1:
                print(
                    f"  - (command times are summed over the threads: up to {workers} routers at a time, "
                    f"{GARP_WORKERS} arpings)"
                )
            garps = getattr(drv, "garps", None)
            if garps is not None and garps.pending:
                n, t1 = garps.pending, time.perf_counter()
                done = garps.wait(60)
                print(
                    f"  - gratuitous ARPs still queued or being sent (background) when the pass returned: {n}; "
                    + (f"all sent {ms(time.perf_counter() - t1)} later" if done else "not all sent after 60 s")
                )
            return dt, ops

        cold = L3Driver(cfg, iface, marks, host=host)
        measure("cold sync (fresh driver, nothing exists)", cold, state, " (target <= 10 s)")
        made = sum(1 for r in router_ids if netns_mod.netns_exists(namespace_name(r)))
        print(f"  - router namespaces: {made}/{n_routers}; counts reported: {cold.counts}")
        before = rules_of(router_ids)
        n_rules = sum(len(v) for v in before.values())
        print(f"  - iptables rules: {n_rules} in all, {n_rules / max(1, n_routers):.0f} per router")

        if time.monotonic() < deadline:
            warm = L3Driver(cfg, iface, marks, host=host)
            _, ops = measure(
                "warm sync (agent restarted: fresh driver, everything in place)", warm, state, " (must apply nothing)"
            )
            after = rules_of(router_ids)
            diff = sum(1 for r in router_ids if before[r] != after[r])
            print(
                f"  - routers whose rules changed: {diff} of {n_routers}"
                + (" (OK: identical)" if diff == 0 else " (rules rewritten!)")
                + ("" if ops.total() == 0 else f"; ops planned by the warm sync: {ops.total()} (should be 0)")
            )
            measure("no-op pass (feed moved, nothing changed for this host)", warm, with_rev(state, 2))
        else:
            warm = cold
            print("  (warm / no-op passes skipped: time budget)")

        st = with_rev(state, 3)
        lat = []
        last = ""
        for k in range(5):
            if time.monotonic() > deadline:
                break
            st = add_fip(st, router_ids[k % len(router_ids)])
            ops, cmds, steps = Timers(), Timers(), Timers()
            t0 = time.perf_counter()
            with instrumented(warm, ops, cmds, steps):
                asyncio.run(warm.reconcile(st, True))
            lat.append(time.perf_counter() - t0)
            last = f"steps {steps.text()}; ops {ops.counts()}; commands {cmds.total()}: {cmds.text(limit=6)}"
        if lat:
            print(
                f"* one floating IP added to one router (an incremental pass: that router observed, planned, "
                f"applied): "
                f"p50 **{ms(pct(lat, 50))}**, max {ms(max(lat))} ({len(lat)} samples)"
            )
            print(f"  - last one: {last}")

        empty = State(st.revision + 1, {**st.objects, "l3_binding": {}}, st.types)
        measure("teardown (every router unscheduled from this host)", warm, empty)
        left = [r for r in router_ids if netns_mod.netns_exists(namespace_name(r))]
        ports_left = [p for p in ovs.vsctl("list-ports", "br-int").split() if p.startswith(("qr-", "qg-"))]
        print(
            f"  - left after teardown: {len(left)} qrouter namespaces, {len(ports_left)} qr-/qg- OVS ports, "
            f"{len(list(marks.iterdir())) if marks.is_dir() else 0} marks"
            + (" (OK: clean)" if not left and not ports_left else "")
        )
    finally:
        # Safety net: whatever the bench created goes.
        for rid in router_ids:
            with contextlib.suppress(Exception):
                netns_mod.remove_netns(namespace_name(rid))
        po.destroy()
        netns_mod.remove_netns(ns)
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# part 2 + 3: through the API (`neutrino up` with a lab host)
# --------------------------------------------------------------------------


def get_token(env: Mapping[str, str]) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": env["OS_USERNAME"], "domain": {"name": "Default"}, "password": env["OS_PASSWORD"]}
                },
            },
            "scope": {"project": {"name": env["OS_PROJECT_NAME"], "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(f"{env['OS_AUTH_URL'].rstrip('/')}/auth/tokens", json=body, timeout=30, verify=verify(env))
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def first_ping(argv_prefix: Sequence[str], dst: str, timeout: float) -> tuple[bool, float]:
    """One echo every 50 ms until the first answer or ``timeout``; (answered, when it ended)."""
    r = subprocess.run(
        [*argv_prefix, "ping", "-n", "-q", "-c", "1", "-i", "0.05", "-w", str(max(1, int(timeout))), dst],
        capture_output=True,
        text=True,
        timeout=timeout + 10,
    )
    return r.returncode == 0, time.perf_counter()


class AddrWatch:
    """``ip -o monitor address`` in a namespace: when each address first appeared."""

    def __init__(self, ns: str) -> None:
        self.seen: dict[str, float] = {}
        self.proc = subprocess.Popen(
            ["ip", "-n", ns, "-o", "monitor", "address"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.perf_counter()
            if line.startswith("Deleted"):
                continue
            m = re.search(r"inet6? (\S+)", line)
            if m:
                self.seen.setdefault(m.group(1).split("/")[0], now)

    def forget(self, ip: str) -> None:
        self.seen.pop(ip, None)

    def close(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


class Api:
    def __init__(self, openrc: Mapping[str, str], off: int, token: str) -> None:
        """The APIs of the cloud ``openrc`` names (its scheme and CA), at ``--port-offset off``."""
        h = {"X-Auth-Token": token}
        self.ca = verify(openrc)
        self.net = httpx.Client(base_url=f"{api_base(openrc, 9696 + off)}/v2.0", headers=h, timeout=30, verify=self.ca)
        self.nova = httpx.Client(base_url=f"{api_base(openrc, 8774 + off)}/v2.1", headers=h, timeout=30, verify=self.ca)
        self.glance = f"{api_base(openrc, 9292 + off)}/v2"
        self.h = h

    def call(self, method: str, path: str, body: Any = None, client: httpx.Client | None = None) -> Any:
        r = (client or self.net).request(method, path, json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def boot(self, name: str, net_id: str) -> str:
        images = httpx.get(f"{self.glance}/images", headers=self.h, timeout=30, verify=self.ca).json()["images"]
        image = next(i["id"] for i in images if i["name"] == "cirros")
        flavor = next(
            f["id"] for f in self.call("GET", "/flavors", client=self.nova)["flavors"] if f["name"] == "m1.nano"
        )
        return self.call(
            "POST",
            "/servers",
            {"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": [{"uuid": net_id}]}},
            client=self.nova,
        )["server"]["id"]

    def wait_active(self, sid: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < end:
            status = self.call("GET", f"/servers/{sid}", client=self.nova)["server"]["status"]
            if status in ("ACTIVE", "ERROR"):
                return status
            time.sleep(0.2)
        return status

    def network(self, name: str, cidr: str) -> tuple[str, str]:
        net = self.call("POST", "/networks", {"network": {"name": name}})["network"]
        sub = self.call("POST", "/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": cidr}})[
            "subnet"
        ]
        return net["id"], sub["id"]


def api_bench(n_fips: int, n_snat: int, budget: float, keep: bool) -> None:
    print("\n## Through the API (`neutrino up` with a lab host namespace on physnet; real agents)\n")
    state = Path(tempfile.mkdtemp(prefix="neutrino-l3b-api-"))
    lab = f"lab-l3b-{uuid.uuid4().hex[:6]}"
    (state / "neutrino.conf").write_text(nconfig.render_ini({**nconfig.ALL_IN_ONE, ("lab", "host_netns"): lab}))
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(state))
    off = free_offset()
    deadline = time.monotonic() + budget
    routers: list[str] = []
    t0 = time.perf_counter()
    try:
        subprocess.run(
            [*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(off)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        print(
            f"`neutrino up` (until the agents report alive): {ms(time.perf_counter() - t0)}; "
            f"lab host namespace {lab} (172.16.0.1)"
        )
        admin = read_openrc(state / "admin-openrc")
        api = Api(admin, off, get_token(admin))
        ext = api.call(
            "POST",
            "/networks",
            {
                "network": {
                    "name": "l3b-ext",
                    "shared": True,
                    "router:external": True,
                    "provider:network_type": "flat",
                    "provider:physical_network": "physnet",
                }
            },
        )["network"]
        api.call(
            "POST",
            "/subnets",
            {
                "subnet": {
                    "network_id": ext["id"],
                    "ip_version": 4,
                    "cidr": "172.16.0.0/24",
                    "gateway_ip": "172.16.0.1",
                    "allocation_pools": [{"start": "172.16.0.2", "end": "172.16.0.250"}],
                }
            },
        )
        net_id, sub_id = api.network("l3b-net", "10.61.0.0/24")
        t1 = time.perf_counter()
        router = api.call(
            "POST", "/routers", {"router": {"name": "l3b-router", "external_gateway_info": {"network_id": ext["id"]}}}
        )["router"]
        routers.append(router["id"])
        api.call("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub_id})
        # the SNAT samples' instances boot while the first router comes up
        snat_nets = []
        for i in range(n_snat):
            nid, sid = api.network(f"l3b-snat-{i}", f"10.{70 + i}.0.0/24")
            snat_nets.append((nid, sid, api.boot(f"l3b-snat-{i}", nid)))
        vm = api.boot("l3b-vm", net_id)
        st = api.wait_active(vm, 60)
        port = api.call("GET", f"/ports?device_id={vm}")["ports"][0]
        # The lab host is outside the instance's security group (which admits only its members):
        # let its pings in.
        for sg in port.get("security_groups") or []:
            api.call(
                "POST",
                "/security-group-rules",
                {
                    "security_group_rule": {
                        "security_group_id": sg,
                        "direction": "ingress",
                        "ethertype": "IPv4",
                        "protocol": "icmp",
                    }
                },
            )
        print(
            f"setup: external network + tenant network + router + {1 + n_snat} instances booted in "
            f"{ms(time.perf_counter() - t1)} (instance {st})"
        )
        if st != "ACTIVE":
            return
        ok, _ = first_ping(["ip", "netns", "exec", f"vm-{vm}"], "172.16.0.1", 30)
        print(f"  - the instance reaches the lab host through its router (SNAT): {ok}")
        fip_bench(api, ext["id"], router["id"], port, lab, n_fips, deadline)
        if n_snat and time.monotonic() < deadline:
            snat_bench(api, ext["id"], snat_nets, deadline, routers)
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
        cleanup_routers(state, routers)
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"(state kept in {state})")


def cleanup_routers(state: Path, router_ids: Sequence[str]) -> None:
    """Remove the qrouter namespaces `down --purge` left (and stop what this state dir's
    agents left running in them: pids whose command line names the state dir)."""
    left = [r for r in router_ids if netns_mod.netns_exists(namespace_name(r))]
    stopped = 0
    for rid in left:
        ns = namespace_name(rid)
        with contextlib.suppress(Exception):
            for pid in netns_mod.netns_pids(ns):
                with contextlib.suppress(OSError):
                    if str(state).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, 15)
                        stopped += 1
        netns_mod.remove_netns(ns)
    if left:
        print(
            f"(`neutrino down --purge` left {len(left)} of the {len(router_ids)} qrouter namespaces"
            + (f" and {stopped} processes in them" if stopped else "")
            + ": removed by the bench)"
        )


def fip_bench(
    api: Api, ext_id: str, router_id: str, port: Mapping[str, Any], lab: str, n: int, deadline: float
) -> None:
    print(f"\n### Floating IP associate -> reachable from the lab host ({n} associations)\n")
    watch = AddrWatch(namespace_name(router_id))
    lab_ns = ["ip", "netns", "exec", lab]
    reach, put, on_qg, gone = [], [], [], []
    addresses: set[str] = set()
    missed = 0
    try:
        for i in range(n):
            if time.monotonic() > deadline:
                print(f"(stopped after {i} associations: time budget)")
                break
            fip = api.call("POST", "/floatingips", {"floatingip": {"floating_network_id": ext_id}})["floatingip"]
            ip = fip["floating_ip_address"]
            addresses.add(ip)
            watch.forget(ip)
            t0 = time.perf_counter()
            api.call("PUT", f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
            t1 = time.perf_counter()
            ok, t2 = first_ping(lab_ns, ip, 15)
            put.append(t1 - t0)
            if ok:
                reach.append(t2 - t0)
            else:
                missed += 1
            if ip in watch.seen:
                on_qg.append(watch.seen[ip] - t0)
            # disassociate, time until it stops answering, then delete
            t3 = time.perf_counter()
            api.call("PUT", f"/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
            end = time.monotonic() + 10
            while time.monotonic() < end:
                if (
                    subprocess.run(
                        [*lab_ns, "ping", "-n", "-q", "-c", "1", "-W", "0.2", ip], capture_output=True
                    ).returncode
                    != 0
                ):
                    gone.append(time.perf_counter() - t3)
                    break
            api.call("DELETE", f"/floatingips/{fip['id']}")
    finally:
        watch.close()
    print(
        f"* PUT port_id -> first echo answered from the lab host: p50 **{ms(pct(reach, 50))}**, "
        f"p90 {ms(pct(reach, 90))}, p99 **{ms(pct(reach, 99))}**, max {ms(max(reach, default=float('nan')))} "
        f"(target p50 <= 500 ms); {len(addresses)} distinct addresses"
        + (f"; {missed} not reachable within 15 s" if missed else "")
    )
    print(
        f"  - PUT answered: p50 {ms(pct(put, 50))}; the /32 on the router's qg- device: p50 "
        f"{ms(pct(on_qg, 50))}, p99 {ms(pct(on_qg, 99))} (agent: feed -> observe -> plan -> addresses)"
    )
    print(f"  - disassociate -> no longer answering: p50 {ms(pct(gone, 50))} (probe: one echo, 200 ms wait)")


def _ping_into(result: list[Any], prefix: list[str], dst: str, within: float) -> None:
    """Append what :func:`first_ping` gives (for a thread to run)."""
    result.append(first_ping(prefix, dst, within))


def snat_bench(
    api: Api, ext_id: str, nets: Sequence[tuple[str, str, str]], deadline: float, routers: list[str]
) -> None:
    print("\n### Router create + gateway + interface -> the instance reaches the lab host (SNAT)\n")
    rows = []
    for i, (_nid, sid, vm) in enumerate(nets):
        if time.monotonic() + 40 > deadline:
            print(f"(stopped after {i} samples: time budget)")
            break
        if api.wait_active(vm, 30) != "ACTIVE":
            print(f"(instance {vm} not ACTIVE: sample skipped)")
            continue
        gw_ip = api.call("GET", f"/subnets/{sid}")["subnet"]["gateway_ip"]
        result: list[Any] = []
        th = threading.Thread(target=_ping_into, args=(result, ["ip", "netns", "exec", f"vm-{vm}"], "172.16.0.1", 30))
        t0 = time.perf_counter()
        router = api.call(
            "POST", "/routers", {"router": {"name": f"l3b-snat-{i}", "external_gateway_info": {"network_id": ext_id}}}
        )["router"]
        t_post = time.perf_counter() - t0
        routers.append(router["id"])
        intf = api.call("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": sid})
        t_api = time.perf_counter() - t0
        th.start()
        # meanwhile (every 50 ms): the namespace, the interface address in it, the interface port ACTIVE
        ns = namespace_name(router["id"])
        stamps: dict[str, float] = {}
        while th.is_alive():
            now = time.perf_counter() - t0
            if "ns" not in stamps and netns_mod.netns_exists(ns):
                stamps["ns"] = now
            if "ns" in stamps and "qr" not in stamps:
                out = subprocess.run(["ip", "-n", ns, "-o", "addr", "show"], capture_output=True, text=True).stdout
                if f" {gw_ip}/" in out:
                    stamps["qr"] = time.perf_counter() - t0
            if "active" not in stamps:
                with contextlib.suppress(Exception):
                    if api.call("GET", f"/ports/{intf['port_id']}")["port"]["status"] == "ACTIVE":
                        stamps["active"] = time.perf_counter() - t0
            time.sleep(0.05)
        ok, t2 = result[0]
        rows.append({"post": t_post, "api": t_api, **stamps, "done": t2 - t0 if ok else None})
    done = [r["done"] for r in rows if r["done"] is not None]
    print(
        "* POST router (with gateway) + PUT add_router_interface -> first echo from 172.16.0.1 answered: "
        + ", ".join(ms(r["done"]) for r in rows)
        + f" (p50 **{ms(pct(done, 50))}**)"
        + (f"; {len(rows) - len(done)} never within 30 s" if len(done) < len(rows) else "")
    )

    def col(key: str) -> str:
        return ", ".join(ms(r.get(key)) for r in rows)

    print(
        f"  - from the POST: router created {col('post')}; interface added (both API calls done) {col('api')}; "
        f"qrouter namespace {col('ns')}; interface address in it {col('qr')}; interface port ACTIVE "
        f"(OVS agent wired it) {col('active')} (polled every 50 ms)"
    )


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("resync", "api"))
    ap.add_argument("--routers", type=int, default=100)
    ap.add_argument("--fips", type=int, default=20, help="floating IP associations through the API")
    ap.add_argument("--snat", type=int, default=4, help="router create -> SNAT samples")
    ap.add_argument("--keep", action="store_true", help="keep the API part's state dir")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None or shutil.which("iptables-restore") is None:
        print("needs root, Open vSwitch and iptables", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.only in (None, "resync"):
        resync_bench(args.routers, budget=100)
    if args.only in (None, "api"):
        api_bench(args.fips, args.snat, budget=160, keep=args.keep)
    print(f"\n(total {time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
