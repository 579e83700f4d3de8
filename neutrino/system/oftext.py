"""OpenFlow text, pure: the canonical match, the ``Flow`` value and the ``ovs-ofctl`` text forms.

No subprocess, no I/O: strings in, values and strings out.  ``system/openflow.py``
runs ``ovs-ofctl`` with what this module writes and reads what it prints back.

Why here: this is the text format of a host tool, so it sits in ``system/``
beside the runner that speaks it, at the bottom layer.  Every layer may import
it: the runner (``system/openflow.py``), the OVS agent's flow builders and
firewall (``agents/ovs/flows.py``, ``agents/ovs/firewall.py``), the fake switch
(``fakes/flowtable.py``) and the test helpers (``testing/openflow.py``), none of
which may import each other.  It imports only the standard library.

``Flow`` is a frozen value: ``Flow(table, priority, match, actions, cookie=0,
...)``.  Its ``match`` is kept in OVS's canonical form (``canonical_match``):
fields in the order ``ovs-ofctl dump-flows`` prints them (``MATCH_FIELD_ORDER``),
protocol shorthands (``tcp`` for ``dl_type=0x0800,nw_proto=6``; ``SHORTHANDS``),
OVS's number bases and address forms.  So a flow a planner builds compares
equal to the same flow dumped from the switch, as long as its ``actions`` are
also written the way OVS prints them for OpenFlow 1.3 (e.g.
``set_field:4097->vlan_vid``, not ``mod_vlan_vid:1``; ``pop_vlan``, not
``strip_vlan``): actions are compared verbatim.

Text forms (the one OVS 3.1 prints with ``dump-flows --no-stats``)::

    cookie=0x1, table=20, hard_timeout=300, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:00:02 actions=output:3
    priority=0 actions=drop                     (table 0, cookie 0)
    table=30, send_flow_rem priority=5,udp,tp_src=68,tp_dst=67 actions=CONTROLLER:65535

``parse_flow(line)`` reads one such line and ``format_flow(flow)`` writes it
back (``format_flow(parse_flow(x)) == x.strip()`` for OVS's own output);
``parse_dump(text)`` reads a whole dump.

Fast paths for large tables (a br-int with a conntrack firewall holds ~50k
flows): ``dump_entries(text)`` reads a ``dump-flows --no-stats`` output into
``DumpedFlow`` tuples without canonicalising (OVS's own output already is
canonical), and ``canonical_bundle_text`` writes a bundle straight from flows
whose match is already canonical (anything with ``table``, ``priority``,
``match`` and ``actions`` attributes), skipping ``Flow``'s validation.  Both
are ~50x cheaper per flow than ``parse_dump`` / ``Flow``.

The ``ovs-ofctl`` input syntax for ``Flow`` values (``flow_mod_text``,
``bundle_text``, ``parse_flow_mod``) only tests write, so it lives in
``neutrino/testing/openflow.py``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

DEFAULT_PRIORITY = 32768


# ---------------------------------------------------------------------------
# Canonical match (mirrors the field order of OVS's match_format(), 3.1)
# ---------------------------------------------------------------------------

_SHORTHANDS = {
    # name: (dl_type, nw_proto or None)
    "ip": (0x0800, None),
    "icmp": (0x0800, 1),
    "igmp": (0x0800, 2),
    "tcp": (0x0800, 6),
    "udp": (0x0800, 17),
    "sctp": (0x0800, 132),
    "ipv6": (0x86DD, None),
    "icmp6": (0x86DD, 58),
    "tcp6": (0x86DD, 6),
    "udp6": (0x86DD, 17),
    "sctp6": (0x86DD, 132),
    "arp": (0x0806, None),
    "rarp": (0x8035, None),
    "mpls": (0x8847, None),
    "mplsm": (0x8848, None),
}
_SHORTHAND_OF = {v: k for k, v in _SHORTHANDS.items()}
_PROTO_SHORTHAND_ALWAYS = {0x0800, 0x86DD, 0x0806, 0x8035, 0x8847, 0x8848}

_ALIASES = {
    "eth_src": "dl_src",
    "eth_dst": "dl_dst",
    "eth_type": "dl_type",
    "ip_src": "nw_src",
    "ip_dst": "nw_dst",
    "ipv4_src": "nw_src",
    "ipv4_dst": "nw_dst",
    "ip_proto": "nw_proto",
    "ip_ttl": "nw_ttl",
    "tcp_src": "tp_src",
    "tcp_dst": "tp_dst",
    "udp_src": "tp_src",
    "udp_dst": "tp_dst",
    "sctp_src": "tp_src",
    "sctp_dst": "tp_dst",
    "icmpv4_type": "icmp_type",
    "icmpv4_code": "icmp_code",
    "icmpv6_type": "icmp_type",
    "icmpv6_code": "icmp_code",
    "tunnel_id": "tun_id",
    "tun_ipv4_src": "tun_src",
    "tun_ipv4_dst": "tun_dst",
    "nd_sll": "nd_sll",
    "nd_tll": "nd_tll",
}

_ORDER: list[str] = [
    "pkt_mark",
    "recirc_id",
    "dp_hash",
    "conj_id",
    "skb_priority",
    "actset_output",
    "ct_state",
    "ct_zone",
    "ct_mark",
    "ct_label",
    "ct_nw_src",
    "ct_ipv6_src",
    "ct_nw_dst",
    "ct_ipv6_dst",
    "ct_nw_proto",
    "ct_tp_src",
    "ct_tp_dst",
    "packet_type",
    "<proto>",
    *(f"reg{i}" for i in range(16)),
    "tun_id",
    "tun_src",
    "tun_dst",
    "tun_ipv6_src",
    "tun_ipv6_dst",
    "tun_gbp_id",
    "tun_gbp_flags",
    "tun_tos",
    "tun_ttl",
    "tun_erspan_ver",
    "tun_erspan_idx",
    "tun_erspan_dir",
    "tun_erspan_hwid",
    "tun_flags",
    *(f"tun_metadata{i}" for i in range(64)),
    "metadata",
    "in_port",
    "dl_vlan",
    "vlan_tci",
    "dl_vlan_pcp",
    "dl_vlan1",
    "vlan_tci1",
    "dl_vlan_pcp1",
    "dl_src",
    "dl_dst",
    "dl_type",
    "ipv6_src",
    "ipv6_dst",
    "ipv6_label",
    "arp_spa",
    "arp_tpa",
    "nw_src",
    "nw_dst",
    "nw_proto",
    "arp_op",
    "arp_sha",
    "arp_tha",
    "nw_tos",
    "nw_ecn",
    "nw_ttl",
    "mpls_label",
    "mpls_tc",
    "mpls_ttl",
    "mpls_bos",
    "mpls_lse1",
    "mpls_lse2",
    "nw_frag",
    "icmp_type",
    "icmp_code",
    "igmp_type",
    "igmp_code",
    "nd_target",
    "nd_sll",
    "nd_tll",
    "tp_src",
    "tp_dst",
    "tcp_flags",
]
_RANK = {name: i for i, name in enumerate(_ORDER)}

#: Every match field OVS 3.1 prints, in its print order (``<proto>`` marks where the
#: protocol shorthand goes).  Shared with the OVS agent's flow builders.
MATCH_FIELD_ORDER: tuple[str, ...] = tuple(_ORDER)
#: Protocol shorthand -> (dl_type, nw_proto or None), e.g. ``tcp`` -> (0x0800, 6).
SHORTHANDS: dict[str, tuple[int, int | None]] = _SHORTHANDS

_HEX32 = {"pkt_mark", "recirc_id", "dp_hash", "ct_mark", "skb_priority", *(f"reg{i}" for i in range(16))}
_HEX64 = {"tun_id", "metadata"}
_BE16 = {"tp_src", "tp_dst", "icmp_type", "icmp_code", "ct_tp_src", "ct_tp_dst", "tun_gbp_id"}
_DEC = {
    "conj_id",
    "dl_vlan",
    "dl_vlan_pcp",
    "nw_proto",
    "arp_op",
    "nw_tos",
    "nw_ecn",
    "nw_ttl",
    "ct_nw_proto",
    "mpls_label",
    "mpls_tc",
    "mpls_ttl",
    "mpls_bos",
    "ct_zone",
}
_IP4 = {"nw_src", "nw_dst", "arp_spa", "arp_tpa", "tun_src", "tun_dst", "ct_nw_src", "ct_nw_dst"}
_IP6 = {"ipv6_src", "ipv6_dst", "nd_target", "tun_ipv6_src", "tun_ipv6_dst", "ct_ipv6_src", "ct_ipv6_dst"}
_MACS = {"dl_src", "dl_dst", "arp_sha", "arp_tha", "nd_sll", "nd_tll"}
_PORTS = {"in_port", "actset_output"}

_RESERVED_PORTS = {
    0xFFF8: "IN_PORT",
    0xFFF9: "TABLE",
    0xFFFA: "NORMAL",
    0xFFFB: "FLOOD",
    0xFFFC: "ALL",
    0xFFFD: "CONTROLLER",
    0xFFFE: "LOCAL",
    0xFFFF: "ANY",
}
_RESERVED_NAMES = set(_RESERVED_PORTS.values()) | {"NONE"}

_CT_STATE_BITS = ["new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"]
_TCP_FLAG_BITS = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"]


_NESTING = re.compile(r'["(\[{]')


def split_fields(text: str) -> list[str]:
    """Split ``a=1,b="x,y",c`` on top-level commas (quotes and brackets respected)."""
    if _NESTING.search(text) is None:  # the common case: nothing nested, a plain split
        return [f for f in (p.strip() for p in text.split(",")) if f]
    out, cur, depth, quote = [], [], 0, False
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur).strip())
    return [f for f in out if f]


def _int(text: str) -> int:
    return int(text, 0)


def _masked(value: str) -> tuple[str, str | None]:
    v, sep, m = value.partition("/")
    return v, (m if sep else None)


def _c_hex(n: int) -> str:
    """C's ``%#x``: ``0`` for zero, ``0x..`` otherwise (Python's ``#x`` gives ``0x0``)."""
    return f"{n:#x}" if n else "0"


