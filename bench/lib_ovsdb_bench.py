#!/usr/bin/env python3
"""OVSDB client benchmark: our monitor (``neutrino.system.ovsdb_monitor``) against the ``ovs``
package's IDL and ovsdbapp, on what an OVS agent resync costs.  Prints figures; asserts nothing.

    .venv/bin/python bench/lib_ovsdb_bench.py [--ports 1000] [--repeat 5]

Needs Open vSwitch's ovsdb-server and ovsdb-tool (no root, no namespace, no ovs-vswitchd: only
the database is exercised).  A private ovsdb-server is started in a temporary directory (tracked
by pidfile + uuid through ``neutrino.system.process``), filled with one bridge and N ports whose
Interface rows carry ``external_ids`` (iface-id, attached-mac, iface-status, vm-uuid) as the
compute agent writes them, and stopped by pid at the end, even on failure.

For each client, over ``--repeat`` fresh connections (median shown):

* initial: connect, monitor Bridge/Port/Interface/Controller (the columns ``Ovs.observe`` reads)
  and Open_vSwitch.cur_cfg, and hold the N rows in memory (wall time and CPU of this process);
* state: from those rows to an ``OvsState`` (what the agent's planner takes);
* update: one Interface's external_ids changed by another client, until the change is visible
  (median of 20 changes).

``ovs-vsctl list`` (``Ovs.observe()``, a subprocess) is shown for reference.  The IDL ships a C
JSON parser only when built against libopenvswitch; the version line says which parser ran.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neutrino.system import ovsdb as sysovs  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system import process  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.system.ovsdb_monitor import MONITORED, OvsdbMonitor  # noqa: E402 - imported after sys.path names the bench folder

BRIDGE = "br-int"


def populate(ovs: sysovs.Ovs, n: int) -> None:
    """One bridge and ``n`` ports with their Interface external_ids, 250 ports per transaction."""
    ovs.transact([sysovs.AddBridge(BRIDGE)], wait=False)
    for start in range(0, n, 250):
        ops = [
            sysovs.AddPort(
                BRIDGE,
                f"tap{i:05d}",
                type="internal",
                tag=1 + i % 10,
                external_ids={
                    "iface-id": str(uuid.uuid4()),
                    "attached-mac": f"fa:16:3e:00:{i >> 8 & 255:02x}:{i & 255:02x}",
                    "iface-status": "active",
                    "vm-uuid": str(uuid.uuid4()),
                },
            )
            for i in range(start, min(n, start + 250))
        ]
        ovs.transact(ops, wait=False)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def set_ext(ovs: sysovs.Ovs, name: str, value: str) -> None:
    ovs.transact([sysovs.SetInterface(name, external_ids={"bench": value})], wait=False)


def _bench_value(state: sysovs.OvsState) -> str | None:
    iface = state.ports["tap00007"].iface
    return iface.external_ids.get("bench") if iface else None


# ---- ours ---------------------------------------------------------------------------------------


def bench_ours(ovs: sysovs.Ovs, n: int) -> dict[str, float]:
    mon, wall, cpu = timed(lambda: OvsdbMonitor(ovs).start())
    try:
        mon.sync()
        _, swall, _ = timed(mon.state)
        state = mon.state()
        assert len(state.ports) == n + 1, len(state.ports)  # + the bridge's own port
        lat = []
        for k in range(20):
            value = f"ours-{k}"
            set_ext(ovs, "tap00007", value)
            t1 = time.perf_counter()
            while _bench_value(mon.state()) != value:
                pass
            lat.append(time.perf_counter() - t1)
        return {"initial": wall, "initial_cpu": cpu, "state": swall, "update": statistics.median(lat)}
    finally:
        mon.close()


# ---- the ovs package's IDL --------------------------------------------------------------------------


def _idl(remote: str) -> Any:
    import ovs.db.idl

    helper = ovs.db.idl.SchemaHelper(location=str(sysovs.VSWITCH_SCHEMA))
    for table, columns in MONITORED.items():
        helper.register_columns(table, list(columns))
    return ovs.db.idl.Idl(remote, helper)


def _idl_run_until(idl: Any, done: Callable[[], bool], timeout: float = 30) -> None:
    import ovs.poller

    deadline = time.monotonic() + timeout
    while True:
        idl.run()
        if done():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("IDL did not converge")
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.timer_wait(100)
        poller.block()


def _idl_rows(idl: Any, table: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """IDL rows in the decoded form ``state_from_rows`` takes (``_uuid`` + columns)."""
    out = []
    for row in idl.tables[table].rows.values():
        r = {"_uuid": str(row.uuid)}
        for c in columns:
            r[c] = sysovs.decode(row._data[c].to_json())  # the wire form, as our monitor sees it
        out.append(r)
    return out


def idl_state(idl: Any) -> sysovs.OvsState:
    return sysovs.state_from_rows(
        *(_idl_rows(idl, t, MONITORED[t]) for t in ("Bridge", "Port", "Interface", "Controller"))
    )


def bench_idl(ovs: sysovs.Ovs, n: int) -> dict[str, float]:
    def connect() -> Any:
        idl = _idl(ovs.db)
        _idl_run_until(idl, lambda: idl.has_ever_connected() and len(idl.tables["Interface"].rows) >= n + 1)
        return idl

    idl, wall, cpu = timed(connect)
    try:
        state, swall, _ = timed(lambda: idl_state(idl))
        assert len(state.ports) == n + 1, len(state.ports)  # + the bridge's own port
        lat = []
        row = next(r for r in idl.tables["Interface"].rows.values() if r.name == "tap00007")
        for k in range(20):
            value = f"idl-{k}"
            set_ext(ovs, "tap00007", value)
            t1 = time.perf_counter()
            _idl_run_until(idl, lambda value=value: row.external_ids.get("bench") == value)
            lat.append(time.perf_counter() - t1)
        return {"initial": wall, "initial_cpu": cpu, "state": swall, "update": statistics.median(lat)}
    finally:
        idl.close()


# ---- ovsdbapp -----------------------------------------------------------------------------------


def bench_ovsdbapp(ovs: sysovs.Ovs, n: int) -> dict[str, float]:
    from ovsdbapp.backend.ovs_idl import connection
    from ovsdbapp.schema.open_vswitch import impl_idl

    def connect() -> Any:
        idl = _idl(ovs.db)
        conn = connection.Connection(idl, timeout=30)
        # Backend keeps ONE connection per class (the first one given); each round needs its own.
        impl_idl.OvsdbIdl._ovsdb_connection = None
        api = impl_idl.OvsdbIdl(conn)  # starts the connection thread, waits for the contents
        rows = api.db_list("Interface", columns=["name", "external_ids"]).execute(check_error=True)
        assert len(rows) == n + 1, len(rows)
        return conn, api

    (conn, api), wall, cpu = timed(connect)
    try:
        # ovsdbapp's read path is db_list (dicts per row); the state built from its IDL as above
        _, lwall, _ = timed(
            lambda: api.db_list("Interface", columns=list(MONITORED["Interface"])).execute(check_error=True)
        )
        state, swall, _ = timed(lambda: idl_state(conn.idl))
        assert len(state.ports) == n + 1, (len(state.ports), {t: len(conn.idl.tables[t].rows) for t in MONITORED})
        lat = []
        for k in range(20):
            value = f"app-{k}"
            set_ext(ovs, "tap00007", value)
            t1 = time.perf_counter()
            while api.db_get("Interface", "tap00007", "external_ids").execute(check_error=True).get("bench") != value:
                time.sleep(0.0005)
            lat.append(time.perf_counter() - t1)
        return {"initial": wall, "initial_cpu": cpu, "state": swall, "db_list": lwall, "update": statistics.median(lat)}
    finally:
        conn.stop()


def bench_vsctl(ovs: sysovs.Ovs, n: int) -> dict[str, float]:
    state, wall, _ = timed(ovs.observe)
    assert len(state.ports) == n + 1
    return {"initial": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ports", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import ovs.json
    import ovs.version
    import ovsdbapp

    try:
        import ovs._json

        parser = "C"
    except ImportError:
        parser = "pure Python"
    from importlib.metadata import version

    server = subprocess.run(["ovsdb-server", "--version"], capture_output=True, text=True).stdout
    print(
        f"ovs (python) {version('ovs')} [{parser} JSON parser], ovsdbapp {version('ovsdbapp')}, "
        f"{server.splitlines()[0]}, python {sys.version.split()[0]}"
    )
    del ovs, ovsdbapp

    with tempfile.TemporaryDirectory(prefix="neutrino-libovsdb-") as tmp:
        priv = sysovs.PrivateOvs(Path(tmp) / "ovs", None)
        try:
            priv.rundir.mkdir(parents=True)
            priv.runner(["ovsdb-tool", "create", str(priv.rundir / "conf.db"), str(sysovs.VSWITCH_SCHEMA)])
            process.start(priv.ovsdb_server)
            ovs = priv.ovs
            ovs.vsctl("init", wait=False)
            t0 = time.perf_counter()
            populate(ovs, args.ports)
            print(f"{args.ports} ports on {BRIDGE} in {time.perf_counter() - t0:.1f} s")
            rows: dict[str, list[dict[str, float]]] = {}
            for _ in range(args.repeat):
                for name, fn in (
                    ("ours (ovsdb_monitor)", bench_ours),
                    ("ovs IDL", bench_idl),
                    ("ovsdbapp", bench_ovsdbapp),
                    ("ovs-vsctl list", bench_vsctl),
                ):
                    rows.setdefault(name, []).append(fn(ovs, args.ports))
            print(
                f"\n{'client':22} {'initial':>9} {'init CPU':>9} {'to state':>9} {'update':>9}  (median of "
                f"{args.repeat}; update: median of 20)"
            )
            for name, runs in rows.items():

                def med(key: str, runs: list[dict[str, float]] = runs) -> str:
                    vals = [r[key] for r in runs if key in r]
                    return f"{statistics.median(vals) * 1000:7.1f}ms" if vals else f"{'-':>9}"

                extra = f"   db_list {med('db_list')}" if "db_list" in runs[0] else ""
                print(
                    f"{name:22} {med('initial'):>9} {med('initial_cpu'):>9} {med('state'):>9} {med('update'):>9}{extra}"
                )
        finally:
            process.stop(priv.ovsdb_server)


if __name__ == "__main__":
    main()
