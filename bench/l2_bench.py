#!/usr/bin/env python3
"""L2 benchmark: port wiring latency and OVS agent resync.  Prints figures; asserts nothing.

    .venv/bin/python bench/l2_bench.py [--only resync|api] [--resync-ports 1000] [--ports 100]

Needs root and Open vSwitch.  Each phase has a time budget; the whole run
stays under 5 minutes (about 2.5 on a 2-core machine).

resync (in-process, no API): a private OVS in a throwaway namespace, N VIF
ports on br-int (internal ports with ``iface-id``/``attached-mac``, added in
transactions of 250), a feed ``State`` with those N ports on 10 VXLAN
networks bound to this host, then ``OvsDriver.reconcile_sync``:

* cold: a fresh driver, nothing wired (target <= 10 s at 1,000 ports);
* warm: a new driver after a simulated agent restart, everything wired
  (should be near no-op); once with a new cookie (what a restarted agent
  does: every flow is re-stamped) and once with the previous cookie (what
  a restart costs without re-stamping);
* no-op: the feed moved but nothing changed for this host (any change in the
  cloud that reaches the agent's feed costs this much);
* idle tick: feed unchanged, canary check only;
* incremental: one more port (VIF plugged, then desired) per reconcile, 20
  times (target p50 <= 100 ms): first plugged as the compute agent plugs it
  (with the network's local VLAN, ``neutrino.agents.ovs.vif_hint``), then bare
  (as os-vif plugs for Nova: the agent writes tag and other_config).

Every figure has a breakdown: wall time in ovs-vsctl (observe / transact) and
ovs-ofctl (dump-flows / bundle) subprocesses, in the planner, in parsing
their output, in the flow diff, and the rest; plus CPU seconds of this
process and of the ovs tools (on a busy machine, wall time inflates much
more than CPU time).  ``--profile PREFIX`` writes cProfile stats per phase.

api (``neutrino up`` in a temporary state dir, agents included): ports
created with ``binding:host_id`` = this host (admin) and their VIF plugged
into the private br-int right after (internal port with iface-id /
attached-mac / iface-status), timed from the POST until the change feed
shows the port ACTIVE: one at a time (p50/p99 over --ports), then --burst
ports back to back.  Then servers: a neighbour instance, then --servers
instances booted at once: create -> port ACTIVE -> server ACTIVE -> first
ping answered from the neighbour (one echo every 50 ms).

Targets (/work/shared/reference/user-pains.md goal 1): port ready p50 <= 1 s,
p99 <= 3 s at 50 concurrent boots (Nova waits up to 300 s for vif-plugged).

TLS: on (the default ``neutrino up``: the agents follow the feed and report over mutual TLS,
as users run them); the bench's own API calls trust STATE/pki/ca.pem.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import api_base, free_offset, pct, read_openrc, verify  # noqa: E402 - bench/ is on sys.path

from neutrino.agents.ovs import agent as ovs_agent  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.ovs.agent import OvsDriver  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.ovs.host_config import host_ovs  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.ovs.model import AgentConfig  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.agents.ovs.vif_hint import local_vlan_hint  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.feed.state import State  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import netns as netns_mod  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import ovsdb as sysovs  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system.exec import Completed, run  # noqa: E402 - imported after sys.path names the bench folder

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]
HOST = "l2-bench-host"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def vswitchd_cpu(rundir: Path | None) -> float:
    """CPU seconds ovs-vswitchd (of the OVS whose rundir this is) has used so far; nan if unknown."""
    if rundir is None:
        return float("nan")
    try:
        pid = int((rundir / "ovs-vswitchd.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def vswitchd_main_ms(rundir: Path) -> float:
    """Milliseconds ovs-vswitchd's main thread (which handles OVSDB changes, OpenFlow and the
    datapath translation state) has run so far, from schedstat (ns, not clock ticks)."""
    try:
        pid = int((rundir / "ovs-vswitchd.pid").read_text().split()[0])
        return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")


def vswitchd_floor(ovs: sysovs.Ovs, rundir: Path, ns: str, samples: int = 6) -> None:
    """The best any agent could do at this size: a VIF is plugged (``ovs-vsctl add-port``
    returns) and one flow bundle (a single trivial flow) is sent at once, with no planning
    at all; plus the main-thread work ovs-vswitchd still had to do for the plug alone."""

    def settle() -> float:
        """Main-thread ms until it has been (nearly) idle for 100 ms."""
        start = last = vswitchd_main_ms(rundir)
        while True:
            time.sleep(0.1)
            now = vswitchd_main_ms(rundir)
            if now - last < 3:
                return now - start
            last = now

    after_plug, best = [], []
    for i in range(samples):
        settle()
        ovs.transact([sysovs.AddPort("br-int", f"floor{i}", type="internal")])
        after_plug.append(settle())
        settle()
        ovs.transact([sysovs.AddPort("br-int", f"floorb{i}", type="internal")])
        t0 = time.perf_counter()
        run(
            ["ovs-ofctl", "-O", "OpenFlow14", "--bundle", "add-flows", ovs.mgmt("br-int"), "-"],
            netns=ns,
            env=ovs.env,
            input=f"table=99,priority={i + 1},actions=drop\n",
        )
        best.append(time.perf_counter() - t0)
    print(
        f"* floor, ovs-vswitchd alone (p50 of {samples}): a one-flow bundle sent the moment "
        f"`ovs-vsctl add-port` returns completes after **{ms(pct(best, 50))}** (no agent, no "
        f"planning); ovs-vswitchd's main thread is still busy {pct(after_plug, 50):.0f} ms with "
        f"the plug when ovs-vsctl returns.  Any change (port or flow) makes it rebuild its "
        f"translation state over every port of the bridge"
    )


class Cpu:
    """CPU seconds of this process, of the tools it ran (ovs-vsctl, ovs-ofctl) and of
    ovs-vswitchd since start; on a busy machine these move much less than wall time."""

    def __init__(self, rundir: Path | None = None) -> None:
        self.rundir = rundir
        self.own, self.tools, self.vswitchd = time.process_time(), self._children(), vswitchd_cpu(rundir)

    @staticmethod
    def _children() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def text(self) -> str:
        vs = vswitchd_cpu(self.rundir) - self.vswitchd
        return f"CPU: agent {ms(time.process_time() - self.own)}, ovs tools {ms(self._children() - self.tools)}" + (
            f", ovs-vswitchd {ms(vs)}" if vs == vs else ""
        )


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
    """Time the pure steps the executor runs: the planner, the observed-state conversion,
    parsing of ovs-vsctl / dump-flows output and the flow diff."""
    from neutrino.agents.ovs import derive

    try:
        from neutrino.system.ovsdb_monitor import OvsdbMonitor
    except ImportError:  # an older agent
        OvsdbMonitor = None
    targets = [
        (ovs_agent, "plan", "planner (pure)"),
        (ovs_agent, "observed_state", "observed_state()"),
        (ovs_agent, "flow_changes", "flow diff"),
        (derive, "desired_host", "derive (feed -> desired)"),
        (sysovs, "parse_state", "parse ovs-vsctl JSON"),
        (ovs_agent, "dump_entries", "parse dump-flows"),
        (OvsdbMonitor, "state_and_generation", "OVSDB monitor read"),
        (OvsdbMonitor, "transact", "OVSDB monitor transact"),
    ]
    # (Missing targets are skipped, so the bench also runs against older agents.)
    targets = [(mod, name, label) for mod, name, label in targets if mod is not None and hasattr(mod, name)]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in targets]

    def wrap(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                timers.add(label, time.perf_counter() - t0)

        return timed

    for mod, name, label in targets:
        setattr(mod, name, wrap(getattr(mod, name), label))
    try:
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def breakdown(
    total: float, t: Mapping[str, float], n: Mapping[str, int], extra: Mapping[str, int], per: int = 1
) -> str:
    parts = []
    accounted = 0.0
    for kind in sorted(t, key=lambda k: -t[k]):
        accounted += t[kind]
        parts.append(f"{kind} {ms(t[kind] / per)} ({n[kind] / per:g}x)")
    parts.append(f"other (Flow values, glue) {ms((total - accounted) / per)}")
    if extra:
        parts.append(", ".join(f"{k} {v / per:g}" for k, v in sorted(extra.items())))
    return "; ".join(parts)


# --------------------------------------------------------------------------
# part 2 + 3: resync and incremental wiring, in-process
# --------------------------------------------------------------------------

DEFAULT_SG = "sg-default"


def default_group_rules(sg: str = DEFAULT_SG) -> dict[str, dict[str, Any]]:
    """The rules of a project's default security group (egress anything, ingress from the group)."""
    rules = [("egress", "IPv4", None), ("egress", "IPv6", None), ("ingress", "IPv4", sg), ("ingress", "IPv6", sg)]
    return {
        f"{sg}-r{i}": {
            "id": f"{sg}-r{i}",
            "security_group_id": sg,
            "direction": d,
            "ethertype": e,
            "protocol": None,
            "port_range_min": None,
            "port_range_max": None,
            "remote_ip_prefix": None,
            "remote_group_id": g,
        }
        for i, (d, e, g) in enumerate(rules)
    }


