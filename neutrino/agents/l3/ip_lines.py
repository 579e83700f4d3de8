"""The L3 planner's values as ``ip`` sees them, both ways (pure).

``ip_commands`` gives the ``ip -batch`` lines of an op ``apply_all`` batches (a device's
link settings, address and route differences); ``planner_route`` gives an observed route
of a router's namespace as the planner compares it.
"""

from __future__ import annotations

import ipaddress

from neutrino.agents.interface import InterfaceDriver
from neutrino.agents.l3.planner import Op, PlugInterface, Route, SetAddresses, SetRoutes
from neutrino.system import iproute


def planner_route(r: iproute.Route, family: int) -> Route | None:
    """An observed route of table main as the planner compares it (normalised); None for the
    ones it ignores (connected, link-local)."""
    if r.protocol == "kernel":
        return None
    dst = ("0.0.0.0/0" if family == 4 else "::/0") if r.dst == "default" else r.dst
    if "/" not in dst:
        dst += "/32" if family == 4 else "/128"
    if ipaddress.ip_network(dst, strict=False).is_link_local:
        return None
    hops = r.nexthops or ((r.gateway,) if r.gateway else ())
    return Route(dst, hops, None if hops else r.dev).normalised()


def _route_lines(r: Route, verb: str) -> list[str]:
    cmd = ["route", verb, r.destination]
    if len(r.nexthops) == 1:
        return cmd + ["via", r.nexthops[0]]
    if r.nexthops:
        return cmd + [w for h in r.nexthops for w in ("nexthop", "via", h)]
    return cmd + (["dev", iproute.ifname(r.device)] if r.device else [])


def ip_commands(op: Op) -> list[list[str]]:
    """The ``ip`` batch lines (in the router's namespace) of a ``PlugInterface`` whose device
    is there, a ``SetAddresses`` or a ``SetRoutes``, from the differences the planner
    computed: deletions first, then ``replace``s (idempotent).  Pure."""
    if isinstance(op, PlugInterface):
        return [InterfaceDriver.link_command(op.device, op.mac, op.mtu)]
    if isinstance(op, SetAddresses):
        dev = iproute.ifname(op.device)
        return [["addr", "del", str(iproute.interface(a)), "dev", dev] for a in op.remove] + [
            ["addr", "replace", str(iproute.interface(a)), "dev", dev] for a in op.add
        ]
    if isinstance(op, SetRoutes):
        return [_route_lines(r, "del") for r in op.stale] + [
            _route_lines(r.normalised(), "replace") for r in op.routes()
        ]
    raise TypeError(f"no ip commands for {type(op).__name__}")


__all__ = ["ip_commands", "planner_route"]
