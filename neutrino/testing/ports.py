"""Free API ports for a throwaway all-in-one (tests and benchmarks)."""

from __future__ import annotations

import random
import socket

#: The base ports `neutrino up --port-offset N` moves by N: identity, network, compute, image.
BASE_PORTS = (5000, 9696, 8774, 9292)


def free_port_offset() -> int:
    """A random ``--port-offset`` (20000-39999) whose four ports are all free on 127.0.0.1."""
    for _ in range(100):
        off = random.randrange(20000, 40000)
        ok = True
        for port in BASE_PORTS:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + off))
                except OSError:
                    ok = False
        if ok:
            return off
    raise RuntimeError("no free port offset")
