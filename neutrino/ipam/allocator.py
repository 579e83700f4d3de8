"""Address allocation against the database (Neutron's "internal" IPAM driver).

``allocate`` turns a port's requested ``fixed_ips`` (or nothing) into
concrete (subnet, address) pairs inside the caller's transaction.  Uniqueness
across concurrent servers is guaranteed by the primary key of
``ip_allocations`` (subnet, address): a lost race raises ``IntegrityError``
and the unit of work is retried, choosing again.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.db import tables as t
from neutrino.ipam import addresses
from neutrino.ipam import pools as ipam

AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
#: Owners that get the lowest free address (Neutron: DHCP and distributed ports).
LOWEST_FREE_OWNERS = ("network:dhcp", "network:distributed")
#: Subnets larger than this are probed at random before the used set is loaded.
PROBE_THRESHOLD = 4096


def subnet_is_auto(s: Any) -> bool:
    return s.ip_version == 6 and (
        s.ipv6_address_mode in AUTO_ADDRESS_MODES
        or (s.ipv6_ra_mode in AUTO_ADDRESS_MODES and s.ipv6_address_mode is None)
    )


def network_subnets(conn: Connection, network_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(t.subnets)
            .where(t.subnets.c.network_id == network_id)
            .order_by(t.subnets.c.created_at, t.subnets.c.id)
        )
    )


def _is_used(conn: Connection, subnet_id: str, address: str) -> bool:
    return (
        conn.execute(
            select(1)
            .select_from(t.ip_allocations)
            .where(and_(t.ip_allocations.c.subnet_id == subnet_id, t.ip_allocations.c.ip_address == address))
        ).first()
        is not None
    )


def _used_ints(conn: Connection, subnet_id: str) -> set[int]:
    rows = conn.execute(select(t.ip_allocations.c.ip_address).where(t.ip_allocations.c.subnet_id == subnet_id))
    return {int(ipaddress.ip_address(r[0])) for r in rows}


def pick_address(conn: Connection, subnet: Any, owner: str, rng: random.Random, taken_here: set[str]) -> str | None:
    """Choose a free address in ``subnet`` for a port owned by ``owner``."""
    version = subnet.ip_version
    ranges = ipam.pool_ranges(subnet.allocation_pools)
    if not ranges:
        return None
    mk = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    here = {int(ipaddress.ip_address(a)) for a in taken_here}
    if owner not in LOWEST_FREE_OWNERS and ipam.pool_size(ranges) > PROBE_THRESHOLD:
        got = ipam.probe_free(ranges, lambda x: x in here or _is_used(conn, subnet.id, str(mk(x))), rng)
        if got is not None:
            return str(mk(got))
    used = _used_ints(conn, subnet.id) | here
    if owner in LOWEST_FREE_OWNERS:
        got = ipam.lowest_free(ranges, used)
    else:
        got = ipam.random_free(ranges, used, rng)
    return None if got is None else str(mk(got))


def _requested_address(addr: Any) -> str | None:
    """A requested address in canonical text: addresses are stored and compared as
    text (the primary key of ``ip_allocations``), so ``2001:db8::0005`` must become
    ``2001:db8::5`` before any comparison.  The API converts at the edge already;
    this covers internal callers.  Scope ids, blanks and controls are refused."""
    if addr is None:
        return None
    try:
        return addresses.canonical_ip(addr)
    except ValueError:
        raise errors.bad(f"Invalid input for fixed_ips. Reason: '{addr}' is not a valid IP address.") from None


def allocate(
    conn: Connection,
    network_id: str,
    requested: Sequence[Mapping[str, Any]] | None,
    *,
    mac: str,
    owner: str,
    rng: random.Random,
    subnets: list[Any] | None = None,
) -> list[tuple[str, str]]:
    """Resolve a port's fixed IPs into [(subnet_id, ip_address)], not yet inserted.

    Raises Neutron's errors: InvalidIpForNetwork, InvalidIpForSubnet,
    IpAddressAlreadyAllocated, IpAddressGenerationFailure, InvalidInput.
    """
    subnets = subnets if subnets is not None else network_subnets(conn, network_id)
    by_id = {s.id: s for s in subnets}
    router_port = owner.startswith("network:router_interface")
    out: list[tuple[str, str]] = []
    taken_here: set[str] = set()

    if requested is None:
        v4_done = v6_done = False
        for s in subnets:
            if s.ip_version == 4 and not v4_done:
                addr = pick_address(conn, s, owner, rng, taken_here)
                if addr is not None:
                    out.append((s.id, addr))
                    v4_done = True
            elif s.ip_version == 6:
                if subnet_is_auto(s):
                    if not router_port:
                        out.append((s.id, ipam.eui64(ipaddress.ip_network(s.cidr), mac)))
                elif not v6_done:
                    addr = pick_address(conn, s, owner, rng, taken_here)
                    if addr is not None:
                        out.append((s.id, addr))
                        v6_done = True
        has_v4 = any(s.ip_version == 4 for s in subnets)
        has_v6_stateful = any(s.ip_version == 6 and not subnet_is_auto(s) for s in subnets)
        if (has_v4 and not v4_done) or (has_v6_stateful and not v6_done and not has_v4):
            raise errors.IpAddressGenerationFailure(net_id=network_id)
        return out

    seen_ips: set[str] = set()
    for req in requested:
        sid, addr = req.get("subnet_id"), _requested_address(req.get("ip_address"))
        if addr is not None:
            if addr in seen_ips:
                raise errors.bad(f"Invalid input for fixed_ips. Reason: Duplicate IP address '{addr}'.")
            seen_ips.add(addr)
        if sid is not None:
            s = by_id.get(sid)
            if s is None:
                raise errors.invalid(
                    f"Failed to create port on network {network_id}, because fixed_ips included invalid subnet {sid}"
                )
        elif addr is not None:
            # Neutron: the first subnet on which the address is a valid host address.
            s = next(
                (
                    x
                    for x in subnets
                    if ipam.in_subnet(ipaddress.ip_network(x.cidr), addr)
                    and ipam.valid_host_address(ipaddress.ip_network(x.cidr), addr)
                ),
                None,
            )
            if s is None:
                raise errors.InvalidIpForNetwork(ip_address=addr)
        else:
            raise errors.invalid("IP allocation requires subnet_id or ip_address")
        net = ipaddress.ip_network(s.cidr)
        if addr is not None:
            # The IPv6 subnet-router anycast address (the default v6 gateway) is
            # only for router ports.
            v6_gateway = router_port and net.version == 6 and ipaddress.ip_address(addr) == net.network_address
            if not (ipam.valid_host_address(net, addr) or v6_gateway):
                raise errors.InvalidIpForSubnet(ip_address=addr)
            if _is_used(conn, s.id, addr):
                raise errors.IpAddressAlreadyAllocated(ip=addr, subnet_id=s.id)
            out.append((s.id, addr))
        elif subnet_is_auto(s):
            out.append((s.id, ipam.eui64(net, mac)))
        else:
            got = pick_address(conn, s, owner, rng, taken_here)
            if got is None:
                raise errors.IpAddressGenerationFailure(net_id=network_id)
            out.append((s.id, got))
        taken_here.add(out[-1][1])
    return out
