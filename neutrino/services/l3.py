"""The L3 service plugin: registers routers, floating IPs and port forwardings.

``register`` is called by ``neutrino.api.factory``; the L3 services share the
registered ``PortService`` (and its read cache) when there is one.  It also adds
the L3 hooks on port and network events to ``Deps`` (the port and network
services cannot import these modules, which build on theirs):

- ``port_addresses_released``: the port forwardings to a port's dropped
  addresses go (``port_forwardings.release_port_forwardings``);
- ``external_network_deleting``: an external network's floating IPs that serve
  nothing go (``floatingips.release_unused_floating_ips``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from neutrino.services import router_interfaces
from neutrino.services.common import Deps
from neutrino.services.floatingips import FloatingIPService, release_unused_floating_ips
from neutrino.services.port_forwardings import PortForwardingService, release_port_forwardings
from neutrino.services.ports import PortService
from neutrino.services.routers import RouterService


def register(deps: Deps, services: dict[str, Any], subresources: dict[tuple[str, str], Any]) -> None:
    """Add ``routers``, ``floatingips`` and ``floatingips/{id}/port_forwardings``."""
    ports = services.get("ports")
    if not isinstance(ports, PortService):
        ports = PortService(deps)
    fips = FloatingIPService(deps, ports)
    services["routers"] = routers = RouterService(deps, ports)
    router_interfaces.install(routers)  # add/remove_router_interface
    services["floatingips"] = fips
    subresources[("floatingips", "port_forwardings")] = PortForwardingService(deps, fips)
    deps.port_addresses_released.append(partial(release_port_forwardings, deps))
    deps.external_network_deleting.append(partial(release_unused_floating_ips, deps))
