"""Gratuitous ARP from a device in a namespace (iputils ``arping``, package iputils-arping).

``garp(dev, ip, netns)`` runs ``arping -U -I <dev> -c 1 -w 2 <ip>``
(unsolicited request; ``reply=True``: ``-A``, an unsolicited reply), as
Neutron's L3 agent does after adding an address.  No answer is expected,
so exit codes 0 and 1 ("no reply") are both success.  An unknown device is
``DeviceNotFound``, anything else ``ArpingError`` (``neutrino.system.errors``).
"""

from __future__ import annotations

from neutrino.system.errors import translate
from neutrino.system.exec import Runner, run


def garp_argv(dev: str, ip: str, *, count: int = 1, reply: bool = False, deadline: int = 2) -> list[str]:
    return ["arping", "-A" if reply else "-U", "-I", dev, "-c", str(count), "-w", str(deadline), ip]


def garp(
    dev: str, ip: str, netns: str | None = None, *, count: int = 1, reply: bool = False, runner: Runner = run
) -> None:
    done = runner(garp_argv(dev, ip, count=count, reply=reply), netns=netns, check=False)
    if done.rc not in (0, 1):
        raise translate(done.argv, done.rc, done.stderr, done.stdout)


__all__ = ["garp", "garp_argv"]
