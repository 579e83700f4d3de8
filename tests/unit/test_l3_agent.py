"""L3 agent executor (no host access: the adapters are replaced): routers applied in
parallel with each router's ops in order and teardowns first, gratuitous ARPs in the
background, observation from one ``ip`` batch (with the family fallback)."""

from __future__ import annotations

import ipaddress
import threading
import time
from pathlib import Path

import pytest

import neutrino.agents.parallel as parallel_mod
from neutrino.agents.l3 import agent as l3_agent
from neutrino.agents.l3.agent import L3Driver, _GarpSender
from neutrino.agents.l3.model import L3Config
from neutrino.agents.l3.planner import (ApplyRules, EnsureNamespace, Garp, Route, SetAddresses, Teardown)
from neutrino.system import iproute


def _driver(tmp_path: Path) -> L3Driver:
    return L3Driver(L3Config(host="h1"), None, tmp_path / "l3")  # type: ignore[arg-type]


def test_apply_all_keeps_each_routers_order_and_tears_down_first(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    drv = _driver(tmp_path)
    done: list[tuple[str, str]] = []
    lock = threading.Lock()

    def apply(op) -> None:  # noqa: ANN001
        time.sleep(0.002)
        with lock:
            done.append((op.router_id, type(op).__name__))

    monkeypatch.setattr(drv, "apply", apply)
    monkeypatch.setattr(parallel_mod.os.path, "ismount", lambda p: True)
    ops = [Teardown("gone1"), Teardown("gone2")]
    for r in ("r1", "r2", "r3", "r4"):
        ops += [EnsureNamespace(r), SetAddresses(r, "qg-x", ()), ApplyRules(r, "")]
    drv.apply_all(ops)
    assert sorted(done) == sorted((op.router_id, type(op).__name__) for op in ops)
    assert {r for r, _ in done[:2]} == {"gone1", "gone2"}
    for r in ("r1", "r2", "r3", "r4"):
        assert [k for rr, k in done if rr == r] == ["EnsureNamespace", "SetAddresses", "ApplyRules"]


def test_one_routers_failure_does_not_stop_its_next_ops_or_others(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    drv = _driver(tmp_path)
    done: list[str] = []

    def apply(op) -> None:  # noqa: ANN001
        if isinstance(op, EnsureNamespace) and op.router_id == "r1":
            raise RuntimeError("boom")
        done.append(f"{op.router_id} {type(op).__name__}")

    monkeypatch.setattr(drv, "apply", apply)
    drv.apply_all([EnsureNamespace("r1"), ApplyRules("r1", ""), EnsureNamespace("r2")])
    assert sorted(done) == ["r1 ApplyRules", "r2 EnsureNamespace"]


def test_garps_are_sent_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    sent: list[tuple[str, str, str | None]] = []

    def garp(dev: str, ip: str, netns: str | None = None) -> None:
        release.wait(5)
        if ip == "10.0.0.9":
            raise RuntimeError("no such device")
        sent.append((dev, ip, netns))

    monkeypatch.setattr(l3_agent.arping, "garp", garp)
    drv = _driver(tmp_path)
    t0 = time.monotonic()
    drv.apply(Garp("r1", "qg-1", ("172.24.4.10", "172.24.4.11", "10.0.0.9")))
    assert time.monotonic() - t0 < 1 and drv.garps.pending == 3     # the pass did not wait
    assert not drv.garps.wait(0.05)
    release.set()
    assert drv.garps.wait(5) and drv.garps.pending == 0
    assert sorted(sent) == [("qg-1", "172.24.4.10", "qrouter-r1"), ("qg-1", "172.24.4.11", "qrouter-r1")]


def test_garp_sender_bounds_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(l3_agent.arping, "garp", lambda *a, **k: release.wait(5))
    sender = _GarpSender(workers=3)
    for i in range(10):
        sender.send("qg-1", f"10.0.0.{i}", "ns")
    assert len(sender.threads) == 3 and all(t.daemon for t in sender.threads)
    release.set()
    assert sender.wait(5)


def _route(dst: str, gw: str | None = None, dev: str | None = "qg-1", proto: str | None = "boot") -> iproute.Route:
    return iproute.Route(dst, gw, dev, proto, None, None, "main")


def _view(routes4: list[iproute.Route], routes6: list[iproute.Route]) -> iproute.NetnsView:
    mac = "fa:16:3e:00:00:01"
    link = iproute.Link("qg-1", 2, "tun", 1500, mac, True, "UNKNOWN", None, None, None, None, ())
    lo = iproute.Link("lo", 1, None, 65536, "00:00:00:00:00:00", True, "UNKNOWN", None, None, None, None, ())
    addrs = [iproute.Address("qg-1", ipaddress.ip_interface("172.24.4.5/24"), "global"),
             iproute.Address("qg-1", ipaddress.ip_interface("fe80::1/64"), "link"),
             iproute.Address("lo", ipaddress.ip_interface("127.0.0.1/8"), "host")]
    return iproute.NetnsView([lo, link], addrs, routes4, routes6)


def test_observe_one_router_from_one_ip_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    view = _view([_route("default", "172.24.4.1"), _route("172.24.4.0/24", proto="kernel"),
                  _route("10.9.0.0/16", "172.24.4.7")],
                 [_route("fe80::/64", proto="kernel")])
    monkeypatch.setattr(l3_agent.netns, "netns_exists", lambda ns: True)
    monkeypatch.setattr(l3_agent.iproute, "observe_netns", lambda netns: view)
    monkeypatch.setattr(l3_agent.iproute, "list_routes", lambda **kw: pytest.fail("no fallback expected"))
    monkeypatch.setattr(l3_agent.iptables, "save", lambda ns: "*nat\nCOMMIT\n")
    obs = L3Driver._observe_one("r1")
    assert obs.namespace and set(obs.devices) == {"qg-1"}
    assert obs.devices["qg-1"].addresses == frozenset({"172.24.4.5/24"})
    assert obs.devices["qg-1"].mac == "fa:16:3e:00:00:01" and obs.devices["qg-1"].mtu == 1500
    assert obs.routes == frozenset({Route("0.0.0.0/0", ("172.24.4.1",)), Route("10.9.0.0/16", ("172.24.4.7",))})
    assert obs.iptables == "*nat\nCOMMIT\n"


def test_observe_default_route_without_gateway_asks_each_family(monkeypatch: pytest.MonkeyPatch) -> None:
    # In the batch output a gateway-less default route has no family: list them per family instead.
    view = _view([_route("default")], [])
    asked: list[int] = []

    def list_routes(*, netns: str, family: int) -> list[iproute.Route]:
        asked.append(family)
        return [] if family == 4 else [_route("default")]

    monkeypatch.setattr(l3_agent.netns, "netns_exists", lambda ns: True)
    monkeypatch.setattr(l3_agent.iproute, "observe_netns", lambda netns: view)
    monkeypatch.setattr(l3_agent.iproute, "list_routes", list_routes)
    monkeypatch.setattr(l3_agent.iptables, "save", lambda ns: "")
    obs = L3Driver._observe_one("r1")
    assert asked == [4, 6]
    assert obs.routes == frozenset({Route("::/0", (), "qg-1")})


def test_observe_without_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(l3_agent.netns, "netns_exists", lambda ns: False)
    assert not L3Driver._observe_one("r1").namespace
