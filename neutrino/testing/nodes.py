"""Nodes by role on one machine (root): the seed's "separate network node" set-up.

::

    fabric namespace <prefix>-fabric: management bridge (HTTPS), underlay bridge (VXLAN), physnet bridge
      |                 |                      |                      |
    controller        network                compute1               compute2          (netns <prefix>-<name>)
    192.168.1.11      192.168.1.12           192.168.1.21           192.168.1.22      management (mgmt0)
    no OVS            VTEP 192.168.2.12      VTEP 192.168.2.21      VTEP 192.168.2.22  underlay (br-underlay)
    API server        OVS, DHCP, L3,         OVS, compute           OVS, compute
    (api_workers)     metadata agents;       agents                 agents
                      the lab host on br-phys

Every node is a network namespace of ``neutrino.testing.multihost.Fabric``
(the OVS hosts with their own private Open vSwitch, br-underlay holding the
VTEP and br-phys holding the physnet wire) running ``neutrino up --role
ROLE`` *inside* it (``nsenter --net``: only the network namespace changes,
so the namespaces the agents create are everyone's), with its own state
directory and ``neutrino.conf``:

* controller: ``[DEFAULT] roles = controller``, every API bound to its
  management address, ``api_workers`` server processes (SO_REUSEPORT), the
  database at ``[database] connection``: a throwaway PostgreSQL over a unix
  socket (``neutrino.testing.postgres``) when the server is installed, else
  SQLite in its state directory;
* network and computes: their roles, ``[DEFAULT] host``, ``server_url =
  https://<controller>:9696``, ``[metadata] nova_metadata_host = <controller>``,
  ``[ovs] host_netns / ovs_rundir`` (the fabric's OVS: ``up`` uses it and
  never stops it), ``local_ip`` (VTEP), ``bridge_mappings = physnet:br-phys``;
  TLS everywhere (the default): the controller's ``up`` makes the CA and a
  server certificate naming its management address (its ``bind_host``), and
  each other node imports the bundle ``neutrino pki issue --host <node> --role
  <role> --bundle`` makes on the controller (its agents present ``node.pem``:
  mutual TLS).  With ``options={("DEFAULT", "use_ssl"): "false"}`` the APIs
  are plain HTTP and the controller's ``agent-openrc`` (the agents' service
  user) is copied in instead.

The test process stays in the machine's namespace: ``call_in(node, fn)`` runs
``fn`` on a thread moved into the node's network namespace (the API is only
reachable on the management network), ``neutrino(node, ...)`` runs a
``neutrino`` subcommand there.  ``teardown()`` (idempotent, ``atexit``):
``neutrino down --purge`` on every node (computes first), the fabric, the
database; ``leftovers()`` lists what of it all still exists.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from neutrino.agents.auth import read_openrc
from neutrino.agents.dhcp.agent import confs_dir
from neutrino.cli.main import initial_values
from neutrino.config import load, render_ini
from neutrino.pki.paths import pki_paths
from neutrino.pki.tls import verify_arg
from neutrino.system import netns as netns_mod
from neutrino.system.errors import HostError
from neutrino.system.ovsdb import AddBridge, AddPort
from neutrino.testing.multihost import PHYSNET_DEV, Fabric, Host
from neutrino.testing.postgres import Postgres

NEUTRINO = (sys.executable, "-m", "neutrino.cli.main")
PHYS_BRIDGE = "br-phys"
API_PORT = 9696


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str
    mgmt_ip: str
    vtep_ip: str | None = None  # None: no OVS on this node


#: The seed's "separate network node" layout.
SEED_LAYOUT = (
    NodeSpec("controller", "controller", "192.168.1.11/24"),
    NodeSpec("network", "network", "192.168.1.12/24", "192.168.2.12/24"),
    NodeSpec("compute1", "compute", "192.168.1.21/24", "192.168.2.21/24"),
    NodeSpec("compute2", "compute", "192.168.1.22/24", "192.168.2.22/24"),
)
AGENT_TYPES = {
    "network": {"Open vSwitch agent", "DHCP agent", "L3 agent", "Metadata agent"},
    "compute": {"Open vSwitch agent", "Compute agent"},
    "controller": set(),
}

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def call_in_netns(netns: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """``fn(*args, **kw)`` on a fresh thread moved into network namespace ``netns``
    (``setns`` moves only the calling thread); sockets it opens live there."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn(*args, **kw)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=target, name=f"netns-{netns}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class Node:
    spec: NodeSpec
    host: Host
    state_dir: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def netns(self) -> str:
        return self.host.netns

    @property
    def mgmt_ip(self) -> str:
        return self.spec.mgmt_ip.split("/")[0]

    @property
    def vtep_ip(self) -> str | None:
        return self.spec.vtep_ip.split("/")[0] if self.spec.vtep_ip else None

    def log(self, name: str) -> str:
        p = self.state_dir / "log" / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""


