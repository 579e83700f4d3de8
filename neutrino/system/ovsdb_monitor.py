"""A persistent OVSDB connection keeping the Open_vSwitch tables an agent reads in memory.

``OvsdbMonitor(ovs)`` connects to ``ovs.db_path`` (a unix socket, so it works
whatever network namespace the OVS instance runs in), sends one RFC 7047
``monitor`` request for Bridge, Port, Interface and Controller (the columns
``Ovs.observe`` reads) and Open_vSwitch (``cur_cfg``), and keeps the rows
current from the server's ``update`` notifications on a reader thread (which
also answers the server's ``echo`` probes).

* ``state()`` is ``Ovs.observe()`` without a subprocess (~0.5 ms instead of
  ~300 ms at 1,000 ports): it first sends an ``echo`` on the same connection
  and waits for the answer.  ovsdb-server flushes a session's pending monitor
  updates before it reads the session's next request, so the state includes
  every transaction committed before the call, as ``ovs-vsctl list`` would.
* ``generation`` counts updates of Bridge/Port/Interface/Controller rows;
  ``add_listener(fn)`` calls ``fn()`` (on the reader thread) after each such
  update and when the connection drops, so a caller can wake up when a VIF
  is plugged instead of polling.
* ``transact(ops)`` applies column updates (``SetColumns``, ``ClearColumns``,
  ``RemoveKeys`` of Bridge/Port/Interface rows named by ``name``) as one RFC
  7047 ``transact`` and, like ``ovs-vsctl`` without ``--no-wait``, bumps
  ``next_cfg`` in it and waits until ovs-vswitchd reports it applied
  (``cur_cfg``).  Other ops (adding or removing bridges and ports) raise
  ``Unsupported`` before anything is sent: run those with ``Ovs.transact``.
  ``jsonrpc_operations(ops)`` is the pure translation.
* It never reconnects behind the caller's back: once the connection drops
  (ovsdb-server restarted), ``alive`` is False and every call raises
  ``OvsdbUnreachable``; the caller opens a new monitor (its initial contents
  are complete) or falls back to ``Ovs.observe()``.
"""

from __future__ import annotations

import codecs
import collections
import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from neutrino.system.errors import BridgeNotFound, OvsdbError, OvsdbUnreachable, PortNotFound
from neutrino.system.ovsdb import (
    BRIDGE_COLUMNS,
    CONTROLLER_COLUMNS,
    INTERFACE_COLUMNS,
    PORT_COLUMNS,
    Bridge,
    ClearColumns,
    Interface,
    Op,
    Ovs,
    OvsState,
    Port,
    RemoveKeys,
    SetColumns,
    _as_list,
    bridge_from_row,
    bridge_of_ports,
    decode,
    interface_from_row,
    port_from_row,
)

__all__ = ["OvsdbMonitor", "Unsupported", "jsonrpc_operations"]

LOG = logging.getLogger(__name__)
DATABASE = "Open_vSwitch"
MONITOR_ID = "neutrino"

#: table -> columns kept in memory (``_uuid`` is the row key, not a column).
MONITORED: dict[str, tuple[str, ...]] = {
    "Bridge": tuple(c for c in BRIDGE_COLUMNS if c != "_uuid"),
    "Port": tuple(c for c in PORT_COLUMNS if c != "_uuid"),
    "Interface": tuple(c for c in INTERFACE_COLUMNS if c != "_uuid"),
    "Controller": tuple(c for c in CONTROLLER_COLUMNS if c != "_uuid"),
    "Open_vSwitch": ("cur_cfg",),
}
_HOST_TABLES = ("Bridge", "Port", "Interface", "Controller")

#: Columns ``transact`` may write, by kind (vswitch.ovsschema): "map" columns take
#: per-key merges, "set" columns (optional values included) can be cleared.
_COLUMN_KINDS: dict[str, dict[str, str]] = {
    "Bridge": {
        "other_config": "map",
        "external_ids": "map",
        "fail_mode": "set",
        "protocols": "set",
        "datapath_type": "atom",
    },
    "Port": {"other_config": "map", "external_ids": "map", "tag": "set", "vlan_mode": "set", "trunks": "set"},
    "Interface": {"other_config": "map", "external_ids": "map", "options": "map", "type": "atom", "mtu_request": "set"},
}


