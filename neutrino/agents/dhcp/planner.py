"""Pure planner of the DHCP agent: desired networks + observed namespaces -> ops.

``plan(cfg, desired, observed)`` compares, per network, what the server
wants (``NetworkView``, only networks scheduled to this agent) with what the
host has (``ObservedDhcp``) and returns the ops that close the gap, in the
order they must run.  It is convergent: once the ops are applied, planning
against the new observed state yields no op (tested).

Per network with at least one DHCP-enabled subnet (and admin up):

1. ``EnsureNamespace`` when ``qdhcp-<net>`` is missing.
2. ``EnsureDhcpPort`` when this host's DHCP port (``device_id``
   ``dhcp<uuid5(host)>-<net>``) is missing or its fixed IPs do not cover
   exactly the DHCP-enabled subnets; nothing else is planned for the network
   in that pass (the next pass sees the port in the feed).
3. ``UnplugTap`` for any other device in the namespace; ``PlugTap``
   (create/ensure: MAC, MTU, up) when the tap is missing or its MAC/MTU differ.
4. ``SetAddresses`` when the tap's addresses or the default routes differ.
5. Files (``host``, ``addn_hosts``, ``opts``, ``interface``) compared by content:
   dnsmasq not running => ``WriteFiles`` (+ bootstrap ``leases``) and
   ``StartDnsmasq``; running with another command line => the same with
   ``RestartDnsmasq`` (ranges, MTU, DNS servers are only read at start);
   running with the same command line => ``WriteFiles`` of the changed files,
   ``ReleaseLeases`` for addresses gone from ``host`` (IPv6 ones only when
   the lease file knows them), and
   ``ReloadDnsmasq`` (SIGHUP) if host/addn_hosts/opts changed.

``Teardown`` for networks observed here but no longer desired, admin-down,
or without a DHCP-enabled subnet.

One network never blocks another: a network whose view is ``held`` (a subnet
or this host's DHCP port cannot be rendered, see ``model``) gets no op at
all, not even a teardown, and a network whose planning fails likewise; both
are reported through ``problems`` with the entries the renderers skipped.

``Coalescer`` rate-limits reloads during bursts of port events.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from neutrino.agents.dhcp import render
from neutrino.agents.dhcp.model import (
    DhcpConfig,
    NetworkView,
    PortView,
    dhcp_device_id,
    namespace_name,
    tap_name,
)

__all__ = [
    "RELOAD_FILES",
    "Coalescer",
    "EnsureDhcpPort",
    "EnsureNamespace",
    "Lease",
    "ObservedDevice",
    "ObservedDhcp",
    "Op",
    "PlugTap",
    "ReleaseLeases",
    "ReloadDnsmasq",
    "RestartDnsmasq",
    "SetAddresses",
    "StartDnsmasq",
    "Teardown",
    "UnplugTap",
    "WriteFiles",
    "desired_files",
    "host_file_leases",
    "plan",
]

LOG = logging.getLogger(__name__)

#: Files dnsmasq re-reads on SIGHUP.
RELOAD_FILES = frozenset({render.FILE_HOST, render.FILE_ADDN_HOSTS, render.FILE_OPTS})


# --- observed state ----------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedDevice:
    """A device inside ``qdhcp-<net>`` (``lo`` excluded).

    ``addresses`` as ``ip/prefixlen``; ``mac``/``mtu`` None when unknown
    (then they are not compared).
    """

    name: str
    addresses: frozenset[str] = frozenset()
    mac: str | None = None
    mtu: int | None = None


@dataclass(frozen=True)
class ObservedDhcp:
    """What the host has for one network.

    * ``namespace``: ``qdhcp-<net>`` exists.
    * ``dnsmasq_alive``: a dnsmasq whose cmdline holds the network id runs;
      ``argv`` is its command line from ``dnsmasq`` on (any ``ip netns exec``
      wrapper stripped).
    * ``files``: current contents of the conf dir files (name -> text).
    * ``devices``: devices in the namespace by name; ``default_route`` the
      namespace's default gateways (IPv4 first, then IPv6).
    """

    namespace: bool = False
    dnsmasq_alive: bool = False
    argv: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    devices: Mapping[str, ObservedDevice] = field(default_factory=dict)
    default_route: tuple[str, ...] = ()


# --- ops ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnsureDhcpPort:
    """Create (or adopt a ``reserved_dhcp_port``) or update this host's DHCP port via the API.

    ``device_owner=network:dhcp``, ``device_id``, ``binding:host_id=<host>``,
    and fixed IPs on exactly ``subnet_ids`` (existing IPs kept, others
    requested by subnet).
    """

    network_id: str
    subnet_ids: tuple[str, ...]
    device_id: str = ""


@dataclass(frozen=True)
class EnsureNamespace:
    """``ip netns add qdhcp-<net>``, lo up, ``ip_nonlocal_bind=1``, IPv6 ``accept_ra=0``."""

    network_id: str

    @property
    def namespace(self) -> str:
        return namespace_name(self.network_id)


@dataclass(frozen=True)
class UnplugTap:
    """Remove a stale device from the namespace (and its OVS port)."""

    network_id: str
    device: str


@dataclass(frozen=True)
class PlugTap:
    """Ensure the DHCP tap: OVS internal port on br-int (iface-id, attached-mac),
    in the namespace, with the port's MAC and ``mtu``, up.  Idempotent."""

    network_id: str
    port: PortView
    mtu: int

    @property
    def device(self) -> str:
        return tap_name(self.port.id)


