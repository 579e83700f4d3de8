"""Metadata: the haproxy proxies (in qrouter-/qdhcp- namespaces) and the metadata agent.

``MetadataProxies`` is what the L3 and DHCP executors call to keep a
router's / network's haproxy running (``ensure_router`` / ``ensure_network``,
idempotent: a running proxy with the same configuration is left alone) and
to stop it on teardown.  The agent (``neutrino.agents.metadata.agent``)
serves the unix socket the proxies forward to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino.agents.metadata import haproxy as conf


def socket_path(cfg: Any) -> str:
    """``[metadata] metadata_proxy_socket`` or ``STATE/metadata_proxy``."""
    md = getattr(cfg, "sections", {}).get("metadata")
    configured = md.metadata_proxy_socket if md is not None else ""
    return configured or str(Path(cfg.state_dir) / "metadata_proxy")


@dataclass
class MetadataProxies:
    state_dir: Path
    socket: str
    debug: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> "MetadataProxies":
        return cls(Path(cfg.state_dir), socket_path(cfg), bool(cfg.default.debug))

    def _ensure(self, c: conf.ProxyConf, ns: str) -> str:
        from neutrino.system import haproxy
        return haproxy.ensure(conf.spec(self.state_dir, c, ns), conf.conf_path(self.state_dir, c.uuid),
                              conf.render(c))

    def ensure_router(self, router_id: str, ns: str) -> str:
        return self._ensure(conf.router_conf(self.state_dir, router_id, self.socket, debug=self.debug), ns)

    def ensure_network(self, network_id: str, ns: str, v6_interface: str | None = None) -> str:
        return self._ensure(conf.network_conf(self.state_dir, network_id, self.socket, debug=self.debug,
                                              v6_interface=v6_interface), ns)

    def stop(self, uuid: str, ns: str | None = None) -> None:
        from neutrino.system import haproxy
        c = conf.router_conf(self.state_dir, uuid, self.socket)   # only pidfile + uuid matter
        haproxy.stop(conf.spec(self.state_dir, c, ns or None), conf.conf_path(self.state_dir, uuid))

    def running(self, uuid: str) -> bool:
        from neutrino.system import haproxy
        c = conf.router_conf(self.state_dir, uuid, self.socket)
        return haproxy.alive(conf.spec(self.state_dir, c, None))