class Unsupported(Exception):
    """An op ``OvsdbMonitor.transact`` does not translate (use ``Ovs.transact``)."""


def _value(kind: str, value: Any) -> Any:
    if kind == "set" and isinstance(value, (list, tuple, set, frozenset)):
        return ["set", sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)]
    if isinstance(value, (list, tuple, set, frozenset, Mapping)) or not isinstance(value, (str, int, bool)):
        raise Unsupported(f"value {value!r} for a {kind} column")
    return value


def _columns(table: str, columns: Iterable[str]) -> dict[str, str]:
    kinds = _COLUMN_KINDS.get(table)
    if kinds is None:
        raise Unsupported(f"table {table}")
    out = {}
    for c in columns:
        if c not in kinds:
            raise Unsupported(f"column {table}.{c}")
        out[c] = kinds[c]
    return out


def jsonrpc_operations(ops: Iterable[Op]) -> list[dict[str, Any]]:
    """RFC 7047 ``transact`` operations equivalent to ``ovs-vsctl`` running ``ops`` (pure).

    Every named record must exist (a ``wait`` with timeout 0 fails the whole
    transaction otherwise, like ``ovs-vsctl set`` on a missing record); map
    columns are merged key by key (``col:key=value``), other columns set.
    Raises ``Unsupported`` for anything else.
    """
    out: list[dict[str, Any]] = []
    for op in ops:
        if isinstance(op, SetColumns):
            table, record = op.table, op.record
            kinds = _columns(table, op.columns)
            row: dict[str, Any] = {}
            mutations: list[list[Any]] = []
            for col, value in op.columns.items():
                if value is None:
                    continue
                if kinds[col] == "map":
                    if not isinstance(value, Mapping):
                        raise Unsupported(f"non-map value for {table}.{col}")
                    if value:
                        items = sorted((str(k), _value("atom", v)) for k, v in value.items())
                        mutations.append([col, "delete", ["set", [k for k, _ in items]]])
                        mutations.append([col, "insert", ["map", [list(kv) for kv in items]]])
                else:
                    row[col] = _value(kinds[col], value)
            body: list[dict[str, Any]] = []
            where = [["name", "==", record]]
            if row:
                body.append({"op": "update", "table": table, "where": where, "row": row})
            if mutations:
                body.append({"op": "mutate", "table": table, "where": where, "mutations": mutations})
        elif isinstance(op, ClearColumns):
            table, record = op.table, op.record
            kinds = _columns(table, op.columns)
            if any(k == "atom" for k in kinds.values()):
                raise Unsupported(f"cannot clear {table}.{op.columns}")
            where = [["name", "==", record]]
            body = (
                [{"op": "update", "table": table, "where": where, "row": {c: [k, []] for c, k in kinds.items()}}]
                if op.columns
                else []
            )
        elif isinstance(op, RemoveKeys):
            table, record = op.table, op.record
            if _columns(table, [op.column])[op.column] != "map":
                raise Unsupported(f"{table}.{op.column} is not a map")
            where = [["name", "==", record]]
            body = (
                [
                    {
                        "op": "mutate",
                        "table": table,
                        "where": where,
                        "mutations": [[op.column, "delete", ["set", list(op.keys)]]],
                    }
                ]
                if op.keys
                else []
            )
            # ``--if-exists remove``: a missing record is fine, so no existence check.
            out += body
            continue
        else:
            raise Unsupported(type(op).__name__)
        if body:
            out.append(
                {
                    "op": "wait",
                    "table": table,
                    "where": where,
                    "columns": ["name"],
                    "until": "!=",
                    "rows": [],
                    "timeout": 0,
                }
            )
            out += body
    return out


class _Reply:
    __slots__ = ("event", "msg")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.msg: dict[str, Any] | None = None


