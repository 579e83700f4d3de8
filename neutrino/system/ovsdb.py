"""OVSDB (ovs-vsctl) adapter: typed ops applied as one transaction, typed observation.

``Ovs(rundir, netns)`` is a handle on one Open vSwitch instance: ``rundir=None``
is the system one (``/var/run/openvswitch``); a directory is a private
instance whose ``db.sock``, ``<bridge>.mgmt`` and ``*.ctl`` live there.  Every
tool call runs inside ``netns`` with ``OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/
OVS_SYSCONFDIR`` set to the rundir and, for ovs-vsctl, an explicit
``--db=unix:<rundir>/db.sock`` too.  (Unix sockets are not isolated by network
namespaces: without these a call silently reaches the system OVS.)

``Ovs.transact(ops)`` turns a list of typed ops into ONE ``ovs-vsctl``
invocation, i.e. one OVSDB transaction: all or nothing.  Ops have
``--may-exist``/``--if-exists`` semantics, and setting a column to the value it
already has is a no-op, so applying the same op list twice changes nothing
(``Open_vSwitch.next_cfg`` does not move).  Map columns given as dicts are
merged key by key (``col:key=value``); to replace a whole map, put a
``ClearColumns`` for it earlier in the same list.

``Ovs.observe()`` reads Bridge, Port and Interface in one ovs-vsctl call
(``--format=json``) and returns an ``OvsState`` of frozen dataclasses.

``PrivateOvs`` creates and runs such a private instance (ovsdb-server +
ovs-vswitchd, tracked by pidfile + uuid through ``neutrino.system.process``).
"""

from __future__ import annotations

import json
import shutil
import uuid as uuidlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.system import process
from neutrino.system.exec import Completed, Runner, run

SYSTEM_RUNDIR = Path("/var/run/openvswitch")
VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")

Scalar = str | int | bool
Value = Scalar | Sequence[Scalar] | Mapping[str, Scalar] | None


# --------------------------------------------------------------------------
# Value syntax (ovs-vsctl "Database Values")
# --------------------------------------------------------------------------


