"""Free API ports for a throwaway all-in-one (tests and benchmarks)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: The base ports `neutrino up --port-offset N` moves by N: identity, network, compute, image,
#: metadata (``cli.layout.with_port_offset``; a unit test keeps the two lists equal).
BASE_PORTS = (5000, 9696, 8774, 9292, 8775)

_LOWEST_OFFSET = 10000
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_low() -> int:
    """The lowest port the kernel hands out to outgoing connections (32768 if unknown)."""
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_offset() -> int:
    """A random ``--port-offset`` whose ports are all free on 127.0.0.1.

    Every moved port stays below the kernel's ephemeral range: a port in it can be taken by
    any client's outgoing connection between this check and the server's bind (the tests
    make thousands), which is how an all-in-one once failed to start.
    """
    hi = ephemeral_low() - max(BASE_PORTS)
    if hi <= _LOWEST_OFFSET:
        raise RuntimeError(f"no room for API ports below the ephemeral range ({ephemeral_low()})")
    for _ in range(100):
        off = random.randrange(_LOWEST_OFFSET, hi)
        ok = True
        for port in BASE_PORTS:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + off))
                except OSError:
                    ok = False
                    break
        if ok:
            return off
    raise RuntimeError("no free port offset")
