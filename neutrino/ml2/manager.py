"""The ML2 type manager: builds the type drivers from config, validates provider
requests, allocates project segments in ``tenant_network_types`` order, and
computes network MTUs.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Config
from neutrino.db import tables as t
from neutrino.ml2.types import (
    ENCAP_OVERHEAD,
    MAX_VNI,
    FlatTypeDriver,
    LocalTypeDriver,
    Segment,
    TunnelTypeDriver,
    TypeDriver,
    VlanTypeDriver,
    parse_ranges,
    parse_vlan_ranges,
)

KNOWN_TYPES = ("local", "flat", "vlan", "vxlan", "geneve", "gre")


class TypeManager:
    """Owns the configured type drivers (an explicit registry, no entry points)."""

    def __init__(self, cfg: Config, rng: random.Random | None = None) -> None:
        self.rng = rng or random.SystemRandom()
        ml2 = cfg.ml2
        gmtu = cfg.default.global_physnet_mtu
        pmtus = dict(ml2.physical_network_mtus)
        self.drivers: dict[str, Any] = {}
        for name in ml2.type_drivers:
            if name == "flat":
                self.drivers[name] = FlatTypeDriver(cfg.ml2_type_flat.flat_networks, gmtu, pmtus)
            elif name == "vlan":
                self.drivers[name] = VlanTypeDriver(
                    parse_vlan_ranges(cfg.ml2_type_vlan.network_vlan_ranges), gmtu, pmtus
                )
            elif name == "vxlan":
                self.drivers[name] = TunnelTypeDriver(
                    "vxlan",
                    parse_ranges(cfg.ml2_type_vxlan.vni_ranges, 1, MAX_VNI, "VNI"),
                    ENCAP_OVERHEAD["vxlan"],
                    gmtu,
                    ml2.path_mtu,
                    ml2.overlay_ip_version,
                )
            elif name == "geneve":
                self.drivers[name] = TunnelTypeDriver(
                    "geneve",
                    parse_ranges(cfg.ml2_type_geneve.vni_ranges, 1, MAX_VNI, "VNI"),
                    cfg.ml2_type_geneve.max_header_size,
                    gmtu,
                    ml2.path_mtu,
                    ml2.overlay_ip_version,
                )
            elif name == "gre":
                self.drivers[name] = TunnelTypeDriver(
                    "gre", [], ENCAP_OVERHEAD["gre"], gmtu, ml2.path_mtu, ml2.overlay_ip_version
                )
            elif name == "local":
                self.drivers[name] = LocalTypeDriver()
            else:
                raise ValueError(f"unknown type driver {name!r}")
        for name in ml2.tenant_network_types:
            if name not in self.drivers:
                raise ValueError(f"tenant network type {name!r} is not in type_drivers")
        self.tenant_types = ml2.tenant_network_types
        self.external_type = ml2.external_network_type
        self.global_mtu = gmtu

    # --- provider attributes ----------------------------------------------------
    def provider_segment(self, attrs: Mapping[str, Any]) -> Segment | None:
        """Build and validate the segment a request's ``provider:*`` asks for."""
        ntype = attrs.get("provider:network_type")
        physnet = attrs.get("provider:physical_network")
        seg_id = attrs.get("provider:segmentation_id")
        if ntype is None:
            if physnet is not None or seg_id is not None:
                raise errors.invalid("network_type required")
            return None
        driver = self.drivers.get(ntype)
        if driver is None:
            raise errors.invalid(f"network_type value '{ntype}' not supported")
        return driver.validate_provider_segment(Segment(ntype, physnet or None, seg_id))

    def reserve_network_segment(
        self, conn: Connection, network_id: str, seg: Segment | None, external: bool
    ) -> Segment:
        """Reserve the requested segment, or allocate a project one.  In txn."""
        if seg is None and external and self.external_type:
            seg = self.provider_segment({"provider:network_type": self.external_type})
        if seg is not None:
            driver = self.drivers[seg.network_type]
            if isinstance(driver, VlanTypeDriver):
                seg = driver.reserve(conn, seg, network_id, self.rng)
            elif isinstance(driver, TunnelTypeDriver) and seg.segmentation_id is None:
                got = driver.allocate_tenant_segment(conn, network_id, self.rng)
                if got is None:
                    raise errors.NoNetworkAvailable()
                seg = got
            else:
                driver.reserve_provider_segment(conn, seg, network_id)
        else:
            for name in self.tenant_types:
                got = self.drivers[name].allocate_tenant_segment(conn, network_id, self.rng)
                if got is not None:
                    seg = got
                    break
            else:
                raise errors.NoNetworkAvailable()
        conn.execute(
            insert(t.network_segments).values(
                id=str(uuid.uuid4()),
                network_id=network_id,
                network_type=seg.network_type,
                physical_network=seg.physical_network,
                segmentation_id=seg.segmentation_id,
                segment_index=0,
            )
        )
        return seg

    def release(self, conn: Connection, seg: Segment) -> None:
        driver: TypeDriver | None = self.drivers.get(seg.network_type)
        if driver is not None:
            driver.release_segment(conn, seg)

    def network_mtu(self, segments: list[Segment]) -> int:
        """Minimum of the segments' MTUs; ``global_physnet_mtu`` when none has one."""
        vals = []
        for seg in segments:
            driver = self.drivers.get(seg.network_type)
            if driver is not None:
                m = driver.get_mtu(seg.physical_network)
                if m > 0:
                    vals.append(m)
        return min(vals) if vals else self.global_mtu
