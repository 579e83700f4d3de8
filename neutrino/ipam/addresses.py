"""Strict parsing of IP addresses and prefixes given as text (pure).

Python's ``ipaddress`` accepts an IPv6 scope id after ``%`` with any text in
it (``fe80::1%eth0``, but also a newline, a comma or a space) and keeps it
in ``str()``.  Such text reaches dnsmasq's files, OpenFlow flows and
``ip`` commands, so nothing of ours takes it: an address or prefix here is
only hexadecimal digits, ``.``, ``:`` and one ``/`` (so no scope id, no
whitespace, no control character), and its canonical text is
``str(ipaddress.ip_address(x))`` (lower case, zeros compressed), the form
stored in the database and compared everywhere.

Every parser raises ``ValueError`` for anything else; the API layer turns
that into Neutron's ``Invalid input for <attr>`` (``neutrino.resources.convert``),
agents skip (and report) what fails here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

#: The characters of an address, a prefix length or a netmask (``%``, blanks, controls refused).
_ADDRESS_CHARS = re.compile(r"[0-9A-Fa-f.:]{2,45}")
_PREFIX_CHARS = re.compile(r"[0-9A-Fa-f.:]{2,45}/[0-9A-Fa-f.:]{1,45}")


def _text(v: Any, prefix: bool) -> str:
    """``v`` if it is a string made only of address characters, else ValueError."""
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not a string")
    if (_PREFIX_CHARS if prefix else _ADDRESS_CHARS).fullmatch(v) is None:
        raise ValueError(f"{v!r} is not an IP address{' or prefix' if prefix else ''}")
    return v


def parse_ip(v: Any) -> Address:
    """An IPv4 or IPv6 address (no prefix, no scope id)."""
    return ipaddress.ip_address(_text(v, False))


def parse_network(v: Any, *, strict: bool = False) -> Network:
    """A prefix ``address/len`` (or an address: /32, /128); host bits masked unless ``strict``."""
    return ipaddress.ip_network(_text(v, "/" in v if isinstance(v, str) else False), strict=strict)


def parse_interface(v: Any) -> Interface:
    """An address with its prefix length (``10.0.0.5/24``; a bare address is /32 or /128)."""
    return ipaddress.ip_interface(_text(v, "/" in v if isinstance(v, str) else False))


def canonical_ip(v: Any) -> str:
    """The canonical text of an address (``2001:DB8::0005`` -> ``2001:db8::5``)."""
    return str(parse_ip(v))


def is_ip(v: Any) -> bool:
    try:
        parse_ip(v)
    except ValueError:
        return False
    return True


def is_ip_or_network(v: Any) -> bool:
    """An address or a prefix (allowed address pairs, remote prefixes, group members)."""
    try:
        parse_network(v)
    except ValueError:
        return False
    return True


__all__ = [
    "Address",
    "Interface",
    "Network",
    "canonical_ip",
    "is_ip",
    "is_ip_or_network",
    "parse_interface",
    "parse_ip",
    "parse_network",
]