def vxlan_networks(n: int, first_vni: int) -> dict[str, dict[str, Any]]:
    """``n`` VXLAN networks (feed bodies) with VNIs from ``first_vni``, by id."""
    nets = {}
    for i in range(n):
        nid = str(uuid.uuid4())
        nets[nid] = {
            "id": nid,
            "provider:network_type": "vxlan",
            "provider:physical_network": None,
            "provider:segmentation_id": first_vni + i,
            "mtu": 1450,
        }
    return nets


def make_port(i: int, net_id: str, groups: Sequence[str] = (DEFAULT_SG,), host: str = HOST) -> dict[str, Any]:
    pid = str(uuid.uuid4())
    mac = f"fa:16:3e:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{(i & 255) or 1}"
    return {
        "id": pid,
        "network_id": net_id,
        "mac_address": mac,
        "fixed_ips": [{"ip_address": ip, "subnet_id": "sub-" + net_id}],
        "binding:host_id": host,
        "binding:vif_type": "ovs",
        "admin_state_up": True,
        "port_security_enabled": True,
        "device_owner": "compute:nova",
        "status": "DOWN",
        "security_groups": list(groups),
    }


def vif_op(port: Mapping[str, Any], hint: tuple[int, dict[str, str]] | None = None) -> sysovs.AddPort:
    """The VIF as the compute agent plugs it: with the network's local VLAN when ``hint``."""
    tag, other_config = hint if hint else (None, {})
    return sysovs.AddPort(
        "br-int",
        "tap" + port["id"][:11],
        type="internal",
        tag=tag,
        other_config=other_config,
        external_ids={"iface-id": port["id"], "attached-mac": port["mac_address"], "iface-status": "active"},
    )