@dataclass(frozen=True)
class SetAddresses:
    """Make the tap's addresses exactly ``addresses`` and the namespace's
    default routes ``default_route`` (none of a version => remove it)."""

    network_id: str
    device: str
    addresses: tuple[str, ...]
    default_route: tuple[str, ...]


@dataclass(frozen=True)
class WriteFiles:
    """Atomically (write + rename) replace these files of the conf dir."""

    network_id: str
    files: Mapping[str, str]


@dataclass(frozen=True)
class Lease:
    """A lease to release.  IPv6 ones carry what ``dhcp_release6`` needs, from the lease file:
    ``client_id`` (client DUID), ``iaid`` and ``server_id`` (the file's ``duid`` line)."""

    ip: str
    mac: str
    client_id: str | None = None
    iaid: str | None = None
    server_id: str | None = None


@dataclass(frozen=True)
class ReleaseLeases:
    """Release leases of addresses gone from the host file, so they can be reused at once.

    IPv4: ``dhcp_release <device> <ip> <mac> [<client_id>]``.  IPv6:
    ``dhcp_release6 --iface <device> --ip <ip> --client-id <client_id>
    --server-id <server_id> --iaid <iaid>`` (only leases found in the lease
    file are listed).  Run inside the namespace.
    """

    network_id: str
    device: str
    leases: tuple[Lease, ...]


@dataclass(frozen=True)
class StartDnsmasq:
    """``ip netns exec qdhcp-<net> <argv>``; wait for the pid file."""

    network_id: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class ReloadDnsmasq:
    """SIGHUP: dnsmasq re-reads host, addn_hosts and opts (not its command line)."""

    network_id: str


@dataclass(frozen=True)
class RestartDnsmasq:
    """Stop (SIGTERM, SIGKILL after 5 s) and start with ``argv``."""

    network_id: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Teardown:
    """Stop dnsmasq (and the metadata proxy), unplug ``devices``, release the
    DHCP port, delete the namespace and the conf dir.  Idempotent."""

    network_id: str
    devices: tuple[str, ...] = ()


Op = (
    EnsureDhcpPort
    | EnsureNamespace
    | UnplugTap
    | PlugTap
    | SetAddresses
    | WriteFiles
    | ReleaseLeases
    | StartDnsmasq
    | ReloadDnsmasq
    | RestartDnsmasq
    | Teardown
)


# --- helpers -----------------------------------------------------------------------------
def desired_files(
    cfg: DhcpConfig, net: NetworkView, dhcp_port: PortView, skipped: list[str] | None = None
) -> dict[str, str]:
    """The compared conf files: ``host``, ``addn_hosts``, ``opts``, ``interface`` (not ``leases``);
    lines the renderers refused are named in ``skipped``."""
    return {
        render.FILE_HOST: render.hosts_file(cfg, net, skipped),
        render.FILE_ADDN_HOSTS: render.addn_hosts_file(cfg, net, skipped),
        render.FILE_OPTS: render.opts_file(cfg, net, skipped),
        render.FILE_INTERFACE: tap_name(dhcp_port.id),
    }


