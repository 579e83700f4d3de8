"""Helpers the benchmarks share (percentiles, durations, command kinds, CPU time, free ports,
openrc files, API URLs and the CA to trust)."""

from __future__ import annotations

import os
import resource
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from neutrino.testing.ports import free_port_offset as free_offset  # noqa: F401 - re-exported


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


class Timers:
    """Wall time and counts per kind of work (thread-safe: agents apply in threads)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.t[kind] += seconds
            self.n[kind] += 1

    def reset(self) -> None:
        self.t.clear()
        self.n.clear()

    def total(self) -> int:
        return sum(self.n.values())

    def counts(self) -> str:
        return ", ".join(f"{k} {self.n[k]}" for k in sorted(self.n, key=lambda k: -self.n[k]))

    def text(self, keys: Sequence[str] | None = None, limit: int = 12) -> str:
        """The slowest kinds first: ``ip addr add 120 ms (40x); ...``."""
        keys = list(keys) if keys is not None else sorted(self.t, key=lambda k: -self.t[k])
        return "; ".join(f"{k} {ms(self.t[k])} ({self.n[k]}x)" for k in keys[:limit])


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_openrc(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export ") :].partition("=")
            env[k] = v.strip().strip("'\"")
    return env


def api_base(openrc: Mapping[str, str], port: int) -> str:
    """``SCHEME://127.0.0.1:PORT`` for an API of the cloud an openrc names: ``https`` when it
    serves TLS (the default), ``http`` after ``neutrino up --no-tls`` (the scheme of OS_AUTH_URL)."""
    return f"{urlsplit(openrc['OS_AUTH_URL']).scheme}://127.0.0.1:{port}"


def verify(openrc: Mapping[str, str]) -> str | bool:
    """httpx's ``verify=`` for the cloud an openrc names: its CA (OS_CACERT, STATE/pki/ca.pem,
    exported when the cloud serves TLS), else the default."""
    return openrc.get("OS_CACERT") or True


def token(auth_url: str, env: Mapping[str, str]) -> str:
    """A project-scoped token for the openrc ``env`` (password login at ``auth_url``, the CA of ``env`` trusted)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": env["OS_USERNAME"], "domain": {"name": "Default"}, "password": env["OS_PASSWORD"]}
                },
            },
            "scope": {"project": {"name": env["OS_PROJECT_NAME"], "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(f"{auth_url}/auth/tokens", json=body, timeout=30, verify=verify(env))
    r.raise_for_status()
    return r.headers["X-Subject-Token"]