def make_state(
    rev: int, ports: Mapping[str, Any], nets: Mapping[str, Any], rules: Mapping[str, Any] | None = None
) -> State:
    rules = default_group_rules() if rules is None else rules
    return State(
        rev,
        {"port": dict(ports), "network": dict(nets), "agent": {}, "security_group_rule": dict(rules)},
        frozenset({"port", "network", "agent", "security_group_rule"}),
    )


def flow_count(drv: OvsDriver, bridge: str) -> int:
    dump = getattr(drv.of, "dump_entries", drv.of.dump)
    return len(dump(bridge))


def stop(drv: OvsDriver) -> None:
    """Close the driver's OVSDB monitor (older drivers have none)."""
    getattr(drv, "stop", lambda: None)()


def flows_per_bridge(drv: OvsDriver) -> str:
    return ", ".join(f"{b} {flow_count(drv, b)}" for b in drv._managed_bridges())


def resync_bench(n_ports: int, n_nets: int, n_incr: int, budget: float, profile: Path | None) -> None:
    print(f"\n## OVS agent resync, {n_ports} bound ports on {n_nets} VXLAN networks (in-process)\n")
    timers = Timers()
    ns = "l2b-" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-l2b-"))
    po = sysovs.PrivateOvs(tmp / "ovs", ns, runner=timed_runner(timers))
    deadline = time.monotonic() + budget
    drivers: list[OvsDriver] = []
    try:
        netns_mod.ensure_netns(ns)
        ovs = po.start()
        cfg = AgentConfig(
            host=HOST,
            bridge_mappings={"physnet": "br-phys"},
            local_ip="127.0.0.1",
            tunnel_types=("vxlan",),
            datapath_type="netdev",
        )
        nets = vxlan_networks(n_nets, first_vni=1000)
        net_ids = list(nets)
        ports: dict[str, Any] = {}
        for i in range(n_ports):
            p = make_port(i + 1, net_ids[i % n_nets])
            ports[p["id"]] = p
        t0 = time.perf_counter()
        ovs.transact([sysovs.AddBridge("br-int", datapath_type="netdev")])
        plist = list(ports.values())
        for s in range(0, n_ports, 250):
            ovs.transact([vif_op(p) for p in plist[s : s + 250]])
        print(
            f"setup: {n_ports} VIFs added in {ms(time.perf_counter() - t0)} "
            f"({(n_ports + 249) // 250} ovs-vsctl transactions)"
        )
        state = make_state(1, ports, nets)

        def measure(label: str, fn: Callable[[], dict[str, str]], target: str = "") -> float:
            timers.reset()
            prof = None
            if profile is not None:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            cpu = Cpu(tmp / "ovs")
            t0 = time.perf_counter()
            with instrument_planner(timers):
                statuses = fn()
            dt = time.perf_counter() - t0
            cpu_text = cpu.text()
            if prof is not None:
                prof.disable()
                slug = "-".join(label.split("(")[0].split()[:4])
                prof.dump_stats(str(profile.with_name(f"{profile.stem}-{slug}.prof")))
            t, n, extra = timers.snapshot()
            active = sum(1 for v in statuses.values() if v == "ACTIVE")
            print(f"* {label}: **{ms(dt)}**{target}; {active}/{len(statuses)} ports ACTIVE; {cpu_text}")
            print(f"  - {breakdown(dt, t, n, extra)}")
            return dt

        cold = OvsDriver(cfg, ovs)
        drivers.append(cold)
        measure(
            "cold sync (fresh driver, nothing wired)", lambda: cold.reconcile_sync(state, True), " (target <= 10 s)"
        )
        stop(cold)
        counts = flows_per_bridge(cold)
        print(
            f"  - flows per bridge after the cold sync: {counts} "
            f"(br-int: {int(counts.split(',')[0].split()[1]) / n_ports:.1f} per port)"
        )
        warm = OvsDriver(cfg, ovs)
        drivers.append(warm)
        measure(
            "warm sync (restarted agent: new driver, new cookie, everything wired)",
            lambda: warm.reconcile_sync(state, True),
            " (should be near no-op)",
        )
        stop(warm)
        same = OvsDriver(cfg, ovs, cookie=warm.cookie)
        drivers.append(same)
        measure(
            "warm sync with the previous cookie (lower bound of a restart)", lambda: same.reconcile_sync(state, True)
        )
        measure(
            "no-op reconcile (feed moved, nothing changed for this host)",
            lambda: same.reconcile_sync(make_state(2, ports, nets), True),
        )
        measure(
            "idle tick (feed unchanged: canary check only)",
            lambda: same.reconcile_sync(make_state(2, ports, nets), False),
        )

        if hasattr(ovs_agent, "REREAD_EVERY"):

            def periodic_full() -> dict[str, str]:
                same._reread_at = float("-inf")
                return same.reconcile_sync(make_state(2, ports, nets), False)

            measure(
                f"periodic full pass (every {ovs_agent.REREAD_EVERY:g} s: flows re-read, nothing to change)",
                periodic_full,
            )

        # part 3: one more port at a time, plugged as neutrino's compute agent plugs it (with
        # the network's local VLAN, vif_hint), then bare (as os-vif does: the agent writes it).
        rev = 3
        for hinted, how in (
            (True, "plugged with its local VLAN (compute agent)"),
            (False, "plugged bare (the agent writes tag and other_config)"),
        ):
            lat: list[float] = []
            cpu_own: list[float] = []
            cpu_vswitchd: list[float] = []
            agg = Timers()
            for k in range(n_incr):
                if time.monotonic() > deadline:
                    print(f"  (stopped after {k} incremental ports: time budget)")
                    break
                p = make_port(len(ports) + 1, net_ids[k % n_nets])
                ports[p["id"]] = p
                hint = local_vlan_hint(ovs, p["network_id"]) if hinted else None
                ovs.transact([vif_op(p, hint)])  # the VIF is plugged ...
                st = make_state(rev, ports, nets)
                rev += 1
                timers.reset()
                c0, v0 = time.process_time(), vswitchd_cpu(tmp / "ovs")
                t0 = time.perf_counter()
                with instrument_planner(timers):
                    statuses = same.reconcile_sync(st, True)  # ... and the agent wires it
                lat.append(time.perf_counter() - t0)
                cpu_own.append(time.process_time() - c0)
                cpu_vswitchd.append(vswitchd_cpu(tmp / "ovs") - v0)
                if statuses.get(p["id"]) != "ACTIVE":
                    print(f"  (port {k} not ACTIVE after its reconcile: {statuses.get(p['id'])})")
                t, n, extra = timers.snapshot()
                for kind, v in t.items():
                    agg.t[kind] += v
                    agg.n[kind] += n[kind]
                for kind, v in extra.items():
                    agg.extra[kind] += v
            if lat:
                print(f"\n## Incremental wiring of one more port at {n_ports} ports, {how} ({len(lat)} samples)\n")
                print(
                    f"* reconcile after one port + VIF added: p50 **{ms(pct(lat, 50))}**, "
                    f"p99 {ms(pct(lat, 99))} (target p50 <= 100 ms); CPU p50: agent "
                    f"{ms(pct(cpu_own, 50))}, ovs-vswitchd {ms(pct(cpu_vswitchd, 50))}"
                )
                print(f"  - per port: {breakdown(sum(lat), agg.t, agg.n, agg.extra, per=len(lat))}")
        if time.monotonic() < deadline:
            vswitchd_floor(ovs, tmp / "ovs", ns)
    finally:
        for d in drivers:
            stop(d)
        po.destroy()
        netns_mod.remove_netns(ns)
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# part 1: through the API (`neutrino up`)
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


