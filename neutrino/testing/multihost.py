"""Several simulated OVS hosts on one machine: a fabric netns + one netns and private OVS per host.

Follows the verified recipe (docs: shared/reference/multihost-ovs.md)::

    netns <prefix>-fabric:  Linux bridge <prefix>-und  <- u-<host> ...   underlay (VXLAN, UDP 4789)
                            Linux bridge <prefix>-phy  <- p-<host> ...   physnet (802.1Q / flat)
                            Linux bridge <prefix>-mgt  <- m-<host> ...   management (HTTP between nodes)
    netns <prefix>-<host>:  ovsdb-server + ovs-vswitchd (netdev), state in <root>/<host>/
                            br-underlay (netdev, standalone) with port und0; VTEP IP on its LOCAL port
                            phy0: the physnet veth, left for the agent's br-phys
                            mgmt0: the management veth with the host's management address
                            (only for hosts given ``mgmt_ip``; a host may also run no OVS)

* ``Fabric(prefix, base_dir)``; ``fabric.add_host(name, vtep_ip)`` -> ``Host``
  (``.ovs`` an ``Ovs`` handle, ``.of`` an ``OpenFlowTool``, ``.netns``, ``.exec(argv)``).
  One host is fine too (an all-in-one node with its own private OVS, never
  the system one).
* ``host.plug(...)`` makes an "instance" namespace wired to a bridge port
  (internal port moved into it, or a veth with offloads off).
* ``fabric.capture(dev)`` runs tcpdump inside the fabric namespace.
* ``fabric.teardown()``: stops every daemon this fabric started (by verified
  pid), deletes its namespaces (veths, taps and bridges go with them) and its
  state directory.  Idempotent; registered with ``atexit``; use the fabric as
  a context manager or from a pytest fixture's finalizer.

Why the VTEP IP sits on br-underlay's LOCAL port and not on the veth: the
userspace datapath's native tunnelling routes the outer packet through OVS's
own route table, whose output device must be an OVS bridge's LOCAL port.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import shutil
import time
import uuid as uuidlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neutrino.system import iproute, process
from neutrino.system import netns as netns_mod
from neutrino.system.errors import HostError
from neutrino.system.exec import Completed, run
from neutrino.system.ovsdb import AddBridge, AddPort, Ovs, PrivateOvs
from neutrino.testing.openflow import OpenFlowTool

LOG = logging.getLogger(__name__)

UNDERLAY_BRIDGE = "br-underlay"
UNDERLAY_DEV = "und0"
PHYSNET_DEV = "phy0"
MGMT_DEV = "mgmt0"
UNDERLAY_MTU = 1600  # room for 50 bytes of VXLAN around a 1500-byte instance frame
INSTANCE_DEV = "eth0"


@dataclass
class Instance:
    """A namespace standing in for a VM / DHCP / router port."""

    name: str
    netns: str
    dev: str  # the device inside ``netns``
    port: str  # the OVS port name on the host's bridge
    bridge: str
    mac: str | None
    ip: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None

    def exec(self, argv: Sequence[str], **kw) -> Completed:
        return run(argv, netns=self.netns, **kw)

    def ping(
        self,
        dst: str,
        *,
        count: int = 1,
        timeout: float = 2,
        check: bool = True,
        size: int | None = None,
        dont_fragment: bool = False,
    ) -> Completed:
        argv = ["ping", "-n", "-c", str(count), "-W", str(timeout), "-i", "0.2"]
        if size is not None:
            argv += ["-s", str(size)]
        if dont_fragment:
            argv += ["-M", "do"]
        return run(argv + [dst], netns=self.netns, check=check, timeout=count * (timeout + 0.5) + 5)


@dataclass
class Host:
    name: str
    netns: str
    rundir: Path
    daemons: PrivateOvs | None  # None: a host without Open vSwitch (a controller)
    vtep: ipaddress.IPv4Interface | None
    underlay_dev: str | None
    physnet_dev: str | None
    instances: dict[str, Instance] = field(default_factory=dict)
    _fabric: Fabric | None = field(default=None, repr=False)
    mgmt: ipaddress.IPv4Interface | None = None

    @property
    def ovs(self) -> Ovs:
        if self.daemons is None:
            raise HostError(f"host {self.name} runs no Open vSwitch")
        return self.daemons.ovs

    @property
    def of(self) -> OpenFlowTool:
        return OpenFlowTool(self.ovs)

    @property
    def env(self) -> dict[str, str]:
        """OVS_RUNDIR & co.: give these to anything (an agent) that must reach this host's OVS."""
        return self.ovs.env if self.daemons is not None else {}

    def exec(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kw) -> Completed:
        """Run ``argv`` in this host's namespace with its OVS environment."""
        return run(argv, netns=self.netns, env={**self.env, **(env or {})}, **kw)

    def underlay_mac(self) -> str:
        link = iproute.get_link(UNDERLAY_BRIDGE, netns=self.netns)
        if link is None or link.mac is None:
            raise HostError(f"{self.name}: {UNDERLAY_BRIDGE} has no MAC yet")
        return link.mac

    def plug(
        self,
        name: str,
        *,
        bridge: str = "br-int",
        port: str | None = None,
        ip: str | None = None,
        mac: str | None = None,
        mtu: int | None = None,
        tag: int | None = None,
        external_ids: Mapping[str, str] | None = None,
        kind: str = "veth",
    ) -> Instance:
        """Create instance namespace ``<prefix>-<name>`` attached to ``bridge``.

        ``kind="veth"``: veth ``port`` (host ns, on the bridge) <-> ``eth0``
        (instance ns, rx/tx checksum offload off).  ``kind="internal"``: an OVS
        internal port ``port`` moved into the instance ns (fragile across a
        vswitchd restart, see the recipe §7).
        """
        assert self._fabric is not None
        fab = self._fabric
        port = iproute.ifname(port or f"tap{name}"[:15])
        ns = fab._new_netns(name)
        dev = INSTANCE_DEV if kind == "veth" else port
        if kind == "veth":
            iproute.ensure_veth(port, INSTANCE_DEV, netns=self.netns, peer_netns=ns)
            iproute.set_link(port, netns=self.netns, up=True)
            iproute.disable_offloads(INSTANCE_DEV, netns=ns)
            self.ovs.transact([AddPort(bridge, port, tag=tag, external_ids=dict(external_ids or {}))])
        elif kind == "internal":
            self.ovs.transact([AddPort(bridge, port, type="internal", tag=tag, external_ids=dict(external_ids or {}))])
            iproute.move_link(port, ns, netns=self.netns)
        else:
            raise ValueError(f"unknown port kind {kind!r}")
        iproute.set_link(dev, netns=ns, mac_address=mac, mtu=mtu, up=True)
        if ip:
            iproute.ensure_address(dev, ip, netns=ns)
        inst = Instance(
            name=name,
            netns=ns,
            dev=dev,
            port=port,
            bridge=bridge,
            mac=mac.lower() if mac else None,
            ip=iproute.interface(ip) if ip else None,
        )
        self.instances[name] = inst
        return inst