def _ip_or_none(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def host_file_leases(text: str) -> set[Lease]:
    """The (ip, mac, client id) entries of a ``host`` file (lines without an address skipped)."""
    out = set()
    for line in text.splitlines():
        fields = line.strip().split(",")
        if len(fields) < 2:
            continue
        client_id = next((f[3:] for f in fields[1:] if f.startswith("id:")), None)
        for f in fields[1:]:
            if f.startswith("[") and "]" in f:
                ip = _ip_or_none(f[1 : f.index("]")])
            else:
                ip = _ip_or_none(f)
            if ip is not None:
                out.add(Lease(ip, fields[0].lower(), client_id))
                break
    return out


def _ipv6_leases(leases_text: str) -> dict[str, Lease]:
    """IPv6 lease lines (``<expiry> <iaid> <ip> <hostname> <client duid>``) by address."""
    server_id = None
    out = {}
    for line in leases_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "duid":
            server_id = fields[1]
        elif len(fields) >= 5:
            ip = _ip_or_none(fields[2])
            if ip is not None and ":" in ip:
                out[ip] = Lease(ip, "", fields[4], fields[1], server_id)
    return {ip: replace(le, server_id=server_id) for ip, le in out.items()}


def _releases(obs: ObservedDhcp, new_host_file: str) -> list[Lease]:
    gone = host_file_leases(obs.files.get(render.FILE_HOST, "")) - host_file_leases(new_host_file)
    v6 = _ipv6_leases(obs.files.get(render.FILE_LEASES, ""))
    out = []
    for le in gone:
        if ":" not in le.ip:
            out.append(le)
        elif le.ip in v6 and v6[le.ip].server_id:
            out.append(replace(v6[le.ip], mac=le.mac))
    return sorted(out, key=lambda le: (le.ip, le.mac))


def _norm_addrs(addrs: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    out = set()
    for a in addrs:
        try:
            out.add(str(ipaddress.ip_interface(a)))
        except ValueError:
            out.add(a)
    return frozenset(out)


def _norm_ips(ips: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_ip_or_none(ip) or ip for ip in ips)


def _port_ready(net: NetworkView, port: PortView | None) -> bool:
    want = {s.id for s in net.dhcp_subnets}
    return port is not None and {f.subnet_id for f in port.fixed_ips} == want


# --- the planner -------------------------------------------------------------------------
def _plan_network(cfg: DhcpConfig, net: NetworkView, obs: ObservedDhcp, skipped: list[str] | None = None) -> list[Op]:
    ops: list[Op] = []
    if not obs.namespace:
        ops.append(EnsureNamespace(net.id))
    port = net.dhcp_port(cfg.host)
    if port is None or not _port_ready(net, port):
        ops.append(EnsureDhcpPort(net.id, tuple(s.id for s in net.dhcp_subnets), dhcp_device_id(cfg.host, net.id)))
        return ops

    dev = tap_name(port.id)
    for stale in sorted(set(obs.devices) - {dev}):
        ops.append(UnplugTap(net.id, stale))
    cur = obs.devices.get(dev)
    if (
        cur is None
        or (cur.mac is not None and cur.mac.lower() != port.mac)
        or (cur.mtu is not None and net.mtu > 0 and cur.mtu != net.mtu)
    ):
        ops.append(PlugTap(net.id, port, net.mtu))
    addrs = render.interface_addresses(cfg, net, port)
    route = render.default_route(net)
    if (
        cur is None
        or _norm_addrs(cur.addresses) != _norm_addrs(addrs)
        or _norm_ips(obs.default_route) != _norm_ips(route)
    ):
        ops.append(SetAddresses(net.id, dev, addrs, route))

    files = desired_files(cfg, net, port, skipped)
    changed = {k: v for k, v in files.items() if obs.files.get(k) != v}
    argv = tuple(render.dnsmasq_argv(cfg, net, port, skipped=skipped))
    if not obs.dnsmasq_alive or tuple(obs.argv) != argv:
        changed[render.FILE_LEASES] = render.leases_file(cfg, net, obs.files.get(render.FILE_LEASES, ""), skipped)
        ops.append(WriteFiles(net.id, changed))
        ops.append(StartDnsmasq(net.id, argv) if not obs.dnsmasq_alive else RestartDnsmasq(net.id, argv))
        return ops
    if changed:
        ops.append(WriteFiles(net.id, changed))
    if render.FILE_HOST in changed:
        gone = _releases(obs, changed[render.FILE_HOST])
        if gone:
            ops.append(ReleaseLeases(net.id, dev, tuple(gone)))
    if RELOAD_FILES & changed.keys():
        ops.append(ReloadDnsmasq(net.id))
    return ops


def _wanted(net: NetworkView) -> bool:
    return net.admin_state_up and bool(net.dhcp_subnets)


def plan(
    cfg: DhcpConfig,
    desired: Mapping[str, NetworkView],
    observed: Mapping[str, ObservedDhcp],
    problems: dict[str, list[str]] | None = None,
) -> list[Op]:
    """All ops for this pass: teardowns first, then each network (sorted by id).

    ``desired`` holds only networks scheduled to this agent; ``observed``
    every network with a namespace, conf dir or dnsmasq on this host.
    ``problems`` (if given) gets, per network, what was left out or why the
    network was left alone (held, or its planning failed).
    """
    found: dict[str, list[str]] = {}
    ops: list[Op] = []
    for nid in sorted(observed):
        net = desired.get(nid)
        if net is None or (not _wanted(net) and not net.held):
            ops.append(Teardown(nid, tuple(sorted(observed[nid].devices))))
    for nid in sorted(desired):
        net = desired[nid]
        if net.problems:
            found.setdefault(nid, []).extend(net.problems)
        if net.held:
            continue
        if not _wanted(net):
            # Our port may outlive the namespace (e.g. agent restarted meanwhile).
            if nid not in observed and net.dhcp_port(cfg.host) is not None:
                ops.append(Teardown(nid))
            continue
        skipped: list[str] = []
        try:
            ops += _plan_network(cfg, net, observed.get(nid, ObservedDhcp()), skipped)
        except Exception as exc:  # noqa: BLE001 - one network's data must not stop the others
            LOG.warning("planning network %s failed: %r", nid, exc)
            skipped.append(f"not planned ({type(exc).__name__}: {str(exc)[:120]}); left as it is")
        if skipped:
            found.setdefault(nid, []).extend(skipped)
    if problems is not None:
        problems.update(found)
    return ops


# --- reload coalescing -------------------------------------------------------------------
K = TypeVar("K", bound=Hashable)


class Coalescer(Generic[K]):
    """At most one reload per key per ``interval`` seconds, none lost.

    The executor calls ``request(net)`` instead of sending SIGHUP (the files
    are already written), then on every tick sends SIGHUP to each network of
    ``due()`` and sleeps until ``next_due()``.  A first request after a quiet
    period is due at once; requests within ``interval`` of the last flush are
    merged into a single flush at ``last + interval``.  The clock is injected
    (``time.monotonic`` in production).
    """

    def __init__(self, clock: Callable[[], float], interval: float = 0.2) -> None:
        self._clock = clock
        self.interval = interval
        self._pending: set[K] = set()
        self._last: dict[K, float] = {}

    @property
    def pending(self) -> frozenset[K]:
        return frozenset(self._pending)

    def request(self, key: K) -> None:
        """A reload of ``key`` is wanted."""
        self._pending.add(key)

    def forget(self, key: K) -> None:
        """Drop any pending reload (``key`` was restarted or torn down)."""
        self._pending.discard(key)

    def _due_at(self, key: K) -> float:
        last = self._last.get(key)
        return float("-inf") if last is None else last + self.interval

    def due(self) -> list[K]:
        """Keys to reload now (sorted when possible); they count as flushed now."""
        now = self._clock()
        ready = [k for k in self._pending if self._due_at(k) <= now]
        for k in ready:
            self._pending.discard(k)
            self._last[k] = now
        # Forget flush times old enough not to matter, so the map stays small.
        for k in [k for k, t in self._last.items() if now - t >= self.interval]:
            if k not in self._pending:
                del self._last[k]
        try:
            return sorted(ready)  # type: ignore[type-var]  # keys need not be orderable: see the except
        except TypeError:
            return ready

    def next_due(self) -> float | None:
        """Clock time at which the earliest pending key becomes due, or None."""
        if not self._pending:
            return None
        earliest = min(self._due_at(k) for k in self._pending)
        return self._clock() if earliest == float("-inf") else earliest
