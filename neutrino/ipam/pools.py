"""Pure IPAM arithmetic: default gateways and pools, pool validation, address
choice and EUI-64.  No database: callers pass what is in use.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from neutrino import errors

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Range = tuple[int, int]  # inclusive integer bounds

#: How many of the lowest free addresses a random choice picks from (Neutron: 1000).
RANDOM_WINDOW = 1000


def usable_bounds(net: Net) -> Range:
    """First and last address that may be given to a port."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4:
        if net.prefixlen >= 31:
            return first, last
        return first + 1, last - 1
    return first + 1, last


def default_gateway(net: Net) -> str | None:
    if net.version == 6:
        return str(net.network_address)
    lo, hi = usable_bounds(net)
    return str(ipaddress.ip_address(lo)) if lo <= hi else None


def default_pools(net: Net, gateway: str | None) -> list[dict[str, str]]:
    """Every usable address minus the gateway, split around it."""
    lo, hi = usable_bounds(net)
    ranges: list[Range] = [(lo, hi)]
    if gateway is not None:
        g = int(ipaddress.ip_address(gateway))
        if lo <= g <= hi:
            ranges = [r for r in ((lo, g - 1), (g + 1, hi)) if r[0] <= r[1]]
    return [to_pool(r, net.version) for r in ranges]


def to_pool(r: Range, version: int) -> dict[str, str]:
    mk = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return {"start": str(mk(r[0])), "end": str(mk(r[1]))}


def pool_ranges(pools: Iterable[dict[str, str]]) -> list[Range]:
    return [(int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"]))) for p in pools]


#: Default bound on the number of pools of one subnet (``[DEFAULT] max_allocation_pools``).
MAX_POOLS = 1000


def validate_pools(
    net: Net, pools: Sequence[Mapping[str, Any]], gateway: str | None, max_pools: int = MAX_POOLS
) -> list[dict[str, str]]:
    """Check supplied pools: count, parse, order, bounds, overlap, gateway.  Returns canonical pools.

    O(n log n) in the number of pools (overlaps by one sort and sweep), and
    more than ``max_pools`` pools are refused before any is looked at.
    """
    if len(pools) > max_pools:
        raise errors.invalid(f"Too many allocation pools: {len(pools)}; a subnet may have at most {max_pools}")
    out: list[dict[str, str]] = []
    parsed: list[Range] = []
    lo, hi = usable_bounds(net)
    for p in pools:
        try:
            s, e = ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"])
        except (KeyError, ValueError, TypeError):
            raise errors.InvalidAllocationPool(pool=p) from None
        if s.version != net.version or e.version != net.version:  # before s > e: mixed versions don't compare
            raise errors.InvalidAllocationPool(pool=f"{s}-{e}")
        if int(s) > int(e):  # one version (checked above)
            raise errors.InvalidAllocationPool(pool=p)
        if int(s) < lo or int(e) > hi:
            raise errors.OutOfBoundsAllocationPool(pool=f"{s}-{e}", subnet_cidr=str(net))
        parsed.append((int(s), int(e)))
        out.append({"start": str(s), "end": str(e)})
    clash = first_overlap(parsed)
    if clash is not None:
        a, b = parsed[clash[0]], parsed[clash[1]]
        raise errors.OverlappingAllocationPools(
            pool_1=_fmt(a, net.version), pool_2=_fmt(b, net.version), subnet_cidr=str(net)
        )
    if gateway is not None:
        g = int(ipaddress.ip_address(gateway))
        for r in parsed:
            if r[0] <= g <= r[1]:
                raise errors.GatewayConflictWithAllocationPools(ip_address=gateway, pool=_fmt(r, net.version))
    return out


def first_overlap(ranges: list[Range]) -> tuple[int, int] | None:
    """Indexes (i < j) of two ranges that share an address, or None; O(n log n).

    Sorted by start, a range overlaps an earlier one exactly when it starts at
    or before the largest end seen so far, so one sweep finds a pair (the one
    whose later range starts first).
    """
    order = sorted(range(len(ranges)), key=lambda i: ranges[i])
    reach = -1  # largest end so far, and the range it belongs to
    holder = -1
    for i in order:
        start, end = ranges[i]
        if start <= reach:
            return (min(holder, i), max(holder, i))
        if end > reach:
            reach, holder = end, i
    return None


def _fmt(r: Range, version: int) -> str:
    p = to_pool(r, version)
    return f"{p['start']}-{p['end']}"


def pool_size(ranges: list[Range]) -> int:
    return sum(b - a + 1 for a, b in ranges)


def lowest_free(ranges: list[Range], used: set[int]) -> int | None:
    for a, b in ranges:
        x = a
        while x <= b:
            if x not in used:
                return x
            x += 1
    return None


def random_free(ranges: list[Range], used: set[int], rng: random.Random) -> int | None:
    """Random among the lowest ``RANDOM_WINDOW`` free addresses of the first pool with room."""
    for a, b in ranges:
        window: list[int] = []
        x = a
        while x <= b and len(window) < RANDOM_WINDOW:
            if x not in used:
                window.append(x)
            x += 1
        if window:
            return rng.choice(window)
    return None


def probe_free(
    ranges: list[Range],
    is_used: Callable[[int], bool],
    rng: random.Random,
    tries: int = 16,
    window: int | None = RANDOM_WINDOW,
) -> int | None:
    """Random probing inside the pools; for large, sparsely used subnets.

    With ``window``, only the first ``window`` addresses of the pools are
    probed: the same neighbourhood ``random_free`` picks from while few of
    them are in use (None: anywhere in the pools).
    """
    total = pool_size(ranges)
    if window is not None:
        total = min(total, window)
    for _ in range(tries):
        n = rng.randrange(total)
        for a, b in ranges:
            if n <= b - a:
                cand = a + n
                break
            n -= b - a + 1
        if not is_used(cand):
            return cand
    return None


def eui64(prefix: Net, mac: str) -> str:
    """The SLAAC address of ``mac`` in a /64 ``prefix``."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    value = int.from_bytes(bytes(iid), "big")
    return str(ipaddress.IPv6Address(int(prefix.network_address) | value))


def in_subnet(net: Net, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


def valid_host_address(net: Net, address: str) -> bool:
    """Inside the subnet and, for IPv4 (< /31), not the network or broadcast address."""
    a = ipaddress.ip_address(address)
    if a not in net:
        return False
    if net.version == 4 and net.prefixlen < 31:
        return a != net.network_address and a != net.broadcast_address
    if net.version == 6:
        return a != net.network_address or net.prefixlen >= 127
    return True