@dataclass
class Capture:
    """A running tcpdump (text output, ``-nn -e -l``) in some namespace."""

    spec: process.ProcessSpec
    log_path: Path

    def stop(self) -> list[str]:
        """Stop tcpdump (SIGTERM lets it flush) and return the packet lines."""
        process.stop(self.spec)
        return self.lines()

    def lines(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        skip = ("listening on", "tcpdump:", "packets captured", "packets received", "packets dropped")
        return [ln for ln in text.splitlines() if ln.strip() and not any(s in ln for s in skip)]


class Fabric:
    """The fabric namespace and the hosts attached to it (see module docstring)."""

    def __init__(
        self, prefix: str, base_dir: Path | str, *, underlay_mtu: int = UNDERLAY_MTU, physnet_mtu: int = 1500
    ) -> None:
        if not prefix or len(prefix) > 8 or not prefix.replace("-", "").isalnum():
            raise ValueError(f"prefix must be 1-8 alphanumeric chars: {prefix!r}")
        self.prefix = prefix
        self.root = Path(base_dir) / f"fabric-{prefix}"
        self.netns = f"{prefix}-fabric"
        self.underlay_bridge = f"{prefix}-und"
        self.physnet_bridge = f"{prefix}-phy"
        self.mgmt_bridge = f"{prefix}-mgt"
        self.underlay_mtu = underlay_mtu
        self.physnet_mtu = physnet_mtu
        self.hosts: dict[str, Host] = {}
        self.uuid = f"neutrino-fabric-{prefix}-{uuidlib.uuid4().hex[:12]}"
        self._namespaces: list[str] = []  # every netns we created, in creation order
        self._processes: list[process.ProcessSpec] = []
        self._started = False
        self._torn_down = False
        self._created_root = False

    # ---- lifecycle --------------------------------------------------------

    def __enter__(self) -> Fabric:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def start(self) -> Fabric:
        if self._started:
            return self
        if self._torn_down:
            raise HostError("this Fabric was torn down; make a new one")
        atexit.register(self.teardown)
        self._started = True
        if self.root.exists() and any(self.root.iterdir()):
            raise HostError(f"{self.root} exists and is not empty (stale state?)")
        self.root.mkdir(parents=True, exist_ok=True)
        self._created_root = True
        self._new_netns_exact(self.netns)
        cmds = []
        for br, mtu in (
            (self.underlay_bridge, self.underlay_mtu),
            (self.physnet_bridge, self.physnet_mtu),
            (self.mgmt_bridge, 1500),
        ):
            cmds.append(["link", "add", br, "mtu", str(mtu), "type", "bridge"])
            cmds.append(["link", "set", "dev", br, "up"])
        iproute.batch(cmds, netns=self.netns)
        return self

    def _new_netns_exact(self, name: str) -> str:
        if netns_mod.netns_exists(name):
            raise HostError(f"network namespace {name} already exists; refusing to reuse it")
        netns_mod.ensure_netns(name)
        self._namespaces.append(name)
        return name

    def _new_netns(self, name: str) -> str:
        return self._new_netns_exact(f"{self.prefix}-{name}")

    def add_host(
        self,
        name: str,
        vtep_ip: str | ipaddress.IPv4Interface | None = None,
        *,
        physnet: bool = True,
        seed_neighbors: bool = True,
        mgmt_ip: str | ipaddress.IPv4Interface | None = None,
        ovs: bool = True,
    ) -> Host:
        """Create host ``name``: netns, private OVS (unless ``ovs=False``), underlay (if
        ``vtep_ip``), physnet veth, management veth (if ``mgmt_ip``).

        ``vtep_ip`` like ``"192.168.99.1/24"`` (a bare address gets /24).  With
        ``seed_neighbors`` every host's userspace tunnel ARP cache learns every
        other VTEP's MAC, so the first encapsulated packet is not dropped.
        ``mgmt_ip`` goes on ``mgmt0``, a plain veth on the fabric's management
        bridge: the nodes' HTTP (agents -> API server) runs there.
        """
        if vtep_ip is not None and not ovs:
            raise ValueError("a VTEP needs Open vSwitch (br-underlay)")
        self.start()
        if name in self.hosts:
            raise HostError(f"host {name} already exists")
        if len(name) > 12 or not name.isalnum():
            raise ValueError(f"host name must be 1-12 alphanumeric chars: {name!r}")
        ns = self._new_netns(name)
        rundir = self.root / name
        daemons = PrivateOvs(rundir, ns, uuid=f"{self.uuid}-{name}") if ovs else None
        host = Host(
            name=name,
            netns=ns,
            rundir=rundir,
            daemons=daemons,
            vtep=None,
            underlay_dev=None,
            physnet_dev=None,
            _fabric=self,
        )
        self.hosts[name] = host
        if daemons is not None:
            self._processes += [daemons.ovsdb_server, daemons.vswitchd]
            daemons.start()
        if mgmt_ip is not None:
            mgmt = ipaddress.IPv4Interface(mgmt_ip if "/" in str(mgmt_ip) else f"{mgmt_ip}/24")
            self._wire(host, MGMT_DEV, f"m-{name}", self.mgmt_bridge, 1500)
            iproute.ensure_address(MGMT_DEV, mgmt, netns=ns)
            host.mgmt = mgmt
        if vtep_ip is not None:
            vtep = ipaddress.IPv4Interface(vtep_ip if "/" in str(vtep_ip) else f"{vtep_ip}/24")
            self._wire(host, UNDERLAY_DEV, f"u-{name}", self.underlay_bridge, self.underlay_mtu)
            host.ovs.transact(
                [AddBridge(UNDERLAY_BRIDGE, datapath_type="netdev"), AddPort(UNDERLAY_BRIDGE, UNDERLAY_DEV)]
            )
            iproute.ensure_address(UNDERLAY_BRIDGE, vtep, netns=ns)
            iproute.set_link(UNDERLAY_BRIDGE, netns=ns, up=True)
            host.vtep = vtep
            host.underlay_dev = UNDERLAY_DEV
        if physnet:
            self._wire(host, PHYSNET_DEV, f"p-{name}", self.physnet_bridge, self.physnet_mtu)
            host.physnet_dev = PHYSNET_DEV
        if seed_neighbors and host.vtep is not None:
            self.seed_neighbors()
        return host

    def _wire(self, host: Host, dev: str, peer: str, bridge: str, mtu: int) -> None:
        iproute.ensure_veth(dev, peer, netns=host.netns, peer_netns=self.netns, mtu=mtu)
        iproute.disable_offloads(dev, netns=host.netns)
        iproute.disable_offloads(peer, netns=self.netns)
        iproute.set_link(dev, netns=host.netns, up=True)
        iproute.set_link(peer, netns=self.netns, master=bridge, up=True)

    def seed_neighbors(self) -> None:
        """``tnl/neigh/set`` every other VTEP's br-underlay MAC on every host."""
        vteps = [(h, h.vtep, h.underlay_mac()) for h in self.hosts.values() if h.vtep is not None]
        for h, _, _ in vteps:
            for other, other_vtep, other_mac in vteps:
                if other is not h:
                    h.ovs.set_tunnel_neighbor(UNDERLAY_BRIDGE, str(other_vtep.ip), other_mac)

    def namespace(self, name: str) -> str:
        """A bare extra namespace ``<prefix>-<name>`` owned (and removed) by the fabric."""
        return self._new_netns(name)

    # ---- observation helpers ----------------------------------------------

    def exec(self, argv: Sequence[str], **kw) -> Completed:
        """Run ``argv`` in the fabric namespace."""
        return run(argv, netns=self.netns, **kw)

    def capture(
        self,
        dev: str,
        bpf: Sequence[str] = (),
        *,
        netns: str | None = None,
        extra: Sequence[str] = ("-e",),
        timeout: float = 5,
    ) -> Capture:
        """Start tcpdump on ``dev`` (in the fabric netns unless ``netns``); returns
        once it is listening.  ``Capture.stop()`` returns the packet lines."""
        self.start()
        n = len(self._processes)
        cap_dir = self.root / "captures"
        cap_dir.mkdir(parents=True, exist_ok=True)
        log_path = cap_dir / f"{n}-{dev}.txt"
        spec = process.ProcessSpec(
            argv=("tcpdump", "-i", dev, "-nn", "-l", "-U", *extra, *bpf),
            pidfile=cap_dir / f"{n}-{dev}.pid",
            netns=netns or self.netns,
            uuid=f"{self.uuid}-cap{n}",
            log_path=log_path,
        )
        self._processes.append(spec)
        process.start(spec, timeout=timeout)
        deadline = time.monotonic() + timeout
        while "listening on" not in (log_path.read_text(errors="replace") if log_path.exists() else ""):
            # Asked twice: while ``ip netns exec`` execs tcpdump, /proc/<pid>/environ (where the
            # process's uuid is) can read empty for a moment, and one such read is no exit.
            if not process.alive(spec):
                time.sleep(0.1)
                if not process.alive(spec):
                    raise HostError(f"tcpdump on {dev} exited: {log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise HostError(f"tcpdump on {dev} did not start listening")
            time.sleep(0.02)
        return Capture(spec=spec, log_path=log_path)

    # ---- teardown ---------------------------------------------------------

    def teardown(self) -> None:
        """Remove everything this fabric created.  Safe to call twice, or after a failed start."""
        if self._torn_down or not self._started:
            self._torn_down = True
            return
        self._torn_down = True
        errors: list[str] = []
        # 1. Daemons and captures, by verified pid, in parallel.
        try:
            process.stop_all(self._processes)
        except Exception as exc:  # noqa: BLE001 - keep going: namespaces and dirs must still go
            errors.append(f"stopping processes: {exc}")
        # 2. Namespaces (their veths, taps and bridges vanish with them).  A pid
        #    still inside one of OUR namespaces was started by this fabric's user.
        for ns in reversed(self._namespaces):
            try:
                for pid in netns_mod.netns_pids(ns):
                    LOG.warning("killing pid %d left in namespace %s", pid, ns)
                    process.stop_pid(pid, timeout=2)
            except Exception as exc:  # noqa: BLE001 - keep going: the namespace must still be removed
                errors.append(f"pids in {ns}: {exc}")
            try:
                netns_mod.remove_netns(ns)
            except Exception as exc:  # noqa: BLE001 - keep going: the other namespaces must still go
                errors.append(f"removing netns {ns}: {exc}")
        # 3. State directory (a leftover conf.db would resurrect old bridges).
        if self._created_root:
            shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.teardown)
        if errors:
            raise HostError("fabric teardown incomplete: " + "; ".join(errors))

    def leftovers(self) -> list[str]:
        """What of this fabric still exists (empty after a clean teardown)."""
        out = [f"netns {ns}" for ns in self._namespaces if netns_mod.netns_exists(ns)]
        out += [f"pid {process.read_pidfile(s.pidfile)} ({s.argv[0]})" for s in self._processes if process.alive(s)]
        if self.root.exists():
            out.append(f"dir {self.root}")
        return out


def vxlan_port_name(remote_ip: str) -> str:
    """Neutron's tunnel port name for an IPv4 remote: ``vxlan-`` + 8 hex digits."""
    return "vxlan-" + "".join(f"{int(o):02x}" for o in str(remote_ip).split("."))


def mesh(fabric: Fabric) -> Iterator[tuple[Host, Host]]:
    """Every ordered pair of distinct hosts that have a VTEP."""
    hosts = [h for h in fabric.hosts.values() if h.vtep is not None]
    for a in hosts:
        for b in hosts:
            if a is not b:
                yield a, b


__all__ = [
    "Capture",
    "Fabric",
    "Host",
    "Instance",
    "MGMT_DEV",
    "PHYSNET_DEV",
    "UNDERLAY_BRIDGE",
    "UNDERLAY_DEV",
    "mesh",
    "vxlan_port_name",
]
