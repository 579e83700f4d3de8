"""This host's data plane for ``neutrino up``/``down``: a private Open vSwitch
instance (its own database and sockets under STATE/ovs, never the system
one) and the agents that run here.  Needs root and the OVS binaries; without
them only the APIs run.

The lab host: the all-in-one bridges physnet ``physnet`` (its bridge in
``[ovs] bridge_mappings``, br-phys) to a network namespace ``[lab]
host_netns`` (default ``lab-host``) holding ``lab0`` with ``[lab] cidr``
(default 172.16.0.1/24), which plays the lab host / network node gateway -
never to this machine's own uplink.  A veth ``lab-phys`` (a port of br-phys,
in the OVS namespace) <-> ``lab0`` (in the lab namespace), checksum offload
off on both ends (the userspace datapath needs it).  ``down`` removes the
veth; ``down --purge`` the namespace too.  Several all-in-ones on one
machine need distinct ``host_netns`` names; an empty name disables it.

Roles (``[DEFAULT] roles``, ``neutrino up --role``): a node runs the agents
of its roles (``ROLE_AGENTS``); the lab host hangs off the node with the
network role, as the seed's network node holds 172.16.0.1 on its external
bridge.  With ``[ovs] ovs_rundir`` set, the OVS (and its namespace) belong to
someone else (the host, a test fabric): used, never started or stopped."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from neutrino.cli import process

AGENTS = ("ovs", "dhcp", "l3", "metadata", "compute")
#: The agents each role runs (the seed's node types: "network node", "compute node").
ROLE_AGENTS = {"controller": (), "network": ("ovs", "dhcp", "l3", "metadata"), "compute": ("ovs", "compute")}
ROLES = ("controller", "network", "compute")


def expand_roles(roles: Any) -> tuple[str, ...]:
    """``all`` -> every role; otherwise the given ones, in ROLES order."""
    given = set(roles)
    return ROLES if "all" in given else tuple(r for r in ROLES if r in given)


def agents_for(roles: Any) -> tuple[str, ...]:
    """The agent kinds of ``roles`` (expanded), in AGENTS order."""
    kinds = {k for r in expand_roles(roles) for k in ROLE_AGENTS[r]}
    return tuple(k for k in AGENTS if k in kinds)


def external_ovs(cfg: Any) -> bool:
    """True when ``[ovs] ovs_rundir`` names an OVS someone else runs (never started or stopped here)."""
    return bool(cfg.ovs.ovs_rundir)


#: The lab host's physical network, and the device names of its veth.
LAB_PHYSNET = "physnet"
LAB_DEV = "lab0"
LAB_PORT = "lab-phys"


def can_run() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "the agents need root"
    for tool in ("ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ip"):
        if shutil.which(tool) is None:
            return False, f"{tool} is not installed (make install)"
    return True, ""


def private_ovs(cfg: Any) -> Any:
    from neutrino.agents.ovs.host_config import host_netns, ovs_rundir
    from neutrino.system.ovsdb import PrivateOvs

    root = cfg.state_dir
    return PrivateOvs(
        ovs_rundir(cfg), host_netns(cfg), uuid=f"neutrino-ovs-{root.resolve().as_posix().replace('/', '_')}"
    )


def agent_argv(root: Path, kind: str, port_offset: int) -> list[str]:
    argv = [sys.executable, "-m", "neutrino.cli.main", "agent", kind, "--state-dir", str(root)]
    if port_offset:
        argv += ["--port-offset", str(port_offset)]
    return argv


def start(layout: Any, cfg: Any, port_offset: int, kinds: tuple[str, ...] = AGENTS, lab_host: bool = True) -> list[str]:
    """Start OVS (if not running and ours to run), the lab host (with ``lab_host``) and the
    agents ``kinds``; returns the names started.  Raises RuntimeError when an external OVS
    (``[ovs] ovs_rundir``) does not answer."""
    ok, why = can_run()
    if not ok:
        print(f"note: agents not started: {why}")
        return []
    if not kinds:
        return []
    po = private_ovs(cfg)
    if external_ovs(cfg):
        from neutrino.system.errors import HostError

        try:
            po.ovs.vsctl("show", wait=False)
        except HostError as exc:
            raise RuntimeError(
                f"the Open vSwitch in [ovs] ovs_rundir = {cfg.ovs.ovs_rundir} does not answer "
                f"(it is not started by neutrino): {exc}"
            ) from None
    else:
        if po.netns:
            from neutrino.system import netns

            netns.ensure_netns(po.netns)
        if not po.alive():
            po.start()
    if lab_host:
        ensure_lab_host(cfg, po)
    started = []
    for kind in kinds:
        name = f"{kind}-agent"
        pf = layout.pidfile(name)
        try:
            rec = pf.read()
        except process.PidFileError:
            rec = None
        if rec is not None and rec.is_alive():
            continue
        process.spawn(
            name,
            agent_argv(layout.root, kind, port_offset),
            pidfile=pf,
            log_path=layout.log(name),
            cwd=layout.root,
            extra={},
        )
        started.append(name)
    return started


def stop(layout: Any, cfg: Any, purge: bool) -> None:
    """Stop the private OVS; with ``purge`` also remove its namespace and the
    instances this state dir made.  The lab host is the network node's (``start``
    plugs it only there): other nodes leave it alone."""
    from neutrino.system import netns

    po = private_ovs(cfg)
    if "network" in expand_roles(cfg.default.roles):
        remove_lab_host(cfg, po, purge)
    if external_ovs(cfg):
        pass  # someone else's: left running, bridges and all
    elif po.rundir.exists():
        if purge:
            po.destroy()
        else:
            po.stop()
    # dnsmasqs and metadata proxies of the DHCP and L3 agents, and their namespaces:
    # stopped with the rest (verified pids only).
    from neutrino.agents.dhcp.agent import confs_dir
    from neutrino.agents.dhcp.model import namespace_name
    from neutrino.agents.l3.model import namespace_name as router_namespace
    from neutrino.agents.metadata import MetadataProxies, default_socket_dir, socket_path
    from neutrino.agents.ovs.host_config import host_ovs
    from neutrino.system import dnsmasq
    from neutrino.system.host import SystemHost

    # stopping needs no user or group
    proxies = MetadataProxies(cfg.state_dir, socket_path(cfg), host=SystemHost(host_ovs(cfg)))
    dhcp = confs_dir(cfg)
    for d in sorted(dhcp.iterdir()) if dhcp.is_dir() else []:
        dnsmasq.stop(dnsmasq.spec(d.name, ("dnsmasq",), d / "pid", namespace_name(d.name)))
        proxies.stop(d.name, namespace_name(d.name))
        netns.remove_netns(namespace_name(d.name))
    routers = cfg.state_dir / "l3"
    for mark in sorted(routers.iterdir()) if routers.is_dir() else []:
        proxies.stop(mark.name, router_namespace(mark.name))
        netns.remove_netns(router_namespace(mark.name))
        mark.unlink()
    if purge:
        shutil.rmtree(dhcp, ignore_errors=True)
        if not cfg.metadata.metadata_proxy_socket:
            shutil.rmtree(default_socket_dir(cfg.state_dir), ignore_errors=True)
    # Nothing runs in the host namespace once OVS is stopped; removing it takes
    # the host ends of the instances' veths with it (`up` plugs them again).
    if not external_ovs(cfg) and po.netns and netns.netns_exists(po.netns) and not netns.netns_pids(po.netns):
        netns.remove_netns(po.netns)
    if purge:
        marks = layout.root / "instances"
        for mark in sorted(marks.glob("*")) if marks.is_dir() else []:
            netns.remove_netns(f"vm-{mark.name}")
            shutil.rmtree(Path("/etc/netns") / f"vm-{mark.name}", ignore_errors=True)
            mark.unlink()


def lab_bridge(cfg: Any) -> str | None:
    """The OVS bridge of the lab host's physnet, or None when there is no lab host."""
    if not cfg.lab.host_netns:
        return None
    return dict(cfg.ovs.bridge_mappings).get(LAB_PHYSNET)


