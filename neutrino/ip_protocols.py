"""IP protocol names a security-group rule may use, and their numbers (IANA).

Shared by the API (validation, duplicate detection) and the OVS firewall
(matching), so both read a rule's protocol the same way.
"""

from __future__ import annotations

PROTOCOL_NUMBERS: dict[str, int] = {
    "hopopt": 0,
    "icmp": 1,
    "igmp": 2,
    "ipip": 4,
    "tcp": 6,
    "egp": 8,
    "udp": 17,
    "ipv6-encap": 41,
    "ipv6-route": 43,
    "ipv6-frag": 44,
    "rsvp": 46,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ospf": 89,
    "pgm": 113,
    "vrrp": 112,
    "sctp": 132,
    "udplite": 136,
    "dccp": 33,
}


def protocol_number(protocol: str | None) -> int | None:
    """A rule's protocol (name, number as text, None/"any") as a number; None = any."""
    if protocol is None or protocol in ("", "any"):
        return None
    if protocol in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[protocol]
    return int(protocol)