def _fmt_hex_masked(value: str, bits: int) -> str:
    v, m = _masked(value)
    full = (1 << bits) - 1
    out = _c_hex(_int(v))
    if m is not None and _int(m) != full:
        out += "/" + _c_hex(_int(m))
    return out


def _fmt_be16(value: str) -> str:
    v, m = _masked(value)
    if m is None or _int(m) == 0xFFFF:
        return str(_int(v))
    return f"0x{_int(v):x}/0x{_int(m):x}"


def _fmt_ip(value: str, v6: bool) -> str | None:
    """IP (with optional /len or /netmask) the way OVS prints it; None if it matches all."""
    v, m = _masked(value)
    bits = 128 if v6 else 32
    addr = ipaddress.ip_address(v)
    if m is None:
        return str(addr)
    if m.isdigit():
        mask = ((1 << bits) - 1) ^ ((1 << (bits - int(m))) - 1) if int(m) else 0
    else:
        mask = int(ipaddress.ip_address(m))
    if mask == 0:
        return None
    net = int(addr) & mask
    cls = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
    if mask == (1 << bits) - 1:
        return str(cls(net))
    inv = ((1 << bits) - 1) ^ mask
    if inv & (inv + 1) == 0:  # contiguous prefix
        return f"{cls(net)}/{bits - inv.bit_length()}"
    return f"{cls(net)}/{cls(mask)}"


