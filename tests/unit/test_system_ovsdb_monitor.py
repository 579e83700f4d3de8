"""OvsdbMonitor against a scripted OVSDB server on a unix socket (RFC 7047 JSON-RPC).

``FakeOvsdb`` answers ``monitor`` with its rows, ``echo`` with its params, and
``transact`` by recording the operations and (like ovs-vswitchd) publishing
``cur_cfg`` = the new ``next_cfg`` afterwards; ``push`` sends update
notifications, ``drop`` closes the connection.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.system import ovsdb as sysovs
from neutrino.system.errors import OvsdbUnreachable, PortNotFound
from neutrino.system.ovsdb import AddPort, ClearColumns, Ovs, RemoveKeys, SetColumns, SetPort, decode, state_from_rows
from neutrino.system.ovsdb_monitor import OvsdbMonitor, Unsupported, jsonrpc_operations

BR, P1, P2, I1, I2 = "b0000000-0000-0000-0000-000000000001", "a1", "a2", "i1", "i2"


def iface_row(name: str, ofport: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "internal",
        "ofport": ofport,
        "options": ["map", []],
        "external_ids": ["map", [["iface-id", f"port-{name}"], ["attached-mac", "fa:16:3e:00:00:01"]]],
        "other_config": ["map", []],
        "mac_in_use": "fa:16:3e:00:00:01",
        "link_state": "up",
        "error": ["set", []],
    }


def port_row(name: str, iface: str, tag: Any = ["set", []]) -> dict[str, Any]:  # noqa: B006 - the default is read, never mutated
    return {
        "name": name,
        "tag": tag,
        "vlan_mode": ["set", []],
        "trunks": ["set", []],
        "other_config": ["map", []],
        "external_ids": ["map", []],
        "interfaces": ["uuid", iface],
    }


def bridge_row(ports: list[str]) -> dict[str, Any]:
    return {
        "name": "br-int",
        "datapath_type": "netdev",
        "fail_mode": "secure",
        "protocols": ["set", ["OpenFlow10", "OpenFlow13"]],
        "other_config": ["map", []],
        "external_ids": ["map", []],
        "controller": ["set", []],
        "ports": ["set", [["uuid", p] for p in ports]],
    }


INITIAL = {
    "Bridge": {BR: {"new": bridge_row([P1])}},
    "Port": {P1: {"new": port_row("tap1", I1)}},
    "Interface": {I1: {"new": iface_row("tap1", 5)}},
    "Controller": {},
    "Open_vSwitch": {"o1": {"new": {"cur_cfg": 7}}},
}


class FakeOvsdb:
    def __init__(self, path: Path, initial: dict[str, Any], *, chunk: int = 0) -> None:
        self.rows = initial
        self.chunk = chunk  # > 0: send every message in pieces of that many bytes
        self.requests: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []  # answers to echo requests we sent
        self.next_cfg = 7
        self.missing: set[str] = set()  # port names a "wait" op finds absent
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen(1)
        self.conn: socket.socket | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg).encode()
        with self.lock:
            assert self.conn is not None
            if self.chunk:
                for i in range(0, len(data), self.chunk):
                    self.conn.sendall(data[i : i + self.chunk])
            else:
                self.conn.sendall(data)

    def push(self, updates: dict[str, Any]) -> None:
        self.send({"method": "update", "params": ["neutrino", updates], "id": None})

    def drop(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.drop()
        self.srv.close()

    def _serve(self) -> None:
        self.conn, _ = self.srv.accept()
        buf, dec = "", json.JSONDecoder()
        while True:
            try:
                data = self.conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data.decode()
            while buf:
                try:
                    msg, end = dec.raw_decode(buf)
                except json.JSONDecodeError:
                    break
                buf = buf[end:].lstrip()
                self._answer(msg)

    def _answer(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method is None:
            self.replies.append(msg)
            return
        self.requests.append(msg)
        if method == "monitor":
            self.send({"result": self.rows, "error": None, "id": msg["id"]})
        elif method == "echo":
            self.send({"result": msg["params"], "error": None, "id": msg["id"]})
        elif method == "transact":
            results: list[Any] = []
            for op in msg["params"][1:]:
                if op["op"] == "wait" and op["where"][0][2] in self.missing:
                    results.append({"error": "timed out", "details": "\"wait\" timed out"})
                    break
                if op["op"] == "mutate" and op["table"] == "Open_vSwitch":
                    self.next_cfg += 1
                if op["op"] == "select":
                    results.append({"rows": [{"next_cfg": self.next_cfg}]})
                else:
                    results.append({"count": 1} if op["op"] in ("update", "mutate") else {})
            self.send({"result": results, "error": None, "id": msg["id"]})
            if not any("error" in r for r in results):
                self.push({"Open_vSwitch": {"o1": {"new": {"cur_cfg": self.next_cfg}}}})


@pytest.fixture
def rundir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="nt-mon-", dir="/tmp"))  # short: unix socket paths are limited
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(rundir: Path) -> Iterator[FakeOvsdb]:
    srv = FakeOvsdb(rundir / "db.sock", json.loads(json.dumps(INITIAL)))
    yield srv
    srv.close()


@pytest.fixture
def monitor(rundir: Path, server: FakeOvsdb) -> Iterator[OvsdbMonitor]:
    mon = OvsdbMonitor(Ovs(rundir), timeout=5).start()
    yield mon
    mon.close()


def rows(updates: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return [{"_uuid": u, **{k: decode(v) for k, v in r["new"].items()}} for u, r in updates.get(table, {}).items()]


def expected(updates: dict[str, Any]) -> sysovs.OvsState:
    return state_from_rows(
        rows(updates, "Bridge"), rows(updates, "Port"), rows(updates, "Interface"), rows(updates, "Controller")
    )


def test_initial_contents_are_what_ovs_vsctl_list_would_show(monitor: OvsdbMonitor, server: FakeOvsdb) -> None:
    st = monitor.state()
    assert st == expected(INITIAL)
    assert st.ports["tap1"].bridge == "br-int" and st.ports["tap1"].ofport == 5
    req = server.requests[0]
    assert req["method"] == "monitor" and req["params"][0] == "Open_vSwitch"
    assert set(req["params"][2]) == {"Bridge", "Port", "Interface", "Controller", "Open_vSwitch"}


def test_updates_insert_modify_delete(monitor: OvsdbMonitor, server: FakeOvsdb) -> None:
    heard: list[int] = []
    monitor.add_listener(lambda: heard.append(monitor.generation))
    first = monitor.state()
    gen = g0 = monitor.generation
    server.push(
        {
            "Interface": {I2: {"new": iface_row("tap2", 6)}},
            "Port": {P2: {"new": port_row("tap2", I2)}},
            "Bridge": {BR: {"new": bridge_row([P1, P2]), "old": {"ports": ["uuid", P1]}}},
        }
    )
    st = monitor.state()
    assert sorted(st.ports) == ["tap1", "tap2"] and st.bridges["br-int"].ports == ("tap1", "tap2")
    assert st.ports["tap1"] is first.ports["tap1"]  # unchanged rows keep their values
    assert monitor.changes_since(gen) == {("Interface", "tap2"), ("Port", "tap2"), ("Bridge", "br-int")}
    gen = monitor.generation
    server.push({"Port": {P1: {"new": port_row("tap1", I1, tag=5), "old": {"tag": ["set", []]}}}})
    st = monitor.state()
    assert st.ports["tap1"].tag == 5 and monitor.changes_since(gen) == {("Port", "tap1")}
    server.push(
        {
            "Port": {P2: {"old": port_row("tap2", I2)}},
            "Interface": {I2: {"old": iface_row("tap2", 6)}},
            "Bridge": {BR: {"new": bridge_row([P1]), "old": {"ports": ["set", []]}}},
        }
    )
    st = monitor.state()
    assert sorted(st.ports) == ["tap1"] and st.bridges["br-int"].ports == ("tap1",)
    assert heard == [g0 + 1, g0 + 2, g0 + 3]  # one call per update notification
    assert monitor.state() == expected(
        {
            "Bridge": {BR: {"new": bridge_row([P1])}},
            "Port": {P1: {"new": port_row("tap1", I1, tag=5)}},
            "Interface": {I1: {"new": iface_row("tap1", 5)}},
        }
    )


def test_messages_split_in_small_pieces(rundir: Path) -> None:
    srv = FakeOvsdb(rundir / "db.sock", json.loads(json.dumps(INITIAL)), chunk=7)
    mon = OvsdbMonitor(Ovs(rundir), timeout=5).start()
    try:
        srv.push({"Port": {P1: {"new": port_row("tap1", I1, tag=9)}}})
        assert mon.state().ports["tap1"].tag == 9
    finally:
        mon.close()
        srv.close()


def test_transact_sends_one_transaction_and_waits_for_vswitchd(monitor: OvsdbMonitor, server: FakeOvsdb) -> None:
    ops = [
        SetPort("tap1", tag=5, vlan_mode="access", trunks=(1, 2), other_config={"net_uuid": "n1"}),
        ClearColumns("Port", "tap1", ("tag",)),
    ]
    monitor.transact(ops)
    txn = next(r for r in server.requests if r["method"] == "transact")
    assert txn["params"][0] == "Open_vSwitch"
    assert txn["params"][1:] == jsonrpc_operations(ops) + [
        {"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]},
        {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]},
    ]
    assert monitor._cur_cfg == server.next_cfg == 8  # returned only once vswitchd caught up


def test_transact_of_a_missing_port_fails_whole(monitor: OvsdbMonitor, server: FakeOvsdb) -> None:
    server.missing.add("nope")
    with pytest.raises(PortNotFound, match='no row "nope" in table Port'):
        monitor.transact([SetPort("tap1", tag=1), SetPort("nope", tag=5)])


def test_unsupported_ops_send_nothing(monitor: OvsdbMonitor, server: FakeOvsdb) -> None:
    with pytest.raises(Unsupported):
        monitor.transact([SetPort("tap1", tag=1), AddPort("br-int", "tap9")])
    monitor.sync()
    assert [r["method"] for r in server.requests] == ["monitor", "echo"]


def test_server_echo_is_answered(monitor: OvsdbMonitor, server: FakeOvsdb) -> None:
    server.send({"method": "echo", "params": ["probe"], "id": "echo"})
    # The reader thread answers; our own sync() echo may overtake that answer, so wait for it.
    deadline = time.monotonic() + 5
    while not server.replies and time.monotonic() < deadline:
        monitor.sync()
        time.sleep(0.01)
    assert server.replies == [{"result": ["probe"], "error": None, "id": "echo"}]


def test_connection_loss_is_reported_and_never_hidden(monitor: OvsdbMonitor, server: FakeOvsdb) -> None:
    lost = threading.Event()
    monitor.add_listener(lambda: None if monitor.alive else lost.set())
    server.drop()
    assert lost.wait(10)
    assert not monitor.alive
    with pytest.raises(OvsdbUnreachable):
        monitor.state()
    with pytest.raises(OvsdbUnreachable):
        monitor.transact([SetPort("tap1", tag=1)])


def test_no_server_is_unreachable(rundir: Path) -> None:
    with pytest.raises(OvsdbUnreachable):
        OvsdbMonitor(Ovs(rundir), timeout=1).start()


def test_jsonrpc_operations_translation() -> None:
    wait = {
        "op": "wait",
        "table": "Port",
        "where": [["name", "==", "p"]],
        "columns": ["name"],
        "until": "!=",
        "rows": [],
        "timeout": 0,
    }
    assert jsonrpc_operations([SetPort("p", tag=5, trunks=(4095,), other_config={"b": "2", "a": "1"})]) == [
        wait,
        {"op": "update", "table": "Port", "where": [["name", "==", "p"]], "row": {"tag": 5, "trunks": ["set", [4095]]}},
        {
            "op": "mutate",
            "table": "Port",
            "where": [["name", "==", "p"]],
            "mutations": [
                ["other_config", "delete", ["set", ["a", "b"]]],
                ["other_config", "insert", ["map", [["a", "1"], ["b", "2"]]]],
            ],
        },
    ]
    assert jsonrpc_operations([ClearColumns("Port", "p", ("tag", "vlan_mode"))]) == [
        wait,
        {
            "op": "update",
            "table": "Port",
            "where": [["name", "==", "p"]],
            "row": {"tag": ["set", []], "vlan_mode": ["set", []]},
        },
    ]
    assert jsonrpc_operations([RemoveKeys("Port", "p", "other_config", ("x",))]) == [
        {
            "op": "mutate",
            "table": "Port",
            "where": [["name", "==", "p"]],
            "mutations": [["other_config", "delete", ["set", ["x"]]]],
        }
    ]
    assert jsonrpc_operations([SetPort("p", tag=None)]) == []
    for bad in (
        AddPort("br", "p"),
        SetColumns("Open_vSwitch", ".", {"x": 1}),
        SetColumns("Port", "p", {"name": "q"}),
        ClearColumns("Interface", "p", ("type",)),
    ):
        with pytest.raises(Unsupported):
            jsonrpc_operations([bad])