class Nodes:
    """The nodes of ``layout`` on one fabric, each running ``neutrino up --role``."""

    def __init__(
        self,
        base_dir: Path | str,
        layout: tuple[NodeSpec, ...] = SEED_LAYOUT,
        *,
        prefix: str | None = None,
        database: str = "auto",
        api_workers: int = 2,
        options: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.base = Path(base_dir)
        self.layout = layout
        self.prefix = prefix or "nn" + uuidlib.uuid4().hex[:5]
        self.want_database = database  # auto | postgresql | sqlite
        self.api_workers = api_workers
        self.options = dict(options or {})
        self.fabric = Fabric(self.prefix, self.base)
        self.lab_netns = f"lab-{self.prefix}"
        self.nodes: dict[str, Node] = {}
        self.pg: Postgres | None = None
        self.database = ""
        self.timings: dict[str, float] = {}
        self.tls = True  # the controller's [DEFAULT] use_ssl, read once its configuration is written
        self._verify: ssl.SSLContext | bool | None = None
        self._started = self._torn_down = False
        self._namespaces_seen: set[str] = set()

    # ---- addresses -------------------------------------------------------------------------

    @property
    def controller(self) -> Node:
        return next(n for n in self.nodes.values() if n.spec.role == "controller")

    @property
    def network_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.controller.mgmt_ip}:{API_PORT}"

    @property
    def ca_file(self) -> Path | None:
        """The controller's CA certificate (what every client trusts); None with TLS off."""
        return pki_paths(self.controller.state_dir).ca if self.tls else None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify=`` for the APIs: the controller's CA (made at its first ``up``)."""
        if self._verify is None:
            self._verify = verify_arg(self.ca_file)
        return self._verify

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Nodes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def start(self) -> Nodes:
        if self._started:
            return self
        self._started = True
        atexit.register(self.teardown)
        try:
            t0 = time.monotonic()
            self.fabric.start()
            for spec in self.layout:
                self._add(spec)
            t1 = time.monotonic()
            self._start_database()
            t2 = time.monotonic()
            ctl = self.controller
            self._write_config(ctl)
            self.tls = load(ctl.state_dir / "neutrino.conf").default.use_ssl
            self._up(ctl)
            t3 = time.monotonic()
            others = [n for n in self.nodes.values() if n is not ctl]
            for n in others:
                self._join(n)
                self._write_config(n)
            with ThreadPoolExecutor(max(1, len(others))) as pool:
                list(pool.map(self._up, others))
            self.wait_alive()
            t4 = time.monotonic()
            self.timings.update(fabric=t1 - t0, database=t2 - t1, controller=t3 - t2, agent_nodes=t4 - t3)
        except BaseException:
            self.teardown()
            raise
        return self

    def _add(self, spec: NodeSpec) -> Node:
        ovs = spec.vtep_ip is not None
        host = self.fabric.add_host(spec.name, spec.vtep_ip, physnet=ovs, mgmt_ip=spec.mgmt_ip, ovs=ovs)
        if ovs:  # the physical bridge with its wire exists before the agents start
            host.ovs.transact([AddBridge(PHYS_BRIDGE, datapath_type="netdev"), AddPort(PHYS_BRIDGE, PHYSNET_DEV)])
        state = self.base / "nodes" / spec.name
        (state / "log").mkdir(parents=True, exist_ok=True)
        node = Node(spec, host, state)
        self.nodes[spec.name] = node
        return node

    def _start_database(self) -> None:
        if self.want_database in ("auto", "postgresql"):
            self.pg = Postgres.find()
            if self.pg is None and self.want_database == "postgresql":
                raise HostError("PostgreSQL server binaries (or the postgres user) are missing")
        if self.pg is not None:
            self.database = self.pg.start()
        else:
            self.database = f"sqlite:///{self.controller.state_dir / 'neutrino.db'}"

    def config_values(self, node: Node) -> dict[tuple[str, str], str]:
        """The ``neutrino.conf`` values of ``node`` (see the module docstring)."""
        ctl = self.controller
        values = initial_values()
        ctl_conf = ctl.state_dir / "neutrino.conf"
        if node is not ctl and ctl_conf.exists():  # the controller's secret, for the metadata agent
            secret = load(ctl_conf).metadata.metadata_proxy_shared_secret
            values[("metadata", "metadata_proxy_shared_secret")] = secret
        values.update(
            {
                ("DEFAULT", "roles"): node.spec.role,
                ("DEFAULT", "host"): node.name,
                ("metadata", "nova_metadata_host"): ctl.mgmt_ip,
                ("lab", "host_netns"): self.lab_netns,
            }
        )
        if node is ctl:
            for sec in ("DEFAULT", "identity", "compute", "image", "metadata"):
                values[(sec, "bind_host")] = ctl.mgmt_ip
            values[("DEFAULT", "api_workers")] = str(self.api_workers)
            values[("database", "connection")] = self.database
        else:
            values.pop(("database", "connection"), None)
            values.update(
                {
                    ("DEFAULT", "server_url"): self.network_url,
                    ("ovs", "host_netns"): node.netns,
                    ("ovs", "ovs_rundir"): str(node.host.rundir),
                    ("ovs", "local_ip"): node.vtep_ip or "",
                    ("ovs", "bridge_mappings"): f"physnet:{PHYS_BRIDGE}",
                    ("ovs", "datapath_type"): "netdev",
                }
            )
        values.update(self.options)
        return values

    def _write_config(self, node: Node) -> None:
        (node.state_dir / "neutrino.conf").write_text(render_ini(self.config_values(node)))

    def command(self, node: str, *argv: str) -> list[str]:
        """``argv`` run in ``node``'s network namespace (and only that: the mounts stay ours)."""
        return ["nsenter", f"--net=/run/netns/{self.nodes[node].netns}", "--", *argv]

    def neutrino(self, node: str, sub: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``neutrino SUB --state-dir <node's> ARGS`` in ``node``'s namespace."""
        n = self.nodes[node]
        return subprocess.run(
            self.command(node, *NEUTRINO, sub, "--state-dir", str(n.state_dir), *args),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _run_ok(self, node: str, argv: list[str], what: str) -> None:
        r = subprocess.run(self.command(node, *argv), capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise HostError(f"{what} on {node} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def _join(self, node: Node) -> None:
        """What ``node`` needs from the controller before its ``up``: with TLS its bundle (issued
        by the controller's CA, imported on the node, then deleted), else the ``agent-openrc``."""
        ctl = self.controller
        if not self.tls:
            shutil.copy2(ctl.state_dir / "agent-openrc", node.state_dir / "agent-openrc")
            return
        bundle = self.base / "nodes" / f"{node.name}.tar"
        issue = [*NEUTRINO, "pki", "issue", "--state-dir", str(ctl.state_dir)]
        issue += ["--host", node.name, "--role", node.spec.role, "--bundle", str(bundle)]
        self._run_ok(ctl.name, issue, "pki issue")
        try:
            imp = [*NEUTRINO, "pki", "import", "--state-dir", str(node.state_dir), str(bundle)]
            self._run_ok(node.name, imp, "pki import")
        finally:
            bundle.unlink(missing_ok=True)  # it holds the node's private key

    def _up(self, node: Node) -> None:
        r = self.neutrino(node.name, "up", "--role", node.spec.role)
        if r.returncode != 0 or "warning: not alive" in r.stdout:
            logs = "\n".join(
                f"--- {node.name} {p.stem} ---\n{p.read_text(errors='replace')[-2500:]}"
                for p in sorted((node.state_dir / "log").glob("*.log"))
            )
            raise HostError(
                f"neutrino up --role {node.spec.role} on {node.name} failed ({r.returncode}):\n"
                f"{r.stdout}\n{r.stderr}\n{logs}"
            )

    # ---- the API (on the management network) ---------------------------------------------------

    def call_in(self, node: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return call_in_netns(self.nodes[node].netns, fn, *args, **kw)

    def admin_token(self) -> str:
        def login() -> str:
            c = read_openrc(self.controller.state_dir / "admin-openrc")
            body = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {"name": c.username, "domain": {"name": c.user_domain}, "password": c.password}
                        },
                    },
                    "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain}}},
                }
            }
            r = httpx.post(f"{c.auth_url.rstrip('/')}/auth/tokens", json=body, timeout=30, verify=self.verify)
            r.raise_for_status()
            return r.headers["X-Subject-Token"]

        return self.call_in(self.controller.name, login)

    def api(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        """An admin request to the Neutron API (``path`` from ``/v2.0`` on), from the controller."""
        tok = token or self.admin_token()
        url = self.network_url + path

        def go() -> httpx.Response:
            return httpx.request(method, url, headers={"X-Auth-Token": tok}, timeout=30, verify=self.verify, **kw)

        return self.call_in(self.controller.name, go)

    def missing_agents(self) -> list[str]:
        want = {(n.name, t) for n in self.nodes.values() for t in AGENT_TYPES[n.spec.role]}
        try:
            agents = self.api("GET", "/v2.0/agents").json()["agents"]
            alive = {(a["host"], a["agent_type"]) for a in agents if a["alive"]}
        except (httpx.HTTPError, KeyError):
            alive = set()
        return sorted(f"{h}/{t}" for h, t in want - alive)

    def wait_alive(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while missing := self.missing_agents():
            if time.monotonic() > deadline:
                raise HostError(f"agents not alive after {timeout:g} s: {missing}")
            time.sleep(0.3)

    # ---- teardown -----------------------------------------------------------------------------

    def _record_namespaces(self) -> None:
        """Namespaces the nodes made (instances, routers, DHCP) and the lab host, for ``leftovers``."""
        self._namespaces_seen.add(self.lab_netns)
        for n in self.nodes.values():
            self._namespaces_seen |= {f"vm-{m.name}" for m in (n.state_dir / "instances").glob("*")}
            self._namespaces_seen |= {f"qrouter-{m.name}" for m in (n.state_dir / "l3").glob("*")}
            conf = n.state_dir / "neutrino.conf"
            if conf.exists():
                self._namespaces_seen |= {f"qdhcp-{d.name}" for d in confs_dir(load(conf)).glob("*")}

    def teardown(self) -> None:
        """``down --purge`` every node (agent nodes first), then the fabric and the database.
        Idempotent; raises HostError listing what could not be removed."""
        if self._torn_down:
            return
        self._torn_down = True
        errors: list[str] = []
        self._record_namespaces()

        def down(n: Node) -> None:
            if not (n.state_dir / "neutrino.conf").exists() or not netns_mod.netns_exists(n.netns):
                return
            try:
                r = self.neutrino(n.name, "down", "--purge", timeout=120)
                if r.returncode != 0:
                    errors.append(f"down --purge on {n.name}: {r.stderr.strip()}")
            except subprocess.TimeoutExpired:
                errors.append(f"down --purge on {n.name} timed out")

        agent_nodes = [n for n in self.nodes.values() if n.spec.role != "controller"]
        with ThreadPoolExecutor(max(1, len(agent_nodes))) as pool:  # the agent nodes at once,
            list(pool.map(down, agent_nodes))
        for n in self.nodes.values():  # then the controller
            if n.spec.role == "controller":
                down(n)
        try:
            self.fabric.teardown()  # kills whatever still runs in the nodes' namespaces
        except Exception as exc:  # noqa: BLE001 - keep tearing down
            errors.append(str(exc))
        for ns in sorted(self._namespaces_seen):
            if netns_mod.netns_exists(ns):
                try:
                    netns_mod.remove_netns(ns)
                    errors.append(f"namespace {ns} was left by the nodes (removed now)")
                except Exception as exc:  # noqa: BLE001 - keep tearing down the other namespaces
                    errors.append(f"removing {ns}: {exc}")
        if self.pg is not None:
            self.pg.stop()
        shutil.rmtree(self.base / "nodes", ignore_errors=True)
        atexit.unregister(self.teardown)
        if errors:
            raise HostError("nodes teardown incomplete: " + "; ".join(errors))

    def leftovers(self) -> list[str]:
        """What of the nodes still exists (empty after a clean teardown)."""
        out = list(self.fabric.leftovers())
        out += [f"netns {ns}" for ns in sorted(self._namespaces_seen) if netns_mod.netns_exists(ns)]
        if self.pg is not None and self.pg.dir is not None:
            out.append(f"PostgreSQL in {self.pg.dir}")
        if (self.base / "nodes").exists():
            out.append(f"dir {self.base / 'nodes'}")
        mine = str(self.base)
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if mine in cmd:
                    out.append(f"pid {d.name}: {cmd[:100]}")
        return out


__all__ = ["AGENT_TYPES", "Node", "NodeSpec", "Nodes", "SEED_LAYOUT", "call_in_netns"]
