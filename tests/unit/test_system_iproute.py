"""neutrino.system.iproute / netns / exec / errors: argv building, parsing, error mapping."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

from neutrino.system import errors, iproute, netns
from neutrino.system.exec import Completed, netns_argv, run

GOLDEN = Path(__file__).parent.parent / "golden"


# ---------------------------------------------------------------- exec / errors


def test_netns_argv() -> None:
    assert netns_argv(["ip", "link"]) == ["ip", "link"]
    assert netns_argv(["ping", 1], "ns1") == ["ip", "netns", "exec", "ns1", "ping", "1"]
    with pytest.raises(ValueError):
        netns_argv([])


def test_run_real_commands() -> None:
    done = run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"], input="hi")
    assert done.rc == 0 and done.stdout == "HI\n"
    done = run([sys.executable, "-c", "import os; print(os.environ['NX_T'])"], env={"NX_T": "v"})
    assert done.stdout == "v\n"
    bad = run([sys.executable, "-c", "import sys; sys.exit(3)"], check=False)
    assert bad.rc == 3
    with pytest.raises(errors.CommandFailed) as ei:
        run([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(4)"])
    assert ei.value.rc == 4 and ei.value.stderr == "boom"
    with pytest.raises(errors.CommandNotFound):
        run(["/nonexistent/neutrino-nope"])
    with pytest.raises(errors.CommandTimeout):
        run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)


def test_tool_of() -> None:
    assert errors.tool_of(["ip", "netns", "exec", "ns", "env", "A=1", "ovs-vsctl", "show"]) == "ovs-vsctl"
    assert errors.tool_of(["/usr/bin/ovs-ofctl", "dump-flows"]) == "ovs-ofctl"
    assert errors.tool_of(["ip", "-n", "x", "link"]) == "ip"


@pytest.mark.parametrize(
    "argv, stderr, cls",
    [
        (
            ["ip", "netns", "exec", "nope", "true"],
            'Cannot open network namespace "nope": No such file or directory',
            errors.NamespaceNotFound,
        ),
        (
            ["ip", "-n", "nope", "link"],
            'Cannot open network namespace "nope": No such file or directory',
            errors.NamespaceNotFound,
        ),
        (
            ["ip", "netns", "add", "x"],
            'Cannot create namespace file "/run/netns/x": File exists',
            errors.NamespaceExists,
        ),
        (["ip", "link", "set", "dev", "nope", "up"], 'Cannot find device "nope"', errors.DeviceNotFound),
        (["ip", "link", "add", "lo", "type", "dummy"], "RTNETLINK answers: File exists", errors.DeviceExists),
        (
            ["ip", "addr", "add", "10.0.0.1/24", "dev", "lo"],
            "Error: ipv4: Address already assigned.",
            errors.AddressExists,
        ),
        (
            ["ethtool", "-K", "nope", "tx", "off"],
            "netlink error: no device matches name (offset 24)",
            errors.DeviceNotFound,
        ),
        (["ovs-vsctl", "add-port", "br-nope", "x"], "ovs-vsctl: no bridge named br-nope", errors.BridgeNotFound),
        (["ovs-vsctl", "del-port", "nope"], "ovs-vsctl: no port named nope", errors.PortNotFound),
        (["ovs-vsctl", "set", "port", "nope", "tag=1"], 'ovs-vsctl: no row "nope" in table Port', errors.PortNotFound),
        (
            ["ovs-vsctl", "--may-exist", "add-port", "br-tun", "tap1"],
            'ovs-vsctl: "--may-exist add-port br-tun tap1" but tap1 is actually attached to bridge br-int',
            errors.RecordExists,
        ),
        (
            ["ovs-vsctl", "show"],
            "ovs-vsctl: unix:/x/db.sock: database connection failed (No such file or directory)",
            errors.OvsdbUnreachable,
        ),
        (
            ["ovs-vsctl", "set", "port", "tap1", "tag=abc"],
            'ovs-vsctl: "abc" is not a valid integer or range',
            errors.OvsdbError,
        ),
        (
            ["ovs-ofctl", "dump-flows", "br-nope"],
            "ovs-ofctl: br-nope is not a bridge or a socket",
            errors.SwitchUnreachable,
        ),
        (
            ["ovs-ofctl", "dump-flows", "unix:/r/br-x.mgmt"],
            "ovs-ofctl: connecting to unix:/r/br-x.mgmt (No such file or directory)",
            errors.SwitchUnreachable,
        ),
        (
            ["ovs-ofctl", "--bundle", "add-flows", "br", "-"],
            "ovs-ofctl: -:1: unknown action dropx",
            errors.FlowSyntaxError,
        ),
        (
            ["ovs-ofctl", "--bundle", "add-flows", "br", "-"],
            "Error OFPBAC_BAD_OUT_GROUP for: OFPT_FLOW_MOD (OF1.3) (xid=0x7): ADD table:9 "
            "priority=6,ip actions=group:99\nError OFPBFC_MSG_FAILED for: ONFT_BUNDLE_CONTROL",
            errors.FlowRejected,
        ),
        (["ovs-appctl", "-t", "ovs-vswitchd", "x"], 'ovs-appctl: cannot connect to "/x.ctl"', errors.SwitchUnreachable),
        (["sysctl", "-w", "net.nope=1"], "sysctl: cannot stat /proc/sys/net/nope", errors.CommandFailed),
    ],
)
def test_translate(argv: list[str], stderr: str, cls: type) -> None:
    exc = errors.translate(argv, 1, stderr)
    assert type(exc) is cls
    assert isinstance(exc, errors.CommandFailed) and isinstance(exc, errors.HostError)
    assert exc.argv == argv and exc.rc == 1 and exc.stderr == stderr


# ---------------------------------------------------------------- iproute argv


def test_veth_and_link_argv() -> None:
    assert iproute.veth_cmd("und0", "u-h1", peer_netns="fab", mtu=1600) == [
        "link",
        "add",
        "und0",
        "mtu",
        "1600",
        "type",
        "veth",
        "peer",
        "name",
        "u-h1",
        "netns",
        "fab",
        "mtu",
        "1600",
    ]
    assert iproute.ip_argv(*iproute.veth_cmd("a", "b"), netns="h1") == [
        "ip",
        "-n",
        "h1",
        "link",
        "add",
        "a",
        "type",
        "veth",
        "peer",
        "name",
        "b",
    ]
    assert iproute.set_link_cmd("eth0", up=True, mtu=1450, mac_address="FA:16:3E:00:00:01") == [
        "link",
        "set",
        "dev",
        "eth0",
        "mtu",
        "1450",
        "address",
        "fa:16:3e:00:00:01",
        "up",
    ]
    assert iproute.set_link_cmd("x", master="br0", up=False) == ["link", "set", "dev", "x", "master", "br0", "down"]
    assert iproute.set_link_cmd("x", nomaster=True) == ["link", "set", "dev", "x", "nomaster"]
    assert iproute.ethtool_offload_argv("eth0") == ["ethtool", "-K", "eth0", "rx", "off", "tx", "off"]
    assert iproute.route_cmd("replace", "10.0.0.5/16", via="10.0.0.1", dev="eth0", metric=5) == [
        "route",
        "replace",
        "10.0.0.0/16",
        "via",
        "10.0.0.1",
        "dev",
        "eth0",
        "metric",
        "5",
    ]
    assert iproute.route_cmd("del", "default", table=100) == ["route", "del", "default", "table", "100"]


@pytest.mark.parametrize("bad", ["", "a" * 16, "a b", "a/b", "a:b"])
def test_invalid_ifnames(bad: str) -> None:
    with pytest.raises(ValueError):
        iproute.ifname(bad)


def test_typed_values() -> None:
    assert iproute.mac("FA:16:3E:AA:BB:CC") == "fa:16:3e:aa:bb:cc"
    with pytest.raises(ValueError):
        iproute.mac("fa:16:3e")
    assert iproute.interface("10.0.0.1/24") == ipaddress.IPv4Interface("10.0.0.1/24")
    assert iproute.interface("2001:db8::1/64").version == 6
    with pytest.raises(ValueError):
        iproute.set_link_cmd("x", mtu=10)


def test_batch_script() -> None:
    assert (
        iproute.batch_script([["link", "add", "br0", "type", "bridge"], ["link", "set", "dev", "br0", "up"], []])
        == "link add br0 type bridge\nlink set dev br0 up\n"
    )
    for bad in ("a b", 'a"', "", "x#y"):
        with pytest.raises(ValueError):
            iproute.batch_script([["link", "set", bad]])


class Recorder:
    def __init__(self, stdout: str = "", fail: Exception | None = None) -> None:
        self.calls: list[dict] = []
        self.stdout = stdout
        self.fail = fail

    def __call__(self, argv, *, netns=None, env=None, input=None, timeout=30, check=True):
        self.calls.append(dict(argv=list(argv), netns=netns, input=input))
        if self.fail:
            raise self.fail
        return Completed(tuple(argv), 0, self.stdout, "")


def test_batch_runs_one_process() -> None:
    rec = Recorder()
    iproute.batch([["link", "set", "dev", "a", "up"], ["link", "set", "dev", "b", "up"]], netns="h1", runner=rec)
    assert rec.calls == [
        dict(argv=["ip", "-n", "h1", "-batch", "-"], netns=None, input="link set dev a up\nlink set dev b up\n")
    ]
    iproute.batch([], runner=rec)
    assert len(rec.calls) == 1


class BatchRecorder(Recorder):
    """``ip -force -batch``: fails the lines given with their error text (``ip``'s output form)."""

    def __init__(self, errors_by_line: dict[int, str], rc: int = 1, stderr: str | None = None) -> None:
        super().__init__()
        self.errors_by_line, self.rc, self.stderr = errors_by_line, rc, stderr

    def __call__(self, argv, *, netns=None, env=None, input=None, timeout=30, check=True):
        self.calls.append(dict(argv=list(argv), netns=netns, input=input, check=check))
        err = (
            self.stderr
            if self.stderr is not None
            else "".join(f"{text}\nCommand failed -:{n}\n" for n, text in sorted(self.errors_by_line.items()))
        )
        return Completed(tuple(argv), self.rc if err else 0, "", err)


def test_batch_force_is_one_process_and_reports_the_failed_lines() -> None:
    cmds = [
        ["link", "set", "dev", "a", "up"],
        ["addr", "del", "10.0.0.9/32", "dev", "a"],
        ["route", "del", "10.1.0.0/16"],
        ["link", "set", "dev", "nope", "up"],
        ["link", "del", "dev", "b"],
    ]
    rec = BatchRecorder(
        {
            2: "Error: ipv4: Address not found.",
            3: "RTNETLINK answers: No such process",
            4: 'Cannot find device "nope"',
            5: "RTNETLINK answers: Operation not permitted",
        }
    )
    failures = iproute.batch_force(cmds, netns="q1", runner=rec)
    assert rec.calls == [
        dict(
            argv=["ip", "-n", "q1", "-force", "-batch", "-"],
            netns=None,
            check=False,
            input="".join(" ".join(c) + "\n" for c in cmds),
        )
    ]
    assert [(f.line, f.command, f.already_gone) for f in failures] == [
        (2, tuple(cmds[1]), True),
        (3, tuple(cmds[2]), True),
        (4, tuple(cmds[3]), False),
        (5, tuple(cmds[4]), False),
    ]
    assert failures[2].error == 'Cannot find device "nope"'
    assert iproute.batch_force(cmds, runner=BatchRecorder({})) == []
    assert iproute.batch_force([], runner=rec) == [] and len(rec.calls) == 1
    with pytest.raises(errors.NamespaceNotFound):  # the process itself failed: no line to blame
        iproute.batch_force(
            cmds,
            netns="gone",
            runner=BatchRecorder({}, rc=1, stderr='Cannot open network namespace "gone": No such file or directory'),
        )


def test_parse_batch_errors_keeps_multiline_messages() -> None:
    stderr = "RTNETLINK answers: File exists\nmore detail\nCommand failed -:2\nError: x\nCommand failed -:7\n"
    out = iproute.parse_batch_errors(stderr, [["a", "b"], ["link", "add", "x"]])
    assert [(f.line, f.command, f.error) for f in out] == [
        (2, ("link", "add", "x"), "RTNETLINK answers: File exists more detail"),
        (7, (), "Error: x"),
    ]


def test_multipath_routes_are_parsed() -> None:
    routes = iproute.parse_routes(
        '[{"dst":"192.168.0.0/16","flags":[],"nexthops":[{"gateway":"10.0.0.253",'
        '"dev":"qr-1","weight":1,"flags":[]},{"gateway":"10.0.0.254","dev":"qr-1",'
        '"weight":1,"flags":[]}]},{"dst":"default","gateway":"10.0.0.1","dev":"qr-1"}]'
    )
    assert [(r.dst, r.gateway, r.dev, r.nexthops) for r in routes] == [
        ("192.168.0.0/16", None, None, ("10.0.0.253", "10.0.0.254")),
        ("default", "10.0.0.1", "qr-1", ()),
    ]


def test_many_namespaces_in_one_process() -> None:
    rec = Recorder()
    names = ["nt-unit-nonexistent-a", "nt-unit-nonexistent-b"]
    netns.ensure_netns_all(names, lo_up=False, runner=rec)
    assert rec.calls[0] == dict(
        argv=["ip", "-force", "-batch", "-"],
        netns=None,
        input="netns add nt-unit-nonexistent-a\nnetns add nt-unit-nonexistent-b\n",
    )
    # (the recorder made nothing: each is then tried alone, which raises its real error)
    assert [c["argv"] for c in rec.calls[1:]] == [["ip", "netns", "add", n] for n in names]
    with pytest.raises(ValueError):
        netns.ensure_netns_all(["bad name"], runner=rec)
    rec = Recorder()
    netns.remove_netns_all(names, runner=rec)  # none exists: nothing to run
    assert rec.calls == []


def test_set_sysctls_is_one_process() -> None:
    rec = Recorder()
    iproute.set_sysctls([("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.arp_ignore", 1)], netns="q1", runner=rec)
    assert rec.calls == [
        dict(
            argv=["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.arp_ignore=1"],
            netns="q1",
            input=None,
        )
    ]
    iproute.set_sysctls([], netns="q1", runner=rec)
    assert len(rec.calls) == 1
    with pytest.raises(ValueError):
        iproute.set_sysctls([("a b", 1)], runner=rec)


def test_idempotent_removes_swallow_not_found() -> None:
    nf = errors.DeviceNotFound(["ip"], 1, 'Cannot find device "x"')
    iproute.remove_link("x", runner=Recorder(fail=nf))
    iproute.remove_route(
        "10.0.0.0/8", runner=Recorder(fail=errors.CommandFailed(["ip"], 2, "RTNETLINK answers: No such process"))
    )
    iproute.disable_offloads(
        "x", runner=Recorder(fail=errors.CommandFailed(["ethtool"], 1, "Could not change any device features"))
    )
    with pytest.raises(errors.DeviceNotFound):
        iproute.disable_offloads("x", runner=Recorder(fail=nf))


# ---------------------------------------------------------------- parsers (golden ip -j)


def test_parse_links_golden() -> None:
    links = {link.name: link for link in iproute.parse_links((GOLDEN / "ip-link.json").read_text())}
    und = links["und0"]
    assert und.kind == "veth" and und.mtu == 1600 and und.up and und.carrier
    assert und.peer is None and und.peer_ifindex is not None and und.link_netnsid == 0
    assert links["br-underlay"].kind == "tun"  # netdev internal ports are taps
    assert links["lo"].kind is None and links["lo"].mac == "00:00:00:00:00:00"
    assert "ovs-netdev" in links


def test_parse_same_netns_veth_peer() -> None:
    text = (
        '[{"ifindex":7,"link":"vb","ifname":"va","flags":["BROADCAST","MULTICAST","M-DOWN"],'
        '"mtu":1500,"operstate":"DOWN","address":"e6:dc:c8:41:bb:2a",'
        '"linkinfo":{"info_kind":"veth"}}]'
    )
    (va,) = iproute.parse_links(text)
    assert va.peer == "vb" and not va.up and va.operstate == "DOWN"


def test_parse_addresses_and_routes_golden() -> None:
    addrs = iproute.parse_addresses((GOLDEN / "ip-addr.json").read_text())
    assert iproute.Address("br-underlay", ipaddress.ip_interface("192.168.99.1/24"), "global") in addrs
    assert all(a.ifname != "ovs-netdev" for a in addrs)
    routes = iproute.parse_routes((GOLDEN / "ip-route.json").read_text())
    assert routes[0] == iproute.Route("10.50.0.0/16", "192.168.99.2", "br-underlay", None, None, None, "main")
    assert routes[1].prefsrc == "192.168.99.1" and routes[1].scope == "link"
    assert iproute.parse_links("") == [] and iproute.parse_routes("") == []


# What `ip -j -d -batch -` prints for "addr show" + "route show table all" in a DHCP namespace
# (two JSON arrays, one per line; trimmed).
NETNS_BATCH = (
    '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"operstate":"UNKNOWN",'
    '"address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,'
    '"scope":"host","label":"lo"}]},{"ifindex":7,"ifname":"tapaaaaaaaa-aa","flags":["BROADCAST","UP",'
    '"LOWER_UP"],"mtu":1450,"operstate":"UNKNOWN","address":"fa:16:3e:00:00:02","linkinfo":{"info_kind":"tun"},'
    '"addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24,"scope":"global"},{"family":"inet6",'
    '"local":"2001:db8::2","prefixlen":64,"scope":"global"}]}]\n'
    '[{"type":"unicast","dst":"default","gateway":"10.0.0.1","dev":"tapaaaaaaaa-aa","table":"main",'
    '"protocol":"boot","scope":"global","flags":[]},{"type":"unicast","dst":"10.0.0.0/24",'
    '"dev":"tapaaaaaaaa-aa","table":"main","protocol":"kernel","scope":"link","prefsrc":"10.0.0.2","flags":[]},'
    '{"type":"local","dst":"10.0.0.2","dev":"tapaaaaaaaa-aa","table":"local","protocol":"kernel",'
    '"scope":"host","prefsrc":"10.0.0.2","flags":[]},{"type":"unicast","dst":"2001:db8::/64",'
    '"dev":"tapaaaaaaaa-aa","table":"main","protocol":"kernel","scope":"global","metric":256,"flags":[]},'
    '{"type":"unicast","dst":"default","gateway":"2001:db8::1","dev":"tapaaaaaaaa-aa","table":"main",'
    '"protocol":"boot","scope":"global","metric":1024,"flags":[]},{"type":"multicast","dst":"ff00::/8",'
    '"dev":"tapaaaaaaaa-aa","table":"local","protocol":"kernel","scope":"global","metric":256,"flags":[]}]\n'
)


def test_observe_netns_is_one_batch_process() -> None:
    rec = Recorder(stdout=NETNS_BATCH)
    view = iproute.observe_netns(netns="qdhcp-x", runner=rec)
    assert rec.calls == [
        dict(
            argv=["ip", "-n", "qdhcp-x", "-j", "-d", "-batch", "-"],
            netns=None,
            input="addr show\nroute show table all\n",
        )
    ]
    first, second = NETNS_BATCH.splitlines()
    assert view.links == iproute.parse_links(first)
    assert view.addresses == iproute.parse_addresses(first)
    assert [(r.dst, r.gateway) for r in view.routes4] == [("default", "10.0.0.1"), ("10.0.0.0/24", None)]
    assert [(r.dst, r.gateway) for r in view.routes6] == [("2001:db8::/64", None), ("default", "2001:db8::1")]
    assert all(r.table == "main" for r in view.routes4 + view.routes6)


def test_observe_netns_falls_back_to_separate_commands() -> None:
    rec = Recorder(stdout="[]")  # not two arrays: every later command also answers "[]"
    view = iproute.observe_netns(netns="n1", runner=rec)
    assert view == iproute.NetnsView([], [], [], [])
    assert [c["argv"][4:] for c in rec.calls[1:]] == [
        ["-d", "link", "show"],
        ["addr", "show"],
        ["-4", "route", "show", "table", "main"],
        ["-6", "route", "show", "table", "main"],
    ]
    assert iproute.parse_netns_batch("[] [] []") is None and iproute.parse_netns_batch("[1") is None


# ---------------------------------------------------------------- netns


def test_netns_names_and_list() -> None:
    assert netns.check_name("nt1-h1") == "nt1-h1"
    for bad in ("", "../x", "a b", "-x"):
        with pytest.raises(ValueError):
            netns.check_name(bad)
    rec = Recorder(stdout='[{"name":"b"},{"name":"a","id":0}]')
    assert netns.list_netns(runner=rec) == ["a", "b"]
    assert netns.list_netns(runner=Recorder(stdout="")) == []


def test_ensure_netns_tolerates_exists() -> None:
    calls: list[list[str]] = []

    def runner(argv, **kw):
        calls.append(list(argv))
        if argv[:3] == ["ip", "netns", "add"]:
            raise errors.NamespaceExists(argv, 1, "File exists")
        return Completed(tuple(argv), 0, "", "")

    netns.ensure_netns("x1", runner=runner)
    assert calls == [["ip", "netns", "add", "x1"], ["ip", "-n", "x1", "link", "set", "lo", "up"]]
