"""A multi-host cloud on one machine (root): one API server, several simulated hosts.

::

    neutrino up --no-agents --state-dir <base>/server --port-offset N     (root namespace, 127.0.0.1)
        ^  feed, heartbeats (http://127.0.0.1:<9696+N>)
        |
    neutrino agent ovs|compute --state-dir <base>/hosts/<host>             (root namespace, one pair per host)
        |  ovs-vsctl / ovs-ofctl / ip, inside the host's namespace ([ovs] host_netns, ovs_rundir)
        v
    Fabric (neutrino.testing.multihost): netns <prefix>-<host> with a private OVS,
        br-underlay (VTEP IP on its LOCAL port) on the fabric's underlay bridge,
        br-phys with the physnet veth phy0 on the fabric's physnet bridge.

Each host gets a state directory holding ``neutrino.conf`` (the server's
configuration, so the same ML2 options and API ports, plus ``[DEFAULT] host``
/ ``server_url`` and the host's ``[ovs]`` and ``[agent]`` options) and a copy of
``agent-openrc`` (the agents' service user; hosts get no admin credentials).  With TLS
(the default) the APIs are ``https://`` and each host gets what ``neutrino pki issue
--host HOST --role compute`` and ``pki import`` give a node: ``pki/ca.pem``, ``pki/crl.pem``
and its own client certificate ``pki/node.pem`` (``CN=HOST, OU=compute``).  Instances the
compute agents boot are the usual
``vm-<server id>`` namespaces, their host ends in the host's namespace.

``Cloud(base_dir).start()`` (or ``with Cloud(...) as cloud``) returns once
every host's agents report alive.  ``teardown()`` runs in this order, and
whatever failed before: delete every server (and wait for the agents to remove
their namespaces), stop the agents (verified pids), ``neutrino down --purge``
the server, tear the fabric down, remove the hosts' state directories;
``leftovers()`` says what of all that still exists (empty after a clean
teardown).  ``teardown`` is idempotent and registered with ``atexit``.
"""

from __future__ import annotations

import atexit
import configparser
import logging
import shutil
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from neutrino.agents.auth import read_openrc
from neutrino.cli.process import PidFile
from neutrino.config import load as load_config
from neutrino.pki.ca import CertificateAuthority
from neutrino.pki.paths import pki_paths
from neutrino.pki.tls import verify_arg
from neutrino.system import netns as netns_mod
from neutrino.system import process
from neutrino.system.errors import HostError
from neutrino.system.exec import Completed, run
from neutrino.system.ovsdb import AddBridge, AddPort
from neutrino.testing.multihost import PHYSNET_DEV, Fabric, Host
from neutrino.testing.ports import free_port_offset

LOG = logging.getLogger(__name__)

NEUTRINO = (sys.executable, "-m", "neutrino.cli.main")
AGENT_TYPES = {"ovs": "Open vSwitch agent", "compute": "Compute agent"}
DEFAULT_HOSTS = (("compute1", "192.168.99.1/24"), ("compute2", "192.168.99.2/24"))
PHYSNET = "physnet"
PHYS_BRIDGE = "br-phys"
INSTANCE_PREFIX = "vm-"
ETC_NETNS = Path("/etc/netns")
_PORTS = {"DEFAULT": 9696, "identity": 5000, "compute": 8774, "image": 9292}


