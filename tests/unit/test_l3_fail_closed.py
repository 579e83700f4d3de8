"""Issue 13, finding 3: one bad router never blocks the others' (L3 agent, against the
in-memory host of test_l3_agent).

A router whose view cannot be built, whose namespace cannot be observed, whose
planning fails, whose ops fail or whose port cannot be bound is left as it is
(and retried), every other router is served, and ``reconcile_error`` in the
agent's configurations names the router.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from neutrino.agents.l3.model import namespace_name
from neutrino.agents.l3.planner import plan
from neutrino.system import errors
from tests.unit.test_l3_agent import CFG, FakeHost, _driver, _feed, _routers, _state, fake_host_fixture  # noqa: F401 - registers the `host` fixture here


def _reconcile(drv: Any, feed: dict[str, Any], rev: int = 1) -> None:
    asyncio.run(drv.reconcile(_state(feed, rev), True))


def _served(host: FakeHost, feed: dict[str, Any]) -> set[str]:
    """Routers whose namespace has its ruleset (i.e. went through a whole pass)."""
    return {r for r in feed["router"] if namespace_name(r) in host.ns and host.ns[namespace_name(r)].iptables}


def test_a_router_whose_planning_fails_gets_no_op_and_the_others_are_planned() -> None:
    views = _routers(3)
    bad = sorted(views)[1]
    fip = views[bad].floating_ips[0]
    views[bad] = replace(views[bad], floating_ips=(replace(fip, floating_ip_address="172.24.29.9%a\nb"),))
    problems: dict[str, str] = {}
    ops = plan(CFG, views, {}, problems)
    assert {op.router_id for op in ops} == set(views) - {bad}
    assert list(problems) == [bad] and "not planned (ValueError" in problems[bad]


def test_a_router_whose_view_cannot_be_built_is_left_as_it_is(tmp_path: Path, host: FakeHost) -> None:
    feed = _feed(3)
    rids = sorted(feed["router"])
    drv = _driver(tmp_path, host)
    _reconcile(drv, feed)
    assert _served(host, feed) == set(rids)
    before = host.ns[namespace_name(rids[0])].iptables
    feed["router"][rids[0]] = {**feed["router"][rids[0]], "external_gateway_info": "not a dict"}
    feed["floatingip"]["fip-2-9"] = {
        **feed["floatingip"]["fip-2-0"],
        "id": "fip-2-9",
        "floating_ip_address": "172.24.29.3",
        "fixed_ip_address": "10.2.0.99",
    }
    _reconcile(drv, feed, 2)
    assert namespace_name(rids[0]) in host.ns  # not torn down ...
    assert host.ns[namespace_name(rids[0])].iptables == before  # ... nor changed
    assert "172.24.29.3" in host.ns[namespace_name(rids[2])].iptables  # the others served
    report = drv.configurations()["reconcile_error"]
    assert report.startswith(f"router {rids[0]}: cannot be read") and rids[2] not in report
    assert rids[0] in drv.retry


def test_a_router_that_cannot_be_observed_or_applied_does_not_stop_the_others(tmp_path: Path, host: FakeHost) -> None:
    feed = _feed(4)
    rids = sorted(feed["router"])
    clock = [1000.0]
    drv = _driver(tmp_path, host, clock=lambda: clock[0])
    _reconcile(drv, feed)
    host.faults[("iptables-save", namespace_name(rids[1]))] = errors.IptablesError(
        ["iptables-save"], 1, "iptables-save: cannot open"
    )
    host.faults[("iptables-restore", namespace_name(rids[2]))] = errors.IptablesError(
        ["iptables-restore"], 1, "iptables-restore: line 3 failed"
    )
    for i in range(4):  # a new floating IP on every router
        feed["floatingip"][f"fip-{i}-9"] = {
            **feed["floatingip"][f"fip-{i}-0"],
            "id": f"fip-{i}-9",
            "floating_ip_address": f"172.24.29.{i + 1}",
            "fixed_ip_address": f"10.{i}.0.99",
        }
    clock[0] += drv.FULL_SYNC_INTERVAL  # a full pass: every router observed
    _reconcile(drv, feed, 2)
    for i in (0, 3):
        assert f"172.24.29.{i + 1}" in host.ns[namespace_name(rids[i])].iptables
    assert namespace_name(rids[1]) in host.ns  # unobserved: not planned, not torn down
    assert "172.24.29.2" not in host.ns[namespace_name(rids[1])].iptables
    report = drv.configurations()["reconcile_error"]
    assert f"router {rids[1]}: not observed (IptablesError" in report
    assert f"router {rids[2]}: ApplyRules failed: IptablesError" in report
    assert rids[0] not in report and rids[3] not in report
    assert drv.retry == {rids[1], rids[2]}
    # Once the host behaves, the next pass serves them and the report is gone.
    host.faults.clear()
    clock[0] += drv.FULL_SYNC_INTERVAL
    _reconcile(drv, feed, 3)
    assert all(f"172.24.29.{i + 1}" in host.ns[namespace_name(rids[i])].iptables for i in range(4))
    assert "reconcile_error" not in drv.configurations()


class _Client:
    def __init__(self, bad_port: str) -> None:
        self.bad_port = bad_port
        self.bound: list[str] = []

    async def api(self, method: str, url: str, body: Any, ok: Any = None) -> Any:
        if url.endswith(self.bad_port):
            raise RuntimeError("500 from the server")
        self.bound.append(url.rsplit("/", 1)[1])
        return {}

    async def post(self, path: str, body: Any) -> Any:
        return {}


def test_a_port_that_cannot_be_bound_is_its_routers_problem_only(tmp_path: Path, host: FakeHost) -> None:
    feed = _feed(2)
    rids = sorted(feed["router"])
    for p in feed["port"].values():
        p["binding:host_id"] = ""
    bad_port = next(pid for pid, p in feed["port"].items() if p["device_id"] == rids[0])
    drv = _driver(tmp_path, host)
    drv.client = _Client(bad_port)
    _reconcile(drv, feed)
    assert _served(host, feed) == set(rids)
    assert set(drv.client.bound) == {pid for pid in feed["port"] if pid != bad_port}
    assert drv.configurations()["reconcile_error"] == (
        f"router {rids[0]}: binding port {bad_port} failed: 500 from the server"
    )


def test_a_value_with_a_newline_never_becomes_an_iptables_line_of_its_own() -> None:
    views = _routers(2)
    bad = sorted(views)[0]
    fip = views[bad].floating_ips[0]
    views[bad] = replace(views[bad], floating_ips=(replace(fip, fixed_ip_address="10.0.0.10\n-A INPUT -j ACCEPT"),))
    problems: dict[str, str] = {}
    ops = plan(CFG, views, {}, problems)
    assert {op.router_id for op in ops} == {sorted(views)[1]}
    assert not any("-A INPUT -j ACCEPT" in getattr(op, "text", "") for op in ops)
    assert "control character" in problems[bad]