def atom(value: Scalar) -> str:
    """One OVSDB atom in ovs-vsctl syntax: strings always double-quoted (JSON escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"not an OVSDB atom: {value!r}")


def column_args(column: str, value: Value) -> list[str]:
    """``set`` arguments for one column.

    A mapping becomes one ``col:"key"=value`` argument per key (merge); a list,
    tuple or set becomes ``col=[a,b]``; a scalar becomes ``col=value``.  ``None``
    yields nothing (use ``ClearColumns`` to empty a column).
    """
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [f"{column}:{atom(str(k))}={atom(v)}" for k, v in sorted(value.items())]
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        return [f"{column}=[{','.join(atom(v) for v in items)}]"]
    if isinstance(value, (str, int)):
        return [f"{column}={atom(value)}"]
    raise TypeError(f"not an OVSDB atom: {value!r}")


def _set(table: str, record: str, columns: Mapping[str, Value]) -> list[str]:
    args: list[str] = []
    for col, value in columns.items():
        args += column_args(col, value)
    return ["set", table, record, *args] if args else []


# --------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AddBridge:
    """``--may-exist add-br`` + the given Bridge columns (None = leave as is)."""

    name: str
    datapath_type: str | None = None
    fail_mode: str | None = None
    protocols: tuple[str, ...] | None = None
    other_config: Mapping[str, str] = field(default_factory=dict)
    external_ids: Mapping[str, str] = field(default_factory=dict)

    def commands(self) -> list[list[str]]:
        cols: dict[str, Value] = {
            "datapath_type": self.datapath_type,
            "fail_mode": self.fail_mode,
            "protocols": self.protocols,
            "other_config": dict(self.other_config) or None,
            "external_ids": dict(self.external_ids) or None,
        }
        return [c for c in (["--may-exist", "add-br", self.name], _set("Bridge", self.name, cols)) if c]


@dataclass(frozen=True)
class DelBridge:
    name: str

    def commands(self) -> list[list[str]]:
        return [["--if-exists", "del-br", self.name]]


@dataclass(frozen=True)
class AddPort:
    """``--may-exist add-port`` + Port columns (tag, vlan_mode, trunks, other_config)
    and Interface columns (type, options, external_ids).  None/empty = leave as is.

    A port of that name already on *another* bridge is an error (``RecordExists``).
    """

    bridge: str
    name: str
    type: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    external_ids: Mapping[str, str] = field(default_factory=dict)
    tag: int | None = None
    vlan_mode: str | None = None
    trunks: tuple[int, ...] | None = None
    other_config: Mapping[str, str] = field(default_factory=dict)

    def commands(self) -> list[list[str]]:
        port: dict[str, Value] = {
            "tag": self.tag,
            "vlan_mode": self.vlan_mode,
            "trunks": self.trunks,
            "other_config": dict(self.other_config) or None,
        }
        iface: dict[str, Value] = {
            "type": self.type,
            "options": dict(self.options) or None,
            "external_ids": dict(self.external_ids) or None,
        }
        return [
            c
            for c in (
                ["--may-exist", "add-port", self.bridge, self.name],
                _set("Port", self.name, port),
                _set("Interface", self.name, iface),
            )
            if c
        ]


@dataclass(frozen=True)
class DelPort:
    name: str
    bridge: str | None = None

    def commands(self) -> list[list[str]]:
        return [["--if-exists", "del-port", *([self.bridge] if self.bridge else []), self.name]]


@dataclass(frozen=True)
class SetColumns:
    """``set TABLE RECORD col=value ...`` (maps merged per key)."""

    table: str
    record: str
    columns: Mapping[str, Value]

    def commands(self) -> list[list[str]]:
        cmd = _set(self.table, self.record, self.columns)
        return [cmd] if cmd else []


def SetBridge(name: str, **columns: Value) -> SetColumns:
    return SetColumns("Bridge", name, columns)


def SetPort(name: str, **columns: Value) -> SetColumns:
    return SetColumns("Port", name, columns)


def SetInterface(name: str, **columns: Value) -> SetColumns:
    return SetColumns("Interface", name, columns)


@dataclass(frozen=True)
class ClearColumns:
    """``clear TABLE RECORD col ...``: empty set/map columns (e.g. tag, trunks)."""

    table: str
    record: str
    columns: tuple[str, ...]

    def commands(self) -> list[list[str]]:
        return [["clear", self.table, self.record, *self.columns]] if self.columns else []


@dataclass(frozen=True)
class RemoveKeys:
    """``remove TABLE RECORD column key ...``: drop keys from a map column."""

    table: str
    record: str
    column: str
    keys: tuple[str, ...]

    def commands(self) -> list[list[str]]:
        if not self.keys:
            return []
        return [["--if-exists", "remove", self.table, self.record, self.column, *(atom(k) for k in self.keys)]]


@dataclass(frozen=True)
class SetController:
    """``set-controller BRIDGE target...`` (``del-controller`` when no targets).

    NOTE: adding the first / removing the last controller makes ovs-vswitchd
    flush the bridge's flows; set controllers before installing flows.
    """

    bridge: str
    targets: tuple[str, ...] = ()

    def commands(self) -> list[list[str]]:
        if self.targets:
            return [["set-controller", self.bridge, *self.targets]]
        return [["del-controller", self.bridge]]


Op = AddBridge | DelBridge | AddPort | DelPort | SetColumns | ClearColumns | RemoveKeys | SetController


def transaction_args(ops: Iterable[Op]) -> list[str]:
    """The ``-- cmd -- cmd ...`` part of one ovs-vsctl transaction (pure)."""
    args: list[str] = []
    for op in ops:
        for cmd in op.commands():
            args += ["--", *cmd]
    return args


# --------------------------------------------------------------------------
# Observed state
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    name: str
    type: str  # "" = system (AF_PACKET for netdev), "internal", "patch", "vxlan" ...
    ofport: int | None  # None = not assigned yet; -1 = failed
    options: dict[str, str]
    external_ids: dict[str, str]
    other_config: dict[str, str]
    mac_in_use: str | None
    link_state: str | None
    error: str | None


@dataclass(frozen=True)
class Port:
    name: str
    bridge: str | None
    tag: int | None
    vlan_mode: str | None
    trunks: tuple[int, ...]
    other_config: dict[str, str]
    external_ids: dict[str, str]
    interfaces: tuple[Interface, ...]

    @property
    def iface(self) -> Interface | None:
        """The interface of a non-bond port (same name as the port)."""
        for i in self.interfaces:
            if i.name == self.name:
                return i
        return self.interfaces[0] if self.interfaces else None

    @property
    def ofport(self) -> int | None:
        i = self.iface
        return i.ofport if i else None


@dataclass(frozen=True)
class Bridge:
    name: str
    datapath_type: str
    fail_mode: str | None
    protocols: tuple[str, ...]
    other_config: dict[str, str]
    external_ids: dict[str, str]
    controllers: tuple[str, ...]
    ports: tuple[str, ...]  # port names, sorted


@dataclass(frozen=True)
class OvsState:
    bridges: dict[str, Bridge]
    ports: dict[str, Port]

    def ports_on(self, bridge: str) -> list[Port]:
        return [p for p in self.ports.values() if p.bridge == bridge]


def decode(value: Any) -> Any:
    """OVSDB JSON (RFC 7047) -> Python: ["set",..] -> list, ["map",..] -> dict, ["uuid",u] -> u."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        kind, body = value
        if kind == "set":
            return [decode(v) for v in body]
        if kind == "map":
            return {decode(k): decode(v) for k, v in body}
        if kind in ("uuid", "named-uuid"):
            return body
    return value


