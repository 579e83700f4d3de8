"""iptables rulesets of a network namespace, whole: ``iptables-save`` / ``iptables-restore``.

The binaries are the machine's ``iptables-save``/``iptables-restore`` (and
the ``ip6tables-*`` twins).  On Debian 12 these are the ``iptables-nft``
alternatives (``xtables-nft-multi``, "iptables v1.8.9 (nf_tables)"): rules
live in nf_tables, per network namespace; ``backend()`` tells which one the
machine has.  The legacy backend works the same through this interface.

``restore(text, netns)`` hands the whole ruleset to one
``iptables-restore`` run: every table in ``text`` is replaced (its builtin
chains flushed, its other chains deleted unless declared) and the change is
committed atomically - a rejected line (``IptablesRuleError``, with
``.line``) leaves the namespace's rules as they were.  ``noflush=True``
(``-n``) adds to the existing tables instead, as Neutron's IptablesManager
does with chains it declares itself.

Errors are translated once by ``neutrino.system.exec.run``; see
``neutrino.system.errors`` (``IptablesError`` / ``IptablesRuleError``;
``NamespaceNotFound`` for a missing namespace, ``CommandNotFound`` when
iptables is not installed).
"""

from __future__ import annotations

import re

from neutrino.system.exec import Runner, run

_COMMENT = re.compile(r"^#")


def _tool(ipv6: bool, what: str) -> str:
    return f"{'ip6tables' if ipv6 else 'iptables'}-{what}"


def save(
    netns: str | None = None,
    *,
    ipv6: bool = False,
    table: str | None = None,
    counters: bool = False,
    runner: Runner = run,
) -> str:
    """The namespace's current ruleset (``iptables-save`` text, "#" comment lines kept)."""
    argv = [_tool(ipv6, "save")]
    if table:
        argv += ["-t", table]
    if counters:
        argv.append("-c")
    return runner(argv, netns=netns).stdout


def restore(
    text: str,
    netns: str | None = None,
    *,
    ipv6: bool = False,
    noflush: bool = False,
    counters: bool = False,
    runner: Runner = run,
) -> None:
    """Apply ``text`` (iptables-save format) in one atomic ``iptables-restore`` run."""
    argv = [_tool(ipv6, "restore")]
    if noflush:
        argv.append("-n")
    if counters:
        argv.append("-c")
    if not text.endswith("\n"):
        text += "\n"
    runner(argv, netns=netns, input=text)


def save6(netns: str | None = None, *, table: str | None = None, counters: bool = False, runner: Runner = run) -> str:
    return save(netns, ipv6=True, table=table, counters=counters, runner=runner)


def restore6(
    text: str, netns: str | None = None, *, noflush: bool = False, counters: bool = False, runner: Runner = run
) -> None:
    restore(text, netns, ipv6=True, noflush=noflush, counters=counters, runner=runner)


def rules(text: str) -> dict[str, list[str]]:
    """``iptables-save`` text -> {table: [":chain POLICY", "-A ...", ...]} without comments/counters (pure)."""
    out: dict[str, list[str]] = {}
    table = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _COMMENT.match(line) or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            out.setdefault(table, [])
        elif table is not None:
            if line.startswith(":"):
                line = " ".join(line.split()[:2])  # drop [packets:bytes]
            out[table].append(line)
    return out


def backend(runner: Runner = run) -> str:
    """``nf_tables`` or ``legacy``: what the machine's ``iptables`` uses."""
    out = runner(["iptables", "--version"]).stdout
    return "nf_tables" if "nf_tables" in out else "legacy"


__all__ = ["backend", "restore", "restore6", "rules", "save", "save6"]
