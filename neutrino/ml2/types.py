"""ML2 type drivers: flat, vlan, vxlan, geneve, local.

Contract (Neutron's vocabulary):

* ``validate_provider_segment(seg)`` — pure; returns the normalised segment
  or raises ``InvalidInput``.
* ``reserve_provider_segment(conn, seg, network_id)`` — inside the caller's
  transaction; raises the driver's *InUse* error when taken.
* ``allocate_tenant_segment(conn, network_id, rng)`` — inside the transaction;
  returns a segment or ``None`` when the pool is exhausted.  Ids are chosen at
  random among the free ones (as Neutron does), so parallel servers rarely
  collide; when they do, the unique key on ``segment_allocations`` makes the
  unit of work retry.
* ``release_segment(conn, seg)``.
* ``get_mtu(physnet)`` — the MTU this segment type allows (0: no opinion).

All segments live in one table keyed by (type, physnet, id); flat networks
use id 0, so "one flat network per physnet" is the same unique key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.db import tables as t

ENCAP_OVERHEAD = {"vxlan": 30, "gre": 22}
IP_HEADER = {4: 20, 6: 40}
MAX_VLAN = 4094
MAX_VNI = 2**24 - 1
#: GRE keys are 32 bits, but ``network_segments.segmentation_id`` is a signed 32-bit column.
MAX_GRE_ID = 2**31 - 1
#: Largest segmentation id of each tunnel type.  The smallest is 0: like Neutron, provider
#: tunnel ids are not checked against the pool, only against what the wire can carry
#: (a VNI past 24 bits would be cut and land in another network).
MAX_TUNNEL_ID = {"vxlan": MAX_VNI, "geneve": MAX_VNI, "gre": MAX_GRE_ID}


@dataclass(frozen=True)
class Segment:
    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None


class TypeDriver(Protocol):
    name: str

    def validate_provider_segment(self, seg: Segment) -> Segment: ...
    def reserve_provider_segment(self, conn: Connection, seg: Segment, network_id: str) -> None: ...
    def allocate_tenant_segment(self, conn: Connection, network_id: str, rng: random.Random) -> Segment | None: ...
    def release_segment(self, conn: Connection, seg: Segment) -> None: ...
    def get_mtu(self, physnet: str | None) -> int: ...


def parse_ranges(entries: tuple[str, ...], lo: int, hi: int, what: str) -> list[tuple[int, int]]:
    """Parse ``min:max`` entries; raises ``ValueError`` (the server refuses to start)."""
    out = []
    for e in entries:
        a, sep, b = e.partition(":")
        try:
            x, y = int(a), int(b)
        except ValueError:
            raise ValueError(f"invalid {what} range {e!r}") from None
        if not sep or x > y or x < lo or y > hi:
            raise ValueError(f"invalid {what} range {e!r}")
        out.append((x, y))
    return out


def parse_vlan_ranges(entries: tuple[str, ...]) -> dict[str, list[tuple[int, int]]]:
    """``physnet`` (= 1-4094) or ``physnet:min:max`` entries, combined per physnet."""
    out: dict[str, list[tuple[int, int]]] = {}
    for e in entries:
        parts = e.split(":")
        if len(parts) == 1 and parts[0]:
            out.setdefault(parts[0], []).append((1, MAX_VLAN))
        elif len(parts) == 3 and parts[0]:
            out.setdefault(parts[0], []).extend(parse_ranges((f"{parts[1]}:{parts[2]}",), 1, MAX_VLAN, "VLAN"))
        else:
            raise ValueError(f"invalid network_vlan_ranges entry {e!r}")
    return out


def pick_free(ranges: list[tuple[int, int]], taken: set[int], rng: random.Random) -> int | None:
    """A random id from ``ranges`` not in ``taken`` (None when all are taken)."""
    total = sum(b - a + 1 for a, b in ranges)
    if total == 0:
        return None
    in_range_taken = sum(1 for x in taken if any(a <= x <= b for a, b in ranges))
    if in_range_taken >= total:
        return None
    if total > 65536 and in_range_taken < total // 2:
        for _ in range(64):
            n = rng.randrange(total)
            for a, b in ranges:
                size = b - a + 1
                if n < size:
                    cand = a + n
                    break
                n -= size
            if cand not in taken:
                return cand
    free = [x for a, b in ranges for x in range(a, b + 1) if x not in taken]
    return rng.choice(free) if free else None


def _taken(conn: Connection, ntype: str, physnet: str) -> set[int]:
    rows = conn.execute(
        select(t.segment_allocations.c.segmentation_id).where(
            and_(t.segment_allocations.c.network_type == ntype, t.segment_allocations.c.physical_network == physnet)
        )
    )
    return {r[0] for r in rows}


def _exists(conn: Connection, ntype: str, physnet: str, seg_id: int) -> bool:
    return (
        conn.execute(
            select(t.segment_allocations.c.network_id).where(
                and_(
                    t.segment_allocations.c.network_type == ntype,
                    t.segment_allocations.c.physical_network == physnet,
                    t.segment_allocations.c.segmentation_id == seg_id,
                )
            )
        ).first()
        is not None
    )


def _insert(conn: Connection, ntype: str, physnet: str, seg_id: int, network_id: str) -> None:
    conn.execute(
        insert(t.segment_allocations).values(
            network_type=ntype, physical_network=physnet, segmentation_id=seg_id, network_id=network_id
        )
    )


def _release(conn: Connection, ntype: str, physnet: str, seg_id: int) -> None:
    conn.execute(
        delete(t.segment_allocations).where(
            and_(
                t.segment_allocations.c.network_type == ntype,
                t.segment_allocations.c.physical_network == physnet,
                t.segment_allocations.c.segmentation_id == seg_id,
            )
        )
    )


def _bad(msg: str) -> errors.InvalidInput:
    return errors.invalid(msg)


class _PhysMtu:
    def __init__(self, global_mtu: int, physnet_mtus: dict[str, int]) -> None:
        self.global_mtu = global_mtu
        self.physnet_mtus = physnet_mtus

    def get_mtu(self, physnet: str | None) -> int:
        vals = [v for v in (self.global_mtu, self.physnet_mtus.get(physnet or "", 0)) if v > 0]
        return min(vals) if vals else 0


class FlatTypeDriver(_PhysMtu):
    name = "flat"

    def __init__(self, flat_networks: tuple[str, ...], global_mtu: int, physnet_mtus: dict[str, int]) -> None:
        super().__init__(global_mtu, physnet_mtus)
        self.any_physnet = "*" in flat_networks
        self.physnets = tuple(p for p in flat_networks if p != "*")

    def validate_provider_segment(self, seg: Segment) -> Segment:
        # Neutron's order: physnet required, flat disabled, physnet unknown, other keys.
        if not seg.physical_network:
            raise _bad("physical_network required for flat provider network")
        if not self.any_physnet and not self.physnets:
            raise _bad("Flat provider networks are disabled")
        if not self.any_physnet and seg.physical_network not in self.physnets:
            raise _bad(f"physical_network '{seg.physical_network}' unknown for flat provider network")
        if seg.segmentation_id is not None:
            raise _bad("segmentation_id prohibited for flat provider network")
        return seg

    def reserve_provider_segment(self, conn: Connection, seg: Segment, network_id: str) -> None:
        assert seg.physical_network
        if _exists(conn, "flat", seg.physical_network, 0):
            raise errors.FlatNetworkInUse(physical_network=seg.physical_network)
        _insert(conn, "flat", seg.physical_network, 0, network_id)

    def allocate_tenant_segment(self, conn: Connection, network_id: str, rng: random.Random) -> Segment | None:
        return None  # flat networks are never project networks

    def release_segment(self, conn: Connection, seg: Segment) -> None:
        _release(conn, "flat", seg.physical_network or "", 0)


class VlanTypeDriver(_PhysMtu):
    name = "vlan"

    def __init__(
        self, vlan_ranges: dict[str, list[tuple[int, int]]], global_mtu: int, physnet_mtus: dict[str, int]
    ) -> None:
        super().__init__(global_mtu, physnet_mtus)
        self.ranges = vlan_ranges

    def validate_provider_segment(self, seg: Segment) -> Segment:
        if seg.physical_network:
            if seg.physical_network not in self.ranges:
                raise _bad(f"physical_network '{seg.physical_network}' unknown for VLAN provider network")
        elif seg.segmentation_id is not None:
            raise _bad("segmentation_id requires physical_network for VLAN provider network")
        if seg.segmentation_id is not None and not 1 <= seg.segmentation_id <= MAX_VLAN:
            raise _bad(f"segmentation_id out of range (1 through {MAX_VLAN})")
        return seg

    def reserve_provider_segment(self, conn: Connection, seg: Segment, network_id: str) -> None:
        raise AssertionError("use reserve() which may complete a partial segment")

    def reserve(self, conn: Connection, seg: Segment, network_id: str, rng: random.Random) -> Segment:
        """Reserve a provider segment, choosing a free VLAN when none was given."""
        physnets = [seg.physical_network] if seg.physical_network else list(self.ranges)
        if seg.segmentation_id is not None:
            assert seg.physical_network
            if _exists(conn, "vlan", seg.physical_network, seg.segmentation_id):
                raise errors.VlanIdInUse(vlan_id=seg.segmentation_id, physical_network=seg.physical_network)
            _insert(conn, "vlan", seg.physical_network, seg.segmentation_id, network_id)
            return seg
        for physnet in physnets:
            vid = pick_free(self.ranges.get(physnet, []), _taken(conn, "vlan", physnet), rng)
            if vid is not None:
                _insert(conn, "vlan", physnet, vid, network_id)
                return Segment("vlan", physnet, vid)
        raise errors.NoNetworkAvailable()

    def allocate_tenant_segment(self, conn: Connection, network_id: str, rng: random.Random) -> Segment | None:
        for physnet, ranges in self.ranges.items():
            vid = pick_free(ranges, _taken(conn, "vlan", physnet), rng)
            if vid is not None:
                _insert(conn, "vlan", physnet, vid, network_id)
                return Segment("vlan", physnet, vid)
        return None

    def release_segment(self, conn: Connection, seg: Segment) -> None:
        _release(conn, "vlan", seg.physical_network or "", seg.segmentation_id or 0)


class TunnelTypeDriver:
    """VXLAN and Geneve (and GRE if configured): no physnet, an id from a pool."""

    def __init__(
        self,
        name: str,
        ranges: list[tuple[int, int]],
        overhead: int,
        global_mtu: int,
        path_mtu: int,
        overlay_ip_version: int,
    ) -> None:
        self.name = name
        self.ranges = ranges
        self.overhead = overhead
        self.global_mtu = global_mtu
        self.path_mtu = path_mtu
        self.ip_header = IP_HEADER.get(overlay_ip_version, 20)

    def validate_provider_segment(self, seg: Segment) -> Segment:
        if seg.physical_network:
            raise _bad(f"provider:physical_network specified for {self.name} network")
        top = MAX_TUNNEL_ID.get(self.name, MAX_VNI)
        if seg.segmentation_id is not None and not 0 <= seg.segmentation_id <= top:
            raise _bad(f"segmentation_id out of range (0 through {top})")
        return seg

    def reserve_provider_segment(self, conn: Connection, seg: Segment, network_id: str) -> None:
        # NOTE: like Neutron, provider tunnel ids are not checked against the pool.
        assert seg.segmentation_id is not None
        if _exists(conn, self.name, "", seg.segmentation_id):
            raise errors.TunnelIdInUse(tunnel_id=seg.segmentation_id)
        _insert(conn, self.name, "", seg.segmentation_id, network_id)

    def allocate_tenant_segment(self, conn: Connection, network_id: str, rng: random.Random) -> Segment | None:
        vni = pick_free(self.ranges, _taken(conn, self.name, ""), rng)
        if vni is None:
            return None
        _insert(conn, self.name, "", vni, network_id)
        return Segment(self.name, None, vni)

    def release_segment(self, conn: Connection, seg: Segment) -> None:
        _release(conn, self.name, "", seg.segmentation_id or 0)

    def get_mtu(self, physnet: str | None) -> int:
        vals = [v for v in (self.global_mtu, self.path_mtu) if v > 0]
        return min(vals) - self.ip_header - self.overhead if vals else 0


class LocalTypeDriver:
    name = "local"

    def validate_provider_segment(self, seg: Segment) -> Segment:
        for attr, val in (("physical_network", seg.physical_network), ("segmentation_id", seg.segmentation_id)):
            if val is not None:
                raise _bad(f"{attr} prohibited for local provider network")
        return seg

    def reserve_provider_segment(self, conn: Connection, seg: Segment, network_id: str) -> None:
        return None

    def allocate_tenant_segment(self, conn: Connection, network_id: str, rng: random.Random) -> Segment | None:
        return Segment("local")

    def release_segment(self, conn: Connection, seg: Segment) -> None:
        return None

    def get_mtu(self, physnet: str | None) -> int:
        return 0