def _optional(value: Any) -> Any:
    """An optional column (min 0, max 1) decodes to [] or [x]; return None or x."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parse_tables(text: str) -> list[list[dict[str, Any]]]:
    """Several ``ovs-vsctl --format=json list`` outputs (one JSON document each) -> rows."""
    decoder = json.JSONDecoder()
    tables, pos, text = [], 0, text.strip()
    while pos < len(text):
        doc, end = decoder.raw_decode(text, pos)
        headings = doc["headings"]
        tables.append([{h: decode(v) for h, v in zip(headings, row, strict=False)} for row in doc["data"]])
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tables


BRIDGE_COLUMNS = (
    "name",
    "datapath_type",
    "fail_mode",
    "protocols",
    "other_config",
    "external_ids",
    "controller",
    "ports",
)
PORT_COLUMNS = ("_uuid", "name", "tag", "vlan_mode", "trunks", "other_config", "external_ids", "interfaces")
INTERFACE_COLUMNS = (
    "_uuid",
    "name",
    "type",
    "ofport",
    "options",
    "external_ids",
    "other_config",
    "mac_in_use",
    "link_state",
    "error",
)
CONTROLLER_COLUMNS = ("_uuid", "target")


def observe_args() -> list[str]:
    return [
        "--format=json",
        "--data=json",
        "--",
        f"--columns={','.join(BRIDGE_COLUMNS)}",
        "list",
        "Bridge",
        "--",
        f"--columns={','.join(PORT_COLUMNS)}",
        "list",
        "Port",
        "--",
        f"--columns={','.join(INTERFACE_COLUMNS)}",
        "list",
        "Interface",
        "--",
        f"--columns={','.join(CONTROLLER_COLUMNS)}",
        "list",
        "Controller",
    ]


def parse_state(text: str) -> OvsState:
    """The output of ``ovs-vsctl <observe_args()>`` -> ``OvsState``."""
    bridge_rows, port_rows, iface_rows, ctl_rows = parse_tables(text)
    return state_from_rows(bridge_rows, port_rows, iface_rows, ctl_rows)


def interface_from_row(r: Mapping[str, Any]) -> Interface:
    """One decoded Interface row -> ``Interface``."""
    return Interface(
        name=r["name"],
        type=r["type"],
        ofport=_optional(r["ofport"]),
        options=r["options"],
        external_ids=r["external_ids"],
        other_config=r["other_config"],
        mac_in_use=_optional(r["mac_in_use"]),
        link_state=_optional(r["link_state"]),
        error=_optional(r["error"]),
    )


def port_from_row(r: Mapping[str, Any], ifaces: Mapping[str, Interface], bridge: str | None) -> Port:
    """One decoded Port row -> ``Port`` (``ifaces``: Interface by uuid)."""
    port_ifaces = tuple(sorted((ifaces[u] for u in _as_list(r["interfaces"]) if u in ifaces), key=lambda i: i.name))
    return Port(
        name=r["name"],
        bridge=bridge,
        tag=_optional(r["tag"]),
        vlan_mode=_optional(r["vlan_mode"]),
        trunks=tuple(sorted(_as_list(r["trunks"]))),
        other_config=r["other_config"],
        external_ids=r["external_ids"],
        interfaces=port_ifaces,
    )


def bridge_from_row(r: Mapping[str, Any], controllers: Mapping[str, str], port_names: Mapping[str, str]) -> Bridge:
    """One decoded Bridge row -> ``Bridge`` (``controllers``: target by uuid,
    ``port_names``: port name by uuid)."""
    return Bridge(
        name=r["name"],
        datapath_type=r["datapath_type"],
        fail_mode=_optional(r["fail_mode"]),
        protocols=tuple(sorted(_as_list(r["protocols"]))),
        other_config=r["other_config"],
        external_ids=r["external_ids"],
        controllers=tuple(sorted(controllers[u] for u in _as_list(r["controller"]) if u in controllers)),
        ports=tuple(sorted(port_names[u] for u in _as_list(r["ports"]) if u in port_names)),
    )


def bridge_of_ports(bridge_rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Port uuid -> the name of the bridge whose ``ports`` holds it."""
    return {pu: r["name"] for r in bridge_rows for pu in _as_list(r["ports"])}