def _fmt_mac(value: str) -> str | None:
    v, m = _masked(value.lower())
    if m is not None and m == "ff:ff:ff:ff:ff:ff":
        m = None
    if m == "00:00:00:00:00:00":
        return None
    return v if m is None else f"{v}/{m}"


def port_text(value: str) -> str:
    """A port the way OVS prints it: reserved ports by name, names quoted unless alnum."""
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = json.loads(value)
    elif value.isdigit() or value.lower().startswith("0x"):
        n = _int(value)
        return _RESERVED_PORTS.get(n, str(n))
    if value.upper() in _RESERVED_NAMES:
        return value.upper()
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", value):
        return value
    return json.dumps(value)


def _fmt_flags(value: str, bits: list[str]) -> str:
    if not value or value[0] not in "+-":
        return value
    flags = dict((m.group(2), m.group(1)) for m in re.finditer(r"([+-])([a-z]+)", value))
    known = [b for b in bits if b in flags]
    unknown = [b for b in flags if b not in bits]
    return "".join(f"{flags[b]}{b}" for b in known + unknown)


@functools.lru_cache(maxsize=65536)
def _normalise_value(key: str, value: str) -> str | None:
    # Memoised: a firewall builds ~50 matches per port out of few distinct values
    # (the port's reg5, MAC, addresses, ct_state words), and parsing addresses
    # dominated canonicalising them.
    if key in _HEX32:
        return _fmt_hex_masked(value, 32)
    if key in _HEX64:
        return _fmt_hex_masked(value, 64)
    if key in _BE16:
        return _fmt_be16(value)
    if key in _DEC:
        v, m = _masked(value)
        return str(_int(v)) if m is None else value
    if key in ("vlan_tci", "vlan_tci1"):
        v, m = _masked(value)
        if m is None and _int(v) == 0:
            # NOTE: OpenFlow 1.3 cannot carry an exact "no VLAN" match; OVS
            # stores and prints it with the VID+CFI mask.
            m = "0x1fff"
        return f"0x{_int(v):04x}" + (f"/0x{_int(m):04x}" if m and _int(m) != 0xFFFF else "")
    if key == "dl_type":
        return f"0x{_int(value):04x}"
    if key in _IP4:
        return _fmt_ip(value, False)
    if key in _IP6:
        return _fmt_ip(value, True)
    if key in _MACS:
        return _fmt_mac(value)
    if key in _PORTS:
        return port_text(value)
    if key == "ct_state":
        return _fmt_flags(value, _CT_STATE_BITS)
    if key == "tcp_flags":
        return _fmt_flags(value, _TCP_FLAG_BITS)
    return value