class OvsdbMonitor:
    """See the module docstring.  ``start()`` connects; ``close()`` disconnects."""

    def __init__(self, ovs: Ovs, *, timeout: float | None = None) -> None:
        self.ovs = ovs
        self.timeout = timeout if timeout is not None else ovs.timeout
        self.generation = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._alive = False
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[Any, _Reply] = {}
        self._tables: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in MONITORED}
        self._cur_cfg = 0
        self._state: OvsState | None = None
        self._listeners: list[Callable[[], None]] = []
        # Built values, rebuilt only for rows an update touched (a state at
        # 1,000 ports costs ~10 ms to build from scratch, ~0.1 ms this way).
        self._iface_objs: dict[str, Interface] = {}
        self._port_objs: dict[str, Port] = {}
        self._bridge_objs: dict[str, Bridge] = {}
        self._port_bridge: dict[str, str] = {}  # port uuid -> bridge name
        self._port_ifaces: dict[str, list[str]] = {}  # port uuid -> interface uuids
        self._iface_port: dict[str, str] = {}  # interface uuid -> port uuid
        self._dirty_ifaces: set[str] = set()
        self._dirty_ports: set[str] = set()
        self._dirty_bridges = True
        #: (generation, table, row name) of recent updates, for ``changes_since``.
        self._log: collections.deque[tuple[int, str, str]] = collections.deque(maxlen=4096)

    def __repr__(self) -> str:
        return f"OvsdbMonitor({self.ovs.db_path}, alive={self._alive})"

    # ---- connection ------------------------------------------------------------
    def start(self) -> OvsdbMonitor:
        """Connect and load the initial contents (blocks up to ``timeout``); returns self."""
        path = str(self.ovs.db_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(path)
            sock.settimeout(None)
        except OSError as exc:
            sock.close()
            raise OvsdbUnreachable(["ovsdb-monitor", path], 1, f"database connection failed ({exc})") from exc
        self._sock = sock
        self._alive = True
        self._thread = threading.Thread(target=self._reader, name="ovsdb-monitor", daemon=True)
        self._thread.start()
        try:
            self._request("monitor", [DATABASE, MONITOR_ID, {t: {"columns": list(c)} for t, c in MONITORED.items()}])
        except BaseException:
            self.close()
            raise
        return self

    @property
    def alive(self) -> bool:
        return self._alive

    def close(self) -> None:
        """Disconnect (idempotent); pending and later calls raise ``OvsdbUnreachable``."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._dead()

    # ---- listeners -------------------------------------------------------------
    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` (on the reader thread; it must not block) after every update of a
        Bridge/Port/Interface/Controller row, and when the connection drops."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    # ---- reading -----------------------------------------------------------------
    def sync(self) -> None:
        """Return once every update committed before the call has been applied here."""
        self._request("echo", ["sync"])

    def state(self) -> OvsState:
        """The current Bridge/Port/Interface state (``Ovs.observe()``'s value), after ``sync()``."""
        return self.state_and_generation()[0]

    def state_and_generation(self) -> tuple[OvsState, int]:
        """``state()`` and the ``generation`` it reflects.  Unchanged rows keep their
        ``Port``/``Interface``/``Bridge`` objects from one state to the next."""
        self.sync()
        with self._lock:
            if self._state is None:
                self._state = self._build()
            return self._state, self.generation

    def _build(self) -> OvsState:
        """Rebuild the values of the rows touched since the last build (lock held)."""
        t = self._tables
        dirty_ports = self._dirty_ports
        if self._dirty_bridges:
            port_bridge = bridge_of_ports(t["Bridge"].values())
            dirty_ports.update(pu for pu, br in port_bridge.items() if self._port_bridge.get(pu) != br)
            dirty_ports.update(pu for pu in self._port_bridge if pu not in port_bridge)
            self._port_bridge = port_bridge
        for iu in self._dirty_ifaces:
            row = t["Interface"].get(iu)
            if row is None:
                self._iface_objs.pop(iu, None)
            else:
                self._iface_objs[iu] = interface_from_row(row)
            pu = self._iface_port.get(iu)
            if pu is not None:
                dirty_ports.add(pu)
        for pu in dirty_ports:
            for iu in self._port_ifaces.pop(pu, ()):
                if self._iface_port.get(iu) == pu:
                    del self._iface_port[iu]
            row = t["Port"].get(pu)
            if row is None:
                self._port_objs.pop(pu, None)
                continue
            ifaces = [u for u in _as_list(row["interfaces"])]
            self._port_ifaces[pu] = ifaces
            for iu in ifaces:
                self._iface_port[iu] = pu
            self._port_objs[pu] = port_from_row(row, self._iface_objs, self._port_bridge.get(pu))
        if self._dirty_bridges:
            controllers = {u: r["target"] for u, r in t["Controller"].items()}
            port_names = {u: r["name"] for u, r in t["Port"].items()}
            self._bridge_objs = {r["name"]: bridge_from_row(r, controllers, port_names) for r in t["Bridge"].values()}
        self._dirty_ifaces = set()
        self._dirty_ports = set()
        self._dirty_bridges = False
        return OvsState(bridges=dict(self._bridge_objs), ports={p.name: p for p in self._port_objs.values()})

    def changes_since(self, generation: int) -> set[tuple[str, str]] | None:
        """(table, row name) of the Bridge/Port/Interface/Controller rows updated after
        ``generation`` (Controller rows by target); None when that is too long ago to tell."""
        with self._lock:
            if generation >= self.generation:
                return set()
            if not self._log or self._log[0][0] > generation + 1:
                return None
            return {(t, n) for g, t, n in self._log if g > generation}

    # ---- writing -----------------------------------------------------------------
    def transact(self, ops: Iterable[Op], *, wait: bool = True) -> None:
        """Apply ``ops`` as ONE transaction (see ``jsonrpc_operations``); with ``wait``
        return once ovs-vswitchd has applied it (at most ``timeout`` seconds).

        Raises ``Unsupported`` (nothing sent), ``PortNotFound`` / ``BridgeNotFound``
        (a named record is missing; nothing applied), ``OvsdbError``.
        """
        operations = jsonrpc_operations(ops)
        if not operations:
            return
        if wait:
            operations += [
                {"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]},
                {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]},
            ]
        reply = self._request("transact", [DATABASE, *operations])
        results = reply.get("result") or []
        # not strict: an error reply has no results, and RFC 7047 appends a commit error after them
        for op, res in zip(operations, results, strict=False):
            if isinstance(res, dict) and res.get("error"):
                argv = ["ovsdb-transact", str(self.ovs.db_path)]
                if op["op"] == "wait":
                    record = op["where"][0][2]
                    cls = (
                        PortNotFound
                        if op["table"] == "Port"
                        else BridgeNotFound
                        if op["table"] == "Bridge"
                        else OvsdbError
                    )
                    raise cls(argv, 1, f'no row "{record}" in table {op["table"]}')
                raise OvsdbError(argv, 1, f"{res['error']}: {res.get('details', '')}")
        if len(results) < len(operations):
            raise OvsdbError(["ovsdb-transact", str(self.ovs.db_path)], 1, f"transaction failed: {results}")
        if wait:
            target = results[-1]["rows"][0]["next_cfg"]
            with self._cond:
                ok = self._cond.wait_for(lambda: self._cur_cfg >= target or not self._alive, self.timeout)
            if not self._alive:
                raise OvsdbUnreachable(["ovsdb-monitor", str(self.ovs.db_path)], 1, "connection lost")
            if not ok:
                raise OvsdbError(
                    ["ovsdb-transact", str(self.ovs.db_path)],
                    1,
                    f"timed out waiting for ovs-vswitchd to apply next_cfg {target}",
                )

    # ---- JSON-RPC plumbing -------------------------------------------------------
    def _send(self, msg: Mapping[str, Any]) -> None:
        data = json.dumps(msg, separators=(",", ":")).encode()
        with self._send_lock:
            sock = self._sock
            if sock is None or not self._alive:
                raise OvsdbUnreachable(["ovsdb-monitor", str(self.ovs.db_path)], 1, "not connected")
            try:
                sock.sendall(data)
            except OSError as exc:
                raise OvsdbUnreachable(["ovsdb-monitor", str(self.ovs.db_path)], 1, str(exc)) from exc

    def _request(self, method: str, params: list[Any]) -> dict[str, Any]:
        rid = f"{method}-{next(self._ids)}"
        slot = _Reply()
        with self._lock:
            if not self._alive:
                raise OvsdbUnreachable(["ovsdb-monitor", str(self.ovs.db_path)], 1, "not connected")
            self._pending[rid] = slot
        try:
            self._send({"method": method, "params": params, "id": rid})
            if not slot.event.wait(self.timeout):
                raise OvsdbError(["ovsdb-monitor", str(self.ovs.db_path)], 1, f"no answer to {method}")
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        msg = slot.msg
        if msg is None:
            raise OvsdbUnreachable(["ovsdb-monitor", str(self.ovs.db_path)], 1, "connection lost")
        if msg.get("error") is not None:
            raise OvsdbError(["ovsdb-monitor", str(self.ovs.db_path)], 1, f"{method}: {msg['error']}")
        return msg

    def _reader(self) -> None:
        decoder = json.JSONDecoder()
        text = codecs.getincrementaldecoder("utf-8")()
        buf = ""
        sock = self._sock
        try:
            while sock is not None:
                chunk = sock.recv(1 << 18)
                if not chunk:
                    break
                buf += text.decode(chunk)
                # A message ends with "}"; try to decode only then (the initial
                # contents of a big database arrive in many chunks).
                if not chunk.rstrip().endswith(b"}"):
                    continue
                pos, n = 0, len(buf)
                while pos < n:
                    while pos < n and buf[pos] in " \t\r\n":
                        pos += 1
                    if pos >= n:
                        break
                    try:
                        msg, pos = decoder.raw_decode(buf, pos)
                    except json.JSONDecodeError:
                        break  # incomplete: wait for more
                    self._handle(msg)
                buf = buf[pos:]
        except OSError:
            pass
        except Exception:
            LOG.exception("OVSDB monitor on %s failed", self.ovs.db_path)
        finally:
            self._dead()

    def _handle(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method == "update":
            params = msg.get("params") or []
            if len(params) == 2 and params[0] == MONITOR_ID:
                self._apply(params[1])
            return
        if method == "echo":
            self._send({"result": msg.get("params", []), "error": None, "id": msg.get("id")})
            return
        if method is not None:
            return  # other notifications ("locked", ...) are not ours
        rid = msg.get("id")
        if isinstance(rid, str) and rid.startswith("monitor-") and msg.get("error") is None:
            self._apply(msg.get("result") or {})  # the initial contents, before any update
        with self._lock:
            slot = self._pending.get(rid)
        if slot is not None:
            slot.msg = msg
            slot.event.set()

    def _apply(self, updates: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        host = False
        with self._cond:
            gen = self.generation + 1
            for table, rows in updates.items():
                store = self._tables.setdefault(table, {})
                for uuid, change in rows.items():
                    new = change.get("new")
                    old = store.get(uuid)
                    if new is None:
                        store.pop(uuid, None)
                    else:
                        row = dict(old or {"_uuid": uuid})
                        for col, value in new.items():
                            row[col] = decode(value)
                        store[uuid] = row
                    if table in _HOST_TABLES:
                        name = (
                            (old or {}).get("name")
                            or (new or {}).get("name")
                            or (old or {}).get("target")
                            or (new or {}).get("target")
                            or uuid
                        )
                        self._log.append((gen, table, str(name)))
                    if table == "Interface":
                        self._dirty_ifaces.add(uuid)
                    elif table == "Port":
                        self._dirty_ports.add(uuid)
                        if old is None or new is None:
                            self._dirty_bridges = True  # Bridge.ports shows port names
                    elif table in ("Bridge", "Controller"):
                        self._dirty_bridges = True
                if table in _HOST_TABLES:
                    host = True
                elif table == "Open_vSwitch":
                    cfgs = [r.get("cur_cfg", 0) for r in store.values()]
                    self._cur_cfg = max(cfgs) if cfgs else 0
            if host:
                self.generation = gen
                self._state = None
            self._cond.notify_all()
            listeners = list(self._listeners) if host else []
        for fn in listeners:
            fn()

    def _dead(self) -> None:
        with self._cond:
            was = self._alive
            self._alive = False
            for slot in self._pending.values():
                slot.event.set()
            self._cond.notify_all()
            listeners = list(self._listeners) if was else []
        for fn in listeners:
            fn()
