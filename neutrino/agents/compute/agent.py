"""The compute agent: runs this host's instances as network namespaces.

Follows ``server``, ``port``, ``network`` and ``subnet`` on the change feed,
plans with ``planner.plan`` and applies with the system adapters:

* ``CreateNamespace``: ``ip netns add vm-<server id>`` (loopback up);
* ``PlugPort``: veth ``tap<port[:11]>`` / ``eth<N>`` (MAC, MTU; checksum
  offload off on both ends, which the userspace datapath needs for TCP), the
  tap end added to br-int with ``iface-id``, ``attached-mac``, ``vm-uuid`` and
  ``iface-status=active`` — exactly what an OVS agent looks for;
* ``ConfigureGuest``: once the port is ACTIVE, the guest's addresses, default
  route and ``/etc/netns/<ns>/resolv.conf``;
* ``DestroyServer``: the OVS ports, the namespace (its veth ends go with it).

Server state (BUILD → ACTIVE) is reported through ``/neutrino/v1/servers``.
The machine (namespaces, links, processes, OVS) is changed only through the
``Host`` the driver is given.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from neutrino.agents.compute import guest
from neutrino.agents.compute import planner as pl
from neutrino.agents.ovs.vif_hint import local_vlan_hint
from neutrino.config import Config
from neutrino.feed.state import State
from neutrino.system import ovsdb as sysovs
from neutrino.system.host import Host

LOG = logging.getLogger(__name__)
ETC_NETNS = Path("/etc/netns")


class ComputeDriver:
    agent_type = "Compute agent"
    binary = "neutrino-compute"
    topic = "compute"
    feed_types = ("server", "port", "network", "subnet", "dhcp_binding")

    def __init__(
        self,
        host: str,
        system: Host,
        integration_bridge: str = "br-int",
        marks: Path | None = None,
        *,
        etc_netns: Path = ETC_NETNS,
    ) -> None:
        self.host = host  # this host's name (``binding:host_id``)
        self.system = system  # the machine it changes
        self.marks = marks  # one file per instance made here (``down --purge`` removes them)
        #: Where ``ip netns exec`` finds per-namespace files (``<ns>/resolv.conf``): a test's tmp dir.
        self.etc_netns = etc_netns
        self.ovs = system.ovs
        self.bridge = integration_bridge
        self.ns = self.ovs.netns  # where the host ends of the veths live (with OVS)
        self.configured: dict[str, set[str]] = {}  # server id -> configured port ids
        self.reported: dict[str, str] = {}  # server id -> state reported
        self.client: Any = None  # set by the loop owner (FeedClient)
        self._metadata_readers: dict[str, threading.Thread] = {}
        self.instances = 0

    def configurations(self) -> dict[str, Any]:
        return {"instances": self.instances, "integration_bridge": self.bridge}

    # --- observe ------------------------------------------------------------------------
    def _owned(self, ovs_state: sysovs.OvsState) -> set[str]:
        """Ids of the servers this host made: marked in ``marks``, or plugged into our bridge.

        Instance namespaces are machine-wide names, so other hosts' (another
        state dir's compute agent on the same machine) are visible too; they
        must be neither observed nor destroyed here.
        """
        owned = {p.name for p in self.marks.iterdir()} if self.marks is not None and self.marks.is_dir() else set()
        for p in ovs_state.ports_on(self.bridge):
            vm = p.iface.external_ids.get("vm-uuid") if p.iface else None
            if vm:
                owned.add(vm)
        return owned

    def _guest_dir(self, server_id: str) -> Path:
        base = self.marks.parent if self.marks is not None else Path("/run/neutrino")
        return base / "guests" / server_id

    def _dhcp_bound(self, server_id: str, index: int, port: pl.GuestPort) -> bool:
        """Has the guest's DHCP client configured exactly the port's address?"""
        want = {a.split("/")[0] for a in port.addresses if ":" not in a}
        have = {
            str(a.address.ip)
            for a in self.system.list_addresses(netns=pl.netns_name(server_id), dev=f"eth{index}")
            if a.address.version == 4
        }
        return bool(want) and want <= have

    def _dhcp_client_runs(self, server_id: str, index: int) -> bool:
        """Does the guest's DHCP client for ``eth<index>`` run?  (After a crash the address it
        configured is still there, but nothing renews it: it must be started again.)"""
        run_dir = self._guest_dir(server_id)
        return self.system.process_alive(
            guest.udhcpc_spec(pl.netns_name(server_id), f"eth{index}", run_dir, run_dir / "udhcpc.sh", server_id)
        )

    def observe(self, desired: dict[str, pl.GuestServer] | None = None) -> dict[str, pl.ObservedServer]:
        ovs_state = self.ovs.observe()
        owned = self._owned(ovs_state)
        names = [n for n in self.system.list_netns() if n.startswith(pl.NS_PREFIX) and n[len(pl.NS_PREFIX) :] in owned]
        plugged = {p.name for p in ovs_state.ports_on(self.bridge)}
        host_links = {link.name for link in self.system.list_links(netns=self.ns)}
        out = {}
        for name in names:
            sid = name[len(pl.NS_PREFIX) :]
            taps = frozenset(t for t in host_links if t.startswith("tap"))
            configured = set(self.configured.get(sid, set()))
            srv = (desired or {}).get(sid)
            for i, port in enumerate(srv.ports if srv else ()):
                if port.dhcp and pl.tap_name(port.port_id) in plugged:
                    try:
                        if self._dhcp_bound(sid, i, port) and self._dhcp_client_runs(sid, i):
                            configured.add(port.port_id)
                    except Exception:  # noqa: BLE001 - a half-made guest is simply not configured yet
                        pass
            out[sid] = pl.ObservedServer(sid, taps, frozenset(plugged), frozenset(configured))
        return out

    # --- apply -----------------------------------------------------------------------------
    def apply(self, op: pl.Op) -> None:
        if isinstance(op, pl.CreateNamespace):
            if self.marks is not None:
                self.marks.mkdir(parents=True, exist_ok=True)
                (self.marks / op.server_id).touch()
            self.system.ensure_netns(pl.netns_name(op.server_id))
        elif isinstance(op, pl.PlugPort):
            self._plug(op)
        elif isinstance(op, pl.ConfigureGuest):
            self._configure(op)
        elif isinstance(op, pl.DestroyServer):
            self._destroy(op)

    def _plug(self, op: pl.PlugPort) -> None:
        ns = pl.netns_name(op.server_id)
        tap, guest = pl.tap_name(op.port.port_id), f"eth{op.index}"
        recreated = self.system.get_link(guest, netns=ns) is None
        if recreated:
            self.system.remove_link(tap, netns=self.ns)  # a half-made pair from an earlier attempt
            self.system.ensure_veth(tap, guest, netns=self.ns, peer_netns=ns, mtu=op.port.mtu, peer_mac=op.port.mac)
            # The guest starts over: its addresses must be configured again.
            self.configured.get(op.server_id, set()).discard(op.port.port_id)
        self.system.set_link(tap, netns=self.ns, up=True, mtu=op.port.mtu)
        self.system.set_link(guest, netns=ns, up=True, mtu=op.port.mtu, mac_address=op.port.mac)
        self.system.disable_offloads(tap, netns=self.ns)
        self.system.disable_offloads(guest, netns=ns)
        # The network's local VLAN on this host, when the OVS agent already has one, goes
        # into the same transaction: the agent then only installs flows (vif_hint).
        hint = local_vlan_hint(self.ovs, op.port.network_id) if op.port.network_id else None
        tag, other_config = hint if hint else (None, {})
        # A re-created device of the same name is not picked up again by ovs-vswitchd
        # while its port row stays: replace the row in the same transaction.
        self.ovs.transact(
            [
                *([sysovs.DelPort(tap, self.bridge)] if recreated else []),
                sysovs.AddPort(
                    self.bridge,
                    tap,
                    tag=tag,
                    other_config=other_config,
                    external_ids={
                        "iface-id": op.port.port_id,
                        "attached-mac": op.port.mac,
                        "vm-uuid": op.server_id,
                        "iface-status": "active",
                    },
                ),
            ]
        )

    def _configure(self, op: pl.ConfigureGuest) -> None:
        ns = pl.netns_name(op.server_id)
        dev = f"eth{op.index}"
        if op.port.dhcp:
            self._start_dhcp_client(op.server_id, ns, dev)
            return
        for addr in op.port.addresses:
            self.system.ensure_address(dev, addr, netns=ns)
        if op.port.gateway and op.index == 0:
            self.system.ensure_route("default", via=op.port.gateway, netns=ns)
        if op.port.dns:
            _write_public(self.etc_netns / ns / "resolv.conf", "".join(f"nameserver {d}\n" for d in op.port.dns))
        self.configured.setdefault(op.server_id, set()).add(op.port.port_id)

    def _start_dhcp_client(self, server_id: str, ns: str, dev: str) -> None:
        run_dir = self._guest_dir(server_id)
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        script = run_dir / "udhcpc.sh"
        if not script.exists() or script.read_text() != guest.udhcpc_script():
            _write_private(script, guest.udhcpc_script(), 0o700)  # run by root's udhcpc
        resolv = self.etc_netns / ns / "resolv.conf"
        if not resolv.exists():  # must exist for `ip netns exec` to bind-mount it
            _write_public(resolv, "")
        spec = guest.udhcpc_spec(ns, dev, run_dir, script, server_id)
        if not self.system.process_alive(spec):
            self.system.process_start(spec)

    def _stop_dhcp_clients(self, server_id: str) -> None:
        run_dir = self._guest_dir(server_id)
        if run_dir.is_dir():
            for pidfile in run_dir.glob("udhcpc-*.pid"):
                dev = pidfile.stem[len("udhcpc-") :]
                self.system.process_stop(
                    guest.udhcpc_spec(pl.netns_name(server_id), dev, run_dir, run_dir / "udhcpc.sh", server_id)
                )
            shutil.rmtree(run_dir, ignore_errors=True)

    def _destroy(self, op: pl.DestroyServer) -> None:
        self._stop_dhcp_clients(op.server_id)
        ns = pl.netns_name(op.server_id)
        ovs_ports = [
            p.name
            for p in self.ovs.observe().ports_on(self.bridge)
            if p.iface and p.iface.external_ids.get("vm-uuid") == op.server_id
        ]
        if ovs_ports:
            self.ovs.transact([sysovs.DelPort(name, self.bridge) for name in ovs_ports])
        for name in ovs_ports:
            self.system.remove_link(name, netns=self.ns)
        self.system.remove_netns(ns)
        shutil.rmtree(self.etc_netns / ns, ignore_errors=True)
        self.configured.pop(op.server_id, None)
        self.reported.pop(op.server_id, None)
        if self.marks is not None:
            (self.marks / op.server_id).unlink(missing_ok=True)

    # --- the loop's entry point --------------------------------------------------------------
    def reconcile_sync(self, state: State) -> dict[str, str]:
        served = frozenset(b["network_id"] for b in state.of("dhcp_binding").values() if b.get("agent_ids"))
        desired = pl.guests_from_state(
            state.of("server"), state.of("port"), state.of("network"), state.of("subnet"), self.host, served
        )
        observed = self.observe(desired)
        for op in pl.plan(desired, observed):
            try:
                self.apply(op)
            except Exception as exc:  # noqa: BLE001 - one instance's failure must not stop the others
                LOG.warning("%s failed: %s", type(op).__name__, exc)
        observed = self.observe(desired)
        self.instances = len(desired)
        return {sid: pl.server_state(srv, observed.get(sid)) for sid, srv in desired.items()}

    async def reconcile(self, state: State, changed: bool) -> dict[str, str]:
        states = await asyncio.to_thread(self.reconcile_sync, state)
        if self.client is not None:
            for sid, st in states.items():
                if st == "ACTIVE" and self.reported.get(sid) != st:
                    srv = state.get("server", sid) or {}
                    if srv.get("status") != "ACTIVE":
                        await self.client.post(f"servers/{sid}/state", {"status": "ACTIVE", "host": self.host})
                    self.reported[sid] = st
                    if sid not in self._metadata_readers:
                        # Its own thread: it may wait a while for the metadata service and
                        # must not hold up the worker threads reconcile passes use.
                        reader = threading.Thread(
                            target=self.fetch_metadata, args=(sid,), daemon=True, name=f"metadata-{sid[:8]}"
                        )
                        self._metadata_readers[sid] = reader
                        reader.start()
        for sid in [s for s in self._metadata_readers if s not in states]:
            del self._metadata_readers[sid]  # the reader ends when the namespace is gone
        return {}

    def fetch_metadata(self, server_id: str, attempts: int = 60) -> bool:
        """The guest's boot-time metadata read (what cloud-init does first): its public
        key, hostname and user data, kept in its instance directory.  User data is
        stored, never executed.  Retries while the metadata service is not reachable yet.
        """
        ns = pl.netns_name(server_id)
        out = self._guest_dir(server_id) / "metadata"
        wanted = {
            "hostname": "latest/meta-data/hostname",
            "openssh-key": "latest/meta-data/public-keys/0/openssh-key",
            "user-data": "latest/user-data",
        }
        for _ in range(attempts):
            if not self.system.netns_exists(ns):
                return False
            got: dict[str, str | None] = {}
            for name, path in wanted.items():
                r = self.system.run(
                    ["curl", "-s", "-m", "3", "-o", "-", "-w", "\\n%{http_code}", f"http://169.254.169.254/{path}"],
                    netns=ns,
                    check=False,
                    timeout=10,
                )
                body, _, code = r.stdout.rpartition("\n")
                if code in ("200", "404"):
                    got[name] = body if code == "200" else None
            if len(got) == len(wanted) and got["hostname"]:
                out.mkdir(parents=True, exist_ok=True, mode=0o700)
                for name, text in got.items():
                    if text is not None:  # user data may hold secrets: owner only
                        _write_private(out / name, text)
                return True
            time.sleep(1)
        return False


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``path`` readable by its owner only (``mode``), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def _write_public(path: Path, text: str) -> None:
    """Write ``path`` mode 0644 in a 0755 directory: what every process of the instance's
    namespace reads (``/etc/netns/<ns>/resolv.conf`` becomes its ``/etc/resolv.conf``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o644)


def make_driver(cfg: Config, host_name: str, host: Host) -> ComputeDriver:
    return ComputeDriver(host_name, host, cfg.ovs.integration_bridge, cfg.state_dir / "instances")