class _CaseKeptParser(configparser.ConfigParser):
    """A ConfigParser that keeps option names as written (neutrino.conf's names are case-sensitive)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def token(openrc: Path) -> str:
    """A project-scoped token for the credentials of an openrc file."""
    c = read_openrc(openrc)
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": c.username, "domain": {"name": c.user_domain}, "password": c.password}},
            },
            "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain}}},
        }
    }
    r = httpx.post(f"{c.auth_url.rstrip('/')}/auth/tokens", json=body, timeout=30, verify=verify_arg(c.cacert))
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


@dataclass
class CloudHost:
    """One simulated host: its fabric host (netns + private OVS) and its agents."""

    name: str
    node: Host  # the fabric's host: .netns, .ovs, .of, .vtep
    state_dir: Path
    agents: dict[str, process.ProcessSpec] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        return self.node.netns

    @property
    def vtep_ip(self) -> str:
        assert self.node.vtep is not None
        return str(self.node.vtep.ip)

    def log(self, kind: str) -> str:
        spec = self.agents.get(kind)
        if spec is None or spec.log_path is None or not spec.log_path.exists():
            return ""
        return spec.log_path.read_text(errors="replace")

    def instances(self) -> list[str]:
        """Server ids this host's compute agent made and has not removed (its marks)."""
        marks = self.state_dir / "instances"
        return sorted(p.name for p in marks.iterdir()) if marks.is_dir() else []


