"""The L3 service plugin: registers routers, floating IPs and port forwardings.

``register`` is called by ``neutrino.api.factory``; the L3 services share the
registered ``PortService`` (and its read cache) when there is one.
"""

from __future__ import annotations

from typing import Any

from neutrino.services.common import Deps
from neutrino.services.floatingips import FloatingIPService
from neutrino.services.port_forwardings import PortForwardingService
from neutrino.services.ports import PortService
from neutrino.services.routers import RouterService


def register(deps: Deps, services: dict[str, Any], subresources: dict[tuple[str, str], Any]) -> None:
    """Add ``routers``, ``floatingips`` and ``floatingips/{id}/port_forwardings``."""
    ports = services.get("ports")
    if not isinstance(ports, PortService):
        ports = PortService(deps)
    fips = FloatingIPService(deps, ports)
    services["routers"] = RouterService(deps, ports)
    services["floatingips"] = fips
    subresources[("floatingips", "port_forwardings")] = PortForwardingService(deps, fips)
