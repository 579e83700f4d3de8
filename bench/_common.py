"""Helpers the benchmarks share (percentiles, durations, command kinds, CPU time, free ports,
openrc files)."""

from __future__ import annotations

import os
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


def ms(seconds: float | None) -> str:
    """A duration for a report: ``12 ms`` below 10 s, else ``12.3 s``; ``n/a`` for None/NaN."""
    if seconds is None or seconds != seconds:  # nan
        return "n/a"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def command_kind(argv: Sequence[object]) -> str:
    """What a command is, for a breakdown: ``ip -n NS -j addr show`` -> ``ip addr show``,
    ``ip netns exec NS sysctl ...`` -> ``sysctl``, ``ip -batch -`` -> ``ip -batch``."""
    a = [str(x) for x in argv]
    if a[:3] == ["ip", "netns", "exec"] and len(a) > 4:
        a = a[4:]
    tool = os.path.basename(a[0])
    if tool != "ip":
        return tool
    words, i = [], 1
    while i < len(a) and len(words) < 2:
        if a[i] in ("-n", "-netns"):
            i += 2
            continue
        if a[i].startswith("-"):
            if a[i] == "-batch":
                return "ip -batch"
            i += 1
            continue
        words.append(a[i])
        i += 1
    return " ".join(["ip", *words])


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
