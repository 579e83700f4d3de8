"""Pure renderer of a router's IPv4 ruleset, and a parser of ``iptables-save`` output.

``iptables_ruleset(cfg, router)`` returns the complete ``iptables-restore``
input for the router's namespace: tables ``nat``, ``mangle``, ``filter`` and
``raw``, each with its builtin chains (policy ACCEPT), its chain declarations
(``:CHAIN - [0:0]``), its rules and ``COMMIT``.  Applied *without*
``--noflush`` it replaces those four tables atomically (the namespace belongs
to the agent, so nothing else is lost), which also deletes chains of removed
port forwardings.

Chains follow Neutron's ``IptablesManager`` wrapping for the binary
``neutron-l3-agent``: every builtin chain jumps to its wrapped twin
``neutron-l3-agent-<CHAIN>``; extra wrapped chains are
``neutron-l3-agent-<name[:11]>`` (``snat``, ``float-snat``, ``fip-pf``,
``pf-<id[:8]>``, ``mark``, ``scope``, ``floatingip``, ``local``); the shared
chains are ``neutron-filter-top`` and ``neutron-postrouting-bottom``.  A router
that is administratively down gets a ruleset of its own instead: no NAT, and
``filter`` INPUT and FORWARD jump to ``neutron-l3-agent-admin-down`` (DROP).

Canonical form.  The text is written exactly as ``iptables-save`` (legacy
and nf_tables back ends, 1.8.x) prints the same rules back, so that
``parse_iptables_save(iptables-save output)`` equals the parse of the
rendered text and a round trip is stable:

* builtin chains in the kernel's order (e.g. nat ``PREROUTING INPUT OUTPUT
  POSTROUTING``), then user chains sorted by name (byte order; iptables-save
  lists them that way); rules grouped by chain in that same order;
* addresses always with a prefix: ``-d 172.24.4.50/32`` (iptables-save
  prints ``/32`` even when restored without);
* option order of iptables-save: ``-s``, ``-d``, ``-i``, ``-o``, ``-p``, then
  the matches in rule order, then ``-j`` and target options;
* an explicit ``-m tcp``/``-m udp`` after ``-p tcp``/``-p udp`` (the save
  output names the protocol match even when only ``--dport`` was given);
* ``MARK --set-xmark value/mask`` (``--set-mark`` is printed as
  ``--set-xmark v/0xffffffff``), marks in lower-case hex;
* the comment quoted with double quotes (as saved when it holds spaces);
* port ranges with ``:`` in ``--dport`` and ``-`` in ``--to-destination``.

``parse_iptables_save`` ignores ``#`` lines, counters (chain and
``-c``-style rule counters), whitespace and quoting differences, and table
order; tables absent from the text count as empty (builtins only), which is
what a fresh namespace shows.  IPv6 (``ip6tables``) is not rendered yet.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from neutrino.agents.l3.model import FloatingIp, L3Config, PortForwarding, RouterView

__all__ = [
    "ADMIN_DOWN_CHAIN",
    "BUILTIN_CHAINS",
    "EXTERNAL_INGRESS_MARK",
    "METADATA_CIDR",
    "METADATA_MARK",
    "NOSCOPE_MARK",
    "TABLES",
    "WRAP",
    "IptablesTable",
    "Ruleset",
    "empty_table",
    "iptables_ruleset",
    "scope_marks",
    "is_admin_down_ruleset",
    "normalise",
    "parse_iptables_save",
    "pf_chain",
    "same_ruleset",
    "wrapped",
]

WRAP = "neutron-l3-agent"
FILTER_TOP = "neutron-filter-top"
POSTROUTING_BOTTOM = "neutron-postrouting-bottom"
SNAT_COMMENT = "Perform source NAT on outgoing traffic."
#: The wrapped chain of an administratively down router (INPUT and FORWARD jump to it: DROP).
ADMIN_DOWN_CHAIN = "admin-down"
ADMIN_DOWN_COMMENT = "Router is administratively down."

MARK_MASK = "0xffff"
METADATA_MARK = "0x1"
EXTERNAL_INGRESS_MARK = "0x2"
SCOPE_MASK = "0xffff0000"
#: Address-scope marks (upper 16 bits): "no scope" is id 1024 (``0x4000000``), the router's
#: scopes (sorted by id) take 1025, 1026, ... (``scope_marks``).
NOSCOPE_ID = 1024
NOSCOPE_MARK = "0x4000000"
METADATA_CIDR = "169.254.169.254/32"
METADATA_PORT = 80

#: Tables rendered, in this order.
TABLES = ("nat", "mangle", "filter", "raw")
#: Builtin chains per table, in the order iptables-save lists them.
BUILTIN_CHAINS: Mapping[str, tuple[str, ...]] = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
#: Builtin chains that jump to a wrapped twin (IPv4).
_WRAPPED_BUILTINS: Mapping[str, tuple[str, ...]] = {
    "nat": ("PREROUTING", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "OUTPUT", "FORWARD"),
    "raw": ("PREROUTING", "OUTPUT"),
}


def wrapped(name: str) -> str:
    """``neutron-l3-agent-<name[:11]>``."""
    return f"{WRAP}-{name[:11]}"


def pf_chain(pf: PortForwarding) -> str:
    """The wrapped per-forwarding chain ``neutron-l3-agent-pf-<id[:8]>``."""
    return wrapped(f"pf-{pf.id}")


# --- rule building ---------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Builder:
    """Chains and rules per table; ``$name`` in rule text expands to the wrapped chain."""

    def __init__(self) -> None:
        self.chains: dict[str, set[str]] = {t: set() for t in TABLES}
        self.rules: dict[str, dict[str, list[str]]] = {t: {} for t in TABLES}

    def chain(self, table: str, name: str, wrap: bool = True) -> str:
        full = wrapped(name) if wrap else name
        self.chains[table].add(full)
        return full

    def builtin(self, table: str, chain: str, text: str) -> None:
        """Append ``text`` to a builtin or shared (unwrapped) chain."""
        self.rule(table, chain, text, wrap=False)

    def rule(self, table: str, chain: str, text: str, wrap: bool = True) -> None:
        """Append ``text`` to the wrapped chain ``chain`` (full name if not ``wrap``)."""
        if wrap:
            chain = wrapped(chain)
        if _CONTROL.search(text) or _CONTROL.search(chain):
            # A value with a newline would be a line of its own in iptables-restore's input
            # (another rule, another table).  Refused: the router's planning fails, it is left
            # as it is and reported (planner.plan), the other routers are not affected.
            raise ValueError(f"iptables rule with a control character refused: {text[:80]!r}")
        text = re.sub(r"\$([A-Za-z0-9_-]+)", lambda m: wrapped(m.group(1)), text)
        self.rules[table].setdefault(chain, []).append(text)

    def render(self) -> str:
        out = []
        for table in TABLES:
            out.append(f"*{table}")
            builtins = BUILTIN_CHAINS[table]
            user = sorted(self.chains[table])
            out += [f":{c} ACCEPT [0:0]" for c in builtins]
            out += [f":{c} - [0:0]" for c in user]
            for c in (*builtins, *user):
                out += [f"-A {c} {r}" for r in self.rules[table].get(c, ())]
            out.append("COMMIT")
        return "\n".join(out) + "\n"


def _snat_target(cfg: L3Config, source: str) -> str:
    target = f"-j SNAT --to-source {source}"
    return target + " --random-fully" if cfg.use_random_fully else target


def _proto_match(protocol: str) -> str:
    return f"-p {protocol} -m {protocol}"


def _ports(rng: tuple[int, int], sep: str) -> str:
    a, b = rng
    return str(a) if a == b else f"{a}{sep}{b}"


def _pf_destination(pf: PortForwarding) -> str:
    """``ip:port``, ``ip:a-b`` (same range inside and out) or ``ip:a-b/ext_start`` (shifted N-to-N)."""
    internal = _ports(pf.internal_ports, "-")
    if pf.internal_ports[0] != pf.internal_ports[1] and pf.internal_ports != pf.external_ports:
        internal += f"/{pf.external_ports[0]}"
    return f"{pf.internal_ip_address}:{internal}"


def _base(b: _Builder, cfg: L3Config) -> None:
    for table, chains in _WRAPPED_BUILTINS.items():
        for c in chains:
            b.chain(table, c)
    b.builtin("nat", "PREROUTING", f"-j {wrapped('PREROUTING')}")
    b.builtin("nat", "OUTPUT", f"-j {wrapped('OUTPUT')}")
    b.builtin("nat", "POSTROUTING", f"-j {wrapped('POSTROUTING')}")
    b.chain("nat", POSTROUTING_BOTTOM, wrap=False)
    b.builtin("nat", "POSTROUTING", f"-j {POSTROUTING_BOTTOM}")
    b.chain("nat", "snat")
    b.chain("nat", "float-snat")
    comment = f'-m comment --comment "{SNAT_COMMENT}" ' if cfg.comment_iptables_rules else ""
    b.builtin("nat", POSTROUTING_BOTTOM, f"{comment}-j $snat")
    b.rule("nat", "snat", "-j $float-snat")

    for c in _WRAPPED_BUILTINS["mangle"]:
        b.builtin("mangle", c, f"-j {wrapped(c)}")
    for c in ("mark", "scope", "floatingip", "float-snat"):
        b.chain("mangle", c)
    b.rule("mangle", "PREROUTING", "-j $mark")
    b.rule("mangle", "PREROUTING", "-j $scope")
    b.rule(
        "mangle",
        "PREROUTING",
        f"-m connmark ! --mark 0x0/{SCOPE_MASK} -j CONNMARK --restore-mark --nfmask {SCOPE_MASK} --ctmask {SCOPE_MASK}",
    )
    b.rule("mangle", "PREROUTING", "-j $floatingip")
    b.rule(
        "mangle",
        "float-snat",
        f"-m connmark --mark 0x0/{SCOPE_MASK} -j CONNMARK --save-mark --nfmask {SCOPE_MASK} --ctmask {SCOPE_MASK}",
    )

    b.builtin("filter", "INPUT", f"-j {wrapped('INPUT')}")
    b.chain("filter", FILTER_TOP, wrap=False)
    b.builtin("filter", "FORWARD", f"-j {FILTER_TOP}")
    b.builtin("filter", "FORWARD", f"-j {wrapped('FORWARD')}")
    b.builtin("filter", "OUTPUT", f"-j {FILTER_TOP}")
    b.builtin("filter", "OUTPUT", f"-j {wrapped('OUTPUT')}")
    b.chain("filter", "local")
    b.chain("filter", "scope")
    b.builtin("filter", FILTER_TOP, "-j $local")
    b.rule("filter", "FORWARD", "-j $scope")

    b.builtin("raw", "PREROUTING", f"-j {wrapped('PREROUTING')}")
    b.builtin("raw", "OUTPUT", f"-j {wrapped('OUTPUT')}")


def _metadata(b: _Builder, cfg: L3Config) -> None:
    if not cfg.enable_metadata_proxy:
        return
    match = f"-d {METADATA_CIDR} -i qr-+ {_proto_match('tcp')} --dport {METADATA_PORT}"
    b.rule("nat", "PREROUTING", f"{match} -j REDIRECT --to-ports {cfg.metadata_port}")
    b.rule("mangle", "PREROUTING", f"{match} -j MARK --set-xmark {METADATA_MARK}/{MARK_MASK}")
    b.rule("filter", "INPUT", f"-m mark --mark {METADATA_MARK}/{MARK_MASK} -j ACCEPT")
    b.rule("filter", "INPUT", f"{_proto_match('tcp')} --dport {cfg.metadata_port} -j DROP")


def scope_marks(router: RouterView) -> dict[str | None, str]:
    """``value/mask`` of each address scope on the router's ports (None: no scope), stable for a
    given set of scopes whatever the order of the ports."""
    scopes = sorted({p.address_scope for p in router.ports if p.address_scope})
    ids: dict[str | None, int] = {None: NOSCOPE_ID, **{s: NOSCOPE_ID + 1 + i for i, s in enumerate(scopes)}}
    return {s: f"{hex(n << 16)}/{SCOPE_MASK}" for s, n in ids.items()}


def _scope_of_ip(router: RouterView, ip: str | None) -> str | None:
    """The address scope of the router interface whose subnet holds ``ip`` (None if none does)."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for port in router.interfaces:
        for sub in port.subnets:
            net = ipaddress.ip_network(sub.cidr, strict=False)
            if addr.version == net.version and addr in net:
                return port.address_scope
    return None