class Cloud:
    """One API server and ``hosts`` (name -> VTEP address) with ovs + compute agents each."""

    def __init__(
        self,
        base_dir: Path | str,
        hosts: Sequence[tuple[str, str]] = DEFAULT_HOSTS,
        *,
        prefix: str | None = None,
        agents: Sequence[str] = ("ovs", "compute"),
        agent_options: Mapping[tuple[str, str], str] | None = None,
        alive_timeout: float = 30.0,
    ) -> None:
        self.base = Path(base_dir)
        self.host_specs = list(hosts)
        self.prefix = prefix or "nc" + uuidlib.uuid4().hex[:5]
        self.agent_kinds = tuple(agents)
        self.agent_options = dict(agent_options or {})
        self.alive_timeout = alive_timeout
        self.server_dir = self.base / "server"
        self.hosts_dir = self.base / "hosts"
        self.offset = 0
        self.tls = True  # the server's [DEFAULT] use_ssl, read once it is up
        self.fabric = Fabric(self.prefix, self.base)
        self.hosts: dict[str, CloudHost] = {}
        self._server_started = False
        self._started = False
        self._torn_down = False
        self._token: tuple[str, float] | None = None
        self._server_record: Any = None  # neutrino.cli.process.PidRecord of the API server
        self._instance_ids: set[str] = set()  # every instance an agent made (for leftovers())
        #: instance namespaces the agents had not removed when teardown gave up waiting
        self.not_removed_by_agents: list[str] = []
        self.timings: dict[str, float] = {}

    # ---- endpoints and credentials ---------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def ca_file(self) -> Path | None:
        """The CA the APIs' certificate chains to (None with TLS off)."""
        return pki_paths(self.server_dir).ca if self.tls else None

    @property
    def network_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{_PORTS['DEFAULT'] + self.offset}"

    @property
    def identity_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{_PORTS['identity'] + self.offset}/v3"

    @property
    def compute_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{_PORTS['compute'] + self.offset}/v2.1"

    @property
    def admin_openrc(self) -> Path:
        return self.server_dir / "admin-openrc"

    def admin_token(self) -> str:
        now = time.monotonic()
        if self._token is None or now - self._token[1] > 300:
            self._token = (token(self.admin_openrc), now)
        return self._token[0]

    def api(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """An admin request to ``url`` (absolute)."""
        headers = {"X-Auth-Token": self.admin_token(), **kw.pop("headers", {})}
        kw.setdefault("verify", verify_arg(self.ca_file))
        return httpx.request(method, url, headers=headers, timeout=kw.pop("timeout", 30), **kw)

    def connect(self, user: str = "admin") -> Any:
        """An openstacksdk connection for ``admin`` or ``demo`` (the openrc files of ``up``)."""
        import openstack  # noqa: PLC0415 - only the tests need openstacksdk

        c = read_openrc(self.server_dir / f"{user}-openrc")
        return openstack.connect(
            auth_url=c.auth_url,
            username=c.username,
            password=c.password,
            project_name=c.project_name,
            user_domain_name=c.user_domain,
            project_domain_name=c.project_domain,
            region_name="RegionOne",
            cacert=c.cacert,
        )

    # ---- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Cloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def start(self) -> Cloud:
        if self._started:
            return self
        if self._torn_down:
            raise HostError("this Cloud was torn down; make a new one")
        self._started = True
        atexit.register(self.teardown)
        try:
            t0 = time.monotonic()
            self._start_server()
            t1 = time.monotonic()
            self.fabric.start()
            for name, vtep in self.host_specs:
                self._add_host(name, vtep)
            t2 = time.monotonic()
            for h in self.hosts.values():
                self._start_agents(h)
            self.wait_alive(self.alive_timeout)
            t3 = time.monotonic()
            self.timings.update(server=t1 - t0, fabric=t2 - t1, agents=t3 - t2)
        except BaseException:
            self.teardown()
            raise
        return self

    def _start_server(self) -> None:
        self.server_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self.offset = free_port_offset()
            proc = subprocess.run(
                [
                    *NEUTRINO,
                    "up",
                    "--no-agents",
                    "--state-dir",
                    str(self.server_dir),
                    "--port-offset",
                    str(self.offset),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            self._server_started = True
            if proc.returncode == 0:
                self._server_record = PidFile(self.server_dir / "run" / "server.pid").read()
                conf = self.server_dir / "neutrino.conf"
                self.tls = load_config(conf, state_dir=self.server_dir).default.use_ssl
                return
            if "already in use" not in proc.stderr or attempt == 2:
                raise HostError(f"neutrino up failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def _add_host(self, name: str, vtep: str) -> CloudHost:
        node = self.fabric.add_host(name, vtep)
        # The physical bridge exists, with the physnet veth in it, before the agent starts.
        node.ovs.transact([AddBridge(PHYS_BRIDGE, datapath_type="netdev"), AddPort(PHYS_BRIDGE, PHYSNET_DEV)])
        state = self.hosts_dir / name
        (state / "log").mkdir(parents=True, exist_ok=True)
        (state / "run").mkdir(parents=True, exist_ok=True)
        host = CloudHost(name=name, node=node, state_dir=state)
        self.hosts[name] = host
        (state / "neutrino.conf").write_text(self.host_config(host))
        shutil.copy2(self.server_dir / "agent-openrc", state / "agent-openrc")
        if self.tls:
            self._issue_node_certificate(name, state)
        return host

    def _issue_node_certificate(self, name: str, state: Path) -> None:
        """What a node imports from ``neutrino pki issue --host NAME --role compute --bundle``:
        the CA, the CRL and its own client certificate (its agents present it)."""
        server, node = pki_paths(self.server_dir), pki_paths(state)
        node.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        ca = CertificateAuthority.load(server.ca_dir, crl_path=server.crl)
        role = "compute" if set(self.agent_kinds) <= {"ovs", "compute"} else "all"
        ca.issue_client(name, role, node.node_cert, node.node_key)
        shutil.copy2(server.ca, node.ca)
        shutil.copy2(server.crl, node.crl)

    def host_config(self, host: CloudHost) -> str:
        """The server's neutrino.conf with this host's settings (see the module docstring)."""
        parser = _CaseKeptParser(interpolation=None, default_section="__none__")
        parser.read(self.server_dir / "neutrino.conf")
        values: dict[tuple[str, str], str] = {
            ("DEFAULT", "host"): host.name,
            ("DEFAULT", "server_url"): self.network_url,
            ("ovs", "host_netns"): host.netns,
            ("ovs", "ovs_rundir"): str(host.node.rundir),
            ("ovs", "local_ip"): host.vtep_ip,
            ("ovs", "bridge_mappings"): f"{PHYSNET}:{PHYS_BRIDGE}",
            ("ovs", "datapath_type"): "netdev",
            ("agent", "tunnel_types"): "vxlan",
            ("agent", "l2_population"): "true",
            **{(sec, "bind_port"): str(port + self.offset) for sec, port in _PORTS.items()},
            **self.agent_options,
        }
        for (sec, opt), val in values.items():
            if not parser.has_section(sec):
                parser.add_section(sec)
            parser.set(sec, opt, val)
        lines = [f"# Host {host.name} of a neutrino.testing.cloud (server state in {self.server_dir})."]
        for sec in parser.sections():
            lines.append(f"[{sec}]")
            lines += [f"{k} = {v}" for k, v in parser.items(sec)]
            lines.append("")
        return "\n".join(lines)

    def _start_agents(self, host: CloudHost) -> None:
        for kind in self.agent_kinds:
            spec = process.ProcessSpec(
                argv=(*NEUTRINO, "agent", kind, "--state-dir", str(host.state_dir)),
                pidfile=host.state_dir / "run" / f"{kind}-agent.pid",
                uuid=f"{self.fabric.uuid}-{host.name}-{kind}",
                log_path=host.state_dir / "log" / f"{kind}-agent.log",
                cwd=host.state_dir,
            )
            host.agents[kind] = spec
            process.start(spec)

    def agents(self) -> list[dict[str, Any]]:
        r = self.api("GET", f"{self.network_url}/v2.0/agents")
        r.raise_for_status()
        return r.json()["agents"]

    def missing_agents(self) -> list[str]:
        """``host/agent type`` of every expected agent that is not alive."""
        want = {(h, AGENT_TYPES[k]) for h in self.hosts for k in self.agent_kinds}
        try:
            alive = {(a["host"], a["agent_type"]) for a in self.agents() if a.get("alive")}
        except httpx.HTTPError:
            alive = set()
        return sorted(f"{h}/{t}" for h, t in want - alive)

    def wait_alive(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        missing = self.missing_agents()
        while missing:
            dead = [f"{h.name}/{k}" for h in self.hosts.values() for k, s in h.agents.items() if not process.alive(s)]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {h.name} {k} ---\n{h.log(k)[-3000:]}" for h in self.hosts.values() for k in h.agents
                )
                raise HostError(f"agents not alive after {timeout:g}s: {missing} (exited: {dead})\n{logs}")
            time.sleep(0.2)
            missing = self.missing_agents()

    # ---- instances ------------------------------------------------------------------------------

    @staticmethod
    def instance_netns(server_id: str) -> str:
        return f"{INSTANCE_PREFIX}{server_id}"

    def exec(self, server_id: str, argv: Sequence[str], **kw: Any) -> Completed:
        """Run ``argv`` inside instance ``server_id`` (its namespace)."""
        return run(argv, netns=self.instance_netns(server_id), **{"check": False, **kw})

    def reaches(self, server_id: str, dst: str, *, within: float = 20.0) -> bool:
        """Ping from the instance until one answer arrives or ``within`` seconds pass."""
        deadline = time.monotonic() + within
        while True:
            if self.exec(server_id, ["ping", "-n", "-c", "1", "-W", "1", dst], timeout=5).rc == 0:
                return True
            if time.monotonic() >= deadline:
                return False

    def servers(self) -> list[dict[str, Any]]:
        """Every server (all projects), as the agents see them."""
        r = self.api("GET", f"{self.network_url}/neutrino/v1/servers")
        r.raise_for_status()
        body = r.json()
        return body.get("servers", body) if isinstance(body, dict) else body

    def delete_servers(self, timeout: float = 20.0) -> list[str]:
        """Delete every server and wait until the agents removed their namespaces.

        Returns the instance namespaces still present after ``timeout``."""
        servers = self.servers()
        self._instance_ids.update(s["id"] for s in servers)
        for s in servers:
            r = self.api("DELETE", f"{self.compute_url}/servers/{s['id']}")
            if r.status_code not in (204, 404):
                LOG.warning("deleting server %s: HTTP %s %s", s["id"], r.status_code, r.text[:200])
        deadline = time.monotonic() + timeout
        while True:
            self._instance_ids.update(sid for h in self.hosts.values() for sid in h.instances())
            left = sorted(
                self.instance_netns(sid)
                for sid in self._instance_ids
                if netns_mod.netns_exists(self.instance_netns(sid))
            )
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.2)

    # ---- teardown -------------------------------------------------------------------------------

    def teardown(self) -> None:
        """Remove everything (see the module docstring).  Idempotent; raises if something is left."""
        if self._torn_down:
            return
        self._torn_down = True
        errors: list[str] = []
        # 1. Servers, while the agents still run (they remove their instances).
        agents_up = any(process.alive(s) for h in self.hosts.values() for s in h.agents.values())
        if self._server_started and agents_up:
            try:
                left = self.delete_servers()
                self.not_removed_by_agents = left
                if left:
                    LOG.warning("instances not removed by the agents: %s", left)
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                errors.append(f"deleting servers: {exc}")
        elif self._server_started:
            try:  # no agent to remove them: step 3 does, given their ids
                self._instance_ids.update(s["id"] for s in self.servers())
            except Exception:  # noqa: BLE001 - a dead server: the marks still say which
                pass
        # 2. Agents, by verified pid.
        specs = [s for h in self.hosts.values() for s in h.agents.values()]
        try:
            process.stop_all(specs, timeout=10)
        except Exception as exc:  # noqa: BLE001 - keep going: the instances must still be removed
            errors.append(f"stopping agents: {exc}")
        # 3. Instances the agents did not remove: those of every server this cloud's API
        #    listed, and those the agents marked as made (their state dirs' instances/).
        for h in self.hosts.values():
            self._instance_ids.update(h.instances())
        for sid in sorted(self._instance_ids):
            ns = self.instance_netns(sid)
            if netns_mod.netns_exists(ns) or (ETC_NETNS / ns).exists():
                try:
                    for pid in netns_mod.netns_pids(ns) if netns_mod.netns_exists(ns) else []:
                        process.stop_pid(pid, timeout=2)
                    netns_mod.remove_netns(ns)
                    shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)
                except Exception as exc:  # noqa: BLE001 - keep going: the other instances must still go
                    errors.append(f"removing {ns}: {exc}")
        # 4. The API server and its state.
        if self._server_started:
            proc = subprocess.run(
                [*NEUTRINO, "down", "--purge", "--state-dir", str(self.server_dir)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if proc.returncode != 0:
                errors.append(f"neutrino down --purge: {proc.stderr.strip()}")
        # 5. The fabric: host OVS daemons, namespaces, its directory.
        try:
            self.fabric.teardown()
        except Exception as exc:  # noqa: BLE001 - keep going: the directories must still go
            errors.append(str(exc))
        shutil.rmtree(self.hosts_dir, ignore_errors=True)
        atexit.unregister(self.teardown)
        errors += [f"left over: {x}" for x in self.leftovers()]
        if errors:
            raise HostError("cloud teardown incomplete: " + "; ".join(errors))

    def leftovers(self) -> list[str]:
        """What of this cloud still exists (empty after a clean teardown)."""
        out = list(self.fabric.leftovers())
        for h in self.hosts.values():
            out += [f"pid {process.pid_of(s)} ({h.name} {k} agent)" for k, s in h.agents.items() if process.alive(s)]
            self._instance_ids.update(h.instances())
        out += [
            f"netns {self.instance_netns(sid)}"
            for sid in sorted(self._instance_ids)
            if netns_mod.netns_exists(self.instance_netns(sid))
        ]
        rec = self._server_record
        if rec is not None and rec.processes():
            out.append(f"API server pids {rec.processes()}")
        for d in (self.server_dir, self.hosts_dir):
            if d.exists():
                out.append(f"dir {d}")
        return out


__all__ = ["AGENT_TYPES", "Cloud", "CloudHost", "DEFAULT_HOSTS", "PHYSNET", "PHYS_BRIDGE", "free_port_offset", "token"]