class FeedWatch:
    """Follows /neutrino/v1/changes in a thread and stamps when each port is first seen ACTIVE."""

    def __init__(self, base_url: str, token: str, ca: str | bool) -> None:
        self.c = httpx.Client(base_url=base_url, headers={"X-Auth-Token": token}, timeout=30, verify=ca)
        self.rev = int(self.c.get("/neutrino/v1/snapshot", params={"resources": "agent"}).json()["revision"])
        self.active_at: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                body = self.c.get("/neutrino/v1/changes", params={"since": self.rev, "timeout": 1}, timeout=15).json()
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            now = time.perf_counter()
            with self.cond:
                for ch in body["changes"]:
                    b = ch.get("body")
                    if ch["resource"] == "port" and b and b.get("status") == "ACTIVE":
                        self.active_at.setdefault(ch["id"], now)
                self.rev = body["revision"]
                self.cond.notify_all()

    def wait_active(self, port_ids: Sequence[str], timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.cond:
            while not all(p in self.active_at for p in port_ids):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        self.c.close()


def api_bench(n_ports: int, n_burst: int, n_servers: int, budget: float, keep: bool) -> None:
    print("\n## Through the API (`neutrino up`: server, private OVS, ovs + compute agents)\n")
    state = Path(tempfile.mkdtemp(prefix="neutrino-l2b-api-"))
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(state))
    off = free_offset()
    t0 = time.perf_counter()
    deadline = time.monotonic() + budget
    feed = None
    try:
        subprocess.run(
            [*NEUTRINO, "up", "--state-dir", str(state), "--port-offset", str(off)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        print(f"`neutrino up` (until the agents report alive): {ms(time.perf_counter() - t0)}")
        from neutrino.cli.main import load_config

        cfg = load_config(state / "neutrino.conf", state, off)
        ovs = host_ovs(cfg)
        admin = read_openrc(state / "admin-openrc")
        tok = get_token(admin)
        net_url = api_base(admin, 9696 + off)
        c = httpx.Client(base_url=net_url, headers={"X-Auth-Token": tok}, timeout=30, verify=verify(admin))
        agents = c.get("/v2.0/agents").json()["agents"]
        host = next(a["host"] for a in agents if a["agent_type"] == "Open vSwitch agent")
        net = c.post("/v2.0/networks", json={"network": {"name": "l2b-net"}}).json()["network"]
        c.post(
            "/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.77.0.0/16"}}
        ).raise_for_status()
        feed = FeedWatch(net_url, tok, verify(admin))
        seq = 0

        def create_and_plug() -> tuple[str, float, float, float]:
            """POST a bound port, plug its VIF; (id, t_start, create s, plug s)."""
            nonlocal seq
            seq += 1
            t0 = time.perf_counter()
            r = c.post(
                "/v2.0/ports",
                json={
                    "port": {
                        "network_id": net["id"],
                        "binding:host_id": host,
                        "device_owner": "compute:l2bench",
                        "device_id": f"l2b-{seq}",
                    }
                },
            )
            r.raise_for_status()
            port = r.json()["port"]
            t1 = time.perf_counter()
            ovs.transact(
                [
                    sysovs.AddPort(
                        cfg.ovs.integration_bridge,
                        "tap" + port["id"][:11],
                        type="internal",
                        external_ids={
                            "iface-id": port["id"],
                            "attached-mac": port["mac_address"],
                            "iface-status": "active",
                        },
                    )
                ]
            )
            return port["id"], t0, t1 - t0, time.perf_counter() - t1

        def report(title: str, rows: list[tuple[str, float, float, float]], limit: float) -> None:
            lat = [feed.active_at[pid] - t0 for pid, t0, _, _ in rows if pid in feed.active_at]
            missed = len(rows) - len(lat)
            slow = sum(1 for x in lat if x > 3)
            print(f"\n### {title}\n")
            print(
                f"* POST /v2.0/ports (binding:host_id set): p50 {ms(pct([r[2] for r in rows], 50))}, "
                f"p99 {ms(pct([r[2] for r in rows], 99))}; VIF plug (ovs-vsctl add-port): "
                f"p50 {ms(pct([r[3] for r in rows], 50))}"
            )
            print(
                f"* create -> ACTIVE on the feed: p50 **{ms(pct(lat, 50))}**, p90 {ms(pct(lat, 90))}, "
                f"p99 **{ms(pct(lat, 99))}**, max {ms(max(lat, default=float('nan')))} "
                f"(target p50 <= 1 s, p99 <= 3 s); {slow} of {len(lat)} took > 3 s"
                + (f"; {missed} not ACTIVE within {limit:g} s" if missed else "")
            )

        # ---- one port at a time ----
        per_port = 35.0  # > FULL_EVERY x polling_interval (30 s): a missed VIF is picked up by then
        rows = []
        seq_end = time.monotonic() + 60
        for i in range(n_ports):
            if time.monotonic() > seq_end:
                print(f"(sequential ports: stopped after {i} of {n_ports}: time budget)")
                break
            row = create_and_plug()
            rows.append(row)
            feed.wait_active([row[0]], per_port)
        report(f"Port create + bind + VIF plug -> ACTIVE, one at a time ({len(rows)} ports)", rows, per_port)

        # ---- a burst: n ports created and plugged back to back ----
        if n_burst:
            rows = [create_and_plug() for _ in range(n_burst)]
            feed.wait_active([r[0] for r in rows], 35)
            report(
                f"Same, {n_burst} ports created and plugged back to back (like {n_burst} concurrent boots)", rows, 35
            )

        # ---- servers: create -> ACTIVE -> first ping from a neighbour ----
        if n_servers:
            server_bench(admin, off, tok, n_servers, deadline, feed)
    finally:
        if feed is not None:
            feed.close()
        subprocess.run(
            [*NEUTRINO, "down", "--state-dir", str(state), "--purge"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"(state kept in {state})")


def server_bench(admin: Mapping[str, str], off: int, tok: str, n: int, deadline: float, feed: FeedWatch) -> None:
    h = {"X-Auth-Token": tok}
    ca = verify(admin)
    nova = httpx.Client(base_url=f"{api_base(admin, 8774 + off)}/v2.1", headers=h, timeout=30, verify=ca)
    neutron = httpx.Client(base_url=api_base(admin, 9696 + off), headers=h, timeout=30, verify=ca)
    images = httpx.get(f"{api_base(admin, 9292 + off)}/v2/images", headers=h, timeout=30, verify=ca).json()["images"]
    image = next(i["id"] for i in images if i["name"] == "cirros")
    flavor = next(f["id"] for f in nova.get("/flavors").json()["flavors"] if f["name"] == "m1.nano")
    net = neutron.post("/v2.0/networks", json={"network": {"name": "l2b-srv"}}).json()["network"]
    neutron.post(
        "/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.78.0.0/24"}}
    ).raise_for_status()
    lock = threading.Lock()

    def boot(name: str) -> str:
        with lock:
            r = nova.post(
                "/servers",
                json={
                    "server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": [{"uuid": net["id"]}]}
                },
            )
        r.raise_for_status()
        return r.json()["server"]["id"]

    def wait_active(sid: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < end:
            with lock:
                status = nova.get(f"/servers/{sid}").json()["server"]["status"]
            if status in ("ACTIVE", "ERROR"):
                return status
            time.sleep(0.05)
        return status

    def port_of(sid: str) -> dict[str, Any]:
        with lock:
            return neutron.get("/v2.0/ports", params={"device_id": sid}).json()["ports"][0]

    def first_ping(src: str, dst: str, timeout: float) -> str:
        # One echo every 50 ms until the first answer (or the deadline); "" when answered.
        r = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                f"vm-{src}",
                "ping",
                "-n",
                "-q",
                "-c",
                "1",
                "-i",
                "0.05",
                "-w",
                str(int(timeout)),
                dst,
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 5,
        )
        if r.returncode == 0:
            return ""
        tail = r.stdout.strip().splitlines()[-1:] + r.stderr.strip().splitlines()[-1:]
        return f"ping {dst}: rc {r.returncode} {' '.join(tail)}"

    print("\n### Servers: create -> ACTIVE -> first ping answered from a neighbour instance\n")
    t0 = time.perf_counter()
    neighbour = boot("l2b-neighbour")
    nport = port_of(neighbour)["id"]
    st = wait_active(neighbour, 35)
    t1 = time.perf_counter()
    pa = feed.active_at.get(nport)
    print(
        f"* the neighbour (first server on the network, alone): create -> port ACTIVE "
        f"{ms(pa - t0) if pa else 'never'}, -> server ACTIVE {ms(t1 - t0)}"
        + ("" if st == "ACTIVE" else f" (status {st}: no server figures)")
    )
    if st != "ACTIVE" or time.monotonic() + 50 > deadline:
        return
    results: dict[int, tuple[float | None, float | None, str]] = {}
    port_active: list[float] = []

    def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            sid = boot(f"l2b-{i}")
            port = port_of(sid)
            st = wait_active(sid, 40)
            t1 = time.perf_counter()
            if port["id"] in feed.active_at:
                port_active.append(feed.active_at[port["id"]] - t0)
            if st != "ACTIVE":
                results[i] = (None, None, f"status {st} after 40 s")
                return
            err = first_ping(neighbour, port["fixed_ips"][0]["ip_address"], 10)
            results[i] = (t1 - t0, None if err else time.perf_counter() - t0, err)
        except Exception as exc:  # noqa: BLE001 - report, do not stop the others
            results[i] = (None, None, f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    active = [r[0] for r in results.values() if r[0] is not None]
    pinged = [r[1] for r in results.values() if r[1] is not None]
    errors = [r[2] for r in results.values() if r[2]]
    print(
        f"* {n} servers booted at once: create -> port ACTIVE (OVS agent) p50 {ms(pct(port_active, 50))}, "
        f"max {ms(max(port_active, default=float('nan')))}; create -> server ACTIVE (port ACTIVE + guest "
        f"configured) p50 **{ms(pct(active, 50))}**, max {ms(max(active, default=float('nan')))}"
    )
    print(
        f"* create -> first ping answered from the neighbour: p50 **{ms(pct(pinged, 50))}**, "
        f"max {ms(max(pinged, default=float('nan')))}"
        + (f"; {len(errors)} failed ({'; '.join(sorted(set(errors))[:3])})" if errors else "")
    )


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("resync", "api"))
    ap.add_argument("--resync-ports", type=int, default=1000)
    ap.add_argument("--networks", type=int, default=10)
    ap.add_argument("--incremental", type=int, default=20)
    ap.add_argument("--ports", type=int, default=100, help="ports through the API")
    ap.add_argument("--burst", type=int, default=50, help="ports created back to back")
    ap.add_argument("--servers", type=int, default=10)
    ap.add_argument("--profile", type=Path, help="write cProfile stats of each resync phase here (prefix)")
    ap.add_argument("--keep", action="store_true", help="keep the API part's state dir")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None:
        print("needs root and Open vSwitch", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.only in (None, "resync"):
        resync_bench(args.resync_ports, args.networks, args.incremental, budget=180, profile=args.profile)
    if args.only in (None, "api"):
        api_bench(args.ports, args.burst, args.servers, budget=200, keep=args.keep)
    print(f"\n(total {time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
