"""Entry point of ``neutrino agent KIND``: wires config, credentials, the feed
client and the agent's driver into an ``AgentLoop`` and runs it until
SIGTERM/SIGINT.  Drivers are found in an explicit registry (no plugins).

Credentials: with TLS (an ``https://`` server URL, the default) the agent
presents this node's client certificate (``neutrino.agents.tls``) and sends no
token; an unusable certificate (missing, expired, not valid yet) stops it with
a message naming the file and the dates.  With ``--no-tls`` it logs in as the
service user of ``STATE/agent-openrc`` (``neutrino.agents.auth``).

This is where the real machine is built: ``system_host`` (a ``SystemHost`` over this
host's OVS) is handed to the driver's factory, and the executors change the machine
only through it (tests hand them ``neutrino.fakes.host.FakeHost``)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import socket
from collections.abc import Callable
from typing import Any

import uvloop

from neutrino.agents.auth import PasswordTokenSource, agent_credentials
from neutrino.agents.loop import AgentLoop
from neutrino.agents.ovs.host_config import host_ovs
from neutrino.agents.tls import AgentCertificateError, agent_tls, scheme
from neutrino.config import Config
from neutrino.feed.client import FeedClient
from neutrino.system.host import SystemHost

LOG = logging.getLogger(__name__)

#: kind -> "module:factory"; factory(cfg, host_name, host: Host) -> Driver
DRIVERS: dict[str, str] = {
    "ovs": "neutrino.agents.ovs.agent:make_driver",
    "compute": "neutrino.agents.compute.agent:make_driver",
    "dhcp": "neutrino.agents.dhcp.agent:make_driver",
    "l3": "neutrino.agents.l3.agent:make_driver",
    "metadata": "neutrino.agents.metadata.agent:make_driver",
}


def host_name(cfg: Config) -> str:
    return cfg.default.host or socket.gethostname()


def server_url(cfg: Config) -> str:
    if cfg.default.server_url:
        return cfg.default.server_url
    host = cfg.default.bind_host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"{scheme(cfg)}://{host}:{cfg.default.bind_port}"


def system_host(cfg: Config) -> SystemHost:
    """The machine the agents run on: the system adapters, with this host's OVS."""
    return SystemHost(host_ovs(cfg))


def load_driver(kind: str) -> Callable[..., Any]:
    try:
        target = DRIVERS[kind]
    except KeyError:
        raise SystemExit(f"unknown agent kind {kind!r}; known: {', '.join(sorted(DRIVERS))}") from None
    module, _, name = target.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return factory


def feed_client(cfg: Config) -> FeedClient:
    """The agent's client of the server: its certificate over TLS, the service user's token without."""
    url = server_url(cfg)
    try:
        tls = agent_tls(cfg, url)
    except AgentCertificateError as exc:
        raise SystemExit(str(exc)) from None
    if tls is not None:
        return FeedClient(url, None, verify=tls.context, before_request=tls.maybe_reload)
    return FeedClient(url, PasswordTokenSource(agent_credentials(cfg.state_dir)))  # the service user, never the admin


async def run_agent(kind: str, cfg: Config) -> None:
    host = host_name(cfg)
    client = feed_client(cfg)
    driver = load_driver(kind)(cfg, host, system_host(cfg))
    async with client:
        loop = AgentLoop(
            driver,
            client,
            host=host,
            availability_zone=cfg.agent.availability_zone,
            report_interval=cfg.agent.report_interval,
            tick=cfg.agent.polling_interval,
        )
        aio = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            aio.add_signal_handler(sig, loop.stop.set)
        LOG.info("%s agent on host %s following %s", kind, host, server_url(cfg))
        try:
            await loop.run()
        finally:
            close = getattr(driver, "close", None)
            if close is not None:
                await close()


#: Agents whose event loop is uvloop: the metadata agent serves HTTP on its unix socket, where
#: uvloop costs ~30 % less CPU per request than the default loop (bench/metadata_bench.py).
UVLOOP_AGENTS = frozenset({"metadata"})


def main(kind: str, cfg: Config) -> None:
    logging.basicConfig(
        level=logging.DEBUG if cfg.default.debug else logging.INFO,
        format=f"%(asctime)s %(process)d %(levelname)s {kind}-agent %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    if kind in UVLOOP_AGENTS:
        uvloop.install()
    asyncio.run(run_agent(kind, cfg))
