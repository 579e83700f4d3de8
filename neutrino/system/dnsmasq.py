"""dnsmasq processes (one per network, in its ``qdhcp-`` namespace).

The argv comes from the DHCP agent's pure renderer; this module only starts,
reloads and stops it.  dnsmasq daemonises and writes its own ``--pid-file``;
a pid is ours only while its command line names the network id (in the
configuration directory path), as Neutron's process manager checks.
Reload = SIGHUP: dnsmasq re-reads the hosts, opts and addn-hosts files (not
its command line, which needs a restart).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path

from neutrino.system import process
from neutrino.system.process import ProcessSpec


def spec(network_id: str, argv: Sequence[str], pidfile: Path, netns: str) -> ProcessSpec:
    return ProcessSpec(argv=tuple(argv), pidfile=pidfile, netns=netns, uuid=network_id, daemonizes=True)


def running_argv(s: ProcessSpec) -> list[str] | None:
    """The command line of the running dnsmasq (None when it does not run)."""
    pid = process.pid_of(s)
    return process.proc_cmdline(pid) if pid is not None else None


def start(s: ProcessSpec) -> int:
    return process.start(s, timeout=10)


def reload(s: ProcessSpec) -> bool:
    """SIGHUP the verified dnsmasq; False when it does not run."""
    pid = process.pid_of(s)
    return pid is not None and process.signal_pid(pid, signal.SIGHUP)


def stop(s: ProcessSpec) -> None:
    process.stop(s, timeout=5)


def rss_kb(s: ProcessSpec) -> int | None:
    pid = process.pid_of(s)
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None