def state_from_rows(
    bridge_rows: Iterable[Mapping[str, Any]],
    port_rows: Iterable[Mapping[str, Any]],
    iface_rows: Iterable[Mapping[str, Any]],
    ctl_rows: Iterable[Mapping[str, Any]],
) -> OvsState:
    """Decoded rows (``decode``d column values, ``_uuid`` included; the columns of
    ``*_COLUMNS``) of Bridge, Port, Interface and Controller -> ``OvsState``."""
    bridge_rows, port_rows = list(bridge_rows), list(port_rows)
    ifaces = {r["_uuid"]: interface_from_row(r) for r in iface_rows}
    controllers = {r["_uuid"]: r["target"] for r in ctl_rows}
    port_bridge = bridge_of_ports(bridge_rows)
    ports = {r["name"]: port_from_row(r, ifaces, port_bridge.get(r["_uuid"])) for r in port_rows}
    port_names = {r["_uuid"]: r["name"] for r in port_rows}
    bridges = {r["name"]: bridge_from_row(r, controllers, port_names) for r in bridge_rows}
    return OvsState(bridges=bridges, ports=ports)


# --------------------------------------------------------------------------
# The instance handle
# --------------------------------------------------------------------------


class Ovs:
    """Handle on one OVS instance (see module docstring).  Cheap; holds no connection."""

    def __init__(
        self, rundir: Path | str | None = None, netns: str | None = None, *, runner: Runner = run, timeout: float = 10
    ) -> None:
        self.rundir = Path(rundir) if rundir is not None else None
        self.netns = netns
        self.runner = runner
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Ovs(rundir={str(self.rundir) if self.rundir else None!r}, netns={self.netns!r})"

    @property
    def env(self) -> dict[str, str]:
        if self.rundir is None:
            return {}
        d = str(self.rundir)
        return {"OVS_RUNDIR": d, "OVS_DBDIR": d, "OVS_LOGDIR": d, "OVS_SYSCONFDIR": d}

    @property
    def db_path(self) -> Path:
        """The ovsdb-server unix socket (reachable from any network namespace)."""
        return (self.rundir or SYSTEM_RUNDIR) / "db.sock"

    @property
    def db(self) -> str:
        return f"unix:{self.db_path}"

    def vswitchd_pid(self) -> int | None:
        """The pid in ovs-vswitchd's pidfile if that process is alive, else None (a
        file read: a cheap way to notice that ovs-vswitchd restarted)."""
        try:
            pid = int(((self.rundir or SYSTEM_RUNDIR) / "ovs-vswitchd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def mgmt(self, bridge: str) -> str:
        """The OpenFlow management socket of ``bridge`` (an ovs-ofctl target)."""
        return f"unix:{(self.rundir or SYSTEM_RUNDIR) / f'{bridge}.mgmt'}"

    def run(
        self, argv: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float | None = None
    ) -> Completed:
        """Run an OVS tool against this instance (its netns and env)."""
        return self.runner(
            list(argv),
            netns=self.netns,
            env=self.env,
            input=input,
            timeout=timeout if timeout is not None else self.timeout + 5,
            check=check,
        )

    # ---- ovs-vsctl -------------------------------------------------------

    def vsctl_argv(self, args: Sequence[str], *, wait: bool = True) -> list[str]:
        argv = ["ovs-vsctl", f"--db={self.db}", f"--timeout={int(self.timeout)}"]
        if not wait:
            argv.append("--no-wait")
        return argv + list(args)

    def vsctl(self, *args: str, wait: bool = True) -> str:
        """Raw ovs-vsctl call; returns stdout."""
        return self.run(self.vsctl_argv(args, wait=wait)).stdout

    def transact(self, ops: Iterable[Op], *, wait: bool = True) -> None:
        """Apply ``ops`` as ONE OVSDB transaction (nothing is applied on error).

        With ``wait`` (default) ovs-vsctl returns once ovs-vswitchd has applied
        the change (ofports assigned); at most ``timeout`` seconds.
        """
        args = transaction_args(ops)
        if args:
            self.run(self.vsctl_argv(args, wait=wait))

    def observe(self) -> OvsState:
        return parse_state(self.vsctl(*observe_args()))

    def bridges(self) -> list[str]:
        return sorted(self.vsctl("list-br").split())

    def ports(self, bridge: str | None = None) -> list[Port]:
        state = self.observe()
        ports = state.ports_on(bridge) if bridge else list(state.ports.values())
        return sorted(ports, key=lambda p: p.name)

    def get(self, table: str, record: str, column: str) -> Any:
        """One column of one record, decoded from JSON."""
        out = self.vsctl(
            "--format=json",
            "--data=json",
            "--",
            f"--columns={column}",
            "find",
            table,
            f"_uuid={record}" if _is_uuid(record) else f"name={atom(record)}",
        )
        rows = parse_tables(out)[0]
        return rows[0][column] if rows else None

    def next_cfg(self) -> int:
        return int(self.vsctl("get", "Open_vSwitch", ".", "next_cfg").strip())

    # ---- ovs-appctl --------------------------------------------------------

    def appctl(self, *args: str, target: str = "ovs-vswitchd") -> str:
        """``ovs-appctl -t TARGET ...`` (TARGET resolved through OVS_RUNDIR's pidfile)."""
        return self.run(["ovs-appctl", f"--timeout={int(self.timeout)}", "-t", target, *args]).stdout

    def set_tunnel_neighbor(self, bridge: str, ip: str, mac_address: str) -> None:
        """Seed the userspace tunnel ARP cache (``tnl/neigh/set``) so the first packet is not lost."""
        self.appctl("tnl/neigh/set", bridge, ip, mac_address)


def _is_uuid(text: str) -> bool:
    try:
        uuidlib.UUID(text)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------
# A private instance: ovsdb-server + ovs-vswitchd in a netns with a rundir
# --------------------------------------------------------------------------


class PrivateOvs:
    """One private OVS (its own conf.db, sockets, logs and pidfiles under ``rundir``).

    ``start()`` creates the database if missing, starts ovsdb-server, runs
    ``ovs-vsctl --no-wait init`` and starts ovs-vswitchd, all inside ``netns``
    (internal ports are taps created in vswitchd's namespace).  Both daemons
    carry ``uuid`` in their environment; ``stop()`` signals only those pids.
    ``destroy()`` stops and deletes ``rundir`` (a leftover conf.db would
    resurrect old bridges).  Never uses ``--mlockall``.
    """

    def __init__(
        self,
        rundir: Path | str,
        netns: str | None,
        *,
        uuid: str | None = None,
        log_level: str = "info",
        runner: Runner = run,
    ) -> None:
        self.rundir = Path(rundir)
        self.netns = netns
        self.uuid = uuid or f"neutrino-ovs-{uuidlib.uuid4()}"
        self.log_level = log_level
        self.runner = runner
        self.ovs = Ovs(self.rundir, netns, runner=runner)

    def _spec(self, name: str, argv: list[str]) -> process.ProcessSpec:
        d = self.rundir
        return process.ProcessSpec(
            argv=tuple(
                argv
                + [
                    f"--pidfile={d / f'{name}.pid'}",
                    f"--log-file={d / f'{name}.log'}",
                    "-vconsole:off",
                    f"-vfile:{self.log_level}",
                    "--no-chdir",
                    "--detach",
                ]
            ),
            pidfile=d / f"{name}.pid",
            netns=self.netns,
            env=self.ovs.env,
            uuid=self.uuid,
            daemonizes=True,
        )

    @property
    def ovsdb_server(self) -> process.ProcessSpec:
        d = self.rundir
        return self._spec("ovsdb-server", ["ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d / 'db.sock'}"])

    @property
    def vswitchd(self) -> process.ProcessSpec:
        return self._spec("ovs-vswitchd", ["ovs-vswitchd", f"unix:{self.rundir / 'db.sock'}"])

    def start(self, *, timeout: float = 10) -> Ovs:
        self.rundir.mkdir(parents=True, exist_ok=True)
        db = self.rundir / "conf.db"
        if not db.exists():
            self.runner(["ovsdb-tool", "create", str(db), str(VSWITCH_SCHEMA)])
        process.start(self.ovsdb_server, timeout=timeout)
        self.ovs.vsctl("init", wait=False)
        process.start(self.vswitchd, timeout=timeout)
        return self.ovs

    def pids(self) -> list[int]:
        return [p for p in (process.pid_of(self.vswitchd), process.pid_of(self.ovsdb_server)) if p is not None]

    def alive(self) -> bool:
        return process.alive(self.ovsdb_server) and process.alive(self.vswitchd)

    def stop(self, *, timeout: float = 5) -> None:
        """SIGTERM vswitchd and ovsdb-server (verified pids only) and wait; idempotent."""
        process.stop_all([self.vswitchd, self.ovsdb_server], timeout=timeout)

    def restart_vswitchd(self, *, timeout: float = 10) -> None:
        """Restart ovs-vswitchd only.  Flows, learned MACs, tnl/neigh entries are lost."""
        process.stop(self.vswitchd)
        process.start(self.vswitchd, timeout=timeout)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.rundir, ignore_errors=True)


__all__ = [
    "AddBridge",
    "AddPort",
    "Bridge",
    "ClearColumns",
    "DelBridge",
    "DelPort",
    "Interface",
    "Op",
    "Ovs",
    "OvsState",
    "Port",
    "PrivateOvs",
    "RemoveKeys",
    "SetBridge",
    "SetColumns",
    "SetController",
    "SetInterface",
    "SetPort",
    "atom",
    "column_args",
    "decode",
    "observe_args",
    "bridge_from_row",
    "bridge_of_ports",
    "interface_from_row",
    "parse_state",
    "parse_tables",
    "port_from_row",
    "state_from_rows",
    "transaction_args",
]
