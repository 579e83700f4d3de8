"""Pure planning for namespace instances (the compute agent's "hypervisor").

An instance is a network namespace ``vm-<server id>``; each of its ports is
a veth pair: ``tap<port id[:11]>`` plugged into the integration bridge with
the external_ids an OVS agent expects (iface-id, attached-mac, vm-uuid,
iface-status), and ``eth<N>`` inside the namespace with the port's MAC and
the network's MTU.  Once the port is ACTIVE the guest "boots": it configures
its addresses (statically from the port for now), default route and name
servers.

``plan(desired, observed)`` returns ops; applying them and observing again
yields an empty plan (tested).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NS_PREFIX = "vm-"


def netns_name(server_id: str) -> str:
    return f"{NS_PREFIX}{server_id}"


def tap_name(port_id: str) -> str:
    return f"tap{port_id[:11]}"


@dataclass(frozen=True)
class GuestPort:
    port_id: str
    mac: str
    mtu: int
    addresses: tuple[str, ...]  # "10.0.0.5/24"
    gateway: str | None
    status: str  # the port's status on the server
    dns: tuple[str, ...] = ()
    dhcp: bool = False  # an IPv4 subnet of the port has DHCP: the guest runs a client
    network_id: str = ""


@dataclass(frozen=True)
class GuestServer:
    server_id: str
    name: str
    ports: tuple[GuestPort, ...]


@dataclass(frozen=True)
class ObservedServer:
    server_id: str
    taps: frozenset[str]  # tap devices present (host side)
    plugged: frozenset[str]  # taps present on the integration bridge
    configured: frozenset[str]  # port ids whose guest addresses are configured


# --- ops -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateNamespace:
    server_id: str


@dataclass(frozen=True)
class PlugPort:
    server_id: str
    index: int
    port: GuestPort


@dataclass(frozen=True)
class ConfigureGuest:
    server_id: str
    index: int
    port: GuestPort


@dataclass(frozen=True)
class DestroyServer:
    server_id: str
    taps: frozenset[str] = field(default_factory=frozenset)


Op = CreateNamespace | PlugPort | ConfigureGuest | DestroyServer


def plan(desired: Mapping[str, GuestServer], observed: Mapping[str, ObservedServer]) -> list[Op]:
    ops: list[Op] = []
    for sid, obs in sorted(observed.items()):
        if sid not in desired:
            ops.append(DestroyServer(sid, obs.taps))
    for sid, srv in sorted(desired.items()):
        seen = observed.get(sid)
        if seen is None:
            ops.append(CreateNamespace(sid))
        obs = seen if seen is not None else ObservedServer(sid, frozenset(), frozenset(), frozenset())
        for i, port in enumerate(srv.ports):
            tap = tap_name(port.port_id)
            if tap not in obs.taps or tap not in obs.plugged:
                ops.append(PlugPort(sid, i, port))
            if port.status == "ACTIVE" and port.port_id not in obs.configured:
                ops.append(ConfigureGuest(sid, i, port))
    return ops


def server_state(srv: GuestServer, obs: ObservedServer | None) -> str:
    """ACTIVE when every port is plugged and configured, else BUILD."""
    if obs is None:
        return "BUILD"
    done = all(tap_name(p.port_id) in obs.plugged and p.port_id in obs.configured for p in srv.ports)
    return "ACTIVE" if done else "BUILD"


def guests_from_state(
    servers: Mapping[str, Mapping[str, Any]],
    ports: Mapping[str, Mapping[str, Any]],
    networks: Mapping[str, Mapping[str, Any]],
    subnets: Mapping[str, Mapping[str, Any]],
    host: str,
    dhcp_served: frozenset[str] | None = None,
) -> dict[str, GuestServer]:
    """The instances this host should run, from the feed's resources.

    ``dhcp_served``: networks a DHCP agent serves; a guest uses DHCP only
    there (elsewhere it is configured statically from its port).
    """
    out: dict[str, GuestServer] = {}
    for sid, srv in servers.items():
        if srv.get("host") != host or srv.get("status") in ("DELETED", "ERROR"):
            continue
        gports: list[GuestPort] = []
        for pid in srv.get("port_ids") or [p["id"] for p in srv.get("ports", [])]:
            p = ports.get(pid)
            if p is None:
                continue
            net = networks.get(p["network_id"], {})
            addrs: list[str] = []
            gateway: str | None = None
            dns: list[str] = []
            dhcp = False
            for f in p.get("fixed_ips", []):
                sub = subnets.get(f["subnet_id"])
                if sub is None:
                    continue
                if (
                    sub.get("enable_dhcp")
                    and sub["ip_version"] == 4
                    and dhcp_served is not None
                    and p["network_id"] in dhcp_served
                ):
                    dhcp = True
                plen = sub["cidr"].split("/")[1]
                addrs.append(f"{f['ip_address']}/{plen}")
                if gateway is None and sub.get("gateway_ip") and sub["ip_version"] == 4:
                    gateway = sub["gateway_ip"]
                dns.extend(sub.get("dns_nameservers") or [])
            gports.append(
                GuestPort(
                    pid,
                    p["mac_address"],
                    int(net.get("mtu") or 1500),
                    tuple(addrs),
                    gateway,
                    p.get("status", "DOWN"),
                    tuple(dict.fromkeys(dns)),
                    dhcp,
                    p.get("network_id") or "",
                )
            )
        out[sid] = GuestServer(sid, srv.get("name", ""), tuple(gports))
    return out