def _gateway(b: _Builder, cfg: L3Config, router: RouterView) -> None:
    gw, gw_ip = router.gateway, router.gateway_ip
    if gw is None or gw_ip is None:
        return
    qg = gw.device
    if gw.address_scope is not None:
        # Traffic that entered from a port of the external network's address scope (its scope
        # mark saved in the connection) is routed as it is: no SNAT within an address scope.
        b.rule("nat", "snat", f"-o {qg} -m connmark --mark {scope_marks(router)[gw.address_scope]} -j ACCEPT")
    if router.enable_snat:
        b.rule("nat", "snat", f"-o {qg} {_snat_target(cfg, gw_ip)}")
        b.rule(
            "nat",
            "snat",
            f"-m mark ! --mark {EXTERNAL_INGRESS_MARK}/{MARK_MASK} "
            f"-m conntrack --ctstate DNAT {_snat_target(cfg, gw_ip)}",
        )
    b.rule("nat", "POSTROUTING", f"! -o {qg} -m conntrack ! --ctstate DNAT -j ACCEPT")
    b.rule("mangle", "mark", f"-i {qg} -j MARK --set-xmark {EXTERNAL_INGRESS_MARK}/{MARK_MASK}")
    b.rule(
        "mangle",
        "POSTROUTING",
        f"-o {qg} -m connmark --mark 0x0/{SCOPE_MASK} -j CONNMARK "
        f"--save-mark --nfmask {SCOPE_MASK} --ctmask {SCOPE_MASK}",
    )


