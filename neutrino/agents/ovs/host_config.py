"""Where this host's Open vSwitch lives and how the OVS agent is configured, from ``Config``.

``host_ovs`` is the switch of this host (its run directory and namespace): the agents'
runner hands it to every agent's ``Host``, the command line uses it to start and stop the
host's OVS.  ``agent_config`` and ``firewall_driver`` are the OVS agent's settings.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from neutrino.agents.ovs.model import AgentConfig, DatapathType
from neutrino.config import Config
from neutrino.system import ovsdb as sysovs


def datapath_type(setting: str) -> DatapathType:
    """``auto``: the kernel datapath when its module is loaded, else userspace.  Any other
    value than ``system``, ``netdev`` and ``auto`` is a ``ValueError`` (the option's contract)."""
    if setting == "system":
        return "system"
    if setting == "netdev":
        return "netdev"
    if setting != "auto":
        raise ValueError(f"[ovs] datapath_type must be system, netdev or auto, not {setting!r}")
    return "system" if os.path.isdir("/sys/module/openvswitch") else "netdev"


def agent_config(cfg: Config, host: str) -> AgentConfig:
    return AgentConfig(
        host=host,
        integration_bridge=cfg.ovs.integration_bridge,
        tunnel_bridge=cfg.ovs.tunnel_bridge,
        bridge_mappings=dict(cfg.ovs.bridge_mappings),
        local_ip=cfg.ovs.local_ip or None,
        tunnel_types=tuple(cfg.agent.tunnel_types),
        l2_population=cfg.agent.l2_population,
        arp_responder=cfg.agent.arp_responder,
        datapath_type=datapath_type(cfg.ovs.datapath_type),
    )


def ovs_rundir(cfg: Config) -> Path:
    return Path(cfg.ovs.ovs_rundir) if cfg.ovs.ovs_rundir else cfg.state_dir / "ovs"


def host_netns(cfg: Config) -> str | None:
    """The namespace of this host's OVS (None: the root namespace)."""
    name = cfg.ovs.host_netns
    if name == "auto":
        digest = hashlib.sha1(str(cfg.state_dir.resolve()).encode()).hexdigest()[:8]
        return f"nt-{digest}"
    return name or None


def host_ovs(cfg: Config) -> sysovs.Ovs:
    return sysovs.Ovs(ovs_rundir(cfg), host_netns(cfg))


def firewall_driver(cfg: Config) -> str:
    """``[securitygroup] firewall_driver`` (``noop`` also when security groups are disabled)."""
    sg = cfg.securitygroup
    return sg.firewall_driver if sg.enable_security_group else "noop"


__all__ = ["agent_config", "datapath_type", "firewall_driver", "host_netns", "host_ovs", "ovs_rundir"]
