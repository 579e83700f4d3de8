"""Links, addresses, routes, sysctls and offloads (iproute2, sysctl, ethtool).

Typed values in, argv out: the ``*_argv`` / ``*_cmd`` helpers are pure and
unit-tested; the verbs run them through a ``Runner`` (default
``neutrino.system.exec.run``).  Every verb takes ``netns=`` (``None`` = the
caller's namespace) and uses ``ip -n NS`` rather than a shell.  Verbs named
``ensure_*``/``remove_*`` are idempotent.  Several ``ip`` commands that belong
together go through ``batch()`` (one ``ip -batch -`` process, stops at the
first failure); ``batch_force()`` runs a whole script (``ip -force -batch -``, one process
for any number of commands, e.g. everything a router's namespace needs) and returns the
lines that failed.  Observers (``list_links``, ``get_link``, ``list_addresses``,
``list_routes``) parse ``ip -j`` output into frozen dataclasses.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from neutrino.system.errors import CommandFailed, DeviceExists, DeviceNotFound, translate
from neutrino.system.exec import Runner, run

IFNAMSIZ = 16
_IFNAME = re.compile(r"^[^\s/:]{1,15}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: ``ethtool -K`` features turned off by ``disable_offloads`` by default: what
#: userspace OVS needs on the namespace end of a veth (it never completes
#: CHECKSUM_PARTIAL packets read through AF_PACKET).  ``tx off`` also clears TSO.
DEFAULT_OFFLOADS_OFF = ("rx", "tx")


# --------------------------------------------------------------------------
# Typed values
# --------------------------------------------------------------------------


def ifname(name: str) -> str:
    """Return ``name`` if it is a valid Linux interface name (1-15 chars, no blanks, '/', ':')."""
    if not _IFNAME.match(name):
        raise ValueError(f"invalid interface name: {name!r}")
    return name


def mac(value: str) -> str:
    """Normalise a MAC address to lower-case ``aa:bb:cc:dd:ee:ff``."""
    v = value.strip().lower()
    if not _MAC.match(v):
        raise ValueError(f"invalid MAC address: {value!r}")
    return v


def interface(value: str | IPInterface) -> IPInterface:
    """``"10.0.0.1/24"`` -> ``IPv4Interface``; a bare address gets a host prefix."""
    return (
        value
        if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface))
        else ipaddress.ip_interface(value)
    )


@dataclass(frozen=True)
class Link:
    name: str
    ifindex: int
    kind: str | None  # linkinfo kind: "veth", "bridge", "tun", None for lo/physical
    mtu: int
    mac: str | None
    up: bool  # administratively up (IFF_UP)
    operstate: str  # "UP", "DOWN", "UNKNOWN", "LOWERLAYERDOWN"
    master: str | None
    peer: str | None  # "link": the veth peer's name when it is in the same netns
    peer_ifindex: int | None  # "link_index": the veth peer's ifindex when it is in another netns
    link_netnsid: int | None
    flags: tuple[str, ...]

    @property
    def carrier(self) -> bool:
        return "LOWER_UP" in self.flags


@dataclass(frozen=True)
class Address:
    ifname: str
    address: IPInterface
    scope: str


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or a CIDR
    gateway: str | None
    dev: str | None
    protocol: str | None
    scope: str | None
    prefsrc: str | None
    table: str
    nexthops: tuple[str, ...] = ()  # a multipath route's gateways (then gateway/dev are None)


# --------------------------------------------------------------------------
# Pure argv builders
# --------------------------------------------------------------------------


def ip_argv(*args: str | int, netns: str | None = None, json_out: bool = False, details: bool = False) -> list[str]:
    argv = ["ip"]
    if netns:
        argv += ["-n", netns]
    if json_out:
        argv.append("-j")
    if details:
        argv.append("-d")
    return argv + [str(a) for a in args]


def veth_cmd(
    name: str,
    peer: str,
    *,
    peer_netns: str | None = None,
    mtu: int | None = None,
    mac_address: str | None = None,
    peer_mac: str | None = None,
) -> list[str]:
    """``link add NAME ... type veth peer name PEER [netns PEER_NS] ...`` (no leading ``ip``)."""
    cmd = ["link", "add", ifname(name)]
    if mtu:
        cmd += ["mtu", str(mtu)]
    if mac_address:
        cmd += ["address", mac(mac_address)]
    cmd += ["type", "veth", "peer", "name", ifname(peer)]
    if peer_netns:
        cmd += ["netns", peer_netns]
    if mtu:
        cmd += ["mtu", str(mtu)]
    if peer_mac:
        cmd += ["address", mac(peer_mac)]
    return cmd


def set_link_cmd(
    name: str,
    *,
    up: bool | None = None,
    mtu: int | None = None,
    mac_address: str | None = None,
    master: str | None = None,
    nomaster: bool = False,
) -> list[str]:
    """``link set dev NAME [mtu N] [address MAC] [master BR|nomaster] [up|down]``."""
    cmd = ["link", "set", "dev", ifname(name)]
    if mtu is not None:
        if not 68 <= mtu <= 65535:
            raise ValueError(f"invalid MTU {mtu}")
        cmd += ["mtu", str(mtu)]
    if mac_address is not None:
        cmd += ["address", mac(mac_address)]
    if master is not None:
        cmd += ["master", ifname(master)]
    elif nomaster:
        cmd.append("nomaster")
    if up is not None:
        cmd.append("up" if up else "down")
    return cmd


def route_cmd(
    verb: str,
    dst: str | IPNetwork,
    *,
    via: str | IPAddress | None = None,
    dev: str | None = None,
    src: str | IPAddress | None = None,
    metric: int | None = None,
    table: str | int | None = None,
) -> list[str]:
    """``route VERB DST [via GW] [dev DEV] [src SRC] [metric N] [table T]``."""
    dst_s = "default" if str(dst) == "default" else str(ipaddress.ip_network(dst, strict=False))
    cmd = ["route", verb, dst_s]
    if via is not None:
        cmd += ["via", str(ipaddress.ip_address(via))]
    if dev is not None:
        cmd += ["dev", ifname(dev)]
    if src is not None:
        cmd += ["src", str(ipaddress.ip_address(src))]
    if metric is not None:
        cmd += ["metric", str(metric)]
    if table is not None:
        cmd += ["table", str(table)]
    return cmd


def ethtool_offload_argv(dev: str, features: Iterable[str] = DEFAULT_OFFLOADS_OFF, on: bool = False) -> list[str]:
    argv = ["ethtool", "-K", ifname(dev)]
    for feat in features:
        argv += [feat, "on" if on else "off"]
    return argv


def batch_script(commands: Iterable[Sequence[str | int]]) -> str:
    """Text for ``ip -batch -``: one command per line, without the leading ``ip``.

    ``ip`` splits batch lines on blanks (with its own quoting rules), so an
    argument containing whitespace or quotes is refused instead of escaped.
    """
    lines = []
    for cmd in commands:
        args = [str(a) for a in cmd]
        if not args:
            continue
        for a in args:
            if not a or re.search(r"[\s\"'\\#]", a):
                raise ValueError(f"argument not allowed in an ip batch: {a!r}")
        lines.append(" ".join(args))
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------
# Parsers (ip -j output)
# --------------------------------------------------------------------------


def parse_links(text: str) -> list[Link]:
    """``ip -j -d link show`` -> ``[Link]``."""
    return _links(json.loads(text or "[]"))


def _links(entries: list[dict[str, Any]]) -> list[Link]:
    out = []
    for e in entries:
        info: dict[str, Any] = e.get("linkinfo") or {}
        out.append(
            Link(
                name=e["ifname"],
                ifindex=int(e["ifindex"]),
                kind=info.get("info_kind"),
                mtu=int(e.get("mtu", 0)),
                mac=e.get("address"),
                up="UP" in e.get("flags", []),
                operstate=e.get("operstate", "UNKNOWN"),
                master=e.get("master"),
                peer=e.get("link") if isinstance(e.get("link"), str) else None,
                peer_ifindex=e.get("link_index"),
                link_netnsid=e.get("link_netnsid"),
                flags=tuple(e.get("flags", [])),
            )
        )
    return out


def parse_addresses(text: str) -> list[Address]:
    """``ip -j addr show`` -> ``[Address]``."""
    return _addresses(json.loads(text or "[]"))


def _addresses(entries: list[dict[str, Any]]) -> list[Address]:
    out = []
    for e in entries:
        for a in e.get("addr_info", []):
            if "local" not in a:
                continue
            out.append(
                Address(
                    ifname=e["ifname"],
                    address=ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}"),
                    scope=a.get("scope", "global"),
                )
            )
    return out


def parse_routes(text: str, table: str = "main") -> list[Route]:
    """``ip -j route show`` -> ``[Route]``."""
    return _routes(json.loads(text or "[]"), table)


def _routes(entries: list[dict[str, Any]], table: str = "main") -> list[Route]:
    out = []
    for e in entries:
        hops = tuple(h["gateway"] for h in e.get("nexthops") or () if h.get("gateway"))
        out.append(
            Route(
                dst=e["dst"],
                gateway=e.get("gateway"),
                dev=e.get("dev"),
                protocol=e.get("protocol"),
                scope=e.get("scope"),
                prefsrc=e.get("prefsrc"),
                table=str(e.get("table", table)),
                nexthops=hops,
            )
        )
    return out


# --------------------------------------------------------------------------
# Effects
# --------------------------------------------------------------------------


def batch(commands: Iterable[Sequence[str | int]], *, netns: str | None = None, runner: Runner = run) -> None:
    """Run several ``ip`` commands in one ``ip -batch -`` process (stops at the first error)."""
    script = batch_script(commands)
    if script:
        runner(ip_argv("-batch", "-", netns=netns), input=script)


@dataclass(frozen=True)
class BatchFailure:
    """One failed line of ``ip -force -batch``: its 1-based number, command and error text."""

    line: int
    command: tuple[str, ...]
    error: str

    @property
    def already_gone(self) -> bool:
        """A deletion (``addr del``, ``route del``, ``link del``) that failed because there was
        nothing to delete: what a caller that wanted it gone can accept."""
        return len(self.command) >= 2 and self.command[1] in ("del", "delete") and _GONE.search(self.error) is not None


_GONE = re.compile(
    r"No such process|Address not found|Cannot assign requested address|Cannot find device|"
    r"No such device"
)
_BATCH_FAILED = re.compile(r"^Command failed (?:-|\S+):(\d+)\s*$")


def parse_batch_errors(stderr: str, commands: Sequence[Sequence[str | int]]) -> list[BatchFailure]:
    """``ip -force -batch`` stderr -> the failed lines (``Command failed -:N`` after each
    line's own error message).  Pure."""
    out: list[BatchFailure] = []
    message: list[str] = []
    cmds = [tuple(str(a) for a in c) for c in commands if c]
    for text in stderr.splitlines():
        m = _BATCH_FAILED.match(text.strip())
        if m is None:
            message.append(text.strip())
            continue
        n = int(m.group(1))
        cmd = cmds[n - 1] if 0 < n <= len(cmds) else ()
        out.append(BatchFailure(n, cmd, " ".join(x for x in message if x)))
        message = []
    return out


def batch_force(
    commands: Iterable[Sequence[str | int]], *, netns: str | None = None, runner: Runner = run
) -> list[BatchFailure]:
    """Run ``commands`` in ONE ``ip -force -batch -`` process: every line is tried even after
    a failing one.  Returns the lines that failed (empty: all applied).

    Blocks until ``ip`` exits.  Not transactional: the lines that succeed stay applied.  A
    failure of the process itself (the namespace does not exist, ``ip`` missing) raises the
    translated ``CommandFailed`` / ``CommandNotFound``.
    """
    cmds = [list(c) for c in commands if c]
    script = batch_script(cmds)
    if not script:
        return []
    argv = ip_argv("-force", "-batch", "-", netns=netns)
    done = runner(argv, input=script, check=False)
    if done.rc == 0:
        return []
    failures = parse_batch_errors(done.stderr, cmds)
    if not failures:
        raise translate(done.argv, done.rc, done.stderr, done.stdout)
    return failures


def list_links(*, netns: str | None = None, runner: Runner = run) -> list[Link]:
    return parse_links(runner(ip_argv("link", "show", netns=netns, json_out=True, details=True)).stdout)


def get_link(name: str, *, netns: str | None = None, runner: Runner = run) -> Link | None:
    """The link called ``name``, or ``None`` if there is none."""
    try:
        out = runner(ip_argv("link", "show", "dev", ifname(name), netns=netns, json_out=True, details=True)).stdout
    except DeviceNotFound:
        return None
    links = parse_links(out)
    return links[0] if links else None


def list_addresses(*, netns: str | None = None, dev: str | None = None, runner: Runner = run) -> list[Address]:
    args = ["addr", "show"] + (["dev", ifname(dev)] if dev else [])
    return parse_addresses(runner(ip_argv(*args, netns=netns, json_out=True)).stdout)


def list_routes(*, netns: str | None = None, family: int = 4, table: str = "main", runner: Runner = run) -> list[Route]:
    argv = ip_argv(f"-{family}", "route", "show", "table", table, netns=netns, json_out=True)
    return parse_routes(runner(argv).stdout, table)


@dataclass(frozen=True)
class NetnsView:
    """Links, addresses and main-table routes of one namespace (``observe_netns``)."""

    links: list[Link]
    addresses: list[Address]
    routes4: list[Route]
    routes6: list[Route]


def _route_family(r: Route) -> int:
    gateway = r.gateway or (r.nexthops[0] if r.nexthops else None)
    probe = gateway if r.dst == "default" and gateway else r.dst
    return 6 if ":" in probe else 4


def parse_netns_batch(text: str) -> NetnsView | None:
    """``ip -j -d -batch -`` output of ``addr show`` + ``route show table all`` (two JSON arrays)
    -> ``NetnsView``; None when the output is not exactly that."""
    dec = json.JSONDecoder()
    parts: list[Any] = []
    i, n = 0, len(text)
    try:
        while True:
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                break
            obj, i = dec.raw_decode(text, i)
            parts.append(obj)
    except ValueError:
        return None
    if len(parts) != 2 or not all(isinstance(p, list) for p in parts):
        return None
    main = [r for r in _routes(parts[1]) if r.table == "main"]
    routes4: list[Route] = []
    routes6: list[Route] = []
    for r in main:
        (routes6 if _route_family(r) == 6 else routes4).append(r)
    return NetnsView(_links(parts[0]), _addresses(parts[0]), routes4, routes6)


def observe_netns(*, netns: str | None = None, runner: Runner = run) -> NetnsView:
    """``list_links`` + ``list_addresses`` + ``list_routes`` (IPv4 and IPv6, table main) of
    ``netns`` from ONE ``ip -j -d -batch -`` process (``addr show`` carries the link attributes
    too; ``route show table all`` both families, filtered to table main).  Falls back to the
    four separate commands if the batch output is not what is expected."""
    out = runner(
        ip_argv("-batch", "-", netns=netns, json_out=True, details=True), input="addr show\nroute show table all\n"
    ).stdout
    view = parse_netns_batch(out)
    if view is not None:
        return view
    return NetnsView(
        list_links(netns=netns, runner=runner),
        list_addresses(netns=netns, runner=runner),
        list_routes(netns=netns, family=4, runner=runner),
        list_routes(netns=netns, family=6, runner=runner),
    )


def ensure_veth(
    name: str,
    peer: str,
    *,
    netns: str | None = None,
    peer_netns: str | None = None,
    mtu: int | None = None,
    mac_address: str | None = None,
    peer_mac: str | None = None,
    runner: Runner = run,
) -> None:
    """Create veth ``name`` (in ``netns``) with peer ``peer`` (in ``peer_netns``).

    Idempotent: an existing veth called ``name`` is left alone; an existing
    non-veth device of that name raises ``DeviceExists``.
    """
    existing = get_link(name, netns=netns, runner=runner)
    if existing is None:
        try:
            runner(
                ip_argv(
                    *veth_cmd(name, peer, peer_netns=peer_netns, mtu=mtu, mac_address=mac_address, peer_mac=peer_mac),
                    netns=netns,
                )
            )
            return
        except DeviceExists:
            existing = get_link(name, netns=netns, runner=runner)
    if existing is not None and existing.kind != "veth":
        raise DeviceExists(
            ip_argv(*veth_cmd(name, peer), netns=netns),
            2,
            f"{name} exists and is a {existing.kind or 'non-veth'} device",
        )


def ensure_bridge(name: str, *, netns: str | None = None, up: bool = True, runner: Runner = run) -> None:
    """Create Linux bridge ``name`` if missing (optionally set it up)."""
    cmds: list[list[str]] = []
    if get_link(name, netns=netns, runner=runner) is None:
        cmds.append(["link", "add", ifname(name), "type", "bridge"])
    if up:
        cmds.append(set_link_cmd(name, up=True))
    batch(cmds, netns=netns, runner=runner)


def remove_link(name: str, *, netns: str | None = None, runner: Runner = run) -> None:
    """Delete link ``name`` (a veth takes its peer with it); no error if it is gone."""
    try:
        runner(ip_argv("link", "del", "dev", ifname(name), netns=netns))
    except DeviceNotFound:
        pass


def set_link(
    name: str,
    *,
    netns: str | None = None,
    up: bool | None = None,
    mtu: int | None = None,
    mac_address: str | None = None,
    master: str | None = None,
    nomaster: bool = False,
    runner: Runner = run,
) -> None:
    """Change several attributes of one link with one ``ip link set``."""
    runner(
        ip_argv(
            *set_link_cmd(name, up=up, mtu=mtu, mac_address=mac_address, master=master, nomaster=nomaster), netns=netns
        )
    )


def move_link(name: str, to_netns: str, *, netns: str | None = None, runner: Runner = run) -> None:
    """Move link ``name`` from ``netns`` into ``to_netns`` (it comes up there DOWN).

    Idempotent: if ``name`` is already in ``to_netns`` and not in ``netns``, nothing happens.
    """
    try:
        runner(ip_argv("link", "set", "dev", ifname(name), "netns", to_netns, netns=netns))
    except DeviceNotFound:
        if get_link(name, netns=to_netns, runner=runner) is None:
            raise


def ensure_address(dev: str, address: str | IPInterface, *, netns: str | None = None, runner: Runner = run) -> None:
    """Assign ``address`` (``ip addr replace``, so a second call is a no-op)."""
    runner(ip_argv("addr", "replace", str(interface(address)), "dev", ifname(dev), netns=netns))


def remove_address(dev: str, address: str | IPInterface, *, netns: str | None = None, runner: Runner = run) -> None:
    try:
        runner(ip_argv("addr", "del", str(interface(address)), "dev", ifname(dev), netns=netns))
    except DeviceNotFound:
        pass
    except CommandFailed as exc:
        if not re.search(r"Cannot assign requested address|Address not found", exc.stderr):
            raise


def flush_addresses(dev: str, *, netns: str | None = None, family: int | None = None, runner: Runner = run) -> None:
    args = ([f"-{family}"] if family else []) + ["addr", "flush", "dev", ifname(dev)]
    runner(ip_argv(*args, netns=netns))


def ensure_route(
    dst: str | IPNetwork,
    *,
    via: str | IPAddress | None = None,
    dev: str | None = None,
    src: str | IPAddress | None = None,
    metric: int | None = None,
    table: str | int | None = None,
    netns: str | None = None,
    runner: Runner = run,
) -> None:
    """Add or update a route (``ip route replace``)."""
    runner(ip_argv(*route_cmd("replace", dst, via=via, dev=dev, src=src, metric=metric, table=table), netns=netns))


def remove_route(
    dst: str | IPNetwork,
    *,
    via: str | IPAddress | None = None,
    dev: str | None = None,
    table: str | int | None = None,
    netns: str | None = None,
    runner: Runner = run,
) -> None:
    try:
        runner(ip_argv(*route_cmd("del", dst, via=via, dev=dev, table=table), netns=netns))
    except CommandFailed as exc:
        if "No such process" not in exc.stderr and not isinstance(exc, DeviceNotFound):
            raise


def set_sysctl(key: str, value: str | int, *, netns: str | None = None, runner: Runner = run) -> None:
    """``sysctl -w key=value`` inside ``netns`` (net.* keys are per namespace)."""
    if not re.match(r"^[A-Za-z0-9_.\-/]+$", key):
        raise ValueError(f"invalid sysctl key: {key!r}")
    runner(["sysctl", "-q", "-w", f"{key}={value}"], netns=netns)


def set_sysctls(pairs: Iterable[tuple[str, str | int]], *, netns: str | None = None, runner: Runner = run) -> None:
    """Several ``key=value`` in one ``sysctl -w`` process (each is set in order, as by
    ``set_sysctl``; a failing one raises after the others were tried)."""
    args = []
    for key, value in pairs:
        if not re.match(r"^[A-Za-z0-9_.\-/]+$", key):
            raise ValueError(f"invalid sysctl key: {key!r}")
        args.append(f"{key}={value}")
    if args:
        runner(["sysctl", "-q", "-w", *args], netns=netns)


def get_sysctl(key: str, *, netns: str | None = None, runner: Runner = run) -> str:
    return runner(["sysctl", "-n", key], netns=netns).stdout.strip()


def disable_offloads(
    dev: str, *, netns: str | None = None, features: Iterable[str] = DEFAULT_OFFLOADS_OFF, runner: Runner = run
) -> None:
    """``ethtool -K DEV rx off tx off ...`` inside ``netns``.

    ethtool exits non-zero when nothing could be changed (already off), so that
    case is accepted; a missing device still raises ``DeviceNotFound``.
    """
    try:
        runner(ethtool_offload_argv(dev, features), netns=netns)
    except DeviceNotFound:
        raise
    except CommandFailed as exc:
        if "Could not change any device features" not in exc.stderr:
            raise


__all__ = [
    "Address",
    "BatchFailure",
    "DEFAULT_OFFLOADS_OFF",
    "IFNAMSIZ",
    "Link",
    "NetnsView",
    "Route",
    "batch",
    "batch_force",
    "batch_script",
    "disable_offloads",
    "ensure_address",
    "ensure_bridge",
    "ensure_route",
    "ensure_veth",
    "ethtool_offload_argv",
    "flush_addresses",
    "get_link",
    "get_sysctl",
    "ifname",
    "interface",
    "ip_argv",
    "list_addresses",
    "list_links",
    "list_routes",
    "mac",
    "move_link",
    "observe_netns",
    "parse_addresses",
    "parse_batch_errors",
    "parse_links",
    "parse_netns_batch",
    "parse_routes",
    "remove_address",
    "remove_link",
    "remove_route",
    "route_cmd",
    "set_link",
    "set_link_cmd",
    "set_sysctl",
    "set_sysctls",
    "veth_cmd",
]
