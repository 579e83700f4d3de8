"""The local VLAN a plugger sets on a new VIF, so that the OVS agent has no OVSDB write to make.

Wiring a VIF costs the OVS agent an OVSDB write (the Port's ``tag`` and the
``other_config`` that records its network) and a flow bundle.  With 1,000 ports
on br-int, ovs-vswitchd spends ~50 ms of its main thread on *each* of them:
any change rebuilds its translation state over every port (bench/l2_bench.py).
A plugger (the compute agent, like os-vif for Nova) that reads the network's
local VLAN from a port the agent has already wired on this host and sets both
in the very transaction that adds the port makes the agent's pass flows-only.

The OVS agent stays the authority.  A port sends nothing until the agent lets
it in (table 0 drops traffic of ports without an ``in_port_allow`` flow), and
a hint that was stale (the network's last port went away and its VLAN was
given to another network in between) is corrected by the agent's next pass,
which the new port itself triggers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from neutrino.system import ovsdb as sysovs
from neutrino.system.errors import HostError
from neutrino.system.host import HostOvs

__all__ = ["find_args", "hint_from_rows", "local_vlan_hint"]


def find_args(network_id: str) -> list[str]:
    """``ovs-vsctl`` arguments listing the ports the agent wired on ``network_id``."""
    return [
        "--format=json",
        "--data=json",
        "--columns=name,tag,other_config",
        "find",
        "Port",
        f"other_config:net_uuid={sysovs.atom(network_id)}",
    ]


def hint_from_rows(rows: Iterable[Mapping[str, Any]], network_id: str) -> tuple[int, dict[str, str]] | None:
    """(tag, other_config) of the first port (by name) that the agent wired on ``network_id``:
    its ``tag`` equals the ``tag`` its ``other_config`` records.  None if there is none."""
    for row in sorted(rows, key=lambda r: str(r.get("name", ""))):
        oc = row.get("other_config") or {}
        tag = row.get("tag")
        if oc.get("net_uuid") != network_id or not isinstance(tag, int) or isinstance(tag, bool):
            continue
        if oc.get("tag") == str(tag) and 1 <= tag <= 4094:
            return tag, {k: str(v) for k, v in oc.items()}
    return None


def local_vlan_hint(ovs: HostOvs, network_id: str) -> tuple[int, dict[str, str]] | None:
    """The hint for a new VIF on ``network_id``, read from OVSDB; None when the network has no
    wired port on this host yet (the agent allocates a VLAN then) or OVSDB cannot be read."""
    try:
        tables = sysovs.parse_tables(ovs.vsctl(*find_args(network_id)))
    except (HostError, ValueError, KeyError):
        return None
    return hint_from_rows(tables[0] if tables else [], network_id)