def _address_scopes(b: _Builder, router: RouterView) -> None:
    """Mark ingress with the port's address scope; a port only sends what came from its own scope
    (replies carry the scope of the connection's first packet, restored from its connmark).
    Floating IPs whose fixed address is in another scope than the external network get the fixed
    side's mark inbound and the external one outbound (Neutron's ``floatingip``/``float-snat``)."""
    marks = scope_marks(router)
    for port in router.ports:
        b.rule("mangle", "scope", f"-i {port.device} -j MARK --set-xmark {marks[port.address_scope]}")
    for port in router.ports:
        if port.kind == "qg" and router.enable_snat:
            continue  # SNATed traffic may leave whatever its scope
        b.rule("filter", "scope", f"-o {port.device} -m mark ! --mark {marks[port.address_scope]} -j DROP")
    gw = router.gateway
    if gw is None or router.gateway_ip is None:
        return
    for fip in router.active_floating_ips:
        inside = fip.fixed_ip_address or next((pf.internal_ip_address for pf in fip.port_forwardings), None)
        fixed_scope = _scope_of_ip(router, inside)
        if fixed_scope == gw.address_scope:
            continue
        b.rule("mangle", "floatingip", f"-d {fip.floating_ip_address}/32 -j MARK --set-xmark {marks[fixed_scope]}")
        if fip.fixed_ip_address:
            b.rule("mangle", "FORWARD", f"-s {fip.fixed_ip_address}/32 -j $float-snat")
    if any(
        _scope_of_ip(router, f.fixed_ip_address) != gw.address_scope
        for f in router.active_floating_ips
        if f.fixed_ip_address
    ):
        b.rule("mangle", "float-snat", f"-o {gw.device} -j MARK --set-xmark {marks[gw.address_scope]}")


