"""Named network namespaces (``ip netns``): ensure, remove, list, exists, pids.

All verbs are idempotent: ``ensure_netns`` on an existing namespace and
``remove_netns`` on a missing one succeed.  ``ensure_netns_all`` /
``remove_netns_all`` do the same for many namespaces with ONE ``ip -batch``
process (an agent's full resync creates or deletes a namespace per router or
network; ``ip netns add`` in batch mode returns to the caller's namespace
after each line).  Removing a namespace destroys the
veths/taps/bridges inside it, but the kernel keeps it alive while a process
still runs in it: stop those first (``netns_pids``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
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
    if not netns_exists(name):  # (checks the name) skip a doomed `ip netns add` process
        try:
            runner(["ip", "netns", "add", name])
        except NamespaceExists:
            pass
    if lo_up:
        runner(["ip", "-n", name, "link", "set", "lo", "up"])


def ensure_netns_all(names: Iterable[str], *, lo_up: bool = True, runner: Runner = run) -> None:
    """``ensure_netns`` for each of ``names``; the missing ones are created by one
    ``ip -force -batch -`` process.  With ``lo_up`` each namespace's loopback is brought up
    (one ``ip`` process per namespace: callers that run a batch in the namespace anyway
    pass ``False`` and put ``link set dev lo up`` there).

    Idempotent.  A namespace still missing after the batch is retried alone, which raises
    its error (``NamespaceExists`` races are not errors).
    """
    wanted = [check_name(n) for n in dict.fromkeys(names)]
    missing = [n for n in wanted if not netns_exists(n)]
    if len(missing) > 1:
        runner(["ip", "-force", "-batch", "-"], input="".join(f"netns add {n}\n" for n in missing), check=False)
    for name in missing:
        if not netns_exists(name):
            ensure_netns(name, lo_up=False, runner=runner)
    if lo_up:
        for name in wanted:
            runner(["ip", "-n", name, "link", "set", "lo", "up"])


def remove_netns_all(names: Iterable[str], *, runner: Runner = run) -> None:
    """``remove_netns`` for each of ``names``: one ``ip -force -batch -`` process deletes
    them; one still there afterwards is retried alone (which raises its error)."""
    present = [n for n in dict.fromkeys(check_name(n) for n in names) if netns_exists(n)]
    if len(present) > 1:
        runner(["ip", "-force", "-batch", "-"], input="".join(f"netns delete {n}\n" for n in present), check=False)
    for name in present:
        remove_netns(name, runner=runner)


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


__all__ = [
    "NETNS_DIR",
    "check_name",
    "ensure_netns",
    "ensure_netns_all",
    "list_netns",
    "netns_exists",
    "netns_pids",
    "remove_netns",
    "remove_netns_all",
]