def canonical_match(match: str) -> str:
    """``match`` in the form ``ovs-ofctl dump-flows`` prints it (without ``priority``).

    Normalises field order, protocol shorthands, field aliases (``eth_src`` ->
    ``dl_src``), number bases and address forms for the fields OVS 3.1 prints;
    anything it does not know is kept verbatim in its relative position.
    Idempotent; the identity on OVS's own output.
    """
    fields: list[tuple[str, str | None]] = []
    dl_type: int | None = None
    proto: int | None = None  # nw_proto, or arp_op for ARP/RARP
    proto_pos = 0
    for tok in split_fields(match):
        kind, key, value, number = _token(tok)
        if kind == "shorthand":
            dl_type, p = _SHORTHANDS[key]
            if p is not None:
                proto = p
        elif kind == "dl_type":
            dl_type = number
        elif kind == "proto":
            proto, proto_pos = number, len(fields)
        else:
            fields.append((key, value))
    proto_tokens: list[str] = []
    if dl_type in (0x0806, 0x8035):
        proto_tokens.append(_SHORTHAND_OF[(dl_type, None)])
        if proto is not None:
            fields.insert(proto_pos, ("arp_op", str(proto)))
    elif dl_type is not None:
        if proto is not None and (dl_type, proto) in _SHORTHAND_OF:
            proto_tokens.append(_SHORTHAND_OF[(dl_type, proto)])
        else:
            if dl_type in _PROTO_SHORTHAND_ALWAYS:
                proto_tokens.append(_SHORTHAND_OF[(dl_type, None)])
            else:
                fields.append(("dl_type", f"0x{dl_type:04x}"))
            if proto is not None:
                fields.insert(proto_pos, ("nw_proto", str(proto)))
    elif proto is not None:
        fields.insert(proto_pos, ("nw_proto", str(proto)))
    out: list[tuple[int, int, str]] = []
    proto_rank = _RANK["<proto>"]
    for name in proto_tokens:
        out.append((proto_rank, 0, name))
    last_rank = -1
    for pos, (key, value) in enumerate(fields):
        rank = _RANK.get(key)
        if rank is None:
            rank = last_rank  # unknown field: stay right after its predecessor
        last_rank = rank
        if value is None:
            out.append((rank, pos + 1, key))
            continue
        norm = _normalise_value(key, value)
        if norm is None:
            continue  # a wildcard-everything value (nw_src=0.0.0.0/0) is no match at all
        out.append((rank, pos + 1, f"{key}={norm}"))
    out.sort()  # by (rank, position): positions are unique
    return ",".join(text for _, _, text in out)


@functools.lru_cache(maxsize=65536)
def _token(tok: str) -> tuple[str, str, str | None, int]:
    """One match token, classified: (kind, key, value, number), kind one of
    ``shorthand`` (``tcp``...), ``dl_type``, ``proto`` (nw_proto / arp_op), ``field``."""
    key, sep, value = tok.partition("=")
    key = key.strip()
    if not sep:
        return ("shorthand" if key in _SHORTHANDS else "field"), key, None, 0
    key = _ALIASES.get(key, key)
    if key == "priority":
        raise ValueError("priority belongs in Flow.priority, not in the match")
    if key == "dl_type":
        return "dl_type", key, None, _int(value)
    if key in ("nw_proto", "arp_op"):
        return "proto", key, None, _int(value)
    return "field", key, value.strip(), 0


