"""The host an agent's executor acts on: one interface over the system adapters.

The executors of the L3, DHCP and compute agents (and the interface driver and the
metadata proxies they share) change the machine only through a ``Host`` handed to
them at construction, as the OVS agent acts only through its ``Ovs``.  The runner
(``neutrino.agents.runner``) builds the real one, ``SystemHost``; unit tests pass
``neutrino.fakes.host.FakeHost``, which keeps the resulting state in memory
(namespaces, links, addresses, routes, iptables rulesets, processes, OVS ports).

``Host`` groups what the executors need, method for method what the adapters of
this package offer: namespaces (``netns``), links, addresses, routes, sysctls and
``ip -batch`` (``iproute``), iptables rulesets (``iptables``), conntrack flushes,
gratuitous ARPs, managed processes (``process``, ``dnsmasq``, ``haproxy``),
one-off commands in a namespace (``exec.run``) and OVS (``HostOvs``: the part of
``ovsdb.Ovs`` the executors use).  ``SystemHost`` only delegates: each method is the
adapter function of the same name (errors: the adapters' ``HostError``s).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from neutrino.system import arping, conntrack, dnsmasq, haproxy, iproute, iptables, netns, process
from neutrino.system import ovsdb as sysovs
from neutrino.system.exec import Completed, run
from neutrino.system.process import ProcessSpec

__all__ = ["Host", "HostOvs", "SystemHost"]


class HostOvs(Protocol):
    """The part of ``ovsdb.Ovs`` the executors use: OVS lives in namespace ``netns``
    (None: the root one); ``transact`` applies ops in one OVSDB transaction, ``observe``
    reads bridges, ports and interfaces, ``vsctl`` runs one ``ovs-vsctl`` (its stdout)."""

    @property
    def netns(self) -> str | None: ...

    def transact(self, ops: Iterable[sysovs.Op], *, wait: bool = True) -> None: ...

    def observe(self) -> sysovs.OvsState: ...

    def vsctl(self, *args: str, wait: bool = True) -> str: ...


class Host(Protocol):
    """What an executor may do to its machine (see the module docstring).

    Namespace arguments name a network namespace (None: the root one).  The methods
    block for the commands they run and raise ``neutrino.system.errors.HostError``s.
    """

    @property
    def ovs(self) -> HostOvs: ...

    # --- namespaces ---------------------------------------------------------------------
    def netns_exists(self, name: str) -> bool: ...

    def list_netns(self) -> list[str]: ...

    def netns_dir_mounted(self) -> bool:
        """Has the first ``ip netns add`` made the namespace directory a mount point yet?"""
        ...

    def ensure_netns(self, name: str, *, lo_up: bool = True) -> None: ...

    def ensure_netns_all(self, names: Iterable[str], *, lo_up: bool = True) -> None: ...

    def remove_netns(self, name: str) -> None: ...

    def remove_netns_all(self, names: Iterable[str]) -> None: ...

    # --- links, addresses, routes, sysctls (``ip``, ``sysctl``, ``ethtool``) -------------
    def observe_netns(self, *, netns: str | None = None) -> iproute.NetnsView: ...

    def list_links(self, *, netns: str | None = None) -> list[iproute.Link]: ...

    def get_link(self, name: str, *, netns: str | None = None) -> iproute.Link | None: ...

    def ensure_veth(
        self,
        name: str,
        peer: str,
        *,
        netns: str | None = None,
        peer_netns: str | None = None,
        mtu: int | None = None,
        peer_mac: str | None = None,
    ) -> None: ...

    def set_link(
        self,
        name: str,
        *,
        netns: str | None = None,
        up: bool | None = None,
        mtu: int | None = None,
        mac_address: str | None = None,
    ) -> None: ...

    def move_link(self, name: str, to_netns: str, *, netns: str | None = None) -> None: ...

    def remove_link(self, name: str, *, netns: str | None = None) -> None: ...

    def disable_offloads(
        self, dev: str, *, netns: str | None = None, features: Iterable[str] = iproute.DEFAULT_OFFLOADS_OFF
    ) -> None: ...

    def list_addresses(self, *, netns: str | None = None, dev: str | None = None) -> list[iproute.Address]: ...

    def ensure_address(self, dev: str, address: str, *, netns: str | None = None) -> None: ...

    def remove_address(self, dev: str, address: str, *, netns: str | None = None) -> None: ...

    def list_routes(self, *, netns: str | None = None, family: int = 4) -> list[iproute.Route]: ...

    def ensure_route(
        self, dst: str, *, via: str | None = None, dev: str | None = None, netns: str | None = None
    ) -> None: ...

    def remove_route(self, dst: str, *, via: str | None = None, netns: str | None = None) -> None: ...

    def ip_batch(self, commands: Sequence[Sequence[str]], *, netns: str | None = None) -> None:
        """All ``commands`` in one ``ip -batch`` (the first failure raises)."""
        ...

    def ip_batch_force(
        self, commands: Sequence[Sequence[str]], *, netns: str | None = None
    ) -> list[iproute.BatchFailure]:
        """All ``commands`` in one ``ip -force -batch``; the lines that failed."""
        ...

    def set_sysctl(self, key: str, value: str | int, *, netns: str | None = None) -> None: ...

    def set_sysctls(self, pairs: Iterable[tuple[str, str | int]], *, netns: str | None = None) -> None: ...

    # --- iptables, conntrack, ARP --------------------------------------------------------
    def iptables_save(self, netns: str | None = None) -> str: ...

    def iptables_restore(self, text: str, netns: str | None = None) -> None:
        """Replace the tables ``text`` holds (each atomically)."""
        ...

    def conntrack_flush(self, netns: str | None = None, dst: str | None = None, src: str | None = None) -> int: ...

    def garp(self, dev: str, ip: str, netns: str | None = None) -> None: ...

    # --- processes ------------------------------------------------------------------------
    def process_alive(self, spec: ProcessSpec) -> bool: ...

    def process_start(self, spec: ProcessSpec) -> int: ...

    def process_stop(self, spec: ProcessSpec) -> None: ...

    def process_argv(self, spec: ProcessSpec) -> list[str] | None:
        """The command line of the process ``spec`` names (None when it does not run)."""
        ...

    def process_reload(self, spec: ProcessSpec) -> bool:
        """SIGHUP the process ``spec`` names; False when it does not run."""
        ...

    def haproxy_ensure(self, spec: ProcessSpec, conf: Path, text: str) -> str:
        """Keep haproxy ``spec`` running with configuration ``text`` in ``conf``."""
        ...

    def haproxy_stop(self, spec: ProcessSpec, conf: Path | None = None) -> None: ...

    def haproxy_alive(self, spec: ProcessSpec) -> bool: ...

    def run(
        self, argv: Sequence[str], *, netns: str | None = None, check: bool = True, timeout: float = 30
    ) -> Completed:
        """One command (argv, never a shell string) in ``netns``, waited for."""
        ...


class SystemHost:
    """The real host: each method delegates to the adapter of the same name (no logic here)."""

    def __init__(self, ovs: sysovs.Ovs) -> None:
        self._ovs = ovs

    def __repr__(self) -> str:
        return f"SystemHost({self._ovs!r})"

    @property
    def ovs(self) -> sysovs.Ovs:
        return self._ovs

    # --- namespaces ---------------------------------------------------------------------
    def netns_exists(self, name: str) -> bool:
        return netns.netns_exists(name)

    def list_netns(self) -> list[str]:
        return netns.list_netns()

    def netns_dir_mounted(self) -> bool:
        return os.path.ismount(netns.NETNS_DIR)

    def ensure_netns(self, name: str, *, lo_up: bool = True) -> None:
        netns.ensure_netns(name, lo_up=lo_up)

    def ensure_netns_all(self, names: Iterable[str], *, lo_up: bool = True) -> None:
        netns.ensure_netns_all(names, lo_up=lo_up)

    def remove_netns(self, name: str) -> None:
        netns.remove_netns(name)

    def remove_netns_all(self, names: Iterable[str]) -> None:
        netns.remove_netns_all(names)

    # --- links, addresses, routes, sysctls -------------------------------------------------
    def observe_netns(self, *, netns: str | None = None) -> iproute.NetnsView:
        return iproute.observe_netns(netns=netns)

    def list_links(self, *, netns: str | None = None) -> list[iproute.Link]:
        return iproute.list_links(netns=netns)

    def get_link(self, name: str, *, netns: str | None = None) -> iproute.Link | None:
        return iproute.get_link(name, netns=netns)

    def ensure_veth(
        self,
        name: str,
        peer: str,
        *,
        netns: str | None = None,
        peer_netns: str | None = None,
        mtu: int | None = None,
        peer_mac: str | None = None,
    ) -> None:
        iproute.ensure_veth(name, peer, netns=netns, peer_netns=peer_netns, mtu=mtu, peer_mac=peer_mac)

    def set_link(
        self,
        name: str,
        *,
        netns: str | None = None,
        up: bool | None = None,
        mtu: int | None = None,
        mac_address: str | None = None,
    ) -> None:
        iproute.set_link(name, netns=netns, up=up, mtu=mtu, mac_address=mac_address)

    def move_link(self, name: str, to_netns: str, *, netns: str | None = None) -> None:
        iproute.move_link(name, to_netns, netns=netns)

    def remove_link(self, name: str, *, netns: str | None = None) -> None:
        iproute.remove_link(name, netns=netns)

    def disable_offloads(
        self, dev: str, *, netns: str | None = None, features: Iterable[str] = iproute.DEFAULT_OFFLOADS_OFF
    ) -> None:
        iproute.disable_offloads(dev, netns=netns, features=features)

    def list_addresses(self, *, netns: str | None = None, dev: str | None = None) -> list[iproute.Address]:
        return iproute.list_addresses(netns=netns, dev=dev)

    def ensure_address(self, dev: str, address: str, *, netns: str | None = None) -> None:
        iproute.ensure_address(dev, address, netns=netns)

    def remove_address(self, dev: str, address: str, *, netns: str | None = None) -> None:
        iproute.remove_address(dev, address, netns=netns)

    def list_routes(self, *, netns: str | None = None, family: int = 4) -> list[iproute.Route]:
        return iproute.list_routes(netns=netns, family=family)

    def ensure_route(
        self, dst: str, *, via: str | None = None, dev: str | None = None, netns: str | None = None
    ) -> None:
        iproute.ensure_route(dst, via=via, dev=dev, netns=netns)

    def remove_route(self, dst: str, *, via: str | None = None, netns: str | None = None) -> None:
        iproute.remove_route(dst, via=via, netns=netns)

    def ip_batch(self, commands: Sequence[Sequence[str]], *, netns: str | None = None) -> None:
        iproute.batch(commands, netns=netns)

    def ip_batch_force(
        self, commands: Sequence[Sequence[str]], *, netns: str | None = None
    ) -> list[iproute.BatchFailure]:
        return iproute.batch_force(commands, netns=netns)

    def set_sysctl(self, key: str, value: str | int, *, netns: str | None = None) -> None:
        iproute.set_sysctl(key, value, netns=netns)

    def set_sysctls(self, pairs: Iterable[tuple[str, str | int]], *, netns: str | None = None) -> None:
        iproute.set_sysctls(pairs, netns=netns)

    # --- iptables, conntrack, ARP ----------------------------------------------------------
    def iptables_save(self, netns: str | None = None) -> str:
        return iptables.save(netns)

    def iptables_restore(self, text: str, netns: str | None = None) -> None:
        iptables.restore(text, netns)

    def conntrack_flush(self, netns: str | None = None, dst: str | None = None, src: str | None = None) -> int:
        return conntrack.flush(netns, dst=dst, src=src)

    def garp(self, dev: str, ip: str, netns: str | None = None) -> None:
        arping.garp(dev, ip, netns)

    # --- processes ----------------------------------------------------------------------------
    def process_alive(self, spec: ProcessSpec) -> bool:
        return process.alive(spec)

    def process_start(self, spec: ProcessSpec) -> int:
        return process.start(spec)

    def process_stop(self, spec: ProcessSpec) -> None:
        process.stop(spec)

    def process_argv(self, spec: ProcessSpec) -> list[str] | None:
        return dnsmasq.running_argv(spec)

    def process_reload(self, spec: ProcessSpec) -> bool:
        return dnsmasq.reload(spec)

    def haproxy_ensure(self, spec: ProcessSpec, conf: Path, text: str) -> str:
        return haproxy.ensure(spec, conf, text)

    def haproxy_stop(self, spec: ProcessSpec, conf: Path | None = None) -> None:
        haproxy.stop(spec, conf)

    def haproxy_alive(self, spec: ProcessSpec) -> bool:
        return haproxy.alive(spec)

    def run(
        self, argv: Sequence[str], *, netns: str | None = None, check: bool = True, timeout: float = 30
    ) -> Completed:
        return run(argv, netns=netns, check=check, timeout=timeout)
