"""Named network namespaces (``ip netns``): ensure, remove, list, exists, pids.

All verbs are idempotent: ``ensure_netns`` on an existing namespace and
``remove_netns`` on a missing one succeed.  Removing a namespace destroys the
veths/taps/bridges inside it, but the kernel keeps it alive while a process
still runs in it: stop those first (``netns_pids``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from neutrino.system.errors import NamespaceExists, NamespaceNotFound
from neutrino.system.exec import Runner, run

NETNS_DIR = Path("/run/netns")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a usable namespace name (it becomes a file in /run/netns)."""
    if not _NAME.match(name):
        raise ValueError(f"invalid network namespace name: {name!r}")
    return name


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / check_name(name)).exists()


def list_netns(*, runner: Runner = run) -> list[str]:
    """Names of all named namespaces (``ip -j netns list``), sorted."""
    out = runner(["ip", "-j", "netns", "list"]).stdout.strip()
    return sorted(entry["name"] for entry in json.loads(out)) if out else []


def ensure_netns(name: str, *, lo_up: bool = True, runner: Runner = run) -> None:
    """Create namespace ``name`` unless it exists; bring its loopback up."""
    if not netns_exists(name):   # (checks the name) skip a doomed `ip netns add` process
        try:
            runner(["ip", "netns", "add", name])
        except NamespaceExists:
            pass
    if lo_up:
        runner(["ip", "-n", name, "link", "set", "lo", "up"])


def remove_netns(name: str, *, runner: Runner = run) -> None:
    """Delete namespace ``name``; nothing to do if it does not exist."""
    check_name(name)
    if not netns_exists(name):
        return
    try:
        runner(["ip", "netns", "delete", name])
    except NamespaceNotFound:
        pass
    except Exception:
        if netns_exists(name):
            raise


def netns_pids(name: str, *, runner: Runner = run) -> list[int]:
    """Pids of the processes running inside namespace ``name`` (``ip netns pids``)."""
    out = runner(["ip", "netns", "pids", check_name(name)]).stdout
    return sorted(int(tok) for tok in out.split())


__all__ = ["NETNS_DIR", "check_name", "ensure_netns", "list_netns", "netns_exists", "netns_pids",
           "remove_netns"]
