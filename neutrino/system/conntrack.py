"""Connection-tracking entries of a network namespace: ``conntrack -D``.

``flush(netns, dst=..., src=...)`` deletes the matching entries (all of the
address family when neither is given) and returns how many went.  "0 flow
entries have been deleted" is success whatever the exit code (conntrack-tools
before 1.4.6 exit 1 then; 1.4.7, Debian 12's, exits 0).  Other failures are
``ConntrackError`` (``neutrino.system.errors``).
"""

from __future__ import annotations

import ipaddress
import re

from neutrino.system.errors import translate
from neutrino.system.exec import Runner, run

_DELETED = re.compile(r"(\d+) flow entries have been deleted")


def flush_argv(
    dst: str | None = None, src: str | None = None, *, zone: int | None = None, family: int | None = None
) -> list[str]:
    """The argv of one ``conntrack -D`` (pure); the family follows the addresses unless given."""
    if family is None:
        addr = dst or src
        family = ipaddress.ip_address(addr.split("/")[0]).version if addr else 4
    argv = ["conntrack", "-D", "-f", "ipv6" if family == 6 else "ipv4"]
    if src:
        argv += ["-s", src]
    if dst:
        argv += ["-d", dst]
    if zone is not None:
        argv += ["-w", str(zone)]
    return argv


def flush(
    netns: str | None = None,
    dst: str | None = None,
    src: str | None = None,
    *,
    zone: int | None = None,
    family: int | None = None,
    runner: Runner = run,
) -> int:
    """Delete the matching entries; returns the number deleted."""
    done = runner(flush_argv(dst, src, zone=zone, family=family), netns=netns, check=False)
    m = _DELETED.search(done.stderr) or _DELETED.search(done.stdout)
    if m is not None:
        return int(m.group(1))
    if done.rc != 0:
        raise translate(done.argv, done.rc, done.stderr, done.stdout)
    return 0


__all__ = ["flush", "flush_argv"]