def _floating_ips(b: _Builder, cfg: L3Config, fips: Iterable[FloatingIp]) -> None:
    fips = tuple(fips)
    for fip in fips:
        if fip.associated:
            dnat = f"-d {fip.floating_ip_address}/32 -j DNAT --to-destination {fip.fixed_ip_address}"
            b.rule("nat", "PREROUTING", dnat)
            b.rule("nat", "OUTPUT", dnat)
            b.rule("nat", "float-snat", f"-s {fip.fixed_ip_address}/32 {_snat_target(cfg, fip.floating_ip_address)}")
    if not cfg.port_forwarding:
        return
    b.chain("nat", "fip-pf")
    b.rule("nat", "PREROUTING", "-j $fip-pf")
    for fip in fips:
        for pf in fip.port_forwardings:
            chain = b.chain("nat", f"pf-{pf.id}")
            b.rule("nat", "fip-pf", f"-j {chain}")
            b.builtin(
                "nat",
                chain,
                f"-d {fip.floating_ip_address}/32 {_proto_match(pf.protocol)} "
                f"--dport {_ports(pf.external_ports, ':')} "
                f"-j DNAT --to-destination {_pf_destination(pf)}",
            )


def _admin_down(b: _Builder, cfg: L3Config) -> None:
    """An administratively down router: no NAT, no metadata redirect; everything that would
    be routed through the namespace or delivered to it is dropped (``ADMIN_DOWN_CHAIN``)."""
    chain = b.chain("filter", ADMIN_DOWN_CHAIN)
    b.builtin("filter", "INPUT", f"-j {chain}")
    b.builtin("filter", "FORWARD", f"-j {chain}")
    comment = f'-m comment --comment "{ADMIN_DOWN_COMMENT}" ' if cfg.comment_iptables_rules else ""
    b.builtin("filter", chain, f"{comment}-j DROP")


def is_admin_down_ruleset(text: str) -> bool:
    """True if ``text`` (rendered or ``iptables-save`` output) is an admin-down ruleset: its
    ``filter`` table has the ``ADMIN_DOWN_CHAIN``.  The planner reads the router's mode
    (forwarding on or off) from the rules it last applied."""
    table = parse_iptables_save(text).get("filter")
    return table is not None and any(c == wrapped(ADMIN_DOWN_CHAIN) for c, _ in table.chains)


