"""Pure prefix arithmetic for subnet pools: compaction, bounds, allocation, quota units.

A subnet pool holds a set of prefixes; its subnets are carved out of them.
Everything here works on ``ipaddress`` networks and plain values (no
database): the service (``neutrino.services.subnetpools``) loads the pool's
prefixes and the CIDRs already allocated from it and asks these functions.

Rules follow Neutron's subnet allocator:

* prefixes are *compacted*: overlapping or adjacent prefixes merge into the
  fewest CIDRs covering the same addresses (``10.0.0.0/25`` + ``10.0.0.128/25``
  is ``10.0.0.0/24``);
* an allocation of length N takes the first block of the smallest free range
  that can hold it (best fit, so large free ranges are kept whole), at the
  lowest address of that range;
* a requested CIDR must lie wholly inside one free range;
* quota is counted in units of /32 for IPv4 (addresses) and /64 for IPv6.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = [
    "DEFAULT_MIN_PREFIXLEN",
    "MAX_PREFIXLEN",
    "QUOTA_UNIT",
    "Bounds",
    "compact",
    "covers",
    "first_free",
    "free_ranges",
    "overlaps",
    "quota_units",
    "specific_fits",
]

#: Smallest prefix length a pool allows when none is given (Neutron: /8 for IPv4, /64 for IPv6).
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
#: Longest prefix length per IP version.
MAX_PREFIXLEN = {4: 32, 6: 128}
#: Quota is counted in blocks of this prefix length (addresses for IPv4, /64s for IPv6).
QUOTA_UNIT = {4: 32, 6: 64}


def _nets(cidrs: Iterable[str | Network]) -> list[Network]:
    return [
        c if isinstance(c, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else ipaddress.ip_network(c, strict=False)
        for c in cidrs
    ]


def _within(inner: Network, outer: Network) -> bool:
    """``inner.subnet_of(outer)``, False across IP versions (typeshed wants one version statically)."""
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def _without(outer: Network, inner: Network) -> list[Network]:
    """``outer.address_exclude(inner)`` of two networks of one version (``inner`` inside ``outer``)."""
    if isinstance(outer, ipaddress.IPv4Network) and isinstance(inner, ipaddress.IPv4Network):
        return list(outer.address_exclude(inner))
    if isinstance(outer, ipaddress.IPv6Network) and isinstance(inner, ipaddress.IPv6Network):
        return list(outer.address_exclude(inner))
    raise TypeError(f"{outer} and {inner} are not of the same version")


def _collapse(nets: list[Network]) -> list[Network]:
    """``ipaddress.collapse_addresses`` of networks of one IP version (a mix is a TypeError, as there)."""
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    if v4 and v6:
        raise TypeError(f"{v4[0]} and {v6[0]} are not of the same version")
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def compact(cidrs: Iterable[str | Network]) -> list[str]:
    """The fewest CIDRs covering exactly the addresses of ``cidrs`` (one IP version), sorted.

    Host bits are dropped (``10.0.0.5/24`` counts as ``10.0.0.0/24``)."""
    nets = _nets(cidrs)
    if not nets:
        return []
    return [str(n) for n in _collapse(nets)]


def covers(outer: Iterable[str | Network], inner: Iterable[str | Network]) -> bool:
    """True if every address of ``inner`` is in ``outer`` (both sets of CIDRs)."""
    outer_n = _nets(outer)
    for n in _nets(inner):
        if not any(_within(n, o) for o in outer_n):
            # ``n`` may still be covered by several adjacent prefixes: compact first.
            merged = _nets(compact(outer_n))
            if not any(_within(n, o) for o in merged):
                return False
    return True


def overlaps(a: Iterable[str | Network], b: Iterable[str | Network]) -> bool:
    """True if the two sets of CIDRs share at least one address."""
    bn = _nets(b)
    return any(x.version == y.version and x.overlaps(y) for x in _nets(a) for y in bn)


def free_ranges(prefixes: Iterable[str | Network], used: Iterable[str | Network]) -> list[Network]:
    """The pool's addresses not in ``used``, as the fewest CIDRs, sorted by address."""
    nets = _nets(prefixes)
    free: list[Network] = _collapse(nets) if nets else []
    for u in _nets(used):
        nxt: list[Network] = []
        for f in free:
            if f.version != u.version or not f.overlaps(u):
                nxt.append(f)
            elif _within(u, f):
                nxt.extend(_without(f, u))
            # else f lies inside u: all of it is used
        free = nxt
    return _collapse(free) if free else []


def first_free(prefixes: Iterable[str | Network], used: Iterable[str | Network], prefixlen: int) -> str | None:
    """The CIDR a request for a ``/prefixlen`` gets, or None when no free range holds one.

    Best fit: among free ranges at least that large, the smallest (then the lowest address)."""
    fits = [f for f in free_ranges(prefixes, used) if f.prefixlen <= prefixlen]
    if not fits:
        return None
    best = min(fits, key=lambda f: (-f.prefixlen, int(f.network_address)))
    return str(ipaddress.ip_network(f"{best.network_address}/{prefixlen}"))


def specific_fits(prefixes: Iterable[str | Network], used: Iterable[str | Network], cidr: str | Network) -> bool:
    """True if ``cidr`` lies wholly in one free range of the pool."""
    want = _nets([cidr])[0]
    return any(_within(want, f) for f in free_ranges(prefixes, used))


def quota_units(cidr: str | Network) -> int:
    """How many quota units a subnet of this CIDR counts for (addresses for IPv4, /64s for IPv6)."""
    net = _nets([cidr])[0]
    unit = QUOTA_UNIT[net.version]
    return 2 ** max(unit - net.prefixlen, 0)


@dataclass(frozen=True)
class Bounds:
    """A pool's prefix length bounds (``min <= default <= max <= ip version's bits``)."""

    min_prefixlen: int
    default_prefixlen: int
    max_prefixlen: int

    def problem(self, version: int) -> tuple[str, int, str, int] | None:
        """None if valid, else Neutron's (prefix_type, prefixlen, base_prefix_type, base_prefixlen)."""
        if self.min_prefixlen > self.max_prefixlen:
            return ("min_prefixlen", self.min_prefixlen, "max_prefixlen", self.max_prefixlen)
        if self.max_prefixlen > MAX_PREFIXLEN[version]:
            return ("max_prefixlen", self.max_prefixlen, "ip_version_max", MAX_PREFIXLEN[version])
        if self.default_prefixlen < self.min_prefixlen:
            return ("default_prefixlen", self.default_prefixlen, "min_prefixlen", self.min_prefixlen)
        if self.default_prefixlen > self.max_prefixlen:
            return ("default_prefixlen", self.default_prefixlen, "max_prefixlen", self.max_prefixlen)
        return None
