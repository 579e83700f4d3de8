"""DHCP agent planner: ops per situation, convergence, and reload coalescing.

A small in-memory "world" holds the feed (API dicts) and the host state
(``ObservedDhcp`` per network); ``apply`` plays each op the way the executor
would (the DHCP port op creates the port in the feed, with the next free
addresses).  Convergence = planning after applying yields no op.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import replace
from typing import Any

import pytest

from neutrino.agents.dhcp.model import DhcpConfig, dhcp_device_id, network_views, tap_name
from neutrino.agents.dhcp.planner import (
    Coalescer,
    EnsureDhcpPort,
    EnsureNamespace,
    Lease,
    ObservedDevice,
    ObservedDhcp,
    Op,
    PlugTap,
    ReleaseLeases,
    ReloadDnsmasq,
    RestartDnsmasq,
    SetAddresses,
    StartDnsmasq,
    Teardown,
    UnplugTap,
    WriteFiles,
    host_file_leases,
    plan,
)

HOST = "net1"
NET = "5b0c7c1e-8d3a-4e0f-9c1b-2a3d4e5f6a7b"
NET2 = "6c1d8d2f-9e4b-4f1a-8d2c-3b4e5f6a7b8c"
S4 = "6a1f2e3d-4c5b-4a69-8877-665544332211"
S4B = "7b2e3f4a-5d6c-4b7a-9988-776655443322"
DHCP_PORT = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
VM_PORT = "4f2a1b3c-9d8e-4a5b-8c7d-0123456789ab"
VM2_PORT = "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"


class World:
    """Feed dicts + host state; ``apply`` simulates the executor."""

    def __init__(self, cfg: DhcpConfig | None = None) -> None:
        self.cfg = cfg or DhcpConfig(HOST)
        self.networks: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.host: dict[str, ObservedDhcp] = {}
        self.signals: list[tuple[str, str]] = []  # (network, "HUP"/"start"/"restart")
        self.released: list[Lease] = []

    # feed edits
    def add_network(self, nid: str = NET, mtu: int = 1450) -> None:
        self.networks[nid] = {"id": nid, "mtu": mtu, "admin_state_up": True, "subnets": []}

    def add_subnet(self, sid: str, cidr: str, gateway: str | None, nid: str = NET, **kw: Any) -> None:
        self.subnets[sid] = {
            "id": sid,
            "network_id": nid,
            "cidr": cidr,
            "ip_version": 4,
            "gateway_ip": gateway,
            "enable_dhcp": True,
            "dns_nameservers": [],
            "host_routes": [],
            **kw,
        }
        self.networks[nid]["subnets"].append(sid)

    def add_port(
        self,
        pid: str,
        mac: str,
        ips: list[tuple[str, str]],
        nid: str = NET,
        owner: str = "compute:nova",
        device_id: str = "vm",
    ) -> None:
        self.ports[pid] = {
            "id": pid,
            "network_id": nid,
            "mac_address": mac,
            "device_owner": owner,
            "device_id": device_id,
            "fixed_ips": [{"subnet_id": s, "ip_address": ip} for s, ip in ips],
        }

    def _free_ip(self, sid: str) -> str:
        used = {f["ip_address"] for p in self.ports.values() for f in p["fixed_ips"]}
        gw = self.subnets[sid]["gateway_ip"]
        net = ipaddress.ip_network(self.subnets[sid]["cidr"])
        for ip in (net.network_address + i for i in range(2, min(net.num_addresses, 1024))):
            if str(ip) not in used and str(ip) != gw:
                return str(ip)
        raise AssertionError("subnet full")

    # the agent
    def desired(self) -> dict[str, Any]:
        return network_views(self.networks, self.subnets, self.ports)

    def plan(self) -> list[Op]:
        return plan(self.cfg, self.desired(), self.host)

    def apply(self, ops: list[Op]) -> None:
        for op in ops:
            self._apply(op)

    def _apply(self, op: Op) -> None:
        obs = self.host.get(op.network_id, ObservedDhcp())
        if isinstance(op, EnsureNamespace):
            obs = replace(obs, namespace=True)
        elif isinstance(op, EnsureDhcpPort):
            port = next((p for p in self.ports.values() if p["device_id"] == op.device_id), None)
            if port is None:
                port = {
                    "id": DHCP_PORT if DHCP_PORT not in self.ports else f"dhcp-{op.network_id}",
                    "network_id": op.network_id,
                    "mac_address": "fa:16:3e:aa:aa:aa",
                    "device_owner": "network:dhcp",
                    "device_id": op.device_id,
                    "fixed_ips": [],
                }
                self.ports[port["id"]] = port
            keep = [f for f in port["fixed_ips"] if f["subnet_id"] in op.subnet_ids]
            have = {f["subnet_id"] for f in keep}
            port["fixed_ips"] = keep
            for sid in op.subnet_ids:
                if sid not in have:
                    port["fixed_ips"].append({"subnet_id": sid, "ip_address": self._free_ip(sid)})
        elif isinstance(op, UnplugTap):
            obs = replace(obs, devices={k: v for k, v in obs.devices.items() if k != op.device})
        elif isinstance(op, PlugTap):
            cur = obs.devices.get(op.device, ObservedDevice(op.device))
            dev = replace(cur, mac=op.port.mac, mtu=op.mtu)
            obs = replace(obs, devices={**obs.devices, op.device: dev})
        elif isinstance(op, SetAddresses):
            dev = replace(obs.devices[op.device], addresses=frozenset(op.addresses))
            obs = replace(obs, devices={**obs.devices, op.device: dev}, default_route=op.default_route)
        elif isinstance(op, WriteFiles):
            obs = replace(obs, files={**obs.files, **op.files})
        elif isinstance(op, ReleaseLeases):
            self.released += op.leases
        elif isinstance(op, (StartDnsmasq, RestartDnsmasq)):
            assert obs.namespace
            obs = replace(obs, dnsmasq_alive=True, argv=op.argv)
            self.signals.append((op.network_id, "start" if isinstance(op, StartDnsmasq) else "restart"))
        elif isinstance(op, ReloadDnsmasq):
            assert obs.dnsmasq_alive
            self.signals.append((op.network_id, "HUP"))
        elif isinstance(op, Teardown):
            self.host.pop(op.network_id, None)
            for pid in [pid for pid, p in self.ports.items() if p["device_id"] == dhcp_device_id(HOST, op.network_id)]:
                del self.ports[pid]
            return
        self.host[op.network_id] = obs

    def converge(self, max_passes: int = 4) -> list[list[Op]]:
        """Plan and apply until a pass plans nothing; returns the non-empty passes."""
        passes = []
        for _ in range(max_passes):
            ops = self.plan()
            if not ops:
                return passes
            passes.append(ops)
            self.apply(ops)
        raise AssertionError(f"no convergence after {max_passes} passes: {self.plan()}")


def routed_world(cfg: DhcpConfig | None = None) -> World:
    w = World(cfg)
    w.add_network()
    w.add_subnet(S4, "10.0.0.0/24", "10.0.0.1", dns_nameservers=["8.8.8.8"])
    w.add_port(
        "router-port", "fa:16:3e:bb:bb:bb", [(S4, "10.0.0.1")], owner="network:router_interface", device_id="router-r"
    )
    w.add_port(VM_PORT, "fa:16:3e:11:22:33", [(S4, "10.0.0.5")])
    return w


def kinds(ops: list[Op]) -> list[str]:
    return [type(op).__name__ for op in ops]


# --- bring-up and convergence ------------------------------------------------------------
def test_bring_up_from_nothing_then_nothing_to_do() -> None:
    w = routed_world()
    passes = w.converge()
    assert [kinds(p) for p in passes] == [
        ["EnsureNamespace", "EnsureDhcpPort"],
        ["PlugTap", "SetAddresses", "WriteFiles", "StartDnsmasq"],
    ]
    ensure = passes[0][1]
    assert ensure == EnsureDhcpPort(NET, (S4,), dhcp_device_id(HOST, NET))
    plug, addrs, files, start = passes[1]
    assert isinstance(plug, PlugTap) and plug.device == "tapaaaaaaaa-aa" and plug.mtu == 1450
    assert addrs == SetAddresses(NET, "tapaaaaaaaa-aa", ("10.0.0.2/24",), ("10.0.0.1",))
    assert isinstance(files, WriteFiles)
    assert sorted(files.files) == ["addn_hosts", "host", "interface", "leases", "opts"]
    assert files.files["interface"] == "tapaaaaaaaa-aa"
    assert files.files["leases"] == "0 fa:16:3e:bb:bb:bb 10.0.0.1 * *\n0 fa:16:3e:11:22:33 10.0.0.5 * *\n"
    assert isinstance(start, StartDnsmasq) and start.argv[0] == "dnsmasq"
    assert f"--pid-file=/var/lib/neutron/dhcp/{NET}/pid" in start.argv
    assert w.plan() == []


def test_unchanged_network_yields_zero_ops_even_if_dnsmasq_rewrote_leases() -> None:
    w = routed_world()
    w.converge()
    obs = w.host[NET]
    w.host[NET] = replace(obs, files={**obs.files, "leases": "1700000000 fa:16:3e:11:22:33 10.0.0.5 x *\n"})
    assert w.plan() == []


def test_observed_address_formatting_does_not_matter() -> None:
    w = World()
    w.add_network()
    w.add_subnet(S4, "2001:db8::/64", "2001:db8::1", ip_version=6, ipv6_address_mode="dhcpv6-stateful")
    w.converge()
    obs = w.host[NET]
    dev = obs.devices["tapaaaaaaaa-aa"]
    assert dev.addresses == {"2001:db8::2/64"}
    w.host[NET] = replace(
        obs,
        default_route=("2001:db8:0::1",),
        devices={dev.name: replace(dev, addresses=frozenset({"2001:db8:0:0::2/64"}))},
    )
    assert w.plan() == []


# --- port and subnet events ----------------------------------------------------------------
def test_new_port_is_a_reload_not_a_restart() -> None:
    w = routed_world()
    w.converge()
    w.signals.clear()
    w.add_port(VM2_PORT, "fa:16:3e:44:55:66", [(S4, "10.0.0.6")])
    ops = w.plan()
    assert kinds(ops) == ["WriteFiles", "ReloadDnsmasq"]
    assert isinstance(ops[0], WriteFiles) and sorted(ops[0].files) == ["addn_hosts", "host"]
    w.apply(ops)
    assert w.signals == [(NET, "HUP")] and w.plan() == []


def test_removed_port_releases_its_lease_then_reloads() -> None:
    w = routed_world()
    w.converge()
    del w.ports[VM_PORT]
    ops = w.plan()
    assert kinds(ops) == ["WriteFiles", "ReleaseLeases", "ReloadDnsmasq"]
    assert ops[1] == ReleaseLeases(NET, "tapaaaaaaaa-aa", (Lease("10.0.0.5", "fa:16:3e:11:22:33"),))
    w.apply(ops)
    assert w.plan() == []


def test_extra_dhcp_opts_change_rewrites_host_and_opts_only() -> None:
    w = routed_world()
    w.converge()
    w.ports[VM_PORT]["extra_dhcp_opts"] = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}]
    ops = w.plan()
    assert kinds(ops) == ["WriteFiles", "ReloadDnsmasq"]
    assert isinstance(ops[0], WriteFiles) and sorted(ops[0].files) == ["host", "opts"]


def test_router_attach_changes_metadata_route_via_reload() -> None:
    w = World(DhcpConfig(HOST, enable_isolated_metadata=True))
    w.add_network()
    w.add_subnet(S4, "10.0.0.0/24", "10.0.0.1")
    w.converge()
    assert "169.254.169.254/32,10.0.0.2" in w.host[NET].files["opts"]
    w.add_port(
        "router-port", "fa:16:3e:bb:bb:bb", [(S4, "10.0.0.1")], owner="network:router_interface", device_id="router-r"
    )
    ops = w.plan()
    assert kinds(ops) == ["WriteFiles", "ReloadDnsmasq"]
    w.apply(ops)
    assert "169.254.169.254/32,10.0.0.1" in w.host[NET].files["opts"]
    assert w.plan() == []


def test_new_subnet_updates_the_port_then_restarts_with_new_ranges() -> None:
    w = routed_world()
    w.converge()
    w.add_subnet(S4B, "10.1.0.0/24", "10.1.0.1")
    first = w.plan()
    assert first == [EnsureDhcpPort(NET, (S4, S4B), dhcp_device_id(HOST, NET))]
    w.apply(first)
    second = w.plan()
    assert kinds(second) == ["SetAddresses", "WriteFiles", "RestartDnsmasq"]
    assert isinstance(second[0], SetAddresses)
    assert second[0].addresses == ("10.0.0.2/24", "10.1.0.2/24")
    assert isinstance(second[1], WriteFiles) and "leases" in second[1].files
    restart = second[2]
    assert isinstance(restart, RestartDnsmasq)
    assert any(a.startswith(f"--dhcp-range=set:subnet-{S4B},") for a in restart.argv)
    w.apply(second)
    assert w.plan() == []


def test_mtu_change_replugs_and_restarts() -> None:
    w = routed_world()
    w.converge()
    w.networks[NET]["mtu"] = 1400
    ops = w.plan()
    assert kinds(ops) == ["PlugTap", "WriteFiles", "RestartDnsmasq"]
    assert isinstance(ops[0], PlugTap) and ops[0].mtu == 1400
    assert isinstance(ops[2], RestartDnsmasq)
    assert "--dhcp-option-force=option:mtu,1400" in ops[2].argv
    w.apply(ops)
    assert w.plan() == []


def test_dead_dnsmasq_is_started_again_with_fresh_leases() -> None:
    w = routed_world()
    w.converge()
    w.host[NET] = replace(w.host[NET], dnsmasq_alive=False, argv=())
    ops = w.plan()
    assert kinds(ops) == ["WriteFiles", "StartDnsmasq"]
    assert isinstance(ops[0], WriteFiles) and list(ops[0].files) == ["leases"]


def test_lost_addresses_and_stale_devices_are_repaired() -> None:
    w = routed_world()
    w.converge()
    obs = w.host[NET]
    tap = obs.devices["tapaaaaaaaa-aa"]
    w.host[NET] = replace(
        obs,
        default_route=(),
        devices={
            tap.name: replace(tap, addresses=frozenset({"10.0.0.99/24"})),
            "tapdeadbeef-00": ObservedDevice("tapdeadbeef-00"),
        },
    )
    ops = w.plan()
    assert ops == [
        UnplugTap(NET, "tapdeadbeef-00"),
        SetAddresses(NET, "tapaaaaaaaa-aa", ("10.0.0.2/24",), ("10.0.0.1",)),
    ]
    w.apply(ops)
    assert w.plan() == []


def test_replaced_dhcp_port_moves_the_tap_without_restart() -> None:
    w = routed_world()
    w.converge()
    old = w.ports.pop(DHCP_PORT)
    new_id = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
    w.ports[new_id] = dict(old, id=new_id, mac_address="fa:16:3e:cc:cc:cc")
    ops = w.plan()
    assert kinds(ops) == ["UnplugTap", "PlugTap", "SetAddresses", "WriteFiles"]
    assert isinstance(ops[3], WriteFiles) and ops[3].files == {"interface": tap_name(new_id)}
    w.apply(ops)
    assert w.plan() == []


# --- teardown ------------------------------------------------------------------------------
def test_network_gone_or_unscheduled_is_torn_down() -> None:
    w = routed_world()
    w.converge()
    del w.networks[NET]
    assert w.plan() == [Teardown(NET, ("tapaaaaaaaa-aa",))]


def test_dhcp_disabled_or_admin_down_is_torn_down() -> None:
    w = routed_world()
    w.converge()
    w.subnets[S4]["enable_dhcp"] = False
    ops = w.plan()
    assert ops == [Teardown(NET, ("tapaaaaaaaa-aa",))]
    w.apply(ops)
    assert w.plan() == []  # port released, nothing observed: done
    w.subnets[S4]["enable_dhcp"] = True
    w.converge()
    w.networks[NET]["admin_state_up"] = False
    assert kinds(w.plan()) == ["Teardown"]


def test_networks_without_dhcp_are_ignored_and_teardown_comes_first() -> None:
    w = routed_world()
    w.add_network(NET2)
    w.add_subnet(S4B, "10.1.0.0/24", "10.1.0.1", nid=NET2, enable_dhcp=False)
    w.host["gone-net"] = ObservedDhcp(namespace=True)
    ops = w.plan()
    assert ops[0] == Teardown("gone-net")
    assert {op.network_id for op in ops[1:]} == {NET}


# --- helpers ---------------------------------------------------------------------------------
def test_host_file_leases_parses_every_line_shape() -> None:
    text = (
        "fa:16:3e:11:22:33,host-10-0-0-5.openstacklocal,10.0.0.5\n"
        "fa:16:3e:11:22:34,id:01:aa,h.openstacklocal,10.0.0.6,set:port-x\n"
        "FA:16:3E:11:22:35,tag:dhcpv6,h6.openstacklocal,[2001:db8::5]\n"
        "fa:16:3e:11:22:36,set:port-y\n"
    )
    assert host_file_leases(text) == {
        Lease("10.0.0.5", "fa:16:3e:11:22:33"),
        Lease("10.0.0.6", "fa:16:3e:11:22:34", "01:aa"),
        Lease("2001:db8::5", "fa:16:3e:11:22:35"),
    }


# --- coalescing ------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_coalescer_first_request_is_immediate() -> None:
    clock = FakeClock()
    c: Coalescer[str] = Coalescer(clock)
    assert c.due() == [] and c.next_due() is None
    c.request(NET)
    assert c.next_due() == clock.now
    assert c.due() == [NET]
    assert c.pending == frozenset()


def test_coalescer_burst_gives_at_most_one_reload_per_200ms_and_loses_none() -> None:
    clock = FakeClock()
    c: Coalescer[str] = Coalescer(clock, interval=0.2)
    start = clock.now
    flushes: list[float] = []
    # A 1 s burst: a port event every 10 ms; the executor ticks every 10 ms too.
    for i in range(100):
        clock.now = start + i * 0.01
        c.request(NET)
        if c.due():
            flushes.append(clock.now)
    # After the burst, tick until nothing is pending.
    while c.pending:
        nxt = c.next_due()
        assert nxt is not None and nxt > clock.now - 1e-9
        clock.now = nxt
        if c.due():
            flushes.append(clock.now)
    assert flushes[0] == start
    gaps = [b - a for a, b in itertools.pairwise(flushes)]
    assert all(g >= 0.2 - 1e-9 for g in gaps)
    assert len(flushes) <= 1 + 1.0 / 0.2 + 1
    # The last event (t = 0.99 s) is covered by a flush at or after it.
    assert flushes[-1] >= start + 0.99 - 1e-9


def test_coalescer_is_per_network_and_forgets() -> None:
    clock = FakeClock()
    c: Coalescer[str] = Coalescer(clock)
    c.request("b")
    c.request("a")
    assert c.due() == ["a", "b"]
    clock.now += 0.05
    c.request("a")
    c.request("c")
    assert c.due() == ["c"]  # "a" flushed 50 ms ago: held
    assert c.next_due() == pytest.approx(1000.2)
    c.forget("a")  # restarted meanwhile: reload is moot
    assert c.pending == frozenset() and c.next_due() is None
    clock.now += 1.0
    c.request("a")
    assert c.due() == ["a"]


def test_removed_ipv6_port_is_released_with_lease_file_identifiers() -> None:
    w = World()
    w.add_network()
    w.add_subnet(S4, "2001:db8::/64", None, ip_version=6, ipv6_address_mode="dhcpv6-stateful")
    w.add_port(VM_PORT, "fa:16:3e:11:22:33", [(S4, "2001:db8::5")])
    w.add_port(VM2_PORT, "fa:16:3e:44:55:66", [(S4, "2001:db8::6")])
    w.converge()
    obs = w.host[NET]
    w.host[NET] = replace(
        obs,
        files={
            **obs.files,
            "leases": ("duid 00:01:00:01:aa:bb\n1700000000 1122867 2001:db8::5 host-2001-db8--5 00:04:cc:dd\n"),
        },
    )
    del w.ports[VM_PORT]
    del w.ports[VM2_PORT]  # no lease known for ::6: nothing to release for it
    ops = w.plan()
    assert kinds(ops) == ["WriteFiles", "ReleaseLeases", "ReloadDnsmasq"]
    assert ops[1] == ReleaseLeases(
        NET,
        "tapaaaaaaaa-aa",
        (Lease("2001:db8::5", "fa:16:3e:11:22:33", "00:04:cc:dd", "1122867", "00:01:00:01:aa:bb"),),
    )