def ensure_lab_host(cfg: Any, po: Any) -> bool:
    """Plug the lab namespace into the physnet bridge of the running private OVS ``po``
    (idempotent); False when there is no lab host."""
    from neutrino.agents.ovs.host_config import datapath_type
    from neutrino.system import iproute, netns
    from neutrino.system import ovsdb as sysovs

    bridge = lab_bridge(cfg)
    if bridge is None:
        return False
    lab_ns, ovs_netns = cfg.lab.host_netns, po.netns
    if lab_ns == ovs_netns:
        raise ValueError(f"[lab] host_netns {lab_ns!r} is the OVS host namespace")
    netns.ensure_netns(lab_ns)
    recreated = iproute.get_link(LAB_DEV, netns=lab_ns) is None or iproute.get_link(LAB_PORT, netns=ovs_netns) is None
    if recreated:
        # One end without the other is a leftover: start over with a fresh pair.
        iproute.remove_link(LAB_PORT, netns=ovs_netns)
        iproute.remove_link(LAB_DEV, netns=lab_ns)
        iproute.ensure_veth(LAB_PORT, LAB_DEV, netns=ovs_netns, peer_netns=lab_ns)
    iproute.set_link(LAB_PORT, netns=ovs_netns, up=True)
    iproute.set_link(LAB_DEV, netns=lab_ns, up=True)
    iproute.disable_offloads(LAB_PORT, netns=ovs_netns)
    iproute.disable_offloads(LAB_DEV, netns=lab_ns)
    iproute.ensure_address(LAB_DEV, cfg.lab.cidr, netns=lab_ns)
    # The bridge as the OVS agent makes it (it creates missing mapped bridges
    # too, and sets fail mode and protocols itself); a re-created device is
    # picked up only with a fresh port row.
    po.ovs.transact(
        [
            sysovs.AddBridge(bridge, datapath_type=datapath_type(cfg.ovs.datapath_type)),
            *([sysovs.DelPort(LAB_PORT, bridge)] if recreated else []),
            sysovs.AddPort(bridge, LAB_PORT, external_ids={"neutrino-lab-host": lab_ns}),
        ]
    )
    return True