# ---------------------------------------------------------------------------
# Flow value and its text forms
# ---------------------------------------------------------------------------

FLAG_WORDS = (
    "send_flow_rem",
    "check_overlap",
    "reset_counts",
    "no_packet_counts",
    "no_byte_counts",
    "allow_hidden_fields",
    "no_readonly_table",
)


@dataclass(frozen=True, order=True)
class Flow:
    table: int
    priority: int
    match: str
    actions: str
    cookie: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    importance: int = 0
    flags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 0 <= self.table <= 254:
            raise ValueError(f"table out of range: {self.table}")
        if not 0 <= self.priority <= 65535:
            raise ValueError(f"priority out of range: {self.priority}")
        if not 0 <= self.cookie < 1 << 64:
            raise ValueError(f"cookie out of range: {self.cookie}")
        object.__setattr__(self, "match", canonical_match(self.match))
        actions = self.actions.strip()
        object.__setattr__(self, "actions", actions or "drop")
        unknown = set(self.flags) - set(FLAG_WORDS)
        if unknown:
            raise ValueError(f"unknown flow flags: {sorted(unknown)}")
        object.__setattr__(self, "flags", tuple(f for f in FLAG_WORDS if f in self.flags))

    @property
    def key(self) -> tuple[int, int, str]:
        """OpenFlow identity of the flow: (table, priority, match)."""
        return (self.table, self.priority, self.match)

    def with_cookie(self, cookie: int) -> Flow:
        return replace(self, cookie=cookie)

    def __str__(self) -> str:
        return format_flow(self)


def _match_with_priority(flow: Flow) -> str:
    parts = []
    if flow.priority != DEFAULT_PRIORITY:
        parts.append(f"priority={flow.priority}")
    if flow.match:
        parts.append(flow.match)
    return ",".join(parts)


def format_flow(flow: Flow) -> str:
    """The ``dump-flows --no-stats`` line for ``flow`` (without OVS's leading space)."""
    head = ""
    if flow.cookie:
        head += f"cookie={flow.cookie:#x}, "
    if flow.table:
        head += f"table={flow.table}, "
    if flow.idle_timeout:
        head += f"idle_timeout={flow.idle_timeout}, "
    if flow.hard_timeout:
        head += f"hard_timeout={flow.hard_timeout}, "
    for f in flow.flags:
        head += f + " "
    if flow.importance:
        head += f"importance={flow.importance}, "
    m = _match_with_priority(flow)
    return f"{head}{m}{' ' if m else ''}actions={flow.actions}"


_HEAD_PROP = re.compile(
    r"(cookie|duration|table|n_packets|n_bytes|idle_timeout|hard_timeout"
    r"|importance|idle_age|hard_age)=([^,\s]*), "
)
_HEAD_FLAG = re.compile(r"(" + "|".join(FLAG_WORDS) + r") ")


def parse_flow(line: str) -> Flow:
    """One ``dump-flows`` line (with or without stats) -> ``Flow``."""
    text = line.strip()
    idx = text.find("actions=")
    if idx < 0:
        raise ValueError(f"not a flow line: {line!r}")
    head, actions = text[:idx], text[idx + len("actions=") :]
    props: dict[str, str] = {}
    flags: list[str] = []
    pos = 0
    while True:
        m = _HEAD_PROP.match(head, pos) or _HEAD_FLAG.match(head, pos)
        if not m:
            break
        if m.re is _HEAD_PROP:
            props[m.group(1)] = m.group(2)
        else:
            flags.append(m.group(1))
        pos = m.end()
    match = head[pos:].strip()
    priority = DEFAULT_PRIORITY
    fields = split_fields(match)
    if fields and fields[0].startswith("priority="):
        priority = int(fields[0].split("=", 1)[1])
        fields = fields[1:]
    return Flow(
        table=int(props.get("table", "0")),
        priority=priority,
        match=",".join(fields),
        actions=actions,
        cookie=int(props.get("cookie", "0"), 0),
        idle_timeout=int(props.get("idle_timeout", "0")),
        hard_timeout=int(props.get("hard_timeout", "0")),
        importance=int(props.get("importance", "0")),
        flags=tuple(flags),
    )


def parse_dump(text: str) -> list[Flow]:
    """Every flow line of a ``dump-flows`` output (header lines skipped)."""
    flows = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith(("OFPST_", "NXST_", "OFPT_")) or "actions=" not in s:
            continue
        flows.append(parse_flow(s))
    return flows