def iptables_ruleset(cfg: L3Config, router: RouterView) -> str:
    """The complete ``iptables-restore`` input (IPv4) for ``router``'s namespace.

    A router that is administratively down gets the admin-down ruleset (``_admin_down``)
    instead, whatever its gateway and floating IPs."""
    b = _Builder()
    if not router.admin_state_up:
        _admin_down(b, cfg)
        return b.render()
    _base(b, cfg)
    _metadata(b, cfg)
    _gateway(b, cfg, router)
    _address_scopes(b, router)
    _floating_ips(b, cfg, router.active_floating_ips)
    return b.render()


# --- parsing / normalising -------------------------------------------------------------
@dataclass(frozen=True)
class IptablesTable:
    """One table in normal form.

    ``chains``: (name, policy) - builtins in kernel order, then user chains
    sorted (policy ``-``).  ``rules``: (chain, rule text without ``-A chain``)
    grouped by chain in the ``chains`` order, in rule order within a chain.
    """

    name: str
    chains: tuple[tuple[str, str], ...] = ()
    rules: tuple[tuple[str, str], ...] = ()

    def chain_rules(self, chain: str) -> tuple[str, ...]:
        return tuple(r for c, r in self.rules if c == chain)


Ruleset = Mapping[str, IptablesTable]


def empty_table(name: str) -> IptablesTable:
    """A table as a fresh namespace has it: builtin chains (ACCEPT), no rule."""
    return IptablesTable(name, tuple((c, "ACCEPT") for c in BUILTIN_CHAINS.get(name, ())))


#: Characters that make a line need shell-like splitting (quotes, escapes).
_QUOTING = re.compile(r"[\"'\\]")


def _norm_rule(tokens: list[str]) -> str:
    out = []
    for t in tokens:
        if t == "" or any(ch.isspace() or ch in "\"'\\" for ch in t):
            out.append('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            out.append(t)
    return " ".join(out)


@dataclass
class _TableAcc:
    name: str
    policies: dict[str, str] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)

    def freeze(self) -> IptablesTable:
        builtins = BUILTIN_CHAINS.get(self.name, ())
        policies = {c: "ACCEPT" for c in builtins}
        policies.update(self.policies)
        order = [c for c in builtins] + sorted(c for c in policies if c not in builtins)
        order += sorted(c for c in self.rules if c not in policies)
        return IptablesTable(
            self.name,
            tuple((c, policies.get(c, "-")) for c in order),
            tuple((c, r) for c in order for r in self.rules.get(c, ())),
        )


def parse_iptables_save(text: str) -> dict[str, IptablesTable]:
    """``iptables-save`` (or ``iptables-restore`` input) text -> normal form per table found."""
    tables: dict[str, IptablesTable] = {}
    cur: _TableAcc | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            cur = _TableAcc(line[1:].strip())
        elif line == "COMMIT":
            if cur is not None:
                tables[cur.name] = cur.freeze()
            cur = None
        elif cur is None:
            continue
        elif line.startswith(":"):
            parts = line[1:].split()
            cur.policies[parts[0]] = parts[1] if len(parts) > 1 else "-"
        else:
            if line.startswith("["):  # iptables-save -c: "[pkts:bytes] -A ..."
                line = line.split("]", 1)[1].strip()
            if _QUOTING.search(line) is None:
                # The common case (only a comment is ever quoted): blank-separated words are
                # already the normal form, and shlex is ~20x slower than str.split.
                tokens = line.split()
                if len(tokens) >= 2 and tokens[0] in ("-A", "--append"):
                    cur.rules.setdefault(tokens[1], []).append(" ".join(tokens[2:]))
                continue
            tokens = shlex.split(line, posix=True)
            if len(tokens) >= 2 and tokens[0] in ("-A", "--append"):
                cur.rules.setdefault(tokens[1], []).append(_norm_rule(tokens[2:]))
    if cur is not None:  # no COMMIT: still take what was read
        tables[cur.name] = cur.freeze()
    return tables


def normalise(text: str, tables: Iterable[str] = TABLES) -> tuple[IptablesTable, ...]:
    """The normal form of ``tables`` in ``text`` (absent ones as empty tables)."""
    parsed = parse_iptables_save(text)
    return tuple(parsed.get(t, empty_table(t)) for t in tables)


def same_ruleset(a: str, b: str, tables: Iterable[str] = TABLES) -> bool:
    """True if the two texts hold the same chains and rules in ``tables``."""
    tables = tuple(tables)
    return normalise(a, tables) == normalise(b, tables)
