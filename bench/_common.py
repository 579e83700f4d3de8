"""Helpers the benchmarks share (percentiles, CPU time, free ports, openrc files)."""

from __future__ import annotations

import random
import resource
import socket
from pathlib import Path
from typing import Sequence


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def free_offset() -> int:
    for _ in range(100):
        off = random.randrange(20000, 40000)
        ok = True
        for port in (5000 + off, 9696 + off, 8774 + off, 9292 + off):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return off
    raise RuntimeError("no free port offset")


def read_openrc(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = v.strip().strip("'\"")
    return env
