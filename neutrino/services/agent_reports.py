"""What the agents report to the server: heartbeats, port status, floating IP status.

The agents post these to the network API under ``/neutrino/v1/``
(``neutrino.feed.routes`` parses the JSON bodies and checks the caller's role);
this service runs each report as one write unit:

- ``heartbeat``: ``{"agent": {...}}``, upsert of the agent row
  (``neutrino.services.agents.AgentService.report``);
- ``port_statuses``: ``{"host": H, "ports": {id: status}}``
  (``neutrino.services.port_status``);
- ``fip_statuses``: ``{"host": H, "floatingips": {id: status}}``
  (``neutrino.services.fip_status``).

Each method blocks (database write); the HTTP side calls it from a thread.
"""

from __future__ import annotations

from typing import Any

from neutrino.context import RequestContext
from neutrino.services import fip_status, port_status
from neutrino.services.agents import AgentService
from neutrino.services.common import Deps


class AgentReports:
    """The agents' reports, written through ``deps.db``; ``agents`` is the registered agent service."""

    def __init__(self, deps: Deps, agents: AgentService | None) -> None:
        self.deps = deps
        self.agents = agents

    @property
    def takes_heartbeats(self) -> bool:
        """False when the API has no agent service (the heartbeat route then answers 404)."""
        return self.agents is not None

    def heartbeat(self, ctx: RequestContext, body: Any) -> dict[str, Any]:
        """Record one agent heartbeat; returns ``{"agent": {...}}``."""
        agents = self.agents
        if agents is None:
            raise RuntimeError("no agent service registered")  # callers check takes_heartbeats first
        return self.deps.db.run_write(lambda uow: agents.report(ctx, uow, body))

    def port_statuses(self, body: Any) -> dict[str, Any]:
        """Apply a host's port statuses; returns ``{"changed": [...], "ignored": [...]}``."""
        return self.deps.db.run_write(lambda uow: port_status.set_statuses(self.deps, uow, body))

    def fip_statuses(self, body: Any) -> dict[str, Any]:
        """Apply a host's floating IP statuses; returns ``{"changed": [...], "ignored": [...]}``."""
        return self.deps.db.run_write(lambda uow: fip_status.set_statuses(self.deps, uow, body))


__all__ = ["AgentReports"]
