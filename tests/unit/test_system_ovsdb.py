"""neutrino.system.ovsdb: op -> ovs-vsctl argv, value syntax, parsing `--format=json` output."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino.system.exec import Completed
from neutrino.system.ovsdb import (
    AddBridge,
    AddPort,
    ClearColumns,
    DelBridge,
    DelPort,
    Ovs,
    PrivateOvs,
    RemoveKeys,
    SetBridge,
    SetController,
    SetInterface,
    SetPort,
    atom,
    column_args,
    decode,
    parse_state,
    parse_tables,
    transaction_args,
)

GOLDEN = Path(__file__).parent.parent / "golden"


def test_atoms_and_columns() -> None:
    assert atom("fa:16:3e:00:00:01") == '"fa:16:3e:00:00:01"'
    assert atom('a"b') == '"a\\"b"'
    assert atom(5) == "5" and atom(True) == "true"
    assert column_args("tag", 4095) == ["tag=4095"]
    assert column_args("trunks", (1, 2)) == ["trunks=[1,2]"]
    assert column_args("trunks", ()) == ["trunks=[]"]
    assert column_args("protocols", ("OpenFlow10", "OpenFlow13")) == ['protocols=["OpenFlow10","OpenFlow13"]']
    assert column_args("external_ids", {"iface-id": "p1", "attached-mac": "fa:16:3e:00:00:01"}) == [
        'external_ids:"attached-mac"="fa:16:3e:00:00:01"',
        'external_ids:"iface-id"="p1"',
    ]
    assert column_args("tag", None) == []
    with pytest.raises(TypeError):
        atom(1.5)


def test_transaction_args_neutron_like() -> None:
    ops = [
        AddBridge(
            "br-int",
            datapath_type="netdev",
            fail_mode="secure",
            protocols=("OpenFlow10", "OpenFlow13"),
            other_config={"mac-table-size": "50000"},
        ),
        AddPort(
            "br-int",
            "tap1",
            type="internal",
            external_ids={"iface-id": "p1"},
            tag=4095,
            vlan_mode="trunk",
            trunks=(4095,),
            other_config={"net_uuid": "n1"},
        ),
        AddPort("br-tun", "vxlan-c0a86302", type="vxlan", options={"remote_ip": "192.168.99.2", "key": "flow"}),
        AddBridge("br-x"),
        SetPort("tap1", tag=1),
        ClearColumns("Port", "tap1", ("vlan_mode", "trunks")),
        SetInterface("tap1", external_ids={"iface-status": "active"}),
        SetBridge("br-int", fail_mode="secure"),
        RemoveKeys("Port", "tap1", "other_config", ("net_uuid",)),
        SetController("br-int", ("tcp:127.0.0.1:6633",)),
        SetController("br-int"),
        DelPort("tap9"),
        DelPort("tap9", bridge="br-int"),
        DelBridge("br-old"),
        SetPort("tap1"),  # nothing to set: no command at all
    ]
    assert transaction_args(ops) == [
        "--",
        "--may-exist",
        "add-br",
        "br-int",
        "--",
        "set",
        "Bridge",
        "br-int",
        'datapath_type="netdev"',
        'fail_mode="secure"',
        'protocols=["OpenFlow10","OpenFlow13"]',
        'other_config:"mac-table-size"="50000"',
        "--",
        "--may-exist",
        "add-port",
        "br-int",
        "tap1",
        "--",
        "set",
        "Port",
        "tap1",
        "tag=4095",
        'vlan_mode="trunk"',
        "trunks=[4095]",
        'other_config:"net_uuid"="n1"',
        "--",
        "set",
        "Interface",
        "tap1",
        'type="internal"',
        'external_ids:"iface-id"="p1"',
        "--",
        "--may-exist",
        "add-port",
        "br-tun",
        "vxlan-c0a86302",
        "--",
        "set",
        "Interface",
        "vxlan-c0a86302",
        'type="vxlan"',
        'options:"key"="flow"',
        'options:"remote_ip"="192.168.99.2"',
        "--",
        "--may-exist",
        "add-br",
        "br-x",
        "--",
        "set",
        "Port",
        "tap1",
        "tag=1",
        "--",
        "clear",
        "Port",
        "tap1",
        "vlan_mode",
        "trunks",
        "--",
        "set",
        "Interface",
        "tap1",
        'external_ids:"iface-status"="active"',
        "--",
        "set",
        "Bridge",
        "br-int",
        'fail_mode="secure"',
        "--",
        "--if-exists",
        "remove",
        "Port",
        "tap1",
        "other_config",
        '"net_uuid"',
        "--",
        "set-controller",
        "br-int",
        "tcp:127.0.0.1:6633",
        "--",
        "del-controller",
        "br-int",
        "--",
        "--if-exists",
        "del-port",
        "tap9",
        "--",
        "--if-exists",
        "del-port",
        "br-int",
        "tap9",
        "--",
        "--if-exists",
        "del-br",
        "br-old",
    ]
    assert transaction_args([]) == []


class Recorder:
    def __init__(self, stdout: str = "") -> None:
        self.calls: list[dict] = []
        self.stdout = stdout

    def __call__(self, argv, *, netns=None, env=None, input=None, timeout=30, check=True):
        self.calls.append(dict(argv=list(argv), netns=netns, env=env, timeout=timeout))
        return Completed(tuple(argv), 0, self.stdout, "")


def test_one_call_per_transaction_with_db_env_and_netns(tmp_path: Path) -> None:
    rec = Recorder()
    ovs = Ovs(tmp_path, "h1", runner=rec, timeout=7)
    ovs.transact([AddBridge("br-int", datapath_type="netdev"), DelPort("x")])
    assert len(rec.calls) == 1
    call = rec.calls[0]
    assert call["argv"][:3] == ["ovs-vsctl", f"--db=unix:{tmp_path}/db.sock", "--timeout=7"]
    assert call["netns"] == "h1"
    d = str(tmp_path)
    assert call["env"] == {"OVS_RUNDIR": d, "OVS_DBDIR": d, "OVS_LOGDIR": d, "OVS_SYSCONFDIR": d}
    ovs.transact([])
    ovs.transact([SetPort("x")])
    assert len(rec.calls) == 1  # empty transactions run nothing
    ovs.transact([DelBridge("b")], wait=False)
    assert "--no-wait" in rec.calls[-1]["argv"]


def test_system_instance_handle() -> None:
    ovs = Ovs(None, None)
    assert ovs.env == {}
    assert ovs.db == "unix:/var/run/openvswitch/db.sock"
    assert ovs.mgmt("br-int") == "unix:/var/run/openvswitch/br-int.mgmt"


def test_decode() -> None:
    assert decode(["set", []]) == []
    assert decode(["map", [["a", "1"]]]) == {"a": "1"}
    assert decode(["uuid", "u1"]) == "u1"
    assert decode(["set", [["uuid", "u1"], ["uuid", "u2"]]]) == ["u1", "u2"]
    assert decode("x") == "x" and decode(5) == 5


def test_parse_golden_observe() -> None:
    text = (GOLDEN / "vsctl-observe.json").read_text()
    assert len(parse_tables(text)) == 4
    state = parse_state(text)
    assert set(state.bridges) == {"br-int", "br-tun", "br-phys", "br-underlay", "br-misc"}
    br_int = state.bridges["br-int"]
    assert br_int.datapath_type == "netdev" and br_int.fail_mode == "secure"
    assert br_int.protocols == ("OpenFlow10", "OpenFlow13")
    assert set(br_int.ports) == {"br-int", "patch-tun", "int-br-phys", "tapvm1"}
    assert state.bridges["br-underlay"].fail_mode is None
    misc = state.bridges["br-misc"]
    assert misc.controllers == ("tcp:127.0.0.1:6633",)
    assert misc.other_config == {"disable-in-band": "true"}
    assert misc.external_ids == {"bridge-id": "br-misc"}

    vm = state.ports["tapvm1"]
    assert (vm.bridge, vm.tag, vm.vlan_mode, vm.trunks) == ("br-int", 1, None, ())
    assert vm.other_config["segmentation_id"] == "100"
    assert vm.iface.external_ids == {
        "iface-id": "4f2a1b3c-9d8e-4a1b-8c2d-0123456789ab",
        "attached-mac": "fa:16:3e:00:00:01",
        "iface-status": "active",
    }
    assert vm.iface.type == "internal" and isinstance(vm.ofport, int) and vm.ofport > 0
    iso = state.ports["tapiso"]
    assert (iso.tag, iso.vlan_mode, iso.trunks) == (4095, "trunk", (4095,))
    vx = state.ports["vxlan-c0a86302"]
    assert vx.iface.type == "vxlan"
    assert vx.iface.options["remote_ip"] == "192.168.99.2"
    assert state.ports["phy0"].iface.type == ""
    assert state.ports["br-int"].ofport == 65534
    assert [p.name for p in sorted(state.ports_on("br-tun"), key=lambda p: p.name)] == [
        "br-tun",
        "patch-int",
        "vxlan-c0a86302",
    ]


def test_private_ovs_specs(tmp_path: Path) -> None:
    inst = PrivateOvs(tmp_path, "h1", uuid="u-123")
    db = inst.ovsdb_server
    assert db.daemonizes and db.netns == "h1" and db.uuid == "u-123"
    assert db.pidfile == tmp_path / "ovsdb-server.pid"
    assert db.argv[:3] == ("ovsdb-server", str(tmp_path / "conf.db"), f"--remote=punix:{tmp_path}/db.sock")
    assert "--detach" in db.argv and "--mlockall" not in db.argv
    assert db.environment()["OVS_RUNDIR"] == str(tmp_path)
    assert db.environment()["NEUTRINO_PROCESS_UUID"] == "u-123"
    assert inst.vswitchd.argv[:2] == ("ovs-vswitchd", f"unix:{tmp_path}/db.sock")
