"""The guest side of an instance: its DHCP client.

An instance on a subnet with DHCP runs busybox ``udhcpc`` in its namespace
(like a cirros guest would).  ``udhcpc`` calls a small script on each event;
``udhcpc_script`` renders it (pure).  The script applies what the lease says:
address, MTU (option 26), classless static routes (121, which per RFC 3442
replace the router option), else the default router (3), and name servers
(6) into ``/etc/resolv.conf`` — inside ``ip netns exec`` that path is the
bind-mounted ``/etc/netns/<namespace>/resolv.conf``, the file every command
run by ``neutrino console`` sees.
"""

from __future__ import annotations

from pathlib import Path

from neutrino.system.process import ProcessSpec

UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc event script written by neutrino's compute agent (the guest's DHCP client).
# udhcpc passes the lease in the environment: $interface $ip $mask $router $dns $mtu
# $staticroutes ("dest/len gw dest/len gw ...").
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
  bound|renew)
    if [ -n "$mtu" ]; then ip link set dev "$interface" mtu "$mtu"; fi
    ip -4 route flush dev "$interface" 2>/dev/null
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        ip route replace "$1" via "$2" dev "$interface"
        shift 2
      done
    elif [ -n "$router" ]; then
      for gw in $router; do ip route replace default via "$gw" dev "$interface"; break; done
    fi
    : > /etc/resolv.conf
    for ns in $dns; do echo "nameserver $ns" >> /etc/resolv.conf; done
    if [ -n "$domain" ]; then echo "search $domain" >> /etc/resolv.conf; fi
    ;;
esac
exit 0
"""


def udhcpc_script() -> str:
    return UDHCPC_SCRIPT


def udhcpc_spec(netns: str, dev: str, run_dir: Path, script: Path, server_id: str) -> ProcessSpec:
    """The DHCP client of one guest interface (renews in the foreground, forever)."""
    pidfile = run_dir / f"udhcpc-{dev}.pid"
    argv = [
        "udhcpc",
        "-f",
        "-i",
        dev,
        "-s",
        str(script),
        "-t",
        "20",
        "-T",
        "1",
        "-A",
        "1",
        "-O",
        "mtu",
        "-O",
        "staticroutes",
        "-O",
        "dns",
        "-O",
        "domain",
        "-x",
        f"hostname:{server_id[:8]}",
    ]
    return ProcessSpec(
        argv=tuple(argv),
        pidfile=pidfile,
        netns=netns,
        uuid=f"neutrino-guest-{server_id}-{dev}",
        log_path=run_dir / f"udhcpc-{dev}.log",
    )