def remove_lab_host(cfg: Any, po: Any, purge: bool) -> None:
    """Unplug the lab host (the veth and its port row); with ``purge`` remove its namespace."""
    from neutrino.system import iproute, netns
    from neutrino.system import ovsdb as sysovs
    from neutrino.system.errors import HostError

    bridge = lab_bridge(cfg)
    if bridge is None:
        return
    lab_ns = cfg.lab.host_netns
    if po.alive():
        try:
            po.ovs.transact([sysovs.DelPort(LAB_PORT, bridge)])
        except HostError:
            pass
    if po.netns is None or netns.netns_exists(po.netns):
        iproute.remove_link(LAB_PORT, netns=po.netns)
    if netns.netns_exists(lab_ns):
        iproute.remove_link(LAB_DEV, netns=lab_ns)
        if purge:
            netns.remove_netns(lab_ns)


AGENT_TYPES = {
    "ovs": "Open vSwitch agent",
    "dhcp": "DHCP agent",
    "l3": "L3 agent",
    "metadata": "Metadata agent",
    "compute": "Compute agent",
}


def wait_alive(
    layout: Any, network_url: str, timeout: float = 30.0, kinds: tuple[str, ...] = AGENTS, host: str | None = None
) -> list[str]:
    """Wait until the agents ``kinds`` of ``host`` (None: any host) report alive; returns
    the agent types still missing.  Asks as the agents do (the feed's snapshot of agents, with
    this node's client certificate over TLS, else as their service user): a node other than
    the controller has no admin credentials."""
    import time

    import httpx

    from neutrino.agents.auth import agent_credentials
    from neutrino.cli.console import _token, _verify
    from neutrino.pki.paths import pki_paths
    from neutrino.pki.tls import client_context

    want = {AGENT_TYPES[k] for k in kinds}
    headers: dict[str, str] = {}
    if network_url.startswith("https://"):
        # TLS: as the agents do, with this node's client certificate and no password.
        paths = pki_paths(layout.root)
        verify: Any = client_context(paths.ca, paths.node_cert, paths.node_key)
    else:
        creds = agent_credentials(layout.root)
        verify = _verify(layout, creds)
        headers["X-Auth-Token"] = _token(creds, verify)
    deadline = time.monotonic() + timeout
    missing = sorted(want)
    while time.monotonic() < deadline:
        try:
            r = httpx.get(
                f"{network_url.rstrip('/')}/neutrino/v1/snapshot",
                params={"resources": "agent"},
                headers=headers,
                timeout=5,
                verify=verify,
            )
            alive = {
                a["agent_type"]
                for a in r.json().get("resources", {}).get("agents", [])
                if a.get("alive") and (host is None or a.get("host") == host)
            }
            missing = sorted(want - alive)
        except httpx.HTTPError:
            pass
        if not missing:
            return []
        time.sleep(0.2)
    return missing