class DumpedFlow(NamedTuple):
    """One ``dump-flows --no-stats`` line, split but not canonicalised (``dump_entries``)."""

    cookie: int
    table: int
    priority: int
    match: str
    actions: str


_FAST_HEAD = re.compile(r"(?:cookie=(0x[0-9a-f]+), )?(?:table=(\d+), )?(?:priority=(\d+)(?:,|(?= )))?")
_SLOW_HEAD = (
    "idle_timeout=",
    "hard_timeout=",
    "importance=",
    "duration=",
    "n_packets=",
    "n_bytes=",
    "idle_age=",
    "hard_age=",
    *(f + " " for f in FLAG_WORDS),
)


def dump_entries(text: str) -> list[DumpedFlow]:
    """Every flow of a ``dump-flows --no-stats`` output as ``DumpedFlow`` (headers skipped).

    Lines of the common shape (``cookie=C, table=T, priority=P,MATCH actions=A``,
    any of the head fields absent) are split as printed, since OVS prints
    matches canonically; lines with timeouts, flags or stats go through
    ``parse_flow`` (their timeouts and flags are not kept).
    """
    out: list[DumpedFlow] = []
    append = out.append
    fast = _FAST_HEAD.match
    for line in text.splitlines():
        s = line.strip()
        idx = s.find("actions=")
        if idx < 0 or s.startswith(("OFPST_", "NXST_", "OFPT_")):
            continue
        m = fast(s)
        assert m is not None  # every part of _FAST_HEAD is optional: it matches any string
        end = m.end()
        rest = s[end:idx]
        if rest.startswith(_SLOW_HEAD) or (m.group(3) is None and "priority=" in rest):
            f = parse_flow(s)
            append(DumpedFlow(f.cookie, f.table, f.priority, f.match, f.actions))
            continue
        cookie, table, prio = m.groups()
        append(
            DumpedFlow(
                int(cookie, 16) if cookie else 0,
                int(table) if table else 0,
                int(prio) if prio else DEFAULT_PRIORITY,
                rest.strip(),
                s[idx + 8 :],
            )
        )
    return out


class FlowText(Protocol):
    """A flow whose ``match`` is already canonical (e.g. the OVS agent's ``FlowSpec``)."""

    @property
    def table(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def match(self) -> str: ...
    @property
    def actions(self) -> str: ...


def canonical_bundle_text(cookie: int, add: Iterable[FlowText] = (), delete: Iterable[FlowText] = ()) -> str:
    """The ``ovs-ofctl --bundle add-flows`` input for flows already in canonical form:
    deletions (by table, priority and match) first, then additions stamped with ``cookie``.
    Lines come sorted (table, priority descending, match), so the text is
    deterministic whatever order the flows came in.  ``UnsafeFlowText`` if a
    flow's text holds a line break or NUL (it would be more than one flow mod)."""

    def order(f: FlowText) -> tuple[int, int, str, str]:
        return (f.table, -f.priority, f.match, f.actions)

    lines = []
    for f in sorted(delete, key=order):
        m = f",{f.match}" if f.match else ""
        lines.append(f"delete_strict table={f.table},priority={f.priority}{m}\n")
    head = f"add cookie={cookie:#x},table="
    for f in sorted(add, key=order):
        m = f",{f.match}" if f.match else ""
        lines.append(f"{head}{f.table},priority={f.priority}{m},actions={f.actions}\n")
    return one_line_each("".join(lines), len(lines))


class UnsafeFlowText(ValueError):
    """A flow whose text holds a line break or NUL: ``ovs-ofctl`` would read it as more
    than one flow mod (or a cut one), so the bundle is refused before it runs."""


def one_line_each(text: str, lines: int) -> str:
    """``text`` if it has exactly ``lines`` lines and no NUL/CR (memchr-fast on 50k flows)."""
    if text.count("\n") != lines or "\r" in text or "\x00" in text:
        raise UnsafeFlowText("a flow holds a line break or NUL; bundle refused")
    return text


__all__ = [
    "DEFAULT_PRIORITY",
    "FLAG_WORDS",
    "MATCH_FIELD_ORDER",
    "SHORTHANDS",
    "DumpedFlow",
    "Flow",
    "FlowText",
    "UnsafeFlowText",
    "canonical_bundle_text",
    "canonical_match",
    "dump_entries",
    "format_flow",
    "one_line_each",
    "parse_dump",
    "parse_flow",
    "port_text",
    "split_fields",
]
